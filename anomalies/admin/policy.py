"""Admin of the detection policy: the one row holding the false-discovery rate of every run.

Change-only: the row is created by the migration (or on first visit), cannot be added again or
deleted, and the list redirects to it. Editing needs the model's change permission; viewing
its view permission. Django's admin log keeps its history (the "History" button).
"""

from __future__ import annotations

from django.contrib import admin

from anomalies.models import DetectionPolicy
from common.admin import SingletonAdminMixin


@admin.register(DetectionPolicy)
class DetectionPolicyAdmin(SingletonAdminMixin, admin.ModelAdmin):
    fields = ("fdr_q", "updated_at")
    readonly_fields = ("updated_at",)
