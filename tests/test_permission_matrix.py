"""Who may do what, where: every API operation and admin page x role x store.

Roles (``common.roles``): anonymous, a viewer of store A, store staff of store A, an ops
manager and an admin (superuser). Each operation is tried on an object of store A and one of
store B; every call runs in a savepoint that is rolled back, so all ten calls of a row see the
same world. The API table must name every operation of the generated OpenAPI schema: a new
endpoint without a row fails ``test_the_table_covers_every_api_operation``.

Expected outcomes per kind of operation (``ok``: the operation's success code):

- ``read``     everyone signed in: ok (chain-wide rows, master data, lists, reports);
- ``scoped``   viewer and staff: ok on A, 404 on B; ops manager and admin: ok;
- ``triage``   viewer 403; staff: ok on A, ``outside`` (404 when the object is looked up in
               the scoped queryset, 403 when the service re-check refuses) on B; ops, admin ok;
- ``ops``      viewer and staff 403; ops manager and admin ok;
- ``admin``    only the admin (superuser): ok; everyone else 403.

Anonymous: 401 or 403 (the authentication helper makes it 401 with ``WWW-Authenticate``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from anomalies.models import Anomaly, AnomalyStatus, AnomalyType, DetectionRun
from common.roles import OPS_MANAGER, STORE_STAFF, VIEWER
from inventory.models import CalendarEvent, LocationAccess, Promotion, StockAdjustment
from outcomes.models import CycleCount, MissedAnomaly, Outcome, ThresholdProposal, Verdict
from tests.conftest import grant_role
from tests.factories import (
    AnomalyFactory,
    DailySalesFactory,
    DetectionRunFactory,
    LocationFactory,
    ProductFactory,
    StockLevelFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ANON, VIEWER_A, STAFF_A, OPS, ADMIN = "anonymous", "viewer A", "staff A", "ops manager", "admin"
PERSONAS = (ANON, VIEWER_A, STAFF_A, OPS, ADMIN)
STORES = ("A", "B")
ANONYMOUS_CODES = frozenset({401})  # token authentication first: 401 + WWW-Authenticate
DAY = dt.date(2024, 1, 25)


# --- the world ---------------------------------------------------------------------------------


@dataclass
class Store:
    location: Any
    anomaly: Anomaly
    outcome: Outcome
    count: CycleCount
    miss: MissedAnomaly
    adjustment: StockAdjustment
    promotion: Promotion
    event: CalendarEvent
    sales: Any
    stock: Any


@dataclass
class World:
    stores: dict[str, Store]
    product: Any
    run: DetectionRun
    users: dict[str, Any] = field(default_factory=dict)


def _store(code: str, product) -> Store:
    location = LocationFactory(code=code)
    anomaly = AnomalyFactory(product=product, location=location, q_value=0.01, p_value=0.001)
    closed = AnomalyFactory(
        product=product,
        location=location,
        anomaly_type=AnomalyType.DEMAND_DROP,
        status=AnomalyStatus.RESOLVED,
    )
    count = CycleCount.objects.create(
        anomaly=anomaly, product=product, location=location, book_on_hand=10, priority=1.0
    )
    return Store(
        location=location,
        anomaly=anomaly,
        outcome=Outcome.objects.create(anomaly=closed, verdict=Verdict.TRUE_POSITIVE),
        count=count,
        miss=MissedAnomaly.objects.create(
            anomaly_type=AnomalyType.GHOST_STOCK, location=location, start_date=DAY
        ),
        adjustment=StockAdjustment.objects.create(
            product=product,
            location=location,
            date=DAY,
            book_before=5,
            counted=3,
            delta=-2,
            reason="control_count",
        ),
        promotion=Promotion.objects.create(
            product=product,
            location=location,
            start_date=DAY,
            end_date=DAY,
            discount_pct=Decimal("10"),
        ),
        event=CalendarEvent.objects.create(date=DAY, name=f"Fair {code}", location=location),
        sales=DailySalesFactory(product=product, location=location, date=DAY),
        stock=StockLevelFactory(product=product, location=location, date=DAY, on_hand=10),
    )


@pytest.fixture
def world(db) -> World:
    product = ProductFactory(sku="P1")
    stores = {"A": _store("SA", product), "B": _store("SB", product)}
    # Chain-wide: 4 new findings that day, 2 of them controlled at q = 0.1.
    run = DetectionRunFactory(
        as_of=DAY, fdr_q=0.1, new_findings=4, new_findings_controlled=2, expected_false_alarms=0.2
    )
    w = World(stores=stores, product=product, run=run)
    a = stores["A"].location
    w.users = {
        ANON: None,
        VIEWER_A: grant_role(UserFactory(username="viewer"), VIEWER, locations=[a]),
        STAFF_A: grant_role(UserFactory(username="staff"), STORE_STAFF, locations=[a]),
        OPS: grant_role(UserFactory(username="opsman"), OPS_MANAGER),
        ADMIN: UserFactory(username="root", is_superuser=True),
    }
    return w


def _api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _rolled_back(call: Callable[[], Any]) -> Any:
    with transaction.atomic():
        result = call()
        transaction.set_rollback(True)
    return result


# --- the API table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # as in the schema, with {id}
    kind: str  # read | scoped | triage | ops | admin | self
    ok: int = 200
    outside: int = 404  # staff A on a store B object, for "triage"
    obj: Callable[[World, Store], int] | None = None  # the {id}
    body: Callable[[World, Store], dict] = lambda w, s: {}
    before: Callable[[Store], None] = lambda s: None
    anonymous: int | None = None  # for kind "self": what an anonymous caller gets


def _anomaly(w, s):
    return s.anomaly.pk


def _count(w, s):
    return s.count.pk


def _snoozed(s: Store) -> None:
    Anomaly.objects.filter(pk=s.anomaly.pk).update(
        status=AnomalyStatus.SNOOZED, snoozed_until=DAY + dt.timedelta(days=7)
    )


def _triage(action: str, body=lambda w, s: {}, ok: int = 200, before=lambda s: None) -> Op:
    return Op(
        "POST", f"/api/v1/anomalies/{{id}}/{action}/", "triage", ok, 404, _anomaly, body, before
    )


PRODUCT_BODY = {"sku": "NEW1", "name": "New", "category": "Grocery", "unit_price": "1.00"}
API_TABLE: list[Op] = [
    Op("GET", "/api/v1/products/", "read"),
    Op("GET", "/api/v1/products/{id}/", "read", obj=lambda w, s: w.product.pk),
    Op("POST", "/api/v1/products/", "admin", 201, body=lambda w, s: PRODUCT_BODY),
    Op(
        "PUT",
        "/api/v1/products/{id}/",
        "admin",
        obj=lambda w, s: w.product.pk,
        body=lambda w, s: {**PRODUCT_BODY, "sku": "P1"},
    ),
    Op(
        "PATCH",
        "/api/v1/products/{id}/",
        "admin",
        obj=lambda w, s: w.product.pk,
        body=lambda w, s: {"unit_price": "0.01"},
    ),
    Op("DELETE", "/api/v1/products/{id}/", "admin", 204, obj=lambda w, s: w.product.pk),
    Op("GET", "/api/v1/locations/", "read"),
    Op("GET", "/api/v1/locations/{id}/", "scoped", obj=lambda w, s: s.location.pk),
    Op("POST", "/api/v1/locations/", "admin", 201, body=lambda w, s: {"code": "NEW", "name": "N"}),
    Op(
        "PUT",
        "/api/v1/locations/{id}/",
        "admin",
        obj=lambda w, s: s.location.pk,
        body=lambda w, s: {"code": s.location.code, "name": "Renamed"},
    ),
    Op(
        "PATCH",
        "/api/v1/locations/{id}/",
        "admin",
        obj=lambda w, s: s.location.pk,
        body=lambda w, s: {"name": "Renamed"},
    ),
    Op("DELETE", "/api/v1/locations/{id}/", "admin", 204, obj=lambda w, s: s.location.pk),
    Op("GET", "/api/v1/anomalies/", "read"),
    Op("GET", "/api/v1/anomalies/{id}/", "scoped", obj=_anomaly),
    Op("GET", "/api/v1/anomalies/{id}/activity/", "scoped", obj=_anomaly),
    _triage("acknowledge"),
    _triage("acknowledge-until", lambda w, s: {"kind": "receipt"}),
    _triage("assign", lambda w, s: {"me": True}),
    _triage("dismiss", lambda w, s: {"reason": "expected"}),
    _triage("note", lambda w, s: {"note": "checked the shelf"}, ok=201),
    _triage("resolve"),
    _triage("snooze", lambda w, s: {"days": 3}),
    _triage("unsnooze", before=_snoozed),
    Op("GET", "/api/v1/anomaly-statistics/", "read"),
    Op("GET", "/api/v1/detection-runs/", "read"),
    Op("GET", "/api/v1/detection-runs/{id}/", "read", obj=lambda w, s: w.run.pk),
    Op(
        "POST",
        "/api/v1/detection-runs/",
        "ops",
        202,
        body=lambda w, s: {"as_of": DAY.isoformat(), "detectors": ["ghost_stock"]},
    ),
    Op("GET", "/api/v1/effectiveness/", "read"),
    Op("GET", "/api/v1/roi/", "read"),
    Op("GET", "/api/v1/outcomes/", "read"),
    Op("GET", "/api/v1/outcomes/{id}/", "scoped", obj=lambda w, s: s.outcome.pk),
    # The anomaly is checked by the view (it comes in the body): 403 outside the stores.
    Op(
        "POST",
        "/api/v1/outcomes/",
        "triage",
        201,
        403,
        body=lambda w, s: {"anomaly": s.anomaly.pk, "verdict": "true_positive"},
    ),
    Op("GET", "/api/v1/cycle-counts/", "read"),
    Op("GET", "/api/v1/cycle-counts/{id}/", "scoped", obj=_count),
    # The anomaly already has its open count: 200 with it; the service refuses store B (403).
    Op(
        "POST",
        "/api/v1/cycle-counts/",
        "triage",
        200,
        403,
        body=lambda w, s: {"anomaly": s.anomaly.pk},
    ),
    Op(
        "POST",
        "/api/v1/cycle-counts/{id}/record/",
        "triage",
        obj=_count,
        body=lambda w, s: {"counted_quantity": 4, "counted_on": DAY.isoformat()},
    ),
    Op("POST", "/api/v1/cycle-counts/{id}/cancel/", "triage", obj=_count),
    Op("GET", "/api/v1/missed-anomalies/", "read"),
    Op("GET", "/api/v1/missed-anomalies/{id}/", "scoped", obj=lambda w, s: s.miss.pk),
    Op(
        "POST",
        "/api/v1/missed-anomalies/",
        "triage",
        201,
        403,
        body=lambda w, s: {
            "anomaly_type": "ghost_stock",
            "location": s.location.pk,
            "start_date": DAY.isoformat(),
        },
    ),
    # One's own token: anyone may ask for one (no credentials in the body: 400), a signed-in
    # user may revoke theirs.
    Op("POST", "/api/v1/auth/token/", "self", 400, anonymous=400),
    Op("DELETE", "/api/v1/auth/token/", "self", 204),
]


def expected_code(op: Op, persona: str, store: str) -> int | frozenset[int]:
    """The status code the table promises (a set for anonymous)."""
    if persona == ANON:
        return op.anonymous if op.anonymous is not None else ANONYMOUS_CODES
    if op.kind in ("read", "self"):
        return op.ok
    if op.kind == "admin":
        return op.ok if persona == ADMIN else 403
    if op.kind == "ops":
        return op.ok if persona in (OPS, ADMIN) else 403
    if persona in (OPS, ADMIN):
        return op.ok
    if op.kind == "scoped":
        return op.ok if store == "A" else 404
    # triage
    if persona == VIEWER_A:
        return 403
    return op.ok if store == "A" else op.outside


def _schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_the_table_covers_every_api_operation():
    table = {(op.method, op.path) for op in API_TABLE}
    assert len(table) == len(API_TABLE), "an operation has two rows"
    assert _schema_operations() == table


@pytest.mark.parametrize("op", API_TABLE, ids=lambda op: f"{op.method} {op.path}")
def test_api_operation_answers_each_role_and_store_as_the_table_says(world, op):
    actual, expected = {}, {}
    for persona in PERSONAS:
        for store_name in STORES:
            store = world.stores[store_name]
            path = op.path.replace("{id}", str(op.obj(world, store))) if op.obj else op.path

            def call(store=store, path=path, persona=persona):
                op.before(store)
                client = _api(world.users[persona])
                return client.generic(
                    op.method,
                    path,
                    data=json.dumps(op.body(world, store)),
                    content_type="application/json",
                ).status_code

            code = _rolled_back(call)
            want = expected_code(op, persona, store_name)
            actual[persona, store_name] = (
                code if not isinstance(want, frozenset) else (want if code in want else code)
            )
            expected[persona, store_name] = want
    assert actual == expected


# --- what store A staff see of store B ---------------------------------------------------------


def _list_ids(client, path: str) -> set[int]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    data = response.json()
    return {row["id"] for row in (data["results"] if isinstance(data, dict) else data)}


def test_store_a_staff_never_see_store_b_rows_in_api_lists(world):
    a, b = world.stores["A"], world.stores["B"]
    staff, ops = _api(world.users[STAFF_A]), _api(world.users[OPS])
    lists = {
        "/api/v1/anomalies/": lambda s: {s.anomaly.pk, s.outcome.anomaly_id},
        "/api/v1/outcomes/": lambda s: {s.outcome.pk},
        "/api/v1/cycle-counts/": lambda s: {s.count.pk},
        "/api/v1/missed-anomalies/": lambda s: {s.miss.pk},
        "/api/v1/locations/": lambda s: {s.location.pk},
    }
    for path, ids_of in lists.items():
        assert _list_ids(staff, path) == ids_of(a), path
        assert _list_ids(ops, path) == ids_of(a) | ids_of(b), path


def test_store_a_staff_statistics_and_reports_count_store_a_only(world):
    staff, ops = _api(world.users[STAFF_A]), _api(world.users[OPS])

    assert staff.get("/api/v1/anomaly-statistics/").json()["total"] == 2
    assert ops.get("/api/v1/anomaly-statistics/").json()["total"] == 4
    window = "?start=2024-01-01&end=2024-02-28"
    locations = {
        row["location"]
        for row in staff.get(f"/api/v1/effectiveness/{window}").json()["by_location"]
    }
    assert locations == {"SA"}
    assert {
        row["location"] for row in ops.get(f"/api/v1/effectiveness/{window}").json()["by_location"]
    } == {"SA", "SB"}


def test_a_user_without_store_access_sees_no_rows(world):
    nobody = UserFactory(username="nobody")
    grant_role(nobody, STORE_STAFF)  # a role, but no stores
    client = _api(nobody)

    assert _list_ids(client, "/api/v1/anomalies/") == set()
    assert client.get("/api/v1/anomaly-statistics/").json()["total"] == 0
    assert client.get(f"/api/v1/anomalies/{world.stores['A'].anomaly.pk}/").status_code == 404


def test_store_access_withdrawn_after_a_page_loaded_is_refused_on_write(world):
    """The triage service re-checks the stores inside its transaction."""
    from django.core.exceptions import PermissionDenied

    from anomalies.services.triage import anomaly_resolve

    staff = world.users[STAFF_A]
    anomaly = world.stores["A"].anomaly
    LocationAccess.objects.filter(user=staff).get().locations.clear()

    with pytest.raises(PermissionDenied):
        anomaly_resolve(anomaly_id=anomaly.pk, actor=staff)
    anomaly.refresh_from_db()
    assert anomaly.status == AnomalyStatus.OPEN


# --- the admin ---------------------------------------------------------------------------------

EVERYONE = frozenset({VIEWER_A, STAFF_A, OPS, ADMIN})
OPS_UP = frozenset({OPS, ADMIN})
ADMIN_ONLY = frozenset({ADMIN})

# model label -> who may open its changelist; (object of store -> pk) for store-scoped models.
ADMIN_TABLE: dict[str, tuple[frozenset[str], Callable[[World, Store], int] | None]] = {
    "inventory.product": (EVERYONE, None),
    "inventory.location": (EVERYONE, lambda w, s: s.location.pk),
    "inventory.locationaccess": (ADMIN_ONLY, None),
    "inventory.promotion": (EVERYONE, lambda w, s: s.promotion.pk),
    "inventory.calendarevent": (EVERYONE, lambda w, s: s.event.pk),
    "inventory.dailysales": (EVERYONE, lambda w, s: s.sales.pk),
    "inventory.stocklevel": (EVERYONE, lambda w, s: s.stock.pk),
    "inventory.receipt": (EVERYONE, None),
    "inventory.stockadjustment": (EVERYONE, lambda w, s: s.adjustment.pk),
    "anomalies.anomaly": (EVERYONE, lambda w, s: s.anomaly.pk),
    "anomalies.anomalyactivity": (EVERYONE, None),
    "anomalies.detectionrun": (EVERYONE, None),
    "anomalies.detectorconfig": (OPS_UP, None),
    "anomalies.detectionpolicy": (OPS_UP, None),
    "anomalies.savedview": (EVERYONE, None),
    "anomalies.triagesla": (OPS_UP, None),
    "outcomes.outcome": (EVERYONE, lambda w, s: s.outcome.pk),
    "outcomes.cyclecount": (EVERYONE, lambda w, s: s.count.pk),
    "outcomes.missedanomaly": (EVERYONE, lambda w, s: s.miss.pk),
    "outcomes.thresholdproposal": (OPS_UP, None),
    "notifications.notificationchannel": (OPS_UP, None),
    "notifications.notificationlog": (OPS_UP, None),
    "django_celery_beat.periodictask": (OPS_UP, None),
    "django_celery_beat.crontabschedule": (OPS_UP, None),
    "django_celery_beat.intervalschedule": (OPS_UP, None),
    "django_celery_beat.solarschedule": (OPS_UP, None),
    "django_celery_beat.clockedschedule": (OPS_UP, None),
    "auth.user": (ADMIN_ONLY, None),
    "auth.group": (ADMIN_ONLY, None),
    "authtoken.tokenproxy": (ADMIN_ONLY, None),
    "axes.accessattempt": (ADMIN_ONLY, None),
    "axes.accessfailurelog": (ADMIN_ONLY, None),
    "axes.accesslog": (ADMIN_ONLY, None),
}


def _admin(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_admin_table_covers_every_registered_model():
    assert {model._meta.label_lower for model in admin.site._registry} == set(ADMIN_TABLE)


@pytest.mark.parametrize("label", sorted(ADMIN_TABLE))
def test_admin_changelist_and_change_page_answer_each_role_and_store(world, label):
    allowed, obj = ADMIN_TABLE[label]
    app_label, model_name = label.split(".")
    changelist = reverse(f"admin:{app_label}_{model_name}_changelist")
    actual, expected = {}, {}
    for persona in PERSONAS:
        client = _admin(world.users[persona])
        code = client.get(changelist).status_code
        # the policy's changelist redirects to its one row
        ok = 302 if label in ("anomalies.detectionpolicy", "anomalies.triagesla") else 200
        actual[persona, "list"] = code
        expected[persona, "list"] = 302 if persona == ANON else (ok if persona in allowed else 403)
        if obj is None:
            continue
        for store_name in STORES:
            pk = obj(world, world.stores[store_name])
            url = reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
            code = client.get(url).status_code
            actual[persona, store_name] = code
            if persona == ANON:
                want = 302  # to the login page
            elif persona not in allowed:
                want = 403
            elif store_name == "B" and persona in (VIEWER_A, STAFF_A):
                want = 302  # "not found" for them: back to the admin index
            else:
                want = 200
            expected[persona, store_name] = want
    assert actual == expected


def test_admin_changelists_of_store_a_staff_list_no_store_b_row(world):
    staff = _admin(world.users[STAFF_A])
    for label, (_allowed, obj) in ADMIN_TABLE.items():
        if obj is None:
            continue
        app_label, model_name = label.split(".")
        response = staff.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
        shown = {row.pk for row in response.context["cl"].result_list}
        assert obj(world, world.stores["B"]) not in shown, label
        assert obj(world, world.stores["A"]) in shown, label


ANOMALY_ACTIONS = {
    "acknowledge": AnomalyStatus.ACKNOWLEDGED,
    "resolve": AnomalyStatus.RESOLVED,
    "dismiss_expected": AnomalyStatus.DISMISSED,
    "snooze_7_days": AnomalyStatus.SNOOZED,
}


@pytest.mark.parametrize("action", sorted(ANOMALY_ACTIONS))
def test_admin_triage_action_changes_only_what_the_role_and_store_allow(world, action):
    url = reverse("admin:anomalies_anomaly_changelist")
    actual, expected = {}, {}
    for persona in PERSONAS:
        for store_name in STORES:
            anomaly = world.stores[store_name].anomaly

            def call(anomaly=anomaly, persona=persona):
                _admin(world.users[persona]).post(
                    url, {"action": action, "_selected_action": [anomaly.pk]}
                )
                return Anomaly.objects.get(pk=anomaly.pk).status

            actual[persona, store_name] = _rolled_back(call)
            may = persona in (OPS, ADMIN) or (persona == STAFF_A and store_name == "A")
            expected[persona, store_name] = ANOMALY_ACTIONS[action] if may else AnomalyStatus.OPEN
    assert actual == expected


def test_admin_acknowledge_until_action_changes_only_what_the_role_and_store_allow(world):
    url = reverse("admin:anomalies_anomaly_changelist")
    actual, expected = {}, {}
    for persona in PERSONAS:
        for store_name in STORES:
            anomaly = world.stores[store_name].anomaly

            def call(anomaly=anomaly, persona=persona):
                _admin(world.users[persona]).post(
                    url,
                    {
                        "action": "acknowledge_until",
                        "_selected_action": [anomaly.pk],
                        "post": "yes",
                        "kind": "counted",
                    },
                )
                row = Anomaly.objects.get(pk=anomaly.pk)
                return row.status, row.ack_until_kind

            actual[persona, store_name] = _rolled_back(call)
            may = persona in (OPS, ADMIN) or (persona == STAFF_A and store_name == "A")
            expected[persona, store_name] = (
                (AnomalyStatus.ACKNOWLEDGED, "counted") if may else (AnomalyStatus.OPEN, "none")
            )
    assert actual == expected


def test_admin_cycle_count_cancel_action_respects_role_and_store(world):
    url = reverse("admin:outcomes_cyclecount_changelist")
    actual, expected = {}, {}
    for persona in PERSONAS:
        for store_name in STORES:
            count = world.stores[store_name].count

            def call(count=count, persona=persona):
                _admin(world.users[persona]).post(
                    url, {"action": "cancel", "_selected_action": [count.pk]}
                )
                return CycleCount.objects.get(pk=count.pk).status

            actual[persona, store_name] = _rolled_back(call)
            may = persona in (OPS, ADMIN) or (persona == STAFF_A and store_name == "A")
            expected[persona, store_name] = "cancelled" if may else "requested"
    assert actual == expected


def _csv_locations(response, column: str) -> set[str]:
    rows = csv.DictReader(io.StringIO(response.content.decode()))
    return {row[column] for row in rows}


def test_exports_of_store_a_staff_hold_store_a_rows_only(world):
    staff, ops = _admin(world.users[STAFF_A]), _admin(world.users[OPS])
    url = reverse("admin:anomalies_anomaly_changelist")
    every = [s.anomaly.pk for s in world.stores.values()]
    body = {"action": "export_csv", "_selected_action": every, "select_across": "1"}

    assert _csv_locations(staff.post(url, body), "location") == {"SA"}
    assert _csv_locations(ops.post(url, body), "location") == {"SA", "SB"}

    counts_url = reverse("admin:outcomes_cyclecount_changelist")
    every_count = [s.count.pk for s in world.stores.values()]
    count_body = {"action": "export_csv", "_selected_action": every_count, "select_across": "1"}
    staff_rows = staff.post(counts_url, count_body)
    assert staff_rows["X-Rows"] == "1"
    assert ops.post(counts_url, count_body)["X-Rows"] == "2"


def test_dashboard_and_false_alarm_sentence_count_store_a_only(world):
    staff, ops = _admin(world.users[STAFF_A]), _admin(world.users[OPS])

    assert staff.get(reverse("admin-dashboard")).context["summary"]["open_total"] == 1
    assert ops.get(reverse("admin-dashboard")).context["summary"]["open_total"] == 2
    pending = staff.get(reverse("admin-dashboard")).context["summary"]["counts_pending"]
    assert [row["location"] for row in pending["by_location"]] == ["SA"]

    url = reverse("admin:anomalies_anomaly_changelist")
    staff_sentence = staff.get(url).context["false_alarm_summary"]
    ops_sentence = ops.get(url).context["false_alarm_summary"]
    # Store A: 2 new findings that day, 1 of them controlled at q = 0.1 (0.1 expected false).
    assert staff_sentence.startswith("Of the 2 findings raised on 2024-01-25, 1 passed")
    assert "about 0.1 of those" in staff_sentence
    assert ops_sentence.startswith("Of the 4 findings raised on 2024-01-25, 2 passed")
    assert "about 0.2 of those" in ops_sentence


def test_detector_health_page_answers_each_role(world):
    url = reverse("admin-detector-health")
    actual = {persona: _admin(world.users[persona]).get(url).status_code for persona in PERSONAS}
    no_role = _admin(UserFactory(username="no-role")).get(url).status_code

    assert actual == {ANON: 302, VIEWER_A: 200, STAFF_A: 200, OPS: 200, ADMIN: 200}
    assert no_role == 403


def test_detector_health_counts_store_a_only_for_store_a_staff(world):
    staff, ops = _admin(world.users[STAFF_A]), _admin(world.users[OPS])
    Anomaly.objects.filter(pk=world.stores["B"].anomaly.pk).update(
        status=AnomalyStatus.ACKNOWLEDGED, acknowledged_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )

    def seen(client) -> tuple[int, int]:
        health = client.get(reverse("admin-detector-health")).context["health"]
        return sum(row.findings for row in health.false_positives), health.muted_count

    assert seen(staff) == (2, 0)  # store A: its open finding and its resolved one
    assert seen(ops) == (4, 1)


def test_dashboard_is_refused_to_staff_without_a_role(world):
    assert (
        _admin(UserFactory(username="no-role")).get(reverse("admin-dashboard")).status_code == 403
    )


def test_location_autocomplete_offers_store_a_staff_only_their_store(world):
    staff = _admin(world.users[STAFF_A])
    response = staff.get(
        reverse("admin:autocomplete"),
        {"app_label": "outcomes", "model_name": "missedanomaly", "field_name": "location"},
    )

    assert response.status_code == 200
    assert [row["text"] for row in response.json()["results"]] == [str(world.stores["A"].location)]


def test_threshold_proposals_need_the_ops_role(world):
    assert ThresholdProposal.objects.count() == 0  # nothing to leak; the page itself is refused
    url = reverse("admin:outcomes_thresholdproposal_changelist")
    assert _admin(world.users[STAFF_A]).get(url).status_code == 403
    assert _admin(world.users[OPS]).get(url).status_code == 200


def test_a_method_a_view_does_not_offer_is_405_not_500(world):
    client = _api(world.users[OPS])

    assert client.generic("TRACE", "/api/v1/effectiveness/").status_code == 405
    assert client.post("/api/v1/roi/", {}, format="json").status_code == 405
    assert client.generic("TRACE", "/api/v1/anomalies/").status_code == 405
    assert client.options("/api/v1/effectiveness/").status_code == 200
