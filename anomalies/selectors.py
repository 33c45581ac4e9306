"""Read-only queries of anomalies scoped to a user's stores (see ``inventory.access``).

Every list, page, export and statistic of anomalies goes through ``anomalies_for_user``;
detection runs are chain-wide (one run covers every store), so ``detection_runs_for_user``
scopes nothing: whether a user may see them at all is the ``view_detectionrun`` permission.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, ExpressionWrapper, FloatField, Q, QuerySet, Subquery

from anomalies.models import Anomaly, AnomalyActivity, DetectionRun
from anomalies.services.runs import DAY_SUMMARY_PREFIX, detection_day_summary_expressions
from inventory.access import location_scope, scope_filter


def anomalies_for_user(user: Any, queryset: QuerySet[Anomaly] | None = None) -> QuerySet[Anomaly]:
    """The anomalies of ``user``'s locations (``queryset`` default: all anomalies)."""
    return scope_filter(Anomaly.objects.all() if queryset is None else queryset, user)


def anomaly_activities_for_user(
    user: Any, queryset: QuerySet[AnomalyActivity] | None = None
) -> QuerySet[AnomalyActivity]:
    """The activity log entries of anomalies of ``user``'s locations."""
    qs = AnomalyActivity.objects.all() if queryset is None else queryset
    return scope_filter(qs, user, field="anomaly__location")


def detection_runs_for_user(
    user: Any, queryset: QuerySet[DetectionRun] | None = None
) -> QuerySet[DetectionRun]:
    """Detection runs ``user`` may see: all of them (runs are chain-wide)."""
    return DetectionRun.objects.all() if queryset is None else queryset


def detection_day_summary_expressions_for_user(user: Any) -> dict[str, Any]:
    """``detection_day_summary_expressions()`` counting only ``user``'s stores.

    For a user who sees every store these are the run totals. Otherwise the new findings are
    the anomalies of the user's stores first detected on the latest run day, "controlled" are
    those with a q-value, and the expected false alarms are q x controlled: false-discovery
    control runs per store and day, so the expectation of a set of stores is the sum of
    theirs (with several levels on one day, q is the highest: an upper bound). Uncorrelated
    scalar subqueries: a page query carries them at no query more.
    """
    expressions = detection_day_summary_expressions()
    if location_scope(user) is None:
        return expressions
    as_of = expressions[DAY_SUMMARY_PREFIX + "as_of"]
    day = anomalies_for_user(user).filter(first_detected_on=as_of).order_by()

    def total(**aggregate: Any) -> Subquery:
        # One group (the day is fixed by the filter) and one value.
        return Subquery(day.values("first_detected_on").annotate(**aggregate).values("v"))

    controlled = total(v=Count("pk", filter=Q(q_value__isnull=False)))
    q_max = expressions[DAY_SUMMARY_PREFIX + "q_max"]
    return {
        **expressions,
        DAY_SUMMARY_PREFIX + "new_findings": total(v=Count("pk")),
        DAY_SUMMARY_PREFIX + "controlled": controlled,
        DAY_SUMMARY_PREFIX + "expected_false_alarms": ExpressionWrapper(
            controlled * q_max, output_field=FloatField()
        ),
    }
