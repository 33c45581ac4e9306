"""Detection fanned out per chunk of locations, in-process (the Celery chord runs the same
services; see test_celery_worker.py for the real worker)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from anomalies.detectors import REGISTRY
from anomalies.models import Anomaly, DetectionChunk, DetectionRun, RunStatus
from anomalies.services import runs as runs_service
from anomalies.services.runs import (
    DetectionError,
    detection_backfill,
    detection_chunk_execute,
    detection_run,
    detection_run_create,
    detection_run_finalize,
    detection_run_start,
    location_chunks_plan,
)
from inventory.importing import bundle_import
from inventory.models import Location
from lab.bench.phases import anomalies_snapshot
from lab.simulator import generate_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fanout")
    generate_bundle(out_dir=out, seed=11, n_locations=4, n_skus=40, n_days=130)
    return out


@pytest.fixture
def bundle(bundle_dir):
    bundle_import(directory=bundle_dir)
    return bundle_dir


def _snapshot() -> list[tuple]:
    """Every anomaly's content, root-cause parent included (the bench's comparison)."""
    return anomalies_snapshot()


def test_chunk_plan_is_even_and_ordered():
    assert location_chunks_plan(location_ids=[5, 1, 3, 2, 4], chunk_locations=2) == [
        [1, 2],
        [3, 4],
        [5],
    ]
    assert location_chunks_plan(location_ids=list(range(10)), chunk_locations=8) == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
    ]
    assert location_chunks_plan(location_ids=[], chunk_locations=3) == []
    with pytest.raises(DetectionError, match="at least 1"):
        location_chunks_plan(location_ids=[1], chunk_locations=0)


def test_chunked_run_finds_exactly_what_one_chunk_finds(bundle):
    as_of = dt.date(2026, 10, 31)
    whole = detection_run(as_of=as_of, chunk_locations=10)
    assert whole.status == RunStatus.SUCCEEDED
    assert whole.chunks.count() == 1
    expected = _snapshot()
    assert expected, "the simulated bundle should hold findings on its last day"
    Anomaly.objects.all().delete()

    split = detection_run(as_of=as_of, chunk_locations=1)
    chunks = list(split.chunks.order_by("index"))
    assert [c.location_ids for c in chunks] == [
        [i] for i in Location.objects.values_list("id", flat=True).order_by("id")
    ]
    assert all(c.status == RunStatus.SUCCEEDED and c.worker for c in chunks)
    assert _snapshot() == expected
    for name, entry in whole.counts.items():
        assert split.counts[name]["findings"] == entry["findings"]
        assert split.counts[name].get("new") == entry.get("new")
    assert sum(c.series for c in chunks) == whole.chunks.get().series == 4 * 40


def test_a_chunk_delivered_twice_does_nothing_the_second_time(bundle, monkeypatch):
    run = detection_run_create(as_of=dt.date(2026, 10, 31))
    (chunk_id,) = detection_run_start(run_id=run.pk, chunk_locations=10)
    first = detection_chunk_execute(chunk_id=chunk_id)
    before = _snapshot()

    def boom(*args, **kwargs):
        raise AssertionError("a finished chunk must not run its detectors again")

    monkeypatch.setattr(runs_service, "run_detectors", boom)
    again = detection_chunk_execute(chunk_id=chunk_id)
    assert again.finished_at == first.finished_at
    assert _snapshot() == before
    finished = detection_run_finalize(run_id=run.pk)
    assert finished.status == RunStatus.SUCCEEDED
    assert detection_run_finalize(run_id=run.pk).finished_at == finished.finished_at
    with pytest.raises(DetectionError, match="not pending"):
        detection_run_start(run_id=run.pk)


def test_a_failing_chunk_writes_nothing_and_fails_the_run(bundle, monkeypatch):
    real = runs_service.run_detectors
    second = sorted(Location.objects.values_list("id", flat=True))[1]

    def fails_on_second_location(data, names, effective):
        if second in set(data.sales["location_id"]):
            raise RuntimeError("disk on fire")
        return real(data, names, effective)

    monkeypatch.setattr(runs_service, "run_detectors", fails_on_second_location)
    with pytest.raises(RuntimeError, match="disk on fire"):
        detection_run(as_of=dt.date(2026, 10, 31), chunk_locations=1)
    run = DetectionRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert "chunk 1" in run.error and "disk on fire" in run.error
    statuses = dict(run.chunks.values_list("index", "status"))
    assert statuses[0] == RunStatus.SUCCEEDED and statuses[1] == RunStatus.FAILED
    assert statuses[2] == statuses[3] == RunStatus.PENDING
    assert not Anomaly.objects.filter(location_id=second).exists()
    with pytest.raises(DetectionError, match="failed"):
        detection_run_finalize(run_id=run.pk)


def test_finalize_refuses_while_a_chunk_has_not_run(bundle):
    run = detection_run_create(as_of=dt.date(2026, 10, 31))
    detection_run_start(run_id=run.pk, chunk_locations=2)
    with pytest.raises(DetectionError, match=r"Chunks \[0, 1\]"):
        detection_run_finalize(run_id=run.pk)
    assert DetectionRun.objects.get(pk=run.pk).status == RunStatus.FAILED


def test_backfill_loading_once_finds_what_daily_runs_find(bundle):
    start, end = dt.date(2026, 10, 25), dt.date(2026, 10, 31)
    runs = detection_backfill(start=start, end=end, chunk_locations=2)
    assert [r.as_of for r in runs] == [start + dt.timedelta(days=i) for i in range(7)]
    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    assert DetectionChunk.objects.filter(run__in=runs).count() == 14
    expected = _snapshot()
    Anomaly.objects.all().delete()
    day = start
    while day <= end:
        # The same chunks: price points are shared between the stores of a chunk, so a
        # different chunk size may find different prices (docs/DETECTION.md, known limits).
        detection_run(as_of=day, chunk_locations=2)
        day += dt.timedelta(days=1)
    assert _snapshot() == expected


def test_detectors_all_registered_run_in_chunks(bundle):
    run = detection_run(as_of=dt.date(2026, 10, 31), chunk_locations=3)
    assert set(run.counts) == set(REGISTRY)
    assert run.chunks.count() == 2


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite loads chunk by chunk (one write lock)"
)
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_next_chunk_loads_while_this_one_runs(bundle_dir, monkeypatch):
    """The prefetching path (used by commands and the bench on PostgreSQL, not inside a
    transaction) finds what the one-chunk run finds, and really loads from a second thread."""
    bundle_import(directory=bundle_dir)
    as_of = dt.date(2026, 10, 31)
    detection_run(as_of=as_of, chunk_locations=10)
    expected = _snapshot()
    Anomaly.objects.all().delete()

    threads = []
    real_load = runs_service.detection_input_load

    def spying_load(**kwargs):
        threads.append(threading.current_thread().name)
        return real_load(**kwargs)

    monkeypatch.setattr(runs_service, "detection_input_load", spying_load)
    run = detection_run(as_of=as_of, chunk_locations=1)
    assert run.status == RunStatus.SUCCEEDED
    assert len(threads) == 4 and all(name.startswith("detection-prefetch") for name in threads)
    assert _snapshot() == expected
