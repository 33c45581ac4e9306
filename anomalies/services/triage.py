"""Triage: the only code that changes an anomaly's status or assignee.

Every change is a conditional UPDATE restricted to the statuses the change may start from, so
two people acting on the same anomaly cannot both win: the second one's row count is 0 and it
gets a ``TransitionError`` naming the state it found. Every change writes an
``AnomalyActivity`` row (actor, action, from/to status, note).

The bulk functions (``anomalies_*``) serve admin actions: they apply the same rule to many rows
and report what changed and what was skipped and why. The single-object functions
(``anomaly_*``) are the bulk ones applied to one id, raising when that id was skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from anomalies.models import Anomaly, AnomalyActivity, AnomalyStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Statuses from which an anomaly can still be worked on.
ACTIVE_STATUSES: tuple[str, ...] = (AnomalyStatus.OPEN, AnomalyStatus.ACKNOWLEDGED)
# Ids locked and updated per statement: far below SQLite's (32766) and PostgreSQL's (65535)
# bound-parameter limits, so "select all" over a whole filtered changelist still works.
BATCH_SIZE_ROWS = 5000
NOT_FOUND = "not found"


class DismissReason(models.TextChoices):
    FALSE_POSITIVE = "false_positive", "False positive"
    EXPECTED = "expected", "Expected (promotion, holiday, known event)"
    DUPLICATE = "duplicate", "Duplicate of another anomaly"


class TransitionError(ValueError):
    """A triage change the anomaly's current state does not allow (or a missing anomaly)."""


@dataclass
class TransitionReport:
    """Outcome of a bulk change: ids changed, and ids skipped with the reason.

    A reason is the status the anomaly was found in (``"resolved"``), ``"not found"`` or a
    short phrase (``"already assigned to ops"``).
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
        if reason in AnomalyStatus.values:
            return f"Anomaly {anomaly_id} is {reason}; it cannot be {self.verb}."
        return f"Anomaly {anomaly_id} is {reason}."


def _batches(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@dataclass(frozen=True)
class _Row:
    pk: int
    status: str
    assignee_id: int | None


def _transition(
    *,
    anomaly_ids: Iterable[int],
    actor: User,
    action: str,
    verb: str,
    allowed_from: tuple[str, ...],
    values: dict[str, Any],
    note: Callable[[_Row], str],
    skip: Callable[[_Row], str | None] = lambda row: None,
) -> TransitionReport:
    """Apply one rule to many anomalies.

    Inside one transaction: lock the requested rows, keep those in ``allowed_from`` (and not
    refused by ``skip``), UPDATE exactly those with ``values`` (still guarded by status), and
    bulk-create one activity row per changed anomaly.
    """
    report = TransitionReport(verb=verb)
    now = timezone.now()
    to_status = values.get("status")
    with transaction.atomic():
        for chunk in _batches(sorted(set(anomaly_ids)), BATCH_SIZE_ROWS):
            found = {
                pk: _Row(pk, status, assignee_id)
                for pk, status, assignee_id in Anomaly.objects.select_for_update()
                .filter(pk__in=chunk)
                .order_by("pk")
                .values_list("pk", "status", "assignee_id")
            }
            changing: list[_Row] = []
            for pk in chunk:
                row = found.get(pk)
                if row is None:
                    report.skipped[pk] = NOT_FOUND
                elif row.status not in allowed_from:
                    report.skipped[pk] = row.status
                elif (reason := skip(row)) is not None:
                    report.skipped[pk] = reason
                else:
                    changing.append(row)
            if not changing:
                continue
            ids = [row.pk for row in changing]
            updated = Anomaly.objects.filter(pk__in=ids, status__in=allowed_from).update(
                **values, updated_at=now
            )
            if updated != len(ids):
                # Only reachable without row locks (SQLite): another writer got in between.
                raise TransitionError("Anomalies changed concurrently; nothing was changed.")
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
            report.changed_ids.extend(ids)
    return report


def _one(report: TransitionReport, anomaly_id: int) -> Anomaly:
    if anomaly_id in report.skipped:
        raise TransitionError(report.error_for(anomaly_id))
    return Anomaly.objects.select_related("product", "location", "assignee").get(pk=anomaly_id)


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


# --- bulk --------------------------------------------------------------------------------------


def anomalies_acknowledge(*, anomaly_ids: Iterable[int], actor: User) -> TransitionReport:
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
    )


def anomalies_assign(
    *, anomaly_ids: Iterable[int], assignee: User | None, actor: User
) -> TransitionReport:
    """Set (or clear, with ``assignee=None``) the assignee of open or acknowledged anomalies."""
    target_id = assignee.pk if assignee is not None else None
    who = f"assigned to {assignee.get_username()}" if assignee is not None else "unassigned"
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="assign",
        verb="assigned" if assignee is not None else "unassigned",
        allowed_from=ACTIVE_STATUSES,
        values={"assignee": assignee},
        note=lambda row: who,
        skip=lambda row: f"already {who}" if row.assignee_id == target_id else None,
    )


def anomalies_resolve(
    *, anomaly_ids: Iterable[int], actor: User, note: str = ""
) -> TransitionReport:
    """Open or acknowledged → resolved (the problem was real and has been dealt with)."""
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="resolve",
        verb="resolved",
        allowed_from=ACTIVE_STATUSES,
        values={"status": AnomalyStatus.RESOLVED, "closed_at": timezone.now()},
        note=lambda row: note,
    )


def anomalies_dismiss(
    *, anomaly_ids: Iterable[int], actor: User, reason: str, note: str = ""
) -> TransitionReport:
    """Open or acknowledged → dismissed, for one of the ``DismissReason`` reasons."""
    if reason not in DismissReason.values:
        raise ValueError(
            f"Unknown dismiss reason {reason!r}; use one of {', '.join(DismissReason.values)}."
        )
    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action="dismiss",
        verb="dismissed",
        allowed_from=ACTIVE_STATUSES,
        values={"status": AnomalyStatus.DISMISSED, "closed_at": timezone.now()},
        note=lambda row: _join(f"reason: {reason}", note),
    )


# --- one anomaly -------------------------------------------------------------------------------


def anomaly_acknowledge(*, anomaly_id: int, actor: User) -> Anomaly:
    """Acknowledge one anomaly; raises ``TransitionError`` unless it is open."""
    return _one(anomalies_acknowledge(anomaly_ids=[anomaly_id], actor=actor), anomaly_id)


def anomaly_assign(*, anomaly_id: int, assignee: User | None, actor: User) -> Anomaly:
    """Assign one anomaly (``None`` unassigns); raises ``TransitionError`` once it is closed."""
    report = anomalies_assign(anomaly_ids=[anomaly_id], assignee=assignee, actor=actor)
    return _one(report, anomaly_id)


def anomaly_resolve(*, anomaly_id: int, actor: User, note: str = "") -> Anomaly:
    """Resolve one anomaly; raises ``TransitionError`` unless it is open or acknowledged."""
    return _one(anomalies_resolve(anomaly_ids=[anomaly_id], actor=actor, note=note), anomaly_id)


def anomaly_dismiss(*, anomaly_id: int, actor: User, reason: str, note: str = "") -> Anomaly:
    """Dismiss one anomaly; raises ``TransitionError`` unless it is open or acknowledged."""
    report = anomalies_dismiss(anomaly_ids=[anomaly_id], actor=actor, reason=reason, note=note)
    return _one(report, anomaly_id)
