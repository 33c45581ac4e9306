"""Ghost stock: book stock on hand while sales stopped far longer than demand explains."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomalies.detectors.base import FINDING_COLUMNS, MissingInput
from anomalies.detectors.ghost_stock import DEFAULT_PARAMS, detect_ghost_stock, zero_run_test
from anomalies.detectors.grid import build_grid
from tests.anomalies.detectors.builders import AS_OF, Series, day, make_input, poisson_units


def fast_mover_with_zero_days(zero_days: int, seed: int = 1) -> np.ndarray:
    units = np.r_[poisson_units(8, 60, seed), np.zeros(zero_days, dtype=int)]
    units[-zero_days - 1] = max(units[-zero_days - 1], 1)  # the last sale is right before the run
    return units


def test_fast_mover_without_sales_for_four_days_is_ghost_stock():
    data = make_input([Series(1, fast_mover_with_zero_days(4), on_hand=40, price=2.5)])

    found = detect_ghost_stock(data, {})

    assert len(found) == 1
    row = found.iloc[0]
    assert row.anomaly_type == "ghost_stock"
    assert row.start_date == day(3) and row.end_date == pd.Timestamp(AS_OF)
    assert row.value_at_risk == 100.0
    assert row.actual_value == 0 and row.expected_value > 25
    assert row.explanation.startswith("No sales for 4 days (since 28 Mar) although 7.")
    assert "units/day were expected" in row.explanation
    assert "40 units on hand (£100 at risk)" in row.explanation
    assert row.severity == "critical"
    assert row.details["zero_days"] == 4 and row.details["on_hand"] == 40
    assert row.details["p_zero_run"] < DEFAULT_PARAMS["min_p"]


def test_zero_sales_run_on_slow_mover_is_not_flagged():
    units = np.r_[poisson_units(0.2, 80, seed=2), np.zeros(10, dtype=int)]
    units[-11] = 1
    data = make_input([Series(1, units, on_hand=5)])

    assert detect_ghost_stock(data, {}).empty


def test_slow_mover_silent_for_months_is_flagged():
    units = np.r_[poisson_units(0.5, 60, seed=3), np.zeros(60, dtype=int)]
    units[-61] = 1
    data = make_input([Series(1, units, on_hand=5)])

    found = detect_ghost_stock(data, {})

    assert len(found) == 1
    assert "No sales for 60 days" in found.iloc[0].explanation


def test_closed_days_do_not_count_as_zero_sales_days():
    data = make_input(
        [Series(1, fast_mover_with_zero_days(4), on_hand=40)],
        calendar=[(day(i), None, "Refurbishment (closed)", True) for i in (1, 2, 3)],
    )

    assert detect_ghost_stock(data, {}).empty


def test_stockout_is_not_ghost_stock():
    units = fast_mover_with_zero_days(6)
    on_hand = np.r_[np.full(60, 40), np.zeros(6, dtype=int)]
    data = make_input([Series(1, units, on_hand=on_hand)])

    assert detect_ghost_stock(data, {}).empty


def test_days_out_of_stock_in_the_run_are_not_evidence():
    # Sold out for 5 days, restocked yesterday: one day without sales proves nothing.
    units = fast_mover_with_zero_days(6)
    on_hand = np.r_[np.full(60, 40), np.zeros(5, dtype=int), [48]]
    data = make_input([Series(1, units, on_hand=on_hand)])

    assert detect_ghost_stock(data, {}).empty


def test_zero_run_during_a_promotion_is_more_suspicious():
    units = np.r_[poisson_units(2, 80, seed=4), np.zeros(4, dtype=int)]
    units[-5] = 2
    plain = make_input([Series(1, units, on_hand=30)])
    promoted = make_input(
        [Series(1, units, on_hand=30)], promotions=[(1, None, day(3), day(0), 30.0)]
    )

    assert detect_ghost_stock(plain, {}).empty
    found = detect_ghost_stock(promoted, {})
    assert len(found) == 1
    assert "4 days on promotion" in found.iloc[0].explanation


def test_receipts_during_the_run_are_noted():
    data = make_input(
        [Series(1, fast_mover_with_zero_days(5), on_hand=np.r_[np.full(63, 16), [40, 40]])],
        receipts=[(1, 1, day(1), 24)],
    )

    found = detect_ghost_stock(data, {})

    assert "24 units received since, none sold" in found.iloc[0].explanation
    assert found.iloc[0].details["units_received_in_run"] == 24


def test_short_history_is_not_judged():
    units = np.r_[poisson_units(8, 14, seed=5), np.zeros(5, dtype=int)]
    units[-6] = 3
    data = make_input([Series(1, units, on_hand=40)])

    assert detect_ghost_stock(data, {}).empty


def test_missing_book_stock_raises_missing_input():
    data = make_input([Series(1, fast_mover_with_zero_days(4))], with_stock=False)

    with pytest.raises(MissingInput):
        detect_ghost_stock(data, {})


def test_empty_book_stock_raises_missing_input():
    data = make_input([Series(1, fast_mover_with_zero_days(4))])
    empty = type(data)(
        as_of=data.as_of,
        sales=data.sales,
        products=data.products,
        locations=data.locations,
        stock=data.stock.iloc[:0],
    )

    with pytest.raises(MissingInput):
        detect_ghost_stock(empty, {})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.05, 30.0),
    zero_days=st.integers(0, 40),
    on_hand=st.integers(-5, 200),
    seed=st.integers(0, 1000),
)
def test_findings_respect_the_contract_and_need_stock_on_hand(rate, zero_days, on_hand, seed):
    units = np.r_[poisson_units(rate, 60, seed), np.zeros(zero_days, dtype=int)]
    data = make_input([Series(1, units, on_hand=on_hand), Series(2, units[::-1], on_hand=10)])

    found = detect_ghost_stock(data, {})

    assert list(found.columns) == FINDING_COLUMNS
    assert str(found["p_value"].dtype) == "float64" and str(found["tests"].dtype) == "int64"
    assert str(found["start_date"].dtype) == "datetime64[ns]"
    assert str(found["product_id"].dtype) == "Int64"
    assert (found.start_date <= found.end_date).all()
    assert (found.end_date <= pd.Timestamp(AS_OF)).all()
    assert found.severity.isin(["info", "warning", "critical"]).all()
    for details in found.details:
        json.dumps(details, allow_nan=False)
    if on_hand <= 0:
        assert 1 not in found.product_id.tolist()


def test_a_run_is_as_sure_as_its_store_has_items_tested_today():
    """The chance that some item of the store shows such a run by luck (Bonferroni over the
    items tested at that location), not the item's own p, sets how sure a finding is."""

    def ghost() -> np.ndarray:
        units = np.r_[poisson_units(2, 60, seed=5), np.zeros(3, dtype=int)]
        units[-4] = max(units[-4], 1)
        return units

    def quiet(seed: int) -> np.ndarray:
        """A slow mover whose three days without a sale are ordinary: tested, not flagged."""
        units = np.r_[poisson_units(0.4, 60, seed=seed), np.zeros(3, dtype=int)]
        units[-4] = 1
        return units

    # Fifteen quiet items, not twenty: a store of twenty sellers silent today counts as closed.
    quiet_items = [(10 + k, quiet(k)) for k in range(15)]
    alone = make_input([Series(1, ghost(), on_hand=10)])
    same_store = make_input(
        [Series(1, ghost(), on_hand=10)] + [Series(p, u, on_hand=10) for p, u in quiet_items]
    )
    other_store = make_input(
        [Series(1, ghost(), on_hand=10)]
        + [Series(p, u, on_hand=10, location_id=2) for p, u in quiet_items]
    )
    params = {"min_p": 0.01}

    def probability(data) -> tuple[float, float]:
        found = detect_ghost_stock(data, params)
        assert found["product_id"].tolist() == [1]
        details = found.iloc[0].details
        return details["p_zero_run"], details["probability"]

    p0, sure = probability(alone)
    assert sure == pytest.approx(1 - p0, abs=1e-4)
    p0, sure = probability(same_store)
    assert sure == pytest.approx(1 - 16 * p0, abs=1e-4)  # the item and the 15 quiet ones
    assert sure < 0.95
    p0, sure = probability(other_store)
    assert sure == pytest.approx(1 - p0, abs=1e-4)  # per store: other stores do not count


