"""Run one benchmark phase in this process and write its figures as JSON (used by ``bench``)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lab.bench import phases, serving

PHASES = ("migrate", "generate", "import", "detect", "backfill", "web", "workers")


class Command(BaseCommand):
    help = (
        "Run one benchmark phase (called by `manage.py bench`, one process per phase so that "
        "peak memory is the phase's own). Empties the (disposable) database it runs on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("phase", choices=PHASES)
        parser.add_argument("--out", type=Path, required=True, help="JSON file to write.")
        parser.add_argument("--size", choices=sorted(phases.SIZES), default="S")
        parser.add_argument("--bundle-root", type=Path, default=Path("var/bench"))
        parser.add_argument("--folder", type=Path, help="Bundle folder (import).")
        parser.add_argument("--series", type=int, help="SKU-locations to detect over (detect).")
        parser.add_argument("--days", type=int, default=phases.BACKFILL_DAYS)
        parser.add_argument("--anomalies", type=int, default=1_000_000)
        parser.add_argument("--clients", type=int, default=32)
        parser.add_argument("--load-seconds", type=float, default=60.0)
        parser.add_argument("--requests", type=int, default=200)
        parser.add_argument("--workers", default="1,2")
        parser.add_argument("--chunk-locations", type=int, default=1)
        parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")

    def handle(self, *args, **options) -> None:
        def progress(message: str) -> None:
            self.stdout.write(message)
            self.stdout.flush()

        phase = options["phase"]
        try:
            if phase != "generate":
                phases.database_check_disposable()
            if phase == "migrate":
                call_command("migrate", interactive=False, verbosity=0)
                result = {"machine": phases.machine()}
            elif phase == "generate":
                result = phases.bundle_ensure(
                    size=phases.SIZES[options["size"]],
                    root=options["bundle_root"],
                    progress=progress,
                )
            elif phase == "import":
                result = phases.phase_import(folder=options["folder"], progress=progress)
            elif phase == "detect":
                result = phases.phase_detect(series=options["series"], progress=progress)
            elif phase == "backfill":
                result = phases.phase_backfill(days=options["days"], progress=progress)
            elif phase == "web":
                result = serving.phase_web(
                    anomalies=options["anomalies"],
                    clients=options["clients"],
                    load_seconds=options["load_seconds"],
                    requests=options["requests"],
                    progress=progress,
                )
            else:
                counts = tuple(int(n) for n in options["workers"].split(",") if n.strip())
                result = serving.phase_workers(
                    counts=counts,
                    chunk_locations=options["chunk_locations"],
                    broker=options["broker"],
                    progress=progress,
                )
        except phases.BenchError as exc:
            raise CommandError(str(exc)) from exc
        options["out"].write_text(json.dumps(result, indent=2, default=str))
