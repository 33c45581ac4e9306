"""Inventory discrepancies: book-stock changes that receipts, sales and returns do not explain.

Method: exact stock reconciliation on the as-of day ``d`` (perpetual-inventory identity):

    unexplained = on_hand[d] - on_hand[d-1] - receipts[d] + units_sold[d] - returned[d]
                  - adjustments[d]

``adjustments`` are book corrections ShelfWatch recorded itself (a cycle count entered in the
admin or the API writes counted − book): they are explained, not discrepancies.

Returned units are taken to go back on the shelf (``returns_restock``, default true: most
retail returns are resaleable and are booked back into stock); set it to false where returns
are written off instead. Positive = stock appeared on the books (a receipt posted twice, a
count corrected upward); negative = stock vanished (shrinkage, damage, an unrecorded
transfer). Flagged when ``|unexplained| > max(min_units, tolerance_pct % x on_hand[d-1])``,
so the small count corrections every store books daily stay quiet. The default tolerance is
absolute (2 units): reconciliation is exact, and a 3-unit write-off is already a question.

Not a new discrepancy: a write-down to (about) zero that ends an improbable zero-sales run
(``ghost_stock.zero_run_test`` with ``p0 < ghost_resolution_max_p``). That is the cycle count
that found the ghost stock the other detector reported, and listing it again would send ops
to a problem they have just closed.

A store that recorded no sales at all on an open day while the book stock of at least
``outage_min_items`` items moved gets one location-level ``pos_outage`` finding instead of
one discrepancy per item: the till or sales feed lost the day's sales.

Needs a book-stock row for both ``d`` and ``d - 1`` (no reconciliation across gaps).

Inputs: ``data.stock`` (required), ``data.sales``, ``data.receipts``, ``data.products``.
Output: findings frame (``base.FINDING_COLUMNS``) with ``start_date = end_date = as_of``;
``expected_value`` = on_hand[d] implied by the movements, ``actual_value`` = on_hand[d],
``score`` = |unexplained| / tolerance, ``value_at_risk`` = |unexplained| x regular price.
Severity: info below ``info_value``, critical from ``critical_value`` or from
``critical_multiple`` x the tolerance, otherwise warning.
Raises ``base.MissingInput`` when no book stock was imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import ghost_stock
from .base import DetectionInput, MissingInput, empty_findings, make_findings
from .formatting import fmt_count, fmt_units, money
from .grid import Grid, build_grid

ANOMALY_TYPE = "inventory_discrepancy"
OUTAGE_TYPE = "pos_outage"

DEFAULT_PARAMS: dict[str, Any] = {
    # Unexplained units tolerated: the larger of min_units and tolerance_pct % of stock.
    "min_units": 2,
    "tolerance_pct": 0.0,
    # Returned units go back into stock.
    "returns_restock": True,
    # Severity thresholds (money at shelf price, and multiples of the tolerance).
    "info_value": 10.0,
    "critical_value": 500.0,
    "critical_multiple": 10.0,
    # A store with no sales recorded on an open day and at least this many items with
    # unexplained changes gets one location-level finding (sales data lost) instead.
    "outage_min_items": 3,
    # A write-down to at most min_units ending a zero-sales run this improbable is the count
    # that resolved ghost stock (0 disables).
    "ghost_resolution_max_p": 1e-2,
}


def detect_inventory_discrepancy(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag unexplained book-stock changes on ``as_of`` (see module doc)."""
    if data.stock is None or data.stock.empty:
        raise MissingInput("Inventory reconciliation needs book stock; none was imported.")
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    if grid.n_series == 0 or grid.on_hand is None or grid.n_days < 2:
        return empty_findings()
    d = grid.last
    now, before = grid.on_hand[:, d], grid.on_hand[:, d - 1]
    received, sold = grid.receipts[:, d], grid.units[:, d]
    returned = grid.returned[:, d] if p["returns_restock"] else np.zeros(grid.n_series)
    implied = before + received - sold + returned + grid.adjustments[:, d]
    unexplained = now - implied
    tolerance = np.maximum(p["min_units"], p["tolerance_pct"] / 100.0 * np.abs(before))
    flagged = np.isfinite(unexplained) & (np.abs(unexplained) > tolerance)
    if p["ghost_resolution_max_p"] > 0 and flagged.any():
        flagged &= ~_ghost_resolution(grid, unexplained, now, p)

    # A store that recorded no sales at all on an open day while its book stock kept moving
    # lost its sales data (a till or feed outage): one location-level finding, not one per item.
    silent = grid.location_silent[:, d] & ~grid.calendar_closed[:, d]
    per_location = np.bincount(grid.loc_index[flagged & silent], minlength=len(grid.location_ids))
    outage_loc = per_location >= p["outage_min_items"]
    outage = outage_loc[grid.loc_index]
    outages = _outage_findings(grid, flagged & outage, unexplained, data.currency)
    rows = np.flatnonzero(flagged & ~outage)
    if not len(rows):
        return outages
    u = unexplained[rows]
    price = np.nan_to_num(grid.regular_price[rows])
    value = np.abs(u) * price
    score = np.abs(u) / tolerance[rows]
    severity = np.where(
        (value >= p["critical_value"]) | (score >= p["critical_multiple"]),
        "critical",
        np.where(value < p["info_value"], "info", "warning"),
    )
    explanations, details = [], []
    for i, row in enumerate(rows):
        direction = "rose" if u[i] > 0 else "fell"
        written_off = now[row] == 0 and u[i] == -before[row] and not received[row]
        movements = f"received {fmt_units(received[row])}, sold {fmt_units(sold[row])}"
        if grid.returned[row, d]:
            movements += f", returned {fmt_units(grid.returned[row, d])}"
        explanations.append(
            f"Book stock {direction} by {fmt_count(abs(u[i]))} more than "
            f"receipts, sales and returns explain ({fmt_units(before[row])} → "
            f"{fmt_units(now[row])}; {movements}); "
            f"{money(value[i], data.currency)} unaccounted for"
            + (" (written down to 0: a stock count?)." if written_off else ".")
        )
        details.append(
            {
                "unexplained_units": int(u[i]),
                "on_hand_before": int(before[row]),
                "on_hand": int(now[row]),
                "received": int(received[row]),
                "sold": int(sold[row]),
                "returned": int(grid.returned[row, d]),
                "returns_restock": bool(p["returns_restock"]),
                "tolerance_units": round(float(tolerance[row]), 2),
                "unit_price": float(price[i]),
            }
        )
    found = make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE] * len(rows),
            "product_id": grid.product_id[rows],
            "location_id": grid.location_id[rows],
            "start_date": [grid.as_of] * len(rows),
            "end_date": [grid.as_of] * len(rows),
            "severity": severity,
            "score": score,
            "expected_value": implied[rows],
            "actual_value": now[rows],
            "value_at_risk": value,
            "explanation": explanations,
            "details": details,
        }
    )
    return pd.concat([outages, found], ignore_index=True) if len(outages) else found


def _ghost_resolution(
    grid: Grid, unexplained: np.ndarray, now: np.ndarray, p: dict[str, Any]
) -> np.ndarray:
    """(S,) bool: today's write-down ends a zero-sales run that ghost-stock evidence explains."""
    write_down = (unexplained < 0) & (now <= p["min_units"])
    if not write_down.any():
        return write_down
    run = ghost_stock.zero_run_test(grid, ghost_stock.DEFAULT_PARAMS)
    if run is None:
        return np.zeros_like(write_down)
    return write_down & run.testable & (run.log_p0 < np.log(p["ghost_resolution_max_p"]))


def _outage_findings(
    grid: Grid, rows_mask: np.ndarray, unexplained: np.ndarray, currency: str
) -> pd.DataFrame:
    """One location-level finding per store whose flagged items in ``rows_mask`` it owns."""
    rows = np.flatnonzero(rows_mask)
    if not len(rows):
        return empty_findings()
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
    return make_findings(
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
