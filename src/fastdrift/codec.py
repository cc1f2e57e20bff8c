"""The one byte format of fastdrift: sketches, profiles, monitor checkpoints and alert state.

A serialized sketch (or any of those) is an *envelope* (magic, version, kind, two lengths, a
checksum) around two opaque blobs that the sketch lays out itself with
:class:`Writer` and reads back with :class:`Reader`:

* ``params`` - what must match for two sketches to be merged or compared
  (bin edges, compression, top-k capacity, ...);
* ``payload`` - the accumulated state (counts, centroids, moments, ...).

Keeping the two apart lets a reader check compatibility without touching the
(possibly large) payload, and gives every sketch the same validated entry
point instead of one ad-hoc parser per class.

Envelope layout (format version 1)
----------------------------------
All integers are little-endian and unsigned. ``P`` is the params length and
``L`` the payload length; the total size is exactly ``26 + P + L`` bytes.

=============  ======  =====================================================
offset         size    field
=============  ======  =====================================================
0              4       magic ``b"FDSK"`` (``46 44 53 4B``)
4              2       format version (u16), currently ``1``
6              2       kind (u16), a :class:`Kind` value
8              2       flags (u16), reserved, must be ``0``
10             4       ``P``, params length in bytes (u32)
14             8       ``L``, payload length in bytes (u64)
22             P       params bytes
22 + P         L       payload bytes
22 + P + L     4       CRC-32 (u32) of bytes ``0 .. 22 + P + L - 1``
=============  ======  =====================================================

The checksum is the ISO-HDLC / IEEE 802.3 CRC-32 computed by
:func:`zlib.crc32` (polynomial ``0x04C11DB7``, reflected, init and xor-out
``0xFFFFFFFF``; check value of ``b"123456789"`` is ``0xCBF43926``). It detects
every single-bit error, every burst of up to 32 bits and all but about one in
2**32 random corruptions. It is an integrity check, not an authenticity
check: anyone can forge a valid envelope.

Inside params and payload, :class:`Writer` / :class:`Reader` use the same
little-endian scalars, and every variable-size field (array, string, bytes,
sequence count) is prefixed by its element count as a u64. Arrays are raw
little-endian element bytes (``<i4``, ``<i8``, ``<u8``, ``<f8``); strings are
UTF-8.  Compact layouts may also use *uvarints* (unsigned LEB128: seven bits
per byte, least significant group first, the high bit set on every byte but
the last; at most 9 bytes, so values below 2**63; canonical: no redundant
trailing zero group) and bare runs of values whose count the layout wrote
before them (:meth:`Writer.uvarint_values`, :meth:`Writer.f64_values`).

Validation
----------
:func:`decode` never trusts its input. In order, it checks the total size
against a hard cap (``max_size``, 1 GiB by default), the magic, the format
version (a newer version gets a message saying to upgrade), that the declared
lengths add up to exactly the number of bytes received (before anything is
sliced, so no allocation is ever sized by a length field), the checksum, the
reserved flags, the kind and, when given, the expected kind. Every failure is
a :class:`~fastdrift.errors.CorruptStateError` whose message names the field
and the offending value. :class:`Reader` applies the same rule inside the
blobs: each read checks the remaining length first, so a corrupt array length
fails instead of allocating.

Cost: encoding and decoding are a single pass plus one CRC over the bytes
(one ``zlib.crc32`` call); the envelope adds 26 bytes.

Examples
--------
>>> w = Writer().f64(0.5).f64_array([1.0, 2.0])
>>> blob = encode(Kind.HISTOGRAM, b"", w.getvalue())
>>> kind, params, payload = decode(blob, expected_kind=Kind.HISTOGRAM)
>>> r = Reader(payload, "example payload")
>>> r.f64(), r.f64_array().tolist()
(0.5, [1.0, 2.0])
>>> r.done()
"""
from __future__ import annotations

import enum
import json
import struct
import zlib
from typing import Iterable, Optional, Union

import numpy as np

from .errors import CorruptStateError, InvalidInputError

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "TRAILER_SIZE",
    "MIN_SIZE",
    "DEFAULT_MAX_SIZE",
    "Kind",
    "encode",
    "decode",
    "Writer",
    "Reader",
]

