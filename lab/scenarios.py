"""The scenario family of the lab simulator and the development / held-out split.

Issue 11: a benchmark that a method was tuned on, and shaped for, cannot judge it. The
simulator is therefore a family of worlds (``lab.simulator.Scenario``), each wider than the
historical default in one direction, and evaluations are split in two sets declared here,
before any detector was tuned on them:

* ``DEV`` — the scenarios and seeds detectors may be developed and tuned on:
  ``classic``, ``subtle_spikes``, ``volume_counts``, ``price_tiers`` x seeds 7, 11, 23.
* ``HELD_OUT`` — every scenario x seeds 101, 202, 303. It judges the work at the end and is
  reported in docs/DETECTION.md.

**Rule: never tune on HELD_OUT.** Do not run, print or look at detection results of a held-out
scenario (``heavy_tails``, ``supply_noise``, ``everything``) or seed (101, 202, 303) while
changing a detector, its parameters or the simulator. Never change a scenario to make a target
reachable: where the oracle (``lab.oracle``) cannot reach a target, the target becomes relative
to the oracle.

Scenarios (what each changes from ``classic``):

================  ==========================================================================
classic           today's simulator (byte-identical bundles)
subtle_spikes     spikes 3-10x for 1-3 days, minimum extra 1 unit, on items from 1.0 unit/day
volume_counts     benign count corrections on ~1/90 series-days, |delta| = 1 +
                  Poisson(0.3 sqrt(on hand)), sign +/-
price_tiers       40 % of SKUs have a price tier 10-35 % below list on 10-40 % of days (the
                  daily average mixes tier and list), price noise 1 %, price anomalies 30-70 %
                  off plus x10 and /10
heavy_tails       negative-binomial size 0.5-2 for every item, plus subtle spikes
supply_noise      lead-time jitter -1..+4 days, 15 % late deliveries, 50 % overlapping
                  promotions, volume-scaled count corrections
everything        all of the above widened: NB size 0.5-15, spikes 3-10x for 1-3 days,
                  discounts 30-70 % + x10 / 10, tiers, noise, volume corrections, jitter,
                  late deliveries, overlapping promotions
================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import replace

from lab.simulator.scenario import CLASSIC, Scenario

SUBTLE_SPIKES = {
    "spike_factor_range": (3.0, 10.0),
    "spike_days": (1, 3),
    "spike_min_extra_units": 1,
    "spike_min_mean": 1.0,
}
VOLUME_COUNTS = {
    "benign_law": "volume",
    "benign_prob_per_day": 1.0 / 90,
    "benign_volume_scale": 0.3,
}
PRICE_TIERS = {
    "tier_sku_share": 0.4,
    "tier_discount_range": (0.10, 0.35),
    "tier_day_share_range": (0.10, 0.40),
    "price_noise_sd": 0.01,
    "price_discount_range": (0.3, 0.7),
    "price_x10_prob": 0.3,
    "price_div10_prob": 0.3,
}
SUPPLY_NOISE = {
    "lead_jitter_days": (-1, 4),
    "late_delivery_prob": 0.15,
    "promo_overlap_prob": 0.5,
}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        CLASSIC,
        replace(CLASSIC, name="subtle_spikes", **SUBTLE_SPIKES),
        replace(CLASSIC, name="volume_counts", **VOLUME_COUNTS),
        replace(CLASSIC, name="price_tiers", **PRICE_TIERS),
        replace(
            CLASSIC,
            name="heavy_tails",
            dispersion_ranges=((0.5, 2.0), (0.5, 2.0), (0.5, 2.0)),
            **SUBTLE_SPIKES,
        ),
        replace(CLASSIC, name="supply_noise", **SUPPLY_NOISE, **VOLUME_COUNTS),
        replace(
            CLASSIC,
            name="everything",
            dispersion_ranges=((0.5, 15.0), (0.5, 15.0), (0.5, 15.0)),
            **SUBTLE_SPIKES,
            **VOLUME_COUNTS,
            **PRICE_TIERS,
            **SUPPLY_NOISE,
        ),
    )
}

DEV_SCENARIOS = ("classic", "subtle_spikes", "volume_counts", "price_tiers")
DEV_SEEDS = (7, 11, 23)
HELD_OUT_SCENARIOS = tuple(SCENARIOS)
HELD_OUT_SEEDS = (101, 202, 303)

DEV: tuple[tuple[str, int], ...] = tuple((s, seed) for s in DEV_SCENARIOS for seed in DEV_SEEDS)
HELD_OUT: tuple[tuple[str, int], ...] = tuple(
    (s, seed) for s in HELD_OUT_SCENARIOS for seed in HELD_OUT_SEEDS
)
SETS = {"dev": DEV, "held_out": HELD_OUT}

# Bundle sizes for set evaluations: the size and a small one for CI.
SIZES = {
    "issue": {"n_locations": 10, "n_skus": 300, "n_days": 400},
    "small": {"n_locations": 3, "n_skus": 60, "n_days": 200},
}


def scenario_get(name: str) -> Scenario:
    """The declared scenario called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"Unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
