"""The anomalies API: auth, filters, cursor pages, triage actions, detection runs, statistics."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from anomalies.detectors import REGISTRY, DetectorSpec
from anomalies.detectors.base import make_findings
from anomalies.models import (
    Anomaly,
    AnomalyActivity,
    AnomalyStatus,
    AnomalyType,
    DetectionRun,
    RunStatus,
    Severity,
)
from anomalies.services.statistics import anomaly_statistics
from tests.factories import (
    AnomalyFactory,
    DailySalesFactory,
    DetectionRunFactory,
    LocationFactory,
    ProductFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ANOMALIES = "/api/v1/anomalies/"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        ANOMALIES,
        "/api/v1/detection-runs/",
        "/api/v1/anomaly-statistics/",
        "/api/v1/products/",
        "/api/v1/outcomes/",
    ],
)
def test_anonymous_requests_are_refused(url):
    response = APIClient().get(url)

    assert response.status_code in (401, 403)
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_anonymous_cannot_act_on_an_anomaly():
    anomaly = AnomalyFactory()

    response = APIClient().post(f"{ANOMALIES}{anomaly.pk}/resolve/")

    assert response.status_code in (401, 403)
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.OPEN


def test_token_authentication_works():
    user = UserFactory(username="robot")
    token = Token.objects.create(user=user)
    anomaly = AnomalyFactory()
    client = APIClient()

    wrong = client.get(ANOMALIES, HTTP_AUTHORIZATION="Token wrong")
    assert wrong.status_code in (401, 403)
    assert wrong.json() == {"detail": "Invalid token."}
    response = client.get(ANOMALIES, HTTP_AUTHORIZATION=f"Token {token.key}")

    assert ids(response) == {anomaly.pk}
    acked = client.post(
        f"{ANOMALIES}{anomaly.pk}/acknowledge/", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert acked.json()["assignee_username"] == "robot"


# --- list and detail ---------------------------------------------------------------------------


def test_anomaly_detail_has_product_location_and_assignee_keys(api_client, staff_user):
    anomaly = AnomalyFactory(
        product=ProductFactory(sku="85123A", name="White hanging heart"),
        location=LocationFactory(code="GB"),
        assignee=staff_user,
        value_at_risk=Decimal("95.00"),
        details={"on_hand": 38},
    )

    data = api_client.get(f"{ANOMALIES}{anomaly.pk}/").json()

    assert data["sku"] == "85123A"
    assert data["product_name"] == "White hanging heart"
    assert data["location_code"] == "GB"
    assert data["location"] == anomaly.location_id
    assert data["assignee"] == staff_user.pk
    assert data["assignee_username"] == "ops"
    assert data["status"] == "open"
    assert data["value_at_risk"] == "95.00"
    assert data["details"] == {"on_hand": 38}


def test_location_level_anomaly_has_null_product_fields(api_client):
    anomaly = AnomalyFactory(product=None)

    data = api_client.get(f"{ANOMALIES}{anomaly.pk}/").json()

    assert (data["product"], data["sku"], data["product_name"]) == (None, None, None)


def test_anomalies_cannot_be_edited_created_or_deleted(api_client):
    anomaly = AnomalyFactory()
    url = f"{ANOMALIES}{anomaly.pk}/"

    assert api_client.put(url, {"status": "resolved"}, format="json").status_code == 405
    assert api_client.patch(url, {"status": "resolved"}, format="json").status_code == 405
    assert api_client.delete(url).status_code == 405
    assert api_client.post(ANOMALIES, {}, format="json").status_code == 405
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.OPEN


def test_list_uses_cursor_pages_newest_detection_first(api_client):
    older = AnomalyFactory(last_detected_on=dt.date(2024, 1, 1))
    newer = [AnomalyFactory(last_detected_on=dt.date(2024, 2, 1)) for _ in range(2)]
    newest = AnomalyFactory(last_detected_on=dt.date(2024, 3, 1))

    first = api_client.get(ANOMALIES, {"limit": 2}).json()
    second = api_client.get(first["next"]).json()

    order = [row["id"] for row in first["results"] + second["results"]]
    assert order == [newest.pk, newer[1].pk, newer[0].pk, older.pk]
    assert "count" not in first
    assert second["next"] is None


def test_list_runs_one_query_whatever_the_number_of_rows(api_client, django_assert_num_queries):
    AnomalyFactory.create_batch(3, assignee=UserFactory())
    # One SELECT ... JOIN product, location, assignee ... LIMIT 51 (cursor pages do not COUNT).
    with django_assert_num_queries(1):
        assert len(api_client.get(ANOMALIES).json()["results"]) == 3
    AnomalyFactory.create_batch(30, assignee=UserFactory())
    with django_assert_num_queries(1):
        assert len(api_client.get(ANOMALIES).json()["results"]) == 33


# --- filters -----------------------------------------------------------------------------------


@pytest.fixture
def triage_set(staff_user):
    gb = LocationFactory(code="GB")
    fr = LocationFactory(code="FR")
    toys = ProductFactory(sku="T1", name="Toy train", category="Toys")
    food = ProductFactory(sku="F1", name="Jam", category="Food")
    bob = UserFactory(username="bob")
    return {
        "a": AnomalyFactory(
            location=gb,
            product=toys,
            anomaly_type=AnomalyType.GHOST_STOCK,
            severity=Severity.CRITICAL,
            status=AnomalyStatus.OPEN,
            start_date=dt.date(2024, 3, 1),
            end_date=dt.date(2024, 3, 5),
            last_detected_on=dt.date(2024, 3, 5),
            explanation="No sales for 5 days",
        ),
        "b": AnomalyFactory(
            location=fr,
            product=food,
            anomaly_type=AnomalyType.PRICE_ANOMALY,
            severity=Severity.WARNING,
            status=AnomalyStatus.ACKNOWLEDGED,
            assignee=staff_user,
            start_date=dt.date(2024, 2, 1),
            end_date=dt.date(2024, 2, 10),
            last_detected_on=dt.date(2024, 2, 10),
            explanation="Price far below regular",
        ),
        "c": AnomalyFactory(
            location=fr,
            product=toys,
            anomaly_type=AnomalyType.DEMAND_SPIKE,
            severity=Severity.INFO,
            status=AnomalyStatus.RESOLVED,
            assignee=bob,
            start_date=dt.date(2024, 1, 1),
            end_date=dt.date(2024, 1, 2),
            last_detected_on=dt.date(2024, 1, 2),
            explanation="Sold 40 units instead of 4",
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, "abc"),
        ({"status": "open"}, "a"),
        ({"status": ["open", "acknowledged"]}, "ab"),
        ({"anomaly_type": ["ghost_stock", "demand_spike"]}, "ac"),
        ({"severity": "critical"}, "a"),
        ({"sku": "T1"}, "ac"),
        ({"sku": ["T1", "F1"]}, "abc"),
        ({"sku": "NOPE"}, ""),
        ({"location_code": "FR"}, "bc"),
        ({"category": "Food"}, "b"),
        ({"assignee": "null"}, "a"),
        ({"assignee_username": "bob"}, "c"),
        ({"detected_after": "2024-02-10"}, "ab"),
        ({"detected_before": "2024-02-09"}, "c"),
        ({"start_after": "2024-01-15", "start_before": "2024-02-15"}, "b"),
        ({"q": "toy"}, "ac"),
        ({"q": "below regular"}, "b"),
        ({"q": "fr"}, "bc"),
        ({"location_code": "FR", "status": "resolved"}, "c"),
    ],
)
def test_anomaly_filters(api_client, triage_set, query, expected):
    response = api_client.get(ANOMALIES, query)

    assert ids(response) == {triage_set[key].pk for key in expected}


def test_filters_by_id(api_client, triage_set, staff_user):
    a, b = triage_set["a"], triage_set["b"]

    assert ids(api_client.get(ANOMALIES, {"product": a.product_id})) == {a.pk, triage_set["c"].pk}
    assert ids(api_client.get(ANOMALIES, {"location": a.location_id})) == {a.pk}
    assert ids(api_client.get(ANOMALIES, {"assignee": staff_user.pk})) == {b.pk}
    unknown = api_client.get(ANOMALIES, {"location": 999_999})
    assert unknown.status_code == 400
    assert "location" in unknown.json()


def test_invalid_filter_values_are_rejected(api_client):
    assert api_client.get(ANOMALIES, {"status": "nonsense"}).status_code == 400
    assert api_client.get(ANOMALIES, {"detected_after": "yesterday"}).status_code == 400


# --- triage actions ----------------------------------------------------------------------------


def act(client, anomaly, action, data=None):
    return client.post(f"{ANOMALIES}{anomaly.pk}/{action}/", data or {}, format="json")


def test_acknowledge_action_then_refused_with_409(api_client, staff_user):
    anomaly = AnomalyFactory()

    response = act(api_client, anomaly, "acknowledge")

    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"
    assert response.json()["assignee"] == staff_user.pk
    assert response.json()["acknowledged_at"] is not None
    again = act(api_client, anomaly, "acknowledge")
    assert again.status_code == 409
    assert again.json() == {
        "detail": f"Anomaly {anomaly.pk} is acknowledged; it cannot be acknowledged."
    }
    assert AnomalyActivity.objects.filter(anomaly=anomaly).count() == 1


def test_resolve_action_with_note(api_client):
    anomaly = AnomalyFactory(status=AnomalyStatus.ACKNOWLEDGED)

    response = act(api_client, anomaly, "resolve", {"note": "recounted: 0 on shelf"})

    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.RESOLVED
    assert anomaly.activities.get().note == "recounted: 0 on shelf"


def test_resolving_a_dismissed_anomaly_is_a_conflict(api_client):
    anomaly = AnomalyFactory(status=AnomalyStatus.DISMISSED)

    response = act(api_client, anomaly, "resolve")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Anomaly {anomaly.pk} is dismissed; it cannot be resolved."
    }


def test_dismiss_requires_a_valid_reason(api_client):
    anomaly = AnomalyFactory()

    missing = act(api_client, anomaly, "dismiss", {"note": "meh"})
    wrong = act(api_client, anomaly, "dismiss", {"reason": "boring"})

    assert missing.status_code == 400
    assert missing.json() == {"reason": ["This field is required."]}
    assert wrong.status_code == 400
    assert wrong.json() == {"reason": ['"boring" is not a valid choice.']}
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.OPEN


def test_dismiss_action(api_client):
    anomaly = AnomalyFactory()

    response = act(api_client, anomaly, "dismiss", {"reason": "expected", "note": "Easter"})

    assert response.status_code == 200
    assert response.json()["status"] == "dismissed"
    assert response.json()["closed_at"] is not None
    assert anomaly.activities.get().note == "reason: expected; Easter"


def test_assign_action_by_id_me_and_null(api_client, staff_user):
    anomaly = AnomalyFactory()
    bob = UserFactory(username="bob")

    by_id = act(api_client, anomaly, "assign", {"assignee": bob.pk})
    me = act(api_client, anomaly, "assign", {"me": True})
    cleared = act(api_client, anomaly, "assign", {"assignee": None})

    assert by_id.json()["assignee_username"] == "bob"
    assert me.json()["assignee"] == staff_user.pk
    assert cleared.json()["assignee"] is None
    notes = list(anomaly.activities.order_by("id").values_list("note", flat=True))
    assert notes == ["assigned to bob", "assigned to ops", "unassigned"]


@pytest.mark.parametrize(
    "body",
    [{}, {"me": True, "assignee": None}, {"assignee": 999_999}, {"assignee": "x"}],
)
def test_assign_action_rejects_bad_bodies(api_client, body):
    anomaly = AnomalyFactory()

    response = act(api_client, anomaly, "assign", body)

    assert response.status_code == 400
    assert not anomaly.activities.exists()


def test_assigning_a_closed_anomaly_is_a_conflict(api_client):
    anomaly = AnomalyFactory(status=AnomalyStatus.RESOLVED)

    response = act(api_client, anomaly, "assign", {"me": True})

    assert response.status_code == 409
    assert "cannot be assigned" in response.json()["detail"]


def test_action_on_missing_anomaly_is_404(api_client):
    assert api_client.post(f"{ANOMALIES}999999/acknowledge/").status_code == 404


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


# --- schema ------------------------------------------------------------------------------------


def test_schema_is_served_to_authenticated_users(api_client):
    response = api_client.get("/api/schema/")

    assert response.status_code == 200
    schema = response.content.decode()
    for path in [
        "/api/v1/anomalies/{id}/dismiss/",
        "/api/v1/anomaly-statistics/",
        "/api/v1/detection-runs/",
        "/api/v1/outcomes/",
        "/api/v1/products/",
    ]:
        assert path in schema


def test_schema_generates_without_warnings(tmp_path):
    # Raises (SchemaGenerationError) on any warning or validation error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert "AnomalyStatistics" in (tmp_path / "s.yml").read_text()
