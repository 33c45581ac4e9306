"""The admin's detector health page (``/admin/anomalies/health/``): a thin view over
``anomalies.services.health.detector_health``.

Staff only (wrapped in ``admin.site.admin_view`` in ``config/urls.py``) with the permission to
view anomalies; runs and schedules are shown to those who may also view detection runs. Finding
counts are those of the user's stores. ``?muted_days=N`` sets the N of "acknowledged or snoozed
for more than N days" (default 14).
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from anomalies.models import AckUntil
from anomalies.services.health import (
    FALSE_POSITIVE_DAYS,
    FINDINGS_DAYS,
    MUTED_DAYS_DEFAULT,
    MUTED_DAYS_MAX,
    MUTED_ROWS,
    RUNS_SCANNED,
    TREND_RUNS,
    detector_health,
    muted_days_clean,
)

MUTED_DAY_CHOICES: tuple[int, ...] = (7, 14, 30, 90)


def detector_health_view(request: HttpRequest) -> HttpResponse:
    """Last runs per detector and schedule, failures, durations, findings per day, false
    positives, findings muted for more than ``?muted_days=`` days."""
    if not request.user.has_perm("anomalies.view_anomaly"):
        raise PermissionDenied
    muted_days = muted_days_clean(request.GET.get("muted_days", MUTED_DAYS_DEFAULT))
    health = detector_health(
        user=request.user,
        muted_days=muted_days,
        include_runs=request.user.has_perm("anomalies.view_detectionrun"),
    )
    context = {
        **admin.site.each_context(request),
        "title": "Detector health",
        "health": health,
        "muted_day_choices": MUTED_DAY_CHOICES,
        "muted_days_max": MUTED_DAYS_MAX,
        "muted_rows": MUTED_ROWS,
        "runs_scanned_max": RUNS_SCANNED,
        "trend_runs": TREND_RUNS,
        "findings_days": FINDINGS_DAYS,
        "false_positive_days": FALSE_POSITIVE_DAYS,
        "ack_none": AckUntil.NONE,
        "can_view_schedules": request.user.has_perm("django_celery_beat.view_periodictask"),
    }
    return TemplateResponse(request, "admin/anomalies/health.html", context)
