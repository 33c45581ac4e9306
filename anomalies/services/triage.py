"""Triage: the only code that changes an anomaly's status, assignee or snooze.

The lifecycle (one set of rules for the admin, the API, tasks and detection)::

    open ──acknowledge (claims it when unassigned)──▶ acknowledged
    open | acknowledged | snoozed ──snooze (until a day)──▶ snoozed
    snoozed ──unsnooze, or wake: the day has come or detection found it worse──▶ open
    open | acknowledged | snoozed ──resolve──▶ resolved
    open | acknowledged | snoozed ──dismiss (false positive, expected, duplicate)──▶ dismissed
    resolved ──regress: detection finds it again within SHELFWATCH_REGRESSION_DAYS──▶ open
    assign: while not closed; note: in any state.

Dismissed is final: a dismissed finding that fires again (overlapping it, or within
``SHELFWATCH_REGRESSION_DAYS`` of its last day) stays dismissed and is only extended, because a
dismissal says the detector is wrong about this SKU/location or that the cause was expected;
reopening it every day would undo that judgement. A resolved one was a real problem that was
dealt with, so seeing it again means the fix did not hold: it reopens, marked regressed.

Every change is a conditional UPDATE restricted to the state it was read in (status, assignee,
snooze date), so two people acting on the same anomaly cannot both win: the loser's row count
is 0 and it gets a ``TransitionError`` saying "changed by someone else: now <state>". A caller
that knows what the person saw passes ``expected_status`` and is refused the same way when the
anomaly has moved on meanwhile, even if the new state would allow the change. Every change
writes an ``AnomalyActivity`` row (actor, ``None`` for the system; action; from/to status; note).

The bulk functions (``anomalies_*``) serve admin actions and tasks: they apply the same rule to
many rows and report what changed and what was skipped and why. The single-object functions
(``anomaly_*``) are the bulk ones applied to one id, raising when that id was skipped.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from anomalies.models import (
    Anomaly,
    AnomalyActivity,
    AnomalyStatus,
    DismissReason,
    Severity,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

__all__ = [  # DismissReason lives on the model (a field's choices); re-exported for callers.
    "ACTIVE_STATUSES",
    "CLOSED_STATUSES",
    "WORKABLE_STATUSES",
    "DismissReason",
    "Redetections",
    "TransitionError",
    "TransitionReport",
]

# On the triage list (the ``Anomaly.objects.open()`` statuses).
ACTIVE_STATUSES: tuple[str, ...] = (AnomalyStatus.OPEN, AnomalyStatus.ACKNOWLEDGED)
# Not closed: can still be assigned, snoozed, resolved or dismissed.
WORKABLE_STATUSES: tuple[str, ...] = (*ACTIVE_STATUSES, AnomalyStatus.SNOOZED)
CLOSED_STATUSES: tuple[str, ...] = (AnomalyStatus.RESOLVED, AnomalyStatus.DISMISSED)
SEVERITY_RANK: dict[str, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
# Ids locked and updated per statement: far below SQLite's (32766) and PostgreSQL's (65535)
# bound-parameter limits, so "select all" over a whole filtered changelist still works.
BATCH_SIZE_ROWS = 5000
SNOOZE_MAX_DAYS = 365
NOT_FOUND = "not found"
CHANGED = "changed by someone else: now"

# Clearing the snooze: whenever an anomaly leaves the snoozed state.
_UNSNOOZE: dict[str, Any] = {
    "snoozed_until": None,
    "snoozed_severity": "",
    "snoozed_value_at_risk": None,
}


class TransitionError(ValueError):
    """A triage change the anomaly's current state does not allow (or a missing anomaly)."""


