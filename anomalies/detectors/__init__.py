"""Detector registry: one ``DetectorSpec`` per detector, carrying all the rest of the product
needs to know about it.

Each detector is ``fn(data: DetectionInput, params: dict) -> pd.DataFrame`` returning a findings
frame (see ``base.FINDING_COLUMNS``), raising ``base.MissingInput`` when its input is absent.
Code outside this package reads the registry instead of listing detectors by name:

- ``anomalies.services.runs`` runs ``func`` with ``default_params`` merged with the
  ``DetectorConfig`` row, and ``enabled_by_default`` when there is no row;
- ``anomalies.models.DetectorConfig.clean`` and the admin check parameters against
  ``default_params``;
- ``anomalies.services.schedules`` puts the detectors of ``schedule == DAILY_SCHEDULE`` in the
  daily detection schedule;
- ``outcomes.services.feedback`` counts the findings of ``anomaly_types`` and proposes a value
  for ``score_threshold``'s parameter.

Adding a detector: ``docs/development/adding-a-detector.md``. No Django imports here or in any
detector module. scipy and scikit-learn are imported on first use inside the detectors that
need them, so importing the registry (every ``manage.py`` call, every web worker) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import demand, ghost_stock, inventory_discrepancy, ml, price
from .base import DetectionInput, MissingInput

__all__ = [
    "DAILY_SCHEDULE",
    "REGISTRY",
    "DetectionInput",
    "DetectorSpec",
    "MissingInput",
    "ScoreThreshold",
    "detectors_scheduled",
]

DAILY_SCHEDULE = "daily"
"""The default detection schedule (05:00, after the nightly data load)."""

SCORE_IS_PARAM = "identity"
SCORE_IS_NEG_LOG10 = "neg_log10"
SCORE_TRANSFORMS = (SCORE_IS_PARAM, SCORE_IS_NEG_LOG10)
"""How a score threshold maps to its parameter: equal, or ``score = -log10(param)`` (a
probability below which a finding is flagged)."""


@dataclass(frozen=True)
class ScoreThreshold:
    """The detector parameter that acts as a threshold on its findings' ``score``.

    ``transform`` is one of ``SCORE_TRANSFORMS``; ``stricter_is_larger`` says which way the
    parameter moves to flag less; ``exclude_details`` leaves out findings scored on another
    scale (matched on their ``details``). ``description`` says how score and parameter relate.
    """

    param: str
    transform: str
    stricter_is_larger: bool
    description: str
    exclude_details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transform not in SCORE_TRANSFORMS:
            raise ValueError(f"Unknown score transform {self.transform!r}.")


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector: its function, default parameters, a one-line description, and
    what the rest of the product needs to know about it (see the module docstring)."""

    name: str
    func: Callable[[DetectionInput, dict[str, Any]], pd.DataFrame]
    default_params: dict[str, Any]
    description: str
    # Whether the detector runs when no DetectorConfig row says otherwise. The Isolation Forest
    # is off by default: on the benchmark it found no event the other detectors missed and
    # added 0.2 false alarms per 1,000 SKU-location-days (docs/DETECTION.md).
    enabled_by_default: bool = True
    # The ``anomaly_type`` values of its findings (``AnomalyType`` values); empty means
    # ``(name,)``.
    anomaly_types: tuple[str, ...] = ()
    # The parameter a precision target can move, or a sentence saying why there is none.
    score_threshold: ScoreThreshold | str = "no score threshold is known for this detector"
    # The default beat schedule that runs it: ``DAILY_SCHEDULE`` or a schedule of its own.
    schedule: str = DAILY_SCHEDULE

    def __post_init__(self) -> None:
        if not self.anomaly_types:
            object.__setattr__(self, "anomaly_types", (self.name,))


REGISTRY: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in (
        DetectorSpec(
            "ghost_stock",
            ghost_stock.detect_ghost_stock,
            ghost_stock.DEFAULT_PARAMS,
            "Book stock > 0 while sales stopped longer than demand makes plausible.",
            anomaly_types=(ghost_stock.ANOMALY_TYPE,),
            score_threshold=ScoreThreshold(
                "min_p",
                SCORE_IS_NEG_LOG10,
                stricter_is_larger=False,
                description="score = -log10 p of the zero run; flagged when p < min_p",
            ),
            # Its own default schedule (daily 04:30, ``anomalies.services.schedules``).
            schedule="ghost_stock",
        ),
        DetectorSpec(
            "demand_spike",
            demand.detect_demand_spike,
            demand.DEFAULT_PARAMS,
            "Sales far above the expected level for the weekday, not explained by a promotion.",
            score_threshold=ScoreThreshold(
                "spike_z",
                SCORE_IS_PARAM,
                stricter_is_larger=True,
                description="score = z of the day's units; flagged from spike_z (cold-start "
                "spikes are scored on another scale and are left out)",
                exclude_details={"rule": "cold_start"},
            ),
        ),
        DetectorSpec(
            "demand_drop",
            demand.detect_demand_drop,
            demand.DEFAULT_PARAMS,
            "Sales far below the expected level for the weekday, not explained by the calendar.",
            score_threshold=ScoreThreshold(
                "drop_max_p",
                SCORE_IS_NEG_LOG10,
                stricter_is_larger=False,
                description="score = -log10 tail probability of the run; flagged when it is "
                "below drop_max_p",
            ),
        ),
        DetectorSpec(
            "price_anomaly",
            price.detect_price_anomaly,
            price.DEFAULT_PARAMS,
            "Realized price far from the regular price with no promotion to explain it.",
            anomaly_types=(price.ANOMALY_TYPE,),
            score_threshold="no single score threshold: high_ratio and low_ratio bound the two "
            "directions separately (score = |log2 price ratio|; store-level findings count "
            "items)",
        ),
        DetectorSpec(
            "inventory_discrepancy",
            inventory_discrepancy.detect_inventory_discrepancy,
            inventory_discrepancy.DEFAULT_PARAMS,
            "Book-stock change that receipts and sales do not explain.",
            anomaly_types=(inventory_discrepancy.ANOMALY_TYPE, inventory_discrepancy.OUTAGE_TYPE),
            score_threshold="no single score threshold: the score is the unexplained change "
            "over a tolerance made of min_units and tolerance_pct",
        ),
        DetectorSpec(
            "ml_detected",
            ml.detect_ml_outliers,
            ml.DEFAULT_PARAMS,
            "Isolation Forest over per SKU/location features (off unless enabled).",
            enabled_by_default=False,
            anomaly_types=(ml.ANOMALY_TYPE,),
            score_threshold=ScoreThreshold(
                "score_threshold",
                SCORE_IS_PARAM,
                stricter_is_larger=True,
                description="score = Isolation Forest anomaly score; flagged from score_threshold",
            ),
            # Its own default schedule (every 6 hours, ``anomalies.services.schedules``).
            schedule="ml",
        ),
    )
}


def detectors_scheduled(schedule: str) -> tuple[str, ...]:
    """Names of the registered detectors of a default schedule, in registry order."""
    return tuple(name for name, spec in REGISTRY.items() if spec.schedule == schedule)
