"""Scoring findings against ground truth: episodes, matching, the metrics (hand-computed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab import scoring

T = pd.Timestamp


def findings(rows):
    """rows: (type, sku, location, start, end, as_of, value[, parent])."""
    frame = pd.DataFrame(
        [r if len(r) == 8 else (*r, -1) for r in rows],
        columns=[
            "anomaly_type",
            "sku",
            "location",
            "start_date",
            "end_date",
            "as_of",
            "value_at_risk",
            "parent",
        ],
    )
    for col in ("start_date", "end_date", "as_of"):
        frame[col] = pd.to_datetime(frame[col])
    return frame


def truth(rows):
    frame = pd.DataFrame(
        rows, columns=["anomaly_type", "sku", "location", "start_date", "end_date", "value_at_risk"]
    )
    for col in ("start_date", "end_date"):
        frame[col] = pd.to_datetime(frame[col])
    return frame


def test_repeat_findings_of_one_condition_are_one_episode():
    eps = scoring.findings_episodes(
        findings(
            [
                ("ghost_stock", "A", "S1", "2026-01-01", "2026-01-05", "2026-01-05", 10.0),
                ("ghost_stock", "A", "S1", "2026-01-01", "2026-01-06", "2026-01-06", 12.0),
                # The next day touches and merges (MERGE_GAP_DAYS = 1, as in persistence) ...
                ("ghost_stock", "A", "S1", "2026-01-07", "2026-01-08", "2026-01-08", 3.0),
                # ... a day without a finding in between starts a new episode.
                ("ghost_stock", "A", "S1", "2026-01-10", "2026-01-10", "2026-01-10", 4.0),
                ("demand_spike", "A", "S1", "2026-01-03", "2026-01-03", "2026-01-03", 5.0),
                # A grouped child is not listed separately.
                ("demand_drop", "B", "S1", "2026-01-03", "2026-01-03", "2026-01-03", 5.0, 0),
            ]
        )
    )

    ghost = eps[eps.anomaly_type == "ghost_stock"].reset_index(drop=True)
    assert len(eps) == 3
    assert list(ghost.findings) == [3, 1]
    assert ghost.loc[0, "start_date"] == T("2026-01-01")
    assert ghost.loc[0, "end_date"] == T("2026-01-08")
    assert ghost.loc[0, "first_detected"] == T("2026-01-05")
    assert ghost.loc[0, "value_at_risk"] == 12.0


def test_metrics_on_a_hand_computed_example():
    window = scoring.Window(T("2026-01-01"), T("2026-01-10"), n_series=200, n_locations=2)
    events = truth(
        [
            ("ghost_stock", "A", "S1", "2026-01-02", "2026-01-09", 100.0),  # found, delay 3
            ("ghost_stock", "B", "S1", "2026-01-04", "2026-01-09", 300.0),  # missed
            ("price_anomaly", "C", "S2", "2026-01-05", "2026-01-05", 50.0),  # found, delay 0
            # Began before the window: not counted for recall, but a finding of it is right.
            ("ghost_stock", "D", "S2", "2025-12-20", "2026-01-09", 80.0),
        ]
    )
    eps = scoring.findings_episodes(
        findings(
            [
                ("ghost_stock", "A", "S1", "2026-01-01", "2026-01-05", "2026-01-05", 90.0),
                ("ghost_stock", "D", "S2", "2025-12-21", "2026-01-01", "2026-01-01", 80.0),
                ("price_anomaly", "C", "S2", "2026-01-05", "2026-01-05", "2026-01-05", 50.0),
                # Wrong type for B's event: a false alarm, not a hit.
                ("demand_drop", "B", "S1", "2026-01-05", "2026-01-06", "2026-01-06", 20.0),
                ("price_anomaly", "E", "S1", "2026-01-07", "2026-01-07", "2026-01-07", 5.0),
                # First detected after the window: not counted.
                ("price_anomaly", "F", "S1", "2026-01-11", "2026-01-11", "2026-01-11", 5.0),
            ]
        )
    )

    scored = scoring.score(eps, events, window)
    table = scored.table

    ghost = table.loc["ghost_stock"]
    assert (ghost.events, ghost.found, ghost.episodes, ghost.true_episodes) == (2, 1, 2, 2)
    assert ghost.recall == 0.5
    assert ghost.value_recall == pytest.approx(100 / 400)
    assert ghost.precision == 1.0
    assert ghost.f1 == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert ghost.delay_median == 3.0
    price = table.loc["price_anomaly"]
    assert (price.found, price.episodes, price.true_episodes) == (1, 2, 1)
    assert price.precision == 0.5 and price.delay_median == 0.0
    overall = table.loc["overall"]
    assert (overall.events, overall.found, overall.episodes, overall.true_episodes) == (3, 2, 5, 3)
    # 2 false alarms over 200 SKU-locations x 10 days = 2 per 2,000 SKU-days = 1.0 per 1,000.
    assert overall.false_alarms_per_1k == pytest.approx(1.0)
    assert overall.findings_per_location_day == pytest.approx(5 / (2 * 10))
    assert np.isnan(table.loc["demand_drop", "recall"])
    assert table.loc["demand_drop", "precision"] == 0.0


def test_collateral_findings_count_unmatched_sku_episodes_the_day_causes():
    window = scoring.Window(T("2026-01-01"), T("2026-01-10"), n_series=10, n_locations=1)
    eps = scoring.findings_episodes(
        findings(
            [
                ("pos_outage", "", "S1", "2026-01-05", "2026-01-05", "2026-01-05", 0.0),
                ("demand_drop", "A", "S1", "2026-01-05", "2026-01-05", "2026-01-05", 1.0),
                # Starts the day after but is found two days later: not caused by the outage.
                ("ghost_stock", "B", "S1", "2026-01-06", "2026-01-08", "2026-01-08", 1.0),
                ("demand_drop", "D", "S1", "2026-01-06", "2026-01-06", "2026-01-06", 1.0),
                ("ghost_stock", "C", "S1", "2026-01-08", "2026-01-09", "2026-01-09", 1.0),
            ]
        )
    )
    events = truth([("pos_outage", "", "S1", "2026-01-05", "2026-01-05", 900.0)])
    scored = scoring.score(eps, events, window)
    days = pd.DataFrame({"location": ["S1"], "date": [T("2026-01-05")]})

    assert scored.table.loc["pos_outage", "found"] == 1
    assert list(scoring.collateral_findings(scored, days)) == [2]  # A and D
