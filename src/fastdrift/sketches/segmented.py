"""One batch's rows by segment, without a take of the batch.

:class:`SegmentSplit` holds a batch's per-row segment codes (from
:meth:`fastdrift.adapters.segments.Segmenter.assign`) and gives, per segment present, that
segment's rows of any column: numeric chunks are grouped by one stable counting sort in C
(:func:`fastdrift.kernels.seg.scatter`, in the chunk's own type with its nulls; each row's place is
made once per batch by :func:`~fastdrift.kernels.seg.positions`, every column then stored there by
:func:`~fastdrift.kernels.seg.scatter_to`), so a sketch
updated with a segment's stretch reads the very array the segment's rows alone would make -- the
same bytes by construction.  Categorical columns are not moved at all
(:meth:`SegmentSplit.category_counts`): their values are hashed once for the batch and counted per
segment, each segment's keys in their order of first arrival.  Other columns (booleans, nested
dictionaries, chunks of different dictionaries) take the rows (``pyarrow.compute.take``).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from ..adapters.arrow import as_arrow, counted, iter_columns
from ..adapters.segments import NULL
from ..kernels.cat import CatTable
from ..kernels.seg import MAX_POSITIONS, count_indices, positions, scatter, scatter_to, scatterable, short_keys
from .histogram import Histogram
from .moments import Moments
from .tdigest import TDigest

__all__ = ["SegmentSplit", "update_sketches", "encode_short_strings"]

#: Per-segment count arrays of a categorical column stay below this many entries per row of the
#: batch (plus a constant): a dictionary too large for every segment takes the rows instead.
_COUNTS_PER_ROW = 4
_COUNTS_MIN = 1 << 16


def encode_short_strings(col, name: Optional[str] = None):
    """A :class:`~fastdrift.adapters.segments.Segmenter` ``encode``: a string segment column whose
    values are at most 8 bytes and few (:func:`~fastdrift.kernels.seg.short_keys`) keyed without a
    general hash table; the same values, order and indices as the Segmenter's own encoding.  None
    for other columns."""
    t = col.type
    if not (pat.is_string(t) or pat.is_large_string(t)):
        return None
    got = short_keys(list(iter_columns(col, name)))
    if got is None:
        return None
    keys, ids = got
    return [NULL if k is None else k.decode("utf-8") for k in keys], ids, True


class SegmentSplit:
    """The segments of one batch's rows.

    Parameters
    ----------
    codes : numpy.ndarray of int32
        One segment code per row, in ``[0, n_seg)``.
    n_seg : int
        Number of segment codes (``len(segmenter.keys)``).

    Attributes
    ----------
    present : list of int
        The codes with rows in this batch, in code order.
    counts : numpy.ndarray of int64
        Rows per code.
    """

    def __init__(self, codes: np.ndarray, n_seg: int):
        self.codes = np.ascontiguousarray(codes, dtype=np.int32)
        self.n_seg = max(int(n_seg), 1)
        self.rows = int(self.codes.size)
        self.counts = np.bincount(self.codes, minlength=self.n_seg).astype(np.int64)
        self.present: List[int] = np.flatnonzero(self.counts).tolist()
        self.starts = np.zeros(self.n_seg, np.int64)
        np.cumsum(self.counts[:-1], out=self.starts[1:])
        self._order: Optional[pa.Array] = None
        self._dest: Optional[np.ndarray] = None
        self._spare: Optional[np.ndarray] = None  # grouped columns' memory, reused (grouped(scratch=True))

    def _bounds(self):
        return [(int(self.starts[s]), int(self.counts[s])) for s in self.present]

    def _scattered(self, views, dtype, scratch: bool = False) -> Tuple[pa.Buffer, Optional[pa.Buffer]]:
        dtype = np.dtype(dtype)
        if scratch:  # one buffer for every column of the batch: no fresh pages faulted in per column
            if self._spare is None or self._spare.size < self.rows * dtype.itemsize:
                self._spare = np.empty(self.rows * 8, np.uint8)
            out = self._spare[:self.rows * dtype.itemsize].view(dtype)
        else:
            out = np.empty(self.rows, dtype)
        valid = np.zeros((self.rows + 7) // 8, np.uint8) if any(v.has_validity for v in views) else None
        at = 0
        if self.rows <= MAX_POSITIONS:  # each row's place made once, for every column
            if self._dest is None:
                self._dest = positions(self.codes, self.n_seg, self.starts.copy(), self.rows)
            for v in views:
                scatter_to(v, self._dest[at:at + v.length], out, valid)
                at += v.length
        else:
            pos = self.starts.copy()
            for v in views:
                scatter(v, self.codes[at:at + v.length], self.n_seg, pos, out, valid)
                at += v.length
        return pa.py_buffer(out), (pa.py_buffer(valid) if valid is not None else None)

    def grouped(self, values, name: Optional[str] = None, scratch: bool = False) -> Optional[pa.Array]:
        """``values`` (a numeric column of the batch) with its rows grouped by segment, or None when
        its chunks are not all :func:`~fastdrift.kernels.seg.scatterable`: present segment ``j``'s rows
        are elements ``starts[present[j]]`` to ``+ counts[present[j]]``, in their order.

        ``scratch``: the array lives in memory the next ``scratch`` call overwrites (a caller that
        counts it at once): a batch's columns, and a pass over the batch again, reuse one buffer
        instead of faulting in fresh pages for each (which costs more than the gather)."""
        arr = as_arrow(values, name)
        views = list(iter_columns(arr, name))
        if not (views and all(scatterable(v) for v in views)):
            return None
        data, valid = self._scattered(views, views[0].values.dtype, scratch)
        return pa.Array.from_buffers(arr.type, self.rows, [valid, data])

    def parts(self, whole: pa.Array) -> List[pa.Array]:
        """Each present segment's stretch of a :meth:`grouped` array."""
        bufs = whole.buffers()
        return [pa.Array.from_buffers(whole.type, n, bufs, offset=start) for start, n in self._bounds()]

    def arrays(self, values, name: Optional[str] = None) -> List[pa.Array]:
        """Each present segment's rows of ``values`` (a column of the batch), in their order: numeric
        chunks gathered by :func:`~fastdrift.kernels.seg.scatter`, other types taken."""
        arr = as_arrow(values, name)
        if len(self.present) == 1:  # a segment's rows are one array, as if grouped by segment
            return [arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) and arr.num_chunks > 1 else arr]
        whole = self.grouped(arr, name)
        return self.parts(whole) if whole is not None else self.taken(arr)

    def taken(self, arr) -> List[pa.Array]:
        """:meth:`arrays` by a take of the rows (any type)."""
        if self._order is None:  # np.argsort(codes, kind="stable") by the counting-sort scatter: O(rows)
            order = np.empty(self.rows, np.int64)
            if self.rows:
                rows = next(iter_columns(pa.array(np.arange(self.rows, dtype=np.int64))))
                scatter(rows, self.codes, self.n_seg, self.starts.copy(), order, None)
            self._order = pa.array(order)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
        if len(self.present) == 1:
            return [arr]
        t = arr.take(self._order)
        return [t.slice(start, n) for start, n in self._bounds()]

    def batches(self, batch) -> List:
        """Each present segment's rows of a RecordBatch or Table (by a take)."""
        if len(self.present) == 1:
            return [batch]
        cols = [self.taken(c) for c in batch.columns]
        cls = pa.Table if isinstance(batch, pa.Table) else pa.RecordBatch
        return [cls.from_arrays([c[j] for c in cols], schema=batch.schema) for j in range(len(self.present))]

    def category_counts(self, values, name: Optional[str] = None):
        """``(keys, bins, first, n_null, table)`` of a categorical column without moving its rows, or
        None when it is of a kind counted otherwise (see the module docstring).

        ``keys`` is an Arrow array; ``bins[j, x]`` counts ``keys[x]`` in the ``j``-th present
        segment, ``first[j, x]`` is its first row there (where ``bins > 0``), ``n_null[j]`` its nulls;
        ``table`` the :class:`CatTable` the keys are (strings), or None (a dictionary's).
        """
        arr = as_arrow(values, name)
        t = arr.type
        views = list(iter_columns(arr, name))
        if not views:
            return None
        limit = _COUNTS_PER_ROW * self.rows + _COUNTS_MIN
        if pat.is_dictionary(t) and len(views) == 1 and views[0].kind == "dictionary":
            keys, ids = views[0].dictionary, views[0]
            n_bins = len(keys)
        elif (pat.is_string(t) or pat.is_large_string(t)) and all(v.kind == "string" for v in views):
            # every distinct value of the batch (first arrival first) counted per segment in one read;
            # the count rows grow with the table's id capacity (under twice the keys past 16)
            table = CatTable("str", max_ids=self.rows)
            got = table.segment_counts(views, self.codes, self.n_seg, 2 * limit + 16 * self.n_seg)
            if got is None or self.n_seg * (table.n_ids + 1) > limit:
                return None
            bins, first, n_null = got
            return table.keys_array(), bins[self.present], first[self.present], n_null[self.present], table
        else:
            return None
        if self.n_seg * n_bins > limit:
            return None
        bins = np.zeros(self.n_seg * n_bins, np.int64)
        first = np.zeros(self.n_seg * n_bins, np.int64)
        n_null = np.zeros(self.n_seg, np.int64)
        count_indices(ids, self.codes, self.n_seg, n_bins, bins, first, n_null)
        bins, first = bins.reshape(self.n_seg, n_bins)[self.present], first.reshape(self.n_seg, n_bins)[self.present]
        n_null = n_null[self.present]
        if n_bins != len(keys):  # the strings' null bin
            n_null = n_null + bins[:, -1]
            bins, first = bins[:, :-1], first[:, :-1]
        return keys, bins, first, n_null, None



