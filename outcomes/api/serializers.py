from __future__ import annotations

from rest_framework import serializers

from anomalies.api.serializers import money_field
from anomalies.models import Anomaly
from common.api_fields import StrictCharField, StrictModelSerializer
from common.filters import QueryParamsSerializer
from inventory.models import StockAdjustment
from outcomes.metrics import PERIODS
from outcomes.models import ActionTaken, CycleCount, MissedAnomaly, Outcome, Verdict


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
    notes = StrictCharField(required=False, allow_blank=True, default="")


# --- cycle counts ------------------------------------------------------------------------------


class StockAdjustmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = StockAdjustment
        fields = ["id", "date", "book_before", "counted", "delta", "reason", "created_at"]
        read_only_fields = fields


class CycleCountSerializer(serializers.ModelSerializer):
    """Read-only: counts change through ``POST cycle-counts/`` and the record/cancel actions."""

    anomaly_type = serializers.CharField(
        source="anomaly.anomaly_type", read_only=True, allow_null=True
    )
    sku = serializers.CharField(source="product.sku", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    location_code = serializers.CharField(source="location.code", read_only=True)
    stock_adjustment = StockAdjustmentSerializer(read_only=True, allow_null=True)
    priority = money_field(
        help_text="Probability the finding is real x money at risk per day, 2 places."
    )
    verdict = serializers.CharField(
        source="anomaly.outcome.verdict",
        read_only=True,
        allow_null=True,
        help_text="Outcome recorded for the anomaly (set when the count is recorded).",
    )

    class Meta:
        model = CycleCount
        fields = [
            "id",
            "anomaly",
            "anomaly_type",
            "product",
            "sku",
            "product_name",
            "location",
            "location_code",
            "status",
            "priority",
            "book_on_hand",
            "counted_quantity",
            "counted_on",
            "is_control",
            "population",
            "notes",
            "requested_by",
            "requested_at",
            "counted_by",
            "counted_at",
            "cancelled_at",
            "stock_adjustment",
            "verdict",
        ]
        read_only_fields = fields


class CycleCountRequestSerializer(serializers.Serializer):
    """Input of ``POST /cycle-counts/``: count the SKU/location of a ghost-stock or
    inventory-discrepancy anomaly."""

    anomaly = serializers.PrimaryKeyRelatedField(queryset=Anomaly.objects.all())


class CycleCountRecordSerializer(serializers.Serializer):
    """Input of ``POST /cycle-counts/{id}/record/``."""

    counted_quantity = serializers.IntegerField(
        min_value=0, help_text="Units found on the shelf and in the back room."
    )
    counted_on = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Stock date the count applies to (default: today; not in the future).",
    )
    notes = StrictCharField(required=False, allow_blank=True, default="")


# --- missed anomalies --------------------------------------------------------------------------


class MissedAnomalySerializer(StrictModelSerializer):
    """A problem no detector reported. POST creates one; ``product`` null = store-level."""

    sku = serializers.CharField(source="product.sku", read_only=True, allow_null=True)
    location_code = serializers.CharField(source="location.code", read_only=True)
    reported_by_username = serializers.CharField(
        source="reported_by.username", read_only=True, allow_null=True
    )

    class Meta:
        model = MissedAnomaly
        fields = [
            "id",
            "anomaly_type",
            "product",
            "sku",
            "location",
            "location_code",
            "start_date",
            "end_date",
            "notes",
            "reported_by",
            "reported_by_username",
            "reported_at",
        ]
        read_only_fields = ["id", "reported_by", "reported_at"]

    def validate(self, attrs: dict) -> dict:
        end, start = attrs.get("end_date"), attrs.get("start_date")
        if end is not None and start is not None and end < start:
            raise serializers.ValidationError(
                {"end_date": "The end date is before the start date."}
            )
        return attrs


# --- reports -----------------------------------------------------------------------------------


class ReportQuerySerializer(QueryParamsSerializer):
    """Window and period of a report; default the 90 days ending today, by month."""

    # Not nullable: a query string cannot say null, and ``?start=`` is a mistake (400).
    start = serializers.DateField(required=False, default=None)
    end = serializers.DateField(required=False, default=None)
    period = serializers.ChoiceField(choices=list(PERIODS), default="month")


def _rate(help_text: str = "") -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text or None)


