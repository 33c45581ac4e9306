"""Score the detectors against a simulated bundle's ground truth (walk-forward, in memory)."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from lab.evaluation import (
    METHODS,
    BundleError,
    EvaluationError,
    EvaluationReport,
    ScenarioResult,
    detection_compare,
    detection_evaluate,
    set_evaluate,
)
from lab.scenarios import SETS, SIZES


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
        raise CommandError(
            f"--set {value!r}: expected detector.param=value (JSON value) or a scenario set "
            f"({', '.join(SETS)})"
        ) from exc
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
        parser.add_argument(
            "bundle", type=Path, nargs="?", help="Bundle folder (generate_demo_bundle)."
        )
        parser.add_argument(
            "truth", type=Path, nargs="?", help="truth.csv (default: the bundle's own)."
        )
        parser.add_argument("--from", dest="start", type=_date, help="First day (default: end-89).")
        parser.add_argument("--to", dest="end", type=_date, help="Last day (default: last sales).")
        parser.add_argument(
            "--method",
            choices=METHODS,
            default="shelfwatch",
            help="baseline = the seed method; oracle = lab.oracle (needs the bundle's oracle.npz).",
        )
        parser.add_argument(
            "--compare",
            action="store_true",
            help="Also run the oracle and report the project's recall as a share of the "
            "oracle's recall at the same false-alarm count, per type.",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="DETECTOR.PARAM=VALUE | dev | held_out",
            help="Override a detector parameter (JSON value), or DETECTOR.enabled=false; or the "
            "name of a scenario set of lab.scenarios (dev, held_out): generate and evaluate "
            "every scenario x seed of it (project, oracle, seed method), one table per "
            "scenario. Never tune on held_out.",
        )
        parser.add_argument(
            "--size",
            choices=list(SIZES),
            default="issue",
            help="Bundle size for --set: issue = 10 x 300 x 400, small = 3 x 60 x 200.",
        )
        parser.add_argument(
            "--workdir", type=Path, help="Where --set writes its bundles (default: a temp dir)."
        )
        parser.add_argument(
            "--no-baseline", action="store_true", help="--set: skip the (slow) seed method."
        )
        parser.add_argument("--json", type=Path, help="Also write the results to this JSON file.")

    def handle(self, *args, **options) -> None:
        overrides: dict[str, dict] = {}
        sets = [item for item in options["set"] if item in SETS]
        for item in options["set"]:
            if item in SETS:
                continue
            detector, param, value = _setting(item)
            entry = overrides.setdefault(detector, {"params": {}})
            if param == "enabled":
                entry["enabled"] = bool(value)
            else:
                entry["params"][param] = value
        verbose = options["verbosity"] >= 1
        progress = self.stdout.write if verbose else None
        if sets:
            self._sets(sets, overrides, options, progress)
            return
        if options["bundle"] is None:
            raise CommandError("Give a BUNDLE folder, or --set dev|held_out.")
        truth = options["truth"] or options["bundle"] / "truth.csv"
        comparison = None
        try:
            if options["compare"]:
                comparison = detection_compare(
                    bundle=options["bundle"],
                    truth_path=truth,
                    start=options["start"],
                    end=options["end"],
                    overrides=overrides,
                    progress=progress,
                )
                report = comparison.project
            else:
                report = detection_evaluate(
                    bundle=options["bundle"],
                    truth_path=truth,
                    start=options["start"],
                    end=options["end"],
                    method=options["method"],
                    overrides=overrides,
                    progress=progress,
                )
        except BundleError as exc:
            raise CommandError("Invalid bundle:\n  " + "\n  ".join(exc.messages)) from exc
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        self._print(report)
        if report.bands is not None:
            self._bands(report.bands)
        if comparison is not None:
            self._print(comparison.oracle)
            self._bands(comparison.oracle.bands)
            self._comparison(comparison.table)
        if options["json"]:
            data = report_json(report)
            if comparison is not None:
                data["oracle"] = report_json(comparison.oracle)
                data["comparison"] = _records(comparison.table)
            options["json"].write_text(json.dumps(data, indent=2) + "\n")
            self.stdout.write(f"Results written to {options['json']}")

    def _sets(self, sets: list[str], overrides: dict, options: dict, progress) -> None:
        with tempfile.TemporaryDirectory(prefix="shelfwatch-eval-") as tmp:
            workdir = options["workdir"] or Path(tmp)
            out: dict[str, list] = {}
            for name in sets:
                try:
                    results = set_evaluate(
                        set_name=name,
                        size=options["size"],
                        workdir=workdir,
                        baseline=not options["no_baseline"],
                        overrides=overrides,
                        progress=progress,
                    )
                except EvaluationError as exc:
                    raise CommandError(str(exc)) from exc
                for result in results:
                    self._scenario(name, result)
                out[name] = [scenario_json(r) for r in results]
        if options["json"]:
            options["json"].write_text(json.dumps(out, indent=2) + "\n")
            self.stdout.write(f"Results written to {options['json']}")

    def _scenario(self, set_name: str, result: ScenarioResult) -> None:
        size = result.size
        self.stdout.write(
            f"\n== {set_name}: scenario {result.scenario}, seeds "
            f"{', '.join(map(str, result.seeds))}, {size['n_locations']} x {size['n_skus']} x "
            f"{size['n_days']} days, last 90 days scored ({result.seconds:.0f} s)"
        )
        header = (
            f"{'type':<22} {'method':<10} {'events':>6} {'found':>5} {'recall':>6} "
            f"{'epis.':>5} {'prec.':>6} {'F1':>5} {'delay':>5} {'FA/1k':>6}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        kinds = sorted(set().union(*(t.index for t in result.tables.values())) - {"overall"})
        for kind in [*kinds, "overall"]:
            for method, table in result.tables.items():
                if kind not in table.index:
                    continue
                row = table.loc[kind]
                self.stdout.write(
                    f"{kind:<22} {method:<10} {row.events:>6.0f} {row.found:>5.0f} "
                    f"{_fmt(row.recall, '%.3f'):>6} {row.episodes:>5.0f} "
                    f"{_fmt(row.precision, '%.3f'):>6} {_fmt(row.f1, '%.3f'):>5} "
                    f"{_fmt(row.delay_median, '%.1f'):>5} "
                    f"{_fmt(row.false_alarms_per_1k, '%.3f'):>6}"
                )
        self._comparison(result.comparison)
        if "oracle" in result.bands:
            self.stdout.write("Oracle by velocity band:")
            self._bands(result.bands["oracle"])

    def _comparison(self, table: pd.DataFrame) -> None:
        self.stdout.write(
            "Project recall as a share of the oracle's at the same false-alarm count:"
        )
        header = (
            f"{'type':<22} {'events':>6} {'proj.rec':>8} {'proj.FA':>7} {'oracle a':>9} "
            f"{'orc.rec':>7} {'orc.FA':>6} {'ratio':>6}"
        )
        self.stdout.write(header)
        for row in table.itertuples(index=False):
            self.stdout.write(
                f"{row.type:<22} {row.events:>6} {_fmt(row.project_recall, '%.3f'):>8} "
                f"{row.project_false_alarms:>7} {row.oracle_alpha:>9.1e} "
                f"{_fmt(row.oracle_recall, '%.3f'):>7} {row.oracle_false_alarms:>6} "
                f"{_fmt(row.recall_ratio, '%.3f'):>6}"
            )

    def _bands(self, bands: pd.DataFrame) -> None:
        header = (
            f"{'type':<22} {'band':<7} {'events':>6} {'found':>5} {'recall':>6} "
            f"{'epis.':>5} {'prec.':>6} {'FA/1k':>6} {'delay':>5}"
        )
        self.stdout.write(header)
        for row in bands.itertuples(index=False):
            self.stdout.write(
                f"{row.type:<22} {row.band:<7} {row.events:>6} {row.found:>5} "
                f"{_fmt(row.recall, '%.3f'):>6} {row.episodes:>5} "
                f"{_fmt(row.precision, '%.3f'):>6} {_fmt(row.false_alarms_per_1k, '%.3f'):>6} "
                f"{_fmt(row.delay_median, '%.1f'):>5}"
            )

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


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def scenario_json(result: ScenarioResult) -> dict:
    """A scenario's pooled results as JSON-ready data (NaN → null)."""
    return {
        "scenario": result.scenario,
        "seeds": list(result.seeds),
        "size": result.size,
        "tables": {
            method: {
                kind: dict(zip(t.columns, values, strict=True))
                for kind, values in zip(t.index, _rows(t), strict=True)
            }
            for method, t in result.tables.items()
        },
        "comparison": _records(result.comparison),
        "bands": {method: _records(b) for method, b in result.bands.items()},
    }


def _rows(frame: pd.DataFrame) -> list[list]:
    return frame.astype(object).where(frame.notna(), None).to_numpy().tolist()


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
        "bands": _records(report.bands) if report.bands is not None else None,
    }