MAGIC = b"FDSK"
FORMAT_VERSION = 1
# magic, version, kind, flags, params length, payload length
_HEADER = struct.Struct("<4sHHHIQ")
HEADER_SIZE = _HEADER.size  # 22
_TRAILER = struct.Struct("<I")
TRAILER_SIZE = _TRAILER.size  # 4
MIN_SIZE = HEADER_SIZE + TRAILER_SIZE  # 26
DEFAULT_MAX_SIZE = 1 << 30  # 1 GiB
_U32_MAX = (1 << 32) - 1

BytesLike = Union[bytes, bytearray, memoryview]


class Kind(enum.IntEnum):
    """What an envelope holds (the u16 at offset 6): a sketch, a profile, a checkpoint or alert state."""

    HISTOGRAM = 1
    MOMENTS = 2
    CATEGORICAL = 3
    TDIGEST = 4
    PROFILE = 5
    MONITOR = 6  #: a monitor checkpoint (fastdrift.Monitor.to_bytes: config, reference, panes, alert state, reports)
    CHECKPOINT = 7  #: the older two-envelope monitor checkpoint (a MONITOR blob plus alert state): read, not written
    PROFILE_FILE = 8  #: a ``.fdp`` file: a PROFILE blob plus source schema and evidence rows (fastdrift.profilefile)
    ROW_SAMPLE = 9  #: a bottom-k sample of redacted rows (sketches.sample.RowSample)
    SPOOL_REFERENCE = 10  #: a spool's reference file: monitor config and reference (monitor.spool)
    SPOOL_PANE = 11  #: one process's pane in a spool: header and WindowSketch bytes (monitor.spool)
    BINARY_PERFORMANCE = 12  #: scores by label of a binary classifier (sketches.performance.BinaryPerformance)
    LABEL_STORE = 15  #: a monitor's label join store (fastdrift.monitor.labels.LabelStore)
    # not a sketch: fastdrift.alerts.AlertEvaluator state (same envelope and validation)
    ALERT_STATE = 16


def _as_view(data: object, what: str) -> memoryview:
    """A flat byte view of ``data``, or InvalidInputError for non-bytes objects.

    A wrong *type* is a programming error, not corrupt state, hence the
    different exception.
    """
    if isinstance(data, (bytes, bytearray)):
        return memoryview(data)
    if isinstance(data, memoryview):
        if not data.c_contiguous:
            raise InvalidInputError(f"{what}: memoryview must be C-contiguous")
        return data.cast("B") if (data.format != "B" or data.ndim != 1) else data
    raise InvalidInputError(
        f"{what}: expected bytes, bytearray or memoryview, got {type(data).__name__}"
    )


def _check_max_size(max_size: int) -> int:
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < MIN_SIZE:
        raise InvalidInputError(f"max_size must be an int >= {MIN_SIZE}, got {max_size!r}")
    return max_size


def _kind_name(value: int) -> str:
    try:
        return f"{Kind(value).name} ({value})"
    except ValueError:
        return str(value)


def encode(
    kind: Union[Kind, int],
    params: BytesLike,
    payload: BytesLike,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
) -> bytes:
    """Wrap ``params`` and ``payload`` in a version-1 envelope.

    Parameters
    ----------
    kind : Kind or int
        The sketch family; must be a :class:`Kind` value.
    params, payload : bytes, bytearray or memoryview
        Blobs laid out by the sketch (usually with :class:`Writer`).
    max_size : int, default 1 GiB
        Refuse to produce an envelope larger than this, so that whatever is
        written can be read back by :func:`decode` with the same cap.

    Returns
    -------
    bytes
        ``26 + len(params) + len(payload)`` bytes, see the module docstring.

    Raises
    ------
    InvalidInputError
        Unknown kind, non-bytes blobs, params longer than 2**32 - 1 bytes or a
        result above ``max_size``.
    """
    if max_size is not DEFAULT_MAX_SIZE:  # the default object needs no check
        max_size = _check_max_size(max_size)
    if type(kind) is not Kind:  # a Kind member needs no checks (the common call)
        if isinstance(kind, bool) or not isinstance(kind, (int, np.integer)):
            raise InvalidInputError(f"kind must be a Kind, got {type(kind).__name__}")
        kind = int(kind)
        try:
            kind = Kind(kind)
        except ValueError:
            raise InvalidInputError(
                f"unknown sketch kind {int(kind)}; known kinds: "
                + ", ".join(f"{k.name}={k.value}" for k in Kind)
            ) from None
    pv = _as_view(params, "params")
    yv = _as_view(payload, "payload")
    if pv.nbytes > _U32_MAX:
        raise InvalidInputError(f"params is {pv.nbytes} bytes; the format allows at most {_U32_MAX}")
    total = MIN_SIZE + pv.nbytes + yv.nbytes
    if total > max_size:
        raise InvalidInputError(
            f"encoded sketch would be {total} bytes, above max_size={max_size}"
        )
    out = bytearray(total)
    _HEADER.pack_into(out, 0, MAGIC, FORMAT_VERSION, int(kind), 0, pv.nbytes, yv.nbytes)
    end_params = HEADER_SIZE + pv.nbytes
    out[HEADER_SIZE:end_params] = pv
    end_payload = end_params + yv.nbytes
    out[end_params:end_payload] = yv
    _TRAILER.pack_into(out, end_payload, zlib.crc32(memoryview(out)[:end_payload]))
    return bytes(out)


