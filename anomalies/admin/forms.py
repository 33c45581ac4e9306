"""Forms of the anomaly admin: the change form (assignee only), the note form, the dismiss page,
and the anomaly page's triage toolbar, record-count and merge forms."""

from __future__ import annotations

from typing import Any

from django import forms

from anomalies.models import Anomaly, AnomalyStatus, DismissReason
from anomalies.services.triage import WORKABLE_STATUSES


class AnomalyForm(forms.ModelForm):
    """Edits only the assignee, and only while the anomaly is still being worked on."""

    class Meta:
        model = Anomaly
        fields = ("assignee",)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "assignee" in self.changed_data and self.instance.status not in WORKABLE_STATUSES:
            raise forms.ValidationError(
                f"This anomaly is {self.instance.status}; its assignee can no longer change."
            )
        return cleaned


class AnomalyNoteForm(forms.Form):
    """The change page's "Add a note" form (posted to ``AnomalyAdmin.note_view``)."""

    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=4000,
        help_text="Recorded in the activity log with your name; the anomaly itself is unchanged.",
    )


class DismissForm(forms.Form):
    """The intermediate page of the "Dismiss…" action."""

    reason = forms.ChoiceField(
        choices=DismissReason.choices,
        widget=forms.RadioSelect,
        help_text="Why these anomalies need no action.",
    )
    note = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Optional: which promotion or event, or which anomaly this duplicates.",
    )


# --- the anomaly page's one-click triage (anomalies.admin.detail) -------------------------------

SNOOZE_DAY_CHOICES: tuple[int, ...] = (1, 3, 7, 14, 30)
SNOOZE_DEFAULT_DAYS = 7
TRIAGE_ACTION_CHOICES = (
    ("acknowledge", "Acknowledge"),
    ("assign_to_me", "Assign to me"),
    ("snooze", "Snooze"),
    ("unsnooze", "Unsnooze"),
    ("resolve", "Resolve"),
    ("dismiss", "Dismiss"),
    ("request_count", "Request count"),
    ("record_count", "Record count"),
)


class _SentenceErrorsMixin:
    def error_sentence(self) -> str:
        """The form's errors as one line for a message (the page has no place for them)."""
        parts = []
        for name, errors in self.errors.items():
            label = "" if name == "__all__" else f"{self.fields[name].label or name}: "
            parts.append(label + " ".join(str(e) for e in errors))
        return "Nothing was changed. " + " ".join(parts)


class TriageActionForm(_SentenceErrorsMixin, forms.Form):
    """One toolbar button of the anomaly page, with the inputs its action takes.

    ``expected_status`` is the status the page showed: an anomaly changed by someone else
    since is refused by the triage service instead of changed blind.
    """

    action = forms.ChoiceField(choices=TRIAGE_ACTION_CHOICES)
    expected_status = forms.ChoiceField(choices=[("", ""), *AnomalyStatus.choices], required=False)
    days = forms.TypedChoiceField(
        choices=[(d, f"{d} day{'s' if d > 1 else ''}") for d in SNOOZE_DAY_CHOICES],
        coerce=int,
        required=False,
        label="Snooze for",
    )
    until = forms.DateField(required=False, label="Snooze until")
    reason = forms.ChoiceField(
        choices=[("", ""), *DismissReason.choices], required=False, label="Reason"
    )
    note = forms.CharField(required=False, max_length=4000, label="Note")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        action = cleaned.get("action")
        if action == "snooze" and not (cleaned.get("until") or cleaned.get("days")):
            raise forms.ValidationError("Choose how many days to snooze, or a date.")
        if action == "dismiss" and not cleaned.get("reason"):
            self.add_error("reason", "Choose why it needs no action.")
        return cleaned


class RecordCountForm(_SentenceErrorsMixin, forms.Form):
    """The anomaly page's "Record count": units counted and the stock date they apply to."""

    counted_quantity = forms.IntegerField(
        min_value=0,
        label="Units counted",
        error_messages={
            "required": "Enter the units counted.",
            "min_value": "A count cannot be negative.",
        },
    )
    counted_on = forms.DateField(required=False, label="Count date")
    notes = forms.CharField(required=False, max_length=4000, label="Notes")


class MergeForm(_SentenceErrorsMixin, forms.Form):
    """The ids ticked in the anomaly page's "Similar anomalies" block."""

    anomalies = forms.TypedMultipleChoiceField(
        coerce=int,
        label="Similar anomalies",
        error_messages={"required": "Tick the similar anomalies to merge into this one."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id is a valid choice here: the merge service decides (store scope, state).
        ids = self.data.getlist("anomalies") if hasattr(self.data, "getlist") else []
        self.fields["anomalies"].choices = [(i, i) for i in ids if str(i).isdigit()]
