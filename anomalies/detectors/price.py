"""Price anomalies: a realized price far from every price the item is known to sell at.

Method (``price_levels`` has the details and references). Each SKU/location's *price points*
are learned from its own history before the as-of day: the daily average prices on selling
days, put back to the regular scale on promotion days (``price / (1 - discount)``), clustered
on a log scale; a cluster that comes back in ``min_support`` separate runs of days, or is
held ``persist_days`` days, is a level (the list price, quantity or customer tiers, a new
standing price); a level recurring in separate runs at one store of the item is one at all its
stores (a store that rarely sells it knows its price list from the others). Beyond the
stores of the detection chunk, the chain-wide price points (``data.price_points``: every
line's own price from line-level imports, the daily prices otherwise) widen the range too: a
price seen in ``chain_min_runs`` separate runs of days anywhere before the as-of day is one of
the SKU's levels at every store, whatever the chunking. The regular
price (``products.unit_price``) is always a level, and on a promotion day every level is
taken at the promotion's discount (the deepest when several cover the day), so the promotion
price is one of them (promotion days themselves teach no level). A daily average mixing lines
at two tiers lies between them, so the range from the lowest to the
highest level (their convex hull) is normal, and the as-of day's price is judged by its log
distance ``d`` to that range under the null model

    P(D ≥ d) = (1 - ε) · 2Φ(-d/σ) + ε · exp(-d/ν)

with ``σ`` the item's own robust price noise (shrunk towards its location's pool when its
history is short, plus penny rounding) and ``ε``, ``ν`` the rate and scale of benign
unexplained prices fitted per location from every item's history there. A price point that
recurs is therefore normal, while 40 % off an item that never sold at that price, with no
promotion, is found wherever prices are otherwise steady; where a location's items often sell
at new prices (``ε``, ``ν`` large) the same deviation is less surprising.

A candidate is reported when its p-value is at most ``max_p_value`` and the money at stake
(``|realized - nearest normal price| x units``) at least ``min_value_at_risk``; the
false-discovery control of the run decides from ``p_value`` and ``tests`` (the SKU-days priced
at the finding's location that day, plus the two store-level hypotheses). A price keyed x10
or ÷10 is far outside any normal range and critical (``critical_ratio``).

A condition that persists keeps one finding: ``start_date`` is the first selling day of the
current run of selling days that were candidates in the same direction (days without sales
neither break nor extend it), ``end_date`` = ``as_of``. When ``group_min_items`` or more items
of one store are candidates in the same direction on the same day, one store-level finding
(``product_id`` <NA>) replaces theirs: that is a markdown or a price file, not many mistakes;
its p-value is the binomial tail of that many candidates among the items tested.

Inputs: ``data.sales`` (units_sold, unit_price), ``data.products`` (sku, unit_price),
``data.promotions``, ``data.price_points`` (optional). Output: findings frame
(``base.FINDING_COLUMNS``) plus ``p_value``
(float64) and ``tests`` (int64); ``expected_value`` = the nearest normal price that day,
``actual_value`` = realized price, ``score`` = |log2 ratio| (1 = double or half),
``value_at_risk`` = |realized - expected| x units sold that day. Store-level findings:
``score`` = ``actual_value`` = number of items, ``value_at_risk`` = their summed difference.
Severity: warning; critical from ``critical_ratio`` (either direction) or ``critical_value``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .base import DetectionInput, empty_findings, make_findings
from .formatting import fmt_count, fmt_date, money
from .grid import Grid, build_grid
from .price_levels import (
    LevelFit,
    chain_hull,
    fit_deviation_pool,
    fit_levels,
    location_sigma,
    normalised_log_price,
    null_p_value,
    quick_hull,
    rounding_sd,
    shrink_sigma,
)

ANOMALY_TYPE = "price_anomaly"

DEFAULT_PARAMS: dict[str, Any] = {
    # Candidates: p-value under the item's null model at most this (before FDR control).
    "max_p_value": 0.001,
    # Log gap between sorted daily prices that starts a new price cluster (3 %).
    "cluster_gap": 0.03,
    # Separate runs of days a price cluster needs to be a learned price point ...
    "min_support": 2,
    # ... or days in all (a standing price).
    "persist_days": 5,
    # Noise SD shrinkage: weight of the location pool's σ, in days of the item's own history.
    "sigma_prior_days": 10,
    # Items with this many days at their levels set the location pool's σ.
    "sigma_pool_min_days": 10,
    # σ when no item has enough history anywhere (log scale, 2 %).
    "sigma_fallback": 0.02,
    # Deviations beyond this many σ count as benign unexplained prices in the pool fit.
    "noise_k": 3.0,
    # Priors of the benign-deviation rate ε and scale ν (log), and their weights.
    "eps_prior": 0.01,
    "nu_prior": 0.1,
    "eps_prior_days": 200,
    "nu_prior_excesses": 20,
    # Separate runs of days (anywhere in the chain) a price needs to be one of the SKU's chain
    # price points: one more than ``min_support``, as two stores keying the same x10 by
    # accident is a coincidence that happens, three is a price list.
    "chain_min_runs": 3,
    # Ratio (or its inverse) to the nearest normal price from which a finding is critical.
    "critical_ratio": 5.0,
    # Money difference that day from which a finding is critical.
    "critical_value": 500.0,
    # Findings worth less than this (money) are not reported.
    "min_value_at_risk": 0.0,
    # From this many candidate items (same store, day and direction) one store-level finding
    # replaces the item findings: a markdown or price file, not many separate mistakes.
    "group_min_items": 20,
    # The location pools (noise, benign deviations) are fitted on at most this many series.
    "pool_sample_rows": 10_000,
}


def detect_price_anomaly(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag SKU/locations whose realized price on ``as_of`` is far from every learned price
    point (module doc). Returns the findings frame with ``p_value`` and ``tests``."""
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    if grid.n_series == 0:
        return _with_tests(empty_findings(), [], [])
    judged = _judge_today(grid, p, data.price_points)
    if judged is None:
        return _with_tests(empty_findings(), [], [])
    j = judged
    n_loc = len(grid.location_ids)
    tested_per_loc = j.priced_per_loc + 2
    cand = (j.p_value <= p["max_p_value"]) & (j.value >= p["min_value_at_risk"])
    if not cand.any():
        return _with_tests(empty_findings(), [], [])
    c = np.flatnonzero(cand)
    run_start = _run_starts(grid, j, c, p)

    groups, grouped = [], np.zeros(len(c), dtype=bool)
    loc_c = grid.loc_index[j.rows[c]]
    for direction, mask in (("high", j.high[c]), ("low", ~j.high[c])):
        counts = np.bincount(loc_c[mask], minlength=n_loc)
        for li in np.flatnonzero(counts >= p["group_min_items"]):
            members = np.flatnonzero(mask & (loc_c == li))
            groups.append(
                _group_finding(
                    data,
                    grid,
                    j,
                    c[members],
                    run_start[members],
                    li,
                    direction,
                    tested_per_loc[li],
                    p,
                )
            )
            grouped[members] = True
    keep = c[~grouped]
    found = _item_findings(data, grid, j, keep, run_start[~grouped], tested_per_loc, p)
    return pd.concat([*groups, found], ignore_index=True) if groups else found


