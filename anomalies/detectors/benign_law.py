"""The benign-correction law: how often, and by how much, a series' book stock moves without
a recorded reason when nothing is wrong (routine count corrections), learned from history.

Reconciliation residual of series ``s`` on day ``d`` (perpetual-inventory identity):

    R[s, d] = on_hand[d] - on_hand[d-1] - receipts[d] + units_sold[d] - returned[d]
              - adjustments[d]

The law (``fit_benign_law``), fitted on every reconciled day before the day under test
(open days of a store that recorded sales; a store-wide silent day is a feed outage):

* **Frequency.** Benign events (``R != 0``) arrive at rate ``lambda_s`` per day. Gamma-Poisson
  empirical Bayes: the pool (location x velocity band) rate ``lambda_p`` is the prior mean, its
  strength ``k_p`` (prior days) comes from the between-series spread of the rates in the pool
  (method of moments), and ``lambda_s = (n_s + k_p lambda_p) / (T_s + k_p)`` is the posterior
  mean, which is also the predictive probability of an event tomorrow.
* **Size.** Given an event, ``|R| - 1 ~ NB2(mean m_s(v), dispersion alpha_L)`` with
  ``v`` = book stock the day before, ``m(v) = exp(theta_L + beta_L log(1 + v))`` per location
  (size grows with volume when the data says so, ``beta`` is learned), fitted by a robust
  Poisson regression (IRLS, trimming events in the law's own extreme tail: real
  write-offs and duplicate postings in the history do not shape it), and ``alpha_L`` by
  moments on the same weights. A location with fewer than ``MIN_POOL_EVENTS`` events uses the
  pool of all
  locations, and with fewer still a weak default prior. Per series the mean is scaled by a
  credibility factor ``g_s = (sum y + SIZE_PRIOR_UNITS) / (sum m + SIZE_PRIOR_UNITS)``.
* ``p_tail = lambda_s x P(|R| >= r | event)``: the chance of a benign residual at least this
  large on that day (exact under the law; one event a day at most), and
  ``p_equal = lambda_s x P(|R| = q | event)`` for a residual equal to a quantity ``q``.

Duplicate receipt postings (``duplicate_receipts``): a positive residual equal to the quantity
of a receipt of the same series within ``DUPLICATE_WINDOW_DAYS`` before (or on) that day.

References: Cameron & Trivedi, *Regression Analysis of Count Data* (NB2, moment estimators);
Cantoni & Ronchetti 2001, "Robust inference for generalized linear models", JASA (robust
quasi-likelihood; here as hard trimming of the far tail); Buhlmann credibility and
Gamma-Poisson empirical Bayes (Casella 1985, "An introduction to empirical Bayes data
analysis").

Pure numpy (scipy imported inside functions); no Django imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .demand_model import DISPERSION_BAND_EDGES
from .grid import Grid, memoised

MIN_POOL_EVENTS = 20
"""Benign events a location needs for its own size law; below it the all-locations pool."""

DEFAULT_SIZE_THETA, DEFAULT_SIZE_BETA, DEFAULT_SIZE_ALPHA = np.log(0.5), 0.5, 1.0
"""Weak prior size law used where even the pooled history has too few events:
``E[|R| - 1] = 0.5 sqrt(1 + v)`` with geometric-like tails (alpha 1), i.e. wide."""

PRIOR_EVENTS, PRIOR_DAYS = 0.5, 1.0
"""Jeffreys-like Gamma prior of a pool's event rate (events, days): with no history at all an
event is judged about as likely as not, so nothing small is ever improbable by default."""

RATE_PRIOR_DAYS_MIN, RATE_PRIOR_DAYS_MAX = 7.0, 365.0
"""Bounds of the empirical-Bayes prior strength (days) of a pool's rate in a series' rate."""

SIZE_PRIOR_UNITS = 3.0
"""Expected units at which a series' own size factor gets half the weight."""

OUTLIER_P = 1e-3
"""A history event whose size is this improbable under the law being fitted is left out of
the fit (it is a discrepancy, not a routine correction)."""

ALPHA_MIN, ALPHA_MAX = 0.1, 5.0
"""Bounds of the size dispersion: a little heavier than Poisson at least (pooled series
differ), and not wider than a very lumpy law."""

IRLS_ITERATIONS = 8

DUPLICATE_WINDOW_DAYS = 7
"""A positive residual equal to a receipt of the last this many days (or that day) is a
receipt posted twice."""


