"""FilterSets of the inventory API: the only place query parameters become ORM filters.

Repeat a parameter to match any of several values (``?sku=A&sku=B``).
"""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from common.filters import MultiValueCharFilter
from inventory.models import Location, Product


class ProductFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search SKU or name (contains)")
    sku = MultiValueCharFilter(field_name="sku", label="SKU")
    category = django_filters.CharFilter(field_name="category", label="Category (exact)")

    class Meta:
        model = Product
        fields = ["id"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(sku__icontains=value) | Q(name__icontains=value))


class LocationFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search code or name (contains)")
    code = MultiValueCharFilter(field_name="code", label="Code")

    class Meta:
        model = Location
        fields = ["id"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value))
