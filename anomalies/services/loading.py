"""Load the frames detection needs from the database, as of a date.

The only code that turns ORM tables into the pandas frames documented in
``anomalies.detectors.base``. Raw ``SELECT``s with explicit casts keep it fast (no model
instances, no ``Decimal`` objects) and identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import Max

from anomalies.detectors.base import (
    CALENDAR_DTYPES,
    PROMOTION_DTYPES,
    RECEIPT_DTYPES,
    SALES_DTYPES,
    STOCK_DTYPES,
    DetectionInput,
)
from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    Product,
    Promotion,
    Receipt,
    StockAdjustment,
    StockLevel,
)

# Days of history (up to and including the as-of date) handed to the detectors.
HISTORY_DAYS = 120


def latest_data_date() -> dt.date | None:
    """The latest date with imported sales, or ``None`` when nothing is imported."""
    return DailySales.objects.aggregate(latest=Max("date"))["latest"]


def _frame(sql: str, params: list, dtypes: dict[str, str]) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=list(dtypes))
    for name, dtype in dtypes.items():
        if dtype.startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name]).astype(dtype)
        elif dtype == "Int64":
            frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def detection_input_load(
    *, as_of: dt.date, history_days: int = HISTORY_DAYS, location_ids: list[int] | None = None
) -> DetectionInput:
    """Build the ``DetectionInput`` for ``as_of``: ``history_days`` days ending on ``as_of``.

    Nothing dated after ``as_of`` is loaded, so a walk-forward backfill never sees the future.
    ``stock`` is ``None`` when no book stock was ever imported (detectors that need it skip).
    """
    start = as_of - dt.timedelta(days=history_days - 1)
    return _load(start=start, end=as_of, as_of=as_of, location_ids=location_ids)


class DetectionFrames:
    """Frames loaded once for a date range; ``detection_input`` slices one as-of day out."""

    def __init__(self, data: DetectionInput) -> None:
        self.data = data

    def detection_input(
        self, *, as_of: dt.date, history_days: int = HISTORY_DAYS
    ) -> DetectionInput:
        lo = pd.Timestamp(as_of - dt.timedelta(days=history_days - 1))
        hi = pd.Timestamp(as_of)
        d = self.data

        def cut(frame):
            return None if frame is None else frame[frame["date"].between(lo, hi)]

        promos = d.promotions
        return DetectionInput(
            as_of=as_of,
            sales=cut(d.sales).reset_index(drop=True),
            products=d.products,
            locations=d.locations,
            stock=None if d.stock is None else cut(d.stock).reset_index(drop=True),
            receipts=cut(d.receipts).reset_index(drop=True),
            adjustments=cut(d.adjustments).reset_index(drop=True),
            promotions=promos[(promos["end_date"] >= lo) & (promos["start_date"] <= hi)],
            calendar=cut(d.calendar),
            currency=d.currency,
        )


def detection_window_load(
    *,
    start: dt.date,
    end: dt.date,
    history_days: int = HISTORY_DAYS,
    location_ids: list[int] | None = None,
) -> DetectionFrames:
    """Load once what every as-of day in ``[start, end]`` needs."""
    first = start - dt.timedelta(days=history_days - 1)
    return DetectionFrames(_load(start=first, end=end, as_of=end, location_ids=location_ids))


def _load(
    *, start: dt.date, end: dt.date, as_of: dt.date, location_ids: list[int] | None
) -> DetectionInput:
    window = [start, end]
    loc = ""
    loc_or_null = ""
    if location_ids is not None:
        ids = ", ".join(str(int(x)) for x in location_ids) or "NULL"
        loc = f" AND location_id IN ({ids})"
        loc_or_null = f" AND (location_id IS NULL OR location_id IN ({ids}))"
    sales = _frame(
        f"SELECT product_id, location_id, date, units_sold, units_returned, "
        f"CAST(unit_price AS DOUBLE PRECISION) FROM {DailySales._meta.db_table} "
        f"WHERE date BETWEEN %s AND %s{loc}",
        window,
        SALES_DTYPES,
    )
    stock = None
    if StockLevel.objects.exists():
        stock = _frame(
            f"SELECT product_id, location_id, date, on_hand FROM {StockLevel._meta.db_table} "
            f"WHERE date BETWEEN %s AND %s{loc}",
            window,
            STOCK_DTYPES,
        )
    receipts = _frame(
        f"SELECT product_id, location_id, date, units FROM {Receipt._meta.db_table} "
        f"WHERE date BETWEEN %s AND %s{loc}",
        window,
        RECEIPT_DTYPES,
    )
    adjustments = _frame(
        f"SELECT product_id, location_id, date, SUM(delta) FROM {StockAdjustment._meta.db_table} "
        f"WHERE date BETWEEN %s AND %s{loc} GROUP BY product_id, location_id, date",
        window,
        RECEIPT_DTYPES,
    )
    promotions = _frame(
        f"SELECT product_id, location_id, start_date, end_date, "
        f"CAST(discount_pct AS DOUBLE PRECISION) FROM {Promotion._meta.db_table} "
        f"WHERE end_date >= %s AND start_date <= %s{loc_or_null}",
        window,
        PROMOTION_DTYPES,
    )
    calendar = _frame(
        f"SELECT date, location_id, name, is_closed FROM {CalendarEvent._meta.db_table} "
        f"WHERE date BETWEEN %s AND %s{loc_or_null}",
        window,
        CALENDAR_DTYPES,
    )
    products = _frame(
        f"SELECT id, sku, name, category, CAST(unit_price AS DOUBLE PRECISION), "
        f"CAST(unit_cost AS DOUBLE PRECISION) FROM {Product._meta.db_table}",
        [],
        {
            "product_id": "int64",
            "sku": "object",
            "name": "object",
            "category": "object",
            "unit_price": "float64",
            "unit_cost": "float64",
        },
    ).set_index("product_id")
    locations = _frame(
        f"SELECT id, code, name FROM {Location._meta.db_table}",
        [],
        {"location_id": "int64", "code": "object", "name": "object"},
    ).set_index("location_id")
    return DetectionInput(
        as_of=as_of,
        sales=sales,
        products=products,
        locations=locations,
        stock=stock,
        receipts=receipts,
        adjustments=adjustments,
        promotions=promotions,
        calendar=calendar,
        currency=settings.SHELFWATCH_CURRENCY,
    )
