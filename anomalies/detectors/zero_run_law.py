"""The probability of a zero-sales run with the demand rate's uncertainty integrated out and a
dispersion that heavy-tailed items cannot fool (used by ``ghost_stock``).

Three pieces, per series with a run of evidence days ``d`` (expected units ``mu_d`` from the
demand model, ``sum_d mu_d = M``):

* **Robust dispersion.** The moment estimator of the demand model reads the variance, which a
  winsorised baseline of heavy-tailed demand understates; the zero-run test needs the mass at
  zero. ``zero_dispersion`` solves ``(1 + alpha m)^(-1/alpha) = z`` for ``alpha`` with ``m`` the
  baseline's mean and ``z`` the posterior mean of its share of zero days (Beta prior centred on
  the model's own NB zero probability, ``ZERO_PRIOR_DAYS`` pseudo-days), shrinks ``log alpha``
  toward the median of its location x velocity band (weight ``n / (n + DISPERSION_SHRINK_DAYS)``)
  and keeps the larger of that and the model's dispersion.
* **Rate uncertainty.** The baseline rate ``r`` is an estimate from ``n`` days of NB demand:
  its sampling distribution is matched by ``Gamma(shape = r n / (1 + alpha r), rate = shape /
  r)`` (Poisson counts would give ``r n``; overdispersion divides the information by
  ``1 + alpha r``). ``P0 = E_c[prod_d (1 + alpha c mu_d)^(-1/alpha)]`` with ``c = lambda / r`` is
  bounded above by an upper Riemann sum over the Gamma's quantiles on a geometric grid (the
  integrand falls with ``lambda``, so the sum is a conservative bound; ``QUANTILE_NODES``).
* **Lumpy items.** The empirical bound ``z^k`` (share of zero days to the power of the
  demand-weighted run length ``k = sum_d mu_d / mean``) becomes ``E[z^k]`` under the Beta
  posterior of ``z``: ``B(a + k, b) / B(a, b)``.

``p0 = max(P0, E[z^k])``: the larger, as in ``demand_model.log_p_no_sales``.

References: Cameron & Trivedi, *Regression Analysis of Count Data* (NB2 zero probability);
Gelman et al., *Bayesian Data Analysis* ch. 2 (Gamma-Poisson, Beta-binomial predictive);
Montoya & Gonzalez 2019 (zero runs of point-of-sale data as out-of-shelf evidence).

Pure numpy (scipy imported inside functions); no Django imports.
"""

from __future__ import annotations

import numpy as np

from .demand_model import DISPERSION_BAND_EDGES, DISPERSION_MAX, DemandModel, nb_log_p_zero

ZERO_PRIOR_DAYS = 2.0
"""Pseudo-days of the Beta prior of a series' share of zero days."""

DISPERSION_SHRINK_DAYS = 28.0
"""Baseline days at which a series' own zero-implied dispersion gets half the weight."""

QUANTILE_NODES = 128
"""Nodes of the quantile grid (geometric from ``QUANTILE_FLOOR`` to 1) of the rate integral."""

QUANTILE_FLOOR = 1e-8
"""Probability mass of the rate's lowest quantiles counted as a zero run for sure."""


