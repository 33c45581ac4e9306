"""Machine-learning outliers: Isolation Forest over per SKU/location features on the as-of day.

Method: Isolation Forest (Liu, Ting & Zhou 2008, "Isolation Forest", ICDM; scikit-learn's
``IsolationForest``) fitted cross-sectionally on the SKU/locations that sold something in the
last ``active_days`` days, one row each, with these features as of ``as_of``:

==================  =====================================================================
sales_7d            units sold in the last 7 days
sales_trend_7d      (sales_7d + 1) / (units of the 7 days before + 1)
quantity_on_hand    book stock at the end of as_of (0 when unknown)
has_stock_record    1 when the SKU/location has book stock, else 0
unit_price          regular shelf price
day_of_week         0 = Monday
is_holiday          1 on a calendar event or closed day at the location
stock_turnover      units of the last 28 days / average book stock over them (0 if none)
price_vs_avg        today's realized price / 28-day units-weighted average realized price
                    (1 when nothing was sold today)
==================  =====================================================================

Counts and prices are heavy-tailed, so they enter as ``log1p`` (ratios as ``log``), then each
feature is robust-scaled: ``(v - median) / max(IQR / 1.349, 1.4826 MAD, 0.05)`` (0/1 flags are
left as they are).
Features constant on the day (day_of_week always is; others may be) carry no information and
are dropped. A row is flagged when its anomaly score ``s = 2^(-E[h] / c(n))`` (the paper's
score: ≈ 0.5 ordinary, → 1 isolated) is at least ``score_threshold`` and it is among the top
``max_share`` of rows, so a calm day yields nothing rather than a fixed quota.

The explanation names the features that deviate most (largest |robust z|) with their value
and the typical (median) value. Skips (empty result) with fewer than ``min_samples`` rows.

Inputs: ``data.sales``, ``data.products``; ``data.stock``, ``data.calendar`` optional.
Output: findings frame (``base.FINDING_COLUMNS``), ``start_date = end_date = as_of``;
``score`` = anomaly score s, ``expected_value`` / ``actual_value`` = typical / actual value of
the most deviating feature, ``value_at_risk`` = sales_7d x unit price (the money moving through
the outlier). Severity from the score's percentile among today's rows and the score itself:
critical at ``critical_score`` in the top ``critical_percentile`` %, else warning, and info
below ``warning_score``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .arrays import MAD_TO_SD
from .base import DetectionInput, empty_findings, make_findings
from .formatting import money
from .grid import Grid, build_grid

ANOMALY_TYPE = "ml_detected"

FEATURES: tuple[str, ...] = (
    "sales_7d",
    "sales_trend_7d",
    "quantity_on_hand",
    "has_stock_record",
    "unit_price",
    "day_of_week",
    "is_holiday",
    "stock_turnover",
    "price_vs_avg",
)
LOG1P_FEATURES = frozenset({"sales_7d", "quantity_on_hand", "unit_price", "stock_turnover"})
LOG_FEATURES = frozenset({"sales_trend_7d", "price_vs_avg"})
LOG_FLOOR = 0.01
"""Ratios are floored here before the log (a £0 sale has price_vs_avg 0)."""
IQR_TO_SD = 1.349
SCALE_FLOOR = 0.05
"""Smallest robust scale (log units, about 5 %): when nearly every row has the same value, a
tiny difference must not look like a huge deviation."""
MIN_DEVIATION_Z = 2.0
"""Features named in the explanation deviate at least this much (robust z)."""
MAX_FEATURES_NAMED = 3

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "max_samples": 256,
    "random_state": 0,
    # Only SKU/locations with sales in the last active_days days are scored.
    "active_days": 28,
    # Fewer rows than this: skip (an outlier among a handful of items means nothing).
    "min_samples": 50,
    # Anomaly score (0.5 ordinary, 1 isolated) from which a row can be flagged ...
    "score_threshold": 0.66,
    # ... and at least one feature this many robust SDs from the median (a forest score alone
    # is not something a store manager can check).
    "min_feature_z": 6.0,
    # ... and the largest share of rows flagged on one day.
    "max_share": 0.001,
    "warning_score": 0.75,
    "critical_score": 0.8,
    "critical_percentile": 99.9,
}


def build_features(grid: Grid, active_days: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Feature rows (untransformed) for the series active in the last ``active_days`` days.

    Returns the series rows (indices into the grid) and a frame with ``FEATURES`` columns.
    """
    last = grid.last
    units = grid.units
    window = slice(max(last - active_days + 1, 0), last + 1)
    sales_28d = units[:, window].sum(axis=1)
    rows = np.flatnonzero(sales_28d > 0)
    units = units[rows]
    sales_7d = units[:, max(last - 6, 0) : last + 1].sum(axis=1)
    prev_7d = units[:, max(last - 13, 0) : max(last - 6, 0)].sum(axis=1)
    if grid.on_hand_ffill is not None:
        stock = grid.on_hand_ffill[rows]
        on_hand = np.nan_to_num(stock[:, last])
        has_stock = np.isfinite(stock[:, last]).astype(float)
        known = np.isfinite(stock[:, window])
        stock_days = known.sum(axis=1)
        avg_stock = np.divide(
            np.where(known, stock[:, window], 0.0).sum(axis=1),
            stock_days,
            out=np.full(len(rows), np.nan),
            where=stock_days > 0,
        )
    else:
        on_hand = np.zeros(len(rows))
        has_stock = np.zeros(len(rows))
        avg_stock = np.full(len(rows), np.nan)
    turnover = np.divide(
        sales_28d[rows],
        avg_stock,
        out=np.zeros(len(rows)),
        where=np.isfinite(avg_stock) & (avg_stock > 0),
    )
    price = grid.price[rows]
    sold = units[:, window]
    # Median of the daily realized prices, not revenue / units: one mis-keyed day must not
    # make the following ordinary days look cheap.
    daily_price = np.where(np.isfinite(price[:, window]) & (sold > 0), price[:, window], np.nan)
    has_price = np.isfinite(daily_price).any(axis=1)
    avg_price = np.full(len(rows), np.nan)
    if has_price.any():
        avg_price[has_price] = np.nanmedian(daily_price[has_price], axis=1)
    today = price[:, last]
    priced_today = (units[:, last] > 0) & np.isfinite(today) & (avg_price > 0)
    price_vs_avg = np.divide(today, avg_price, out=np.ones(len(rows)), where=priced_today)
    regular = grid.regular_price[rows]
    regular = np.where(np.isfinite(regular), regular, np.nan_to_num(avg_price))
    frame = pd.DataFrame(
        {
            "sales_7d": sales_7d,
            "sales_trend_7d": (sales_7d + 1.0) / (prev_7d + 1.0),
            "quantity_on_hand": on_hand,
            "has_stock_record": has_stock,
            "unit_price": regular,
            "day_of_week": np.full(len(rows), float(grid.weekday[last])),
            "is_holiday": (grid.event[rows, last] | grid.calendar_closed[rows, last]).astype(float),
            "stock_turnover": turnover,
            "price_vs_avg": price_vs_avg,
        }
    )
    return rows, frame


