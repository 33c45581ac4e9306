"""Inventory discrepancy: book-stock changes that receipts, sales and returns do not explain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors.base import FINDING_COLUMNS, MissingInput
from anomalies.detectors.inventory_discrepancy import detect_inventory_discrepancy
from tests.anomalies.detectors.builders import AS_OF, Series, day, make_input


def test_duplicate_receipt_posting_fires():
    # 48 units received, but the posting ran twice: book stock rose by 96.
    series = Series(1, [2, 3, 0], on_hand=[42, 40, 136], price=2.5)
    data = make_input([series], receipts=[(1, 1, day(0), 48)])

    found = detect_inventory_discrepancy(data, {})

    assert len(found) == 1
    row = found.iloc[0]
    assert row.anomaly_type == "inventory_discrepancy"
    assert row.start_date == row.end_date == pd.Timestamp(AS_OF)
    assert row.expected_value == 88 and row.actual_value == 136
    assert row.value_at_risk == 120.0
    assert row.explanation == (
        "Book stock rose by 48 units more than receipts, sales and returns explain "
        "(40 → 136; received 48, sold 0); £120 unaccounted for."
    )
    assert row.details["unexplained_units"] == 48


def test_recorded_cycle_count_adjustment_is_explained():
    # Book 40 → 12 with 3 sold: 25 units gone, but a count recorded in ShelfWatch wrote them off.
    series = Series(1, [2, 3, 3], on_hand=[42, 40, 12], price=2.5)

    unrecorded = detect_inventory_discrepancy(make_input([series]), {})
    recorded = detect_inventory_discrepancy(
        make_input([series], adjustments=[(1, 1, day(0), -25)]), {}
    )

    assert unrecorded.iloc[0].details["unexplained_units"] == -25
    assert recorded.empty


def test_write_down_ending_an_improbable_zero_run_is_the_ghost_stock_count():
    # Sold ~6 a day for weeks, then nothing for 10 days with 30 on the books; today a count
    # writes the book down to 0. That resolves ghost stock: not a new discrepancy.
    sales = [6, 5, 7, 6, 6, 5, 7] * 8 + [0] * 11
    stock = [500 - sum(sales[: i + 1]) for i in range(len(sales) - 11)]
    stock += [stock[-1]] * 10 + [0]
    data = make_input([Series(1, sales, on_hand=stock, price=2.0)])
    isolated = make_input(
        [Series(1, [6] * 66 + [6], on_hand=[300 - 6 * i for i in range(66)] + [0])]
    )

    assert detect_inventory_discrepancy(data, {}).empty
    assert (
        detect_inventory_discrepancy(data, {"ghost_resolution_max_p": 0})
        .iloc[0]
        .details["unexplained_units"]
        == -stock[-2]
    )
    # The same write-down without a zero run before it is a discrepancy.
    assert len(detect_inventory_discrepancy(isolated, {})) == 1


def test_minus_one_count_adjustment_does_not_fire():
    data = make_input([Series(1, [2, 3, 4], on_hand=[60, 57, 52])])

    assert detect_inventory_discrepancy(data, {}).empty


def test_movements_that_reconcile_do_not_fire():
    data = make_input(
        [Series(1, [5, 6, 7], on_hand=[50, 44, 61], returned=[0, 0, 0])],
        receipts=[(1, 1, day(0), 24)],
    )

    assert detect_inventory_discrepancy(data, {}).empty


def test_shrinkage_fires_and_names_the_sales():
    data = make_input([Series(1, [5, 6, 7], on_hand=[100, 94, 57], price=4.0)])

    found = detect_inventory_discrepancy(data, {})

    assert "fell by 30 units" in found.iloc[0].explanation
    assert "sold 7" in found.iloc[0].explanation
    assert found.iloc[0].value_at_risk == 120.0


def test_returns_go_back_to_stock_unless_configured_otherwise():
    data = make_input([Series(1, [5, 5, 5], on_hand=[50, 45, 50], returned=[0, 0, 10])])

    assert detect_inventory_discrepancy(data, {}).empty
    found = detect_inventory_discrepancy(data, {"returns_restock": False})
    assert found.iloc[0].details["unexplained_units"] == 10


def test_written_down_to_zero_is_called_out():
    data = make_input([Series(1, [0, 0, 0], on_hand=[30, 30, 0])])

    found = detect_inventory_discrepancy(data, {})

    assert found.iloc[0].explanation.endswith("(written down to 0: a stock count?).")


def test_store_without_any_sales_on_an_open_day_is_one_location_finding():
    items = [
        Series(i, [5, 5, 0], on_hand=[50, 45, 40], price=2.0, location_id=1) for i in range(1, 6)
    ] + [Series(9, [5, 5, 5], on_hand=[50, 45, 40], location_id=2)]
    found = detect_inventory_discrepancy(make_input(items), {})

    assert len(found) == 1
    row = found.iloc[0]
    assert pd.isna(row.product_id) and row.location_id == 1
    assert row.explanation.startswith(
        "No sales were recorded at this store on an open day, yet book stock fell by 25 units "
        "across 5 items (£50.00 at shelf price)"
    )


def test_needs_book_stock_for_yesterday():
    data = make_input([Series(1, [2, 3, 0], on_hand=[42, 40, 136])])
    gap = type(data)(
        as_of=data.as_of,
        sales=data.sales,
        products=data.products,
        locations=data.locations,
        stock=data.stock[data.stock.date != day(1)],
    )

    assert detect_inventory_discrepancy(gap, {}).empty


def test_missing_book_stock_raises_missing_input():
    data = make_input([Series(1, [1, 2, 3])], with_stock=False)

    with pytest.raises(MissingInput):
        detect_inventory_discrepancy(data, {})


def test_findings_follow_the_contract():
    found = detect_inventory_discrepancy(
        make_input([Series(1, np.zeros(3), on_hand=[10, 10, 60])]), {}
    )

    assert list(found.columns) == FINDING_COLUMNS
    assert str(found.product_id.dtype) == "Int64"
    assert found.severity.tolist() == ["critical"]  # 50 units is 10x the tolerance
