"""``common.bulk_update.rows_update``, the VALUES writer persistence extends anomalies with.

Run on SQLite by default and on PostgreSQL with ``DATABASE_URL``: the SQL differs per backend.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from anomalies.models import Anomaly
from common.bulk_update import rows_update
from tests.factories import AnomalyFactory


@pytest.mark.django_db
def test_rows_update_writes_the_fields_of_every_row_in_batches_and_nothing_else():
    anomalies = [AnomalyFactory(score=1.0, explanation="old", details={}) for _ in range(3)]
    bystander = AnomalyFactory(score=1.0, explanation="old")
    for i, anomaly in enumerate(anomalies):
        anomaly.score = 10.0 + i
        anomaly.value_at_risk = Decimal("12.34")
        anomaly.expected_value = None
        anomaly.details = {"window": [i, "x"]}
        anomaly.end_date = anomaly.end_date + dt.timedelta(days=i)
        anomaly.explanation = "new"  # not among the fields written

    fields = ["score", "value_at_risk", "expected_value", "details", "end_date"]
    rows_update(anomalies, fields, batch_size=2)

    for i, anomaly in enumerate(anomalies):
        saved = Anomaly.objects.get(pk=anomaly.pk)
        assert saved.score == 10.0 + i
        assert saved.value_at_risk == Decimal("12.34")
        assert saved.expected_value is None
        assert saved.details == {"window": [i, "x"]}
        assert saved.end_date == anomaly.end_date
        assert saved.explanation == "old"
    assert Anomaly.objects.get(pk=bystander.pk).score == 1.0


@pytest.mark.django_db
def test_rows_update_runs_one_statement_per_batch(django_assert_num_queries):
    anomalies = [AnomalyFactory() for _ in range(5)]
    with django_assert_num_queries(3):
        rows_update(anomalies, ["score"], batch_size=2)
    with django_assert_num_queries(0):
        rows_update([], ["score"])
    assert connection.vendor in {"sqlite", "postgresql"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [([], "at least one field"), (["id"], "primary key"), (["children"], "concrete")],
)
def test_rows_update_refuses_bad_fields_before_writing(fields, message):
    with pytest.raises(ValueError, match=message):
        rows_update([Anomaly(pk=1)], fields)


def test_rows_update_refuses_unsaved_instances():
    with pytest.raises(ValueError, match="primary key set"):
        rows_update([Anomaly(pk=1), Anomaly()], ["score"])
