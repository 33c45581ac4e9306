"""Negative-binomial helpers for daily unit counts: a robust, empirical-Bayes dispersion per
series and the upper tail of a sum of days under a moment-matched NB.

``eb_dispersion``
    NB2 dispersion ``alpha`` (``Var X = mu + alpha mu²``) per series from its own window of
    days, shrunk toward the pooled value of its pool (velocity band within a location) by
    empirical Bayes. The per-series estimate is the method of moments for NB2 with varying
    means, ``sum((x - mu)² - x) / sum(mu²)``, on units winsorised at a loose cap (a robust
    moment estimator: one bulk order cannot dominate it, the heavy tail that the dispersion is
    there to describe is kept). Its sampling variance is the delta-method one,
    ``(alpha + 1/mu)² (2 + kurtosis) / n`` with NB's excess kurtosis
    ``6 alpha + 1 / (mu + alpha mu²)`` (evaluated at the pool's alpha, so that the weights do
    not follow the noise). Days that are outliers even under the series' own fit (a past
    spike) are trimmed first. The pool's between-series variance ``tau²`` is the variance of the
    series' estimates less their mean sampling variance; each series gets
    ``(tau² alpha_i + v_i alpha_pool) / (tau² + v_i)`` (Efron & Morris 1975; the
    James–Stein / Fay–Herriot normal-normal shrinkage). A pool of series with very different
    dispersions (NB size 0.5 next to 15) keeps most of each series' own estimate; a pool of
    alike series pulls a short history toward the pool.

``nb_sum_upper_tail``
    ``P(S >= s)`` for a sum ``S`` of daily counts with mean ``M`` and variance ``V``
    (``V > M``), under the NB with those two moments: exact for a sum of independent NB days
    sharing one ``p``, a close approximation otherwise (Cameron & Trivedi, *Regression
    Analysis of Count Data*, 2nd ed., §4.2; moment matching as in Guenther 1972 for sums of
    counts).

Pure numpy (scipy imported inside the function); no Django imports.
"""

from __future__ import annotations

import numpy as np

ALPHA_MIN = 0.02
ALPHA_MAX = 20.0
"""Bounds of the dispersion (NB size 50 down to 0.05)."""

TAU2_MIN = 1e-3
"""Floor of a pool's between-series variance of alpha (a pool never claims its series are
identical)."""

MIN_DAYS_FOR_POOL_VARIANCE = 14
"""Series with fewer window days do not enter a pool's between-series variance."""

TRIM_MAX_DAYS = 3
"""At most this many outlying days are trimmed from a series' window (a past spike of up to
three days)."""

TRIM_P = 1e-6
"""A window's most outlying day is trimmed when, under the NB fitted with it included, a day
at least that high somewhere in the window (``n x`` its tail) is less likely than this."""


