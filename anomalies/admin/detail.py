"""The anomaly page's one-click triage: its toolbar, the record-count form, similar anomalies.

``AnomalyDetailMixin`` (a base of ``AnomalyAdmin``) adds to the change page:

- a toolbar (``#triage-actions``) of one POST form per action (acknowledge, assign to me,
  snooze…, unsnooze, resolve, dismiss…, request count) to ``<id>/triage/``;
- the record-count form (``#record-count-form``), posted to the same view with
  ``action=record_count``: it requests the count if none is open and records it
  (``outcomes.services.cycle_counts.anomaly_count_record``); the count date is pre-filled with
  the latest day with book-stock data for the SKU/location;
- a pending-count indicator linking to the open count;
- similar anomalies (``anomalies.services.similar``) with a "Merge into this" form posted to
  ``<id>/merge/``.

Both views are thin: they check the role's permission, find the anomaly in the user's stores
(404 outside them) and call one service, which re-checks the stores under its lock; then they
redirect back to the page with a message in words. Buttons the role or the anomaly's status
does not allow are not shown; posting one anyway is refused (403 without the permission, a
warning from the service for a state that does not allow it). Findings cannot be deleted here:
they are closed by Resolve or Dismiss, and pruned by retention.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone

from anomalies.admin.forms import (
    SNOOZE_DAY_CHOICES,
    SNOOZE_DEFAULT_DAYS,
    MergeForm,
    RecordCountForm,
    TriageActionForm,
)
from anomalies.models import Anomaly, AnomalyStatus, DismissReason
from anomalies.services.similar import MergeError, anomalies_merge, anomalies_similar
from anomalies.services.triage import (
    SNOOZE_MAX_DAYS,
    WORKABLE_STATUSES,
    TransitionError,
    anomaly_acknowledge,
    anomaly_assign,
    anomaly_dismiss,
    anomaly_resolve,
    anomaly_snooze,
    anomaly_unsnooze,
)
from common.formatting import money
from outcomes.services.cycle_counts import (
    CycleCountError,
    anomaly_count_record,
    anomaly_countable,
    cycle_count_default_date,
    cycle_count_open,
    cycle_count_result_sentence,
    cycle_counts_request,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

REQUEST_COUNT_PERMISSION = "outcomes.add_cyclecount"
RECORD_COUNT_PERMISSIONS = ("outcomes.add_cyclecount", "outcomes.change_cyclecount")
COUNT_ACTIONS = ("request_count", "record_count")


def triage_buttons(*, anomaly: Anomaly, user: User, may_change: bool, pending: Any) -> set[str]:
    """The actions the page offers ``user`` for ``anomaly`` in its current status.

    ``may_change``: the admin's change permission on it; ``pending``: its open count, if any.
    """
    if not may_change:
        return set()
    status = anomaly.status
    buttons: set[str] = set()
    if status == AnomalyStatus.OPEN:
        buttons.add("acknowledge")
    if status in WORKABLE_STATUSES:
        buttons.update({"snooze", "resolve", "dismiss"})
        if anomaly.assignee_id != user.pk:
            buttons.add("assign_to_me")
    if status == AnomalyStatus.SNOOZED:
        buttons.add("unsnooze")
    if anomaly_countable(anomaly):
        if pending is None and user.has_perm(REQUEST_COUNT_PERMISSION):
            buttons.add("request_count")
        # An open count of another origin (a control count) is recorded on its own page.
        theirs = pending is None or pending.anomaly_id == anomaly.pk
        if theirs and all(user.has_perm(p) for p in RECORD_COUNT_PERMISSIONS):
            buttons.add("record_count")
    return buttons


class AnomalyDetailMixin:
    """The change page's triage (see the module docstring); mixed into ``AnomalyAdmin``."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # findings are closed (resolve, dismiss), never deleted by hand

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/triage/",
                self.admin_site.admin_view(self.triage_view),
                name="{}_{}_triage".format(*info),
            ),
            path(
                "<path:object_id>/merge/",
                self.admin_site.admin_view(self.merge_view),
                name="{}_{}_merge".format(*info),
            ),
            *super().get_urls(),
        ]

    # --- the page ------------------------------------------------------------------------------

    def _change_url(self, anomaly_id: int) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[anomaly_id]
        )

    def render_change_form(
        self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None:
            context.update(self.triage_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def triage_context(self, request: HttpRequest, anomaly: Anomaly) -> dict[str, Any]:
        """What the page's toolbar, count form, pending indicator and similar block need."""
        user = request.user
        pending = cycle_count_open(product_id=anomaly.product_id, location_id=anomaly.location_id)
        may_change = self.has_change_permission(request, anomaly)
        buttons = triage_buttons(anomaly=anomaly, user=user, may_change=may_change, pending=pending)
        today = timezone.localdate()
        context: dict[str, Any] = {
            "triage_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_triage", args=[anomaly.pk]
            ),
            "triage_buttons": buttons,
            "snooze_day_choices": SNOOZE_DAY_CHOICES,
            "snooze_default_days": SNOOZE_DEFAULT_DAYS,
            "snooze_min": today + dt.timedelta(days=1),
            "snooze_max": today + dt.timedelta(days=SNOOZE_MAX_DAYS),
            "dismiss_reasons": DismissReason.choices,
            "pending_count": pending,
            "pending_count_is_other": pending is not None and pending.anomaly_id != anomaly.pk,
            "pending_count_url": (
                reverse("admin:outcomes_cyclecount_change", args=[pending.pk])
                if pending is not None and user.has_perm("outcomes.view_cyclecount")
                else ""
            ),
            "today": today,
            "value_at_risk_display": money(anomaly.value_at_risk),
        }
        if "record_count" in buttons:
            context["count_default_date"] = cycle_count_default_date(
                product_id=anomaly.product_id, location_id=anomaly.location_id, today=today
            )
        context["similar_anomalies"] = anomalies_similar(anomaly=anomaly, user=user)
        context["can_merge"] = (
            may_change and anomaly.status in WORKABLE_STATUSES and anomaly.parent_id is None
        )
        context["merge_url"] = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_merge", args=[anomaly.pk]
        )
        return context

    # --- the views -----------------------------------------------------------------------------

    def _anomaly_for_post(self, request: HttpRequest, object_id: str) -> Anomaly:
        """The anomaly of a POST, from the user's stores (404 outside them), or 403."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        anomaly = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_change_permission(request, anomaly):
            raise PermissionDenied
        return anomaly

    def triage_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST target of the toolbar and the record-count form; back to the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        anomaly = self._anomaly_for_post(request, object_id)
        back = self._change_url(anomaly.pk)
        form = TriageActionForm(request.POST)
        if not form.is_valid():
            self.message_user(request, form.error_sentence(), messages.WARNING)
            return HttpResponseRedirect(back)
        action = form.cleaned_data["action"]
        if action in COUNT_ACTIONS:
            needed = (
                (REQUEST_COUNT_PERMISSION,)
                if action == "request_count"
                else RECORD_COUNT_PERMISSIONS
            )
            if not all(request.user.has_perm(p) for p in needed):
                raise PermissionDenied
        if action == "record_count":
            return self._record_count(request, anomaly, back)
        try:
            text = self._triage(request, anomaly, form.cleaned_data)
        except (TransitionError, CycleCountError, ValueError) as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(back)

    def _triage(self, request: HttpRequest, anomaly: Anomaly, data: dict[str, Any]) -> str:
        """Run one toolbar action through its service; the sentence to show."""
        user = request.user
        common = {"anomaly_id": anomaly.pk, "actor": user}
        expected = data.get("expected_status") or None
        action = data["action"]
        if action == "acknowledge":
            done = anomaly_acknowledge(**common, expected_status=expected)
            if anomaly.assignee_id is None and done.assignee_id == user.pk:
                return "Acknowledged and assigned to you."
            who = done.assignee.get_username() if done.assignee_id else "nobody"
            return f"Acknowledged (assigned to {who})."
        if action == "assign_to_me":
            anomaly_assign(**common, assignee=user, expected_status=expected)
            return "Assigned to you."
        if action == "snooze":
            done = anomaly_snooze(
                **common,
                until=data.get("until"),
                days=None if data.get("until") else data.get("days"),
                note=data.get("note", ""),
                expected_status=expected,
            )
            return (
                f"Snoozed until {done.snoozed_until:%Y-%m-%d}: it comes back then, or earlier "
                "if detection finds it worse."
            )
        if action == "unsnooze":
            anomaly_unsnooze(**common, note=data.get("note", ""), expected_status=expected)
            return "Unsnoozed: the anomaly is open again."
        if action == "resolve":
            anomaly_resolve(**common, note=data.get("note", ""), expected_status=expected)
            return "Resolved."
        if action == "dismiss":
            reason = data["reason"]
            anomaly_dismiss(
                **common, reason=reason, note=data.get("note", ""), expected_status=expected
            )
            label = DismissReason(reason).label.split(" (")[0].lower()
            return f"Dismissed as {label}."
        if action == "request_count":
            return self._request_count(anomaly, user)
        raise ValueError(f"Unknown action {action!r}.")  # the form's choices make it unreachable

    @staticmethod
    def _request_count(anomaly: Anomaly, user: User) -> str:
        report = cycle_counts_request(anomaly_ids=[anomaly.pk], actor=user)
        where = f"{anomaly.product.sku} at {anomaly.location.code}" if anomaly.product_id else ""
        if report.created:
            book = report.created[0].book_on_hand
            known = f" (book stock {book:,} units)" if book is not None else ""
            return f"Cycle count of {where} requested{known}; record what you count below."
        if report.existing:
            day = timezone.localtime(report.existing[0].requested_at)
            return (
                f"A cycle count of {where} was already requested on {day:%Y-%m-%d}; "
                "record what you count below."
            )
        reason = report.skipped[anomaly.pk]
        if reason in AnomalyStatus.values:
            raise CycleCountError(f"No count requested: this anomaly is {reason}.")
        raise CycleCountError(f"No count requested: {reason}.")

    def _record_count(self, request: HttpRequest, anomaly: Anomaly, back: str) -> HttpResponse:
        form = RecordCountForm(request.POST)
        if not form.is_valid():
            self.message_user(request, form.error_sentence(), messages.WARNING)
            return HttpResponseRedirect(back + "?count=1")
        data = form.cleaned_data
        try:
            count = anomaly_count_record(
                anomaly_id=anomaly.pk,
                counted_quantity=data["counted_quantity"],
                counted_on=data.get("counted_on"),
                notes=data.get("notes", ""),
                actor=request.user,
            )
        except CycleCountError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return HttpResponseRedirect(back + "?count=1")
        self.message_user(request, cycle_count_result_sentence(count_id=count.pk), messages.SUCCESS)
        return HttpResponseRedirect(back)

    def merge_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST target of "Merge into this" in the similar-anomalies block; back to the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        anomaly = self._anomaly_for_post(request, object_id)
        back = self._change_url(anomaly.pk)
        form = MergeForm(request.POST)
        if not form.is_valid():
            self.message_user(request, form.error_sentence(), messages.WARNING)
            return HttpResponseRedirect(back + "#similar-anomalies")
        try:
            report = anomalies_merge(
                parent_id=anomaly.pk, anomaly_ids=form.cleaned_data["anomalies"], actor=request.user
            )
        except MergeError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            level = messages.SUCCESS if report.merged_ids else messages.WARNING
            self.message_user(request, report.summary(), level)
        return HttpResponseRedirect(back + "#similar-anomalies")
