"""Exact categorical counts with a cardinality cap: :class:`CatTable`.

The table storage is a handful of numpy arrays (see ``fd_cat_table`` in
``kernels/fastdrift.h``) that both kernel backends read and write in place.
The kernels never allocate: when an insertion needs more room they stop with
``FD_EGROW`` and the element index to resume from; this module grows the
arrays and calls again, so nothing is counted twice or lost.

Keys get dense ids in order of first arrival.  Once ``max_ids`` keys are
known, values of further new keys are counted in :attr:`CatTable.other`.
"""
from __future__ import annotations

from typing import Iterable, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from ..adapters.arrow import ColumnView, is_binary_type, is_string_type, iter_columns
from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError, NativeError, SchemaError
from . import Family
from .native import (
    FD_CAT_ARENA_USED,
    FD_CAT_ID_NULL,
    FD_CAT_ID_OTHER,
    FD_CAT_LOAD_DEN,
    FD_CAT_MAX_IDS,
    FD_CAT_META_LEN,
    FD_CAT_N_IDS,
    FD_CAT_NULL,
    FD_CAT_OTHER,
    FD_EGROW,
    FD_EINVAL,
    FD_I8,
    FD_OK,
    FD_U8,
    FD_U64,
    check,
    column,
    ffi,
    lib,
    ptr,
)

__all__ = ["CatTable", "CAT", "value_type_of"]

_INT_CODES = range(FD_I8, FD_U64 + 1)
_UNSIGNED_CODES = range(FD_U8, FD_U64 + 1)
_MAX_CAP = 2**31 - 1  # ids are int32 in the slot array

_DEFAULT_INITIAL = {"slots": 64, "ids": 16, "arena": 256}
#: An empty table counting a dictionary column makes room for all its entries before the count
#: when they are at most this many keys of at most this many bytes.
_RESERVE_MAX_KEYS = 1 << 14
_RESERVE_MAX_BYTES = 1 << 20
# The table grows before more than 1/FD_CAT_LOAD_DEN of its slots are used, by the rule of
# fd_must_grow in fd_cat.c: at 1/4, linear probing needs ~1.17 probes per hit instead of ~1.5 at
# 1/2, and each extra probe is a likely branch mispredict (bench/bench_categorical.py times the tables).
_EMPTY_I64 = np.zeros(0, dtype=np.int64)
_EMPTY_U8 = np.zeros(0, dtype=np.uint8)


def value_type_of(arrow_type: pa.DataType) -> Optional[str]:
    """The logical key type of an Arrow type, or None when it is not categorical."""
    if is_string_type(arrow_type):  # string_view too: adapters.counted makes it large_string
        return "string"
    if is_binary_type(arrow_type) and not pat.is_fixed_size_binary(arrow_type):
        return "binary"
    if pat.is_boolean(arrow_type):
        return "bool"
    if pat.is_unsigned_integer(arrow_type):
        return "uint"
    if pat.is_signed_integer(arrow_type):
        return "int"
    return None


_KIND_OF_VALUE_TYPE = {"string": "str", "binary": "str", "bool": "int", "int": "int", "uint": "int"}


