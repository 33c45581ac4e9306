"""Every query parameter is validated: bad values are a 400 naming the parameter, never a 500
(issue 13's schemathesis findings: huge limits and ids, NUL bytes, datetimes out of range)."""

from __future__ import annotations

import pytest

from tests.factories import AnomalyFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
ANOMALIES = "/api/v1/anomalies/"
OUTCOMES = "/api/v1/outcomes/"
COUNTS = "/api/v1/cycle-counts/"
STATS = "/api/v1/anomaly-statistics/"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": str(2**63)}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": str(2**63)}, "offset"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
    ],
)
def test_bad_page_parameters_are_400_naming_the_parameter(api_client, params, field):
    ProductFactory()

    response = api_client.get(PRODUCTS, params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_page_parameters_in_range_page_the_list(api_client):
    skus = sorted(ProductFactory().sku for _ in range(3))

    body = api_client.get(PRODUCTS, {"limit": 1, "offset": 1}).json()

    assert body["count"] == 3
    assert [row["sku"] for row in body["results"]] == [skus[1]]
    assert api_client.get(PRODUCTS, {"limit": 1000}).status_code == 200


@pytest.mark.parametrize("limit", [str(2**63), "0", "501x", "null"])
def test_cursor_page_size_is_validated(api_client, limit):
    response = api_client.get(ANOMALIES, {"limit": limit})

    assert response.status_code == 400
    assert list(response.json()) == ["limit"]


def test_cursor_page_size_pages(api_client):
    AnomalyFactory.create_batch(3)

    body = api_client.get(ANOMALIES, {"limit": 2}).json()

    assert len(body["results"]) == 2 and body["next"]


@pytest.mark.parametrize(
    ("url", "param"),
    [
        (PRODUCTS, "sku"),
        (PRODUCTS, "q"),
        (ANOMALIES, "location_code"),
        (ANOMALIES, "q"),
        (OUTCOMES, "location_code"),
        (COUNTS, "sku"),
        (STATS, "assignee_username"),
    ],
)
def test_nul_byte_in_a_text_filter_is_400(api_client, url, param):
    response = api_client.get(url, {param: "S0\x0001"})

    assert response.status_code == 400
    assert response.json() == {param: ["Null characters are not allowed."]}


@pytest.mark.parametrize(
    ("url", "param"),
    [
        (PRODUCTS, "id"),
        (ANOMALIES, "product"),
        (ANOMALIES, "location"),
        (ANOMALIES, "assignee"),
        (OUTCOMES, "anomaly"),
        (COUNTS, "location"),
        (STATS, "last_run"),
    ],
)
def test_ids_beyond_64_bits_are_400(api_client, url, param):
    response = api_client.get(url, {param: str(-(2**70))})

    assert response.status_code == 400
    assert list(response.json()) == [param]


def test_fractional_id_is_400(api_client):
    response = api_client.get(PRODUCTS, {"id": "1.5"})

    assert response.json() == {"id": ["A whole number is required."]}


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_datetime_out_of_range_in_utc_is_400(api_client, moment):
    response = api_client.get(OUTCOMES, {"recorded_before": moment})

    assert response.status_code == 400
    assert response.json() == {"recorded_before": ["Out of range once converted to UTC."]}


def test_datetime_in_range_filters(api_client):
    assert (
        api_client.get(OUTCOMES, {"recorded_after": "2024-01-01T00:00:00+05:00"}).json()["count"]
        == 0
    )


@pytest.mark.parametrize(
    ("url", "param"),
    [
        (ANOMALIES, "start_after"),
        (COUNTS, "is_control"),
        (STATS, "days"),
        ("/api/v1/roi/", "start"),
    ],
)
def test_empty_value_of_a_non_text_parameter_is_400(api_client, url, param):
    response = api_client.get(url, {param: ""})

    assert response.status_code == 400
    assert response.json() == {param: ["Give a value or leave the parameter out."]}


def test_empty_text_search_means_no_filter(api_client):
    ProductFactory()

    assert api_client.get(PRODUCTS, {"q": ""}).json()["count"] == 1


def test_boolean_filter_takes_true_or_false_only(api_client):
    assert api_client.get(COUNTS, {"is_control": "null"}).json() == {
        "is_control": ["Must be true or false."]
    }
    assert api_client.get(COUNTS, {"is_control": "false"}).status_code == 200


def test_unknown_ordering_field_is_400_listing_the_allowed_ones(api_client):
    response = api_client.get(PRODUCTS, {"ordering": "-unit_price,password"})

    assert response.status_code == 400
    message = response.json()["ordering"][0]
    assert "'password'" in message and "-unit_price" in message


def test_known_ordering_orders(api_client):
    ProductFactory(sku="B", unit_price="1.00")
    ProductFactory(sku="A", unit_price="3.00")

    body = api_client.get(PRODUCTS, {"ordering": "-unit_price"}).json()

    assert [row["sku"] for row in body["results"]] == ["A", "B"]


def test_location_list_with_every_check_passing_still_filters(api_client):
    LocationFactory(code="S001")
    LocationFactory(code="S002")

    body = api_client.get("/api/v1/locations/", {"code": "S002", "limit": 5, "offset": 0}).json()

    assert [row["code"] for row in body["results"]] == ["S002"]
