"""The findings contract (``anomalies.detectors.base``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anomalies.detectors.base import empty_findings, make_findings
from tests.anomalies.detectors.builders import (
    AS_OF,
)


def test_make_findings_repeats_scalars_and_keeps_objects():
    found = make_findings(
        {
            "anomaly_type": "ghost_stock",
            "product_id": np.array([1, 2]),
            "location_id": [3, 3],
            "start_date": pd.Timestamp(AS_OF),
            "end_date": [pd.Timestamp(AS_OF)] * 2,
            "severity": np.array(["warning", "critical"]),
            "score": 1.5,
            "expected_value": [1, 2],
            "actual_value": np.zeros(2),
            "value_at_risk": [0.5, None],
            "explanation": ["a", "b"],
            "details": [{"k": [1, 2]}, {}],
        }
    )

    assert found["anomaly_type"].tolist() == ["ghost_stock"] * 2
    assert found["score"].tolist() == [1.5, 1.5]
    assert found["details"].tolist() == [{"k": [1, 2]}, {}]
    assert np.isnan(found["value_at_risk"][1])
    assert {c: str(t) for c, t in found.dtypes.items()} == {
        c: str(t) for c, t in empty_findings().dtypes.items()
    }
    assert str(found["product_id"].dtype) == "Int64" and found["severity"].dtype == object
    assert type(found["severity"][0]) is str
