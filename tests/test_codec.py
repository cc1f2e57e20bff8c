"""The sketch envelope and the Writer/Reader blob helpers.

The corruption tests are exhaustive on a small sample (every truncation,
every single-bit flip) because CRC-32 guarantees detection of those, so a
single escape would be a bug in the validation order, not bad luck.
"""
from __future__ import annotations

import math
import pathlib
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdrift.errors import CorruptStateError, InvalidInputError
from fastdrift import codec
from fastdrift.codec import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    MIN_SIZE,
    Kind,
    Reader,
    Writer,
    decode,
    encode,
)

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden" / "codec_v1_histogram.bin"


def forge(
    params: bytes = b"",
    payload: bytes = b"",
    *,
    magic: bytes = MAGIC,
    version: int = FORMAT_VERSION,
    kind: int = 1,
    flags: int = 0,
    params_len: int | None = None,
    payload_len: int | None = None,
    crc: int | None = None,
) -> bytes:
    """An envelope with any header field overridden and, by default, a valid CRC,
    so that the check under test is the one that fires."""
    head = struct.pack(
        "<4sHHHIQ",
        magic,
        version,
        kind,
        flags,
        len(params) if params_len is None else params_len,
        len(payload) if payload_len is None else payload_len,
    )
    body = head + params + payload
    return body + struct.pack("<I", zlib.crc32(body) if crc is None else crc)


def sample_blob() -> bytes:
    params = Writer().u32(10).f64_array(np.linspace(0.0, 1.0, 4)).getvalue()
    payload = (
        Writer().i64_array([3, 0, 7]).u64(2).u64(1).string("naïve ✓").getvalue()
    )
    return encode(Kind.HISTOGRAM, params, payload)


# --------------------------------------------------------------------------
# envelope round trips
# --------------------------------------------------------------------------


def test_layout_is_as_documented():
    blob = encode(Kind.CATEGORICAL, b"ab", b"xyz")
    assert len(blob) == MIN_SIZE + 5 == 31
    assert blob[:4] == b"FDSK"
    assert struct.unpack_from("<HHHIQ", blob, 4) == (1, 3, 0, 2, 3)
    assert blob[22:24] == b"ab" and blob[24:27] == b"xyz"
    assert struct.unpack_from("<I", blob, 27)[0] == zlib.crc32(blob[:27])
    assert HEADER_SIZE == 22 and MIN_SIZE == 26


def test_crc_is_standard_crc32():
    assert zlib.crc32(b"123456789") == 0xCBF43926


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(list(Kind)),
    params=st.binary(max_size=300),
    payload=st.binary(max_size=2000),
    wrap=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_envelope_round_trip(kind, params, payload, wrap):
    blob = encode(kind, wrap(params), wrap(payload))
    assert isinstance(blob, bytes)
    got_kind, got_params, got_payload = decode(wrap(blob), expected_kind=kind)
    assert got_kind is kind
    assert (got_params, got_payload) == (params, payload)
    assert type(got_params) is bytes and type(got_payload) is bytes


def test_encode_accepts_plain_int_kind_and_decode_returns_enum():
    kind, _, _ = decode(encode(5, b"", b""))
    assert kind is Kind.PROFILE
    assert decode(encode(np.uint16(2), b"", b""))[0] is Kind.MOMENTS


def test_decode_accepts_non_byte_memoryview():
    blob = encode(Kind.MOMENTS, b"", b"123456")
    assert len(blob) == 32
    # a uint64 (and a 2-D) view of the same bytes is flattened, not rejected
    words = np.frombuffer(blob, dtype=np.uint64)
    assert decode(memoryview(words))[2] == b"123456"
    assert decode(memoryview(words.reshape(2, 2)))[2] == b"123456"
    with pytest.raises(InvalidInputError, match="contiguous"):
        decode(memoryview(np.frombuffer(blob + blob, dtype=np.uint8)[::2]))


def test_golden_v1_file_still_decodes():
    """Bytes written by format version 1 must decode forever."""
    data = GOLDEN.read_bytes()
    kind, params, payload = decode(data, expected_kind=Kind.HISTOGRAM)
    r = Reader(params, "golden params")
    assert r.u32() == 10
    np.testing.assert_array_equal(r.f64_array(), [0.0, 1 / 3, 2 / 3, 1.0])
    r.done()
    r = Reader(payload, "golden payload")
    np.testing.assert_array_equal(r.i64_array(), [3, 0, 7])
    assert (r.u64(), r.u64(), r.string()) == (2, 1, "naïve ✓")
    r.done()
    # the writer is deterministic: today's encoder produces the same bytes
    assert sample_blob() == data


