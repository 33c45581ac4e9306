"""Recording outcomes: the service, the API and the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from anomalies.models import AnomalyActivity, AnomalyStatus
from outcomes.models import Outcome
from outcomes.services import OutcomeError, outcome_record
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

OUTCOMES = "/api/v1/outcomes/"


# --- service -----------------------------------------------------------------------------------


def test_outcome_record_creates_the_outcome_and_logs_it(staff_user):
    anomaly = AnomalyFactory(status=AnomalyStatus.RESOLVED)

    outcome = outcome_record(
        anomaly_id=anomaly.pk,
        verdict="true_positive",
        action_taken="cycle_count",
        recovered_value="38.50",
        notes="shelf was empty",
        actor=staff_user,
    )

    stored = Outcome.objects.get()
    assert stored.pk == outcome.pk
    assert (stored.anomaly, stored.verdict, stored.action_taken) == (
        anomaly,
        "true_positive",
        "cycle_count",
    )
    assert stored.recovered_value == Decimal("38.50")
    assert stored.recorded_by == staff_user
    activity = AnomalyActivity.objects.get()
    assert (activity.action, activity.from_status, activity.to_status) == (
        "outcome",
        "resolved",
        "resolved",
    )
    assert activity.note == (
        "verdict: true_positive; action: cycle_count; recovered: 38.50; shelf was empty"
    )


def test_recording_again_replaces_the_one_outcome(staff_user):
    anomaly = AnomalyFactory()
    bob = UserFactory(username="bob")
    outcome_record(anomaly_id=anomaly.pk, verdict="inconclusive", actor=staff_user)

    outcome_record(
        anomaly_id=anomaly.pk, verdict="false_positive", notes="promo not loaded", actor=bob
    )

    stored = Outcome.objects.get()
    assert (stored.verdict, stored.action_taken, stored.notes, stored.recorded_by) == (
        "false_positive",
        "none",
        "promo not loaded",
        bob,
    )
    assert stored.recovered_value == Decimal("0")
    assert AnomalyActivity.objects.filter(action="outcome").count() == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verdict": "maybe"}, "Unknown verdict 'maybe'"),
        ({"verdict": "expected", "action_taken": "pray"}, "Unknown action 'pray'"),
        ({"verdict": "expected", "recovered_value": "-1"}, "at least 0"),
        ({"verdict": "expected", "recovered_value": "lots"}, "is not a number"),
    ],
)
def test_outcome_record_validates(staff_user, kwargs, message):
    anomaly = AnomalyFactory()

    with pytest.raises(OutcomeError, match=message):
        outcome_record(anomaly_id=anomaly.pk, actor=staff_user, **kwargs)

    assert not Outcome.objects.exists()
    assert not AnomalyActivity.objects.exists()


def test_outcome_for_missing_anomaly(staff_user):
    with pytest.raises(OutcomeError, match="Anomaly 999999 not found"):
        outcome_record(anomaly_id=999_999, verdict="expected", actor=staff_user)


# --- API ---------------------------------------------------------------------------------------


def test_post_records_an_outcome_201_then_replaces_it_200(api_client, staff_user):
    anomaly = AnomalyFactory(
        product=ProductFactory(sku="85123A"), location=LocationFactory(code="GB")
    )

    created = api_client.post(
        OUTCOMES,
        {"anomaly": anomaly.pk, "verdict": "true_positive", "recovered_value": "12.30"},
        format="json",
    )
    replaced = api_client.post(
        OUTCOMES,
        {"anomaly": anomaly.pk, "verdict": "false_positive", "notes": "miscount"},
        format="json",
    )

    assert created.status_code == 201
    body = created.json()
    assert body["verdict"] == "true_positive"
    assert body["action_taken"] == "none"
    assert body["recovered_value"] == "12.30"
    assert (body["sku"], body["location_code"], body["anomaly_type"]) == (
        "85123A",
        "GB",
        "ghost_stock",
    )
    assert body["recorded_by_username"] == "ops"
    assert replaced.status_code == 200
    assert replaced.json()["id"] == body["id"]
    stored = Outcome.objects.get()
    assert (stored.verdict, stored.notes, stored.recovered_value) == (
        "false_positive",
        "miscount",
        Decimal("0.00"),
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"anomaly": None, "verdict": "true_positive"}, "anomaly"),
        ({"anomaly": 999_999, "verdict": "true_positive"}, "anomaly"),
        ({"verdict": "sure"}, "verdict"),
        ({"verdict": "expected", "recovered_value": "-5"}, "recovered_value"),
        ({"verdict": "expected", "action_taken": "shrug"}, "action_taken"),
    ],
)
def test_post_validates(api_client, body, field):
    anomaly = AnomalyFactory()
    body = {"anomaly": anomaly.pk, **body}

    response = api_client.post(OUTCOMES, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Outcome.objects.exists()


def test_outcomes_cannot_be_edited_through_put(api_client, staff_user):
    anomaly = AnomalyFactory()
    outcome = outcome_record(anomaly_id=anomaly.pk, verdict="expected", actor=staff_user)

    response = api_client.put(f"{OUTCOMES}{outcome.pk}/", {"verdict": "true_positive"})

    assert response.status_code == 405


def test_outcome_list_filters_and_query_count(api_client, staff_user, django_assert_num_queries):
    gb = LocationFactory(code="GB")
    fp = outcome_record(
        anomaly_id=AnomalyFactory(location=gb).pk, verdict="false_positive", actor=staff_user
    )
    tp = outcome_record(
        anomaly_id=AnomalyFactory().pk,
        verdict="true_positive",
        action_taken="cycle_count",
        notes="found 12 units in the back",
        actor=staff_user,
    )

    def ids(params):
        response = api_client.get(OUTCOMES, params)
        assert response.status_code == 200
        return {row["id"] for row in response.json()["results"]}

    assert ids({}) == {fp.pk, tp.pk}
    assert ids({"verdict": "false_positive"}) == {fp.pk}
    assert ids({"verdict": ["false_positive", "true_positive"]}) == {fp.pk, tp.pk}
    assert ids({"action_taken": "cycle_count"}) == {tp.pk}
    assert ids({"anomaly": tp.anomaly_id}) == {tp.pk}
    assert ids({"location_code": "GB"}) == {fp.pk}
    assert ids({"q": "back"}) == {tp.pk}
    # COUNT for the limit/offset page, then the page JOIN anomaly, product, location, user.
    with django_assert_num_queries(2):
        api_client.get(OUTCOMES)


# --- admin -------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_outcome_admin_lists_and_filters(admin_client, staff_user):
    outcome_record(anomaly_id=AnomalyFactory().pk, verdict="false_positive", actor=staff_user)
    outcome_record(anomaly_id=AnomalyFactory().pk, verdict="expected", actor=staff_user)
    url = reverse("admin:outcomes_outcome_changelist")

    everything = admin_client.get(url)
    only_fp = admin_client.get(url, {"verdict__exact": "false_positive"})

    assert len(everything.context["cl"].result_list) == 2
    assert [o.verdict for o in only_fp.context["cl"].result_list] == ["false_positive"]


def test_outcome_admin_add_goes_through_the_service(admin_client, staff_user):
    anomaly = AnomalyFactory()

    response = admin_client.post(
        reverse("admin:outcomes_outcome_add"),
        {
            "anomaly": anomaly.pk,
            "verdict": "true_positive",
            "action_taken": "record_adjusted",
            "recovered_value": "20",
            "notes": "",
        },
    )

    assert response.status_code == 302
    outcome = Outcome.objects.get()
    assert (outcome.anomaly, outcome.verdict, outcome.recorded_by) == (
        anomaly,
        "true_positive",
        staff_user,
    )
    assert AnomalyActivity.objects.get().action == "outcome"


def test_outcome_admin_autocompletes_anomalies(admin_client):
    anomaly = AnomalyFactory(product=ProductFactory(sku="85123A"))
    AnomalyFactory(product=ProductFactory(sku="22423"))

    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "outcomes",
            "model_name": "outcome",
            "field_name": "anomaly",
            "term": "85123",
        },
    )

    assert response.status_code == 200
    assert [int(r["id"]) for r in response.json()["results"]] == [anomaly.pk]
