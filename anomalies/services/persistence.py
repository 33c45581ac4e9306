"""Persisting findings: turn a findings frame into created or extended ``Anomaly`` rows.

Merge rule: a finding extends the anomaly of the same type, SKU and location whose date range
overlaps or touches it (``end_date + MERGE_GAP_DAYS``); otherwise it opens a new one. The
database's unique constraint on (type, SKU, location, start date) backs that up, so a re-run
of the same dates, or a chunk delivered twice, updates rows and never duplicates them.

What a finding does to the triage state of the anomaly it extends (regress, wake) is decided
by ``anomalies.services.redetection.Redetections``; this module only matches and writes. Called by
``anomalies.services.runs`` once per chunk, inside the chunk's transaction.

A finding's ``p_value`` and ``q_value`` (false-discovery control, ``anomalies.detectors.fdr``)
are stored like its score: on the anomaly it opens, or on the one it extends when the run is
the latest to see it. Either may be absent from the frame (NaN, stored as NULL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import Q
from django.utils import timezone

from anomalies.models import Anomaly, DetectionRun
from anomalies.services.redetection import Redetections
from anomalies.services.triage import anomalies_wake_acknowledged
from common.bulk_update import rows_update

# A finding within this many days after an anomaly's end date continues that anomaly.
MERGE_GAP_DAYS = 1

# What extending an anomaly writes. ``rows_update`` applies no ``auto_now``, so ``updated_at``
# is set on the instances by hand.
_UPDATE_FIELDS = [
    "severity",
    "score",
    "expected_value",
    "actual_value",
    "value_at_risk",
    "explanation",
    "details",
    "p_value",
    "q_value",
    "end_date",
    "last_detected_on",
    "last_run",
    "updated_at",
]


@dataclass
class PersistResult:
    """How a batch of findings landed: rows created and rows extended, per anomaly type;
    ``created_controlled``: of the created, those with a q-value (false-discovery controlled).
    """

    created: dict[str, int] = field(default_factory=dict)
    extended: dict[str, int] = field(default_factory=dict)
    created_controlled: dict[str, int] = field(default_factory=dict)


def _key(anomaly_type: str, product_id: Any, location_id: int) -> tuple[str, int | None, int]:
    product = None if product_id is None or pd.isna(product_id) else int(product_id)
    return anomaly_type, product, int(location_id)


def _py(value: Any) -> Any:
    """Make a details value JSON-serialisable (numpy scalars, timestamps, NaN)."""
    if isinstance(value, dict):
        return {str(k): _py(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_py(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()[:10]
    return value


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def anomalies_persist(*, findings: pd.DataFrame, run: DetectionRun) -> PersistResult:
    """Create or extend anomalies for ``findings`` (a findings frame) found by ``run``.

    Must be called inside a transaction. A finding extends the anomaly with the same type,
    SKU and location whose range overlaps ``[start - MERGE_GAP_DAYS, end]``; an extension
    never shrinks an anomaly and only takes the finding's numbers when the run is at least as
    recent as the anomaly's last detection (so re-running an old date changes nothing).

    Triage rules (``anomalies.services.redetection.Redetections``): a finding that overlaps no
    anomaly but follows a resolved or dismissed one of the same type/SKU/location within
    ``SHELFWATCH_REGRESSION_DAYS`` extends that one; a resolved anomaly found again reopens
    (regressed), a dismissed one stays dismissed, a snoozed one that got worse wakes up.
    """
    result = PersistResult()
    if findings.empty:
        return result
    as_of = run.as_of
    redetections = Redetections(as_of=as_of)
    findings = findings.sort_values("score", ascending=False).drop_duplicates(
        ["anomaly_type", "product_id", "location_id", "start_date"]
    )
    earliest = findings["start_date"].min().date() - dt.timedelta(days=MERGE_GAP_DAYS)
    latest = findings["end_date"].max().date() + dt.timedelta(days=MERGE_GAP_DAYS)
    # Only anomalies of the findings' SKUs can match (by type, SKU and location): without the
    # SKU filter each run read every anomaly of its stores within the look-back (four times
    # as many model instances as needed in a 90-day backfill at S, more as the table grows).
    products = findings["product_id"]
    skus = Q(product_id__in=sorted({int(x) for x in products.dropna()}))
    if products.isna().any():
        skus |= Q(product_id__isnull=True)  # store-level findings (POS outage, price file)
    candidates = Anomaly.objects.filter(
        skus,
        anomaly_type__in=findings["anomaly_type"].unique().tolist(),
        location_id__in=[int(x) for x in findings["location_id"].unique()],
        end_date__gte=earliest - dt.timedelta(days=redetections.lookback_days),
        start_date__lte=latest,
    ).order_by("start_date")
    by_key: dict[tuple, list[Anomaly]] = {}
    for anomaly in candidates:
        by_key.setdefault(
            _key(anomaly.anomaly_type, anomaly.product_id, anomaly.location_id), []
        ).append(anomaly)

    now = timezone.now()
    to_create: list[Anomaly] = []
    to_update: dict[int, Anomaly] = {}
    for row in findings.to_dict("records"):
        key = _key(row["anomaly_type"], row["product_id"], row["location_id"])
        start = row["start_date"].date()
        end = row["end_date"].date()
        match = next(
            (
                a
                for a in by_key.get(key, [])
                if a.start_date <= end + dt.timedelta(days=MERGE_GAP_DAYS)
                and a.end_date >= start - dt.timedelta(days=MERGE_GAP_DAYS)
            ),
            None,
        )
        if match is None:
            match = redetections.closed_match(by_key.get(key, []), start=start)
        numbers = {
            "severity": row["severity"],
            "score": float(row["score"]),
            "expected_value": _float_or_none(row["expected_value"]),
            "actual_value": _float_or_none(row["actual_value"]),
            "value_at_risk": Decimal(str(round(float(row["value_at_risk"] or 0.0), 2))),
            "explanation": str(row["explanation"]),
            "details": _py(row["details"] or {}),
            "p_value": _float_or_none(row.get("p_value")),
            "q_value": _float_or_none(row.get("q_value")),
        }
        if match is None:
            anomaly = Anomaly(
                anomaly_type=key[0],
                product_id=key[1],
                location_id=key[2],
                start_date=start,
                end_date=end,
                first_detected_on=as_of,
                last_detected_on=as_of,
                last_run=run,
                **numbers,
            )
            to_create.append(anomaly)
            by_key.setdefault(key, []).append(anomaly)
            result.created[key[0]] = result.created.get(key[0], 0) + 1
            if numbers["q_value"] is not None:
                result.created_controlled[key[0]] = result.created_controlled.get(key[0], 0) + 1
            continue
        if match.pk is None:
            # Two findings of this batch merge into one new anomaly: it spans both.
            match.start_date = min(match.start_date, start)
            match.end_date = max(match.end_date, end)
            continue
        redetections.seen(
            match,
            start=start,
            end=end,
            severity=numbers["severity"],
            value_at_risk=numbers["value_at_risk"],
        )
        if as_of >= match.last_detected_on:
            for name, value in numbers.items():
                setattr(match, name, value)
            match.last_detected_on = as_of
            match.last_run = run
        match.end_date = max(match.end_date, end)
        match.updated_at = now
        if match.pk not in to_update:
            result.extended[key[0]] = result.extended.get(key[0], 0) + 1
        to_update[match.pk] = match
    Anomaly.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        rows_update(list(to_update.values()), _UPDATE_FIELDS)
    redetections.apply()
    anomalies_wake_acknowledged(today=timezone.localdate(), anomaly_ids=to_update)
    return result
