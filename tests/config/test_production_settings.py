"""What config/settings.py makes of the production environment variables (issue 12).

Each case imports the settings in a fresh interpreter with its own environment: the settings
are computed once at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"].get("LOCATION"),
    "proxy": settings.SECURE_PROXY_SSL_HEADER,
    "staticfiles": settings.STORAGES["staticfiles"]["BACKEND"],
    "whitenoise": "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE,
    "hsts": settings.SECURE_HSTS_SECONDS,
}))
"""
# What a developer's shell may carry that would change the outcome.
CLEARED = ("DEBUG", "SECRET_KEY", "SHELFWATCH_CACHE_URL", "REDIS_URL", "SECURE_PROXY_SSL_HEADER")


def _settings(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=settings.BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def _loaded(**env: str) -> dict:
    result = _settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_debug_is_off_unless_asked_for_and_then_needs_a_secret_key():
    refused = _settings()
    assert refused.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in refused.stderr
    production = _loaded(SECRET_KEY="s" * 50)
    assert production["DEBUG"] is False
    assert production["whitenoise"] is True
    assert production["staticfiles"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    development = _loaded(DEBUG="true")
    assert development["DEBUG"] is True
    assert development["whitenoise"] is False
    assert development["staticfiles"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_manifest_storage_can_be_turned_off_for_uncollected_files():
    loaded = _loaded(SECRET_KEY="s" * 50, SHELFWATCH_STATIC_MANIFEST="false")
    assert loaded["staticfiles"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_cache_is_redis_when_a_url_is_given_else_local_memory():
    assert _loaded(DEBUG="true")["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    shared = _loaded(DEBUG="true", SHELFWATCH_CACHE_URL="redis://cache.internal:6379/1")
    assert shared["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert shared["cache_location"] == "redis://cache.internal:6379/1"
    fallback = _loaded(DEBUG="true", REDIS_URL="redis://r.internal:6379/2")
    assert fallback["cache_location"] == "redis://r.internal:6379/2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHELFWATCH_CACHE_URL": "memcached://x:11211"}, "is not a redis:// URL"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "use HTTP_<HEADER>,<value>"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS='a year' is not an integer"),
        ({"SECURE_SSL_REDIRECT": "yes please"}, "is not a boolean"),
    ],
)
def test_junk_production_values_are_refused(env, message):
    result = _settings(DEBUG="true", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_proxy_header_parses_to_the_pair_django_expects():
    loaded = _loaded(DEBUG="true", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO, https")
    assert loaded["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert _loaded(DEBUG="true")["proxy"] is None
