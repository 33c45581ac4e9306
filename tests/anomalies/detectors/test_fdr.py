"""False-discovery control (``anomalies.detectors.fdr``) and the p_value/tests contract columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalies.detectors.base import FINDING_COLUMNS, empty_findings, make_findings
from anomalies.detectors.fdr import FDR_Q_DEFAULT, bh_q_values, fdr_control
from anomalies.detectors.ghost_stock import detect_ghost_stock
from tests.anomalies.detectors.builders import AS_OF, Series, make_input, poisson_units

# Benjamini & Hochberg (1995), section 4: the 15 p-values of Neuhaus et al.'s trial.
# At q = 0.05 the step-up rejects the four smallest (Bonferroni-type procedures reject three).
PAPER_P = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.0000,
]
# Adjusted p-values by hand: min over j >= i of 15 p_(j) / j.
PAPER_Q = [
    0.0015,
    0.003,
    0.0095,
    0.035625,
    0.0603,
    15 * 0.0298 / 7,  # rank 6's own 0.0695 is beaten by rank 7's 0.063857
    15 * 0.0298 / 7,
    15 * 0.0344 / 8,
    15 * 0.0459 / 9,
    15 * 0.3240 / 10,
    15 * 0.4262 / 11,
    15 * 0.5719 / 12,
    15 * 0.6528 / 13,
    15 * 0.7590 / 14,
    1.0,
]


def findings(
    p: list[float],
    *,
    location: int | list[int] = 1,
    tests: int | list[int] = 0,
    anomaly_type: str | list[str] = "demand_spike",
) -> pd.DataFrame:
    n = len(p)
    return make_findings(
        {
            "anomaly_type": anomaly_type if isinstance(anomaly_type, list) else [anomaly_type] * n,
            "product_id": np.arange(1, n + 1),
            "location_id": location if isinstance(location, list) else [location] * n,
            "start_date": pd.Timestamp(AS_OF),
            "end_date": pd.Timestamp(AS_OF),
            "severity": "warning",
            "score": np.arange(n, dtype=float),
            "expected_value": 1.0,
            "actual_value": 2.0,
            "value_at_risk": 3.0,
            "explanation": [f"finding {i}" for i in range(n)],
            "details": [{} for _ in range(n)],
            "p_value": p,
            "tests": tests,
        }
    )


# --- the contract ------------------------------------------------------------------------------


def test_make_findings_without_p_value_gives_nan_and_zero_tests():
    columns = {c: [1] for c in FINDING_COLUMNS if c not in ("p_value", "tests")}
    columns |= {"start_date": [pd.Timestamp(AS_OF)], "end_date": [pd.Timestamp(AS_OF)]}

    found = make_findings(columns)

    assert list(found.columns) == FINDING_COLUMNS
    assert np.isnan(found["p_value"][0]) and found["tests"][0] == 0
    assert str(found["p_value"].dtype) == "float64" and str(found["tests"].dtype) == "int64"
    assert str(empty_findings()["tests"].dtype) == "int64"


def test_make_findings_still_requires_the_other_columns():
    columns = {c: [1] for c in FINDING_COLUMNS if c != "score"}
    with pytest.raises(KeyError):
        make_findings(columns)


# --- Benjamini-Hochberg ------------------------------------------------------------------------


def test_paper_example_rejects_the_four_smallest_p_values():
    result = fdr_control(findings(PAPER_P, tests=15), 0.05)

    assert result.findings["p_value"].tolist() == PAPER_P[:4]
    np.testing.assert_allclose(result.findings["q_value"], PAPER_Q[:4])
    assert result.locations.to_dict("records") == [
        {
            "location_id": 1,
            "tested": 15,
            "candidates": 15,
            "kept": 4,
            "expected_false_alarms": pytest.approx(0.2),
        }
    ]


def test_q_values_match_the_hand_computed_adjustment_and_scipy():
    from scipy.stats import false_discovery_control

    shuffled = np.random.default_rng(0).permutation(len(PAPER_P))
    p = np.asarray(PAPER_P)[shuffled]

    q = bh_q_values(p, np.zeros(len(p), dtype="int64"), np.array([15.0]))

    np.testing.assert_allclose(q, np.asarray(PAPER_Q)[shuffled])
    np.testing.assert_allclose(q, false_discovery_control(p, method="bh"))


def test_step_up_rejects_a_p_value_above_its_own_rank_threshold():
    # Thresholds k q / m are 0.025 and 0.05: p_(1) = 0.03 fails its own, but p_(2) = 0.04
    # passes, so the step-up rejects both. Bonferroni (p <= q / m) or a step-down would
    # reject neither.
    result = fdr_control(findings([0.04, 0.03], tests=2), 0.05)

    assert sorted(result.findings["p_value"]) == [0.03, 0.04]
    assert result.findings["q_value"].tolist() == [0.04, 0.04]


def test_family_size_is_the_detectors_tests_not_only_their_candidates():
    # The same two candidates out of 1,000 tests: thresholds 0.00005 and 0.0001.
    result = fdr_control(findings([0.04, 0.03], tests=1000), 0.05)

    assert result.findings.empty
    assert result.locations["tested"].tolist() == [1000]
    assert result.locations["kept"].tolist() == [0]


def test_family_sizes_of_the_detectors_at_a_location_add_up():
    frame = findings(
        [0.0001, 0.0004, 0.02],
        tests=[10, 10, 30],
        anomaly_type=["ghost_stock", "ghost_stock", "price_anomaly"],
    )

    result = fdr_control(frame, 0.05)

    # m = 10 + 30 = 40: thresholds 0.00125, 0.0025, 0.00375; 0.02 is not kept.
    assert result.findings["p_value"].tolist() == [0.0001, 0.0004]
    np.testing.assert_allclose(result.findings["q_value"], [0.004, 0.008])
    assert result.families[["family", "tested", "candidates", "kept"]].to_dict("records") == [
        {"family": "ghost_stock", "tested": 10, "candidates": 2, "kept": 2},
        {"family": "price_anomaly", "tested": 30, "candidates": 1, "kept": 0},
    ]


def test_family_size_is_at_least_the_number_of_candidates():
    # A detector that gives p-values but no tests: m falls back to its 3 candidates.
    result = fdr_control(findings([0.01, 0.02, 0.03], tests=0), 0.05)

    assert result.locations["tested"].tolist() == [3]
    assert len(result.findings) == 3


def test_family_argument_overrides_the_anomaly_type():
    # inventory_discrepancy reports two types; given as one family its tests count once.
    frame = findings(
        [0.001, 0.002],
        tests=[20, 20],
        anomaly_type=["inventory_discrepancy", "pos_outage"],
    )

    by_type = fdr_control(frame, 0.05)
    by_detector = fdr_control(frame, 0.05, family=["inventory_discrepancy"] * 2)

    assert by_type.locations["tested"].tolist() == [40]
    assert by_detector.locations["tested"].tolist() == [20]


def test_each_location_is_its_own_family():
    # Location 1: [0.001, 0.04] of m = 2, both kept (0.04 <= 2 x 0.05 / 2). Location 2:
    # 0.04 alone of m = 10 is not. Pooled (m = 12) only 0.001 would pass.
    frame = findings([0.001, 0.04, 0.04], location=[1, 1, 2], tests=[2, 2, 10])

    result = fdr_control(frame, 0.05)

    assert result.findings["location_id"].tolist() == [1, 1]
    assert result.locations[["location_id", "tested", "kept"]].to_dict("records") == [
        {"location_id": 1, "tested": 2, "kept": 2},
        {"location_id": 2, "tested": 10, "kept": 0},
    ]
    np.testing.assert_allclose(result.locations["expected_false_alarms"], [0.1, 0.0])


def test_findings_without_p_value_are_kept_untouched():
    frame = findings([np.nan, 0.9, np.nan], tests=[0, 5, 0], anomaly_type="ml_detected")

    result = fdr_control(frame, 0.05)

    assert result.findings.index.tolist() == [0, 2]
    assert result.findings["q_value"].isna().all()
    pd.testing.assert_frame_equal(result.findings.drop(columns="q_value"), frame.iloc[[0, 2]])


def test_all_nan_p_values_change_nothing():
    frame = findings([np.nan] * 4)

    result = fdr_control(frame, 0.05)

    pd.testing.assert_frame_equal(result.findings.drop(columns="q_value"), frame)
    assert result.locations.empty and result.families.empty


def test_empty_findings():
    result = fdr_control(empty_findings(), FDR_Q_DEFAULT)

    assert result.findings.empty and "q_value" in result.findings
    assert result.locations.empty


@pytest.mark.parametrize("q", [0.0, -0.1, 0.6, float("nan")])
def test_bad_level_is_refused(q):
    with pytest.raises(ValueError, match="false-discovery rate"):
        fdr_control(findings([0.01]), q)


def test_p_value_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fdr_control(findings([1.5]), 0.05)


def test_ten_thousand_locations_are_vectorised():
    rng = np.random.default_rng(1)
    n = 100_000
    frame = findings(
        list(rng.uniform(size=n) ** 3), location=list(rng.integers(0, 10_000, n)), tests=500
    )

    result = fdr_control(frame, 0.05)

    assert len(result.locations) == 10_000
    assert (result.findings["q_value"] <= 0.05).all()


# --- properties --------------------------------------------------------------------------------

p_values = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30)


def _kept_products(frame: pd.DataFrame, q: float) -> set[int]:
    return set(fdr_control(frame, q).findings["product_id"].astype(int))


@settings(max_examples=200, deadline=None)
@given(p=p_values, q=st.floats(0.01, 0.5), extra=st.integers(0, 50))
def test_kept_set_is_the_bh_step_up(p, q, extra):
    m = len(p) + extra
    result = fdr_control(findings(p, tests=m), q)

    ranked = np.sort(p)
    passing = np.flatnonzero(ranked <= q * np.arange(1, len(p) + 1) / m)
    k = passing[-1] + 1 if len(passing) else 0
    assert len(result.findings) == k
    if k:
        assert result.findings["p_value"].max() == ranked[k - 1]
    assert (result.findings["q_value"] <= q).all()


@settings(max_examples=200, deadline=None)
@given(p=p_values, q=st.floats(0.01, 0.4), i=st.integers(0, 29), factor=st.floats(0.0, 1.0))
def test_rejections_are_monotone(p, q, i, factor):
    frame = findings(p, tests=len(p) + 5)
    kept = _kept_products(frame, q)
    # A looser level keeps a superset.
    assert kept <= _kept_products(frame, min(0.5, 2 * q))
    # Lowering one p-value keeps every finding kept before.
    lowered = frame.copy()
    row = i % len(p)
    lowered.loc[row, "p_value"] = lowered.loc[row, "p_value"] * factor
    assert kept <= _kept_products(lowered, q)
    # More tests at the location keeps a subset.
    assert _kept_products(frame.assign(tests=frame["tests"] * 3), q) <= kept
    # q-values are monotone in p.
    q_values = fdr_control(frame, 0.5).findings
    order = np.argsort(q_values["p_value"].to_numpy(), kind="stable")
    assert np.all(np.diff(q_values["q_value"].to_numpy()[order]) >= -1e-15)


# --- with a real detector's p-values ------------------------------------------------------------


def test_ghost_stock_findings_pass_control_with_their_zero_run_p_values():
    # Ghost stock keeps its p0 in details; until it reports p_value/tests itself, take them
    # from there. 21 series at the store: one fast mover silent for 6 days (p0 tiny), one
    # silent for 3 days, the rest selling normally.
    series = []
    for pid in range(1, 20):
        series.append(Series(pid, poisson_units(5, 66, seed=pid), on_hand=30))
    for pid, zero_days in ((20, 6), (21, 3)):
        units = np.r_[poisson_units(8, 66 - zero_days, seed=pid), np.zeros(zero_days, dtype=int)]
        units[-zero_days - 1] = max(units[-zero_days - 1], 1)
        series.append(Series(pid, units, on_hand=40))
    data = make_input(series)
    found = detect_ghost_stock(data, {"min_p": 0.01})
    assert set(found["product_id"]) >= {20}
    p0 = np.array([d["p_zero_run"] for d in found["details"]])
    found = found.assign(p_value=p0, tests=len(series))

    strict = fdr_control(found, 0.05)
    loose_m = fdr_control(found.assign(tests=1), 0.05)

    assert 20 in set(strict.findings["product_id"])
    np.testing.assert_allclose(
        strict.findings["q_value"].min(), min(1.0, p0.min() * max(len(series), len(found)))
    )
    assert set(strict.findings["product_id"]) <= set(loose_m.findings["product_id"])


def test_p_value_exactly_at_its_bound_is_kept_with_q_value_q():
    # 3 × p / 3 rounds one ulp above q here: the bound q k / m itself must still reject.
    q = 0.11788606842886987
    result = fdr_control(findings([0.0, 0.0, q], tests=3), q)

    assert len(result.findings) == 3
    assert (result.findings["q_value"] <= q).all()
