"""Shared feature engineering: a dense daily grid per SKU/location and a demand model.

Every detector starts from the same two structures, built here once:

``Grid`` (``build_grid``)
    The sparse input frames of a ``DetectionInput`` turned into dense 2-D numpy arrays of shape
    ``(n_series, n_days)``: one row per SKU/location ("series"), one column per calendar day from
    the first day with data up to ``as_of`` (the last column). A missing sales row is a zero.
    Rows are sorted by (location_id, product_id), so the series of one location are contiguous.
    Building it is integer indexing (no groupby-apply), and the grid is kept on its
    ``DetectionInput``, so the service calling six detectors on one input pays once.
    Calendar closed days count as closed, and so does a day on which a busy store (at least
    ``INFER_CLOSED_MIN_SERIES`` selling items) recorded no sale of anything: a closing day the
    calendar forgot, or a till/feed outage, says nothing about any one item.

``GridWindow``
    The same arrays over a whole walk-forward window, built once; ``day(as_of)`` cuts out the
    grid of one day (views where no series drops out), equal to the grid of that day's own
    input. A single day's grid is a window of one day's input cut at its end.

Detectors of one run share what they derive alike (usable days, the baseline before the
as-of day, the current zero-sales runs) through ``memoised`` results on the grid.

``DemandModel`` (``fit_demand``)
    Expected units per series and day: ``rate x weekday_factor[weekday] x promo uplift``, zero
    on closed days, with a negative-binomial (NB2) dispersion per series:
    ``Var X = mu + dispersion x mu^2``.

    - Weekday factors are multiplicative, estimated per location as a ratio of totals and per
      series shrunk toward the location's (credibility weight ``E / (E + WEEKDAY_SHRINK_UNITS)``
      with ``E`` the units the series would have sold on that weekday without a weekday effect).
    - Daily units are winsorised at ``winsor_mult x`` the series' median selling-day quantity
      before the rate is averaged, so one bulk order does not inflate the baseline.
    - The rate is the Poisson maximum-likelihood rate over the trailing window,
      ``sum(units) / sum(weekday_factor)`` over usable days (listed, open, no event, no
      promotion, not sold out), i.e. a weekday-adjusted mean.
    - Dispersion: method of moments for NB2 with varying means,
      ``sum((x - mu)^2 - x) / sum(mu^2)`` on units capped only loosely, shrunk toward the
      location's pooled value and clipped to ``[DISPERSION_MIN, DISPERSION_MAX]``.
    - Promotion uplift: per location, units sold on promotion days over the units expected
      without the promotion, shrunk toward ``PROMO_UPLIFT_DEFAULT``.
    - ``log_p_no_sales`` gives the probability of a run without sales: NB2, bounded below by
      the item's own share of zero days (lumpy items sell on few days whatever their mean).

References: Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (multiplicative
seasonal indices); Cameron & Trivedi, *Regression Analysis of Count Data* (NB2 variance
function and its moment estimator); Buhlmann credibility (shrinkage); Iglewicz & Hoaglin 1993
(MAD as a robust spread).

No Django imports: detectors are unit-tested without a database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd

from .base import DetectionInput

T = TypeVar("T")

_NS_PER_DAY = 86_400 * 10**9

GRID_MAX_DAYS = 366
"""Longest history the grid keeps; older rows are ignored."""

INFER_CLOSED_MIN_SERIES = 20
"""A location-day with no sales of any item is treated as closed (a day the calendar forgot:
a weekly closing day, a bank holiday, a feed that did not arrive) when the location has at
least this many selling series. Below that, a quiet day is too ordinary to mean closed."""

WEEKDAY_SHRINK_UNITS = 30.0
"""Units of evidence at which a series' own weekday factor gets half the weight."""

WINSOR_FLOOR_UNITS = 3.0
"""The winsorising cap is never below this many units a day."""

DISPERSION_MIN = 0.05
DISPERSION_MAX = 10.0
DISPERSION_DEFAULT = 0.3
"""NB2 dispersion bounds and the prior used when a location has no usable history. The floor
keeps tails a little heavier than Poisson: weekday factors fitted on the same data absorb some
of the variance, which would otherwise make every model overconfident."""

DISPERSION_WINSOR_FACTOR = 4.0
"""Daily units are capped at this multiple of the rate's winsorising cap for the dispersion."""

DISPERSION_PRIOR_UNITS2 = 200.0
DISPERSION_BAND_EDGES = np.array([0.5, 2.0, 8.0, 32.0])
"""Velocity bands (units/day) whose series share a dispersion prior within a location."""
"""Weight (in units², the scale of ``sum(mu²)``) of the location's dispersion in a series'."""

PROMO_UPLIFT_DEFAULT = 1.5
PROMO_UPLIFT_MAX = 5.0
PROMO_UPLIFT_PRIOR_UNITS = 50.0
"""Promotion uplift prior, cap, and the expected units at which the data gets half the weight."""

ZERO_DAYS_MIN = 2
"""Zero-sale days a baseline needs before its share of zero days bounds a zero-run test."""

