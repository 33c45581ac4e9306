"""A detection run for a day after the data is refused with where the data ends, by the
service the API and the command share (issue 14: "A run for 2030-01-01 'succeeds' with a
misleading note")."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from anomalies.models import DetectionRun
from anomalies.services.runs import DetectionError, detection_run_create
from inventory.models import AdjustmentReason, StockAdjustment
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 10, 31)
COUNTED_ON = dt.date(2026, 12, 4)  # a cycle count recorded a month after the data ends


@pytest.fixture
def counted_after_the_data():
    """Sales and book stock up to ``DAY``; one count recorded on ``COUNTED_ON`` wrote that
    day's book stock (as ``cycle_count_record`` does)."""
    product, store = ProductFactory(sku="A1"), LocationFactory(code="S1")
    DailySalesFactory(product=product, location=store, date=DAY)
    StockLevelFactory(product=product, location=store, date=DAY, on_hand=33)
    StockLevelFactory(product=product, location=store, date=COUNTED_ON, on_hand=5)
    StockAdjustment.objects.create(
        product=product,
        location=store,
        date=COUNTED_ON,
        book_before=33,
        counted=5,
        delta=-28,
        reason=AdjustmentReason.CYCLE_COUNT,
    )
    return product, store


def test_a_counted_day_after_the_data_does_not_extend_it(counted_after_the_data):
    with pytest.raises(DetectionError) as refused:
        detection_run_create(as_of=COUNTED_ON)
    assert str(refused.value) == (
        f"as-of date {COUNTED_ON} is after the end of the data (sales up to {DAY}); "
        "import the missing days first, or run as of a date with data."
    )
    assert not DetectionRun.objects.exists()


def test_imported_book_stock_after_the_sales_still_extends_it(counted_after_the_data):
    product, _ = counted_after_the_data
    later = DAY + dt.timedelta(days=2)
    StockLevelFactory(product=product, location=LocationFactory(code="S2"), date=later)
    assert detection_run_create(as_of=later).as_of == later
    with pytest.raises(DetectionError, match=rf"book stock up to {later}\)"):
        detection_run_create(as_of=later + dt.timedelta(days=1))


def test_far_future_run_is_refused_by_api_and_command(counted_after_the_data, api_client, settings):
    settings.SHELFWATCH_DATE_MAX_AHEAD_DAYS = 5000  # so only the end of the data can refuse it
    response = api_client.post("/api/v1/detection-runs/", {"as_of": "2030-01-01"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        f"as-of date 2030-01-01 is after the end of the data (sales up to {DAY})"
    )
    with pytest.raises(CommandError, match="after the end of the data"):
        call_command("detect_anomalies", "--as-of", "2030-01-01")
    assert not DetectionRun.objects.exists()
