"""The demo / benchmark bundle generator: format, determinism, stock bookkeeping, confounders
and injected events (``lab.simulator``)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lab.simulator import (
    ANOMALY_TYPES,
    DEFAULT_END_DATE,
    EVENT_WINDOW_FRACTION,
    generate_bundle,
)

FILES = {
    "products.csv": "sku,name,category,unit_price,unit_cost",
    "locations.csv": "code,name",
    "sales.csv": "date,sku,location,units,unit_price",
    "inventory.csv": "date,sku,location,on_hand",
    "receipts.csv": "date,sku,location,units",
    "calendar.csv": "date,event,location",
    "promotions.csv": "start_date,end_date,sku,location,discount_pct",
    "truth.csv": "anomaly_type,sku,location,start_date,end_date,value_at_risk",
}
SMALL = {"n_locations": 2, "n_skus": 20, "n_days": 90}


class Bundle:
    """A generated bundle read back, with (n_days, n_series) matrices in CSV order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        read = {name: pd.read_csv(path / name, keep_default_na=False) for name in FILES}
        self.products, self.locations = read["products.csv"], read["locations.csv"]
        self.sales, self.inventory = read["sales.csv"], read["inventory.csv"]
        self.receipts, self.calendar = read["receipts.csv"], read["calendar.csv"]
        self.promotions, self.truth = read["promotions.csv"], read["truth.csv"]
        self.dates = sorted(self.inventory["date"].unique())
        self.skus = list(self.products["sku"])
        self.locs = list(self.locations["code"])
        self.day = {d: i for i, d in enumerate(self.dates)}
        self.col = {
            (loc, sku): i * len(self.skus) + j
            for i, loc in enumerate(self.locs)
            for j, sku in enumerate(self.skus)
        }
        self.book = self._matrix(self.inventory, "on_hand")
        self.units = self._matrix(self.sales, "units")
        self.received = self._matrix(self.receipts, "units")
        self.residual = np.zeros_like(self.book)
        self.residual[1:] = self.book[1:] - self.book[:-1] - self.received[1:] + self.units[1:]
        self.price = dict(zip(self.products["sku"], self.products["unit_price"], strict=True))

    def _matrix(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        out = np.zeros((len(self.dates), len(self.col)), dtype=np.int64)
        rows = frame["date"].map(self.day).to_numpy()
        cols = np.array([self.col[k] for k in zip(frame["location"], frame["sku"], strict=True)])
        if len(frame):
            np.add.at(out, (rows, cols), frame[column].to_numpy())
        return out

    def series(self, loc: str, sku: str) -> int:
        return self.col[(loc, sku)]

    def location_columns(self, loc: str) -> np.ndarray:
        return np.array([self.col[(loc, sku)] for sku in self.skus])

    def events(self, kind: str) -> pd.DataFrame:
        return self.truth[self.truth["anomaly_type"] == kind]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Bundle:
    """The default-size demo (5 x 80 x 180), generated once for the module."""
    path = tmp_path_factory.mktemp("demo")
    generate_bundle(out_dir=path)
    return Bundle(path)


def _file_bytes(path: Path) -> dict[str, bytes]:
    return {name: (path / name).read_bytes() for name in FILES}


def test_bundle_files_have_the_import_format(demo):
    for name, header in FILES.items():
        assert (demo.path / name).read_text(encoding="utf-8").split("\n", 1)[0] == header
    dates = pd.concat([demo.sales["date"], demo.calendar["date"], demo.truth["start_date"]])
    assert dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert demo.dates[-1] == DEFAULT_END_DATE.isoformat()
    assert len(demo.dates) == 180
    assert demo.products["unit_price"].between(0.5, 60).all()
    ratio = demo.products["unit_cost"] / demo.products["unit_price"]
    assert ratio.between(0.5, 0.8).all()
    assert demo.products["name"].is_unique
    assert (demo.sales["units"] > 0).all()
    assert demo.sales["unit_price"].astype(str).str.fullmatch(r"\d+\.\d{1,2}|\d+").all()
    assert demo.promotions["discount_pct"].between(10, 40).all()


def test_inventory_has_every_day_for_every_sku_and_location(demo):
    assert len(demo.inventory) == 180 * 5 * 80
    assert not demo.inventory.duplicated(["date", "sku", "location"]).any()
    assert (demo.book >= 0).all()


def test_same_seed_writes_identical_files(tmp_path):
    generate_bundle(out_dir=tmp_path / "a", seed=3, **SMALL)
    generate_bundle(out_dir=tmp_path / "b", seed=3, **SMALL)
    assert _file_bytes(tmp_path / "a") == _file_bytes(tmp_path / "b")


def test_different_seed_writes_different_data(tmp_path):
    generate_bundle(out_dir=tmp_path / "a", seed=3, **SMALL)
    generate_bundle(out_dir=tmp_path / "b", seed=4, **SMALL)
    a, b = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b")
    assert a["sales.csv"] != b["sales.csv"]
    assert a["truth.csv"] != b["truth.csv"]


def test_end_date_sets_the_horizon(tmp_path):
    summary = generate_bundle(out_dir=tmp_path, end_date=date(2025, 12, 31), **SMALL)
    assert summary.start_date == date(2025, 12, 31) - timedelta(days=89)
    calendar = pd.read_csv(tmp_path / "calendar.csv", keep_default_na=False)
    assert "Christmas Day (closed)" in set(calendar["event"])
    christmas = pd.read_csv(tmp_path / "sales.csv").query("date == '2025-12-25'")
    assert christmas.empty


@pytest.mark.parametrize("sizes", [{"n_days": 30}, {"n_skus": 3}, {"n_locations": 0}])
def test_too_small_sizes_are_rejected(tmp_path, sizes):
    with pytest.raises(ValueError):
        generate_bundle(out_dir=tmp_path, **sizes)


def test_book_stock_identity_holds_except_on_listed_events(demo):
    """on_hand[d] - on_hand[d-1] - receipts[d] + units[d] == 0, with explicit exceptions:
    benign count adjustments (|residual| <= 2, written nowhere), inventory discrepancies (start
    day; a duplicate receipt also on its end day, when the book is corrected), ghost-stock
    cycle-count resets (end day) and POS outage days (every SKU of the store)."""
    exempt = np.zeros_like(demo.residual, dtype=bool)
    last = len(demo.dates) - 1
    for row in demo.events("inventory_discrepancy").itertuples():
        s, d0, d1 = (
            demo.series(row.location, row.sku),
            demo.day[row.start_date],
            demo.day[row.end_date],
        )
        delta = demo.residual[d0, s]
        assert abs(delta) >= 3
        assert row.value_at_risk == pytest.approx(abs(delta) * demo.price[row.sku], abs=0.01)
        if d1 != d0 and d1 != last:  # duplicate receipt found by a gap scan: book := shelf
            assert delta > 0
            assert demo.residual[d1, s] == -delta
            assert demo.book[d1, s] == 0
        exempt[[d0, d1], s] = True
    for row in demo.events("ghost_stock").itertuples():
        s, d1 = demo.series(row.location, row.sku), demo.day[row.end_date]
        if d1 != last:  # a cycle count reset the book to the (empty) shelf
            assert demo.book[d1, s] == 0
            assert demo.residual[d1, s] == -demo.book[d1 - 1, s]
        exempt[d1, s] = True
    for row in demo.events("pos_outage").itertuples():
        d, cols = demo.day[row.start_date], demo.location_columns(row.location)
        assert (demo.residual[d, cols] <= 0).all()  # unrecorded physical sales
        assert demo.residual[d, cols].sum() < 0
        exempt[d, cols] = True

    others = demo.residual[~exempt]
    assert np.abs(others).max() <= 2
    # The benign adjustments exist (a confounder the discrepancy detector must tolerate).
    assert 0 < np.count_nonzero(others) < 0.01 * others.size


def test_no_sales_or_deliveries_on_closed_days(demo):
    closed = demo.calendar[demo.calendar["event"].str.contains("closed", case=False)]
    assert len(closed) >= 1
    for row in closed.itertuples():
        d = demo.day[row.date]
        cols = demo.location_columns(row.location) if row.location else slice(None)
        assert demo.units[d, cols].sum() == 0
        assert demo.received[d, cols].sum() == 0
        assert (demo.book[d, cols] == demo.book[d - 1, cols]).all()


def test_pos_outage_store_has_no_sales_rows_that_day_although_it_traded(demo):
    outages = demo.events("pos_outage")
    # The default demo schedules about one outage per store per 108 event-window days.
    assert len(outages) >= 1
    for row in outages.itertuples():
        assert row.sku == ""
        assert demo.sales.query("date == @row.start_date and location == @row.location").empty
        events = demo.calendar.query("date == @row.start_date and location in ['', @row.location]")
        assert not events["event"].str.contains("closed").any()
        assert row.value_at_risk > 0
        # It traded: shelves emptied (book stock fell with no sale recorded) at that store.
        day, cols = demo.day[row.start_date], demo.location_columns(row.location)
        assert demo.residual[day, cols].sum() < 0


def test_promotions_raise_average_sales_and_are_followed_by_a_dip(demo):
    promo = np.zeros_like(demo.units, dtype=bool)
    dip = np.zeros_like(promo)
    for row in demo.promotions.itertuples():
        d0, d1 = demo.day[row.start_date], demo.day[row.end_date]
        locs = [row.location] if row.location else demo.locs
        cols = [demo.series(loc, row.sku) for loc in locs]
        promo[d0 : d1 + 1, cols] = True
        dip[d1 + 1 : d1 + 4, cols] = True
    # Compare with each promoted series' own normal daily mean (series differ 1000-fold).
    normal = ~promo & ~dip
    normal_mean = (demo.units * normal).sum(axis=0) / np.maximum(normal.sum(axis=0), 1)
    lift = demo.units[promo].sum() / (normal_mean * promo.sum(axis=0)).sum()
    after = demo.units[dip].sum() / (normal_mean * dip.sum(axis=0)).sum()
    assert lift > 1.4
    assert after < 0.9
    # Promotion days sell below the regular price.
    first = demo.promotions.iloc[0]
    locs = [first.location] if first.location else demo.locs
    sold = demo.sales.query(
        "sku == @first.sku and location in @locs and @first.start_date <= date <= @first.end_date"
    )
    expected = round(demo.price[first.sku] * (1 - first.discount_pct / 100), 2)
    assert sold["unit_price"].to_numpy() == pytest.approx(expected, abs=0.005)


def test_truth_rows_refer_to_existing_skus_and_locations_in_the_event_window(demo):
    truth = demo.truth
    window_start = demo.dates[len(demo.dates) - round(EVENT_WINDOW_FRACTION * len(demo.dates))]
    assert set(truth["anomaly_type"]) <= set(ANOMALY_TYPES)
    assert truth["location"].isin(demo.locs).all()
    store_wide = truth["anomaly_type"] == "pos_outage"
    assert truth.loc[~store_wide, "sku"].isin(demo.skus).all()
    assert (truth.loc[store_wide, "sku"] == "").all()
    assert (truth["start_date"] >= window_start).all()
    assert (truth["start_date"] <= truth["end_date"]).all()
    assert (truth["end_date"] <= demo.dates[-1]).all()
    assert (truth["value_at_risk"] > 0).all()


def test_every_anomaly_type_appears_in_the_default_demo(demo):
    counts = demo.truth["anomaly_type"].value_counts()
    assert set(counts.index) == set(ANOMALY_TYPES)
    per_location = demo.truth[demo.truth["anomaly_type"] != "pos_outage"].groupby("location")
    assert per_location.size().min() >= 3


def test_ghost_stock_item_has_no_sales_while_book_stays_positive_and_frozen(demo):
    ghosts = demo.events("ghost_stock")
    for row in ghosts.itertuples():
        s, d0, d1 = (
            demo.series(row.location, row.sku),
            demo.day[row.start_date],
            demo.day[row.end_date],
        )
        assert demo.units[d0 : d1 + 1, s].sum() == 0
        assert demo.received[d0 + 1 : d1 + 1, s].sum() == 0  # frozen book: no reorder
        assert (demo.book[d0:d1, s] == demo.book[d0, s]).all()
        assert demo.book[d1, s] in (0, demo.book[d0, s])  # reset by a cycle count, or not yet
        assert demo.book[d0, s] > 0
        assert row.value_at_risk == pytest.approx(demo.book[d0, s] * demo.price[row.sku], abs=0.01)
        assert demo.units[d0 - 28 : d0, s].sum() > 0  # it was selling before
    # Mostly items with meaningful demand.
    rates = [demo.units[:, demo.series(r.location, r.sku)].mean() for r in ghosts.itertuples()]
    assert np.median(rates) >= 0.5


def test_genuine_stockouts_happen_with_book_at_zero_and_no_sales(demo):
    """Real stockouts (book = shelf = 0 all day, no sales) are a confounder, not ghost stock."""
    # Empty at both ends of the day and nothing delivered: (n_days - 1, n_series).
    out_all_day = (demo.book[:-1] == 0) & (demo.book[1:] == 0) & (demo.received[1:] == 0)
    assert (demo.units[1:][out_all_day] == 0).all()
    assert np.count_nonzero(out_all_day.any(axis=0)) >= 3


def test_slow_mover_has_week_long_zero_runs_without_being_in_truth(demo):
    """The natural confounder of ghost stock: a slow mover, book > 0, no sales for 7+ days."""
    in_truth = {demo.series(r.location, r.sku) for r in demo.truth.itertuples() if r.sku}
    found = 0
    for s in range(demo.units.shape[1]):
        if s in in_truth or demo.units[:, s].mean() >= 0.5:
            continue
        quiet = (demo.units[:, s] == 0) & (demo.book[:, s] > 0)
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, quiet.astype(int), 0])))[::2]
        found += bool(runs.size and runs.max() >= 7)
    assert found >= 5


