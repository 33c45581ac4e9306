"""What the detectors find on real data, in the figures a person would check (issue 11, item 4).

Pure pandas: the ``online_retail_report`` command loads the frames (the line-level file and the
stored anomalies) and prints these figures.

- ``price_points``: every (SKU, unit price in pence) of the line-level data with the number of
  distinct days it was sold at that price.
- ``recurring_price_findings``: whether each price finding is at a *recurring price point*:
  the same SKU sold at that unit price (rounded to the penny) on at least ``min_other_days``
  other days of the file, outside the finding's own days. Such prices are the retailer's
  quantity and customer tiers, not mis-keyed prices; the issue's target is that at most 5 % of
  price findings are at one.
- ``findings_per_day``: findings per as-of day by anomaly type (median, mean, max), the load a
  person triaging every morning would see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RECURRING_MIN_OTHER_DAYS = 5


def _pence(prices: pd.Series) -> pd.Series:
    return np.rint(prices.astype("float64") * 100).astype("int64")


def price_points(lines: pd.DataFrame) -> pd.DataFrame:
    """Distinct selling days per (SKU, price).

    ``lines``: one row per sold line with ``sku`` (str), ``date`` (datetime64, midnight),
    ``price`` (float64, pounds) and ``quantity`` (int64); returns and non-positive prices are
    ignored. Returns ``sku``, ``pence`` (int64) and ``date`` (one row per distinct day)."""
    sold = lines[(lines["quantity"] > 0) & (lines["price"] > 0)]
    points = pd.DataFrame(
        {
            "sku": sold["sku"].to_numpy(),
            "pence": _pence(sold["price"]).to_numpy(),
            "date": sold["date"].to_numpy(),
        }
    )
    return points.drop_duplicates(ignore_index=True)


def recurring_price_findings(
    findings: pd.DataFrame, points: pd.DataFrame, *, min_other_days: int = RECURRING_MIN_OTHER_DAYS
) -> pd.Series:
    """Per price finding, whether it is at a recurring price point (bool Series, same index).

    ``findings``: ``sku``, ``start_date``, ``end_date`` (datetime64), ``actual_value`` (the
    realized unit price the finding reports, pounds). ``points``: from ``price_points``.
    A day inside the finding's own ``[start_date, end_date]`` does not count."""
    if findings.empty:
        return pd.Series(dtype=bool, index=findings.index)
    keyed = pd.DataFrame(
        {
            "row": np.arange(len(findings)),
            "sku": findings["sku"].to_numpy(),
            "pence": _pence(findings["actual_value"]).to_numpy(),
            "start": findings["start_date"].to_numpy(),
            "end": findings["end_date"].to_numpy(),
        }
    )
    joined = keyed.merge(points, on=["sku", "pence"], how="left")
    other = joined["date"].notna() & (
        (joined["date"] < joined["start"]) | (joined["date"] > joined["end"])
    )
    days = other.groupby(joined["row"]).sum().reindex(keyed["row"], fill_value=0)
    return pd.Series(days.to_numpy() >= min_other_days, index=findings.index)


def findings_per_day(anomalies: pd.DataFrame) -> pd.DataFrame:
    """Findings per as-of day by type: ``anomalies`` has ``anomaly_type`` and
    ``first_detected_on`` (the run day that raised it). Returns one row per type with
    ``findings``, ``days`` (run days with at least one), ``median``, ``mean`` and ``max`` per
    run day over ``run_days`` (all days in the range, zeros included)."""
    if anomalies.empty:
        return pd.DataFrame(columns=["findings", "median", "mean", "max"])
    days = pd.date_range(anomalies["first_detected_on"].min(), anomalies["first_detected_on"].max())
    counts = (
        anomalies.groupby(["anomaly_type", "first_detected_on"]).size().unstack(0, fill_value=0)
    )
    counts = counts.reindex(days, fill_value=0)
    return pd.DataFrame(
        {
            "findings": counts.sum(),
            "median": counts.median(),
            "mean": counts.mean().round(2),
            "max": counts.max(),
        }
    )