@dataclass(frozen=True, eq=False)
class BenignLaw:
    """Per-series benign-correction law (arrays (S,)); see the module docstring."""

    rate: np.ndarray  # lambda_s, benign events per reconciled day (posterior mean)
    history_days: np.ndarray  # T_s, reconciled days in the fit
    events: np.ndarray  # n_s, non-zero residuals in the fit
    theta: np.ndarray  # the series' location (or pool) size intercept
    beta: np.ndarray  # the volume exponent
    alpha: np.ndarray  # NB2 dispersion of |R| - 1
    size_factor: np.ndarray  # g_s, credibility-weighted own scale

    def size_mean(self, rows: np.ndarray, volume: np.ndarray) -> np.ndarray:
        """E[|R| - 1 | event] for series ``rows`` at book stock ``volume`` (units)."""
        x = np.log1p(np.maximum(np.nan_to_num(volume), 0.0))
        return np.exp(self.theta[rows] + self.beta[rows] * x) * self.size_factor[rows]

    def p_at_least(self, rows: np.ndarray, size: np.ndarray, volume: np.ndarray) -> np.ndarray:
        """``lambda_s x P(|R| >= size | event)`` for residual sizes ``size`` (units, > 0)."""
        m = self.size_mean(rows, volume)
        return self.rate[rows] * nb_at_least(np.ceil(np.abs(size)) - 1.0, m, self.alpha[rows])

    def p_equal(self, rows: np.ndarray, size: np.ndarray, volume: np.ndarray) -> np.ndarray:
        """``lambda_s x P(|R| = size | event)`` (0 for a size below 1)."""
        m = self.size_mean(rows, volume)
        y = np.maximum(np.round(size) - 1.0, 0.0)
        pmf = nb_pmf(y, m, self.alpha[rows])
        return self.rate[rows] * np.where(size >= 1, pmf, 0.0)


