"""Where alerts about anomalies go (channels) and what has been sent where (the log)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models

from anomalies.models import Severity

# Email addresses in a channel's target: separated by commas, semicolons or whitespace.
_ADDRESS_SEPARATORS = re.compile(r"[,;\s]+")


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook (Slack-compatible JSON POST)"


class NotificationReason(models.TextChoices):
    CRITICAL = "critical", "New critical anomaly"
    UNACKNOWLEDGED = "unacknowledged", "Left unacknowledged"


class DeliveryStatus(models.TextChoices):
    # Only ever visible inside the sending transaction: the row claims the anomaly for this
    # channel and reason while the message goes out, then becomes sent or failed.
    PENDING = "pending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (retried at the next send)"


class NotificationChannel(models.Model):
    """A recipient of anomaly digests: email addresses or a webhook URL, with what to send it.

    Every send posts at most one digest per location to each enabled channel, listing the
    anomalies of that location that are newly critical or have been open (unacknowledged) for
    longer than ``unacknowledged_after_hours``.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    target = models.TextField(
        help_text="Email: one or more addresses, separated by commas or new lines. "
        "Webhook: the URL to POST the JSON to (e.g. a Slack incoming-webhook URL)."
    )
    locations = models.ManyToManyField(
        "inventory.Location",
        blank=True,
        related_name="notification_channels",
        help_text="Only anomalies at these locations. Leave empty for all locations.",
    )
    min_severity = models.CharField(
        "minimum severity",
        max_length=16,
        choices=Severity.choices,
        default=Severity.WARNING,
        help_text="Unacknowledged reminders are sent for anomalies of at least this severity; "
        "new critical anomalies are always sent.",
    )
    unacknowledged_after_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Remind about anomalies still open (not acknowledged) this many hours after "
        "they were raised. Blank: the SHELFWATCH_NOTIFY_UNACKNOWLEDGED_HOURS setting (24).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def email_addresses(self) -> list[str]:
        """The target split into addresses (email channels)."""
        return [part for part in _ADDRESS_SEPARATORS.split(self.target.strip()) if part]

    def clean(self) -> None:
        if self.kind == ChannelKind.EMAIL:
            addresses = self.email_addresses()
            if not addresses:
                raise ValidationError({"target": "Give at least one email address."})
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError as exc:
                    raise ValidationError(
                        {"target": f"{address!r} is not an email address."}
                    ) from exc
        elif self.kind == ChannelKind.WEBHOOK:
            try:
                URLValidator(schemes=["http", "https"])(self.target.strip())
            except ValidationError as exc:
                raise ValidationError({"target": "Give an http(s) URL."}) from exc


class NotificationLog(models.Model):
    """One anomaly announced (or attempted) on one channel for one reason.

    The unique constraint on (channel, anomaly, reason) is the dedup: a row in ``sent`` state
    means the anomaly is never announced again on that channel for that reason. A ``failed``
    row is retried at the next send.
    """

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="logs")
    anomaly = models.ForeignKey(
        "anomalies.Anomaly", on_delete=models.CASCADE, related_name="notification_logs"
    )
    reason = models.CharField(max_length=16, choices=NotificationReason.choices)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the latest attempt failed.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "anomaly", "reason"], name="notificationlog_unique_once"
            ),
        ]
        indexes = [
            # Log admin: newest first, filtered by status.
            models.Index(fields=["status", "-created_at"], name="notificationlog_status_idx"),
        ]
        # Selection ("not sent yet on this channel for this reason") is served by the unique
        # constraint's index on (channel, anomaly, reason).

    def __str__(self) -> str:
        return f"{self.channel_id}/{self.anomaly_id} {self.reason}: {self.status}"
