"""Demand spikes and drops: units sold far from the weekday's expected level.

Method. Expected units ``mu`` come from ``demand_model.fit_demand`` over the ``baseline_days``
before the day(s) tested (weekday-adjusted winsorised rate x the series' weekday factor,
shrunk toward the location's; promotion, event, closed and sold-out days excluded), with an
NB2 dispersion per series.

- **Spike** over the last 1, 2 or 3 days (``spike_max_window_days``) ending on ``as_of``
  (SKU/locations with their own history). The baseline is fitted on the days before the
  scanned ones (``spike_winsor_mult``: a looser cap, so that heavy-tailed items keep an
  unbiased mean). Expected units per day are the weekday level raised on promotion days
  (the location's uplift) and on calendar-event days (the location's event uplift, estimated
  like a promotion's); such days also get the extra dispersion of that uplift
  (``demand_model.cells_uplift``), so a promotion or event raises the expectation instead
  of being flagged. Each day is NB2 with the series' dispersion from ``nb_counts.
  eb_dispersion`` over ``spike_dispersion_days`` (past spikes trimmed by deletion
  residuals, shrunk toward the location's velocity band by empirical Bayes), taken one
  posterior SD up. The rate is a mean of ``n`` days, so the window's variance gains
  ``M² (alpha + 1/mean) / n`` (the gamma posterior of the rate, to second order). A window
  qualifies when every day of it is above expectation; its p is the upper tail of the window
  sum under the NB with the window's mean ``M`` and variance (``nb_counts.
  nb_sum_upper_tail``); the series' ``p_value`` is the smallest over the windows times the
  number of windows (Bonferroni, capped at 1). Candidates are reported from
  ``spike_report_p`` for the run's false-discovery control to judge, with sanity floors
  (``spike_z`` on the window sum's z; ``spike_ratio`` x and ``spike_min_excess_units``
  above a reference that counts each day at least at the item's median selling day, so
  items bought by the case are judged against a usual order). ``tests`` = the number of
  series tested at the location (own history and open, or cold-start testable).
- **Cold-start spike** (fewer than ``min_history_days`` usable days or ``min_sales_days``
  selling days of own history, e.g. a product's first sale): compared with the location's
  population of daily units per selling SKU-day, flagged when
  ``x > max(cold_start_multiple x p99.9, cold_start_min_units)``. A new product's ordinary
  first day is far below that; an 80,995-unit order is not. Its ``p_value`` assumes a
  Pareto tail of index 1 beyond the quantile, ``(1 - q) x quantile / x`` (a heavier tail
  than order sizes show, so conservative). Locations with fewer than
  ``cold_start_min_population`` SKU-days use the pool of all locations.
- **Drop**: the current run of "low" days ending at ``as_of`` (each selling at most
  ``drop_max_ratio`` of its expected units; closed, event and post-promotion days neither
  count nor break the run; a stockout day breaks it; at most ``drop_max_run_days``), tested as
  a whole after refitting the baseline on the days before the run: flagged when the run was
  expected to sell at least ``drop_min_expected_units``, sold at most ``drop_max_ratio`` of
  that, and the probability of selling so little is below ``drop_max_p`` (NB2 moment-matched
  to the run's sum, and never below the item's own share of zero days raised to the run's
  length, which keeps lumpy items quiet). Promotion days are measured against the ordinary
  level. Not when the book stock shows the item sold out or started the day empty (a
  stockout), and not for a run with no sale at all while stock is on the books (that is a
  zero run, which ``ghost_stock`` judges, so one empty shelf is not reported twice).

Inputs: ``data.sales``, ``data.products`` (regular price), ``data.promotions``,
``data.calendar``; ``data.stock`` and ``data.receipts`` optional (to recognise stockouts).
Output: findings frame (``base.FINDING_COLUMNS``), one row per flagged SKU/location.
Spike: ``start_date`` = first day of the chosen window (cold start: ``as_of``),
``end_date = as_of``, ``expected_value``/``actual_value`` = expected/sold units over the window
(cold start: the location's median daily units per item), ``score`` = z of the window sum
(cold start: multiple of the population p99.9), ``value_at_risk`` = excess units x regular
price.
Drop: ``start_date`` = first day of the run (stable while the run lasts), ``end_date`` =
``as_of``, values over the run, ``score`` = -log10 tail probability, ``value_at_risk`` =
missing units x regular price.
Every finding carries ``p_value`` (float64, before multiple-testing correction) and ``tests``
(int64, the family size at its location); a drop's ``p_value`` is its run's tail probability.
Severity: spike info above ``warning_p`` (a weak candidate, whatever its value), else
warning; critical from ``critical_p`` (cold start: twice the multiple) when worth at least
``minor_value``, or from ``critical_value``. Drop: warning; critical from a tail
probability below ``drop_max_p / 100`` when worth ``minor_value``, or from ``critical_value``.

References: Kulldorff 1997 (scan statistics over windows), Efron & Morris 1975 (empirical
Bayes), Cameron & Trivedi (NB2), Atkinson & Riani 2000 (deletion residuals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .arrays import days_after, longest_run
from .base import DetectionInput, empty_findings, make_findings
from .demand_model import (
    DISPERSION_BAND_EDGES,
    DISPERSION_DEFAULT,
    DISPERSION_WINSOR_FACTOR,
    EVENT_UPLIFT_DEFAULT,
    EVENT_UPLIFT_MAX,
    PROMO_UPLIFT_DEFAULT,
    PROMO_UPLIFT_MAX,
    DemandModel,
    WindowBand,
    as_of_baseline,
    cells_uplift,
    fit_demand,
    log_p_no_sales,
    nb_log_p_zero,
)
from .formatting import WEEKDAY_NAMES, fmt_count, fmt_date, fmt_units, json_number, money
from .grid import Grid, build_grid, memoised, promotion_cells, stockout, usable_days
from .nb_counts import ALPHA_MAX, eb_dispersion, nb_sum_upper_tail

EMPTY_RUN_MIN_DAYS = 3
"""Zero-sales days (with book stock) a run needs before it can be judged an empty shelf:
``ghost_stock``'s ``min_zero_days``."""

