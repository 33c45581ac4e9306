"""Seed the anomalies table with synthetic findings at scale, for benchmarks (issue 5).

``anomalies_seed`` writes a realistic mix of anomalies (every type, severity, status and
dismiss reason; a year of dates; skewed towards some SKUs and stores) onto its own master data,
so the rows never mix with imported or detected ones and ``anomalies_seed_clear`` can remove
exactly them:

- locations ``BENCH-L001`` ... (``SEED_LOCATION_PREFIX``), SKUs ``BENCH-SKU-00001`` ...
  (``SEED_SKU_PREFIX``), and a few staff users ``bench-ops-01`` ... (``SEED_USER_PREFIX``,
  unusable passwords) who are the assignees. Missing ones are created; existing ones reused.
- Every seeded anomaly is at a seed location; that is what identifies it.

Rows obey the model's constraints and the triage lifecycle (``anomalies.services.triage``):
one row per (type, SKU, location, start date), ``end_date >= start_date``, POS outages are
location-level (no SKU); acknowledged rows have ``acknowledged_at`` and an assignee, snoozed
ones a future ``snoozed_until`` with the severity and value at risk they were snoozed at,
resolved and dismissed ones ``closed_at`` (dismissed: a ``dismiss_reason``), regressed ones
(open again after a resolve) ``regressed_at`` and ``regression_count >= 1``. Recent anomalies
are mostly still being worked on; old ones mostly closed. ``last_run`` and ``parent`` are blank.

Writing (``common.bulk``): PostgreSQL ``COPY ... FROM STDIN`` (text format) straight into the table;
a load at least half the table's size drops its indexes and foreign keys and rebuilds them
after (PostgreSQL's bulk-loading advice), and into an empty table it uses ``COPY FREEZE``.
Then ``ANALYZE`` (plus ``VACUUM`` when the rows did not go in frozen) so plans and index-only
scans are those of a settled table. SQLite: ``executemany`` in batches. Keys are drawn so that
they collide neither with each other nor with earlier seeded rows, so seeding twice adds
``count`` more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import nullcontext
from decimal import Decimal

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone

from anomalies.models import (
    Anomaly,
    AnomalyType,
)
from common.bulk import bulk_insert, copy_prepared
from common.bulk_load import constraints_dropped, is_bulk_load
from common.bulk_render import rows_prepare
from inventory.models import Location, Product
from lab.bench.seed_rows import (
    COLUMNS,
    MAX_LOCATIONS,
    MAX_SKUS,
    pack_keys,
    seed_frame,
)

SEED_LOCATION_PREFIX = "BENCH-L"
SEED_SKU_PREFIX = "BENCH-SKU-"
SEED_USER_PREFIX = "bench-ops-"
SEED_CATEGORIES = ("Bench grocery", "Bench household", "Bench drinks", "Bench health", "Bench DIY")
SEED_USERS = 5
# PostgreSQL: rows rendered and written per COPY block.
COPY_BATCH_ROWS = 100_000
REBUILD_MAINTENANCE_WORK_MEM = "256MB"
# Columns whose time of day is stored (the others are dates).
TIMESTAMP_COLUMNS = tuple(name for name in COLUMNS if name.endswith("_at"))
SeedProgress = Callable[[int, int], None]
"""``progress(done_rows, total_rows)``, called after each written batch."""


def anomalies_seed(
    *,
    count: int,
    locations: int = 100,
    skus: int = 1000,
    seed: int = 7,
    as_of: dt.date | None = None,
    vacuum: bool = True,
    progress: SeedProgress | None = None,
) -> int:
    """Insert ``count`` synthetic anomalies over ``locations`` stores and ``skus`` SKUs.

    ``as_of`` (default: today) is the latest detection date; start dates spread over the
    ``SEED_SPAN_DAYS`` days before it. The same ``seed`` on an empty seed set gives the same
    anomalies (timestamps capped at now aside). Seed locations, SKUs and users are created
    when missing. Runs in one transaction (on PostgreSQL a bulk load locks the anomalies
    table exclusively until commit); on PostgreSQL it then analyzes the tables, and vacuums
    the anomalies when ``vacuum``, outside a transaction and not loaded frozen (so later
    timings do not share the machine with autovacuum).

    Returns the number of anomalies inserted (``count``). Raises ``ValueError`` for a negative
    ``count``, ``locations`` outside 1..4095, ``skus`` outside 1..1,048,574, or more
    location-level POS outages than ``locations`` x ``SEED_SPAN_DAYS`` can hold.
    1,000,000 rows into an empty table: about 45 s on PostgreSQL on 2 busy cores (a third
    building the frame and the COPY text, a third COPY, a third index builds).
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if not 1 <= locations <= MAX_LOCATIONS:
        raise ValueError(f"locations must be 1..{MAX_LOCATIONS}, not {locations}")
    if not 1 <= skus <= MAX_SKUS:
        raise ValueError(f"skus must be 1..{MAX_SKUS}, not {skus}")
    if count == 0:
        return 0
    as_of = as_of or timezone.localdate()
    rng = np.random.default_rng(seed)
    with transaction.atomic():
        location_ids = _seed_locations(locations)
        product_ids, prices = _seed_products(skus)
        user_ids = _seed_users()
        taken = _existing_keys(location_ids, product_ids)
        frame = seed_frame(
            rng=rng,
            count=count,
            location_ids=location_ids,
            product_ids=product_ids,
            unit_prices=prices,
            user_ids=user_ids,
            as_of=as_of,
            now=timezone.now(),
            taken_keys=taken,
        )
        if connection.vendor == "postgresql":
            frozen = _copy_postgresql(frame, progress)
        elif connection.vendor == "sqlite":
            _insert_sqlite(frame, progress)
        else:
            raise NotImplementedError(f"anomalies_seed does not support {connection.vendor}")
    if connection.vendor == "postgresql":
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            # Plans as on a settled table: fresh statistics, and a visibility map for
            # index-only scans (VACUUM cannot run in a transaction, as in tests).
            vacuum = vacuum and not frozen and not connection.in_atomic_block
            cursor.execute(
                f"{'VACUUM ANALYZE' if vacuum else 'ANALYZE'} {qn(Anomaly._meta.db_table)}"
            )
            for model in (Product, Location):
                cursor.execute(f"ANALYZE {qn(model._meta.db_table)}")
    return len(frame)


