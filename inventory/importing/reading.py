"""Reading CSV files as strings: whole (small files) or in chunks (fact files), and a reader
thread that prepares the next chunk while the caller stores the current one.

Cells are read as strings (blank = ``""``) and parsed later by ``SheetValidator``. Unreadable
files (not UTF-8, empty, malformed lines, a column named twice in the header, missing columns)
are logged in the file's ``ErrorLog``, never raised. Line numbers are physical file lines
(header = line 1; blank lines are skipped but counted): pandas numbers records, so for a file
whose quoted fields span several lines ``csv_layout`` maps each record to the line it starts on.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import queue
import re
import threading
import warnings
import zipfile
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import numpy as np
import pandas as pd

from inventory.importing.errors import ErrorLog

_PANDAS_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
# Errors of a damaged compressed file (truncated, not compressed at all, bad CRC).
DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


T = TypeVar("T")


@dataclass(frozen=True)
class CsvLayout:
    """What ``csv_layout`` learnt of a file: the header (names stripped), the first data row
    (its start line and width; line 0 when there is none) and, when some quoted field spans
    several lines, the start line of every record (``record_starts[0]`` = the header's)."""

    header: list[str]
    first_line: int
    first_width: int
    record_starts: np.ndarray | None = None

    def line_of(self, record: int) -> int:
        """The physical line record number ``record`` (header = 0) starts on."""
        if self.record_starts is None or record >= len(self.record_starts):
            return record + 1
        return int(self.record_starts[record])


# How every importer reads a CSV: cells as written (no NA guessing), blank lines kept so that
# record numbers stay line numbers, a UTF-8 BOM allowed, no index column guessed.
CSV_TEXT_OPTIONS: dict[str, object] = {
    "keep_default_na": False,
    "skip_blank_lines": False,
    "encoding": "utf-8-sig",
    "index_col": False,
}


def open_text(path: Path) -> IO[str]:
    """``path`` opened as UTF-8 text for the csv module (a BOM skipped), decompressed by its
    suffix like pandas does (.gz, .bz2, .xz, .zip with one member)."""
    suffix = path.suffix.lower()
    if suffix in _OPENERS:
        return _OPENERS[suffix](path, "rt", encoding="utf-8-sig", newline="")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        members = archive.namelist()
        if len(members) != 1:
            archive.close()
            raise zipfile.BadZipFile(f"expected one file in the archive, found {len(members)}")
        return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _contains_quote(path: Path) -> bool:
    """Whether the (uncompressed) file holds a double quote anywhere (1 GB/s)."""
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            if b'"' in block:
                return True
    return False


def csv_layout(path: Path, *, scan: bool | None = None) -> CsvLayout | None:
    """Header, first data row and (when ``scan``) the start line of every record of ``path``,
    read with the csv module. ``scan`` None: scan when the file holds a quote character (only
    then can a field span lines; plain files only). None when the file is not UTF-8 text or not
    CSV (pandas then reports why). Decompression errors are raised (``DECOMPRESSION_ERRORS``)."""
    if scan is None:
        scan = path.suffix.lower() not in (*_OPENERS, ".zip") and _contains_quote(path)
    try:
        with open_text(path) as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            ends = array("q", [reader.line_num])
            first_line = first_width = 0
            for row in reader:
                if row and not first_line:
                    first_line, first_width = ends[-1] + 1, len(row)
                    if not scan:
                        break
                ends.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error):
        return None
    starts = None
    if scan:
        ends_array = np.frombuffer(ends, dtype=np.int64)
        if len(ends_array) and ends_array[-1] != len(ends_array):
            starts = np.concatenate([[1], ends_array[:-1] + 1])
    return CsvLayout(header, first_line, first_width, starts)


def header_problems(name: str, header: list[str]) -> list[str]:
    """A message for each column named more than once in ``header`` (stripped names)."""
    seen: dict[str, list[int]] = {}
    for position, column in enumerate(header, start=1):
        seen.setdefault(column, []).append(position)
    return [
        f"{name}:1: {column}: named {len(places)} times in the header (columns "
        f"{', '.join(map(str, places[:-1]))} and {places[-1]})"
        for column, places in seen.items()
        if len(places) > 1 and column
    ]


def _count_lines(path: Path) -> int:
    """Newlines in the file (a progress total; 1 GB/s)."""
    count = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            count += block.count(b"\n")
    return count


