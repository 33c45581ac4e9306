"""Import a retail data bundle: a folder of CSV files (see ``bundle_import``).

Everything is validated before anything is written: every file is read and checked with
vectorised pandas, errors are collected (the first ``ERROR_LIMIT_PER_FILE`` of each file, with
file, physical line and column), and only a bundle without errors is written, inside one
``transaction.atomic()``, with bulk upserts on the natural keys. Importing the same bundle
twice therefore changes nothing.

Line numbers are physical file lines (header = line 1) as long as no quoted field spans
several lines; blank lines are skipped but counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import transaction

from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    Product,
    Promotion,
    Receipt,
    StockLevel,
)
from inventory.services.bulk import bulk_upsert

ERROR_LIMIT_PER_FILE = 20
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

    def add_rows(
        self, mask: pd.Series, lines: pd.Series, column: str, order: int, describe: Callable
    ) -> None:
        """Record an error for each row of ``mask``; ``describe(index)`` words the error."""
        count = int(mask.sum())
        if not count:
            return
        self.total += count
        for index in mask.index[mask.to_numpy()][: self.limit]:
            line = int(lines[index])
            self._entries.append((line, order, f"{self.name}:{line}: {column}: {describe(index)}"))

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


class SheetValidator:
    """Parses the string columns of one CSV (or one chunk of it), logging bad values.

    ``frame`` holds the raw cells as strings (``dtype=str``, blanks as ``""``) indexed by row
    position; ``first_line`` is the physical line of index 0. Each method returns the parsed
    column with NaN/NaT where the value was bad (already logged).
    """

    def __init__(self, log: ErrorLog, frame: pd.DataFrame, *, first_line: int = 2) -> None:
        self.log = log
        self.frame = frame
        self.lines = pd.Series(frame.index + first_line, index=frame.index)
        self._order = {name: i for i, name in enumerate(frame.columns)}

    def report(self, mask: pd.Series, column: str, describe: Callable) -> None:
        """Log an error in ``column`` for each row of ``mask``; ``describe(index)`` words it."""
        self.log.add_rows(mask, self.lines, column, self._order.get(column, 0), describe)

    def _raw(self, column: str) -> pd.Series:
        return strip_strings(self.frame[column])

    def _quoted(self, raw: pd.Series, template: str) -> Callable:
        return lambda index: template.format(value=repr(raw[index]))

    def text(self, column: str, *, max_length: int, required: bool = True) -> pd.Series:
        """A stripped string column; blank is an error (and NaN) when ``required``."""
        raw = self._raw(column)
        if required:
            empty = raw == ""
            self.report(empty, column, lambda _i: "value is required")
            raw = raw.where(~empty)
        self.report(
            raw.str.len() > max_length,
            column,
            lambda _i: f"longer than {max_length} characters",
        )
        return raw

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
        raw = self._raw(column)
        empty = raw == ""
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        if blank is None:
            self.report(empty, column, lambda _i: "value is required")
        else:
            values[empty] = blank
        bad = values.isna() & ~empty
        bad |= values.notna() & (values != np.floor(values))
        self.report(bad, column, self._quoted(raw, "{value} is not an integer"))
        values[bad] = np.nan
        if minimum is not None:
            low = values < minimum
            self.report(low, column, self._quoted(raw, f"{{value}} must not be negative{hint}"))
            values[low] = np.nan
        wide = (values < INT_MIN) | (values > INT_MAX)
        self.report(wide, column, self._quoted(raw, "{value} is out of range"))
        values[wide] = np.nan
        return values

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
        raw = self._raw(column)
        empty = raw == ""
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        if required:
            self.report(empty, column, lambda _i: "value is required")
        bad = (values.isna() | ~np.isfinite(values)) & ~empty
        self.report(bad, column, self._quoted(raw, "{value} is not a decimal number"))
        values[bad] = np.nan
        negative = values < (minimum if minimum is not None else -np.inf)
        self.report(negative, column, self._quoted(raw, "{value} must not be negative"))
        too_big = values.abs() >= maximum
        self.report(too_big, column, self._quoted(raw, "{value} is too large"))
        values[negative | too_big] = np.nan
        return values.round(decimals)

    def date(self, column: str) -> pd.Series:
        """A ``YYYY-MM-DD`` column as datetime64 (NaT where blank or bad)."""
        raw = self._raw(column)
        values = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        self.report(values.isna(), column, self._quoted(raw, "{value} is not a date (YYYY-MM-DD)"))
        return values

    def reference(
        self, column: str, known: pd.Index, *, kind: str, required: bool = True
    ) -> pd.Series:
        """A code that must be in ``known``; blank is allowed (kept as ``""``) unless
        ``required``. Blank required and unknown codes are NaN."""
        raw = self._raw(column)
        empty = raw == ""
        if required:
            self.report(empty, column, lambda _i: "value is required")
        unknown = ~empty & ~raw.isin(known)
        self.report(unknown, column, self._quoted(raw, f"unknown {kind} {{value}}"))
        return raw.where(~unknown & ~(empty & required))

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
    the files replace stored ones, other stored rows are kept.

    Raises ``BundleError`` listing every problem found (missing file or column, unparsable or
    out-of-range value, unknown SKU or location, duplicate key rows, negative sales) with
    ``file:line: column: message``; then nothing has been written.
    """
    started = time.perf_counter()
    parsed = _bundle_parse(
        directory,
        known_skus=pd.Index(Product.objects.values_list("sku", flat=True)),
        known_locations=pd.Index(Location.objects.values_list("code", flat=True)),
    )

    summary = ImportSummary()
    with transaction.atomic():
        for name, writer in _WRITERS.items():
            if name not in parsed:
                continue
            item = parsed[name]
            write_started = time.perf_counter()
            report = _progress_for(name, progress)
            model, written = writer(item.frame, report)
            summary.files.append(
                FileSummary(
                    name=name,
                    model=model.__name__,
                    rows=item.rows,
                    written=written,
                    seconds=item.seconds + time.perf_counter() - write_started,
                )
            )
    summary.lines_read = sum(entry.rows for entry in summary.files)
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass
class _Parsed:
    frame: pd.DataFrame
    seconds: float

    @property
    def rows(self) -> int:
        return self.frame.attrs.get("rows_read", len(self.frame))


