"""Cycle counts: priority, requesting (idempotent, eligibility), recording (adjustment →
resolved anomaly → outcome), control counts, cancelling and the store's CSV sheet."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from anomalies.models import AnomalyActivity, AnomalyStatus, AnomalyType
from inventory.models import StockAdjustment, StockLevel
from outcomes.models import CycleCount, CycleCountStatus, Outcome
from outcomes.services import (
    CycleCountConflict,
    CycleCountError,
    control_counts_request,
    cycle_count_priority,
    cycle_count_record,
    cycle_count_request,
    cycle_counts_cancel,
    cycle_counts_export_csv,
    cycle_counts_request,
)
from tests.factories import (
    AnomalyFactory,
    LocationFactory,
    ProductFactory,
    StockLevelFactory,
)

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 1, 25)
GHOST_DETAILS = {"probability": 0.9, "expected_units_per_day": 2.0, "unit_price": 2.5}


def ghost(book: int = 38, **kwargs):
    """An open ghost-stock anomaly (price 2.50) whose SKU/location has ``book`` on the books."""
    anomaly = AnomalyFactory(details=dict(GHOST_DETAILS), **kwargs)
    StockLevelFactory(product=anomaly.product, location=anomaly.location, date=DAY, on_hand=book)
    return anomaly


def requested(anomaly, user) -> CycleCount:
    return cycle_count_request(anomaly_id=anomaly.pk, actor=user, today=DAY)


# --- priority ----------------------------------------------------------------------------------


def test_priority_of_ghost_stock_is_probability_times_daily_lost_sales():
    # 0.9 x (2 units/day x 2.50) = 4.50 per day.
    assert cycle_count_priority(
        details=GHOST_DETAILS,
        value_at_risk=Decimal("95"),
        start_date=DAY,
        end_date=DAY,
        unit_price=Decimal("9.99"),
    ) == pytest.approx(4.5)


def test_priority_falls_back_to_shelf_price_and_probability_one():
    # No unit price in the details: the product's 3.00; probability out of range: 1.0.
    assert cycle_count_priority(
        details={"expected_units_per_day": 0.5, "probability": 7},
        value_at_risk=0,
        start_date=DAY,
        end_date=DAY,
        unit_price=Decimal("3.00"),
    ) == pytest.approx(1.5)


def test_priority_without_a_demand_rate_spreads_value_at_risk_over_the_days():
    # Inventory discrepancy: one day, 30.00 unaccounted for.
    assert cycle_count_priority(
        details={"unexplained_units": -12},
        value_at_risk=Decimal("30"),
        start_date=DAY,
        end_date=DAY,
        unit_price=Decimal("2.5"),
    ) == pytest.approx(30.0)
    # Six days, 95.00: 15.8333 per day.
    assert cycle_count_priority(
        details={},
        value_at_risk=Decimal("95"),
        start_date=DAY - dt.timedelta(days=5),
        end_date=DAY,
        unit_price=None,
    ) == pytest.approx(95 / 6, abs=1e-4)


# --- requesting --------------------------------------------------------------------------------


def test_request_records_book_and_priority_and_is_idempotent(staff_user):
    anomaly = ghost(book=38)

    first = requested(anomaly, staff_user)
    again = requested(anomaly, staff_user)

    assert again.pk == first.pk
    count = CycleCount.objects.get()
    assert (count.anomaly, count.product, count.location) == (
        anomaly,
        anomaly.product,
        anomaly.location,
    )
    assert (count.status, count.book_on_hand, count.is_control) == ("requested", 38, False)
    assert count.priority == pytest.approx(4.5)
    assert count.requested_by == staff_user


def test_bulk_request_reports_created_existing_and_skipped(staff_user):
    first = ghost()
    discrepancy = AnomalyFactory(
        anomaly_type=AnomalyType.INVENTORY_DISCREPANCY, value_at_risk=Decimal("30")
    )
    already = ghost()
    requested(already, staff_user)
    price = AnomalyFactory(anomaly_type=AnomalyType.PRICE_ANOMALY)
    store_level = AnomalyFactory(anomaly_type=AnomalyType.INVENTORY_DISCREPANCY, product=None)
    resolved = ghost(status=AnomalyStatus.RESOLVED)
    same_shelf = AnomalyFactory(
        anomaly_type=AnomalyType.INVENTORY_DISCREPANCY,
        product=first.product,
        location=first.location,
    )

    report = cycle_counts_request(
        anomaly_ids=[
            first.pk,
            discrepancy.pk,
            already.pk,
            price.pk,
            store_level.pk,
            resolved.pk,
            same_shelf.pk,
            999_999,
        ],
        actor=staff_user,
    )

    assert [c.anomaly_id for c in report.created] == [first.pk, discrepancy.pk]
    assert [c.anomaly_id for c in report.existing] == [already.pk]
    assert report.skipped == {
        price.pk: "not a ghost-stock or inventory-discrepancy finding",
        store_level.pk: "a store-level finding (no SKU to count)",
        resolved.pk: "resolved",
        same_shelf.pk: "SKU/location already has an open count",
        999_999: "not found",
    }
    assert report.summary() == (
        "2 cycle counts requested; 1 already requested; 5 skipped (1 not a ghost-stock or "
        "inventory-discrepancy finding, 1 a store-level finding (no SKU to count), "
        "1 resolved, 1 SKU/location already has an open count, 1 not found)."
    )
    assert CycleCount.objects.count() == 3


def test_single_request_says_why_it_is_refused(staff_user):
    price = AnomalyFactory(anomaly_type=AnomalyType.PRICE_ANOMALY)
    dismissed = ghost(status=AnomalyStatus.DISMISSED)

    with pytest.raises(CycleCountError, match="cannot be counted: not a ghost-stock"):
        requested(price, staff_user)
    with pytest.raises(CycleCountError, match="is dismissed; no count is needed"):
        requested(dismissed, staff_user)
    with pytest.raises(CycleCountError, match="Anomaly 999999 not found"):
        cycle_count_request(anomaly_id=999_999, actor=staff_user)
    assert not CycleCount.objects.exists()


def test_count_list_is_ordered_by_priority(staff_user):
    low = AnomalyFactory(details={"probability": 0.5, "expected_units_per_day": 1.0})  # 1.25
    high = AnomalyFactory(details={"probability": 1.0, "expected_units_per_day": 4.0})  # 10.0
    mid = AnomalyFactory(details={"probability": 0.8, "expected_units_per_day": 2.0})  # 4.0
    cycle_counts_request(anomaly_ids=[low.pk, high.pk, mid.pk], actor=staff_user)

    ordered = [(c.anomaly_id, c.priority) for c in CycleCount.objects.all()]

    assert ordered == [(high.pk, 10.0), (mid.pk, 4.0), (low.pk, 1.25)]


# --- recording ---------------------------------------------------------------------------------


def test_count_below_book_confirms_ghost_stock(staff_user):
    anomaly = ghost(book=38)
    count = requested(anomaly, staff_user)

    recorded = cycle_count_record(
        count_id=count.pk, counted_quantity=0, counted_on=DAY, actor=staff_user
    )

    assert (recorded.status, recorded.counted_quantity, recorded.counted_on) == (
        "counted",
        0,
        DAY,
    )
    assert recorded.counted_by == staff_user and recorded.counted_at is not None
    adjustment = StockAdjustment.objects.get()
    assert (adjustment.book_before, adjustment.counted, adjustment.delta) == (38, 0, -38)
    assert (adjustment.reason, adjustment.cycle_count, adjustment.date) == (
        "cycle_count",
        count,
        DAY,
    )
    assert StockLevel.objects.get(product=anomaly.product, date=DAY).on_hand == 0
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.RESOLVED
    outcome = Outcome.objects.get(anomaly=anomaly)
    assert (outcome.verdict, outcome.action_taken) == ("true_positive", "cycle_count")
    assert outcome.recovered_value == Decimal("95.00")  # 38 units x 2.50
    assert outcome.recorded_by == staff_user
    assert outcome.notes == (
        f"Cycle count #{count.pk}: counted 0 of 38 on the books: 38 phantom units written off."
    )
    assert list(
        AnomalyActivity.objects.filter(anomaly=anomaly).order_by("id").values_list("action")
    ) == [("count_requested",), ("resolve",), ("outcome",)]


def test_count_equal_to_book_is_a_false_positive(staff_user):
    anomaly = ghost(book=12)
    count = requested(anomaly, staff_user)

    cycle_count_record(count_id=count.pk, counted_quantity=12, counted_on=DAY, actor=staff_user)

    outcome = Outcome.objects.get(anomaly=anomaly)
    assert (outcome.verdict, outcome.recovered_value) == ("false_positive", Decimal("0.00"))
    assert StockAdjustment.objects.get().delta == 0
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.RESOLVED


def test_count_above_book_is_inconclusive(staff_user):
    anomaly = ghost(book=5)
    count = requested(anomaly, staff_user)

    cycle_count_record(count_id=count.pk, counted_quantity=9, counted_on=DAY, actor=staff_user)

    outcome = Outcome.objects.get(anomaly=anomaly)
    assert (outcome.verdict, outcome.recovered_value) == ("inconclusive", Decimal("0.00"))
    assert "more than the 5 on the books" in outcome.notes
    assert StockAdjustment.objects.get().delta == 4
    assert StockLevel.objects.get(product=anomaly.product, date=DAY).on_hand == 9


def test_count_of_an_anomaly_closed_meanwhile_keeps_its_state(staff_user):
    anomaly = ghost(book=6)
    count = requested(anomaly, staff_user)
    anomaly.status = AnomalyStatus.DISMISSED
    anomaly.save()

    cycle_count_record(count_id=count.pk, counted_quantity=1, counted_on=DAY, actor=staff_user)

    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.DISMISSED
    assert Outcome.objects.get(anomaly=anomaly).verdict == "true_positive"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"counted_quantity": -1}, CycleCountError, "cannot be negative"),
        ({"counted_quantity": 2.5}, CycleCountError, "is not a whole number"),
        ({"counted_quantity": True}, CycleCountError, "is not a whole number"),
        ({"counted_quantity": 1, "counted_on": dt.date(2999, 1, 1)}, CycleCountError, "future"),
    ],
)
def test_bad_input_writes_nothing(staff_user, kwargs, error, message):
    anomaly = ghost(book=38)
    count = requested(anomaly, staff_user)

    with pytest.raises(error, match=message):
        cycle_count_record(count_id=count.pk, actor=staff_user, **kwargs)

    count.refresh_from_db()
    anomaly.refresh_from_db()
    assert count.status == "requested" and count.counted_quantity is None
    assert anomaly.status == AnomalyStatus.OPEN
    assert not StockAdjustment.objects.exists()
    assert not Outcome.objects.exists()
    assert StockLevel.objects.get(product=anomaly.product).on_hand == 38


def test_a_count_is_recorded_once(staff_user):
    anomaly = ghost(book=38)
    count = requested(anomaly, staff_user)
    cycle_count_record(count_id=count.pk, counted_quantity=0, counted_on=DAY, actor=staff_user)

    with pytest.raises(CycleCountConflict, match=f"Cycle count {count.pk} is counted"):
        cycle_count_record(count_id=count.pk, counted_quantity=3, counted_on=DAY, actor=staff_user)

    assert StockAdjustment.objects.count() == 1
    with pytest.raises(CycleCountError, match="Cycle count 999999 not found"):
        cycle_count_record(count_id=999_999, counted_quantity=3, actor=staff_user)


def test_no_book_stock_known_is_refused(staff_user):
    anomaly = AnomalyFactory(details=dict(GHOST_DETAILS))  # no stock level at all
    count = requested(anomaly, staff_user)
    assert count.book_on_hand is None

    with pytest.raises(CycleCountError, match="No book stock is known"):
        cycle_count_record(count_id=count.pk, counted_quantity=0, counted_on=DAY, actor=staff_user)

    count.refresh_from_db()
    assert count.status == "requested"
    assert not Outcome.objects.exists()


# --- control counts ----------------------------------------------------------------------------


@pytest.fixture
def estate():
    """Ten stocked SKUs at one store, plus SKU/locations that must never be drawn."""
    store = LocationFactory(code="S1")
    stocked = [ProductFactory() for _ in range(10)]
    for product in stocked:
        StockLevelFactory(product=product, location=store, date=DAY, on_hand=5)
    empty = ProductFactory(sku="EMPTY")
    StockLevelFactory(product=empty, location=store, date=DAY, on_hand=0)
    stale = ProductFactory(sku="STALE")  # last stock row 40 days ago
    StockLevelFactory(product=stale, location=store, date=DAY - dt.timedelta(days=40), on_hand=9)
    flagged = ProductFactory(sku="FLAGGED")
    StockLevelFactory(product=flagged, location=store, date=DAY, on_hand=7)
    AnomalyFactory(product=flagged, location=store)
    # Closed findings do not protect a SKU from being drawn.
    AnomalyFactory(product=stocked[0], location=store, status=AnomalyStatus.RESOLVED)
    return store, stocked


def test_control_counts_draw_a_share_of_stocked_skus_without_findings(estate, staff_user):
    store, stocked = estate

    counts = control_counts_request(share=0.25, seed=3, today=DAY, actor=staff_user)

    # ceil(0.25 x 10 eligible) = 3.
    assert len(counts) == 3
    assert {c.product_id for c in counts} <= {p.pk for p in stocked}
    for count in counts:
        assert (count.is_control, count.anomaly_id, count.priority) == (True, None, 0.0)
        assert (count.book_on_hand, count.population, count.location_id) == (5, 10, store.pk)
        assert count.requested_by == staff_user


def test_control_counts_are_reproducible_and_skip_open_counts(estate):
    first = {c.product_id for c in control_counts_request(share=0.3, seed=11, today=DAY)}
    CycleCount.objects.update(status=CycleCountStatus.CANCELLED)
    again = {c.product_id for c in control_counts_request(share=0.3, seed=11, today=DAY)}
    # The open ones are no longer eligible: 10 - 3 = 7 left, ceil(0.3 x 7) = 3.
    third = control_counts_request(share=0.3, seed=11, today=DAY)

    assert first == again
    assert len(third) == 3 and third[0].population == 7
    assert not first & {c.product_id for c in third}


def test_control_count_share_is_validated():
    with pytest.raises(CycleCountError, match="above 0 and at most 1"):
        control_counts_request(share=0)
    with pytest.raises(CycleCountError, match="above 0 and at most 1"):
        control_counts_request(share=1.5)


def test_recording_a_control_count_adjusts_stock_without_an_outcome(estate, staff_user):
    [count] = control_counts_request(share=0.01, seed=1, today=DAY)

    cycle_count_record(count_id=count.pk, counted_quantity=2, counted_on=DAY, actor=staff_user)

    adjustment = StockAdjustment.objects.get()
    assert (adjustment.reason, adjustment.book_before, adjustment.delta) == ("control_count", 5, -3)
    assert not Outcome.objects.exists()


def test_request_control_counts_command(estate):
    out = io.StringIO()

    call_command(
        "request_control_counts",
        "--share",
        "0.2",
        "--seed",
        "5",
        "--today",
        "2024-01-25",
        stdout=out,
    )

    assert out.getvalue() == "2 control count(s) requested out of 10 eligible SKU/locations.\n"
    assert CycleCount.objects.filter(is_control=True).count() == 2


# --- cancel and export -------------------------------------------------------------------------


def test_cancel_only_touches_open_counts(staff_user):
    open_count = requested(ghost(), staff_user)
    done = requested(ghost(book=3), staff_user)
    cycle_count_record(count_id=done.pk, counted_quantity=3, counted_on=DAY, actor=staff_user)

    cancelled = cycle_counts_cancel(count_ids=[open_count.pk, done.pk], actor=staff_user)

    assert cancelled == 1
    open_count.refresh_from_db()
    assert (open_count.status, open_count.cancelled_by) == ("cancelled", staff_user)
    assert CycleCount.objects.get(pk=done.pk).status == "counted"


def test_csv_sheet_for_the_store_by_priority(staff_user):
    store = LocationFactory(code="S7")
    a = ghost(book=38, location=store, product=ProductFactory(sku="A1", name="Oat milk 1l"))  # 4.50
    b = AnomalyFactory(
        location=store,
        product=ProductFactory(sku="B2", name="Rice, 2kg"),
        details={"probability": 1.0, "expected_units_per_day": 4.0},
    )  # 10.00, no book stock known
    cycle_counts_request(anomaly_ids=[a.pk, b.pk], actor=staff_user, today=DAY)
    out = io.StringIO()

    rows = cycle_counts_export_csv(queryset=CycleCount.objects.all(), out=out)

    assert rows == 2
    assert out.getvalue().splitlines() == [
        "sku,name,location,book_on_hand,priority",
        'B2,"Rice, 2kg",S7,,10.00',
        "A1,Oat milk 1l,S7,38,4.50",
    ]
