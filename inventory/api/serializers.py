from __future__ import annotations

from common.api_fields import StrictModelSerializer
from inventory.models import Location, Product


class ProductSerializer(StrictModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "category", "unit_price", "unit_cost"]


class LocationSerializer(StrictModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "code", "name"]
