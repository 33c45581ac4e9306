"""Similar anomalies of one finding, and merging them under it ("same root cause").

What the anomaly page shows next to a finding, so a person sees at a glance whether it is
one of many with one cause:

- the **same SKU at other stores** (a wrong price in the price file, a recall, a national
  promotion missing from the feed);
- the **same store and the same product category** (a chiller failed, a delivery of the
  category was not booked in);
- for a store-level finding (a POS outage), every finding of that store.

Each on the **same days**: its period overlaps the finding's. Only findings not closed (open,
acknowledged or snoozed: the ones still to be worked) and only of the user's stores.

Merging groups the chosen findings under this one as their ``parent``, the same field the
root-cause grouping of detection writes (``anomalies.services.grouping``), so the triage
list and the "grouped here" link treat both alike. Groups are one level deep, as there: a
finding that is itself grouped under another cannot take children, and one that has
children cannot be merged under another. A later detection run whose rules group a merged
finding elsewhere moves it (the rules win for what they recognise).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from anomalies.models import ActivityAction, Anomaly
from anomalies.selectors import anomalies_for_user
from anomalies.services.triage import (
    CLOSED_STATUSES,
    WORKABLE_STATUSES,
    ActivityEntry,
    anomaly_activity_record,
)
from common.formatting import money
from inventory.access import location_ids_check

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SIMILAR_MAX_ROWS = 20

SAME_SKU_OTHER_STORE = "same SKU at another store"
SAME_SKU_SAME_STORE = "same SKU at this store"
SAME_CATEGORY_SAME_STORE = "same category at this store"
SAME_STORE = "same store"
# Listed in this order, then by money at risk.
REASON_ORDER = (SAME_SKU_OTHER_STORE, SAME_SKU_SAME_STORE, SAME_CATEGORY_SAME_STORE, SAME_STORE)

NOT_FOUND = "not found"
IS_PARENT = "the finding itself"
HAS_CHILDREN = "has anomalies grouped under it"
ALREADY_HERE = "already grouped here"


class MergeError(ValueError):
    """A merge the target finding's state does not allow (closed, grouped, missing)."""


@dataclass(frozen=True)
class SimilarAnomaly:
    """A finding similar to another one, and why (one of ``REASON_ORDER``)."""

    anomaly: Anomaly
    reason: str

    @property
    def value_at_risk_display(self) -> str:
        """The money at risk as people read it (``£1,118.60``)."""
        return money(self.anomaly.value_at_risk)


def _reason(anomaly: Anomaly, other: Anomaly) -> str:
    if anomaly.product_id is None:
        return SAME_STORE
    if other.product_id != anomaly.product_id:
        return SAME_CATEGORY_SAME_STORE
    if other.location_id == anomaly.location_id:
        return SAME_SKU_SAME_STORE
    return SAME_SKU_OTHER_STORE


def anomalies_similar(
    *, anomaly: Anomaly, user: Any, limit: int = SIMILAR_MAX_ROWS
) -> list[SimilarAnomaly]:
    """Findings similar to ``anomaly`` that ``user`` may see (module docstring), at most
    ``limit``: same SKU elsewhere first, then same SKU here, same category here; each group by
    money at risk. Not listed: ``anomaly`` itself, its parent, findings already grouped under
    it and findings that hold a group of their own (they cannot be merged). One query.
    """
    overlapping = Q(start_date__lte=anomaly.end_date, end_date__gte=anomaly.start_date)
    if anomaly.product_id is None:
        similar = Q(location_id=anomaly.location_id)
    else:
        similar = Q(product_id=anomaly.product_id)
        category = anomaly.product.category
        if category:
            similar |= Q(location_id=anomaly.location_id, product__category=category)
    queryset = (
        anomalies_for_user(user)
        .filter(overlapping, similar, status__in=WORKABLE_STATUSES)
        .exclude(pk=anomaly.pk)
        .exclude(parent_id=anomaly.pk)
        .exclude(Exists(Anomaly.objects.filter(parent_id=OuterRef("pk"))))
        .select_related("product", "location", "assignee")
        .order_by("-value_at_risk", "id")
    )
    if anomaly.parent_id is not None:
        queryset = queryset.exclude(pk=anomaly.parent_id)
    # Enough rows that every reason can fill its share before the cut.
    rows = [SimilarAnomaly(other, _reason(anomaly, other)) for other in queryset[: limit * 4]]
    rows.sort(key=lambda row: REASON_ORDER.index(row.reason))  # stable: money order kept
    return rows[:limit]


