"""Delete anomalies closed longer ago than the retention period, and expired sessions."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from anomalies.services.retention import RetentionError, anomalies_prune


class Command(BaseCommand):
    help = (
        "Delete anomalies resolved or dismissed more than SHELFWATCH_RETENTION_DAYS days ago "
        "(with their activity log, outcome and notification log) and expired sessions. "
        "--dry-run prints the counts and deletes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=int, help="Retention in days (default: SHELFWATCH_RETENTION_DAYS)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )

    def handle(self, *args, **options) -> None:
        try:
            report = anomalies_prune(older_than_days=options["days"], dry_run=options["dry_run"])
        except RetentionError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Would delete" if report.dry_run else "Deleted"
        self.stdout.write(f"Closed before {report.cutoff:%Y-%m-%d %H:%M %Z}:")
        for label, count in report.deleted.items() or [("anomalies.Anomaly", 0)]:
            self.stdout.write(f"  {verb} {count:,} {label}")
        sessions = "?" if report.sessions is None else f"{report.sessions:,}"
        self.stdout.write(f"  {verb} {sessions} expired sessions")
