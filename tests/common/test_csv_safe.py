"""Spreadsheet-safe CSV cells (OWASP CSV injection); no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.csv_safe import spreadsheet_safe, spreadsheet_safe_row


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Milk 1L", "Milk 1L"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_text_cells_starting_with_a_formula_character_get_a_quote(value, expected):
    assert spreadsheet_safe(value) == expected


def test_numbers_are_left_as_numbers_even_when_negative():
    assert spreadsheet_safe_row([-3, Decimal("-1.50"), -0.5, None, "x"]) == [
        -3,
        Decimal("-1.50"),
        -0.5,
        "",
        "x",
    ]
