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


class BundleError(Exception):
    """Input that cannot be imported; ``messages`` lists every problem found (file:line: ...)."""

    def __init__(self, messages: Iterable[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


class ErrorLog:
    """The errors of one file: keeps the first ``limit`` (by line) and counts all."""

    def __init__(self, name: str, *, limit: int = ERROR_LIMIT_PER_FILE) -> None:
        self.name = name
        self.limit = limit
        self.total = 0
        self._entries: list[tuple[int, int, str]] = []

    def __bool__(self) -> bool:
        return self.total > 0

    def add(self, message: str, *, line: int = 0, order: int = 0) -> None:
        """Record one error; ``line`` 0 means the whole file."""
        self.total += 1
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
        for position in np.flatnonzero(flags)[: self.limit]:
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
        for position in np.argsort(lines, kind="stable")[: self.limit]:
            line = int(lines[position])
            self._entries.append((line, order, f"{self.name}:{line}: {describe(position)}"))
        self._trim()

    def _trim(self) -> None:
        # A streamed file reports its errors chunk by chunk: keep only what can be shown.
        if len(self._entries) > 4 * self.limit:
            self._entries = sorted(self._entries, key=lambda e: (e[0], e[1]))[: self.limit]

    def messages(self) -> list[str]:
        """The first ``limit`` messages ordered by line, then a count of the rest."""
        entries = sorted(self._entries, key=lambda e: (e[0], e[1]))[: self.limit]
        out = [message for _line, _order, message in entries]
        if self.total > len(out):
            out.append(f"{self.name}: ... and {self.total - len(out):,} more error(s)")
        return out
