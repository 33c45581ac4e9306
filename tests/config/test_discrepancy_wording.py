"""The inventory-discrepancy explanation's verbs match its numbers (issue 14: "rose by 27 …
(33 → 32)"). No database."""

from __future__ import annotations

import re

import numpy as np

from anomalies.detectors.inventory_discrepancy import detect_inventory_discrepancy
from tests.anomalies.detectors.builders import Series, make_input


def _book(start: int, units: np.ndarray) -> np.ndarray:
    """Book stock that moves exactly with the sales (nothing unexplained)."""
    return start - np.cumsum(units) + units[0]


def _explanation(units: np.ndarray, on_hand: np.ndarray) -> str:
    found = detect_inventory_discrepancy(make_input([Series(1, units, on_hand=on_hand)]), {})
    assert len(found) == 1
    return found.iloc[0].explanation


def test_book_that_fell_less_than_the_sales_explain_says_fell_and_more():
    units = np.full(40, 1)
    units[-1] = 28  # 28 sold today, yet the book went only from 33 to 32
    on_hand = _book(71, units)
    on_hand[-1] = 32
    assert on_hand[-2] == 33

    text = _explanation(units, on_hand)

    assert text.startswith(
        "Book stock fell by 1 unit (33 → 32); receipts, sales and returns explain 5 "
        "(received 0, sold 28): 27 units more than explained"
    )
    assert "rose" not in text


def test_every_verb_agrees_with_the_sign_of_its_numbers():
    units = np.full(40, 1)
    for today, verb in ((60, "rose"), (10, "fell")):
        on_hand = _book(72, units)
        on_hand[-1] = today
        text = _explanation(units, on_hand)
        before, after = map(int, re.search(r"\((\d+) → (\d+)\)", text).groups())
        assert (after > before) == (verb == "rose")
        assert text.startswith(f"Book stock {verb} by {abs(after - before)} units")
