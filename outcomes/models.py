"""Recorded outcomes of triaged anomalies: was the finding real, what was done, what it saved."""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
