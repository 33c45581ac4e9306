"""The roles command and the store-scope functions every list, export and write goes through."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from anomalies.selectors import anomalies_for_user
from common.roles import ADMIN, OPS_MANAGER, ROLES, STORE_STAFF, VIEWER
from inventory.access import (
    location_ids_check,
    location_scope,
    locations_for_user,
    promotions_for_user,
)
from inventory.models import LocationAccess, Promotion
from outcomes.selectors import cycle_counts_for_user
from tests.conftest import grant_role
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def _setup_roles() -> str:
    out = io.StringIO()
    call_command("setup_roles", stdout=out)
    return out.getvalue()


# --- setup_roles -------------------------------------------------------------------------------


def test_setup_roles_creates_the_four_groups_then_changes_nothing():
    first = _setup_roles()
    permissions = {g.name: set(g.permissions.all()) for g in Group.objects.all()}
    second = _setup_roles()

    assert set(permissions) == set(ROLES) == {VIEWER, STORE_STAFF, OPS_MANAGER, ADMIN}
    assert first.count("created ") == 4
    assert second.count("unchanged ") == 4 and "created" not in second
    assert {g.name: set(g.permissions.all()) for g in Group.objects.all()} == permissions


def test_setup_roles_restores_a_group_edited_by_hand():
    _setup_roles()
    staff = Group.objects.get(name=STORE_STAFF)
    expected = set(staff.permissions.all())
    staff.permissions.remove(staff.permissions.get(codename="change_anomaly"))

    output = _setup_roles()

    assert f"updated {STORE_STAFF}: +1 -0 permissions" in output
    assert set(staff.permissions.all()) == expected


def test_roles_grow_from_viewer_to_admin():
    _setup_roles()

    def perms(name: str) -> set[str]:
        group = Group.objects.get(name=name)
        return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}

    viewer, staff, ops, admin = perms(VIEWER), perms(STORE_STAFF), perms(OPS_MANAGER), perms(ADMIN)
    assert viewer < staff < ops < admin
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in viewer)
    assert "anomalies.change_anomaly" in staff and "anomalies.add_detectionrun" not in staff
    assert {"inventory.view_all_locations", "anomalies.change_detectorconfig"} <= ops
    assert "notifications.change_notificationchannel" in ops - staff
    assert "inventory.change_product" not in ops  # master data: admins only


# --- scope functions ---------------------------------------------------------------------------


@pytest.fixture
def two_stores():
    return LocationFactory(code="SA"), LocationFactory(code="SB")


def test_scope_of_each_kind_of_user(two_stores, ops_user):
    a, _b = two_stores
    no_row = UserFactory(username="norow")
    listed = UserFactory(username="listed")
    LocationAccess.objects.create(user=listed).locations.set([a])
    everywhere = UserFactory(username="everywhere")
    LocationAccess.objects.create(user=everywhere, all_locations=True)
    inactive = UserFactory(username="gone", is_active=False, is_superuser=True)

    assert location_scope(AnonymousUser()) == frozenset()
    assert location_scope(None) == frozenset()
    assert location_scope(no_row) == frozenset()
    assert location_scope(inactive) == frozenset()
    assert location_scope(listed) == {a.pk}
    assert location_scope(everywhere) is None
    assert location_scope(UserFactory(username="root", is_superuser=True)) is None
    assert location_scope(ops_user) is None  # by the role's permission, without a list


def test_selectors_filter_by_the_users_stores(two_stores):
    a, b = two_stores
    in_a, in_b = AnomalyFactory(location=a), AnomalyFactory(location=b)
    user = UserFactory(username="listed")
    LocationAccess.objects.create(user=user).locations.set([a])

    assert list(anomalies_for_user(user)) == [in_a]
    assert list(locations_for_user(user)) == [a]
    assert list(cycle_counts_for_user(user)) == []
    assert set(anomalies_for_user(UserFactory(username="root", is_superuser=True))) == {in_a, in_b}
    assert list(anomalies_for_user(UserFactory(username="norow"))) == []


def test_chain_wide_promotions_are_visible_in_every_scope(two_stores):
    a, b = two_stores
    product = ProductFactory()
    kwargs = {"product": product, "start_date": "2024-01-01", "end_date": "2024-01-07"}
    everywhere = Promotion.objects.create(location=None, discount_pct=5, **kwargs)
    at_a = Promotion.objects.create(location=a, discount_pct=10, **kwargs)
    Promotion.objects.create(location=b, discount_pct=15, **kwargs)
    user = UserFactory(username="listed")
    LocationAccess.objects.create(user=user).locations.set([a])

    assert set(promotions_for_user(user)) == {everywhere, at_a}
    assert list(promotions_for_user(UserFactory(username="norow"))) == []


def test_location_ids_check_reads_the_scope_afresh(two_stores):
    a, b = two_stores
    user = UserFactory(username="listed")
    access = LocationAccess.objects.create(user=user)
    access.locations.set([a])
    assert location_scope(user) == {a.pk}  # cached on the object now

    location_ids_check(user=user, location_ids=[a.pk])
    with pytest.raises(PermissionDenied):
        location_ids_check(user=user, location_ids=[a.pk, b.pk])
    access.locations.clear()
    with pytest.raises(PermissionDenied):
        location_ids_check(user=user, location_ids=[a.pk])


def test_scope_costs_one_query_per_user_object(two_stores, django_assert_num_queries):
    a, _b = two_stores
    user = UserFactory(username="listed", is_staff=True)
    LocationAccess.objects.create(user=user).locations.set([a])
    user.has_perm("anomalies.view_anomaly")  # permissions loaded, as the admin and API do

    with django_assert_num_queries(1):  # the access row, once per user object
        assert location_scope(user) == {a.pk}
        assert location_scope(user) == {a.pk}
        anomalies_for_user(user)  # builds a query; runs none


# --- notifications: ops-level configuration ----------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"), [(VIEWER, False), (STORE_STAFF, False), (OPS_MANAGER, True)]
)
def test_only_ops_managers_configure_notification_channels(role, allowed):
    user = grant_role(UserFactory(username="someone"), role, locations=[LocationFactory()])
    client = Client()
    client.force_login(user)

    add = client.get(reverse("admin:notifications_notificationchannel_add"))
    listing = client.get(reverse("admin:notifications_notificationchannel_changelist"))

    assert (add.status_code, listing.status_code) == ((200, 200) if allowed else (403, 403))
