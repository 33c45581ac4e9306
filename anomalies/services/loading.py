"""Load the frames detection needs from the database, as of a date or for a window of dates.

The only code that turns ORM tables into the pandas frames documented in
``anomalies.detectors.base``. Raw ``SELECT``s with explicit casts keep it fast (no model
instances, no ``Decimal`` objects) and identical on SQLite and PostgreSQL.

On PostgreSQL the large tables (sales, book stock, receipts, adjustments: millions of rows for
a chunk of SKU-locations) come back as one row of packed binary columns: each column is
``string_agg`` of its values' binary send format (big-endian, fixed width), which numpy reads
without parsing a row. Fetching rows instead costs a Python tuple per row (seconds per million)
and even ``COPY ... TO STDOUT`` hands the client one message per row. SQLite, and the small
tables everywhere, use a plain cursor.

``detection_window_load`` loads the rows of a whole walk-forward window once; its
``DetectionFrames`` cuts the ``DetectionInput`` of each day out of them and builds the dense
grid of the window once (``anomalies.detectors.grid.GridWindow``). The in-memory bundles of
``lab.evaluation`` use the same class.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max

from anomalies.detectors.base import (
    CALENDAR_DTYPES,
    PRICE_POINT_DTYPES,
    PROMOTION_DTYPES,
    RECEIPT_DTYPES,
    SALES_DTYPES,
    STOCK_DTYPES,
    DetectionInput,
    empty_frame,
)
from anomalies.detectors.grid import Grid, GridWindow
from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    PricePoint,
    Product,
    Promotion,
    Receipt,
    StockAdjustment,
    StockLevel,
)

# Days of history (up to and including the as-of date) handed to the detectors.
HISTORY_DAYS = 120

PRODUCT_DTYPES: dict[str, str] = {
    "product_id": "int64",
    "sku": "object",
    "name": "object",
    "category": "object",
    "unit_price": "float64",
    "unit_cost": "float64",
}
LOCATION_DTYPES: dict[str, str] = {"location_id": "int64", "code": "object", "name": "object"}

_NS_PER_DAY = 86_400 * 10**9
_PG_EPOCH_DAYS = 10_957  # PostgreSQL's binary dates count days from 2000-01-01
# Wire formats of ``_packed_frame``: SQL binary send expression and numpy dtype.
_SEND = {
    "key": ("", ">i8"),
    "int8": ("int8send({})", ">i8"),
    "int4": ("int4send({})", ">i4"),
    "date": ("date_send({})", ">i4"),
    "float8": ("float8send(COALESCE({}, 'NaN'))", ">f8"),
}


def latest_data_date() -> dt.date | None:
    """The latest date with imported sales, or ``None`` when nothing is imported."""
    return DailySales.objects.aggregate(latest=Max("date"))["latest"]


@dataclass(eq=False)
class DetectionFrames:
    """Detection input frames covering a span of days; ``detection_input`` cuts out one day.

    Frames follow ``anomalies.detectors.base``; ``sales``, ``stock``, ``receipts`` and
    ``adjustments`` are sorted by date (``__post_init__`` sorts them if not). ``first_day`` /
    ``last_day`` bound what was loaded (``None``: the frames hold every row there is), so a day
    whose history was not loaded is refused rather than silently short.
    """

    products: pd.DataFrame  # product_id index: sku, name, category, unit_price, unit_cost
    locations: pd.DataFrame  # location_id index: code, name
    sales: pd.DataFrame  # SALES_DTYPES
    stock: pd.DataFrame | None  # STOCK_DTYPES; None when no book stock was ever imported
    receipts: pd.DataFrame  # RECEIPT_DTYPES
    promotions: pd.DataFrame  # PROMOTION_DTYPES
    calendar: pd.DataFrame  # CALENDAR_DTYPES
    adjustments: pd.DataFrame = field(default_factory=lambda: empty_frame(RECEIPT_DTYPES))
    price_points: pd.DataFrame = field(default_factory=lambda: empty_frame(PRICE_POINT_DTYPES))
    currency: str = "£"
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    _window: tuple[dt.date, GridWindow] | None = field(default=None, init=False, repr=False)
    # Per sales / stock row, the number of its SKU-location among those of the frames
    # (``series_count``), and how many there are; made on first use.
    _series_codes: tuple[np.ndarray, np.ndarray, int] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        for name in ("sales", "stock", "receipts", "adjustments", "price_points"):
            frame = getattr(self, name)
            if frame is not None and not frame["date"].is_monotonic_increasing:
                setattr(self, name, frame.sort_values("date", kind="stable", ignore_index=True))

    def detection_input(
        self, *, as_of: dt.date, history_days: int = HISTORY_DAYS
    ) -> DetectionInput:
        """The ``DetectionInput`` of ``as_of``: the ``history_days`` days ending on it, no row
        after it, with its grid cut from the window's (built on first use, kept for later days).

        Equal to ``detection_input_load(as_of=as_of, history_days=history_days)`` over the same
        rows. Raises ``ValueError`` when those days are not all within what was loaded.
        """
        lo_day = as_of - dt.timedelta(days=history_days - 1)
        if (self.first_day is not None and lo_day < self.first_day) or (
            self.last_day is not None and as_of > self.last_day
        ):
            raise ValueError(
                f"{history_days} days up to {as_of} are not within the loaded "
                f"{self.first_day}..{self.last_day}."
            )
        as_of_ts = pd.Timestamp(as_of)
        return self._slice(
            as_of=as_of,
            lo=np.datetime64(lo_day, "ns"),
            hi=np.datetime64(as_of, "ns"),
            grid_factory=lambda: self._grid_window(lo_day, as_of).day(as_of_ts, history_days),
        )

    def series_count(self, *, as_of: dt.date, history_days: int = HISTORY_DAYS) -> int:
        """SKU-locations with a sales or book-stock row in the ``history_days`` days ending on
        ``as_of``: what ``detection_input(as_of=...)`` holds, without hashing its rows again
        (the SKU-locations of the whole span are numbered once, on first use)."""
        if self._series_codes is None:
            frames = [self.sales] + ([self.stock] if self.stock is not None else [])
            keys = np.concatenate(
                [
                    f["location_id"].to_numpy(dtype=np.int64) << 32
                    | f["product_id"].to_numpy(dtype=np.int64)
                    for f in frames
                ]
            )
            codes, uniques = pd.factorize(keys)
            self._series_codes = (codes[: len(self.sales)], codes[len(self.sales) :], len(uniques))
        sales_codes, stock_codes, n = self._series_codes
        lo = np.datetime64(as_of - dt.timedelta(days=history_days - 1), "ns")
        hi = np.datetime64(as_of, "ns")
        seen = np.zeros(n, dtype=bool)
        for frame, codes in ((self.sales, sales_codes), (self.stock, stock_codes)):
            if frame is not None:
                dates = frame["date"].to_numpy()
                i, j = np.searchsorted(dates, lo, "left"), np.searchsorted(dates, hi, "right")
                seen[codes[i:j]] = True
        return int(seen.sum())

    def _grid_window(self, lo_day: dt.date, as_of: dt.date) -> GridWindow:
        """The grid of the loaded days from ``lo_day`` on, built once for a walk forward (a day
        outside it builds it again)."""
        if self._window is not None:
            lo, window = self._window
            if lo <= lo_day and as_of <= window.dates[-1].date():
                return window
        hi = self.last_day or max(
            [as_of]
            + [
                f["date"].iloc[-1].date()
                for f in (self.sales, self.stock)
                if f is not None and len(f)
            ]
        )
        lo_ts, hi_ts = np.datetime64(lo_day, "ns"), np.datetime64(hi, "ns")
        rows = self._slice(as_of=hi, lo=lo_ts, hi=hi_ts)
        window = GridWindow.build(rows, end=pd.Timestamp(hi), start=pd.Timestamp(lo_day))
        self._window = (lo_day, window)
        return window

    def _slice(
        self,
        *,
        as_of: dt.date,
        lo: np.datetime64,
        hi: np.datetime64,
        grid_factory: Callable[[], Grid] | None = None,
    ) -> DetectionInput:
        """The rows dated ``lo``..``hi`` as the input of ``as_of``."""
        promos = self.promotions
        return DetectionInput(
            as_of=as_of,
            sales=_date_slice(self.sales, lo, hi),
            products=self.products,
            locations=self.locations,
            stock=None if self.stock is None else _date_slice(self.stock, lo, hi),
            receipts=_date_slice(self.receipts, lo, hi),
            adjustments=_date_slice(self.adjustments, lo, hi),
            promotions=promos[(promos["end_date"] >= lo) & (promos["start_date"] <= hi)],
            calendar=self.calendar[self.calendar["date"].between(lo, hi)],
            price_points=_date_slice(self.price_points, lo, hi),
            currency=self.currency,
            grid_factory=grid_factory,
        )


def _date_slice(frame: pd.DataFrame, lo: np.datetime64, hi: np.datetime64) -> pd.DataFrame:
    """Rows of a date-sorted frame with ``lo <= date <= hi`` (a view, no copy)."""
    dates = frame["date"].to_numpy()
    i, j = np.searchsorted(dates, lo, "left"), np.searchsorted(dates, hi, "right")
    return frame.iloc[i:j]


def detection_input_load(
    *,
    as_of: dt.date,
    history_days: int = HISTORY_DAYS,
    location_ids: list[int] | None = None,
) -> DetectionInput:
    """Build the ``DetectionInput`` for ``as_of``: ``history_days`` days ending on ``as_of``.

    Nothing dated after ``as_of`` is loaded, so a walk-forward backfill never sees the future.
    ``stock`` is ``None`` when no book stock was ever imported (detectors that need it skip).
    ``location_ids`` restricts the SKU-location rows to those locations (promotions and
    calendar rows without a location apply everywhere and are kept); ``products`` and
    ``locations`` stay whole (a few thousand rows). Row order within a frame is unspecified.
    """
    start = as_of - dt.timedelta(days=history_days - 1)
    frames = _frames_load(start=start, end=as_of, location_ids=location_ids, by_date=False)
    return DetectionInput(as_of=as_of, **frames)


def detection_window_load(
    *,
    start: dt.date,
    end: dt.date,
    history_days: int = HISTORY_DAYS,
    location_ids: list[int] | None = None,
) -> DetectionFrames:
    """Load once what the as-of days ``start``..``end`` need (their ``history_days`` each).

    ``DetectionFrames.detection_input(as_of=day)`` then gives each day's input, equal to
    ``detection_input_load(as_of=day, ...)``. ``location_ids`` as in ``detection_input_load``.
    Raises ``ValueError`` when ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError(f"The window ends ({end}) before it starts ({start}).")
    first = start - dt.timedelta(days=history_days - 1)
    frames = _frames_load(start=first, end=end, location_ids=location_ids, by_date=True)
    return DetectionFrames(**frames, first_day=first, last_day=end)


