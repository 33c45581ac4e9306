"""An oracle detector that knows the simulator's true parameters (``oracle.npz``).

Issue 11: a detector can only be judged against what is detectable. The oracle reads the
world's true null model written by ``lab.simulator.generate_bundle`` and turns the bundle's
observations into exact (or tight) p-values under that model:

* **ghost_stock** — for a run of zero-sales days since the last sale, while book stock was on
  hand at the start of each day, the probability of the run under the true demand:
  ``prod_d P(NB(mu_d, r) = 0) = prod_d (r / (r + mu_d))^r``. Closed days, days without stock and
  store-wide zero-sales days (POS outages, visible in the data) do not count.
* **demand_spike** — for the 1-, 2- and 3-day windows ending on a day, the upper tail of the
  window's units under the true NB: exact for one day; for longer windows a negative binomial
  with the window's true mean and variance (moment-matched sum of NBs with the same r). The
  smallest of the three is multiplied by 3 (Bonferroni over the windows). Sales are capped by
  stock, so the tail is conservative.
* **inventory_discrepancy** — the book-stock residual ``on_hand[d] − on_hand[d−1] −
  receipts[d] + units[d]`` is 0 under the null except for a benign correction (rate per
  series-day, size law from the scenario); p = rate × P(|benign delta| ≥ |residual|). Location
  days with no recorded sales (POS outage) and the book reset that ends a zero run at an empty
  book (a cycle count closing ghost stock) are skipped.
* **price_anomaly** — the day's average price against the true levels (list × (1 − promotion
  discount); on SKUs with a tier, anything between tier and list too) in units of the true
  relative price noise (plus the ½-cent rounding); two-sided normal p-value.

Each candidate carries ``p_value``; ``oracle_candidates`` keeps those with ``p ≤ P_CAP`` so
that a threshold can be swept afterwards (``oracle_at``) — as the project's detectors' false
alarms are matched in ``compare_to_oracle``.

Pure numpy/pandas (scipy.stats imported inside functions); reads CSVs directly, no Django.
Never imported by the product.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lab import scoring

ORACLE_FILE = "oracle.npz"
P_CAP = 0.02
"""Candidates with a larger p-value are dropped (the sweep never needs them)."""
SPIKE_WINDOWS_DAYS = (1, 2, 3)
ROUNDING_SD = 0.01 / np.sqrt(12)
"""Standard deviation of rounding a price to whole cents (currency units)."""
SLOW_BELOW_UNITS, FAST_FROM_UNITS = 1.0, 8.0
"""Velocity bands by mean true demand (units/day on open days): slow < 1 ≤ medium < 8 ≤ fast."""
BANDS = ("slow", "medium", "fast")
ORACLE_TYPES = ("ghost_stock", "demand_spike", "inventory_discrepancy", "price_anomaly")


@dataclass
class OracleWorld:
    """A bundle's observations as (n_days, n_series) matrices in ``oracle.npz`` series order,
    with the true parameters. ``units`` / ``on_hand`` / ``receipts`` int64, ``price`` float
    (NaN on days without sales); ``params`` the npz arrays."""

    dates: pd.DatetimeIndex
    sku: np.ndarray  # (n_series,) str
    location: np.ndarray  # (n_series,) str
    units: np.ndarray
    on_hand: np.ndarray
    receipts: np.ndarray
    price: np.ndarray
    params: dict[str, np.ndarray]

    @property
    def n_series(self) -> int:
        return self.units.shape[1]

    def band(self) -> np.ndarray:
        """(n_series,) velocity band name per series from the true mean demand."""
        mu = self.params["mu"]
        open_days = np.maximum((mu > 0).sum(axis=0), 1)
        mean = mu.sum(axis=0) / open_days
        return np.where(
            mean < SLOW_BELOW_UNITS, "slow", np.where(mean < FAST_FROM_UNITS, "medium", "fast")
        )


def world_load(*, directory: Path) -> OracleWorld:
    """Read ``sales.csv``, ``inventory.csv``, ``receipts.csv`` and ``oracle.npz`` of a bundle.

    Raises ``FileNotFoundError`` when ``oracle.npz`` is missing (bundles written before
    issue 11, or not by the simulator).
    """
    directory = Path(directory)
    with np.load(directory / ORACLE_FILE) as npz:
        params = {key: npz[key] for key in npz.files}
    sku, location = params["series_sku"], params["series_location"]
    dates = pd.DatetimeIndex(pd.to_datetime(params["dates"]))
    n_days, n_series = len(dates), len(sku)
    n_skus = int((location == location[0]).sum())
    sku_index = pd.Index(sku[:n_skus])
    loc_index = pd.Index(location[::n_skus])

    def matrix(name: str, column: str, fill: float = 0) -> np.ndarray:
        frame = pd.read_csv(directory / name, dtype={"sku": str, "location": str})
        day = dates.get_indexer(pd.to_datetime(frame["date"]))
        col = loc_index.get_indexer(frame["location"]) * n_skus + sku_index.get_indexer(
            frame["sku"]
        )
        values = frame[column].to_numpy()
        out = np.full((n_days, n_series), fill, dtype=values.dtype if fill == 0 else float)
        out[day, col] = values
        return out

    return OracleWorld(
        dates=dates,
        sku=sku,
        location=location,
        units=matrix("sales.csv", "units"),
        on_hand=matrix("inventory.csv", "on_hand"),
        receipts=matrix("receipts.csv", "units"),
        price=matrix("sales.csv", "unit_price", fill=np.nan),
        params=params,
    )


def _outage_days(world: OracleWorld) -> np.ndarray:
    """(n_days, n_series) bool: the series' location recorded no sales although it traded."""
    loc_codes, loc_idx = np.unique(world.location, return_inverse=True)
    mu = world.params["mu"]
    sold = np.zeros((len(world.dates), len(loc_codes)))
    expected = np.zeros_like(sold)
    np.add.at(sold.T, loc_idx, world.units.T)
    np.add.at(expected.T, loc_idx, mu.T)
    return ((sold == 0) & (expected > 0))[:, loc_idx]


