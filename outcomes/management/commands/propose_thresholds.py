"""Compute detector threshold proposals from outcomes: ``manage.py propose_thresholds``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from outcomes.services import ProposalError, threshold_proposals_create


class Command(BaseCommand):
    help = (
        "Compute per-detector precision from recorded outcomes and propose the score "
        "threshold that reaches the target precision (apply them in the admin)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--target",
            type=float,
            default=None,
            help="Target precision (default SHELFWATCH_TARGET_PRECISION).",
        )

    def handle(self, *args, target: float | None, **options) -> None:
        try:
            proposals = threshold_proposals_create(target=target)
        except ProposalError as exc:
            raise CommandError(str(exc)) from exc
        for proposal in proposals:
            self.stdout.write(
                f"{proposal.detector} [{proposal.get_status_display()}]: {proposal.note}"
            )
