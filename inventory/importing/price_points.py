"""The chain-wide price points table (``PricePoint``): which unit prices each SKU sold at, by day.

Two writers. ``price_points_from_lines`` keeps every line's own unit price from a line-level
import (a quantity or customer tier is a price of its own there, where the day's average would
mix it with others). ``price_points_refresh`` derives points from the daily sales of the days
not yet covered (the latest covered day is redone), outside promotions; detection calls it at
the start of every run, so a nightly import costs only its new days. The rule is the one
``anomalies.detectors.price_levels.price_points_from_sales`` applies to in-memory frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Max

from common.bulk import bulk_upsert
from inventory.models import DailySales, PricePoint, Product, Promotion

_KEY = ["date", "product_id", "price_pence"]


def price_points_refresh() -> int:
    """Add the price points of the daily sales dated on or after the latest covered day.

    A sales row gives a point when units were sold at a positive average price and no
    promotion of its SKU covers its location and day; the price is rounded to the penny.
    Runs in its own transaction (a savepoint inside one). Returns the number of rows added.
    """
    since = PricePoint.objects.aggregate(latest=Max("date"))["latest"]
    sales, promos, points = (model._meta.db_table for model in (DailySales, Promotion, PricePoint))
    where, params = "", []
    if since is not None:
        where, params = " AND s.date >= %s", [since]
    sql = (
        f"INSERT INTO {points} (date, product_id, price_pence) "
        f"SELECT DISTINCT s.date, s.product_id, CAST(ROUND(s.unit_price * 100) AS INTEGER) "
        f"FROM {sales} s WHERE s.units_sold > 0 AND s.unit_price > 0{where} "
        f"AND NOT EXISTS (SELECT 1 FROM {promos} p WHERE p.product_id = s.product_id "
        f"AND (p.location_id IS NULL OR p.location_id = s.location_id) "
        f"AND s.date BETWEEN p.start_date AND p.end_date) "
        f"ON CONFLICT DO NOTHING"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def price_points_from_lines(points: pd.DataFrame) -> int:
    """Store the distinct line prices ``points`` (columns ``sku`` (str), ``date``
    (datetime64, midnight), ``price`` (float64, > 0)); SKUs must exist. Existing points are
    kept. Returns the number of rows added."""
    if points.empty:
        return 0
    product_ids = dict(Product.objects.values_list("sku", "id"))
    rows = pd.DataFrame(
        {
            "date": points["date"].to_numpy(),
            "product_id": points["sku"].map(product_ids).astype("int64").to_numpy(),
            "price_pence": np.rint(points["price"].to_numpy(dtype="float64") * 100).astype("int64"),
        }
    ).drop_duplicates(_KEY, ignore_index=True)
    return bulk_upsert(PricePoint, rows, _KEY, [])