class _Judged:
    """Today's judgement of the priced series ``rows`` (all arrays (n,) over those rows)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _judge_today(grid: Grid, p: dict[str, Any], points: pd.DataFrame) -> _Judged | None:
    """Learn the priced series' levels from their history and judge the as-of day's price.

    Two stages keep a run over 100,000 series fast. (1) The location pools (noise σ,
    benign rate ε and scale ν) are fitted on a sample of at most ``pool_sample_rows`` series
    (every k-th row: proportional per location). (2) Today's price of every selling series is
    compared with a range inside its learned hull (``quick_hull``); only those whose p-value
    *could* be at most ``max_p_value`` there (a lower bound: the distance to the quick range
    is at least the true one, the pool-shrunk σ at least ``σ_pool·sqrt(k / (H + k))``) get the
    full fit, with every location of their product. The screen drops no candidate.
    """
    last = grid.last
    n_loc = len(grid.location_ids)
    disc_now = grid.discount_pct[:, last]
    z_now = normalised_log_price(grid.price[:, last], disc_now)
    today = (grid.units[:, last] > 0) & np.isfinite(z_now)
    today_rows = np.flatnonzero(today)
    if not len(today_rows):
        return None
    log_reg = _log_regular(grid)
    stride = max(1, int(np.ceil(grid.n_series / p["pool_sample_rows"])))
    sample = np.arange(0, grid.n_series, stride)
    sample_history = _history(grid, sample)
    pool = _fit_pool(grid, sample, log_reg, p, sample_history)

    q_lo, q_hi = quick_hull(
        # Every series is in the sample when there are few: its rows are today's history.
        sample_history[today_rows] if stride == 1 else _history(grid, today_rows),
        log_reg[today_rows],
        gap=p["cluster_gap"],
        min_days=p["persist_days"],
    )
    known = np.isfinite(q_lo)  # a regular price or a standing one: the item can be judged
    priced_per_loc = np.bincount(grid.loc_index[today_rows[known]], minlength=n_loc)
    z_t = z_now[today_rows]
    nearest_q = np.clip(z_t, q_lo, q_hi)
    loc_t = grid.loc_index[today_rows]
    keep_t = 1.0 - np.clip(disc_now[today_rows], 0.0, 99.0) / 100.0
    sigma_lb = pool.sigma[loc_t] * np.sqrt(
        p["sigma_prior_days"] / (max(last, 1) + p["sigma_prior_days"])
    )
    with np.errstate(invalid="ignore"):
        p_lb = null_p_value(np.abs(z_t - nearest_q), sigma_lb, pool.eps[loc_t], pool.nu[loc_t])
        value_ub = (
            np.abs(grid.price[today_rows, last] - np.exp(nearest_q) * keep_t)
            * (grid.units[today_rows, last])
        )
    maybe = known & (p_lb <= p["max_p_value"]) & (value_ub >= p["min_value_at_risk"])
    screened = today_rows[maybe]
    if not len(screened):
        return None

    rows = np.flatnonzero(np.isin(grid.product_id, grid.product_id[screened]))
    if pool.fit_all is not None:
        # Every series was fitted for the pools, pooled per product over all its rows: the
        # same fit as over these rows (all rows of their products), without a second pass.
        selected = np.zeros(grid.n_series, dtype=bool)
        selected[rows] = True
        level_fit = pool.fit_all.subset(selected)
    else:
        level_fit = _fit(grid, rows, log_reg, p)
    fit = _with_chain_levels(level_fit, grid, rows, points, p)
    judged = np.isin(rows, screened) & np.isfinite(fit.lo)
    rows, fit = rows[judged], fit.subset(judged)
    loc = grid.loc_index[rows]
    sigma = shrink_sigma(fit.sigma_own, fit.n_own, pool.sigma[loc], p["sigma_prior_days"])
    z = z_now[rows]
    nearest = np.clip(z, fit.lo, fit.hi)
    d = np.abs(z - nearest)
    keep_frac = 1.0 - np.clip(disc_now[rows], 0.0, 99.0) / 100.0
    expected = np.exp(nearest) * keep_frac
    # Penny rounding at the price charged adds noise a steady price's clusters cannot show.
    sigma_now = np.sqrt(sigma**2 + rounding_sd(np.log(expected)) ** 2)
    pv = null_p_value(d, sigma_now, pool.eps[loc], pool.nu[loc])
    realized = grid.price[rows, last]
    units = grid.units[rows, last]
    return _Judged(
        priced_per_loc=priced_per_loc,
        rows=rows,
        fit=fit,
        sigma=sigma_now,
        eps=pool.eps[loc],
        nu=pool.nu[loc],
        d=d,
        p_value=pv,
        high=z > fit.hi,
        expected=expected,
        realized=realized,
        units=units,
        value=np.abs(realized - expected) * units,
    )


def _fit(
    grid: Grid,
    rows: np.ndarray,
    log_reg: np.ndarray,
    p: dict[str, Any],
    history: np.ndarray | None = None,
) -> LevelFit:
    """``fit_levels`` of the series ``rows``, pooled per product among them (``history``:
    their ``_history`` when the caller has it)."""
    return fit_levels(
        _history(grid, rows) if history is None else history,
        log_reg[rows],
        gap=p["cluster_gap"],
        min_support=p["min_support"],
        persist_days=p["persist_days"],
        group=np.unique(grid.product_id[rows], return_inverse=True)[1],
    )


def _with_chain_levels(
    fit: LevelFit, grid: Grid, rows: np.ndarray, points: pd.DataFrame, p: dict[str, Any]
) -> LevelFit:
    """``fit`` of the series ``rows`` with each normal range widened to its product's
    chain-wide price points (``chain_hull`` over the grid's history days before ``as_of``)."""
    if points.empty or not len(rows):
        return fit
    products, inverse = np.unique(grid.product_id[rows], return_inverse=True)
    start = np.datetime64(grid.dates[0], "ns")
    end = np.datetime64(grid.as_of, "ns")
    c_lo, c_hi = chain_hull(
        points, products, start=start, end=end, gap=p["cluster_gap"], min_runs=p["chain_min_runs"]
    )
    return replace(fit, lo=np.fmin(fit.lo, c_lo[inverse]), hi=np.fmax(fit.hi, c_hi[inverse]))


class _Pool:
    """Per-location (L,) noise SD ``sigma``, benign-deviation rate ``eps`` and scale ``nu``."""

    def __init__(
        self,
        sigma: np.ndarray,
        eps: np.ndarray,
        nu: np.ndarray,
        fit_all: LevelFit | None = None,
    ):
        self.sigma, self.eps, self.nu = sigma, eps, nu
        # The level fit of every series, when the pools were fitted on all of them.
        self.fit_all = fit_all


def _fit_pool(
    grid: Grid, rows: np.ndarray, log_reg: np.ndarray, p: dict[str, Any], history: np.ndarray
) -> _Pool:
    """The location pools fitted on the sample ``rows`` (see ``_judge_today``; ``history``:
    their ``_history``)."""
    n_loc = len(grid.location_ids)
    fit = _fit(grid, rows, log_reg, p, history)
    fit_all = fit if len(rows) == grid.n_series else None
    known = np.isfinite(fit.lo)
    rows, fit = rows[known], fit.subset(known)
    loc = grid.loc_index[rows]
    sigma_pool = location_sigma(
        fit.sigma_own,
        fit.n_own,
        loc,
        n_loc,
        min_days=p["sigma_pool_min_days"],
        fallback=p["sigma_fallback"],
    )
    sigma = shrink_sigma(fit.sigma_own, fit.n_own, sigma_pool[loc], p["sigma_prior_days"])
    # A history day beyond noise_k σ (with penny rounding at the item's price) is a benign
    # deviation, or an anomaly: the pool fit is robust to the few of those.
    sigma_hist = np.sqrt(sigma**2 + rounding_sd(0.5 * (fit.lo + fit.hi)) ** 2)
    eps, nu = fit_deviation_pool(
        fit.hist_d,
        p["noise_k"] * sigma_hist,
        loc,
        n_loc,
        eps_prior=p["eps_prior"],
        nu_prior=p["nu_prior"],
        prior_days=p["eps_prior_days"],
        prior_excesses=p["nu_prior_excesses"],
        max_d=np.log(p["critical_ratio"]),
        sigma=sigma_hist,
        trim_p=p["max_p_value"],
    )
    return _Pool(sigma_pool, eps, nu, fit_all)


def _log_regular(grid: Grid) -> np.ndarray:
    """(S,) log regular price, NaN where unknown or not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_reg = np.log(grid.regular_price)
    return np.where(np.isfinite(log_reg), log_reg, np.nan)


def _history(grid: Grid, rows: np.ndarray) -> np.ndarray:
    """(len(rows), D-1) normalised log prices of the days before ``as_of`` with sales and no
    promotion (NaN otherwise): promotion days teach nothing about the ordinary price points,
    and a promotion not applied at the till for a few days must not become one."""
    last = grid.last
    ordinary = (grid.units[rows, :last] > 0) & ~grid.promo[rows, :last]
    return normalised_log_price(np.where(ordinary, grid.price[rows, :last], np.nan), 0.0)


def _run_starts(grid: Grid, j: _Judged, c: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """Grid column where each candidate's current run began: the first selling day after the
    last selling day that was not a candidate in the same direction (against today's levels)."""
    rows = j.rows[c]
    last = grid.last
    cols = np.arange(last)
    units = grid.units[rows, :last]
    z = normalised_log_price(
        np.where(units > 0, grid.price[rows, :last], np.nan), grid.discount_pct[rows, :last]
    )
    lo, hi = j.fit.lo[c][:, None], j.fit.hi[c][:, None]
    high = j.high[c][:, None]
    d = np.where(high, z - hi, lo - z)
    with np.errstate(invalid="ignore"):
        pv = null_p_value(
            np.maximum(d, 0.0), j.sigma[c][:, None], j.eps[c][:, None], j.nu[c][:, None]
        )
        same = (d > 0) & (pv <= p["max_p_value"])
    selling = (units > 0) & np.isfinite(z)
    last_break = np.where(selling & ~same, cols, -1).max(axis=1, initial=-1)
    start = np.where(same & (cols > last_break[:, None]), cols, last).min(axis=1, initial=last)
    return start


def _against(grid: Grid, j: _Judged, i: int, cur: str) -> str:
    """What the realized price of candidate ``i`` is compared with, in words."""
    row = j.rows[i]
    regular = grid.regular_price[row]
    disc = grid.discount_pct[row, grid.last]
    on_promo = bool(grid.promo[row, grid.last]) and disc > 0
    ref = j.expected[i]
    regular_level = np.isclose(ref / (1.0 - min(disc, 99.0) / 100.0), regular)
    if j.fit.n_levels[i] == 0 or (regular_level and np.isclose(j.fit.lo[i], j.fit.hi[i])):
        if on_promo:
            return f"the promotion price {money(ref, cur)} ({disc:.0f}% off {money(regular, cur)})"
        return f"the regular price {money(ref, cur)} with no promotion"
    which = "highest" if j.high[i] else "lowest"
    promo = f" after the promotion's {disc:.0f}% off" if on_promo else " with no promotion"
    return f"the {which} price it sells at, {money(ref, cur)}{promo}"


def _item_findings(data, grid, j, idx, start_col, tested_per_loc, p) -> pd.DataFrame:
    """Findings of the candidates ``idx`` (indices into ``j``'s rows)."""
    if not len(idx):
        return _with_tests(empty_findings(), [], [])
    rows = j.rows[idx]
    last = grid.last
    ratio = j.realized[idx] / j.expected[idx]
    value = j.value[idx]
    severity = np.where(
        (ratio >= p["critical_ratio"])
        | (ratio <= 1.0 / p["critical_ratio"])
        | (value >= p["critical_value"]),
        "critical",
        "warning",
    )
    cur = data.currency
    explanations, details = [], []
    for k, i in enumerate(idx):
        row = rows[k]
        against = _against(grid, j, i, cur)
        r = ratio[k]
        if r >= 1:
            how, impact = f"{r:,.1f} times {against}", "overcharged"
        else:
            how, impact = f"{1 - r:.0%} below {against}", "not charged"
        s = start_col[k]
        days = int((grid.units[row, s : last + 1] > 0).sum())
        since = f" (anomalous on {days} selling days since {fmt_date(grid.dates[s])})"
        explanations.append(
            f"Sold {fmt_count(j.units[i])} at {money(j.realized[i], cur)} each, "
            f"{how}; {money(value[k], cur)} {impact}" + (since if days > 1 else "") + "."
        )
        details.append(
            {
                "realized_price": round(float(j.realized[i]), 4),
                "reference_price": round(float(j.expected[i]), 4),
                "regular_price": round(float(grid.regular_price[row]), 4),
                "usual_prices": [
                    round(float(np.exp(j.fit.lo[i])), 4),
                    round(float(np.exp(j.fit.hi[i])), 4),
                ],
                "price_levels": int(j.fit.n_levels[i]),
                "ratio": round(float(r), 4),
                "noise_sd_log": round(float(j.sigma[i]), 4),
                "benign_rate": round(float(j.eps[i]), 4),
                "benign_scale_log": round(float(j.nu[i]), 4),
                "p_value": float(j.p_value[i]),
                "units_sold": int(j.units[i]),
                "on_promotion": bool(grid.promo[row, last]),
                "discount_pct": float(grid.discount_pct[row, last]),
                "selling_days_in_run": days,
            }
        )
    found = make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE] * len(idx),
            "product_id": grid.product_id[rows],
            "location_id": grid.location_id[rows],
            "start_date": grid.dates[start_col],
            "end_date": [grid.as_of] * len(idx),
            "severity": severity,
            "score": np.abs(np.log2(np.maximum(ratio, 1e-9))),
            "expected_value": j.expected[idx],
            "actual_value": j.realized[idx],
            "value_at_risk": value,
            "explanation": explanations,
            "details": details,
        }
    )
    return _with_tests(found, j.p_value[idx], tested_per_loc[grid.loc_index[rows]])


