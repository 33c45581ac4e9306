"""The anomaly page's one-click triage: toolbar, record count, pending count, similar + merge.

Element ids and names are the issue-14 UI contract the browser tests rely on.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from anomalies.models import ActivityAction, Anomaly, AnomalyActivity, AnomalyStatus, AnomalyType
from common.roles import OPS_MANAGER, STORE_STAFF, VIEWER
from inventory.models import StockAdjustment, StockLevel
from outcomes.models import CycleCount, Outcome
from outcomes.services.cycle_counts import cycle_count_request
from tests.conftest import grant_role
from tests.factories import (
    AnomalyFactory,
    LocationFactory,
    ProductFactory,
    StockLevelFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

LAST_DATA_DAY = dt.date(2024, 1, 31)  # the imported data ends long before today


def change_url(anomaly: Anomaly) -> str:
    return reverse("admin:anomalies_anomaly_change", args=[anomaly.pk])


def triage_url(anomaly: Anomaly) -> str:
    return reverse("admin:anomalies_anomaly_triage", args=[anomaly.pk])


def merge_url(anomaly: Anomaly) -> str:
    return reverse("admin:anomalies_anomaly_merge", args=[anomaly.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def has_delete_link(html: str, anomaly: Anomaly) -> bool:
    # The assignee widget's "delete user" icon is another model's; this page's own link is
    # Django's ``<a ... class="deletelink">`` to the anomaly's delete view.
    url = reverse("admin:anomalies_anomaly_delete", args=[anomaly.pk])
    return 'class="deletelink"' in html or url in html


def button_values(html: str) -> set[str]:
    return set(re.findall(r'<button type="submit" name="action" value="([a-z_]+)"', html))


@pytest.fixture
def store_a():
    return LocationFactory(code="STORE-01")


@pytest.fixture
def store_b():
    return LocationFactory(code="STORE-02")


@pytest.fixture
def ghost(store_a):
    """The README's ghost-stock finding: 33 units on the books, the shelf holds 13."""
    product = ProductFactory(sku="SKU-0042", category="Dairy", unit_price=Decimal("55.93"))
    StockLevelFactory(product=product, location=store_a, date=LAST_DATA_DAY, on_hand=33)
    StockLevelFactory(
        product=product, location=store_a, date=LAST_DATA_DAY - dt.timedelta(days=1), on_hand=33
    )
    return AnomalyFactory(
        product=product,
        location=store_a,
        start_date=dt.date(2024, 1, 25),
        end_date=LAST_DATA_DAY,
        value_at_risk=Decimal("1118.6"),
    )


@pytest.fixture
def users(store_a):
    return {
        "viewer": grant_role(UserFactory(username="viewer"), VIEWER, locations=[store_a]),
        "staff": grant_role(UserFactory(username="staff"), STORE_STAFF, locations=[store_a]),
        "ops": grant_role(UserFactory(username="opsman"), OPS_MANAGER),
        "admin": UserFactory(username="root", is_superuser=True),
    }


# --- the page ----------------------------------------------------------------------------------


def test_page_has_the_triage_toolbar_the_count_form_and_no_delete_link(users, ghost):
    response = login(users["staff"]).get(change_url(ghost))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<div id="triage-actions"' in html
    assert button_values(html) == {
        "acknowledge",
        "assign_to_me",
        "resolve",
        "snooze",
        "dismiss",
        "request_count",
    }
    assert f'action="{triage_url(ghost)}"' in html
    assert '<select name="days"' in html and '<input type="date" name="until"' in html
    assert '<select name="reason"' in html and 'value="false_positive"' in html
    assert '<form method="post" action="' in html and 'id="record-count-form"' in html
    assert 'name="counted_quantity" id="id_counted_quantity"' in html
    assert 'id="record-count-submit"' in html
    # The count date is the last day with stock data for this SKU here, not today.
    assert f'id="id_counted_on" value="{LAST_DATA_DAY:%Y-%m-%d}"' in html
    assert timezone.localdate() > LAST_DATA_DAY
    assert not has_delete_link(html, ghost)
    assert '<div class="module" id="similar-anomalies">' in html
    assert "£1,118.60" in html  # value at risk, as people read money


