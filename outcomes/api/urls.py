from __future__ import annotations

from rest_framework.routers import DefaultRouter

from outcomes.api import views

router = DefaultRouter()
router.register("outcomes", views.OutcomeViewSet)
urlpatterns = router.urls
