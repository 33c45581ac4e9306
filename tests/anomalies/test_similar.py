"""Similar anomalies and merging them (anomalies.services.similar)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from anomalies.models import ActivityAction, Anomaly, AnomalyActivity, AnomalyStatus, AnomalyType
from anomalies.services.similar import (
    ALREADY_HERE,
    HAS_CHILDREN,
    IS_PARENT,
    NOT_FOUND,
    SAME_CATEGORY_SAME_STORE,
    SAME_SKU_OTHER_STORE,
    SAME_SKU_SAME_STORE,
    SAME_STORE,
    MergeError,
    anomalies_merge,
    anomalies_similar,
)
from common.roles import STORE_STAFF
from tests.conftest import grant_role
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def here():
    return AnomalyFactory(
        product=ProductFactory(sku="A", category="Dairy"), location=LocationFactory(code="S1")
    )


def test_reasons_and_order(root, here):
    elsewhere = AnomalyFactory(product=here.product, value_at_risk=Decimal("1"))
    same_sku_other_type = AnomalyFactory(
        product=here.product, location=here.location, anomaly_type=AnomalyType.PRICE_ANOMALY
    )
    category = AnomalyFactory(
        product=ProductFactory(category="Dairy"),
        location=here.location,
        value_at_risk=Decimal("500"),
    )

    rows = anomalies_similar(anomaly=here, user=root)

    assert [(row.anomaly.pk, row.reason) for row in rows] == [
        (elsewhere.pk, SAME_SKU_OTHER_STORE),
        (same_sku_other_type.pk, SAME_SKU_SAME_STORE),
        (category.pk, SAME_CATEGORY_SAME_STORE),
    ]


def test_not_similar_other_days_closed_other_category_blank_category(root, here):
    AnomalyFactory(
        product=here.product, start_date=dt.date(2023, 1, 1), end_date=dt.date(2023, 1, 2)
    )
    AnomalyFactory(product=here.product, status=AnomalyStatus.DISMISSED, closed_at=timezone.now())
    AnomalyFactory(product=ProductFactory(category="Bakery"), location=here.location)
    AnomalyFactory(product=ProductFactory(category="Dairy"))  # same category, other store
    no_category = AnomalyFactory(product=ProductFactory(category=""), location=here.location)

    assert anomalies_similar(anomaly=here, user=root) == []
    assert anomalies_similar(anomaly=no_category, user=root) == []  # no category, no match


def test_a_snoozed_finding_is_similar(root, here):
    snoozed = AnomalyFactory(
        product=here.product,
        status=AnomalyStatus.SNOOZED,
        snoozed_until=timezone.localdate() + dt.timedelta(days=2),
    )

    assert [row.anomaly for row in anomalies_similar(anomaly=here, user=root)] == [snoozed]


def test_a_store_level_finding_is_similar_to_its_stores_findings(root, here):
    outage = AnomalyFactory(
        product=None, location=here.location, anomaly_type=AnomalyType.POS_OUTAGE
    )

    rows = anomalies_similar(anomaly=outage, user=root)

    assert [(row.anomaly, row.reason) for row in rows] == [(here, SAME_STORE)]


def test_parent_children_and_group_holders_are_not_listed(root, here):
    parent = AnomalyFactory(product=here.product)
    Anomaly.objects.filter(pk=here.pk).update(parent=parent)
    here.refresh_from_db()
    child = AnomalyFactory(product=here.product, parent=here)
    holder = AnomalyFactory(product=here.product)
    AnomalyFactory(product=ProductFactory(category="Bakery"), parent=holder)

    assert anomalies_similar(anomaly=here, user=root) == []
    assert child.pk not in [row.anomaly.pk for row in anomalies_similar(anomaly=here, user=root)]


def test_store_staff_see_only_their_stores(here):
    AnomalyFactory(product=here.product)  # another store
    mine = AnomalyFactory(product=ProductFactory(category="Dairy"), location=here.location)
    staff = grant_role(UserFactory(username="s1"), STORE_STAFF, locations=[here.location])

    assert [row.anomaly for row in anomalies_similar(anomaly=here, user=staff)] == [mine]


def test_the_list_is_limited(root, here):
    for _ in range(4):
        AnomalyFactory(product=here.product)

    assert len(anomalies_similar(anomaly=here, user=root, limit=2)) == 2


# --- merge -------------------------------------------------------------------------------------


def test_merge_skips_what_cannot_be_merged_and_says_why(root, here):
    ok = AnomalyFactory(product=here.product)
    closed = AnomalyFactory(
        product=here.product, status=AnomalyStatus.RESOLVED, closed_at=timezone.now()
    )
    already = AnomalyFactory(product=here.product, parent=here)
    holder = AnomalyFactory(product=here.product)
    AnomalyFactory(parent=holder)

    report = anomalies_merge(
        parent_id=here.pk,
        anomaly_ids=[ok.pk, closed.pk, already.pk, holder.pk, here.pk, 999999],
        actor=root,
    )

    assert report.merged_ids == [ok.pk]
    assert report.skipped == {
        closed.pk: "resolved",
        already.pk: ALREADY_HERE,
        holder.pk: HAS_CHILDREN,
        here.pk: IS_PARENT,
        999999: NOT_FOUND,
    }
    assert report.summary().startswith("1 similar anomaly grouped under this one; 5 skipped (")
    ok.refresh_from_db()
    assert ok.parent_id == here.pk
    parent_note = AnomalyActivity.objects.get(anomaly=here, action=ActivityAction.MERGE).note
    assert parent_note.startswith("1 similar anomaly grouped here: Ghost stock")


def test_merge_moves_a_finding_from_its_earlier_group(root, here):
    other_parent = AnomalyFactory()
    moved = AnomalyFactory(product=here.product, parent=other_parent)

    anomalies_merge(parent_id=here.pk, anomaly_ids=[moved.pk], actor=root)

    moved.refresh_from_db()
    assert moved.parent_id == here.pk
    note = AnomalyActivity.objects.get(anomaly=moved).note
    assert note.endswith("(similar) instead of its earlier group")


@pytest.mark.parametrize("state", ["closed", "grouped", "missing"])
def test_merge_into_a_closed_grouped_or_missing_finding_is_refused(root, here, state):
    candidate = AnomalyFactory(product=here.product)
    parent_id = here.pk
    if state == "closed":
        Anomaly.objects.filter(pk=here.pk).update(
            status=AnomalyStatus.DISMISSED, closed_at=timezone.now()
        )
    elif state == "grouped":
        Anomaly.objects.filter(pk=here.pk).update(parent=AnomalyFactory())
    else:
        parent_id = 999999

    with pytest.raises(MergeError):
        anomalies_merge(parent_id=parent_id, anomaly_ids=[candidate.pk], actor=root)

    candidate.refresh_from_db()
    assert candidate.parent_id is None
    assert not AnomalyActivity.objects.exists()


def test_merge_refuses_a_finding_outside_the_actors_stores(here):
    elsewhere = AnomalyFactory(product=here.product)
    staff = grant_role(UserFactory(username="s1"), STORE_STAFF, locations=[here.location])

    with pytest.raises(PermissionDenied):
        anomalies_merge(parent_id=here.pk, anomaly_ids=[elsewhere.pk], actor=staff)

    elsewhere.refresh_from_db()
    assert elsewhere.parent_id is None
