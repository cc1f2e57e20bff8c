"""Slow oracles for every kernel family, independent of the kernels.

Tests compare both backends against these; tests and benchmarks iterate over
:data:`KERNELS` (family -> {"c", "numba", "reference"}) to reach every
implementation of a family.

The numeric oracles use NumPy.  The categorical oracle shares no code with
:mod:`fastdrift.kernels.cat`: values are decoded by pyarrow (``to_pylist``,
which also resolves dictionaries) and counted one by one with a dict,
following the documented semantics -- ids in order of first arrival, keys
arriving once ``max_ids`` keys are known go to ``other``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .cat import CatTable
from .hist import hist_update
from .moments import moments_update
from .quantile import exact_quantiles

__all__ = ["hist_reference", "moments_reference", "quantile_reference",
           "RefCounts", "reference_counts", "reference_value_counts", "KERNELS"]


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


def quantile_reference(values, qs):
    """``np.quantile`` (method "linear") of the finite, non-null values.

    Parameters
    ----------
    values : pyarrow.Array, pyarrow.ChunkedArray or numpy.ndarray
    qs : array_like
        Probabilities in [0, 1].

    Returns
    -------
    numpy.ndarray
        float64, one quantile per entry of ``qs``.
    """
    x, valid = _values_and_mask(values)
    x = x[valid]
    return np.quantile(x[np.isfinite(x)], np.asarray(qs, dtype=np.float64))


@dataclass
class RefCounts:
    """Oracle result: ``counts`` is ``{key: count}`` in order of first arrival."""

    counts: dict = field(default_factory=dict)
    other: int = 0
    null: int = 0

    @property
    def keys(self) -> list:
        return list(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + self.other + self.null


def _pylist(values) -> list:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    return list(values)


def reference_counts(values: Iterable, max_ids: int, into: RefCounts = None) -> RefCounts:
    """Count ``values`` (pyarrow array/chunked array or iterable; None = null).

    Parameters
    ----------
    values : pyarrow.Array, pyarrow.ChunkedArray or iterable
    max_ids : int
        Cardinality cap.
    into : RefCounts, optional
        Continue counting into an existing result (arrival order carries on).

    Returns
    -------
    RefCounts
    """
    out = into if into is not None else RefCounts()
    for v in _pylist(values):
        if v is None:
            out.null += 1
        elif v in out.counts:
            out.counts[v] += 1
        elif len(out.counts) < max_ids:
            out.counts[v] = 1
        else:
            out.other += 1
    return out


def reference_value_counts(values) -> dict:
    """``{key: count}`` of the non-null values via ``pyarrow.compute.value_counts`` (no cap).

    Not in :data:`KERNELS`: it checks :func:`reference_counts` itself (and
    ``CatTable.to_dict``) against an independent implementation, for inputs
    below the cap.
    """
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    vc = pc.value_counts(arr.drop_null())
    return {d["values"]: d["counts"] for d in vc.to_pylist()}


#: Every implementation of each kernel family, for tests and benches.
#: "c" / "numba" take
#:
#: * histogram: (view, index, counts, specials), counts updated in place;
#: * moments: (view, ints, flts), updated in place;
#: * quantile: (views, qs, n, lo, hi) with n, lo, hi the count, min and max of
#:   the finite values; returns the quantiles;
#: * categorical: (table, values, name=None), a
#:   :class:`~fastdrift.kernels.cat.CatTable` updated in place with a column
#:   or a view.
#:
#: "reference" takes the whole column: (values, edges), (values),
#: (values, qs) and (values, max_ids) respectively.
KERNELS = {
    "histogram": {"c": partial(hist_update, backend="c"), "numba": partial(hist_update, backend="numba"),
                  "reference": hist_reference},
    "moments": {"c": partial(moments_update, backend="c"), "numba": partial(moments_update, backend="numba"),
                "reference": moments_reference},
    "quantile": {"c": partial(exact_quantiles, backend="c"), "numba": partial(exact_quantiles, backend="numba"),
                 "reference": quantile_reference},
    "categorical": {"c": partial(CatTable.update, backend="c"), "numba": partial(CatTable.update, backend="numba"),
                    "reference": reference_counts},
}
