"""Bulk writes of a pandas frame into one model's table, on PostgreSQL and SQLite.

Model-agnostic: any model whose fields are named by the frame's columns. Importers write
millions of rows; per-row ORM saves would take hours. This module writes a whole frame with a
handful of statements:

- ``bulk_insert``: rows known to be new. PostgreSQL: one ``COPY`` straight into the table;
  SQLite: ``executemany`` of a plain ``INSERT``.
- ``bulk_upsert``: rows that may exist. PostgreSQL: ``COPY`` into a temporary table, then one
  ``INSERT ... SELECT ... ON CONFLICT (keys) DO UPDATE``; SQLite: ``executemany`` of
  ``INSERT ... ON CONFLICT (keys) DO UPDATE`` in batches.

Rows whose values are already stored are not rewritten (the ``DO UPDATE`` has a ``WHERE``
clause), so re-importing the same data changes nothing and reports zero rows written.

Frames are rendered by ``common.bulk_render`` (``rows_prepare``), possibly in another thread.

Upserts need a plain (non-partial) unique constraint on the key: ``ON CONFLICT`` cannot target
a partial one on every backend. Tables keyed by a nullable column (inventory's promotions and
calendar events) are upserted by matching in Python instead.

Every function works on Django's default ``connection``; only PostgreSQL and SQLite are
supported (``NotImplementedError`` otherwise).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence

import pandas as pd
from django.db import connection, models, transaction

from common.bulk_render import (
    COPY_BINARY_HEADER,
    COPY_BINARY_TRAILER,
    PreparedRows,
    rows_prepare,
)

# SQLite: rows per executemany call (bounds the Python-side list of tuples).
SQLITE_BATCH_ROWS = 10_000

RowProgress = Callable[[int, int], None]
"""``progress(done_rows, total_rows)``, called after each batch."""


def column_types(model: type[models.Model], names: Sequence[str]) -> tuple[str, ...]:
    """The database types of ``model``'s fields ``names`` (attribute names) on the default
    connection, for ``rows_prepare``."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    fields.update({f.name: f for f in model._meta.concrete_fields})
    return tuple(fields[name].db_type(connection) or "" for name in names)


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
    """``rows`` rendered for the default connection (prepared rows are returned as they are).

    Raises ``ValueError`` when prepared rows target another backend or a column names no
    field of ``model``."""
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
    """The database column of ``model``'s field ``attname`` (attribute name or field name);
    raises ``ValueError`` for an unknown name."""
    for field in model._meta.concrete_fields:
        if attname in (field.attname, field.name):
            return field.column
    raise ValueError(f"{model._meta.label} has no field {attname!r}")


# --- writing -----------------------------------------------------------------------------------


def _insert_sql(table: str, columns: list[str]) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` with the connection's placeholders."""
    qn = connection.ops.quote_name
    placeholders = ", ".join("?" if connection.vendor == "sqlite" else "%s" for _ in columns)
    return f"INSERT INTO {qn(table)} ({', '.join(map(qn, columns))}) VALUES ({placeholders})"


def _conflict_sql(keys: list[str], updates: list[str], alias: str) -> str:
    """The ``ON CONFLICT (keys)`` clause: ``DO NOTHING`` without ``updates``, else ``DO UPDATE``
    of ``updates`` only where a value differs (``alias`` names the stored row)."""
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
    """SQLite: run ``sql`` once per prepared row, ``SQLITE_BATCH_ROWS`` rows per call.

    Returns the rows written: the cursor's row counts when ``count_rows`` (an upsert that
    changes nothing counts 0), else the number of rows."""
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


def copy_prepared(
    table: str,
    parts: Iterable[PreparedRows],
    *,
    total: int,
    freeze: bool = False,
    progress: RowProgress | None = None,
) -> int:
    """PostgreSQL: ``COPY`` ``parts`` (rows prepared for PostgreSQL with the same columns,
    named by column) into ``table``, one ``COPY`` per part, inside the caller's transaction
    (no savepoint of its own, so ``freeze=True`` works: ``COPY ... (FREEZE)`` needs the table
    created or truncated in the current subtransaction). ``parts`` may be a generator, so a
    large load is rendered one part at a time. ``progress(done, total)`` after each block.

    Returns the rows copied. Raises ``NotImplementedError`` on another backend and Django's
    database errors (``IntegrityError``, ...) from the server."""
    if connection.vendor != "postgresql":
        raise NotImplementedError(f"COPY needs PostgreSQL, not {connection.vendor}")
    qn = connection.ops.quote_name
    done = 0
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        for prepared in parts:
            step = _progress_offset(progress, done, total)
            _copy(cursor, qn(table), list(prepared.columns), prepared, step, freeze=freeze)
            done += prepared.count
    return done


def _progress_offset(progress: RowProgress | None, offset: int, total: int) -> RowProgress | None:
    """``progress`` of a whole load, called with a part's own counts."""
    if progress is None:
        return None
    return lambda done, _count: progress(offset + done, total)


def _copy(
    cursor,
    table_sql: str,
    columns: list[str],
    prepared: PreparedRows,
    progress,
    *,
    freeze: bool = False,
) -> None:
    """PostgreSQL: ``COPY`` the prepared blocks into ``columns`` of ``table_sql`` (quoted) with
    the raw psycopg ``cursor``; ``progress(done, total)`` after each block."""
    qn = connection.ops.quote_name
    flags = (["FORMAT binary"] if prepared.binary else []) + (["FREEZE"] if freeze else [])
    options = f" ({', '.join(flags)})" if flags else ""
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
    """PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... SELECT ... ON
    CONFLICT``. Returns the rows inserted or changed."""
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
