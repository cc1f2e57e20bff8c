"""Exact quantiles of a column, equal to ``np.quantile(x, q)`` (method "linear")
over its finite values, without partitioning the whole column.

Reference bins are the reference's deciles as numpy computes them, and
``np.quantile`` partitions the whole column around every wanted rank (a
multi-kth partition), which costs more than every other per-column step of a
profile together (bench/bench_kernels.py times it, this module, the
histograms and the moments on one column).  Here:

1. count the finite values per cell of an equal-width grid over [min, max]
   (``fd_grid_count``, one streaming pass);
2. find the cells that hold the order statistics the linear interpolation
   needs (``floor((n-1)q)`` and the next one);
3. copy only the values of those cells (``fd_grid_select``) and sort them;
4. interpolate exactly as ``numpy.lib._function_base_impl._lerp`` does, so
   the result is bit-identical to ``np.quantile`` (tested with hypothesis).

Heavy ties or extreme ranges only make step 3 select more values; the result
stays exact.

The two passes run on the backend object of :data:`GRID` (``get_backend("quantile")``): the C
kernels of ``kernels/fd_select.c`` or their numba twins in :mod:`.numba_select`, which put every
value in the same cell.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from ..adapters.arrow import ColumnView
from ..errors import InvalidInputError
from . import Family, check_out, float64_pieces, numeric_values
from .moments import check_state
from .native import FD_EINVAL, FD_GRID_MAX_CELLS, FD_OK, check, column, lib, ptr

__all__ = ["exact_quantiles", "lerp_like_numpy", "GridPlan", "grid_plan", "grid_counts", "flag_cells",
           "selected_count", "select", "count_select", "moments_count_select", "moments_count_select_cells", "cells_merge",
           "empty_cells",
           "GRID_HELD", "GRID_DIGEST", "order_statistics",
           "quantiles_from_selected", "GRID"]


def lerp_like_numpy(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's quantile interpolation, operation for operation (so results are bit-identical)."""
    diff = b - a
    out = a + diff * t
    hi = t >= 0.5
    out[hi] = (b - diff * (1 - t))[hi]
    return out


@dataclass(frozen=True)
class GridPlan:
    """The equal-width grid over [lo, hi] that every pass of one quantile query shares.

    Every partition of a distributed column must put each value in the same
    cell, so the plan depends only on the column's global ``n``, ``lo`` and
    ``hi`` (exact, from merged :class:`~fastdrift.sketches.Moments`), never on
    the data a partition holds.

    Attributes
    ----------
    n : int
        Number of finite values of the whole column.
    lo, hi : float
        Their minimum and maximum.
    n_cells : int
        Number of grid cells.
    inv : float
        ``n_cells / (hi - lo)`` (0 when the span is not a positive finite number:
        then every value falls in cell 0 and the selection stays exact).

    Raises
    ------
    InvalidInputError
        Unless ``1 <= n_cells <= FD_GRID_MAX_CELLS``, ``inv >= 0`` and ``lo`` is finite (the
        kernels' grid check, made once here for both backends).
    """

    n: int
    lo: float
    hi: float
    n_cells: int
    inv: float

    def __post_init__(self):
        if not (1 <= self.n_cells <= FD_GRID_MAX_CELLS and self.inv >= 0.0 and math.isfinite(self.lo)):
            raise InvalidInputError(f"not a quantile grid: {self}")


