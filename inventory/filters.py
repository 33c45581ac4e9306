"""FilterSets of the inventory API: the only place query parameters become ORM filters.

Repeat a parameter to match any of several values (``?sku=A&sku=B``).
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from inventory.models import Location, Product


class _AnyValuesField(forms.MultipleChoiceField):
    def valid_value(self, value: str) -> bool:
        return True


class MultiValueCharFilter(django_filters.MultipleChoiceFilter):
    """Exact match on any of the given values (``?sku=A&sku=B``), with no fixed choices.

    For natural keys (SKU, location code, username): an unknown value simply matches nothing.
    """

    field_class = _AnyValuesField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


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
