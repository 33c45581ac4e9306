"""The dense daily grid every detector starts from, and what detectors derive from it.

``Grid`` (``build_grid``)
    The sparse input frames of a ``DetectionInput`` turned into dense 2-D numpy arrays of shape
    ``(n_series, n_days)``: one row per SKU/location ("series"), one column per calendar day from
    the first day with data up to ``as_of`` (the last column). A missing sales row is a zero.
    Rows are sorted by (location_id, product_id), so the series of one location are contiguous.
    Building it is integer indexing (no groupby-apply), and the grid is kept on its
    ``DetectionInput`` (its ``memo``), so the service calling six detectors on one input pays once.
    Calendar closed days count as closed, and so does a day on which a busy store (at least
    ``INFER_CLOSED_MIN_SERIES`` selling items) recorded no sale of anything: a closing day the
    calendar forgot, or a till/feed outage, says nothing about any one item.

``GridWindow``
    The same arrays over a whole walk-forward window, built once; ``day(as_of)`` cuts out the
    grid of one day (views where no series drops out), equal to the grid of that day's own
    input. A single day's grid is a window of one day's input cut at its end.

Detectors of one run share what they derive alike (usable days, the baseline before the
as-of day, the current zero-sales runs) through ``memoised`` results on the grid.

Dependencies point one way: this module reads ``base.DetectionInput`` and fills its ``memo``;
``base`` knows nothing of the grid. No Django imports: detectors are unit-tested without a
database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd

from .arrays import ffill, sum_by_location
from .base import DetectionInput
from .grid_inputs import (
    SeriesIndex,
    calendar_masks,
    day_index,
    promotion_masks,
    rows_until,
    series_key,
)

T = TypeVar("T")

GRID_MAX_DAYS = 366
"""Longest history the grid keeps; older rows are ignored."""

INFER_CLOSED_MIN_SERIES = 20
"""A location-day with no sales of any item is treated as closed (a day the calendar forgot:
a weekly closing day, a bank holiday, a feed that did not arrive) when the location has at
least this many selling series. Below that, a quiet day is too ordinary to mean closed."""


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


GRID_MEMO_KEY = "grid"
"""Key of the grid in ``DetectionInput.memo``."""


def build_grid(data: DetectionInput) -> Grid:
    """The dense daily ``Grid`` of ``data``, built once per input and shared by all detectors.

    Input frames follow ``base``'s contract; rows after ``as_of`` are ignored, and the
    (product, location, date) rows of sales and stock are taken as unique (the database
    enforces it). Runs in O(rows + series x days). The grid is memoised on the input object
    (``DetectionInput.memo``), so every detector of one run reuses it; an input with a
    ``grid_factory`` (a walk-forward backfill's day cut out of its window) gets the grid from
    it instead.
    """
    grid = data.memo.get(GRID_MEMO_KEY)
    if grid is None:
        grid = data.grid_factory() if data.grid_factory is not None else grid_from_frames(data)
        data.memo[GRID_MEMO_KEY] = grid
    return grid


def grid_from_frames(data: DetectionInput) -> Grid:
    """The grid of ``data`` built from its frames, ignoring any ``grid_factory`` (what a
    factory must return) and not memoised: ``build_grid`` is what detectors call."""
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
        sales = rows_until(data.sales, end)
        stock = rows_until(data.stock, end) if data.stock is not None else None
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
        receipts = rows_until(data.receipts, end)
        receipts = receipts[receipts["date"] >= start]
        adjustments = rows_until(data.adjustments, end)
        adjustments = adjustments[adjustments["date"] >= start]

        # Series = SKU/locations seen in sales or stock, keyed location-major so rows group by
        # store.
        sales_keys = series_key(sales)
        series = SeriesIndex(
            sales_keys if stock is None else np.concatenate([sales_keys, series_key(stock)])
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
            row, found = series.lookup(series_key(frame))
            cell = row[found] * n_days + day_index(frame["date"], start)[found]
            weights = frame[column].to_numpy(dtype="float64")[found]
            sums = np.bincount(cell, weights=weights, minlength=n_series * n_days)
            return sums.reshape(shape).astype("float64", copy=False)  # int64 when no rows

        units = np.zeros(shape)
        returned = np.zeros(shape)
        price = np.full(shape, np.nan)
        has_sales = np.zeros(shape, dtype=bool)
        # Flat cell numbers: one 1-D scatter per column instead of 2-D fancy indexing.
        cell = series.rows[: len(sales)] * n_days + day_index(sales["date"], start)
        units.reshape(-1)[cell] = sales["units_sold"].to_numpy(dtype="float64")
        returned.reshape(-1)[cell] = sales["units_returned"].to_numpy(dtype="float64")
        price.reshape(-1)[cell] = sales["unit_price"].to_numpy(dtype="float64")
        has_sales.reshape(-1)[cell] = True
        receipt_units = summed(receipts, "units")
        adjustment_units = summed(adjustments, "units")

        on_hand = on_hand_ffill = None
        if stock is not None:
            on_hand = np.full(shape, np.nan)
            cell = series.rows[len(sales) :] * n_days + day_index(stock["date"], start)
            on_hand.reshape(-1)[cell] = stock["on_hand"].to_numpy(dtype="float64")
            # Book stock is usually recorded every day: nothing to fill then.
            on_hand_ffill = ffill(on_hand) if np.isnan(on_hand).any() else on_hand.copy()

        products = data.products
        regular_price = (
            products["unit_price"].reindex(product_id).to_numpy(dtype="float64", copy=True)
            if len(products)
            else np.full(n_series, np.nan)
        )
        closed_loc, event_loc = calendar_masks(data.calendar, location_ids, start, n_days)
        promo, discount = promotion_masks(data.promotions, product_id, location_id, start, n_days)
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


def promotion_cells(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the promotion days that show demand: open, no calendar event, not
    sold out. Shared (``memoised``)."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        rows, days = np.nonzero(grid.promo)
        keep = ~(grid.closed[rows, days] | grid.event[rows, days] | stockout(grid)[rows, days])
        return rows[keep], days[keep]

    return memoised(grid, ("promotion_cells",), compute)
