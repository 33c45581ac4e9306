"""Vectorised checks of CSV cells: ``SheetValidator`` parses the string columns of a file (or a
chunk of one) into typed columns, logging every bad value with its line and column.

Each check runs once per distinct value of a column and is then spread to the rows: columns of
codes, dates and quantities repeat a few thousand values over millions of rows. The bounds
below are those of the model fields the values are stored in.

Rules every column follows: a cell holding a NUL character is refused (PostgreSQL cannot store
it, SQLite would); integers are written as digits with an optional sign (``1e3``, ``1.0`` and
``1,000`` are refused, not read as numbers); dates lie within the plausible range of
``plausible_dates``; values quoted in messages are cut to ``SHOWN_VALUE_MAX_CHARS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import timezone

from inventory.importing.errors import ErrorLog, shown

# Bounds of a Django IntegerField (32-bit on every backend we support).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
# DecimalField(max_digits=14, decimal_places=4): at most 10 digits before the point.
PRICE_MAX = 10**10
PRICE_DECIMALS = 4


# Dates a DateField holds (Python's date range), as days since 1970-01-01.
_FIRST_DAY = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days
_LAST_DAY = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days
_NO_DAY = np.iinfo(np.int64).min
_EPOCH = dt.date(1970, 1, 1)
# An integer cell: ASCII digits with an optional sign, nothing else.
INTEGER_PATTERN = r"[+-]?[0-9]+"
NUL = "\x00"


def plausible_dates() -> tuple[dt.date, dt.date]:
    """The first and last date an import accepts: ``SHELFWATCH_DATE_MIN`` and today plus
    ``SHELFWATCH_DATE_MAX_AHEAD_DAYS`` (in the current time zone)."""
    ahead = dt.timedelta(days=settings.SHELFWATCH_DATE_MAX_AHEAD_DAYS)
    return settings.SHELFWATCH_DATE_MIN, timezone.localdate() + ahead


def implausible_date_message(first: dt.date, last: dt.date) -> str:
    """The end of the message of a date outside ``first``..``last``."""
    return (
        f"is outside the plausible dates {first.isoformat()}..{last.isoformat()} "
        "(SHELFWATCH_DATE_MIN, SHELFWATCH_DATE_MAX_AHEAD_DAYS)"
    )


def case_hint(value: object, known: pd.Index) -> str:
    """ " (did you mean 'S1'? codes are case-sensitive)" when ``value`` matches one of
    ``known`` but for case, else ""."""
    if not isinstance(value, str) or not len(known):
        return ""
    folded = pd.Index(known.astype(str).str.casefold())
    at = folded.get_indexer([value.casefold()]) if folded.is_unique else None
    if at is None:
        matches = np.flatnonzero(folded == value.casefold())
        position = int(matches[0]) if len(matches) else -1
    else:
        position = int(at[0])
    if position < 0:
        return ""
    return f" (did you mean {shown(known[position])}? codes are case-sensitive)"


def strip_strings(values: pd.Series) -> pd.Series:
    """``values.str.strip()``, computed once per distinct value: columns of codes, dates and
    quantities repeat a few thousand values over millions of rows (5x faster)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    stripped = pd.Index(uniques).str.strip().to_numpy()
    return pd.Series(stripped[codes], index=values.index, dtype=values.dtype)


def _flags(values: pd.Series | np.ndarray) -> np.ndarray:
    """A boolean mask as a numpy array (missing = False)."""
    if isinstance(values, pd.Series):
        return values.fillna(False).to_numpy(dtype=bool)
    return np.asarray(values, dtype=bool)


