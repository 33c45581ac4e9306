"""The seed method, kept only as the benchmark's baseline (never scheduled, not registered).

Issue 3 describes what a first attempt at detection typically looks like, and the benchmark
reports it beside ShelfWatch's detectors:

* ghost stock: sales below ``RULE_SHARE`` (30%) of the trailing 28-day mean on each of the last
  ``RULE_DAYS`` (3) days while book stock is above 0;
* a daily Isolation Forest (Liu, Ting & Zhou, ICDM 2008; scikit-learn's ``IsolationForest``)
  at 5% contamination over simple per-SKU/location features, each outlier a finding.

Pure numpy/pandas/scikit-learn; no Django.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from anomalies.detectors.base import DetectionInput, empty_findings, make_findings
from anomalies.detectors.grid import build_grid

RULE_SHARE = 0.3
RULE_DAYS = 3
MEAN_DAYS = 28
CONTAMINATION = 0.05
SEED = 0


def detect_baseline(data: DetectionInput) -> pd.DataFrame:
    """Findings of the seed method for ``data.as_of``: a findings frame (``base``).

    Ghost-stock rows start ``RULE_DAYS - 1`` days before the as-of date; Isolation Forest rows
    (type ``ml_detected``) cover the as-of day. Returns an empty frame when there is less
    than ``MEAN_DAYS + RULE_DAYS`` days of history.
    """
    grid = build_grid(data)
    if grid.n_days < MEAN_DAYS + RULE_DAYS:
        return empty_findings()
    last = grid.last
    units = grid.units
    recent = units[:, last - RULE_DAYS + 1 : last + 1]
    mean = units[:, last - RULE_DAYS - MEAN_DAYS + 1 : last - RULE_DAYS + 1].mean(axis=1)
    on_hand = grid.on_hand_ffill[:, last] if grid.on_hand_ffill is not None else np.zeros(len(mean))
    ghost = (mean > 0) & (recent < RULE_SHARE * mean[:, None]).all(axis=1) & (on_hand > 0)

    features = np.column_stack(
        [
            units[:, last],
            units[:, last - 6 : last + 1].mean(axis=1),
            units[:, last - MEAN_DAYS + 1 : last + 1].mean(axis=1),
            np.nan_to_num(grid.price[:, last] / grid.regular_price, nan=1.0),
            np.nan_to_num(on_hand, nan=0.0),
        ]
    )
    forest = IsolationForest(contamination=CONTAMINATION, random_state=SEED, n_estimators=100)
    outlier = forest.fit_predict(features) == -1

    frames = []
    as_of = grid.dates[last]
    for kind, mask, start in (
        ("ghost_stock", ghost, grid.dates[last - RULE_DAYS + 1]),
        ("ml_detected", outlier, as_of),
    ):
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        value = np.nan_to_num(mean[idx] * grid.regular_price[idx], nan=0.0)
        frames.append(
            make_findings(
                {
                    "anomaly_type": kind,
                    "product_id": grid.product_id[idx],
                    "location_id": grid.location_id[idx],
                    "start_date": start,
                    "end_date": as_of,
                    "severity": "warning",
                    "score": 1.0,
                    "expected_value": mean[idx],
                    "actual_value": units[idx, last],
                    "value_at_risk": value,
                    "explanation": "seed method",
                    "details": [{}] * idx.size,
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else empty_findings()
