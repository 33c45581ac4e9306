"""Injected anomalies: event rates and shapes, scheduling on the event window, and the
feasibility check that decides when a scheduled event may start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .calendar import Calendar

if TYPE_CHECKING:
    from .scenario import Scenario

# Events are injected only in this trailing share of the horizon, so detectors have history.
EVENT_WINDOW_FRACTION = 0.6
# Expected events per SKU per event-window day at one location: calibrated so that the default
# demo (80 SKUs, 108-day window) gets a handful (3-4) of each type per store.
EVENT_RATE_PER_SKU_DAY = {
    "ghost_stock": 4.0 / (80 * 108),
    "inventory_discrepancy": 4.0 / (80 * 108),
    "demand_spike": 4.0 / (80 * 108),
    "demand_drop": 3.0 / (80 * 108),
    "price_anomaly": 4.0 / (80 * 108),
}
POS_OUTAGES_PER_LOCATION_DAY = 1.0 / 108
# Days kept free around an event on the same series, so events never overlap or touch.
EVENT_SEPARATION_DAYS = 7


# Classic defaults (``Scenario`` fields of the same names): a demand spike adds (factor - 1) x
# normal demand, and at least SPIKE_MIN_EXTRA_UNITS: a bulk
# buyer or a viral moment. Bumps smaller than that sit inside the negative binomial's natural
# variation of medium movers (a 3x day at 1.5 units/day happens by chance every few months).
SPIKE_FACTOR_RANGE = (6.0, 15.0)
SPIKE_MIN_EXTRA_UNITS = 15
SPIKE_MIN_MEAN = 2.0
# A demand drop keeps some sales (a blocked facing, a competitor's offer): 20-45% of normal on
# items selling at least DROP_MIN_MEAN a day. A run of *no* sales with stock on the books is
# ghost stock's signature, and the simulator keeps the two apart.
DROP_FACTOR_RANGE = (0.2, 0.45)
DROP_MIN_MEAN = 4.0


@dataclass
class Event:
    """One injected anomaly on one series; activated during the simulation when feasible."""

    kind: str
    series: int
    scheduled: int  # first day index it may start
    max_delay: int  # dropped if it could not start within this many days
    length: int  # effect days (spike/drop/price) or days until the cycle count (ghost)
    factor: float = 1.0  # demand multiple (spike/drop) or price multiple (price anomaly)
    subtype: str = ""  # "duplicate_receipt" | "write_off" for inventory discrepancies
    start: int = -1
    end: int = -1
    delta: int = 0  # book change (discrepancy) or book on hand at start (ghost)


def schedule_outages(
    rng: np.random.Generator, calendar: Calendar, window_start: int, n_days: int
) -> np.ndarray:
    """Store-wide POS outage days, (n_days, n_locations) bool; on open, event-free days."""
    n_locations = calendar.open_.shape[1]
    outage = np.zeros((n_days, n_locations), dtype=bool)
    counts = rng.poisson(POS_OUTAGES_PER_LOCATION_DAY * (n_days - window_start), n_locations)
    if counts.sum() == 0:  # the demo must show every anomaly type
        counts[rng.integers(n_locations)] = 1
    plain = calendar.open_ & (calendar.uplift == 1.0)
    for loc in range(n_locations):
        candidates = np.flatnonzero(plain[window_start:, loc]) + window_start
        picked = rng.choice(candidates, size=min(counts[loc], len(candidates)), replace=False)
        outage[picked, loc] = True
    return outage


def schedule_events(
    rng: np.random.Generator,
    *,
    base: np.ndarray,
    loc_of: np.ndarray,
    n_skus: int,
    n_locations: int,
    n_days: int,
    window_start: int,
    blocked: np.ndarray,
    scenario: Scenario,
) -> list[Event]:
    """Pick series and tentative start days for the SKU-level events.

    ``base`` is mean demand per series (units/day); ``blocked`` (n_days, n_series) marks
    promotion/dip, outage and closed days, which the short demand/price events must avoid so
    that they are not confounded. Events on one series never overlap (with a separation gap).
    Event shapes (spike and drop factors, mis-keyed price multiples) come from ``scenario``.
    """
    window = n_days - window_start
    reserved = np.zeros((n_days, base.size), dtype=bool)
    events: list[Event] = []
    for loc in range(n_locations):
        series = np.flatnonzero(loc_of == loc)
        for kind, rate in EVENT_RATE_PER_SKU_DAY.items():
            count = max(1, int(rng.poisson(rate * n_skus * window)))
            for _ in range(count):
                event = draw_event(rng, kind, series, base, n_days, window_start, scenario)
                if event is None:
                    continue
                d0 = event.scheduled
                d1 = min(n_days, d0 + event.max_delay + event.length)
                if kind == "inventory_discrepancy" and event.subtype == "duplicate_receipt":
                    d1 = n_days  # the phantom units stay until a gap scan, maybe never
                lo, hi = max(0, d0 - EVENT_SEPARATION_DAYS), min(n_days, d1 + EVENT_SEPARATION_DAYS)
                if reserved[lo:hi, event.series].any():
                    continue
                short = kind in ("demand_spike", "demand_drop", "price_anomaly")
                if short and blocked[d0:d1, event.series].any():
                    continue
                reserved[d0:d1, event.series] = True
                events.append(event)
    return events


def draw_event(
    rng: np.random.Generator,
    kind: str,
    series: np.ndarray,
    base: np.ndarray,
    n_days: int,
    window_start: int,
    scenario: Scenario,
) -> Event | None:
    """A tentative event of ``kind`` on one of ``series`` (or None when none is eligible)."""
    mean = base[series]
    if kind == "ghost_stock":
        # Mostly items with meaningful demand; a few slow movers (hard on purpose).
        eligible = series[mean >= 0.5] if rng.random() < 0.85 else series[mean >= 0.1]
        last_start, length, delay = n_days - 8, int(rng.integers(7, 46)), 14
    elif kind == "inventory_discrepancy":
        eligible, last_start, length, delay = series[mean >= 0.3], n_days - 2, 1, 14
    elif kind == "demand_spike":
        lo, hi = scenario.spike_days
        eligible = series[mean >= scenario.spike_min_mean]
        length, delay = int(rng.integers(lo, hi + 1)), 5
        last_start = n_days - length - delay
    elif kind == "demand_drop":
        eligible = series[mean >= scenario.drop_min_mean]
        length, delay = int(rng.integers(3, 11)), 5
        last_start = n_days - length - delay
    else:  # price_anomaly
        eligible, length, delay = series[mean >= 0.5], int(rng.integers(1, 4)), 5
        last_start = n_days - length - delay
    if eligible.size == 0 or last_start <= window_start:
        return None
    event = Event(
        kind=kind,
        series=int(rng.choice(eligible)),
        scheduled=int(rng.integers(window_start, last_start)),
        max_delay=delay,
        length=length,
    )
    if kind == "demand_spike":
        event.factor = float(rng.uniform(*scenario.spike_factor_range))
    elif kind == "demand_drop":
        event.factor = float(rng.uniform(*scenario.drop_factor_range))
    elif kind == "price_anomaly":
        roll = rng.random()
        x10, div10 = scenario.price_x10_prob, scenario.price_x10_prob + scenario.price_div10_prob
        event.factor = (
            10.0
            if roll < x10
            else 0.1
            if roll < div10
            else 1 - rng.uniform(*scenario.price_discount_range)
        )
    elif kind == "inventory_discrepancy":
        event.subtype = "duplicate_receipt" if rng.random() < 0.5 else "write_off"
    return event


def can_start(
    ev: Event,
    d: int,
    shelf: np.ndarray,
    book: np.ndarray,
    pipeline: np.ndarray,
    arrived: np.ndarray,
    reorder_today: np.ndarray,
    mu: np.ndarray,
    base: np.ndarray,
    spike_min_extra_units: int = SPIKE_MIN_EXTRA_UNITS,
) -> bool:
    """Whether a morning event can start on day ``d`` on its series (stock permitting).

    Vectors are (n_series,) units: shelf and book stock after today's deliveries, units on
    order, units delivered today, today's reorder point, mean demand (``base``, units/day);
    ``mu`` is (n_days, n_series) expected units.
    """
    s = ev.series
    if ev.kind == "ghost_stock":
        # Book above the reorder point with nothing on order: once the shelf is empty the
        # frozen book stock never triggers a delivery that would refill it.
        return bool(
            shelf[s] > 0 and book[s] == shelf[s] and book[s] > reorder_today[s] and pipeline[s] == 0
        )
    if ev.kind == "inventory_discrepancy":  # duplicate receipt: needs a delivery to duplicate
        return bool(arrived[s] >= 3)
    if ev.kind == "demand_spike":
        # Enough on the shelf for the spike to show in sales rather than sell out at once.
        normal = max(mu[d, s], base[s])
        return bool(shelf[s] >= max(min(ev.factor, 4.0) * normal, normal + spike_min_extra_units))
    if ev.kind == "demand_drop":
        return bool(shelf[s] >= max(3.0, 2.0 * mu[d, s]))
    return bool(shelf[s] >= 1)  # price_anomaly
