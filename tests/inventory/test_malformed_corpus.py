"""The malformed-input corpus: every kind of bad input the two importers refuse.

Each case runs the command the way ``manage.py`` does (``run_from_argv``: exit status, what it
prints) and asserts that the exit status is 1, that one output line starts with the expected
``file:line: column: message`` (or ``file: message``), that no traceback was printed, and that
no row of any inventory table was written. The cases run on whatever ``DATABASE_URL`` names
(SQLite by default, PostgreSQL in CI).
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import ManagementUtility
from django.core.management import base as management_base

from inventory.models import Promotion
from tests.factories import DailySalesFactory
from tests.inventory.test_import_retail import GOOD_BUNDLE
from tests.inventory.test_import_transactions import HEADER, LINES

pytestmark = pytest.mark.django_db

SALES = "date,sku,location,units,unit_price\n"
INVENTORY = "date,sku,location,on_hand\n"
RECEIPTS = "date,sku,location,units\n"
PRODUCTS = "sku,name,category,unit_price,unit_cost\n"
LOCATIONS = "code,name\n"
CALENDAR = "date,event,location\n"
PROMOTIONS = "start_date,end_date,sku,location,discount_pct\n"
# Beyond the default plausible range (today + 366 days) whenever the suite runs.
FUTURE = (dt.date.today() + dt.timedelta(days=400)).isoformat()
LONG = "x" * 100_000
SHOWN_LONG = "'" + "x" * 80 + "'…"
IMPLAUSIBLE = "is outside the plausible dates 1990-01-01.."
# file:line: column: message, file:line: message or file: message.
MESSAGE_LINE = re.compile(r"^[^\s:]+(:\d+)?: \S.*$")


@dataclass(frozen=True)
class Bundle:
    """A bundle: the good one with ``files`` replaced (text or bytes) or removed (None)."""

    files: dict[str, str | bytes | None]
    expected: str
    """The start of a line of the output; ``{dir}`` stands for the bundle's folder."""
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lines:
    """A line-level file ``name`` (bytes as written) for ``import_transactions``."""

    name: str
    content: bytes | None  # None: the file does not exist
    expected: str
    argv: tuple[str, ...] = ("--preset", "online-retail")
    stored_locations: tuple[str, ...] = field(default=())


def pos(*extra: str, header: str = HEADER) -> bytes:
    """The good line-level file plus ``extra`` lines (from line 10 on)."""
    return (header + LINES + "".join(extra)).encode("utf-8")


def line(quantity="2", stamp="2011-01-05 09:00:00", price="2.00", sku="A", country="France"):
    return f"9,{sku},ALPHA MUG,{quantity},{stamp},{price},,{country}\n"


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def bad_crc(data: bytes) -> bytes:
    packed = bytearray(gzipped(data))
    packed[-8:-4] = bytes(byte ^ 0xFF for byte in packed[-8:-4])
    return bytes(packed)


# A file long enough that its header decompresses before the truncation is met.
LONG_POS = pos(*[line(stamp=f"2011-01-{day % 28 + 1:02d} 09:00:00") for day in range(3000)])