def ghost_candidates(world: OracleWorld, outage: np.ndarray) -> pd.DataFrame:
    """Zero runs with stock on hand and their probability under the true demand.

    Returns columns day (index of the as-of day), series, start (first day of the run),
    p_value, expected (units expected over the run).
    """
    mu, r = world.params["mu"], world.params["nb_size"][None, :]
    units, book = world.units, world.on_hand
    available = np.zeros_like(book)
    available[1:] = book[:-1] + world.receipts[1:]  # book stock at the start of the day
    counts = (units == 0) & (available > 0) & (mu > 0) & ~outage
    log_p0 = np.where(counts, r * np.log(r / (r + mu)), 0.0)
    exp_units = np.where(counts, mu, 0.0)
    n_days = units.shape[0]
    day = np.arange(n_days)[:, None]
    last_sale = np.maximum.accumulate(np.where(units > 0, day, -1), axis=0)
    cum = np.vstack([np.zeros((1, units.shape[1])), np.cumsum(log_p0, axis=0)])
    cum_mu = np.vstack([np.zeros((1, units.shape[1])), np.cumsum(exp_units, axis=0)])
    cols = np.arange(units.shape[1])[None, :]
    run_log_p = cum[day + 1, cols] - cum[last_sale + 1, cols]
    run_mu = cum_mu[day + 1, cols] - cum_mu[last_sale + 1, cols]
    hit = (units == 0) & (book > 0) & (last_sale >= 0) & (run_log_p <= np.log(P_CAP))
    d, s = np.nonzero(hit)
    return pd.DataFrame(
        {
            "day": d,
            "series": s,
            "start": last_sale[d, s] + 1,
            "p_value": np.exp(run_log_p[d, s]),
            "expected": run_mu[d, s],
        }
    )


def _window_sum(a: np.ndarray, w: int) -> np.ndarray:
    """Sum over the ``w`` days ending on each day, (n_days, n_series); NaN for the first w-1."""
    c = np.cumsum(np.vstack([np.zeros((1, a.shape[1])), a]), axis=0)
    out = np.full(a.shape, np.nan)
    out[w - 1 :] = c[w:] - c[:-w]
    return out


