"""Inventory discrepancies: book-stock changes that receipts, sales and returns do not explain,
judged against the series' own benign-correction law.

Method: exact stock reconciliation on the as-of day ``d`` (perpetual-inventory identity):

    unexplained = on_hand[d] - on_hand[d-1] - receipts[d] + units_sold[d] - returned[d]
                  - adjustments[d]

``adjustments`` are book corrections ShelfWatch recorded itself (a cycle count entered in the
admin or the API writes counted − book): they are explained, not discrepancies.

Returned units are taken to go back on the shelf (``returns_restock``, default true); set it
to false where returns are written off instead. Positive = stock appeared on the books (a
receipt posted twice, a count corrected upward); negative = stock vanished (shrinkage,
damage, an unrecorded transfer).

A residual is judged by how improbable it is as a routine count correction *of that series*
(``benign_law``): how often the series' book moves unexplained (events per day, shrunk toward
its location and velocity band) and how large such moves are at its volume (the size law
``|R| - 1 ~ Katz(a (1 + v)^beta)``, binomial to negative binomial, is fitted per location at
the book stock ``v`` the day's movements imply, as the benign group of a two-groups mixture
whose other group is the history's real discrepancies, so corrections that grow with the
stock held are learned, not tolerated by a constant, and past write-offs do not widen it).
``p_value = 2 x min(p_tail, p_equal)`` where ``p_tail = lambda x P(|R| >= r | benign)`` and
``p_equal = lambda x sum_q P(|R| = q | benign)`` over the receipt quantities ``q`` of the last
``benign_law.DUPLICATE_WINDOW_DAYS`` days that the residual equals (1 when none does); the
factor 2 pays for looking at both statistics (Bonferroni). Findings are reported at
``p_value <= max_p`` (candidates: false-discovery control over all detectors decides which
are shown) and, with ``family_alpha`` > 0, only where ``p_value x tests <= family_alpha``
(a Bonferroni stand-in when no false-discovery control runs).

A positive residual equal to a recent receipt's quantity is a **receipt posted twice**
(``details.subtype = "duplicate_receipt"``, ``details.receipt_date``).

Not a new discrepancy: a write-down to at most ``resolution_max_units`` that ends an
improbable zero-sales run (``ghost_stock.zero_run_test`` with ``p0 < ghost_resolution_max_p``).
That is the cycle count that found the ghost stock the other detector reported.

A store that recorded no sales at all on an open day while the book stock of at least
``outage_min_items`` items moved gets one location-level ``pos_outage`` finding instead of
one discrepancy per item; its p_value is the Poisson chance of that many benign corrections
on one day (``sum lambda`` over the store's items), ``tests`` = 1.

Needs a book-stock row for both ``d`` and ``d - 1`` (no reconciliation across gaps).

Inputs: ``data.stock`` (required), ``data.sales``, ``data.receipts``, ``data.adjustments``,
``data.products``.
Output: findings frame (``base.FINDING_COLUMNS``) with ``start_date = end_date = as_of``;
``expected_value`` = on_hand[d] implied by the movements, ``actual_value`` = on_hand[d],
``score`` = -log10(p_value), ``value_at_risk`` = |unexplained| x regular price; plus
``p_value`` (float64) and ``tests`` (int64: series reconciled today at the location).
Severity: ``1 - p_value x tests`` through ``base.severity_from_probability``, one level up
from ``critical_value``, info below ``info_value``.
Raises ``base.MissingInput`` when no book stock was imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import benign_law, ghost_stock
from .base import (
    DetectionInput,
    MissingInput,
    empty_findings,
    make_findings,
    raise_severity,
    severity_from_probability,
)
from .formatting import fmt_count, fmt_date, fmt_units, money
from .grid import Grid, build_grid

ANOMALY_TYPE = "inventory_discrepancy"
OUTAGE_TYPE = "pos_outage"
DUPLICATE_SUBTYPE = "duplicate_receipt"

DEFAULT_PARAMS: dict[str, Any] = {
    # Candidates are reported at p_value <= max_p (false-discovery control decides the rest).
    "max_p": 0.01,
    # > 0: report only where p_value x tests <= family_alpha (Bonferroni per location).
    "family_alpha": 0.0,
    # Returned units go back into stock.
    "returns_restock": True,
    # Severity thresholds (money at shelf price).
    "info_value": 10.0,
    "critical_value": 500.0,
    # A store with no sales recorded on an open day and at least this many items with
    # unexplained changes gets one location-level finding (sales data lost) instead.
    "outage_min_items": 3,
    # A write-down to at most resolution_max_units ending a zero-sales run this improbable is
    # the count that resolved ghost stock (0 disables).
    "ghost_resolution_max_p": 1e-2,
    "resolution_max_units": 2,
}


def detect_inventory_discrepancy(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag unexplained book-stock changes on ``as_of`` (see module doc)."""
    if data.stock is None or data.stock.empty:
        raise MissingInput("Inventory reconciliation needs book stock; none was imported.")
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    if grid.n_series == 0 or grid.on_hand is None or grid.n_days < 2:
        return _with_tests(empty_findings(), [], [])
    restock = bool(p["returns_restock"])
    d = grid.last
    now, before = grid.on_hand[:, d], grid.on_hand[:, d - 1]
    received, sold = grid.receipts[:, d], grid.units[:, d]
    unexplained = benign_law.residuals(grid, restock)[:, d]
    implied = now - unexplained
    reconciled = np.isfinite(unexplained)
    tests = np.bincount(grid.loc_index[reconciled], minlength=len(grid.location_ids))

    candidate = reconciled & (np.nan_to_num(unexplained) != 0)
    rows = np.flatnonzero(candidate)
    law = benign_law.fit_benign_law(grid, restock)
    u = unexplained[rows]
    p_tail = law.p_at_least(rows, np.abs(u), implied[rows])
    dup, lag = benign_law.duplicate_receipts(grid, restock)
    is_dup = dup[rows, d]
    # The chance that a benign correction equals one of the recent receipt quantities.
    p_equal = np.ones(len(rows))
    if is_dup.any():
        hits = np.zeros(len(rows))
        window = min(benign_law.DUPLICATE_WINDOW_DAYS, d)
        for k in range(window + 1):
            q = grid.receipts[rows, d - k]
            hits += np.where(q > 0, law.p_equal(rows, q, implied[rows]), 0.0)
        p_equal = np.where(is_dup, np.minimum(hits, 1.0), 1.0)
    p_value = np.minimum(1.0, 2.0 * np.minimum(p_tail, p_equal))
    keep = p_value <= p["max_p"]
    if p["family_alpha"] > 0:
        keep &= p_value * tests[grid.loc_index[rows]] <= p["family_alpha"]
    flagged = np.zeros(grid.n_series, dtype=bool)
    flagged[rows[keep]] = True
    p_all = np.ones(grid.n_series)
    p_all[rows] = p_value
    if p["ghost_resolution_max_p"] > 0 and flagged.any():
        flagged &= ~_ghost_resolution(grid, unexplained, now, p)

    # A store that recorded no sales at all on an open day while its book stock kept moving
    # lost its sales data (a till or feed outage): one location-level finding, not one per item.
    # Judged on every item whose book moved (not only those improbable one by one): many
    # ordinary-looking moves on one silent day are improbable together.
    silent = grid.location_silent[:, d] & ~grid.calendar_closed[:, d]
    moved = candidate & silent
    n_loc = len(grid.location_ids)
    per_location = np.bincount(grid.loc_index[moved], minlength=n_loc)
    outage_loc = per_location >= p["outage_min_items"]
    if outage_loc.any():
        outage_loc &= _outage_p_value(grid, law, reconciled, per_location) <= p["max_p"]
    outage = outage_loc[grid.loc_index]
    outages = _outage_findings(grid, moved & outage, unexplained, data.currency, law)
    rows = np.flatnonzero(flagged & ~outage)
    if not len(rows):
        return outages
    u = unexplained[rows]
    pv = p_all[rows]
    m = tests[grid.loc_index[rows]]
    is_dup = dup[rows, d]
    dup_lag = lag[rows, d]
    price = np.nan_to_num(grid.regular_price[rows])
    value = np.abs(u) * price
    probability = 1.0 - np.minimum(1.0, pv * np.maximum(m, 1))
    severity = raise_severity(severity_from_probability(probability), value >= p["critical_value"])
    severity = np.where(value < p["info_value"], "info", severity)
    explanations, details = [], []
    for i, row in enumerate(rows):
        written_off = now[row] == 0 and u[i] == -before[row] and not received[row]
        movements = f"received {fmt_units(received[row])}, sold {fmt_units(sold[row])}"
        if grid.returned[row, d]:
            movements += f", returned {fmt_units(grid.returned[row, d])}"
        detail = {
            "unexplained_units": int(u[i]),
            "on_hand_before": int(before[row]),
            "on_hand": int(now[row]),
            "received": int(received[row]),
            "sold": int(sold[row]),
            "returned": int(grid.returned[row, d]),
            "returns_restock": restock,
            "unit_price": float(price[i]),
            "p_value": float(pv[i]),
            "benign_events_per_day": round(float(law.rate[row]), 5),
            "benign_mean_size_units": round(
                float(1.0 + law.size_mean(np.array([row]), implied[row : row + 1])[0]), 2
            ),
        }
        if is_dup[i]:
            receipt_date = grid.dates[d - dup_lag[i]]
            detail["subtype"] = DUPLICATE_SUBTYPE
            detail["receipt_date"] = receipt_date.date().isoformat()
            explanations.append(
                f"{_book_move(before[row], now[row], implied[row], movements)}: "
                f"{fmt_count(u[i])} more than explained, exactly the {fmt_count(u[i])} received "
                f"on {fmt_date(receipt_date)}, a receipt posted twice? "
                f"{money(value[i], data.currency)} of stock only on the books."
            )
        else:
            explanations.append(
                f"{_book_move(before[row], now[row], implied[row], movements)}: "
                f"{fmt_count(abs(u[i]))} {'more' if u[i] > 0 else 'fewer'} than explained; "
                f"{money(value[i], data.currency)} unaccounted for"
                + (" (written down to 0: a stock count?)." if written_off else ".")
            )
        details.append(detail)
    found = make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE] * len(rows),
            "product_id": grid.product_id[rows],
            "location_id": grid.location_id[rows],
            "start_date": [grid.as_of] * len(rows),
            "end_date": [grid.as_of] * len(rows),
            "severity": severity,
            "score": -np.log10(np.maximum(pv, 1e-300)),
            "expected_value": implied[rows],
            "actual_value": now[rows],
            "value_at_risk": value,
            "explanation": explanations,
            "details": details,
        }
    )
    found = _with_tests(found, pv, m)
    return pd.concat([outages, found], ignore_index=True) if len(outages) else found


