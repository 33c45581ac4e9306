"""Detector registry: name → function, default parameters and the inputs it needs.

Each detector is ``fn(data: DetectionInput, params: dict) -> pd.DataFrame`` returning a findings
frame (see ``base.FINDING_COLUMNS``), raising ``base.MissingInput`` when its input is absent.
No Django imports here or in any detector module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import demand, ghost_stock, inventory_discrepancy, ml, price
from .base import DetectionInput, MissingInput

__all__ = ["REGISTRY", "DetectionInput", "DetectorSpec", "MissingInput"]


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector: its function, default parameters and a one-line description."""

    name: str
    func: Callable[[DetectionInput, dict[str, Any]], pd.DataFrame]
    default_params: dict[str, Any]
    description: str
    # Whether the detector runs when no DetectorConfig row says otherwise. The Isolation Forest
    # is off by default: on the benchmark it found no event the other detectors missed and
    # added 0.2 false alarms per 1,000 SKU-location-days (docs/DETECTION.md).
    enabled_by_default: bool = True


REGISTRY: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in (
        DetectorSpec(
            "ghost_stock",
            ghost_stock.detect_ghost_stock,
            ghost_stock.DEFAULT_PARAMS,
            "Book stock > 0 while sales stopped longer than demand makes plausible.",
        ),
        DetectorSpec(
            "demand_spike",
            demand.detect_demand_spike,
            demand.DEFAULT_PARAMS,
            "Sales far above the expected level for the weekday, not explained by a promotion.",
        ),
        DetectorSpec(
            "demand_drop",
            demand.detect_demand_drop,
            demand.DEFAULT_PARAMS,
            "Sales far below the expected level for the weekday, not explained by the calendar.",
        ),
        DetectorSpec(
            "price_anomaly",
            price.detect_price_anomaly,
            price.DEFAULT_PARAMS,
            "Realized price far from the regular price with no promotion to explain it.",
        ),
        DetectorSpec(
            "inventory_discrepancy",
            inventory_discrepancy.detect_inventory_discrepancy,
            inventory_discrepancy.DEFAULT_PARAMS,
            "Book-stock change that receipts and sales do not explain.",
        ),
        DetectorSpec(
            "ml_detected",
            ml.detect_ml_outliers,
            ml.DEFAULT_PARAMS,
            "Isolation Forest over per SKU/location features (off unless enabled).",
            enabled_by_default=False,
        ),
    )
}
