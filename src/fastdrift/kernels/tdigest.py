"""Bindings of the C t-digest (``kernels/fd_tdigest.c``): state arrays and calls.

The digest's state lives in numpy arrays owned by :class:`TDigestState`
(centroid means and weights, the insertion buffer, counters), so copying or
serializing it is copying arrays and nothing is ever freed in C.  The work
space of a flush (radix-sort keys and histograms, merge output) is not state:
one set per thread is reused by every digest (:func:`scratch`).

There is no numba version of the t-digest: the C kernel is the only backend.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from ..errors import InvalidInputError
from .native import FD_EINVAL, check, column, ffi, lib, ptr

FD_F64 = lib.FD_F64

__all__ = ["TDigestState", "capacity", "buffer_size", "MIN_COMPRESSION", "MAX_COMPRESSION",
           "state_bytes", "sort_values", "SPARE_BYTES", "update_parts", "flush_parts"]

MIN_COMPRESSION = 1.0
MAX_COMPRESSION = 1e6
#: Values buffered before a merge: at least BUFFER_MIN, and BUFFER_PER_CENTROID
#: per centroid of capacity so that big digests still amortise their merges.
BUFFER_MIN = 32768
BUFFER_PER_CENTROID = 32
#: First allocation of a digest's buffer (entries); it doubles up to buffer_size() as values come, so
#: an empty or small digest (a rare segment) holds little.  >= 2 * SPLIT_MAX of the C source.
BUFFER_FIRST = 256
#: Staged pieces per merged centroid at most (SPLIT_MAX in kernels/fd_tdigest.c).
_SPLIT_MAX = 4
#: Bytes of full-size insert buffers kept for reuse (:meth:`TDigestState.recycle`).  A file scan
#: makes a digest per column and fragment; a fresh 256 KiB buffer is a new mapping of the
#: allocator whose pages fault in one by one (bench/bench_scan.py --breakdown, docs/performance.md).
SPARE_BYTES = 32 << 20
_spares: list = []  # list.append / list.pop are atomic: workers take while the merging thread gives

# State indices of kernels/fastdrift.h (fd_tdigest.ints / .flts).
INTS_LEN = lib.FD_TD_INTS_LEN
N_CENTROIDS, N_BUF, N_FINITE, NULL, NAN, POSINF, NEGINF, N_STAGED = (
    lib.FD_TD_N_CENTROIDS, lib.FD_TD_N_BUF, lib.FD_TD_N_FINITE, lib.FD_TD_NULL, lib.FD_TD_NAN, lib.FD_TD_POSINF,
    lib.FD_TD_NEGINF, lib.FD_TD_N_STAGED)
MIN, MAX = lib.FD_TD_MIN, lib.FD_TD_MAX


def check_compression(compression) -> float:
    if isinstance(compression, bool) or not isinstance(compression, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"compression must be a real number, got {type(compression).__name__}")
    c = float(compression)
    if not (MIN_COMPRESSION <= c <= MAX_COMPRESSION):
        raise InvalidInputError(
            f"compression must be in [{MIN_COMPRESSION:g}, {MAX_COMPRESSION:g}], got {compression!r}")
    return c


def capacity(compression: float) -> int:
    """Centroid capacity: the digest never holds more than 2 floor(delta) + 8 centroids."""
    return 2 * int(math.floor(compression)) + 8


def buffer_size(compression: float) -> int:
    return max(BUFFER_MIN, BUFFER_PER_CENTROID * capacity(compression))


def state_bytes(compression: float) -> int:
    """Bytes of state of one digest at most: centroids, full buffer, counters (numpy headers excluded)."""
    return 16 * capacity(compression) + 8 * buffer_size(compression) + 8 * INTS_LEN + 16


class _Scratch(threading.local):
    keys = None
    means = None
    weights = None
    hist = None
    struct = None
    keep = None
    work = None  # query work space: 4 * (centroids + 2) doubles
    parts_buf = None  # the insert buffer that flushed digests of segments borrow (update_parts)


_scratch = _Scratch()


def query_work(cap: int) -> np.ndarray:
    """This thread's query work space (knots of the quantile function), grown to fit cap."""
    s = _scratch
    need = 4 * (cap + 2)
    if s.work is None or s.work.size < need:
        s.work = np.empty(need, np.float64)
    return s.work


