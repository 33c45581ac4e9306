"""The benign-correction law: the Katz size family and the two-groups fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from anomalies.detectors import benign_law
from anomalies.detectors.grid import build_grid
from tests.anomalies.detectors.builders import Series, make_input, poisson_units
from tests.anomalies.detectors.test_inventory_discrepancy import HISTORY_DAYS, reconciled


@pytest.mark.parametrize(
    ("mean", "alpha", "law"),
    [
        (0.4, -1.0, stats.binom(1, 0.4)),
        (1.2, -0.25, stats.binom(4, 0.3)),
        (2.5, 0.0, stats.poisson(2.5)),
        (2.5, 0.5, stats.nbinom(2.0, 2.0 / (2.0 + 2.5))),
    ],
)
def test_katz_family_is_binomial_poisson_or_negative_binomial_by_its_dispersion(mean, alpha, law):
    y = np.arange(0, 12, dtype=float)

    np.testing.assert_allclose(benign_law.katz_pmf(y, mean, alpha), law.pmf(y), atol=1e-12)
    np.testing.assert_allclose(benign_law.katz_at_least(y, mean, alpha), law.sf(y - 1), atol=1e-12)


def _store(*, write_off_rate: float, volume_scaled: bool, seed: int, n_items: int = 60):
    """``n_items`` items at one store, 3 units/day, book 40-240 units; benign corrections on
    ~1/60 days: +/-(1..2) units, or with ``volume_scaled`` 1 + Poisson(0.3 sqrt(book)); real
    write-offs of 3 .. book/2 units at ``write_off_rate``. Returns the series and the
    benign/write-off labels {(item, column): kind}."""
    rng = np.random.default_rng(seed)
    out, labels = [], {}
    for item in range(1, n_items + 1):
        units = poisson_units(3, HISTORY_DAYS, seed=seed * 1000 + item)
        start = int(rng.integers(40, 240)) + 3 * HISTORY_DAYS
        corrections = {}
        for col in range(1, HISTORY_DAYS - 1):
            book = start - int(units[1 : col + 1].sum())
            roll = rng.random()
            if roll < 1 / 60:
                size = 1 + rng.poisson(0.3 * np.sqrt(book)) if volume_scaled else rng.integers(1, 3)
                corrections[col] = int(rng.choice([-1, 1]) * size)
                labels[item, col] = "benign"
            elif roll < 1 / 60 + write_off_rate:
                corrections[col] = -int(rng.integers(3, max(4, book // 2)))
                labels[item, col] = "write_off"
        out.append(Series(item, units, on_hand=reconciled(units, start, corrections)))
    return out, labels


def test_past_write_offs_do_not_widen_the_law_of_routine_corrections():
    # A tenth of the history's unexplained moves are real write-offs of 3 .. book/2 units;
    # routine corrections are 1-2 units. The write-offs are the other group of the mixture:
    # a new 3-unit loss stays improbable, a 2-unit correction stays ordinary.
    items, labels = _store(write_off_rate=1 / 600, volume_scaled=False, seed=3)
    law = benign_law.fit_benign_law(build_grid(make_input(items)))
    kinds = list(labels.values())
    assert 0.05 < kinds.count("write_off") / len(kinds) < 0.2

    rows, volume = np.array([0, 0]), np.array([100.0, 100.0])
    p = law.p_at_least(rows, np.array([3.0, 2.0]), volume)

    assert law.alpha[0] < -0.5  # less spread than Poisson: a binomial law
    # Given a routine correction: 3 units or more is rarer than 1 in 500, 2 or more about
    # one in two (the history's sizes, 1 or 2 units).
    assert p[0] / law.rate[0] < 2e-3
    assert p[1] / law.rate[0] > 0.3
    assert 0.8 < law.benign_share[0] < 1.0


def test_volume_scaled_routine_corrections_are_learned_whole():
    # Every unexplained move is benign and grows with the stock held: the law recovers the
    # volume exponent and the spread, and the history's own corrections are no more
    # improbable than their p-values say.
    items, _ = _store(write_off_rate=0.0, volume_scaled=True, seed=4, n_items=120)
    grid = build_grid(make_input(items))
    law = benign_law.fit_benign_law(grid)

    assert law.beta[0] == pytest.approx(0.5, abs=0.2)
    assert abs(law.alpha[0]) < 0.3
    assert law.benign_share[0] > 0.85
    r = benign_law.residuals(grid)
    series, cols = np.nonzero(np.nan_to_num(r) != 0)
    p = law.p_at_least(series, np.abs(r[series, cols]), grid.on_hand[series, cols - 1])
    # A p-value below 1e-3 needs a correction rarer than one benign event in ~10 (rate ~1/60).
    assert (p < 1e-3).mean() < 0.1
    assert (p < 1e-5).sum() == 0
