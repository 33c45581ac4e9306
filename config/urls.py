"""URL routes: the admin, the versioned API and its OpenAPI schema, the health endpoint."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.dashboard import dashboard_view
from config.health import health_view

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("inventory.api.urls")),
    path("api/v1/", include("anomalies.api.urls")),
    path("api/v1/", include("outcomes.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health/", health_view, name="health"),
]
