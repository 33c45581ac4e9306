"""Recording what a follow-up found: the one outcome of an anomaly."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.db import transaction

from anomalies.models import Anomaly, AnomalyActivity
from outcomes.models import ActionTaken, Outcome, Verdict

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class OutcomeError(ValueError):
    """An outcome that cannot be recorded: unknown anomaly, verdict or action, negative value."""


def outcome_record(
    *,
    anomaly_id: int,
    verdict: str,
    action_taken: str = ActionTaken.NONE,
    recovered_value: Decimal | int | str = 0,
    notes: str = "",
    actor: User,
) -> Outcome:
    """Create or replace the outcome of anomaly ``anomaly_id`` and log it on the anomaly.

    Recording again overwrites the previous verdict, action, value and notes (the activity
    log keeps the history). Raises ``OutcomeError`` on invalid input.
    """
    if verdict not in Verdict.values:
        raise OutcomeError(f"Unknown verdict {verdict!r}; use one of {', '.join(Verdict.values)}.")
    if action_taken not in ActionTaken.values:
        raise OutcomeError(
            f"Unknown action {action_taken!r}; use one of {', '.join(ActionTaken.values)}."
        )
    try:
        value = Decimal(str(recovered_value))
    except InvalidOperation as exc:
        raise OutcomeError(f"Recovered value {recovered_value!r} is not a number.") from exc
    if not value.is_finite() or value < 0:
        raise OutcomeError("The recovered value must be a number of at least 0.")
    with transaction.atomic():
        status = Anomaly.objects.filter(pk=anomaly_id).values_list("status", flat=True).first()
        if status is None:
            raise OutcomeError(f"Anomaly {anomaly_id} not found.")
        outcome, _created = Outcome.objects.update_or_create(
            anomaly_id=anomaly_id,
            defaults={
                "verdict": verdict,
                "action_taken": action_taken,
                "recovered_value": value,
                "notes": notes,
                "recorded_by": actor,
            },
        )
        AnomalyActivity.objects.create(
            anomaly_id=anomaly_id,
            actor=actor,
            action="outcome",
            from_status=status,
            to_status=status,
            note=f"verdict: {verdict}; action: {action_taken}; recovered: {value}"
            + (f"; {notes}" if notes else ""),
        )
    return outcome