def grid_plan(n: int, lo: float, hi: float) -> GridPlan:
    """The grid of a column with ``n`` >= 1 finite values in ``[lo, hi]``.

    Parameters
    ----------
    n : int
        Number of finite values (``Moments.n``).
    lo, hi : float
        Their minimum and maximum (``Moments.min`` / ``Moments.max``).

    Returns
    -------
    GridPlan
    """
    n = int(n)
    if n < 1:
        raise InvalidInputError(f"a quantile grid needs at least one finite value, got n={n}")
    # ~64 values a cell, at most 16Ki cells (128 KiB of counters: cache resident)
    n_cells = int(min(max(n // 64, 1), 1 << 14))
    span = hi - lo
    inv = n_cells / span if np.isfinite(span) and span > 0 else 0.0
    return GridPlan(n, float(lo), float(hi), n_cells, float(inv))


class _CGrid:
    """The grid passes of ``kernels/fd_select.c`` and ``fd_moments_grid_update`` of ``fd_moments.c``."""

    @staticmethod
    def count(view, plan: GridPlan, counts) -> int:
        return lib.fd_grid_count(column(view), plan.lo, plan.inv, plan.n_cells, ptr("int64_t*", counts))

    @staticmethod
    def select(view, plan: GridPlan, flags, out, got) -> int:
        return lib.fd_grid_select(column(view), plan.lo, plan.inv, plan.n_cells, ptr("uint8_t*", flags),
                                  ptr("double*", out), out.size, ptr("int64_t*", got))

    @staticmethod
    def count_select(view, plan: GridPlan, counts, flags, out, got) -> int:
        return lib.fd_grid_count_select(column(view), plan.lo, plan.inv, plan.n_cells, ptr("int64_t*", counts),
                                        ptr("uint8_t*", flags), ptr("double*", out), out.size,
                                        ptr("int64_t*", got))

    @staticmethod
    def moments_count_select(view, ints, flts, plan: GridPlan, counts, flags, out, got) -> int:
        return lib.fd_moments_grid_update(column(view), ptr("int64_t*", ints), ptr("double*", flts), plan.lo,
                                          plan.inv, plan.n_cells, ptr("int64_t*", counts), ptr("uint8_t*", flags),
                                          ptr("double*", out), out.size, ptr("int64_t*", got))

    @staticmethod
    def moments_count_select_cells(view, ints, flts, plan: GridPlan, flags, out, got, cells, tail, n_tail) -> int:
        return lib.fd_moments_grid_cells_update(column(view), ptr("int64_t*", ints), ptr("double*", flts), plan.lo,
                                                plan.inv, plan.n_cells, ptr("uint8_t*", flags), ptr("double*", out),
                                                out.size, ptr("int64_t*", got), ptr("double*", cells),
                                                ptr("double*", tail), tail.size, ptr("int64_t*", n_tail))


class _NumbaGrid:
    """The same calls on :mod:`.numba_select` (and :mod:`.numba_moments` for the fused one, which runs
    the two kernels one after the other: the same results)."""

    def __init__(self):
        from . import numba_moments, numba_select  # numba loads only when this backend is used

        self.k = numba_select
        self.m = numba_moments

    @staticmethod
    def _args(view, plan: GridPlan):
        return view.values, view.validity, view.offset, view.length, plan.lo, plan.inv, float(plan.n_cells - 1)

    def count(self, view, plan: GridPlan, counts) -> int:
        self.k.grid_count(*self._args(view, plan), counts)
        return FD_OK

    def select(self, view, plan: GridPlan, flags, out, got) -> int:
        return self.k.grid_select(*self._args(view, plan), flags, out, out.size, got)

    def count_select(self, view, plan: GridPlan, counts, flags, out, got) -> int:
        return self.k.grid_count_select(*self._args(view, plan), counts, flags, out, out.size, got)

    def moments_count_select(self, view, ints, flts, plan: GridPlan, counts, flags, out, got) -> int:
        for values, validity, offset, length in float64_pieces(view):  # float64 entries only
            self.m.moments_update(values, validity, offset, length, ints, flts)
        return self.count_select(view, plan, counts, flags, out, got)

    def moments_count_select_cells(self, view, ints, flts, plan: GridPlan, flags, out, got, cells, tail,
                                   n_tail) -> int:
        if tail.size - n_tail[0] < view.length:
            return FD_EINVAL
        for values, validity, offset, length in float64_pieces(view):
            self.m.moments_update(values, validity, offset, length, ints, flts)
        return self.k.grid_count_select_cells(*self._args(view, plan), flags, out, out.size, got, cells,
                                              tail, n_tail)


#: The grid passes' backend objects (family ``"quantile"``).
GRID = Family("quantile", c=_CGrid, numba=_NumbaGrid)


def _flags(plan: GridPlan, flags) -> np.ndarray:
    flags = np.ascontiguousarray(flags, dtype=np.uint8)
    if flags.shape != (plan.n_cells,):
        raise InvalidInputError(f"flags must hold {plan.n_cells} entries, got shape {flags.shape}")
    return flags


def grid_counts(views: Iterable[ColumnView], plan: GridPlan, backend: Optional[str] = None,
                out: Optional[np.ndarray] = None) -> np.ndarray:
    """Finite values per grid cell (pass 1); counts of disjoint parts of a column add up.

    Parameters
    ----------
    views : iterable of ColumnView
        Chunks of the column (or of one partition of it); consumed once, so a
        generator over streamed batches works.
    plan : GridPlan
        From :func:`grid_plan` over the *whole* column.
    backend : {"c", "numba"}, optional
        Defaults to ``get_backend("quantile")``.
    out : numpy.ndarray, optional
        Contiguous int64[plan.n_cells] to add the counts to (a streamed column's running
        counts, without a fresh array per chunk).

    Returns
    -------
    numpy.ndarray
        int64[plan.n_cells] (``out`` when given).
    """
    k = GRID(backend)
    if out is not None:
        check_out(out, np.int64, plan.n_cells, "out")
        counts = out
    else:
        counts = np.zeros(plan.n_cells, dtype=np.int64)
    for v in views:
        if numeric_values(v, "a quantile grid needs"):
            check(k.count(v, plan, counts), "grid count", v.name)
    return counts


def order_statistics(n: int, qs: np.ndarray):
    """(prev, next, gamma) of numpy's 'linear' method for ``n`` sorted values: ``np.quantile``
    interpolates between the order statistics ``prev`` and ``next`` (int64 ranks) with weight ``gamma``."""
    virtual = (n - 1) * qs
    prev = np.floor(virtual)
    above = virtual >= n - 1
    prev[above] = n - 1
    prev[virtual < 0] = 0
    prev_i = prev.astype(np.int64)
    next_i = np.minimum(prev_i + 1, n - 1)
    next_i[above] = n - 1
    gamma = virtual - np.where(above, -1.0, prev)  # numpy uses index -1 above bounds; a == b there
    return prev_i, next_i, gamma


def flag_cells(plan: GridPlan, counts: np.ndarray, qs) -> np.ndarray:
    """Mark the cells that hold the order statistics ``np.quantile(x, qs)`` interpolates between.

    Parameters
    ----------
    plan : GridPlan
    counts : numpy.ndarray
        int64 grid counts of the whole column (partitions' counts summed).
    qs : array_like of float
        Quantile levels in [0, 1].

    Returns
    -------
    numpy.ndarray
        uint8[plan.n_cells], 1 for a flagged cell.
    """
    counts = np.asarray(counts, dtype=np.int64)
    cum = np.cumsum(counts)
    if counts.shape != (plan.n_cells,) or cum[-1] != plan.n:
        raise RuntimeError(f"grid counted {cum[-1] if cum.size else 0} finite values in "
                           f"{counts.size} cells, expected {plan.n} in {plan.n_cells}")
    prev_i, next_i, _ = order_statistics(plan.n, np.asarray(qs, dtype=np.float64))
    ranks = np.unique(np.concatenate([prev_i, next_i]))
    flags = np.zeros(plan.n_cells, dtype=np.uint8)
    flags[np.searchsorted(cum, ranks, side="right")] = 1
    return flags


def selected_count(counts: np.ndarray, flags: np.ndarray) -> int:
    """How many values the flagged cells hold (the capacity :func:`select` needs)."""
    return int(np.where(flags.astype(bool), counts, 0).sum())


def _selecting(views: Iterable[ColumnView], plan: GridPlan, flags, cap: Optional[int], call, what: str,
               needs: str = "a quantile grid needs", state=None) -> np.ndarray:
    """Run ``call(view, flags, out, got)`` on each chunk with values and return the values selected
    into ``out`` (``cap`` entries; every value of the chunks when None)."""
    flags = _flags(plan, flags)
    views = list(views)
    out = np.empty(sum(v.length for v in views) if cap is None else int(cap), dtype=np.float64)
    got = np.zeros(1, dtype=np.int64)
    for v in views:
        if numeric_values(v, needs, state, 1):
            check(call(v, flags, out, got), what, v.name)
    n = int(got[0])
    # a view of a small part would keep the whole buffer (sized for the chunk) alive with the selection
    return out[:n].copy() if n < out.size // 2 else out[:n]


def select(views: Iterable[ColumnView], plan: GridPlan, flags: np.ndarray, cap: int,
           backend: Optional[str] = None) -> np.ndarray:
    """The finite values of flagged cells, in column order (pass 2); parts concatenate.

    Parameters
    ----------
    views : iterable of ColumnView
        Chunks of the column or of one partition of it (consumed once).
    plan : GridPlan
    flags : numpy.ndarray
        From :func:`flag_cells`.
    cap : int
        Upper bound of the number selected: :func:`selected_count` of the
        counts of these views (or of the whole column, a safe bound for a part).
        More values than ``cap`` raise (the grid disagrees with its counts).
    backend : {"c", "numba"}, optional

    Returns
    -------
    numpy.ndarray
        float64 values, unsorted.
    """
    k = GRID(backend)
    return _selecting(views, plan, flags, cap, lambda v, f, o, g: k.select(v, plan, f, o, g), "grid select")


def count_select(views: Iterable[ColumnView], plan: GridPlan, counts: np.ndarray, flags: np.ndarray,
                 backend: Optional[str] = None) -> np.ndarray:
    """:func:`grid_counts` (added to ``counts``) and :func:`select` in one read of each chunk.

    For a grid whose flagged cells are chosen before the values are seen (a streamed
    column's first pass).  ``counts``: contiguous int64[plan.n_cells], added to in place.

    Returns
    -------
    numpy.ndarray
        float64 values of the flagged cells, unsorted, in column order.
    """
    k = GRID(backend)
    check_out(counts, np.int64, plan.n_cells, "counts")
    return _selecting(views, plan, flags, None, lambda v, f, o, g: k.count_select(v, plan, counts, f, o, g),
                      "grid count and select")


def moments_count_select(views: Iterable[ColumnView], ints: np.ndarray, flts: np.ndarray, plan: GridPlan,
                         counts: np.ndarray, flags: np.ndarray, backend: Optional[str] = None) -> np.ndarray:
    """:func:`~fastdrift.kernels.moments.moments_update` of each chunk into ``(ints, flts)`` and
    :func:`count_select` over it, in one read (C: ``fd_moments_grid_update``; numba: the two
    kernels one after the other), on the backend of :data:`GRID`.  Same results as the two calls.

    Returns
    -------
    numpy.ndarray
        float64 values of the flagged cells, unsorted, in column order.
    """
    k = GRID(backend)
    check_state(ints, flts)
    check_out(counts, np.int64, plan.n_cells, "counts")
    return _selecting(views, plan, flags, None,
                      lambda v, f, o, g: k.moments_count_select(v, ints, flts, plan, counts, f, o, g),
                      "moments and grid count", "moments need", ints)


_scratch = threading.local()

#: Flag bits of a grid cell (kernels/fastdrift.h): its values are selected; they go to the t-digest.
GRID_HELD, GRID_DIGEST = lib.FD_GRID_HELD, lib.FD_GRID_DIGEST


def empty_cells(n_cells: int) -> np.ndarray:
    """Cell records of an empty grid for :func:`moments_count_select_cells`: float64[n_cells, 4] of
    (count 0, sum 0, min +inf, max -inf), each record on 32 bytes of one 64-byte line (a record
    across two lines would split its vector stores)."""
    raw = np.empty(4 * n_cells + 8, np.float64)
    skip = (-raw.ctypes.data % 64) // 8
    cells = raw[skip:skip + 4 * n_cells].reshape(n_cells, 4)
    cells[:] = (0.0, 0.0, np.inf, -np.inf)
    return cells


def _check_cells(cells, n_cells: int, what: str = "cells") -> None:
    if not (isinstance(cells, np.ndarray) and cells.dtype == np.float64 and cells.shape == (n_cells, 4)
            and cells.flags.c_contiguous and cells.flags.writeable):
        raise InvalidInputError(f"{what} must be a writeable contiguous float64 array of shape ({n_cells}, 4)")


def moments_count_select_cells(views: Iterable[ColumnView], ints: np.ndarray, flts: np.ndarray, plan: GridPlan,
                               flags: np.ndarray, cells: np.ndarray, backend: Optional[str] = None):
    """:func:`moments_count_select` that keeps, instead of counts, a record per cell in ``cells``
    (float64[plan.n_cells, 4], :func:`empty_cells`, added to / folded in place): the count of its
    finite values (a float, exact), their sum (in column order), minimum and maximum; and returns
    the values of the cells whose ``flags`` have :data:`GRID_DIGEST` as well (C:
    ``fd_moments_grid_cells_update``).  Only :data:`GRID_HELD` cells are selected.
    :func:`cells_merge` folds the records into a grid's counts and (sum, min, max).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The held cells' values and the digest cells' values, each in column order.
    """
    k = GRID(backend)
    check_state(ints, flts)
    _check_cells(cells, plan.n_cells)
    views = list(views)
    need = sum(v.length for v in views)
    tail = getattr(_scratch, "tail", None)
    if tail is None or tail.size < need:
        # this thread's, reused: a second fresh 1 MiB array a call beside the selection's was
        # mapped anew by the allocator each time, its pages faulted in (+1.2 ns a value)
        tail = _scratch.tail = np.empty(max(need, 1 << 17), np.float64)
    n_tail = np.zeros(1, np.int64)
    flat = cells.reshape(-1)
    held = _selecting(views, plan, flags, None,
                      lambda v, f, o, g: k.moments_count_select_cells(v, ints, flts, plan, f, o, g, flat,
                                                                      tail, n_tail),
                      "moments and grid cells", "moments need", ints)
    return held, tail[:int(n_tail[0])].copy()


def cells_merge(counts: np.ndarray, stats: np.ndarray, part_cells: np.ndarray) -> None:
    """Fold a part's cell records (:func:`moments_count_select_cells`) into a grid's ``counts`` and
    per-cell ``stats`` (float64[n, 3]: sum, min, max) in place, and reset the part's records to an
    empty grid (``fd_grid_cells_merge``; one backend: a fold, not a read).  A record whose count is
    not a whole number in [0, 2**53] is an error, with nothing folded."""
    n = counts.size
    for a, dt, shape, what in ((counts, np.int64, (n,), "counts"), (stats, np.float64, (n, 3), "stats")):
        if not (isinstance(a, np.ndarray) and a.dtype == dt and a.shape == shape and a.flags.c_contiguous
                and a.flags.writeable):
            raise InvalidInputError(f"{what} must be a writeable contiguous {np.dtype(dt).name} array of shape {shape}")
    _check_cells(part_cells, n, "part cells")
    if np.shares_memory(part_cells, stats) or np.shares_memory(part_cells, counts):
        raise InvalidInputError("a grid cannot be merged into itself")
    check(lib.fd_grid_cells_merge(ptr("int64_t*", counts), ptr("double*", stats), ptr("double*", part_cells), n),
          "grid cells merge")


def quantiles_from_selected(plan: GridPlan, counts: np.ndarray, flags: np.ndarray,
                            values: np.ndarray, qs, value_counts: Optional[np.ndarray] = None) -> np.ndarray:
    """``np.quantile(x, qs)`` from the whole column's grid counts and the flagged cells' values.

    Parameters
    ----------
    plan : GridPlan
    counts : numpy.ndarray
        int64 grid counts of the whole column.
    flags : numpy.ndarray
        Flagged cells: from :func:`flag_cells` with the same ``qs``, or a superset of them.
    values : numpy.ndarray
        Every value of the flagged cells (all partitions' selections concatenated,
        any order); with ``value_counts``, their sorted distinct values.
    qs : array_like of float
    value_counts : numpy.ndarray, optional
        int64 count of each of the distinct ``values`` (a tie block kept as one entry).

    Returns
    -------
    numpy.ndarray
        float64, bit-identical to ``np.quantile`` over the column's finite values.
    """
    counts = np.asarray(counts, dtype=np.int64)
    sel_counts = np.where(flags.astype(bool), counts, 0)
    if value_counts is None:
        values = np.sort(np.asarray(values, dtype=np.float64))
        got = values.size
    else:
        ends = np.cumsum(value_counts)  # sorted distinct values: position i holds values[searchsorted(ends, i)]
        got = int(ends[-1]) if ends.size else 0
    if got != int(sel_counts.sum()):
        raise RuntimeError(f"grid selected {got} values, expected {int(sel_counts.sum())}")
    cum = np.cumsum(counts)
    prev_i, next_i, gamma = order_statistics(plan.n, np.asarray(qs, dtype=np.float64))
    # position of a global rank among the selected: rank - (values before its cell) + (selected before its cell)
    sel_before = np.cumsum(sel_counts) - sel_counts
    all_before = cum - counts

    def at(r):
        cell = np.searchsorted(cum, r, side="right")
        i = r - all_before[cell] + sel_before[cell]
        return values[i if value_counts is None else np.searchsorted(ends, i, side="right")]

    return lerp_like_numpy(at(prev_i), at(next_i), gamma)


def exact_quantiles(views: Sequence[ColumnView], qs: np.ndarray, n: int, lo: float, hi: float,
                    backend: Optional[str] = None) -> np.ndarray:
    """``np.quantile(finite values, qs)`` for a column given as chunk views.

    ``n``, ``lo`` and ``hi`` are the number, minimum and maximum of the finite
    values (from :class:`~fastdrift.sketches.Moments`); ``n`` must be >= 1.
    ``backend`` (``"c"`` or ``"numba"``) defaults to ``get_backend("quantile")``.
    The steps are the public functions above; :class:`fastdrift.sketches.quantiles.ExactQuantiles`
    holds them between passes over data seen in parts.
    """
    qs = np.asarray(qs, dtype=np.float64)
    if lo == hi:
        return np.full(qs.shape, lo)
    plan = grid_plan(n, lo, hi)
    counts = grid_counts(views, plan, backend)
    flags = flag_cells(plan, counts, qs)
    values = select(views, plan, flags, selected_count(counts, flags), backend)
    return quantiles_from_selected(plan, counts, flags, values, qs)
