"""What detection finding an existing anomaly again does to its triage state.

Dismissed is final: a dismissed finding that fires again (overlapping it, or within
``SHELFWATCH_REGRESSION_DAYS`` of its last day) stays dismissed and is only extended, because a
dismissal says the detector is wrong about this SKU/location or that the cause was expected;
reopening it every day would undo that judgement. A resolved one was a real problem that was
dealt with, so seeing it again means the fix did not hold: it reopens, marked regressed. A
snoozed one that got worse than when it was snoozed wakes up early.

The decisions here are pure (``anomaly_on_redetected``, ``snooze_worsening``); ``Redetections``
collects them while ``anomalies.services.persistence`` matches findings to anomalies and then
applies them through the triage transitions (``anomalies_regress``, ``anomalies_wake_worsened``),
which remain the only code that changes a status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from anomalies.models import ActivityAction, Anomaly, AnomalyStatus, Severity
from anomalies.services.triage import (
    CLOSED_STATUSES,
    anomalies_regress,
    anomalies_wake_worsened,
)

SEVERITY_RANK: dict[str, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
REGRESS = ActivityAction.REGRESS
WAKE = ActivityAction.WAKE


def regression_window_days() -> int:
    """``SHELFWATCH_REGRESSION_DAYS``: how long after its last day a resolved anomaly reopens."""
    days = int(getattr(settings, "SHELFWATCH_REGRESSION_DAYS", 14))
    if days < 0:
        raise ImproperlyConfigured(f"SHELFWATCH_REGRESSION_DAYS={days} must be 0 or more.")
    return days


def snooze_worsen_pct() -> Decimal:
    """``SHELFWATCH_SNOOZE_WORSEN_PCT``: value-at-risk growth (percent) that ends a snooze."""
    pct = Decimal(getattr(settings, "SHELFWATCH_SNOOZE_WORSEN_PCT", 50))
    if pct < 0:
        raise ImproperlyConfigured(f"SHELFWATCH_SNOOZE_WORSEN_PCT={pct} must be 0 or more.")
    return pct


@dataclass(frozen=True)
class RedetectionBaseline:
    """An existing anomaly as it was before a detection run touched it."""

    pk: int
    status: str
    end_date: dt.date
    last_detected_on: dt.date
    snoozed_severity: str
    snoozed_value_at_risk: Decimal | None

    @classmethod
    def of(cls, anomaly: Anomaly) -> RedetectionBaseline:
        return cls(
            pk=anomaly.pk,
            status=anomaly.status,
            end_date=anomaly.end_date,
            last_detected_on=anomaly.last_detected_on,
            snoozed_severity=anomaly.snoozed_severity,
            snoozed_value_at_risk=anomaly.snoozed_value_at_risk,
        )


@dataclass(frozen=True)
class Redetection:
    """What detection finding an anomaly again does to its triage state."""

    action: str  # REGRESS (resolved → open) or WAKE (snoozed → open)
    note: str


def snooze_worsening(
    *,
    baseline_severity: str,
    baseline_value_at_risk: Decimal | None,
    severity: str,
    value_at_risk: Decimal,
    worsen_pct: Decimal,
) -> list[str]:
    """Why a snoozed anomaly is now worse than when it was snoozed (empty list: it is not).

    Worse means a higher severity (info < warning < critical), or a value at risk ``v`` above
    the snoozed value ``b`` with ``v >= b * (1 + worsen_pct / 100)`` (from ``b = 0`` any
    positive value counts). Money in the shop's currency, 2 decimals.
    """
    reasons = []
    if baseline_severity and SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(
        baseline_severity, 0
    ):
        reasons.append(f"severity {baseline_severity} → {severity}")
    if baseline_value_at_risk is not None:
        base = Decimal(baseline_value_at_risk)
        value = Decimal(value_at_risk)
        if value > base and value >= base * (1 + worsen_pct / 100):
            growth = f" (+{(value - base) / base * 100:.0f}%)" if base > 0 else ""
            reasons.append(f"value at risk {base:.2f} → {value:.2f}{growth}")
    return reasons


def anomaly_on_redetected(
    *,
    before: RedetectionBaseline,
    start: dt.date,
    end: dt.date,
    severity: str,
    value_at_risk: Decimal,
    as_of: dt.date,
    regression_days: int,
    worsen_pct: Decimal,
) -> Redetection | None:
    """Decide what a finding (``start``..``end``, found as of ``as_of``) that extends an
    existing anomaly (``before``: its state before this run) does to its triage state. Pure.

    - resolved → ``regress`` when the finding is news: the run is newer than the anomaly's
      last detection, the finding reaches past the anomaly's last day, and it starts at most
      ``regression_days`` days after that last day (``regression_days = 0``: never).
    - snoozed → ``wake`` when the run is at least as recent as the last detection and
      ``snooze_worsening`` finds it worse than when it was snoozed.
    - anything else (open, acknowledged, dismissed; a re-run of an old date) → ``None``.
    """
    if before.status == AnomalyStatus.RESOLVED:
        gap_days = (start - before.end_date).days
        if (
            regression_days > 0
            and as_of > before.last_detected_on
            and end > before.end_date
            and gap_days <= regression_days
        ):
            when = (
                f"{gap_days} day(s) after its last day {before.end_date}"
                if gap_days > 0
                else f"still going after its last day {before.end_date}"
            )
            return Redetection(REGRESS, f"fired again as of {as_of} ({start} – {end}), {when}")
        return None
    if before.status == AnomalyStatus.SNOOZED and as_of >= before.last_detected_on:
        reasons = snooze_worsening(
            baseline_severity=before.snoozed_severity,
            baseline_value_at_risk=before.snoozed_value_at_risk,
            severity=severity,
            value_at_risk=value_at_risk,
            worsen_pct=worsen_pct,
        )
        if reasons:
            return Redetection(WAKE, "worse while snoozed: " + "; ".join(reasons))
    return None


class Redetections:
    """What one detection run's findings do to the triage state of existing anomalies.

    Used by ``anomalies_persist`` (which owns the matching of findings to anomalies):

    1. ``closed_match(candidates, start=...)`` when no anomaly overlaps a finding: the
       resolved or dismissed anomaly of the same type/SKU/location the finding continues
       (its latest one, ending at most ``regression_days`` before the finding starts), so the
       finding extends it instead of raising a new anomaly;
    2. ``seen(anomaly, ...)`` for every finding that extends a saved anomaly, *before* the
       finding's numbers and dates are copied onto it;
    3. ``apply()`` once the extensions are saved: reopens the regressed and worsened ones with
       guarded UPDATEs and activity rows without an actor, and returns counts by action.
    """

    def __init__(
        self,
        *,
        as_of: dt.date,
        regression_days: int | None = None,
        worsen_pct: Decimal | None = None,
    ) -> None:
        self.as_of = as_of
        self.regression_days = (
            regression_days if regression_days is not None else regression_window_days()
        )
        self.worsen_pct = worsen_pct if worsen_pct is not None else snooze_worsen_pct()
        self.before: dict[int, RedetectionBaseline] = {}
        self.decisions: dict[int, Redetection] = {}

    @property
    def lookback_days(self) -> int:
        """How many days before a finding's start an anomaly it may continue can end."""
        return self.regression_days

    def closed_match(self, candidates: Sequence[Anomaly], *, start: dt.date) -> Anomaly | None:
        """The closed anomaly a finding starting on ``start`` continues, if any.

        ``candidates`` are the anomalies of the finding's type/SKU/location, none of which
        overlaps the finding. Only the latest one ending before ``start`` counts, and only
        when it is resolved or dismissed, ended within ``regression_days`` of ``start`` and was
        last detected before this run's as-of date (a re-run of an old date matches nothing).
        """
        if self.regression_days <= 0:
            return None
        earlier = [a for a in candidates if a.end_date < start]
        if not earlier:
            return None
        # A new anomaly of this very run may be the latest: then that is what it continues.
        latest = max(earlier, key=lambda a: (a.end_date, a.pk is None, a.pk or 0))
        if latest.pk is None:
            return None
        before = self.before.get(latest.pk) or RedetectionBaseline.of(latest)
        if (
            before.status in CLOSED_STATUSES
            and (start - latest.end_date).days <= self.regression_days
            and self.as_of > before.last_detected_on
        ):
            return latest
        return None

    def seen(
        self,
        anomaly: Anomaly,
        *,
        start: dt.date,
        end: dt.date,
        severity: str,
        value_at_risk: Decimal,
    ) -> None:
        """Record that a finding extends ``anomaly`` (saved, not yet changed by the finding)."""
        before = self.before.setdefault(anomaly.pk, RedetectionBaseline.of(anomaly))
        if anomaly.pk in self.decisions:
            return
        decision = anomaly_on_redetected(
            before=before,
            start=start,
            end=end,
            severity=severity,
            value_at_risk=value_at_risk,
            as_of=self.as_of,
            regression_days=self.regression_days,
            worsen_pct=self.worsen_pct,
        )
        if decision is not None:
            self.decisions[anomaly.pk] = decision

    def apply(self) -> dict[str, int]:
        """Reopen what ``seen`` decided; returns ``{"regressed": n, "woken": m}``."""
        regress = {pk: d.note for pk, d in self.decisions.items() if d.action == REGRESS}
        wake = {pk: d.note for pk, d in self.decisions.items() if d.action == WAKE}
        counts = {"regressed": 0, "woken": 0}
        if regress:
            counts["regressed"] = anomalies_regress(notes=regress).changed_count
        if wake:
            counts["woken"] = anomalies_wake_worsened(notes=wake).changed_count
        return counts
