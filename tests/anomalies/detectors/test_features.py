"""The shared grid and demand model every detector builds on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomalies.detectors import REGISTRY, features
from anomalies.detectors.base import FINDING_COLUMNS
from tests.anomalies.detectors.builders import AS_OF, Series, day, make_input, poisson_units


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
