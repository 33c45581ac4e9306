"""Detector health: are the detectors running, how long do they take, what do they raise, and
what do people do with it? The numbers behind the admin's detector health page.

Pure aggregation queries, a fixed number whatever the data (no query per detector, schedule,
run or anomaly), each bounded:

- runs: the latest ``RUNS_SCANNED`` detection runs (one query), read per detector in Python
  (``DetectionRun.detectors`` is a JSON list, which SQLite cannot search in SQL);
- schedules: every beat ``PeriodicTask`` (a handful), with the latest scheduled run of the same
  detectors matched from those runs;
- findings per day and per detector, over the ``FINDINGS_DAYS`` days up to the latest day a
  finding was first detected or a run succeeded for (not today: imported data may end
  earlier); the share dismissed as false positive over ``FALSE_POSITIVE_DAYS`` days up to
  that day;
- findings muted too long: acknowledged (since ``acknowledged_at``) or snoozed (since their
  latest snooze) for more than ``muted_days`` days, the oldest first, at most ``MUTED_ROWS``
  shown and at most ``MUTED_COUNT_MAX`` counted.

Runs and schedules are chain-wide; every count of findings is limited to the user's stores
(``anomalies_for_user``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, Max, OuterRef, Q, Subquery, When
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from anomalies.detectors import REGISTRY
from anomalies.models import (
    ActivityAction,
    Anomaly,
    AnomalyActivity,
    AnomalyStatus,
    DetectionRun,
    DismissReason,
    RunStatus,
)
from anomalies.selectors import anomalies_for_user
from anomalies.services.runs import detector_settings
from anomalies.services.schedules import SCHEDULED_TASK_NAME

RUNS_SCANNED = 200
TREND_RUNS = 30
FAILURES_SHOWN = 10
FINDINGS_DAYS = 14
FALSE_POSITIVE_DAYS = 90
MUTED_DAYS_DEFAULT = 14
MUTED_DAYS_MAX = 365
MUTED_ROWS = 50
MUTED_COUNT_MAX = 10_000
ERROR_LINE_MAX_CHARS = 300


def _error_line(error: str) -> str:
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1][:ERROR_LINE_MAX_CHARS] if lines else ""


def detector_of_type() -> dict[str, str]:
    """Anomaly type → the detector that raises it (a type no detector names maps to itself)."""
    return {t: name for name, spec in REGISTRY.items() for t in spec.anomaly_types}


@dataclass(frozen=True)
class RunSummary:
    """One detection run as the page shows it."""

    pk: int
    as_of: dt.date
    status: str
    trigger: str
    created_at: dt.datetime
    duration_seconds: float | None
    error: str = ""

    @classmethod
    def of(cls, row: dict[str, Any]) -> RunSummary:
        return cls(
            pk=row["pk"],
            as_of=row["as_of"],
            status=row["status"],
            trigger=row["trigger"],
            created_at=row["created_at"],
            duration_seconds=row["duration_seconds"],
            error=_error_line(row["error"]) if row["status"] == RunStatus.FAILED else "",
        )


@dataclass
class DetectorRow:
    """A detector's recent runs: the last one, the last success and failure, its timings."""

    name: str
    description: str
    enabled: bool
    last_run: RunSummary | None = None
    last_succeeded: RunSummary | None = None
    last_failed: RunSummary | None = None
    runs: int = 0
    failures: int = 0
    last_findings: int | None = None
    last_skipped: bool = False
    # Seconds the detector itself took in its latest successful runs, oldest first.
    seconds: list[float] = field(default_factory=list)

    @property
    def seconds_latest(self) -> float | None:
        return self.seconds[-1] if self.seconds else None

    @property
    def seconds_median(self) -> float | None:
        if not self.seconds:
            return None
        ordered = sorted(self.seconds)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle]
        return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class ScheduleRow:
    """A beat schedule: what beat last did, and (for detection) the run it last produced."""

    name: str
    task: str
    enabled: bool
    schedule: str
    last_run_at: dt.datetime | None
    total_run_count: int
    detectors: tuple[str, ...]
    last_detection_run: RunSummary | None
    stale: bool


@dataclass(frozen=True)
class TrendRun:
    """One of the latest runs, for the duration trend (``bar_pct``: of the slowest shown)."""

    run: RunSummary
    bar_pct: int


@dataclass(frozen=True)
class FindingsDay:
    day: dt.date
    counts: list[int]
    total: int


@dataclass(frozen=True)
class FalsePositiveRow:
    """Findings of a detector in the window; closed ones; dismissed as false positive."""

    detector: str
    findings: int
    closed: int
    false_positives: int

    @property
    def share(self) -> float | None:
        """False positives among all its findings of the window."""
        return self.false_positives / self.findings if self.findings else None

    @property
    def share_of_closed(self) -> float | None:
        """False positives among those people closed (resolved or dismissed)."""
        return self.false_positives / self.closed if self.closed else None


@dataclass(frozen=True)
class MutedRow:
    anomaly: Anomaly
    since: dt.datetime
    days: int


