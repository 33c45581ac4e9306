"""The triage list (anomaly changelist, issue 14): its columns, the pending-count badge, the SLA
timer, the saved-views bar and its built-in views, the keys' script, and who may save, share
and edit views or the SLA targets."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from anomalies.admin.changelist import SHORT_TYPE_LABELS, age_text
from anomalies.admin.filters import CYCLE_COUNT_REQUESTED
from anomalies.models import (
    Anomaly,
    AnomalyStatus,
    AnomalyType,
    SavedView,
    Severity,
    TriageSla,
)
from anomalies.services.saved_views import (
    BUILT_IN_VIEWS,
    querystring_clean,
    saved_view_may_edit,
)
from common.formatting import money as money_text
from outcomes.models import CycleCount, CycleCountStatus
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:anomalies_anomaly_changelist")
SAVED_VIEWS = reverse("admin:anomalies_savedview_changelist")
ADD_VIEW = reverse("admin:anomalies_savedview_add")


def listed_ids(response) -> list[int]:
    return [anomaly.pk for anomaly in response.context["cl"].result_list]


def saved_view_links(html: str) -> dict[str, str]:
    """name -> href of the links in <nav id="saved-views">."""
    nav = re.search(r'<nav id="saved-views".*?</nav>', html, re.S).group(0)
    return {
        name: href.replace("&amp;", "&")
        for href, name in re.findall(
            r'<a class="saved-view[^"]*" href="([^"]+)"[^>]*>([^<]+)</a>', nav
        )
    }


def requested_count(anomaly: Anomaly, status: str = CycleCountStatus.REQUESTED) -> CycleCount:
    return CycleCount.objects.create(
        anomaly=anomaly,
        product=anomaly.product,
        location=anomaly.location,
        book_on_hand=33,
        status=status,
    )


# --- columns -----------------------------------------------------------------------------------


def test_list_shows_short_label_money_and_one_line_explanation(admin_client):
    AnomalyFactory(
        anomaly_type=AnomalyType.GHOST_STOCK,
        value_at_risk=Decimal("1118.60"),
        product=ProductFactory(sku="SKU-0042", name="Tea towel"),
        location=LocationFactory(code="STORE-01"),
        start_date=dt.date(2026, 10, 29),
        end_date=dt.date(2026, 10, 31),
    )

    html = admin_client.get(CHANGELIST).content.decode()

    assert '<span title="Ghost stock (phantom inventory)">Ghost stock</span>' in html
    assert '<td class="field-money">£1,118.60</td>' in html
    assert (
        '<span class="sku">SKU-0042</span><span class="sub" title="Tea towel">'
        '<span class="store">STORE-01</span> · Tea towel</span>'
    ) in html
    assert "2026-10-29<br>→ 10-31" in html
    assert '<span class="one-line" title="No sales for 6 days' in html
    cell = re.search(r'<th class="field-type_label">(.*?)</th>', html).group(1)
    assert ">Ghost stock</span></a>" in cell  # the long label stays in the tooltip


def test_every_type_has_a_short_label():
    assert set(SHORT_TYPE_LABELS) == set(AnomalyType.values)
    assert all(len(label) <= 12 for label in SHORT_TYPE_LABELS.values())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1118.6"), "£1,118.60"),
        (3583.3291200000003, "£3,583.33"),
        (Decimal("0.005"), "£0.01"),  # half up, to the penny
        (Decimal("-12.5"), "\u2212£12.50"),
        (None, "—"),
    ],
)
def test_money_is_rounded_to_the_penny_with_thousands_separators(value, text):
    assert money_text(value, "£") == text


def test_age_reads_in_its_largest_whole_unit():
    assert [age_text(s) for s in (59, 3600 * 5, 3600 * 47, 3600 * 24 * 3)] == [
        "0m",
        "5h",
        "47h",
        "3d",
    ]


def test_pending_count_badge_and_filter_follow_the_requested_counts(admin_client):
    waiting = AnomalyFactory()
    cancelled = AnomalyFactory(anomaly_type=AnomalyType.INVENTORY_DISCREPANCY)
    plain = AnomalyFactory(anomaly_type=AnomalyType.DEMAND_SPIKE)
    requested_count(waiting)
    requested_count(cancelled, status=CycleCountStatus.CANCELLED)

    response = admin_client.get(CHANGELIST)
    html = response.content.decode()

    assert html.count('<span class="count-pending"') == 1
    flags = {row.pk: row.count_pending for row in response.context["cl"].result_list}
    assert flags == {waiting.pk: True, cancelled.pk: False, plain.pk: False}
    assert listed_ids(admin_client.get(f"{CHANGELIST}?count=pending")) == [waiting.pk]
    assert set(listed_ids(admin_client.get(f"{CHANGELIST}?count=none"))) == {cancelled.pk, plain.pk}


def test_the_pending_status_spelled_in_anomalies_is_outcomes_requested_status():
    assert CYCLE_COUNT_REQUESTED == CycleCountStatus.REQUESTED


def test_sla_column_is_green_when_new_and_red_when_long_overdue(admin_client):
    fresh = AnomalyFactory(severity=Severity.CRITICAL)
    overdue = AnomalyFactory(severity=Severity.CRITICAL)
    # Created 30 days ago: more than 4 business hours whatever the time and day now.
    Anomaly.objects.filter(pk=overdue.pk).update(created_at=timezone.now() - dt.timedelta(days=30))

    html = admin_client.get(CHANGELIST).content.decode()

    assert re.search(r'<span class="sla sla-ok" title="[^"]*">0m of 4h</span>', html)
    assert re.search(
        r'<span class="sla sla-breached" title="[^"]*">\d+h( \d+m)? of 4h</span>', html
    )
    assert fresh.pk != overdue.pk


def test_sla_targets_edited_in_the_admin_change_the_column(admin_client):
    AnomalyFactory(severity=Severity.WARNING)
    TriageSla.objects.filter(pk=1).update(warning_hours=3)

    assert "0m of 3h</span>" in admin_client.get(CHANGELIST).content.decode()


def test_acknowledged_finding_shows_its_stopped_timer(admin_client):
    anomaly = AnomalyFactory(severity=Severity.INFO, status=AnomalyStatus.ACKNOWLEDGED)
    Anomaly.objects.filter(pk=anomaly.pk).update(acknowledged_at=anomaly.created_at)

    html = admin_client.get(CHANGELIST).content.decode()

    assert '<span class="sla sla-ok sla-stopped" title="answered in time">0m of 50h</span>' in html


# --- saved views -------------------------------------------------------------------------------


def test_bar_offers_the_four_built_in_views_with_working_links(admin_client):
    low = AnomalyFactory(severity=Severity.CRITICAL, value_at_risk=Decimal("10.00"))
    high = AnomalyFactory(severity=Severity.CRITICAL, value_at_risk=Decimal("900.00"))
    AnomalyFactory(severity=Severity.WARNING, value_at_risk=Decimal("5000.00"))
    AnomalyFactory(severity=Severity.CRITICAL, status=AnomalyStatus.RESOLVED)

    links = saved_view_links(admin_client.get(CHANGELIST).content.decode())

    assert list(links) == [
        "My stores",
        "New today",
        "Critical money at risk",
        "Waiting for a count",
    ]
    assert [v.name for v in BUILT_IN_VIEWS] == list(links)
    critical = admin_client.get(links["Critical money at risk"])
    assert listed_ids(critical) == [high.pk, low.pk]  # open criticals, most money first
    assert 'class="saved-view saved-view-built-in selected"' in critical.content.decode()


def test_new_today_means_first_found_on_the_latest_detection_day(admin_client):
    new = AnomalyFactory(
        first_detected_on=dt.date(2026, 10, 31), last_detected_on=dt.date(2026, 10, 31)
    )
    AnomalyFactory(first_detected_on=dt.date(2026, 10, 20), last_detected_on=dt.date(2026, 10, 31))

    assert listed_ids(admin_client.get(f"{CHANGELIST}?new=latest")) == [new.pk]


def test_my_stores_lists_the_open_findings_of_the_users_stores(client, staff_user_for, ops_user):
    a, b = LocationFactory(code="SA"), LocationFactory(code="SB")
    open_a = AnomalyFactory(location=a)
    AnomalyFactory(location=a, status=AnomalyStatus.DISMISSED)
    open_b = AnomalyFactory(location=b)
    url = f"{CHANGELIST}?stores=mine&status__in=open,acknowledged"

    client.force_login(staff_user_for(a))
    assert listed_ids(client.get(url)) == [open_a.pk]
    client.force_login(ops_user)  # every store is theirs
    assert set(listed_ids(client.get(url))) == {open_a.pk, open_b.pk}


def test_shared_views_are_shown_to_everyone_personal_ones_to_their_owner(
    client, staff_user_for, ops_user
):
    store = LocationFactory()
    alice, bob = staff_user_for(store, username="alice"), staff_user_for(store, username="bob")
    SavedView.objects.create(name="Toys", querystring="category=Toys", shared=True, owner=ops_user)
    SavedView.objects.create(name="Alices", querystring="assignee=me", owner=alice)

    client.force_login(alice)
    alice_links = saved_view_links(client.get(CHANGELIST).content.decode())
    client.force_login(bob)
    bob_links = saved_view_links(client.get(CHANGELIST).content.decode())

    assert list(alice_links)[4:] == ["Toys", "Alices"]
    assert list(bob_links)[4:] == ["Toys"]
    assert alice_links["Toys"] == f"{CHANGELIST}?category=Toys"


def test_save_this_view_prefills_the_current_filters(admin_client):
    html = admin_client.get(f"{CHANGELIST}?severity__exact=critical&p=2").content.decode()

    match = re.search(r'<a class="save-view" href="([^"]+)"', html)
    assert (
        match.group(1).replace("&amp;", "&") == f"{ADD_VIEW}?querystring=severity__exact%3Dcritical"
    )
    add_page = admin_client.get(match.group(1).replace("&amp;", "&")).content.decode()
    assert 'value="severity__exact=critical"' in add_page


def test_querystrings_are_stored_without_page_or_question_mark():
    assert querystring_clean("?status__exact=open&p=3&severity__exact=critical") == (
        "severity__exact=critical&status__exact=open"
    )


def test_list_loads_the_keys_script_and_its_help(admin_client):
    AnomalyFactory()
    html = admin_client.get(CHANGELIST).content.decode()

    assert "anomalies/triage_keys.js" in html
    assert "anomalies/triage_list.css" in html
    assert '<div id="kb-help" hidden>' in html
    for key in ("j / k", "x", "Enter / o", "a", "r", "d", "s", "c", "?"):
        assert f"<dt>{key}</dt>" in html


def test_keys_script_names_only_actions_the_list_offers(admin_client):
    from django.contrib.staticfiles import finders

    script = Path(finders.find("anomalies/triage_keys.js")).read_text(encoding="utf-8")
    AnomalyFactory()
    html = admin_client.get(CHANGELIST).content.decode()
    actions = re.search(r"ACTIONS = \{([^}]*)\}", script).group(1)
    for name in re.findall(r'"(\w+)"', actions):
        assert f'value="{name}"' in html, name


# --- who may save, share and edit views, and edit the SLA targets ------------------------------


def _post_view(client: Client, **data):
    body = {"name": "Mine", "querystring": "assignee=me", "order": 100, **data}
    return client.post(ADD_VIEW, body)


def test_viewer_sees_saved_views_but_saves_none(client, viewer_for, ops_user):
    SavedView.objects.create(name="Toys", querystring="category=Toys", shared=True, owner=ops_user)
    client.force_login(viewer_for(LocationFactory()))

    assert client.get(SAVED_VIEWS).status_code == 200
    assert _post_view(client).status_code == 403
    assert "save-view" not in client.get(f"{CHANGELIST}?assignee=me").content.decode()
    assert SavedView.objects.count() == 1


def test_store_staff_save_their_own_views_and_cannot_share_them(client, staff_user_for):
    staff = staff_user_for(LocationFactory())
    client.force_login(staff)
    add_page = client.get(f"{ADD_VIEW}?querystring=assignee%3Dme").content.decode()
    assert 'name="shared"' not in add_page  # shown read-only, not as a field

    response = _post_view(client, shared="on")

    assert response.status_code == 302
    view = SavedView.objects.get()
    assert (view.owner, view.shared) == (staff, False)  # "shared" is read-only for them


def test_store_staff_cannot_change_or_delete_a_shared_view(client, staff_user_for, ops_user):
    shared = SavedView.objects.create(name="Toys", querystring="x=1", shared=True, owner=ops_user)
    client.force_login(staff_user_for(LocationFactory()))
    change = reverse("admin:anomalies_savedview_change", args=[shared.pk])
    delete = reverse("admin:anomalies_savedview_delete", args=[shared.pk])

    response = client.post(change, {"name": "Mine now", "querystring": "y=2", "order": 1})

    assert response.status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [shared.pk], "post": "yes"}
    client.post(SAVED_VIEWS, bulk)  # nor by the bulk action (it asks the same rule per row)
    shared.refresh_from_db()  # still there
    assert shared.name == "Toys"


def test_ops_manager_shares_views_and_edits_shared_ones_not_personal_ones(
    client, ops_user, staff_user_for
):
    staff = staff_user_for(LocationFactory())
    personal = SavedView.objects.create(name="Staff's", querystring="a=1", owner=staff)
    shared = SavedView.objects.create(name="Team", querystring="b=1", shared=True, owner=staff)
    client.force_login(ops_user)

    assert _post_view(client, name="For all", shared="on").status_code == 302
    change_shared = reverse("admin:anomalies_savedview_change", args=[shared.pk])
    body = {"name": "Team", "querystring": "b=2", "order": 5, "shared": "on"}
    assert client.post(change_shared, body).status_code == 302
    # Someone's personal view is not theirs to see: "not found", back to the admin index.
    change_personal = reverse("admin:anomalies_savedview_change", args=[personal.pk])
    assert client.get(change_personal).status_code == 302

    assert SavedView.objects.get(name="For all").shared is True
    shared.refresh_from_db()
    assert shared.querystring == "b=2"


def test_edit_rule_per_role(staff_user_for, viewer_for, ops_user):
    store = LocationFactory()
    viewer, staff = viewer_for(store), staff_user_for(store)
    other = staff_user_for(store, username="other")
    admin_user = UserFactory(username="root", is_superuser=True)
    own = SavedView(name="own", owner=staff)
    others = SavedView(name="theirs", owner=other)
    shared = SavedView(name="shared", owner=other, shared=True)

    assert [saved_view_may_edit(u, own) for u in (viewer, staff, ops_user, admin_user)] == [
        False,
        True,
        False,
        True,
    ]
    assert [saved_view_may_edit(u, others) for u in (staff, ops_user)] == [False, False]
    assert [saved_view_may_edit(u, shared) for u in (viewer, staff, ops_user, admin_user)] == [
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("role", "list_code", "may_change"),
    [("viewer", 403, False), ("staff", 403, False), ("ops", 302, True), ("admin", 302, True)],
)
def test_sla_targets_are_edited_by_ops_roles_only(
    client, role, list_code, may_change, viewer_for, staff_user_for, ops_user
):
    store = LocationFactory()
    user = {
        "viewer": lambda: viewer_for(store),
        "staff": lambda: staff_user_for(store),
        "ops": lambda: ops_user,
        "admin": lambda: UserFactory(username="root", is_superuser=True),
    }[role]()
    client.force_login(user)
    change = reverse("admin:anomalies_triagesla_change", args=[1])
    body = {
        "critical_hours": 2,
        "warning_hours": 20,
        "info_hours": 50,
        "warn_percent": 75,
        "opens_at": "08:00",
        "closes_at": "18:00",
        **{day: "on" for day in TriageSla.WEEKDAY_FIELDS[:6]},
    }

    assert client.get(reverse("admin:anomalies_triagesla_changelist")).status_code == list_code
    client.post(change, body)

    assert (TriageSla.load().critical_hours == 2) is may_change


# --- in a real browser (Debian's Chromium; skipped where it is not installed) -------------------

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium_page(width: int = 1280):
    """A Chromium page ``width`` px wide and the console errors it logs (favicon aside).

    Playwright runs an event loop in this thread, beside which the ORM refuses to run: set the
    database up before, and read it after the ``with``.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        errors: list[str] = []
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.location.get("url", "").endswith("favicon.ico")
                else None
            ),
        )
        try:
            yield page, errors
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_list_fits_1280_px_and_is_worked_by_keyboard(live_server):
    # Everything in the database first: the ORM refuses to run beside Playwright's event loop.
    user = UserFactory(username="root", is_superuser=True)
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    stores = [LocationFactory(code=f"STORE-0{i}") for i in range(1, 4)]
    for i in range(30):
        AnomalyFactory(
            anomaly_type=AnomalyType.values[i % len(AnomalyType.values)],
            severity=Severity.values[i % 3],
            status=AnomalyStatus.ACKNOWLEDGED if i % 4 == 0 else AnomalyStatus.OPEN,
            assignee=user if i % 3 == 0 else None,
            product=ProductFactory(name=f"A product with a long name, number {i}"),
            location=stores[i % 3],
            value_at_risk=Decimal("12345.67"),
            explanation="No sales for 6 days although 4.2 units/day were expected; " * 4,
            start_date=dt.date(2026, 10, 1),
            end_date=dt.date(2026, 10, 31),
            last_detected_on=dt.date(2026, 10, 31) - dt.timedelta(days=i),
        )
    first, second, third = list(Anomaly.objects.order_by("-last_detected_on", "-id"))[:3]
    with chromium_page() as (page, errors):
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        fit, message, count_url = _work_the_list(page, live_server.url, second)
        console_errors = list(errors)

    assert (fit["scroll"], fit["page"]) == (0, 0)
    assert all(fit["columns"]), fit
    assert fit["explanation"] >= 150, fit  # at least ~25 characters of it on the line
    assert message == "1 anomaly resolved.", message
    # After the reload the focus starts again at the top: j is the first row.
    assert count_url.endswith(f"/{first.pk}/change/#record-count"), count_url
    assert Anomaly.objects.get(pk=second.pk).status == AnomalyStatus.RESOLVED
    assert Anomaly.objects.get(pk=third.pk).status != AnomalyStatus.RESOLVED
    assert console_errors == []


