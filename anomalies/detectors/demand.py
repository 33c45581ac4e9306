"""Demand spike/drop detector (placeholder until implemented)."""
from __future__ import annotations
DEFAULT_PARAMS: dict = {}
def detect_demand_spike(data, params):
    raise NotImplementedError
def detect_demand_drop(data, params):
    raise NotImplementedError
