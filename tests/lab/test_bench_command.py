"""The bench's safety check, its report and its anomaly snapshot (no timing here: the bench
itself prints figures; these tests check it reports them truthfully)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from lab.bench import phases
from lab.bench.report import report_rows, report_table
from tests.factories import AnomalyFactory


def test_bench_refuses_a_database_whose_name_does_not_say_bench():
    # The test database (test_shelfwatch or an in-memory SQLite) is not a bench database.
    assert "bench" not in str(connection.settings_dict["NAME"])
    with pytest.raises(phases.BenchError, match="does not look disposable"):
        phases.database_check_disposable()
    with pytest.raises(CommandError, match="does not look disposable"):
        call_command("bench", "--only", "detect")


def test_bench_rejects_unknown_phases():
    with pytest.raises(CommandError, match="Unknown phase"):
        call_command("bench", "--only", "detect,fly")


def _figures(**phases_: dict) -> dict:
    return {
        "size": {"name": "L", "locations": 100, "skus": 1000, "days": 365},
        "machine": {"cpus": 2, "memory_gb": 23.5, "database": "postgresql"},
        "phases": phases_,
    }


def test_report_judges_each_figure_against_its_target():
    figures = _figures(
        import_={},
        detect={
            "peak_rss_mb": 2100,
            "result": {"series": 100_000, "chunks": 10, "findings": 900, "seconds": 12.5},
        },
        backfill={
            "peak_rss_mb": 400,
            "result": {"days": 90, "anomalies": 500, "seconds": 19.0, "seconds_per_day": 0.211},
        },
        workers={
            "result": {
                "chunks": 10,
                "chunk_locations": 10,
                "in_process_seconds": 20.0,
                "runs": [
                    {
                        "workers": 2,
                        "seconds": 11.0,
                        "identical_to_in_process": False,
                        "worker_processes_used": 2,
                    }
                ],
            }
        },
    )
    figures["phases"].pop("import_")
    rows = {row["area"]: row for row in report_rows(figures)}
    # 12.5 s is within 20 s but 2,100 MB is over 2 GB: a miss.
    assert rows["detection run"]["verdict"] == "MISS"
    assert rows["backfill (S)"]["verdict"] == "ok"
    assert rows["Celery fan-out"]["verdict"] == "MISS"
    assert "identical result: NO" in rows["Celery fan-out"]["metric"]
    figures["table"] = report_rows(figures)
    table = report_table(figures)
    assert table.startswith("ShelfWatch bench, size L (100 locations x 1000 SKUs x 365 days)")
    assert "MISS" in table and "12.50 s" in table


def test_detection_target_does_not_apply_below_100k_sku_locations():
    figures = _figures(
        detect={
            "peak_rss_mb": 300,
            "result": {"series": 3_000, "chunks": 1, "findings": 30, "seconds": 30.0},
        }
    )
    (row,) = report_rows(figures)
    assert row["verdict"] == ""


@pytest.mark.django_db
def test_snapshot_is_equal_only_for_the_same_content():
    first = AnomalyFactory(start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 1, 2))
    AnomalyFactory(parent=first, start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 1, 1))
    before = phases.anomalies_snapshot()
    assert len(before) == 2
    first.score += 1
    first.save()
    assert phases.anomalies_snapshot() != before


@pytest.mark.django_db(transaction=True)  # the phases TRUNCATE, as on a bench database
def test_phases_report_what_they_did_on_a_small_bundle(tmp_path, monkeypatch):
    """Import, detection (whole and restricted) and backfill phases on a 3 x 30 bundle: the
    figures they return are the bundle's and the run's, not made up."""
    from inventory.models import DailySales, StockLevel
    from lab.simulator import generate_bundle

    monkeypatch.setattr(phases, "database_check_disposable", lambda: None)
    generate_bundle(out_dir=tmp_path, seed=5, n_locations=3, n_skus=30, n_days=130)
    messages: list[str] = []
    imported = phases.phase_import(folder=tmp_path, progress=messages.append)
    assert imported["rows"] == sum(entry["rows"] for entry in imported["files"].values())
    assert imported["files"]["sales.csv"]["rows"] == DailySales.objects.count()
    assert imported["files"]["inventory.csv"]["rows"] == StockLevel.objects.count() == 3 * 30 * 130

    whole = phases.phase_detect(series=None, progress=messages.append)
    assert (whole["series"], whole["locations"]) == (90, 3)
    one = phases.phase_detect(series=30, progress=messages.append)
    assert (one["series"], one["locations"], one["chunks"]) == (30, 1, 1)

    backfill = phases.phase_backfill(days=3, progress=messages.append)
    assert backfill["days"] == 3 and backfill["end"] == "2026-10-31"
    # Both are rounded (to 0.01 s and 0.001 s) from the same measurement.
    assert backfill["seconds_per_day"] == pytest.approx(backfill["seconds"] / 3, abs=0.005)