def decode(
    data: BytesLike,
    expected_kind: Optional[Union[Kind, int]] = None,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
) -> tuple[Kind, bytes, bytes]:
    """Validate an envelope and return its kind, params and payload.

    Parameters
    ----------
    data : bytes, bytearray or memoryview
        The serialized sketch. It is not modified and not retained.
    expected_kind : Kind or int, optional
        When given, a different stored kind is rejected (so a t-digest blob is
        never parsed as a histogram).
    max_size : int, default 1 GiB
        Inputs larger than this are rejected before any other work.

    Returns
    -------
    kind : Kind
    params : bytes
    payload : bytes
        Owned copies; ``data`` may be reused afterwards.

    Raises
    ------
    CorruptStateError
        Too large, too short, wrong magic, unsupported (including newer)
        version, lengths inconsistent with the size received, checksum
        mismatch, reserved flags set, unknown kind or unexpected kind.
    InvalidInputError
        ``data`` is not bytes-like, or ``expected_kind``/``max_size`` is
        invalid (caller errors, not corrupt state).
    """
    max_size = _check_max_size(max_size)
    if expected_kind is not None:
        try:
            expected_kind = Kind(expected_kind)
        except ValueError:
            raise InvalidInputError(f"expected_kind {expected_kind!r} is not a Kind") from None
    view = _as_view(data, "data")
    size = view.nbytes
    if size > max_size:
        raise CorruptStateError(
            f"serialized sketch is {size} bytes, above the max_size cap of {max_size}"
        )
    # compare whatever prefix exists, so that short foreign data (b"{}") is
    # reported as foreign rather than as a truncated sketch
    head = min(size, len(MAGIC))
    if view[:head] != MAGIC[:head]:
        raise CorruptStateError(
            f"not a fastdrift sketch: starts with {bytes(view[:head])!r}, expected magic {MAGIC!r}"
        )
    if size < MIN_SIZE:
        raise CorruptStateError(
            f"truncated sketch: {size} bytes, an envelope is at least {MIN_SIZE}"
        )
    _, version, kind, flags, params_len, payload_len = _HEADER.unpack_from(view, 0)
    if version > FORMAT_VERSION:
        raise CorruptStateError(
            f"sketch was written in format version {version}, newer than the "
            f"version {FORMAT_VERSION} this fastdrift reads; upgrade fastdrift to decode it"
        )
    if version != FORMAT_VERSION:
        raise CorruptStateError(f"unsupported format version {version}")
    # Python ints cannot overflow, so this sum is exact even for a forged
    # 2**64 - 1 payload length; nothing is sliced until it has been compared.
    declared = MIN_SIZE + params_len + payload_len
    if declared > max_size:
        raise CorruptStateError(
            f"header declares {declared} bytes (params {params_len}, payload "
            f"{payload_len}), above the max_size cap of {max_size}"
        )
    if declared > size:
        raise CorruptStateError(
            f"truncated sketch: header declares {declared} bytes (params "
            f"{params_len}, payload {payload_len}) but only {size} were given"
        )
    if declared < size:
        raise CorruptStateError(
            f"{size - declared} trailing bytes after the {declared}-byte sketch"
        )
    end = HEADER_SIZE + params_len + payload_len
    (stored_crc,) = _TRAILER.unpack_from(view, end)
    actual_crc = zlib.crc32(view[:end])
    if stored_crc != actual_crc:
        raise CorruptStateError(
            f"checksum mismatch: stored CRC-32 0x{stored_crc:08x}, computed "
            f"0x{actual_crc:08x}; the bytes were altered or truncated"
        )
    if flags != 0:
        raise CorruptStateError(f"reserved flags 0x{flags:04x} are set; version {version} defines none")
    try:
        kind = Kind(kind)
    except ValueError:
        raise CorruptStateError(f"unknown sketch kind {kind}") from None
    if expected_kind is not None and kind != expected_kind:
        raise CorruptStateError(
            f"expected a {_kind_name(expected_kind)} sketch, got {_kind_name(kind)}"
        )
    params = bytes(view[HEADER_SIZE : HEADER_SIZE + params_len])
    payload = bytes(view[HEADER_SIZE + params_len : end])
    return kind, params, payload


