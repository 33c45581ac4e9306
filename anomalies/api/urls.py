from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from anomalies.api import views

router = DefaultRouter()
router.register("anomalies", views.AnomalyViewSet)
router.register("detection-runs", views.DetectionRunViewSet)
urlpatterns = [
    path(
        "anomaly-statistics/",
        views.AnomalyStatisticsView.as_view(),
        name="anomaly-statistics",
    ),
    *router.urls,
]
