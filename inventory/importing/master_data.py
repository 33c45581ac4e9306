"""The small files of a bundle (products, locations, calendar, promotions): read whole, parsed
and checked first, and written inside the bundle's transaction.

Products and locations are upserted on their natural keys (``sku``, ``code``) with
``bulk_upsert``; calendar events have partial unique constraints (a blank location means every
location) and are upserted by matching keys in Python.

Promotions may overlap (two campaigns of one SKU starting the same day: a week at 20 % off and
a weekend at 25 %); on a day several cover, the deepest discount applies (the detectors' rule).
The file replaces the stored promotions of each (SKU, location, start date) it names, so a
campaign shortened or re-priced in the file is updated and importing it twice changes nothing;
the same promotion twice in the file is an error.

SKUs are case-sensitive: ``85123a`` and ``85123A`` are two products (real catalogues use case
for variants: the Online Retail file prices 112 such pairs apart). A location code that differs
only in case from a stored one or another in the file is refused: that is a typo, not a store.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from common.bulk import bulk_upsert
from inventory.importing.errors import ErrorLog, shown
from inventory.importing.reading import csv_layout, read_csv_strings
from inventory.importing.summary import FileSummary, Progress
from inventory.importing.validation import SheetValidator, strip_strings
from inventory.models import CalendarEvent, Location, Product, Promotion

DISCOUNT_DECIMALS = 2
# DecimalField(max_digits=5, decimal_places=2), and a discount above 100 % makes no sense.
DISCOUNT_FIELD_MAX = 1000
DISCOUNT_PCT_MAX = 100
# Calendar events whose name contains this (case-insensitive) mark the store closed.
CLOSED_MARKER = "closed"
# Ids per DELETE (below SQLite's bound on query parameters).
DELETE_BATCH_ROWS = 500


def _parse_products(sheet: SheetValidator, _skus: pd.Index, _locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "sku": sheet.text("sku", max_length=64),
            "name": sheet.text("name", max_length=255, required=False),
            "category": sheet.text("category", max_length=128, required=False),
            "unit_price": sheet.decimal("unit_price"),
            "unit_cost": sheet.decimal("unit_cost", required=False),
        }
    )
    sheet.duplicates(frame[["sku"]], what="sku")
    return frame


def _parse_locations(sheet: SheetValidator, _skus: pd.Index, stored: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "code": sheet.text("code", max_length=64),
            "name": sheet.text("name", max_length=255, required=False),
        }
    )
    sheet.duplicates(frame[["code"]], what="code")
    _refuse_case_variants(sheet, frame["code"], stored)
    return frame


def case_variants(codes: pd.Series, stored: pd.Index) -> pd.Series:
    """Per code of ``codes`` (NaN = bad, skipped) that differs only in case from a code in
    ``stored`` or from an earlier different code of ``codes``: that other code (else NaN)."""
    known = pd.Series(stored.to_numpy(dtype=object), dtype=object)
    known = known.groupby(known.str.casefold().to_numpy(), sort=False).first()
    usable = codes.dropna()
    folded = usable.str.casefold()
    earlier = usable.groupby(folded.to_numpy(), sort=False).transform("first")
    other = folded.map(known).where(lambda found: found.notna(), earlier)
    # A code stored as it is stays valid, even beside stored case variants of it.
    clash = other.notna() & (other != usable) & ~usable.isin(stored)
    return other[clash].reindex(codes.index)


def _refuse_case_variants(sheet: SheetValidator, codes: pd.Series, stored: pd.Index) -> None:
    other = case_variants(codes, stored)
    stored_set = set(stored)
    sheet.report(
        other.notna(),
        "code",
        lambda i: (
            f"location {shown(codes[i])} differs only in case from "
            f"{'stored location' if other[i] in stored_set else 'location'} {shown(other[i])} "
            "(codes are case-sensitive)"
        ),
    )


def _parse_calendar(sheet: SheetValidator, _skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "date": sheet.date("date"),
            "event": sheet.text("event", max_length=255),
            "location": sheet.reference("location", locations, kind="location", required=False),
        }
    )
    frame["is_closed"] = frame["event"].str.contains(CLOSED_MARKER, case=False, regex=False)
    sheet.duplicates(frame[["date", "event", "location"]], what="date, event, location")
    return frame


def _parse_promotions(sheet: SheetValidator, skus: pd.Index, locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "start_date": sheet.date("start_date"),
            "end_date": sheet.date("end_date"),
            "sku": sheet.reference("sku", skus, kind="SKU"),
            "location": sheet.reference("location", locations, kind="location", required=False),
            "discount_pct": sheet.decimal(
                "discount_pct", maximum=DISCOUNT_FIELD_MAX, decimals=DISCOUNT_DECIMALS
            ),
        }
    )
    raw_discount = strip_strings(sheet.frame["discount_pct"])
    sheet.report(
        frame["discount_pct"] > DISCOUNT_PCT_MAX,
        "discount_pct",
        lambda i: f"{shown(raw_discount[i])} is not between 0 and {DISCOUNT_PCT_MAX}",
    )
    raw_start = strip_strings(sheet.frame["start_date"])
    raw_end = strip_strings(sheet.frame["end_date"])
    sheet.report(
        frame["end_date"] < frame["start_date"],
        "end_date",
        lambda i: f"{shown(raw_end[i])} is before start_date {shown(raw_start[i])}",
    )
    sheet.duplicates(
        frame[list(PROMOTION_FIELDS)],
        what=", ".join(PROMOTION_FIELDS),
    )
    return frame


# A promotion is these values; the same values twice in a file is one promotion twice.
PROMOTION_FIELDS = ("sku", "location", "start_date", "end_date", "discount_pct")


_SMALL_FILES: dict[str, dict] = {
    "products.csv": {
        "required": ["sku", "name", "category", "unit_price", "unit_cost"],
        "parse": _parse_products,
    },
    "locations.csv": {"required": ["code", "name"], "parse": _parse_locations},
    "calendar.csv": {"required": ["date", "event", "location"], "parse": _parse_calendar},
    "promotions.csv": {
        "required": ["start_date", "end_date", "sku", "location", "discount_pct"],
        "parse": _parse_promotions,
    },
}


@dataclass
class _Parsed:
    frame: pd.DataFrame
    rows: int
    seconds: float


def _small_file_parse(
    name: str, path: Path, log: ErrorLog, skus: pd.Index, locations: pd.Index
) -> _Parsed | None:
    started = time.perf_counter()
    spec = _SMALL_FILES[name]
    layout = csv_layout(path)
    raw = read_csv_strings(path, name, log, required=spec["required"], layout=layout)
    if raw is None:
        return None
    sheet = SheetValidator(
        log,
        raw[[c for c in raw.columns if c in spec["required"]]],
        record_starts=None if layout is None else layout.record_starts,
    )
    sheet.refuse_nul()
    frame = spec["parse"](sheet, skus, locations)
    return _Parsed(frame, len(raw), time.perf_counter() - started)


def _small_files_parse(
    directory: Path, names: list[str], skus: pd.Index, locations: pd.Index
) -> tuple[dict[str, _Parsed], dict[str, ErrorLog], pd.Index, pd.Index]:
    """Parse the small files in ``names``; return the parsed ones, the error log of each file
    with errors, and the SKUs and location codes known (database plus bundle)."""
    parsed: dict[str, _Parsed] = {}
    errors: dict[str, ErrorLog] = {}
    for name in ("products.csv", "locations.csv", "calendar.csv", "promotions.csv"):
        if name not in names:
            continue
        log = ErrorLog(name)
        item = _small_file_parse(name, directory / name, log, skus, locations)
        if log:
            errors[name] = log
        elif item is not None:
            parsed[name] = item
        # Later files may refer to the codes of this bundle, even when some rows are bad.
        if name == "products.csv" and item is not None:
            skus = skus.union(pd.Index(item.frame["sku"].dropna())).drop_duplicates()
        if name == "locations.csv" and item is not None:
            locations = locations.union(pd.Index(item.frame["code"].dropna())).drop_duplicates()
    return parsed, errors, skus, locations


# --- writing (inside the bundle's transaction) ----------------------------------------------------


def _small_file_write(name: str, item: _Parsed, progress: Progress | None) -> FileSummary:
    started = time.perf_counter()
    report = None if progress is None else (lambda done, total: progress(name, done, total))
    model, written = _WRITERS[name](item.frame, report)
    seconds = item.seconds + time.perf_counter() - started
    return FileSummary(name, model.__name__, item.rows, written, seconds)


def _id_map(model: type[Product] | type[Location], code_field: str) -> dict[str, int]:
    return dict(model.objects.values_list(code_field, "id"))


def _with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace the ``sku``/``location`` code columns by ``product_id``/``location_id``."""
    out = frame.drop(columns=[c for c in ("sku", "location") if c in frame.columns])
    # Blank location (calendar, promotions) means every location: NULL.
    location_ids = frame["location"].map(_id_map(Location, "code"))
    out.insert(0, "location_id", location_ids.astype("Int64"))
    if "sku" in frame.columns:
        product_ids = frame["sku"].map(_id_map(Product, "sku"))
        out.insert(0, "product_id", product_ids.astype("int64"))
    return out


