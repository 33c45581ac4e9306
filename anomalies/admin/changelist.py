"""The triage list (the anomaly changelist): its columns, saved-views bar and keyboard keys.

``TriageListMixin`` is mixed into ``AnomalyAdmin``; ``AnomalyChangeList`` is its changelist.
What the page needs beyond Django's changelist, and what it costs:

- the page query carries the latest detection day's summary (uncorrelated subqueries) and,
  per row, whether a cycle count is pending (a correlated EXISTS): no query more;
- the SLA targets: one query (the ``TriageSla`` row), only when the page has rows;
- the saved-views bar: one query (shared views and the user's own).

The list fits 1280 px: short type labels, product name under the SKU, start and end dates in
one cell, one line of explanation cut with an ellipsis; the store
and the product's name under the SKU, (``static/anomalies/triage_list.css``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from anomalies.admin.filters import count_pending_expression
from anomalies.models import Anomaly, AnomalyStatus, AnomalyType, Severity
from anomalies.selectors import detection_day_summary_expressions_for_user
from anomalies.services.saved_views import querystring_clean, querystring_key, saved_view_links
from anomalies.services.sla import duration_text, sla_policy_load, sla_timer
from common.formatting import money

SHORT_TYPE_LABELS = {
    AnomalyType.GHOST_STOCK: "Ghost stock",
    AnomalyType.DEMAND_SPIKE: "Spike",
    AnomalyType.DEMAND_DROP: "Drop",
    AnomalyType.PRICE_ANOMALY: "Price",
    AnomalyType.INVENTORY_DISCREPANCY: "Discrepancy",
    AnomalyType.ML_DETECTED: "ML outlier",
    AnomalyType.POS_OUTAGE: "POS outage",
}
SEVERITY_CLASSES = {
    Severity.INFO: "sev-info",
    Severity.WARNING: "sev-warning",
    Severity.CRITICAL: "sev-critical",
}
EXPLANATION_MAX_CHARS = 300  # the cell shows one line; the rest is in its tooltip

# The keys of static/anomalies/triage_keys.js, for the help box (#kb-help).
KEYBOARD_HELP = (
    ("j / k", "next / previous finding"),
    ("x", "select or unselect it"),
    ("Enter / o", "open it"),
    ("a", "acknowledge (the selected findings, else this one)"),
    ("r", "resolve"),
    ("d", "dismiss… (asks for the reason)"),
    ("s", "snooze 7 days"),
    ("c", "record a cycle count on its page"),
    ("?", "show or hide these keys"),
)


def age_text(seconds: float) -> str:
    """``12m``, ``5h``, ``3d``: how long ago, in the largest whole unit."""
    minutes = int(max(0, seconds) // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"


class AnomalyChangeList(ChangeList):
    """The changelist whose page query also carries the latest detection day's summary and
    each row's pending-count flag, and whose rows carry their SLA timer."""

    def get_queryset(self, request: HttpRequest, exclude_parameters=None) -> QuerySet[Anomaly]:
        # Uncorrelated scalar subqueries in the page query (each evaluated once by the
        # database) instead of a query of their own: the list's query budget stays fixed.
        return (
            super()
            .get_queryset(request, exclude_parameters)
            .annotate(
                count_pending=count_pending_expression(),
                **detection_day_summary_expressions_for_user(request.user),
            )
        )

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows = list(self.result_list)  # the page query (cached on the queryset)
        if not rows:
            return
        policy, now = sla_policy_load(), timezone.now()
        for row in rows:
            row.sla = sla_timer(anomaly=row, policy=policy, now=now)


