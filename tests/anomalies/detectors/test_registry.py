"""The detector registry and the contract every registered detector keeps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomalies.detectors import DAILY_SCHEDULE, REGISTRY, ScoreThreshold, detectors_scheduled
from anomalies.detectors.base import FINDING_COLUMNS
from tests.anomalies.detectors.builders import (
    AS_OF,
    Series,
    day,
    make_input,
)

ROOT = Path(__file__).resolve().parents[3]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_items=st.integers(1, 8),
    with_promo=st.booleans(),
    closed_today=st.booleans(),
)
def test_every_detector_returns_contract_findings_within_the_window(
    seed, n_items, with_promo, closed_today
):
    rng = np.random.default_rng(seed)
    series = []
    for i in range(1, n_items + 1):
        units = rng.poisson(rng.uniform(0.1, 20.0), 50)
        units[rng.integers(0, 50, 3)] *= rng.integers(0, 30)
        realized = np.where(rng.random(50) < 0.05, 25.0, 2.5)
        on_hand = rng.integers(-2, 80, 50)
        series.append(Series(i, units, realized=realized, on_hand=on_hand, location_id=i % 2 + 1))
    data = make_input(
        series,
        promotions=[(1, None, day(5), day(0), 30.0)] if with_promo else [],
        calendar=[(day(0), None, "Closed", True)] if closed_today else [],
        receipts=[(1, 2, day(1), 24)],
    )
    for spec in REGISTRY.values():
        found = spec.func(data, dict(spec.default_params))
        assert list(found.columns) == FINDING_COLUMNS
        assert found.anomaly_type.isin(spec.anomaly_types).all(), spec.name
        assert {str(found[c].dtype) for c in ("start_date", "end_date")} == {"datetime64[ns]"}
        assert str(found["product_id"].dtype) == "Int64"
        assert str(found["location_id"].dtype) == "int64"
        assert (found.start_date <= found.end_date).all()
        assert (found.end_date == pd.Timestamp(AS_OF)).all()
        assert found.severity.isin(["info", "warning", "critical"]).all()
        assert found.explanation.map(lambda text: isinstance(text, str) and "nan" not in text).all()
        for details in found.details:
            json.dumps(details, allow_nan=False)


def test_every_anomaly_type_is_raised_by_exactly_one_detector():
    from anomalies.models import AnomalyType

    raised = [t for spec in REGISTRY.values() for t in spec.anomaly_types]
    assert sorted(raised) == sorted(AnomalyType.values)


def test_score_threshold_parameters_are_detector_parameters():
    for spec in REGISTRY.values():
        if isinstance(spec.score_threshold, ScoreThreshold):
            assert spec.score_threshold.param in spec.default_params, spec.name


def test_the_daily_schedule_runs_the_detectors_without_a_schedule_of_their_own():
    assert detectors_scheduled(DAILY_SCHEDULE) == (
        "demand_spike",
        "demand_drop",
        "price_anomaly",
        "inventory_discrepancy",
    )


def test_importing_the_registry_does_not_import_scipy_or_sklearn():
    code = (
        "import sys, anomalies.detectors; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'sklearn')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
