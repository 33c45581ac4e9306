"""Line-level POS imports: ``transactions_import`` and ``manage.py import_transactions``."""

from __future__ import annotations

import datetime as dt
import gzip
import time
from decimal import Decimal
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.importing.transactions import (
    PRESETS,
    TransactionMapping,
    aggregate_lines,
    combine_daily,
    median_by_group,
    transactions_import,
)
from inventory.models import DailySales, Location, Product
from tests.factories import ProductFactory

ONLINE_RETAIL_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared/data/online_retail/online_retail.csv.gz"
)
ONLINE_RETAIL = PRESETS["online-retail"]
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
LINES = (
    "1,A,ALPHA MUG,10,2011-01-05 09:00:00,2.00,17850,United Kingdom\n"
    "2,A,Alpha mug,5,2011-01-05 10:00:00,3.00,17850,United Kingdom\n"
    "C3,A,ALPHA MUG,-10,2011-01-05 11:00:00,2.00,17850,United Kingdom\n"
    "4,A,ALPHA MUG,4,2011-01-05 12:00:00,0,,United Kingdom\n"
    "5,A,ALPHA MUG,2,2011-01-06 12:00:00,2.50,,France\n"
    "6,POST,POSTAGE,1,2011-01-05 12:00:00,18.00,,France\n"
    "7,m,Manual,1,2011-01-05 12:00:00,5.00,,France\n"
    "C8,Z9,BETA,-3,2011-01-06 08:00:00,1.50,,France\n"
)


def sales_rows() -> list[tuple]:
    return list(
        DailySales.objects.order_by("product__sku", "location__code", "date").values_list(
            "product__sku", "location__code", "date", "units_sold", "units_returned", "unit_price"
        )
    )


EXPECTED_SALES = [
    ("A", "France", dt.date(2011, 1, 6), 2, 0, Decimal("2.5")),
    # 10 + 5 + 4 sold, 10 cancelled (counted, not netted); the free line is not in the price.
    ("A", "United Kingdom", dt.date(2011, 1, 5), 19, 10, Decimal("2.3333")),
    ("Z9", "France", dt.date(2011, 1, 6), 0, 3, None),
]


@pytest.fixture
def pos_file(tmp_path) -> Path:
    path = tmp_path / "pos.csv"
    path.write_text(HEADER + LINES, encoding="utf-8")
    return path


@pytest.mark.django_db
def test_lines_become_daily_sales_with_returns_counted_not_netted(pos_file):
    summary = transactions_import(path=pos_file, mapping=ONLINE_RETAIL)

    assert sales_rows() == EXPECTED_SALES
    assert summary.lines_read == 8
    assert summary.excluded == {"excluded SKU 'POST'": 1, "excluded SKU 'm'": 1}
    assert summary.for_model("DailySales").written == 3


@pytest.mark.django_db
def test_missing_products_and_locations_are_created(pos_file):
    summary = transactions_import(path=pos_file, mapping=ONLINE_RETAIL)

    assert list(Product.objects.values_list("sku", "name", "category", "unit_price")) == [
        # Most frequent description; median of the positive, priced lines' prices (2, 2.5, 3).
        ("A", "ALPHA MUG", "Uncategorised", Decimal("2.5")),
        # Only ever returned: the median of its priced lines.
        ("Z9", "BETA", "Uncategorised", Decimal("1.5")),
    ]
    assert list(Location.objects.values_list("code", "name")) == [
        ("France", "France"),
        ("United Kingdom", "United Kingdom"),
    ]
    assert summary.for_model("Product").written == 2
    assert summary.for_model("Location").written == 2


@pytest.mark.django_db
def test_existing_products_are_left_alone(pos_file):
    ProductFactory(sku="A", name="Mug A", category="Kitchen", unit_price=Decimal("9.99"))

    summary = transactions_import(path=pos_file, mapping=ONLINE_RETAIL)

    assert Product.objects.get(sku="A").name == "Mug A"
    assert Product.objects.get(sku="A").unit_price == Decimal("9.99")
    assert summary.for_model("Product").written == 1


