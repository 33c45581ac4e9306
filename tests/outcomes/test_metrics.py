"""The pure metrics of ``outcomes.metrics`` on small hand-computed examples (no database)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from outcomes import metrics
from outcomes.metrics import ANOMALY_COLUMNS, COUNT_COLUMNS, MISS_COLUMNS, make_frame

NAN = float("nan")


def anomaly(**values) -> dict:
    row = {
        "anomaly_type": "ghost_stock",
        "location": "S1",
        "score": 1.0,
        "verdict": None,
        "created_at": "2024-01-01 00:00",
        "first_detected_on": "2024-01-01",
        "start_date": "2024-01-01",
        "recovered_value": 0.0,
        **values,
    }
    row["detector"] = metrics.detector_of(row["anomaly_type"])
    return row


@pytest.fixture
def six() -> pd.DataFrame:
    """Six findings; response times in hours in the comments (acknowledge, resolve)."""
    rows = [
        # TP, 2 h to acknowledge, 24 h to close.
        anomaly(
            anomaly_id=1,
            score=6.0,
            verdict="true_positive",
            created_at="2024-01-01 08:00",
            acknowledged_at="2024-01-01 10:00",
            closed_at="2024-01-02 08:00",
        ),
        # FP closed without acknowledging: first response = closing, 6 h / 6 h.
        anomaly(
            anomaly_id=2,
            location="S2",
            score=4.5,
            verdict="false_positive",
            created_at="2024-01-01 08:00",
            closed_at="2024-01-01 14:00",
        ),
        # Expected, 4 h / 24 h.
        anomaly(
            anomaly_id=3,
            anomaly_type="demand_spike",
            score=5.0,
            verdict="expected",
            created_at="2024-01-02 00:00",
            acknowledged_at="2024-01-02 04:00",
            closed_at="2024-01-03 00:00",
        ),
        # Inconclusive, acknowledged after 1 h, still open.
        anomaly(
            anomaly_id=4,
            anomaly_type="demand_spike",
            score=4.2,
            verdict="inconclusive",
            created_at="2024-01-02 00:00",
            acknowledged_at="2024-01-02 01:00",
        ),
        # Untouched store-level finding (raised by the discrepancy detector).
        anomaly(anomaly_id=5, anomaly_type="pos_outage", location="S2", created_at="2024-01-03"),
        # TP, 3 h / 12 h.
        anomaly(
            anomaly_id=6,
            score=8.0,
            verdict="true_positive",
            created_at="2024-01-03 00:00",
            acknowledged_at="2024-01-03 03:00",
            closed_at="2024-01-03 12:00",
        ),
    ]
    return make_frame(rows, ANOMALY_COLUMNS)


def by_key(table: pd.DataFrame, column: str) -> dict:
    return {row[column]: row for row in table.to_dict(orient="records")}


def test_precision_overall_counts_only_decided_verdicts(six):
    row = metrics.precision_table(six).iloc[0]

    # Labelled: TP 1 and 6, FP 2, expected 3 (inconclusive 4 and unlabelled 5 left out).
    assert (row["raised"], row["labelled"]) == (6, 4)
    assert (row["true_positive"], row["false_positive"], row["expected"]) == (2, 1, 1)
    assert row["inconclusive"] == 1
    assert row["precision"] == pytest.approx(2 / 4)
    assert row["false_positive_rate"] == pytest.approx(1 / 4)


def test_precision_by_type_detector_and_location(six):
    by_type = by_key(metrics.precision_table(six, ["anomaly_type"]), "anomaly_type")
    by_detector = by_key(metrics.precision_table(six, ["detector"]), "detector")
    by_location = by_key(metrics.precision_table(six, ["location"]), "location")

    assert by_type["ghost_stock"]["precision"] == pytest.approx(2 / 3)
    assert by_type["ghost_stock"]["false_positive_rate"] == pytest.approx(1 / 3)
    assert by_type["demand_spike"]["precision"] == 0.0  # its one decided finding was expected
    assert by_type["demand_spike"]["false_positive_rate"] == 0.0
    assert math.isnan(by_type["pos_outage"]["precision"])  # nothing labelled
    # pos_outage findings come from the inventory-discrepancy detector.
    assert set(by_detector) == {"ghost_stock", "demand_spike", "inventory_discrepancy"}
    assert by_detector["inventory_discrepancy"]["raised"] == 1
    # S1: TP 1, expected 3, TP 6; S2: FP 2.
    assert by_location["S1"]["precision"] == pytest.approx(2 / 3)
    assert by_location["S1"]["false_positive_rate"] == 0.0
    assert by_location["S2"]["precision"] == 0.0
    assert by_location["S2"]["false_positive_rate"] == 1.0


def test_mean_time_to_acknowledge_and_resolve_in_hours(six):
    row = metrics.response_times(six).iloc[0]
    ghost = by_key(metrics.response_times(six, ["anomaly_type"]), "anomaly_type")["ghost_stock"]

    assert row["responded"] == 5
    assert row["mtta_hours"] == pytest.approx((2 + 6 + 4 + 1 + 3) / 5)
    assert row["closed"] == 4
    assert row["mttr_hours"] == pytest.approx((24 + 6 + 24 + 12) / 4)
    assert ghost["mtta_hours"] == pytest.approx((2 + 6 + 3) / 3)
    assert ghost["mttr_hours"] == pytest.approx((24 + 6 + 12) / 3)


def test_resolution_rate_is_closed_over_raised(six):
    row = metrics.resolution_table(six).iloc[0]
    by_type = by_key(metrics.resolution_table(six, ["anomaly_type"]), "anomaly_type")

    assert (row["raised"], row["closed"]) == (6, 4)
    assert row["resolution_rate"] == pytest.approx(4 / 6)
    assert by_type["demand_spike"]["resolution_rate"] == pytest.approx(1 / 2)
    assert by_type["pos_outage"]["resolution_rate"] == 0.0


def test_effectiveness_table_puts_everything_side_by_side(six):
    overall = metrics.effectiveness_table(six)
    by_type = metrics.effectiveness_table(six, ["anomaly_type"])

    assert len(overall) == 1
    assert overall.iloc[0][["precision", "mtta_hours", "resolution_rate"]].tolist() == (
        pytest.approx([0.5, 3.2, 4 / 6])
    )
    assert list(by_type["anomaly_type"]) == ["demand_spike", "ghost_stock", "pos_outage"]
    assert by_type.columns.is_unique


def test_metrics_of_nothing_are_undefined_not_zero():
    empty = make_frame([], ANOMALY_COLUMNS)

    row = metrics.effectiveness_table(empty).iloc[0]

    assert (row["raised"], row["labelled"], row["closed"]) == (0, 0, 0)
    assert math.isnan(row["precision"])
    assert math.isnan(row["mtta_hours"])
    assert math.isnan(row["resolution_rate"])
    assert metrics.precision_table(empty, ["anomaly_type"]).empty


# --- recall ------------------------------------------------------------------------------------


def counts_frame(rows: list[tuple[bool, int, int, float | None]]) -> pd.DataFrame:
    """(is_control, book, counted, population) per count."""
    return make_frame(
        [
            {
                "count_id": i,
                "location": "S1",
                "is_control": control,
                "counted_at": "2024-01-05 10:00",
                "book_on_hand": book,
                "counted_quantity": counted,
                "population": population,
            }
            for i, (control, book, counted, population) in enumerate(rows, start=1)
        ],
        COUNT_COLUMNS,
    )


def misses_frame(types: list[str]) -> pd.DataFrame:
    return make_frame(
        [{"anomaly_type": t, "location": "S1", "start_date": "2024-01-02"} for t in types],
        MISS_COLUMNS,
    )


def test_recall_from_control_counts_and_reported_misses(six):
    # 4 control counts drawn from 200 eligible SKU/locations, 1 below book: N x p = 200 / 4.
    # The finding's count (not a control) says nothing about misses.
    counts = counts_frame(
        [
            (True, 10, 10, 200),
            (True, 5, 0, 200),
            (True, 8, 8, 200),
            (True, 3, 4, 200),
            (False, 7, 0, None),
        ]
    )
    misses = misses_frame(["ghost_stock"] * 3 + ["demand_drop"] * 2)

    table = by_key(metrics.recall_estimate(six, counts, misses), "anomaly_type")
    total = metrics.recall_total(metrics.recall_estimate(six, counts, misses))

    ghost = table["ghost_stock"]
    assert (ghost["found"], ghost["control_counts"], ghost["control_misses"]) == (2, 4, 1)
    assert ghost["estimated_missed"] == pytest.approx(50.0)
    assert ghost["reported_missed"] == 3
    assert ghost["missed"] == pytest.approx(50.0)  # the larger of 50 and 3
    assert ghost["recall"] == pytest.approx(2 / 52)
    drop = table["demand_drop"]
    assert (drop["found"], drop["missed"], drop["recall"]) == (0, 2.0, 0.0)
    assert math.isnan(table["demand_spike"]["recall"])  # nothing found, nothing missed
    assert total["found"] == 2
    assert total["missed"] == pytest.approx(52.0)
    assert total["recall"] == pytest.approx(2 / 54)


def test_reported_misses_win_when_control_counts_find_fewer(six):
    counts = counts_frame([(True, 5, 5, 100), (True, 6, 6, 100)])  # no control miss
    misses = misses_frame(["ghost_stock"])

    ghost = by_key(metrics.recall_estimate(six, counts, misses), "anomaly_type")["ghost_stock"]

    assert (ghost["estimated_missed"], ghost["missed"]) == (0.0, 1.0)
    assert ghost["recall"] == pytest.approx(2 / 3)


# --- ROI ---------------------------------------------------------------------------------------


def test_roi_totals_hand_computed():
    frame = make_frame(
        [
            # Confirmed ghost stock: began Jan 1, found Jan 5, would have been found Jan 31:
            # 26 days x 2 units/day x £3 = £156 of sales saved; £30 written off recovered.
            anomaly(
                anomaly_id=1,
                verdict="true_positive",
                start_date="2024-01-01",
                first_detected_on="2024-01-05",
                expected_units_per_day=2.0,
                unit_price=3.0,
                recovered_value=30.0,
            ),
            # Found after the horizon (Dec 1 + 30 < Jan 10): nothing saved, £12.50 recovered.
            anomaly(
                anomaly_id=2,
                verdict="true_positive",
                start_date="2023-12-01",
                first_detected_on="2024-01-10",
                expected_units_per_day=4.0,
                unit_price=1.0,
                recovered_value=12.5,
            ),
            # Not true positives: no value whatever was recorded.
            anomaly(
                anomaly_id=3,
                verdict="false_positive",
                expected_units_per_day=9.0,
                unit_price=9.0,
            ),
            anomaly(anomaly_id=4, verdict="expected", recovered_value=5.0),
            # A confirmed price anomaly: its recovered value counts, no lost sales model.
            anomaly(
                anomaly_id=5,
                anomaly_type="price_anomaly",
                verdict="true_positive",
                recovered_value=7.5,
                expected_units_per_day=3.0,
                unit_price=2.0,
            ),
        ],
        ANOMALY_COLUMNS,
    )
    counts = counts_frame([(False, 5, 0, None)] * 4 + [(True, 3, 3, 50)])

    totals = metrics.roi_totals(
        frame, counts, discovery_days=30, count_minutes=10, cost_per_hour=15.0
    )

    assert totals["recovered_value"] == pytest.approx(30 + 12.5 + 7.5)
    assert totals["lost_sales_prevented"] == pytest.approx(156.0)
    assert totals["true_positives"] == 3
    assert totals["counts_done"] == 5
    assert totals["labour_cost"] == pytest.approx(5 * 10 / 60 * 15.0)  # 12.50
    assert totals["net_value"] == pytest.approx(50 + 156 - 12.5)
    assert totals["roi"] == pytest.approx((50 + 156 - 12.5) / 12.5)


def test_lost_sales_days_are_clipped_to_the_horizon_and_unknown_rates_count_zero():
    frame = make_frame(
        [
            # Detected on its first day: the whole 10-day horizon is saved (10 x 1 x 2).
            anomaly(
                anomaly_id=1,
                verdict="true_positive",
                start_date="2024-03-01",
                first_detected_on="2024-03-01",
                expected_units_per_day=1.0,
                unit_price=2.0,
            ),
            # No demand rate known: nothing can be claimed.
            anomaly(anomaly_id=2, verdict="true_positive", unit_price=2.0),
        ],
        ANOMALY_COLUMNS,
    )

    saved = metrics.lost_sales_prevented(frame, discovery_days=10)

    assert saved.tolist() == [20.0, 0.0]


def test_roi_without_counts_is_undefined():
    frame = make_frame(
        [anomaly(anomaly_id=1, verdict="true_positive", recovered_value=4)], ANOMALY_COLUMNS
    )

    totals = metrics.roi_totals(
        frame, counts_frame([]), discovery_days=30, count_minutes=10, cost_per_hour=15
    )

    assert (totals["labour_cost"], totals["net_value"], totals["roi"]) == (0.0, 4.0, None)


# --- periods and trend -------------------------------------------------------------------------


def test_period_start_is_monday_or_first_of_month():
    dates = pd.Series(pd.to_datetime(["2024-01-03 15:00", "2024-02-29 00:00", None]))

    weeks = metrics.period_start(dates, "week")
    months = metrics.period_start(dates, "month")

    assert weeks[:2].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-26")]
    assert months[:2].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")]
    assert pd.isna(weeks[2]) and pd.isna(months[2])
    with pytest.raises(ValueError, match="Unknown period 'day'"):
        metrics.period_start(dates, "day")


def test_period_range_covers_partial_periods():
    weeks = metrics.period_range(pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-20"), "week")
    months = metrics.period_range(pd.Timestamp("2023-12-15"), pd.Timestamp("2024-02-01"), "month")

    assert weeks == [pd.Timestamp(d) for d in ("2024-01-01", "2024-01-08", "2024-01-15")]
    assert months == [pd.Timestamp(d) for d in ("2023-12-01", "2024-01-01", "2024-02-01")]


def test_trend_is_least_squares_slope_over_known_periods():
    # x = 0, 2, 3 (period 1 has no value), y = 1, 3, 2: slope = Sxy / Sxx = 2 / (14/3) = 3/7.
    result = metrics.trend([1.0, None, 3.0, 2.0])

    assert result["slope"] == pytest.approx(3 / 7)
    assert result["change"] == pytest.approx(-1.0)
    assert metrics.trend([5.0, NAN]) == {"slope": None, "change": None}


# --- threshold proposals -----------------------------------------------------------------------


def test_smallest_threshold_reaching_the_target_keeps_the_most_findings():
    # Precision keeping the top k: 1, 1, 2/3, 3/4, 3/5, 3/6: at 70 % the lowest qualifying
    # threshold is the 4th score (6.0), even though 3/3 = 67 % dips below on the way.
    found = metrics.score_threshold_for_precision(
        [9, 8, 7, 6, 5, 4], [True, True, False, True, False, False], 0.7
    )

    assert found == {"threshold": 6.0, "precision": 0.75, "kept": 4, "true_positives": 3}


def test_a_threshold_keeps_every_finding_with_an_equal_score():
    # Keeping score >= 5 keeps both fives (1 of 2 true): the first five alone is no option.
    assert metrics.score_threshold_for_precision([5, 5, 4], [True, False, True], 0.9) is None
    found = metrics.score_threshold_for_precision([5, 5, 4], [True, False, True], 0.6)
    assert (found["threshold"], found["kept"]) == (4.0, 3)


def test_no_threshold_when_nothing_is_precise_enough():
    assert metrics.score_threshold_for_precision([3, 2], [False, False], 0.5) is None
    assert metrics.score_threshold_for_precision([], [], 0.5) is None
