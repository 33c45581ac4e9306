"""The oracle (``lab.oracle``): exact p-values under the true parameters on hand-built worlds,
planted events found on a small bundle, the comparison at equal false alarms and the
``evaluate_detection`` options that drive it."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from scipy.stats import nbinom, poisson

from lab import oracle, scoring
from lab.evaluation import ORACLE_ALPHA, detection_evaluate
from lab.scenarios import scenario_get
from lab.simulator import ORACLE_FILE, generate_bundle


def _world(n_days: int, **params) -> oracle.OracleWorld:
    """One series (S001 / SKU00001) with classic defaults for whatever ``params`` leaves out."""
    mu = params.pop("mu", np.full((n_days, 1), 2.0))
    base = {
        "mu": mu,
        "nb_size": np.array([1.0]),
        "benign_law": np.array("fixed"),
        "benign_rate": np.array([0.002]),
        "benign_volume_scale": np.array([0.0]),
        "benign_deltas": np.array([-2, -1, 1, 2]),
        "benign_delta_probs": np.array([0.3, 0.4, 0.2, 0.1]),
        "regular_price": np.array([2.49]),
        "price_noise_sd": np.array([0.0]),
        "promo_discount": np.zeros((n_days, 1), dtype=np.float32),
        "tier_price": np.array([np.nan]),
        "tier_discount": np.array([0.0]),
        "tier_day_share": np.array([0.0]),
        "tier_unit_share_range": np.array([0.3, 1.0]),
    }
    base.update(params)
    units = base.pop("units", np.full((n_days, 1), 2, dtype=np.int64))
    on_hand = base.pop("on_hand", np.full((n_days, 1), 50, dtype=np.int64))
    receipts = base.pop("receipts", np.zeros((n_days, 1), dtype=np.int64))
    price = base.pop("price", np.full((n_days, 1), 2.49))
    return oracle.OracleWorld(
        dates=pd.date_range("2026-01-01", periods=n_days),
        sku=np.array(["SKU00001"]),
        location=np.array(["S001"]),
        units=units,
        on_hand=on_hand,
        receipts=receipts,
        price=price,
        params=base,
    )


def test_ghost_p_value_is_the_exact_probability_of_the_zero_run():
    units = np.full((20, 1), 2, dtype=np.int64)
    units[10:] = 0  # ten days without a sale from day 10, stock on hand throughout
    on_hand = np.concatenate([50 - 2 * np.arange(10), np.full(10, 30)])[:, None]
    world = _world(20, units=units, on_hand=on_hand)

    found = oracle.ghost_candidates(world, np.zeros((20, 1), dtype=bool))

    # NB(mu=2, r=1): P(0) = (1 / (1 + 2)) ** 1 per day.
    last = found[found["day"] == 19].iloc[0]
    assert last["start"] == 10
    assert last["p_value"] == pytest.approx((1 / 3) ** 10)
    assert found["day"].min() == 10 + int(np.ceil(np.log(oracle.P_CAP) / np.log(1 / 3))) - 1


def test_ghost_run_does_not_count_days_without_stock():
    units = np.zeros((20, 1), dtype=np.int64)
    units[0] = 1
    on_hand = np.zeros((20, 1), dtype=np.int64)  # a genuine stockout: nothing to sell
    world = _world(20, units=units, on_hand=on_hand)

    assert oracle.ghost_candidates(world, np.zeros((20, 1), dtype=bool)).empty


def test_spike_p_value_is_the_true_nb_tail_times_the_window_count():
    units = np.full((10, 1), 2, dtype=np.int64)
    units[6] = 15
    world = _world(10, units=units)

    found = oracle.spike_candidates(world)

    row = found[found["day"] == 6].iloc[0]
    one_day = nbinom.sf(14, 1.0, 1.0 / 3.0)  # size r = 1, p = r / (r + mu)
    assert row["start"] == 6
    assert row["p_value"] == pytest.approx(min(1.0, 3 * one_day), rel=1e-6)


def test_discrepancy_p_value_follows_the_true_benign_law():
    on_hand = np.full((10, 1), 100, dtype=np.int64)
    units = np.zeros((10, 1), dtype=np.int64)
    on_hand[5:] = 94  # six units vanished on day 5
    volume = _world(
        10,
        units=units,
        on_hand=on_hand,
        benign_law=np.array("volume"),
        benign_rate=np.array([1 / 90]),
        benign_volume_scale=np.array([0.3]),
    )
    fixed = _world(10, units=units, on_hand=on_hand)
    no_outage = np.zeros((10, 1), dtype=bool)

    v = oracle.discrepancy_candidates(volume, no_outage)
    f = oracle.discrepancy_candidates(fixed, no_outage)

    lam = 0.3 * np.sqrt(100)  # shelf before the correction
    assert v["p_value"].iloc[0] == pytest.approx(poisson.sf(6 - 2, lam) / 90)
    # Under the fixed ±1-2 law a 6-unit change is impossible: p = 0.
    assert f["p_value"].iloc[0] == 0.0 and f["residual"].iloc[0] == -6


def test_price_at_a_true_tier_is_normal_and_forty_percent_off_is_not():
    price = np.full((6, 1), 2.49)
    price[2] = 1.99  # inside the tier mix: between 2.49 × (1 − 0.2) and list
    price[4] = 1.49  # 40 % off, no promotion, below any tier mix
    world = _world(
        6,
        price=price,
        tier_price=np.array([1.99]),
        tier_discount=np.array([0.2]),
        price_noise_sd=np.array([0.01]),
    )

    found = oracle.price_candidates(world)

    assert list(found["day"]) == [4]
    assert found["p_value"].iloc[0] < 1e-12


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oracle") / "bundle"
    generate_bundle(out_dir=folder, seed=7, n_locations=3, n_skus=40, n_days=150)
    return folder


def test_oracle_finds_the_planted_events_of_a_small_bundle(bundle):
    report = detection_evaluate(bundle=bundle, truth_path=bundle / "truth.csv", method="oracle")

    table = report.table
    for kind in ("ghost_stock", "inventory_discrepancy", "price_anomaly"):
        assert table.loc[kind, "recall"] >= 0.8, kind
        assert table.loc[kind, "precision"] >= 0.6, kind  # zero days of demand drops read as ghosts
    assert table.loc["demand_spike", "recall"] >= 0.6
    assert table.loc["overall", "false_alarms_per_1k"] <= 1.0
    assert set(report.bands["band"]) == {"slow", "medium", "fast"}
    assert report.bands["events"].sum() == table.loc[list(oracle.ORACLE_TYPES), "events"].sum()


def test_candidates_carry_p_values_and_lower_thresholds_keep_fewer(bundle):
    world = oracle.world_load(directory=bundle)
    candidates = oracle.oracle_candidates(world)

    assert candidates["p_value"].between(0, oracle.P_CAP).all()
    assert len(oracle.oracle_at(candidates, ORACLE_ALPHA)) < len(candidates)
    assert set(candidates["anomaly_type"]) <= set(oracle.ORACLE_TYPES)


def test_comparison_matches_the_oracles_false_alarms_to_the_projects():
    curve = pd.DataFrame(
        {
            "alpha": [0.0, 1e-6, 1e-4, 1e-2],
            "events": [10, 10, 10, 10],
            "found": [5, 7, 9, 10],
            "false_alarms": [0, 1, 3, 8],
        }
    )
    table = pd.DataFrame(
        {"events": [10], "found": [6], "episodes": [9], "true_episodes": [6]},
        index=["demand_spike"],
    )
    project = scoring.Scored(episodes=pd.DataFrame(), truth=pd.DataFrame(), table=table)

    row = oracle.compare_to_oracle(project, {"demand_spike": curve}).iloc[0]

    # The project made 3 false alarms: the oracle's threshold is the last with at most 3.
    assert row["oracle_alpha"] == 1e-4 and row["oracle_recall"] == 0.9
    assert row["recall_ratio"] == pytest.approx(0.6 / 0.9)
    pooled = oracle.pooled_comparison([(project, {k: curve for k in oracle.ORACLE_TYPES})] * 2)
    spike = pooled.set_index("type").loc["demand_spike"]
    assert spike["project_false_alarms"] == 6 and spike["oracle_found"] == 18


def test_compare_option_prints_the_ratio_table(bundle):
    out = StringIO()
    call_command(
        "evaluate_detection",
        str(bundle),
        "--from",
        "2026-10-02",
        "--compare",
        "-v0",
        stdout=out,
    )
    text = out.getvalue()
    assert "Method shelfwatch" in text and "Method oracle" in text
    assert "same false-alarm count" in text and "price_anomaly" in text


def test_oracle_needs_oracle_npz(bundle, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bundle.glob("*.csv"):
        (copy / path.name).write_bytes(path.read_bytes())
    assert not (copy / ORACLE_FILE).exists()
    with pytest.raises(CommandError, match=r"no oracle\.npz"):
        call_command("evaluate_detection", str(copy), "--method", "oracle", "-v0")


def test_unknown_set_is_a_clear_error():
    with pytest.raises(CommandError, match="or a scenario set"):
        call_command("evaluate_detection", "--set", "held_in")


def test_scenario_bundle_oracle_sees_volume_corrections_as_benign(tmp_path):
    generate_bundle(
        out_dir=tmp_path,
        seed=7,
        n_locations=2,
        n_skus=40,
        n_days=150,
        scenario=scenario_get("volume_counts"),
    )
    report = detection_evaluate(bundle=tmp_path, truth_path=tmp_path / "truth.csv", method="oracle")
    assert report.table.loc["inventory_discrepancy", "precision"] >= 0.7