@pytest.mark.django_db
def test_gzip_file_is_read(tmp_path):
    path = tmp_path / "pos.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(HEADER + LINES)

    transactions_import(path=path, mapping=ONLINE_RETAIL)

    assert sales_rows() == EXPECTED_SALES


@pytest.mark.django_db
def test_reimporting_the_same_file_gives_the_same_rows(pos_file):
    transactions_import(path=pos_file, mapping=ONLINE_RETAIL)
    before = list(DailySales.objects.order_by("pk").values_list())

    summary = transactions_import(path=pos_file, mapping=ONLINE_RETAIL)

    assert list(DailySales.objects.order_by("pk").values_list()) == before
    assert [entry.written for entry in summary.files] == [0, 0, 0, 0]


@pytest.mark.django_db
def test_reimport_replaces_the_aggregates_of_the_keys_in_the_file(pos_file, tmp_path):
    transactions_import(path=pos_file, mapping=ONLINE_RETAIL)
    correction = tmp_path / "correction.csv"
    correction.write_text(
        HEADER + "9,A,ALPHA MUG,7,2011-01-06 12:00:00,2.00,,France\n", encoding="utf-8"
    )

    transactions_import(path=correction, mapping=ONLINE_RETAIL)

    assert sales_rows()[0] == ("A", "France", dt.date(2011, 1, 6), 7, 0, Decimal("2"))
    assert DailySales.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("chunk_lines", [1, 3])  # 1: partial results are compacted too
def test_small_chunks_give_the_same_result(pos_file, chunk_lines):
    transactions_import(path=pos_file, mapping=ONLINE_RETAIL, chunk_lines=chunk_lines)

    assert sales_rows() == EXPECTED_SALES
    assert Product.objects.get(sku="A").unit_price == Decimal("2.5")


@pytest.mark.django_db
def test_default_location_category_and_own_column_names(tmp_path):
    path = tmp_path / "till.csv"
    path.write_text(
        "sold_at,item,qty,price\n"
        "05/01/2024 09:10,X1,3,1.00\n"
        "05/01/2024 18:00,X1,-1,1.00\n"
        "06/01/2024 10:00,GIFT,1,20.00\n",
        encoding="utf-8",
    )
    mapping = TransactionMapping(
        sku_col="item",
        quantity_col="qty",
        timestamp_col="sold_at",
        price_col="price",
        default_location="S001",
        category="Grocery",
        exclude_skus=frozenset({"gift"}),
        timestamp_format="%d/%m/%Y %H:%M",
    )

    transactions_import(path=path, mapping=mapping)

    assert sales_rows() == [("X1", "S001", dt.date(2024, 1, 5), 3, 1, Decimal("1"))]
    assert Product.objects.get().category == "Grocery"


def test_a_mapping_needs_a_location():
    with pytest.raises(ValueError, match="location"):
        TransactionMapping(sku_col="a", quantity_col="b", timestamp_col="c", price_col="d")


@pytest.mark.django_db
def test_bad_values_of_excluded_lines_are_not_errors(tmp_path):
    path = tmp_path / "pos.csv"
    path.write_text(HEADER + "9,POST,POSTAGE,lots,yesterday,free,,France\n", encoding="utf-8")

    summary = transactions_import(path=path, mapping=ONLINE_RETAIL)

    assert summary.excluded == {"excluded SKU 'POST'": 1}
    assert DailySales.objects.count() == 0


# Malformed files (one test per kind) are in test_malformed_corpus.py.


@pytest.mark.django_db
def test_command_with_preset_and_extra_exclusion(pos_file):
    out = StringIO()

    call_command(
        "import_transactions",
        str(pos_file),
        "--preset",
        "online-retail",
        "--exclude-sku",
        "z9",
        stdout=out,
    )

    assert "total: 8 lines read" in out.getvalue()
    assert "excluded SKU 'Z9': 1" in out.getvalue()
    assert [row[0] for row in sales_rows()] == ["A", "A"]


def test_command_without_preset_needs_the_column_options(pos_file):
    with pytest.raises(CommandError, match="--sku-col, --quantity-col"):
        call_command("import_transactions", str(pos_file), "--timestamp-col", "InvoiceDate")


# --- properties of the aggregation (no database) ---------------------------------------------

