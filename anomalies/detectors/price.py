"""Price anomalies: realized unit price far from the regular price, no promotion to explain it.

Method. The reference price of a SKU/location on a day is the regular shelf price
(``products.unit_price``), or ``regular x (1 - discount_pct / 100)`` when a promotion covers
the day (the deepest one when several do). With ``ratio = realized / reference`` on a day with
units sold, the day is anomalous when

- ``ratio ≥ high_ratio`` (default 3: a price keyed x10, or a wrong product code), or
- ``ratio ≤ low_ratio`` (default 0.5: ÷10 mis-keys, items given away at £0, and unexplained
  discounts of 50 % or more; shallower discounts are everyday markdowns and are left alone).

Because the thresholds are ratios to the *promotion* price on promotion days, a promotion
that was applied as planned never fires, while one that was not applied at the till
(ratio ≥ 3 against a 67 %-off price) does. Realized prices are daily averages, so a single
mis-keyed line among many correct ones is diluted; that is deliberate (it is the money at
stake that matters).

A condition that persists keeps one finding: ``start_date`` is the first selling day of the
current run of anomalous selling days in the same direction (days without sales neither
break nor extend it), ``end_date`` = ``as_of``.

Noise control: days worth less than ``min_value_at_risk`` are ignored; a price close
(``familiar_tolerance``) to an anomalous price the item already sold at in the
``familiar_days`` before the run is a known price point (a customer group with its own
prices, a standing markdown), not a new error; and when ``group_min_items`` or more items of
one store are off in the same direction on the same day, one store-level finding
(``product_id`` <NA>) replaces theirs: that is a markdown or a price file, not many mistakes.

Inputs: ``data.sales`` (units_sold, unit_price), ``data.products`` (sku, unit_price),
``data.promotions``. Output: findings frame (``base.FINDING_COLUMNS``) for SKU/locations that
sold units on ``as_of`` at an anomalous price; ``expected_value`` = reference price,
``actual_value`` = realized price, ``score`` = |log2 ratio| (1 = double or half),
``value_at_risk`` = |realized - reference| x units sold that day. Store-level findings:
``score`` = ``actual_value`` = number of items, ``value_at_risk`` = their summed difference.
Severity: warning; critical from ``critical_ratio`` (either direction) or ``critical_value``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .arrays import sum_by_location, where_else_nan
from .base import DetectionInput, empty_findings, make_findings
from .formatting import fmt_count, fmt_date, money
from .grid import Grid, build_grid

ANOMALY_TYPE = "price_anomaly"

DEFAULT_PARAMS: dict[str, Any] = {
    # Realized / reference price at or above which a day is anomalous.
    "high_ratio": 3.0,
    # ... at or below which (0.5 = 50 % or more below the reference).
    "low_ratio": 0.5,
    # Ratio (or its inverse) from which a finding is critical.
    "critical_ratio": 5.0,
    # Money difference that day from which a finding is critical.
    "critical_value": 500.0,
    # Findings worth less than this (money) are not reported.
    "min_value_at_risk": 1.0,
    # From this many anomalous items (same store, day and direction) one store-level finding
    # replaces the item findings: a markdown or price file, not many separate mistakes.
    "group_min_items": 20,
    # Not reported: a price within this factor of an anomalous price the item sold at in the
    # familiar_days days before the run started.
    "familiar_days": 28,
    "familiar_tolerance": 1.25,
}


def detect_price_anomaly(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag SKU/locations whose realized price on ``as_of`` is far from reference (module doc)."""
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    if grid.n_series == 0:
        return empty_findings()
    last = grid.last
    regular = grid.regular_price
    # Today's column first: most days few items (often none) are off, and only those need
    # their history.
    now = _PriceDays(grid, slice(None), slice(last, last + 1), p)
    high_now, low_now = now.high[:, 0], now.low[:, 0]
    value_now = now.value[:, 0]
    today = np.flatnonzero(high_now | low_now)
    if not len(today):
        return empty_findings()
    cols = np.arange(grid.n_days)
    past = _PriceDays(grid, today, slice(None), p)

    # Start of each current run: first anomalous selling day after the last normal selling
    # day (anomalous in the other direction counts as a break too).
    same = np.where(past.high[:, last][:, None], past.high, past.low)
    last_break = np.where(past.selling & ~same, cols, -1).max(axis=1)
    run_start = np.where(same & (cols > last_break[:, None]), cols, grid.n_days).min(axis=1)

    # An anomalous price the item already sold at shortly before the run is a known price
    # point (a customer group with its own prices, a standing markdown), not a new error.
    before = (cols < run_start[:, None]) & (cols >= run_start[:, None] - p["familiar_days"])
    with np.errstate(divide="ignore", invalid="ignore"):
        close = np.abs(np.log(grid.price[today] / grid.price[today, last][:, None]))
    seen = before & (past.high | past.low) & (close <= np.log(p["familiar_tolerance"]))
    familiar = seen.any(axis=1)
    novel = np.zeros(grid.n_series, dtype=bool)
    novel[today[~familiar]] = True
    start_col = np.full(grid.n_series, last)
    start_col[today] = run_start

    # Many items at one store off in the same direction on the same day is one event (a
    # markdown or a price file missing from the data), reported once for the store.
    groups, grouped = [], np.zeros(grid.n_series, dtype=bool)
    every: _PriceDays | None = None
    for direction, mask_now in (("high", high_now), ("low", low_now)):
        counts_now = sum_by_location((mask_now & novel).astype(float), grid.loc_starts)
        if not (counts_now >= p["group_min_items"]).any():
            continue
        # An event today: its start needs every item's history at the store.
        every = every or _PriceDays(grid, slice(None), slice(None), p)
        mask = every.high if direction == "high" else every.low
        counts = sum_by_location(mask.astype(float), grid.loc_starts)  # (L, D)
        counts[:, last] = counts_now
        event = counts >= p["group_min_items"]
        in_event = event[grid.loc_index, last] & mask_now & novel
        if in_event.any():
            groups.append(_group_findings(data, grid, event, in_event, value_now, direction, p))
            grouped |= in_event
    rows = np.flatnonzero(novel & ~grouped)
    if not len(rows):
        return pd.concat(groups, ignore_index=True) if groups else empty_findings()
    start = start_col[rows]

    r = now.ratio[rows, 0]
    ref = now.reference[rows, 0]
    realized = grid.price[rows, last]
    units = grid.units[rows, last]
    value = value_now[rows]
    discount = grid.discount_pct[rows, last]
    on_promo = grid.promo[rows, last]
    log_ratio = np.abs(np.log2(np.maximum(r, 1e-9)))
    severity = np.where(
        (r >= p["critical_ratio"])
        | (r <= 1.0 / p["critical_ratio"])
        | (value >= p["critical_value"]),
        "critical",
        "warning",
    )

    cur = data.currency
    explanations, details = [], []
    for i, row in enumerate(rows):
        if on_promo[i]:
            against = (
                f"the promotion price {money(ref[i], cur)} "
                f"({discount[i]:.0f}% off {money(regular[row], cur)})"
            )
        else:
            against = f"the regular price {money(ref[i], cur)} with no promotion"
        if r[i] >= 1:
            how = f"{r[i]:,.1f} times {against}"
            impact = "overcharged"
        else:
            how = f"{1 - r[i]:.0%} below {against}"
            impact = "not charged"
        days = int((grid.units[row, start[i] : last + 1] > 0).sum())
        since = f" (anomalous on {days} selling days since {fmt_date(grid.dates[start[i]])})"
        explanations.append(
            f"Sold {fmt_count(units[i])} at {money(realized[i], cur)} each, "
            f"{how}; {money(value[i], cur)} {impact}" + (since if days > 1 else "") + "."
        )
        details.append(
            {
                "realized_price": round(float(realized[i]), 4),
                "reference_price": round(float(ref[i]), 4),
                "regular_price": round(float(regular[row]), 4),
                "ratio": round(float(r[i]), 4),
                "units_sold": int(units[i]),
                "on_promotion": bool(on_promo[i]),
                "discount_pct": float(discount[i]),
                "selling_days_in_run": days,
            }
        )

    found = make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE] * len(rows),
            "product_id": grid.product_id[rows],
            "location_id": grid.location_id[rows],
            "start_date": grid.dates[start],
            "end_date": [grid.as_of] * len(rows),
            "severity": severity,
            "score": log_ratio,
            "expected_value": ref,
            "actual_value": realized,
            "value_at_risk": value,
            "explanation": explanations,
            "details": details,
        }
    )
    return pd.concat([*groups, found], ignore_index=True) if groups else found


