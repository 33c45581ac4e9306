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
* **Size.** Given a benign event, ``|R| - 1`` follows a Katz-family law (binomial, Poisson or
  NB2: ``Var = m + alpha m^2`` with ``alpha`` from -1 to ``ALPHA_MAX``, so corrections that
  only ever come in one or two sizes get the narrow law they have) with mean
  ``m(v) = exp(theta_L + beta_L log(1 + v))`` per location, ``v`` = the book stock the day's
  movements imply (what the count corrected): size grows with volume when the data says so,
  ``beta`` is learned. The history's events are a **two-groups mixture** (Efron 2008): a
  share ``pi0`` of benign corrections and the rest real discrepancies, whose size is any
  share of the stock (uniform on ``0 .. v``). EM fits both at once, so past write-offs and
  double postings are explained by the second group and do not widen the benign law; no
  event is trimmed by a constant. A location with fewer than ``MIN_POOL_EVENTS`` events uses
  the pool of all locations, and with fewer still a weak default prior. Per series the mean
  is scaled by a credibility factor ``g_s`` (Buhlmann, its strength from the between-series
  spread), and a wide law of weight ``1 / (2 (n0 + 1))`` (``n0`` benign events seen) keeps a
  size never seen rare rather than impossible.
* ``p_tail = lambda_s pi0 x P(|R| >= r | benign event)``: the chance of a benign residual at
  least this large on that day (one event a day at most), and ``p_equal = lambda_s pi0 x
  P(|R| = q | benign event)`` for a residual equal to a quantity ``q``.

Duplicate receipt postings (``duplicate_receipts``): a positive residual equal to the quantity
of a receipt of the same series within ``DUPLICATE_WINDOW_DAYS`` before (or on) that day.