def test_findings_cannot_be_deleted_even_by_a_superuser(users, ghost):
    client = login(users["admin"])

    page = client.get(change_url(ghost)).content.decode()
    delete = client.post(
        reverse("admin:anomalies_anomaly_delete", args=[ghost.pk]), {"post": "yes"}
    )

    assert not has_delete_link(page, ghost)
    assert delete.status_code == 403
    assert Anomaly.objects.filter(pk=ghost.pk).exists()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (AnomalyStatus.OPEN, {"acknowledge", "assign_to_me", "snooze", "resolve", "dismiss"}),
        (AnomalyStatus.ACKNOWLEDGED, {"assign_to_me", "snooze", "resolve", "dismiss"}),
        (AnomalyStatus.SNOOZED, {"assign_to_me", "snooze", "unsnooze", "resolve", "dismiss"}),
        (AnomalyStatus.RESOLVED, set()),
        (AnomalyStatus.DISMISSED, set()),
    ],
)
def test_buttons_follow_the_status(users, store_a, status, expected):
    extra = {"snoozed_until": timezone.localdate() + dt.timedelta(days=3)}
    anomaly = AnomalyFactory(
        location=store_a,
        anomaly_type=AnomalyType.DEMAND_SPIKE,  # not countable: no count buttons
        status=status,
        **(extra if status == AnomalyStatus.SNOOZED else {}),
    )

    html = login(users["staff"]).get(change_url(anomaly)).content.decode()

    assert button_values(html) == expected
    assert 'id="record-count-form"' not in html


def test_assign_to_me_is_not_offered_to_the_assignee(users, store_a):
    anomaly = AnomalyFactory(location=store_a, assignee=users["staff"])

    html = login(users["staff"]).get(change_url(anomaly)).content.decode()

    assert "assign_to_me" not in button_values(html)


@pytest.mark.parametrize("role", ["viewer", "staff", "ops", "admin"])
def test_only_roles_that_triage_see_the_buttons(users, ghost, role):
    html = login(users[role]).get(change_url(ghost)).content.decode()

    triages = role != "viewer"
    assert ('id="triage-actions"' in html) is triages
    assert ('id="record-count-form"' in html) is triages
    assert ('id="merge-form"' in html) is False  # nothing similar here
    assert not has_delete_link(html, ghost)


def test_count_focus_script_is_on_the_page(users, ghost):
    html = login(users["staff"]).get(change_url(ghost) + "?count=1").content.decode()

    assert 'window.location.hash === "#record-count"' in html
    assert 'get("count") === "1"' in html
    assert '<div id="record-count"' in html


# --- the triage view: per role and store -------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "store", "code", "status"),
    [
        ("viewer", "A", 403, AnomalyStatus.OPEN),
        ("staff", "A", 302, AnomalyStatus.ACKNOWLEDGED),
        ("staff", "B", 404, AnomalyStatus.OPEN),
        ("ops", "A", 302, AnomalyStatus.ACKNOWLEDGED),
        ("ops", "B", 302, AnomalyStatus.ACKNOWLEDGED),
        ("admin", "B", 302, AnomalyStatus.ACKNOWLEDGED),
    ],
)
def test_triage_post_per_role_and_store(users, store_a, store_b, role, store, code, status):
    anomaly = AnomalyFactory(location=store_a if store == "A" else store_b)

    response = login(users[role]).post(triage_url(anomaly), {"action": "acknowledge"})

    assert response.status_code == code
    anomaly.refresh_from_db()
    assert anomaly.status == status
    if code == 302:
        assert response["Location"] == change_url(anomaly)


@pytest.mark.parametrize(
    ("role", "code", "counted"),
    [("viewer", 403, False), ("staff", 302, True), ("ops", 302, True), ("admin", 302, True)],
)
def test_record_count_post_per_role(users, ghost, role, code, counted):
    response = login(users[role]).post(
        triage_url(ghost), {"action": "record_count", "counted_quantity": "13"}
    )

    assert response.status_code == code
    assert CycleCount.objects.filter(status="counted").exists() is counted


