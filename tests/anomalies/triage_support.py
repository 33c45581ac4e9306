"""What the triage and lifecycle tests share: state names, building an anomaly in a state, and
reading its activity log. Fixtures built on these live in ``tests/anomalies/conftest.py``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from anomalies.models import Anomaly, AnomalyActivity, AnomalyStatus
from tests.factories import AnomalyFactory

OPEN, ACK, SNOOZED, RESOLVED, DISMISSED = (
    AnomalyStatus.OPEN,
    AnomalyStatus.ACKNOWLEDGED,
    AnomalyStatus.SNOOZED,
    AnomalyStatus.RESOLVED,
    AnomalyStatus.DISMISSED,
)
STATES = [OPEN, ACK, SNOOZED, RESOLVED, DISMISSED]
TODAY = dt.date(2024, 2, 1)
SNOOZED_UNTIL = dt.date(2024, 2, 5)
# The lifecycle tests' anomaly: ghost stock of one SKU at one store, 20–25 January 2024, last
# detected by the run as of the 25th (fixture ``existing``).
START, END = dt.date(2024, 1, 20), dt.date(2024, 1, 25)


def make(status: str, **kwargs) -> Anomaly:
    """An anomaly in ``status``; a snoozed one gets the snooze fields a snooze would set."""
    if status == SNOOZED:
        kwargs.setdefault("snoozed_until", SNOOZED_UNTIL)
        kwargs.setdefault("snoozed_severity", "warning")
        kwargs.setdefault("snoozed_value_at_risk", Decimal("95.00"))
    return AnomalyFactory(status=status, **kwargs)


def activities(anomaly: Anomaly) -> list[tuple]:
    """The anomaly's activity log, oldest first: (actor, action, from, to, note) per entry."""
    return list(
        AnomalyActivity.objects.filter(anomaly=anomaly)
        .order_by("id")
        .values_list("actor__username", "action", "from_status", "to_status", "note")
    )
