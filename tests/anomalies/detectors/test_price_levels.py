"""Learned price points and the null model of price deviations (pure helpers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors.price_levels import (
    chain_hull,
    fit_deviation_pool,
    fit_levels,
    null_p_value,
    price_points_from_sales,
    quick_hull,
    shrink_sigma,
)

NAN = np.nan
KW = {"gap": 0.03, "min_support": 2, "persist_days": 3}


def levels(*rows, regular=1.0, group=None):
    z = np.log(np.array(rows, dtype=float))
    log_reg = np.full(len(rows), np.log(regular))
    fit = fit_levels(z, log_reg, **KW, group=group)
    return np.round(np.exp(fit.lo), 4), np.round(np.exp(fit.hi), 4), fit


def test_price_back_in_two_separate_runs_is_a_level():
    lo, hi, _ = levels([1.0, 0.8, 1.0, 1.0, 0.8, 1.0])
    assert (lo[0], hi[0]) == (0.8, 1.0)


def test_two_days_in_a_row_are_one_run_not_a_level():
    lo, hi, fit = levels([1.0, 0.5, 0.5, 1.0, 1.0, 1.0])
    assert (lo[0], hi[0]) == (1.0, 1.0)
    assert fit.hist_d[0, 1] == pytest.approx(np.log(2.0))  # each of those days deviates


def test_price_held_persist_days_is_a_level():
    lo, _, _ = levels([1.0, 1.0, 0.5, 0.5, 0.5, NAN])
    assert lo[0] == 0.5


def test_store_shares_the_levels_recurring_at_other_stores_of_the_item_only():
    recurring = [1.0, 0.8, 1.0, 0.8, 1.0, 1.0]
    held = [1.0, 1.0, 3.0, 3.0, 3.0, 1.0]  # a level at its store, not a price point elsewhere
    quiet = [1.0, NAN, NAN, NAN, NAN, NAN]
    lo, hi, _ = levels(recurring, held, quiet, group=np.array([0, 0, 0]))
    assert (lo[2], hi[2]) == (0.8, 1.0)
    assert hi[1] == 3.0


def test_no_regular_price_and_no_recurring_price_is_unknown():
    z = np.log(np.array([[2.0, NAN, NAN]]))
    fit = fit_levels(z, np.array([NAN]), **KW)
    assert np.isnan(fit.lo[0])


def test_quick_hull_lies_inside_the_fitted_hull():
    rng = np.random.default_rng(5)
    z = np.log(rng.choice([0.8, 1.0, 1.3], size=(200, 40)) * np.exp(rng.normal(0, 0.01, (200, 40))))
    z[rng.random(z.shape) < 0.3] = NAN
    log_reg = np.zeros(200)
    q_lo, q_hi = quick_hull(z, log_reg, gap=0.03, min_days=3)
    fit = fit_levels(z, log_reg, **KW)
    assert (q_lo >= fit.lo - 1e-12).all() and (q_hi <= fit.hi + 1e-12).all()


def test_null_p_value_is_one_inside_and_follows_the_two_components():
    d = np.array([0.0, 0.05, 0.5])
    p = null_p_value(d, np.full(3, 0.02), np.full(3, 0.01), np.full(3, 0.1))
    assert p[0] == 1.0
    from scipy.stats import norm

    assert p[2] == pytest.approx(0.99 * 2 * norm.sf(25.0) + 0.01 * np.exp(-5.0))
    assert p[1] > p[2]


def test_deviation_pool_without_excesses_keeps_its_priors_and_ignores_mis_keys():
    hist_d = np.zeros((10, 20))
    hist_d[0, 0] = np.log(10.0)  # a x10 mis-key is not a benign deviation
    eps, nu = fit_deviation_pool(
        hist_d,
        np.full(10, 0.05),
        np.zeros(10, dtype=int),
        1,
        eps_prior=0.01,
        nu_prior=0.1,
        prior_days=200,
        prior_excesses=5,
        max_d=np.log(5.0),
    )
    assert nu[0] == pytest.approx(0.1, rel=0.035)  # the prior's scale, on NU_GRID's steps
    assert eps[0] < 0.01  # 200 clean days pull the rate below its prior


def test_deviation_pool_learns_frequent_benign_deviations():
    rng = np.random.default_rng(2)
    hist_d = np.where(rng.random((100, 100)) < 0.1, 0.05 + rng.exponential(0.2, (100, 100)), 0)
    eps, nu = fit_deviation_pool(
        hist_d,
        np.full(100, 0.05),
        np.zeros(100, dtype=int),
        1,
        eps_prior=0.01,
        nu_prior=0.1,
        prior_days=200,
        prior_excesses=5,
    )
    assert nu[0] == pytest.approx(0.2, rel=0.15)
    assert eps[0] == pytest.approx(0.1 * np.exp(0.05 / 0.2), rel=0.2)


def test_a_store_with_few_benign_deviations_takes_the_chains_scale():
    # Store 0: wide benign deviations on many days (scale 0.4). Store 1: three small
    # excesses just under their bounds, whose truncated likelihood is nearly flat in the
    # scale (its maximum runs to the end of the grid). Store 1 keeps a scale near the chain's,
    # not a runaway one, and the chain's is what the wide store taught.
    rng = np.random.default_rng(5)
    wide = np.where(rng.random((50, 100)) < 0.1, 0.05 + rng.exponential(0.4, (50, 100)), 0)
    few = np.zeros((50, 100))
    few[0, :3] = 0.05 + np.array([0.01, 0.015, 0.02])
    hist_d = np.vstack([wide, few])
    sigma = np.full(100, 0.01)
    eps, nu = fit_deviation_pool(
        hist_d,
        np.full(100, 0.05),
        np.repeat([0, 1], 50),
        2,
        eps_prior=0.01,
        nu_prior=0.1,
        prior_days=200,
        prior_excesses=20,
        max_d=np.log(5.0),
        sigma=sigma,
        trim_p=1e-3,
    )

    assert nu[0] == pytest.approx(0.4, rel=0.25)
    assert 0.2 < nu[1] < 0.5  # near the chain's (0.1 is the constant prior, 5 the grid's end)
    assert eps[1] < eps[0]


def test_short_history_takes_mostly_the_pool_noise():
    sigma = shrink_sigma(np.array([0.0, 0.0]), np.array([2, 200]), np.array([0.1, 0.1]), 10)
    assert sigma[0] > 0.09 and sigma[1] < 0.03


def _points(rows):
    return pd.DataFrame(
        {
            "product_id": np.array([r[0] for r in rows], dtype="int64"),
            "date": pd.to_datetime([r[1] for r in rows]),
            "price": np.array([r[2] for r in rows], dtype=float),
        }
    )


def test_chain_hull_counts_separate_runs_per_price_across_the_chain():
    points = _points(
        [
            (7, "2026-01-01", 1.0),
            (7, "2026-01-01", 2.0),  # several prices a day do not split a price's runs
            (7, "2026-01-02", 2.0),
            (7, "2026-01-03", 1.0),
            (7, "2026-01-05", 1.0),
            (7, "2026-01-03", 2.0),
            (9, "2026-01-01", 3.0),
            (9, "2026-01-09", 3.0),
        ]
    )
    lo, hi = chain_hull(
        points,
        np.array([9, 7, 8]),
        start=np.datetime64("2026-01-01", "ns"),
        end=np.datetime64("2026-01-31", "ns"),
        gap=0.03,
        min_runs=3,
    )
    # 7: 1.00 in three runs (1, 3, 5) is a level; 2.00 on days 1-3 is one run, not one.
    assert np.allclose(np.exp(lo[1]), 1.0) and np.allclose(np.exp(hi[1]), 1.0)
    assert np.isnan(lo[0]) and np.isnan(lo[2])  # 9: two runs only; 8: no points


def test_chain_hull_ignores_days_outside_the_window():
    points = _points([(1, "2026-01-01", 1.0), (1, "2026-01-03", 1.0), (1, "2026-01-05", 1.0)])
    lo, _ = chain_hull(
        points,
        np.array([1]),
        start=np.datetime64("2026-01-02", "ns"),
        end=np.datetime64("2026-01-31", "ns"),
        gap=0.03,
        min_runs=3,
    )
    assert np.isnan(lo[0])


def test_price_points_from_sales_leave_out_promotion_days_and_round_to_the_penny():
    sales = pd.DataFrame(
        {
            "product_id": np.array([1, 1, 1, 2], dtype="int64"),
            "location_id": np.array([1, 2, 1, 1], dtype="int64"),
            "date": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-02"]),
            "units_sold": np.array([3, 2, 1, 0], dtype="int64"),
            "units_returned": np.zeros(4, dtype="int64"),
            "unit_price": [2.504, 1.75, 2.5, 9.0],
        }
    )
    promotions = pd.DataFrame(
        {
            "product_id": np.array([1], dtype="int64"),
            "location_id": pd.array([2], dtype="Int64"),
            "start_date": pd.to_datetime(["2026-01-01"]),
            "end_date": pd.to_datetime(["2026-01-01"]),
            "discount_pct": [30.0],
        }
    )
    points = price_points_from_sales(sales, promotions)

    assert points.to_dict("list") == {
        "product_id": [1, 1],
        "date": [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-02")],
        "price": [2.5, 2.5],
    }


@pytest.mark.parametrize("n_past", [120, 2000])
def test_trimmed_pool_keeps_past_anomalies_out_of_the_benign_tail(n_past):
    # 300 items x 365 days of price noise (sd 1 %) with past anomalies 40-70 % off: left in,
    # they teach a benign tail under which a new 50 %-off price looks ordinary. 2,000 of them
    # (2 % of the days) would mask one another if the trimming started from their fit.
    rng = np.random.default_rng(5)
    sigma = np.full(300, 0.01)
    hist_d = np.abs(rng.normal(0.0, 0.01, (300, 365)))
    cells = rng.choice(hist_d.size, n_past, replace=False)
    hist_d.flat[cells] = -np.log(rng.uniform(0.3, 0.6, n_past))
    kwargs = dict(
        eps_prior=0.01, nu_prior=0.1, prior_days=200, prior_excesses=20, max_d=np.log(5.0)
    )
    loc = np.zeros(300, dtype=int)
    eps_raw, nu_raw = fit_deviation_pool(hist_d, 3 * sigma, loc, 1, **kwargs)
    eps, nu = fit_deviation_pool(hist_d, 3 * sigma, loc, 1, sigma=sigma, trim_p=1e-3, **kwargs)
    half_off = np.array([np.log(2.0)])
    p_raw = null_p_value(half_off, sigma[:1], eps_raw, nu_raw)[0]
    p_trim = null_p_value(half_off, sigma[:1], eps, nu)[0]
    assert p_raw > 1e-4  # the untrimmed tail: 50 % off is not rare enough for BH at m = 300
    assert p_trim < 1e-8
    assert nu[0] < nu_raw[0] / 3


def test_trimmed_pool_is_consistent_when_every_deviation_is_benign():
    # Frequent benign deviations (10 % of days, exponential scale 0.2): trimming only the far
    # tail, with the truncation in the likelihood, must not shrink the scale it learns.
    rng = np.random.default_rng(2)
    hist_d = np.where(rng.random((100, 100)) < 0.1, 0.05 + rng.exponential(0.2, (100, 100)), 0)
    eps, nu = fit_deviation_pool(
        hist_d,
        np.full(100, 0.05),
        np.zeros(100, dtype=int),
        1,
        eps_prior=0.01,
        nu_prior=0.1,
        prior_days=200,
        prior_excesses=5,
        sigma=np.full(100, 0.05 / 3),
        trim_p=1e-3,
    )
    assert nu[0] == pytest.approx(0.2, rel=0.15)
    assert eps[0] == pytest.approx(0.1 * np.exp(0.05 / 0.2), rel=0.2)
