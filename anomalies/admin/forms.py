"""Forms of the anomaly admin: the change form (assignee only), the note form, the dismiss page."""

from __future__ import annotations

from typing import Any

from django import forms

from anomalies.models import Anomaly, DismissReason
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
