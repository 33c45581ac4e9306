"""Detection runs: create, request, start, execute chunk by chunk, finish, and backfill.

Runs the enabled detectors (``anomalies.detectors``) as of a date; Celery tasks, management
commands, the admin and the API all start detection here. Findings become anomalies in
``anomalies.services.persistence``; root-cause grouping is ``anomalies.services.grouping``.

A run is split into chunks of locations (``DetectionChunk``): ``detection_run_start`` claims
the run and plans the chunks, ``detection_chunk_execute`` loads, detects and persists one
chunk in its own transaction, and ``detection_run_finalize`` sums the counts and runs the
root-cause grouping across locations once. In-process (``detection_run_execute``) they run one
after another; ``anomalies.tasks`` runs the chunks as a Celery chord on any number of workers.
Detection is per location (the detectors' statistics are per SKU-location or per location), so
the split does not change what is found; the one exception is the demand-spike cold start, where
a location with too little history borrows the distribution pooled over the locations it is
loaded with (its chunk).

False-discovery control: ``findings_fdr_control`` applies Benjamini-Hochberg per location over the
findings of all detectors that give a p-value (``anomalies.detectors.fdr``), at the level of
the ``DetectionPolicy`` read when the run starts (``DetectionRun.fdr_q``). Per-location control
is chunk-local, so chunking does not change it either. The run records the hypotheses tested,
its new anomalies, how many of them were controlled and the expected number of false alarms
among those (q x their number).

Faults: one run per as-of date may be pending or running at a time (a database constraint; a
second request raises ``DetectionRunInProgress``). Runs and chunks hold leases that their
workers renew (``anomalies.services.leases``); the reaper fails those whose worker died.
Enqueueing with the broker down fails within seconds (``DetectionEnqueueError``) and records
the run as failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Subquery, Sum
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from anomalies.detectors import REGISTRY, MissingInput
from anomalies.detectors.base import FINDING_COLUMNS, DetectionInput
from anomalies.detectors.fdr import FDR_Q_DEFAULT, fdr_control
from anomalies.models import (
    RUN_ACTIVE_STATUSES,
    DetectionChunk,
    DetectionPolicy,
    DetectionRun,
    DetectorConfig,
    RunStatus,
)
from anomalies.services.grouping import anomalies_group_root_causes
from anomalies.services.leases import (
    ChunkHeartbeat,
    detection_run_lease_renew,
    run_lease_seconds,
    run_queue_seconds,
)
from anomalies.services.loading import (
    HISTORY_DAYS,
    DetectionFrames,
    detection_input_load,
    detection_window_load,
    latest_data_date,
)
from anomalies.services.persistence import anomalies_persist
from inventory.importing.price_points import price_points_refresh
from inventory.importing.validation import plausible_dates
from inventory.models import Location, StockAdjustment, StockLevel

logger = logging.getLogger(__name__)


class DetectionError(ValueError):
    """A detection request that cannot run: unknown detector, bad date, no data."""


class DetectionRunInProgress(DetectionError):
    """Another run of the same as-of date is pending or running (``run``: that run)."""

    def __init__(self, message: str, *, run: DetectionRun | None = None) -> None:
        super().__init__(message)
        self.run = run


class DetectionEnqueueError(RuntimeError):
    """The run could not be handed to the broker (unreachable); the run is recorded failed."""

    def __init__(self, message: str, *, run: DetectionRun) -> None:
        super().__init__(message)
        self.run = run


def detector_settings() -> dict[str, dict[str, Any]]:
    """Effective settings of every detector: ``{name: {"enabled": bool, "params": {...}}}``.

    Defaults come from the detector modules; ``DetectorConfig`` rows edited in the admin
    override ``enabled`` and individual parameters.
    """
    overrides = {cfg.detector: cfg for cfg in DetectorConfig.objects.all()}
    result: dict[str, dict[str, Any]] = {}
    for name, spec in REGISTRY.items():
        cfg = overrides.get(name)
        params = dict(spec.default_params)
        if cfg is not None:
            params.update(cfg.params or {})
        enabled = cfg.enabled if cfg is not None else spec.enabled_by_default
        result[name] = {"enabled": enabled, "params": params}
    return result


def detection_policy_fdr_q() -> float:
    """The false-discovery rate of the ``DetectionPolicy`` row (``FDR_Q_DEFAULT`` without one)."""
    q = DetectionPolicy.objects.filter(pk=DetectionPolicy.SINGLETON_PK).values_list(
        "fdr_q", flat=True
    )
    return next(iter(q), FDR_Q_DEFAULT)


@dataclass(frozen=True)
class DetectionDaySummary:
    """The new findings of the latest day with a succeeded run, over every run of that day.

    ``new_findings``: anomalies opened that day; ``controlled``: those with a p-value, kept by
    false-discovery control; ``expected_false_alarms``: the expected number of false alarms
    among those (q x their number, summed over the day's runs; ``None`` when none of the
    day's runs was controlled, i.e. they ran before the policy existed). ``q_min``/``q_max``:
    the levels the day's runs used.
    """

    as_of: dt.date
    new_findings: int
    controlled: int
    expected_false_alarms: float | None
    q_min: float | None
    q_max: float | None

    @classmethod
    def from_values(cls, values: dict[str, Any] | None) -> DetectionDaySummary | None:
        """From the values of ``detection_day_summary_expressions()`` (keys without their
        ``DAY_SUMMARY_PREFIX``); ``None`` when there is no succeeded run."""
        if not values or values.get("as_of") is None:
            return None
        return cls(
            as_of=values["as_of"],
            new_findings=int(values.get("new_findings") or 0),
            controlled=int(values.get("controlled") or 0),
            expected_false_alarms=values.get("expected_false_alarms"),
            q_min=values.get("q_min"),
            q_max=values.get("q_max"),
        )


DAY_SUMMARY_PREFIX = "detection_day_"


def detection_day_summary_expressions() -> dict[str, Subquery]:
    """Scalar subqueries giving the ``DetectionDaySummary`` of the latest day, by annotation
    name (``DAY_SUMMARY_PREFIX`` + field).

    Expressions rather than a query of their own so that a list can annotate its page query
    with them: the triage changelist states the day's expected false alarms without a query
    more (the subqueries are uncorrelated: the database evaluates each once, not per row).
    """
    latest = (
        DetectionRun.objects.filter(status=RunStatus.SUCCEEDED)
        .order_by("-as_of")
        .values("as_of")[:1]
    )
    day_runs = DetectionRun.objects.filter(status=RunStatus.SUCCEEDED, as_of=Subquery(latest))

    def total(aggregate: Any) -> Subquery:
        # One group (every run of the day) and one value.
        return Subquery(day_runs.order_by().values("status").annotate(v=aggregate).values("v"))

    expressions = {
        "as_of": Subquery(latest),
        "new_findings": total(Sum("new_findings")),
        "controlled": total(Sum("new_findings_controlled")),
        "expected_false_alarms": total(Sum("expected_false_alarms")),
        "q_min": total(Min("fdr_q")),
        "q_max": total(Max("fdr_q")),
    }
    return {DAY_SUMMARY_PREFIX + name: value for name, value in expressions.items()}


def detection_day_summary_from(obj: Any) -> DetectionDaySummary | None:
    """The summary carried by ``obj``, a row annotated with the day-summary expressions."""
    n = len(DAY_SUMMARY_PREFIX)
    return DetectionDaySummary.from_values(
        {name[n:]: getattr(obj, name, None) for name in detection_day_summary_expressions()}
    )


def detection_day_summary() -> DetectionDaySummary | None:
    """The ``DetectionDaySummary`` of the latest day with a succeeded run (one query)."""
    expressions = detection_day_summary_expressions()
    row = DetectionRun.objects.order_by().annotate(**expressions).values(*expressions).first()
    n = len(DAY_SUMMARY_PREFIX)
    return DetectionDaySummary.from_values({k[n:]: v for k, v in (row or {}).items()})


def _validate_detectors(detectors: list[str] | None) -> list[str]:
    if not detectors:
        return list(REGISTRY)
    unknown = [name for name in detectors if name not in REGISTRY]
    if unknown:
        raise DetectionError(
            f"Unknown detector(s): {', '.join(unknown)}. Known: {', '.join(REGISTRY)}."
        )
    return list(dict.fromkeys(detectors))


def _resolve_as_of(as_of: dt.date | None, *, history_days: int) -> dt.date:
    latest = latest_data_date()
    if latest is None:
        raise DetectionError("No sales data has been imported yet; import a bundle first.")
    if as_of is None:
        return latest
    detection_as_of_check(as_of=as_of, history_days=history_days)
    if as_of > latest:
        # Book stock may run later than sales (a store whose sales stopped is what ghost-stock
        # detection looks for); past both, every detector would see days not imported yet.
        stock_latest = _imported_stock_latest(after=latest)
        if stock_latest is None or as_of > stock_latest:
            raise DetectionError(
                f"as-of date {as_of} is after the end of the data (sales up to {latest}"
                + (f", book stock up to {stock_latest}" if stock_latest else "")
                + "); import the missing days first, or run as of a date with data."
            )
    return as_of


def _imported_stock_latest(*, after: dt.date) -> dt.date | None:
    """The latest imported book-stock day after ``after``, or ``None``.

    A cycle count recorded today writes the ``StockLevel`` of its stock date with a
    ``StockAdjustment`` beside it; that one row does not mean the data runs to today (it made
    a run for any later day "succeed" on days nobody imported), so such rows are left out.
    """
    counted = StockAdjustment.objects.filter(
        product_id=OuterRef("product_id"),
        location_id=OuterRef("location_id"),
        date=OuterRef("date"),
    )
    return (
        StockLevel.objects.filter(date__gt=after)
        .exclude(Exists(counted))
        .aggregate(latest=Max("date"))["latest"]
    )


def detection_as_of_check(*, as_of: dt.date, history_days: int = HISTORY_DAYS) -> None:
    """Refuse an implausible as-of date: outside the dates an import accepts
    (``plausible_dates()``: ``SHELFWATCH_DATE_MIN`` .. today + ``SHELFWATCH_DATE_MAX_AHEAD_DAYS``;
    a typo such as 0202-01-01, or 9999-12-31, which pandas cannot even represent), or one whose
    history window (``history_days`` days before it) pandas cannot represent. Raises
    ``DetectionError``; pure apart from today and the settings.
    """
    earliest, latest = plausible_dates()
    if not earliest <= as_of <= latest:
        raise DetectionError(
            f"as-of date {as_of} is outside the plausible range {earliest} .. {latest} "
            "(SHELFWATCH_DATE_MIN, SHELFWATCH_DATE_MAX_AHEAD_DAYS)."
        )
    try:
        pd.Timestamp(as_of - dt.timedelta(days=history_days))
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        raise DetectionError(
            f"as-of date {as_of} with {history_days} days of history starts before the "
            "earliest date detection can handle."
        ) from exc


def detection_run_active(*, as_of: dt.date) -> DetectionRun | None:
    """The pending or running run of ``as_of``, if any (there is at most one)."""
    return DetectionRun.objects.filter(as_of=as_of, status__in=RUN_ACTIVE_STATUSES).first()


def _in_progress(as_of: dt.date) -> DetectionRunInProgress:
    other = detection_run_active(as_of=as_of)
    which = f"run {other.pk} is {other.status}" if other else "another run is in progress"
    return DetectionRunInProgress(
        f"A detection run for {as_of} is already in progress ({which}); wait for it to "
        "finish (a run whose worker died is failed by reap_detection_runs within minutes).",
        run=other,
    )


def detection_run_create(
    *,
    as_of: dt.date | None,
    detectors: list[str] | None = None,
    trigger: str = "manual",
    history_days: int = HISTORY_DAYS,
) -> DetectionRun:
    """Create a pending ``DetectionRun`` (no work yet).

    ``as_of`` defaults to the latest date with sales data; ``detectors`` defaults to every
    registered detector (the disabled ones are skipped at execution, with a note).
    Raises ``DetectionError`` for unknown detector names, a ``history_days`` below 1, an
    implausible ``as_of`` (``detection_as_of_check``) or one after the last day of sales data,
    or when no data exists; ``DetectionRunInProgress`` when a run of the same date is already
    pending or running (the database's constraint decides, so two requests cannot both win).
    The run's lease gives it ``run_queue_seconds()`` to be started.
    """
    names = _validate_detectors(detectors)
    if history_days < 1:
        raise DetectionError(f"history_days must be at least 1, not {history_days}.")
    day = _resolve_as_of(as_of, history_days=history_days)
    now = timezone.now()
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a refusal
            return DetectionRun.objects.create(
                as_of=day,
                detectors=names,
                trigger=trigger,
                status=RunStatus.PENDING,
                history_days=history_days,
                heartbeat_at=now,
                lease_expires_at=now + dt.timedelta(seconds=run_queue_seconds()),
            )
    except IntegrityError as exc:
        if detection_run_active(as_of=day) is None:
            raise
        raise _in_progress(day) from exc


def detection_run_request(
    *, as_of: dt.date | None, detectors: list[str] | None = None, trigger: str = "api"
) -> DetectionRun:
    """Create a pending run and enqueue its Celery task once the transaction commits.

    The task fans the run out over workers, one task per chunk of locations (see
    ``anomalies.tasks``). With no broker configured the tasks run eagerly, so the returned run
    is already finished by the time the surrounding transaction has committed. Errors as
    ``detection_run_create``; with the broker unreachable the run is marked failed ("broker
    unreachable") and ``DetectionEnqueueError`` is raised within seconds (at commit, when
    called inside a transaction).
    """
    from anomalies.tasks import run_detection_task

    run = detection_run_create(as_of=as_of, detectors=detectors, trigger=trigger)
    eager = bool(run_detection_task.app.conf.task_always_eager)

    def enqueue() -> None:
        try:
            run_detection_task.delay(run.pk)
        except Exception as exc:
            if eager:
                raise  # the run itself recorded the failure
            unreachable = isinstance(exc, (KombuOperationalError, OSError))
            error = f"broker unreachable: {exc}" if unreachable else f"not queued: {exc!r}"
            DetectionRun.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(
                status=RunStatus.FAILED, error=error, finished_at=timezone.now()
            )
            logger.error("Detection run %s was not enqueued: %s", run.pk, error)
            if not unreachable:
                raise
            raise DetectionEnqueueError(
                f"Detection run {run.pk} could not be queued: {error}", run=run
            ) from exc

    # robust with eager tasks: a failing run must not turn the request into an error (the run
    # records its failure); a broker that cannot take the run must.
    transaction.on_commit(enqueue, robust=eager)
    return run


def detection_run(
    *,
    as_of: dt.date | None,
    detectors: list[str] | None = None,
    trigger: str = "manual",
    history_days: int = HISTORY_DAYS,
    chunk_locations: int | None = None,
    location_ids: list[int] | None = None,
) -> DetectionRun:
    """Create a run and execute it now, in this process. Returns the finished run.

    ``location_ids`` restricts the run to those locations (default: every location).
    """
    run = detection_run_create(
        as_of=as_of, detectors=detectors, trigger=trigger, history_days=history_days
    )
    return detection_run_execute(
        run_id=run.pk, chunk_locations=chunk_locations, location_ids=location_ids
    )


def detection_run_execute(
    *, run_id: int, chunk_locations: int | None = None, location_ids: list[int] | None = None
) -> DetectionRun:
    """Execute a pending run in this process: every chunk in turn, then the finishing step.

    The same three services the Celery fan-out calls (``detection_run_start``,
    ``detection_chunk_execute``, ``detection_run_finalize``), one after another. Each chunk
    persists its locations' findings in its own transaction; a failing chunk writes nothing,
    marks the run failed and the exception is re-raised (re-running the date completes it:
    persistence is idempotent). Raises ``DetectionError`` if the run is not pending.
    """
    chunk_ids = detection_run_start(
        run_id=run_id, chunk_locations=chunk_locations, location_ids=location_ids
    )
    return detection_chunks_execute(run_id=run_id, chunk_ids=chunk_ids)


def detection_chunks_execute(*, run_id: int, chunk_ids: list[int]) -> DetectionRun:
    """Execute the chunks ``chunk_ids`` of the started run ``run_id`` in this process, in
    order, then finish the run. Returns the finished run; errors as ``detection_run_execute``.

    Outside a transaction on PostgreSQL the next chunk's data loads in a second thread
    meanwhile. Not on SQLite: its writes take the database's one write lock from the start of
    a transaction (``transaction_mode`` IMMEDIATE, config/settings.py), so a loading thread
    would hold up this chunk's writes rather than overlap with them.
    """
    if len(chunk_ids) > 1 and not connection.in_atomic_block and connection.vendor != "sqlite":
        _chunks_execute_prefetching(run_id=run_id, chunk_ids=chunk_ids)
    else:
        for chunk_id in chunk_ids:
            detection_chunk_execute(chunk_id=chunk_id)
    return detection_run_finalize(run_id=run_id)


def _chunks_execute_prefetching(*, run_id: int, chunk_ids: list[int]) -> None:
    """Run the chunks in order while a second thread loads the next chunk's data.

    Loading is mostly PostgreSQL's work, in its own process, and detection is numpy's: on two
    cores they overlap. The loader thread has its own database connection, so this is only
    used outside a transaction (inside one, the loader would not see uncommitted rows). A load
    that fails is retried by the chunk itself, which then records the error.
    """
    run = DetectionRun.objects.get(pk=run_id)
    locations = dict(
        DetectionChunk.objects.filter(pk__in=chunk_ids).values_list("pk", "location_ids")
    )

    def load(chunk_id: int) -> DetectionInput:
        try:
            return detection_input_load(
                as_of=run.as_of, history_days=run.history_days, location_ids=locations[chunk_id]
            )
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="detection-prefetch") as pool:
        pending = pool.submit(load, chunk_ids[0])
        for i, chunk_id in enumerate(chunk_ids):
            try:
                data = pending.result()
            except Exception:
                logger.warning("Prefetch of chunk %s failed; loading it again", chunk_id)
                data = None
            if i + 1 < len(chunk_ids):
                pending = pool.submit(load, chunk_ids[i + 1])
            detection_chunk_execute(chunk_id=chunk_id, data=data)


def chunk_locations_default() -> int:
    """Locations per chunk: ``SHELFWATCH_DETECTION_CHUNK_LOCATIONS`` (default 10)."""
    return int(settings.SHELFWATCH_DETECTION_CHUNK_LOCATIONS)


def location_chunks_plan(*, location_ids: list[int], chunk_locations: int) -> list[list[int]]:
    """Split ``location_ids`` into consecutive chunks of at most ``chunk_locations`` ids.

    Chunks are as even as possible (``[5, 5]`` rather than ``[8, 2]``) so that parallel
    workers finish together. Raises ``DetectionError`` when ``chunk_locations`` < 1.
    """
    if chunk_locations < 1:
        raise DetectionError(f"chunk_locations must be at least 1, not {chunk_locations}.")
    ids = sorted(int(x) for x in location_ids)
    if not ids:
        return []
    n_chunks = -(-len(ids) // chunk_locations)
    return [part.tolist() for part in np.array_split(np.array(ids, dtype=np.int64), n_chunks)]


def detection_run_start(
    *,
    run_id: int,
    chunk_locations: int | None = None,
    location_ids: list[int] | None = None,
    refresh_price_points: bool = True,
) -> list[int]:
    """Claim the pending run ``run_id`` (pending → running), fix its detector settings and
    split its locations (``location_ids``, default every location) into ``DetectionChunk``
    rows of ``chunk_locations`` locations (default ``chunk_locations_default()``). Returns the
    chunk ids, in order.

    The claim is a conditional update, so two workers cannot start the same run. Settings (and
    the policy's false-discovery rate) are read once here and stored on the run: every chunk
    uses the same ones even if an admin edits them mid-run. Raises ``DetectionError`` if the
    run is not pending. ``refresh_price_points=False`` skips bringing the chain-wide price
    points up to date (a backfill does it once, before it loads its window).
    """
    now = timezone.now()
    claimed = DetectionRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        lease_expires_at=now + dt.timedelta(seconds=run_lease_seconds()),
    )
    if claimed != 1:
        raise DetectionError(f"Detection run {run_id} is not pending; it was not executed again.")
    try:
        run = DetectionRun.objects.get(pk=run_id)
        # Chain-wide price points of the days imported since the last run (cheap: new days).
        if refresh_price_points:
            price_points_refresh()
        effective = detector_settings()
        run.settings = {name: effective[name] for name in run.detectors}
        run.fdr_q = detection_policy_fdr_q()
        run.save(update_fields=["settings", "fdr_q"])
        size = chunk_locations or chunk_locations_default()
        if location_ids is None:
            location_ids = list(Location.objects.values_list("id", flat=True))
        plan = location_chunks_plan(location_ids=location_ids, chunk_locations=size)
        chunks = DetectionChunk.objects.bulk_create(
            DetectionChunk(run=run, index=i, location_ids=ids) for i, ids in enumerate(plan)
        )
    except Exception:
        _run_fail(run_id, traceback.format_exc(limit=20))
        raise
    return [chunk.pk for chunk in chunks]


def _run_fail(run_id: int, error: str) -> None:
    run = DetectionRun.objects.filter(pk=run_id).values("started_at").first()
    started = run["started_at"] if run else None
    now = timezone.now()
    DetectionRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED,
        lease_expires_at=None,
        error=error,
        finished_at=now,
        duration_seconds=round((now - started).total_seconds(), 3) if started else None,
    )


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def detection_chunk_execute(
    *, chunk_id: int, data: DetectionInput | None = None, series: int | None = None
) -> DetectionChunk:
    """Load, detect and persist one chunk of a running run; returns the finished chunk.

    ``data`` may be handed in already loaded (the backfill loads a window once); otherwise the
    chunk's locations are loaded as of the run's date. ``series``: the SKU-locations ``data``
    holds, when the caller knows them (else they are counted). Idempotent: a chunk that already
    succeeded is returned as is (a task delivered twice does nothing the second time), and
    persisting the same findings again changes nothing. On error the chunk and its run are
    marked failed (this chunk wrote nothing) and the exception is re-raised. Raises
    ``DetectionError`` when the run is not running, or when the chunk was reaped while it ran
    (its lease ran out: ``anomalies.services.leases``); it then persists nothing.
    """
    chunk = DetectionChunk.objects.select_related("run").get(pk=chunk_id)
    if chunk.status == RunStatus.SUCCEEDED:
        return chunk
    run = chunk.run
    if run.status != RunStatus.RUNNING:
        raise DetectionError(
            f"Detection run {run.pk} is {run.status}, not running; chunk {chunk.index} skipped."
        )
    chunk.status = RunStatus.RUNNING
    chunk.started_at = timezone.now()
    chunk.worker = _worker_name()
    # A chunk left running by a dead worker and delivered again is taken over here.
    DetectionChunk.objects.filter(pk=chunk_id).exclude(status=RunStatus.SUCCEEDED).update(
        status=chunk.status,
        started_at=chunk.started_at,
        worker=chunk.worker,
        heartbeat_at=chunk.started_at,
        lease_expires_at=chunk.started_at + dt.timedelta(seconds=run_lease_seconds()),
    )
    detection_run_lease_renew(run_id=run.pk)
    heartbeat = ChunkHeartbeat(chunk_id=chunk_id, run_id=run.pk)
    t0 = time.perf_counter()
    try:
        if data is None:
            data = detection_input_load(
                as_of=run.as_of, history_days=run.history_days, location_ids=chunk.location_ids
            )
        heartbeat.beat()
        findings, counts, notes = run_detectors(data, run.detectors, run.settings)
        findings, counts = findings_fdr_control(findings, counts, fdr_q=run.fdr_q)
        if not heartbeat.beat(force=True):
            raise DetectionError(
                f"Chunk {chunk.index} of run {run.pk} was reaped while it ran (its lease ran "
                "out, or its run failed meanwhile); its findings were not persisted."
            )
        with transaction.atomic():
            result = anomalies_persist(findings=findings, run=run)
            for name, entry in counts.items():
                entry["new"] = result.created.get(name, 0)
                entry["extended"] = result.extended.get(name, 0)
            chunk.counts = counts
            chunk.hypotheses_tested = sum(entry.get("tested", 0) for entry in counts.values())
            chunk.new_findings = sum(result.created.values())
            chunk.new_findings_controlled = sum(result.created_controlled.values())
            chunk.notes = notes
            chunk.series = _series_count(data) if series is None else series
            chunk.status = RunStatus.SUCCEEDED
            chunk.finished_at = timezone.now()
            chunk.heartbeat_at = chunk.finished_at
            chunk.lease_expires_at = None
            chunk.duration_seconds = round(time.perf_counter() - t0, 3)
            chunk.save()
    except Exception:
        error = f"chunk {chunk.index}: {traceback.format_exc(limit=20)}"
        # Only a chunk still running: a reaped one keeps the reaper's reason.
        DetectionChunk.objects.filter(pk=chunk_id, status=RunStatus.RUNNING).update(
            lease_expires_at=None,
            status=RunStatus.FAILED,
            error=error,
            finished_at=timezone.now(),
            duration_seconds=round(time.perf_counter() - t0, 3),
        )
        _run_fail(run.pk, error)
        logger.exception("Detection run %s chunk %s failed", run.pk, chunk.index)
        raise
    return chunk


def run_detectors(
    data: DetectionInput, names: list[str], effective: dict[str, dict[str, Any]]
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]], list[str]]:
    """Run the named detectors on ``data``; pure apart from timing.

    Returns (all findings concatenated, per-detector counts ``{"findings": n, "seconds": s}``,
    notes for skipped detectors). A detector raising ``MissingInput`` or disabled in the
    settings is skipped with a note. These are the candidates: ``findings_fdr_control`` then
    decides which of those with a p-value are reported.
    """
    frames: list[pd.DataFrame] = []
    counts: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for name in names:
        spec = REGISTRY[name]
        if not effective[name]["enabled"]:
            notes.append(f"{name}: skipped (disabled in detector settings)")
            counts[name] = {"findings": 0, "skipped": True}
            continue
        t0 = time.perf_counter()
        try:
            found = spec.func(data, effective[name]["params"])
        except MissingInput as exc:
            notes.append(f"{name}: skipped ({exc})")
            counts[name] = {"findings": 0, "skipped": True}
            continue
        counts[name] = {"findings": len(found), "seconds": round(time.perf_counter() - t0, 3)}
        if len(found):
            # Detectors build their frames with make_findings: the columns are usually in order.
            same = list(found.columns) == FINDING_COLUMNS
            frames.append(found if same else found[FINDING_COLUMNS])
    findings = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FINDING_COLUMNS)
    )
    return findings, counts, notes


def _detector_of_type() -> dict[str, str]:
    return {t: name for name, spec in REGISTRY.items() for t in spec.anomaly_types}


def findings_fdr_control(
    findings: pd.DataFrame, counts: dict[str, dict[str, Any]], *, fdr_q: float | None
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Control the false-discovery rate at ``fdr_q`` per location over ``run_detectors``'
    findings (``fdr.fdr_control``, one family per detector); ``None``: no control. Pure.

    Returns (the findings kept, with ``q_value`` added, NaN where not controlled; a copy of
    ``counts`` in which a detector whose findings carry p-values also gives ``candidates``
    (its findings before the control), ``fdr_dropped`` (those not kept) and ``tested``
    (hypotheses it tested, summed over locations), its ``findings`` being what was kept).
    Without any p-value the findings pass unchanged and the counts are as given.
    """
    counts = {name: dict(entry) for name, entry in counts.items()}
    if fdr_q is None or findings.empty:
        return findings.assign(q_value=np.nan), counts
    of_type = _detector_of_type()
    types = findings["anomaly_type"].to_numpy(dtype=object)
    detector = np.array([of_type.get(t, t) for t in types], dtype=object)
    result = fdr_control(findings, fdr_q, family=detector)
    if len(result.families):
        kept = pd.Series(detector[findings.index.get_indexer(result.findings.index)])
        kept_by_detector = kept.value_counts()
        tested = result.families.groupby("family")["tested"].sum()
        for name, n_tested in tested.items():  # one entry per detector, not per finding
            entry = counts.setdefault(name, {"findings": 0})
            entry["candidates"] = entry["findings"]
            entry["findings"] = int(kept_by_detector.get(name, 0))
            entry["fdr_dropped"] = entry["candidates"] - entry["findings"]
            entry["tested"] = int(n_tested)
    return result.findings.reset_index(drop=True), counts


def _series_count(data: DetectionInput) -> int:
    """SKU-locations with any sales or book stock row in the input."""
    keys = [data.sales[["product_id", "location_id"]]]
    if data.stock is not None:
        keys.append(data.stock[["product_id", "location_id"]])
    both = pd.concat(keys, ignore_index=True)
    packed = both["product_id"].to_numpy(dtype=np.int64) * (1 << 32) + both["location_id"].to_numpy(
        dtype=np.int64
    )
    return len(pd.unique(packed))


def detection_run_finalize(*, run_id: int) -> DetectionRun:
    """Finish a running run once all its chunks succeeded: sum the chunks' counts, run the
    root-cause grouping across locations (once per run) and mark the run succeeded.

    Idempotent: a run that already succeeded is returned unchanged. Raises ``DetectionError``
    when the run failed or a chunk has not succeeded (the run is then marked failed).
    """
    run = DetectionRun.objects.get(pk=run_id)
    if run.status == RunStatus.SUCCEEDED:
        return run
    if run.status != RunStatus.RUNNING:
        raise DetectionError(f"Detection run {run_id} is {run.status}; it cannot be finished.")
    detection_run_lease_renew(run_id=run_id)
    chunks = list(run.chunks.order_by("index"))
    unfinished = [c.index for c in chunks if c.status != RunStatus.SUCCEEDED]
    if unfinished:
        message = f"Chunks {unfinished} of run {run_id} did not succeed."
        _run_fail(run_id, message)
        raise DetectionError(message)
    try:
        counts: dict[str, dict[str, Any]] = {}
        notes: list[str] = []
        for chunk in chunks:
            for name, entry in chunk.counts.items():
                total = counts.setdefault(name, {"findings": 0})
                for key, value in entry.items():
                    if isinstance(value, bool):
                        total[key] = total.get(key, True) and value
                    elif isinstance(value, (int, float)):
                        total[key] = total.get(key, 0) + value
            notes.extend(note for note in chunk.notes if note not in notes)
        for entry in counts.values():
            if "seconds" in entry:
                entry["seconds"] = round(entry["seconds"], 3)
        with transaction.atomic():
            grouped = anomalies_group_root_causes(run=run)
            if grouped:
                notes.append(
                    "root-cause grouping: "
                    + ", ".join(
                        f"{n} under {reason.replace('_', ' ')}" for reason, n in grouped.items()
                    )
                )
            controlled = sum(chunk.new_findings_controlled for chunk in chunks)
            now = timezone.now()
            DetectionRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
                counts=counts,
                notes=notes,
                hypotheses_tested=sum(chunk.hypotheses_tested for chunk in chunks),
                new_findings=sum(chunk.new_findings for chunk in chunks),
                new_findings_controlled=controlled,
                expected_false_alarms=None if run.fdr_q is None else run.fdr_q * controlled,
                status=RunStatus.SUCCEEDED,
                finished_at=now,
                heartbeat_at=now,
                lease_expires_at=None,
                duration_seconds=round((now - run.started_at).total_seconds(), 3),
            )
    except Exception:
        _run_fail(run_id, traceback.format_exc(limit=20))
        raise
    run.refresh_from_db()
    return run


def detection_backfill(
    *,
    start: dt.date,
    end: dt.date,
    detectors: list[str] | None = None,
    progress: Callable[[DetectionRun], None] | None = None,
    history_days: int = HISTORY_DAYS,
    chunk_locations: int | None = None,
) -> list[DetectionRun]:
    """Walk forward from ``start`` to ``end`` (inclusive): one run per day, each seeing only
    data up to its own date. Raises ``DetectionError`` if ``end`` is before ``start``.

    Each chunk of locations loads its data for the whole window once
    (``detection_window_load``, after bringing the chain-wide price points up to date) and
    hands every day its slice, instead of reloading ``history_days`` days from the database
    per day.
    """
    if end < start:
        raise DetectionError(f"Backfill end {end} is before its start {start}.")
    for day in (start, end):  # refuse an implausible range before any run exists
        _resolve_as_of(day, history_days=history_days)
    runs = []
    frames: dict[tuple[int, ...], DetectionFrames] = {}
    day = start
    while day <= end:
        run = detection_run_create(
            as_of=day, detectors=detectors, trigger="backfill", history_days=history_days
        )
        # Price points are refreshed before each window is loaded, not per day: a day sees
        # the points loaded with its window, whatever a later refresh adds.
        chunk_ids = detection_run_start(
            run_id=run.pk, chunk_locations=chunk_locations, refresh_price_points=False
        )
        locations = dict(
            DetectionChunk.objects.filter(pk__in=chunk_ids).values_list("pk", "location_ids")
        )
        for chunk_id in chunk_ids:
            ids = tuple(locations[chunk_id])
            if ids not in frames:
                try:
                    price_points_refresh()
                    frames[ids] = detection_window_load(
                        start=start, end=end, history_days=history_days, location_ids=list(ids)
                    )
                except Exception:
                    _run_fail(run.pk, f"loading: {traceback.format_exc(limit=20)}")
                    raise
            detection_chunk_execute(
                chunk_id=chunk_id,
                data=frames[ids].detection_input(as_of=day, history_days=history_days),
                series=frames[ids].series_count(as_of=day, history_days=history_days),
            )
        run = detection_run_finalize(run_id=run.pk)
        runs.append(run)
        if progress is not None:
            progress(run)
        day += dt.timedelta(days=1)
    return runs
