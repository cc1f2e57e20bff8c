"""Training-serving skew: the features logged at serving joined with the offline features of the same keys.

:func:`skew` reads both sides through :mod:`fastdrift.dataset` (Parquet, Arrow IPC, CSV; files or
directories) with the scan's thread pool, keeps only the key and the compared columns, and joins
them on the key.  Per feature it reports the mismatch rate, the quantiles of the differences
(numeric) or the most frequent mismatching value pairs (other types), and the worst examples,
redacted; per key, the keys present on one side only and the duplicated keys.

Matching rules
--------------
- Numeric (integer, floating, decimal on both sides; compared as float64): equal when both are
  null, both NaN, the same infinity, or both finite with ``|a - b| <= atol + rtol * |b|``
  (``a`` serving, ``b`` offline; the defaults are :func:`numpy.isclose`'s, ``rtol=1e-5``,
  ``atol=1e-8``).  A null against a value, NaN against a number, an infinity against anything
  else is a mismatch.
- Any other type (strings, categories, booleans, dates, timestamps): equal when both are null
  or the values are equal.  Dictionary columns are compared by value.
- Keys: a null key is counted (``null_keys``) and not joined.  A key present more than once on a
  side is a *duplicate*: counted (keys and rows, per side) and never compared, since which of its
  rows was served is unknown.  Compared keys are those present exactly once on each side.

Memory
------
Both sides are partitioned by a 64-bit hash of the key into buckets, and the buckets are joined
``workers`` at a time, merged in bucket order (so the report does not depend on scheduling).
With both sides' selected columns estimated within ``memory_budget / 3`` (Arrow bytes; a join
works in about three times its input), the buckets stay in memory and hold about
:data:`MEMORY_BUCKET` bytes each (a bucket's key dictionary then stays in the CPU caches).
Otherwise they are spill files (Arrow IPC streams in a temporary directory) of at most
``memory_budget / (5 * workers)`` bytes of Arrow data each; a bucket found larger is partitioned
again with another hash seed, up to three times (only the rows of one key cannot be split).  Per
feature the state between buckets is bounded: at most :data:`EXACT_DIFFS` differences held for
exact quantiles (then a t-digest), :data:`MAX_PAIRS` value pairs, ``examples`` examples.
"""
from __future__ import annotations

import concurrent.futures as cf
import heapq
import math
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from .errors import InvalidInputError, SchemaError
from .records import frozen_mapping, to_jsonable
from .sketches.sample import redact
from .sketches.tdigest import TDigest

__all__ = ["skew", "SkewResult", "FeatureSkew", "DEFAULT_RTOL", "DEFAULT_ATOL", "QUANTILES", "EXACT_DIFFS",
           "MAX_PAIRS"]

DEFAULT_RTOL, DEFAULT_ATOL = 1e-5, 1e-8
#: Quantiles of the differences reported per numeric feature.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Differences held per numeric feature for exact quantiles; past this a t-digest (compression 200).
EXACT_DIFFS = 100_000
#: Distinct mismatching value pairs counted per non-numeric feature; past this the least frequent are
#: let go and the counts are lower bounds (``pairs_exact`` false).
MAX_PAIRS = 10_000
_COMPRESSION = 200
_MAX_BUCKETS = 256  # open spill files per side at once; larger buckets are partitioned again
#: Bucket bytes (both sides) of a join in memory: a bucket's key dictionary stays in the CPU caches
#: (at 1M rows about half the CPU time of one dictionary over all keys, bench/bench_skew.py).
MEMORY_BUCKET = 8 << 20
_MAX_DEPTH = 3
_HASH_ROWS = 16_384  # string keys hashed per slice of this many


@dataclass(frozen=True)
class FeatureSkew:
    """One feature's skew over the compared keys.

    ``kind`` is ``"numeric"`` (quantiles of serving - offline over the pairs where both are finite:
    ``diff_quantiles``, exact when ``diff_exact``) or ``"categorical"`` (``top_pairs``: the most
    frequent mismatching ``{"serving", "offline", "count"}``).  ``examples``: the worst mismatches
    (numeric: null / non-finite first, then the largest ``|a - b|``; ties and non-numeric: smallest
    key first), ``{"key", "serving", "offline"}``, redacted.
    """

    column: str
    kind: str
    serving_type: str
    offline_type: str
    compared: int
    mismatches: int
    null_mismatches: int  # one side null, the other not
    diff_count: int = 0
    diff_min: float = math.nan
    diff_max: float = math.nan
    diff_quantiles: Mapping[str, float] = field(default_factory=frozen_mapping)
    diff_exact: bool = True
    top_pairs: Tuple[Mapping[str, Any], ...] = ()
    pairs_exact: bool = True
    examples: Tuple[Mapping[str, Any], ...] = ()

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.compared if self.compared else math.nan


