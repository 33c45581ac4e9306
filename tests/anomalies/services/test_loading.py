"""Loaded windows: counting the SKU-locations of each day of a walk forward."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from anomalies.detectors.base import (
    CALENDAR_DTYPES,
    PROMOTION_DTYPES,
    RECEIPT_DTYPES,
    SALES_DTYPES,
    STOCK_DTYPES,
)
from anomalies.services.loading import DetectionFrames
from anomalies.services.runs import _series_count

FIRST = dt.date(2024, 3, 1)


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def _rows(dtypes: dict[str, str], rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(dtypes))
    return frame.astype(dtypes) if rows else _empty(dtypes)


def _frames(sales: list[tuple], stock: list[tuple] | None) -> DetectionFrames:
    return DetectionFrames(
        products=pd.DataFrame({"unit_price": [1.0]}, index=pd.Index([1], name="product_id")),
        locations=pd.DataFrame({"code": ["S1"]}, index=pd.Index([1], name="location_id")),
        sales=_rows(SALES_DTYPES, sales),
        stock=None if stock is None else _rows(STOCK_DTYPES, stock),
        receipts=_empty(RECEIPT_DTYPES),
        promotions=_empty(PROMOTION_DTYPES),
        calendar=_empty(CALENDAR_DTYPES),
    )


def _day(offset: int) -> pd.Timestamp:
    return pd.Timestamp(FIRST + dt.timedelta(days=offset))


def test_series_count_is_what_each_days_input_holds():
    rng = np.random.default_rng(3)
    sales, stock = [], []
    for offset in range(30):
        for product in range(1, 9):
            for location in (1, 2, 7):
                if rng.random() < 0.15:  # sparse: series come and go
                    sales.append((product, location, _day(offset), 1, 0, 2.0))
                if rng.random() < 0.1:
                    stock.append((product + 100, location, _day(offset), 4))  # stock only
    for with_stock in (True, False):
        frames = _frames(sales, stock if with_stock else None)
        for offset in (0, 3, 12, 29):
            for history in (1, 5, 30):
                as_of = FIRST + dt.timedelta(days=offset)
                data = frames.detection_input(as_of=as_of, history_days=history)
                assert frames.series_count(as_of=as_of, history_days=history) == _series_count(data)


def test_series_count_of_a_quiet_stretch_is_zero():
    frames = _frames([(1, 1, _day(0), 1, 0, 2.0), (1, 1, _day(9), 1, 0, 2.0)], [])
    assert frames.series_count(as_of=FIRST + dt.timedelta(days=5), history_days=3) == 0
    assert frames.series_count(as_of=FIRST + dt.timedelta(days=9), history_days=10) == 1
