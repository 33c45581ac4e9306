"""Admin for outcomes, cycle counts, reported misses and threshold proposals.

Every change goes through ``outcomes.services`` (the same rules as the API): saving an outcome
calls ``outcome_record``, entering a counted quantity calls ``cycle_count_record``, applying a
proposal calls ``threshold_proposal_apply``.
"""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from anomalies.selectors import anomalies_for_user
from common.admin import ReadOnlyAdminMixin
from inventory.access import locations_for_user
from inventory.admin import LocationListFilter, StoreScopedAdminMixin
from inventory.models import Location
from outcomes.models import (
    CycleCount,
    CycleCountStatus,
    MissedAnomaly,
    Outcome,
    ProposalStatus,
    ThresholdProposal,
)
from outcomes.selectors import cycle_counts_for_user, missed_anomalies_for_user, outcomes_for_user
from outcomes.services import (
    CycleCountError,
    ProposalError,
    cycle_count_record,
    cycle_counts_cancel,
    cycle_counts_export_csv,
    missed_anomaly_report,
    outcome_record,
    threshold_proposal_apply,
    threshold_proposals_create,
)
from outcomes.services.cycle_counts import cycle_count_default_date, cycle_count_result_sentence


@admin.register(Outcome)
class OutcomeAdmin(StoreScopedAdminMixin, admin.ModelAdmin):
    scope_for_user = staticmethod(outcomes_for_user)
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

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "anomaly":  # only anomalies of the user's stores can be chosen
            kwargs["queryset"] = anomalies_for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

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


# --- cycle counts ------------------------------------------------------------------------------


