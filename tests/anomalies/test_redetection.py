"""Detection finding an existing anomaly again (through ``anomalies_persist``): snoozed ones that
got worse wake, resolved ones regress, dismissed ones stay dismissed; and the pure rules.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from anomalies.detectors.base import make_findings
from anomalies.models import Anomaly
from anomalies.services.persistence import anomalies_persist
from anomalies.services.redetection import (
    Redetection,
    RedetectionBaseline,
    anomaly_on_redetected,
    snooze_worsening,
)
from anomalies.services.triage import (
    anomaly_resolve,
)
from tests.anomalies.triage_support import (
    ACK,
    DISMISSED,
    END,
    OPEN,
    RESOLVED,
    SNOOZED,
    START,
    activities,
)
from tests.factories import AnomalyFactory, DetectionRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def detect(sku_at_store):
    """Persist one ghost-stock finding of the same SKU/store, as a run as of ``as_of`` would."""
    product, location = sku_at_store

    def run(
        *,
        as_of: dt.date,
        start: dt.date,
        end: dt.date | None = None,
        severity: str = "warning",
        value_at_risk: float = 100.0,
    ):
        findings = make_findings(
            {
                "anomaly_type": ["ghost_stock"],
                "product_id": [product.pk],
                "location_id": [location.pk],
                "start_date": [pd.Timestamp(start)],
                "end_date": [pd.Timestamp(end or as_of)],
                "severity": [severity],
                "score": [0.99],
                "expected_value": [4.0],
                "actual_value": [0.0],
                "value_at_risk": [value_at_risk],
                "explanation": [f"found as of {as_of}"],
                "details": [{}],
            }
        )
        return anomalies_persist(findings=findings, run=DetectionRunFactory(as_of=as_of))

    return run


# --- detection wakes a snoozed anomaly that got worse ------------------------------------------


@pytest.mark.parametrize(
    ("severity", "value_at_risk", "woken_with"),
    [
        ("warning", 149.99, None),  # +49.99 %: below the default 50 %
        ("warning", 150.00, "worse while snoozed: value at risk 100.00 → 150.00 (+50%)"),
        ("critical", 100.00, "worse while snoozed: severity warning → critical"),
        ("info", 90.00, None),  # better, not worse
        (
            "critical",
            250.00,
            "worse while snoozed: severity warning → critical; "
            "value at risk 100.00 → 250.00 (+150%)",
        ),
    ],
)
def test_snoozed_anomaly_wakes_when_detection_finds_it_worse(
    existing, detect, severity, value_at_risk, woken_with
):
    anomaly = existing(SNOOZED)

    detect(as_of=dt.date(2024, 1, 26), start=START, severity=severity, value_at_risk=value_at_risk)

    anomaly.refresh_from_db()
    assert Anomaly.objects.count() == 1
    assert anomaly.end_date == dt.date(2024, 1, 26)  # extended either way
    assert anomaly.value_at_risk == Decimal(f"{value_at_risk:.2f}")
    if woken_with is None:
        assert anomaly.status == SNOOZED
        assert activities(anomaly) == []
    else:
        assert anomaly.status == OPEN
        assert anomaly.snoozed_until is None
        assert activities(anomaly) == [(None, "wake", SNOOZED, OPEN, woken_with)]


def test_snooze_worsen_percentage_is_a_setting(existing, detect, settings):
    settings.SHELFWATCH_SNOOZE_WORSEN_PCT = 20
    anomaly = existing(SNOOZED)

    detect(as_of=dt.date(2024, 1, 26), start=START, value_at_risk=120.0)

    anomaly.refresh_from_db()
    assert anomaly.status == OPEN


def test_growth_is_measured_from_the_value_when_snoozed_not_from_the_last_run(existing, detect):
    anomaly = existing(SNOOZED)

    # +30 % a day: neither step reaches 50 %, together they do (100 → 130 → 169).
    detect(as_of=dt.date(2024, 1, 26), start=START, value_at_risk=130.0)
    anomaly.refresh_from_db()
    assert anomaly.status == SNOOZED
    detect(as_of=dt.date(2024, 1, 27), start=START, value_at_risk=169.0)

    anomaly.refresh_from_db()
    assert anomaly.status == OPEN


def test_rerunning_an_old_date_does_not_wake_a_snooze(existing, detect):
    anomaly = existing(SNOOZED)

    detect(as_of=dt.date(2024, 1, 24), start=START, end=dt.date(2024, 1, 24), severity="critical")

    anomaly.refresh_from_db()
    assert anomaly.status == SNOOZED


# --- regression: a resolved anomaly fires again ------------------------------------------------


def test_resolved_anomaly_still_firing_the_next_day_reopens_as_regressed(existing, detect):
    anomaly = existing(RESOLVED)

    result = detect(as_of=dt.date(2024, 1, 26), start=START)

    anomaly.refresh_from_db()
    assert Anomaly.objects.count() == 1
    assert result.created == {} and result.extended == {"ghost_stock": 1}
    assert anomaly.status == OPEN
    assert anomaly.regression_count == 1
    assert anomaly.regressed_at is not None
    assert anomaly.closed_at is None
    assert anomaly.end_date == dt.date(2024, 1, 26)
    assert activities(anomaly) == [
        (
            None,
            "regress",
            RESOLVED,
            OPEN,
            "fired again as of 2024-01-26 (2024-01-20 – 2024-01-26), "
            "still going after its last day 2024-01-25",
        )
    ]


@pytest.mark.parametrize(("days_after", "reopened"), [(2, True), (14, True), (15, False)])
def test_firing_again_after_a_gap_reopens_within_the_regression_window(
    existing, detect, days_after, reopened
):
    anomaly = existing(RESOLVED)
    again = END + dt.timedelta(days=days_after)  # quiet days in between, then it fires

    detect(as_of=again, start=again)

    anomaly.refresh_from_db()
    if reopened:
        assert Anomaly.objects.count() == 1
        assert (anomaly.status, anomaly.regression_count) == (OPEN, 1)
        assert anomaly.end_date == again
        assert activities(anomaly)[0][4] == (
            f"fired again as of {again} ({again} – {again}), "
            f"{days_after} day(s) after its last day 2024-01-25"
        )
    else:
        assert Anomaly.objects.count() == 2
        assert (anomaly.status, anomaly.regression_count) == (RESOLVED, 0)
        new = Anomaly.objects.exclude(pk=anomaly.pk).get()
        assert (new.status, new.start_date) == (OPEN, again)


def test_regression_window_is_a_setting_and_zero_turns_it_off(existing, detect, settings):
    settings.SHELFWATCH_REGRESSION_DAYS = 0
    anomaly = existing(RESOLVED)

    detect(as_of=dt.date(2024, 1, 26), start=START)  # still firing: only extended
    detect(as_of=dt.date(2024, 1, 30), start=dt.date(2024, 1, 30))  # after a gap: a new one

    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.regression_count, anomaly.end_date) == (
        RESOLVED,
        0,
        dt.date(2024, 1, 26),
    )
    assert Anomaly.objects.count() == 2


def test_rerunning_the_same_date_does_not_reopen(existing, detect):
    anomaly = existing(RESOLVED)

    detect(as_of=END, start=START, end=END)

    anomaly.refresh_from_db()
    assert anomaly.status == RESOLVED
    assert activities(anomaly) == []


def test_each_regression_is_counted(existing, detect, staff_user):
    anomaly = existing(RESOLVED)

    detect(as_of=dt.date(2024, 1, 26), start=START)
    anomaly_resolve(anomaly_id=anomaly.pk, actor=staff_user, note="recounted again")
    detect(as_of=dt.date(2024, 1, 27), start=START)

    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.regression_count) == (OPEN, 2)
    assert [row[1] for row in activities(anomaly)] == ["regress", "resolve", "regress"]


def test_only_the_latest_anomaly_of_the_sku_counts(existing, detect, sku_at_store):
    product, location = sku_at_store
    resolved = existing(RESOLVED)
    later_open = AnomalyFactory(
        product=product,
        location=location,
        start_date=dt.date(2024, 1, 28),
        end_date=dt.date(2024, 1, 29),
        last_detected_on=dt.date(2024, 1, 29),
    )

    detect(as_of=dt.date(2024, 2, 2), start=dt.date(2024, 2, 2))

    resolved.refresh_from_db()
    later_open.refresh_from_db()
    assert resolved.status == RESOLVED
    assert later_open.end_date == dt.date(2024, 1, 29)
    assert Anomaly.objects.count() == 3


# --- dismissed stays dismissed -----------------------------------------------------------------


@pytest.mark.parametrize(
    "again", [dt.date(2024, 1, 26), dt.date(2024, 2, 5)], ids=["still firing", "after a gap"]
)
def test_dismissed_anomaly_firing_again_stays_dismissed_and_is_extended(existing, detect, again):
    anomaly = existing(DISMISSED, dismiss_reason="expected")

    detect(as_of=again, start=again if again > END + dt.timedelta(days=1) else START, end=again)

    anomaly.refresh_from_db()
    assert Anomaly.objects.count() == 1
    assert (anomaly.status, anomaly.dismiss_reason, anomaly.regression_count) == (
        DISMISSED,
        "expected",
        0,
    )
    assert anomaly.end_date == again
    assert anomaly.last_detected_on == again
    assert activities(anomaly) == []


# --- the pure rules ----------------------------------------------------------------------------


def baseline(status: str, **kwargs) -> RedetectionBaseline:
    values = {
        "pk": 1,
        "status": status,
        "end_date": END,
        "last_detected_on": END,
        "snoozed_severity": "",
        "snoozed_value_at_risk": None,
        **kwargs,
    }
    return RedetectionBaseline(**values)


@pytest.mark.parametrize(
    ("status", "as_of", "start", "end", "expected"),
    [
        (OPEN, dt.date(2024, 1, 26), START, dt.date(2024, 1, 26), None),
        (ACK, dt.date(2024, 1, 26), START, dt.date(2024, 1, 26), None),
        (DISMISSED, dt.date(2024, 1, 26), START, dt.date(2024, 1, 26), None),
        (RESOLVED, dt.date(2024, 1, 26), START, dt.date(2024, 1, 26), "regress"),
        # A newer run that only repeats the known days is not news.
        (RESOLVED, dt.date(2024, 1, 26), START, END, None),
        (RESOLVED, dt.date(2024, 2, 8), dt.date(2024, 2, 8), dt.date(2024, 2, 8), "regress"),
        (RESOLVED, dt.date(2024, 2, 9), dt.date(2024, 2, 9), dt.date(2024, 2, 9), None),
    ],
)
def test_redetection_rule(status, as_of, start, end, expected):
    decision = anomaly_on_redetected(
        before=baseline(status),
        start=start,
        end=end,
        severity="warning",
        value_at_risk=Decimal("100"),
        as_of=as_of,
        regression_days=14,
        worsen_pct=Decimal(50),
    )
    assert (decision.action if decision else None) == expected


def test_redetection_of_a_snooze_compares_with_the_snoozed_values():
    before = baseline(SNOOZED, snoozed_severity="info", snoozed_value_at_risk=Decimal("0.00"))

    decision = anomaly_on_redetected(
        before=before,
        start=START,
        end=END,
        severity="info",
        value_at_risk=Decimal("12.50"),
        as_of=END,
        regression_days=14,
        worsen_pct=Decimal(50),
    )

    # From nothing at risk, any money at risk is worse (no percentage to show).
    assert decision == Redetection("wake", "worse while snoozed: value at risk 0.00 → 12.50")


@pytest.mark.parametrize(
    ("severity", "value", "expected"),
    [
        ("warning", "100", []),
        ("warning", "149.99", []),
        ("warning", "150", ["value at risk 100.00 → 150.00 (+50%)"]),
        ("critical", "100", ["severity warning → critical"]),
        ("info", "1000", ["value at risk 100.00 → 1000.00 (+900%)"]),
    ],
)
def test_snooze_worsening(severity, value, expected):
    assert (
        snooze_worsening(
            baseline_severity="warning",
            baseline_value_at_risk=Decimal("100.00"),
            severity=severity,
            value_at_risk=Decimal(value),
            worsen_pct=Decimal(50),
        )
        == expected
    )
