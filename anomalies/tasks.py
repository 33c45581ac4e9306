"""Celery tasks: thin wrappers that take ids or plain arguments and call one service.

Task names are stable strings: the beat schedules stored in the database refer to them.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from anomalies.services.detection import detection_run, detection_run_execute
from anomalies.services.triage import anomalies_wake_snoozed


@shared_task(name="anomalies.run_detection")
def run_detection_task(run_id: int) -> dict:
    """Execute the pending ``DetectionRun`` ``run_id``; returns its id, status and counts."""
    run = detection_run_execute(run_id=run_id)
    return {"run_id": run.pk, "status": run.status, "counts": run.counts}


@shared_task(name="anomalies.detect_scheduled")
def detect_scheduled_task(detectors: list[str] | None = None, as_of: str | None = None) -> dict:
    """Run detection now for ``as_of`` (ISO date; default: latest date with data).

    This is what the beat schedules call, with ``detectors`` from the schedule's kwargs.
    """
    day = dt.date.fromisoformat(as_of) if as_of else None
    run = detection_run(as_of=day, detectors=detectors, trigger="schedule")
    return {"run_id": run.pk, "status": run.status, "counts": run.counts}


@shared_task(name="anomalies.wake_snoozed")
def wake_snoozed_task(today: str | None = None) -> dict:
    """Reopen the snoozed anomalies whose day has come, as of ``today`` (ISO date; default:
    the local date). Idempotent: a second run the same day reopens nothing.
    """
    day = dt.date.fromisoformat(today) if today else timezone.localdate()
    report = anomalies_wake_snoozed(today=day)
    return {"today": day.isoformat(), "reopened": report.changed_ids}
