from __future__ import annotations

from rest_framework import serializers

from anomalies.models import Anomaly
from outcomes.models import ActionTaken, Outcome, Verdict


class OutcomeSerializer(serializers.ModelSerializer):
    anomaly_type = serializers.CharField(source="anomaly.anomaly_type", read_only=True)
    sku = serializers.CharField(source="anomaly.product.sku", read_only=True, allow_null=True)
    location_code = serializers.CharField(source="anomaly.location.code", read_only=True)
    recorded_by_username = serializers.CharField(
        source="recorded_by.username", read_only=True, allow_null=True
    )

    class Meta:
        model = Outcome
        fields = [
            "id",
            "anomaly",
            "anomaly_type",
            "sku",
            "location_code",
            "verdict",
            "action_taken",
            "recovered_value",
            "notes",
            "recorded_by",
            "recorded_by_username",
            "recorded_at",
        ]
        read_only_fields = fields


class OutcomeRecordSerializer(serializers.Serializer):
    """Input of ``POST /outcomes/``: records (or replaces) the outcome of ``anomaly``."""

    anomaly = serializers.PrimaryKeyRelatedField(queryset=Anomaly.objects.all())
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    action_taken = serializers.ChoiceField(choices=ActionTaken.choices, default=ActionTaken.NONE)
    recovered_value = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, default=0
    )
    notes = serializers.CharField(required=False, allow_blank=True, default="")
