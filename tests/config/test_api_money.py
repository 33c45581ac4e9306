"""Money over the API: decimal strings with two places, never a float's long tail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import AnomalyFactory, DailySalesFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_anomaly_money_is_a_two_place_string_and_values_are_rounded(api_client):
    AnomalyFactory(
        value_at_risk=Decimal("3583.33"), expected_value=3583.3291200000003, actual_value=1 / 3
    )
    row = api_client.get("/api/v1/anomalies/").json()["results"][0]
    assert row["value_at_risk"] == "3583.33"
    assert (row["expected_value"], row["actual_value"]) == (3583.33, 0.33)


def test_statistics_open_value_at_risk_is_a_two_place_string(api_client):
    AnomalyFactory(value_at_risk=Decimal("1118.6"))
    body = api_client.get("/api/v1/anomaly-statistics/").json()
    assert body["open_value_at_risk"] == "1118.60"


def test_roi_money_is_two_place_strings_even_when_empty(api_client):
    body = api_client.get("/api/v1/roi/").json()
    totals = body["totals"]
    assert (totals["recovered_value"], totals["net_value"], totals["labour_cost"]) == (
        "0.00",
        "0.00",
        "0.00",
    )
    assert all(isinstance(p["net_value"], str) for p in body["periods"])
    assert body["settings"]["count_cost_per_hour"].count(".") == 1


def test_product_prices_have_two_places_unless_stored_finer(api_client):
    ProductFactory(sku="A", unit_price=Decimal("2.5"), unit_cost=None)
    ProductFactory(sku="B", unit_price=Decimal("0.125"), unit_cost=Decimal("1.1"))
    rows = {p["sku"]: p for p in api_client.get("/api/v1/products/").json()["results"]}
    assert (rows["A"]["unit_price"], rows["A"]["unit_cost"]) == ("2.50", None)
    assert (rows["B"]["unit_price"], rows["B"]["unit_cost"]) == ("0.125", "1.10")


def test_effectiveness_window_ends_at_the_last_day_of_data(api_client):
    data_end = timezone.localdate() - dt.timedelta(days=40)
    DailySalesFactory(date=data_end)
    body = api_client.get("/api/v1/effectiveness/").json()
    assert body["end"] == str(data_end)
    assert body["start"] == str(data_end - dt.timedelta(days=89))
    # value by the day confirmed runs to today: triage goes on after the data stops
    assert api_client.get("/api/v1/roi/").json()["end"] == str(timezone.localdate())
