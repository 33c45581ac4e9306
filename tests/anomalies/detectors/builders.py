"""Builders of small ``DetectionInput`` bundles from compact per-series specs (for tests).

A series is described by its daily arrays ending at ``as_of`` (the last element is the as-of
day); everything else defaults to something ordinary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anomalies.detectors.base import (
    CALENDAR_DTYPES,
    PROMOTION_DTYPES,
    RECEIPT_DTYPES,
    SALES_DTYPES,
    STOCK_DTYPES,
    DetectionInput,
)
from anomalies.detectors.grid import Grid

AS_OF = dt.date(2024, 3, 31)  # a Sunday


@dataclass
class Series:
    """One SKU/location: daily arrays aligned so that the last element is ``as_of``.

    ``on_hand``: an array, a constant, or ``None`` (no stock rows for this series).
    ``realized``: realized unit price per day (defaults to ``price`` on selling days).
    """

    product_id: int
    units: Sequence[float]
    location_id: int = 1
    price: float = 2.5
    on_hand: Sequence[float] | float | None = 40
    realized: Sequence[float] | None = None
    returned: Sequence[float] | None = None


def day(offset: int, as_of: dt.date = AS_OF) -> pd.Timestamp:
    """The date ``offset`` days before ``as_of`` (0 = as_of)."""
    return pd.Timestamp(as_of) - pd.Timedelta(days=offset)


def make_input(
    series: Sequence[Series],
    *,
    as_of: dt.date = AS_OF,
    with_stock: bool = True,
    promotions: Sequence[tuple] = (),
    calendar: Sequence[tuple] = (),
    receipts: Sequence[tuple] = (),
    adjustments: Sequence[tuple] = (),
) -> DetectionInput:
    """A ``DetectionInput`` from series specs.

    ``promotions``: (product_id, location_id or None, start, end, discount_pct);
    ``calendar``: (date, location_id or None, name, is_closed);
    ``receipts``: (product_id, location_id, date, units);
    ``adjustments``: (product_id, location_id, date, units) recorded book corrections.
    """
    sales_parts, stock_parts = [], []
    for s in series:
        units = np.asarray(s.units, dtype="int64")
        n = len(units)
        dates = pd.date_range(end=pd.Timestamp(as_of), periods=n, freq="D")
        realized = (
            np.asarray(s.realized, dtype="float64")
            if s.realized is not None
            else np.full(n, s.price)
        )
        returned = (
            np.asarray(s.returned, dtype="int64")
            if s.returned is not None
            else np.zeros(n, "int64")
        )
        keep = (units > 0) | (returned > 0)
        sales_parts.append(
            pd.DataFrame(
                {
                    "product_id": s.product_id,
                    "location_id": s.location_id,
                    "date": dates[keep],
                    "units_sold": units[keep],
                    "units_returned": returned[keep],
                    "unit_price": np.where(units[keep] > 0, realized[keep], np.nan),
                }
            )
        )
        if s.on_hand is not None:
            on_hand = np.broadcast_to(np.asarray(s.on_hand, dtype="int64"), (n,))
            stock_parts.append(
                pd.DataFrame(
                    {
                        "product_id": s.product_id,
                        "location_id": s.location_id,
                        "date": dates,
                        "on_hand": on_hand,
                    }
                )
            )
    products = pd.DataFrame(
        {
            "product_id": [s.product_id for s in series],
            "sku": [f"SKU{s.product_id}" for s in series],
            "name": [f"Product {s.product_id}" for s in series],
            "category": "Grocery",
            "unit_price": [s.price for s in series],
            "unit_cost": np.nan,
        }
    ).drop_duplicates("product_id")
    locations = sorted({s.location_id for s in series})
    return DetectionInput(
        as_of=as_of,
        sales=_typed(pd.concat(sales_parts, ignore_index=True), SALES_DTYPES),
        products=products.set_index("product_id"),
        locations=pd.DataFrame(
            {"code": [f"L{i}" for i in locations], "name": [f"Store {i}" for i in locations]},
            index=pd.Index(locations, name="location_id", dtype="int64"),
        ),
        stock=_typed(pd.concat(stock_parts, ignore_index=True), STOCK_DTYPES)
        if with_stock and stock_parts
        else None,
        receipts=_frame(receipts, RECEIPT_DTYPES),
        adjustments=_frame(adjustments, RECEIPT_DTYPES),
        promotions=_frame(promotions, PROMOTION_DTYPES),
        calendar=_frame(calendar, CALENDAR_DTYPES),
    )


def _typed(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    return frame[list(dtypes)].astype(dtypes).reset_index(drop=True)


def _frame(rows: Sequence[tuple], dtypes: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(dtypes))
    for col, dtype in dtypes.items():
        if dtype.startswith("datetime"):
            frame[col] = pd.to_datetime(frame[col])
    return frame.astype(dtypes)


def poisson_units(rate: float, n_days: int, seed: int = 0) -> np.ndarray:
    """Daily Poisson units (one fixed seed per test, so tests are deterministic)."""
    return np.random.default_rng(seed).poisson(rate, n_days)


def assert_same_grid(a: Grid, b: Grid) -> None:
    """Every field of two grids equal (arrays by dtype, shape and value, NaN == NaN)."""
    for f in dataclasses.fields(Grid):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "memo":
            continue
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        elif isinstance(x, pd.Index):
            assert x.equals(y), f.name
        else:
            assert x == y, f.name
