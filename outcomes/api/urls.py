from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from outcomes.api import views

router = DefaultRouter()
router.register("outcomes", views.OutcomeViewSet)
router.register("cycle-counts", views.CycleCountViewSet)
router.register("missed-anomalies", views.MissedAnomalyViewSet)
urlpatterns = [
    path("effectiveness/", views.EffectivenessView.as_view(), name="effectiveness"),
    path("roi/", views.RoiView.as_view(), name="roi"),
    *router.urls,
]
