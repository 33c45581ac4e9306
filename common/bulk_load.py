"""PostgreSQL's advice for bulk loads ("Populating a Database"): drop a table's indexes and
foreign keys before a load or delete of a large share of it and rebuild them after.

``is_bulk_load`` says when that pays; ``constraints_dropped`` does it around the caller's load,
inside the caller's transaction (DDL is transactional, so a failure leaves the tables as they
were). Used with ``common.bulk.copy_prepared``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# Inserting or deleting at least this many rows, and at least half as many as the table holds,
# drops the indexes and foreign keys involved and rebuilds them afterwards.
REBUILD_MIN_ROWS = 100_000


@contextmanager
def constraints_dropped(table: str, *, indexes: bool, referencing: bool) -> Iterator[None]:
    """Drop some of ``table``'s indexes and foreign keys; recreate them from their saved
    definitions on the way out.

    ``indexes``: every index but the primary key's, and ``table``'s own foreign keys (for a
    bulk insert). ``referencing``: the foreign keys of other tables (and of ``table`` itself)
    pointing at ``table`` (for a bulk delete). That is PostgreSQL's advice for bulk loading
    ("Populating a Database"): building an index once is far cheaper than updating it per row,
    and adding a foreign key checks it with one join instead of a trigger per row.

    Call inside the transaction of the load: DDL is transactional, so a failure leaves the
    tables as they were. Holds exclusive locks on the tables involved until commit.
    """
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        saved_indexes: list[tuple[str, str]] = []
        if indexes:
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                [table],
            )
            saved_indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' "
            "AND ((%s AND conrelid = %s::regclass) OR (%s AND confrelid = %s::regclass))",
            [indexes, table, referencing, table],
        )
        foreign_keys = cursor.fetchall()
        for owner, name, _definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {qn(owner)} DROP CONSTRAINT {qn(name)}")
        for name, _definition in saved_indexes:
            cursor.execute(f"DROP INDEX {qn(name)}")
    yield
    with connection.cursor() as cursor:
        for _name, definition in saved_indexes:
            cursor.execute(definition)
        for owner, name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {qn(owner)} ADD CONSTRAINT {qn(name)} {definition}")


def is_bulk_load(table: str, rows: int, *, min_rows: int | None = None) -> bool:
    """Whether ``rows`` inserted into or deleted from ``table`` warrant dropping its indexes
    and foreign keys: PostgreSQL only, at least ``min_rows`` (default ``REBUILD_MIN_ROWS``)
    and at least half the rows the table holds (``pg_class.reltuples``, the planner's
    estimate)."""
    min_rows = REBUILD_MIN_ROWS if min_rows is None else min_rows
    if connection.vendor != "postgresql" or rows < min_rows:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return rows >= cursor.fetchone()[0] / 2