@dataclass
class TransitionReport:
    """Outcome of a bulk change: ids changed, and ids skipped with the reason.

    A reason is the status the anomaly was found in (``"resolved"``), ``"not found"``,
    ``"changed by someone else: now resolved"`` or a short phrase (``"already assigned to
    ops"``).
    """

    verb: str
    changed_ids: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)

    @property
    def changed_count(self) -> int:
        return len(self.changed_ids)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        """One line for a person: ``"2 anomalies acknowledged; 3 skipped (2 resolved, 1 ...)."``"""
        noun = "anomaly" if self.changed_count == 1 else "anomalies"
        text = f"{self.changed_count} {noun} {self.verb}"
        if self.skipped:
            reasons = Counter(self.skipped.values()).most_common()
            why = ", ".join(f"{count} {reason}" for reason, count in reasons)
            text += f"; {self.skipped_count} skipped ({why})"
        return text + "."

    def error_for(self, anomaly_id: int) -> str:
        """Why ``anomaly_id`` was skipped, as a sentence."""
        reason = self.skipped[anomaly_id]
        if reason == NOT_FOUND:
            return f"Anomaly {anomaly_id} not found."
        if reason.startswith(CHANGED):
            return f"Anomaly {anomaly_id} was {reason}."
        if reason in AnomalyStatus.values:
            return f"Anomaly {anomaly_id} is {reason}; it cannot be {self.verb}."
        return f"Anomaly {anomaly_id} is {reason}."


def _batches(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@dataclass(frozen=True)
class _Row:
    """The part of an anomaly a transition reads, and guards its UPDATE with."""

    pk: int
    status: str
    assignee_id: int | None
    snoozed_until: dt.date | None

    @property
    def guard(self) -> tuple[str, int | None, dt.date | None]:
        return self.status, self.assignee_id, self.snoozed_until


def _lock_rows(ids: list[int]) -> dict[int, _Row]:
    """Read (and on PostgreSQL lock, in id order) the triage state of ``ids``."""
    return {
        pk: _Row(pk, status, assignee_id, snoozed_until)
        for pk, status, assignee_id, snoozed_until in Anomaly.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", "status", "assignee_id", "snoozed_until")
    }


def _changed_underneath(ids: list[int]) -> TransitionError:
    now = dict(Anomaly.objects.filter(pk__in=ids).values_list("pk", "status"))
    if len(ids) == 1:
        return TransitionError(f"Anomaly {ids[0]} was {CHANGED} {now.get(ids[0], 'deleted')}.")
    return TransitionError(
        f"{len(ids)} anomalies were changed by someone else while this ran; "
        "nothing was changed, try again."
    )


def _transition(
    *,
    anomaly_ids: Iterable[int],
    actor: User | None,
    action: str,
    verb: str,
    allowed_from: tuple[str, ...],
    values: dict[str, Any],
    note: Callable[[_Row], str],
    skip: Callable[[_Row], str | None] = lambda row: None,
    expected_status: str | None = None,
) -> TransitionReport:
    """Apply one rule to many anomalies.

    Inside one transaction: lock the requested rows; keep those whose status is
    ``expected_status`` (when given), in ``allowed_from`` and not refused by ``skip``; UPDATE
    exactly those with ``values``, each guarded by the status, assignee and snooze date it was
    read with; bulk-create one activity row per changed anomaly. ``actor=None`` is the system.
    Raises ``TransitionError`` (and changes nothing) if a guarded UPDATE misses a row.
    """
    report = TransitionReport(verb=verb)
    now = timezone.now()
    to_status = values.get("status")
    with transaction.atomic():
        for chunk in _batches(sorted(set(anomaly_ids)), BATCH_SIZE_ROWS):
            found = _lock_rows(chunk)
            changing: list[_Row] = []
            for pk in chunk:
                row = found.get(pk)
                if row is None:
                    report.skipped[pk] = NOT_FOUND
                elif expected_status is not None and row.status != expected_status:
                    report.skipped[pk] = f"{CHANGED} {row.status}"
                elif row.status not in allowed_from:
                    report.skipped[pk] = row.status
                elif (reason := skip(row)) is not None:
                    report.skipped[pk] = reason
                else:
                    changing.append(row)
            if not changing:
                continue
            groups: dict[tuple, list[int]] = {}
            for row in changing:
                groups.setdefault(row.guard, []).append(row.pk)
            for (status, assignee_id, snoozed_until), ids in groups.items():
                updated = Anomaly.objects.filter(
                    pk__in=ids,
                    status=status,
                    assignee_id=assignee_id,
                    snoozed_until=snoozed_until,
                ).update(**values, updated_at=now)
                if updated != len(ids):
                    # Only reachable without row locks (SQLite): another writer got in between.
                    raise _changed_underneath(ids)
            AnomalyActivity.objects.bulk_create(
                [
                    AnomalyActivity(
                        anomaly_id=row.pk,
                        actor=actor,
                        action=action,
                        from_status=row.status,
                        to_status=to_status or row.status,
                        note=note(row),
                    )
                    for row in changing
                ],
                batch_size=BATCH_SIZE_ROWS,
            )
            report.changed_ids.extend(row.pk for row in changing)
    return report


def _one(report: TransitionReport, anomaly_id: int) -> Anomaly:
    if anomaly_id in report.skipped:
        raise TransitionError(report.error_for(anomaly_id))
    return Anomaly.objects.select_related("product", "location", "assignee").get(pk=anomaly_id)


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def snooze_end(*, until: dt.date | None = None, days: int | None = None, today: dt.date) -> dt.date:
    """The day a snooze ends: ``until`` itself, or ``today + days``.

    Give exactly one of them; ``days`` is 1..``SNOOZE_MAX_DAYS`` and ``until`` must fall after
    ``today`` and at most ``SNOOZE_MAX_DAYS`` later. Raises ``ValueError`` otherwise.
    """
    if (until is None) == (days is None):
        raise ValueError("Give either a date to snooze until or a number of days, not both.")
    if days is not None:
        if not 1 <= days <= SNOOZE_MAX_DAYS:
            raise ValueError(f"Snooze for 1 to {SNOOZE_MAX_DAYS} days, not {days}.")
        return today + dt.timedelta(days=days)
    if until <= today:
        raise ValueError(f"Snooze until a day after today ({today}), not {until}.")
    if until > today + dt.timedelta(days=SNOOZE_MAX_DAYS):
        raise ValueError(f"Snooze for at most {SNOOZE_MAX_DAYS} days, not until {until}.")
    return until


# --- bulk --------------------------------------------------------------------------------------


def anomalies_acknowledge(
    *, anomaly_ids: Iterable[int], actor: User, expected_status: str | None = None
) -> TransitionReport:
    """Open → acknowledged; the actor becomes the assignee of anomalies nobody owns yet."""
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="acknowledge",
        verb="acknowledged",
        allowed_from=(AnomalyStatus.OPEN,),
        values={
            "status": AnomalyStatus.ACKNOWLEDGED,
            "acknowledged_at": timezone.now(),
            "assignee": Coalesce(F("assignee"), Value(actor.pk)),
        },
        note=lambda row: "" if row.assignee_id else f"assigned to {actor.get_username()}",
        expected_status=expected_status,
    )


