"""Write a seeded synthetic demo / benchmark bundle (CSVs plus ``truth.csv``) to a folder."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lab.scenarios import SCENARIOS
from lab.simulator import generate_bundle


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Simulate stores, SKUs and days with realistic confounders and injected anomalies, and "
        "write an import bundle (products, locations, sales, inventory, receipts, calendar, "
        "promotions) plus truth.csv to OUT_DIR. Deterministic for a given seed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out_dir", type=Path, help="Folder to write (created if missing).")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--locations", type=int, default=5)
        parser.add_argument("--skus", type=int, default=80)
        parser.add_argument("--days", type=int, default=180)
        parser.add_argument(
            "--scenario",
            choices=list(SCENARIOS),
            default="classic",
            help="World to simulate (lab.scenarios; default classic).",
        )
        parser.add_argument(
            "--end-date", type=_iso_date, default=None, help="Last day, YYYY-MM-DD (default fixed)."
        )

    def handle(self, *args, **options) -> None:
        verbose = options["verbosity"] >= 1
        try:
            summary = generate_bundle(
                out_dir=options["out_dir"],
                seed=options["seed"],
                n_locations=options["locations"],
                n_skus=options["skus"],
                n_days=options["days"],
                end_date=options["end_date"],
                scenario=SCENARIOS[options["scenario"]],
                progress=(lambda message: self.stdout.write(f"  {message}")) if verbose else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Bundle written to {summary.out_dir}: {summary.n_locations} locations x "
            f"{summary.n_skus} SKUs x {summary.n_days} days "
            f"({summary.start_date} .. {summary.end_date}), seed {summary.seed}, "
            f"scenario {summary.scenario}"
        )
        for name, count in summary.rows.items():
            self.stdout.write(f"  {name:<16} {count:>10,} rows")
        self.stdout.write("Injected events (truth.csv):")
        for kind, count in summary.events.items():
            self.stdout.write(f"  {kind:<22} {count:>5}")
        self.stdout.write(self.style.SUCCESS(f"Done in {summary.seconds:.1f} s."))
