"""Master data of the simulated chain: store names, product categories with their price,
cost and demand ranges, and the drawn product and location tables."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
class Category:
    name: str
    price_range: tuple[float, float]  # regular price range, currency units
    mover_probs: tuple[float, float, float]  # P(slow), P(medium), P(fast)
    season_amplitude: float  # relative yearly swing
    season_peak_doy: int  # day of year of the seasonal peak
    brands: tuple[str, ...]
    items: tuple[tuple[str, tuple[str, ...]], ...]  # (item, sizes)


CATEGORIES = (
    Category(
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
    Category(
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
    Category(
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
    Category(
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
    Category(
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
    Category(
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
    Category(
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
    Category(
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


def make_products(rng: np.random.Generator, n_skus: int) -> pd.DataFrame:
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


def make_locations(n_locations: int) -> pd.DataFrame:
    """``code,name`` rows: S001 "Leeds Headingley", ... (names repeat with a number suffix)."""
    names = []
    for i in range(n_locations):
        name = LOCATION_NAMES[i % len(LOCATION_NAMES)]
        names.append(name if i < len(LOCATION_NAMES) else f"{name} {i // len(LOCATION_NAMES) + 1}")
    return pd.DataFrame({"code": [f"S{i + 1:03d}" for i in range(n_locations)], "name": names})
