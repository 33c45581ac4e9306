"""The demand model: expected units per series and day, fitted on a grid.

``DemandModel`` (``fit_demand``)
    Expected units per series and day: ``rate x weekday_factor[weekday] x promo uplift``, zero
    on closed days, with a negative-binomial (NB2) dispersion per series:
    ``Var X = mu + dispersion x mu^2``.

    - Weekday factors are multiplicative, estimated per location as a ratio of totals and per
      series shrunk toward the location's (credibility weight ``E / (E + WEEKDAY_SHRINK_UNITS)``
      with ``E`` the units the series would have sold on that weekday without a weekday effect).
    - Daily units are winsorised at ``winsor_mult x`` the series' median selling-day quantity
      before the rate is averaged, so one bulk order does not inflate the baseline.
    - The rate is the Poisson maximum-likelihood rate over the trailing window,
      ``sum(units) / sum(weekday_factor)`` over usable days (listed, open, no event, no
      promotion, not sold out), i.e. a weekday-adjusted mean.
    - Dispersion: method of moments for NB2 with varying means,
      ``sum((x - mu)^2 - x) / sum(mu^2)`` on units capped only loosely, shrunk toward the
      location's pooled value and clipped to ``[DISPERSION_MIN, DISPERSION_MAX]``.
    - Promotion uplift: per location, units sold on promotion days over the units expected
      without the promotion, shrunk toward ``PROMO_UPLIFT_DEFAULT``.
    - ``log_p_no_sales`` gives the probability of a run without sales: NB2, bounded below by
      the item's own share of zero days (lumpy items sell on few days whatever their mean).

References: Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (multiplicative
seasonal indices); Cameron & Trivedi, *Regression Analysis of Count Data* (NB2 variance
function and its moment estimator); Buhlmann credibility (shrinkage); Iglewicz & Hoaglin 1993
(MAD as a robust spread).

No Django imports: detectors are unit-tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import (
    MAD_TO_SD,
    row_nanmedian,
    row_nanquantiles,
    sum_by_location,
    weekday_sums,
    where_else_nan,
)
from .grid import Grid, memoised, promotion_cells, usable_days

WEEKDAY_SHRINK_UNITS = 30.0
"""Units of evidence at which a series' own weekday factor gets half the weight."""

WINSOR_FLOOR_UNITS = 3.0
"""The winsorising cap is never below this many units a day."""

DISPERSION_MIN = 0.05
DISPERSION_MAX = 10.0
DISPERSION_DEFAULT = 0.3
"""NB2 dispersion bounds and the prior used when a location has no usable history. The floor
keeps tails a little heavier than Poisson: weekday factors fitted on the same data absorb some
of the variance, which would otherwise make every model overconfident."""

DISPERSION_WINSOR_FACTOR = 4.0
"""Daily units are capped at this multiple of the rate's winsorising cap for the dispersion."""

DISPERSION_PRIOR_UNITS2 = 200.0
"""Weight (in units², the scale of ``sum(mu²)``) of the location's dispersion in a series'."""

DISPERSION_BAND_EDGES = np.array([0.5, 2.0, 8.0, 32.0])
"""Velocity bands (units/day) whose series share a dispersion prior within a location."""

PROMO_UPLIFT_DEFAULT = 1.5
PROMO_UPLIFT_MAX = 5.0
PROMO_UPLIFT_PRIOR_UNITS = 50.0
"""Promotion uplift prior, cap, and the expected units at which the data gets half the weight."""

ZERO_DAYS_MIN = 2
"""Zero-sale days a baseline needs before its share of zero days bounds a zero-run test."""

EVENT_UPLIFT_DEFAULT = 1.3
EVENT_UPLIFT_MAX = 5.0
"""Calendar-event uplift prior and cap (shrunk with ``PROMO_UPLIFT_PRIOR_UNITS`` like a
promotion's). Events below 1x (a quiet day) are not used to lower an expectation."""