# dtype name -> little-endian wire dtype. Only these four exist on the wire so
# that every reader can be checked against the writer it mirrors.
_ARRAY_DTYPES = {
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint64": np.dtype("<u8"),
    "float64": np.dtype("<f8"),
}
_S = {name: struct.Struct("<" + code) for name, code in
      {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i64": "q", "f64": "d"}.items()}
_UVARINT_MAX = (1 << 63) - 1
_UVARINT_BYTES = 9  # ceil(63 / 7)
_INT_RANGES = {
    "u8": (0, (1 << 8) - 1),
    "u16": (0, (1 << 16) - 1),
    "u32": (0, (1 << 32) - 1),
    "u64": (0, (1 << 64) - 1),
    "i64": (-(1 << 63), (1 << 63) - 1),
}


class Writer:
    """Append-only builder for params/payload blobs; the mirror of :class:`Reader`.

    Every method returns ``self`` so calls can be chained. Values are checked
    on the way in (range of integers, dtype and dimensionality of arrays,
    encodability of strings), because a value silently wrapped or truncated
    here would only surface as a wrong sketch after a round trip.

    Parameters
    ----------
    limit : int, default 1 GiB
        Raise InvalidInputError once the blob would exceed this many bytes.
    """

    __slots__ = ("_buf", "_limit")

    def __init__(self, limit: int = DEFAULT_MAX_SIZE) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"limit must be a non-negative int, got {limit!r}")
        self._buf = bytearray()
        self._limit = limit

    def __len__(self) -> int:
        return len(self._buf)

    def _append(self, chunk: Union[bytes, bytearray, memoryview]) -> "Writer":
        if len(self._buf) + len(chunk) > self._limit:
            raise InvalidInputError(
                f"blob would exceed its limit of {self._limit} bytes"
            )
        self._buf += chunk
        return self

    def _int(self, name: str, value: int) -> "Writer":
        if type(value) is int:  # the common call: a plain int, only its range to check
            lo, hi = _INT_RANGES[name]
            if lo <= value <= hi:
                return self._append(_S[name].pack(value))
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InvalidInputError(f"{name} value must be an int, got {type(value).__name__}")
        lo, hi = _INT_RANGES[name]
        value = int(value)
        if not lo <= value <= hi:
            raise InvalidInputError(f"{name} value {value} is outside [{lo}, {hi}]")
        return self._append(_S[name].pack(value))

    def u8(self, value: int) -> "Writer":
        """Append an unsigned 8-bit integer."""
        return self._int("u8", value)

    def u16(self, value: int) -> "Writer":
        """Append an unsigned 16-bit integer."""
        return self._int("u16", value)

    def u32(self, value: int) -> "Writer":
        """Append an unsigned 32-bit integer."""
        return self._int("u32", value)

    def u64(self, value: int) -> "Writer":
        """Append an unsigned 64-bit integer."""
        return self._int("u64", value)

    def i64(self, value: int) -> "Writer":
        """Append a signed 64-bit integer."""
        return self._int("i64", value)

    def f64(self, value: float) -> "Writer":
        """Append an IEEE-754 double; NaN and infinities are kept bit for bit."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidInputError(f"f64 value must be a real number, got {type(value).__name__}")
        return self._append(_S["f64"].pack(float(value)))

    def array(self, values: Iterable, dtype: str) -> "Writer":
        """Append a 1-D array as a u64 element count plus little-endian elements.

        Parameters
        ----------
        values : array_like
            1-D. Converted to ``dtype`` only when that is lossless: integers
            (and booleans) within range for integer dtypes, any real number
            for ``float64``.
        dtype : {"int32", "int64", "uint64", "float64"}
        """
        if dtype not in _ARRAY_DTYPES:
            raise InvalidInputError(
                f"array dtype must be one of {sorted(_ARRAY_DTYPES)}, got {dtype!r}"
            )
        wire = _ARRAY_DTYPES[dtype]
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise InvalidInputError(f"array must be 1-D, got shape {arr.shape}")
        if arr.size == 0:
            arr = arr.astype(wire)
        elif arr.dtype == wire:
            pass  # already the wire type: nothing to convert or range-check
        elif wire.kind == "f":
            if arr.dtype.kind not in "biuf":
                raise InvalidInputError(f"cannot store {arr.dtype} as {dtype}")
        else:
            if arr.dtype.kind not in "biu":
                raise InvalidInputError(f"cannot store {arr.dtype} losslessly as {dtype}")
            info = np.iinfo(wire)
            lo, hi = int(arr.min()), int(arr.max())
            if lo < info.min or hi > info.max:
                raise InvalidInputError(
                    f"{dtype} array values must be in [{info.min}, {info.max}], got [{lo}, {hi}]"
                )
        data = np.ascontiguousarray(arr, dtype=wire)
        self.u64(data.size)
        return self._append(data.tobytes())

    def i64_array(self, values: Iterable) -> "Writer":
        """Append an int64 array (see :meth:`array`)."""
        return self.array(values, "int64")

    def u64_array(self, values: Iterable) -> "Writer":
        """Append a uint64 array (see :meth:`array`)."""
        return self.array(values, "uint64")

    def f64_array(self, values: Iterable) -> "Writer":
        """Append a float64 array (see :meth:`array`)."""
        return self.array(values, "float64")

    def uvarint(self, value: int) -> "Writer":
        """Append an unsigned LEB128 integer in [0, 2**63) (1 byte below 128)."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InvalidInputError(f"uvarint value must be an int, got {type(value).__name__}")
        v = int(value)
        if not 0 <= v <= _UVARINT_MAX:
            raise InvalidInputError(f"uvarint values must be in [0, 2**63), got {v}")
        out = bytearray()
        while v >= 0x80:  # one value: plain LEB128 (the array path costs ~20 numpy calls)
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        return self._append(out)

    def uvarint_values(self, values: Iterable) -> "Writer":
        """Append integers in [0, 2**63) as uvarints, without a count (the layout writes it)."""
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise InvalidInputError(f"uvarint values must be 1-D, got shape {arr.shape}")
        if arr.size == 0:
            return self
        if arr.dtype.kind == "f":
            if not (np.isfinite(arr).all() and (arr == np.floor(arr)).all()):
                raise InvalidInputError("uvarint values must be integers")
        elif arr.dtype.kind == "O":
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
                raise InvalidInputError("uvarint values must be integers")
        elif arr.dtype.kind not in "iu":
            raise InvalidInputError(f"cannot store {arr.dtype} as uvarints")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > _UVARINT_MAX:
            raise InvalidInputError(f"uvarint values must be in [0, 2**63), got [{lo}, {hi}]")
        v = arr.astype(np.uint64)
        width = max(1, (hi.bit_length() + 6) // 7)  # bytes of the largest value: the loops stop there
        nbytes = np.ones(v.size, np.int64)
        for k in range(1, width):
            nbytes += v >= np.uint64(1 << (7 * k))
        out = np.zeros(int(nbytes.sum()), np.uint8)
        start = np.cumsum(nbytes) - nbytes
        for k in range(width):
            sel = nbytes > k
            group = ((v[sel] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
            out[start[sel] + k] = group | np.where(nbytes[sel] > k + 1, 0x80, 0).astype(np.uint8)
        return self._append(out.tobytes())

    def f64_values(self, values: Iterable) -> "Writer":
        """Append float64 values (little-endian), without a count (the layout writes it)."""
        arr = np.asarray(values)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "biuf"):
            raise InvalidInputError(f"f64 values must be a 1-D real array, got {arr.dtype} {arr.shape}")
        return self._append(np.ascontiguousarray(arr, dtype="<f8").tobytes())

    def blob(self, value: BytesLike) -> "Writer":
        """Append a u64 length plus raw bytes."""
        view = _as_view(value, "bytes value")
        self.u64(view.nbytes)
        return self._append(view)

    def string(self, value: str) -> "Writer":
        """Append a u64 byte length plus the UTF-8 encoding of ``value``."""
        if not isinstance(value, str):
            raise InvalidInputError(f"str value must be a str, got {type(value).__name__}")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            # lone surrogates cannot be stored as UTF-8 and would not round trip
            raise InvalidInputError(f"string is not encodable as UTF-8: {exc}") from None
        self.u64(len(raw))
        return self._append(raw)

    def json(self, value, **dumps) -> "Writer":
        """Append ``value`` as a JSON :meth:`string` (``dumps``: :func:`json.dumps` options)."""
        return self.string(json.dumps(value, **dumps))

    def string_list(self, values: Iterable[str]) -> "Writer":
        """Append a u64 count plus that many strings (see :meth:`string`)."""
        values = list(values)
        self.u64(len(values))
        for v in values:
            self.string(v)
        return self

    def getvalue(self) -> bytes:
        """The blob built so far."""
        return bytes(self._buf)


class Reader:
    """Bounds-checked cursor over a params/payload blob; mirrors :class:`Writer`.

    Every read first checks that enough bytes remain, and variable-size
    fields check their declared count against the bytes remaining *before*
    allocating, so corrupt input raises :class:`CorruptStateError` instead of
    reading out of range or allocating memory sized by an attacker.

    Parameters
    ----------
    buf : bytes, bytearray or memoryview
        The blob. Not modified; arrays and bytes returned are owned copies.
    what : str
        Names the blob in error messages (e.g. ``"histogram params"``).
    """

    __slots__ = ("_view", "_pos", "_what")

    def __init__(self, buf: BytesLike, what: str = "sketch state") -> None:
        self._view = _as_view(buf, what)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return self._view.nbytes - self._pos

    def _fail(self, message: str) -> CorruptStateError:
        return CorruptStateError(f"{self._what}: {message}")

    def _take(self, n: int, field: str) -> memoryview:
        if n > self.remaining:
            raise self._fail(
                f"truncated reading {field} at offset {self._pos}: needs {n} bytes, "
                f"{self.remaining} left"
            )
        start = self._pos
        self._pos += n
        return self._view[start : self._pos]

    def _scalar(self, name: str, field: Optional[str]):
        s = _S[name]
        return s.unpack(self._take(s.size, field or name))[0]

    def u8(self, field: Optional[str] = None) -> int:
        """Read an unsigned 8-bit integer; ``field`` names it in errors."""
        return self._scalar("u8", field)

    def u16(self, field: Optional[str] = None) -> int:
        """Read an unsigned 16-bit integer."""
        return self._scalar("u16", field)

    def u32(self, field: Optional[str] = None) -> int:
        """Read an unsigned 32-bit integer."""
        return self._scalar("u32", field)

    def u64(self, field: Optional[str] = None) -> int:
        """Read an unsigned 64-bit integer."""
        return self._scalar("u64", field)

    def i64(self, field: Optional[str] = None) -> int:
        """Read a signed 64-bit integer."""
        return self._scalar("i64", field)

    def f64(self, field: Optional[str] = None) -> float:
        """Read an IEEE-754 double."""
        return self._scalar("f64", field)

    def count(self, field: Optional[str] = None, min_item_size: int = 1) -> int:
        """Read a u64 element count for a sequence the caller will loop over.

        The count is rejected when even ``min_item_size`` bytes per element
        could not fit in what remains, so a corrupt count cannot drive a long
        loop or a large pre-allocation.
        """
        field = field or "count"
        n = self.u64(field)
        if n * max(min_item_size, 0) > self.remaining:
            raise self._fail(
                f"{field} {n} needs at least {n * min_item_size} more bytes, "
                f"only {self.remaining} left"
            )
        return n

    def array(self, dtype: str, field: Optional[str] = None) -> np.ndarray:
        """Read an array written by :meth:`Writer.array` as an owned, writable copy.

        Returns
        -------
        numpy.ndarray
            1-D, native byte order, dtype ``dtype``.
        """
        if dtype not in _ARRAY_DTYPES:
            raise InvalidInputError(
                f"array dtype must be one of {sorted(_ARRAY_DTYPES)}, got {dtype!r}"
            )
        wire = _ARRAY_DTYPES[dtype]
        field = field or f"{dtype} array"
        n = self.count(f"{field} length", wire.itemsize)
        raw = self._take(n * wire.itemsize, field)
        # np.array(..., copy=True) detaches the result from the caller's
        # buffer and converts to native byte order in one step.
        return np.array(np.frombuffer(raw, dtype=wire), dtype=wire.newbyteorder("="), copy=True)

    def i64_array(self, field: Optional[str] = None) -> np.ndarray:
        """Read an int64 array."""
        return self.array("int64", field)

    def u64_array(self, field: Optional[str] = None) -> np.ndarray:
        """Read a uint64 array."""
        return self.array("uint64", field)

    def f64_array(self, field: Optional[str] = None) -> np.ndarray:
        """Read a float64 array."""
        return self.array("float64", field)

    def uvarint(self, field: Optional[str] = None) -> int:
        """Read one uvarint (see :meth:`uvarint_values`)."""
        return int(self.uvarint_values(1, field)[0])

    def uvarint_values(self, n: int, field: Optional[str] = None) -> np.ndarray:
        """Read ``n`` uvarints as a uint64 array; the caller has checked ``n`` against
        :attr:`remaining` (each takes at least a byte).  Rejects encodings longer than
        9 bytes and non-canonical ones (a redundant trailing zero group), so that
        every accepted blob re-encodes to the same bytes."""
        field = field or "uvarints"
        if n < 0 or n > self.remaining:
            raise self._fail(f"{n} {field} need at least {n} bytes, only {self.remaining} left")
        if n == 0:
            return np.zeros(0, np.uint64)
        avail = np.frombuffer(self._view[self._pos:self._pos + min(self.remaining, n * _UVARINT_BYTES)],
                              dtype=np.uint8)
        ends = np.flatnonzero(avail < 0x80)[:n]
        if ends.size < n:
            raise self._fail(f"truncated reading {field} at offset {self._pos}")
        start = np.concatenate([[0], ends[:-1] + 1])
        length = ends - start + 1
        if length.max() > _UVARINT_BYTES:
            raise self._fail(f"{field} at offset {self._pos} has a uvarint longer than {_UVARINT_BYTES} bytes")
        if ((length > 1) & (avail[ends] == 0)).any():
            raise self._fail(f"{field} at offset {self._pos} has a non-canonical uvarint")
        out = np.zeros(n, np.uint64)
        for k in range(int(length.max())):
            sel = length > k
            out[sel] |= (avail[start[sel] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        self._pos += int(ends[-1]) + 1
        return out

    def f64_values(self, n: int, field: Optional[str] = None) -> np.ndarray:
        """Read ``n`` float64 values written by :meth:`Writer.f64_values` (an owned copy)."""
        field = field or "f64 values"
        if n < 0 or 8 * n > self.remaining:
            raise self._fail(f"truncated reading {n} {field} at offset {self._pos}: "
                             f"needs {8 * n} bytes, {self.remaining} left")
        raw = self._take(8 * n, field)
        return np.array(np.frombuffer(raw, dtype="<f8"), dtype=np.float64, copy=True)

    def blob(self, field: Optional[str] = None) -> bytes:
        """Read length-prefixed bytes (an owned copy)."""
        field = field or "bytes"
        n = self.count(f"{field} length", 1)
        return bytes(self._take(n, field))

    def string(self, field: Optional[str] = None) -> str:
        """Read a length-prefixed UTF-8 string."""
        field = field or "string"
        n = self.count(f"{field} length", 1)
        raw = self._take(n, field)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise self._fail(f"{field} is not valid UTF-8: {exc.reason} at byte {exc.start}") from None

    def json(self, field: Optional[str] = None):
        """Read a :meth:`Writer.json` string and parse it (never evaluated): the caller checks its shape."""
        field = field or "JSON"
        try:
            return json.loads(self.string(field))
        except (ValueError, RecursionError) as exc:  # RecursionError: a deep nest of brackets
            raise self._fail(f"{field} is not valid JSON ({exc})") from None

    def string_list(self, field: Optional[str] = None) -> list:
        """Read a list written by :meth:`Writer.string_list`."""
        field = field or "strings"
        # each string carries at least its own 8-byte length prefix
        n = self.count(f"{field} count", 8)
        return [self.string(f"{field}[{i}]") for i in range(n)]

    def done(self) -> None:
        """Raise CorruptStateError unless every byte has been read."""
        if self.remaining:
            raise self._fail(
                f"{self.remaining} unexpected trailing bytes at offset {self._pos}"
            )
