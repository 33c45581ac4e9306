"""FilterSets of the outcomes API."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from anomalies.models import Anomaly, AnomalyType
from inventory.filters import MultiValueCharFilter
from inventory.models import Location
from outcomes.models import ActionTaken, Outcome, Verdict


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
