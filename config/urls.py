"""URL routes: the admin, the versioned API and its OpenAPI schema, the health endpoint."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from anomalies.admin.health import detector_health_view
from common.api_docs import SchemaView, SwaggerView
from common.api_exceptions import api_not_found
from common.api_token import ObtainTokenView
from config.dashboard import dashboard_view
from config.health import health_view

# ShelfWatch's name on every admin page (header, <title>, index heading) instead of Django's.
admin.site.site_header = "ShelfWatch"
admin.site.site_title = "ShelfWatch"
admin.site.index_title = "Triage and data"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path(
        "admin/anomalies/health/",
        admin.site.admin_view(detector_health_view),
        name="admin-detector-health",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/v1/", include("inventory.api.urls")),
    path("api/v1/", include("anomalies.api.urls")),
    path("api/v1/", include("outcomes.api.urls")),
    path("health/", health_view, name="health"),
    # Schema and Swagger UI: signed-in users only unless SHELFWATCH_API_DOCS_PUBLIC=true.
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Last: any other /api/ URL is a JSON 404, not Django's HTML page.
    re_path(r"^api/", api_not_found),
]
