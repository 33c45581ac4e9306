"""Effectiveness, ROI and the dashboard: load the frames, call ``outcomes.metrics``.

Every function returns plain JSON-ready values: ``int``, ``float``, ``str``, ``datetime.date``,
lists and dicts; a rate or mean that has no data (nothing labelled, nothing closed) is
``None``. Definitions of every metric are in ``outcomes.metrics``.

Which rows fall into a window:

- effectiveness (precision, FPR, response times, resolution rate, recall): anomalies by
  ``first_detected_on`` (the findings raised then), cycle counts by ``counted_at``, reported
  misses by ``start_date``;
- ROI: value by when it was confirmed (``labelled_at``: the outcome's time, else the closing)
  and labour by ``counted_at``.

Periods are calendar weeks (Monday first) or months; ``period_start`` is that week's Monday /
the 1st, so the first and last period of a window may be partial.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Count, Q, Sum

from anomalies.models import Anomaly, Severity
from anomalies.selectors import anomalies_for_user
from outcomes import metrics
from outcomes.models import CycleCount, MissedAnomaly
from outcomes.selectors import cycle_counts_for_user, missed_anomalies_for_user
from outcomes.services.loading import anomaly_frame_load, count_frame_load, miss_frame_load

DEFAULT_REPORT_DAYS = 90
DASHBOARD_PERIOD = "week"
MAX_REPORT_DAYS = 3 * 366

EFFECTIVENESS_KEYS: tuple[str, ...] = (
    "raised",
    "labelled",
    "true_positive",
    "false_positive",
    "expected",
    "inconclusive",
    "precision",
    "false_positive_rate",
    "responded",
    "mtta_hours",
    "closed",
    "mttr_hours",
    "resolution_rate",
)
EFFECTIVENESS_TREND_KEYS: tuple[str, ...] = (
    "precision",
    "false_positive_rate",
    "mtta_hours",
    "mttr_hours",
    "resolution_rate",
    "recall",
)
ROI_KEYS: tuple[str, ...] = (
    "recovered_value",
    "lost_sales_prevented",
    "true_positives",
    "counts_done",
    "labour_cost",
    "net_value",
    "roi",
)
ROI_TREND_KEYS: tuple[str, ...] = (
    "recovered_value",
    "lost_sales_prevented",
    "labour_cost",
    "net_value",
)


class ReportError(ValueError):
    """A report request that makes no sense: end before start, unknown period, too long."""


class _Scope:
    """The rows a report reads: those of ``user``'s stores, or every store when ``None``
    (commands and tasks)."""

    def __init__(self, user: Any) -> None:
        self.user = user

    def anomalies(self) -> Any:
        qs = Anomaly.objects.all()
        return qs if self.user is None else anomalies_for_user(self.user, qs)

    def counts(self) -> Any:
        qs = CycleCount.objects.all()
        return qs if self.user is None else cycle_counts_for_user(self.user, qs)

    def misses(self) -> Any:
        qs = MissedAnomaly.objects.all()
        return qs if self.user is None else missed_anomalies_for_user(self.user, qs)


def report_anchor(*, today: dt.date, data_end: dt.date | None) -> dt.date:
    """The day a "last N days" window ends: ``today``, or the latest day with data
    (``data_end``) when the data ends before today (a demo or an import that stopped), so the
    window is not filled with days nothing could have been found on."""
    return data_end if data_end is not None and data_end < today else today


def report_window(
    *,
    start: dt.date | None,
    end: dt.date | None,
    today: dt.date,
    data_end: dt.date | None = None,
) -> tuple[dt.date, dt.date]:
    """Fill a missing end with ``report_anchor`` (``today``, or ``data_end`` when the data ends
    before today) and a missing start with the ``DEFAULT_REPORT_DAYS`` days ending at ``end``."""
    end = end or report_anchor(today=today, data_end=data_end)
    start = start or end - dt.timedelta(days=DEFAULT_REPORT_DAYS - 1)
    return start, end


def _check(start: dt.date, end: dt.date, period: str) -> None:
    if end < start:
        raise ReportError("The end date is before the start date.")
    if (end - start).days + 1 > MAX_REPORT_DAYS:
        raise ReportError(f"A report covers at most {MAX_REPORT_DAYS} days.")
    if period not in metrics.PERIODS:
        raise ReportError(f"Unknown period {period!r}; use one of {', '.join(metrics.PERIODS)}.")


def _clean(value: Any) -> Any:
    """numpy / pandas scalars → plain Python; NaN, NaT and NA → None; Timestamps → dates."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.date()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(table: pd.DataFrame, keys: tuple[str, ...], by: tuple[str, ...] = ()) -> list[dict]:
    return [
        {name: _clean(row[name]) for name in (*by, *keys)}
        for row in table.to_dict(orient="records")
    ]


