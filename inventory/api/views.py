from __future__ import annotations

from rest_framework.viewsets import ModelViewSet

from inventory.api.serializers import LocationSerializer, ProductSerializer
from inventory.filters import LocationFilterSet, ProductFilterSet
from inventory.models import Location, Product


class ProductViewSet(ModelViewSet):
    queryset = Product.objects.order_by("sku")
    serializer_class = ProductSerializer
    filterset_class = ProductFilterSet
    ordering_fields = ["sku", "name", "category", "unit_price"]


class LocationViewSet(ModelViewSet):
    queryset = Location.objects.order_by("code")
    serializer_class = LocationSerializer
    filterset_class = LocationFilterSet
    ordering_fields = ["code", "name"]
