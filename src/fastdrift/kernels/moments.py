"""Streaming moments: count, min, max, sum, mean and m2 over finite values.

State layout (shared with ``kernels/fd_moments.c`` and :mod:`.numba_moments`):

* ``ints``  int64[5]: n finite, null, NaN, +inf, -inf
* ``flts``  float64[5]: min, max, sum, mean, m2 (sum of squared deviations
  from the mean), over finite values only

The empty state is ``ints = 0``, ``min = +inf``, ``max = -inf`` and
``sum = mean = m2 = 0``.  States merge with Chan et al.'s pairwise formula,
which is exact for the counts, min and max.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..errors import InvalidInputError
from . import Family, check_out, float64_pieces, numeric_values
from .native import FD_OK, check, column, lib, ptr

__all__ = ["empty_moments", "check_state", "moments_update", "moments_merge", "moments_merge_many", "moments_variance",
           "MOMENTS", "moments_merge_groups"]


def empty_moments() -> Tuple[np.ndarray, np.ndarray]:
    """A fresh, empty moments state.

    Returns
    -------
    ints : numpy.ndarray
        int64[5] zeros.
    flts : numpy.ndarray
        float64[5] = [+inf, -inf, 0, 0, 0].
    """
    ints = np.zeros(5, dtype=np.int64)
    flts = np.array([np.inf, -np.inf, 0.0, 0.0, 0.0], dtype=np.float64)
    return ints, flts


def check_state(ints: np.ndarray, flts: np.ndarray) -> None:
    """Raise unless ``(ints, flts)`` are writable, contiguous int64[5] and float64[5] arrays."""
    check_out(ints, np.int64, 5, "ints")
    check_out(flts, np.float64, 5, "flts")


class _CMoments:
    """``fd_moments_update`` of ``kernels/fd_moments.c``."""

    @staticmethod
    def update(view, ints: np.ndarray, flts: np.ndarray) -> int:
        return lib.fd_moments_update(column(view), ptr("int64_t*", ints), ptr("double*", flts))


class _NumbaMoments:
    """The same call on :mod:`.numba_moments`."""

    def __init__(self):
        from . import numba_moments  # numba loads only when this backend is used

        self.k = numba_moments

    def update(self, view, ints: np.ndarray, flts: np.ndarray) -> int:
        for values, validity, offset, length in float64_pieces(view):  # float64 entries only
            self.k.moments_update(values, validity, offset, length, ints, flts)
        return FD_OK


#: The moments' backend objects.
MOMENTS = Family("moments", c=_CMoments, numba=_NumbaMoments)


def moments_update(view, ints: np.ndarray, flts: np.ndarray, backend: Optional[str] = None) -> None:
    """Merge one column chunk into a moments state, in place.

    Parameters
    ----------
    view : fastdrift.adapters.arrow.ColumnView
        One chunk, from :func:`~fastdrift.adapters.arrow.iter_columns`.
    ints, flts : numpy.ndarray
        The state (see the module docstring); may already hold data.
    backend : {"c", "numba"}, optional
        Defaults to ``get_backend("moments")``.

    Raises
    ------
    SchemaError
        If the column is not numeric.
    InvalidInputError
        If the state arrays have the wrong shape or dtype.
    """
    check_state(ints, flts)
    if numeric_values(view, "moments need", ints, 1):
        check(MOMENTS(backend).update(view, ints, flts), "moments", view.name)


def moments_merge(ints: np.ndarray, flts: np.ndarray, other_ints: np.ndarray,
                  other_flts: np.ndarray) -> None:
    """Merge the state ``(other_ints, other_flts)`` into ``(ints, flts)``, in place.

    Counts, min and max are exact; sum, mean and m2 follow Chan et al.'s
    pairwise update (the same as the kernels use between blocks).

    Parameters
    ----------
    ints, flts : numpy.ndarray
        The state to update.
    other_ints, other_flts : numpy.ndarray
        The state merged in; not modified.
    """
    check_state(ints, flts)
    o_i = np.asarray(other_ints, dtype=np.int64)
    o_f = np.asarray(other_flts, dtype=np.float64)
    if o_i.shape != (5,) or o_f.shape != (5,):
        raise InvalidInputError("other state must be int64[5] and float64[5]")
    ints[1:] += o_i[1:]
    f = flts.tolist()
    ints[0] = _merge_step(f, int(ints[0]), int(o_i[0]), o_f.tolist())
    flts[:] = f


def moments_merge_many(ints: np.ndarray, flts: np.ndarray, other_ints: np.ndarray,
                       other_flts: np.ndarray) -> None:
    """:func:`moments_merge` of each row of ``other_ints`` (int64, ``(k, 5)``) and ``other_flts``
    (float64, ``(k, 5)``) in turn, in place: the same state, bit for bit, in one call."""
    check_state(ints, flts)
    o_i = np.asarray(other_ints, dtype=np.int64)
    o_f = np.asarray(other_flts, dtype=np.float64)
    if o_i.ndim != 2 or o_i.shape[1:] != (5,) or o_f.shape != o_i.shape:
        raise InvalidInputError("other states must be int64[k, 5] and float64[k, 5]")
    ints[1:] += o_i[:, 1:].sum(axis=0)
    f, na = flts.tolist(), int(ints[0])
    for nb, of in zip(o_i[:, 0].tolist(), o_f.tolist()):
        na = _merge_step(f, na, nb, of)
    flts[:] = f
    ints[0] = na


def moments_merge_groups(ints: np.ndarray, flts: np.ndarray, other_ints: np.ndarray, other_flts: np.ndarray,
                         lens: np.ndarray) -> None:
    """:func:`moments_merge_many` of each row ``g`` of ``ints`` / ``flts`` (``(G, 5)``) with its
    group, the next ``lens[g]`` rows of ``other_ints`` / ``other_flts`` (groups in row order), in
    place: the same states, bit for bit, the fold vectorized across groups.

    Step ``j`` merges every group's ``j``-th state at once with the elementwise operations of
    :func:`_merge_step`, in its order (IEEE float64 operations give the same bits in numpy as in
    Python); ``min`` / ``max`` as Python's (the first argument unless the second is smaller /
    larger)."""
    ints, flts = np.asarray(ints), np.asarray(flts)
    o_i = np.asarray(other_ints, dtype=np.int64)
    o_f = np.asarray(other_flts, dtype=np.float64)
    lens = np.asarray(lens, dtype=np.int64)
    g = ints.shape[0] if ints.ndim == 2 else -1
    if (ints.dtype != np.int64 or flts.dtype != np.float64 or ints.shape != (g, 5) or flts.shape != ints.shape
            or lens.shape != (g,) or (g and lens.min() < 0) or o_i.ndim != 2 or o_i.shape[1:] != (5,)
            or o_f.shape != o_i.shape or int(lens.sum()) != o_i.shape[0]):
        raise InvalidInputError("moments groups: states int64/float64[G, 5], lens int[G] >= 0 adding up to the "
                                "other states' rows")
    starts = np.cumsum(lens) - lens
    nz = lens > 0
    if nz.any():  # the starts of non-empty groups: each reduceat stretch is exactly its group's rows
        ints[nz, 1:] += np.add.reduceat(o_i[:, 1:], starts[nz], axis=0)
    na = ints[:, 0].copy()
    f = flts
    with np.errstate(all="ignore"):  # inf - inf etc. are states (overflowed sums), as in Python
        for j in range(int(lens.max()) if g else 0):
            rows = np.flatnonzero(lens > j)
            src = starts[rows] + j
            nb = o_i[src, 0]
            live = nb != 0
            rows, src, nb = rows[live], src[live], nb[live]
            if not rows.size:
                continue
            of = o_f[src]
            cur = f[rows]
            a = na[rows]
            mn = np.where(of[:, 0] < cur[:, 0], of[:, 0], cur[:, 0])
            mx = np.where(of[:, 1] > cur[:, 1], of[:, 1], cur[:, 1])
            n = (a + nb).astype(np.float64)
            nbf = nb.astype(np.float64)
            delta = of[:, 3] - cur[:, 3]
            mean = cur[:, 3] + delta * (nbf / n)
            m2 = cur[:, 4] + of[:, 4] + delta * delta * (a.astype(np.float64) * nbf / n)
            total = cur[:, 2] + of[:, 2]
            first = a == 0
            cur[:, 2] = np.where(first, of[:, 2], total)
            cur[:, 3] = np.where(first, of[:, 3], mean)
            cur[:, 4] = np.where(first, of[:, 4], m2)
            cur[:, 0], cur[:, 1] = mn, mx
            f[rows] = cur
            na[rows] = a + nb
    ints[:, 0] = na


def _merge_step(f: list, na: int, nb: int, of: list) -> int:
    """Fold the finite part of one state (``nb`` values, floats ``of``) into ``f`` (``na`` values), in
    place, by Chan et al.'s pairwise update; returns the new finite count."""
    if nb == 0:
        return na
    mn = min(f[0], of[0])
    mx = max(f[1], of[1])
    if na == 0:
        f[2:] = of[2:]
    else:
        n = float(na + nb)
        delta = of[3] - f[3]
        f[3] = f[3] + delta * (nb / n)
        f[4] = f[4] + of[4] + delta * delta * (float(na) * float(nb) / n)
        f[2] = f[2] + of[2]
    f[0] = mn
    f[1] = mx
    return na + nb


def moments_variance(ints: np.ndarray, flts: np.ndarray, ddof: int = 0) -> float:
    """Variance of the finite values of a state (NaN when ``n <= ddof``)."""
    n = int(ints[0])
    if n <= ddof:
        return float("nan")
    return float(flts[4]) / (n - ddof)
