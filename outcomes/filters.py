"""FilterSets of the outcomes API.

Each foreign key is filterable by id and by natural key (``location``/``location_code``,
``product``/``sku``); repeat a parameter to match any of several values.
"""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from anomalies.models import Anomaly, AnomalyType
from common.filters import MultiValueCharFilter
from inventory.models import Location, Product
from outcomes.models import (
    ActionTaken,
    CycleCount,
    CycleCountStatus,
    MissedAnomaly,
    Outcome,
    Verdict,
)


class OutcomeFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search notes, SKU or location code")
    verdict = django_filters.MultipleChoiceFilter(distinct=False, choices=Verdict.choices)
    action_taken = django_filters.MultipleChoiceFilter(distinct=False, choices=ActionTaken.choices)
    anomaly = django_filters.ModelMultipleChoiceFilter(
        distinct=False, queryset=Anomaly.objects.all(), label="Anomaly (id)"
    )
    anomaly_type = django_filters.MultipleChoiceFilter(
        distinct=False, field_name="anomaly__anomaly_type", choices=AnomalyType.choices
    )
    sku = MultiValueCharFilter(field_name="anomaly__product__sku", label="SKU")
    location = django_filters.ModelMultipleChoiceFilter(
        distinct=False,
        field_name="anomaly__location",
        queryset=Location.objects.all(),
        label="Location (id)",
    )
    location_code = MultiValueCharFilter(
        field_name="anomaly__location__code", label="Location (code)"
    )
    recorded_after = django_filters.IsoDateTimeFilter(field_name="recorded_at", lookup_expr="gte")
    recorded_before = django_filters.IsoDateTimeFilter(field_name="recorded_at", lookup_expr="lte")

    class Meta:
        model = Outcome
        fields = ["id", "recorded_by"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(notes__icontains=value)
            | Q(anomaly__product__sku__icontains=value)
            | Q(anomaly__location__code__icontains=value)
        )


class CycleCountFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(distinct=False, choices=CycleCountStatus.choices)
    location = django_filters.ModelMultipleChoiceFilter(
        distinct=False, queryset=Location.objects.all(), label="Location (id)"
    )
    location_code = MultiValueCharFilter(field_name="location__code", label="Location (code)")
    product = django_filters.ModelMultipleChoiceFilter(
        distinct=False, queryset=Product.objects.all(), label="Product (id)"
    )
    sku = MultiValueCharFilter(field_name="product__sku", label="SKU")
    anomaly = django_filters.ModelMultipleChoiceFilter(
        distinct=False, queryset=Anomaly.objects.all(), label="Anomaly (id)"
    )
    is_control = django_filters.BooleanFilter(label="Control counts only (true) or none (false)")
    requested_after = django_filters.IsoDateTimeFilter(field_name="requested_at", lookup_expr="gte")
    requested_before = django_filters.IsoDateTimeFilter(
        field_name="requested_at", lookup_expr="lte"
    )

    class Meta:
        model = CycleCount
        fields = ["id"]


class MissedAnomalyFilterSet(django_filters.FilterSet):
    anomaly_type = django_filters.MultipleChoiceFilter(distinct=False, choices=AnomalyType.choices)
    location = django_filters.ModelMultipleChoiceFilter(
        distinct=False, queryset=Location.objects.all(), label="Location (id)"
    )
    location_code = MultiValueCharFilter(field_name="location__code", label="Location (code)")
    sku = MultiValueCharFilter(field_name="product__sku", label="SKU")
    start_after = django_filters.DateFilter(field_name="start_date", lookup_expr="gte")
    start_before = django_filters.DateFilter(field_name="start_date", lookup_expr="lte")

    class Meta:
        model = MissedAnomaly
        fields = ["id"]
