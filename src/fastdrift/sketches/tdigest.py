"""Merging t-digest (Dunning & Ertl 2019): quantiles and CDFs of unbounded streams.

Algorithm
---------
Finite values are buffered (32,768 at a time, more for ``compression`` above
1,000), sorted and merged with the sorted centroids in one pass that closes a
cluster as soon as it would span more than one unit of the scale function.
The core is C (``kernels/fd_tdigest.c``); the sort is a radix sort on the
float64 bit pattern (see there; bench/bench_tdigest.py times it against ``np.sort``).
``merge`` only appends the other digest's centroids to the same buffer (as
staged (mean, weight) pairs); the next flush clusters them together with the
buffered values, so a run of merges is clustered a few times in big batches
rather than once per merge (which would smear each cluster over its
neighbours).  Each flush, and each merge as it stages the other digest,
re-clusters a centroid of weight >= 2 as up to 4 integer-weight pieces on the
local line through its mean (sum kept, inside the midpoints to its neighbours'
means; not where its two secants differ by more than 3x, nor a pure centroid):
merged whole, centroids drift values of the body into the tail clusters
(1-2e-4 in rank at q = 0.001 and 0.01 after 1e6 values; see the C source).

Queries: a cluster's mean is not the value at its mid-rank (for a smooth
quantile function ``x(h)`` it is larger by ``x'' (w**2 - 1) / 24``); each
centroid gives a knot at its mid-rank whose value is the mean minus that
bias (``x''`` from the neighbouring means), and ``quantile`` is the monotone
piecewise cubic (PCHIP) through the knots, ``(0, min)`` and ``(n - 1,
max)``.  It is non-decreasing, flat across tie blocks, and numpy's straight
line between two exact values one rank apart (weight-one centroids are exact
values, and up to ``2 floor(compression) + 8`` values -- 208 at compression
100 -- are kept as such, see "Ties", so they are answered exactly like
``np.quantile(..., method="linear")``); ``cdf`` is its inverse.  Linear
interpolation between means would leave an error of ``x'' h**2 / 8`` in the
middle of each gap of width ``h``, which matters in the body of skewed data.

Scale function: **k1 and k2 together** -- a cluster may grow only while it
spans at most one unit of *both* ``k1(q) = d1 / (2 pi) asin(2q - 1)`` with
``d1 = 1.7 delta`` and the normalised ``k2(q) = d2 / Z(n) log(q / (1 - q))``,
``Z(n) = max(4 log(n / d2) + 24, 4 log n)``, ``d2 = 0.3 delta`` (the limit is
the smaller of the two; ``FD_TD_K2_SHARE = 0.15`` in the C source).  Why:
k1 alone keeps the body fine (clusters ~ ``sqrt(q (1 - q)) / delta``) but its
tail clusters hold ``~n / delta**2`` values, so at n = 1e6 the first cluster
spans q = 0.001 and q = 0.9999 is interpolated inside one cluster; k2 alone
keeps relative accuracy at the tails (clusters ~ ``q (1 - q) Z / delta``) but
its median cluster holds a large share of the data, which fails on lognormal
or heavy-tie data.  The minimum of the two limits takes the finer one
everywhere: k2 wins below q ~ 3e-3 and above 1 - 3e-3, k1 in between.

Memory bound
------------
At most ``2 floor(compression) + 8`` centroids: the spans of k1 and k2 add up
to ``compression`` units, and of two consecutive clusters at least one of k1,
k2 advances by more than one unit (the serialized sizes below give the count
in practice).  State in bytes::

    16 * (2 floor(compression) + 8)                      centroid means + weights
  +  8 * max(32768, 32 * (2 floor(compression) + 8))     buffer at its full size (see below)
  +  80                                                   counters, min, max

i.e. 265,552 bytes at compression 100 (3,328 of them centroids).  The buffer is
allocated on the first update or merge at 256 values and doubles as values come; a
flush gives back a buffer not at its full size.  The kernel flushes only a full
buffer and it is grown before any call that would fill it, so the state is the one
a full buffer gives: an empty or small digest (a rare segment's) holds a few KB.  The
serialized form (payload layout 2) holds the counters as uvarints, min and
max, each centroid's mean as a float64 and its integer weight as a uvarint
(1-3 bytes in practice): about ``60 + 10.3 * n_centroids`` bytes
(``python bench/bench_tdigest.py`` prints the sizes on 1e6 normal values), at
most ``99 + 17 * (2 floor(compression) + 8)``.  Layout 1 (float64 weights, 16
bytes a centroid) is still read.  Flushes use a per-thread work space
of ``24 * buffer + 16 * centroids + 24 KiB`` shared by every digest, queries
``32 * (centroids + 2)`` bytes.

Accuracy (rank error)
---------------------
Rank error of an estimate ``x = quantile(q)`` is the distance from ``q`` to
``[F(x-), F(x)]``, the fractions of the data below and at most ``x`` (so an
exact tied value has error 0).  ``tests/test_tdigest.py`` computes it
against exact sorting on 1e6 values, compression 100, for normal,
lognormal(sigma=2), Pareto(alpha=1.5), bimodal normal mixture, ascending,
descending, lognormal and Pareto negated (their long tail at the low end) and
heavy-tie integer (Poisson(3)) data, each as one stream and as 1,000 parts
merged, and asserts these bounds (:data:`RANK_ERROR_BOUNDS`, max over the
eight continuous data sets):

=========  =============  =========================
q          single stream  merged from 1,000 parts
=========  =============  =========================
0.0001     5e-5           5e-5
0.001      5e-5           6e-5
0.01       1e-4           1.2e-4
0.5        8e-5           8e-5
0.9        1e-4           1e-4
0.99       1e-4           1.2e-4
0.999      5e-5           6e-5
0.9999     5e-5           5e-5
=========  =============  =========================

(the same at q and 1 - q in both tails: each flush clusters towards the longer
tail, so mirrored data give mirrored digests), and, on lognormal and Pareto and
their negations, :data:`LOW_TAIL_RANK_ERROR_BOUND` (5e-5) at q = 0.001, single
and merged.  docs/sketches.md has the table per tail.

Ties
----
A cluster holding copies of one value only ("pure") is exact whatever its
weight, so it takes every copy of its value past the scale limit and is
stored as ``(x, 1), (x, w - 2), (x, 1)``: the quantile is flat at ``x`` over
the whole tie block, and the next merge knows the cluster is pure.  Each
flush tries, in order, one pure cluster per distinct value (exact), then
scale-limited clusters in which pure clusters take every copy of their value,
then the same with only over-limit pure clusters as triples, then plain
clusters, keeping the first that fits the capacity; so the memory bound is
unchanged.  Data with few distinct values (each costs at most 3 centroids:
any 69 distinct values at compression 100; any 208 values) is therefore
answered exactly, ``quantile`` equal to ``np.quantile``, single stream or
merged from any number of parts in any order; heavy-tie data such as
Poisson(3) has rank error 0 (``TIES_RANK_ERROR_BOUND``), and the merged
digest stays within 2x the single-stream error on every data set, whatever
the merge order (sequential, reversed, shuffled, pairwise tree).

Special values
--------------
Nulls and NaN are counted (``null_count``, ``nan_count``) and never
inserted.  ``+inf``/``-inf`` are counted apart and sit exactly at the ends:
``quantile`` returns ``-inf`` for ranks among the ``-inf`` values (and the
interpolation between the last ``-inf`` and the finite minimum), ``+inf``
likewise; ``min``/``max`` are exact and include them; ``mean`` and
``trimmed_mean`` are ``inf`` as soon as an infinite value is in range (NaN
when both signs are).  An empty digest (or one fed only NaN/nulls) answers
NaN everywhere and ``is_empty``/``n == 0`` say so.

Merging digests of different compression is allowed: the result keeps the
receiver's compression (and therefore its memory bound and accuracy).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, List, Optional

import numpy as np

from ..adapters.arrow import as_arrow, iter_columns
from ..errors import CorruptStateError, InvalidInputError
from ..kernels import tdigest as _k
from .. import codec
from .base import Sketch, check_numeric_type, count_total, mutating_all

__all__ = ["TDigest", "RANK_ERROR_BOUNDS", "LOW_TAIL_RANK_ERROR_BOUND", "TIES_RANK_ERROR_BOUND"]

QS = (0.0001, 0.001, 0.01, 0.5, 0.9, 0.99, 0.999, 0.9999)
#: Payload layout written by to_bytes (params: compression f64, layout u8); 1 is still read.
_LAYOUT = 2
#: Asserted rank-error bounds at compression 100, 1e6 values: q -> (single stream, merged from 1,000 parts).
RANK_ERROR_BOUNDS = {
    0.0001: (5e-5, 5e-5),
    0.001: (5e-5, 6e-5),
    0.01: (1e-4, 1.2e-4),
    0.5: (8e-5, 8e-5),
    0.9: (1e-4, 1e-4),
    0.99: (1e-4, 1.2e-4),
    0.999: (5e-5, 6e-5),
    0.9999: (5e-5, 5e-5),
}
#: Asserted rank-error bound at q = 0.001 on lognormal(sigma=2) and Pareto(1.5) data and their negations
#: (the long tail low), compression 100, 1e6 values, one stream and merged from 1,000 parts.
LOW_TAIL_RANK_ERROR_BOUND = 5e-5
#: Rank-error bound for integer data with heavy ties (Poisson(3)), any q: exact (see "Ties").
TIES_RANK_ERROR_BOUND = 0.0


class TDigest(Sketch):
    """Mergeable quantile sketch of a numeric column (merging t-digest, k1+k2 scale).

    Parameters
    ----------
    compression : float, default 100
        delta, in [1, 1e6]: at most ``2 floor(compression) + 8`` centroids.
    name : str, optional
        Column name, used in error messages.

    Examples
    --------
    >>> import numpy as np, fastdrift
    >>> td = fastdrift.TDigest().update(np.arange(1000.0))
    >>> float(td.quantile(0.5)), float(td.cdf(499.5)) > 0.49, td.min, td.max
    (499.5, True, 0.0, 999.0)
    """

    KIND = codec.Kind.TDIGEST
    #: weights are float64: integers and their sums stay exact up to 2**53
    MAX_COUNT = 1 << 53

    def __init__(self, compression: float = 100, *, name: Optional[str] = None):
        super().__init__(name)
        self._s = _k.TDigestState(_k.check_compression(compression))

    @staticmethod
    def memory_bound(compression: float = 100) -> int:
        """Upper bound of a digest's state in bytes (see the module docstring)."""
        return _k.state_bytes(_k.check_compression(compression))

    # -- counters -----------------------------------------------------------
    @property
    def compression(self) -> float:
        return self._s.compression

    @property
    def null_count(self) -> int:
        return int(self._s.ints[_k.NULL])

    @property
    def nan_count(self) -> int:
        return int(self._s.ints[_k.NAN])

    @property
    def posinf_count(self) -> int:
        return int(self._s.ints[_k.POSINF])

    @property
    def neginf_count(self) -> int:
        return int(self._s.ints[_k.NEGINF])

    @property
    def finite_count(self) -> int:
        return int(self._s.ints[_k.N_FINITE])

    @property
    def n(self) -> int:
        """Values in the digest: finite and +-inf (not null, not NaN)."""
        i = self._s.ints
        return int(i[_k.N_FINITE] + i[_k.POSINF] + i[_k.NEGINF])

    @property
    def count(self) -> int:
        """Every value passed to update: nulls and NaN included."""
        return self.n + self.null_count + self.nan_count

    @property
    def is_empty(self) -> bool:
        """True while the digest holds no value (nulls and NaN are counted, never held)."""
        return self.n == 0

    @contextmanager
    def _flushed(self) -> Iterator[_k.TDigestState]:
        """The state with the buffer merged, held against mutations while the caller reads it
        (a flush from a reader is not a mutation: the values held stay the same)."""
        with self._reading():
            if self._s.pending:
                self._s.flush()
            yield self._s

    def flush(self) -> "TDigest":
        """Merge the buffered values into the centroids now, as any reader does first, and give the
        insertion buffer back (the values held, and the bytes, stay the same): a digest about to
        be kept or merged into others (a segment's) then holds, and hands over, its centroids only."""
        with self._mutating():
            self._s.release()
        return self

    @staticmethod
    def flush_all(digests: List["TDigest"]) -> None:
        """:meth:`flush` of every digest, the merges in one kernel call (``fd_tdigest_flush_parts``)."""
        with mutating_all(digests):
            _k.flush_parts([d._s for d in digests])
            for d in digests:
                d._s.release()

    @staticmethod
    def update_parts(digests: List["TDigest"], values, starts: np.ndarray, lens: np.ndarray,
                     flush: bool = False) -> None:
        """``digests[j].update(values[starts[j]:starts[j] + lens[j]])`` for every ``j`` in one kernel
        call (``fd_tdigest_update_parts``): ``values`` one numeric array whose parts are segments'
        stretches.  Each digest ends as its own update would leave it, bit for bit; ``flush``: then
        as :meth:`flush` leaves it (a digest with nothing pending borrows one shared insert buffer
        meanwhile).  On bad input none counts anything."""
        name = digests[0].name if digests else None
        arr = as_arrow(values, name)
        check_numeric_type(arr, name)
        views = list(iter_columns(arr, name))
        starts, lens = np.asarray(starts, np.int64), np.asarray(lens, np.int64)
        if starts.shape != (len(digests),) or lens.shape != starts.shape:
            raise InvalidInputError(f"t-digest parts: {starts.size} starts and {lens.size} lengths for "
                                    f"{len(digests)} digests")
        if starts.size and (starts.min() < 0 or lens.min() < 0 or (starts + lens).max() > len(arr)):
            raise InvalidInputError(f"column {name!r}: t-digest parts: a part lies outside the array's "
                                    f"{len(arr)} elements")
        if len(views) != 1 or views[0].kind != "numeric":
            for d, s, n in zip(digests, starts, lens):
                d.update(arr.slice(int(s), int(n)))
                if flush:
                    d.flush()
            return
        with mutating_all(digests):
            for d, n in zip(digests, lens):
                d._room(int(n))
            _k.update_parts(views[0], starts, lens, [d._s for d in digests], flush)
            if flush:
                for d in digests:
                    d._s.release()

    def centroids(self):
        """(means, weights) of the centroids, after merging the buffer (copies)."""
        with self._flushed() as s:
            m, w = s.centroids()
            return m.copy(), w.copy()

    @property
    def n_centroids(self) -> int:
        with self._flushed() as s:
            return s.n_centroids

    # -- queries ------------------------------------------------------------
    @property
    def min(self) -> float:
        with self._flushed() as s:
            if self.n == 0:
                return math.nan
            if s.ints[_k.NEGINF]:
                return -math.inf
            if s.ints[_k.N_FINITE]:
                return float(s.flts[_k.MIN])
            return math.inf

    @property
    def max(self) -> float:
        with self._flushed() as s:
            if self.n == 0:
                return math.nan
            if s.ints[_k.POSINF]:
                return math.inf
            if s.ints[_k.N_FINITE]:
                return float(s.flts[_k.MAX])
            return -math.inf

    @property
    def mean(self) -> float:
        with self._flushed() as s:
            if self.n == 0:
                return math.nan
            pos, neg = s.ints[_k.POSINF], s.ints[_k.NEGINF]
            if pos and neg:
                return math.nan
            if pos or neg:
                return math.inf if pos else -math.inf
            m, w = s.centroids()
            return float(np.dot(m, w) / w.sum())

    def quantile(self, q):
        """Estimated ``np.quantile(values, q)`` ('linear') over the non-NaN values.

        ``q`` is a float or an array of floats in [0, 1] (else InvalidInputError);
        returns a float or an array of the same shape.  NaN when empty.
        """
        qa = np.asarray(q, dtype=np.float64)
        flat = np.ascontiguousarray(qa.reshape(-1))
        with self._flushed() as s:
            out = s.quantile(flat)
        return float(out[0]) if qa.ndim == 0 else out.reshape(qa.shape)

    def cdf(self, x):
        """Estimated fraction of the non-NaN values ``<= x``; NaN for a NaN ``x`` or an empty digest."""
        xa = np.asarray(x, dtype=np.float64)
        flat = np.ascontiguousarray(xa.reshape(-1))
        with self._flushed() as s:
            out = s.cdf(flat)
        return float(out[0]) if xa.ndim == 0 else out.reshape(xa.shape)

    def trimmed_mean(self, lo: float, hi: float) -> float:
        """Mean of the values whose rank fraction lies in ``[lo, hi]`` (0 <= lo < hi <= 1).

        Each value occupies a unit interval of rank; centroids are counted in
        proportion to their overlap.  ``trimmed_mean(0, 1) == mean``.
        """
        for v in (lo, hi):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise InvalidInputError(f"trimmed_mean bounds must be numbers, got {v!r}")
        lo, hi = float(lo), float(hi)
        if not (0.0 <= lo < hi <= 1.0):
            raise InvalidInputError(f"trimmed_mean needs 0 <= lo < hi <= 1, got lo={lo!r}, hi={hi!r}")
        with self._flushed() as s:
            total = self.n
            if total == 0:
                return math.nan
            a, b = lo * total, hi * total
            neg, pos = int(s.ints[_k.NEGINF]), int(s.ints[_k.POSINF])
            in_neg = max(0.0, min(b, neg) - a)
            in_pos = max(0.0, b - max(a, total - pos))
            if in_neg > 0 and in_pos > 0:
                return math.nan
            if in_neg > 0:
                return -math.inf
            if in_pos > 0:
                return math.inf
            m, w = s.centroids()
            start = neg + np.concatenate([[0.0], np.cumsum(w)[:-1]])
            ov = np.clip(np.minimum(start + w, b) - np.maximum(start, a), 0.0, None)
            tot = ov.sum()
            return float(np.dot(ov, m) / tot) if tot > 0 else math.nan

    def __repr__(self):
        if self.is_empty:
            return f"TDigest(compression={self.compression:g}, empty, count={self.count})"
        return (f"TDigest(compression={self.compression:g}, count={self.count}, "
                f"centroids={self.n_centroids}, min={self.min:.6g}, max={self.max:.6g})")

    def recycle(self) -> "TDigest":
        """Empty this digest and give its insert buffer to the next digest that grows one.

        For a digest that was merged into another and is dropped (a file scan's per-fragment
        digests): the next one reuses the buffer's memory instead of faulting in fresh pages.
        Returns ``self``, now empty.
        """
        with self._mutating():
            self._s.recycle()
        return self

    def _add_clusters(self, means, weights, pure, lo: float, hi: float) -> None:
        """Fold in values given already clustered (a scan's grid cells: ``sketches.quantiles``):
        ``means`` sorted, integer ``weights``, ``pure`` where a cluster holds copies of its mean
        only, every value in [lo, hi].  Clustered with the next flush, as merged centroids are."""
        with self._mutating():
            self._room(int(np.sum(weights)), "adding clusters of")
            self._s.add_clusters(means, weights, pure, lo, hi)

    def _add_counts(self, null: int, nan: int, posinf: int, neginf: int) -> None:
        """Count values the digest holds no centroid for (nulls, NaN, +-inf) seen elsewhere (a scan's
        moments of the same values)."""
        with self._mutating():
            self._room(null + nan + posinf + neginf)
            i = self._s.ints
            i[_k.NULL] += null
            i[_k.NAN] += nan
            i[_k.POSINF] += posinf
            i[_k.NEGINF] += neginf

    def _update_f64(self, x: np.ndarray) -> None:
        """:meth:`update` of a contiguous float64 array without nulls, without the Arrow adapter
        (a scan's values routed here by the grid kernel: hundreds of small arrays a column)."""
        if x.size == 0:
            return
        x = np.ascontiguousarray(x, np.float64)
        with self._mutating():
            self._room(x.size)
            self._s.update_f64(x, self.name)

    # -- hooks --------------------------------------------------------------
    def _update(self, values) -> None:
        arr = as_arrow(values, self.name)
        check_numeric_type(arr, self.name)
        self._room(len(arr))
        views = list(iter_columns(arr, self.name))
        for view in views:
            if view.kind == "null":
                self._s.ints[_k.NULL] += view.length
            else:
                self._s.update(view)

    def _merge(self, other) -> None:
        self._s.merge(other._s)

    def _copy(self):
        t = TDigest.__new__(TDigest)
        Sketch.__init__(t, self.name)
        t._s = self._s.copy()
        return t

    def _params(self) -> bytes:
        return codec.Writer().f64(self._s.compression).u8(_LAYOUT).getvalue()

    def _payload(self) -> bytes:
        with self._flushed() as s:
            i = s.ints
            m, w = s.centroids()
            return (codec.Writer()
                .uvarint_values(np.array([i[_k.N_FINITE], i[_k.NULL], i[_k.NAN], i[_k.POSINF], i[_k.NEGINF]]))
                .f64_values(s.flts)
                .uvarint(m.size).f64_values(m).uvarint_values(w).getvalue())

    @classmethod
    def _decode(cls, params, payload):
        r = codec.Reader(params, "t-digest params")
        compression = r.f64()
        # layout 1 (params: compression only): u64-counted int64/float64 arrays
        layout = r.u8("payload layout") if r.remaining else 1
        r.done()
        if layout not in (1, _LAYOUT):
            raise CorruptStateError(f"t-digest params: unknown payload layout {layout}")
        try:
            compression = _k.check_compression(compression)
        except InvalidInputError as exc:
            raise CorruptStateError(f"t-digest params: {exc}") from None
        r = codec.Reader(payload, "t-digest payload")
        if layout == 1:
            counts = r.i64_array()
            flts = r.f64_array()
            means = r.f64_array()
            weights = r.f64_array()
        else:
            counts = r.uvarint_values(5, "counts").astype(np.int64)
            flts = r.f64_values(2, "min, max")
            nc = r.uvarint("centroid count")
            if nc > r.remaining // 9:
                raise CorruptStateError(f"t-digest payload: {nc} centroids cannot fit in {r.remaining} bytes")
            means = r.f64_values(nc, "means")
            weights = r.uvarint_values(nc, "weights").astype(np.float64)
        r.done()
        if counts.size != 5 or flts.size != 2:
            raise CorruptStateError(f"t-digest payload has {counts.size}+{flts.size} counters, expected 5+2")
        count_total(counts, "t-digest payload", cls.MAX_COUNT)
        cap = _k.capacity(compression)
        nc = means.size
        if weights.size != nc or nc > cap:
            raise CorruptStateError(
                f"t-digest payload has {nc} means and {weights.size} weights; at most {cap} centroids")
        n_finite = int(counts[0])
        if n_finite == 0:
            if nc or not (flts[0] == np.inf and flts[1] == -np.inf):
                raise CorruptStateError("t-digest payload: an empty digest has no centroids, min=+inf, max=-inf")
        else:
            if nc == 0 or not (np.isfinite(means).all() and np.isfinite(flts).all()):
                raise CorruptStateError("t-digest payload: centroids, min and max must be finite")
            if not (np.all(weights >= 1) and np.all(weights == np.floor(weights)) and np.all(weights < 2.0**53)):
                raise CorruptStateError("t-digest payload: weights must be integers >= 1")
            # each weight < 2**53 but their int64 sum could wrap: bound it in float first
            if weights.sum() > 2.0**62 or int(weights.astype(np.int64).sum()) != n_finite:
                raise CorruptStateError("t-digest payload: centroid weights do not add up to the finite count")
            if nc > 1 and not np.all(means[1:] >= means[:-1]):
                raise CorruptStateError("t-digest payload: centroid means are not sorted")
            if not (flts[0] <= means[0] and means[-1] <= flts[1]):
                raise CorruptStateError("t-digest payload: centroids outside [min, max]")
        t = cls(compression)
        s = t._s
        s.means[:nc] = means
        s.weights[:nc] = weights
        s.ints[_k.N_CENTROIDS] = nc
        s.ints[_k.N_FINITE] = n_finite
        s.ints[_k.NULL], s.ints[_k.NAN], s.ints[_k.POSINF], s.ints[_k.NEGINF] = (int(c) for c in counts[1:])
        s.flts[:] = flts
        return t
