"""Import a retail data bundle: a folder of CSV files (see ``bundle_import``).

The small files (products, locations, calendar, promotions) are read whole and checked first.
The fact files (sales, inventory, receipts: millions of rows) are streamed in chunks of
``CHUNK_ROWS`` rows, so memory does not grow with the file: each chunk is checked with
vectorised pandas (every check runs once per distinct value of a column, not once per row)
and, as long as no error has been found in the bundle, written at once. Everything is written
inside one ``transaction.atomic()``. After the first error nothing more is written but the
rest is still read and checked, so the report lists the problems of every file (the first
``ERROR_LIMIT_PER_FILE`` of each, with file, physical line and column); then ``BundleError``
rolls the transaction back and nothing is half-written. Rows are upserted on their natural
keys, so importing the same bundle twice changes nothing.

Fact rows of a location and day outside the range of days that location held when the import
started cannot be stored yet: they are copied straight into the table (``bulk_insert``: a
first load, or new days appended). Other rows go through ``bulk_upsert``. A reader thread
parses, checks and renders the next chunk while the database stores the current one.

Line numbers are physical file lines (header = line 1) as long as no quoted field spans
several lines; blank lines are skipped but counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import queue
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from django.apps import apps
from django.db import IntegrityError, connection, models, transaction

from common.bulk import (
    PreparedRows,
    bulk_insert,
    bulk_upsert,
    column_types,
    rows_prepare,
)
from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    Product,
    Promotion,
    Receipt,
    StockLevel,
)

ERROR_LIMIT_PER_FILE = 20
# Data rows per chunk of a fact file. A chunk in flight takes ~100 bytes a row (strings,
# parsed columns, COPY text); two or three are in flight at once.
CHUNK_ROWS = 1_000_000
# Chunks the reader thread may prepare ahead of the writer.
CHUNKS_AHEAD = 1
# SQLite page cache during an import, in KiB.
SQLITE_CACHE_KIB = 256 * 1024
# Bounds of a Django IntegerField (32-bit on every backend we support).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
# DecimalField(max_digits=14, decimal_places=4): at most 10 digits before the point.
PRICE_MAX = 10**10
PRICE_DECIMALS = 4
DISCOUNT_DECIMALS = 2
# DecimalField(max_digits=5, decimal_places=2), and a discount above 100 % makes no sense.
DISCOUNT_FIELD_MAX = 1000
DISCOUNT_PCT_MAX = 100
# Calendar events whose name contains this (case-insensitive) mark the store closed.
CLOSED_MARKER = "closed"
REQUIRED_FILES = ("products.csv", "locations.csv", "sales.csv")
OPTIONAL_FILES = ("inventory.csv", "receipts.csv", "calendar.csv", "promotions.csv")
_PANDAS_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
# Dates a DateField holds (Python's date range), as days since 1970-01-01.
_FIRST_DAY = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days
_LAST_DAY = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days
_NO_DAY = np.iinfo(np.int64).min

T = TypeVar("T")

Progress = Callable[[str, int, int], None]
"""``progress(label, done_rows, total_rows)``: called while a file is written."""


class BundleError(Exception):
    """Input that cannot be imported; ``messages`` lists every problem found (file:line: ...)."""

    def __init__(self, messages: Iterable[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


@dataclass(frozen=True)
class FileSummary:
    """What one input file (or one target table of a file) produced."""

    name: str
    model: str
    rows: int
    written: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ImportSummary:
    """Result of an import: per-file row counts and timings.

    ``rows`` counts input rows, ``written`` counts database rows inserted or changed (a
    re-import of unchanged data writes 0). ``lines_read`` is the number of data lines read,
    ``excluded`` maps a reason to the number of lines skipped for it, ``notes`` are extra
    facts worth printing.
    """

    files: list[FileSummary] = field(default_factory=list)
    seconds: float = 0.0
    lines_read: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def file(self, name: str) -> FileSummary:
        """Return the entry of file ``name``; raise ``KeyError`` when there is none."""
        for entry in self.files:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def for_model(self, model: str) -> FileSummary:
        """Return the entry that wrote ``model`` (a class name); raise ``KeyError`` if none."""
        for entry in self.files:
            if entry.model == model:
                return entry
        raise KeyError(model)

    def report(self) -> list[str]:
        """Human-readable lines for a command's output."""
        lines = [
            f"{f.name}: {f.rows:,} rows -> {f.model}, {f.written:,} inserted or changed, "
            f"{f.seconds:.2f} s ({f.rows_per_second:,.0f} rows/s)"
            for f in self.files
        ]
        lines.extend(self.notes)
        excluded = sum(self.excluded.values())
        if self.excluded:
            lines.append(f"excluded: {excluded:,} lines")
            lines.extend(f"  {reason}: {count:,}" for reason, count in self.excluded.items())
        rate = self.lines_read / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"total: {self.lines_read:,} lines read in {self.seconds:.2f} s ({rate:,.0f} lines/s)"
        )
        return lines


class ErrorLog:
    """The errors of one file: keeps the first ``limit`` (by line) and counts all."""

    def __init__(self, name: str, *, limit: int = ERROR_LIMIT_PER_FILE) -> None:
        self.name = name
        self.limit = limit
        self.total = 0
        self._entries: list[tuple[int, int, str]] = []

    def __bool__(self) -> bool:
        return self.total > 0

    def add(self, message: str, *, line: int = 0, order: int = 0) -> None:
        """Record one error; ``line`` 0 means the whole file."""
        self.total += 1
        self._entries.append((line, order, message))
        self._trim()

    def add_rows(
        self, mask: pd.Series, lines: pd.Series, column: str, order: int, describe: Callable
    ) -> None:
        """Record an error for each row of ``mask``; ``describe(index)`` words the error."""
        flags = np.asarray(mask, dtype=bool)
        count = int(flags.sum())
        if not count:
            return
        self.total += count
        for position in np.flatnonzero(flags)[: self.limit]:
            line = int(lines.iloc[position])
            message = f"{self.name}:{line}: {column}: {describe(mask.index[position])}"
            self._entries.append((line, order, message))
        self._trim()

    def add_lines(self, lines: np.ndarray, order: int, describe: Callable[[int], str]) -> None:
        """Record an error on each of ``lines`` (any order); ``describe(position)`` words the
        error of ``lines[position]`` without the ``file:line:`` prefix."""
        if not len(lines):
            return
        self.total += len(lines)
        for position in np.argsort(lines, kind="stable")[: self.limit]:
            line = int(lines[position])
            self._entries.append((line, order, f"{self.name}:{line}: {describe(position)}"))
        self._trim()

    def _trim(self) -> None:
        # A streamed file reports its errors chunk by chunk: keep only what can be shown.
        if len(self._entries) > 4 * self.limit:
            self._entries = sorted(self._entries, key=lambda e: (e[0], e[1]))[: self.limit]

    def messages(self) -> list[str]:
        """The first ``limit`` messages ordered by line, then a count of the rest."""
        entries = sorted(self._entries, key=lambda e: (e[0], e[1]))[: self.limit]
        out = [message for _line, _order, message in entries]
        if self.total > len(out):
            out.append(f"{self.name}: ... and {self.total - len(out):,} more error(s)")
        return out