UPLIFT_DISPERSION_PRIOR = 1.0
"""Prior extra NB2 dispersion of days whose level a promotion or event multiplies: the uplift
differs from item to item and from one promotion to the next (a log-SD of about 0.8, i.e.
1.5x could as well be 0.7x or 3.5x) until the location's own such days say otherwise."""


@dataclass(frozen=True, eq=False)
class DemandModel:
    """Per-series demand parameters from ``fit_demand`` (arrays of length S unless noted)."""

    rate: np.ndarray  # units per day with weekday factor 1; NaN where not estimable
    weekday_factor: np.ndarray  # (S, 7)
    dispersion: np.ndarray  # NB2 alpha
    promo_uplift: np.ndarray  # multiplier on promotion days (the location's)
    cap: np.ndarray  # winsorising cap, units/day
    baseline_days: np.ndarray  # usable days in the baseline window
    baseline_sales_days: np.ndarray  # of which with a sale
    robust_sd: np.ndarray  # MAD-based SD of the residuals in the window, units
    median_selling_units: np.ndarray  # median units on usable selling days (raw), NaN if none
    max_selling_units: np.ndarray  # largest units on a usable selling day (raw), NaN if none
    zero_share: np.ndarray  # share of usable window days without a sale (0 if < ZERO_DAYS_MIN)
    window_mean: np.ndarray  # mean (winsorised) units per usable window day

    def expected(self, grid: Grid, cols: np.ndarray | slice | int = slice(None)) -> np.ndarray:
        """(S, k) expected units of each series on the given grid column(s); 0 on closed days."""
        if not isinstance(cols, slice):
            cols = np.atleast_1d(np.arange(grid.n_days)[cols])
        mu = self.rate[:, None] * self.weekday_factor[:, grid.weekday[cols]]
        # In place: the same products as ``rate x factor x uplift`` (uplift 1 off promotion),
        # without two more (S, D) temporaries.
        np.multiply(mu, self.promo_uplift[:, None], out=mu, where=grid.promo[:, cols])
        np.copyto(mu, 0.0, where=grid.closed[:, cols])
        return mu

    def expected_at(self, grid: Grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``expected`` on the cells (``rows[i]``, ``cols[i]``) only: an array like ``rows``."""
        mu = self.rate[rows] * self.weekday_factor[rows, grid.weekday[cols]]
        promo = grid.promo[rows, cols]
        mu[promo] *= self.promo_uplift[rows[promo]]
        mu[grid.closed[rows, cols]] = 0.0
        return mu


def fit_demand(
    grid: Grid,
    usable: np.ndarray,
    end_col: np.ndarray | int,
    window_days: int,
    winsor_mult: float,
) -> DemandModel:
    """Fit the demand model on ``usable`` days up to ``end_col`` (per series or one column).

    ``usable`` (S, D) marks days that show ordinary demand (see ``usable_days``; detectors add
    their own exclusions). Weekday factors use all usable days up to ``end_col``; the rate,
    dispersion and robust SD use the trailing ``window_days`` calendar days ending at
    ``end_col`` (inclusive). Promotion days up to ``end_col`` feed the uplift estimate.
    Window statistics are computed on each series' band of ``window_days`` columns only
    (``WindowBand``), not on the whole grid.
    """
    n_series, n_days = grid.units.shape
    cols = np.arange(n_days)
    end = np.broadcast_to(np.asarray(end_col), (n_series,))
    raw = grid.units
    hist = usable & (cols <= (end_col if np.ndim(end_col) == 0 else end[:, None]))

    positive = where_else_nan(raw, hist & (raw > 0))
    median_selling, max_selling = row_nanquantiles(positive, (0.5, 1.0))
    cap = np.maximum(winsor_mult * median_selling, WINSOR_FLOOR_UNITS)
    cap = np.where(np.isnan(cap), WINSOR_FLOOR_UNITS, cap)
    units = np.minimum(raw, cap[:, None])

    # Finite values times a 0/1 mask: what ``np.where(mask, x, 0)`` gives, without a branch
    # per cell (masks of sparse sellers defeat branch prediction).
    hist_units = units * hist
    n_hist = hist.sum(axis=1)
    mean_hist = np.divide(hist_units.sum(axis=1), n_hist, out=np.zeros(n_series), where=n_hist > 0)
    units_w = weekday_sums(hist_units, grid.weekday)  # (S, 7)
    # Units expected with no weekday effect.
    exposure_w = weekday_sums(hist, grid.weekday) * mean_hist[:, None]
    loc_units_w = sum_by_location(units_w, grid.loc_starts)
    loc_exposure_w = sum_by_location(exposure_w, grid.loc_starts)
    loc_factor = np.divide(
        loc_units_w, loc_exposure_w, out=np.ones_like(loc_units_w), where=loc_exposure_w > 0
    )
    own = np.divide(units_w, exposure_w, out=np.zeros_like(units_w), where=exposure_w > 0)
    weight = exposure_w / (exposure_w + WEEKDAY_SHRINK_UNITS)
    factor = weight * own + (1.0 - weight) * loc_factor[grid.loc_index]

    # The trailing window: (S, k) bands of columns, k = min(window_days, D).
    band = WindowBand(end_col, window_days, n_days)
    window = band.take(hist)
    raw_b = band.take(raw)
    units_b = np.minimum(raw_b, cap[:, None])
    day_factor = band.weekday_values(factor, grid.weekday)
    exposure = (day_factor * window).sum(axis=1)
    window_units = (units_b * window).sum(axis=1)
    window_n = window.sum(axis=1)
    rate = np.divide(window_units, exposure, out=np.full(n_series, np.nan), where=exposure > 0)
    known_rate = np.nan_to_num(rate)

    mu = known_rate[:, None] * day_factor
    # The variance sees the raw quantities up to a looser cap: winsorising at the rate's cap
    # would cut the tail that the dispersion is there to describe.
    loose = np.minimum(raw_b, DISPERSION_WINSOR_FACTOR * cap[:, None])
    num = (((loose - mu) ** 2 - loose) * window).sum(axis=1)
    den = (mu**2 * window).sum(axis=1)
    # Empirical-Bayes prior: the pooled dispersion of the location's series of similar
    # velocity (slow movers are far lumpier than fast ones; a location-wide pool is dominated
    # by the fast movers and makes every medium mover look overconfidently regular).
    velocity = np.searchsorted(DISPERSION_BAND_EDGES, known_rate)
    pool = grid.loc_index * (len(DISPERSION_BAND_EDGES) + 1) + velocity
    n_pools = len(grid.location_ids) * (len(DISPERSION_BAND_EDGES) + 1)
    pool_num = np.bincount(pool, weights=num, minlength=n_pools)
    pool_den = np.bincount(pool, weights=den, minlength=n_pools)
    pool_alpha = np.divide(
        pool_num, pool_den, out=np.full(n_pools, DISPERSION_DEFAULT), where=pool_den > 0
    ).clip(DISPERSION_MIN, DISPERSION_MAX)
    prior = pool_alpha[pool]
    dispersion = ((num + DISPERSION_PRIOR_UNITS2 * prior) / (den + DISPERSION_PRIOR_UNITS2)).clip(
        DISPERSION_MIN, DISPERSION_MAX
    )

    # Promotion days are few: work on their cells, not on the grid.
    rows, days = promotion_cells(grid)
    before = days <= end[rows]
    rows, days = rows[before], days[before]
    promo_units = sum_by_location(
        np.bincount(
            rows,
            weights=np.minimum(raw[rows, days], PROMO_UPLIFT_MAX * cap[rows]),
            minlength=n_series,
        ),
        grid.loc_starts,
    )
    promo_mu = known_rate[rows] * factor[rows, grid.weekday[days]]
    promo_expected = sum_by_location(
        np.bincount(rows, weights=promo_mu, minlength=n_series), grid.loc_starts
    )
    uplift = (
        (promo_units + PROMO_UPLIFT_PRIOR_UNITS * PROMO_UPLIFT_DEFAULT)
        / (promo_expected + PROMO_UPLIFT_PRIOR_UNITS)
    ).clip(1.0, PROMO_UPLIFT_MAX)

    zero_days = (window & (raw_b <= 0)).sum(axis=1)
    resid = where_else_nan(units_b - mu, window)
    centre = row_nanmedian(resid)
    robust_sd = MAD_TO_SD * row_nanmedian(np.abs(resid - centre[:, None]))

    return DemandModel(
        rate=rate,
        weekday_factor=factor,
        dispersion=dispersion,
        promo_uplift=uplift[grid.loc_index],
        cap=cap,
        baseline_days=window_n,
        baseline_sales_days=(window & (raw_b > 0)).sum(axis=1),
        robust_sd=np.nan_to_num(robust_sd),
        median_selling_units=median_selling,
        max_selling_units=max_selling,
        zero_share=np.divide(
            zero_days, window_n, out=np.zeros(n_series), where=zero_days >= ZERO_DAYS_MIN
        ),
        window_mean=np.divide(window_units, window_n, out=np.zeros(n_series), where=window_n > 0),
    )


class WindowBand:
    """Each series' trailing window ``end - window_days < col <= end`` as a band of ``k``
    consecutive grid columns (``k = min(window_days, D)``), so window statistics cost
    (S, k) instead of (S, D).

    ``end`` is one column for all series (the band is a slice: views, no copy) or one per
    series (a gather). A band clipped at the grid's first column holds columns after ``end``:
    the caller masks them (its history mask ends at ``end``).
    """

    def __init__(self, end: np.ndarray | int, window_days: int, n_days: int):
        self.k = max(min(window_days, n_days), 1)
        self.scalar = np.ndim(end) == 0
        self.first = np.clip(np.asarray(end) - window_days + 1, 0, max(n_days - self.k, 0))

    def take(self, values: np.ndarray) -> np.ndarray:
        """(S, k) band of the (S, D) ``values`` (a view for a single end column)."""
        if self.scalar:
            return values[:, self.first : self.first + self.k]
        windows = np.lib.stride_tricks.sliding_window_view(values, self.k, axis=1)
        return windows[np.arange(len(values)), self.first]

    def weekday_values(self, per_weekday: np.ndarray, weekday: np.ndarray) -> np.ndarray:
        """(S, k) value of each band column's weekday from (S, 7) ``per_weekday``."""
        # Band columns are consecutive days: each series' seven values from its first
        # column's weekday on, repeated.
        first_weekday = weekday[self.first] if len(weekday) else np.zeros_like(self.first)
        week = (np.asarray(first_weekday)[..., None] + np.arange(7)) % 7
        if self.scalar:
            rolled = per_weekday[:, week]
        else:
            rolled = np.take_along_axis(per_weekday, week, axis=1)
        return np.tile(rolled, -(-self.k // 7))[:, : self.k]


def cells_uplift(
    grid: Grid,
    rows: np.ndarray,
    days: np.ndarray,
    base_mu: np.ndarray,
    cap: np.ndarray,
    uplift: np.ndarray | None,
    *,
    prior: float,
    max_uplift: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Uplift of a set of days (promotion or calendar-event cells) and its extra dispersion.

    ``rows``/``days`` (n,) the cells, ``base_mu`` (n,) their expected units without the uplift,
    ``cap`` (S,) a per-series cap on units (bulk orders do not make an uplift). ``uplift``
    (S,) a known uplift per series (the model's promotion uplift), or ``None`` to estimate it:
    per location, units over expected units, shrunk toward ``prior`` with
    ``PROMO_UPLIFT_PRIOR_UNITS`` and clipped to ``[1, max_uplift]``.
    Returns ``(uplift, alpha)``, both (S,) per location: the uplift, and the NB2 dispersion of
    the cells around ``uplift x base_mu`` (moment estimator, shrunk toward
    ``UPLIFT_DISPERSION_PRIOR`` with ``DISPERSION_PRIOR_UNITS2``), which a detector adds to
    the series' own on such days.
    """
    n_series = grid.n_series
    x = np.minimum(grid.units[rows, days], cap[rows])
    if uplift is None:
        units = sum_by_location(np.bincount(rows, weights=x, minlength=n_series), grid.loc_starts)
        expected = sum_by_location(
            np.bincount(rows, weights=base_mu, minlength=n_series), grid.loc_starts
        )
        uplift = (
            (units + PROMO_UPLIFT_PRIOR_UNITS * prior) / (expected + PROMO_UPLIFT_PRIOR_UNITS)
        ).clip(1.0, max_uplift)[grid.loc_index]
    m = uplift[rows] * base_mu
    num = sum_by_location(
        np.bincount(rows, weights=(x - m) ** 2 - x, minlength=n_series), grid.loc_starts
    )
    den = sum_by_location(np.bincount(rows, weights=m**2, minlength=n_series), grid.loc_starts)
    alpha = (
        (num + DISPERSION_PRIOR_UNITS2 * UPLIFT_DISPERSION_PRIOR) / (den + DISPERSION_PRIOR_UNITS2)
    ).clip(0.0, DISPERSION_MAX)
    return uplift, alpha[grid.loc_index]


def log_p_no_sales(model: DemandModel, mu: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(S,) log-probability that a series sells nothing on the ``days`` (S, D) mask.

    The larger (more conservative) of two estimates: NB2 with the model's expected units,
    and the series' own share of zero days raised to the number of days. The second protects
    lumpy items (bought by the case on a few days a week), whose many zero days a
    moment-matched NB understates; it is not used for items with fewer than
    ``ZERO_DAYS_MIN`` zero days in their baseline (there the NB is the better guide).
    """
    # Logs and ratios only on the ``days`` cells (a zero run is a few days of a long grid);
    # zeros elsewhere keep the row sums as over the whole grid.
    rows, cols = np.nonzero(days)
    dispersion = model.dispersion[rows]
    nb_days = np.zeros(days.shape)
    nb_days[rows, cols] = nb_log_p_zero(mu[rows, cols], dispersion)
    nb = nb_days.sum(axis=1)
    # A day expected to sell twice the average counts as two average days (exact for a
    # Poisson mixture's zero term), so promotions and busy weekdays keep their weight.
    mean = model.window_mean[rows]
    weight = np.zeros(days.shape)
    weight[rows, cols] = np.divide(mu[rows, cols], mean, out=np.ones_like(mean), where=mean > 0)
    share = model.zero_share
    exponent = weight.sum(axis=1)
    empirical = np.where(share > 0, exponent * np.log(np.where(share > 0, share, 1.0)), -np.inf)
    return np.maximum(nb, empirical)


def nb_log_p_zero(mu: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """log P(X = 0) for X ~ NB2(mean mu, dispersion alpha): ``-log1p(alpha mu) / alpha``."""
    return -np.log1p(dispersion * mu) / dispersion


def nb_sd(mu: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """Standard deviation of NB2: ``sqrt(mu + alpha mu²)``."""
    return np.sqrt(mu + dispersion * mu**2)


def as_of_baseline(grid: Grid, baseline_days: int, winsor_mult: float) -> DemandModel:
    """``fit_demand`` on the usable days before the as-of day (the day under test is never
    its own baseline), shared by the spike and drop detectors."""

    def compute() -> DemandModel:
        usable = usable_days(grid) & (np.arange(grid.n_days) < grid.last)
        return fit_demand(grid, usable, grid.last - 1, baseline_days, winsor_mult)

    return memoised(grid, ("as_of_baseline", baseline_days, winsor_mult), compute)
