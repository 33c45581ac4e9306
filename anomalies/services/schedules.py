"""Default celery-beat schedules, as data, applied idempotently.

Admins edit schedules in the admin (django-celery-beat's ``PeriodicTask``); ``schedules_ensure``
only creates the ones that are missing, by name, so their edits survive deploys and restarts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from anomalies.detectors import DAILY_SCHEDULE, detectors_scheduled

SCHEDULED_TASK_NAME = "anomalies.detect_scheduled"


@dataclass(frozen=True)
class DefaultSchedule:
    """A beat schedule ShelfWatch ships with: a crontab and the task it runs.

    Detection schedules give ``detectors`` (sent as the task's ``detectors`` kwarg to
    ``SCHEDULED_TASK_NAME``); other schedules give their own ``task`` and ``kwargs``.
    """

    name: str
    minute: str
    hour: str
    description: str
    detectors: tuple[str, ...] = ()
    task: str = SCHEDULED_TASK_NAME
    kwargs: dict[str, Any] = field(default_factory=dict)

    def task_kwargs(self) -> dict[str, Any]:
        """The kwargs stored on the ``PeriodicTask`` (JSON-serialisable)."""
        if self.task == SCHEDULED_TASK_NAME:
            return {"detectors": list(self.detectors), **self.kwargs}
        return dict(self.kwargs)


DEFAULT_SCHEDULES: tuple[DefaultSchedule, ...] = (
    DefaultSchedule(
        name="ML detection (every 6 hours)",
        minute="0",
        hour="0,6,12,18",
        detectors=detectors_scheduled("ml"),
        description="Isolation Forest over per SKU/location features.",
    ),
    DefaultSchedule(
        name="Ghost-stock detection (daily 04:30)",
        minute="30",
        hour="4",
        detectors=detectors_scheduled("ghost_stock"),
        description="Phantom inventory: book stock > 0 while sales stopped.",
    ),
    DefaultSchedule(
        name="Daily detection: demand, price, discrepancy (05:00)",
        minute="0",
        hour="5",
        detectors=detectors_scheduled(DAILY_SCHEDULE),
        description="The remaining detectors, once a day after the nightly data load.",
    ),
    DefaultSchedule(
        name="Wake snoozed anomalies (daily 00:15)",
        minute="15",
        hour="0",
        task="anomalies.wake_snoozed",
        description="Reopens snoozed anomalies whose snooze-until day has come.",
    ),
    DefaultSchedule(
        name="Reap lost detection runs (every minute)",
        minute="*",
        hour="*",
        task="anomalies.reap_detection_runs",
        description="Marks failed the detection runs and chunks whose worker stopped sending "
        "heartbeats (died or lost) for longer than SHELFWATCH_RUN_LEASE_SECONDS, with the reason.",
    ),
    DefaultSchedule(
        name="Notifications: critical and unacknowledged anomalies (every 15 minutes)",
        minute="*/15",
        hour="*",
        task="notifications.send",
        description="Digest per location to each enabled notification channel: new critical "
        "anomalies and anomalies left unacknowledged too long (never the same one twice).",
    ),
    DefaultSchedule(
        name="Retention: prune closed anomalies and expired sessions (daily 03:15)",
        minute="15",
        hour="3",
        task="anomalies.prune_retention",
        description="Deletes anomalies resolved or dismissed more than SHELFWATCH_RETENTION_DAYS "
        "days ago (with their activity log, outcome and notification log) and expired sessions.",
    ),
)


def schedules_ensure() -> tuple[list[str], list[str]]:
    """Create the default schedules that do not exist yet (matched by name).

    Existing ones are left exactly as they are, whatever an admin changed. Returns
    (names created, names left alone).
    """
    created: list[str] = []
    kept: list[str] = []
    with transaction.atomic():
        for default in DEFAULT_SCHEDULES:
            if PeriodicTask.objects.filter(name=default.name).exists():
                kept.append(default.name)
                continue
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=default.minute,
                hour=default.hour,
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone=settings.CELERY_TIMEZONE,
            )
            PeriodicTask.objects.create(
                name=default.name,
                task=default.task,
                crontab=crontab,
                kwargs=json.dumps(default.task_kwargs()),
                description=default.description,
                enabled=True,
            )
            created.append(default.name)
        if created:
            # Tell a running beat to reload: bulk-style changes do not signal it by themselves.
            PeriodicTasks.update_changed()
    return created, kept
