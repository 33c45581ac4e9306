"""The small estate the browser tests work on: two stores, three SKUs, ten weeks of sales and
book stock, and the findings detection would raise on them.

STORE-01 holds the ghost-stock finding of the main path (SKU-0042 stopped selling 14 days ago
while 33 units stay on the books) and a demand spike; STORE-02 holds a price anomaly that the
store staff of STORE-01 must not see. Dates are fixed (the demo's last day) so that pages and
screenshots are the same on every run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from anomalies.models import Anomaly, AnomalyStatus, AnomalyType, Severity
from inventory.models import DailySales, Location, Product, Receipt, StockLevel
from tests.factories import AnomalyFactory, DetectionRunFactory

END = dt.date(2026, 10, 31)  # the last day with data, as in the demo
HISTORY_DAYS = 70
GHOST_RUN_DAYS = 14
GHOST_START = END - dt.timedelta(days=GHOST_RUN_DAYS - 1)
GHOST_BOOK_UNITS = 33  # on the books through the zero-sales run
# Units the drill sells Monday..Sunday before the run (4.43 a day).
DRILL_WEEKDAY_UNITS = (3, 4, 4, 5, 6, 7, 2)
DRILL_RECEIPT_UNITS = 25  # delivered every Monday
OIL_DAILY_UNITS = 10
OIL_SPIKE_DAY = END - dt.timedelta(days=3)
OIL_SPIKE_UNITS = 38
TOWELS_MISKEYED_PRICE = Decimal("42.50")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Estate:
    """What the tests need to find again: the stores, the user's finding and its numbers."""

    store: Location
    other_store: Location
    drill: Product
    ghost: Anomaly
    spike: Anomaly
    foreign: Anomaly  # at the other store

    @property
    def ghost_book_units(self) -> int:
        """Book stock on the last day with data: what the count is compared with."""
        return GHOST_BOOK_UNITS


def _days() -> list[dt.date]:
    return [END - dt.timedelta(days=n) for n in range(HISTORY_DAYS - 1, -1, -1)]