def strip_strings(values: pd.Series) -> pd.Series:
    """``values.str.strip()``, computed once per distinct value: columns of codes, dates and
    quantities repeat a few thousand values over millions of rows (5x faster)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    stripped = pd.Index(uniques).str.strip().to_numpy()
    return pd.Series(stripped[codes], index=values.index, dtype=values.dtype)


def _flags(values: pd.Series | np.ndarray) -> np.ndarray:
    """A boolean mask as a numpy array (missing = False)."""
    if isinstance(values, pd.Series):
        return values.fillna(False).to_numpy(dtype=bool)
    return np.asarray(values, dtype=bool)


class SheetValidator:
    """Parses the string columns of one CSV (or one chunk of it), logging bad values.

    ``frame`` holds the raw cells as strings (blanks as ``""``) indexed by row position;
    ``first_line`` is the physical line of index 0. Each check runs once per distinct value of
    a column and is then spread to the rows. Each method returns the parsed column with
    NaN/NaT where the value was bad (already logged).
    """

    def __init__(self, log: ErrorLog, frame: pd.DataFrame, *, first_line: int = 2) -> None:
        self.log = log
        self.frame = frame
        self.lines = pd.Series(frame.index + first_line, index=frame.index)
        self._order = {name: i for i, name in enumerate(frame.columns)}
        self._distinct: dict[str, tuple[np.ndarray, pd.Series]] = {}

    def distinct(self, column: str) -> tuple[np.ndarray, pd.Series]:
        """``(codes, values)``: the stripped distinct cells of ``column`` and, per row, the
        position of its cell in them."""
        if column not in self._distinct:
            codes, uniques = pd.factorize(self.frame[column])
            if (codes < 0).any():
                # A missing cell (NaN): its own distinct value (the sentinel is cheaper than
                # use_na_sentinel=False, which scans the column for NaN once more).
                codes = np.where(codes < 0, len(uniques), codes)
                uniques = np.append(np.asarray(uniques, dtype=object), np.nan)
            values = pd.Series(pd.Index(uniques).str.strip(), copy=False)
            self._distinct[column] = (codes, values)
        return self._distinct[column]

    def report(self, mask: pd.Series, column: str, describe: Callable) -> None:
        """Log an error in ``column`` for each row of ``mask``; ``describe(index)`` words it."""
        self.log.add_rows(mask, self.lines, column, self._order.get(column, 0), describe)

    def _report_distinct(
        self, column: str, bad: pd.Series | np.ndarray, template: str | Callable[[str], str]
    ) -> None:
        """Log an error for each row whose distinct value is flagged in ``bad``. ``template``
        words it: a string with ``{value}`` (the raw cell, quoted) or a function of the cell."""
        bad = _flags(bad)
        if not bad.any():
            return
        codes, values = self.distinct(column)
        rows = pd.Series(bad[codes], index=self.frame.index, copy=False)
        by_index = pd.Series(codes, index=self.frame.index, copy=False)

        def describe(index) -> str:
            value = values.iloc[by_index[index]]
            if callable(template):
                return template(value)
            return template.format(value=repr(value))

        self.report(rows, column, describe)

    def _spread(self, column: str, values: pd.Series | np.ndarray) -> pd.Series:
        codes, _ = self.distinct(column)
        return pd.Series(np.asarray(values)[codes], index=self.frame.index, copy=False)

    def text(self, column: str, *, max_length: int, required: bool = True) -> pd.Series:
        """A stripped string column; blank is an error (and NaN) when ``required``."""
        _codes, raw = self.distinct(column)
        if required:
            empty = raw == ""
            self._report_distinct(column, empty, lambda _value: "value is required")
            raw = raw.where(~_flags(empty))
        self._report_distinct(
            column, raw.str.len() > max_length, lambda _v: f"longer than {max_length} characters"
        )
        return self._spread(column, raw.to_numpy(dtype=object)).astype(self.frame[column].dtype)

    def _integers(
        self, column: str, *, minimum: int | None, blank: int | None, hint: str
    ) -> np.ndarray:
        """The distinct values of an integer column as float64 (NaN where bad)."""
        _codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        values = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy(copy=True)
        if blank is None:
            self._report_distinct(column, empty, lambda _value: "value is required")
        else:
            values[empty] = blank
        bad = np.isnan(values) & ~empty
        with np.errstate(invalid="ignore"):
            bad |= ~np.isnan(values) & (values != np.floor(values))
        self._report_distinct(column, bad, "{value} is not an integer")
        values[bad] = np.nan
        if minimum is not None:
            low = values < minimum
            self._report_distinct(column, low, f"{{value}} must not be negative{hint}")
            values[low] = np.nan
        wide = (values < INT_MIN) | (values > INT_MAX)
        self._report_distinct(column, wide, "{value} is out of range")
        values[wide] = np.nan
        return values

    def integer(
        self,
        column: str,
        *,
        minimum: int | None = None,
        blank: int | None = None,
        hint: str = "",
    ) -> pd.Series:
        """An integer column as float64 (NaN where bad); ``blank`` is the value of a blank cell
        (None: blank is an error). Values below ``minimum`` or outside 32 bits are errors."""
        values = self._integers(column, minimum=minimum, blank=blank, hint=hint)
        return self._spread(column, values)

    def decimal(
        self,
        column: str,
        *,
        required: bool = True,
        minimum: float | None = 0,
        maximum: float = PRICE_MAX,
        decimals: int = PRICE_DECIMALS,
    ) -> pd.Series:
        """A decimal column as float64 rounded to ``decimals`` places (NaN where blank or bad).
        Values must not be below ``minimum`` (None: no lower bound) and their magnitude must be
        below ``maximum`` (the DecimalField's digits)."""
        _codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        values = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy(copy=True)
        if required:
            self._report_distinct(column, empty, lambda _value: "value is required")
        bad = ~np.isfinite(values) & ~empty
        self._report_distinct(column, bad, "{value} is not a decimal number")
        values[bad] = np.nan
        with np.errstate(invalid="ignore"):
            negative = values < (minimum if minimum is not None else -np.inf)
            too_big = np.abs(values) >= maximum
        self._report_distinct(column, negative, "{value} must not be negative")
        self._report_distinct(column, too_big, "{value} is too large")
        values[negative | too_big] = np.nan
        return self._spread(column, np.round(values, decimals))

    def _days(self, column: str) -> np.ndarray:
        """The distinct values of a ``YYYY-MM-DD`` column as days since 1970-01-01
        (``_NO_DAY`` where blank or bad)."""
        _codes, raw = self.distinct(column)
        parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        days = parsed.to_numpy().astype("datetime64[D]").astype(np.int64)
        days[parsed.isna().to_numpy() | (days < _FIRST_DAY) | (days > _LAST_DAY)] = _NO_DAY
        self._report_distinct(column, days == _NO_DAY, "{value} is not a date (YYYY-MM-DD)")
        return days

    def date(self, column: str) -> pd.Series:
        """A ``YYYY-MM-DD`` column as datetime64 (NaT where blank or bad)."""
        days = self._days(column)
        dates = np.where(days == _NO_DAY, np.datetime64("NaT", "D"), days.astype("datetime64[D]"))
        return self._spread(column, dates.astype("datetime64[s]"))

    def days(self, column: str) -> np.ndarray:
        """A ``YYYY-MM-DD`` column as int64 days since 1970-01-01 per row (``_NO_DAY`` where
        blank or bad)."""
        codes, _ = self.distinct(column)
        return self._days(column)[codes]

    def positions(
        self, column: str, known: pd.Index, *, kind: str, required: bool = True
    ) -> np.ndarray:
        """Per row, the position in ``known`` of the row's code (int64); -1 where blank or
        unknown. Blank is an error when ``required``; unknown codes always are."""
        codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        if required:
            self._report_distinct(column, empty, lambda _value: "value is required")
        found = known.get_indexer(raw) if len(known) else np.full(len(raw), -1)
        self._report_distinct(column, (found < 0) & ~empty, f"unknown {kind} {{value}}")
        return found[codes]

    def reference(
        self, column: str, known: pd.Index, *, kind: str, required: bool = True
    ) -> pd.Series:
        """A code that must be in ``known``; blank is allowed (kept as ``""``) unless
        ``required``. Blank required and unknown codes are NaN."""
        _codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        if required:
            self._report_distinct(column, empty, lambda _value: "value is required")
        unknown = ~empty & ~_flags(raw.isin(known))
        self._report_distinct(column, unknown, f"unknown {kind} {{value}}")
        kept = raw.where(~unknown & ~(empty & required)).to_numpy(dtype=object)
        return self._spread(column, kept).astype(self.frame[column].dtype)

    def duplicates(self, keys: pd.DataFrame, *, what: str) -> None:
        """Log every row whose ``keys`` repeat an earlier row's, naming both lines. Rows with
        a NaN key (a bad value, already logged) are not compared."""
        usable = keys.notna().all(axis=1)
        keyed = keys[usable]
        later = keyed.duplicated(keep="first")
        if not later.any():
            return
        first_index = (
            keyed.reset_index()
            .groupby(list(keys.columns), sort=False, dropna=False)["index"]
            .transform("first")
        )
        first_index.index = keyed.index
        for index in later.index[later.to_numpy()]:
            line = int(self.lines[index])
            first = int(self.lines[first_index[index]])
            self.log.add(
                f"{self.log.name}:{line}: duplicate of line {first} (same {what})",
                line=line,
                order=len(self._order),
            )


# --- fact files: specification, chunked reading, duplicate keys --------------------------------


@dataclass(frozen=True)
class _FactFile:
    """A fact file: one row per date, SKU and location, upserted on that key."""

    name: str
    model: type[models.Model]
    columns: tuple[str, ...]
    optional: tuple[str, ...]
    values: Callable[[SheetValidator], dict[str, pd.Series]]
    integers: tuple[str, ...]
    updates: tuple[str, ...]
    sum_repeats: bool = False
    """Rows repeating a key are summed (several deliveries a day) instead of refused."""

    @property
    def required(self) -> tuple[str, ...]:
        return ("date", "sku", "location", *self.columns)


def _sales_values(sheet: SheetValidator) -> dict[str, pd.Series]:
    units = sheet.integer("units", minimum=0, hint=" (returns go in units_returned)")
    if "units_returned" in sheet.frame.columns:
        returned = sheet.integer("units_returned", minimum=0, blank=0)
    else:
        returned = pd.Series(0.0, index=sheet.frame.index)
    price = sheet.decimal("unit_price", required=False)
    return {"units_sold": units, "units_returned": returned, "unit_price": price}


def _inventory_values(sheet: SheetValidator) -> dict[str, pd.Series]:
    # Book stock can be negative in real systems (sold before the receipt was booked).
    return {"on_hand": sheet.integer("on_hand")}


def _receipt_values(sheet: SheetValidator) -> dict[str, pd.Series]:
    return {"units": sheet.integer("units", minimum=0)}


_FACT_FILES = {
    spec.name: spec
    for spec in (
        _FactFile(
            name="sales.csv",
            model=DailySales,
            columns=("units", "unit_price"),
            optional=("units_returned",),
            values=_sales_values,
            integers=("units_sold", "units_returned"),
            updates=("units_sold", "units_returned", "unit_price"),
        ),
        _FactFile(
            name="inventory.csv",
            model=StockLevel,
            columns=("on_hand",),
            optional=(),
            values=_inventory_values,
            integers=("on_hand",),
            updates=("on_hand",),
        ),
        _FactFile(
            name="receipts.csv",
            model=Receipt,
            columns=("units",),
            optional=(),
            values=_receipt_values,
            integers=("units",),
            updates=("units",),
            sum_repeats=True,
        ),
    )
}
_FACT_KEYS = ("product_id", "location_id", "date")


@dataclass(frozen=True)
class _Codes:
    """The SKUs and location codes fact rows may name and, once written, their ids
    (ascending, so that positions sort like ids)."""

    skus: pd.Index
    locations: pd.Index
    product_ids: np.ndarray | None = None
    location_ids: np.ndarray | None = None

    @classmethod
    def from_database(cls) -> _Codes:
        products = list(Product.objects.order_by("id").values_list("sku", "id"))
        locations = list(Location.objects.order_by("id").values_list("code", "id"))
        return cls(
            skus=pd.Index([sku for sku, _id in products], dtype=object),
            locations=pd.Index([code for code, _id in locations], dtype=object),
            product_ids=np.array([pk for _sku, pk in products], dtype=np.int64),
            location_ids=np.array([pk for _code, pk in locations], dtype=np.int64),
        )

    def key(self, location: np.ndarray, day: np.ndarray, sku: np.ndarray) -> np.ndarray:
        """One int64 per row that sorts like (location, date, SKU): the unique key's order."""
        day_span = _LAST_DAY - _FIRST_DAY + 1
        return (location * day_span + (day - _FIRST_DAY)) * len(self.skus) + sku


@dataclass(frozen=True)
class _WritePlan:
    """How the reader thread prepares chunks for writing: the backend, and per location
    position the first and last day stored when the import started."""

    vendor: str
    first_day: np.ndarray
    last_day: np.ndarray


@dataclass(frozen=True)
class _Chunk:
    """One chunk of a fact file, as handed from the reader thread to the writer."""

    lines: int
    """Physical lines consumed, blank ones included (progress)."""
    rows: int
    """Data rows read."""
    insert: PreparedRows | None = None
    upsert: PreparedRows | None = None
    frame: pd.DataFrame | None = None
    """The parsed rows (``bundle_parse`` only)."""


def _count_lines(path: Path) -> int:
    """Newlines in the file (a progress total; 1 GB/s)."""
    count = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            count += block.count(b"\n")
    return count


def _csv_chunks(
    path: Path, name: str, log: ErrorLog, *, required: Iterable[str], chunk_rows: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(lines consumed, chunk)`` pairs: the cells as strings (blank ``""``), blank
    lines dropped, index = line - 2. Logs an unreadable file, missing columns or a
    malformed line and stops there."""
    header, first_line, first_width = _first_row_widths(path)
    if first_width > header > 0:
        # pandas would only warn and drop the extra fields of the first row.
        message = f"{name}:{first_line}: expected {header} fields, saw {first_width}"
        log.add(message, line=first_line)
        return
    try:
        reader = pd.read_csv(
            path,
            dtype=object,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            index_col=False,
            chunksize=chunk_rows,
        )
        with reader:
            for number, chunk in enumerate(reader):
                chunk.columns = [str(column).strip() for column in chunk.columns]
                absent = [column for column in required if column not in chunk.columns]
                if number == 0 and absent:
                    log.add(f"{name}: missing column(s): {', '.join(absent)}")
                    return
                yield len(chunk), _without_blank_lines(chunk)
    except UnicodeDecodeError as exc:
        log.add(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start:,})")
    except pd.errors.EmptyDataError:
        log.add(f"{name}: file is empty (a header row is required)")
    except pd.errors.ParserError as exc:
        _log_parser_error(name, log, exc)


def _without_blank_lines(chunk: pd.DataFrame) -> pd.DataFrame:
    """``chunk`` without the rows whose cells are all blank (blank lines)."""
    first = chunk.iloc[:, 0].to_numpy()
    candidates = np.flatnonzero(first == "")
    if not len(candidates):
        return chunk
    blank = (chunk.iloc[candidates].to_numpy() == "").all(axis=1)
    return chunk.drop(index=chunk.index[candidates[blank]])


def _log_parser_error(name: str, log: ErrorLog, exc: pd.errors.ParserError) -> None:
    match = _PANDAS_FIELD_COUNT.search(str(exc))
    if match:
        expected, line, saw = match.groups()
        log.add(f"{name}:{line}: expected {expected} fields, saw {saw}", line=int(line))
    else:
        log.add(f"{name}: cannot be parsed as CSV ({exc})")


class _KeySet:
    """The keys of the rows read so far from one file, to find keys repeated in a later
    chunk. 12 bytes a row; a chunk is compared only with the earlier chunks whose key range
    overlaps its own (for a file sorted by date: the previous one)."""

    def __init__(self) -> None:
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []

    def repeats(self, keys: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add the rows of one chunk (``keys`` and ``lines`` in line order); return the
        positions of the rows repeating an earlier row's key and that earlier row's line."""
        if not len(keys):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.ones(len(ordered), dtype=bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        run = np.cumsum(starts) - 1  # distinct key number of each ordered row
        distinct = ordered[starts]
        first_line = lines[order][starts].astype(np.int64)
        earlier = np.full(len(distinct), -1, dtype=np.int64)
        for block_keys, block_lines in self._blocks:
            low = np.searchsorted(distinct, block_keys[0], side="left")
            high = np.searchsorted(distinct, block_keys[-1], side="right")
            if low >= high:
                continue
            candidates = distinct[low:high]
            at = np.minimum(np.searchsorted(block_keys, candidates), len(block_keys) - 1)
            hit = block_keys[at] == candidates
            earlier[low:high][hit] = block_lines[at[hit]]
        new = earlier < 0
        if new.any():
            line_type = np.uint32 if first_line.max() < 2**32 else np.int64
            self._blocks.append((distinct[new], first_line[new].astype(line_type)))
        origin = np.where(new, first_line, earlier)
        repeated = ~starts | ~new[run]
        return order[repeated], origin[run[repeated]]


def _fact_rows(spec: _FactFile, sheet: SheetValidator, codes: _Codes) -> dict[str, np.ndarray]:
    """Parse one chunk: ``location``/``sku`` positions in ``codes`` (-1 where bad), ``day``
    (``_NO_DAY`` where bad), ``line`` and the value columns (float64, NaN where bad)."""
    rows = {
        "day": sheet.days("date"),
        "sku": sheet.positions("sku", codes.skus, kind="SKU"),
        "location": sheet.positions("location", codes.locations, kind="location"),
        "line": sheet.lines.to_numpy(),
    }
    for name, values in spec.values(sheet).items():
        rows[name] = values.to_numpy(dtype=np.float64)
    return rows


def _key_is_valid(rows: dict[str, np.ndarray]) -> np.ndarray:
    return (rows["day"] != _NO_DAY) & (rows["sku"] >= 0) & (rows["location"] >= 0)


def _check_repeats(
    spec: _FactFile, rows: dict[str, np.ndarray], codes: _Codes, keys: _KeySet, log: ErrorLog
) -> None:
    usable = np.flatnonzero(_key_is_valid(rows))
    at, origin = keys.repeats(
        codes.key(rows["location"][usable], rows["day"][usable], rows["sku"][usable]),
        rows["line"][usable],
    )
    order = len(spec.columns) + 3  # after every column's own errors on the line
    log.add_lines(
        rows["line"][usable[at]],
        order,
        lambda i: f"duplicate of line {origin[i]} (same date, sku, location)",
    )


def _sum_repeats(
    spec: _FactFile, parts: list[dict[str, np.ndarray]], codes: _Codes, log: ErrorLog
) -> dict[str, np.ndarray]:
    """Several rows of one key (deliveries of one day) as one row: values summed, the first
    line kept. A sum outside 32 bits is an error."""
    rows = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    keys = codes.key(rows["location"], rows["day"], rows["sku"])
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    summed = {name: rows[name][first] for name in ("location", "day", "sku", "line")}
    for name in spec.integers:
        summed[name] = np.bincount(inverse, weights=rows[name], minlength=len(distinct))
        wide = np.flatnonzero(summed[name] > INT_MAX)
        # The value columns of a summed file are named like its columns ("units").
        log.add_lines(
            summed["line"][wide],
            0,
            lambda i, name=name, wide=wide: (
                f"{name}: the day's total {summed[name][wide[i]]:,.0f} is out of range"
            ),
        )
    return summed


def _facts_frame(spec: _FactFile, rows: dict[str, np.ndarray], codes: _Codes) -> pd.DataFrame:
    """The rows with ids, as written: product_id, location_id, date, values."""
    frame = pd.DataFrame(
        {
            "product_id": codes.product_ids[rows["sku"]],
            "location_id": codes.location_ids[rows["location"]],
            "date": rows["day"].astype("datetime64[D]"),
        }
    )
    for name in _written_columns(spec)[len(_FACT_KEYS) :]:
        values = rows[name]
        frame[name] = values.astype(np.int64) if name in spec.integers else values
    return frame


def _written_columns(spec: _FactFile) -> list[str]:
    return [*_FACT_KEYS, *dict.fromkeys((*spec.integers, *spec.updates))]


def _prepare_chunk(
    spec: _FactFile,
    rows: dict[str, np.ndarray],
    codes: _Codes,
    plan: _WritePlan,
    types: tuple[str, ...] | None,
) -> tuple[PreparedRows | None, PreparedRows | None]:
    """Sort the rows like the unique key (the index grows at its right ends), split them
    into rows that cannot exist yet (insert) and the others (upsert), and render both."""
    order = np.argsort(codes.key(rows["location"], rows["day"], rows["sku"]), kind="stable")
    rows = {name: values[order] for name, values in rows.items()}
    location = rows["location"]
    fresh = (rows["day"] < plan.first_day[location]) | (rows["day"] > plan.last_day[location])
    frame = _facts_frame(spec, rows, codes)
    insert = frame[fresh] if fresh.any() else None
    upsert = frame[~fresh] if not fresh.all() else None
    return (
        None if insert is None else rows_prepare(insert, vendor=plan.vendor, types=types),
        None if upsert is None else rows_prepare(upsert, vendor=plan.vendor, types=types),
    )


def _parsed_frame(spec: _FactFile, rows: dict[str, np.ndarray], codes: _Codes) -> pd.DataFrame:
    """The rows as ``bundle_parse`` returns them: date, sku, location codes, values."""
    frame = pd.DataFrame(
        {
            "date": rows["day"].astype("datetime64[D]").astype("datetime64[s]"),
            "sku": codes.skus.to_numpy()[rows["sku"]],
            "location": codes.locations.to_numpy()[rows["location"]],
        }
    )
    for name in rows:
        if name not in ("day", "sku", "location", "line"):
            frame[name] = rows[name]
    if spec.sum_repeats:
        frame["line"] = rows["line"]
    return frame


def _fact_chunks(
    spec: _FactFile,
    path: Path,
    log: ErrorLog,
    codes: _Codes,
    *,
    plan: _WritePlan | None,
    types: tuple[str, ...] | None = None,
    earlier: Iterable[ErrorLog] = (),
    keep_frames: bool = False,
) -> Iterator[_Chunk]:
    """Read, check and prepare for writing each chunk of a fact file: with a ``plan``, as
    long as neither this file nor the ``earlier`` files have an error. ``types`` are the
    database types of the written columns. Pure pandas: runs in the reader thread."""
    chunk_rows = CHUNK_ROWS
    earlier = list(earlier)

    def writable() -> bool:
        return plan is not None and not log and not any(earlier)

    wanted = set(spec.required) | set(spec.optional)
    keys = _KeySet()
    held: list[dict[str, np.ndarray]] = []
    for lines, raw in _csv_chunks(
        path, spec.name, log, required=spec.required, chunk_rows=chunk_rows
    ):
        sheet = SheetValidator(log, raw[[c for c in raw.columns if c in wanted]])
        rows = _fact_rows(spec, sheet, codes)
        if spec.sum_repeats:
            held.append(rows)
            yield _Chunk(lines=lines, rows=len(raw))
            continue
        _check_repeats(spec, rows, codes, keys, log)
        chunk = _Chunk(lines=lines, rows=len(raw))
        if keep_frames and not log:
            chunk = _Chunk(lines, len(raw), frame=_parsed_frame(spec, rows, codes))
        elif writable():
            chunk = _Chunk(lines, len(raw), *_prepare_chunk(spec, rows, codes, plan, types))
        yield chunk
    if not held or log:
        return
    summed = _sum_repeats(spec, held, codes, log)
    del held
    if log or not (keep_frames or writable()):
        return
    total = len(summed["line"])
    for start in range(0, total, chunk_rows):
        part = {name: values[start : start + chunk_rows] for name, values in summed.items()}
        if keep_frames:
            yield _Chunk(0, 0, frame=_parsed_frame(spec, part, codes))
        else:
            yield _Chunk(0, 0, *_prepare_chunk(spec, part, codes, plan, types))


def _ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """Run ``items`` in a reader thread, at most ``depth`` items ahead of the consumer.
    Exceptions of the reader are raised in the consumer; a consumer that stops early stops
    the reader."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(("error", exc))
        finally:
            items.close()

    reader = threading.Thread(target=read, name="bundle-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        reader.join()


def _existing_days(model: type[models.Model], location_ids: np.ndarray) -> _WritePlan:
    """Per location, the first and last day stored in ``model``'s table (two index probes
    on the unique key's (location, date) prefix per location)."""
    first = np.full(len(location_ids), np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(len(location_ids), np.iinfo(np.int64).min, dtype=np.int64)
    table = connection.ops.quote_name(model._meta.db_table)
    sql = (
        f"SELECT (SELECT MIN(date) FROM {table} WHERE location_id = %s), "
        f"(SELECT MAX(date) FROM {table} WHERE location_id = %s)"
    )
    with connection.cursor() as cursor:
        for position, location_id in enumerate(location_ids.tolist()):
            cursor.execute(sql, [location_id, location_id])
            low, high = cursor.fetchone()
            if low is not None:
                first[position] = _day_number(low)
                last[position] = _day_number(high)
    return _WritePlan(connection.vendor, first, last)


def _day_number(value: dt.date | str) -> int:
    return int(np.datetime64(str(value), "D").astype(np.int64))


def _facts_import(
    files: list[tuple[_FactFile, Path]],
    codes: _Codes,
    *,
    write: bool,
    progress: Progress | None,
) -> tuple[list[FileSummary], dict[str, list[str]]]:
    """Stream the fact ``files`` in turn: check every chunk and, when ``write``, store the
    chunks as long as no error has been found. The reader thread goes on to the next file
    while the last chunks of a file are stored. Returns a summary per file without errors
    and the error messages per file."""
    logs = {spec.name: ErrorLog(spec.name) for spec, _path in files}
    # Looked up before anything is written: the days each location held before the import.
    plans = {
        spec.name: _existing_days(spec.model, codes.location_ids) if write else None
        for spec, _path in files
    }
    types = {spec.name: column_types(spec.model, _written_columns(spec)) for spec, _ in files}
    totals = {spec.name: max(_count_lines(path) - 1, 0) for spec, path in files}

    def chunks() -> Iterator[tuple[_FactFile, _Chunk | None]]:
        for position, (spec, path) in enumerate(files):
            earlier = [logs[other.name] for other, _path in files[:position]]
            for chunk in _fact_chunks(
                spec,
                path,
                logs[spec.name],
                codes,
                plan=plans[spec.name],
                types=types[spec.name],
                earlier=earlier,
            ):
                yield spec, chunk
            yield spec, None  # end of the file

    summaries = []
    started = time.perf_counter()
    done = rows = written = 0
    with closing(_ahead(chunks(), CHUNKS_AHEAD)) as prepared:
        for spec, chunk in prepared:
            if chunk is None:
                seconds = time.perf_counter() - started
                summaries.append(
                    FileSummary(spec.name, spec.model.__name__, rows, written, seconds)
                )
                started = time.perf_counter()
                done = rows = written = 0
                continue
            written += _chunk_write(spec, chunk)
            done += chunk.lines
            rows += chunk.rows
            if progress:
                total = totals[spec.name]
                progress(spec.name, min(done, total), total)
    errors = {name: log.messages() for name, log in logs.items() if log}
    return [entry for entry in summaries if entry.name not in errors], errors


def _chunk_write(spec: _FactFile, chunk: _Chunk) -> int:
    """Store one prepared chunk; return the rows inserted or changed."""
    written = 0
    if chunk.insert is not None:
        try:
            written += bulk_insert(spec.model, chunk.insert)
        except IntegrityError:
            # Another transaction stored some of these keys since the import started.
            written += bulk_upsert(spec.model, chunk.insert, _FACT_KEYS, spec.updates)
    if chunk.upsert is not None:
        written += bulk_upsert(spec.model, chunk.upsert, _FACT_KEYS, spec.updates)
    return written


# --- small files -------------------------------------------------------------------------------


def read_csv_strings(
    path: Path, name: str, log: ErrorLog, *, required: Iterable[str], **options
) -> pd.DataFrame | None:
    """Read a CSV as strings (blank cells ``""``), dropping blank lines but keeping their
    numbering in the index (index 0 = line 2). Logs unreadable files and missing columns and
    returns None for them. ``options`` go to ``pandas.read_csv``."""
    # Read every column (not usecols) so that a line is blank only when all of it is blank.
    try:
        with warnings.catch_warnings():
            # pandas only warns when the first data row is longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                encoding="utf-8-sig",
                index_col=False,
                **options,
            )
    except pd.errors.ParserWarning:
        expected, line, saw = _first_row_widths(path)
        log.add(f"{name}:{line}: expected {expected} fields, saw {saw}", line=line)
        return None
    except UnicodeDecodeError as exc:
        log.add(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start:,})")
        return None
    except pd.errors.EmptyDataError:
        log.add(f"{name}: file is empty (a header row is required)")
        return None
    except pd.errors.ParserError as exc:
        _log_parser_error(name, log, exc)
        return None
    frame.columns = [str(column).strip() for column in frame.columns]
    absent = [column for column in required if column not in frame.columns]
    if absent:
        log.add(f"{name}: missing column(s): {', '.join(absent)}")
        return None
    blank_line = (frame == "").all(axis=1)
    if blank_line.any():
        frame = frame[~blank_line]
    return frame


def _first_row_widths(path: Path) -> tuple[int, int, int]:
    """(fields in the header, line of the first data row, fields in it); 0 fields when
    there is no such row, and (0, 2, 0) when the file cannot be read as UTF-8 text."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            for row in reader:
                if row:
                    return len(header), reader.line_num, len(row)
    except (UnicodeDecodeError, csv.Error):
        return 0, 2, 0
    return len(header), 2, 0


def _parse_products(sheet: SheetValidator, _skus: pd.Index, _locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "sku": sheet.text("sku", max_length=64),
            "name": sheet.text("name", max_length=255, required=False),
            "category": sheet.text("category", max_length=128, required=False),
            "unit_price": sheet.decimal("unit_price"),
            "unit_cost": sheet.decimal("unit_cost", required=False),
        }
    )
    sheet.duplicates(frame[["sku"]], what="sku")
    return frame


def _parse_locations(sheet: SheetValidator, _skus: pd.Index, _locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "code": sheet.text("code", max_length=64),
            "name": sheet.text("name", max_length=255, required=False),
        }
    )
    sheet.duplicates(frame[["code"]], what="code")
    return frame


def _parse_calendar(sheet: SheetValidator, _skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "date": sheet.date("date"),
            "event": sheet.text("event", max_length=255),
            "location": sheet.reference("location", locations, kind="location", required=False),
        }
    )
    frame["is_closed"] = frame["event"].str.contains(CLOSED_MARKER, case=False, regex=False)
    sheet.duplicates(frame[["date", "event", "location"]], what="date, event, location")
    return frame


def _parse_promotions(sheet: SheetValidator, skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "start_date": sheet.date("start_date"),
            "end_date": sheet.date("end_date"),
            "sku": sheet.reference("sku", skus, kind="SKU"),
            "location": sheet.reference("location", locations, kind="location", required=False),
            "discount_pct": sheet.decimal(
                "discount_pct", maximum=DISCOUNT_FIELD_MAX, decimals=DISCOUNT_DECIMALS
            ),
        }
    )
    raw_discount = strip_strings(sheet.frame["discount_pct"])
    sheet.report(
        frame["discount_pct"] > DISCOUNT_PCT_MAX,
        "discount_pct",
        lambda i: f"{raw_discount[i]!r} is not between 0 and {DISCOUNT_PCT_MAX}",
    )
    raw_start = strip_strings(sheet.frame["start_date"])
    raw_end = strip_strings(sheet.frame["end_date"])
    sheet.report(
        frame["end_date"] < frame["start_date"],
        "end_date",
        lambda i: f"{raw_end[i]!r} is before start_date {raw_start[i]!r}",
    )
    sheet.duplicates(frame[["sku", "location", "start_date"]], what="sku, location, start_date")
    return frame


_SMALL_FILES: dict[str, dict] = {
    "products.csv": {
        "required": ["sku", "name", "category", "unit_price", "unit_cost"],
        "parse": _parse_products,
    },
    "locations.csv": {"required": ["code", "name"], "parse": _parse_locations},
    "calendar.csv": {"required": ["date", "event", "location"], "parse": _parse_calendar},
    "promotions.csv": {
        "required": ["start_date", "end_date", "sku", "location", "discount_pct"],
        "parse": _parse_promotions,
    },
}


@dataclass
class _Parsed:
    frame: pd.DataFrame
    rows: int
    seconds: float


def _small_file_parse(
    name: str, path: Path, log: ErrorLog, skus: pd.Index, locations: pd.Index
) -> _Parsed | None:
    started = time.perf_counter()
    spec = _SMALL_FILES[name]
    raw = read_csv_strings(path, name, log, required=spec["required"])
    if raw is None:
        return None
    sheet = SheetValidator(log, raw[[c for c in raw.columns if c in spec["required"]]])
    frame = spec["parse"](sheet, skus, locations)
    return _Parsed(frame, len(raw), time.perf_counter() - started)


def _bundle_files(directory: Path) -> list[str]:
    """The bundle's files in reading order; raises ``BundleError`` for a missing folder or
    required file."""
    if not directory.is_dir():
        raise BundleError([f"{directory}: not a directory"])
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise BundleError(f"{name}: required file is missing from {directory}" for name in missing)
    return [name for name in (*REQUIRED_FILES, *OPTIONAL_FILES) if (directory / name).is_file()]


def _small_files_parse(
    directory: Path, names: list[str], skus: pd.Index, locations: pd.Index
) -> tuple[dict[str, _Parsed], dict[str, list[str]], pd.Index, pd.Index]:
    """Parse the small files in ``names``; return the parsed ones, the errors per file, and
    the SKUs and location codes known (database plus bundle)."""
    parsed: dict[str, _Parsed] = {}
    errors: dict[str, list[str]] = {}
    for name in ("products.csv", "locations.csv", "calendar.csv", "promotions.csv"):
        if name not in names:
            continue
        log = ErrorLog(name)
        item = _small_file_parse(name, directory / name, log, skus, locations)
        if log:
            errors[name] = log.messages()
        elif item is not None:
            parsed[name] = item
        # Later files may refer to the codes of this bundle, even when some rows are bad.
        if name == "products.csv" and item is not None:
            skus = skus.union(pd.Index(item.frame["sku"].dropna())).drop_duplicates()
        if name == "locations.csv" and item is not None:
            locations = locations.union(pd.Index(item.frame["code"].dropna())).drop_duplicates()
    return parsed, errors, skus, locations


def _ordered_messages(names: list[str], errors: dict[str, list[str]]) -> list[str]:
    return [message for name in names for message in errors.get(name, [])]


def bundle_import(*, directory: Path, progress: Progress | None = None) -> ImportSummary:
    """Import the retail bundle in ``directory``; return per-file counts and timings.

    Required files: ``products.csv`` (sku,name,category,unit_price,unit_cost),
    ``locations.csv`` (code,name), ``sales.csv`` (date,sku,location,units,unit_price
    [,units_returned]). Optional: ``inventory.csv`` (date,sku,location,on_hand),
    ``receipts.csv`` (date,sku,location,units; duplicate keys are summed), ``calendar.csv``
    (date,event,location; blank location = all; "closed" in the name sets ``is_closed``),
    ``promotions.csv`` (start_date,end_date,sku,location,discount_pct; blank location = all).
    UTF-8 with a header row, dates ``YYYY-MM-DD``, unknown columns ignored. SKUs and location
    codes may refer to rows of the same bundle or already in the database.

    Rows are upserted on their natural keys (product+location+date, sku, code, ...): values in
    the files replace stored ones, other stored rows are kept. Memory stays bounded (a few
    chunks of ``CHUNK_ROWS`` rows, plus 12 bytes a fact row for the repeated-key check and
    the whole receipts file, whose repeated keys are summed) whatever the size of the files.

    Raises ``BundleError`` listing every problem found (missing file or column, unparsable or
    out-of-range value, unknown SKU or location, duplicate key rows, negative sales) with
    ``file:line: column: message``; then nothing has been written.
    """
    started = time.perf_counter()
    directory = Path(directory)
    names = _bundle_files(directory)
    small, errors, skus, locations = _small_files_parse(
        directory,
        names,
        skus=pd.Index(Product.objects.values_list("sku", flat=True), dtype=object),
        locations=pd.Index(Location.objects.values_list("code", flat=True), dtype=object),
    )

    summary = ImportSummary()
    with transaction.atomic(), _bulk_session():
        if not errors:
            for name in ("locations.csv", "products.csv"):
                summary.files.append(_small_file_write(name, small[name], progress))
            codes = _Codes.from_database()
        else:
            codes = _Codes(skus=skus, locations=locations)
        facts = [(spec, directory / name) for name, spec in _FACT_FILES.items() if name in names]
        entries, fact_errors = _facts_import(facts, codes, write=not errors, progress=progress)
        summary.files.extend(entries)
        errors.update(fact_errors)
        if errors:
            # Inside the atomic block: whatever was written is rolled back.
            raise BundleError(_ordered_messages(names, errors))
        for name in ("calendar.csv", "promotions.csv"):
            if name in small:
                summary.files.append(_small_file_write(name, small[name], progress))
    _statistics_refresh(summary)
    summary.lines_read = sum(entry.rows for entry in summary.files)
    summary.seconds = time.perf_counter() - started
    return summary


# A fact table that received at least this many rows is analyzed right after the import.
ANALYZE_MIN_ROWS = 100_000


def _statistics_refresh(summary: ImportSummary) -> None:
    """``ANALYZE`` the fact tables a large import wrote (PostgreSQL, after commit).

    Until autovacuum gets to them the planner would still think a freshly loaded table is
    small (measured: 12k rows estimated for 860k), and detection right after a nightly import
    would get nested-loop plans. Skipped inside an outer transaction and for small imports.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    tables = sorted(
        {
            apps.get_model("inventory", entry.model)._meta.db_table
            for entry in summary.files
            if entry.written >= ANALYZE_MIN_ROWS
        }
    )
    if tables:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(tables)}")
        summary.notes.append(f"Planner statistics refreshed: {', '.join(tables)}")


@contextmanager
def _bulk_session() -> Iterator[None]:
    """Session settings for a bulk load, restored afterwards. SQLite: a page cache of
    ``SQLITE_CACHE_KIB`` instead of 2 MB, so the indexes being extended stay in memory."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")


def bundle_parse(*, directory: Path) -> dict[str, pd.DataFrame]:
    """Parse and validate the bundle in ``directory`` without touching the database.

    Returns file name → parsed frame (columns as documented in ``bundle_import``; ``sku`` and
    ``location`` stay codes, dates are ``datetime64``, quantities float64). Every SKU and
    location must be defined in the bundle itself. Raises ``BundleError`` exactly as
    ``bundle_import`` does. Used to evaluate detectors on a simulated bundle in memory.
    """
    directory = Path(directory)
    names = _bundle_files(directory)
    empty = pd.Index([], dtype=object)
    small, errors, skus, locations = _small_files_parse(directory, names, empty, empty)
    codes = _Codes(skus=skus, locations=locations)
    frames = {name: item.frame for name, item in small.items()}
    for name, spec in _FACT_FILES.items():
        if name not in names:
            continue
        log = ErrorLog(name)
        chunks = _fact_chunks(spec, directory / name, log, codes, plan=None, keep_frames=True)
        parts = [chunk.frame for chunk in chunks if chunk.frame is not None]
        if log:
            errors[name] = log.messages()
        elif parts:
            frames[name] = pd.concat(parts, ignore_index=True)
    if errors:
        raise BundleError(_ordered_messages(names, errors))
    return frames


# --- writing the small files (inside the bundle's transaction) ---------------------------------


def _small_file_write(name: str, item: _Parsed, progress: Progress | None) -> FileSummary:
    started = time.perf_counter()
    report = None if progress is None else (lambda done, total: progress(name, done, total))
    model, written = _WRITERS[name](item.frame, report)
    seconds = item.seconds + time.perf_counter() - started
    return FileSummary(name, model.__name__, item.rows, written, seconds)


def _id_map(model: type[Product] | type[Location], code_field: str) -> dict[str, int]:
    return dict(model.objects.values_list(code_field, "id"))


def _with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace the ``sku``/``location`` code columns by ``product_id``/``location_id``."""
    out = frame.drop(columns=[c for c in ("sku", "location") if c in frame.columns])
    # Blank location (calendar, promotions) means every location: NULL.
    location_ids = frame["location"].map(_id_map(Location, "code"))
    out.insert(0, "location_id", location_ids.astype("Int64"))
    if "sku" in frame.columns:
        product_ids = frame["sku"].map(_id_map(Product, "sku"))
        out.insert(0, "product_id", product_ids.astype("int64"))
    return out


def _write_locations(frame: pd.DataFrame, progress) -> tuple[type, int]:
    return Location, bulk_upsert(Location, frame, ["code"], ["name"], progress=progress)


def _write_products(frame: pd.DataFrame, progress) -> tuple[type, int]:
    updates = ["name", "category", "unit_price", "unit_cost"]
    return Product, bulk_upsert(Product, frame, ["sku"], updates, progress=progress)


def _as_date(value: pd.Timestamp) -> dt.date:
    return value.date()


def _optional_id(value: object) -> int | None:
    return None if pd.isna(value) else int(value)


def _write_calendar(frame: pd.DataFrame, progress) -> tuple[type, int]:
    rows = _with_ids(frame)
    existing = {
        (event.date, event.name, event.location_id): event
        for event in CalendarEvent.objects.filter(
            date__gte=_as_date(rows["date"].min()), date__lte=_as_date(rows["date"].max())
        )
    }
    incoming = [
        CalendarEvent(
            date=_as_date(date),
            name=name,
            location_id=_optional_id(location_id),
            is_closed=bool(closed),
        )
        for date, name, location_id, closed in zip(
            rows["date"], rows["event"], rows["location_id"], rows["is_closed"], strict=True
        )
    ]
    return CalendarEvent, _upsert_small(
        CalendarEvent, incoming, existing, ("date", "name", "location_id"), ["is_closed"], progress
    )


def _write_promotions(frame: pd.DataFrame, progress) -> tuple[type, int]:
    rows = _with_ids(frame)
    existing = {
        (promo.product_id, promo.location_id, promo.start_date): promo
        for promo in Promotion.objects.filter(
            start_date__gte=_as_date(rows["start_date"].min()),
            start_date__lte=_as_date(rows["start_date"].max()),
        )
    }
    incoming = [
        Promotion(
            product_id=int(product_id),
            location_id=_optional_id(location_id),
            start_date=_as_date(start),
            end_date=_as_date(end),
            discount_pct=Decimal(f"{discount:.{DISCOUNT_DECIMALS}f}"),
        )
        for product_id, location_id, start, end, discount in zip(
            rows["product_id"],
            rows["location_id"],
            rows["start_date"],
            rows["end_date"],
            rows["discount_pct"],
            strict=True,
        )
    ]
    return Promotion, _upsert_small(
        Promotion,
        incoming,
        existing,
        ("product_id", "location_id", "start_date"),
        ["end_date", "discount_pct"],
        progress,
    )


def _upsert_small(model, incoming, existing, key, update_fields, progress) -> int:
    """Upsert a few rows of a table with partial unique constraints (a nullable key column
    that ON CONFLICT cannot target on every backend) by matching keys in Python."""
    create, update = [], []
    for obj in incoming:
        current = existing.get(tuple(getattr(obj, name) for name in key))
        if current is None:
            create.append(obj)
        elif any(getattr(current, f) != getattr(obj, f) for f in update_fields):
            for name in update_fields:
                setattr(current, name, getattr(obj, name))
            update.append(current)
    model.objects.bulk_create(create, batch_size=1000)
    model.objects.bulk_update(update, update_fields, batch_size=1000)
    if progress:
        progress(len(incoming), len(incoming))
    return len(create) + len(update)


_WRITERS: dict[str, Callable[[pd.DataFrame, Callable | None], tuple[type, int]]] = {
    "locations.csv": _write_locations,
    "products.csv": _write_products,
    "calendar.csv": _write_calendar,
    "promotions.csv": _write_promotions,
}
