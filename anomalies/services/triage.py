"""Triage: the only code that changes an anomaly's status, assignee or snooze, and the only
writer of its activity log.

One module of over 500 lines on purpose: "only this file changes a status or writes the
activity log" is a rule a reader (and ``tests/anomalies/test_activity_single_writer.py``)
checks on one file, and every transition below goes through the private ``_transition``;
splitting the bulk functions from their one-anomaly wrappers would make it public. The
detection-side rules (when to regress or wake) are already apart, in ``redetection.py``.

The lifecycle (one set of rules for the admin, the API, tasks and detection)::

    open ──acknowledge (claims it when unassigned)──▶ acknowledged
    open | acknowledged | snoozed ──acknowledge until counted, receipt or a day──▶ acknowledged
    acknowledged until … ──return: the condition passed and detection still finds it──▶ open
    open | acknowledged | snoozed ──snooze (until a day)──▶ snoozed
    snoozed ──unsnooze, or wake: the day has come or detection found it worse──▶ open
    open | acknowledged | snoozed ──resolve──▶ resolved
    open | acknowledged | snoozed ──dismiss (false positive, expected, duplicate)──▶ dismissed
    resolved ──regress: detection finds it again within SHELFWATCH_REGRESSION_DAYS──▶ open
    assign: while not closed; note: in any state.

When detection reopens an anomaly (regress, wake because worse) is decided in
``anomalies.services.redetection``; the transitions themselves are here.

Every change is a conditional UPDATE restricted to the state it was read in (status, assignee,
snooze date), so two people acting on the same anomaly cannot both win: the loser's row count
is 0 and it gets a ``TransitionError`` saying "changed by someone else: now <state>". A caller
that knows what the person saw passes ``expected_status`` and is refused the same way when the
anomaly has moved on meanwhile, even if the new state would allow the change.

Every change writes an ``AnomalyActivity`` row (actor, ``None`` for the system; an
``ActivityAction``; from/to status; note) through ``anomaly_activity_record``, the one function
that creates them (as Sentry's ``record_group_history`` is for ``GroupHistory``); other apps
that log on an anomaly (an outcome) call it too. A test scans the source for other writers.

The bulk functions (``anomalies_*``) serve admin actions and tasks: they apply the same rule to
many rows and report what changed and what was skipped and why. The single-object functions
(``anomaly_*``) are the bulk ones applied to one id, raising when that id was skipped.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from anomalies.models import (
    AckUntil,
    ActivityAction,
    Anomaly,
    AnomalyActivity,
    AnomalyStatus,
    DismissReason,
)
from inventory.access import location_ids_check
from inventory.models import Receipt

if TYPE_CHECKING:
    from django.contrib.auth.models import User

__all__ = [  # DismissReason and ActivityAction live on the model (a field's choices).
    "ACTIVE_STATUSES",
    "CLOSED_STATUSES",
    "WORKABLE_STATUSES",
    "ActivityAction",
    "ActivityEntry",
    "DismissReason",
    "TransitionError",
    "TransitionReport",
]

# On the triage list (the ``Anomaly.objects.open()`` statuses).
ACTIVE_STATUSES: tuple[str, ...] = (AnomalyStatus.OPEN, AnomalyStatus.ACKNOWLEDGED)
# Not closed: can still be assigned, snoozed, resolved or dismissed.
WORKABLE_STATUSES: tuple[str, ...] = (*ACTIVE_STATUSES, AnomalyStatus.SNOOZED)
CLOSED_STATUSES: tuple[str, ...] = (AnomalyStatus.RESOLVED, AnomalyStatus.DISMISSED)
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
# Clearing an acknowledgement's condition: ``_transition`` adds it to every change of status
# to anything but acknowledged (a condition exists only while acknowledged).
_ACK_CLEAR: dict[str, Any] = {
    "ack_until_kind": AckUntil.NONE,
    "ack_until_date": None,
    "ack_since": None,
}
ACK_UNTIL_KINDS: tuple[str, ...] = (AckUntil.COUNTED, AckUntil.RECEIPT, AckUntil.DATE)
ACK_UNTIL_MAX_DAYS = SNOOZE_MAX_DAYS
# ``outcomes.models.CycleCountStatus.COUNTED``: outcomes imports anomalies, not the reverse, so
# the wake-up check reads counts through the reverse relation ``Product.cycle_counts``.
COUNT_RECORDED_STATUS = "counted"
LOCATION_LEVEL = "a store-level finding (no SKU)"


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


@dataclass(frozen=True)
class ActivityEntry:
    """One line of an anomaly's activity log, before it is written."""

    anomaly_id: int
    from_status: str
    to_status: str
    note: str = ""


