"""Isolation Forest detector (placeholder until implemented)."""
from __future__ import annotations
DEFAULT_PARAMS: dict = {}
def detect_ml_outliers(data, params):
    raise NotImplementedError
