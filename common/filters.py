"""django-filter and DRF filter helpers any app's API may use.

Model-agnostic; they import Django, DRF and django-filter only.

- ``StrictFilterBackend``: the ``FilterSet`` backend, refusing (400) a NUL byte in any query
  parameter (PostgreSQL cannot store or compare one) before a filter sees it.
- ``StrictOrderingFilter``: ``?ordering=`` with an unknown field is a 400 naming the allowed
  ones, not silently the default order.
- ``MultiValueCharFilter``: exact match on any of several values.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

NUL_MESSAGE = "Null characters are not allowed."


def query_params_reject_nul(query_params) -> None:
    """Raise DRF ``ValidationError`` ``{param: [message]}`` when any value (or name) of the
    ``QueryDict`` holds a NUL byte."""
    errors = {
        key: [NUL_MESSAGE]
        for key, values in query_params.lists()
        if "\x00" in key or any("\x00" in value for value in values)
    }
    if errors:
        raise ValidationError(errors)


class StrictFilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` that first refuses NUL bytes in the query string (400)."""

    def filter_queryset(self, request, queryset, view):
        query_params_reject_nul(request.query_params)
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """``OrderingFilter`` that answers 400 ``{"ordering": [...]}`` for an unknown field.

    The schema lists the allowed values (each field, ascending or ``-`` descending).
    """

    def get_ordering(self, request, queryset, view):
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = [param.strip() for param in params.split(",")]
            valid = self.remove_invalid_fields(queryset, fields, view, request)
            invalid = [field for field in fields if field not in valid]
            if invalid:
                allowed = ", ".join(self._allowed(queryset, view, request)) or "none"
                raise ValidationError(
                    {
                        self.ordering_param: [
                            f"Unknown ordering field(s): {', '.join(map(repr, invalid))}. "
                            f"Allowed: {allowed}."
                        ]
                    }
                )
            return valid
        return self.get_default_ordering(view)

    def _allowed(self, queryset, view, request) -> list[str]:
        context = {"request": request}
        names = [name for name, _label in self.get_valid_fields(queryset, view, context)]
        return [prefix + name for name in names for prefix in ("", "-")]

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        fields = getattr(view, "ordering_fields", None)
        if isinstance(fields, (list, tuple)):
            allowed = ", ".join(f"`{name}`" for name in fields)
            parameters[0]["description"] = (
                f"Order by {allowed} (prefix `-` for descending; comma-separate several)."
            )
        return parameters


class _AnyValuesField(forms.MultipleChoiceField):
    """A multiple-choice form field that accepts any value (there are no fixed choices),
    except one holding a NUL byte."""

    def valid_value(self, value: str) -> bool:
        return True

    def validate(self, value) -> None:
        super().validate(value)
        for item in value:
            ProhibitNullCharactersValidator()(item)


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
