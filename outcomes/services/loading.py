"""Load the frames ``outcomes.metrics`` works on (documented there) from the database.

One query per frame (``values_list``, no model instances). Timestamps become naive local time
(``TIME_ZONE``) so that days and weeks are the ones people see.

The verdict of an anomaly is its recorded ``Outcome``'s; without one it follows from how the
anomaly was closed: *resolved* means the problem was real and was dealt with (true positive),
*dismissed* carries its reason (false positive or expected; a duplicate is not labelled, its
original is). Open, acknowledged and snoozed anomalies without an outcome are not labelled.
``labelled_at`` is when the verdict became known (the outcome's time, else the closing).
"""

from __future__ import annotations

import pandas as pd
from django.conf import settings
from django.db.models import QuerySet

from anomalies.models import Anomaly, AnomalyStatus
from outcomes import metrics
from outcomes.models import CycleCount, MissedAnomaly

# Verdict implied by how an anomaly without an outcome was closed: (status, dismiss reason).
_VERDICT_FROM_CLOSING: dict[tuple[str, str], str] = {
    (AnomalyStatus.RESOLVED, ""): metrics.TRUE_POSITIVE,
    (AnomalyStatus.DISMISSED, "false_positive"): metrics.FALSE_POSITIVE,
    (AnomalyStatus.DISMISSED, "expected"): metrics.EXPECTED,
}

ANOMALY_FRAME_COLUMNS = {**metrics.ANOMALY_COLUMNS, "labelled_at": "datetime64[ns]"}


def _local(values: pd.Series) -> pd.Series:
    """Aware datetimes (or None) → naive local ``datetime64[ns]``."""
    stamps = pd.to_datetime(values, utc=True)
    return stamps.dt.tz_convert(settings.TIME_ZONE).dt.tz_localize(None).astype("datetime64[ns]")


def _float(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.astype(object), errors="coerce").astype("float64")


def anomaly_frame_load(*, queryset: QuerySet[Anomaly]) -> pd.DataFrame:
    """The ``metrics`` anomalies frame of ``queryset`` plus ``labelled_at`` (one query)."""
    fields = [
        "id",
        "anomaly_type",
        "location__code",
        "score",
        "status",
        "dismiss_reason",
        "created_at",
        "acknowledged_at",
        "closed_at",
        "first_detected_on",
        "start_date",
        "details__expected_units_per_day",
        "product__unit_price",
        "outcome__verdict",
        "outcome__recovered_value",
        "outcome__recorded_at",
    ]
    rows = list(queryset.order_by("id").values_list(*fields))
    raw = pd.DataFrame.from_records(rows, columns=fields)
    if raw.empty:
        return metrics.make_frame([], ANOMALY_FRAME_COLUMNS)
    implied = [
        _VERDICT_FROM_CLOSING.get(
            (status, (reason or "") if status == AnomalyStatus.DISMISSED else "")
        )
        for status, reason in zip(raw["status"], raw["dismiss_reason"], strict=True)
    ]
    verdict = raw["outcome__verdict"].astype(object).where(raw["outcome__verdict"].notna(), None)
    has_outcome = verdict.notna()
    verdict = verdict.where(has_outcome, pd.Series(implied, dtype=object))
    closed_at = _local(raw["closed_at"])
    outcome_at = _local(raw["outcome__recorded_at"])
    labelled_at = outcome_at.where(has_outcome, closed_at.where(verdict.notna()))
    frame = pd.DataFrame(
        {
            "anomaly_id": raw["id"],
            "anomaly_type": raw["anomaly_type"],
            "detector": raw["anomaly_type"].map(metrics.detector_of),
            "location": raw["location__code"],
            "score": raw["score"],
            "verdict": verdict,
            "created_at": _local(raw["created_at"]),
            "acknowledged_at": _local(raw["acknowledged_at"]),
            "closed_at": closed_at,
            "first_detected_on": raw["first_detected_on"],
            "start_date": raw["start_date"],
            "recovered_value": _float(raw["outcome__recovered_value"]).fillna(0.0),
            "expected_units_per_day": _float(raw["details__expected_units_per_day"]),
            "unit_price": _float(raw["product__unit_price"]),
            "outcome_at": outcome_at,
            "labelled_at": labelled_at,
        }
    )
    return metrics.make_frame(frame, ANOMALY_FRAME_COLUMNS)


def count_frame_load(*, queryset: QuerySet[CycleCount]) -> pd.DataFrame:
    """The ``metrics`` counts frame of the *counted* cycle counts in ``queryset``.

    ``book_on_hand`` is the book stock the count was compared with (its stock adjustment's
    ``book_before``; the book at request when there is no adjustment).
    """
    fields = [
        "id",
        "location__code",
        "is_control",
        "counted_at",
        "stock_adjustment__book_before",
        "book_on_hand",
        "counted_quantity",
        "population",
    ]
    rows = list(
        queryset.filter(status="counted", counted_quantity__isnull=False)
        .order_by("id")
        .values_list(*fields)
    )
    raw = pd.DataFrame.from_records(rows, columns=fields)
    if raw.empty:
        return metrics.make_frame([], metrics.COUNT_COLUMNS)
    book = raw["stock_adjustment__book_before"].fillna(raw["book_on_hand"]).fillna(0)
    frame = pd.DataFrame(
        {
            "count_id": raw["id"],
            "location": raw["location__code"],
            "is_control": raw["is_control"].astype(bool),
            "counted_at": _local(raw["counted_at"]),
            "book_on_hand": book.astype("int64"),
            "counted_quantity": raw["counted_quantity"].astype("int64"),
            "population": _float(raw["population"]),
        }
    )
    return metrics.make_frame(frame, metrics.COUNT_COLUMNS)


def miss_frame_load(*, queryset: QuerySet[MissedAnomaly]) -> pd.DataFrame:
    """The ``metrics`` misses frame of ``queryset``."""
    fields = ["anomaly_type", "location__code", "start_date", "reported_at"]
    rows = list(queryset.order_by("id").values_list(*fields))
    raw = pd.DataFrame.from_records(rows, columns=fields)
    if raw.empty:
        return metrics.make_frame([], metrics.MISS_COLUMNS)
    frame = pd.DataFrame(
        {
            "anomaly_type": raw["anomaly_type"],
            "location": raw["location__code"],
            "start_date": raw["start_date"],
            "reported_at": _local(raw["reported_at"]),
        }
    )
    return metrics.make_frame(frame, metrics.MISS_COLUMNS)
