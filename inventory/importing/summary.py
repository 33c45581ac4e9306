"""What an import returns (``ImportSummary``, one ``FileSummary`` per file and table) and the
``Progress`` callback importers call while they write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Progress = Callable[[str, int, int], None]
"""``progress(label, done_rows, total_rows)``: called while a file is written."""


@dataclass(frozen=True)
class FileSummary:
    """What one input file (or one target table of a file) produced."""

    name: str
    model: str
    rows: int
    written: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ImportSummary:
    """Result of an import: per-file row counts and timings.

    ``rows`` counts input rows, ``written`` counts database rows inserted or changed (a
    re-import of unchanged data writes 0). ``lines_read`` is the number of data lines read,
    ``excluded`` maps a reason to the number of lines skipped for it, ``notes`` are extra
    facts worth printing.
    """

    files: list[FileSummary] = field(default_factory=list)
    seconds: float = 0.0
    lines_read: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def file(self, name: str) -> FileSummary:
        """Return the entry of file ``name``; raise ``KeyError`` when there is none."""
        for entry in self.files:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def for_model(self, model: str) -> FileSummary:
        """Return the entry that wrote ``model`` (a class name); raise ``KeyError`` if none."""
        for entry in self.files:
            if entry.model == model:
                return entry
        raise KeyError(model)

    def report(self) -> list[str]:
        """Human-readable lines for a command's output."""
        lines = [
            f"{f.name}: {f.rows:,} rows -> {f.model}, {f.written:,} inserted or changed, "
            f"{f.seconds:.2f} s ({f.rows_per_second:,.0f} rows/s)"
            for f in self.files
        ]
        lines.extend(self.notes)
        excluded = sum(self.excluded.values())
        if self.excluded:
            lines.append(f"excluded: {excluded:,} lines")
            lines.extend(f"  {reason}: {count:,}" for reason, count in self.excluded.items())
        rate = self.lines_read / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"total: {self.lines_read:,} lines read in {self.seconds:.2f} s ({rate:,.0f} lines/s)"
        )
        return lines
