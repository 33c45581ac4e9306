"""Benchmark phases: each one sets up what it needs, measures, and returns plain figures.

``bench`` (the orchestrating command) runs every phase in its own ``manage.py bench_phase``
process, so that a phase's peak memory is its own (``os.wait4`` gives the child's maximum
resident set size) and one phase's caches cannot flatter the next.

A phase returns a JSON-serialisable dict; durations are wall seconds on this machine.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Size:
    """A benchmark size: a simulated chain of ``locations`` stores x ``skus`` SKUs x ``days``."""

    name: str
    locations: int
    skus: int
    days: int

    @property
    def series(self) -> int:
        return self.locations * self.skus


SIZES = {
    "S": Size("S", 10, 300, 400),
    "M": Size("M", 50, 1000, 365),
    "L": Size("L", 100, 1000, 365),
}
SEED = 7
BACKFILL_DAYS = 90
SCALE_SERIES = (1_000, 10_000, 100_000)
"""SKU-location counts of the scale curve (capped by the size; S uses 300 / 1,500 / 3,000)."""

# Tables the bench empties before an import (children first; TRUNCATE ... CASCADE on PG).
_APPS_TO_RESET = ("notifications", "outcomes", "anomalies", "inventory")


class BenchError(RuntimeError):
    """A benchmark that cannot run here (wrong database, missing service); says why."""


def machine() -> dict[str, Any]:
    """The hardware and software every figure was measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gb = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "database": connection.vendor,
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            info["postgresql"] = cursor.fetchone()[0]
    return info


def database_check_disposable() -> None:
    """Refuse to benchmark a database whose name does not say it is disposable.

    The bench empties every ShelfWatch table. Raises ``BenchError`` unless the database name
    (file name on SQLite) contains ``bench``.
    """
    name = str(settings.DATABASES["default"]["NAME"])
    if "bench" not in Path(name).name:
        raise BenchError(
            f"The bench empties the database it runs on; {name!r} does not look disposable. "
            "Point DATABASE_URL at a database whose name contains 'bench' "
            "(make bench uses postgres://postgres@127.0.0.1:5432/shelfwatch_bench)."
        )


