"""Inventory discrepancy: book-stock changes that receipts, sales and returns do not explain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors.base import FINDING_COLUMNS, MissingInput
from anomalies.detectors.inventory_discrepancy import detect_inventory_discrepancy
from tests.anomalies.detectors.builders import AS_OF, Series, day, make_input, poisson_units

HISTORY_DAYS = 120


def reconciled(
    units: np.ndarray, start: int, corrections: dict[int, int] | None = None
) -> np.ndarray:
    """Book stock that sales explain exactly, plus unrecorded ``corrections`` {column: units}."""
    corrections = corrections or {}
    delta = -np.asarray(units, dtype=int)
    delta[0] = 0
    for col, units_changed in corrections.items():
        delta[col] += units_changed
    return start + np.cumsum(delta)


def store(
    n_items: int,
    *,
    rate_per_day: float,
    sizes: tuple[int, int],
    volumes: tuple[int, int],
    seed: int,
    location_id: int = 1,
    today: dict[int, int] | None = None,
) -> list[Series]:
    """A store whose items get routine unrecorded count corrections of ``sizes`` units (either
    sign) at ``rate_per_day``, holding ``volumes`` units; ``today``: {product: units} changes
    on the as-of day."""
    rng = np.random.default_rng(seed)
    out = []
    for item in range(1, n_items + 1):
        units = poisson_units(3, HISTORY_DAYS, seed=seed * 100 + item)
        days = np.flatnonzero(rng.random(HISTORY_DAYS - 1) < rate_per_day)
        corrections = {
            int(c): int(rng.choice([-1, 1]) * rng.integers(sizes[0], sizes[1] + 1))
            for c in days
            if c > 0
        }
        if today and item in today:
            corrections[HISTORY_DAYS - 1] = today[item]
        start = int(rng.integers(*volumes)) + 3 * HISTORY_DAYS
        on_hand = reconciled(units, start, corrections)
        out.append(Series(item, units, on_hand=on_hand, location_id=location_id))
    return out


def test_duplicate_receipt_posting_fires():
    # 48 units received, but the posting ran twice: book stock rose by 96.
    units = poisson_units(2, 60, seed=3)
    on_hand = reconciled(units, 200)
    on_hand[-1] += 96
    series = Series(1, units, on_hand=on_hand, price=2.5)
    data = make_input([series], receipts=[(1, 1, day(0), 48)])

    found = detect_inventory_discrepancy(data, {})

    assert len(found) == 1
    row = found.iloc[0]
    assert row.anomaly_type == "inventory_discrepancy"
    assert row.start_date == row.end_date == pd.Timestamp(AS_OF)
    assert row.actual_value == on_hand[-1] and row.expected_value == on_hand[-1] - 48
    assert row.value_at_risk == 120.0
    assert row.explanation.endswith(
        "exactly the 48 units received on 31 Mar, a receipt posted twice? "
        "£120 of stock only on the books."
    )
    assert row.details["unexplained_units"] == 48
    assert row.details["subtype"] == "duplicate_receipt"
    assert row.details["receipt_date"] == "2024-03-31"
    assert row.p_value < 1e-4 and row.tests == 1


def test_receipt_posted_again_days_later_is_a_duplicate_receipt():
    units = poisson_units(2, 60, seed=4)
    on_hand = reconciled(units, 200)
    on_hand[-4:] += 24  # received 3 days ago (explained) ...
    on_hand[-1] += 24  # ... and posted again today
    data = make_input([Series(1, units, on_hand=on_hand)], receipts=[(1, 1, day(3), 24)])

    found = detect_inventory_discrepancy(data, {})

    assert found.iloc[0].details["subtype"] == "duplicate_receipt"
    assert found.iloc[0].details["receipt_date"] == day(3).date().isoformat()


def test_routine_corrections_that_grow_with_volume_are_learned_not_flagged():
    # Items holding 100-400 units get 3-6 unit count corrections about once a month: a 5-unit
    # correction today is ordinary for them, a 40-unit loss is not.
    items = store(
        20, rate_per_day=1 / 30, sizes=(3, 6), volumes=(100, 400), seed=1, today={1: -5, 2: -40}
    )

    found = detect_inventory_discrepancy(make_input(items), {})

    assert found.product_id.tolist() == [2]
    assert found.iloc[0].tests == 20


def test_small_write_off_is_flagged_where_corrections_are_rare_and_small():
    # The same 5-unit loss where book stock is otherwise corrected by 1-2 units a few times a
    # year is improbable.
    items = store(
        20, rate_per_day=1 / 100, sizes=(1, 2), volumes=(20, 60), seed=2, today={1: -5, 2: -1}
    )

    found = detect_inventory_discrepancy(make_input(items), {})

    assert found.product_id.tolist() == [1]
    assert found.iloc[0].p_value < 1e-3


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

    assert found.iloc[0].explanation.startswith(
        "Book stock fell by 37 units (94 → 57); receipts, sales and returns explain 87 "
        "(received 0, sold 7): 30 units fewer than explained"
    )
    assert "sold 7" in found.iloc[0].explanation
    assert found.iloc[0].value_at_risk == 120.0


def test_returns_go_back_to_stock_unless_configured_otherwise():
    units = np.full(60, 5)
    on_hand = reconciled(units, 400)
    on_hand[-1] += 10
    data = make_input([Series(1, units, on_hand=on_hand, returned=np.r_[np.zeros(59), [10]])])

    assert detect_inventory_discrepancy(data, {}).empty
    found = detect_inventory_discrepancy(data, {"returns_restock": False})
    assert found.iloc[0].details["unexplained_units"] == 10


def test_written_down_to_zero_is_called_out():
    data = make_input([Series(1, [0, 0, 0], on_hand=[30, 30, 0])])

    found = detect_inventory_discrepancy(data, {})

    assert found.iloc[0].explanation.endswith("(written down to 0: a stock count?).")


def test_store_without_any_sales_on_an_open_day_is_one_location_finding():
    units = np.r_[np.full(59, 5), [0]]
    on_hand = reconciled(np.full(60, 5), 400)  # 5 sold, but no sales recorded today
    items = [Series(i, units, on_hand=on_hand, price=2.0, location_id=1) for i in range(1, 6)] + [
        Series(9, np.full(60, 5), on_hand=on_hand, location_id=2)
    ]
    found = detect_inventory_discrepancy(make_input(items), {})

    assert len(found) == 1
    row = found.iloc[0]
    assert pd.isna(row.product_id) and row.location_id == 1
    assert row.tests == 1 and row.p_value < 1e-6
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
    assert str(found.p_value.dtype) == "float64" and str(found.tests.dtype) == "int64"
    assert found.score.iloc[0] == pytest.approx(-np.log10(found.p_value.iloc[0]))
    assert found.severity.tolist() == ["critical"]  # 50 units: no benign correction is that big


def test_empty_findings_carry_the_multiplicity_columns():
    found = detect_inventory_discrepancy(
        make_input([Series(1, [2, 3, 4], on_hand=[60, 57, 53])]), {}
    )

    assert found.empty and list(found.columns) == FINDING_COLUMNS
