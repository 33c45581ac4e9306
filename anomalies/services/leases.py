"""Leases of detection runs and chunks: heartbeats while they work, the reaper when they stop.

A worker executing a chunk renews the chunk's lease (``lease_expires_at``) at its start, once
its data is loaded and before it persists; each renewal also extends the run's lease.
A process that dies (``kill -9``, out of memory, a lost machine) stops renewing, and
``detection_runs_reap`` (a beat task every minute, or ``manage.py reap_detection_runs``) marks
the chunk and its run failed with the reason. Rerunning the date then completes it: persistence
is idempotent, so the rerun ends with exactly the anomalies of a clean run.

- ``SHELFWATCH_RUN_LEASE_SECONDS`` (default 180): how long a running chunk, or a run being
  worked on, may go without a heartbeat. It must exceed the longest step between two beats
  (loading a chunk, one detector, or persisting it; about a second per 10 stores of 1,000 SKUs).
- ``SHELFWATCH_RUN_QUEUE_SECONDS`` (default 1800): how long a run may wait for a worker (a
  pending run, or a fanned-out run whose chunks wait in the queue behind other work).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from anomalies.models import RUN_ACTIVE_STATUSES, DetectionChunk, DetectionRun, RunStatus

# Beats closer together than this share of the lease are skipped: the lease stays far from
# running out while a chunk of many fast detectors costs a few UPDATEs, not dozens.
BEAT_SHARE_OF_LEASE = 1 / 6


def run_lease_seconds() -> int:
    """Heartbeat lease of running chunks and runs, in seconds (``SHELFWATCH_RUN_LEASE_SECONDS``)."""
    return int(settings.SHELFWATCH_RUN_LEASE_SECONDS)


def run_queue_seconds() -> int:
    """How long a run may wait for a worker, in seconds (``SHELFWATCH_RUN_QUEUE_SECONDS``)."""
    return int(settings.SHELFWATCH_RUN_QUEUE_SECONDS)


def detection_run_lease_renew(*, run_id: int, seconds: int | None = None) -> bool:
    """Record a heartbeat of the active run ``run_id`` and extend its lease to at least
    ``seconds`` (default ``run_lease_seconds()``) from now; a longer lease already granted is
    kept. Returns whether the run is still active (``False``: it finished or was reaped)."""
    now = timezone.now()
    until = now + dt.timedelta(seconds=run_lease_seconds() if seconds is None else seconds)
    updated = DetectionRun.objects.filter(pk=run_id, status__in=RUN_ACTIVE_STATUSES).update(
        heartbeat_at=now, lease_expires_at=Greatest(Coalesce(F("lease_expires_at"), until), until)
    )
    return updated == 1


def detection_chunk_lease_renew(*, chunk_id: int, run_id: int) -> bool:
    """Record a heartbeat of the running chunk ``chunk_id`` and of its run ``run_id``, and
    extend both leases by ``run_lease_seconds()``. Returns whether the chunk is still running
    in a run still active (``False``: the chunk was reaped, or its run failed meanwhile, e.g.
    because another chunk's worker died; its worker must not persist anything, since a rerun
    of the date may already be under way)."""
    now = timezone.now()
    until = now + dt.timedelta(seconds=run_lease_seconds())
    updated = DetectionChunk.objects.filter(pk=chunk_id, status=RunStatus.RUNNING).update(
        heartbeat_at=now, lease_expires_at=until
    )
    run_active = detection_run_lease_renew(run_id=run_id)
    return updated == 1 and run_active


@dataclass
class ChunkHeartbeat:
    """Renews a chunk's lease when called, at most every ``BEAT_SHARE_OF_LEASE`` of the lease.

    ``beat()`` may be called as often as convenient; ``beat(force=True)`` always writes and
    returns whether the chunk is still running.
    """

    chunk_id: int
    run_id: int
    _last: float = field(default_factory=time.monotonic)

    def beat(self, *, force: bool = False) -> bool:
        """Renew the lease if due (or ``force``); ``False`` when the chunk has been reaped or
        its run has failed."""
        if not force and time.monotonic() - self._last < run_lease_seconds() * BEAT_SHARE_OF_LEASE:
            return True
        self._last = time.monotonic()
        return detection_chunk_lease_renew(chunk_id=self.chunk_id, run_id=self.run_id)


@dataclass(frozen=True)
class ReapReport:
    """What ``detection_runs_reap`` marked failed: chunk ids, run ids, and each run's reason."""

    chunk_ids: list[int]
    run_ids: list[int]
    reasons: dict[int, str]

    def summary(self) -> str:
        """One line: ``"2 runs reaped (run 4: ...; run 7: ...)"`` or ``"nothing to reap"``."""
        if not self.run_ids and not self.chunk_ids:
            return "nothing to reap"
        details = "; ".join(f"run {run_id}: {self.reasons[run_id]}" for run_id in self.run_ids)
        return f"{len(self.run_ids)} run(s) and {len(self.chunk_ids)} chunk(s) reaped" + (
            f" ({details})" if details else ""
        )


