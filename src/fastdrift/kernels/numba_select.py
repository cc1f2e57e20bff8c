"""The numba twin of ``kernels/fd_select.c``: the grid passes of the exact quantiles.

Every value must land in the same cell as ``fd_select.c`` puts it (a value is selected exactly
when it was counted in a flagged cell, whichever backend ran either pass), so the cell is computed
with C's arithmetic: scale in double, clamp in double, then truncate.  ``top`` is ``n_cells - 1``
as a double; the caller checked the grid (:class:`~fastdrift.kernels.quantile.GridPlan`) and the
arrays' sizes.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .native import FD_EGROW, FD_OK
from .numba_common import INLINE, NUMBA_OPTIONS, VALUE_TYPES, ro, rw

__all__ = ["grid_count", "grid_select", "grid_count_select", "grid_count_select_cells"]


@njit(**INLINE)
def _grid_cell(x, lo, inv, top):
    # fd_grid_cell() of fd_internal.h operation for operation; NaN t (inf * 0)
    # fails `t > 0.0` and lands in cell 0, as in C.
    t = (x - lo) * inv
    t = t if t > 0.0 else 0.0
    t = t if t < top else top
    return np.int64(t)


@njit(**INLINE)
def _hold(out, n, cap, x, overflow):
    # x selected: stored while out has room; past cap only counted (FD_EGROW, as C)
    if n < cap:
        out[n] = x
    else:
        overflow = True
    return n + 1, overflow


def _grid_count_sigs():
    return [types.void(ro(t), ro(types.uint8), types.int64, types.int64, types.float64,
                       types.float64, types.float64, rw(types.int64))
            for t in VALUE_TYPES]


@njit(_grid_count_sigs(), **NUMBA_OPTIONS)
def grid_count(values, validity, offset, length, lo, inv, top, counts):
    # A separate loop without the validity test, as in C: most columns have
    # no nulls and the test would cost a load per value.
    # x - x == 0.0 is false for NaN and +-inf (FD_FINITE in C).
    if validity.size == 0:
        for i in range(length):
            x = np.float64(values[offset + i])
            if x - x == 0.0:
                counts[_grid_cell(x, lo, inv, top)] += 1
    else:
        for i in range(length):
            j = offset + i
            if (validity[j >> 3] >> (j & 7)) & 1:
                x = np.float64(values[j])
                if x - x == 0.0:
                    counts[_grid_cell(x, lo, inv, top)] += 1


def _grid_select_sigs():
    return [types.int64(ro(t), ro(types.uint8), types.int64, types.int64, types.float64,
                        types.float64, types.float64, ro(types.uint8), rw(types.float64),
                        types.int64, rw(types.int64))
            for t in VALUE_TYPES]


@njit(_grid_select_sigs(), **NUMBA_OPTIONS)
def grid_select(values, validity, offset, length, lo, inv, top, flags, out, cap, n_out):
    # Keeps counting past cap so that FD_EGROW is reported exactly when C
    # reports it; n_out[0] ends at min(n, cap) as in C.
    n = n_out[0]
    overflow = False
    if validity.size == 0:
        for i in range(length):
            x = np.float64(values[offset + i])
            if x - x == 0.0 and flags[_grid_cell(x, lo, inv, top)]:
                n, overflow = _hold(out, n, cap, x, overflow)
    else:
        for i in range(length):
            j = offset + i
            if (validity[j >> 3] >> (j & 7)) & 1:
                x = np.float64(values[j])
                if x - x == 0.0 and flags[_grid_cell(x, lo, inv, top)]:
                    n, overflow = _hold(out, n, cap, x, overflow)
    n_out[0] = n if n < cap else cap
    return FD_EGROW if overflow else FD_OK


def _grid_count_select_sigs():
    return [types.int64(ro(t), ro(types.uint8), types.int64, types.int64, types.float64,
                        types.float64, types.float64, rw(types.int64), ro(types.uint8), rw(types.float64),
                        types.int64, rw(types.int64))
            for t in VALUE_TYPES]


@njit(_grid_count_select_sigs(), **NUMBA_OPTIONS)
def grid_count_select(values, validity, offset, length, lo, inv, top, counts, flags, out, cap, n_out):
    n = n_out[0]
    overflow = False
    if validity.size == 0:
        for i in range(length):
            x = np.float64(values[offset + i])
            if x - x == 0.0:
                c = _grid_cell(x, lo, inv, top)
                counts[c] += 1
                if flags[c]:
                    n, overflow = _hold(out, n, cap, x, overflow)
    else:
        for i in range(length):
            j = offset + i
            if (validity[j >> 3] >> (j & 7)) & 1:
                x = np.float64(values[j])
                if x - x == 0.0:
                    c = _grid_cell(x, lo, inv, top)
                    counts[c] += 1
                    if flags[c]:
                        n, overflow = _hold(out, n, cap, x, overflow)
    n_out[0] = n if n < cap else cap
    return FD_EGROW if overflow else FD_OK



def _grid_count_select_cells_sigs():
    return [types.int64(ro(t), ro(types.uint8), types.int64, types.int64, types.float64,
                        types.float64, types.float64, ro(types.uint8), rw(types.float64),
                        types.int64, rw(types.int64), rw(types.float64), rw(types.float64), rw(types.int64))
            for t in VALUE_TYPES]


@njit(_grid_count_select_cells_sigs(), **NUMBA_OPTIONS)
def grid_count_select_cells(values, validity, offset, length, lo, inv, top, flags, out, cap, n_out,
                            cells, tail, n_tail):
    # fd_moments_grid_cells_update's grid part: each cell's record in cells[4 c:4 c + 4], its count
    # (a float), sum (in column order), min and max; values of FD_GRID_DIGEST (2) cells appended
    # to tail (the caller made room for every value); values of FD_GRID_HELD (1) cells selected
    # into out.
    n = n_out[0]
    nt = n_tail[0]
    overflow = False
    for i in range(length):
        j = offset + i
        if validity.size != 0 and not (validity[j >> 3] >> (j & 7)) & 1:
            continue
        x = np.float64(values[j])
        if x - x != 0.0:
            continue
        c = _grid_cell(x, lo, inv, top)
        r = 4 * c
        cells[r] += 1.0
        cells[r + 1] += x
        if x < cells[r + 2]:
            cells[r + 2] = x
        if x > cells[r + 3]:
            cells[r + 3] = x
        f = flags[c]
        if f & 2:
            tail[nt] = x
            nt += 1
        if f & 1:
            n, overflow = _hold(out, n, cap, x, overflow)
    n_out[0] = n if n < cap else cap
    n_tail[0] = nt
    return FD_EGROW if overflow else FD_OK