def _one(table: pd.DataFrame, keys: tuple[str, ...]) -> dict[str, Any]:
    return _records(table, keys)[0]


def _between(dates: pd.Series, start: dt.date, end: dt.date) -> pd.Series:
    days = dates.dt.normalize()
    return days.notna() & (days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))


# --- effectiveness -----------------------------------------------------------------------------


def _slices(frame: pd.DataFrame) -> dict[pd.Timestamp, pd.DataFrame]:
    """``frame``'s rows per ``period`` value, split in one pass (not one mask per period)."""
    if frame.empty:
        return {}
    return dict(tuple(frame.groupby("period", sort=False)))


def _effectiveness_periods(
    a: pd.DataFrame, c: pd.DataFrame, m: pd.DataFrame, period_starts: list[pd.Timestamp]
) -> list[dict[str, Any]]:
    """The effectiveness row and recall of each period (``a``, ``c``, ``m`` carry ``period``).

    One grouped ``effectiveness_table`` for every period instead of one table per period:
    a year by week was 53 tables, most of the dashboard's time. Recall needs the period's
    counts and misses; without any, nothing is estimated missed, so it is found / found
    (1 with a true positive, undefined without), as ``recall_estimate`` gives.
    """
    empty = _one(metrics.effectiveness_table(a.iloc[:0]), EFFECTIVENESS_KEYS)
    rows: dict[Any, dict[str, Any]] = {}
    if not a.empty:
        table = metrics.effectiveness_table(a, ["period"])
        for record in table.to_dict(orient="records"):
            rows[record["period"]] = {key: _clean(record[key]) for key in EFFECTIVENESS_KEYS}
    a_by, c_by, m_by = _slices(a), _slices(c), _slices(m)
    periods = []
    for start_of in period_starts:
        row = rows.get(start_of, empty)
        if start_of in c_by or start_of in m_by:
            recall = _clean(
                metrics.recall_total(
                    metrics.recall_estimate(
                        a_by.get(start_of, a.iloc[:0]),
                        c_by.get(start_of, c.iloc[:0]),
                        m_by.get(start_of, m.iloc[:0]),
                    )
                )["recall"]
            )
        else:
            recall = 1.0 if row["true_positive"] else None
        periods.append({"period_start": start_of.date(), **row, "recall": recall})
    return periods


def _effectiveness(
    anomalies: pd.DataFrame,
    counts: pd.DataFrame,
    misses: pd.DataFrame,
    *,
    start: dt.date,
    end: dt.date,
    period: str,
    breakdowns: bool = True,
) -> dict[str, Any]:
    """The effectiveness report's figures; without ``breakdowns`` the per-detector and
    per-location tables are left empty (the dashboard shows neither)."""
    recall_table = metrics.recall_estimate(anomalies, counts, misses)
    a = anomalies.assign(period=metrics.period_start(anomalies["first_detected_on"], period))
    c = counts.assign(period=metrics.period_start(counts["counted_at"], period))
    m = misses.assign(period=metrics.period_start(misses["start_date"], period))
    periods = _effectiveness_periods(
        a, c, m, metrics.period_range(pd.Timestamp(start), pd.Timestamp(end), period)
    )
    return {
        "start": start,
        "end": end,
        "period": period,
        "overall": _one(metrics.effectiveness_table(anomalies), EFFECTIVENESS_KEYS),
        "by_type": _records(
            metrics.effectiveness_table(anomalies, ["anomaly_type"]),
            EFFECTIVENESS_KEYS,
            ("anomaly_type",),
        ),
        "by_detector": _records(
            metrics.effectiveness_table(anomalies, ["detector"]), EFFECTIVENESS_KEYS, ("detector",)
        )
        if breakdowns
        else [],
        "by_location": _records(
            metrics.effectiveness_table(anomalies, ["location"]), EFFECTIVENESS_KEYS, ("location",)
        )
        if breakdowns
        else [],
        "recall": {
            **{k: _clean(v) for k, v in metrics.recall_total(recall_table).items()},
            "by_type": _records(
                recall_table,
                (
                    "found",
                    "control_counts",
                    "control_misses",
                    "estimated_missed",
                    "reported_missed",
                    "missed",
                    "recall",
                ),
                ("anomaly_type",),
            ),
        },
        "periods": periods,
        "trend": {
            key: metrics.trend([row[key] for row in periods]) for key in EFFECTIVENESS_TREND_KEYS
        },
    }


