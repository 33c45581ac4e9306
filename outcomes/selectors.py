"""Read-only queries of the outcomes loop scoped to a user's stores (see ``inventory.access``).

Cycle counts and reported misses belong to a location; outcomes to their anomaly's location.
Threshold proposals are chain-wide detector settings: who may see them is a permission.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from inventory.access import scope_filter
from outcomes.models import CycleCount, MissedAnomaly, Outcome


def cycle_counts_for_user(
    user: Any, queryset: QuerySet[CycleCount] | None = None
) -> QuerySet[CycleCount]:
    """The cycle counts of ``user``'s locations (``queryset`` default: all)."""
    return scope_filter(CycleCount.objects.all() if queryset is None else queryset, user)


def outcomes_for_user(user: Any, queryset: QuerySet[Outcome] | None = None) -> QuerySet[Outcome]:
    """The outcomes of anomalies of ``user``'s locations."""
    qs = Outcome.objects.all() if queryset is None else queryset
    return scope_filter(qs, user, field="anomaly__location")


def missed_anomalies_for_user(
    user: Any, queryset: QuerySet[MissedAnomaly] | None = None
) -> QuerySet[MissedAnomaly]:
    """The reported misses of ``user``'s locations."""
    return scope_filter(MissedAnomaly.objects.all() if queryset is None else queryset, user)
