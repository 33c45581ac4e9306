"""``bundle_import`` on fact files read in chunks, and its two write paths: rows that cannot
exist yet are copied straight into the table, the others are upserted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from common.bulk import bulk_insert
from inventory.importing import BundleError, bundle, bundle_import, streaming
from inventory.importing import plan as write_plan
from inventory.models import DailySales, Product, Receipt, StockLevel

pytestmark = pytest.mark.django_db

PRODUCTS = "sku,name,category,unit_price,unit_cost\nA1,Apple,Fruit,0.50,\nB2,Bread,Bakery,1.25,\n"
LOCATIONS = "code,name\nS1,Store one\nS2,Store two\n"
SALES_HEADER = "date,sku,location,units,unit_price\n"


@pytest.fixture
def chunks_of_three(monkeypatch):
    """Fact files read three rows at a time: a handful of rows spans several chunks."""
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 3)


def day(number: int) -> str:
    return (dt.date(2024, 1, 1) + dt.timedelta(days=number - 1)).isoformat()


def sales_lines(days: range, locations=("S1", "S2"), skus=("A1", "B2"), units=5) -> list[str]:
    """One sales row per day, location and SKU, in date order (as exports come)."""
    return [
        f"{day(d)},{sku},{location},{units + d},{units / 10 + d:.2f}\n"
        for d in days
        for location in locations
        for sku in skus
    ]


def write_bundle(directory: Path, sales: list[str] | str, **extra: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "products.csv": PRODUCTS,
        "locations.csv": LOCATIONS,
        "sales.csv": sales if isinstance(sales, str) else SALES_HEADER + "".join(sales),
        **{name.replace("_csv", ".csv"): text for name, text in extra.items()},
    }
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def stored_sales() -> dict[tuple, tuple]:
    """(date, sku, location) -> (units sold, units returned, price): the table by natural key."""
    return {
        (date, sku, code): (units, returned, price)
        for date, sku, code, units, returned, price in DailySales.objects.values_list(
            "date",
            "product__sku",
            "location__code",
            "units_sold",
            "units_returned",
            "unit_price",
        )
    }


def every_row_may_exist(model, location_ids) -> write_plan._WritePlan:
    """An import plan under which no row is known to be new: everything is upserted."""
    size = len(location_ids)
    return write_plan._WritePlan(
        write_plan.connection.vendor,
        np.full(size, np.iinfo(np.int64).min),
        np.full(size, np.iinfo(np.int64).max),
    )


def no_row_exists(model, location_ids) -> write_plan._WritePlan:
    """An import plan that takes every row for new (as if another transaction stored some
    of them after the import looked)."""
    size = len(location_ids)
    return write_plan._WritePlan(
        write_plan.connection.vendor,
        np.full(size, np.iinfo(np.int64).max),
        np.full(size, np.iinfo(np.int64).min),
    )


def test_a_file_of_several_chunks_is_imported_whole(tmp_path, chunks_of_three):
    lines = sales_lines(range(1, 6))  # 20 rows: 7 chunks

    summary = bundle_import(directory=write_bundle(tmp_path, lines))

    assert summary.file("sales.csv").rows == 20
    assert summary.file("sales.csv").written == 20
    assert stored_sales()[(dt.date(2024, 1, 5), "B2", "S2")] == (10, 0, Decimal("5.5"))
    assert len(stored_sales()) == 20


@pytest.mark.django_db(transaction=True)
def test_an_error_in_a_later_chunk_rolls_back_the_chunks_already_written(
    tmp_path, monkeypatch, chunks_of_three
):
    """Real commits (no test transaction around): the first chunks are stored before the
    bad one is read, and rolled back with the bundle."""
    inserted = []
    monkeypatch.setattr(
        write_plan,
        "bulk_insert",
        lambda model, rows: inserted.append(rows.count) or bulk_insert(model, rows),
    )
    lines = sales_lines(range(1, 4))  # 12 rows, lines 2-13
    lines[9] = f"{day(3)},B2,S1,many,1.00\n"  # line 11, fourth chunk
    lines.insert(2, "\n")  # a blank line in the first chunk: later lines move down one

    with pytest.raises(BundleError) as raised:
        bundle_import(directory=write_bundle(tmp_path, lines))

    assert raised.value.messages == ["sales.csv:12: units: 'many' is not an integer"]
    assert sum(inserted) == 8  # the first three chunks (one of them with the blank line)
    assert DailySales.objects.count() == 0
    assert Product.objects.count() == 0


def test_errors_after_the_first_are_still_collected_from_every_chunk_and_file(
    tmp_path, chunks_of_three
):
    lines = sales_lines(range(1, 4))
    lines[1] = f"{day(1)},ZZ,S1,1,1.00\n"  # line 3
    lines[10] = f"{day(3)},A1,S2,-1,1.00\n"  # line 12
    inventory = "date,sku,location,on_hand\n" + "".join(
        f"{day(d)},A1,S1,{'x' if d == 5 else d}\n" for d in range(1, 8)
    )

    with pytest.raises(BundleError) as raised:
        bundle_import(directory=write_bundle(tmp_path, lines, inventory_csv=inventory))

    assert raised.value.messages == [
        "sales.csv:3: sku: unknown SKU 'ZZ'",
        "sales.csv:12: units: '-1' must not be negative (returns go in units_returned)",
        "inventory.csv:6: on_hand: 'x' is not an integer",
    ]
    assert StockLevel.objects.count() == 0


def test_a_key_repeated_in_a_later_chunk_names_the_first_line(tmp_path, chunks_of_three):
    lines = sales_lines(range(1, 3))  # 8 rows
    lines.append(f"{day(1)},B2,S1,9,1.00\n")  # line 10 repeats line 3, two chunks earlier

    with pytest.raises(BundleError) as raised:
        bundle_import(directory=write_bundle(tmp_path, lines))

    assert raised.value.messages == ["sales.csv:10: duplicate of line 3 (same date, sku, location)"]


def test_a_malformed_line_in_a_later_chunk_is_reported_and_nothing_written(
    tmp_path, chunks_of_three
):
    lines = sales_lines(range(1, 3))
    lines[6] = f"{day(2)},A1,S2,1,1.00,surplus\n"  # line 8

    with pytest.raises(BundleError) as raised:
        bundle_import(directory=write_bundle(tmp_path, lines))

    assert raised.value.messages == ["sales.csv:8: expected 5 fields, saw 6"]
    assert DailySales.objects.count() == 0


def test_receipts_of_one_day_in_different_chunks_are_summed(tmp_path, chunks_of_three):
    receipts = "date,sku,location,units\n" + "".join(
        f"{day(1 + i % 2)},A1,S1,{10 + i}\n" for i in range(7)
    )

    summary = bundle_import(
        directory=write_bundle(tmp_path, sales_lines(range(1, 2)), receipts_csv=receipts)
    )

    assert sorted(Receipt.objects.values_list("date", "units")) == [
        (dt.date(2024, 1, 1), 10 + 12 + 14 + 16),
        (dt.date(2024, 1, 2), 11 + 13 + 15),
    ]
    assert (summary.file("receipts.csv").rows, summary.file("receipts.csv").written) == (7, 2)


def test_reimporting_a_chunked_bundle_writes_nothing(tmp_path, chunks_of_three):
    directory = write_bundle(tmp_path, sales_lines(range(1, 5)))
    bundle_import(directory=directory)
    before = list(DailySales.objects.order_by("pk").values_list())

    summary = bundle_import(directory=directory)

    assert summary.file("sales.csv").written == 0
    assert list(DailySales.objects.order_by("pk").values_list()) == before


@pytest.mark.parametrize("plan", [every_row_may_exist, no_row_exists])
def test_copy_and_upsert_paths_store_the_same_rows(tmp_path, monkeypatch, chunks_of_three, plan):
    directory = write_bundle(tmp_path, sales_lines(range(1, 5)))
    bundle_import(directory=directory)
    expected = stored_sales()
    DailySales.objects.all().delete()
    monkeypatch.setattr(streaming, "_existing_days", plan)

    summary = bundle_import(directory=directory)

    assert stored_sales() == expected
    assert summary.file("sales.csv").written == 16


def test_rows_found_stored_after_all_are_upserted_instead_of_failing(
    tmp_path, monkeypatch, chunks_of_three
):
    """Another transaction may store a key the import took for new (a cycle count of
    today): the chunk is upserted instead."""
    bundle_import(directory=write_bundle(tmp_path / "first", sales_lines(range(1, 3))))
    monkeypatch.setattr(streaming, "_existing_days", no_row_exists)

    summary = bundle_import(
        directory=write_bundle(tmp_path / "second", sales_lines(range(2, 4), units=50))
    )

    assert summary.file("sales.csv").written == 8
    assert stored_sales()[(dt.date(2024, 1, 1), "A1", "S1")] == (6, 0, Decimal("1.5"))
    assert stored_sales()[(dt.date(2024, 1, 2), "A1", "S1")] == (52, 0, Decimal("7"))
    assert len(stored_sales()) == 12


def test_a_bundle_overlapping_stored_days_updates_them_and_appends_the_new_ones(
    tmp_path, chunks_of_three
):
    # Stored: days 1-3 at S1 only. Incoming: days 3-5 at S1 and S2, day 3 changed at S1.
    bundle_import(directory=write_bundle(tmp_path / "old", sales_lines(range(1, 4), ["S1"])))
    ids = dict(DailySales.objects.values_list("date", "pk").filter(product__sku="A1"))

    summary = bundle_import(
        directory=write_bundle(tmp_path / "new", sales_lines(range(3, 6), units=7))
    )

    stored = stored_sales()
    assert len(stored) == 6 + 12 - 2
    assert stored[(dt.date(2024, 1, 1), "A1", "S1")] == (6, 0, Decimal("1.5"))
    assert stored[(dt.date(2024, 1, 3), "A1", "S1")] == (10, 0, Decimal("3.7"))
    assert stored[(dt.date(2024, 1, 5), "B2", "S2")] == (12, 0, Decimal("5.7"))
    assert summary.file("sales.csv").written == 12
    # The changed day kept its row (updated in place, not deleted and re-inserted).
    assert (
        DailySales.objects.get(product__sku="A1", date=day(3), location__code="S1").pk
        == (ids[dt.date(2024, 1, 3)])
    )


def test_progress_counts_the_lines_of_each_fact_file(tmp_path, chunks_of_three):
    calls = []
    lines = sales_lines(range(1, 3))
    lines.insert(4, "\n")

    bundle_import(
        directory=write_bundle(tmp_path, lines),
        progress=lambda label, done, total: calls.append((label, done, total)),
    )

    sales = [(done, total) for label, done, total in calls if label == "sales.csv"]
    assert sales == [(3, 9), (6, 9), (9, 9)]


def test_command_reports_progress_per_chunk_of_a_large_file(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 20_000)
    skus = [f"P{i:03d}" for i in range(300)]
    products = "sku,name,category,unit_price,unit_cost\n" + "".join(
        f"{sku},Product {sku},Misc,1.00,\n" for sku in skus
    )
    directory = write_bundle(
        tmp_path, sales_lines(range(1, 101), skus=skus), products_csv=products
    )  # 60,000 rows
    out = StringIO()

    call_command("import_retail", str(directory), stdout=out)

    printed = out.getvalue()
    assert "sales.csv: 20,000/60,000 rows" in printed
    assert "sales.csv: 40,000/60,000 rows" in printed
    assert "sales.csv: 60,000/60,000 rows" in printed
    assert "sales.csv: 60,000 rows -> DailySales, 60,000 inserted or changed" in printed


def test_a_days_receipts_summing_beyond_32_bits_are_refused(tmp_path, chunks_of_three):
    big = 2**31 - 10
    receipts = (
        "date,sku,location,units\n"
        f"{day(1)},A1,S1,{big}\n{day(2)},A1,S1,1\n{day(3)},A1,S1,1\n{day(1)},A1,S1,{big}\n"
    )

    with pytest.raises(BundleError) as raised:
        bundle_import(
            directory=write_bundle(tmp_path, sales_lines(range(1, 2)), receipts_csv=receipts)
        )

    assert raised.value.messages == [
        f"receipts.csv:2: units: the day's total {2 * big:,} is out of range"
    ]
    assert Receipt.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_large_import_refreshes_planner_statistics_on_postgresql(tmp_path, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("ANALYZE after import is PostgreSQL-only")
    monkeypatch.setattr(bundle, "ANALYZE_MIN_ROWS", 5)
    summary = bundle_import(directory=write_bundle(tmp_path, sales_lines(range(1, 4))))
    assert "Planner statistics refreshed: inventory_dailysales" in summary.notes
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'inventory_dailysales'"
        )
        assert cursor.fetchone() == (True,)
    monkeypatch.setattr(bundle, "ANALYZE_MIN_ROWS", 10**9)
    again = bundle_import(directory=write_bundle(tmp_path, sales_lines(range(4, 6))))
    assert not any("Planner statistics" in note for note in again.notes)