def anomalies_assign(
    *,
    anomaly_ids: Iterable[int],
    assignee: User | None,
    actor: User,
    expected_status: str | None = None,
) -> TransitionReport:
    """Set (or clear, with ``assignee=None``) the assignee of anomalies not yet closed."""
    target_id = assignee.pk if assignee is not None else None
    who = f"assigned to {assignee.get_username()}" if assignee is not None else "unassigned"
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="assign",
        verb="assigned" if assignee is not None else "unassigned",
        allowed_from=WORKABLE_STATUSES,
        values={"assignee": assignee},
        note=lambda row: who,
        skip=lambda row: f"already {who}" if row.assignee_id == target_id else None,
        expected_status=expected_status,
    )


def anomalies_snooze(
    *,
    anomaly_ids: Iterable[int],
    actor: User,
    until: dt.date | None = None,
    days: int | None = None,
    note: str = "",
    today: dt.date | None = None,
    expected_status: str | None = None,
) -> TransitionReport:
    """Open, acknowledged or snoozed → snoozed until a day (``until``, or ``days`` from today).

    Remembers the severity and value at risk it had, so detection can reopen it early when it
    gets worse. ``today`` defaults to the local date. Raises ``ValueError`` for a bad date
    (see ``snooze_end``).
    """
    day = snooze_end(until=until, days=days, today=today or timezone.localdate())
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="snooze",
        verb="snoozed",
        allowed_from=WORKABLE_STATUSES,
        values={
            "status": AnomalyStatus.SNOOZED,
            "snoozed_until": day,
            "snoozed_severity": F("severity"),
            "snoozed_value_at_risk": F("value_at_risk"),
        },
        note=lambda row: _join(f"until {day.isoformat()}", note),
        skip=lambda row: f"already snoozed until {day}" if row.snoozed_until == day else None,
        expected_status=expected_status,
    )


