"""The scenario family (``lab.scenarios``): the declared split, classic bundles unchanged, each
scenario changing what it says, and the ``oracle.npz`` written beside the CSVs."""

from __future__ import annotations

import hashlib
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

import lab.scenarios
from lab.scenarios import (
    DEV,
    DEV_SCENARIOS,
    HELD_OUT,
    HELD_OUT_SCENARIOS,
    SCENARIOS,
    scenario_get,
)
from lab.simulator import ORACLE_FILE, Scenario, generate_bundle

# sha256 over the CSVs (name + bytes, sorted by name) of the classic bundle below, generated
# on the commit before scenarios existed (76803e8). Writing oracle.npz must not change it.
CLASSIC_SMALL = {"seed": 11, "n_locations": 2, "n_skus": 20, "n_days": 90}
CLASSIC_SMALL_SHA256 = "8c1e4360f9d1186715d0716473d12dfd9ca1989b74da1cf8a15cc9adbbc01380"
SIZE = {"n_locations": 3, "n_skus": 60, "n_days": 200}


def _digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _npz(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / ORACLE_FILE) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """One bundle per scenario (seed 7, 3 x 60 x 200)."""
    root = tmp_path_factory.mktemp("scenarios")
    out = {}
    for name in SCENARIOS:
        out[name] = root / name
        generate_bundle(out_dir=out[name], seed=7, scenario=SCENARIOS[name], **SIZE)
    return out


def test_the_split_is_declared_with_disjoint_seeds_and_every_scenario_held_out():
    assert len(SCENARIOS) >= 7
    dev_seeds = {seed for _, seed in DEV}
    held_seeds = {seed for _, seed in HELD_OUT}
    assert dev_seeds == {7, 11, 23} and held_seeds == {101, 202, 303}
    assert not dev_seeds & held_seeds
    assert set(HELD_OUT_SCENARIOS) == set(SCENARIOS)
    assert {s for s, _ in HELD_OUT} == set(SCENARIOS)
    assert (
        {s for s, _ in DEV}
        == set(DEV_SCENARIOS)
        == {
            "classic",
            "subtle_spikes",
            "volume_counts",
            "price_tiers",
        }
    )
    assert "never tune on HELD_OUT" in lab.scenarios.__doc__


def test_scenarios_are_frozen_and_unknown_names_are_refused():
    with pytest.raises(AttributeError):
        SCENARIOS["classic"].spike_min_mean = 0.0  # type: ignore[misc]
    with pytest.raises(KeyError, match="known: classic"):
        scenario_get("nope")
    with pytest.raises(ValueError, match="benign_law"):
        Scenario(benign_law="sometimes")


def test_classic_bundle_is_byte_identical_to_before_scenarios(tmp_path):
    generate_bundle(out_dir=tmp_path / "default", **CLASSIC_SMALL)
    generate_bundle(out_dir=tmp_path / "named", scenario=scenario_get("classic"), **CLASSIC_SMALL)

    assert _digest(tmp_path / "default") == CLASSIC_SMALL_SHA256
    assert _digest(tmp_path / "named") == CLASSIC_SMALL_SHA256
    assert (tmp_path / "default" / ORACLE_FILE).exists()


def test_oracle_npz_holds_the_true_parameters_in_series_order(bundles):
    folder = bundles["price_tiers"]
    p = _npz(folder)
    n_days, n_series, n_skus = SIZE["n_days"], SIZE["n_locations"] * SIZE["n_skus"], SIZE["n_skus"]
    assert p["mu"].shape == (n_days, n_series) and p["promo_discount"].shape == (n_days, n_series)
    for key in ("nb_size", "regular_price", "price_noise_sd", "benign_rate", "base"):
        assert p[key].shape == (n_series,), key
    assert p["tier_price"].shape == (n_skus,)
    assert list(p["series_location"][:2]) == ["S001", "S001"]
    assert p["series_sku"][n_skus] == "SKU00001" and p["series_location"][n_skus] == "S002"
    assert str(p["scenario"]) == "price_tiers" and int(p["seed"]) == 7
    assert str(p["benign_law"]) == "fixed"
    # mu is the demand the sales were drawn around: mean sales track mean mu on ordinary days.
    sales = pd.read_csv(folder / "sales.csv")
    assert sales["units"].sum() == pytest.approx(p["mu"].sum(), rel=0.15)
    # Regular prices are the products' unit prices, per series.
    products = pd.read_csv(folder / "products.csv")
    assert np.allclose(p["regular_price"][:n_skus], products["unit_price"])
    # The truth's events are the npz's events that became visible.
    truth = pd.read_csv(folder / "truth.csv", keep_default_na=False)
    sku_level = truth[truth["sku"] != ""]
    assert len(sku_level) <= len(p["event_kind"])
    assert set(sku_level["anomaly_type"]) <= set(p["event_kind"])


def test_subtle_spikes_are_3_to_10x_for_1_to_3_days_on_items_from_one_unit(bundles):
    classic, subtle = _npz(bundles["classic"]), _npz(bundles["subtle_spikes"])
    spikes = subtle["event_kind"] == "demand_spike"
    factors = subtle["event_factor"][spikes]
    assert spikes.sum() >= 5
    assert ((factors >= 3.0) & (factors <= 10.0)).all()
    days = subtle["event_end"][spikes] - subtle["event_start"][spikes] + 1
    assert days.min() >= 1 and days.max() <= 3
    assert (subtle["base"][subtle["event_series"][spikes]] >= 1.0).all()
    classic_factors = classic["event_factor"][classic["event_kind"] == "demand_spike"]
    assert (classic_factors >= 6.0).all()


