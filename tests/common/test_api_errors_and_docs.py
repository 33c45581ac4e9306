"""Error bodies are JSON without tracebacks; schema and docs need a login unless configured
public; Swagger UI's assets are served locally; throttles on runs and reports."""

from __future__ import annotations

import logging

import pytest
from django.db import InterfaceError, OperationalError
from rest_framework.test import APIClient

from inventory.api.views import ProductViewSet

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"


@pytest.mark.parametrize("exc", [OperationalError("could not connect"), InterfaceError("gone")])
def test_database_errors_are_a_json_503(api_client, monkeypatch, caplog, exc):
    def broken(self, request, *args, **kwargs):
        raise exc

    monkeypatch.setattr(ProductViewSet, "list", broken)

    with caplog.at_level(logging.ERROR, logger="shelfwatch.api"):
        response = api_client.get(PRODUCTS)

    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable"}
    assert response["Retry-After"] == "30"
    assert "Database unavailable during GET /api/v1/products/" in caplog.text


def test_unhandled_errors_are_a_json_500_without_traceback(api_client, monkeypatch, caplog):
    def broken(self, request, *args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ProductViewSet, "list", broken)

    with caplog.at_level(logging.ERROR, logger="shelfwatch.api"):
        response = api_client.get(PRODUCTS)

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content
    assert "secret internals" in caplog.text  # the operators still get it


def test_unknown_api_url_is_a_json_404(api_client):
    response = api_client.delete("/api/v1/products/not-a-number/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- schema and docs ---------------------------------------------------------------------------


def test_schema_needs_authentication():
    response = APIClient().get("/api/schema/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_docs_send_anonymous_browsers_to_the_login():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=%2Fapi%2Fdocs%2F"


def test_docs_can_be_made_public(settings):
    settings.SHELFWATCH_API_DOCS_PUBLIC = True

    assert APIClient().get("/api/schema/").status_code == 200
    assert APIClient().get("/api/docs/").status_code == 200


def test_swagger_ui_assets_are_local(api_client):
    page = api_client.get("/api/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page


def test_schema_documents_token_auth_and_error_answers(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    assert "tokenAuth" in schema["components"]["securitySchemes"]
    products = schema["paths"]["/api/v1/products/"]["get"]
    assert {"200", "400", "401", "403", "429"} <= set(products["responses"])
    limit = next(p for p in products["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    token = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert "401" not in token["responses"]


# --- throttles ---------------------------------------------------------------------------------


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def test_detection_run_requests_are_throttled_but_listing_is_not(api_client, settings):
    _rates(settings, runs="2/hour")

    posts = [api_client.post("/api/v1/detection-runs/", {}, format="json") for _ in range(3)]
    lists = [api_client.get("/api/v1/detection-runs/").status_code for _ in range(3)]

    assert [r.status_code for r in posts] == [400, 400, 429]  # 400: no data to detect on
    assert "Retry-After" in posts[2]
    assert lists == [200, 200, 200]


@pytest.mark.parametrize(
    "url", ["/api/v1/roi/", "/api/v1/effectiveness/", "/api/v1/anomaly-statistics/"]
)
def test_reports_are_throttled(api_client, settings, url):
    _rates(settings, reports="2/min")

    codes = [api_client.get(url).status_code for _ in range(3)]

    assert codes == [200, 200, 429]


def test_user_rate_applies_to_every_call(api_client, settings):
    _rates(settings, user="3/min")

    codes = [api_client.get(PRODUCTS).status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