transaction_lines = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from(["UK", "FR"]),
        st.integers(0, 3),  # day offset
        st.integers(-500, 500).filter(bool),  # quantity, zero lines are excluded upstream
        st.one_of(st.none(), st.decimals(-5, 50, places=2).map(float)),  # price
    ),
    min_size=1,
    max_size=60,
)


def lines_frame(rows: list[tuple]) -> pd.DataFrame:
    sku, location, day, quantity, price = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "sku": pd.Series(sku, dtype="str"),
            "location": pd.Series(location, dtype="str"),
            "date": pd.Timestamp("2011-01-01") + pd.to_timedelta(list(day), unit="D"),
            "quantity": np.array(quantity, dtype="int64"),
            "price": np.array([np.nan if p is None else p for p in price], dtype="float64"),
        }
    )


@settings(max_examples=200, deadline=None)
@given(rows=transaction_lines, cut=st.integers(0, 60))
def test_aggregation_conserves_sold_and_returned_units_in_any_chunking(rows, cut):
    lines = lines_frame(rows)
    cut = min(cut, len(lines))

    whole = combine_daily([aggregate_lines(lines)])
    chunked = combine_daily([aggregate_lines(lines.iloc[:cut]), aggregate_lines(lines.iloc[cut:])])

    quantity = lines["quantity"]
    assert whole["units_sold"].sum() == quantity[quantity > 0].sum()
    assert whole["units_returned"].sum() == -quantity[quantity < 0].sum()
    assert not whole.duplicated(["sku", "location", "date"]).any()
    pd.testing.assert_frame_equal(whole, chunked)
    # The average price lies within the prices of the lines it averages.
    priced = lines[(lines["quantity"] > 0) & (lines["price"] > 0)]
    bounds = priced.groupby(["sku", "location", "date"])["price"].agg(["min", "max"])
    joined = whole.dropna(subset=["unit_price"]).join(bounds, on=["sku", "location", "date"])
    assert (joined["unit_price"] >= joined["min"].round(4) - 1e-9).all()
    assert (joined["unit_price"] <= joined["max"].round(4) + 1e-9).all()


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.tuples(st.sampled_from("xyz"), st.integers(1, 9), st.integers(1, 4)),
        min_size=1,
        max_size=30,
    )
)
def test_median_of_counted_values_equals_median_of_the_expanded_values(values):
    counts = (
        pd.DataFrame(values, columns=["sku", "price", "size"])
        .groupby(["sku", "price"], as_index=False)["size"]
        .sum()
    )

    medians = median_by_group(counts, "sku", "price", "size")

    for sku, group in counts.groupby("sku"):
        assert medians[sku] == np.median(np.repeat(group["price"], group["size"]))


# --- the real file -----------------------------------------------------------------------------


@pytest.mark.real_data
@pytest.mark.django_db
@pytest.mark.skipif(
    not ONLINE_RETAIL_FILE.is_file(), reason=f"Online Retail file absent: {ONLINE_RETAIL_FILE}"
)
def test_online_retail_file_imports_completely_with_cancelled_big_orders_kept():
    started = time.perf_counter()

    summary = transactions_import(path=ONLINE_RETAIL_FILE, mapping=ONLINE_RETAIL)

    assert summary.lines_read == 541_909
    assert sum(summary.excluded.values()) == 2_916  # the listed non-product codes only
    assert DailySales.objects.count() == summary.for_model("DailySales").rows
    uk = Location.objects.get(code="United Kingdom")
    paper_craft = DailySales.objects.get(
        product__sku="23843", location=uk, date=dt.date(2011, 12, 9)
    )
    assert (paper_craft.units_sold, paper_craft.units_returned) == (80_995, 80_995)
    storage_jar = DailySales.objects.get(
        product__sku="23166", location=uk, date=dt.date(2011, 1, 18)
    )
    assert (storage_jar.units_sold, storage_jar.units_returned) == (74_215, 74_215)
    assert Location.objects.count() == 38
    assert not Product.objects.filter(sku__in=["POST", "DOT", "M", "BANK CHARGES"]).exists()
    assert time.perf_counter() - started < 60
