"""Cycle counts: request them for findings (by priority) or at random, and record the result.

Recording a count closes the ghost-stock loop in one transaction: a ``StockAdjustment``
corrects the book stock to what was counted, the anomaly is resolved and its ``Outcome`` is
recorded (below book: true positive with the written-off value; equal: false positive; above:
inconclusive).

Priority of a count (what to count first), money per day::

    priority = probability x value at risk per day

- ``probability``: how sure the detector is that the finding is real,
  ``details["probability"]`` (ghost stock: 1 - the Bonferroni-adjusted chance of the zero run
  under ordinary demand); 1.0 when the detector gives none (inventory discrepancy).
- ``value at risk per day``: for a finding with a demand rate (ghost stock,
  ``details["expected_units_per_day"]``) the sales lost each day the phantom stock stays on
  the books, ``expected_units_per_day x unit price`` (``details["unit_price"]``, else the
  product's shelf price); otherwise ``value_at_risk`` spread over the finding's days
  (an inventory discrepancy is a one-day finding: its whole unaccounted value).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from anomalies.models import ActivityAction, Anomaly, AnomalyStatus
from anomalies.services.triage import (
    ActivityEntry,
    TransitionError,
    anomaly_activity_record,
    anomaly_resolve,
)
from common.csv_safe import spreadsheet_safe_row
from common.formatting import money
from inventory.access import location_ids_check
from inventory.models import AdjustmentReason, StockAdjustment, StockLevel
from outcomes.models import (
    COUNTABLE_TYPES,
    ActionTaken,
    CycleCount,
    CycleCountStatus,
    Outcome,
    Verdict,
)
from outcomes.services.outcomes import outcome_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User

CLOSED_STATUSES: tuple[str, ...] = (AnomalyStatus.RESOLVED, AnomalyStatus.DISMISSED)
# A SKU/location without a book-stock row in this many days is not "stocked" for control
# counts (imports write a row per day, or at least per change).
STOCK_LOOKBACK_DAYS = 28
CSV_HEADER: tuple[str, ...] = ("sku", "name", "location", "book_on_hand", "priority")
PRIORITY_DECIMALS = 4
CENT = Decimal("0.01")

NOT_FOUND = "not found"
NOT_COUNTABLE = "not a ghost-stock or inventory-discrepancy finding"
LOCATION_LEVEL = "a store-level finding (no SKU to count)"
SKU_LOCATION_BUSY = "SKU/location already has an open count"


class CycleCountError(ValueError):
    """A count that cannot be requested or recorded (bad input, ineligible anomaly)."""


class CycleCountConflict(CycleCountError):
    """The count's current state forbids the change (already counted, cancelled, changed)."""


# --- priority ----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def cycle_count_priority(
    *,
    details: dict[str, Any] | None,
    value_at_risk: Decimal | float,
    start_date: dt.date,
    end_date: dt.date,
    unit_price: Decimal | float | None,
) -> float:
    """``probability x value at risk per day`` of a finding (module docstring), rounded."""
    details = details if isinstance(details, dict) else {}
    probability = _number(details.get("probability"))
    if probability is None or not 0.0 <= probability <= 1.0:
        probability = 1.0
    rate = _number(details.get("expected_units_per_day"))
    if rate is not None and rate >= 0:
        price = _number(details.get("unit_price"))
        if price is None:
            price = float(unit_price or 0)
        per_day = rate * price
    else:
        days = max((end_date - start_date).days + 1, 1)
        per_day = float(value_at_risk or 0) / days
    return round(probability * per_day, PRIORITY_DECIMALS)


def _book_on(product_id: int, location_id: int, day: dt.date) -> int | None:
    """Book stock at the end of ``day``: the latest stock level on or before it."""
    return (
        StockLevel.objects.filter(product_id=product_id, location_id=location_id, date__lte=day)
        .order_by("-date")
        .values_list("on_hand", flat=True)
        .first()
    )