@dataclass(frozen=True)
class SkewResult:
    """What :func:`skew` found.  ``exit_status``: 0, or 2 when a threshold was crossed (``failures``)."""

    serving: str
    offline: str
    key: str
    rows_serving: int
    rows_offline: int
    null_keys_serving: int
    null_keys_offline: int
    keys_serving: int          # distinct non-null keys
    keys_offline: int
    compared: int              # keys present exactly once on each side
    serving_only_keys: int
    offline_only_keys: int
    serving_only_rows: int
    offline_only_rows: int
    duplicate_keys_serving: int   # keys on more than one row of that side
    duplicate_keys_offline: int
    duplicate_rows_serving: int   # the rows of those keys
    duplicate_rows_offline: int
    features: Tuple[FeatureSkew, ...]
    skipped: Mapping[str, str]    # compared column -> why it was not compared
    serving_only_columns: Tuple[str, ...]
    offline_only_columns: Tuple[str, ...]
    rtol: float
    atol: float
    max_mismatch_rate: float
    max_unmatched_rate: float
    failures: Tuple[str, ...]
    buckets: int                  # 1: joined in memory
    max_bucket_bytes: int         # Arrow bytes of the largest bucket joined (both sides)
    memory_budget: int

    @property
    def exit_status(self) -> int:
        return 2 if self.failures else 0

    @property
    def serving_only_rate(self) -> float:
        return self.serving_only_keys / self.keys_serving if self.keys_serving else 0.0

    @property
    def offline_only_rate(self) -> float:
        return self.offline_only_keys / self.keys_offline if self.keys_offline else 0.0

    def to_json(self) -> dict:
        """Plain JSON-ready values (:func:`fastdrift.records.to_jsonable`; NaN as ``"NaN"``)."""
        out = to_jsonable(self)
        out["exit_status"] = self.exit_status
        out["serving_only_rate"] = self.serving_only_rate
        out["offline_only_rate"] = self.offline_only_rate
        for f, d in zip(self.features, out["features"]):
            d["mismatch_rate"] = to_jsonable(f.mismatch_rate)
        return out

    def table(self) -> str:
        """A plain-text report for a terminal."""
        lines = [f"skew: {self.serving} (serving) vs {self.offline} (offline) on key {self.key!r}",
                 f"rows: serving {self.rows_serving:,}, offline {self.rows_offline:,}; compared keys "
                 f"{self.compared:,}",
                 f"keys on one side only: serving {self.serving_only_keys:,} ({self.serving_only_rate:.2%}), "
                 f"offline {self.offline_only_keys:,} ({self.offline_only_rate:.2%})",
                 f"duplicate keys (not compared): serving {self.duplicate_keys_serving:,} "
                 f"({self.duplicate_rows_serving:,} rows), offline {self.duplicate_keys_offline:,} "
                 f"({self.duplicate_rows_offline:,} rows); null keys: serving {self.null_keys_serving:,}, "
                 f"offline {self.null_keys_offline:,}",
                 f"tolerance: |serving - offline| <= {self.atol:g} + {self.rtol:g} * |offline|", ""]
        head = ("feature", "kind", "mismatch", "rate", "null vs value", "diff p01", "p50", "p99", "max |diff|")
        rows = [head]
        for f in sorted(self.features, key=lambda f: (-(f.mismatch_rate if f.compared else -1), f.column)):
            q = f.diff_quantiles
            big = max(abs(f.diff_min), abs(f.diff_max)) if f.diff_count else math.nan
            rows.append((f.column, f.kind, f"{f.mismatches:,}", _pct(f.mismatch_rate), f"{f.null_mismatches:,}",
                         *(_num(q.get(k, math.nan)) for k in ("p01", "p50", "p99")), _num(big)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines += ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                  for r in rows]
        for f in self.features:
            if not f.mismatches:
                continue
            lines += ["", f"{f.column}: worst mismatches (key: serving | offline)"]
            lines += [f"  {e.get('key', '<dropped>')!s}: {e.get('serving', '<dropped>')!r} | "
                      f"{e.get('offline', '<dropped>')!r}" for e in f.examples]
            if f.top_pairs:
                lines.append(f"{f.column}: most frequent mismatching pairs (serving -> offline: rows)"
                             + ("" if f.pairs_exact else ", counts are lower bounds"))
                lines += [f"  {p['serving']!r} -> {p['offline']!r}: {p['count']:,}" for p in f.top_pairs]
        if self.skipped:
            lines += ["", "not compared: " + "; ".join(f"{c}: {why}" for c, why in self.skipped.items())]
        if self.serving_only_columns or self.offline_only_columns:
            lines += ["", f"columns on one side only: serving {list(self.serving_only_columns)}, "
                          f"offline {list(self.offline_only_columns)}"]
        lines += ["", "FAIL: " + "; ".join(self.failures) if self.failures else "OK: no skew beyond the thresholds"]
        return "\n".join(lines)


def _pct(x: float) -> str:
    return "-" if x != x else f"{x:.3%}"


def _num(x: float) -> str:
    return "-" if x != x else f"{x:.4g}"


# -- key hashing (spill partitions) -----------------------------------------------------------------

def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer (uint64 in, uint64 out; wraps)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


_P = np.uint64(0x100000001B3)  # odd: invertible modulo 2**64
_P_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))


