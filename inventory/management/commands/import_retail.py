"""``manage.py import_retail DIR``: load a retail bundle (see ``bundle_import``)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from inventory.importing import BundleError, bundle_import

# Print progress about every tenth of a file; small files print nothing.
PROGRESS_STEPS = 10
PROGRESS_MIN_ROWS = 50_000
# Rates measured over less time than this are noise.
PROGRESS_MIN_SECONDS = 1.0


class ProgressPrinter:
    """A ``progress(label, done, total)`` callback printing about every 10 % of a file
    (``total`` 0: unknown, print every call)."""

    def __init__(self, stdout: OutputWrapper) -> None:
        self.stdout = stdout
        self._label = ""
        self._next = 0
        self._started = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        step = max(total // PROGRESS_STEPS, 1)
        if label != self._label:
            self._label, self._next, self._started = label, step, time.perf_counter()
        if 0 < total < PROGRESS_MIN_ROWS or (done < self._next and done < total):
            return
        self._next = done + step
        elapsed = time.perf_counter() - self._started
        rate = f", {done / elapsed:,.0f} rows/s" if elapsed >= PROGRESS_MIN_SECONDS else ""
        of_total = f"/{total:,}" if total > 0 else ""
        self.stdout.write(f"{label}: {done:,}{of_total} rows{rate}")


class Command(BaseCommand):
    help = (
        "Import a retail bundle: a folder with products.csv, locations.csv, sales.csv and "
        "optionally inventory.csv, receipts.csv, calendar.csv, promotions.csv. Fact files are "
        "streamed in chunks inside one transaction; on any error nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="Folder holding the CSV files.")

    def handle(self, *args, directory: Path, verbosity: int, **options):
        progress = ProgressPrinter(self.stdout) if verbosity >= 1 else None
        try:
            summary = bundle_import(directory=directory.expanduser(), progress=progress)
        except BundleError as exc:
            for message in exc.messages:
                self.stderr.write(message)
            raise CommandError(
                f"{directory}: import failed ({exc.summary()}); nothing written"
            ) from exc
        for line in summary.report():
            self.stdout.write(line)
