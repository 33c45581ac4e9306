"""The small files of a bundle (products, locations, calendar, promotions): read whole, parsed
and checked first, and written inside the bundle's transaction.

Products and locations are upserted on their natural keys (``sku``, ``code``) with
``bulk_upsert``; calendar events and promotions have partial unique constraints (a blank
location means every location) and are upserted by matching keys in Python.
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
from inventory.importing.errors import ErrorLog
from inventory.importing.reading import read_csv_strings
from inventory.importing.summary import FileSummary, Progress
from inventory.importing.validation import SheetValidator, strip_strings
from inventory.models import CalendarEvent, Location, Product, Promotion

DISCOUNT_DECIMALS = 2
# DecimalField(max_digits=5, decimal_places=2), and a discount above 100 % makes no sense.
DISCOUNT_FIELD_MAX = 1000
DISCOUNT_PCT_MAX = 100
# Calendar events whose name contains this (case-insensitive) mark the store closed.
CLOSED_MARKER = "closed"


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


def _parse_locations(sheet: SheetValidator, _skus: pd.Index, _locations: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "code": sheet.text("code", max_length=64),
            "name": sheet.text("name", max_length=255, required=False),
        }
    )
    sheet.duplicates(frame[["code"]], what="code")
    return frame


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
        lambda i: f"{raw_discount[i]!r} is not between 0 and {DISCOUNT_PCT_MAX}",
    )
    raw_start = strip_strings(sheet.frame["start_date"])
    raw_end = strip_strings(sheet.frame["end_date"])
    sheet.report(
        frame["end_date"] < frame["start_date"],
        "end_date",
        lambda i: f"{raw_end[i]!r} is before start_date {raw_start[i]!r}",
    )
    sheet.duplicates(frame[["sku", "location", "start_date"]], what="sku, location, start_date")
    return frame


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
    raw = read_csv_strings(path, name, log, required=spec["required"])
    if raw is None:
        return None
    sheet = SheetValidator(log, raw[[c for c in raw.columns if c in spec["required"]]])
    frame = spec["parse"](sheet, skus, locations)
    return _Parsed(frame, len(raw), time.perf_counter() - started)


def _small_files_parse(
    directory: Path, names: list[str], skus: pd.Index, locations: pd.Index
) -> tuple[dict[str, _Parsed], dict[str, list[str]], pd.Index, pd.Index]:
    """Parse the small files in ``names``; return the parsed ones, the errors per file, and
    the SKUs and location codes known (database plus bundle)."""
    parsed: dict[str, _Parsed] = {}
    errors: dict[str, list[str]] = {}
    for name in ("products.csv", "locations.csv", "calendar.csv", "promotions.csv"):
        if name not in names:
            continue
        log = ErrorLog(name)
        item = _small_file_parse(name, directory / name, log, skus, locations)
        if log:
            errors[name] = log.messages()
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
    rows = _with_ids(frame)
    existing = {
        (promo.product_id, promo.location_id, promo.start_date): promo
        for promo in Promotion.objects.filter(
            start_date__gte=_as_date(rows["start_date"].min()),
            start_date__lte=_as_date(rows["start_date"].max()),
        )
    }
    incoming = [
        Promotion(
            product_id=int(product_id),
            location_id=_optional_id(location_id),
            start_date=_as_date(start),
            end_date=_as_date(end),
            discount_pct=Decimal(f"{discount:.{DISCOUNT_DECIMALS}f}"),
        )
        for product_id, location_id, start, end, discount in zip(
            rows["product_id"],
            rows["location_id"],
            rows["start_date"],
            rows["end_date"],
            rows["discount_pct"],
            strict=True,
        )
    ]
    return Promotion, _upsert_small(
        Promotion,
        incoming,
        existing,
        ("product_id", "location_id", "start_date"),
        ["end_date", "discount_pct"],
        progress,
    )


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
