"""The chain-wide price-point table: line prices from line-level imports, daily prices refreshed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from inventory.importing.price_points import price_points_refresh
from inventory.importing.transactions import PRESETS, transactions_import
from inventory.models import PricePoint, Promotion
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory
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
