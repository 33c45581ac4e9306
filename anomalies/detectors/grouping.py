"""Root-cause grouping: put SKU findings that share one cause under one parent anomaly.

Runs once per detection run, after every chunk of locations has been persisted, because its
second rule looks across locations. Pure: a frame of anomalies in, a frame of
(anomaly, parent) pairs out.

Rules, in order (an anomaly gets at most one parent, the first rule that applies):

1. **POS outage.** When a store's tills stop reporting, every SKU there looks broken (sales
   stop, stock stops moving). A SKU-level anomaly at a location that started during a
   ``pos_outage`` anomaly of the same location (or the day after it) is grouped under that
   outage; one already running before the outage is not.
2. **Chain-wide SKU event.** The same SKU flagged with the same type at ``min_locations`` or
   more locations, starting within ``max_start_spread_days`` of each other, points at one
   central cause (a wrong price in the price file, a national promotion missing from the
   promotion feed, a recall). They are grouped under one of them: the one already holding
   children if any (so re-running a date keeps the same parent), else the highest score.

Source: rule-based alert correlation as done in operations monitoring (group alerts that
share a topology element — here the store — or a shared entity — here the SKU — and show one
incident); no paper is claimed. The rules are deliberately simple and explainable to ops staff.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POS_OUTAGE = "pos_outage"
DEFAULT_MIN_LOCATIONS = 3
DEFAULT_MAX_START_SPREAD_DAYS = 1

ANOMALY_COLUMNS = {
    "id": "int64",
    "anomaly_type": "object",
    "product_id": "Int64",
    "location_id": "int64",
    "start_date": "datetime64[s]",
    "end_date": "datetime64[s]",
    "score": "float64",
    "has_children": "bool",
}
"""Input columns of ``root_causes_group``; ``product_id`` is NA for location-level anomalies
and ``has_children`` says whether the anomaly already is a parent."""

GROUP_COLUMNS = ["id", "parent_id", "reason"]


def root_causes_group(
    anomalies: pd.DataFrame,
    *,
    min_locations: int = DEFAULT_MIN_LOCATIONS,
    max_start_spread_days: int = DEFAULT_MAX_START_SPREAD_DAYS,
) -> pd.DataFrame:
    """Find the parent of each anomaly of ``anomalies`` that shares a root cause.

    ``anomalies`` has the ``ANOMALY_COLUMNS`` (one row per anomaly, any order). Returns a frame
    with ``GROUP_COLUMNS``: ``id`` of a grouped anomaly (int64), ``parent_id`` (int64) and
    ``reason`` (``"pos_outage"`` or ``"chain_wide"``), one row per grouped anomaly, sorted by
    ``id``; parents themselves are never grouped. Raises ``ValueError`` when a column is
    missing or ``min_locations`` < 2.
    """
    missing = [name for name in ANOMALY_COLUMNS if name not in anomalies.columns]
    if missing:
        raise ValueError(f"root_causes_group: anomalies lack column(s) {missing}")
    if min_locations < 2:
        raise ValueError("root_causes_group: min_locations must be at least 2")
    empty = pd.DataFrame(
        {
            "id": pd.Series(dtype="int64"),
            "parent_id": pd.Series(dtype="int64"),
            "reason": pd.Series(dtype="object"),
        }
    )
    if anomalies.empty:
        return empty
    frame = anomalies[list(ANOMALY_COLUMNS)].reset_index(drop=True)
    sku_level = frame["product_id"].notna().to_numpy()
    parts = []

    outages = frame[frame["anomaly_type"] == POS_OUTAGE]
    if not outages.empty:
        skus = frame[sku_level]
        pairs = skus.merge(
            outages[["id", "location_id", "start_date", "end_date", "score"]],
            on="location_id",
            suffixes=("", "_outage"),
        )
        # Caused by the outage: it started on an outage day or the day after (the first run
        # that sees the gap). One that was already running before is not the outage's doing.
        started = (pairs["start_date"] >= pairs["start_date_outage"]) & (
            pairs["start_date"] <= pairs["end_date_outage"] + pd.Timedelta(days=1)
        )
        pairs = pairs[started].sort_values(["id", "score_outage", "id_outage"], ascending=False)
        pairs = pairs.drop_duplicates("id")
        parts.append(
            pd.DataFrame(
                {
                    "id": pairs["id"].astype("int64"),
                    "parent_id": pairs["id_outage"].astype("int64"),
                    "reason": POS_OUTAGE,
                }
            )
        )
    taken = set(parts[0]["id"]) if parts else set()

    chain = frame[sku_level & (frame["anomaly_type"] != POS_OUTAGE)]
    chain = chain[~chain["id"].isin(taken)]
    if not chain.empty:
        parts.append(_chain_wide(chain, min_locations, max_start_spread_days))
    if not parts:
        return empty
    result = pd.concat(parts, ignore_index=True).sort_values("id", ignore_index=True)
    return result[GROUP_COLUMNS]


def _chain_wide(chain: pd.DataFrame, min_locations: int, spread_days: int) -> pd.DataFrame:
    """Rule 2 over SKU-level anomalies: clusters of one type and SKU by start date."""
    chain = chain.sort_values(["anomaly_type", "product_id", "start_date", "id"])
    key = chain["anomaly_type"].astype(str) + "|" + chain["product_id"].astype(str)
    start = chain["start_date"].to_numpy().astype("datetime64[D]").astype("int64")
    new_key = np.r_[True, key.to_numpy()[1:] != key.to_numpy()[:-1]]
    # A cluster breaks where the gap to the previous start exceeds the spread.
    gap = np.r_[True, np.diff(start) > spread_days]
    cluster = np.cumsum(new_key | gap)
    chain = chain.assign(cluster=cluster)
    sizes = chain.groupby("cluster")["location_id"].transform("nunique")
    chain = chain[sizes.to_numpy() >= min_locations]
    if chain.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    ranked = chain.sort_values(
        ["cluster", "has_children", "score", "id"], ascending=[True, False, False, True]
    )
    parent = ranked.groupby("cluster")["id"].transform("first")
    children = ranked[ranked["id"] != parent]
    return pd.DataFrame(
        {
            "id": children["id"].astype("int64"),
            "parent_id": parent[children.index].astype("int64"),
            "reason": "chain_wide",
        }
    )
