"""The numba backend: the same algorithms as ``kernels/fd_hist.c`` and
``kernels/fd_moments.c``, written as plain loops.

This is the only module that imports numba, and it is imported lazily (by
:mod:`fastdrift.kernels.hist` / :mod:`fastdrift.kernels.moments`) the first
time the numba backend runs, never at ``import fastdrift``.

Every kernel is compiled eagerly for each supported value dtype from explicit
signatures (so the first call of a service does not pay type inference) and
cached on disk.  Input arrays are typed read-only because the values and
validity are numpy views over immutable Arrow buffers; numba accepts writable
arrays for read-only parameters.

Keeping the probe branch-free: LLVM readily turns ``b += x >= e[b]`` into a
compare-and-branch (x86's cmov converter does so when it believes the branch
is predictable), and a mispredicted branch per probe makes the histogram 6-7x
slower.  The comparison result is therefore used only as an integer in
arithmetic (``np.int64(x >= e[b])``) and the sub-bucket table keeps the probe
count at 1-2, so that each probe is a load, a compare, a ``setcc`` and an add.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types

__all__ = ["NUMBA_OPTIONS", "VALUE_TYPES", "hist_update", "moments_update"]

#: Every numba option this backend uses, in one place.
NUMBA_OPTIONS = dict(nogil=True, cache=True, error_model="numpy", boundscheck=False, fastmath=False)

#: numba element types, one compiled specialisation each.
VALUE_TYPES = (
    types.float64, types.float32,
    types.int8, types.int16, types.int32, types.int64,
    types.uint8, types.uint16, types.uint32, types.uint64,
)

_DBL_MAX = np.finfo(np.float64).max
_BLOCK = 1024  # moments block size, as FD_MOM_BLOCK in fd_moments.c

# Path selectors for the histogram, as in fd_hist.c.
M_UNIFORM = 0
M_P1 = 1
M_P2 = 2
M_PN = 4


def _ro(dtype):
    return types.Array(dtype, 1, "C", readonly=True)


_u8_ro = _ro(types.uint8)
_f64_ro = _ro(types.float64)
_i32_ro = _ro(types.int32)
_i64 = types.Array(types.int64, 1, "C")
_f64 = types.Array(types.float64, 1, "C")

_inline = dict(NUMBA_OPTIONS, inline="always")
del _inline["cache"]  # inlined helpers are compiled into their callers' cache entries


@njit(**_inline)
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
    elif mode == M_P2:
        b += np.int64(xc >= e[b])
        b += np.int64(xc >= e[b])
    else:
        for _ in range(n_probe):
            b += np.int64(xc >= e[b])
    return b


_WAYS = 4          # private sub-histograms, as FD_HIST_WAYS in fd_hist.c
_LOCAL_BINS = 512  # above this many bins every way is counts itself


@njit(**_inline)
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
    return [types.void(_ro(t), _u8_ro, types.int64, types.int64, _f64_ro, _i32_ro,
                       types.float64, types.float64, types.float64, types.int64,
                       _i64, _i64)
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


# ---- moments ---------------------------------------------------------------

@njit(**_inline)
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


@njit(**_inline)
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
    return [types.void(_ro(t), _u8_ro, types.int64, types.int64, _i64, _f64) for t in VALUE_TYPES]


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
