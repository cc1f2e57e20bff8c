"""The numba backend: every kernel of ``kernels/*.c`` written again as plain
loops, with the same results bit for bit.

* histogram (``fd_hist.c``): :func:`hist_update`;
* moments (``fd_moments.c``): :func:`moments_update`;
* exact quantiles, grid passes (``fd_select.c``): :func:`grid_count`,
  :func:`grid_select`;
* categorical counts (``fd_cat.c``): :func:`hash_bytes`, :func:`hash_int`,
  :func:`cat_run_str`, :func:`cat_run_int`, :func:`cat_rehash`,
  :func:`count_indices`, :func:`bool_count`.

This is the only module that imports numba, and it is imported lazily (by
:mod:`~fastdrift.kernels.hist`, :mod:`~fastdrift.kernels.moments`,
:mod:`~fastdrift.kernels.quantile` and :mod:`~fastdrift.kernels.cat`) the
first time the numba backend runs, never at ``import fastdrift``.

Every kernel is compiled eagerly from explicit signatures, one per supported
dtype (so the first call of a service does not pay type inference), with the
options of :data:`NUMBA_OPTIONS`, and cached on disk.  Input arrays are typed
read-only because the values and validity are numpy views over immutable
Arrow buffers; numba accepts writable arrays for read-only parameters.

Numeric kernels
---------------
Keeping the histogram probe branch-free: LLVM readily turns
``b += x >= e[b]`` into a compare-and-branch (x86's cmov converter does so
when it believes the branch is predictable), and a mispredicted branch per
probe makes the histogram 6-7x slower.  The comparison result is therefore
used only as an integer in arithmetic (``np.int64(x >= e[b])``) and the
sub-bucket table keeps the probe count at 1-2, so that each probe is a load,
a compare, a ``setcc`` and an add.

The grid passes of the exact quantiles must put every value in the same cell
as ``fd_select.c`` does (a value is selected exactly when it was counted in a
flagged cell, whichever backend ran either pass), so the cell is computed
with C's arithmetic: scale in double, clamp in double, then truncate.

Categorical kernels
-------------------
The hash table lives in caller-owned numpy arrays that the C backend reads
and writes too, so these functions must hash, probe, insert and report
``FD_EGROW`` exactly like their C twins: a table filled by one backend can be
continued by the other, and the tests compare both bit for bit.

Integer arithmetic on hashes is done in ``uint64`` throughout because numba
(like numpy) promotes ``uint64 op int64`` to ``float64``, which would
silently change the hash.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types

__all__ = [
    "NUMBA_OPTIONS", "VALUE_TYPES",
    "hist_update", "moments_update",
    "grid_count", "grid_select", "grid_count_select",
    "hash_bytes", "hash_int", "cat_run_str", "cat_run_int", "cat_rehash", "count_indices", "bool_count",
]

#: Every numba option this backend uses, in one place.
NUMBA_OPTIONS = dict(nogil=True, cache=True, error_model="numpy", boundscheck=False, fastmath=False)
# Helpers are inlined at the numba IR level into their callers, so only the
# callers' compiled code (and cache entries) contain them.  cache=True still
# matters for the helpers declared with signatures, which numba compiles
# eagerly at import as well; on lazily typed helpers it is a no-op.
_INLINE = dict(NUMBA_OPTIONS, inline="always")

_INT_DTYPES = (types.int8, types.int16, types.int32, types.int64,
               types.uint8, types.uint16, types.uint32, types.uint64)
#: numba element types of numeric columns, one compiled specialisation each.
VALUE_TYPES = (types.float64, types.float32) + _INT_DTYPES


def _ro(dt):
    return types.Array(dt, 1, "C", readonly=True)


def _ro_unaligned(dt):
    # Arrow buffers arrive as read-only, possibly unaligned numpy views;
    # writable and aligned arrays convert to this type safely.
    return types.Array(dt, 1, "C", readonly=True, aligned=False)


def _rw(dt):
    return types.Array(dt, 1, "C")


# Status codes of kernels/fastdrift.h.
FD_OK = 0
FD_EINVAL = 1
FD_EGROW = 3
FD_ECORRUPT = 4

_DBL_MAX = np.finfo(np.float64).max


# ---- histogram -----------------------------------------------------------------

# Path selectors for the histogram, as in fd_hist.c (numba specialises one-probe tables and the
# general probe loop; fd_hist.c also unrolls two and three probes).
M_UNIFORM = 0
M_P1 = 1
M_PN = 4


@njit(**_INLINE)
def _bin(x, e, table, lo, inv, top, n_probe, mode):
    # NaN stays NaN (it is counted apart and subtracted from its fixed bin);
    # +inf becomes DBL_MAX so that it cannot step past the +inf sentinels.
    xc = _DBL_MAX if x > _DBL_MAX else x
    if mode == M_UNIFORM:
        t = (x - lo) * inv + 1.0
        t = t if t > 1.0 else 1.0
        t = t if t < top else top
        b = np.int64(t)
        return b - np.int64(xc < e[b - 1]) + np.int64(xc >= e[b])
    t = (x - lo) * inv
    t = t if t > 0.0 else 0.0
    t = t if t < top else top
    b = np.int64(table[np.int64(t)])
    if mode == M_P1:
        b += np.int64(xc >= e[b])
    else:
        for _ in range(n_probe):
            b += np.int64(xc >= e[b])
    return b


_WAYS = 4          # private sub-histograms, as FD_HIST_WAYS in fd_hist.c
_LOCAL_BINS = 512  # above this many bins every way is counts itself


@njit(**_INLINE)
def _hist_loop(values, validity, offset, length, e, table, lo, inv, top, n_probe, mode,
               counts, specials):
    # Consecutive values hitting the same counter serialise on store-to-load
    # forwarding; counting round-robin into _WAYS sub-histograms avoids it.
    # x != x is always False for integer inputs (LLVM folds it after the
    # int-to-double conversion), so one body serves every dtype.
    nb = counts.shape[0]
    local = nb <= _LOCAL_BINS
    if local:
        sub = np.zeros((_WAYS, nb), dtype=np.int64)
    else:
        sub = counts.reshape((1, nb))
    nway = sub.shape[0] - 1  # index mask: 3 with local ways, 0 otherwise
    nan = 0
    nul = 0
    if validity.size == 0:
        for i in range(length):
            x = np.float64(values[offset + i])
            sub[i & nway, _bin(x, e, table, lo, inv, top, n_probe, mode)] += 1
            nan += np.int64(x != x)
    else:
        pos = offset
        end = offset + length
        # Leading bits up to a bitmap byte boundary, whole bytes (one
        # validity load per 8 values, no per-value work for all-null bytes),
        # then the tail.  A null slot is counted with weight 0.
        while pos < end and (pos & 7) != 0:
            w = np.int64((validity[pos >> 3] >> (pos & 7)) & 1)
            x = np.float64(values[pos])
            sub[0, _bin(x, e, table, lo, inv, top, n_probe, mode)] += w
            nan += w & np.int64(x != x)
            nul += 1 - w
            pos += 1
        while pos + 8 <= end:
            m = np.int64(validity[pos >> 3])
            if m == 0xFF:
                for k in range(8):
                    x = np.float64(values[pos + k])
                    sub[k & nway, _bin(x, e, table, lo, inv, top, n_probe, mode)] += 1
                    nan += np.int64(x != x)
            elif m == 0:
                nul += 8
            else:
                for k in range(8):
                    w = (m >> k) & 1
                    x = np.float64(values[pos + k])
                    sub[k & nway, _bin(x, e, table, lo, inv, top, n_probe, mode)] += w
                    nan += w & np.int64(x != x)
                    nul += 1 - w
            pos += 8
        while pos < end:
            w = np.int64((validity[pos >> 3] >> (pos & 7)) & 1)
            x = np.float64(values[pos])
            sub[0, _bin(x, e, table, lo, inv, top, n_probe, mode)] += w
            nan += w & np.int64(x != x)
            nul += 1 - w
            pos += 1
    if local:
        for b in range(nb):
            counts[b] += sub[0, b] + sub[1, b] + sub[2, b] + sub[3, b]
    # NaN compared false everywhere and landed in a fixed bin: 1 on the
    # uniform path, table[0] otherwise.
    if mode == M_UNIFORM:
        counts[1] -= nan
    else:
        counts[table[0]] -= nan
    specials[0] += nul
    specials[1] += nan


def _hist_sigs():
    return [types.void(_ro(t), _ro(types.uint8), types.int64, types.int64, _ro(types.float64),
                       _ro(types.int32), types.float64, types.float64, types.float64, types.int64,
                       _rw(types.int64), _rw(types.int64))
            for t in VALUE_TYPES]


# One compiled entry per path (uniform, one probe -- the common table case
# -- and any probe count), so the path is a compile-time constant inside the
# loop.  A separate two-probe entry was not worth its compile time.
@njit(_hist_sigs(), **NUMBA_OPTIONS)
def _hist_uniform(values, validity, offset, length, e, table, lo, inv, top, n_probe, counts, specials):
    _hist_loop(values, validity, offset, length, e, table, lo, inv, top, n_probe, M_UNIFORM,
               counts, specials)


@njit(_hist_sigs(), **NUMBA_OPTIONS)
def _hist_p1(values, validity, offset, length, e, table, lo, inv, top, n_probe, counts, specials):
    _hist_loop(values, validity, offset, length, e, table, lo, inv, top, n_probe, M_P1,
               counts, specials)


@njit(_hist_sigs(), **NUMBA_OPTIONS)
def _hist_pn(values, validity, offset, length, e, table, lo, inv, top, n_probe, counts, specials):
    _hist_loop(values, validity, offset, length, e, table, lo, inv, top, n_probe, M_PN,
               counts, specials)


def hist_update(values, validity, offset, length, edges, uniform, n_probe, lo, inv_width,
                table, n_table, counts, specials):
    """Count one column into a histogram (numba backend of ``fd_hist_update``).

    Parameters
    ----------
    values, validity : numpy.ndarray
        The whole Arrow values buffer (any supported numeric dtype) and the
        validity bitmap (an empty uint8 array when every value is valid).
    offset, length : int
        The Arrow array's element offset and length.
    edges : numpy.ndarray
        float64 edges followed by +inf sentinels.
    uniform : bool
        Use the arithmetic path (only if the index proved it exact).
    n_probe : int
        Forward compares after the table lookup.
    lo, inv_width : float
        Sub-bucket (or uniform bin) origin and inverse width.
    table : numpy.ndarray
        int32 starting bin per sub-bucket.
    n_table : int
        Number of sub-buckets.
    counts : numpy.ndarray
        int64[n_edges + 1], updated in place.
    specials : numpy.ndarray
        int64[2] = [null, nan], updated in place.
    """
    if length == 0:
        return
    n_edges = counts.shape[0] - 1
    if uniform:
        _hist_uniform(values, validity, offset, length, edges, table, lo, inv_width,
                      float(n_edges), n_probe, counts, specials)
        return
    fn = _hist_p1 if n_probe == 1 else _hist_pn
    fn(values, validity, offset, length, edges, table, lo, inv_width, float(n_table - 1),
       n_probe, counts, specials)


# ---- moments -----------------------------------------------------------------

_BLOCK = 1024  # moments block size, as FD_MOM_BLOCK in fd_moments.c


@njit(**_INLINE)
def _chan_merge(ints, flts, nb, sum_b, mean_b, m2_b, mn_b, mx_b):
    if nb == 0:
        return
    if ints[0] == 0:
        # Copy rather than merge so the empty side's mean cannot add rounding.
        ints[0] = nb
        flts[2] = sum_b
        flts[3] = mean_b
        flts[4] = m2_b
    else:
        na = np.float64(ints[0])
        nbd = np.float64(nb)
        n = na + nbd
        delta = mean_b - flts[3]
        flts[3] += delta * (nbd / n)
        flts[4] += m2_b + delta * delta * (na * nbd / n)
        flts[2] += sum_b
        ints[0] += nb
    flts[0] = mn_b if mn_b < flts[0] else flts[0]
    flts[1] = mx_b if mx_b > flts[1] else flts[1]


@njit(**_INLINE)
def _reduce_block(ints, flts, buf, k):
    # Four independent accumulators: a single running sum serialises on the
    # floating-point add latency.
    if k == 0:
        return
    s0 = s1 = s2 = s3 = 0.0
    mn0 = mn1 = mn2 = mn3 = _DBL_MAX
    mx0 = mx1 = mx2 = mx3 = -_DBL_MAX
    k4 = k - (k & 3)
    for i in range(0, k4, 4):
        a = buf[i]
        b = buf[i + 1]
        c = buf[i + 2]
        d = buf[i + 3]
        s0 += a
        s1 += b
        s2 += c
        s3 += d
        mn0 = a if a < mn0 else mn0
        mn1 = b if b < mn1 else mn1
        mn2 = c if c < mn2 else mn2
        mn3 = d if d < mn3 else mn3
        mx0 = a if a > mx0 else mx0
        mx1 = b if b > mx1 else mx1
        mx2 = c if c > mx2 else mx2
        mx3 = d if d > mx3 else mx3
    for i in range(k4, k):
        a = buf[i]
        s0 += a
        mn0 = a if a < mn0 else mn0
        mx0 = a if a > mx0 else mx0
    s = (s0 + s1) + (s2 + s3)
    mn = min(min(mn0, mn1), min(mn2, mn3))
    mx = max(max(mx0, mx1), max(mx2, mx3))
    mean = s / k
    m0 = m1 = m2_ = m3 = 0.0
    for i in range(0, k4, 4):
        d0 = buf[i] - mean
        d1 = buf[i + 1] - mean
        d2 = buf[i + 2] - mean
        d3 = buf[i + 3] - mean
        m0 += d0 * d0
        m1 += d1 * d1
        m2_ += d2 * d2
        m3 += d3 * d3
    for i in range(k4, k):
        d0 = buf[i] - mean
        m0 += d0 * d0
    _chan_merge(ints, flts, k, s, mean, (m0 + m1) + (m2_ + m3), mn, mx)


def _moments_sigs():
    return [types.void(_ro(t), _ro(types.uint8), types.int64, types.int64, _rw(types.int64),
                       _rw(types.float64))
            for t in VALUE_TYPES]


@njit(_moments_sigs(), **NUMBA_OPTIONS)
def _moments(values, validity, offset, length, ints, flts):
    # Blocks of _BLOCK values: the finite ones are compacted into buf, the
    # block's mean and its m2 about that mean are computed over the
    # cache-resident buffer, and the block is Chan-merged into the state.
    buf = np.empty(_BLOCK, dtype=np.float64)
    has_valid = validity.size > 0
    c_nan = 0
    c_pinf = 0
    c_ninf = 0
    nul = 0
    for start in range(0, length, _BLOCK):
        end = min(start + _BLOCK, length)
        k = 0
        for i in range(start, end):
            pos = offset + i
            w = np.int64(1)
            if has_valid:
                w = np.int64((validity[pos >> 3] >> (pos & 7)) & 1)
            x = np.float64(values[pos])
            buf[k] = x
            # x - x is 0 exactly for finite x, NaN for +-inf and NaN.
            k += w & np.int64(x - x == 0.0)
            c_nan += w & np.int64(x != x)
            c_pinf += w & np.int64(x > _DBL_MAX)
            c_ninf += w & np.int64(x < -_DBL_MAX)
            nul += 1 - w
        _reduce_block(ints, flts, buf, k)
    ints[1] += nul
    ints[2] += c_nan
    ints[3] += c_pinf
    ints[4] += c_ninf


def moments_update(values, validity, offset, length, ints, flts):
    """Merge one column into a moments state (numba backend of ``fd_moments_update``).

    Parameters
    ----------
    values, validity : numpy.ndarray
        The whole Arrow values buffer and validity bitmap (empty when all valid).
    offset, length : int
        The Arrow array's element offset and length.
    ints : numpy.ndarray
        int64[5] = n finite, null, NaN, +inf, -inf; updated in place.
    flts : numpy.ndarray
        float64[5] = min, max, sum, mean, m2; updated in place.
    """
    if length == 0:
        return
    _moments(values, validity, offset, length, ints, flts)


# ---- exact quantiles: grid count and selective copy --------------------------

@njit(**_INLINE)
def _grid_cell(x, lo, inv, top):
    # grid_cell() of fd_select.c operation for operation; NaN t (inf * 0)
    # fails `t > 0.0` and lands in cell 0, as in C.
    t = (x - lo) * inv
    t = t if t > 0.0 else 0.0
    t = t if t < top else top
    return np.int64(t)


def _grid_count_sigs():
    return [types.void(_ro(t), _ro(types.uint8), types.int64, types.int64, types.float64,
                       types.float64, types.float64, _rw(types.int64))
            for t in VALUE_TYPES]


@njit(_grid_count_sigs(), **NUMBA_OPTIONS)
def _grid_count(values, validity, offset, length, lo, inv, top, counts):
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
    return [types.int64(_ro(t), _ro(types.uint8), types.int64, types.int64, types.float64,
                        types.float64, types.float64, _ro(types.uint8), _rw(types.float64),
                        types.int64, _rw(types.int64))
            for t in VALUE_TYPES]


@njit(_grid_select_sigs(), **NUMBA_OPTIONS)
def _grid_select(values, validity, offset, length, lo, inv, top, flags, out, cap, n_out):
    # Keeps counting past cap so that FD_EGROW is reported exactly when C
    # reports it; n_out[0] ends at min(n, cap) as in C.
    n = n_out[0]
    overflow = False
    if validity.size == 0:
        for i in range(length):
            x = np.float64(values[offset + i])
            if x - x == 0.0 and flags[_grid_cell(x, lo, inv, top)]:
                if n < cap:
                    out[n] = x
                else:
                    overflow = True
                n += 1
    else:
        for i in range(length):
            j = offset + i
            if (validity[j >> 3] >> (j & 7)) & 1:
                x = np.float64(values[j])
                if x - x == 0.0 and flags[_grid_cell(x, lo, inv, top)]:
                    if n < cap:
                        out[n] = x
                    else:
                        overflow = True
                    n += 1
    n_out[0] = n if n < cap else cap
    return FD_EGROW if overflow else FD_OK


def _grid_count_select_sigs():
    return [types.int64(_ro(t), _ro(types.uint8), types.int64, types.int64, types.float64,
                        types.float64, types.float64, _rw(types.int64), _ro(types.uint8), _rw(types.float64),
                        types.int64, _rw(types.int64))
            for t in VALUE_TYPES]


@njit(_grid_count_select_sigs(), **NUMBA_OPTIONS)
def _grid_count_select(values, validity, offset, length, lo, inv, top, counts, flags, out, cap, n_out):
    n = n_out[0]
    overflow = False
    if validity.size == 0:
        for i in range(length):
            x = np.float64(values[offset + i])
            if x - x == 0.0:
                c = _grid_cell(x, lo, inv, top)
                counts[c] += 1
                if flags[c]:
                    if n < cap:
                        out[n] = x
                    else:
                        overflow = True
                    n += 1
    else:
        for i in range(length):
            j = offset + i
            if (validity[j >> 3] >> (j & 7)) & 1:
                x = np.float64(values[j])
                if x - x == 0.0:
                    c = _grid_cell(x, lo, inv, top)
                    counts[c] += 1
                    if flags[c]:
                        if n < cap:
                            out[n] = x
                        else:
                            overflow = True
                        n += 1
    n_out[0] = n if n < cap else cap
    return FD_EGROW if overflow else FD_OK


_GRID_MAX_CELLS = 2147483647  # FD_GRID_MAX_CELLS


def _grid_args_ok(values, validity, offset, length, lo, inv_width, n_cells):
    # fd_select.c's argument checks, plus the buffer sizes that C has to
    # trust but numpy arrays can tell (bounds checks are off in the loops).
    if n_cells < 1 or n_cells > _GRID_MAX_CELLS or length < 0 or offset < 0 or not inv_width >= 0.0 \
            or not lo - lo == 0.0:
        return False
    if length == 0:
        return True
    if values.shape[0] < offset + length:
        return False
    return validity.shape[0] == 0 or validity.shape[0] * 8 >= offset + length


def grid_count(values, validity, offset, length, lo, inv_width, n_cells, counts):
    """Count finite values per grid cell (numba backend of ``fd_grid_count``).

    Parameters
    ----------
    values, validity : numpy.ndarray
        The whole Arrow values buffer (any supported numeric dtype) and the
        validity bitmap (an empty uint8 array when every value is valid).
    offset, length : int
        The Arrow array's element offset and length.
    lo, inv_width : float
        Grid origin and inverse cell width; the cell of a finite ``x`` is
        ``clamp(floor((x - lo) * inv_width), 0, n_cells - 1)``.
    n_cells : int
        Number of cells.
    counts : numpy.ndarray
        int64[>= n_cells], incremented in place.

    Returns
    -------
    int
        ``FD_OK`` or ``FD_EINVAL``, as the C kernel.
    """
    if not _grid_args_ok(values, validity, offset, length, lo, inv_width, n_cells):
        return FD_EINVAL
    if length == 0:
        return FD_OK
    if counts.shape[0] < n_cells:
        return FD_EINVAL
    _grid_count(values, validity, offset, length, float(lo), float(inv_width),
                float(n_cells - 1), counts)
    return FD_OK


def grid_select(values, validity, offset, length, lo, inv_width, n_cells, flags, out, cap, n_out):
    """Append the finite values of flagged cells to ``out`` (numba backend of ``fd_grid_select``).

    Parameters
    ----------
    values, validity, offset, length, lo, inv_width, n_cells
        As :func:`grid_count`.
    flags : numpy.ndarray
        uint8[>= n_cells]; non-zero marks a cell whose values are copied.
    out : numpy.ndarray
        float64 output, written from ``out[n_out[0]]`` on, in column order.
    cap : int
        Capacity of ``out`` (at most ``out.size``).
    n_out : numpy.ndarray
        int64[1]: values already in ``out``; updated in place (never above ``cap``).

    Returns
    -------
    int
        ``FD_OK``, ``FD_EINVAL``, or ``FD_EGROW`` when the selected values did not fit.
    """
    if not _grid_args_ok(values, validity, offset, length, lo, inv_width, n_cells):
        return FD_EINVAL
    if cap < 0 or n_out.shape[0] < 1 or n_out[0] < 0:
        return FD_EINVAL
    if length == 0:
        return FD_OK
    if flags.shape[0] < n_cells or out.shape[0] < cap:
        return FD_EINVAL
    return int(_grid_select(values, validity, offset, length, float(lo), float(inv_width),
                            float(n_cells - 1), flags, out, cap, n_out))


def grid_count_select(values, validity, offset, length, lo, inv_width, n_cells, counts, flags, out, cap,
                      n_out):
    """:func:`grid_count` and :func:`grid_select` in one read (numba backend of ``fd_grid_count_select``).

    Same parameters as those two; ``counts`` are complete even when the selection
    overflows.

    Returns
    -------
    int
        ``FD_OK``, ``FD_EINVAL``, or ``FD_EGROW`` when the selected values did not fit.
    """
    if not _grid_args_ok(values, validity, offset, length, lo, inv_width, n_cells):
        return FD_EINVAL
    if cap < 0 or n_out.shape[0] < 1 or n_out[0] < 0:
        return FD_EINVAL
    if length == 0:
        return FD_OK
    if counts.shape[0] < n_cells or flags.shape[0] < n_cells or out.shape[0] < cap:
        return FD_EINVAL
    return int(_grid_count_select(values, validity, offset, length, float(lo), float(inv_width),
                                  float(n_cells - 1), counts, flags, out, cap, n_out))


# ---- categorical: constants ---------------------------------------------------

# meta indices of kernels/fastdrift.h.
N_IDS = 0
MAX_IDS = 1
OTHER = 2
NULL = 3
ARENA_USED = 4

_ID_OTHER = -1
_ID_GROW = -3
_INT32_MAX = 2**31 - 1
# Slots are kept at most 1/_LOAD_DEN full; must equal cat.py and fd_must_grow in fd_cat.c.
_LOAD_DEN = 4

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_SEED = np.uint64(0x243F6A8885A308D3)
_C3 = np.uint64(0x52DCE729)
_F1 = np.uint64(0xFF51AFD7ED558CCD)
_F2 = np.uint64(0xC4CEB9FE1A85EC53)
_U1 = np.uint64(1)
_U5 = np.uint64(5)
_U8 = np.uint64(8)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U33 = np.uint64(33)
_U37 = np.uint64(37)

# Byte popcounts: numba has no portable popcount intrinsic.
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)

_I64 = types.int64
_U64 = types.uint64
_B = types.boolean
_TABLE_STR = (_rw(types.int32), _rw(types.uint64), _rw(types.int64), _rw(types.uint8),
              _rw(types.int64), _rw(types.int64))      # slots hashes key_offsets arena counts meta
_TABLE_INT = (_rw(types.int32), _rw(types.uint64), _rw(types.int64),
              _rw(types.int64), _rw(types.int64))      # slots hashes int_keys counts meta
_RC2 = types.UniTuple(_I64, 2)
_RC3 = types.UniTuple(_I64, 3)


# ---- categorical: hashing ----------------------------------------------------

@njit(_U64(_U64), **_INLINE)
def _fmix64(k):
    k ^= k >> _U33
    k *= _F1
    k ^= k >> _U33
    k *= _F2
    k ^= k >> _U33
    return k


@njit(_U64(_U64, _U64), **_INLINE)
def _mix_word(h, w):
    w *= _K2
    w = (w << _U31) | (w >> _U33)
    w *= _K1
    h ^= w
    h = (h << _U27) | (h >> _U37)
    return h * _U5 + _C3


@njit([_U64(_ro_unaligned(types.uint8), _I64), _U64(_rw(types.uint8), _I64)], **_INLINE)
def _load_le64(data, p):
    # Eight byte loads OR-ed together: LLVM folds them into one 64-bit
    # little-endian load, which is what the C side does with memcpy.
    return (np.uint64(data[p]) | (np.uint64(data[p + 1]) << np.uint64(8))
            | (np.uint64(data[p + 2]) << np.uint64(16)) | (np.uint64(data[p + 3]) << np.uint64(24))
            | (np.uint64(data[p + 4]) << np.uint64(32)) | (np.uint64(data[p + 5]) << np.uint64(40))
            | (np.uint64(data[p + 6]) << np.uint64(48)) | (np.uint64(data[p + 7]) << np.uint64(56)))


@njit(_U64(_ro_unaligned(types.uint8), _I64, _I64), **_INLINE)
def _hash_bytes(data, start, n):
    # Inlined into the table loops: an out-of-line call costs more than the
    # hash itself for short keys.
    h = _SEED ^ (np.uint64(n) * _K1)
    i = 0
    while i + 8 <= n:
        h = _mix_word(h, _load_le64(data, start + i))
        i += 8
    if i < n:
        p = start + i
        if p + 8 <= data.shape[0]:
            # Whole-word load then mask: the same zero-padded tail word as
            # C's byte loop, without a data-dependent loop.
            w = _load_le64(data, p) & ((_U1 << np.uint64(8 * (n - i))) - _U1)
        else:
            w = np.uint64(0)
            for j in range(n - i):
                w |= np.uint64(data[p + j]) << np.uint64(8 * j)
        h = _mix_word(h, w)
    return _fmix64(h)


@njit(_U64(_ro_unaligned(types.uint8), _I64, _I64), **NUMBA_OPTIONS)
def hash_bytes(data, start, n):
    """Hash ``data[start:start + n]``; bit-identical to C ``fd_hash_bytes``.

    Parameters
    ----------
    data : ndarray of uint8
        Buffer holding the key.
    start, n : int
        Position and length of the key in ``data``.

    Returns
    -------
    numpy.uint64
    """
    return _hash_bytes(data, start, n)


@njit(_U64(_I64), **NUMBA_OPTIONS)
def hash_int(v):
    """Hash an integer key; bit-identical to C ``fd_hash_int``.

    Parameters
    ----------
    v : int
        The key (uint64 keys as their int64 bit pattern).

    Returns
    -------
    numpy.uint64
    """
    return _fmix64(np.uint64(v))


# ---- categorical: table ------------------------------------------------------

@njit(_I64(_rw(types.int32), _rw(types.uint64), _rw(types.int64), _I64, _B,
                 _rw(types.int64), _rw(types.int64)), **NUMBA_OPTIONS)
def _table_status(slots, hashes, counts, arena_cap, strings, key_offsets, meta):
    # Same checks, same order, same codes as fd_table_ok in fd_cat.c.
    n_slots = slots.shape[0]
    id_cap = hashes.shape[0]
    if meta.shape[0] < 5 or n_slots == 0 or id_cap == 0 or counts.shape[0] < id_cap:
        return FD_EINVAL
    if n_slots < 2 or (n_slots & (n_slots - 1)) != 0 or n_slots > _INT32_MAX:
        return FD_EINVAL
    if meta[MAX_IDS] < 0 or meta[MAX_IDS] > _INT32_MAX:
        return FD_EINVAL
    if strings and key_offsets.shape[0] < id_cap + 1:
        return FD_EINVAL
    n_ids = meta[N_IDS]
    if n_ids < 0 or n_ids > id_cap or n_ids > meta[MAX_IDS] or 2 * n_ids > n_slots:
        return FD_ECORRUPT
    if strings:
        used = meta[ARENA_USED]
        if used < 0 or used > arena_cap or key_offsets[n_ids] != used:
            return FD_ECORRUPT
    return FD_OK


@njit(_I64(_ro_unaligned(types.uint8), _I64, _I64, *_TABLE_STR), **_INLINE)
def _find_or_insert_str(data, p, n, slots, hashes, key_offsets, arena, counts, meta):
    h = _hash_bytes(data, p, n)
    # Probe with int64 positions: indexing with uint64 is slow in numba.
    mask = slots.shape[0] - 1
    s = np.int64(h & np.uint64(mask))
    while True:
        id_ = slots[s]
        if id_ < 0:
            break
        if hashes[id_] == h:
            a = key_offsets[id_]
            if key_offsets[id_ + 1] - a == n:
                same = True
                j = 0
                while j + 8 <= n:
                    if _load_le64(arena, a + j) != _load_le64(data, p + j):
                        same = False
                        break
                    j += 8
                while same and j < n:
                    if arena[a + j] != data[p + j]:
                        same = False
                    j += 1
                if same:
                    return id_
        s = (s + 1) & mask
    n_ids = meta[N_IDS]
    if n_ids >= meta[MAX_IDS]:
        return _ID_OTHER
    used = meta[ARENA_USED]
    if n_ids >= hashes.shape[0] or _LOAD_DEN * (n_ids + 1) > slots.shape[0] or used + n > arena.shape[0]:
        return _ID_GROW
    for j in range(n):
        arena[used + j] = data[p + j]
    used += n
    meta[ARENA_USED] = used
    key_offsets[n_ids + 1] = used
    hashes[n_ids] = h
    counts[n_ids] = 0
    slots[s] = n_ids
    meta[N_IDS] = n_ids + 1
    return n_ids


@njit(_I64(_I64, *_TABLE_INT), **_INLINE)
def _find_or_insert_int(v, slots, hashes, int_keys, counts, meta):
    h = hash_int(v)
    # Probe with int64 positions: indexing with uint64 is slow in numba.
    mask = slots.shape[0] - 1
    s = np.int64(h & np.uint64(mask))
    while True:
        id_ = slots[s]
        if id_ < 0:
            break
        if int_keys[id_] == v:
            return id_
        s = (s + 1) & mask
    n_ids = meta[N_IDS]
    if n_ids >= meta[MAX_IDS]:
        return _ID_OTHER
    if n_ids >= hashes.shape[0] or _LOAD_DEN * (n_ids + 1) > slots.shape[0]:
        return _ID_GROW
    int_keys[n_ids] = v
    hashes[n_ids] = h
    counts[n_ids] = 0
    slots[s] = n_ids
    meta[N_IDS] = n_ids + 1
    return n_ids


def _str_sigs():
    return [
        _RC2(_ro_unaligned(ot), _ro_unaligned(types.uint8), _ro_unaligned(types.uint8), _I64, _I64, _I64,
             *_TABLE_STR, _rw(types.int64), _B)
        for ot in (types.int32, types.int64)
    ]


@njit(_str_sigs(), **NUMBA_OPTIONS)
def cat_run_str(offsets, data, validity, off, n, start,
                slots, hashes, key_offsets, arena, counts, meta, ids, lookup):
    """``fd_cat_update`` (``lookup=False``) / ``fd_cat_lookup`` (``lookup=True``) for strings.

    Parameters
    ----------
    offsets : ndarray of int32 or int64
        Whole Arrow offsets buffer.
    data : ndarray of uint8
        Whole Arrow data buffer.
    validity : ndarray of uint8
        Whole validity bitmap, empty when every value is valid.
    off, n, start : int
        Array offset, array length, first element to process.
    slots, hashes, key_offsets, arena, counts, meta : ndarray
        The table storage (see ``fd_cat_table``).
    ids : ndarray of int64
        Lookup output (``n`` entries); ignored when counting.
    lookup : bool
        Map to ids instead of counting.

    Returns
    -------
    (status, progress) : tuple of int
    """
    rc = _table_status(slots, hashes, counts, arena.shape[0], True, key_offsets, meta)
    if rc != FD_OK:
        return rc, start
    if start < 0 or start > n or off < 0 or n < 0 or (lookup and ids.shape[0] < n):
        return FD_EINVAL, start
    has_bits = validity.shape[0] > 0
    for i in range(start, n):
        j = off + i
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            if lookup:
                ids[i] = -2
            else:
                meta[NULL] += 1
            continue
        a = np.int64(offsets[j])
        id_ = _find_or_insert_str(data, a, np.int64(offsets[j + 1]) - a,
                                  slots, hashes, key_offsets, arena, counts, meta)
        if id_ == _ID_GROW:
            return FD_EGROW, i
        if lookup:
            ids[i] = id_
        elif id_ >= 0:
            counts[id_] += 1
        else:
            meta[OTHER] += 1
    return FD_OK, n


@njit([_RC2(_ro_unaligned(vt), _ro_unaligned(types.uint8), _I64, _I64, _I64, *_TABLE_INT,
             _rw(types.int64), _B)
       for vt in _INT_DTYPES], **NUMBA_OPTIONS)
def cat_run_int(values, validity, off, n, start, slots, hashes, int_keys, counts, meta, ids, lookup):
    """``fd_cat_update`` / ``fd_cat_lookup`` for integer columns (see :func:`cat_run_str`).

    Parameters
    ----------
    values : ndarray of any integer dtype
        Whole Arrow values buffer; uint64 keys are kept as their int64 bit pattern.
    validity : ndarray of uint8
    off, n, start : int
    slots, hashes, int_keys, counts, meta : ndarray
    ids : ndarray of int64
    lookup : bool

    Returns
    -------
    (status, progress) : tuple of int
    """
    rc = _table_status(slots, hashes, counts, 0, False, int_keys, meta)
    if rc != FD_OK:
        return rc, start
    if int_keys.shape[0] < hashes.shape[0]:
        return FD_EINVAL, start
    if start < 0 or start > n or off < 0 or n < 0 or (lookup and ids.shape[0] < n):
        return FD_EINVAL, start
    has_bits = validity.shape[0] > 0
    for i in range(start, n):
        j = off + i
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            if lookup:
                ids[i] = -2
            else:
                meta[NULL] += 1
            continue
        id_ = _find_or_insert_int(np.int64(values[j]), slots, hashes, int_keys, counts, meta)
        if id_ == _ID_GROW:
            return FD_EGROW, i
        if lookup:
            ids[i] = id_
        elif id_ >= 0:
            counts[id_] += 1
        else:
            meta[OTHER] += 1
    return FD_OK, n


@njit(_I64(_rw(types.int32), _rw(types.uint64), _rw(types.int64)), **NUMBA_OPTIONS)
def cat_rehash(slots, hashes, meta):
    """Rebuild ``slots`` from ``hashes[:n_ids]`` (``fd_cat_rehash``).

    Parameters
    ----------
    slots : ndarray of int32
        Power-of-two sized; overwritten.
    hashes : ndarray of uint64
    meta : ndarray of int64

    Returns
    -------
    int
        Status.
    """
    n_slots = slots.shape[0]
    if n_slots < 2 or (n_slots & (n_slots - 1)) != 0 or n_slots > _INT32_MAX:
        return FD_EINVAL
    n_ids = meta[N_IDS]
    if n_ids < 0 or n_ids > hashes.shape[0] or 2 * n_ids > n_slots:
        return FD_EINVAL
    slots[:] = -1
    mask = n_slots - 1
    for id_ in range(n_ids):
        s = np.int64(hashes[id_] & np.uint64(mask))
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = id_
    return FD_OK


@njit([_RC3(_ro_unaligned(vt), _ro_unaligned(types.uint8), _I64, _I64, _rw(types.int64), _rw(types.int64))
       for vt in _INT_DTYPES], **NUMBA_OPTIONS)
def count_indices(values, validity, off, n, bins, first):
    """Bincount of dictionary indices, with each index's first position (``fd_count_indices``).

    Parameters
    ----------
    values : ndarray of any integer dtype
    validity : ndarray of uint8
    off, n : int
    bins : ndarray of int64
        Accumulated into.
    first : ndarray of int64
        Empty (not wanted), or ``bins.size`` entries: ``first[x] = i`` when
        the valid element ``i`` (0..n-1) takes ``bins[x]`` from 0 to 1; other
        entries are not written.

    Returns
    -------
    (status, progress, n_null) : tuple of int
        On ``FD_EINVAL`` progress is the first out-of-range element (or 0
        when ``first`` has the wrong size).
    """
    n_bins = bins.shape[0]
    want_first = first.shape[0] > 0
    if want_first and first.shape[0] != n_bins:
        return FD_EINVAL, 0, 0
    nulls = 0
    has_bits = validity.shape[0] > 0
    for i in range(n):
        j = off + i
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            nulls += 1
            continue
        # int64 conversion sends uint64 values >= 2**63 negative, i.e. out of
        # range, without a mixed-signedness (float) comparison.
        x = np.int64(values[j])
        if x < 0 or x >= n_bins:
            return FD_EINVAL, i, nulls
        c = bins[x]
        bins[x] = c + 1
        if want_first and c == 0:
            first[x] = i
    return FD_OK, n, nulls


@njit(_RC3(_ro_unaligned(types.uint8), _ro_unaligned(types.uint8), _I64, _I64), **NUMBA_OPTIONS)
def bool_count(values, validity, off, n):
    """Count a bit-packed boolean column (``fd_bool_count``).

    Parameters
    ----------
    values, validity : ndarray of uint8
        Whole bitmaps (validity empty when all valid).
    off, n : int

    Returns
    -------
    (n_true, n_false, n_null) : tuple of int
    """
    has_bits = validity.shape[0] > 0
    b = off
    end = off + n
    ones = 0
    valid = 0
    while b < end and (b & 7) != 0:
        if not has_bits or (validity[b >> 3] >> (b & 7)) & 1:
            valid += 1
            ones += (values[b >> 3] >> (b & 7)) & 1
        b += 1
    if has_bits:
        while b + 8 <= end:
            m = validity[b >> 3]
            ones += _POP8[values[b >> 3] & m]
            valid += _POP8[m]
            b += 8
    else:
        b0 = b
        while b + 8 <= end:
            ones += _POP8[values[b >> 3]]
            b += 8
        valid += b - b0
    while b < end:
        if not has_bits or (validity[b >> 3] >> (b & 7)) & 1:
            valid += 1
            ones += (values[b >> 3] >> (b & 7)) & 1
        b += 1
    return ones, valid - ones, n - valid
