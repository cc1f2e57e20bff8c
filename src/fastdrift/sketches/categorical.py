"""Categorical counts with a cardinality cap.

Counts every value of a string, large_string, dictionary, boolean or integer
column by category.  The first ``max_categories`` distinct values (default
10,000) get their own counter, in order of first arrival; values of any
further category are counted in ``other_count`` -- counted, never dropped, so
``sum(counts) + other_count + null_count == count`` always.  Strings are
hashed in C (or numba) straight from the Arrow buffers; a dictionary array's
indices are counted first and its (small) dictionary mapped to stable
category ids afterwards, so the per-value cost does not depend on the string
length.

Merging is exact while the union of categories fits under the cap (the same
category -> count mapping as one pass, whatever the split).  Past the cap,
totals stay exact, but which categories own a counter depends on arrival
order, as in a single pass.  Memory: about ``40 + key length`` bytes per
category plus a hash table of at most ``16 * max_categories`` bytes.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from ..adapters.arrow import as_arrow, iter_columns
from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError, SchemaError
from ..kernels.cat import CatTable, value_type_of
from .. import codec
from .base import MAX_COUNT, Sketch, count_total

__all__ = ["Categorical", "key_type_of"]

_KEY_CODES = {None: 0, "str": 1, "int": 2, "bool": 3}
_MAX_CAP = 1 << 26


# The sketch's key types, from the kernel's value types (binary columns are not categories here).
_KEY_OF_VALUE_TYPE = {"string": "str", "bool": "bool", "int": "int", "uint": "int"}


def key_type_of(t: pa.DataType) -> Optional[str]:
    """"str", "int" or "bool" for an Arrow type a Categorical counts, else None."""
    if pat.is_dictionary(t):
        t = t.value_type
    return _KEY_OF_VALUE_TYPE.get(value_type_of(t))


class Categorical(Sketch):
    """Counts per category, plus ``other`` (beyond the cap) and ``null`` counters.

    Parameters
    ----------
    max_categories : int, default 10000
        Cardinality cap.
    key_type : {"str", "int", "bool"}, optional
        Fixed at the first update when not given.
    name : str, optional
        Column name, used in error messages.

    Examples
    --------
    >>> import pyarrow as pa, fastdrift
    >>> c = fastdrift.Categorical().update(pa.array(["a", "b", None, "a"]))
    >>> c.categories, c.counts.tolist(), c.null_count
    (['a', 'b'], [2, 1], 1)
    """

    KIND = codec.Kind.CATEGORICAL

    def __init__(self, max_categories: int = 10_000, *, key_type: Optional[str] = None,
                 name: Optional[str] = None):
        super().__init__(name)
        if not isinstance(max_categories, (int, np.integer)) or not 1 <= max_categories <= _MAX_CAP:
            raise InvalidInputError(f"max_categories must be an integer in [1, {_MAX_CAP}], got {max_categories!r}")
        if key_type not in _KEY_CODES:
            raise InvalidInputError(f"key_type must be 'str', 'int', 'bool' or None, got {key_type!r}")
        self.max_categories = int(max_categories)
        self._key_type = key_type
        self._table: Optional[CatTable] = None
        self._null0 = 0  # nulls seen before the key type was known (all-null batches)

    def _ensure_table(self) -> CatTable:
        if self._table is None:
            self._table = CatTable("str" if self._key_type == "str" else "int", self.max_categories)
        return self._table

    # -- attributes -------------------------------------------------------
    @property
    def key_type(self) -> Optional[str]:
        return self._key_type

    @property
    def categories(self) -> list:
        if self._table is None:
            return []
        keys = self._table.keys()
        if self._key_type == "bool":
            return [bool(k) for k in keys]
        return list(keys)

    @property
    def counts(self) -> np.ndarray:
        if self._table is None:
            return np.zeros(0, dtype=np.int64)
        return np.array(self._table.counts, dtype=np.int64, copy=True)

    @property
    def other_count(self) -> int:
        return int(self._table.other) if self._table is not None else 0

    @property
    def null_count(self) -> int:
        return self._null0 + (int(self._table.null) if self._table is not None else 0)

    @property
    def count(self) -> int:
        return self._null0 + (self._table.total if self._table is not None else 0)

    @property
    def is_empty(self) -> bool:
        return self.count == 0

    def to_dict(self) -> Dict[object, int]:
        """{category: count} in order of first arrival (``other`` and nulls excluded)."""
        return dict(zip(self.categories, self.counts.tolist()))

    def __repr__(self):
        return (f"Categorical(categories={len(self.categories)}, count={self.count}, other={self.other_count}, "
                f"null={self.null_count}, max_categories={self.max_categories})")

    def __eq__(self, other):
        if type(other) is not Categorical:
            return NotImplemented
        with self._reading(other):
            return (self.max_categories == other.max_categories and self._key_type == other._key_type
                    and self.to_dict() == other.to_dict() and self.other_count == other.other_count
                    and self.null_count == other.null_count)

    __hash__ = None

    # -- hooks --------------------------------------------------------------
    def _update(self, values) -> None:
        arr = as_arrow(values, self.name)
        self._room(len(arr))
        t = arr.type
        if pat.is_null(t):
            self._null0 += len(arr)
            return
        kt = key_type_of(t)
        label = f"column {self.name!r}" if self.name is not None else "values"
        if kt is None:
            raise SchemaError(f"{label}: a Categorical counts strings, dictionaries, booleans or integers, "
                              f"got Arrow type {t}")
        if self._key_type is None:
            self._key_type = kt
        elif kt != self._key_type:
            raise SchemaError(f"{label}: categories are {self._key_type} keys, got Arrow type {t}")
        table = self._ensure_table()
        work = table.copy()  # a failure half-way must lose nothing counted before
        for view in iter_columns(arr, self.name):
            work.update(view)
        self._table = work

    def update_first_counts(self, arrow_type: pa.DataType, rows: int, keys: pa.Array, counts: np.ndarray,
                            first: np.ndarray, n_null: int, backend: Optional[str] = None,
                            source: Optional[CatTable] = None) -> "Categorical":
        """Count ``rows`` values of a column of ``arrow_type`` given as counts: ``keys[x]`` ``counts[x]``
        times, in order of first arrival ``first[x]`` (read where ``counts > 0``), and ``n_null`` nulls.

        The same state as :meth:`update` of those rows (a segment's rows of a column counted in one
        read of the whole column, :mod:`fastdrift.kernels.seg`).  ``source``: the table whose keys
        ``keys`` are (``keys_array()``, string keys): an empty sketch copies their bytes and hashes
        (:meth:`CatTable.add_keys_of`) instead of hashing them again.
        """
        with self._mutating():
            self._room(rows)
            label = f"column {self.name!r}" if self.name is not None else "values"
            kt = key_type_of(arrow_type)
            if kt is None:
                raise SchemaError(f"{label}: a Categorical counts strings, dictionaries, booleans or integers, "
                                  f"got Arrow type {arrow_type}")
            if self._key_type is not None and kt != self._key_type:
                raise SchemaError(f"{label}: categories are {self._key_type} keys, got Arrow type {arrow_type}")
            self._key_type = kt
            vt = value_type_of(arrow_type.value_type if pat.is_dictionary(arrow_type) else arrow_type)
            if source is not None and (self._table is None or self._table.n_ids == 0):
                used = np.flatnonzero(counts)
                order = used[np.argsort(first[used], kind="stable")]
                work = self._ensure_table().copy()
                if work.add_keys_of(source, order, counts[order], n_null, vt, backend):
                    self._table = work
                    return self
            work = self._ensure_table().copy()
            work.add_first_counts(keys, counts, first, n_null, vt, backend, self.name)
            self._table = work
        return self

    def _compatible(self, other) -> None:
        if other.max_categories != self.max_categories:
            raise IncompatibleSketchError(
                f"max_categories differ: {self.max_categories} vs {other.max_categories}")
        if other._key_type is not None and self._key_type is not None and other._key_type != self._key_type:
            raise IncompatibleSketchError(f"key types differ: {self._key_type} vs {other._key_type}")
        if self._table is not None and other._table is not None:
            self._table.check_mergeable(other._table)

    def _merge(self, other) -> None:
        self._compatible(other)  # again: a merge_many's earlier part may have set the key type
        if self._key_type is None:
            self._key_type = other._key_type
        self._null0 += other._null0
        if other._table is not None:
            self._ensure_table().merge_from(other._table)

    def _merge_many(self, others) -> None:
        key_type = self._key_type
        for o in others:  # all checked before any counts: an error merges none
            if o.max_categories != self.max_categories:
                raise IncompatibleSketchError(
                    f"max_categories differ: {self.max_categories} vs {o.max_categories}")
            if o._key_type is not None and key_type is not None and o._key_type != key_type:
                raise IncompatibleSketchError(f"key types differ: {key_type} vs {o._key_type}")
            key_type = key_type if key_type is not None else o._key_type
        tables = [o._table for o in others if o._table is not None]
        self._key_type = key_type
        if tables:
            self._ensure_table().merge_many(tables)
        self._null0 += sum(o._null0 for o in others)

    def _copy(self):
        c = Categorical(self.max_categories, key_type=self._key_type, name=self.name)
        c._null0 = self._null0
        c._table = self._table.copy() if self._table is not None else None
        return c

    def _params(self) -> bytes:
        return codec.Writer().u64(self.max_categories).u8(_KEY_CODES[self._key_type]).getvalue()

    def _payload(self) -> bytes:
        w = codec.Writer()
        keys = self._table.keys() if self._table is not None else []
        w.u64(len(keys))
        if self._key_type == "str":
            for k in keys:
                w.string(k)
        elif self._table is not None:
            # raw int64 bit patterns: uint64 keys >= 2**63 survive the round trip as negatives
            w.i64_array(self._table._int_keys[:len(keys)])
        else:
            w.i64_array(np.zeros(0, dtype=np.int64))
        w.i64_array(self.counts)
        w.u64(self.other_count)
        w.u64(self.null_count)
        return w.getvalue()

    @classmethod
    def _decode(cls, params, payload):
        r = codec.Reader(params, "categorical parameters")
        cap = r.u64()
        code = r.u8()
        r.done()
        types = {v: k for k, v in _KEY_CODES.items()}
        if code not in types or not 1 <= cap <= _MAX_CAP:
            raise CorruptStateError(f"categorical parameters invalid (cap {cap}, key type code {code})")
        key_type = types[code]
        r = codec.Reader(payload, "categorical payload")
        n = r.u64()
        if n > cap or n > len(payload):
            raise CorruptStateError(f"categorical payload declares {n} categories (cap {cap})")
        if key_type == "str":
            keys = [r.string() for _ in range(n)]
        else:
            keys = r.i64_array().tolist()
            if key_type == "bool" and any(k not in (0, 1) for k in keys):
                raise CorruptStateError("boolean categorical has keys other than 0/1")
        counts = r.i64_array()
        other = r.u64()
        null = r.u64()
        r.done()
        if len(keys) != n or counts.size != n:
            raise CorruptStateError(f"categorical payload: {len(keys)} keys, {counts.size} counts, expected {n}")
        if other > MAX_COUNT or null > MAX_COUNT:
            raise CorruptStateError(f"categorical payload: other {other} or null {null} count above {MAX_COUNT}")
        count_total(np.concatenate([counts, [other, null]]), "categorical payload")
        if len(set(keys)) != len(keys):
            raise CorruptStateError("categorical payload has duplicate categories")
        if key_type is None and n:
            raise CorruptStateError("categorical payload has categories but no key type")
        c = cls(int(cap), key_type=key_type)
        if key_type is None:
            if other:
                raise CorruptStateError("categorical payload has 'other' counts but no key type")
            c._null0 = int(null)
        else:
            c._ensure_table().add_counts(keys, counts, other=int(other), null=int(null))
        return c
