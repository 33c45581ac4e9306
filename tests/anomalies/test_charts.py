"""The anomaly page's chart data: window, expected level (hand-computed), stock, rendering."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from anomalies.services.charts import anomaly_chart_data
from tests.factories import (
    AnomalyFactory,
    DailySalesFactory,
    LocationFactory,
    ProductFactory,
    StockLevelFactory,
)

pytestmark = pytest.mark.django_db

D = dt.date


@pytest.fixture
def spike():
    """A week-long anomaly (Mon 2024-03-04 .. Sun 03-10) with Monday sales around it."""
    product = ProductFactory(sku="TEA1", name="Tea")
    store = LocationFactory(code="S001")
    other = LocationFactory(code="S002")
    mondays = {
        D(2024, 2, 5): 2,
        D(2024, 2, 12): 8,
        D(2024, 2, 19): 4,
        D(2024, 2, 26): 6,
        D(2024, 3, 4): 50,  # inside the anomaly
        D(2024, 3, 11): 10,
        D(2024, 3, 18): 3,  # latest sales at S001
    }
    for day, units in mondays.items():
        DailySalesFactory(product=product, location=store, date=day, units_sold=units)
    # Another store's sales move neither the chart nor its window.
    DailySalesFactory(product=product, location=other, date=D(2024, 2, 26), units_sold=99)
    DailySalesFactory(product=product, location=other, date=D(2024, 4, 30), units_sold=1)
    StockLevelFactory(product=product, location=store, date=D(2024, 3, 5), on_hand=38)
    return AnomalyFactory(
        product=product,
        location=store,
        anomaly_type="demand_spike",
        start_date=D(2024, 3, 4),
        end_date=D(2024, 3, 10),
    )


def test_window_runs_to_the_latest_data_and_spans_at_least_56_days(spike):
    data = anomaly_chart_data(anomaly=spike)

    # end: min(end + 14 = 03-24, latest sales at S001 = 03-18); start: 56 days back from it.
    assert data["labels"][0] == "2024-01-23"
    assert data["labels"][-1] == "2024-03-18"
    assert len(data["labels"]) == len(data["sales"]) == len(data["expected"]) == 56
    assert data["window"] == {
        "start": "2024-03-04",
        "end": "2024-03-10",
        "first_index": 41,
        "last_index": 47,
    }
    assert (data["product"], data["location"]) == ("TEA1 Tea", "S001")


def test_expected_level_is_the_median_of_the_same_weekday_in_the_four_previous_weeks(spike):
    data = anomaly_chart_data(anomaly=spike)
    by_day = dict(
        zip(data["labels"], zip(data["sales"], data["expected"], strict=True), strict=True)
    )

    # Mon 02-26: 02-19 (4), 02-12 (8), 02-05 (2), 01-29 (no row: 0) -> median(0, 2, 4, 8) = 3
    assert by_day["2024-02-26"] == (6, 3.0)
    # Mon 03-04, first day of the anomaly: 6, 4, 8, 2 -> 5
    assert by_day["2024-03-04"] == (50, 5.0)
    # Mon 03-11: 03-04 lies in the anomaly and is skipped: 6, 4, 8, 2 -> 5
    assert by_day["2024-03-11"] == (10, 5.0)
    # Mon 03-18: 03-11 (10), [03-04 skipped], 02-26 (6), 02-19 (4), 02-12 (8) -> 7
    assert by_day["2024-03-18"] == (3, 7.0)
    # Tuesdays never sold: expected 0
    assert by_day["2024-03-05"] == (0, 0.0)


def test_on_hand_is_book_stock_where_imported(spike):
    data = anomaly_chart_data(anomaly=spike)

    on_hand = dict(zip(data["labels"], data["on_hand"], strict=True))
    assert on_hand["2024-03-05"] == 38
    assert on_hand["2024-03-04"] is None
    assert sum(v is not None for v in data["on_hand"]) == 1


def test_a_long_anomaly_shows_14_days_before_it_and_its_days_after(db):
    product = ProductFactory()
    store = LocationFactory()
    DailySalesFactory(product=product, location=store, date=D(2024, 6, 30), units_sold=1)
    anomaly = AnomalyFactory(
        product=product, location=store, start_date=D(2024, 3, 1), end_date=D(2024, 5, 31)
    )

    data = anomaly_chart_data(anomaly=anomaly)

    assert data["labels"][0] == "2024-02-16"  # 14 days before the start
    assert data["labels"][-1] == "2024-06-14"  # 14 days after the end (data goes further)
    assert data["window"]["first_index"] == 14


def test_without_later_data_the_chart_ends_with_the_anomaly(db):
    anomaly = AnomalyFactory(start_date=D(2024, 1, 20), end_date=D(2024, 1, 25))

    data = anomaly_chart_data(anomaly=anomaly)

    assert data["labels"][-1] == "2024-01-25"
    assert data["labels"][0] == "2023-12-01"
    assert data["window"]["last_index"] == 55


def test_location_level_anomaly_charts_totals_over_the_locations_skus(db):
    store = LocationFactory(code="S009")
    tea, milk = ProductFactory(), ProductFactory()
    DailySalesFactory(product=tea, location=store, date=D(2024, 1, 10), units_sold=3)
    DailySalesFactory(product=milk, location=store, date=D(2024, 1, 10), units_sold=4)
    StockLevelFactory(product=tea, location=store, date=D(2024, 1, 10), on_hand=5)
    StockLevelFactory(product=milk, location=store, date=D(2024, 1, 10), on_hand=6)
    anomaly = AnomalyFactory(
        product=None,
        location=store,
        anomaly_type="pos_outage",
        start_date=D(2024, 1, 20),
        end_date=D(2024, 1, 25),
    )

    data = anomaly_chart_data(anomaly=anomaly)

    index = data["labels"].index("2024-01-10")
    assert (data["sales"][index], data["on_hand"][index]) == (7, 11)
    # Wed 01-17: 01-10 (7), 01-03, 12-27, 12-20 (0) -> median(0, 0, 0, 7) = 0
    assert data["expected"][data["labels"].index("2024-01-17")] == 0.0
    assert data["product"] is None


def test_chart_data_takes_three_queries(spike):
    with CaptureQueriesContext(connection) as ctx:
        anomaly_chart_data(anomaly=spike)
    # latest sales date at the location; sales; book stock (product and location are loaded)
    assert len(ctx.captured_queries) == 3


def test_anomaly_page_embeds_the_chart_with_the_vendored_library(client, staff_user, spike):
    client.force_login(staff_user)

    response = client.get(reverse("admin:anomalies_anomaly_change", args=[spike.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="anomaly-chart-canvas"' in html
    assert '<script src="/static/vendor/chartjs/chart.umd.min.js"></script>' in html
    payload = re.search(
        r'<script id="anomaly-chart-data" type="application/json">(.*?)</script>', html, re.S
    ).group(1)
    assert json.loads(payload) == anomaly_chart_data(anomaly=spike)
    assert "http://" not in html.split('id="anomaly-chart"')[1].split("</script>")[0]
