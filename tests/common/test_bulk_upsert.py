"""``bulk_insert`` and ``bulk_upsert``: COPY (+ INSERT ... ON CONFLICT) on PostgreSQL,
executemany on SQLite, and the COPY text they send."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from common import bulk, bulk_render
from common.bulk import bulk_insert, bulk_upsert
from common.bulk_render import copy_text, rows_prepare
from inventory.models import DailySales, Location, Product
from tests.factories import LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

SALES_KEYS = ["product_id", "location_id", "date"]
SALES_UPDATES = ["units_sold", "units_returned", "unit_price"]


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 2 rows, so that a few rows exercise the batching on both backends."""
    monkeypatch.setattr(bulk, "SQLITE_BATCH_ROWS", 2)
    monkeypatch.setattr(bulk_render, "POSTGRES_COPY_BATCH_ROWS", 2)


def sales_frame(product, location, units: list[int], prices: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": product.pk,
            "location_id": location.pk,
            "date": pd.date_range("2024-01-01", periods=len(units)),
            "units_sold": np.array(units, dtype="int64"),
            "units_returned": 0,
            "unit_price": np.array(prices, dtype="float64"),
        }
    )


def stored_sales() -> list[tuple]:
    return list(DailySales.objects.order_by("date").values_list("date", "units_sold", "unit_price"))