def spike_candidates(world: OracleWorld) -> pd.DataFrame:
    """Upper tails of 1-3-day unit sums under the true NB. Columns day, series, start,
    p_value, expected (units expected over the chosen window), actual."""
    from scipy.stats import nbinom

    mu, r = world.params["mu"], world.params["nb_size"][None, :]
    units = world.units.astype(float)
    var = mu + mu**2 / r
    best_p = np.ones_like(mu)
    best_w = np.ones(mu.shape, dtype=np.int64)
    best_m = np.zeros_like(mu)
    best_x = np.zeros_like(mu)
    for w in SPIKE_WINDOWS_DAYS:
        m, v, x = _window_sum(mu, w), _window_sum(var, w), _window_sum(units, w)
        ok = (m > 0) & np.isfinite(x) & (x > 0)
        p = np.ones_like(mu)
        excess = np.maximum(v[ok] - m[ok], 1e-12)
        size = m[ok] ** 2 / excess
        p[ok] = nbinom.sf(x[ok] - 1, size, size / (size + m[ok]))
        better = p < best_p
        best_p = np.where(better, p, best_p)
        best_w = np.where(better, w, best_w)
        best_m = np.where(better, np.nan_to_num(m), best_m)
        best_x = np.where(better, np.nan_to_num(x), best_x)
    best_p = np.minimum(1.0, best_p * len(SPIKE_WINDOWS_DAYS))
    d, s = np.nonzero(best_p <= P_CAP)
    return pd.DataFrame(
        {
            "day": d,
            "series": s,
            "start": d - best_w[d, s] + 1,
            "p_value": best_p[d, s],
            "expected": best_m[d, s],
            "actual": best_x[d, s],
        }
    )


def benign_tail(world: OracleWorld, size: np.ndarray, shelf: np.ndarray, series: np.ndarray):
    """P(|benign delta| ≥ size) per residual (size ≥ 1 int, shelf units before it)."""
    from scipy.stats import poisson

    law = str(world.params["benign_law"])
    if law == "volume":
        lam = world.params["benign_volume_scale"][series] * np.sqrt(np.maximum(shelf, 0))
        return poisson.sf(size - 2, lam)  # |delta| = 1 + Poisson(lam) ≥ size
    deltas = np.abs(world.params["benign_deltas"])
    probs = world.params["benign_delta_probs"]
    return (probs[None, :] * (deltas[None, :] >= size[:, None])).sum(axis=1)


def discrepancy_candidates(world: OracleWorld, outage: np.ndarray) -> pd.DataFrame:
    """Book residuals judged by the true benign-correction law. Columns day, series, start,
    p_value, residual (units)."""
    book, units = world.on_hand, world.units
    residual = np.zeros_like(book)
    residual[1:] = book[1:] - book[:-1] - world.receipts[1:] + units[1:]
    recent = np.zeros_like(units)
    c = np.cumsum(np.vstack([np.zeros((1, units.shape[1]), dtype=units.dtype), units]), axis=0)
    recent[2:] = c[3:] - c[:-3]  # units over the last 3 days
    reset = (residual < 0) & (book == 0) & (recent == 0)
    d, s = np.nonzero((residual != 0) & ~outage & ~reset)
    x = residual[d, s]
    tail = benign_tail(world, np.abs(x), book[d, s] - x, s)
    p = world.params["benign_rate"][s] * tail
    keep = p <= P_CAP
    return pd.DataFrame(
        {"day": d[keep], "series": s[keep], "start": d[keep], "p_value": p[keep]}
    ).assign(residual=x[keep])


def price_candidates(world: OracleWorld) -> pd.DataFrame:
    """Daily average prices far from every true level, in units of the true noise. Columns
    day, series, start, p_value, level (the nearest true level)."""
    from scipy.stats import norm

    par = world.params
    n_skus = len(par["tier_price"])
    sku_idx = np.arange(world.n_series) % n_skus
    listed = par["regular_price"][None, :] * (1.0 - par["promo_discount"].astype(float))
    price = world.price
    nearest = listed.copy()
    tier_disc = par["tier_discount"][sku_idx][None, :]
    has_tier = (tier_disc > 0) & (par["promo_discount"] == 0)
    lo_share, hi_share = par["tier_unit_share_range"]
    low = listed * (1.0 - hi_share * tier_disc)
    high = listed * (1.0 - lo_share * tier_disc)
    inside = np.clip(price, low, high)
    use_tier = has_tier & (np.abs(inside - price) < np.abs(listed - price))
    nearest = np.where(use_tier, inside, listed)
    sd = np.sqrt((par["price_noise_sd"][None, :] * nearest) ** 2 + ROUNDING_SD**2)
    z = np.abs(price - nearest) / sd
    with np.errstate(invalid="ignore"):
        hit = np.isfinite(z) & (z > norm.isf(P_CAP / 2))
    d, s = np.nonzero(hit)
    return pd.DataFrame(
        {
            "day": d,
            "series": s,
            "start": d,
            "p_value": 2 * norm.sf(z[d, s]),
            "level": nearest[d, s],
        }
    )


