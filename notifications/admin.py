"""Admin for notification channels (recipients) and the read-only log of what was sent."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdminMixin
from notifications.models import NotificationChannel, NotificationLog
from notifications.services import NotificationError, notification_channel_test


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "target",
        "location_list",
        "min_severity",
        "unacknowledged_after_hours",
        "enabled",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("name", "target")
    autocomplete_fields = ("locations",)
    fields = (
        "name",
        ("kind", "enabled"),
        "target",
        "locations",
        ("min_severity", "unacknowledged_after_hours"),
    )
    actions = ("send_test_message",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[NotificationChannel]:
        return super().get_queryset(request).prefetch_related("locations")

    @admin.display(description="locations")
    def location_list(self, obj: NotificationChannel) -> str:
        codes = [location.code for location in obj.locations.all()]
        return ", ".join(codes) if codes else "all"

    @admin.action(description="Send a test message")
    def send_test_message(self, request: HttpRequest, queryset: QuerySet) -> None:
        sent, failed = 0, []
        for channel_id, name in queryset.order_by("name").values_list("pk", "name"):
            try:
                notification_channel_test(channel_id=channel_id)
            except NotificationError as exc:
                failed.append(f"{name}: {exc}")
            else:
                sent += 1
        self.message_user(request, f"{sent} test message(s) sent.", messages.SUCCESS)
        if failed:
            self.message_user(
                request,
                f"{len(failed)} failed: " + "; ".join(failed),
                messages.ERROR,
            )


@admin.register(NotificationLog)
class NotificationLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "channel",
        "anomaly",
        "reason",
        "status",
        "attempts",
        "sent_at",
        "error",
    )
    list_filter = ("status", "reason", "channel")
    list_select_related = ("channel", "anomaly__product", "anomaly__location")
    search_fields = ("anomaly__product__sku", "anomaly__location__code", "error")
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "channel",
        "anomaly",
        "reason",
        "status",
        "attempts",
        "error",
        "created_at",
        "last_attempt_at",
        "sent_at",
    )
