"""Numbers, dates and money as a store manager reads them in an explanation, and numbers for
a finding's JSON ``details``. No Django imports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def fmt_units(value: float) -> str:
    """Units for an explanation: ``80,995`` for whole numbers, ``4.2`` below 10, else rounded."""
    if float(value).is_integer() or abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def json_number(value: float, digits: int) -> float | None:
    """A rounded float for a finding's ``details``; ``None`` for NaN/inf (not valid JSON)."""
    return round(float(value), digits) if np.isfinite(value) else None


def fmt_count(value: float, noun: str = "unit") -> str:
    """``1 unit``, ``80,995 units``, ``4.2 units``."""
    return f"{fmt_units(value)} {noun}" + ("" if value == 1 else "s")


def fmt_date(value: pd.Timestamp) -> str:
    """A date for an explanation: ``3 Mar``."""
    return f"{value.day} {value:%b}"


def money(value: float, currency: str = "£") -> str:
    """Format an amount for an explanation: ``£1,234`` (no pence above 100)."""
    if abs(value) >= 100:
        return f"{currency}{value:,.0f}"
    return f"{currency}{value:,.2f}"
