"""Benchmark phases that measure serving: detection fanned out to real Celery workers, and the
API and admin behind gunicorn under load (run by ``bench`` like the phases in ``phases``)."""

from __future__ import annotations

import os
import time
from typing import Any

from lab.bench.phases import BenchError, Progress, anomalies_clear, anomalies_snapshot


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
    from anomalies.services.runs import detection_run, detection_run_create
    from anomalies.tasks import run_detection_task

    try:
        redis.Redis.from_url(broker, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is not reachable at {broker}: {exc}") from exc

    anomalies_clear()
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
        anomalies_clear()
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
    from lab.bench import server, web
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

    with web.bench_superuser() as credentials, server.gunicorn_server(workers=2) as base:
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
