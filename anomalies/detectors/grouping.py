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

from dataclasses import dataclass

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

    Plain numpy over the columns (sorts and ``searchsorted``, no merge or groupby): it runs once
    per detection run, a walk-forward backfill runs it once per day, and on the few dozen
    anomalies of a run pandas' per-call overhead was most of a day's grouping time.
    """
    missing = [name for name in ANOMALY_COLUMNS if name not in anomalies.columns]
    if missing:
        raise ValueError(f"root_causes_group: anomalies lack column(s) {missing}")
    if min_locations < 2:
        raise ValueError("root_causes_group: min_locations must be at least 2")
    if anomalies.empty:
        return _groups_frame(np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64"), [])
    a = _Columns.of(anomalies)
    outage = a.anomaly_type == POS_OUTAGE
    child, parent = _outage_children(a, np.flatnonzero(a.sku_level), np.flatnonzero(outage))
    reasons = [POS_OUTAGE] * len(child)
    taken = np.zeros(len(a.id), dtype=bool)
    taken[child] = True
    chain = np.flatnonzero(a.sku_level & ~outage & ~taken)
    if len(chain):
        c_child, c_parent = _chain_wide(a, chain, min_locations, max_start_spread_days)
        child, parent = np.r_[child, c_child], np.r_[parent, c_parent]
        reasons += ["chain_wide"] * len(c_child)
    ids, parent_ids = a.id[child], a.id[parent]
    order = np.argsort(ids, kind="stable")
    return _groups_frame(ids[order], parent_ids[order], [reasons[i] for i in order])


def _groups_frame(ids: np.ndarray, parent_ids: np.ndarray, reasons: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype="int64"),
            "parent_id": pd.Series(parent_ids, dtype="int64"),
            "reason": pd.Series(reasons, dtype="str"),
        }
    )


@dataclass(frozen=True)
class _Columns:
    """The ``ANOMALY_COLUMNS`` as (N,) numpy arrays, row for row."""

    id: np.ndarray  # int64
    anomaly_type: np.ndarray  # object (str)
    sku_level: np.ndarray  # bool: product_id not NA
    product_id: np.ndarray  # int64, -1 where NA
    location_id: np.ndarray  # int64
    start: np.ndarray  # datetime64[s]
    end: np.ndarray  # datetime64[s]
    score: np.ndarray  # float64
    has_children: np.ndarray  # bool

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Columns:
        product = frame["product_id"]
        sku_level = product.notna().to_numpy()
        product_id = np.full(len(frame), -1, dtype="int64")
        product_id[sku_level] = product[sku_level].to_numpy().astype("int64")
        return cls(
            id=frame["id"].to_numpy().astype("int64"),
            anomaly_type=frame["anomaly_type"].to_numpy(dtype=object),
            sku_level=sku_level,
            product_id=product_id,
            location_id=frame["location_id"].to_numpy().astype("int64"),
            start=frame["start_date"].to_numpy().astype("datetime64[s]"),
            end=frame["end_date"].to_numpy().astype("datetime64[s]"),
            score=frame["score"].to_numpy().astype("float64"),
            has_children=frame["has_children"].to_numpy().astype(bool),
        )


def _outage_children(
    a: _Columns, skus: np.ndarray, outages: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rule 1: (child rows, parent rows) of SKU-level anomalies ``skus`` that started on a day
    of a POS outage of ``outages`` at their location, or the day after it (the first run that
    sees the gap); one already running before is not the outage's doing. Of several such
    outages the highest score wins (NaN lowest), then the highest id."""
    none = np.zeros(0, dtype="int64")
    if not len(skus) or not len(outages):
        return none, none
    # Every (SKU anomaly, outage of its location) pair, as a merge on location would give.
    by_location = outages[np.argsort(a.location_id[outages], kind="stable")]
    locations = a.location_id[by_location]
    first = np.searchsorted(locations, a.location_id[skus], "left")
    count = np.searchsorted(locations, a.location_id[skus], "right") - first
    pair_sku = np.repeat(skus, count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    pair_outage = by_location[np.repeat(first, count) + offset]
    started = (a.start[pair_sku] >= a.start[pair_outage]) & (
        a.start[pair_sku] <= a.end[pair_outage] + np.timedelta64(1, "D")
    )
    pair_sku, pair_outage = pair_sku[started], pair_outage[started]
    if not len(pair_sku):
        return none, none
    score = a.score[pair_outage]
    scored = ~np.isnan(score)
    # Ascending by child, then the outage's rank: each child's best outage comes last.
    order = np.lexsort((a.id[pair_outage], np.where(scored, score, 0.0), scored, a.id[pair_sku]))
    pair_sku, pair_outage = pair_sku[order], pair_outage[order]
    last = np.r_[a.id[pair_sku][1:] != a.id[pair_sku][:-1], True]
    return pair_sku[last], pair_outage[last]


def _chain_wide(
    a: _Columns, chain: np.ndarray, min_locations: int, spread_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rule 2 over the SKU-level anomalies ``chain``: clusters of one type and SKU by start
    date; (child rows, parent rows). The parent is the one already holding children, else
    the highest score (NaN lowest), then the lowest id."""
    none = np.zeros(0, dtype="int64")
    type_code = np.unique(a.anomaly_type[chain].astype(str), return_inverse=True)[1]
    start = a.start[chain].astype("datetime64[D]").astype("int64")
    order = np.lexsort((a.id[chain], start, a.product_id[chain], type_code))
    rows, start, code = chain[order], start[order], type_code[order]
    product = a.product_id[rows]
    new_key = np.r_[True, (code[1:] != code[:-1]) | (product[1:] != product[:-1])]
    # A cluster breaks where the gap to the previous start exceeds the spread.
    gap = np.r_[True, np.diff(start) > spread_days]
    cluster = np.cumsum(new_key | gap) - 1
    # Distinct locations per cluster.
    cluster_location = np.unique(np.stack([cluster, a.location_id[rows]]), axis=1)
    locations = np.bincount(cluster_location[0], minlength=cluster[-1] + 1)
    big = locations[cluster] >= min_locations
    rows, cluster = rows[big], cluster[big]
    if not len(rows):
        return none, none
    score = a.score[rows]
    scored = ~np.isnan(score)
    # Per cluster: holding children first, then the highest score, then the lowest id.
    ranked = np.lexsort(
        (a.id[rows], -np.where(scored, score, 0.0), ~scored, ~a.has_children[rows], cluster)
    )
    rows, cluster = rows[ranked], cluster[ranked]
    head = np.r_[True, cluster[1:] != cluster[:-1]]
    parent = rows[np.flatnonzero(head)[np.cumsum(head) - 1]]
    children = a.id[rows] != a.id[parent]
    return rows[children], parent[children]