def _book_move(before: float, now: float, implied: float, movements: str) -> str:
    """What the book did and what the movements explain, each verb matching its own numbers:
    "Book stock fell by 1 unit (33 → 32); receipts, sales and returns explain 5 (received 0,
    sold 28)". (The unexplained part has its own sign: saying "rose by 27" of a book that
    went from 33 to 32 read as a contradiction.)"""
    change = now - before
    if change > 0:
        moved = f"rose by {fmt_count(change)}"
    elif change < 0:
        moved = f"fell by {fmt_count(-change)}"
    else:
        moved = "did not change"
    return (
        f"Book stock {moved} ({fmt_units(before)} → {fmt_units(now)}); receipts, sales and "
        f"returns explain {fmt_units(implied)} ({movements})"
    )


def _with_tests(found: pd.DataFrame, p_value, tests) -> pd.DataFrame:
    """``found`` with the ``p_value`` (float64) and ``tests`` (int64) columns."""
    return found.assign(
        p_value=np.asarray(p_value, dtype="float64"), tests=np.asarray(tests, dtype="int64")
    )


def _ghost_resolution(
    grid: Grid, unexplained: np.ndarray, now: np.ndarray, p: dict[str, Any]
) -> np.ndarray:
    """(S,) bool: today's write-down ends a zero-sales run that ghost-stock evidence explains."""
    write_down = (unexplained < 0) & (now <= p["resolution_max_units"])
    if not write_down.any():
        return write_down
    run = ghost_stock.zero_run_test(grid, ghost_stock.DEFAULT_PARAMS)
    if run is None:
        return np.zeros_like(write_down)
    return write_down & run.testable & (run.log_p0 < np.log(p["ghost_resolution_max_p"]))