MAD_TO_SD = 1.4826
"""Scale factor turning a median absolute deviation into a normal-consistent SD."""

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, eq=False)
class Grid:
    """Dense daily arrays per series (SKU/location); see the module docstring.

    Shapes: ``S`` = number of series, ``D`` = number of days, ``L`` = number of locations.
    Quantities are float64 units (exact for integers below 2**53).
    """

    as_of: pd.Timestamp
    dates: pd.DatetimeIndex  # (D,), the last one is as_of
    weekday: np.ndarray  # (D,) int, Monday = 0
    product_id: np.ndarray  # (S,) int64
    location_id: np.ndarray  # (S,) int64
    location_ids: np.ndarray  # (L,) int64, sorted
    loc_index: np.ndarray  # (S,) index into location_ids
    loc_starts: np.ndarray  # (L,) first row of each location (rows are grouped by location)
    regular_price: np.ndarray  # (S,) float64 products.unit_price, NaN if unknown
    units: np.ndarray  # (S, D) units sold
    returned: np.ndarray  # (S, D) units returned
    price: np.ndarray  # (S, D) average realized unit price, NaN if unknown / no sale
    receipts: np.ndarray  # (S, D) units received
    adjustments: np.ndarray  # (S, D) recorded book-stock corrections, units (+/-)
    on_hand: np.ndarray | None  # (S, D) book stock at end of day, NaN where no record
    on_hand_ffill: np.ndarray | None  # (S, D) last known book stock, NaN before the first
    promo: np.ndarray  # (S, D) bool, a promotion covers the series that day
    discount_pct: np.ndarray  # (S, D) deepest promotion discount in % (0 without one)
    closed: np.ndarray  # (S, D) bool, calendar closed day or inferred closure
    calendar_closed: np.ndarray  # (S, D) bool, closed according to the calendar
    location_silent: np.ndarray  # (S, D) bool, the location recorded no sales of any item
    event: np.ndarray  # (S, D) bool, a calendar event (not closed) that day
    first_sale: np.ndarray  # (S,) column of the first sale, D if none
    # Results derived from the grid that several detectors need (see ``memoised``).
    memo: dict = field(default_factory=dict, repr=False)

    @property
    def n_series(self) -> int:
        return len(self.product_id)

    @property
    def n_days(self) -> int:
        return len(self.dates)

    @property
    def last(self) -> int:
        """Column of ``as_of``."""
        return len(self.dates) - 1

    @property
    def has_stock(self) -> bool:
        return self.on_hand is not None

    def location_quantile(self, values: np.ndarray, mask: np.ndarray, q: float, min_n: int):
        """Per-series ``q``-quantile of ``values[mask]`` over the series' location.

        Falls back to the quantile over all locations where a location has fewer than
        ``min_n`` values; NaN when even that pool is smaller. Returns an (S,) array.
        """
        return self.location_quantiles(values, mask, (q,), min_n)[0]

    def location_quantiles(
        self, values: np.ndarray, mask: np.ndarray, qs: tuple[float, ...], min_n: int
    ) -> list[np.ndarray]:
        """``location_quantile`` for several ``qs`` at once (one partition per location)."""
        per_loc = np.full((len(self.location_ids), len(qs)), np.nan)
        small = np.ones(len(self.location_ids), dtype=bool)
        ends = np.append(self.loc_starts[1:], self.n_series)
        # One quantile per location (tens of locations), not per series.
        for i, (lo, hi) in enumerate(zip(self.loc_starts, ends, strict=True)):
            vals = values[lo:hi][mask[lo:hi]]
            if len(vals) >= min_n:
                per_loc[i] = np.quantile(vals, qs)
                small[i] = False
        if small.any():
            pooled = values[mask]
            if len(pooled) >= min_n:
                per_loc[small] = np.quantile(pooled, qs)
        return [per_loc[self.loc_index, j] for j in range(len(qs))]


def build_grid(data: DetectionInput) -> Grid:
    """The dense daily ``Grid`` of ``data``, built once per input and shared by all detectors.

    Input frames follow ``base``'s contract; rows after ``as_of`` are ignored, and the
    (product, location, date) rows of sales and stock are taken as unique (the database
    enforces it). Runs in O(rows + series x days). The grid is memoised on the input object
    (``DetectionInput.grid``), so every detector of one run reuses it.
    """
    return data.grid


def _build_grid(data: DetectionInput) -> Grid:
    return GridWindow.build(data, end=data.as_of_ts).day(data.as_of_ts)


