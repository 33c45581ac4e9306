"""Query budgets of the anomaly changelist: a fixed number of queries whatever the number of rows
(up to 100,000), filters adding only their own.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from anomalies.models import (
    Anomaly,
    AnomalyType,
    Severity,
)
from tests.factories import (
    LocationFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:anomalies_anomaly_changelist")

# Anomaly changelist, whatever the number of rows (superuser, session login):
#   1. django_session row
#   2. auth_user row
#   3. locations, for the location filter
#   4. distinct product categories, for the category filter
#   5. COUNT(*) of at most 10,001 filtered anomalies (BoundedCountPaginator; no full count)
#   6. the page of anomalies JOIN product, location, assignee (list_select_related), with the
#      latest detection day's summary and each row's pending-count EXISTS as subqueries
#   7. the triage SLA targets (one row; only when the page has rows), for the SLA column
#   8. the saved views (shared ones and the user's own), for the bar above the list
# (7 and 8 came with the triage list of issue 14: a fixed cost per page, not per row.)
ANOMALY_CHANGELIST_QUERIES = 8


def listed_ids(response) -> list[int]:
    return [anomaly.pk for anomaly in response.context["cl"].result_list]


def bulk_anomalies(count: int) -> None:
    """Insert ``count`` anomalies fast: bulk_create over a few products and locations."""
    products = ProductFactory.create_batch(5)
    locations = LocationFactory.create_batch(4)
    combos = [(t, p, loc) for t in AnomalyType.values for p in products for loc in locations]
    base = dt.date(2022, 1, 1)
    severities = Severity.values
    rows = []
    for i in range(count):
        anomaly_type, product, location = combos[i % len(combos)]
        day = base + dt.timedelta(days=i // len(combos))
        rows.append(
            Anomaly(
                anomaly_type=anomaly_type,
                severity=severities[i % 3],
                score=1.5,
                value_at_risk=Decimal("12.50"),
                explanation=f"Finding {i}",
                product=product,
                location=location,
                start_date=day,
                end_date=day,
                first_detected_on=day,
                last_detected_on=day,
            )
        )
    Anomaly.objects.bulk_create(rows, batch_size=5000)


def changelist_queries(client, url: str = CHANGELIST) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return response, [q["sql"] for q in ctx.captured_queries]


# --- query budgets -----------------------------------------------------------------------------


def test_changelist_query_count_does_not_grow_with_rows(admin_client):
    bulk_anomalies(30)
    _response, few = changelist_queries(admin_client)
    bulk_anomalies(270)
    response, many = changelist_queries(admin_client)

    assert len(few) == len(many) == ANOMALY_CHANGELIST_QUERIES, many
    assert len(listed_ids(response)) == 100  # one page
    assert response.context["cl"].result_count == 300


def test_filtered_and_searched_changelist_stays_within_budget(admin_client, staff_user):
    bulk_anomalies(300)
    # Filters that need data add exactly their own query: "detected" reads MAX(last_detected_on).
    _response, queries = changelist_queries(
        admin_client, f"{CHANGELIST}?status__exact=open&assignee=none&q=Finding&detected=7"
    )
    assert len(queries) == ANOMALY_CHANGELIST_QUERIES + 1, queries


def test_changelist_of_100_000_anomalies_runs_the_same_queries(admin_client):
    bulk_anomalies(100_000)
    assert Anomaly.objects.count() == 100_000

    response, queries = changelist_queries(admin_client)

    assert len(queries) == ANOMALY_CHANGELIST_QUERIES, queries
    assert len(listed_ids(response)) == 100
    assert "more than 10000 anomalies" in response.content.decode()


def test_store_staff_changelist_pays_one_query_for_its_store_scope(client, staff_user_for):
    """Store staff: the superuser's queries, plus their permissions (Django's two queries) and
    one for their store access; the page lists only their store's anomalies."""
    bulk_anomalies(200)
    location = Anomaly.objects.order_by("pk").first().location
    client.force_login(staff_user_for(location))

    response, queries = changelist_queries(client)

    permission_queries = 2  # the user's own and their groups' permissions, loaded once
    assert len(queries) == ANOMALY_CHANGELIST_QUERIES + permission_queries + 1, queries
    assert {anomaly.location_id for anomaly in response.context["cl"].result_list} == {location.pk}