class _PriceDays:
    """Reference price, realized/reference ratio and anomalous days of the series ``rows``
    on the grid columns ``cols`` (arrays of shape (rows, cols); see the module doc)."""

    def __init__(self, grid: Grid, rows, cols, p: dict[str, Any]):
        price, units = grid.price[rows, cols], grid.units[rows, cols]
        discount = np.clip(grid.discount_pct[rows, cols], 0.0, 100.0)
        self.reference = grid.regular_price[rows][:, None] * (1.0 - discount / 100.0)
        self.selling = (units > 0) & np.isfinite(price) & (self.reference > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.ratio = where_else_nan(price / self.reference, self.selling)
        self.value = np.abs(price - self.reference) * units
        valuable = self.value >= p["min_value_at_risk"]
        self.high = self.selling & (self.ratio >= p["high_ratio"]) & valuable
        self.low = self.selling & (self.ratio <= p["low_ratio"]) & valuable


def _group_findings(
    data: DetectionInput,
    grid: Grid,
    event: np.ndarray,
    in_event: np.ndarray,
    value_now: np.ndarray,
    direction: str,
    p: dict[str, Any],
) -> pd.DataFrame:
    """Location-level findings for stores with a same-day, same-direction price event.

    ``event`` (L, D) marks store-days with at least ``group_min_items`` anomalous items;
    ``in_event`` (S,) the items of today's events. The start date is the first day of the
    store's current run of event days (days without sales at the store do not break it).
    """
    last = grid.last
    cols = np.arange(grid.n_days)
    silent = grid.location_silent[grid.loc_starts]  # (L, D)
    breaks = ~event & ~silent
    last_break = np.where(breaks, cols, -1).max(axis=1)
    sku = data.products["sku"] if "sku" in data.products else pd.Series(dtype=object)
    locs = np.flatnonzero(event[:, last])
    explanations, details, values, counts, starts = [], [], [], [], []
    for li in locs:
        members = np.flatnonzero(in_event & (grid.loc_index == li))  # never empty
        top = members[np.argsort(-value_now[members])][:3]
        names = ", ".join(
            f"{sku.get(int(grid.product_id[i]), grid.product_id[i])} "
            f"{money(value_now[i], data.currency)}"
            for i in top
        )
        total = float(value_now[members].sum())
        if direction == "high":
            what = f"at {p['high_ratio']:g} times their regular price or more"
            impact, cause = "more than", "a price file loaded wrongly?"
        else:
            what = f"at {1 - p['low_ratio']:.0%} or more below their regular price"
            impact, cause = "less than", "a markdown or sale missing from the promotions list?"
        start = max(last_break[li] + 1, 0)
        explanations.append(
            f"{len(members):,} items sold {what} with no promotion to explain it "
            f"({money(total, data.currency)} {impact} the regular prices; largest: {names}): "
            f"{cause}"
        )
        details.append(
            {
                "direction": direction,
                "items": len(members),
                "value": round(total, 2),
                "product_ids": [int(i) for i in grid.product_id[members]],
                "since": grid.dates[start].date().isoformat(),
            }
        )
        values.append(total)
        counts.append(len(members))
        starts.append(grid.dates[start])
    n = len(values)
    return make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE] * n,
            "product_id": [pd.NA] * n,
            "location_id": grid.location_ids[locs],
            "start_date": starts,
            "end_date": [grid.as_of] * n,
            "severity": ["warning"] * n,
            "score": np.asarray(counts, dtype=float),
            "expected_value": np.zeros(n),
            "actual_value": np.asarray(counts, dtype=float),
            "value_at_risk": values,
            "explanation": explanations,
            "details": details,
        }
    )
