"""``manage.py import_transactions FILE``: load line-level POS exports as daily sales.

The UCI Online Retail file::

    python manage.py import_transactions ../shared/data/online_retail/online_retail.csv.gz \\
        --preset online-retail

Another export, mapping its columns::

    python manage.py import_transactions pos.csv.gz --sku-col item --quantity-col qty \\
        --timestamp-col sold_at --price-col price --description-col label \\
        --default-location S001 --category Grocery --exclude-sku GIFTCARD
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inventory.importing import (
    PRESETS,
    BundleError,
    TransactionMapping,
    mapping_with,
    transactions_import,
)
from inventory.management.commands.import_retail import ProgressPrinter

# Option name -> TransactionMapping field.
COLUMN_OPTIONS = {
    "sku_col": "column of the SKU / stock code",
    "description_col": "column of the product description (names created products)",
    "quantity_col": "column of the quantity (negative = return or cancellation)",
    "timestamp_col": "column of the sale's date and time",
    "price_col": "column of the unit price",
    "location_col": "column of the store / region code",
    "invoice_col": "column of the invoice / receipt number (only counted)",
}
REQUIRED_OPTIONS = ("sku_col", "quantity_col", "timestamp_col", "price_col")


class Command(BaseCommand):
    help = (
        "Import line-level POS transactions (CSV, or compressed .csv.gz) as daily sales per "
        "SKU, location and day; creates missing products and locations. Use --preset "
        "online-retail for the UCI Online Retail file."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="CSV file, optionally .gz compressed.")
        parser.add_argument(
            "--preset",
            choices=sorted(PRESETS),
            help="Column mapping of a known file; the options below override it. "
            "online-retail: InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,"
            "Country as location, non-product stock codes (POST, DOT, M, ...) excluded.",
        )
        for option, text in COLUMN_OPTIONS.items():
            parser.add_argument(f"--{option.replace('_', '-')}", dest=option, help=text)
        parser.add_argument(
            "--default-location", help="Location code of every line when there is no column."
        )
        parser.add_argument("--category", help='Category of created products ("Uncategorised").')
        parser.add_argument(
            "--exclude-sku",
            action="append",
            default=[],
            metavar="SKU",
            help="Skip lines of this SKU (case-insensitive; repeatable; adds to the preset's).",
        )
        parser.add_argument(
            "--timestamp-format", help="strftime format of the timestamps (default: inferred)."
        )

    def handle(self, *args, file: Path, preset: str | None, verbosity: int, **options):
        mapping = self._mapping(preset, options)
        progress = ProgressPrinter(self.stdout) if verbosity >= 1 else None
        try:
            summary = transactions_import(
                path=file.expanduser(), mapping=mapping, progress=progress
            )
        except BundleError as exc:
            for message in exc.messages:
                self.stderr.write(message)
            raise CommandError(f"{file}: import failed ({exc.summary()}); nothing written") from exc
        for line in summary.report():
            self.stdout.write(line)

    def _mapping(self, preset: str | None, options: dict) -> TransactionMapping:
        changes = {name: options[name] for name in COLUMN_OPTIONS}
        changes |= {
            "default_location": options["default_location"],
            "category": options["category"],
            "timestamp_format": options["timestamp_format"],
        }
        excluded = frozenset(options["exclude_sku"])
        try:
            if preset:
                base = PRESETS[preset]
                return mapping_with(base, exclude_skus=base.exclude_skus | excluded, **changes)
            missing = [name for name in REQUIRED_OPTIONS if not changes[name]]
            if missing:
                flags = ", ".join(f"--{name.replace('_', '-')}" for name in missing)
                raise CommandError(f"without --preset, give {flags}")
            return TransactionMapping(
                **{key: value for key, value in changes.items() if value is not None},
                exclude_skus=excluded,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