def _layout_problems(name: str, log: ErrorLog, layout: CsvLayout | None) -> bool:
    """Log a header naming a column twice, or a first data row longer than the header
    (pandas would only warn and drop its extra fields); True when there was one."""
    if layout is None:
        return False
    problems = header_problems(name, layout.header)
    for message in problems:
        log.add(message, line=1)
    if problems:
        return True
    if layout.first_width > len(layout.header) > 0:
        message = f"{name}:{layout.first_line}: expected {len(layout.header)} fields, saw "
        log.add(f"{message}{layout.first_width}", line=layout.first_line)
        return True
    return False


def _csv_chunks(
    path: Path,
    name: str,
    log: ErrorLog,
    *,
    required: Iterable[str],
    chunk_rows: int,
    layout: CsvLayout | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(lines consumed, chunk)`` pairs: the cells as strings (blank ``""``), blank
    lines dropped, index = record number - 1 (``layout.line_of`` maps it to a line). Logs an
    unreadable file, a bad header, missing columns or a malformed line and stops there."""
    if _layout_problems(name, log, layout):
        return
    try:
        reader = pd.read_csv(
            path,
            dtype=object,
            **CSV_TEXT_OPTIONS,
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
        log_parser_error(name, log, exc, layout)


def _without_blank_lines(chunk: pd.DataFrame) -> pd.DataFrame:
    """``chunk`` without the rows whose cells are all blank (blank lines)."""
    first = chunk.iloc[:, 0].to_numpy()
    candidates = np.flatnonzero(first == "")
    if not len(candidates):
        return chunk
    blank = (chunk.iloc[candidates].to_numpy() == "").all(axis=1)
    return chunk.drop(index=chunk.index[candidates[blank]])


def log_parser_error(
    name: str, log: ErrorLog, exc: pd.errors.ParserError, layout: CsvLayout | None
) -> None:
    """Log a pandas parser error: a line with too many fields (pandas counts records, not
    lines), or the file as unreadable."""
    match = _PANDAS_FIELD_COUNT.search(str(exc))
    if match:
        expected, record, saw = (int(group) for group in match.groups())
        line = layout.line_of(record - 1) if layout is not None else record
        log.add(f"{name}:{line}: expected {expected} fields, saw {saw}", line=line)
    else:
        reason = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        if reason.startswith("EOF inside string"):
            # pandas's "row" is not a line of the file: say what is wrong instead.
            reason = "a quoted field is not closed before the end of the file"
        log.add(f"{name}: cannot be parsed as CSV ({reason})")


def read_csv_strings(
    path: Path,
    name: str,
    log: ErrorLog,
    *,
    required: Iterable[str],
    layout: CsvLayout | None = None,
    **options,
) -> pd.DataFrame | None:
    """Read a CSV as strings (blank cells ``""``), dropping blank lines but keeping their
    numbering in the index (index = record number - 1; ``layout.line_of`` maps it to a line).
    Logs unreadable files, a bad header and missing columns and returns None for them.
    ``options`` go to ``pandas.read_csv``."""
    if _layout_problems(name, log, layout):
        return None
    # Read every column (not usecols) so that a line is blank only when all of it is blank.
    try:
        with warnings.catch_warnings():
            # pandas only warns when the first data row is longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                dtype=str,
                **CSV_TEXT_OPTIONS,
                **options,
            )
    except pd.errors.ParserWarning:
        # Without a layout (not readable by the csv module): the first row is too long.
        log.add(f"{name}:2: more fields than the header", line=2)
        return None
    except UnicodeDecodeError as exc:
        log.add(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start:,})")
        return None
    except pd.errors.EmptyDataError:
        log.add(f"{name}: file is empty (a header row is required)")
        return None
    except pd.errors.ParserError as exc:
        log_parser_error(name, log, exc, layout)
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


def decompression_problem(exc: BaseException) -> str:
    """Words a ``DECOMPRESSION_ERRORS`` error of reading a compressed file."""
    if isinstance(exc, EOFError):
        return f"compressed data ends early: the file is truncated ({exc})"
    if isinstance(exc, gzip.BadGzipFile):
        return f"not a valid gzip file ({exc})"
    if isinstance(exc, zipfile.BadZipFile):
        return f"not a valid zip file ({exc})"
    return f"cannot be decompressed or read ({exc})"
