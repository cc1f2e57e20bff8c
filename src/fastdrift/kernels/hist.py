"""Numeric histogram over sorted edges: index construction and dispatch.

The bin of ``x`` is the number of edges ``<= x`` (``np.searchsorted(edges, x,
side="right")``), so ``counts`` has ``n_edges + 1`` entries, the outer ones
open towards -inf/+inf (which land there).  NaN and null are counted apart in
``specials = [null, nan]``.

:func:`make_index` precomputes everything the kernels need; the kernels
themselves are in ``kernels/fd_hist.c`` (backend ``"c"``) and
:mod:`fastdrift.kernels.numba_hist` (backend ``"numba"``).

Equal widths without a lookup
-----------------------------
For edges close enough to equal widths (``np.linspace`` ones, and any whose
deviation from equal widths is far below ``2**-FD_HIST_ARITH_TOL_LOG2`` of a
width) :func:`make_index` picks the *arith* path: ``u = clamp((x - lo) *
inv_width, -0.5, n - 0.5) + 1`` and the bin is ``int(u)``, with no table or
edge load, unless ``u`` is that close to an integer (then an exact search).
:func:`_arith_is_exact` proves it for the concrete edges before choosing it.

Choosing the lookup table
-------------------------
For edges that are not exactly uniform the kernels map ``x`` to one of
``n_table`` equal-width sub-buckets over ``[edges[0], edges[-1]]``, start at
``table[j]`` and do ``n_probe`` forward compares.  ``n_probe`` is the largest
number of edges falling in one sub-bucket, so denser tables mean fewer probes
but more cache.  :func:`make_index` doubles ``n_table`` from the smallest
power of two >= ``4 * n_edges`` until ``n_probe <= TARGET_PROBES`` or the
table would exceed ``MAX_TABLE`` entries (256 KiB of int32).  Quantile edges
of normal, uniform or moderately skewed data reach 1-2 probes with 4-16
entries per edge; an extreme outlier edge (a range dominated by one gap) is
what pushes the table to its cap, and then the kernels just do more probes.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InvalidInputError
from . import Family, check_out, float64_pieces, numeric_values
from .native import FD_OK, check, column, ffi, lib, ptr

__all__ = ["HistIndex", "make_index", "hist_update", "HIST", "TARGET_PROBES", "MAX_TABLE"]

#: Stop growing the table once every sub-bucket holds at most this many edges.
TARGET_PROBES = 1
#: Largest table (int32 entries) make_index builds.
MAX_TABLE = 1 << 16
#: +inf sentinels after the edges.  One suffices (a probe from bin n_edges
#: compares against edges[n_edges] = +inf, which no clamped value reaches);
#: a few more keep the padded array a whole cache line.
N_PAD = 8


def _table_bucket(x: np.ndarray, lo: float, inv: float, top: float) -> np.ndarray:
    """Sub-bucket of each x, with exactly the arithmetic of the kernels."""
    with np.errstate(all="ignore"):
        t = (x - lo) * inv
    t = np.where(t > 0.0, t, 0.0)  # as C's `t > 0 ? t : 0` (NaN -> 0)
    t = np.where(t < top, t, top)
    return t.astype(np.int64)


def _uniform_guess(x: np.ndarray, lo: float, inv: float, n: int) -> np.ndarray:
    """The uniform path's first guess of the bin, with the kernels' arithmetic."""
    with np.errstate(all="ignore"):
        t = (x - lo) * inv + 1.0
    t = np.where(t > 1.0, t, 1.0)
    t = np.where(t < float(n), t, float(n))
    return t.astype(np.int64)


def _uniform_is_exact(edges: np.ndarray, lo: float, inv: float) -> bool:
    """True if the +-1 fix-up after the arithmetic guess is exact for every double.

    The guess is monotone in x, and the true bin is constant on each interval
    [e_k, e_{k+1}); so if the guess is within 1 of the true bin at both ends
    of every interval (e_k and the double just below e_{k+1}) it is within 1
    everywhere.  Below e_0 the guess is >= 1 (true bin 0) and at most its
    value just below e_0; from e_{n-1} on it is <= n (true bin n).
    """
    n = edges.size
    k = np.arange(n)
    at = _uniform_guess(edges, lo, inv, n)            # true bin k + 1
    with np.errstate(all="ignore"):
        below = _uniform_guess(np.nextafter(edges, -np.inf), lo, inv, n)  # true bin k
    return bool(np.all(np.abs(at - (k + 1)) <= 1) and np.all(np.abs(below - k) <= 1))


#: A value whose u is at least this far from an integer takes bin int(u) on the arith path.
ARITH_TOL = 2.0 ** -lib.FD_HIST_ARITH_TOL_LOG2


#: Sub-buckets per edge of an arith index's table (a power of two; fd_hist.c derives it as
#: n_table / n_edges).
ARITH_TABLE_SCALE = 8


def _arith_u(x: np.ndarray, lo: float, inv: float, n: int) -> np.ndarray:
    """The arith path's u, with exactly the arithmetic of the kernels (NaN -> 0.5)."""
    with np.errstate(all="ignore"):
        t = (x - lo) * inv
    t = np.where(t > -0.5, t, -0.5)
    t = np.where(t < n - 0.5, t, n - 0.5)
    return t + 1.0


