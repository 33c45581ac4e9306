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
    from inventory.services.importing import bundle_import

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


def _anomalies_clear() -> None:
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
    from anomalies.services.detection import detection_run

    _anomalies_clear()
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
    from anomalies.services.detection import detection_backfill
    from anomalies.services.loading import latest_data_date

    _anomalies_clear()
    latest = latest_data_date()
    if latest is None:
        raise BenchError("No data imported: run the import phase first.")
    start = latest - dt.timedelta(days=days - 1)
    done = [0]

    def report(run) -> None:
        done[0] += 1
        if done[0] % 15 == 0 or done[0] == days:
            progress(f"  backfill {done[0]}/{days} days")

    t0 = time.perf_counter()
    runs = detection_backfill(start=start, end=latest, progress=report)
    seconds = time.perf_counter() - t0
    from anomalies.models import Anomaly

    return {
        "days": len(runs),
        "start": start.isoformat(),
        "end": latest.isoformat(),
        "seconds": round(seconds, 2),
        "seconds_per_day": round(seconds / len(runs), 3),
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


def _workers_start(count: int, broker: str, env: dict[str, str]) -> list:
    import subprocess
    import sys

    procs = []
    for i in range(count):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "WARNING",
                    "--hostname",
                    f"bench{i + 1}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                env={**env, "CELERY_BROKER_URL": broker},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _workers_stop(procs: list) -> list[int]:
    """Stop the workers (warm shutdown); returns each one's peak RSS in MB."""
    import signal

    peaks = []
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            _, _, usage = os.wait4(proc.pid, 0)
            peaks.append(round(usage.ru_maxrss / 1024))
        except ChildProcessError:
            peaks.append(0)
    return peaks


def phase_workers(
    *, counts: tuple[int, ...], chunk_locations: int, broker: str, progress: Progress
) -> dict[str, Any]:
    """Detection for the latest date in this process, then as a chord on 1, 2, ... Celery
    worker processes on ``broker``; each from empty anomaly tables. Returns the wall time of
    each and whether every result equals the in-process one.
    """
    import redis
    from celery import current_app

    from anomalies.models import RunStatus
    from anomalies.services.detection import detection_run, detection_run_create
    from anomalies.tasks import run_detection_task

    try:
        redis.Redis.from_url(broker, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is not reachable at {broker}: {exc}") from exc

    _anomalies_clear()
    progress(f"  in-process run, chunks of {chunk_locations} locations")
    t0 = time.perf_counter()
    local = detection_run(as_of=None, trigger="bench", chunk_locations=chunk_locations)
    results: dict[str, Any] = {
        "chunk_locations": chunk_locations,
        "chunks": local.chunks.count(),
        "in_process_seconds": round(time.perf_counter() - t0, 2),
        "runs": [],
    }
    reference = anomalies_snapshot()
    results["anomalies"] = len(reference)

    app = current_app
    app.conf.update(broker_url=broker, result_backend=broker, task_always_eager=False)
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)
    env = dict(os.environ)
    for n in counts:
        _anomalies_clear()
        procs = _workers_start(n, broker, env)
        try:
            deadline = time.monotonic() + 60
            while len(app.control.ping(timeout=1.0) or []) < n:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    errors = [p.stderr.read() for p in procs if p.poll() is not None]
                    raise BenchError(f"{n} worker(s) did not come up: {errors}")
            progress(f"  {n} worker process(es) up; running the chord")
            run = detection_run_create(as_of=local.as_of, trigger="bench")
            t0 = time.perf_counter()
            run_detection_task.delay(run.pk, chunk_locations=chunk_locations)
            while True:
                run.refresh_from_db()
                if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
                    break
                if time.perf_counter() - t0 > 3600:
                    raise BenchError(f"run {run.pk} did not finish within an hour")
                time.sleep(0.05)
            seconds = time.perf_counter() - t0
        finally:
            peaks = _workers_stop(procs)
        if run.status != RunStatus.SUCCEEDED:
            raise BenchError(f"run {run.pk} on {n} worker(s) failed: {run.error}")
        used = len({chunk.worker for chunk in run.chunks.all()})
        results["runs"].append(
            {
                "workers": n,
                "seconds": round(seconds, 2),
                "identical_to_in_process": anomalies_snapshot() == reference,
                "worker_processes_used": used,
                "worker_peak_rss_mb": peaks,
            }
        )
    return results


def phase_web(
    *, anomalies: int, clients: int, load_seconds: float, requests: int, progress: Progress
) -> dict[str, Any]:
    """Seed ``anomalies`` anomalies, serve the project with gunicorn (2 workers, one per core)
    on loopback, and measure: the API list filtered by ``status=open`` and one location (the
    issue's target) and unfiltered, over HTTP and in-process; the anomaly admin changelist
    (plain, filtered, page 2) with its query count; then ``clients`` concurrent clients for
    ``load_seconds`` on the filtered list, cycling over every seeded location."""
    from inventory.models import Location
    from lab.bench import web
    from lab.bench.anomaly_seed import (
        SEED_LOCATION_PREFIX,
        anomalies_seed,
        anomalies_seed_clear,
    )

    progress(f"  seeding {anomalies:,} anomalies")
    anomalies_seed_clear()
    last = [0.0]

    def seeded(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 5 or done == total:
            last[0] = now
            progress(f"    {done:,}/{total:,}")

    t0 = time.perf_counter()
    anomalies_seed(count=anomalies, progress=seeded)
    seed_seconds = time.perf_counter() - t0
    locations = list(
        Location.objects.filter(code__startswith=SEED_LOCATION_PREFIX)
        .order_by("code")
        .values_list("pk", flat=True)
    )
    middle = locations[len(locations) // 2]
    filtered = f"/api/v1/anomalies/?status=open&location={middle}"
    result: dict[str, Any] = {
        "anomalies": anomalies,
        "seed_seconds": round(seed_seconds, 1),
        "server": "gunicorn, 2 sync workers, 127.0.0.1",
        "api": [],
        "admin": [],
    }

    def latency(label: str, report, *, target: bool) -> dict[str, Any]:
        return {
            "label": label,
            "count": report.count,
            "errors": report.errors,
            "p50_ms": report.p50_ms,
            "p95_ms": report.p95_ms,
            "p99_ms": report.p99_ms,
            "max_ms": report.max_ms,
            "queries": report.queries,
            "target": target,
        }

    with web.bench_superuser() as credentials, web.gunicorn_server(workers=2) as base:
        headers = credentials.api_headers
        progress(f"  server at {base}; API latency ({requests} requests each)")
        for path, label, target in (
            (filtered, "/api/v1/anomalies/?status=open&location=<id> over HTTP", True),
            ("/api/v1/anomalies/", "/api/v1/anomalies/ (unfiltered) over HTTP", False),
        ):
            report = web.latency_measure(base + path, requests=requests, headers=headers)
            result["api"].append(latency(label, report, target=target))
        report = web.inprocess_measure(filtered, headers=headers, requests=requests // 2)
        result["api"].append(
            latency(
                f"/api/v1/anomalies/?status=open&location=<id> in-process "
                f"({report.queries} queries)",
                report,
                target=False,
            )
        )
        progress("  admin changelist")
        pages = (
            ("/admin/anomalies/anomaly/", "changelist"),
            ("/admin/anomalies/anomaly/?status__exact=open", "changelist ?status=open"),
            (f"/admin/anomalies/anomaly/?location={middle}", "changelist ?location=<id>"),
            ("/admin/anomalies/anomaly/?p=2", "changelist page 2"),
        )
        reports = web.admin_pages_measure(
            base_url=base,
            paths=[path for path, _ in pages],
            credentials=credentials,
            requests=max(10, requests // 5),
        )
        for (_, label), page in zip(pages, reports, strict=True):
            entry = latency(label, page.http, target=True)
            entry["queries"] = page.inprocess.queries
            entry["inprocess_p95_ms"] = page.inprocess.p95_ms
            result["admin"].append(entry)
        progress(f"  load test: {clients} clients x {load_seconds:.0f} s")
        urls = [f"{base}/api/v1/anomalies/?status=open&location={pk}" for pk in locations]
        load = web.load_test(urls, clients=clients, duration_s=load_seconds, headers=headers)
        result["load"] = {
            "clients": load.clients,
            "seconds": load.duration_s,
            "requests": load.requests,
            "errors": load.errors,
            "error_messages": load.error_messages,
            "throughput_rps": load.throughput_rps,
            "p50_ms": load.p50_ms,
            "p95_ms": load.p95_ms,
            "p99_ms": load.p99_ms,
        }
    return result
