"""The trading calendar (weekday pattern, national events, closures, local events) and
promotions with their post-promotion dips."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

POST_PROMO_DIP = 0.7


# Weekday multipliers, Monday first (Saturday busiest; Sunday has short trading hours).
WEEKDAY_FACTOR = np.array([0.86, 0.84, 0.92, 0.98, 1.12, 1.34, 0.94])


@dataclass
class Calendar:
    rows: list[tuple[int, str, int]]  # (day index, event name, location index or -1 = all)
    open_: np.ndarray  # (n_days, n_locations) bool
    uplift: np.ndarray  # (n_days, n_locations) float demand multiplier


@dataclass
class Promotions:
    rows: list[tuple[int, int, int, int, int]]  # (start, end, sku, location or -1, discount %)
    uplift: np.ndarray  # (n_days, n_series) demand multiplier incl. post-promotion dips
    discount: np.ndarray  # (n_days, n_series) float32 price discount fraction
    affected: np.ndarray  # (n_days, n_series) bool: promotion or dip day


def easter_sunday(year: int) -> date:
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


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) given weekday (Monday = 0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def national_events(year: int) -> list[tuple[date, str, float]]:
    """UK-style national calendar: (date, name, demand uplift); uplift 0 means closed."""
    easter = easter_sunday(year)
    return [
        (date(year, 1, 1), "New Year's Day (bank holiday)", 1.1),
        (easter - timedelta(days=2), "Good Friday (bank holiday)", 1.25),
        (easter, "Easter Sunday (closed)", 0.0),
        (easter + timedelta(days=1), "Easter Monday (bank holiday)", 1.2),
        (nth_weekday(year, 5, 0, 1), "Early May bank holiday", 1.2),
        (nth_weekday(year, 5, 0, -1), "Spring bank holiday", 1.2),
        (nth_weekday(year, 8, 0, -1), "Summer bank holiday", 1.25),
        (nth_weekday(year, 11, 4, 4), "Black Friday", 1.3),
        (date(year, 12, 24), "Christmas Eve", 1.8),
        (date(year, 12, 25), "Christmas Day (closed)", 0.0),
        (date(year, 12, 26), "Boxing Day (bank holiday)", 1.4),
    ]


def make_calendar(rng: np.random.Generator, start: date, n_days: int, n_locations: int) -> Calendar:
    """National holidays plus, per store, local festivals (busy) and one refurbishment closure."""
    open_ = np.ones((n_days, n_locations), dtype=bool)
    uplift = np.ones((n_days, n_locations))
    rows: list[tuple[int, str, int]] = []
    end = start + timedelta(days=n_days - 1)
    for year in range(start.year, end.year + 1):
        for day, name, factor in national_events(year):
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
    return Calendar(rows=rows, open_=open_, uplift=uplift)


def make_promotions(
    rng: np.random.Generator,
    n_days: int,
    n_skus: int,
    n_locations: int,
    overlap_prob: float = 0.0,
) -> Promotions:
    """Promotions for ~30% of SKUs: 3-14 days, 10-40% off, 1.5-3x uplift, then a 0.7x dip
    for 3-5 days (pantry loading); either at all stores (blank location) or at one.

    With probability ``overlap_prob`` a SKU's next promotion starts while the previous one
    runs (overlapping promotions): where two overlap, the larger uplift and discount apply, and
    a dip never replaces a promotion day. ``overlap_prob = 0`` draws no extra random numbers.
    """
    n_series = n_skus * n_locations
    uplift = np.ones((n_days, n_series))
    discount = np.zeros((n_days, n_series), dtype=np.float32)
    affected = np.zeros((n_days, n_series), dtype=bool)
    rows: list[tuple[int, int, int, int, int]] = []
    promo_skus = rng.choice(n_skus, size=max(1, round(0.3 * n_skus)), replace=False)
    for sku in np.sort(promo_skus):
        free_from = int(rng.integers(0, 30))
        overlap_start = -1
        for _ in range(1 + rng.poisson(n_days / 120)):
            length = int(rng.integers(3, 15))
            d0 = overlap_start if overlap_start >= 0 else free_from + int(rng.integers(0, 45))
            d1 = d0 + length - 1
            dip = int(rng.integers(3, 6))
            if d1 + dip >= n_days:
                break
            pct = int(rng.choice([10, 15, 20, 25, 30, 35, 40]))
            lift = float(np.clip(1.0 + pct / 100 * rng.uniform(3.0, 6.0), 1.5, 3.0))
            loc = -1 if rng.random() < 0.6 else int(rng.integers(n_locations))
            cols = sku + n_skus * (np.arange(n_locations) if loc < 0 else np.array([loc]))
            # Maxima (and dips only off promotion days) so that overlapping promotions combine;
            # without overlaps these are plain assignments.
            uplift[d0 : d1 + 1, cols] = np.maximum(uplift[d0 : d1 + 1, cols], lift)
            after = uplift[d1 + 1 : d1 + 1 + dip, cols]
            on_promo = discount[d1 + 1 : d1 + 1 + dip, cols] > 0
            uplift[d1 + 1 : d1 + 1 + dip, cols] = np.where(on_promo, after, POST_PROMO_DIP)
            discount[d0 : d1 + 1, cols] = np.maximum(discount[d0 : d1 + 1, cols], pct / 100)
            affected[d0 : d1 + 1 + dip, cols] = True
            rows.append((d0, d1, int(sku), loc, pct))
            free_from = d1 + dip + 14
            overlap_start = -1
            if overlap_prob > 0 and rng.random() < overlap_prob:
                overlap_start = d0 + int(rng.integers(1, length))
    rows.sort()
    return Promotions(rows=rows, uplift=uplift, discount=discount, affected=affected)
