"""Frames written to the bundle: ``truth.csv`` (the injected anomalies), the per-series
fact rows (sales, inventory, receipts) and ``oracle.npz`` (the world's true parameters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .events import Event

if TYPE_CHECKING:
    from .scenario import Scenario


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


def oracle_write(
    path: Path,
    *,
    scenario: Scenario,
    seed: int,
    mu: np.ndarray,
    dispersion: np.ndarray,
    base: np.ndarray,
    mover: np.ndarray,
    reg_price: np.ndarray,
    promo_discount: np.ndarray,
    tiers: dict[str, np.ndarray],
    sku_codes: np.ndarray,
    loc_codes: np.ndarray,
    sku_of: np.ndarray,
    loc_of: np.ndarray,
    date_str: np.ndarray,
    events: list[Event],
) -> None:
    """Write the true parameters of the simulated world to ``path`` (``numpy.savez_compressed``).

    Read by ``lab.oracle`` only (never imported by the product); writing it draws no random
    numbers, so the CSVs do not depend on it. Arrays (series order ``s = location * n_skus +
    sku``, matching ``series_location`` / ``series_sku``):

    * ``series_location``, ``series_sku`` (n_series,) str codes; ``dates`` (n_days,) ISO str;
    * ``mu`` (n_days, n_series) float64: expected demand (units/day) before injected anomalies,
      after weekday, season, calendar (0 when closed), promotion and dip multipliers;
    * ``nb_size`` (n_series,): negative-binomial size r (variance ``mu + mu²/r``);
      ``base`` (n_series,) mean units/day; ``mover`` (n_series,) 0 slow, 1 medium, 2 fast;
    * benign corrections: ``benign_law`` ("fixed" | "volume"), ``benign_rate`` (n_series,)
      probability per eligible series-day, ``benign_volume_scale`` (n_series,) k of
      ``|delta| = 1 + Poisson(k sqrt(shelf))``, ``benign_deltas`` / ``benign_delta_probs``
      (the fixed law);
    * prices: ``regular_price`` (n_series,), ``price_noise_sd`` (n_series,) relative sd of the
      daily average price, ``promo_discount`` (n_days, n_series) float32 fraction off list,
      ``tier_price`` (n_skus,) tier price level (NaN = none), ``tier_discount``,
      ``tier_day_share`` (n_skus,), ``tier_unit_share_range`` (2,);
    * injected events that happened: ``event_kind`` (str), ``event_series``, ``event_start``,
      ``event_end`` (day index), ``event_factor``, ``event_delta``;
    * ``scenario`` (name), ``scenario_json``, ``seed``.
    """
    n_series = mu.shape[1]
    started = [ev for ev in events if ev.start >= 0]
    tier_price = np.where(
        tiers["has_tier"],
        np.round(reg_price[: len(sku_codes)] * (1 - tiers["discount"]), 2),
        np.nan,
    )
    np.savez_compressed(
        path,
        series_location=loc_codes[loc_of].astype(str),
        series_sku=sku_codes[sku_of].astype(str),
        dates=date_str.astype(str),
        mu=mu,
        nb_size=dispersion,
        base=base,
        mover=mover,
        benign_law=np.array(scenario.benign_law),
        benign_rate=np.full(n_series, scenario.benign_prob_per_day),
        benign_volume_scale=np.full(
            n_series, scenario.benign_volume_scale if scenario.benign_law == "volume" else 0.0
        ),
        benign_deltas=np.array(scenario.benign_deltas),
        benign_delta_probs=np.array(scenario.benign_delta_probs),
        regular_price=reg_price,
        price_noise_sd=np.full(n_series, scenario.price_noise_sd),
        promo_discount=promo_discount,
        tier_price=tier_price,
        tier_discount=tiers["discount"],
        tier_day_share=tiers["day_share"],
        tier_unit_share_range=np.array(scenario.tier_unit_share_range),
        event_kind=np.array([ev.kind for ev in started], dtype=str),
        event_series=np.array([ev.series for ev in started], dtype=np.int64),
        event_start=np.array([ev.start for ev in started], dtype=np.int64),
        event_end=np.array([ev.end for ev in started], dtype=np.int64),
        event_factor=np.array([ev.factor for ev in started], dtype=float),
        event_delta=np.array([ev.delta for ev in started], dtype=np.int64),
        scenario=np.array(scenario.name),
        scenario_json=np.array(json.dumps(scenario.as_dict())),
        seed=np.array(seed),
    )
