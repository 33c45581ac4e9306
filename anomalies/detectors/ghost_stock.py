"""Ghost stock detector (placeholder until implemented)."""
from __future__ import annotations
DEFAULT_PARAMS: dict = {}
def detect_ghost_stock(data, params):
    raise NotImplementedError
