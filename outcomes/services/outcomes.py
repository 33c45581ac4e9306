"""Recording what a follow-up found (the one outcome of an anomaly) and reporting misses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.db import transaction

from anomalies.models import ActivityAction, Anomaly, AnomalyType
from anomalies.services.triage import ActivityEntry, anomaly_activity_record
from inventory.models import Location, Product
from outcomes.models import ActionTaken, MissedAnomaly, Outcome, Verdict

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
    actor: User | None,
) -> Outcome:
    """Create or replace the outcome of anomaly ``anomaly_id`` and log it on the anomaly.

    Recording again overwrites the previous verdict, action, value and notes (the activity
    log keeps the history). ``recovered_value`` is money at shelf price (>= 0). Raises
    ``OutcomeError`` on invalid input; then nothing is written.
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
        summary = f"verdict: {verdict}; action: {action_taken}; recovered: {value}"
        anomaly_activity_record(
            action=ActivityAction.OUTCOME,
            actor=actor,
            entries=[
                ActivityEntry(anomaly_id, status, status, summary + (f"; {notes}" if notes else ""))
            ],
        )
    return outcome


def missed_anomaly_report(
    *,
    anomaly_type: str,
    location: Location,
    start_date: dt.date,
    product: Product | None = None,
    end_date: dt.date | None = None,
    notes: str = "",
    actor: User | None,
) -> MissedAnomaly:
    """Record a problem no detector reported (it lowers the recall estimate of its type).

    ``product`` is ``None`` for a store-level problem; ``end_date`` ``None`` while it lasts.
    Raises ``OutcomeError`` for an unknown type or an end date before the start.
    """
    if anomaly_type not in AnomalyType.values:
        raise OutcomeError(
            f"Unknown anomaly type {anomaly_type!r}; use one of {', '.join(AnomalyType.values)}."
        )
    if end_date is not None and end_date < start_date:
        raise OutcomeError("The end date is before the start date.")
    return MissedAnomaly.objects.create(
        anomaly_type=anomaly_type,
        product=product,
        location=location,
        start_date=start_date,
        end_date=end_date,
        notes=notes,
        reported_by=actor,
    )
