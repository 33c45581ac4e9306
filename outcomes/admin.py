"""Admin for recorded outcomes. Saving goes through ``outcome_record`` (same rule as the API)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from outcomes.models import Outcome
from outcomes.services import outcome_record


@admin.register(Outcome)
class OutcomeAdmin(admin.ModelAdmin):
    list_display = (
        "anomaly",
        "verdict",
        "action_taken",
        "recovered_value",
        "recorded_by",
        "recorded_at",
    )
    list_filter = ("verdict", "action_taken")
    list_select_related = ("anomaly__product", "anomaly__location", "recorded_by")
    search_fields = ("=anomaly__id", "anomaly__product__sku", "anomaly__location__code", "notes")
    autocomplete_fields = ("anomaly",)
    fields = (
        "anomaly",
        "verdict",
        "action_taken",
        "recovered_value",
        "notes",
        "recorded_by",
        "recorded_at",
    )
    readonly_fields = ("recorded_by", "recorded_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Outcome | None = None) -> tuple:
        # An outcome belongs to its anomaly for good.
        return (*self.readonly_fields, "anomaly") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Outcome, form, change: bool) -> None:
        saved = outcome_record(
            anomaly_id=obj.anomaly_id,
            verdict=obj.verdict,
            action_taken=obj.action_taken,
            recovered_value=obj.recovered_value,
            notes=obj.notes,
            actor=request.user,
        )
        # The admin goes on to log and redirect with ``obj``: make it the saved row.
        obj.pk = saved.pk
        obj.refresh_from_db()