def anomalies_unsnooze(
    *,
    anomaly_ids: Iterable[int],
    actor: User,
    note: str = "",
    expected_status: str | None = None,
) -> TransitionReport:
    """Snoozed → open, before its day."""
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="unsnooze",
        verb="unsnoozed",
        allowed_from=(AnomalyStatus.SNOOZED,),
        values={"status": AnomalyStatus.OPEN, **_UNSNOOZE},
        note=lambda row: _join(f"was snoozed until {row.snoozed_until}", note),
        expected_status=expected_status,
    )


def anomalies_wake_snoozed(*, today: dt.date) -> TransitionReport:
    """Reopen (snoozed → open) every snoozed anomaly whose day has come (``until <= today``).

    Run daily by the beat schedule; running it again the same day changes nothing. The
    activity rows have no actor (the system).
    """
    due = list(
        Anomaly.objects.filter(status=AnomalyStatus.SNOOZED, snoozed_until__lte=today).values_list(
            "pk", flat=True
        )
    )
    return _transition(
        anomaly_ids=due,
        actor=None,
        action="wake",
        verb="reopened",
        allowed_from=(AnomalyStatus.SNOOZED,),
        values={"status": AnomalyStatus.OPEN, **_UNSNOOZE},
        note=lambda row: f"snooze ended (snoozed until {row.snoozed_until})",
        # Re-snoozed to a later day between the query and the lock.
        skip=lambda row: (
            f"snoozed until {row.snoozed_until}" if row.snoozed_until > today else None
        ),
    )


def anomalies_resolve(
    *,
    anomaly_ids: Iterable[int],
    actor: User,
    note: str = "",
    expected_status: str | None = None,
) -> TransitionReport:
    """Open, acknowledged or snoozed → resolved (the problem was real and has been dealt with)."""
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="resolve",
        verb="resolved",
        allowed_from=WORKABLE_STATUSES,
        values={"status": AnomalyStatus.RESOLVED, "closed_at": timezone.now(), **_UNSNOOZE},
        note=lambda row: note,
        expected_status=expected_status,
    )


def anomalies_dismiss(
    *,
    anomaly_ids: Iterable[int],
    actor: User,
    reason: str,
    note: str = "",
    expected_status: str | None = None,
) -> TransitionReport:
    """Open, acknowledged or snoozed → dismissed, for one of the ``DismissReason`` reasons.

    Raises ``ValueError`` for an unknown reason.
    """
    if reason not in DismissReason.values:
        raise ValueError(
            f"Unknown dismiss reason {reason!r}; use one of {', '.join(DismissReason.values)}."
        )
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="dismiss",
        verb="dismissed",
        allowed_from=WORKABLE_STATUSES,
        values={
            "status": AnomalyStatus.DISMISSED,
            "closed_at": timezone.now(),
            "dismiss_reason": reason,
            **_UNSNOOZE,
        },
        note=lambda row: _join(f"reason: {reason}", note),
        expected_status=expected_status,
    )


# --- one anomaly -------------------------------------------------------------------------------


def anomaly_acknowledge(
    *, anomaly_id: int, actor: User, expected_status: str | None = None
) -> Anomaly:
    """Acknowledge one anomaly; raises ``TransitionError`` unless it is open."""
    report = anomalies_acknowledge(
        anomaly_ids=[anomaly_id], actor=actor, expected_status=expected_status
    )
    return _one(report, anomaly_id)


def anomaly_assign(
    *,
    anomaly_id: int,
    assignee: User | None,
    actor: User,
    expected_status: str | None = None,
) -> Anomaly:
    """Assign one anomaly (``None`` unassigns); raises ``TransitionError`` once it is closed."""
    report = anomalies_assign(
        anomaly_ids=[anomaly_id], assignee=assignee, actor=actor, expected_status=expected_status
    )
    return _one(report, anomaly_id)