def _group_finding(data, grid, j, members, starts, li, direction, tests, p) -> pd.DataFrame:
    """One store-level finding for the candidates ``members`` of location ``li``."""
    from scipy.stats import binom

    cur = data.currency
    sku = data.products["sku"] if "sku" in data.products else pd.Series(dtype=object)
    top = members[np.argsort(-j.value[members])][:3]
    names = ", ".join(
        f"{sku.get(int(grid.product_id[j.rows[i]]), grid.product_id[j.rows[i]])} "
        f"{money(j.value[i], cur)}"
        for i in top
    )
    total = float(j.value[members].sum())
    if direction == "high":
        what = "above every price they usually sell at"
        impact, cause = "more than", "a price file loaded wrongly?"
    else:
        what = "below every price they usually sell at"
        impact, cause = "less than", "a markdown or sale missing from the promotions list?"
    n = len(members)
    tested = int(tests) - 2
    pv = float(binom.sf(n - 1, tested, p["max_p_value"]))
    start = grid.dates[int(starts.min())]
    found = make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE],
            "product_id": [pd.NA],
            "location_id": [grid.location_ids[li]],
            "start_date": [start],
            "end_date": [grid.as_of],
            "severity": ["warning"],
            "score": [float(n)],
            "expected_value": [0.0],
            "actual_value": [float(n)],
            "value_at_risk": [total],
            "explanation": [
                f"{n:,} items sold {what} with no promotion to explain it "
                f"({money(total, cur)} {impact} their usual prices; largest: {names}): {cause}"
            ],
            "details": [
                {
                    "direction": direction,
                    "items": n,
                    "items_tested": tested,
                    "value": round(total, 2),
                    "p_value": pv,
                    "product_ids": [int(grid.product_id[j.rows[i]]) for i in members],
                    "since": start.date().isoformat(),
                }
            ],
        }
    )
    return _with_tests(found, [pv], [tests])


def _with_tests(found: pd.DataFrame, p_value, tests) -> pd.DataFrame:
    """``found`` with the ``p_value`` (float64) and ``tests`` (int64) columns."""
    return found.assign(
        p_value=np.asarray(p_value, dtype="float64"), tests=np.asarray(tests, dtype="int64")
    )