def _work_the_list(page, base_url: str, second: Anomaly) -> tuple[dict, str, str]:
    """Measure the list at the page's width, then j j x ? Esc r (resolve the second row), j c."""

    page.goto(base_url + CHANGELIST)
    fit = page.evaluate(
        """() => {
          const results = document.querySelector('#changelist .results');
          const right = (sel) => document.querySelector(sel).getBoundingClientRect().right;
          return {
            scroll: results.scrollWidth - results.clientWidth,
            page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
            columns: ['triage_status', 'assignee', 'money', 'age', 'sla', 'short_explanation']
              .map((c) => right('#result_list th.column-' + c) <= window.innerWidth),
            explanation: document.querySelector('#result_list th.column-short_explanation')
              .getBoundingClientRect().width,
          };
        }"""
    )
    page.keyboard.press("j")
    page.keyboard.press("j")
    focused = page.locator("#result_list tbody tr.kb-focus")
    assert focused.count() == 1
    assert focused.locator("input.action-select").get_attribute("value") == str(second.pk)
    page.keyboard.press("x")
    assert page.locator("input.action-select:checked").count() == 1
    page.keyboard.press("?")
    assert page.locator("#kb-help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#kb-help").is_visible()
    with page.expect_navigation():
        page.keyboard.press("r")
    message = page.locator("ul.messagelist li").inner_text()
    page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("c")
    return fit, message, page.url