DEFAULT_PARAMS: dict[str, Any] = {
    # Trailing calendar days before the as-of day used for the baseline.
    "baseline_days": 56,
    # Own history needed (usable days since the first sale, within the window) ...
    "min_history_days": 28,
    # ... and selling days in the window; with less, the cold-start rule applies.
    "min_sales_days": 5,
    # Daily units are capped at this multiple of the median selling-day quantity.
    "winsor_mult": 3.0,
    # Spike: windows of 1 to this many days ending on the as-of day are scanned.
    "spike_max_window_days": 3,
    # Candidates are reported from this p-value (after the Bonferroni factor over the
    # windows); the run's false-discovery control decides which are shown.
    "spike_report_p": 0.01,
    # The spike's baseline caps daily units at this multiple of the median selling day: the
    # looser cap keeps the mean of heavy-tailed items unbiased (3x cuts their natural bursts
    # and lowers the rate); past spikes are trimmed from the dispersion instead.
    "spike_winsor_mult": 8.0,
    # A zero-sales run with book stock on hand this improbable (ghost_stock's reporting
    # level) is an empty shelf, not demand: left out of the spike's baseline (0 keeps it).
    "spike_empty_run_p": 1e-4,
    # Days of history the spike's dispersion is estimated on (longer than the rate's window:
    # a dispersion drifts far more slowly than a level, and a heavy-tailed item needs months
    # of days before its own estimate is worth much).
    "spike_dispersion_days": 112,
    # Sanity floors on the window's units (z of the window sum; multiple of and excess over
    # the expected units, each day at least the item's median selling day).
    "spike_z": 3.0,
    "spike_ratio": 2.0,
    "spike_min_excess_units": 3.0,
    # Severity of a spike: critical from this p-value (when worth minor_value), info above
    # warning_p (a weak candidate).
    "critical_p": 1e-8,
    "warning_p": 1e-4,
    # Cold start: units > max(multiple x quantile of the location's daily SKU units, floor).
    "cold_start_quantile": 0.999,
    "cold_start_multiple": 5.0,
    "cold_start_min_units": 100.0,
    "cold_start_min_population": 500,
    # Drop: a run of days (ending today, at most drop_max_run_days long) on each of which
    # the item sold at most drop_max_ratio of the expected units; flagged when the run was
    # expected to sell at least drop_min_expected_units, sold at most drop_max_ratio of that,
    # and its NB tail probability is below drop_max_p.
    "drop_max_ratio": 0.5,
    "drop_max_run_days": 14,
    "drop_min_expected_units": 10.0,
    "drop_max_p": 1e-6,
    # Days after a promotion on which a drop is expected (customers stocked up).
    "post_promo_days": 3,
    # Severity: critical from this value at risk (money, spikes and drops).
    "critical_value": 1000.0,
    # Findings worth less than this (money) are at most warnings.
    "minor_value": 50.0,
}


