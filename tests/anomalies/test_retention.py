"""Retention (anomalies/services/retention.py): closed anomalies past the retention period go,
with their activity, outcome and notification log; live ones and recent ones stay."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from anomalies.models import Anomaly, AnomalyActivity, AnomalyStatus
from anomalies.services.retention import RetentionError, anomalies_prune
from anomalies.services.schedules import schedules_ensure
from anomalies.services.triage import (
    DismissReason,
    anomaly_acknowledge,
    anomaly_dismiss,
    anomaly_note_add,
    anomaly_resolve,
)
from anomalies.tasks import prune_retention_task
from notifications.models import ChannelKind, DeliveryStatus, NotificationChannel, NotificationLog
from outcomes.models import Outcome, Verdict
from outcomes.services import outcome_record
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db

RETENTION_DAYS = 400


def _closed(actor, *, days_ago: float, dismiss: bool = False, **kwargs) -> Anomaly:
    """An anomaly resolved (or dismissed) by ``actor``, its closing backdated ``days_ago``."""
    anomaly = AnomalyFactory(**kwargs)
    anomaly_note_add(anomaly_id=anomaly.pk, actor=actor, note="counted the shelf")
    if dismiss:
        anomaly_dismiss(anomaly_id=anomaly.pk, actor=actor, reason=DismissReason.FALSE_POSITIVE)
    else:
        anomaly_resolve(anomaly_id=anomaly.pk, actor=actor)
    Anomaly.objects.filter(pk=anomaly.pk).update(
        closed_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    return anomaly


def _expired_session() -> str:
    store = SessionStore()
    store["user"] = "someone"
    store.create()
    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() - dt.timedelta(days=1)
    )
    return store.session_key


@pytest.fixture
def history(actor):
    """Old resolved (with outcome and a failed notification) and old dismissed anomalies,
    a recent resolved one, an old but still acknowledged one, a live session, an expired one."""
    old_resolved = _closed(actor, days_ago=RETENTION_DAYS + 5)
    outcome_record(anomaly_id=old_resolved.pk, verdict=Verdict.TRUE_POSITIVE, actor=actor)
    channel = NotificationChannel.objects.create(
        name="ops mail", kind=ChannelKind.EMAIL, target="ops@example.com"
    )
    NotificationLog.objects.create(
        channel=channel, anomaly=old_resolved, reason="critical", status=DeliveryStatus.SENT
    )
    old_dismissed = _closed(actor, days_ago=RETENTION_DAYS + 1, dismiss=True)
    recent = _closed(actor, days_ago=RETENTION_DAYS - 1)
    live = AnomalyFactory()
    anomaly_acknowledge(anomaly_id=live.pk, actor=actor)
    # acknowledged long ago: its whole log stays with it
    AnomalyActivity.objects.filter(anomaly=live).update(
        created_at=timezone.now() - dt.timedelta(days=RETENTION_DAYS * 2)
    )
    live_session = SessionStore()
    live_session.create()
    return {
        "old": [old_resolved.pk, old_dismissed.pk],
        "recent": recent.pk,
        "live": live.pk,
        "expired_session": _expired_session(),
        "live_session": live_session.session_key,
    }


def test_prune_deletes_old_closed_anomalies_with_what_hangs_off_them(history, settings):
    settings.SHELFWATCH_RETENTION_DAYS = RETENTION_DAYS
    report = anomalies_prune()
    assert report.dry_run is False
    assert report.anomalies == 2
    # each: a note and a resolve/dismiss; the resolved one also its outcome's log entry
    assert report.activities == 5
    assert report.deleted["outcomes.Outcome"] == 1
    assert report.deleted["notifications.NotificationLog"] == 1
    assert report.sessions == 1
    assert not Anomaly.objects.filter(pk__in=history["old"]).exists()
    assert set(Anomaly.objects.values_list("pk", flat=True)) == {
        history["recent"],
        history["live"],
    }
    assert not AnomalyActivity.objects.filter(anomaly_id__in=history["old"]).exists()
    assert AnomalyActivity.objects.filter(anomaly_id=history["live"]).count() == 1
    assert Outcome.objects.count() == 0 and NotificationLog.objects.count() == 0
    assert list(Session.objects.values_list("session_key", flat=True)) == [history["live_session"]]
    # idempotent: nothing left to prune
    again = anomalies_prune()
    assert (again.anomalies, again.deleted, again.sessions) == (0, {}, 0)


def test_dry_run_counts_exactly_and_deletes_nothing(history, settings):
    settings.SHELFWATCH_RETENTION_DAYS = RETENTION_DAYS
    before = (Anomaly.objects.count(), AnomalyActivity.objects.count(), Session.objects.count())
    dry = anomalies_prune(dry_run=True)
    assert dry.dry_run is True
    assert (dry.anomalies, dry.activities, dry.sessions) == (2, 5, 1)
    after = (Anomaly.objects.count(), AnomalyActivity.objects.count(), Session.objects.count())
    assert after == before
    assert anomalies_prune().deleted == dry.deleted


def test_batches_cover_every_old_anomaly(actor):
    old = [_closed(actor, days_ago=50).pk for _ in range(5)]
    report = anomalies_prune(older_than_days=30, batch_size=2)
    assert report.anomalies == 5
    assert not Anomaly.objects.filter(pk__in=old).exists()


def test_reopened_anomaly_is_not_pruned_even_if_it_was_closed_long_ago(actor):
    anomaly = _closed(actor, days_ago=50)
    Anomaly.objects.filter(pk=anomaly.pk).update(status=AnomalyStatus.OPEN)
    assert anomalies_prune(older_than_days=30).anomalies == 0
    assert Anomaly.objects.filter(pk=anomaly.pk).exists()


def test_a_grouped_child_outlives_its_pruned_parent(actor):
    parent = _closed(actor, days_ago=50)
    child = AnomalyFactory(parent=parent)
    anomalies_prune(older_than_days=30)
    child.refresh_from_db()
    assert child.parent_id is None


def test_retention_below_one_day_is_refused(actor):
    with pytest.raises(RetentionError, match="at least 1 day"):
        anomalies_prune(older_than_days=0)
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("prune_anomalies", "--days", "0")


def test_command_dry_run_prints_counts_then_the_real_run_deletes(history, settings):
    settings.SHELFWATCH_RETENTION_DAYS = RETENTION_DAYS
    out = io.StringIO()
    call_command("prune_anomalies", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Would delete 2 anomalies.Anomaly" in text
    assert "Would delete 5 anomalies.AnomalyActivity" in text
    assert "Would delete 1 expired sessions" in text
    assert Anomaly.objects.filter(pk__in=history["old"]).count() == 2

    out = io.StringIO()
    call_command("prune_anomalies", "--days", str(RETENTION_DAYS + 3), stdout=out)
    # only the one closed 405 days ago is past 403 days
    assert "Deleted 1 anomalies.Anomaly" in out.getvalue()
    assert Anomaly.objects.filter(pk__in=history["old"]).count() == 1


def test_task_prunes_and_the_default_schedule_runs_it(history, settings):
    settings.SHELFWATCH_RETENTION_DAYS = RETENTION_DAYS
    schedules_ensure()
    schedule = PeriodicTask.objects.get(task="anomalies.prune_retention")
    assert (schedule.crontab.hour, schedule.crontab.minute) == ("3", "15")
    assert schedule.enabled and json.loads(schedule.kwargs) == {}
    result = prune_retention_task.apply(kwargs=json.loads(schedule.kwargs)).get()
    assert result["deleted"]["anomalies.Anomaly"] == 2
    assert result["sessions"] == 1
    json.dumps(result)  # a JSON result backend can store it
