"""The anomalies API: authentication, list and detail, filters, triage actions and the schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from anomalies.models import (
    AnomalyActivity,
    AnomalyStatus,
    AnomalyType,
    Severity,
)
from common.roles import OPS_MANAGER
from tests.conftest import grant_role
from tests.factories import (
    AnomalyFactory,
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

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_anonymous_cannot_act_on_an_anomaly():
    anomaly = AnomalyFactory()

    response = APIClient().post(f"{ANOMALIES}{anomaly.pk}/resolve/")

    assert response.status_code == 401
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.OPEN


def test_token_authentication_works():
    user = grant_role(UserFactory(username="robot"), OPS_MANAGER)
    token = Token.objects.create(user=user)
    anomaly = AnomalyFactory()
    client = APIClient()

    wrong = client.get(ANOMALIES, HTTP_AUTHORIZATION="Token wrong")
    assert wrong.status_code == 401
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
