"""The demand model every detector builds on (``anomalies.detectors.demand_model``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors.demand_model import DemandModel, WindowBand, as_of_baseline, fit_demand
from anomalies.detectors.grid import build_grid, usable_days
from tests.anomalies.detectors.builders import (
    AS_OF,
    Series,
    day,
    make_input,
    poisson_units,
)


def test_demand_model_recovers_weekday_pattern_and_rate():
    rng = np.random.default_rng(3)
    pattern = np.array([0.7, 0.8, 0.9, 1.0, 1.2, 1.6, 0.8])
    n_days = 112
    dates = pd.date_range(end=pd.Timestamp(AS_OF), periods=n_days)
    factor = pattern[dates.day_of_week] / pattern.mean()
    series = [Series(i, rng.poisson(6.0 * factor)) for i in range(1, 41)]
    grid = build_grid(make_input(series))

    model = fit_demand(grid, usable_days(grid), grid.last, 56, 3.0)

    np.testing.assert_allclose(model.rate, 6.0, rtol=0.12)
    location_shape = model.weekday_factor.mean(axis=0)
    np.testing.assert_allclose(
        location_shape / location_shape.mean(), pattern / pattern.mean(), atol=0.08
    )
    assert (model.dispersion <= 0.2).all()  # Poisson data: little overdispersion


def test_demand_model_is_not_inflated_by_one_bulk_order():
    units = poisson_units(4.0, 60, seed=5)
    units[30] = 500
    grid = build_grid(make_input([Series(1, units)]))

    model = fit_demand(grid, usable_days(grid), grid.last, 56, 3.0)

    assert model.rate[0] < 5.0
    assert model.max_selling_units[0] == 500


@pytest.mark.parametrize("end", [0, 3, 9, 29])
def test_window_band_holds_each_series_window(end):
    values = np.arange(60.0).reshape(2, 30)
    weekday = np.arange(30) % 7
    per_weekday = np.array([[10.0, 11, 12, 13, 14, 15, 16], [20, 21, 22, 23, 24, 25, 26]])
    for band_end in (end, np.array([end, end])):
        band = WindowBand(band_end, 7, 30)
        taken = band.take(values)
        first = max(min(end - 6, 23), 0)
        np.testing.assert_array_equal(taken, values[:, first : first + 7])
        np.testing.assert_array_equal(
            band.weekday_values(per_weekday, weekday), per_weekday[:, weekday[first : first + 7]]
        )


def test_fit_demand_gives_the_same_model_for_one_end_column_or_one_per_series():
    series = [Series(i, poisson_units(2.0 + i, 90, seed=i)) for i in range(1, 7)]
    grid = build_grid(make_input(series, promotions=[(2, None, day(20), day(10), 30.0)]))
    usable = usable_days(grid)

    one = fit_demand(grid, usable, grid.last - 1, 56, 3.0)
    each = fit_demand(grid, usable, np.full(grid.n_series, grid.last - 1), 56, 3.0)

    for f in dataclasses.fields(DemandModel):
        np.testing.assert_array_equal(getattr(one, f.name), getattr(each, f.name), f.name)


def test_expected_at_cells_equals_expected_on_the_grid():
    series = [Series(i, poisson_units(3.0, 40, seed=i)) for i in range(1, 5)]
    data = make_input(
        series,
        promotions=[(1, None, day(9), day(3), 20.0)],
        calendar=[(day(5), None, "Closed", True)],
    )
    grid = build_grid(data)
    model = as_of_baseline(grid, 28, 3.0)
    rows, cols = np.nonzero(np.ones(grid.units.shape, dtype=bool))

    full = model.expected(grid)
    np.testing.assert_array_equal(model.expected_at(grid, rows, cols), full[rows, cols])
    np.testing.assert_array_equal(model.expected(grid, grid.last)[:, 0], full[:, -1])
    assert as_of_baseline(grid, 28, 3.0) is model  # shared by the demand detectors
