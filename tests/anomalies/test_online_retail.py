"""End to end on the real Online Retail file: import, then detection on the two giant orders' days.

Skipped when ../shared/data is absent.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from anomalies.models import Anomaly
from anomalies.services.runs import detection_run
from inventory.importing import PRESETS, transactions_import
from tests.conftest import ONLINE_RETAIL_FILE

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not ONLINE_RETAIL_FILE.exists(), reason=f"{ONLINE_RETAIL_FILE} is absent"),
]


@pytest.fixture(scope="module")
def online_retail(django_db_setup, django_db_blocker):
    """Import the file once for this module; removed again at the end."""
    with django_db_blocker.unblock():
        summary = transactions_import(path=ONLINE_RETAIL_FILE, mapping=PRESETS["online-retail"])
        yield summary
        from inventory.models import DailySales, Location, Product

        Anomaly.objects.all().delete()
        DailySales.objects.all().delete()
        Product.objects.all().delete()
        Location.objects.all().delete()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sku", "day", "units"),
    [("23843", dt.date(2011, 12, 9), "80,995"), ("23166", dt.date(2011, 1, 18), "74,215")],
)
def test_giant_orders_are_flagged_on_their_day_naming_the_quantity(online_retail, sku, day, units):
    assert online_retail.lines_read == 541_909
    run = detection_run(as_of=day)
    assert run.status == "succeeded"
    # No book stock in this data: the stock-based detectors are skipped with a note, not failed.
    assert any(note.startswith("ghost_stock: skipped") for note in run.notes)
    spike = Anomaly.objects.get(anomaly_type="demand_spike", product__sku=sku, start_date=day)
    assert spike.location.code == "United Kingdom"
    assert f"{units} units" in spike.explanation
    assert spike.severity == "critical"
    # Findings of one day stay reviewable by a person.
    assert Anomaly.objects.filter(last_run=run).count() < 100


@pytest.mark.django_db
def test_price_findings_of_a_busy_day_are_few_and_none_at_a_recurring_price_point(online_retail):
    # Measured on the 2011 backfill (default chunks, q = 0.01): 94 price findings in 343 days
    # (3,095 with the fixed 0.5x / 3x ratios), 39 % at a price the SKU sells at on five or
    # more other days. 8 Dec 2011 is the busiest December day with findings left at q = 0.5
    # since each store's benign-deviation scale is shrunk to the chain's (9 Dec, used before,
    # has none any more): ten, each at a daily price the SKU had on at most 4 other days.
    from inventory.models import DailySales

    day = dt.date(2011, 12, 8)
    # One chunk: an item's price points are pooled over the stores of the detector's input,
    # and most of this file's are learned at the United Kingdom.
    # At the loosest level the policy allows (q = 0.5), so that the day has findings to check.
    from anomalies.models import DetectionPolicy

    DetectionPolicy.objects.update_or_create(pk=1, defaults={"fdr_q": 0.5})
    run = detection_run(as_of=day, detectors=["price_anomaly"], chunk_locations=100)
    found = list(
        Anomaly.objects.filter(last_run=run, anomaly_type="price_anomaly", product__isnull=False)
    )
    assert 0 < len(found) <= 10
    for anomaly in found:
        assert 0 < anomaly.details["p_value"] <= 0.001
        price = Decimal(str(round(anomaly.actual_value, 2)))
        other_days = (
            DailySales.objects.filter(
                product_id=anomaly.product_id,
                units_sold__gt=0,
                unit_price__gte=price - Decimal("0.005"),
                unit_price__lt=price + Decimal("0.005"),
            )
            .exclude(date=day)
            .values("date")
            .distinct()
            .count()
        )
        assert other_days < 5, (anomaly.product.sku, price, other_days)