def zero_dispersion(
    model: DemandModel, loc_index: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For series ``rows``: (dispersion, beta_a, beta_b) — the robust dispersion and the Beta
    posterior of the share of zero days (arrays like ``rows``)."""
    n = model.baseline_days[rows].astype(float)
    zeros = n - model.baseline_sales_days[rows]
    mean = np.maximum(model.window_mean[rows], 1e-9)
    prior_z = np.exp(nb_log_p_zero(mean, model.dispersion[rows]))
    a = zeros + ZERO_PRIOR_DAYS * prior_z
    b = (n - zeros) + ZERO_PRIOR_DAYS * (1.0 - prior_z)
    z = a / (a + b)
    own = _solve_dispersion(mean, z)
    # Shrink log alpha toward the median of the location x velocity band.
    n_bands = len(DISPERSION_BAND_EDGES) + 1
    pool = loc_index[rows] * n_bands + np.searchsorted(DISPERSION_BAND_EDGES, mean)
    log_own = np.log(own)
    order = np.lexsort((log_own, pool))
    sorted_pool = pool[order]
    starts = np.flatnonzero(np.r_[True, sorted_pool[1:] != sorted_pool[:-1]])
    ends = np.r_[starts[1:], len(order)]
    medians = log_own[order][(starts + ends - 1) // 2]  # lower median of each pool
    pool_median = np.empty(len(rows))
    pool_median[order] = np.repeat(medians, ends - starts)
    w = n / (n + DISPERSION_SHRINK_DAYS)
    shrunk = np.exp(w * log_own + (1.0 - w) * pool_median)
    return np.maximum(model.dispersion[rows], shrunk), a, b


def _solve_dispersion(mean: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``alpha`` with ``(1 + alpha mean)^(-1/alpha) = z`` (bisection on log alpha; the zero
    probability grows with alpha), clipped to ``[1e-3, DISPERSION_MAX]``."""
    lo = np.full(mean.shape, np.log(1e-3))
    hi = np.full(mean.shape, np.log(DISPERSION_MAX))
    target = np.log(np.clip(z, 1e-300, 1.0))
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        too_small = nb_log_p_zero(mean, np.exp(mid)) < target
        lo = np.where(too_small, mid, lo)
        hi = np.where(too_small, hi, mid)
    return np.exp(0.5 * (lo + hi))


def log_p_zero_run(
    model: DemandModel,
    loc_index: np.ndarray,
    rows: np.ndarray,
    mu: np.ndarray,
    evidence: np.ndarray,
) -> np.ndarray:
    """Natural log of ``p0`` (module docstring) for series ``rows`` (an array like ``rows``).

    ``mu`` (S, D) expected units on the ``evidence`` (S, D) days, rows as in the grid.
    """
    from scipy import special

    if not len(rows):
        return np.zeros(0)
    alpha, beta_a, beta_b = zero_dispersion(model, loc_index, rows)
    rate = np.maximum(np.nan_to_num(model.rate[rows]), 1e-12)
    n = model.baseline_days[rows].astype(float)
    shape = np.maximum(rate * n / (1.0 + alpha * rate), 1e-3)

    # Evidence cells of these rows.
    sub_ev = evidence[rows]
    r_idx, cols = np.nonzero(sub_ev)
    m = mu[rows][r_idx, cols]
    a_cell = alpha[r_idx]
    # Quantile grid: 0, floor, ..., 1 (geometric); upper Riemann sum of a decreasing integrand.
    u = np.r_[0.0, np.geomspace(QUANTILE_FLOOR, 1.0, QUANTILE_NODES)]
    width = np.diff(u)
    log_terms = np.empty((len(rows), len(width)))
    for j, uj in enumerate(u[:-1]):
        c = special.gammaincinv(shape, uj) / shape  # lambda / rate at this quantile
        log_g = np.bincount(
            r_idx, weights=-np.log1p(a_cell * m * c[r_idx]) / a_cell, minlength=len(rows)
        )
        log_terms[:, j] = np.log(width[j]) + log_g
    log_nb = special.logsumexp(log_terms, axis=1)

    # Beta-predictive empirical bound for lumpy items.
    mean = model.window_mean[rows]
    weight = np.divide(m, mean[r_idx], out=np.ones_like(m), where=mean[r_idx] > 0)
    k = np.bincount(r_idx, weights=weight, minlength=len(rows))
    log_emp = (
        special.gammaln(beta_a + k)
        - special.gammaln(beta_a)
        + special.gammaln(beta_a + beta_b)
        - special.gammaln(beta_a + beta_b + k)
    )
    return np.maximum(log_nb, log_emp)