def scratch(cap: int, buf_cap: int):
    """This thread's flush work space, grown to fit (cap, buf_cap)."""
    s = _scratch
    if s.struct is None or s.means.size < cap or s.keys.size < buf_cap:
        c = max(cap, s.means.size if s.means is not None else 0)
        b = max(buf_cap, s.keys.size if s.keys is not None else 0)
        s.keys = np.empty(b, np.uint64)
        s.means = np.empty(c, np.float64)
        s.weights = np.empty(c, np.float64)
        s.hist = np.empty(lib.FD_TD_HIST_LEN, np.uint32)
        st = ffi.new("fd_tdigest_scratch*")
        st.keys = ffi.cast("uint64_t*", ffi.from_buffer(s.keys))
        st.keys_cap = b
        st.means = ffi.cast("double*", ffi.from_buffer(s.means))
        st.weights = ffi.cast("double*", ffi.from_buffer(s.weights))
        st.cap = c
        st.hist = ffi.cast("uint32_t*", ffi.from_buffer(s.hist))
        s.struct = st
    return s.struct


class TDigestState:
    """The arrays of one digest and the ``fd_tdigest`` struct pointing at them."""

    __slots__ = ("compression", "cap", "buf_cap", "means", "weights", "buf", "ints", "flts",
                 "_struct")

    def __init__(self, compression: float):
        self.compression = float(compression)
        self.cap = capacity(self.compression)
        self.buf_cap = buffer_size(self.compression)
        self.means = np.zeros(self.cap, np.float64)
        self.weights = np.zeros(self.cap, np.float64)
        self.buf = None  # allocated on first insertion, grown up to buf_cap (see _room)
        self.ints = np.zeros(INTS_LEN, np.int64)
        self.flts = np.array([np.inf, -np.inf])  # [MIN, MAX] of nothing
        self._struct = None

    # -- struct --------------------------------------------------------------
    def _room(self, need: int) -> None:
        """Make the buffer hold ``need`` more entries (values, or 2 per staged pair) past those held,
        or give it its full size.  The C kernel flushes only when its buffer is full, so a buffer
        grown before every call flushes exactly where the full one would: results are identical."""
        if need <= 0:
            return
        i = self.ints
        held = int(i[N_BUF]) + 2 * int(i[N_STAGED])
        size = 0 if self.buf is None else self.buf.size
        if held + need <= size or size == self.buf_cap:
            return
        new = max(BUFFER_FIRST, size)
        while new < held + need:
            new *= 2
        new = min(new, self.buf_cap)
        buf = None
        if new == self.buf_cap:
            try:
                buf = _spares.pop()
            except IndexError:
                pass
            if buf is not None and buf.size != new:  # another compression's: dropped
                buf = None
        if buf is None:
            buf = np.empty(new, np.uint64)
        if size:
            nb, ns2 = int(i[N_BUF]), 2 * int(i[N_STAGED])
            buf[:nb] = self.buf[:nb]
            if ns2:  # staged pairs sit at the buffer's end
                buf[new - ns2:] = self.buf[size - ns2:]
        self.buf = buf
        self._struct = None

    @property
    def struct(self):
        if self._struct is None:
            t = ffi.new("fd_tdigest*")
            t.compression = self.compression
            t.cap = self.cap
            t.means = ffi.cast("double*", ffi.from_buffer(self.means))
            t.weights = ffi.cast("double*", ffi.from_buffer(self.weights))
            t.buf_cap = self.buf.size if self.buf is not None else 0
            t.buf = ffi.cast("uint64_t*", ffi.from_buffer(self.buf)) if self.buf is not None else ffi.NULL
            t.ints = ffi.cast("int64_t*", ffi.from_buffer(self.ints))
            t.flts = ffi.cast("double*", ffi.from_buffer(self.flts))
            self._struct = t
        return self._struct

    @property
    def nbytes(self) -> int:
        """Bytes of the state's arrays now (the buffer as allocated so far)."""
        return (self.means.nbytes + self.weights.nbytes + self.ints.nbytes + self.flts.nbytes
                + (self.buf.nbytes if self.buf is not None else 0))

    def _scratch(self):
        return scratch(self.cap, self.buf.size if self.buf is not None else 0)

    # -- operations ------------------------------------------------------------
    def update(self, view) -> None:
        self._room(view.length)
        col = column(view)
        rc = lib.fd_tdigest_update(col, self.struct, self._scratch())
        check(rc, "t-digest update", view.name)

    def add_clusters(self, means: np.ndarray, weights: np.ndarray, pure: np.ndarray, lo: float, hi: float) -> None:
        """Stage clusters for the next flush (``fd_tdigest_add_clusters``: sorted finite means,
        integer weights >= 1, ``pure`` where a cluster holds copies of its mean only, every value
        in [lo, hi]); nothing staged on bad input (InvalidInputError)."""
        means = np.ascontiguousarray(means, np.float64)
        weights = np.ascontiguousarray(weights, np.float64)
        pure = np.ascontiguousarray(pure, np.uint8)
        n = means.size
        if weights.shape != (n,) or pure.shape != (n,) or means.ndim != 1:
            raise InvalidInputError(f"t-digest clusters: {n} means, {weights.size} weights, {pure.size} purity flags")
        if n == 0:
            return
        self._room(2 * n)
        rc = lib.fd_tdigest_add_clusters(self.struct, ptr("const double*", means), ptr("const double*", weights),
                                         ptr("const uint8_t*", pure), n, float(lo), float(hi), self._scratch())
        if rc == FD_EINVAL:
            raise InvalidInputError("t-digest clusters: means must be finite and sorted, weights integers in "
                                    "[1, 2**53), every value in [lo, hi] (finite)")
        check(rc, "t-digest clusters")

    def update_f64(self, x: np.ndarray, name=None) -> None:
        """:meth:`update` of a contiguous float64 array without nulls (no Arrow view)."""
        self._room(x.size)
        c = ffi.new("fd_column*")
        c.values = ptr("const void*", x)
        c.validity = ffi.NULL
        c.offsets = ffi.NULL
        c.offset = 0
        c.length = x.size
        c.type = FD_F64
        check(lib.fd_tdigest_update(c, self.struct, self._scratch()), "t-digest update", name)

    @property
    def pending(self) -> bool:
        """Values or merged centroids wait in the buffer for the next flush."""
        return bool(self.ints[N_BUF] or self.ints[N_STAGED])

    def flush(self) -> None:
        if not self.pending:
            return
        rc = lib.fd_tdigest_flush(self.struct, self._scratch())
        check(rc, "t-digest flush")
        if self.buf.size < self.buf_cap:  # an empty, partly grown buffer is given back (a small
            self.buf, self._struct = None, None  # digest, e.g. a monitor pane's, then holds no buffer)

    def recycle(self) -> None:
        """Empty this digest; its full-size insert buffer goes to the next digest that grows one.

        For a digest merged into another and dropped (a scan's per-fragment digests): the
        spares hold at most :data:`SPARE_BYTES`.  Buffer contents never carry over: a digest
        reads only the entries its counters say it wrote.
        """
        buf = self.buf
        self.means[:] = 0.0
        self.weights[:] = 0.0
        self.ints[:] = 0
        self.flts[:] = (np.inf, -np.inf)
        self.buf, self._struct = None, None
        if buf is not None and buf.size == self.buf_cap and (len(_spares) + 1) * buf.nbytes <= SPARE_BYTES:
            _spares.append(buf)

    def release(self) -> None:
        """Flush, then give the buffer back whatever its size: for a digest that is kept or merged
        rather than updated again (a segment's).  It grows again from BUFFER_FIRST entries on the
        next insertion, flushing where the full buffer would (:meth:`_room`); a full-size buffer
        goes to the spares (as :meth:`recycle`)."""
        self.flush()
        buf, self.buf, self._struct = self.buf, None, None
        if buf is not None and buf.size == self.buf_cap and (len(_spares) + 1) * buf.nbytes <= SPARE_BYTES:
            _spares.append(buf)

    def merge(self, other: "TDigestState") -> None:
        o = other.ints
        # merged centroids are staged in the buffer (up to SPLIT_MAX pieces each), then the other's
        # staged pairs and buffered values
        self._room(2 * _SPLIT_MAX * int(o[N_CENTROIDS]) + 2 * int(o[N_STAGED]) + int(o[N_BUF]))
        rc = lib.fd_tdigest_merge(self.struct, other.struct, self._scratch())
        check(rc, "t-digest merge")

    def quantile(self, q: np.ndarray) -> np.ndarray:
        out = np.empty(q.size, np.float64)
        bad = ffi.new("int64_t*")
        work = query_work(self.cap)
        rc = lib.fd_tdigest_quantile(self.struct, ptr("const double*", q), q.size,
                                            ptr("double*", out), ptr("double*", work), bad)
        if rc == FD_EINVAL and bad[0] >= 0:
            raise InvalidInputError(f"quantiles must be in [0, 1], got {q[bad[0]]!r}")
        check(rc, "t-digest quantile")
        return out

    def cdf(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(x.size, np.float64)
        work = query_work(self.cap)
        rc = lib.fd_tdigest_cdf(self.struct, ptr("const double*", x), x.size,
                                       ptr("double*", out), ptr("double*", work))
        check(rc, "t-digest cdf")
        return out

    def copy(self) -> "TDigestState":
        c = TDigestState.__new__(TDigestState)
        c.compression, c.cap, c.buf_cap = self.compression, self.cap, self.buf_cap
        c.means, c.weights = self.means.copy(), self.weights.copy()
        # a buffer with nothing pending holds nothing: the copy grows its own when it needs one
        # (copying a full 256 KiB buffer was most of a window report's latency read)
        c.buf = self.buf.copy() if self.buf is not None and self.pending else None
        c.ints, c.flts = self.ints.copy(), self.flts.copy()
        c._struct = None
        return c

    # -- views -----------------------------------------------------------------
    @property
    def n_centroids(self) -> int:
        return int(self.ints[N_CENTROIDS])

    def centroids(self):
        n = self.n_centroids
        return self.means[:n], self.weights[:n]


def _structs(states):
    return ffi.new("fd_tdigest *[]", [st.struct for st in states])


def update_parts(view, starts: np.ndarray, lens: np.ndarray, states, flush: bool = False) -> None:
    """``states[j].update`` of elements ``starts[j]`` to ``starts[j] + lens[j]`` of ``view`` for
    every ``j``, in one call (``fd_tdigest_update_parts``); each state ends as its own update on
    that stretch would leave it.  ``flush``: each is then flushed, and a state with nothing pending
    fills and sorts in this thread's one work buffer instead of growing its own (only when all
    states have the same buffer size: the work buffer's size decides where a flush falls).

    Raises
    ------
    InvalidInputError
        Not one part per state, or a part outside the view (nothing counted).
    """
    starts, lens = np.ascontiguousarray(starts, np.int64), np.ascontiguousarray(lens, np.int64)
    if starts.ndim != 1 or starts.shape != lens.shape or starts.size != len(states):
        raise InvalidInputError(f"t-digest parts: {starts.size} starts and {lens.size} lengths for "
                                f"{len(states)} digests")
    if starts.size and (starts.min() < 0 or lens.min() < 0 or (starts + lens).max() > view.length):
        raise InvalidInputError(f"column {view.name!r}: t-digest parts: a part lies outside the chunk's "
                                f"{view.length} elements")
    full = states[0].buf_cap if states else 0
    use_work = flush and all(st.buf_cap == full for st in states)
    for st, n in zip(states, lens):
        if n and not (use_work and not st.pending):
            st._room(int(n))  # a buffer of its own: flushed where the full one would be (see _room)
    work = None
    if use_work and states:
        s = _scratch
        if s.parts_buf is None or s.parts_buf.size != full:
            s.parts_buf = np.empty(full, np.uint64)
        work = s.parts_buf
    sc = scratch(max((st.cap for st in states), default=1),
                 max([full] + [st.buf.size for st in states if st.buf is not None]))
    rc = lib.fd_tdigest_update_parts(column(view), len(states), ptr("const int64_t*", starts),
                                     ptr("const int64_t*", lens), _structs(states), sc,
                                     lib.FD_TD_PARTS_FLUSH if flush else 0,
                                     ptr("uint64_t*", work) if work is not None else ffi.NULL,
                                     work.size if work is not None else 0)
    check(rc, "t-digest update", view.name)


def flush_parts(states) -> None:
    """``flush()`` of every state in one call (``fd_tdigest_flush_parts``)."""
    pending = [st for st in states if st.pending]
    if not pending:
        return
    sc = scratch(max(st.cap for st in pending), max(st.buf.size for st in pending))
    check(lib.fd_tdigest_flush_parts(_structs(pending), len(pending), sc), "t-digest flush")


def sort_values(x: np.ndarray) -> np.ndarray:
    """Sort finite float64 values with the digest's buffer sort (tests, benchmarks)."""
    x = np.array(x, dtype=np.float64, copy=True)
    keys = np.empty(x.size, np.uint64)
    tmp = np.empty(x.size, np.uint64)
    hist = np.empty(lib.FD_TD_HIST_LEN, np.uint32)
    rc = lib.fd_tdigest_sort(ptr("double*", x), x.size, ptr("uint64_t*", keys),
                                    ptr("uint64_t*", tmp), ptr("uint32_t*", hist))
    check(rc, "t-digest sort")
    return x
