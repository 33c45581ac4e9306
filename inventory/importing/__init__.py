"""Importers of retail data: CSV bundles (``bundle_import``, ``bundle_parse``) and line-level
POS exports (``transactions_import``).

The public surface is this module; the submodules are the importers' internals.
"""

from __future__ import annotations

from inventory.importing.bundle import bundle_import, bundle_parse
from inventory.importing.errors import BundleError
from inventory.importing.summary import FileSummary, ImportSummary, Progress
from inventory.importing.transactions import (
    PRESETS,
    TransactionMapping,
    mapping_with,
    transactions_import,
)

__all__ = [
    "PRESETS",
    "BundleError",
    "FileSummary",
    "ImportSummary",
    "Progress",
    "TransactionMapping",
    "bundle_import",
    "bundle_parse",
    "mapping_with",
    "transactions_import",
]
