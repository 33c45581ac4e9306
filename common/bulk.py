"""Bulk writes of a pandas frame into one table, on PostgreSQL and SQLite.

The importers write millions of fact rows; per-row ORM saves would take hours. This module
writes a whole frame with a handful of statements:

- ``bulk_insert``: rows known to be new. PostgreSQL: one ``COPY`` straight into the table;
  SQLite: ``executemany`` of a plain ``INSERT``.
- ``bulk_upsert``: rows that may exist. PostgreSQL: ``COPY`` into a temporary table, then one
  ``INSERT ... SELECT ... ON CONFLICT (keys) DO UPDATE``; SQLite: ``executemany`` of
  ``INSERT ... ON CONFLICT (keys) DO UPDATE`` in batches.

Rows whose values are already stored are not rewritten (the ``DO UPDATE`` has a ``WHERE``
clause), so re-importing the same data changes nothing and reports zero rows written.

Values are encoded once per distinct value of a column, not once per row (fact columns
repeat a few thousand values over millions of rows), then gathered into rows with numpy. COPY
uses PostgreSQL's binary format when every column type has an encoder here (the server then
parses nothing: 5-8 % of its time in a bulk load), else the text format. A frame can be
prepared (``rows_prepare``) in another thread than the one that writes it, so that an
importer parses and renders the next chunk while the database stores this one.

Only for tables whose natural key is a plain (non-partial) unique constraint; tables with
partial unique constraints (``Promotion``, ``CalendarEvent``) are small and are upserted by
matching in Python instead.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection, models, transaction
from psycopg.types.numeric import DecimalBinaryDumper

# SQLite: rows per executemany call (bounds the Python-side list of tuples).
SQLITE_BATCH_ROWS = 10_000
# PostgreSQL: rows per COPY block (bounds the rendered data, ~40-60 bytes a fact row).
POSTGRES_COPY_BATCH_ROWS = 250_000
# Floats at most this large that hold a whole number are written without ".0", so that a
# float column can fill an integer field.
_EXACT_FLOAT_INT = 2**53

RowProgress = Callable[[int, int], None]
"""``progress(done_rows, total_rows)``, called after each batch."""


@dataclass(frozen=True)
class PreparedRows:
    """A frame rendered for one backend: COPY blocks (PostgreSQL) or parameter columns
    (SQLite). Build with ``rows_prepare``."""

    vendor: str
    columns: tuple[str, ...]
    count: int
    blocks: tuple[tuple[int, bytes], ...] = ()
    """PostgreSQL: (rows, COPY data) per block."""
    binary: bool = False
    """PostgreSQL: the blocks are in COPY's binary format (else text)."""
    params: tuple[list, ...] = ()
    """SQLite: one list of Python values per column."""


