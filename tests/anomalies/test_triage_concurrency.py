"""Triage changes racing each other: stale views (``expected_status``), changes underneath a
running transition, and simultaneous transitions where exactly one wins.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from anomalies.models import Anomaly, AnomalyActivity
from anomalies.services import triage
from anomalies.services.triage import (
    DismissReason,
    TransitionError,
    anomalies_resolve,
    anomalies_snooze,
    anomaly_acknowledge,
    anomaly_assign,
    anomaly_dismiss,
    anomaly_resolve,
)
from tests.anomalies.triage_support import (
    ACK,
    DISMISSED,
    OPEN,
    RESOLVED,
    TODAY,
    activities,
    make,
)
from tests.factories import AnomalyFactory, UserFactory

pytestmark = pytest.mark.django_db


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
    # Superusers: the services re-check the actor's stores, which this test is not about.
    actor = UserFactory(username="ops", is_superuser=True)
    bob = UserFactory(username="bob", is_superuser=True)
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
