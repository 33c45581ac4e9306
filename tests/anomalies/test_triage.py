"""Triage services: every transition allowed and refused, the activity log, bulk reports."""

from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from anomalies.models import Anomaly, AnomalyActivity, AnomalyStatus
from anomalies.services import triage
from anomalies.services.triage import (
    DismissReason,
    TransitionError,
    anomalies_acknowledge,
    anomalies_assign,
    anomalies_dismiss,
    anomalies_resolve,
    anomalies_snooze,
    anomalies_unsnooze,
    anomaly_acknowledge,
    anomaly_assign,
    anomaly_dismiss,
    anomaly_note_add,
    anomaly_resolve,
    anomaly_snooze,
    anomaly_unsnooze,
)
from tests.factories import AnomalyFactory, UserFactory

pytestmark = pytest.mark.django_db

OPEN, ACK, SNOOZED, RESOLVED, DISMISSED = (
    AnomalyStatus.OPEN,
    AnomalyStatus.ACKNOWLEDGED,
    AnomalyStatus.SNOOZED,
    AnomalyStatus.RESOLVED,
    AnomalyStatus.DISMISSED,
)
STATES = [OPEN, ACK, SNOOZED, RESOLVED, DISMISSED]
TODAY = dt.date(2024, 2, 1)
SNOOZED_UNTIL = dt.date(2024, 2, 5)


def make(status: str, **kwargs) -> Anomaly:
    """An anomaly in ``status``; a snoozed one gets the snooze fields a snooze would set."""
    if status == SNOOZED:
        kwargs.setdefault("snoozed_until", SNOOZED_UNTIL)
        kwargs.setdefault("snoozed_severity", "warning")
        kwargs.setdefault("snoozed_value_at_risk", Decimal("95.00"))
    return AnomalyFactory(status=status, **kwargs)


@pytest.fixture
def actor(db):
    return UserFactory(username="ops")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


def activities(anomaly: Anomaly) -> list[tuple]:
    return list(
        AnomalyActivity.objects.filter(anomaly=anomaly)
        .order_by("id")
        .values_list("actor__username", "action", "from_status", "to_status", "note")
    )


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


# --- stale and concurrent changes --------------------------------------------------------------


