"""Numbers as people read them: money rounded to cents with thousands separators.

One helper for the admin, exports meant for people, messages and the API's display fields,
so that ``3583.3291200000003`` is shown as ``£3,583.33`` everywhere.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings

CENT = Decimal("0.01")


def to_cents(value: Decimal | float | int | str) -> Decimal:
    """``value`` as a ``Decimal`` rounded half-up to cents (floats go through ``repr`` so
    ``0.1 + 0.2`` rounds to ``0.30``, not to a binary artefact)."""
    if isinstance(value, float):
        value = repr(value)
    try:
        return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def money(value: Decimal | float | int | str | None, currency: str | None = None) -> str:
    """``value`` as money for people: ``money(Decimal("1118.6"), "£") == "£1,118.60"``.

    Rounded half-up to cents, thousands separated by commas, the sign before the currency
    (``-£12.50``). ``currency`` defaults to ``settings.SHELFWATCH_CURRENCY``. ``None`` (no
    amount known) gives ``""`` so the caller decides what an unknown amount looks like.
    """
    if value is None:
        return ""
    if currency is None:
        currency = settings.SHELFWATCH_CURRENCY
    cents = to_cents(value)
    sign = "-" if cents < 0 else ""
    return f"{sign}{currency}{abs(cents):,.2f}"
