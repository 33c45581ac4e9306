"""The dashboard's summary cache (config/dashboard.py): reused per user, day and window."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.dashboard import dashboard_summary_cached
from tests.factories import AnomalyFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/dashboard/"
TODAY = dt.date(2024, 3, 1)


def _open_total(response) -> int:
    return response.context["summary"]["open_total"]


def test_second_load_within_the_ttl_reuses_the_summary(client, staff_user, settings):
    settings.SHELFWATCH_DASHBOARD_CACHE_SECONDS = 120
    client.force_login(staff_user)
    AnomalyFactory(first_detected_on=timezone.localdate())
    assert _open_total(client.get(URL)) == 1
    AnomalyFactory.create_batch(2, first_detected_on=timezone.localdate())
    with CaptureQueriesContext(connection) as queries:
        again = client.get(URL)
    # session and user only: the summary's seven queries are not run again
    assert len(queries) == 2, [q["sql"] for q in queries.captured_queries]
    assert _open_total(again) == 1
    # another window is another entry
    assert _open_total(client.get(URL + "?days=30")) == 3


def test_users_never_share_an_entry(client, staff_user, settings):
    settings.SHELFWATCH_DASHBOARD_CACHE_SECONDS = 120
    client.force_login(staff_user)
    AnomalyFactory(first_detected_on=timezone.localdate())
    assert _open_total(client.get(URL)) == 1
    AnomalyFactory(first_detected_on=timezone.localdate())
    other = UserFactory(username="ops2", is_superuser=True)
    client.force_login(other)
    assert _open_total(client.get(URL)) == 2


def test_scope_key_separates_entries_and_ttl_zero_turns_the_cache_off(settings):
    settings.SHELFWATCH_DASHBOARD_CACHE_SECONDS = 60
    first = dashboard_summary_cached(
        today=TODAY, days=90, scope_key="user:1", compute=lambda: {"stores": ["A"]}
    )
    cached = dashboard_summary_cached(
        today=TODAY, days=90, scope_key="user:1", compute=lambda: {"stores": ["changed"]}
    )
    other = dashboard_summary_cached(
        today=TODAY, days=90, scope_key="user:2", compute=lambda: {"stores": ["B"]}
    )
    assert (first, cached, other) == ({"stores": ["A"]}, {"stores": ["A"]}, {"stores": ["B"]})

    settings.SHELFWATCH_DASHBOARD_CACHE_SECONDS = 0
    calls = []
    for _ in range(2):
        dashboard_summary_cached(
            today=TODAY, days=90, scope_key="user:1", compute=lambda: calls.append(1) or {}
        )
    assert len(calls) == 2
