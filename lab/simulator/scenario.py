"""The simulator's free parameters as one frozen value: a ``Scenario``.

Every constant that shapes the null behaviour (demand dispersion, benign count corrections,
supply timing, promotions, price noise and tiers) or the injected anomalies (spike and drop
factors, mis-keyed price multiples) is a field here. The defaults are the module constants of
``catalogue``, ``calendar``, ``events`` and ``stock``, so ``Scenario()`` (the ``classic``
scenario) reproduces the historical bundles byte for byte: a field left at its default draws
exactly the random numbers the original code drew, and a non-default field may draw more.

The scenario family that evaluations use is declared in ``lab.scenarios``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .catalogue import MOVER_DISPERSION_RANGES
from .events import (
    DROP_FACTOR_RANGE,
    DROP_MIN_MEAN,
    SPIKE_FACTOR_RANGE,
    SPIKE_MIN_EXTRA_UNITS,
    SPIKE_MIN_MEAN,
)
from .stock import (
    BENIGN_ADJUSTMENT_PROB,
    BENIGN_DELTA_PROBS,
    BENIGN_DELTAS,
    LATE_DELIVERY_PROB,
    MAX_LATE_DAYS,
    MAX_LEAD_DAYS,
    MIN_LEAD_DAYS,
)

BENIGN_LAWS = ("fixed", "volume")


@dataclass(frozen=True)
class Scenario:
    """Parameters of one simulated world (units in the field names; ranges are inclusive).

    Demand
      ``dispersion_ranges``: negative-binomial size r range per mover class (slow, medium,
      fast); smaller r = heavier tail (variance ``mu + mu²/r``).

    Benign count corrections (applied to book *and* shelf, never in the truth)
      ``benign_law`` = ``"fixed"``: with probability ``benign_prob_per_day`` per series-day a
      delta drawn from ``benign_deltas`` with ``benign_delta_probs``;
      ``"volume"``: with that probability, ``|delta| = 1 + Poisson(benign_volume_scale ·
      sqrt(shelf units))``, sign ± with equal odds.

    Supply
      ``lead_days``: (min, max) lead time per series; ``lead_jitter_days``: (lo, hi) extra days
      drawn per order (0, 0 = none; a delivery never arrives before the next day);
      ``late_delivery_prob`` and ``max_late_days``: occasional late deliveries.

    Promotions
      ``promo_overlap_prob``: probability that a SKU's next promotion starts while its previous
      one is still running (overlapping promotions; the larger discount and uplift apply).

    Prices
      ``price_noise_sd``: relative sd of the daily average price around its level (0 = exact);
      ``tier_sku_share``: share of SKUs with a quantity/customer price tier
      ``tier_discount_range`` below list, used on a per-SKU share of (non-promotion) days drawn
      from ``tier_day_share_range``; on a tier day a share ``tier_unit_share_range`` of the
      units sells at the tier price, so the daily average mixes tier and list.

    Injected events
      ``spike_factor_range``, ``spike_days``, ``spike_min_extra_units``, ``spike_min_mean``
      (units/day): a spike adds ``max((factor − 1) × normal, min extra)`` units per day;
      ``drop_factor_range``, ``drop_min_mean``: demand drops;
      ``price_x10_prob``, ``price_div10_prob``: mis-keyed ×10 / ÷10 prices, otherwise an
      unexplained discount drawn from ``price_discount_range`` (fraction off list).
    """

    name: str = "classic"
    # Demand
    dispersion_ranges: tuple[tuple[float, float], ...] = MOVER_DISPERSION_RANGES
    # Benign count corrections
    benign_law: str = "fixed"
    benign_prob_per_day: float = BENIGN_ADJUSTMENT_PROB
    benign_deltas: tuple[int, ...] = tuple(int(x) for x in BENIGN_DELTAS)
    benign_delta_probs: tuple[float, ...] = tuple(float(x) for x in BENIGN_DELTA_PROBS)
    benign_volume_scale: float = 0.3
    # Supply
    lead_days: tuple[int, int] = (MIN_LEAD_DAYS, MAX_LEAD_DAYS)
    lead_jitter_days: tuple[int, int] = (0, 0)
    late_delivery_prob: float = LATE_DELIVERY_PROB
    max_late_days: int = MAX_LATE_DAYS
    # Promotions
    promo_overlap_prob: float = 0.0
    # Prices
    price_noise_sd: float = 0.0
    tier_sku_share: float = 0.0
    tier_discount_range: tuple[float, float] = (0.10, 0.35)
    tier_day_share_range: tuple[float, float] = (0.10, 0.40)
    tier_unit_share_range: tuple[float, float] = (0.3, 1.0)
    # Injected events
    spike_factor_range: tuple[float, float] = SPIKE_FACTOR_RANGE
    spike_days: tuple[int, int] = (1, 2)
    spike_min_extra_units: int = SPIKE_MIN_EXTRA_UNITS
    spike_min_mean: float = SPIKE_MIN_MEAN
    drop_factor_range: tuple[float, float] = DROP_FACTOR_RANGE
    drop_min_mean: float = DROP_MIN_MEAN
    price_x10_prob: float = 0.3
    price_div10_prob: float = 0.3
    price_discount_range: tuple[float, float] = (0.5, 0.7)

    def __post_init__(self) -> None:
        if self.benign_law not in BENIGN_LAWS:
            raise ValueError(f"benign_law must be one of {', '.join(BENIGN_LAWS)}.")
        if len(self.dispersion_ranges) != 3:
            raise ValueError("dispersion_ranges needs one range per mover class (3).")
        if self.lead_days[0] < 1 or self.lead_days[1] < self.lead_days[0]:
            raise ValueError("lead_days must be (min >= 1, max >= min).")
        if self.spike_days[0] < 1 or self.spike_days[1] < self.spike_days[0]:
            raise ValueError("spike_days must be (min >= 1, max >= min).")

    @property
    def max_delivery_days(self) -> int:
        """Longest possible order-to-delivery time (sizes the arrivals buffer)."""
        return self.lead_days[1] + max(0, self.lead_jitter_days[1]) + self.max_late_days

    def as_dict(self) -> dict:
        """Plain data (for ``oracle.npz`` and reports)."""
        return asdict(self)


CLASSIC = Scenario()
