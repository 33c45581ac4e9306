"""Celery tasks: thin wrappers that take ids or plain arguments and call one service.

Task names are stable strings: the beat schedules stored in the database refer to them.
"""

from __future__ import annotations

import datetime as dt

from celery import chord, shared_task
from django.utils import timezone

from anomalies.services.leases import (
    detection_run_lease_renew,
    detection_runs_reap,
    run_queue_seconds,
)
from anomalies.services.retention import anomalies_prune
from anomalies.services.runs import (
    DetectionRunInProgress,
    detection_chunk_execute,
    detection_chunks_execute,
    detection_run_create,
    detection_run_finalize,
    detection_run_start,
)
from anomalies.services.triage import anomalies_wake_acknowledged, anomalies_wake_snoozed


# ignore_result: nobody waits on it (the run row is the result), and sending it then needs no
# result backend: with Redis down, enqueueing fails on the broker alone, fast.
@shared_task(name="anomalies.run_detection", ignore_result=True)
def run_detection_task(run_id: int, chunk_locations: int | None = None) -> dict:
    """Start the pending ``DetectionRun`` ``run_id`` and fan it out: a chord of one
    ``detect_chunk`` task per chunk of locations, then one ``finish_detection`` task (counts
    and root-cause grouping across locations).

    Without a broker (eager tasks) the chord runs right here, chunk after chunk. With a broker
    but no result backend a chord cannot be tracked, so the chunks run in this task instead.
    Returns the run id and the number of chunks.
    """
    chunk_ids = detection_run_start(run_id=run_id, chunk_locations=chunk_locations)
    app = run_detection_task.app
    if not chunk_ids or (not app.conf.task_always_eager and not app.conf.result_backend):
        detection_chunks_execute(run_id=run_id, chunk_ids=chunk_ids)
    else:
        # The chunks may wait behind other work in the queue: the run's lease covers that wait,
        # each chunk's own heartbeat covers its execution.
        detection_run_lease_renew(run_id=run_id, seconds=run_queue_seconds())
        chord(detect_chunk_task.si(chunk_id) for chunk_id in chunk_ids)(
            finish_detection_task.si(run_id)
        )
    return {"run_id": run_id, "chunks": len(chunk_ids)}


@shared_task(name="anomalies.detect_chunk", acks_late=True, reject_on_worker_lost=True)
def detect_chunk_task(chunk_id: int) -> dict:
    """Detect and persist one chunk of locations; idempotent (a redelivered chunk that already
    succeeded does nothing). Returns the chunk's id, status and counts."""
    chunk = detection_chunk_execute(chunk_id=chunk_id)
    return {"chunk_id": chunk.pk, "status": chunk.status, "counts": chunk.counts}


@shared_task(name="anomalies.finish_detection")
def finish_detection_task(run_id: int) -> dict:
    """Finish a run after all its chunks: totals and root-cause grouping, once per run."""
    run = detection_run_finalize(run_id=run_id)
    return {"run_id": run.pk, "status": run.status, "counts": run.counts}


# A scheduled run that finds another run of its date in progress tries again this much later,
# this many times (about an hour), rather than being lost.
SCHEDULED_RETRY_SECONDS = 120
SCHEDULED_RETRIES = 30


@shared_task(name="anomalies.detect_scheduled", bind=True, max_retries=SCHEDULED_RETRIES)
def detect_scheduled_task(
    self, detectors: list[str] | None = None, as_of: str | None = None
) -> dict:
    """Run detection for ``as_of`` (ISO date; default: latest date with data), fanned out over
    the workers like any other run.

    This is what the beat schedules call, with ``detectors`` from the schedule's kwargs. When a
    run of the same date is in progress it retries later (on a worker; eagerly it raises).
    """
    day = dt.date.fromisoformat(as_of) if as_of else None
    try:
        run = detection_run_create(as_of=day, detectors=detectors, trigger="schedule")
    except DetectionRunInProgress as exc:
        if self.request.is_eager:
            raise
        raise self.retry(exc=exc, countdown=SCHEDULED_RETRY_SECONDS) from exc
    return run_detection_task(run.pk)


@shared_task(name="anomalies.reap_detection_runs")
def reap_detection_runs_task() -> dict:
    """Mark failed the runs and chunks whose worker stopped renewing their lease (every minute
    from beat). Returns the ids reaped."""
    report = detection_runs_reap()
    return {"runs": report.run_ids, "chunks": report.chunk_ids}


@shared_task(name="anomalies.wake_snoozed")
def wake_snoozed_task(today: str | None = None) -> dict:
    """Reopen the snoozed anomalies whose day has come, and the acknowledged ones whose
    condition (counted, next receipt, a date) has passed while detection still finds them, as
    of ``today`` (ISO date; default: the local date); returns the ids reopened. Idempotent: a
    second run the same day reopens nothing.
    """
    day = dt.date.fromisoformat(today) if today else timezone.localdate()
    woken = anomalies_wake_snoozed(today=day)
    returned = anomalies_wake_acknowledged(today=day)
    return {"today": day.isoformat(), "reopened": woken.changed_ids + returned.changed_ids}


@shared_task(name="anomalies.prune_retention")
def prune_retention_task() -> dict:
    """Delete anomalies closed longer ago than ``SHELFWATCH_RETENTION_DAYS`` (with their
    activity, outcomes and notification log) and expired sessions. Returns the counts."""
    report = anomalies_prune()
    return {
        "cutoff": report.cutoff.isoformat(),
        "deleted": report.deleted,
        "sessions": report.sessions,
    }
