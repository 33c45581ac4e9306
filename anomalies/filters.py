"""FilterSets of the anomalies API (list and statistics share ``AnomalyFilterSet``).

No filter here spans a to-many relation, so none needs DISTINCT (``distinct=False``).
Each foreign key is filterable by id and by natural key (``product``/``sku``,
``location``/``location_code``, ``assignee``/``assignee_username``); repeat a parameter to
match any of several values (``?status=open&status=acknowledged``).

Snoozed anomalies have their own status, so ``?status=open`` (the triage list) hides them and
``?status=snoozed`` lists them; ``regressed`` and ``dismiss_reason`` follow the lifecycle.
"""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from anomalies.models import (
    Anomaly,
    AnomalyStatus,
    AnomalyType,
    DetectionRun,
    DismissReason,
    RunStatus,
    Severity,
)
from common.filters import MultiValueCharFilter
from inventory.models import Location, Product


class AnomalyFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", label="Search SKU, product name, location code or explanation"
    )
    status = django_filters.MultipleChoiceFilter(distinct=False, choices=AnomalyStatus.choices)
    anomaly_type = django_filters.MultipleChoiceFilter(distinct=False, choices=AnomalyType.choices)
    severity = django_filters.MultipleChoiceFilter(distinct=False, choices=Severity.choices)
    product = django_filters.ModelMultipleChoiceFilter(
        distinct=False, queryset=Product.objects.all(), label="Product (id)"
    )
    sku = MultiValueCharFilter(field_name="product__sku", label="SKU")
    category = django_filters.CharFilter(field_name="product__category", label="Product category")
    location = django_filters.ModelMultipleChoiceFilter(
        distinct=False, queryset=Location.objects.all(), label="Location (id)"
    )
    location_code = MultiValueCharFilter(field_name="location__code", label="Location (code)")
    assignee = django_filters.ModelMultipleChoiceFilter(
        distinct=False,
        queryset=get_user_model().objects.all(),
        null_value="null",
        null_label="Unassigned",
        label="Assignee (user id; 'null' for unassigned)",
    )
    assignee_username = MultiValueCharFilter(
        field_name="assignee__username", label="Assignee (username)"
    )
    detected_after = django_filters.DateFilter(
        field_name="last_detected_on", lookup_expr="gte", label="Last detected on or after"
    )
    detected_before = django_filters.DateFilter(
        field_name="last_detected_on", lookup_expr="lte", label="Last detected on or before"
    )
    start_after = django_filters.DateFilter(
        field_name="start_date", lookup_expr="gte", label="Started on or after"
    )
    start_before = django_filters.DateFilter(
        field_name="start_date", lookup_expr="lte", label="Started on or before"
    )
    dismiss_reason = django_filters.MultipleChoiceFilter(
        distinct=False, choices=DismissReason.choices, label="Dismiss reason"
    )
    snoozed_until_before = django_filters.DateFilter(
        field_name="snoozed_until",
        lookup_expr="lte",
        label="Snoozed, reopening on or before (list snoozed ones with ?status=snoozed)",
    )
    regressed = django_filters.BooleanFilter(
        method="filter_regressed",
        label="Fired again after being resolved (true) or never did (false)",
    )

    class Meta:
        model = Anomaly
        fields = ["id", "last_run"]

    def filter_regressed(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return (
            queryset.filter(regression_count__gt=0)
            if value
            else queryset.filter(regression_count=0)
        )

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(product__sku__icontains=value)
            | Q(product__name__icontains=value)
            | Q(location__code__icontains=value)
            | Q(explanation__icontains=value)
        )


class DetectionRunFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(distinct=False, choices=RunStatus.choices)
    trigger = django_filters.CharFilter()
    as_of_after = django_filters.DateFilter(field_name="as_of", lookup_expr="gte")
    as_of_before = django_filters.DateFilter(field_name="as_of", lookup_expr="lte")

    class Meta:
        model = DetectionRun
        fields = ["id"]
