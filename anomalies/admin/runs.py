"""Admin of detection runs (with their chunks) and of detector settings."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from anomalies.admin.display import pretty_json
from anomalies.detectors import REGISTRY
from anomalies.models import DetectionChunk, DetectionRun, DetectorConfig, RunStatus
from anomalies.services.detector_settings import runnable_detectors
from common.admin import ReadOnlyAdminMixin


class DetectionChunkInline(admin.TabularInline):
    """The chunks of a run: which locations, which worker, how long, what they found."""

    model = DetectionChunk
    extra = 0
    can_delete = False
    fields = (
        "index",
        "status",
        "location_count",
        "series",
        "hypotheses_tested",
        "new_findings",
        "new_findings_controlled",
        "worker",
        "duration_seconds",
        "findings",
        "error",
    )
    readonly_fields = fields
    ordering = ("index",)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="locations")
    def location_count(self, obj: DetectionChunk) -> int:
        return len(obj.location_ids or [])

    @admin.display(description="findings")
    def findings(self, obj: DetectionChunk) -> int:
        return sum(e.get("findings", 0) for e in (obj.counts or {}).values())


@admin.register(DetectionRun)
class DetectionRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    inlines = (DetectionChunkInline,)
    list_display = (
        "id",
        "as_of",
        "status",
        "trigger",
        "duration",
        "counts_summary",
        "false_alarms",
        "detector_names",
        "created_at",
    )
    list_filter = ("status", "trigger")
    readonly_fields = ("false_alarms", "counts_pretty", "settings_pretty")
    exclude = ("counts", "settings")

    @admin.display(description="expected false alarms", ordering="expected_false_alarms")
    def false_alarms(self, obj: DetectionRun) -> str:
        """Expected false alarms among the run's new anomalies, and what they are out of."""
        if obj.expected_false_alarms is None or obj.fdr_q is None:
            if obj.status != RunStatus.SUCCEEDED:
                return "—"
            return "not controlled (run before the policy)"
        text = (
            f"{obj.expected_false_alarms:.1f} of {obj.new_findings_controlled} new controlled "
            f"finding(s) (FDR q = {obj.fdr_q:g}; {obj.hypotheses_tested:,} hypotheses tested)"
        )
        others = obj.new_findings - obj.new_findings_controlled
        return text + (f"; {others} new without p-value, not controlled" if others else "")

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, obj: DetectionRun) -> str:
        return "" if obj.duration_seconds is None else f"{obj.duration_seconds:.1f} s"

    @admin.display(description="findings")
    def counts_summary(self, obj: DetectionRun) -> str:
        entries = [entry for entry in (obj.counts or {}).values() if isinstance(entry, dict)]
        if not entries:
            return ""
        total = {
            key: sum(e.get(key, 0) for e in entries) for key in ("findings", "new", "extended")
        }
        skipped = sum(1 for e in entries if e.get("skipped"))
        text = f"{total['findings']} findings: {total['new']} new, {total['extended']} extended"
        return text + (f"; {skipped} detector(s) skipped" if skipped else "")

    @admin.display(description="detectors")
    def detector_names(self, obj: DetectionRun) -> str:
        return ", ".join(obj.detectors or [])

    @admin.display(description="counts")
    def counts_pretty(self, obj: DetectionRun) -> str:
        return pretty_json(obj.counts)

    @admin.display(description="settings")
    def settings_pretty(self, obj: DetectionRun) -> str:
        return pretty_json(obj.settings)


class DetectorConfigForm(forms.ModelForm):
    """Offers only runnable detectors (``REGISTRY``), not every finding type: ``pos_outage``
    is raised by the inventory-discrepancy detector, it is not one."""

    class Meta:
        model = DetectorConfig
        fields = ("detector", "enabled", "params")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "detector" in self.fields:  # the add form: every runnable detector without a row
            # (after migrate each has one, so normally there is nothing left to add)
            existing = set(DetectorConfig.objects.values_list("detector", flat=True))
            self.fields["detector"].choices = [
                ("", "---------"),
                *((name, name) for name, _ in runnable_detectors() if name not in existing),
            ]


@admin.register(DetectorConfig)
class DetectorConfigAdmin(admin.ModelAdmin):
    """One row per detector, created after ``migrate`` (``detector_settings_ensure``): switch
    it on or off and override parameters; the defaults are shown beside the overrides."""

    form = DetectorConfigForm
    list_display = ("detector", "description", "enabled", "overrides", "updated_at")
    list_editable = ("enabled",)
    list_filter = ("enabled",)
    fields = ("detector", "description", "enabled", "params", "default_params", "updated_at")
    readonly_fields = ("description", "default_params", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: DetectorConfig | None = None):
        # A row is a detector's settings: renaming it would make it another detector's.
        fields = tuple(super().get_readonly_fields(request, obj))
        return ("detector", *fields) if obj is not None else fields

    @admin.display(description="what it finds")
    def description(self, obj: DetectorConfig) -> str:
        spec = REGISTRY.get(obj.detector) if obj else None
        return spec.description if spec else "—"

    @admin.display(description="parameters (overrides of the defaults)")
    def overrides(self, obj: DetectorConfig) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted((obj.params or {}).items())) or "defaults"

    @admin.display(description="defaults (override any of these in params)")
    def default_params(self, obj: DetectorConfig) -> str:
        spec = REGISTRY.get(obj.detector) if obj else None
        return pretty_json(spec.default_params) if spec else "—"
