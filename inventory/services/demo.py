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
  stockouts and small benign count adjustments (±1-2 units applied to book *and* shelf);
* injected events (listed in the truth, all in the last ``EVENT_WINDOW_FRACTION`` of the
  horizon): ghost stock, demand spikes and drops, mis-keyed prices, unexplained book-stock
  changes and store-wide POS outages.

Book-stock identity: for every series and day ``d > 0``
``on_hand[d] - on_hand[d-1] - receipts[d] + units[d]`` is 0, except
(a) ±1-2 on benign count adjustment days (written nowhere),
(b) the start day of an ``inventory_discrepancy`` (±delta) and, for a duplicate receipt posting,
its end day (the gap scan that finds the empty shelf resets book to shelf: -delta),
(c) the end day of a ``ghost_stock`` event ended by a cycle count (book reset to shelf: -book),
(d) every series of a location on its ``pos_outage`` day (physical sales reduce book, but no
sales rows were recorded).
Cycle counts and gap scans happen only on trading days without a POS outage, and nothing
changes on closed days (no sales, deliveries held to the next open day).

No Django import: this module is pure numpy/pandas and is driven by the
``generate_demo_bundle`` management command.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_END_DATE = date(2026, 10, 31)
MIN_DAYS = 60
MIN_SKUS = 10

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

LATE_DELIVERY_PROB = 0.05
MAX_LATE_DAYS = 4
MIN_LEAD_DAYS, MAX_LEAD_DAYS = 2, 5
# Promotions are anticipated this many days ahead by the order-up-to level.
PROMO_PLANNING_DAYS = 7
BENIGN_ADJUSTMENT_PROB = 0.002
BENIGN_DELTAS = np.array([-2, -1, 1, 2])
BENIGN_DELTA_PROBS = np.array([0.3, 0.4, 0.2, 0.1])
POST_PROMO_DIP = 0.7
# A demand spike adds (factor - 1) x normal demand, and at least SPIKE_MIN_EXTRA_UNITS: a bulk
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
# Weekday multipliers, Monday first (Saturday busiest; Sunday has short trading hours).
WEEKDAY_FACTOR = np.array([0.86, 0.84, 0.92, 0.98, 1.12, 1.34, 0.94])

LOCATION_NAMES = [
    "Leeds Headingley",
    "York Monks Cross",
    "Manchester Didsbury",
    "Sheffield Ecclesall Road",
    "Bristol Clifton",
    "Nottingham West Bridgford",
    "Harrogate Station Parade",
    "Liverpool Allerton",
    "Newcastle Jesmond",
    "Hull Princes Avenue",
    "Durham Market Place",
    "Bradford Forster Square",
]


@dataclass(frozen=True)
class _Category:
    name: str
    price_range: tuple[float, float]  # regular price range, currency units
    mover_probs: tuple[float, float, float]  # P(slow), P(medium), P(fast)
    season_amplitude: float  # relative yearly swing
    season_peak_doy: int  # day of year of the seasonal peak
    brands: tuple[str, ...]
    items: tuple[tuple[str, tuple[str, ...]], ...]  # (item, sizes)