def _spike_baseline(grid: Grid, p: dict[str, Any]) -> DemandModel:
    """The demand model on the usable days before the scanned windows, without the baseline's
    empty-shelf runs (``_spike_usable``; shared per grid)."""
    n_windows = int(p["spike_max_window_days"])
    key = ("spike_baseline", *_spike_key(p))

    def compute() -> DemandModel:
        before = grid.last - n_windows + 1
        return fit_demand(
            grid,
            _spike_usable(grid, p),
            before - 1,
            int(p["baseline_days"]),
            float(p["spike_winsor_mult"]),
        )

    return memoised(grid, key, compute)


def _spike_key(p: dict[str, Any]) -> tuple:
    return (
        int(p["spike_max_window_days"]),
        int(p["baseline_days"]),
        float(p["spike_winsor_mult"]),
        float(p["spike_empty_run_p"]),
    )


def _spike_usable(grid: Grid, p: dict[str, Any]) -> np.ndarray:
    """(S, D) the usable days before the scanned windows that show ordinary demand.

    ``usable_days`` less an empty shelf: each series' longest zero-sales run in the baseline
    (book stock on hand, at least ``EMPTY_RUN_MIN_DAYS``), when its probability under the
    demand fitted on the ``baseline_days`` before it started is below ``spike_empty_run_p``
    (the level at which ``ghost_stock`` reports one). Left in, such a run drags the rate down
    and inflates the dispersion, and the item's return to ordinary sales looks like a spike.
    A fit that includes the run would find it plausible, hence the fit before it. Shared per
    grid.
    """
    n_windows = int(p["spike_max_window_days"])

    def compute() -> np.ndarray:
        before = grid.last - n_windows + 1
        usable = usable_days(grid) & (np.arange(grid.n_days) < before)
        if grid.on_hand_ffill is None or p["spike_empty_run_p"] <= 0:
            return usable
        lo = max(before - int(p["baseline_days"]), 0)
        zero = (grid.units[:, lo:before] == 0) & (
            np.nan_to_num(grid.on_hand_ffill[:, lo:before]) > 0
        )
        start, length = longest_run(zero)
        length = np.where(length >= EMPTY_RUN_MIN_DAYS, length, 0)
        if not length.any():
            return usable
        end = np.where(length > 0, lo + start - 1, before - 1)
        prior = fit_demand(
            grid, usable_days(grid), end, int(p["baseline_days"]), float(p["spike_winsor_mult"])
        )
        offset = np.arange(before - lo)
        in_run = (offset >= start[:, None]) & (offset < (start + length)[:, None])
        cols = np.arange(lo, before)
        mu = np.nan_to_num(prior.rate)[:, None] * prior.weekday_factor[:, grid.weekday[cols]]
        counted = in_run & usable[:, lo:before] & (mu > 0)
        log_p = np.where(
            counted, nb_log_p_zero(np.maximum(mu, 1e-12), prior.dispersion[:, None]), 0.0
        ).sum(axis=1)
        out = usable.copy()
        out[:, lo:before] &= ~(in_run & (log_p < np.log(p["spike_empty_run_p"]))[:, None])
        return out

    return memoised(grid, ("spike_usable", *_spike_key(p)), compute)


@dataclass(frozen=True, eq=False)
class _Windows:
    """The scanned days (the last ``W`` columns) of every series and their null model."""

    cols: slice  # the W grid columns ending at as_of
    units: np.ndarray  # (S, W) sold
    expected: np.ndarray  # (S, W) expected units (weekday, promotion, calendar event)
    alpha: np.ndarray  # (S, W) NB2 dispersion of each day (extra on promotion/event days)
    rate_rel_var: np.ndarray  # (S,) relative variance of the estimated rate (Var r / r²)
    own_dispersion: np.ndarray  # (S,) the series' own dispersion estimate (NaN: none)
    trimmed_days: np.ndarray  # (S,) outlying baseline days left out of the dispersion
    dispersion: np.ndarray  # (S,) shrunk dispersion of an ordinary day


