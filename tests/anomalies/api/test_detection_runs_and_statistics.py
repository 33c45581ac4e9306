"""The API's detection runs (POST starts one, list and filter) and statistics endpoints."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from anomalies.detectors import REGISTRY, DetectorSpec
from anomalies.detectors.base import make_findings
from anomalies.models import (
    Anomaly,
    AnomalyType,
    DetectionRun,
    RunStatus,
)
from anomalies.services.statistics import anomaly_statistics
from tests.factories import (
    AnomalyFactory,
    DailySalesFactory,
    DetectionRunFactory,
    LocationFactory,
)

pytestmark = pytest.mark.django_db


# --- detection runs ----------------------------------------------------------------------------


@pytest.fixture
def one_finding_detector(monkeypatch):
    """Replace ghost_stock with a detector that reports one finding on the first sales row."""

    def detect(data, params):
        row = data.sales.iloc[0]
        return make_findings(
            {
                "anomaly_type": ["ghost_stock"],
                "product_id": [int(row["product_id"])],
                "location_id": [int(row["location_id"])],
                "start_date": [pd.Timestamp(data.as_of)],
                "end_date": [pd.Timestamp(data.as_of)],
                "severity": ["warning"],
                "score": [3.0],
                "expected_value": [5.0],
                "actual_value": [0.0],
                "value_at_risk": [10.0],
                "explanation": ["test finding"],
                "details": [{}],
            }
        )

    monkeypatch.setitem(REGISTRY, "ghost_stock", DetectorSpec("ghost_stock", detect, {}, "test"))


def test_post_detection_run_starts_a_run_and_returns_202(
    api_client, one_finding_detector, django_capture_on_commit_callbacks
):
    DailySalesFactory(date=dt.date(2024, 3, 10), units_sold=5)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(
            "/api/v1/detection-runs/",
            {"as_of": "2024-03-10", "detectors": ["ghost_stock"]},
            format="json",
        )

    assert response.status_code == 202
    body = response.json()
    assert body["as_of"] == "2024-03-10"
    assert body["detectors"] == ["ghost_stock"]
    assert body["trigger"] == "api"
    assert len(callbacks) == 1  # the Celery task, enqueued after commit
    run = DetectionRun.objects.get(pk=body["id"])
    assert run.status == RunStatus.SUCCEEDED
    assert run.counts["ghost_stock"]["new"] == 1
    assert Anomaly.objects.get().explanation == "test finding"
    detail = api_client.get(f"/api/v1/detection-runs/{run.pk}/").json()
    assert detail["status"] == "succeeded"
    (chunk,) = detail["chunks"]
    assert chunk["status"] == "succeeded"
    assert chunk["location_ids"] == [Anomaly.objects.get().location_id]
    assert chunk["counts"]["ghost_stock"]["new"] == 1


def test_post_detection_run_defaults_to_latest_data_date(
    api_client, one_finding_detector, django_capture_on_commit_callbacks
):
    DailySalesFactory(date=dt.date(2024, 3, 12))

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/detection-runs/", {}, format="json")

    assert response.status_code == 202
    assert response.json()["as_of"] == "2024-03-12"
    assert response.json()["detectors"] == list(REGISTRY)


def test_post_detection_run_with_unknown_detector_is_400(api_client):
    DailySalesFactory()

    response = api_client.post(
        "/api/v1/detection-runs/", {"detectors": ["crystal_ball"]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Unknown detector(s): crystal_ball.")
    assert not DetectionRun.objects.exists()


def test_post_detection_run_without_data_is_400(api_client):
    response = api_client.post("/api/v1/detection-runs/", {}, format="json")

    assert response.status_code == 400
    assert "No sales data" in response.json()["detail"]


def test_detection_runs_list_and_filter(api_client):
    ok = DetectionRunFactory(status="succeeded", trigger="schedule")
    failed = DetectionRunFactory(status="failed", trigger="api")

    everything = api_client.get("/api/v1/detection-runs/").json()
    only_failed = api_client.get("/api/v1/detection-runs/", {"status": "failed"}).json()

    assert everything["count"] == 2
    assert [row["id"] for row in everything["results"]] == [failed.pk, ok.pk]
    assert [row["id"] for row in only_failed["results"]] == [failed.pk]


# --- statistics --------------------------------------------------------------------------------


@pytest.fixture
def stats_set():
    gb = LocationFactory(code="GB")
    fr = LocationFactory(code="FR")

    def make(**kw):
        return AnomalyFactory(location=kw.pop("location", gb), **kw)

    make(
        anomaly_type="ghost_stock", severity="warning", status="open",
        value_at_risk=Decimal("10.00"), first_detected_on=dt.date(2024, 3, 10),
    )  # fmt: skip
    make(
        anomaly_type="ghost_stock", severity="critical", status="acknowledged",
        value_at_risk=Decimal("5.50"), first_detected_on=dt.date(2024, 3, 10),
    )  # fmt: skip
    make(
        anomaly_type="price_anomaly", severity="info", status="resolved", location=fr,
        value_at_risk=Decimal("100.00"), first_detected_on=dt.date(2024, 3, 8),
    )  # fmt: skip
    make(
        anomaly_type="demand_spike", severity="warning", status="dismissed",
        value_at_risk=Decimal("7.00"), first_detected_on=dt.date(2024, 1, 1),
    )  # fmt: skip


def test_statistics_numbers(api_client, stats_set, django_assert_num_queries):
    # One aggregate (counts per type, severity and status, value at risk, latest date) and one
    # GROUP BY day and type for the trend.
    with django_assert_num_queries(2):
        data = api_client.get("/api/v1/anomaly-statistics/").json()

    assert data["total"] == 4
    assert data["by_type"] == {
        "ghost_stock": 2,
        "demand_spike": 1,
        "demand_drop": 0,
        "price_anomaly": 1,
        "inventory_discrepancy": 0,
        "ml_detected": 0,
        "pos_outage": 0,
    }
    assert data["by_severity"] == {"info": 1, "warning": 2, "critical": 1}
    assert data["by_status"] == {
        "open": 1,
        "acknowledged": 1,
        "snoozed": 0,
        "resolved": 1,
        "dismissed": 1,
    }
    assert data["open_value_at_risk"] == "15.50"
    trend = data["trend"]
    assert (trend["start"], trend["end"]) == ("2024-02-10", "2024-03-10")
    assert len(trend["days"]) == 30
    by_day = {day["date"]: day for day in trend["days"]}
    assert by_day["2024-03-10"]["total"] == 2
    assert by_day["2024-03-10"]["by_type"]["ghost_stock"] == 2
    assert by_day["2024-03-08"]["by_type"] == {
        **dict.fromkeys(AnomalyType.values, 0),
        "price_anomaly": 1,
    }
    assert by_day["2024-03-09"]["total"] == 0
    assert sum(day["total"] for day in trend["days"]) == 3  # the January one is outside


def test_statistics_accept_the_anomaly_filters_and_days(api_client, stats_set):
    data = api_client.get("/api/v1/anomaly-statistics/", {"location_code": "GB", "days": 7}).json()

    assert data["total"] == 3
    assert data["by_type"]["price_anomaly"] == 0
    assert data["open_value_at_risk"] == "15.50"
    assert (data["trend"]["start"], data["trend"]["end"]) == ("2024-03-04", "2024-03-10")
    assert [day["total"] for day in data["trend"]["days"]] == [0, 0, 0, 0, 0, 0, 2]

    only_closed = api_client.get(
        "/api/v1/anomaly-statistics/", {"status": ["resolved", "dismissed"]}
    ).json()
    assert only_closed["total"] == 2
    assert only_closed["open_value_at_risk"] == "0.00"


def test_statistics_reject_bad_days(api_client):
    assert api_client.get("/api/v1/anomaly-statistics/", {"days": 0}).status_code == 400


def test_statistics_of_nothing():
    stats = anomaly_statistics()

    assert stats["total"] == 0
    assert stats["open_value_at_risk"] == Decimal("0")
    assert stats["trend"] == {"start": None, "end": None, "days": []}
