"""Anomaly statistics for dashboards and the API: counts, money at risk, a daily trend.

Two queries whatever the number of anomalies: one aggregate with a conditional count per
type, severity and status, and one GROUP BY (day, type) for the trend.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum

from anomalies.models import Anomaly, AnomalyStatus, AnomalyType, Severity
from anomalies.services.triage import ACTIVE_STATUSES

DEFAULT_TREND_DAYS = 30


def anomaly_statistics(
    *, queryset: QuerySet[Anomaly] | None = None, days: int = DEFAULT_TREND_DAYS
) -> dict[str, Any]:
    """Summarise ``queryset`` (default: every anomaly).

    Returns ``total``; ``by_type``, ``by_severity``, ``by_status`` (every choice, zeros
    included); ``open_value_at_risk`` (sum over open and acknowledged anomalies); and ``trend``:
    ``{"start", "end", "days": [{"date", "total", "by_type"}]}`` counting new anomalies by
    ``first_detected_on`` for each of the ``days`` days ending on the latest
    ``first_detected_on`` (days without any are present with zeros; ``start``/``end`` are
    ``None`` when there is nothing to count).
    """
    if days < 1:
        raise ValueError("days must be at least 1.")
    qs = (Anomaly.objects.all() if queryset is None else queryset).order_by()
    groups = {
        "by_type": ("anomaly_type", AnomalyType.values),
        "by_severity": ("severity", Severity.values),
        "by_status": ("status", AnomalyStatus.values),
    }
    aggregates: dict[str, Any] = {
        "total": Count("id"),
        "open_value_at_risk": Sum("value_at_risk", filter=Q(status__in=ACTIVE_STATUSES)),
        "latest": Max("first_detected_on"),
    }
    for group, (field, values) in groups.items():
        for value in values:
            aggregates[f"{group}:{value}"] = Count("id", filter=Q(**{field: value}))
    row = qs.aggregate(**aggregates)

    result: dict[str, Any] = {
        "total": row["total"],
        **{
            group: {value: row[f"{group}:{value}"] for value in values}
            for group, (_field, values) in groups.items()
        },
        "open_value_at_risk": row["open_value_at_risk"] or Decimal("0.00"),
        "trend": _trend(qs, latest=row["latest"], days=days),
    }
    return result


def _trend(qs: QuerySet[Anomaly], *, latest: dt.date | None, days: int) -> dict[str, Any]:
    if latest is None:
        return {"start": None, "end": None, "days": []}
    start = latest - dt.timedelta(days=days - 1)
    per_day = {
        start + dt.timedelta(days=offset): {
            "total": 0,
            "by_type": dict.fromkeys(AnomalyType.values, 0),
        }
        for offset in range(days)
    }
    counts = (
        qs.filter(first_detected_on__gte=start, first_detected_on__lte=latest)
        .values("first_detected_on", "anomaly_type")
        .annotate(n=Count("id"))
    )
    for entry in counts:
        day = per_day[entry["first_detected_on"]]
        day["by_type"][entry["anomaly_type"]] = entry["n"]
        day["total"] += entry["n"]
    return {
        "start": start,
        "end": latest,
        "days": [{"date": day, **numbers} for day, numbers in per_day.items()],
    }