def update_sketches(per_segment: List[list], values, split: SegmentSplit, name: Optional[str] = None,
                    categorical: bool = False, flush: bool = False) -> None:
    """Count each present segment's rows of ``values`` (a column of the batch ``split`` keys) into its
    sketches: ``per_segment[j]`` lists those of segment ``split.present[j]`` (``None`` entries
    skipped).  Each ends as :meth:`update` with that segment's rows alone would leave it.

    ``categorical``: the sketches are :class:`~fastdrift.sketches.categorical.Categorical`;
    otherwise numeric sketches (histogram, moments, t-digest), fed :func:`counted` values.
    ``flush``: t-digests are then flushed (:meth:`TDigest.flush`), for segments' digests about to
    be kept or merged; the digests of a grouped column then sort in one shared buffer.
    """
    if categorical:
        got = split.category_counts(values, name)
        if got is not None:
            keys, bins, first, n_null, table = got
            t = as_arrow(values, name).type
            for j, (sks, s) in enumerate(zip(per_segment, split.present)):
                for sk in sks:
                    if sk is not None:
                        sk.update_first_counts(t, int(split.counts[s]), keys, bins[j], first[j], int(n_null[j]),
                                               source=table)
            return
        arrays = split.taken(as_arrow(values, name))
    else:
        col = counted(as_arrow(values, name))
        whole = split.grouped(col, name, scratch=True) if len(split.present) > 1 else None  # counted below
        if whole is not None:
            _update_grouped(per_segment, whole, split, flush)
            return
        arrays = split.arrays(col, name)
    for sks, a in zip(per_segment, arrays):
        for sk in sks:
            if sk is not None:
                sk.update(a)
                if flush and isinstance(sk, TDigest):
                    sk.flush()


def _update_grouped(per_segment: List[list], whole: pa.Array, split: SegmentSplit, flush: bool) -> None:
    """:func:`update_sketches` of a :meth:`SegmentSplit.grouped` column: histograms, moments and
    t-digests in the same place of every segment's list are counted in one kernel call for all
    segments (``update_parts``), other sketches per segment."""
    starts = np.ascontiguousarray(split.starts[split.present])
    lens = np.ascontiguousarray(split.counts[split.present])
    parts = None
    for k in range(max(len(sks) for sks in per_segment)):
        slot = [sks[k] if k < len(sks) else None for sks in per_segment]
        cls = type(slot[0])
        if cls in (Histogram, Moments) and all(type(sk) is cls for sk in slot):
            cls.update_parts(slot, whole, starts, lens)
            continue
        if cls is TDigest and all(type(sk) is cls for sk in slot):
            TDigest.update_parts(slot, whole, starts, lens, flush)
            continue
        if parts is None:
            parts = split.parts(whole)
        for sk, a in zip(slot, parts):
            if sk is not None:
                sk.update(a)
                if flush and isinstance(sk, TDigest):
                    sk.flush()
