"""Score detector findings against a ground truth: episodes, matching and the metrics table.

Pure pandas/numpy (no Django): ``lab.evaluation`` drives a walk-forward run and
hands the collected findings and the simulator's ``truth.csv`` here.

Definitions (``docs/DETECTION.md`` shows them with results):

* An **episode** is what an ops user sees as one anomaly: the findings of one type, SKU and
  location whose date ranges overlap or touch within ``merge_gap_days`` — the same rule the
  detection service uses to extend an anomaly. Repeat findings of one episode count once.
  Only top-level findings count: a SKU finding grouped under a location- or category-level
  finding (``parent`` ≥ 0) is not listed separately.
* An episode **matches** a truth event of the same type, location and SKU (blank SKU for a
  location-level event) when its date range overlaps the event's range widened by
  ``MATCH_BEFORE_DAYS[type]`` before the start and ``MATCH_AFTER_DAYS`` after the end. A finding
  of the wrong type is never a hit.
* **Event recall** = matched events / events starting in the window; **value-weighted recall**
  weighs each event by its ``value_at_risk``; **precision** = matching episodes / episodes first
  detected in the window, where an episode may match any event (one that began before the
  window and is still going on is a correct finding); F1 is their harmonic mean.
* **Detection delay** of a matched event = first detection date of its earliest matching
  episode − event start, in days, floored at 0.
* **False alarms per 1,000 SKU-location-days** = non-matching episodes / (SKU-locations × window
  days / 1,000); **new findings per location per day** = episodes / (locations × window days).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MATCH_BEFORE_DAYS: dict[str, int] = {
    # A ghost-stock finding dates the problem from the day after the last sale, which for a
    # slow mover can be well before the shelf emptied.
    "ghost_stock": 14,
}
MATCH_BEFORE_DEFAULT = 2
MATCH_AFTER_DAYS = 2

EPISODE_COLUMNS = [
    "anomaly_type",
    "sku",
    "location",
    "start_date",
    "end_date",
    "first_detected",
    "last_detected",
    "findings",
    "value_at_risk",
]


def findings_episodes(findings: pd.DataFrame, *, merge_gap_days: int = 1) -> pd.DataFrame:
    """Merge per-run findings into episodes.

    ``findings``: one row per finding per run with columns anomaly_type, sku (str, "" for a
    location-level finding), location (str), start_date, end_date, as_of (datetime64: the run's
    date), value_at_risk (float, money) and optionally parent (int, ≥ 0 for a grouped child;
    those rows are dropped). Returns ``EPISODE_COLUMNS``: dates are datetime64, ``findings``
    the number of rows merged, ``value_at_risk`` the largest of them.
    """
    if "parent" in findings.columns:
        findings = findings[findings["parent"] < 0]
    if findings.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in EPISODE_COLUMNS})
    frame = findings.sort_values(["anomaly_type", "location", "sku", "start_date", "as_of"])
    key = frame[["anomaly_type", "location", "sku"]].astype(str).agg("\x1f".join, axis=1)
    key = key.to_numpy()
    start = frame["start_date"].to_numpy("datetime64[D]").astype(np.int64)
    end = frame["end_date"].to_numpy("datetime64[D]").astype(np.int64)
    # Running maximum of the end date within each key: a new episode starts when the key
    # changes or the start is more than merge_gap_days after everything seen so far.
    new_key = np.r_[True, key[1:] != key[:-1]]
    group_id = np.cumsum(new_key) - 1
    running_end = pd.Series(end).groupby(group_id).cummax().to_numpy()
    prev_end = np.r_[np.iinfo(np.int64).min // 2, running_end[:-1]]
    new_episode = new_key | (start > prev_end + merge_gap_days)
    episode = np.cumsum(new_episode) - 1
    grouped = frame.assign(_episode=episode).groupby("_episode", sort=True)
    out = grouped.agg(
        anomaly_type=("anomaly_type", "first"),
        sku=("sku", "first"),
        location=("location", "first"),
        start_date=("start_date", "min"),
        end_date=("end_date", "max"),
        first_detected=("as_of", "min"),
        last_detected=("as_of", "max"),
        findings=("as_of", "size"),
        value_at_risk=("value_at_risk", "max"),
    )
    return out.reset_index(drop=True)[EPISODE_COLUMNS]


def match_episodes(episodes: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Pairs (episode index, event index, delay days) of episodes matching truth events.

    ``truth`` columns: anomaly_type, sku ("" for location-level), location, start_date,
    end_date (datetime64). Returns columns ``episode``, ``event``, ``delay`` (int days ≥ 0).
    """
    if episodes.empty or truth.empty:
        return pd.DataFrame({"episode": [], "event": [], "delay": []}, dtype="int64")
    left = episodes.reset_index(names="episode")
    right = truth.reset_index(names="event")
    pairs = left.merge(
        right, on=["anomaly_type", "location", "sku"], suffixes=("_ep", "_ev"), how="inner"
    )
    before = pairs["anomaly_type"].map(MATCH_BEFORE_DAYS).fillna(MATCH_BEFORE_DEFAULT)
    lo = pairs["start_date_ev"] - pd.to_timedelta(before, unit="D")
    hi = pairs["end_date_ev"] + pd.Timedelta(days=MATCH_AFTER_DAYS)
    overlap = (pairs["start_date_ep"] <= hi) & (pairs["end_date_ep"] >= lo)
    pairs = pairs[overlap]
    delay = (pairs["first_detected"] - pairs["start_date_ev"]).dt.days.clip(lower=0)
    return pd.DataFrame(
        {
            "episode": pairs["episode"].to_numpy("int64"),
            "event": pairs["event"].to_numpy("int64"),
            "delay": delay.to_numpy("int64"),
        }
    )


