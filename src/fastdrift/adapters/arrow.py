"""Turn numpy arrays, pyarrow arrays and Arrow PyCapsule objects into
:class:`ColumnView` records that kernels read in place.

Nothing here copies a column, with one exception: a non-contiguous numpy array
(a strided view) is made contiguous, because Arrow has no strided layout.
Objects exposing ``__arrow_c_array__`` / ``__arrow_c_stream__`` (polars,
pandas >= 2.2, nanoarrow, arro3, duckdb) are imported through pyarrow's C data
interface, which hands the producer's buffers over without copying them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from ..errors import InvalidInputError, SchemaError

__all__ = ["ColumnView", "iter_columns", "iter_batches", "as_table", "as_arrow", "NUMERIC_TYPE_CODES"]

# Arrow/numpy dtype -> FD_* code of kernels/fastdrift.h
NUMERIC_TYPE_CODES = {
    np.dtype("float64"): 0,
    np.dtype("float32"): 1,
    np.dtype("int8"): 2,
    np.dtype("int16"): 3,
    np.dtype("int32"): 4,
    np.dtype("int64"): 5,
    np.dtype("uint8"): 6,
    np.dtype("uint16"): 7,
    np.dtype("uint32"): 8,
    np.dtype("uint64"): 9,
}
FD_BOOL = 10
FD_STR32 = 11
FD_STR64 = 12

_EMPTY_BITS = np.zeros(0, dtype=np.uint8)


@dataclass(frozen=True)
class ColumnView:
    """One Arrow array's buffers, viewed in place.

    ``values``, ``validity`` and ``offsets`` are numpy views over the *whole*
    Arrow buffers (element 0 of the buffer, not of the array); element ``i``
    of the array is element ``offset + i`` of them.  ``validity`` is an empty
    uint8 array when every value is valid.

    kind is one of ``"numeric"``, ``"bool"``, ``"string"`` (values = utf-8
    bytes, offsets = int32/int64), ``"dictionary"`` (values = the integer
    indices, ``dictionary`` = the dictionary array).
    """

    kind: str
    type_code: int
    values: np.ndarray
    validity: np.ndarray
    offsets: Optional[np.ndarray]
    offset: int
    length: int
    null_count: int
    dictionary: Optional[pa.Array] = None
    arrow_type: Optional[pa.DataType] = None
    name: Optional[str] = None
    keepalive: object = None

    @property
    def has_validity(self) -> bool:
        return self.validity.size > 0


def _buf(buf, dtype) -> np.ndarray:
    if buf is None:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(buf, dtype=dtype)


def as_arrow(values, name: Optional[str] = None):
    """Return a pyarrow Array or ChunkedArray for any supported input, without copying.

    Raises :class:`InvalidInputError` (a ``ValueError``) for objects that are
    neither numpy arrays, pyarrow arrays, nor Arrow PyCapsule producers.
    """
    label = f"column {name!r}: " if name is not None else ""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise InvalidInputError(f"{label}expected a 1-D array, got shape {values.shape}")
        if values.dtype.kind in "fiub":
            if not values.flags.c_contiguous:
                values = np.ascontiguousarray(values)
            return pa.array(values)
        if values.dtype.kind in "OUS":
            try:
                return pa.array(values, from_pandas=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise SchemaError(f"{label}cannot convert numpy {values.dtype} values to Arrow: {exc}") from None
        raise SchemaError(f"{label}unsupported numpy dtype {values.dtype}")
    if hasattr(values, "__arrow_c_array__"):
        try:
            return pa.array(values)
        except Exception as exc:  # pragma: no cover - producer specific
            raise InvalidInputError(f"{label}could not import Arrow array: {exc}") from None
    if hasattr(values, "__arrow_c_stream__"):
        try:
            return pa.chunked_array(values)
        except Exception as exc:  # pragma: no cover - producer specific
            raise InvalidInputError(f"{label}could not import Arrow stream: {exc}") from None
    raise InvalidInputError(
        f"{label}expected a numpy array, a pyarrow Array/ChunkedArray or an object with "
        f"__arrow_c_array__/__arrow_c_stream__, got {type(values).__name__}"
    )


def _view(arr: pa.Array, name: Optional[str]) -> ColumnView:
    t = arr.type
    # pyarrow.types.is_extension_type is gone in recent pyarrow; isinstance works everywhere.
    if isinstance(t, pa.BaseExtensionType):
        arr = arr.storage
        t = arr.type
    bufs = arr.buffers()
    validity = _buf(bufs[0], np.uint8) if (bufs[0] is not None and arr.null_count > 0) else _EMPTY_BITS
    n = len(arr)
    if pat.is_dictionary(t):
        idx = arr.indices
        ibufs = idx.buffers()
        idt = np.dtype(t.index_type.to_pandas_dtype())
        ivalid = _buf(ibufs[0], np.uint8) if (ibufs[0] is not None and idx.null_count > 0) else _EMPTY_BITS
        return ColumnView("dictionary", NUMERIC_TYPE_CODES[idt], _buf(ibufs[1], idt), ivalid, None,
                          idx.offset, n, idx.null_count, arr.dictionary, t, name, arr)
    if pat.is_boolean(t):
        return ColumnView("bool", FD_BOOL, _buf(bufs[1], np.uint8), validity, None,
                          arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_string(t) or pat.is_binary(t):
        return ColumnView("string", FD_STR32, _buf(bufs[2], np.uint8), validity, _buf(bufs[1], np.int32),
                          arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_large_string(t) or pat.is_large_binary(t):
        return ColumnView("string", FD_STR64, _buf(bufs[2], np.uint8), validity, _buf(bufs[1], np.int64),
                          arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_integer(t) or pat.is_floating(t):
        if pat.is_float16(t):
            raise SchemaError(f"column {name!r}: float16 is not supported; cast to float32")
        dt = np.dtype(t.to_pandas_dtype())
        return ColumnView("numeric", NUMERIC_TYPE_CODES[dt], _buf(bufs[1], dt), validity, None,
                          arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_null(t):
        # An all-null column: every element is null; give kernels nothing to read.
        return ColumnView("null", -1, np.zeros(0, np.uint8), _EMPTY_BITS, None, 0, n, n, None, t, name, arr)
    raise SchemaError(f"column {name!r}: Arrow type {t} is not supported")


def iter_columns(values, name: Optional[str] = None) -> Iterator[ColumnView]:
    """Yield one :class:`ColumnView` per chunk of ``values`` (empty chunks skipped)."""
    arr = as_arrow(values, name)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        yield _view(chunk, name)


def _batch_like(data) -> bool:
    return isinstance(data, (pa.RecordBatch, pa.Table, pa.RecordBatchReader)) or \
        hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")


def iter_batches(data) -> Iterator[pa.RecordBatch]:
    """Yield the RecordBatches of a Table, RecordBatch, RecordBatchReader, an Arrow PyCapsule
    stream/array producer, or an iterable (list, generator) of those -- without copying.

    Raises :class:`InvalidInputError` for anything else (a string, a dict, a nested list).
    """
    if isinstance(data, pa.RecordBatch):
        yield data
    elif isinstance(data, pa.Table):
        yield from data.to_batches()
    elif isinstance(data, pa.RecordBatchReader):
        yield from data
    elif hasattr(data, "__arrow_c_stream__"):
        yield from pa.RecordBatchReader.from_stream(data)
    elif hasattr(data, "__arrow_c_array__"):
        yield pa.record_batch(data)
    elif isinstance(data, (str, bytes, bytearray, dict)) or not hasattr(data, "__iter__"):
        raise InvalidInputError(
            f"expected an Arrow Table, RecordBatch, RecordBatchReader, an object with the Arrow "
            f"PyCapsule interface, or an iterable of them; got {type(data).__name__}")
    else:
        for item in data:
            if not _batch_like(item):
                raise InvalidInputError(
                    f"expected an iterable of Arrow Tables / RecordBatches, got an item of type "
                    f"{type(item).__name__}")
            yield from iter_batches(item)


def as_table(data, what: str = "the data") -> pa.Table:
    """A Table as it is, or the batches of anything :func:`iter_batches` takes, in one Table."""
    if isinstance(data, pa.Table):
        return data
    batches = list(iter_batches(data))
    if not batches:
        raise InvalidInputError(f"{what} holds no batches")
    return pa.Table.from_batches(batches)
