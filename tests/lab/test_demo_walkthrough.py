"""The demo walk-through command on a small generated estate: it works anomalies through the
services and prints the precision, MTTA/MTTR and ROI that the dashboard and API report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from anomalies.models import Anomaly, AnomalyStatus
from anomalies.services.runs import detection_backfill
from inventory.importing import bundle_import
from inventory.models import StockAdjustment
from lab.simulator import generate_bundle
from lab.walkthrough import TruthEvent, is_real
from outcomes.models import Outcome
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

END = dt.date(2026, 10, 31)  # the generator's default last day
DETECTION_DAYS = 30
# A fixed clock, so that the reports' 90-day window ending "today" holds the findings whatever
# the real date (detection, triage and reports all read timezone.now()).
NOW = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def estate(tmp_path, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    generate_bundle(out_dir=tmp_path, seed=7, n_locations=2, n_skus=20, n_days=90)
    bundle_import(directory=tmp_path)
    detection_backfill(start=END - dt.timedelta(days=DETECTION_DAYS - 1), end=END)
    return tmp_path / "truth.csv"


def test_walkthrough_works_anomalies_and_prints_the_dashboard_figures(estate, staff_user):
    with estate.open() as fh:
        truth_rows = len(list(csv.DictReader(fh)))
    out = io.StringIO()

    call_command("demo_walkthrough", "--truth", str(estate), "--username", "ops", stdout=out)

    text = out.getvalue()
    assert f"({truth_rows} injected events)" in text
    worked = [int(pk) for pk in re.findall(r"^#(\d+) .*\[", text, re.M)]
    assert worked, text
    closed = Anomaly.objects.filter(pk__in=worked)
    assert set(closed.values_list("status", flat=True)) <= {
        AnomalyStatus.RESOLVED,
        AnomalyStatus.DISMISSED,
    }
    # Every ghost-stock finding worked was counted: an adjustment and an outcome each.
    ghosts = list(closed.filter(anomaly_type="ghost_stock").values_list("pk", flat=True))
    assert StockAdjustment.objects.filter(cycle_count__anomaly_id__in=ghosts).count() == len(ghosts)
    # Hand count of what the command did: resolved = true positive, dismissed = false positive.
    true_positives = closed.filter(status=AnomalyStatus.RESOLVED).count()
    false_positives = closed.filter(status=AnomalyStatus.DISMISSED).count()
    recorded_tp = Outcome.objects.filter(verdict="true_positive").count()
    assert recorded_tp == true_positives
    labelled = true_positives + false_positives
    precision = round(100 * true_positives / labelled)
    assert (
        f"precision {precision}%: {true_positives} true positive of {labelled} labelled "
        f"({false_positives} false positive, 0 expected)" in text
    )
    recovered = sum(
        Outcome.objects.filter(anomaly_id__in=ghosts).values_list("recovered_value", flat=True),
        Decimal(0),
    )
    labour = len(ghosts) * 10 / 60 * 15  # counts x 10 min at £15/h (the default settings)
    assert f"£{recovered:,.2f} recovered" in text
    assert f"- £{labour:,.2f} labour ({len(ghosts)} counts x 10 min at £15/h)" in text
    assert "the same figures" in text
    assert f"over {labelled} closed" in text
    # The window ends with the data (2026-10-31), not on the clock's day (2026-11-02).
    assert "findings first detected 2026-08-03..2026-10-31 (the end of the data):" in text, text
    assert "MTTA 0.000 h (0 s)" in text  # the fixed clock: acted on the instant they were raised


def test_truth_matching_allows_three_days_either_side(db):
    anomaly = AnomalyFactory(
        product=ProductFactory(sku="A1"),
        location=LocationFactory(code="S1"),
        start_date=dt.date(2024, 1, 10),
        end_date=dt.date(2024, 1, 12),
    )

    def event(start: int, end: int, **kw) -> TruthEvent:
        fields = {"anomaly_type": "ghost_stock", "sku": "A1", "location": "S1"}
        fields.update(kw)
        return TruthEvent(start=dt.date(2024, 1, start), end=dt.date(2024, 1, end), **fields)

    assert is_real(anomaly, [event(15, 20)])  # starts 3 days after the anomaly's end
    assert not is_real(anomaly, [event(16, 20)])
    assert is_real(anomaly, [event(1, 7)])  # ends 3 days before its start
    assert not is_real(anomaly, [event(1, 6)])
    assert not is_real(anomaly, [event(10, 12, sku="A2")])
    assert not is_real(anomaly, [event(10, 12, location="S2")])
    assert not is_real(anomaly, [event(10, 12, anomaly_type="demand_spike")])


def test_missing_truth_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match=r"no truth\.csv"):
        call_command("demo_walkthrough", "--truth", str(tmp_path / "nope.csv"))
