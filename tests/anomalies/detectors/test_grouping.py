"""Root-cause grouping (pure): POS outages and chain-wide SKU events."""

from __future__ import annotations

import pandas as pd
import pytest

from anomalies.detectors.grouping import ANOMALY_COLUMNS, root_causes_group


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (id, type, product or None, location, start, end, score[, has_children])."""
    records = [row if len(row) == 8 else (*row, False) for row in rows]
    frame = pd.DataFrame.from_records(records, columns=list(ANOMALY_COLUMNS))
    frame["product_id"] = pd.array(frame["product_id"].tolist(), dtype="Int64")
    for name in ("start_date", "end_date"):
        frame[name] = pd.to_datetime(frame[name]).astype("datetime64[s]")
    return frame


def _pairs(result: pd.DataFrame) -> list[tuple]:
    return list(result.itertuples(index=False, name=None))


def test_sku_findings_starting_during_an_outage_of_their_store_are_grouped_under_it():
    frame = _frame(
        [
            (1, "pos_outage", None, 10, "2025-03-02", "2025-03-03", 9.0),
            (2, "ghost_stock", 100, 10, "2025-03-03", "2025-03-05", 5.0),  # starts during it
            (3, "demand_drop", 101, 10, "2025-03-04", "2025-03-05", 5.0),  # the day after
            (4, "ghost_stock", 102, 11, "2025-03-02", "2025-03-02", 5.0),  # other store
            (5, "ghost_stock", 103, 10, "2025-02-20", "2025-03-05", 5.0),  # running before
            (6, "demand_drop", 104, 10, "2025-03-05", "2025-03-06", 5.0),  # two days after
        ]
    )
    assert _pairs(root_causes_group(frame)) == [(2, 1, "pos_outage"), (3, 1, "pos_outage")]


def test_same_sku_and_type_at_three_stores_within_a_day_is_one_chain_wide_event():
    frame = _frame(
        [
            (1, "price_anomaly", 7, 10, "2025-03-02", "2025-03-02", 3.0),
            (2, "price_anomaly", 7, 11, "2025-03-03", "2025-03-03", 8.0),  # top score
            (3, "price_anomaly", 7, 12, "2025-03-02", "2025-03-02", 4.0),
            (4, "price_anomaly", 7, 13, "2025-03-20", "2025-03-20", 9.0),  # much later
            (5, "demand_spike", 7, 14, "2025-03-02", "2025-03-02", 9.0),  # other type
        ]
    )
    assert _pairs(root_causes_group(frame)) == [(1, 2, "chain_wide"), (3, 2, "chain_wide")]


def test_two_stores_are_not_enough_and_min_locations_is_configurable():
    frame = _frame(
        [
            (1, "price_anomaly", 7, 10, "2025-03-02", "2025-03-02", 3.0),
            (2, "price_anomaly", 7, 11, "2025-03-02", "2025-03-02", 8.0),
        ]
    )
    assert root_causes_group(frame).empty
    assert _pairs(root_causes_group(frame, min_locations=2)) == [(1, 2, "chain_wide")]


def test_an_existing_parent_keeps_its_children_on_a_rerun():
    frame = _frame(
        [
            (1, "price_anomaly", 7, 10, "2025-03-02", "2025-03-02", 3.0, True),
            (2, "price_anomaly", 7, 11, "2025-03-02", "2025-03-02", 8.0, False),
            (3, "price_anomaly", 7, 12, "2025-03-02", "2025-03-02", 4.0, False),
        ]
    )
    assert _pairs(root_causes_group(frame)) == [(2, 1, "chain_wide"), (3, 1, "chain_wide")]


def test_an_outage_child_is_not_also_counted_chain_wide():
    frame = _frame(
        [
            (9, "pos_outage", None, 10, "2025-03-02", "2025-03-02", 9.0),
            (1, "ghost_stock", 7, 10, "2025-03-02", "2025-03-02", 3.0),
            (2, "ghost_stock", 7, 11, "2025-03-02", "2025-03-02", 8.0),
            (3, "ghost_stock", 7, 12, "2025-03-02", "2025-03-02", 4.0),
        ]
    )
    # Without the outage's store only two stores remain: no chain-wide event.
    assert _pairs(root_causes_group(frame)) == [(1, 9, "pos_outage")]


def test_empty_input_and_bad_arguments():
    assert root_causes_group(_frame([])).empty
    with pytest.raises(ValueError, match="lack column"):
        root_causes_group(pd.DataFrame({"id": [1]}))
    with pytest.raises(ValueError, match="min_locations"):
        root_causes_group(_frame([]), min_locations=1)


def test_of_two_outages_the_higher_score_then_the_higher_id_is_the_parent():
    frame = _frame(
        [
            (1, "pos_outage", None, 10, "2025-03-01", "2025-03-03", 2.0),
            (2, "pos_outage", None, 10, "2025-03-02", "2025-03-02", 7.0),
            (3, "pos_outage", None, 10, "2025-03-02", "2025-03-02", 7.0),
            (4, "pos_outage", None, 10, "2025-03-03", "2025-03-03", float("nan")),
            (5, "ghost_stock", 100, 10, "2025-03-02", "2025-03-02", 1.0),  # during 1, 2, 3
            (6, "ghost_stock", 101, 10, "2025-03-04", "2025-03-04", 1.0),  # after 1 and 4
        ]
    )
    # An outage without a score ranks below every scored one.
    assert _pairs(root_causes_group(frame)) == [(5, 3, "pos_outage"), (6, 1, "pos_outage")]


def test_chain_wide_parent_ties_go_to_the_lowest_id_and_an_unscored_one_ranks_last():
    frame = _frame(
        [
            (8, "price_anomaly", 7, 10, "2025-03-02", "2025-03-02", float("nan")),
            (5, "price_anomaly", 7, 11, "2025-03-02", "2025-03-02", 4.0),
            (3, "price_anomaly", 7, 12, "2025-03-03", "2025-03-03", 4.0),
            (4, "price_anomaly", 7, 12, "2025-03-04", "2025-03-04", 1.0),  # same store as 3
        ]
    )
    result = root_causes_group(frame)
    assert _pairs(result) == [(4, 3, "chain_wide"), (5, 3, "chain_wide"), (8, 3, "chain_wide")]
    assert [str(result[name].dtype) for name in ("id", "parent_id")] == ["int64", "int64"]


def test_starts_further_apart_than_the_spread_are_separate_events():
    frame = _frame(
        [
            (1, "price_anomaly", 7, 10, "2025-03-01", "2025-03-01", 1.0),
            (2, "price_anomaly", 7, 11, "2025-03-02", "2025-03-02", 2.0),
            (3, "price_anomaly", 7, 12, "2025-03-04", "2025-03-04", 3.0),
        ]
    )
    assert root_causes_group(frame).empty
    assert _pairs(root_causes_group(frame, max_start_spread_days=2)) == [
        (1, 3, "chain_wide"),
        (2, 3, "chain_wide"),
    ]
