"""Turn numpy arrays, pyarrow arrays and Arrow PyCapsule objects into
:class:`ColumnView` records that kernels read in place.

Nothing here copies a column, except where Arrow or the kernels have no layout for it:

* a non-contiguous numpy array (a strided view) is made contiguous, and a big-endian one is
  byteswapped to native order (Arrow has neither layout);
* the types the kernels do not read in place are converted once per chunk by :func:`counted`
  (one new buffer of the converted values): ``string_view`` / ``binary_view`` (and
  dictionaries of them) to ``large_string`` / ``large_binary``; ``float16`` to ``float32``;
  ``decimal`` to ``float64`` (nearest double); dates, timestamps (any unit, with or without a
  time zone), times and durations to ``float64`` seconds (since the Unix epoch, midnight, or
  of duration; a time zone does not change the instant Arrow stores).

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

__all__ = ["ColumnView", "iter_columns", "iter_batches", "as_table", "as_arrow", "NUMERIC_TYPE_CODES",
           "counted", "float64_values", "is_numeric_type", "is_string_type", "is_binary_type", "skip_reason"]

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


# string_view / binary_view arrived in pyarrow 16: before, no array can have them.
_is_string_view = getattr(pat, "is_string_view", lambda t: False)
_is_binary_view = getattr(pat, "is_binary_view", lambda t: False)
#: Seconds per unit of Arrow's temporal types; date32 counts days.
_SECONDS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _is_temporal(t: pa.DataType) -> bool:
    return pat.is_date(t) or pat.is_timestamp(t) or pat.is_time(t) or pat.is_duration(t)


def is_numeric_type(t: pa.DataType) -> bool:
    """Whether the numeric sketches count values of Arrow type ``t`` (integers, floats of every
    width, decimals, dates, timestamps, times, durations: see :func:`counted`)."""
    return pat.is_integer(t) or pat.is_floating(t) or pat.is_decimal(t) or _is_temporal(t)


def is_string_type(t: pa.DataType) -> bool:
    """string, large_string or string_view."""
    return pat.is_string(t) or pat.is_large_string(t) or _is_string_view(t)


def is_binary_type(t: pa.DataType) -> bool:
    """binary, large_binary, binary_view or fixed_size_binary."""
    return pat.is_binary(t) or pat.is_large_binary(t) or _is_binary_view(t) or pat.is_fixed_size_binary(t)


_NESTED = ("struct<", "list<", "large_list<", "list_view<", "large_list_view<", "fixed_size_list<", "map<",
           "dense_union<", "sparse_union<", "union<")
_BYTES = ("binary", "large_binary", "binary_view", "fixed_size_binary")


def skip_reason(t) -> str:
    """Why a column of Arrow type ``t`` (a DataType, or its string as a profile file saves it) is
    not counted: one line, for messages and reports."""
    s = str(t)
    if s.startswith(_NESTED):
        return f"nested type {s}: select or flatten its fields to count them"
    if s.startswith(_BYTES):
        return (f"bytes ({s}) are not counted as categories; a CSV column that is not UTF-8 text reads "
                "as binary: fix its encoding or cast it to string")
    if s.startswith("dictionary<"):
        return f"{s}: its values are neither text, integers nor booleans"
    return f"Arrow type {s} has no sketch"


def counted(arr):
    """``arr`` (an Array or ChunkedArray) in a type the kernels read in place; itself when it is one.

    View strings become large strings; float16 becomes float32 (exact); decimals become the
    nearest float64; dates, timestamps, times and durations become float64 seconds (since the
    Unix epoch, since midnight, or of the duration), whatever their unit, so a reference in
    milliseconds and current data in nanoseconds count on the same scale.  Each conversion
    writes one new buffer of the chunk's values (and offsets, for strings); nulls stay null.
    """
    t = arr.type
    if isinstance(arr, pa.ChunkedArray):
        if not _converts(t):
            return arr
        return pa.chunked_array([counted(c) for c in arr.chunks], type=_counted_type(t))
    if pat.is_dictionary(t):
        if not _converts(t.value_type):
            return arr
        return pa.DictionaryArray.from_arrays(arr.indices, counted(arr.dictionary))
    if _is_string_view(t):
        return arr.cast(pa.large_string())
    if _is_binary_view(t):
        return arr.cast(pa.large_binary())
    if pat.is_float16(t):
        return arr.cast(pa.float32())
    if pat.is_decimal(t):
        return arr.cast(pa.float64(), safe=False)  # nearest double: a 38-digit decimal rounds
    if _is_temporal(t):
        import pyarrow.compute as pc  # 25 ms to import: only for temporal columns
        raw = arr.view(pa.int32() if t.bit_width == 32 else pa.int64()).cast(pa.float64(), safe=False)
        if pat.is_date32(t):
            return pc.multiply(raw, 86400.0)
        per = 10**3 if pat.is_date64(t) else _SECONDS[t.unit]
        return raw if per == 1 else pc.divide(raw, float(per))  # correctly rounded, unlike * 1e-9
    return arr


def _converts(t: pa.DataType) -> bool:
    if pat.is_dictionary(t):
        return _converts(t.value_type)
    return _is_string_view(t) or _is_binary_view(t) or pat.is_float16(t) or pat.is_decimal(t) or _is_temporal(t)


def _counted_type(t: pa.DataType) -> pa.DataType:
    if pat.is_dictionary(t):
        return pa.dictionary(t.index_type, _counted_type(t.value_type), t.ordered)
    if _is_string_view(t):
        return pa.large_string()
    if _is_binary_view(t):
        return pa.large_binary()
    if pat.is_float16(t):
        return pa.float32()
    return pa.float64() if pat.is_decimal(t) or _is_temporal(t) else t


def float64_values(arr) -> np.ndarray:
    """The values of a numeric column as a float64 numpy array, nulls as NaN.

    The one conversion of numbers to doubles: integers beyond ±2**53 round to the nearest
    double (as the kernels convert them), never an error.
    """
    arr = counted(arr)
    if not pat.is_float64(arr.type):
        arr = arr.cast(pa.float64(), safe=False)
    if arr.null_count:
        arr = arr.fill_null(np.nan)
    return arr.to_numpy(zero_copy_only=False)


def _is_pandas(obj, what: str) -> bool:
    """Whether ``obj`` is a pandas ``what`` ("Series" or "DataFrame"), without importing pandas."""
    return type(obj).__module__.partition(".")[0] == "pandas" and type(obj).__name__ == what


def _pandas_array(series, name=None) -> pa.Array:
    """A pandas Series as Arrow, with numpy's meaning of NaN.

    In a numpy float column NaN is a value (counted as NaN), as in a numpy array; elsewhere
    pandas' missing markers (None, NaN in an object column, ``pd.NA``, ``NaT``) are null.
    pyarrow's own pandas conversion would turn every float NaN into null.
    """
    nan_is_value = isinstance(series.dtype, np.dtype) and series.dtype.kind == "f"
    try:
        return pa.array(series, from_pandas=not nan_is_value)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        label = f"column {name!r}: " if name is not None else ""
        raise SchemaError(f"{label}cannot convert pandas {series.dtype} values to Arrow: {exc}") from None


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
        if values.dtype.kind in "fiubmM":
            if not values.dtype.isnative:  # Arrow is little-endian only: one byteswapped copy
                values = values.astype(values.dtype.newbyteorder("="))
            if not values.flags.c_contiguous:
                values = np.ascontiguousarray(values)
            return pa.array(values)
        if values.dtype.kind in "OUS":
            try:
                return pa.array(values, from_pandas=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise SchemaError(f"{label}cannot convert numpy {values.dtype} values to Arrow: {exc}") from None
        raise SchemaError(f"{label}unsupported numpy dtype {values.dtype}")
    if _is_pandas(values, "Series"):
        return _pandas_array(values, name)
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


_FIELDS = tuple(ColumnView.__dataclass_fields__)
_object_new = object.__new__


def _new_view(*values) -> ColumnView:
    """``ColumnView(*values)`` without the frozen dataclass's ``__init__``, which sets each of the
    twelve fields through ``object.__setattr__`` (3.6 against 1.0 us a view): views are made per
    column and batch, on every path that counts data."""
    view = _object_new(ColumnView)
    view.__dict__.update(zip(_FIELDS, values))
    return view


#: Arrow type id -> numpy dtype of the integer and floating types read in place (float16, which
#: is converted, and extension types, whose id is their own, take :func:`_view`'s general path).
_IN_PLACE = {t.id: np.dtype(t.to_pandas_dtype())
             for t in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(),
                       pa.uint64(), pa.float32(), pa.float64())}


def _view(arr: pa.Array, name: Optional[str]) -> ColumnView:
    t = arr.type
    dt = _IN_PLACE.get(t.id)
    if dt is not None:  # the common case first: integers and floats, nothing to convert
        bufs = arr.buffers()
        nulls = arr.null_count
        validity = _buf(bufs[0], np.uint8) if (bufs[0] is not None and nulls > 0) else _EMPTY_BITS
        return _new_view("numeric", NUMERIC_TYPE_CODES[dt], _buf(bufs[1], dt), validity, None,
                         arr.offset, len(arr), nulls, None, t, name, arr)
    # pyarrow.types.is_extension_type is gone in recent pyarrow; isinstance works everywhere.
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    arr = counted(arr)
    t = arr.type
    bufs = arr.buffers()
    validity = _buf(bufs[0], np.uint8) if (bufs[0] is not None and arr.null_count > 0) else _EMPTY_BITS
    n = len(arr)
    if pat.is_dictionary(t):
        idx = arr.indices
        ibufs = idx.buffers()
        idt = np.dtype(t.index_type.to_pandas_dtype())
        ivalid = _buf(ibufs[0], np.uint8) if (ibufs[0] is not None and idx.null_count > 0) else _EMPTY_BITS
        return _new_view("dictionary", NUMERIC_TYPE_CODES[idt], _buf(ibufs[1], idt), ivalid, None,
                         idx.offset, n, idx.null_count, arr.dictionary, t, name, arr)
    if pat.is_boolean(t):
        return _new_view("bool", FD_BOOL, _buf(bufs[1], np.uint8), validity, None,
                         arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_string(t) or pat.is_binary(t):
        return _new_view("string", FD_STR32, _buf(bufs[2], np.uint8), validity, _buf(bufs[1], np.int32),
                         arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_large_string(t) or pat.is_large_binary(t):
        return _new_view("string", FD_STR64, _buf(bufs[2], np.uint8), validity, _buf(bufs[1], np.int64),
                         arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_integer(t) or pat.is_floating(t):
        dt = np.dtype(t.to_pandas_dtype())
        return _new_view("numeric", NUMERIC_TYPE_CODES[dt], _buf(bufs[1], dt), validity, None,
                         arr.offset, n, arr.null_count, None, t, name, arr)
    if pat.is_null(t):
        # An all-null column: every element is null; give kernels nothing to read.
        return _new_view("null", -1, np.zeros(0, np.uint8), _EMPTY_BITS, None, 0, n, n, None, t, name, arr)
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
    return _is_pandas(data, "DataFrame") or isinstance(data, (pa.RecordBatch, pa.Table, pa.RecordBatchReader)) or \
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
    elif _is_pandas(data, "DataFrame"):
        names = [str(c) for c in data.columns]
        yield pa.record_batch([_pandas_array(data.iloc[:, i], n) for i, n in enumerate(names)], names=names)
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