def column_types(model: type[models.Model], names: Sequence[str]) -> tuple[str, ...]:
    """The database types of ``model``'s fields ``names`` (attribute names) on the default
    connection, for ``rows_prepare``."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    fields.update({f.name: f for f in model._meta.concrete_fields})
    return tuple(fields[name].db_type(connection) or "" for name in names)


def rows_prepare(
    frame: pd.DataFrame, *, vendor: str, types: Sequence[str] | None = None
) -> PreparedRows:
    """Render ``frame`` for ``vendor`` ("postgresql" or "sqlite") without touching the database
    (safe in any thread).

    ``frame`` has one column per field, named by attribute name (``product_id``, ``date``,
    ``units_sold``). Accepted dtypes: integers (``int64`` or nullable ``Int64``), floats for
    decimals and integers (NaN is NULL; round decimals to the field's places first; whole
    numbers are written without a fraction), ``bool``, strings, and dates as ``datetime64``
    (the time of day is dropped) or ``YYYY-MM-DD`` strings. With the columns' database
    ``types`` (``column_types``) PostgreSQL gets COPY's binary format when every type has a
    binary encoder here (integers, numeric, date, boolean, text): the server then parses
    nothing. Raises ``ValueError`` for a fraction in an integer column.
    """
    columns = tuple(frame.columns)
    if vendor == "postgresql":
        encoders = None
        if types is not None:
            encoders = [_binary_encoder(db_type) for db_type in types]
            if None in encoders:
                encoders = None
        blocks = []
        for start in range(0, len(frame), POSTGRES_COPY_BATCH_ROWS):
            part = frame.iloc[start : start + POSTGRES_COPY_BATCH_ROWS]
            data = copy_text(part) if encoders is None else copy_binary(part, encoders)
            blocks.append((len(part), data))
        binary = encoders is not None
        return PreparedRows(vendor, columns, len(frame), blocks=tuple(blocks), binary=binary)
    if vendor == "sqlite":
        params = tuple(_python_values(frame[name]) for name in columns)
        return PreparedRows(vendor, columns, len(frame), params=params)
    raise NotImplementedError(f"bulk writes do not support {vendor}")


def bulk_insert(
    model: type[models.Model],
    rows: pd.DataFrame | PreparedRows,
    *,
    progress: RowProgress | None = None,
) -> int:
    """Insert ``rows`` (a frame as for ``rows_prepare``, or its result) into ``model``'s
    table; every row must be new.

    Runs in its own ``transaction.atomic()`` (a savepoint when the caller already has one).
    Returns the number of rows inserted. Raises ``django.db.IntegrityError`` when a row
    repeats a stored key (nothing of the call is kept then).
    """
    prepared = _prepared(model, rows)
    if not prepared.count:
        return 0
    table = model._meta.db_table
    columns = [_column_name(model, name) for name in prepared.columns]
    # wrap_database_errors: raw cursors raise the driver's errors, callers expect Django's.
    with transaction.atomic(), connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            with connection.connection.cursor() as cursor:
                _copy(cursor, connection.ops.quote_name(table), columns, prepared, progress)
            return prepared.count
        return _executemany(_insert_sql(table, columns), prepared, progress, count_rows=False)


def bulk_upsert(
    model: type[models.Model],
    rows: pd.DataFrame | PreparedRows,
    key_fields: Sequence[str],
    update_fields: Sequence[str],
    *,
    progress: RowProgress | None = None,
) -> int:
    """Insert ``rows`` into ``model``'s table, updating rows whose key exists.

    ``rows`` is a frame (see ``rows_prepare`` for its columns and dtypes) or the result of
    ``rows_prepare``; it must contain every ``key_fields`` and ``update_fields`` column and may
    contain other insert-only columns. ``key_fields`` must be the fields of a non-partial
    unique constraint of the table. With empty ``update_fields`` existing rows are left alone
    (``DO NOTHING``).

    Runs in its own ``transaction.atomic()`` (a savepoint when the caller already has one).
    Returns the number of rows inserted or changed; rows already holding the same values are
    not counted. Raises ``ValueError`` when a column is missing or a frame holds the same key
    twice (the database would reject it halfway through); prepared rows are not checked for
    repeated keys (the caller has).
    """
    meta = model._meta
    names = list(rows.columns)
    missing = [name for name in (*key_fields, *update_fields) if name not in names]
    if missing:
        raise ValueError(f"bulk_upsert({meta.label}): frame lacks column(s) {missing}")
    if not key_fields:
        raise ValueError(f"bulk_upsert({meta.label}): key_fields is empty")
    if isinstance(rows, pd.DataFrame) and rows.duplicated(list(key_fields)).any():
        raise ValueError(f"bulk_upsert({meta.label}): duplicate keys {list(key_fields)}")
    prepared = _prepared(model, rows)
    if not prepared.count:
        return 0

    columns = [_column_name(model, name) for name in names]
    keys = [_column_name(model, name) for name in key_fields]
    updates = [_column_name(model, name) for name in update_fields]
    with transaction.atomic(), connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            return _upsert_postgresql(meta.db_table, columns, keys, updates, prepared, progress)
        sql = (
            _insert_sql(meta.db_table, columns)
            + " "
            + _conflict_sql(keys, updates, alias=connection.ops.quote_name(meta.db_table))
        )
        return _executemany(sql, prepared, progress, count_rows=True)


def _prepared(model: type[models.Model], rows: pd.DataFrame | PreparedRows) -> PreparedRows:
    if isinstance(rows, PreparedRows):
        if rows.vendor != connection.vendor:
            raise ValueError(f"rows prepared for {rows.vendor}, writing to {connection.vendor}")
        return rows
    for name in rows.columns:
        _column_name(model, name)
    if rows.empty:
        return PreparedRows(connection.vendor, tuple(rows.columns), 0)
    types = column_types(model, list(rows.columns))
    return rows_prepare(rows, vendor=connection.vendor, types=types)


def _column_name(model: type[models.Model], attname: str) -> str:
    for field in model._meta.concrete_fields:
        if attname in (field.attname, field.name):
            return field.column
    raise ValueError(f"{model._meta.label} has no field {attname!r}")


# --- rendering ---------------------------------------------------------------------------------


def _distinct(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, distinct values); code -1 is a missing value (NaN, NaT, None, NA).
    Dates are compared by day."""
    if series.dtype.kind == "M":
        series = pd.Series(series.to_numpy().astype("datetime64[D]"), copy=False)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, np.asarray(uniques)