def _key_hash(arr: pa.Array, seed: int) -> np.ndarray:
    """A 64-bit hash per (non-null) key that depends on the value only, never on the batch.

    Integers (and dates, timestamps, as integers): SplitMix64 of the value.  Strings and binaries:
    the polynomial ``sum(byte[j] * P**j)`` modulo 2**64 over the value's bytes (prefix sums of the
    batch's data buffer, shifted to each value's start with ``P``'s inverse), mixed with the length.
    """
    s = np.uint64(seed * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF)
    t = arr.type
    if pat.is_date(t) or pat.is_timestamp(t):
        arr, t = arr.view(pa.int64() if t.bit_width == 64 else pa.int32()), pa.int64()
    if pat.is_integer(t):
        v = arr.cast(pa.int64()).to_numpy(zero_copy_only=False).view(np.uint64)
        with np.errstate(over="ignore"):
            return _mix(v + s)
    if len(arr) > _HASH_ROWS:  # the per-byte temporaries are 40 bytes per key byte: keep them small
        return np.concatenate([_key_hash(arr.slice(i, _HASH_ROWS), seed) for i in range(0, len(arr), _HASH_ROWS)])
    off_t = np.int64 if (pat.is_large_string(t) or pat.is_large_binary(t)) else np.int32
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_t)[arr.offset: arr.offset + len(arr) + 1].astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8)[lo:hi] if bufs[2] is not None and hi > lo \
        else np.zeros(0, np.uint8)
    n = data.size
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(n, _P, dtype=np.uint64)) if n else np.zeros(0, np.uint64)
        inv = np.cumprod(np.full(n + 1, _P_INV, dtype=np.uint64)) if n else np.ones(1, np.uint64)
        inv = np.concatenate([np.ones(1, np.uint64), inv[:-1]])  # inv[j] = P**-j
        prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum(data.astype(np.uint64) * powers)])
        start, end = offsets[:-1] - lo, offsets[1:] - lo
        h = (prefix[end] - prefix[start]) * inv[start]
        return _mix(h ^ _mix((end - start).astype(np.uint64) + s))


# -- the per-bucket join --------------------------------------------------------------------------

