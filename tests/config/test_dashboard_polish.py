"""Branding, the index's dashboard row, and the dashboard's window, money and empty ROI chart
(issue 14, "Branding and polish")."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import AnomalyFactory, DailySalesFactory

pytestmark = pytest.mark.django_db

URL = "/admin/dashboard/"


@pytest.fixture
def admin_client(client, staff_user, settings):
    settings.SHELFWATCH_DASHBOARD_CACHE_SECONDS = 0
    client.force_login(staff_user)
    return client


def _chart_data(html: str) -> dict:
    payload = re.search(
        r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S
    ).group(1)
    return json.loads(payload)


def test_admin_pages_say_shelfwatch_never_django_administration(admin_client, client):
    for url in (reverse("admin:index"), URL, reverse("admin:anomalies_anomaly_changelist")):
        html = admin_client.get(url).content.decode()
        assert "Django administration" not in html and "Django site admin" not in html, url
        assert '<div id="site-name"><a href="/admin/">ShelfWatch</a></div>' in html, url
        assert re.search(r"<title>[^<]*\| ShelfWatch</title>", html), url
    client.logout()
    login = client.get(reverse("admin:login")).content.decode()
    assert "ShelfWatch" in login and "Django administration" not in login


def test_index_dashboard_row_keeps_the_description_out_of_the_nowrap_cell(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    block = html[html.index('id="shelfwatch-dashboard-link"') :]
    block = block[: block.index("</table>")]
    # Django's dashboard.css sets the <td> nowrap and the <th> to the row's width: a long
    # text in the <td> squeezed the link to one letter per line. The <td> holds only "View".
    cells = re.findall(r"<td>(.*?)</td>", block, re.S)
    health = reverse("admin-detector-health")
    assert cells == [
        f'<a href="{URL}" class="viewlink">View</a>',
        f'<a href="{health}" class="viewlink">View</a>',
    ]
    th = re.search(r'<th scope="row">(.*?)</th>', block, re.S).group(1)
    assert f'<a href="{URL}">Dashboard</a>' in th and "precision per type" in th


def test_window_ends_at_the_last_day_of_data_when_that_is_before_today(admin_client):
    data_end = timezone.localdate() - dt.timedelta(days=34)
    DailySalesFactory(date=data_end)
    AnomalyFactory(first_detected_on=data_end - dt.timedelta(days=3))

    html = admin_client.get(URL + "?days=30").content.decode()

    assert f"Data ends {data_end:%Y-%m-%d}; the window ends there." in html
    start = data_end - dt.timedelta(days=29)
    assert f"Findings first detected {start:%Y-%m-%d} – {data_end:%Y-%m-%d}" in html
    assert "No findings in this window." not in html  # the finding 3 days before the end counts


def test_window_ends_today_when_the_data_is_current(admin_client):
    today = timezone.localdate()
    DailySalesFactory(date=today)
    html = admin_client.get(URL + "?days=30").content.decode()
    assert "Data ends" not in html
    assert f"– {today:%Y-%m-%d} (last 30 days)" in html


def test_empty_roi_chart_says_no_outcomes_yet_instead_of_an_axis(admin_client):
    AnomalyFactory(first_detected_on=timezone.localdate())
    html = admin_client.get(URL).content.decode()
    assert 'id="roi-empty"' in html and "No outcomes yet" in html
    assert 'id="chart-roi"' not in html
    assert _chart_data(html)["roi"]["empty"] is True


def test_dashboard_money_is_rounded_to_cents_with_thousands_separators(admin_client):
    today = timezone.localdate()
    AnomalyFactory(first_detected_on=today, value_at_risk=Decimal("1118.60"))
    AnomalyFactory(first_detected_on=today, value_at_risk=Decimal("2464.73"))
    html = admin_client.get(URL).content.decode()
    assert "£3,583.33 at risk" in html


def test_the_triage_list_is_titled_for_what_it_is(admin_client):
    html = admin_client.get(reverse("admin:anomalies_anomaly_changelist")).content.decode()
    assert "<h1>Anomalies to triage</h1>" in html
    assert "Select anomaly to change" not in html