class SheetValidator:
    """Parses the string columns of one CSV (or one chunk of it), logging bad values.

    ``frame`` holds the raw cells as strings (blanks as ``""``) indexed by row position;
    ``first_line`` is the physical line of index 0. Each check runs once per distinct value of
    a column and is then spread to the rows. Each method returns the parsed column with
    NaN/NaT where the value was bad (already logged).
    """

    def __init__(
        self,
        log: ErrorLog,
        frame: pd.DataFrame,
        *,
        first_line: int = 2,
        record_starts: np.ndarray | None = None,
    ) -> None:
        """``record_starts`` (see ``CsvLayout``): the start line of each record, when some
        quoted field spans lines; then the index is the record number - 1."""
        self.log = log
        self.frame = frame
        if record_starts is not None:
            lines = record_starts[np.asarray(frame.index, dtype=np.int64) + 1]
        else:
            lines = frame.index + first_line
        self.lines = pd.Series(lines, index=frame.index)
        self._order = {name: i for i, name in enumerate(frame.columns)}
        self._distinct: dict[str, tuple[np.ndarray, pd.Series]] = {}
        # Per column, the rows already refused for a NUL character (no second message).
        self._refused: dict[str, np.ndarray] = {}

    def refuse_nul(self) -> None:
        """Log every cell holding a NUL character (in any column); those cells then count as
        bad values in the other checks, without another message."""
        for column in self.frame.columns:
            self.distinct(column)

    def distinct(self, column: str) -> tuple[np.ndarray, pd.Series]:
        """``(codes, values)``: the stripped distinct cells of ``column`` and, per row, the
        position of its cell in them."""
        if column not in self._distinct:
            codes, uniques = pd.factorize(self.frame[column])
            if (codes < 0).any():
                # A missing cell (NaN): its own distinct value (the sentinel is cheaper than
                # use_na_sentinel=False, which scans the column for NaN once more).
                codes = np.where(codes < 0, len(uniques), codes)
                uniques = np.append(np.asarray(uniques, dtype=object), np.nan)
            values = pd.Series(pd.Index(uniques).str.strip(), copy=False)
            nul = _flags(values.str.contains(NUL, regex=False))
            if nul.any():
                rows = nul[codes]
                self.log.add_rows(
                    pd.Series(rows, index=self.frame.index),
                    self.lines,
                    column,
                    self._order.get(column, 0),
                    lambda _index: "contains a NUL character (\\x00)",
                )
                self._refused[column] = rows
                values = values.where(~nul)
            self._distinct[column] = (codes, values)
        return self._distinct[column]

    def report(self, mask: pd.Series, column: str, describe: Callable) -> None:
        """Log an error in ``column`` for each row of ``mask``; ``describe(index)`` words it.
        Rows whose cell was refused for a NUL character are left out."""
        if column in self._refused:
            mask = pd.Series(_flags(mask) & ~self._refused[column], index=self.frame.index)
        self.log.add_rows(mask, self.lines, column, self._order.get(column, 0), describe)

    def _report_distinct(
        self, column: str, bad: pd.Series | np.ndarray, template: str | Callable[[str], str]
    ) -> None:
        """Log an error for each row whose distinct value is flagged in ``bad``. ``template``
        words it: a string with ``{value}`` (the raw cell, quoted) or a function of the cell."""
        bad = _flags(bad)
        if not bad.any():
            return
        codes, values = self.distinct(column)
        rows = pd.Series(bad[codes], index=self.frame.index, copy=False)
        by_index = pd.Series(codes, index=self.frame.index, copy=False)

        def describe(index) -> str:
            value = values.iloc[by_index[index]]
            if callable(template):
                return template(value)
            return template.format(value=shown(value))

        self.report(rows, column, describe)

    def _spread(self, column: str, values: pd.Series | np.ndarray) -> pd.Series:
        codes, _ = self.distinct(column)
        return pd.Series(np.asarray(values)[codes], index=self.frame.index, copy=False)

    def text(self, column: str, *, max_length: int, required: bool = True) -> pd.Series:
        """A stripped string column; blank is an error (and NaN) when ``required``."""
        _codes, raw = self.distinct(column)
        if required:
            empty = raw == ""
            self._report_distinct(column, empty, lambda _value: "value is required")
            raw = raw.where(~_flags(empty))
        self._report_distinct(
            column, raw.str.len() > max_length, lambda _v: f"longer than {max_length} characters"
        )
        return self._spread(column, raw.to_numpy(dtype=object)).astype(self.frame[column].dtype)

    def _integers(
        self, column: str, *, minimum: int | None, blank: int | None, hint: str
    ) -> np.ndarray:
        """The distinct values of an integer column as float64 (NaN where bad)."""
        _codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        digits = _flags(raw.str.fullmatch(INTEGER_PATTERN))
        values = pd.to_numeric(raw.where(digits), errors="coerce").astype("float64")
        values = values.to_numpy(copy=True)
        if blank is None:
            self._report_distinct(column, empty, lambda _value: "value is required")
        else:
            values[empty] = blank
        bad = ~digits & ~empty
        self._report_distinct(column, bad, "{value} is not an integer")
        values[bad] = np.nan
        if minimum is not None:
            low = values < minimum
            self._report_distinct(column, low, f"{{value}} must not be negative{hint}")
            values[low] = np.nan
        wide = (values < INT_MIN) | (values > INT_MAX)
        self._report_distinct(column, wide, "{value} is out of range")
        values[wide] = np.nan
        return values

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
        values = self._integers(column, minimum=minimum, blank=blank, hint=hint)
        return self._spread(column, values)

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
        _codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        values = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy(copy=True)
        if required:
            self._report_distinct(column, empty, lambda _value: "value is required")
        bad = ~np.isfinite(values) & ~empty
        self._report_distinct(column, bad, "{value} is not a decimal number")
        values[bad] = np.nan
        with np.errstate(invalid="ignore"):
            negative = values < (minimum if minimum is not None else -np.inf)
            too_big = np.abs(values) >= maximum
        self._report_distinct(column, negative, "{value} must not be negative")
        self._report_distinct(column, too_big, "{value} is too large")
        values[negative | too_big] = np.nan
        return self._spread(column, np.round(values, decimals))

    def _days(self, column: str) -> np.ndarray:
        """The distinct values of a ``YYYY-MM-DD`` column as days since 1970-01-01
        (``_NO_DAY`` where blank or bad)."""
        _codes, raw = self.distinct(column)
        parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        days = parsed.to_numpy().astype("datetime64[D]").astype(np.int64)
        days[parsed.isna().to_numpy() | (days < _FIRST_DAY) | (days > _LAST_DAY)] = _NO_DAY
        self._report_distinct(column, days == _NO_DAY, "{value} is not a date (YYYY-MM-DD)")
        first, last = plausible_dates()
        implausible = (days != _NO_DAY) & (
            (days < (first - _EPOCH).days) | (days > (last - _EPOCH).days)
        )
        message = implausible_date_message(first, last)
        self._report_distinct(column, implausible, f"{{value}} {message}")
        days[implausible] = _NO_DAY
        return days

    def date(self, column: str) -> pd.Series:
        """A ``YYYY-MM-DD`` column as datetime64 (NaT where blank or bad)."""
        days = self._days(column)
        dates = np.where(days == _NO_DAY, np.datetime64("NaT", "D"), days.astype("datetime64[D]"))
        return self._spread(column, dates.astype("datetime64[s]"))

    def days(self, column: str) -> np.ndarray:
        """A ``YYYY-MM-DD`` column as int64 days since 1970-01-01 per row (``_NO_DAY`` where
        blank or bad)."""
        codes, _ = self.distinct(column)
        return self._days(column)[codes]

    def positions(
        self, column: str, known: pd.Index, *, kind: str, required: bool = True
    ) -> np.ndarray:
        """Per row, the position in ``known`` of the row's code (int64); -1 where blank or
        unknown. Blank is an error when ``required``; unknown codes always are."""
        codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        if required:
            self._report_distinct(column, empty, lambda _value: "value is required")
        found = known.get_indexer(raw) if len(known) else np.full(len(raw), -1)
        self._report_distinct(
            column,
            (found < 0) & ~empty,
            lambda value: f"unknown {kind} {shown(value)}{case_hint(value, known)}",
        )
        return found[codes]

    def reference(
        self, column: str, known: pd.Index, *, kind: str, required: bool = True
    ) -> pd.Series:
        """A code that must be in ``known``; blank is allowed (kept as ``""``) unless
        ``required``. Blank required and unknown codes are NaN."""
        _codes, raw = self.distinct(column)
        empty = _flags(raw == "")
        if required:
            self._report_distinct(column, empty, lambda _value: "value is required")
        unknown = ~empty & ~_flags(raw.isin(known))
        self._report_distinct(
            column,
            unknown,
            lambda value: f"unknown {kind} {shown(value)}{case_hint(value, known)}",
        )
        kept = raw.where(~unknown & ~(empty & required)).to_numpy(dtype=object)
        return self._spread(column, kept).astype(self.frame[column].dtype)

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
