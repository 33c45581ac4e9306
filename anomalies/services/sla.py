"""Triage SLA: how long a finding has waited for its first answer, in business hours.

``business_seconds`` is a pure function (no database) over wall-clock times; ``sla_timer``
applies a ``TriageSla`` row's targets to one anomaly. The clock starts when detection raised
the finding (``created_at``) and stops at its first acknowledgement or when it was closed
(``acknowledged_at`` / ``closed_at``, whichever came first). A finding snoozed without having
been acknowledged has no stop time on record: it shows no timer (``None``) until it wakes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from anomalies.models import Anomaly, AnomalyStatus, Severity, TriageSla

SECONDS_PER_DAY = 24 * 3600

SLA_OK = "sla-ok"
SLA_WARN = "sla-warn"
SLA_BREACHED = "sla-breached"


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours: the same ``opens``..``closes`` on each of ``weekdays`` (0 = Monday)."""

    opens: dt.time
    closes: dt.time
    weekdays: frozenset[int]

    def __post_init__(self) -> None:
        if self.closes <= self.opens:
            raise ValueError(f"The business day ends ({self.closes}) before it starts.")
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise ValueError(
                f"Business days must be some of 0..6 (Monday..Sunday): {self.weekdays}"
            )

    @property
    def day_seconds(self) -> int:
        """Length of one business day in seconds."""
        return _seconds_of(self.closes) - _seconds_of(self.opens)


def _seconds_of(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _seconds_within_day(day: dt.date, start: dt.datetime, end: dt.datetime, h: BusinessHours):
    """Business seconds of ``day`` between naive ``start`` and ``end`` (both on that day or
    around it)."""
    if day.weekday() not in h.weekdays:
        return 0
    lo = max(start, dt.datetime.combine(day, h.opens))
    hi = min(end, dt.datetime.combine(day, h.closes))
    return max(0, int((hi - lo).total_seconds()))


def business_seconds(start: dt.datetime, end: dt.datetime, hours: BusinessHours) -> int:
    """Seconds of business time between ``start`` and ``end`` (0 if ``end`` is not later).

    Both are read on the wall clock of ``start``'s time zone (aware datetimes are converted to
    it; naive ones are taken as they are), so a business day is ``opens``..``closes`` local
    time also across a daylight-saving change. Constant time whatever the span: whole weeks
    between the first and the last day are counted, not walked.
    """
    if start.tzinfo is not None:
        end = end.astimezone(start.tzinfo).replace(tzinfo=None)
        start = start.replace(tzinfo=None)
    elif end.tzinfo is not None:
        raise ValueError("start is naive but end is aware")
    if end <= start:
        return 0
    first, last = start.date(), end.date()
    if first == last:
        return _seconds_within_day(first, start, end, hours)
    total = _seconds_within_day(first, start, end, hours)
    total += _seconds_within_day(last, start, end, hours)
    middle_days = (last - first).days - 1
    weeks, rest = divmod(middle_days, 7)
    business_days = weeks * len(hours.weekdays)
    business_days += sum(
        1 for i in range(1, rest + 1) if (first.weekday() + i) % 7 in hours.weekdays
    )
    return total + business_days * hours.day_seconds


def duration_text(seconds: int) -> str:
    """A duration as the list shows it: ``45m``, ``3h 10m``, ``4h``; from 10 hours on, whole
    hours (``27h``): minutes no longer matter and the column stays narrow."""
    minutes = max(0, seconds) // 60
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes}m"
    return f"{hours}h {minutes}m" if minutes and hours < 10 else f"{hours}h"


@dataclass(frozen=True)
class SlaPolicy:
    """The targets of a ``TriageSla`` row, detached from the database."""

    targets_hours: dict[str, int]  # Severity value -> business hours
    warn_percent: int
    hours: BusinessHours

    @classmethod
    def from_row(cls, row: TriageSla) -> SlaPolicy:
        """The targets of ``row``."""
        weekdays = frozenset(i for i, name in enumerate(row.WEEKDAY_FIELDS) if getattr(row, name))
        return cls(
            targets_hours={
                Severity.CRITICAL: row.critical_hours,
                Severity.WARNING: row.warning_hours,
                Severity.INFO: row.info_hours,
            },
            warn_percent=row.warn_percent,
            hours=BusinessHours(opens=row.opens_at, closes=row.closes_at, weekdays=weekdays),
        )


@dataclass(frozen=True)
class SlaTimer:
    """One finding's timer: business time waited against its target."""

    elapsed_seconds: int
    target_seconds: int
    state: str  # SLA_OK | SLA_WARN | SLA_BREACHED
    running: bool  # False once the finding got its first answer

    @property
    def text(self) -> str:
        """``3h 10m of 4h``."""
        return f"{duration_text(self.elapsed_seconds)} of {duration_text(self.target_seconds)}"


def sla_state(*, elapsed_seconds: int, target_seconds: int, warn_percent: int) -> str:
    """``sla-ok`` below ``warn_percent`` of the target, ``sla-warn`` up to it, then breached."""
    if elapsed_seconds >= target_seconds:
        return SLA_BREACHED
    if elapsed_seconds * 100 >= target_seconds * warn_percent:
        return SLA_WARN
    return SLA_OK


def sla_policy_load() -> SlaPolicy:
    """The current targets (one query; the row is created with the defaults if missing)."""
    return SlaPolicy.from_row(TriageSla.load())


def sla_timer(*, anomaly: Anomaly, policy: SlaPolicy, now: dt.datetime) -> SlaTimer | None:
    """The SLA timer of ``anomaly`` at ``now`` (aware), or ``None`` when it has none.

    ``None``: an unknown severity, or a finding snoozed without ever being acknowledged (the
    snooze was its answer, but its time is not on record).
    """
    target_hours = policy.targets_hours.get(anomaly.severity)
    if not target_hours or anomaly.created_at is None:
        return None
    answered = [t for t in (anomaly.acknowledged_at, anomaly.closed_at) if t is not None]
    stop = min(answered) if answered else None
    if stop is None and anomaly.status == AnomalyStatus.SNOOZED:
        return None
    start = timezone.localtime(anomaly.created_at)
    elapsed = business_seconds(start, stop or now, policy.hours)
    target = target_hours * 3600
    return SlaTimer(
        elapsed_seconds=elapsed,
        target_seconds=target,
        state=sla_state(
            elapsed_seconds=elapsed, target_seconds=target, warn_percent=policy.warn_percent
        ),
        running=stop is None,
    )
