"""Default celery-beat schedules, as data, applied idempotently.

Admins edit schedules in the admin (django-celery-beat's ``PeriodicTask``); ``schedules_ensure``
only creates the ones that are missing, by name, so their edits survive deploys and restarts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks


@dataclass(frozen=True)
class DefaultSchedule:
    """A beat schedule ShelfWatch ships with: a crontab and the detectors it runs."""

    name: str
    minute: str
    hour: str
    detectors: tuple[str, ...]
    description: str


DEFAULT_SCHEDULES: tuple[DefaultSchedule, ...] = (
    DefaultSchedule(
        name="ML detection (every 6 hours)",
        minute="0",
        hour="0,6,12,18",
        detectors=("ml_detected",),
        description="Isolation Forest over per SKU/location features.",
    ),
    DefaultSchedule(
        name="Ghost-stock detection (daily 04:30)",
        minute="30",
        hour="4",
        detectors=("ghost_stock",),
        description="Phantom inventory: book stock > 0 while sales stopped.",
    ),
    DefaultSchedule(
        name="Daily detection: demand, price, discrepancy (05:00)",
        minute="0",
        hour="5",
        detectors=("demand_spike", "demand_drop", "price_anomaly", "inventory_discrepancy"),
        description="The remaining detectors, once a day after the nightly data load.",
    ),
)

SCHEDULED_TASK_NAME = "anomalies.detect_scheduled"


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
                task=SCHEDULED_TASK_NAME,
                crontab=crontab,
                kwargs=json.dumps({"detectors": list(default.detectors)}),
                description=default.description,
                enabled=True,
            )
            created.append(default.name)
        if created:
            # Tell a running beat to reload: bulk-style changes do not signal it by themselves.
            PeriodicTasks.update_changed()
    return created, kept
