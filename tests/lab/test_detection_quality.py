"""Detection quality floors on a small seeded simulated bundle (issue 3's regression guard).

The bundle (4 stores x 150 SKUs x 220 days, seed 3) is generated in a temporary folder and
scored by the same walk-forward evaluation as ``evaluate_detection`` over its last 90 days.
The floors were issue 3's targets for the default bundle. Since issue 11 (learned noise models
and false-discovery control at q = 0.01) two recall floors sit below those targets, at what the
detectors measure here minus a margin: price_anomaly 0.913 and inventory_discrepancy 0.840 on
this bundle (targets 0.95 and 0.90; precision rose to 1.0 for both). docs/DETECTION.md reports
this; the held-out scenarios (tests/lab/test_held_out.py) judge issue 11's targets. A detector
change that costs recall, precision or delay fails here.
"""

from __future__ import annotations

import pytest

from lab.evaluation import detection_evaluate
from lab.simulator import generate_bundle

TARGETS = {
    # type: (recall, precision, median delay in days)
    "ghost_stock": (0.90, 0.80, 4.0),
    "demand_spike": (0.85, 0.80, 1.0),
    "price_anomaly": (0.90, 0.90, 1.0),  # issue 3's target 0.95: see the module docstring
    "inventory_discrepancy": (0.80, 0.85, 1.0),  # issue 3's target 0.90: ditto
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quality") / "bundle"
    generate_bundle(out_dir=folder, seed=3, n_locations=4, n_skus=150, n_days=220)
    return detection_evaluate(bundle=folder, truth_path=folder / "truth.csv")


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_each_type_meets_its_recall_precision_and_delay_targets(report, kind):
    recall, precision, delay = TARGETS[kind]
    row = report.table.loc[kind]

    assert row.events >= 10, "too few events to judge; the bundle changed"
    assert row.recall >= recall
    assert row.precision >= precision
    assert row.delay_median <= delay


def test_false_alarms_stay_under_one_per_thousand_sku_location_days(report):
    overall = report.table.loc["overall"]

    assert overall.false_alarms_per_1k <= 1.0
    assert overall.precision >= 0.85


def test_pos_outages_give_one_store_finding_and_closures_none(report):
    outage = report.table.loc["pos_outage"]

    assert outage.events >= 2
    assert outage.found == outage.events == outage.episodes
    assert report.extras["outage_sku_findings_max"] <= 3
    assert report.extras["closure_days"] >= 1
    assert report.extras["closure_findings"] == 0


def test_fast_movers_ghost_stock_is_found_within_days(report):
    assert report.extras["fast_events"] >= 5
    assert report.extras["fast_found"] == report.extras["fast_events"]
    # Full-size bundles give 2 days (docs/DETECTION.md); this small sample allows 3.
    assert report.extras["fast_delay_median"] <= 3.0


def test_the_seed_method_baseline_is_far_less_precise(tmp_path):
    folder = tmp_path / "bundle"
    generate_bundle(out_dir=folder, seed=5, n_locations=2, n_skus=60, n_days=150)
    baseline = detection_evaluate(bundle=folder, truth_path=folder / "truth.csv", method="baseline")
    ours = detection_evaluate(bundle=folder, truth_path=folder / "truth.csv")

    assert baseline.table.loc["overall", "precision"] < 0.2
    assert baseline.table.loc["overall", "false_alarms_per_1k"] > 10
    assert ours.table.loc["overall", "precision"] > 0.8