def anomalies_seed_clear() -> int:
    """Delete every seeded anomaly (those at ``BENCH-L...`` locations) and the seed master data.

    Activity rows, cycle counts and other rows pointing at seeded anomalies (made while
    benchmarking) go first, through the ORM so their own rules apply; the anomalies themselves
    with one ``DELETE`` (the ORM would load a million rows to cascade). Then the seed SKUs,
    locations and users. Returns the number of anomalies deleted.
    """
    with transaction.atomic():
        location_ids = list(
            Location.objects.filter(code__startswith=SEED_LOCATION_PREFIX).values_list(
                "pk", flat=True
            )
        )
        deleted = 0
        if location_ids:
            seeded = Anomaly.objects.filter(location_id__in=location_ids).values("pk")
            for relation in Anomaly._meta.related_objects:
                related = relation.related_model._base_manager.filter(
                    **{f"{relation.field.name}__in": seeded}
                )
                if relation.on_delete is models.SET_NULL:
                    related.update(**{relation.field.name: None})
                else:  # CASCADE
                    related.delete()
            table = Anomaly._meta.db_table
            rows = Anomaly.objects.filter(location_id__in=location_ids).count()
            with (
                constraints_dropped(table, indexes=False, referencing=True)
                if is_bulk_load(table, rows)
                else nullcontext(),
                connection.cursor() as cursor,
            ):
                cursor.execute(
                    f"DELETE FROM {connection.ops.quote_name(table)} "
                    f"WHERE location_id IN ({', '.join(['%s'] * len(location_ids))})",
                    location_ids,
                )
                deleted = max(cursor.rowcount, 0)
        Product.objects.filter(sku__startswith=SEED_SKU_PREFIX).delete()
        Location.objects.filter(pk__in=location_ids).delete()
        get_user_model().objects.filter(username__startswith=SEED_USER_PREFIX).delete()
    return deleted


# --- master data -------------------------------------------------------------------------------


def _seed_locations(count: int) -> np.ndarray:
    codes = [f"{SEED_LOCATION_PREFIX}{i:03d}" for i in range(1, count + 1)]
    Location.objects.bulk_create(
        [Location(code=code, name=f"Bench store {code[-3:]}") for code in codes],
        ignore_conflicts=True,
    )
    by_code = dict(Location.objects.filter(code__in=codes).values_list("code", "pk"))
    return np.array([by_code[code] for code in codes], dtype=np.int64)