def _when(value: dt.datetime | None) -> str:
    return "its start" if value is None else f"{value:%Y-%m-%d %H:%M:%S %Z}".strip()


def _fail(queryset, *, now: dt.datetime, reason: str, started: dt.datetime | None) -> int:
    return queryset.update(
        status=RunStatus.FAILED,
        lease_expires_at=None,
        error=reason,
        finished_at=now,
        duration_seconds=round((now - started).total_seconds(), 3) if started else None,
    )


def detection_runs_reap(*, now: dt.datetime | None = None) -> ReapReport:
    """Mark failed every running chunk and every pending or running run whose lease ran out by
    ``now`` (default: the current time), with the reason in their ``error``.

    A reaped chunk fails its run too (the rest of the run cannot be finished without it).
    Each change is a conditional UPDATE, so a worker that renews its lease at the same moment
    wins and is not reaped, and two reapers never reap the same row twice. A worker whose chunk
    was reaped finds out at its next heartbeat and persists nothing more. Rows without a lease
    (from before leases existed) count from their start, or their creation when pending.
    """
    now = now or timezone.now()
    lease = dt.timedelta(seconds=run_lease_seconds())
    queue = dt.timedelta(seconds=run_queue_seconds())
    chunk_expired = Q(lease_expires_at__lt=now) | Q(
        lease_expires_at__isnull=True, started_at__lt=now - lease
    )
    chunk_ids: list[int] = []
    run_ids: list[int] = []
    reasons: dict[int, str] = {}
    stale_chunks = DetectionChunk.objects.filter(chunk_expired, status=RunStatus.RUNNING)
    for chunk in stale_chunks.select_related("run").order_by("pk"):
        reason = (
            f"worker lost: chunk {chunk.index} on {chunk.worker or 'an unknown worker'} sent no "
            f"heartbeat since {_when(chunk.heartbeat_at or chunk.started_at)} (lease "
            f"{int(lease.total_seconds())} s); rerun the date to complete it"
        )
        mine = DetectionChunk.objects.filter(chunk_expired, pk=chunk.pk, status=RunStatus.RUNNING)
        if not _fail(mine, now=now, reason=reason, started=chunk.started_at):
            continue
        chunk_ids.append(chunk.pk)
        run = DetectionRun.objects.filter(pk=chunk.run_id, status__in=RUN_ACTIVE_STATUSES)
        if _fail(run, now=now, reason=reason, started=chunk.run.started_at):
            run_ids.append(chunk.run_id)
            reasons[chunk.run_id] = reason
    run_expired = (
        Q(lease_expires_at__lt=now)
        | Q(lease_expires_at__isnull=True, status=RunStatus.RUNNING, started_at__lt=now - lease)
        | Q(
            lease_expires_at__isnull=True,
            status=RunStatus.RUNNING,
            started_at__isnull=True,
            created_at__lt=now - lease,
        )
        | Q(lease_expires_at__isnull=True, status=RunStatus.PENDING, created_at__lt=now - queue)
    )
    stale_runs = DetectionRun.objects.filter(run_expired, status__in=RUN_ACTIVE_STATUSES)
    for run in stale_runs.order_by("pk"):
        if run.status == RunStatus.PENDING:
            reason = (
                f"never started: no worker took the run by {_when(run.lease_expires_at)} "
                "(are the broker and the Celery workers up?); request it again"
            )
        else:
            reason = (
                f"lost: no heartbeat since {_when(run.heartbeat_at or run.started_at)} (its "
                "process died, or its chunks never reached a worker); rerun the date"
            )
        mine = DetectionRun.objects.filter(run_expired, pk=run.pk, status=run.status)
        if _fail(mine, now=now, reason=reason, started=run.started_at):
            run_ids.append(run.pk)
            reasons[run.pk] = reason
    return ReapReport(chunk_ids=chunk_ids, run_ids=run_ids, reasons=reasons)
