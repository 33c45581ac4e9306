"""Export anomalies to CSV for people who work in spreadsheets.

Text cells that a spreadsheet would evaluate as a formula (``=``, ``+``, ``-``, ``@``, tab,
CR first) get a leading ``'`` (``common.csv_safe``): SKUs, names and explanations come from
imported files and must not run in a buyer's sheet.

Numbers are plain decimals (``common.formatting``): money and the expected / actual values
with two places (``3583.33``, not ``3583.3291200000003``), the score with four; no thousands
separators, no currency symbol, blank when unknown. They are written as numbers, so the
formula guard never touches a negative value.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from django.db.models import QuerySet

from anomalies.models import Anomaly
from common.csv_safe import spreadsheet_safe_row
from common.formatting import MONEY_PLACES, to_decimal

EXPORT_COLUMNS: list[str] = [
    "id",
    "sku",
    "product_name",
    "category",
    "location",
    "anomaly_type",
    "severity",
    "score",
    "start_date",
    "end_date",
    "first_detected_on",
    "last_detected_on",
    "expected_value",
    "actual_value",
    "value_at_risk",
    "status",
    "assignee",
    "explanation",
]

_FIELDS = {
    "id": "id",
    "sku": "product__sku",
    "product_name": "product__name",
    "category": "product__category",
    "location": "location__code",
    "anomaly_type": "anomaly_type",
    "severity": "severity",
    "score": "score",
    "start_date": "start_date",
    "end_date": "end_date",
    "first_detected_on": "first_detected_on",
    "last_detected_on": "last_detected_on",
    "expected_value": "expected_value",
    "actual_value": "actual_value",
    "value_at_risk": "value_at_risk",
    "status": "status",
    "assignee": "assignee__username",
    "explanation": "explanation",
}


# Columns rounded to a fixed number of decimal places (the rest are written as stored).
SCORE_PLACES = 4
_PLACES = {
    "score": SCORE_PLACES,
    "expected_value": MONEY_PLACES,
    "actual_value": MONEY_PLACES,
    "value_at_risk": MONEY_PLACES,
}
_ROUNDED = [(EXPORT_COLUMNS.index(name), places) for name, places in _PLACES.items()]


def _rounded(row: tuple) -> list:
    cells = list(row)
    for index, places in _ROUNDED:
        cells[index] = to_decimal(cells[index], places)
    return cells


def anomalies_export_csv(*, out: TextIO, queryset: QuerySet[Anomaly] | None = None) -> int:
    """Write ``queryset`` (default: all anomalies) as CSV with ``EXPORT_COLUMNS`` to ``out``.

    Streams rows with ``values_list(...).iterator()`` (one query, no model instances).
    Returns the number of anomalies written. Location-level findings have a blank ``sku``.
    Numbers are rounded (``_PLACES``); formula-like text cells are prefixed with ``'`` (see
    the module docstring).
    """
    queryset = Anomaly.objects.all() if queryset is None else queryset
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    rows = queryset.order_by("start_date", "id").values_list(*(_FIELDS[c] for c in EXPORT_COLUMNS))
    for row in rows.iterator(chunk_size=5000):
        writer.writerow(spreadsheet_safe_row(_rounded(row)))
        count += 1
    return count


def anomalies_export_file(*, path: Path, queryset: QuerySet[Anomaly] | None = None) -> int:
    """Write the CSV export to ``path`` (UTF-8); returns the number of anomalies written."""
    with path.open("w", newline="", encoding="utf-8") as out:
        return anomalies_export_csv(out=out, queryset=queryset)