def robust_z(frame: pd.DataFrame) -> pd.DataFrame:
    """Transform (log1p / log) and robust-scale each feature; drop constant ones."""
    out = {}
    for name in frame.columns:
        v = frame[name].to_numpy(dtype="float64", copy=True)
        if name in LOG1P_FEATURES:
            v = np.log1p(np.maximum(v, 0.0))
        elif name in LOG_FEATURES:
            v = np.log(np.maximum(v, LOG_FLOOR))
        if np.ptp(v) == 0:
            continue  # constant: nothing to learn from it today
        centre = np.median(v)
        if np.isin(v, (0.0, 1.0)).all():
            scale = 1.0  # a flag: being the odd one out is a deviation of 1, not of 1 / tiny
        else:
            q75, q25 = np.percentile(v, [75, 25])
            scale = max(
                (q75 - q25) / IQR_TO_SD,
                MAD_TO_SD * np.median(np.abs(v - centre)),
                SCALE_FLOOR,
            )
        out[name] = (v - centre) / scale
    return pd.DataFrame(out, index=frame.index)


def detect_ml_outliers(data: DetectionInput, params: dict[str, Any]) -> pd.DataFrame:
    """Flag SKU/locations whose feature vector is isolated (see module doc)."""
    p = {**DEFAULT_PARAMS, **params}
    grid = build_grid(data)
    if grid.n_series == 0:
        return empty_findings()
    rows, raw = build_features(grid, int(p["active_days"]))
    n = len(rows)
    if n < p["min_samples"]:
        return empty_findings()
    z = robust_z(raw)
    if z.shape[1] == 0:
        return empty_findings()
    # Imported here, not at the top: scikit-learn takes over a second to import, and every
    # process that imports the registry (web workers, management commands) would pay it.
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(
        n_estimators=int(p["n_estimators"]),
        max_samples=min(int(p["max_samples"]), n),
        random_state=int(p["random_state"]),
    ).fit(z.to_numpy())
    score = -forest.score_samples(z.to_numpy())  # the paper's s in (0, 1]
    order = np.argsort(-score, kind="stable")
    quota = max(1, int(np.ceil(p["max_share"] * n)))
    top = np.zeros(n, dtype=bool)
    top[order[:quota]] = True
    extreme = np.abs(z.to_numpy()).max(axis=1) >= p["min_feature_z"]
    # A promotion or calendar event explains an outlying day; the rule-based detectors judge it.
    last = grid.last
    explained = grid.promo[rows, last] | grid.event[rows, last] | grid.closed[rows, last]
    picked = np.flatnonzero(top & (score >= p["score_threshold"]) & extreme & ~explained)
    if not len(picked):
        return empty_findings()

    # Share of today's rows scoring at most as high (100 = the most isolated).
    percentile = 100.0 * (score[None, :] <= score[picked][:, None]).mean(axis=1)
    s = score[picked]
    severity = np.where(
        (s >= p["critical_score"]) & (percentile >= p["critical_percentile"]),
        "critical",
        np.where(s >= p["warning_score"], "warning", "info"),
    )
    typical = raw.median()
    zvals = z.to_numpy()
    names = list(z.columns)
    sales_7d = raw["sales_7d"].to_numpy()
    unit_price = raw["unit_price"].to_numpy()
    explanations, details, expected, actual = [], [], [], []
    for i, j in enumerate(picked):
        order_j = np.argsort(-np.abs(zvals[j]))
        named = [k for k in order_j[:MAX_FEATURES_NAMED] if abs(zvals[j, k]) >= MIN_DEVIATION_Z]
        named = named or list(order_j[:1])
        parts = [
            f"{names[k]} {_fmt(raw[names[k]].iloc[j])} (typical {_fmt(typical[names[k]])})"
            for k in named
        ]
        value = sales_7d[j] * unit_price[j]
        explanations.append(
            f"Outlier among {n:,} SKU-locations (score {s[i]:.2f}): " + ", ".join(parts) + "; "
            f"{money(value, data.currency)} of sales in 7 days."
        )
        first = names[named[0]]
        expected.append(float(typical[first]))
        actual.append(float(raw[first].iloc[j]))
        details.append(
            {
                "score": round(float(s[i]), 4),
                "percentile": round(float(percentile[i]), 3),
                "rows_scored": n,
                "features": {k: round(float(raw[k].iloc[j]), 4) for k in raw.columns},
                "typical": {k: round(float(typical[k]), 4) for k in raw.columns},
                "robust_z": {names[k]: round(float(zvals[j, k]), 2) for k in range(len(names))},
                "deviating": [names[k] for k in named],
            }
        )
    series = rows[picked]
    return make_findings(
        {
            "anomaly_type": [ANOMALY_TYPE] * len(picked),
            "product_id": grid.product_id[series],
            "location_id": grid.location_id[series],
            "start_date": [grid.as_of] * len(picked),
            "end_date": [grid.as_of] * len(picked),
            "severity": severity,
            "score": s,
            "expected_value": expected,
            "actual_value": actual,
            "value_at_risk": sales_7d[picked] * unit_price[picked],
            "explanation": explanations,
            "details": details,
        }
    )


def _fmt(value: float) -> str:
    """A feature value: integers with separators, ratios with two significant decimals."""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:,.1f}"
