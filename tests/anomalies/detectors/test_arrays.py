"""Array helpers (``anomalies.detectors.arrays``)."""

from __future__ import annotations

import numpy as np

from anomalies.detectors.arrays import (
    ffill,
    longest_run,
    row_nanquantile,
    row_nanquantiles,
    weekday_sums,
    where_else_nan,
)


def test_ffill_and_row_quantiles_match_numpy():
    values = np.array([[np.nan, 1.0, np.nan, 4.0, 2.0], [np.nan] * 5, [5.0, 1.0, 3.0, 2.0, 4.0]])

    filled = ffill(values)
    assert np.isnan(filled[0, 0]) and filled[0, 2] == 1.0 and np.isnan(filled[1]).all()
    for q in (0.0, 0.25, 0.5, 0.9, 1.0):
        expected = [np.nanquantile(values[0], q), np.nan, np.quantile(values[2], q)]
        np.testing.assert_allclose(row_nanquantile(values, q), expected)


def test_where_else_nan_and_weekday_sums():
    values = np.array([[1.0, -2.0, 0.0], [4.0, 5.0, 6.0]])
    mask = np.array([[True, False, True], [False, False, True]])

    np.testing.assert_array_equal(where_else_nan(values, mask), np.where(mask, values, np.nan))
    weekday = np.array([5, 6, 0, 1, 2, 3, 4, 5, 6])  # Saturday first
    grid_values = np.arange(18.0).reshape(2, 9)
    onehot = (weekday[:, None] == np.arange(7)).astype(float)
    np.testing.assert_array_equal(weekday_sums(grid_values, weekday), grid_values @ onehot)


def test_row_nanquantiles_share_one_sort_and_match_one_at_a_time():
    rng = np.random.default_rng(1)
    values = np.where(rng.random((30, 17)) < 0.4, np.nan, rng.poisson(3.0, (30, 17)))

    together = row_nanquantiles(values, (0.5, 1.0, 0.1))
    for q, result in zip((0.5, 1.0, 0.1), together, strict=True):
        np.testing.assert_array_equal(result, row_nanquantile(values, q))


def test_longest_run_gives_each_rows_first_longest_run():
    mask = np.array(
        [
            [1, 1, 0, 1, 1, 1, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 1, 1, 0, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ],
        dtype=bool,
    )

    start, length = longest_run(mask)

    assert start.tolist() == [3, 0, 0, 0]
    assert length.tolist() == [3, 0, 2, 7]
