"""``manage.py bench_dashboard``: the admin dashboard's latency at 50 and 1,000,000 anomalies,
cold (summary computed) and cached; prints the figures (see ``lab.bench.dashboard``)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lab.bench.dashboard import dashboard_measure
from lab.bench.phases import BenchError


def _ints(text: str) -> list[int]:
    try:
        return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise CommandError(f"not a comma-separated list of integers: {text!r}") from exc


class Command(BaseCommand):
    help = (
        "Measure /admin/dashboard/ in-process at each --sizes count of seeded anomalies: cold "
        "(cache off, the summary computed per request) and cached. Runs on a disposable "
        "database only (name containing 'bench'); removes the seeded anomalies at the end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sizes", default="50,1000000", help="Anomaly counts to measure.")
        parser.add_argument("--days", default="90", help="Dashboard windows (?days=) to fetch.")
        parser.add_argument("--cold-requests", type=int, default=3)
        parser.add_argument("--cached-requests", type=int, default=20)
        parser.add_argument("--json", type=Path, help="Also write the figures here.")

    def handle(self, *args, **options) -> None:
        try:
            figures = dashboard_measure(
                sizes=_ints(options["sizes"]),
                days=_ints(options["days"]),
                cold_requests=options["cold_requests"],
                cached_requests=options["cached_requests"],
                say=self.stdout.write,
            )
        except BenchError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            payload = [f.as_dict() for f in figures]
            options["json"].write_text(json.dumps(payload, indent=1, default=str) + "\n")
            self.stdout.write(f"Figures written to {options['json']}")
