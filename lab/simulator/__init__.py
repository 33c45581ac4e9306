"""Seeded, realistic demo / benchmark bundle generator.

``generate_bundle`` simulates ``n_locations`` stores x ``n_skus`` products over ``n_days`` days
and writes a folder of CSVs in the import bundle format, plus ``truth.csv`` listing every
injected anomaly (never imported; used to score the detectors).

Model, per series (one SKU at one location; series index ``s = location * n_skus + sku``):

* demand is negative binomial (gamma-Poisson) around ``μ = base x weekday x season x calendar
  x promotion x post-promotion dip`` (0 on closed days);
* the store holds *physical* shelf stock and a separate *book* stock; sales are
  ``min(demand, shelf)`` and reduce both; replenishment is a periodic review (s, S) policy on
  **book** stock with a 2-5 day lead time, occasional late deliveries and a raised order-up-to
  level ahead of promotions, so genuine stockouts (book = shelf = 0) happen now and then;
* confounders that are not anomalies (absent from the truth): promotions, post-promotion dips,
  busy days and closures from the calendar, long natural zero runs of slow movers, genuine
  stockouts and small benign count adjustments (classic: ±1-2 units applied to book *and*
  shelf; the ``Scenario`` may scale them with volume);
* injected events (listed in the truth, all in the last ``EVENT_WINDOW_FRACTION`` of the
  horizon): ghost stock, demand spikes and drops, mis-keyed prices, unexplained book-stock
  changes and store-wide POS outages.

Book-stock identity: for every series and day ``d > 0``
``on_hand[d] - on_hand[d-1] - receipts[d] + units[d]`` is 0, except
(a) the delta of benign count adjustment days (written nowhere),
(b) the start day of an ``inventory_discrepancy`` (±delta) and, for a duplicate receipt posting,
its end day (the gap scan that finds the empty shelf resets book to shelf: -delta),
(c) the end day of a ``ghost_stock`` event ended by a cycle count (book reset to shelf: -book),
(d) every series of a location on its ``pos_outage`` day (physical sales reduce book, but no
sales rows were recorded).
Cycle counts and gap scans happen only on trading days without a POS outage, and nothing
changes on closed days (no sales, deliveries held to the next open day).

No Django import: this package is pure numpy/pandas and is driven by the
``generate_demo_bundle`` management command. Modules: ``catalogue`` (products, stores),
``calendar`` (trading calendar, promotions), ``events`` (injected anomalies), ``stock`` (the
day-by-day simulation), ``output`` (truth and fact frames).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from .calendar import WEEKDAY_FACTOR, make_calendar, make_promotions
from .catalogue import (
    CATEGORIES,
    MAX_MEAN_UNITS_PER_DAY,
    MOVER_MEAN_RANGES,
    make_locations,
    make_products,
)
from .events import EVENT_WINDOW_FRACTION, schedule_events, schedule_outages
from .output import oracle_write, series_frame, truth_frame
from .scenario import CLASSIC, Scenario
from .stock import Progress, simulate_stock

__all__ = [
    "ANOMALY_TYPES",
    "DEFAULT_END_DATE",
    "EVENT_WINDOW_FRACTION",
    "MIN_DAYS",
    "MIN_SKUS",
    "ORACLE_FILE",
    "BundleSummary",
    "Progress",
    "Scenario",
    "generate_bundle",
]

DEFAULT_END_DATE = date(2026, 10, 31)
MIN_DAYS = 60
MIN_SKUS = 10
# The oracle's ground-truth parameters (``lab.oracle``); never imported by the product.
ORACLE_FILE = "oracle.npz"


ANOMALY_TYPES = (
    "ghost_stock",
    "demand_spike",
    "demand_drop",
    "price_anomaly",
    "inventory_discrepancy",
    "pos_outage",
)


@dataclass(frozen=True)
class BundleSummary:
    """What ``generate_bundle`` wrote.

    ``rows`` maps file name → data rows (header excluded); ``events`` maps anomaly type → rows in
    ``truth.csv``; ``seconds`` is wall-clock generation time.
    """

    out_dir: Path
    seed: int
    scenario: str
    n_locations: int
    n_skus: int
    n_days: int
    start_date: date
    end_date: date
    rows: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def generate_bundle(
    *,
    out_dir: Path,
    seed: int = 7,
    n_locations: int = 5,
    n_skus: int = 80,
    n_days: int = 180,
    end_date: date | None = None,
    progress: Progress | None = None,
    scenario: Scenario = CLASSIC,
) -> BundleSummary:
    """Simulate a retail estate and write the bundle CSVs (and ``truth.csv``) to ``out_dir``.

    ``scenario`` sets the world's free parameters (``lab.scenarios`` declares the family; the
    default ``classic`` reproduces the historical bundles byte for byte). Besides the CSVs,
    ``oracle.npz`` receives the true parameters an oracle needs (``output.oracle_write``).
    Deterministic for a given ``seed``, scenario and arguments. ``end_date`` is the last
    simulated day (default ``DEFAULT_END_DATE``, fixed so that output does not depend on
    today's date).
    ``progress`` receives short human-readable stage messages. Raises ``ValueError`` on sizes
    too small to hold history plus events.
    """
    if n_locations < 1:
        raise ValueError("n_locations must be at least 1.")
    if n_skus < MIN_SKUS:
        raise ValueError(f"n_skus must be at least {MIN_SKUS}.")
    if n_days < MIN_DAYS:
        raise ValueError(f"n_days must be at least {MIN_DAYS}.")
    started = time.perf_counter()
    report = progress or (lambda _message: None)
    end = end_date or DEFAULT_END_DATE
    start = end - timedelta(days=n_days - 1)
    rng = np.random.default_rng(seed)
    n_series = n_locations * n_skus
    loc_of = np.repeat(np.arange(n_locations), n_skus)  # (n_series,)
    sku_of = np.tile(np.arange(n_skus), n_locations)  # (n_series,)

    report("Master data, calendar and promotions")
    products = make_products(rng, n_skus)
    locations = make_locations(n_locations)
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)  # (n_days,)
    calendar = make_calendar(rng, start, n_days, n_locations)
    promos = make_promotions(rng, n_days, n_skus, n_locations, scenario.promo_overlap_prob)

    report("Demand")
    cat_of = products["category_idx"].to_numpy()[sku_of]
    mover_sku = products["mover_class"].to_numpy()
    mover = mover_sku[sku_of]
    store_factor = np.clip(rng.lognormal(0.0, 0.3, n_locations), 0.6, 1.6)
    lo = np.array([r[0] for r in MOVER_MEAN_RANGES])[mover_sku]
    hi = np.array([r[1] for r in MOVER_MEAN_RANGES])[mover_sku]
    sku_base = np.exp(rng.uniform(np.log(lo), np.log(hi)))  # (n_skus,) units/day
    base = sku_base[sku_of] * store_factor[loc_of] * rng.lognormal(0.0, 0.25, n_series)
    base = np.clip(base, 0.03, MAX_MEAN_UNITS_PER_DAY)  # (n_series,) units/day
    dlo = np.array([r[0] for r in scenario.dispersion_ranges])[mover]
    dhi = np.array([r[1] for r in scenario.dispersion_ranges])[mover]
    dispersion = rng.uniform(dlo, dhi)  # (n_series,) NB size parameter r

    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    doy = np.array([(start + timedelta(days=i)).timetuple().tm_yday for i in range(n_days)])
    amp = np.array([c.season_amplitude for c in CATEGORIES])
    peak = np.array([c.season_peak_doy for c in CATEGORIES])
    season = 1.0 + amp[None, :] * np.cos(2 * np.pi * (doy[:, None] - peak[None, :]) / 365.25)
    day_factor = (WEEKDAY_FACTOR / WEEKDAY_FACTOR.mean())[weekday]  # (n_days,)
    mu = (
        base[None, :]
        * day_factor[:, None]
        * season[:, cat_of]
        * (calendar.uplift * calendar.open_)[:, loc_of]
        * promos.uplift
    )  # (n_days, n_series) expected units/day
    demand = rng.poisson(rng.gamma(dispersion[None, :], mu / dispersion[None, :]))

    report("Injected events")
    window_start = n_days - round(EVENT_WINDOW_FRACTION * n_days)
    outage = schedule_outages(rng, calendar, window_start, n_days)  # (n_days, n_locations)
    events = schedule_events(
        rng,
        base=base,
        loc_of=loc_of,
        n_skus=n_skus,
        n_locations=n_locations,
        n_days=n_days,
        window_start=window_start,
        blocked=promos.affected | outage[:, loc_of] | ~calendar.open_[:, loc_of],
        scenario=scenario,
    )

    sim = simulate_stock(
        rng,
        demand=demand,
        mu=mu,
        base=base,
        dispersion=dispersion,
        mover=mover,
        loc_of=loc_of,
        open_series=calendar.open_[:, loc_of],
        outage_series=outage[:, loc_of],
        promo_uplift=promos.uplift,
        events=events,
        price=products["unit_price"].to_numpy()[sku_of],
        report=report,
        scenario=scenario,
    )

    report("Writing CSVs")
    sales_units = sim["sales"].copy()
    sales_units[outage[:, loc_of]] = 0
    reg_price = products["unit_price"].to_numpy()[sku_of]
    tiers = draw_tiers(rng, scenario, n_skus)
    level = reg_price[None, :] * (1.0 - promos.discount)  # (n_days, n_series) currency
    if tiers["has_tier"].any():
        # Tier days (not on promotion): a share of the day's units sells at the tier price,
        # so the daily average lies between tier and list.
        on = (
            (rng.random((n_days, n_series)) < tiers["day_share"][sku_of][None, :])
            & tiers["has_tier"][sku_of][None, :]
            & (promos.discount == 0)
        )
        lo, hi = scenario.tier_unit_share_range
        share = rng.uniform(lo, hi, (n_days, n_series))
        level = np.where(on, level * (1.0 - share * tiers["discount"][sku_of][None, :]), level)
    if scenario.price_noise_sd > 0:
        level = level * (1.0 + scenario.price_noise_sd * rng.standard_normal(level.shape))
    realized = np.round(level, 2)
    override = ~np.isnan(sim["price_override"])
    realized[override] = sim["price_override"][override]
    truth = truth_frame(
        events,
        sim=sim,
        mu=mu,
        realized=realized,
        reg_price=reg_price,
        outage=outage,
        loc_of=loc_of,
        n_days=n_days,
    )

    date_str = np.datetime_as_string(days, unit="D").astype(object)
    sku_codes = products["sku"].to_numpy(dtype=object)
    loc_codes = locations["code"].to_numpy(dtype=object)
    frames: dict[str, pd.DataFrame] = {
        "products.csv": products[["sku", "name", "category", "unit_price", "unit_cost"]],
        "locations.csv": locations,
        "sales.csv": series_frame(
            sales_units, "units", date_str, sku_codes, loc_codes, sku_of, loc_of, realized
        ),
        "inventory.csv": series_frame(
            sim["on_hand"], "on_hand", date_str, sku_codes, loc_codes, sku_of, loc_of, None, True
        ),
        "receipts.csv": series_frame(
            sim["receipts"], "units", date_str, sku_codes, loc_codes, sku_of, loc_of
        ),
        "calendar.csv": pd.DataFrame(
            {
                "date": [date_str[d] for d, _, _ in calendar.rows],
                "event": [name for _, name, _ in calendar.rows],
                "location": [loc_codes[loc] if loc >= 0 else "" for _, _, loc in calendar.rows],
            }
        ),
        "promotions.csv": pd.DataFrame(
            {
                "start_date": [date_str[r[0]] for r in promos.rows],
                "end_date": [date_str[r[1]] for r in promos.rows],
                "sku": [sku_codes[r[2]] for r in promos.rows],
                "location": [loc_codes[r[3]] if r[3] >= 0 else "" for r in promos.rows],
                "discount_pct": [r[4] for r in promos.rows],
            }
        ),
        "truth.csv": pd.DataFrame(
            {
                "anomaly_type": truth["anomaly_type"],
                "sku": [sku_codes[i] if i >= 0 else "" for i in truth["sku"]],
                "location": loc_codes[truth["location"].to_numpy()],
                "start_date": date_str[truth["start"].to_numpy()],
                "end_date": date_str[truth["end"].to_numpy()],
                "value_at_risk": truth["value_at_risk"],
            }
        ),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, frame in frames.items():
        report(f"Writing {name} ({len(frame):,} rows)")
        frame.to_csv(out_dir / name, index=False, float_format="%.2f", lineterminator="\n")
        rows[name] = len(frame)
    oracle_write(
        out_dir / ORACLE_FILE,
        scenario=scenario,
        seed=seed,
        mu=mu,
        dispersion=dispersion,
        base=base,
        mover=mover,
        reg_price=reg_price,
        promo_discount=promos.discount,
        tiers=tiers,
        sku_codes=sku_codes,
        loc_codes=loc_codes,
        sku_of=sku_of,
        loc_of=loc_of,
        date_str=date_str,
        events=events,
    )
    counts = truth["anomaly_type"].value_counts()
    return BundleSummary(
        out_dir=out_dir,
        seed=seed,
        scenario=scenario.name,
        n_locations=n_locations,
        n_skus=n_skus,
        n_days=n_days,
        start_date=start,
        end_date=end,
        rows=rows,
        events={kind: int(counts.get(kind, 0)) for kind in ANOMALY_TYPES},
        seconds=time.perf_counter() - started,
    )


def draw_tiers(rng: np.random.Generator, scenario: Scenario, n_skus: int) -> dict[str, np.ndarray]:
    """Per-SKU price tiers: ``has_tier`` (bool), ``discount`` (fraction below list, 0 where
    none) and ``day_share`` (share of days the tier is used), each (n_skus,). Draws nothing
    when the scenario has no tiers."""
    has_tier = np.zeros(n_skus, dtype=bool)
    discount = np.zeros(n_skus)
    day_share = np.zeros(n_skus)
    if scenario.tier_sku_share > 0:
        has_tier = rng.random(n_skus) < scenario.tier_sku_share
        discount = np.where(has_tier, rng.uniform(*scenario.tier_discount_range, n_skus), 0.0)
        day_share = np.where(has_tier, rng.uniform(*scenario.tier_day_share_range, n_skus), 0.0)
    return {"has_tier": has_tier, "discount": discount, "day_share": day_share}
