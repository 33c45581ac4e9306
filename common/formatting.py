"""How money and numbers are written, in one place.

Two audiences, two forms:

- **people** (admin pages, the dashboard): rounded to cents, thousands separators, a real
  minus sign and the currency symbol, ``money(1118.6, "£") == "£1,118.60"``;
- **machines** (CSV exports, the API): a plain decimal string with a fixed number of places,
  no separators, no symbol, ``decimal_plain(3583.3291200000003) == "3583.33"``.

Rounding is half up to the cent (``ROUND_HALF_UP``), the way a till and a spreadsheet round,
on the decimal value of the number (``2.675`` rounds to ``2.68``, not to the float's ``2.67``).
``None`` (and NaN) is "unknown": ``"—"`` for people, ``""`` for machines.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MONEY_PLACES = 2
MISSING_TEXT = "—"
MINUS_SIGN = "\u2212"  # a real minus: a hyphen reads as a dash next to a currency symbol

Number = Decimal | float | int


def to_decimal(value: Number | str | None, places: int = MONEY_PLACES) -> Decimal | None:
    """``value`` rounded half up to ``places`` decimal places, or ``None`` when it is ``None``,
    NaN or infinite (a float goes through its shortest repr, so ``0.1 + 0.2`` is 0.30)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def decimal_plain(value: Number | str | None, places: int = MONEY_PLACES) -> str:
    """A plain decimal string for exports and the API: ``"3583.33"``, ``"-4.50"``, ``""`` when
    unknown. No thousands separators, no currency symbol."""
    number = to_decimal(value, places)
    if number is None:
        return ""
    if number == 0:
        number = abs(number)  # no "-0.00"
    return f"{number:.{places}f}"


def to_cents(value: Number | str) -> Decimal:
    """``value`` as a ``Decimal`` rounded half up to cents; ``ValueError`` when it is not a
    finite number (for callers that must not show an unknown amount)."""
    number = to_decimal(value, MONEY_PLACES)
    if number is None:
        raise ValueError(f"not a number: {value!r}")
    return number


def money(value: Number | str | None, currency: str | None = None) -> str:
    """Money for people: ``"£1,118.60"``, ``"−£4.50"``, ``"—"`` when unknown. ``currency``
    defaults to ``settings.SHELFWATCH_CURRENCY``."""
    if currency is None:
        from django.conf import settings

        currency = settings.SHELFWATCH_CURRENCY
    number = to_decimal(value, MONEY_PLACES)
    if number is None:
        return MISSING_TEXT
    sign = MINUS_SIGN if number < 0 else ""
    return f"{sign}{currency}{abs(number):,.{MONEY_PLACES}f}"


def number(value: Number | None, places: int = 0) -> str:
    """A count or quantity for people: ``"1,234"``, ``"12.5"`` with ``places=1``, ``"—"`` when
    unknown."""
    rounded = to_decimal(value, places)
    if rounded is None:
        return MISSING_TEXT
    sign = MINUS_SIGN if rounded < 0 else ""
    return f"{sign}{abs(rounded):,.{places}f}"
