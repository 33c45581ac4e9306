"""Leases and the reaper, one run per as-of date, and as-of validation (service, command, API).

The fault suite (``test_faults.py``) kills real processes; these tests pin the rules.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from anomalies.models import Anomaly, DetectionChunk, DetectionRun, RunStatus
from anomalies.services import leases
from anomalies.services import runs as runs_service
from anomalies.services.leases import detection_runs_reap
from anomalies.services.runs import (
    DetectionError,
    DetectionRunInProgress,
    detection_backfill,
    detection_chunk_execute,
    detection_run,
    detection_run_create,
    detection_run_start,
)
from anomalies.services.schedules import DEFAULT_SCHEDULES
from anomalies.tasks import reap_detection_runs_task
from config.celery import app
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory, StockLevelFactory

pytestmark = pytest.mark.django_db
DAY = dt.date(2024, 3, 10)


@pytest.fixture
def sales(db):
    """Two stores selling one SKU on ``DAY``."""
    product = ProductFactory(sku="A1")
    for code in ("S1", "S2"):
        DailySalesFactory(product=product, location=LocationFactory(code=code), date=DAY)
    return product


def _later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


# --- the reaper --------------------------------------------------------------------------------


def test_a_pending_run_no_worker_takes_is_reaped_after_the_queue_time(sales, settings):
    settings.SHELFWATCH_RUN_QUEUE_SECONDS = 600
    run = detection_run_create(as_of=DAY)
    assert detection_runs_reap(now=_later(590)).run_ids == []

    report = detection_runs_reap(now=_later(610))

    assert report.run_ids == [run.pk] and report.chunk_ids == []
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("never started: no worker took the run by ")
    assert report.summary() == f"1 run(s) and 0 chunk(s) reaped (run {run.pk}: {run.error})"
    assert detection_runs_reap(now=_later(610)).summary() == "nothing to reap"


def test_a_started_run_whose_process_died_between_chunks_is_reaped(sales, settings):
    settings.SHELFWATCH_RUN_LEASE_SECONDS = 120
    run = detection_run_create(as_of=DAY)
    detection_run_start(run_id=run.pk, chunk_locations=1)  # then the process died
    assert detection_runs_reap(now=_later(110)).run_ids == []

    assert detection_runs_reap(now=_later(130)).run_ids == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error.startswith("lost: no heartbeat since ")


def test_a_chunk_reaped_while_it_ran_persists_nothing_and_keeps_the_reason(sales, monkeypatch):
    run = detection_run_create(as_of=DAY)
    chunk_id = detection_run_start(run_id=run.pk)[0]
    real = runs_service.run_detectors

    def slower_than_the_lease(*args):
        found = real(*args)
        detection_runs_reap(now=_later(leases.run_lease_seconds() + 1))
        return found

    monkeypatch.setattr(runs_service, "run_detectors", slower_than_the_lease)
    with pytest.raises(DetectionError, match="was reaped while it ran"):
        detection_chunk_execute(chunk_id=chunk_id)

    chunk = DetectionChunk.objects.get(pk=chunk_id)
    assert chunk.status == RunStatus.FAILED
    assert chunk.error.startswith("worker lost: chunk 0 on ")
    assert chunk.counts == {}  # what persisting would have recorded, with the findings
    assert not Anomaly.objects.exists()
    assert DetectionRun.objects.get(pk=run.pk).status == RunStatus.FAILED


def test_heartbeats_renew_the_lease_and_a_finished_run_holds_none(sales, settings):
    settings.SHELFWATCH_RUN_LEASE_SECONDS = 60
    before = timezone.now()
    run = detection_run(as_of=DAY, chunk_locations=1)

    assert run.status == RunStatus.SUCCEEDED
    assert run.lease_expires_at is None and run.heartbeat_at >= before
    for chunk in run.chunks.all():
        assert chunk.lease_expires_at is None
        assert before <= chunk.heartbeat_at <= chunk.finished_at


def test_a_backfill_that_fails_while_loading_leaves_no_run_running(sales, monkeypatch):
    def disk_error(**kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(runs_service, "detection_window_load", disk_error)
    with pytest.raises(OSError, match="disk on fire"):
        detection_backfill(start=DAY, end=DAY)

    run = DetectionRun.objects.get()
    assert run.status == RunStatus.FAILED and "disk on fire" in run.error


def test_reap_command_reports_what_it_reaped(sales, settings, capsys):
    settings.SHELFWATCH_RUN_QUEUE_SECONDS = 1
    run = detection_run_create(as_of=DAY)
    DetectionRun.objects.filter(pk=run.pk).update(lease_expires_at=_later(-1))

    call_command("reap_detection_runs")

    out = capsys.readouterr().out
    assert out.startswith(f"1 run(s) and 0 chunk(s) reaped (run {run.pk}: never started")
    call_command("reap_detection_runs")
    assert capsys.readouterr().out == "nothing to reap\n"


def test_beat_reaps_every_minute_with_a_registered_task(sales, settings):
    (reaper,) = [d for d in DEFAULT_SCHEDULES if d.task == "anomalies.reap_detection_runs"]
    assert (reaper.minute, reaper.hour) == ("*", "*")
    run = detection_run_create(as_of=DAY)
    DetectionRun.objects.filter(pk=run.pk).update(lease_expires_at=_later(-1))

    result = app.tasks[reaper.task].apply().get()

    assert reap_detection_runs_task.name == reaper.task
    assert result == {"runs": [run.pk], "chunks": []}


# --- one run per as-of date --------------------------------------------------------------------


def test_a_second_run_of_a_date_in_progress_is_refused_and_names_the_first(sales):
    first = detection_run_create(as_of=DAY)

    with pytest.raises(DetectionRunInProgress) as exc:
        detection_run_create(as_of=DAY)

    assert exc.value.run == first
    assert str(exc.value) == (
        f"A detection run for {DAY} is already in progress (run {first.pk} is pending); wait "
        "for it to finish (a run whose worker died is failed by reap_detection_runs within "
        "minutes)."
    )
    assert DetectionRun.objects.count() == 1


def test_a_date_is_free_again_once_its_run_finished_or_failed(sales):
    detection_run(as_of=DAY)
    failed = detection_run_create(as_of=DAY)
    DetectionRun.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED)

    assert detection_run(as_of=DAY).status == RunStatus.SUCCEEDED
    assert detection_run_create(as_of=DAY - dt.timedelta(days=1)).status == RunStatus.PENDING


def test_command_refuses_a_date_in_progress_in_one_line(sales):
    first = detection_run_create(as_of=DAY)

    with pytest.raises(CommandError, match=rf"already in progress \(run {first.pk} is pending\)"):
        call_command("detect_anomalies", "--as-of", DAY.isoformat())


def test_api_refuses_a_date_in_progress_with_409(api_client, sales):
    first = detection_run_create(as_of=DAY)

    response = api_client.post("/api/v1/detection-runs/", {"as_of": DAY}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"A detection run for {DAY} is already in progress (run {first.pk} is "
        "pending); wait for it to finish (a run whose worker died is failed by "
        "reap_detection_runs within minutes)."
    }


# --- as-of dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "as_of", [dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(1989, 12, 31), "today+367"]
)
def test_implausible_as_of_dates_are_refused_by_the_api(api_client, sales, as_of):
    if as_of == "today+367":
        as_of = timezone.localdate() + dt.timedelta(days=367)
    response = api_client.post("/api/v1/detection-runs/", {"as_of": as_of}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        f"as-of date {as_of} is outside the plausible range 1990-01-01 .. "
    )
    assert not DetectionRun.objects.exists()


def test_implausible_as_of_date_is_refused_by_the_command(sales):
    with pytest.raises(CommandError, match="as-of date 9999-12-31 is outside the plausible"):
        call_command("detect_anomalies", "--as-of", "9999-12-31")
    with pytest.raises(CommandError, match="as-of date 0001-01-01 is outside the plausible"):
        call_command("detect_anomalies", "--backfill", "0001-01-01", DAY.isoformat())
    assert not DetectionRun.objects.exists()


def test_a_history_window_pandas_cannot_hold_is_refused(sales):
    with pytest.raises(DetectionError, match="starts before the earliest date"):
        detection_run_create(as_of=DAY, history_days=10**6)


def test_a_date_after_the_data_says_so(api_client, sales):
    response = api_client.post(
        "/api/v1/detection-runs/", {"as_of": DAY + dt.timedelta(days=1)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"as-of date {DAY + dt.timedelta(days=1)} is after the end of the data "
        f"(sales up to {DAY}); import the missing days first, or run as of a date with data."
    }


def test_a_date_after_the_sales_but_with_book_stock_runs(sales):
    later = DAY + dt.timedelta(days=3)
    StockLevelFactory(product=sales, location=LocationFactory(code="S3"), date=later)

    assert detection_run(as_of=later).status == RunStatus.SUCCEEDED
    with pytest.raises(DetectionError, match=r"book stock up to 2024-03-13\)"):
        detection_run(as_of=later + dt.timedelta(days=1))


def test_runs_from_before_leases_are_reaped_counting_from_their_start(sales):
    long_ago = timezone.now() - dt.timedelta(hours=2)
    started = detection_run_create(as_of=DAY)
    never = detection_run_create(as_of=DAY - dt.timedelta(days=1))
    queued = detection_run_create(as_of=DAY - dt.timedelta(days=2))
    recent = detection_run_create(as_of=DAY - dt.timedelta(days=3))
    legacy = DetectionRun.objects.filter(pk__in=[started.pk, never.pk, queued.pk, recent.pk])
    legacy.update(lease_expires_at=None, heartbeat_at=None, created_at=long_ago)
    DetectionRun.objects.filter(pk=started.pk).update(status=RunStatus.RUNNING, started_at=long_ago)
    DetectionRun.objects.filter(pk=never.pk).update(status=RunStatus.RUNNING)
    DetectionRun.objects.filter(pk=recent.pk).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )

    assert sorted(detection_runs_reap().run_ids) == [started.pk, never.pk, queued.pk]


def test_a_chunk_whose_run_failed_meanwhile_persists_nothing(sales, monkeypatch):
    """Another chunk's worker died and the reaper failed the run: this chunk, still alive, must
    not write next to a rerun of the date."""
    run = detection_run_create(as_of=DAY)
    first, second = detection_run_start(run_id=run.pk, chunk_locations=1)
    DetectionChunk.objects.filter(pk=first).update(
        status=RunStatus.RUNNING, started_at=_later(-3600), lease_expires_at=_later(-1)
    )
    real = runs_service.run_detectors

    def while_the_reaper_runs(*args):
        found = real(*args)
        assert detection_runs_reap().chunk_ids == [first]
        return found

    monkeypatch.setattr(runs_service, "run_detectors", while_the_reaper_runs)
    with pytest.raises(DetectionError, match="or its run failed meanwhile"):
        detection_chunk_execute(chunk_id=second)

    chunk = DetectionChunk.objects.get(pk=second)
    assert chunk.status == RunStatus.FAILED and "or its run failed meanwhile" in chunk.error
    assert chunk.counts == {}
    assert not Anomaly.objects.exists()


def test_a_scheduled_run_of_a_date_in_progress_tries_again_later(sales, monkeypatch):
    from celery.exceptions import Retry

    from anomalies.tasks import SCHEDULED_RETRY_SECONDS, detect_scheduled_task

    detection_run_create(as_of=DAY)
    asked: list[dict] = []

    def retry(**kwargs):
        asked.append(kwargs)
        return Retry()

    monkeypatch.setattr(detect_scheduled_task, "retry", retry)
    detect_scheduled_task.push_request(is_eager=False)  # as on a worker
    try:
        with pytest.raises(Retry):
            detect_scheduled_task.run(as_of=DAY.isoformat())
    finally:
        detect_scheduled_task.pop_request()

    assert asked[0]["countdown"] == SCHEDULED_RETRY_SECONDS
    assert isinstance(asked[0]["exc"], DetectionRunInProgress)
    with pytest.raises(DetectionRunInProgress):  # eagerly there is no later: it says so
        detect_scheduled_task.apply(kwargs={"as_of": DAY.isoformat()}).get()
    assert DetectionRun.objects.count() == 1