class _Acc:
    """The state of one feature between buckets (bounded, see the module docstring)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.compared = self.mismatches = self.null_mismatches = 0
        self.diffs: List[np.ndarray] = []
        self.n_diffs = 0
        self.digest: Optional[TDigest] = None
        self.dmin, self.dmax = math.inf, -math.inf
        self.pairs: Dict[Tuple[Any, Any], int] = {}
        self.pairs_exact = True
        self.examples: List[Tuple[float, Any, Any, Any]] = []  # (-score, key, serving, offline)

    def add_diffs(self, d: np.ndarray) -> None:
        if not d.size:
            return
        self.dmin, self.dmax = min(self.dmin, float(d.min())), max(self.dmax, float(d.max()))
        self.n_diffs += d.size
        if self.digest is None:
            self.diffs.append(d)
            if self.n_diffs <= EXACT_DIFFS:
                return
            self.digest = TDigest(_COMPRESSION)
            d, self.diffs = np.concatenate(self.diffs), []
        self.digest.update(d)

    def merge(self, o: "_Acc", n_examples: int) -> None:
        self.compared += o.compared
        self.mismatches += o.mismatches
        self.null_mismatches += o.null_mismatches
        if o.digest is None:
            for d in o.diffs:
                self.add_diffs(d)
        else:  # o's differences are all in its digest
            if self.digest is None:
                self.digest = TDigest(_COMPRESSION)
                if self.diffs:
                    self.digest.update(np.concatenate(self.diffs))
                    self.diffs = []
            self.digest.merge(o.digest)
            self.n_diffs += o.n_diffs
            self.dmin, self.dmax = min(self.dmin, o.dmin), max(self.dmax, o.dmax)
        for k, c in o.pairs.items():
            self.pairs[k] = self.pairs.get(k, 0) + c
        self.pairs_exact = self.pairs_exact and o.pairs_exact
        if len(self.pairs) > MAX_PAIRS:
            self.pairs = dict(heapq.nlargest(MAX_PAIRS, self.pairs.items(), key=lambda kv: kv[1]))
            self.pairs_exact = False
        self.examples = heapq.nsmallest(n_examples, self.examples + o.examples, key=lambda e: (e[0], e[1]))


@dataclass
class _Part:
    """What one bucket (or the whole data) contributes; merged in bucket order."""

    keys_serving: int = 0
    keys_offline: int = 0
    compared: int = 0
    serving_only_keys: int = 0
    offline_only_keys: int = 0
    serving_only_rows: int = 0
    offline_only_rows: int = 0
    duplicate_keys_serving: int = 0
    duplicate_keys_offline: int = 0
    duplicate_rows_serving: int = 0
    duplicate_rows_offline: int = 0
    bytes: int = 0
    accs: Dict[str, _Acc] = field(default_factory=dict)

    def merge(self, o: "_Part", n_examples: int) -> None:
        for name in ("keys_serving", "keys_offline", "compared", "serving_only_keys", "offline_only_keys",
                     "serving_only_rows", "offline_only_rows", "duplicate_keys_serving",
                     "duplicate_keys_offline", "duplicate_rows_serving", "duplicate_rows_offline"):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        self.bytes = max(self.bytes, o.bytes)
        for c, a in o.accs.items():
            self.accs[c].merge(a, n_examples)


def _numeric_mismatch(a: pa.Array, b: pa.Array, rtol: float, atol: float):
    """(mismatch mask, one-side-null mask or None, finite differences a - b, score) of aligned arrays.

    ``score(rows)``: ``|a - b|`` of those rows, inf where a side is null or not finite (asked for the
    mismatches only)."""
    av, bv = (pc.fill_null(x.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False) for x in (a, b))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = av - bv
        fin = np.isfinite(diff)  # both finite (but for an overflow, which compares as the infinity it is)
        adiff = np.abs(diff)
        mismatch = ~(adiff <= atol + rtol * np.abs(bv))
        odd = np.flatnonzero(~fin)  # NaN, infinities: equal only when the same
        if odd.size:
            x, y = av[odd], bv[odd]
            mismatch[odd] = ~((x == y) | (np.isnan(x) & np.isnan(y)))
    one_null = None
    if a.null_count or b.null_count:
        na = a.is_null().to_numpy(zero_copy_only=False)
        nb = b.is_null().to_numpy(zero_copy_only=False)
        one_null = na ^ nb
        mismatch = np.where(na | nb, one_null, mismatch)
        fin &= ~(na | nb)
    d = diff[fin]

    def score(rows: np.ndarray) -> np.ndarray:
        return np.where(fin[rows], adiff[rows], np.inf)
    return mismatch, one_null, d, score


def _values_mismatch(a: pa.Array, b: pa.Array):
    ne = pc.fill_null(pc.not_equal(a, b), False).to_numpy(zero_copy_only=False)
    if not (a.null_count or b.null_count):
        return ne, None
    na = a.is_null().to_numpy(zero_copy_only=False)
    nb = b.is_null().to_numpy(zero_copy_only=False)
    one_null = na ^ nb
    return ne | one_null, one_null


def _join_bucket(s: pa.Table, o: pa.Table, key: str, plan: Dict[str, Tuple[str, Optional[pa.DataType]]],
                 rtol: float, atol: float, n_examples: int, workers: int = 1) -> _Part:
    """Join one bucket (or everything): the keys by a dictionary over both sides' keys, then the
    features, ``workers`` at a time."""
    part = _Part(bytes=s.nbytes + o.nbytes, accs={c: _Acc(k) for c, (k, _) in plan.items()})
    ns, no = s.num_rows, o.num_rows
    if ns + no == 0:
        return part
    keys = pa.chunked_array(s[key].chunks + o[key].chunks, type=s.schema.field(key).type).combine_chunks()
    enc = pc.dictionary_encode(keys)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    u = len(enc.dictionary)
    cs = np.bincount(idx[:ns], minlength=u)
    co = np.bincount(idx[ns:], minlength=u)
    in_s, in_o = cs > 0, co > 0
    part.keys_serving, part.keys_offline = int(in_s.sum()), int(in_o.sum())
    s_only, o_only = in_s & ~in_o, in_o & ~in_s
    part.serving_only_keys, part.offline_only_keys = int(s_only.sum()), int(o_only.sum())
    part.serving_only_rows, part.offline_only_rows = int(cs[s_only].sum()), int(co[o_only].sum())
    ds_, do_ = cs > 1, co > 1
    part.duplicate_keys_serving, part.duplicate_keys_offline = int(ds_.sum()), int(do_.sum())
    part.duplicate_rows_serving, part.duplicate_rows_offline = int(cs[ds_].sum()), int(co[do_].sum())
    codes = np.flatnonzero((cs == 1) & (co == 1))
    part.compared = int(codes.size)
    if not codes.size or not plan:
        return part
    pos_s = np.empty(u, np.int64)
    pos_s[idx[:ns]] = np.arange(ns)
    pos_o = np.empty(u, np.int64)
    pos_o[idx[ns:]] = np.arange(no)
    rs, ro = pa.array(pos_s[codes]), pa.array(pos_o[codes])
    keys_m = enc.dictionary.take(pa.array(codes))
    def feature(c: str) -> None:
        kind, cast = plan[c]
        acc = part.accs[c]
        a = s[c].take(rs).combine_chunks()
        b = o[c].take(ro).combine_chunks()
        if pat.is_dictionary(a.type):
            a = a.dictionary_decode()
        if pat.is_dictionary(b.type):
            b = b.dictionary_decode()
        if cast is not None:
            a, b = a.cast(cast), b.cast(cast)
        acc.compared = codes.size
        if kind == "numeric":
            mm, one_null, d, score = _numeric_mismatch(a, b, rtol, atol)
            acc.add_diffs(d)
        else:
            mm, one_null = _values_mismatch(a, b)
            score = np.zeros_like
        acc.mismatches = int(np.count_nonzero(mm))
        acc.null_mismatches = int(np.count_nonzero(one_null)) if one_null is not None else 0
        if not acc.mismatches:
            return
        rows = np.flatnonzero(mm)
        if kind != "numeric":
            pairs = pa.table({"s": a.take(pa.array(rows)), "o": b.take(pa.array(rows))}) \
                .group_by(["s", "o"], use_threads=False).aggregate([([], "count_all")])
            if pairs.num_rows > MAX_PAIRS:
                pairs = pairs.sort_by([("count_all", "descending")]).slice(0, MAX_PAIRS)
                acc.pairs_exact = False
            acc.pairs = {(x, y): n for x, y, n in zip(*(pairs[i].to_pylist() for i in ("s", "o", "count_all")))}
        # the worst: largest score, ties by the smallest key (the same whatever the bucketing)
        cand = pa.table({"n": pa.array(-score(rows).astype(np.float64)), "k": keys_m.take(pa.array(rows)),
                         "i": pa.array(rows)})
        if cand.num_rows > n_examples:
            cand = cand.take(pc.select_k_unstable(cand, n_examples, [("n", "ascending"), ("k", "ascending")]))
        ii = pa.array(cand["i"].to_numpy())
        acc.examples = sorted(zip(cand["n"].to_pylist(), cand["k"].to_pylist(), a.take(ii).to_pylist(),
                                  b.take(ii).to_pylist()), key=lambda e: (e[0], e[1]))

    if workers > 1 and len(plan) > 1:  # each feature has its own accumulator: no shared state
        with cf.ThreadPoolExecutor(min(workers, len(plan)), thread_name_prefix="fastdrift-skew") as pool:
            list(pool.map(feature, plan))
    else:
        for c in plan:
            feature(c)
    return part


# -- reading and spilling -------------------------------------------------------------------------

class _Side:
    """One input: the dataset, its compared columns, and how its batches are made uniform."""

    def __init__(self, src, name: str, key: str, columns: List[str], key_type: pa.DataType):
        self.src, self.name, self.key, self.columns, self.key_type = src, name, key, columns, key_type
        self.rows = 0
        self.null_keys = 0
        self.lock = threading.Lock()
        self.schema: Optional[pa.Schema] = None

    def normalize(self, b: pa.RecordBatch) -> pa.RecordBatch:
        """Key decoded and cast to the common key type; null keys counted and left out."""
        cols = []
        for name, col in zip(b.schema.names, b.columns):
            if name == self.key:
                if pat.is_dictionary(col.type):
                    col = col.dictionary_decode()
                if col.type != self.key_type:
                    col = col.cast(self.key_type)
            cols.append(col)
        b = pa.RecordBatch.from_arrays(cols, names=b.schema.names)
        k = b.column(self.key)
        nulls = k.null_count
        with self.lock:
            self.rows += b.num_rows
            self.null_keys += nulls
        if nulls:
            b = b.filter(k.is_valid())
        return b


def _scan(side: _Side, count, workers: int) -> None:
    """``count(batch)`` of every normalized batch of ``side``, fragments on the scan's thread pool."""
    from .scan import FileScan
    from .sketches.reference import Job

    def one(st, b):
        count(side.normalize(b))
    FileScan(side.src, workers=workers).run(f"reading {side.name}", [side.key] + side.columns,
                                           Job(lambda i: None, one, lambda a, b: a))


