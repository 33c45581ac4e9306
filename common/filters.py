"""django-filter and DRF filter helpers any app's API may use.

Model-agnostic; they import Django, DRF and django-filter only.

- ``StrictFilterBackend``: the ``FilterSet`` backend, refusing (400, per parameter) what the
  filters would pass on to the database and fail there (HTTP 500): a NUL byte anywhere
  (PostgreSQL cannot compare one), an id beyond 64 bits or not whole, a datetime that
  leaves the calendar once converted to UTC (``0001-01-01T00:00+05:00``), and an empty value
  for a non-text filter (``?start_after=``).
- ``StrictOrderingFilter``: ``?ordering=`` with an unknown field is a 400 naming the allowed
  ones, not silently the default order.
- ``QueryParamsSerializer``: base for serializers of query parameters (no empty values).
- ``MultiValueCharFilter``: exact match on any of several values.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import django_filters
from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import utils as filter_utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

NUL_MESSAGE = "Null characters are not allowed."
EMPTY_MESSAGE = "Give a value or leave the parameter out."
INT64_MAX = 2**63 - 1
BOOLEANS = {"true", "false", "1", "0"}


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


def _is_integer_field(filterset, name: str) -> bool:
    try:
        field = filterset._meta.model._meta.get_field(name)
    except (FieldDoesNotExist, AttributeError):
        return False
    return isinstance(field, (models.IntegerField, models.AutoField, models.ForeignKey))


def _value_error(filterset, filter_, value: str) -> str | None:
    """Why ``value`` may not go to ``filter_`` (a message), or ``None`` to let its form decide."""
    if value == "":
        text = isinstance(filter_, (django_filters.CharFilter, MultiValueCharFilter))
        return None if text else EMPTY_MESSAGE
    ids = (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter)
    if isinstance(filter_, (django_filters.NumberFilter, *ids)):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None  # not a number: the filter's own message
        if not number.is_finite():
            return None
        if abs(number) > INT64_MAX:
            return f"Ensure this value is between {-INT64_MAX} and {INT64_MAX}."
        whole = isinstance(filter_, ids) or _is_integer_field(filterset, filter_.field_name)
        if whole and number != number.to_integral_value():
            return "A whole number is required."
    if isinstance(filter_, django_filters.BooleanFilter) and value.lower() not in BOOLEANS:
        return "Must be true or false."
    if isinstance(filter_, django_filters.DateTimeFilter):
        try:
            moment = parse_datetime(value)
        except ValueError:
            return None
        if moment is None:
            return None
        try:
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            moment.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            return "Out of range once converted to UTC."
    return None


class StrictFilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` that refuses (400 ``{param: [message]}``) values the database
    would choke on (see the module docstring) before the ``FilterSet`` runs."""

    def filter_queryset(self, request, queryset, view):
        query_params_reject_nul(request.query_params)
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        errors: dict[str, list[str]] = {}
        for name, filter_ in filterset.filters.items():
            for value in request.query_params.getlist(name):
                message = _value_error(filterset, filter_, value)
                if message:
                    errors[name] = [message]
                    break
        if errors:
            raise ValidationError(errors)
        if not filterset.is_valid() and self.raise_exception:
            raise filter_utils.translate_validation(filterset.errors)
        return filterset.qs


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


class QueryParamsSerializer(serializers.Serializer):
    """Base for serializers of query parameters: ``?days=`` (present but empty) is a 400
    ``{"days": ["Give a value ..."]}``, where DRF would quietly use the default."""

    def to_internal_value(self, data):
        empty = [name for name in self.fields if name in data and data.get(name) == ""]
        if empty:
            raise ValidationError({name: [EMPTY_MESSAGE] for name in empty})
        return super().to_internal_value(data)


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
