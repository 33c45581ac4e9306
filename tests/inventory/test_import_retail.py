"""The retail bundle importer: ``bundle_import`` and ``manage.py import_retail``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inventory.importing import BundleError, bundle_import, master_data
from inventory.models import (
    CalendarEvent,
    DailySales,
    Location,
    Product,
    Promotion,
    Receipt,
    StockLevel,
)
from tests.factories import LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

ALL_MODELS = (Product, Location, DailySales, StockLevel, Receipt, Promotion, CalendarEvent)

GOOD_BUNDLE = {
    "products.csv": (
        "sku,name,category,unit_price,unit_cost,supplier\n"
        "A1,Apple,Fruit,0.50,0.20,Orchard Ltd\n"
        'B2,"Bread, white",Bakery,1.25,,Mill\n'
    ),
    "locations.csv": "code,name\nS1,Store one\nS2,\n",
    "sales.csv": (
        "date,sku,location,units,unit_price\n"
        "2024-01-01,A1,S1,5,0.48\n"
        "2024-01-01,B2,S1,2,\n"
        "2024-01-02,A1,S2,0,\n"
    ),
    "inventory.csv": "date,sku,location,on_hand\n2024-01-01,A1,S1,-3\n2024-01-01,B2,S1,7\n",
    "receipts.csv": (
        "date,sku,location,units\n2024-01-01,A1,S1,10\n2024-01-01,A1,S1,5\n2024-01-02,B2,S2,4\n"
    ),
    "calendar.csv": (
        "date,event,location\n"
        "2024-12-25,Christmas (store CLOSED),\n"
        "2024-01-02,Local fair,S1\n"
        "2024-01-03,Closed for stocktake,S2\n"
    ),
    "promotions.csv": (
        "start_date,end_date,sku,location,discount_pct\n"
        "2024-01-01,2024-01-07,A1,,10\n"
        "2024-01-01,2024-01-03,B2,S2,25.5\n"
    ),
}


def write_bundle(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def bundle(tmp_path: Path, **changes: str | None) -> Path:
    """The good bundle with files replaced (``sales_csv="..."``) or left out (None)."""
    files = dict(GOOD_BUNDLE)
    for key, text in changes.items():
        name = key.replace("_csv", ".csv")
        if text is None:
            files.pop(name)
        else:
            files[name] = text
    return write_bundle(tmp_path / "bundle", files)


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every inventory table (ids included): 'unchanged' means equal."""
    return {
        model.__name__: list(model.objects.order_by("pk").values_list()) for model in ALL_MODELS
    }


def sales_rows() -> list[tuple]:
    return list(
        DailySales.objects.order_by("date", "product__sku", "location__code").values_list(
            "date", "product__sku", "location__code", "units_sold", "units_returned", "unit_price"
        )
    )


def test_good_bundle_imports_every_file(tmp_path):
    summary = bundle_import(directory=bundle(tmp_path))

    assert list(
        Product.objects.values_list("sku", "name", "category", "unit_price", "unit_cost")
    ) == [
        ("A1", "Apple", "Fruit", Decimal("0.5"), Decimal("0.2")),
        ("B2", "Bread, white", "Bakery", Decimal("1.25"), None),
    ]
    assert list(Location.objects.values_list("code", "name")) == [("S1", "Store one"), ("S2", "")]
    assert sales_rows() == [
        (dt.date(2024, 1, 1), "A1", "S1", 5, 0, Decimal("0.48")),
        (dt.date(2024, 1, 1), "B2", "S1", 2, 0, None),
        (dt.date(2024, 1, 2), "A1", "S2", 0, 0, None),
    ]
    assert sorted(StockLevel.objects.values_list("product__sku", "on_hand")) == [
        ("A1", -3),  # book stock may be negative
        ("B2", 7),
    ]
    assert sorted(
        Receipt.objects.values_list("date", "product__sku", "location__code", "units")
    ) == [
        (dt.date(2024, 1, 1), "A1", "S1", 15),  # two deliveries the same day: summed
        (dt.date(2024, 1, 2), "B2", "S2", 4),
    ]
    assert summary.file("sales.csv").rows == 3
    assert summary.file("sales.csv").written == 3
    assert summary.file("receipts.csv").rows == 3
    assert summary.file("receipts.csv").written == 2
    assert summary.lines_read == 17


