"""Loading detection input from the database: as of a day, for a chunk of locations, for a
window of days (run on SQLite and PostgreSQL; on PostgreSQL the large tables take the packed
binary path, which must give exactly what the plain cursor gives)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors.base import (
    CALENDAR_DTYPES,
    PROMOTION_DTYPES,
    RECEIPT_DTYPES,
    SALES_DTYPES,
    STOCK_DTYPES,
)
from anomalies.detectors.grid import build_grid, grid_from_frames
from anomalies.services import loading
from anomalies.services.loading import (
    DetectionFrames,
    detection_input_load,
    detection_window_load,
)
from inventory.models import (
    AdjustmentReason,
    CalendarEvent,
    DailySales,
    Promotion,
    Receipt,
    StockAdjustment,
    StockLevel,
)
from tests.anomalies.detectors.builders import assert_same_grid
from tests.factories import LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

DAY0 = dt.date(2024, 3, 1)
N_DAYS = 40
FACTS = ("sales", "stock", "receipts", "adjustments")


def day(i: int) -> dt.date:
    return DAY0 + dt.timedelta(days=i)


@pytest.fixture
def retail():
    """3 stores x 4 SKUs over N_DAYS days with gaps, NULL prices, returns, receipts, summed
    adjustments, and promotions and calendar rows for one store or for all of them."""
    rng = np.random.default_rng(5)
    products = [ProductFactory(unit_price=Decimal("1.25") * (i + 1)) for i in range(4)]
    locations = [LocationFactory() for _ in range(3)]
    sales, stock, receipts = [], [], []
    for li, location in enumerate(locations):
        for pi, product in enumerate(products):
            first = 3 * pi + li  # series start on different days
            for i in range(first, N_DAYS):
                if rng.random() < 0.7:
                    price = None if rng.random() < 0.1 else Decimal(f"{rng.uniform(0.5, 9):.4f}")
                    sales.append(
                        DailySales(
                            product=product,
                            location=location,
                            date=day(i),
                            units_sold=int(rng.integers(0, 20)),
                            units_returned=int(rng.integers(0, 2)),
                            unit_price=price,
                        )
                    )
                if rng.random() < 0.8:
                    stock.append(
                        StockLevel(
                            product=product,
                            location=location,
                            date=day(i),
                            on_hand=int(rng.integers(-2, 60)),
                        )
                    )
                if rng.random() < 0.1:
                    receipts.append(
                        Receipt(product=product, location=location, date=day(i), units=24)
                    )
    DailySales.objects.bulk_create(sales)
    StockLevel.objects.bulk_create(stock)
    Receipt.objects.bulk_create(receipts)
    for delta in (-3, 5):  # two corrections of one day are summed
        StockAdjustment.objects.create(
            product=products[0],
            location=locations[1],
            date=day(20),
            book_before=10,
            counted=10 + delta,
            delta=delta,
            reason=AdjustmentReason.CYCLE_COUNT,
        )
    Promotion.objects.create(
        product=products[1], location=None, start_date=day(5), end_date=day(12), discount_pct=20
    )
    Promotion.objects.create(
        product=products[2],
        location=locations[2],
        start_date=day(25),
        end_date=day(33),
        discount_pct=Decimal("12.5"),
    )
    CalendarEvent.objects.create(date=day(15), name="Bank holiday", is_closed=True)
    CalendarEvent.objects.create(date=day(30), name="Fair", location=locations[0])
    return [p.pk for p in products], [loc.pk for loc in locations]


def _plain_facts(monkeypatch) -> None:
    """Load every table through the plain cursor, as the loader did before packing."""
    monkeypatch.setattr(
        loading,
        "_facts_frame",
        lambda sql, params, dtypes, packing: loading._frame(sql, params, dtypes),
    )


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Row order is unspecified: compare frames sorted on every column."""
    keys = [c for c in frame.columns if c != "details"]
    return frame.sort_values(keys, kind="stable", ignore_index=True)


def assert_same_input(a, b) -> None:
    for name in (*FACTS, "promotions", "calendar"):
        pd.testing.assert_frame_equal(_sorted(getattr(a, name)), _sorted(getattr(b, name)))
    pd.testing.assert_frame_equal(a.products, b.products)
    pd.testing.assert_frame_equal(a.locations, b.locations)
    assert (a.as_of, a.currency) == (b.as_of, b.currency)


def test_load_has_the_contract_dtypes_and_nan_for_unknown_prices(retail):
    data = detection_input_load(as_of=day(N_DAYS - 1), history_days=N_DAYS)

    for frame, dtypes in (
        (data.sales, SALES_DTYPES),
        (data.stock, STOCK_DTYPES),
        (data.receipts, RECEIPT_DTYPES),
        (data.adjustments, RECEIPT_DTYPES),
        (data.promotions, PROMOTION_DTYPES),
        (data.calendar, CALENDAR_DTYPES),
    ):
        assert {c: str(t) for c, t in frame.dtypes.items()} == dtypes
    assert len(data.sales) == DailySales.objects.count()
    assert (
        data.sales["unit_price"].isna().sum() == DailySales.objects.filter(unit_price=None).count()
    )
    assert data.adjustments["units"].tolist() == [2]
    assert data.stock["on_hand"].min() < 0  # negative book stock survives the wire format


