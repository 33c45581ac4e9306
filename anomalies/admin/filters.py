"""List filters of the anomaly changelist (low-cardinality choices only)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from anomalies.models import Anomaly
from inventory.access import location_scope
from inventory.admin import ProductCategoryListFilter, RecentDaysListFilter


class AnomalyCategoryListFilter(ProductCategoryListFilter):
    field_path = "product__category"


class LastDetectedListFilter(RecentDaysListFilter):
    title = "last detected"
    parameter_name = "detected"
    date_field = "last_detected_on"
    periods_days = ((1, "In the latest run"), (7, "Last 7 days"), (30, "Last 30 days"))


class AssigneeListFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("me", "Assigned to me"), ("none", "Unassigned")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "me":
            return queryset.filter(assignee=request.user)
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        return queryset


class RegressedListFilter(admin.SimpleListFilter):
    title = "regressed"
    parameter_name = "regressed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("yes", "Fired again after being resolved"), ("no", "Never regressed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(regression_count__gt=0)
        if self.value() == "no":
            return queryset.filter(regression_count=0)
        return queryset


class RootCauseListFilter(admin.SimpleListFilter):
    """Top-level anomalies only (one line per root cause), or the ones grouped under another."""

    title = "root cause"
    parameter_name = "grouped"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [
            ("no", "Top level (one per root cause)"),
            ("yes", "Grouped under another anomaly"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(parent__isnull=False)
        if self.value() == "no":
            return queryset.filter(parent__isnull=True)
        return queryset


# --- triage list (issue 14): the filters the built-in saved views use ----------------------------

# outcomes.CycleCountStatus.REQUESTED: anomalies may not import outcomes (import-linter), so the
# value is spelled here; tests/anomalies/test_admin_list.py checks it against the choice.
CYCLE_COUNT_REQUESTED = "requested"


def count_pending_expression() -> Exists:
    """True for an anomaly with a cycle count requested and not yet recorded or cancelled.

    Goes through the reverse relation (``CycleCount.anomaly``'s ``related_name``), so this app
    needs no import of outcomes; a correlated EXISTS on the primary key, no join of the page.
    """
    return Exists(
        Anomaly.objects.filter(pk=OuterRef("pk"), cycle_counts__status=CYCLE_COUNT_REQUESTED)
    )


class PendingCountListFilter(admin.SimpleListFilter):
    title = "cycle count"
    parameter_name = "count"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("pending", "Count requested, not yet recorded"), ("none", "No count pending")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "pending":
            return queryset.filter(count_pending_expression())
        if self.value() == "none":
            return queryset.filter(~count_pending_expression())
        return queryset


class MyStoresListFilter(admin.SimpleListFilter):
    """The stores of the user's store access (every store for ops managers and admins).

    The scope is the one ``get_queryset`` already read (cached on the user): no query more.
    """

    title = "stores"
    parameter_name = "stores"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("mine", "My stores")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "mine":
            return queryset
        scope = location_scope(request.user)
        return queryset if scope is None else queryset.filter(location_id__in=scope)


class NewInLatestRunListFilter(admin.SimpleListFilter):
    """Findings first raised on the latest detection day (the newest ``last_detected_on``).

    Anchored on the data, not the calendar: with data that ends before today, "new today"
    means new on the newest day detection ran for. A subquery of the page's own queries
    (index-backed), not a query of its own.
    """

    title = "new"
    parameter_name = "new"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("latest", "New in the latest detection day")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "latest":
            return queryset
        latest = Anomaly.objects.order_by("-last_detected_on").values("last_detected_on")[:1]
        return queryset.filter(first_detected_on=Subquery(latest))
