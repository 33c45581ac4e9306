"""Shared feature engineering: a dense daily grid per SKU/location and a demand model.

Every detector starts from the same two structures, built here once:

``Grid`` (``build_grid``)
    The sparse input frames of a ``DetectionInput`` turned into dense 2-D numpy arrays of shape
    ``(n_series, n_days)``: one row per SKU/location ("series"), one column per calendar day from
    the first day with data up to ``as_of`` (the last column). A missing sales row is a zero.
    Rows are sorted by (location_id, product_id), so the series of one location are contiguous.
    Building it is integer indexing (no groupby-apply), and the last grid built is kept for the
    same ``DetectionInput`` object, so the service calling six detectors on one input pays once.
    Calendar closed days count as closed, and so does a day on which a busy store (at least
    ``INFER_CLOSED_MIN_SERIES`` selling items) recorded no sale of anything: a closing day the
    calendar forgot, or a till/feed outage, says nothing about any one item.

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

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import DetectionInput

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
        pooled = values[mask]
        overall = float(np.quantile(pooled, q)) if len(pooled) >= min_n else math.nan
        per_loc = np.full(len(self.location_ids), overall)
        ends = np.append(self.loc_starts[1:], self.n_series)
        # One quantile per location (tens of locations), not per series.
        for i, (lo, hi) in enumerate(zip(self.loc_starts, ends, strict=True)):
            vals = values[lo:hi][mask[lo:hi]]
            if len(vals) >= min_n:
                per_loc[i] = np.quantile(vals, q)
        return per_loc[self.loc_index]


def build_grid(data: DetectionInput) -> Grid:
    """The dense daily ``Grid`` of ``data``, built once per input and shared by all detectors.

    Input frames follow ``base``'s contract; rows after ``as_of`` are ignored, and the
    (product, location, date) rows of sales and stock are taken as unique (the database
    enforces it). Runs in O(rows + series x days). The grid is memoised on the input object
    (``DetectionInput.grid``), so every detector of one run reuses it.
    """
    return data.grid


def _build_grid(data: DetectionInput) -> Grid:
    as_of = data.as_of_ts
    sales = _until(data.sales, as_of)
    stock = _until(data.stock, as_of) if data.stock is not None else None
    receipts = _until(data.receipts, as_of)

    starts = [frame["date"].min() for frame in (sales, stock) if frame is not None and len(frame)]
    start = min(starts) if starts else as_of
    start = max(start, as_of - pd.Timedelta(days=GRID_MAX_DAYS - 1))
    dates = pd.date_range(start, as_of, freq="D")
    n_days = len(dates)
    sales = sales[sales["date"] >= start]
    if stock is not None:
        stock = stock[stock["date"] >= start]
    receipts = receipts[receipts["date"] >= start]

    # Series = SKU/locations seen in sales or stock, keyed location-major so rows group by store.
    key_parts = [_key(sales)] + ([_key(stock)] if stock is not None else [])
    keys = np.unique(np.concatenate(key_parts)) if key_parts else np.zeros(0, dtype="int64")
    location_id = keys >> 32
    product_id = keys & 0xFFFFFFFF
    location_ids, loc_index = np.unique(location_id, return_inverse=True)
    loc_starts = np.searchsorted(location_id, location_ids)
    n_series = len(keys)
    shape = (n_series, n_days)

    def cells(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = _key(frame)
        row = np.searchsorted(keys, k)
        found = (row < n_series) & (keys[np.minimum(row, max(n_series - 1, 0))] == k)
        col = _day_index(frame["date"], start)
        return row[found], col[found], found

    units = np.zeros(shape)
    returned = np.zeros(shape)
    price = np.full(shape, np.nan)
    row, col, found = cells(sales)
    units[row, col] = sales["units_sold"].to_numpy(dtype="float64")[found]
    returned[row, col] = sales["units_returned"].to_numpy(dtype="float64")[found]
    price[row, col] = sales["unit_price"].to_numpy(dtype="float64")[found]

    receipt_units = np.zeros(shape)
    row, col, found = cells(receipts)
    np.add.at(receipt_units, (row, col), receipts["units"].to_numpy(dtype="float64")[found])

    adjustment_units = np.zeros(shape)
    adjustments = _until(data.adjustments, as_of)
    adjustments = adjustments[adjustments["date"] >= start]
    row, col, found = cells(adjustments)
    np.add.at(adjustment_units, (row, col), adjustments["units"].to_numpy(dtype="float64")[found])

    on_hand = on_hand_ffill = None
    if stock is not None:
        on_hand = np.full(shape, np.nan)
        row, col, found = cells(stock)
        on_hand[row, col] = stock["on_hand"].to_numpy(dtype="float64")[found]
        on_hand_ffill = ffill(on_hand)

    products = data.products
    regular_price = (
        products["unit_price"].reindex(product_id).to_numpy(dtype="float64", copy=True)
        if len(products)
        else np.full(n_series, np.nan)
    )

    weekday = dates.day_of_week.to_numpy()
    closed_loc, event_loc = _calendar_masks(data.calendar, location_ids, start, n_days)
    loc_units = sum_by_location(units, loc_starts)
    selling_series = sum_by_location((units.sum(axis=1) > 0)[:, None].astype(float), loc_starts)
    silent = loc_units == 0
    inferred = silent & (selling_series >= INFER_CLOSED_MIN_SERIES)
    closed = (closed_loc | inferred)[loc_index]
    event = event_loc[loc_index]
    promo, discount = _promotion_masks(data.promotions, product_id, location_id, start, n_days)

    selling = units > 0
    first_sale = np.where(selling.any(axis=1), selling.argmax(axis=1), n_days)

    return Grid(
        as_of=as_of,
        dates=dates,
        weekday=weekday,
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
        closed=closed,
        calendar_closed=closed_loc[loc_index],
        location_silent=silent[loc_index],
        event=event,
        first_sale=first_sale,
    )


def _until(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["date"] <= as_of]


def _key(frame: pd.DataFrame) -> np.ndarray:
    """One int64 per (location, product): location in the high 32 bits."""
    loc = frame["location_id"].to_numpy(dtype="int64")
    prod = frame["product_id"].to_numpy(dtype="int64")
    return (loc << 32) | prod


def _day_index(dates: pd.Series, start: pd.Timestamp) -> np.ndarray:
    delta = dates.to_numpy(dtype="datetime64[ns]") - start.to_datetime64()
    return (delta // np.timedelta64(1, "D")).astype("int64")


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
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    s = np.sort(values, axis=1)  # NaN sorts last
    n = (~np.isnan(values)).sum(axis=1)
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype("int64")
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    frac = pos - lo
    a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
    return np.where(n > 0, a + frac * (b - a), np.nan)


def row_nanmedian(values: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (see ``row_nanquantile``)."""
    return row_nanquantile(values, 0.5)


