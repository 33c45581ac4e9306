"""StockAdjustment: the explicit book-stock correction a recorded cycle count writes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from inventory.models import StockAdjustment, StockLevel
from outcomes.services import cycle_count_record, cycle_count_request
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

REQUESTED_ON = dt.date(2024, 1, 25)


@pytest.fixture
def count(staff_user):
    """An open count of a ghost-stock finding: 38 on the books when requested."""
    anomaly = AnomalyFactory(product=ProductFactory(sku="85123A"), location=LocationFactory())
    StockLevelFactory(
        product=anomaly.product, location=anomaly.location, date=REQUESTED_ON, on_hand=38
    )
    return cycle_count_request(anomaly_id=anomaly.pk, actor=staff_user, today=REQUESTED_ON)


def test_book_before_is_the_book_on_the_count_date_not_at_request(count, staff_user):
    # Two days of sales later the books say 35; the count is compared with that.
    later = REQUESTED_ON + dt.timedelta(days=2)
    StockLevelFactory(product=count.product, location=count.location, date=later, on_hand=35)
    counted_on = later + dt.timedelta(days=1)

    cycle_count_record(
        count_id=count.pk, counted_quantity=4, counted_on=counted_on, actor=staff_user
    )

    adjustment = StockAdjustment.objects.get()
    assert (adjustment.date, adjustment.book_before, adjustment.counted, adjustment.delta) == (
        counted_on,
        35,
        4,
        -31,
    )
    assert adjustment.created_by == staff_user
    # A new book-stock row for the count date; the history before it is untouched.
    levels = StockLevel.objects.filter(product=count.product).order_by("date")
    assert [(level.date, level.on_hand) for level in levels] == [
        (REQUESTED_ON, 38),
        (later, 35),
        (counted_on, 4),
    ]


def test_the_count_date_row_is_updated_in_place(count, staff_user):
    cycle_count_record(
        count_id=count.pk, counted_quantity=0, counted_on=REQUESTED_ON, actor=staff_user
    )

    level = StockLevel.objects.get(product=count.product)
    assert (level.date, level.on_hand) == (REQUESTED_ON, 0)
    assert str(StockAdjustment.objects.get()) == (
        f"{count.product_id}@{count.location_id} {REQUESTED_ON}: -38"
    )


def test_delta_must_be_counted_minus_book():
    product, location = ProductFactory(), LocationFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        StockAdjustment.objects.create(
            product=product,
            location=location,
            date=REQUESTED_ON,
            book_before=10,
            counted=4,
            delta=-5,
            reason="cycle_count",
        )


def test_adjustment_admin_lists_read_only(client, count, staff_user):
    cycle_count_record(
        count_id=count.pk, counted_quantity=0, counted_on=REQUESTED_ON, actor=staff_user
    )
    client.force_login(staff_user)
    url = reverse("admin:inventory_stockadjustment_changelist")

    response = client.get(url, {"q": "85123A"})

    assert response.status_code == 200
    assert [a.delta for a in response.context["cl"].result_list] == [-38]
    assert client.get(reverse("admin:inventory_stockadjustment_add")).status_code == 403
