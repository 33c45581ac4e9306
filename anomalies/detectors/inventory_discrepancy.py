"""Inventory discrepancy detector (placeholder until implemented)."""
from __future__ import annotations
DEFAULT_PARAMS: dict = {}
def detect_inventory_discrepancy(data, params):
    raise NotImplementedError
