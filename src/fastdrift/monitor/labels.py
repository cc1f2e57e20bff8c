"""Labels joined to predictions: the per-pane performance state and the bounded join store.

A :class:`LabelPane` is the label side of one pane (or window): the performance sketch of the
config's task (:class:`~fastdrift.BinaryPerformance` of (score, label) pairs,
:class:`~fastdrift.MulticlassPerformance` of (predicted, actual) classes or
:class:`~fastdrift.RegressionPerformance` of (prediction, actual) numbers), a t-digest of label delays
(seconds from prediction to label) and the number of predictions that could be labelled.  It is
part of the pane's :class:`~fastdrift.monitor.signals.WindowSketch`, so it merges, checkpoints and
travels through the fleet spool with the pane.

A :class:`LabelStore` remembers, for predictions made with a request id, ``(request-id hash,
prediction, pane, prediction time)`` in an open-addressing table (the prediction: a binary score,
a regression's number, or a multiclass prediction's class code, the store numbering the classes
it sees up to :data:`MAX_CLASSES`) (kernels:
:mod:`fastdrift.kernels.numba_join`), so a label arriving later joins the pane of its
*prediction*.  Policies (docs/monitor.md "Labels and performance"):

* sampling: a request id is remembered when its stable 64-bit hash (FNV-1a + splitmix64 of the
  UTF-8 bytes; integer ids are hashed as their decimal string) is below ``sample_rate * 2**64``,
  so every process samples the same requests;
* first wins: a second label for one prediction is not counted in performance, it is counted in
  ``duplicate``; a second prediction with a request id already held keeps the first
  (``duplicate_predictions``);
* a label with no remembered prediction is counted in ``unmatched``; one more than ``horizon``
  seconds after its prediction, or whose prediction (or pane) has expired, in ``late``; a null
  label is no label yet, counted in ``unlabelled`` (its prediction waits on); a label that is not
  0/1 (binary), not finite (regression) or not a class (multiclass) in ``invalid``; an expired prediction leaves a tombstone that tells
  its late label from an unknown one until the table, full at its bound, drops tombstones to make
  room (such labels are then counted as unmatched); ``observe_label`` calls beyond the buffer in ``shed``;
  predictions beyond ``max_predictions`` live entries in ``not_remembered``.  Nothing is dropped
  without being counted;
* memory: the table grows by doubling up to ``next_pow2(2 * max_predictions)`` slots of
  :data:`BYTES_PER_SLOT` bytes (:func:`memory_bound`: 66 bytes per allowed prediction at a power
  of two, at most 132), plus one LabelPane per closed pane within the horizon (encoded, ~15 KB at
  the default bins, once no window ring holds it).  A key is a 64-bit hash, not the id: two ids collide with
  probability about n²/2⁶⁵ (3e-8 for a million live ids).

With a shadow prediction (``shadow_prediction``) of a binary classifier the store remembers the challenger's score next to
the champion's (8 more bytes per slot: :data:`BYTES_PER_SLOT_SHADOW`), and a pane's labels also
count the performance of both on the rows that have a shadow score (``LabelPane.shadow``).
"""
from __future__ import annotations

import math
import threading
import time
from typing import Dict, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from .. import codec
from ..adapters.arrow import float64_values
from ..errors import CorruptStateError, InvalidInputError
from ..sketches import BinaryPerformance, MulticlassPerformance, RegressionPerformance, TDigest
from ..sketches.base import MAX_COUNT
from .config import LabelSpec, MonitorConfig

__all__ = ["LabelPane", "LabelStore", "request_keys", "binary_labels", "memory_bound", "BYTES_PER_SLOT",
           "BYTES_PER_PREDICTION", "BYTES_PER_SLOT_SHADOW", "COUNTERS", "new_performance", "performance_from_bytes",
           "task_of", "shadow_labelled", "MAX_CLASSES"]

#: One table slot: key u64 + score f64 + pane i64 + time f64 + flag u8.
BYTES_PER_SLOT = 33
#: The table has at most ``next_pow2(2 * max_predictions)`` slots: 66 bytes per allowed
#: prediction when ``max_predictions`` is a power of two, at most 132 otherwise (:func:`memory_bound`).
BYTES_PER_PREDICTION = 2 * BYTES_PER_SLOT
#: A slot with the shadow score (``shadow_prediction`` configured, binary task): 8 bytes more.
BYTES_PER_SLOT_SHADOW = BYTES_PER_SLOT + 8
_NO_SHADOW = np.empty(0, dtype=np.float64)
_SHADOW_TAG = 24  # the LabelPane trailer holding the shadow performance
_SEGMENTS_TAG = 25  # the LabelPane trailer holding the segments' labels
#: A segmented store keeps each prediction's segment in the low bits of its pane:
#: ``pane * 2**_SEG_BITS + code`` (``code`` indexes :attr:`LabelStore.segment_keys`; :data:`_NO_SEGMENT`: none).
_SEG_BITS = 16
_NO_SEGMENT = (1 << _SEG_BITS) - 1
_PANE_LIMIT = 1 << 46  # |pane| below it packs into an int64 with its segment
#: The store's counters (totals since the monitor started, kept in checkpoints).  ``unlabelled``:
#: null labels given to ``observe_label`` / ``update_labels`` (no label yet: the prediction waits on).
COUNTERS = ("joined", "unmatched", "late", "duplicate", "invalid", "shed", "not_remembered",
            "duplicate_predictions", "unlabelled")
