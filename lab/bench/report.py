"""Turn the bench's figures into table rows (for the JSON) and a printed table.

Targets are issue 5's, for a 2-core machine; a row's verdict is ``ok`` or ``MISS`` against its
target, or blank where the target does not apply at this size.
"""

from __future__ import annotations

from typing import Any

IMPORT_PG_ROWS_PER_S = 250_000
IMPORT_SQLITE_ROWS_PER_S = 100_000
DETECT_SECONDS = 20.0
DETECT_PEAK_MB = 2048
DETECT_TARGET_SERIES = 100_000
BACKFILL_SECONDS = 20.0
API_P95_MS = 50.0
ADMIN_MS = 300.0
SEED_METHOD_BACKFILL = "seed method: 90 daily runs over 3,000 SKU-locations in ~20 s"


def _row(area: str, metric: str, value: str, target: str = "", ok: bool | None = None) -> dict:
    verdict = "" if ok is None else ("ok" if ok else "MISS")
    return {"area": area, "metric": metric, "value": value, "target": target, "verdict": verdict}


def report_rows(figures: dict[str, Any]) -> list[dict[str, str]]:
    """Rows ``{area, metric, value, target, verdict}`` for every phase that ran."""
    p = figures["phases"]
    rows: list[dict[str, str]] = []
    bundle = figures.get("bundle", {}).get("result", {})
    if bundle:
        total = sum(bundle.get("rows", {}).values())
        rows.append(_row("bundle", "rows in the bundle's files", f"{total:,}"))
    for key, label, target in (
        ("import", "PostgreSQL", IMPORT_PG_ROWS_PER_S),
        ("import_sqlite", "SQLite", IMPORT_SQLITE_ROWS_PER_S),
    ):
        if key in p:
            r = p[key]["result"]
            peak = p[key]["peak_rss_mb"]
            rows.append(
                _row(
                    f"import ({label})",
                    f"{r['rows']:,} rows in {r['seconds']:.1f} s; peak {peak:,} MB",
                    f"{r['rows_per_second']:,} rows/s",
                    f">= {target:,} rows/s",
                    r["rows_per_second"] >= target,
                )
            )
    if "detect" in p:
        r = p["detect"]["result"]
        peak = p["detect"]["peak_rss_mb"]
        applies = r["series"] >= DETECT_TARGET_SERIES
        rows.append(
            _row(
                "detection run",
                f"{r['series']:,} SKU-locations, {r['chunks']} chunk(s), "
                f"{r['findings']:,} findings; peak {peak:,} MB",
                f"{r['seconds']:.2f} s",
                f"<= {DETECT_SECONDS:.0f} s, <= {DETECT_PEAK_MB:,} MB at 100k",
                (r["seconds"] <= DETECT_SECONDS and peak <= DETECT_PEAK_MB) if applies else None,
            )
        )
    for point in p.get("scale", []):
        r = point["result"]
        per_k = r["seconds"] / max(r["series"], 1) * 1000
        rows.append(
            _row(
                "scale curve",
                f"{r['series']:,} SKU-locations ({r['locations']} locations); "
                f"peak {point['peak_rss_mb']:,} MB",
                f"{r['seconds']:.2f} s ({per_k:.3f} s per 1k)",
                "linear",
            )
        )
    if "backfill" in p:
        r = p["backfill"]["result"]
        rows.append(
            _row(
                "backfill (S)",
                f"{r['days']} days walk-forward, {r['anomalies']:,} anomalies; "
                f"peak {p['backfill']['peak_rss_mb']:,} MB",
                f"{r['seconds']:.1f} s ({r['seconds_per_day']:.3f} s/day)"
                + (f"; CPU {r['cpu_seconds']:.1f} s" if "cpu_seconds" in r else ""),
                f"<= {BACKFILL_SECONDS:.0f} s ({SEED_METHOD_BACKFILL})",
                r["seconds"] <= BACKFILL_SECONDS,
            )
        )
    if "workers" in p:
        r = p["workers"]["result"]
        rows.append(
            _row(
                "Celery fan-out",
                f"in-process, {r['chunks']} chunks of {r['chunk_locations']} location(s)",
                f"{r['in_process_seconds']:.2f} s",
            )
        )
        for run in r["runs"]:
            rows.append(
                _row(
                    "Celery fan-out",
                    f"{run['workers']} worker process(es) on Redis "
                    f"({run['worker_processes_used']} used); identical result: "
                    f"{'yes' if run['identical_to_in_process'] else 'NO'}",
                    f"{run['seconds']:.2f} s",
                    "identical, faster with 2",
                    run["identical_to_in_process"],
                )
            )
    if "web" in p:
        rows.extend(_web_rows(p["web"]["result"]))
    return rows


def _web_rows(r: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    n = r.get("anomalies", 0)
    for item in r.get("api", []):
        rows.append(
            _row(
                "API",
                f"GET {item['label']} ({n:,} anomalies, {item['count']} requests)",
                f"p50 {item['p50_ms']:.1f} / p95 {item['p95_ms']:.1f} ms",
                f"p95 <= {API_P95_MS:.0f} ms" if item.get("target") else "",
                item["p95_ms"] <= API_P95_MS if item.get("target") else None,
            )
        )
    for item in r.get("admin", []):
        rows.append(
            _row(
                "admin",
                f"{item['label']} ({item['queries']} queries)",
                f"p50 {item['p50_ms']:.0f} / p95 {item['p95_ms']:.0f} ms",
                f"<= {ADMIN_MS:.0f} ms, fixed queries",
                item["p95_ms"] <= ADMIN_MS,
            )
        )
    load = r.get("load")
    if load:
        rows.append(
            _row(
                "load test",
                f"{load['clients']} clients x {load['seconds']:.0f} s on the list endpoint",
                f"{load['requests']:,} requests, {load['errors']} errors, "
                f"{load['throughput_rps']:.0f} req/s, p95 {load['p95_ms']:.0f} ms",
                "no errors",
                load["errors"] == 0,
            )
        )
    return rows


def report_table(figures: dict[str, Any]) -> str:
    """The rows as an aligned text table with a header naming the size and machine."""
    rows = figures["table"]
    size = figures["size"]
    m = figures.get("machine", {})
    head = (
        f"ShelfWatch bench, size {size['name']} ({size['locations']} locations x "
        f"{size['skus']} SKUs x {size['days']} days), {m.get('cpus')} CPUs, "
        f"{m.get('memory_gb')} GB RAM, {m.get('database')} {m.get('postgresql', '')}".rstrip()
    )
    columns = ("area", "metric", "value", "target", "verdict")
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    lines = [head, ""]
    lines.append("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    lines.append("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in columns).rstrip())
    return "\n".join(lines)
