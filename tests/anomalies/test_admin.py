"""The anomaly admin: changelist columns, filters and search, triage actions, the change page."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from anomalies.models import (
    Anomaly,
    AnomalyActivity,
    AnomalyStatus,
    AnomalyType,
    DetectionChunk,
    DetectionRun,
    DetectorConfig,
    Severity,
)
from anomalies.services.context import anomaly_recent_activity
from inventory.models import Receipt
from tests.factories import (
    AnomalyFactory,
    DailySalesFactory,
    DetectionRunFactory,
    LocationFactory,
    ProductFactory,
    StockLevelFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:anomalies_anomaly_changelist")

# Anomaly changelist, whatever the number of rows (superuser, session login):
#   1. django_session row
#   2. auth_user row
#   3. locations, for the location filter
#   4. distinct product categories, for the category filter
#   5. COUNT(*) of at most 10,001 filtered anomalies (BoundedCountPaginator; no full count)
#   6. the page of anomalies JOIN product, location, assignee (list_select_related)


def listed_ids(response) -> list[int]:
    return [anomaly.pk for anomaly in response.context["cl"].result_list]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- changelist --------------------------------------------------------------------------------


def test_changelist_shows_the_triage_columns(admin_client):
    anomaly = AnomalyFactory(
        severity=Severity.CRITICAL,
        product=ProductFactory(sku="85123A", name="White hanging heart"),
        location=LocationFactory(code="GB"),
        value_at_risk=Decimal("95.00"),
    )

    response = admin_client.get(CHANGELIST)

    assert listed_ids(response) == [anomaly.pk]
    html = response.content.decode()
    assert "85123A" in html
    assert "White hanging heart" in html
    assert ">GB<" in html
    assert "95.00" in html
    assert "Critical</span>" in html
    assert "No sales for 6 days" in html
    assert 'value="acknowledge"' in html
    assert 'value="dismiss_false_positive"' in html
    assert 'value="delete_selected"' not in html


def test_changelist_filters(admin_client, staff_user):
    gb = LocationFactory(code="GB")
    fr = LocationFactory(code="FR")
    toys = ProductFactory(category="Toys")
    food = ProductFactory(category="Food")
    a = AnomalyFactory(
        location=gb,
        product=toys,
        status=AnomalyStatus.OPEN,
        anomaly_type=AnomalyType.GHOST_STOCK,
        last_detected_on=dt.date(2024, 3, 31),
    )
    b = AnomalyFactory(
        location=fr,
        product=food,
        status=AnomalyStatus.ACKNOWLEDGED,
        anomaly_type=AnomalyType.PRICE_ANOMALY,
        severity=Severity.CRITICAL,
        assignee=staff_user,
        last_detected_on=dt.date(2024, 3, 28),
    )
    c = AnomalyFactory(
        location=fr,
        product=toys,
        status=AnomalyStatus.RESOLVED,
        anomaly_type=AnomalyType.DEMAND_SPIKE,
        assignee=UserFactory(username="bob"),
        last_detected_on=dt.date(2024, 2, 1),
    )

    def ids(query: str) -> set[int]:
        return set(listed_ids(admin_client.get(f"{CHANGELIST}?{query}")))

    assert ids("") == {a.pk, b.pk, c.pk}
    assert ids("status__exact=open") == {a.pk}
    assert ids("anomaly_type__exact=price_anomaly") == {b.pk}
    assert ids("severity__exact=critical") == {b.pk}
    assert ids(f"location={fr.pk}") == {b.pk, c.pk}
    assert ids("category=Toys") == {a.pk, c.pk}
    # "Latest run" and "last 7 days" count back from the newest last_detected_on (31 March).
    assert ids("detected=1") == {a.pk}
    assert ids("detected=7") == {a.pk, b.pk}
    assert ids("detected=30") == {a.pk, b.pk}
    assert ids("assignee=me") == {b.pk}
    assert ids("assignee=none") == {a.pk}
    assert ids(f"location={fr.pk}&category=Toys") == {c.pk}


def test_changelist_search(admin_client):
    a = AnomalyFactory(
        product=ProductFactory(sku="85123A", name="White hanging heart"),
        location=LocationFactory(code="GB"),
        explanation="No sales for 9 days",
    )
    b = AnomalyFactory(
        product=ProductFactory(sku="22423", name="Regency cakestand"),
        location=LocationFactory(code="FR"),
        explanation="Price 40% below regular",
    )

    def ids(term: str) -> set[int]:
        return set(listed_ids(admin_client.get(CHANGELIST, {"q": term})))

    assert ids("85123A") == {a.pk}
    assert ids("cakestand") == {b.pk}
    assert ids("FR") == {b.pk}
    assert ids("below regular") == {b.pk}
    assert ids("nothing-like-this") == set()


# --- actions -----------------------------------------------------------------------------------


def post_action(client, action: str, anomalies: list[Anomaly]):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [a.pk for a in anomalies], "index": 0},
        follow=True,
    )


def test_acknowledge_action_changes_open_rows_and_reports_counts(admin_client, staff_user):
    open_rows = AnomalyFactory.create_batch(2)
    resolved = AnomalyFactory(status=AnomalyStatus.RESOLVED)

    response = post_action(admin_client, "acknowledge", [*open_rows, resolved])

    assert messages_of(response) == ["2 anomalies acknowledged; 1 skipped (1 resolved)."]
    statuses = dict(Anomaly.objects.values_list("pk", "status"))
    assert statuses == {
        open_rows[0].pk: AnomalyStatus.ACKNOWLEDGED,
        open_rows[1].pk: AnomalyStatus.ACKNOWLEDGED,
        resolved.pk: AnomalyStatus.RESOLVED,
    }
    assert set(Anomaly.objects.filter(assignee=staff_user).values_list("pk", flat=True)) == {
        a.pk for a in open_rows
    }
    assert AnomalyActivity.objects.filter(action="acknowledge", actor=staff_user).count() == 2


def test_assign_to_me_action(admin_client, staff_user):
    rows = AnomalyFactory.create_batch(3)
    AnomalyFactory(status=AnomalyStatus.DISMISSED)

    response = post_action(admin_client, "assign_to_me", rows)

    assert messages_of(response) == ["3 anomalies assigned."]
    assert Anomaly.objects.filter(assignee=staff_user).count() == 3


def test_resolve_action(admin_client):
    rows = [AnomalyFactory(), AnomalyFactory(status=AnomalyStatus.ACKNOWLEDGED)]
    dismissed = AnomalyFactory(status=AnomalyStatus.DISMISSED)

    response = post_action(admin_client, "resolve", [*rows, dismissed])

    assert messages_of(response) == ["2 anomalies resolved; 1 skipped (1 dismissed)."]
    assert Anomaly.objects.filter(status=AnomalyStatus.RESOLVED).count() == 2


@pytest.mark.parametrize(
    ("action", "reason"),
    [("dismiss_false_positive", "false_positive"), ("dismiss_expected", "expected")],
)
def test_dismiss_actions_record_the_reason(admin_client, action, reason):
    anomaly = AnomalyFactory()

    response = post_action(admin_client, action, [anomaly])

    assert messages_of(response) == ["1 anomaly dismissed."]
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.DISMISSED
    assert AnomalyActivity.objects.get(anomaly=anomaly).note == f"reason: {reason}"


def test_action_with_nothing_to_change_warns(admin_client):
    resolved = AnomalyFactory(status=AnomalyStatus.RESOLVED)

    response = post_action(admin_client, "resolve", [resolved])

    [message] = list(get_messages(response.wsgi_request))
    assert str(message) == "0 anomalies resolved; 1 skipped (1 resolved)."
    assert message.level_tag == "warning"


# --- change page -------------------------------------------------------------------------------


def table_rows(html: str, table_class: str) -> list[list[str]]:
    table = re.search(rf'<table class="{table_class}".*?</table>', html, re.S).group(0)
    body = table.split("<tbody>", 1)[1]
    return [
        [
            re.sub(r"\s+", " ", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


@pytest.fixture
def anomaly_with_history():
    product = ProductFactory(sku="85123A")
    location = LocationFactory(code="GB")
    anomaly = AnomalyFactory(
        product=product,
        location=location,
        start_date=dt.date(2024, 1, 20),
        end_date=dt.date(2024, 1, 25),
        expected_value=4.2,
        actual_value=0.0,
        value_at_risk=Decimal("95.00"),
        details={"days_without_sales": 6, "on_hand": 38},
    )
    DailySalesFactory(
        product=product,
        location=location,
        date=dt.date(2024, 1, 10),
        units_sold=5,
        units_returned=1,
        unit_price=Decimal("2.40"),
    )
    DailySalesFactory(product=product, location=location, date=dt.date(2024, 1, 19), units_sold=7)
    # Another SKU at the same store and a sale after end_date must not show up.
    DailySalesFactory(location=location, date=dt.date(2024, 1, 19), units_sold=99)
    DailySalesFactory(product=product, location=location, date=dt.date(2024, 1, 26), units_sold=50)
    StockLevelFactory(product=product, location=location, date=dt.date(2024, 1, 19), on_hand=38)
    StockLevelFactory(product=product, location=location, date=dt.date(2024, 1, 25), on_hand=38)
    Receipt.objects.create(product=product, location=location, date=dt.date(2024, 1, 12), units=24)
    return anomaly


def test_recent_activity_has_one_row_per_day_with_zeros_for_days_without_sales(
    anomaly_with_history,
):
    rows = anomaly_recent_activity(anomaly=anomaly_with_history)

    assert len(rows) == 28
    assert rows[0]["date"] == dt.date(2023, 12, 29)
    assert rows[-1]["date"] == dt.date(2024, 1, 25)
    by_day = {row["date"]: row for row in rows}
    assert by_day[dt.date(2024, 1, 10)] == {
        "date": dt.date(2024, 1, 10),
        "units_sold": 5,
        "units_returned": 1,
        "unit_price": Decimal("2.40"),
        "on_hand": None,
        "receipts": 0,
        "in_anomaly": False,
    }
    assert by_day[dt.date(2024, 1, 11)]["units_sold"] == 0
    assert by_day[dt.date(2024, 1, 12)]["receipts"] == 24
    assert by_day[dt.date(2024, 1, 19)]["units_sold"] == 7
    assert by_day[dt.date(2024, 1, 19)]["on_hand"] == 38
    assert [row["date"].day for row in rows if row["in_anomaly"]] == [20, 21, 22, 23, 24, 25]
    assert sum(row["units_sold"] for row in rows) == 12


def test_recent_activity_of_location_level_anomaly_totals_the_location():
    location = LocationFactory()
    anomaly = AnomalyFactory(product=None, location=location, end_date=dt.date(2024, 1, 25))
    DailySalesFactory(location=location, date=dt.date(2024, 1, 25), units_sold=3)
    DailySalesFactory(location=location, date=dt.date(2024, 1, 25), units_sold=4)
    DailySalesFactory(date=dt.date(2024, 1, 25), units_sold=100)  # another location

    rows = anomaly_recent_activity(anomaly=anomaly, days=7)

    assert len(rows) == 7
    assert rows[-1]["units_sold"] == 7
    assert rows[-1]["unit_price"] is None


def test_change_page_shows_the_finding_and_the_sales_and_stock_table(
    admin_client, staff_user, anomaly_with_history
):
    anomaly = anomaly_with_history
    AnomalyActivity.objects.create(
        anomaly=anomaly, actor=staff_user, action="acknowledge", from_status="open",
        to_status="acknowledged", note="looking at it",
    )  # fmt: skip

    response = admin_client.get(reverse("admin:anomalies_anomaly_change", args=[anomaly.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert anomaly.explanation in html
    summary = re.search(r'id="anomaly-summary".*?</fieldset>', html, re.S).group(0)
    assert "<dt>Expected</dt><dd>4.20</dd>" in summary
    assert "<dt>Actual</dt><dd>0.00</dd>" in summary
    assert "<dt>Value at risk</dt><dd>£95.00</dd>" in summary
    assert "&quot;days_without_sales&quot;: 6" in html  # details, pretty-printed
    rows = table_rows(html, "recent-activity")
    assert len(rows) == 28
    by_day = {row[0]: row[1:] for row in rows}
    # units sold, returned, realized price, on hand, receipts
    assert by_day["Wed 2024-01-10"] == ["5", "1", "2.40", "—", "0"]
    assert by_day["Thu 2024-01-11"] == ["0", "0", "—", "—", "0"]
    assert by_day["Fri 2024-01-12"] == ["0", "0", "—", "—", "24"]
    assert by_day["Fri 2024-01-19"] == ["7", "0", "2.50", "38", "0"]
    assert by_day["Thu 2024-01-25"] == ["0", "0", "—", "38", "0"]
    log = re.search(r'id="activity-log".*?</table>', html, re.S).group(0)
    assert "looking at it" in log
    assert "open → acknowledged" in log


def test_change_page_status_is_read_only_and_only_assignee_is_editable(admin_client):
    anomaly = AnomalyFactory()

    response = admin_client.get(reverse("admin:anomalies_anomaly_change", args=[anomaly.pk]))

    assert list(response.context["adminform"].form.fields) == ["assignee"]


def test_saving_assignee_goes_through_the_triage_service(admin_client, staff_user):
    anomaly = AnomalyFactory()
    bob = UserFactory(username="bob")

    response = admin_client.post(
        reverse("admin:anomalies_anomaly_change", args=[anomaly.pk]),
        {"assignee": bob.pk, "_save": "Save"},
    )

    assert response.status_code == 302
    anomaly.refresh_from_db()
    assert anomaly.assignee == bob
    assert anomaly.status == AnomalyStatus.OPEN
    activity = AnomalyActivity.objects.get(anomaly=anomaly)
    assert (activity.action, activity.actor, activity.note) == (
        "assign",
        staff_user,
        "assigned to bob",
    )


def test_assignee_of_a_closed_anomaly_cannot_change(admin_client):
    anomaly = AnomalyFactory(status=AnomalyStatus.RESOLVED)
    bob = UserFactory(username="bob")

    response = admin_client.post(
        reverse("admin:anomalies_anomaly_change", args=[anomaly.pk]),
        {"assignee": bob.pk, "_save": "Save"},
    )

    assert response.status_code == 200
    assert "its assignee can no longer change" in response.content.decode()
    anomaly.refresh_from_db()
    assert anomaly.assignee is None
    assert not AnomalyActivity.objects.exists()


def test_anomalies_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:anomalies_anomaly_add")).status_code == 403


# --- other anomaly admins ----------------------------------------------------------------------


def test_detection_run_admin_is_a_read_only_list(admin_client):
    run = DetectionRunFactory(
        trigger="schedule",
        duration_seconds=3.25,
        counts={
            "ghost_stock": {"findings": 4, "new": 3, "extended": 1},
            "ml_detected": {"findings": 0, "skipped": True},
        },
    )

    response = admin_client.get(reverse("admin:anomalies_detectionrun_changelist"))
    html = response.content.decode()

    assert "4 findings: 3 new, 1 extended; 1 detector(s) skipped" in html
    assert "3.2 s" in html
    assert admin_client.get(reverse("admin:anomalies_detectionrun_add")).status_code == 403
    detail = admin_client.get(reverse("admin:anomalies_detectionrun_change", args=[run.pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()


def test_detector_config_admin_validates_params(admin_client):
    # every detector has its row after migrate (anomalies.services.detector_settings)
    config = DetectorConfig.objects.get(detector="ghost_stock")
    url = reverse("admin:anomalies_detectorconfig_change", args=[config.pk])
    response = admin_client.post(url, {"enabled": "on", "params": '{"no_such_param": 1}'})

    assert response.status_code == 200
    assert "Unknown parameter(s) no_such_param" in response.content.decode()
    assert DetectorConfig.objects.get(pk=config.pk).params == {}

    response = admin_client.post(url, {"params": "{}"})
    assert response.status_code == 302
    assert DetectorConfig.objects.get(pk=config.pk).enabled is False


def test_activity_admin_lists_the_log(admin_client, staff_user):
    anomaly = AnomalyFactory()
    AnomalyActivity.objects.create(
        anomaly=anomaly, actor=staff_user, action="resolve", from_status="open",
        to_status="resolved", note="fixed the count",
    )  # fmt: skip

    response = admin_client.get(reverse("admin:anomalies_anomalyactivity_changelist"))

    assert "fixed the count" in response.content.decode()
    assert admin_client.get(reverse("admin:anomalies_anomalyactivity_add")).status_code == 403


def test_root_cause_group_is_linked_both_ways_and_filterable(admin_client):
    outage = AnomalyFactory(anomaly_type="pos_outage", product=None)
    child = AnomalyFactory(location=outage.location, parent=outage)
    other = AnomalyFactory()
    page = admin_client.get(reverse("admin:anomalies_anomaly_change", args=[child.pk]))
    assert f"#{outage.pk}" in page.content.decode()
    page = admin_client.get(reverse("admin:anomalies_anomaly_change", args=[outage.pk]))
    assert "1 anomalies with the same root cause" in page.content.decode()
    changelist = reverse("admin:anomalies_anomaly_changelist")
    assert listed_ids(admin_client.get(changelist + f"?parent__id__exact={outage.pk}")) == [
        child.pk
    ]
    assert sorted(listed_ids(admin_client.get(changelist + "?grouped=no"))) == sorted(
        [outage.pk, other.pk]
    )
    assert listed_ids(admin_client.get(changelist + "?grouped=yes")) == [child.pk]


def test_detection_run_page_lists_its_chunks(admin_client):
    run = DetectionRun.objects.create(as_of=dt.date(2025, 1, 5), status="succeeded")
    DetectionChunk.objects.create(
        run=run,
        index=0,
        location_ids=[1, 2, 3],
        status="succeeded",
        worker="host-a:123",
        series=2500,
        counts={"ghost_stock": {"findings": 4}, "price_anomaly": {"findings": 1}},
    )
    page = admin_client.get(reverse("admin:anomalies_detectionrun_change", args=[run.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "host-a:123" in text and "2500" in text
    assert re.search(r'field-findings">\s*<p>5</p>', text)
