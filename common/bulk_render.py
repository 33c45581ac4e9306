"""Rendering a pandas frame for a bulk write (``rows_prepare``): COPY data for PostgreSQL,
parameter columns for SQLite. Pure: no database access, safe in any thread.

Values are encoded once per distinct value of a column, not once per row (fact columns
repeat a few thousand values over millions of rows), then gathered into rows with numpy. COPY
uses PostgreSQL's binary format when every column type has an encoder here (the server then
parses nothing: 5-8 % of its time in a bulk load), else the text format. A frame can be
prepared in another thread than the one that writes it (``common.bulk``), so that an importer
parses and renders the next chunk while the database stores this one.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from psycopg.types.numeric import DecimalBinaryDumper

# PostgreSQL: rows per COPY block (bounds the rendered data, ~40-60 bytes a fact row).
POSTGRES_COPY_BATCH_ROWS = 250_000
# Floats at most this large that hold a whole number are written without ".0", so that a
# float column can fill an integer field.
_EXACT_FLOAT_INT = 2**53


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


def rows_prepare(
    frame: pd.DataFrame,
    *,
    vendor: str,
    types: Sequence[str] | None = None,
    timestamps: Sequence[str] = (),
) -> PreparedRows:
    """Render ``frame`` for ``vendor`` ("postgresql" or "sqlite") without touching the database
    (safe in any thread).

    ``frame`` has one column per field, named by attribute name (``product_id``, ``date``,
    ``units_sold``). Accepted dtypes: integers (``int64`` or nullable ``Int64``), floats for
    decimals and integers (NaN is NULL; round decimals to the field's places first; whole
    numbers are written without a fraction), ``bool``, strings, and dates as ``datetime64``
    (the time of day is dropped) or ``YYYY-MM-DD`` strings. With the columns' database
    ``types`` (``common.bulk.column_types``) PostgreSQL gets COPY's binary format when every
    type has a binary encoder here (integers, numeric, date, boolean, text): the server then
    parses nothing. Columns named in ``timestamps`` are naive ``datetime64`` in UTC whose time
    of day is kept (to the second): ``YYYY-MM-DD HH:MM:SS+00:00`` for PostgreSQL, the naive
    ``YYYY-MM-DD HH:MM:SS`` Django stores on SQLite. Raises ``ValueError`` for a fraction in
    an integer column and ``NotImplementedError`` for another vendor.
    """
    if timestamps:
        frame = frame.assign(
            **{name: _timestamp_texts(frame[name], vendor=vendor) for name in timestamps}
        )
        if types is not None:  # rendered as text: no binary encoder applies
            types = [
                "text" if name in timestamps else db_type
                for name, db_type in zip(frame.columns, types, strict=True)
            ]
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


def _timestamp_texts(series: pd.Series, *, vendor: str) -> pd.Series:
    """Naive UTC ``datetime64`` values as timestamp text for ``vendor`` (``None`` for NaT)."""
    values = series.to_numpy().astype("datetime64[s]")
    text = np.char.replace(np.datetime_as_string(values, unit="s"), "T", " ").astype(object)
    if vendor == "postgresql":
        text = text + "+00:00"
    text[np.isnat(values)] = None
    return pd.Series(text, index=series.index, dtype=object)


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
    """A float as text: a whole number up to 2**53 without ``.0``, else its ``repr``."""
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
    """``value`` as an int; raises ``ValueError`` for a float with a fraction."""
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} in an integer column")
    return int(value)


def _binary_integers(fmt: str) -> BinaryEncoder:
    """An encoder of integers as the ``struct`` format ``fmt`` (``q``, ``i``, ``h``)."""
    size = struct.calcsize(fmt)
    return lambda values: [struct.pack(f">i{fmt}", size, _whole(v)) for v in values.tolist()]


def _binary_dates(values: np.ndarray) -> list[bytes]:
    """Dates (``datetime64``) as days since 2000-01-01, PostgreSQL's binary date."""
    days = values.astype("datetime64[D]").astype(np.int64) - _POSTGRES_EPOCH_DAYS
    return [struct.pack(">ii", 4, day) for day in days.tolist()]


def _binary_numerics(values: np.ndarray) -> list[bytes]:
    """Floats, ints or Decimals as PostgreSQL's binary numeric (psycopg's encoder)."""
    dumper = DecimalBinaryDumper(Decimal)
    out = []
    for value in values.tolist():
        text = _float_text(value) if isinstance(value, float) else str(value)
        data = bytes(dumper.dump(Decimal(text)))
        out.append(struct.pack(">i", len(data)) + data)
    return out


def _binary_booleans(values: np.ndarray) -> list[bytes]:
    """Booleans as one byte each."""
    return [struct.pack(">i?", 1, bool(v)) for v in values.tolist()]


def _binary_texts(values: np.ndarray) -> list[bytes]:
    """Values as UTF-8 text (``str`` of each)."""
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