# Planner settings for detection's loads (PostgreSQL, for the loading transaction only). The
# default random_page_cost of 4 models spinning disks: with it the planner preferred the date
# index over each location's part of the fact tables' key (5.2 s instead of 0.5 s for a chunk
# of 10 stores at 100). 1.1 is the usual value for SSDs. JIT compiles each query for ~10 ms
# and gains nothing on these index scans.
PG_LOAD_SETTINGS = {"random_page_cost": "1.1", "jit": "off"}


def _frames_load(
    *, start: dt.date, end: dt.date, location_ids: list[int] | None, by_date: bool
) -> dict[str, object]:
    """The detection frames of ``start``..``end`` as ``DetectionInput`` keyword arguments."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for name, value in PG_LOAD_SETTINGS.items():
                    cursor.execute(f"SET LOCAL {name} = {value}")
        return _frames_query(start=start, end=end, location_ids=location_ids, by_date=by_date)


def _frames_query(
    *, start: dt.date, end: dt.date, location_ids: list[int] | None, by_date: bool
) -> dict[str, object]:
    window = [start, end]
    where, where_params = "date BETWEEN %s AND %s", window
    everywhere = ""  # promotions and calendar rows for every location
    location_params: list[int] = []
    if location_ids is not None:
        location_params = [int(x) for x in location_ids]
        if not location_params:
            location_params = [-1]  # an empty chunk: match nothing, keep the SQL valid
        marks = ", ".join(["%s"] * len(location_params))
        where += f" AND location_id IN ({marks})"
        everywhere = f" AND (location_id IS NULL OR location_id IN ({marks}))"
        where_params = window + location_params

    def facts(sql: str, dtypes: dict[str, str], packing: tuple[str, ...]) -> pd.DataFrame:
        params = where_params
        if location_params and connection.vendor == "postgresql" and "GROUP BY" not in sql:
            # One branch per location: each is planned on its own and reads only its
            # location's part of the (location, date, product) key. Given an IN list, the
            # planner walked the date index over every location instead (measured at 100
            # stores: 2.1 s instead of 0.5 s for a chunk of 10).
            per_location = sql.replace(where, "location_id = %s AND date BETWEEN %s AND %s")
            sql = " UNION ALL ".join([per_location] * len(location_params))
            params = [value for loc in location_params for value in (loc, *window)]
        frame = _facts_frame(sql, params, dtypes, packing)
        if by_date:
            frame = frame.sort_values("date", kind="stable", ignore_index=True)
        return frame

    sales = facts(
        f"SELECT product_id, location_id, date, units_sold, units_returned, "
        f"CAST(unit_price AS DOUBLE PRECISION) FROM {DailySales._meta.db_table} WHERE {where}",
        SALES_DTYPES,
        ("key", "date", "int4", "int4", "float8"),
    )
    stock = None
    if StockLevel.objects.exists():
        stock = facts(
            f"SELECT product_id, location_id, date, on_hand FROM {StockLevel._meta.db_table} "
            f"WHERE {where}",
            STOCK_DTYPES,
            ("key", "date", "int4"),
        )
    receipts = facts(
        f"SELECT product_id, location_id, date, units FROM {Receipt._meta.db_table} WHERE {where}",
        RECEIPT_DTYPES,
        ("key", "date", "int4"),
    )
    adjustments = facts(
        f"SELECT product_id, location_id, date, SUM(delta) FROM {StockAdjustment._meta.db_table} "
        f"WHERE {where} GROUP BY product_id, location_id, date",
        RECEIPT_DTYPES,
        ("key", "date", "int8"),
    )
    promotions = _frame(
        f"SELECT product_id, location_id, start_date, end_date, "
        f"CAST(discount_pct AS DOUBLE PRECISION) FROM {Promotion._meta.db_table} "
        f"WHERE end_date >= %s AND start_date <= %s{everywhere}",
        window + location_params,
        PROMOTION_DTYPES,
    )
    calendar = _frame(
        f"SELECT date, location_id, name, is_closed FROM {CalendarEvent._meta.db_table} "
        f"WHERE date BETWEEN %s AND %s{everywhere}",
        window + location_params,
        CALENDAR_DTYPES,
    )
    # Chain-wide (every location's points, whatever the chunk): one row per SKU, day and price.
    price_points = _facts_frame(
        f"SELECT CAST(product_id AS BIGINT), date, CAST(price_pence AS DOUBLE PRECISION) / 100 "
        f"FROM {PricePoint._meta.db_table} WHERE date BETWEEN %s AND %s",
        window,
        PRICE_POINT_DTYPES,
        ("int8", "date", "float8"),
    )
    if by_date:
        price_points = price_points.sort_values("date", kind="stable", ignore_index=True)
    products = _frame(
        f"SELECT id, sku, name, category, CAST(unit_price AS DOUBLE PRECISION), "
        f"CAST(unit_cost AS DOUBLE PRECISION) FROM {Product._meta.db_table}",
        [],
        PRODUCT_DTYPES,
    ).set_index("product_id")
    locations = _frame(
        f"SELECT id, code, name FROM {Location._meta.db_table}", [], LOCATION_DTYPES
    ).set_index("location_id")
    return {
        "sales": sales,
        "products": products,
        "locations": locations,
        "stock": stock,
        "receipts": receipts,
        "adjustments": adjustments,
        "promotions": promotions,
        "calendar": calendar,
        "price_points": price_points,
        "currency": settings.SHELFWATCH_CURRENCY,
    }


def _facts_frame(
    sql: str, params: list, dtypes: dict[str, str], packing: tuple[str, ...]
) -> pd.DataFrame:
    """A large fact table's rows: packed binary columns on PostgreSQL, a plain cursor else."""
    if connection.vendor == "postgresql":
        return _packed_frame(sql, params, dtypes, packing)
    return _frame(sql, params, dtypes)


