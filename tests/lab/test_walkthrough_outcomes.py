"""Walk-through on a small demo estate: detect, then acknowledge, count, resolve and dismiss a
few findings through the API, and check that the effectiveness and ROI the API (and the
dashboard) report are exactly what those actions imply, computed by hand here.

Which findings the detectors raise on the bundle is the detectors' business: the test picks
two ghost-stock findings and three others, whatever they are, and derives every expected
figure from what it did to them.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal
from unittest import mock

import pytest

from anomalies.models import Anomaly, AnomalyType
from anomalies.services.runs import detection_backfill
from inventory.importing import bundle_import
from inventory.models import StockLevel
from lab.simulator import MIN_DAYS, MIN_SKUS, generate_bundle
from outcomes.services import dashboard_summary

pytestmark = pytest.mark.django_db

END = dt.date(2026, 10, 31)  # the generator's default last day
DETECTION_DAYS = 30
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)  # "detection ran at 08:00"
SIZES = {"n_locations": 2, "n_skus": 20, "n_days": 90}


@contextmanager
def at(hours: float):
    """Everything inside happens ``hours`` after detection raised the findings."""
    with mock.patch("django.utils.timezone.now", return_value=T0 + dt.timedelta(hours=hours)):
        yield


@pytest.fixture
def estate(tmp_path):
    assert SIZES["n_skus"] >= MIN_SKUS and SIZES["n_days"] >= MIN_DAYS
    generate_bundle(out_dir=tmp_path, seed=7, **SIZES)
    bundle_import(directory=tmp_path)
    detection_backfill(start=END - dt.timedelta(days=DETECTION_DAYS - 1), end=END)
    Anomaly.objects.update(created_at=T0)
    ghosts = list(
        Anomaly.objects.filter(anomaly_type=AnomalyType.GHOST_STOCK, product__isnull=False)
        .select_related("product")
        .order_by("-value_at_risk", "id")[:2]
    )
    others = list(Anomaly.objects.exclude(anomaly_type=AnomalyType.GHOST_STOCK).order_by("id")[:3])
    assert len(ghosts) == 2 and len(others) == 3, "the small demo must raise enough findings"
    return ghosts, others


def post(client, url: str, body: dict | None = None) -> dict:
    response = client.post(url, body or {}, format="json")
    assert response.status_code in (200, 201), (url, response.json())
    return response.json()


def test_walkthrough(api_client, estate):
    (confirmed, refuted), (fixed, false_alarm, explained) = estate
    a = "/api/v1/anomalies"

    # Hour 1-3: the ghost-stock findings and one other are acknowledged.
    with at(1):
        post(api_client, f"{a}/{confirmed.pk}/acknowledge/")
    with at(2):
        post(api_client, f"{a}/{refuted.pk}/acknowledge/")
        count_confirmed = post(api_client, "/api/v1/cycle-counts/", {"anomaly": confirmed.pk})
        count_refuted = post(api_client, "/api/v1/cycle-counts/", {"anomaly": refuted.pk})
    with at(3):
        post(api_client, f"{a}/{fixed.pk}/acknowledge/")
    # Hour 4: the other one is fixed and resolved (a true positive without a count).
    with at(4):
        post(api_client, f"{a}/{fixed.pk}/resolve/", {"note": "corrected"})
    # Hour 5: the store counts the first shelf: empty, against what the books said the day
    # the finding was last seen.
    book_confirmed = StockLevel.objects.get(
        product=confirmed.product, location=confirmed.location, date=confirmed.last_detected_on
    ).on_hand
    assert book_confirmed > 0
    with at(5):
        recorded = post(
            api_client,
            f"/api/v1/cycle-counts/{count_confirmed['id']}/record/",
            {"counted_quantity": 0, "counted_on": str(confirmed.last_detected_on)},
        )
    # Hour 6 and 10: two findings dismissed without being acknowledged first.
    with at(6):
        post(api_client, f"{a}/{false_alarm.pk}/dismiss/", {"reason": "false_positive"})
    # Hour 8: the second shelf holds exactly what the books say.
    book_refuted = StockLevel.objects.get(
        product=refuted.product, location=refuted.location, date=refuted.last_detected_on
    ).on_hand
    with at(8):
        post(
            api_client,
            f"/api/v1/cycle-counts/{count_refuted['id']}/record/",
            {"counted_quantity": book_refuted, "counted_on": str(refuted.last_detected_on)},
        )
    with at(10):
        post(api_client, f"{a}/{explained.pk}/dismiss/", {"reason": "expected"})
        # Staff also noticed one ghost stock nobody flagged.
        post(
            api_client,
            "/api/v1/missed-anomalies/",
            {
                "anomaly_type": "ghost_stock",
                "product": confirmed.product_id,
                "location": refuted.location_id,
                "start_date": "2026-10-20",
            },
        )

    assert recorded["verdict"] == "true_positive"
    assert recorded["stock_adjustment"]["delta"] == -book_confirmed

    # --- effectiveness, by hand ---
    raised = Anomaly.objects.filter(first_detected_on__range=("2026-10-01", END)).count()
    with at(11):
        body = api_client.get(
            "/api/v1/effectiveness/", {"start": "2026-10-01", "end": str(END), "period": "month"}
        ).json()
    overall = body["overall"]
    # TP: the emptied shelf and the fixed one; FP: the full shelf and the false alarm;
    # expected: the explained one.
    assert (overall["raised"], overall["labelled"]) == (raised, 5)
    assert (overall["true_positive"], overall["false_positive"], overall["expected"]) == (2, 2, 1)
    assert overall["precision"] == pytest.approx(2 / 5)
    assert overall["false_positive_rate"] == pytest.approx(2 / 5)
    # First response: 1, 2, 3 h (acknowledged), 6 and 10 h (dismissed straight away).
    assert overall["responded"] == 5
    assert overall["mtta_hours"] == pytest.approx((1 + 2 + 3 + 6 + 10) / 5)
    # Closed: counted at 5 and 8 h, resolved at 4 h, dismissed at 6 and 10 h.
    assert overall["closed"] == 5
    assert overall["mttr_hours"] == pytest.approx((5 + 8 + 4 + 6 + 10) / 5)
    assert overall["resolution_rate"] == pytest.approx(5 / raised)
    ghost_row = next(row for row in body["by_type"] if row["anomaly_type"] == "ghost_stock")
    assert ghost_row["precision"] == pytest.approx(1 / 2)
    # Recall of ghost stock: 1 found, 1 reported missed; overall 2 found, 1 missed.
    ghost_recall = next(r for r in body["recall"]["by_type"] if r["anomaly_type"] == "ghost_stock")
    assert ghost_recall["recall"] == pytest.approx(1 / 2)
    assert body["recall"]["recall"] == pytest.approx(2 / 3)

    # --- ROI, by hand ---
    confirmed.refresh_from_db()
    price = float(confirmed.product.unit_price)
    recovered = float(
        (Decimal(book_confirmed) * confirmed.product.unit_price).quantize(Decimal("0.01"))
    )
    days_saved = min(
        max((confirmed.start_date + dt.timedelta(days=30) - confirmed.first_detected_on).days, 0),
        30,
    )
    prevented = days_saved * confirmed.details["expected_units_per_day"] * price
    labour = 2 * 10 / 60 * 15.0
    with at(11):
        roi = api_client.get(
            "/api/v1/roi/", {"start": "2026-11-01", "end": "2026-11-30", "period": "month"}
        ).json()
    totals = roi["totals"]
    cent = 0.005  # money comes as decimal strings rounded to the cent
    assert float(totals["recovered_value"]) == pytest.approx(recovered, abs=cent)
    assert float(totals["lost_sales_prevented"]) == pytest.approx(prevented, abs=cent)
    assert (totals["true_positives"], totals["counts_done"]) == (2, 2)
    assert float(totals["labour_cost"]) == pytest.approx(labour, abs=cent)
    assert float(totals["net_value"]) == pytest.approx(recovered + prevented - labour, abs=cent)
    assert totals["roi"] == pytest.approx((recovered + prevented - labour) / labour)

    # --- the dashboard shows the same figures ---
    summary = dashboard_summary(today=T0.date(), days=90)
    for key in ("precision", "false_positive_rate", "mtta_hours", "mttr_hours", "labelled"):
        assert summary["effectiveness"][key] == pytest.approx(overall[key])
    assert summary["roi"]["totals"]["net_value"] == pytest.approx(
        float(totals["net_value"]), abs=cent
    )
    assert summary["counts_pending"]["total"] == 0