# --------------------------------------------------------------------------
# envelope validation
# --------------------------------------------------------------------------


def test_every_truncation_raises():
    blob = sample_blob()
    for n in range(len(blob)):
        with pytest.raises(CorruptStateError):
            decode(blob[:n])


def test_every_single_bit_flip_raises():
    blob = sample_blob()
    for i in range(len(blob)):
        for bit in range(8):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises(CorruptStateError):
                decode(bytes(bad))


def test_trailing_bytes_raise():
    with pytest.raises(CorruptStateError, match="trailing"):
        decode(sample_blob() + b"\0")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_garbage_raises_corrupt_state_only(data):
    with pytest.raises(CorruptStateError):
        decode(data)


@settings(max_examples=500, deadline=None)
@given(
    version=st.integers(0, 0xFFFF),
    kind=st.integers(0, 0xFFFF),
    flags=st.integers(0, 0xFFFF),
    lens=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
    tail=st.binary(max_size=64),
)
def test_garbage_behind_a_valid_magic_raises_corrupt_state_only(version, kind, flags, lens, tail):
    # reaches the version/length/checksum checks, which plain garbage rarely does
    data = struct.pack("<4sHHHIQ", MAGIC, version, kind, flags, *lens) + tail
    with pytest.raises(CorruptStateError):
        decode(data)


def test_bad_magic():
    with pytest.raises(CorruptStateError, match="magic"):
        decode(forge(magic=b"PK\x03\x04"))
    with pytest.raises(CorruptStateError, match="magic"):
        decode(b"{}")


def test_too_short():
    with pytest.raises(CorruptStateError, match="truncated"):
        decode(MAGIC + b"\x01\x00")
    with pytest.raises(CorruptStateError, match="truncated"):
        decode(b"")


def test_future_version_says_upgrade():
    with pytest.raises(CorruptStateError, match=r"version 2, newer .*upgrade fastdrift"):
        decode(forge(version=2))


def test_version_zero_unsupported():
    with pytest.raises(CorruptStateError, match="unsupported format version 0"):
        decode(forge(version=0))


def test_unknown_kind_with_valid_checksum():
    with pytest.raises(CorruptStateError, match="unknown sketch kind 99"):
        decode(forge(kind=99))


def test_reserved_flags_with_valid_checksum():
    with pytest.raises(CorruptStateError, match="reserved flags 0x0001"):
        decode(forge(flags=1))


def test_checksum_mismatch():
    blob = forge(b"p", b"q")
    with pytest.raises(CorruptStateError, match="checksum mismatch"):
        decode(forge(b"p", b"q", crc=zlib.crc32(blob[:-4]) ^ 1))


def test_wrong_expected_kind():
    blob = encode(Kind.TDIGEST, b"", b"")
    with pytest.raises(CorruptStateError, match=r"expected a HISTOGRAM \(1\) sketch, got TDIGEST \(4\)"):
        decode(blob, expected_kind=Kind.HISTOGRAM)
    assert decode(blob, expected_kind=4)[0] is Kind.TDIGEST


@pytest.mark.parametrize(
    "params_len, payload_len",
    [(0, 2**64 - 1), (2**32 - 1, 0), (2**32 - 1, 2**64 - 1), (0, 2**40), (100, 0)],
)
def test_oversized_declared_lengths_raise_without_allocating(params_len, payload_len):
    data = forge(params_len=params_len, payload_len=payload_len)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptStateError, match="declares"):
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_declared_lengths_shorter_than_data():
    blob = forge(b"abc", b"defg", payload_len=2)
    with pytest.raises(CorruptStateError, match="trailing"):
        decode(blob)


def test_max_size_cap():
    blob = encode(Kind.MOMENTS, b"", b"x" * 100)
    assert decode(blob, max_size=len(blob))[2] == b"x" * 100
    with pytest.raises(CorruptStateError, match="max_size"):
        decode(blob, max_size=len(blob) - 1)
    # a small input whose header claims more than the cap
    with pytest.raises(CorruptStateError, match="max_size"):
        decode(forge(payload_len=2**31), max_size=2**30)
    with pytest.raises(InvalidInputError, match="max_size"):
        encode(Kind.MOMENTS, b"", b"x" * 100, max_size=100)


