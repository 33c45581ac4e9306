"""``demo_walkthrough``: a morning of triage on the demo data (logic in ``lab.walkthrough``)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lab.walkthrough import walkthrough_run


class Command(BaseCommand):
    help = (
        "On the demo data: acknowledge, count, resolve and dismiss a few anomalies through the "
        "triage and outcomes services, then print precision, MTTA/MTTR and ROI as the "
        "dashboard and the API show them. Run once, after `make demo-data`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--truth",
            type=Path,
            default=settings.BASE_DIR / "var" / "demo" / "truth.csv",
            help="The demo bundle's truth.csv (default: var/demo/truth.csv).",
        )
        parser.add_argument(
            "--username", default="admin", help="Who acts (created as staff if missing)."
        )

    def handle(self, *args, **options) -> None:
        path: Path = options["truth"]
        if not path.is_file():
            raise CommandError(f"{path}: no truth.csv (run `make demo-data` or pass --truth).")
        walkthrough_run(truth=path, username=options["username"], out=self.stdout.write)
