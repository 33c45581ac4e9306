"""The OpenAPI schema and Swagger UI views, for signed-in users unless configured public.

``SHELFWATCH_API_DOCS_PUBLIC`` (default false) is read per request, so a test's ``settings``
override applies. Anonymous: the schema answers 401 (``WWW-Authenticate: Token``); the
Swagger UI page sends a browser to the admin login and back.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.settings import api_settings


def _docs_permissions() -> list[BasePermission]:
    return [AllowAny()] if settings.SHELFWATCH_API_DOCS_PUBLIC else [IsAuthenticated()]


class SchemaView(SpectacularAPIView):
    """``GET /api/schema/``: the generated OpenAPI 3 document (YAML, or JSON on request)."""

    def get_authenticators(self):
        return [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]

    def get_permissions(self):
        return _docs_permissions()


class SwaggerView(SpectacularSwaggerView):
    """``GET /api/docs/``: Swagger UI with assets from drf-spectacular-sidecar (offline)."""

    def get_authenticators(self):
        return [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]

    def get_permissions(self):
        return _docs_permissions()

    def permission_denied(self, request, message=None, code=None):
        if not request.user or not request.user.is_authenticated:
            login = reverse("admin:login")
            return_to = urlencode({"next": request.get_full_path()})
            raise _Redirect(HttpResponseRedirect(f"{login}?{return_to}"))
        super().permission_denied(request, message=message, code=code)

    def handle_exception(self, exc):
        if isinstance(exc, _Redirect):
            return exc.response
        return super().handle_exception(exc)


class _Redirect(Exception):
    def __init__(self, response: HttpResponseRedirect) -> None:
        super().__init__("redirect")
        self.response = response
