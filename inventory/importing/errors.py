"""The error log of one input file, and ``BundleError``, which carries every file's errors.

An import reports the problems of every file, not only the first: each file gets an
``ErrorLog`` that keeps the first ``ERROR_LIMIT_PER_FILE`` errors (by physical line, then by
column) and counts the rest; the importer raises ``BundleError`` with all the messages once
everything has been read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

ERROR_LIMIT_PER_FILE = 20
# A value quoted in a message is cut to this many characters (a 10 MB cell is not echoed).
SHOWN_VALUE_MAX_CHARS = 80
# Bad lines are counted exactly; their numbers are merged once this many are pending.
_PENDING_LINES_MAX = 1_000_000


def shown(value: object) -> str:
    """``repr(value)`` of a cell for a message, cut to ``SHOWN_VALUE_MAX_CHARS`` characters
    with a trailing "…" (strings only; other values as ``repr``)."""
    if isinstance(value, str) and len(value) > SHOWN_VALUE_MAX_CHARS:
        return repr(value[:SHOWN_VALUE_MAX_CHARS]) + "…"
    return repr(value)


class BundleError(Exception):
    """Input that cannot be imported; ``messages`` lists the problems found (file:line: ...),
    ``bad_rows`` counts the rows with at least one error and ``file_errors`` the problems of
    whole files (missing file or column, unreadable file), shown or not."""

    def __init__(
        self,
        messages: Iterable[str],
        *,
        bad_rows: int | None = None,
        file_errors: int | None = None,
    ) -> None:
        self.messages = list(messages)
        if bad_rows is None and file_errors is None:
            file_errors = len(self.messages)  # each message is a problem of its own
        self.bad_rows = bad_rows or 0
        self.file_errors = file_errors or 0
        super().__init__("\n".join(self.messages))

    @classmethod
    def from_logs(cls, logs: Iterable[ErrorLog]) -> BundleError:
        """The errors of several files, in the order given."""
        logs = [log for log in logs if log]
        return cls(
            [message for log in logs for message in log.messages()],
            bad_rows=sum(log.bad_rows for log in logs),
            file_errors=sum(log.file_errors for log in logs),
        )

    def summary(self) -> str:
        """ "1,278 bad rows", "1 file error", or both."""
        parts = []
        if self.bad_rows:
            parts.append(f"{self.bad_rows:,} bad row{'s' if self.bad_rows != 1 else ''}")
        if self.file_errors or not parts:
            count = self.file_errors
            parts.append(f"{count:,} file error{'s' if count != 1 else ''}")
        return " and ".join(parts)


class ErrorLog:
    """The errors of one file: keeps the first ``limit`` (by line), counts all of them
    (``total``), the distinct lines they are on (``bad_rows``) and the whole-file ones
    (``file_errors``)."""

    def __init__(self, name: str, *, limit: int = ERROR_LIMIT_PER_FILE) -> None:
        self.name = name
        self.limit = limit
        self.total = 0
        self.file_errors = 0
        self._entries: list[tuple[int, int, str]] = []
        self._lines: list[np.ndarray] = []
        self._pending = 0

    def __bool__(self) -> bool:
        return self.total > 0

    @property
    def bad_rows(self) -> int:
        """Distinct lines with at least one error."""
        self._merge_lines()
        return len(self._lines[0]) if self._lines else 0

    def _note_lines(self, lines: np.ndarray) -> None:
        self._lines.append(np.asarray(lines, dtype=np.int64))
        self._pending += len(lines)
        if self._pending > _PENDING_LINES_MAX:
            self._merge_lines()

    def _merge_lines(self) -> None:
        if len(self._lines) > 1 or self._pending:
            self._lines = [np.unique(np.concatenate(self._lines))]
            self._pending = 0

    def add(self, message: str, *, line: int = 0, order: int = 0) -> None:
        """Record one error; ``line`` 0 means the whole file (the header, line 1, is not a
        row either)."""
        self.total += 1
        if line > 1:
            self._note_lines(np.array([line]))
        else:
            self.file_errors += 1
        self._entries.append((line, order, message))
        self._trim()

    def add_rows(
        self, mask: pd.Series, lines: pd.Series, column: str, order: int, describe: Callable
    ) -> None:
        """Record an error for each row of ``mask``; ``describe(index)`` words the error."""
        flags = np.asarray(mask, dtype=bool)
        count = int(flags.sum())
        if not count:
            return
        self.total += count
        positions = np.flatnonzero(flags)
        self._note_lines(np.asarray(lines)[positions])
        for position in positions[: self.limit]:
            line = int(lines.iloc[position])
            message = f"{self.name}:{line}: {column}: {describe(mask.index[position])}"
            self._entries.append((line, order, message))
        self._trim()

    def add_lines(self, lines: np.ndarray, order: int, describe: Callable[[int], str]) -> None:
        """Record an error on each of ``lines`` (any order); ``describe(position)`` words the
        error of ``lines[position]`` without the ``file:line:`` prefix."""
        if not len(lines):
            return
        self.total += len(lines)
        self._note_lines(lines)
        for position in np.argsort(lines, kind="stable")[: self.limit]:
            line = int(lines[position])
            self._entries.append((line, order, f"{self.name}:{line}: {describe(position)}"))
        self._trim()

    def _trim(self) -> None:
        # A streamed file reports its errors chunk by chunk: keep only what can be shown.
        if len(self._entries) > 4 * self.limit:
            self._entries = sorted(self._entries, key=lambda e: (e[0], e[1]))[: self.limit]

    def messages(self) -> list[str]:
        """The first ``limit`` messages ordered by line, then a count of the rest and of the
        bad rows in all."""
        entries = sorted(self._entries, key=lambda e: (e[0], e[1]))[: self.limit]
        out = [message for _line, _order, message in entries]
        if self.total > len(out):
            rows = self.bad_rows
            out.append(
                f"{self.name}: ... and {self.total - len(out):,} more error(s); "
                f"{rows:,} bad row{'s' if rows != 1 else ''} in all"
            )
        return out
