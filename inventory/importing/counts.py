"""Recorded counts win over re-imported book stock.

A cycle count recorded in ShelfWatch (``outcomes.services.cycle_counts.cycle_count_record``)
sets the ``StockLevel`` of its stock date to the units counted, with a ``StockAdjustment``
beside it. The source system's ``inventory.csv`` does not know about the count: importing it
again (``make demo-data`` twice) wrote the pre-count book back over that day, so the history
contradicted its own adjustment and the next detection run raised a new discrepancy of
exactly the units written off. The importer therefore puts the counted value back on every
such day, inside the import's transaction: re-importing never undoes a recorded count.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Subquery

from inventory.models import StockAdjustment, StockLevel


def counted_days_keep() -> int:
    """Set the book stock of each day a ``StockAdjustment`` corrected back to what was
    counted (the latest adjustment of that SKU, location and day wins); return the number of
    days that an import had changed. Two queries' worth of work whatever the table's size:
    one UPDATE over the adjusted rows only."""
    adjusted = StockAdjustment.objects.filter(
        product_id=OuterRef("product_id"),
        location_id=OuterRef("location_id"),
        date=OuterRef("date"),
    )
    counted = Subquery(adjusted.order_by("-id").values("counted")[:1])
    return (
        StockLevel.objects.filter(Exists(adjusted)).exclude(on_hand=counted).update(on_hand=counted)
    )
