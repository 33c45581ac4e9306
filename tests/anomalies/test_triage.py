"""Triage transitions on one anomaly: acknowledge, assign, resolve, dismiss, snooze and unsnooze,
and notes; each change logged with actor and from/to status.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from anomalies.models import AnomalyActivity
from anomalies.services.triage import (
    DismissReason,
    TransitionError,
    anomalies_unsnooze,
    anomaly_acknowledge,
    anomaly_assign,
    anomaly_dismiss,
    anomaly_note_add,
    anomaly_resolve,
    anomaly_snooze,
    anomaly_unsnooze,
)
from tests.anomalies.triage_support import (
    ACK,
    DISMISSED,
    OPEN,
    RESOLVED,
    SNOOZED,
    STATES,
    TODAY,
    activities,
    make,
)
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db


# --- acknowledge -------------------------------------------------------------------------------


def test_acknowledge_open_anomaly_claims_it_and_logs(actor):
    anomaly = AnomalyFactory(status=OPEN)

    result = anomaly_acknowledge(anomaly_id=anomaly.pk, actor=actor)

    anomaly.refresh_from_db()
    assert result.pk == anomaly.pk
    assert anomaly.status == ACK
    assert anomaly.assignee == actor
    assert anomaly.acknowledged_at is not None
    assert anomaly.closed_at is None
    assert activities(anomaly) == [("ops", "acknowledge", OPEN, ACK, "assigned to ops")]


def test_acknowledge_keeps_an_existing_assignee(actor, bob):
    anomaly = AnomalyFactory(status=OPEN, assignee=bob)

    anomaly_acknowledge(anomaly_id=anomaly.pk, actor=actor)

    anomaly.refresh_from_db()
    assert anomaly.status == ACK
    assert anomaly.assignee == bob
    assert activities(anomaly) == [("ops", "acknowledge", OPEN, ACK, "")]


@pytest.mark.parametrize("status", [ACK, RESOLVED, DISMISSED])
def test_acknowledge_is_refused_unless_open(actor, status):
    anomaly = AnomalyFactory(status=status)

    with pytest.raises(TransitionError) as exc:
        anomaly_acknowledge(anomaly_id=anomaly.pk, actor=actor)

    assert str(exc.value) == f"Anomaly {anomaly.pk} is {status}; it cannot be acknowledged."
    anomaly.refresh_from_db()
    assert anomaly.status == status
    assert anomaly.assignee is None
    assert activities(anomaly) == []


def test_transition_of_missing_anomaly_says_not_found(actor):
    with pytest.raises(TransitionError, match=r"^Anomaly 999999 not found\.$"):
        anomaly_acknowledge(anomaly_id=999_999, actor=actor)
    assert AnomalyActivity.objects.count() == 0


# --- assign ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [OPEN, ACK])
def test_assign_while_active_sets_assignee_and_keeps_status(actor, bob, status):
    anomaly = AnomalyFactory(status=status)

    anomaly_assign(anomaly_id=anomaly.pk, assignee=bob, actor=actor)

    anomaly.refresh_from_db()
    assert anomaly.assignee == bob
    assert anomaly.status == status
    assert activities(anomaly) == [("ops", "assign", status, status, "assigned to bob")]


def test_assign_none_unassigns(actor, bob):
    anomaly = AnomalyFactory(status=ACK, assignee=bob)

    anomaly_assign(anomaly_id=anomaly.pk, assignee=None, actor=actor)

    anomaly.refresh_from_db()
    assert anomaly.assignee is None
    assert activities(anomaly) == [("ops", "assign", ACK, ACK, "unassigned")]


@pytest.mark.parametrize("status", [RESOLVED, DISMISSED])
def test_assign_is_refused_once_closed(actor, bob, status):
    anomaly = AnomalyFactory(status=status)

    with pytest.raises(TransitionError, match=f"is {status}; it cannot be assigned"):
        anomaly_assign(anomaly_id=anomaly.pk, assignee=bob, actor=actor)

    anomaly.refresh_from_db()
    assert anomaly.assignee is None
    assert activities(anomaly) == []


def test_assigning_the_current_assignee_again_is_refused_without_logging(actor, bob):
    anomaly = AnomalyFactory(status=OPEN, assignee=bob)

    with pytest.raises(TransitionError, match=r"is already assigned to bob\.$"):
        anomaly_assign(anomaly_id=anomaly.pk, assignee=bob, actor=actor)

    assert activities(anomaly) == []


# --- resolve / dismiss -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [OPEN, ACK])
def test_resolve_closes_active_anomaly_with_note(actor, status):
    anomaly = AnomalyFactory(status=status)

    anomaly_resolve(anomaly_id=anomaly.pk, actor=actor, note="counted 0 on shelf, adjusted")

    anomaly.refresh_from_db()
    assert anomaly.status == RESOLVED
    assert anomaly.closed_at is not None
    assert activities(anomaly) == [
        ("ops", "resolve", status, RESOLVED, "counted 0 on shelf, adjusted")
    ]


@pytest.mark.parametrize("status", [RESOLVED, DISMISSED])
def test_resolve_is_refused_once_closed(actor, status):
    anomaly = AnomalyFactory(status=status)

    with pytest.raises(TransitionError, match=f"is {status}; it cannot be resolved"):
        anomaly_resolve(anomaly_id=anomaly.pk, actor=actor)

    anomaly.refresh_from_db()
    assert anomaly.status == status
    assert anomaly.closed_at is None


@pytest.mark.parametrize("status", [OPEN, ACK])
def test_dismiss_records_reason_and_note(actor, status):
    anomaly = AnomalyFactory(status=status)

    anomaly_dismiss(
        anomaly_id=anomaly.pk, actor=actor, reason=DismissReason.EXPECTED, note="bank holiday"
    )

    anomaly.refresh_from_db()
    assert anomaly.status == DISMISSED
    assert anomaly.closed_at is not None
    assert activities(anomaly) == [
        ("ops", "dismiss", status, DISMISSED, "reason: expected; bank holiday")
    ]


@pytest.mark.parametrize("status", [RESOLVED, DISMISSED])
def test_dismiss_is_refused_once_closed(actor, status):
    anomaly = AnomalyFactory(status=status)

    with pytest.raises(TransitionError, match=f"is {status}; it cannot be dismissed"):
        anomaly_dismiss(anomaly_id=anomaly.pk, actor=actor, reason=DismissReason.DUPLICATE)

    anomaly.refresh_from_db()
    assert anomaly.status == status


def test_dismiss_requires_a_known_reason(actor):
    anomaly = AnomalyFactory(status=OPEN)

    with pytest.raises(ValueError, match="Unknown dismiss reason 'boring'"):
        anomaly_dismiss(anomaly_id=anomaly.pk, actor=actor, reason="boring")

    anomaly.refresh_from_db()
    assert anomaly.status == OPEN
    assert activities(anomaly) == []


# --- notes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATES)
def test_a_note_can_be_added_in_every_state_and_changes_nothing_else(actor, status):
    anomaly = make(status)

    activity = anomaly_note_add(anomaly_id=anomaly.pk, actor=actor, note="  called the store  ")

    assert (activity.action, activity.from_status, activity.to_status, activity.note) == (
        "note",
        status,
        status,
        "called the store",
    )
    assert activity.actor == actor
    anomaly.refresh_from_db()
    assert anomaly.status == status


def test_a_blank_note_is_refused(actor):
    anomaly = make(OPEN)

    with pytest.raises(ValueError, match="A note cannot be empty"):
        anomaly_note_add(anomaly_id=anomaly.pk, actor=actor, note="   ")

    assert activities(anomaly) == []


def test_a_note_on_a_missing_anomaly_is_refused(actor):
    with pytest.raises(TransitionError, match=r"^Anomaly 999999 not found\.$"):
        anomaly_note_add(anomaly_id=999_999, actor=actor, note="hello")


# --- snooze and unsnooze -----------------------------------------------------------------------


def test_snooze_for_days_remembers_severity_and_value_at_risk(actor):
    anomaly = make(ACK, severity="warning", value_at_risk=Decimal("80.50"), assignee=actor)

    anomaly_snooze(anomaly_id=anomaly.pk, actor=actor, days=7, note="waiting for delivery",
                   today=TODAY)  # fmt: skip

    anomaly.refresh_from_db()
    assert anomaly.status == SNOOZED
    assert anomaly.snoozed_until == dt.date(2024, 2, 8)
    assert anomaly.snoozed_severity == "warning"
    assert anomaly.snoozed_value_at_risk == Decimal("80.50")
    assert anomaly.assignee == actor  # the owner keeps it
    assert activities(anomaly) == [
        ("ops", "snooze", ACK, SNOOZED, "until 2024-02-08; waiting for delivery")
    ]


def test_snoozing_again_moves_the_day_but_the_same_day_is_skipped(actor):
    anomaly = make(SNOOZED)

    anomaly_snooze(anomaly_id=anomaly.pk, actor=actor, until=dt.date(2024, 2, 20), today=TODAY)
    with pytest.raises(TransitionError, match=r"is already snoozed until 2024-02-20\.$"):
        anomaly_snooze(anomaly_id=anomaly.pk, actor=actor, until=dt.date(2024, 2, 20), today=TODAY)

    anomaly.refresh_from_db()
    assert anomaly.snoozed_until == dt.date(2024, 2, 20)
    assert [a[1] for a in activities(anomaly)] == ["snooze"]


@pytest.mark.parametrize(
    ("until", "days", "message"),
    [
        (None, None, "Give either a date to snooze until or a number of days, not both."),
        (dt.date(2024, 2, 10), 3, "Give either a date to snooze until or a number of days"),
        (None, 0, "Snooze for 1 to 365 days, not 0."),
        (None, 366, "Snooze for 1 to 365 days, not 366."),
        (TODAY, None, "Snooze until a day after today (2024-02-01), not 2024-02-01."),
        (dt.date(2025, 2, 1), None, "Snooze for at most 365 days, not until 2025-02-01."),
    ],
)
def test_snooze_refuses_bad_dates(actor, until, days, message):
    anomaly = make(OPEN)

    with pytest.raises(ValueError, match=re.escape(message)):
        anomaly_snooze(anomaly_id=anomaly.pk, actor=actor, until=until, days=days, today=TODAY)

    anomaly.refresh_from_db()
    assert anomaly.status == OPEN
    assert activities(anomaly) == []


def test_unsnooze_reopens_and_clears_the_snooze(actor):
    anomaly = make(SNOOZED)

    anomaly_unsnooze(anomaly_id=anomaly.pk, actor=actor, note="delivery came early")

    anomaly.refresh_from_db()
    assert anomaly.status == OPEN
    assert (anomaly.snoozed_until, anomaly.snoozed_severity, anomaly.snoozed_value_at_risk) == (
        None,
        "",
        None,
    )
    assert activities(anomaly) == [
        ("ops", "unsnooze", SNOOZED, OPEN, "was snoozed until 2024-02-05; delivery came early")
    ]


def test_bulk_unsnooze_reports_the_rest(actor):
    snoozed = [make(SNOOZED), make(SNOOZED)]
    other = make(OPEN)

    report = anomalies_unsnooze(anomaly_ids=[*(a.pk for a in snoozed), other.pk], actor=actor)

    assert report.summary() == "2 anomalies unsnoozed; 1 skipped (1 open)."