def effectiveness_report(
    *, start: dt.date, end: dt.date, period: str = "month", user: Any = None
) -> dict[str, Any]:
    """Precision, false-positive rate, response times, resolution rate and recall.

    Over anomalies first detected from ``start`` to ``end`` (inclusive), the cycle counts done
    and the misses reported (by start date) in that window. Returns::

        {"start": date, "end": date, "period": "week" | "month",
         "overall": {raised, labelled, true_positive, false_positive, expected, inconclusive,
                     precision, false_positive_rate, responded, mtta_hours, closed,
                     mttr_hours, resolution_rate},
         "by_type": [{"anomaly_type": str, ...the overall keys}],
         "by_detector": [{"detector": str, ...}], "by_location": [{"location": code, ...}],
         "recall": {found, missed, recall,
                    "by_type": [{anomaly_type, found, control_counts, control_misses,
                                 estimated_missed, reported_missed, missed, recall}]},
         "periods": [{"period_start": date, ...the overall keys, "recall"}],
         "trend": {precision | false_positive_rate | mtta_hours | mttr_hours |
                   resolution_rate | recall: {"slope": per period, "change": last - previous}}}

    Counts are ints, rates are fractions 0..1, times are hours; ``None`` where undefined.
    Raises ``ReportError`` for an end before the start, a window over ``MAX_REPORT_DAYS`` or
    an unknown period. With ``user``, only the rows of that user's stores count.
    """
    _check(start, end, period)
    scope = _Scope(user)
    anomalies = anomaly_frame_load(
        queryset=scope.anomalies().filter(first_detected_on__range=(start, end))
    )
    counts = count_frame_load(queryset=scope.counts().filter(counted_at__date__range=(start, end)))
    misses = miss_frame_load(queryset=scope.misses().filter(start_date__range=(start, end)))
    return _effectiveness(anomalies, counts, misses, start=start, end=end, period=period)


# --- ROI ---------------------------------------------------------------------------------------


def _roi_settings() -> dict[str, float]:
    return {
        "discovery_days": int(settings.SHELFWATCH_ROI_DISCOVERY_DAYS),
        "count_minutes": float(settings.SHELFWATCH_COUNT_MINUTES),
        "count_cost_per_hour": float(settings.SHELFWATCH_COUNT_COST_PER_HOUR),
    }


def _roi(
    anomalies: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    start: dt.date,
    end: dt.date,
    period: str,
) -> dict[str, Any]:
    used = _roi_settings()
    kwargs = {
        "discovery_days": used["discovery_days"],
        "count_minutes": used["count_minutes"],
        "cost_per_hour": used["count_cost_per_hour"],
    }
    anomalies = anomalies[_between(anomalies["labelled_at"], start, end)]
    counts = counts[_between(counts["counted_at"], start, end)]
    a = anomalies.assign(period=metrics.period_start(anomalies["labelled_at"], period))
    c = counts.assign(period=metrics.period_start(counts["counted_at"], period))
    periods = []
    a_by, c_by = _slices(a), _slices(c)
    empty_totals = _clean_dict(metrics.roi_totals(a.iloc[:0], c.iloc[:0], **kwargs))
    for start_of in metrics.period_range(pd.Timestamp(start), pd.Timestamp(end), period):
        if start_of in a_by or start_of in c_by:
            totals = _clean_dict(
                metrics.roi_totals(
                    a_by.get(start_of, a.iloc[:0]), c_by.get(start_of, c.iloc[:0]), **kwargs
                )
            )
        else:  # most weeks of a small store: nothing confirmed, nothing counted
            totals = empty_totals
        periods.append({"period_start": start_of.date(), **totals})
    return {
        "start": start,
        "end": end,
        "period": period,
        "currency": settings.SHELFWATCH_CURRENCY,
        "settings": used,
        "totals": _clean_dict(metrics.roi_totals(anomalies, counts, **kwargs)),
        "periods": periods,
        "trend": {key: metrics.trend([row[key] for row in periods]) for key in ROI_TREND_KEYS},
    }


