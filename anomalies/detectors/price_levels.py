"""Learned price points of each series and the null model a day's price is judged under.

Pure numpy; no Django imports. Used by ``price``.

Prices are handled on a *normalised log scale*: ``z = log(price / (1 - discount))``, the log of
the price a promotion day's price would have been at the regular scale (``discount`` is the
day's promotion discount as a fraction, 0 without one). A promotion applied as planned then
sits on the item's ordinary levels, and a day's promotion price is one of them.

``fit_levels`` clusters each series' history of normalised log daily prices (sorted, a new
cluster where the gap to the previous price exceeds ``gap``: single-linkage in 1-D, Hartigan
1975, *Clustering Algorithms*, ch. 11). Clusters seen on at least ``min_support`` days are the
item's price points (list price, quantity or customer tiers, standing markdowns). The regular
price (``products.unit_price``) is always one. Daily averages of lines at different tiers lie
between two levels, so the convex hull ``[lo, hi]`` of the levels is the normal range and a
day's deviation ``d`` is its log distance to that hull (0 inside).

The null model of ``d`` for an ordinary day has two parts (a contaminated half-normal, as in
Huber 1964's gross-error model, with an exponential tail for the benign unexplained prices):
``P(D ≥ d) = (1 - ε) · 2Φ(-d/σ) + ε · exp(-d/ν)``. ``σ`` is the item's own price noise (a
robust MAD of log prices around their cluster's median, shrunk towards its location's pool,
plus the variance of rounding to the penny); ``ε`` and ``ν`` are the rate and scale of benign
deviations beyond the noise, fitted per location (``fit_deviation_pool``) by peaks over a
threshold: the excess of an exponential over a threshold is exponential with the same scale
(Pickands 1975; Davison & Smith 1990). The history holds the item's past anomalies too; left in,
they would make every new one look ordinary (a x10 keyed last quarter teaches that x10 happens).
So the fit is trimmed: history days that would have been candidates under the fit are left out
and the tail refitted, with the truncation accounted for in the likelihood (Deemer & Votaw
1955), until it is stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .arrays import MAD_TO_SD, row_nanmedian

PENNY = 0.01
"""Smallest price step: daily prices are rounded to it, which adds noise on cheap items."""


@dataclass(frozen=True)
class LevelFit:
    """Learned price points of ``S`` series (normalised log prices; see the module doc).

    ``lo``, ``hi`` (S,): the convex hull of the levels (NaN when the series has no level, i.e.
    no regular price and no recurring price). ``sigma_own`` (S,): the series' own robust noise
    (NaN without a supported cluster); ``n_own`` (S,): history days in supported clusters.
    ``hist_d`` (S, H): leave-one-out deviation of each history day (NaN where no price); a
    day counts as explained only when its cluster recurs on ``min_support`` *other* days.
    ``n_levels`` (S,): number of supported clusters.
    """

    lo: np.ndarray
    hi: np.ndarray
    sigma_own: np.ndarray
    n_own: np.ndarray
    hist_d: np.ndarray
    n_levels: np.ndarray

    def subset(self, mask: np.ndarray) -> LevelFit:
        """The fit of the series selected by ``mask`` (S,)."""
        return LevelFit(*(getattr(self, name)[mask] for name in self.__dataclass_fields__))


def normalised_log_price(price: np.ndarray, discount_pct: np.ndarray) -> np.ndarray:
    """``log(price / (1 - discount_pct / 100))``; NaN where the price is missing or ≤ 0.

    Shapes broadcast; ``discount_pct`` is clipped to [0, 99] %.
    """
    keep = 1.0 - np.clip(discount_pct, 0.0, 99.0) / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(price / keep)
    return np.where(np.isfinite(z), z, np.nan)


def quick_hull(
    z: np.ndarray, log_regular: np.ndarray, *, gap: float, min_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """A range inside every row's ``fit_levels`` hull, cheaply: the regular price and the
    row's own clusters of at least ``min_days`` days (``persist_days``: a level whatever its
    runs). Shapes as ``fit_levels``; a row sort, no argsort. A price inside it is normal, so
    only prices outside it need the full fit.
    """
    n_rows, width = z.shape
    order = np.sort(z, axis=1)  # NaN last
    m = max(int(min_days), 1)
    lo = np.full(n_rows, np.inf)
    hi = np.full(n_rows, -np.inf)
    if width >= m:
        new = np.ones(z.shape, dtype=bool)
        if width > 1:
            with np.errstate(invalid="ignore"):
                new[:, 1:] = ~(np.diff(order, axis=1) <= gap)  # NaN starts a cluster too
        cid = np.cumsum(new, axis=1)
        # m sorted values in a row of one cluster: that cluster has at least m days.
        first, end = order[:, : width - m + 1], order[:, m - 1 :]
        one = (cid[:, : width - m + 1] == cid[:, m - 1 :]) & ~np.isnan(end)
        with np.errstate(invalid="ignore"):
            lo = np.where(one, first, np.inf).min(axis=1)
            hi = np.where(one, end, -np.inf).max(axis=1)
    lo, hi = np.fmin(lo, log_regular), np.fmax(hi, log_regular)
    bad = ~np.isfinite(lo) | ~np.isfinite(hi)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def fit_levels(
    z: np.ndarray,
    log_regular: np.ndarray,
    *,
    gap: float,
    min_support: int,
    persist_days: int,
    group: np.ndarray | None = None,
) -> LevelFit:
    """Cluster each row of ``z`` (S, H) normalised log prices (NaN = no price) into levels.

    ``log_regular`` (S,): log regular price (NaN if unknown), always a level. ``gap``: log gap
    that starts a new cluster. A cluster is a level when it recurs (in ``min_support``
    separate runs of days, or on ``persist_days`` days; see ``_Clusters``).
    ``group`` (S,) int, optional: rows of one product (its locations); a row's normal range
    then also spans the levels recurring in separate runs at every row of its group.
    Runs in O(N log N) over the N prices; no loop over rows.
    """
    n_rows = z.shape[0]
    valid = ~np.isnan(z)
    rows_f, days_f = np.nonzero(valid)  # (row, day) of each price, in row-major order
    vals = z[valid]
    kw = {
        "gap": gap,
        "min_support": min_support,
        "persist_days": persist_days,
    }
    own = _Clusters(rows_f, rows_f, days_f, vals, n_rows, **kw)
    lo, hi = own.hull(own.level, log_regular)
    s_lo, s_hi = own.hull(own.strong, log_regular)
    in_strong = own.strong[own.cid]
    if group is not None and n_rows:
        # A price point recurring at one store of the item is one everywhere (a store that
        # rarely sells it knows its price list from the others); a price seen once at each of
        # two stores is not (a x10 mis-key happens alike anywhere), nor one held for a few
        # days at one store (persist_days makes it that store's level only).
        lo, hi = _group_hull(lo, hi, *own.hull(own.level_runs, log_regular), group)
        s_lo, s_hi = _group_hull(s_lo, s_hi, *own.hull(own.strong_runs, log_regular), group)

    # Each history day's leave-one-out deviation: 0 when its cluster recurs on enough other
    # days, else its distance to the range of such clusters (and the regular price).
    row_lo, row_hi = s_lo[rows_f], s_hi[rows_f]
    with np.errstate(invalid="ignore"):
        dev = np.maximum(np.maximum(row_lo - vals, vals - row_hi), 0.0)
    hist_d = np.full(z.shape, np.nan)
    hist_d[valid] = np.where(in_strong, 0.0, dev)

    # Own noise: |log price - its cluster's median| over days in levels, robust (MAD).
    resid = np.full(z.shape, np.nan)
    in_level = own.level[own.cid]
    resid[valid] = np.where(in_level, np.abs(vals - own.median[own.cid]), np.nan)
    sigma_own = MAD_TO_SD * row_nanmedian(resid)
    n_own = (~np.isnan(resid)).sum(axis=1)
    n_levels = np.bincount(own.key[own.level], minlength=n_rows)
    return LevelFit(lo, hi, sigma_own, n_own, hist_d, n_levels)


def _group_hull(
    lo: np.ndarray, hi: np.ndarray, share_lo: np.ndarray, share_hi: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(S,) hulls ``lo``/``hi`` joined with the ``share_lo``/``share_hi`` hulls of every row
    of the same ``group`` (NaN ignored)."""
    n_groups = int(group.max()) + 1
    g_lo = np.full(n_groups, np.inf)
    g_hi = np.full(n_groups, -np.inf)
    np.fmin.at(g_lo, group, share_lo)
    np.fmax.at(g_hi, group, share_hi)
    return np.fmin(lo, g_lo[group]), np.fmax(hi, g_hi[group])


