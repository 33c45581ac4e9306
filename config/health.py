"""``GET /health/``: is this web process able to serve, and is the pipeline behind it alive?

For a load balancer or uptime monitor: no authentication, JSON, ``200`` when every check is
``ok`` or ``warning``, ``503`` when one is ``error``. The body names each check and its state
and never carries exception messages, host names or credentials (those go to the log).

Checks:

- ``database``: ``SELECT 1`` on the default connection.
- ``cache``: a write and read of a throwaway key in the default cache (Redis in production).
- ``broker``: a connection to ``CELERY_BROKER_URL``; ``skipped`` when none is configured (tasks
  run in-process then). Whether a worker consumes is not checked here: the detection check
  below notices a pipeline that stopped.
- ``detection``: age of the latest successful detection run. Only when runs are expected (an
  enabled beat schedule of ``anomalies.detect_scheduled`` exists) and
  ``SHELFWATCH_HEALTH_MAX_RUN_AGE_HOURS`` is not 0: ``error`` when older than that. No
  successful run yet is a ``warning`` (a fresh install must not fail its first health check).
- ``notifications``: deliveries that failed in the last
  ``SHELFWATCH_HEALTH_NOTIFY_FAILURE_HOURS``: a ``warning`` (they are retried at the next send).

A single view of a few queries, rather than django-health-check: ShelfWatch needs a warning
level that keeps ``200`` and two checks of its own data; the library's built-ins would cover
only the first three.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_celery_beat.models import PeriodicTask

from anomalies.models import DetectionRun, RunStatus
from anomalies.services.schedules import SCHEDULED_TASK_NAME
from notifications.models import DeliveryStatus, NotificationLog

logger = logging.getLogger(__name__)

OK, WARNING, ERROR, SKIPPED = "ok", "warning", "error", "skipped"
# How long the broker may take to accept a connection before it counts as down (seconds).
BROKER_TIMEOUT_S = 2.0
CACHE_PROBE_TTL_S = 10

Check = dict[str, Any]


def check_database() -> Check:
    """``{"status": "ok"}`` when ``SELECT 1`` answers on the default database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": OK}


def check_cache() -> Check:
    """``ok`` when a value written to the default cache reads back, else ``error``."""
    key = f"health:probe:{uuid.uuid4().hex}"
    cache.set(key, "1", CACHE_PROBE_TTL_S)
    found = cache.get(key)
    cache.delete(key)
    return {"status": OK if found == "1" else ERROR}


def check_broker() -> Check:
    """``ok`` when the Celery broker accepts a connection; ``skipped`` without a broker."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"status": SKIPPED, "reason": "no broker configured: tasks run in-process"}
    from config.celery import app

    with app.connection_for_write(connect_timeout=BROKER_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_S)
    return {"status": OK}


def check_detection(*, now: dt.datetime) -> Check:
    """The latest successful detection run's age in hours against the allowed maximum."""
    max_age_h = settings.SHELFWATCH_HEALTH_MAX_RUN_AGE_HOURS
    if max_age_h <= 0:
        return {"status": SKIPPED, "reason": "SHELFWATCH_HEALTH_MAX_RUN_AGE_HOURS is 0"}
    if not PeriodicTask.objects.filter(task=SCHEDULED_TASK_NAME, enabled=True).exists():
        return {"status": SKIPPED, "reason": "no enabled detection schedule"}
    finished_at = (
        DetectionRun.objects.filter(status=RunStatus.SUCCEEDED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    if finished_at is None:
        return {"status": WARNING, "reason": "no successful detection run yet"}
    age_h = (now - finished_at).total_seconds() / 3600
    return {
        "status": ERROR if age_h > max_age_h else OK,
        "last_success_age_hours": round(age_h, 2),
        "max_age_hours": max_age_h,
    }


def check_notifications(*, now: dt.datetime) -> Check:
    """``warning`` with the count of deliveries whose latest attempt failed recently."""
    since = now - dt.timedelta(hours=settings.SHELFWATCH_HEALTH_NOTIFY_FAILURE_HOURS)
    failed = NotificationLog.objects.filter(
        Q(last_attempt_at__gte=since) | Q(last_attempt_at__isnull=True, created_at__gte=since),
        status=DeliveryStatus.FAILED,
    ).count()
    return {
        "status": WARNING if failed else OK,
        "failed_recently": failed,
        "window_hours": settings.SHELFWATCH_HEALTH_NOTIFY_FAILURE_HOURS,
    }


def health_report(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Run every check; return ``{"status": worst, "checks": {name: {"status": ...}}}``.

    ``worst`` is ``error`` if any check errs (a check that raises counts as ``error``, logged
    with its traceback; the report names only the exception's class), else ``warning`` if any
    warns, else ``ok``. Checks that depend on the database are skipped when it is down.
    """
    now = now or timezone.now()
    checks: dict[str, Check] = {}

    def run(name: str, check: Callable[[], Check]) -> None:
        try:
            checks[name] = check()
        except Exception as exc:
            logger.exception("health check %s failed", name)
            checks[name] = {"status": ERROR, "error": type(exc).__name__}

    run("database", check_database)
    run("cache", check_cache)
    run("broker", check_broker)
    if checks["database"]["status"] == OK:
        run("detection", lambda: check_detection(now=now))
        run("notifications", lambda: check_notifications(now=now))
    states = {check["status"] for check in checks.values()}
    status = ERROR if ERROR in states else WARNING if WARNING in states else OK
    return {"status": status, "checks": checks}


@never_cache
@require_safe
def health_view(request: HttpRequest) -> JsonResponse:
    """``health_report`` as JSON: ``200`` unless its status is ``error`` (then ``503``)."""
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == ERROR else 200)