def anomaly_activity_record(
    *, action: str, actor: User | None, entries: Sequence[ActivityEntry]
) -> list[AnomalyActivity]:
    """Write one ``AnomalyActivity`` row per entry, all with ``action`` and ``actor``
    (``None``: the system). The only code that creates activity rows; returns them, saved.

    Call it in the transaction that made the change it records. Raises ``ValueError`` for an
    ``action`` that is not an ``ActivityAction``.
    """
    if action not in ActivityAction.values:
        raise ValueError(
            f"Unknown activity action {action!r}; use one of {', '.join(ActivityAction.values)}."
        )
    return AnomalyActivity.objects.bulk_create(
        [
            AnomalyActivity(
                anomaly_id=entry.anomaly_id,
                actor=actor,
                action=action,
                from_status=entry.from_status,
                to_status=entry.to_status,
                note=entry.note,
            )
            for entry in entries
        ],
        batch_size=BATCH_SIZE_ROWS,
    )


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
    location_id: int
    ack_until_kind: str = AckUntil.NONE
    ack_until_date: dt.date | None = None
    product_id: int | None = None

    @property
    def guard(self) -> tuple[str, int | None, dt.date | None]:
        return self.status, self.assignee_id, self.snoozed_until


def _lock_rows(ids: list[int]) -> dict[int, _Row]:
    """Read (and on PostgreSQL lock, in id order) the triage state of ``ids``."""
    return {
        row[0]: _Row(*row)
        for row in Anomaly.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list(
            "pk",
            "status",
            "assignee_id",
            "snoozed_until",
            "location_id",
            "ack_until_kind",
            "ack_until_date",
            "product_id",
        )
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
    action: ActivityAction,
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
    read with; record one activity row per changed anomaly. ``actor=None`` is the system.
    Raises ``TransitionError`` (and changes nothing) if a guarded UPDATE misses a row, and
    ``PermissionDenied`` (changing nothing) if a locked row is outside the actor's stores.
    """
    report = TransitionReport(verb=verb)
    now = timezone.now()
    to_status = values.get("status")
    if to_status is not None and to_status != AnomalyStatus.ACKNOWLEDGED:
        values = {**_ACK_CLEAR, **values}
    with transaction.atomic():
        for chunk in _batches(sorted(set(anomaly_ids)), BATCH_SIZE_ROWS):
            found = _lock_rows(chunk)
            if actor is not None:  # re-checked under the lock: access may have changed
                location_ids_check(
                    user=actor, location_ids={row.location_id for row in found.values()}
                )
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
            anomaly_activity_record(
                action=action,
                actor=actor,
                entries=[
                    ActivityEntry(row.pk, row.status, to_status or row.status, note(row))
                    for row in changing
                ],
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
        action=ActivityAction.ACKNOWLEDGE,
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


def ack_until_check(*, kind: str, until: dt.date | None, today: dt.date) -> None:
    """Refuse (``ValueError``, saying why) a condition ``anomalies_acknowledge_until`` cannot
    take: ``kind`` one of counted, receipt, date; ``until`` given exactly for "date", after
    ``today`` and at most ``ACK_UNTIL_MAX_DAYS`` later."""
    if kind not in ACK_UNTIL_KINDS:
        raise ValueError(
            f"Unknown condition '{kind}'; acknowledge until one of {', '.join(ACK_UNTIL_KINDS)}."
        )
    if kind != AckUntil.DATE:
        if until is not None:
            raise ValueError(f"A date goes with \"until a date\" only, not with '{kind}'.")
        return
    if until is None:
        raise ValueError("Give the date to acknowledge until.")
    if until <= today:
        raise ValueError(f"Acknowledge until a day after today ({today}), not {until}.")
    if until > today + dt.timedelta(days=ACK_UNTIL_MAX_DAYS):
        raise ValueError(f"Acknowledge for at most {ACK_UNTIL_MAX_DAYS} days, not until {until}.")


def ack_until_phrase(kind: str, until: dt.date | None = None) -> str:
    """How a condition reads in the activity log and messages: ``"until counted"``."""
    if kind == AckUntil.COUNTED:
        return "until counted"
    if kind == AckUntil.RECEIPT:
        return "until the next receipt"
    if kind == AckUntil.DATE and until is not None:
        return f"until {until.isoformat()}"
    return ""


def anomalies_acknowledge_until(
    *,
    anomaly_ids: Iterable[int],
    actor: User,
    kind: str,
    until: dt.date | None = None,
    note: str = "",
    today: dt.date | None = None,
    expected_status: str | None = None,
) -> TransitionReport:
    """Open, acknowledged or snoozed → acknowledged until a condition (``kind``): the SKU is
    counted there, its next receipt there, or the day ``until``.

    The finding stays acknowledged (claimed by the actor when nobody owns it) and returns to
    open by itself once the condition has passed and detection still finds it
    (``anomalies_wake_acknowledged``). ``ack_since`` records the anomaly's last detection day:
    counts of that day or later and receipts after it end the acknowledgement. A store-level
    finding (no SKU) cannot wait for a count or a receipt and is skipped. ``today`` defaults to
    the local date. Raises ``ValueError`` for a bad condition (``ack_until_check``).
    """
    ack_until_check(kind=kind, until=until, today=today or timezone.localdate())
    phrase = ack_until_phrase(kind, until)
    needs_sku = kind in (AckUntil.COUNTED, AckUntil.RECEIPT)

    def skip(row: _Row) -> str | None:
        if needs_sku and row.product_id is None:
            return LOCATION_LEVEL
        if (
            row.status == AnomalyStatus.ACKNOWLEDGED
            and row.ack_until_kind == kind
            and row.ack_until_date == until
        ):
            return f"already acknowledged {phrase}"
        return None

    return _transition(
        anomaly_ids=anomaly_ids,
        actor=actor,
        action=ActivityAction.ACKNOWLEDGE,
        verb=f"acknowledged {phrase}",
        allowed_from=WORKABLE_STATUSES,
        values={
            "status": AnomalyStatus.ACKNOWLEDGED,
            # Kept when it was acknowledged already: the time to acknowledge does not change.
            "acknowledged_at": Case(
                When(
                    status=AnomalyStatus.ACKNOWLEDGED,
                    acknowledged_at__isnull=False,
                    then=F("acknowledged_at"),
                ),
                default=Value(timezone.now()),
            ),
            "assignee": Coalesce(F("assignee"), Value(actor.pk)),
            "ack_until_kind": kind,
            "ack_until_date": until if kind == AckUntil.DATE else None,
            "ack_since": F("last_detected_on"),
            **_UNSNOOZE,
        },
        note=lambda row: _join(
            phrase,
            f"was {ack_until_phrase(row.ack_until_kind, row.ack_until_date)}"
            if row.ack_until_kind != AckUntil.NONE
            else "",
            "" if row.assignee_id else f"assigned to {actor.get_username()}",
            note,
        ),
        skip=skip,
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
        action=ActivityAction.ASSIGN,
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
        action=ActivityAction.SNOOZE,
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
        action=ActivityAction.UNSNOOZE,
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
        action=ActivityAction.WAKE,
        verb="reopened",
        allowed_from=(AnomalyStatus.SNOOZED,),
        values={"status": AnomalyStatus.OPEN, **_UNSNOOZE},
        note=lambda row: f"snooze ended (snoozed until {row.snoozed_until})",
        # Re-snoozed to a later day between the query and the lock.
        skip=lambda row: (
            f"snoozed until {row.snoozed_until}" if row.snoozed_until > today else None
        ),
    )


def _cycle_count_model() -> type:
    # outcomes.CycleCount, reached through the ORM's reverse relation Product.cycle_counts:
    # outcomes imports anomalies, never the reverse (import-linter).
    from inventory.models import Product

    return Product._meta.get_field("cycle_counts").related_model


def anomalies_wake_acknowledged(
    *, today: dt.date, anomaly_ids: Iterable[int] | None = None
) -> TransitionReport:
    """Return to open the anomalies acknowledged until a condition that has passed while
    detection still finds them; the activity entry (no actor) says which condition and when.

    - until counted: a count of the SKU at that location was recorded for a stock day on or
      after ``ack_since`` (its own count resolves the finding instead: ``cycle_count_record``;
      this is a count of another origin, a control count or another finding's), and detection
      found it as of a later day;
    - until the next receipt: a receipt of the SKU there dated after ``ack_since``, and
      detection found it as of a later day;
    - until a date: ``today`` has reached it and detection found it as of that day or later.

    A condition that passed while the finding no longer fires changes nothing: the finding
    stays acknowledged until detection finds it again. Called daily (``wake_snoozed_task``)
    and by ``anomalies_persist`` for the anomalies a detection chunk extended
    (``anomaly_ids``: only those are checked). Idempotent.
    """
    waiting = Anomaly.objects.filter(status=AnomalyStatus.ACKNOWLEDGED).exclude(
        ack_until_kind=AckUntil.NONE
    )
    if anomaly_ids is None:
        pks = set(waiting.values_list("pk", flat=True))
    else:
        # Only the given ones are read (a detection chunk extends a few dozen anomalies; the
        # table may hold many acknowledged ones): none given, no query at all.
        pks = set()
        for chunk in _batches(sorted(set(anomaly_ids)), BATCH_SIZE_ROWS):
            pks |= set(waiting.filter(pk__in=chunk).values_list("pk", flat=True))
    notes: dict[int, str] = {}
    expected: dict[int, tuple[str, dt.date | None]] = {}
    CycleCount = _cycle_count_model()  # a model class
    for chunk in _batches(sorted(pks), BATCH_SIZE_ROWS):
        same_shelf = {"product_id": OuterRef("product_id"), "location_id": OuterRef("location_id")}
        rows = (
            waiting.filter(pk__in=chunk)
            .annotate(
                received_on=Subquery(
                    Receipt.objects.filter(**same_shelf, date__gt=OuterRef("ack_since"))
                    .order_by("date")
                    .values("date")[:1]
                ),
                counted_on=Subquery(
                    CycleCount.objects.filter(
                        **same_shelf,
                        status=COUNT_RECORDED_STATUS,
                        counted_on__gte=OuterRef("ack_since"),
                    )
                    .order_by("counted_on")
                    .values("counted_on")[:1]
                ),
            )
            .values_list(
                "pk",
                "ack_until_kind",
                "ack_until_date",
                "last_detected_on",
                "received_on",
                "counted_on",
            )
        )
        for pk, kind, until, last, received_on, counted_on in rows:
            seen = f"still detected as of {last}"
            if kind == AckUntil.DATE and until is not None and today >= until and last >= until:
                notes[pk] = f"acknowledged until {until}: {seen}"
            elif kind == AckUntil.RECEIPT and received_on is not None and last > received_on:
                notes[pk] = (
                    f"acknowledged until the next receipt: received on {received_on}, {seen}"
                )
            elif kind == AckUntil.COUNTED and counted_on is not None and last > counted_on:
                notes[pk] = f"acknowledged until counted: counted on {counted_on}, {seen}"
            else:
                continue
            expected[pk] = (kind, until)
    if not notes:
        return TransitionReport(verb="reopened")  # what _transition reports for no ids
    return _transition(
        anomaly_ids=notes,
        actor=None,
        action=ActivityAction.WAKE,
        verb="reopened",
        allowed_from=(AnomalyStatus.ACKNOWLEDGED,),
        values={"status": AnomalyStatus.OPEN},  # _transition clears the condition
        note=lambda row: notes[row.pk],
        # Acknowledged again with another condition between the query and the lock.
        skip=lambda row: (
            "acknowledged with another condition meanwhile"
            if (row.ack_until_kind, row.ack_until_date) != expected[row.pk]
            else None
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
        action=ActivityAction.RESOLVE,
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
        action=ActivityAction.DISMISS,
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


def anomalies_regress(*, notes: Mapping[int, str]) -> TransitionReport:
    """Resolved → open, marked regressed: detection found these anomalies again (``notes``:
    anomaly id → why). The system acts (no actor); ``anomalies.services.redetection``
    decides which."""
    return _transition(
        anomaly_ids=notes,
        actor=None,
        action=ActivityAction.REGRESS,
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


def anomalies_wake_worsened(*, notes: Mapping[int, str]) -> TransitionReport:
    """Snoozed → open before the day: detection found these anomalies worse than when they
    were snoozed (``notes``: anomaly id → why). The system acts (no actor)."""
    return _transition(
        anomaly_ids=notes,
        actor=None,
        action=ActivityAction.WAKE,
        verb="reopened",
        allowed_from=(AnomalyStatus.SNOOZED,),
        values={"status": AnomalyStatus.OPEN, **_UNSNOOZE},
        note=lambda row: notes[row.pk],
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


def anomaly_acknowledge_until(
    *,
    anomaly_id: int,
    actor: User,
    kind: str,
    until: dt.date | None = None,
    note: str = "",
    today: dt.date | None = None,
    expected_status: str | None = None,
) -> Anomaly:
    """Acknowledge one anomaly until a condition (``anomalies_acknowledge_until``).

    Raises ``ValueError`` for a bad condition, ``TransitionError`` once it is closed, for a
    store-level finding waiting for a count or a receipt, or when it already waits for the
    same condition.
    """
    report = anomalies_acknowledge_until(
        anomaly_ids=[anomaly_id],
        actor=actor,
        kind=kind,
        until=until,
        note=note,
        today=today,
        expected_status=expected_status,
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

    Raises ``ValueError`` for a blank note, ``TransitionError`` for a missing anomaly and
    ``PermissionDenied`` for an anomaly outside the actor's stores.
    """
    text = note.strip()
    if not text:
        raise ValueError("A note cannot be empty.")
    with transaction.atomic():
        row = (
            Anomaly.objects.select_for_update()
            .filter(pk=anomaly_id)
            .values_list("status", "location_id")
            .first()
        )
        if row is None:
            raise TransitionError(f"Anomaly {anomaly_id} not found.")
        status, location_id = row
        location_ids_check(user=actor, location_ids=[location_id])
        [activity] = anomaly_activity_record(
            action=ActivityAction.NOTE,
            actor=actor,
            entries=[ActivityEntry(anomaly_id, status, status, text)],
        )
    return activity
