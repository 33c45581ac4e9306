"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV injection").

Excel, LibreOffice and Google Sheets evaluate a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return: a product name such as ``=HYPERLINK("http://x", "ok")``
from an imported file would become a live link or a DDE command in a buyer's sheet. Such
text cells get a leading single quote, which spreadsheets show as plain text. Numbers are
written as they are (``-3`` stays a number): only ``str`` values can carry a formula.
"""

from __future__ import annotations

from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Return ``value`` with a ``'`` prefixed when it is a ``str`` starting with a formula
    character; any other value unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_safe_row(row: Any) -> list[Any]:
    """``spreadsheet_safe`` applied to each cell of ``row`` (any iterable); ``None`` → ``""``."""
    return ["" if value is None else spreadsheet_safe(value) for value in row]