def _frame(sql: str, params: list, dtypes: dict[str, str]) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=list(dtypes))
    for name, dtype in dtypes.items():
        if dtype.startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name]).astype(dtype)
        elif dtype == "Int64":
            frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def _packed_frame(
    sql: str, params: list, dtypes: dict[str, str], packing: tuple[str, ...]
) -> pd.DataFrame:
    """Run ``sql`` (selecting the ``dtypes`` columns) on PostgreSQL; its rows as a frame.

    The rows are aggregated server-side into one ``bytea`` per column: the values' binary send
    format back to back, in the one row order all aggregates of a query share. ``packing``
    names each column's wire format: ``key`` packs the leading product_id and location_id
    into one int8 (location in the high 32 bits; half the work of two), then ``int4``,
    ``int8``, ``date`` (days since 2000-01-01) or ``float8`` (NULL sent as NaN) per column.
    Raises ``ValueError`` if a column's length disagrees with the row count (a NULL where
    none was expected).
    """
    names = [f"c{i}" for i in range(len(dtypes))]
    packed, formats = [], []
    rest = iter(names)
    for kind in packing:
        if kind == "key":
            product, location = next(rest), next(rest)
            expression = f"int8send({location} * 4294967296 + {product})"
        else:
            expression = _SEND[kind][0].format(next(rest))
        packed.append(f"string_agg({expression}, '')")
        formats.append(kind)
    query = f"SELECT count(*), {', '.join(packed)} FROM ({sql}) AS t({', '.join(names)})"
    connection.ensure_connection()
    # A binary, server-side-binding cursor on the psycopg connection under Django's (whose
    # own cursors bind client-side, which allows text results only): bytea arrives as raw
    # bytes instead of hex text twice the size.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(query, params, binary=True)
        count, *columns = cursor.fetchone()
    values = []
    for kind, raw in zip(formats, columns, strict=True):
        array = np.frombuffer(raw or b"", dtype=_SEND[kind][1])
        if len(array) != count:
            raise ValueError(f"{len(array)} values for {count} rows (NULL in the data?)")
        if kind == "key":
            key = array.astype("int64")
            values += [key & 0xFFFFFFFF, key >> 32]
        elif kind == "date":
            days = array.astype("int64") + _PG_EPOCH_DAYS
            values.append((days * _NS_PER_DAY).view("datetime64[ns]"))
        else:
            values.append(array)
    return pd.DataFrame(
        {
            name: value.astype(dtype, copy=False)
            for (name, dtype), value in zip(dtypes.items(), values, strict=True)
        }
    )
