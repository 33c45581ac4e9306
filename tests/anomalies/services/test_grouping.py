"""Root-cause grouping, the service: which anomalies it reads, and the parents it saves."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anomalies.models import Anomaly, AnomalyType
from anomalies.services.grouping import anomalies_group_root_causes
from tests.factories import AnomalyFactory, DetectionRunFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 2)


def _sku_anomaly(run, product, location, *, score=1.0, start=DAY, **kw):
    return AnomalyFactory(
        anomaly_type=kw.pop("anomaly_type", AnomalyType.PRICE_ANOMALY),
        product=product,
        location=location,
        start_date=start,
        end_date=start,
        score=score,
        last_run=run,
        **kw,
    )


def test_chain_wide_event_is_saved_under_its_top_score_and_kept_on_a_rerun():
    run = DetectionRunFactory(as_of=DAY)
    sku = ProductFactory()
    stores = [LocationFactory() for _ in range(3)]
    low, top, mid = (
        _sku_anomaly(run, sku, store, score=score)
        for store, score in zip(stores, (3.0, 8.0, 4.0), strict=True)
    )

    assert anomalies_group_root_causes(run=run) == {"chain_wide": 2}
    parents = dict(Anomaly.objects.values_list("pk", "parent_id"))
    assert parents == {low.pk: top.pk, top.pk: None, mid.pk: top.pk}

    # The next day's run finds a fourth store, with a higher score, and one of the children
    # again: the existing parent (read because it holds children of the SKU) keeps them all.
    nxt = DetectionRunFactory(as_of=DAY + dt.timedelta(days=1))
    Anomaly.objects.filter(pk=low.pk).update(last_run=nxt)
    fourth = _sku_anomaly(nxt, sku, LocationFactory(), score=9.0)
    assert anomalies_group_root_causes(run=nxt) == {"chain_wide": 2}
    assert Anomaly.objects.get(pk=fourth.pk).parent_id == top.pk
    assert Anomaly.objects.get(pk=low.pk).parent_id == top.pk


def test_sku_anomaly_starting_during_an_outage_found_by_an_earlier_run_goes_under_it():
    earlier = DetectionRunFactory(as_of=DAY)
    run = DetectionRunFactory(as_of=DAY + dt.timedelta(days=1))
    store, other_store = LocationFactory(), LocationFactory()
    outage = AnomalyFactory(
        anomaly_type=AnomalyType.POS_OUTAGE,
        product=None,
        location=store,
        start_date=DAY,
        end_date=DAY,
        score=9.0,
        last_run=earlier,
    )
    child = _sku_anomaly(run, ProductFactory(), store, start=DAY + dt.timedelta(days=1))
    elsewhere = _sku_anomaly(run, ProductFactory(), other_store, start=DAY)

    with CaptureQueriesContext(connection) as queries:
        assert anomalies_group_root_causes(run=run) == {"pos_outage": 1}
    # The run's anomalies; the outages and existing parents related to them; one update.
    assert len(queries) == 3
    assert Anomaly.objects.get(pk=child.pk).parent_id == outage.pk
    assert Anomaly.objects.get(pk=elsewhere.pk).parent_id is None


def test_nothing_to_group_writes_nothing():
    run = DetectionRunFactory(as_of=DAY)
    assert anomalies_group_root_causes(run=run) == {}
    lone = _sku_anomaly(run, ProductFactory(), LocationFactory())
    with CaptureQueriesContext(connection) as queries:
        assert anomalies_group_root_causes(run=run) == {}
    assert len(queries) == 2
    assert Anomaly.objects.get(pk=lone.pk).parent_id is None