def test_calendar_closed_is_detected_case_insensitively_and_blank_location_means_all(tmp_path):
    bundle_import(directory=bundle(tmp_path))

    assert list(
        CalendarEvent.objects.order_by("date").values_list(
            "date", "name", "location__code", "is_closed"
        )
    ) == [
        (dt.date(2024, 1, 2), "Local fair", "S1", False),
        (dt.date(2024, 1, 3), "Closed for stocktake", "S2", True),
        (dt.date(2024, 12, 25), "Christmas (store CLOSED)", None, True),
    ]


def test_promotion_with_blank_location_applies_to_all_locations(tmp_path):
    bundle_import(directory=bundle(tmp_path))

    assert list(
        Promotion.objects.order_by("product__sku").values_list(
            "product__sku", "location__code", "start_date", "end_date", "discount_pct"
        )
    ) == [
        ("A1", None, dt.date(2024, 1, 1), dt.date(2024, 1, 7), Decimal("10.00")),
        ("B2", "S2", dt.date(2024, 1, 1), dt.date(2024, 1, 3), Decimal("25.50")),
    ]


def test_reimporting_the_same_bundle_changes_nothing(tmp_path):
    directory = bundle(tmp_path)
    bundle_import(directory=directory)
    before = snapshot()

    summary = bundle_import(directory=directory)

    assert snapshot() == before
    assert [entry.written for entry in summary.files] == [0] * 7


def test_reimport_replaces_changed_values_on_the_natural_keys(tmp_path):
    bundle_import(directory=bundle(tmp_path / "first"))
    changed = bundle(
        tmp_path / "second",
        sales_csv="date,sku,location,units,unit_price\n2024-01-01,A1,S1,9,0.45\n",
        promotions_csv=(
            "start_date,end_date,sku,location,discount_pct\n2024-01-01,2024-01-09,A1,,15\n"
        ),
        calendar_csv="date,event,location\n2024-01-02,Local fair,\n",
    )

    summary = bundle_import(directory=changed)

    assert summary.file("sales.csv").written == 1
    assert DailySales.objects.count() == 3
    assert sales_rows()[0] == (dt.date(2024, 1, 1), "A1", "S1", 9, 0, Decimal("0.45"))
    promo = Promotion.objects.get(product__sku="A1")
    assert (promo.end_date, promo.discount_pct) == (dt.date(2024, 1, 9), Decimal("15.00"))
    assert Promotion.objects.count() == 2
    # Same name and date but for all locations: another event, not the S1 one.
    assert CalendarEvent.objects.filter(name="Local fair").count() == 2


def test_references_may_point_to_rows_already_in_the_database(tmp_path):
    ProductFactory(sku="OLD", unit_price=Decimal("3.00"))
    LocationFactory(code="S9")

    bundle_import(
        directory=bundle(
            tmp_path,
            sales_csv="date,sku,location,units,unit_price\n2024-02-01,OLD,S9,4,2.99\n",
        )
    )

    assert sales_rows() == [(dt.date(2024, 2, 1), "OLD", "S9", 4, 0, Decimal("2.99"))]


def test_optional_units_returned_column_is_read(tmp_path):
    bundle_import(
        directory=bundle(
            tmp_path,
            sales_csv=(
                "date,sku,location,units,unit_price,units_returned\n"
                "2024-01-01,A1,S1,5,0.48,2\n"
                "2024-01-02,A1,S1,1,0.50,\n"
            ),
        )
    )

    assert [(row[3], row[4]) for row in sales_rows()] == [(5, 2), (1, 0)]


