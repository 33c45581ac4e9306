"""Demand spikes and drops against the weekday's expected level."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors import demand
from anomalies.detectors.base import FINDING_COLUMNS
from anomalies.detectors.demand import detect_demand_drop, detect_demand_spike
from anomalies.detectors.ghost_stock import detect_ghost_stock
from anomalies.detectors.grid import build_grid, usable_days
from tests.anomalies.detectors.builders import AS_OF, Series, day, make_input, poisson_units

LOOSE_DROP = {"drop_max_p": 1e-4, "drop_min_expected_units": 5.0}


def history(rate: float, days: int = 70, seed: int = 0) -> np.ndarray:
    return poisson_units(rate, days, seed)


def with_today(units: np.ndarray, today: int) -> np.ndarray:
    out = units.copy()
    out[-1] = today
    return out


def store(n_items: int = 30, rate: float = 5.0, days: int = 70) -> list[Series]:
    """A location of ordinary items (the population a new product is compared with)."""
    return [Series(100 + i, history(rate, days, seed=100 + i)) for i in range(n_items)]


# Spikes


def test_spike_far_above_the_weekday_level_is_flagged():
    data = make_input([Series(1, with_today(history(10), 60), price=2.0)])

    found = detect_demand_spike(data, {})

    assert len(found) == 1
    row = found.iloc[0]
    assert row.anomaly_type == "demand_spike"
    assert row.start_date == row.end_date == pd.Timestamp(AS_OF)
    assert row.actual_value == 60 and 8 < row.expected_value < 12
    assert row.score >= 4
    assert row.explanation.startswith("Sold 60 units, ")
    assert "for a Sunday" in row.explanation and "extra" in row.explanation
    assert row.value_at_risk == (60 - row.expected_value) * 2.0


def test_ordinary_busy_day_is_not_a_spike():
    data = make_input([Series(1, with_today(history(10), 18))])

    assert detect_demand_spike(data, {}).empty


def _after_empty_shelf(today: int) -> list[Series]:
    """6 a day for 60 days, 25 days of no sales with 40 units on the books (an empty shelf
    until a count), 6 a day for 15 days, then ``today``."""
    units = np.r_[history(6, 60, seed=3), np.zeros(25), history(6, 15, seed=40), [today]]
    return [Series(1, units, on_hand=np.full(len(units), 40))]


def test_empty_shelf_days_are_left_out_of_the_spike_baseline():
    slow = poisson_units(0.3, 101, seed=5)  # natural zero runs of a slow item stay in
    data = make_input([*_after_empty_shelf(6), Series(2, slow, on_hand=np.full(101, 40))])
    grid = build_grid(data)

    usable = demand._spike_usable(grid, demand.DEFAULT_PARAMS)
    ordinary = usable_days(grid) & (np.arange(grid.n_days) < grid.last - 2)

    run = slice(grid.n_days - 41, grid.n_days - 16)
    assert grid.units[0, run].sum() == 0 and ordinary[0, run].all()
    assert not usable[0, run].any()
    np.testing.assert_array_equal(usable[0, : run.start], ordinary[0, : run.start])
    np.testing.assert_array_equal(usable[1], ordinary[1])


def test_spike_after_an_empty_shelf_is_judged_against_the_demand_before_it():
    # 24 on a 6-a-day item is a spike; with the empty shelf in its baseline the item looked
    # half as busy and far lumpier, and the spike was not improbable.
    data = make_input(_after_empty_shelf(24))

    found = detect_demand_spike(data, {})
    assert found.product_id.tolist() == [1]
    assert found.iloc[0].p_value < 1e-4
    assert 4.5 < found.iloc[0].expected_value < 7.5
    before = detect_demand_spike(data, {"spike_empty_run_p": 0.0, "spike_report_p": 1.0})
    assert before.iloc[0].p_value > 1e-3


def test_promoted_spike_is_not_a_demand_spike():
    data = make_input(
        [Series(1, with_today(history(10), 60))], promotions=[(1, None, day(2), day(0), 25.0)]
    )

    assert detect_demand_spike(data, {}).empty


def test_spike_on_a_calendar_event_is_not_flagged():
    data = make_input(
        [Series(1, with_today(history(10), 60))], calendar=[(day(0), 1, "Local festival", False)]
    )

    assert detect_demand_spike(data, {}).empty


def test_lumpy_item_is_judged_against_its_usual_order_size():
    # Bought by the case of 24 about once a week: another case is not a spike.
    units = np.zeros(70, dtype=int)
    units[::7] = 24
    units[-1] = 24
    data = make_input([Series(1, units)])

    assert detect_demand_spike(data, {}).empty


def test_cold_start_giant_order_is_flagged_with_the_quantity():
    new_product = Series(1, np.r_[np.zeros(69, dtype=int), [80995]], price=2.08)
    data = make_input([*store(), new_product])

    found = detect_demand_spike(data, {})

    assert found.product_id.tolist() == [1]
    row = found.iloc[0]
    assert row.details["rule"] == "cold_start"
    assert row.severity == "critical"
    assert row.explanation.startswith("First sale of this item here: 80,995 units in one day")
    assert row.value_at_risk > 160_000
    json.dumps(row.details, allow_nan=False)  # stored as JSON: no NaN allowed


def test_cold_start_ordinary_first_day_is_not_flagged():
    new_product = Series(1, np.r_[np.zeros(69, dtype=int), [12]])
    data = make_input([*store(), new_product])

    assert detect_demand_spike(data, {}).empty


def test_item_with_little_history_is_compared_with_the_store():
    young = Series(1, np.r_[np.zeros(66, dtype=int), [3, 0, 4, 5000]])
    data = make_input([*store(), young])

    found = detect_demand_spike(data, {})

    assert found.product_id.tolist() == [1]
    assert found.iloc[0].explanation.startswith("Only 2 earlier selling days; 5,000 units today")


# Drops


def test_drop_far_below_the_expected_level_is_flagged():
    data = make_input([Series(1, with_today(history(20), 1), on_hand=100, price=3.0)])

    # A one-day drop clears the looser test of the first release; the defaults ask for a
    # 1-in-a-million shortfall worth 10 units (one day of ~20 is not enough on its own).
    found = detect_demand_drop(data, LOOSE_DROP)
    assert detect_demand_drop(data, {}).empty

    assert len(found) == 1
    row = found.iloc[0]
    assert row.anomaly_type == "demand_drop"
    assert row.start_date == row.end_date == pd.Timestamp(AS_OF)
    assert row.actual_value == 1
    assert row.explanation.startswith("Sold 1 unit on this Sunday, 9")
    assert f"below the expected {row.expected_value:.0f} (chance about 1 in " in row.explanation
    assert "with 100 on hand" in row.explanation
    assert row.details["p_tail"] < 1e-4


def test_drop_over_several_days_is_one_finding_from_its_first_day():
    units = np.r_[history(12, 60), [1, 0, 2, 1]]
    data = make_input([Series(1, units, on_hand=100)])

    found = detect_demand_drop(data, {})

    assert len(found) == 1
    assert found.iloc[0].start_date == day(3)
    assert "Sold 4 units over 4 days since 28 Mar" in found.iloc[0].explanation


def test_closed_day_is_not_a_demand_drop():
    data = make_input(
        [Series(1, with_today(history(20), 0), on_hand=100)],
        calendar=[(day(0), None, "Christmas Day (closed)", True)],
    )

    assert detect_demand_drop(data, {}).empty


def test_stockout_is_neither_a_drop_nor_ghost_stock():
    units = with_today(history(20), 0)
    on_hand = np.r_[np.full(69, 50), [0]]
    data = make_input([Series(1, units, on_hand=on_hand)])

    assert detect_demand_drop(data, {}).empty
    assert detect_ghost_stock(data, {}).empty


def test_zero_sales_run_with_stock_on_hand_is_left_to_ghost_stock():
    units = np.r_[history(12, 60), [0, 0, 0]]
    units[-4] = max(units[-4], 1)
    on_shelf = make_input([Series(1, units, on_hand=100)])
    # The same run without book stock: nothing says the shelf holds any, so it is a drop.
    no_stock = make_input([Series(1, units)], with_stock=False)

    assert detect_demand_drop(on_shelf, {}).empty
    assert len(detect_ghost_stock(on_shelf, {})) == 1  # reported once, as ghost stock
    found = detect_demand_drop(no_stock, {})
    assert len(found) == 1
    assert found.iloc[0].explanation.startswith("Sold 0 units over 3 days since 29 Mar")


def test_sold_out_during_the_day_is_not_a_drop():
    units = with_today(history(20), 2)
    on_hand = np.r_[np.full(69, 50), [0]]
    data = make_input([Series(1, units, on_hand=on_hand)])

    assert detect_demand_drop(data, {}).empty


def test_slow_item_cannot_drop():
    data = make_input([Series(1, with_today(history(2), 0))], with_stock=False)

    assert detect_demand_drop(data, {}).empty


def test_dip_after_a_promotion_is_not_a_drop():
    data = make_input(
        [Series(1, with_today(history(20), 1), on_hand=100)],
        promotions=[(1, None, day(8), day(1), 30.0)],
    )

    assert detect_demand_drop(data, {}).empty


def test_findings_follow_the_contract():
    data = make_input(
        [Series(1, with_today(history(10), 60)), Series(2, with_today(history(20), 1))]
    )

    extra = ["p_value", "tests"]
    for found in (detect_demand_spike(data, {}), detect_demand_drop(data, LOOSE_DROP)):
        assert [c for c in found.columns if c not in extra] == [
            c for c in FINDING_COLUMNS if c not in extra
        ]
        assert len(found) == 1
        assert str(found.product_id.dtype) == "Int64"
        assert found.p_value.dtype == "float64" and found.tests.dtype == "int64"
        assert 0 < found.p_value.iloc[0] <= 0.01 and found.tests.iloc[0] == 2


# Spikes: the window likelihood (issue 11)


def nb_units(mean: float, size: float, days: int, seed: int) -> np.ndarray:
    """Daily negative-binomial units (NB2 with ``size``; one fixed seed per test)."""
    rng = np.random.default_rng(seed)
    return rng.poisson(rng.gamma(size, mean / size, days))


def nb_store(n_items: int = 30, mean: float = 5.0, size: float = 5.0, days: int = 70):
    return [Series(100 + i, nb_units(mean, size, days, 100 + i)) for i in range(n_items)]


def test_four_fold_two_day_spike_on_a_medium_mover_is_found_with_a_small_p():
    units = nb_units(5.0, 5.0, 70, seed=1)
    units[-2:] = 20  # 4x the level, yesterday and today
    data = make_input([*nb_store(), Series(1, units)])

    found = detect_demand_spike(data, {})

    row = found.set_index("product_id").loc[1]
    assert row.p_value < 1e-6
    assert row.details["window_days"] == 2 and row.start_date == day(1)
    assert row.actual_value == 40 and 8 < row.expected_value < 13
    assert row.explanation.startswith("Sold 40 units, ")
    assert "over 2 days since 30 Mar" in row.explanation
    assert row.tests == 31  # every item of the location with its own history


def test_natural_bursts_of_heavy_tailed_items_are_not_flagged():
    # NB size 0.7: a day at the item's own 99th percentile is a burst that happens every
    # hundred days. Judged at a Poisson (or pooled, lighter) dispersion, every one would be
    # a spike; at the item's own dispersion, it is not.
    from scipy import stats

    mean, size = 3.0, 0.7
    burst = stats.nbinom.ppf(0.99, size, size / (size + mean))
    series = []
    for i in range(40):
        units = nb_units(mean, size, 120, seed=200 + i)  # the history a run loads
        units[-3:-1] = 0  # only the one-day window qualifies
        units[-1] = burst
        series.append(Series(1 + i, units))
    data = make_input([*nb_store(mean=4.0, size=5.0, days=120), *series])

    found = detect_demand_spike(data, {})

    # At the true dispersion each p is about 0.03 (0.01 x 3 windows). Estimated from four
    # months, a few fall under the 0.01 candidate cut, none near what a false-discovery
    # control over 70 items needs (about 0.05 / 70); ignoring the tails flags all 40.
    flagged = found[found.product_id <= 40]
    assert len(flagged) <= 6
    assert (flagged.p_value > 1e-3).all()
    assert stats.poisson.sf(burst - 1, mean) < 1e-3  # what a Poisson model would say


def test_promotions_raise_the_expected_level_instead_of_being_flagged():
    # The location's items sold three times their level on past promotions.
    promotions, series = [], []
    for i in range(20):
        units = nb_units(10.0, 10.0, 70, seed=300 + i)
        units[-40:-33] *= 3
        units[-20:-13] *= 3
        series.append(Series(1 + i, units))
        promotions += [(1 + i, None, day(39), day(33), 20.0), (1 + i, None, day(19), day(13), 20.0)]
    target = series[0].units.copy()
    target[-1] = 32  # three times the level of 10
    series[0] = Series(1, target)
    promoted = make_input(series, promotions=[*promotions, (1, None, day(0), day(0), 20.0)])
    ordinary = make_input(series, promotions=promotions)

    assert 1 not in detect_demand_spike(promoted, {}).product_id.tolist()
    assert 1 in detect_demand_spike(ordinary, {}).product_id.tolist()

    target[-1] = 120  # twelve times: more than any promotion explains
    series[0] = Series(1, target)
    spiked = make_input(series, promotions=[*promotions, (1, None, day(0), day(0), 20.0)])
    row = detect_demand_spike(spiked, {}).set_index("product_id").loc[1]
    assert row.expected_value > 20  # the promotion's level, not the ordinary 10
    assert "promotion days at their raised level" in row.explanation


def test_spike_p_value_carries_the_bonferroni_factor_over_the_three_windows():
    units = nb_units(8.0, 5.0, 70, seed=4)
    units[-2] = 0  # yesterday below expectation: only the one-day window qualifies
    units[-1] = 35
    data = make_input([*nb_store(), Series(1, units)])

    row = detect_demand_spike(data, {}).set_index("product_id").loc[1]

    assert row.details["window_days"] == 1
    assert row.p_value == pytest.approx(3 * row.details["window_tail"])
    assert row.details["window_tail"] < row.p_value <= 0.01


def test_giant_order_on_an_item_with_history_is_one_critical_day():
    units = nb_units(5.0, 5.0, 70, seed=6)
    units[-1] = 5000
    data = make_input([*nb_store(), Series(1, units, price=2.0)])

    row = detect_demand_spike(data, {}).set_index("product_id").loc[1]

    assert row.start_date == pd.Timestamp(AS_OF) and row.details["window_days"] == 1
    assert row.severity == "critical" and "Sold 5,000 units" in row.explanation


def test_demand_drop_carries_its_tail_probability_and_family_size():
    data = make_input([*store(), Series(1, with_today(history(20), 1), on_hand=100)])

    row = detect_demand_drop(data, LOOSE_DROP).set_index("product_id").loc[1]

    assert row.p_value == row.details["p_tail"]
    assert row.tests == 31
