"""Triage services: every transition allowed and refused, the activity log, bulk reports."""

from __future__ import annotations

import threading

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
    anomaly_acknowledge,
    anomaly_assign,
    anomaly_dismiss,
    anomaly_resolve,
)
from tests.factories import AnomalyFactory, UserFactory

pytestmark = pytest.mark.django_db

OPEN, ACK, RESOLVED, DISMISSED = (
    AnomalyStatus.OPEN,
    AnomalyStatus.ACKNOWLEDGED,
    AnomalyStatus.RESOLVED,
    AnomalyStatus.DISMISSED,
)


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
