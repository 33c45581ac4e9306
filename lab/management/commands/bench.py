"""``manage.py bench``: generate a chain-size bundle and measure import, detection, backfill,
API/admin latency and Celery fan-out; print a table and write it to JSON.

Each phase runs in its own ``manage.py bench_phase`` process; its peak resident memory is read
with ``os.wait4``. See docs/PERFORMANCE.md for what is measured and the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lab.bench import phases
from lab.bench.report import report_rows, report_table

ALL_PHASES = ("import", "import_sqlite", "detect", "scale", "backfill", "web", "workers")


class Command(BaseCommand):
    help = (
        "Benchmark ShelfWatch at size S, M or L on the configured (disposable, name containing "
        "'bench') database: import rows/s (PostgreSQL, and SQLite), one detection run and its "
        "scale curve, a 90-day backfill (S), API/admin latency and a 32-client load test with "
        "1M anomalies, and detection on 1 and 2 Celery workers. Prints a table, writes JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", choices=sorted(phases.SIZES), default="S")
        parser.add_argument(
            "--json",
            type=Path,
            help="Where to write the figures (default var/bench/bench-SIZE.json).",
        )
        parser.add_argument("--bundle-root", type=Path, default=Path("var/bench"))
        parser.add_argument(
            "--only",
            default="",
            help=f"Comma-separated phases to run (of {', '.join(ALL_PHASES)}).",
        )
        parser.add_argument("--skip", default="", help="Comma-separated phases to leave out.")
        parser.add_argument("--anomalies", type=int, default=1_000_000)
        parser.add_argument("--clients", type=int, default=32)
        parser.add_argument("--load-seconds", type=float, default=60.0)
        parser.add_argument("--workers", default="1,2", help="Worker counts to compare.")
        parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
        parser.add_argument(
            "--keep-data",
            action="store_true",
            help="Skip the import and measure on the bundle already in the database "
            "(to repeat a phase at M or L without re-importing).",
        )

    def handle(self, *args, **options) -> None:
        size = phases.SIZES[options["size"]]
        selected = self._phases(options)
        try:
            phases.database_check_disposable()
        except phases.BenchError as exc:
            raise CommandError(str(exc)) from exc
        _postgres_database_ensure()
        out = options["json"] or options["bundle_root"] / f"bench-{size.name}.json"
        options["bundle_root"].mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        figures: dict[str, Any] = {"size": size.__dict__, "phases": {}}

        figures["machine"] = self._phase("migrate", options)["result"]["machine"]
        self._say(f"Machine: {_machine_line(figures['machine'])}")
        bundle = self._phase("generate", options, "--size", size.name)
        folder = Path(bundle["result"]["folder"])
        figures["bundle"] = bundle

        needs_data = ("detect", "scale", "backfill", "workers")
        if not options["keep_data"] and (
            "import" in selected or any(p in selected for p in needs_data)
        ):
            figures["phases"]["import"] = self._phase("import", options, "--folder", str(folder))
        if "import_sqlite" in selected:
            figures["phases"]["import_sqlite"] = self._sqlite_import(options, folder)
        if "detect" in selected:
            figures["phases"]["detect"] = self._phase("detect", options)
        if "scale" in selected:
            curve = []
            for series in sorted({min(n, size.series) for n in _scale_points(size)}):
                curve.append(self._phase("detect", options, "--series", str(series)))
            figures["phases"]["scale"] = curve
        if "backfill" in selected:
            if size.name == "S":
                figures["phases"]["backfill"] = self._phase(
                    "backfill", options, "--days", str(phases.BACKFILL_DAYS)
                )
            else:
                self._say("backfill: measured at size S only (make bench SIZE=S)")
        if "workers" in selected:
            chunk = max(1, size.locations // 10)
            figures["phases"]["workers"] = self._phase(
                "workers",
                options,
                "--workers",
                options["workers"],
                "--chunk-locations",
                str(chunk),
                "--broker",
                options["broker"],
            )
        if "web" in selected:
            figures["phases"]["web"] = self._phase(
                "web",
                options,
                "--anomalies",
                str(options["anomalies"]),
                "--clients",
                str(options["clients"]),
                "--load-seconds",
                str(options["load_seconds"]),
            )
        figures["total_seconds"] = round(time.perf_counter() - started, 1)
        figures["table"] = report_rows(figures)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2, default=str))
        self._say("")
        self._say(report_table(figures))
        self._say(f"\nFigures written to {out} ({figures['total_seconds']:.0f} s in all).")

    def _phases(self, options: dict) -> set[str]:
        only = {p.strip() for p in options["only"].split(",") if p.strip()}
        skip = {p.strip() for p in options["skip"].split(",") if p.strip()}
        unknown = (only | skip) - set(ALL_PHASES)
        if unknown:
            raise CommandError(
                f"Unknown phase(s) {sorted(unknown)}; known: {', '.join(ALL_PHASES)}."
            )
        return (only or set(ALL_PHASES)) - skip

    def _say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def _phase(self, phase: str, options: dict, *args: str, env: dict | None = None) -> dict:
        """Run ``bench_phase PHASE`` in a child process; return its figures and peak RSS."""
        self._say(f"== {phase} {' '.join(args)}".rstrip())
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = Path(handle.name)
        command = [
            sys.executable,
            "manage.py",
            "bench_phase",
            phase,
            "--out",
            str(out),
            "--bundle-root",
            str(options["bundle_root"]),
            *args,
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, env=env or dict(os.environ))
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise CommandError(
                f"Benchmark phase {phase} failed (exit {code}); see its output above."
            )
        result = json.loads(out.read_text())
        out.unlink()
        return {
            "result": result,
            "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "process_seconds": round(seconds, 2),
        }

    def _sqlite_import(self, options: dict, folder: Path) -> dict:
        path = (options["bundle_root"] / "bench.sqlite3").resolve()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
        self._phase("migrate", options, env=env)
        result = self._phase("import", options, "--folder", str(folder), env=env)
        path.unlink(missing_ok=True)
        return result


def _scale_points(size: phases.Size) -> list[int]:
    if size.series >= max(phases.SCALE_SERIES):
        return list(phases.SCALE_SERIES)
    return [size.skus, size.series // 2, size.series]


def _machine_line(machine: dict) -> str:
    return (
        f"{machine.get('cpus')} CPUs ({machine.get('cpu_model') or 'unknown model'}), "
        f"{machine.get('memory_gb')} GB RAM, Python {machine.get('python')}, "
        f"{machine.get('database')} {machine.get('postgresql', '')}".rstrip()
    )


def _postgres_database_ensure() -> None:
    """Create the PostgreSQL database the settings name if it does not exist yet."""
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        return
    import psycopg
    from psycopg import sql

    params = {
        "dbname": "postgres",
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
