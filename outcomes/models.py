"""The outcomes loop: what a follow-up found, cycle counts, reported misses, threshold changes.

- ``Outcome``: what a person found when following up an anomaly (one per anomaly).
- ``CycleCount``: a request to count one SKU at one location (for an anomaly, or a random
  control count), and its result. Recording a count writes an ``inventory.StockAdjustment``.
- ``MissedAnomaly``: a problem staff found that no detector reported (for recall).
- ``ThresholdProposal``: a proposed detector threshold change computed from outcomes, and,
  once an admin applies it, the record of the change.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from anomalies.models import AnomalyType


class Verdict(models.TextChoices):
    TRUE_POSITIVE = "true_positive", "True positive"
    FALSE_POSITIVE = "false_positive", "False positive"
    EXPECTED = "expected", "Expected (promotion, holiday, known event)"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class ActionTaken(models.TextChoices):
    CYCLE_COUNT = "cycle_count", "Cycle count"
    PRICE_CORRECTED = "price_corrected", "Price corrected"
    RECORD_ADJUSTED = "record_adjusted", "Record adjusted"
    NONE = "none", "None"


class Outcome(models.Model):
    """What a person found when they followed up an anomaly (one per anomaly)."""

    anomaly = models.OneToOneField(
        "anomalies.Anomaly", on_delete=models.CASCADE, related_name="outcome"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    action_taken = models.CharField(
        max_length=16, choices=ActionTaken.choices, default=ActionTaken.NONE
    )
    recovered_value = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, help_text="Money recovered, in shelf price."
    )
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            # Precision by verdict over time.
            models.Index(fields=["verdict", "recorded_at"], name="outcome_verdict_recorded_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.anomaly_id}: {self.get_verdict_display()}"


# --- cycle counts ------------------------------------------------------------------------------

# Anomaly types whose finding a physical count can confirm or refute.
COUNTABLE_TYPES: tuple[str, ...] = (AnomalyType.GHOST_STOCK, AnomalyType.INVENTORY_DISCREPANCY)


class CycleCountStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    COUNTED = "counted", "Counted"
    CANCELLED = "cancelled", "Cancelled"


class CycleCountQuerySet(models.QuerySet):
    def open(self) -> CycleCountQuerySet:
        """Counts still to be done."""
        return self.filter(status=CycleCountStatus.REQUESTED)

    def for_location(self, location_id: int) -> CycleCountQuerySet:
        return self.filter(location_id=location_id)


class CycleCount(models.Model):
    """A request to count one SKU at one location, and what the count found.

    Requested for a ghost-stock or inventory-discrepancy anomaly (``anomaly`` set, ``priority``
    = probability x money at risk per day, see ``outcomes.services.cycle_counts``) or as a
    random control count (``is_control``, no anomaly: a sample of SKU/locations without any
    finding, for the recall estimate). At most one open count per SKU/location.
    """

    anomaly = models.ForeignKey(
        "anomalies.Anomaly",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cycle_counts",
        help_text="The finding this count checks; blank for a control count.",
    )
    product = models.ForeignKey(
        "inventory.Product", on_delete=models.CASCADE, related_name="cycle_counts"
    )
    location = models.ForeignKey(
        "inventory.Location", on_delete=models.CASCADE, related_name="cycle_counts"
    )
    status = models.CharField(
        max_length=16, choices=CycleCountStatus.choices, default=CycleCountStatus.REQUESTED
    )
    priority = models.FloatField(
        default=0.0,
        help_text="Probability the finding is real x money at risk per day (shelf price); "
        "higher is counted first. 0 for control counts.",
    )
    book_on_hand = models.IntegerField(
        null=True,
        blank=True,
        help_text="Book stock (units) when the count was requested; blank if none is known.",
    )
    counted_quantity = models.IntegerField(
        null=True, blank=True, help_text="Units found on the shelf and in the back room."
    )
    counted_on = models.DateField(
        null=True, blank=True, help_text="Stock date the count applies to (end of that day)."
    )
    is_control = models.BooleanField(
        default=False, help_text="A random control count of a SKU/location with no finding."
    )
    population = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Control counts: how many eligible SKU/locations the sample was drawn from "
        "(for the recall estimate).",
    )
    notes = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    counted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    counted_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = CycleCountQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "location"],
                condition=Q(status="requested"),
                name="cyclecount_one_open_per_sku_location",
            ),
            models.CheckConstraint(
                condition=Q(counted_quantity__isnull=True) | Q(counted_quantity__gte=0),
                name="cyclecount_counted_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(status="counted") | Q(counted_quantity__isnull=False),
                name="cyclecount_counted_has_quantity",
            ),
            models.CheckConstraint(
                condition=Q(is_control=False) | Q(anomaly__isnull=True),
                name="cyclecount_control_has_no_anomaly",
            ),
        ]
        indexes = [
            # The store's count list: open counts of one location by priority.
            models.Index(
                fields=["location", "status", "-priority"], name="cyclecount_loc_status_prio_idx"
            ),
            # The API's count list (?status=requested) by priority.
            models.Index(fields=["status", "-priority"], name="cyclecount_status_prio_idx"),
            # Metrics: counts done in a period (labour, control counts).
            models.Index(fields=["counted_at"], name="cyclecount_counted_at_idx"),
        ]

    def __str__(self) -> str:
        # What people read in breadcrumbs and messages: "Cycle count of SKU-0042 at STORE-01
        # (requested)". The SKU and store come from the joined rows where they were selected
        # (no query then); database ids only where they were not.
        kind = "Control count" if self.is_control else "Cycle count"
        cache = self._state.fields_cache
        sku = cache["product"].sku if cache.get("product") else f"product {self.product_id}"
        store = cache["location"].code if cache.get("location") else f"location {self.location_id}"
        return f"{kind} of {sku} at {store} ({self.get_status_display().lower()})"

    def clean(self) -> None:
        if self.is_control and self.anomaly_id:
            raise ValidationError({"anomaly": "A control count has no anomaly."})
        if self.counted_quantity is not None and self.counted_quantity < 0:
            raise ValidationError({"counted_quantity": "A count cannot be negative."})


class MissedAnomaly(models.Model):
    """A problem staff found that no detector reported: the misses behind the recall estimate."""

    anomaly_type = models.CharField(max_length=32, choices=AnomalyType.choices)
    product = models.ForeignKey(
        "inventory.Product",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Blank for a store-level problem.",
    )
    location = models.ForeignKey("inventory.Location", on_delete=models.CASCADE, related_name="+")
    start_date = models.DateField(help_text="First day the problem existed (best estimate).")
    end_date = models.DateField(
        null=True, blank=True, help_text="Last day; blank if it is still going on."
    )
    notes = models.TextField(blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "missed anomalies"
        ordering = ["-reported_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="missedanomaly_end_after_start",
            ),
        ]
        indexes = [
            # Recall: misses of a type in a period.
            models.Index(fields=["anomaly_type", "start_date"], name="missed_type_start_idx"),
        ]

    def __str__(self) -> str:
        return f"missed {self.anomaly_type} {self.product_id}@{self.location_id} {self.start_date}"

    def clean(self) -> None:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "The end date is before the start date."})


# --- feedback into detection -------------------------------------------------------------------


class ProposalStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPLIED = "applied", "Applied"
    SUPERSEDED = "superseded", "Superseded"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class ThresholdProposal(models.Model):
    """A detector score-threshold change that recorded outcomes say reaches a target precision.

    Computed by ``outcomes.services.feedback.threshold_proposals_create``; applying it
    (``threshold_proposal_apply``) writes ``DetectorConfig.params`` and keeps here who applied
    it, when, and the parameters before and after.
    """

    detector = models.CharField(max_length=32, choices=AnomalyType.choices)
    param_name = models.CharField(
        max_length=64, blank=True, help_text="Detector parameter changed; blank if none applies."
    )
    current_value = models.FloatField(null=True, blank=True)
    proposed_value = models.FloatField(null=True, blank=True)
    score_threshold = models.FloatField(
        null=True, blank=True, help_text="Keep only findings with a score at least this."
    )
    target_precision = models.FloatField()
    labelled = models.PositiveIntegerField(
        default=0, help_text="Findings with a verdict (true/false positive, expected)."
    )
    true_positives = models.PositiveIntegerField(default=0)
    current_precision = models.FloatField(null=True, blank=True)
    projected_labelled = models.PositiveIntegerField(
        default=0, help_text="Labelled findings the proposal keeps."
    )
    projected_precision = models.FloatField(
        null=True, blank=True, help_text="Precision over the labelled findings it keeps."
    )
    preview_start = models.DateField(null=True, blank=True)
    preview_end = models.DateField(null=True, blank=True)
    preview_current = models.PositiveIntegerField(
        default=0, help_text="Findings first detected in the preview window."
    )
    preview_proposed = models.PositiveIntegerField(
        default=0, help_text="Of those, findings the proposed threshold keeps."
    )
    note = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PROPOSED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    old_params = models.JSONField(
        null=True, blank=True, help_text="Detector setting overrides before the change."
    )
    new_params = models.JSONField(
        null=True, blank=True, help_text="Detector setting overrides after the change."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Admin list and supersession: the proposals of one detector by status.
            models.Index(fields=["detector", "status"], name="proposal_detector_status_idx"),
        ]

    def __str__(self) -> str:
        if not self.param_name or self.proposed_value is None:
            return f"{self.detector}: no change ({self.get_status_display()})"
        current = "default" if self.current_value is None else f"{self.current_value:g}"
        return (
            f"{self.detector}: {self.param_name} {current} → {self.proposed_value:g} "
            f"({self.get_status_display()})"
        )
