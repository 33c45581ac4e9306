"""Triage SLA: business hours between two times (pure) and a finding's timer against its target."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from anomalies.models import TriageSla
from anomalies.services.sla import (
    SLA_BREACHED,
    SLA_OK,
    SLA_WARN,
    BusinessHours,
    SlaPolicy,
    business_seconds,
    duration_text,
    sla_state,
    sla_timer,
)

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
# 08:00-18:00 Monday to Saturday (the defaults).
SHOP = BusinessHours(opens=dt.time(8), closes=dt.time(18), weekdays=frozenset(range(6)))
HOUR = 3600


def at(day: str, time: str = "00:00", tz=UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=tz)


# 2026-12-04 is a Friday, 12-05 a Saturday, 12-06 a Sunday, 12-07 a Monday.


def test_time_inside_one_business_day_counts_in_full():
    assert business_seconds(at("2026-12-04", "09:00"), at("2026-12-04", "12:10"), SHOP) == (
        3 * HOUR + 600
    )


def test_time_before_opening_and_after_closing_does_not_count():
    assert business_seconds(at("2026-12-04", "06:00"), at("2026-12-04", "08:00"), SHOP) == 0
    assert business_seconds(at("2026-12-04", "17:00"), at("2026-12-04", "23:00"), SHOP) == HOUR
    assert business_seconds(at("2026-12-04", "00:00"), at("2026-12-05", "00:00"), SHOP) == 10 * HOUR


def test_sunday_is_closed_and_the_clock_resumes_on_monday():
    # Saturday 17:00 -> Monday 09:00: 1 h on Saturday, none on Sunday, 1 h on Monday.
    assert business_seconds(at("2026-12-05", "17:00"), at("2026-12-07", "09:00"), SHOP) == 2 * HOUR


def test_whole_weeks_count_six_business_days_each():
    start = at("2026-12-07", "08:00")  # Monday opening
    assert business_seconds(start, start + dt.timedelta(weeks=1), SHOP) == 6 * 10 * HOUR
    assert business_seconds(start, start + dt.timedelta(weeks=52), SHOP) == 52 * 6 * 10 * HOUR


def test_end_before_start_is_zero():
    assert business_seconds(at("2026-12-04", "12:00"), at("2026-12-04", "09:00"), SHOP) == 0


def test_hours_are_read_on_the_local_wall_clock_across_a_clock_change():
    # London: 09:00-10:00 local is 08:00-09:00 UTC in summer (BST). The business day is local.
    summer = business_seconds(at("2026-07-01", "08:00", LONDON), at("2026-07-01", "09:00"), SHOP)
    assert summer == 2 * HOUR  # 08:00 -> 10:00 London time
    # Saturday 28 March 2026 17:00 GMT -> Monday 30 March 09:00 BST (clocks went forward Sunday).
    across = business_seconds(
        at("2026-03-28", "17:00", LONDON), at("2026-03-30", "09:00", LONDON), SHOP
    )
    assert across == 2 * HOUR


def naive_walk(start: dt.datetime, end: dt.datetime, hours: BusinessHours) -> int:
    """Minute by minute: the definition the fast function must agree with."""
    total, t = 0, start
    while t < end:
        step = min(end, t + dt.timedelta(minutes=1))
        inside = t.weekday() in hours.weekdays and hours.opens <= t.time() < hours.closes
        total += int((step - t).total_seconds()) if inside else 0
        t = step
    return total


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)),
    minutes=st.integers(min_value=0, max_value=10 * 24 * 60),
    weekdays=st.frozensets(st.integers(0, 6), min_size=1),
    opens=st.integers(0, 22),
    length=st.integers(1, 10),
)
def test_fast_count_agrees_with_a_minute_by_minute_walk(start, minutes, weekdays, opens, length):
    start = start.replace(second=0, microsecond=0)
    hours = BusinessHours(
        opens=dt.time(opens), closes=dt.time(min(23, opens + length)), weekdays=weekdays
    )
    end = start + dt.timedelta(minutes=minutes)
    assert business_seconds(start, end, hours) == naive_walk(start, end, hours)


def test_business_hours_refuse_a_day_that_ends_before_it_starts():
    with pytest.raises(ValueError):
        BusinessHours(opens=dt.time(18), closes=dt.time(8), weekdays=frozenset({0}))
    with pytest.raises(ValueError):
        BusinessHours(opens=dt.time(8), closes=dt.time(18), weekdays=frozenset())


def test_durations_read_as_hours_and_minutes():
    assert duration_text(45 * 60) == "45m"
    assert duration_text(3 * HOUR + 10 * 60) == "3h 10m"
    assert duration_text(4 * HOUR) == "4h"
    assert duration_text(9 * HOUR + 59 * 60) == "9h 59m"
    assert duration_text(27 * HOUR + 5 * 60) == "27h"


def test_state_turns_amber_at_the_warn_share_and_red_at_the_target():
    target = 4 * HOUR
    assert sla_state(elapsed_seconds=2 * HOUR, target_seconds=target, warn_percent=75) == SLA_OK
    assert sla_state(elapsed_seconds=3 * HOUR, target_seconds=target, warn_percent=75) == SLA_WARN
    assert sla_state(elapsed_seconds=target, target_seconds=target, warn_percent=75) == SLA_BREACHED


# --- a finding's timer -------------------------------------------------------------------------

POLICY = SlaPolicy(
    targets_hours={"critical": 4, "warning": 20, "info": 50}, warn_percent=75, hours=SHOP
)


def finding(**kwargs):
    values = {
        "severity": "critical",
        "status": "open",
        "created_at": at("2026-12-04", "09:00"),
        "acknowledged_at": None,
        "closed_at": None,
    }
    return SimpleNamespace(**{**values, **kwargs})


def test_open_critical_finding_runs_against_four_business_hours(settings):
    settings.TIME_ZONE = "UTC"
    timer = sla_timer(anomaly=finding(), policy=POLICY, now=at("2026-12-04", "12:10"))

    assert (timer.text, timer.state, timer.running) == ("3h 10m of 4h", SLA_WARN, True)


def test_a_night_and_a_sunday_do_not_breach_a_warning(settings):
    settings.TIME_ZONE = "UTC"
    saturday_evening = finding(severity="warning", created_at=at("2026-12-05", "17:00"))
    timer = sla_timer(anomaly=saturday_evening, policy=POLICY, now=at("2026-12-07", "09:00"))

    assert (timer.text, timer.state) == ("2h of 20h", SLA_OK)


def test_the_clock_stops_at_the_first_answer(settings):
    settings.TIME_ZONE = "UTC"
    answered = finding(
        status="resolved",
        acknowledged_at=at("2026-12-04", "14:00"),
        closed_at=at("2026-12-04", "16:00"),
    )
    timer = sla_timer(anomaly=answered, policy=POLICY, now=at("2026-12-11", "12:00"))

    assert (timer.text, timer.state, timer.running) == ("5h of 4h", SLA_BREACHED, False)


def test_a_finding_snoozed_without_acknowledgement_has_no_timer():
    snoozed = finding(status="snoozed")
    assert sla_timer(anomaly=snoozed, policy=POLICY, now=at("2026-12-11")) is None


# --- the editable targets ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_creates_the_default_targets():
    policy = SlaPolicy.from_row(TriageSla.load())

    assert policy.targets_hours == {"critical": 4, "warning": 20, "info": 50}
    assert (policy.hours.opens, policy.hours.closes) == (dt.time(8), dt.time(18))
    assert policy.hours.weekdays == frozenset(range(6))  # Monday to Saturday
    assert TriageSla.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"closes_at": dt.time(7)},
        {"critical_hours": 0},
        {"warn_percent": 0},
        {name: False for name in TriageSla.WEEKDAY_FIELDS},
    ],
    ids=["day-ends-before-start", "zero-target", "zero-warn", "no-business-day"],
)
def test_targets_that_cannot_work_are_refused(change):
    sla = TriageSla(**change)
    with pytest.raises(ValidationError):
        sla.clean()
