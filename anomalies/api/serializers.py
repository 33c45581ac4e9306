from __future__ import annotations

import decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers

from anomalies.models import (
    AckUntil,
    Anomaly,
    AnomalyActivity,
    AnomalyStatus,
    DetectionChunk,
    DetectionRun,
    DismissReason,
)
from anomalies.services.statistics import DEFAULT_TREND_DAYS
from anomalies.services.triage import (
    ACK_UNTIL_KINDS,
    SNOOZE_MAX_DAYS,
    ack_until_check,
    snooze_end,
)
from common.api_fields import StrictCharField
from common.filters import QueryParamsSerializer

NOTE_MAX_CHARS = 4000
# Decimal places of money in the API (``common.formatting``): strings such as "3583.33".
MONEY_PLACES = 2


def money_field(**kwargs: Any) -> serializers.DecimalField:
    """A read-only money field: a decimal string with two places, rounded half up
    (``"3583.33"``, never ``3583.3291200000003``), from a Decimal or a float."""
    return serializers.DecimalField(
        max_digits=None,
        decimal_places=MONEY_PLACES,
        rounding=decimal.ROUND_HALF_UP,
        read_only=True,
        **kwargs,
    )


class RoundedFloatField(serializers.FloatField):
    """A read-only number rounded to ``places`` decimals (a JSON number, not a string):
    quantities and prices that are not money totals, e.g. a finding's expected value."""

    def __init__(self, *, places: int = MONEY_PLACES, **kwargs: Any) -> None:
        self.places = places
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> float:
        return round(float(value), self.places)


class AnomalySerializer(serializers.ModelSerializer):
    """Read-only: anomalies change only through the POST actions (triage services)."""

    sku = serializers.CharField(source="product.sku", read_only=True, allow_null=True)
    product_name = serializers.CharField(source="product.name", read_only=True, allow_null=True)
    location_code = serializers.CharField(source="location.code", read_only=True)
    assignee_username = serializers.CharField(
        source="assignee.username", read_only=True, allow_null=True
    )
    # Blank until dismissed: the schema's enum must allow "" too.
    dismiss_reason = serializers.ChoiceField(
        choices=DismissReason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why it was dismissed; blank unless dismissed.",
    )
    expected_value = RoundedFloatField(
        allow_null=True, help_text="What the detector expected (units or price), 2 decimals."
    )
    actual_value = RoundedFloatField(
        allow_null=True, help_text="What was observed (units or price), 2 decimals."
    )
    value_at_risk = money_field(help_text="Money at risk, a decimal string with 2 places.")

    class Meta:
        model = Anomaly
        fields = [
            "id",
            "anomaly_type",
            "severity",
            "status",
            "score",
            "p_value",
            "q_value",
            "expected_value",
            "actual_value",
            "value_at_risk",
            "explanation",
            "details",
            "product",
            "sku",
            "product_name",
            "location",
            "location_code",
            "start_date",
            "end_date",
            "first_detected_on",
            "last_detected_on",
            "assignee",
            "assignee_username",
            "last_run",
            "parent",
            "created_at",
            "updated_at",
            "acknowledged_at",
            "closed_at",
            "dismiss_reason",
            "snoozed_until",
            "regressed_at",
            "regression_count",
            "ack_until_kind",
            "ack_until_date",
            "ack_since",
        ]
        read_only_fields = fields


class TransitionSerializer(serializers.Serializer):
    """Body of a state change. ``expected_status`` is the status the client last saw: when
    the anomaly has moved on since, the change is refused with 409 ("changed by someone
    else: now ...") instead of overwriting someone else's decision.
    """

    expected_status = serializers.ChoiceField(
        choices=AnomalyStatus.choices,
        required=False,
        default=None,
        help_text="Refuse (409) unless the anomaly is still in this status.",
    )


class NoteSerializer(TransitionSerializer):
    note = StrictCharField(required=False, allow_blank=True, default="", max_length=NOTE_MAX_CHARS)


class DismissSerializer(NoteSerializer):
    reason = serializers.ChoiceField(choices=DismissReason.choices)


class SnoozeSerializer(NoteSerializer):
    """``{"days": 7}`` or ``{"until": "2026-12-01"}`` (a day after today), plus a note."""

    until = serializers.DateField(
        required=False, default=None, help_text="The day it reopens by itself (after today)."
    )
    days = serializers.IntegerField(
        required=False,
        default=None,
        min_value=1,
        max_value=SNOOZE_MAX_DAYS,
        help_text="Snooze for this many days from today.",
    )

    def validate(self, attrs: dict) -> dict:
        try:
            snooze_end(until=attrs["until"], days=attrs["days"], today=timezone.localdate())
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return attrs


class AcknowledgeUntilSerializer(NoteSerializer):
    """``{"kind": "counted"}``, ``{"kind": "receipt"}`` or ``{"kind": "date", "until":
    "2026-12-01"}`` (a day after today), plus a note."""

    kind = serializers.ChoiceField(
        choices=[(kind, AckUntil(kind).label) for kind in ACK_UNTIL_KINDS],
        help_text="What ends the acknowledgement: a count of the SKU there, its next receipt "
        "there, or a date. It then returns to open if detection still finds it.",
    )
    until = serializers.DateField(
        required=False, default=None, help_text='For "date": the day (after today).'
    )

    def validate(self, attrs: dict) -> dict:
        try:
            ack_until_check(kind=attrs["kind"], until=attrs["until"], today=timezone.localdate())
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return attrs