def cycle_count_default_date(
    *, product_id: int, location_id: int, today: dt.date | None = None
) -> dt.date:
    """The stock date a count of this SKU/location applies to unless told otherwise: the
    latest day with book-stock data, not after ``today`` (default: the local date); ``today``
    when there is none. Imported data usually ends before today (the demo's a month before),
    and a count dated today would be compared with a book nobody imported."""
    today = today or timezone.localdate()
    latest = (
        StockLevel.objects.filter(product_id=product_id, location_id=location_id, date__lte=today)
        .order_by("-date")
        .values_list("date", flat=True)
        .first()
    )
    return latest or today


def anomaly_countable(anomaly: Anomaly) -> bool:
    """Whether a count can check ``anomaly``: a ghost-stock or inventory-discrepancy finding
    of one SKU that is not closed (what ``cycle_counts_request`` accepts)."""
    return (
        anomaly.anomaly_type in COUNTABLE_TYPES
        and anomaly.product_id is not None
        and anomaly.status not in CLOSED_STATUSES
    )


def cycle_count_open(*, product_id: int | None, location_id: int) -> CycleCount | None:
    """The open (requested) count of a SKU/location, with who requested it; ``None`` if
    there is none (at most one: ``cyclecount_one_open_per_sku_location``)."""
    if product_id is None:
        return None
    return (
        CycleCount.objects.open()
        .filter(product_id=product_id, location_id=location_id)
        .select_related("requested_by")
        .first()
    )


def _request_note(book: int | None) -> str:
    if book is None:
        return "no book stock known when requested"
    return f"book stock {book:,} units when requested"


# --- requesting --------------------------------------------------------------------------------


