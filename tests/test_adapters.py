"""The Arrow adapter reads buffers in place: no copies, offsets honoured."""
import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from fastdrift import InvalidInputError, SchemaError
from fastdrift.adapters import as_arrow, iter_columns
from fastdrift.adapters.arrow import NUMERIC_TYPE_CODES

from conftest import CapsuleArray, CapsuleStream


def test_numeric_view_is_zero_copy():
    arr = pa.array(np.arange(100, dtype=np.float32)).slice(13, 50)
    (v,) = iter_columns(arr)
    assert v.values.ctypes.data == arr.buffers()[1].address
    assert v.offset == 13 and v.length == 50 and v.values.dtype == np.float32


@pytest.mark.parametrize("typ", [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(),
                                 pa.uint32(), pa.uint64(), pa.float32(), pa.float64()])
@pytest.mark.parametrize("nulls", [False, True])
def test_every_integer_and_float_type_is_viewed_in_place(typ, nulls):
    """Each field of the view, from the array's own buffers: the values' dtype and address, the
    bitmap only when there are nulls, the slice's offset and length, the frozen record."""
    raw = [None if nulls and i % 7 == 3 else i % 100 for i in range(64)]
    arr = pa.array(raw, typ).slice(5, 40)
    (v,) = iter_columns(arr, "c")
    bufs = arr.buffers()
    assert v.kind == "numeric" and v.values.dtype == np.dtype(typ.to_pandas_dtype())
    assert v.type_code == NUMERIC_TYPE_CODES[v.values.dtype]
    assert v.values.ctypes.data == bufs[1].address
    assert (v.offset, v.length, v.null_count) == (5, 40, arr.null_count) and (v.null_count > 0) == nulls
    assert v.has_validity == nulls and (not nulls or v.validity.ctypes.data == bufs[0].address)
    assert v.offsets is None and v.dictionary is None and v.arrow_type == typ and v.name == "c"
    got = [None if nulls and not (v.validity[(v.offset + i) // 8] >> ((v.offset + i) % 8)) & 1
           else v.values[v.offset + i].item() for i in range(v.length)]
    assert got == raw[5:45]
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.length = 1
    assert dataclasses.replace(v, length=2).length == 2 and dataclasses.replace(v) == v
    # a bitmap whose slice holds no null is not handed to the kernels
    (clear,) = iter_columns(pa.array([None, 1, 2, 3], typ).slice(1), "c")
    assert clear.null_count == 0 and not clear.has_validity


def test_converted_and_extension_types_take_the_general_path():
    """float16 is widened to float32, and an extension type is read as its storage."""
    (h,) = iter_columns(pa.array(np.array([1.5, -2.0], np.float16)))
    assert h.values.dtype == np.float32 and h.values[h.offset:h.offset + 2].tolist() == [1.5, -2.0]

    class Meters(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.float64(), "test.meters")

        def __arrow_ext_serialize__(self):
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    ext = pa.ExtensionArray.from_storage(Meters(), pa.array([1.0, None, 3.0]))
    (e,) = iter_columns(ext)
    assert e.kind == "numeric" and e.values.dtype == np.float64 and e.null_count == 1
    assert e.arrow_type == pa.float64()


def test_numpy_input_is_zero_copy():
    x = np.arange(10, dtype=np.int16)
    (v,) = iter_columns(x)
    assert v.values.ctypes.data == x.ctypes.data and v.values.dtype == np.int16


def test_string_and_validity_views():
    arr = pa.array(["a", None, "ccc", "dd"] * 5, pa.large_string()).slice(3)
    (v,) = iter_columns(arr)
    bufs = arr.buffers()
    assert v.kind == "string" and v.offsets.dtype == np.int64
    assert v.values.ctypes.data == bufs[2].address
    assert v.validity.ctypes.data == bufs[0].address
    assert v.offset == 3 and v.null_count == arr.null_count


def test_dictionary_view():
    arr = pa.array(["x", "y", "x"]).dictionary_encode().slice(1)
    (v,) = iter_columns(arr)
    assert v.kind == "dictionary" and v.dictionary.to_pylist() == ["x", "y"]
    assert v.values.ctypes.data == arr.indices.buffers()[1].address and v.offset == 1


def test_chunked_skips_empty_chunks():
    ch = pa.chunked_array([pa.array([1.0]), pa.array([], pa.float64()), pa.array([2.0, 3.0])])
    assert [v.length for v in iter_columns(ch)] == [1, 2]


def test_capsule_producers_are_not_copied():
    arr = pa.array(np.arange(1000, dtype=np.float64))
    (v,) = iter_columns(CapsuleArray(arr))
    assert v.values.ctypes.data == arr.buffers()[1].address
    views = list(iter_columns(CapsuleStream(pa.chunked_array([arr]))))
    assert views[0].values.ctypes.data == arr.buffers()[1].address


def test_bad_inputs():
    with pytest.raises(InvalidInputError, match="dict"):
        as_arrow({"a": 1})
    with pytest.raises(InvalidInputError, match="shape"):
        as_arrow(np.zeros((2, 2)))
    with pytest.raises(SchemaError, match="'c'"):
        list(iter_columns(pa.array([{"a": 1}]), name="c"))
    with pytest.raises(SchemaError, match="'l'"):
        list(iter_columns(pa.array([[1], [2]]), name="l"))


def test_as_table_takes_any_batch_source_and_names_an_empty_one():
    import pytest
    from fastdrift.adapters import as_table
    from fastdrift.errors import InvalidInputError
    t = pa.table({"x": [1.0, 2.0, 3.0]})
    assert as_table(t) is t
    assert as_table(t.to_batches(max_chunksize=1)).equals(t)
    assert as_table(t.to_reader()).equals(t)
    with pytest.raises(InvalidInputError, match="the reference holds no batches"):
        as_table([], "the reference")