BUNDLE_CASES = {
    # --- values that are not what the column holds
    "bad-integer": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,5,1\n2024-01-02,A1,S1,x1,1\n"},
        "sales.csv:3: units: 'x1' is not an integer",
    ),
    "integer-in-exponent-notation": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,1e3,1\n"},
        "sales.csv:2: units: '1e3' is not an integer",
    ),
    "integer-with-decimal-point": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,1.0,1\n"},
        "sales.csv:2: units: '1.0' is not an integer",
    ),
    "integer-in-hex": Bundle(
        {"inventory.csv": INVENTORY + "2024-01-01,A1,S1,0x10\n"},
        "inventory.csv:2: on_hand: '0x10' is not an integer",
    ),
    "integer-with-thousands-separator": Bundle(
        {"sales.csv": SALES + '2024-01-01,A1,S1,"1,000",1\n'},
        "sales.csv:2: units: '1,000' is not an integer",
    ),
    "fractional-units-returned": Bundle(
        {"sales.csv": SALES.strip() + ",units_returned\n2024-01-01,A1,S1,5,1,2.5\n"},
        "sales.csv:2: units_returned: '2.5' is not an integer",
    ),
    "integer-beyond-32-bits": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,2147483648,1\n"},
        "sales.csv:2: units: '2147483648' is out of range",
    ),
    "blank-required-integer": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,,1\n"},
        "sales.csv:2: units: value is required",
    ),
    "negative-sales-units": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,-2,1\n"},
        "sales.csv:2: units: '-2' must not be negative (returns go in units_returned)",
    ),
    "negative-receipt": Bundle(
        {"receipts.csv": RECEIPTS + "2024-01-01,A1,S1,-4\n"},
        "receipts.csv:2: units: '-4' must not be negative",
    ),
    "receipts-of-a-day-beyond-32-bits": Bundle(
        {"receipts.csv": RECEIPTS + "2024-01-01,A1,S1,2000000000\n2024-01-01,A1,S1,2000000000\n"},
        "receipts.csv:2: units: the day's total 4,000,000,000 is out of range",
    ),
    "bad-decimal": Bundle(
        {"products.csv": PRODUCTS + "A1,Apple,Fruit,abc,\nB2,B,C,1,\n"},
        "products.csv:2: unit_price: 'abc' is not a decimal number",
    ),
    "bad-unit-cost": Bundle(
        {"products.csv": PRODUCTS + "A1,Apple,Fruit,1,abc\nB2,B,C,1,\n"},
        "products.csv:2: unit_cost: 'abc' is not a decimal number",
    ),
    "price-nan": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,5,nan\n"},
        "sales.csv:2: unit_price: 'nan' is not a decimal number",
    ),
    "price-infinite": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,5,inf\n"},
        "sales.csv:2: unit_price: 'inf' is not a decimal number",
    ),
    "price-with-currency-sign": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,5,£2\n"},
        "sales.csv:2: unit_price: '£2' is not a decimal number",
    ),
    "negative-product-price": Bundle(
        {"products.csv": PRODUCTS + "A1,Apple,Fruit,-1,\nB2,B,C,1,\n"},
        "products.csv:2: unit_price: '-1' must not be negative",
    ),
    "product-price-too-large": Bundle(
        {"products.csv": PRODUCTS + "A1,Apple,Fruit,10000000000,\nB2,B,C,1,\n"},
        "products.csv:2: unit_price: '10000000000' is too large",
    ),
    "sku-too-long": Bundle(
        {"products.csv": PRODUCTS + f"{'A' * 65},Apple,Fruit,1,\nA1,A,F,1,\nB2,B,C,1,\n"},
        "products.csv:2: sku: longer than 64 characters",
    ),
    "blank-sku": Bundle(
        {"products.csv": PRODUCTS + ",Apple,Fruit,1,\nA1,A,F,1,\nB2,B,C,1,\n"},
        "products.csv:2: sku: value is required",
    ),
    "blank-calendar-event": Bundle(
        {"calendar.csv": CALENDAR + "2024-01-02,,S1\n"},
        "calendar.csv:2: event: value is required",
    ),
    "discount-over-100": Bundle(
        {"promotions.csv": PROMOTIONS + "2024-01-01,2024-01-07,A1,,150\n"},
        "promotions.csv:2: discount_pct: '150' is not between 0 and 100",
    ),
    "negative-discount": Bundle(
        {"promotions.csv": PROMOTIONS + "2024-01-01,2024-01-07,A1,,-5\n"},
        "promotions.csv:2: discount_pct: '-5' must not be negative",
    ),
    "error-in-last-file": Bundle(
        # Promotions are written last: products and sales must not be half written.
        {"promotions.csv": PROMOTIONS + "2024-01-01,2024-01-07,A1,,ten\n"},
        "promotions.csv:2: discount_pct: 'ten' is not a decimal number",
    ),
    "promotion-ends-before-start": Bundle(
        {"promotions.csv": PROMOTIONS + "2024-01-07,2024-01-01,A1,,10\n"},
        "promotions.csv:2: end_date: '2024-01-01' is before start_date '2024-01-07'",
    ),
    # --- dates
    "bad-date": Bundle(
        {"inventory.csv": INVENTORY + "2024-01-01,A1,S1,5\n2024-13-01,A1,S1,5\n"},
        "inventory.csv:3: date: '2024-13-01' is not a date (YYYY-MM-DD)",
    ),
    "date-in-another-format": Bundle(
        {"sales.csv": SALES + "01/02/2024,A1,S1,5,1\n"},
        "sales.csv:2: date: '01/02/2024' is not a date (YYYY-MM-DD)",
    ),
    "date-with-a-time": Bundle(
        {"sales.csv": SALES + "2024-01-01 10:00,A1,S1,5,1\n"},
        "sales.csv:2: date: '2024-01-01 10:00' is not a date (YYYY-MM-DD)",
    ),
    "date-9999-12-31": Bundle(
        {"sales.csv": SALES + "9999-12-31,A1,S1,5,1\n"},
        f"sales.csv:2: date: '9999-12-31' {IMPLAUSIBLE}",
    ),
    "date-0001-01-01": Bundle(
        {"inventory.csv": INVENTORY + "0001-01-01,A1,S1,5\n"},
        f"inventory.csv:2: date: '0001-01-01' {IMPLAUSIBLE}",
    ),
    "date-before-the-first-plausible-one": Bundle(
        {"receipts.csv": RECEIPTS + "1989-12-31,A1,S1,5\n"},
        f"receipts.csv:2: date: '1989-12-31' {IMPLAUSIBLE}",
    ),
    "date-more-than-a-year-ahead": Bundle(
        {"calendar.csv": CALENDAR + f"{FUTURE},Fair,S1\n"},
        f"calendar.csv:2: date: '{FUTURE}' {IMPLAUSIBLE}",
    ),
    "promotion-ending-9999-12-31": Bundle(
        {"promotions.csv": PROMOTIONS + "2024-01-01,9999-12-31,A1,,10\n"},
        f"promotions.csv:2: end_date: '9999-12-31' {IMPLAUSIBLE}",
    ),
    # --- NUL characters
    "nul-in-product-name": Bundle(
        {"products.csv": PRODUCTS + "A1,App\x00le,Fruit,1,\nB2,B,C,1,\n"},
        "products.csv:2: name: contains a NUL character (\\x00)",
    ),
    "nul-in-sales-sku": Bundle(
        {"sales.csv": SALES + "2024-01-01,A\x001,S1,5,1\n"},
        "sales.csv:2: sku: contains a NUL character (\\x00)",
    ),
    "nul-in-location-code": Bundle(
        {"locations.csv": LOCATIONS + "S1,One\nS2,\nS\x003,Three\n"},
        "locations.csv:4: code: contains a NUL character (\\x00)",
    ),
    "nul-in-calendar-event": Bundle(
        {"calendar.csv": CALENDAR + "2024-01-02,Fa\x00ir,S1\n"},
        "calendar.csv:2: event: contains a NUL character (\\x00)",
    ),
    "nul-in-a-number": Bundle(
        {"inventory.csv": INVENTORY + "2024-01-01,A1,S1,5\x00\n"},
        "inventory.csv:2: on_hand: contains a NUL character (\\x00)",
    ),
    # --- codes
    "unknown-sku": Bundle(
        {"sales.csv": SALES + "2024-01-01,ABC,S1,5,1\n"},
        "sales.csv:2: sku: unknown SKU 'ABC'",
    ),
    "unknown-location": Bundle(
        {"inventory.csv": INVENTORY + "2024-01-01,A1,X9,5\n"},
        "inventory.csv:2: location: unknown location 'X9'",
    ),
    "calendar-unknown-location": Bundle(
        {"calendar.csv": CALENDAR + "2024-01-01,Fair,NOWHERE\n"},
        "calendar.csv:2: location: unknown location 'NOWHERE'",
    ),
    "promotion-unknown-sku": Bundle(
        {"promotions.csv": PROMOTIONS + "2024-01-01,2024-01-07,Z9,,10\n"},
        "promotions.csv:2: sku: unknown SKU 'Z9'",
    ),
    "sku-in-another-case": Bundle(
        {"inventory.csv": INVENTORY + "2024-01-01,a1,S1,5\n"},
        "inventory.csv:2: sku: unknown SKU 'a1' (did you mean 'A1'? codes are case-sensitive)",
    ),
    "location-in-another-case": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,s1,5,1\n"},
        "sales.csv:2: location: unknown location 's1' (did you mean 'S1'? codes are "
        "case-sensitive)",
    ),
    "new-location-differing-in-case-from-a-stored-one": Bundle(
        {"locations.csv": LOCATIONS + "S1,One\nS2,\nk1,Keep\n"},
        "locations.csv:4: code: location 'k1' differs only in case from stored location 'K1' "
        "(codes are case-sensitive)",
    ),
    "two-locations-differing-in-case": Bundle(
        {"locations.csv": LOCATIONS + "S1,One\nS2,\ns1,Other\n"},
        "locations.csv:4: code: location 's1' differs only in case from location 'S1' "
        "(codes are case-sensitive)",
    ),
    # --- repeated rows
    "duplicate-sku": Bundle(
        {"products.csv": PRODUCTS + "A1,Apple,Fruit,1,\nA1,Apple,F,2,\n"},
        "products.csv:3: duplicate of line 2 (same sku)",
    ),
    "duplicate-location-code": Bundle(
        {"locations.csv": LOCATIONS + "S1,One\nS2,\nS1,Again\n"},
        "locations.csv:4: duplicate of line 2 (same code)",
    ),
    "duplicate-sales-key": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,5,1\n2024-01-01,B2,S1,5,1\n2024-01-01,A1,S1,6,1\n"},
        "sales.csv:4: duplicate of line 2 (same date, sku, location)",
    ),
    "duplicate-inventory-key": Bundle(
        {"inventory.csv": INVENTORY + "2024-01-01,A1,S1,5\n2024-01-01,A1,S1,6\n"},
        "inventory.csv:3: duplicate of line 2 (same date, sku, location)",
    ),
    "duplicate-calendar-event": Bundle(
        {"calendar.csv": CALENDAR + "2024-01-02,Fair,S1\n2024-01-02,Fair,S1\n"},
        "calendar.csv:3: duplicate of line 2 (same date, event, location)",
    ),
    "same-promotion-twice": Bundle(
        {
            "promotions.csv": PROMOTIONS
            + "2024-01-01,2024-01-07,A1,,20\n2024-01-01,2024-01-07,A1,,20\n"
        },
        "promotions.csv:3: duplicate of line 2 (same sku, location, start_date, end_date, "
        "discount_pct)",
    ),
    # --- the shape of the file
    "missing-column": Bundle(
        {"sales.csv": "date,sku,location,unit_price\n2024-01-01,A1,S1,1\n"},
        "sales.csv: missing column(s): units",
    ),
    "column-named-twice": Bundle(
        {"sales.csv": SALES.strip() + ",units\n2024-01-01,A1,S1,5,1,7\n"},
        "sales.csv:1: units: named 2 times in the header (columns 4 and 6)",
    ),
    "column-named-twice-but-for-spaces": Bundle(
        {"sales.csv": SALES.strip() + ", units \n2024-01-01,A1,S1,5,1,7\n"},
        "sales.csv:1: units: named 2 times in the header (columns 4 and 6)",
    ),
    "small-file-column-named-twice": Bundle(
        {"products.csv": PRODUCTS.strip() + ",name\nA1,Apple,Fruit,1,,Other\nB2,B,C,1,,\n"},
        "products.csv:1: name: named 2 times in the header (columns 2 and 6)",
    ),
    "first-row-longer-than-header": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,5,1,7\n"},
        "sales.csv:2: expected 5 fields, saw 6",
    ),
    "later-row-longer-than-header": Bundle(
        {"sales.csv": SALES + "2024-01-01,A1,S1,5,1\n2024-01-02,A1,S1,5,1,9\n"},
        "sales.csv:3: expected 5 fields, saw 6",
    ),
    "small-file-row-longer-than-header": Bundle(
        {"locations.csv": LOCATIONS + "S1,One\nS2,Two,extra\n"},
        "locations.csv:3: expected 2 fields, saw 3",
    ),
    "unterminated-quote": Bundle(
        {"sales.csv": SALES + '2024-01-01,A1,S1,5,"1\n'},
        "sales.csv: cannot be parsed as CSV (a quoted field is not closed before the end",
    ),
    "not-utf8": Bundle(
        {"locations.csv": (LOCATIONS + "S1,Caf\xe9\nS2,\n").encode("latin-1")},
        "locations.csv: not UTF-8 text (",
    ),
    "empty-file": Bundle({"inventory.csv": ""}, "inventory.csv: file is empty"),
    "missing-required-file": Bundle(
        {"products.csv": None}, "products.csv: required file is missing from {dir}"
    ),
    "not-a-directory": Bundle({}, "{dir}/nothing-here: not a directory", ("nothing-here",)),
    # --- messages
    "long-value-cut-in-the-message": Bundle(
        {"sales.csv": SALES + f"2024-01-01,A1,S1,{LONG},1\n"},
        f"sales.csv:2: units: {SHOWN_LONG} is not an integer",
    ),
    "line-number-after-a-field-spanning-lines": Bundle(
        {"products.csv": PRODUCTS + 'A1,"Apple\nGreen",Fruit,1,\nB2,B,C,abc,\n'},
        "products.csv:4: unit_price: 'abc' is not a decimal number",
    ),
    "fact-line-number-after-a-field-spanning-lines": Bundle(
        {"calendar.csv": CALENDAR + '2024-01-02,"Fair\nday",S1\n2024-02-30,Other,\n'},
        "calendar.csv:4: date: '2024-02-30' is not a date (YYYY-MM-DD)",
    ),
    "long-row-after-a-field-spanning-lines": Bundle(
        {"inventory.csv": INVENTORY + '2024-01-01,A1,S1,"5\n"\n2024-01-02,A1,S1,5,9\n'},
        "inventory.csv:4: expected 4 fields, saw 5",
    ),
}