def test_rows_are_inserted_in_batches_with_nan_as_null(small_batches):
    product, location = ProductFactory(), LocationFactory()
    calls = []

    written = bulk_upsert(
        DailySales,
        sales_frame(product, location, [3, 0, 5], [2.5, np.nan, 1.25]),
        SALES_KEYS,
        SALES_UPDATES,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert written == 3
    assert stored_sales() == [
        (dt.date(2024, 1, 1), 3, Decimal("2.5")),
        (dt.date(2024, 1, 2), 0, None),
        (dt.date(2024, 1, 3), 5, Decimal("1.25")),
    ]
    assert calls == [(2, 3), (3, 3)]


def test_existing_keys_are_updated_and_unchanged_rows_not_counted():
    product, location = ProductFactory(), LocationFactory()
    bulk_upsert(
        DailySales, sales_frame(product, location, [3, 4], [2.5, 2.5]), SALES_KEYS, SALES_UPDATES
    )
    ids = list(DailySales.objects.order_by("date").values_list("pk", flat=True))

    written = bulk_upsert(
        DailySales,
        sales_frame(product, location, [3, 9, 1], [2.5, np.nan, 1.0]),
        SALES_KEYS,
        SALES_UPDATES,
    )

    assert written == 2  # day 2 changed, day 3 new; day 1 identical
    assert stored_sales() == [
        (dt.date(2024, 1, 1), 3, Decimal("2.5")),
        (dt.date(2024, 1, 2), 9, None),
        (dt.date(2024, 1, 3), 1, Decimal("1")),
    ]
    assert list(DailySales.objects.order_by("date").values_list("pk", flat=True))[:2] == ids


def test_without_update_fields_existing_rows_are_left_alone():
    ProductFactory(sku="A", name="Kept", unit_price=Decimal("1.00"))
    frame = pd.DataFrame(
        {"sku": ["A", "B"], "name": ["New", "Bee"], "category": "", "unit_price": [9.0, 2.0]}
    )

    written = bulk_upsert(Product, frame, ["sku"], [])

    assert written == 1
    assert list(Product.objects.values_list("sku", "name", "unit_price")) == [
        ("A", "Kept", Decimal("1")),
        ("B", "Bee", Decimal("2")),
    ]


def test_text_round_trips_exactly_and_empty_string_is_not_null(small_batches):
    awkward = ['comma, "quotes"', "new\nline", "", "\\N", "tab\there", "émoji ✓"]
    frame = pd.DataFrame(
        {"code": [f"L{i}" for i in range(len(awkward))], "name": pd.Series(awkward, dtype="str")}
    )

    bulk_upsert(Location, frame, ["code"], ["name"])

    assert list(Location.objects.values_list("name", flat=True)) == awkward


def test_dates_may_be_strings():
    product, location = ProductFactory(), LocationFactory()
    frame = sales_frame(product, location, [1], [1.0]).assign(date=["2024-02-29"])

    bulk_upsert(DailySales, frame, SALES_KEYS, SALES_UPDATES)

    assert stored_sales() == [(dt.date(2024, 2, 29), 1, Decimal("1"))]


def test_duplicate_keys_are_refused_before_writing():
    product, location = ProductFactory(), LocationFactory()
    frame = pd.concat([sales_frame(product, location, [1], [1.0])] * 2)

    with pytest.raises(ValueError, match="duplicate keys"):
        bulk_upsert(DailySales, frame, SALES_KEYS, SALES_UPDATES)

    assert DailySales.objects.count() == 0


def test_missing_column_is_refused():
    with pytest.raises(ValueError, match="lacks column"):
        bulk_upsert(Location, pd.DataFrame({"code": ["X"]}), ["code"], ["name"])


def test_empty_frame_runs_no_query():
    frame = pd.DataFrame({"code": pd.Series([], dtype="str"), "name": pd.Series([], dtype="str")})

    with CaptureQueriesContext(connection) as queries:
        assert bulk_upsert(Location, frame, ["code"], ["name"]) == 0

    assert len(queries) == 0


def test_a_statement_count_independent_of_rows():
    """Rows go through raw cursors, not one ORM query each: Django logs only the savepoint."""
    product, location = ProductFactory(), LocationFactory()
    frame = sales_frame(product, location, list(range(500)), [1.0] * 500)

    with CaptureQueriesContext(connection) as queries:
        bulk_upsert(DailySales, frame, SALES_KEYS, SALES_UPDATES)

    # SAVEPOINT and RELEASE SAVEPOINT (the test's transaction is the outer one).
    assert len(queries) == 2
    assert DailySales.objects.count() == 500


def test_bulk_insert_stores_new_rows_in_batches(small_batches):
    product, location = ProductFactory(), LocationFactory()
    calls = []

    written = bulk_insert(
        DailySales,
        sales_frame(product, location, [3, 0, 5], [2.5, np.nan, 1.25]),
        progress=lambda done, total: calls.append((done, total)),
    )

    assert written == 3
    assert stored_sales()[1] == (dt.date(2024, 1, 2), 0, None)
    assert calls == [(2, 3), (3, 3)]


def test_bulk_insert_of_a_stored_key_raises_and_keeps_nothing_of_the_call():
    product, location = ProductFactory(), LocationFactory()
    bulk_insert(DailySales, sales_frame(product, location, [3], [2.5]))

    with pytest.raises(IntegrityError):
        bulk_insert(DailySales, sales_frame(product, location, [7, 8], [1.0, 1.0]))

    # The outer transaction is still usable and holds the first row only.
    assert stored_sales() == [(dt.date(2024, 1, 1), 3, Decimal("2.5"))]


def test_prepared_rows_are_written_like_the_frame():
    product, location = ProductFactory(), LocationFactory()
    frame = sales_frame(product, location, [3, 4], [2.5, 2.5])

    written = bulk_upsert(
        DailySales, rows_prepare(frame, vendor=connection.vendor), SALES_KEYS, SALES_UPDATES
    )

    assert written == 2
    assert [row[1] for row in stored_sales()] == [3, 4]


def test_rows_prepared_for_another_backend_are_refused():
    other = "sqlite" if connection.vendor == "postgresql" else "postgresql"
    frame = pd.DataFrame({"code": ["X"], "name": ["Y"]})

    with pytest.raises(ValueError, match="prepared for"):
        bulk_insert(Location, rows_prepare(frame, vendor=other))


def test_copy_text_renders_each_dtype_as_postgresql_reads_it():
    frame = pd.DataFrame(
        {
            "id": pd.array([1, None], dtype="Int64"),
            "units": [3.0, 2**40],  # whole floats fill integer columns
            "price": [2.5, np.nan],
            "day": np.array(["2024-02-29", "NaT"], dtype="datetime64[s]"),
            "flag": [True, False],
            "text": ["tab\there \\N", "line\nbreak"],
        }
    )

    assert copy_text(frame) == (
        b"1\t3\t2.5\t2024-02-29\tt\ttab\\there \\\\N\n"
        b"\\N\t1099511627776\t\\N\t\\N\tf\tline\\nbreak\n"
    )
