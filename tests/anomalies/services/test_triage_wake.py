"""Waking acknowledged anomalies for the ones a detection chunk extended."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anomalies.models import AckUntil, Anomaly, AnomalyStatus
from anomalies.services.triage import anomalies_wake_acknowledged
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2024, 2, 10)


def _acknowledged_until(day: dt.date) -> Anomaly:
    anomaly = AnomalyFactory(last_detected_on=TODAY)
    Anomaly.objects.filter(pk=anomaly.pk).update(
        status=AnomalyStatus.ACKNOWLEDGED,
        ack_until_kind=AckUntil.DATE,
        ack_until_date=day,
        ack_since=day - dt.timedelta(days=5),
    )
    return anomaly


def test_only_the_extended_anomalies_are_woken_and_none_given_reads_nothing():
    due, also_due = _acknowledged_until(TODAY), _acknowledged_until(TODAY)

    with CaptureQueriesContext(connection) as queries:
        report = anomalies_wake_acknowledged(today=TODAY, anomaly_ids=[])
    assert (report.changed_ids, len(queries)) == ([], 0)

    report = anomalies_wake_acknowledged(today=TODAY, anomaly_ids={due.pk: None})
    assert report.changed_ids == [due.pk]
    statuses = dict(Anomaly.objects.values_list("pk", "status"))
    assert statuses == {due.pk: AnomalyStatus.OPEN, also_due.pk: AnomalyStatus.ACKNOWLEDGED}

    # The daily task passes no ids: every acknowledged anomaly is checked.
    assert anomalies_wake_acknowledged(today=TODAY).changed_ids == [also_due.pk]


def test_an_extended_anomaly_whose_condition_has_not_passed_stays_acknowledged():
    later = _acknowledged_until(TODAY + dt.timedelta(days=3))
    report = anomalies_wake_acknowledged(today=TODAY, anomaly_ids=[later.pk])
    assert report.changed_ids == []
    assert Anomaly.objects.get(pk=later.pk).status == AnomalyStatus.ACKNOWLEDGED
