"""Real-data figures: recurring price points and findings per day (hand-made frames)."""

from __future__ import annotations

import pandas as pd

from lab.real_data import findings_per_day, price_points, recurring_price_findings


def _lines() -> pd.DataFrame:
    days = pd.date_range("2011-03-01", periods=8)
    rows = [("A", d, 2.55, 12) for d in days[:6]]  # a tier price on 6 days
    rows += [("A", days[6], 1.49, 1), ("A", days[7], 2.55, -3)]  # a one-off, and a return
    rows += [("B", d, 2.55, 1) for d in days]  # another SKU at the same price
    return pd.DataFrame(rows, columns=["sku", "date", "price", "quantity"])


def test_a_price_sold_on_five_other_days_is_recurring_and_a_one_off_is_not():
    points = price_points(_lines())
    findings = pd.DataFrame(
        {
            "sku": ["A", "A", "A"],
            "start_date": pd.to_datetime(["2011-03-01", "2011-03-07", "2011-03-01"]),
            "end_date": pd.to_datetime(["2011-03-01", "2011-03-07", "2011-03-02"]),
            "actual_value": [2.55, 1.49, 2.549],
        }
    )
    # 2.55 on 5 other days; 1.49 only on its own day; over 2 days only 4 others remain.
    assert recurring_price_findings(findings, points).tolist() == [True, False, False]


def test_returns_and_other_skus_do_not_count():
    points = price_points(_lines())
    assert set(points.query("sku == 'A' and pence == 255")["date"].dt.day) == set(range(1, 7))


def test_findings_per_day_counts_days_without_findings_as_zero():
    anomalies = pd.DataFrame(
        {
            "anomaly_type": ["price_anomaly", "price_anomaly", "demand_spike"],
            "first_detected_on": pd.to_datetime(["2011-03-01", "2011-03-01", "2011-03-03"]),
        }
    )
    table = findings_per_day(anomalies)
    assert table.loc["price_anomaly", "findings"] == 2
    assert table.loc["price_anomaly", "max"] == 2
    assert table.loc["price_anomaly", "median"] == 0  # 3 days: 2, 0, 0
    assert table.loc["demand_spike", "mean"] == round(1 / 3, 2)