def _windows(grid: Grid, model: DemandModel, p: dict[str, Any]) -> _Windows:
    n_windows = int(p["spike_max_window_days"])
    first = grid.last - n_windows + 1
    cols = slice(first, grid.last + 1)
    usable = _spike_usable(grid, p)

    # Dispersion of ordinary days: empirical Bayes over the baseline window, pooled by
    # location and velocity band.
    band = WindowBand(first - 1, int(p["spike_dispersion_days"]), grid.n_days)
    rate = np.nan_to_num(model.rate)
    band_mu = rate[:, None] * band.weekday_values(model.weekday_factor, grid.weekday)
    velocity = np.searchsorted(DISPERSION_BAND_EDGES, rate)
    n_bands = len(DISPERSION_BAND_EDGES) + 1
    alpha, own, trimmed, alpha_sd = eb_dispersion(
        band.take(grid.units),
        band_mu,
        band.take(usable),
        DISPERSION_WINSOR_FACTOR * model.cap,
        grid.loc_index * n_bands + velocity,
        len(grid.location_ids) * n_bands,
        DISPERSION_DEFAULT,
    )

    # A tail probability is convex in alpha: at the point estimate it understates the
    # predictive tail of a short, heavy-tailed history. One posterior SD up is a conservative
    # stand-in for integrating over alpha (it costs fast movers nothing: their SD is small).
    alpha = np.minimum(alpha + np.nan_to_num(alpha_sd), ALPHA_MAX)

    # Promotions and calendar events raise the expectation (and its spread) rather than
    # being flagged; both are estimated on such days before the scanned ones.
    expected = model.expected(grid, cols)
    day_alpha = np.repeat(alpha[:, None], n_windows, axis=1)
    factor = model.weekday_factor
    sold_out = stockout(grid)
    rows, days = promotion_cells(grid)
    keep = days < first
    rows, days = rows[keep], days[keep]
    _, promo_alpha = cells_uplift(
        grid,
        rows,
        days,
        rate[rows] * factor[rows, grid.weekday[days]],
        PROMO_UPLIFT_MAX * model.cap,
        model.promo_uplift,
        prior=PROMO_UPLIFT_DEFAULT,
        max_uplift=PROMO_UPLIFT_MAX,
    )
    day_alpha += np.where(grid.promo[:, cols], promo_alpha[:, None], 0.0)
    event = grid.event[:, cols] & ~grid.closed[:, cols]
    if event.any():
        listed = np.arange(first) >= grid.first_sale[:, None]
        past = grid.event[:, :first] & ~grid.closed[:, :first] & ~sold_out[:, :first] & listed
        rows, days = np.nonzero(past)
        base = rate[rows] * factor[rows, grid.weekday[days]]
        on_promo = grid.promo[rows, days]
        base[on_promo] *= model.promo_uplift[rows[on_promo]]
        event_uplift, event_alpha = cells_uplift(
            grid,
            rows,
            days,
            base,
            EVENT_UPLIFT_MAX * model.cap,
            None,
            prior=EVENT_UPLIFT_DEFAULT,
            max_uplift=EVENT_UPLIFT_MAX,
        )
        expected = np.where(event, expected * event_uplift[:, None], expected)
        day_alpha += np.where(event, event_alpha[:, None], 0.0)

    # The rate is a mean of n days: its relative variance (alpha + 1/mean) / n widens the
    # predictive distribution (the NB's gamma-posterior mean, to second order).
    n = np.maximum(model.baseline_days, 1)
    with np.errstate(divide="ignore"):
        rate_rel_var = (alpha + 1.0 / np.maximum(model.window_mean, 1e-9)) / n
    return _Windows(
        cols=cols,
        units=grid.units[:, cols],
        expected=expected,
        alpha=day_alpha,
        rate_rel_var=rate_rel_var,
        own_dispersion=own,
        trimmed_days=trimmed,
        dispersion=alpha,
    )