def _clean_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _clean(value) for key, value in values.items()}


def roi_report(
    *, start: dt.date, end: dt.date, period: str = "month", user: Any = None
) -> dict[str, Any]:
    """What the outcomes loop was worth from ``start`` to ``end`` (inclusive), by period.

    Value counts when it was confirmed (outcome recorded, or the anomaly closed), labour when
    the count was done. Returns::

        {"start": date, "end": date, "period": str, "currency": "£",
         "settings": {"discovery_days": int, "count_minutes": float,
                      "count_cost_per_hour": float},
         "totals": {recovered_value, lost_sales_prevented, true_positives, counts_done,
                    labour_cost, net_value, roi},
         "periods": [{"period_start": date, ...the totals keys}],
         "trend": {recovered_value | lost_sales_prevented | labour_cost | net_value:
                   {"slope", "change"}}}

    Money in currency units (floats); ``roi`` = net_value / labour_cost, ``None`` without
    labour. Formulas: ``outcomes.metrics.roi_totals``. Raises ``ReportError`` like
    ``effectiveness_report``. With ``user``, only the rows of that user's stores count.
    """
    _check(start, end, period)
    scope = _Scope(user)
    anomalies = anomaly_frame_load(
        queryset=scope.anomalies().filter(
            Q(outcome__recorded_at__date__range=(start, end))
            | Q(outcome__isnull=True, closed_at__date__range=(start, end))
        )
    )
    counts = count_frame_load(queryset=scope.counts().filter(counted_at__date__range=(start, end)))
    return _roi(anomalies, counts, start=start, end=end, period=period)


# --- dashboard ---------------------------------------------------------------------------------


