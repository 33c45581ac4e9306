"""Admin for anomalies (the ops staff's triage screen), detection runs and detector settings.

Status changes happen only through the triage services (actions here, POST actions in the API);
the change form edits nothing but the assignee, and that too goes through ``anomaly_assign``.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator

from anomalies.detectors import REGISTRY
from anomalies.models import (
    Anomaly,
    AnomalyActivity,
    DetectionRun,
    DetectorConfig,
    Severity,
)
from anomalies.services.context import anomaly_recent_activity
from anomalies.services.triage import (
    ACTIVE_STATUSES,
    DismissReason,
    TransitionError,
    TransitionReport,
    anomalies_acknowledge,
    anomalies_assign,
    anomalies_dismiss,
    anomalies_resolve,
    anomaly_assign,
)
from inventory.admin import (
    LocationListFilter,
    ProductCategoryListFilter,
    ReadOnlyAdminMixin,
    RecentDaysListFilter,
)

SEVERITY_COLOURS = {
    Severity.INFO: "#417690",
    Severity.WARNING: "#b36b00",
    Severity.CRITICAL: "#ba2121",
}
EXPLANATION_LIST_CHARS = 80
ACTIVITY_LOG_ROWS = 50


def _pretty_json(value: Any) -> str:
    return format_html(
        "<pre style='margin:0'>{}</pre>",
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )


# --- filters -----------------------------------------------------------------------------------


class AnomalyCategoryListFilter(ProductCategoryListFilter):
    field_path = "product__category"


class LastDetectedListFilter(RecentDaysListFilter):
    title = "last detected"
    parameter_name = "detected"
    date_field = "last_detected_on"
    periods_days = ((1, "In the latest run"), (7, "Last 7 days"), (30, "Last 30 days"))


class AssigneeListFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("me", "Assigned to me"), ("none", "Unassigned")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "me":
            return queryset.filter(assignee=request.user)
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        return queryset


# --- anomalies ---------------------------------------------------------------------------------


class AnomalyForm(forms.ModelForm):
    """Edits only the assignee, and only while the anomaly is still being worked on."""

    class Meta:
        model = Anomaly
        fields = ("assignee",)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "assignee" in self.changed_data and self.instance.status not in ACTIVE_STATUSES:
            raise forms.ValidationError(
                f"This anomaly is {self.instance.status}; its assignee can no longer change."
            )
        return cleaned


@admin.register(Anomaly)
class AnomalyAdmin(admin.ModelAdmin):
    form = AnomalyForm
    list_display = (
        "anomaly_type",
        "severity_badge",
        "sku",
        "product_name",
        "location_code",
        "start_date",
        "end_date",
        "value_at_risk",
        "status",
        "assignee",
        "last_detected_on",
        "short_explanation",
    )
    list_display_links = ("anomaly_type",)
    list_filter = (
        "status",
        "anomaly_type",
        "severity",
        LocationListFilter,
        AnomalyCategoryListFilter,
        LastDetectedListFilter,
        AssigneeListFilter,
    )
    search_fields = ("product__sku", "product__name", "location__code", "explanation")
    search_help_text = "SKU, product name, location code or words of the explanation."
    list_select_related = ("product", "location", "assignee")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = (
        "acknowledge",
        "assign_to_me",
        "resolve",
        "dismiss_false_positive",
        "dismiss_expected",
    )
    fieldsets = (
        (
            "Finding",
            {
                "fields": (
                    ("anomaly_type", "severity", "score"),
                    ("product", "location"),
                    ("start_date", "end_date"),
                    "explanation",
                    ("expected_value", "actual_value", "value_at_risk"),
                    "details_pretty",
                )
            },
        ),
        ("Triage", {"fields": ("status", "assignee", ("acknowledged_at", "closed_at"))}),
        (
            "Detection",
            {
                "fields": (
                    ("first_detected_on", "last_detected_on"),
                    "last_run",
                    ("created_at", "updated_at"),
                )
            },
        ),
    )
    readonly_fields = (
        "anomaly_type",
        "severity",
        "score",
        "product",
        "location",
        "start_date",
        "end_date",
        "explanation",
        "expected_value",
        "actual_value",
        "value_at_risk",
        "details_pretty",
        "status",
        "acknowledged_at",
        "closed_at",
        "first_detected_on",
        "last_detected_on",
        "last_run",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Anomaly]:
        # The change page shows product, location and run: one query for the object.
        return super().get_queryset(request).select_related("product", "location", "last_run")

    def get_actions(self, request: HttpRequest) -> dict:
        # Closing is done with Resolve / Dismiss; a mass delete next to them is a trap.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # anomalies come from detection

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "assignee":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True, is_staff=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Anomaly, form, change: bool) -> None:
        if not change or "assignee" not in form.changed_data:
            return
        try:
            anomaly_assign(anomaly_id=obj.pk, assignee=obj.assignee, actor=request.user)
        except TransitionError as exc:  # changed by someone else since the form was loaded
            self.message_user(request, str(exc), messages.ERROR)

    def render_change_form(
        self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None:
            context["recent_activity"] = anomaly_recent_activity(anomaly=obj)
            context["activity_log"] = obj.activities.select_related("actor")[:ACTIVITY_LOG_ROWS]
            context["currency"] = settings.SHELFWATCH_CURRENCY
        return super().render_change_form(request, context, add, change, form_url, obj)

    # columns

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, obj: Anomaly) -> str:
        return format_html(
            '<span style="background:{};color:#fff;padding:1px 6px;border-radius:8px">{}</span>',
            SEVERITY_COLOURS.get(obj.severity, "#666"),
            obj.get_severity_display(),
        )

    @admin.display(description="SKU", ordering="product__sku")
    def sku(self, obj: Anomaly) -> str:
        return obj.product.sku if obj.product_id else "(location)"

    @admin.display(description="product", ordering="product__name")
    def product_name(self, obj: Anomaly) -> str:
        return obj.product.name if obj.product_id else ""

    @admin.display(description="location", ordering="location__code")
    def location_code(self, obj: Anomaly) -> str:
        return obj.location.code

    @admin.display(description="explanation")
    def short_explanation(self, obj: Anomaly) -> str:
        return Truncator(obj.explanation).chars(EXPLANATION_LIST_CHARS)

    @admin.display(description="details")
    def details_pretty(self, obj: Anomaly) -> str:
        return _pretty_json(obj.details)

    # actions: each calls the bulk triage service and reports counts

    def _report(self, request: HttpRequest, report: TransitionReport) -> None:
        level = messages.SUCCESS if report.changed_count else messages.WARNING
        self.message_user(request, report.summary(), level)

    @staticmethod
    def _ids(queryset: QuerySet[Anomaly]) -> list[int]:
        return list(queryset.order_by().values_list("pk", flat=True))

    @admin.action(description="Acknowledge (and claim unowned)", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        self._report(
            request, anomalies_acknowledge(anomaly_ids=self._ids(queryset), actor=request.user)
        )

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        report = anomalies_assign(
            anomaly_ids=self._ids(queryset), assignee=request.user, actor=request.user
        )
        self._report(request, report)

    @admin.action(description="Resolve", permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        self._report(
            request, anomalies_resolve(anomaly_ids=self._ids(queryset), actor=request.user)
        )

    @admin.action(description="Dismiss as false positive", permissions=["change"])
    def dismiss_false_positive(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        report = anomalies_dismiss(
            anomaly_ids=self._ids(queryset),
            actor=request.user,
            reason=DismissReason.FALSE_POSITIVE,
        )
        self._report(request, report)

    @admin.action(description="Dismiss as expected", permissions=["change"])
    def dismiss_expected(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        report = anomalies_dismiss(
            anomaly_ids=self._ids(queryset), actor=request.user, reason=DismissReason.EXPECTED
        )
        self._report(request, report)


@admin.register(AnomalyActivity)
class AnomalyActivityAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "anomaly", "action", "from_status", "to_status", "actor", "note")
    list_select_related = ("anomaly__product", "anomaly__location", "actor")
    list_filter = ("action", "to_status")
    search_fields = ("=anomaly__id", "actor__username", "note")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


# --- detection ---------------------------------------------------------------------------------


@admin.register(DetectionRun)
class DetectionRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "as_of",
        "status",
        "trigger",
        "duration",
        "counts_summary",
        "detector_names",
        "created_at",
    )
    list_filter = ("status", "trigger")
    readonly_fields = ("counts_pretty", "settings_pretty")
    exclude = ("counts", "settings")

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
        return _pretty_json(obj.counts)

    @admin.display(description="settings")
    def settings_pretty(self, obj: DetectionRun) -> str:
        return _pretty_json(obj.settings)


@admin.register(DetectorConfig)
class DetectorConfigAdmin(admin.ModelAdmin):
    list_display = ("detector", "enabled", "params", "updated_at")
    list_editable = ("enabled",)
    list_filter = ("enabled",)
    fields = ("detector", "enabled", "params", "default_params", "updated_at")
    readonly_fields = ("default_params", "updated_at")

    @admin.display(description="defaults (override any of these in params)")
    def default_params(self, obj: DetectorConfig) -> str:
        spec = REGISTRY.get(obj.detector) if obj else None
        return _pretty_json(spec.default_params) if spec else "—"
