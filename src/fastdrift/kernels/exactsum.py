"""Exact sums of float64 values, as integers in units of 2**-1126.

Every finite double is an integer multiple of 2**-1074, so any sum of doubles is an integer
multiple of :data:`UNIT` (2**-1126: the unit is finer than needed, the integers are exact either
way).  A sum is kept as that integer (a Python int): adding two sums is exact and associative,
so a state merged from any split of the rows equals the state of one pass, bit for bit, and
converting to float rounds once (correctly).

:class:`Accumulator` runs the ``exact`` kernel family (``kernels/fd_exact.c`` and its numba twin
:mod:`.numba_exact`): one pass adds each value's mantissa, split into 27 + 26 bits, into int64
accumulators per binary exponent, and the few hundred nonzero accumulators are then shifted and
added as Python integers.  It also sums products of two or three arrays exactly: each product is
first split into a sum of doubles (Dekker's two-product), exact barring overflow and underflow
(magnitudes between about 2**-969 and 2**996; ``RegressionPerformance`` rejects rows beyond).  :func:`exact_sums_by` (sums per
group) does the same with :func:`numpy.bincount` over (group, exponent) keys.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Optional

import numpy as np

from . import Family
from ..errors import InvalidInputError
from .native import FD_EINVAL, check, ffi, lib, ptr

__all__ = ["SHIFT", "N_BINS", "Accumulator", "exact_sum", "exact_sums_by", "to_float", "MAX_BYTES",
           "int_to_bytes", "int_from_bytes", "EXACT"]

#: sums are integers in units of 2**-SHIFT
SHIFT = 1126
#: exponent bins of :func:`exact_sums_by`: e + 1073 for frexp's e in [-1073, 1024]
N_BINS = 2098
_CHUNK = 1 << 24  # bin sums of |hi| < 2**27 stay below 2**53 for 2**26 values
_LO_BITS = 26
_LO_MASK = (1 << _LO_BITS) - 1
_KERNEL_CHUNK = 1 << 34  # the kernel's accumulators stay exact for 2**36 terms, 4 a row at most
_EXACT_BINS = lib.FD_EXACT_BINS
FD_EXACT_ABS = lib.FD_EXACT_ABS
_NULL = ffi.NULL
#: the largest serialized sum: 2**62 values of magnitude below 2**1024, in units of 2**-1126
MAX_BYTES = (62 + 1024 + SHIFT) // 8 + 2


class _CExact:
    """``fd_exact_dot`` of ``kernels/fd_exact.c``."""

    @staticmethod
    def dot(a, b, c, absolute: bool, acc: np.ndarray):
        bad = np.zeros(1, dtype=np.int64)
        rc = lib.fd_exact_dot(ptr("const double*", a), _NULL if b is None else ptr("const double*", b),
                              _NULL if c is None else ptr("const double*", c), a.size,
                              FD_EXACT_ABS if absolute else 0, ptr("int64_t*", acc), ptr("int64_t*", bad))
        return rc, int(bad[0])


class _NumbaExact:
    """The same call on :mod:`.numba_exact` (imported on first use)."""

    def __init__(self):
        from . import numba_exact  # numba loads only when this backend is used

        self.k = numba_exact

    def dot(self, a, b, c, absolute: bool, acc: np.ndarray):
        factors = 1 if b is None else (2 if c is None else 3)
        return self.k.exact_dot(a, a if b is None else b, a if c is None else c, factors, absolute, acc)


#: The exact-sum kernel's backend objects: ``dot(a, b, c, absolute, acc) -> (status, bad row)``.
EXACT = Family("exact", c=_CExact, numba=_NumbaExact)


def _f64(x, n: Optional[int] = None) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 1 or (n is not None and x.size != n):
        raise InvalidInputError(f"exact sum: factors must be 1-D arrays of one length, got shape {x.shape}")
    return x


class Accumulator:
    """A running exact sum: :meth:`add` values or products of values, :meth:`value` the total
    (in units of 2**-:data:`SHIFT`).  Holds 2 * FD_EXACT_BINS int64 accumulators (32 KB)."""

    __slots__ = ("_k", "_acc", "_added", "_total")

    def __init__(self, backend: Optional[str] = None):
        self._k = EXACT(backend)
        self._acc = np.zeros(2 * _EXACT_BINS, dtype=np.int64)
        self._added = 0
        self._total = 0

    def add(self, a, b=None, c=None, *, absolute: bool = False) -> "Accumulator":
        """Add ``a``, or the products ``a * b`` or ``a * b * c`` (exactly), or their absolute values;
        InvalidInputError on a NaN or infinite term (a product that overflows)."""
        a = _f64(a)
        b = None if b is None else _f64(b, a.size)
        c = None if c is None else _f64(c, a.size)
        if c is not None and b is None:
            raise InvalidInputError("exact sum: a third factor needs a second")
        for s in range(0, a.size, _KERNEL_CHUNK):
            e = s + _KERNEL_CHUNK
            if self._added + min(e, a.size) - s > _KERNEL_CHUNK:
                self._fold()
            rc, bad = self._k.dot(a[s:e], None if b is None else b[s:e], None if c is None else c[s:e],
                                  absolute, self._acc)
            if rc == FD_EINVAL and bad >= 0:
                raise InvalidInputError(f"exact sum: the term of row {s + bad} is not finite")
            check(rc, "fd_exact_dot")
            self._added += min(e, a.size) - s
        return self

    def _fold(self) -> None:
        acc = self._acc
        hi, lo = acc[0::2], acc[1::2]
        for k in np.flatnonzero((hi != 0) | (lo != 0)).tolist():
            self._total += ((int(hi[k]) << _LO_BITS) + int(lo[k])) << (k + 51)  # 2**(k - 1075) in units
        acc[:] = 0
        self._added = 0

    def value(self) -> int:
        """The exact sum so far."""
        self._fold()
        return self._total


def exact_sum(*xs, backend: Optional[str] = None) -> int:
    """The exact sum of the finite float64 values of every array ``xs``, in units of 2**-:data:`SHIFT`.

    Raises InvalidInputError on a NaN or an infinity."""
    acc = Accumulator(backend)
    for x in xs:
        acc.add(x)
    return acc.value()


def _split(x: np.ndarray):
    m, e = np.frexp(x)
    mant = np.ldexp(m, 53).astype(np.int64)
    return mant >> _LO_BITS, mant & _LO_MASK, (e + 1073).astype(np.intp)


def exact_sums_by(groups: np.ndarray, x: np.ndarray, n_groups: int) -> list:
    """Exact sums of finite ``x`` per group (``groups`` in [0, n_groups)), in units of 2**-:data:`SHIFT`."""
    x = np.asarray(x, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    out = [0] * n_groups
    for s in range(0, x.size, _CHUNK):
        hi, lo, b = _split(x[s:s + _CHUNK])
        keys, inv = np.unique(groups[s:s + _CHUNK] * N_BINS + b, return_inverse=True)
        hs = np.bincount(inv, weights=hi, minlength=keys.size)
        ls = np.bincount(inv, weights=lo, minlength=keys.size)
        for k, h, lo_ in zip(keys.tolist(), hs.tolist(), ls.tolist()):
            g, bin_ = divmod(k, N_BINS)
            out[g] += ((int(h) << _LO_BITS) + int(lo_)) << bin_
    return out


def to_float(num: int, den: Optional[int] = None) -> float:
    """``num / den`` correctly rounded (``num`` in units of 2**-SHIFT when ``den`` is None); NaN for 0/0."""
    if den is None:
        den = 1 << SHIFT
    if den == 0:
        return float("nan")
    return float(Fraction(num, den))


def int_to_bytes(v: int) -> bytes:
    """A sum as little-endian two's complement bytes (the shortest form)."""
    return v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)


def int_from_bytes(raw: bytes) -> int:
    return int.from_bytes(raw, "little", signed=True)
