"""Admin of the triage list's saved views and of its SLA targets.

Saved views: everyone with the view permission sees the shared views and their own; store
staff and up add their own (the model's add permission); sharing one, or changing a shared
one, needs ``anomalies.share_savedview`` (the ops roles). The rules are
``anomalies.services.saved_views.saved_view_may_*``.

Triage SLA: one row, change-only, like the detection policy (the list redirects to it).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from anomalies.models import SavedView, TriageSla
from anomalies.services.saved_views import (
    querystring_clean,
    saved_view_may_edit,
    saved_view_may_share,
)
from common.admin import SingletonAdminMixin


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ("name", "open_link", "shared", "owner", "order")
    list_display_links = ("name",)
    list_filter = ("shared",)
    list_select_related = ("owner",)
    fields = ("name", "querystring", "shared", "order", "owner")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SavedView]:
        queryset = super().get_queryset(request).select_related("owner")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(Q(shared=True) | Q(owner_id=request.user.pk))

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        if saved_view_may_share(request.user):
            return ("owner",)
        return ("owner", "shared")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or saved_view_may_edit(request.user, obj))

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or saved_view_may_edit(request.user, obj))

    def save_model(self, request: HttpRequest, obj: SavedView, form, change: bool) -> None:
        if not change:
            obj.owner = request.user
        if obj.shared and not saved_view_may_share(request.user):
            obj.shared = False  # the field is read-only for them; never trust the POST
        obj.querystring = querystring_clean(obj.querystring)
        super().save_model(request, obj, form, change)

    @admin.display(description="list")
    def open_link(self, obj: SavedView) -> str:
        url = reverse("admin:anomalies_anomaly_changelist")
        return format_html('<a href="{}?{}">open the list</a>', url, obj.querystring)


@admin.register(TriageSla)
class TriageSlaAdmin(SingletonAdminMixin, admin.ModelAdmin):
    fieldsets = (
        (
            "Targets: business hours until a finding's first answer",
            {"fields": (("critical_hours", "warning_hours", "info_hours"), "warn_percent")},
        ),
        (
            "Business hours",
            {
                "fields": (
                    ("opens_at", "closes_at"),
                    TriageSla.WEEKDAY_FIELDS,
                    "updated_at",
                )
            },
        ),
    )
    readonly_fields = ("updated_at",)