CATEGORIES = (
    _Category(
        "Grocery",
        (0.5, 6.0),
        (0.15, 0.55, 0.30),
        0.08,
        350,
        ("Harvest Table", "Golden Acre", "Pantry Co", "Millbrook", "Simply Good"),
        (
            ("Basmati rice", ("500g", "1kg", "2kg")),
            ("Penne pasta", ("500g", "1kg")),
            ("Chopped tomatoes", ("400g", "4 x 400g")),
            ("Baked beans", ("415g", "4 x 415g")),
            ("Plain flour", ("1.5kg",)),
            ("Porridge oats", ("500g", "1kg")),
            ("Cornflakes", ("500g", "720g")),
            ("Olive oil", ("500ml", "1L")),
            ("Tomato ketchup", ("460g", "910g")),
            ("Peanut butter", ("340g",)),
            ("Strawberry jam", ("340g",)),
            ("Tinned tuna", ("145g", "4 x 145g")),
            ("Red lentils", ("500g",)),
            ("Coconut milk", ("400ml",)),
        ),
    ),
    _Category(
        "Dairy",
        (0.6, 5.0),
        (0.10, 0.50, 0.40),
        0.05,
        200,
        ("Meadowfield", "Valley Farm", "Hillcrest", "Dale Dairy"),
        (
            ("Semi-skimmed milk", ("1 pint", "2 pints", "4 pints")),
            ("Whole milk", ("2 pints", "4 pints")),
            ("Greek yoghurt", ("500g", "1kg")),
            ("Mature cheddar", ("350g", "550g")),
            ("Salted butter", ("250g",)),
            ("Double cream", ("300ml", "600ml")),
            ("Free-range eggs", ("6 pack", "12 pack")),
            ("Mozzarella", ("125g",)),
            ("Natural yoghurt", ("500g",)),
        ),
    ),
    _Category(
        "Bakery",
        (0.5, 4.0),
        (0.10, 0.50, 0.40),
        0.05,
        355,
        ("Oven Fresh", "Baker's Mark", "Stonemill"),
        (
            ("White sliced loaf", ("800g",)),
            ("Wholemeal loaf", ("800g",)),
            ("Sourdough", ("400g",)),
            ("Croissants", ("4 pack", "8 pack")),
            ("Crumpets", ("6 pack",)),
            ("Bagels", ("5 pack",)),
            ("Hot cross buns", ("4 pack",)),
            ("Pitta breads", ("6 pack",)),
        ),
    ),
    _Category(
        "Household",
        (1.0, 15.0),
        (0.40, 0.50, 0.10),
        0.05,
        90,
        ("BrightHome", "CleanLine", "Everyday"),
        (
            ("Washing-up liquid", ("450ml", "900ml")),
            ("Laundry capsules", ("20 pack", "40 pack")),
            ("Toilet roll", ("9 roll", "16 roll")),
            ("Kitchen roll", ("2 roll", "4 roll")),
            ("Bin bags", ("20 pack",)),
            ("Multi-surface spray", ("750ml",)),
            ("Dishwasher tablets", ("30 pack", "60 pack")),
            ("Bleach", ("750ml",)),
        ),
    ),
    _Category(
        "Personal care",
        (1.0, 12.0),
        (0.40, 0.50, 0.10),
        0.05,
        180,
        ("Pure Bloom", "Dermacare", "Fresh Start"),
        (
            ("Shampoo", ("250ml", "400ml")),
            ("Conditioner", ("250ml", "400ml")),
            ("Shower gel", ("250ml", "500ml")),
            ("Toothpaste", ("75ml", "100ml")),
            ("Deodorant", ("150ml", "250ml")),
            ("Hand soap", ("250ml",)),
            ("Sun cream SPF30", ("200ml",)),
            ("Razor blades", ("4 pack", "8 pack")),
        ),
    ),
    _Category(
        "Beverages",
        (0.5, 12.0),
        (0.15, 0.50, 0.35),
        0.20,
        200,
        ("Clearspring", "Brewhouse", "Sunburst", "Highland"),
        (
            ("Sparkling water", ("500ml", "1.5L", "6 x 500ml")),
            ("Orange juice", ("1L", "1.75L")),
            ("Cola", ("330ml", "2L", "8 x 330ml")),
            ("Ground coffee", ("227g",)),
            ("Tea bags", ("80 pack", "160 pack")),
            ("Lemonade", ("2L",)),
            ("Energy drink", ("250ml", "4 x 250ml")),
            ("Apple juice", ("1L",)),
        ),
    ),
    _Category(
        "Snacks",
        (0.5, 5.0),
        (0.15, 0.55, 0.30),
        0.10,
        355,
        ("Crunchworks", "Nibble & Co", "Hearty Bites"),
        (
            ("Salted crisps", ("6 pack", "150g")),
            ("Milk chocolate bar", ("45g", "100g", "200g")),
            ("Salted peanuts", ("200g",)),
            ("Digestive biscuits", ("400g",)),
            ("Popcorn", ("100g",)),
            ("Cereal bars", ("6 pack",)),
            ("Tortilla chips", ("200g",)),
            ("Shortbread", ("300g",)),
        ),
    ),
    _Category(
        "Electronics accessories",
        (4.0, 60.0),
        (0.60, 0.35, 0.05),
        0.15,
        350,
        ("Voltix", "Linkpoint", "Ampere"),
        (
            ("USB-C cable", ("1m", "2m")),
            ("Phone charger", ("20W", "30W")),
            ("AA batteries", ("4 pack", "12 pack")),
            ("AAA batteries", ("4 pack",)),
            ("Wireless earbuds", ("",)),
            ("Power bank", ("10000mAh", "20000mAh")),
            ("HDMI cable", ("1.5m",)),
            ("Screen protector", ("",)),
        ),
    ),
)
# How often each category is drawn for a SKU.
CATEGORY_WEIGHTS = np.array([0.22, 0.12, 0.08, 0.12, 0.12, 0.13, 0.13, 0.08])

