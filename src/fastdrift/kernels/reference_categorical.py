"""Pure-Python oracle for the categorical kernels (tests only; slow on purpose).

It shares no code with :mod:`fastdrift.kernels.cat`: values are decoded by
pyarrow (``to_pylist``, which also resolves dictionaries) and counted one by
one with a dict, following the documented semantics -- ids in order of first
arrival, keys arriving once ``max_ids`` keys are known go to ``other``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import pyarrow as pa

__all__ = ["RefCounts", "reference_counts", "reference_value_counts"]


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

    A second, independent oracle for inputs below the cap.
    """
    import pyarrow.compute as pc

    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    vc = pc.value_counts(arr.drop_null())
    return {d["values"]: d["counts"] for d in vc.to_pylist()}
