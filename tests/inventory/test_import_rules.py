"""The importers' input rules that accept input: plausible-date bounds from the settings,
integer notation, code case, overlapping promotions, bad-row totals and line numbers.

What they refuse is in test_malformed_corpus.py.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from anomalies.detectors.grid_inputs import promotion_masks
from anomalies.services.loading import detection_input_load
from inventory.importing import BundleError, bundle_import, transactions_import
from inventory.importing.errors import ErrorLog, shown
from inventory.importing.transactions import PRESETS
from inventory.importing.validation import plausible_dates
from inventory.models import DailySales, Location, Product, Promotion
from tests.inventory.test_import_retail import bundle
from tests.inventory.test_import_transactions import HEADER

pytestmark = pytest.mark.django_db

PROMOTIONS = "start_date,end_date,sku,location,discount_pct\n"
PROJECT = Path(__file__).resolve().parents[2]


def test_plausible_dates_follow_the_settings(settings):
    settings.SHELFWATCH_DATE_MIN = dt.date(2020, 1, 1)
    settings.SHELFWATCH_DATE_MAX_AHEAD_DAYS = 0

    first, last = plausible_dates()

    assert (first, last) == (dt.date(2020, 1, 1), dt.date.today())


def test_a_date_before_the_configured_minimum_is_refused(tmp_path, settings):
    settings.SHELFWATCH_DATE_MIN = dt.date(2024, 1, 2)

    with pytest.raises(BundleError) as raised:
        bundle_import(directory=bundle(tmp_path))

    assert raised.value.messages[0] == (
        "sales.csv:2: date: '2024-01-01' is outside the plausible dates 2024-01-02.."
        f"{plausible_dates()[1]} (SHELFWATCH_DATE_MIN, SHELFWATCH_DATE_MAX_AHEAD_DAYS)"
    )


def test_dates_up_to_the_configured_days_ahead_are_accepted(tmp_path, settings):
    settings.SHELFWATCH_DATE_MAX_AHEAD_DAYS = 30
    last = (dt.date.today() + dt.timedelta(days=30)).isoformat()

    bundle_import(directory=bundle(tmp_path, calendar_csv=f"date,event,location\n{last},Fair,\n"))

    assert Location.objects.count() == 2


@pytest.mark.parametrize(
    ("environment", "error"),
    [
        ({"SHELFWATCH_DATE_MIN": "01/01/1990"}, "SHELFWATCH_DATE_MIN is not a date"),
        ({"SHELFWATCH_DATE_MAX_AHEAD_DAYS": "a year"}, "is not an integer"),
        ({"SHELFWATCH_DATE_MAX_AHEAD_DAYS": "-1"}, "must not be negative"),
    ],
)
def test_bad_date_bound_settings_are_refused_at_startup(environment, error):
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=PROJECT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert error in result.stderr


def test_integers_may_carry_a_sign_and_surrounding_spaces(tmp_path):
    bundle_import(
        directory=bundle(
            tmp_path,
            sales_csv="date,sku,location,units,unit_price\n2024-01-01,A1,S1, +5 ,1\n",
            inventory_csv="date,sku,location,on_hand\n2024-01-01,A1,S1,-3\n",
        )
    )

    assert DailySales.objects.get().units_sold == 5


def test_skus_are_case_sensitive_two_products_in_both_importers(tmp_path):
    bundle_import(
        directory=bundle(
            tmp_path,
            products_csv=(
                "sku,name,category,unit_price,unit_cost\n"
                "A1,Apple,Fruit,0.50,\nB2,Bread,Bakery,1.25,\na1,Apple (web),Fruit,0.90,\n"
            ),
        )
    )
    pos = tmp_path / "pos.csv"
    pos.write_text(
        HEADER
        + "1,X9,MUG,1,2011-01-05 09:00:00,2.00,,France\n"
        + "2,x9,MUG,1,2011-01-05 10:00:00,4.00,,France\n",
        encoding="utf-8",
    )

    transactions_import(path=pos, mapping=PRESETS["online-retail"])

    assert set(Product.objects.values_list("sku", flat=True)) == {"A1", "a1", "B2", "X9", "x9"}


def test_a_location_code_stored_beside_a_case_variant_of_it_may_still_be_named(tmp_path):
    """Rows stored before the rule: each exact code stays usable."""
    Location.objects.create(code="S1", name="One")
    Location.objects.create(code="s1", name="legacy")

    bundle_import(directory=bundle(tmp_path, locations_csv="code,name\nS1,One\nS2,\ns1,\n"))

    assert Location.objects.count() == 3


def test_a_located_promotion_and_one_for_all_locations_may_start_the_same_day(tmp_path):
    text = PROMOTIONS + "2024-01-01,2024-01-07,A1,,20\n2024-01-01,2024-01-02,A1,,25\n"
    text += "2024-01-01,2024-01-02,A1,S1,30\n2024-01-01,2024-01-02,A1,S1,15\n"

    bundle_import(directory=bundle(tmp_path, promotions_csv=text))

    assert sorted(
        Promotion.objects.values_list("location__code", "end_date", "discount_pct"),
        key=lambda row: (row[0] or "", row[1], row[2]),
    ) == [
        (None, dt.date(2024, 1, 2), Decimal("25.00")),
        (None, dt.date(2024, 1, 7), Decimal("20.00")),
        ("S1", dt.date(2024, 1, 2), Decimal("15.00")),
        ("S1", dt.date(2024, 1, 2), Decimal("30.00")),
    ]


def test_overlapping_promotions_reimport_unchanged_and_are_replaced_per_start_day(tmp_path):
    two = PROMOTIONS + "2024-01-01,2024-01-07,A1,,20\n2024-01-01,2024-01-02,A1,,25\n"
    bundle_import(directory=bundle(tmp_path / "first", promotions_csv=two))
    ids = set(Promotion.objects.values_list("pk", flat=True))

    again = bundle_import(directory=bundle(tmp_path / "again", promotions_csv=two))

    assert again.file("promotions.csv").written == 0
    assert set(Promotion.objects.values_list("pk", flat=True)) == ids

    # The weekend campaign is dropped from the file: the day's promotions are the file's.
    one = PROMOTIONS + "2024-01-01,2024-01-07,A1,,20\n"
    changed = bundle_import(directory=bundle(tmp_path / "changed", promotions_csv=one))

    assert changed.file("promotions.csv").written == 1
    assert list(
        Promotion.objects.filter(product__sku="A1").values_list("end_date", "discount_pct")
    ) == [(dt.date(2024, 1, 7), Decimal("20.00"))]


def test_on_a_day_covered_by_several_promotions_the_deepest_discount_applies(tmp_path):
    text = PROMOTIONS + "2024-01-01,2024-01-07,A1,,20\n2024-01-06,2024-01-07,A1,S1,25\n"
    text += "2024-01-01,2024-01-02,A1,,10\n"
    bundle_import(directory=bundle(tmp_path, promotions_csv=text))
    data = detection_input_load(as_of=dt.date(2024, 1, 8), history_days=8)
    apple = Product.objects.get(sku="A1").pk
    stores = [Location.objects.get(code=code).pk for code in ("S1", "S2")]

    promo, discount = promotion_masks(
        data.promotions,
        np.array([apple, apple]),
        np.array(stores),
        pd.Timestamp("2024-01-01"),
        8,
    )

    assert promo.tolist() == [[True] * 7 + [False]] * 2
    assert discount.tolist() == [
        [20, 20, 20, 20, 20, 25, 25, 0],  # S1: its own 25 % beats the chain's 20 %
        [20, 20, 20, 20, 20, 20, 20, 0],
    ]


def test_the_command_counts_bad_rows_not_messages(tmp_path):
    rows = "".join(f"2024-01-{day:02d},A1,S1,x{day},y\n" for day in range(1, 29))
    directory = bundle(tmp_path, sales_csv="date,sku,location,units,unit_price\n" + rows)
    err = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("import_retail", str(directory), stdout=StringIO(), stderr=err)

    # 56 errors (units and price) on 28 rows; 20 messages shown.
    assert str(raised.value) == f"{directory}: import failed (28 bad rows); nothing written"
    assert "sales.csv: ... and 36 more error(s); 28 bad rows in all" in err.getvalue()


def test_bad_rows_are_counted_once_across_many_chunks_of_lines():
    log = ErrorLog("big.csv")
    lines = pd.Series(np.arange(2, 3_000_002))
    for column in ("units", "price"):
        log.add_rows(pd.Series(np.ones(len(lines), dtype=bool)), lines, column, 0, str)

    assert (log.total, log.bad_rows, len(log.messages())) == (6_000_000, 3_000_000, 21)


def test_values_in_messages_are_cut_but_short_ones_kept_whole():
    assert shown("S1") == "'S1'"
    assert shown("x" * 81) == "'" + "x" * 80 + "'…"


def test_line_numbers_follow_the_file_after_fields_spanning_lines(tmp_path, monkeypatch):
    from inventory.importing import streaming

    monkeypatch.setattr(streaming, "CHUNK_ROWS", 2)  # the mapping holds across chunks
    sales = (
        "date,sku,location,units,unit_price\n"
        '2024-01-01,A1,"S\n1",5,1\n'
        '2024-01-02,A1,S1,5,"1\n\n"\n'
        "2024-01-03,A1,S1,x,1\n"
        "2024-01-03,A1,S1,5,1\n"
    )

    with pytest.raises(BundleError) as raised:
        bundle_import(directory=bundle(tmp_path, sales_csv=sales))

    assert raised.value.messages == [
        "sales.csv:2: location: unknown location 'S\\n1'",
        "sales.csv:7: units: 'x' is not an integer",
        "sales.csv:8: duplicate of line 7 (same date, sku, location)",
    ]
