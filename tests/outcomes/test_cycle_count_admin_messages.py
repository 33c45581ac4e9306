"""What the cycle-count admin says after a save (words, no database ids), its count-date
default (the latest day with stock data, not today), and the services behind both."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from anomalies.models import ActivityAction, AnomalyActivity, AnomalyStatus, AnomalyType
from outcomes.models import CycleCount
from outcomes.services.cycle_counts import (
    CycleCountError,
    anomaly_count_record,
    control_counts_request,
    cycle_count_default_date,
    cycle_count_record,
    cycle_count_request,
    cycle_count_result_sentence,
)
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

LAST_DATA_DAY = dt.date(2024, 1, 31)


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def ghost():
    product = ProductFactory(sku="SKU-0042", unit_price=Decimal("55.93"))
    location = LocationFactory(code="STORE-01")
    StockLevelFactory(product=product, location=location, date=LAST_DATA_DAY, on_hand=33)
    return AnomalyFactory(product=product, location=location, end_date=LAST_DATA_DAY)


def count_url(count: CycleCount) -> str:
    return reverse("admin:outcomes_cyclecount_change", args=[count.pk])


def test_saving_a_count_says_what_it_did_in_words(admin_client, staff_user, ghost):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)

    response = admin_client.post(
        count_url(count),
        {"counted_quantity": "13", "counted_on": LAST_DATA_DAY.isoformat(), "notes": ""},
    )

    assert response.status_code == 302
    [message] = messages_of(response)
    assert message == (
        "Counted 13 units of SKU-0042 at STORE-01 on 2024-01-31 (book 33): book stock "
        "corrected to 13; the ghost-stock finding is resolved; £1,118.60 recovered."
    )
    assert "was changed successfully" not in message and "#" not in message


def test_the_count_date_is_pre_filled_with_the_last_day_with_stock_data(
    admin_client, staff_user, ghost
):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)

    form = admin_client.get(count_url(count)).context["adminform"].form

    assert timezone.localdate() > LAST_DATA_DAY
    assert form.initial["counted_on"] == LAST_DATA_DAY
    assert form["counted_on"].value() == LAST_DATA_DAY  # rendered in the admin's date format


def test_a_blank_count_date_means_the_last_day_with_stock_data(admin_client, staff_user, ghost):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)

    admin_client.post(count_url(count), {"counted_quantity": "33", "counted_on": "", "notes": ""})

    count.refresh_from_db()
    assert count.counted_on == LAST_DATA_DAY


def test_saving_a_counted_count_again_says_nothing_changed(admin_client, staff_user, ghost):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)
    cycle_count_record(count_id=count.pk, counted_quantity=33, actor=staff_user)

    response = admin_client.post(count_url(count), {})

    [message] = messages_of(response)
    assert message.startswith("Nothing was changed. Counted 33 units of SKU-0042 at STORE-01")
    assert "resolved as a false positive (the books were right)" in message


def test_save_and_continue_stays_on_the_count(admin_client, staff_user, ghost):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)

    response = admin_client.post(
        count_url(count), {"counted_quantity": "40", "counted_on": "", "_continue": "1"}
    )

    assert response["Location"] == count_url(count)


# --- the services ------------------------------------------------------------------------------


def test_default_date_is_the_latest_stock_day_not_after_today(ghost):
    StockLevelFactory(
        product=ghost.product, location=ghost.location, date=dt.date(2999, 1, 1), on_hand=1
    )

    assert (
        cycle_count_default_date(product_id=ghost.product_id, location_id=ghost.location_id)
        == LAST_DATA_DAY
    )


def test_default_date_is_today_without_stock_data():
    product, location = ProductFactory(), LocationFactory()

    assert cycle_count_default_date(
        product_id=product.pk, location_id=location.pk, today=dt.date(2024, 5, 1)
    ) == dt.date(2024, 5, 1)


@pytest.mark.parametrize(
    ("counted", "words"),
    [
        (33, "book stock unchanged; the ghost-stock finding is resolved as a false positive"),
        (
            40,
            "book stock corrected to 40; the ghost-stock finding is resolved, inconclusive "
            "(more on the shelf than on the books).",
        ),
        (32, "book stock corrected to 32; the ghost-stock finding is resolved; £55.93 recovered."),
    ],
)
def test_the_sentence_per_verdict(staff_user, ghost, counted, words):
    count = anomaly_count_record(anomaly_id=ghost.pk, counted_quantity=counted, actor=staff_user)

    sentence = cycle_count_result_sentence(count_id=count.pk)

    assert sentence.startswith(f"Counted {counted} units of SKU-0042 at STORE-01 on 2024-01-31")
    assert words in sentence


def test_the_sentence_of_a_finding_dismissed_before_the_count(staff_user, ghost):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)
    type(ghost).objects.filter(pk=ghost.pk).update(
        status=AnomalyStatus.DISMISSED, closed_at=timezone.now()
    )
    cycle_count_record(count_id=count.pk, counted_quantity=1, actor=staff_user)

    sentence = cycle_count_result_sentence(count_id=count.pk)

    assert sentence.endswith("the ghost-stock finding was already dismissed.")


def test_the_sentence_of_a_control_count(staff_user):
    product, location = ProductFactory(sku="P9"), LocationFactory(code="S9")
    StockLevelFactory(product=product, location=location, date=LAST_DATA_DAY, on_hand=5)
    [control] = control_counts_request(share=1.0, seed=1, today=LAST_DATA_DAY)
    cycle_count_record(count_id=control.pk, counted_quantity=1, actor=staff_user)

    assert cycle_count_result_sentence(count_id=control.pk) == (
        "Counted 1 unit of P9 at S9 on 2024-01-31 (book 5): book stock corrected to 1; "
        "a control count (no finding): it feeds the recall estimate."
    )


def test_the_sentence_of_an_open_count(staff_user, ghost):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)

    assert cycle_count_result_sentence(count_id=count.pk) == (
        "The cycle count of SKU-0042 at STORE-01 is requested."
    )


def test_requesting_a_count_logs_it_on_the_anomaly_once(staff_user, ghost):
    cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)
    cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)  # already open: no second entry

    [entry] = AnomalyActivity.objects.filter(anomaly=ghost)
    assert (entry.action, entry.actor, entry.from_status, entry.to_status) == (
        ActivityAction.COUNT_REQUESTED,
        staff_user,
        "open",
        "open",
    )
    assert entry.note == "book stock 33 units when requested"


def test_anomaly_count_record_rolls_back_the_request_when_the_count_is_refused(staff_user, ghost):
    with pytest.raises(CycleCountError, match="cannot be negative"):
        anomaly_count_record(anomaly_id=ghost.pk, counted_quantity=-1, actor=staff_user)

    assert not CycleCount.objects.exists()
    assert not AnomalyActivity.objects.exists()


def test_anomaly_count_record_refuses_a_finding_that_is_not_countable(staff_user):
    spike = AnomalyFactory(anomaly_type=AnomalyType.DEMAND_SPIKE)

    with pytest.raises(CycleCountError, match="cannot be counted"):
        anomaly_count_record(anomaly_id=spike.pk, counted_quantity=1, actor=staff_user)


def test_the_count_page_names_the_sku_and_store_not_database_ids(admin_client, staff_user, ghost):
    count = cycle_count_request(anomaly_id=ghost.pk, actor=staff_user)

    page = admin_client.get(count_url(count)).content.decode()

    assert "Cycle count of SKU-0042 at STORE-01 (requested)" in page
    assert f"count #{count.pk}" not in page
    assert f"{ghost.product_id}@{ghost.location_id}" not in page
