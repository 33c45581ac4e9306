from __future__ import annotations

from rest_framework.routers import DefaultRouter

from inventory.api import views

router = DefaultRouter()
router.register("products", views.ProductViewSet)
router.register("locations", views.LocationViewSet)
urlpatterns = router.urls
