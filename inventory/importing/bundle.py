"""Import a retail data bundle, a folder of CSV files (``bundle_import``), or parse one in
memory (``bundle_parse``).

The small files (products, locations, calendar, promotions) are read whole and checked first.
The fact files (sales, inventory, receipts: millions of rows) are streamed in chunks of
``CHUNK_ROWS`` rows, so memory does not grow with the file: each chunk is checked with
vectorised pandas (every check runs once per distinct value of a column, not once per row)
and, as long as no error has been found in the bundle, written at once. Everything is written
inside one ``transaction.atomic()``. After the first error nothing more is written but the
rest is still read and checked, so the report lists the problems of every file (the first
``ERROR_LIMIT_PER_FILE`` of each, with file, physical line and column); then ``BundleError``
rolls the transaction back and nothing is half-written. Rows are upserted on their natural
keys, so importing the same bundle twice changes nothing; a day of book stock a recorded cycle
count corrected keeps the counted value (``counts``).

The parts live next door: ``master_data`` (the small files), ``streaming`` (the fact files,
chunk by chunk, with ``facts`` for their checks and ``plan`` for how they are written),
``reading`` (CSV and the reader thread), ``validation`` (cell checks), ``errors`` and
``summary``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from django.apps import apps
from django.db import connection, transaction

from inventory.importing.counts import counted_days_keep
from inventory.importing.errors import BundleError, ErrorLog
from inventory.importing.facts import _FACT_FILES, _Codes
from inventory.importing.master_data import _small_file_write, _small_files_parse
from inventory.importing.price_points import price_points_refresh
from inventory.importing.streaming import _fact_chunks, _facts_import
from inventory.importing.summary import ImportSummary, Progress
from inventory.models import Location, Product

# SQLite page cache during an import, in KiB.
SQLITE_CACHE_KIB = 256 * 1024
REQUIRED_FILES = ("products.csv", "locations.csv", "sales.csv")
OPTIONAL_FILES = ("inventory.csv", "receipts.csv", "calendar.csv", "promotions.csv")


def _bundle_files(directory: Path) -> list[str]:
    """The bundle's files in reading order; raises ``BundleError`` for a missing folder or
    required file."""
    if not directory.is_dir():
        raise BundleError([f"{directory}: not a directory"])
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise BundleError(f"{name}: required file is missing from {directory}" for name in missing)
    return [name for name in (*REQUIRED_FILES, *OPTIONAL_FILES) if (directory / name).is_file()]


def _bundle_error(names: list[str], errors: dict[str, ErrorLog]) -> BundleError:
    return BundleError.from_logs(errors[name] for name in names if name in errors)


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
    the files replace stored ones, other stored rows are kept, except that the book stock of
    a day a cycle count corrected (a ``StockAdjustment``) keeps the counted units
    (``counts``). Memory stays bounded (a few chunks of ``CHUNK_ROWS`` rows, plus 12 bytes a
    fact row for the repeated-key check and the whole receipts file, whose repeated keys are
    summed) whatever the size of the files.

    Raises ``BundleError`` listing every problem found (missing or unreadable file, a column
    missing or named twice, unparsable, implausible or out-of-range value, a NUL character,
    unknown SKU or location, a location code differing only in case from another, duplicate
    key rows, negative sales) with ``file:line: column: message``, and counting the bad rows;
    then nothing has been written.
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
            raise _bundle_error(names, errors)
        if "inventory.csv" in names:
            kept = counted_days_keep()
            if kept:
                summary.notes.append(
                    f"Kept the recorded cycle count on {kept:,} book-stock day(s): "
                    "inventory.csv predates the count, the count wins"
                )
        for name in ("calendar.csv", "promotions.csv"):
            if name in small:
                summary.files.append(_small_file_write(name, small[name], progress))
        # The chain-wide price points of the imported days, with the import (detection
        # refreshes them at every run start too, but after a bulk import that is the whole
        # history: work the import caused, not the next run).
        price_points_refresh()
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
            errors[name] = log
        elif parts:
            frames[name] = pd.concat(parts, ignore_index=True)
    if errors:
        raise _bundle_error(names, errors)
    return frames