@dataclass(frozen=True, eq=False)
class GridWindow:
    """The grid arrays over a span of days, for every series seen in it; ``day`` cuts a ``Grid``.

    A walk-forward backfill builds this once for its whole window (the history of its first
    day to its last day) and hands each day a slice: the ``Grid`` of ``day(as_of)`` is equal,
    array for array, to the one built from that day's own ``DetectionInput``. Arrays are
    read-only, since a day's grid may be a view of them.

    Shapes as in ``Grid`` with ``S``/``D``/``L`` for the whole window; ``has_sales`` (S, D)
    marks cells with a sales row (a row with zero units counts), ``loc_units`` (L, D) sums
    units per location and day, ``calendar_closed``/``event`` are per location (L, D).
    """

    dates: pd.DatetimeIndex
    weekday: np.ndarray
    product_id: np.ndarray
    location_id: np.ndarray
    location_ids: np.ndarray
    loc_index: np.ndarray
    loc_starts: np.ndarray
    regular_price: np.ndarray
    units: np.ndarray
    returned: np.ndarray
    price: np.ndarray
    receipts: np.ndarray
    adjustments: np.ndarray
    on_hand: np.ndarray | None
    on_hand_ffill: np.ndarray | None
    promo: np.ndarray
    discount_pct: np.ndarray
    has_sales: np.ndarray
    loc_units: np.ndarray
    calendar_closed: np.ndarray
    event: np.ndarray
    clamped: bool  # rows more than GRID_MAX_DAYS before the end were left out

    @classmethod
    def build(
        cls, data: DetectionInput, *, end: pd.Timestamp, start: pd.Timestamp | None = None
    ) -> GridWindow:
        """Arrays from the first sales or stock row of ``data`` to ``end`` (rows after ``end``
        are ignored). ``start=None`` starts at most ``GRID_MAX_DAYS`` before ``end``, as the
        grid of one day does; a ``start`` starts there (older rows are dropped), however long
        the window.
        O(rows + series x days)."""
        sales = _until(data.sales, end)
        stock = _until(data.stock, end) if data.stock is not None else None
        clamped = False
        if start is None:
            starts = [f["date"].min() for f in (sales, stock) if f is not None and len(f)]
            first_row = min(starts) if starts else end
            start = max(first_row, end - pd.Timedelta(days=GRID_MAX_DAYS - 1))
            clamped = bool(first_row < start)
        dates = pd.date_range(start, end, freq="D")
        n_days = len(dates)
        sales = sales[sales["date"] >= start]
        if stock is not None:
            stock = stock[stock["date"] >= start]
        receipts = _until(data.receipts, end)
        receipts = receipts[receipts["date"] >= start]
        adjustments = _until(data.adjustments, end)
        adjustments = adjustments[adjustments["date"] >= start]

        # Series = SKU/locations seen in sales or stock, keyed location-major so rows group by
        # store.
        sales_keys = _key(sales)
        series = _SeriesIndex(
            sales_keys if stock is None else np.concatenate([sales_keys, _key(stock)])
        )
        keys = series.keys
        location_id = keys >> 32
        product_id = keys & 0xFFFFFFFF
        location_ids, loc_index = np.unique(location_id, return_inverse=True)
        loc_starts = np.searchsorted(location_id, location_ids)
        n_series = len(keys)
        shape = (n_series, n_days)

        def summed(frame: pd.DataFrame, column: str) -> np.ndarray:
            """(S, D) sums of a frame's ``column`` per series and day (rows of other series
            are ignored)."""
            row, found = series.lookup(_key(frame))
            cell = row[found] * n_days + _day_index(frame["date"], start)[found]
            weights = frame[column].to_numpy(dtype="float64")[found]
            sums = np.bincount(cell, weights=weights, minlength=n_series * n_days)
            return sums.reshape(shape).astype("float64", copy=False)  # int64 when no rows

        units = np.zeros(shape)
        returned = np.zeros(shape)
        price = np.full(shape, np.nan)
        has_sales = np.zeros(shape, dtype=bool)
        # Flat cell numbers: one 1-D scatter per column instead of 2-D fancy indexing.
        cell = series.rows[: len(sales)] * n_days + _day_index(sales["date"], start)
        units.reshape(-1)[cell] = sales["units_sold"].to_numpy(dtype="float64")
        returned.reshape(-1)[cell] = sales["units_returned"].to_numpy(dtype="float64")
        price.reshape(-1)[cell] = sales["unit_price"].to_numpy(dtype="float64")
        has_sales.reshape(-1)[cell] = True
        receipt_units = summed(receipts, "units")
        adjustment_units = summed(adjustments, "units")

        on_hand = on_hand_ffill = None
        if stock is not None:
            on_hand = np.full(shape, np.nan)
            cell = series.rows[len(sales) :] * n_days + _day_index(stock["date"], start)
            on_hand.reshape(-1)[cell] = stock["on_hand"].to_numpy(dtype="float64")
            # Book stock is usually recorded every day: nothing to fill then.
            on_hand_ffill = ffill(on_hand) if np.isnan(on_hand).any() else on_hand.copy()

        products = data.products
        regular_price = (
            products["unit_price"].reindex(product_id).to_numpy(dtype="float64", copy=True)
            if len(products)
            else np.full(n_series, np.nan)
        )
        closed_loc, event_loc = _calendar_masks(data.calendar, location_ids, start, n_days)
        promo, discount = _promotion_masks(data.promotions, product_id, location_id, start, n_days)
        window = cls(
            dates=dates,
            weekday=dates.day_of_week.to_numpy(),
            product_id=product_id,
            location_id=location_id,
            location_ids=location_ids,
            loc_index=loc_index,
            loc_starts=loc_starts,
            regular_price=regular_price,
            units=units,
            returned=returned,
            price=price,
            receipts=receipt_units,
            adjustments=adjustment_units,
            on_hand=on_hand,
            on_hand_ffill=on_hand_ffill,
            promo=promo,
            discount_pct=discount,
            has_sales=has_sales,
            loc_units=sum_by_location(units, loc_starts),
            calendar_closed=closed_loc,
            event=event_loc,
            clamped=clamped,
        )
        for value in vars(window).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        return window

    def day(self, as_of: pd.Timestamp, history_days: int | None = None) -> Grid:
        """The ``Grid`` of ``as_of`` from the ``history_days`` days ending on it (``None``: all
        the window holds up to ``as_of``).

        Equal to the grid of a ``DetectionInput`` holding this window's rows of those days
        (it starts on the first of them with a sales or stock row, at most ``GRID_MAX_DAYS``
        back, and holds the series with a row in it). Arrays are views where no series drops
        out. Raises ``ValueError`` for an ``as_of`` outside the window, or a history reaching
        back past rows the window left out.
        """
        end = (as_of - self.dates[0]).days
        if not 0 <= end < len(self.dates):
            raise ValueError(f"{as_of.date()} is outside the grid window.")
        floor = end - GRID_MAX_DAYS + 1
        lo = floor if history_days is None else end - history_days + 1
        if lo < 0 and self.clamped and (history_days is not None or floor < 0):
            raise ValueError(f"The grid window lacks the history of {as_of.date()}.")
        lo = max(lo, 0)
        has_row = self.has_sales[:, lo : end + 1]
        if self.on_hand is not None:
            has_row = has_row | ~np.isnan(self.on_hand[:, lo : end + 1])
        busy = np.flatnonzero(has_row.any(axis=0))
        if self.clamped and history_days is None:
            start = floor  # older rows exist: the grid starts GRID_MAX_DAYS back
        else:
            start = max(lo + busy[0], floor) if len(busy) else end
        cols = slice(start, end + 1)
        n_days = end + 1 - start
        present = has_row[:, start - lo :].any(axis=1)
        if present.all():
            rows = slice(None)
            location_ids, loc_index, loc_starts = self.location_ids, self.loc_index, self.loc_starts
            loc_rows = slice(None)
        else:
            rows = np.flatnonzero(present)
            location_id = self.location_id[rows]
            location_ids, loc_index = np.unique(location_id, return_inverse=True)
            loc_starts = np.searchsorted(location_id, location_ids)
            loc_rows = np.searchsorted(self.location_ids, location_ids)

        units = self.units[rows, cols]
        on_hand = on_hand_ffill = None
        if self.on_hand is not None:
            on_hand = self.on_hand[rows, cols]
            on_hand_ffill = self.on_hand_ffill[rows, cols]
            if start > 0:
                # The day's grid forgets stock counted before its first day.
                counted = ~np.isnan(on_hand)
                first = np.where(counted.any(axis=1), counted.argmax(axis=1), n_days)
                unseen = np.arange(n_days) < first[:, None]
                on_hand_ffill = np.where(unseen, np.nan, on_hand_ffill)
        closed_loc = self.calendar_closed[loc_rows, cols]
        silent = self.loc_units[loc_rows, cols] == 0
        selling_series = sum_by_location((units.sum(axis=1) > 0)[:, None].astype(float), loc_starts)
        inferred = silent & (selling_series >= INFER_CLOSED_MIN_SERIES)
        selling = units > 0
        dates = self.dates[cols]
        return Grid(
            as_of=as_of,
            dates=dates,
            weekday=self.weekday[cols],
            product_id=self.product_id[rows],
            location_id=self.location_id[rows],
            location_ids=location_ids,
            loc_index=loc_index,
            loc_starts=loc_starts,
            regular_price=self.regular_price[rows],
            units=units,
            returned=self.returned[rows, cols],
            price=self.price[rows, cols],
            receipts=self.receipts[rows, cols],
            adjustments=self.adjustments[rows, cols],
            on_hand=on_hand,
            on_hand_ffill=on_hand_ffill,
            promo=self.promo[rows, cols],
            discount_pct=self.discount_pct[rows, cols],
            closed=(closed_loc | inferred)[loc_index],
            calendar_closed=closed_loc[loc_index],
            location_silent=silent[loc_index],
            event=self.event[loc_rows, cols][loc_index],
            first_sale=np.where(selling.any(axis=1), selling.argmax(axis=1), n_days),
        )


