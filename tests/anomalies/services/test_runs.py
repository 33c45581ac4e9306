"""Detection runs: what a walk-forward backfill records per day, and what it reads once."""

from __future__ import annotations

import datetime as dt

import pytest

from anomalies.models import DetectionChunk, RunStatus
from anomalies.services import runs as runs_service
from anomalies.services.runs import detection_backfill
from inventory.models import PricePoint
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

DAY0 = dt.date(2024, 3, 1)


@pytest.fixture
def two_shelves():
    """Product A sells at two stores for 10 days from DAY0; product B at one store from day 5."""
    a, b = ProductFactory(sku="A"), ProductFactory(sku="B")
    s1, s2 = LocationFactory(code="S1"), LocationFactory(code="S2")
    for i in range(10):
        for store in (s1, s2):
            DailySalesFactory(product=a, location=store, date=DAY0 + dt.timedelta(days=i))
        if i >= 5:
            DailySalesFactory(product=b, location=s1, date=DAY0 + dt.timedelta(days=i))


def test_backfill_counts_each_days_shelves_and_refreshes_price_points_once(
    two_shelves, monkeypatch
):
    refreshes = []
    refresh = runs_service.price_points_refresh
    monkeypatch.setattr(
        runs_service, "price_points_refresh", lambda: refreshes.append(1) or refresh()
    )

    runs = detection_backfill(
        start=DAY0 + dt.timedelta(days=3),
        end=DAY0 + dt.timedelta(days=6),
        detectors=["price_anomaly"],
        history_days=3,
    )

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 4
    series = dict(DetectionChunk.objects.values_list("run__as_of", "series"))
    # B's shelf counts from its first sale on day 5.
    assert [series[DAY0 + dt.timedelta(days=d)] for d in (3, 4, 5, 6)] == [2, 2, 3, 3]
    # One window, one refresh, before it was loaded: its points cover every imported day.
    assert refreshes == [1]
    assert PricePoint.objects.filter(date=DAY0 + dt.timedelta(days=9)).exists()
