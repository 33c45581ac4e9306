"""``online_retail_report``: what detection found on the imported Online Retail data (after
``make online-retail``): price findings at a recurring price point and findings per day."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from anomalies.models import Anomaly, AnomalyType
from lab.real_data import findings_per_day, price_points, recurring_price_findings

DEFAULT_FILE = (
    settings.BASE_DIR.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
)


class Command(BaseCommand):
    help = (
        "Report on the stored anomalies of the Online Retail data: the share of price findings "
        "at a price the same SKU sold at on >= 5 other days, and findings per day by type."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="online_retail.csv.gz")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        out = self.stdout.write
        raw = pd.read_csv(
            path,
            usecols=["StockCode", "Quantity", "InvoiceDate", "UnitPrice"],
            dtype={"StockCode": str},
        )
        lines = pd.DataFrame(
            {
                "sku": raw["StockCode"].str.strip(),
                "date": pd.to_datetime(raw["InvoiceDate"]).dt.normalize(),
                "price": raw["UnitPrice"].astype(float),
                "quantity": raw["Quantity"].astype("int64"),
            }
        )
        points = price_points(lines)
        rows = list(
            Anomaly.objects.filter(
                anomaly_type=AnomalyType.PRICE_ANOMALY, product__isnull=False
            ).values_list("product__sku", "start_date", "end_date", "actual_value", "severity")
        )
        price = pd.DataFrame(
            rows, columns=["sku", "start_date", "end_date", "actual_value", "severity"]
        )
        price["start_date"] = pd.to_datetime(price["start_date"])
        price["end_date"] = pd.to_datetime(price["end_date"])
        price["actual_value"] = price["actual_value"].astype(float)
        recurring = recurring_price_findings(price, points)
        share = float(recurring.mean()) if len(price) else 0.0
        out(
            f"price findings: {len(price):,}; at a recurring price point (same SKU, same price "
            f"on >= 5 other days): {int(recurring.sum()):,} ({share:.1%})"
        )
        if len(price):
            out(
                "  by severity: "
                + ", ".join(f"{sev} {n:,}" for sev, n in price["severity"].value_counts().items())
            )
        types = pd.DataFrame(
            list(Anomaly.objects.values_list("anomaly_type", "first_detected_on")),
            columns=["anomaly_type", "first_detected_on"],
        )
        types["first_detected_on"] = pd.to_datetime(types["first_detected_on"])
        out("findings per run day, by type:")
        out(findings_per_day(types).to_string())
