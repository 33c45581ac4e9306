"""Detection's findings on a seeded bundle, pinned against a snapshot.

A refactoring must not change what detection finds. This test backfills detection over a
small simulated bundle and compares every anomaly (type, SKU, location, dates, severity,
score rounded to 6 significant digits, root-cause parent; the Isolation Forest included) with
``snapshots/detection.json``.

The snapshot also records a digest of the bundle's CSVs, so a change of the simulator is told
apart from a change of detection. When detection is changed on purpose, regenerate it with
``SHELFWATCH_UPDATE_SNAPSHOT=1 pytest tests/anomalies/test_behaviour_snapshot.py``
and say why in the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest

from anomalies.models import Anomaly, DetectorConfig
from anomalies.services.runs import detection_backfill, detection_run
from inventory.importing import bundle_import
from lab.simulator import generate_bundle

pytestmark = pytest.mark.django_db

SNAPSHOT_FILE = Path(__file__).parent / "snapshots" / "detection.json"
BUNDLE = {"seed": 23, "n_locations": 5, "n_skus": 80, "n_days": 160}
BACKFILL_DAYS = 45


def _bundle_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _score(value: float) -> str:
    return f"{value:.6g}"


def _anomalies() -> list[list]:
    rows = Anomaly.objects.select_related("product", "location", "parent").order_by(
        "anomaly_type", "location__code", "product__sku", "start_date"
    )
    out = []
    for a in rows:
        parent = None
        if a.parent_id is not None:
            parent = [
                a.parent.anomaly_type,
                a.parent.product.sku if a.parent.product_id else None,
                a.parent.start_date.isoformat(),
            ]
        out.append(
            [
                a.anomaly_type,
                a.product.sku if a.product_id else None,
                a.location.code,
                a.start_date.isoformat(),
                a.end_date.isoformat(),
                a.severity,
                _score(a.score),
                parent,
            ]
        )
    return out


def test_detection_finds_what_the_snapshot_holds(tmp_path):
    generate_bundle(out_dir=tmp_path, **BUNDLE)
    digest = _bundle_digest(tmp_path)
    bundle_import(directory=tmp_path)
    end = dt.date(2026, 10, 31)
    detection_backfill(start=end - dt.timedelta(days=BACKFILL_DAYS - 1), end=end)
    # The Isolation Forest is off by default; one run with it on (and looser thresholds, so
    # that it finds something on this small bundle) pins it too.
    DetectorConfig.objects.update_or_create(
        detector="ml_detected",
        defaults={"enabled": True, "params": {"score_threshold": 0.55, "min_feature_z": 3.0}},
    )
    detection_run(as_of=end, detectors=["ml_detected"])
    found = {"bundle": BUNDLE, "bundle_sha256": digest, "anomalies": _anomalies()}

    if os.environ.get("SHELFWATCH_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT_FILE.write_text(json.dumps(found, indent=1) + "\n")
        pytest.skip(f"snapshot written to {SNAPSHOT_FILE}")
    expected = json.loads(SNAPSHOT_FILE.read_text())
    assert found["bundle_sha256"] == expected["bundle_sha256"], (
        "the simulator's output changed: the snapshot no longer tests detection alone"
    )
    assert len(found["anomalies"]) == len(expected["anomalies"])
    assert found["anomalies"] == expected["anomalies"]
