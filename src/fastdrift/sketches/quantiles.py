"""Exact quantiles (``np.quantile`` 'linear', bit for bit) of data seen in parts: mergeable state.

The steps of :mod:`fastdrift.kernels.quantile` (grid_plan, grid_counts, flag_cells, select,
quantiles_from_selected) with their state held between passes: :class:`ExactQuantiles` counts a
grid over the column's exact range, then selects the values of the cells holding the wanted order
statistics; :class:`StreamingQuantiles` does both in one pass when a pilot batch places the grid
well.  The reference builder (:mod:`fastdrift.sketches.reference`) runs the passes.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import numpy as np
import pyarrow as pa

from ..adapters.arrow import iter_columns
from ..errors import IncompatibleSketchError
from ..kernels import quantile as kq
from ..kernels.tdigest import sort_values
from .moments import Moments
from .tdigest import TDigest

__all__ = ["ExactQuantiles", "StreamingQuantiles", "merge_counts", "append_compact", "select_counts",
           "numeric_views"]


def numeric_views(arr, name):
    """The numeric chunk views of a column (its null chunks left out): what the grid kernels read."""
    return [v for v in iter_columns(arr, name) if v.kind == "numeric"]


class ExactQuantiles:
    """Mergeable exact quantiles (``np.quantile`` 'linear', bit for bit) over a scanned column.

    The selection is kept as distinct values with counts: a tie block, an integer column's
    decile cell, would otherwise hold a value per row.

    ``count(views)`` returns a chunk's grid counts (pass 2; they add up into :attr:`counts`);
    after :meth:`plan_select`, ``select(views)`` returns a chunk's flagged-cell values as
    (distinct values, counts) (pass 3; :meth:`add_selected` folds them); :meth:`merge` folds
    another part's counts and selection; :meth:`result` interpolates.
    """

    def __init__(self, qs: np.ndarray, n: int, lo: float, hi: float, plan=None,
                 counts: Optional[np.ndarray] = None):
        self.qs = np.asarray(qs, np.float64)
        # plan / counts: a grid already counted (the first pass's, over a window of the data's range)
        self.plan = kq.grid_plan(n, lo, hi) if plan is None else dataclasses.replace(plan, n=int(n))
        self.counts = np.zeros(self.plan.n_cells, dtype=np.int64) if counts is None else counts
        self.selected: List[Tuple[np.ndarray, np.ndarray]] = []
        self._folded = False

    def count(self, views) -> np.ndarray:
        return kq.grid_counts(views, self.plan)

    def plan_select(self, held: Optional[np.ndarray] = None) -> bool:
        """Flag the cells holding the wanted order statistics (checks the counts add up to n).

        ``held``: the cells whose values were already selected; when they include every
        flagged cell the selection is complete (returns True) and flags become ``held``.
        """
        need = kq.flag_cells(self.plan, self.counts, self.qs)
        if held is not None:
            if np.any(need.astype(bool) & ~held.astype(bool)):
                return False
            need = held
        self.flags = need
        self.cap = kq.selected_count(self.counts, self.flags)
        return True

    def select(self, views) -> Tuple[np.ndarray, np.ndarray]:
        """The flagged cells' values of one chunk as (distinct values, counts)."""
        return select_counts(views, self.plan, self.flags, self.cap)

    def add_selected(self, part: Tuple[np.ndarray, np.ndarray]) -> None:
        self.selected = append_compact(self.selected, part)
        self._folded = False

    def set_selected(self, part: Tuple[np.ndarray, np.ndarray]) -> None:
        """The whole selection, already folded (:func:`merge_counts`' sorted distinct values and
        their counts): not sorted again."""
        self.selected = [part]
        self._folded = True

    def merge(self, other: "ExactQuantiles") -> "ExactQuantiles":
        """Fold another part's grid counts and selection in (the same grid; ``other`` unchanged)."""
        if (other.plan.lo, other.plan.hi, other.plan.n_cells) != (self.plan.lo, self.plan.hi, self.plan.n_cells):
            raise IncompatibleSketchError(f"quantile grids differ: {self.plan} vs {other.plan}")
        self.counts = self.counts + other.counts
        for part in other.selected:
            self.add_selected(part)
        return self

    def _merged(self) -> Tuple[np.ndarray, np.ndarray]:
        """The selection as sorted distinct values with counts (folded once, then reused)."""
        if not self._folded:
            self.selected = [merge_counts(self.selected)]  # sorts: a single part may not be sorted
            self._folded = True
        return self.selected[0]

    def result(self) -> np.ndarray:
        u, c = self._merged()
        return kq.quantiles_from_selected(self.plan, self.counts, self.flags, u, self.qs, c)

    def histogram_counts(self, edges: np.ndarray, m: Moments) -> Optional[np.ndarray]:
        """The exact bin counts over ``edges`` (this column's own quantiles) from the grid counts and
        the selection alone, or None when an edge's cell is neither selected nor empty.

        An edge interpolates two adjacent order statistics, so it lies in a flagged cell or in an
        empty cell between two flagged ones; the cell arithmetic is monotone, so every value of a
        cell before the edge's cell is below the edge and every value of a later cell is not.
        Values below an edge = unflagged cells before its cell + selected values below it.
        """
        cells = _cells(np.asarray(edges, np.float64), self.plan)  # the kernels' cell arithmetic
        flagged = self.flags.astype(bool)
        if not np.all(flagged[cells] | (self.counts[cells] == 0)):
            return None
        u, c = self._merged()
        unflagged = np.where(flagged, 0, self.counts)
        unflagged_before = np.cumsum(unflagged) - unflagged
        sel_cum = np.concatenate([[0], np.cumsum(c)])
        below = unflagged_before[cells] + sel_cum[np.searchsorted(u, edges, side="left")]
        counts = np.diff(np.concatenate([[0], below, [m.n]]))
        counts[0] += m.neginf_count
        counts[-1] += m.posinf_count
        return counts


