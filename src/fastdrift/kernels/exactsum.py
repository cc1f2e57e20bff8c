"""Exact sums of float64 values, as integers in units of 2**-1126.

Every finite double is ``m * 2**(e - 53)`` with an integer ``|m| < 2**53`` and ``e`` in
[-1073, 1024] (:func:`numpy.frexp`), so every finite double, and any sum of them, is an integer
multiple of :data:`UNIT` = 2**-1126.  A sum is kept as that integer (a Python int): adding
two sums is exact and associative, so a state merged from any split of the rows equals the
state of one pass, bit for bit, and converting to float rounds once (correctly).

Per batch the values are grouped by exponent with :func:`numpy.bincount`: each mantissa is
split into a high part below 2**27 and a low part below 2**26 in magnitude, whose float64
bin sums stay exact (below 2**53) for chunks of up to 2**26 values; the few hundred nonzero
bins are then added as Python integers.  Cost: about 10 numpy passes over the batch per sum.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Optional

import numpy as np

__all__ = ["SHIFT", "N_BINS", "exact_sum", "exact_sums_by", "to_float", "two_square", "two_product", "MAX_BYTES",
           "int_to_bytes", "int_from_bytes"]

#: sums are integers in units of 2**-SHIFT
SHIFT = 1126
#: exponent bins: e + 1073 for e in [-1073, 1024]
N_BINS = 2098
_CHUNK = 1 << 24  # bin sums of |hi| < 2**27 stay below 2**53 for 2**26 values
_LO_BITS = 26
_LO_MASK = (1 << _LO_BITS) - 1
#: the largest serialized sum: 2**62 values of magnitude below 2**1024, in units of 2**-1126
MAX_BYTES = (62 + 1024 + SHIFT) // 8 + 2


def _split(x: np.ndarray):
    m, e = np.frexp(x)
    mant = np.ldexp(m, 53).astype(np.int64)
    return mant >> _LO_BITS, mant & _LO_MASK, (e + 1073).astype(np.intp)


def _fold(hi_sums: np.ndarray, lo_sums: np.ndarray, bins: np.ndarray) -> int:
    total = 0
    for h, lo, b in zip(hi_sums.tolist(), lo_sums.tolist(), bins.tolist()):
        total += ((int(h) << _LO_BITS) + int(lo)) << b
    return total


def exact_sum(x: np.ndarray) -> int:
    """The exact sum of finite float64 values ``x``, in units of 2**-:data:`SHIFT`."""
    x = np.asarray(x, dtype=np.float64)
    total = 0
    for s in range(0, x.size, _CHUNK):
        hi, lo, b = _split(x[s:s + _CHUNK])
        hs = np.bincount(b, weights=hi, minlength=N_BINS)
        ls = np.bincount(b, weights=lo, minlength=N_BINS)
        nz = np.flatnonzero((hs != 0) | (ls != 0))
        total += _fold(hs[nz], ls[nz], nz)
    return total


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


def _veltkamp(x: np.ndarray):
    c = 134217729.0 * x  # 2**27 + 1
    hi = c - (c - x)
    return hi, x - hi


def two_product(a: np.ndarray, b: np.ndarray):
    """``(p, e)`` with ``p + e == a * b`` exactly (Dekker's product), for operands and product
    in the normal range well away from overflow (an overflow shows as a non-finite ``p`` or ``e``)."""
    ah, al = _veltkamp(a)
    bh, bl = _veltkamp(b)
    p = a * b
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def two_square(x: np.ndarray):
    """``(p, e)`` with ``p + e == x * x`` exactly (Dekker's product with Veltkamp's split), for
    ``|x|`` in [2**-485, 2**511]; ``p`` is the rounded square."""
    c = 134217729.0 * x  # 2**27 + 1
    hi = c - (c - x)
    lo = x - hi
    p = x * x
    e = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo
    return p, e


def int_to_bytes(v: int) -> bytes:
    """A sum as little-endian two's complement bytes (the shortest form)."""
    return v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)


def int_from_bytes(raw: bytes) -> int:
    return int.from_bytes(raw, "little", signed=True)
