"""Re-importing a bundle never undoes a recorded cycle count (issue 14: re-running
``make demo-data`` reverted a count's book stock and raised a new critical discrepancy)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from anomalies.models import Anomaly, AnomalyType
from anomalies.services.runs import detection_run
from inventory.importing import bundle_import
from inventory.models import Location, Product, StockAdjustment, StockLevel
from outcomes.services import cycle_count_record, cycle_count_request
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db

FIRST = dt.date(2026, 9, 1)
DAYS = 61
LAST = FIRST + dt.timedelta(days=DAYS - 1)  # 2026-10-31, the demo's last day
COUNTED_ON = LAST - dt.timedelta(days=5)
SOLD_PER_DAY = 2


def _bundle(directory: Path) -> Path:
    """One SKU at one store selling 2 a day; the book falls with the sales (nothing
    unexplained), 400 units on the first day."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "products.csv").write_text(
        "sku,name,category,unit_price,unit_cost\nA1,Apple,Fruit,4.00,1.00\n"
    )
    (directory / "locations.csv").write_text("code,name\nS1,Store one\n")
    sales, stock = ["date,sku,location,units,unit_price"], ["date,sku,location,on_hand"]
    for offset in range(DAYS):
        day = FIRST + dt.timedelta(days=offset)
        sales.append(f"{day},A1,S1,{SOLD_PER_DAY},4.00")
        stock.append(f"{day},A1,S1,{400 - SOLD_PER_DAY * offset}")
    (directory / "sales.csv").write_text("\n".join(sales) + "\n")
    (directory / "inventory.csv").write_text("\n".join(stock) + "\n")
    return directory


def _book(day: dt.date) -> int:
    return StockLevel.objects.get(date=day).on_hand


@pytest.fixture
def counted(tmp_path, staff_user):
    """The bundle imported, then a cycle count of the SKU on ``COUNTED_ON`` found 30 units
    where the books said 290 (260 phantom units written off)."""
    folder = _bundle(tmp_path / "bundle")
    bundle_import(directory=folder)
    product, store = Product.objects.get(sku="A1"), Location.objects.get(code="S1")
    finding = AnomalyFactory(
        product=product,
        location=store,
        anomaly_type=AnomalyType.GHOST_STOCK,
        start_date=COUNTED_ON - dt.timedelta(days=10),
        end_date=COUNTED_ON,
        first_detected_on=COUNTED_ON,
        last_detected_on=COUNTED_ON,
        details={"expected_units_per_day": 2.0},
    )
    count = cycle_count_request(anomaly_id=finding.pk, actor=staff_user, today=COUNTED_ON)
    cycle_count_record(
        count_id=count.pk, counted_quantity=30, actor=staff_user, counted_on=COUNTED_ON
    )
    assert _book(COUNTED_ON) == 30
    return folder


def test_reimport_keeps_the_counted_book_stock_and_says_so(counted):
    before = list(StockLevel.objects.order_by("date").values_list("date", "on_hand"))

    summary = bundle_import(directory=counted)

    assert _book(COUNTED_ON) == 30  # not the 290 of inventory.csv
    assert list(StockLevel.objects.order_by("date").values_list("date", "on_hand")) == before
    assert any("Kept the recorded cycle count on 1 book-stock day" in n for n in summary.notes)
    adjustment = StockAdjustment.objects.get()
    assert (adjustment.book_before, adjustment.counted) == (290, 30)


def test_reimport_then_detection_raises_no_discrepancy_on_the_counted_day(counted):
    bundle_import(directory=counted)

    run = detection_run(as_of=COUNTED_ON, detectors=["inventory_discrepancy"])

    assert run.status == "succeeded", run.error
    assert not Anomaly.objects.filter(anomaly_type=AnomalyType.INVENTORY_DISCREPANCY).exists()


def test_an_import_of_other_days_leaves_counts_alone_and_adds_no_note(counted, tmp_path):
    other = tmp_path / "later"
    other.mkdir()
    for name in ("products.csv", "locations.csv"):
        (other / name).write_text((counted / name).read_text())
    day = LAST + dt.timedelta(days=1)
    (other / "sales.csv").write_text(f"date,sku,location,units,unit_price\n{day},A1,S1,1,4.00\n")
    (other / "inventory.csv").write_text(f"date,sku,location,on_hand\n{day},A1,S1,19\n")

    summary = bundle_import(directory=other)

    assert _book(COUNTED_ON) == 30 and _book(day) == 19
    assert not any("cycle count" in note for note in summary.notes)
