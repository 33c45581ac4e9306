"""The anomaly seeder: realistic rows that obey the model's constraints and the triage
lifecycle, on its own master data, removable without touching anything else."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from anomalies.models import (
    Anomaly,
    AnomalyActivity,
    AnomalyStatus,
    AnomalyType,
    DismissReason,
    Severity,
)
from common import bulk_load
from inventory.models import Location, Product
from lab.bench.anomaly_seed import (
    SEED_LOCATION_PREFIX,
    SEED_SKU_PREFIX,
    SEED_USER_PREFIX,
    anomalies_seed,
    anomalies_seed_clear,
    seed_keys,
)
from lab.bench.seed_rows import COLUMNS, SEED_SPAN_DAYS, seed_frame
from outcomes.models import CycleCount
from tests.factories import AnomalyFactory

AS_OF = dt.date(2024, 6, 30)
KEY = ("anomaly_type", "product_id", "location_id", "start_date")


def seeded(**kwargs) -> list[Anomaly]:
    anomalies_seed(**{"count": 600, "locations": 6, "skus": 40, "as_of": AS_OF, **kwargs})
    return list(Anomaly.objects.select_related("product", "location"))


@pytest.mark.django_db
def test_seed_inserts_the_rows_asked_for_on_its_own_master_data():
    assert anomalies_seed(count=600, locations=6, skus=40, as_of=AS_OF) == 600

    assert Anomaly.objects.count() == 600
    assert set(Location.objects.values_list("code", flat=True)) == {
        f"{SEED_LOCATION_PREFIX}{i:03d}" for i in range(1, 7)
    }
    assert Product.objects.count() == 40
    assert not Product.objects.exclude(sku__startswith=SEED_SKU_PREFIX).exists()
    assert not Anomaly.objects.exclude(location__code__startswith=SEED_LOCATION_PREFIX).exists()


@pytest.mark.django_db
def test_seeded_rows_cover_every_type_severity_status_and_dismiss_reason():
    rows = seeded()

    assert {a.anomaly_type for a in rows} == set(AnomalyType.values)
    assert {a.severity for a in rows} == set(Severity.values)
    assert {a.status for a in rows} == set(AnomalyStatus.values)
    assert {a.dismiss_reason for a in rows} - {""} == set(DismissReason.values)
    assert any(a.assignee_id for a in rows)
    assert any(a.regression_count for a in rows)


@pytest.mark.django_db
def test_seeded_rows_obey_keys_dates_and_location_level_findings():
    rows = seeded()

    keys = [tuple(getattr(a, name) for name in KEY) for a in rows]
    assert len(set(keys)) == len(keys)
    first_start = AS_OF - dt.timedelta(days=SEED_SPAN_DAYS - 1)
    for a in rows:
        assert first_start <= a.start_date <= a.first_detected_on <= a.end_date <= AS_OF
        assert a.last_detected_on == a.end_date
        # POS outages are location-level: no SKU, no expected/actual units.
        assert (a.product_id is None) == (a.anomaly_type == AnomalyType.POS_OUTAGE)
        assert a.value_at_risk >= 0
        assert a.explanation
        assert a.details["seeded"] is True
        assert a.created_at.date() == a.first_detected_on
        assert a.updated_at >= a.created_at


@pytest.mark.django_db
def test_seeded_triage_fields_match_the_status():
    now = timezone.now()
    for a in seeded():
        closed = a.status in (AnomalyStatus.RESOLVED, AnomalyStatus.DISMISSED)
        snoozed = a.status == AnomalyStatus.SNOOZED
        assert (a.closed_at is not None) == closed, a.status
        assert (a.dismiss_reason != "") == (a.status == AnomalyStatus.DISMISSED)
        assert (a.snoozed_until is not None) == snoozed
        assert (a.snoozed_severity != "") == snoozed
        assert (a.snoozed_value_at_risk is not None) == snoozed
        if snoozed:
            assert a.snoozed_until > AS_OF
            assert (a.snoozed_severity, a.snoozed_value_at_risk) == (a.severity, a.value_at_risk)
        if a.status == AnomalyStatus.ACKNOWLEDGED:
            assert a.acknowledged_at is not None and a.assignee_id is not None
        if a.acknowledged_at is not None:
            assert a.created_at <= a.acknowledged_at <= now
            assert a.assignee_id is not None  # acknowledging claims an unowned anomaly
        if closed:
            assert a.created_at <= a.closed_at <= now
            assert a.acknowledged_at is None or a.acknowledged_at <= a.closed_at
        # Regressed: reopened after a resolve, so open again.
        assert (a.regressed_at is not None) == (a.regression_count > 0)
        if a.regression_count:
            assert a.status == AnomalyStatus.OPEN


@pytest.mark.django_db
def test_recent_anomalies_are_mostly_open_and_old_ones_mostly_closed():
    rows = seeded(count=1500)
    active = (AnomalyStatus.OPEN, AnomalyStatus.ACKNOWLEDGED, AnomalyStatus.SNOOZED)
    recent = [a for a in rows if (AS_OF - a.last_detected_on).days < 30]
    old = [a for a in rows if (AS_OF - a.last_detected_on).days >= 30]

    assert sum(a.status in active for a in recent) / len(recent) > 0.5
    assert sum(a.status in active for a in old) / len(old) < 0.25


@pytest.mark.django_db
def test_seeding_again_adds_rows_without_reusing_a_key():
    anomalies_seed(count=300, locations=3, skus=10, as_of=AS_OF)
    anomalies_seed(count=300, locations=3, skus=10, as_of=AS_OF)  # same seed: same draws

    keys = list(Anomaly.objects.values_list(*KEY))
    assert len(keys) == len(set(keys)) == 600
    assert Location.objects.count() == 3 and Product.objects.count() == 10


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_anomalies():
    def content() -> list[tuple]:
        return sorted(
            Anomaly.objects.values_list(
                "anomaly_type", "product__sku", "location__code", "start_date", "status", "score"
            ),
            key=str,
        )

    anomalies_seed(count=200, locations=4, skus=20, seed=3, as_of=AS_OF)
    first = content()
    anomalies_seed_clear()
    anomalies_seed(count=200, locations=4, skus=20, seed=3, as_of=AS_OF)

    assert content() == first


@pytest.mark.django_db
def test_clear_removes_seeded_rows_and_their_log_and_nothing_else(staff_user):
    kept = AnomalyFactory()
    anomalies_seed(count=200, locations=4, skus=20, as_of=AS_OF)
    seeded_one = Anomaly.objects.filter(location__code__startswith=SEED_LOCATION_PREFIX).first()
    AnomalyActivity.objects.create(anomaly=seeded_one, actor=staff_user, action="note")
    count = CycleCount.objects.create(
        anomaly=seeded_one, product=seeded_one.product, location=seeded_one.location
    )

    assert anomalies_seed_clear() == 200

    assert list(Anomaly.objects.all()) == [kept]
    assert not AnomalyActivity.objects.exists()
    assert not CycleCount.objects.filter(pk=count.pk).exists()  # its SKU/location went too
    assert list(Location.objects.all()) == [kept.location]
    assert list(Product.objects.all()) == [kept.product]
    assert not get_user_model().objects.filter(username__startswith=SEED_USER_PREFIX).exists()
    assert get_user_model().objects.filter(pk=staff_user.pk).exists()


@pytest.mark.django_db
def test_clear_without_seeded_rows_deletes_nothing():
    kept = AnomalyFactory()
    assert anomalies_seed_clear() == 0
    assert list(Anomaly.objects.all()) == [kept]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": -1}, "count"),
        ({"count": 10, "locations": 0}, "locations"),
        ({"count": 10, "skus": 0}, "skus"),
    ],
)
def test_seed_rejects_impossible_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        anomalies_seed(**kwargs)


def test_seed_frame_draws_distinct_keys_that_avoid_the_taken_ones():
    rng = np.random.default_rng(1)
    master = {"location_ids": np.arange(1, 4), "product_ids": np.arange(10, 15)}
    common = {
        **master,
        "unit_prices": np.full(5, 2.5),
        "user_ids": np.array([7]),
        "as_of": AS_OF,
        "now": timezone.now(),
    }
    first = seed_frame(rng=rng, count=500, taken_keys=np.empty(0, dtype=np.int64), **common)
    # 5 SKUs x 3 stores x 6 types x 365 days: 1,000 more draws would collide without care.
    second = seed_frame(rng=rng, count=1000, taken_keys=seed_keys(first, **master), **common)

    def keys(frame) -> list[tuple]:
        return [tuple(row) for row in frame[list(KEY)].astype(str).to_numpy()]

    assert len(set(keys(second))) == 1000
    assert not set(keys(first)) & set(keys(second))
    assert len(seed_keys(pd.concat([first, second]), **master)) == 1500
    assert list(second.columns) == list(COLUMNS)
    assert second["first_detected_on"].is_monotonic_increasing  # insertion order


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL bulk path")
def test_bulk_seed_and_clear_rebuild_every_index_and_foreign_key(monkeypatch):
    def structures() -> set[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass OR confrelid = %s::regclass",
                ["anomalies_anomaly", "anomalies_anomaly", "anomalies_anomaly"],
            )
            return set(cursor.fetchall())

    before = structures()
    monkeypatch.setattr(bulk_load, "REBUILD_MIN_ROWS", 1)  # take the bulk path at 300 rows
    anomalies_seed(count=300, locations=3, skus=10, as_of=AS_OF)  # empty table: COPY FREEZE
    assert structures() == before
    anomalies_seed(count=300, locations=3, skus=10, as_of=AS_OF)  # not empty: no TRUNCATE
    assert structures() == before
    assert Anomaly.objects.count() == 600

    assert anomalies_seed_clear() == 600
    assert structures() == before
