"""Exact quantiles of a column, equal to ``np.quantile(x, q)`` (method "linear")
over its finite values, without partitioning the whole column.

Reference bins are the reference's deciles as numpy computes them, and
``np.quantile`` over a 1M-value column costs ~20 ms (a multi-kth partition):
more than every other per-column step of a profile together.  Here:

1. count the finite values per cell of an equal-width grid over [min, max]
   (``fd_grid_count``, one streaming pass);
2. find the cells that hold the order statistics the linear interpolation
   needs (``floor((n-1)q)`` and the next one);
3. copy only the values of those cells (``fd_grid_select``) and sort them;
4. interpolate exactly as ``numpy.lib._function_base_impl._lerp`` does, so
   the result is bit-identical to ``np.quantile`` (tested with hypothesis).

Heavy ties or extreme ranges only make step 3 select more values; the result
stays exact.

The two passes run on the backend of ``get_backend("quantile")``: the C
kernels of ``kernels/fd_select.c`` or their numba twins in
:mod:`fastdrift.kernels.jit`, which put every value in the same cell.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import get_backend, native
from ..adapters.arrow import ColumnView
from ..errors import InvalidInputError

__all__ = ["exact_quantiles", "lerp_like_numpy"]


def lerp_like_numpy(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's quantile interpolation, operation for operation (so results are bit-identical)."""
    diff = b - a
    out = a + diff * t
    hi = t >= 0.5
    out[hi] = (b - diff * (1 - t))[hi]
    return out


def _grid_count(views: Sequence[ColumnView], lo: float, inv: float, n_cells: int, backend: str):
    counts = np.zeros(n_cells, dtype=np.int64)
    for v in views:
        if backend == "c":
            c = native.column(v)
            rc = native.lib.fd_grid_count(c, lo, inv, n_cells, native.ptr("int64_t*", counts))
        else:
            from . import jit
            rc = jit.grid_count(v.values, v.validity, v.offset, v.length, lo, inv, n_cells, counts)
        # Both backends return fd_status codes.
        native.check(rc, "grid count", v.name)
    return counts


def _grid_select(views: Sequence[ColumnView], lo: float, inv: float, n_cells: int,
                 flags: np.ndarray, out: np.ndarray, backend: str) -> int:
    got = np.zeros(1, dtype=np.int64)
    for v in views:
        if backend == "c":
            c = native.column(v)
            rc = native.lib.fd_grid_select(c, lo, inv, n_cells, native.ptr("uint8_t*", flags),
                                           native.ptr("double*", out), out.size,
                                           native.ptr("int64_t*", got))
        else:
            from . import jit
            rc = jit.grid_select(v.values, v.validity, v.offset, v.length, lo, inv, n_cells,
                                 flags, out, out.size, got)
        native.check(rc, "grid select", v.name)
    return int(got[0])


def exact_quantiles(views: Sequence[ColumnView], qs: np.ndarray, n: int, lo: float, hi: float,
                    backend: Optional[str] = None) -> np.ndarray:
    """``np.quantile(finite values, qs)`` for a column given as chunk views.

    ``n``, ``lo`` and ``hi`` are the number, minimum and maximum of the finite
    values (from :class:`~fastdrift.sketches.Moments`); ``n`` must be >= 1.
    ``backend`` (``"c"`` or ``"numba"``) defaults to ``get_backend("quantile")``.
    """
    if backend is None:
        backend = get_backend("quantile")
    if backend not in ("c", "numba"):
        raise InvalidInputError(f"unknown backend {backend!r}")
    qs = np.asarray(qs, dtype=np.float64)
    if lo == hi:
        return np.full(qs.shape, lo)
    virtual = (n - 1) * qs
    prev = np.floor(virtual)
    above = virtual >= n - 1
    prev[above] = n - 1
    prev[virtual < 0] = 0
    prev_i = prev.astype(np.int64)
    next_i = np.minimum(prev_i + 1, n - 1)
    next_i[above] = n - 1
    gamma = virtual - np.where(above, -1.0, prev)  # numpy uses index -1 above bounds; a == b there

    # ~64 values a cell, at most 16Ki cells (128 KiB of counters: cache resident)
    n_cells = int(min(max(n // 64, 1), 1 << 14))
    span = hi - lo
    inv = n_cells / span if np.isfinite(span) and span > 0 else 0.0
    counts = _grid_count(views, lo, inv, n_cells, backend)
    cum = np.cumsum(counts)
    if cum[-1] != n:
        raise RuntimeError(f"grid counted {cum[-1]} finite values, expected {n}")
    ranks = np.unique(np.concatenate([prev_i, next_i]))
    cells = np.searchsorted(cum, ranks, side="right")
    flags = np.zeros(n_cells, dtype=np.uint8)
    flags[cells] = 1
    sel_counts = np.where(flags.astype(bool), counts, 0)
    cap = int(sel_counts.sum())
    out = np.empty(cap, dtype=np.float64)
    got = _grid_select(views, lo, inv, n_cells, flags, out, backend)
    if got != cap:
        raise RuntimeError(f"grid selected {got} values, expected {cap}")
    out.sort()
    # position of a global rank inside `out`: rank - (values before its cell) + (selected before its cell)
    sel_before = np.cumsum(sel_counts) - sel_counts
    all_before = cum - counts

    def at(r):
        cell = np.searchsorted(cum, r, side="right")
        return out[r - all_before[cell] + sel_before[cell]]

    return lerp_like_numpy(at(prev_i), at(next_i), gamma)