def _benign_residuals(folder: Path) -> pd.DataFrame:
    """Book residuals on series-days far from any injected event or outage."""
    p = _npz(folder)
    n_days, n_series = p["mu"].shape
    n_skus = int((p["series_location"] == p["series_location"][0]).sum())
    dates = pd.Index(p["dates"])
    locs = pd.Index(p["series_location"][::n_skus])
    skus = pd.Index(p["series_sku"][:n_skus])

    def matrix(name: str, column: str) -> np.ndarray:
        frame = pd.read_csv(folder / name)
        out = np.zeros((n_days, n_series), dtype=np.int64)
        col = locs.get_indexer(frame["location"]) * n_skus + skus.get_indexer(frame["sku"])
        out[dates.get_indexer(frame["date"]), col] = frame[column]
        return out

    book, units = matrix("inventory.csv", "on_hand"), matrix("sales.csv", "units")
    received = matrix("receipts.csv", "units")
    residual = np.zeros_like(book)
    residual[1:] = book[1:] - book[:-1] - received[1:] + units[1:]
    clean = np.ones_like(book, dtype=bool)
    for s, d0 in zip(p["event_series"], p["event_start"], strict=True):
        clean[max(0, d0 - 1) :, s] = False  # from the event on, the series is not benign
    truth = pd.read_csv(folder / "truth.csv", keep_default_na=False)
    for row in truth[truth["anomaly_type"] == "pos_outage"].itertuples():
        loc = locs.get_loc(row.location)
        clean[dates.get_loc(row.start_date), loc * n_skus : (loc + 1) * n_skus] = False
    d, s = np.nonzero(clean & (residual != 0))
    return pd.DataFrame({"residual": residual[d, s], "on_hand": book[d, s] - residual[d, s]})


def test_volume_counts_corrections_are_frequent_and_grow_with_on_hand(bundles):
    classic = _benign_residuals(bundles["classic"])
    volume = _benign_residuals(bundles["volume_counts"])

    assert classic["residual"].abs().max() <= 2
    assert len(volume) > 3 * len(classic)
    small = volume[volume["on_hand"] < 20]["residual"].abs().mean()
    large = volume[volume["on_hand"] >= 80]["residual"].abs().mean()
    assert large > 2 * small
    assert volume["residual"].abs().max() >= 5
    assert (volume["residual"] > 0).any() and (volume["residual"] < 0).any()


def test_price_tiers_recur_below_list_with_noise(bundles):
    p = _npz(bundles["price_tiers"])
    has_tier = ~np.isnan(p["tier_price"])
    assert 0.2 <= has_tier.mean() <= 0.6
    discount = 1 - p["tier_price"][has_tier] / p["regular_price"][: len(has_tier)][has_tier]
    assert ((discount > 0.09) & (discount < 0.36)).all()
    assert (p["price_noise_sd"] == 0.01).all()
    sales = pd.read_csv(bundles["price_tiers"] / "sales.csv")
    products = pd.read_csv(bundles["price_tiers"] / "products.csv").set_index("sku")
    ratio = sales["unit_price"] / sales["sku"].map(products["unit_price"])
    tiered = sales["sku"].isin(products.index[has_tier])
    # Tier SKUs sell well below list on many days; noise moves almost every price off list.
    assert (ratio[tiered] < 0.95).mean() > 0.05
    assert (ratio[~tiered].round(4) != 1.0).mean() > 0.5
    factors = p["event_factor"][p["event_kind"] == "price_anomaly"]
    off = 1 - factors[(factors > 0.1) & (factors < 10)]
    assert ((off >= 0.3) & (off <= 0.7)).all()


def test_heavy_tails_and_everything_widen_the_dispersion(bundles):
    heavy = _npz(bundles["heavy_tails"])["nb_size"]
    everything = _npz(bundles["everything"])["nb_size"]
    classic = _npz(bundles["classic"])
    assert heavy.min() >= 0.5 and heavy.max() <= 2.0
    assert everything.min() >= 0.5 and everything.max() <= 15.0
    fast = classic["mover"] == 2
    assert classic["nb_size"][fast].min() >= 4.0
    fast_everything = _npz(bundles["everything"])["mover"] == 2
    assert everything[fast_everything].min() < 4.0


def test_supply_noise_overlaps_promotions_and_scales_corrections(bundles):
    for name in ("supply_noise", "everything"):
        promos = pd.read_csv(bundles[name] / "promotions.csv", keep_default_na=False)
        promos = promos.sort_values(["sku", "start_date"])
        previous_end = promos.groupby("sku")["end_date"].shift()
        assert (promos["start_date"] <= previous_end).any(), name
        assert str(_npz(bundles[name])["benign_law"]) == "volume"
    promos = pd.read_csv(bundles["classic"] / "promotions.csv", keep_default_na=False)
    promos = promos.sort_values(["sku", "start_date"])
    assert not (promos["start_date"] <= promos.groupby("sku")["end_date"].shift()).any()


def test_everything_has_tiers_and_price_noise(bundles):
    p = _npz(bundles["everything"])
    assert (~np.isnan(p["tier_price"])).any()
    assert (p["price_noise_sd"] > 0).all()


def test_command_selects_a_scenario(tmp_path):
    out = StringIO()
    call_command(
        "generate_demo_bundle",
        str(tmp_path),
        "--scenario",
        "volume_counts",
        "--locations",
        "1",
        "--skus",
        "10",
        "--days",
        "60",
        stdout=out,
    )
    assert "scenario volume_counts" in out.getvalue()
    assert str(_npz(tmp_path)["scenario"]) == "volume_counts"
