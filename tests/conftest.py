"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import UserFactory

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = PROJECT_DIR.parent / "shared" / "data"
ONLINE_RETAIL_FILE = SHARED_DATA_DIR / "online_retail" / "online_retail.csv.gz"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Hashing with PBKDF2 costs ~0.5 s per user; tests do not need real hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """DRF throttle counters live in the default cache: start each test with none, so one
    test's requests never throttle another's (user ids repeat across tests)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff_user(db):
    """A staff user with every permission (what ops staff have in the admin)."""
    user = UserFactory(username="ops", is_superuser=True)
    return user


@pytest.fixture
def api_client(staff_user):
    """A DRF client authenticated as ``staff_user``."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(staff_user)
    return client