def eb_dispersion(
    units: np.ndarray,
    mu: np.ndarray,
    days: np.ndarray,
    cap: np.ndarray,
    pool: np.ndarray,
    n_pools: int,
    default: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Empirical-Bayes NB2 dispersion per series, robust to past spikes in the window.

    ``units`` (S, k) raw daily units, ``mu`` (S, k) expected units, ``days`` (S, k) bool: the
    window's days that show ordinary demand; ``cap`` (S,) winsorising cap in units/day;
    ``pool`` (S,) int in ``[0, n_pools)``; ``default`` the alpha of a pool without data.
    Returns ``(alpha, own, trimmed, posterior_sd)``: (S,) shrunk dispersion clipped to
    ``[ALPHA_MIN, ALPHA_MAX]``, (S,) the series' own (unshrunk, unclipped; NaN without data)
    estimate, (S,) the number of days trimmed, and (S,) the posterior SD of alpha under the
    normal-normal model, ``sqrt(tau² v / (tau² + v))``.

    Trimming (deletion residuals, as in a forward search, Atkinson & Riani 2000): the
    ``TRIM_MAX_DAYS`` days with the largest Pearson residuals under a first fit are left out,
    the NB is refitted without them, and each of them stays out only when a day that high
    anywhere in the window (``n x`` its upper tail under the refit) had probability below
    ``TRIM_P``; the others come back and the final fit is made. A past spike (a real
    anomaly, or a bulk order) would otherwise inflate the dispersion for the whole window and
    hide the next spike (a one-day spike masks itself when judged by a fit that includes
    it).
    """
    from scipy import stats

    alpha, own, sd = _eb_dispersion(units, mu, days, cap, pool, n_pools, default)
    x = np.minimum(units, cap[:, None])
    # The most outlying days under the first fit ...
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = (x - mu) / np.sqrt(mu + alpha[:, None] * mu**2)
    resid = np.where(days & (mu > 0) & (x > mu), resid, -np.inf)
    k = min(TRIM_MAX_DAYS, resid.shape[1])
    top = np.argpartition(-resid, k - 1, axis=1)[:, :k]  # the k largest, in any order
    rows = np.repeat(np.arange(len(days)), k)
    cols = top.reshape(-1)
    candidate = np.isfinite(resid[rows, cols])
    if not candidate.any():
        return alpha, own, np.zeros(len(days), dtype=int), sd
    # ... are judged against the fit without them (so that a three-day spike cannot mask
    # itself), with a Bonferroni factor over the window's days.
    rows, cols = rows[candidate], cols[candidate]
    without = days.copy()
    without[rows, cols] = False
    alpha_out, _, _ = _eb_dispersion(units, mu, without, cap, pool, n_pools, default)
    size = 1.0 / alpha_out[rows]
    m = mu[rows, cols]
    tail = stats.nbinom.sf(x[rows, cols] - 1, size, size / (size + m))
    outlier = tail * days.sum(axis=1)[rows] < TRIM_P
    if not outlier.any():
        return alpha, own, np.zeros(len(days), dtype=int), sd
    kept = days.copy()
    kept[rows[outlier], cols[outlier]] = False
    trimmed = np.bincount(rows[outlier], minlength=len(days))
    alpha, own, sd = _eb_dispersion(units, mu, kept, cap, pool, n_pools, default)
    return alpha, own, trimmed, sd


def _eb_dispersion(
    units: np.ndarray,
    mu: np.ndarray,
    days: np.ndarray,
    cap: np.ndarray,
    pool: np.ndarray,
    n_pools: int,
    default: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One empirical-Bayes fit (no trimming): ``(alpha, own, posterior_sd)`` as
    ``eb_dispersion``."""
    x = np.minimum(units, cap[:, None]) * days
    m = mu * days
    num = ((x - m) ** 2 - x).sum(axis=1)
    den = (m**2).sum(axis=1)
    n = days.sum(axis=1)
    mean_mu = np.divide(m.sum(axis=1), n, out=np.zeros(len(n)), where=n > 0)
    own = np.divide(num, den, out=np.full(len(n), np.nan), where=den > 0)

    pool_num = np.bincount(pool, weights=num, minlength=n_pools)
    pool_den = np.bincount(pool, weights=den, minlength=n_pools)
    pool_alpha = np.divide(
        pool_num, pool_den, out=np.full(n_pools, default), where=pool_den > 0
    ).clip(ALPHA_MIN, ALPHA_MAX)
    prior = pool_alpha[pool]
    with np.errstate(divide="ignore", invalid="ignore"):
        kurtosis = 6 * prior + 1 / (mean_mu + prior * mean_mu**2)
        sampling = (prior + 1 / mean_mu) ** 2 * (2 + kurtosis) / n
    known = np.isfinite(own) & np.isfinite(sampling) & (n > 0)

    # tau² per pool: variance of the own estimates less their mean sampling variance.
    counted = known & (n >= MIN_DAYS_FOR_POOL_VARIANCE)
    w = counted.astype(float)
    own0 = np.where(counted, own, 0.0)
    cnt = np.bincount(pool, weights=w, minlength=n_pools)
    s1 = np.bincount(pool, weights=own0, minlength=n_pools)
    s2 = np.bincount(pool, weights=own0**2, minlength=n_pools)
    sv = np.bincount(pool, weights=np.where(counted, sampling, 0.0), minlength=n_pools)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / cnt
        spread = s2 / cnt - mean**2 - sv / cnt
    tau2 = np.where((cnt >= 2) & np.isfinite(spread), np.maximum(spread, TAU2_MIN), TAU2_MIN)
    t2 = tau2[pool]
    with np.errstate(invalid="ignore"):
        shrunk = (t2 * own + sampling * prior) / (t2 + sampling)
    alpha = np.where(known, shrunk, prior)
    with np.errstate(invalid="ignore"):
        posterior_sd = np.sqrt(np.where(known, t2 * sampling / (t2 + sampling), t2))
    return np.clip(alpha, ALPHA_MIN, ALPHA_MAX), own, posterior_sd


def nb_sum_upper_tail(total: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``P(S >= total)`` for ``S`` NB with mean ``mean`` and variance ``var`` (arrays alike).

    ``var`` below ``mean`` (under-dispersion) is raised to just above it (Poisson-like).
    1 where ``mean`` is not positive or ``total`` ≤ 0.
    """
    # Imported here: scipy.stats costs about a second at start-up (tests/test_startup.py).
    from scipy import stats

    total = np.asarray(total, dtype=float)
    mean = np.asarray(mean, dtype=float)
    out = np.ones(np.broadcast(total, mean).shape)
    ok = (mean > 0) & (total > 0)
    if not ok.any():
        return out
    m = mean[ok]
    alpha = np.maximum((np.asarray(var, dtype=float)[ok] - m) / m**2, 1e-8)
    size = 1.0 / alpha
    out[ok] = stats.nbinom.sf(total[ok] - 1, size, size / (size + m))
    return out
