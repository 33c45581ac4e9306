"""Sending anomaly digests to the configured channels (email, Slack-compatible webhooks).

What is sent, per enabled channel:

- ``critical``: anomalies that are open (nobody acknowledged them yet) and of severity
  critical — raised critical, or escalated to critical when detection extended them;
- ``unacknowledged``: anomalies still open ``unacknowledged_after_hours`` hours (channel field,
  else ``SHELFWATCH_NOTIFY_UNACKNOWLEDGED_HOURS``, 24) after they were raised (``created_at``),
  of at least the channel's minimum severity;

restricted to the channel's locations (none = all). Channels are ops-level configuration: only
the ops manager and admin roles may see, add or change them (model permissions), so the
recipients of a channel are chosen by someone who sees every store, and its ``locations`` are
the store scope of what it posts. Child anomalies grouped under a root cause
(``parent`` set) are not announced on their own: their parent is. Only ``open`` anomalies are
announced: acknowledged, snoozed and closed ones are being (or have been) dealt with.

One message per channel and location per send (a digest). Dedup: a ``NotificationLog`` row per
(channel, anomaly, reason), unique; in one transaction per digest the rows are inserted (or the
existing failed ones locked), the message is sent, and the rows become ``sent`` or ``failed``.
A concurrent sender blocks on those rows and then finds them sent, so an anomaly is never
announced twice on a channel for the same reason; a failed delivery stays ``failed`` (with its
error) and is tried again at the next send.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.urls import reverse
from django.utils.text import Truncator

from anomalies.models import Anomaly, AnomalyStatus, Severity
from inventory.models import Location
from notifications.models import (
    ChannelKind,
    DeliveryStatus,
    NotificationChannel,
    NotificationLog,
    NotificationReason,
)

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10
# Slack allows 50 blocks per message; a digest lists this many anomalies as blocks and links
# the rest (the plain ``text`` and the email always list them all).
MAX_BLOCK_ITEMS = 20
# Slack's limits: 150 characters for a header, 3000 for a section's text.
SLACK_HEADER_CHARS = 150
EXPLANATION_CHARS = 300
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class NotificationError(Exception):
    """A message could not be delivered (SMTP or HTTP error, timeout, bad target)."""


@dataclass
class DigestItem:
    """One anomaly in a digest and why it is there (one or both ``NotificationReason``s)."""

    anomaly: Anomaly
    reasons: list[str]


@dataclass
class SendReport:
    """What one ``notifications_send`` did.

    ``messages_sent``: digests delivered; ``entries_sent``: (anomaly, reason) pairs marked sent;
    ``failures``: one line per digest that could not be delivered (``"<channel> <location>:
    <error>"``); those entries stay failed and are retried at the next send.
    """

    messages_sent: int = 0
    entries_sent: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.messages_sent} digest(s) sent covering {self.entries_sent} notification(s)"
        if self.failures:
            text += f"; {len(self.failures)} failed: " + "; ".join(self.failures)
        return text + "."

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages_sent": self.messages_sent,
            "entries_sent": self.entries_sent,
            "failures": list(self.failures),
        }


# --- selection ---------------------------------------------------------------------------------


def _unacknowledged_hours(channel: NotificationChannel) -> int:
    if channel.unacknowledged_after_hours is not None:
        return channel.unacknowledged_after_hours
    return settings.SHELFWATCH_NOTIFY_UNACKNOWLEDGED_HOURS


def _not_sent(queryset: QuerySet[Anomaly], channel: NotificationChannel, reason: str) -> QuerySet:
    sent = NotificationLog.objects.filter(
        channel=channel, anomaly=OuterRef("pk"), reason=reason, status=DeliveryStatus.SENT
    )
    return queryset.filter(~Exists(sent))


def notification_candidates(
    *, channel: NotificationChannel, now: dt.datetime
) -> dict[int, list[DigestItem]]:
    """The anomalies ``channel`` has not been told about yet, by location id.

    Items per location are ordered by severity (highest first), value at risk (highest first)
    and id. Two queries (plus one for the channel's locations).
    """
    base = Anomaly.objects.filter(status=AnomalyStatus.OPEN, parent__isnull=True)
    location_ids = list(channel.locations.values_list("pk", flat=True))
    if location_ids:
        base = base.filter(location_id__in=location_ids)
    allowed = [
        s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[channel.min_severity]
    ]
    cutoff = now - dt.timedelta(hours=_unacknowledged_hours(channel))
    selections = {
        NotificationReason.CRITICAL: base.filter(severity=Severity.CRITICAL),
        NotificationReason.UNACKNOWLEDGED: base.filter(
            severity__in=allowed, created_at__lte=cutoff
        ),
    }
    items: dict[int, DigestItem] = {}
    for reason, queryset in selections.items():
        for anomaly in _not_sent(queryset, channel, reason).select_related("product", "location"):
            item = items.setdefault(anomaly.pk, DigestItem(anomaly=anomaly, reasons=[]))
            item.reasons.append(str(reason))
    by_location: dict[int, list[DigestItem]] = defaultdict(list)
    for item in sorted(
        items.values(),
        key=lambda i: (
            -SEVERITY_RANK.get(i.anomaly.severity, 0),
            -i.anomaly.value_at_risk,
            i.anomaly.pk,
        ),
    ):
        by_location[item.anomaly.location_id].append(item)
    return dict(by_location)


# --- rendering (no database) -------------------------------------------------------------------


def _absolute(path: str) -> str:
    return settings.SHELFWATCH_BASE_URL.rstrip("/") + path


def _slack_escape(text: str) -> str:
    # Slack mrkdwn: &, < and > are control characters and must be escaped.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _reason_text(item: DigestItem, now: dt.datetime) -> str:
    parts = []
    if NotificationReason.CRITICAL in item.reasons:
        parts.append("new critical")
    if NotificationReason.UNACKNOWLEDGED in item.reasons:
        hours = int((now - item.anomaly.created_at).total_seconds() // 3600)
        parts.append(f"open {hours} h, not acknowledged")
    return "; ".join(parts)


def _headline(anomaly: Anomaly) -> str:
    what = (
        f"{anomaly.product.sku} {anomaly.product.name}".strip()
        if anomaly.product_id
        else "(whole location)"
    )
    period = f"{anomaly.start_date:%Y-%m-%d} – {anomaly.end_date:%Y-%m-%d}"
    money = f"{settings.SHELFWATCH_CURRENCY}{anomaly.value_at_risk:,.2f} at risk"
    return " · ".join(
        [anomaly.get_severity_display(), anomaly.get_anomaly_type_display(), what, period, money]
    )


def digest_render(
    *, location: Location, items: list[DigestItem], now: dt.datetime
) -> dict[str, Any]:
    """The message for one location: ``{"subject", "text", "blocks"}``.

    ``text`` lists every item (email body and the Slack fallback); ``blocks`` is Slack Block
    Kit: a header, one section per item (at most ``MAX_BLOCK_ITEMS``) and a context line linking
    the location's open anomalies. Links are absolute, from ``SHELFWATCH_BASE_URL``.
    """
    critical = sum(NotificationReason.CRITICAL in i.reasons for i in items)
    unacknowledged = sum(NotificationReason.UNACKNOWLEDGED in i.reasons for i in items)
    counts = ", ".join(
        part
        for part in (
            f"{critical} new critical" if critical else "",
            f"{unacknowledged} unacknowledged" if unacknowledged else "",
        )
        if part
    )
    where = str(location)
    noun = "anomaly needs" if len(items) == 1 else "anomalies need"
    title = f"ShelfWatch: {len(items)} {noun} attention at {where} ({counts})"
    list_url = _absolute(
        reverse("admin:anomalies_anomaly_changelist")
        + "?"
        + urlencode({"location": location.pk, "status__exact": AnomalyStatus.OPEN})
    )

    lines = [title, ""]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": Truncator(title).chars(SLACK_HEADER_CHARS)},
        }
    ]
    for index, item in enumerate(items):
        anomaly = item.anomaly
        url = _absolute(reverse("admin:anomalies_anomaly_change", args=[anomaly.pk]))
        headline = _headline(anomaly)
        explanation = Truncator(anomaly.explanation).chars(EXPLANATION_CHARS)
        why = _reason_text(item, now)
        lines += [f"* {headline}", f"  {explanation}", f"  ({why}) {url}", ""]
        if index < MAX_BLOCK_ITEMS:
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"*<{url}|{_slack_escape(headline)}>*\n"
                        f"{_slack_escape(explanation)}\n_{_slack_escape(why)}_",
                    },
                }
            )
    more = len(items) - MAX_BLOCK_ITEMS
    footer = f"All open anomalies at {where}: {list_url}"
    lines.append(footer)
    context = f"<{list_url}|All open anomalies at {_slack_escape(where)}>"
    if more > 0:
        context = f"… and {more} more. " + context
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {
        "subject": f"[ShelfWatch] {where}: {counts}",
        "text": "\n".join(lines),
        "blocks": blocks,
    }


# --- delivery ----------------------------------------------------------------------------------


def webhook_post(*, url: str, payload: dict[str, Any]) -> None:
    """POST ``payload`` as JSON to ``url`` (timeout ``WEBHOOK_TIMEOUT_SECONDS``).

    Raises ``NotificationError`` on a connection error, a timeout or a non-2xx status.
    """
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "ShelfWatch"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise NotificationError(f"webhook answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotificationError(f"webhook unreachable: {reason}") from exc
    if not 200 <= status < 300:
        raise NotificationError(f"webhook answered HTTP {status}")


def channel_deliver(*, channel: NotificationChannel, message: dict[str, Any]) -> None:
    """Send ``message`` (``subject``, ``text``, ``blocks``) to ``channel``.

    Email: one message to all the channel's addresses through Django's email backend.
    Webhook: ``{"text": ..., "blocks": [...]}`` POSTed as JSON. Raises ``NotificationError``.
    """
    if channel.kind == ChannelKind.EMAIL:
        addresses = channel.email_addresses()
        if not addresses:
            raise NotificationError("no email address configured")
        try:
            EmailMessage(
                subject=message["subject"],
                body=message["text"],
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=addresses,
            ).send(fail_silently=False)
        except Exception as exc:  # SMTP and socket errors have no common base class
            raise NotificationError(f"email not sent: {exc}") from exc
    elif channel.kind == ChannelKind.WEBHOOK:
        webhook_post(
            url=channel.target.strip(),
            payload={"text": message["text"], "blocks": message["blocks"]},
        )
    else:
        raise NotificationError(f"unknown channel kind {channel.kind!r}")


def _digest_send(
    *,
    channel: NotificationChannel,
    location: Location,
    items: list[DigestItem],
    now: dt.datetime,
    report: SendReport,
) -> None:
    wanted = {(item.anomaly.pk, reason) for item in items for reason in item.reasons}
    with transaction.atomic():
        # Claim: insert the log rows (a concurrent sender waits on the unique index until we
        # commit, then finds them sent), then lock those not sent yet, ours or failed before.
        NotificationLog.objects.bulk_create(
            [
                NotificationLog(channel=channel, anomaly_id=anomaly_id, reason=reason)
                for anomaly_id, reason in sorted(wanted)
            ],
            ignore_conflicts=True,
        )
        claimed = [
            (pk, anomaly_id, reason)
            for pk, anomaly_id, reason in NotificationLog.objects.select_for_update()
            .filter(
                channel=channel,
                anomaly_id__in={anomaly_id for anomaly_id, _ in wanted},
                status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
            )
            .order_by("pk")
            .values_list("pk", "anomaly_id", "reason")
            if (anomaly_id, reason) in wanted
        ]
        if not claimed:
            return
        reasons_by_anomaly: dict[int, list[str]] = defaultdict(list)
        for _pk, anomaly_id, reason in claimed:
            reasons_by_anomaly[anomaly_id].append(reason)
        kept = [
            DigestItem(anomaly=item.anomaly, reasons=sorted(reasons_by_anomaly[item.anomaly.pk]))
            for item in items
            if item.anomaly.pk in reasons_by_anomaly
        ]
        log_rows = NotificationLog.objects.filter(pk__in=[pk for pk, _, _ in claimed])
        try:
            channel_deliver(
                channel=channel, message=digest_render(location=location, items=kept, now=now)
            )
        except NotificationError as exc:
            logger.warning("Notification to %s for %s failed: %s", channel, location, exc)
            log_rows.update(
                status=DeliveryStatus.FAILED,
                error=str(exc),
                attempts=F("attempts") + 1,
                last_attempt_at=now,
            )
            report.failures.append(f"{channel.name} {location.code}: {exc}")
            return
        log_rows.update(
            status=DeliveryStatus.SENT,
            error="",
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            sent_at=now,
        )
    report.messages_sent += 1
    report.entries_sent += len(claimed)


def notifications_send(*, now: dt.datetime) -> SendReport:
    """Send every enabled channel its digests (one per location) of what it was not told yet.

    ``now`` (aware datetime) decides which open anomalies count as unacknowledged and stamps
    the log rows. Delivery errors do not raise: they are recorded on the log rows (``failed``,
    retried next time) and listed in the report.
    """
    report = SendReport()
    channels = NotificationChannel.objects.filter(enabled=True).order_by("name")
    for channel in channels:
        by_location = notification_candidates(channel=channel, now=now)
        if not by_location:
            continue
        locations = Location.objects.in_bulk(list(by_location))
        for location_id in sorted(by_location, key=lambda pk: locations[pk].code):
            _digest_send(
                channel=channel,
                location=locations[location_id],
                items=by_location[location_id],
                now=now,
                report=report,
            )
    return report


def notification_channel_test(*, channel_id: int) -> NotificationChannel:
    """Send a short test message to channel ``channel_id``; nothing is logged.

    Raises ``NotificationError`` when delivery fails, ``NotificationChannel.DoesNotExist``
    when there is no such channel.
    """
    channel = NotificationChannel.objects.get(pk=channel_id)
    title = f"ShelfWatch test message for channel “{channel.name}”"
    text = f"{title}. If you can read this, anomaly digests will reach you here."
    channel_deliver(
        channel=channel,
        message={
            "subject": f"[ShelfWatch] Test message ({channel.name})",
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(text)}}
            ],
        },
    )
    return channel