References: Cameron & Trivedi, *Regression Analysis of Count Data* (NB2, moment estimators);
Katz 1965 and Johnson, Kemp & Kotz, *Univariate Discrete Distributions* (the Katz family);
Efron 2008, "Microarrays, empirical Bayes and the two-groups model", Statistical Science
(two-groups model); Dempster, Laird & Rubin 1977 (EM); Buhlmann & Gisler 2005 (credibility)
and Gamma-Poisson empirical Bayes (Casella 1985, "An introduction to empirical Bayes data
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
"""The least credibility prior (expected units) of a series' own size factor: where the
location's series differ most, its own scale gets half the weight at this many units."""

ALPHA_MIN, ALPHA_MAX = -1.0, 5.0
"""Bounds of the size dispersion ``alpha`` (``Var = m + alpha m^2``): from a one-trial binomial
(corrections of one size only) through Poisson (0) to a very lumpy negative binomial."""

POISSON_BAND = 1e-3
"""``|alpha|`` below this is Poisson."""

EM_ITERATIONS = 30
EM_TOLERANCE = 1e-4
"""The EM stops when no group's mean parameters move by more than this (log units)."""

ANOMALY_PRIOR = (1.0, 9.0)
"""Beta prior (anomalous, benign events) of the share of a location's unexplained book moves
that are real discrepancies: a tenth, as if ten events had been seen."""

WIDE_ALPHA = 1.0
"""Dispersion of the wide law (geometric-like) that keeps a little benign mass beyond the
sizes the fitted law allows (``tail_floor``)."""

DUPLICATE_WINDOW_DAYS = 7
"""A positive residual equal to a receipt of the last this many days (or that day) is a
receipt posted twice."""


@dataclass(frozen=True, eq=False)
class BenignLaw:
    """Per-series benign-correction law (arrays (S,)); see the module docstring."""

    rate: np.ndarray  # lambda_s x pi0: benign events per reconciled day
    history_days: np.ndarray  # T_s, reconciled days in the fit
    events: np.ndarray  # n_s, non-zero residuals in the fit (benign or not)
    theta: np.ndarray  # the series' location (or pool) size intercept
    beta: np.ndarray  # the volume exponent
    alpha: np.ndarray  # Katz dispersion of |R| - 1 (< 0 binomial, 0 Poisson, > 0 NB2)
    size_factor: np.ndarray  # g_s, credibility-weighted own scale
    tail_floor: np.ndarray  # tau: weight of the wide law in the benign size law
    benign_share: np.ndarray  # pi0 of the series' location: benign share of its events

    def size_mean(self, rows: np.ndarray, volume: np.ndarray) -> np.ndarray:
        """E[|R| - 1 | event] for series ``rows`` at book stock ``volume`` (units)."""
        x = np.log1p(np.maximum(np.nan_to_num(volume), 0.0))
        return np.exp(self.theta[rows] + self.beta[rows] * x) * self.size_factor[rows]

    def p_at_least(self, rows: np.ndarray, size: np.ndarray, volume: np.ndarray) -> np.ndarray:
        """``lambda_s x P(|R| >= size | benign event)`` for residual sizes ``size`` (units, > 0)."""
        m = self.size_mean(rows, volume)
        y = np.ceil(np.abs(size)) - 1.0
        tau = self.tail_floor[rows]
        tail = (1.0 - tau) * katz_at_least(y, m, self.alpha[rows]) + tau * nb_at_least(
            y, np.maximum(m, 1.0), WIDE_ALPHA
        )
        return self.rate[rows] * tail

    def p_equal(self, rows: np.ndarray, size: np.ndarray, volume: np.ndarray) -> np.ndarray:
        """``lambda_s x P(|R| = size | benign event)`` (0 for a size below 1)."""
        m = self.size_mean(rows, volume)
        y = np.maximum(np.round(size) - 1.0, 0.0)
        tau = self.tail_floor[rows]
        pmf = (1.0 - tau) * katz_pmf(y, m, self.alpha[rows]) + tau * nb_pmf(
            y, np.maximum(m, 1.0), WIDE_ALPHA
        )
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


def _katz_parts(y, mean, alpha):
    """Broadcast inputs, the three branches' masks and the binomial's trials and success
    probability (trials ``N = round(-1/alpha)``, at least ``mean / 0.95``)."""
    y, mean, alpha = np.broadcast_arrays(
        np.asarray(y, float), np.maximum(np.asarray(mean, float), 1e-12), alpha
    )
    alpha = np.asarray(alpha, float)
    nb = alpha > POISSON_BAND
    binom = alpha < -POISSON_BAND
    with np.errstate(divide="ignore"):
        trials = np.where(binom, np.round(-1.0 / np.where(binom, alpha, -1.0)), 1.0)
    trials = np.maximum(np.maximum(trials, 1.0), np.ceil(mean / 0.95))
    prob = np.clip(mean / trials, 0.0, 1.0)
    return y, mean, alpha, nb, binom, trials, prob


def katz_at_least(y: np.ndarray, mean: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """``P(Y >= y)`` in the Katz family with mean ``mean`` and ``Var = mean + alpha mean^2``:
    negative binomial (``alpha > 0``), Poisson (``alpha = 0``) or binomial with
    ``N = -1/alpha`` trials (``alpha < 0``: less spread than Poisson). 1 for ``y <= 0``.

    Reference: Katz 1965, "Unified treatment of a broad class of discrete probability
    distributions"; Johnson, Kemp & Kotz, *Univariate Discrete Distributions* 2.3."""
    from scipy import special

    y, mean, alpha, nb, binom, trials, prob = _katz_parts(y, mean, alpha)
    yy = np.maximum(y, 1.0)
    poisson = special.gammainc(yy, mean)  # P(Y >= y) = P(Gamma(y) <= mean)
    safe_alpha = np.where(nb, alpha, 1.0)
    negbin = special.betainc(yy, 1.0 / safe_alpha, safe_alpha * mean / (1.0 + safe_alpha * mean))
    inside = binom & (yy <= trials)
    binomial = np.where(inside, special.betainc(yy, np.maximum(trials - yy + 1.0, 1.0), prob), 0.0)
    tail = np.where(nb, negbin, np.where(binom, binomial, poisson))
    return np.where(y <= 0, 1.0, tail)


def katz_pmf(y: np.ndarray, mean: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """``P(Y = y)`` in the Katz family (see ``katz_at_least``), ``y`` >= 0 whole units."""
    from scipy import special

    y, mean, alpha, nb, binom, trials, prob = _katz_parts(y, mean, alpha)
    poisson = np.exp(y * np.log(mean) - mean - special.gammaln(y + 1.0))
    safe_alpha = np.where(nb, alpha, 1.0)
    negbin = nb_pmf(y, mean, safe_alpha)
    inside = binom & (y <= trials)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_binom = (
            special.gammaln(trials + 1.0)
            - special.gammaln(y + 1.0)
            - special.gammaln(np.maximum(trials - y, 0.0) + 1.0)
            + special.xlogy(y, prob)
            + special.xlog1py(trials - y, -prob)
        )
    binomial = np.where(inside, np.exp(np.where(inside, log_binom, 0.0)), 0.0)
    return np.where(nb, negbin, np.where(binom, binomial, poisson))


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

    # Size: two-groups mixture per location (benign Katz law, anomalous uniform share).
    rows, cols = np.nonzero(event)
    y = np.abs(r[rows, cols]) - 1.0
    # The volume a correction is judged at: the book stock the day's movements imply (what
    # the count corrected), not the morning's.
    v = np.maximum(np.nan_to_num(grid.on_hand[rows, cols] - r[rows, cols]), 0.0)
    n_loc = len(grid.location_ids)
    group = grid.loc_index[rows]
    loc_events = np.bincount(group, minlength=n_loc)
    # Pool of all locations for those with too few events, and the prior below that.
    fit_g = (
        _two_groups_size_fit(y, v, np.zeros(len(y), dtype=int), 1)
        if len(y) >= MIN_POOL_EVENTS
        else SizeFit.prior(1)
    )
    fit_l = _two_groups_size_fit(y, v, group, n_loc).where(loc_events >= MIN_POOL_EVENTS, fit_g)
    theta, beta, alpha, share, floor = (
        getattr(fit_l, name)[grid.loc_index]
        for name in ("theta", "beta", "alpha", "benign_share", "tail_floor")
    )
    m = np.exp(theta[rows] + beta[rows] * np.log1p(v))
    weight = _benign_weight(y, v, m, alpha[rows], share[rows])
    size_factor = _size_credibility(y, m, alpha[rows], weight, rows, grid.loc_index, n_loc)
    return BenignLaw(rate * share, t_s, n_s, theta, beta, alpha, size_factor, floor, share)


def _size_credibility(
    y: np.ndarray,
    m: np.ndarray,
    alpha: np.ndarray,
    weight: np.ndarray,
    rows: np.ndarray,
    loc_index: np.ndarray,
    n_loc: int,
) -> np.ndarray:
    """(S,) each series' own scale of its benign sizes, ``g_s = (O_s + k) / (E_s + k)``.

    ``O_s`` / ``E_s``: the series' observed / expected benign units (events weighted by their
    benign probability). Buhlmann credibility (Buhlmann & Gisler 2005, ch. 4): the prior
    strength ``k = 1 / tau^2`` (expected units) comes from the spread of ``O_s - E_s`` between
    the location's series beyond the events' own variance (method of moments), at least
    ``SIZE_PRIOR_UNITS``. Where series do not differ, ``k`` is large and ``g_s`` stays near 1:
    a few small corrections in one series' history do not make its law narrower.
    """
    n_series = len(loc_index)
    obs = np.bincount(rows, weights=weight * y, minlength=n_series)
    exp_ = np.bincount(rows, weights=weight * m, minlength=n_series)
    var = np.bincount(
        rows, weights=weight * m * np.maximum(1.0 + alpha * m, 0.0), minlength=n_series
    )
    spread = np.bincount(loc_index, weights=(obs - exp_) ** 2 - var, minlength=n_loc)
    scale = np.bincount(loc_index, weights=exp_**2, minlength=n_loc)
    tau2 = np.divide(spread, scale, out=np.zeros(n_loc), where=scale > 0)
    k = np.divide(1.0, tau2, out=np.full(n_loc, 1e9), where=tau2 > 0)
    k = np.maximum(k, SIZE_PRIOR_UNITS)[loc_index]
    return (obs + k) / (exp_ + k)


@dataclass(frozen=True, eq=False)
class SizeFit:
    """Per group (location), arrays (G,): the benign size law ``|R| - 1 ~ Katz(exp(theta +
    beta log(1 + v)), alpha)``, the benign share ``pi0`` of the events and the tail floor."""

    theta: np.ndarray
    beta: np.ndarray
    alpha: np.ndarray
    benign_share: np.ndarray
    tail_floor: np.ndarray

    def where(self, keep: np.ndarray, other: SizeFit) -> SizeFit:
        """This fit where ``keep`` (G,) holds, else ``other``'s (a one-group fit broadcasts)."""
        return SizeFit(
            *(
                np.where(keep, getattr(self, name), getattr(other, name))
                for name in self.__dataclass_fields__
            )
        )

    @classmethod
    def prior(cls, n_groups: int) -> SizeFit:
        """The weak default law (wide, every event benign), for groups without events."""
        a, b = ANOMALY_PRIOR
        return cls(
            np.full(n_groups, DEFAULT_SIZE_THETA),
            np.full(n_groups, DEFAULT_SIZE_BETA),
            np.full(n_groups, DEFAULT_SIZE_ALPHA),
            np.full(n_groups, b / (a + b)),
            np.full(n_groups, 0.5),
        )


def _anomalous_pmf(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The alternative of the two-groups model: a discrepancy takes any share of the stock
    held, ``|R| - 1`` uniform on ``0 .. max(v, |R| - 1, 1)`` (``v``: the book stock the day's
    movements imply, as the benign law is judged at)."""
    return 1.0 / (np.maximum(np.maximum(v, y), 1.0) + 1.0)


def _benign_weight(
    y: np.ndarray, v: np.ndarray, m: np.ndarray, alpha: np.ndarray, share: np.ndarray
) -> np.ndarray:
    """Posterior probability that each event is a benign correction (E step)."""
    f0 = share * katz_pmf(y, m, alpha)
    f1 = (1.0 - share) * _anomalous_pmf(y, v)
    return np.divide(f0, f0 + f1, out=np.zeros_like(f0), where=(f0 + f1) > 0)


def _two_groups_size_fit(y: np.ndarray, v: np.ndarray, group: np.ndarray, n_groups: int) -> SizeFit:
    """Per group: the benign size law of a two-groups mixture, fitted by EM.

    Events' sizes ``y = |R| - 1`` at book stock ``v`` come from ``pi0 f0 + (1 - pi0) f1``:
    ``f0`` the benign law (Katz family: binomial, Poisson or NB2 as the data's spread says;
    mean ``exp(theta + beta log(1 + v))``), ``f1`` a discrepancy of any share of the stock
    (``_anomalous_pmf``). The history's real write-offs and postings are so explained by
    ``f1`` and do not shape ``f0``: nothing is trimmed by a constant. The M step is one
    Newton/IRLS step of the Poisson log-link score (valid for the mean, Cameron & Trivedi
    3.2) and moments for ``alpha``, weighted by the E step's benign probabilities; ``pi0`` has
    the ``ANOMALY_PRIOR``. All groups at once (2 x 2 systems through ``bincount``).

    ``tail_floor`` is ``1 / (2 (n0 + 1))`` with ``n0`` the group's benign events: the weight
    of a wide law beyond the sizes ``f0`` allows, so that a benign size never seen in ``n0``
    corrections is rare, not impossible.

    References: Efron 2008, "Microarrays, empirical Bayes and the two-groups model",
    Statistical Science 23(1); Dempster, Laird & Rubin 1977 (EM); Katz 1965.
    """
    fit = SizeFit.prior(n_groups)
    if not len(y):
        return fit
    x = np.log1p(v)
    theta = np.full(n_groups, np.log(0.05))
    # Start from a robust intercept: the mean of each group's events up to their median plus
    # 3 MAD (real discrepancies would otherwise start the benign law wide).
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    for g in range(n_groups):  # one pass per location (tens), not per series
        vals = y[order[bounds[g] : bounds[g + 1]]]
        if len(vals):
            med = np.median(vals)
            mad = np.median(np.abs(vals - med))
            theta[g] = np.log(max(vals[vals <= med + 3.0 * max(mad, 1.0)].mean(), 0.05))
    beta = np.zeros(n_groups)
    alpha = np.zeros(n_groups)
    a, b = ANOMALY_PRIOR
    share = np.full(n_groups, b / (a + b))
    n_events = np.bincount(group, minlength=n_groups).astype(float)

    def sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n_groups)

    for _ in range(EM_ITERATIONS):
        m = np.exp(np.clip(theta[group] + beta[group] * x, -10, 10))
        w = _benign_weight(y, v, m, alpha[group], share[group])
        share = (sums(w) + b) / (n_events + a + b)
        num, den = sums(w * ((y - m) ** 2 - y)), sums(w * m * m)
        alpha = np.divide(num, den, out=np.zeros(n_groups), where=den > 0)
        alpha = alpha.clip(ALPHA_MIN, ALPHA_MAX)
        g0, g1 = sums(w * (y - m)), sums(w * (y - m) * x)
        h00, h01, h11 = sums(w * m), sums(w * m * x), sums(w * m * x * x)
        det = h00 * h11 - h01**2
        ok = det > 1e-9 * np.maximum(h00 * h11, 1e-12)
        d_theta = np.where(ok, (h11 * g0 - h01 * g1) / np.where(ok, det, 1.0), 0.0)
        d_beta = np.where(ok, (h00 * g1 - h01 * g0) / np.where(ok, det, 1.0), 0.0)
        # No spread in volume: intercept only.
        d_theta = np.where(ok, d_theta, np.divide(g0, h00, out=np.zeros(n_groups), where=h00 > 0))
        step = np.stack([np.clip(d_theta, -2, 2), np.clip(d_beta, -1, 1)])
        theta = theta + step[0]
        beta = np.clip(beta + step[1], -0.5, 1.5)
        if np.abs(step).max() < EM_TOLERANCE:
            break
    m = np.exp(np.clip(theta[group] + beta[group] * x, -10, 10))
    benign = sums(_benign_weight(y, v, m, alpha[group], share[group]))
    return SizeFit(theta, beta, alpha, share, 0.5 / (benign + 1.0)).where(n_events > 0, fit)


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
