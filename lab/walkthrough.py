"""A morning of triage on the demo data, through the same services the admin and API use
(driven by the ``demo_walkthrough`` command).

Run it once on freshly loaded demo data (``make demo-data``); it picks open anomalies by value
at risk, acts on them as a person would and prints the resulting precision, MTTA/MTTR and ROI
exactly as the dashboard (``/admin/dashboard/``) and the API (``/api/v1/effectiveness/``,
``/api/v1/roi/``) compute them.

What a person would find is taken from the bundle's ``truth.csv`` (the injected events): a
finding that matches an event (same type, SKU and location, dates overlapping ± 3 days, the
rule the README's detection table uses) is real, any other is a false alarm. A real ghost
stock is counted at 0 (the shelf is empty), a false one at its book stock.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from anomalies.models import Anomaly, AnomalyStatus, AnomalyType
from anomalies.services.loading import latest_data_date
from anomalies.services.triage import (
    DismissReason,
    anomaly_acknowledge,
    anomaly_dismiss,
    anomaly_resolve,
)
from outcomes.models import ActionTaken, Outcome, Verdict
from outcomes.services import (
    cycle_count_record,
    cycle_count_request,
    dashboard_summary,
    effectiveness_report,
    outcome_record,
    roi_report,
)
from outcomes.services.reports import DEFAULT_REPORT_DAYS

MATCH_SLACK_DAYS = 3
# Anomalies handled per type (ghost stock: counted), and extra critical ones only acknowledged.
PLAN: tuple[tuple[str, int], ...] = (
    (AnomalyType.GHOST_STOCK, 4),
    (AnomalyType.PRICE_ANOMALY, 2),
    (AnomalyType.DEMAND_SPIKE, 2),
    (AnomalyType.DEMAND_DROP, 1),
    (AnomalyType.INVENTORY_DISCREPANCY, 1),
)
ACKNOWLEDGE_ONLY = 3
# Action recorded with a confirmed (resolved) finding of each type.
ACTION_OF_TYPE = {
    AnomalyType.PRICE_ANOMALY: ActionTaken.PRICE_CORRECTED,
    AnomalyType.INVENTORY_DISCREPANCY: ActionTaken.RECORD_ADJUSTED,
}


@dataclass(frozen=True)
class TruthEvent:
    """One injected event of ``truth.csv``: type, SKU code, location code and dates."""

    anomaly_type: str
    sku: str
    location: str
    start: dt.date
    end: dt.date


def truth_load(path: Path) -> list[TruthEvent]:
    """The injected events of a demo bundle's ``truth.csv``."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            TruthEvent(
                anomaly_type=row["anomaly_type"],
                sku=row["sku"],
                location=row["location"],
                start=dt.date.fromisoformat(row["start_date"]),
                end=dt.date.fromisoformat(row["end_date"]),
            )
            for row in csv.DictReader(fh)
        ]


def is_real(anomaly: Anomaly, events: list[TruthEvent]) -> bool:
    """Whether ``anomaly`` matches an injected event (type, SKU, location, dates ± 3 days)."""
    sku = anomaly.product.sku if anomaly.product_id else ""
    slack = dt.timedelta(days=MATCH_SLACK_DAYS)
    return any(
        event.anomaly_type == anomaly.anomaly_type
        and event.sku == sku
        and event.location == anomaly.location.code
        and event.start - slack <= anomaly.end_date
        and anomaly.start_date <= event.end + slack
        for event in events
    )


def _hours(value: float | None) -> str:
    if value is None:
        return "—"
    if value * 60 < 1:
        return f"{value:.3f} h ({value * 3600:.0f} s)"
    return f"{value:.2f} h ({value * 60:.0f} min)"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


Write = Callable[[str], None]


def walkthrough_run(*, truth: Path, username: str, out: Write) -> None:
    """Triage a morning's anomalies as ``username`` (created as staff if missing) and print,
    through ``out`` (one line per call), what was done and the resulting figures.

    ``truth`` is the bundle's ``truth.csv``: its injected events (``truth_load``) decide whether
    a worked anomaly is real. Acts through the triage and outcomes services only."""
    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
    events = truth_load(truth)
    out(f"Triage as {user.get_username()}; truth: {truth} ({len(events)} injected events)\n")
    base = (
        Anomaly.objects.filter(
            status=AnomalyStatus.OPEN, parent__isnull=True, product__isnull=False
        )
        .select_related("product", "location")
        .order_by("-value_at_risk", "pk")
    )
    handled: list[int] = []
    for anomaly_type, how_many in PLAN:
        candidates = base.filter(anomaly_type=anomaly_type)
        if anomaly_type == AnomalyType.GHOST_STOCK:
            # Still found by the latest run: the phantom stock is still on the books.
            candidates = candidates.order_by("-last_detected_on", "-value_at_risk", "pk")
        for anomaly in candidates[:how_many]:
            handled.append(anomaly.pk)
            _work(anomaly, real=is_real(anomaly, events), user=user, out=out)
    for anomaly in base.filter(severity="critical").exclude(pk__in=handled)[:ACKNOWLEDGE_ONLY]:
        anomaly_acknowledge(anomaly_id=anomaly.pk, actor=user)
        out(f"{_label(anomaly)}\n    acknowledged (left for later)")
    _results(out)


