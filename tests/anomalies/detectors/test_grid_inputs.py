"""Input frames to grid coordinates (``anomalies.detectors.grid_inputs``)."""

from __future__ import annotations

import numpy as np

from anomalies.detectors.grid_inputs import SeriesIndex


def test_series_index_numbers_rows_by_sorted_key_for_dense_and_sparse_ids():
    for product_ids in ([3, 1, 2, 1, 3], [3, 10**9, 2, 10**9, 3]):  # a table, a hash
        keys = (np.array([2, 1, 1, 1, 2]) << 32) | np.array(product_ids)
        index = SeriesIndex(keys)

        assert (index.keys == np.unique(keys)).all()
        assert (index.keys[index.rows] == keys).all()
        other = np.array([keys[0], (7 << 32) | 1, (1 << 32) | 5])
        row, found = index.lookup(other)
        assert found.tolist() == [True, False, False]
        assert index.keys[row[0]] == keys[0]
