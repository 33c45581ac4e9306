"""End to end on the real Online Retail file: import, then detection on the two giant orders' days.

Skipped when ../shared/data is absent.
"""

from __future__ import annotations

import datetime as dt

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