class NoteAddSerializer(serializers.Serializer):
    note = StrictCharField(max_length=NOTE_MAX_CHARS)


class AnomalyActivitySerializer(serializers.ModelSerializer):
    actor_username = serializers.CharField(source="actor.username", read_only=True, allow_null=True)

    class Meta:
        model = AnomalyActivity
        fields = [
            "id",
            "anomaly",
            "created_at",
            "actor",
            "actor_username",
            "action",
            "from_status",
            "to_status",
            "note",
        ]
        read_only_fields = fields


class AssignSerializer(TransitionSerializer):
    """``{"assignee": <user id>}``, ``{"assignee": null}`` to unassign, or ``{"me": true}``."""

    assignee = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), allow_null=True, required=False
    )
    me = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict) -> dict:
        given = "assignee" in attrs
        if attrs["me"] and given:
            raise serializers.ValidationError("Give either assignee or me, not both.")
        if not attrs["me"] and not given:
            raise serializers.ValidationError(
                'Give "assignee" (a user id, or null to unassign) or "me": true.'
            )
        return attrs


class DetailSerializer(serializers.Serializer):
    """Error body: ``{"detail": "Anomaly 12 is resolved; it cannot be acknowledged."}``."""

    detail = serializers.CharField()


ERROR_SUMMARY_MAX_CHARS = 500


def error_summary(error: str) -> str:
    """The last non-blank line of a stored error (a traceback ends with ``Type: message``),
    at most ``ERROR_SUMMARY_MAX_CHARS`` characters; ``""`` for no error."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return lines[-1][:ERROR_SUMMARY_MAX_CHARS] if lines else ""


class _RunErrorMixin(serializers.Serializer):
    """``error`` is a one-line summary for everyone; ``error_traceback`` holds the stored
    traceback for superusers only (``null`` for others): tracebacks name code paths, SQL and
    sometimes data, which the API's users need not see (the admin shows them to admins)."""

    error = serializers.SerializerMethodField(help_text="One-line summary of the failure.")
    error_traceback = serializers.SerializerMethodField(
        help_text="The full traceback (superusers only; null otherwise)."
    )

    def get_error(self, obj) -> str:
        return error_summary(obj.error)

    def get_error_traceback(self, obj) -> str | None:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return obj.error if user is not None and user.is_superuser else None


class DetectionChunkSerializer(_RunErrorMixin, serializers.ModelSerializer):
    """One chunk of locations of a run, as a worker handled it."""

    class Meta:
        model = DetectionChunk
        fields = [
            "index",
            "status",
            "location_ids",
            "series",
            "hypotheses_tested",
            "new_findings",
            "new_findings_controlled",
            "worker",
            "counts",
            "error",
            "error_traceback",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]
        read_only_fields = fields


class DetectionRunSerializer(_RunErrorMixin, serializers.ModelSerializer):
    chunks = DetectionChunkSerializer(many=True, read_only=True)

    class Meta:
        model = DetectionRun
        fields = [
            "id",
            "as_of",
            "detectors",
            "status",
            "trigger",
            "history_days",
            "fdr_q",
            "hypotheses_tested",
            "new_findings",
            "new_findings_controlled",
            "expected_false_alarms",
            "counts",
            "notes",
            "settings",
            "error",
            "error_traceback",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "chunks",
        ]
        read_only_fields = fields


class DetectionRunRequestSerializer(serializers.Serializer):
    """Both optional: ``as_of`` defaults to the latest date with data, ``detectors`` to all."""

    as_of = serializers.DateField(required=False, allow_null=True, default=None)
    detectors = serializers.ListField(
        child=StrictCharField(), required=False, allow_null=True, default=None
    )


class StatisticsQuerySerializer(QueryParamsSerializer):
    days = serializers.IntegerField(min_value=1, max_value=366, default=DEFAULT_TREND_DAYS)


def _counts_field(help_text: str) -> serializers.Field:
    return serializers.DictField(child=serializers.IntegerField(), help_text=help_text)


class TrendDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    total = serializers.IntegerField()
    by_type = serializers.DictField(
        child=serializers.IntegerField(), help_text="New anomalies per type that day."
    )


class TrendSerializer(serializers.Serializer):
    start = serializers.DateField(allow_null=True)
    end = serializers.DateField(allow_null=True, help_text="Latest first_detected_on.")
    days = TrendDaySerializer(many=True)


class AnomalyStatisticsSerializer(serializers.Serializer):
    """Shape of ``anomaly_statistics()`` (used for output and the schema)."""

    total = serializers.IntegerField()
    by_type = _counts_field("Count per anomaly type (every type, zeros included).")
    by_severity = _counts_field("Count per severity.")
    by_status = _counts_field("Count per status.")
    open_value_at_risk = money_field(help_text="Sum of value_at_risk of open anomalies.")
    trend = TrendSerializer()