def _table(batches: List[pa.RecordBatch], side: _Side) -> pa.Table:
    if batches:
        schema = batches[0].schema
        batches = [b if b.schema == schema else b.cast(schema) for b in batches]
        return pa.Table.from_batches(batches, schema)
    return pa.table({c: pa.array([], type=side.key_type if c == side.key else pa.null())
                     for c in [side.key] + side.columns})


class _Spill:
    """Per side, ``n`` buckets; rows go to the bucket of ``hash(key) % n``.  A bucket is an Arrow IPC
    stream file in ``directory``, or with ``directory`` None a list of batches in memory."""

    def __init__(self, directory: Optional[str], tag: str, n: int, seed: int, key: str):
        self.mem = directory is None
        self.paths = [os.path.join(directory, f"{tag}-{i}.arrows") for i in range(n)] if not self.mem else []
        self.pieces: List[List[pa.RecordBatch]] = [[] for _ in range(n)]
        self.n, self.seed, self.key = n, seed, key
        self.writers: List[Optional[pa.ipc.RecordBatchStreamWriter]] = [None] * n
        self.sinks: List[Any] = [None] * n
        self.locks = [threading.Lock() for _ in range(n)]
        self.nbytes = [0] * n  # Arrow bytes written (a file adds IPC framing)
        self.used = [False] * n
        self.schema: Optional[pa.Schema] = None
        self.schema_lock = threading.Lock()

    def add(self, b: pa.RecordBatch) -> None:
        if not b.num_rows:
            return
        with self.schema_lock:
            if self.schema is None:
                self.schema = b.schema
        if b.schema != self.schema:
            b = b.cast(self.schema)
        if self.n == 1:
            parts = [(0, b)]
        else:
            bucket = (_key_hash(b.column(self.key), self.seed) % np.uint64(self.n)).astype(np.int64)
            order = np.argsort(bucket, kind="stable")
            counts = np.bincount(bucket, minlength=self.n)
            b = b.take(pa.array(order))
            ends = np.cumsum(counts)
            parts = [(i, b.slice(int(e - c), int(c))) for i, (c, e) in enumerate(zip(counts, ends)) if c]
        for i, piece in parts:
            with self.locks[i]:
                if self.mem:
                    self.pieces[i].append(piece)
                else:
                    if self.writers[i] is None:
                        self.sinks[i] = pa.OSFile(self.paths[i], "wb")
                        self.writers[i] = pa.ipc.new_stream(self.sinks[i], self.schema)
                    self.writers[i].write_batch(piece)
                self.used[i] = True
                self.nbytes[i] += piece.nbytes

    def close(self) -> None:
        for w, s in zip(self.writers, self.sinks):
            if w is not None:
                w.close()
                s.close()

    def size(self, i: int) -> int:
        return self.nbytes[i]

    def read(self, i: int, side: _Side) -> pa.Table:
        if not self.used[i]:
            return _table([], side) if self.schema is None else self.schema.empty_table()
        if self.mem:
            return pa.Table.from_batches(self.pieces[i], self.schema)
        with pa.memory_map(self.paths[i]) as f:
            return pa.ipc.open_stream(f).read_all()

    def batches(self, i: int) -> Iterable[pa.RecordBatch]:
        if self.mem:
            yield from self.pieces[i]
        elif self.used[i]:
            with pa.OSFile(self.paths[i]) as f:
                yield from pa.ipc.open_stream(f)

    def remove(self, i: int) -> None:
        self.pieces[i] = []
        if not self.mem and self.used[i] and os.path.exists(self.paths[i]):
            os.remove(self.paths[i])


