"""Notification digests: what is selected, one message per channel and location, dedup,
email and webhook delivery, failures retried."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from anomalies.models import Anomaly, AnomalyStatus, Severity
from notifications.models import (
    ChannelKind,
    DeliveryStatus,
    NotificationChannel,
    NotificationLog,
    NotificationReason,
)
from notifications.services import (
    MAX_BLOCK_ITEMS,
    NotificationError,
    notification_candidates,
    notification_channel_test,
    notifications_send,
)
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 2, 1, 9, 0, tzinfo=dt.UTC)
HOOK_URL = "https://hooks.example.com/services/T000/B000/XXX"


def raised(anomaly: Anomaly, hours_ago: float) -> Anomaly:
    """Backdate ``created_at`` (auto_now_add cannot be set on create)."""
    Anomaly.objects.filter(pk=anomaly.pk).update(created_at=NOW - dt.timedelta(hours=hours_ago))
    anomaly.refresh_from_db()
    return anomaly


def email_channel(**kwargs) -> NotificationChannel:
    defaults = {"name": "ops mail", "kind": ChannelKind.EMAIL, "target": "ops@example.com"}
    return NotificationChannel.objects.create(**{**defaults, **kwargs})


def webhook_channel(**kwargs) -> NotificationChannel:
    defaults = {"name": "slack", "kind": ChannelKind.WEBHOOK, "target": HOOK_URL}
    return NotificationChannel.objects.create(**{**defaults, **kwargs})


class FakeResponse:
    def __init__(self, status: int = 200):
        self.status = status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def posts(monkeypatch):
    """Capture webhook POSTs instead of sending them: a list of (url, JSON body, timeout)."""
    captured: list[tuple[str, dict, float]] = []

    def fake_urlopen(request, timeout):
        captured.append((request.full_url, json.loads(request.data), timeout))
        assert request.get_method() == "POST"
        assert request.get_header("Content-type") == "application/json"
        return FakeResponse(200)

    monkeypatch.setattr("notifications.services.urllib.request.urlopen", fake_urlopen)
    return captured


@pytest.fixture
def stores():
    return LocationFactory(code="S001", name="High Street"), LocationFactory(
        code="S002", name="Station"
    )


# --- selection ---------------------------------------------------------------------------------


def test_open_critical_is_selected_at_once_and_warnings_only_after_the_hours(stores):
    s1, _ = stores
    channel = email_channel()
    critical = raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)
    fresh_warning = raised(AnomalyFactory(location=s1, severity=Severity.WARNING), hours_ago=23)
    old_warning = raised(AnomalyFactory(location=s1, severity=Severity.WARNING), hours_ago=25)
    old_critical = raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=30)

    items = notification_candidates(channel=channel, now=NOW)[s1.pk]

    reasons = {item.anomaly.pk: item.reasons for item in items}
    assert reasons == {
        critical.pk: ["critical"],
        old_warning.pk: ["unacknowledged"],
        old_critical.pk: ["critical", "unacknowledged"],
    }
    assert fresh_warning.pk not in reasons
    # critical first (then by value at risk, then id), warnings after
    assert [item.anomaly.pk for item in items] == [critical.pk, old_critical.pk, old_warning.pk]


def test_acknowledged_snoozed_closed_grouped_and_below_minimum_severity_are_not_selected(stores):
    s1, _ = stores
    channel = email_channel(min_severity=Severity.WARNING)
    for status in (AnomalyStatus.ACKNOWLEDGED, AnomalyStatus.RESOLVED, AnomalyStatus.DISMISSED):
        raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL, status=status), 48)
    raised(
        AnomalyFactory(
            location=s1,
            severity=Severity.CRITICAL,
            status=AnomalyStatus.SNOOZED,
            snoozed_until=NOW.date() + dt.timedelta(days=3),
        ),
        hours_ago=48,
    )
    raised(AnomalyFactory(location=s1, severity=Severity.INFO), hours_ago=48)
    parent = raised(AnomalyFactory(location=s1, product=None, severity=Severity.CRITICAL), 2)
    raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL, parent=parent), hours_ago=2)

    items = notification_candidates(channel=channel, now=NOW)[s1.pk]

    assert [item.anomaly.pk for item in items] == [parent.pk]


def test_channel_hours_and_locations_restrict_the_selection(stores):
    s1, s2 = stores
    channel = email_channel(unacknowledged_after_hours=4)
    channel.locations.set([s2])
    raised(AnomalyFactory(location=s1, severity=Severity.WARNING), hours_ago=5)
    at_s2 = raised(AnomalyFactory(location=s2, severity=Severity.WARNING), hours_ago=5)
    raised(AnomalyFactory(location=s2, severity=Severity.WARNING), hours_ago=3)

    by_location = notification_candidates(channel=channel, now=NOW)

    assert list(by_location) == [s2.pk]
    assert [(i.anomaly.pk, i.reasons) for i in by_location[s2.pk]] == [
        (at_s2.pk, ["unacknowledged"])
    ]


def test_unacknowledged_hours_default_comes_from_the_setting(stores, settings):
    s1, _ = stores
    settings.SHELFWATCH_NOTIFY_UNACKNOWLEDGED_HOURS = 2
    channel = email_channel()
    anomaly = raised(AnomalyFactory(location=s1, severity=Severity.WARNING), hours_ago=3)

    assert [i.anomaly.pk for i in notification_candidates(channel=channel, now=NOW)[s1.pk]] == [
        anomaly.pk
    ]


# --- digests and dedup -------------------------------------------------------------------------


def test_one_email_per_location_listing_only_that_locations_anomalies(stores):
    s1, s2 = stores
    email_channel(target="ops@example.com, store-manager@example.com")
    a1 = raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)
    a2 = raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)
    b1 = raised(AnomalyFactory(location=s2, severity=Severity.CRITICAL), hours_ago=1)

    report = notifications_send(now=NOW)

    assert (report.messages_sent, report.entries_sent, report.failures) == (2, 3, [])
    assert len(mail.outbox) == 2
    first, second = mail.outbox  # locations in code order
    assert first.to == ["ops@example.com", "store-manager@example.com"]
    assert first.subject == "[ShelfWatch] S001 High Street: 2 new critical"
    assert second.subject == "[ShelfWatch] S002 Station: 1 new critical"
    assert f"/admin/anomalies/anomaly/{a1.pk}/change/" in first.body
    assert f"/admin/anomalies/anomaly/{a2.pk}/change/" in first.body
    assert f"/admin/anomalies/anomaly/{b1.pk}/change/" not in first.body
    assert f"/admin/anomalies/anomaly/{b1.pk}/change/" in second.body
    assert first.body.startswith(
        "ShelfWatch: 2 anomalies need attention at S001 High Street (2 new critical)"
    )
    assert "Critical · Ghost stock (phantom inventory) · " in first.body
    assert "£95.00 at risk" in first.body
    logs = NotificationLog.objects.filter(status=DeliveryStatus.SENT, sent_at=NOW)
    assert logs.count() == 3


def test_the_same_anomaly_is_never_sent_twice_for_the_same_reason(stores):
    s1, _ = stores
    email_channel()
    anomaly = raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)

    notifications_send(now=NOW)
    again = notifications_send(now=NOW + dt.timedelta(hours=1))

    assert (again.messages_sent, again.entries_sent) == (0, 0)
    assert len(mail.outbox) == 1

    # Still open a day later: one reminder for the other reason, then silence.
    later = NOW + dt.timedelta(hours=25)
    reminder = notifications_send(now=later)
    assert (reminder.messages_sent, reminder.entries_sent) == (1, 1)
    assert "open 26 h, not acknowledged" in mail.outbox[1].body
    assert "new critical" not in mail.outbox[1].body.split("\n\n", 1)[1]
    assert notifications_send(now=later + dt.timedelta(hours=5)).messages_sent == 0
    assert len(mail.outbox) == 2
    assert sorted(
        NotificationLog.objects.filter(anomaly=anomaly).values_list("reason", flat=True)
    ) == ["critical", "unacknowledged"]


def test_each_channel_gets_its_own_copy_once(stores, posts):
    s1, _ = stores
    email_channel()
    webhook_channel()
    raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)

    assert notifications_send(now=NOW).messages_sent == 2
    assert notifications_send(now=NOW).messages_sent == 0
    assert (len(mail.outbox), len(posts)) == (1, 1)


def test_the_log_refuses_a_second_row_for_channel_anomaly_and_reason(stores):
    channel = email_channel()
    anomaly = AnomalyFactory(location=stores[0])
    NotificationLog.objects.create(channel=channel, anomaly=anomaly, reason="critical")
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationLog.objects.create(channel=channel, anomaly=anomaly, reason="critical")


def test_disabled_channels_get_nothing(stores):
    email_channel(enabled=False)
    raised(AnomalyFactory(location=stores[0], severity=Severity.CRITICAL), hours_ago=1)

    assert notifications_send(now=NOW).messages_sent == 0
    assert mail.outbox == []
    assert not NotificationLog.objects.exists()


# --- webhooks ----------------------------------------------------------------------------------


def test_webhook_payload_is_slack_compatible(stores, posts, settings):
    settings.SHELFWATCH_BASE_URL = "https://shelfwatch.example.com/"
    s1, _ = stores
    webhook_channel()
    product = ProductFactory(sku="A&B<1>", name="Tea")
    anomaly = raised(
        AnomalyFactory(
            location=s1,
            product=product,
            severity=Severity.CRITICAL,
            value_at_risk=Decimal("1234.5"),
            explanation="No sales for 6 days <b>",
        ),
        hours_ago=1,
    )

    notifications_send(now=NOW)

    [(url, body, timeout)] = posts
    assert url == HOOK_URL
    assert timeout == 10
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(
        "ShelfWatch: 1 anomaly needs attention at S001 High Street (1 new critical)"
    )
    header, section, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "ShelfWatch: 1 anomaly needs attention at S001 High Street (1 new critical)",
        },
    }
    link = f"https://shelfwatch.example.com/admin/anomalies/anomaly/{anomaly.pk}/change/"
    assert section == {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": f"*<{link}|Critical · Ghost stock (phantom inventory) · A&amp;B&lt;1&gt; Tea · "
            "2024-01-20 – 2024-01-25 · £1,234.50 at risk>*\n"
            "No sales for 6 days &lt;b&gt;\n_new critical_",
        },
    }
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == (
        "<https://shelfwatch.example.com/admin/anomalies/anomaly/?location="
        f"{s1.pk}&status__exact=open|All open anomalies at S001 High Street>"
    )


def test_a_long_digest_lists_the_first_anomalies_as_blocks_and_counts_the_rest(stores, posts):
    s1, _ = stores
    webhook_channel()
    for _ in range(MAX_BLOCK_ITEMS + 2):
        raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)

    report = notifications_send(now=NOW)

    assert (report.messages_sent, report.entries_sent) == (1, MAX_BLOCK_ITEMS + 2)
    blocks = posts[0][1]["blocks"]
    assert [b["type"] for b in blocks].count("section") == MAX_BLOCK_ITEMS
    assert blocks[-1]["elements"][0]["text"].startswith("… and 2 more. <")
    assert posts[0][1]["text"].count("/change/") == MAX_BLOCK_ITEMS + 2


def test_a_failed_webhook_is_logged_not_marked_sent_and_retried(stores, monkeypatch, posts):
    s1, _ = stores
    webhook_channel()
    anomaly = raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)

    def down(request, timeout):
        raise urllib.error.URLError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr("notifications.services.urllib.request.urlopen", down)
        report = notifications_send(now=NOW)

    assert (report.messages_sent, report.entries_sent) == (0, 0)
    assert report.failures == ["slack S001: webhook unreachable: connection refused"]
    log = NotificationLog.objects.get(anomaly=anomaly)
    assert (log.status, log.attempts, log.error, log.sent_at) == (
        DeliveryStatus.FAILED,
        1,
        "webhook unreachable: connection refused",
        None,
    )

    retry = notifications_send(now=NOW + dt.timedelta(minutes=15))

    assert (retry.messages_sent, retry.entries_sent, retry.failures) == (1, 1, [])
    assert f"/admin/anomalies/anomaly/{anomaly.pk}/change/" in posts[0][1]["text"]
    log.refresh_from_db()
    assert (log.status, log.attempts, log.error) == (DeliveryStatus.SENT, 2, "")


def test_a_webhook_error_status_is_a_failure(stores, monkeypatch):
    webhook_channel()
    raised(AnomalyFactory(location=stores[0], severity=Severity.CRITICAL), hours_ago=1)

    def server_error(request, timeout):
        raise urllib.error.HTTPError(request.full_url, 500, "Server Error", {}, None)

    monkeypatch.setattr("notifications.services.urllib.request.urlopen", server_error)
    report = notifications_send(now=NOW)

    assert report.failures == ["slack S001: webhook answered HTTP 500"]
    assert NotificationLog.objects.get().status == DeliveryStatus.FAILED


def test_one_failing_location_does_not_stop_the_others(stores, monkeypatch):
    s1, s2 = stores
    webhook_channel()
    raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=1)
    raised(AnomalyFactory(location=s2, severity=Severity.CRITICAL), hours_ago=1)
    calls = []

    def first_fails(request, timeout):
        calls.append(request)
        if len(calls) == 1:
            raise TimeoutError("timed out")
        return FakeResponse(204)

    monkeypatch.setattr("notifications.services.urllib.request.urlopen", first_fails)
    report = notifications_send(now=NOW)

    assert (report.messages_sent, len(report.failures)) == (1, 1)
    assert dict(NotificationLog.objects.values_list("anomaly__location__code", "status")) == {
        "S001": DeliveryStatus.FAILED,
        "S002": DeliveryStatus.SENT,
    }


# --- channels ----------------------------------------------------------------------------------


def test_test_message_goes_to_the_channel_and_is_not_logged(stores, posts):
    channel = email_channel(target="a@example.com\nb@example.com")
    hook = webhook_channel()

    notification_channel_test(channel_id=channel.pk)
    notification_channel_test(channel_id=hook.pk)

    [message] = mail.outbox
    assert message.to == ["a@example.com", "b@example.com"]
    assert message.subject == "[ShelfWatch] Test message (ops mail)"
    assert set(posts[0][1]) == {"text", "blocks"}
    assert "ShelfWatch test message for channel “slack”" in posts[0][1]["text"]
    assert not NotificationLog.objects.exists()


def test_test_message_failure_raises(monkeypatch, db):
    hook = webhook_channel()

    def down(request, timeout):
        raise urllib.error.URLError("no route")

    monkeypatch.setattr("notifications.services.urllib.request.urlopen", down)
    with pytest.raises(NotificationError, match="no route"):
        notification_channel_test(channel_id=hook.pk)


@pytest.mark.parametrize(
    ("kind", "target", "error"),
    [
        (ChannelKind.EMAIL, "ops@example.com; nope", "'nope' is not an email address."),
        (ChannelKind.EMAIL, "  ", "Give at least one email address."),
        (ChannelKind.WEBHOOK, "ftp://example.com/x", "Give an http(s) URL."),
    ],
)
def test_channel_targets_are_validated(kind, target, error, db):
    channel = NotificationChannel(name="x", kind=kind, target=target)
    with pytest.raises(ValidationError) as exc:
        channel.full_clean()
    assert exc.value.message_dict["target"] == [error]


def test_every_reason_is_selected_logged_once_and_explained_in_the_message(stores):
    # A critical anomaly open for a day qualifies for every reason there is: each reason must
    # have a selection rule, a log row and a line of text (a reason added to the enum without
    # them fails here).
    s1, _ = stores
    email_channel()
    anomaly = raised(AnomalyFactory(location=s1, severity=Severity.CRITICAL), hours_ago=30)

    report = notifications_send(now=NOW)

    # One message; one entry per reason (the log has a row per channel, anomaly and reason).
    assert (report.messages_sent, report.entries_sent) == (1, len(NotificationReason.values))
    logged = NotificationLog.objects.filter(anomaly=anomaly).values_list("reason", flat=True)
    assert sorted(logged) == sorted(NotificationReason.values)
    assert "new critical; open 30 h, not acknowledged" in mail.outbox[0].body