class EffectivenessSerializer(serializers.Serializer):
    """One row of effectiveness figures (see ``outcomes.metrics``)."""

    raised = serializers.IntegerField(help_text="Anomalies first detected in the window.")
    labelled = serializers.IntegerField(help_text="With a verdict TP, FP or expected.")
    true_positive = serializers.IntegerField()
    false_positive = serializers.IntegerField()
    expected = serializers.IntegerField()
    inconclusive = serializers.IntegerField()
    precision = _rate("TP / labelled; null when nothing is labelled.")
    false_positive_rate = _rate("FP / labelled (share of decided findings that were false).")
    responded = serializers.IntegerField(help_text="Acknowledged or closed.")
    mtta_hours = _rate("Mean hours from raised to the first response.")
    closed = serializers.IntegerField(help_text="Resolved or dismissed.")
    mttr_hours = _rate("Mean hours from raised to closed.")
    resolution_rate = _rate("closed / raised.")


class EffectivenessByTypeSerializer(EffectivenessSerializer):
    anomaly_type = serializers.CharField()


class EffectivenessByDetectorSerializer(EffectivenessSerializer):
    detector = serializers.CharField()


class EffectivenessByLocationSerializer(EffectivenessSerializer):
    location = serializers.CharField(help_text="Location code.")


class EffectivenessPeriodSerializer(EffectivenessSerializer):
    period_start = serializers.DateField(help_text="Monday of the week / 1st of the month.")
    recall = _rate()


class RecallByTypeSerializer(serializers.Serializer):
    anomaly_type = serializers.CharField()
    found = serializers.IntegerField(help_text="True positives.")
    control_counts = serializers.IntegerField()
    control_misses = serializers.IntegerField(help_text="Control counts below book.")
    estimated_missed = serializers.FloatField(help_text="Misses estimated from control counts.")
    reported_missed = serializers.IntegerField()
    missed = serializers.FloatField(help_text="max(estimated, reported).")
    recall = _rate("found / (found + missed).")


class RecallSerializer(serializers.Serializer):
    found = serializers.IntegerField()
    missed = serializers.FloatField()
    recall = _rate()
    by_type = RecallByTypeSerializer(many=True)


class MetricTrendSerializer(serializers.Serializer):
    slope = _rate("Least-squares slope per period; null with fewer than two periods.")
    change = _rate("Last period minus the one before.")


class EffectivenessTrendSerializer(serializers.Serializer):
    precision = MetricTrendSerializer()
    false_positive_rate = MetricTrendSerializer()
    mtta_hours = MetricTrendSerializer()
    mttr_hours = MetricTrendSerializer()
    resolution_rate = MetricTrendSerializer()
    recall = MetricTrendSerializer()


class EffectivenessReportSerializer(serializers.Serializer):
    """Shape of ``effectiveness_report()``."""

    start = serializers.DateField()
    end = serializers.DateField()
    period = serializers.CharField()
    overall = EffectivenessSerializer()
    by_type = EffectivenessByTypeSerializer(many=True)
    by_detector = EffectivenessByDetectorSerializer(many=True)
    by_location = EffectivenessByLocationSerializer(many=True)
    recall = RecallSerializer()
    periods = EffectivenessPeriodSerializer(many=True)
    trend = EffectivenessTrendSerializer()


class RoiTotalsSerializer(serializers.Serializer):
    """Money as decimal strings with two places ("3583.33")."""

    recovered_value = money_field(help_text="Recovered value of true positives.")
    lost_sales_prevented = money_field(
        help_text="Days of ghost stock saved x expected daily sales x price."
    )
    true_positives = serializers.IntegerField()
    counts_done = serializers.IntegerField()
    labour_cost = money_field(help_text="counts x minutes / 60 x cost per hour.")
    net_value = money_field(help_text="recovered + prevented - labour.")
    roi = _rate("net_value / labour_cost; null without labour.")


class RoiPeriodSerializer(RoiTotalsSerializer):
    period_start = serializers.DateField()


class RoiSettingsSerializer(serializers.Serializer):
    discovery_days = serializers.IntegerField()
    count_minutes = serializers.FloatField()
    count_cost_per_hour = money_field()


class RoiTrendSerializer(serializers.Serializer):
    recovered_value = MetricTrendSerializer()
    lost_sales_prevented = MetricTrendSerializer()
    labour_cost = MetricTrendSerializer()
    net_value = MetricTrendSerializer()


class RoiReportSerializer(serializers.Serializer):
    """Shape of ``roi_report()``."""

    start = serializers.DateField()
    end = serializers.DateField()
    period = serializers.CharField()
    currency = serializers.CharField()
    settings = RoiSettingsSerializer()
    totals = RoiTotalsSerializer()
    periods = RoiPeriodSerializer(many=True)
    trend = RoiTrendSerializer()
