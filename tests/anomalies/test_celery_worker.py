"""Detection through a real Celery worker consuming from Redis.

The worker runs in a thread of this process (``celery.contrib.testing.worker.start_worker``)
but takes its tasks from a real Redis broker, as production workers do. Without Redis the
tests skip locally; in CI (``CI=true``) they fail instead, since CI must run them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from anomalies.models import Anomaly, DetectionChunk, DetectionRun, RunStatus
from anomalies.services.runs import detection_run_request
from anomalies.services.schedules import schedules_ensure
from config.celery import app
from inventory.models import DailySales
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory

REDIS_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
DAY0 = dt.date(2024, 1, 1)
HISTORY_DAYS = 60

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_worker():
    if not _redis_reachable():
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable on 127.0.0.1:6379; CI must run the worker tests")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (start it to run worker tests)")
    saved = {
        key: app.conf[key]
        for key in (
            "broker_url",
            "result_backend",
            "task_always_eager",
            "broker_connection_retry_on_startup",
        )
    }
    # Detection fans out as a chord, which needs a result backend: Redis, as in production.
    app.conf.update(
        broker_url=REDIS_URL,
        result_backend=REDIS_URL,
        task_always_eager=False,
        broker_connection_retry_on_startup=False,
    )
    _reset_connections()
    app.connection_for_write().default_channel.client.flushdb()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield app
    finally:
        app.conf.update(saved)
        _reset_connections()


def _reset_connections() -> None:
    """Drop pools and the result backend built for the previous broker settings."""
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def sales_with_spike(db):
    """60 days of 10 units/day for one SKU, then 600 units on the last day (no promotion)."""
    product = ProductFactory(sku="SPIKE1", unit_price="3.00")
    location = LocationFactory(code="W1")
    for i in range(HISTORY_DAYS):
        DailySalesFactory(
            product=product,
            location=location,
            date=DAY0 + dt.timedelta(days=i),
            units_sold=10 + (i % 3) - 1,
            unit_price="3.00",
        )
    DailySalesFactory(
        product=product,
        location=location,
        date=DAY0 + dt.timedelta(days=HISTORY_DAYS),
        units_sold=600,
        unit_price="3.00",
    )
    return DAY0 + dt.timedelta(days=HISTORY_DAYS)


def _wait_for_run(run_id: int, timeout_s: float = 60.0) -> DetectionRun:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = DetectionRun.objects.get(pk=run_id)
        if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {timeout_s}s")


def test_detection_run_executes_on_a_real_worker(redis_worker, sales_with_spike):
    with transaction.atomic():
        run = detection_run_request(as_of=sales_with_spike, detectors=["demand_spike"])
        assert run.status == RunStatus.PENDING
    finished = _wait_for_run(run.pk)
    assert finished.status == RunStatus.SUCCEEDED, finished.error
    spike = Anomaly.objects.get(anomaly_type="demand_spike")
    assert spike.start_date == sales_with_spike
    assert spike.actual_value == 600
    assert "600" in spike.explanation


def test_beat_schedule_task_name_runs_on_a_real_worker(redis_worker, sales_with_spike):
    schedules_ensure()
    schedule = PeriodicTask.objects.get(name="Daily detection: demand, price, discrepancy (05:00)")
    # What beat does when the schedule is due: send the stored task name with its kwargs.
    redis_worker.send_task(schedule.task, kwargs=json.loads(schedule.kwargs))
    deadline = time.monotonic() + 60
    while not DetectionRun.objects.filter(trigger="schedule").exists():
        assert time.monotonic() < deadline, "the worker did not start the scheduled run"
        time.sleep(0.2)
    run = _wait_for_run(DetectionRun.objects.get(trigger="schedule").pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.trigger == "schedule"
    assert run.detectors == json.loads(schedule.kwargs)["detectors"]
    assert Anomaly.objects.filter(anomaly_type="demand_spike", last_run=run).count() == 1


def test_detection_fans_out_one_task_per_chunk_and_groups_once(
    redis_worker, sales_with_spike, settings
):
    """Three stores, one location per chunk: three chunk tasks on the worker, then one
    finishing task; the same SKU spiking at all three is grouped under one of them."""
    settings.SHELFWATCH_DETECTION_CHUNK_LOCATIONS = 1
    source = list(DailySales.objects.all())
    for code in ("W2", "W3"):
        location = LocationFactory(code=code)
        DailySales.objects.bulk_create(
            DailySales(
                product_id=row.product_id,
                location=location,
                date=row.date,
                units_sold=row.units_sold,
                unit_price=row.unit_price,
            )
            for row in source
        )
    with transaction.atomic():
        run = detection_run_request(as_of=sales_with_spike, detectors=["demand_spike"])
    finished = _wait_for_run(run.pk)
    assert finished.status == RunStatus.SUCCEEDED, finished.error
    chunks = list(DetectionChunk.objects.filter(run=finished).order_by("index"))
    assert [c.status for c in chunks] == [RunStatus.SUCCEEDED] * 3
    assert [len(c.location_ids) for c in chunks] == [1, 1, 1]
    assert finished.counts["demand_spike"]["new"] == 3
    spike = Anomaly.objects.filter(anomaly_type="demand_spike", last_run=finished)
    assert spike.count() == 3
    parents = {a.parent_id for a in spike}
    top = [a for a in spike if a.parent_id is None]
    assert len(top) == 1 and parents == {None, top[0].pk}
    assert any("chain wide" in note for note in finished.notes)