def _write_locations(frame: pd.DataFrame, progress) -> tuple[type, int]:
    return Location, bulk_upsert(Location, frame, ["code"], ["name"], progress=progress)


def _write_products(frame: pd.DataFrame, progress) -> tuple[type, int]:
    updates = ["name", "category", "unit_price", "unit_cost"]
    return Product, bulk_upsert(Product, frame, ["sku"], updates, progress=progress)


def _as_date(value: pd.Timestamp) -> dt.date:
    return value.date()


def _optional_id(value: object) -> int | None:
    return None if pd.isna(value) else int(value)


def _write_calendar(frame: pd.DataFrame, progress) -> tuple[type, int]:
    rows = _with_ids(frame)
    existing = {
        (event.date, event.name, event.location_id): event
        for event in CalendarEvent.objects.filter(
            date__gte=_as_date(rows["date"].min()), date__lte=_as_date(rows["date"].max())
        )
    }
    incoming = [
        CalendarEvent(
            date=_as_date(date),
            name=name,
            location_id=_optional_id(location_id),
            is_closed=bool(closed),
        )
        for date, name, location_id, closed in zip(
            rows["date"], rows["event"], rows["location_id"], rows["is_closed"], strict=True
        )
    ]
    return CalendarEvent, _upsert_small(
        CalendarEvent, incoming, existing, ("date", "name", "location_id"), ["is_closed"], progress
    )


