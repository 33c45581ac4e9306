"""The anomalies API's lifecycle actions: snooze, unsnooze, notes, the activity log, stale
views answered with 409, and the lifecycle filters and fields."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from anomalies.models import Anomaly, AnomalyActivity, AnomalyStatus
from anomalies.services.triage import anomalies_wake_snoozed, anomaly_acknowledge
from tests.factories import AnomalyFactory, UserFactory

pytestmark = pytest.mark.django_db

ANOMALIES = "/api/v1/anomalies/"
OPEN, ACK, SNOOZED, RESOLVED, DISMISSED = (
    AnomalyStatus.OPEN,
    AnomalyStatus.ACKNOWLEDGED,
    AnomalyStatus.SNOOZED,
    AnomalyStatus.RESOLVED,
    AnomalyStatus.DISMISSED,
)
TODAY = dt.date(2024, 2, 1)


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    """Snooze dates count from 1 February 2024 in these tests."""
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: TODAY)


def act(client, anomaly, action, data=None):
    return client.post(f"{ANOMALIES}{anomaly.pk}/{action}/", data or {}, format="json")


def snoozed(**kwargs) -> Anomaly:
    return AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 8), **kwargs)


# --- snooze / unsnooze -------------------------------------------------------------------------


def test_snooze_for_days(api_client):
    anomaly = AnomalyFactory()

    response = act(api_client, anomaly, "snooze", {"days": 7, "note": "promo ends Sunday"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["snoozed_until"]) == ("snoozed", "2024-02-08")
    assert anomaly.activities.get().note == "until 2024-02-08; promo ends Sunday"


def test_snooze_until_a_day(api_client):
    anomaly = AnomalyFactory(status=ACK)

    response = act(api_client, anomaly, "snooze", {"until": "2024-03-01"})

    assert response.status_code == 200
    assert response.json()["snoozed_until"] == "2024-03-01"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "Give either a date to snooze until or a number of days, not both."),
        (
            {"days": 3, "until": "2024-03-01"},
            "Give either a date to snooze until or a number of days, not both.",
        ),
        ({"until": "2024-02-01"}, "Snooze until a day after today (2024-02-01), not 2024-02-01."),
    ],
)
def test_snooze_validates_the_day(api_client, body, error):
    anomaly = AnomalyFactory()

    response = act(api_client, anomaly, "snooze", body)

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [error]}
    anomaly.refresh_from_db()
    assert anomaly.status == OPEN


@pytest.mark.parametrize(("days", "message"), [(0, "greater than or equal to 1"), (366, "365")])
def test_snooze_days_are_bounded(api_client, days, message):
    response = act(api_client, AnomalyFactory(), "snooze", {"days": days})

    assert response.status_code == 400
    assert message in response.json()["days"][0]


def test_snoozing_a_closed_anomaly_is_a_conflict(api_client):
    anomaly = AnomalyFactory(status=RESOLVED)

    response = act(api_client, anomaly, "snooze", {"days": 2})

    assert response.status_code == 409
    assert response.json() == {"detail": f"Anomaly {anomaly.pk} is resolved; it cannot be snoozed."}


def test_unsnooze(api_client):
    anomaly = snoozed()

    response = act(api_client, anomaly, "unsnooze", {"note": "stock arrived"})
    again = act(api_client, anomaly, "unsnooze")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["snoozed_until"]) == ("open", None)
    assert again.status_code == 409
    assert again.json() == {"detail": f"Anomaly {anomaly.pk} is open; it cannot be unsnoozed."}


# --- stale views -------------------------------------------------------------------------------


def test_expected_status_turns_a_stale_decision_into_a_409(api_client):
    anomaly = AnomalyFactory()
    anomaly_acknowledge(anomaly_id=anomaly.pk, actor=UserFactory(username="bob", is_superuser=True))

    response = act(
        api_client, anomaly, "dismiss", {"reason": "expected", "expected_status": "open"}
    )

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Anomaly {anomaly.pk} was changed by someone else: now acknowledged."
    }
    anomaly.refresh_from_db()
    assert anomaly.status == ACK


@pytest.mark.parametrize(
    ("action", "body", "second_time"),
    [
        ("acknowledge", {}, "was changed by someone else: now acknowledged."),
        ("snooze", {"days": 1}, "was changed by someone else: now snoozed."),
        ("resolve", {}, "was changed by someone else: now resolved."),
        ("dismiss", {"reason": "duplicate"}, "was changed by someone else: now dismissed."),
        # Assigning keeps the status, so "open" still holds; the repeat is refused as such.
        ("assign", {"me": True}, "is already assigned to ops."),
    ],
)
def test_every_state_change_accepts_expected_status(api_client, action, body, second_time):
    anomaly = AnomalyFactory()

    ok = act(api_client, anomaly, action, {**body, "expected_status": "open"})
    stale = act(api_client, anomaly, action, {**body, "expected_status": "open"})

    assert ok.status_code == 200, ok.content
    assert stale.status_code == 409
    assert stale.json() == {"detail": f"Anomaly {anomaly.pk} {second_time}"}


def test_expected_status_must_be_a_status(api_client):
    response = act(api_client, AnomalyFactory(), "resolve", {"expected_status": "gone"})

    assert response.status_code == 400
    assert response.json() == {"expected_status": ['"gone" is not a valid choice.']}


# --- notes and the log -------------------------------------------------------------------------


def test_note_adds_a_log_entry_in_any_state(api_client, staff_user):
    anomaly = AnomalyFactory(status=DISMISSED)

    response = act(api_client, anomaly, "note", {"note": "store confirmed the promotion"})

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("anomaly", "actor", "actor_username", "action", "note")} == {
        "anomaly": anomaly.pk,
        "actor": staff_user.pk,
        "actor_username": "ops",
        "action": "note",
        "note": "store confirmed the promotion",
    }
    assert (body["from_status"], body["to_status"]) == ("dismissed", "dismissed")


@pytest.mark.parametrize("body", [{}, {"note": ""}, {"note": "   "}])
def test_note_must_say_something(api_client, body):
    anomaly = AnomalyFactory()

    response = act(api_client, anomaly, "note", body)

    assert response.status_code == 400
    assert "note" in response.json()
    assert not AnomalyActivity.objects.exists()


def test_activity_log_lists_people_and_the_system_newest_first(api_client):
    anomaly = snoozed()
    act(api_client, anomaly, "note", {"note": "first"})
    anomalies_wake_snoozed(today=dt.date(2024, 2, 8))

    response = api_client.get(f"{ANOMALIES}{anomaly.pk}/activity/")

    assert response.status_code == 200
    rows = [(r["actor_username"], r["action"], r["note"]) for r in response.json()]
    assert rows == [
        (None, "wake", "snooze ended (snoozed until 2024-02-08)"),
        ("ops", "note", "first"),
    ]


def test_status_stays_read_only(api_client):
    anomaly = AnomalyFactory()

    response = api_client.patch(f"{ANOMALIES}{anomaly.pk}/", {"status": "resolved"}, format="json")

    assert response.status_code == 405
    anomaly.refresh_from_db()
    assert anomaly.status == OPEN


# --- filters and fields ------------------------------------------------------------------------


@pytest.fixture
def lifecycle_set():
    return {
        "open": AnomalyFactory(),
        "snoozed_soon": snoozed(),
        "snoozed_later": AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 3, 1)),
        "regressed": AnomalyFactory(regression_count=1, regressed_at=timezone.now()),
        "false_positive": AnomalyFactory(status=DISMISSED, dismiss_reason="false_positive"),
        "expected": AnomalyFactory(status=DISMISSED, dismiss_reason="expected"),
    }


def names(response, rows) -> set[str]:
    assert response.status_code == 200, response.content
    by_id = {anomaly.pk: name for name, anomaly in rows.items()}
    return {by_id[row["id"]] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "open"}, {"open", "regressed"}),
        ({"status": "snoozed"}, {"snoozed_soon", "snoozed_later"}),
        ({"snoozed_until_before": "2024-02-10"}, {"snoozed_soon"}),
        ({"regressed": "true"}, {"regressed"}),
        ({"regressed": "false", "status": "open"}, {"open"}),
        ({"dismiss_reason": ["expected", "false_positive"]}, {"expected", "false_positive"}),
        ({"dismiss_reason": "expected"}, {"expected"}),
    ],
)
def test_lifecycle_filters(api_client, lifecycle_set, query, expected):
    assert names(api_client.get(ANOMALIES, query), lifecycle_set) == expected


def test_lifecycle_fields_in_the_detail(api_client, lifecycle_set):
    body = api_client.get(f"{ANOMALIES}{lifecycle_set['regressed'].pk}/").json()
    snoozed_body = api_client.get(f"{ANOMALIES}{lifecycle_set['snoozed_soon'].pk}/").json()
    dismissed_body = api_client.get(f"{ANOMALIES}{lifecycle_set['expected'].pk}/").json()

    assert body["regression_count"] == 1 and body["regressed_at"] is not None
    assert snoozed_body["snoozed_until"] == "2024-02-08"
    assert dismissed_body["dismiss_reason"] == "expected"


def test_schema_lists_the_lifecycle_actions(api_client):
    paths = api_client.get("/api/schema/", {"format": "json"}).json()["paths"]

    for action in ("snooze", "unsnooze", "note"):
        assert "post" in paths[f"/api/v1/anomalies/{{id}}/{action}/"]
    assert "get" in paths["/api/v1/anomalies/{id}/activity/"]
