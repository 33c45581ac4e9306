"""Run anomaly detection for one as-of date, or walk forward over a range of dates."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from anomalies.detectors import REGISTRY
from anomalies.models import DetectionRun
from anomalies.services.loading import latest_data_date
from anomalies.services.runs import DetectionError, detection_backfill, detection_run


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _summary(run: DetectionRun) -> str:
    found = ", ".join(
        f"{name} {c.get('findings', 0)} ({c.get('new', 0)} new)"
        for name, c in run.counts.items()
        if not c.get("skipped")
    )
    return f"{run.as_of}: {found or 'no detectors ran'} [{run.duration_seconds:.2f}s]"


class Command(BaseCommand):
    help = (
        "Detect anomalies as of a date (default: the latest date with sales data), or "
        "backfill a date range walk-forward (each day sees only data up to that day)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", type=_date, help="As-of date YYYY-MM-DD.")
        parser.add_argument(
            "--backfill", nargs=2, type=_date, metavar=("START", "END"), help="Run every day."
        )
        parser.add_argument(
            "--last-days",
            type=int,
            metavar="N",
            help="Backfill the N days ending on the latest date with sales data.",
        )
        parser.add_argument(
            "--detectors",
            help=f"Comma-separated subset of: {', '.join(REGISTRY)} (default: all enabled).",
        )

    def handle(self, *args, **options) -> None:
        detectors = options["detectors"].split(",") if options["detectors"] else None
        if sum(bool(options[k]) for k in ("as_of", "backfill", "last_days")) > 1:
            raise CommandError("Use only one of --as-of, --backfill and --last-days.")
        if options["last_days"] is not None:
            if options["last_days"] < 1:
                raise CommandError("--last-days must be at least 1.")
            latest = latest_data_date()
            if latest is None:
                raise CommandError("No sales data has been imported yet; import a bundle first.")
            options["backfill"] = (latest - dt.timedelta(days=options["last_days"] - 1), latest)
        t0 = time.perf_counter()
        try:
            if options["backfill"]:
                start, end = options["backfill"]
                total = (end - start).days + 1
                done = 0

                def progress(run: DetectionRun) -> None:
                    nonlocal done
                    done += 1
                    self.stdout.write(f"[{done}/{total}] {_summary(run)}")

                runs = detection_backfill(
                    start=start, end=end, detectors=detectors, progress=progress
                )
            else:
                runs = [
                    detection_run(as_of=options["as_of"], detectors=detectors, trigger="command")
                ]
                self.stdout.write(_summary(runs[0]))
        except DetectionError as exc:
            raise CommandError(str(exc)) from exc
        for note in sorted({note for run in runs for note in run.notes}):
            self.stdout.write(f"  note: {note}")
        totals: dict[str, list[int]] = {}
        for run in runs:
            for name, c in run.counts.items():
                acc = totals.setdefault(name, [0, 0])
                acc[0] += c.get("findings", 0)
                acc[1] += c.get("new", 0)
        elapsed = time.perf_counter() - t0
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(runs)} run(s) in {elapsed:.1f}s; findings (new anomalies): "
                + ", ".join(f"{name} {f} ({n})" for name, (f, n) in totals.items())
            )
        )
