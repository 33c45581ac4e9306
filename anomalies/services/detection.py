"""The detection service: run the enabled detectors as of a date and persist what they find.

The only place that connects the ORM to the pure detectors in ``anomalies.detectors``. Celery
tasks, management commands, the admin and the API all come through here.

Persistence rule: a finding extends the anomaly of the same type, SKU and location whose date
range overlaps or touches it (``end_date + MERGE_GAP_DAYS``); otherwise it opens a new one. The
database's unique constraint on (type, SKU, location, start date) backs that up, so a re-run
of the same dates updates rows and never duplicates them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from anomalies.detectors import REGISTRY, MissingInput
from anomalies.detectors.base import FINDING_COLUMNS, DetectionInput
from anomalies.models import Anomaly, DetectionRun, DetectorConfig, RunStatus
from anomalies.services.loading import HISTORY_DAYS, detection_input_load, latest_data_date
from anomalies.services.triage import Redetections

logger = logging.getLogger(__name__)

# A finding within this many days after an anomaly's end date continues that anomaly.
MERGE_GAP_DAYS = 1

_UPDATE_FIELDS = [
    "severity",
    "score",
    "expected_value",
    "actual_value",
    "value_at_risk",
    "explanation",
    "details",
    "end_date",
    "last_detected_on",
    "last_run",
    "updated_at",
]


class DetectionError(ValueError):
    """A detection request that cannot run: unknown detector, bad date, no data."""


@dataclass
class PersistResult:
    """How a batch of findings landed: rows created and rows extended, per anomaly type."""

    created: dict[str, int] = field(default_factory=dict)
    extended: dict[str, int] = field(default_factory=dict)


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


def _validate_detectors(detectors: list[str] | None) -> list[str]:
    if not detectors:
        return list(REGISTRY)
    unknown = [name for name in detectors if name not in REGISTRY]
    if unknown:
        raise DetectionError(
            f"Unknown detector(s): {', '.join(unknown)}. Known: {', '.join(REGISTRY)}."
        )
    return list(dict.fromkeys(detectors))


def _resolve_as_of(as_of: dt.date | None) -> dt.date:
    if as_of is not None:
        return as_of
    latest = latest_data_date()
    if latest is None:
        raise DetectionError("No sales data has been imported yet; import a bundle first.")
    return latest


def detection_run_create(
    *, as_of: dt.date | None, detectors: list[str] | None = None, trigger: str = "manual"
) -> DetectionRun:
    """Create a pending ``DetectionRun`` (no work yet).

    ``as_of`` defaults to the latest date with sales data; ``detectors`` defaults to every
    registered detector (the disabled ones are skipped at execution, with a note).
    Raises ``DetectionError`` for unknown detector names or when no data exists.
    """
    names = _validate_detectors(detectors)
    return DetectionRun.objects.create(
        as_of=_resolve_as_of(as_of), detectors=names, trigger=trigger, status=RunStatus.PENDING
    )


def detection_run_request(
    *, as_of: dt.date | None, detectors: list[str] | None = None, trigger: str = "api"
) -> DetectionRun:
    """Create a pending run and enqueue its Celery task once the transaction commits.

    With no broker configured the task runs eagerly, so the returned run is already finished
    by the time the surrounding transaction has committed.
    """
    from anomalies.tasks import run_detection_task

    run = detection_run_create(as_of=as_of, detectors=detectors, trigger=trigger)
    # robust: with eager tasks a failing run must not turn the request into an error; the run
    # itself records the failure.
    transaction.on_commit(lambda: run_detection_task.delay(run.pk), robust=True)
    return run


def detection_run(
    *,
    as_of: dt.date | None,
    detectors: list[str] | None = None,
    trigger: str = "manual",
    history_days: int = HISTORY_DAYS,
) -> DetectionRun:
    """Create a run and execute it now, in this process. Returns the finished run."""
    run = detection_run_create(as_of=as_of, detectors=detectors, trigger=trigger)
    return detection_run_execute(run_id=run.pk, history_days=history_days)


def detection_run_execute(*, run_id: int, history_days: int = HISTORY_DAYS) -> DetectionRun:
    """Execute a pending run: load data up to its as-of date, run detectors, persist findings.

    The run moves pending → running with a conditional update, so two workers cannot execute
    the same run. Findings are persisted in one transaction: a failing run writes no
    anomalies; it is marked failed with the error and the exception is re-raised.
    Raises ``DetectionError`` if the run is not pending.
    """
    started = timezone.now()
    claimed = DetectionRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.RUNNING, started_at=started
    )
    if claimed != 1:
        raise DetectionError(f"Detection run {run_id} is not pending; it was not executed again.")
    run = DetectionRun.objects.get(pk=run_id)
    t0 = time.perf_counter()
    try:
        effective = detector_settings()
        data = detection_input_load(as_of=run.as_of, history_days=history_days)
        findings, counts, notes = run_detectors(data, run.detectors, effective)
        with transaction.atomic():
            result = anomalies_persist(findings=findings, run=run)
            for name, entry in counts.items():
                entry["new"] = result.created.get(name, 0)
                entry["extended"] = result.extended.get(name, 0)
            run.settings = {name: effective[name] for name in run.detectors}
            run.counts = counts
            run.notes = notes
            run.status = RunStatus.SUCCEEDED
            run.finished_at = timezone.now()
            run.duration_seconds = round(time.perf_counter() - t0, 3)
            run.save()
    except Exception:
        DetectionRun.objects.filter(pk=run_id).update(
            status=RunStatus.FAILED,
            error=traceback.format_exc(limit=20),
            finished_at=timezone.now(),
            duration_seconds=round(time.perf_counter() - t0, 3),
        )
        logger.exception("Detection run %s failed", run_id)
        raise
    return run


def run_detectors(
    data: DetectionInput, names: list[str], effective: dict[str, dict[str, Any]]
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]], list[str]]:
    """Run the named detectors on ``data``; pure apart from timing.

    Returns (all findings concatenated, per-detector counts ``{"findings": n, "seconds": s}``,
    notes for skipped detectors). A detector raising ``MissingInput`` or disabled in the
    settings is skipped with a note.
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
            frames.append(found[FINDING_COLUMNS])
    findings = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FINDING_COLUMNS)
    )
    return findings, counts, notes


