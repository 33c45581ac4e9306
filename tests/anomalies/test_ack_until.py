"""Acknowledge until a condition: until counted, until the next receipt, until a date.

The finding (ghost stock of A1 at S1, 20–25 January 2024, last detected as of the 25th: the
``existing`` fixture) stays acknowledged until the condition has passed *and* detection still
finds it; it then returns to open by itself with an activity entry saying why.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from anomalies.detectors.base import make_findings
from anomalies.models import AckUntil, ActivityAction, Anomaly
from anomalies.services import triage
from anomalies.services.persistence import anomalies_persist
from anomalies.services.triage import (
    COUNT_RECORDED_STATUS,
    TransitionError,
    anomalies_acknowledge_until,
    anomalies_wake_acknowledged,
    anomaly_acknowledge_until,
    anomaly_resolve,
    anomaly_snooze,
)
from anomalies.tasks import wake_snoozed_task
from inventory.models import Receipt
from outcomes.models import CycleCount, CycleCountStatus
from outcomes.services.cycle_counts import cycle_count_record, cycle_count_request
from tests.anomalies.triage_support import ACK, END, OPEN, RESOLVED, SNOOZED, TODAY, activities
from tests.factories import AnomalyFactory, DetectionRunFactory, LocationFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

LATER = END + dt.timedelta(days=3)  # 28 January: a later detection day


def _detected_as_of(anomaly: Anomaly, day: dt.date) -> None:
    """Detection extended the anomaly up to ``day`` (as a run as of ``day`` would)."""
    Anomaly.objects.filter(pk=anomaly.pk).update(end_date=day, last_detected_on=day)


def _receipt(anomaly: Anomaly, day: dt.date, *, location=None) -> None:
    Receipt.objects.create(
        product=anomaly.product, location=location or anomaly.location, date=day, units=12
    )


def _shelf_counted(anomaly: Anomaly, day: dt.date, *, location=None) -> CycleCount:
    """A control count of the same SKU/location, recorded (another origin than the finding)."""
    return CycleCount.objects.create(
        product=anomaly.product,
        location=location or anomaly.location,
        is_control=True,
        status=CycleCountStatus.COUNTED,
        counted_quantity=0,
        counted_on=day,
    )


# --- acknowledging until ---------------------------------------------------------------------


def test_acknowledge_until_counted_claims_it_and_remembers_its_last_detection_day(existing, actor):
    anomaly = existing(OPEN)

    report = anomalies_acknowledge_until(
        anomaly_ids=[anomaly.pk], actor=actor, kind=AckUntil.COUNTED
    )

    assert report.summary() == "1 anomaly acknowledged until counted."
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.ack_until_kind, anomaly.ack_since) == (
        ACK,
        AckUntil.COUNTED,
        END,
    )
    assert anomaly.assignee == actor and anomaly.acknowledged_at is not None
    assert activities(anomaly) == [
        ("ops", ActivityAction.ACKNOWLEDGE, OPEN, ACK, "until counted; assigned to ops")
    ]


def test_acknowledge_until_a_date_from_snoozed_ends_the_snooze(existing, actor):
    anomaly = existing(SNOOZED)
    day = TODAY + dt.timedelta(days=10)

    anomaly_acknowledge_until(
        anomaly_id=anomaly.pk, actor=actor, kind=AckUntil.DATE, until=day, today=TODAY
    )

    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.ack_until_kind, anomaly.ack_until_date) == (
        ACK,
        AckUntil.DATE,
        day,
    )
    assert anomaly.snoozed_until is None and anomaly.snoozed_value_at_risk is None


def test_an_acknowledged_anomaly_keeps_its_acknowledgement_time(existing, actor):
    anomaly = existing(ACK)
    Anomaly.objects.filter(pk=anomaly.pk).update(
        acknowledged_at=dt.datetime(2024, 1, 26, tzinfo=dt.UTC)
    )

    anomaly_acknowledge_until(anomaly_id=anomaly.pk, actor=actor, kind=AckUntil.RECEIPT)

    anomaly.refresh_from_db()
    assert anomaly.acknowledged_at == dt.datetime(2024, 1, 26, tzinfo=dt.UTC)
    assert anomaly.ack_until_kind == AckUntil.RECEIPT


def test_changing_the_condition_says_what_it_was(existing, actor):
    anomaly = existing(OPEN)
    anomaly_acknowledge_until(anomaly_id=anomaly.pk, actor=actor, kind=AckUntil.RECEIPT)

    anomaly_acknowledge_until(anomaly_id=anomaly.pk, actor=actor, kind=AckUntil.COUNTED)

    assert activities(anomaly)[-1] == (
        "ops",
        ActivityAction.ACKNOWLEDGE,
        ACK,
        ACK,
        "until counted; was until the next receipt",
    )
    assert _state(anomaly) == (ACK, AckUntil.COUNTED)


def test_the_same_condition_twice_is_skipped_and_a_closed_anomaly_refused(existing, actor):
    waiting = existing(OPEN)
    anomaly_acknowledge_until(anomaly_id=waiting.pk, actor=actor, kind=AckUntil.RECEIPT)
    closed = AnomalyFactory(status=RESOLVED)

    report = anomalies_acknowledge_until(
        anomaly_ids=[waiting.pk, closed.pk], actor=actor, kind=AckUntil.RECEIPT
    )

    assert report.skipped == {
        waiting.pk: "already acknowledged until the next receipt",
        closed.pk: RESOLVED,
    }
    with pytest.raises(TransitionError, match="is resolved; it cannot be acknowledged until"):
        anomaly_acknowledge_until(anomaly_id=closed.pk, actor=actor, kind=AckUntil.COUNTED)


def test_a_store_level_finding_cannot_wait_for_a_count_or_a_receipt(actor):
    outage = AnomalyFactory(anomaly_type="pos_outage", product=None)

    for kind in (AckUntil.COUNTED, AckUntil.RECEIPT):
        report = anomalies_acknowledge_until(anomaly_ids=[outage.pk], actor=actor, kind=kind)
        assert report.skipped == {outage.pk: "a store-level finding (no SKU)"}
    anomaly_acknowledge_until(
        anomaly_id=outage.pk,
        actor=actor,
        kind=AckUntil.DATE,
        until=TODAY + dt.timedelta(days=1),
        today=TODAY,
    )
    outage.refresh_from_db()
    assert outage.status == ACK


@pytest.mark.parametrize(
    ("kind", "until", "message"),
    [
        ("forever", None, "Unknown condition 'forever'"),
        (AckUntil.NONE, None, "Unknown condition 'none'"),
        (AckUntil.DATE, None, "Give the date"),
        (AckUntil.DATE, TODAY, "a day after today"),
        (AckUntil.DATE, TODAY + dt.timedelta(days=366), "at most 365 days"),
        (AckUntil.COUNTED, TODAY + dt.timedelta(days=3), 'with "until a date" only'),
    ],
)
def test_a_bad_condition_is_refused_and_changes_nothing(existing, actor, kind, until, message):
    anomaly = existing(OPEN)

    with pytest.raises(ValueError, match=message):
        anomalies_acknowledge_until(
            anomaly_ids=[anomaly.pk], actor=actor, kind=kind, until=until, today=TODAY
        )

    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.ack_until_kind) == (OPEN, AckUntil.NONE)


@pytest.mark.parametrize("leave", ["resolve", "snooze"])
def test_leaving_acknowledged_clears_the_condition(existing, actor, leave):
    anomaly = existing(OPEN)
    anomaly_acknowledge_until(anomaly_id=anomaly.pk, actor=actor, kind=AckUntil.COUNTED)

    if leave == "resolve":
        anomaly_resolve(anomaly_id=anomaly.pk, actor=actor)
    else:
        anomaly_snooze(anomaly_id=anomaly.pk, actor=actor, days=3)

    anomaly.refresh_from_db()
    assert (anomaly.ack_until_kind, anomaly.ack_until_date, anomaly.ack_since) == (
        AckUntil.NONE,
        None,
        None,
    )


def test_the_database_refuses_a_condition_on_an_anomaly_that_is_not_acknowledged(existing):
    anomaly = existing(OPEN)

    with pytest.raises(IntegrityError), transaction.atomic():
        Anomaly.objects.filter(pk=anomaly.pk).update(ack_until_kind=AckUntil.COUNTED, ack_since=END)


# --- returning by itself ---------------------------------------------------------------------


@pytest.fixture
def waiting(existing, actor):
    """The anomaly acknowledged until a condition (``kind``, and ``until`` for a date)."""

    def build(kind: str, until: dt.date | None = None) -> Anomaly:
        anomaly = existing(OPEN)
        anomaly_acknowledge_until(
            anomaly_id=anomaly.pk, actor=actor, kind=kind, until=until, today=TODAY
        )
        return anomaly

    return build


def _state(anomaly: Anomaly) -> tuple[str, str]:
    anomaly.refresh_from_db()
    return anomaly.status, anomaly.ack_until_kind


def test_next_receipt_then_still_detected_returns_it_to_open_saying_why(waiting):
    anomaly = waiting(AckUntil.RECEIPT)
    _receipt(anomaly, END + dt.timedelta(days=1))
    _detected_as_of(anomaly, LATER)

    report = anomalies_wake_acknowledged(today=TODAY)

    assert report.changed_ids == [anomaly.pk]
    assert _state(anomaly) == (OPEN, AckUntil.NONE)
    assert anomaly.ack_since is None
    assert activities(anomaly)[-1] == (
        None,
        ActivityAction.WAKE,
        ACK,
        OPEN,
        "acknowledged until the next receipt: received on 2024-01-26, "
        "still detected as of 2024-01-28",
    )
    assert anomalies_wake_acknowledged(today=TODAY).changed_ids == []  # idempotent


@pytest.mark.parametrize(
    ("receipt_day", "detected_on", "returns"),
    [
        (END, LATER, False),  # a receipt the person had already seen: not the next one
        (END + dt.timedelta(days=1), END, False),  # received, but not detected since
        (LATER, LATER, False),  # detected the day of the receipt, not after it
        (LATER, LATER + dt.timedelta(days=1), True),
    ],
)
def test_receipt_condition_needs_a_later_receipt_and_a_detection_after_it(
    waiting, receipt_day, detected_on, returns
):
    anomaly = waiting(AckUntil.RECEIPT)
    _receipt(anomaly, receipt_day)
    _detected_as_of(anomaly, detected_on)

    anomalies_wake_acknowledged(today=TODAY)

    assert _state(anomaly) == ((OPEN, AckUntil.NONE) if returns else (ACK, AckUntil.RECEIPT))


def test_a_receipt_of_the_sku_at_another_store_does_not_count(waiting):
    anomaly = waiting(AckUntil.RECEIPT)
    _receipt(anomaly, LATER, location=LocationFactory(code="S2"))
    _detected_as_of(anomaly, LATER + dt.timedelta(days=1))

    anomalies_wake_acknowledged(today=TODAY)

    assert _state(anomaly) == (ACK, AckUntil.RECEIPT)


@pytest.mark.parametrize(
    ("counted_on", "detected_on", "returns"),
    [
        (END, LATER, True),  # counted for the day it was acknowledged on, still found after
        (END - dt.timedelta(days=1), LATER, False),  # a count from before it was acknowledged
        (LATER, LATER, False),  # not detected after the count's day
    ],
)
def test_a_count_of_the_shelf_then_still_detected_returns_it(
    waiting, counted_on, detected_on, returns
):
    anomaly = waiting(AckUntil.COUNTED)
    _shelf_counted(anomaly, counted_on)
    _detected_as_of(anomaly, detected_on)

    anomalies_wake_acknowledged(today=TODAY)

    assert _state(anomaly) == ((OPEN, AckUntil.NONE) if returns else (ACK, AckUntil.COUNTED))
    if returns:
        assert activities(anomaly)[-1][-1] == (
            "acknowledged until counted: counted on 2024-01-25, still detected as of 2024-01-28"
        )


def test_a_count_requested_but_not_recorded_or_at_another_store_does_not_count(waiting):
    anomaly = waiting(AckUntil.COUNTED)
    CycleCount.objects.create(product=anomaly.product, location=anomaly.location, is_control=True)
    _shelf_counted(anomaly, LATER, location=LocationFactory(code="S2"))
    _detected_as_of(anomaly, LATER + dt.timedelta(days=1))

    anomalies_wake_acknowledged(today=TODAY)

    assert _state(anomaly) == (ACK, AckUntil.COUNTED)


def test_its_own_count_resolves_it_and_clears_the_condition(waiting, actor):
    anomaly = waiting(AckUntil.COUNTED)
    StockLevelFactory(product=anomaly.product, location=anomaly.location, date=END, on_hand=30)
    count = cycle_count_request(anomaly_id=anomaly.pk, actor=actor)

    cycle_count_record(count_id=count.pk, counted_quantity=0, actor=actor, counted_on=END)

    assert _state(anomaly) == (RESOLVED, AckUntil.NONE)


@pytest.mark.parametrize(
    ("today", "detected_on", "returns"),
    [
        (dt.date(2024, 2, 4), dt.date(2024, 2, 5), False),  # the day has not come
        (dt.date(2024, 2, 5), dt.date(2024, 2, 4), False),  # not detected on or after it
        (dt.date(2024, 2, 5), dt.date(2024, 2, 5), True),
    ],
)
def test_date_condition_returns_it_once_the_day_came_and_detection_still_finds_it(
    waiting, today, detected_on, returns
):
    anomaly = waiting(AckUntil.DATE, until=dt.date(2024, 2, 5))
    _detected_as_of(anomaly, detected_on)

    anomalies_wake_acknowledged(today=today)

    assert _state(anomaly) == ((OPEN, AckUntil.NONE) if returns else (ACK, AckUntil.DATE))


def test_a_detection_run_that_still_finds_it_after_the_receipt_returns_it(waiting, sku_at_store):
    product, location = sku_at_store
    anomaly = waiting(AckUntil.RECEIPT)
    _receipt(anomaly, END + dt.timedelta(days=1))
    findings = make_findings(
        {
            "anomaly_type": ["ghost_stock"],
            "product_id": [product.pk],
            "location_id": [location.pk],
            "start_date": [pd.Timestamp(dt.date(2024, 1, 20))],
            "end_date": [pd.Timestamp(LATER)],
            "severity": ["warning"],
            "score": [0.99],
            "expected_value": [4.0],
            "actual_value": [0.0],
            "value_at_risk": [100.0],
            "explanation": ["still no sales"],
            "details": [{}],
        }
    )

    with transaction.atomic():
        anomalies_persist(findings=findings, run=DetectionRunFactory(as_of=LATER))

    assert _state(anomaly) == (OPEN, AckUntil.NONE)
    assert activities(anomaly)[-1][1] == ActivityAction.WAKE


def test_the_daily_wake_task_returns_acknowledged_anomalies_too(waiting):
    anomaly = waiting(AckUntil.DATE, until=dt.date(2024, 2, 5))
    _detected_as_of(anomaly, dt.date(2024, 2, 6))

    result = wake_snoozed_task(today="2024-02-06")

    assert result == {"today": "2024-02-06", "reopened": [anomaly.pk]}


def test_acknowledged_again_with_another_condition_meanwhile_is_skipped(
    waiting, monkeypatch, actor
):
    anomaly = waiting(AckUntil.RECEIPT)
    _receipt(anomaly, LATER)
    _detected_as_of(anomaly, LATER + dt.timedelta(days=1))
    read = triage._lock_rows

    def changed_before_the_lock(ids):
        Anomaly.objects.filter(pk=anomaly.pk).update(ack_until_kind=AckUntil.COUNTED)
        return read(ids)

    monkeypatch.setattr(triage, "_lock_rows", changed_before_the_lock)

    report = anomalies_wake_acknowledged(today=TODAY)

    assert report.skipped == {anomaly.pk: "acknowledged with another condition meanwhile"}
    assert _state(anomaly) == (ACK, AckUntil.COUNTED)


def test_the_count_status_read_through_the_reverse_relation_is_the_recorded_one():
    assert COUNT_RECORDED_STATUS == CycleCountStatus.COUNTED


# --- the admin action and the API action -------------------------------------------------------

CHANGELIST = "/admin/anomalies/anomaly/"


@pytest.fixture
def staff_client(client, actor):
    from common.roles import STORE_STAFF
    from tests.conftest import grant_role

    grant_role(actor, STORE_STAFF, all_locations=True)
    client.force_login(actor)
    return client


def test_admin_action_asks_for_the_condition_first(staff_client, existing):
    anomaly = existing(OPEN)

    response = staff_client.post(
        CHANGELIST, {"action": "acknowledge_until", "_selected_action": [anomaly.pk]}
    )

    assert response.status_code == 200
    assert response.templates[0].name == "admin/anomalies/anomaly/ack_until.html"
    assert b"Until the next receipt" in response.content
    assert _state(anomaly) == (OPEN, AckUntil.NONE)


def test_admin_action_until_a_date_without_the_date_shows_the_error(staff_client, existing):
    anomaly = existing(OPEN)

    response = staff_client.post(
        CHANGELIST,
        {
            "action": "acknowledge_until",
            "_selected_action": [anomaly.pk],
            "post": "yes",
            "kind": "date",
        },
    )

    assert response.status_code == 200
    assert b"Give the date to acknowledge until." in response.content
    assert _state(anomaly) == (OPEN, AckUntil.NONE)


def test_admin_action_acknowledges_until_the_condition_and_reports_counts(staff_client, existing):
    anomaly = existing(OPEN)
    closed = AnomalyFactory(status=RESOLVED)

    response = staff_client.post(
        CHANGELIST,
        {
            "action": "acknowledge_until",
            "_selected_action": [anomaly.pk, closed.pk],
            "post": "yes",
            "kind": "receipt",
            "note": "delivery booked",
        },
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == [
        "1 anomaly acknowledged until the next receipt; 1 skipped (1 resolved)."
    ]
    assert _state(anomaly) == (ACK, AckUntil.RECEIPT)
    assert activities(anomaly)[-1][-1] == "until the next receipt; assigned to ops; delivery booked"


def test_api_acknowledge_until_a_date_and_the_fields_it_shows(api_client, existing):
    anomaly = existing(OPEN)
    day = timezone.localdate() + dt.timedelta(days=5)

    response = api_client.post(
        f"/api/v1/anomalies/{anomaly.pk}/acknowledge-until/",
        {"kind": "date", "until": day.isoformat()},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["ack_until_kind"], body["ack_until_date"], body["ack_since"]) == (
        ACK,
        "date",
        day.isoformat(),
        END.isoformat(),
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "date"}, 400),
        ({"kind": "none"}, 400),
        ({"kind": "counted", "until": "2030-01-01"}, 400),
        ({"kind": "counted", "expected_status": "snoozed"}, 409),
    ],
)
def test_api_acknowledge_until_refuses_a_bad_condition_or_a_stale_status(
    api_client, existing, body, code
):
    anomaly = existing(OPEN)

    response = api_client.post(
        f"/api/v1/anomalies/{anomaly.pk}/acknowledge-until/", body, format="json"
    )

    assert response.status_code == code, response.content
    assert _state(anomaly) == (OPEN, AckUntil.NONE)