def _arith_is_exact(edges: np.ndarray, lo: float, inv: float) -> bool:
    """True if ``int(u)`` is the bin of every x whose u is ``ARITH_TOL`` away from an integer.

    u is monotone in x, so on the bin [e_{k-1}, e_k) of x (k edges <= x) u
    lies between u(e_{k-1}) and u(the double below e_k).  If every
    u(e_k) > k + 1 - tol and every u(below e_k) < k + 1 + tol, then u of a
    value in bin k lies in (k - tol, k + 1 + tol); one tol away from an
    integer, that is [k + tol, k + 1 - tol], whose int is k.  The clamps keep
    u in [0.5, n + 0.5], which the outer bins' ends (u <= 1 - tol for bin 0,
    u >= n + tol for bin n) also satisfy.
    """
    n = edges.size
    k1 = np.arange(1, n + 1, dtype=np.float64)
    at = _arith_u(edges, lo, inv, n)
    with np.errstate(all="ignore"):
        below = _arith_u(np.nextafter(edges, -np.inf), lo, inv, n)
    return bool(np.all(at > k1 - ARITH_TOL) and np.all(below < k1 + ARITH_TOL))


#: The numba twin's bins on an arith index (``numba_hist.hist_ma``): v = clamp(x, xlo, xhi) * inv
#: + c, a double of [2^32, 2^33), where doubles are 2^-MA_S apart; the low 32 bits of its
#: encoding are u in fixed point with MA_S fraction bits, and the bin is their top bits unless
#: the fraction lies within MA_TOL of an integer (fd_hist.c's pair table does the same with one
#: multiply-add; numba has none, so a multiply and an add, each rounded, and a proof of its own).
MA_S = 20
MA_TOL = 2.0 ** -17
_MA_BASE = 1.5 * 2.0 ** 32
_MA_BASE_BITS = int(np.float64(_MA_BASE).view(np.int64))