@pytest.mark.parametrize("bad", ["FDSK", 123, None, [1, 2], np.zeros(3)])
def test_non_bytes_input_is_a_caller_error(bad):
    with pytest.raises(InvalidInputError, match="expected bytes"):
        decode(bad)


@pytest.mark.parametrize("max_size", [0, -1, 25, 1.5, True, "1"])
def test_bad_max_size(max_size):
    with pytest.raises(InvalidInputError, match="max_size"):
        decode(sample_blob(), max_size=max_size)


def test_encode_rejects_bad_arguments():
    with pytest.raises(InvalidInputError, match="unknown sketch kind 0"):
        encode(0, b"", b"")
    with pytest.raises(InvalidInputError, match="kind must be a Kind"):
        encode("HISTOGRAM", b"", b"")
    with pytest.raises(InvalidInputError, match="kind must be a Kind"):
        encode(True, b"", b"")
    with pytest.raises(InvalidInputError, match="params"):
        encode(Kind.HISTOGRAM, "text", b"")
    with pytest.raises(InvalidInputError, match="not a Kind"):
        decode(sample_blob(), expected_kind=42)


def test_decode_returns_copies_not_views():
    buf = bytearray(encode(Kind.HISTOGRAM, b"pp", b"qq"))
    _, params, payload = decode(buf)
    buf[HEADER_SIZE] = ord("X")
    assert params == b"pp" and payload == b"qq"


# --------------------------------------------------------------------------
# Writer / Reader
# --------------------------------------------------------------------------

_ints = {
    "u8": st.integers(0, 2**8 - 1),
    "u16": st.integers(0, 2**16 - 1),
    "u32": st.integers(0, 2**32 - 1),
    "u64": st.integers(0, 2**64 - 1),
    "i64": st.integers(-(2**63), 2**63 - 1),
}
_arrays = {
    "int32": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=20),
    "int64": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20),
    "uint64": st.lists(st.integers(0, 2**64 - 1), max_size=20),
    "float64": st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=20),
}
_field = st.one_of(
    *[st.tuples(st.just(name), s) for name, s in _ints.items()],
    st.tuples(st.just("f64"), st.floats(allow_nan=True, allow_infinity=True)),
    *[st.tuples(st.just("array:" + d), s) for d, s in _arrays.items()],
    st.tuples(st.just("string"), st.text(max_size=30)),
    st.tuples(st.just("blob"), st.binary(max_size=30)),
    st.tuples(st.just("string_list"), st.lists(st.text(max_size=5), max_size=5)),
)


def _write(w: Writer, name: str, value) -> None:
    if name.startswith("array:"):
        dtype = name.split(":")[1]
        w.array(np.array(value, dtype=dtype), dtype)
    else:
        getattr(w, name)(value)


def _read(r: Reader, name: str):
    if name.startswith("array:"):
        return r.array(name.split(":")[1])
    return getattr(r, name)()


def _same(name: str, expected, got) -> bool:
    if name.startswith("array:"):
        exp = np.array(expected, dtype=name.split(":")[1])
        # compare bit patterns so that NaN payloads and -0.0 count too
        return got.dtype == exp.dtype and got.tobytes() == exp.tobytes()
    if name == "f64":
        return struct.pack("<d", expected) == struct.pack("<d", got)
    return got == expected and type(got) is type(expected)


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(_field, max_size=12), kind=st.sampled_from(list(Kind)))
def test_writer_reader_round_trip_through_envelope(fields, kind):
    w = Writer()
    for name, value in fields:
        _write(w, name, value)
    _, _, payload = decode(encode(kind, b"", w.getvalue()), expected_kind=kind)
    r = Reader(payload, "payload")
    for name, value in fields:
        assert _same(name, value, _read(r, name))
    r.done()


def test_strings_unicode_and_empty():
    values = ["", "a", "é", "日本語", "🎉 emoji", "\x00nul", "line\nbreak"]
    w = Writer()
    for v in values:
        w.string(v)
    w.string_list(values)
    r = Reader(w.getvalue(), "strings")
    assert [r.string() for _ in values] == values
    assert r.string_list() == values
    r.done()


def test_empty_arrays_round_trip_with_dtype():
    w = Writer()
    for d in ("int32", "int64", "uint64", "float64"):
        w.array([], d)
    r = Reader(w.getvalue(), "empty")
    for d in ("int32", "int64", "uint64", "float64"):
        a = r.array(d)
        assert a.shape == (0,) and a.dtype == np.dtype(d)
    r.done()


