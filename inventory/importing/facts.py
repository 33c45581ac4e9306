"""The fact files (sales, inventory, receipts): their columns and target tables, and the checks
of a chunk of rows that need more than one cell (the key's codes, keys repeated across chunks,
receipts of one day summed).

A fact row is keyed by date, SKU and location; within a file a chunk's rows are held as numpy
columns (``day``, ``sku`` and ``location`` positions, ``line``, the value columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import models

from inventory.importing.errors import ErrorLog
from inventory.importing.validation import (
    _FIRST_DAY,
    _LAST_DAY,
    _NO_DAY,
    INT_MAX,
    SheetValidator,
)
from inventory.models import DailySales, Location, Product, Receipt, StockLevel


@dataclass(frozen=True)
class _FactFile:
    """A fact file: one row per date, SKU and location, upserted on that key."""

    name: str
    model: type[models.Model]
    columns: tuple[str, ...]
    optional: tuple[str, ...]
    values: Callable[[SheetValidator], dict[str, pd.Series]]
    integers: tuple[str, ...]
    updates: tuple[str, ...]
    sum_repeats: bool = False
    """Rows repeating a key are summed (several deliveries a day) instead of refused."""

    @property
    def required(self) -> tuple[str, ...]:
        return ("date", "sku", "location", *self.columns)


def _sales_values(sheet: SheetValidator) -> dict[str, pd.Series]:
    units = sheet.integer("units", minimum=0, hint=" (returns go in units_returned)")
    if "units_returned" in sheet.frame.columns:
        returned = sheet.integer("units_returned", minimum=0, blank=0)
    else:
        returned = pd.Series(0.0, index=sheet.frame.index)
    price = sheet.decimal("unit_price", required=False)
    return {"units_sold": units, "units_returned": returned, "unit_price": price}


def _inventory_values(sheet: SheetValidator) -> dict[str, pd.Series]:
    # Book stock can be negative in real systems (sold before the receipt was booked).
    return {"on_hand": sheet.integer("on_hand")}


def _receipt_values(sheet: SheetValidator) -> dict[str, pd.Series]:
    return {"units": sheet.integer("units", minimum=0)}


_FACT_FILES = {
    spec.name: spec
    for spec in (
        _FactFile(
            name="sales.csv",
            model=DailySales,
            columns=("units", "unit_price"),
            optional=("units_returned",),
            values=_sales_values,
            integers=("units_sold", "units_returned"),
            updates=("units_sold", "units_returned", "unit_price"),
        ),
        _FactFile(
            name="inventory.csv",
            model=StockLevel,
            columns=("on_hand",),
            optional=(),
            values=_inventory_values,
            integers=("on_hand",),
            updates=("on_hand",),
        ),
        _FactFile(
            name="receipts.csv",
            model=Receipt,
            columns=("units",),
            optional=(),
            values=_receipt_values,
            integers=("units",),
            updates=("units",),
            sum_repeats=True,
        ),
    )
}
_FACT_KEYS = ("product_id", "location_id", "date")


@dataclass(frozen=True)
class _Codes:
    """The SKUs and location codes fact rows may name and, once written, their ids
    (ascending, so that positions sort like ids)."""

    skus: pd.Index
    locations: pd.Index
    product_ids: np.ndarray | None = None
    location_ids: np.ndarray | None = None

    @classmethod
    def from_database(cls) -> _Codes:
        products = list(Product.objects.order_by("id").values_list("sku", "id"))
        locations = list(Location.objects.order_by("id").values_list("code", "id"))
        return cls(
            skus=pd.Index([sku for sku, _id in products], dtype=object),
            locations=pd.Index([code for code, _id in locations], dtype=object),
            product_ids=np.array([pk for _sku, pk in products], dtype=np.int64),
            location_ids=np.array([pk for _code, pk in locations], dtype=np.int64),
        )

    def key(self, location: np.ndarray, day: np.ndarray, sku: np.ndarray) -> np.ndarray:
        """One int64 per row that sorts like (location, date, SKU): the unique key's order."""
        day_span = _LAST_DAY - _FIRST_DAY + 1
        return (location * day_span + (day - _FIRST_DAY)) * len(self.skus) + sku


