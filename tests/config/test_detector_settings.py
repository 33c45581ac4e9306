"""Detector settings pre-filled after migrate, one row per runnable detector, and their admin
(issue 14: "Detector settings are empty after make demo ... and offer pos_outage")."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from anomalies.detectors import REGISTRY
from anomalies.models import DetectorConfig
from anomalies.services.detector_settings import detector_settings_ensure
from anomalies.services.runs import detector_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_every_runnable_detector_has_a_row_after_migrate_with_its_default_switch():
    rows = {c.detector: (c.enabled, c.params) for c in DetectorConfig.objects.all()}
    assert set(rows) == set(REGISTRY)
    assert "pos_outage" not in rows  # a finding type, not a detector
    assert rows["ml_detected"] == (False, {})  # the Isolation Forest stays off by default
    assert rows["ghost_stock"] == (True, {})


def test_ensure_is_idempotent_and_keeps_what_admins_edited():
    DetectorConfig.objects.filter(detector="ghost_stock").update(params={"min_p": 0.001})
    DetectorConfig.objects.filter(detector="demand_spike").delete()

    assert detector_settings_ensure() == 1
    assert detector_settings_ensure() == 0
    assert DetectorConfig.objects.get(detector="ghost_stock").params == {"min_p": 0.001}
    # the effective settings are the same as with no rows at all
    effective = detector_settings()
    assert effective["demand_spike"]["params"] == REGISTRY["demand_spike"].default_params
    assert effective["ml_detected"]["enabled"] is False


def test_admin_list_shows_every_detector_and_nothing_is_left_to_add(admin_client):
    html = admin_client.get(reverse("admin:anomalies_detectorconfig_changelist")).content.decode()
    for name, spec in REGISTRY.items():
        assert name in html and escape(spec.description) in html
    add = admin_client.get(reverse("admin:anomalies_detectorconfig_add")).content.decode()
    assert re.findall(r'<option value="([^"]*)"', add) == [""]


def test_change_page_shows_the_defaults_read_only(admin_client):
    config = DetectorConfig.objects.get(detector="ghost_stock")
    html = admin_client.get(
        reverse("admin:anomalies_detectorconfig_change", args=[config.pk])
    ).content.decode()
    for param in REGISTRY["ghost_stock"].default_params:
        assert f"&quot;{param}&quot;" in html or f'"{param}"' in html
    assert 'name="detector"' not in html  # the detector of a row is not editable


def test_add_form_offers_only_missing_runnable_detectors(admin_client):
    DetectorConfig.objects.filter(detector="ml_detected").delete()
    html = admin_client.get(reverse("admin:anomalies_detectorconfig_add")).content.decode()
    assert '<option value="ml_detected">' in html
    assert 'value="pos_outage"' not in html
    response = admin_client.post(
        reverse("admin:anomalies_detectorconfig_add"),
        {"detector": "pos_outage", "params": "{}"},
    )
    assert response.status_code == 200
    assert not DetectorConfig.objects.filter(detector="pos_outage").exists()
