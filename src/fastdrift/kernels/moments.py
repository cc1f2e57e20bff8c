"""Streaming moments: count, min, max, sum, mean and m2 over finite values.

State layout (shared with ``kernels/fd_moments.c`` and the numba backend):

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

from ..errors import InvalidInputError, SchemaError
from . import get_backend

__all__ = ["empty_moments", "moments_update", "moments_merge", "moments_variance"]


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


def _check_state(ints: np.ndarray, flts: np.ndarray) -> None:
    if not (isinstance(ints, np.ndarray) and ints.dtype == np.int64 and ints.shape == (5,)
            and ints.flags.c_contiguous and ints.flags.writeable):
        raise InvalidInputError("ints must be a writable contiguous int64 array of 5 entries")
    if not (isinstance(flts, np.ndarray) and flts.dtype == np.float64 and flts.shape == (5,)
            and flts.flags.c_contiguous and flts.flags.writeable):
        raise InvalidInputError("flts must be a writable contiguous float64 array of 5 entries")


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
    _check_state(ints, flts)
    if view.kind == "null":
        ints[1] += view.length
        return
    if view.kind != "numeric":
        raise SchemaError(f"column {view.name!r}: moments need numeric values, got "
                          f"{view.arrow_type if view.arrow_type is not None else view.kind}")
    if view.length == 0:
        return
    if backend is None:
        backend = get_backend("moments")
    if backend == "c":
        from . import native
        col = native.column(view)
        rc = native.lib.fd_moments_update(col, native.ptr("int64_t*", ints),
                                          native.ptr("double*", flts))
        native.check(rc, "moments", view.name)
    elif backend == "numba":
        from . import jit
        jit.moments_update(view.values, view.validity, view.offset, view.length, ints, flts)
    else:
        raise InvalidInputError(f"unknown backend {backend!r}")


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
    _check_state(ints, flts)
    o_i = np.asarray(other_ints, dtype=np.int64)
    o_f = np.asarray(other_flts, dtype=np.float64)
    if o_i.shape != (5,) or o_f.shape != (5,):
        raise InvalidInputError("other state must be int64[5] and float64[5]")
    na, nb = int(ints[0]), int(o_i[0])
    ints[1:] += o_i[1:]
    if nb == 0:
        return
    mn = min(float(flts[0]), float(o_f[0]))
    mx = max(float(flts[1]), float(o_f[1]))
    if na == 0:
        flts[2:] = o_f[2:]
    else:
        n = float(na + nb)
        delta = float(o_f[3]) - float(flts[3])
        flts[3] = float(flts[3]) + delta * (nb / n)
        flts[4] = float(flts[4]) + float(o_f[4]) + delta * delta * (float(na) * float(nb) / n)
        flts[2] = float(flts[2]) + float(o_f[2])
    flts[0] = mn
    flts[1] = mx
    ints[0] = na + nb


def moments_variance(ints: np.ndarray, flts: np.ndarray, ddof: int = 0) -> float:
    """Variance of the finite values of a state (NaN when ``n <= ddof``)."""
    n = int(ints[0])
    if n <= ddof:
        return float("nan")
    return float(flts[4]) / (n - ddof)
