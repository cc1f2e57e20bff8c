"""The numba twin of ``kernels/fd_moments.c``: :func:`moments_update`, in blocks of ``FD_MOM_BLOCK``
values whose sums run in the 16 lanes of ``kernels/fd_moments_loops.h``, as every SIMD path of the C
kernel, so that the states are bit-identical."""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .numba_common import DBL_MAX, INLINE, NUMBA_OPTIONS, ro, rw

__all__ = ["moments_update"]

_BLOCK = 4096  # moments block size, as FD_MOM_BLOCK in kernels/fastdrift.h (tests check they agree)


@njit(**INLINE)
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


# The sums of a block run in 16 lanes, in the order fd_moments_loops.h fixes for every SIMD path of
# the C kernel: lane l takes elements 16 j + l, the last k % 16 elements go to lane 0, then the lanes
# fold in halves (l += l + 8, l += l + 4, l += l + 2, l += l + 1).  The lanes live in a small array
# and each group of 16 updates them element by element: a loop without a carried dependency, which
# LLVM vectorises (the same lanes spelled out as 16 scalars stayed scalar: 3.1x slower).
_L = 16


@njit(**INLINE)
def _fold(a):
    h = _L // 2
    while h >= 1:
        for j in range(h):
            a[j] += a[j + h]
        h //= 2
    return a[0]


@njit(**INLINE)
def _pass1(x, o, k, c, lanes):
    """(all finite, sum, min, max, sum of x - c, sum of (x - c)^2) of float64(x[o:o + k]) for the
    shift c (block_pass1 of fd_moments_loops.h)."""
    sa = lanes[0:_L]
    mn = lanes[_L:2 * _L]
    mx = lanes[2 * _L:3 * _L]
    sd = lanes[3 * _L:4 * _L]
    ss = lanes[4 * _L:5 * _L]
    for j in range(_L):
        sa[j] = 0.0
        mn[j] = DBL_MAX
        mx[j] = -DBL_MAX
        sd[j] = 0.0
        ss[j] = 0.0
    k16 = k - (k & (_L - 1))
    k64 = k - (k & (4 * _L - 1))
    xb = x[o:o + k]
    # Four groups of 16 a step, each lane taking its four values in order (the same sums as one
    # group a step): the lanes live in memory, and a step per group stored and reloaded them
    # every 16 values.
    for i in range(0, k64, 4 * _L):
        for j in range(_L):
            s_ = sa[j]
            lo = mn[j]
            hi = mx[j]
            t_ = sd[j]
            q_ = ss[j]
            for g in range(4):
                v = np.float64(xb[np.uint64(i + g * _L + j)])
                d = v - c
                s_ += v
                lo = v if v < lo else lo
                hi = v if v > hi else hi
                t_ += d
                q_ += d * d
            sa[j] = s_
            mn[j] = lo
            mx[j] = hi
            sd[j] = t_
            ss[j] = q_
    for i in range(k64, k16, _L):
        for j in range(_L):
            v = np.float64(xb[np.uint64(i + j)])
            d = v - c
            sa[j] += v
            mn[j] = v if v < mn[j] else mn[j]
            mx[j] = v if v > mx[j] else mx[j]
            sd[j] += d
            ss[j] += d * d
    for i in range(o + k16, o + k):
        v = np.float64(x[i])
        d = v - c
        sa[0] += v
        mn[0] = v if v < mn[0] else mn[0]
        mx[0] = v if v > mx[0] else mx[0]
        sd[0] += d
        ss[0] += d * d
    # the min/max fold of fd_moments_loops.h: b < a ? b : a (which of two equal zeros survives is
    # part of the result)
    h = _L // 2
    while h >= 1:
        for j in range(h):
            mn[j] = mn[j + h] if mn[j + h] < mn[j] else mn[j]
            mx[j] = mx[j + h] if mx[j + h] > mx[j] else mx[j]
        h //= 2
    s = _fold(sa)
    # a NaN makes the sum NaN in any order, +inf the max +inf, -inf the min -inf
    ok = s == s and mn[0] >= -DBL_MAX and mx[0] <= DBL_MAX
    return ok, s, mn[0], mx[0], _fold(sd), _fold(ss)


@njit(**INLINE)
def _block_m2(x, o, k, mean, lanes):
    """Sum of (x - mean)^2 over float64(x[o:o + k]) in the 16-lane order (block_m2)."""
    ma = lanes[0:_L]
    for j in range(_L):
        ma[j] = 0.0
    k16 = k - (k & (_L - 1))
    for i in range(o, o + k16, _L):
        xs = x[i:i + _L]
        for j in range(_L):
            d = np.float64(xs[j]) - mean
            ma[j] += d * d
    for i in range(o + k16, o + k):
        d = np.float64(x[i]) - mean
        ma[0] += d * d
    return _fold(ma)


@njit(**INLINE)
def _shift(ints, flts, x, o, k):
    # the running mean, or the block's first value when the state is empty (block_shift)
    return flts[3] if ints[0] > 0 or k == 0 else np.float64(x[o])


@njit(**INLINE)
def _reduce_block(ints, flts, x, o, k, s, mn, mx, sd, ss, lanes):
    # The block x[o:o + k] (finite values; the sums from _pass1): its mean, its m2 from the shifted
    # sums when they lose at most one bit (else about the mean, in a second pass), then Chan's merge
    # into the state (reduce_block of fd_moments.c).
    if k == 0:
        return
    kd = np.float64(k)
    mean = s / kd
    m2 = ss - sd * sd / kd
    if not (m2 + m2 >= ss):
        m2 = _block_m2(x, o, k, mean, lanes)
    _chan_merge(ints, flts, k, s, mean, m2, mn, mx)


def _sigs():
    # float64 values only: the caller converts other dtypes a piece at a time (kernels.float64_pieces)
    return [types.void(ro(types.float64), ro(types.uint8), types.int64, types.int64, rw(types.int64),
                       rw(types.float64))]


@njit(_sigs(), **NUMBA_OPTIONS)
def moments_update(values, validity, offset, length, ints, flts):
    # Blocks of _BLOCK values: the finite ones are compacted into buf, one pass gives the block's
    # sums (its m2 from sums about a shift, or about its mean in a second pass over the
    # cache-resident buffer), and the block is Chan-merged into the state.
    buf = np.empty(_BLOCK, dtype=np.float64)
    lanes = np.empty(5 * _L, dtype=np.float64)
    has_valid = validity.size > 0
    c_nan = 0
    c_pinf = 0
    c_ninf = 0
    nul = 0
    for start in range(0, length, _BLOCK):
        end = min(start + _BLOCK, length)
        if not has_valid:
            # A block without NaN/inf is reduced where it is: the same values in the same order as
            # its compacted copy (fd_moments.c does so for float64; the result is the same).
            o, kb = offset + start, end - start
            ok, s, mn, mx, sd, ss = _pass1(values, o, kb, _shift(ints, flts, values, o, kb), lanes)
            if ok:
                _reduce_block(ints, flts, values, o, kb, s, mn, mx, sd, ss, lanes)
                continue
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
            c_pinf += w & np.int64(x > DBL_MAX)
            c_ninf += w & np.int64(x < -DBL_MAX)
            nul += 1 - w
        ok, s, mn, mx, sd, ss = _pass1(buf, 0, k, _shift(ints, flts, buf, 0, k), lanes)
        _reduce_block(ints, flts, buf, 0, k, s, mn, mx, sd, ss, lanes)
    ints[1] += nul
    ints[2] += c_nan
    ints[3] += c_pinf
    ints[4] += c_ninf
