"""Admin of the detection policy: the one row holding the false-discovery rate of every run.

Change-only: the row is created by the migration (or on first visit), cannot be added again or
deleted, and the list redirects to it. Editing needs the model's change permission; viewing
its view permission. Django's admin log keeps its history (the "History" button).
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from anomalies.models import DetectionPolicy


@admin.register(DetectionPolicy)
class DetectionPolicyAdmin(admin.ModelAdmin):
    fields = ("fdr_q", "updated_at")
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the one row exists; there is nothing to add

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # Django's refusal
        policy = DetectionPolicy.load()
        opts = self.opts
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[policy.pk])
        )
