"""Numbers and dates in explanations (``anomalies.detectors.formatting``)."""

from __future__ import annotations

import pandas as pd

from anomalies.detectors.formatting import fmt_count, fmt_date


def test_formatting_helpers():
    assert fmt_count(80995) == "80,995 units"
    assert fmt_count(1) == "1 unit"
    assert fmt_count(4.25) == "4.2 units"
    assert fmt_date(pd.Timestamp("2024-03-03")) == "3 Mar"