@dataclass
class MergeReport:
    """Outcome of a merge: the ids grouped under the parent, and those skipped with why."""

    parent_id: int
    merged_ids: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: ``"2 similar anomalies grouped under this one; 1 skipped (resolved)."``"""
        n = len(self.merged_ids)
        text = f"{n} similar {'anomaly' if n == 1 else 'anomalies'} grouped under this one"
        if self.skipped:
            reasons = Counter(self.skipped.values()).most_common()
            why = ", ".join(f"{count} {reason}" for reason, count in reasons)
            text += f"; {len(self.skipped)} skipped ({why})"
        return text + "."


def _describe(anomaly: Anomaly) -> str:
    who = anomaly.product.sku if anomaly.product_id else "(store)"
    return (
        f"{anomaly.get_anomaly_type_display()} {who} at {anomaly.location.code} "
        f"from {anomaly.start_date:%Y-%m-%d}"
    )


def anomalies_merge(*, parent_id: int, anomaly_ids: list[int], actor: User) -> MergeReport:
    """Group ``anomaly_ids`` under ``parent_id`` (their ``parent``), in one transaction.

    Locks the parent and the chosen rows; refuses (``PermissionDenied``, nothing changed) when
    one is outside the actor's stores, and (``MergeError``) when the parent is missing,
    closed or itself grouped under another. A chosen finding that is missing, closed, the
    parent itself, already grouped here or holding a group of its own is skipped with the
    reason. Writes a ``merge`` activity entry on every merged finding and one on the parent
    naming them. A row changed underneath (SQLite, no row locks) raises ``MergeError``.
    """
    ids = sorted(set(anomaly_ids))
    report = MergeReport(parent_id=parent_id)
    with transaction.atomic():
        rows = {
            a.pk: a
            for a in Anomaly.objects.select_for_update(of=("self",))
            .select_related("product", "location")
            .filter(pk__in=[parent_id, *ids])
            .order_by("pk")
        }
        location_ids_check(user=actor, location_ids={a.location_id for a in rows.values()})
        parent = rows.get(parent_id)
        if parent is None:
            raise MergeError(f"Anomaly {parent_id} not found.")
        if parent.status in CLOSED_STATUSES:
            raise MergeError(f"This anomaly is {parent.status}; nothing can be merged into it.")
        if parent.parent_id is not None:
            raise MergeError(
                "This anomaly is grouped under another one; merge into that one instead."
            )
        with_children = set(
            Anomaly.objects.filter(parent_id__in=ids).values_list("parent_id", flat=True)
        )
        merging: list[Anomaly] = []
        for pk in ids:
            row = rows.get(pk)
            if row is None:
                report.skipped[pk] = NOT_FOUND
            elif pk == parent_id:
                report.skipped[pk] = IS_PARENT
            elif row.status in CLOSED_STATUSES:
                report.skipped[pk] = row.status
            elif row.parent_id == parent_id:
                report.skipped[pk] = ALREADY_HERE
            elif pk in with_children:
                report.skipped[pk] = HAS_CHILDREN
            else:
                merging.append(row)
        if not merging:
            return report
        guards: dict[tuple[int | None, str], list[int]] = {}
        for row in merging:
            guards.setdefault((row.parent_id, row.status), []).append(row.pk)
        for (old_parent_id, status), group in guards.items():
            updated = Anomaly.objects.filter(
                pk__in=group, parent_id=old_parent_id, status=status
            ).update(parent_id=parent_id)
            if updated != len(group):
                raise MergeError("Anomalies were changed by someone else meanwhile; try again.")
        here = _describe(parent)
        entries = [
            ActivityEntry(
                row.pk,
                row.status,
                row.status,
                f"grouped under {here} (similar)"
                + (" instead of its earlier group" if row.parent_id else ""),
            )
            for row in merging
        ]
        names = "; ".join(_describe(row) for row in merging)
        n = len(merging)
        entries.append(
            ActivityEntry(
                parent.pk,
                parent.status,
                parent.status,
                f"{n} similar {'anomaly' if n == 1 else 'anomalies'} grouped here: {names}",
            )
        )
        anomaly_activity_record(action=ActivityAction.MERGE, actor=actor, entries=entries)
        report.merged_ids = [row.pk for row in merging]
    return report