def heavy_tailed_units(zero_days: int, seed: int = 1) -> np.ndarray:
    """70 days of negative-binomial demand (size 1.5, mean 3), then ``zero_days`` without a
    sale."""
    rng = np.random.default_rng(seed)
    units = np.r_[rng.poisson(rng.gamma(1.5, 2.0, 70)), np.zeros(zero_days, dtype=int)]
    units[-zero_days - 1] = max(units[-zero_days - 1], 1)
    return units


def test_natural_zero_run_of_heavy_tailed_item_is_judged_with_rate_uncertainty():
    # Six quiet days look improbable with the rate and dispersion taken as known (the
    # plug-in probability is below min_p), not once their uncertainty is integrated out.
    data = make_input([Series(1, heavy_tailed_units(6), on_hand=40)])
    plug_in = zero_run_test(build_grid(data), DEFAULT_PARAMS)

    assert np.exp(plug_in.log_p0[0]) < DEFAULT_PARAMS["min_p"]
    assert detect_ghost_stock(data, {}).empty
    # A longer run still is found, with an honest (larger) probability than the plug-in one.
    longer = make_input([Series(1, heavy_tailed_units(9), on_hand=40)])
    found = detect_ghost_stock(longer, {})
    assert len(found) == 1
    assert found.p_value.iloc[0] > np.exp(
        zero_run_test(build_grid(longer), DEFAULT_PARAMS).log_p0[0]
    )


