"""Segments: which rows of a batch belong to which value of the ``segment_by`` columns.

A segment is one combination of values of the segment columns, named by a *segment key*:
``"col=value"`` pairs in the columns' order, joined by ``,`` (``"arm=canary"``,
``"model_version=v2,country=de"``). In a value, ``\\``, ``,`` and ``=`` are escaped with a
backslash, so a key always parses back to its values (:func:`parse_segment_key`). A null is the
value ``<null>``. Values are their Arrow cast to string (``1``, ``2.5``, ``true``, ``2026-01-02``).

Cardinality is capped: a :class:`Segmenter` gives its own segment to the first ``max_segments``
keys it sees; rows of every later key are counted under :data:`OTHER` (``"<other>"``), never
dropped. The segmenter's state is its list of keys; who merges segmented state folds keys past
the cap into :data:`OTHER` with :func:`cap_keys`.
"""
from __future__ import annotations

from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidInputError, SchemaError

__all__ = ["OTHER", "NULL", "DEFAULT_MAX_SEGMENTS", "Segmenter", "segment_key", "parse_segment_key",
           "cap_keys", "check_segment_columns", "check_segment_schema", "encode_segment_columns"]

OTHER = "<other>"
NULL = "<null>"
DEFAULT_MAX_SEGMENTS = 50
MAX_SEGMENTS_LIMIT = 10_000


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def segment_key(values: Mapping[str, object]) -> str:
    """The key of one segment from ``{column: value}`` in the segment columns' order.

    >>> segment_key({"arm": "canary", "country": None})
    'arm=canary,country=<null>'
    """
    parts = []
    for col, v in values.items():
        text = NULL if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
        parts.append(f"{_escape(str(col))}={_escape(text)}")
    return ",".join(parts)


def parse_segment_key(key: str) -> Dict[str, str]:
    """``{column: value}`` of a segment key (values as strings; :data:`OTHER` gives ``{}``).

    Raises :class:`~fastdrift.errors.InvalidInputError` for text that is not a key.
    """
    if key == OTHER:
        return {}
    out: Dict[str, str] = {}
    field, name = [], None
    i, n = 0, len(key)
    while i <= n:
        c = key[i] if i < n else ","
        if c == "\\" and i + 1 < n:
            field.append(key[i + 1])
            i += 2
            continue
        if c == "=" and name is None:
            name, field = "".join(field), []
        elif c == ",":
            if name is None or name in out:
                raise InvalidInputError(f"{key!r} is not a segment key (expected col=value[,col=value...])")
            out[name], field, name = "".join(field), [], None
        else:
            field.append(c)
        i += 1
    return out


def cap_keys(keys: Iterable[str], max_segments: int) -> Tuple[List[str], List[str]]:
    """Split ``keys`` (in priority order) into those kept and those folded into :data:`OTHER`.

    :data:`OTHER` itself is always kept when present and does not count against the cap.
    """
    kept, folded = [], []
    for k in keys:
        if k == OTHER:
            continue
        (kept if len(kept) < max_segments else folded).append(k)
    return kept, folded


def check_segment_columns(segment_by, max_segments: int = DEFAULT_MAX_SEGMENTS) -> Tuple[str, ...]:
    """``segment_by`` as a tuple of column names, checked (the one place these settings are validated)."""
    if segment_by is None:
        return ()
    cols = (segment_by,) if isinstance(segment_by, str) else tuple(segment_by)
    if not all(isinstance(c, str) and c for c in cols):
        raise InvalidInputError(f"segment_by must name columns (strings), got {segment_by!r}")
    if len(set(cols)) != len(cols):
        raise InvalidInputError(f"segment_by names a column twice: {list(cols)}")
    if isinstance(max_segments, bool) or not isinstance(max_segments, int) or not 1 <= max_segments <= MAX_SEGMENTS_LIMIT:
        raise InvalidInputError(f"max_segments must be an integer in [1, {MAX_SEGMENTS_LIMIT}], got {max_segments!r}")
    return cols


def _keyable(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _keyable(t.value_type)
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            or pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
            or pa.types.is_temporal(t) or pa.types.is_decimal(t))


