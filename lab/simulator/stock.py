"""Day-by-day simulation of shelf and book stock: demand, sales, (s, S) replenishment with
lead times and late deliveries, benign count adjustments, cycle counts and the injected events."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .events import Event, can_start

if TYPE_CHECKING:
    from .scenario import Scenario

# Receives one line of progress text at a time (e.g. ``print`` or a command's stdout writer).
Progress = Callable[[str], None]

# Classic defaults (``Scenario`` fields: late_delivery_prob, max_late_days, lead_days,
# benign_prob_per_day, benign_deltas, benign_delta_probs).
LATE_DELIVERY_PROB = 0.05
MAX_LATE_DAYS = 4
MIN_LEAD_DAYS, MAX_LEAD_DAYS = 2, 5
# Promotions are anticipated this many days ahead by the order-up-to level.
PROMO_PLANNING_DAYS = 7
BENIGN_ADJUSTMENT_PROB = 0.002
BENIGN_DELTAS = np.array([-2, -1, 1, 2])
BENIGN_DELTA_PROBS = np.array([0.3, 0.4, 0.2, 0.1])


def simulate_stock(
    rng: np.random.Generator,
    *,
    demand: np.ndarray,
    mu: np.ndarray,
    base: np.ndarray,
    dispersion: np.ndarray,
    mover: np.ndarray,
    loc_of: np.ndarray,
    open_series: np.ndarray,
    outage_series: np.ndarray,
    promo_uplift: np.ndarray,
    events: list[Event],
    price: np.ndarray,
    report: Progress,
    scenario: Scenario,
) -> dict[str, np.ndarray]:
    """Day-by-day stock simulation, vectorised over series.

    Inputs are (n_days, n_series) matrices (``demand`` in units, ``mu`` expected units) and
    (n_series,) vectors. Returns (n_days, n_series) matrices ``sales`` (physical units sold,
    outage days included), ``on_hand`` (book stock, end of day), ``receipts`` (units received)
    and ``price_override`` (mis-keyed price, NaN elsewhere). Mutates ``events`` (start, end,
    delta). Supply timing, benign corrections and the spike floor come from ``scenario``.
    """
    n_days, n_series = demand.shape
    # Periodic review (s, S) on book stock: fast movers reviewed daily, slow ones weekly.
    review = np.where(
        mover == 2,
        1,
        np.where(mover == 1, rng.choice([1, 2, 3], n_series), rng.choice([3, 7], n_series)),
    )
    review_offset = rng.integers(0, 7, n_series) % review
    lead = rng.integers(scenario.lead_days[0], scenario.lead_days[1] + 1, n_series)
    z = rng.uniform(0.5, 1.5, n_series)  # safety factor: service levels differ by item
    horizon = lead + review
    reorder = np.ceil(base * horizon + z * np.sqrt(horizon * (base + base**2 / dispersion))).clip(
        min=1
    )
    pack = np.where(
        base < 1.0,
        1,
        np.where(base < 8.0, rng.choice([4, 6, 8], n_series), rng.choice([12, 24], n_series)),
    )
    cover = horizon + rng.uniform(2.0, 7.0, n_series)
    order_up_to = reorder + np.maximum(pack, np.ceil(base * cover))
    # Stores raise s and S ahead of a promotion (forward max of the promotion uplift).
    plan = promo_uplift.copy()
    for k in range(1, PROMO_PLANNING_DAYS + 1):
        plan[:-k] = np.maximum(plan[:-k], np.where(promo_uplift[k:] > 1.0, promo_uplift[k:], 1.0))
    plan = np.maximum(plan, 1.0)

    shelf = rng.integers(reorder.astype(np.int64) + 1, order_up_to.astype(np.int64) + 1)
    book = shelf.copy()
    pipeline = np.zeros(n_series, dtype=np.int64)
    arrivals = np.zeros((n_days + scenario.max_delivery_days + 2, n_series), dtype=np.int64)
    sales_all = np.zeros((n_days, n_series), dtype=np.int64)
    on_hand = np.zeros((n_days, n_series), dtype=np.int64)
    price_override = np.full((n_days, n_series), np.nan)
    ghost_active = np.zeros(n_series, dtype=bool)
    # Series whose book and shelf disagree (ghost stock, duplicate receipt): no benign counts,
    # so that the correction at the event's end is exactly the injected delta.
    phantom = np.zeros(n_series, dtype=bool)

    waiting = sorted(events, key=lambda e: (e.scheduled, e.series))
    next_waiting = 0
    pending: list[Event] = []
    active: list[Event] = []
    report_every = max(1, n_days // 4)
    for d in range(n_days):
        if d and d % report_every == 0:
            report(f"Simulating stock: day {d}/{n_days}")
        while next_waiting < len(waiting) and waiting[next_waiting].scheduled <= d:
            pending.append(waiting[next_waiting])
            next_waiting += 1
        open_s = open_series[d]
        outage_s = outage_series[d]
        # Deliveries are not taken on closed days: they come the next day.
        arrived = arrivals[d]
        held = ~open_s & (arrived > 0)
        arrivals[d + 1, held] += arrived[held]
        arrived[held] = 0
        shelf += arrived
        book += arrived
        pipeline -= arrived
        touched = np.zeros(n_series, dtype=bool)
        reorder_today = np.ceil(reorder * plan[d])

        still: list[Event] = []
        for ev in pending:
            s = ev.series
            if d > ev.scheduled + ev.max_delay:
                continue  # never became feasible: not injected, not in the truth
            if ev.kind == "inventory_discrepancy" and ev.subtype == "write_off":
                still.append(ev)  # evening event, after sales
                continue
            if (
                not open_s[s]
                or outage_s[s]
                or not can_start(
                    ev,
                    d,
                    shelf,
                    book,
                    pipeline,
                    arrived,
                    reorder_today,
                    mu,
                    base,
                    scenario.spike_min_extra_units,
                )
            ):
                still.append(ev)
                continue
            ev.start = d
            touched[s] = True
            if ev.kind == "ghost_stock":
                # Stock disappears (theft, misplacement): shelf empty, book untouched and above
                # the reorder point, so no order is raised.
                ev.delta = int(book[s])
                shelf[s] = 0
                ghost_active[s] = True
                phantom[s] = True
            elif ev.kind == "inventory_discrepancy":  # duplicate receipt posting
                ev.delta = int(arrived[s])
                book[s] += ev.delta
                phantom[s] = True
            elif ev.kind == "price_anomaly":
                price_override[d : d + ev.length, s] = max(0.01, round(price[s] * ev.factor, 2))
            active.append(ev)
        pending = still

        today = demand[d].copy()
        for ev in active:
            s = ev.series
            if ev.start + ev.length <= d or not open_s[s]:
                continue
            if ev.kind == "demand_spike":
                # A bulk buyer or viral moment: (factor - 1) x normal demand on top.
                normal = max(mu[d, s], base[s])
                extra = max((ev.factor - 1.0) * normal, scenario.spike_min_extra_units)
                today[s] += round(extra * rng.uniform(0.8, 1.25))
            elif ev.kind == "demand_drop":  # blocked shelf, wrong label: few find the item
                today[s] = rng.poisson(ev.factor * mu[d, s])
        sales = np.minimum(today, shelf)
        shelf -= sales
        book -= sales
        sales_all[d] = sales

        still = []
        for ev in pending:
            s = ev.series
            if ev.kind != "inventory_discrepancy" or ev.subtype != "write_off":
                still.append(ev)
            elif open_s[s] and not outage_s[s] and shelf[s] >= 4:
                # Goods booked out (damaged, shrink) without any reason code.
                n = int(rng.integers(3, max(3, shelf[s] // 2) + 1))
                shelf[s] -= n
                book[s] -= n
                ev.start = ev.end = d
                ev.delta = -n
                touched[s] = True
            else:
                still.append(ev)
        pending = still

        # Benign count corrections: both book and shelf, so book stays right.
        lucky = (
            open_s
            & ~outage_s
            & ~touched
            & ~phantom
            & (rng.random(n_series) < scenario.benign_prob_per_day)
        )
        idx = np.flatnonzero(lucky)
        if idx.size:
            if scenario.benign_law == "volume":
                # Corrections grow with the units on the shelf: 1 + Poisson(k sqrt(shelf)).
                size = 1 + rng.poisson(scenario.benign_volume_scale * np.sqrt(shelf[idx]))
                delta = np.where(rng.random(idx.size) < 0.5, -size, size)
            else:
                delta = rng.choice(
                    np.array(scenario.benign_deltas),
                    size=idx.size,
                    p=np.array(scenario.benign_delta_probs),
                )
            ok = shelf[idx] + delta >= 0
            shelf[idx[ok]] += delta[ok]
            book[idx[ok]] += delta[ok]

        remaining: list[Event] = []
        for ev in active:
            s = ev.series
            # Counts and gap scans happen on normal trading days only.
            counting = open_s[s] and not outage_s[s]
            if ev.kind == "ghost_stock" and counting and d >= ev.start + ev.length:
                book[s] = shelf[s]  # cycle count: the system learns the shelf is empty
                ghost_active[s] = False
                phantom[s] = False
                ev.end = d
            elif ev.kind == "inventory_discrepancy" and counting and d > ev.start and shelf[s] == 0:
                book[s] = shelf[s]  # gap scan finds the empty shelf and corrects the book
                phantom[s] = False
                ev.end = d
            elif ev.kind in ("demand_spike", "demand_drop", "price_anomaly"):
                if d == ev.start + ev.length - 1:
                    ev.end = d
                else:
                    remaining.append(ev)
            else:
                remaining.append(ev)
        active = remaining

        due = open_s & ~ghost_active & ((d + review_offset) % review == 0)
        position = book + pipeline
        need = np.flatnonzero(due & (position <= reorder_today))
        if need.size:
            target = np.ceil(order_up_to[need] * plan[d, need])
            qty = (np.ceil((target - position[need]) / pack[need]) * pack[need]).astype(np.int64)
            late = rng.random(need.size) < scenario.late_delivery_prob
            delay = lead[need] + late * rng.integers(1, scenario.max_late_days + 1, need.size)
            jitter_lo, jitter_hi = scenario.lead_jitter_days
            if (jitter_lo, jitter_hi) != (0, 0):
                # Lead-time jitter per order; a delivery never comes the day it is ordered.
                jitter = rng.integers(jitter_lo, jitter_hi + 1, need.size)
                delay = np.maximum(1, delay + jitter)
            arrivals[d + delay, need] += qty
            pipeline[need] += qty
        on_hand[d] = book

    for ev in active:  # still running at the horizon
        ev.end = n_days - 1
    return {
        "sales": sales_all,
        "on_hand": on_hand,
        "receipts": arrivals[:n_days],
        "price_override": price_override,
    }
