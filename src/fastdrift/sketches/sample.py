"""A bounded, uniform, redacted sample of rows: the evidence an alert carries.

Every row gets a 64-bit key, SplitMix64 of (seed, the row's sequence number), so
the sample depends only on which rows were seen, never on batch sizes, threads or
merge order.  A row whose key is below ``rate * 2**64`` is eligible and the
``max_rows`` smallest keys are kept (bottom-k), so two samples merge exactly by
keeping the smallest keys of both.  Rows are redacted (``drop``, ``hash``) before
they are kept: no unredacted value is stored or serialized.

Byte form: the common envelope, kind ``ROW_SAMPLE``; params = one JSON object of
the settings, payload = the rows as JSON ``[[key as a decimal string, row], ...]``
(:func:`rows_to_json`, the same document the monitor's windows and profile files
hold).  The decoder checks the JSON's shape and never evaluates it.
"""
from __future__ import annotations

import datetime
import decimal
import hashlib
import json
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

from ..errors import CorruptStateError, IncompatibleSketchError
from .. import codec
from .base import Sketch

__all__ = ["RowSample", "row_keys", "stream_of", "redact", "rows_to_json", "rows_from_json", "jsonable"]

_U64 = np.uint64
Row = Tuple[int, dict]


def row_keys(seed: int, start: int, n: int) -> np.ndarray:
    """SplitMix64 of (seed, row sequence numbers start..start+n-1): a uniform 64-bit key per row."""
    with np.errstate(over="ignore"):
        z = (np.arange(start, start + n, dtype=_U64) + _U64(seed & 0xFFFFFFFFFFFFFFFF)) \
            * _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def stream_of(name: str) -> int:
    """A 64-bit stream offset for the key sequence of ``name`` (a process of a fleet): the first 8
    bytes of its SHA-256.  Two streams' keys are SplitMix64 of disjoint inputs (a bijection, so
    distinct keys) unless their offsets lie within the rows counted of each other: probability
    about ``rows / 2**63`` per pair of processes."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def redact(row: dict, drop, hash_cols, salt: str) -> dict:
    """Drop and hash PII columns of one row (before it is stored anywhere)."""
    out = {}
    for k, v in row.items():
        if k in drop:
            continue
        if k in hash_cols and v is not None:
            v = hashlib.sha256((salt + "\x00" + str(v)).encode("utf-8")).hexdigest()[:16]
        out[k] = v
    return out


def jsonable(v):
    """Row values JSON cannot hold as such (dates, decimals, bytes) become strings."""
    if isinstance(v, (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal)):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    raise TypeError(f"evidence value of type {type(v).__name__} is not serializable")


def rows_to_json(rows: Iterable[Row]) -> list:
    """``[[key as a decimal string, row], ...]``: u64 keys survive JSON readers that use doubles."""
    return [[str(k), row] for k, row in rows]


def rows_from_json(doc, what: str) -> List[Row]:
    """The inverse of :func:`rows_to_json`; CorruptStateError naming ``what`` on any other shape."""
    if not (isinstance(doc, list) and all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and 0 < len(e[0]) <= 20
            and e[0].isascii() and e[0].isdigit() and int(e[0]) < 2 ** 64 and isinstance(e[1], dict) for e in doc)):
        raise CorruptStateError(f"{what}: evidence must be a list of [key, row] pairs")
    return [(int(k), row) for k, row in doc]


class RowSample(Sketch):
    """Bottom-k sample of redacted rows by :func:`row_keys`.

    Parameters
    ----------
    columns : the columns a kept row holds (those present in a batch)
    rate : a row is eligible when its key < rate * 2**64 (1 = every row)
    max_rows : k, the number of rows kept
    seed : of the row keys
    drop, hash : columns dropped / replaced by a salted SHA-256 prefix before a row is kept
    salt : of the hash

    ``rows`` is the sample: ``(key, redacted row)`` pairs, smallest key first.
    """

    KIND = codec.Kind.ROW_SAMPLE

    def __init__(self, columns: Sequence[str] = (), *, rate: float = 0.01, max_rows: int = 100, seed: int = 0,
                 drop: Iterable[str] = (), hash: Iterable[str] = (), salt: str = "", name: Optional[str] = None):
        super().__init__(name)
        self.columns = list(columns)
        self.rate, self.max_rows, self.seed, self.salt = float(rate), int(max_rows), int(seed), str(salt)
        self.drop, self.hash = frozenset(drop), frozenset(hash)
        # keys below this are eligible; at rate 1 every key is (2**64 - 1 has no exact double)
        self._all = self.rate >= 1.0
        self._threshold = _U64(int(self.rate * 2.0 ** 64)) if 0 < self.rate < 1 else _U64(0)
        self.rows: List[Row] = []  # replaced, never changed in place (rows_json caches by identity)
        self._json: Optional[Tuple[List[Row], str]] = None
        self._key = (tuple(self.columns), self.rate, self.max_rows, self.seed, self.drop, self.hash, self.salt)

    @property
    def count(self) -> int:
        """Rows kept (at most ``max_rows``)."""
        return len(self.rows)

    @property
    def enabled(self) -> bool:
        """False when nothing can be kept (``rate`` 0 or ``max_rows`` 0): callers skip the keys."""
        return self.max_rows > 0 and self.rate > 0

    def keys(self, start: int, n: int, stream: int = 0) -> np.ndarray:
        """The keys of rows ``start .. start + n - 1`` of this sample's sequence; ``stream`` (see
        :func:`stream_of`) gives each process of a fleet its own sequence of the same seed."""
        return row_keys(self.seed + stream, start, n)

    def update(self, batch: pa.RecordBatch, keys: np.ndarray, columns: Optional[Sequence[str]] = None):
        """Offer the rows of ``batch`` with their ``keys``; ``columns`` (default :attr:`columns`)
        are the columns kept, those present in the batch.  Returns ``self``."""
        if not self.enabled:
            return self
        k = self.max_rows
        cand = np.arange(len(keys)) if self._all else np.flatnonzero(keys < self._threshold)
        if len(self.rows) >= k and cand.size:  # only keys below the current k-th smallest can enter
            cand = cand[keys[cand] < _U64(self.rows[-1][0])]
        if not cand.size:
            return self
        if cand.size > k:
            cand = cand[np.argsort(keys[cand], kind="stable")[:k]]
        names = batch.schema.names
        cols = [c for c in (self.columns if columns is None else columns) if c in names]
        rows = batch.select(cols).take(pa.array(cand)).to_pylist()
        self.add([(int(keys[i]), redact(r, self.drop, self.hash, self.salt)) for i, r in zip(cand, rows)])
        return self

    def add(self, rows: Iterable[Row]) -> None:
        """Add ``(key, row)`` pairs that are already redacted."""
        rows = list(rows)
        if rows:
            with self._mutating():
                self._keep(rows)

    def rows_json(self) -> str:
        """:attr:`rows` as JSON (:func:`rows_to_json`), encoded again only when the kept rows
        changed: once a sample is full a new row rarely enters, and a pane published every
        second would otherwise spend most of its encoding time here."""
        with self._reading():
            return self._rows_json()

    def _rows_json(self) -> str:
        rows, cached = self.rows, self._json
        if cached is None or cached[0] is not rows:
            cached = self._json = (rows, json.dumps(rows_to_json(rows), default=jsonable))
        return cached[1]

    def _keep(self, rows: List[Row]) -> None:
        # a key names one row of the sequence: the same key twice is the same row (a sample merged
        # with a copy of itself, or with an overlapping one) and is kept once
        merged = dict(self.rows)
        for k, row in rows:
            merged.setdefault(k, row)
        self.rows = sorted(merged.items(), key=lambda kr: kr[0])[: self.max_rows]

    # -- Sketch hooks --------------------------------------------------------------
    def _settings(self) -> dict:
        return {"columns": self.columns, "rate": self.rate, "max_rows": self.max_rows, "seed": self.seed,
                "drop": sorted(self.drop), "hash": sorted(self.hash), "salt": self.salt}

    def _merge(self, other: "RowSample") -> None:
        if other._key != self._key:
            raise IncompatibleSketchError(f"cannot merge row samples of other settings: {other._settings()} "
                                          f"into {self._settings()}")
        if other.rows:  # windows merge many panes, most without evidence
            self._keep(other.rows)

    def _params(self) -> bytes:
        return codec.Writer().json(self._settings(), sort_keys=True).getvalue()

    def _payload(self) -> bytes:
        return codec.Writer().string(self._rows_json()).getvalue()

    def _copy(self) -> "RowSample":
        s = RowSample(self.columns, rate=self.rate, max_rows=self.max_rows, seed=self.seed, drop=self.drop,
                      hash=self.hash, salt=self.salt, name=self.name)
        s.rows = list(self.rows)
        return s

    @classmethod
    def _decode(cls, params: bytes, payload: bytes) -> "RowSample":
        r = codec.Reader(params, "row sample parameters")
        s = r.json("settings")
        r.done()
        keys = {"columns", "rate", "max_rows", "seed", "drop", "hash", "salt"}
        if not isinstance(s, dict) or set(s) != keys or not all(
                isinstance(s[k], list) and all(isinstance(c, str) for c in s[k]) for k in ("columns", "drop", "hash")) \
                or not isinstance(s["rate"], (int, float)) or not 0 <= s["rate"] <= 1 \
                or not isinstance(s["max_rows"], int) or not 0 <= s["max_rows"] <= 1 << 24 \
                or not isinstance(s["seed"], int) or not isinstance(s["salt"], str):
            raise CorruptStateError("row sample parameters: not a row sample's settings")
        out = cls(s["columns"], rate=s["rate"], max_rows=s["max_rows"], seed=s["seed"], drop=s["drop"],
                  hash=s["hash"], salt=s["salt"])
        r = codec.Reader(payload, "row sample")
        rows = rows_from_json(r.json("rows"), "row sample")
        r.done()
        if len(rows) > out.max_rows or any(a[0] >= b[0] for a, b in zip(rows, rows[1:])):
            raise CorruptStateError("row sample: more rows than max_rows, or keys not strictly increasing")
        out.rows = rows
        return out
