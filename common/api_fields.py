"""Serializer fields that do not coerce: a JSON number is not a string.

DRF's ``CharField`` turns ``{"name": 0}`` into ``"0"``; the schema says string, so a client
sending a number has a bug worth a 400. ``StrictModelSerializer`` uses ``StrictCharField``
for the model's text columns.
"""

from __future__ import annotations

from django.db import models
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """``CharField`` that refuses anything but a string (400 "Not a valid string.")."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer):
    """``ModelSerializer`` whose ``CharField``/``TextField`` columns are ``StrictCharField``."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