def test_reader_arrays_are_owned_writable_copies():
    buf = bytearray(Writer().f64_array([1.0, 2.0]).i64_array([5]).getvalue())
    r = Reader(memoryview(buf), "p")
    a, b = r.f64_array(), r.i64_array()
    for arr in (a, b):
        assert arr.flags.writeable and arr.flags.owndata and arr.dtype.isnative
    buf[:] = bytes(len(buf))  # the caller reuses its buffer
    assert a.tolist() == [1.0, 2.0] and b.tolist() == [5]
    a[0] = 9.0  # and we may mutate ours
    assert a[0] == 9.0


def test_reader_blob_is_a_copy():
    buf = bytearray(Writer().blob(b"abc").getvalue())
    got = Reader(buf, "p").blob()
    buf[-1] = 0
    assert got == b"abc" and type(got) is bytes


def test_reader_done_detects_trailing_bytes():
    r = Reader(Writer().u8(1).u8(2).getvalue(), "histogram params")
    r.u8()
    with pytest.raises(CorruptStateError, match=r"histogram params: 1 unexpected trailing bytes at offset 1"):
        r.done()


@pytest.mark.parametrize("method", ["u8", "u16", "u32", "u64", "i64", "f64", "string", "blob", "f64_array", "string_list"])
def test_reader_every_read_checks_length(method):
    with pytest.raises(CorruptStateError, match="truncated"):
        getattr(Reader(b"", "p"), method)()


def test_every_truncation_of_a_blob_raises_in_reader():
    w = Writer().u16(7).f64_array([1.5, 2.5]).string("xyz").string_list(["a", "bc"]).i64(-4)
    full = w.getvalue()

    def read_all(buf):
        r = Reader(buf, "p")
        r.u16(), r.f64_array(), r.string(), r.string_list(), r.i64()
        r.done()

    read_all(full)
    for n in range(len(full)):
        with pytest.raises(CorruptStateError):
            read_all(full[:n])


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint64", "float64"])
@pytest.mark.parametrize("declared", [5, 2**32, 2**61, 2**64 - 1])
def test_array_length_larger_than_remaining_raises_without_allocating(dtype, declared):
    data = struct.pack("<Q", declared) + b"\0" * 16
    tracemalloc.start()
    try:
        with pytest.raises(CorruptStateError, match="length"):
            Reader(data, "payload").array(dtype)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_count_bounds_loops_by_minimum_item_size():
    data = Writer().u64(1000).getvalue() + b"\0" * 100
    with pytest.raises(CorruptStateError, match="items 1000 needs at least 8000 more bytes"):
        Reader(data, "p").count("items", min_item_size=8)
    assert Reader(data, "p").count("items", min_item_size=0) == 1000
    with pytest.raises(CorruptStateError, match="strings count"):
        Reader(Writer().u64(2**40).getvalue(), "p").string_list()


def test_reader_invalid_utf8():
    data = Writer().blob(b"\xff\xfe").getvalue()  # same layout as a string
    with pytest.raises(CorruptStateError, match="not valid UTF-8"):
        Reader(data, "names").string("label")


def test_reader_messages_name_blob_and_field():
    with pytest.raises(CorruptStateError, match=r"^tdigest payload: truncated reading compression at offset 0"):
        Reader(b"\x01", "tdigest payload").f64("compression")


@pytest.mark.parametrize(
    "method, value",
    [
        ("u8", 256), ("u8", -1), ("u16", 2**16), ("u32", 2**32), ("u64", 2**64), ("u64", -1),
        ("i64", 2**63), ("i64", -(2**63) - 1), ("u32", 1.0), ("u8", True), ("i64", "1"),
        ("f64", "1.0"), ("f64", None), ("f64", True),
    ],
)
def test_writer_rejects_out_of_range_scalars(method, value):
    with pytest.raises(InvalidInputError):
        getattr(Writer(), method)(value)


def test_writer_accepts_numpy_scalars():
    r = Reader(Writer().u64(np.uint64(2**64 - 1)).i64(np.int32(-3)).f64(np.float32(0.5)).getvalue())
    assert (r.u64(), r.i64(), r.f64()) == (2**64 - 1, -3, 0.5)