class _KeySet:
    """The keys of the rows read so far from one file, to find keys repeated in a later
    chunk. 12 bytes a row; a chunk is compared only with the earlier chunks whose key range
    overlaps its own (for a file sorted by date: the previous one)."""

    def __init__(self) -> None:
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []

    def repeats(self, keys: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add the rows of one chunk (``keys`` and ``lines`` in line order); return the
        positions of the rows repeating an earlier row's key and that earlier row's line."""
        if not len(keys):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.ones(len(ordered), dtype=bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        run = np.cumsum(starts) - 1  # distinct key number of each ordered row
        distinct = ordered[starts]
        first_line = lines[order][starts].astype(np.int64)
        earlier = np.full(len(distinct), -1, dtype=np.int64)
        for block_keys, block_lines in self._blocks:
            low = np.searchsorted(distinct, block_keys[0], side="left")
            high = np.searchsorted(distinct, block_keys[-1], side="right")
            if low >= high:
                continue
            candidates = distinct[low:high]
            at = np.minimum(np.searchsorted(block_keys, candidates), len(block_keys) - 1)
            hit = block_keys[at] == candidates
            earlier[low:high][hit] = block_lines[at[hit]]
        new = earlier < 0
        if new.any():
            line_type = np.uint32 if first_line.max() < 2**32 else np.int64
            self._blocks.append((distinct[new], first_line[new].astype(line_type)))
        origin = np.where(new, first_line, earlier)
        repeated = ~starts | ~new[run]
        return order[repeated], origin[run[repeated]]


def _fact_rows(spec: _FactFile, sheet: SheetValidator, codes: _Codes) -> dict[str, np.ndarray]:
    """Parse one chunk: ``location``/``sku`` positions in ``codes`` (-1 where bad), ``day``
    (``_NO_DAY`` where bad), ``line`` and the value columns (float64, NaN where bad)."""
    rows = {
        "day": sheet.days("date"),
        "sku": sheet.positions("sku", codes.skus, kind="SKU"),
        "location": sheet.positions("location", codes.locations, kind="location"),
        "line": sheet.lines.to_numpy(),
    }
    for name, values in spec.values(sheet).items():
        rows[name] = values.to_numpy(dtype=np.float64)
    return rows


def _key_is_valid(rows: dict[str, np.ndarray]) -> np.ndarray:
    return (rows["day"] != _NO_DAY) & (rows["sku"] >= 0) & (rows["location"] >= 0)


def _check_repeats(
    spec: _FactFile, rows: dict[str, np.ndarray], codes: _Codes, keys: _KeySet, log: ErrorLog
) -> None:
    usable = np.flatnonzero(_key_is_valid(rows))
    at, origin = keys.repeats(
        codes.key(rows["location"][usable], rows["day"][usable], rows["sku"][usable]),
        rows["line"][usable],
    )
    order = len(spec.columns) + 3  # after every column's own errors on the line
    log.add_lines(
        rows["line"][usable[at]],
        order,
        lambda i: f"duplicate of line {origin[i]} (same date, sku, location)",
    )


def _sum_repeats(
    spec: _FactFile, parts: list[dict[str, np.ndarray]], codes: _Codes, log: ErrorLog
) -> dict[str, np.ndarray]:
    """Several rows of one key (deliveries of one day) as one row: values summed, the first
    line kept. A sum outside 32 bits is an error."""
    rows = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    keys = codes.key(rows["location"], rows["day"], rows["sku"])
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    summed = {name: rows[name][first] for name in ("location", "day", "sku", "line")}
    for name in spec.integers:
        summed[name] = np.bincount(inverse, weights=rows[name], minlength=len(distinct))
        wide = np.flatnonzero(summed[name] > INT_MAX)
        # The value columns of a summed file are named like its columns ("units").
        log.add_lines(
            summed["line"][wide],
            0,
            lambda i, name=name, wide=wide: (
                f"{name}: the day's total {summed[name][wide[i]]:,.0f} is out of range"
            ),
        )
    return summed


def _parsed_frame(spec: _FactFile, rows: dict[str, np.ndarray], codes: _Codes) -> pd.DataFrame:
    """The rows as ``bundle_parse`` returns them: date, sku, location codes, values."""
    frame = pd.DataFrame(
        {
            "date": rows["day"].astype("datetime64[D]").astype("datetime64[s]"),
            "sku": codes.skus.to_numpy()[rows["sku"]],
            "location": codes.locations.to_numpy()[rows["location"]],
        }
    )
    for name in rows:
        if name not in ("day", "sku", "location", "line"):
            frame[name] = rows[name]
    if spec.sum_repeats:
        frame["line"] = rows["line"]
    return frame
