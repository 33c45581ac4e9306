"""False-discovery control over the findings of all detectors: Benjamini-Hochberg per location.

Method: Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate: a practical and
powerful approach to multiple testing", J. R. Statist. Soc. B 57 (1995) 289-300. For m
hypotheses with p-values p_(1) <= ... <= p_(m), the step-up procedure rejects H_(1) ... H_(k)
for the largest k with p_(k) <= k q / m. With independent (or positively dependent, Benjamini &
Yekutieli 2001) p-values the expected share of false discoveries among the rejections is at
most q m0 / m <= q. The adjusted p-value (q-value) of H_(i) is
min_{j >= i} min(1, m p_(j) / j); H_(i) is rejected exactly when its q-value is <= q.

Families: one per location (store) and run. A findings frame is one run's findings (one as-of
day), so grouping by ``location_id`` is grouping by (location, day). m at a location is the sum
over detectors of the hypotheses each tested there (the ``tests`` column, the largest value a
detector reports at the location), and never less than the detector's number of findings with a
p-value there: a detector that reports candidates at a loose level (say p <= 0.01) and leaves
the decision to this step passes its whole family size, not only the candidates. A detector
that found nothing at a location has no row to carry its ``tests``, so its hypotheses are
missing from m there; that makes the control slightly less strict than BH over every test.

Rows whose ``p_value`` is NaN are not controlled: they are kept as they are, with a NaN
``q_value``. That is the case of every detector that gives no p-value, e.g. the Isolation
Forest (``ml_detected``), whose outlier score has no null distribution.

Expected false alarms: BH bounds the expected share of false findings among the R kept at a
location by q, so ``q x R`` is the expected number of false alarms reported there (conservative
by m0 / m). The sum of the kept findings' q-values is NOT such an estimate: with 50 strong
signals (q-values ~ 0) among 1,000 tests, about 2.4 nulls pass at q = 0.05 and their q-values
(~0.05 each) add up to ~0.12, twenty times too few.

The guarantee is only as good as the p-values. Measured on the classic simulator (seed 7, 10
stores x 150 SKUs, 90-day walk-forward): ghost stock reporting candidates at p0 <= 0.01 with its
zero-run p0 as ``p_value`` (and every series of the store as ``tests``) kept 99 episodes at
q = 0.05, 26 of them false (precision 0.74; its own cut p0 < 1e-4: 78 episodes, 7 false). q x R
would have promised about 5: the plug-in negative-binomial p0 is too small for heavy-tailed
items, and a condition re-tested every day is new only once, so the share of false alarms among
a day's new findings can exceed q even where it holds over all of that day's findings.

Pure pandas/numpy, vectorised (no loop over rows or locations); 100,000 findings over 1,000
locations take about 0.2 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FDR_Q_DEFAULT = 0.01
"""Default false-discovery rate: at most 1 % of a store's controlled findings false. Chosen on
the development scenarios (docs/DETECTION.md): per store and day, q also bounds the chance of
any false alarm on a day with nothing to find, so q = 0.05 gave about 1 false alarm per 1,000
SKU-location-days on small stores; 0.01 gave 0.25 at the same recall."""
FDR_Q_MAX = 0.5
"""Highest level the setting accepts: above it most findings could be false alarms."""

FAMILY_SUMMARY_COLUMNS = ["location_id", "family", "tested", "candidates", "kept"]
LOCATION_SUMMARY_COLUMNS = [
    "location_id",
    "tested",
    "candidates",
    "kept",
    "expected_false_alarms",
]


@dataclass(frozen=True)
class FdrResult:
    """What ``fdr_control`` returns.

    ``findings``: the kept rows of the input (same columns and index, in input order) plus
    ``q_value`` (float64; NaN where ``p_value`` is NaN).
    ``families``: one row per (location_id, family) with a p-value: ``tested`` (int64, the
    family size m_f used), ``candidates`` (int64, rows with a p-value), ``kept`` (int64, rows
    the step-up rejected, i.e. kept).
    ``locations``: one row per location with a p-value: ``tested`` (m = sum of its families'),
    ``candidates``, ``kept`` (R), ``expected_false_alarms`` (float64, q x R).
    """

    findings: pd.DataFrame
    families: pd.DataFrame
    locations: pd.DataFrame


def check_fdr_q(q: float) -> float:
    """``q`` as a float if 0 < q <= ``FDR_Q_MAX``; raises ``ValueError`` otherwise."""
    q = float(q)
    if not 0.0 < q <= FDR_Q_MAX:
        raise ValueError(
            f"The false-discovery rate must be above 0 and at most {FDR_Q_MAX}, not {q}."
        )
    return q


def bh_q_values(p: np.ndarray, groups: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values within groups.

    ``p`` (float64, shape (n,), in [0, 1], no NaN), ``groups`` (int64 codes 0..G-1, shape
    (n,)), ``m`` (float64, shape (G,): family size of each group, >= its number of rows).
    Returns q-values (float64, shape (n,), in [0, 1]) in the input order.
    """
    n = len(p)
    if n == 0:
        return np.empty(0, dtype="float64")
    order = np.lexsort((p, groups))  # by group, then ascending p
    g_sorted = groups[order]
    p_sorted = p[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, sizes) + 1  # 1-based rank within its group
    raw = np.minimum(1.0, m[g_sorted] * p_sorted / rank)
    # Step-up: the q-value of rank i is the smallest raw value at ranks >= i of its group,
    # a cumulative minimum from the group's end (one per group: groups are locations, a few
    # per call, and a pandas groupby cost more than the rest of the control).
    adjusted = np.empty(n, dtype="float64")
    for lo, hi in zip(starts, np.r_[starts[1:], n], strict=True):
        adjusted[lo:hi] = np.minimum.accumulate(raw[lo:hi][::-1])[::-1]
    out = np.empty(n, dtype="float64")
    out[order] = adjusted
    return out


def fdr_control(
    findings: pd.DataFrame, q: float, *, family: np.ndarray | pd.Series | None = None
) -> FdrResult:
    """Benjamini-Hochberg control at level ``q`` per location over ``findings``.

    ``findings``: one run's findings frame (``base.FINDING_COLUMNS``: ``location_id``,
    ``p_value``, ``tests`` are read; other columns are passed through). ``family``: the
    detector of each row (shape (n,)), whose ``tests`` are one family; default the
    ``anomaly_type`` column. ``q``: 0 < q <= ``FDR_Q_MAX``.

    Keeps every row with a NaN p-value and the rows with a p-value that the step-up rejects
    at their location (q-value <= q). See ``FdrResult``. Raises ``ValueError`` for a bad
    ``q``, a p-value outside [0, 1], negative ``tests`` or a ``family`` of the wrong length.
    """
    q = check_fdr_q(q)
    labels = findings["anomaly_type"] if family is None else family
    labels = np.asarray(labels, dtype=object)
    if len(labels) != len(findings):
        raise ValueError(f"family has {len(labels)} labels for {len(findings)} findings.")
    p = findings["p_value"].to_numpy(dtype="float64", na_value=np.nan)
    has_p = ~np.isnan(p)
    if ((p[has_p] < 0.0) | (p[has_p] > 1.0)).any():
        raise ValueError("p-values must lie in [0, 1].")
    tests = findings["tests"].to_numpy(dtype="int64")
    if (tests < 0).any():
        raise ValueError("tests must not be negative.")

    q_value = np.full(len(findings), np.nan)
    if not has_p.any():
        return FdrResult(
            findings=findings.assign(q_value=q_value),
            families=_empty(FAMILY_SUMMARY_COLUMNS),
            locations=_empty(LOCATION_SUMMARY_COLUMNS),
        )

    rows = np.flatnonzero(has_p)
    loc = findings["location_id"].to_numpy(dtype="int64")[rows]
    fam_codes, fam_names = pd.factorize(labels[rows])
    loc_codes, loc_ids = pd.factorize(loc)
    # One code per (location, family): the two codes packed into one integer.
    pair_keys, pair_codes = np.unique(
        loc_codes.astype("int64") * len(fam_names) + fam_codes, return_inverse=True
    )
    pair_loc_code = pair_keys // len(fam_names)
    pair_fam = pair_keys % len(fam_names)
    pair_loc = np.asarray(loc_ids, dtype="int64")[pair_loc_code]
    pair_candidates = np.bincount(pair_codes, minlength=len(pair_keys))
    pair_tests = np.zeros(len(pair_keys), dtype="int64")
    np.maximum.at(pair_tests, pair_codes, tests[rows])
    pair_tested = np.maximum(pair_tests, pair_candidates)
    m = np.bincount(pair_loc_code, weights=pair_tested, minlength=len(loc_ids))

    q_rows = bh_q_values(p[rows], loc_codes.astype("int64"), m)
    # A p-value exactly at its bound q k / m is rejected, as the definition says: m p / k can
    # round one unit in the last place above q (found by tests/anomalies/detectors/test_fdr.py),
    # and its q-value is then q.
    rejected = q_rows <= q * (1.0 + 1e-12)
    q_value[rows] = np.where(rejected, np.minimum(q_rows, q), q_rows)
    keep = ~has_p
    keep[rows[rejected]] = True

    pair_kept = np.bincount(pair_codes[rejected], minlength=len(pair_keys))
    families = pd.DataFrame(
        {
            "location_id": pair_loc,
            "family": np.asarray(fam_names, dtype=object)[pair_fam],
            "tested": pair_tested,
            "candidates": pair_candidates.astype("int64"),
            "kept": pair_kept.astype("int64"),
        }
    )
    loc_kept = np.bincount(loc_codes[rejected], minlength=len(loc_ids)).astype("int64")
    locations = pd.DataFrame(
        {
            "location_id": np.asarray(loc_ids, dtype="int64"),
            "tested": m.astype("int64"),
            "candidates": np.bincount(loc_codes, minlength=len(loc_ids)).astype("int64"),
            "kept": loc_kept,
            "expected_false_alarms": q * loc_kept,
        }
    )
    kept = findings.assign(q_value=q_value)[keep]
    return FdrResult(
        findings=kept,
        families=families.sort_values(["location_id", "family"], ignore_index=True),
        locations=locations.sort_values("location_id", ignore_index=True),
    )


def _empty(columns: list[str]) -> pd.DataFrame:
    dtypes = {"family": object, "expected_false_alarms": "float64"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "int64")) for c in columns})