def _seed_products(count: int) -> tuple[np.ndarray, np.ndarray]:
    skus = [f"{SEED_SKU_PREFIX}{i:05d}" for i in range(1, count + 1)]
    rng = np.random.default_rng(0)  # prices are fixed per SKU, whatever the anomaly seed
    prices = np.round(np.exp(rng.normal(1.2, 0.8, count)), 2).clip(0.25, 500)
    Product.objects.bulk_create(
        [
            Product(
                sku=sku,
                name=f"Bench product {sku[-5:]}",
                category=SEED_CATEGORIES[i % len(SEED_CATEGORIES)],
                unit_price=Decimal(f"{prices[i]:.2f}"),
                unit_cost=Decimal(f"{prices[i] * 0.6:.2f}"),
            )
            for i, sku in enumerate(skus)
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    rows = {
        sku: (pk, price)
        for sku, pk, price in Product.objects.filter(sku__in=skus).values_list(
            "sku", "pk", "unit_price"
        )
    }
    ids = np.array([rows[sku][0] for sku in skus], dtype=np.int64)
    unit_prices = np.array([float(rows[sku][1]) for sku in skus])
    return ids, unit_prices


def _seed_users() -> np.ndarray:
    user_model = get_user_model()
    ids = []
    for i in range(1, SEED_USERS + 1):
        user, created = user_model.objects.get_or_create(
            username=f"{SEED_USER_PREFIX}{i:02d}", defaults={"is_staff": True}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        ids.append(user.pk)
    return np.array(ids, dtype=np.int64)


def _existing_keys(location_ids: np.ndarray, product_ids: np.ndarray) -> np.ndarray:
    """Packed keys of the anomalies already at the seed locations (a sorted int64 array)."""
    rows = list(
        Anomaly.objects.filter(location_id__in=location_ids.tolist())
        .order_by()
        .values_list("anomaly_type", "product_id", "location_id", "start_date")
    )
    if not rows:
        return np.empty(0, dtype=np.int64)
    frame = pd.DataFrame(rows, columns=["anomaly_type", "product_id", "location_id", "start_date"])
    return seed_keys(frame, location_ids=location_ids, product_ids=product_ids)


def seed_keys(
    frame: pd.DataFrame, *, location_ids: np.ndarray, product_ids: np.ndarray
) -> np.ndarray:
    """The unique keys of ``frame``'s rows, packed as ``seed_frame`` draws them: a sorted
    int64 array to pass as ``taken_keys``.

    ``frame`` has ``anomaly_type``, ``product_id`` (NULL for location-level rows),
    ``location_id`` (one of ``location_ids``) and ``start_date`` (dates or ``datetime64``).
    SKUs outside ``product_ids`` get a slot of their own: they cannot collide with a draw.
    """
    type_index = {name: i for i, name in enumerate(AnomalyType.values)}
    product_slot = {int(pk): i for i, pk in enumerate(product_ids)}
    location_slot = {int(pk): i for i, pk in enumerate(location_ids)}
    no_sku = len(product_ids)
    products = frame["product_id"].map(
        lambda pk: no_sku if pd.isna(pk) else product_slot.get(int(pk), MAX_SKUS + 1)
    )
    starts = pd.to_datetime(frame["start_date"]).to_numpy().astype("datetime64[D]")
    ordinals = starts.astype(np.int64) + dt.date(1970, 1, 1).toordinal()
    return np.unique(
        pack_keys(
            frame["anomaly_type"].map(type_index).to_numpy(np.int64),
            products.to_numpy(np.int64),
            frame["location_id"].map(location_slot).to_numpy(np.int64),
            ordinals,
        )
    )


# --- writing -----------------------------------------------------------------------------------


def _copy_postgresql(frame: pd.DataFrame, progress: SeedProgress | None) -> bool:
    """COPY ``frame`` into the anomalies table; returns whether the rows went in frozen.

    A bulk load (``is_bulk_load``) rebuilds indexes and foreign keys afterwards. A bulk load
    into an empty table (a fresh benchmark database) also truncates it (a no-op that PostgreSQL
    requires) and uses ``COPY FREEZE``: rows arrive frozen and all-visible, so they need no
    ``VACUUM`` (which would otherwise rewrite every page to set hint bits). Rows are rendered
    one block at a time (``common.bulk_render``), so memory stays at one block's text.
    """
    qn = connection.ops.quote_name
    table = Anomaly._meta.db_table
    total = len(frame)
    rebuild = is_bulk_load(table, total)
    freeze = False
    if rebuild:
        with connection.cursor() as cursor:
            # Index builds sort in memory instead of spilling to disk (this transaction only).
            cursor.execute(f"SET LOCAL maintenance_work_mem = '{REBUILD_MAINTENANCE_WORK_MEM}'")
            cursor.execute(f"LOCK TABLE {qn(table)} IN ACCESS EXCLUSIVE MODE")
            cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {qn(table)})")
            freeze = cursor.fetchone()[0]
    parts = (
        rows_prepare(
            _by_column(frame.iloc[begin : begin + COPY_BATCH_ROWS]),
            vendor="postgresql",
            timestamps=TIMESTAMP_COLUMNS,
        )
        for begin in range(0, total, COPY_BATCH_ROWS)
    )
    with (
        # TRUNCATE needs the foreign keys that point at the table out of the way too.
        constraints_dropped(table, indexes=True, referencing=freeze) if rebuild else nullcontext()
    ):
        if freeze:
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {qn(table)}")
        copy_prepared(table, parts, total=total, freeze=freeze, progress=progress)
    return freeze


def _insert_sqlite(frame: pd.DataFrame, progress: SeedProgress | None) -> None:
    prepared = rows_prepare(_by_column(frame), vendor="sqlite", timestamps=TIMESTAMP_COLUMNS)
    bulk_insert(Anomaly, prepared, progress=progress)


def _by_column(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s ``COLUMNS`` renamed to the table's column names (the same here)."""
    return frame.loc[:, list(COLUMNS)]


__all__ = [
    "SEED_LOCATION_PREFIX",
    "SEED_SKU_PREFIX",
    "SEED_USER_PREFIX",
    "anomalies_seed",
    "anomalies_seed_clear",
    "seed_frame",
    "seed_keys",
]