def select_counts(views, plan, flags: np.ndarray, cap: int) -> Tuple[np.ndarray, np.ndarray]:
    """The values of the flagged cells of ``plan`` in one chunk as (distinct values, counts);
    ``cap``, the whole column's selected count, bounds any part of it.  pyarrow's hash
    ``value_counts`` turns a tie block into one pair in one pass."""
    v = kq.select(views, plan, flags, cap)
    if v.size == 0:
        return v, np.zeros(0, np.int64)
    import pyarrow.compute as pc  # ~25 ms at import: only selections need it, not `import fastdrift`
    vc = pc.value_counts(pa.array(v))
    return (vc.field("values").to_numpy(zero_copy_only=False).copy(),
            vc.field("counts").to_numpy(zero_copy_only=False).astype(np.int64))


def _cells(x: np.ndarray, plan) -> np.ndarray:
    """Grid cells of finite values, with fd_grid_count's arithmetic operation for operation."""
    t = (x - plan.lo) * plan.inv
    t = np.where(t > 0.0, t, 0.0)
    t = np.where(t < plan.n_cells - 1, t, float(plan.n_cells - 1))
    return t.astype(np.int64)


#: Distinct values a column's first-pass selection may hold before it gives up (then the
#: selection pass runs); 2**18 values and counts, 4 MiB a column.
_HELD_CAP = 1 << 18
#: FD_TD_K2_SHARE of kernels/fd_tdigest.c: the share of the compression the k2 scale takes.
_K2_SHARE = 0.15
#: Half-width of a decile's rank window in standard errors of a quantile of the rows seen (a miss
#: only costs the selection pass).
_Z = 5.0


#: Pilot values the grid's window is placed on (every k-th of the pilot's finite values).
_WINDOW_SAMPLE = 1 << 14

#: Most cells a scan's grid has (128 KiB of counts a column), and fewest.
_MAX_CELLS, _MIN_CELLS = 1 << 14, 1 << 10


