"""common.formatting: money for people, plain decimals for machines (no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.formatting import decimal_plain, money, number, to_decimal


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1118.6, "£1,118.60"),
        (Decimal("1118.60"), "£1,118.60"),
        (3583.3291200000003, "£3,583.33"),
        (-4.5, "−£4.50"),
        (0, "£0.00"),
        (2.675, "£2.68"),  # half up on the decimal value, not the float's 2.67499…
        (1234567.891, "£1,234,567.89"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_money_for_people(value, shown):
    assert money(value, "£") == shown


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (3583.3291200000003, "3583.33"),
        (Decimal("95"), "95.00"),
        (1234567.891, "1234567.89"),
        (-0.001, "0.00"),  # no "-0.00"
        (-12.345, "-12.35"),
        (None, ""),
        (float("inf"), ""),
    ],
)
def test_decimal_plain_for_machines(value, plain):
    assert decimal_plain(value) == plain


def test_number_and_to_decimal():
    assert number(1234) == "1,234"
    assert number(12.25, 1) == "12.3"
    assert number(None) == "—"
    assert to_decimal(0.1 + 0.2) == Decimal("0.30")
    assert to_decimal(True) is None
