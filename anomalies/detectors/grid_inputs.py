"""From the sparse input frames to grid coordinates (used by ``grid.GridWindow.build``).

Series keys and the index of each row's series (``SeriesIndex``), day numbers from the grid's
first day (``day_index``), and the calendar and promotion masks per location or series and day.
Frames follow ``base``'s contract. No Django imports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_NS_PER_DAY = 86_400 * 10**9


class SeriesIndex:
    """The sorted distinct series keys (``series_key``) of some rows and each row's index in them.

    Ids are dense in practice (a chunk's few locations, products numbered from 1), so a
    lookup table over the (location, product) id ranges numbers millions of rows in a few
    passes; sparse ids fall back to a hash factorisation.
    """

    def __init__(self, keys: np.ndarray):
        self.table = None
        if not len(keys):
            self.keys = keys
            self.rows = np.zeros(0, dtype="int64")
            return
        loc, prod = keys >> 32, keys & 0xFFFFFFFF
        self.loc0, self.prod0 = int(loc.min()), int(prod.min())
        self.n_loc = int(loc.max()) - self.loc0 + 1
        self.n_prod = int(prod.max()) - self.prod0 + 1
        if self.n_loc * self.n_prod <= max(4 * len(keys), 1 << 20):
            pair = (loc - self.loc0) * self.n_prod + (prod - self.prod0)
            present = np.zeros(self.n_loc * self.n_prod, dtype=bool)
            present[pair] = True
            self.table = np.cumsum(present, dtype="int64") - 1  # row of each present pair
            self.present = present
            pairs = np.flatnonzero(present)
            self.keys = ((pairs // self.n_prod + self.loc0) << 32) | (
                pairs % self.n_prod + self.prod0
            )
            self.rows = self.table[pair]
        else:
            codes, uniques = pd.factorize(keys)
            order = np.argsort(uniques)
            self.keys = uniques[order]
            rank = np.empty(len(order), dtype="int64")
            rank[order] = np.arange(len(order))
            self.rows = rank[codes]

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, found) of other rows' keys: ``row`` is meaningful where ``found``."""
        if self.table is None:
            n = len(self.keys)
            row = np.searchsorted(self.keys, keys)
            found = (row < n) & (self.keys[np.minimum(row, max(n - 1, 0))] == keys)
            return row, found
        loc = (keys >> 32) - self.loc0
        prod = (keys & 0xFFFFFFFF) - self.prod0
        inside = (loc >= 0) & (loc < self.n_loc) & (prod >= 0) & (prod < self.n_prod)
        pair = np.where(inside, loc * self.n_prod + prod, 0)
        found = inside & self.present[pair]
        return self.table[pair], found


def rows_until(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["date"] <= as_of]


def series_key(frame: pd.DataFrame) -> np.ndarray:
    """One int64 per (location, product): location in the high 32 bits."""
    loc = frame["location_id"].to_numpy(dtype="int64")
    prod = frame["product_id"].to_numpy(dtype="int64")
    return (loc << 32) | prod


def day_index(dates: pd.Series, start: pd.Timestamp) -> np.ndarray:
    """Days from ``start`` (midnight) to each date, floored."""
    ns = dates.to_numpy(dtype="datetime64[ns]").view("int64")
    return (ns - start.as_unit("ns").value) // _NS_PER_DAY


def calendar_masks(
    calendar: pd.DataFrame, location_ids: np.ndarray, start: pd.Timestamp, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """(L, D) closed and event masks; a calendar row without location applies everywhere."""
    closed = np.zeros((len(location_ids), n_days), dtype=bool)
    event = np.zeros_like(closed)
    if calendar is None or not len(calendar) or not len(location_ids):
        return closed, event
    col = day_index(calendar["date"], start)
    in_range = (col >= 0) & (col < n_days)
    is_closed = calendar["is_closed"].to_numpy(dtype=bool)
    loc = calendar["location_id"]
    everywhere = loc.isna().to_numpy()
    loc_vals = loc.fillna(-1).to_numpy(dtype="int64")
    idx = np.searchsorted(location_ids, loc_vals)
    known = (idx < len(location_ids)) & (
        location_ids[np.minimum(idx, len(location_ids) - 1)] == loc_vals
    )
    for target, want in ((closed, is_closed), (event, ~is_closed)):
        sel = in_range & want
        target[:, col[sel & everywhere]] = True
        local = sel & ~everywhere & known
        target[idx[local], col[local]] = True
    return closed, event


def promotion_masks(
    promotions: pd.DataFrame,
    product_id: np.ndarray,
    location_id: np.ndarray,
    start: pd.Timestamp,
    n_days: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(S, D) promotion mask and deepest discount in % from the promotions frame."""
    shape = (len(product_id), n_days)
    promo = np.zeros(shape, dtype=bool)
    discount = np.zeros(shape)
    if promotions is None or not len(promotions) or not len(product_id):
        return promo, discount
    series = pd.DataFrame(
        {"product_id": product_id, "location_id": location_id, "row": np.arange(len(product_id))}
    )
    promos = promotions.assign(
        c0=day_index(promotions["start_date"], start),
        c1=day_index(promotions["end_date"], start),
    )
    everywhere = promos["location_id"].isna()
    pairs = pd.concat(
        [
            series.merge(promos[everywhere].drop(columns="location_id"), on="product_id"),
            series.merge(
                promos[~everywhere].astype({"location_id": "int64"}),
                on=["product_id", "location_id"],
            ),
        ],
        ignore_index=True,
    )
    c0 = pairs["c0"].to_numpy().clip(0, None)
    c1 = pairs["c1"].to_numpy().clip(None, n_days - 1)
    keep = c1 >= c0
    rows, c0, c1 = pairs["row"].to_numpy()[keep], c0[keep], c1[keep]
    pct = pairs["discount_pct"].to_numpy(dtype="float64")[keep]
    lengths = c1 - c0 + 1
    # Expand each (series, promotion) pair into its covered days without a Python loop.
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    r = np.repeat(rows, lengths)
    c = np.repeat(c0, lengths) + offsets
    promo[r, c] = True
    np.maximum.at(discount, (r, c), np.nan_to_num(np.repeat(pct, lengths)))
    return promo, discount