def stockout(grid: Grid) -> np.ndarray:
    """(S, D) bool: book stock known and ≤ 0 at the end of the day (sales were censored)."""
    if grid.on_hand_ffill is None:
        return np.zeros(grid.units.shape, dtype=bool)
    return grid.on_hand_ffill <= 0


def usable_days(grid: Grid) -> np.ndarray:
    """(S, D) bool: days whose sales show ordinary demand.

    Open, no calendar event, no promotion, not sold out, and not before the series' first sale
    (an item not yet listed sells nothing, which says nothing about its demand).
    """
    listed = np.arange(grid.n_days) >= grid.first_sale[:, None]
    return listed & ~(grid.closed | grid.event | grid.promo | stockout(grid))


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
        cols = np.atleast_1d(np.arange(grid.n_days)[cols])
        factor = self.weekday_factor[:, grid.weekday[cols]]
        uplift = np.where(grid.promo[:, cols], self.promo_uplift[:, None], 1.0)
        mu = self.rate[:, None] * factor * uplift
        return np.where(grid.closed[:, cols], 0.0, mu)


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
    """
    n_series, n_days = grid.units.shape
    cols = np.arange(n_days)
    end = np.broadcast_to(np.asarray(end_col), (n_series,))[:, None]
    hist = usable & (cols <= end)
    window = hist & (cols > end - window_days)

    positive = np.where(hist & (grid.units > 0), grid.units, np.nan)
    median_selling = row_nanmedian(positive)
    cap = np.maximum(winsor_mult * median_selling, WINSOR_FLOOR_UNITS)
    cap = np.where(np.isnan(cap), WINSOR_FLOOR_UNITS, cap)
    units = np.minimum(grid.units, cap[:, None])

    onehot = (grid.weekday[:, None] == np.arange(7)).astype(float)  # (D, 7)
    hist_f = hist.astype(float)
    hist_units = units * hist_f
    n_hist = hist_f.sum(axis=1)
    mean_hist = np.divide(hist_units.sum(axis=1), n_hist, out=np.zeros(n_series), where=n_hist > 0)
    units_w = hist_units @ onehot  # (S, 7)
    exposure_w = (hist_f @ onehot) * mean_hist[:, None]  # units expected with no weekday effect
    loc_units_w = sum_by_location(units_w, grid.loc_starts)
    loc_exposure_w = sum_by_location(exposure_w, grid.loc_starts)
    loc_factor = np.divide(
        loc_units_w, loc_exposure_w, out=np.ones_like(loc_units_w), where=loc_exposure_w > 0
    )
    own = np.divide(units_w, exposure_w, out=np.zeros_like(units_w), where=exposure_w > 0)
    weight = exposure_w / (exposure_w + WEEKDAY_SHRINK_UNITS)
    factor = weight * own + (1.0 - weight) * loc_factor[grid.loc_index]

    day_factor = factor[:, grid.weekday]
    window_f = window.astype(float)
    exposure = (day_factor * window_f).sum(axis=1)
    rate = np.divide(
        (units * window_f).sum(axis=1), exposure, out=np.full(n_series, np.nan), where=exposure > 0
    )

    mu = np.nan_to_num(rate)[:, None] * day_factor
    # The variance sees the raw quantities up to a looser cap: winsorising at the rate's cap
    # would cut the tail that the dispersion is there to describe.
    loose = np.minimum(grid.units, DISPERSION_WINSOR_FACTOR * cap[:, None])
    num = (((loose - mu) ** 2 - loose) * window_f).sum(axis=1)
    den = (mu**2 * window_f).sum(axis=1)
    # Empirical-Bayes prior: the pooled dispersion of the location's series of similar
    # velocity (slow movers are far lumpier than fast ones; a location-wide pool is dominated
    # by the fast movers and makes every medium mover look overconfidently regular).
    band = np.searchsorted(DISPERSION_BAND_EDGES, np.nan_to_num(rate))
    pool = grid.loc_index * (len(DISPERSION_BAND_EDGES) + 1) + band
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

    promo_days = (grid.promo & ~grid.closed & ~grid.event & ~stockout(grid) & (cols <= end)).astype(
        float
    )
    promo_units = sum_by_location(
        (np.minimum(grid.units, PROMO_UPLIFT_MAX * cap[:, None]) * promo_days).sum(axis=1),
        grid.loc_starts,
    )
    promo_expected = sum_by_location((mu * promo_days).sum(axis=1), grid.loc_starts)
    uplift = (
        (promo_units + PROMO_UPLIFT_PRIOR_UNITS * PROMO_UPLIFT_DEFAULT)
        / (promo_expected + PROMO_UPLIFT_PRIOR_UNITS)
    ).clip(1.0, PROMO_UPLIFT_MAX)

    zero_days = (window & (grid.units <= 0)).sum(axis=1)
    resid = np.where(window, units - mu, np.nan)
    centre = row_nanmedian(resid)
    robust_sd = MAD_TO_SD * row_nanmedian(np.abs(resid - centre[:, None]))

    return DemandModel(
        rate=rate,
        weekday_factor=factor,
        dispersion=dispersion,
        promo_uplift=uplift[grid.loc_index],
        cap=cap,
        baseline_days=window.sum(axis=1),
        baseline_sales_days=(window & (grid.units > 0)).sum(axis=1),
        robust_sd=np.nan_to_num(robust_sd),
        median_selling_units=median_selling,
        max_selling_units=row_nanquantile(positive, 1.0),
        zero_share=np.divide(
            zero_days, window.sum(axis=1), out=np.zeros(n_series), where=zero_days >= ZERO_DAYS_MIN
        ),
        window_mean=np.divide(
            (units * window_f).sum(axis=1),
            window_f.sum(axis=1),
            out=np.zeros(n_series),
            where=window_f.sum(axis=1) > 0,
        ),
    )


def log_p_no_sales(model: DemandModel, mu: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(S,) log-probability that a series sells nothing on the ``days`` (S, D) mask.

    The larger (more conservative) of two estimates: NB2 with the model's expected units,
    and the series' own share of zero days raised to the number of days. The second protects
    lumpy items (bought by the case on a few days a week), whose many zero days a
    moment-matched NB understates; it is not used for items with fewer than
    ``ZERO_DAYS_MIN`` zero days in their baseline (there the NB is the better guide).
    """
    nb = np.where(days, nb_log_p_zero(mu, model.dispersion[:, None]), 0.0).sum(axis=1)
    # A day expected to sell twice the average counts as two average days (exact for a
    # Poisson mixture's zero term), so promotions and busy weekdays keep their weight.
    weight = np.divide(
        mu, model.window_mean[:, None], out=np.ones_like(mu), where=model.window_mean[:, None] > 0
    )
    share = model.zero_share
    exponent = np.where(days, weight, 0.0).sum(axis=1)
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
