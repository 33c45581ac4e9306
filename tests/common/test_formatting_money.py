"""Money for people (common.formatting); no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.formatting import money, to_cents


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1118.6"), "£1,118.60"),
        (3583.3291200000003, "£3,583.33"),
        (Decimal("0.005"), "£0.01"),
        (Decimal("0.004"), "£0.00"),
        (0, "£0.00"),
        (1234567, "£1,234,567.00"),
        ("12.345", "£12.35"),
        (Decimal("-12.5"), "\u2212£12.50"),
        (0.1 + 0.2, "£0.30"),
    ],
)
def test_money_rounds_to_cents_with_thousands_separators(value, expected):
    assert money(value, "£") == expected


def test_money_uses_the_configured_currency_by_default(settings):
    settings.SHELFWATCH_CURRENCY = "€"
    assert money(Decimal("2500"), None) == "€2,500.00"
    assert money(Decimal("2500")) == "€2,500.00"


def test_unknown_amount_is_a_dash():
    assert money(None, "£") == "—"


def test_a_negative_amount_that_rounds_to_zero_has_no_sign():
    assert money(Decimal("-0.001"), "£") == "£0.00"


def test_to_cents_refuses_text_that_is_not_a_number():
    with pytest.raises(ValueError):
        to_cents("abc")
