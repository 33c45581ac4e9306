"""False-discovery control in the API: p/q-values on anomalies, expected false alarms on runs."""

from __future__ import annotations

import pytest

from tests.factories import AnomalyFactory, DetectionRunFactory

pytestmark = pytest.mark.django_db

ANOMALIES = "/api/v1/anomalies/"
RUNS = "/api/v1/detection-runs/"


def test_anomaly_list_gives_p_and_q_values(api_client):
    controlled = AnomalyFactory(p_value=0.0002, q_value=0.006)
    uncontrolled = AnomalyFactory()

    rows = {row["id"]: row for row in api_client.get(ANOMALIES).json()["results"]}

    assert (rows[controlled.pk]["p_value"], rows[controlled.pk]["q_value"]) == (0.0002, 0.006)
    assert (rows[uncontrolled.pk]["p_value"], rows[uncontrolled.pk]["q_value"]) == (None, None)


def test_p_and_q_values_are_read_only(api_client):
    anomaly = AnomalyFactory(q_value=0.01)

    response = api_client.patch(f"{ANOMALIES}{anomaly.pk}/", {"q_value": 0.5}, format="json")

    assert response.status_code == 405
    anomaly.refresh_from_db()
    assert anomaly.q_value == 0.01


def test_detection_run_gives_expected_false_alarms(api_client):
    run = DetectionRunFactory(
        fdr_q=0.05,
        hypotheses_tested=12_000,
        new_findings=40,
        new_findings_controlled=36,
        expected_false_alarms=1.8,
    )

    row = api_client.get(f"{RUNS}{run.pk}/").json()

    assert {
        key: row[key]
        for key in (
            "fdr_q",
            "hypotheses_tested",
            "new_findings",
            "new_findings_controlled",
            "expected_false_alarms",
        )
    } == {
        "fdr_q": 0.05,
        "hypotheses_tested": 12_000,
        "new_findings": 40,
        "new_findings_controlled": 36,
        "expected_false_alarms": 1.8,
    }


def test_schema_documents_the_new_fields_as_read_only(api_client):
    schemas = api_client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]

    anomaly = schemas["Anomaly"]["properties"]
    run = schemas["DetectionRun"]["properties"]
    assert anomaly["q_value"]["readOnly"] and anomaly["p_value"]["readOnly"]
    assert "false-discovery" in anomaly["q_value"]["description"]
    assert run["expected_false_alarms"]["readOnly"]
    assert "Benjamini-Hochberg" in run["expected_false_alarms"]["description"]
    assert schemas["DetectionChunk"]["properties"]["new_findings_controlled"]["readOnly"]
