"""Draw random control counts (for the recall estimate): ``manage.py request_control_counts``."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from outcomes.services import CycleCountError, control_counts_request


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = (
        "Request control counts for a random share of stocked SKU/locations that have no open "
        "finding and no open count (their results feed the recall estimate)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--share",
            type=float,
            default=None,
            help="Share of eligible SKU/locations to draw (default "
            f"SHELFWATCH_CONTROL_COUNT_SHARE = {settings.SHELFWATCH_CONTROL_COUNT_SHARE}).",
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed (reproducible).")
        parser.add_argument(
            "--today", type=_date, default=None, help="Stock date to use (default: today)."
        )

    def handle(self, *args, share: float | None, seed: int | None, today, **options) -> None:
        try:
            counts = control_counts_request(share=share, seed=seed, today=today)
        except CycleCountError as exc:
            raise CommandError(str(exc)) from exc
        if not counts:
            self.stdout.write("No eligible SKU/locations: no control count requested.")
            return
        self.stdout.write(
            f"{len(counts)} control count(s) requested out of {counts[0].population} eligible "
            "SKU/locations."
        )