def bundle_parse(*, directory: Path) -> dict[str, pd.DataFrame]:
    """Parse and validate the bundle in ``directory`` without touching the database.

    Returns file name → parsed frame (columns as documented in ``bundle_import``; ``sku`` and
    ``location`` stay codes, dates are ``datetime64``). Every SKU and location must be defined
    in the bundle itself. Raises ``BundleError`` exactly as ``bundle_import`` does. Used to
    evaluate detectors on a simulated bundle in memory.
    """
    return {
        name: item.frame
        for name, item in _bundle_parse(
            Path(directory), known_skus=pd.Index([]), known_locations=pd.Index([])
        ).items()
    }


def _bundle_parse(
    directory: Path, *, known_skus: pd.Index, known_locations: pd.Index
) -> dict[str, _Parsed]:
    """Parse every bundle file in ``directory``; raise ``BundleError`` listing all problems."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError([f"{directory}: not a directory"])
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise BundleError(f"{name}: required file is missing from {directory}" for name in missing)

    parsed: dict[str, _Parsed] = {}
    errors: list[str] = []
    for name in (*REQUIRED_FILES, *OPTIONAL_FILES):
        path = directory / name
        if not path.is_file():
            continue
        file_started = time.perf_counter()
        log = ErrorLog(name)
        frame = _parse_file(name, path, log, known_skus, known_locations)
        if log:
            errors.extend(log.messages())
        elif frame is not None:
            parsed[name] = _Parsed(frame, time.perf_counter() - file_started)
        # Later files may refer to the codes of this bundle, even when some rows are bad.
        if name == "products.csv" and frame is not None:
            known_skus = known_skus.union(pd.Index(frame["sku"].dropna()))
        if name == "locations.csv" and frame is not None:
            known_locations = known_locations.union(pd.Index(frame["code"].dropna()))
    if errors:
        raise BundleError(errors)
    return parsed


def _progress_for(name: str, progress: Progress | None) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(name, done, total)


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
        match = _PANDAS_FIELD_COUNT.search(str(exc))
        if match:
            expected, line, saw = match.groups()
            log.add(f"{name}:{line}: expected {expected} fields, saw {saw}", line=int(line))
        else:
            log.add(f"{name}: cannot be parsed as CSV ({exc})")
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
    """(fields in the header, line of the first data row, fields in it)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for row in reader:
            if row:
                return len(header), reader.line_num, len(row)
    return len(header), 2, 0


