"""The numba twin of ``kernels/fd_moments.c``: :func:`moments_update`, in blocks of ``FD_MOM_BLOCK``
values with four accumulators, as the C kernel, so that the states are bit-identical."""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .numba_common import DBL_MAX, INLINE, NUMBA_OPTIONS, VALUE_TYPES, ro, rw

__all__ = ["moments_update"]

_BLOCK = 1024  # moments block size, as FD_MOM_BLOCK in fd_moments.c


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


@njit(**INLINE)
def _reduce_block(ints, flts, buf, k):
    # Four independent accumulators: a single running sum serialises on the
    # floating-point add latency.
    if k == 0:
        return
    s0 = s1 = s2 = s3 = 0.0
    mn0 = mn1 = mn2 = mn3 = DBL_MAX
    mx0 = mx1 = mx2 = mx3 = -DBL_MAX
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


def _sigs():
    return [types.void(ro(t), ro(types.uint8), types.int64, types.int64, rw(types.int64),
                       rw(types.float64))
            for t in VALUE_TYPES]


@njit(_sigs(), **NUMBA_OPTIONS)
def moments_update(values, validity, offset, length, ints, flts):
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
            c_pinf += w & np.int64(x > DBL_MAX)
            c_ninf += w & np.int64(x < -DBL_MAX)
            nul += 1 - w
        _reduce_block(ints, flts, buf, k)
    ints[1] += nul
    ints[2] += c_nan
    ints[3] += c_pinf
    ints[4] += c_ninf

