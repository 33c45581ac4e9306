"""False-discovery control in detection runs: the policy's level, what is kept and persisted,
and the expected false alarms a run records."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from anomalies.detectors import REGISTRY, DetectorSpec
from anomalies.detectors.base import make_findings
from anomalies.models import Anomaly, DetectionPolicy, DetectionRun
from anomalies.services.runs import detection_run, detection_run_finalize, findings_fdr_control
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 10)
# Per location: six candidates of one detector that tested 20 series. At q = 0.05 the
# thresholds are k x 0.0025: the first three pass (0.0003, 0.004, 0.007 <= 0.0075), the rest
# not (0.03 > 0.01, ...). At q = 0.2 (thresholds k x 0.01) five pass (0.045 <= 0.05).
CANDIDATE_P = [0.0003, 0.004, 0.007, 0.03, 0.045, 0.2]
TESTS = 20


@pytest.fixture
def stores():
    """Two stores, six products each selling on DAY."""
    products = [ProductFactory(sku=f"P{i}") for i in range(6)]
    locations = [LocationFactory(code="S1"), LocationFactory(code="S2")]
    for location in locations:
        for product in products:
            DailySalesFactory(product=product, location=location, date=DAY, units_sold=3)
    return products, locations


def _candidates(anomaly_type: str, p_values: list[float] | None):
    """A detector reporting one finding per product and location of its input."""

    def detect(data, params):
        keys = data.sales[["product_id", "location_id"]].drop_duplicates()
        keys = keys.sort_values(["location_id", "product_id"], ignore_index=True)
        n = len(keys)
        found = make_findings(
            {
                "anomaly_type": anomaly_type,
                "product_id": keys["product_id"].to_numpy(),
                "location_id": keys["location_id"].to_numpy(),
                "start_date": data.as_of_ts,
                "end_date": data.as_of_ts,
                "severity": "warning",
                "score": np.arange(n, dtype=float),
                "expected_value": 1.0,
                "actual_value": 5.0,
                "value_at_risk": 10.0,
                "explanation": [f"finding {i}" for i in range(n)],
                "details": [{} for _ in range(n)],
            }
        )
        if p_values is None:
            return found
        per_location = len(p_values)
        return found.assign(
            p_value=np.tile(p_values, n // per_location), tests=TESTS
        )  # detectors assign the two columns after make_findings

    return detect


@pytest.fixture(autouse=True)
def policy_at_005(db):
    """The examples below are worked at q = 0.05 (the default is lower)."""
    DetectionPolicy.objects.update_or_create(pk=1, defaults={"fdr_q": 0.05})


@pytest.fixture
def detectors(monkeypatch):
    """demand_spike gives p-values; price_anomaly gives none."""
    monkeypatch.setitem(
        REGISTRY,
        "demand_spike",
        DetectorSpec("demand_spike", _candidates("demand_spike", CANDIDATE_P), {}, "test"),
    )
    monkeypatch.setitem(
        REGISTRY,
        "price_anomaly",
        DetectorSpec("price_anomaly", _candidates("price_anomaly", None), {}, "test"),
    )
    return ["demand_spike", "price_anomaly"]


def test_run_keeps_what_bh_rejects_per_store_and_records_expected_false_alarms(stores, detectors):
    run = detection_run(as_of=DAY, detectors=detectors)

    assert run.fdr_q == 0.05
    spikes = Anomaly.objects.filter(anomaly_type="demand_spike").order_by("location", "p_value")
    assert [a.p_value for a in spikes] == CANDIDATE_P[:3] * 2
    np.testing.assert_allclose([a.q_value for a in spikes], [0.006, 0.04, 0.0466667] * 2, rtol=1e-5)
    # The detector without p-values is reported as before, outside the control.
    prices = Anomaly.objects.filter(anomaly_type="price_anomaly")
    assert prices.count() == 12
    assert not prices.filter(p_value__isnull=False).exists()
    assert not prices.filter(q_value__isnull=False).exists()

    assert run.hypotheses_tested == 2 * TESTS
    assert run.new_findings == 6 + 12
    assert run.new_findings_controlled == 6
    assert run.expected_false_alarms == pytest.approx(0.05 * 6)
    assert run.counts["demand_spike"] | {"seconds": 0} == {
        "findings": 6,
        "candidates": 12,
        "fdr_dropped": 6,
        "tested": 40,
        "new": 6,
        "extended": 0,
        "seconds": 0,
    }
    assert "candidates" not in run.counts["price_anomaly"]


def test_policy_level_is_read_when_the_run_starts(stores, detectors):
    DetectionPolicy.objects.filter(pk=1).update(fdr_q=0.2)

    run = detection_run(as_of=DAY, detectors=detectors)

    assert run.fdr_q == 0.2
    assert run.new_findings_controlled == 2 * 5
    assert run.expected_false_alarms == pytest.approx(0.2 * 10)


def test_chunks_of_one_store_find_the_same(stores, detectors):
    whole = detection_run(as_of=DAY, detectors=detectors)
    kept = sorted(Anomaly.objects.values_list("anomaly_type", "product", "location", "q_value"))
    Anomaly.objects.all().delete()

    split = detection_run(as_of=DAY, detectors=detectors, chunk_locations=1)

    assert split.chunks.count() == 2
    assert (
        sorted(Anomaly.objects.values_list("anomaly_type", "product", "location", "q_value"))
        == kept
    )
    assert (split.hypotheses_tested, split.new_findings_controlled) == (
        whole.hypotheses_tested,
        whole.new_findings_controlled,
    )
    assert split.expected_false_alarms == pytest.approx(whole.expected_false_alarms)


def test_extended_anomalies_are_not_new_and_take_the_latest_q_value(stores, detectors):
    detection_run(as_of=DAY, detectors=detectors)
    DetectionPolicy.objects.filter(pk=1).update(fdr_q=0.2)
    products, locations = stores
    for location in locations:  # the next day's data (a run after the data's end is refused)
        for product in products:
            DailySalesFactory(product=product, location=location, date=DAY + dt.timedelta(days=1))

    again = detection_run(as_of=DAY + dt.timedelta(days=1), detectors=detectors)

    # Same products: the three kept at 0.05 are extended, two more open at 0.2.
    assert again.new_findings_controlled == 2 * 2
    assert again.expected_false_alarms == pytest.approx(0.2 * 4)
    first = Anomaly.objects.get(anomaly_type="demand_spike", p_value=0.0003, location__code="S1")
    assert first.q_value == pytest.approx(0.0003 * TESTS)  # rank 1 of m = 20: min(1, 20 p)


def test_without_p_values_runs_are_as_before(stores, monkeypatch):
    monkeypatch.setitem(
        REGISTRY,
        "price_anomaly",
        DetectorSpec("price_anomaly", _candidates("price_anomaly", None), {}, "test"),
    )

    run = detection_run(as_of=DAY, detectors=["price_anomaly"])

    assert run.counts["price_anomaly"]["findings"] == 12
    assert set(run.counts["price_anomaly"]) == {"findings", "seconds", "new", "extended"}
    assert (run.hypotheses_tested, run.new_findings, run.new_findings_controlled) == (0, 12, 0)
    assert run.expected_false_alarms == 0.0


def test_findings_fdr_control_without_level_keeps_everything():
    frame = make_findings(
        {
            "anomaly_type": "demand_spike",
            "product_id": [1, 2],
            "location_id": [1, 1],
            "start_date": pd.Timestamp(DAY),
            "end_date": pd.Timestamp(DAY),
            "severity": "info",
            "score": 1.0,
            "expected_value": 1.0,
            "actual_value": 1.0,
            "value_at_risk": 1.0,
            "explanation": ["a", "b"],
            "details": [{}, {}],
            "p_value": [0.5, 0.9],
            "tests": 2,
        }
    )
    counts = {"demand_spike": {"findings": 2}}

    kept, same = findings_fdr_control(frame, counts, fdr_q=None)
    controlled, changed = findings_fdr_control(frame, counts, fdr_q=0.05)

    assert len(kept) == 2 and same == counts
    assert controlled.empty and changed["demand_spike"]["fdr_dropped"] == 2
    assert counts == {"demand_spike": {"findings": 2}}  # the caller's counts are not changed


def test_run_started_before_the_policy_existed_is_not_controlled(stores, detectors):
    # A run whose fdr_q is unset (started before this migration) reports every candidate.
    from anomalies.services.runs import (
        detection_chunk_execute,
        detection_run_create,
        detection_run_start,
    )

    run = detection_run_create(as_of=DAY, detectors=detectors)
    chunk_ids = detection_run_start(run_id=run.pk)
    DetectionRun.objects.filter(pk=run.pk).update(fdr_q=None)
    for chunk_id in chunk_ids:
        detection_chunk_execute(chunk_id=chunk_id)
    run = detection_run_finalize(run_id=run.pk)

    assert Anomaly.objects.filter(anomaly_type="demand_spike").count() == 12
    assert run.expected_false_alarms is None
