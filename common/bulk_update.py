"""Bulk UPDATE of saved rows from a VALUES list: one statement per batch, not one CASE per field.

Django's ``QuerySet.bulk_update`` builds a ``CASE WHEN pk = ... THEN ...`` expression per field
and row; for a few hundred rows and a dozen fields compiling it costs more than the work around
it (measured in detection: 0.2 s of a 0.4 s backfill day on 3,000 SKU-locations).
``rows_update`` sends the new values as a ``VALUES`` list joined to the table on its primary
key instead. Model-agnostic; imports Django only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import NotSupportedError, connections, router
from django.db.models import Model

# Rows per statement: well inside SQLite's (32,766) and PostgreSQL's (65,535) bound-parameter
# limits for a dozen fields.
DEFAULT_BATCH_SIZE_ROWS = 500
# ``UPDATE ... FROM`` arrived in SQLite 3.33.
SQLITE_MIN_VERSION = (3, 33)


def rows_update(
    objs: Sequence[Model],
    fields: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE_ROWS,
    using: str | None = None,
) -> None:
    """Write the current values of ``fields`` of the saved instances ``objs`` to the database.

    Inputs: ``objs`` are instances of one model, each with its primary key set; ``fields``
    are names of concrete, non-primary-key fields of that model (as for ``bulk_update``).
    Values go through each field's ``get_db_prep_save``, so ``auto_now`` is *not* applied:
    set such fields on the instances first. ``using`` is the database alias (default: the
    router's write database for the model). No signals are sent and no rows are returned; a
    primary key with no row is silently skipped, as by any UPDATE.

    SQL, one statement per ``batch_size`` rows:

    - PostgreSQL: ``UPDATE t AS t SET col = CAST(v.col AS <type>), ... FROM (VALUES (%s, ...),
      ...) AS v(pk, col, ...) WHERE t.pk = CAST(v.pk AS <pk type>)``. The casts are needed
      because PostgreSQL types the VALUES columns from the parameters (text, numeric), not
      from the table.
    - SQLite (3.33+): ``WITH v(pk, col, ...) AS (VALUES (?, ...), ...) UPDATE t SET col =
      v.col, ... FROM v WHERE t.pk = v.pk``; the CTE names the columns, which SQLite's bare
      VALUES calls column1, column2, ...

    Errors: ``ValueError`` for an empty ``fields``, a non-concrete or primary-key field, or an
    instance without a primary key (nothing is written); ``NotSupportedError`` on another
    database backend or an SQLite older than 3.33; database errors (a value a column refuses)
    propagate from the cursor, so run it inside ``transaction.atomic()`` to write all batches
    or none.
    """
    if not objs:
        return
    if not fields:
        raise ValueError("rows_update() needs at least one field name.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    meta = objs[0]._meta
    columns = [meta.get_field(name) for name in fields]
    if any(not f.concrete or f.many_to_many for f in columns):
        raise ValueError("rows_update() can only write concrete fields.")
    if any(f.primary_key for f in columns):
        raise ValueError("rows_update() cannot write primary key fields.")
    if any(obj.pk is None for obj in objs):
        raise ValueError("rows_update() needs every instance to have a primary key set.")

    connection = connections[using or router.db_for_write(meta.model)]
    vendor = connection.vendor
    if vendor == "sqlite":
        if connection.Database.sqlite_version_info < SQLITE_MIN_VERSION:
            raise NotSupportedError("rows_update() needs SQLite 3.33 or later (UPDATE ... FROM).")
    elif vendor != "postgresql":
        raise NotSupportedError(f"rows_update() supports PostgreSQL and SQLite, not {vendor}.")

    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    pk = meta.pk
    names = ", ".join(qn(f.column) for f in [pk, *columns])
    placeholder = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
    if vendor == "postgresql":
        sets = ", ".join(
            f"{qn(f.column)} = CAST(v.{qn(f.column)} AS {f.db_type(connection)})" for f in columns
        )
        where = f"t.{qn(pk.column)} = CAST(v.{qn(pk.column)} AS {pk.cast_db_type(connection)})"
    else:
        sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in columns)
        where = f"{table}.{qn(pk.column)} = v.{qn(pk.column)}"

    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            batch = objs[start : start + batch_size]
            params: list[Any] = []
            for obj in batch:
                params.append(pk.get_db_prep_value(obj.pk, connection))
                params.extend(
                    f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns
                )
            values = f"VALUES {', '.join([placeholder] * len(batch))}"
            if vendor == "postgresql":
                sql = f"UPDATE {table} AS t SET {sets} FROM ({values}) AS v({names}) WHERE {where}"
            else:
                sql = (
                    f"WITH v({names}) AS ({values}) UPDATE {table} SET {sets} FROM v WHERE {where}"
                )
            cursor.execute(sql, params)