@pytest.mark.parametrize("location_ids", [None, "first two", "last"])
def test_packed_load_equals_the_plain_cursor(retail, monkeypatch, location_ids):
    _, locations = retail
    ids = {None: None, "first two": locations[:2], "last": locations[-1:]}[location_ids]
    loaded = detection_input_load(as_of=day(31), history_days=20, location_ids=ids)
    _plain_facts(monkeypatch)
    plain = detection_input_load(as_of=day(31), history_days=20, location_ids=ids)

    assert_same_input(loaded, plain)
    assert len(loaded.sales) > 0


def test_location_chunk_keeps_rows_for_every_location(retail):
    products, locations = retail
    data = detection_input_load(
        as_of=day(N_DAYS - 1), history_days=N_DAYS, location_ids=[locations[1]]
    )

    for name in FACTS:
        assert set(getattr(data, name)["location_id"]) <= {locations[1]}, name
    assert len(data.sales) == DailySales.objects.filter(location_id=locations[1]).count()
    # The promotion of every store stays; the other store's promotion and event do not.
    assert data.promotions["product_id"].tolist() == [products[1]]
    assert data.promotions["location_id"].isna().all()
    assert data.calendar["name"].tolist() == ["Bank holiday"]
    assert len(data.products) == 4 and len(data.locations) == 3


def test_an_empty_location_chunk_loads_no_facts(retail):
    data = detection_input_load(as_of=day(N_DAYS - 1), location_ids=[])

    assert all(getattr(data, name).empty for name in FACTS)
    assert data.calendar["name"].tolist() == ["Bank holiday"]


def test_window_day_input_equals_that_days_load(retail):
    _, locations = retail
    window = detection_window_load(
        start=day(3), end=day(N_DAYS - 1), history_days=10, location_ids=locations[1:]
    )

    for i in (3, 4, 9, 12, 20, 30, N_DAYS - 1):
        from_window = window.detection_input(as_of=day(i), history_days=10)
        loaded = detection_input_load(as_of=day(i), history_days=10, location_ids=locations[1:])
        assert_same_input(from_window, loaded)
        assert_same_grid(build_grid(from_window), grid_from_frames(loaded))


def test_window_days_never_hold_rows_after_their_as_of(retail):
    window = detection_window_load(start=day(5), end=day(N_DAYS - 1), history_days=6)

    for i in range(5, N_DAYS):
        data = window.detection_input(as_of=day(i), history_days=6)
        for name in FACTS:
            dates = getattr(data, name)["date"]
            assert dates.empty or dates.max() <= pd.Timestamp(day(i)), name
            assert dates.empty or dates.min() >= pd.Timestamp(day(i - 5)), name
        assert (data.promotions["start_date"] <= pd.Timestamp(day(i))).all()
        assert (data.calendar["date"] <= pd.Timestamp(day(i))).all()
        assert build_grid(data).dates[-1] == pd.Timestamp(day(i))
        assert build_grid(data).n_days <= 6


def test_window_refuses_days_it_did_not_load(retail):
    window = detection_window_load(start=day(10), end=day(20), history_days=5)

    with pytest.raises(ValueError, match="not within the loaded"):
        window.detection_input(as_of=day(21), history_days=5)
    with pytest.raises(ValueError, match="not within the loaded"):
        window.detection_input(as_of=day(10), history_days=6)
    with pytest.raises(ValueError, match="before it starts"):
        detection_window_load(start=day(10), end=day(9))


def test_frames_are_sorted_by_date_whatever_order_they_come_in():
    frames = DetectionFrames(
        products=pd.DataFrame({"unit_price": [1.0]}, index=pd.Index([1], name="product_id")),
        locations=pd.DataFrame({"code": ["S1"]}, index=pd.Index([1], name="location_id")),
        sales=pd.DataFrame(
            {
                "product_id": [1, 1],
                "location_id": [1, 1],
                "date": pd.to_datetime([day(2), day(1)]),
                "units_sold": [3, 4],
                "units_returned": [0, 0],
                "unit_price": [1.0, 1.0],
            }
        ),
        stock=None,
        receipts=pd.DataFrame({c: pd.Series(dtype=t) for c, t in RECEIPT_DTYPES.items()}),
        promotions=pd.DataFrame({c: pd.Series(dtype=t) for c, t in PROMOTION_DTYPES.items()}),
        calendar=pd.DataFrame({c: pd.Series(dtype=t) for c, t in CALENDAR_DTYPES.items()}),
    )

    data = frames.detection_input(as_of=day(1), history_days=1)

    assert data.sales["units_sold"].tolist() == [4]
    assert build_grid(data).units.tolist() == [[4.0]]