@dataclass
class DetectorHealth:
    """Everything the detector health page shows (``detector_health``)."""

    now: dt.datetime
    include_runs: bool
    runs_scanned: int = 0
    latest_run_as_of: dt.date | None = None
    detectors: list[DetectorRow] = field(default_factory=list)
    schedules: list[ScheduleRow] = field(default_factory=list)
    trend: list[TrendRun] = field(default_factory=list)
    failures: list[RunSummary] = field(default_factory=list)
    failures_count: int = 0
    findings_end: dt.date | None = None
    findings_start: dt.date | None = None
    findings_detectors: list[str] = field(default_factory=list)
    findings_days: list[FindingsDay] = field(default_factory=list)
    false_positive_start: dt.date | None = None
    false_positives: list[FalsePositiveRow] = field(default_factory=list)
    muted_days: int = MUTED_DAYS_DEFAULT
    muted: list[MutedRow] = field(default_factory=list)
    muted_count: int = 0
    muted_count_capped: bool = False


def muted_days_clean(value: Any) -> int:
    """The "muted for more than N days" parameter: an integer 1..``MUTED_DAYS_MAX``; anything
    else (missing, not a number, out of range) is ``MUTED_DAYS_DEFAULT``."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return MUTED_DAYS_DEFAULT
    return days if 1 <= days <= MUTED_DAYS_MAX else MUTED_DAYS_DEFAULT


def _schedule_text(task: PeriodicTask) -> str:
    if task.crontab_id is not None:
        c = task.crontab
        return f"cron {c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
    if task.interval_id is not None:
        return f"every {task.interval.every} {task.interval.period}"
    return "other"


def _task_detectors(task: PeriodicTask) -> tuple[str, ...]:
    try:
        kwargs = json.loads(task.kwargs or "{}")
    except ValueError:
        return ()
    detectors = kwargs.get("detectors") if isinstance(kwargs, dict) else None
    if not detectors:  # detect_scheduled without a list runs every detector
        return tuple(REGISTRY)
    return tuple(str(name) for name in detectors)


def _runs_part(health: DetectorHealth) -> None:
    runs = list(
        DetectionRun.objects.order_by("-created_at", "-id").values(
            "pk",
            "as_of",
            "detectors",
            "status",
            "trigger",
            "created_at",
            "duration_seconds",
            "counts",
            "error",
        )[:RUNS_SCANNED]
    )
    health.runs_scanned = len(runs)
    health.latest_run_as_of = max(
        (run["as_of"] for run in runs if run["status"] == RunStatus.SUCCEEDED), default=None
    )
    effective = detector_settings()
    rows = {
        name: DetectorRow(
            name=name, description=spec.description, enabled=effective[name]["enabled"]
        )
        for name, spec in REGISTRY.items()
    }
    for run in runs:  # newest first
        summary = RunSummary.of(run)
        counts = run["counts"] if isinstance(run["counts"], dict) else {}
        for name in run["detectors"] or []:
            row = rows.get(name)
            if row is None:
                continue
            row.runs += 1
            if row.last_run is None:
                row.last_run = summary
            if run["status"] == RunStatus.SUCCEEDED:
                entry = counts.get(name) if isinstance(counts.get(name), dict) else {}
                if row.last_succeeded is None:
                    row.last_succeeded = summary
                    row.last_findings = entry.get("findings")
                    row.last_skipped = bool(entry.get("skipped"))
                seconds = entry.get("seconds")
                if isinstance(seconds, (int, float)) and len(row.seconds) < TREND_RUNS:
                    row.seconds.insert(0, float(seconds))
            elif run["status"] == RunStatus.FAILED:
                row.failures += 1
                if row.last_failed is None:
                    row.last_failed = summary
    health.detectors = list(rows.values())

    failed = [RunSummary.of(run) for run in runs if run["status"] == RunStatus.FAILED]
    health.failures_count = len(failed)
    health.failures = failed[:FAILURES_SHOWN]

    latest = [RunSummary.of(run) for run in runs[:TREND_RUNS]]
    slowest = max((r.duration_seconds or 0.0 for r in latest), default=0.0)
    health.trend = [
        TrendRun(
            run=r,
            bar_pct=round(100 * (r.duration_seconds or 0.0) / slowest) if slowest > 0 else 0,
        )
        for r in reversed(latest)  # oldest first, as a trend reads
    ]

    scheduled = [run for run in runs if run["trigger"] == "schedule"]
    max_age = dt.timedelta(hours=float(settings.SHELFWATCH_HEALTH_MAX_RUN_AGE_HOURS or 0))
    for task in PeriodicTask.objects.select_related("crontab", "interval").order_by("name"):
        detection = task.task == SCHEDULED_TASK_NAME
        detectors = _task_detectors(task) if detection else ()
        match = next(
            (run for run in scheduled if set(run["detectors"] or []) == set(detectors)), None
        )
        stale = bool(
            detection
            and task.enabled
            and max_age
            and (task.last_run_at is None or health.now - task.last_run_at > max_age)
        )
        health.schedules.append(
            ScheduleRow(
                name=task.name,
                task=task.task,
                enabled=task.enabled,
                schedule=_schedule_text(task),
                last_run_at=task.last_run_at,
                total_run_count=task.total_run_count,
                detectors=detectors,
                last_detection_run=RunSummary.of(match) if match else None,
                stale=stale,
            )
        )


def _findings_part(health: DetectorHealth, user: Any) -> None:
    scoped = anomalies_for_user(user).order_by()
    end = scoped.aggregate(end=Max("first_detected_on"))["end"]
    if end is None:
        return
    if health.latest_run_as_of is not None:  # days detection ran and found nothing new count
        end = max(end, health.latest_run_as_of)
    types = detector_of_type()
    health.findings_end = end
    health.findings_start = end - dt.timedelta(days=FINDINGS_DAYS - 1)
    per_day: dict[dt.date, dict[str, int]] = {}
    for day, anomaly_type, n in (
        scoped.filter(first_detected_on__range=(health.findings_start, end))
        .values_list("first_detected_on", "anomaly_type")
        .annotate(n=Count("pk"))
    ):
        detector = types.get(anomaly_type, anomaly_type)
        bucket = per_day.setdefault(day, {})
        bucket[detector] = bucket.get(detector, 0) + n
    names = list(REGISTRY)
    names += sorted({d for bucket in per_day.values() for d in bucket} - set(names))
    health.findings_detectors = names
    health.findings_days = []
    for offset in range(FINDINGS_DAYS):
        day = end - dt.timedelta(days=offset)  # newest first
        bucket = per_day.get(day, {})
        counts = [bucket.get(name, 0) for name in names]
        health.findings_days.append(FindingsDay(day=day, counts=counts, total=sum(counts)))

    health.false_positive_start = end - dt.timedelta(days=FALSE_POSITIVE_DAYS - 1)
    closed = Q(status__in=[AnomalyStatus.RESOLVED, AnomalyStatus.DISMISSED])
    fp = Q(status=AnomalyStatus.DISMISSED, dismiss_reason=DismissReason.FALSE_POSITIVE)
    totals: dict[str, list[int]] = {}
    for anomaly_type, n, n_closed, n_fp in (
        scoped.filter(first_detected_on__range=(health.false_positive_start, end))
        .values("anomaly_type")
        .annotate(n=Count("pk"), n_closed=Count("pk", filter=closed), n_fp=Count("pk", filter=fp))
        .values_list("anomaly_type", "n", "n_closed", "n_fp")
    ):
        detector = types.get(anomaly_type, anomaly_type)
        total = totals.setdefault(detector, [0, 0, 0])
        total[0] += n
        total[1] += n_closed
        total[2] += n_fp
    health.false_positives = [
        FalsePositiveRow(name, *totals.get(name, [0, 0, 0])) for name in names
    ]


def _muted_part(health: DetectorHealth, user: Any) -> None:
    cutoff = health.now - dt.timedelta(days=health.muted_days)
    latest_snooze = (
        AnomalyActivity.objects.filter(anomaly=OuterRef("pk"), action=ActivityAction.SNOOZE)
        .order_by("-created_at", "-id")
        .values("created_at")[:1]
    )
    muted = (
        anomalies_for_user(user)
        .filter(status__in=[AnomalyStatus.ACKNOWLEDGED, AnomalyStatus.SNOOZED])
        .annotate(
            muted_since=Case(
                When(status=AnomalyStatus.ACKNOWLEDGED, then=F("acknowledged_at")),
                default=Subquery(latest_snooze),
            )
        )
        .filter(muted_since__lte=cutoff)
    )
    bounded = muted.order_by()[: MUTED_COUNT_MAX + 1].count()
    health.muted_count = min(bounded, MUTED_COUNT_MAX)
    health.muted_count_capped = bounded > MUTED_COUNT_MAX
    rows = muted.select_related("product", "location", "assignee").order_by("muted_since", "pk")
    health.muted = [
        MutedRow(anomaly=a, since=a.muted_since, days=(health.now - a.muted_since).days)
        for a in rows[:MUTED_ROWS]
    ]


def detector_health(
    *,
    user: Any,
    muted_days: int = MUTED_DAYS_DEFAULT,
    include_runs: bool = True,
    now: dt.datetime | None = None,
) -> DetectorHealth:
    """The detector health of the chain as ``user`` may see it (module docstring).

    ``include_runs=False`` leaves out runs and schedules (a user without the permission to see
    detection runs); findings are always those of the user's stores. ``muted_days`` is the N of
    "acknowledged or snoozed for more than N days" (1..``MUTED_DAYS_MAX``). ``now`` defaults to
    the current time.
    """
    if not 1 <= muted_days <= MUTED_DAYS_MAX:
        raise ValueError(f"muted_days must be 1 to {MUTED_DAYS_MAX}, not {muted_days}.")
    health = DetectorHealth(now=now or timezone.now(), include_runs=include_runs)
    health.muted_days = muted_days
    if include_runs:
        _runs_part(health)
    _findings_part(health, user)
    _muted_part(health, user)
    return health
