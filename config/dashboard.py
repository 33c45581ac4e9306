"""The admin dashboard page (/admin/dashboard/): KPI tiles and charts of the outcomes loop.

A thin view: the numbers come from ``outcomes.services.dashboard_summary``; this module only
formats them for tiles and turns the series into the JSON the page's Chart.js charts read
(Chart.js is served from ``static/vendor/chartjs``: no network access needed). The summary is
reused from the shared cache for ``SHELFWATCH_DASHBOARD_CACHE_SECONDS`` (it scans every anomaly
of the window: seconds at a million), one entry per user, day and window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from anomalies.models import AnomalyType, Severity
from anomalies.services.loading import latest_data_date
from common.formatting import decimal_plain, money, number
from outcomes.services import dashboard_summary

DASHBOARD_DAY_CHOICES: tuple[int, ...] = (30, 90, 180, 365)
DEFAULT_DASHBOARD_DAYS = 90
SEVERITY_COLOURS = {
    Severity.CRITICAL: "#ba2121",
    Severity.WARNING: "#b36b00",
    Severity.INFO: "#417690",
}
# One colour per anomaly type in the precision chart (colour-blind-safe Okabe-Ito palette).
TYPE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _hours(value: float | None) -> str:
    """Hours for a tile: seconds below a minute, minutes below an hour, days above two days."""
    if value is None:
        return "—"
    if value * 60 < 1:
        return f"{value * 3600:.0f} s"
    if value < 1:
        return f"{value * 60:.0f} min"
    if value >= 48:
        return f"{value / 24:.1f} days"
    return f"{value:.1f} h"


def _type_label(value: str) -> str:
    try:
        return str(AnomalyType(value).label)
    except ValueError:
        return value


def _tiles(summary: dict[str, Any]) -> list[dict[str, str]]:
    """KPI tiles: ``label``, ``value`` (formatted) and ``detail`` (a short explanation)."""
    cur = summary["currency"]
    eff = summary["effectiveness"]
    roi = summary["roi"]["totals"]
    recall = summary["recall"]
    pending = summary["counts_pending"]
    return [
        {
            "label": "Open anomalies",
            "value": f"{summary['open_total']:,}",
            "detail": f"{summary['open_by_severity'].get('critical', 0):,} critical · "
            f"{money(summary['open_value_at_risk'], cur)} at risk · "
            f"{summary['snoozed']:,} snoozed",
        },
        {
            "label": "Precision",
            "value": _percent(eff["precision"]),
            "detail": f"{eff['true_positive']:,} true of {eff['labelled']:,} labelled · "
            f"false-positive rate {_percent(eff['false_positive_rate'])}",
        },
        {
            "label": "Mean time to acknowledge",
            "value": _hours(eff["mtta_hours"]),
            "detail": f"over {eff['responded']:,} anomalies responded to",
        },
        {
            "label": "Mean time to resolve",
            "value": _hours(eff["mttr_hours"]),
            "detail": f"{eff['closed']:,} of {eff['raised']:,} closed "
            f"({_percent(eff['resolution_rate'])})",
        },
        {
            "label": "Recall (estimate)",
            "value": _percent(recall["recall"]),
            "detail": f"{recall['found']:,} found · {recall['missed']:,.1f} missed (control "
            "counts and reported misses)",
        },
        {
            "label": "Net value (ROI)",
            "value": money(roi["net_value"], cur),
            "detail": f"{money(roi['recovered_value'], cur)} recovered + "
            f"{money(roi['lost_sales_prevented'], cur)} lost sales prevented − "
            f"{money(roi['labour_cost'], cur)} labour of {roi['counts_done']:,} counts"
            + (f" · ROI {roi['roi']:.1f}×" if roi["roi"] is not None else ""),
        },
        {
            "label": "Cycle counts to do",
            "value": f"{pending['total']:,}",
            "detail": f"{pending['control']:,} of them control counts",
        },
    ]


def _percentages(values: list[float | None]) -> list[float | None]:
    return [None if v is None else round(v * 100, 1) for v in values]


def _response_series(response: dict[str, Any]) -> dict[str, Any]:
    """MTTA/MTTR per period in the unit that suits the largest value: hours, minutes or seconds."""
    values = [v for v in (*response["mtta_hours"], *response["mttr_hours"]) if v is not None]
    largest = max(values, default=0.0)
    unit, factor = ("hours", 1.0)
    if largest * 60 < 1:
        unit, factor = ("seconds", 3600.0)
    elif largest < 1:
        unit, factor = ("minutes", 60.0)

    def scaled(series: list[float | None]) -> list[float | None]:
        return [None if v is None else round(v * factor, 2) for v in series]

    return {
        "labels": [d.isoformat() for d in response["periods"]],
        "unit": unit,
        "mtta": scaled(response["mtta_hours"]),
        "mttr": scaled(response["mttr_hours"]),
    }


def _chart_data(summary: dict[str, Any]) -> dict[str, Any]:
    """The series of the four charts, JSON-ready (dates as ISO strings, rates in %)."""
    severities = [Severity.CRITICAL, Severity.WARNING, Severity.INFO]
    precision = summary["precision_over_time"]
    response = summary["response_times_over_time"]
    roi_periods = summary["roi"]["periods"]

    def cents(values: list[float | None]) -> list[float | None]:
        # JSON numbers rounded to the cent: the chart's tooltips show them as money.
        return [None if v is None else float(decimal_plain(v)) for v in values]

    return {
        "currency": summary["currency"],
        "severity": {
            "labels": [str(s.label) for s in severities],
            "values": [summary["open_by_severity"].get(s.value, 0) for s in severities],
            "colours": [SEVERITY_COLOURS[s] for s in severities],
        },
        "precision": {
            "labels": [d.isoformat() for d in precision["periods"]],
            "overall": _percentages(precision["overall"]),
            "series": [
                {
                    "label": _type_label(anomaly_type),
                    "data": _percentages(values),
                    "colour": TYPE_COLOURS[index % len(TYPE_COLOURS)],
                }
                for index, (anomaly_type, values) in enumerate(sorted(precision["by_type"].items()))
                if any(v is not None for v in values)
            ],
        },
        "response": _response_series(response),
        "roi": {
            "labels": [row["period_start"].isoformat() for row in roi_periods],
            "recovered": cents([row["recovered_value"] for row in roi_periods]),
            "prevented": cents([row["lost_sales_prevented"] for row in roi_periods]),
            "labour": cents([-(row["labour_cost"] or 0.0) for row in roi_periods]),
            "net": cents([row["net_value"] for row in roi_periods]),
            # No chart (and no axis of "£1 £1 … £0") before any value or labour was recorded.
            "empty": not _roi_has_data(roi_periods),
        },
    }


def _roi_has_data(periods: list[dict[str, Any]]) -> bool:
    """Whether any week of the ROI series has a value or a count: else the chart is empty."""
    keys = ("recovered_value", "lost_sales_prevented", "labour_cost", "net_value")
    return any(row.get(key) for row in periods for key in keys)


def _type_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "label": _type_label(row["anomaly_type"]),
            "raised": number(row["raised"]),
            "labelled": number(row["labelled"]),
            "true_positive": number(row["true_positive"]),
            "false_positive": number(row["false_positive"]),
            "expected": number(row["expected"]),
            "precision": _percent(row["precision"]),
            "mtta": _hours(row["mtta_hours"]),
            "mttr": _hours(row["mttr_hours"]),
        }
        for row in summary["by_type"]
    ]


def dashboard_summary_cached(
    *,
    today: dt.date,
    days: int,
    scope_key: str,
    compute: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """``compute()`` (a ``dashboard_summary``), reused from the cache for
    ``SHELFWATCH_DASHBOARD_CACHE_SECONDS`` (0: always computed).

    The entry is keyed by ``scope_key``, ``today`` and ``days``: ``scope_key`` must differ
    between callers who may see different numbers (the view passes the user's id, so users
    scoped to different stores never share an entry).
    """
    ttl_s = settings.SHELFWATCH_DASHBOARD_CACHE_SECONDS
    if ttl_s <= 0:
        return compute()
    key = f"dashboard:v2:{scope_key}:{today.isoformat()}:{days}"
    summary = cache.get(key)
    if summary is None:
        summary = compute()
        cache.set(key, summary, ttl_s)
    return summary


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """KPI tiles and charts for the last ``?days=`` days (one of ``DASHBOARD_DAY_CHOICES``).

    Staff only: wrapped in ``admin.site.admin_view`` in ``config/urls.py``. The numbers are
    those of the user's stores (``inventory.access``); a user who may not view anomalies is
    refused.
    """
    if not request.user.has_perm("anomalies.view_anomaly"):
        raise PermissionDenied
    try:
        days = int(request.GET.get("days", DEFAULT_DASHBOARD_DAYS))
    except ValueError:
        days = DEFAULT_DASHBOARD_DAYS
    if days not in DASHBOARD_DAY_CHOICES:
        days = DEFAULT_DASHBOARD_DAYS
    today = timezone.localdate()
    # Keyed per user: the summary counts only the user's stores. The window ends at the
    # latest day with sales data when that is before today (``report_anchor``).
    summary = dashboard_summary_cached(
        today=today,
        days=days,
        scope_key=f"user:{request.user.pk}",
        compute=lambda: dashboard_summary(
            today=today, days=days, user=request.user, data_end=latest_data_date()
        ),
    )
    context = {
        **admin.site.each_context(request),
        "title": "ShelfWatch dashboard",
        "summary": summary,
        "tiles": _tiles(summary),
        "type_rows": _type_rows(summary),
        "chart_data": _chart_data(summary),
        "day_choices": DASHBOARD_DAY_CHOICES,
        "roi_settings": summary["roi"]["settings"],
        "currency": settings.SHELFWATCH_CURRENCY,
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
