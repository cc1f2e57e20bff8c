"""Slow NumPy oracles for the numeric kernels, independent of them.

Tests compare both backends against these; benchmarks iterate over
:data:`KERNELS` to time every implementation of a family.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

__all__ = ["hist_reference", "moments_reference", "KERNELS"]


def _values_and_mask(values):
    """(float64 values, valid mask) of a pyarrow Array/ChunkedArray or numpy array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    if isinstance(values, pa.Array):
        if pa.types.is_null(values.type):
            return np.zeros(len(values)), np.zeros(len(values), dtype=bool)
        valid = ~np.asarray(values.is_null())
        raw = values.fill_null(0).to_numpy(zero_copy_only=False)
        return raw.astype(np.float64), valid
    arr = np.asarray(values)
    return arr.astype(np.float64), np.ones(arr.shape, dtype=bool)


def hist_reference(values, edges):
    """Expected histogram of ``values`` over ``edges``.

    Parameters
    ----------
    values : pyarrow.Array, pyarrow.ChunkedArray or numpy.ndarray
    edges : array_like
        Finite, strictly increasing float64 edges.

    Returns
    -------
    counts : numpy.ndarray
        int64[len(edges) + 1]; bin = ``np.searchsorted(edges, x, side="right")``.
    specials : numpy.ndarray
        int64[2] = [null, nan].
    """
    x, valid = _values_and_mask(values)
    edges = np.asarray(edges, dtype=np.float64)
    xv = x[valid]
    nan = np.isnan(xv)
    bins = np.searchsorted(edges, xv[~nan], side="right")
    counts = np.bincount(bins, minlength=edges.size + 1).astype(np.int64)
    return counts, np.array([int((~valid).sum()), int(nan.sum())], dtype=np.int64)


def moments_reference(values):
    """Expected moments state of ``values`` (exactly rounded sum via math.fsum).

    Returns
    -------
    ints : numpy.ndarray
        int64[5] = n finite, null, NaN, +inf, -inf.
    flts : numpy.ndarray
        float64[5] = min, max, sum, mean, m2 over finite values; m2 is
        computed in two passes around an fsum mean.
    """
    x, valid = _values_and_mask(values)
    xv = x[valid]
    fin = xv[np.isfinite(xv)]
    ints = np.array([fin.size, int((~valid).sum()), int(np.isnan(xv).sum()),
                     int(np.isposinf(xv).sum()), int(np.isneginf(xv).sum())], dtype=np.int64)
    if fin.size == 0:
        return ints, np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])
    s = math.fsum(fin.tolist())
    mean = s / fin.size
    m2 = math.fsum(((fin - mean) ** 2).tolist())
    return ints, np.array([np.min(fin), np.max(fin), s, mean, m2])


def _c_hist(view, index, counts, specials):
    from .hist import hist_update
    hist_update(view, index, counts, specials, backend="c")


def _numba_hist(view, index, counts, specials):
    from .hist import hist_update
    hist_update(view, index, counts, specials, backend="numba")


def _c_moments(view, ints, flts):
    from .moments import moments_update
    moments_update(view, ints, flts, backend="c")


def _numba_moments(view, ints, flts):
    from .moments import moments_update
    moments_update(view, ints, flts, backend="numba")


#: Every implementation of each numeric kernel family, for tests and benches.
#: "c" / "numba" take (view, index, counts, specials) or (view, ints, flts);
#: "reference" takes the whole column (and edges for the histogram).
KERNELS = {
    "histogram": {"c": _c_hist, "numba": _numba_hist, "reference": hist_reference},
    "moments": {"c": _c_moments, "numba": _numba_moments, "reference": moments_reference},
}