@dataclass
class CountRequestReport:
    """Outcome of a bulk request: counts created, anomalies that already had one, skipped."""

    created: list[CycleCount] = field(default_factory=list)
    existing: list[CycleCount] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: ``"2 cycle counts requested; 1 already requested; 3 skipped (...)."``"""
        n = len(self.created)
        text = f"{n} cycle count{'' if n == 1 else 's'} requested"
        if self.existing:
            text += f"; {len(self.existing)} already requested"
        if self.skipped:
            reasons = Counter(self.skipped.values()).most_common()
            why = ", ".join(f"{count} {reason}" for reason, count in reasons)
            text += f"; {len(self.skipped)} skipped ({why})"
        return text + "."


def cycle_counts_request(
    *,
    anomaly_ids: list[int] | tuple[int, ...] | set[int],
    actor: User | None,
    today: dt.date | None = None,
) -> CountRequestReport:
    """Request a count for each eligible anomaly; idempotent (one open count per anomaly).

    Eligible: a ghost-stock or inventory-discrepancy finding of one SKU that is not closed.
    An anomaly whose open count exists is reported under ``existing``; a SKU/location that
    already has an open count of another origin is skipped (one count per shelf at a time).
    The count records the book stock on ``today`` (default: the local date) and its
    priority (module docstring); each new count writes a ``count_requested`` entry in its
    anomaly's activity log (in the same transaction).
    """
    today = today or timezone.localdate()
    report = CountRequestReport()
    ids = sorted(set(anomaly_ids))
    with transaction.atomic():
        anomalies = {
            a.pk: a
            for a in Anomaly.objects.select_for_update(of=("self",))
            .select_related("product")
            .filter(pk__in=ids)
            .order_by("pk")
        }
        if actor is not None:  # under the lock: nothing is requested outside their stores
            location_ids_check(user=actor, location_ids={a.location_id for a in anomalies.values()})
        open_counts = {
            (c.product_id, c.location_id): c
            for c in CycleCount.objects.open().filter(
                product_id__in={a.product_id for a in anomalies.values() if a.product_id}
            )
        }
        for pk in ids:
            anomaly = anomalies.get(pk)
            if anomaly is None:
                report.skipped[pk] = NOT_FOUND
                continue
            if anomaly.anomaly_type not in COUNTABLE_TYPES:
                report.skipped[pk] = NOT_COUNTABLE
                continue
            if anomaly.product_id is None:
                report.skipped[pk] = LOCATION_LEVEL
                continue
            if anomaly.status in CLOSED_STATUSES:
                report.skipped[pk] = anomaly.status
                continue
            current = open_counts.get((anomaly.product_id, anomaly.location_id))
            if current is not None:
                if current.anomaly_id == pk:
                    report.existing.append(current)
                else:
                    report.skipped[pk] = SKU_LOCATION_BUSY
                continue
            count = CycleCount(
                anomaly=anomaly,
                product_id=anomaly.product_id,
                location_id=anomaly.location_id,
                priority=cycle_count_priority(
                    details=anomaly.details,
                    value_at_risk=anomaly.value_at_risk,
                    start_date=anomaly.start_date,
                    end_date=anomaly.end_date,
                    unit_price=anomaly.product.unit_price,
                ),
                book_on_hand=_book_on(anomaly.product_id, anomaly.location_id, today),
                requested_by=actor,
            )
            try:
                with transaction.atomic():
                    count.save()
            except IntegrityError:  # another request got in first
                report.skipped[pk] = SKU_LOCATION_BUSY
                continue
            open_counts[(anomaly.product_id, anomaly.location_id)] = count
            report.created.append(count)
        if report.created:
            anomaly_activity_record(
                action=ActivityAction.COUNT_REQUESTED,
                actor=actor,
                entries=[
                    ActivityEntry(
                        count.anomaly_id,
                        anomalies[count.anomaly_id].status,
                        anomalies[count.anomaly_id].status,
                        _request_note(count.book_on_hand),
                    )
                    for count in report.created
                ],
            )
    return report


def cycle_count_request(
    *, anomaly_id: int, actor: User | None, today: dt.date | None = None
) -> CycleCount:
    """Request a count for one anomaly, or return its open count if it has one.

    Raises ``CycleCountError`` saying why when the anomaly is not eligible.
    """
    report = cycle_counts_request(anomaly_ids=[anomaly_id], actor=actor, today=today)
    if report.created:
        return report.created[0]
    if report.existing:
        return report.existing[0]
    reason = report.skipped[anomaly_id]
    if reason == NOT_FOUND:
        raise CycleCountError(f"Anomaly {anomaly_id} not found.")
    if reason in CLOSED_STATUSES:
        raise CycleCountError(f"Anomaly {anomaly_id} is {reason}; no count is needed.")
    raise CycleCountError(f"Anomaly {anomaly_id} cannot be counted: {reason}.")


def control_counts_request(
    *,
    share: float | None = None,
    seed: int | None = None,
    today: dt.date | None = None,
    actor: User | None = None,
) -> list[CycleCount]:
    """Draw random control counts among stocked SKU/locations that nobody is looking at.

    Eligible: book stock > 0 at the end of ``today`` (latest stock level within
    ``STOCK_LOOKBACK_DAYS``), no anomaly of that SKU/location that is not closed, and no open
    count. ``ceil(share x eligible)`` of them (``share`` default
    ``SHELFWATCH_CONTROL_COUNT_SHARE``) are drawn uniformly without replacement with a
    ``numpy`` generator seeded by ``seed`` (reproducible), and get a control count with the
    eligible population size recorded (for ``metrics.recall_estimate``). Returns the created
    counts, ordered by id. Raises ``CycleCountError`` unless ``0 < share <= 1``.
    """
    share = settings.SHELFWATCH_CONTROL_COUNT_SHARE if share is None else float(share)
    if not (math.isfinite(share) and 0.0 < share <= 1.0):
        raise CycleCountError("The control-count share must be above 0 and at most 1.")
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=STOCK_LOOKBACK_DAYS - 1)
    stock = pd.DataFrame.from_records(
        StockLevel.objects.filter(date__range=(since, today))
        .order_by()
        .values_list("product_id", "location_id", "date", "on_hand"),
        columns=["product_id", "location_id", "date", "on_hand"],
    )
    if stock.empty:
        return []
    latest = stock.sort_values("date").groupby(["product_id", "location_id"]).tail(1)
    stocked = latest[latest["on_hand"] > 0]
    busy = set(
        Anomaly.objects.exclude(status__in=CLOSED_STATUSES)
        .filter(product__isnull=False)
        .values_list("product_id", "location_id")
    ) | set(CycleCount.objects.open().values_list("product_id", "location_id"))
    keys = list(zip(stocked["product_id"], stocked["location_id"], strict=True))
    eligible = stocked[[key not in busy for key in keys]].sort_values(["product_id", "location_id"])
    population = len(eligible)
    if population == 0:
        return []
    size = min(population, math.ceil(share * population))
    rng = np.random.default_rng(seed)
    drawn = eligible.iloc[np.sort(rng.choice(population, size=size, replace=False))]
    counts = [
        CycleCount(
            product_id=int(row.product_id),
            location_id=int(row.location_id),
            is_control=True,
            priority=0.0,
            book_on_hand=int(row.on_hand),
            population=population,
            requested_by=actor,
        )
        for row in drawn.itertuples(index=False)
    ]
    with transaction.atomic():
        created = CycleCount.objects.bulk_create(counts)
    return sorted(created, key=lambda c: c.pk)


# --- recording ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judgement:
    verdict: str
    recovered_value: Decimal
    text: str


def _judge(*, book: int, counted: int, unit_price: Decimal) -> _Judgement:
    """The outcome a count implies for the finding it checks."""
    if counted < book:
        missing = book - counted
        value = (Decimal(missing) * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
        return _Judgement(
            Verdict.TRUE_POSITIVE,
            value,
            f"counted {counted} of {book} on the books: {missing} phantom units written off",
        )
    if counted == book:
        return _Judgement(
            Verdict.FALSE_POSITIVE, Decimal("0.00"), f"counted {counted}, as on the books"
        )
    return _Judgement(
        Verdict.INCONCLUSIVE,
        Decimal("0.00"),
        f"counted {counted}, more than the {book} on the books: the books missed stock, "
        "no phantom stock found (inconclusive)",
    )


def cycle_count_record(
    *,
    count_id: int,
    counted_quantity: int,
    actor: User | None,
    counted_on: dt.date | None = None,
    notes: str = "",
) -> CycleCount:
    """Record what a count found; adjust the books, resolve the finding, record its outcome.

    In one transaction:

    1. the count moves requested → counted (conditional update; ``CycleCountConflict`` if it
       is not requested any more);
    2. a ``StockAdjustment`` of ``counted_on`` (default: ``cycle_count_default_date``, the
       latest day with book-stock data for the SKU/location; not in the future)
       records ``book_before`` (the book stock at the end of that day, else the book at
       request), ``counted`` and ``delta``, and the ``StockLevel`` of that day is set (updated
       or inserted) to ``counted_quantity``;
    3. for a finding's count: the anomaly is resolved if it is still open (an anomaly closed
       meanwhile stays as it is) and its ``Outcome`` recorded with action *cycle count*:
       counted below book → true positive, ``recovered_value = (book - counted) x shelf
       price``; equal → false positive; above book → inconclusive (the books were short, which
       says nothing about phantom stock). Control counts have no anomaly: their result feeds
       the recall estimate.

    Raises ``CycleCountError`` for a negative or non-integer quantity, a future date, a
    missing count or no known book stock; nothing is written then.
    """
    if isinstance(counted_quantity, bool) or not isinstance(counted_quantity, int):
        raise CycleCountError(f"The counted quantity {counted_quantity!r} is not a whole number.")
    if counted_quantity < 0:
        raise CycleCountError("The counted quantity cannot be negative.")
    local_today = timezone.localdate()
    if counted_on is not None and counted_on > local_today:
        raise CycleCountError(f"The count date {counted_on} is in the future.")
    now = timezone.now()
    with transaction.atomic():
        count = (
            CycleCount.objects.select_for_update(of=("self",))
            .select_related("product")
            .filter(pk=count_id)
            .first()
        )
        if count is None:
            raise CycleCountError(f"Cycle count {count_id} not found.")
        if actor is not None:
            location_ids_check(user=actor, location_ids=[count.location_id])
        if count.status != CycleCountStatus.REQUESTED:
            raise CycleCountConflict(
                f"Cycle count {count_id} is {count.status}; it cannot be recorded."
            )
        if counted_on is None:
            counted_on = cycle_count_default_date(
                product_id=count.product_id, location_id=count.location_id, today=local_today
            )
        book = _book_on(count.product_id, count.location_id, counted_on)
        if book is None:
            book = count.book_on_hand
        if book is None:
            raise CycleCountError(
                f"No book stock is known for this SKU/location on {counted_on}; "
                "there is nothing to compare the count with."
            )
        updated = CycleCount.objects.filter(pk=count_id, status=CycleCountStatus.REQUESTED).update(
            status=CycleCountStatus.COUNTED,
            counted_quantity=counted_quantity,
            counted_on=counted_on,
            counted_by=actor,
            counted_at=now,
            notes=notes or count.notes,
        )
        if updated != 1:  # only reachable without row locks (SQLite)
            raise CycleCountConflict(f"Cycle count {count_id} was changed by someone else.")
        StockAdjustment.objects.create(
            product_id=count.product_id,
            location_id=count.location_id,
            date=counted_on,
            book_before=book,
            counted=counted_quantity,
            delta=counted_quantity - book,
            reason=AdjustmentReason.CONTROL_COUNT
            if count.is_control
            else AdjustmentReason.CYCLE_COUNT,
            cycle_count=count,
            created_by=actor,
        )
        StockLevel.objects.update_or_create(
            product_id=count.product_id,
            location_id=count.location_id,
            date=counted_on,
            defaults={"on_hand": counted_quantity},
        )
        if count.anomaly_id is not None:
            _close_finding(count=count, book=book, counted=counted_quantity, actor=actor)
    return CycleCount.objects.select_related("product", "location", "anomaly").get(pk=count_id)


def _close_finding(*, count: CycleCount, book: int, counted: int, actor: User | None) -> None:
    judgement = _judge(book=book, counted=counted, unit_price=count.product.unit_price)
    note = f"Cycle count #{count.pk}: {judgement.text}."
    status = Anomaly.objects.filter(pk=count.anomaly_id).values_list("status", flat=True).first()
    if status is not None and status not in CLOSED_STATUSES:
        # Closed by someone else meanwhile: the count still stands.
        with contextlib.suppress(TransitionError):
            anomaly_resolve(anomaly_id=count.anomaly_id, actor=actor, note=note)
    outcome_record(
        anomaly_id=count.anomaly_id,
        verdict=judgement.verdict,
        action_taken=ActionTaken.CYCLE_COUNT,
        recovered_value=judgement.recovered_value,
        notes=note,
        actor=actor,
    )


def anomaly_count_record(
    *,
    anomaly_id: int,
    counted_quantity: int,
    actor: User | None,
    counted_on: dt.date | None = None,
    notes: str = "",
) -> CycleCount:
    """Record a count for a finding in one step: request it if no count is open, then record
    it (``cycle_count_request`` then ``cycle_count_record``, in one transaction).

    What the anomaly page's "Record count" form does. ``counted_on`` defaults to
    ``cycle_count_default_date``. Raises ``CycleCountError`` when the anomaly cannot be
    counted or the count is refused; nothing is written then (not even the request).
    """
    with transaction.atomic():
        count = cycle_count_request(anomaly_id=anomaly_id, actor=actor)
        return cycle_count_record(
            count_id=count.pk,
            counted_quantity=counted_quantity,
            actor=actor,
            counted_on=counted_on,
            notes=notes,
        )


def _units(n: int) -> str:
    return f"{n:,} unit" if n == 1 else f"{n:,} units"


def _finding_words(anomaly: Anomaly, outcome: Outcome | None) -> list[str]:
    kind = f"the {anomaly.anomaly_type.replace('_', '-')} finding"
    if anomaly.status == AnomalyStatus.DISMISSED:
        return [f"{kind} was already dismissed"]
    if anomaly.status != AnomalyStatus.RESOLVED:
        return [f"{kind} is still {anomaly.status}"]
    verdict = outcome.verdict if outcome is not None else None
    if verdict == Verdict.TRUE_POSITIVE:
        return [f"{kind} is resolved", f"{money(outcome.recovered_value)} recovered"]
    if verdict == Verdict.FALSE_POSITIVE:
        return [f"{kind} is resolved as a false positive (the books were right)"]
    if verdict == Verdict.INCONCLUSIVE:
        return [f"{kind} is resolved, inconclusive (more on the shelf than on the books)"]
    return [f"{kind} is resolved"]


def cycle_count_result_sentence(*, count_id: int) -> str:
    """What a recorded count did, in words for the person who entered it (no database ids):

    "Counted 13 units of SKU-0042 at STORE-01 on 2026-10-31 (book 33): book stock corrected
    to 13; the ghost-stock finding is resolved; £1,118.60 recovered."

    Money with ``common.formatting.money`` (``SHELFWATCH_CURRENCY``). For a count that is not
    counted (yet) it says what state it is in.
    """
    count = (
        CycleCount.objects.select_related("product", "location", "anomaly", "stock_adjustment")
        .filter(pk=count_id)
        .first()
    )
    if count is None:
        return "The cycle count no longer exists."
    where = f"{count.product.sku} at {count.location.code}"
    if count.status != CycleCountStatus.COUNTED:
        return f"The cycle count of {where} is {count.get_status_display().lower()}."
    adjustment = getattr(count, "stock_adjustment", None)
    head = f"Counted {_units(count.counted_quantity)} of {where} on {count.counted_on:%Y-%m-%d}"
    parts: list[str] = []
    if adjustment is not None:
        head += f" (book {adjustment.book_before:,})"
        if adjustment.delta:
            parts.append(f"book stock corrected to {adjustment.counted:,}")
        else:
            parts.append("book stock unchanged")
    if count.anomaly_id is None:
        parts.append("a control count (no finding): it feeds the recall estimate")
    else:
        outcome = Outcome.objects.filter(anomaly_id=count.anomaly_id).first()
        parts.extend(_finding_words(count.anomaly, outcome))
    return f"{head}: {'; '.join(parts)}." if parts else f"{head}."


def cycle_counts_cancel(*, count_ids: list[int] | set[int], actor: User | None) -> int:
    """Cancel the open counts among ``count_ids``; returns how many were cancelled.

    Raises ``PermissionDenied`` (cancelling nothing) if one is outside the actor's stores.
    """
    open_counts = CycleCount.objects.filter(
        pk__in=list(count_ids), status=CycleCountStatus.REQUESTED
    )
    with transaction.atomic():
        locked = list(open_counts.select_for_update().values_list("location_id", flat=True))
        if actor is not None:
            location_ids_check(user=actor, location_ids=set(locked))
        return open_counts.update(
            status=CycleCountStatus.CANCELLED, cancelled_by=actor, cancelled_at=timezone.now()
        )


# --- export ------------------------------------------------------------------------------------


def cycle_counts_export_csv(*, queryset: QuerySet[CycleCount], out: TextIO) -> int:
    """Write the store's count sheet: ``sku,name,location,book_on_hand,priority`` rows.

    Highest priority first; ``priority`` with two decimals (money per day), book on hand
    blank when unknown; formula-like text gets a leading ``'`` (``common.csv_safe``).
    Returns the number of rows written.
    """
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    rows = queryset.order_by("-priority", "id").values_list(
        "product__sku", "product__name", "location__code", "book_on_hand", "priority"
    )
    n = 0
    for sku, name, location, book, priority in rows:
        writer.writerow(spreadsheet_safe_row([sku, name, location, book, f"{priority:.2f}"]))
        n += 1
    return n
