"""API of the outcomes loop: cycle counts, missed anomalies, effectiveness and ROI."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from anomalies.models import AnomalyStatus, AnomalyType
from inventory.models import StockAdjustment
from outcomes.models import CycleCount, MissedAnomaly
from outcomes.services import control_counts_request, cycle_count_record, cycle_count_request
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

COUNTS = "/api/v1/cycle-counts/"
MISSED = "/api/v1/missed-anomalies/"
DAY = dt.date(2024, 1, 25)


def ghost(*, book: int = 38, rate: float = 2.0, **kwargs):
    anomaly = AnomalyFactory(details={"expected_units_per_day": rate}, **kwargs)
    StockLevelFactory(product=anomaly.product, location=anomaly.location, date=DAY, on_hand=book)
    return anomaly


# --- cycle counts ------------------------------------------------------------------------------


def test_request_a_count_201_then_200(api_client):
    anomaly = ghost(product=ProductFactory(sku="85123A"), location=LocationFactory(code="S1"))

    created = api_client.post(COUNTS, {"anomaly": anomaly.pk}, format="json")
    again = api_client.post(COUNTS, {"anomaly": anomaly.pk}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert (body["anomaly"], body["anomaly_type"], body["sku"], body["location_code"]) == (
        anomaly.pk,
        "ghost_stock",
        "85123A",
        "S1",
    )
    assert (body["status"], body["priority"], body["is_control"]) == ("requested", "5.00", False)
    assert (body["stock_adjustment"], body["verdict"]) == (None, None)
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert CycleCount.objects.count() == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("price", "cannot be counted: not a ghost-stock or inventory-discrepancy finding"),
        ("resolved", "is resolved; no count is needed"),
    ],
)
def test_request_a_count_refused_400(api_client, kind, message):
    anomaly = (
        AnomalyFactory(anomaly_type=AnomalyType.PRICE_ANOMALY)
        if kind == "price"
        else AnomalyFactory(status=AnomalyStatus.RESOLVED)
    )

    response = api_client.post(COUNTS, {"anomaly": anomaly.pk}, format="json")

    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert api_client.post(COUNTS, {"anomaly": 999_999}, format="json").status_code == 400
    assert not CycleCount.objects.exists()


def test_count_list_by_priority_with_filters(api_client, staff_user, django_assert_num_queries):
    s1, s2 = LocationFactory(code="S1"), LocationFactory(code="S2")
    low = cycle_count_request(anomaly_id=ghost(location=s1, rate=1.0).pk, actor=staff_user)
    high = cycle_count_request(anomaly_id=ghost(location=s1, rate=8.0).pk, actor=staff_user)
    other = cycle_count_request(anomaly_id=ghost(location=s2, rate=4.0).pk, actor=staff_user)
    cancelled = cycle_count_request(anomaly_id=ghost(location=s1, rate=9.0).pk, actor=staff_user)
    api_client.post(f"{COUNTS}{cancelled.pk}/cancel/")

    def ids(params):
        response = api_client.get(COUNTS, params)
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    assert ids({}) == [cancelled.pk, high.pk, other.pk, low.pk]
    assert ids({"location_code": "S1", "status": "requested"}) == [high.pk, low.pk]
    assert ids({"location": s2.pk}) == [other.pk]
    assert ids({"status": "cancelled"}) == [cancelled.pk]
    assert ids({"is_control": "true"}) == []
    # COUNT for the page, then the page joined with product, location, anomaly, outcome and
    # stock adjustment.
    with django_assert_num_queries(2):
        api_client.get(COUNTS)


def test_record_a_count(api_client, staff_user):
    anomaly = ghost(book=38)
    count = cycle_count_request(anomaly_id=anomaly.pk, actor=staff_user)

    response = api_client.post(
        f"{COUNTS}{count.pk}/record/",
        {"counted_quantity": 6, "counted_on": str(DAY), "notes": "back room checked"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["counted_quantity"], body["counted_on"]) == (
        "counted",
        6,
        str(DAY),
    )
    assert body["notes"] == "back room checked"
    assert body["stock_adjustment"]["book_before"] == 38
    assert body["stock_adjustment"]["delta"] == -32
    assert body["verdict"] == "true_positive"
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.RESOLVED
    assert anomaly.outcome.recovered_value == Decimal("80.00")  # 32 x 2.50

    again = api_client.post(f"{COUNTS}{count.pk}/record/", {"counted_quantity": 1})
    assert again.status_code == 409
    assert again.json()["detail"] == f"Cycle count {count.pk} is counted; it cannot be recorded."


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"counted_quantity": -1}, "counted_quantity"),
        ({"counted_quantity": "x"}, "counted_quantity"),
        ({}, "counted_quantity"),
        ({"counted_quantity": 1, "counted_on": "2999-01-01"}, "detail"),
    ],
)
def test_record_validates_400_and_writes_nothing(api_client, staff_user, body, field):
    count = cycle_count_request(anomaly_id=ghost().pk, actor=staff_user)

    response = api_client.post(f"{COUNTS}{count.pk}/record/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not StockAdjustment.objects.exists()
    count.refresh_from_db()
    assert count.status == "requested"


def test_record_a_control_count(api_client):
    StockLevelFactory(date=DAY, on_hand=5)
    [count] = control_counts_request(share=1.0, seed=0, today=DAY)

    response = api_client.post(
        f"{COUNTS}{count.pk}/record/", {"counted_quantity": 5, "counted_on": str(DAY)}
    )

    assert response.status_code == 200
    assert response.json()["is_control"] is True
    assert response.json()["verdict"] is None
    assert response.json()["stock_adjustment"]["delta"] == 0


def test_cancel_a_count(api_client, staff_user):
    count = cycle_count_request(anomaly_id=ghost().pk, actor=staff_user)

    first = api_client.post(f"{COUNTS}{count.pk}/cancel/")
    second = api_client.post(f"{COUNTS}{count.pk}/cancel/")

    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert second.status_code == 409


def test_counts_need_authentication():
    response = APIClient().get(COUNTS)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- missed anomalies --------------------------------------------------------------------------


def test_report_a_missed_anomaly(api_client, staff_user):
    store, product = LocationFactory(code="S1"), ProductFactory(sku="22423")

    response = api_client.post(
        MISSED,
        {
            "anomaly_type": "ghost_stock",
            "product": product.pk,
            "location": store.pk,
            "start_date": "2024-01-10",
            "notes": "customer asked; shelf empty, books said 12",
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["sku"], body["location_code"], body["reported_by_username"]) == (
        "22423",
        "S1",
        "ops",
    )
    missed = MissedAnomaly.objects.get()
    assert (missed.anomaly_type, missed.reported_by, missed.end_date) == (
        "ghost_stock",
        staff_user,
        None,
    )
    listed = api_client.get(MISSED, {"anomaly_type": "ghost_stock", "location_code": "S1"})
    assert [row["id"] for row in listed.json()["results"]] == [missed.pk]
    assert api_client.get(MISSED, {"location_code": "S9"}).json()["results"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"anomaly_type": "bogus"}, "anomaly_type"),
        ({"end_date": "2024-01-01"}, "end_date"),
        ({"location": None}, "location"),
    ],
)
def test_report_a_missed_anomaly_validates(api_client, changes, field):
    body = {
        "anomaly_type": "demand_drop",
        "product": None,
        "location": LocationFactory().pk,
        "start_date": "2024-01-10",
        **changes,
    }

    response = api_client.post(MISSED, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not MissedAnomaly.objects.exists()


# --- effectiveness and ROI ---------------------------------------------------------------------


@pytest.fixture
def counted_findings(staff_user):
    """Two ghost-stock counts on DAY: one confirmed (book 38, counted 0), one not (12 = 12)."""
    confirmed = ghost(book=38, first_detected_on=DAY, start_date=DAY - dt.timedelta(days=6))
    refuted = ghost(book=12, first_detected_on=DAY, start_date=DAY - dt.timedelta(days=6))
    for anomaly, quantity in ((confirmed, 0), (refuted, 12)):
        count = cycle_count_request(anomaly_id=anomaly.pk, actor=staff_user)
        cycle_count_record(
            count_id=count.pk, counted_quantity=quantity, counted_on=DAY, actor=staff_user
        )
    return confirmed, refuted


def test_effectiveness_endpoint(api_client, counted_findings):
    response = api_client.get(
        "/api/v1/effectiveness/", {"start": "2024-01-01", "end": "2024-01-31", "period": "week"}
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["start"], body["end"], body["period"]) == ("2024-01-01", "2024-01-31", "week")
    overall = body["overall"]
    assert (overall["raised"], overall["labelled"], overall["true_positive"]) == (2, 2, 1)
    assert (overall["precision"], overall["false_positive_rate"]) == (0.5, 0.5)
    assert overall["resolution_rate"] == 1.0
    assert [row["anomaly_type"] for row in body["by_type"]] == ["ghost_stock"]
    assert [row["detector"] for row in body["by_detector"]] == ["ghost_stock"]
    assert len(body["periods"]) == 5
    assert body["recall"]["recall"] == 1.0
    assert set(body["trend"]) == {
        "precision",
        "false_positive_rate",
        "mtta_hours",
        "mttr_hours",
        "resolution_rate",
        "recall",
    }


def test_roi_endpoint(api_client, counted_findings, settings):
    settings.SHELFWATCH_ROI_DISCOVERY_DAYS = 30
    today = timezone.localdate()

    response = api_client.get("/api/v1/roi/")

    assert response.status_code == 200
    body = response.json()
    assert body["end"] == str(today)
    assert body["start"] == str(today - dt.timedelta(days=89))
    totals = body["totals"]
    # Confirmed: 38 x 2.50 written off; started 6 days before it was found, so 24 days of
    # 2 units/day x 2.50 saved; two counts of 10 minutes at 15.00 an hour.
    assert totals["recovered_value"] == "95.00"
    assert totals["lost_sales_prevented"] == "120.00"
    assert totals["counts_done"] == 2
    assert totals["labour_cost"] == "5.00"
    assert totals["net_value"] == "210.00"
    assert totals["roi"] == 42.0
    assert body["currency"] == "£"


@pytest.mark.parametrize(
    "params",
    [{"period": "day"}, {"start": "2024-02-01", "end": "2024-01-01"}, {"start": "01/02/2024"}],
)
def test_report_endpoints_validate(api_client, params):
    for url in ("/api/v1/effectiveness/", "/api/v1/roi/"):
        assert api_client.get(url, params).status_code == 400
