"""The numba twin of ``kernels/fd_exact.c``: :func:`exact_accumulate`."""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .native import FD_EINVAL, FD_OK
from .numba_common import NUMBA_OPTIONS, ro, rw

__all__ = ["exact_accumulate"]


@njit(types.Tuple((types.int64, types.int64))(ro(types.int64), rw(types.int64)), **NUMBA_OPTIONS)
def exact_accumulate(bits, acc):
    """fd_exact_accumulate over the float64 values' bit patterns ``bits``: (status, bad index)."""
    for i in range(bits.size):
        v = bits[i]
        b = (v >> 52) & 0x7FF
        if b == 0x7FF:
            return FD_EINVAL, i
        m = v & ((np.int64(1) << 52) - 1)
        if b:
            m |= np.int64(1) << 52
        else:
            b = 1
        hi = m >> 26
        lo = m & ((np.int64(1) << 26) - 1)
        if v < 0:
            acc[2 * b] -= hi
            acc[2 * b + 1] -= lo
        else:
            acc[2 * b] += hi
            acc[2 * b + 1] += lo
    return FD_OK, -1