def _parse_file(
    name: str, path: Path, log: ErrorLog, skus: pd.Index, locations: pd.Index
) -> pd.DataFrame | None:
    spec = _FILE_COLUMNS[name]
    wanted = set(spec["required"]) | set(spec.get("optional", ()))
    raw = read_csv_strings(path, name, log, required=spec["required"])
    if raw is None:
        return None
    sheet = SheetValidator(log, raw[[c for c in raw.columns if c in wanted]])
    frame = spec["parse"](sheet, skus, locations)
    frame.attrs["rows_read"] = len(raw)
    return frame


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


def _fact_keys(sheet: SheetValidator, skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": sheet.date("date"),
            "sku": sheet.reference("sku", skus, kind="SKU"),
            "location": sheet.reference("location", locations, kind="location"),
        }
    )


def _parse_sales(sheet: SheetValidator, skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    frame = _fact_keys(sheet, skus, locations)
    frame["units_sold"] = sheet.integer("units", minimum=0, hint=" (returns go in units_returned)")
    if "units_returned" in sheet.frame.columns:
        frame["units_returned"] = sheet.integer("units_returned", minimum=0, blank=0)
    else:
        frame["units_returned"] = 0.0
    frame["unit_price"] = sheet.decimal("unit_price", required=False)
    sheet.duplicates(frame[["date", "sku", "location"]], what="date, sku, location")
    return frame


def _parse_inventory(sheet: SheetValidator, skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    frame = _fact_keys(sheet, skus, locations)
    # Book stock can be negative in real systems (sold before the receipt was booked).
    frame["on_hand"] = sheet.integer("on_hand")
    sheet.duplicates(frame[["date", "sku", "location"]], what="date, sku, location")
    return frame


def _parse_receipts(sheet: SheetValidator, skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    frame = _fact_keys(sheet, skus, locations)
    frame["units"] = sheet.integer("units", minimum=0)
    frame["line"] = sheet.lines
    if sheet.log:
        return frame
    # Several deliveries of one SKU on one day are one receipt row.
    summed = frame.groupby(["date", "sku", "location"], as_index=False, sort=False).agg(
        units=("units", "sum"), line=("line", "first")
    )
    for row in summed[summed["units"] > INT_MAX].itertuples():
        sheet.log.add(
            f"{sheet.log.name}:{row.line}: units: the day's total {row.units:,.0f} is out of range",
            line=row.line,
        )
    return summed


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


_FILE_COLUMNS: dict[str, dict] = {
    "products.csv": {
        "required": ["sku", "name", "category", "unit_price", "unit_cost"],
        "parse": _parse_products,
    },
    "locations.csv": {"required": ["code", "name"], "parse": _parse_locations},
    "sales.csv": {
        "required": ["date", "sku", "location", "units", "unit_price"],
        "optional": ["units_returned"],
        "parse": _parse_sales,
    },
    "inventory.csv": {
        "required": ["date", "sku", "location", "on_hand"],
        "parse": _parse_inventory,
    },
    "receipts.csv": {"required": ["date", "sku", "location", "units"], "parse": _parse_receipts},
    "calendar.csv": {"required": ["date", "event", "location"], "parse": _parse_calendar},
    "promotions.csv": {
        "required": ["start_date", "end_date", "sku", "location", "discount_pct"],
        "parse": _parse_promotions,
    },
}


# --- writing (inside the bundle's transaction) -----------------------------------------------


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


def _write_sales(frame: pd.DataFrame, progress) -> tuple[type, int]:
    rows = _with_ids(frame).astype({"units_sold": "int64", "units_returned": "int64"})
    updates = ["units_sold", "units_returned", "unit_price"]
    keys = ["product_id", "location_id", "date"]
    return DailySales, bulk_upsert(DailySales, rows, keys, updates, progress=progress)


def _write_inventory(frame: pd.DataFrame, progress) -> tuple[type, int]:
    rows = _with_ids(frame).astype({"on_hand": "int64"})
    keys = ["product_id", "location_id", "date"]
    return StockLevel, bulk_upsert(StockLevel, rows, keys, ["on_hand"], progress=progress)


def _write_receipts(frame: pd.DataFrame, progress) -> tuple[type, int]:
    rows = _with_ids(frame.drop(columns=["line"])).astype({"units": "int64"})
    keys = ["product_id", "location_id", "date"]
    return Receipt, bulk_upsert(Receipt, rows, keys, ["units"], progress=progress)


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
    "sales.csv": _write_sales,
    "inventory.csv": _write_inventory,
    "receipts.csv": _write_receipts,
    "calendar.csv": _write_calendar,
    "promotions.csv": _write_promotions,
}
