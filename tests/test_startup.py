"""What a process pays at start-up, and what production settings leave out (issue 10).

Each check runs in a fresh interpreter: ``sys.modules`` of the test process is shared with
every other test."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib import admin
from django.urls import get_resolver
get_resolver().url_patterns  # imports every urls module, view, serializer and admin
from django.core.management import get_commands
print(json.dumps({
    "apps": settings.INSTALLED_APPS,
    "commands": sorted(get_commands()),
    "heavy": sorted(m for m in ("scipy.stats", "sklearn") if m in sys.modules),
    "admin_models": len(admin.site._registry),
}))
"""


def _probe(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_can_leave_the_lab_out():
    without = _probe(SHELFWATCH_LAB="false")
    assert "lab" not in without["apps"]
    assert "bench" not in without["commands"]
    assert "generate_demo_bundle" not in without["commands"]
    # The product still has its own commands and its admin.
    assert {"detect_anomalies", "import_retail", "import_transactions"} <= set(without["commands"])
    assert without["admin_models"] > 0

    default = _probe()
    assert "lab" in default["apps"]
    assert {"bench", "bench_phase", "generate_demo_bundle", "evaluate_detection"} <= set(
        default["commands"]
    )


def test_start_up_imports_neither_scipy_stats_nor_scikit_learn():
    # Every manage.py call and every web worker loads settings, urls, views and the admin;
    # only running a detector needs scipy.stats (demand) or scikit-learn (Isolation Forest).
    assert _probe()["heavy"] == []
