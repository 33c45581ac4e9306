"""effectiveness_report, roi_report and dashboard_summary on rows with hand-computed figures.

Verdicts come from outcomes, else from how an anomaly was closed (resolved → true positive,
dismissed as false positive / expected → that; a duplicate is not labelled).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from anomalies.models import Anomaly, AnomalyStatus, AnomalyType, Severity
from outcomes.models import CycleCount, MissedAnomaly, Outcome
from outcomes.services import (
    ReportError,
    dashboard_summary,
    effectiveness_report,
    outcome_record,
    roi_report,
)
from tests.factories import AnomalyFactory, LocationFactory, ProductFactory

pytestmark = pytest.mark.django_db

JAN_1, JAN_31 = dt.date(2024, 1, 1), dt.date(2024, 1, 31)
GHOST = {"expected_units_per_day": 2.0, "probability": 0.99}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def raised(created: str, **fields) -> Anomaly:
    anomaly = AnomalyFactory(**fields)
    Anomaly.objects.filter(pk=anomaly.pk).update(created_at=at(created))
    return anomaly


def outcome(anomaly: Anomaly, verdict: str, recorded: str, **fields) -> None:
    saved = outcome_record(anomaly_id=anomaly.pk, verdict=verdict, actor=None, **fields)
    Outcome.objects.filter(pk=saved.pk).update(recorded_at=at(recorded))


def counted(location, when: str, *, control: bool = False, book: int = 5, qty: int = 5):
    CycleCount.objects.create(
        product=ProductFactory(),
        location=location,
        status="counted",
        is_control=control,
        population=40 if control else None,
        book_on_hand=book,
        counted_quantity=qty,
        counted_at=at(when),
    )


@pytest.fixture
def january():
    """Findings of January 2024 (and one of December) with their response times (hours)."""
    s1, s2 = LocationFactory(code="S1"), LocationFactory(code="S2")
    found = {}
    # A1 ghost stock, TP by its outcome (a count wrote off £95); 2 h / 24 h.
    found["a1"] = raised(
        "2024-01-03T08:00",
        location=s1,
        details=GHOST,
        start_date=JAN_1,
        end_date=dt.date(2024, 1, 3),
        first_detected_on=dt.date(2024, 1, 3),
        status=AnomalyStatus.RESOLVED,
        acknowledged_at=at("2024-01-03T10:00"),
        closed_at=at("2024-01-04T08:00"),
    )
    outcome(found["a1"], "true_positive", "2024-01-04T09:00", recovered_value="95.00")
    # A2 ghost stock dismissed as a false positive, no outcome; 6 h / 6 h.
    found["a2"] = raised(
        "2024-01-10T00:00",
        location=s2,
        first_detected_on=dt.date(2024, 1, 10),
        status=AnomalyStatus.DISMISSED,
        dismiss_reason="false_positive",
        closed_at=at("2024-01-10T06:00"),
    )
    # A3 demand spike acknowledged, still being worked on: not labelled; 4 h.
    found["a3"] = raised(
        "2024-01-10T00:00",
        location=s1,
        anomaly_type=AnomalyType.DEMAND_SPIKE,
        first_detected_on=dt.date(2024, 1, 10),
        status=AnomalyStatus.ACKNOWLEDGED,
        acknowledged_at=at("2024-01-10T04:00"),
    )
    # A4 price anomaly resolved without an outcome: TP; 12 h / 12 h.
    found["a4"] = raised(
        "2024-01-17T00:00",
        location=s1,
        anomaly_type=AnomalyType.PRICE_ANOMALY,
        first_detected_on=dt.date(2024, 1, 17),
        status=AnomalyStatus.RESOLVED,
        closed_at=at("2024-01-17T12:00"),
    )
    # A5 demand drop dismissed as a duplicate: not labelled; 2 h / 2 h.
    found["a5"] = raised(
        "2024-01-17T00:00",
        location=s2,
        anomaly_type=AnomalyType.DEMAND_DROP,
        first_detected_on=dt.date(2024, 1, 17),
        status=AnomalyStatus.DISMISSED,
        dismiss_reason="duplicate",
        closed_at=at("2024-01-17T02:00"),
    )
    # A6 ghost stock of December, confirmed in January (£10): in January's ROI only.
    found["a6"] = raised(
        "2023-12-20T00:00",
        location=s1,
        details={"expected_units_per_day": 1.0},
        start_date=dt.date(2023, 12, 10),
        end_date=dt.date(2023, 12, 20),
        first_detected_on=dt.date(2023, 12, 20),
        status=AnomalyStatus.RESOLVED,
        closed_at=at("2024-01-05T00:00"),
    )
    outcome(found["a6"], "true_positive", "2024-01-05T00:00", recovered_value="10.00")
    # A7 ghost stock dismissed as expected, but its outcome says false positive (wins); 1 h.
    found["a7"] = raised(
        "2024-01-20T00:00",
        location=s1,
        first_detected_on=dt.date(2024, 1, 20),
        status=AnomalyStatus.DISMISSED,
        dismiss_reason="expected",
        closed_at=at("2024-01-20T01:00"),
    )
    outcome(found["a7"], "false_positive", "2024-01-20T02:00")
    # Counts done in January: 2 for findings, 1 control (at book: no miss); 1 in February.
    counted(s1, "2024-01-04T08:00", book=38, qty=0)
    counted(s1, "2024-01-05T00:00", book=4, qty=0)
    counted(s2, "2024-01-12T00:00", control=True)
    counted(s2, "2024-02-02T00:00")
    MissedAnomaly.objects.create(
        anomaly_type=AnomalyType.GHOST_STOCK, location=s1, start_date=dt.date(2024, 1, 12)
    )
    return found


def test_effectiveness_report_overall(january):
    report = effectiveness_report(start=JAN_1, end=JAN_31, period="week")

    overall = report["overall"]
    # Raised in January: A1-A5 and A7. Labelled: A1 TP, A2 FP, A4 TP, A7 FP.
    assert (overall["raised"], overall["labelled"]) == (6, 4)
    assert (overall["true_positive"], overall["false_positive"], overall["expected"]) == (2, 2, 0)
    assert overall["precision"] == pytest.approx(0.5)
    assert overall["false_positive_rate"] == pytest.approx(0.5)
    assert overall["mtta_hours"] == pytest.approx((2 + 6 + 4 + 12 + 2 + 1) / 6)
    assert overall["mttr_hours"] == pytest.approx((24 + 6 + 12 + 2 + 1) / 5)
    assert overall["resolution_rate"] == pytest.approx(5 / 6)


def test_effectiveness_report_groups(january):
    report = effectiveness_report(start=JAN_1, end=JAN_31, period="week")

    by_type = {row["anomaly_type"]: row for row in report["by_type"]}
    by_location = {row["location"]: row["precision"] for row in report["by_location"]}
    by_detector = {row["detector"]: row["labelled"] for row in report["by_detector"]}
    assert by_type["ghost_stock"]["precision"] == pytest.approx(1 / 3)  # A1 of A1, A2, A7
    assert by_type["price_anomaly"]["precision"] == 1.0
    assert by_type["demand_spike"]["precision"] is None  # nothing labelled
    assert by_location == {"S1": pytest.approx(2 / 3), "S2": 0.0}
    assert by_detector == {
        "demand_drop": 0,
        "demand_spike": 0,
        "ghost_stock": 3,
        "price_anomaly": 1,
    }


def test_effectiveness_report_recall(january):
    recall = effectiveness_report(start=JAN_1, end=JAN_31)["recall"]

    by_type = {row["anomaly_type"]: row for row in recall["by_type"]}
    # Ghost stock: 1 found (A1), 1 reported miss; the one control count found nothing.
    assert by_type["ghost_stock"]["found"] == 1
    assert by_type["ghost_stock"]["control_counts"] == 1
    assert by_type["ghost_stock"]["recall"] == pytest.approx(0.5)
    assert by_type["price_anomaly"]["recall"] == 1.0
    assert (recall["found"], recall["missed"]) == (2, 1.0)
    assert recall["recall"] == pytest.approx(2 / 3)


def test_effectiveness_report_by_week_with_trend(january):
    report = effectiveness_report(start=JAN_1, end=JAN_31, period="week")

    weeks = [(row["period_start"], row["raised"], row["precision"]) for row in report["periods"]]
    assert weeks == [
        (dt.date(2024, 1, 1), 1, 1.0),  # A1
        (dt.date(2024, 1, 8), 2, 0.0),  # A2 FP, A3 unlabelled
        (dt.date(2024, 1, 15), 3, 0.5),  # A4 TP, A5 unlabelled, A7 FP (Saturday 20th)
        (dt.date(2024, 1, 22), 0, None),
        (dt.date(2024, 1, 29), 0, None),
    ]
    # Precision 1, 0, 0.5 over weeks 0, 1, 2: slope -0.25 per week, last change +0.5.
    assert report["trend"]["precision"] == {"slope": pytest.approx(-0.25), "change": 0.5}
    month = effectiveness_report(start=JAN_1, end=JAN_31, period="month")["periods"]
    assert [(row["period_start"], row["precision"]) for row in month] == [(JAN_1, 0.5)]


def test_roi_report(january, settings):
    report = roi_report(start=JAN_1, end=JAN_31, period="month")

    totals = report["totals"]
    # Recovered: A1 £95 + A6 £10 (confirmed in January; A4 had no value recorded).
    assert totals["recovered_value"] == pytest.approx(105.0)
    # A1: (Jan 1 + 30 days) - Jan 3 = 28 days x 2/day x £2.50 = £140;
    # A6: (Dec 10 + 30) - Dec 20 = 20 days x 1/day x £2.50 = £50.
    assert totals["lost_sales_prevented"] == pytest.approx(190.0)
    assert totals["true_positives"] == 3  # A1, A4, A6
    assert totals["counts_done"] == 3  # February's is outside
    assert totals["labour_cost"] == pytest.approx(3 * 10 / 60 * 15)
    assert totals["net_value"] == pytest.approx(105 + 190 - 7.5)
    assert totals["roi"] == pytest.approx((105 + 190 - 7.5) / 7.5)
    assert report["periods"] == [{"period_start": JAN_1, **totals}]
    assert report["settings"] == {
        "discovery_days": 30,
        "count_minutes": 10.0,
        "count_cost_per_hour": 15.0,
    }

    settings.SHELFWATCH_ROI_DISCOVERY_DAYS = 20
    settings.SHELFWATCH_COUNT_MINUTES = 30
    changed = roi_report(start=JAN_1, end=JAN_31)["totals"]
    # A1: 18 days x £5 = £90; A6: 10 days x £2.50 = £25; labour 3 x 0.5 h x £15.
    assert changed["lost_sales_prevented"] == pytest.approx(115.0)
    assert changed["labour_cost"] == pytest.approx(22.5)


def test_reports_refuse_nonsense_windows():
    with pytest.raises(ReportError, match="end date is before the start"):
        effectiveness_report(start=JAN_31, end=JAN_1)
    with pytest.raises(ReportError, match="Unknown period 'day'"):
        roi_report(start=JAN_1, end=JAN_31, period="day")
    with pytest.raises(ReportError, match="at most"):
        roi_report(start=dt.date(2000, 1, 1), end=JAN_31)


def test_dashboard_summary(january, django_assert_num_queries):
    s1, s2 = Anomaly.objects.get(pk=january["a1"].pk).location, january["a2"].location
    CycleCount.objects.create(product=ProductFactory(), location=s1, priority=4.5)
    CycleCount.objects.create(product=ProductFactory(), location=s1, priority=1.0)
    CycleCount.objects.create(product=ProductFactory(), location=s2, is_control=True)
    AnomalyFactory(
        severity=Severity.CRITICAL,
        value_at_risk=Decimal("12.50"),
        first_detected_on=dt.date(2023, 11, 1),
    )

    # Open by severity, value at risk, snoozed, then the anomalies, counts and misses frames
    # and the pending counts per location.
    with django_assert_num_queries(7):
        summary = dashboard_summary(today=JAN_31, days=31)

    assert (summary["start"], summary["today"], summary["period"]) == (JAN_1, JAN_31, "week")
    assert summary["open_by_severity"] == {"critical": 1, "warning": 1, "info": 0}
    assert summary["open_total"] == 2
    assert summary["open_value_at_risk"] == pytest.approx(95.0 + 12.5)  # A3 + the new one
    assert summary["effectiveness"] == effectiveness_report(start=JAN_1, end=JAN_31)["overall"]
    assert summary["recall"]["recall"] == pytest.approx(2 / 3)
    over_time = summary["precision_over_time"]
    assert over_time["periods"] == [dt.date(2024, 1, d) for d in (1, 8, 15, 22, 29)]
    assert over_time["overall"] == [1.0, 0.0, 0.5, None, None]
    assert over_time["by_type"]["ghost_stock"] == [1.0, 0.0, 0.0, None, None]
    assert over_time["by_type"]["price_anomaly"] == [None, None, 1.0, None, None]
    assert over_time["labelled_by_type"]["ghost_stock"] == [1, 1, 1, 0, 0]
    assert summary["response_times_over_time"]["mtta_hours"][:3] == [
        pytest.approx(2.0),
        pytest.approx(5.0),  # A2 6 h, A3 4 h
        pytest.approx(5.0),  # A4 12 h, A5 2 h, A7 1 h
    ]
    assert summary["roi"]["totals"] == roi_report(start=JAN_1, end=JAN_31)["totals"]
    assert sum(p["net_value"] for p in summary["roi"]["periods"]) == pytest.approx(287.5)
    assert summary["counts_pending"] == {
        "total": 3,
        "control": 1,
        "by_location": [
            {"location": "S1", "count": 2, "control": 0, "priority": 5.5},
            {"location": "S2", "count": 1, "control": 1, "priority": 0.0},
        ],
    }


def test_dashboard_summary_of_an_empty_database():
    summary = dashboard_summary(today=JAN_31)

    assert summary["days"] == 90
    assert summary["open_total"] == 0
    assert summary["effectiveness"]["precision"] is None
    assert summary["roi"]["totals"]["roi"] is None
    assert summary["counts_pending"] == {"total": 0, "control": 0, "by_location": []}
    assert len(summary["precision_over_time"]["periods"]) == 14