_V1_COUNTERS = 8  # version 1 stores had no ``unlabelled`` counter
#: The most distinct classes a multiclass join store codes (predicted or actual); predictions of
#: further classes are not remembered (``not_remembered``), labels of further classes are ``invalid``.
MAX_CLASSES = 1 << 16
_MIN_SLOTS = 1024
_VERSION = 2
_PANE_VERSION = 1
_PERF_TYPES = {int(c.KIND): c for c in (BinaryPerformance, MulticlassPerformance, RegressionPerformance)}


def task_of(config: MonitorConfig) -> str:
    """The config's task (a config stored before tasks existed is binary)."""
    return config.task or "binary"


def shadow_labelled(config: MonitorConfig) -> bool:
    """Whether labels measure a shadow prediction's performance too: a shadow prediction of a
    binary classifier (the challenger's scores beside the champion's)."""
    return config.shadow_prediction is not None and task_of(config) == "binary"


def new_performance(config: MonitorConfig):
    """An empty performance sketch of the config's task."""
    task = task_of(config)
    if task == "multiclass":
        return MulticlassPerformance()
    if task == "regression":
        return RegressionPerformance(compression=config.tdigest_compression)
    return BinaryPerformance(scores=config.labels.scores)


def performance_from_bytes(data: bytes):
    """A Binary/Multiclass/Regression performance sketch from its bytes (the envelope names the kind)."""
    kind, _, _ = codec.decode(data)
    cls = _PERF_TYPES.get(int(kind))
    if cls is None:
        raise CorruptStateError(f"a performance sketch was expected, got a {kind!r} envelope")
    return cls.from_bytes(data)


_I64_MIN = np.iinfo(np.int64).min


def _max_slots(max_predictions: int) -> int:
    return 1 << max(10, int(2 * max_predictions - 1).bit_length())


def memory_bound(max_predictions: int, shadow: bool = False) -> int:
    """The most bytes a join store's table takes with this ``labels.max_predictions`` (``shadow``:
    remembering shadow scores too)."""
    return (BYTES_PER_SLOT_SHADOW if shadow else BYTES_PER_SLOT) * _max_slots(max_predictions)


def _kernels():
    from ..kernels import numba_join  # numba compiles on first use, never at import fastdrift
    return numba_join


# -- request ids -> keys ---------------------------------------------------------------------

def request_keys(ids) -> Tuple[np.ndarray, np.ndarray]:
    """``(keys, valid)``: the stable 64-bit key of each request id (an Arrow array or chunked array
    of strings, binaries or integers; a list of Python values) and which were not null."""
    if isinstance(ids, (list, tuple)):
        ids = pa.array([None if v is None else str(v) for v in ids], type=pa.string())
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    t = ids.type
    if pat.is_dictionary(t):
        ids = ids.cast(t.value_type)
        t = ids.type
    if not (pat.is_string(t) or pat.is_large_string(t) or pat.is_binary(t) or pat.is_large_binary(t)):
        if not pat.is_integer(t):
            raise InvalidInputError(f"request ids must be strings or integers, got {t}")
        ids = pc.cast(ids, pa.string())
        t = ids.type
    n = len(ids)
    big = pat.is_large_string(t) or pat.is_large_binary(t)
    bufs = ids.buffers()
    off = np.frombuffer(bufs[1], dtype=np.int64 if big else np.int32, count=ids.offset + n + 1)[ids.offset:]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    keys = np.empty(n, dtype=np.uint64)
    _kernels().hash_strings(off.astype(np.int64), data, keys)
    valid = np.ones(n, dtype=bool) if ids.null_count == 0 else ids.is_valid().to_numpy(zero_copy_only=False)
    return keys, valid


