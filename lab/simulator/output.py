"""Frames written to the bundle: ``truth.csv`` (the injected anomalies) and the per-series
fact rows (sales, inventory, receipts)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .events import Event


def truth_frame(
    events: list[Event],
    *,
    sim: dict[str, np.ndarray],
    mu: np.ndarray,
    realized: np.ndarray,
    reg_price: np.ndarray,
    outage: np.ndarray,
    loc_of: np.ndarray,
    n_days: int,
) -> pd.DataFrame:
    """One row per event that actually happened and is visible in the data.

    Columns: anomaly_type, sku (index, -1 for store-wide), location (index), start, end
    (day indexes) and value_at_risk (currency, 2 decimals).
    """
    n_skus = int((loc_of == 0).sum())
    sales = sim["sales"]
    rows: list[tuple[str, int, int, int, int, float]] = []
    for ev in events:
        if ev.start < 0:
            continue
        s, d0, d1 = ev.series, ev.start, ev.end
        units = sales[d0 : d1 + 1, s]
        if ev.kind == "ghost_stock":
            value = ev.delta * reg_price[s]
        elif ev.kind == "inventory_discrepancy":
            value = abs(ev.delta) * reg_price[s]
        elif ev.kind == "demand_spike":
            value = round(units.sum() - mu[d0 : d1 + 1, s].sum()) * reg_price[s]
        elif ev.kind == "demand_drop":
            value = round(mu[d0 : d1 + 1, s].sum() - units.sum()) * reg_price[s]
        else:
            value = float((np.abs(realized[d0 : d1 + 1, s] - reg_price[s]) * units).sum())
        if value <= 0:
            continue  # e.g. a mis-keyed price on days nothing sold: invisible, not injected
        rows.append((ev.kind, s % n_skus, s // n_skus, d0, d1, round(float(value), 2)))
    for d, loc in zip(*np.nonzero(outage), strict=True):
        cols = np.flatnonzero(loc_of == loc)
        value = float((sales[d, cols] * realized[d, cols]).sum())
        rows.append(("pos_outage", -1, int(loc), int(d), int(d), round(value, 2)))
    frame = pd.DataFrame(
        rows, columns=["anomaly_type", "sku", "location", "start", "end", "value_at_risk"]
    )
    return frame.sort_values(["start", "location", "sku", "anomaly_type"], ignore_index=True)


def series_frame(
    matrix: np.ndarray,
    column: str,
    date_str: np.ndarray,
    sku_codes: np.ndarray,
    loc_codes: np.ndarray,
    sku_of: np.ndarray,
    loc_of: np.ndarray,
    price: np.ndarray | None = None,
    keep_zero: bool = False,
) -> pd.DataFrame:
    """Long rows ``date,sku,location,<column>[,unit_price]`` from a (n_days, n_series) matrix,
    ordered by date, location, sku; zero cells dropped unless ``keep_zero``."""
    flat = np.arange(matrix.size) if keep_zero else np.flatnonzero(matrix)
    d, s = np.divmod(flat, matrix.shape[1])
    data = {
        "date": date_str[d],
        "sku": sku_codes[sku_of[s]],
        "location": loc_codes[loc_of[s]],
        column: matrix.ravel()[flat],
    }
    if price is not None:
        data["unit_price"] = price.ravel()[flat]
    return pd.DataFrame(data)