# -- planning -------------------------------------------------------------------------------------

def _plain_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pat.is_dictionary(t) else t


def _is_num(t: pa.DataType) -> bool:
    return pat.is_integer(t) or pat.is_floating(t) or pat.is_decimal(t)


def _key_type(ts: pa.DataType, to: pa.DataType, key: str) -> pa.DataType:
    ts, to = _plain_type(ts), _plain_type(to)
    if pat.is_integer(ts) and pat.is_integer(to):
        return pa.int64()
    for ok in (lambda t: pat.is_string(t) or pat.is_large_string(t), lambda t: pat.is_binary(t) or
               pat.is_large_binary(t)):
        if ok(ts) and ok(to):
            return ts if ts == to else (pa.large_string() if pat.is_string(ts) or pat.is_large_string(ts)
                                        else pa.large_binary())
    for ok in (pat.is_date, pat.is_timestamp):
        if ok(ts) and ok(to) and ts == to:
            return pa.int64()
    if ts == to:
        raise InvalidInputError(f"key column {key!r}: type {ts} cannot be a join key (use integers, strings, "
                                f"binaries, dates or timestamps)")
    raise InvalidInputError(f"key column {key!r} is {ts} in SERVING and {to} in OFFLINE: the keys cannot match")


def _column_plan(ts: pa.DataType, to: pa.DataType) -> Tuple[str, Optional[pa.DataType]]:
    """(kind, type both sides are cast to or None); InvalidInputError with the reason when not comparable."""
    ts, to = _plain_type(ts), _plain_type(to)
    if _is_num(ts) and _is_num(to):
        return "numeric", None
    if pat.is_nested(ts) or pat.is_nested(to):
        raise InvalidInputError(f"nested type ({ts} / {to}): select or flatten its fields")
    if ts == to:
        return "categorical", None
    strs = (pat.is_string, pat.is_large_string)
    if any(f(ts) for f in strs) and any(f(to) for f in strs):
        return "categorical", pa.large_string()
    try:
        pa.array([], type=to).cast(ts)
    except (pa.ArrowException, NotImplementedError):
        raise InvalidInputError(f"serving type {ts} and offline type {to} cannot be compared") from None
    if pat.is_string(ts) or pat.is_large_string(ts) or pat.is_string(to) or pat.is_large_string(to):
        raise InvalidInputError(f"serving type {ts} and offline type {to} cannot be compared")
    return "categorical", ts


def _default_budget() -> int:
    try:
        return max(int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4), 64 << 20)
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def _estimate(side: _Side, workers: int) -> int:
    """Arrow bytes of the side's selected columns: rows times a first batch's bytes per row, or the
    file bytes when the row count needs a scan (CSV)."""
    from .scan import FileScan
    src = side.src
    if src.rows is None:
        return int(src.file_bytes)
    b = FileScan(src, workers=workers).pilot([side.key] + side.columns)
    if b is None or not b.num_rows:
        return 0
    b = side.normalize(b)
    with side.lock:  # the pilot is not counted
        side.rows, side.null_keys = 0, 0
    return int(src.rows * b.nbytes / max(b.num_rows, 1))


# -- the function -----------------------------------------------------------------------------------

