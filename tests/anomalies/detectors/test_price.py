"""Price anomalies: realized price far from every learned price point (or the promotion price)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from anomalies.detectors.base import FINDING_COLUMNS
from anomalies.detectors.price import detect_price_anomaly
from tests.anomalies.detectors.builders import AS_OF, Series, day, make_input

DAYS = 30


def priced(today: float, *, regular: float = 2.5, units: int = 12, days_at_today: int = 1):
    realized = np.full(DAYS, regular)
    realized[-days_at_today:] = today
    return Series(1, np.full(DAYS, units), price=regular, realized=realized)


def test_price_keyed_ten_times_too_high_without_promotion_fires():
    found = detect_price_anomaly(make_input([priced(25.0)]), {})

    assert len(found) == 1
    row = found.iloc[0]
    assert row.anomaly_type == "price_anomaly"
    assert row.start_date == row.end_date == pd.Timestamp(AS_OF)
    assert row.expected_value == 2.5 and row.actual_value == 25.0
    assert row.value_at_risk == (25.0 - 2.5) * 12
    assert row.severity == "critical"
    assert row.explanation == (
        "Sold 12 units at £25.00 each, 10.0 times the regular price £2.50 with no promotion; "
        "£270 overcharged."
    )


def test_price_keyed_ten_times_too_low_fires():
    found = detect_price_anomaly(make_input([priced(0.25)]), {})

    assert len(found) == 1
    assert "90% below the regular price £2.50 with no promotion; £27.00 not charged" in (
        found.iloc[0].explanation
    )


def test_thirty_percent_promotion_price_does_not_fire():
    data = make_input([priced(1.75)], promotions=[(1, None, day(2), day(0), 30.0)])

    assert detect_price_anomaly(data, {}).empty


def test_small_markdown_without_promotion_does_not_fire():
    assert detect_price_anomaly(make_input([priced(2.25)]), {}).empty


def test_forty_percent_off_without_promotion_at_an_item_that_never_sells_there_fires():
    found = detect_price_anomaly(make_input([priced(1.5)]), {})

    assert len(found) == 1
    row = found.iloc[0]
    assert row.severity == "warning"
    assert "40% below the regular price £2.50 with no promotion" in row.explanation
    assert row.p_value < 1e-3


def test_promotion_not_applied_at_the_till_fires_against_the_promotion_price():
    data = make_input([priced(2.5)], promotions=[(1, None, day(2), day(0), 70.0)])

    found = detect_price_anomaly(data, {})

    assert len(found) == 1
    assert "3.3 times the promotion price £0.75 (70% off £2.50)" in found.iloc[0].explanation


def test_persisting_wrong_price_keeps_its_first_day_as_start():
    found = detect_price_anomaly(make_input([priced(25.0, days_at_today=3)]), {})

    assert found.iloc[0].start_date == day(2)
    assert "anomalous on 3 selling days since 29 Mar" in found.iloc[0].explanation


def test_price_the_item_sold_at_recently_is_not_new():
    realized = np.full(DAYS, 2.5)
    realized[[10, 20, -1]] = 9.0  # e.g. a customer group with its own prices
    data = make_input([Series(1, np.full(DAYS, 12), price=2.5, realized=realized)])

    assert detect_price_anomaly(data, {}).empty


def test_many_items_marked_down_at_once_are_one_store_finding():
    items = [
        Series(i, np.full(DAYS, 10), price=2.0, realized=np.r_[np.full(DAYS - 1, 2.0), [0.5]])
        for i in range(1, 26)
    ]
    found = detect_price_anomaly(make_input(items), {})

    assert len(found) == 1
    row = found.iloc[0]
    assert pd.isna(row.product_id)
    assert row.explanation.startswith(
        "25 items sold below every price they usually sell at with no promotion"
    )
    assert row.value_at_risk == 25 * 10 * 1.5
    assert row.tests == 25 + 2
    assert row.p_value < 1e-30


def test_day_without_sales_is_not_judged():
    realized = np.full(DAYS, 2.5)
    realized[-1] = 25.0
    units = np.full(DAYS, 12)
    units[-1] = 0
    data = make_input([Series(1, units, price=2.5, realized=realized)])

    assert detect_price_anomaly(data, {}).empty


def test_findings_follow_the_contract():
    found = detect_price_anomaly(make_input([priced(25.0)]), {})

    assert list(found.columns) == FINDING_COLUMNS
    assert str(found.start_date.dtype) == "datetime64[ns]"
    assert str(found.p_value.dtype) == "float64" and str(found.tests.dtype) == "int64"
    assert isinstance(found.iloc[0].details, dict)


def test_nothing_found_still_has_the_test_columns():
    found = detect_price_anomaly(make_input([priced(2.5)]), {})

    assert found.empty and list(found.columns) == FINDING_COLUMNS


def test_tests_count_the_items_priced_at_the_location_that_day():
    others = [Series(i, np.full(DAYS, 5), price=2.5) for i in range(2, 6)]
    silent = Series(6, np.r_[np.full(DAYS - 1, 5), [0]], price=2.5)
    elsewhere = Series(7, np.full(DAYS, 5), price=2.5, location_id=2)

    found = detect_price_anomaly(make_input([priced(25.0), *others, silent, elsewhere]), {})

    assert len(found) == 1
    assert found.iloc[0].tests == 5 + 2  # five priced items, two store-level hypotheses


def tiered(today: float, *, days: int = 60) -> Series:
    """List price 2.95 with a quantity tier at 2.55 and a no-account price of 5.79, each
    coming back on separate days (as SKU 85123A of Online Retail)."""
    realized = np.full(days, 2.95)
    realized[5::7] = 2.55
    realized[3::11] = 5.79
    realized[-1] = today
    return Series(1, np.full(days, 6), price=2.95, realized=realized)


def test_recurring_tier_prices_are_not_flagged():
    for price in (2.55, 5.79):
        assert detect_price_anomaly(make_input([tiered(price)]), {}).empty


def test_daily_average_mixing_two_tiers_is_not_flagged():
    assert detect_price_anomaly(make_input([tiered(2.73)]), {}).empty


def test_forty_percent_below_the_lowest_tier_fires_against_it():
    found = detect_price_anomaly(make_input([tiered(1.53)]), {})

    assert len(found) == 1
    row = found.iloc[0]
    assert row.expected_value == 2.55
    assert "40% below the lowest price it sells at, £2.55 with no promotion" in row.explanation
    assert row.details["usual_prices"] == [2.55, 5.79]


def test_price_recurring_at_another_store_of_the_same_item_is_known():
    realized = np.full(DAYS, 2.5)
    realized[[4, 12, 20]] = 1.5  # a customer tier, on separate days
    other_store = Series(1, np.full(DAYS, 12), price=2.5, realized=realized, location_id=2)

    assert detect_price_anomaly(make_input([priced(1.5), other_store]), {}).empty


def test_one_short_run_of_a_wrong_price_does_not_make_it_a_price_point():
    realized = np.full(DAYS, 2.5)
    realized[[10, 11]] = 25.0  # a mis-key on two days in a row, then corrected
    realized[-1] = 25.0
    data = make_input([Series(1, np.full(DAYS, 12), price=2.5, realized=realized)])

    found = detect_price_anomaly(data, {})

    assert len(found) == 1 and found.iloc[0].severity == "critical"


def test_short_history_takes_the_noise_of_its_store():
    rng = np.random.default_rng(3)
    # Twenty established items whose daily prices scatter ±15 % around their list price.
    noisy = [
        Series(i, np.full(DAYS, 8), price=2.5, realized=2.5 * np.exp(rng.normal(0, 0.15, DAYS)))
        for i in range(2, 22)
    ]
    steady = [Series(i, np.full(DAYS, 8), price=2.5) for i in range(2, 22)]
    new_item = Series(
        1,
        np.r_[np.zeros(DAYS - 4), [8, 8, 8, 8]],
        price=2.5,
        realized=np.r_[np.full(DAYS - 1, 2.5), [1.9]],
    )  # 24 % off

    found_noisy = detect_price_anomaly(make_input([new_item, *noisy]), {})
    found_steady = detect_price_anomaly(make_input([new_item, *steady]), {})

    assert 1 not in set(found_noisy.product_id.dropna())
    assert 1 in set(found_steady.product_id.dropna())


def _chain_points(product_id: int, price: float, days_ago: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": np.full(len(days_ago), product_id, dtype="int64"),
            "date": [pd.Timestamp(day(n)) for n in days_ago],
            "price": np.full(len(days_ago), price),
        }
    )


def test_tier_price_sold_on_separate_days_elsewhere_in_the_chain_is_known():
    # The store never sold at 1.50, but the chain did (a tier) on three separate days: the
    # chunk holding this store need not hold the others.
    data = replace(make_input([priced(1.5)]), price_points=_chain_points(1, 1.5, [20, 12, 5]))

    assert detect_price_anomaly(data, {}).empty


def test_price_stuck_for_days_at_one_store_is_not_a_chain_price_point():
    # 1.50 on ten days in a row somewhere: one run (a mis-key left in place), not a tier.
    data = replace(
        make_input([priced(1.5)]), price_points=_chain_points(1, 1.5, list(range(15, 5, -1)))
    )

    assert len(detect_price_anomaly(data, {})) == 1


def test_chain_price_points_of_the_as_of_day_itself_teach_nothing():
    data = replace(make_input([priced(1.5)]), price_points=_chain_points(1, 1.5, [0, 0, 0]))

    assert len(detect_price_anomaly(data, {})) == 1
