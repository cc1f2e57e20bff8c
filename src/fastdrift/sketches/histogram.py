"""Streaming numeric histogram over fixed, sorted edges.

Bins are left-closed, ``[e(i-1), e(i))``, with two open outer bins: below the
first edge and at/above the last one, so ``counts`` has ``len(edges) + 1``
entries and nothing is ever out of range; ``-inf`` lands in the first bin and
``+inf`` in the last.  The bin of ``x`` is ``np.searchsorted(edges, x,
side="right")``; integer columns are compared after conversion to float64
(exact for ``|x| <= 2**53``).  Nulls and NaN are not binned: they have their
own counters, ``null_count`` and ``nan_count``.

State is exact (int64 counts) and merges exactly: splitting a stream in any
way, counting the parts and merging gives the same counts as one pass.
Memory: ``16 * len(edges)`` bytes plus a lookup table of at most 256 KiB.
"""
from __future__ import annotations

import functools
from typing import List, Optional

import numpy as np

from ..adapters.arrow import as_arrow, iter_columns
from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError
from ..kernels.hist import hist_update, make_index
from ..kernels.seg import hist_update_parts
from ..kernels.quantile import exact_quantiles
from .. import codec
from .base import Sketch, check_numeric_type, count_total, mutating_all
from .moments import Moments
from .quantiles import numeric_views

__all__ = ["Histogram"]

_NUMERIC = ("numeric", "null")


