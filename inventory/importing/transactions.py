"""Import line-level POS exports (one row per receipt line) as daily sales.

A ``TransactionMapping`` names the file's columns. Lines are aggregated per SKU, location and
day into ``DailySales``:

- ``units_sold`` = sum of positive quantities;
- ``units_returned`` = sum of |negative quantities|: returns and cancellations are counted,
  not netted away (an order of 80,995 units cancelled the same day is a day with 80,995 sold
  and 80,995 returned, which the detectors need to see);
- ``unit_price`` = revenue of positive lines / their units. Lines with a zero, negative or
  blank price on a positive quantity (free samples, adjustments) count as units sold but are
  left out of the price average; with no priced line the price is NULL.

Missing products are created: name = the SKU's most frequent non-blank description, unit
price (regular shelf price) = median unit price over the SKU's positive, priced lines of the
whole file, one vote per line (falling back to all its priced lines when it was only ever
returned), category from the mapping. Missing locations are created with code = name. Existing
products and locations are not modified. Daily rows of the (SKU, location, day) keys in the
file are replaced, so re-importing a file changes nothing.

Malformed input raises ``BundleError`` with ``file:line: column: message`` (or ``file:
message``) and nothing is written: a damaged compressed file (truncated, not compressed, bad
CRC), a column named twice in the header, a line with more fields than the header, a quantity
not written as an integer (digits with an optional sign), an unparsable price or timestamp, a
timestamp outside the plausible dates (``validation.plausible_dates``), a NUL character, an
over-long code, or a location code that differs only in case from a stored one or another in
the file (SKUs are case-sensitive: ``85123a`` and ``85123A`` are two products). Lines
excluded on purpose (listed SKUs, blank SKU or location, zero quantity) are counted by
reason in the summary.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import transaction

from common.bulk import bulk_upsert
from inventory.importing.errors import BundleError, ErrorLog, shown
from inventory.importing.master_data import case_variants
from inventory.importing.price_points import price_points_from_lines
from inventory.importing.reading import (
    CSV_TEXT_OPTIONS,
    DECOMPRESSION_ERRORS,
    CsvLayout,
    csv_layout,
    decompression_problem,
    header_problems,
    log_parser_error,
)
from inventory.importing.summary import FileSummary, ImportSummary, Progress
from inventory.importing.validation import (
    INT_MAX,
    PRICE_DECIMALS,
    SheetValidator,
    implausible_date_message,
    plausible_dates,
    strip_strings,
)
from inventory.models import DailySales, Location, Product

# Lines per chunk read: bounds memory (a few hundred MB at most) for files of any length.
CHUNK_LINES = 200_000
COMPACT_EVERY_CHUNKS = 8
DEFAULT_CATEGORY = "Uncategorised"
NAME_MAX_LENGTH = 255
CODE_MAX_LENGTH = 64

# Stock codes of the UCI Online Retail file that are not products (postage, fees, manual
# adjustments, discounts, bad debt); see shared/data/online_retail/README.md.
ONLINE_RETAIL_NON_PRODUCT_CODES = (
    "POST",
    "DOT",
    "M",
    "D",
    "C2",
    "S",
    "BANK CHARGES",
    "AMAZONFEE",
    "CRUK",
    "PADS",
    "B",
)
_KEYS = ["sku", "location", "date"]
_SUMS = ["units_sold", "units_returned", "revenue", "priced_units"]


@dataclass(frozen=True)
class TransactionMapping:
    """Which column of the file holds what.

    ``location_col`` or ``default_location`` must be given. ``exclude_skus`` are compared
    case-insensitively (the Online Retail file has one ``m`` next to 571 ``M``).
    ``timestamp_format`` is a ``strftime`` format; None lets pandas infer it per chunk.
    """

    sku_col: str
    quantity_col: str
    timestamp_col: str
    price_col: str
    description_col: str | None = None
    location_col: str | None = None
    invoice_col: str | None = None
    default_location: str | None = None
    category: str = DEFAULT_CATEGORY
    exclude_skus: frozenset[str] = field(default_factory=frozenset)
    timestamp_format: str | None = None

    def __post_init__(self) -> None:
        if not self.location_col and not self.default_location:
            raise ValueError("a location column or a default location is required")

    @property
    def columns(self) -> list[str]:
        """The file columns read, in a stable order."""
        names = [
            self.invoice_col,
            self.sku_col,
            self.description_col,
            self.quantity_col,
            self.timestamp_col,
            self.price_col,
            self.location_col,
        ]
        return list(dict.fromkeys(name for name in names if name))


PRESETS: dict[str, TransactionMapping] = {
    # UCI Online Retail: InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,
    # CustomerID,Country. Countries are the locations.
    "online-retail": TransactionMapping(
        sku_col="StockCode",
        description_col="Description",
        quantity_col="Quantity",
        timestamp_col="InvoiceDate",
        price_col="UnitPrice",
        location_col="Country",
        invoice_col="InvoiceNo",
        exclude_skus=frozenset(ONLINE_RETAIL_NON_PRODUCT_CODES),
        timestamp_format="%Y-%m-%d %H:%M:%S",
    ),
}


def mapping_with(base: TransactionMapping, **changes: object) -> TransactionMapping:
    """``base`` with the non-None ``changes`` applied (command options over a preset)."""
    return replace(base, **{key: value for key, value in changes.items() if value is not None})


def aggregate_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Sum transaction lines per (sku, location, date).

    ``lines``: columns ``sku``, ``location`` (str), ``date`` (datetime64, midnight),
    ``quantity`` (int64, non-zero), ``price`` (float64, NaN when unknown). Returns one row per
    key with ``units_sold`` (sum of positive quantities), ``units_returned`` (sum of
    |negative quantities|), ``revenue`` (quantity x price over positive lines with a positive
    price) and ``priced_units`` (their quantity). Partial results of several chunks can be
    concatenated and passed to ``combine_daily``.
    """
    quantity = lines["quantity"].to_numpy()
    price = lines["price"].to_numpy()
    sold = quantity > 0
    priced = sold & (price > 0)
    sums = pd.DataFrame(
        {
            "sku": lines["sku"],
            "location": lines["location"],
            "date": lines["date"],
            "units_sold": np.where(sold, quantity, 0),
            "units_returned": np.where(sold, 0, -quantity),
            "revenue": np.where(priced, quantity * np.nan_to_num(price), 0.0),
            "priced_units": np.where(priced, quantity, 0),
        },
        index=lines.index,
    )
    return sums.groupby(_KEYS, as_index=False, sort=False)[_SUMS].sum()


