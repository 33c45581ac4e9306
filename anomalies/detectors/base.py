"""Shared contract of the detectors: the input bundle, the findings frame, helpers.

Pure pandas/numpy; no Django imports (detectors are unit-tested without a database).

Input frames (built by ``anomalies.services.loading``; all dates are ``datetime64[ns]``
normalised to midnight, ids are ``int64``):

``sales``      product_id, location_id, date, units_sold (int64), units_returned (int64),
               unit_price (float64, average realized price, NaN if unknown).
               Only days with activity: a missing row means zero sales.
``stock``      product_id, location_id, date, on_hand (int64): book stock at end of day.
               ``None`` when no book stock was imported.
``receipts``   product_id, location_id, date, units (int64). Empty frame when none.
``adjustments`` product_id, location_id, date, units (int64): recorded book-stock corrections
               (a cycle count's counted − book), which explain a change of book stock.
``products``   product_id (index), sku, name, category (str), unit_price (float64, regular
               shelf price), unit_cost (float64, NaN if unknown).
``locations``  location_id (index), code, name.
``promotions`` product_id, location_id (Int64; <NA> = every location), start_date, end_date,
               discount_pct (float64).
``calendar``   date, location_id (Int64; <NA> = every location), name, is_closed (bool).

Findings frame (what every detector returns; ``FINDING_COLUMNS``):
anomaly_type (str), product_id (Int64; <NA> for a location-level finding), location_id (int64),
start_date, end_date (datetime64[ns]), severity ("info" | "warning" | "critical"),
score (float64), expected_value (float64), actual_value (float64), value_at_risk (float64,
money), explanation (str, one line a store manager understands), details (object: a
JSON-serialisable dict per row), p_value (float64: the probability, under the null model the
detector fitted to that series, of evidence at least as extreme as observed, for that one
finding and BEFORE any multiple-testing correction; NaN when the detector gives none), tests
(int64: how many hypotheses the detector tested at that finding's location on this run, e.g.
eligible series x windows; the family size m of a false-discovery-rate correction; 0 when the
detector gives none).

``make_findings`` fills ``p_value`` = NaN and ``tests`` = 0 when they are not given; a detector
that computes them assigns the two columns on the frame it returns. The detection service
(``anomalies.services.runs``) then applies Benjamini-Hochberg control per location over the
findings of all detectors that carry a p-value (``anomalies.detectors.fdr``), which adds
``q_value`` (float64, NaN where ``p_value`` is NaN). Findings without a p-value are reported as
they are, outside the false-discovery control.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

FINDING_COLUMNS: list[str] = [
    "anomaly_type",
    "product_id",
    "location_id",
    "start_date",
    "end_date",
    "severity",
    "score",
    "expected_value",
    "actual_value",
    "value_at_risk",
    "explanation",
    "details",
    "p_value",
    "tests",
]
# Columns a detector may leave out of ``make_findings``: "gives no p-value, tested nothing".
FINDING_DEFAULTS: dict[str, object] = {"p_value": np.nan, "tests": 0}


class MissingInput(Exception):
    """Raised by a detector whose input data is absent (e.g. no book stock imported).

    The detection service records the message as a note and skips the detector; it is not a
    failure of the run.
    """


@dataclass(frozen=True)
class DetectionInput:
    """Everything a detector may read, as of ``as_of`` (no row after that date)."""

    as_of: date
    sales: pd.DataFrame
    products: pd.DataFrame
    locations: pd.DataFrame
    stock: pd.DataFrame | None = None
    receipts: pd.DataFrame = field(default_factory=lambda: empty_frame(RECEIPT_DTYPES))
    adjustments: pd.DataFrame = field(default_factory=lambda: empty_frame(RECEIPT_DTYPES))
    promotions: pd.DataFrame = field(default_factory=lambda: empty_frame(PROMOTION_DTYPES))
    calendar: pd.DataFrame = field(default_factory=lambda: empty_frame(CALENDAR_DTYPES))
    # Chain-wide price points (PRICE_POINT_DTYPES): the unit prices each SKU sold at on each
    # day anywhere, outside promotions; only days before ``as_of`` are read.
    price_points: pd.DataFrame = field(default_factory=lambda: empty_frame(PRICE_POINT_DTYPES))
    currency: str = "£"
    # Builds the grid instead of the frames: a walk-forward backfill cuts each day's grid
    # out of one grid of its whole window (``grid.GridWindow``). It must return what
    # ``grid.grid_from_frames`` builds from the frames (a ``grid.Grid``).
    grid_factory: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    # What detectors derive from this input once and share (``grid.build_grid`` keeps the
    # grid here). A frozen dataclass may hold a mutable dict; it is not part of equality.
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def as_of_ts(self) -> pd.Timestamp:
        """``as_of`` as a pandas Timestamp (midnight)."""
        return pd.Timestamp(self.as_of)


SALES_DTYPES: dict[str, str] = {
    "product_id": "int64",
    "location_id": "int64",
    "date": "datetime64[ns]",
    "units_sold": "int64",
    "units_returned": "int64",
    "unit_price": "float64",
}
STOCK_DTYPES: dict[str, str] = {
    "product_id": "int64",
    "location_id": "int64",
    "date": "datetime64[ns]",
    "on_hand": "int64",
}
RECEIPT_DTYPES: dict[str, str] = {
    "product_id": "int64",
    "location_id": "int64",
    "date": "datetime64[ns]",
    "units": "int64",
}
PROMOTION_DTYPES: dict[str, str] = {
    "product_id": "int64",
    "location_id": "Int64",
    "start_date": "datetime64[ns]",
    "end_date": "datetime64[ns]",
    "discount_pct": "float64",
}
PRICE_POINT_DTYPES: dict[str, str] = {
    "product_id": "int64",
    "date": "datetime64[ns]",
    "price": "float64",  # unit price, currency units (pounds), rounded to the penny
}
CALENDAR_DTYPES: dict[str, str] = {
    "date": "datetime64[ns]",
    "location_id": "Int64",
    "name": "object",
    "is_closed": "bool",
}


def empty_frame(dtypes: dict[str, str]) -> pd.DataFrame:
    """An empty frame with the given columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