class CycleCountForm(forms.ModelForm):
    """Only the count result is entered here, and only while the count is requested."""

    class Meta:
        model = CycleCount
        fields = ("counted_quantity", "counted_on", "notes")
        help_texts = {
            "counted_on": "Stock date the count applies to: pre-filled with the latest day with "
            "stock data for this SKU here (imported data often ends before today); blank means "
            "that day.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        count = self.instance
        if (
            count.pk is not None
            and count.status == CycleCountStatus.REQUESTED
            and count.counted_on is None
            and "counted_on" in self.fields
        ):
            self.initial["counted_on"] = cycle_count_default_date(
                product_id=count.product_id, location_id=count.location_id
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        quantity = cleaned.get("counted_quantity")
        if self.instance.status != CycleCountStatus.REQUESTED:
            if self.changed_data:
                raise forms.ValidationError(
                    f"This count is {self.instance.status}; it can no longer change."
                )
            return cleaned
        if quantity is None:
            self.add_error("counted_quantity", "Enter the units counted.")
        elif quantity < 0:
            self.add_error("counted_quantity", "A count cannot be negative.")
        counted_on = cleaned.get("counted_on")
        if counted_on and counted_on > timezone.localdate():
            self.add_error("counted_on", "The count date is in the future.")
        return cleaned


@admin.register(CycleCount)
class CycleCountAdmin(StoreScopedAdminMixin, admin.ModelAdmin):
    """The count list: filter by store, highest priority first, export the store's sheet."""

    scope_for_user = staticmethod(cycle_counts_for_user)

    form = CycleCountForm
    list_display = (
        "priority_display",
        "sku",
        "product_name",
        "location_code",
        "status",
        "book_on_hand",
        "counted_quantity",
        "delta",
        "kind",
        "anomaly_link",
        "requested_at",
        "counted_at",
    )
    list_display_links = ("priority_display", "sku")
    list_filter = ("status", LocationListFilter, "is_control")
    list_select_related = ("product", "location", "anomaly", "stock_adjustment")
    search_fields = ("product__sku", "product__name", "location__code")
    search_help_text = "SKU, product name or location code."
    ordering = ("-priority", "id")
    actions = ("export_csv", "cancel")
    fieldsets = (
        (
            "What to count",
            {
                "fields": (
                    ("product", "location"),
                    "anomaly_link",
                    ("status", "priority", "kind"),
                    ("book_on_hand", "population"),
                    ("requested_by", "requested_at"),
                )
            },
        ),
        (
            "Result",
            {
                "fields": (
                    ("counted_quantity", "counted_on"),
                    "notes",
                    ("counted_by", "counted_at"),
                    "adjustment",
                    ("cancelled_by", "cancelled_at"),
                )
            },
        ),
    )
    base_readonly = (
        "product",
        "location",
        "anomaly_link",
        "status",
        "priority",
        "kind",
        "book_on_hand",
        "population",
        "requested_by",
        "requested_at",
        "counted_by",
        "counted_at",
        "adjustment",
        "cancelled_by",
        "cancelled_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: CycleCount | None = None) -> tuple:
        if obj is not None and obj.status != CycleCountStatus.REQUESTED:
            return (*self.base_readonly, "counted_quantity", "counted_on", "notes")
        return self.base_readonly

    def get_queryset(self, request: HttpRequest) -> QuerySet[CycleCount]:
        return (
            super()
            .get_queryset(request)
            .select_related("product", "location", "anomaly", "stock_adjustment")
        )

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # cancel instead: the history stays
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requested from anomalies or drawn as control counts

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: CycleCount, form, change: bool) -> None:
        if change and obj.status != CycleCountStatus.REQUESTED:
            if request.POST.get("counted_quantity"):  # a form loaded before it changed
                request._cycle_count_error = (
                    f"Cycle count {obj.pk} is {obj.status}; it cannot be recorded."
                )
            return
        if not change or "counted_quantity" not in form.changed_data:
            return
        try:
            cycle_count_record(
                count_id=obj.pk,
                counted_quantity=form.cleaned_data["counted_quantity"],
                counted_on=form.cleaned_data.get("counted_on"),
                notes=form.cleaned_data.get("notes", ""),
                actor=request.user,
            )
        except CycleCountError as exc:  # e.g. counted by someone else since the form loaded
            request._cycle_count_error = str(exc)
        else:
            request._cycle_count_recorded = True

    def response_change(self, request: HttpRequest, obj: CycleCount) -> HttpResponse:
        """Say in words what the save did (SKU, store, date, book, the finding, the money),
        instead of Django's "The cycle count "count #1 13@4 (requested)" was changed"."""
        error = getattr(request, "_cycle_count_error", None)
        if error:
            self.message_user(request, error, messages.ERROR)
            return HttpResponseRedirect(request.path)
        sentence = cycle_count_result_sentence(count_id=obj.pk)
        if getattr(request, "_cycle_count_recorded", False):
            self.message_user(request, sentence, messages.SUCCESS)
        else:
            self.message_user(request, f"Nothing was changed. {sentence}", messages.INFO)
        if "_continue" in request.POST:
            return HttpResponseRedirect(request.path)
        return self.response_post_save_change(request, obj)

    # columns

    @admin.display(description="priority (per day)", ordering="-priority")
    def priority_display(self, obj: CycleCount) -> str:
        return f"{obj.priority:,.2f}"

    @admin.display(description="SKU", ordering="product__sku")
    def sku(self, obj: CycleCount) -> str:
        return obj.product.sku

    @admin.display(description="product", ordering="product__name")
    def product_name(self, obj: CycleCount) -> str:
        return obj.product.name

    @admin.display(description="location", ordering="location__code")
    def location_code(self, obj: CycleCount) -> str:
        return obj.location.code

    @admin.display(description="kind", ordering="is_control")
    def kind(self, obj: CycleCount) -> str:
        return "control" if obj.is_control else "finding"

    @admin.display(description="delta")
    def delta(self, obj: CycleCount) -> str:
        adjustment = getattr(obj, "stock_adjustment", None)
        return "" if adjustment is None else f"{adjustment.delta:+d}"

    @admin.display(description="anomaly")
    def anomaly_link(self, obj: CycleCount) -> str:
        if obj.anomaly_id is None:
            return "—"
        url = reverse("admin:anomalies_anomaly_change", args=[obj.anomaly_id])
        return format_html('<a href="{}">{}</a>', url, obj.anomaly.get_anomaly_type_display())

    @admin.display(description="stock adjustment")
    def adjustment(self, obj: CycleCount) -> str:
        adjustment = getattr(obj, "stock_adjustment", None)
        if adjustment is None:
            return "—"
        return (
            f"{adjustment.date}: book {adjustment.book_before} → {adjustment.counted} "
            f"({adjustment.delta:+d})"
        )

    # actions

    @admin.action(description="Export CSV for the store (SKU, name, book on hand, priority)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[CycleCount]) -> HttpResponse:
        out = io.StringIO()
        rows = cycle_counts_export_csv(queryset=queryset, out=out)
        location_id = request.GET.get("location", "")
        code = (
            Location.objects.filter(pk=int(location_id)).values_list("code", flat=True).first()
            if location_id.isdigit()
            else None
        )
        name = f"cycle-counts-{code or 'all'}-{timezone.localdate():%Y-%m-%d}.csv"
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Rows"] = str(rows)
        return response

    @admin.action(description="Cancel (open counts only)", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[CycleCount]) -> None:
        ids = list(queryset.order_by().values_list("pk", flat=True))
        cancelled = cycle_counts_cancel(count_ids=ids, actor=request.user)
        skipped = len(ids) - cancelled
        text = f"{cancelled} count{'' if cancelled == 1 else 's'} cancelled"
        if skipped:
            text += f"; {skipped} skipped (not open)"
        level = messages.SUCCESS if cancelled else messages.WARNING
        self.message_user(request, text + ".", level)


# --- misses ------------------------------------------------------------------------------------


@admin.register(MissedAnomaly)
class MissedAnomalyAdmin(StoreScopedAdminMixin, admin.ModelAdmin):
    """Problems staff found that no detector reported; they lower the recall estimate."""

    scope_for_user = staticmethod(missed_anomalies_for_user)

    list_display = (
        "anomaly_type",
        "product",
        "location",
        "start_date",
        "end_date",
        "reported_by",
        "reported_at",
    )
    list_filter = ("anomaly_type", LocationListFilter)
    list_select_related = ("product", "location", "reported_by")
    search_fields = ("product__sku", "product__name", "location__code", "notes")
    autocomplete_fields = ("product", "location")
    fields = (
        "anomaly_type",
        ("product", "location"),
        ("start_date", "end_date"),
        "notes",
        ("reported_by", "reported_at"),
    )
    readonly_fields = ("reported_by", "reported_at")

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "location":  # reports only for the user's stores
            kwargs["queryset"] = locations_for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: MissedAnomaly, form, change: bool) -> None:
        if change:
            obj.save()  # corrections of a report (dates, notes)
            return
        saved = missed_anomaly_report(
            anomaly_type=obj.anomaly_type,
            product=obj.product,
            location=obj.location,
            start_date=obj.start_date,
            end_date=obj.end_date,
            notes=obj.notes,
            actor=request.user,
        )
        obj.pk = saved.pk
        obj.refresh_from_db()


# --- threshold proposals -----------------------------------------------------------------------


@admin.register(ThresholdProposal)
class ThresholdProposalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per-detector precision and proposed threshold changes; apply one in one step.

    "Compute proposals" (button above the list) recomputes them from the recorded outcomes;
    the "Apply" action writes the selected proposals into the detector settings.
    """

    change_list_template = "admin/outcomes/thresholdproposal/change_list.html"
    list_display = (
        "detector",
        "status",
        "precision_change",
        "labelled",
        "param_change",
        "preview",
        "created_at",
        "applied_by",
        "applied_at",
    )
    list_filter = ("status", "detector")
    list_select_related = ("applied_by",)
    actions = ("apply",)
    readonly_fields = ("note",)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_apply_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("anomalies.change_detectorconfig")

    def get_urls(self) -> list:
        urls = super().get_urls()
        compute = path(
            "compute/",
            self.admin_site.admin_view(self.compute_view),
            name="outcomes_thresholdproposal_compute",
        )
        return [compute, *urls]

    def compute_view(self, request: HttpRequest) -> HttpResponse:
        changelist = reverse("admin:outcomes_thresholdproposal_changelist")
        if request.method != "POST" or not self.has_apply_permission(request):
            return HttpResponseRedirect(changelist)
        proposals = threshold_proposals_create(actor=request.user)
        proposed = sum(1 for p in proposals if p.status == ProposalStatus.PROPOSED)
        self.message_user(
            request,
            f"{len(proposals)} detectors evaluated; {proposed} change(s) proposed.",
            messages.SUCCESS if proposed else messages.INFO,
        )
        return HttpResponseRedirect(changelist)

    # columns

    @admin.display(description="precision (now → proposed)")
    def precision_change(self, obj: ThresholdProposal) -> str:
        def pct(value: float | None) -> str:
            return "—" if value is None else f"{value:.0%}"

        if obj.status == ProposalStatus.NOT_APPLICABLE or obj.proposed_value is None:
            return pct(obj.current_precision)
        return f"{pct(obj.current_precision)} → {pct(obj.projected_precision)}"

    @admin.display(description="parameter")
    def param_change(self, obj: ThresholdProposal) -> str:
        if obj.proposed_value is None:
            return obj.note
        current = "default" if obj.current_value is None else f"{obj.current_value:g}"
        return f"{obj.param_name}: {current} → {obj.proposed_value:g}"

    @admin.display(description="last 30 days (now → proposed)")
    def preview(self, obj: ThresholdProposal) -> str:
        if obj.proposed_value is None:
            return str(obj.preview_current)
        return f"{obj.preview_current} → {obj.preview_proposed}"

    # actions

    @admin.action(description="Apply to the detector settings", permissions=["apply"])
    def apply(self, request: HttpRequest, queryset: QuerySet[ThresholdProposal]) -> None:
        applied, errors = 0, []
        for pk in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                threshold_proposal_apply(proposal_id=pk, actor=request.user)
                applied += 1
            except ProposalError as exc:
                errors.append(str(exc))
        text = f"{applied} proposal{'' if applied == 1 else 's'} applied"
        if errors:
            text += f"; {len(errors)} skipped ({' '.join(errors)})"
        self.message_user(request, text + ".", messages.SUCCESS if applied else messages.WARNING)