def scan_cells(counts: np.ndarray, qs: np.ndarray, rows_total: Optional[int]) -> int:
    """Grid cells for a scan of ``rows_total`` rows, from the pilot's ``counts`` on a grid of
    :data:`_MAX_CELLS` cells: the fewest cells (a power of two, at least :data:`_MIN_CELLS`) whose
    cells at the wanted ranks, two a rank, scaled from the pilot to ``rows_total`` rows, hold at
    most a quarter of :data:`_HELD_CAP` values (the running windows around the ranks hold the
    rest); :data:`_MAX_CELLS` when none does or the rows are unknown.

    The scan counts every value into its column's grid while the other columns take turns, so the
    grids' size decides where the counts live: 20 columns of 16Ki 8-byte cells (2.5 MiB) miss the
    L2 cache, of 4Ki cells (640 KiB) they do not (docs/performance.md).  Fewer cells hold more
    values each, and the held cells' values are kept until the end, at most :data:`_HELD_CAP`
    distinct values a column; where the data is dense at the wanted ranks (skewed data, many rows)
    the grid keeps its finer cells.  (The estimate sums aligned groups of fine cells for the
    coarse ones, which is what the coarse grid counts up to rounding at the cells' edges.)
    """
    n = int(counts.sum())
    if not rows_total or rows_total <= 0 or n == 0 or counts.size != _MAX_CELLS:
        return _MAX_CELLS
    c = _MIN_CELLS
    while c < _MAX_CELLS:
        g = counts.reshape(c, -1).sum(axis=1)
        at = np.minimum(np.searchsorted(np.cumsum(g), np.asarray(qs) * n, side="right"), c - 1)
        if 2.0 * g[at].sum() * (rows_total / n) <= _HELD_CAP / 4:
            return c
        c *= 2
    return _MAX_CELLS


