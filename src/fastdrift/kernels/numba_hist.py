"""The numba twin of ``kernels/fd_hist.c``: the histogram over a :class:`~fastdrift.kernels.hist.HistIndex`.

Every chunk takes one of two run paths (a block with nulls: its valid values copied together
first, a bitmap byte at a time, as fd_hist.c does).  :func:`hist_cmp` (at most ``CMP_EDGES`` edges,
as fd_hist.c): per block of values, one pass per edge counting the values ``>=`` it, a loop LLVM
vectorises.  :func:`hist_run` (more edges: the uniform and table paths), :func:`hist_ma` (the
arith path where ``HistIndex.ma_plan`` holds: the pair table's bins by a multiply and an add) and
:func:`hist_arith` (the other arith indexes), per block of ``_SMALL_BLOCK`` values (``_BLOCK`` with
a table beyond the L1 cache),
passes over the block -- the arithmetic of every value (the arith bin, the uniform guess or
the table's sub-bucket, and the NaN count), branch-free and vectorised; on the uniform and table
paths the table and edge loads in place on the block's int32 bins, scalar (LLVM emits no gathers for Zen 4: a plain
``out[i] = table[idx[i]]`` loop stays scalar), with the first probe's edge read from
``HistIndex.table_edges`` rather than through the table; and the increments, round-robin into 4
private sub-histograms (on the arith path, then the rare values near a bin's boundary moved to
their exact bin).  Every entry here is compiled for float64 values only (one per dtype took
the module 165 s to compile cold); the caller converts other dtypes, exactly, a piece at a time
(``kernels.float64_pieces``).
fd_hist.c counts equal widths into a pair table (one increment per pair
of values) and quantile edges through a bucket table held in AVX-512 registers instead; numba has
neither the 16-bit permutes for the latter, and its pair count ran slower than the 4 ways
(docs/performance.md).  Counts are exact on every path, so they equal the C kernel's.

Keeping the probe branch-free: LLVM readily turns ``b += x >= e[b]`` into a compare-and-branch
(x86's cmov converter does so when it believes the branch is predictable), and a mispredicted
branch per probe costs far more than the probe itself.  The comparison result is therefore used only
as an integer in arithmetic (``np.int64(x >= e[b])``) and the sub-bucket table keeps the probe
count at 1-2, so that each probe is a load, a compare, a ``setcc`` and an add.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .hist import ARITH_TOL, MA_S, MA_TOL
from .numba_common import DBL_MAX, INLINE, NUMBA_OPTIONS, ro, rw

__all__ = ["hist_arith", "hist_cmp", "hist_ma", "hist_run"]

# Path selectors of hist_run (M_ARITH: hist_arith), as in fd_hist.c (numba specialises one-probe
# tables and the general probe loop; fd_hist.c also unrolls two and three probes).
M_UNIFORM = 0
M_P1 = 1
M_PN = 4
M_ARITH = 6
M_MA = 7


@njit(**NUMBA_OPTIONS)
def _bin_near(e, xc, b):
    # The exact bin by search from b: the rare arith values near a boundary.
    while b > 0 and xc < e[b - 1]:
        b -= 1
    while xc >= e[b]:
        b += 1
    return b


@njit(**INLINE)
def _clamp(t, lo, hi):
    """t within [lo, hi] by two compare-selects (NaN goes to lo), as in fd_hist.c."""
    t = t if t > lo else lo
    return t if t < hi else hi


_WAYS = 4          # private sub-histograms, as FD_HIST_WAYS in fd_hist.c
_LOCAL_BINS = 512  # above this many bins every way is counts itself


# ---- the run paths (fd_hist.c, "runs of valid values") ----------------------------------------

#: At most this many edges: counts from compares (FD_HIST_CMP_EDGES).
CMP_EDGES = 16
_BLOCK = 1024    # values per block where the lookups leave the L1 cache (tables over _SMALL_TABLE)
#: Values per block otherwise: a few L1-resident passes over it.  Against blocks of 1,024, 1e7
#: normal values on the Zen 3, interleaved in one process (docs/performance.md): 100 uniform bins
#: (hist_ma) 0.90-0.92 against 0.95-0.99 ns a value, 100 quantile bins (a table of 512) 1.34-1.35
#: against 1.47-1.49, 10 quantile bins (hist_cmp) 0.74-0.77 against 0.84-0.87; 100 lognormal
#: quantiles (a table of 16,384) 1.79-1.85 against 1.66-1.71, so they keep _BLOCK.
_SMALL_BLOCK = 256
_SMALL_TABLE = 1024


@njit(**INLINE)
def _block_values(values, validity, s, end, buf):
    """(values of [s, end) to count, nulls among them): the slice itself without a bitmap, else the
    valid ones copied together into ``buf`` (fd_hist.c's hist_runs copies a block with a null the
    same way; counts do not depend on the order)."""
    if validity.size == 0:
        return values[s:end], 0
    k = 0
    pos = s
    while pos < end and (pos & 7):
        buf[k] = values[pos]
        k += np.int64((validity[pos >> 3] >> (pos & 7)) & 1)
        pos += 1
    while pos + 8 <= end:  # a bitmap byte at a time
        m = np.int64(validity[pos >> 3])
        for b in range(8):
            buf[k] = values[pos + b]
            k += (m >> b) & 1
        pos += 8
    while pos < end:
        buf[k] = values[pos]
        k += np.int64((validity[pos >> 3] >> (pos & 7)) & 1)
        pos += 1
    return buf[:k], (end - s) - k


@njit(**INLINE)
def _count_ge(v, ek):
    c = 0
    for i in range(v.size):
        c += np.int64(np.float64(v[i]) >= ek)
    return c


@njit(**INLINE)
def _count_ge4(v, e0, e1, e2, e3):
    """(_count_ge of v for e0, e1, e2, e3) in one pass."""
    c0 = 0
    c1 = 0
    c2 = 0
    c3 = 0
    for i in range(v.size):
        x = np.float64(v[i])
        c0 += np.int64(x >= e0)
        c1 += np.int64(x >= e1)
        c2 += np.int64(x >= e2)
        c3 += np.int64(x >= e3)
    return c0, c1, c2, c3


@njit(**INLINE)
def _count_nan(v):
    c = 0
    for i in range(v.size):
        x = np.float64(v[i])
        c += np.int64(x != x)
    return c


def _cmp_sigs():
    return [types.void(ro(types.float64), ro(types.uint8), types.int64, types.int64, ro(types.float64),
                       rw(types.int64), rw(types.int64))]


@njit(**INLINE)
def _cmp_block(v, e, ge, ne):
    # One block of hist_cmp: the values >= each edge into ge; returns its NaN count.
    k = 0
    while k + 4 <= ne:
        c0, c1, c2, c3 = _count_ge4(v, e[k], e[k + 1], e[k + 2], e[k + 3])
        ge[k] += c0
        ge[k + 1] += c1
        ge[k + 2] += c2
        ge[k + 3] += c3
        k += 4
    for k in range(k, ne):
        ge[k] += _count_ge(v, e[k])
    return _count_nan(v)


@njit(_cmp_sigs(), **NUMBA_OPTIONS)
def hist_cmp(values, validity, offset, length, e, counts, specials):
    """A chunk (``validity`` empty: no bitmap), ``counts.size - 1 <= CMP_EDGES`` edges: ge[k], the
    values >= e[k], block by block; bin k holds ge[k-1] - ge[k].  NaN is >= no edge: it is in bin
    0's share and counted apart.  Four edges a pass over the L1-resident block, then one at a time
    (a pass an edge: 9 edges 0.82 against 0.70 ns a value, 12 edges 1.36 against 1.04; eight a
    pass measured the same as four)."""
    ne = counts.shape[0] - 1
    ge = np.zeros(ne, np.int64)
    end = offset + length
    nan = 0
    nul = 0
    if validity.size == 0:  # the blocks as slices of values, in a loop of their own (see _run_loop)
        for s in range(offset, end, _SMALL_BLOCK):
            nan += _cmp_block(values[s:min(s + _SMALL_BLOCK, end)], e, ge, ne)
    else:
        buf = np.empty(_SMALL_BLOCK, np.float64)
        for s in range(offset, end, _SMALL_BLOCK):
            v, b_nul = _block_values(values, validity, s, min(s + _SMALL_BLOCK, end), buf)
            nul += b_nul
            nan += _cmp_block(v, e, ge, ne)
    counts[0] += length - nul - ge[0] - nan
    specials[0] += nul
    for k in range(1, ne):
        counts[k] += ge[k - 1] - ge[k]
    counts[ne] += ge[ne - 1]
    specials[1] += nan


#: 2^52: the doubles of [2^52, 2^53) are the integers, their low mantissa bits the integer's.
_TWO52 = 4503599627370496.0


@njit(**INLINE)
def _arith_block(v, lo, inv, top, w):
    # Pass 1 of hist_run's arith path (fd_hist.c's arith8m_avx2, in plain code LLVM vectorises):
    # u = clamp((x - lo) * inv, -0.5, top) + 1, then t = u + (2^52 - 1/2), one rounding to an
    # integer of [2^52, 2^53): t - 2^52 is u - 1/2 rounded to nearest, which is floor(u) unless u is
    # an integer (a tie may round down); fr = u - (t - 2^52), exact, is then 0 or 1 and the value is
    # flagged, as is every u within ARITH_TOL of an integer (|fr - 1/2| > 1/2 - ARITH_TOL, exact:
    # fr - 1/2 needs no more bits than u).  So an unflagged value's bin int(u) is the low 32 bits
    # of t, with no conversion (float64 -> int32 and back took this pass from 0.56-0.65 to
    # 0.73 ns a value, docs/performance.md).  w[i] = t, negated when flagged (its low bits kept:
    # it is counted in bin int(u) like the others, and moved by _arith_fix).  NaN takes u = 1/2:
    # bin 0, unflagged.  Returns the NaN count and the number flagged.
    nan = 0
    near = 0
    for i in range(v.size):
        x = np.float64(v[i])
        nan += np.int64(x != x)
        u = _clamp((x - lo) * inv, -0.5, top) + 1.0
        t = u + (_TWO52 - 0.5)
        f = abs(u - (t - _TWO52) - 0.5) > 0.5 - ARITH_TOL
        near += np.int64(f)
        w[i] = -t if f else t
    return nan, near


@njit(**INLINE)
def _arith_fix(v, e, w, sub):
    # The flagged values of a block (about 1 in 2,000): moved from the bin of their guess, where
    # _count_block counted them, to the exact one.
    for i in range(v.size):
        if w[i] < 0.0:
            x = np.float64(v[i])
            k = np.int64(-w[i] - _TWO52)
            b = _bin_near(e, DBL_MAX if x > DBL_MAX else x, k)
            sub[k] -= 1
            sub[b] += 1


@njit(**INLINE)
def _guess_block(v, lo, inv, top, mode, j):
    # Pass 1 of hist_run's other paths: the bin arithmetic (fd_hist.c's) for every value of the
    # block, branch-free, a loop LLVM vectorises.  Into j: the uniform path's clamped guess; the
    # table path's sub-bucket.  Returns the NaN count.
    nan = 0
    for i in range(v.size):
        x = np.float64(v[i])
        nan += np.int64(x != x)
        if mode == M_UNIFORM:
            t = (x - lo) * inv + 1.0
            t = _clamp(t, 1.0, top)
            j[i] = np.int32(t)
        else:
            t = (x - lo) * inv
            t = _clamp(t, 0.0, top)
            j[i] = np.int32(t)
    return nan


@njit(**INLINE)
def _finish_block(v, e, table, te, n_probe, mode, j):
    # Pass 2 of hist_run's uniform and table paths, in place on j: the rest of the bin from the
    # guess, the loads of table and edges (scalar: LLVM emits no gathers for Zen 4).  The first
    # probe reads te[g], the edge table[g], so that its load does not wait for the one of
    # table[g].  Each j[i] is read, then written: stores to a separate array aliased (4 KiB apart)
    # the loads of later values and cost 0.2 ns a value.
    one = np.uint32(1)
    for i in range(v.size):
        x = np.float64(v[i])
        xc = DBL_MAX if x > DBL_MAX else x
        g = np.uint32(j[i])
        if mode == M_UNIFORM:
            j[i] = g - np.uint32(xc < e[g - one]) + np.uint32(xc >= e[g])
        else:
            b = np.uint32(table[g]) + np.uint32(xc >= te[g])
            if mode == M_PN:
                for _ in range(n_probe - 1):
                    b += np.uint32(xc >= e[b])
            j[i] = b


@njit(**INLINE)
def _count_block(j, m, sub, stride):
    # Pass 3 of hist_run: round-robin into 4 sub-histograms stride apart in sub (stride 0: all
    # four are sub itself).  j: int32 bins, or the arith path's int64 view of its w, whose low 32
    # bits are the bins.
    i = 0
    s1 = np.uint32(stride)
    s2 = np.uint32(2 * stride)
    s3 = np.uint32(3 * stride)
    while i + 4 <= m:
        sub[np.uint32(j[i])] += 1
        sub[np.uint32(j[i + 1]) + s1] += 1
        sub[np.uint32(j[i + 2]) + s2] += 1
        sub[np.uint32(j[i + 3]) + s3] += 1
        i += 4
    while i < m:
        sub[np.uint32(j[i])] += 1
        i += 1


#: hist_ma's constants (kernels.hist: MA_S, MA_TOL, the encoding of 1.5 * 2^32, whose low 32
#: bits are 0): the fraction's mask, the tolerance and twice it, in units of 2^-MA_S.
_MA_MASK = (1 << MA_S) - 1
_MA_BIN = (1 << (32 - MA_S)) - 1
_MA_TOL = int(MA_TOL * 2 ** MA_S)
_MA_TOL2 = 2 * _MA_TOL


@njit(**INLINE)
def _ma_near(b):
    # 1 if t (the low 32 bits of b) has its fraction within MA_TOL of an integer: ((t + tol) &
    # mask) < 2 tol, on the low MA_S bits, which b's are.
    return np.int64(((b + _MA_TOL) & _MA_MASK) < _MA_TOL2)


@njit(**INLINE)
def _ma_block(v, xlo, xhi, inv, c, w, bits, j):
    # Pass 1 of hist_ma, one loop LLVM vectorises: v = clamp(x, xlo, xhi) * inv + c into w (NaN
    # takes xlo: bin 0), read back through its int64 view in the same iteration; the bin, bits
    # MA_S..31, into j.  Returns the NaN count and whether a value lies within MA_TOL of a
    # boundary (an OR: 0.92 against 0.98 ns a value for the block with their count, int64 or
    # uint32 lanes alike; without either 0.85, docs/performance.md).
    nan = 0
    near = 0
    for i in range(v.size):
        x = np.float64(v[i])
        nan += np.int64(x != x)
        w[i] = _clamp(x, xlo, xhi) * inv + c
        b = bits[i]
        j[i] = np.int32((b >> MA_S) & _MA_BIN)
        near |= _ma_near(b)
    return nan, near


@njit(**INLINE)
def _ma_fix(v, e, bits, j, sub):
    # The values of a block within MA_TOL of a boundary (1 in 65,536 at random: 1 block of 256 in
    # 256): moved from the bin of their t, where _count_block counted them, to the exact one.
    for i in range(v.size):
        if _ma_near(bits[i]):
            x = np.float64(v[i])
            k = np.int64(j[i])
            b = _bin_near(e, DBL_MAX if x > DBL_MAX else x, k)
            sub[k] -= 1
            sub[b] += 1


@njit(**INLINE)
def _ways(counts):
    # (sub, stride): _WAYS private sub-histograms stride apart, or, above _LOCAL_BINS bins,
    # counts itself (stride 0: _count_block's four ways are then all counts).
    nb = counts.shape[0]
    if nb <= _LOCAL_BINS:
        return np.zeros(_WAYS * nb, np.int64), nb
    return counts, 0


@njit(**INLINE)
def _fold_ways(counts, sub, stride):
    # The sub-histograms of _ways into counts.
    for b in range(stride):
        counts[b] += sub[b] + sub[stride + b] + sub[2 * stride + b] + sub[3 * stride + b]


@njit(**INLINE)
def _run_block(v, e, table, te, lo, inv, top, c, n_probe, mode, sub, stride, j, w, bits):
    # One block's passes on the path of mode, its values counted into sub; returns its NaN count.
    if mode == M_ARITH:
        nan, near = _arith_block(v, lo, inv, top, w)
        _count_block(bits, v.size, sub, stride)
        if near:
            _arith_fix(v, e, w, sub)
    elif mode == M_MA:
        nan, near = _ma_block(v, lo, top, inv, c, w, bits, j)
        _count_block(j, v.size, sub, stride)
        if near:
            _ma_fix(v, e, bits, j, sub)
    else:
        nan = _guess_block(v, lo, inv, top, mode, j)
        _finish_block(v, e, table, te, n_probe, mode, j)
        _count_block(j, v.size, sub, stride)
    return nan


@njit(**INLINE)
def _run_loop(values, validity, offset, length, e, table, te, lo, inv, top, c, n_probe, mode, counts, specials):
    # M_MA: lo and top are ma_plan's xlo and xhi, c its offset (unused by the other modes).
    # Without a bitmap the blocks are slices of values in a loop of their own: through
    # _block_values, whose result is a slice of values or of buf, LLVM's code for the passes took
    # 10 % longer (hist_ma, 1e7 normal values, 100 uniform bins, the two interleaved in one
    # process on the Zen 3: B/A 0.89-0.91, docs/performance.md).
    sub, stride = _ways(counts)
    blk = _SMALL_BLOCK if table.size <= _SMALL_TABLE else _BLOCK
    j = np.empty(blk, np.int32)
    w = np.empty(blk, np.float64)
    bits = w.view(np.int64)
    end = offset + length
    nan = 0
    nul = 0
    if validity.size == 0:
        for s in range(offset, end, blk):
            nan += _run_block(values[s:min(s + blk, end)], e, table, te, lo, inv, top, c, n_probe, mode, sub,
                              stride, j, w, bits)
    else:
        buf = np.empty(blk, np.float64)
        for s in range(offset, end, blk):
            v, b_nul = _block_values(values, validity, s, min(s + blk, end), buf)
            nul += b_nul
            nan += _run_block(v, e, table, te, lo, inv, top, c, n_probe, mode, sub, stride, j, w, bits)
    _fold_ways(counts, sub, stride)
    # NaN compared false everywhere and landed in the fixed bin of its path: 0 on the arith paths
    # (hist_ma's clamp takes it to xlo), 1 on the uniform path, table[0] otherwise (as in fd_hist.c).
    if mode == M_ARITH or mode == M_MA:
        counts[0] -= nan
    elif mode == M_UNIFORM:
        counts[1] -= nan
    else:
        counts[table[0]] -= nan
    specials[1] += nan
    specials[0] += nul


def _run_sigs():
    # float64 values only: the caller converts other dtypes a piece at a time (one compiled
    # entry, of 5-6 s, instead of one per dtype).
    return [types.void(ro(types.float64), ro(types.uint8), types.int64, types.int64, ro(types.float64),
                       ro(types.int32), ro(types.float64), types.float64, types.float64, types.float64,
                       types.int64, types.int64, rw(types.int64), rw(types.int64))]


@njit(_run_sigs(), **NUMBA_OPTIONS)
def hist_run(values, validity, offset, length, e, table, te, lo, inv, top, n_probe, mode, counts, specials):
    """A chunk (``validity`` empty: no bitmap; else each block's valid values are copied together
    first) on a uniform or table index: ``mode`` is ``M_UNIFORM``, ``M_P1`` or ``M_PN``, ``lo``,
    ``inv``, ``top`` and ``n_probe`` (at least 1) those of the per-value path, ``te`` (table paths)
    the edge each sub-bucket starts at, ``e[table]``.  Per block of ``_SMALL_BLOCK`` values (``_BLOCK``
    with a table of more than ``_SMALL_TABLE`` entries), three
    passes: the arithmetic of every value (vectorised), the loads of table and edges, and the
    increments, round-robin into ``_WAYS`` sub-histograms."""
    if mode == M_UNIFORM:
        _run_loop(values, validity, offset, length, e, table, te, lo, inv, top, 0.0, n_probe, M_UNIFORM, counts, specials)
    elif mode == M_P1:
        _run_loop(values, validity, offset, length, e, table, te, lo, inv, top, 0.0, n_probe, M_P1, counts, specials)
    else:
        _run_loop(values, validity, offset, length, e, table, te, lo, inv, top, 0.0, n_probe, M_PN, counts, specials)


def _ma_sigs():
    return [types.void(ro(types.float64), ro(types.uint8), types.int64, types.int64, ro(types.float64),
                       types.float64, types.float64, types.float64, types.float64, rw(types.int64), rw(types.int64))]


@njit(_ma_sigs(), **NUMBA_OPTIONS)
def hist_ma(values, validity, offset, length, e, xlo, xhi, inv, c, counts, specials):
    """An arith index whose :func:`~fastdrift.kernels.hist.ma_plan` holds (``xlo``, ``xhi``,
    ``c``): per block, one pass of the bins by a multiply and an add (fd_hist.c's pair table
    takes them by one multiply-add, the same way), the increments into 4 sub-histograms, and,
    in the rare block with a value within ``MA_TOL`` of a boundary, the exact bins of those.
    Against :func:`hist_arith`, whose tolerance (``ARITH_TOL``, 2^-12) sent 1 value in 2,048 to
    that pass, and whose bins take more operations, see docs/performance.md."""
    _run_loop(values, validity, offset, length, e, e.view(np.int32), e, xlo, inv, xhi, c, 1, M_MA, counts, specials)


def _arith_sigs():
    return [types.void(ro(types.float64), ro(types.uint8), types.int64, types.int64, ro(types.float64),
                       types.float64, types.float64, types.float64, rw(types.int64), rw(types.int64))]


@njit(_arith_sigs(), **NUMBA_OPTIONS)
def hist_arith(values, validity, offset, length, e, lo, inv, top, counts, specials):
    """:func:`hist_run` on an arith index (``top`` = n_edges - 1/2): the arithmetic pass, the
    increments and the rare exact searches.  An entry of its own: inside hist_run, beside the
    other paths' loops, LLVM's code for it took 8 % longer (1.27-1.31 against 1.17-1.23 ns a
    value, 1e7 normal values, 100 uniform bins, the two interleaved in one process, minimum of
    40 calls each)."""
    # the arith path reads no table: e stands in for table and te (the view only types the argument)
    _run_loop(values, validity, offset, length, e, e.view(np.int32), e, lo, inv, top, 0.0, 1, M_ARITH, counts, specials)