def binary_labels(a) -> Tuple[np.ndarray, np.ndarray]:
    """``(labels as float64, valid)``: valid where the label is 0 or 1 (bool, integer or float);
    a null label is NaN, not valid (the callers count it as unlabelled: no label yet)."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    if isinstance(a, pa.Array):
        if not (pat.is_boolean(a.type) or pat.is_integer(a.type) or pat.is_floating(a.type)):
            raise InvalidInputError(f"labels must be 0/1 (bool or number), got {a.type}")
        v = float64_values(a.cast(pa.int8()) if pat.is_boolean(a.type) else a)
    else:
        v = np.asarray(a, dtype=np.float64)
    return v, (v == 0.0) | (v == 1.0)


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _class_key(v):
    """A class label as a dictionary key: str, or int (bools and integer-valued floats); None if null
    or not a class label."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
        return int(v)
    return None


# -- the label side of a pane ---------------------------------------------------------------

class LabelPane:
    """Performance, label delays and the labellable predictions of one pane or window.

    ``perf`` is the task's performance sketch (:func:`new_performance`).  For a binary
    classifier the monitor also counts every scored prediction of the pane in ``perf`` as
    unlabelled when it is made, so ``perf.estimate()`` (over the unlabelled rows) is the
    estimated performance of all the pane's predictions; ``scored_all`` False marks a pane whose
    unlabelled rows are only those without a label (a profile's sketch: the estimate then reads
    every row, ``estimate(labelled=True)``).

    ``shadow`` (with a shadow prediction of a binary classifier, :func:`shadow_labelled`, else
    None): ``(champion, challenger)`` performance on the labelled rows that have a shadow score,
    so both are measured on the same rows.
    """

    __slots__ = ("perf", "delay", "predicted", "scored_all", "shadow", "segments", "config")

    def __init__(self, config: MonitorConfig, *, _empty: bool = False, segment: bool = False):
        self.config = config
        self.scored_all = True
        self.segments: Optional[Dict[str, LabelPane]] = None
        if _empty:
            self.shadow = None
            return
        self.perf = new_performance(config)
        self.delay = TDigest(config.tdigest_compression, name="label_delay")
        self.predicted = 0
        self.shadow = ((BinaryPerformance(scores=config.labels.scores), BinaryPerformance(scores=config.labels.scores))
                       if shadow_labelled(config) and not segment else None)
        if config.segment_by and not segment:
            self.segments = {}

    def segment(self, key: str, config: MonitorConfig) -> "LabelPane":
        """Segment ``key``'s labels (created empty): its rows are counted here besides the whole."""
        sp = self.segments.get(key)
        if sp is None:
            sp = self.segments[key] = LabelPane(config, segment=True)
        return sp

    @property
    def labelled(self) -> int:
        return int(self.perf.labelled)

    def coverage(self) -> Optional[float]:
        """Labelled / predicted (None without predictions)."""
        return min(1.0, self.labelled / self.predicted) if self.predicted else None

    def add(self, scores: np.ndarray, labels: np.ndarray, delays: Optional[np.ndarray] = None,
            shadow: Optional[np.ndarray] = None) -> None:
        """Count labelled predictions; ``shadow``: their shadow scores (NaN: none)."""
        self.perf.update(scores, labels)
        if delays is not None and delays.size:
            self.delay.update(delays)
            _ = self.delay.n_centroids  # flushed: the same state after a byte round trip
        if self.shadow is not None and shadow is not None:
            ok = np.isfinite(shadow) & np.isfinite(scores)
            if not ok.all():
                scores, labels, shadow = scores[ok], labels[ok], shadow[ok]
            if scores.size:
                self.shadow[0].update(scores, labels)
                self.shadow[1].update(shadow, labels)

    def merge(self, other: "LabelPane", admit=None) -> "LabelPane":
        """Add ``other``'s counts; ``admit`` maps its segment keys as :meth:`WindowSketch.merge` does."""
        if self.segments is not None and other.segments:
            for key, sp in other.segments.items():
                # merged into an empty pane, as an unsegmented monitor's window merges its panes (a
                # t-digest merged and flushed is not a copy of it: the segment's state would differ)
                self.segment(admit(key) if admit is not None else key, self.config).merge(sp)
        self.perf.merge(other.perf)
        self.delay.merge(other.delay)
        _ = self.delay.n_centroids
        self.predicted += other.predicted
        self.scored_all = self.scored_all and other.scored_all
        if self.shadow is not None and other.shadow is not None:
            self.shadow[0].merge(other.shadow[0])
            self.shadow[1].merge(other.shadow[1])
        return self

    def copy(self) -> "LabelPane":
        c = LabelPane(self.config, _empty=True)
        c.perf, c.delay, c.predicted = self.perf.copy(), self.delay.copy(), self.predicted
        c.scored_all = self.scored_all
        c.shadow = None if self.shadow is None else (self.shadow[0].copy(), self.shadow[1].copy())
        c.segments = None if self.segments is None else {k: v.copy() for k, v in self.segments.items()}
        return c

    def to_bytes(self) -> bytes:
        w = codec.Writer().u8(_PANE_VERSION).u64(self.predicted).blob(self.perf.to_bytes()) \
            .blob(self.delay.to_bytes())
        if self.shadow is not None:  # tagged trailers: panes without a shadow prediction end before it
            w.u8(_SHADOW_TAG).blob(self.shadow[0].to_bytes()).blob(self.shadow[1].to_bytes())
        if self.segments:  # then the segments' labels: count, (key, label pane bytes)
            w.u8(_SEGMENTS_TAG).u64(len(self.segments))
            for key, sp in self.segments.items():
                w.string(key).blob(sp.to_bytes())
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, config: MonitorConfig, *, segment: bool = False) -> "LabelPane":
        r = codec.Reader(data, "label pane")
        if r.u8("version") != _PANE_VERSION:
            raise CorruptStateError("label pane: unknown version")
        lp = cls(config, _empty=True)
        lp.predicted = r.u64("predicted")
        if lp.predicted > MAX_COUNT:
            raise CorruptStateError(f"label pane: {lp.predicted} predictions, above {MAX_COUNT}")
        lp.perf = performance_from_bytes(r.blob())
        lp.delay = TDigest.from_bytes(r.blob())
        whole = not segment
        if config.segment_by and whole:
            lp.segments = {}
        last = 0
        while r.remaining:
            tag = r.u8("trailer tag")
            if tag == _SHADOW_TAG and last < tag and shadow_labelled(config) and whole:
                lp.shadow = (BinaryPerformance.from_bytes(r.blob()), BinaryPerformance.from_bytes(r.blob()))
            elif tag == _SEGMENTS_TAG and last < tag and lp.segments is not None:
                n = r.count("label pane segments", 9)
                if n > config.max_segments + 1:
                    raise CorruptStateError(f"label pane: {n} segments, above max_segments {config.max_segments} "
                                            "+ <other>")
                for i in range(n):
                    key = r.string(f"label pane segments[{i}].key")
                    if not key or key in lp.segments:
                        raise CorruptStateError(f"label pane: segment key {key!r:.60} empty or repeated")
                    lp.segments[key] = cls.from_bytes(r.blob(), config, segment=True)
            else:
                raise CorruptStateError("label pane: unknown or misplaced trailer, or one the config does not have "
                                        "(shadow performance without a shadow prediction, segments without segment_by)")
            last = tag
        if lp.shadow is None and shadow_labelled(config) and whole:  # written before the shadow was configured
            lp.shadow = LabelPane(config).shadow
        r.done()
        if lp.delay.compression != config.tdigest_compression:
            raise CorruptStateError("label pane: label delay t-digest of another compression than the config's")
        try:  # the sketch parameters must be the config's: a window close would fail much later
            LabelPane(config, segment=segment).merge(lp)
        except Exception as exc:
            raise CorruptStateError(f"label pane does not match the config: {exc}") from None
        return lp

    def __eq__(self, other) -> bool:
        return isinstance(other, LabelPane) and self.to_bytes() == other.to_bytes()


