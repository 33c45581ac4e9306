from __future__ import annotations

import decimal
from typing import Any

from django.db import models
from rest_framework import serializers

from common.api_fields import StrictModelSerializer
from inventory.models import Location, Product

PRICE_MIN_PLACES = 2


class PriceField(serializers.DecimalField):
    """A price as a plain decimal string with at least two places: ``"2.50"``, not
    ``"2.5000"``; a sub-cent price keeps the places it was stored with (``"0.125"``), so what
    is written reads back unchanged. Input as ``DecimalField`` (up to the model's places)."""

    def to_representation(self, value: Any) -> str:
        text = super().to_representation(value)
        number = decimal.Decimal(text)
        cents = number.quantize(decimal.Decimal(1).scaleb(-PRICE_MIN_PLACES))
        if cents == number:
            return f"{cents:.{PRICE_MIN_PLACES}f}"
        return f"{number.normalize():f}"


class ProductSerializer(StrictModelSerializer):
    serializer_field_mapping = {
        **StrictModelSerializer.serializer_field_mapping,
        models.DecimalField: PriceField,
    }

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "category", "unit_price", "unit_cost"]


class LocationSerializer(StrictModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "code", "name"]