def check_segment_schema(schema: pa.Schema, columns: Sequence[str], what: str = "the data") -> None:
    """SchemaError naming the first segment column missing from ``schema`` or of a type that
    cannot name a segment (before any row is counted)."""
    for name in columns:
        if name not in schema.names:
            raise SchemaError(f"{what}: segment column {name!r} is not in the data (it has {schema.names})")
        t = schema.field(name).type
        if not _keyable(t):
            raise SchemaError(f"{what}: segment column {name!r}: type {t} cannot name a segment "
                              "(use strings, integers, booleans, dates or floats)")


def _as_strings(arr, name: str) -> pa.Array:
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_string_view(t):
        return arr.cast(pa.large_string())
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t) or pa.types.is_decimal(t):
        return arr.cast(pa.string())
    raise SchemaError(f"segment column {name!r}: type {t} cannot name a segment "
                      "(use strings, integers, booleans, dates or floats)")


def _encoded(col, name: str) -> Tuple[List[str], np.ndarray, bool]:
    """(distinct value texts, per-row index into them, whether every value has a row); a null is
    its own value, :data:`NULL`.  The index is int32 or int64."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):  # already encoded (Parquet's dictionary pages): no hashing
        values = [NULL if v is None else v for v in _as_strings(col.dictionary, name).to_pylist()]
        idx = col.indices.fill_null(len(values)).to_numpy(zero_copy_only=False).astype(np.int64)
        return values + [NULL], idx, False
    enc = pc.dictionary_encode(_as_strings(col, name), null_encoding="encode")
    values = [NULL if v is None else v for v in enc.dictionary.to_pylist()]
    return values, enc.indices.to_numpy(zero_copy_only=False), True  # int32, each value a row's


class Segmenter:
    """Assigns rows to segments, remembering the first ``max_segments`` keys it sees.

    Parameters
    ----------
    columns
        The ``segment_by`` column names, in key order.
    max_segments
        How many distinct keys get a segment of their own; later keys count as :data:`OTHER`.
    keys
        Keys already known (e.g. from a loaded state), in the order they were first seen.
    encode
        Optional ``encode(column, name)``: ``(value texts, per-row int index, True)`` as the
        built-in encoding gives them (values in order of first arrival, a null as :data:`NULL`),
        or None to leave the column to it (a faster keyer of a layer above, for some columns).
    """

    def __init__(self, columns: Sequence[str], max_segments: int = DEFAULT_MAX_SEGMENTS,
                 keys: Iterable[str] = (), encode=None):
        self.columns = check_segment_columns(columns, max_segments)
        if not self.columns:
            raise InvalidInputError("a Segmenter needs at least one segment column")
        self.max_segments = max_segments
        self._encode = encode
        self.keys: List[str] = []
        self._code: Dict[str, int] = {}
        for k in keys:
            self._intern(k)

    def _intern(self, key: str) -> int:
        code = self._code.get(key)
        if code is None:
            if key != OTHER and len(self._code) - (OTHER in self._code) >= self.max_segments:
                return self._intern(OTHER)
            code = self._code[key] = len(self.keys)
            self.keys.append(key)
        return code

    def admit(self, key: str) -> str:
        """The key rows of segment ``key`` are counted under here: ``key`` itself (remembered, up
        to the cap) or :data:`OTHER` past the cap (merging another process's segments)."""
        return self.keys[self._intern(key)]

    def assign(self, batch) -> np.ndarray:
        """Per-row segment codes (int32) of ``batch``: ``self.keys[code]`` is the row's key.

        New keys are added to ``self.keys`` as they are met (up to the cap). A missing segment
        column is an error naming it; no key is added then.
        """
        missing = [c for c in self.columns if c not in batch.schema.names]
        if missing:
            raise SchemaError(f"segment column {missing[0]!r} is not in the data "
                              f"(segment_by={list(self.columns)})")
        n = batch.num_rows
        if n == 0:
            return np.zeros(0, dtype=np.int32)
        # one dense id per distinct combination seen in this batch, with its values
        combined = np.zeros(n, dtype=np.int64)
        combos: List[Tuple[str, ...]] = [()]
        last = None  # (table, pair) of a dense last column: combined = table[pair], not made unless needed
        for i, name in enumerate(self.columns):
            col = batch.column(name)
            got = self._encode(col, name) if self._encode is not None else None
            values, idx, every = got if got is not None else _encoded(col, name)
            size = max(len(values), 1)
            pair = idx if len(combos) == 1 else combined * size + idx  # one combination so far: combined is 0
            span = len(combos) * size
            if len(combos) == 1 and every:  # each value of the first column is some row's
                present = np.arange(span)
                table = np.arange(span, dtype=np.int64)
                if i == len(self.columns) - 1:
                    last = (table, pair)
                else:
                    combined = pair.astype(np.int64)
            elif span <= 4 * n + 1024:  # dense: O(rows + span), no sort
                present = np.flatnonzero(np.bincount(pair, minlength=span))
                table = np.zeros(span, dtype=np.int64)
                table[present] = np.arange(len(present))
                if i == len(self.columns) - 1:
                    last = (table, pair)
                else:
                    combined = table[pair]
            else:
                present, combined = np.unique(pair, return_inverse=True)
                combined = combined.reshape(-1)
            combos = [combos[d // size] + (values[d % size],) for d in present.tolist()]
        keys = [segment_key(dict(zip(self.columns, combo))) for combo in combos]
        new = sum(k not in self._code for k in keys)
        room = self.max_segments - (len(self._code) - (OTHER in self._code))
        order = range(len(keys))
        if new > room:  # the cap is reached in this batch: keys earn a segment in row order
            _, first = np.unique(last[0][last[1]] if last is not None else combined, return_index=True)
            order = np.argsort(first, kind="stable").tolist()
        codes = np.empty(len(keys), dtype=np.int32)
        for j in order:
            codes[j] = self._intern(keys[j])
        if last is not None:  # one gather: each value of the last column's pairs straight to its code
            return np.take(codes[last[0]], last[1])
        return codes[combined]

    def split(self, batch, codes: Optional[np.ndarray] = None) -> Iterator[Tuple[str, pa.RecordBatch]]:
        """``(key, rows of that segment)`` for every segment present in ``batch``, keys in first-seen order.

        One stable sort and one ``take`` of the batch, then zero-copy slices; rows keep their order
        within a segment.
        """
        if codes is None:
            codes = self.assign(batch)
        if len(codes) == 0:
            return
        first = codes[0]
        if (codes == first).all():
            yield self.keys[first], batch
            return
        if (codes[1:] >= codes[:-1]).all():  # already grouped by segment: slices only
            bounds = np.flatnonzero(np.diff(codes)) + 1
            for start, stop in zip([0, *bounds.tolist()], [*bounds.tolist(), len(codes)]):
                yield self.keys[codes[start]], batch.slice(start, stop - start)
            return
        # int16 codes sort by radix in numpy: O(rows)
        order = np.argsort(codes.astype(np.int16) if len(self.keys) < 2 ** 15 else codes, kind="stable")
        counts = np.bincount(codes, minlength=len(self.keys))
        idx = pa.array(order)
        # column by column, a single-chunk column as an Array: ChunkedArray/Table take is several
        # times slower (bench/bench_segments.py)
        cols = [c.chunk(0).take(idx) if isinstance(c, pa.ChunkedArray) and c.num_chunks == 1 else c.take(idx)
                for c in batch.columns]
        taken = (pa.Table if isinstance(batch, pa.Table) else pa.RecordBatch).from_arrays(cols, schema=batch.schema)
        start = 0
        for code, cnt in enumerate(counts.tolist()):
            if cnt:
                yield self.keys[code], taken.slice(start, cnt)
                start += cnt


def encode_segment_columns(table: pa.Table, segment_by: Sequence[str], encode=None) -> pa.Table:
    """``table`` with its null-free single-chunk string segment columns dictionary-encoded: a
    :class:`Segmenter` then reads the dictionary instead of hashing every row again (each pass
    over the table keys its rows).  The keys and their first-seen order do not change (null-free
    only, where both encodings agree on the order).  ``encode``: a :class:`Segmenter` ``encode``
    tried first (its values and indices make the dictionary)."""
    for n in segment_by:
        col = table.column(n) if n in table.schema.names else None
        if col is not None and col.num_chunks == 1 and col.null_count == 0 and (
                pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            got = encode(col.chunk(0), n) if encode is not None else None
            if got is not None:
                enc = pa.DictionaryArray.from_arrays(pa.array(got[1], pa.int32()), pa.array(got[0], col.type))
            else:
                enc = pc.dictionary_encode(col.chunk(0))
            table = table.set_column(table.schema.get_field_index(n), n, enc)
    return table