# (mean units/day range) for slow, medium and fast movers; NB dispersion range per class.
MOVER_MEAN_RANGES = ((0.05, 0.5), (1.0, 8.0), (8.0, 40.0))
MOVER_DISPERSION_RANGES = ((0.5, 1.5), (2.0, 6.0), (4.0, 15.0))
MAX_MEAN_UNITS_PER_DAY = 50.0

ANOMALY_TYPES = (
    "ghost_stock",
    "demand_spike",
    "demand_drop",
    "price_anomaly",
    "inventory_discrepancy",
    "pos_outage",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BundleSummary:
    """What ``generate_bundle`` wrote.

    ``rows`` maps file name → data rows (header excluded); ``events`` maps anomaly type → rows in
    ``truth.csv``; ``seconds`` is wall-clock generation time.
    """

    out_dir: Path
    seed: int
    n_locations: int
    n_skus: int
    n_days: int
    start_date: date
    end_date: date
    rows: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Event:
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


@dataclass
class _Calendar:
    rows: list[tuple[int, str, int]]  # (day index, event name, location index or -1 = all)
    open_: np.ndarray  # (n_days, n_locations) bool
    uplift: np.ndarray  # (n_days, n_locations) float demand multiplier


@dataclass
class _Promotions:
    rows: list[tuple[int, int, int, int, int]]  # (start, end, sku, location or -1, discount %)
    uplift: np.ndarray  # (n_days, n_series) demand multiplier incl. post-promotion dips
    discount: np.ndarray  # (n_days, n_series) float32 price discount fraction
    affected: np.ndarray  # (n_days, n_series) bool: promotion or dip day


def generate_bundle(
    *,
    out_dir: Path,
    seed: int = 7,
    n_locations: int = 5,
    n_skus: int = 80,
    n_days: int = 180,
    end_date: date | None = None,
    progress: Progress | None = None,
) -> BundleSummary:
    """Simulate a retail estate and write the bundle CSVs (and ``truth.csv``) to ``out_dir``.

    Deterministic for a given ``seed`` and arguments. ``end_date`` is the last simulated day
    (default ``DEFAULT_END_DATE``, fixed so that output does not depend on today's date).
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
    products = _make_products(rng, n_skus)
    locations = _make_locations(n_locations)
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)  # (n_days,)
    calendar = _make_calendar(rng, start, n_days, n_locations)
    promos = _make_promotions(rng, n_days, n_skus, n_locations)

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
    dlo = np.array([r[0] for r in MOVER_DISPERSION_RANGES])[mover]
    dhi = np.array([r[1] for r in MOVER_DISPERSION_RANGES])[mover]
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
    outage = _schedule_outages(rng, calendar, window_start, n_days)  # (n_days, n_locations)
    events = _schedule_events(
        rng,
        base=base,
        loc_of=loc_of,
        n_skus=n_skus,
        n_locations=n_locations,
        n_days=n_days,
        window_start=window_start,
        blocked=promos.affected | outage[:, loc_of] | ~calendar.open_[:, loc_of],
    )

    sim = _simulate(
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
    )

    report("Writing CSVs")
    sales_units = sim["sales"].copy()
    sales_units[outage[:, loc_of]] = 0
    reg_price = products["unit_price"].to_numpy()[sku_of]
    realized = np.round(reg_price[None, :] * (1.0 - promos.discount), 2)
    override = ~np.isnan(sim["price_override"])
    realized[override] = sim["price_override"][override]
    truth = _truth_frame(
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
        "sales.csv": _series_frame(
            sales_units, "units", date_str, sku_codes, loc_codes, sku_of, loc_of, realized
        ),
        "inventory.csv": _series_frame(
            sim["on_hand"], "on_hand", date_str, sku_codes, loc_codes, sku_of, loc_of, None, True
        ),
        "receipts.csv": _series_frame(
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
    counts = truth["anomaly_type"].value_counts()
    return BundleSummary(
        out_dir=out_dir,
        seed=seed,
        n_locations=n_locations,
        n_skus=n_skus,
        n_days=n_days,
        start_date=start,
        end_date=end,
        rows=rows,
        events={kind: int(counts.get(kind, 0)) for kind in ANOMALY_TYPES},
        seconds=time.perf_counter() - started,
    )


def _make_products(rng: np.random.Generator, n_skus: int) -> pd.DataFrame:
    """One row per SKU: sku, name, category, unit_price, unit_cost, category_idx, mover_class
    (0 slow, 1 medium, 2 fast)."""
    cat_idx = rng.choice(len(CATEGORIES), size=n_skus, p=CATEGORY_WEIGHTS / CATEGORY_WEIGHTS.sum())
    names: list[str] = []
    seen: set[str] = set()
    movers = np.empty(n_skus, dtype=np.int64)
    prices = np.empty(n_skus)
    for i, c in enumerate(cat_idx):
        cat = CATEGORIES[c]
        for attempt in range(50):
            item, sizes = cat.items[rng.integers(len(cat.items))]
            brand = cat.brands[rng.integers(len(cat.brands))]
            size = sizes[rng.integers(len(sizes))]
            name = f"{brand} {item} {size}".strip()
            if attempt == 49:  # catalogue exhausted: a numbered variant keeps names unique
                name = f"{name} (variant {i + 1})"
            if name not in seen:
                break
        seen.add(name)
        names.append(name)
        movers[i] = rng.choice(3, p=cat.mover_probs)
        lo, hi = cat.price_range
        raw = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        # Shelf prices end in 9: 0.59, 2.49, 12.99.
        prices[i] = math.floor(raw * 10) / 10 + 0.09 if raw < 10 else math.floor(raw) + 0.99
    prices = np.clip(np.round(prices, 2), 0.5, 60.0)
    cost = np.round(prices * rng.uniform(0.55, 0.75, n_skus), 2)
    return pd.DataFrame(
        {
            "sku": [f"SKU{i + 1:05d}" for i in range(n_skus)],
            "name": names,
            "category": [CATEGORIES[c].name for c in cat_idx],
            "unit_price": prices,
            "unit_cost": cost,
            "category_idx": cat_idx,
            "mover_class": movers,
        }
    )


def _make_locations(n_locations: int) -> pd.DataFrame:
    """``code,name`` rows: S001 "Leeds Headingley", ... (names repeat with a number suffix)."""
    names = []
    for i in range(n_locations):
        name = LOCATION_NAMES[i % len(LOCATION_NAMES)]
        names.append(name if i < len(LOCATION_NAMES) else f"{name} {i // len(LOCATION_NAMES) + 1}")
    return pd.DataFrame({"code": [f"S{i + 1:03d}" for i in range(n_locations)], "name": names})


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) given weekday (Monday = 0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _national_events(year: int) -> list[tuple[date, str, float]]:
    """UK-style national calendar: (date, name, demand uplift); uplift 0 means closed."""
    easter = _easter(year)
    return [
        (date(year, 1, 1), "New Year's Day (bank holiday)", 1.1),
        (easter - timedelta(days=2), "Good Friday (bank holiday)", 1.25),
        (easter, "Easter Sunday (closed)", 0.0),
        (easter + timedelta(days=1), "Easter Monday (bank holiday)", 1.2),
        (_nth_weekday(year, 5, 0, 1), "Early May bank holiday", 1.2),
        (_nth_weekday(year, 5, 0, -1), "Spring bank holiday", 1.2),
        (_nth_weekday(year, 8, 0, -1), "Summer bank holiday", 1.25),
        (_nth_weekday(year, 11, 4, 4), "Black Friday", 1.3),
        (date(year, 12, 24), "Christmas Eve", 1.8),
        (date(year, 12, 25), "Christmas Day (closed)", 0.0),
        (date(year, 12, 26), "Boxing Day (bank holiday)", 1.4),
    ]


def _make_calendar(
    rng: np.random.Generator, start: date, n_days: int, n_locations: int
) -> _Calendar:
    """National holidays plus, per store, local festivals (busy) and one refurbishment closure."""
    open_ = np.ones((n_days, n_locations), dtype=bool)
    uplift = np.ones((n_days, n_locations))
    rows: list[tuple[int, str, int]] = []
    end = start + timedelta(days=n_days - 1)
    for year in range(start.year, end.year + 1):
        for day, name, factor in _national_events(year):
            d = (day - start).days
            if 0 <= d < n_days:
                rows.append((d, name, -1))
                if factor == 0.0:
                    open_[d, :] = False
                else:
                    uplift[d, :] *= factor
    national_days = {d for d, _, _ in rows}
    for loc in range(n_locations):
        taken = set(national_days)
        for _ in range(rng.poisson(n_days / 120)):
            length = int(rng.integers(1, 4))
            d0 = int(rng.integers(0, n_days - length))
            span = set(range(d0, d0 + length))
            if span & taken:
                continue
            factor = rng.uniform(1.3, 1.7)
            for d in sorted(span):
                rows.append((d, "Local festival", loc))
                uplift[d, loc] *= factor
            taken |= span
        # One refurbishment closure per store, on a day without other events.
        for _ in range(20):
            d = int(rng.integers(1, n_days - 1))
            if d not in taken:
                rows.append((d, "Refurbishment - closed", loc))
                open_[d, loc] = False
                break
    rows.sort(key=lambda r: (r[0], r[2], r[1]))
    return _Calendar(rows=rows, open_=open_, uplift=uplift)


def _make_promotions(
    rng: np.random.Generator, n_days: int, n_skus: int, n_locations: int
) -> _Promotions:
    """Promotions for ~30% of SKUs: 3-14 days, 10-40% off, 1.5-3x uplift, then a 0.7x dip
    for 3-5 days (pantry loading); either at all stores (blank location) or at one."""
    n_series = n_skus * n_locations
    uplift = np.ones((n_days, n_series))
    discount = np.zeros((n_days, n_series), dtype=np.float32)
    affected = np.zeros((n_days, n_series), dtype=bool)
    rows: list[tuple[int, int, int, int, int]] = []
    promo_skus = rng.choice(n_skus, size=max(1, round(0.3 * n_skus)), replace=False)
    for sku in np.sort(promo_skus):
        free_from = int(rng.integers(0, 30))
        for _ in range(1 + rng.poisson(n_days / 120)):
            length = int(rng.integers(3, 15))
            d0 = free_from + int(rng.integers(0, 45))
            d1 = d0 + length - 1
            dip = int(rng.integers(3, 6))
            if d1 + dip >= n_days:
                break
            pct = int(rng.choice([10, 15, 20, 25, 30, 35, 40]))
            lift = float(np.clip(1.0 + pct / 100 * rng.uniform(3.0, 6.0), 1.5, 3.0))
            loc = -1 if rng.random() < 0.6 else int(rng.integers(n_locations))
            cols = sku + n_skus * (np.arange(n_locations) if loc < 0 else np.array([loc]))
            uplift[d0 : d1 + 1, cols] = lift
            uplift[d1 + 1 : d1 + 1 + dip, cols] = POST_PROMO_DIP
            discount[d0 : d1 + 1, cols] = pct / 100
            affected[d0 : d1 + 1 + dip, cols] = True
            rows.append((d0, d1, int(sku), loc, pct))
            free_from = d1 + dip + 14
    rows.sort()
    return _Promotions(rows=rows, uplift=uplift, discount=discount, affected=affected)


def _schedule_outages(
    rng: np.random.Generator, calendar: _Calendar, window_start: int, n_days: int
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


def _schedule_events(
    rng: np.random.Generator,
    *,
    base: np.ndarray,
    loc_of: np.ndarray,
    n_skus: int,
    n_locations: int,
    n_days: int,
    window_start: int,
    blocked: np.ndarray,
) -> list[_Event]:
    """Pick series and tentative start days for the SKU-level events.

    ``base`` is mean demand per series (units/day); ``blocked`` (n_days, n_series) marks
    promotion/dip, outage and closed days, which the short demand/price events must avoid so
    that they are not confounded. Events on one series never overlap (with a separation gap).
    """
    window = n_days - window_start
    reserved = np.zeros((n_days, base.size), dtype=bool)
    events: list[_Event] = []
    for loc in range(n_locations):
        series = np.flatnonzero(loc_of == loc)
        for kind, rate in EVENT_RATE_PER_SKU_DAY.items():
            count = max(1, int(rng.poisson(rate * n_skus * window)))
            for _ in range(count):
                event = _draw_event(rng, kind, series, base, n_days, window_start)
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


def _draw_event(
    rng: np.random.Generator,
    kind: str,
    series: np.ndarray,
    base: np.ndarray,
    n_days: int,
    window_start: int,
) -> _Event | None:
    """A tentative event of ``kind`` on one of ``series`` (or None when none is eligible)."""
    mean = base[series]
    if kind == "ghost_stock":
        # Mostly items with meaningful demand; a few slow movers (hard on purpose).
        eligible = series[mean >= 0.5] if rng.random() < 0.85 else series[mean >= 0.1]
        last_start, length, delay = n_days - 8, int(rng.integers(7, 46)), 14
    elif kind == "inventory_discrepancy":
        eligible, last_start, length, delay = series[mean >= 0.3], n_days - 2, 1, 14
    elif kind == "demand_spike":
        eligible, length, delay = series[mean >= SPIKE_MIN_MEAN], int(rng.integers(1, 3)), 5
        last_start = n_days - length - delay
    elif kind == "demand_drop":
        eligible, length, delay = series[mean >= DROP_MIN_MEAN], int(rng.integers(3, 11)), 5
        last_start = n_days - length - delay
    else:  # price_anomaly
        eligible, length, delay = series[mean >= 0.5], int(rng.integers(1, 4)), 5
        last_start = n_days - length - delay
    if eligible.size == 0 or last_start <= window_start:
        return None
    event = _Event(
        kind=kind,
        series=int(rng.choice(eligible)),
        scheduled=int(rng.integers(window_start, last_start)),
        max_delay=delay,
        length=length,
    )
    if kind == "demand_spike":
        event.factor = float(rng.uniform(*SPIKE_FACTOR_RANGE))
    elif kind == "demand_drop":
        event.factor = float(rng.uniform(*DROP_FACTOR_RANGE))
    elif kind == "price_anomaly":
        roll = rng.random()
        event.factor = 10.0 if roll < 0.3 else 0.1 if roll < 0.6 else 1 - rng.uniform(0.5, 0.7)
    elif kind == "inventory_discrepancy":
        event.subtype = "duplicate_receipt" if rng.random() < 0.5 else "write_off"
    return event


def _simulate(
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
    events: list[_Event],
    price: np.ndarray,
    report: Progress,
) -> dict[str, np.ndarray]:
    """Day-by-day stock simulation, vectorised over series.

    Inputs are (n_days, n_series) matrices (``demand`` in units, ``mu`` expected units) and
    (n_series,) vectors. Returns (n_days, n_series) matrices ``sales`` (physical units sold,
    outage days included), ``on_hand`` (book stock, end of day), ``receipts`` (units received)
    and ``price_override`` (mis-keyed price, NaN elsewhere). Mutates ``events`` (start, end,
    delta).
    """
    n_days, n_series = demand.shape
    # Periodic review (s, S) on book stock: fast movers reviewed daily, slow ones weekly.
    review = np.where(
        mover == 2,
        1,
        np.where(mover == 1, rng.choice([1, 2, 3], n_series), rng.choice([3, 7], n_series)),
    )
    review_offset = rng.integers(0, 7, n_series) % review
    lead = rng.integers(MIN_LEAD_DAYS, MAX_LEAD_DAYS + 1, n_series)
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
    arrivals = np.zeros((n_days + MAX_LEAD_DAYS + MAX_LATE_DAYS + 2, n_series), dtype=np.int64)
    sales_all = np.zeros((n_days, n_series), dtype=np.int64)
    on_hand = np.zeros((n_days, n_series), dtype=np.int64)
    price_override = np.full((n_days, n_series), np.nan)
    ghost_active = np.zeros(n_series, dtype=bool)
    # Series whose book and shelf disagree (ghost stock, duplicate receipt): no benign counts,
    # so that the correction at the event's end is exactly the injected delta.
    phantom = np.zeros(n_series, dtype=bool)

    waiting = sorted(events, key=lambda e: (e.scheduled, e.series))
    next_waiting = 0
    pending: list[_Event] = []
    active: list[_Event] = []
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

        still: list[_Event] = []
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
                or not _can_start(ev, d, shelf, book, pipeline, arrived, reorder_today, mu, base)
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
                extra = max((ev.factor - 1.0) * normal, SPIKE_MIN_EXTRA_UNITS)
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
            & (rng.random(n_series) < BENIGN_ADJUSTMENT_PROB)
        )
        idx = np.flatnonzero(lucky)
        if idx.size:
            delta = rng.choice(BENIGN_DELTAS, size=idx.size, p=BENIGN_DELTA_PROBS)
            ok = shelf[idx] + delta >= 0
            shelf[idx[ok]] += delta[ok]
            book[idx[ok]] += delta[ok]

        remaining: list[_Event] = []
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
            late = rng.random(need.size) < LATE_DELIVERY_PROB
            delay = lead[need] + late * rng.integers(1, MAX_LATE_DAYS + 1, need.size)
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


def _can_start(
    ev: _Event,
    d: int,
    shelf: np.ndarray,
    book: np.ndarray,
    pipeline: np.ndarray,
    arrived: np.ndarray,
    reorder_today: np.ndarray,
    mu: np.ndarray,
    base: np.ndarray,
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
        return bool(shelf[s] >= max(min(ev.factor, 4.0) * normal, normal + SPIKE_MIN_EXTRA_UNITS))
    if ev.kind == "demand_drop":
        return bool(shelf[s] >= max(3.0, 2.0 * mu[d, s]))
    return bool(shelf[s] >= 1)  # price_anomaly


def _truth_frame(
    events: list[_Event],
    *,
    sim: dict[str, np.ndarray],
    mu: np.ndarray,
    realized: np.ndarray,
    reg_price: np.ndarray,
    outage: np.ndarray,
    loc_of: np.ndarray,
    n_days: int,
) -> pd.DataFrame:
    """One row per event that actually happened and is visible in the data.

    Columns: anomaly_type, sku (index, -1 for store-wide), location (index), start, end
    (day indexes) and value_at_risk (currency, 2 decimals).
    """
    n_skus = int((loc_of == 0).sum())
    sales = sim["sales"]
    rows: list[tuple[str, int, int, int, int, float]] = []
    for ev in events:
        if ev.start < 0:
            continue
        s, d0, d1 = ev.series, ev.start, ev.end
        units = sales[d0 : d1 + 1, s]
        if ev.kind == "ghost_stock":
            value = ev.delta * reg_price[s]
        elif ev.kind == "inventory_discrepancy":
            value = abs(ev.delta) * reg_price[s]
        elif ev.kind == "demand_spike":
            value = round(units.sum() - mu[d0 : d1 + 1, s].sum()) * reg_price[s]
        elif ev.kind == "demand_drop":
            value = round(mu[d0 : d1 + 1, s].sum() - units.sum()) * reg_price[s]
        else:
            value = float((np.abs(realized[d0 : d1 + 1, s] - reg_price[s]) * units).sum())
        if value <= 0:
            continue  # e.g. a mis-keyed price on days nothing sold: invisible, not injected
        rows.append((ev.kind, s % n_skus, s // n_skus, d0, d1, round(float(value), 2)))
    for d, loc in zip(*np.nonzero(outage), strict=True):
        cols = np.flatnonzero(loc_of == loc)
        value = float((sales[d, cols] * realized[d, cols]).sum())
        rows.append(("pos_outage", -1, int(loc), int(d), int(d), round(value, 2)))
    frame = pd.DataFrame(
        rows, columns=["anomaly_type", "sku", "location", "start", "end", "value_at_risk"]
    )
    return frame.sort_values(["start", "location", "sku", "anomaly_type"], ignore_index=True)


def _series_frame(
    matrix: np.ndarray,
    column: str,
    date_str: np.ndarray,
    sku_codes: np.ndarray,
    loc_codes: np.ndarray,
    sku_of: np.ndarray,
    loc_of: np.ndarray,
    price: np.ndarray | None = None,
    keep_zero: bool = False,
) -> pd.DataFrame:
    """Long rows ``date,sku,location,<column>[,unit_price]`` from a (n_days, n_series) matrix,
    ordered by date, location, sku; zero cells dropped unless ``keep_zero``."""
    flat = np.arange(matrix.size) if keep_zero else np.flatnonzero(matrix)
    d, s = np.divmod(flat, matrix.shape[1])
    data = {
        "date": date_str[d],
        "sku": sku_codes[sku_of[s]],
        "location": loc_codes[loc_of[s]],
        column: matrix.ravel()[flat],
    }
    if price is not None:
        data["unit_price"] = price.ravel()[flat]
    return pd.DataFrame(data)
