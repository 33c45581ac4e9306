"""The detector health page and its service (``anomalies.services.health``)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from anomalies.models import ActivityAction, AnomalyActivity, AnomalyStatus, DismissReason
from anomalies.services.health import (
    MUTED_DAYS_DEFAULT,
    detector_health,
    muted_days_clean,
)
from common.roles import STORE_STAFF, VIEWER
from tests.conftest import grant_role
from tests.factories import AnomalyFactory, DetectionRunFactory, LocationFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 2, 1, 12, 0, tzinfo=dt.UTC)
URL = "/admin/anomalies/health/"
TRACEBACK = "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'units'\n"


@pytest.fixture
def everyone(db):
    """A user who sees every store (superuser)."""
    return UserFactory(username="root", is_superuser=True)


def _run(**kwargs):
    return DetectionRunFactory(**kwargs)


def _detector(health, name):
    return next(row for row in health.detectors if row.name == name)


# --- runs, failures, durations ---------------------------------------------------------------


def test_last_run_success_and_failure_per_detector(everyone):
    ok = _run(
        as_of=dt.date(2024, 1, 30),
        detectors=["ghost_stock", "price_anomaly"],
        counts={"ghost_stock": {"findings": 3, "seconds": 0.5}, "price_anomaly": {"skipped": True}},
        duration_seconds=2.0,
    )
    failed = _run(
        as_of=dt.date(2024, 1, 31), detectors=["ghost_stock"], status="failed", error=TRACEBACK
    )

    health = detector_health(user=everyone, now=NOW)

    ghost = _detector(health, "ghost_stock")
    assert (ghost.last_run.pk, ghost.last_run.status) == (failed.pk, "failed")
    assert ghost.last_succeeded.pk == ok.pk and ghost.last_failed.pk == failed.pk
    assert (ghost.runs, ghost.failures, ghost.last_findings, ghost.seconds) == (2, 1, 3, [0.5])
    price = _detector(health, "price_anomaly")
    assert price.last_skipped and price.failures == 0
    assert _detector(health, "demand_spike").last_run is None
    assert [(r.pk, r.error) for r in health.failures] == [(failed.pk, "KeyError: 'units'")]
    assert health.failures_count == 1


def test_duration_trend_is_oldest_first_relative_to_the_slowest(everyone):
    fast = _run(as_of=dt.date(2024, 1, 29), duration_seconds=1.0)
    slow = _run(as_of=dt.date(2024, 1, 30), duration_seconds=4.0)
    pending = _run(as_of=dt.date(2024, 1, 31), status="running", duration_seconds=None)

    health = detector_health(user=everyone, now=NOW)

    assert [(t.run.pk, t.bar_pct) for t in health.trend] == [
        (fast.pk, 25),
        (slow.pk, 100),
        (pending.pk, 0),
    ]


def _schedule(name, detectors, last_run_at):
    crontab = CrontabSchedule.objects.create(minute="30", hour="4")
    return PeriodicTask.objects.create(
        name=name,
        task="anomalies.detect_scheduled",
        crontab=crontab,
        kwargs=json.dumps({"detectors": detectors}),
        last_run_at=last_run_at,
        total_run_count=7,
    )


def test_a_schedule_shows_beat_s_last_send_and_its_last_detection_run(everyone):
    _schedule("Ghost stock", ["ghost_stock"], NOW - dt.timedelta(hours=2))
    _schedule("Price", ["price_anomaly"], NOW - dt.timedelta(hours=40))
    _run(detectors=["ghost_stock"], trigger="manual")  # not scheduled: not matched
    scheduled = _run(as_of=dt.date(2024, 1, 30), detectors=["ghost_stock"], trigger="schedule")

    health = detector_health(user=everyone, now=NOW)

    rows = {row.name: row for row in health.schedules}
    ghost, price = rows["Ghost stock"], rows["Price"]
    assert ghost.last_detection_run.pk == scheduled.pk
    assert (ghost.stale, ghost.total_run_count, ghost.schedule) == (False, 7, "cron 30 4 * * *")
    assert price.last_detection_run is None
    assert price.stale  # beat last sent it 40 h ago (more than the 36 h of the settings)


# --- findings --------------------------------------------------------------------------------


def test_findings_per_day_and_detector_end_on_the_latest_detection_day(everyone):
    latest = dt.date(2024, 1, 25)
    AnomalyFactory(first_detected_on=latest)
    AnomalyFactory(first_detected_on=latest, anomaly_type="pos_outage", product=None)
    AnomalyFactory(first_detected_on=latest - dt.timedelta(days=2), anomaly_type="price_anomaly")
    AnomalyFactory(first_detected_on=latest - dt.timedelta(days=20))  # before the window

    health = detector_health(user=everyone, now=NOW)

    assert (health.findings_start, health.findings_end) == (dt.date(2024, 1, 12), latest)
    names = health.findings_detectors
    by_day = {row.day: dict(zip(names, row.counts, strict=True)) for row in health.findings_days}
    assert len(by_day) == 14
    assert by_day[latest]["ghost_stock"] == 1
    assert by_day[latest]["inventory_discrepancy"] == 1  # a POS outage is that detector's
    assert by_day[latest - dt.timedelta(days=2)]["price_anomaly"] == 1
    assert sum(row.total for row in health.findings_days) == 3


def test_share_dismissed_as_false_positive_per_detector(everyone):
    fp = {"status": AnomalyStatus.DISMISSED, "dismiss_reason": DismissReason.FALSE_POSITIVE}
    AnomalyFactory(**fp)
    AnomalyFactory(status=AnomalyStatus.DISMISSED, dismiss_reason=DismissReason.EXPECTED)
    AnomalyFactory(status=AnomalyStatus.RESOLVED)
    AnomalyFactory()  # open

    health = detector_health(user=everyone, now=NOW)

    ghost = next(row for row in health.false_positives if row.detector == "ghost_stock")
    assert (ghost.findings, ghost.closed, ghost.false_positives) == (4, 3, 1)
    assert ghost.share == 0.25 and ghost.share_of_closed == pytest.approx(1 / 3)
    price = next(row for row in health.false_positives if row.detector == "price_anomaly")
    assert price.share is None


def _snoozed_at(when):
    anomaly = AnomalyFactory(status=AnomalyStatus.SNOOZED, snoozed_until=dt.date(2024, 3, 1))
    activity = AnomalyActivity.objects.create(
        anomaly=anomaly, action=ActivityAction.SNOOZE, from_status="open", to_status="snoozed"
    )
    AnomalyActivity.objects.filter(pk=activity.pk).update(created_at=when)
    return anomaly


def test_findings_acknowledged_or_snoozed_for_more_than_n_days_oldest_first(everyone):
    old_ack = AnomalyFactory(
        status=AnomalyStatus.ACKNOWLEDGED, acknowledged_at=NOW - dt.timedelta(days=20)
    )
    AnomalyFactory(status=AnomalyStatus.ACKNOWLEDGED, acknowledged_at=NOW - dt.timedelta(days=5))
    old_snooze = _snoozed_at(NOW - dt.timedelta(days=30))
    _snoozed_at(NOW - dt.timedelta(days=3))
    AnomalyFactory(status=AnomalyStatus.OPEN)

    health = detector_health(user=everyone, now=NOW)

    assert health.muted_days == MUTED_DAYS_DEFAULT == 14
    assert [(row.anomaly.pk, row.days) for row in health.muted] == [
        (old_snooze.pk, 30),
        (old_ack.pk, 20),
    ]
    assert health.muted_count == 2
    assert detector_health(user=everyone, now=NOW, muted_days=2).muted_count == 4


@pytest.mark.parametrize(
    ("given", "days"), [(None, 14), ("7", 7), ("x", 14), ("0", 14), ("366", 14), ("365", 365)]
)
def test_the_muted_days_parameter_falls_back_to_the_default(given, days):
    assert muted_days_clean(given) == days


def test_finding_counts_are_those_of_the_user_s_stores():
    store_a, store_b = LocationFactory(code="SA"), LocationFactory(code="SB")
    AnomalyFactory(location=store_a)
    AnomalyFactory(location=store_b)
    AnomalyFactory(location=store_b, status=AnomalyStatus.ACKNOWLEDGED, acknowledged_at=NOW)
    staff = grant_role(UserFactory(username="staff"), STORE_STAFF, locations=[store_a])

    health = detector_health(user=staff, now=NOW + dt.timedelta(days=30))

    assert sum(row.total for row in health.findings_days) == 1
    assert sum(row.findings for row in health.false_positives) == 1
    assert health.muted_count == 0


def test_the_page_runs_a_fixed_number_of_queries(everyone):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            detector_health(user=everyone, now=NOW)
        return len(ctx.captured_queries)

    _run()
    AnomalyFactory()
    few = queries()
    for day in range(5):
        _run(as_of=dt.date(2024, 1, 1) + dt.timedelta(days=day), status="failed")
        _schedule(f"s{day}", ["ghost_stock"], NOW)
        AnomalyFactory(first_detected_on=dt.date(2024, 1, 20 + day))
        _snoozed_at(NOW - dt.timedelta(days=40))
    # runs, detector settings, schedules, latest detection day, findings per day, false
    # positives, muted count, muted rows: 8 whatever the number of rows.
    assert few == queries() == 8


# --- the page --------------------------------------------------------------------------------


def test_the_page_shows_each_section(client, everyone):
    _run(detectors=["ghost_stock"], status="failed", error=TRACEBACK)
    scheduled = _run(detectors=["ghost_stock"], trigger="schedule", duration_seconds=1.5)
    _schedule("Ghost-stock detection", ["ghost_stock"], NOW)
    AnomalyFactory(status=AnomalyStatus.ACKNOWLEDGED, acknowledged_at=NOW - dt.timedelta(days=400))
    client.force_login(everyone)

    response = client.get(URL, {"muted_days": "30"})

    assert response.status_code == 200
    html = response.content.decode()
    for section in (
        "health-detectors",
        "health-schedules",
        "health-failures",
        "health-durations",
        "health-findings",
        "health-false-positives",
        "health-muted",
    ):
        assert f'id="{section}"' in html
    assert "KeyError: &#x27;units&#x27;" in html
    assert (
        f'<a href="/admin/anomalies/detectionrun/{scheduled.pk}/change/">run {scheduled.pk}</a>'
        in html
    )
    assert "Acknowledged or snoozed for more than 30 days: 1" in html


def test_a_viewer_without_the_runs_permission_sees_findings_only(client):
    viewer = grant_role(UserFactory(username="viewer"), VIEWER, all_locations=True)
    viewer.groups.first().permissions.remove(
        *viewer.groups.first().permissions.filter(codename="view_detectionrun")
    )
    client.force_login(viewer)

    response = client.get(URL)

    assert response.status_code == 200
    assert response.context["health"].include_runs is False
    assert b'id="health-detectors"' not in response.content
    assert b'id="health-findings"' in response.content


def test_the_findings_window_ends_on_the_latest_run_day_when_it_found_nothing_new(everyone):
    AnomalyFactory(first_detected_on=dt.date(2024, 1, 25))
    _run(as_of=dt.date(2024, 1, 31))
    _run(as_of=dt.date(2024, 2, 3), status="failed")  # a failed run does not move it

    health = detector_health(user=everyone, now=NOW)

    assert health.findings_end == dt.date(2024, 1, 31)
    assert health.findings_days[0].day == dt.date(2024, 1, 31)
    assert sum(row.total for row in health.findings_days) == 1