def anomaly_snooze(
    *,
    anomaly_id: int,
    actor: User,
    until: dt.date | None = None,
    days: int | None = None,
    note: str = "",
    today: dt.date | None = None,
    expected_status: str | None = None,
) -> Anomaly:
    """Snooze one anomaly until ``until`` or for ``days`` days.

    Raises ``ValueError`` for a bad date, ``TransitionError`` once it is closed.
    """
    report = anomalies_snooze(
        anomaly_ids=[anomaly_id],
        actor=actor,
        until=until,
        days=days,
        note=note,
        today=today,
        expected_status=expected_status,
    )
    return _one(report, anomaly_id)


def anomaly_unsnooze(
    *, anomaly_id: int, actor: User, note: str = "", expected_status: str | None = None
) -> Anomaly:
    """Reopen one snoozed anomaly now; raises ``TransitionError`` unless it is snoozed."""
    report = anomalies_unsnooze(
        anomaly_ids=[anomaly_id], actor=actor, note=note, expected_status=expected_status
    )
    return _one(report, anomaly_id)


def anomaly_resolve(
    *, anomaly_id: int, actor: User, note: str = "", expected_status: str | None = None
) -> Anomaly:
    """Resolve one anomaly; raises ``TransitionError`` once it is closed."""
    report = anomalies_resolve(
        anomaly_ids=[anomaly_id], actor=actor, note=note, expected_status=expected_status
    )
    return _one(report, anomaly_id)


def anomaly_dismiss(
    *,
    anomaly_id: int,
    actor: User,
    reason: str,
    note: str = "",
    expected_status: str | None = None,
) -> Anomaly:
    """Dismiss one anomaly; raises ``TransitionError`` once it is closed."""
    report = anomalies_dismiss(
        anomaly_ids=[anomaly_id],
        actor=actor,
        reason=reason,
        note=note,
        expected_status=expected_status,
    )
    return _one(report, anomaly_id)


def anomaly_note_add(*, anomaly_id: int, actor: User, note: str) -> AnomalyActivity:
    """Add a note to the activity log of an anomaly, in any state; returns the activity row.

    Raises ``ValueError`` for a blank note and ``TransitionError`` for a missing anomaly.
    """
    text = note.strip()
    if not text:
        raise ValueError("A note cannot be empty.")
    status = Anomaly.objects.filter(pk=anomaly_id).values_list("status", flat=True).first()
    if status is None:
        raise TransitionError(f"Anomaly {anomaly_id} not found.")
    return AnomalyActivity.objects.create(
        anomaly_id=anomaly_id,
        actor=actor,
        action="note",
        from_status=status,
        to_status=status,
        note=text,
    )


# --- detection finds an existing anomaly again -------------------------------------------------


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

    action: str  # "regress" (resolved → open) or "wake" (snoozed → open)
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
            return Redetection("regress", f"fired again as of {as_of} ({start} – {end}), {when}")
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
            return Redetection("wake", "worse while snoozed: " + "; ".join(reasons))
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
        notes = {pk: decision.note for pk, decision in self.decisions.items()}
        regress = [pk for pk, d in self.decisions.items() if d.action == "regress"]
        wake = [pk for pk, d in self.decisions.items() if d.action == "wake"]
        counts = {"regressed": 0, "woken": 0}
        if regress:
            report = _transition(
                anomaly_ids=regress,
                actor=None,
                action="regress",
                verb="reopened",
                allowed_from=(AnomalyStatus.RESOLVED,),
                values={
                    "status": AnomalyStatus.OPEN,
                    "closed_at": None,
                    "regressed_at": timezone.now(),
                    "regression_count": F("regression_count") + 1,
                },
                note=lambda row: notes[row.pk],
            )
            counts["regressed"] = report.changed_count
        if wake:
            report = _transition(
                anomaly_ids=wake,
                actor=None,
                action="wake",
                verb="reopened",
                allowed_from=(AnomalyStatus.SNOOZED,),
                values={"status": AnomalyStatus.OPEN, **_UNSNOOZE},
                note=lambda row: notes[row.pk],
            )
            counts["woken"] = report.changed_count
        return counts