@dataclass(frozen=True)
class Window:
    """The evaluated window and the size of the estate (for rates)."""

    start: pd.Timestamp
    end: pd.Timestamp
    n_series: int  # SKU-locations
    n_locations: int

    @property
    def days(self) -> int:
        return int((self.end - self.start).days) + 1


METRIC_COLUMNS = [
    "events",
    "found",
    "recall",
    "value_recall",
    "episodes",
    "true_episodes",
    "precision",
    "f1",
    "delay_median",
    "delay_p90",
    "false_alarms_per_1k",
    "findings_per_location_day",
]


@dataclass(frozen=True)
class Scored:
    """Episodes and events of the window, annotated, and the metrics table.

    ``episodes``: ``EPISODE_COLUMNS`` + ``matched`` (bool). ``truth``: truth columns + ``found``
    (bool) and ``delay`` (float days, NaN when missed). ``table``: ``METRIC_COLUMNS`` per type
    and ``overall``.
    """

    episodes: pd.DataFrame
    truth: pd.DataFrame
    table: pd.DataFrame


def score(episodes: pd.DataFrame, truth: pd.DataFrame, window: Window) -> Scored:
    """Match the window's episodes to its events and compute the metrics table.

    Events count when they start in the window, episodes when first detected in it. The table
    has one row per anomaly type seen in truth or findings plus ``overall``; rates are NaN
    where undefined (no events, no episodes).
    """
    detected = episodes["first_detected"].between(window.start, window.end)
    episodes = episodes[detected].reset_index(drop=True)
    # An episode matching an event that began before the window (still going on when the
    # walk-forward starts) is a correct finding; only the window's events count for recall.
    everything = truth.reset_index(drop=True)
    matched = np.zeros(len(episodes), dtype=bool)
    matched[match_episodes(episodes, everything)["episode"].unique()] = True
    truth = everything[everything["start_date"].between(window.start, window.end)]
    truth = truth.reset_index(drop=True)
    pairs = match_episodes(episodes, truth)
    event_delay = pairs.groupby("event")["delay"].min()
    found = np.zeros(len(truth), dtype=bool)
    found[event_delay.index.to_numpy()] = True
    delay = np.full(len(truth), np.nan)
    delay[event_delay.index.to_numpy()] = event_delay.to_numpy()
    episodes = episodes.assign(matched=matched)
    truth = truth.assign(found=found, delay=delay)

    types = sorted(set(truth["anomaly_type"]) | set(episodes["anomaly_type"]))
    rows = {}
    for kind in [*types, "overall"]:
        every_ev = kind == "overall"
        ev = np.ones(len(truth), bool) if every_ev else (truth["anomaly_type"] == kind).to_numpy()
        ep = (
            np.ones(len(episodes), bool)
            if every_ev
            else (episodes["anomaly_type"] == kind).to_numpy()
        )
        rows[kind] = _metrics(truth[ev], found[ev], delay[ev], matched[ep], window)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=METRIC_COLUMNS)
    return Scored(episodes=episodes, truth=truth, table=table)