def _texts(uniques: np.ndarray) -> list[str]:
    """The text of each distinct value, as PostgreSQL's input functions read it."""
    kind = uniques.dtype.kind
    if kind == "M":
        return uniques.astype("datetime64[D]").astype(str).tolist()
    if kind == "b":
        return ["t" if value else "f" for value in uniques.tolist()]
    if kind == "f":
        return [_float_text(value) for value in uniques.tolist()]
    return [str(value) for value in uniques.tolist()]


def _float_text(value: float) -> str:
    if value.is_integer() and abs(value) <= _EXACT_FLOAT_INT:
        return str(int(value))
    return repr(value)


def _escape(text: str) -> str:
    """Escape for COPY's text format (backslash sequences; ``\\N`` is NULL)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def copy_text(frame: pd.DataFrame) -> bytes:
    """``frame`` as the body of ``COPY ... FROM STDIN`` in text format (tab-separated, ``\\N``
    for NULL, one line per row, UTF-8). About 40 bytes and 0.2 us a fact row."""
    if frame.empty:
        return b""
    last = len(frame.columns) - 1
    pieces = []
    for position, name in enumerate(frame.columns):
        codes, uniques = _distinct(frame[name])
        end = "\n" if position == last else "\t"
        texts = [_escape(text) + end for text in _texts(uniques)]
        texts.append("\\N" + end)  # code -1 (missing) wraps around to this last entry
        pieces.append((codes, [text.encode() for text in texts]))
    return _gather(len(frame), pieces)


BinaryEncoder = Callable[[np.ndarray], list[bytes]]
"""Encodes distinct values (a numpy array) as COPY binary fields (length + data)."""

# COPY's binary format: signature, flags, header extension length; trailer = field count -1.
COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_BINARY_TRAILER = struct.pack(">h", -1)
_BINARY_NULL = struct.pack(">i", -1)
_POSTGRES_EPOCH_DAYS = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days


def _whole(value: object) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} in an integer column")
    return int(value)


def _binary_integers(fmt: str) -> BinaryEncoder:
    size = struct.calcsize(fmt)
    return lambda values: [struct.pack(f">i{fmt}", size, _whole(v)) for v in values.tolist()]


def _binary_dates(values: np.ndarray) -> list[bytes]:
    days = values.astype("datetime64[D]").astype(np.int64) - _POSTGRES_EPOCH_DAYS
    return [struct.pack(">ii", 4, day) for day in days.tolist()]


def _binary_numerics(values: np.ndarray) -> list[bytes]:
    dumper = DecimalBinaryDumper(Decimal)
    out = []
    for value in values.tolist():
        text = _float_text(value) if isinstance(value, float) else str(value)
        data = bytes(dumper.dump(Decimal(text)))
        out.append(struct.pack(">i", len(data)) + data)
    return out


def _binary_booleans(values: np.ndarray) -> list[bytes]:
    return [struct.pack(">i?", 1, bool(v)) for v in values.tolist()]


def _binary_texts(values: np.ndarray) -> list[bytes]:
    encoded = [str(v).encode() for v in values.tolist()]
    return [struct.pack(">i", len(data)) + data for data in encoded]


_BINARY_ENCODERS: tuple[tuple[str, BinaryEncoder], ...] = (
    ("bigint", _binary_integers("q")),
    ("integer", _binary_integers("i")),
    ("smallint", _binary_integers("h")),
    ("date", _binary_dates),
    ("numeric", _binary_numerics),
    ("boolean", _binary_booleans),
    ("varchar", _binary_texts),
    ("text", _binary_texts),
)


def _binary_encoder(db_type: str) -> BinaryEncoder | None:
    """The binary encoder of a column type (``numeric(14, 4)``, ``varchar(64)``, ...)."""
    for prefix, encoder in _BINARY_ENCODERS:
        if db_type == prefix or db_type.startswith(prefix + "("):
            return encoder
    return None


def copy_binary(frame: pd.DataFrame, encoders: Sequence[BinaryEncoder]) -> bytes:
    """``frame``'s rows in COPY's binary format, without the header and trailer
    (``COPY_BINARY_HEADER``, ``COPY_BINARY_TRAILER``); ``encoders`` per column."""
    if frame.empty:
        return b""
    field_count = [struct.pack(">h", len(frame.columns))]
    pieces = [(np.zeros(len(frame), dtype=np.intp), field_count)]
    for name, encoder in zip(frame.columns, encoders, strict=True):
        codes, uniques = _distinct(frame[name])
        # Code -1 (missing) wraps around to the last entry, NULL.
        pieces.append((codes, [*encoder(uniques), _BINARY_NULL]))
    return _gather(len(frame), pieces)


def _gather(count: int, pieces: list[tuple[np.ndarray, list[bytes]]]) -> bytes:
    """Concatenate, row by row, the bytes of each column's distinct value for that row.

    ``pieces`` holds per column the code of each row and the bytes of each distinct value.
    Each column's values become a zero-padded byte table; the rows are gathered into one
    (rows x total width) matrix with numpy and the padding dropped with one boolean mask."""
    tables = []
    for codes, encoded in pieces:
        table = np.array(encoded, dtype=bytes)
        width = table.dtype.itemsize
        table = table.view(np.uint8).reshape(len(encoded), width)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        tables.append((codes, table, np.arange(width) < lengths[:, None]))
    width = sum(table.shape[1] for _codes, table, _keep in tables)
    matrix = np.empty((count, width), dtype=np.uint8)
    keep = np.empty((count, width), dtype=bool)
    start = 0
    for codes, table, column_keep in tables:
        stop = start + table.shape[1]
        np.take(table, codes, axis=0, out=matrix[:, start:stop], mode="wrap")
        np.take(column_keep, codes, axis=0, out=keep[:, start:stop], mode="wrap")
        start = stop
    return matrix[keep].tobytes()


def _python_values(series: pd.Series) -> list:
    """The column as a list of Python values for sqlite3 (None for missing; dates as ISO
    strings, as Django stores them)."""
    if series.dtype.kind in "iub" and not series.hasnans:
        return series.to_numpy().tolist()
    codes, uniques = _distinct(series)
    kind = uniques.dtype.kind
    if kind == "M":
        values: list = _texts(uniques)
    elif kind == "O":
        # Python ints, floats and strings as they are; dates and Decimals as text (as Django
        # stores them on SQLite).
        values = [v if isinstance(v, str | int | float) else str(v) for v in uniques.tolist()]
    else:
        values = uniques.tolist()
    table = np.empty(len(values) + 1, dtype=object)
    table[: len(values)] = values
    table[-1] = None
    return table[codes].tolist()


# --- writing -----------------------------------------------------------------------------------


def _insert_sql(table: str, columns: list[str]) -> str:
    qn = connection.ops.quote_name
    placeholders = ", ".join("?" if connection.vendor == "sqlite" else "%s" for _ in columns)
    return f"INSERT INTO {qn(table)} ({', '.join(map(qn, columns))}) VALUES ({placeholders})"


def _conflict_sql(keys: list[str], updates: list[str], alias: str) -> str:
    qn = connection.ops.quote_name
    if not updates:
        return f"ON CONFLICT ({', '.join(map(qn, keys))}) DO NOTHING"
    sets = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in updates)
    if connection.vendor == "postgresql":
        changed = (
            f"ROW({', '.join(f'{alias}.{qn(c)}' for c in updates)}) IS DISTINCT FROM "
            f"ROW({', '.join(f'excluded.{qn(c)}' for c in updates)})"
        )
    else:
        changed = " OR ".join(f"{alias}.{qn(c)} IS NOT excluded.{qn(c)}" for c in updates)
    return f"ON CONFLICT ({', '.join(map(qn, keys))}) DO UPDATE SET {sets} WHERE {changed}"


def _executemany(
    sql: str, prepared: PreparedRows, progress: RowProgress | None, *, count_rows: bool
) -> int:
    total = prepared.count
    written = 0
    # The raw sqlite3 connection: Django's cursor wrapper would rewrite the query per batch.
    cursor = connection.connection.cursor()
    try:
        for start in range(0, total, SQLITE_BATCH_ROWS):
            stop = min(start + SQLITE_BATCH_ROWS, total)
            cursor.executemany(sql, zip(*(c[start:stop] for c in prepared.params), strict=True))
            written += max(cursor.rowcount, 0) if count_rows else stop - start
            if progress:
                progress(stop, total)
    finally:
        cursor.close()
    return written


def _copy(cursor, table_sql: str, columns: list[str], prepared: PreparedRows, progress) -> None:
    qn = connection.ops.quote_name
    options = " (FORMAT binary)" if prepared.binary else ""
    done = 0
    with cursor.copy(
        f"COPY {table_sql} ({', '.join(map(qn, columns))}) FROM STDIN{options}"
    ) as copy:
        if prepared.binary:
            copy.write(COPY_BINARY_HEADER)
        for rows, data in prepared.blocks:
            copy.write(data)
            done += rows
            if progress:
                progress(done, prepared.count)
        if prepared.binary:
            copy.write(COPY_BINARY_TRAILER)


def _upsert_postgresql(
    table: str,
    columns: list[str],
    keys: list[str],
    updates: list[str],
    prepared: PreparedRows,
    progress: RowProgress | None,
) -> int:
    qn = connection.ops.quote_name
    # Unique per call: within one outer transaction (tests, multi-file bundles) the same
    # table can be upserted twice before ON COMMIT DROP fires.
    tmp = f"tmp_upsert_{uuid.uuid4().hex[:12]}"
    cols = ", ".join(map(qn, columns))
    with connection.connection.cursor() as cursor:
        # CREATE ... AS SELECT copies the column types only, not the NOT NULL id column.
        cursor.execute(
            f"CREATE TEMP TABLE {tmp} ON COMMIT DROP AS SELECT {cols} FROM {qn(table)} WITH NO DATA"
        )
        _copy(cursor, tmp, columns, prepared, progress)
        cursor.execute(
            f"INSERT INTO {qn(table)} AS target ({cols}) SELECT {cols} FROM {tmp} "
            + _conflict_sql(keys, updates, alias="target")
        )
        written = max(cursor.rowcount, 0)
        cursor.execute(f"DROP TABLE {tmp}")
    return written
