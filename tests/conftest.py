"""Shared fixtures."""

from __future__ import annotations

import io
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
def _empty_caches():
    """Each test starts with empty caches (dashboard entries, throttle counters): ids repeat
    across tests, so an entry left by one would answer the next."""
    from django.core.cache import caches

    for cache in caches.all(initialized_only=True):
        cache.clear()


@pytest.fixture
def staff_user(db):
    """A staff user with every permission (what ops staff have in the admin)."""
    user = UserFactory(username="ops", is_superuser=True)
    return user


def grant_role(user, role: str, *, locations=(), all_locations: bool = False):
    """Put ``user`` in the group of ``role`` (a ``common.roles`` name; the groups are created by
    ``setup_roles`` if missing) and give them ``locations`` (or all locations)."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from inventory.models import LocationAccess

    if not Group.objects.filter(name=role).exists():
        call_command("setup_roles", stdout=io.StringIO())
    user.groups.add(Group.objects.get(name=role))
    access, _ = LocationAccess.objects.get_or_create(user=user)
    access.all_locations = all_locations
    access.save()
    access.locations.set(locations)
    for cached in ("_perm_cache", "_group_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cached, None)
    user.__dict__.pop("_shelfwatch_location_scope", None)
    return user


@pytest.fixture
def ops_user(db):
    """An ops manager (every store, detector settings, schedules, runs); staff of the admin."""
    from common.roles import OPS_MANAGER

    return grant_role(UserFactory(username="ops-manager"), OPS_MANAGER)


@pytest.fixture
def staff_user_for(db):
    """Factory: a store staff member of the given locations (``staff_user_for(store)``)."""
    from common.roles import STORE_STAFF

    def build(*locations, username: str | None = None):
        name = username or "staff-" + "-".join(location.code for location in locations)
        return grant_role(UserFactory(username=name), STORE_STAFF, locations=locations)

    return build


@pytest.fixture
def viewer_for(db):
    """Factory: a viewer of the given locations."""
    from common.roles import VIEWER

    def build(*locations, username: str | None = None):
        name = username or "viewer-" + "-".join(location.code for location in locations)
        return grant_role(UserFactory(username=name), VIEWER, locations=locations)

    return build


@pytest.fixture
def api_client(staff_user):
    """A DRF client authenticated as ``staff_user``."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(staff_user)
    return client