def _metrics(
    truth: pd.DataFrame, found: np.ndarray, delay: np.ndarray, true_ep: np.ndarray, window: Window
) -> list[float]:
    n_events, n_found = len(truth), int(found.sum())
    n_ep, n_true = len(true_ep), int(true_ep.sum())
    recall = n_found / n_events if n_events else np.nan
    value = truth["value_at_risk"].to_numpy(float)
    value_recall = value[found].sum() / value.sum() if value.sum() > 0 else np.nan
    precision = n_true / n_ep if n_ep else np.nan
    f1 = (
        2 * precision * recall / (precision + recall)
        if n_ep and n_events and precision + recall > 0
        else np.nan
    )
    delays = delay[found]
    sku_days = window.n_series * window.days / 1000.0
    return [
        n_events,
        n_found,
        recall,
        value_recall,
        n_ep,
        n_true,
        precision,
        f1,
        float(np.median(delays)) if delays.size else np.nan,
        float(np.quantile(delays, 0.9)) if delays.size else np.nan,
        (n_ep - n_true) / sku_days if sku_days else np.nan,
        n_ep / (window.n_locations * window.days),
    ]


def delay_by_rate(scored: Scored, *, kind: str, threshold: float) -> dict[str, float]:
    """Events, hits and median detection delay of ``kind`` split by pre-event demand rate.

    ``scored.truth`` needs a ``rate`` column (mean units/day before the event). Returns keys
    ``fast_events, fast_found, fast_delay_median`` and the same for ``slow``; fast means
    ``rate >= threshold``.
    """
    truth = scored.truth[scored.truth["anomaly_type"] == kind]
    out: dict[str, float] = {}
    for band, part in (
        ("fast", truth[truth["rate"] >= threshold]),
        ("slow", truth[truth["rate"] < threshold]),
    ):
        hit = part["delay"].dropna()
        out[f"{band}_events"] = float(len(part))
        out[f"{band}_found"] = float(hit.size)
        out[f"{band}_delay_median"] = float(hit.median()) if hit.size else np.nan
    return out


def collateral_findings(scored: Scored, days: pd.DataFrame) -> np.ndarray:
    """Unmatched top-level SKU episodes caused by special location-days (outages, closures).

    ``days``: columns location (str), date (datetime64), one row per POS-outage or closed
    day. An episode counts for a day when it is SKU-level, at that location, matches no truth
    event, starts on the day or the day after and is first detected by the day after (a
    zero-sales day read as a drop or as the start of a zero run). Returns the count per row of
    ``days`` (int array).
    """
    eps = scored.episodes
    eps = eps[(eps["sku"] != "") & ~eps["matched"]]
    counts = np.zeros(len(days), dtype=int)
    for i, (loc, day) in enumerate(zip(days["location"], days["date"], strict=True)):
        here = eps[eps["location"] == loc]
        starts, soon = here["start_date"], day + pd.Timedelta(days=1)
        caused = (starts >= day) & (starts <= soon) & (here["first_detected"] <= soon)
        counts[i] = int(caused.sum())
    return counts