def test_stale_second_transition_gets_transition_error(actor, bob):
    anomaly = AnomalyFactory(status=OPEN)
    # Two people opened the same open anomaly; the first resolves it ...
    seen_by_bob = Anomaly.objects.get(pk=anomaly.pk)
    anomaly_resolve(anomaly_id=anomaly.pk, actor=actor)
    assert seen_by_bob.status == OPEN

    # ... the second, still looking at "open", tries to dismiss it.
    with pytest.raises(TransitionError, match=f"Anomaly {anomaly.pk} is resolved"):
        anomaly_dismiss(anomaly_id=seen_by_bob.pk, actor=bob, reason=DismissReason.EXPECTED)

    anomaly.refresh_from_db()
    assert anomaly.status == RESOLVED
    assert [a[1] for a in activities(anomaly)] == ["resolve"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs row locks (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_simultaneous_transitions_exactly_one_wins():
    actor = UserFactory(username="ops")
    bob = UserFactory(username="bob")
    anomaly = AnomalyFactory(status=OPEN)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(name, call):
        barrier.wait()
        try:
            call()
            outcomes[name] = "ok"
        except TransitionError:
            outcomes[name] = "refused"
        finally:
            connections.close_all()

    threads = [
        threading.Thread(
            target=attempt,
            args=("resolve", lambda: anomaly_resolve(anomaly_id=anomaly.pk, actor=actor)),
        ),
        threading.Thread(
            target=attempt,
            args=(
                "dismiss",
                lambda: anomaly_dismiss(
                    anomaly_id=anomaly.pk, actor=bob, reason=DismissReason.FALSE_POSITIVE
                ),
            ),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["ok", "refused"]
    anomaly.refresh_from_db()
    winner = "resolve" if outcomes["resolve"] == "ok" else "dismiss"
    assert anomaly.status == {"resolve": RESOLVED, "dismiss": DISMISSED}[winner]
    assert [a[1] for a in activities(anomaly)] == [winner]


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


# --- someone else changed it -------------------------------------------------------------------


def test_expected_status_refuses_a_change_decided_on_a_stale_view(actor, bob):
    anomaly = make(OPEN)
    # Bob acknowledges it while ops still looks at "open" ...
    anomaly_acknowledge(anomaly_id=anomaly.pk, actor=bob)

    # ... so ops's resolve, allowed from acknowledged, is refused rather than overruling bob.
    with pytest.raises(TransitionError) as exc:
        anomaly_resolve(anomaly_id=anomaly.pk, actor=actor, expected_status=OPEN)

    assert str(exc.value) == (
        f"Anomaly {anomaly.pk} was changed by someone else: now acknowledged."
    )
    anomaly.refresh_from_db()
    assert anomaly.status == ACK
    assert [a[1] for a in activities(anomaly)] == ["acknowledge"]


def test_expected_status_that_still_holds_lets_the_change_through(actor):
    anomaly = make(ACK)

    anomaly_resolve(anomaly_id=anomaly.pk, actor=actor, expected_status=ACK)

    anomaly.refresh_from_db()
    assert anomaly.status == RESOLVED


def _write_between_read_and_update(monkeypatch, **change):
    """Make another writer change the rows after a transition read them, before its UPDATE.

    (What row locks prevent on PostgreSQL; the guarded UPDATE is what catches it regardless.)
    """
    read = triage._lock_rows

    def read_then_other_writer(ids):
        rows = read(ids)
        Anomaly.objects.filter(pk__in=ids).update(**change)
        return rows

    monkeypatch.setattr(triage, "_lock_rows", read_then_other_writer)


def test_a_status_change_underneath_is_refused_with_the_new_state(actor, monkeypatch):
    anomaly = make(OPEN)
    _write_between_read_and_update(monkeypatch, status=RESOLVED)

    with pytest.raises(TransitionError) as exc:
        anomaly_dismiss(anomaly_id=anomaly.pk, actor=actor, reason=DismissReason.EXPECTED)

    assert str(exc.value) == f"Anomaly {anomaly.pk} was changed by someone else: now resolved."
    assert not AnomalyActivity.objects.exists()


def test_an_assignee_change_underneath_is_not_overwritten(actor, bob, monkeypatch):
    anomaly = make(OPEN)
    _write_between_read_and_update(monkeypatch, assignee=bob)

    with pytest.raises(TransitionError, match="was changed by someone else: now open"):
        anomaly_assign(anomaly_id=anomaly.pk, assignee=actor, actor=actor)

    assert not AnomalyActivity.objects.exists()


def test_a_bulk_change_with_rows_changed_underneath_changes_nothing(actor, monkeypatch):
    rows = [make(OPEN), make(OPEN, assignee=actor)]
    _write_between_read_and_update(monkeypatch, status=ACK)

    with pytest.raises(TransitionError) as exc:
        anomalies_resolve(anomaly_ids=[r.pk for r in rows], actor=actor)

    # The two rows were read with different assignees, so two guarded UPDATEs; the first one
    # that misses stops the whole change.
    assert str(exc.value) == (
        f"Anomaly {rows[0].pk} was changed by someone else: now acknowledged."
    )
    assert not AnomalyActivity.objects.exists()


def test_bulk_summary_counts_rows_changed_by_someone_else(actor, bob):
    stale = make(ACK)
    fresh = make(OPEN)

    report = anomalies_snooze(
        anomaly_ids=[stale.pk, fresh.pk], actor=actor, days=3, today=TODAY, expected_status=OPEN
    )

    assert report.changed_ids == [fresh.pk]
    assert report.summary() == (
        "1 anomaly snoozed; 1 skipped (1 changed by someone else: now acknowledged)."
    )


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
