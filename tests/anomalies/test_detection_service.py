"""The detection service: loading as of a date, running detectors, persisting findings."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from anomalies.detectors import REGISTRY, DetectorSpec, MissingInput
from anomalies.detectors.base import make_findings
from anomalies.models import Anomaly, DetectionRun, DetectorConfig, RunStatus
from anomalies.services.export import EXPORT_COLUMNS
from anomalies.services.loading import detection_input_load
from anomalies.services.runs import (
    DetectionError,
    detection_backfill,
    detection_run,
    detection_run_request,
)
from anomalies.services.schedules import DEFAULT_SCHEDULES, schedules_ensure
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory, StockLevelFactory

pytestmark = pytest.mark.django_db

DAY0 = dt.date(2024, 3, 1)


@pytest.fixture
def sales_history():
    """One product at one location selling 5 units a day for 10 days from DAY0."""
    product = ProductFactory(sku="A1", unit_price="2.00")
    location = LocationFactory(code="S1")
    for i in range(10):
        DailySalesFactory(
            product=product, location=location, date=DAY0 + dt.timedelta(days=i), units_sold=5
        )
    return product, location


def _zero_run_detector(seen: list[pd.Timestamp]):
    """A detector that reports one ongoing condition starting on DAY0 + 2, up to as-of."""

    def detect(data, params):
        seen.append(data.sales["date"].max())
        row = data.sales.iloc[0]
        return make_findings(
            {
                "anomaly_type": ["ghost_stock"],
                "product_id": [int(row["product_id"])],
                "location_id": [int(row["location_id"])],
                "start_date": [pd.Timestamp(DAY0 + dt.timedelta(days=2))],
                "end_date": [data.as_of_ts],
                "severity": ["warning"],
                "score": [params["score"]],
                "expected_value": [5.0],
                "actual_value": [0.0],
                "value_at_risk": [12.5],
                "explanation": [f"as of {data.as_of}"],
                "details": [{"as_of": data.as_of_ts, "n": pd.NA}],
            }
        )

    return detect


@pytest.fixture
def fake_ghost(monkeypatch):
    seen: list[pd.Timestamp] = []
    spec = DetectorSpec("ghost_stock", _zero_run_detector(seen), {"score": 0.9}, "test")
    monkeypatch.setitem(REGISTRY, "ghost_stock", spec)
    return seen


def test_loading_sees_nothing_after_the_as_of_date(sales_history):
    data = detection_input_load(as_of=DAY0 + dt.timedelta(days=4), history_days=3)
    assert sorted(data.sales["date"].dt.date.unique()) == [
        DAY0 + dt.timedelta(days=2),
        DAY0 + dt.timedelta(days=3),
        DAY0 + dt.timedelta(days=4),
    ]
    assert data.stock is None  # no book stock imported at all
    assert data.products.loc[sales_history[0].pk, "unit_price"] == 2.0
    assert str(data.sales["units_sold"].dtype) == "int64"


def test_loading_includes_stock_when_imported(sales_history):
    product, location = sales_history
    StockLevelFactory(product=product, location=location, date=DAY0, on_hand=7)
    data = detection_input_load(as_of=DAY0, history_days=5)
    assert data.stock["on_hand"].tolist() == [7]


def test_persisting_condition_extends_one_anomaly(sales_history, fake_ghost):
    for day in (5, 6, 7):
        detection_run(as_of=DAY0 + dt.timedelta(days=day), detectors=["ghost_stock"])
    anomaly = Anomaly.objects.get()
    assert anomaly.start_date == DAY0 + dt.timedelta(days=2)
    assert anomaly.end_date == DAY0 + dt.timedelta(days=7)
    assert anomaly.first_detected_on == DAY0 + dt.timedelta(days=5)
    assert anomaly.last_detected_on == DAY0 + dt.timedelta(days=7)
    assert anomaly.explanation == f"as of {DAY0 + dt.timedelta(days=7)}"
    assert anomaly.details == {"as_of": str(DAY0 + dt.timedelta(days=7)), "n": None}
    assert anomaly.score == 0.9 and anomaly.value_at_risk == Decimal("12.50")
    assert anomaly.last_run == DetectionRun.objects.get(as_of=DAY0 + dt.timedelta(days=7))
    assert anomaly.updated_at > anomaly.created_at


def test_rerunning_a_backfill_creates_nothing_and_changes_nothing(sales_history, fake_ghost):
    detection_backfill(
        start=DAY0 + dt.timedelta(days=3),
        end=DAY0 + dt.timedelta(days=9),
        detectors=["ghost_stock"],
    )
    before = list(
        Anomaly.objects.values("id", "start_date", "end_date", "last_detected_on", "explanation")
    )
    runs = detection_backfill(
        start=DAY0 + dt.timedelta(days=3),
        end=DAY0 + dt.timedelta(days=9),
        detectors=["ghost_stock"],
    )
    after = list(
        Anomaly.objects.values("id", "start_date", "end_date", "last_detected_on", "explanation")
    )
    assert before == after
    assert len(before) == 1
    assert sum(run.counts["ghost_stock"]["new"] for run in runs) == 0


def test_backfill_is_walk_forward(sales_history, fake_ghost):
    detection_backfill(
        start=DAY0 + dt.timedelta(days=3),
        end=DAY0 + dt.timedelta(days=5),
        detectors=["ghost_stock"],
    )
    assert [ts.date() for ts in fake_ghost] == [DAY0 + dt.timedelta(days=d) for d in (3, 4, 5)]


def test_missing_input_skips_detector_with_a_note(sales_history, monkeypatch):
    def needs_stock(data, params):
        raise MissingInput("no book stock imported")

    monkeypatch.setitem(REGISTRY, "ghost_stock", DetectorSpec("ghost_stock", needs_stock, {}, "t"))
    run = detection_run(as_of=DAY0, detectors=["ghost_stock"])
    assert run.status == RunStatus.SUCCEEDED
    assert run.notes == ["ghost_stock: skipped (no book stock imported)"]
    assert run.counts["ghost_stock"]["skipped"] is True


def test_disabled_detector_is_skipped_and_settings_recorded(sales_history, fake_ghost):
    DetectorConfig.objects.update_or_create(
        detector="ghost_stock", defaults={"enabled": False, "params": {"score": 0.5}}
    )
    run = detection_run(as_of=DAY0, detectors=["ghost_stock"])
    assert "disabled" in run.notes[0]
    assert run.settings["ghost_stock"] == {"enabled": False, "params": {"score": 0.5}}
    assert not Anomaly.objects.exists()


def test_admin_parameter_override_reaches_the_detector(sales_history, fake_ghost):
    DetectorConfig.objects.update_or_create(
        detector="ghost_stock", defaults={"params": {"score": 0.42}}
    )
    detection_run(as_of=DAY0 + dt.timedelta(days=5), detectors=["ghost_stock"])
    assert Anomaly.objects.get().score == pytest.approx(0.42)


def test_failing_detector_marks_run_failed_and_writes_nothing(sales_history, monkeypatch):
    def broken(data, params):
        raise RuntimeError("boom")

    monkeypatch.setitem(REGISTRY, "ghost_stock", DetectorSpec("ghost_stock", broken, {}, "t"))
    with pytest.raises(RuntimeError):
        detection_run(as_of=DAY0, detectors=["ghost_stock"])
    run = DetectionRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert "boom" in run.error
    assert not Anomaly.objects.exists()


def test_unknown_detector_and_no_data_are_clear_errors(db):
    with pytest.raises(DetectionError, match="No sales data"):
        detection_run(as_of=None)
    with pytest.raises(DetectionError, match="Unknown detector"):
        detection_run(as_of=DAY0, detectors=["nope"])


def test_default_as_of_is_latest_date_with_data(sales_history, fake_ghost):
    run = detection_run(as_of=None, detectors=["ghost_stock"])
    assert run.as_of == DAY0 + dt.timedelta(days=9)


def test_request_runs_task_eagerly_after_commit(
    sales_history, fake_ghost, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = detection_run_request(as_of=DAY0 + dt.timedelta(days=5), detectors=["ghost_stock"])
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.counts["ghost_stock"]["new"] == 1


def test_schedules_are_created_once_and_admin_edits_survive(db):
    created, kept = schedules_ensure()
    assert len(created) == len(DEFAULT_SCHEDULES) and kept == []
    ml = PeriodicTask.objects.get(name="ML detection (every 6 hours)")
    assert ml.crontab.hour == "0,6,12,18" and ml.crontab.minute == "0"
    assert json.loads(ml.kwargs) == {"detectors": ["ml_detected"]}
    ghost = PeriodicTask.objects.get(name="Ghost-stock detection (daily 04:30)")
    assert (ghost.crontab.hour, ghost.crontab.minute) == ("4", "30")
    ghost.enabled = False
    ghost.kwargs = json.dumps({"detectors": ["ghost_stock", "inventory_discrepancy"]})
    ghost.save()
    created, kept = schedules_ensure()
    assert created == [] and len(kept) == len(DEFAULT_SCHEDULES)
    ghost.refresh_from_db()
    assert ghost.enabled is False
    assert json.loads(ghost.kwargs)["detectors"] == ["ghost_stock", "inventory_discrepancy"]
    detection_defaults = [d for d in DEFAULT_SCHEDULES if d.task == "anomalies.detect_scheduled"]
    assert PeriodicTask.objects.filter(task="anomalies.detect_scheduled").count() == len(
        detection_defaults
    )
    assert PeriodicTask.objects.count() == len(DEFAULT_SCHEDULES)


def test_detect_and_export_commands(sales_history, fake_ghost, tmp_path):
    out = io.StringIO()
    call_command(
        "detect_anomalies",
        "--backfill",
        str(DAY0 + dt.timedelta(days=4)),
        str(DAY0 + dt.timedelta(days=6)),
        "--detectors",
        "ghost_stock",
        stdout=out,
    )
    assert "[3/3]" in out.getvalue()
    path = tmp_path / "anomalies.csv"
    call_command("export_anomalies", str(path), stdout=io.StringIO())
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == EXPORT_COLUMNS
    assert rows[0]["sku"] == "A1" and rows[0]["location"] == "S1"
    assert rows[0]["end_date"] == str(DAY0 + dt.timedelta(days=6))
    assert rows[0]["value_at_risk"] == "12.50"


def test_detect_command_rejects_bad_arguments(db):
    with pytest.raises(CommandError, match="No sales data"):
        call_command("detect_anomalies", stdout=io.StringIO())
    with pytest.raises(CommandError, match="not a date"):
        call_command("detect_anomalies", "--as-of", "2024-13-01", stdout=io.StringIO())


def test_adjacent_findings_of_one_run_become_one_anomaly_spanning_both(sales_history, monkeypatch):
    product, location = sales_history

    def two_days(data, params):
        return make_findings(
            {
                "anomaly_type": ["demand_drop", "demand_drop"],
                "product_id": [product.pk, product.pk],
                "location_id": [location.pk, location.pk],
                "start_date": [pd.Timestamp(DAY0), pd.Timestamp(DAY0 + dt.timedelta(days=1))],
                "end_date": [pd.Timestamp(DAY0), pd.Timestamp(DAY0 + dt.timedelta(days=2))],
                "severity": ["warning", "warning"],
                "score": [3.0, 2.5],
                "expected_value": [5.0, 5.0],
                "actual_value": [0.0, 0.0],
                "value_at_risk": [1.0, 1.0],
                "explanation": ["a", "b"],
                "details": [{}, {}],
            }
        )

    monkeypatch.setitem(REGISTRY, "demand_drop", DetectorSpec("demand_drop", two_days, {}, "t"))
    run = detection_run(as_of=DAY0 + dt.timedelta(days=2), detectors=["demand_drop"])
    anomaly = Anomaly.objects.get()
    assert (anomaly.start_date, anomaly.end_date) == (DAY0, DAY0 + dt.timedelta(days=2))
    assert run.counts["demand_drop"]["new"] == 1
