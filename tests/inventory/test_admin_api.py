"""Inventory admin (editable master data, read-only huge fact tables) and the products and
locations API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from common.admin import BoundedCountPaginator
from inventory.admin import DailySalesAdmin
from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    Product,
    Promotion,
    Receipt,
    StockLevel,
)
from tests.factories import (
    DailySalesFactory,
    LocationFactory,
    ProductFactory,
    StockLevelFactory,
)

pytestmark = pytest.mark.django_db

# Fact-table changelist (daily sales, stock levels, receipts), whatever the table size:
#   1. django_session row   2. auth_user row
#   3. SELECT COUNT(*) FROM (SELECT ... LIMIT 10001): the bounded count, never the whole table
#   4. the page of rows JOIN product, location
FACT_CHANGELIST_QUERIES = 4


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def get_with_queries(client, url: str, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return response, [q["sql"] for q in ctx.captured_queries]


def sales_rows(count: int, product=None, location=None) -> None:
    product = product or ProductFactory()
    location = location or LocationFactory()
    DailySales.objects.bulk_create(
        DailySales(
            product=product,
            location=location,
            date=dt.date(2024, 1, 1) + dt.timedelta(days=i),
            units_sold=i,
        )
        for i in range(count)
    )


# --- fact tables -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["dailysales", "stocklevel", "receipt"])
def test_fact_changelist_query_count_is_fixed_and_never_counts_the_whole_table(admin_client, model):
    product, location = ProductFactory(), LocationFactory()
    for i in range(150):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=i)
        DailySales.objects.create(product=product, location=location, date=day, units_sold=i)
        StockLevel.objects.create(product=product, location=location, date=day, on_hand=i)
        Receipt.objects.create(product=product, location=location, date=day, units=i)
    url = reverse(f"admin:inventory_{model}_changelist")

    response, queries = get_with_queries(admin_client, url)

    assert len(queries) == FACT_CHANGELIST_QUERIES, queries
    counts = [sql for sql in queries if "COUNT(" in sql]
    assert len(counts) == 1
    assert "LIMIT 10001" in counts[0]
    assert len(response.context["cl"].result_list) == 100
    assert response.context["cl"].result_count == 150


def test_fact_changelist_says_more_than_when_the_count_is_capped(admin_client, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "max_count", 5)
    monkeypatch.setattr(DailySalesAdmin, "list_per_page", 2)
    sales_rows(12)
    url = reverse("admin:inventory_dailysales_changelist")

    response, queries = get_with_queries(admin_client, url)

    assert len(queries) == FACT_CHANGELIST_QUERIES
    assert "more than 5 daily sales" in response.content.decode()
    assert response.context["cl"].paginator.num_pages == 3


def test_daily_sales_search_by_exact_sku_and_location_and_recent_filter(admin_client):
    gb, fr = LocationFactory(code="GB"), LocationFactory(code="FR")
    heart, stand = ProductFactory(sku="85123A"), ProductFactory(sku="22423")
    for i in range(40):
        day = dt.date(2024, 3, 31) - dt.timedelta(days=i)
        DailySalesFactory(product=heart, location=gb, date=day)
        DailySalesFactory(product=stand, location=fr, date=day)
    DailySalesFactory(product=ProductFactory(sku="85123AX"), location=gb, date=dt.date(2024, 3, 1))
    url = reverse("admin:inventory_dailysales_changelist")

    def rows(params):
        response, _queries = get_with_queries(admin_client, url, params)
        return {
            (r.product.sku, r.location.code, r.date) for r in response.context["cl"].result_list
        }

    assert {sku for sku, _code, _date in rows({"q": "85123A"})} == {"85123A"}  # exact, not prefix
    assert {code for _sku, code, _date in rows({"q": "FR"})} == {"FR"}
    assert rows({"q": "85123A FR"}) == set()  # SKU and location together
    recent = rows({"recent": "7"})
    assert {d for _sku, _code, d in recent} == {
        dt.date(2024, 3, 31) - dt.timedelta(days=i) for i in range(7)
    }
    assert len(recent) == 14


def test_fact_tables_are_read_only(admin_client):
    sale = DailySalesFactory()
    stock = StockLevelFactory()

    assert admin_client.get(reverse("admin:inventory_dailysales_add")).status_code == 403
    assert admin_client.get(reverse("admin:inventory_receipt_add")).status_code == 403
    view = admin_client.get(reverse("admin:inventory_dailysales_change", args=[sale.pk]))
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    admin_client.post(
        reverse("admin:inventory_stocklevel_change", args=[stock.pk]), {"on_hand": 999}
    )
    stock.refresh_from_db()
    assert stock.on_hand == 10
    delete = admin_client.post(reverse("admin:inventory_dailysales_delete", args=[sale.pk]))
    assert delete.status_code == 403
    assert DailySales.objects.filter(pk=sale.pk).exists()


# --- master data admin -------------------------------------------------------------------------


def test_master_data_changelists_and_forms_render(admin_client):
    product = ProductFactory(sku="85123A", category="Home")
    location = LocationFactory(code="GB")
    Promotion.objects.create(
        product=product,
        location=location,
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2024, 1, 7),
        discount_pct=Decimal("20"),
    )
    CalendarEvent.objects.create(date=dt.date(2024, 12, 25), name="Christmas", is_closed=True)

    for model in ["product", "location", "promotion", "calendarevent"]:
        listing = admin_client.get(reverse(f"admin:inventory_{model}_changelist"))
        assert listing.status_code == 200, model
        assert admin_client.get(reverse(f"admin:inventory_{model}_add")).status_code == 200
    products = admin_client.get(reverse("admin:inventory_product_changelist"), {"q": "85123"})
    assert [p.sku for p in products.context["cl"].result_list] == ["85123A"]
    by_category = admin_client.get(
        reverse("admin:inventory_product_changelist"), {"category": "Home"}
    )
    assert [p.sku for p in by_category.context["cl"].result_list] == ["85123A"]
    promotions = admin_client.get(reverse("admin:inventory_promotion_changelist")).content
    assert b"85123A" in promotions


def test_product_and_location_autocomplete_for_promotions(admin_client):
    ProductFactory(sku="85123A", name="White hanging heart")
    ProductFactory(sku="22423", name="Regency cakestand")

    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "inventory",
            "model_name": "promotion",
            "field_name": "product",
            "term": "heart",
        },
    )

    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["85123A White hanging heart"]


def test_promotion_can_be_added_in_the_admin(admin_client):
    product = ProductFactory()
    location = LocationFactory()

    response = admin_client.post(
        reverse("admin:inventory_promotion_add"),
        {
            "product": product.pk,
            "location": location.pk,
            "start_date": "2024-05-01",
            "end_date": "2024-05-07",
            "discount_pct": "15",
        },
    )

    assert response.status_code == 302
    promo = Promotion.objects.get()
    assert (promo.product, promo.location, promo.discount_pct) == (
        product,
        location,
        Decimal("15.00"),
    )


# --- API: products -----------------------------------------------------------------------------


def test_product_crud(api_client):
    created = api_client.post(
        "/api/v1/products/",
        {"sku": "85123A", "name": "Heart", "category": "Home", "unit_price": "2.55"},
        format="json",
    )
    assert created.status_code == 201
    pk = created.json()["id"]
    assert Product.objects.get(pk=pk).unit_price == Decimal("2.55")

    patched = api_client.patch(f"/api/v1/products/{pk}/", {"unit_cost": "1.10"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["unit_cost"] == "1.10"  # two places, like every money field of the API

    duplicate = api_client.post(
        "/api/v1/products/", {"sku": "85123A", "unit_price": "1"}, format="json"
    )
    assert duplicate.status_code == 400
    assert "sku" in duplicate.json()

    assert api_client.get(f"/api/v1/products/{pk}/").json()["name"] == "Heart"
    assert api_client.delete(f"/api/v1/products/{pk}/").status_code == 204
    assert not Product.objects.exists()


def test_product_filters(api_client):
    ProductFactory(sku="85123A", name="White hanging heart", category="Home")
    ProductFactory(sku="22423", name="Regency cakestand", category="Kitchen")
    ProductFactory(sku="84879", name="Assorted bird ornament", category="Home")

    def skus(params):
        response = api_client.get("/api/v1/products/", params)
        assert response.status_code == 200
        return [row["sku"] for row in response.json()["results"]]

    assert skus({}) == ["22423", "84879", "85123A"]
    assert skus({"category": "Home"}) == ["84879", "85123A"]
    assert skus({"q": "heart"}) == ["85123A"]
    assert skus({"q": "224"}) == ["22423"]
    assert skus({"sku": ["85123A", "22423"]}) == ["22423", "85123A"]
    assert skus({"ordering": "-sku"}) == ["85123A", "84879", "22423"]


def test_product_list_query_count_is_fixed(api_client, django_assert_num_queries):
    ProductFactory.create_batch(5)
    # COUNT(*) for the limit/offset page, then the page.
    with django_assert_num_queries(2):
        assert api_client.get("/api/v1/products/").json()["count"] == 5
    ProductFactory.create_batch(40)
    with django_assert_num_queries(2):
        assert len(api_client.get("/api/v1/products/").json()["results"]) == 45


# --- API: locations ----------------------------------------------------------------------------


def test_location_crud_and_filters(api_client):
    created = api_client.post("/api/v1/locations/", {"code": "GB", "name": "UK"}, format="json")
    assert created.status_code == 201
    LocationFactory(code="FR", name="France")
    pk = created.json()["id"]

    put = api_client.put(
        f"/api/v1/locations/{pk}/", {"code": "GB", "name": "United Kingdom"}, format="json"
    )
    assert put.status_code == 200
    assert Location.objects.get(pk=pk).name == "United Kingdom"

    def codes(params):
        return [
            row["code"] for row in api_client.get("/api/v1/locations/", params).json()["results"]
        ]

    assert codes({}) == ["FR", "GB"]
    assert codes({"code": "GB"}) == ["GB"]
    assert codes({"q": "fran"}) == ["FR"]
    assert codes({"id": pk}) == ["GB"]
    assert api_client.delete(f"/api/v1/locations/{pk}/").status_code == 204
    assert codes({}) == ["FR"]