def test_findings_carry_the_zero_run_probability_and_the_items_tested():
    def quiet(seed: int) -> np.ndarray:
        units = np.r_[poisson_units(0.4, 62, seed=seed), np.zeros(3, dtype=int)]
        units[-4] = 1
        return units

    items = [Series(1, fast_mover_with_zero_days(5), on_hand=40)] + [
        Series(10 + k, quiet(k), on_hand=10) for k in range(3)
    ]

    found = detect_ghost_stock(make_input(items), {})

    assert found.product_id.tolist() == [1]
    row = found.iloc[0]
    assert row.p_value == row.details["p_zero_run"] and row.p_value < DEFAULT_PARAMS["min_p"]
    assert row.tests == 4  # the item and the three quiet ones


def test_phantom_units_of_a_duplicated_receipt_are_not_ghost_stock():
    # 24 received a week ago but posted twice: once the real units sold out, 24 phantom units
    # stay on the books. That is the discrepancy inventory_discrepancy reports, not ghost
    # stock; the same 24 units on the books without a duplicate posting are ghost stock.
    units = fast_mover_with_zero_days(6)
    received = np.zeros(len(units), dtype=int)
    received[-8] = 24
    duplicate = received.copy()
    change = received + duplicate - units
    change[0] = 0
    book = np.cumsum(change)
    book += 24 - book[-1]  # 24 on the books at the end, the real units all sold
    plain_book = book.copy()
    plain_book[:-8] += 24  # no duplicate: the same 24 units are just not selling
    receipts = [(1, 1, day(7), 24)]

    duplicated = make_input([Series(1, units, on_hand=book)], receipts=receipts)
    plain = make_input([Series(1, units, on_hand=plain_book)], receipts=receipts)

    assert detect_ghost_stock(duplicated, {}).empty
    assert len(detect_ghost_stock(duplicated, {"duplicate_lookback_days": 0})) == 1
    assert detect_ghost_stock(plain, {}).product_id.tolist() == [1]


def test_units_received_after_a_stockout_and_never_sold_are_evidence():
    # Sold out for a week, restocked 5 days ago, not one sale since: the delivered units
    # are on the books and the days after the delivery are evidence.
    units = fast_mover_with_zero_days(12)
    on_hand = np.r_[np.full(60, 40), np.zeros(7, dtype=int), np.full(5, 48)]
    data = make_input([Series(1, units, on_hand=on_hand)], receipts=[(1, 1, day(4), 48)])

    found = detect_ghost_stock(data, {})

    assert len(found) == 1
    assert found.iloc[0].details["zero_days"] == 5
    assert "48 units received since, none sold" in found.iloc[0].explanation