# -- the join store -----------------------------------------------------------------------------

class LabelStore:
    """Remembered predictions awaiting labels (see the module docstring).  Not thread-safe except
    :meth:`observe`: the ingest stage calls everything else under its state lock."""

    def __init__(self, config: MonitorConfig):
        self.config = config
        self.spec: LabelSpec = config.labels
        self.task = task_of(config)
        # multiclass: the class of a code (the table's value of a prediction is its class code)
        self.classes: list = []
        self._codes: dict = {}
        self._classes_lock = threading.Lock()  # take_observed codes labels outside the ingest's lock
        self.has_shadow = shadow_labelled(config)
        # segmented: each remembered prediction's segment, as a code into segment_keys (packed in its pane)
        self.segmented = bool(config.segment_by)
        self.segment_keys: list = []
        self._segment_codes: dict = {}
        self.max_slots = _max_slots(self.spec.max_predictions)
        self._alloc(min(_MIN_SLOTS, self.max_slots))
        r = self.spec.sample_rate
        self.threshold = np.uint64(0xFFFFFFFFFFFFFFFF) if r >= 1 else np.uint64(int(r * 2.0 ** 64))
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.newest = -math.inf  # newest prediction time remembered
        self._expired_before = -math.inf
        # pane -> [its labels (a LabelPane, or its bytes once no window ring holds it), newest prediction time]
        self.closed: Dict[int, list] = {}
        self.revised: set = set()  # closed panes that labels reached since the last take_revised()
        self._lock = threading.Lock()  # the observe_label buffer's takes and shed count
        # (request_id, label, ts) per observe_label call, appended without a lock (observe)
        self._held: list = []

    def _alloc(self, slots: int) -> None:
        self.keys = np.zeros(slots, dtype=np.uint64)
        self.score = np.zeros(slots, dtype=np.float64)
        self.pane = np.zeros(slots, dtype=np.int64)
        self.ts = np.zeros(slots, dtype=np.float64)
        self.flag = np.zeros(slots, dtype=np.uint8)
        self.shadow = np.full(slots, np.nan) if self.has_shadow else _NO_SHADOW
        # live entries, the most live entries now, tombstones
        self.tc = np.array([0, min(self.spec.max_predictions, slots // 2), 0], dtype=np.int64)

    @property
    def live(self) -> int:
        """Predictions remembered now."""
        return int(self.tc[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the table now."""
        return sum(a.nbytes for a in (self.keys, self.score, self.pane, self.ts, self.flag, self.shadow))

    def _rehash(self, slots: int) -> None:
        """Into ``slots`` slots: a larger table keeps the tombstones of expired predictions (their
        labels are counted late, not unmatched); one of the same size drops them."""
        old = (self.keys, self.score, self.pane, self.ts, self.flag)
        old_shadow = self.shadow
        live, keep = self.live, slots > self.keys.size
        self._alloc(slots)
        self.tc[2] = _kernels().table_rehash(*old, self.keys, self.score, self.pane, self.ts, self.flag, keep,
                                             old_shadow, self.shadow)
        self.tc[0] = live

    # -- predictions -------------------------------------------------------------------------
    def segment_code(self, key: str) -> int:
        """The code of segment ``key`` (numbered as first met; at most ``max_segments`` + 1 keys
        reach a store, since a monitor's segmenter caps them)."""
        code = self._segment_codes.get(key)
        if code is None:
            if len(self.segment_keys) >= _NO_SEGMENT:
                raise InvalidInputError(f"label store: more than {_NO_SEGMENT} segments")
            code = self._segment_codes[key] = len(self.segment_keys)
            self.segment_keys.append(key)
        return code

    def remember(self, ids, scores: np.ndarray, pane: int, ts: np.ndarray, shadow: Optional[np.ndarray] = None,
                 segment: Optional[str] = None) -> int:
        """Remember the sampled predictions of one pane (``shadow``: their shadow scores, NaN for
        none; ``segment``: their segment key, in a segmented store); returns how many were remembered."""
        if self.segmented:
            if not -_PANE_LIMIT <= pane < _PANE_LIMIT:
                raise InvalidInputError(f"pane {pane} out of the range a segmented label join holds (|pane| < 2**46)")
            pane = pane * (1 << _SEG_BITS) + (self.segment_code(segment) if segment is not None else _NO_SEGMENT)
        keys, valid = request_keys(ids)
        take = valid & (keys <= self.threshold)
        if self.has_shadow and shadow is None:
            shadow = np.full(keys.size, np.nan)
        if not take.all():
            keys, scores, ts = keys[take], scores[take], ts[take]
            shadow = shadow[take] if shadow is not None else None
        n = keys.size
        if not n:
            return 0
        t = np.asarray(ts, dtype=np.float64)
        if t.size and np.isfinite(t).any():
            self.newest = max(self.newest, float(np.nanmax(t)))
        self._expire()
        need = self.live + n + int(self.tc[2])
        if need > self.keys.size // 2 and self.keys.size < self.max_slots:  # grow once, to the size needed
            self._rehash(min(self.max_slots, 1 << int(2 * need - 1).bit_length()))
        if self.live + int(self.tc[2]) + n > (self.keys.size * 3) // 4:
            self._rehash(self.keys.size)  # tombstones lengthen probes
        ins, dup, full = _kernels().table_insert(
            self.keys, self.score, self.pane, self.ts, self.flag, keys,
            np.ascontiguousarray(scores, dtype=np.float64), np.full(n, pane, dtype=np.int64), t, self.tc,
            self.shadow, _NO_SHADOW if not self.has_shadow else np.ascontiguousarray(shadow, dtype=np.float64))
        self.counts["duplicate_predictions"] += int(dup)
        self.counts["not_remembered"] += int(full)
        return int(ins)

    def _expire(self, force: bool = False) -> None:
        """Tombstone predictions older than the horizon (at most every 1/16 horizon, or ``force``)
        and forget closed panes whose predictions are all older."""
        before = self.newest - self.spec.horizon
        if not math.isfinite(before) or (not force and before < self._expired_before + self.spec.horizon / 16):
            return
        self._expired_before = before
        _kernels().table_expire(self.keys, self.flag, self.ts, before, self.tc)
        for p in [p for p, (_, newest) in self.closed.items() if newest < before]:
            del self.closed[p]
            self.revised.discard(p)

    # -- labels ------------------------------------------------------------------------------
    def observe(self, request_id, label, ts=None) -> None:
        """Hold one label for the next :meth:`take_observed` (the request path): one append of a
        tuple to the held list, a single call under the GIL, so concurrent callers' labels stay
        whole and no lock is taken.  Past ``labels.buffer`` held the label is shed (counted under
        the lock); callers passing the length test together may each append, so the list can
        hold up to one more label per such caller."""
        held = self._held
        if len(held) < self.spec.buffer:
            held.append((request_id, label, time.time() if ts is None else ts))
            return
        with self._lock:
            self.counts["shed"] += 1

    def take_observed(self):
        """The labels :meth:`observe` held as ``(ids, labels, valid, times)``, or None.  They are
        taken from the front of the held list (a slice, then a ``del`` of it: each one call, and
        labels appended meanwhile lie beyond it and stay), under the lock against another take."""
        with self._lock:
            held = self._held
            k = len(held)
            if not k:
                return None
            take = held[:k]
            del held[:k]
        ids = [h[0] for h in take]
        labels = [h[1] for h in take]
        ts = [h[2] for h in take]
        null = np.array([v is None for v in labels], dtype=bool)
        if self.task == "multiclass":
            lab, valid = self.codes_of(labels)
        else:
            lab = np.array([(math.nan if v is None or isinstance(v, (str, bytes)) else _number(v)) for v in labels],
                           dtype=np.float64)
            valid = ((lab == 0) | (lab == 1)) if self.task == "binary" else np.isfinite(lab)
        t = np.array([(math.nan if isinstance(v, (str, bytes)) or v is None else float(v)) for v in ts],
                     dtype=np.float64)
        return ids, lab, valid & ~null, t, null

    # -- multiclass codes ----------------------------------------------------------------------
    def codes_of(self, values, add: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """``(codes as float64, valid)`` of class labels (Arrow array, chunked array or list of
        strings, integers or booleans; integer-valued floats are integers): a new class gets the
        next code (with ``add``, below :data:`MAX_CLASSES`); a null, another key type than the
        store's first class, or a class beyond the cap is not valid (code NaN)."""
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
            enc = values.dictionary_encode() if not pat.is_dictionary(values.type) else values
            uniq = enc.dictionary.to_pylist()
            idx = enc.indices.to_numpy(zero_copy_only=False) if enc.indices.null_count == 0 else \
                enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            if enc.indices.null_count:
                idx = np.where(enc.indices.is_valid().to_numpy(zero_copy_only=False), idx, -1)
        else:
            uniq, inv = [], {}
            idx = np.empty(len(values), dtype=np.int64)
            for i, v in enumerate(values):
                k = _class_key(v)
                if k is None:
                    idx[i] = -1
                    continue
                j = inv.get(k)
                if j is None:
                    j = inv[k] = len(uniq)
                    uniq.append(k)
                idx[i] = j
        codes = np.full(len(uniq) + 1, np.nan)  # the last entry: nulls
        with self._classes_lock:
            self._code_classes(uniq, codes, add)
        out = codes[np.asarray(idx, dtype=np.int64)]
        return out, ~np.isnan(out)

    def _code_classes(self, uniq: list, codes: np.ndarray, add: bool) -> None:
        for j, v in enumerate(uniq):
            k = _class_key(v)
            if k is None:
                continue
            c = self._codes.get(k)
            if c is None and add and len(self.classes) < MAX_CLASSES and \
                    (not self.classes or isinstance(k, str) == isinstance(self.classes[0], str)):
                c = self._codes[k] = len(self.classes)
                self.classes.append(k)
            if c is not None:
                codes[j] = c

    def classes_of(self, codes: np.ndarray) -> pa.Array:
        """The classes of codes (NaN: null), as an Arrow array."""
        ok = ~np.isnan(codes)
        with self._classes_lock:
            cls = list(self.classes)
        typ = pa.string() if cls and isinstance(cls[0], str) else pa.int64()
        idx = pa.array(np.where(ok, codes, 0).astype(np.int64), mask=~ok)
        return pa.array(cls, type=typ).take(idx) if cls else pa.nulls(len(codes), typ)

    def join(self, ids, labels: np.ndarray, valid: np.ndarray, lts: np.ndarray, null: Optional[np.ndarray] = None):
        """Join labels to remembered predictions: returns ``(pane, prediction value, label, delay,
        shadow, segment)`` of the joined ones (first label of a prediction within the horizon; ``shadow``
        their shadow scores, None without :attr:`has_shadow`; ``segment`` their segment codes into
        :attr:`segment_keys`, ``_NO_SEGMENT`` for none, None in a store without segments) and counts
        the others; a ``null`` label (no label yet) is counted in ``unlabelled`` and its prediction waits on."""
        pn, sc, lb, dl, sh = self._join(ids, labels, valid, lts, null)
        if not self.segmented:
            return pn, sc, lb, dl, sh, None
        return pn >> _SEG_BITS, sc, lb, dl, sh, pn & _NO_SEGMENT

    def _join(self, ids, labels, valid, lts, null):
        keys, kvalid = request_keys(ids)
        lts = np.asarray(lts, dtype=np.float64)
        ok = valid & kvalid & np.isfinite(lts)
        bad = int(ok.size - ok.sum())
        if null is not None and bad:
            n_null = int((null & ~ok).sum())
            self.counts["unlabelled"] += n_null
            bad -= n_null
        self.counts["invalid"] += bad
        if not ok.all():
            keys, labels, lts = keys[ok], labels[ok], lts[ok]
        n = keys.size
        status = np.empty(n, dtype=np.uint8)
        sc, pn, dl = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n)
        sh = np.empty(n) if self.has_shadow else None
        _kernels().table_join(self.keys, self.score, self.pane, self.ts, self.flag, keys, lts,
                              float(self.spec.horizon), _I64_MIN, status, sc, pn, dl, self.shadow,
                              _NO_SHADOW if sh is None else sh)
        cnt = np.bincount(status, minlength=4)
        self.counts["unmatched"] += int(cnt[0])
        self.counts["joined"] += int(cnt[1])
        self.counts["duplicate"] += int(cnt[2])
        self.counts["late"] += int(cnt[3])
        if int(cnt[1]) == n:
            return pn, sc, labels, dl, sh
        j = status == 1
        return pn[j], sc[j], labels[j], dl[j], None if sh is None else sh[j]

    # -- closed panes ------------------------------------------------------------------------
    def pane_closed(self, pid: int, lp: LabelPane, newest: float) -> None:
        """Keep a closed pane's labels for the horizon (the same object its window ring holds)."""
        self.closed[pid] = [lp, newest]

    def kept(self, pid: int) -> Optional[LabelPane]:
        """A closed pane's labels (decoded if compacted; :meth:`compact` encodes them again), or None."""
        entry = self.closed.get(pid)
        if entry is None:
            return None
        if isinstance(entry[0], bytes):
            entry[0] = LabelPane.from_bytes(entry[0], self.config)
        return entry[0]

    def compact(self, keep) -> None:
        """Hold the closed panes outside ``keep`` (the window ring's, whose objects the ring shares)
        as bytes: a binned performance sketch takes ~390 KB in memory and ~15 KB encoded."""
        for p, entry in self.closed.items():
            if not isinstance(entry[0], bytes) and p not in keep:
                entry[0] = entry[0].to_bytes()

    def take_revised(self) -> set:
        out, self.revised = self.revised, set()
        return out

    def kept_bytes(self, pid: int) -> Optional[bytes]:
        """A closed pane's labels as ``LabelPane`` bytes (without decoding a compacted one), or None."""
        entry = self.closed.get(pid)
        if entry is None:
            return None
        return entry[0] if isinstance(entry[0], bytes) else entry[0].to_bytes()

    # -- bytes ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A ``LABEL_STORE`` envelope: version, counters, newest time, the live entries (key,
        score, pane, time, flag) and the closed panes' labels."""
        live = np.flatnonzero((self.flag == 1) | (self.flag == 2))
        w = codec.Writer()
        for c in COUNTERS:
            w.u64(self.counts[c])
        w.f64(self.newest).f64(self._expired_before)
        w.u64_array(self.keys[live]).f64_array(self.score[live]).i64_array(self.pane[live])
        w.f64_array(self.ts[live]).array(self.flag[live], "int32")
        w.u64(len(self.closed))
        for p, (lp, newest) in sorted(self.closed.items()):
            w.i64(p).f64(newest).blob(lp if isinstance(lp, bytes) else lp.to_bytes())
        if self.has_shadow:  # a trailer: the live entries' shadow scores
            w.f64_array(self.shadow[live])
        meta = {"version": _VERSION, "max_predictions": self.spec.max_predictions, "task": self.task}
        if self.task == "multiclass":
            meta["classes"] = list(self.classes)
        if self.segmented:  # the live entries' panes hold their segment codes
            meta["segments"] = list(self.segment_keys)
        params = codec.Writer().json(meta)
        return codec.encode(codec.Kind.LABEL_STORE, params.getvalue(), w.getvalue())

    def load(self, data: bytes) -> None:
        """Replace this store's state with :meth:`to_bytes` output (CorruptStateError if invalid)."""
        _, params, payload = codec.decode(data, expected_kind=codec.Kind.LABEL_STORE)
        pr = codec.Reader(params, "label store parameters")
        meta = pr.json()
        pr.done()
        if not isinstance(meta, dict) or meta.get("version") not in (1, _VERSION):
            raise CorruptStateError(f"label store: unknown version {meta!r:.80}")
        if meta.get("task", "binary") != self.task:
            raise CorruptStateError(f"label store: of a {meta.get('task')!r:.20} model, the config's task is {self.task!r}")
        classes = meta.get("classes", [])
        if not isinstance(classes, list) or len(classes) > MAX_CLASSES or (self.task != "multiclass" and classes) \
                or not (all(isinstance(c, str) for c in classes)
                        or all(isinstance(c, int) and not isinstance(c, bool) for c in classes)) \
                or len(set(classes)) != len(classes):
            raise CorruptStateError("label store: invalid class list")
        r = codec.Reader(payload, "label store")
        names = COUNTERS if meta["version"] == _VERSION else COUNTERS[:_V1_COUNTERS]
        counts = dict.fromkeys(COUNTERS, 0)
        counts.update({c: r.u64(c) for c in names})
        if max(counts.values()) > MAX_COUNT:
            raise CorruptStateError(f"label store: counters above {MAX_COUNT}")
        newest, expired = r.f64(), r.f64()
        if math.isnan(newest) or math.isnan(expired):
            raise CorruptStateError("label store: NaN times")
        keys, score, pane, ts = r.u64_array(), r.f64_array(), r.i64_array(), r.f64_array()
        flag = r.array("int32")
        n = keys.size
        if not (score.size == pane.size == ts.size == flag.size == n):
            raise CorruptStateError("label store: entry arrays of different lengths")
        if n > self.spec.max_predictions:
            raise CorruptStateError(f"label store: {n} entries, above max_predictions {self.spec.max_predictions}")
        if n and (not np.isin(flag, (1, 2)).all() or (keys == 0).any() or np.unique(keys).size != n
                  or not np.isfinite(ts).all()):
            raise CorruptStateError("label store: invalid entries (flags, empty or repeated keys, times)")
        if self.task == "multiclass" and n:
            ok = np.isnan(score) | ((score >= 0) & (score < len(classes)) & (score == np.floor(score)))
            if not ok.all():
                raise CorruptStateError("label store: a class code outside the class list")
        seg_keys = meta.get("segments")
        if seg_keys is not None and (not self.segmented or not isinstance(seg_keys, list) or len(seg_keys) >= _NO_SEGMENT
                                     or not all(isinstance(k, str) and k for k in seg_keys)
                                     or len(set(seg_keys)) != len(seg_keys)):
            raise CorruptStateError("label store: invalid segment keys, or segments without segment_by")
        if self.segmented and seg_keys is None:  # written without segments: the predictions have none
            if n and (np.abs(pane) >= _PANE_LIMIT).any():
                raise CorruptStateError("label store: a pane out of range")
            pane = pane * (1 << _SEG_BITS) + _NO_SEGMENT
            seg_keys = []
        elif seg_keys is not None and n:
            code = pane & _NO_SEGMENT
            if not ((code < len(seg_keys)) | (code == _NO_SEGMENT)).all():
                raise CorruptStateError("label store: a segment code outside the segment keys")
        closed = {}
        for _ in range(r.count("closed panes", 17)):
            p, nw = r.i64(), r.f64()
            if p in closed or math.isnan(nw):
                raise CorruptStateError("label store: a closed pane repeated or without a time")
            closed[p] = [LabelPane.from_bytes(r.blob(), self.config), nw]
        shadow = r.f64_array() if self.has_shadow and r.remaining else np.full(n, np.nan)
        r.done()
        if shadow.size != n:
            raise CorruptStateError("label store: shadow scores of another length than the entries")
        slots = _MIN_SLOTS
        while slots // 2 < n:
            slots *= 2
        self._alloc(min(max(slots, _MIN_SLOTS), self.max_slots))
        _kernels().table_rehash(keys, score, pane, ts, flag.astype(np.uint8),
                                self.keys, self.score, self.pane, self.ts, self.flag, False,
                                shadow if self.has_shadow else _NO_SHADOW, self.shadow)
        self.tc[0] = n
        self.counts, self.newest, self._expired_before, self.closed = counts, newest, expired, closed
        self.classes, self._codes = list(classes), {c: i for i, c in enumerate(classes)}
        if self.segmented:
            self.segment_keys, self._segment_codes = list(seg_keys), {k: i for i, k in enumerate(seg_keys)}
        self.revised = set()
