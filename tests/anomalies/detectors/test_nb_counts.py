"""Negative-binomial helpers: robust empirical-Bayes dispersion and window tails."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from anomalies.detectors.nb_counts import eb_dispersion, nb_sum_upper_tail


def nb_days(mean: float, size: float, shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(rng.gamma(size, mean / size, shape)).astype(float)


def fit(units: np.ndarray, mean: float, pool: np.ndarray | None = None):
    n_series = units.shape[0]
    pool = np.zeros(n_series, dtype=int) if pool is None else pool
    mu = np.full(units.shape, mean)
    return eb_dispersion(
        units, mu, np.ones(units.shape, bool), np.full(n_series, 1e9), pool, pool.max() + 1, 0.3
    )


def test_one_day_tail_is_the_exact_negative_binomial():
    mean, alpha = 4.0, 0.5
    size = 1 / alpha
    got = nb_sum_upper_tail(np.array([12.0]), np.array([mean]), np.array([mean + alpha * mean**2]))
    assert got[0] == pytest.approx(stats.nbinom.sf(11, size, size / (size + mean)))


def test_dispersion_keeps_heavy_and_light_items_of_one_pool_apart():
    heavy = nb_days(3.0, 0.7, (40, 112), seed=1)
    light = nb_days(3.0, 10.0, (40, 112), seed=2)

    alpha, _, trimmed, sd = fit(np.vstack([heavy, light]), 3.0)

    assert 1.0 < np.median(alpha[:40]) < 2.0  # true 1.43
    assert np.median(alpha[40:]) < 0.3  # true 0.1
    assert (sd > 0).all() and trimmed.sum() <= 2


def test_past_spike_is_trimmed_from_the_dispersion():
    units = nb_days(20.0, 10.0, (30, 112), seed=3)
    spiked = units.copy()
    spiked[0, 50] = 200  # a 10x day two months ago

    clean, _, _, _ = fit(units, 20.0)
    alpha, _, trimmed, _ = fit(spiked, 20.0)

    assert trimmed[0] == 1 and trimmed[1:].sum() == 0
    assert alpha[0] == pytest.approx(clean[0], rel=0.2)
