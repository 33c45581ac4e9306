"""Reading CSV files as strings: whole (small files) or in chunks (fact files), and a reader
thread that prepares the next chunk while the caller stores the current one.

Cells are read as strings (blank = ``""``) and parsed later by ``SheetValidator``. Unreadable
files (not UTF-8, empty, malformed lines, missing columns) are logged in the file's
``ErrorLog``, never raised. Line numbers are physical file lines (header = line 1) as long as no
quoted field spans several lines; blank lines are skipped but counted.
"""

from __future__ import annotations

import csv
import queue
import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from inventory.importing.errors import ErrorLog

_PANDAS_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


T = TypeVar("T")


def _count_lines(path: Path) -> int:
    """Newlines in the file (a progress total; 1 GB/s)."""
    count = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            count += block.count(b"\n")
    return count


def _csv_chunks(
    path: Path, name: str, log: ErrorLog, *, required: Iterable[str], chunk_rows: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(lines consumed, chunk)`` pairs: the cells as strings (blank ``""``), blank
    lines dropped, index = line - 2. Logs an unreadable file, missing columns or a
    malformed line and stops there."""
    header, first_line, first_width = _first_row_widths(path)
    if first_width > header > 0:
        # pandas would only warn and drop the extra fields of the first row.
        message = f"{name}:{first_line}: expected {header} fields, saw {first_width}"
        log.add(message, line=first_line)
        return
    try:
        reader = pd.read_csv(
            path,
            dtype=object,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            index_col=False,
            chunksize=chunk_rows,
        )
        with reader:
            for number, chunk in enumerate(reader):
                chunk.columns = [str(column).strip() for column in chunk.columns]
                absent = [column for column in required if column not in chunk.columns]
                if number == 0 and absent:
                    log.add(f"{name}: missing column(s): {', '.join(absent)}")
                    return
                yield len(chunk), _without_blank_lines(chunk)
    except UnicodeDecodeError as exc:
        log.add(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start:,})")
    except pd.errors.EmptyDataError:
        log.add(f"{name}: file is empty (a header row is required)")
    except pd.errors.ParserError as exc:
        _log_parser_error(name, log, exc)


def _without_blank_lines(chunk: pd.DataFrame) -> pd.DataFrame:
    """``chunk`` without the rows whose cells are all blank (blank lines)."""
    first = chunk.iloc[:, 0].to_numpy()
    candidates = np.flatnonzero(first == "")
    if not len(candidates):
        return chunk
    blank = (chunk.iloc[candidates].to_numpy() == "").all(axis=1)
    return chunk.drop(index=chunk.index[candidates[blank]])


def _log_parser_error(name: str, log: ErrorLog, exc: pd.errors.ParserError) -> None:
    match = _PANDAS_FIELD_COUNT.search(str(exc))
    if match:
        expected, line, saw = match.groups()
        log.add(f"{name}:{line}: expected {expected} fields, saw {saw}", line=int(line))
    else:
        log.add(f"{name}: cannot be parsed as CSV ({exc})")


def read_csv_strings(
    path: Path, name: str, log: ErrorLog, *, required: Iterable[str], **options
) -> pd.DataFrame | None:
    """Read a CSV as strings (blank cells ``""``), dropping blank lines but keeping their
    numbering in the index (index 0 = line 2). Logs unreadable files and missing columns and
    returns None for them. ``options`` go to ``pandas.read_csv``."""
    # Read every column (not usecols) so that a line is blank only when all of it is blank.
    try:
        with warnings.catch_warnings():
            # pandas only warns when the first data row is longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                encoding="utf-8-sig",
                index_col=False,
                **options,
            )
    except pd.errors.ParserWarning:
        expected, line, saw = _first_row_widths(path)
        log.add(f"{name}:{line}: expected {expected} fields, saw {saw}", line=line)
        return None
    except UnicodeDecodeError as exc:
        log.add(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start:,})")
        return None
    except pd.errors.EmptyDataError:
        log.add(f"{name}: file is empty (a header row is required)")
        return None
    except pd.errors.ParserError as exc:
        _log_parser_error(name, log, exc)
        return None
    frame.columns = [str(column).strip() for column in frame.columns]
    absent = [column for column in required if column not in frame.columns]
    if absent:
        log.add(f"{name}: missing column(s): {', '.join(absent)}")
        return None
    blank_line = (frame == "").all(axis=1)
    if blank_line.any():
        frame = frame[~blank_line]
    return frame


def _first_row_widths(path: Path) -> tuple[int, int, int]:
    """(fields in the header, line of the first data row, fields in it); 0 fields when
    there is no such row, and (0, 2, 0) when the file cannot be read as UTF-8 text."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            for row in reader:
                if row:
                    return len(header), reader.line_num, len(row)
    except (UnicodeDecodeError, csv.Error):
        return 0, 2, 0
    return len(header), 2, 0


def _ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """Run ``items`` in a reader thread, at most ``depth`` items ahead of the consumer.
    Exceptions of the reader are raised in the consumer; a consumer that stops early stops
    the reader."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(("error", exc))
        finally:
            items.close()

    reader = threading.Thread(target=read, name="bundle-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        reader.join()