def _scan(
    grid: Grid, model: DemandModel, win: _Windows, p: dict[str, Any], eligible: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Upper-tail p of the 1..W-day windows ending at ``as_of`` with every day above its
    expectation; the best window per series.

    Returns (S,) arrays: Bonferroni p over the ``W`` windows (1 where none qualifies), the
    chosen window's own tail probability, its length (0 if none), units, expected units and
    z.
    """
    n_series, n_windows = win.units.shape
    above = (win.units > win.expected) & ~grid.closed[:, win.cols]
    # Lumpy items (bought by the case on a few days) are judged against a usual selling day,
    # not against a daily average of 0.3.
    reference_day = np.fmax(win.expected, model.median_selling_units[:, None])
    best_p = np.ones(n_series)
    best_w = np.zeros(n_series, dtype=int)
    best = {k: np.zeros(n_series) for k in ("units", "expected", "z")}
    for w in range(1, n_windows + 1):
        days = slice(n_windows - w, n_windows)
        ok = eligible & above[:, days].all(axis=1)
        mu = win.expected[:, days]
        total, mean = win.units[:, days].sum(axis=1), mu.sum(axis=1)
        var = (mu + win.alpha[:, days] * mu**2).sum(axis=1) + mean**2 * win.rate_rel_var
        reference = reference_day[:, days].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (total - mean) / np.sqrt(var)
        ok &= (
            (z >= p["spike_z"])
            & (total >= p["spike_ratio"] * reference)
            & (total - reference >= p["spike_min_excess_units"])
        )
        rows = np.flatnonzero(ok)
        tail = np.ones(n_series)
        tail[rows] = nb_sum_upper_tail(total[rows], mean[rows], var[rows])
        # Strictly smaller: on a tie (both underflow to 0) the shorter window is kept.
        better = tail < best_p
        best_p = np.where(better, tail, best_p)
        best_w = np.where(better, w, best_w)
        for name, value in (("units", total), ("expected", mean), ("z", z)):
            best[name] = np.where(better, value, best[name])
    p_value = np.minimum(n_windows * best_p, 1.0)
    return p_value, best_p, best_w, best["units"], best["expected"], best["z"]


def detect_demand_spike(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag units sold in the 1-3 days up to ``as_of`` far above the expected level (module
    doc); findings carry ``p_value`` and ``tests``."""
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    n_windows = int(p["spike_max_window_days"])
    if grid.n_series == 0 or grid.n_days < n_windows + 1:
        return _no_findings()
    last = grid.last
    model = _spike_baseline(grid, p)
    x = grid.units[:, last]
    own_history = (
        np.isfinite(model.rate)
        & (model.baseline_days >= p["min_history_days"])
        & (model.baseline_sales_days >= p["min_sales_days"])
    )
    open_today = ~grid.closed[:, last]
    win = _windows(grid, model, p)
    p_own, tail_own, window_days, units, expected_own, z = _scan(
        grid, model, win, p, own_history & open_today
    )
    own = p_own <= p["spike_report_p"]

    # Cold start: the location's distribution of daily units per selling SKU-day before today.
    explained = grid.promo[:, last] | grid.event[:, last] | grid.closed[:, last]
    history = grid.units[:, :last]
    population = history > 0
    min_n = int(p["cold_start_min_population"])
    level = float(p["cold_start_quantile"])
    quantile, typical = grid.location_quantiles(history, population, (level, 0.5), min_n)
    threshold = np.maximum(p["cold_start_multiple"] * quantile, p["cold_start_min_units"])
    cold_testable = ~own_history & ~explained & np.isfinite(quantile)
    cold = cold_testable & (x > threshold)
    # Beyond the quantile, a Pareto tail of index 1 (Zipf-like order sizes, heavier than any
    # the data would suggest): P(X >= x) <= (1 - level) x quantile / x.
    with np.errstate(divide="ignore", invalid="ignore"):
        p_cold = np.minimum((1 - level) * quantile / np.maximum(x, 1), 1.0)
    tested = (own_history & open_today) | cold_testable
    tests = np.bincount(grid.loc_index, weights=tested, minlength=len(grid.location_ids))

    rows = np.flatnonzero(own | cold)
    if not len(rows):
        return _no_findings()
    is_cold = cold[rows] & ~own[rows]
    days = np.where(is_cold, 1, window_days[rows])
    sold = np.where(is_cold, x[rows], units[rows])
    expected = np.where(is_cold, typical[rows], expected_own[rows])
    p_value = np.where(is_cold, p_cold[rows], p_own[rows])
    price = _price(grid)[rows]
    excess = sold - expected
    value = excess * price
    score = np.where(is_cold, x[rows] / quantile[rows], z[rows])
    strong = np.where(is_cold, score >= 2 * p["cold_start_multiple"], p_value <= p["critical_p"])
    # A weak candidate stays info however much it is worth: the money says how much it would
    # matter, not whether it happened.
    clear = is_cold | (p_value <= p["warning_p"])
    severity = np.where(
        (strong & (value >= p["minor_value"])) | (clear & (value >= p["critical_value"])),
        "critical",
        np.where(clear, "warning", "info"),
    )
    start_cols = last - days + 1

    weekday = WEEKDAY_NAMES[grid.weekday[last]]
    returned = grid.returned[rows, last]
    explanations, details = [], []
    for i, row in enumerate(rows):
        if is_cold[i]:
            selling_days = int((grid.units[row, :last] > 0).sum())
            today = fmt_count(x[row])
            lead = (
                f"First sale of this item here: {today} in one day"
                if selling_days == 0
                else f"Only {selling_days} earlier selling days; {today} today"
            )
            text = (
                f"{lead}, {_times(score[i])} times the {level:.1%} level of daily units per item "
                f"at this location ({fmt_units(quantile[row])}); "
                f"{money(value[i], data.currency)} of goods"
            )
        else:
            multiple = _times(sold[i] / max(expected[i], 1e-9))
            when = (
                f"for a {weekday}"
                if days[i] == 1
                else f"over {days[i]} days since {fmt_date(grid.dates[start_cols[i]])}"
            )
            explained_by = _explained_by(grid, row, start_cols[i])
            text = (
                f"Sold {fmt_count(sold[i])}, {multiple} times the expected "
                f"{fmt_units(expected[i])} {when}{explained_by} (chance about 1 in "
                f"{_one_in(p_value[i])}); {fmt_count(excess[i])} extra "
                f"({money(value[i], data.currency)})"
            )
        if returned[i] >= 0.5 * x[row]:
            text += f"; {fmt_count(returned[i])} returned or cancelled the same day"
        explanations.append(text + ".")
        details.append(
            {
                "rule": "cold_start" if is_cold[i] else "own_history",
                "window_days": int(days[i]),
                "units_sold": int(sold[i]),
                "units_sold_today": int(x[row]),
                "units_returned": int(returned[i]),
                "expected_units": round(float(expected[i]), 3),
                "z": json_number(score[i] if not is_cold[i] else np.nan, 2),
                "p_value": float(p_value[i]),
                "window_tail": None if is_cold[i] else float(tail_own[row]),
                "dispersion": json_number(win.dispersion[row], 3),
                "own_dispersion": json_number(win.own_dispersion[row], 3),
                "trimmed_baseline_days": int(win.trimmed_days[row]),
                "population_quantile_units": round(float(quantile[row]), 1) if is_cold[i] else None,
                "threshold_units": round(float(threshold[row]), 1) if is_cold[i] else None,
                "weekday": weekday,
                "unit_price": round(float(price[i]), 4),
            }
        )
    found = _findings(
        "demand_spike",
        grid,
        rows,
        severity,
        score,
        expected,
        sold,
        value,
        explanations,
        details,
        start_cols=start_cols,
    )
    return _with_tests(found, p_value, tests[grid.loc_index[rows]])


def _explained_by(grid: Grid, row: int, start_col: int) -> str:
    """ " (promotion and calendar-event days at their raised level)" where the window had any."""
    cols = slice(start_col, grid.last + 1)
    what = [
        name
        for name, mask in (("promotion", grid.promo), ("calendar-event", grid.event))
        if mask[row, cols].any()
    ]
    return f" ({' and '.join(what)} days at their raised level)" if what else ""


def _no_findings() -> pd.DataFrame:
    return _with_tests(empty_findings(), np.zeros(0), np.zeros(0, dtype=int))


def _with_tests(found: pd.DataFrame, p_value: np.ndarray, tests: np.ndarray) -> pd.DataFrame:
    """The findings frame with the issue-11 columns ``p_value`` (float64) and ``tests``
    (int64)."""
    return found.assign(
        p_value=np.asarray(p_value, dtype="float64"), tests=np.asarray(tests).astype("int64")
    )


def detect_demand_drop(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag a run of days up to ``as_of`` selling far below the expected level (module doc)."""
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    if grid.n_series == 0 or grid.n_days < 2:
        return _no_findings()
    last = grid.last
    cols = np.arange(grid.n_days)
    ratio = float(p["drop_max_ratio"])
    max_run = int(p["drop_max_run_days"])
    # A run is at most max_run days long, so only the trailing columns matter: a break before
    # them leaves the run starting at their second column. ``recent`` holds those columns.
    first = max(last - max_run, 0)
    recent = slice(first, last + 1)
    sold_out = stockout(grid)[:, recent]
    if grid.on_hand_ffill is not None:
        # Empty in the morning (and nothing received) is a stockout too.
        ffill = grid.on_hand_ffill
        before = (
            ffill[:, first - 1 : last]
            if first
            else np.concatenate([ffill[:, :1], ffill[:, :last]], axis=1)
        )
        sold_out = sold_out | (before + grid.receipts[:, recent] <= 0)
    # Days that neither count nor break a run: the calendar or a promotion explains them.
    post_promo = int(p["post_promo_days"])
    lookback = max(first - post_promo, 0)
    neutral = (
        grid.closed[:, recent]
        | grid.event[:, recent]
        | days_after(grid.promo[:, lookback : last + 1], post_promo)[:, first - lookback :]
    )

    # 1. Find the current run of low days with a provisional baseline that ends yesterday.
    provisional = as_of_baseline(grid, int(p["baseline_days"]), float(p["winsor_mult"]))
    mu_all = np.nan_to_num(_without_uplift(grid, provisional, recent))
    low = (grid.units[:, recent] <= ratio * mu_all) & (mu_all > 0) & ~neutral & ~sold_out
    breaker = ~low & ~neutral
    last_break = np.where(breaker, cols[recent], -1).max(axis=1)
    run_start = np.maximum(last_break + 1, last - max_run + 1)
    candidate = low[:, -1]
    if not candidate.any():
        return _no_findings()

    # 2. Refit on the days before the run, so the drop cannot lower its own baseline.
    usable = usable_days(grid) & (cols < run_start[:, None])
    model = fit_demand(
        grid, usable, run_start - 1, int(p["baseline_days"]), float(p["winsor_mult"])
    )
    in_run = (cols[recent] >= run_start[:, None]) & ~neutral & ~sold_out
    mu = np.where(in_run, np.nan_to_num(_without_uplift(grid, model, recent)), 0.0)
    units = np.where(in_run, grid.units[:, recent], 0.0)
    expected, sold = mu.sum(axis=1), units.sum(axis=1)
    own_history = (
        np.isfinite(model.rate)
        & (model.baseline_days >= p["min_history_days"])
        & (model.baseline_sales_days >= p["min_sales_days"])
    )
    candidate &= (
        own_history & (expected >= p["drop_min_expected_units"]) & (sold <= ratio * expected)
    )
    if grid.on_hand_ffill is not None:
        # Nothing sold at all with stock on the books is a zero run: ghost_stock judges
        # those, so the same empty shelf is not reported twice.
        candidate &= ~((sold == 0) & (grid.on_hand_ffill[:, last] > 0))
    rows = np.flatnonzero(candidate)
    if not len(rows):
        return _no_findings()
    # The run's total under NB2, moment-matched: mean sum(mu), variance sum(mu + alpha mu^2).
    alpha = model.dispersion[rows]
    variance = (mu[rows] + alpha[:, None] * mu[rows] ** 2).sum(axis=1)
    alpha_sum = np.maximum((variance - expected[rows]) / expected[rows] ** 2, 1e-6)
    tail = _nb_tail(sold[rows], expected[rows], alpha_sum, upper=False)
    # P(sum <= sold) >= P(no sale at all), which the item's own zero days may make likelier
    # than the NB does (lumpy items).
    tail = np.maximum(tail, np.exp(log_p_no_sales(model, mu, in_run)[rows]))
    keep = tail < p["drop_max_p"]
    rows, tail = rows[keep], tail[keep]
    if not len(rows):
        return _no_findings()

    days = in_run[rows].sum(axis=1)
    missing = expected[rows] - sold[rows]
    price = _price(grid)[rows]
    value = missing * price
    score = -np.log10(np.maximum(tail, 1e-300))
    severity = np.where(
        ((tail < p["drop_max_p"] / 100) & (value >= p["minor_value"]))
        | (value >= p["critical_value"]),
        "critical",
        "warning",
    )
    weekday = WEEKDAY_NAMES[grid.weekday[last]]
    explanations, details = [], []
    for i, row in enumerate(rows):
        when = (
            f"on this {weekday}"
            if days[i] == 1
            else f"over {days[i]} days since {fmt_date(grid.dates[run_start[row]])}"
        )
        promo = (
            " (promotion days counted at the ordinary level)"
            if (in_run[row] & grid.promo[row, recent]).any()
            else ""
        )
        text = (
            f"Sold {fmt_count(sold[row])} {when}, "
            f"{1 - sold[row] / expected[row]:.0%} below the expected "
            f"{fmt_units(expected[row])}{promo} (chance about 1 in {_one_in(tail[i])}); "
            f"{fmt_count(missing[i])} short ({money(value[i], data.currency)})"
        )
        on_hand = None
        if grid.on_hand_ffill is not None and np.isfinite(grid.on_hand_ffill[row, last]):
            on_hand = int(grid.on_hand_ffill[row, last])
            text += f" with {fmt_units(on_hand)} on hand"
        explanations.append(text + ".")
        details.append(
            {
                "run_days": int(days[i]),
                "units_sold": int(sold[row]),
                "expected_units": round(float(expected[row]), 3),
                "units_sold_today": int(grid.units[row, last]),
                "expected_units_today": round(float(mu[row, -1]), 3),
                "p_tail": float(tail[i]),
                "dispersion": round(float(model.dispersion[row]), 3),
                "on_hand": on_hand,
                "unit_price": round(float(price[i]), 4),
            }
        )
    found = _findings(
        "demand_drop",
        grid,
        rows,
        severity,
        score,
        expected[rows],
        sold[rows],
        value,
        explanations,
        details,
        start_cols=run_start[rows],
    )
    # The family: every series with its own history at the location could have been tested.
    tests = np.bincount(grid.loc_index, weights=own_history, minlength=len(grid.location_ids))
    return _with_tests(found, tail, tests[grid.loc_index[rows]])


def _without_uplift(grid: Grid, model: DemandModel, cols: slice = slice(None)) -> np.ndarray:
    """(S, k) expected units on the ``cols`` with promotion days at the ordinary level.

    A drop on a promotion day is measured against the level without the promotion: the
    location's average uplift overstates it for items that respond weakly to promotions.
    """
    mu = model.expected(grid, cols)
    np.divide(mu, model.promo_uplift[:, None], out=mu, where=grid.promo[:, cols])
    return mu


def _price(grid: Grid) -> np.ndarray:
    """Regular price per series, the as-of realized price where unknown, else 0."""
    price = grid.regular_price
    return np.where(np.isfinite(price), price, np.nan_to_num(grid.price[:, grid.last]))


def _nb_tail(x: np.ndarray, mu: np.ndarray, alpha: np.ndarray, *, upper: bool) -> np.ndarray:
    """NB2 tail probability: ``P(X >= x)`` if ``upper`` else ``P(X <= x)``."""
    # Imported here, not at the top: scipy.stats takes about a second to import, and every
    # process that imports the registry (web workers, management commands) would pay it.
    from scipy import stats

    size = 1.0 / alpha
    prob = size / (size + mu)
    if upper:
        return stats.nbinom.sf(x - 1, size, prob)
    return stats.nbinom.cdf(x, size, prob)


def _times(ratio: float) -> str:
    """A multiple for an explanation: ``4.4`` below 10, ``332`` above."""
    return f"{ratio:,.1f}" if ratio < 10 else f"{ratio:,.0f}"


def _one_in(p: float) -> str:
    """``1e-5`` → ``"100,000"`` (rounded to two significant digits)."""
    n = 1.0 / max(p, 1e-300)
    if n >= 1e9:
        return f"{n:.0e}".replace("e+0", "e").replace("e+", "e")
    digits = max(int(np.floor(np.log10(n))) - 1, 0)
    return f"{round(n, -digits):,.0f}"


def _findings(
    anomaly_type: str,
    grid: Grid,
    rows: np.ndarray,
    severity: np.ndarray,
    score: np.ndarray,
    expected: np.ndarray,
    actual: np.ndarray,
    value: np.ndarray,
    explanations: list[str],
    details: list[dict],
    start_cols: np.ndarray | None = None,
) -> pd.DataFrame:
    n = len(rows)
    start = grid.dates[start_cols] if start_cols is not None else [grid.as_of] * n
    return make_findings(
        {
            "anomaly_type": [anomaly_type] * n,
            "product_id": grid.product_id[rows],
            "location_id": grid.location_id[rows],
            "start_date": start,
            "end_date": [grid.as_of] * n,
            "severity": severity,
            "score": score,
            "expected_value": expected,
            "actual_value": actual,
            "value_at_risk": value,
            "explanation": explanations,
            "details": details,
        }
    )