@pytest.mark.parametrize(("role", "code"), [("viewer", 403), ("staff", 302), ("ops", 302)])
def test_request_count_post_per_role(users, ghost, role, code):
    response = login(users[role]).post(triage_url(ghost), {"action": "request_count"})

    assert response.status_code == code
    assert CycleCount.objects.filter(anomaly=ghost).exists() is (code == 302)


def test_staff_cannot_count_a_finding_of_another_store(users, store_b):
    other = AnomalyFactory(location=store_b)

    response = login(users["staff"]).post(
        triage_url(other), {"action": "record_count", "counted_quantity": "1"}
    )

    assert response.status_code == 404
    assert not CycleCount.objects.exists()


def test_the_triage_url_takes_only_posts(users, ghost):
    response = login(users["staff"]).get(triage_url(ghost))

    assert response.status_code == 405
    assert response["Allow"] == "POST"


# --- each action -------------------------------------------------------------------------------


def test_acknowledge_claims_it_and_says_so(users, ghost):
    response = login(users["staff"]).post(
        triage_url(ghost), {"action": "acknowledge", "expected_status": "open"}
    )

    ghost.refresh_from_db()
    assert (ghost.status, ghost.assignee) == (AnomalyStatus.ACKNOWLEDGED, users["staff"])
    assert messages_of(response) == ["Acknowledged and assigned to you."]


def test_assign_to_me(users, ghost):
    response = login(users["staff"]).post(triage_url(ghost), {"action": "assign_to_me"})

    ghost.refresh_from_db()
    assert ghost.assignee == users["staff"]
    assert ghost.status == AnomalyStatus.OPEN
    assert messages_of(response) == ["Assigned to you."]


def test_snooze_for_days(users, ghost):
    response = login(users["staff"]).post(triage_url(ghost), {"action": "snooze", "days": "3"})

    ghost.refresh_from_db()
    until = timezone.localdate() + dt.timedelta(days=3)
    assert (ghost.status, ghost.snoozed_until) == (AnomalyStatus.SNOOZED, until)
    assert messages_of(response)[0].startswith(f"Snoozed until {until:%Y-%m-%d}")


def test_snooze_until_a_date_wins_over_days(users, ghost):
    until = timezone.localdate() + dt.timedelta(days=20)

    login(users["staff"]).post(
        triage_url(ghost), {"action": "snooze", "days": "7", "until": until.isoformat()}
    )

    ghost.refresh_from_db()
    assert ghost.snoozed_until == until


def test_snooze_into_the_past_is_refused_with_the_reason(users, ghost):
    response = login(users["staff"]).post(
        triage_url(ghost), {"action": "snooze", "until": "2020-01-01"}
    )

    ghost.refresh_from_db()
    assert ghost.status == AnomalyStatus.OPEN
    assert "Snooze until a day after today" in messages_of(response)[0]


def test_unsnooze(users, store_a):
    anomaly = AnomalyFactory(
        location=store_a,
        status=AnomalyStatus.SNOOZED,
        snoozed_until=timezone.localdate() + dt.timedelta(days=3),
    )

    response = login(users["staff"]).post(triage_url(anomaly), {"action": "unsnooze"})

    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.OPEN
    assert messages_of(response) == ["Unsnoozed: the anomaly is open again."]


def test_resolve(users, ghost):
    response = login(users["staff"]).post(triage_url(ghost), {"action": "resolve"})

    ghost.refresh_from_db()
    assert ghost.status == AnomalyStatus.RESOLVED
    assert messages_of(response) == ["Resolved."]


def test_dismiss_with_reason_and_note(users, ghost):
    response = login(users["staff"]).post(
        triage_url(ghost), {"action": "dismiss", "reason": "expected", "note": "promo week"}
    )

    ghost.refresh_from_db()
    assert (ghost.status, ghost.dismiss_reason) == (AnomalyStatus.DISMISSED, "expected")
    assert messages_of(response) == ["Dismissed as expected."]
    note = AnomalyActivity.objects.get(anomaly=ghost, action=ActivityAction.DISMISS).note
    assert note == "reason: expected; promo week"