def test_optional_files_may_be_absent_and_utf8_bom_is_accepted(tmp_path):
    directory = bundle(
        tmp_path, inventory_csv=None, receipts_csv=None, calendar_csv=None, promotions_csv=None
    )
    (directory / "locations.csv").write_text("\ufeffcode,name\nS1,Café\nS2,\n", encoding="utf-8")

    summary = bundle_import(directory=directory)

    assert [entry.name for entry in summary.files] == ["locations.csv", "products.csv", "sales.csv"]
    assert Location.objects.get(code="S1").name == "Café"


# Malformed input (one test per kind, with exit status and row counts) is in
# test_malformed_corpus.py.


def test_bad_input_leaves_an_empty_database_empty(tmp_path):
    with pytest.raises(BundleError):
        bundle_import(
            directory=bundle(
                tmp_path,
                calendar_csv="date,event,location\n2024-01-01,Fair,NOWHERE\n",
            )
        )

    assert {name: len(rows) for name, rows in snapshot().items()} == dict.fromkeys(
        (model.__name__ for model in ALL_MODELS), 0
    )


def test_missing_required_files_are_named(tmp_path):
    directory = bundle(tmp_path, products_csv=None, sales_csv=None)

    with pytest.raises(BundleError) as raised:
        bundle_import(directory=directory)

    assert raised.value.messages == [
        f"products.csv: required file is missing from {directory}",
        f"sales.csv: required file is missing from {directory}",
    ]
    assert Location.objects.count() == 0


def test_errors_of_several_files_are_collected_and_capped_per_file(tmp_path):
    bad_rows = "".join(f"2024-01-{day:02d},A1,S1,x{day},1\n" for day in range(1, 26))
    with pytest.raises(BundleError) as raised:
        bundle_import(
            directory=bundle(
                tmp_path,
                sales_csv="date,sku,location,units,unit_price\n" + bad_rows,
                inventory_csv="date,sku,location,on_hand\n2024-01-01,A1,S1,1.5\n",
            )
        )

    messages = raised.value.messages
    assert messages[0] == "sales.csv:2: units: 'x1' is not an integer"
    assert messages[19] == "sales.csv:21: units: 'x20' is not an integer"
    assert messages[20] == "sales.csv: ... and 5 more error(s); 25 bad rows in all"
    assert messages[21:] == ["inventory.csv:2: on_hand: '1.5' is not an integer"]
    assert (raised.value.bad_rows, raised.value.file_errors) == (26, 0)


def test_line_numbers_count_blank_lines(tmp_path):
    with pytest.raises(BundleError) as raised:
        bundle_import(
            directory=bundle(
                tmp_path,
                sales_csv="date,sku,location,units,unit_price\n2024-01-01,A1,S1,5,1\n\n"
                "2024-01-02,A1,S1,,1\n",
            )
        )

    assert raised.value.messages == ["sales.csv:4: units: value is required"]


def test_command_prints_the_summary(tmp_path):
    out = StringIO()

    call_command("import_retail", str(bundle(tmp_path)), stdout=out)

    assert "sales.csv: 3 rows -> DailySales, 3 inserted or changed" in out.getvalue()
    assert "total: 17 lines read" in out.getvalue()


def test_command_prints_errors_to_stderr_and_fails(tmp_path):
    err = StringIO()
    directory = bundle(
        tmp_path, sales_csv="date,sku,location,units,unit_price\n2024-01-01,ABC,S1,5,1\n"
    )

    with pytest.raises(CommandError, match="nothing written"):
        call_command("import_retail", str(directory), stdout=StringIO(), stderr=err)

    assert "sales.csv:2: sku: unknown SKU 'ABC'" in err.getvalue()
    assert Product.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_writing_the_last_file_rolls_back_the_whole_bundle(tmp_path, monkeypatch):
    """Real commits (no test transaction around): the bulk writes of the raw cursors are
    inside the bundle's transaction too."""

    def fail(frame, progress):
        raise RuntimeError("disk full")

    monkeypatch.setitem(master_data._WRITERS, "promotions.csv", fail)

    with pytest.raises(RuntimeError, match="disk full"):
        bundle_import(directory=bundle(tmp_path))

    assert {name: len(rows) for name, rows in snapshot().items()} == dict.fromkeys(
        (model.__name__ for model in ALL_MODELS), 0
    )
