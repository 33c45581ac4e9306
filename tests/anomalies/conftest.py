"""Fixtures of the triage and lifecycle tests (helpers in ``triage_support``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from anomalies.models import Anomaly
from inventory.models import LocationAccess
from tests.anomalies.triage_support import DISMISSED, END, RESOLVED, SNOOZED, START
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, UserFactory


@pytest.fixture
def admin_client(client, staff_user):
    """The test client logged in as the staff user of ``tests/conftest.py`` (session login)."""
    client.force_login(staff_user)
    return client


def _everywhere(user):
    """Store access to every location (triage services re-check the actor's stores)."""
    LocationAccess.objects.update_or_create(user=user, defaults={"all_locations": True})
    return user


@pytest.fixture
def actor(db):
    return _everywhere(UserFactory(username="ops"))


@pytest.fixture
def bob(db):
    return _everywhere(UserFactory(username="bob"))


@pytest.fixture
def sku_at_store(db):
    return ProductFactory(sku="A1"), LocationFactory(code="S1")


@pytest.fixture
def existing(sku_at_store):
    """Factory of the 20–25 January anomaly in a given state."""
    product, location = sku_at_store

    def build(status: str, **kwargs) -> Anomaly:
        if status == SNOOZED:
            kwargs.setdefault("snoozed_until", dt.date(2024, 3, 1))
            kwargs.setdefault("snoozed_severity", "warning")
            kwargs.setdefault("snoozed_value_at_risk", Decimal("100.00"))
        if status in (RESOLVED, DISMISSED):
            kwargs.setdefault("closed_at", timezone.now())
        return AnomalyFactory(
            product=product,
            location=location,
            status=status,
            severity="warning",
            value_at_risk=Decimal("100.00"),
            start_date=START,
            end_date=END,
            first_detected_on=END,
            last_detected_on=END,
            **kwargs,
        )

    return build
