"""The ops staff's triage screen: the anomaly admin, its actions and the activity log.

Status changes happen only through the triage services (actions here, POST actions in the API);
the change form edits nothing but the assignee, and that too goes through ``anomaly_assign``.

Above the list, one sentence states how many of the latest detection day's new findings are
expected to be false alarms (``false_alarm_sentence``); the page query carries the numbers, so
the changelist runs no query more for it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from anomalies.admin.ack_until import acknowledge_until
from anomalies.admin.changelist import TriageListMixin
from anomalies.admin.detail import AnomalyDetailMixin
from anomalies.admin.display import action_form_page, pretty_json
from anomalies.admin.filters import (
    AnomalyCategoryListFilter,
    AssigneeListFilter,
    LastDetectedListFilter,
    MyStoresListFilter,
    NewInLatestRunListFilter,
    PendingCountListFilter,
    RegressedListFilter,
    RootCauseListFilter,
)
from anomalies.admin.forms import AnomalyForm, AnomalyNoteForm, DismissForm
from anomalies.models import (
    Anomaly,
    AnomalyActivity,
    DismissReason,
)
from anomalies.selectors import (
    anomalies_for_user,
    anomaly_activities_for_user,
)
from anomalies.services.charts import anomaly_chart_data
from anomalies.services.context import anomaly_recent_activity
from anomalies.services.export import anomalies_export_csv
from anomalies.services.runs import DetectionDaySummary, detection_day_summary_from
from anomalies.services.triage import (
    TransitionError,
    TransitionReport,
    anomalies_acknowledge,
    anomalies_assign,
    anomalies_dismiss,
    anomalies_resolve,
    anomalies_snooze,
    anomalies_unsnooze,
    anomaly_assign,
    anomaly_note_add,
)
from common.admin import BoundedCountPaginator, ReadOnlyAdminMixin
from inventory.admin import (
    LocationListFilter,
)
from outcomes.services.cycle_counts import cycle_counts_request

ACTIVITY_LOG_ROWS = 50
SNOOZE_ACTION_DAYS = 7
DISMISS_PREVIEW_ROWS = 20


def _q(value: float) -> str:
    return f"{value:g}"


def false_alarm_sentence(summary: DetectionDaySummary | None) -> str:
    """What the triage list says about the latest detection day's new findings ("" if no run).

    "Of the 37 findings raised on 2026-10-31, about 1.8 are expected to be false alarms
    (FDR q = 0.05)." Findings of detectors without p-values are outside the control and said
    to be.
    """
    if summary is None:
        return ""
    day = f"{summary.as_of:%Y-%m-%d}"
    if summary.new_findings == 0:
        return f"No new findings were raised on {day}."
    if summary.expected_false_alarms is None or summary.q_max is None:
        return (
            f"{summary.new_findings} findings were raised on {day}, by detection that ran "
            "without false-discovery control: no false-alarm rate can be stated."
        )
    if summary.controlled == 0:
        return (
            f"None of the {summary.new_findings} findings raised on {day} comes with a "
            "p-value, so no false-alarm rate can be stated for them."
        )
    level = (
        f"FDR q = {_q(summary.q_max)}"
        if summary.q_min == summary.q_max
        else f"FDR q = {_q(summary.q_min)} to {_q(summary.q_max)}"
    )
    expected = f"about {summary.expected_false_alarms:.1f}"
    if summary.controlled == summary.new_findings:
        return (
            f"Of the {summary.new_findings} findings raised on {day}, {expected} are expected "
            f"to be false alarms ({level})."
        )
    others = summary.new_findings - summary.controlled
    return (
        f"Of the {summary.new_findings} findings raised on {day}, {summary.controlled} passed "
        f"false-discovery control ({level}): {expected} of those are expected to be false "
        f"alarms. The other {others} come from detectors that give no p-value and are not "
        "controlled."
    )


@admin.register(Anomaly)
class AnomalyAdmin(TriageListMixin, AnomalyDetailMixin, admin.ModelAdmin):
    # TriageListMixin: the list's columns; AnomalyDetailMixin: the page's one-click triage.
    form = AnomalyForm
    # The triage list: columns in anomalies.admin.changelist, sized to fit 1280 px.
    list_display = (
        "type_label",
        "severity_badge",
        "sku_product",
        "dates",
        "money",
        "q_value_column",
        "triage_status",
        "assignee",
        "age",
        "sla",
        "pending_count",
        "short_explanation",
    )
    list_display_links = ("type_label",)
    list_filter = (
        "status",
        "anomaly_type",
        "severity",
        MyStoresListFilter,
        NewInLatestRunListFilter,
        PendingCountListFilter,
        LocationListFilter,
        AnomalyCategoryListFilter,
        LastDetectedListFilter,
        AssigneeListFilter,
        RegressedListFilter,
        RootCauseListFilter,
        "dismiss_reason",
    )
    search_fields = ("product__sku", "product__name", "location__code", "explanation")
    search_help_text = "SKU, product name, location code or words of the explanation."
    list_select_related = ("product", "location", "assignee")
    # A million rows: no COUNT(*) of the whole table (or of a whole status) per page.
    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = (
        "acknowledge",
        acknowledge_until,
        "assign_to_me",
        "snooze_7_days",
        "unsnooze",
        "resolve",
        "dismiss",
        "dismiss_false_positive",
        "dismiss_expected",
        "request_cycle_counts",
        "export_csv",
    )
    fieldsets = (
        (
            "Finding",
            {
                "fields": (
                    ("anomaly_type", "severity", "score"),
                    ("p_value", "q_value"),
                    ("product", "location"),
                    ("start_date", "end_date"),
                    "explanation",
                    ("expected_value", "actual_value", "value_at_risk"),
                    "details_pretty",
                )
            },
        ),
        (
            "Triage",
            {
                "fields": (
                    "status",
                    "assignee",
                    ("acknowledged_at", "closed_at"),
                    "dismiss_reason",
                    ("snoozed_until", "snoozed_severity", "snoozed_value_at_risk"),
                    ("regressed_at", "regression_count"),
                )
            },
        ),
        (
            "Detection",
            {
                "fields": (
                    ("first_detected_on", "last_detected_on"),
                    "last_run",
                    ("parent_link", "children_link"),
                    ("created_at", "updated_at"),
                )
            },
        ),
    )
    readonly_fields = (
        "parent_link",
        "children_link",
        "anomaly_type",
        "severity",
        "score",
        "p_value",
        "q_value",
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
        "dismiss_reason",
        "snoozed_until",
        "snoozed_severity",
        "snoozed_value_at_risk",
        "regressed_at",
        "regression_count",
        "first_detected_on",
        "last_detected_on",
        "last_run",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Anomaly]:
        # The changelist applies list_select_related only when this queryset selects nothing,
        # so select its columns here (an assignee query per row otherwise). The change page
        # reads the same three; its run costs one query of its own rather than a join of the
        # run's JSON into every changelist row. Only the anomalies of the user's stores.
        queryset = super().get_queryset(request).select_related(*self.list_select_related)
        return anomalies_for_user(request.user, queryset)

    class Media:
        # The triage list's layout and its keys (anomalies.admin.changelist).
        css = {"all": ("anomalies/triage_list.css",)}
        js = ("anomalies/triage_keys.js",)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {"title": "Anomalies to triage", **(extra_context or {})}
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:
            rows = context["cl"].result_list
            summary = detection_day_summary_from(rows[0]) if len(rows) else None
            context["false_alarm_summary"] = false_alarm_sentence(summary)
            context.update(self.triage_list_context(request))
        return response

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
            anomaly_assign(
                anomaly_id=obj.pk,
                assignee=obj.assignee,
                actor=request.user,
                expected_status=obj.status,  # as read for this request's form
            )
        except TransitionError as exc:  # changed by someone else since the form was validated
            self.message_user(request, str(exc), messages.WARNING)

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/note/",
                self.admin_site.admin_view(self.note_view),
                name="{}_{}_note".format(*info),
            ),
            *super().get_urls(),
        ]

    def note_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST target of the change page's "Add a note" form; back to the change page."""
        anomaly = get_object_or_404(self.get_queryset(request), pk=object_id)
        if request.method != "POST" or not self.has_change_permission(request, anomaly):
            raise PermissionDenied
        form = AnomalyNoteForm(request.POST)
        if form.is_valid():
            try:
                anomaly_note_add(
                    anomaly_id=anomaly.pk, actor=request.user, note=form.cleaned_data["note"]
                )
                self.message_user(request, "Note added.", messages.SUCCESS)
            except (TransitionError, ValueError) as exc:
                self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, "The note is empty; nothing was added.", messages.WARNING)
        opts = self.opts
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[anomaly.pk])
            + "#activity-log"
        )

    def render_change_form(
        self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None:
            context["recent_activity"] = anomaly_recent_activity(anomaly=obj)
            context["chart_data"] = anomaly_chart_data(anomaly=obj)
            context["activity_log"] = obj.activities.select_related("actor")[:ACTIVITY_LOG_ROWS]
            context["note_form"] = AnomalyNoteForm()
            context["note_url"] = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_note", args=[obj.pk]
            )
            context["currency"] = settings.SHELFWATCH_CURRENCY
        return super().render_change_form(request, context, add, change, form_url, obj)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # "N anomalies with the same root cause" links to the changelist filtered by parent.
        return lookup == "parent__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="grouped under")
    def parent_link(self, obj: Anomaly) -> str:
        if obj.parent_id is None:
            return "—"
        url = reverse("admin:anomalies_anomaly_change", args=[obj.parent_id])
        return format_html('<a href="{}">#{} {}</a>', url, obj.parent_id, obj.parent)

    @admin.display(description="grouped here")
    def children_link(self, obj: Anomaly) -> str:
        count = obj.children.count()
        if not count:
            return "—"
        url = reverse("admin:anomalies_anomaly_changelist") + f"?parent__id__exact={obj.pk}"
        return format_html('<a href="{}">{} anomalies with the same root cause</a>', url, count)

    @admin.display(description="details")
    def details_pretty(self, obj: Anomaly) -> str:
        return pretty_json(obj.details)

    # actions: each calls the bulk triage service and reports counts

    @admin.action(description="Export CSV (the selected anomalies)", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        name = f"anomalies-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Rows"] = str(anomalies_export_csv(out=response, queryset=queryset))
        return response

    def _report(self, request: HttpRequest, run) -> None:
        """Run ``run()`` (a bulk triage service) and tell the user what it changed.

        A conflict (rows changed by someone else meanwhile) changes nothing and is shown as a
        warning, like a report that changed nothing.
        """
        try:
            report: TransitionReport = run()
        except TransitionError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        level = messages.SUCCESS if report.changed_count else messages.WARNING
        self.message_user(request, report.summary(), level)

    @staticmethod
    def _ids(queryset: QuerySet[Anomaly]) -> list[int]:
        return list(queryset.order_by().values_list("pk", flat=True))

    @admin.action(description="Acknowledge (and claim unowned)", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        ids = self._ids(queryset)
        self._report(request, lambda: anomalies_acknowledge(anomaly_ids=ids, actor=request.user))

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        ids = self._ids(queryset)
        self._report(
            request,
            lambda: anomalies_assign(anomaly_ids=ids, assignee=request.user, actor=request.user),
        )

    @admin.action(description=f"Snooze {SNOOZE_ACTION_DAYS} days", permissions=["change"])
    def snooze_7_days(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        ids = self._ids(queryset)
        self._report(
            request,
            lambda: anomalies_snooze(anomaly_ids=ids, actor=request.user, days=SNOOZE_ACTION_DAYS),
        )

    @admin.action(description="Unsnooze (reopen now)", permissions=["change"])
    def unsnooze(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        ids = self._ids(queryset)
        self._report(request, lambda: anomalies_unsnooze(anomaly_ids=ids, actor=request.user))

    @admin.action(description="Resolve", permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        ids = self._ids(queryset)
        self._report(request, lambda: anomalies_resolve(anomaly_ids=ids, actor=request.user))

    @admin.action(description="Dismiss… (choose a reason)", permissions=["change"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> HttpResponse | None:
        """Like Django's delete confirmation: a page asking for the reason (and a note), which
        posts back to this action with ``post=yes``."""
        form = DismissForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            ids = self._ids(queryset)
            data = form.cleaned_data
            self._report(
                request,
                lambda: anomalies_dismiss(
                    anomaly_ids=ids, actor=request.user, reason=data["reason"], note=data["note"]
                ),
            )
            return None
        return action_form_page(
            self,
            request,
            queryset,
            title="Dismiss anomalies",
            template="admin/anomalies/anomaly/dismiss_selected.html",
            form=form,
            preview_rows=DISMISS_PREVIEW_ROWS,
        )

    @admin.action(description="Dismiss as false positive", permissions=["change"])
    def dismiss_false_positive(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        ids = self._ids(queryset)
        self._report(
            request,
            lambda: anomalies_dismiss(
                anomaly_ids=ids, actor=request.user, reason=DismissReason.FALSE_POSITIVE
            ),
        )

    @admin.action(description="Dismiss as expected", permissions=["change"])
    def dismiss_expected(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        ids = self._ids(queryset)
        self._report(
            request,
            lambda: anomalies_dismiss(
                anomaly_ids=ids, actor=request.user, reason=DismissReason.EXPECTED
            ),
        )

    @admin.action(
        description="Request cycle counts (ghost stock / discrepancy)", permissions=["change"]
    )
    def request_cycle_counts(self, request: HttpRequest, queryset: QuerySet[Anomaly]) -> None:
        # Other types and closed anomalies are skipped and counted in the message.
        report = cycle_counts_request(anomaly_ids=self._ids(queryset), actor=request.user)
        level = messages.SUCCESS if report.created or report.existing else messages.WARNING
        self.message_user(request, report.summary(), level)


@admin.register(AnomalyActivity)
class AnomalyActivityAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "anomaly", "action", "from_status", "to_status", "actor", "note")
    list_select_related = ("anomaly__product", "anomaly__location", "actor")
    list_filter = ("action", "to_status")
    search_fields = ("=anomaly__id", "actor__username", "note")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request: HttpRequest) -> QuerySet[AnomalyActivity]:
        return anomaly_activities_for_user(request.user, super().get_queryset(request))
