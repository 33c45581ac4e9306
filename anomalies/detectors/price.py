"""Price anomaly detector (placeholder until implemented)."""
from __future__ import annotations
DEFAULT_PARAMS: dict = {}
def detect_price_anomaly(data, params):
    raise NotImplementedError
