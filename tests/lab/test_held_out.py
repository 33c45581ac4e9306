"""Issue 11's regression guard on one small held-out bundle: scenario ``everything`` (every
widened parameter at once), seed 101, 3 stores x 60 SKUs x 200 days, last 90 days scored.

This bundle belongs to the held-out set (``lab.scenarios.HELD_OUT``): nothing was tuned on it.
The floors sit just under what the detectors measured on it when issue 11 was closed
(docs/DETECTION.md, "Held-out results"), so a change that costs precision, recall against the
oracle or false alarms fails the build. Targets the detectors do not reach here are named in
the docs, not hidden by these floors.
"""

from __future__ import annotations

import pytest

from lab.evaluation import detection_compare
from lab.scenarios import HELD_OUT, SIZES, scenario_get
from lab.simulator import generate_bundle

SCENARIO, SEED = "everything", 101
# type: (precision floor, floor of recall as a share of the oracle's at equal false alarms)
# Measured 2026-12-06 (two-groups benign law): ghost_stock precision 0.857, ratio 1.0 (5
# events); inventory_discrepancy precision 0.818, ratio 1.0 (6 events; 0.750 before);
# overall 0.185 false alarms per 1,000 (0.247 before). The bundle has too few spikes (1) and
# prices (0) to judge those types; the pooled held-out set does.
FLOORS: dict[str, tuple[float, float]] = {
    "ghost_stock": (0.80, 0.95),
    "inventory_discrepancy": (0.78, 0.95),
}
MAX_FALSE_ALARMS_PER_1K = 0.25


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    assert (SCENARIO, SEED) in HELD_OUT
    folder = tmp_path_factory.mktemp("held_out") / "bundle"
    generate_bundle(out_dir=folder, seed=SEED, scenario=scenario_get(SCENARIO), **SIZES["small"])
    return detection_compare(bundle=folder, truth_path=folder / "truth.csv")


@pytest.mark.parametrize("kind", sorted(FLOORS))
def test_precision_and_recall_against_the_oracle_hold(comparison, kind):
    precision_floor, ratio_floor = FLOORS[kind]
    row = comparison.project.table.loc[kind]
    ratio = comparison.table.set_index("type").loc[kind, "recall_ratio"]

    assert row.events >= 5, "too few events to judge; the bundle changed"
    assert row.precision >= precision_floor
    assert ratio >= ratio_floor


def test_false_alarms_stay_under_the_floor(comparison):
    assert comparison.project.table.loc["overall", "false_alarms_per_1k"] <= MAX_FALSE_ALARMS_PER_1K


def test_pos_outages_give_one_store_finding_and_closures_none(comparison):
    outage = comparison.project.table.loc["pos_outage"]
    extras = comparison.project.extras

    assert outage.found == outage.events == outage.episodes
    assert extras["outage_sku_findings_max"] <= 1
    assert extras["closure_findings"] == 0
