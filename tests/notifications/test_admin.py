"""Notification admin: the channel list, the test-message action, the read-only log."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse

from notifications.models import ChannelKind, NotificationChannel, NotificationLog
from tests.factories import AnomalyFactory, LocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_channel_list_shows_locations_or_all(admin_client):
    s1 = LocationFactory(code="S001")
    NotificationChannel.objects.create(name="all", kind=ChannelKind.EMAIL, target="a@example.com")
    one = NotificationChannel.objects.create(
        name="one", kind=ChannelKind.EMAIL, target="b@example.com"
    )
    one.locations.set([s1])

    response = admin_client.get(reverse("admin:notifications_notificationchannel_changelist"))

    assert response.status_code == 200
    rows = {c.name: c for c in response.context["cl"].result_list}
    admin_obj = response.context["cl"].model_admin
    assert admin_obj.location_list(rows["all"]) == "all"
    assert admin_obj.location_list(rows["one"]) == "S001"


def test_send_test_message_action_reports_counts(admin_client, monkeypatch):
    ok = NotificationChannel.objects.create(
        name="mail", kind=ChannelKind.EMAIL, target="a@example.com"
    )
    broken = NotificationChannel.objects.create(
        name="hook", kind=ChannelKind.WEBHOOK, target="https://hooks.example.com/x"
    )

    def down(request, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr("notifications.services.urllib.request.urlopen", down)
    response = admin_client.post(
        reverse("admin:notifications_notificationchannel_changelist"),
        {"action": "send_test_message", "_selected_action": [ok.pk, broken.pk]},
        follow=True,
    )

    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert texts == [
        "1 test message(s) sent.",
        "1 failed: hook: webhook unreachable: timed out",
    ]
    assert len(mail.outbox) == 1


def test_channel_form_validates_the_target(admin_client):
    response = admin_client.post(
        reverse("admin:notifications_notificationchannel_add"),
        {"name": "bad", "kind": "email", "target": "not-an-address", "min_severity": "warning"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["target"] == [
        "'not-an-address' is not an email address."
    ]
    assert not NotificationChannel.objects.exists()


def test_log_admin_is_read_only(admin_client):
    channel = NotificationChannel.objects.create(
        name="mail", kind=ChannelKind.EMAIL, target="a@example.com"
    )
    log = NotificationLog.objects.create(
        channel=channel, anomaly=AnomalyFactory(), reason="critical"
    )

    listing = admin_client.get(reverse("admin:notifications_notificationlog_changelist"))
    page = admin_client.get(reverse("admin:notifications_notificationlog_change", args=[log.pk]))

    assert listing.status_code == page.status_code == 200
    assert admin_client.get(reverse("admin:notifications_notificationlog_add")).status_code == 403
    assert not page.context["has_change_permission"]
