"""``/health/``: checks, states and status codes (config/health.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from anomalies.models import DetectionRun, RunStatus
from anomalies.services.schedules import schedules_ensure
from config import health
from notifications.models import ChannelKind, DeliveryStatus, NotificationChannel, NotificationLog
from tests.factories import AnomalyFactory, DetectionRunFactory

pytestmark = pytest.mark.django_db


def _succeeded_run(hours_ago: float) -> DetectionRun:
    run = DetectionRunFactory(status=RunStatus.SUCCEEDED)
    DetectionRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now() - dt.timedelta(hours=hours_ago)
    )
    return run


def test_health_answers_json_without_login_and_without_a_schedule(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["cache"] == {"status": "ok"}
    # No broker in tests: tasks run eagerly, nothing to connect to.
    assert body["checks"]["broker"]["status"] == "skipped"
    assert body["checks"]["detection"]["status"] == "skipped"
    assert body["checks"]["notifications"] == {
        "status": "ok",
        "failed_recently": 0,
        "window_hours": 24.0,
    }


def test_health_refuses_writes(client):
    assert client.post("/health/").status_code == 405


def test_scheduled_detection_without_any_successful_run_is_only_a_warning(client):
    schedules_ensure()
    DetectionRunFactory(status=RunStatus.FAILED)
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "warning"
    assert response.json()["checks"]["detection"]["status"] == "warning"


def test_recent_successful_run_is_healthy_and_a_stale_one_is_unhealthy(client, settings):
    settings.SHELFWATCH_HEALTH_MAX_RUN_AGE_HOURS = 36
    schedules_ensure()
    _succeeded_run(hours_ago=40)
    stale = client.get("/health/")
    assert stale.status_code == 503
    assert stale.json()["status"] == "error"
    detection = stale.json()["checks"]["detection"]
    assert detection["status"] == "error"
    assert 39.9 < detection["last_success_age_hours"] < 40.1
    assert detection["max_age_hours"] == 36

    _succeeded_run(hours_ago=2)
    fresh = client.get("/health/")
    assert fresh.status_code == 200
    assert fresh.json()["checks"]["detection"]["status"] == "ok"


def test_stale_runs_are_ignored_when_detection_schedules_are_disabled(client):
    from django_celery_beat.models import PeriodicTask

    schedules_ensure()
    _succeeded_run(hours_ago=400)
    PeriodicTask.objects.filter(task="anomalies.detect_scheduled").update(enabled=False)
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["checks"]["detection"]["status"] == "skipped"


def test_recent_failed_notification_is_a_warning_and_an_old_one_is_not(client):
    channel = NotificationChannel.objects.create(
        name="ops mail", kind=ChannelKind.EMAIL, target="ops@example.com"
    )
    log = NotificationLog.objects.create(
        channel=channel,
        anomaly=AnomalyFactory(),
        reason="critical",
        status=DeliveryStatus.FAILED,
        attempts=3,
        error="SMTP 554 relay denied for ops@example.com",
        last_attempt_at=timezone.now() - dt.timedelta(hours=1),
    )
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "warning"
    assert body["checks"]["notifications"]["failed_recently"] == 1
    # The delivery error (addresses, hosts) stays in the admin.
    assert "ops@example.com" not in response.content.decode()

    NotificationLog.objects.filter(pk=log.pk).update(
        last_attempt_at=timezone.now() - dt.timedelta(hours=30)
    )
    assert client.get("/health/").json()["checks"]["notifications"]["status"] == "ok"


def test_a_failing_check_is_a_503_naming_only_the_exception_class(client, monkeypatch):
    def broken_cache() -> dict:
        raise ConnectionError("Error 111 connecting to redis.internal:6379 password=hunter2")

    monkeypatch.setattr(health, "check_cache", broken_cache)
    response = client.get("/health/")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["checks"]["cache"] == {"status": "error", "error": "ConnectionError"}
    assert "redis.internal" not in response.content.decode()
    assert "hunter2" not in response.content.decode()


def test_broker_check_connects_when_a_broker_is_configured(settings, monkeypatch):
    """Without a reachable broker the check raises (the report turns that into ``error``)."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    # A port nothing listens on: connection refused at once.
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    app._pool = None
    try:
        with pytest.raises(Exception, match=r"111|refused"):
            health.check_broker()
        report = health.health_report()
    finally:
        app._pool = None
    assert report["checks"]["broker"]["status"] == "error"
    assert report["status"] == "error"


def test_redirect_to_https_spares_the_health_endpoint(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health/").status_code == 200
    assert client.get("/admin/login/").status_code == 301
