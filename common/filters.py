"""django-filter helpers any app's ``FilterSet`` may use.

Model-agnostic; they import Django and django-filter only.
"""

from __future__ import annotations

import django_filters
from django import forms


class _AnyValuesField(forms.MultipleChoiceField):
    """A multiple-choice form field that accepts any value (there are no fixed choices)."""

    def valid_value(self, value: str) -> bool:
        return True


class MultiValueCharFilter(django_filters.MultipleChoiceFilter):
    """Exact match on any of the given values (``?sku=A&sku=B``), with no fixed choices.

    For natural keys (SKU, location code, username): takes ``field_name`` and ``label`` like
    any filter; the query parameter may be repeated, an unknown value simply matches nothing
    (never a validation error), and no parameter means no filtering. ``distinct`` defaults to
    False: use it on fields that do not span a to-many relation.
    """

    field_class = _AnyValuesField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)