def _money(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def estate_build() -> Estate:
    """Create the estate in the test database (it must be visible to the live server, so
    callers run on ``transactional_db``)."""
    store = Location.objects.create(code="STORE-01", name="High Street")
    other_store = Location.objects.create(code="STORE-02", name="Riverside")
    drill = Product.objects.create(
        sku="SKU-0042",
        name="Cordless drill 18V",
        category="DIY",
        unit_price=Decimal("55.93"),
        unit_cost=Decimal("31.20"),
    )
    oil = Product.objects.create(
        sku="SKU-0107",
        name="Olive oil 1 l",
        category="Grocery",
        unit_price=Decimal("6.49"),
        unit_cost=Decimal("3.10"),
    )
    towels = Product.objects.create(
        sku="SKU-0230",
        name="Paper towels 6-pack",
        category="Household",
        unit_price=Decimal("4.25"),
        unit_cost=Decimal("2.05"),
    )
    days = _days()
    sales: list[DailySales] = []
    stock: list[StockLevel] = []
    receipts: list[Receipt] = []

    # The drill at STORE-01: steady sales, weekly deliveries, then nothing sold for 14 days
    # with 33 units on the books. Book stock is worked backwards from the run so that
    # yesterday's stock - sales + receipts = today's stock on every day.
    drill_units = {
        day: 0 if day >= GHOST_START else DRILL_WEEKDAY_UNITS[day.weekday()] for day in days
    }
    drill_receipts = {
        day: DRILL_RECEIPT_UNITS if day < GHOST_START and day.weekday() == 0 else 0 for day in days
    }
    on_hand = {}
    level = GHOST_BOOK_UNITS
    for day in reversed(days):
        on_hand[day] = level
        level = level + drill_units[day] - drill_receipts[day]
    for day in days:
        if drill_units[day]:
            sales.append(
                DailySales(
                    product=drill,
                    location=store,
                    date=day,
                    units_sold=drill_units[day],
                    unit_price=drill.unit_price,
                )
            )
        if drill_receipts[day]:
            receipts.append(
                Receipt(product=drill, location=store, date=day, units=drill_receipts[day])
            )
        stock.append(StockLevel(product=drill, location=store, date=day, on_hand=on_hand[day]))
        # The drill sells as usual at STORE-02.
        sales.append(
            DailySales(
                product=drill,
                location=other_store,
                date=day,
                units_sold=DRILL_WEEKDAY_UNITS[day.weekday()],
                unit_price=drill.unit_price,
            )
        )
        # Olive oil at STORE-01, with a one-day spike three days before the end.
        oil_units = OIL_SPIKE_UNITS if day == OIL_SPIKE_DAY else OIL_DAILY_UNITS
        sales.append(
            DailySales(
                product=oil,
                location=store,
                date=day,
                units_sold=oil_units,
                unit_price=oil.unit_price,
            )
        )
        stock.append(StockLevel(product=oil, location=store, date=day, on_hand=140))
        # Paper towels at STORE-02, rung up at ten times their price the day before the end.
        price = TOWELS_MISKEYED_PRICE if day == END - dt.timedelta(days=1) else towels.unit_price
        sales.append(
            DailySales(
                product=towels, location=other_store, date=day, units_sold=12, unit_price=price
            )
        )
    DailySales.objects.bulk_create(sales)
    StockLevel.objects.bulk_create(stock)
    Receipt.objects.bulk_create(receipts)
    DetectionRunFactory(
        as_of=END,
        detectors=["ghost_stock", "demand_spike", "price_anomaly"],
        counts={"ghost_stock": 1, "demand_spike": 1, "price_anomaly": 1},
    )

    spike = AnomalyFactory(
        anomaly_type=AnomalyType.DEMAND_SPIKE,
        severity=Severity.WARNING,
        product=oil,
        location=store,
        start_date=OIL_SPIKE_DAY,
        end_date=OIL_SPIKE_DAY,
        first_detected_on=OIL_SPIKE_DAY,
        last_detected_on=OIL_SPIKE_DAY,
        score=0.97,
        expected_value=float(OIL_DAILY_UNITS),
        actual_value=float(OIL_SPIKE_UNITS),
        value_at_risk=_money((OIL_SPIKE_UNITS - OIL_DAILY_UNITS) * oil.unit_price),
        explanation=(
            f"Sold {OIL_SPIKE_UNITS} units against {OIL_DAILY_UNITS} expected for a "
            f"{OIL_SPIKE_DAY:%A}; no promotion or event explains it."
        ),
        status=AnomalyStatus.OPEN,
    )
    foreign = AnomalyFactory(
        anomaly_type=AnomalyType.PRICE_ANOMALY,
        severity=Severity.WARNING,
        product=towels,
        location=other_store,
        start_date=END - dt.timedelta(days=1),
        end_date=END - dt.timedelta(days=1),
        first_detected_on=END - dt.timedelta(days=1),
        last_detected_on=END - dt.timedelta(days=1),
        expected_value=float(towels.unit_price),
        actual_value=float(TOWELS_MISKEYED_PRICE),
        value_at_risk=_money(12 * (TOWELS_MISKEYED_PRICE - towels.unit_price)),
        explanation="Sold at £42.50 against a regular price of £4.25 (×10): a mis-keyed price?",
        status=AnomalyStatus.OPEN,
    )
    rate = sum(DRILL_WEEKDAY_UNITS) / len(DRILL_WEEKDAY_UNITS)
    # Created last and detected last: the first row of the list in any sensible order
    # (newest, most severe, most money).
    ghost = AnomalyFactory(
        anomaly_type=AnomalyType.GHOST_STOCK,
        severity=Severity.CRITICAL,
        product=drill,
        location=store,
        start_date=GHOST_START,
        end_date=END,
        first_detected_on=GHOST_START + dt.timedelta(days=7),
        last_detected_on=END,
        score=0.999,
        p_value=2e-9,
        expected_value=round(rate, 2),
        actual_value=0.0,
        value_at_risk=_money(Decimal(str(round(rate, 2))) * GHOST_RUN_DAYS * drill.unit_price),
        explanation=(
            f"No sales for {GHOST_RUN_DAYS} days although {rate:.1f} units/day were expected "
            f"(p = 2e-9); {GHOST_BOOK_UNITS} units on the books."
        ),
        details={
            "probability": 0.999,
            "expected_units_per_day": round(rate, 2),
            "unit_price": str(drill.unit_price),
            "zero_run_days": GHOST_RUN_DAYS,
            "on_hand": GHOST_BOOK_UNITS,
        },
        status=AnomalyStatus.OPEN,
    )
    return Estate(
        store=store,
        other_store=other_store,
        drill=drill,
        ghost=ghost,
        spike=spike,
        foreign=foreign,
    )
