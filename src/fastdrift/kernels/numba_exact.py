"""The numba twin of ``kernels/fd_exact.c``: :func:`exact_dot` (same splits, same accumulators)."""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .native import FD_EINVAL, FD_OK
from .numba_common import INLINE, NUMBA_OPTIONS, ro, rw

__all__ = ["exact_dot"]

_VELTKAMP = 134217729.0  # 2**27 + 1


@njit(**INLINE)
def _add(acc, fbuf, ibuf, v, neg):
    fbuf[0] = v  # ibuf views the same 8 bytes: the double's bit pattern
    bits = ibuf[0]
    k = (bits >> 52) & 0x7FF
    if k == 0x7FF:
        return 0
    m = bits & ((np.int64(1) << 52) - 1)
    if k:
        m |= np.int64(1) << 52
    else:
        k = 1
    s = np.int64(-1 if bits < 0 else 0) ^ neg
    hi = m >> 26
    lo = m & ((np.int64(1) << 26) - 1)
    acc[2 * k] += (hi ^ s) - s
    acc[2 * k + 1] += (lo ^ s) - s
    return 1


@njit(**INLINE)
def _two_prod(x, y):
    c = _VELTKAMP * x
    xh = c - (c - x)
    xl = x - xh
    d = _VELTKAMP * y
    yh = d - (d - y)
    yl = y - yh
    p = x * y
    return p, ((xh * yh - p) + xh * yl + xl * yh) + xl * yl


@njit(**INLINE)
def _neg(v):
    return np.int64(-1) if np.signbit(v) else np.int64(0)


@njit(types.Tuple((types.int64, types.int64))(ro(types.float64), ro(types.float64), ro(types.float64),
                                               types.int64, types.boolean, rw(types.int64)), **NUMBA_OPTIONS)
def exact_dot(a, b, c, factors, absolute, acc):
    """fd_exact_dot with ``factors`` (1, 2 or 3) of ``a``, ``b``, ``c`` in use: (status, bad row)."""
    fbuf = np.empty(1, dtype=np.float64)
    ibuf = fbuf.view(np.int64)
    for i in range(a.size):
        x = a[i]
        neg = np.int64(0)
        if factors == 1:
            if absolute:
                neg = _neg(x)
            ok = _add(acc, fbuf, ibuf, x, neg)
        elif factors == 2:
            p1, e1 = _two_prod(x, b[i])
            if absolute:
                neg = _neg(x) ^ _neg(b[i])
            ok = _add(acc, fbuf, ibuf, p1, neg) & _add(acc, fbuf, ibuf, e1, neg)
        else:
            p1, e1 = _two_prod(x, b[i])
            p2, e2 = _two_prod(p1, c[i])
            p3, e3 = _two_prod(e1, c[i])
            if absolute:
                neg = _neg(x) ^ _neg(b[i]) ^ _neg(c[i])
            ok = _add(acc, fbuf, ibuf, p2, neg) & _add(acc, fbuf, ibuf, e2, neg) & _add(acc, fbuf, ibuf, p3, neg) & _add(acc, fbuf, ibuf, e3, neg)
        if not ok:
            return FD_EINVAL, i
    return FD_OK, -1