def empty_findings() -> pd.DataFrame:
    """An empty findings frame with ``FINDING_COLUMNS``."""
    return _EMPTY_FINDINGS.copy()


def make_findings(columns: dict[str, object]) -> pd.DataFrame:
    """Build a findings frame from column arrays, coercing dtypes to the contract.

    A scalar column is repeated on every row. ``p_value`` and ``tests`` may be left out
    (``FINDING_DEFAULTS``: NaN and 0, i.e. outside the false-discovery control). Raises
    ``KeyError`` if another column of ``FINDING_COLUMNS`` is missing, ``ValueError`` if every
    column is a scalar.
    """
    columns = {**FINDING_DEFAULTS, **columns}
    lengths = [len(columns[col]) for col in FINDING_COLUMNS if np.ndim(columns[col]) > 0]
    if not lengths:
        raise ValueError("make_findings needs at least one column of values, not scalars only.")
    n = lengths[0]
    # Each column is typed once and the frame built in one go: per-column ``astype`` on a
    # frame cost more than the detectors' arithmetic on a day with few findings.
    typed: dict[str, object] = {}
    for col in FINDING_COLUMNS:
        value = columns[col]
        if np.ndim(value) == 0 and not isinstance(value, dict):
            value = [value] * n
        if col == "product_id":
            typed[col] = pd.array(value, dtype="Int64")
        elif col == "location_id":
            typed[col] = np.asarray(value).astype("int64")
        elif col in ("start_date", "end_date"):
            typed[col] = np.asarray(pd.to_datetime(value)).astype("datetime64[ns]")
        elif col in ("score", "expected_value", "actual_value", "value_at_risk", "p_value"):
            typed[col] = np.asarray(value).astype("float64")
        elif col == "tests":
            typed[col] = np.asarray(value).astype("int64")
        else:
            # An explicit object Series (a plain array of str would become pandas' str dtype);
            # filled item by item so that a list of dicts or lists stays one object per row.
            if isinstance(value, np.ndarray):
                objects = value.astype(object)
            else:
                objects = np.empty(len(value), dtype=object)
                for i, item in enumerate(value):
                    objects[i] = item
            typed[col] = pd.Series(objects, dtype=object)
    return pd.DataFrame(typed)


_EMPTY_FINDINGS = make_findings({col: [] for col in FINDING_COLUMNS})


def severity_from_probability(p: np.ndarray | pd.Series) -> np.ndarray:
    """Map a detector's probability that the finding is real to a severity.

    ≥ 0.99 critical, ≥ 0.9 warning, otherwise info.
    """
    p = np.asarray(p, dtype="float64")
    return np.where(p >= 0.99, "critical", np.where(p >= 0.9, "warning", "info"))


def raise_severity(severity: np.ndarray, condition: np.ndarray) -> np.ndarray:
    """Raise severities one level (info → warning → critical) where ``condition`` holds."""
    raised = np.where(severity == "info", "warning", "critical")
    return np.where(condition, raised, severity)
