"""Array helpers over (S, D) grids and (S, k) bands: sums by location and weekday, forward
fill, row quantiles ignoring NaN, masking without branches.

Pure numpy; no Django imports.
"""

from __future__ import annotations

import numpy as np

MAD_TO_SD = 1.4826
"""Scale factor turning a median absolute deviation into a normal-consistent SD."""


def sum_by_location(values: np.ndarray, loc_starts: np.ndarray) -> np.ndarray:
    """Sum (S, ...) rows into (L, ...) location totals (rows are grouped by location)."""
    if len(loc_starts) == 0:
        return np.zeros((0, *values.shape[1:]))
    return np.add.reduceat(values, loc_starts, axis=0)


def ffill(values: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along axis 1 (leading NaNs stay NaN)."""
    if values.size == 0:
        return values.copy()
    present = ~np.isnan(values)
    idx = np.where(present, np.arange(values.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(values, idx, axis=1)
    seen = np.logical_or.accumulate(present, axis=1)
    out[~seen] = np.nan
    return out


def days_after(mask: np.ndarray, n_days: int) -> np.ndarray:
    """True on the ``n_days`` days following a run of ``mask`` (and not on ``mask`` itself)."""
    after = np.zeros_like(mask)
    for k in range(1, min(n_days, mask.shape[1]) + 1):
        after[:, k:] |= mask[:, :-k]
    return after & ~mask


def longest_run(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's longest run of True in ``mask`` (S, D): (start column, length), two (S,)
    int arrays; the first of equally long runs; (0, 0) for a row without any True."""
    n_rows = mask.shape[0]
    if not mask.any():
        return np.zeros(n_rows, dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
    starts = mask & ~np.concatenate([np.zeros((n_rows, 1), dtype=bool), mask[:, :-1]], axis=1)
    run_id = np.cumsum(starts.reshape(-1)).reshape(mask.shape) * mask  # 0 outside runs
    length = np.bincount(run_id.reshape(-1))
    length[0] = 0
    cell_length = length[run_id]
    start = cell_length.argmax(axis=1)  # the first cell of the row's longest run
    return start, cell_length[np.arange(n_rows), start]


def row_nanquantile(values: np.ndarray, q: float) -> np.ndarray:
    """``q``-quantile (linear interpolation) of each row ignoring NaN; NaN for an all-NaN row.

    Sort-based: much faster than ``np.nanquantile`` along a short axis, and silent.
    """
    return row_nanquantiles(values, (q,))[0]


def row_nanquantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Several ``row_nanquantile`` of the same (S, k) rows from one sort: a list of (S,)."""
    if values.shape[1] == 0:
        return [np.full(values.shape[0], np.nan) for _ in qs]
    s = np.sort(values, axis=1)  # NaN sorts last
    n = (~np.isnan(values)).sum(axis=1)
    last = np.maximum(n - 1, 0)
    out = []
    for q in qs:
        pos = q * last
        lo = np.floor(pos).astype("int64")
        hi = np.minimum(lo + 1, last)
        frac = pos - lo
        a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
        b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
        out.append(np.where(n > 0, a + frac * (b - a), np.nan))
    return out


def row_nanmedian(values: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (see ``row_nanquantile``)."""
    return row_nanquantile(values, 0.5)


def where_else_nan(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``np.where(mask, values, nan)`` without a branch per cell (only -0.0 turns into 0.0).

    ``values + 0 / mask`` (0/1 is 0, 0/0 is NaN): several times faster than ``np.where`` on
    the irregular masks of sparse sellers, which defeat the CPU's branch prediction.
    """
    with np.errstate(invalid="ignore"):
        return values + np.divide(0.0, mask)


def weekday_sums(values: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """(S, 7) sums of (S, D) ``values`` over the columns of each weekday (Monday = 0).

    ``weekday`` (D,) is the grid's, consecutive days. Seven strided sums: a matrix product
    with a one-hot weekday matrix gives the same for whole units but costs a BLAS call whose
    threads spin on a busy machine.
    """
    out = np.zeros((values.shape[0], 7))
    for first in range(min(7, values.shape[1])):
        out[:, weekday[first]] = values[:, first::7].sum(axis=1)
    return out
