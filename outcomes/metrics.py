"""Effectiveness and ROI of the detectors: pure functions over pandas frames (no Django).

The services in ``outcomes.services.reports`` load the frames below from the database and call
these functions; tests call them on small hand-built frames.

Frames
------
``anomalies`` — one row per anomaly (``ANOMALY_COLUMNS``); timestamps are naive local time:

==========================  ================  ==================================================
anomaly_id                  int64
anomaly_type                str               ``AnomalyType`` value
detector                    str               detector that raised it (``DETECTOR_OF_TYPE``)
location                    str               location code
score                       float64           detector score
verdict                     str / NA          true_positive | false_positive | expected |
                                              inconclusive; NA = not labelled (yet)
created_at                  datetime64[ns]    when detection raised it (response clocks start)
acknowledged_at             datetime64[ns]    NaT if never acknowledged
closed_at                   datetime64[ns]    NaT until resolved or dismissed
first_detected_on           datetime64[ns]    as-of date of the first run that found it
start_date                  datetime64[ns]    first day of the condition
recovered_value             float64           money recovered (outcome), 0 when none
expected_units_per_day      float64           expected sales/day (ghost stock), NaN if unknown
unit_price                  float64           regular shelf price, NaN if unknown
outcome_at                  datetime64[ns]    when the verdict was recorded, NaT if none
==========================  ================  ==================================================

``counts`` — one row per cycle count done (``COUNT_COLUMNS``): ``count_id`` (int64),
``location`` (str), ``is_control`` (bool), ``counted_at`` (datetime64[ns]),
``book_on_hand`` (int64, book stock the count was compared with), ``counted_quantity``
(int64), ``population`` (float64: control counts, the number of eligible SKU/locations the
sample was drawn from; NaN otherwise).

``misses`` — missed anomalies reported by staff (``MISS_COLUMNS``): ``anomaly_type`` (str),
``location`` (str), ``start_date`` (datetime64[ns]), ``reported_at`` (datetime64[ns]).

Definitions
-----------
- *Labelled* findings have a decided verdict: true positive, false positive or expected.
  Inconclusive and unlabelled findings are left out of precision.
- **precision** = TP / labelled; **false-positive rate** = FP / labelled: the share of decided
  findings that were false alarms. That is the false discovery proportion (Benjamini &
  Hochberg 1995), the only "false-positive rate" measurable here: the negatives (everything
  not flagged) are not labelled, so FP / (FP + TN) is not. ``expected`` findings (the data
  really was unusual, but a known event explains it) count against precision, not as false
  alarms, so precision + FPR + expected share = 1.
- **time to acknowledge** = first response - raised (``created_at``), the first response being
  the acknowledgement or, for a finding closed without one, the closing; **time to resolve**
  = closed - raised (resolved or dismissed). Means in hours.
- **resolution rate** = closed / raised.
- **recall** (``recall_estimate``): see there.
- **ROI** (``roi_totals``): see there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from anomalies.detectors import REGISTRY

TRUE_POSITIVE = "true_positive"
FALSE_POSITIVE = "false_positive"
EXPECTED = "expected"
INCONCLUSIVE = "inconclusive"
LABELLED_VERDICTS: tuple[str, ...] = (TRUE_POSITIVE, FALSE_POSITIVE, EXPECTED)

# Which detector raises which anomaly type (the registry's names; a type missing here is
# raised by the detector of the same name).
# Anomaly types raised by a detector of another name (from the registry: POS outages come
# from the inventory-discrepancy detector).
DETECTOR_OF_TYPE: dict[str, str] = {
    anomaly_type: name
    for name, spec in REGISTRY.items()
    for anomaly_type in spec.anomaly_types
    if anomaly_type != name
}
# Control counts can only reveal phantom inventory: the misses they find are ghost stock.
CONTROL_COUNT_TYPE = "ghost_stock"

PERIODS: tuple[str, ...] = ("week", "month")
SECONDS_PER_HOUR = 3600.0

ANOMALY_COLUMNS: dict[str, str] = {
    "anomaly_id": "int64",
    "anomaly_type": "object",
    "detector": "object",
    "location": "object",
    "score": "float64",
    "verdict": "object",
    "created_at": "datetime64[ns]",
    "acknowledged_at": "datetime64[ns]",
    "closed_at": "datetime64[ns]",
    "first_detected_on": "datetime64[ns]",
    "start_date": "datetime64[ns]",
    "recovered_value": "float64",
    "expected_units_per_day": "float64",
    "unit_price": "float64",
    "outcome_at": "datetime64[ns]",
}
COUNT_COLUMNS: dict[str, str] = {
    "count_id": "int64",
    "location": "object",
    "is_control": "bool",
    "counted_at": "datetime64[ns]",
    "book_on_hand": "int64",
    "counted_quantity": "int64",
    "population": "float64",
}
MISS_COLUMNS: dict[str, str] = {
    "anomaly_type": "object",
    "location": "object",
    "start_date": "datetime64[ns]",
    "reported_at": "datetime64[ns]",
}


def detector_of(anomaly_type: str) -> str:
    """The registry name of the detector that raises ``anomaly_type``."""
    return DETECTOR_OF_TYPE.get(anomaly_type, anomaly_type)


def make_frame(rows: Sequence[dict[str, Any]] | dict[str, Sequence], columns: dict[str, str]):
    """A frame with exactly ``columns`` (missing ones filled with NA) coerced to their dtypes.

    ``rows`` is a list of row dicts or a dict of column sequences. Used by the loaders and by
    tests to build valid frames.
    """
    frame = pd.DataFrame(rows) if len(rows) else pd.DataFrame(columns=list(columns))
    for name, dtype in columns.items():
        if name not in frame.columns:
            frame[name] = None
        if dtype.startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name], format="ISO8601").astype(dtype)
        elif dtype == "object":
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        else:
            frame[name] = frame[name].astype(dtype)
    return frame[list(columns)]


# --- periods and trends ------------------------------------------------------------------------


def period_start(dates: pd.Series, period: str) -> pd.Series:
    """Start of the week (Monday) or month each date falls in, as ``datetime64[ns]`` days.

    NaT stays NaT. Raises ``ValueError`` for a period other than ``"week"`` / ``"month"``.
    """
    if period not in PERIODS:
        raise ValueError(f"Unknown period {period!r}; use one of {', '.join(PERIODS)}.")
    days = pd.to_datetime(dates).dt.normalize()
    if period == "week":
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return days - pd.to_timedelta(days.dt.day - 1, unit="D")


def period_range(start: pd.Timestamp, end: pd.Timestamp, period: str) -> list[pd.Timestamp]:
    """The starts of every period overlapping ``start``..``end`` (inclusive), in order."""
    first = period_start(pd.Series([pd.Timestamp(start)]), period).iloc[0]
    freq = "7D" if period == "week" else "MS"
    return list(pd.date_range(first, pd.Timestamp(end), freq=freq))


def trend(values: Sequence[float | None]) -> dict[str, float | None]:
    """Direction of a metric over consecutive periods (missing periods skipped).

    ``slope``: least-squares slope per period over the periods that have a value (their
    position in ``values`` is the x axis); ``change``: last value minus the one before it.
    Both ``None`` with fewer than two values.
    """
    y = pd.to_numeric(pd.Series(list(values), dtype="object"), errors="coerce").astype(float)
    known = y.notna().to_numpy()
    if known.sum() < 2:
        return {"slope": None, "change": None}
    x = np.flatnonzero(known).astype(float)
    v = y.to_numpy()[known]
    slope = float(np.polyfit(x, v, 1)[0])
    return {"slope": slope, "change": float(v[-1] - v[-2])}


# --- precision, response times, resolution -----------------------------------------------------


def _groups(frame: pd.DataFrame, by: Sequence[str]):
    return frame.groupby(list(by), sort=True, dropna=False) if by else [((), frame)]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def precision_table(anomalies: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Verdict counts, precision and false-positive rate per group of ``by`` columns.

    Columns: ``*by, raised, labelled, true_positive, false_positive, expected, inconclusive,
    precision, false_positive_rate`` (NaN rates when nothing is labelled). With ``by=()``
    one row for everything.
    """
    rows = []
    for key, group in _groups(anomalies, by):
        verdict = group["verdict"]
        tp = int((verdict == TRUE_POSITIVE).sum())
        fp = int((verdict == FALSE_POSITIVE).sum())
        ex = int((verdict == EXPECTED).sum())
        labelled = tp + fp + ex
        rows.append(
            {
                **_key(by, key),
                "raised": len(group),
                "labelled": labelled,
                "true_positive": tp,
                "false_positive": fp,
                "expected": ex,
                "inconclusive": int((verdict == INCONCLUSIVE).sum()),
                "precision": _ratio(tp, labelled),
                "false_positive_rate": _ratio(fp, labelled),
            }
        )
    return _table(rows, by, ["raised", "labelled", "true_positive", "false_positive"])