def _outage_p_value(
    grid: Grid, law: benign_law.BenignLaw, reconciled: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """(L,) Poisson chance of at least ``items`` benign corrections at each store on one day
    (the sum of its reconciled items' benign rates)."""
    from scipy import special

    expected = np.bincount(
        grid.loc_index[reconciled], weights=law.rate[reconciled], minlength=len(grid.location_ids)
    )
    # P(N >= k) for N ~ Poisson(expected) is the regularised lower incomplete gamma P(k, .).
    return np.where(items >= 1, special.gammainc(np.maximum(items, 1), expected), 1.0)


def _outage_findings(
    grid: Grid,
    rows_mask: np.ndarray,
    unexplained: np.ndarray,
    currency: str,
    law: benign_law.BenignLaw,
) -> pd.DataFrame:
    """One location-level finding per store whose flagged items in ``rows_mask`` it owns.

    ``p_value``: Poisson chance of at least that many benign corrections at the store on one
    day (the sum of its reconciled items' benign rates); ``tests`` = 1 (one store-day).
    """
    rows = np.flatnonzero(rows_mask)
    if not len(rows):
        return _with_tests(empty_findings(), [], [])
    d = grid.last
    loc = grid.loc_index[rows]
    n_loc = len(grid.location_ids)
    units = np.bincount(loc, weights=unexplained[rows], minlength=n_loc)
    value = np.bincount(
        loc,
        weights=np.abs(unexplained[rows]) * np.nan_to_num(grid.regular_price[rows]),
        minlength=n_loc,
    )
    items = np.bincount(loc, minlength=n_loc)
    stocked = np.bincount(
        grid.loc_index, weights=(grid.on_hand[:, d - 1] > 0).astype(float), minlength=n_loc
    )
    locs = np.flatnonzero(items)
    p_value = _outage_p_value(grid, law, np.isfinite(unexplained), items)[locs]
    explanations, details = [], []
    for li in locs:
        direction = "fell" if units[li] < 0 else "rose"
        explanations.append(
            f"No sales were recorded at this store on an open day, yet book stock {direction} "
            f"by {fmt_count(abs(units[li]))} across "
            f"{fmt_count(items[li], 'item')} "
            f"({money(value[li], currency)} at shelf price): a till or sales-feed outage? "
            "The day's sales are probably missing."
        )
        details.append(
            {
                "items": int(items[li]),
                "items_stocked": int(stocked[li]),
                "unexplained_units": int(units[li]),
                "value": round(float(value[li]), 2),
            }
        )
    found = make_findings(
        {
            "anomaly_type": [OUTAGE_TYPE] * len(locs),
            "product_id": [pd.NA] * len(locs),
            "location_id": grid.location_ids[locs],
            "start_date": [grid.as_of] * len(locs),
            "end_date": [grid.as_of] * len(locs),
            "severity": ["critical"] * len(locs),
            "score": items[locs] / np.maximum(stocked[locs], 1.0),
            "expected_value": np.zeros(len(locs)),
            "actual_value": units[locs],
            "value_at_risk": value[locs],
            "explanation": explanations,
            "details": details,
        }
    )
    return _with_tests(found, p_value, np.ones(len(locs)))
