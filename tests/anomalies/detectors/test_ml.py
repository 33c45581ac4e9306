"""Isolation Forest outliers over per SKU/location features."""

from __future__ import annotations

import numpy as np

from anomalies.detectors.base import FINDING_COLUMNS
from anomalies.detectors.grid import build_grid
from anomalies.detectors.ml import build_features, detect_ml_outliers
from tests.anomalies.detectors.builders import Series, make_input, poisson_units


def normal_items(n: int = 200) -> list[Series]:
    rng = np.random.default_rng(7)
    rates = rng.uniform(2.0, 8.0, n)
    prices = rng.uniform(1.0, 5.0, n).round(2)
    return [
        Series(i + 1, poisson_units(rates[i], 42, seed=i), price=float(prices[i]), on_hand=60)
        for i in range(n)
    ]


def test_extreme_row_among_normal_ones_is_flagged_and_explained():
    units = poisson_units(5.0, 42, seed=999)
    units[-3:] = [9000, 12000, 8000]
    realized = np.full(42, 2.0)
    realized[-3:] = 0.4
    odd = Series(999, units, price=2.0, realized=realized, on_hand=60)

    found = detect_ml_outliers(make_input([*normal_items(), odd]), {})

    assert found.product_id.tolist() == [999]
    row = found.iloc[0]
    assert row.anomaly_type == "ml_detected"
    assert row.explanation.startswith("Outlier among 201 SKU-locations (score 0.")
    # Today's 0.4 against the 2.0 median of the daily realized prices.
    assert "price_vs_avg 0.2 (typical 1)" in row.explanation
    assert "sales_trend_7d 675 (typical 1)" in row.explanation
    assert row.details["features"]["sales_7d"] == units[-7:].sum()  # the week's units
    assert set(row.details["deviating"]) >= {"price_vs_avg", "sales_trend_7d"}
    assert row.score >= 0.7


def test_calm_day_yields_nothing():
    assert detect_ml_outliers(make_input(normal_items()), {}).empty


def test_too_few_rows_are_skipped():
    assert detect_ml_outliers(make_input(normal_items(30)), {}).empty


def test_same_input_gives_same_findings():
    units = poisson_units(5.0, 42, seed=999)
    units[-7:] = 4000
    data = make_input([*normal_items(), Series(999, units, on_hand=60)])

    first = detect_ml_outliers(data, {})
    data.__dict__.pop("grid", None)  # rebuild the grid: determinism end to end
    second = detect_ml_outliers(data, {})

    assert first.equals(second)
    assert list(first.columns) == FINDING_COLUMNS


def test_features_cover_only_items_active_in_the_last_28_days():
    dormant = Series(500, np.r_[np.full(10, 3), np.zeros(32, dtype=int)], on_hand=5)
    grid = build_grid(make_input([*normal_items(5), dormant]))

    rows, frame = build_features(grid, 28)

    assert 500 not in grid.product_id[rows]
    assert {"sales_7d", "sales_trend_7d", "quantity_on_hand", "unit_price", "day_of_week"} <= set(
        frame.columns
    )
    assert {"is_holiday", "stock_turnover", "price_vs_avg"} <= set(frame.columns)
    assert (frame["quantity_on_hand"] == 60).all()
