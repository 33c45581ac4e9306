"""The triage lifecycle over time: snoozes ending by themselves (the daily wake-up task and its
schedule).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django_celery_beat.models import PeriodicTask

from anomalies.models import Anomaly
from anomalies.services import triage
from anomalies.services.schedules import schedules_ensure
from anomalies.services.triage import (
    anomalies_wake_snoozed,
)
from anomalies.tasks import wake_snoozed_task
from tests.anomalies.triage_support import (
    OPEN,
    SNOOZED,
    activities,
)
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db


# --- snoozes end -------------------------------------------------------------------------------


def test_wake_reopens_the_snoozes_whose_day_has_come_and_only_once(existing):
    due = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 5))
    overdue = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 1))
    later = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 6))
    untouched = AnomalyFactory(status=OPEN)

    report = anomalies_wake_snoozed(today=dt.date(2024, 2, 5))
    again = anomalies_wake_snoozed(today=dt.date(2024, 2, 5))

    assert sorted(report.changed_ids) == sorted([due.pk, overdue.pk])
    assert report.summary() == "2 anomalies reopened."
    assert again.summary() == "0 anomalies reopened."
    statuses = dict(Anomaly.objects.values_list("pk", "status"))
    assert statuses == {due.pk: OPEN, overdue.pk: OPEN, later.pk: SNOOZED, untouched.pk: OPEN}
    assert activities(due) == [
        (None, "wake", SNOOZED, OPEN, "snooze ended (snoozed until 2024-02-05)")
    ]
    due.refresh_from_db()
    assert due.snoozed_until is None


def test_wake_skips_one_snoozed_again_to_a_later_day_meanwhile(monkeypatch):
    anomaly = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 5))
    read = triage._lock_rows

    def snoozed_again_before_the_lock(ids):
        Anomaly.objects.filter(pk__in=ids).update(snoozed_until=dt.date(2024, 3, 1))
        return read(ids)

    monkeypatch.setattr(triage, "_lock_rows", snoozed_again_before_the_lock)

    report = anomalies_wake_snoozed(today=dt.date(2024, 2, 5))

    assert report.skipped == {anomaly.pk: "snoozed until 2024-03-01"}
    anomaly.refresh_from_db()
    assert anomaly.status == SNOOZED


def test_wake_task_takes_an_iso_date_and_returns_what_it_reopened():
    anomaly = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 5))

    result = wake_snoozed_task(today="2024-02-05")

    assert result == {"today": "2024-02-05", "reopened": [anomaly.pk]}


def test_setup_schedules_adds_the_daily_wake_up_once():
    created, _kept = schedules_ensure()
    created_again, kept_again = schedules_ensure()

    name = "Wake snoozed anomalies (daily 00:15)"
    assert name in created
    assert name not in created_again and name in kept_again
    task = PeriodicTask.objects.get(name=name)
    assert task.task == "anomalies.wake_snoozed"
    assert json.loads(task.kwargs) == {}
    assert (task.crontab.minute, task.crontab.hour) == ("15", "0")
    from config.celery import app

    assert "anomalies.wake_snoozed" in app.tasks