LINE_CASES = {
    "quantity-not-a-number": Lines(
        "pos.csv", pos(line(quantity="two")), "pos.csv:10: Quantity: 'two' is not an integer"
    ),
    "quantity-in-exponent-notation": Lines(
        "pos.csv", pos(line(quantity="1e3")), "pos.csv:10: Quantity: '1e3' is not an integer"
    ),
    "quantity-with-decimal-point": Lines(
        "pos.csv", pos(line(quantity="1.0")), "pos.csv:10: Quantity: '1.0' is not an integer"
    ),
    "quantity-beyond-32-bits": Lines(
        "pos.csv",
        pos(line(quantity="3000000000")),
        "pos.csv:10: Quantity: '3000000000' is out of range",
    ),
    "quantity-blank": Lines(
        "pos.csv", pos(line(quantity="")), "pos.csv:10: Quantity: value is required"
    ),
    "units-of-a-day-beyond-32-bits": Lines(
        "pos.csv",
        pos(line(quantity="2000000000"), line(quantity="2000000000")),
        "pos.csv: A at France on 2011-01-05: the day's units are out of range",
    ),
    "timestamp-invalid": Lines(
        "pos.csv",
        pos(line(stamp="2011-02-30 09:00:00")),
        "pos.csv:10: InvoiceDate: '2011-02-30 09:00:00' is not a timestamp (%Y-%m-%d %H:%M:%S)",
    ),
    "timestamp-9999-12-31": Lines(
        "pos.csv",
        pos(line(stamp="9999-12-31 10:00:00")),
        f"pos.csv:10: InvoiceDate: '9999-12-31 10:00:00' {IMPLAUSIBLE}",
    ),
    "timestamp-0001-01-01": Lines(
        "pos.csv",
        pos(line(stamp="0001-01-01 10:00:00")),
        f"pos.csv:10: InvoiceDate: '0001-01-01 10:00:00' {IMPLAUSIBLE}",
    ),
    "timestamp-before-the-first-plausible-date": Lines(
        "pos.csv",
        pos(line(stamp="1900-01-01 10:00:00")),
        f"pos.csv:10: InvoiceDate: '1900-01-01 10:00:00' {IMPLAUSIBLE}",
    ),
    "timestamp-more-than-a-year-ahead": Lines(
        "pos.csv",
        pos(line(stamp=f"{FUTURE} 10:00:00")),
        f"pos.csv:10: InvoiceDate: '{FUTURE} 10:00:00' {IMPLAUSIBLE}",
    ),
    "price-with-currency-sign": Lines(
        "pos.csv", pos(line(price="£2")), "pos.csv:10: UnitPrice: '£2' is not a decimal number"
    ),
    "price-infinite": Lines(
        "pos.csv", pos(line(price="inf")), "pos.csv:10: UnitPrice: 'inf' is not a decimal number"
    ),
    "sku-too-long": Lines(
        "pos.csv", pos(line(sku="A" * 65)), "pos.csv:10: StockCode: longer than 64 characters"
    ),
    "nul-in-sku": Lines(
        "pos.csv",
        pos(line(sku="A\x00B")),
        "pos.csv:10: StockCode: contains a NUL character (\\x00)",
    ),
    "nul-in-description": Lines(
        "pos.csv",
        pos("9,A,ALPHA\x00MUG,2,2011-01-05 09:00:00,2.00,,France\n"),
        "pos.csv:10: Description: contains a NUL character (\\x00)",
    ),
    "nul-in-location": Lines(
        "pos.csv",
        pos(line(country="Fr\x00ance")),
        "pos.csv:10: Country: contains a NUL character (\\x00)",
    ),
    "location-differing-in-case-from-another-in-the-file": Lines(
        "pos.csv",
        pos(line(country="france")),
        "pos.csv:10: Country: location 'france' differs only in case from location 'France' "
        "(codes are case-sensitive)",
    ),
    "location-differing-in-case-from-a-stored-one": Lines(
        "pos.csv",
        pos(line(country="k1")),
        "pos.csv:10: Country: location 'k1' differs only in case from stored location 'K1' "
        "(codes are case-sensitive)",
    ),
    "default-location-differing-in-case-from-a-stored-one": Lines(
        "till.csv",
        b"sold_at,item,qty,price\n2024-01-05 09:10:00,X1,3,1.00\n",
        "till.csv: default location 'k1' differs only in case from stored location 'K1' "
        "(codes are case-sensitive)",
        argv=(
            "--sku-col=item",
            "--quantity-col=qty",
            "--timestamp-col=sold_at",
            "--price-col=price",
            "--default-location=k1",
        ),
    ),
    "column-named-twice": Lines(
        "pos.csv",
        pos(header=HEADER.strip() + ",Quantity\n").replace(b"Kingdom\n", b"Kingdom,1\n"),
        "pos.csv:1: Quantity: named 2 times in the header (columns 4 and 9)",
    ),
    "first-row-longer-than-header": Lines(
        "pos.csv",
        (HEADER + LINES.replace("United Kingdom\n", "United Kingdom,extra\n", 1)).encode(),
        "pos.csv:2: expected 8 fields, saw 9",
    ),
    "later-row-longer-than-header": Lines(
        "pos.csv", pos(line().strip() + ",extra\n"), "pos.csv:10: expected 8 fields, saw 9"
    ),
    "missing-column": Lines(
        "pos.csv",
        b"InvoiceNo,StockCode,Quantity\n1,A,2\n",
        "pos.csv: missing column(s): Description, InvoiceDate, UnitPrice, Country",
    ),
    "unterminated-quote": Lines(
        "pos.csv",
        pos('9,A,"ALPHA MUG,2,2011-01-05 09:00:00,2.00,,France\n'),
        "pos.csv: cannot be parsed as CSV (a quoted field is not closed before the end",
    ),
    "not-utf8": Lines(
        "pos.csv", pos(line(country="Caf\xe9")).decode().encode("latin-1"), "pos.csv: not UTF-8"
    ),
    "empty-file": Lines("pos.csv", b"", "pos.csv: file is empty (a header row is required)"),
    "file-not-found": Lines("pos.csv", None, "pos.csv: file not found ("),
    "long-value-cut-in-the-message": Lines(
        "pos.csv", pos(line(quantity=LONG)), f"pos.csv:10: Quantity: {SHOWN_LONG} is not an integer"
    ),
    "line-number-after-a-field-spanning-lines": Lines(
        "pos.csv",
        pos(
            '9,A,"ALPHA\nMUG",2,2011-01-05 09:00:00,2.00,,France\n',
            line(quantity="two"),
        ),
        "pos.csv:12: Quantity: 'two' is not an integer",
    ),
    "long-row-after-a-field-spanning-lines": Lines(
        "pos.csv",
        pos('9,A,"ALPHA\nMUG",2,2011-01-05 09:00:00,2.00,,France\n', line().strip() + ",x\n"),
        "pos.csv:12: expected 8 fields, saw 9",
    ),
    # --- compressed files
    "truncated-gzip": Lines(
        "pos.csv.gz",
        gzipped(LONG_POS)[: len(gzipped(LONG_POS)) // 2],
        "pos.csv.gz: compressed data ends early: the file is truncated",
    ),
    "gzip-truncated-in-its-header": Lines(
        "pos.csv.gz", gzipped(pos())[:12], "pos.csv.gz: compressed data ends early"
    ),
    "plain-file-named-gz": Lines("pos.csv.gz", pos(), "pos.csv.gz: not a valid gzip file"),
    "gzip-with-a-bad-crc": Lines(
        "pos.csv.gz", bad_crc(pos()), "pos.csv.gz: not a valid gzip file (CRC check failed"
    ),
    "gzip-of-latin1-text": Lines(
        "pos.csv.gz",
        gzipped(pos(line(country="Caf\xe9")).decode().encode("latin-1")),
        "pos.csv.gz: not UTF-8 text (",
    ),
    "plain-file-named-bz2": Lines(
        "pos.csv.bz2", pos(), "pos.csv.bz2: cannot be decompressed or read ("
    ),
    "truncated-bz2": Lines(
        "pos.csv.bz2",
        bz2.compress(LONG_POS)[: len(bz2.compress(LONG_POS)) // 2],
        "pos.csv.bz2: compressed data ends early",
    ),
    "plain-file-named-zip": Lines("pos.csv.zip", pos(), "pos.csv.zip: not a valid zip file ("),
}


def stored_rows() -> dict[str, int]:
    """Row counts of every inventory table."""
    return {
        model.__name__: model.objects.count()
        for model in apps.get_app_config("inventory").get_models()
    }


@pytest.fixture
def run(monkeypatch, capsys):
    """``run(*argv)`` runs ``manage.py *argv``; returns (exit status, stdout + stderr). An
    exception that escapes the command is printed as Python would, traceback included."""
    # run_from_argv closes the connections at the end: that would end the test transaction.
    monkeypatch.setattr(management_base.connections, "close_all", lambda: None)

    def run(*argv: str) -> tuple[int, str]:
        status = 0
        try:
            ManagementUtility(["manage.py", *argv]).execute()
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # what manage.py would print
            traceback.print_exc(file=sys.stderr)
            status = 1
        captured = capsys.readouterr()
        return status, captured.out + captured.err

    return run


@pytest.fixture
def stored():
    """Rows already in the database, which a refused import must leave alone."""
    sales = DailySalesFactory(product__sku="KEEP", location__code="K1")
    Promotion.objects.create(
        product=sales.product,
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2024, 1, 7),
        discount_pct=10,
    )
    return stored_rows()


def write_bundle(directory: Path, changes: dict[str, str | bytes | None]) -> Path:
    directory.mkdir()
    files = {**GOOD_BUNDLE, **changes}
    for name, content in files.items():
        if content is None:
            continue
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (directory / name).write_bytes(data)
    return directory


def assert_refused(status: int, output: str, expected: str) -> None:
    assert status == 1, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    matching = [text for text in lines if text.startswith(expected)]
    assert matching, f"no line starts with {expected!r} in:\n{output}"
    assert all(MESSAGE_LINE.match(text) for text in matching)
    assert lines[-1].startswith("CommandError: "), output
    assert "nothing written" in lines[-1]


def test_the_corpus_holds_at_least_60_kinds_of_malformed_input():
    assert len(BUNDLE_CASES) + len(LINE_CASES) >= 60


@pytest.mark.parametrize("case", BUNDLE_CASES.values(), ids=BUNDLE_CASES.keys())
def test_malformed_bundle_is_refused_with_a_line_and_nothing_written(tmp_path, run, stored, case):
    directory = write_bundle(tmp_path / "bundle", case.files)
    target = directory / case.argv[0] if case.argv else directory

    status, output = run("import_retail", str(target))

    assert_refused(status, output, case.expected.format(dir=directory))
    assert stored_rows() == stored


@pytest.mark.parametrize("case", LINE_CASES.values(), ids=LINE_CASES.keys())
def test_malformed_line_level_file_is_refused_with_a_line_and_nothing_written(
    tmp_path, run, stored, case
):
    path = tmp_path / case.name
    if case.content is not None:
        path.write_bytes(case.content)

    status, output = run("import_transactions", str(path), *case.argv)

    assert_refused(status, output, case.expected)
    assert stored_rows() == stored


def test_the_good_inputs_of_the_corpus_import(tmp_path, run, stored):
    """The cases are bad only where they say: the files they start from import."""
    (tmp_path / "pos.csv").write_bytes(pos())

    assert run("import_retail", str(write_bundle(tmp_path / "bundle", {})))[0] == 0
    assert (
        run("import_transactions", str(tmp_path / "pos.csv"), "--preset", "online-retail")[0] == 0
    )
