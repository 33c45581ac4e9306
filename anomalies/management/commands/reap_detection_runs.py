"""Mark failed the detection runs and chunks whose worker stopped sending heartbeats."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from anomalies.services.leases import detection_runs_reap


class Command(BaseCommand):
    help = (
        "Mark failed, with the reason, every detection run or chunk whose lease ran out: its "
        "worker sent no heartbeat for SHELFWATCH_RUN_LEASE_SECONDS (died or lost), or a run "
        "waited SHELFWATCH_RUN_QUEUE_SECONDS for a worker. Beat does this every minute; run "
        "it by hand without beat. Rerun a reaped date to complete it."
    )

    def handle(self, *args, **options) -> None:
        report = detection_runs_reap()
        self.stdout.write(report.summary())