@pytest.mark.parametrize(
    "values, dtype",
    [
        ([1.5], "int64"),  # lossy float -> int
        (np.array([1.0]), "int64"),
        ([-1], "uint64"),
        ([2**31], "int32"),
        (np.array([2**63], dtype=np.uint64), "int64"),
        ([[1, 2]], "int64"),  # 2-D
        (["a"], "float64"),
        ([1 + 2j], "float64"),
        ([1], "float32"),  # not a wire dtype
    ],
)
def test_writer_rejects_lossy_or_unsupported_arrays(values, dtype):
    with pytest.raises(InvalidInputError):
        Writer().array(values, dtype)


def test_writer_widens_losslessly():
    w = Writer().i64_array(np.array([1, 2], dtype=np.int8)).f64_array(np.array([1, 2], dtype=np.int32))
    w.u64_array(np.array([True, False]))
    r = Reader(w.getvalue())
    assert r.i64_array().tolist() == [1, 2]
    assert r.f64_array().tolist() == [1.0, 2.0]
    assert r.u64_array().tolist() == [1, 0]


def test_writer_rejects_unencodable_and_non_str():
    with pytest.raises(InvalidInputError, match="UTF-8"):
        Writer().string("\ud800")
    with pytest.raises(InvalidInputError, match="must be a str"):
        Writer().string(b"bytes")
    with pytest.raises(InvalidInputError, match="expected bytes"):
        Writer().blob("text")


def test_writer_limit():
    w = Writer(limit=16).u64(1)
    with pytest.raises(InvalidInputError, match="limit of 16"):
        w.f64_array([1.0])
    with pytest.raises(InvalidInputError, match="limit"):
        Writer(limit=-1)


def test_writer_chains_and_reports_length():
    w = Writer()
    assert w.u8(1) is w
    assert len(w) == 1


def test_module_exports():
    for name in codec.__all__:
        assert hasattr(codec, name)
    assert math.isclose(codec.DEFAULT_MAX_SIZE, 2**30)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, (1 << 63) - 1), max_size=40), st.lists(st.floats(width=64), max_size=5))
def test_uvarints_and_bare_values_round_trip(ints, floats):
    blob = codec.Writer().uvarint(len(ints)).uvarint_values(np.array(ints, dtype=object)) \
        .f64_values(np.array(floats, dtype=np.float64)).getvalue()
    r = codec.Reader(blob, "v")
    n = r.uvarint()
    assert r.uvarint_values(n).tolist() == ints
    got = r.f64_values(len(floats))
    assert np.array_equal(got.view(np.uint64), np.array(floats, dtype=np.float64).view(np.uint64))
    r.done()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, (1 << 63) - 1), min_size=1, max_size=20))
def test_one_uvarint_is_the_array_encoding_of_one_value(ints):
    one = b"".join(codec.Writer().uvarint(v).getvalue() for v in ints)
    assert one == codec.Writer().uvarint_values(np.array(ints, dtype=object)).getvalue()
    assert one == codec.Writer().uvarint_values(np.array(ints, dtype=np.uint64)).getvalue()
    r = codec.Reader(one, "v")
    assert [r.uvarint() for _ in ints] == ints


def test_uvarint_layout_is_leb128():
    assert codec.Writer().uvarint(0).getvalue() == b"\x00"
    assert codec.Writer().uvarint(127).getvalue() == b"\x7f"
    assert codec.Writer().uvarint(300).getvalue() == b"\xac\x02"
    assert codec.Writer().uvarint((1 << 63) - 1).getvalue() == b"\xff" * 8 + b"\x7f"


@pytest.mark.parametrize("raw", [b"", b"\x80", b"\x80\x00", b"\x81\x80\x00", b"\xff" * 9 + b"\x01"])
def test_uvarint_rejects_truncated_long_and_non_canonical(raw):
    with pytest.raises(CorruptStateError):
        codec.Reader(raw, "v").uvarint()


@pytest.mark.parametrize("bad", [-1, 1 << 63, 1.5, "3"])
def test_uvarint_writer_rejects_out_of_range(bad):
    with pytest.raises(InvalidInputError):
        codec.Writer().uvarint_values(np.array([bad], dtype=object) if not isinstance(bad, float) else [bad])


def test_uvarint_count_cannot_drive_allocation():
    r = codec.Reader(b"\x01\x02", "v")
    with pytest.raises(CorruptStateError):
        r.uvarint_values(1 << 40)
    with pytest.raises(CorruptStateError):
        r.f64_values(1 << 40)