def skew(serving, offline, key: str, columns: Optional[Sequence[str]] = None, *, rtol: float = DEFAULT_RTOL,
         atol: float = DEFAULT_ATOL, max_mismatch_rate: float = 0.0, max_unmatched_rate: float = 1.0,
         examples: int = 10, top_pairs: int = 10, drop: Iterable[str] = (), hash: Iterable[str] = (),
         salt: str = "", memory_budget: Optional[int] = None, workers: Optional[int] = None,
         spill_dir: Optional[str] = None) -> SkewResult:
    """Join the features logged at serving with the offline features of the same keys.

    Parameters
    ----------
    serving, offline : str, path-like, or a list of them
        Files or directories (Parquet, Arrow IPC / Feather, CSV), read through
        :func:`fastdrift.dataset.open_data`.
    key : str
        The join column (integers, strings, binaries, dates or timestamps; integer widths may differ).
    columns : list of str, optional
        Features to compare (default: every column on both sides but the key).
    rtol, atol : float
        Numeric tolerance: equal when ``|serving - offline| <= atol + rtol * |offline|``.
    max_mismatch_rate : float
        A feature whose mismatch rate exceeds it fails (``exit_status`` 2).  Default 0: any mismatch.
    max_unmatched_rate : float
        Fails when the share of a side's distinct keys absent from the other exceeds it (default 1: never).
    examples, top_pairs : int
        Worst examples per feature; most frequent mismatching pairs per non-numeric feature.
    drop, hash, salt
        Redaction of the examples and pairs (:func:`fastdrift.sketches.sample.redact`, the settings of
        a config's ``evidence:`` section): a dropped column's values, or the key, are not shown; a
        hashed one's are a salted SHA-256 prefix.
    memory_budget : int, optional
        Bytes (default a quarter of physical memory); see the module docstring for the bound.
    workers : int, optional
        Threads (default: :func:`fastdrift.scan.default_workers`).
    spill_dir : str, optional
        Where the spill buckets' temporary directory is made (default the system's).

    Raises
    ------
    InvalidInputError
        A path is unusable, the key is missing from a side, or the key types cannot match.
    SchemaError
        A column of ``columns`` is missing from a side.
    DataReadError
        A file cannot be decoded.
    """
    from .dataset import open_data
    from .scan import default_workers
    if not (rtol >= 0 and atol >= 0):
        raise InvalidInputError(f"rtol and atol must be >= 0, got rtol={rtol!r}, atol={atol!r}")
    if not 0 <= max_mismatch_rate <= 1 or not 0 <= max_unmatched_rate <= 1:
        raise InvalidInputError("max_mismatch_rate and max_unmatched_rate must be in [0, 1]")
    if examples < 0 or top_pairs < 0:
        raise InvalidInputError("examples and top_pairs must be >= 0")
    workers = int(workers or default_workers())
    budget = int(memory_budget if memory_budget is not None else _default_budget())
    if budget <= 0:
        raise InvalidInputError(f"memory_budget must be > 0 bytes, got {budget}")
    src_s, src_o = open_data(serving), open_data(offline)
    sch_s, sch_o = src_s.read_schema, src_o.read_schema
    for src, sch, what in ((src_s, sch_s, "SERVING"), (src_o, sch_o, "OFFLINE")):
        if key not in sch.names:
            raise InvalidInputError(f"{src.label}: key column {key!r} not in {what} (columns: {', '.join(sch.names)})")
    ktype = _key_type(sch_s.field(key).type, sch_o.field(key).type, key)
    if columns is None:
        cols = [c for c in sch_s.names if c != key and c in sch_o.names]
    else:
        cols = list(dict.fromkeys(columns))
        for c in cols:
            for src, sch, what in ((src_s, sch_s, "SERVING"), (src_o, sch_o, "OFFLINE")):
                if c not in sch.names:
                    raise SchemaError(f"{src.label}: column {c!r} not in {what}")
        if key in cols:
            raise InvalidInputError(f"column {key!r} is the key; it cannot be compared")
    plan: Dict[str, Tuple[str, Optional[pa.DataType]]] = {}
    skipped: Dict[str, str] = {}
    for c in cols:
        try:
            plan[c] = _column_plan(sch_s.field(c).type, sch_o.field(c).type)
        except InvalidInputError as exc:
            skipped[c] = str(exc)
    read = list(plan)
    key_cast = ktype if not (pat.is_date(_plain_type(sch_s.field(key).type))
                             or pat.is_timestamp(_plain_type(sch_s.field(key).type))) \
        else _plain_type(sch_s.field(key).type)
    side_s = _Side(src_s, "serving", key, read, key_cast)
    side_o = _Side(src_o, "offline", key, read, key_cast)
    est = _estimate(side_s, workers) + _estimate(side_o, workers)
    total = _Part(accs={c: _Acc(k) for c, (k, _) in plan.items()})
    target = max(budget // (5 * workers), 1)  # a join works in about 4 times its bucket (bench_skew.py)
    if est * 3 <= budget:  # in memory, in cache-sized buckets
        buckets = _spilled(side_s, side_o, est, min(target, MEMORY_BUCKET), None, workers, plan, rtol, atol,
                           examples, total)
    else:
        tmp = tempfile.mkdtemp(prefix="fastdrift-skew-", dir=spill_dir)
        try:
            buckets = _spilled(side_s, side_o, est, target, tmp, workers, plan, rtol, atol, examples, total)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _result(serving, offline, key, side_s, side_o, total, plan, sch_s, sch_o, skipped, cols,
                   rtol=rtol, atol=atol, max_mismatch_rate=max_mismatch_rate,
                   max_unmatched_rate=max_unmatched_rate, top_pairs=top_pairs, drop=frozenset(drop),
                   hash_cols=frozenset(hash), salt=salt, buckets=buckets, budget=budget)


def _spilled(side_s, side_o, est, target, tmp, workers, plan, rtol, atol, examples, total) -> int:
    """Partition both sides into buckets of about ``target`` bytes (on disk in ``tmp``, or in memory),
    then join them ``workers`` at a time, merged in bucket order.  Returns the buckets joined."""
    key = side_s.key
    n = int(min(max(math.ceil(est / target), 1 if tmp is None else 2), _MAX_BUCKETS))
    sp_s, sp_o = _Spill(tmp, "s0", n, 0, key), _Spill(tmp, "o0", n, 0, key)
    try:
        _scan(side_s, sp_s.add, workers)
        _scan(side_o, sp_o.add, workers)
    finally:
        sp_s.close()
        sp_o.close()
    work = [(sp_s, sp_o, i, 0) for i in range(n)]
    done = 0

    def expand(item):
        """The buckets to join for ``item``: itself, or its sub-buckets when it is too large."""
        a, b, i, depth = item
        size = a.size(i) + b.size(i)
        if size <= target or depth >= _MAX_DEPTH:
            return [item]
        m = int(min(max(math.ceil(size / target) + 1, 2), _MAX_BUCKETS))
        tag = f"{i}-{depth + 1}"
        sa, sb = _Spill(tmp, "s" + tag, m, depth + 1, key), _Spill(tmp, "o" + tag, m, depth + 1, key)
        try:
            for batch in a.batches(i):
                sa.add(batch)
            for batch in b.batches(i):
                sb.add(batch)
        finally:
            sa.close()
            sb.close()
        a.remove(i)
        b.remove(i)
        out = []
        for j in range(m):
            out += expand((sa, sb, j, depth + 1))
        return out

    def join(item):
        a, b, i, _ = item
        part = _join_bucket(a.read(i, side_s), b.read(i, side_o), key, plan, rtol, atol, examples,
                            workers if n == 1 else 1)  # one bucket: its features in parallel
        a.remove(i)
        b.remove(i)
        return part

    def leaves():
        for item in work:
            yield from expand(item)

    with cf.ThreadPoolExecutor(workers, thread_name_prefix="fastdrift-skew") as pool:
        window = []
        for item in leaves():
            window.append(pool.submit(join, item))
            done += 1
            if len(window) >= workers:
                total.merge(window.pop(0).result(), examples)
        for f in window:
            total.merge(f.result(), examples)
    return done


def _q_name(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _result(serving, offline, key, side_s, side_o, total: _Part, plan, sch_s, sch_o, skipped, cols, *, rtol,
            atol, max_mismatch_rate, max_unmatched_rate, top_pairs, drop, hash_cols, salt, buckets,
            budget) -> SkewResult:
    def red(col, v):  # col is not dropped
        return redact({col: v}, drop, hash_cols, salt)[col]

    feats = []
    for c, (kind, _) in plan.items():
        a = total.accs[c]
        quant: Dict[str, float] = {}
        exact = a.digest is None
        if a.n_diffs:
            qs = list(QUANTILES)
            vals = np.quantile(np.concatenate(a.diffs), qs) if exact else a.digest.quantile(np.array(qs))
            quant = {_q_name(q): float(v) for q, v in zip(qs, vals)}
        ex = []
        for _, k, sv, ov in a.examples:
            e = {}
            kr = redact({key: k}, drop, hash_cols, salt)
            if key in kr:
                e["key"] = kr[key]
            if c not in drop:
                e["serving"], e["offline"] = red(c, sv), red(c, ov)
            ex.append(frozen_mapping(e))
        pairs = ()
        if kind != "numeric" and c not in drop:
            top = sorted(a.pairs.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top_pairs]
            pairs = tuple(frozen_mapping({"serving": red(c, s), "offline": red(c, o), "count": n})
                          for (s, o), n in top)
        feats.append(FeatureSkew(c, kind, str(sch_s.field(c).type), str(sch_o.field(c).type), a.compared,
                                 a.mismatches, a.null_mismatches, a.n_diffs,
                                 a.dmin if a.n_diffs else math.nan, a.dmax if a.n_diffs else math.nan,
                                 frozen_mapping(quant), exact, pairs, a.pairs_exact, tuple(ex)))
    failures = []
    if total.compared == 0:
        failures.append("no key is present exactly once on both sides: nothing compared")
    for f in feats:
        if f.compared and f.mismatch_rate > max_mismatch_rate:
            failures.append(f"{f.column}: mismatch rate {f.mismatch_rate:.4%} > {max_mismatch_rate:.4%}")
    for what, n, d in (("serving", total.serving_only_keys, total.keys_serving),
                       ("offline", total.offline_only_keys, total.keys_offline)):
        if d and n / d > max_unmatched_rate:
            failures.append(f"{n / d:.4%} of {what} keys are missing from the other side "
                            f"(> {max_unmatched_rate:.4%})")
    s_names, o_names = set(sch_s.names), set(sch_o.names)
    label = lambda p: p if isinstance(p, (str, os.PathLike)) else ", ".join(map(str, p))  # noqa: E731
    return SkewResult(
        str(label(serving)), str(label(offline)), key, side_s.rows, side_o.rows, side_s.null_keys,
        side_o.null_keys, total.keys_serving, total.keys_offline, total.compared, total.serving_only_keys,
        total.offline_only_keys, total.serving_only_rows, total.offline_only_rows,
        total.duplicate_keys_serving, total.duplicate_keys_offline, total.duplicate_rows_serving,
        total.duplicate_rows_offline, tuple(feats), frozen_mapping(skipped),
        tuple(c for c in sch_s.names if c not in o_names and c != key),
        tuple(c for c in sch_o.names if c not in s_names and c != key),
        float(rtol), float(atol), float(max_mismatch_rate), float(max_unmatched_rate), tuple(failures),
        buckets, total.bytes, budget)