class _Clusters:
    """1-D single-linkage clusters of ``vals`` within each ``key`` (flat arrays of one length,
    in (row, day) order; ``n_keys`` keys). Per cluster: ``key``, ``lo``, ``hi``, ``median``,
    ``support`` (days), ``runs`` (separate runs of consecutive selling days of one row in it),
    ``level`` / ``strong`` (recurring / still recurring without one of its days); per value:
    ``cid``, its cluster (in the input order).

    A cluster recurs when seen in ``min_support`` separate runs of consecutive calendar days
    (``day``: the values' day numbers; a tier price comes back between other prices or after
    days without sales; a 2-day mis-key is one run), or on ``persist_days`` days (a price
    held that long is the item's new price).
    """

    def __init__(
        self,
        key,
        row,
        day,
        vals,
        n_keys,
        *,
        gap,
        min_support,
        persist_days,
    ):
        self.n_keys = n_keys
        # One argsort of a composite float (key, then value) instead of a lexsort: several
        # times faster, and exact enough (keys < 2**26 and a value span of tens leave a
        # resolution far below ``gap``).
        if len(vals):
            lo, span = vals.min(), np.ptp(vals) + 1.0
            order = np.argsort(key * span + (vals - lo))
        else:
            order = np.zeros(0, dtype=np.int64)
        k, v = key[order], vals[order]
        new = np.ones(len(v), dtype=bool)
        if len(v) > 1:
            new[1:] = (k[1:] != k[:-1]) | (np.diff(v) > gap)
        cid_sorted = np.cumsum(new) - 1
        self.cid = np.empty(len(v), dtype=np.int64)
        self.cid[order] = cid_sorted
        starts = np.flatnonzero(new)
        self.support = np.diff(np.append(starts, len(v)))
        run_new = np.ones(len(v), dtype=bool)
        if len(v) > 1:
            run_new[1:] = (
                (row[1:] != row[:-1]) | (self.cid[1:] != self.cid[:-1]) | (np.diff(day) > 1)
            )
        self.runs = np.bincount(self.cid[run_new], minlength=len(starts))
        self.key = k[starts]
        self.lo = v[starts]
        self.hi = v[starts + self.support - 1]
        self.median = v[starts + (self.support - 1) // 2]

        def recurring(extra: int, persist: float) -> np.ndarray:
            days = self.support - extra
            return (days >= min_support) & ((self.runs - extra >= min_support) | (days >= persist))

        self.level = recurring(0, persist_days)
        self.strong = recurring(1, persist_days)
        # Recurring in separate runs only (what the item's other stores learn from).
        self.level_runs = recurring(0, np.inf)
        self.strong_runs = recurring(1, np.inf)

    def hull(self, mask: np.ndarray, log_regular: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n_keys,) lowest and highest price of the clusters ``mask`` and the regular price;
        NaN for a key with neither."""
        lo = np.full(self.n_keys, np.inf)
        hi = np.full(self.n_keys, -np.inf)
        np.minimum.at(lo, self.key[mask], self.lo[mask])
        np.maximum.at(hi, self.key[mask], self.hi[mask])
        lo, hi = np.fmin(lo, log_regular), np.fmax(hi, log_regular)
        bad = ~np.isfinite(lo)
        return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def location_sigma(
    sigma_own: np.ndarray,
    n_own: np.ndarray,
    loc_index: np.ndarray,
    n_locations: int,
    *,
    min_days: int,
    fallback: float,
) -> np.ndarray:
    """(L,) pool noise SD per location: the median own σ of the location's series with at
    least ``min_days`` days in levels (all locations' when a location has none; ``fallback``
    when nobody has). Inputs (S,)."""
    enough = (n_own >= min_days) & np.isfinite(sigma_own)
    overall = float(np.median(sigma_own[enough])) if enough.any() else fallback
    pool = np.full(n_locations, overall)
    # A median per location (tens of locations), not per series.
    for loc in np.unique(loc_index[enough]):
        pool[loc] = np.median(sigma_own[enough & (loc_index == loc)])
    return pool


def shrink_sigma(
    sigma_own: np.ndarray, n_own: np.ndarray, sigma_pool: np.ndarray, prior_days: float
) -> np.ndarray:
    """Each series' noise SD shrunk towards its pool's: ``sqrt((n·σ² + k·σ_pool²) / (n + k))``
    with ``k = prior_days`` (a short history takes mostly the pool's; normal-theory pooling
    of variances with the pool as ``k`` pseudo-days). All (S,)."""
    own = np.where(np.isfinite(sigma_own), sigma_own, 0.0)
    n = np.where(np.isfinite(sigma_own), n_own, 0)
    return np.sqrt((n * own**2 + prior_days * sigma_pool**2) / (n + prior_days))


def rounding_sd(log_price_level: np.ndarray) -> np.ndarray:
    """SD (log scale) of rounding a price of ``exp(log_price_level)`` to the penny: a uniform
    error of one penny's width, ``PENNY / price / sqrt(12)``."""
    with np.errstate(over="ignore"):
        return PENNY / np.exp(log_price_level) / np.sqrt(12.0)


NU_GRID = np.geomspace(0.002, 5.0, 240)
"""Candidate benign scales ``ν`` (log-price units) the truncated likelihood is maximised over."""

BISECTION_STEPS = 20
"""Halvings of the bracket where a p-value reaches ``trim_p``: a millionth of its width."""

BOUND_TOLERANCE = 1e-5
"""Log-price change of every bound below which the trimmed fit has converged."""

TRIM_ITERATIONS = 6
"""Refits of the benign tail with the history days it finds improbable left out (a fixed point
is usually reached in two or three)."""


def _truncated_exponential_scale(
    excess: np.ndarray,
    bound: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    *,
    prior_excesses: float = 0.0,
    prior_scale: float = 1.0,
) -> np.ndarray:
    """(G,) scale of exponential excesses observed only up to ``bound``: the maximum of the
    likelihood, or with ``prior_excesses`` > 0 of the posterior (MAP).

    ``excess``, ``bound``, ``group`` (N,): each excess ``e ≤ bound`` and its group. The density
    of an exponential right-truncated at ``m`` is ``exp(-e/ν) / (ν (1 - exp(-m/ν)))`` (Deemer &
    Votaw 1955, *Ann. Math. Statist.* 26). The prior counts as ``prior_excesses`` untruncated
    excesses of mean ``prior_scale`` (the conjugate inverse-gamma prior of an exponential's
    scale): a few excesses just under their bounds carry little information about ``ν`` (their
    likelihood is nearly flat in it, and its maximum runs to the end of ``NU_GRID``), so the
    prior keeps the scale. Maximised over ``NU_GRID``; NaN for a group without excesses when
    there is no prior.
    """
    nu = NU_GRID[None, :]
    e = excess[:, None]
    m = np.maximum(bound, 1e-12)[:, None]
    with np.errstate(over="ignore", divide="ignore"):
        ll = -np.log(nu) - e / nu - np.log(-np.expm1(-m / nu))
    total = np.zeros((n_groups, len(NU_GRID)))
    np.add.at(total, group, ll)
    total += prior_excesses * (-np.log(nu) - prior_scale / nu)
    best = NU_GRID[np.argmax(total, axis=1)]
    has = (np.bincount(group, minlength=n_groups) > 0) | (prior_excesses > 0)
    return np.where(has, best, np.nan)


def fit_deviation_pool(
    hist_d: np.ndarray,
    threshold: np.ndarray,
    loc_index: np.ndarray,
    n_locations: int,
    *,
    eps_prior: float,
    nu_prior: float,
    prior_days: float,
    prior_excesses: float,
    max_d: float = np.inf,
    sigma: np.ndarray | None = None,
    trim_p: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rate ``ε`` and scale ``ν`` of benign deviations beyond the noise, per location.

    ``hist_d`` (S, H): history days' deviations (NaN = no price); ``threshold`` (S,): the
    level beyond which a deviation is not noise (a few σ). The excesses ``e = d - threshold``
    of a location's days beyond it are exponential with scale ``ν`` (peaks over a threshold,
    Pickands 1975); ``ε`` is the tail's rate, so that ``ε · exp(-threshold/ν)`` is a day's
    chance of an excess. Deviations of ``max_d`` or more (a price keyed x10) are mis-keys, not
    benign, and left out.

    With ``trim_p`` and ``sigma`` (S,, the days' noise SD), the history's own anomalies are
    kept out of the benign law as well: a history day whose deviation has a p-value below
    ``trim_p`` under the current fit (``null_p_value``) would have been a candidate finding
    itself. The fit is a forward search (Atkinson & Riani 2000, *Robust Diagnostic
    Regression Analysis*): it starts from the days the noise alone explains and lets in, pass
    by pass, the days whose p-value under the current fit is above ``trim_p``, until no more
    come in (at most ``TRIM_ITERATIONS`` passes). Starting clean, many past anomalies cannot
    mask one another, as they do when trimming starts from the fit they contaminate. The days
    left out are the far tail, so ``ν`` is the maximum-likelihood scale of an exponential
    right-truncated where each day's p-value reaches ``trim_p`` (Deemer & Votaw 1955) and
    ``ε`` counts the excesses expected below that bound; both are consistent when the excesses
    are all benign. Without ``trim_p`` every excess below ``max_d`` is benign.

    ``ε`` is shrunk towards ``eps_prior`` with the weight of ``prior_days`` days. ``ν`` is a
    posterior mode in two levels: the chain's scale (all locations' excesses) with
    ``prior_excesses`` pseudo-excesses of mean ``nu_prior``, then each location's with
    ``prior_excesses`` pseudo-excesses of the chain's mean (``_truncated_exponential_scale``):
    a store with few excesses takes the chain's scale, not a constant's, and not the runaway
    maximum of a nearly flat truncated likelihood. Returns two (L,) arrays.
    """
    # Thresholds, noise and so the bounds are per series: the days only count.
    present = ~np.isnan(hist_d)
    n_days = present.sum(axis=1).astype(float)  # (S,)
    with np.errstate(invalid="ignore"):
        over = present & (hist_d > threshold[:, None]) & (hist_d < max_d)
    ex_row = np.nonzero(over)[0]
    e = hist_d[over] - threshold[ex_row]
    ex_loc = loc_index[ex_row]
    # The upper end of each series' benign excesses: without trimming, max_d; with it, the
    # first pass starts from what the noise alone explains (the clean core of a forward
    # search, so that many past anomalies cannot mask each other).
    passes = 1 if trim_p is None or sigma is None else 1 + TRIM_ITERATIONS
    if passes == 1:
        bound = np.full(len(threshold), np.inf) if not np.isfinite(max_d) else max_d - threshold
    else:
        bound = (
            _p_bound(
                threshold, sigma, np.zeros_like(threshold), np.ones_like(threshold), trim_p, max_d
            )
            - threshold
        )
    eps = np.full(n_locations, eps_prior)
    nu = np.full(n_locations, nu_prior)
    for _ in range(passes):
        bound_ex = bound[ex_row]
        kept = e < bound_ex
        n_ex = np.bincount(ex_loc[kept], minlength=n_locations).astype(float)
        # Each store's scale is shrunk to the chain's, the chain's to the constant prior.
        ex_kept, bound_kept = e[kept], np.minimum(bound_ex[kept], 1e6)
        nu_chain = _truncated_exponential_scale(
            ex_kept,
            bound_kept,
            np.zeros(len(ex_kept), dtype=int),
            1,
            prior_excesses=prior_excesses,
            prior_scale=nu_prior,
        )[0]
        nu = _truncated_exponential_scale(
            ex_kept,
            bound_kept,
            ex_loc[kept],
            n_locations,
            prior_excesses=prior_excesses,
            prior_scale=nu_chain,
        )
        # Expected excesses of a day below its bound: exp(-t/ν) (1 - exp(-bound/ν)).
        nu_s = nu[loc_index]
        with np.errstate(over="ignore", invalid="ignore"):
            per_day = np.exp(-threshold / nu_s) * -np.expm1(-np.maximum(bound, 0.0) / nu_s)
        w = np.bincount(loc_index, weights=n_days * np.nan_to_num(per_day), minlength=n_locations)
        eps = np.clip((n_ex + prior_days * eps_prior) / (w + prior_days), 0.0, 1.0)
        if passes == 1:
            break
        # Where each series' p-value reaches trim_p: its bound for the next pass. The bounds
        # only grow (a forward search: a day let in stays in), so the passes cannot cycle
        # between a wide and a narrow tail; they stop when no bound moves any more.
        new_bound = np.maximum(
            bound,
            _p_bound(threshold, sigma, eps[loc_index], nu[loc_index], trim_p, max_d) - threshold,
        )
        if np.allclose(new_bound, bound, rtol=0.0, atol=BOUND_TOLERANCE):
            break
        bound = new_bound
    return eps, nu


def _p_bound(
    t: np.ndarray, sigma: np.ndarray, eps: np.ndarray, nu: np.ndarray, trim_p: float, max_d: float
) -> np.ndarray:
    """The deviation at which ``null_p_value`` falls to ``trim_p`` (at least ``t``, at most
    ``max_d``): the larger of the noise part's and the tail part's own bounds, refined by a few
    bisection steps on the sum (which is decreasing in ``d``)."""
    from scipy.special import ndtri

    normal = sigma * ndtri(1.0 - trim_p / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(eps > trim_p, nu * np.log(eps / trim_p), 0.0)
    lo = np.maximum(np.maximum(normal, tail), t)
    hi = lo + normal + tail + 10.0 * nu
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        above = null_p_value(mid, sigma, eps, nu) > trim_p
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.minimum(0.5 * (lo + hi), max_d)


def null_p_value(d: np.ndarray, sigma: np.ndarray, eps: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """``P(D ≥ d) = (1 - ε) · 2Φ(-d/σ) + ε · exp(-d/ν)`` (module doc); 1 at ``d = 0``."""
    from scipy.special import ndtr

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        normal = 2.0 * ndtr(-d / sigma)
        tail = np.exp(-d / nu)
    p = (1.0 - eps) * normal + eps * tail
    return np.clip(np.where(d <= 0, 1.0, p), 0.0, 1.0)


def price_points_from_sales(sales: pd.DataFrame, promotions: pd.DataFrame) -> pd.DataFrame:
    """The chain-wide price points of in-memory frames, by the rule the database table
    follows (``inventory.importing.price_points``): one row per (product, day, price rounded
    to the penny) with units sold at a positive average price and no promotion of the product
    covering that location and day.

    ``sales``: ``base.SALES_DTYPES``; ``promotions``: ``base.PROMOTION_DTYPES``. Returns
    ``base.PRICE_POINT_DTYPES`` columns, sorted by date.
    """
    sold = sales[(sales["units_sold"] > 0) & (sales["unit_price"] > 0)]
    keep = np.ones(len(sold), dtype=bool)
    if len(promotions) and len(sold):
        pairs = sold[["product_id", "location_id", "date"]].reset_index(drop=True)
        pairs["row"] = np.arange(len(pairs))
        promos = promotions[["product_id", "location_id", "start_date", "end_date"]]
        for everywhere in (False, True):
            part = promos[promos["location_id"].isna() == everywhere]
            on = ["product_id"] if everywhere else ["product_id", "location_id"]
            if everywhere:
                part = part.drop(columns="location_id")
            else:
                part = part.astype({"location_id": "int64"})
            hit = pairs.merge(part, on=on)
            covered = hit["row"][hit["date"].between(hit["start_date"], hit["end_date"])]
            keep[covered.to_numpy()] = False
    sold = sold[keep]
    points = pd.DataFrame(
        {
            "product_id": sold["product_id"].to_numpy(dtype="int64"),
            "date": sold["date"].to_numpy(),
            "price": np.rint(sold["unit_price"].to_numpy(dtype="float64") * 100) / 100,
        }
    ).drop_duplicates(ignore_index=True)
    return points.sort_values("date", kind="stable", ignore_index=True)


def chain_hull(
    points: pd.DataFrame,
    product_ids: np.ndarray,
    *,
    start: np.datetime64,
    end: np.datetime64,
    gap: float,
    min_runs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per product of ``product_ids`` (P,), the log-price hull of its chain-wide price points.

    ``points``: ``base.PRICE_POINT_DTYPES``; only days ``start <= date < end`` count. The
    prices of each product are clustered as in ``fit_levels`` (single linkage, ``gap``); a
    cluster is a level when it was seen in ``min_runs`` separate runs of days (a price stuck
    for a week at one store is one run; a tier price comes back). Returns two (P,) arrays, the
    lowest and highest level, NaN for a product without one.
    """
    n = len(product_ids)
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    if points.empty or not n:
        return lo, hi
    dates = points["date"].to_numpy()
    within = (dates >= start) & (dates < end)
    prod = points["product_id"].to_numpy()[within]
    order = np.argsort(product_ids, kind="stable")
    pos = np.searchsorted(product_ids[order], prod)
    pos = np.clip(pos, 0, n - 1)
    known = product_ids[order][pos] == prod
    key = order[pos][known]
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = np.log(points["price"].to_numpy(dtype="float64")[within][known])
    day = ((dates[within][known] - start) // np.timedelta64(1, "D")).astype("int64")
    ok = np.isfinite(vals)
    key, vals, day = key[ok], vals[ok], day[ok]
    clusters = _Clusters(key, key, day, vals, n, gap=gap, min_support=1, persist_days=np.inf)
    # Runs of days per cluster, counted along each cluster's own days (a product has several
    # prices a day across the chain, so the input order would split one cluster's runs).
    cid = clusters.cid
    sort = np.lexsort((day, cid))
    c_s, d_s = cid[sort], day[sort]
    run_new = np.ones(len(c_s), dtype=bool)
    run_new[1:] = (c_s[1:] != c_s[:-1]) | (np.diff(d_s) > 1)
    runs = np.bincount(c_s[run_new], minlength=len(clusters.key))
    return clusters.hull(runs >= min_runs, np.full(n, np.nan))
