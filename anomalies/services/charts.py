"""Data for the chart on the anomaly page: daily sales against the expected level, book stock,
and the anomaly's window.

The expected level of a day is the median of the units sold on the same weekday in the four
previous weeks (days ``d − 7``, ``d − 14``, ``d − 21``, ``d − 28``) — a simple, robust seasonal
naive baseline (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.,
§5.2 "seasonal naïve"; the median of four seasons instead of the last one, so that one odd week
does not move it). Weeks that fall inside the anomaly's own window are skipped and the next
older same weekday is taken instead, so a long anomaly never becomes its own baseline: inside
the window the line shows what the weeks before it would have predicted. Days without a sales
row count as zero sales. The detectors use richer models (promotions, closed days); this line
is a visual reference, not their expected value.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from django.db.models import Max, Sum

from anomalies.models import Anomaly
from inventory.models import DailySales, StockLevel

CHART_MIN_DAYS = 56
# Days shown after the anomaly's end (when data exists) and before its start, at least.
CHART_DAYS_AFTER = 14
CHART_DAYS_BEFORE = 14
BASELINE_WEEKS = 4


def _expected(
    day: dt.date, sales: dict[dt.date, int], window: tuple[dt.date, dt.date]
) -> float | None:
    """Median units sold on the ``BASELINE_WEEKS`` previous same weekdays outside ``window``."""
    values: list[int] = []
    back = day
    # Bounded: at most the window's length in weeks plus the baseline weeks.
    for _ in range(BASELINE_WEEKS + (window[1] - window[0]).days // 7 + 2):
        back -= dt.timedelta(days=7)
        if window[0] <= back <= window[1]:
            continue
        values.append(sales.get(back, 0))
        if len(values) == BASELINE_WEEKS:
            return float(statistics.median(values))
    return None


def anomaly_chart_data(*, anomaly: Anomaly) -> dict[str, Any]:
    """The series of the anomaly page's chart, JSON-ready.

    Window: from ``CHART_DAYS_BEFORE`` days before the anomaly's start (earlier if needed to
    show at least ``CHART_MIN_DAYS`` days) to ``CHART_DAYS_AFTER`` days after its end, cut at
    the latest day with sales data at that location (never before the anomaly's end).

    Returns::

        {
          "labels": ["2024-01-01", ...],      # ISO dates, oldest first
          "sales": [3, 0, ...],               # units sold per day (0 without a sales row)
          "expected": [4.0, None, ...],       # same-weekday median of the 4 previous weeks
          "on_hand": [38, None, ...],         # book stock at end of day (None: not imported)
          "window": {"start": "2024-01-20", "end": "2024-01-25",
                     "first_index": 19, "last_index": 24},  # indexes into labels
          "product": "SKU00001 Product 1" or None,
          "location": "S001",
          "expected_method": "<one sentence>",
        }

    For a location-level anomaly (no product) sales and stock are totals over the location's
    SKUs. Three queries (latest data date, sales, stock).
    """
    filters: dict[str, Any] = {"location_id": anomaly.location_id}
    if anomaly.product_id is not None:
        filters["product_id"] = anomaly.product_id

    latest = (
        DailySales.objects.filter(location_id=anomaly.location_id, date__gte=anomaly.end_date)
        .aggregate(latest=Max("date"))
        .get("latest")
    )
    end = anomaly.end_date + dt.timedelta(days=CHART_DAYS_AFTER)
    end = max(anomaly.end_date, min(end, latest or anomaly.end_date))
    start = min(
        anomaly.start_date - dt.timedelta(days=CHART_DAYS_BEFORE),
        end - dt.timedelta(days=CHART_MIN_DAYS - 1),
    )
    window = (anomaly.start_date, anomaly.end_date)
    # Enough history for the baseline of the first day shown and of every day in the window.
    window_weeks = (anomaly.end_date - anomaly.start_date).days // 7 + 1
    load_from = start - dt.timedelta(days=7 * (BASELINE_WEEKS + window_weeks))
    in_range = {**filters, "date__gte": load_from, "date__lte": end}

    sales_rows = DailySales.objects.filter(**in_range).order_by()
    stock_rows = StockLevel.objects.filter(**{**in_range, "date__gte": start}).order_by()
    if anomaly.product_id is not None:
        sales = dict(sales_rows.values_list("date", "units_sold"))
        stock = dict(stock_rows.values_list("date", "on_hand"))
    else:
        sales = dict(
            sales_rows.values("date").annotate(t=Sum("units_sold")).values_list("date", "t")
        )
        stock = dict(stock_rows.values("date").annotate(t=Sum("on_hand")).values_list("date", "t"))

    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return {
        "labels": [day.isoformat() for day in days],
        "sales": [sales.get(day, 0) for day in days],
        "expected": [_expected(day, sales, window) for day in days],
        "on_hand": [stock.get(day) for day in days],
        "window": {
            "start": anomaly.start_date.isoformat(),
            "end": anomaly.end_date.isoformat(),
            "first_index": (anomaly.start_date - start).days,
            "last_index": (anomaly.end_date - start).days,
        },
        "product": str(anomaly.product) if anomaly.product_id else None,
        "location": anomaly.location.code,
        "expected_method": "Median of the same weekday in the 4 previous weeks "
        "(weeks inside the anomaly skipped).",
    }
