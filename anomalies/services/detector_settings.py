"""The detector settings rows (``DetectorConfig``): one per runnable detector, always there.

A fresh database (``make demo``, a deploy) gets a row per detector of ``REGISTRY`` after
``migrate``, so the admin's "Detector settings" lists every detector with its switch and its
defaults (enabling the Isolation Forest is one tick, not an "Add"). Rows hold only overrides
(``params`` empty at first): the defaults stay those of the code, so a release that improves
a default reaches every detector nobody tuned.
"""

from __future__ import annotations

from typing import Any

from anomalies.detectors import REGISTRY
from anomalies.models import DetectorConfig


def runnable_detectors() -> list[tuple[str, str]]:
    """``(name, description)`` of every registered detector, in registry order: the only
    values a ``DetectorConfig.detector`` can usefully take (a finding type such as
    ``pos_outage`` is raised by a detector, it is not one)."""
    return [(name, spec.description) for name, spec in REGISTRY.items()]


def detector_settings_ensure(*, model: Any = DetectorConfig) -> int:
    """Create the missing ``DetectorConfig`` row of each registered detector (``enabled`` as
    the detector's ``enabled_by_default``, no overrides); existing rows are left as they are.
    Idempotent; returns the number of rows created. ``model``: the model class to write
    through (``post_migrate`` passes the migrated state's)."""
    existing = set(model.objects.values_list("detector", flat=True))
    missing = [
        model(detector=name, enabled=spec.enabled_by_default, params={})
        for name, spec in REGISTRY.items()
        if name not in existing
    ]
    model.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)
