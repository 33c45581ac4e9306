"""Price anomalies: realized price far from the regular (or promotion) price."""

from __future__ import annotations

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


def test_ordinary_markdown_without_promotion_does_not_fire():
    assert detect_price_anomaly(make_input([priced(1.75)]), {}).empty


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
        "25 items sold at 50% or more below their regular price with no promotion"
    )
    assert row.value_at_risk == 25 * 10 * 1.5


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
    assert isinstance(found.iloc[0].details, dict)
