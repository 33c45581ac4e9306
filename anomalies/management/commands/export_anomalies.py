"""Export anomalies to a CSV file."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from anomalies.models import Anomaly, AnomalyStatus, AnomalyType
from anomalies.services.export import anomalies_export_file


class Command(BaseCommand):
    help = "Write anomalies to FILE.csv (one row per anomaly), optionally filtered."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="Output CSV path.")
        parser.add_argument("--status", choices=AnomalyStatus.values, action="append")
        parser.add_argument(
            "--type", dest="anomaly_type", choices=AnomalyType.values, action="append"
        )
        parser.add_argument("--location", help="Location code.")

    def handle(self, *args, **options) -> None:
        queryset = Anomaly.objects.all()
        if options["status"]:
            queryset = queryset.filter(status__in=options["status"])
        if options["anomaly_type"]:
            queryset = queryset.filter(anomaly_type__in=options["anomaly_type"])
        if options["location"]:
            queryset = queryset.filter(location__code=options["location"])
        path: Path = options["file"]
        if not path.parent.exists():
            raise CommandError(f"Directory {path.parent} does not exist.")
        count = anomalies_export_file(path=path, queryset=queryset)
        self.stdout.write(self.style.SUCCESS(f"Wrote {count:,} anomalies to {path}"))