def test_demand_spikes_drops_and_price_anomalies_show_in_sales(demo):
    for row in demo.events("demand_spike").itertuples():
        s, d0 = demo.series(row.location, row.sku), demo.day[row.start_date]
        d1 = demo.day[row.end_date]
        history = demo.units[d0 - 56 : d0, s].mean()
        assert demo.units[d0 : d1 + 1, s].max() > 2 * history
        assert demo.units[d0 : d1 + 1, s].max() >= history + 12  # at least ~15 units extra
    sold = normal = 0.0
    for row in demo.events("demand_drop").itertuples():
        s, d0, d1 = (
            demo.series(row.location, row.sku),
            demo.day[row.start_date],
            demo.day[row.end_date],
        )
        assert d1 - d0 >= 2
        assert (demo.book[d0 : d1 + 1, s] > 0).all()  # stock was available
        sold += demo.units[d0 : d1 + 1, s].sum()
        normal += demo.units[d0 - 56 : d0, s].mean() * (d1 - d0 + 1)
    # Drops keep 20-45% of normal demand: far below normal, but not the zero run of ghost stock.
    assert 0.1 * normal < sold < 0.55 * normal
    for row in demo.events("price_anomaly").itertuples():
        sold = demo.sales.query(
            "sku == @row.sku and location == @row.location "
            "and @row.start_date <= date <= @row.end_date"
        )
        ratio = sold["unit_price"] / demo.price[row.sku]
        assert ((ratio > 5) | (ratio < 0.55)).all()
        assert not sold.empty


def test_command_writes_bundle_and_prints_summary(tmp_path):
    out = StringIO()
    call_command(
        "generate_demo_bundle",
        str(tmp_path / "bundle"),
        "--locations=2",
        "--skus=20",
        "--days=90",
        "--end-date=2026-03-31",
        stdout=out,
    )
    text = out.getvalue()
    assert (tmp_path / "bundle" / "truth.csv").exists()
    assert re.search(r"inventory\.csv\s+3,600 rows", text)
    assert "ghost_stock" in text and "Done in" in text
    assert pd.read_csv(tmp_path / "bundle" / "inventory.csv")["date"].max() == "2026-03-31"


def test_command_rejects_bad_sizes(tmp_path):
    with pytest.raises(CommandError):
        call_command("generate_demo_bundle", str(tmp_path), "--days=10", stdout=StringIO())