def tables_reset() -> None:
    """Empty every ShelfWatch table (master data, facts, anomalies, outcomes)."""
    from django.apps import apps

    database_check_disposable()
    tables = [
        model._meta.db_table
        for label in _APPS_TO_RESET
        for model in apps.get_app_config(label).get_models()
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                cursor.execute(f'DELETE FROM "{table}"')


def bundle_ensure(*, size: Size, root: Path, progress: Progress) -> dict[str, Any]:
    """Generate the bundle of ``size`` under ``root`` unless it is already there.

    Returns its folder, row counts per file and the generation time (0 when reused).
    """
    from lab.simulator import generate_bundle

    folder = root / f"{size.name}-{size.locations}x{size.skus}x{size.days}-seed{SEED}"
    done = folder / ".complete"
    seconds = 0.0
    if not done.exists():
        progress(f"Generating bundle {size.name} into {folder} ...")
        t0 = time.perf_counter()
        generate_bundle(
            out_dir=folder,
            seed=SEED,
            n_locations=size.locations,
            n_skus=size.skus,
            n_days=size.days,
            progress=lambda message: progress(f"  {message}"),
        )
        seconds = time.perf_counter() - t0
        done.write_text("ok\n")
    rows = {}
    for name in ("sales.csv", "inventory.csv", "receipts.csv", "promotions.csv", "calendar.csv"):
        path = folder / name
        if path.exists():
            with path.open("rb") as handle:
                rows[name] = (
                    sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")) - 1
                )
    return {"folder": str(folder), "rows": rows, "seconds": round(seconds, 2)}


def phase_import(*, folder: Path, progress: Progress) -> dict[str, Any]:
    """Empty the database and import the bundle in ``folder``; rows/s over all data rows."""
    from inventory.importing import bundle_import

    tables_reset()
    last = [0.0]

    def report(label: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 5 or done == total:
            last[0] = now
            progress(f"  {label}: {done:,}/{total:,} rows")

    t0 = time.perf_counter()
    summary = bundle_import(directory=folder, progress=report)
    seconds = time.perf_counter() - t0
    rows = sum(entry.rows for entry in summary.files)
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "files": {
            entry.name: {"rows": entry.rows, "seconds": round(entry.seconds, 2)}
            for entry in summary.files
        },
    }


def anomalies_clear() -> None:
    """Empty the anomaly and run tables (and what references them)."""
    from anomalies.models import Anomaly, DetectionRun

    if connection.vendor == "postgresql":
        tables = [Anomaly._meta.db_table, DetectionRun._meta.db_table]
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        Anomaly.objects.all().delete()
        DetectionRun.objects.all().delete()


def _locations_for(series: int) -> list[int]:
    """The first locations (by id) holding about ``series`` SKU-locations."""
    from anomalies.services.loading import latest_data_date
    from inventory.models import DailySales, Location

    latest = latest_data_date()
    ids = list(Location.objects.order_by("id").values_list("id", flat=True))
    if latest is None or not ids:
        raise BenchError("No data imported: run the import phase first.")
    per_location = (
        DailySales.objects.filter(location_id=ids[0], date__gte=latest - dt.timedelta(days=29))
        .values("product_id")
        .distinct()
        .count()
    ) or 1
    n = max(1, min(len(ids), round(series / per_location)))
    return ids[:n]


def phase_detect(*, series: int | None, progress: Progress) -> dict[str, Any]:
    """One as-of detection run (all enabled detectors, latest date) over ``series``
    SKU-locations (default: all), in this process, on fresh anomaly tables."""
    from anomalies.services.runs import detection_run

    anomalies_clear()
    location_ids = None if series is None else _locations_for(series)
    progress(
        "  detection as of the latest date over "
        + ("all locations" if location_ids is None else f"{len(location_ids)} location(s)")
    )
    t0 = time.perf_counter()
    run = detection_run(as_of=None, trigger="bench", location_ids=location_ids)
    seconds = time.perf_counter() - t0
    chunks = list(run.chunks.order_by("index"))
    return {
        "as_of": run.as_of.isoformat(),
        "series": sum(c.series for c in chunks),
        "locations": sum(len(c.location_ids) for c in chunks),
        "chunks": len(chunks),
        "seconds": round(seconds, 2),
        "chunk_seconds": [c.duration_seconds for c in chunks],
        "detector_seconds": {
            name: entry.get("seconds") for name, entry in run.counts.items() if "seconds" in entry
        },
        "findings": sum(entry.get("findings", 0) for entry in run.counts.values()),
        "anomalies": sum(entry.get("new", 0) for entry in run.counts.values()),
    }


def phase_backfill(*, days: int, progress: Progress) -> dict[str, Any]:
    """A walk-forward backfill of the last ``days`` days, in this process, on fresh anomaly
    tables (the ``detect_anomalies --last-days`` path)."""
    from anomalies.services.loading import latest_data_date
    from anomalies.services.runs import detection_backfill

    anomalies_clear()
    latest = latest_data_date()
    if latest is None:
        raise BenchError("No data imported: run the import phase first.")
    start = latest - dt.timedelta(days=days - 1)
    done = [0]

    def report(run) -> None:
        done[0] += 1
        if done[0] % 15 == 0 or done[0] == days:
            progress(f"  backfill {done[0]}/{days} days")

    t0, cpu0 = time.perf_counter(), time.process_time()
    runs = detection_backfill(start=start, end=latest, progress=report)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - cpu0
    from anomalies.models import Anomaly

    return {
        "days": len(runs),
        "start": start.isoformat(),
        "end": latest.isoformat(),
        "seconds": round(seconds, 2),
        "seconds_per_day": round(seconds / len(runs), 3),
        # This process's CPU (user + system, all its threads; PostgreSQL's is its own): steadier
        # than wall time when other work shares the machine.
        "cpu_seconds": round(cpu_seconds, 2),
        "anomalies": Anomaly.objects.count(),
    }


SNAPSHOT_FIELDS = (
    "anomaly_type",
    "product_id",
    "location_id",
    "start_date",
    "end_date",
    "severity",
    "score",
    "expected_value",
    "actual_value",
    "value_at_risk",
    "explanation",
    "status",
    "parent__anomaly_type",
    "parent__product_id",
    "parent__location_id",
    "parent__start_date",
)


def anomalies_snapshot() -> list[tuple]:
    """Every anomaly as a tuple of its content (ids excluded; the parent by its natural key),
    sorted: two runs found the same thing exactly when their snapshots are equal."""
    from anomalies.models import Anomaly

    rows = Anomaly.objects.values_list(*SNAPSHOT_FIELDS)
    return sorted((tuple(row) for row in rows), key=repr)
