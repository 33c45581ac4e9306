"""Learned price points and the null model of price deviations (pure helpers)."""

from __future__ import annotations

import numpy as np
import pytest

from anomalies.detectors.price_levels import (
    fit_deviation_pool,
    fit_levels,
    null_p_value,
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
    assert nu[0] == pytest.approx(0.1)
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


def test_short_history_takes_mostly_the_pool_noise():
    sigma = shrink_sigma(np.array([0.0, 0.0]), np.array([2, 200]), np.array([0.1, 0.1]), 10)
    assert sigma[0] > 0.09 and sigma[1] < 0.03
