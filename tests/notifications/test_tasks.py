"""The notifications task and its beat schedule."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django_celery_beat.models import PeriodicTask

from anomalies.models import Anomaly, Severity
from anomalies.services.schedules import schedules_ensure
from config.celery import app
from notifications.models import ChannelKind, NotificationChannel
from notifications.tasks import send_notifications_task
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db

SCHEDULE = "Notifications: critical and unacknowledged anomalies (every 15 minutes)"


def test_task_sends_the_digests_and_returns_the_report():
    NotificationChannel.objects.create(name="mail", kind=ChannelKind.EMAIL, target="a@x.example")
    anomaly = AnomalyFactory(severity=Severity.CRITICAL)
    Anomaly.objects.filter(pk=anomaly.pk).update(created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))

    result = send_notifications_task.delay().get()

    assert result == {"messages_sent": 1, "entries_sent": 2, "failures": []}
    assert len(mail.outbox) == 1


def test_beat_schedule_calls_the_registered_task_every_15_minutes():
    created, _ = schedules_ensure()

    assert SCHEDULE in created
    task = PeriodicTask.objects.get(name=SCHEDULE)
    assert task.task == "notifications.send"
    assert task.task in app.tasks
    assert (task.crontab.minute, task.crontab.hour) == ("*/15", "*")
    assert json.loads(task.kwargs) == {}
    assert schedules_ensure()[0] == []  # idempotent
