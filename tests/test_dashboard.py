"""The admin dashboard page: staff only, linked from the index, tiles and chart data from
``dashboard_summary`` on a hand-computed example, a fixed number of queries."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from anomalies.models import Anomaly, AnomalyStatus, Severity
from outcomes.services import outcome_record
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/dashboard/"


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _times(anomaly: Anomaly, *, ack_h: float | None = None, close_h: float | None = None):
    """Set acknowledged/closed ``ack_h`` / ``close_h`` hours after the anomaly was raised."""
    created = anomaly.created_at
    Anomaly.objects.filter(pk=anomaly.pk).update(
        acknowledged_at=created + dt.timedelta(hours=ack_h) if ack_h is not None else None,
        closed_at=created + dt.timedelta(hours=close_h) if close_h is not None else None,
    )


@pytest.fixture
def worked(staff_user):
    """Four findings of the last days: one open, one resolved (true positive, £40 recovered),
    one dismissed as a false positive, one acknowledged."""
    today = timezone.localdate()
    store = LocationFactory(code="S001")
    recent = {
        "location": store,
        "start_date": today - dt.timedelta(days=10),
        "end_date": today - dt.timedelta(days=4),
        "first_detected_on": today - dt.timedelta(days=4),
        "last_detected_on": today - dt.timedelta(days=4),
    }
    AnomalyFactory(**recent, product=ProductFactory(), severity=Severity.CRITICAL)
    ghost = AnomalyFactory(
        **recent,
        product=ProductFactory(unit_price=Decimal("2.50")),
        severity=Severity.WARNING,
        status=AnomalyStatus.RESOLVED,
        details={"expected_units_per_day": 2.0},
    )
    spike = AnomalyFactory(
        **recent,
        anomaly_type="demand_spike",
        severity=Severity.WARNING,
        status=AnomalyStatus.DISMISSED,
        dismiss_reason="false_positive",
    )
    price = AnomalyFactory(
        **recent,
        anomaly_type="price_anomaly",
        severity=Severity.INFO,
        status=AnomalyStatus.ACKNOWLEDGED,
    )
    _times(ghost, ack_h=2, close_h=6)
    _times(spike, ack_h=4, close_h=4)
    _times(price, ack_h=3)
    outcome_record(
        anomaly_id=ghost.pk,
        verdict="true_positive",
        action_taken="cycle_count",
        recovered_value=Decimal("40"),
        actor=staff_user,
    )


def tiles(html: str) -> dict[str, str]:
    pairs = re.findall(
        r'<div class="label">(.*?)</div>\s*<div class="value">(.*?)</div>', html, re.S
    )
    return dict(pairs)


def test_anonymous_and_non_staff_users_are_sent_to_the_login(client):
    assert client.get(URL).status_code == 302
    assert client.get(URL)["Location"].startswith("/admin/login/")
    client.force_login(UserFactory(username="shopper", is_staff=False))
    assert client.get(URL)["Location"].startswith("/admin/login/")


def test_admin_index_links_to_the_dashboard(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert f'<a href="{URL}">Dashboard</a>' in html
    assert 'id="content-main"' in html and "Anomalies" in html  # the app list is still there


def test_dashboard_shows_hand_computed_kpis(admin_client, worked):
    response = admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    shown = tiles(html)
    assert shown["Open anomalies"] == "2"  # the open critical and the acknowledged info
    assert shown["Precision"] == "50%"  # 1 true positive of 2 labelled
    assert shown["Mean time to acknowledge"] == "3.0 h"  # (2 + 4 + 3) / 3
    assert shown["Mean time to resolve"] == "5.0 h"  # (6 + 4) / 2
    # £40 recovered + lost sales prevented: (start + 30 days - first detected = 24 days)
    # x 2 units/day x £2.50 = £120; no counts, no labour.
    assert shown["Net value (ROI)"] == "£160.00"
    assert "£40.00 recovered + £120.00 lost sales prevented − £0.00 labour of 0 counts" in html
    assert '<script src="/static/vendor/chartjs/chart.umd.min.js"></script>' in html


def test_dashboard_chart_data(admin_client, worked):
    html = admin_client.get(URL).content.decode()

    payload = re.search(
        r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S
    ).group(1)
    data = json.loads(payload)
    assert data["severity"] == {
        "labels": ["Critical", "Warning", "Info"],
        "values": [1, 0, 1],
        "colours": ["#ba2121", "#b36b00", "#417690"],
    }
    week = (timezone.localdate() - dt.timedelta(days=4)).isocalendar()
    week_start = dt.date.fromisocalendar(week.year, week.week, 1).isoformat()
    index = data["precision"]["labels"].index(week_start)
    assert data["precision"]["overall"][index] == 50.0
    by_label = {s["label"]: s["data"][index] for s in data["precision"]["series"]}
    assert by_label == {"Demand spike": 0.0, "Ghost stock (phantom inventory)": 100.0}
    assert data["response"]["mtta"][index] == pytest.approx(3.0)
    assert data["response"]["mttr"][index] == pytest.approx(5.0)
    assert sum(data["roi"]["recovered"]) == 40.0
    assert sum(data["roi"]["net"]) == 160.0
    # with an outcome the ROI chart is drawn (no "No outcomes yet")
    assert data["roi"]["empty"] is False
    assert 'id="chart-roi"' in html and "No outcomes yet" not in html


def test_dashboard_query_count_does_not_grow_with_the_data(admin_client, worked):
    with CaptureQueriesContext(connection) as few:
        admin_client.get(URL)
    AnomalyFactory.create_batch(5, first_detected_on=timezone.localdate())
    cache.clear()  # count the computation, not the cached summary
    with CaptureQueriesContext(connection) as many:
        admin_client.get(URL)
    # session, user, the latest day of sales data, then dashboard_summary's 7: open by
    # severity, open value at risk, snoozed count, anomalies frame, counts frame, misses
    # frame, pending counts by location
    assert len(few) == len(many) == 10, [q["sql"] for q in many.captured_queries]


def test_days_parameter_picks_the_window_and_ignores_junk(admin_client):
    assert "last 30 days" in admin_client.get(URL + "?days=30").content.decode()
    assert "last 90 days" in admin_client.get(URL + "?days=abc").content.decode()
    assert "last 90 days" in admin_client.get(URL + "?days=7").content.decode()