def nb_at_least(y: np.ndarray, mean: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """``P(Y >= y)`` for ``Y ~ NB2(mean, alpha)``: the regularised incomplete beta
    ``I_{1-p}(y, 1/alpha)`` with ``p = 1 / (1 + alpha mean)``; 1 for ``y <= 0``."""
    from scipy import special

    y, mean, alpha = np.broadcast_arrays(np.asarray(y, float), mean, alpha)
    q = alpha * mean / (1.0 + alpha * mean)
    tail = special.betainc(np.maximum(y, 1.0), 1.0 / alpha, q)
    return np.where(y <= 0, 1.0, tail)


def nb_pmf(y: np.ndarray, mean: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """``P(Y = y)`` for ``Y ~ NB2(mean, alpha)``, ``y`` >= 0 whole units."""
    from scipy import special

    n = 1.0 / np.asarray(alpha, float)
    log_p = -np.log1p(alpha * mean)  # log(1 / (1 + alpha mean))
    log_q = np.log(alpha * mean) + log_p
    return np.exp(
        special.gammaln(y + n)
        - special.gammaln(n)
        - special.gammaln(y + 1.0)
        + n * log_p
        + y * log_q
    )


def residuals(grid: Grid, returns_restock: bool = True) -> np.ndarray:
    """(S, D) reconciliation residual ``R`` (units; NaN where a book-stock row of the day or
    the day before is missing, and in column 0). Shared (``memoised``): do not modify it."""

    def compute() -> np.ndarray:
        out = np.full(grid.units.shape, np.nan)
        if grid.on_hand is None or grid.n_days < 2:
            return out
        returned = grid.returned[:, 1:] if returns_restock else 0.0
        out[:, 1:] = (
            grid.on_hand[:, 1:]
            - grid.on_hand[:, :-1]
            - grid.receipts[:, 1:]
            + grid.units[:, 1:]
            - returned
            - grid.adjustments[:, 1:]
        )
        return out

    return memoised(grid, ("reconciliation_residuals", returns_restock), compute)


def fit_benign_law(grid: Grid, returns_restock: bool = True) -> BenignLaw:
    """The benign-correction law fitted on every reconciled day before ``as_of``.

    Days of a store that recorded no sales at all (``location_silent``: an outage or a closing
    day) are left out, as are days with a recognised duplicate receipt. Runs in O(S x D) plus
    a few passes over the events. Shared per grid (``memoised``).
    """
    return memoised(grid, ("benign_law", returns_restock), lambda: _fit(grid, returns_restock))


def _fit(grid: Grid, returns_restock: bool) -> BenignLaw:
    n_series = grid.n_series
    r = residuals(grid, returns_restock)
    hist = np.isfinite(r) & ~grid.location_silent
    hist[:, grid.last] = False
    hist &= ~duplicate_receipts(grid, returns_restock)[0]
    event = hist & (np.nan_to_num(r) != 0)
    t_s = hist.sum(axis=1).astype(float)
    n_s = event.sum(axis=1).astype(float)

    # Frequency: Gamma-Poisson empirical Bayes within location x velocity band.
    velocity = np.divide(
        (grid.units * hist).sum(axis=1), t_s, out=np.zeros(n_series), where=t_s > 0
    )
    n_bands = len(DISPERSION_BAND_EDGES) + 1
    pool = grid.loc_index * n_bands + np.searchsorted(DISPERSION_BAND_EDGES, velocity)
    n_pools = len(grid.location_ids) * n_bands
    pool_n = np.bincount(pool, weights=n_s, minlength=n_pools)
    pool_t = np.bincount(pool, weights=t_s, minlength=n_pools)
    pool_rate = (pool_n + PRIOR_EVENTS) / (pool_t + PRIOR_DAYS)
    # Between-series variance of the rates beyond Poisson noise (method of moments).
    seen = t_s > 0
    own = np.divide(n_s, t_s, out=np.zeros(n_series), where=seen)
    count = np.bincount(pool, weights=seen.astype(float), minlength=n_pools)
    dev2 = np.bincount(pool, weights=seen * (own - pool_rate[pool]) ** 2, minlength=n_pools)
    noise = np.bincount(
        pool,
        weights=np.divide(pool_rate[pool], t_s, out=np.zeros(n_series), where=seen),
        minlength=n_pools,
    )
    tau2 = np.divide(dev2 - noise, count, out=np.zeros(n_pools), where=count > 1)
    strength = np.divide(
        pool_rate, tau2, out=np.full(n_pools, RATE_PRIOR_DAYS_MAX), where=tau2 > 0
    ).clip(RATE_PRIOR_DAYS_MIN, RATE_PRIOR_DAYS_MAX)
    k = strength[pool]
    rate = (n_s + k * pool_rate[pool]) / (t_s + k)

    # Size: robust log-link Poisson regression of |R| - 1 on log(1 + v) per location.
    rows, cols = np.nonzero(event)
    y = np.abs(r[rows, cols]) - 1.0
    before = grid.on_hand[rows, cols - 1] if len(rows) else np.zeros(0)
    x = np.log1p(np.maximum(np.nan_to_num(before), 0.0))
    n_loc = len(grid.location_ids)
    group = grid.loc_index[rows]
    loc_events = np.bincount(group, minlength=n_loc)
    theta_l, beta_l, alpha_l = _robust_size_fit(y, x, group, n_loc)
    # Pool of all locations for those with too few events, and the prior below that.
    theta_g, beta_g, alpha_g = _robust_size_fit(y, x, np.zeros(len(y), dtype=int), 1)
    if len(y) < MIN_POOL_EVENTS:
        theta_g, beta_g, alpha_g = (
            np.array([DEFAULT_SIZE_THETA]),
            np.array([DEFAULT_SIZE_BETA]),
            np.array([DEFAULT_SIZE_ALPHA]),
        )
    small = loc_events < MIN_POOL_EVENTS
    theta_l[small], beta_l[small], alpha_l[small] = theta_g[0], beta_g[0], alpha_g[0]

    theta, beta, alpha = (v[grid.loc_index] for v in (theta_l, beta_l, alpha_l))
    m = np.exp(theta[rows] + beta[rows] * x)
    weight = _inlier_weight(y, m, alpha[rows])
    obs = np.bincount(rows, weights=weight * y, minlength=n_series)
    exp_ = np.bincount(rows, weights=weight * m, minlength=n_series)
    size_factor = (obs + SIZE_PRIOR_UNITS) / (exp_ + SIZE_PRIOR_UNITS)
    return BenignLaw(rate, t_s, n_s, theta, beta, alpha, size_factor)


def _inlier_weight(y: np.ndarray, m: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """1 for an event the current law finds plausible, 0 for one in its extreme tail
    (``P(Y >= y) < OUTLIER_P``: a real discrepancy in the history, not a benign correction).

    Hard trimming of the far tail only: Huber weights on Pearson residuals are not consistent
    for small counts (they down-weight every 1-unit event when the mean is small, and the fit
    collapses toward zero)."""
    return (nb_at_least(y, m, alpha) >= OUTLIER_P).astype(float)


def _robust_size_fit(
    y: np.ndarray, x: np.ndarray, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: (theta, beta, alpha) of ``y ~ NB2(exp(theta + beta x), alpha)``.

    Newton/IRLS for the Poisson log-link score equations (valid for the NB mean, Cameron &
    Trivedi 3.2), events in the current law's far tail trimmed (``_inlier_weight``), all
    groups at once (2 x 2 systems through ``bincount``). Groups without events get the prior law.
    """
    theta = np.full(n_groups, DEFAULT_SIZE_THETA)
    beta = np.zeros(n_groups)
    alpha = np.full(n_groups, DEFAULT_SIZE_ALPHA)
    if not len(y):
        beta[:] = DEFAULT_SIZE_BETA
        return theta, beta, alpha
    # Start from a robust intercept-only fit: the mean of each group's events up to their
    # median-plus-3-MAD (real discrepancies in the history would otherwise inflate the start,
    # widen the law and mask themselves from the trimming).
    start = np.full(n_groups, 0.05)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    for g in range(n_groups):  # one pass per location (tens), not per series
        vals = y[order[bounds[g] : bounds[g + 1]]]
        if len(vals):
            med = np.median(vals)
            mad = np.median(np.abs(vals - med))
            start[g] = max(vals[vals <= med + 3.0 * max(mad, 1.0)].mean(), 0.05)
    theta = np.log(start)

    def sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n_groups)

    for _ in range(IRLS_ITERATIONS):
        m = np.exp(np.clip(theta[group] + beta[group] * x, -10, 10))
        w = _inlier_weight(y, m, alpha[group])
        # Dispersion by moments on the inliers, then a Newton step on the weighted Poisson
        # score: H d = g.
        num, den = sums(w * ((y - m) ** 2 - y)), sums(w * m * m)
        alpha = np.divide(num, den, out=np.full(n_groups, ALPHA_MIN), where=den > 0)
        alpha = alpha.clip(ALPHA_MIN, ALPHA_MAX)
        g0, g1 = sums(w * (y - m)), sums(w * (y - m) * x)
        h00, h01, h11 = sums(w * m), sums(w * m * x), sums(w * m * x * x)
        det = h00 * h11 - h01**2
        ok = det > 1e-9 * np.maximum(h00 * h11, 1e-12)
        d_theta = np.where(ok, (h11 * g0 - h01 * g1) / np.where(ok, det, 1.0), 0.0)
        d_beta = np.where(ok, (h00 * g1 - h01 * g0) / np.where(ok, det, 1.0), 0.0)
        # No spread in volume: intercept only.
        d_theta = np.where(ok, d_theta, np.divide(g0, h00, out=np.zeros(n_groups), where=h00 > 0))
        theta = theta + np.clip(d_theta, -2, 2)
        beta = np.clip(beta + np.clip(d_beta, -1, 1), -0.5, 1.5)
    return theta, beta, alpha


def duplicate_receipts(grid: Grid, returns_restock: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Receipts posted twice: ((S, D) bool, (S, D) int8 lag in days to the matching receipt).

    A day whose residual is positive and equals the units of a receipt of the same series on
    that day or up to ``DUPLICATE_WINDOW_DAYS`` before (the nearest such receipt; lag -1 where
    none). Shared (``memoised``).
    """

    def compute() -> tuple[np.ndarray, np.ndarray]:
        r = residuals(grid, returns_restock).reshape(-1)
        n_days = grid.n_days
        found = np.zeros(r.shape, dtype=bool)
        lag = np.full(r.shape, -1, dtype=np.int8)
        # Receipts are sparse: test the cells up to the window after each one, not the grid.
        cells = np.flatnonzero(grid.receipts.reshape(-1) > 0)
        quantity = grid.receipts.reshape(-1)[cells]
        day = cells % n_days
        for k in range(min(DUPLICATE_WINDOW_DAYS, n_days - 1) + 1):
            inside = day + k < n_days
            target = cells[inside] + k
            target = target[r[target] == quantity[inside]]  # NaN never matches
            lag[target[~found[target]]] = k
            found[target] = True
        return found.reshape(grid.units.shape), lag.reshape(grid.units.shape)

    return memoised(grid, ("duplicate_receipts", returns_restock), compute)


def phantom_units(grid: Grid, lookback_days: int, returns_restock: bool = True) -> np.ndarray:
    """(S,) units a recognised duplicate receipt put on the books in the last ``lookback_days``
    and no later write-down (negative residual) took off again (0 where none)."""
    dup, _ = duplicate_receipts(grid, returns_restock)
    first = max(grid.n_days - lookback_days, 0)
    r = np.nan_to_num(residuals(grid, returns_restock))[:, first:]
    added = np.where(dup[:, first:], r, 0.0)
    # Write-downs after the first duplicate in the window cancel phantom units.
    after = np.logical_or.accumulate(dup[:, first:], axis=1)
    removed = np.where(after & (r < 0), -r, 0.0)
    return np.maximum(added.sum(axis=1) - removed.sum(axis=1), 0.0)