def _write_promotions(frame: pd.DataFrame, progress) -> tuple[type, int]:
    """Replace the stored promotions of each (product, location, start date) of the file by
    the file's, unless they are the same already."""
    rows = _with_ids(frame)
    incoming: dict[tuple, list[Promotion]] = {}
    for product_id, location_id, start, end, discount in zip(
        rows["product_id"],
        rows["location_id"],
        rows["start_date"],
        rows["end_date"],
        rows["discount_pct"],
        strict=True,
    ):
        promo = Promotion(
            product_id=int(product_id),
            location_id=_optional_id(location_id),
            start_date=_as_date(start),
            end_date=_as_date(end),
            discount_pct=Decimal(f"{discount:.{DISCOUNT_DECIMALS}f}"),
        )
        incoming.setdefault(_promotion_key(promo), []).append(promo)
    stored: dict[tuple, list[Promotion]] = {}
    for promo in Promotion.objects.filter(
        start_date__gte=_as_date(rows["start_date"].min()),
        start_date__lte=_as_date(rows["start_date"].max()),
    ).order_by("pk"):
        stored.setdefault(_promotion_key(promo), []).append(promo)
    replaced = [
        key
        for key, promos in incoming.items()
        if _promotion_terms(promos) != _promotion_terms(stored.get(key, []))
    ]
    old = [promo.pk for key in replaced for promo in stored.get(key, [])]
    for start in range(0, len(old), DELETE_BATCH_ROWS):
        Promotion.objects.filter(pk__in=old[start : start + DELETE_BATCH_ROWS]).delete()
    new = [promo for key in replaced for promo in incoming[key]]
    Promotion.objects.bulk_create(new, batch_size=1000)
    if progress:
        progress(len(rows), len(rows))
    return Promotion, len(new)


def _promotion_key(promo: Promotion) -> tuple:
    return (promo.product_id, promo.location_id, promo.start_date)


def _promotion_terms(promos: list[Promotion]) -> list[tuple]:
    return sorted((promo.end_date, promo.discount_pct) for promo in promos)


def _upsert_small(model, incoming, existing, key, update_fields, progress) -> int:
    """Upsert a few rows of a table with partial unique constraints (a nullable key column
    that ON CONFLICT cannot target on every backend) by matching keys in Python."""
    create, update = [], []
    for obj in incoming:
        current = existing.get(tuple(getattr(obj, name) for name in key))
        if current is None:
            create.append(obj)
        elif any(getattr(current, f) != getattr(obj, f) for f in update_fields):
            for name in update_fields:
                setattr(current, name, getattr(obj, name))
            update.append(current)
    model.objects.bulk_create(create, batch_size=1000)
    model.objects.bulk_update(update, update_fields, batch_size=1000)
    if progress:
        progress(len(incoming), len(incoming))
    return len(create) + len(update)


_WRITERS: dict[str, Callable[[pd.DataFrame, Callable | None], tuple[type, int]]] = {
    "locations.csv": _write_locations,
    "products.csv": _write_products,
    "calendar.csv": _write_calendar,
    "promotions.csv": _write_promotions,
}
