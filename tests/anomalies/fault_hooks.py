"""Test-only entry point of the fault suite's subprocesses (``tests/anomalies/test_faults.py``).

``celery -A tests.anomalies.fault_hooks worker`` starts a real worker, and
``python -m tests.anomalies.fault_hooks <command> ...`` runs a management command, both with
detection held up on one chunk, so that the test can kill the process mid-chunk:

- ``FAULT_SLOW_LOCATION``: id of the location whose chunk waits (unset: nothing waits);
- ``FAULT_MARKER``: file touched when that chunk has loaded its data and starts detecting;
- ``FAULT_RELEASE``: the chunk goes on once this file exists (at the latest after 120 s).

Nothing in the product knows about these variables: the hook replaces
``anomalies.services.runs.run_detectors`` in the subprocess only.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from anomalies.services import runs  # noqa: E402
from config.celery import app  # noqa: E402

HOLD_SECONDS_MAX = 120


def install_slow_chunk() -> None:
    """Hold up ``run_detectors`` on the chunk holding ``FAULT_SLOW_LOCATION`` (see above)."""
    raw = os.environ.get("FAULT_SLOW_LOCATION")
    if not raw:
        return
    slow_location = int(raw)
    marker = Path(os.environ["FAULT_MARKER"])
    release = Path(os.environ.get("FAULT_RELEASE", "/nonexistent/release"))
    real = runs.run_detectors

    def slow(data, names, effective):
        if slow_location in set(data.sales["location_id"]):
            marker.touch()
            deadline = time.monotonic() + HOLD_SECONDS_MAX
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return real(data, names, effective)

    runs.run_detectors = slow


install_slow_chunk()

__all__ = ["app"]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])