class StreamingQuantiles:
    """Exact quantiles counted in the first pass, whenever the data lets; never approximate.

    Before the scan, the first batch of the first fragment (a *pilot*, read once more)
    fixes an equal-width grid over a window around its deciles' range (values outside fall
    in the two end cells, which stay exact: cells are monotone in the value; as many cells as
    :func:`scan_cells` finds for the pilot's density and the scan's rows) and the cells
    around each wanted rank.  Every batch then adds its exact grid counts and copies the
    values of the *held* cells (kept as distinct values with counts once ties pile up).  At each in-order merge the
    running counts locate each wanted rank better, so held cells are only ever dropped
    (never added): a cell stays held while its rank range meets ``q +- 5`` standard errors
    of a quantile of the rows seen so far (shrunk by the unseen share of the rows), so what
    is held grows like sqrt(rows), and at most :data:`_HELD_CAP` distinct values.

    After the scan the grid counts are exact; when every cell holding a wanted order
    statistic is still held, :meth:`exact` gives :class:`ExactQuantiles` complete; otherwise
    (a misleading prefix, a held selection over the cap) one whose selection still has to run.

    Given a ``compression``, the column's t-digest comes from the grid too (:meth:`tdigest`):
    each cell whose values the digest may take as one cluster keeps their sum, minimum and
    maximum (the kernel adds them in the same read), and only the values of the other cells
    (:func:`digest_cells`: the two ends of the data, where the digest's clusters are small,
    and cells with repeated values) go through t-digests, one for each end and one
    for the ties.  After the scan, the cells join those digests as clusters in one
    clustering pass.  A column whose pilot sends more than :data:`_DIGEST_SHARE_MAX` of its
    values to the digests anyway keeps the plain digest (:attr:`digest` is None).
    """

    def __init__(self, qs: np.ndarray, pilot: np.ndarray, rows_total: Optional[int],
                 compression: Optional[float] = None, deciles: bool = True):
        self.qs = np.asarray(qs, np.float64)
        f = pilot[np.isfinite(pilot)]
        # the window from every k-th value of a big pilot: its ends need no exact rank (a pilot of
        # 131,072 values partitioned whole took 2 of the 5 ms a column's grid took to place)
        g = f[::max(f.size // _WINDOW_SAMPLE, 1)] if f.size else f
        lo, hi = np.quantile(g, [max(self.qs.min() - 0.05, 0.0), min(self.qs.max() + 0.05, 1.0)])
        with np.errstate(over="ignore", invalid="ignore"):  # values near the float64 limit
            pad = (hi - lo) * 0.25
            lo, hi = lo - pad, hi + pad
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            lo, hi = f.min(), f.max()
        self.ok = bool(np.isfinite(lo) and np.isfinite(hi) and hi > lo)  # the grid counts
        # deciles=False (a current profile's grid, for its t-digest only): no value is held, and
        # the grid has _DIGEST_CELLS cells
        self.holding = self.ok and deciles  # and the held cells' values are kept
        self.plan = kq.grid_plan(64 * _MAX_CELLS, lo, hi) if self.ok else None
        self.rows_total = rows_total
        self.rows = 0
        self.digest: Optional[float] = None  # the t-digests' compression when the grid makes them
        if not self.ok:
            return
        view = _f64_view(f)
        pilot_counts = kq.grid_counts([view], self.plan)
        cells = scan_cells(pilot_counts, self.qs, rows_total) if deciles else _DIGEST_CELLS
        if cells != _MAX_CELLS:
            self.plan = kq.grid_plan(64 * cells, lo, hi)
            pilot_counts = kq.grid_counts([view], self.plan)
        self.counts = np.zeros(self.plan.n_cells, np.int64)
        self.held = np.ones(self.plan.n_cells, np.uint8)
        self._none = np.zeros(self.plan.n_cells, np.uint8)
        self.selected: List[Tuple[np.ndarray, np.ndarray]] = []
        self._size, self._limit = 0, 1 << 16  # distinct values held; when to drop the dropped cells' ones
        self._shrunk_at = 0
        self._free: List[np.ndarray] = []  # zeroed count arrays for the next fragments
        self._digest_flags = np.zeros(self.plan.n_cells, np.uint8)
        self._flags = self.held
        if compression is not None:
            to_digest = digest_cells(g, self.plan, pilot_counts, compression, rows_total)
            if pilot_counts[to_digest].sum() <= _DIGEST_SHARE_MAX * pilot_counts.sum():
                self._plan_digest(to_digest, compression)
        if self.holding:
            self._shrink(pilot_counts, share_seen=0.0)

    def _plan_digest(self, to_digest: np.ndarray, compression: float) -> None:
        self.digest = float(compression)
        self._digest_flags = np.where(to_digest, kq.GRID_DIGEST, 0).astype(np.uint8)
        inner = np.flatnonzero(~to_digest)
        # values of cells below the first cell kept as a cluster go to the low digest, above the last
        # one to the high digest, the rest (cells with ties) to the middle one
        self._ends = (int(inner[0]), int(inner[-1]) + 1) if inner.size else (self.plan.n_cells, self.plan.n_cells)
        self._ties = bool(to_digest[self._ends[0]:self._ends[1]].any())
        # without ties, a value is low when below any value of the first kept cell
        self._split = self.plan.lo + (self._ends[0] + 0.5) / self.plan.inv if inner.size else np.inf
        self.stats = _fresh_stats(self.plan.n_cells)
        self._free_cells: List[np.ndarray] = []  # emptied cell records (kq.empty_cells) for the next fragments
        self.tails = [TDigest(self.digest) for _ in range(3)]  # low, high, ties
        # merged fragments' digest-cell values not routed into the tails yet, in fragment order
        self._waiting: List[np.ndarray] = []
        self._waiting_n = 0
        self._flags = self.held | self._digest_flags

    def _shrink(self, counts: np.ndarray, share_seen: float) -> None:
        n = int(counts.sum())
        if n == 0:
            return
        cum = np.cumsum(counts)
        before = cum - counts
        q = self.qs
        m = _Z * np.sqrt(q * (1 - q) / n) * np.sqrt(max(1.0 - share_seen, 0.0)) * n + 2.0  # in ranks
        first = np.searchsorted(cum, q * n - m, side="right")  # cells whose rank range meets the window
        last = np.searchsorted(before, q * n + m, side="right")
        edge = np.zeros(counts.size + 1, np.int64)
        np.add.at(edge, first, 1)
        np.add.at(edge, last, -1)
        keep = (np.cumsum(edge[:-1]) > 0).astype(np.uint8)
        self.held = self.held & keep  # a new array, never changed in place: workers read it
        self._flags = self.held | self._digest_flags  # likewise

    # workers: one batch of one fragment into that fragment's (counts, parts)
    def start(self):
        # Count arrays and cell records come back zeroed from merged fragments: a fresh np.zeros
        # of 128 KiB is a new mapping whose pages fault in one by one, per column and fragment.
        if self.digest is None:
            try:
                counts = self._free.pop()  # atomic: workers may pop while the main thread appends
            except IndexError:
                counts = np.zeros(self.plan.n_cells, np.int64)
            return [counts, []]
        try:
            cells = self._free_cells.pop()
        except IndexError:
            cells = kq.empty_cells(self.plan.n_cells)
        # a record a cell (count, sum, min, max: the counts too) at index 2; the digest cells'
        # values wait in a list (index 3), counted at index 4, and go to the fragment's own digests
        # (index 5, made when first needed) every _TAIL_BATCH values, the rest straight into the
        # column's at the merge: few digest calls, memory flat in rows
        return [None, [], cells, [], 0, None]

    def count(self, st, views, ints: np.ndarray, flts: np.ndarray) -> None:
        """Grid counts and held values of one batch, with its Moments state ``(ints, flts)`` folded
        in by the same read (:func:`~fastdrift.kernels.quantile.moments_count_select`); with a
        digest from the grid, the cells' sums and extremes too, and the digest cells' values
        into the fragment's t-digests."""
        if self.digest is None:
            # the latest held cells: they are only ever dropped, so any snapshot holds the final ones
            flags = self.held if self.holding else self._none
            v = kq.moments_count_select(views, ints, flts, self.plan, st[0], flags)
        else:
            flags = self._flags if self.holding else self._digest_flags
            v, tail = kq.moments_count_select_cells(views, ints, flts, self.plan, flags, st[2])
            if tail.size:
                st[3].append(tail)
                st[4] += tail.size
                if st[4] >= _TAIL_BATCH:
                    if st[5] is None:
                        st[5] = [TDigest(self.digest) for _ in range(3)]
                    self._route(st[5], st[3])
                    st[3], st[4] = [], 0
        if v.size:
            st[1].append(v)  # raw: what the held cells dropped since goes at the next compaction

    def _route(self, digests, parts: List[np.ndarray]) -> None:
        """The digest cells' values (arrays) into the low, high and ties digests."""
        x = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if not self._ties:  # every value below the cells kept as clusters, or above them
            low = x < self._split
            digests[0]._update_f64(x[low])
            digests[1]._update_f64(x[~low])
            return
        a, b = self._ends
        c = _cells(x, self.plan)
        low, high = c < a, c >= b
        digests[0]._update_f64(x[low])
        digests[1]._update_f64(x[high])
        digests[2]._update_f64(x[~(low | high)])

    # the main thread, in fragment order
    def merge(self, st, rows: int) -> None:
        if self.digest is None:
            self.counts += st[0]
            st[0].fill(0)
            self._free.append(st[0])  # at most the fragments in flight: bounded
        else:
            # in fragment order: the sums are the same whatever thread counted what (one pass in C:
            # numpy's strided folds took 37 us a fragment at 4,096 cells, 137 at 16,384)
            kq.cells_merge(self.counts, self.stats, st[2])
            self._free_cells.append(st[2])
        self.rows += rows
        if self.digest is not None:
            if st[5] is not None:
                self._route_waiting()  # what came before this fragment's digests goes in first
                for t, o in zip(self.tails, st[5]):
                    if o.count:
                        t.merge(o)
                    o.recycle()
            if st[3]:
                # routed a few fragments at a time: the values reach the tails in the same order
                # (the same digests), in 1/40 of the calls of one routing a fragment and column
                # (about 1,700 values each in bench_scan's data, 65 us of Python and numpy a call)
                self._waiting.extend(st[3])
                self._waiting_n += sum(p.size for p in st[3])
                if self._waiting_n >= _ROUTE_BATCH:
                    self._route_waiting()
        if not self.holding:
            return
        for v in st[1]:  # values of cells dropped since they were selected go at the next compaction
            self.selected.append((v, None))
            self._size += v.size
        if self.rows >= self._shrunk_at * 1.4:  # every 40% more rows: windows narrow by 1 - 1/sqrt(1.4)
            self._shrunk_at = self.rows
            share = self.rows / self.rows_total if self.rows_total else 0.0
            self._shrink(self.counts, min(share, 1.0))
        if self._size > min(self._limit, _HELD_CAP):  # drop what the shrunk cells no longer hold: amortised O(1) a value
            self.selected = self._kept(self.selected)
            self._size = sum(u.size for u, _ in self.selected)
            if self._size > _HELD_CAP // 2:  # the same value from many batches: fold the ties
                self.selected = [merge_counts(self.selected)]
                self._size = self.selected[0][0].size
            self._limit = max(2 * self._size, 1 << 17)
            if self._size > _HELD_CAP:
                self.holding = False  # the grid still counts; the selection pass will run on it
                self.selected = []

    def _route_waiting(self) -> None:
        if self._waiting:
            self._route(self.tails, self._waiting)
            self._waiting, self._waiting_n = [], 0

    def _kept(self, parts: list) -> list:
        """The (values, counts) parts restricted to the cells still held: the single-count parts
        as one array through the selection kernel (the cells the kernels computed), each folded
        part on its own."""
        held = self.held.astype(bool)
        ones = [u for u, c in parts if c is None]
        out = [(u[k], c[k]) for u, c in parts if c is not None for k in (held[_cells(u, self.plan)],)]
        if ones:
            u = np.concatenate(ones) if len(ones) > 1 else ones[0]
            out.append((kq.select([_f64_view(u)], self.plan, self.held, u.size), None))
        return [p for p in out if p[0].size]

    def exact(self, n: int, lo: float, hi: float) -> Tuple[ExactQuantiles, bool]:
        """(quantiles over this grid, whether the selection is complete) once the scan is done."""
        eq = ExactQuantiles(self.qs, n, lo, hi, plan=self.plan, counts=self.counts)
        if self.holding and eq.plan_select(self.held):
            eq.set_selected(merge_counts(self._kept(self.selected)))  # held cells shrank after some merged
            return eq, True
        eq.plan_select()
        return eq, False


    def tdigest(self, m: Moments, name: Optional[str] = None) -> TDigest:
        """The column's t-digest once the scan is done (:attr:`digest` set): the cells kept as
        clusters and the three digests of the other cells' values, clustered together in one
        pass; its nulls, NaN and infinities are ``m``'s (the column's moments)."""
        self._route_waiting()
        td = TDigest(self.digest, name=name)
        kept = (self.counts > 0) & (self._digest_flags == 0)
        if kept.any():
            w = self.counts[kept].astype(np.float64)
            st = self.stats[kept]
            mn, mx = st[:, 1], st[:, 2]
            with np.errstate(over="ignore", invalid="ignore"):
                mean = st[:, 0] / w
            # a sum that overflowed (values near the float64 limit): the middle of the cell's values
            mean = np.where(np.isfinite(mean), mean, mn * 0.5 + mx * 0.5)
            pure = mn == mx
            mean = np.where(pure, mn, np.clip(mean, mn, mx))
            td._add_clusters(mean, w, pure, float(mn.min()), float(mx.max()))
        for t in self.tails:
            if t.count:
                td.merge(t)
        td._add_counts(m.null_count, m.nan_count, m.posinf_count, m.neginf_count)
        return td.flush()


#: Cells of a grid placed for a t-digest alone: 16,384 cells (512 KiB of counts and sums a
#: column) made a current profile's grid kernel and merges cost what the digest saved.
_DIGEST_CELLS = 1 << 12
#: Digest cells' values a fragment holds before they go to its own t-digests (512 KiB a column).
_TAIL_BATCH = 1 << 16
#: Merged fragments' digest-cell values the main thread gathers before it routes them into the
#: column's t-digests (in fragment order, whatever the batch: the same digests).
_ROUTE_BATCH = 1 << 16
#: Most of the pilot's values the t-digest cells may hold for the digest to come from the grid
#: (more, and routing them costs more than it saves: a column of few distinct values).
_DIGEST_SHARE_MAX = 0.5
#: A cell is kept as one cluster while its share of the pilot is at most 1/_CELL_PER_CLUSTER of
#: the digest's cluster limit at its rank (4 and 16 measured the same rank errors on normal,
#: lognormal and Pareto data, 6M values; 16 sent 2-3x more values through the digests).
_CELL_PER_CLUSTER = 4.0


def cluster_limit(q: np.ndarray, compression: float, n: float) -> np.ndarray:
    """The share of ``n`` values a cluster starting at rank share ``q`` (from the nearer end) may
    hold in a t-digest of ``compression``: the smaller of the k1 and k2 limits of
    ``kernels/fd_tdigest.c`` (next_limit), computed the same way."""
    q = np.clip(np.asarray(q, np.float64), 0.0, 0.5)
    d2 = 2.0 * compression * _K2_SHARE
    d1 = 2.0 * compression * (1.0 - _K2_SHARE)
    n = max(float(n), 2.0)
    z = max(4.0 * np.log(n / d2) + 24.0, 4.0 * np.log(n))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = q / (1.0 - q) * np.exp(z / d2)
        k2 = r / (1.0 + r) - q
        k = d1 / (2.0 * np.pi) * np.arcsin(2.0 * q - 1.0) + 1.0
        k1 = np.where(k >= d1 * 0.25, np.inf, 0.5 * (np.sin(k * (2.0 * np.pi) / d1) + 1.0) - q)
    return np.minimum(k1, k2)


def digest_cells(sample: np.ndarray, plan, counts: np.ndarray, compression: float,
                 rows_total: Optional[int]) -> np.ndarray:
    """The grid cells whose values a scan's t-digest takes one by one (bool[n_cells]), from the
    pilot's finite values' ``counts`` on ``plan`` and a ``sample`` of them (every k-th): the two
    end cells (unbounded); cells at or beyond the pilot's extremes; cells whose pilot share
    exceeds 1/:data:`_CELL_PER_CLUSTER` of the digest's cluster limit at their rank (near the
    ends of the data the clusters are small: a cell is a cluster the digest cannot split), and
    every cell between such a cell and its end; and cells where the sample repeats a value (a
    tie block the digest keeps exact, and a cell's mean would smear)."""
    n = int(counts.sum())
    out = np.ones(plan.n_cells, bool)
    if n == 0:
        return out
    cum = np.cumsum(counts)
    before, after = (cum - counts) / n, cum / n
    near = np.minimum(before, 1.0 - after)  # rank share between the cell and the nearer end
    limit = cluster_limit(near, compression, rows_total if rows_total else n)
    x = sort_values(sample)  # the digest's radix sort: a tenth of np.unique's time
    tie = x[1:] == x[:-1]
    tied = np.zeros(plan.n_cells, bool)  # the sample repeats a value: a tie block, exact in a digest
    if tie.any():
        # (a cell's mean would smear it among the cell's other values, however few: the sample
        # cannot tell a cell of copies alone)
        tied[_cells(x[1:][tie], plan)] = True
    coarse = ((near <= 0.0) | (counts / n > limit / _CELL_PER_CLUSTER)) & ~tied
    coarse[0] = coarse[-1] = True
    # the ends, each up to its innermost coarse cell: a cell kept as a cluster among the digests'
    # cells would leave a gap in the end's digest (its clusters would span it)
    low = before < 0.5
    a = int(np.flatnonzero(coarse & low).max(initial=0))
    b = int(np.flatnonzero(coarse & ~low).min(initial=plan.n_cells - 1))
    out = tied.copy()
    out[:a + 1] = True
    out[b:] = True
    return out


def _fresh_stats(n_cells: int) -> np.ndarray:
    """Per-cell (sum, min, max) of no value."""
    st = np.empty((n_cells, 3), np.float64)
    st[:] = (0.0, np.inf, -np.inf)
    return st


def _f64_view(x: np.ndarray):
    return next(iter_columns(pa.array(x, pa.float64()), "pilot"))


def append_compact(parts: list, part) -> list:
    """Append a (values, counts) pair; fold the list into one pair when it holds > 1Mi values."""
    parts.append(part)
    if sum(u.size for u, _ in parts) > 1 << 20:
        return [merge_counts(parts)]
    return parts


def merge_counts(parts) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and summed counts of (values, counts) pairs (counts None: ones)."""
    u = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    if u.size == 0:
        return u, np.zeros(0, np.int64)
    if all(p[1] is None for p in parts):
        if not np.isfinite(u).all():
            uu, cc = np.unique(u, return_counts=True)
            return uu, cc.astype(np.int64, copy=False)
        # the t-digest's radix sort: the held values of a 6M-row scan's 20 columns folded in 5
        # against 35 ms of np.unique's sorts (-0.0 and 0.0 one run, as np.unique: its first, -0.0)
        x = sort_values(u)
        starts = np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))
        return x[starts], np.diff(np.append(starts, x.size)).astype(np.int64, copy=False)
    c = np.concatenate([p[1] if p[1] is not None else np.ones(p[0].size, np.int64) for p in parts])
    order = np.argsort(u, kind="stable")
    u, c = u[order], c[order]
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))  # -0.0 == 0.0, as np.unique
    return u[starts], np.add.reduceat(c, starts).astype(np.int64, copy=False)
