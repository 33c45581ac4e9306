"""Score the detectors against a simulated bundle's ground truth (walk-forward, in memory)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from lab.evaluation import (
    METHODS,
    BundleError,
    EvaluationError,
    EvaluationReport,
    detection_evaluate,
)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _setting(value: str) -> tuple[str, str, object]:
    """``detector.param=value`` (value parsed as JSON) or ``detector.enabled=false``."""
    try:
        target, raw = value.split("=", 1)
        detector, param = target.split(".", 1)
        parsed = json.loads(raw)
    except ValueError as exc:
        raise CommandError(f"--set {value!r}: expected detector.param=value (JSON value)") from exc
    return detector, param, parsed


def _fmt(value: float, pattern: str) -> str:
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    return "—" if missing else pattern % value


class Command(BaseCommand):
    help = (
        "Run a walk-forward detection backfill over a window of a simulated BUNDLE (in memory; "
        "the database is not touched) and score it against TRUTH: per anomaly type and overall "
        "event recall, precision (repeat findings of one episode count once), F1, median and "
        "p90 detection delay, value-weighted recall, false alarms per 1,000 SKU-location-days "
        "and new findings per location per day."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("bundle", type=Path, help="Bundle folder (generate_demo_bundle).")
        parser.add_argument("truth", type=Path, help="truth.csv written with the bundle.")
        parser.add_argument("--from", dest="start", type=_date, help="First day (default: end-89).")
        parser.add_argument("--to", dest="end", type=_date, help="Last day (default: last sales).")
        parser.add_argument(
            "--method", choices=METHODS, default="shelfwatch", help="baseline = the seed method."
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="DETECTOR.PARAM=VALUE",
            help="Override a detector parameter (JSON value), or DETECTOR.enabled=false.",
        )
        parser.add_argument("--json", type=Path, help="Also write the results to this JSON file.")

    def handle(self, *args, **options) -> None:
        overrides: dict[str, dict] = {}
        for item in options["set"]:
            detector, param, value = _setting(item)
            entry = overrides.setdefault(detector, {"params": {}})
            if param == "enabled":
                entry["enabled"] = bool(value)
            else:
                entry["params"][param] = value
        verbose = options["verbosity"] >= 1
        try:
            report = detection_evaluate(
                bundle=options["bundle"],
                truth_path=options["truth"],
                start=options["start"],
                end=options["end"],
                method=options["method"],
                overrides=overrides,
                progress=self.stdout.write if verbose else None,
            )
        except BundleError as exc:
            raise CommandError("Invalid bundle:\n  " + "\n  ".join(exc.messages)) from exc
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        self._print(report)
        if options["json"]:
            options["json"].write_text(json.dumps(report_json(report), indent=2) + "\n")
            self.stdout.write(f"Results written to {options['json']}")

    def _print(self, report: EvaluationReport) -> None:
        days = (report.end - report.start).days + 1
        self.stdout.write(
            f"\nMethod {report.method}: {report.start} .. {report.end} ({days} days), "
            f"{report.n_locations} locations, {report.n_series:,} SKU-locations"
        )
        header = (
            f"{'type':<22} {'events':>6} {'found':>5} {'recall':>6} {'v-rec':>6} "
            f"{'epis.':>6} {'prec.':>6} {'F1':>5} {'delay':>5} {'p90':>4} "
            f"{'FA/1k':>6} {'new/loc/d':>9}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for kind, row in report.table.iterrows():
            self.stdout.write(
                f"{kind:<22} {row.events:>6.0f} {row.found:>5.0f} "
                f"{_fmt(row.recall, '%.3f'):>6} {_fmt(row.value_recall, '%.3f'):>6} "
                f"{row.episodes:>6.0f} {_fmt(row.precision, '%.3f'):>6} "
                f"{_fmt(row.f1, '%.3f'):>5} {_fmt(row.delay_median, '%.1f'):>5} "
                f"{_fmt(row.delay_p90, '%.0f'):>4} {_fmt(row.false_alarms_per_1k, '%.3f'):>6} "
                f"{_fmt(row.findings_per_location_day, '%.2f'):>9}"
            )
        x = report.extras
        self.stdout.write(
            f"ghost_stock delay, items selling >= 5/day: {_fmt(x['fast_delay_median'], '%.1f')} "
            f"days ({x['fast_found']:.0f}/{x['fast_events']:.0f} found); slower items: "
            f"{_fmt(x['slow_delay_median'], '%.1f')} days "
            f"({x['slow_found']:.0f}/{x['slow_events']:.0f})"
        )
        self.stdout.write(
            f"POS outages: {x['outages']}, unmatched SKU findings per outage: max "
            f"{x['outage_sku_findings_max']}, mean {x['outage_sku_findings_mean']:.1f}; "
            f"calendar closures: {x['closure_days']} location-days, "
            f"{x['closure_findings']} findings"
        )
        self.stdout.write(
            f"Detection: {x['detect_seconds']:.1f} s ({x['seconds_per_day']:.2f} s per day); "
            f"bundle read in {x['load_seconds']:.1f} s"
        )


def report_json(report: EvaluationReport) -> dict:
    """The report as JSON-ready data (NaN → null)."""
    table = report.table.astype(object).where(report.table.notna(), None)
    return {
        "method": report.method,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "n_series": report.n_series,
        "n_locations": report.n_locations,
        "table": {kind: row.to_dict() for kind, row in table.iterrows()},
        "extras": {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in report.extras.items()
        },
        "settings": report.settings,
    }
