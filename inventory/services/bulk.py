"""Bulk upsert of a pandas frame into one table, on PostgreSQL and SQLite.

The importers write millions of fact rows; per-row ORM saves would take hours. This module
writes a whole frame with a handful of statements:

- PostgreSQL: ``COPY`` (psycopg 3) into a temporary table, then one
  ``INSERT ... SELECT ... ON CONFLICT (keys) DO UPDATE``.
- SQLite: ``executemany`` of ``INSERT ... ON CONFLICT (keys) DO UPDATE`` in batches.

Rows whose values are already stored are not rewritten (the ``DO UPDATE`` has a ``WHERE``
clause), so re-importing the same data changes nothing and reports zero rows written.

Only for tables whose natural key is a plain (non-partial) unique constraint; tables with
partial unique constraints (``Promotion``, ``CalendarEvent``) are small and are upserted by
matching in Python instead.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from django.db import connection, models, transaction

# SQLite: rows per executemany call (bounds the Python-side list of tuples).
SQLITE_BATCH_ROWS = 10_000
# PostgreSQL: rows per CSV text block written to COPY.
POSTGRES_COPY_BATCH_ROWS = 100_000

RowProgress = Callable[[int, int], None]
"""``progress(done_rows, total_rows)``, called after each batch."""


def bulk_upsert(
    model: type[models.Model],
    frame: pd.DataFrame,
    key_fields: Sequence[str],
    update_fields: Sequence[str],
    *,
    progress: RowProgress | None = None,
) -> int:
    """Insert the rows of ``frame`` into ``model``'s table, updating rows whose key exists.

    ``frame`` has one column per field, named by attribute name (``product_id``, ``date``,
    ``units_sold``); it must contain every ``key_fields`` and ``update_fields`` column and may
    contain other insert-only columns. Accepted dtypes: integers (``int64`` or nullable
    ``Int64``), floats for decimals (NaN is NULL; round them to the field's decimal places
    first), ``bool``, strings, and dates as ``datetime64`` or ``YYYY-MM-DD`` strings.

    ``key_fields`` must be the fields of a non-partial unique constraint of the table. With
    empty ``update_fields`` existing rows are left alone (``DO NOTHING``).

    Runs in its own ``transaction.atomic()`` (a savepoint when the caller already has one).
    Returns the number of rows inserted or changed; rows already holding the same values are
    not counted. Raises ``ValueError`` when a column is missing or the frame holds the same
    key twice (the database would reject it halfway through).
    """
    meta = model._meta
    fields = list(frame.columns)
    missing = [name for name in (*key_fields, *update_fields) if name not in fields]
    if missing:
        raise ValueError(f"bulk_upsert({meta.label}): frame lacks column(s) {missing}")
    if not key_fields:
        raise ValueError(f"bulk_upsert({meta.label}): key_fields is empty")
    if frame.duplicated(list(key_fields)).any():
        raise ValueError(f"bulk_upsert({meta.label}): duplicate keys {list(key_fields)}")
    if frame.empty:
        return 0

    columns = [_column_name(model, name) for name in fields]
    keys = [_column_name(model, name) for name in key_fields]
    updates = [_column_name(model, name) for name in update_fields]
    # Rows go in the caller's order: files sorted by date suit the date-leading indexes
    # better than re-sorting by key (measured on SQLite; no difference on PostgreSQL).
    prepared = _prepare(frame)
    with transaction.atomic():
        connection.ensure_connection()
        if connection.vendor == "postgresql":
            return _upsert_postgresql(meta.db_table, columns, keys, updates, prepared, progress)
        if connection.vendor == "sqlite":
            return _upsert_sqlite(meta.db_table, columns, keys, updates, prepared, progress)
    raise NotImplementedError(f"bulk_upsert does not support {connection.vendor}")


def _column_name(model: type[models.Model], attname: str) -> str:
    for field in model._meta.concrete_fields:
        if attname in (field.attname, field.name):
            return field.column
    raise ValueError(f"{model._meta.label} has no field {attname!r}")


def _prepare(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Turn each column into an object array of Python values (None for missing)."""
    out: dict[str, np.ndarray] = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            days = series.to_numpy().astype("datetime64[D]")
            values = days.astype(str).astype(object)
            values[np.isnat(days)] = None
        else:
            values = series.to_numpy(dtype=object, na_value=None, copy=True)
            if series.dtype.kind == "f":
                # to_numpy(na_value=None) keeps NaN for float columns.
                values[series.isna().to_numpy()] = None
        out[name] = values
    return out


