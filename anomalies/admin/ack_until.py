"""The anomaly list's "Acknowledge until…" action: an intermediate page asking for the
condition (counted, the next receipt, a date), like the "Dismiss…" action.

A module-level action function (``AnomalyAdmin.actions`` lists it) so the triage screen's
module stays as it is; it calls ``anomalies_acknowledge_until`` and reports counts.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from anomalies.admin.display import action_form_page
from anomalies.models import AckUntil, Anomaly
from anomalies.services.triage import (
    ACK_UNTIL_KINDS,
    ack_until_check,
    anomalies_acknowledge_until,
)

PREVIEW_ROWS = 20
TEMPLATE = "admin/anomalies/anomaly/ack_until.html"


class AckUntilForm(forms.Form):
    """The intermediate page of "Acknowledge until…"."""

    kind = forms.ChoiceField(
        label="Until",
        choices=[(kind, AckUntil(kind).label) for kind in ACK_UNTIL_KINDS],
        widget=forms.RadioSelect,
        help_text="It returns to open by itself once this has happened and detection still "
        "finds it: counted (a count of the SKU at the store is recorded), the SKU's next "
        "receipt at the store, or the date.",
    )
    until = forms.DateField(
        label="Date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text='For "Until a date": the day (after today).',
    )
    note = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Optional: why it can wait (delivery booked, count planned …).",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        if kind != AckUntil.DATE:
            cleaned["until"] = None  # a date left in the field by a change of mind
        try:
            ack_until_check(kind=kind, until=cleaned.get("until"), today=timezone.localdate())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned


@admin.action(
    description="Acknowledge until… (counted, next receipt, a date)", permissions=["change"]
)
def acknowledge_until(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Anomaly]
) -> HttpResponse | None:
    """Ask for the condition, then acknowledge the selected anomalies until it (posted back
    to this action with ``post=yes``)."""
    form = AckUntilForm(request.POST if request.POST.get("post") == "yes" else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        ids = list(queryset.order_by().values_list("pk", flat=True))
        # AnomalyAdmin._report: the counts, or the conflict as a warning (nothing changed).
        modeladmin._report(
            request,
            lambda: anomalies_acknowledge_until(
                anomaly_ids=ids,
                actor=request.user,
                kind=data["kind"],
                until=data["until"],
                note=data["note"],
            ),
        )
        return None
    return action_form_page(
        modeladmin,
        request,
        queryset,
        title="Acknowledge anomalies until …",
        template=TEMPLATE,
        form=form,
        preview_rows=PREVIEW_ROWS,
    )
