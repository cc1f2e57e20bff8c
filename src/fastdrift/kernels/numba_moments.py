"""The numba twin of ``kernels/fd_moments.c``: :func:`moments_update`, in blocks of ``FD_MOM_BLOCK``
values whose sums run in the 16 lanes of ``kernels/fd_moments_loops.h``, as every SIMD path of the C
kernel, so that the states are bit-identical."""
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


# The sums of a block run in 16 lanes, in the order fd_moments_loops.h fixes for every SIMD path of
# the C kernel: lane l takes elements 16 j + l, the last k % 16 elements go to lane 0, then the lanes
# fold in halves (l += l + 8, l += l + 4, l += l + 2, l += l + 1).  Spelled out in scalars, which
# LLVM keeps in registers (a lane array would be reloaded and stored per element).

@njit(**INLINE)
def _fold16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15):
    b0, b1, b2, b3 = a0 + a8, a1 + a9, a2 + a10, a3 + a11
    b4, b5, b6, b7 = a4 + a12, a5 + a13, a6 + a14, a7 + a15
    c0, c1, c2, c3 = b0 + b4, b1 + b5, b2 + b6, b3 + b7
    return (c0 + c2) + (c1 + c3)


@njit(**INLINE)
def _mn(a, b):
    # fd_moments_loops.h's fold: b < a ? b : a (which of two equal zeros survives is part of the result)
    return b if b < a else a


@njit(**INLINE)
def _mx(a, b):
    return b if b > a else a


@njit(**INLINE)
def _min16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15):
    b0, b1, b2, b3 = _mn(a0, a8), _mn(a1, a9), _mn(a2, a10), _mn(a3, a11)
    b4, b5, b6, b7 = _mn(a4, a12), _mn(a5, a13), _mn(a6, a14), _mn(a7, a15)
    c0, c1, c2, c3 = _mn(b0, b4), _mn(b1, b5), _mn(b2, b6), _mn(b3, b7)
    return _mn(_mn(c0, c2), _mn(c1, c3))


@njit(**INLINE)
def _max16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15):
    b0, b1, b2, b3 = _mx(a0, a8), _mx(a1, a9), _mx(a2, a10), _mx(a3, a11)
    b4, b5, b6, b7 = _mx(a4, a12), _mx(a5, a13), _mx(a6, a14), _mx(a7, a15)
    c0, c1, c2, c3 = _mx(b0, b4), _mx(b1, b5), _mx(b2, b6), _mx(b3, b7)
    return _mx(_mx(c0, c2), _mx(c1, c3))


