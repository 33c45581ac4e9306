"""List filters of the anomaly changelist (low-cardinality choices only)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

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