def dashboard_summary(
    *,
    today: dt.date,
    days: int = DEFAULT_REPORT_DAYS,
    user: Any = None,
    data_end: dt.date | None = None,
) -> dict[str, Any]:
    """Everything the admin dashboard shows, for the ``days`` days ending ``end``.

    ``end`` is ``today``, or ``data_end`` (the latest day with sales data) when that is
    earlier (``report_anchor``): findings are counted by the day first detected from ``start``
    to ``end``, while what people did about them (outcomes, closings, cycle counts, reported
    misses) counts up to ``today``, since triage goes on after the data stops; the ROI series
    therefore runs to ``today``.

    Returns (weekly periods, ``DASHBOARD_PERIOD``)::

        {"today": date, "start": date, "end": date, "data_end": date | None,
         "anchored": bool,                               # end < today
         "days": int, "period": "week", "currency": "£",
         # the triage list now (not windowed): open + acknowledged anomalies
         "open_by_severity": {"critical": int, "warning": int, "info": int},
         "open_total": int, "open_value_at_risk": float, "snoozed": int,
         # findings first detected in the window (see effectiveness_report "overall")
         "effectiveness": {raised, labelled, true_positive, false_positive, expected,
                           inconclusive, precision, false_positive_rate, responded,
                           mtta_hours, closed, mttr_hours, resolution_rate},
         "recall": {"found": int, "missed": float, "recall": float | None},
         "by_type": [{"anomaly_type", ...the effectiveness keys}],   # types raised
         "precision_over_time": {
             "periods": [date, ...],                      # week starts, oldest first
             "overall": [float | None, ...],              # one per period
             "by_type": {anomaly_type: [float | None, ...]},
             "labelled_by_type": {anomaly_type: [int, ...]}},
         "response_times_over_time": {"periods": [date], "mtta_hours": [float | None],
                                      "mttr_hours": [float | None]},
         # ROI of the window (see roi_report)
         "roi": {"totals": {recovered_value, lost_sales_prevented, true_positives,
                            counts_done, labour_cost, net_value, roi},
                 "periods": [{"period_start": date, ...the totals keys}],
                 "settings": {...}},
         # cycle counts still to do
         "counts_pending": {"total": int, "control": int,
                            "by_location": [{"location": code, "count": int,
                                             "control": int, "priority": float}]}}

    ``priority`` per location is the sum of its open counts' priorities (money per day).
    Rates are fractions 0..1, times hours, money floats in currency units; ``None`` where
    undefined. Seven queries whatever the data size. With ``user``, only the rows of that
    user's stores count.
    """
    if days < 1:
        raise ReportError("days must be at least 1.")
    end = report_anchor(today=today, data_end=data_end)
    start = end - dt.timedelta(days=days - 1)
    period = DASHBOARD_PERIOD
    scope = _Scope(user)

    open_rows = scope.anomalies().open().order_by().values("severity").annotate(n=Count("id"))
    open_by_severity = dict.fromkeys(reversed(Severity.values), 0)
    for row in open_rows:
        open_by_severity[row["severity"]] = row["n"]
    open_value = scope.anomalies().open().aggregate(v=Sum("value_at_risk"))["v"]
    snoozed = scope.anomalies().filter(status="snoozed").count()

    anomalies = anomaly_frame_load(
        queryset=scope.anomalies().filter(
            Q(first_detected_on__range=(start, end))
            | Q(outcome__recorded_at__date__range=(start, today))
            | Q(closed_at__date__range=(start, today))
        )
    )
    counts = count_frame_load(
        queryset=scope.counts().filter(counted_at__date__range=(start, today))
    )
    misses = miss_frame_load(queryset=scope.misses().filter(start_date__range=(start, today)))
    raised = anomalies[_between(anomalies["first_detected_on"], start, end)]
    effectiveness = _effectiveness(
        raised, counts, misses, start=start, end=end, period=period, breakdowns=False
    )
    roi = _roi(anomalies, counts, start=start, end=today, period=period)

    period_starts = metrics.period_range(pd.Timestamp(start), pd.Timestamp(end), period)
    with_period = raised.assign(period=metrics.period_start(raised["first_detected_on"], period))
    per_type = metrics.precision_table(with_period, ["anomaly_type", "period"])
    by_type: dict[str, list] = {}
    labelled_by_type: dict[str, list] = {}
    for anomaly_type in sorted(raised["anomaly_type"].unique()):
        rows = per_type[per_type["anomaly_type"] == anomaly_type].set_index("period")
        by_type[anomaly_type] = [
            _clean(rows["precision"].get(p, float("nan"))) for p in period_starts
        ]
        labelled_by_type[anomaly_type] = [int(rows["labelled"].get(p, 0)) for p in period_starts]

    pending = (
        scope.counts()
        .open()
        .order_by("location__code")
        .values("location__code")
        .annotate(n=Count("id"), control=Count("id", filter=Q(is_control=True)), p=Sum("priority"))
    )
    by_location = [
        {
            "location": row["location__code"],
            "count": row["n"],
            "control": row["control"],
            "priority": float(row["p"] or 0.0),
        }
        for row in pending
    ]
    return {
        "today": today,
        "start": start,
        "end": end,
        "data_end": data_end,
        "anchored": end < today,
        "days": days,
        "period": period,
        "currency": settings.SHELFWATCH_CURRENCY,
        "open_by_severity": open_by_severity,
        "open_total": sum(open_by_severity.values()),
        "open_value_at_risk": float(open_value or 0.0),
        "snoozed": snoozed,
        "effectiveness": effectiveness["overall"],
        "recall": {k: v for k, v in effectiveness["recall"].items() if k != "by_type"},
        "by_type": effectiveness["by_type"],
        "precision_over_time": {
            "periods": [p.date() for p in period_starts],
            "overall": [row["precision"] for row in effectiveness["periods"]],
            "by_type": by_type,
            "labelled_by_type": labelled_by_type,
        },
        "response_times_over_time": {
            "periods": [p.date() for p in period_starts],
            "mtta_hours": [row["mtta_hours"] for row in effectiveness["periods"]],
            "mttr_hours": [row["mttr_hours"] for row in effectiveness["periods"]],
        },
        "roi": {"totals": roi["totals"], "periods": roi["periods"], "settings": roi["settings"]},
        "counts_pending": {
            "total": sum(row["count"] for row in by_location),
            "control": sum(row["control"] for row in by_location),
            "by_location": by_location,
        },
    }
