"""The chain-wide price-point table: line prices from line-level imports, daily prices refreshed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from inventory.importing.bundle import bundle_import
from inventory.importing.price_points import price_points_refresh
from inventory.importing.transactions import PRESETS, transactions_import
from inventory.models import PricePoint, Promotion
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory
from tests.inventory.test_import_retail import bundle
from tests.inventory.test_import_transactions import HEADER, LINES

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def points() -> list[tuple]:
    return list(
        PricePoint.objects.order_by("date", "product__sku", "price_pence").values_list(
            "product__sku", "date", "price_pence"
        )
    )


@pytest.mark.django_db
def test_line_import_keeps_each_sold_line_price_not_the_daily_average(tmp_path):
    path = tmp_path / "pos.csv"
    path.write_text(HEADER + LINES, encoding="utf-8")

    summary = transactions_import(path=path, mapping=PRESETS["online-retail"])

    # A sold at 2.00 and 3.00 on the 5th (the day's average 2.33 is no price point), 2.50 on
    # the 6th; the free line, the cancellation and the excluded SKUs give none.
    assert points() == [
        ("A", dt.date(2011, 1, 5), 200),
        ("A", dt.date(2011, 1, 5), 300),
        ("A", dt.date(2011, 1, 6), 250),
    ]
    assert summary.for_model("PricePoint").written == 3


@pytest.mark.django_db
def test_refresh_adds_daily_prices_outside_promotions_once():
    mug, jug = ProductFactory(sku="MUG"), ProductFactory(sku="JUG")
    north, south = LocationFactory(code="N"), LocationFactory(code="S")
    DailySalesFactory(product=mug, location=north, date=D1, units_sold=3, unit_price="2.4960")
    DailySalesFactory(product=mug, location=south, date=D1, units_sold=2, unit_price="1.75")
    DailySalesFactory(product=jug, location=north, date=D1, units_sold=0, unit_price=None)
    Promotion.objects.create(
        product=mug, location=south, start_date=D1, end_date=D1, discount_pct=Decimal("30")
    )

    assert price_points_refresh() == 1
    assert points() == [("MUG", D1, 250)]
    assert price_points_refresh() == 0  # the latest day is redone: nothing new

    DailySalesFactory(product=jug, location=south, date=D2, units_sold=1, unit_price="9.99")
    assert price_points_refresh() == 1
    assert points() == [("MUG", D1, 250), ("JUG", D2, 999)]


@pytest.mark.django_db
def test_a_bundle_import_brings_the_price_points_of_its_days_up_to_date(tmp_path):
    # A1 sold at 0.48 on the 1st, but on promotion (10 % off, every store): no point. The
    # bundle's sales outside promotions give points at the import, not at the next run.
    sales = (
        "date,sku,location,units,unit_price\n"
        "2024-01-01,A1,S1,5,0.48\n"
        "2024-01-08,A1,S1,3,0.50\n"
        "2024-01-08,B2,S1,2,1.2499\n"
        "2024-01-09,B2,S2,0,\n"
    )

    bundle_import(directory=bundle(tmp_path, sales_csv=sales))

    assert points() == [("A1", dt.date(2024, 1, 8), 50), ("B2", dt.date(2024, 1, 8), 125)]
    assert price_points_refresh() == 0  # the next run has nothing left to add
