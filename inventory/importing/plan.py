"""The write plan of the fact tables: which rows are copied straight into the table and which
are upserted, how a chunk is rendered for the database, and how it is stored.

Fact rows of a location and day outside the range of days that location held when the import
started cannot be stored yet: they are copied straight into the table (``bulk_insert``: a first
load, or new days appended). Other rows go through ``bulk_upsert``. Rendering
(``_prepare_chunk``) is pure pandas and runs in the reader thread; ``_chunk_write`` runs in the
thread that owns the database connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import IntegrityError, connection, models

from common.bulk import bulk_insert, bulk_upsert
from common.bulk_render import PreparedRows, rows_prepare
from inventory.importing.facts import _FACT_KEYS, _Codes, _FactFile


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