def _combine_value_types(a: Optional[str], b: Optional[str]):
    """Value type of a table holding keys of types a and b; False if they cannot share a table."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    pair = {a, b}
    if pair == {"string", "binary"}:
        return "binary"  # keys() must return bytes: not every key is utf-8
    if pair <= {"int", "uint", "bool"}:
        # Booleans are the integer keys 0/1; a table that also holds other
        # integers (e.g. rebuilt from serialized int keys) reports ints.
        return "int"
    return False


class _CCat:
    """The calls of ``kernels/fd_cat.c``, with the table struct cached between growths."""

    @staticmethod
    def _struct(tab: "CatTable"):
        if tab._cstruct is None:
            t = ffi.new("fd_cat_table*")
            t.slots = ptr("int32_t*", tab._slots)
            t.n_slots = tab._slots.size
            t.hashes = ptr("uint64_t*", tab._hashes)
            t.key_offsets = ptr("int64_t*", tab._key_offsets)
            t.int_keys = ptr("int64_t*", tab._int_keys)
            t.arena = ptr("uint8_t*", tab._arena)
            t.arena_cap = tab._arena.size
            t.counts = ptr("int64_t*", tab._counts)
            t.id_cap = tab._hashes.size
            t.meta = ptr("int64_t*", tab._meta)
            tab._cstruct = t
        return tab._cstruct

    def run(self, tab, view, start, ids, order=None):
        prog = ffi.new("int64_t*")
        if ids is None:
            rc = lib.fd_cat_update(column(view), self._struct(tab), start, prog)
        elif order is None:
            rc = lib.fd_cat_lookup(column(view), self._struct(tab), start, ptr("int64_t*", ids), prog)
        else:
            rc = lib.fd_cat_lookup_order(column(view), ptr("const int64_t*", order), order.size,
                                         self._struct(tab), start, ptr("int64_t*", ids), prog)
        return rc, prog[0]

    def add_order(self, tab, view, order, n_order, w, start):
        prog, pend = ffi.new("int64_t*"), ffi.new("int64_t*")
        rc = lib.fd_cat_add_order(column(view), ptr("const int64_t*", order), n_order, ptr("const int64_t*", w),
                                  self._struct(tab), start, prog, pend)
        return rc, prog[0], pend[0]

    @staticmethod
    def first_use_order(counts, first, order):
        m = ffi.new("int64_t*")
        scratch = np.empty(counts.size, dtype=np.int64)
        rc = lib.fd_first_use_order(ptr("const int64_t*", counts), ptr("const int64_t*", first), counts.size,
                                    ptr("int64_t*", order), ptr("int64_t*", scratch), m)
        return rc, m[0]

    def rehash(self, tab):
        return lib.fd_cat_rehash(self._struct(tab))

    @staticmethod
    def count_indices(view, bins, first):
        n_null = ffi.new("int64_t*")
        prog = ffi.new("int64_t*")
        rc = lib.fd_count_indices(column(view), ptr("int64_t*", bins), ptr("int64_t*", first), bins.size,
                                  n_null, prog)
        return rc, prog[0], n_null[0]

    def seg_count(self, tab, view, start, codes, n_seg, width, bins, first, first_base, n_null):
        prog, bad = ffi.new("int64_t*"), ffi.new("int64_t*")
        rc = lib.fd_seg_cat_count(column(view), self._struct(tab), start, ptr("const int32_t*", codes), n_seg, width,
                                  ptr("int64_t*", bins), ptr("int64_t*", first), first_base, ptr("int64_t*", n_null),
                                  prog, bad)
        return rc, prog[0], bad[0]

    @staticmethod
    def bool_count(view):
        out = ffi.new("int64_t[3]")
        rc = lib.fd_bool_count(column(view), out + 0, out + 1, out + 2)
        return rc, out[0], out[1], out[2]


class _NumbaCat:
    """The same calls on :mod:`.numba_cat` (imported on first use)."""

    def __init__(self):
        from . import numba_cat  # numba loads only when this backend is used

        self.k = numba_cat

    def run(self, tab, view, start, ids, order=None):
        lookup = ids is not None
        out = ids if lookup else _EMPTY_I64
        n_order = -1 if order is None else order.size
        order = _EMPTY_I64 if order is None else order
        if view.kind == "string":
            return self.k.cat_run_str(view.offsets, view.values, view.validity, view.offset, view.length,
                                      start, tab._slots, tab._hashes, tab._key_offsets, tab._arena,
                                      tab._counts, tab._meta, out, lookup, order, n_order)
        return self.k.cat_run_int(view.values, view.validity, view.offset, view.length, start,
                                  tab._slots, tab._hashes, tab._int_keys, tab._counts, tab._meta,
                                  out, lookup, order, n_order)

    def add_order(self, tab, view, order, n_order, w, start):
        if view.kind == "string":
            return self.k.cat_add_order_str(view.offsets, view.values, view.validity, view.offset, view.length,
                                            start, tab._slots, tab._hashes, tab._key_offsets, tab._arena,
                                            tab._counts, tab._meta, order, n_order, w)
        return self.k.cat_add_order_int(view.values, view.validity, view.offset, view.length, start,
                                        tab._slots, tab._hashes, tab._int_keys, tab._counts, tab._meta,
                                        order, n_order, w)

    def first_use_order(self, counts, first, order):
        return self.k.first_use_order(counts, first, order, np.empty(counts.size + 256, dtype=np.int64))

    def rehash(self, tab):
        return self.k.cat_rehash(tab._slots, tab._hashes, tab._meta)

    def count_indices(self, view, bins, first):
        scratch = np.empty(4 * bins.size if bins.size <= self.k._IDX_SPLIT else 0, np.int64)
        unseen = np.empty(bins.size if first.size else 0, np.uint8)
        return self.k.count_indices(view.values, view.validity, view.offset, view.length, bins, first, scratch,
                                    unseen)

    def seg_count(self, tab, view, start, codes, n_seg, width, bins, first, first_base, n_null):
        if view.kind == "string":
            return self.k.seg_count_str(view.offsets, view.values, view.validity, view.offset, view.length, start,
                                        tab._slots, tab._hashes, tab._key_offsets, tab._arena, tab._counts, tab._meta,
                                        codes, n_seg, width, bins, first, first_base, n_null)
        return self.k.seg_count_int(view.values, view.validity, view.offset, view.length, start,
                                    tab._slots, tab._hashes, tab._int_keys, tab._counts, tab._meta,
                                    codes, n_seg, width, bins, first, first_base, n_null)

    def bool_count(self, view):
        return (FD_OK, *self.k.bool_count(view.values, view.validity, view.offset, view.length))


#: The categorical kernels' backend objects: ``run`` (count a view, or look its keys up), ``rehash``,
#: ``count_indices`` and ``bool_count``, each returning an fd_status first.
CAT = Family("categorical", c=_CCat, numba=_NumbaCat)


def _unpack_bits(bits: np.ndarray, start: int, n: int) -> np.ndarray:
    """Bits [start, start + n) of an LSB-first bitmap as a bool array."""
    lo = start >> 3
    hi = (start + n + 7) >> 3
    u = np.unpackbits(bits[lo:hi], bitorder="little")
    s = start & 7
    return u[s:s + n].astype(bool)


#: Entries of the largest dictionary a table remembers (_DictMemo).
_DICT_MEMO_MAX = 1 << 16
#: _DictMemo.ids of an entry not looked up yet (ids are >= 0, FD_CAT_ID_OTHER or FD_CAT_ID_NULL).
_UNSEEN = -4


class _DictMemo:
    """A dictionary's entries' ids in a table: ``dictionary`` is the table's own copy (the caller's
    buffers may be reused and rewritten), ``ids[x]`` the id of entry ``x`` or ``_UNSEEN``.  Ids
    only ever get appended to a table, so an entry's id, once looked up, stays valid; a table
    whose keys are replaced wholesale (:meth:`CatTable.add_keys_of`) drops its memo."""

    __slots__ = ("dictionary", "ids", "direct")

    def __init__(self, dictionary: pa.Array):
        n = len(dictionary)
        self.dictionary = dictionary.take(pa.array(np.arange(n, dtype=np.int64)))  # a copy
        self.ids = np.full(n, _UNSEEN, dtype=np.int64)
        #: Every entry has been looked up and has an id of its own (no null entry, no entry past
        #: the cap, no value twice): a batch's counts by entry then go straight to ``ids``.
        self.direct = False

    def assigned(self) -> None:
        """Ids were just looked up for some entries: update :attr:`direct`."""
        ids = self.ids
        self.direct = bool(ids.size) and bool((ids >= 0).all()) and np.unique(ids).size == ids.size


class CatTable:
    """Exact counts of categorical values, in order of first arrival, up to ``max_ids`` keys.

    Parameters
    ----------
    key_kind : {"str", "int"}
        ``"str"`` counts string and binary columns (and dictionaries of them);
        ``"int"`` counts integer and boolean columns (booleans as keys 0/1).
    max_ids : int, default 10000
        Cardinality cap.  Values of keys arriving once ``max_ids`` keys are
        known are counted in :attr:`other`.
    _initial : dict, optional
        Test hook: initial ``{"slots", "ids", "arena"}`` capacities.

    Notes
    -----
    uint64 keys are stored as their int64 bit pattern: in a table that sees
    both signed and unsigned columns, uint64 values >= 2**63 share keys with
    negative integers, and :meth:`keys` reports them as negative.

    A dictionary column's batches often share one dictionary (an Arrow IPC
    stream, a Parquet column chunk read in batches, a pandas categorical):
    once two batches in a row bring equal dictionaries, the table keeps a copy
    of it and the id of each entry, so that later batches with an equal
    dictionary add their counts by id, looking up only entries not seen yet,
    instead of taking and hashing every entry their rows use again
    (``_DictMemo``; docs/performance.md).
    """

    _dict_memo: Optional["_DictMemo"] = None  # instance attributes once set; copies start without
    _dict_last: Optional[pa.Array] = None

    def __init__(self, key_kind: str, max_ids: int = 10000, *, _initial: Optional[dict] = None):
        if key_kind not in ("str", "int"):
            raise InvalidInputError(f"key_kind must be 'str' or 'int', got {key_kind!r}")
        if isinstance(max_ids, bool) or not isinstance(max_ids, (int, np.integer)) \
                or not 0 <= max_ids <= _MAX_CAP // 2:
            raise InvalidInputError(f"max_ids must be an integer in [0, {_MAX_CAP // 2}], got {max_ids!r}")
        init = dict(_DEFAULT_INITIAL, **(_initial or {}))
        n_slots = int(init["slots"])
        if n_slots < 2 or n_slots & (n_slots - 1):
            raise InvalidInputError(f"initial slots must be a power of two >= 2, got {n_slots}")
        id_cap = max(1, int(init["ids"]))
        self.key_kind = key_kind
        self.max_ids = int(max_ids)
        #: Logical type of the keys seen: None, "string", "binary", "bool", "int", "uint".
        self.value_type: Optional[str] = None
        self._slots = np.full(n_slots, -1, dtype=np.int32)
        self._hashes = np.zeros(id_cap, dtype=np.uint64)
        self._counts = np.zeros(id_cap, dtype=np.int64)
        if key_kind == "str":
            self._key_offsets = np.zeros(id_cap + 1, dtype=np.int64)
            self._arena = np.zeros(max(1, int(init["arena"])), dtype=np.uint8)
            self._int_keys = _EMPTY_I64
        else:
            self._key_offsets = _EMPTY_I64
            self._arena = _EMPTY_U8
            self._int_keys = np.zeros(id_cap, dtype=np.int64)
        self._meta = np.zeros(FD_CAT_META_LEN, dtype=np.int64)
        self._meta[FD_CAT_MAX_IDS] = self.max_ids
        self._cstruct = None

    # ---- read access ---------------------------------------------------------

    @property
    def n_ids(self) -> int:
        """Number of distinct keys counted individually."""
        return int(self._meta[FD_CAT_N_IDS])

    @property
    def counts(self) -> np.ndarray:
        """Read-only int64 counts per id (length :attr:`n_ids`)."""
        v = self._counts[:self.n_ids]
        v.flags.writeable = False
        return v

    @property
    def other(self) -> int:
        """Values whose key arrived after the cap was reached."""
        return int(self._meta[FD_CAT_OTHER])

    @property
    def null(self) -> int:
        """Null values."""
        return int(self._meta[FD_CAT_NULL])

    @property
    def total(self) -> int:
        """Every value counted: ``counts.sum() + other + null``."""
        return int(self.counts.sum()) + self.other + self.null

    def keys(self) -> list:
        """Keys in id order: str (bytes for binary columns), int, or bool.

        Returns
        -------
        list
        """
        n = self.n_ids
        if self.key_kind == "str":
            ko = self._key_offsets
            raw = self._arena
            out = [raw[ko[i]:ko[i + 1]].tobytes() for i in range(n)]
            if self.value_type == "binary":
                return out
            return [b.decode("utf-8") for b in out]
        k = self._int_keys[:n]
        if self.value_type == "bool":
            return [bool(x) for x in k]
        if self.value_type == "uint":
            return k.view(np.uint64).tolist()
        return k.tolist()

    def to_dict(self) -> dict:
        """``{key: count}`` in id order."""
        return dict(zip(self.keys(), self.counts.tolist()))

    def __repr__(self) -> str:
        return (f"CatTable(key_kind={self.key_kind!r}, max_ids={self.max_ids}, n_ids={self.n_ids}, "
                f"other={self.other}, null={self.null})")

    # ---- growth --------------------------------------------------------------

    def _grow(self, backend, pending_bytes: int) -> None:
        """Make room for one more key of ``pending_bytes`` bytes."""
        if not self._make_room(backend, self.n_ids + 1, pending_bytes):
            raise NativeError("categorical kernel asked to grow a table that has room")

    def _reserve(self, backend, n_keys: int, n_bytes: int) -> None:
        """Room for ``n_keys`` more keys of ``n_bytes`` bytes in all, in one growth (a dictionary's
        new entries are known before they are looked up; growing one doubling at a time rehashes
        and retries the lookup each time)."""
        self._make_room(backend, min(self.n_ids + n_keys, self.max_ids), n_bytes)

    def _make_room(self, backend, n_ids: int, n_bytes: int) -> bool:
        """Capacity for ``n_ids`` keys and ``n_bytes`` more key bytes; whether anything grew.

        Id capacity doubles (from 16, up to ``max_ids``) and the hash index doubles, to the sizes
        one-at-a-time growth reaches, so a table's layout does not depend on how it grew."""
        grew = False
        if n_ids > self._hashes.size:
            cap = self._hashes.size
            while cap < n_ids:
                nxt = min(max(2 * cap, 16), self.max_ids)
                cap = nxt if nxt > cap else n_ids
            self._hashes = self._resized(self._hashes, cap)
            self._counts = self._resized(self._counts, cap)
            if self.key_kind == "str":
                self._key_offsets = self._resized(self._key_offsets, cap + 1)
            else:
                self._int_keys = self._resized(self._int_keys, cap)
            grew = True
        if FD_CAT_LOAD_DEN * n_ids > self._slots.size:
            size = self._slots.size
            while FD_CAT_LOAD_DEN * n_ids > size:
                size *= 2
            self._slots = np.full(size, -1, dtype=np.int32)
            self._cstruct = None
            check(backend.rehash(self), "rehash")
            grew = True
        if self.key_kind == "str":
            need = int(self._meta[FD_CAT_ARENA_USED]) + n_bytes
            if need > self._arena.size:
                self._arena = self._resized(self._arena, max(2 * self._arena.size, need))
                grew = True
        if grew:
            self._cstruct = None
        return grew

    @staticmethod
    def _resized(a: np.ndarray, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=a.dtype)
        out[:a.size] = a
        return out

    @staticmethod
    def _view_bytes(view: ColumnView) -> int:
        """Key bytes of a whole string view (0 for other kinds)."""
        if view.kind != "string":
            return 0
        return int(view.offsets[view.offset + view.length]) - int(view.offsets[view.offset])

    @staticmethod
    def _pending_bytes(view: ColumnView, i: int) -> int:
        if view.kind != "string":
            return 0
        j = view.offset + i
        return int(view.offsets[j + 1]) - int(view.offsets[j])

    def _run(self, backend, view: ColumnView, ids: Optional[np.ndarray], order: Optional[np.ndarray] = None) -> None:
        """fd_cat_update / fd_cat_lookup over the whole view (fd_cat_lookup_order over its
        elements ``order``), growing on demand."""
        start = 0
        while True:
            rc, progress = backend.run(self, view, start, ids, order)
            if rc != FD_EGROW:
                check(rc, "fd_cat_lookup" if ids is not None else "fd_cat_update", view.name)
                return
            self._grow(backend, self._pending_bytes(view, progress if order is None else int(order[progress])))
            start = progress

    def _lookup(self, backend, view: ColumnView, order: Optional[np.ndarray] = None) -> np.ndarray:
        """Ids of the view's elements (of elements ``order``, in that order), new keys inserted."""
        ids = np.empty(view.length if order is None else order.size, dtype=np.int64)
        self._run(backend, view, ids, order)
        return ids

    # ---- counting ------------------------------------------------------------

    def _schema_error(self, view: ColumnView, what) -> SchemaError:
        return self._schema_error_of(view.name, what)

    def _schema_error_of(self, name, what) -> SchemaError:
        expects = "string or binary" if self.key_kind == "str" else "integer or boolean"
        return SchemaError(f"column {name!r}: cannot count {what} values in a "
                           f"CatTable(key_kind={self.key_kind!r}), which expects {expects} values")

    def _accept(self, view: ColumnView, value_type: Optional[str], what) -> str:
        """The table's value type after counting ``view``; raises before anything is counted."""
        return self._accept_of(view.name, value_type, what)

    def _accept_of(self, name, value_type: Optional[str], what) -> str:
        if value_type is None or _KIND_OF_VALUE_TYPE[value_type] != self.key_kind:
            raise self._schema_error_of(name, what)
        combined = _combine_value_types(self.value_type, value_type)
        if combined is False:
            raise SchemaError(f"column {name!r}: cannot count {what} values in a CatTable "
                              f"that already holds {self.value_type} keys")
        return combined

    def update(self, view, backend: Optional[str] = None, name: Optional[str] = None) -> None:
        """Count a column.

        Parameters
        ----------
        view : ColumnView or array-like
            One chunk's view, or anything :func:`~fastdrift.adapters.arrow.iter_columns`
            accepts (every chunk is counted).
        backend : {"c", "numba"}, optional
            Kernel backend; default ``get_backend("categorical")``.
        name : str, optional
            Column name for error messages when ``view`` is not a ColumnView.

        Raises
        ------
        SchemaError
            The column's type does not match ``key_kind`` (nothing is counted).
        """
        b = CAT(backend)
        if not isinstance(view, ColumnView):
            views = list(iter_columns(view, name))
            # Check every chunk first: a mismatch must leave the table untouched.
            for v in views:
                if v.kind != "null":
                    self._accept(v, self._view_value_type(v), v.arrow_type)
            for v in views:
                self._update_view(b, v)
            return
        self._update_view(b, view)

    @staticmethod
    def _view_value_type(view: ColumnView) -> Optional[str]:
        if view.kind == "dictionary":
            return value_type_of(view.dictionary.type)
        if view.kind == "numeric":
            if view.type_code in _UNSIGNED_CODES:
                return "uint"
            return "int" if view.type_code in _INT_CODES else None
        if view.kind in ("string", "bool"):
            return value_type_of(view.arrow_type) if view.arrow_type is not None else (
                "string" if view.kind == "string" else "bool")
        return None

    def _update_view(self, b, view: ColumnView) -> None:
        if view.kind == "null":
            self._meta[FD_CAT_NULL] += view.length
            return
        vt = self._accept(view, self._view_value_type(view), view.arrow_type)
        if view.kind == "dictionary":
            self._update_dictionary(b, view)
        elif view.kind == "bool":
            self._update_bool(b, view)
        else:
            self._run(b, view, None)
        self.value_type = vt

    def _update_bool(self, b, view: ColumnView) -> None:
        rc, n_true, n_false, n_null = b.bool_count(view)
        check(rc, "fd_bool_count", view.name)
        self._meta[FD_CAT_NULL] += n_null
        if n_true + n_false == 0:
            return
        # Ids follow first arrival, so the first valid value's key goes first.
        off = view.offset
        if view.has_validity:
            first = self._first_valid(view)
        else:
            first = 0
        j = off + first
        first_val = int((view.values[j >> 3] >> (j & 7)) & 1)
        keys = np.array([first_val, 1 - first_val], dtype=np.int64)
        cnts = np.array([n_true, n_false] if first_val else [n_false, n_true], dtype=np.int64)
        keep = cnts > 0
        self._add_int_keys(b, keys[keep], cnts[keep])

    @staticmethod
    def _first_valid(view: ColumnView) -> int:
        pos, block = 0, 4096
        while pos < view.length:
            m = min(block, view.length - pos)
            hit = np.flatnonzero(_unpack_bits(view.validity, view.offset + pos, m))
            if hit.size:
                return pos + int(hit[0])
            pos += m
            block *= 2
        raise NativeError("bool column has valid values but no validity bit set")  # pragma: no cover

    def _update_dictionary(self, b, view: ColumnView) -> None:
        dictionary = view.dictionary
        n_dict = len(dictionary)
        scratch = np.zeros(n_dict, dtype=np.int64)
        memo = self._memo_for(dictionary)
        # First positions order the entries still to be looked up; a direct memo has none.
        first = np.empty(0 if memo is not None and memo.direct else n_dict, dtype=np.int64)
        # Without a memo, the dictionary's view (and a fresh table's room) are made before the
        # count: after the count of a long column the caches are cold, and each Python step is
        # about ten times slower (docs/performance.md, dictionary categories).
        dview = self._dictionary_view(b, dictionary, view.name) if memo is None else None
        rc, progress, n_null = b.count_indices(view, scratch, first)
        if rc == FD_EINVAL:
            raise InvalidInputError(
                f"column {view.name!r}: dictionary index at position {progress} is outside "
                f"the dictionary of length {n_dict}")
        check(rc, "fd_count_indices", view.name)
        if memo is None:
            self._add_first_counts(b, dictionary, scratch, first, n_null, view.name, dview)
            return
        if memo.direct:
            # One id per entry, each its own: a fancy add counts each once (no add.at, no
            # selection of the entries used): 4 against 22 us for 1,000 entries a batch.
            self._counts[memo.ids] += scratch
        else:
            used = np.flatnonzero(scratch)
            self._apply(self._memo_ids(b, memo, dictionary, used, first, view.name)[used], scratch[used])
        self._meta[FD_CAT_NULL] += n_null

    def _memo_ids(self, b, memo: _DictMemo, dictionary: pa.Array, used: np.ndarray, first: np.ndarray,
                  name) -> np.ndarray:
        """``memo.ids`` once every entry in ``used`` has an id: those not looked up yet are, in order
        of first use (``first``), as :meth:`_add_first_counts` looks entries up."""
        new = used[memo.ids[used] == _UNSEEN]
        if new.size:
            order = new[np.argsort(first[new], kind="stable")]
            memo.ids[order] = self._entry_ids(b, dictionary, order, name)
            memo.assigned()
        return memo.ids

    def _memo_for(self, dictionary: pa.Array) -> Optional[_DictMemo]:
        """The memo of ``dictionary`` if it equals the remembered one; a new memo when it equals the
        previous batch's dictionary (twice in a row: worth a copy); else None."""
        memo = self._dict_memo
        if memo is not None and memo.dictionary.equals(dictionary):
            return memo
        last, self._dict_last = self._dict_last, None
        if len(dictionary) > _DICT_MEMO_MAX:
            return None
        if last is not None and (last is dictionary or last.equals(dictionary)):
            self._dict_memo = _DictMemo(dictionary)
            return self._dict_memo
        self._dict_last = dictionary
        return None

    def _dictionary_view(self, b, keys: pa.Array, name) -> ColumnView:
        """The view :meth:`_add_first_counts` reads ``keys`` through; an empty table gets room for
        them all at once (up to :data:`_RESERVE_MAX_KEYS` keys of :data:`_RESERVE_MAX_BYTES`
        bytes, and no more keys than the cap: a fresh table's counts of a dictionary column use
        most of its entries)."""
        if pat.is_boolean(keys.type):
            keys = keys.cast(pa.int8())  # the lookup kernel reads integer keys
        dview = next(iter_columns(keys, name), None)
        if dview is not None and dview.kind != "null" and self.n_ids == 0 \
                and dview.length <= min(_RESERVE_MAX_KEYS, self.max_ids):
            n_bytes = self._view_bytes(dview)
            if n_bytes <= _RESERVE_MAX_BYTES:
                self._reserve(b, dview.length, n_bytes)
        return dview

    def _add_first_counts(self, b, keys: pa.Array, counts: np.ndarray, first: np.ndarray, n_null: int,
                          name, dview: Optional[ColumnView] = None) -> None:
        # Entries in order of first occurrence: the order in which the decoded column's values
        # arrive, so ids (and the keys kept under the cap) are those of the decoded column.  One
        # call orders them and one adds their counts, looking each up where it is: after the count
        # of a long column each numpy step ran on cold caches (1,000 strings after 1e7 indices: the
        # order, the lookup into ids and the add by id 0.28-0.38 ms, the two calls 0.15-0.19 ms;
        # docs/performance.md).
        if counts.size != len(keys) or first.size < counts.size:
            raise NativeError(f"column {name!r}: {counts.size} counts and {first.size} first positions "
                              f"for a dictionary of {len(keys)}")
        order = np.empty(counts.size, dtype=np.int64)
        rc, m = b.first_use_order(counts, first, order)
        check(rc, "fd_first_use_order", name)
        if m:
            if dview is None:
                if pat.is_boolean(keys.type):
                    keys = keys.cast(pa.int8())  # the lookup kernel reads integer keys
                dview = next(iter_columns(keys, name))
            if dview.kind == "null":
                self._meta[FD_CAT_NULL] += int(counts.sum())
            else:
                self._add_order(b, dview, order, m, counts)
        self._meta[FD_CAT_NULL] += n_null

    def _add_order(self, b, view: ColumnView, order: np.ndarray, n_order: int, w: np.ndarray) -> None:
        """fd_cat_add_order over the view's elements ``order[:n_order]``, growing once for all the
        keys still to add when the table is full."""
        start = 0
        while True:
            rc, progress, pending = b.add_order(self, view, order, n_order, w, start)
            if rc != FD_EGROW:
                check(rc, "fd_cat_add_order", view.name)
                return
            if not self._make_room(b, min(self.n_ids + n_order - progress, self.max_ids), pending):
                raise NativeError("categorical kernel asked to grow a table that has room")
            start = progress

    def _entry_ids(self, b, keys: pa.Array, order: np.ndarray, name) -> np.ndarray:
        """Ids of ``keys[order]``, looked up (new keys inserted) in that order."""
        if pat.is_boolean(keys.type):
            keys = keys.cast(pa.int8())  # the lookup kernel reads integer keys
        dview = next(iter_columns(keys, name))
        if dview.kind == "null":
            return np.full(order.size, FD_CAT_ID_NULL, dtype=np.int64)
        if order.size == len(keys) and np.array_equal(order, np.arange(order.size)):
            # every entry, in its own order (a Parquet dictionary, built as values arrive)
            self._reserve(b, order.size, self._view_bytes(dview))
            return self._lookup(b, dview)
        # the entries through the order, in place (a take of the dictionary, cold after the count of a
        # long batch, cost 0.2-0.3 ms of a 1e7-row batch's 3.5 over 1,000 strings)
        order = np.ascontiguousarray(order, dtype=np.int64)
        self._reserve(b, order.size, self._entry_bytes(dview, order))
        return self._lookup(b, dview, order)

    @staticmethod
    def _entry_bytes(view: ColumnView, order: np.ndarray) -> int:
        """Key bytes of a string view's elements ``order`` (0 for other kinds)."""
        if view.kind != "string":
            return 0
        o = view.offsets[view.offset:view.offset + view.length + 1].astype(np.int64)
        return int((o[order + 1] - o[order]).sum())

    def add_first_counts(self, keys: pa.Array, counts: np.ndarray, first: np.ndarray, n_null: int,
                         value_type: str, backend: Optional[str] = None, name: Optional[str] = None) -> None:
        """Count ``keys[x]`` ``counts[x]`` times and ``n_null`` nulls, keys arriving in order of ``first[x]``.

        The same as :meth:`update` of a column of ``value_type`` (:func:`value_type_of`) whose values
        arrive in that order: a dictionary's entries counted apart from their rows (segments,
        :mod:`fastdrift.kernels.seg`).  ``first`` is read where ``counts > 0``.

        Raises
        ------
        SchemaError
            ``value_type`` does not fit this table (nothing is counted).
        """
        vt = self._accept_of(name, value_type, value_type)
        self._add_first_counts(CAT(backend), keys, counts, first, n_null, name)
        self.value_type = vt

    def segment_counts(self, views: List[ColumnView], codes: np.ndarray, n_seg: int, max_cells: int,
                       backend: Optional[str] = None):
        """Counts per segment of string chunks (``views``: one column's chunks in order; ``codes``:
        each row's segment in ``[0, n_seg)``), inserting their keys as :meth:`lookup` does (this
        table's counts untouched): ``(bins, first, n_null)``, ``bins[s, x]`` the rows of segment
        ``s`` holding key ``x`` (``n_ids`` columns), ``first[s, x]`` the first of them (where
        ``bins > 0``), ``n_null[s]`` its nulls; one read of the column (``fd_seg_cat_count``).

        None when the count arrays would pass ``max_cells`` entries (then keys may have been
        inserted: a scratch table).

        Raises
        ------
        InvalidInputError
            A code outside ``[0, n_seg)``, or a chunk that is not of strings.
        SchemaError
            The chunks' type does not fit this table (nothing inserted).
        """
        b = CAT(backend)
        vt = self.value_type
        for v in views:
            if v.kind != "string":
                raise InvalidInputError(f"column {v.name!r}: segment counts read string chunks, got {v.kind}")
            vt = self._accept(v, self._view_value_type(v), v.arrow_type)
        if sum(v.length for v in views) != codes.shape[0]:
            raise InvalidInputError(f"{codes.shape[0]} segment codes for {sum(v.length for v in views)} rows")
        width = int(self._hashes.size)
        if n_seg * width > max_cells:
            return None
        bins, first = np.zeros(n_seg * width, np.int64), np.zeros(n_seg * width, np.int64)
        n_null = np.zeros(n_seg, np.int64)
        at = 0
        for v in views:
            part = codes[at:at + v.length]
            start = 0
            while True:
                rc, progress, bad = b.seg_count(self, v, start, part, n_seg, width, bins, first, at, n_null)
                if rc != FD_EGROW:
                    if rc == FD_EINVAL and bad >= 0 and not 0 <= int(part[bad]) < n_seg:
                        raise InvalidInputError(f"column {v.name!r}: segment code {int(part[bad])} of row "
                                                f"{at + bad} is outside [0, {n_seg})")
                    check(rc, "fd_seg_cat_count", v.name)
                    break
                self._grow(b, self._pending_bytes(v, progress))
                start = progress
                grown = int(self._hashes.size)
                if grown != width:  # ids reach further: the count rows widen, what they hold kept
                    if n_seg * grown > max_cells:
                        return None
                    bins, first = (np.pad(a.reshape(n_seg, width), ((0, 0), (0, grown - width))).reshape(-1)
                                   for a in (bins, first))
                    width = grown
            at += v.length
        self.value_type = vt
        k = self.n_ids
        return bins.reshape(n_seg, width)[:, :k], first.reshape(n_seg, width)[:, :k], n_null

    def add_keys_of(self, source: "CatTable", ids: np.ndarray, counts: np.ndarray, n_null: int,
                    value_type: str, backend: Optional[str] = None) -> bool:
        """Into this table while it holds no key: ``source``'s keys ``ids`` (distinct, in arrival
        order) counted ``counts`` times each, and ``n_null`` nulls; the keys' bytes and hashes are
        copied, not hashed again (a segment's keys from the batch's table).  The same state as
        :meth:`add_first_counts` of those keys.  False (nothing changed) when the table holds keys
        or ``other`` counts, the keys would pass the cap, or the tables are not both of strings.

        Raises
        ------
        SchemaError
            ``value_type`` does not fit this table (nothing is counted).
        """
        vt = self._accept_of(None, value_type, value_type)
        k = int(ids.size)
        if self.n_ids or self.other or k > self.max_ids or self.key_kind != "str" or source.key_kind != "str":
            return False
        ids = np.asarray(ids, np.int64)
        if k and (ids.min() < 0 or ids.max() >= source.n_ids):
            raise InvalidInputError(f"key ids outside the source table's {source.n_ids} keys")
        b = CAT(backend)
        src_ko = source._key_offsets
        starts = src_ko[ids]
        lens = src_ko[ids + 1] - starts
        n_bytes = int(lens.sum())
        self._make_room(b, k, n_bytes)
        ko = self._key_offsets
        np.cumsum(lens, out=ko[1:k + 1])
        if n_bytes:
            self._arena[:n_bytes] = source._arena[np.repeat(starts - ko[:k], lens) + np.arange(n_bytes)]
        self._hashes[:k] = source._hashes[ids]
        self._counts[:k] = counts
        self._meta[FD_CAT_N_IDS] = k
        self._meta[FD_CAT_ARENA_USED] = n_bytes
        self._meta[FD_CAT_NULL] += n_null
        self._cstruct = None
        self._dict_memo = self._dict_last = None
        check(b.rehash(self), "rehash")
        self.value_type = vt
        return True

    def keys_array(self) -> pa.Array:
        """The keys in id order, one Arrow array (large_binary for string keys, int64 otherwise)."""
        return self._keys_array()

    def _apply(self, ids: np.ndarray, cnts: np.ndarray) -> None:
        ok = ids >= 0
        # add.at, not fancy +=: ids repeat when a dictionary holds a value twice.
        if ok.all():  # the common case: no null key, none past the cap
            np.add.at(self._counts, ids, cnts)
            return
        np.add.at(self._counts, ids[ok], cnts[ok])
        self._meta[FD_CAT_OTHER] += int(cnts[ids == FD_CAT_ID_OTHER].sum())
        self._meta[FD_CAT_NULL] += int(cnts[ids == FD_CAT_ID_NULL].sum())

    def _add_int_keys(self, b, keys: np.ndarray, cnts: np.ndarray) -> None:
        view = next(iter_columns(pa.array(keys, type=pa.int64())))
        self._apply(self._lookup(b, view), cnts)

    def lookup(self, values, backend: Optional[str] = None, name: Optional[str] = None) -> np.ndarray:
        """Ids of a column's values, inserting new keys in order of first arrival; counts nothing.

        Parameters
        ----------
        values : array-like
            Anything :func:`~fastdrift.adapters.arrow.iter_columns` accepts, of a type
            :meth:`update` counts (dictionaries map only the entries the rows use).
        backend : {"c", "numba"}, optional
        name : str, optional
            Column name for error messages.

        Returns
        -------
        numpy.ndarray
            int64 per row: the key's id (>= 0), ``FD_CAT_ID_OTHER`` (-1) for a new key beyond
            the cap, ``FD_CAT_ID_NULL`` (-2) for a null.

        Raises
        ------
        SchemaError
            The column's type does not match ``key_kind`` (no key is inserted).
        """
        b = CAT(backend)
        views = list(iter_columns(values, name))
        vt = self.value_type
        for v in views:
            if v.kind != "null":
                vt = self._accept(v, self._view_value_type(v), v.arrow_type)
        parts = [np.zeros(0, dtype=np.int64)]
        for v in views:
            if v.kind == "null":
                parts.append(np.full(v.length, FD_CAT_ID_NULL, dtype=np.int64))
            elif v.kind == "dictionary":
                parts.append(self._lookup_dictionary(b, v))
            elif v.kind == "bool":
                # the lookup kernel reads integer keys: booleans as the keys 0/1
                bits = _unpack_bits(v.values, v.offset, v.length).astype(np.int8)
                valid = _unpack_bits(v.validity, v.offset, v.length) if v.has_validity else None
                arr = pa.array(bits, mask=None if valid is None else ~valid)
                parts.append(self._lookup(b, next(iter_columns(arr, v.name))))
            else:
                parts.append(self._lookup(b, v))
        self.value_type = vt
        return np.concatenate(parts)

    def _lookup_dictionary(self, b, view: ColumnView) -> np.ndarray:
        """:meth:`lookup` of a dictionary chunk: the entries its rows use, in order of first use."""
        n_dict = len(view.dictionary)
        scratch = np.zeros(n_dict, dtype=np.int64)
        first = np.empty(n_dict, dtype=np.int64)
        rc, progress, _ = b.count_indices(view, scratch, first)
        if rc == FD_EINVAL:
            raise InvalidInputError(
                f"column {view.name!r}: dictionary index at position {progress} is outside "
                f"the dictionary of length {n_dict}")
        check(rc, "fd_count_indices", view.name)
        used = np.flatnonzero(scratch)
        memo = self._memo_for(view.dictionary)
        if memo is not None:  # the rows use no entry left _UNSEEN
            entry_ids = self._memo_ids(b, memo, view.dictionary, used, first, view.name)
        else:
            entry_ids = np.full(n_dict, FD_CAT_ID_NULL, dtype=np.int64)
            if used.size:
                order = used[np.argsort(first[used], kind="stable")]
                entry_ids[order] = self._entry_ids(b, view.dictionary, order, view.name)
        idx = view.values[view.offset:view.offset + view.length].astype(np.int64)
        ids = entry_ids[np.clip(idx, 0, max(n_dict - 1, 0))] if n_dict else np.full(view.length, FD_CAT_ID_NULL)
        if view.has_validity:
            ids[~_unpack_bits(view.validity, view.offset, view.length)] = FD_CAT_ID_NULL
        return ids.astype(np.int64, copy=False)

    # ---- merging and state ---------------------------------------------------

    def _keys_array(self) -> pa.Array:
        """The keys as one Arrow array, built over the table's own buffers."""
        n = self.n_ids
        if self.key_kind == "str":
            used = int(self._key_offsets[n])
            return pa.Array.from_buffers(
                pa.large_binary(), n,
                [None, pa.py_buffer(self._key_offsets[:n + 1].copy()), pa.py_buffer(self._arena[:used].copy())])
        return pa.array(self._int_keys[:n].copy(), type=pa.int64())

    def _add_array(self, keys: pa.Array, cnts: np.ndarray, other: int, null: int, backend) -> None:
        b = CAT(backend)
        if len(keys):
            self._apply(self._lookup(b, next(iter_columns(keys))), cnts)
        self._meta[FD_CAT_OTHER] += other
        self._meta[FD_CAT_NULL] += null

    def add_counts(self, keys: Iterable, counts, other: int = 0, null: int = 0,
                   backend: Optional[str] = None) -> None:
        """Add ``counts[i]`` occurrences of ``keys[i]``, inserting keys in the given order.

        Keys that do not fit under the cap are added to :attr:`other`.

        Parameters
        ----------
        keys : sequence of str, bytes, int or bool
        counts : sequence of int
            Non-negative, same length as ``keys``.
        other, null : int, default 0
            Added to :attr:`other` / :attr:`null`.
        backend : {"c", "numba"}, optional
        """
        keys = list(keys)
        cnts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if cnts.size != len(keys):
            raise InvalidInputError(f"add_counts: {len(keys)} keys but {cnts.size} counts")
        if (cnts < 0).any() or other < 0 or null < 0:
            raise InvalidInputError("add_counts: counts must be non-negative")
        vt, arr = self._keys_to_arrow(keys)
        combined = _combine_value_types(self.value_type, vt)
        if combined is False:
            raise SchemaError(f"add_counts: cannot add {vt} keys to a CatTable holding {self.value_type} keys")
        self._add_array(arr, cnts, int(other), int(null), backend)
        self.value_type = combined

    def _keys_to_arrow(self, keys: list):
        if not keys:
            return None, pa.array([], type=pa.large_binary() if self.key_kind == "str" else pa.int64())
        if self.key_kind == "str":
            if all(isinstance(k, str) for k in keys):
                return "string", pa.array(keys, type=pa.large_string())
            if all(isinstance(k, (str, bytes)) for k in keys):
                return "binary", pa.array([k.encode() if isinstance(k, str) else k for k in keys],
                                          type=pa.large_binary())
            raise SchemaError("add_counts: a CatTable(key_kind='str') takes str or bytes keys")
        if all(isinstance(k, (bool, np.bool_)) for k in keys):
            return "bool", pa.array(np.array(keys, dtype=np.int64))
        if any(isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) for k in keys):
            raise SchemaError("add_counts: a CatTable(key_kind='int') takes int keys or bool keys, not a mix")
        try:
            if any(int(k) > 2**63 - 1 for k in keys):
                return "uint", pa.array(np.array(keys, dtype=np.uint64).view(np.int64))
            return "int", pa.array(np.array(keys, dtype=np.int64))
        except OverflowError:
            raise InvalidInputError("add_counts: integer key outside the int64/uint64 range") from None

    def merge_from(self, other: "CatTable", backend: Optional[str] = None) -> None:
        """Add another table's counts into this one (its keys after ours, in its id order).

        Below the cap the result equals counting both inputs in one pass, in
        order.  Above it, keys the other table counted individually may land
        in :attr:`other` here.

        Raises
        ------
        IncompatibleSketchError
            Different ``key_kind``, ``max_ids`` or incompatible key types.
        """
        combined = self.check_mergeable(other)
        keys = other._keys_array()
        cnts = other.counts.copy()
        self._add_array(keys, cnts, other.other, other.null, backend)
        self.value_type = combined

    def check_mergeable(self, other: "CatTable"):
        """Raise the IncompatibleSketchError :meth:`merge_from` of ``other`` would, changing nothing;
        else return the merged tables' value type."""
        if not isinstance(other, CatTable) or other.key_kind != self.key_kind \
                or other.max_ids != self.max_ids:
            raise IncompatibleSketchError(f"cannot merge {other!r} into {self!r}: key_kind and max_ids must match")
        combined = _combine_value_types(self.value_type, other.value_type)
        if combined is False:
            raise IncompatibleSketchError(f"cannot merge a table of {other.value_type} keys into one "
                                          f"of {self.value_type} keys")
        return combined

    def merge_many(self, others: List["CatTable"], backend: Optional[str] = None) -> None:
        """:meth:`merge_from` of each of ``others`` in turn (the same table), their keys looked up in
        one call: the keys of all, in order, then their counts added.  All are checked first: on
        an incompatible one nothing is merged."""
        combined = self.value_type
        for other in others:
            if not isinstance(other, CatTable) or other.key_kind != self.key_kind \
                    or other.max_ids != self.max_ids:
                raise IncompatibleSketchError(f"cannot merge {other!r} into {self!r}: key_kind and max_ids must match")
            c = _combine_value_types(combined, other.value_type)
            if c is False:
                raise IncompatibleSketchError(f"cannot merge a table of {other.value_type} keys into one "
                                              f"of {combined} keys")
            combined = c
        if not others:
            return
        keys = [o._keys_array() for o in others]
        keys = pa.concat_arrays(keys) if len(keys) > 1 else keys[0]
        cnts = np.concatenate([o.counts for o in others])
        self._add_array(keys, cnts, sum(int(o.other) for o in others), sum(int(o.null) for o in others), backend)
        self.value_type = combined

    def copy(self) -> "CatTable":
        """An independent deep copy."""
        new = CatTable.__new__(CatTable)
        new.key_kind = self.key_kind
        new.max_ids = self.max_ids
        new.value_type = self.value_type
        for attr in ("_slots", "_hashes", "_counts", "_key_offsets", "_arena", "_int_keys", "_meta"):
            a = getattr(self, attr)
            setattr(new, attr, a.copy() if a.size else a)
        new._cstruct = None
        return new

    def state(self) -> dict:
        """Plain data for serialization.

        Returns
        -------
        dict
            ``key_kind`` (str), ``max_ids`` (int), ``value_type`` (str or None),
            ``keys`` (list, id order), ``counts`` (int64 ndarray), ``other``
            and ``null`` (int).
        """
        return {
            "key_kind": self.key_kind,
            "max_ids": self.max_ids,
            "value_type": self.value_type,
            "keys": self.keys(),
            "counts": self.counts.copy(),
            "other": self.other,
            "null": self.null,
        }

    @classmethod
    def from_state(cls, state: dict, backend: Optional[str] = None) -> "CatTable":
        """Rebuild a table from :meth:`state` output.

        Raises
        ------
        CorruptStateError
            The state is inconsistent (lengths, negative counts, duplicate
            keys, too many keys, wrong key types).
        """
        try:
            key_kind = state["key_kind"]
            max_ids = state["max_ids"]
            vt = state["value_type"]
            keys = list(state["keys"])
            cnts = np.asarray(state["counts"], dtype=np.int64).reshape(-1)
            other, null = int(state["other"]), int(state["null"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptStateError(f"categorical state: {exc}") from None
        if key_kind not in ("str", "int") or not isinstance(max_ids, (int, np.integer)) or max_ids < 0:
            raise CorruptStateError("categorical state: bad key_kind or max_ids")
        if vt is not None and _KIND_OF_VALUE_TYPE.get(vt) != key_kind:
            raise CorruptStateError(f"categorical state: value type {vt!r} does not fit key_kind {key_kind!r}")
        if len(keys) != cnts.size or len(keys) > max_ids or (cnts < 0).any() or other < 0 or null < 0:
            raise CorruptStateError("categorical state: inconsistent keys/counts")
        if len(set(keys)) != len(keys):
            raise CorruptStateError("categorical state: duplicate keys")
        if keys and vt is None:
            raise CorruptStateError("categorical state: keys without a value type")
        tab = cls(key_kind, int(max_ids))
        try:
            if vt in ("string", "binary"):
                raw = [k.encode("utf-8") if isinstance(k, str) and vt == "binary" else k for k in keys]
                if not all(isinstance(k, str if vt == "string" else bytes) for k in raw):
                    raise TypeError("key types do not match the value type")
                arr = pa.array(raw, type=pa.large_string() if vt == "string" else pa.large_binary())
            elif vt == "uint":
                arr = pa.array(np.array(keys, dtype=np.uint64).view(np.int64))
            elif vt in ("int", "bool"):
                if vt == "bool" and not all(isinstance(k, (bool, np.bool_)) for k in keys):
                    raise TypeError("bool table with non-bool keys")
                arr = pa.array(np.array(keys, dtype=np.int64), type=pa.int64())
            else:
                arr = pa.array([], type=pa.int64() if key_kind == "int" else pa.large_binary())
        except (TypeError, ValueError, OverflowError, pa.ArrowException) as exc:
            raise CorruptStateError(f"categorical state: bad keys: {exc}") from None
        tab._add_array(arr, cnts, other, null, backend)
        tab.value_type = vt
        return tab