def _conflict_sql(table: str, keys: list[str], updates: list[str], alias: str) -> str:
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


def _upsert_sqlite(
    table: str,
    columns: list[str],
    keys: list[str],
    updates: list[str],
    prepared: dict[str, np.ndarray],
    progress: RowProgress | None,
) -> int:
    qn = connection.ops.quote_name
    sql = (
        f"INSERT INTO {qn(table)} ({', '.join(map(qn, columns))}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        + _conflict_sql(table, keys, updates, alias=qn(table))
    )
    arrays = list(prepared.values())
    total = len(arrays[0])
    written = 0
    # The raw sqlite3 connection: Django's cursor wrapper would rewrite the query per batch.
    cursor = connection.connection.cursor()
    try:
        for start in range(0, total, SQLITE_BATCH_ROWS):
            stop = min(start + SQLITE_BATCH_ROWS, total)
            cursor.executemany(sql, zip(*(a[start:stop] for a in arrays), strict=True))
            written += max(cursor.rowcount, 0)
            if progress:
                progress(stop, total)
    finally:
        cursor.close()
    return written


def _null_marker(frame: pd.DataFrame) -> str:
    """A NULL marker for COPY's CSV that no value of ``frame`` equals.

    The empty string (COPY's default) would turn empty names into NULLs, and pandas cannot
    quote empty strings only; a random token that is checked against the data cannot collide.
    """
    while True:
        marker = f"NULL{uuid.uuid4().hex}"
        if not any((frame[name] == marker).any() for name in frame.columns):
            return marker


def _upsert_postgresql(
    table: str,
    columns: list[str],
    keys: list[str],
    updates: list[str],
    prepared: dict[str, np.ndarray],
    progress: RowProgress | None,
) -> int:
    qn = connection.ops.quote_name
    # Unique per call: within one outer transaction (tests, multi-file bundles) the same
    # table can be upserted twice before ON COMMIT DROP fires.
    tmp = f"tmp_upsert_{uuid.uuid4().hex[:12]}"
    cols = ", ".join(map(qn, columns))
    frame = pd.DataFrame(prepared, copy=False)
    total = len(frame)
    null = _null_marker(frame)
    with connection.connection.cursor() as cursor:
        # CREATE ... AS SELECT copies the column types only, not the NOT NULL id column.
        cursor.execute(
            f"CREATE TEMP TABLE {tmp} ON COMMIT DROP AS SELECT {cols} FROM {qn(table)} WITH NO DATA"
        )
        copy_sql = f"COPY {tmp} ({cols}) FROM STDIN (FORMAT csv, NULL '{null}')"
        with cursor.copy(copy_sql) as copy:
            for start in range(0, total, POSTGRES_COPY_BATCH_ROWS):
                stop = min(start + POSTGRES_COPY_BATCH_ROWS, total)
                buffer = io.StringIO()
                frame.iloc[start:stop].to_csv(buffer, header=False, index=False, na_rep=null)
                copy.write(buffer.getvalue())
                if progress:
                    progress(stop, total)
        cursor.execute(
            f"INSERT INTO {qn(table)} AS target ({cols}) SELECT {cols} FROM {tmp} "
            + _conflict_sql(table, keys, updates, alias="target")
        )
        written = max(cursor.rowcount, 0)
        cursor.execute(f"DROP TABLE {tmp}")
    return written