@njit(**INLINE)
def _pass1(x, o, k):
    """(all finite, sum, min, max) of float64(x[o:o + k]) (block_pass1 of fd_moments_loops.h)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = s12 = s13 = s14 = s15 = 0.0
    n0 = n1 = n2 = n3 = n4 = n5 = n6 = n7 = n8 = n9 = n10 = n11 = n12 = n13 = n14 = n15 = DBL_MAX
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = m8 = m9 = m10 = m11 = m12 = m13 = m14 = m15 = -DBL_MAX
    fin = 0.0  # x - x: 0 for finite x, NaN otherwise, whatever the order of the additions
    k16 = k - (k & 15)
    for i in range(o, o + k16, 16):
        v0, v1, v2, v3 = np.float64(x[i]), np.float64(x[i + 1]), np.float64(x[i + 2]), np.float64(x[i + 3])
        v4, v5, v6, v7 = np.float64(x[i + 4]), np.float64(x[i + 5]), np.float64(x[i + 6]), np.float64(x[i + 7])
        v8, v9, v10, v11 = np.float64(x[i + 8]), np.float64(x[i + 9]), np.float64(x[i + 10]), np.float64(x[i + 11])
        v12, v13, v14, v15 = (np.float64(x[i + 12]), np.float64(x[i + 13]), np.float64(x[i + 14]),
                              np.float64(x[i + 15]))
        s0 += v0; s1 += v1; s2 += v2; s3 += v3; s4 += v4; s5 += v5; s6 += v6; s7 += v7  # noqa: E702
        s8 += v8; s9 += v9; s10 += v10; s11 += v11; s12 += v12; s13 += v13; s14 += v14; s15 += v15  # noqa: E702
        n0 = v0 if v0 < n0 else n0; n1 = v1 if v1 < n1 else n1; n2 = v2 if v2 < n2 else n2  # noqa: E702
        n3 = v3 if v3 < n3 else n3; n4 = v4 if v4 < n4 else n4; n5 = v5 if v5 < n5 else n5  # noqa: E702
        n6 = v6 if v6 < n6 else n6; n7 = v7 if v7 < n7 else n7; n8 = v8 if v8 < n8 else n8  # noqa: E702
        n9 = v9 if v9 < n9 else n9; n10 = v10 if v10 < n10 else n10  # noqa: E702
        n11 = v11 if v11 < n11 else n11; n12 = v12 if v12 < n12 else n12  # noqa: E702
        n13 = v13 if v13 < n13 else n13; n14 = v14 if v14 < n14 else n14  # noqa: E702
        n15 = v15 if v15 < n15 else n15
        m0 = v0 if v0 > m0 else m0; m1 = v1 if v1 > m1 else m1; m2 = v2 if v2 > m2 else m2  # noqa: E702
        m3 = v3 if v3 > m3 else m3; m4 = v4 if v4 > m4 else m4; m5 = v5 if v5 > m5 else m5  # noqa: E702
        m6 = v6 if v6 > m6 else m6; m7 = v7 if v7 > m7 else m7; m8 = v8 if v8 > m8 else m8  # noqa: E702
        m9 = v9 if v9 > m9 else m9; m10 = v10 if v10 > m10 else m10  # noqa: E702
        m11 = v11 if v11 > m11 else m11; m12 = v12 if v12 > m12 else m12  # noqa: E702
        m13 = v13 if v13 > m13 else m13; m14 = v14 if v14 > m14 else m14  # noqa: E702
        m15 = v15 if v15 > m15 else m15
        fin += ((((v0 - v0) + (v1 - v1)) + ((v2 - v2) + (v3 - v3))) + (((v4 - v4) + (v5 - v5))
                + ((v6 - v6) + (v7 - v7)))) + ((((v8 - v8) + (v9 - v9)) + ((v10 - v10) + (v11 - v11)))
                + (((v12 - v12) + (v13 - v13)) + ((v14 - v14) + (v15 - v15))))
    for i in range(o + k16, o + k):
        v = np.float64(x[i])
        s0 += v
        n0 = v if v < n0 else n0
        m0 = v if v > m0 else m0
        fin += v - v
    return (fin == 0.0, _fold16(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15),
            _min16(n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n11, n12, n13, n14, n15),
            _max16(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15))


@njit(**INLINE)
def _block_m2(x, o, k, mean):
    """Sum of (x - mean)^2 over float64(x[o:o + k]) in the 16-lane order (block_m2)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = s12 = s13 = s14 = s15 = 0.0
    k16 = k - (k & 15)
    for i in range(o, o + k16, 16):
        d0, d1 = np.float64(x[i]) - mean, np.float64(x[i + 1]) - mean
        d2, d3 = np.float64(x[i + 2]) - mean, np.float64(x[i + 3]) - mean
        d4, d5 = np.float64(x[i + 4]) - mean, np.float64(x[i + 5]) - mean
        d6, d7 = np.float64(x[i + 6]) - mean, np.float64(x[i + 7]) - mean
        d8, d9 = np.float64(x[i + 8]) - mean, np.float64(x[i + 9]) - mean
        d10, d11 = np.float64(x[i + 10]) - mean, np.float64(x[i + 11]) - mean
        d12, d13 = np.float64(x[i + 12]) - mean, np.float64(x[i + 13]) - mean
        d14, d15 = np.float64(x[i + 14]) - mean, np.float64(x[i + 15]) - mean
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3  # noqa: E702
        s4 += d4 * d4; s5 += d5 * d5; s6 += d6 * d6; s7 += d7 * d7  # noqa: E702
        s8 += d8 * d8; s9 += d9 * d9; s10 += d10 * d10; s11 += d11 * d11  # noqa: E702
        s12 += d12 * d12; s13 += d13 * d13; s14 += d14 * d14; s15 += d15 * d15  # noqa: E702
    for i in range(o + k16, o + k):
        d = np.float64(x[i]) - mean
        s0 += d * d
    return _fold16(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15)


@njit(**INLINE)
def _reduce_block(ints, flts, x, o, k, s, mn, mx):
    # The block x[o:o + k] (finite values; s, mn, mx from _pass1): its mean, its m2 about that mean,
    # then Chan's merge into the state.
    if k == 0:
        return
    mean = s / k
    _chan_merge(ints, flts, k, s, mean, _block_m2(x, o, k, mean), mn, mx)


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
        if not has_valid:
            # A block without NaN/inf is reduced where it is: the same values in the same order as
            # its compacted copy (fd_moments.c does so for float64; the result is the same).
            ok, s, mn, mx = _pass1(values, offset + start, end - start)
            if ok:
                _reduce_block(ints, flts, values, offset + start, end - start, s, mn, mx)
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
        ok, s, mn, mx = _pass1(buf, 0, k)
        _reduce_block(ints, flts, buf, 0, k, s, mn, mx)
    ints[1] += nul
    ints[2] += c_nan
    ints[3] += c_pinf
    ints[4] += c_ninf
