"""The Arrow adapter reads buffers in place: no copies, offsets honoured."""
import numpy as np
import pyarrow as pa
import pytest

from fastdrift import InvalidInputError, SchemaError
from fastdrift.adapters import as_arrow, iter_columns

from conftest import CapsuleArray, CapsuleStream


def test_numeric_view_is_zero_copy():
    arr = pa.array(np.arange(100, dtype=np.float32)).slice(13, 50)
    (v,) = iter_columns(arr)
    assert v.values.ctypes.data == arr.buffers()[1].address
    assert v.offset == 13 and v.length == 50 and v.values.dtype == np.float32


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