def oracle_candidates(world: OracleWorld) -> pd.DataFrame:
    """Every oracle candidate with ``p_value ≤ P_CAP``, as labelled findings for
    ``lab.scoring``: anomaly_type, sku, location, start_date, end_date, as_of, value_at_risk,
    parent (-1), p_value; plus series (int) and day (int)."""
    outage = _outage_days(world)
    price = world.params["regular_price"]
    parts = []
    for kind, frame in (
        ("ghost_stock", ghost_candidates(world, outage)),
        ("demand_spike", spike_candidates(world)),
        ("inventory_discrepancy", discrepancy_candidates(world, outage)),
        ("price_anomaly", price_candidates(world)),
    ):
        if frame.empty:
            continue
        s = frame["series"].to_numpy()
        if kind == "ghost_stock":
            value = frame["expected"].to_numpy() * price[s]
        elif kind == "demand_spike":
            value = (frame["actual"] - frame["expected"]).to_numpy() * price[s]
        elif kind == "inventory_discrepancy":
            value = np.abs(frame["residual"].to_numpy()) * price[s]
        else:
            value = (
                np.abs(world.price[frame["day"], s] - frame["level"]) * world.units[frame["day"], s]
            )
        parts.append(
            pd.DataFrame(
                {
                    "anomaly_type": kind,
                    "sku": world.sku[s],
                    "location": world.location[s],
                    "start_date": world.dates[frame["start"].to_numpy()],
                    "end_date": world.dates[frame["day"].to_numpy()],
                    "as_of": world.dates[frame["day"].to_numpy()],
                    "value_at_risk": np.round(value, 2),
                    "parent": -1,
                    "p_value": frame["p_value"].to_numpy(float),
                    "series": s,
                    "day": frame["day"].to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            columns=[*scoring.EPISODE_COLUMNS[:5], "as_of", "value_at_risk", "parent", "p_value"]
        )
    return pd.concat(parts, ignore_index=True)


def oracle_at(candidates: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """The candidates the oracle reports at threshold ``alpha`` (``p_value ≤ alpha``)."""
    return candidates[candidates["p_value"] <= alpha]


def episodes_of(findings: pd.DataFrame) -> pd.DataFrame:
    """``scoring.findings_episodes`` of labelled findings (empty-safe)."""
    if findings.empty:
        return scoring.findings_episodes(pd.DataFrame(columns=[*scoring.EPISODE_COLUMNS, "as_of"]))
    return scoring.findings_episodes(findings)


def band_table(scored: scoring.Scored, band_of: pd.Series, window: scoring.Window) -> pd.DataFrame:
    """Recall, precision, false alarms per 1,000 SKU-location-days and median delay per anomaly
    type and velocity band.

    ``band_of`` maps "location\\x1fsku" → band name; the false-alarm rate of a band uses the
    number of SKU-locations in it. Returns one row per (type, band) with columns events,
    found, recall, episodes, precision, false_alarms_per_1k, delay_median.
    """
    n_in_band = band_of.value_counts()
    rows = []
    ev_band = (scored.truth["location"] + "\x1f" + scored.truth["sku"]).map(band_of)
    ep_band = (scored.episodes["location"] + "\x1f" + scored.episodes["sku"]).map(band_of)
    for kind in ORACLE_TYPES:
        for band in BANDS:
            ev = scored.truth[(scored.truth["anomaly_type"] == kind) & (ev_band == band)]
            ep = scored.episodes[(scored.episodes["anomaly_type"] == kind) & (ep_band == band)]
            n_ev, n_found = len(ev), int(ev["found"].sum())
            n_ep, n_true = len(ep), int(ep["matched"].sum())
            sku_days = int(n_in_band.get(band, 0)) * window.days / 1000.0
            rows.append(
                {
                    "type": kind,
                    "band": band,
                    "events": n_ev,
                    "found": n_found,
                    "recall": n_found / n_ev if n_ev else np.nan,
                    "episodes": n_ep,
                    "precision": n_true / n_ep if n_ep else np.nan,
                    "false_alarms_per_1k": (n_ep - n_true) / sku_days if sku_days else np.nan,
                    "delay_median": float(ev["delay"].median()) if n_found else np.nan,
                }
            )
    return pd.DataFrame(rows)


def alpha_grid(candidates: pd.DataFrame) -> np.ndarray:
    """Thresholds to sweep: 0 and a log grid from 1e-15 to ``P_CAP``."""
    return np.r_[0.0, np.logspace(-15, np.log10(P_CAP), 61)]


def sweep(
    candidates: pd.DataFrame, truth: pd.DataFrame, window: scoring.Window, kind: str
) -> pd.DataFrame:
    """The oracle's recall and false alarms of ``kind`` over ``alpha_grid``.

    Columns alpha, events, found, recall, episodes, false_alarms (non-matching episodes first
    detected in the window), precision, delay_median. ``truth`` as for ``scoring.score``.
    """
    own = candidates[candidates["anomaly_type"] == kind]
    rows = []
    for alpha in alpha_grid(candidates):
        table = scoring.score(episodes_of(oracle_at(own, alpha)), truth, window).table
        row = table.loc[kind] if kind in table.index else None
        events = int(row["events"]) if row is not None else 0
        found = int(row["found"]) if row is not None else 0
        episodes = int(row["episodes"]) if row is not None else 0
        true_episodes = int(row["true_episodes"]) if row is not None else 0
        rows.append(
            {
                "alpha": alpha,
                "events": events,
                "found": found,
                "recall": found / events if events else np.nan,
                "episodes": episodes,
                "false_alarms": episodes - true_episodes,
                "precision": true_episodes / episodes if episodes else np.nan,
                "delay_median": row["delay_median"] if row is not None else np.nan,
            }
        )
    return pd.DataFrame(rows)


def compare_to_oracle(project: scoring.Scored, curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The project's recall as a share of the oracle's recall at the same false-alarm count.

    ``curves``: ``sweep`` per type (or several bundles' sweeps summed by ``curves_sum``). For
    each type: the project's false alarms F (non-matching episodes of that type first detected
    in the window); the oracle's threshold is the largest swept alpha whose false alarms are
    ≤ F (alpha = 0 when none is). Columns type, events, project_found, project_recall,
    project_false_alarms, oracle_alpha, oracle_found, oracle_recall, oracle_false_alarms,
    recall_ratio (project / oracle recall).
    """
    rows = []
    table = project.table
    for kind, curve in curves.items():
        if kind in table.index:
            p_found = int(table.loc[kind, "found"])
            p_fa = int(table.loc[kind, "episodes"] - table.loc[kind, "true_episodes"])
        else:
            p_found, p_fa = 0, 0
        rows.append(_matched(kind, p_found, p_fa, curve))
    return pd.DataFrame(rows)


def _matched(kind: str, p_found: int, p_fa: int, curve: pd.DataFrame) -> dict:
    fits = curve[curve["false_alarms"] <= p_fa]
    pick = fits.iloc[-1] if len(fits) else curve.iloc[0]
    events = int(pick["events"])
    p_recall = p_found / events if events else np.nan
    o_recall = pick["found"] / events if events else np.nan
    return {
        "type": kind,
        "events": events,
        "project_found": p_found,
        "project_recall": p_recall,
        "project_false_alarms": p_fa,
        "oracle_alpha": float(pick["alpha"]),
        "oracle_found": int(pick["found"]),
        "oracle_recall": o_recall,
        "oracle_false_alarms": int(pick["false_alarms"]),
        "recall_ratio": p_recall / o_recall if o_recall and o_recall > 0 else np.nan,
    }


def pooled_comparison(parts: list[tuple[scoring.Scored, dict[str, pd.DataFrame]]]) -> pd.DataFrame:
    """``compare_to_oracle`` over several bundles (e.g. the seeds of one scenario): the
    project's hits and false alarms are summed, and so are the oracle's curves at each alpha
    (one threshold for all bundles)."""
    rows = []
    for kind in ORACLE_TYPES:
        p_found = p_fa = 0
        curve = None
        for scored, curves in parts:
            table = scored.table
            if kind in table.index:
                p_found += int(table.loc[kind, "found"])
                p_fa += int(table.loc[kind, "episodes"] - table.loc[kind, "true_episodes"])
            c = curves[kind][["alpha", "events", "found", "false_alarms"]]
            curve = (
                c
                if curve is None
                else curve.assign(
                    events=curve["events"] + c["events"].to_numpy(),
                    found=curve["found"] + c["found"].to_numpy(),
                    false_alarms=curve["false_alarms"] + c["false_alarms"].to_numpy(),
                )
            )
        rows.append(_matched(kind, p_found, p_fa, curve))
    return pd.DataFrame(rows)


def band_map(world: OracleWorld) -> pd.Series:
    """ "location\\x1fsku" → velocity band, for ``band_table``."""
    return pd.Series(world.band(), index=pd.Index(world.location) + "\x1f" + pd.Index(world.sku))