def _ma_t(x, xlo: float, xhi: float, inv: float, c: float) -> np.ndarray:
    """t of x, with exactly the arithmetic of ``numba_hist.hist_ma`` (NaN -> xlo)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.where(x > xlo, x, xlo)
    y = np.where(y < xhi, y, xhi)
    with np.errstate(all="ignore"):
        v = y * inv + c
    return v.view(np.int64) - _MA_BASE_BITS


def ma_plan(edges: np.ndarray, lo: float, inv: float):
    """``(xlo, xhi, c)`` if ``numba_hist.hist_ma``'s bins are exact for ``edges`` (an arith
    index's), else None.

    The same argument as :func:`_arith_is_exact`: t is monotone in x, so if every t(e_k) >
    (k + 1) - MA_TOL and every t(below e_k) < (k + 1) + MA_TOL (in bins), t of a value of bin k
    lies in (k - MA_TOL, k + 1 + MA_TOL), and one MA_TOL away from an integer its integer part is
    k.  The clamps keep t in [t(xlo), t(xhi)], checked to lie in [0, n + 1) bins, so that v stays
    in [2^32, 2^33) and the bin in 0..n.
    """
    n = edges.size
    with np.errstate(all="ignore"):
        c = _MA_BASE + (1.0 - lo * inv)
        xlo = lo - 0.5 / inv
        xhi = lo + (n - 0.5) / inv
    if not (n + 1 < 2 ** (32 - MA_S) and np.isfinite(c) and xlo < edges[0] and edges[-1] <= xhi and np.isfinite(xhi)):
        return None
    one, tol = 1 << MA_S, int(MA_TOL * 2 ** MA_S)
    ends = _ma_t([xlo, xhi], xlo, xhi, inv, c)
    if not (ends[0] >= 0 and ends[1] < (n + 1) * one):
        return None
    k1 = np.arange(1, n + 1, dtype=np.int64) * one
    at = _ma_t(edges, xlo, xhi, inv, c)
    with np.errstate(all="ignore"):
        below = _ma_t(np.nextafter(edges, -np.inf), xlo, xhi, inv, c)
    if np.all(at > k1 - tol) and np.all(below < k1 + tol):
        return float(xlo), float(xhi), float(c)
    return None


def _inverse_width(n_buckets: int, lo: float, hi: float) -> float:
    with np.errstate(all="ignore"):
        inv = n_buckets / (hi - lo)
        if not np.isfinite(inv) or inv <= 0.0:
            # hi - lo overflowed (edges near +-DBL_MAX): halve before subtracting.
            # Halving can also round a subnormal range to 0 (edges +-5e-324),
            # and lo/hi are Python floats, which raise on division by zero.
            half = hi * 0.5 - lo * 0.5
            inv = (n_buckets * 0.5) / half if half > 0.0 else np.inf
    if not np.isfinite(inv) or inv <= 0.0:
        # A subnormal range: any positive finite scale is still exact, only
        # the table gets coarser.
        inv = 1e300
    return float(inv)


class HistIndex:
    """Precomputed lookup structures for one set of histogram edges.

    Build it with :func:`make_index`.  Immutable once built; safe to share
    between threads and sketches.

    Attributes
    ----------
    edges : numpy.ndarray
        The n_edges finite, strictly increasing float64 edges (read-only).
    padded : numpy.ndarray
        ``edges`` followed by ``N_PAD`` copies of +inf.
    uniform : bool
        Edges are exactly ``np.linspace(edges[0], edges[-1], n_edges)`` and
        the arithmetic path (guess and +-1 fix-up) was proven exact for them.
    arith : bool
        The arith path (bin by arithmetic alone away from the boundaries) was
        proven exact for the edges (``_arith_is_exact``).  Its ``table``
        (``ARITH_TABLE_SCALE`` sub-buckets per edge, inverse width
        ``ARITH_TABLE_SCALE * inv_width``) serves the scalar builds of the C kernel.
    n_probe : int
        Forward compares after the table lookup (table path).
    lo, inv_width : float
        Origin and inverse width of the sub-buckets (uniform: of the bins).
    table : numpy.ndarray
        int32 starting bin per sub-bucket (``[0]`` on the uniform path).
    table_edges : numpy.ndarray
        ``padded[table]``, the edge each sub-bucket's first probe compares with (the numba
        backend's runs; created on first use).
    c_index : cffi ``fd_hist_index*``
        The same data for the C kernel (created on first use).
    """

    __slots__ = ("edges", "padded", "uniform", "arith", "n_probe", "lo", "inv_width", "table",
                 "_c_index", "_c_keep", "_table_edges", "_ma_plan")

    def __init__(self, edges, padded, uniform, n_probe, lo, inv_width, table, arith=False):
        self.edges = edges
        self.padded = padded
        self.uniform = bool(uniform)
        self.arith = bool(arith)
        self.n_probe = int(n_probe)
        self.lo = float(lo)
        self.inv_width = float(inv_width)
        self.table = table
        self._c_index = None
        self._c_keep = None
        self._table_edges = None
        self._ma_plan = False

    @property
    def n_edges(self) -> int:
        return int(self.edges.size)

    @property
    def n_table(self) -> int:
        return int(self.table.size)

    @property
    def table_edges(self) -> np.ndarray:
        if self._table_edges is None:
            te = self.padded[self.table]
            te.flags.writeable = False
            self._table_edges = te
        return self._table_edges

    @property
    def ma_plan(self):
        """:func:`ma_plan` of an arith index (None otherwise), computed on first use."""
        if self._ma_plan is False:
            self._ma_plan = ma_plan(self.edges, self.lo, self.inv_width) if self.arith else None
        return self._ma_plan

    @property
    def c_index(self):
        if self._c_index is None:
            e = ffi.from_buffer("double[]", self.padded, require_writable=False)
            t = ffi.from_buffer("int32_t[]", self.table, require_writable=False)
            ix = ffi.new("fd_hist_index*")
            ix.edges = e
            ix.n_edges = self.n_edges
            ix.uniform = 2 if self.arith else 1 if self.uniform else 0
            ix.n_probe = self.n_probe
            ix.lo = self.lo
            ix.inv_width = self.inv_width
            ix.table = t
            ix.n_table = self.n_table
            self._c_keep = (e, t)  # the struct points into these buffers
            self._c_index = ix
        return self._c_index

    def __repr__(self) -> str:
        path = "arith" if self.arith else "uniform" if self.uniform else f"table n_table={self.n_table} n_probe={self.n_probe}"
        return f"HistIndex(n_edges={self.n_edges}, {path})"


def make_index(edges, *, target_probes: int = TARGET_PROBES, max_table: int = MAX_TABLE,
               arithmetic_uniform: bool = False, arith: bool = True) -> HistIndex:
    """Build the lookup index for histogram ``edges``.

    Parameters
    ----------
    edges : array_like
        At least one finite, strictly increasing value (converted to float64).
    target_probes : int, optional
        Grow the sub-bucket table until no sub-bucket holds more edges than
        this (the kernels' probe count), within ``max_table``.
    max_table : int, optional
        Largest number of sub-buckets.
    arithmetic_uniform : bool, default False
        For equally spaced edges, find the bin by arithmetic plus a +-1
        fix-up instead of the table.  Off by default: the table path (one
        table load, one probe) is the faster of the two on 100 uniform bins
        (bench/bench_kernels.py, ``uniform100table`` against ``uniform100arith``,
        measures both); it takes precedence over ``arith``.  Uniform edges get a
        one-probe table either way, so they stay on the fast path.
    arith : bool, default True
        Use the arith path when :func:`_arith_is_exact` proves it for these
        edges (the fastest for equal widths: bench/bench_kernels.py,
        ``uniform100`` against ``uniform100table``); otherwise the table.

    Returns
    -------
    HistIndex

    Raises
    ------
    InvalidInputError
        If ``edges`` is empty, not 1-D, not finite or not strictly increasing.
    """
    try:
        e = np.array(edges, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"histogram edges must be numeric: {exc}") from None
    if e.ndim != 1:
        raise InvalidInputError(f"histogram edges must be 1-D, got shape {e.shape}")
    n = e.size
    if n < 1:
        raise InvalidInputError("histogram edges must hold at least one value")
    if n > np.iinfo(np.int32).max - N_PAD:
        raise InvalidInputError(f"too many histogram edges ({n})")
    if not np.all(np.isfinite(e)):
        raise InvalidInputError("histogram edges must be finite (+-inf are implied by the outer bins)")
    if n > 1 and not np.all(e[1:] > e[:-1]):
        bad = int(np.argmin(e[1:] > e[:-1]))
        raise InvalidInputError(
            f"histogram edges must be strictly increasing; edges[{bad}]={e[bad]!r} >= "
            f"edges[{bad + 1}]={e[bad + 1]!r}")
    e.flags.writeable = False
    padded = np.concatenate([e, np.full(N_PAD, np.inf)])
    padded.flags.writeable = False
    lo, hi = float(e[0]), float(e[-1])

    with np.errstate(all="ignore"):  # linspace over +-1e308 overflows internally
        uniform = arithmetic_uniform and n >= 2 and np.array_equal(e, np.linspace(lo, hi, n))
    if uniform:
        inv = _inverse_width(n - 1, lo, hi)
        if _uniform_is_exact(e, lo, inv):
            table = np.zeros(1, dtype=np.int32)
            table.flags.writeable = False
            return HistIndex(e, padded, True, 1, lo, inv, table)

    if arith and n >= 2:
        inv = _inverse_width(n - 1, lo, hi)
        if np.isfinite(inv * float(ARITH_TABLE_SCALE)) and _arith_is_exact(e, lo, inv):
            # The scalar builds of the C kernel look the bin up instead: a table of
            # ARITH_TABLE_SCALE sub-buckets per edge over the same lo, scale * inv_width (exact:
            # a power of two) as their inverse width.
            n_table = ARITH_TABLE_SCALE * n
            j = _table_bucket(e, lo, inv * float(ARITH_TABLE_SCALE), float(n_table - 1))
            n_probe = int(np.bincount(j, minlength=n_table).max())
            table = np.searchsorted(j, np.arange(n_table), side="left").astype(np.int32)
            table.flags.writeable = False
            return HistIndex(e, padded, False, n_probe, lo, inv, table, arith=True)

    if n == 1:
        table = np.zeros(1, dtype=np.int32)
        table.flags.writeable = False
        return HistIndex(e, padded, False, 1, lo, 1.0, table)

    n_table = 1 << int(np.ceil(np.log2(max(4 * n, 16))))
    n_table = min(n_table, max(int(max_table), 1))
    while True:
        inv = _inverse_width(n_table, lo, hi)
        j = _table_bucket(e, lo, inv, float(n_table - 1))
        n_probe = int(np.bincount(j, minlength=n_table).max())
        if n_probe <= target_probes or n_table * 2 > max_table:
            break
        n_table *= 2
    # j is non-decreasing in the edge index (the mapping is monotone), so the
    # start of sub-bucket b is the number of edges mapped below b: every x in
    # b is above those edges (conservative), and at most the edges mapped to
    # b itself -- n_probe of them -- lie between that start and x's bin.
    table = np.searchsorted(j, np.arange(n_table), side="left").astype(np.int32)
    table.flags.writeable = False
    return HistIndex(e, padded, False, n_probe, lo, inv, table)


class _CHist:
    """``fd_hist_update`` of ``kernels/fd_hist.c``."""

    @staticmethod
    def update(view, index: HistIndex, counts: np.ndarray, specials: np.ndarray) -> int:
        sp = ptr("int64_t*", specials)
        return lib.fd_hist_update(column(view), index.c_index, ptr("int64_t*", counts), sp, sp + 1)


class _NumbaHist:
    """The same call on :mod:`.numba_hist`, whose path the index picks as fd_hist.c does."""

    def __init__(self):
        from . import numba_hist  # numba loads only when this backend is used

        self.k = numba_hist

    def update(self, view, index: HistIndex, counts: np.ndarray, specials: np.ndarray) -> int:
        k = self.k
        if index.n_edges <= k.CMP_EDGES:
            # fd_hist.c's runs of valid values (a block with nulls: its valid values copied together)
            for values, validity, offset, length in float64_pieces(view):
                if length:
                    k.hist_cmp(values, validity, offset, length, index.padded, counts, specials)
            return FD_OK
        if index.arith:
            plan = index.ma_plan
            if plan is not None:
                xlo, xhi, c = plan
                for values, validity, offset, length in float64_pieces(view):
                    if length:
                        k.hist_ma(values, validity, offset, length, index.padded, xlo, xhi, index.inv_width,
                                  c, counts, specials)
                return FD_OK
            top = float(index.n_edges) - 0.5
            for values, validity, offset, length in float64_pieces(view):
                if length:
                    k.hist_arith(values, validity, offset, length, index.padded, index.lo, index.inv_width,
                                 top, counts, specials)
            return FD_OK
        if index.uniform:
            mode, top, te = k.M_UNIFORM, float(index.n_edges), index.padded
        else:
            # a table has an edge in one of its sub-buckets at least: n_probe >= 1, as hist_run needs
            mode = k.M_P1 if index.n_probe == 1 else k.M_PN
            top, te = float(index.n_table - 1), index.table_edges
        args = (index.padded, index.table, te, index.lo, index.inv_width, top, index.n_probe, mode,
                counts, specials)
        for values, validity, offset, length in float64_pieces(view):
            if length:
                k.hist_run(values, validity, offset, length, *args)
        return FD_OK


#: The histogram's backend objects.
HIST = Family("histogram", c=_CHist, numba=_NumbaHist)


def hist_update(view, index: HistIndex, counts: np.ndarray, specials: np.ndarray,
                backend: Optional[str] = None) -> None:
    """Count one column chunk into a histogram, in place.

    Parameters
    ----------
    view : fastdrift.adapters.arrow.ColumnView
        One chunk, from :func:`~fastdrift.adapters.arrow.iter_columns`.
    index : HistIndex
        From :func:`make_index`.
    counts : numpy.ndarray
        int64[n_edges + 1]; ``counts[i]`` gains the values with ``i`` edges <= them.
    specials : numpy.ndarray
        int64[2] = [null, nan], incremented.
    backend : {"c", "numba"}, optional
        Defaults to ``get_backend("histogram")``.

    Raises
    ------
    SchemaError
        If the column is not numeric.
    InvalidInputError
        If ``counts`` / ``specials`` have the wrong shape or dtype.
    """
    check_out(counts, np.int64, index.n_edges + 1, "counts")
    check_out(specials, np.int64, 2, "specials")
    if numeric_values(view, "a histogram needs", specials, 0):
        check(HIST(backend).update(view, index, counts, specials), "histogram", view.name)
