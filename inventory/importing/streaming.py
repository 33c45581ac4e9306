"""Streaming the fact files: read, check, prepare and store them chunk by chunk.

Memory does not grow with the file: ``CHUNK_ROWS`` rows are in flight at a time (and
``CHUNKS_AHEAD`` more in the reader thread). As long as no error has been found in the bundle,
each chunk is written at once; after the first error nothing more is written but the rest is
still read and checked, so the report lists the problems of every file.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np

from common.bulk import column_types
from inventory.importing.errors import ErrorLog
from inventory.importing.facts import (
    _check_repeats,
    _Codes,
    _fact_rows,
    _FactFile,
    _KeySet,
    _parsed_frame,
    _sum_repeats,
)
from inventory.importing.plan import (
    _Chunk,
    _chunk_write,
    _existing_days,
    _prepare_chunk,
    _WritePlan,
    _written_columns,
)
from inventory.importing.reading import _ahead, _count_lines, _csv_chunks, csv_layout
from inventory.importing.summary import FileSummary, Progress
from inventory.importing.validation import SheetValidator

# Data rows per chunk of a fact file. A chunk in flight takes ~100 bytes a row (strings,
# parsed columns, COPY text); two or three are in flight at once.
CHUNK_ROWS = 1_000_000
# Chunks the reader thread may prepare ahead of the writer.
CHUNKS_AHEAD = 1


def _fact_chunks(
    spec: _FactFile,
    path: Path,
    log: ErrorLog,
    codes: _Codes,
    *,
    plan: _WritePlan | None,
    types: tuple[str, ...] | None = None,
    earlier: Iterable[ErrorLog] = (),
    keep_frames: bool = False,
) -> Iterator[_Chunk]:
    """Read, check and prepare for writing each chunk of a fact file: with a ``plan``, as
    long as neither this file nor the ``earlier`` files have an error. ``types`` are the
    database types of the written columns. Pure pandas: runs in the reader thread."""
    chunk_rows = CHUNK_ROWS
    earlier = list(earlier)

    def writable() -> bool:
        return plan is not None and not log and not any(earlier)

    wanted = set(spec.required) | set(spec.optional)
    keys = _KeySet()
    held: list[dict[str, np.ndarray]] = []
    layout = csv_layout(path)
    record_starts = None if layout is None else layout.record_starts
    for lines, raw in _csv_chunks(
        path, spec.name, log, required=spec.required, chunk_rows=chunk_rows, layout=layout
    ):
        sheet = SheetValidator(
            log, raw[[c for c in raw.columns if c in wanted]], record_starts=record_starts
        )
        sheet.refuse_nul()
        rows = _fact_rows(spec, sheet, codes)
        if spec.sum_repeats:
            held.append(rows)
            yield _Chunk(lines=lines, rows=len(raw))
            continue
        _check_repeats(spec, rows, codes, keys, log)
        chunk = _Chunk(lines=lines, rows=len(raw))
        if keep_frames and not log:
            chunk = _Chunk(lines, len(raw), frame=_parsed_frame(spec, rows, codes))
        elif writable():
            chunk = _Chunk(lines, len(raw), *_prepare_chunk(spec, rows, codes, plan, types))
        yield chunk
    if not held or log:
        return
    summed = _sum_repeats(spec, held, codes, log)
    del held
    if log or not (keep_frames or writable()):
        return
    total = len(summed["line"])
    for start in range(0, total, chunk_rows):
        part = {name: values[start : start + chunk_rows] for name, values in summed.items()}
        if keep_frames:
            yield _Chunk(0, 0, frame=_parsed_frame(spec, part, codes))
        else:
            yield _Chunk(0, 0, *_prepare_chunk(spec, part, codes, plan, types))


def _facts_import(
    files: list[tuple[_FactFile, Path]],
    codes: _Codes,
    *,
    write: bool,
    progress: Progress | None,
) -> tuple[list[FileSummary], dict[str, ErrorLog]]:
    """Stream the fact ``files`` in turn: check every chunk and, when ``write``, store the
    chunks as long as no error has been found. The reader thread goes on to the next file
    while the last chunks of a file are stored. Returns a summary per file without errors
    and the error log of each file with errors."""
    logs = {spec.name: ErrorLog(spec.name) for spec, _path in files}
    # Looked up before anything is written: the days each location held before the import.
    plans = {
        spec.name: _existing_days(spec.model, codes.location_ids) if write else None
        for spec, _path in files
    }
    types = {spec.name: column_types(spec.model, _written_columns(spec)) for spec, _ in files}
    totals = {spec.name: max(_count_lines(path) - 1, 0) for spec, path in files}

    def chunks() -> Iterator[tuple[_FactFile, _Chunk | None]]:
        for position, (spec, path) in enumerate(files):
            earlier = [logs[other.name] for other, _path in files[:position]]
            for chunk in _fact_chunks(
                spec,
                path,
                logs[spec.name],
                codes,
                plan=plans[spec.name],
                types=types[spec.name],
                earlier=earlier,
            ):
                yield spec, chunk
            yield spec, None  # end of the file

    summaries = []
    started = time.perf_counter()
    done = rows = written = 0
    with closing(_ahead(chunks(), CHUNKS_AHEAD)) as prepared:
        for spec, chunk in prepared:
            if chunk is None:
                seconds = time.perf_counter() - started
                summaries.append(
                    FileSummary(spec.name, spec.model.__name__, rows, written, seconds)
                )
                started = time.perf_counter()
                done = rows = written = 0
                continue
            written += _chunk_write(spec, chunk)
            done += chunk.lines
            rows += chunk.rows
            if progress:
                total = totals[spec.name]
                progress(spec.name, min(done, total), total)
    errors = {name: log for name, log in logs.items() if log}
    return [entry for entry in summaries if entry.name not in errors], errors
