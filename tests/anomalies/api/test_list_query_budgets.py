"""Query budgets of the two anomaly lists (the API list and the admin changelist) on seeded
data with every status, SKU- and location-level findings and assignees: a fixed number of
queries whatever the rows, the filters and the page, and no COUNT(*) over the whole table."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anomalies.models import Anomaly, AnomalyStatus
from inventory.models import Location
from lab.bench.anomaly_seed import anomalies_seed

pytestmark = pytest.mark.django_db

ANOMALIES = "/api/v1/anomalies/"
CHANGELIST = "/admin/anomalies/anomaly/"
AS_OF = dt.date(2024, 6, 30)
# API list, authenticated (force_authenticate: no token or session lookup):
#   1. the page: anomalies JOIN product, location, assignee, LIMIT page size + 1 (cursor pages
#      do not count)
# plus one query per foreign-key filter given by id, validating the ids (?location=, ...).
API_LIST_QUERIES = 1
# Admin changelist (session login):
#   1. django_session row   2. auth_user row   3. locations, for the location filter
#   4. distinct product categories, for the category filter
#   5. COUNT(*) of at most 10,001 matching rows (BoundedCountPaginator)
#   6. the page of anomalies JOIN product, location, assignee (list_select_related)
#   7. the triage SLA targets   8. the saved views (the triage list, issue 14)
CHANGELIST_QUERIES = 8


@pytest.fixture
def seeded_location() -> Location:
    anomalies_seed(count=400, locations=4, skus=30, as_of=AS_OF)
    # Assignees on the first page: an assignee query per row would show.
    assert Anomaly.objects.filter(assignee__isnull=False).exists()
    return Location.objects.order_by("code").first()


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_api_list_runs_one_query_per_page_filtered_or_not(
    api_client, seeded_location, django_assert_num_queries
):
    with django_assert_num_queries(API_LIST_QUERIES):
        first = api_client.get(ANOMALIES, {"limit": 100}).json()
    with django_assert_num_queries(API_LIST_QUERIES):
        second = api_client.get(first["next"]).json()

    assert len(first["results"]) == len(second["results"]) == 100
    detected = [row["last_detected_on"] for row in first["results"] + second["results"]]
    assert detected == sorted(detected, reverse=True)
    assert any(row["assignee_username"] for row in first["results"] + second["results"])


def test_api_list_by_status_and_location_adds_only_the_location_check(
    api_client, seeded_location, django_assert_num_queries
):
    params = {"status": AnomalyStatus.OPEN, "location": seeded_location.pk, "limit": 5}

    with django_assert_num_queries(API_LIST_QUERIES + 1):  # + the location id's check
        page = api_client.get(ANOMALIES, params).json()
    with django_assert_num_queries(API_LIST_QUERIES):  # by code: a join, no check
        by_code = api_client.get(
            ANOMALIES, {"status": "open", "location_code": seeded_location.code, "limit": 5}
        ).json()

    rows = page["results"]
    assert rows and len(rows) <= 5
    assert {(r["status"], r["location"]) for r in rows} == {("open", seeded_location.pk)}
    assert [r["id"] for r in by_code["results"]] == [r["id"] for r in rows]
    expected = list(
        Anomaly.objects.filter(status="open", location=seeded_location)
        .order_by("-last_detected_on", "-id")
        .values_list("pk", flat=True)[:5]
    )
    assert [r["id"] for r in rows] == expected


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status__exact=open",
        "?location={location}",
        "?status__exact=open&location={location}",
        "?severity__exact=critical&anomaly_type__exact=ghost_stock",
        "?p=2",
        "?assignee=none&regressed=no&dismiss_reason__exact=",
    ],
)
def test_changelist_runs_a_fixed_number_of_queries(admin_client, seeded_location, query):
    url = CHANGELIST + query.format(location=seeded_location.pk)

    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(url)

    assert response.status_code == 200
    queries = [q["sql"] for q in ctx.captured_queries]
    assert len(queries) == CHANGELIST_QUERIES, queries
    counts = [sql for sql in queries if "COUNT(" in sql]
    assert len(counts) == 1 and "LIMIT 10001" in counts[0]  # never the whole table


def test_changelist_shows_assignees_without_a_query_per_row(admin_client, seeded_location):
    response = admin_client.get(CHANGELIST)

    rows = response.context["cl"].result_list
    assert any(row.assignee_id for row in rows)
    with CaptureQueriesContext(connection) as ctx:
        names = [(row.assignee, row.product, row.location) for row in rows]
    assert names and ctx.captured_queries == []


def test_change_page_of_a_seeded_anomaly_stays_within_budget(admin_client, seeded_location):
    anomaly = Anomaly.objects.filter(assignee__isnull=False).first()
    url = f"{CHANGELIST}{anomaly.pk}/change/"
    admin_client.get(url)  # fills the content-type cache, as any earlier request would

    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(url)

    assert response.status_code == 200
    # Session, user, the anomaly (with product, location, assignee), sales, stock, receipts,
    # the latest sales day, the chart's sales and stock, staff users for the assignee field,
    # the activity log, the count of anomalies grouped under it; the one-click triage adds
    # the open cycle count (record-count form) and the similar anomalies (one query each).
    # No run and no parent (seeded anomalies have none).
    assert len(ctx.captured_queries) == 14, [q["sql"] for q in ctx.captured_queries]