def test_a_s_and_d_keys_acknowledge_snooze_and_ask_why_to_dismiss(live_server):
    user = UserFactory(username="root", is_superuser=True)
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    store = LocationFactory(code="STORE-01")
    rows = [
        AnomalyFactory(
            location=store,
            product=ProductFactory(),
            last_detected_on=dt.date(2026, 10, 31) - dt.timedelta(days=i),
        )
        for i in range(3)
    ]
    first, second, third = rows  # the list shows the latest detected first
    with chromium_page() as (page, errors):
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page.goto(live_server.url + CHANGELIST)
        page.keyboard.press("j")
        with page.expect_navigation():
            page.keyboard.press("a")  # acknowledge the focused (first) row
        page.keyboard.press("j")
        page.keyboard.press("j")
        with page.expect_navigation():
            page.keyboard.press("s")  # snooze the second row
        for _ in range(3):
            page.keyboard.press("j")
        with page.expect_navigation():
            page.keyboard.press("d")  # dismiss the third: asks for the reason first
        dismiss_page = page.locator("h1").inner_text()
        console_errors = list(errors)

    assert Anomaly.objects.get(pk=first.pk).status == AnomalyStatus.ACKNOWLEDGED
    assert Anomaly.objects.get(pk=second.pk).status == AnomalyStatus.SNOOZED
    assert Anomaly.objects.get(pk=third.pk).status == AnomalyStatus.OPEN  # not yet: a reason
    assert dismiss_page == "Dismiss anomalies"
    assert console_errors == []