def response_times(anomalies: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean time to acknowledge and to resolve (hours) per group of ``by`` columns.

    Columns: ``*by, responded, mtta_hours, closed, mttr_hours`` (``responded``: findings
    acknowledged or closed; ``closed``: resolved or dismissed; NaN means without any).
    """
    first = anomalies["acknowledged_at"].fillna(anomalies["closed_at"])
    frame = anomalies.assign(
        _tta=(first - anomalies["created_at"]).dt.total_seconds() / SECONDS_PER_HOUR,
        _ttr=(anomalies["closed_at"] - anomalies["created_at"]).dt.total_seconds()
        / SECONDS_PER_HOUR,
    )
    rows = []
    for key, group in _groups(frame, by):
        rows.append(
            {
                **_key(by, key),
                "responded": int(group["_tta"].notna().sum()),
                "mtta_hours": float(group["_tta"].mean()),
                "closed": int(group["_ttr"].notna().sum()),
                "mttr_hours": float(group["_ttr"].mean()),
            }
        )
    return _table(rows, by, ["responded", "closed"])


def resolution_table(anomalies: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Share of raised findings closed (resolved or dismissed) per group of ``by`` columns.

    Columns: ``*by, raised, closed, resolution_rate``.
    """
    rows = []
    for key, group in _groups(anomalies, by):
        closed = int(group["closed_at"].notna().sum())
        rows.append(
            {
                **_key(by, key),
                "raised": len(group),
                "closed": closed,
                "resolution_rate": _ratio(closed, len(group)),
            }
        )
    return _table(rows, by, ["raised", "closed"])


def effectiveness_table(anomalies: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """``precision_table``, ``response_times`` and ``resolution_table`` side by side."""
    precision = precision_table(anomalies, by)
    times = response_times(anomalies, by)
    resolution = resolution_table(anomalies, by).drop(columns=["raised", "closed"])
    if not by:
        return pd.concat([precision, times, resolution], axis=1)
    return precision.merge(times, on=list(by), how="left").merge(
        resolution, on=list(by), how="left"
    )


def _key(by: Sequence[str], key: Any) -> dict[str, Any]:
    if not by:
        return {}
    values = key if isinstance(key, tuple) else (key,)
    return dict(zip(by, values, strict=True))


def _table(rows: list[dict], by: Sequence[str], int_columns: list[str]) -> pd.DataFrame:
    if rows:
        return pd.DataFrame(rows)
    empty = {name: [] for name in by}
    frame = pd.DataFrame(empty)
    for column in int_columns:
        frame[column] = pd.Series(dtype="int64")
    return frame


# --- recall ------------------------------------------------------------------------------------


def recall_estimate(
    anomalies: pd.DataFrame, counts: pd.DataFrame, misses: pd.DataFrame
) -> pd.DataFrame:
    """Estimated recall per anomaly type: found / (found + missed).

    ``found`` = true positives. ``missed`` = the larger of two estimates of what the detectors
    did not report:

    - *control counts* (ghost stock only, ``CONTROL_COUNT_TYPE``): random counts of stocked
      SKU/locations without any finding; a count below book is phantom stock nobody flagged.
      The number of such misses in the eligible population is estimated as
      ``N x p``, with ``p`` = misses / control counts and ``N`` the mean size of the
      populations the counts were drawn from: the estimate of a population total from a
      simple random sample (Cochran 1977, *Sampling Techniques*, 3rd ed., §3.2 and §3.11).
      An undetected condition lasts until found (about ``SHELFWATCH_ROI_DISCOVERY_DAYS``),
      so this standing number is read as the misses of the period;
    - *reported misses*: ``MissedAnomaly`` rows, a lower bound (only what staff noticed).

    The two overlap (a reported miss may also be one the sample stands for), so they are not
    added; the larger is used. Columns: ``anomaly_type, found, control_counts,
    control_misses, estimated_missed, reported_missed, missed, recall`` (NaN recall when
    nothing was found or missed). One row per type seen in ``anomalies`` or ``misses``, plus
    ``CONTROL_COUNT_TYPE`` when there are control counts.
    """
    controls = counts[counts["is_control"]]
    control_miss = controls["counted_quantity"] < controls["book_on_hand"]
    n_controls = len(controls)
    n_control_misses = int(control_miss.sum())
    population = float(controls["population"].mean()) if n_controls else float("nan")
    estimated = (
        n_control_misses / n_controls * population
        if n_controls and np.isfinite(population)
        else 0.0
    )

    types = set(anomalies["anomaly_type"].dropna()) | set(misses["anomaly_type"].dropna())
    if n_controls:
        types.add(CONTROL_COUNT_TYPE)
    found = anomalies[anomalies["verdict"] == TRUE_POSITIVE]["anomaly_type"].value_counts()
    reported = misses["anomaly_type"].value_counts()
    rows = []
    for anomaly_type in sorted(types):
        is_control_type = anomaly_type == CONTROL_COUNT_TYPE
        est = estimated if is_control_type else 0.0
        rep = int(reported.get(anomaly_type, 0))
        tp = int(found.get(anomaly_type, 0))
        missed = max(est, float(rep))
        rows.append(
            {
                "anomaly_type": anomaly_type,
                "found": tp,
                "control_counts": n_controls if is_control_type else 0,
                "control_misses": n_control_misses if is_control_type else 0,
                "estimated_missed": est,
                "reported_missed": rep,
                "missed": missed,
                "recall": _ratio(tp, tp + missed),
            }
        )
    return _table(rows, ["anomaly_type"], ["found", "control_counts", "reported_missed"])


def recall_total(table: pd.DataFrame) -> dict[str, float | int]:
    """Overall recall from a ``recall_estimate`` table: summed found / (found + missed)."""
    found = int(table["found"].sum()) if len(table) else 0
    missed = float(table["missed"].sum()) if len(table) else 0.0
    return {"found": found, "missed": missed, "recall": _ratio(found, found + missed)}


# --- ROI ---------------------------------------------------------------------------------------


def lost_sales_prevented(anomalies: pd.DataFrame, *, discovery_days: int) -> pd.Series:
    """Money of sales each confirmed ghost-stock finding saved (0 for every other row).

    Without detection, phantom stock is found by chance (a shelf walk, a customer asking, the
    periodic count) on average ``discovery_days`` after it began; until then the item cannot
    sell, and it is not reordered because the books show stock. A finding confirmed as a
    true positive ended it on ``first_detected_on`` instead, so it saved
    ``days = clip(start_date + discovery_days - first_detected_on, 0, discovery_days)`` days
    of ``expected_units_per_day x unit_price`` (NaN counts as 0). This is the lost-sales
    model of phantom inventory of Kang & Gershwin (2005), "Information inaccuracy in inventory
    systems: stock loss and stockout", IIE Transactions 37(9), with the discovery delay as a
    setting.
    """
    confirmed = (anomalies["verdict"] == TRUE_POSITIVE) & (
        anomalies["anomaly_type"] == CONTROL_COUNT_TYPE
    )
    found_without = anomalies["start_date"] + pd.to_timedelta(discovery_days, unit="D")
    days = (found_without - anomalies["first_detected_on"]).dt.days.clip(0, discovery_days)
    per_day = anomalies["expected_units_per_day"].fillna(0.0) * anomalies["unit_price"].fillna(0.0)
    return (days.fillna(0) * per_day).where(confirmed, 0.0).astype(float)


def roi_totals(
    anomalies: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    discovery_days: int,
    count_minutes: float,
    cost_per_hour: float,
) -> dict[str, float | int | None]:
    """Money the outcomes loop brought against the labour of the counts.

    - ``recovered_value``: recorded recovered value of true positives (for a counted ghost
      stock: the phantom units written off x shelf price);
    - ``lost_sales_prevented``: see ``lost_sales_prevented``;
    - ``counts_done`` and ``labour_cost`` = counts x ``count_minutes`` / 60 x
      ``cost_per_hour`` (control counts included: they are labour too);
    - ``net_value`` = recovered + prevented - labour; ``roi`` = net_value / labour_cost (the
      usual return on investment; ``None`` when there was no labour).
    """
    tp = anomalies["verdict"] == TRUE_POSITIVE
    recovered = float(anomalies.loc[tp, "recovered_value"].fillna(0.0).sum())
    prevented = float(lost_sales_prevented(anomalies, discovery_days=discovery_days).sum())
    done = len(counts)
    labour = done * count_minutes / 60.0 * cost_per_hour
    net = recovered + prevented - labour
    return {
        "recovered_value": recovered,
        "lost_sales_prevented": prevented,
        "true_positives": int(tp.sum()),
        "counts_done": done,
        "labour_cost": labour,
        "net_value": net,
        "roi": net / labour if labour else None,
    }


# --- threshold proposals -----------------------------------------------------------------------


def score_threshold_for_precision(
    scores: Sequence[float] | np.ndarray,
    is_true_positive: Sequence[bool] | np.ndarray,
    target: float,
) -> dict[str, float | int] | None:
    """The smallest score threshold whose kept findings reach ``target`` precision.

    Over labelled findings with ``scores`` and whether each was a true positive: a threshold
    ``t`` keeps the findings with ``score >= t``. Candidates are the observed scores; the
    smallest one that reaches the target keeps the most true positives (best recall) among
    those that do. Returns ``{"threshold", "precision", "kept", "true_positives"}`` or
    ``None`` when no threshold reaches the target (or there is nothing labelled).
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(is_true_positive, dtype=bool)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    if not len(s):
        return None
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    kept = np.arange(1, len(s) + 1)
    tp = np.cumsum(y)
    # A threshold keeps every finding with an equal score: evaluate at the last of each tie.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    precision = tp / kept
    ok = np.flatnonzero(last_of_tie & (precision >= target))
    if not len(ok):
        return None
    i = ok[-1]  # the lowest qualifying score keeps the most findings
    return {
        "threshold": float(s[i]),
        "precision": float(precision[i]),
        "kept": int(kept[i]),
        "true_positives": int(tp[i]),
    }
