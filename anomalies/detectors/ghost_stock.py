"""Ghost stock (phantom inventory): book stock > 0 while sales stopped implausibly long.

Method: a zero-run test on point-of-sale data (the idea behind the out-of-stock detection of
Montoya & Gonzalez 2019, "A hidden Markov model to detect on-shelf out-of-stocks using
point-of-sale data", M&SOM), with negative-binomial demand:

1. For each SKU/location, the current zero run starts the day after its last sale and ends at
   ``as_of``. Only days that are open, free of calendar events and have book stock > 0 at the
   end of the day count as evidence (a closed day or a stockout explains a zero).
2. Expected demand on each evidence day comes from ``demand_model.fit_demand`` fitted on the
   ``baseline_days`` up to the last sale (the run itself is excluded, so the quiet days cannot
   lower the rate that judges them): weekday-adjusted winsorised rate x weekday factor x
   promotion uplift (a zero run during a promotion is more suspicious).
3. ``p0 = prod_d P(X_d = 0)`` under NB2, but never below the item's own share of zero days
   raised to the (demand-weighted) run length, so lumpy items that are bought on few days are
   judged by how often they really sell (``demand_model.log_p_no_sales``, a plug-in value).
   Where that is below ``min_p``, ``zero_run_law.log_p_zero_run`` recomputes it honestly: the
   rate's uncertainty integrated out (Gamma sampling distribution of the baseline rate), a
   dispersion read from the zero mass and shrunk toward the velocity band (heavy-tailed items
   have natural zero runs), and the share of zero days under its Beta posterior. The run is
   flagged when that ``p0 < min_p``; slow movers (0.05-0.5 units/day) get there only after
   weeks, fast movers after a few days. Items need ``min_history_days`` usable days and
   ``min_sales_days`` selling days of baseline, and ``min_zero_days`` evidence days.
   Units received during the run and never sold count like any other stock on the books:
   every day with book stock is evidence, including the days after a delivery that ended a
   stockout.
   Not ghost stock: book stock no larger than the phantom units of a receipt posted twice
   (``benign_law.phantom_units`` over ``duplicate_lookback_days``); ``inventory_discrepancy``
   reports the duplicate.
4. Severity: ``1 - p0 x (items tested today at the location)`` (Bonferroni) through
   ``base.severity_from_probability``, one level up from ``critical_value_at_risk`` and at
   most a warning below ``minor_value``.

Inputs: ``data.stock`` (required), ``data.sales``, ``data.products`` (regular price),
``data.promotions``, ``data.calendar``, ``data.receipts`` (noted in the explanation).
Output: findings frame (``base.FINDING_COLUMNS``), one row per flagged SKU/location with
``start_date`` = day after the last sale (stable across daily runs), ``end_date`` = ``as_of``;
``expected_value`` = units expected over the evidence days, ``actual_value`` = 0,
``score`` = -log10(p0), ``value_at_risk`` = on_hand x regular price; plus ``p_value`` (float64,
p0 before any multiplicity correction) and ``tests`` (int64, items tested at that location).
Raises ``base.MissingInput`` when no book stock was imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import benign_law, zero_run_law
from .base import (
    DetectionInput,
    MissingInput,
    empty_findings,
    make_findings,
    raise_severity,
    severity_from_probability,
)
from .demand_model import DemandModel, fit_demand, log_p_no_sales
from .formatting import fmt_count, fmt_date, fmt_units, money
from .grid import Grid, build_grid, memoised, usable_days

ANOMALY_TYPE = "ghost_stock"

DEFAULT_PARAMS: dict[str, Any] = {
    # Trailing calendar days before the zero run used to estimate the demand rate.
    "baseline_days": 56,
    # Usable (open, in stock, no promotion) days needed in that window since the first sale.
    "min_history_days": 28,
    # Days with a sale needed in that window: below that the rate is too uncertain.
    "min_sales_days": 5,
    # Evidence days (open, in stock, no sale) needed before anything is flagged.
    "min_zero_days": 3,
    # Probability of the zero run under ordinary demand below which it is flagged.
    "min_p": 1e-4,
    # Daily units are capped at this multiple of the median selling-day quantity.
    "winsor_mult": 3.0,
    # Stock value (shelf price) from which a warning becomes critical and an info a warning ...
    "critical_value_at_risk": 250.0,
    # ... and below which a finding is at most a warning.
    "minor_value": 50.0,
    # Book units a recognised duplicate receipt put on the books within this many days are
    # phantom units of an inventory discrepancy, not ghost stock.
    "duplicate_lookback_days": 120,
}


@dataclass(frozen=True, eq=False)
class ZeroRun:
    """The current zero-sales run of every series and how improbable it is (shapes (S,) or
    (S, D)); see steps 1-3 of the module docstring."""

    last_sale: np.ndarray  # (S,) column of the last sale, -1 if none
    model: DemandModel  # fitted on the baseline up to the last sale
    evidence: np.ndarray  # (S, D) bool: open, no event, book stock > 0, after the last sale
    mu: np.ndarray  # (S, D) expected units on evidence days, 0 elsewhere
    log_p0: np.ndarray  # (S,) natural log of the probability of the run
    zero_days: np.ndarray  # (S,) evidence days in the run
    testable: np.ndarray  # (S,) bool: enough history and evidence days to judge the run


def zero_run_test(grid: Grid, p: dict[str, Any]) -> ZeroRun | None:
    """Judge the current zero-sales run of every series (``p``: this module's parameters).

    Returns ``None`` when no series has a run (every item sold today or never sold). Used by
    this detector and by ``inventory_discrepancy`` (a write-down ending an improbable zero run
    is the count that found the ghost stock, not a new discrepancy), which share the result
    (``memoised``).
    """
    key = ("zero_run_test", *(p[name] for name in _ZERO_RUN_PARAMS))
    return memoised(grid, key, lambda: _zero_run_test(grid, p))


# The parameters ``zero_run_test`` depends on.
_ZERO_RUN_PARAMS = (
    "baseline_days",
    "winsor_mult",
    "min_history_days",
    "min_sales_days",
    "min_zero_days",
)


def _zero_run_test(grid: Grid, p: dict[str, Any]) -> ZeroRun | None:
    last = grid.last
    cols = np.arange(grid.n_days)
    selling = grid.units > 0
    last_sale = np.where(selling.any(axis=1), last - selling[:, ::-1].argmax(axis=1), -1)
    candidate = (last_sale >= 0) & (last_sale < last)
    if not candidate.any() or grid.on_hand_ffill is None:
        return None
    usable = usable_days(grid)
    model = fit_demand(grid, usable, last_sale, int(p["baseline_days"]), float(p["winsor_mult"]))
    in_run = cols > last_sale[:, None]
    evidence = in_run & ~grid.closed & ~grid.event & (grid.on_hand_ffill > 0)
    # Expected units on the evidence days only (runs are short next to the grid).
    mu = np.zeros(evidence.shape)
    rows, days = np.nonzero(evidence)
    mu[rows, days] = np.nan_to_num(model.expected_at(grid, rows, days))
    log_p0 = log_p_no_sales(model, mu, evidence)
    zero_days = evidence.sum(axis=1)
    testable = (
        candidate
        & np.isfinite(model.rate)
        & (model.baseline_days >= p["min_history_days"])
        & (model.baseline_sales_days >= p["min_sales_days"])
        & (zero_days >= p["min_zero_days"])
    )
    return ZeroRun(last_sale, model, evidence, mu, log_p0, zero_days, testable)


def detect_ghost_stock(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag SKU/locations with book stock but no sales for implausibly long (see module doc)."""
    if data.stock is None or data.stock.empty:
        raise MissingInput("Ghost-stock detection needs book stock; none was imported.")
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    if grid.n_series == 0 or grid.on_hand_ffill is None:
        return _with_tests(empty_findings(), [], [])

    last = grid.last
    on_hand_now = grid.on_hand_ffill[:, last]
    run = zero_run_test(grid, p)
    if run is None:
        return _with_tests(empty_findings(), [], [])
    last_sale, model, mu, log_p0, zero_days = (
        run.last_sale,
        run.model,
        run.mu,
        run.log_p0,
        run.zero_days,
    )
    in_run = np.arange(grid.n_days) > last_sale[:, None]
    evidence = run.evidence
    eligible = run.testable & (on_hand_now > 0)
    # Phantom units of a receipt posted twice explain the book stock: a discrepancy, reported
    # by inventory_discrepancy, not ghost stock.
    phantom = benign_law.phantom_units(grid, int(p["duplicate_lookback_days"]))
    eligible &= ~((phantom > 0) & (on_hand_now <= phantom))
    # The plug-in p0 is a lower bound of the integrated one (the zero-run probability is
    # log-convex in the rate, and the robust dispersion is never smaller): integrate only
    # where the plug-in one is small enough to matter.
    flagged = eligible & (log_p0 < np.log(p["min_p"]))
    log_p0 = log_p0.copy()
    rows = np.flatnonzero(flagged)
    log_p0[rows] = zero_run_law.log_p_zero_run(model, grid.loc_index, rows, mu, evidence)
    flagged[rows] = log_p0[rows] < np.log(p["min_p"])
    rows = np.flatnonzero(flagged)
    if not len(rows):
        return _with_tests(empty_findings(), [], [])

    p0 = np.exp(log_p0[rows])
    # Bonferroni over the SKUs tested today at the same location: the chance that any of the
    # store's items shows such a run by luck. That, not the per-item p0, is how sure we are
    # that this one is real. Per location (not per input), so a store's severities do not
    # depend on which other stores are detected with it (detection runs in chunks of stores).
    tested = np.bincount(grid.loc_index[eligible], minlength=len(grid.location_ids))
    probability = 1.0 - np.minimum(1.0, p0 * np.maximum(tested[grid.loc_index[rows]], 1))
    price = np.nan_to_num(grid.regular_price[rows])
    on_hand = on_hand_now[rows]
    value = on_hand * price
    severity = raise_severity(
        severity_from_probability(probability), value >= p["critical_value_at_risk"]
    )
    severity = np.where((value < p["minor_value"]) & (severity == "critical"), "warning", severity)
    robust_alpha = zero_run_law.zero_dispersion(model, grid.loc_index, rows)[0]
    expected_total = mu[rows].sum(axis=1)
    promo_days = (evidence & grid.promo)[rows].sum(axis=1)
    received = np.where(in_run[rows], grid.receipts[rows], 0.0).sum(axis=1)
    start_dates = grid.dates[last_sale[rows] + 1]
    last_sale_dates = grid.dates[last_sale[rows]]

    explanations, details = [], []
    for i, row in enumerate(rows):
        days = int(zero_days[row])
        per_day = expected_total[i] / days
        text = (
            f"No sales for {days} days (since {fmt_date(start_dates[i])}) although "
            f"{fmt_units(per_day)} units/day were expected "
            f"({fmt_units(expected_total[i])} in total"
            + (f", {promo_days[i]} days on promotion" if promo_days[i] else "")
            + f"); {fmt_count(on_hand[i])} on hand "
            f"({money(value[i], data.currency)} at risk)"
        )
        if received[i] > 0:
            text += f"; {fmt_count(received[i])} received since, none sold"
        explanations.append(text + ".")
        details.append(
            {
                "last_sale_date": last_sale_dates[i].date().isoformat(),
                "zero_days": days,
                "expected_units": round(float(expected_total[i]), 2),
                "expected_units_per_day": round(float(per_day), 3),
                "base_rate_per_day": round(float(model.rate[row]), 3),
                "dispersion": round(float(robust_alpha[i]), 3),
                "promotion_days": int(promo_days[i]),
                "p_zero_run": float(p0[i]),
                "probability": round(float(probability[i]), 4),
                "on_hand": int(on_hand[i]),
                "unit_price": float(price[i]),
                "units_received_in_run": int(received[i]),
            }
        )

    found = make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE] * len(rows),
            "product_id": grid.product_id[rows],
            "location_id": grid.location_id[rows],
            "start_date": start_dates,
            "end_date": [grid.as_of] * len(rows),
            "severity": severity,
            "score": -log_p0[rows] / np.log(10.0),
            "expected_value": expected_total,
            "actual_value": np.zeros(len(rows)),
            "value_at_risk": value,
            "explanation": explanations,
            "details": details,
        }
    )
    return _with_tests(found, p0, tested[grid.loc_index[rows]])


def _with_tests(found: pd.DataFrame, p_value, tests) -> pd.DataFrame:
    """``found`` with the ``p_value`` (float64) and ``tests`` (int64) columns."""
    return found.assign(
        p_value=np.asarray(p_value, dtype="float64"), tests=np.asarray(tests, dtype="int64")
    )
