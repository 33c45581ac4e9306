"""The shared grid and demand model every detector builds on."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomalies.detectors import REGISTRY, features
from anomalies.detectors.base import FINDING_COLUMNS, empty_findings, make_findings
from tests.anomalies.detectors.builders import (
    AS_OF,
    Series,
    assert_same_grid,
    day,
    make_input,
    poisson_units,
)


def test_grid_is_dense_with_zeros_for_missing_sales_rows():
    data = make_input([Series(1, [3, 0, 0, 5]), Series(2, [0, 2, 0, 0], location_id=2)])
    grid = features.build_grid(data)

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
    grid = features.build_grid(data)

    assert grid.location_id.tolist() == [1, 1, 2]
    assert grid.product_id.tolist() == [1, 2, 3]
    assert grid.loc_starts.tolist() == [0, 2]


def test_grid_ignores_rows_after_as_of():
    data = make_input([Series(1, [1, 2, 3])])
    late = data.sales.iloc[[0]].assign(date=pd.Timestamp(AS_OF) + pd.Timedelta(days=1))
    sales = pd.concat([data.sales, late], ignore_index=True)
    grid = features._build_grid(
        type(data)(as_of=AS_OF, sales=sales, products=data.products, locations=data.locations)
    )

    assert grid.dates[-1] == pd.Timestamp(AS_OF)
    assert grid.units.sum() == 6


def test_stock_is_forward_filled_between_records():
    data = make_input([Series(1, [1, 1, 1, 1], on_hand=[9, 8, 7, 6])])
    stock = data.stock.drop(index=[1, 2])  # only the first and last day were counted
    grid = features._build_grid(
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
    grid = features.build_grid(data)

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
    grid = features.build_grid(data)

    assert grid.closed[:, 3].all()
    assert grid.calendar_closed[:, 3].all()
    assert grid.event[:, 1].tolist() == [False, True]


def test_store_wide_zero_sales_day_counts_as_closed_only_for_a_busy_store():
    busy = [Series(i, [2, 2, 0, 2]) for i in range(1, 25)]
    quiet = [Series(100 + i, [2, 2, 0, 2], location_id=2) for i in range(3)]
    grid = features.build_grid(make_input(busy + quiet))

    assert grid.closed[:24, 2].all()
    assert not grid.closed[24:, 2].any()
    assert grid.location_silent[:, 2].all()
    assert not grid.calendar_closed.any()


def test_ffill_and_row_quantiles_match_numpy():
    values = np.array([[np.nan, 1.0, np.nan, 4.0, 2.0], [np.nan] * 5, [5.0, 1.0, 3.0, 2.0, 4.0]])

    filled = features.ffill(values)
    assert np.isnan(filled[0, 0]) and filled[0, 2] == 1.0 and np.isnan(filled[1]).all()
    for q in (0.0, 0.25, 0.5, 0.9, 1.0):
        expected = [np.nanquantile(values[0], q), np.nan, np.quantile(values[2], q)]
        np.testing.assert_allclose(features.row_nanquantile(values, q), expected)


def test_demand_model_recovers_weekday_pattern_and_rate():
    rng = np.random.default_rng(3)
    pattern = np.array([0.7, 0.8, 0.9, 1.0, 1.2, 1.6, 0.8])
    n_days = 112
    dates = pd.date_range(end=pd.Timestamp(AS_OF), periods=n_days)
    factor = pattern[dates.day_of_week] / pattern.mean()
    series = [Series(i, rng.poisson(6.0 * factor)) for i in range(1, 41)]
    grid = features.build_grid(make_input(series))

    model = features.fit_demand(grid, features.usable_days(grid), grid.last, 56, 3.0)

    np.testing.assert_allclose(model.rate, 6.0, rtol=0.12)
    location_shape = model.weekday_factor.mean(axis=0)
    np.testing.assert_allclose(
        location_shape / location_shape.mean(), pattern / pattern.mean(), atol=0.08
    )
    assert (model.dispersion <= 0.2).all()  # Poisson data: little overdispersion


def test_demand_model_is_not_inflated_by_one_bulk_order():
    units = poisson_units(4.0, 60, seed=5)
    units[30] = 500
    grid = features.build_grid(make_input([Series(1, units)]))

    model = features.fit_demand(grid, features.usable_days(grid), grid.last, 56, 3.0)

    assert model.rate[0] < 5.0
    assert model.max_selling_units[0] == 500


def test_grid_is_built_once_per_input():
    data = make_input([Series(1, [1, 2, 3])])

    assert features.build_grid(data) is features.build_grid(data)
    assert features.build_grid(make_input([Series(1, [1, 2, 3])])) is not features.build_grid(data)


def test_formatting_helpers():
    assert features.fmt_count(80995) == "80,995 units"
    assert features.fmt_count(1) == "1 unit"
    assert features.fmt_count(4.25) == "4.2 units"
    assert features.fmt_date(pd.Timestamp("2024-03-03")) == "3 Mar"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_items=st.integers(1, 8),
    with_promo=st.booleans(),
    closed_today=st.booleans(),
)
def test_every_detector_returns_contract_findings_within_the_window(
    seed, n_items, with_promo, closed_today
):
    rng = np.random.default_rng(seed)
    series = []
    for i in range(1, n_items + 1):
        units = rng.poisson(rng.uniform(0.1, 20.0), 50)
        units[rng.integers(0, 50, 3)] *= rng.integers(0, 30)
        realized = np.where(rng.random(50) < 0.05, 25.0, 2.5)
        on_hand = rng.integers(-2, 80, 50)
        series.append(Series(i, units, realized=realized, on_hand=on_hand, location_id=i % 2 + 1))
    data = make_input(
        series,
        promotions=[(1, None, day(5), day(0), 30.0)] if with_promo else [],
        calendar=[(day(0), None, "Closed", True)] if closed_today else [],
        receipts=[(1, 2, day(1), 24)],
    )
    for spec in REGISTRY.values():
        found = spec.func(data, dict(spec.default_params))
        assert list(found.columns) == FINDING_COLUMNS
        assert {str(found[c].dtype) for c in ("start_date", "end_date")} == {"datetime64[ns]"}
        assert str(found["product_id"].dtype) == "Int64"
        assert str(found["location_id"].dtype) == "int64"
        assert (found.start_date <= found.end_date).all()
        assert (found.end_date == pd.Timestamp(AS_OF)).all()
        assert found.severity.isin(["info", "warning", "critical"]).all()
        assert found.explanation.map(lambda text: isinstance(text, str) and "nan" not in text).all()
        for details in found.details:
            json.dumps(details, allow_nan=False)


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
    window = features.GridWindow.build(
        _rows_between(data, first - pd.Timedelta(days=history - 1), pd.Timestamp(AS_OF)),
        end=pd.Timestamp(AS_OF),
        start=first - pd.Timedelta(days=history - 1),
    )
    subsets = 0
    for k in range(46):
        as_of = first + pd.Timedelta(days=k)
        own = features._build_grid(
            _rows_between(data, as_of - pd.Timedelta(days=history - 1), as_of)
        )
        cut = window.day(as_of, history)
        assert_same_grid(cut, own)
        subsets += cut.n_series < len(window.product_id)
    assert subsets > 0  # some days lack series the window holds


def test_window_grid_is_read_only_and_refuses_days_outside_it():
    data = make_input([Series(1, [1, 2, 3, 4])])
    window = features.GridWindow.build(data, end=pd.Timestamp(AS_OF))
    grid = window.day(pd.Timestamp(AS_OF))

    with pytest.raises(ValueError, match="read-only"):
        grid.units[0, 0] = 9
    with pytest.raises(ValueError, match="outside the grid window"):
        window.day(pd.Timestamp(AS_OF) + pd.Timedelta(days=1))


def test_a_grid_starts_at_most_grid_max_days_back():
    units = np.ones(features.GRID_MAX_DAYS + 30)
    units[:20] = 0  # the first sale and older stock fall outside the grid's reach
    grid = features.build_grid(make_input([Series(1, units)]))

    assert grid.n_days == features.GRID_MAX_DAYS
    assert grid.first_sale.tolist() == [0]
    window = features.GridWindow.build(make_input([Series(1, units)]), end=pd.Timestamp(AS_OF))
    with pytest.raises(ValueError, match="lacks the history"):
        window.day(pd.Timestamp(AS_OF), history_days=features.GRID_MAX_DAYS + 1)


def test_series_index_numbers_rows_by_sorted_key_for_dense_and_sparse_ids():
    for product_ids in ([3, 1, 2, 1, 3], [3, 10**9, 2, 10**9, 3]):  # a table, a hash
        keys = (np.array([2, 1, 1, 1, 2]) << 32) | np.array(product_ids)
        index = features._SeriesIndex(keys)

        assert (index.keys == np.unique(keys)).all()
        assert (index.keys[index.rows] == keys).all()
        other = np.array([keys[0], (7 << 32) | 1, (1 << 32) | 5])
        row, found = index.lookup(other)
        assert found.tolist() == [True, False, False]
        assert index.keys[row[0]] == keys[0]


def test_where_else_nan_and_weekday_sums():
    values = np.array([[1.0, -2.0, 0.0], [4.0, 5.0, 6.0]])
    mask = np.array([[True, False, True], [False, False, True]])

    np.testing.assert_array_equal(
        features.where_else_nan(values, mask), np.where(mask, values, np.nan)
    )
    weekday = np.array([5, 6, 0, 1, 2, 3, 4, 5, 6])  # Saturday first
    grid_values = np.arange(18.0).reshape(2, 9)
    onehot = (weekday[:, None] == np.arange(7)).astype(float)
    np.testing.assert_array_equal(features.weekday_sums(grid_values, weekday), grid_values @ onehot)


def test_row_nanquantiles_share_one_sort_and_match_one_at_a_time():
    rng = np.random.default_rng(1)
    values = np.where(rng.random((30, 17)) < 0.4, np.nan, rng.poisson(3.0, (30, 17)))

    together = features.row_nanquantiles(values, (0.5, 1.0, 0.1))
    for q, result in zip((0.5, 1.0, 0.1), together, strict=True):
        np.testing.assert_array_equal(result, features.row_nanquantile(values, q))


@pytest.mark.parametrize("end", [0, 3, 9, 29])
def test_window_band_holds_each_series_window(end):
    values = np.arange(60.0).reshape(2, 30)
    weekday = np.arange(30) % 7
    per_weekday = np.array([[10.0, 11, 12, 13, 14, 15, 16], [20, 21, 22, 23, 24, 25, 26]])
    for band_end in (end, np.array([end, end])):
        band = features.WindowBand(band_end, 7, 30)
        taken = band.take(values)
        first = max(min(end - 6, 23), 0)
        np.testing.assert_array_equal(taken, values[:, first : first + 7])
        np.testing.assert_array_equal(
            band.weekday_values(per_weekday, weekday), per_weekday[:, weekday[first : first + 7]]
        )


def test_fit_demand_gives_the_same_model_for_one_end_column_or_one_per_series():
    series = [Series(i, poisson_units(2.0 + i, 90, seed=i)) for i in range(1, 7)]
    grid = features.build_grid(make_input(series, promotions=[(2, None, day(20), day(10), 30.0)]))
    usable = features.usable_days(grid)

    one = features.fit_demand(grid, usable, grid.last - 1, 56, 3.0)
    each = features.fit_demand(grid, usable, np.full(grid.n_series, grid.last - 1), 56, 3.0)

    for f in dataclasses.fields(features.DemandModel):
        np.testing.assert_array_equal(getattr(one, f.name), getattr(each, f.name), f.name)


def test_expected_at_cells_equals_expected_on_the_grid():
    series = [Series(i, poisson_units(3.0, 40, seed=i)) for i in range(1, 5)]
    data = make_input(
        series,
        promotions=[(1, None, day(9), day(3), 20.0)],
        calendar=[(day(5), None, "Closed", True)],
    )
    grid = features.build_grid(data)
    model = features.as_of_baseline(grid, 28, 3.0)
    rows, cols = np.nonzero(np.ones(grid.units.shape, dtype=bool))

    full = model.expected(grid)
    np.testing.assert_array_equal(model.expected_at(grid, rows, cols), full[rows, cols])
    np.testing.assert_array_equal(model.expected(grid, grid.last)[:, 0], full[:, -1])
    assert features.as_of_baseline(grid, 28, 3.0) is model  # shared by the demand detectors


def test_location_quantiles_fall_back_to_all_locations_for_small_ones():
    big = [Series(i, [i] * 10) for i in range(1, 11)]
    small = [Series(50, [7] * 3, location_id=2)]
    grid = features.build_grid(make_input(big + small))
    values = grid.units
    mask = values > 0

    q99, q50 = grid.location_quantiles(values, mask, (0.99, 0.5), min_n=20)

    assert q50[0] == np.quantile(values[:10][mask[:10]], 0.5)
    assert q50[-1] == np.quantile(values[mask], 0.5)  # 3 values at the small store: pooled
    assert q99[0] == grid.location_quantile(values, mask, 0.99, 20)[0]
    assert np.isnan(grid.location_quantile(values, mask, 0.5, min_n=10_000)).all()


def test_make_findings_repeats_scalars_and_keeps_objects():
    found = make_findings(
        {
            "anomaly_type": "ghost_stock",
            "product_id": np.array([1, 2]),
            "location_id": [3, 3],
            "start_date": pd.Timestamp(AS_OF),
            "end_date": [pd.Timestamp(AS_OF)] * 2,
            "severity": np.array(["warning", "critical"]),
            "score": 1.5,
            "expected_value": [1, 2],
            "actual_value": np.zeros(2),
            "value_at_risk": [0.5, None],
            "explanation": ["a", "b"],
            "details": [{"k": [1, 2]}, {}],
        }
    )

    assert found["anomaly_type"].tolist() == ["ghost_stock"] * 2
    assert found["score"].tolist() == [1.5, 1.5]
    assert found["details"].tolist() == [{"k": [1, 2]}, {}]
    assert np.isnan(found["value_at_risk"][1])
    assert {c: str(t) for c, t in found.dtypes.items()} == {
        c: str(t) for c, t in empty_findings().dtypes.items()
    }
    assert str(found["product_id"].dtype) == "Int64" and found["severity"].dtype == object
    assert type(found["severity"][0]) is str
