"""Dashboard latency at a given number of anomalies (issue 14: "under 300 ms at 50 anomalies
and under 1 s at 1M, cached aggregates").

For each size: the seeded anomalies (``anomaly_seed``) replace the previous size's, then the
dashboard page is fetched in-process as a superuser (Django's test ``Client``, no network):

- ``cold``: with the cache emptied before every request, so each one computes the summary
  (``outcomes.services.dashboard_summary``): what the first visitor of a window pays, and
  every visitor when ``SHELFWATCH_DASHBOARD_CACHE_SECONDS=0``;
- ``cached``: with the cache on, after one request filled it: what everyone else gets for
  ``SHELFWATCH_DASHBOARD_CACHE_SECONDS``.

Figures are printed, never asserted (no test may assert on time); the query counts are the
part tests pin (tests/test_dashboard.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from django.core.cache import cache
from django.test.utils import override_settings

from lab.bench.anomaly_seed import anomalies_seed, anomalies_seed_clear
from lab.bench.phases import database_check_disposable
from lab.bench.web import LatencyReport, bench_superuser, inprocess_measure

DASHBOARD_PATH = "/admin/dashboard/"
DASHBOARD_CACHE_SECONDS = 600  # long enough that no entry expires while measuring


@dataclass(frozen=True)
class DashboardFigures:
    """One size: seconds to seed it, and the cold and cached latency of each window."""

    anomalies: int
    seed_seconds: float
    windows: dict[str, dict[str, LatencyReport]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return asdict(self)


def dashboard_measure(
    *,
    sizes: list[int],
    days: list[int],
    cold_requests: int = 3,
    cached_requests: int = 20,
    say: Callable[[str], None] = print,
) -> list[DashboardFigures]:
    """Seed each of ``sizes`` anomalies in turn and measure the dashboard's ``?days=`` windows
    ``days``, cold and cached. Refuses a database whose name lacks "bench"
    (``database_check_disposable``); the seeded anomalies are removed at the end."""
    database_check_disposable()
    figures = []
    try:
        for size in sizes:
            anomalies_seed_clear()
            started = time.perf_counter()
            anomalies_seed(count=size)
            seeded_s = time.perf_counter() - started
            say(f"{size:,} anomalies seeded in {seeded_s:.1f} s")
            windows = {}
            with bench_superuser(username="bench-dashboard") as who:
                from django.contrib.auth import get_user_model

                user = get_user_model().objects.get(pk=who.user_id)
                for window in days:
                    path = f"{DASHBOARD_PATH}?days={window}"
                    cold = _cold(path, user=user, requests=cold_requests)
                    with override_settings(
                        SHELFWATCH_DASHBOARD_CACHE_SECONDS=DASHBOARD_CACHE_SECONDS
                    ):
                        cache.clear()
                        cached = inprocess_measure(
                            path, user=user, requests=cached_requests, warmup=1
                        )
                    windows[str(window)] = {"cold": cold, "cached": cached}
                    say(
                        f"  {window:>3} days: cold p50 {cold.p50_ms:,.0f} ms "
                        f"(max {cold.max_ms:,.0f}, {cold.queries} queries) · cached p50 "
                        f"{cached.p50_ms:,.0f} ms (p95 {cached.p95_ms:,.0f}, "
                        f"{cached.queries} queries)"
                    )
            figures.append(DashboardFigures(size, round(seeded_s, 1), windows))
    finally:
        anomalies_seed_clear()
    return figures


def _cold(path: str, *, user: Any, requests: int) -> LatencyReport:
    # The cache off: every request computes the summary, as the first visitor's does.
    with override_settings(SHELFWATCH_DASHBOARD_CACHE_SECONDS=0):
        return inprocess_measure(path, user=user, requests=requests, warmup=1)
