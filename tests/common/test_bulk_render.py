"""Rendering frames for bulk writes: timestamps keep their time of day (``rows_prepare``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.bulk_render import rows_prepare


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "created_at": np.array(["2024-06-30T09:15:42", "NaT"], dtype="datetime64[us]"),
            "start_date": np.array(["2024-06-30", "2024-07-01"], dtype="datetime64[D]"),
        }
    )


def test_timestamps_are_utc_text_for_postgresql_and_naive_for_sqlite():
    pg = rows_prepare(_frame(), vendor="postgresql", timestamps=("created_at",))
    assert not pg.binary
    assert pg.blocks[0][1].decode() == ("2024-06-30 09:15:42+00:00\t2024-06-30\n\\N\t2024-07-01\n")
    lite = rows_prepare(_frame(), vendor="sqlite", timestamps=("created_at",))
    assert lite.params == (["2024-06-30 09:15:42", None], ["2024-06-30", "2024-07-01"])


def test_without_timestamps_a_datetime_column_is_a_date():
    pg = rows_prepare(_frame(), vendor="postgresql")
    assert pg.blocks[0][1].decode().startswith("2024-06-30\t2024-06-30\n")