def combine_daily(partials: list[pd.DataFrame]) -> pd.DataFrame:
    """Add up ``aggregate_lines`` results and derive the average realized ``unit_price``
    (revenue / priced units, rounded to 4 places; NaN when no unit was sold at a known
    price). Returns columns sku, location, date, units_sold, units_returned, unit_price,
    sorted by key."""
    if not partials:
        columns = [*_KEYS, "units_sold", "units_returned", "unit_price"]
        return pd.DataFrame(columns=columns)
    daily = pd.concat(partials, ignore_index=True).groupby(_KEYS, as_index=False)[_SUMS].sum()
    priced_units = daily["priced_units"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_price = np.where(priced_units > 0, daily["revenue"].to_numpy() / priced_units, np.nan)
    daily["unit_price"] = pd.Series(unit_price, index=daily.index).round(PRICE_DECIMALS)
    return daily.drop(columns=["revenue", "priced_units"])


def median_by_group(counts: pd.DataFrame, group: str, value: str, count: str) -> pd.Series:
    """Median of ``value`` per ``group`` where each row stands for ``count`` observations
    (the lower and upper middle values averaged for an even count). Returns a Series indexed
    by group."""
    ordered = counts.sort_values([group, value], kind="stable").reset_index(drop=True)
    cum = ordered.groupby(group, sort=False)[count].cumsum()
    start = cum - ordered[count]
    total = ordered.groupby(group, sort=False)[count].transform("sum")
    lower = (total - 1) // 2
    upper = total // 2
    pick_lower = (start <= lower) & (lower < cum)
    pick_upper = (start <= upper) & (upper < cum)
    low = ordered.loc[pick_lower].set_index(group)[value]
    high = ordered.loc[pick_upper].set_index(group)[value]
    return (low + high.reindex(low.index)) / 2


def transactions_import(
    *,
    path: Path,
    mapping: TransactionMapping,
    progress: Progress | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> ImportSummary:
    """Import the line-level POS file ``path`` (CSV, optionally gzip/zip/bz2/xz compressed,
    UTF-8 with a header row) as daily sales, creating missing products and locations.

    Reads ``chunk_lines`` lines at a time. ``progress(label, done, total)`` is called after
    each chunk read (total 0: unknown) and while rows are written. Returns the summary: lines
    read, lines excluded by reason, and rows per table (``written`` = created products and
    locations, inserted or changed daily rows).

    Raises ``BundleError`` (``file:line: column: message``, the first 20 problems, a count of
    the rest and of the bad rows) when the file is unreadable or its header bad, a mapped
    column is missing or a kept line is malformed (see the module docstring); then nothing is
    written.
    """
    started = time.perf_counter()
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise BundleError([f"{name}: file not found ({path})"])
    layout = _checked_layout(path, name, mapping)
    state, log = _read_file(path, name, mapping, layout, progress, chunk_lines)
    if log and layout is not None and layout.first_line:
        # Report physical lines: pandas numbers records, and a quoted field may span lines.
        full = _layout_or_none(path)
        if full is not None and full.record_starts is not None:
            state, log = _read_file(path, name, mapping, full, progress, chunk_lines)
    if not log:
        _check_location_case(name, mapping, state, log)
    if log:
        raise BundleError.from_logs([log])
    read_seconds = time.perf_counter() - started

    daily = combine_daily(state.daily)
    too_many = daily[(daily["units_sold"] > INT_MAX) | (daily["units_returned"] > INT_MAX)]
    if len(too_many):
        raise BundleError(
            f"{name}: {row.sku} at {row.location} on {row.date:%Y-%m-%d}: the day's units "
            "are out of range"
            for row in too_many.head(log.limit).itertuples()
        )
    products = _new_products(state, mapping.category)
    locations = pd.DataFrame({"code": daily["location"].unique()})
    locations["name"] = locations["code"]

    summary = ImportSummary(
        lines_read=state.lines_read, excluded=dict(sorted(state.excluded.items()))
    )
    if mapping.invoice_col:
        summary.notes.append(f"invoices: {len(state.invoices):,}")
    with transaction.atomic():
        for model, frame, key in ((Location, locations, "code"), (Product, products, "sku")):
            write_started = time.perf_counter()
            created = bulk_upsert(model, frame, [key], [])
            summary.files.append(
                FileSummary(name, model.__name__, len(frame), created, _since(write_started))
            )
        write_started = time.perf_counter()
        rows = _with_ids(daily)
        report = (lambda done, total: progress(f"{name} write", done, total)) if progress else None
        written = bulk_upsert(
            DailySales,
            rows,
            ["product_id", "location_id", "date"],
            ["units_sold", "units_returned", "unit_price"],
            progress=report,
        )
        summary.files.append(
            FileSummary(
                name, "DailySales", len(rows), written, read_seconds + _since(write_started)
            )
        )
        write_started = time.perf_counter()
        points = (
            pd.concat(state.points, ignore_index=True).drop_duplicates()
            if state.points
            else pd.DataFrame(columns=["sku", "date", "price"])
        )
        added = price_points_from_lines(points)
        summary.files.append(
            FileSummary(name, "PricePoint", len(points), added, _since(write_started))
        )
    summary.seconds = _since(started)
    return summary


def _layout_or_none(path: Path) -> CsvLayout | None:
    try:
        return csv_layout(path, scan=True)
    except DECOMPRESSION_ERRORS:
        return None


def _checked_layout(path: Path, name: str, mapping: TransactionMapping) -> CsvLayout | None:
    """The file's header and first row, checked: readable, not empty, no column named twice,
    every mapped column present, a first row no longer than the header. Raises
    ``BundleError`` (``file: message``)."""
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
        layout = csv_layout(path, scan=False)
    except pd.errors.EmptyDataError as exc:
        raise BundleError([f"{name}: file is empty (a header row is required)"]) from exc
    except UnicodeDecodeError as exc:
        raise BundleError([f"{name}: not UTF-8 text ({exc.reason})"]) from exc
    except pd.errors.ParserError as exc:
        log = ErrorLog(name)
        log_parser_error(name, log, exc, None)
        raise BundleError.from_logs([log]) from exc
    except DECOMPRESSION_ERRORS as exc:
        raise BundleError([f"{name}: {decompression_problem(exc)}"]) from exc
    names = layout.header if layout is not None else [str(column).strip() for column in header]
    problems = header_problems(name, names)
    if problems:
        raise BundleError(problems)
    absent = [column for column in mapping.columns if column not in names]
    if absent:
        raise BundleError([f"{name}: missing column(s): {', '.join(absent)}"])
    if layout is not None and layout.first_width > len(names):
        line, saw = layout.first_line, layout.first_width
        raise BundleError([f"{name}:{line}: expected {len(names)} fields, saw {saw}"])
    return layout


def _read_file(
    path: Path,
    name: str,
    mapping: TransactionMapping,
    layout: CsvLayout | None,
    progress: Progress | None,
    chunk_lines: int,
) -> tuple[_ReadState, ErrorLog]:
    """Read and check every line in chunks; the partial sums and the errors. A line with more
    fields than the header is an error (every field is read, not only the mapped ones)."""
    log = ErrorLog(name)
    state = _ReadState(excluded_upper={code.upper() for code in mapping.exclude_skus})
    record_starts = None if layout is None else layout.record_starts
    try:
        with warnings.catch_warnings():
            # pandas only warns when the first data row is longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(
                path,
                dtype=str,
                **CSV_TEXT_OPTIONS,
                chunksize=chunk_lines,
            )
            with reader:
                for chunk in reader:
                    chunk.columns = [str(column).strip() for column in chunk.columns]
                    _read_chunk(chunk[mapping.columns], mapping, log, state, record_starts)
                    state.compact()
                    if progress:
                        progress(f"{name} read", state.lines_read, 0)
    except pd.errors.ParserWarning:
        log.add(f"{name}:2: more fields than the header", line=2)
    except UnicodeDecodeError as exc:
        log.add(f"{name}: not UTF-8 text ({exc.reason})")
    except pd.errors.ParserError as exc:
        log_parser_error(name, log, exc, layout)
    except DECOMPRESSION_ERRORS as exc:
        log.add(f"{name}: {decompression_problem(exc)}")
    return state, log


def _check_location_case(
    name: str, mapping: TransactionMapping, state: _ReadState, log: ErrorLog
) -> None:
    """Log each location code of the file that differs only in case from a stored one or
    from another code of the file (on the first line it appears on)."""
    stored = pd.Index(Location.objects.values_list("code", flat=True), dtype=object)
    if not mapping.location_col:
        other = case_variants(pd.Series([mapping.default_location], dtype=object), stored)
        if other.notna().any():
            log.add(
                f"{name}: default location {shown(mapping.default_location)} differs only in "
                f"case from stored location {shown(other.iloc[0])} (codes are case-sensitive)"
            )
        return
    firsts = sorted(state.location_lines.items(), key=lambda item: item[1])
    codes = pd.Series([code for code, _line in firsts], dtype=object)
    lines = np.array([line for _code, line in firsts], dtype=np.int64)
    other = case_variants(codes, stored)
    clash = np.flatnonzero(other.notna().to_numpy())
    stored_set = set(stored)
    log.add_lines(
        lines[clash],
        0,
        lambda i: (
            f"{mapping.location_col}: location {shown(codes.iloc[clash[i]])} differs only in "
            f"case from {'stored location' if other.iloc[clash[i]] in stored_set else 'location'}"
            f" {shown(other.iloc[clash[i]])} (codes are case-sensitive)"
        ),
    )


def _since(started: float) -> float:
    return time.perf_counter() - started


@dataclass
class _ReadState:
    """What is kept of the file between chunks: partial sums, never the lines themselves."""

    excluded_upper: set[str]
    lines_read: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    daily: list[pd.DataFrame] = field(default_factory=list)
    # (sku, price, sold) -> number of lines with a positive price.
    prices: list[pd.DataFrame] = field(default_factory=list)
    # Distinct (sku, date, price) of sold lines with a positive price: price points.
    points: list[pd.DataFrame] = field(default_factory=list)
    # (sku, description) -> number of lines.
    descriptions: list[pd.DataFrame] = field(default_factory=list)
    invoices: set[str] = field(default_factory=set)
    # Location code -> the first line it is on (the case check names it).
    location_lines: dict[str, int] = field(default_factory=dict)

    def exclude(self, reason: str, count: int) -> None:
        if count:
            self.excluded[reason] = self.excluded.get(reason, 0) + int(count)

    def compact(self) -> None:
        """Merge the partial results every few chunks: memory then grows with the number of
        distinct keys, not with the length of the file."""
        if len(self.daily) >= COMPACT_EVERY_CHUNKS:
            self.daily = [_sum_parts(self.daily, _KEYS, _SUMS)]
            self.prices = [_sum_parts(self.prices, ["sku", "price", "sold"], ["size"])]
            self.points = [pd.concat(self.points, ignore_index=True).drop_duplicates()]
            if self.descriptions:
                self.descriptions = [
                    _sum_parts(self.descriptions, ["sku", "description"], ["size"])
                ]


def _sum_parts(parts: list[pd.DataFrame], keys: list[str], sums: list[str]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True).groupby(keys, as_index=False, sort=False)[sums].sum()


def _read_chunk(
    chunk: pd.DataFrame,
    mapping: TransactionMapping,
    log: ErrorLog,
    state: _ReadState,
    record_starts: np.ndarray | None = None,
) -> None:
    """Validate one chunk, count exclusions and add its partial sums to ``state``.
    ``record_starts``: see ``CsvLayout``."""
    state.lines_read += len(chunk)
    if mapping.invoice_col:
        state.invoices.update(strip_strings(chunk[mapping.invoice_col]).unique())
    sheet = SheetValidator(log, chunk, record_starts=record_starts)
    sku = strip_strings(chunk[mapping.sku_col])
    blank_line = (chunk == "").all(axis=1)
    state.exclude("blank line", blank_line.sum())
    blank_sku = (sku == "") & ~blank_line
    state.exclude("blank SKU", blank_sku.sum())
    listed = sku.str.upper().isin(state.excluded_upper)
    for code, count in sku[listed].value_counts().sort_index().items():
        state.exclude(f"excluded SKU {code!r}", count)
    if mapping.location_col:
        location = strip_strings(chunk[mapping.location_col])
        blank_location = (location == "") & ~blank_line & ~blank_sku & ~listed
        state.exclude("blank location", blank_location.sum())
    else:
        location = pd.Series(mapping.default_location, index=chunk.index, dtype="str")
        blank_location = pd.Series(False, index=chunk.index)
    keep = ~(blank_line | blank_sku | listed | blank_location)
    if not keep.all():
        sheet = SheetValidator(log, chunk[keep], record_starts=record_starts)
    sku, location = sku[keep], location[keep]
    sheet.refuse_nul()
    if mapping.location_col:
        at = pd.Series(sheet.lines.to_numpy(), index=location.to_numpy())
        for code, line in at.groupby(level=0, sort=False).first().items():
            state.location_lines.setdefault(code, int(line))

    sheet.text(mapping.sku_col, max_length=CODE_MAX_LENGTH)
    if mapping.location_col:
        sheet.text(mapping.location_col, max_length=CODE_MAX_LENGTH)
    quantity = sheet.integer(mapping.quantity_col)
    price = sheet.decimal(mapping.price_col, required=False, minimum=None)
    raw_time = strip_strings(sheet.frame[mapping.timestamp_col])
    stamp = pd.to_datetime(raw_time, format=mapping.timestamp_format, errors="coerce")
    expected = f" ({mapping.timestamp_format})" if mapping.timestamp_format else ""
    sheet.report(
        stamp.isna(),
        mapping.timestamp_col,
        lambda i: f"{shown(raw_time[i])} is not a timestamp{expected}",
    )
    if stamp.dt.tz is not None:
        stamp = stamp.dt.tz_localize(None)  # the local day as written in the file
    first, last = plausible_dates()
    day = stamp.dt.normalize()
    sheet.report(
        (day < pd.Timestamp(first)) | (day > pd.Timestamp(last)),
        mapping.timestamp_col,
        lambda i: f"{shown(raw_time[i])} {implausible_date_message(first, last)}",
    )
    if log:
        return  # keep validating later chunks (to report errors), stop aggregating

    zero = quantity == 0
    state.exclude("zero quantity", zero.sum())
    lines = pd.DataFrame(
        {
            "sku": sku,
            "location": location,
            "date": day,
            "quantity": quantity.astype("int64"),
            "price": price,
        }
    )[~zero]
    state.daily.append(aggregate_lines(lines))

    priced = lines[lines["price"] > 0]
    sold_lines = priced[priced["quantity"] > 0]
    state.points.append(sold_lines[["sku", "date", "price"]].drop_duplicates())
    state.prices.append(
        priced.assign(sold=priced["quantity"] > 0)
        .groupby(["sku", "price", "sold"], as_index=False, sort=False)
        .size()
    )
    if mapping.description_col:
        description = strip_strings(sheet.frame[mapping.description_col])[~zero]
        named = description != ""
        state.descriptions.append(
            pd.DataFrame({"sku": lines["sku"][named], "description": description[named]})
            .groupby(["sku", "description"], as_index=False, sort=False)
            .size()
        )


def _new_products(state: _ReadState, category: str) -> pd.DataFrame:
    """One row per SKU seen: sku, name, category, unit_price (see the module docstring)."""
    skus = pd.Index(
        pd.concat([part["sku"] for part in state.daily]).unique()
        if state.daily
        else pd.Index([], dtype="str"),
        name="sku",
    )
    products = pd.DataFrame(index=skus)
    if state.descriptions:
        counts = (
            pd.concat(state.descriptions)
            .groupby(["sku", "description"], as_index=False)["size"]
            .sum()
            .sort_values(["sku", "size", "description"], ascending=[True, False, True])
        )
        names = counts.drop_duplicates("sku").set_index("sku")["description"]
        products["name"] = names.reindex(skus).fillna("").str.slice(0, NAME_MAX_LENGTH)
    else:
        products["name"] = ""
    products["category"] = category
    if state.prices:
        prices = (
            pd.concat(state.prices).groupby(["sku", "price", "sold"], as_index=False)["size"].sum()
        )
        sold = median_by_group(prices[prices["sold"]], "sku", "price", "size")
        # A SKU only ever returned in this file still needs a shelf price.
        fallback = median_by_group(
            prices.groupby(["sku", "price"], as_index=False)["size"].sum(), "sku", "price", "size"
        )
        unit_price = sold.reindex(skus).fillna(fallback.reindex(skus))
    else:
        unit_price = pd.Series(np.nan, index=skus)
    # Required field: 0 marks a SKU never seen with a positive price.
    products["unit_price"] = unit_price.fillna(0.0).round(PRICE_DECIMALS)
    return products.reset_index()


def _with_ids(daily: pd.DataFrame) -> pd.DataFrame:
    product_ids = dict(Product.objects.values_list("sku", "id"))
    location_ids = dict(Location.objects.values_list("code", "id"))
    return pd.DataFrame(
        {
            "product_id": daily["sku"].map(product_ids).astype("int64"),
            "location_id": daily["location"].map(location_ids).astype("int64"),
            "date": daily["date"],
            "units_sold": daily["units_sold"].astype("int64"),
            "units_returned": daily["units_returned"].astype("int64"),
            "unit_price": daily["unit_price"].astype("float64"),
        }
    )
