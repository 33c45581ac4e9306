"""Bulk triage changes (admin actions, tasks) and the whole transition table: every change from
every state is allowed or refused.
"""

from __future__ import annotations

import datetime as dt

import pytest

from anomalies.models import Anomaly, AnomalyActivity
from anomalies.services import triage
from anomalies.services.triage import (
    DismissReason,
    TransitionError,
    anomalies_acknowledge,
    anomalies_assign,
    anomalies_dismiss,
    anomalies_resolve,
    anomaly_acknowledge,
    anomaly_assign,
    anomaly_dismiss,
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


# --- bulk --------------------------------------------------------------------------------------


def test_bulk_acknowledge_changes_open_rows_and_reports_the_rest(actor):
    open_rows = AnomalyFactory.create_batch(3, status=OPEN)
    resolved = AnomalyFactory.create_batch(2, status=RESOLVED)
    acked = AnomalyFactory(status=ACK)
    ids = [a.pk for a in [*open_rows, *resolved, acked]] + [999_999]

    report = anomalies_acknowledge(anomaly_ids=ids, actor=actor)

    assert sorted(report.changed_ids) == sorted(a.pk for a in open_rows)
    assert report.changed_count == 3
    assert report.skipped_count == 4
    assert report.skipped == {
        resolved[0].pk: "resolved",
        resolved[1].pk: "resolved",
        acked.pk: "acknowledged",
        999_999: "not found",
    }
    assert report.summary() == (
        "3 anomalies acknowledged; 4 skipped (2 resolved, 1 acknowledged, 1 not found)."
    )
    statuses = dict(Anomaly.objects.values_list("pk", "status"))
    assert [statuses[a.pk] for a in open_rows] == [ACK, ACK, ACK]
    assert [statuses[a.pk] for a in resolved] == [RESOLVED, RESOLVED]
    logged = AnomalyActivity.objects.values_list("anomaly_id", "action", "from_status")
    assert sorted(logged) == sorted((a.pk, "acknowledge", OPEN) for a in open_rows)


def test_bulk_assign_skips_rows_already_with_that_assignee(actor, bob):
    mine = AnomalyFactory(status=OPEN, assignee=actor)
    others = AnomalyFactory.create_batch(2, status=ACK, assignee=bob)
    closed = AnomalyFactory(status=DISMISSED)

    report = anomalies_assign(
        anomaly_ids=[mine.pk, *(a.pk for a in others), closed.pk], assignee=actor, actor=actor
    )

    assert sorted(report.changed_ids) == sorted(a.pk for a in others)
    assert report.summary() == (
        "2 anomalies assigned; 2 skipped (1 already assigned to ops, 1 dismissed)."
    )
    assert set(Anomaly.objects.filter(assignee=actor).values_list("pk", flat=True)) == {
        mine.pk,
        *(a.pk for a in others),
    }
    assert AnomalyActivity.objects.filter(action="assign").count() == 2


def test_bulk_resolve_and_dismiss_write_one_activity_per_changed_row(actor):
    rows = AnomalyFactory.create_batch(4, status=OPEN)

    resolved = anomalies_resolve(anomaly_ids=[r.pk for r in rows[:2]], actor=actor, note="fixed")
    dismissed = anomalies_dismiss(
        anomaly_ids=[r.pk for r in rows], actor=actor, reason=DismissReason.DUPLICATE
    )

    assert resolved.summary() == "2 anomalies resolved."
    assert dismissed.summary() == "2 anomalies dismissed; 2 skipped (2 resolved)."
    assert sorted(Anomaly.objects.values_list("status", flat=True)) == [
        DISMISSED,
        DISMISSED,
        RESOLVED,
        RESOLVED,
    ]
    assert sorted(AnomalyActivity.objects.values_list("action", "note")) == [
        ("dismiss", "reason: duplicate"),
        ("dismiss", "reason: duplicate"),
        ("resolve", "fixed"),
        ("resolve", "fixed"),
    ]


def test_bulk_change_spans_several_batches(actor, monkeypatch):
    monkeypatch.setattr(triage, "BATCH_SIZE_ROWS", 2)
    rows = AnomalyFactory.create_batch(5, status=OPEN)
    closed = AnomalyFactory(status=RESOLVED)

    report = anomalies_resolve(anomaly_ids=[r.pk for r in rows] + [closed.pk], actor=actor)

    assert report.changed_count == 5
    assert report.skipped == {closed.pk: "resolved"}
    assert Anomaly.objects.filter(status=RESOLVED).count() == 6
    assert AnomalyActivity.objects.count() == 5


def test_bulk_with_nothing_to_change_writes_nothing(actor):
    closed = AnomalyFactory(status=RESOLVED)

    report = anomalies_acknowledge(anomaly_ids=[closed.pk], actor=actor)

    assert report.changed_ids == []
    assert report.summary() == "0 anomalies acknowledged; 1 skipped (1 resolved)."
    assert AnomalyActivity.objects.count() == 0


# --- the whole table: every change from every state --------------------------------------------

CALLS = {
    "acknowledge": lambda a, actor, bob: anomaly_acknowledge(anomaly_id=a.pk, actor=actor),
    "assign": lambda a, actor, bob: anomaly_assign(anomaly_id=a.pk, assignee=bob, actor=actor),
    "snooze": lambda a, actor, bob: anomaly_snooze(
        anomaly_id=a.pk, actor=actor, until=dt.date(2024, 2, 10), today=TODAY
    ),
    "unsnooze": lambda a, actor, bob: anomaly_unsnooze(anomaly_id=a.pk, actor=actor),
    "resolve": lambda a, actor, bob: anomaly_resolve(anomaly_id=a.pk, actor=actor),
    "dismiss": lambda a, actor, bob: anomaly_dismiss(
        anomaly_id=a.pk, actor=actor, reason=DismissReason.DUPLICATE
    ),
}
# action: (the verb in a refusal, {from status: to status}); every other state is refused.
TABLE = {
    "acknowledge": ("acknowledged", {OPEN: ACK}),
    "assign": ("assigned", {OPEN: OPEN, ACK: ACK, SNOOZED: SNOOZED}),
    "snooze": ("snoozed", {OPEN: SNOOZED, ACK: SNOOZED, SNOOZED: SNOOZED}),
    "unsnooze": ("unsnoozed", {SNOOZED: OPEN}),
    "resolve": ("resolved", {OPEN: RESOLVED, ACK: RESOLVED, SNOOZED: RESOLVED}),
    "dismiss": ("dismissed", {OPEN: DISMISSED, ACK: DISMISSED, SNOOZED: DISMISSED}),
}


@pytest.mark.parametrize(("action", "status"), [(a, s) for a in TABLE for s in STATES])
def test_every_change_from_every_state_is_allowed_or_refused_by_the_table(
    actor, bob, action, status
):
    anomaly = make(status)
    verb, moves = TABLE[action]

    if status in moves:
        result = CALLS[action](anomaly, actor, bob)

        anomaly.refresh_from_db()
        assert result.status == anomaly.status == moves[status]
        [(who, logged_action, from_status, to_status, _note)] = activities(anomaly)
        assert (who, logged_action, from_status, to_status) == (
            "ops",
            action,
            status,
            moves[status],
        )
        # The snooze date exists exactly while snoozed (also a database constraint).
        assert (anomaly.snoozed_until is not None) == (anomaly.status == SNOOZED)
        assert (anomaly.closed_at is not None) == (anomaly.status in (RESOLVED, DISMISSED))
    else:
        with pytest.raises(TransitionError) as exc:
            CALLS[action](anomaly, actor, bob)

        assert str(exc.value) == f"Anomaly {anomaly.pk} is {status}; it cannot be {verb}."
        before = anomaly
        anomaly = Anomaly.objects.get(pk=before.pk)
        assert (anomaly.status, anomaly.assignee_id, anomaly.snoozed_until) == (
            before.status,
            before.assignee_id,
            before.snoozed_until,
        )
        assert activities(anomaly) == []


def test_dismiss_stores_the_reason_on_the_anomaly(actor):
    anomaly = make(SNOOZED)

    anomaly_dismiss(anomaly_id=anomaly.pk, actor=actor, reason=DismissReason.FALSE_POSITIVE)

    anomaly.refresh_from_db()
    assert anomaly.dismiss_reason == "false_positive"
    # Leaving the snoozed state clears the snooze and its baseline.
    assert (anomaly.snoozed_until, anomaly.snoozed_severity, anomaly.snoozed_value_at_risk) == (
        None,
        "",
        None,
    )