def test_dismiss_without_a_reason_changes_nothing(users, ghost):
    response = login(users["staff"]).post(triage_url(ghost), {"action": "dismiss"})

    ghost.refresh_from_db()
    assert ghost.status == AnomalyStatus.OPEN
    assert messages_of(response) == ["Nothing was changed. Reason: Choose why it needs no action."]


def test_a_stale_page_is_refused_not_applied(users, ghost):
    Anomaly.objects.filter(pk=ghost.pk).update(status=AnomalyStatus.ACKNOWLEDGED)

    response = login(users["staff"]).post(
        triage_url(ghost), {"action": "resolve", "expected_status": "open"}
    )

    ghost.refresh_from_db()
    assert ghost.status == AnomalyStatus.ACKNOWLEDGED
    assert "changed by someone else: now acknowledged" in messages_of(response)[0]


def test_an_unknown_action_changes_nothing(users, ghost):
    response = login(users["staff"]).post(triage_url(ghost), {"action": "delete"})

    assert response.status_code == 302
    ghost.refresh_from_db()
    assert ghost.status == AnomalyStatus.OPEN
    assert messages_of(response)[0].startswith("Nothing was changed.")


# --- counts from the page ----------------------------------------------------------------------


def test_request_count_logs_it_and_the_page_shows_it_pending(users, ghost):
    client = login(users["staff"])

    response = client.post(triage_url(ghost), {"action": "request_count"})

    count = CycleCount.objects.get(anomaly=ghost)
    assert messages_of(response) == [
        "Cycle count of SKU-0042 at STORE-01 requested (book stock 33 units); "
        "record what you count below."
    ]
    activity = AnomalyActivity.objects.get(anomaly=ghost, action=ActivityAction.COUNT_REQUESTED)
    assert (activity.actor, activity.to_status) == (users["staff"], AnomalyStatus.OPEN)
    html = client.get(change_url(ghost)).content.decode()
    assert '<span class="count-pending">count requested' in html
    assert reverse("admin:outcomes_cyclecount_change", args=[count.pk]) in html
    assert "request_count" not in button_values(html)  # one open count is enough
    assert 'id="record-count-form"' in html
    assert "Cycle count requested" in html  # the activity log, in words


def test_a_control_count_of_the_sku_is_shown_pending_and_recorded_on_its_own_page(users, ghost):
    control = CycleCount.objects.create(
        product=ghost.product, location=ghost.location, is_control=True, book_on_hand=33
    )

    html = login(users["staff"]).get(change_url(ghost)).content.decode()

    assert "(a control count of this SKU here)" in html
    assert reverse("admin:outcomes_cyclecount_change", args=[control.pk]) in html
    assert 'id="record-count-form"' not in html
    assert "request_count" not in button_values(html)


def test_requesting_again_says_it_is_already_requested(users, ghost):
    cycle_count_request(anomaly_id=ghost.pk, actor=users["staff"])

    response = login(users["staff"]).post(triage_url(ghost), {"action": "request_count"})

    assert CycleCount.objects.count() == 1
    assert messages_of(response)[0].startswith("A cycle count of SKU-0042 at STORE-01 was already")


