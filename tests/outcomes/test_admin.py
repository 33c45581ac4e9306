"""Admin of the outcomes loop: count list and CSV, recording a count, the anomaly list's
"Request cycle counts" action, reported misses and threshold proposals."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from anomalies.models import AnomalyStatus, AnomalyType, DetectorConfig
from outcomes.models import CycleCount, MissedAnomaly, Outcome, ProposalStatus, ThresholdProposal
from outcomes.services import cycle_count_request, cycle_counts_request
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

COUNTS = "admin:outcomes_cyclecount_changelist"
DAY = dt.date(2024, 1, 25)


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def ghost(location, sku: str, rate: float, book: int = 10):
    anomaly = AnomalyFactory(
        location=location,
        product=ProductFactory(sku=sku, name=f"Item {sku}"),
        details={"expected_units_per_day": rate},
    )
    StockLevelFactory(product=anomaly.product, location=location, date=DAY, on_hand=book)
    return anomaly


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def two_stores(staff_user):
    s1, s2 = LocationFactory(code="S1"), LocationFactory(code="S2")
    anomalies = [ghost(s1, "A1", 1.0), ghost(s1, "B2", 4.0, book=38), ghost(s2, "C3", 2.0)]
    cycle_counts_request(anomaly_ids=[a.pk for a in anomalies], actor=staff_user, today=DAY)
    return s1, s2


def test_count_list_per_store_by_priority(admin_client, two_stores, django_assert_max_num_queries):
    s1, _s2 = two_stores

    response = admin_client.get(reverse(COUNTS), {"location": s1.pk})

    assert response.status_code == 200
    assert [c.product.sku for c in response.context["cl"].result_list] == ["B2", "A1"]
    # Session, user, location filter choices, count(s), the page with its joins: no query
    # per row.
    with django_assert_max_num_queries(8):
        admin_client.get(reverse(COUNTS))


def test_csv_export_for_the_store(admin_client, two_stores):
    s1, _s2 = two_stores
    ids = CycleCount.objects.filter(location=s1).values_list("pk", flat=True)

    response = admin_client.post(
        f"{reverse(COUNTS)}?location={s1.pk}",
        {"action": "export_csv", "_selected_action": list(ids)},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="cycle-counts-S1-' in response["Content-Disposition"]
    assert response.content.decode().splitlines() == [
        "sku,name,location,book_on_hand,priority",
        "B2,Item B2,S1,38,10.00",
        "A1,Item A1,S1,10,2.50",
    ]


def test_record_a_count_in_the_change_form(admin_client, staff_user):
    anomaly = ghost(LocationFactory(), "85123A", 2.0, book=38)
    count = cycle_count_request(anomaly_id=anomaly.pk, actor=staff_user, today=DAY)
    url = reverse("admin:outcomes_cyclecount_change", args=[count.pk])

    refused = admin_client.post(url, {"counted_quantity": "-3", "counted_on": "", "notes": ""})
    saved = admin_client.post(
        url, {"counted_quantity": "0", "counted_on": str(DAY), "notes": "shelf empty"}
    )

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "counted_quantity": ["A count cannot be negative."]
    }
    assert saved.status_code == 302
    count.refresh_from_db()
    assert (count.status, count.counted_quantity, count.counted_by) == ("counted", 0, staff_user)
    assert Outcome.objects.get(anomaly=anomaly).verdict == "true_positive"
    # Once counted, nothing on the form can change any more.
    page = admin_client.get(url)
    assert "counted_quantity" not in page.context["adminform"].form.fields


def test_record_conflict_is_shown_not_saved(admin_client, staff_user):
    anomaly = ghost(LocationFactory(), "85123A", 2.0)
    count = cycle_count_request(anomaly_id=anomaly.pk, actor=staff_user, today=DAY)
    url = reverse("admin:outcomes_cyclecount_change", args=[count.pk])
    page = admin_client.get(url)  # the form is loaded ...
    CycleCount.objects.filter(pk=count.pk).update(status="cancelled")  # ... then cancelled

    response = admin_client.post(url, {"counted_quantity": "3", "counted_on": "", "notes": ""})

    assert page.status_code == 200
    assert response.status_code == 302
    assert messages_of(response) == [f"Cycle count {count.pk} is cancelled; it cannot be recorded."]
    assert not Outcome.objects.exists()


def test_cancel_action_reports_counts(admin_client, two_stores):
    ids = list(CycleCount.objects.values_list("pk", flat=True))
    CycleCount.objects.filter(pk=ids[0]).update(status="cancelled")

    response = admin_client.post(
        reverse(COUNTS), {"action": "cancel", "_selected_action": ids}, follow=True
    )

    assert messages_of(response) == ["2 counts cancelled; 1 skipped (not open)."]
    assert CycleCount.objects.filter(status="cancelled").count() == 3


def test_counts_cannot_be_added_or_deleted_here(admin_client):
    assert admin_client.get(reverse("admin:outcomes_cyclecount_add")).status_code == 403


# --- the anomaly list's bulk action ------------------------------------------------------------


def test_request_cycle_counts_action_on_the_anomaly_list(admin_client):
    store = LocationFactory()
    eligible = ghost(store, "A1", 1.0)
    discrepancy = AnomalyFactory(anomaly_type=AnomalyType.INVENTORY_DISCREPANCY)
    price = AnomalyFactory(anomaly_type=AnomalyType.PRICE_ANOMALY)
    closed = AnomalyFactory(status=AnomalyStatus.DISMISSED)

    response = admin_client.post(
        reverse("admin:anomalies_anomaly_changelist"),
        {
            "action": "request_cycle_counts",
            "_selected_action": [eligible.pk, discrepancy.pk, price.pk, closed.pk],
        },
        follow=True,
    )

    assert messages_of(response) == [
        "2 cycle counts requested; 2 skipped (1 not a ghost-stock or inventory-discrepancy "
        "finding, 1 dismissed)."
    ]
    assert set(CycleCount.objects.values_list("anomaly_id", flat=True)) == {
        eligible.pk,
        discrepancy.pk,
    }


# --- missed anomalies --------------------------------------------------------------------------


def test_report_a_miss_in_the_admin(admin_client, staff_user):
    store = LocationFactory()

    response = admin_client.post(
        reverse("admin:outcomes_missedanomaly_add"),
        {
            "anomaly_type": "ghost_stock",
            "product": ProductFactory().pk,
            "location": store.pk,
            "start_date": "2024-01-10",
            "end_date": "",
            "notes": "found on a shelf walk",
        },
    )

    assert response.status_code == 302
    missed = MissedAnomaly.objects.get()
    assert (missed.reported_by, missed.location, missed.notes) == (
        staff_user,
        store,
        "found on a shelf walk",
    )


# --- threshold proposals -----------------------------------------------------------------------


def test_compute_and_apply_a_proposal(admin_client, staff_user):
    verdicts = [True, True, True, True, False, True, False, False, True, False]
    for score, true in zip(range(10, 0, -1), verdicts, strict=True):
        AnomalyFactory(
            score=float(score),
            status=AnomalyStatus.RESOLVED if true else AnomalyStatus.DISMISSED,
            dismiss_reason="" if true else "false_positive",
        )
    changelist = reverse("admin:outcomes_thresholdproposal_changelist")

    page = admin_client.get(changelist)
    computed = admin_client.post(reverse("admin:outcomes_thresholdproposal_compute"), follow=True)
    proposal = ThresholdProposal.objects.get(detector="ghost_stock")
    applied = admin_client.post(
        changelist,
        {"action": "apply", "_selected_action": [proposal.pk]},
        follow=True,
    )

    assert "Compute proposals from outcomes" in page.content.decode()
    assert messages_of(computed) == ["6 detectors evaluated; 1 change(s) proposed."]
    assert messages_of(applied) == ["1 proposal applied."]
    proposal.refresh_from_db()
    assert (proposal.status, proposal.applied_by) == (ProposalStatus.APPLIED, staff_user)
    assert DetectorConfig.objects.get(detector="ghost_stock").params == {
        "min_p": pytest.approx(1e-5)
    }