def check_binning(bins, strategy: str) -> None:
    """Raise :class:`InvalidInputError` unless ``bins`` and ``strategy`` are valid for :func:`reference_edges`."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise InvalidInputError(f"bins must be an integer >= 2, got {bins!r}")
    if strategy not in ("quantile", "uniform"):
        raise InvalidInputError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")


def quantile_levels(bins: int) -> np.ndarray:
    """The levels whose quantiles are the inner edges of ``bins`` quantile bins: ``1/bins, ..., (bins-1)/bins``."""
    return np.arange(1, bins) / bins


def fixed_edges(moments, bins: int, strategy: str, name=None) -> Optional[np.ndarray]:
    """The inner edges that follow from a reference column's :class:`~fastdrift.Moments` alone, or
    None when they are its quantiles (``strategy="quantile"``, not constant).

    Uniform bins and a constant column's single edge ``[c]`` need no order statistic.

    Raises
    ------
    InvalidInputError
        The column has no finite value.
    """
    if moments.n == 0:
        label = f"column {name!r}" if name is not None else "reference"
        raise InvalidInputError(f"{label}: no finite values to derive histogram edges from")
    lo, hi = moments.min, moments.max
    if strategy == "uniform":
        return np.unique(np.linspace(lo, hi, bins + 1)[1:-1] if hi > lo else np.array([lo]))
    return np.array([lo]) if lo == hi else None


def reference_edges(values, bins: int = 10, strategy: str = "quantile", name=None,
                    moments=None) -> np.ndarray:
    """Inner edges derived from a reference sample.

    ``strategy="quantile"``: ``np.unique(np.quantile(x, [1/bins, ..., (bins-1)/bins]))``
    over the finite values ``x`` (numpy's default 'linear' method, bit for bit), so
    ten bins are the reference deciles; ties collapse duplicate edges.
    ``"uniform"``: ``bins - 1`` equal-width inner edges between the finite min and
    max.  ``bins`` counts the two open outer bins, so a column gets at most
    ``bins`` bins.  A constant column gets the single edge ``[c]``.  ``moments``,
    a :class:`~fastdrift.Moments` of the same values, saves a pass when given.
    """
    check_binning(bins, strategy)
    arr = as_arrow(values, name)
    check_numeric_type(arr, name)
    if moments is None:
        moments = Moments(name=name).update(arr)
    edges = fixed_edges(moments, bins, strategy, name)
    if edges is None:
        edges = np.unique(exact_quantiles(numeric_views(arr, name), quantile_levels(bins), moments.n, moments.min,
                                          moments.max))
    return edges


class Histogram(Sketch):
    """Counts of numeric values in fixed bins, plus null and NaN counters.

    Parameters
    ----------
    edges : array_like of float
        Finite, strictly increasing bin edges (at least one).
    name : str, optional
        Column name, used in error messages.

    Attributes
    ----------
    edges : ndarray of float64
    counts : ndarray of int64, ``len(edges) + 1`` bins, outer open bins included
    null_count, nan_count : int
    count : int
        Every value passed to :meth:`update`, nulls and NaN included.

    Examples
    --------
    >>> import numpy as np, fastdrift
    >>> h = fastdrift.Histogram([0.0, 1.0]).update(np.array([-1.0, 0.0, 0.5, 1.0, np.nan]))
    >>> h.counts.tolist(), h.nan_count
    ([1, 2, 1], 1)
    """

    KIND = codec.Kind.HISTOGRAM

    def __init__(self, edges, *, name: Optional[str] = None):
        super().__init__(name)
        # make_index validates (finite, strictly increasing, 1-D, non-empty) and owns a read-only copy.
        self._index = make_index(edges)
        e = self._edges = self._index.edges
        self._counts = np.zeros(e.size + 1, dtype=np.int64)
        self._specials = np.zeros(2, dtype=np.int64)  # null, nan

    @classmethod
    def from_reference(cls, values, bins: int = 10, strategy: str = "quantile", *,
                       name: Optional[str] = None) -> "Histogram":
        """A histogram whose edges come from ``values`` (see :func:`reference_edges`), counting them."""
        h = cls(reference_edges(values, bins, strategy, name), name=name)
        return h.update(values)

    @classmethod
    def from_counts(cls, edges, counts, null_count: int = 0, nan_count: int = 0, *,
                    name: Optional[str] = None) -> "Histogram":
        """A histogram over ``edges`` holding counts computed elsewhere (e.g. derived exactly from a
        quantile grid without another pass over the data); validated like decoded state."""
        h = cls(edges, name=name)
        c = np.array(counts, dtype=np.int64)
        if c.shape != (h._edges.size + 1,):
            raise InvalidInputError(f"counts must have {h._edges.size + 1} entries for {h._edges.size} edges, "
                                    f"got shape {c.shape}")
        if (c < 0).any() or null_count < 0 or nan_count < 0:
            raise InvalidInputError("histogram counts must be non-negative")
        h._counts = c
        h._specials = np.array([null_count, nan_count], dtype=np.int64)
        return h

    # -- attributes -------------------------------------------------------
    @property
    def edges(self) -> np.ndarray:
        return self._edges

    @property
    def counts(self) -> np.ndarray:
        return self._counts.copy()

    @property
    def null_count(self) -> int:
        return int(self._specials[0])

    @property
    def nan_count(self) -> int:
        return int(self._specials[1])

    @property
    def count(self) -> int:
        # summed in Python for the usual few bins: a window close reads tens of thousands of counts
        c = self._counts
        return sum(c.tolist() if c.size <= 64 else (int(c.sum()),)) + sum(self._specials.tolist())

    @property
    def is_empty(self) -> bool:
        return self.count == 0

    def __repr__(self):
        return (f"Histogram(bins={self._counts.size}, count={self.count}, "
                f"null={self.null_count}, nan={self.nan_count}{', name=%r' % self.name if self.name else ''})")

    # -- hooks --------------------------------------------------------------
    def _update(self, values) -> None:
        arr = as_arrow(values, self.name)
        check_numeric_type(arr, self.name)
        self._room(len(arr))
        # Count into scratch copies so a failure half-way loses nothing already counted.
        counts, specials = self._counts.copy(), self._specials.copy()
        for view in iter_columns(arr, self.name):
            hist_update(view, self._index, counts, specials)
        self._counts, self._specials = counts, specials

    @staticmethod
    def update_parts(hists: List["Histogram"], values, starts: np.ndarray, lens: np.ndarray) -> None:
        """``hists[j].update(values[starts[j]:starts[j] + lens[j]])`` for every ``j`` in one kernel
        call (:func:`~fastdrift.kernels.seg.hist_update_parts`): ``values`` one numeric array whose
        parts are segments' stretches, ``hists`` of the same edges (otherwise each part is counted
        by :meth:`update`).  Each ends as its own update would
        leave it; on bad input none counts anything."""
        index = hists[0]._index
        arr = as_arrow(values, hists[0].name)
        views = list(iter_columns(arr, hists[0].name))
        same = all(h._index is index or np.array_equal(h._edges, index.edges) for h in hists)
        if not same or len(views) != 1 or views[0].kind != "numeric":
            for h, s, n in zip(hists, starts, lens):
                h.update(arr.slice(int(s), int(n)))
            return
        check_numeric_type(arr, hists[0].name)
        with mutating_all(hists):
            for h, n in zip(hists, lens):
                h._room(int(n))
            counts = np.stack([h._counts for h in hists])  # scratch: an error leaves every state as it was
            specials = np.stack([h._specials for h in hists])
            hist_update_parts(views[0], index, starts, lens, counts, specials)
            for h, c, sp in zip(hists, counts, specials):
                h._counts, h._specials = c, sp

    def _compatible(self, other) -> None:
        if self._edges is not other._edges and not np.array_equal(self._edges, other._edges):
            raise IncompatibleSketchError(
                f"histogram edges differ: {_fmt(self._edges)} vs {_fmt(other._edges)}")

    def _merge(self, other) -> None:
        self._compatible(other)
        self._counts += other._counts
        self._specials += other._specials

    def _merge_many(self, others) -> None:
        for o in others:  # all checked before any counts: an error merges none
            self._compatible(o)
        self._counts = self._counts + np.add.reduce([o._counts for o in others])
        self._specials = self._specials + np.add.reduce([o._specials for o in others])

    @classmethod
    def _merge_each(cls, targets, groups) -> None:
        # every group checked (edges, then counts) before any target changes; each target's counts
        # plus its group's summed in one reduceat per bin count (integer sums: exact in any order)
        by_size: dict = {}
        for i, (t, g) in enumerate(zip(targets, groups)):
            if g:
                e = t._edges
                for o in g:
                    if o._edges is not e:
                        t._compatible(o)
                by_size.setdefault(t._counts.size, []).append(i)
        sums = []
        for size, idx in by_size.items():
            parts = [o for i in idx for o in groups[i]]
            lens = np.array([len(groups[i]) for i in idx])
            starts = np.cumsum(lens) - lens
            counts = np.concatenate([o._counts for o in parts]).reshape(-1, size)
            specials = np.concatenate([o._specials for o in parts]).reshape(-1, 2)
            mine = [targets[i] for i in idx]
            own = np.concatenate([t._counts for t in mine]).reshape(-1, size)
            own_sp = np.concatenate([t._specials for t in mine]).reshape(-1, 2)
            have = own.sum(axis=1, dtype=np.float64) + own_sp.sum(axis=1, dtype=np.float64)
            add = np.add.reduceat(counts.sum(axis=1, dtype=np.float64) + specials.sum(axis=1, dtype=np.float64),
                                  starts)
            cls._room_each(mine, [groups[i] for i in idx], have, add)
            sums.append((mine, own + np.add.reduceat(counts, starts), own_sp + np.add.reduceat(specials, starts)))
        for mine, counts, specials in sums:  # rows of one array each (C-contiguous, writable)
            for t, c, sp in zip(mine, counts, specials):
                t._counts, t._specials = c, sp

    def empty_like(self) -> "Histogram":
        """A histogram over the same edges with nothing counted; it shares their lookup tables
        (built once, not per copy: a segmented profile makes one per segment and column)."""
        h = Histogram.__new__(Histogram)
        Sketch.__init__(h, self.name)
        h._edges, h._index = self._edges, self._index  # never changed in place
        h._counts = np.zeros(self._edges.size + 1, dtype=np.int64)
        h._specials = np.zeros(2, dtype=np.int64)
        return h

    def _copy(self):
        h = Histogram.__new__(Histogram)
        Sketch.__init__(h, self.name)
        h._edges, h._index = self._edges, self._index
        h._counts, h._specials = self._counts.copy(), self._specials.copy()
        return h

    def _params(self) -> bytes:
        cached = self.__dict__.get("_params_bytes")
        if cached is None or cached[0] is not self._edges:  # the edges never change in place
            cached = self._params_bytes = (self._edges, codec.Writer().f64_array(self._edges).getvalue())
        return cached[1]

    def _payload(self) -> bytes:
        return codec.Writer().i64_array(self._counts).i64_array(self._specials).getvalue()

    @classmethod
    def _decode(cls, params, payload):
        r = codec.Reader(params, "histogram parameters")
        edges = r.f64_array()
        r.done()
        try:
            index = _decoded_index(edges.tobytes())
        except InvalidInputError as exc:
            raise CorruptStateError(f"histogram edges are invalid: {exc}") from None
        h = cls.__new__(cls)
        Sketch.__init__(h, None)
        h._index, h._edges = index, index.edges
        r = codec.Reader(payload, "histogram payload")
        counts = r.i64_array()
        specials = r.i64_array()
        r.done()
        if counts.size != edges.size + 1 or specials.size != 2:
            raise CorruptStateError(
                f"histogram payload has {counts.size} bins and {specials.size} counters for "
                f"{edges.size} edges (expected {edges.size + 1} and 2)")
        count_total(np.concatenate([counts, specials]), "histogram payload")
        h._counts, h._specials = counts, specials
        return h


@functools.lru_cache(maxsize=64)
def _decoded_index(edges: bytes):
    """The lookup index of decoded edges, shared like a copy's: a fleet decodes every process's
    pane over the same few edges, and building the index is most of a small histogram's decode."""
    return make_index(np.frombuffer(edges, dtype=np.float64))


def _fmt(e: np.ndarray) -> str:
    if e.size <= 6:
        return "[" + ", ".join(f"{v:.6g}" for v in e) + "]"
    return f"[{e[0]:.6g}, {e[1]:.6g}, ..., {e[-1]:.6g}] ({e.size} edges)"
