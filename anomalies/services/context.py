"""What a person needs next to an anomaly to judge it: the recent sales and stock behind it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Sum

from anomalies.models import Anomaly
from inventory.models import DailySales, Receipt, StockLevel

RECENT_ACTIVITY_DAYS = 28


def anomaly_recent_activity(
    *, anomaly: Anomaly, days: int = RECENT_ACTIVITY_DAYS
) -> list[dict[str, Any]]:
    """One row per day for the ``days`` days ending on the anomaly's ``end_date``, oldest first.

    Each row: ``date``, ``units_sold``, ``units_returned`` (0 on days without a sales row),
    ``unit_price`` (realized, ``None`` when unknown), ``on_hand`` (book stock at end of day,
    ``None`` when not imported), ``receipts`` (units received, 0 when none) and
    ``in_anomaly`` (the day lies within the anomaly's date range).

    For a location-level anomaly (no product) the numbers are totals over the location's
    SKUs and ``unit_price`` is ``None``. Three queries.
    """
    end = anomaly.end_date
    start = end - dt.timedelta(days=days - 1)
    window = {"location_id": anomaly.location_id, "date__gte": start, "date__lte": end}
    if anomaly.product_id is not None:
        window["product_id"] = anomaly.product_id
        sales = {
            row["date"]: row
            for row in DailySales.objects.filter(**window).values(
                "date", "units_sold", "units_returned", "unit_price"
            )
        }
        stock = dict(StockLevel.objects.filter(**window).values_list("date", "on_hand"))
        receipts = dict(Receipt.objects.filter(**window).values_list("date", "units"))
    else:
        sales = {
            row["date"]: row
            for row in DailySales.objects.filter(**window)
            .order_by()
            .values("date")
            .annotate(units_sold=Sum("units_sold"), units_returned=Sum("units_returned"))
        }
        stock = dict(
            StockLevel.objects.filter(**window)
            .order_by()
            .values("date")
            .annotate(total=Sum("on_hand"))
            .values_list("date", "total")
        )
        receipts = dict(
            Receipt.objects.filter(**window)
            .order_by()
            .values("date")
            .annotate(total=Sum("units"))
            .values_list("date", "total")
        )

    rows = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        sale = sales.get(day, {})
        rows.append(
            {
                "date": day,
                "units_sold": sale.get("units_sold", 0),
                "units_returned": sale.get("units_returned", 0),
                "unit_price": sale.get("unit_price"),
                "on_hand": stock.get(day),
                "receipts": receipts.get(day, 0),
                "in_anomaly": anomaly.start_date <= day <= anomaly.end_date,
            }
        )
    return rows