class TriageListMixin:
    """The list parts of ``AnomalyAdmin``: its columns and the saved-views bar (the admin's
    ``Media`` loads ``triage_list.css`` and ``triage_keys.js``)."""

    def get_changelist(self, request: HttpRequest, **kwargs) -> type[ChangeList]:
        return AnomalyChangeList

    def sort_parameter(self, order_by: str) -> str:
        """The changelist's ``o`` value sorting by column ``order_by`` ("-" = descending)."""
        name = order_by.lstrip("-")
        columns = (
            ["action_checkbox", *self.list_display] if self.actions else list(self.list_display)
        )
        for index, column in enumerate(columns):
            field = getattr(getattr(self, column, None), "admin_order_field", column)
            if name in (column, field):
                return f"{'-' if order_by.startswith('-') else ''}{index}"
        return ""

    def triage_list_context(self, request: HttpRequest) -> dict:
        """The saved-views bar and keyboard help for the list template (one query)."""
        current = querystring_key(request.GET.urlencode())
        links = saved_view_links(user=request.user, sort_parameter=self.sort_parameter)
        opts = self.opts
        changelist_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        views = [
            {
                "name": link.name,
                "url": f"{changelist_url}?{link.querystring}",
                "kind": link.kind,
                "description": link.description,
                "selected": querystring_key(link.querystring) == current,
            }
            for link in links
        ]
        save_url = ""
        if current and request.user.has_perm(f"{opts.app_label}.add_savedview"):
            initial = urlencode({"querystring": querystring_clean(request.GET.urlencode())})
            save_url = f"{reverse(f'admin:{opts.app_label}_savedview_add')}?{initial}"
        return {"saved_views": views, "save_view_url": save_url, "keyboard_help": KEYBOARD_HELP}

    # columns

    @admin.display(description="type", ordering="anomaly_type")
    def type_label(self, obj: Anomaly) -> str:
        return format_html(
            '<span title="{}">{}</span>',
            obj.get_anomaly_type_display(),
            SHORT_TYPE_LABELS.get(obj.anomaly_type, obj.get_anomaly_type_display()),
        )

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, obj: Anomaly) -> str:
        return format_html(
            '<span class="sev {}">{}</span>',
            SEVERITY_CLASSES.get(obj.severity, ""),
            obj.get_severity_display(),
        )

    @admin.display(description="status", ordering="status")
    def triage_status(self, obj: Anomaly) -> str:
        text = obj.get_status_display()
        if obj.status == AnomalyStatus.SNOOZED and obj.snoozed_until:
            text += f" until {obj.snoozed_until:%Y-%m-%d}"
        if obj.status == AnomalyStatus.DISMISSED and obj.dismiss_reason:
            text += f" ({obj.get_dismiss_reason_display().split(' (')[0].lower()})"
        if obj.regression_count:
            text += f" · regressed ×{obj.regression_count}"
        return text

    @admin.display(description="q-value", ordering="q_value")
    def q_value_column(self, obj: Anomaly) -> str:
        # The lowest false-discovery rate at which this finding is still reported at its store
        # that day; blank for findings outside the control (no p-value).
        return "" if obj.q_value is None else f"{obj.q_value:.2g}"

    @admin.display(description="SKU / store", ordering="product__sku")
    def sku_product(self, obj: Anomaly) -> str:
        # Two lines: the SKU, then the store and the product's name (cut with an ellipsis).
        sku = obj.product.sku if obj.product_id else "(location)"
        name = obj.product.name if obj.product_id else ""
        return format_html(
            '<span class="sku">{}</span><span class="sub" title="{}"><span class="store">{}</span>'
            "{}{}</span>",
            sku,
            name,
            obj.location.code,
            " · " if name else "",
            name,
        )

    @admin.display(description="dates", ordering="start_date")
    def dates(self, obj: Anomaly) -> str:
        start, end = obj.start_date, obj.end_date
        if end == start:
            return f"{start:%Y-%m-%d}"
        tail = f"{end:%m-%d}" if end.year == start.year else f"{end:%Y-%m-%d}"
        return format_html("{}<br>→ {}", f"{start:%Y-%m-%d}", tail)

    @admin.display(description="at risk", ordering="value_at_risk")
    def money(self, obj: Anomaly) -> str:
        return money(obj.value_at_risk, settings.SHELFWATCH_CURRENCY)

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: Anomaly) -> str:
        seconds = (timezone.now() - obj.created_at).total_seconds()
        return format_html(
            '<span title="raised {}; first found by the run of {}">{}</span>',
            f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M}",
            f"{obj.first_detected_on:%Y-%m-%d}",
            age_text(seconds),
        )

    @admin.display(description="SLA")
    def sla(self, obj: Anomaly) -> str:
        timer = getattr(obj, "sla", None)
        if timer is None:
            return "—"
        if timer.running:
            title = f"{duration_text(timer.elapsed_seconds)} of business time waiting for an answer"
        else:
            title = "answered" + (" late" if timer.state == "sla-breached" else " in time")
        return format_html(
            '<span class="sla {}{}" title="{}">{}</span>',
            timer.state,
            "" if timer.running else " sla-stopped",
            title,
            timer.text,
        )

    @admin.display(description="count", empty_value="")
    def pending_count(self, obj: Anomaly) -> str:
        if not getattr(obj, "count_pending", False):
            return ""
        return format_html(
            '<span class="count-pending" title="{}">{}</span>',
            "A cycle count is requested and not recorded yet",
            "pending",
        )

    @admin.display(description="explanation")
    def short_explanation(self, obj: Anomaly) -> str:
        text = obj.explanation
        shown = (
            text if len(text) <= EXPLANATION_MAX_CHARS else text[: EXPLANATION_MAX_CHARS - 1] + "…"
        )
        return format_html('<span class="one-line" title="{}">{}</span>', text, shown)
