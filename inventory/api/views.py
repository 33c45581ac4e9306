from __future__ import annotations

from rest_framework.viewsets import ModelViewSet

from common.api_permissions import MasterDataPermissions
from inventory.access import locations_for_user
from inventory.api.serializers import LocationSerializer, ProductSerializer
from inventory.filters import LocationFilterSet, ProductFilterSet
from inventory.models import Location, Product


class ProductViewSet(ModelViewSet):
    """Products (master data): read with the view permission, written by superusers only."""

    queryset = Product.objects.order_by("sku")
    serializer_class = ProductSerializer
    filterset_class = ProductFilterSet
    ordering_fields = ["sku", "name", "category", "unit_price"]
    permission_classes = [MasterDataPermissions]


class LocationViewSet(ModelViewSet):
    """The locations of the user's stores (master data: written by superusers only)."""

    queryset = Location.objects.order_by("code")
    serializer_class = LocationSerializer
    filterset_class = LocationFilterSet
    ordering_fields = ["code", "name"]
    permission_classes = [MasterDataPermissions]

    def get_queryset(self):
        return locations_for_user(self.request.user, super().get_queryset())