def test_record_count_in_one_post_resolves_the_finding_and_says_so_in_words(users, ghost):
    response = login(users["staff"]).post(
        triage_url(ghost),
        {
            "action": "record_count",
            "counted_quantity": "13",
            "counted_on": LAST_DATA_DAY.isoformat(),
        },
    )

    assert response.status_code == 302
    assert response["Location"] == change_url(ghost)
    assert messages_of(response) == [
        "Counted 13 units of SKU-0042 at STORE-01 on 2024-01-31 (book 33): book stock "
        "corrected to 13; the ghost-stock finding is resolved; £1,118.60 recovered."
    ]
    count = CycleCount.objects.get()
    assert (count.anomaly, count.status, count.counted_quantity) == (ghost, "counted", 13)
    ghost.refresh_from_db()
    assert ghost.status == AnomalyStatus.RESOLVED
    assert Outcome.objects.get(anomaly=ghost).recovered_value == Decimal("1118.60")
    assert StockLevel.objects.get(product=ghost.product, date=LAST_DATA_DAY).on_hand == 13
    actions = list(
        AnomalyActivity.objects.filter(anomaly=ghost)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["count_requested", "resolve", "outcome"]


def test_record_count_without_a_date_uses_the_last_day_with_stock_data(users, ghost):
    login(users["staff"]).post(
        triage_url(ghost), {"action": "record_count", "counted_quantity": "33", "counted_on": ""}
    )

    count = CycleCount.objects.get()
    assert count.counted_on == LAST_DATA_DAY
    assert StockAdjustment.objects.get().book_before == 33


def test_record_count_records_the_open_count(users, ghost):
    open_count = cycle_count_request(anomaly_id=ghost.pk, actor=users["staff"])

    login(users["staff"]).post(
        triage_url(ghost), {"action": "record_count", "counted_quantity": "0"}
    )

    assert list(CycleCount.objects.values_list("pk", "status")) == [(open_count.pk, "counted")]


def test_a_bad_count_writes_nothing_not_even_the_request(users, ghost):
    response = login(users["staff"]).post(
        triage_url(ghost), {"action": "record_count", "counted_quantity": "-2"}
    )

    assert response["Location"] == change_url(ghost) + "?count=1"
    assert messages_of(response) == [
        "Nothing was changed. Units counted: A count cannot be negative."
    ]
    assert not CycleCount.objects.exists()


def test_a_count_date_in_the_future_is_refused_and_rolls_back_the_request(users, ghost):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    response = login(users["staff"]).post(
        triage_url(ghost),
        {"action": "record_count", "counted_quantity": "2", "counted_on": tomorrow.isoformat()},
    )

    assert "is in the future" in messages_of(response)[0]
    assert not CycleCount.objects.exists()
    assert not AnomalyActivity.objects.filter(anomaly=ghost).exists()


def test_an_uncountable_finding_gets_no_count_form_and_a_refusal(users, store_a):
    spike = AnomalyFactory(location=store_a, anomaly_type=AnomalyType.DEMAND_SPIKE)

    html = login(users["staff"]).get(change_url(spike)).content.decode()
    response = login(users["staff"]).post(
        triage_url(spike), {"action": "record_count", "counted_quantity": "2"}
    )

    assert 'id="record-count-form"' not in html
    assert "cannot be counted" in messages_of(response)[0]
    assert not CycleCount.objects.exists()


# --- similar anomalies and merge ---------------------------------------------------------------


@pytest.fixture
def similar(ghost, store_a, store_b):
    """Around the ghost finding: what is similar, and what is not."""
    same_sku_b = AnomalyFactory(
        product=ghost.product,
        location=store_b,
        start_date=dt.date(2024, 1, 28),
        end_date=dt.date(2024, 1, 29),
        anomaly_type=AnomalyType.PRICE_ANOMALY,
    )
    dairy_here = AnomalyFactory(
        product=ProductFactory(sku="MILK", category="Dairy"),
        location=store_a,
        start_date=dt.date(2024, 1, 30),
        end_date=dt.date(2024, 1, 30),
    )
    return {
        "same_sku_b": same_sku_b,
        "dairy_here": dairy_here,
        # not similar: other category, other days, closed, other category elsewhere
        "bread_here": AnomalyFactory(product=ProductFactory(category="Bakery"), location=store_a),
        "dairy_before": AnomalyFactory(
            product=ProductFactory(category="Dairy"),
            location=store_a,
            start_date=dt.date(2024, 1, 1),
            end_date=dt.date(2024, 1, 3),
        ),
        "closed": AnomalyFactory(
            product=ghost.product,
            location=store_b,
            start_date=dt.date(2024, 1, 30),
            end_date=dt.date(2024, 1, 30),
            status=AnomalyStatus.RESOLVED,
            closed_at=timezone.now(),
        ),
    }


def similar_ids(response) -> list[int]:
    return [row.anomaly.pk for row in response.context["similar_anomalies"]]


def test_similar_block_lists_same_sku_elsewhere_and_same_category_here(users, ghost, similar):
    response = login(users["ops"]).get(change_url(ghost))

    assert similar_ids(response) == [similar["same_sku_b"].pk, similar["dairy_here"].pk]
    html = response.content.decode()
    assert "same SKU at another store" in html and "same category at this store" in html
    assert f'name="anomalies" value="{similar["same_sku_b"].pk}"' in html
    assert 'id="merge-submit"' in html


def test_similar_block_is_limited_to_the_users_stores(users, ghost, similar):
    response = login(users["staff"]).get(change_url(ghost))

    assert similar_ids(response) == [similar["dairy_here"].pk]


def test_viewers_see_similar_anomalies_but_cannot_merge(users, ghost, similar):
    html = login(users["viewer"]).get(change_url(ghost)).content.decode()

    assert "same category at this store" in html
    assert 'name="anomalies"' not in html and 'id="merge-submit"' not in html


def test_merge_groups_the_ticked_findings_under_this_one_and_logs_it(users, ghost, similar):
    chosen = [similar["same_sku_b"].pk, similar["dairy_here"].pk]

    response = login(users["ops"]).post(merge_url(ghost), {"anomalies": chosen})

    assert response["Location"] == change_url(ghost) + "#similar-anomalies"
    assert messages_of(response) == ["2 similar anomalies grouped under this one."]
    assert sorted(Anomaly.objects.filter(parent=ghost).values_list("pk", flat=True)) == sorted(
        chosen
    )
    merges = AnomalyActivity.objects.filter(action=ActivityAction.MERGE)
    assert sorted(merges.values_list("anomaly_id", flat=True)) == sorted([*chosen, ghost.pk])
    assert (
        "grouped under Ghost stock (phantom inventory) SKU-0042 at STORE-01"
        in merges.get(anomaly_id=similar["dairy_here"].pk).note
    )
    # Merged ones are no longer offered as similar.
    assert similar_ids(login(users["ops"]).get(change_url(ghost))) == []


@pytest.mark.parametrize(("role", "code"), [("viewer", 403), ("staff", 302), ("admin", 302)])
def test_merge_per_role(users, ghost, similar, role, code):
    response = login(users[role]).post(merge_url(ghost), {"anomalies": [similar["dairy_here"].pk]})

    assert response.status_code == code
    similar["dairy_here"].refresh_from_db()
    assert (similar["dairy_here"].parent_id == ghost.pk) is (code == 302)


def test_staff_cannot_merge_a_finding_of_another_store(users, ghost, similar):
    response = login(users["staff"]).post(
        merge_url(ghost), {"anomalies": [similar["same_sku_b"].pk]}
    )

    assert response.status_code == 403
    assert not Anomaly.objects.filter(parent=ghost).exists()
    assert not AnomalyActivity.objects.filter(action=ActivityAction.MERGE).exists()


def test_merge_with_nothing_ticked_says_so(users, ghost):
    response = login(users["staff"]).post(merge_url(ghost), {})

    assert messages_of(response) == [
        "Nothing was changed. Similar anomalies: Tick the similar anomalies to merge into this one."
    ]


def test_merge_url_takes_only_posts(users, ghost):
    assert login(users["staff"]).get(merge_url(ghost)).status_code == 405


def test_change_page_query_budget(users, ghost, similar, django_assert_max_num_queries):
    for _ in range(3):
        AnomalyFactory(product=ProductFactory(category="Dairy"), location=ghost.location)
    client = login(users["staff"])
    client.get(change_url(ghost))  # warm the session
    # Session, user, 2 x permissions, store scope, the anomaly; sales, stock, receipts for the
    # table; latest sales day, sales and stock for the chart; the open count of the SKU here,
    # the latest stock day (count date), similar anomalies (one query, not one per row); the
    # assignee choices, "grouped here" count, activity log. 18, whatever the number of similar
    # anomalies.
    with django_assert_max_num_queries(18):
        response = client.get(change_url(ghost))
    assert len(response.context["similar_anomalies"]) == 4
