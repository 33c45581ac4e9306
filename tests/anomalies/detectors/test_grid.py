"""The dense daily grid and its walk-forward window (``anomalies.detectors.grid``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors.grid import GRID_MAX_DAYS, GridWindow, build_grid, grid_from_frames
from tests.anomalies.detectors.builders import (
    AS_OF,
    Series,
    assert_same_grid,
    day,
    make_input,
)


def test_grid_is_dense_with_zeros_for_missing_sales_rows():
    data = make_input([Series(1, [3, 0, 0, 5]), Series(2, [0, 2, 0, 0], location_id=2)])
    grid = build_grid(data)

    assert grid.units.shape == (2, 4)
    assert grid.dates[-1] == pd.Timestamp(AS_OF)
    assert grid.units[0].tolist() == [3, 0, 0, 5]
    assert grid.units[1].tolist() == [0, 2, 0, 0]
    assert np.isnan(grid.price[0, 1]) and grid.price[0, 0] == 2.5
    assert grid.location_id.tolist() == [1, 2]
    assert grid.first_sale.tolist() == [0, 1]
    assert grid.regular_price.tolist() == [2.5, 2.5]


def test_grid_rows_are_grouped_by_location():
    data = make_input(
        [Series(3, [1, 1], location_id=2), Series(1, [1, 1], location_id=1), Series(2, [1, 1])]
    )
    grid = build_grid(data)

    assert grid.location_id.tolist() == [1, 1, 2]
    assert grid.product_id.tolist() == [1, 2, 3]
    assert grid.loc_starts.tolist() == [0, 2]


def test_grid_ignores_rows_after_as_of():
    data = make_input([Series(1, [1, 2, 3])])
    late = data.sales.iloc[[0]].assign(date=pd.Timestamp(AS_OF) + pd.Timedelta(days=1))
    sales = pd.concat([data.sales, late], ignore_index=True)
    grid = grid_from_frames(
        type(data)(as_of=AS_OF, sales=sales, products=data.products, locations=data.locations)
    )

    assert grid.dates[-1] == pd.Timestamp(AS_OF)
    assert grid.units.sum() == 6


def test_stock_is_forward_filled_between_records():
    data = make_input([Series(1, [1, 1, 1, 1], on_hand=[9, 8, 7, 6])])
    stock = data.stock.drop(index=[1, 2])  # only the first and last day were counted
    grid = grid_from_frames(
        type(data)(
            as_of=AS_OF,
            sales=data.sales,
            products=data.products,
            locations=data.locations,
            stock=stock,
        )
    )

    assert np.isnan(grid.on_hand[0, 1])
    assert grid.on_hand_ffill[0].tolist() == [9, 9, 9, 6]


def test_promotion_without_location_covers_every_location_and_keeps_deepest_discount():
    data = make_input(
        [Series(1, [1] * 10), Series(1, [1] * 10, location_id=2), Series(2, [1] * 10)],
        promotions=[
            (1, None, day(3), day(1), 20.0),
            (1, 2, day(2), day(2), 40.0),
            (2, 2, day(5), day(0), 30.0),  # product 2 is not sold at location 2
        ],
    )
    grid = build_grid(data)

    assert grid.promo[0].tolist() == [False] * 6 + [True, True, True, False]
    assert grid.promo[2].tolist() == [False] * 6 + [True, True, True, False]
    assert grid.discount_pct[2, 7] == 40.0
    assert grid.discount_pct[2, 6] == 20.0
    assert not grid.promo[1].any()


def test_calendar_marks_closed_days_and_events_per_location():
    data = make_input(
        [Series(1, [1] * 5), Series(1, [1] * 5, location_id=2)],
        calendar=[
            (day(1), None, "Bank holiday (closed)", True),
            (day(3), 2, "Local festival", False),
        ],
    )
    grid = build_grid(data)

    assert grid.closed[:, 3].all()
    assert grid.calendar_closed[:, 3].all()
    assert grid.event[:, 1].tolist() == [False, True]


def test_store_wide_zero_sales_day_counts_as_closed_only_for_a_busy_store():
    busy = [Series(i, [2, 2, 0, 2]) for i in range(1, 25)]
    quiet = [Series(100 + i, [2, 2, 0, 2], location_id=2) for i in range(3)]
    grid = build_grid(make_input(busy + quiet))

    assert grid.closed[:24, 2].all()
    assert not grid.closed[24:, 2].any()
    assert grid.location_silent[:, 2].all()
    assert not grid.calendar_closed.any()


def test_grid_is_built_once_per_input():
    data = make_input([Series(1, [1, 2, 3])])

    assert build_grid(data) is build_grid(data)
    assert build_grid(make_input([Series(1, [1, 2, 3])])) is not build_grid(data)


def _varied_input(seed: int, n_days: int = 60):
    """Series that start and stop on different days (some drop out of later windows), stock
    with gaps, promotions and calendar rows for one store or all, receipts (also for a series
    the grid does not know) and adjustments."""
    rng = np.random.default_rng(seed)
    series = []
    for i in range(12):
        units = rng.poisson(rng.uniform(0.3, 6.0), n_days)
        begin, end = sorted(rng.integers(0, n_days, 2))
        units[:begin] = 0
        units[end + 1 :] = 0
        # Half the series have no book stock: sales alone decide whether a window holds them.
        on_hand = rng.integers(-1, 30, n_days) if i % 2 else None
        series.append(Series(i + 1, units, location_id=1 + i % 3, on_hand=on_hand))
    data = make_input(
        series,
        promotions=[(2, None, day(40), day(30), 25.0), (3, 2, day(20), day(5), 10.0)],
        calendar=[(day(33), None, "Holiday", True), (day(12), 3, "Fair", False)],
        receipts=[(4, 2, day(10), 24), (4, 2, day(10), 6), (99, 1, day(8), 5)],
        adjustments=[(5, 3, day(15), -2)],
    )
    # Book stock with gaps, and none at all before each series' first stock count.
    stock = data.stock.sample(frac=0.7, random_state=seed).sort_index()
    return dataclasses.replace(data, stock=stock)


def _rows_between(data, lo: pd.Timestamp, hi: pd.Timestamp):
    """``data`` restricted to the rows dated ``lo``..``hi``, as of ``hi`` (what a load gives)."""

    def cut(frame):
        return frame[(frame["date"] >= lo) & (frame["date"] <= hi)]

    promos = data.promotions
    return dataclasses.replace(
        data,
        as_of=hi.date(),
        sales=cut(data.sales),
        stock=cut(data.stock),
        receipts=cut(data.receipts),
        adjustments=cut(data.adjustments),
        promotions=promos[(promos["end_date"] >= lo) & (promos["start_date"] <= hi)],
        calendar=cut(data.calendar),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_day_cut_from_the_window_grid_equals_that_days_own_grid(seed):
    data = _varied_input(seed)
    history = 20
    first = pd.Timestamp(AS_OF) - pd.Timedelta(days=45)
    window = GridWindow.build(
        _rows_between(data, first - pd.Timedelta(days=history - 1), pd.Timestamp(AS_OF)),
        end=pd.Timestamp(AS_OF),
        start=first - pd.Timedelta(days=history - 1),
    )
    subsets = 0
    for k in range(46):
        as_of = first + pd.Timedelta(days=k)
        own = grid_from_frames(_rows_between(data, as_of - pd.Timedelta(days=history - 1), as_of))
        cut = window.day(as_of, history)
        assert_same_grid(cut, own)
        subsets += cut.n_series < len(window.product_id)
    assert subsets > 0  # some days lack series the window holds


def test_window_grid_is_read_only_and_refuses_days_outside_it():
    data = make_input([Series(1, [1, 2, 3, 4])])
    window = GridWindow.build(data, end=pd.Timestamp(AS_OF))
    grid = window.day(pd.Timestamp(AS_OF))

    with pytest.raises(ValueError, match="read-only"):
        grid.units[0, 0] = 9
    with pytest.raises(ValueError, match="outside the grid window"):
        window.day(pd.Timestamp(AS_OF) + pd.Timedelta(days=1))


def test_a_grid_starts_at_most_grid_max_days_back():
    units = np.ones(GRID_MAX_DAYS + 30)
    units[:20] = 0  # the first sale and older stock fall outside the grid's reach
    grid = build_grid(make_input([Series(1, units)]))

    assert grid.n_days == GRID_MAX_DAYS
    assert grid.first_sale.tolist() == [0]
    window = GridWindow.build(make_input([Series(1, units)]), end=pd.Timestamp(AS_OF))
    with pytest.raises(ValueError, match="lacks the history"):
        window.day(pd.Timestamp(AS_OF), history_days=GRID_MAX_DAYS + 1)


def test_location_quantiles_fall_back_to_all_locations_for_small_ones():
    big = [Series(i, [i] * 10) for i in range(1, 11)]
    small = [Series(50, [7] * 3, location_id=2)]
    grid = build_grid(make_input(big + small))
    values = grid.units
    mask = values > 0

    q99, q50 = grid.location_quantiles(values, mask, (0.99, 0.5), min_n=20)

    assert q50[0] == np.quantile(values[:10][mask[:10]], 0.5)
    assert q50[-1] == np.quantile(values[mask], 0.5)  # 3 values at the small store: pooled
    assert q99[0] == grid.location_quantile(values, mask, 0.99, 20)[0]
    assert np.isnan(grid.location_quantile(values, mask, 0.5, min_n=10_000)).all()