def _label(anomaly: Anomaly) -> str:
    return (
        f"#{anomaly.pk} {anomaly.anomaly_type} {anomaly.product.sku}@{anomaly.location.code} "
        f"{anomaly.start_date}..{anomaly.end_date} "
        f"{settings.SHELFWATCH_CURRENCY}{anomaly.value_at_risk:,.2f} at risk"
    )


def _work(anomaly: Anomaly, *, real: bool, user, out: Write) -> None:
    truth = "matches an injected event" if real else "no injected event"
    out(f"{_label(anomaly)} [{truth}]")
    anomaly_acknowledge(anomaly_id=anomaly.pk, actor=user)
    if anomaly.anomaly_type == AnomalyType.GHOST_STOCK:
        count = cycle_count_request(anomaly_id=anomaly.pk, actor=user)
        book = count.book_on_hand or 0
        counted = 0 if real else book
        count = cycle_count_record(count_id=count.pk, counted_quantity=counted, actor=user)
        outcome = Outcome.objects.get(anomaly_id=anomaly.pk)
        out(
            f"    acknowledged; cycle count requested (priority {count.priority:.2f}), "
            f"counted {counted} of {book} on the books -> {outcome.verdict}, "
            f"{settings.SHELFWATCH_CURRENCY}{outcome.recovered_value:,.2f} recovered"
        )
        return
    if real:
        action = ACTION_OF_TYPE.get(anomaly.anomaly_type, ActionTaken.NONE)
        outcome_record(
            anomaly_id=anomaly.pk,
            verdict=Verdict.TRUE_POSITIVE,
            action_taken=action,
            actor=user,
            notes="walk-through",
        )
        anomaly_resolve(anomaly_id=anomaly.pk, actor=user, note="walk-through")
        out(f"    acknowledged; outcome true_positive ({action}); resolved")
    else:
        anomaly_dismiss(
            anomaly_id=anomaly.pk,
            actor=user,
            reason=DismissReason.FALSE_POSITIVE,
            note="walk-through",
        )
        out("    acknowledged; dismissed as false positive")


def _results(out: Write) -> None:
    today = timezone.localdate()
    # As the dashboard and the API's default windows: findings by the day first detected,
    # up to the end of the data when it ends before today; what was done, up to today.
    summary = dashboard_summary(today=today, days=DEFAULT_REPORT_DAYS, data_end=latest_data_date())
    start, end = summary["start"], summary["end"]
    api_effectiveness = effectiveness_report(start=start, end=end)["overall"]
    api_roi = roi_report(start=start, end=today)["totals"]
    eff = summary["effectiveness"]
    roi = summary["roi"]["totals"]
    cur = summary["currency"]
    used = summary["roi"]["settings"]
    anchored = " (the end of the data)" if summary["anchored"] else ""
    out(
        f"\nResults (dashboard /admin/dashboard/ and the API), findings first detected "
        f"{start}..{end}{anchored}:"
    )
    out(
        f"  precision {_pct(eff['precision'])}: {eff['true_positive']} true positive of "
        f"{eff['labelled']} labelled ({eff['false_positive']} false positive, "
        f"{eff['expected']} expected); false-positive rate {_pct(eff['false_positive_rate'])}"
    )
    for row in summary["by_type"]:
        if row["labelled"]:
            out(
                f"    {row['anomaly_type']:<22} {_pct(row['precision']):>5} "
                f"({row['true_positive']} of {row['labelled']})"
            )
    out(
        f"  MTTA {_hours(eff['mtta_hours'])} over {eff['responded']} responded; "
        f"MTTR {_hours(eff['mttr_hours'])} over {eff['closed']} closed "
        f"(resolution rate {_pct(eff['resolution_rate'])} of {eff['raised']} raised)"
    )
    ratio = f"{roi['roi']:.1f}x" if roi["roi"] is not None else "—"
    out(
        f"  ROI: {cur}{roi['recovered_value']:,.2f} recovered + "
        f"{cur}{roi['lost_sales_prevented']:,.2f} lost sales prevented "
        f"({used['discovery_days']}-day discovery horizon) - {cur}{roi['labour_cost']:,.2f} "
        f"labour ({roi['counts_done']} counts x {used['count_minutes']:g} min at "
        f"{cur}{used['count_cost_per_hour']:g}/h) = net {cur}{roi['net_value']:,.2f}, "
        f"ROI {ratio}"
    )
    same = all(api_effectiveness[k] == eff[k] for k in eff) and api_roi == roi
    out(
        "  API GET /api/v1/effectiveness/ and /api/v1/roi/ (default window): "
        + ("the same figures" if same else "DIFFERENT figures (see the API)")
    )