def _key(anomaly_type: str, product_id: Any, location_id: int) -> tuple[str, int | None, int]:
    product = None if product_id is None or pd.isna(product_id) else int(product_id)
    return anomaly_type, product, int(location_id)


def _py(value: Any) -> Any:
    """Make a details value JSON-serialisable (numpy scalars, timestamps, NaN)."""
    if isinstance(value, dict):
        return {str(k): _py(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_py(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()[:10]
    return value


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def anomalies_persist(*, findings: pd.DataFrame, run: DetectionRun) -> PersistResult:
    """Create or extend anomalies for ``findings`` (a findings frame) found by ``run``.

    Must be called inside a transaction. A finding extends the anomaly with the same type,
    SKU and location whose range overlaps ``[start - MERGE_GAP_DAYS, end]``; an extension
    never shrinks an anomaly and only takes the finding's numbers when the run is at least as
    recent as the anomaly's last detection (so re-running an old date changes nothing).

    Triage rules (``anomalies.services.triage.Redetections``): a finding that overlaps no
    anomaly but follows a resolved or dismissed one of the same type/SKU/location within
    ``SHELFWATCH_REGRESSION_DAYS`` extends that one; a resolved anomaly found again reopens
    (regressed), a dismissed one stays dismissed, a snoozed one that got worse wakes up.
    """
    result = PersistResult()
    if findings.empty:
        return result
    as_of = run.as_of
    redetections = Redetections(as_of=as_of)
    findings = findings.sort_values("score", ascending=False).drop_duplicates(
        ["anomaly_type", "product_id", "location_id", "start_date"]
    )
    earliest = findings["start_date"].min().date() - dt.timedelta(days=MERGE_GAP_DAYS)
    latest = findings["end_date"].max().date() + dt.timedelta(days=MERGE_GAP_DAYS)
    candidates = Anomaly.objects.filter(
        anomaly_type__in=findings["anomaly_type"].unique().tolist(),
        location_id__in=[int(x) for x in findings["location_id"].unique()],
        end_date__gte=earliest - dt.timedelta(days=redetections.lookback_days),
        start_date__lte=latest,
    ).order_by("start_date")
    by_key: dict[tuple, list[Anomaly]] = {}
    for anomaly in candidates:
        by_key.setdefault(
            _key(anomaly.anomaly_type, anomaly.product_id, anomaly.location_id), []
        ).append(anomaly)

    now = timezone.now()
    to_create: list[Anomaly] = []
    to_update: dict[int, Anomaly] = {}
    for row in findings.to_dict("records"):
        key = _key(row["anomaly_type"], row["product_id"], row["location_id"])
        start = row["start_date"].date()
        end = row["end_date"].date()
        match = next(
            (
                a
                for a in by_key.get(key, [])
                if a.start_date <= end + dt.timedelta(days=MERGE_GAP_DAYS)
                and a.end_date >= start - dt.timedelta(days=MERGE_GAP_DAYS)
            ),
            None,
        )
        if match is None:
            match = redetections.closed_match(by_key.get(key, []), start=start)
        numbers = {
            "severity": row["severity"],
            "score": float(row["score"]),
            "expected_value": _float_or_none(row["expected_value"]),
            "actual_value": _float_or_none(row["actual_value"]),
            "value_at_risk": Decimal(str(round(float(row["value_at_risk"] or 0.0), 2))),
            "explanation": str(row["explanation"]),
            "details": _py(row["details"] or {}),
        }
        if match is None:
            anomaly = Anomaly(
                anomaly_type=key[0],
                product_id=key[1],
                location_id=key[2],
                start_date=start,
                end_date=end,
                first_detected_on=as_of,
                last_detected_on=as_of,
                last_run=run,
                **numbers,
            )
            to_create.append(anomaly)
            by_key.setdefault(key, []).append(anomaly)
            result.created[key[0]] = result.created.get(key[0], 0) + 1
            continue
        if match.pk is None:
            # Two findings of this batch merge into one new anomaly: it spans both.
            match.start_date = min(match.start_date, start)
            match.end_date = max(match.end_date, end)
            continue
        redetections.seen(
            match,
            start=start,
            end=end,
            severity=numbers["severity"],
            value_at_risk=numbers["value_at_risk"],
        )
        if as_of >= match.last_detected_on:
            for name, value in numbers.items():
                setattr(match, name, value)
            match.last_detected_on = as_of
            match.last_run = run
        match.end_date = max(match.end_date, end)
        match.updated_at = now
        if match.pk not in to_update:
            result.extended[key[0]] = result.extended.get(key[0], 0) + 1
        to_update[match.pk] = match
    Anomaly.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        Anomaly.objects.bulk_update(list(to_update.values()), _UPDATE_FIELDS, batch_size=500)
    redetections.apply()
    return result


def detection_backfill(
    *,
    start: dt.date,
    end: dt.date,
    detectors: list[str] | None = None,
    progress: Callable[[DetectionRun], None] | None = None,
    history_days: int = HISTORY_DAYS,
) -> list[DetectionRun]:
    """Walk forward from ``start`` to ``end`` (inclusive): one run per day, each seeing only
    data up to its own date. Raises ``DetectionError`` if ``end`` is before ``start``.
    """
    if end < start:
        raise DetectionError(f"Backfill end {end} is before its start {start}.")
    runs = []
    day = start
    while day <= end:
        run = detection_run(
            as_of=day, detectors=detectors, trigger="backfill", history_days=history_days
        )
        runs.append(run)
        if progress is not None:
            progress(run)
        day += dt.timedelta(days=1)
    return runs