class _SeriesIndex:
    """The sorted distinct series keys (``_key``) of some rows and each row's index in them.

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


def _until(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["date"] <= as_of]


def _key(frame: pd.DataFrame) -> np.ndarray:
    """One int64 per (location, product): location in the high 32 bits."""
    loc = frame["location_id"].to_numpy(dtype="int64")
    prod = frame["product_id"].to_numpy(dtype="int64")
    return (loc << 32) | prod


def _day_index(dates: pd.Series, start: pd.Timestamp) -> np.ndarray:
    """Days from ``start`` (midnight) to each date, floored."""
    ns = dates.to_numpy(dtype="datetime64[ns]").view("int64")
    return (ns - start.as_unit("ns").value) // _NS_PER_DAY


def sum_by_location(values: np.ndarray, loc_starts: np.ndarray) -> np.ndarray:
    """Sum (S, ...) rows into (L, ...) location totals (rows are grouped by location)."""
    if len(loc_starts) == 0:
        return np.zeros((0, *values.shape[1:]))
    return np.add.reduceat(values, loc_starts, axis=0)


def _calendar_masks(
    calendar: pd.DataFrame, location_ids: np.ndarray, start: pd.Timestamp, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """(L, D) closed and event masks; a calendar row without location applies everywhere."""
    closed = np.zeros((len(location_ids), n_days), dtype=bool)
    event = np.zeros_like(closed)
    if calendar is None or not len(calendar) or not len(location_ids):
        return closed, event
    col = _day_index(calendar["date"], start)
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


def _promotion_masks(
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
        c0=_day_index(promotions["start_date"], start),
        c1=_day_index(promotions["end_date"], start),
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


def ffill(values: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along axis 1 (leading NaNs stay NaN)."""
    if values.size == 0:
        return values.copy()
    present = ~np.isnan(values)
    idx = np.where(present, np.arange(values.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(values, idx, axis=1)
    seen = np.logical_or.accumulate(present, axis=1)
    out[~seen] = np.nan
    return out


def days_after(mask: np.ndarray, n_days: int) -> np.ndarray:
    """True on the ``n_days`` days following a run of ``mask`` (and not on ``mask`` itself)."""
    after = np.zeros_like(mask)
    for k in range(1, min(n_days, mask.shape[1]) + 1):
        after[:, k:] |= mask[:, :-k]
    return after & ~mask


def row_nanquantile(values: np.ndarray, q: float) -> np.ndarray:
    """``q``-quantile (linear interpolation) of each row ignoring NaN; NaN for an all-NaN row.

    Sort-based: much faster than ``np.nanquantile`` along a short axis, and silent.
    """
    return row_nanquantiles(values, (q,))[0]


def row_nanquantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Several ``row_nanquantile`` of the same (S, k) rows from one sort: a list of (S,)."""
    if values.shape[1] == 0:
        return [np.full(values.shape[0], np.nan) for _ in qs]
    s = np.sort(values, axis=1)  # NaN sorts last
    n = (~np.isnan(values)).sum(axis=1)
    last = np.maximum(n - 1, 0)
    out = []
    for q in qs:
        pos = q * last
        lo = np.floor(pos).astype("int64")
        hi = np.minimum(lo + 1, last)
        frac = pos - lo
        a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
        b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
        out.append(np.where(n > 0, a + frac * (b - a), np.nan))
    return out


def row_nanmedian(values: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (see ``row_nanquantile``)."""
    return row_nanquantile(values, 0.5)


def where_else_nan(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``np.where(mask, values, nan)`` without a branch per cell (only -0.0 turns into 0.0).

    ``values + 0 / mask`` (0/1 is 0, 0/0 is NaN): several times faster than ``np.where`` on
    the irregular masks of sparse sellers, which defeat the CPU's branch prediction.
    """
    with np.errstate(invalid="ignore"):
        return values + np.divide(0.0, mask)


def memoised(grid: Grid, key: tuple, compute: Callable[[], T]) -> T:
    """``compute()`` once per grid and ``key``; later calls return the first result.

    For what several detectors of one run derive alike from the grid (usable days, the
    baseline before the as-of day, the current zero-sales runs). Callers must not modify the
    result. ``key`` names the computation and every parameter it depends on.
    """
    if key not in grid.memo:
        grid.memo[key] = compute()
    return grid.memo[key]


def stockout(grid: Grid) -> np.ndarray:
    """(S, D) bool: book stock known and ≤ 0 at the end of the day (sales were censored).

    Shared (``memoised``): do not modify it.
    """

    def compute() -> np.ndarray:
        if grid.on_hand_ffill is None:
            return np.zeros(grid.units.shape, dtype=bool)
        return grid.on_hand_ffill <= 0

    return memoised(grid, ("stockout",), compute)


def usable_days(grid: Grid) -> np.ndarray:
    """(S, D) bool: days whose sales show ordinary demand.

    Open, no calendar event, no promotion, not sold out, and not before the series' first sale
    (an item not yet listed sells nothing, which says nothing about its demand). Shared
    (``memoised``): do not modify it.
    """

    def compute() -> np.ndarray:
        listed = np.arange(grid.n_days) >= grid.first_sale[:, None]
        return listed & ~(grid.closed | grid.event | grid.promo | stockout(grid))

    return memoised(grid, ("usable_days",), compute)


def as_of_baseline(grid: Grid, baseline_days: int, winsor_mult: float) -> DemandModel:
    """``fit_demand`` on the usable days before the as-of day (the day under test is never
    its own baseline), shared by the spike and drop detectors."""

    def compute() -> DemandModel:
        usable = usable_days(grid) & (np.arange(grid.n_days) < grid.last)
        return fit_demand(grid, usable, grid.last - 1, baseline_days, winsor_mult)

    return memoised(grid, ("as_of_baseline", baseline_days, winsor_mult), compute)


def raise_severity(severity: np.ndarray, condition: np.ndarray) -> np.ndarray:
    """Raise severities one level (info → warning → critical) where ``condition`` holds."""
    raised = np.where(severity == "info", "warning", "critical")
    return np.where(condition, raised, severity)


@dataclass(frozen=True, eq=False)
class DemandModel:
    """Per-series demand parameters from ``fit_demand`` (arrays of length S unless noted)."""

    rate: np.ndarray  # units per day with weekday factor 1; NaN where not estimable
    weekday_factor: np.ndarray  # (S, 7)
    dispersion: np.ndarray  # NB2 alpha
    promo_uplift: np.ndarray  # multiplier on promotion days (the location's)
    cap: np.ndarray  # winsorising cap, units/day
    baseline_days: np.ndarray  # usable days in the baseline window
    baseline_sales_days: np.ndarray  # of which with a sale
    robust_sd: np.ndarray  # MAD-based SD of the residuals in the window, units
    median_selling_units: np.ndarray  # median units on usable selling days (raw), NaN if none
    max_selling_units: np.ndarray  # largest units on a usable selling day (raw), NaN if none
    zero_share: np.ndarray  # share of usable window days without a sale (0 if < ZERO_DAYS_MIN)
    window_mean: np.ndarray  # mean (winsorised) units per usable window day

    def expected(self, grid: Grid, cols: np.ndarray | slice | int = slice(None)) -> np.ndarray:
        """(S, k) expected units of each series on the given grid column(s); 0 on closed days."""
        if not isinstance(cols, slice):
            cols = np.atleast_1d(np.arange(grid.n_days)[cols])
        mu = self.rate[:, None] * self.weekday_factor[:, grid.weekday[cols]]
        # In place: the same products as ``rate x factor x uplift`` (uplift 1 off promotion),
        # without two more (S, D) temporaries.
        np.multiply(mu, self.promo_uplift[:, None], out=mu, where=grid.promo[:, cols])
        np.copyto(mu, 0.0, where=grid.closed[:, cols])
        return mu

    def expected_at(self, grid: Grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``expected`` on the cells (``rows[i]``, ``cols[i]``) only: an array like ``rows``."""
        mu = self.rate[rows] * self.weekday_factor[rows, grid.weekday[cols]]
        promo = grid.promo[rows, cols]
        mu[promo] *= self.promo_uplift[rows[promo]]
        mu[grid.closed[rows, cols]] = 0.0
        return mu


def fit_demand(
    grid: Grid,
    usable: np.ndarray,
    end_col: np.ndarray | int,
    window_days: int,
    winsor_mult: float,
) -> DemandModel:
    """Fit the demand model on ``usable`` days up to ``end_col`` (per series or one column).

    ``usable`` (S, D) marks days that show ordinary demand (see ``usable_days``; detectors add
    their own exclusions). Weekday factors use all usable days up to ``end_col``; the rate,
    dispersion and robust SD use the trailing ``window_days`` calendar days ending at
    ``end_col`` (inclusive). Promotion days up to ``end_col`` feed the uplift estimate.
    Window statistics are computed on each series' band of ``window_days`` columns only
    (``WindowBand``), not on the whole grid.
    """
    n_series, n_days = grid.units.shape
    cols = np.arange(n_days)
    end = np.broadcast_to(np.asarray(end_col), (n_series,))
    raw = grid.units
    hist = usable & (cols <= (end_col if np.ndim(end_col) == 0 else end[:, None]))

    positive = where_else_nan(raw, hist & (raw > 0))
    median_selling, max_selling = row_nanquantiles(positive, (0.5, 1.0))
    cap = np.maximum(winsor_mult * median_selling, WINSOR_FLOOR_UNITS)
    cap = np.where(np.isnan(cap), WINSOR_FLOOR_UNITS, cap)
    units = np.minimum(raw, cap[:, None])

    # Finite values times a 0/1 mask: what ``np.where(mask, x, 0)`` gives, without a branch
    # per cell (masks of sparse sellers defeat branch prediction).
    hist_units = units * hist
    n_hist = hist.sum(axis=1)
    mean_hist = np.divide(hist_units.sum(axis=1), n_hist, out=np.zeros(n_series), where=n_hist > 0)
    units_w = weekday_sums(hist_units, grid.weekday)  # (S, 7)
    # Units expected with no weekday effect.
    exposure_w = weekday_sums(hist, grid.weekday) * mean_hist[:, None]
    loc_units_w = sum_by_location(units_w, grid.loc_starts)
    loc_exposure_w = sum_by_location(exposure_w, grid.loc_starts)
    loc_factor = np.divide(
        loc_units_w, loc_exposure_w, out=np.ones_like(loc_units_w), where=loc_exposure_w > 0
    )
    own = np.divide(units_w, exposure_w, out=np.zeros_like(units_w), where=exposure_w > 0)
    weight = exposure_w / (exposure_w + WEEKDAY_SHRINK_UNITS)
    factor = weight * own + (1.0 - weight) * loc_factor[grid.loc_index]

    # The trailing window: (S, k) bands of columns, k = min(window_days, D).
    band = WindowBand(end_col, window_days, n_days)
    window = band.take(hist)
    raw_b = band.take(raw)
    units_b = np.minimum(raw_b, cap[:, None])
    day_factor = band.weekday_values(factor, grid.weekday)
    exposure = (day_factor * window).sum(axis=1)
    window_units = (units_b * window).sum(axis=1)
    window_n = window.sum(axis=1)
    rate = np.divide(window_units, exposure, out=np.full(n_series, np.nan), where=exposure > 0)
    known_rate = np.nan_to_num(rate)

    mu = known_rate[:, None] * day_factor
    # The variance sees the raw quantities up to a looser cap: winsorising at the rate's cap
    # would cut the tail that the dispersion is there to describe.
    loose = np.minimum(raw_b, DISPERSION_WINSOR_FACTOR * cap[:, None])
    num = (((loose - mu) ** 2 - loose) * window).sum(axis=1)
    den = (mu**2 * window).sum(axis=1)
    # Empirical-Bayes prior: the pooled dispersion of the location's series of similar
    # velocity (slow movers are far lumpier than fast ones; a location-wide pool is dominated
    # by the fast movers and makes every medium mover look overconfidently regular).
    velocity = np.searchsorted(DISPERSION_BAND_EDGES, known_rate)
    pool = grid.loc_index * (len(DISPERSION_BAND_EDGES) + 1) + velocity
    n_pools = len(grid.location_ids) * (len(DISPERSION_BAND_EDGES) + 1)
    pool_num = np.bincount(pool, weights=num, minlength=n_pools)
    pool_den = np.bincount(pool, weights=den, minlength=n_pools)
    pool_alpha = np.divide(
        pool_num, pool_den, out=np.full(n_pools, DISPERSION_DEFAULT), where=pool_den > 0
    ).clip(DISPERSION_MIN, DISPERSION_MAX)
    prior = pool_alpha[pool]
    dispersion = ((num + DISPERSION_PRIOR_UNITS2 * prior) / (den + DISPERSION_PRIOR_UNITS2)).clip(
        DISPERSION_MIN, DISPERSION_MAX
    )

    # Promotion days are few: work on their cells, not on the grid.
    rows, days = promotion_cells(grid)
    before = days <= end[rows]
    rows, days = rows[before], days[before]
    promo_units = sum_by_location(
        np.bincount(
            rows,
            weights=np.minimum(raw[rows, days], PROMO_UPLIFT_MAX * cap[rows]),
            minlength=n_series,
        ),
        grid.loc_starts,
    )
    promo_mu = known_rate[rows] * factor[rows, grid.weekday[days]]
    promo_expected = sum_by_location(
        np.bincount(rows, weights=promo_mu, minlength=n_series), grid.loc_starts
    )
    uplift = (
        (promo_units + PROMO_UPLIFT_PRIOR_UNITS * PROMO_UPLIFT_DEFAULT)
        / (promo_expected + PROMO_UPLIFT_PRIOR_UNITS)
    ).clip(1.0, PROMO_UPLIFT_MAX)

    zero_days = (window & (raw_b <= 0)).sum(axis=1)
    resid = where_else_nan(units_b - mu, window)
    centre = row_nanmedian(resid)
    robust_sd = MAD_TO_SD * row_nanmedian(np.abs(resid - centre[:, None]))

    return DemandModel(
        rate=rate,
        weekday_factor=factor,
        dispersion=dispersion,
        promo_uplift=uplift[grid.loc_index],
        cap=cap,
        baseline_days=window_n,
        baseline_sales_days=(window & (raw_b > 0)).sum(axis=1),
        robust_sd=np.nan_to_num(robust_sd),
        median_selling_units=median_selling,
        max_selling_units=max_selling,
        zero_share=np.divide(
            zero_days, window_n, out=np.zeros(n_series), where=zero_days >= ZERO_DAYS_MIN
        ),
        window_mean=np.divide(window_units, window_n, out=np.zeros(n_series), where=window_n > 0),
    )


class WindowBand:
    """Each series' trailing window ``end - window_days < col <= end`` as a band of ``k``
    consecutive grid columns (``k = min(window_days, D)``), so window statistics cost
    (S, k) instead of (S, D).

    ``end`` is one column for all series (the band is a slice: views, no copy) or one per
    series (a gather). A band clipped at the grid's first column holds columns after ``end``:
    the caller masks them (its history mask ends at ``end``).
    """

    def __init__(self, end: np.ndarray | int, window_days: int, n_days: int):
        self.k = max(min(window_days, n_days), 1)
        self.scalar = np.ndim(end) == 0
        self.first = np.clip(np.asarray(end) - window_days + 1, 0, max(n_days - self.k, 0))

    def take(self, values: np.ndarray) -> np.ndarray:
        """(S, k) band of the (S, D) ``values`` (a view for a single end column)."""
        if self.scalar:
            return values[:, self.first : self.first + self.k]
        windows = np.lib.stride_tricks.sliding_window_view(values, self.k, axis=1)
        return windows[np.arange(len(values)), self.first]

    def weekday_values(self, per_weekday: np.ndarray, weekday: np.ndarray) -> np.ndarray:
        """(S, k) value of each band column's weekday from (S, 7) ``per_weekday``."""
        # Band columns are consecutive days: each series' seven values from its first
        # column's weekday on, repeated.
        first_weekday = weekday[self.first] if len(weekday) else np.zeros_like(self.first)
        week = (np.asarray(first_weekday)[..., None] + np.arange(7)) % 7
        if self.scalar:
            rolled = per_weekday[:, week]
        else:
            rolled = np.take_along_axis(per_weekday, week, axis=1)
        return np.tile(rolled, -(-self.k // 7))[:, : self.k]


def promotion_cells(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the promotion days that show demand: open, no calendar event, not
    sold out. Shared (``memoised``)."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        rows, days = np.nonzero(grid.promo)
        keep = ~(grid.closed[rows, days] | grid.event[rows, days] | stockout(grid)[rows, days])
        return rows[keep], days[keep]

    return memoised(grid, ("promotion_cells",), compute)


def weekday_sums(values: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """(S, 7) sums of (S, D) ``values`` over the columns of each weekday (Monday = 0).

    ``weekday`` (D,) is the grid's, consecutive days. Seven strided sums: a matrix product
    with a one-hot weekday matrix gives the same for whole units but costs a BLAS call whose
    threads spin on a busy machine.
    """
    out = np.zeros((values.shape[0], 7))
    for first in range(min(7, values.shape[1])):
        out[:, weekday[first]] = values[:, first::7].sum(axis=1)
    return out


def log_p_no_sales(model: DemandModel, mu: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(S,) log-probability that a series sells nothing on the ``days`` (S, D) mask.

    The larger (more conservative) of two estimates: NB2 with the model's expected units,
    and the series' own share of zero days raised to the number of days. The second protects
    lumpy items (bought by the case on a few days a week), whose many zero days a
    moment-matched NB understates; it is not used for items with fewer than
    ``ZERO_DAYS_MIN`` zero days in their baseline (there the NB is the better guide).
    """
    # Logs and ratios only on the ``days`` cells (a zero run is a few days of a long grid);
    # zeros elsewhere keep the row sums as over the whole grid.
    rows, cols = np.nonzero(days)
    dispersion = model.dispersion[rows]
    nb_days = np.zeros(days.shape)
    nb_days[rows, cols] = nb_log_p_zero(mu[rows, cols], dispersion)
    nb = nb_days.sum(axis=1)
    # A day expected to sell twice the average counts as two average days (exact for a
    # Poisson mixture's zero term), so promotions and busy weekdays keep their weight.
    mean = model.window_mean[rows]
    weight = np.zeros(days.shape)
    weight[rows, cols] = np.divide(mu[rows, cols], mean, out=np.ones_like(mean), where=mean > 0)
    share = model.zero_share
    exponent = weight.sum(axis=1)
    empirical = np.where(share > 0, exponent * np.log(np.where(share > 0, share, 1.0)), -np.inf)
    return np.maximum(nb, empirical)


def nb_log_p_zero(mu: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """log P(X = 0) for X ~ NB2(mean mu, dispersion alpha): ``-log1p(alpha mu) / alpha``."""
    return -np.log1p(dispersion * mu) / dispersion


def nb_sd(mu: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """Standard deviation of NB2: ``sqrt(mu + alpha mu²)``."""
    return np.sqrt(mu + dispersion * mu**2)


def fmt_units(value: float) -> str:
    """Units for an explanation: ``80,995`` for whole numbers, ``4.2`` below 10, else rounded."""
    if float(value).is_integer() or abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def json_number(value: float, digits: int) -> float | None:
    """A rounded float for a finding's ``details``; ``None`` for NaN/inf (not valid JSON)."""
    return round(float(value), digits) if np.isfinite(value) else None


def fmt_count(value: float, noun: str = "unit") -> str:
    """``1 unit``, ``80,995 units``, ``4.2 units``."""
    return f"{fmt_units(value)} {noun}" + ("" if value == 1 else "s")


def fmt_date(value: pd.Timestamp) -> str:
    """A date for an explanation: ``3 Mar``."""
    return f"{value.day} {value:%b}"
