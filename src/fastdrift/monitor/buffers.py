"""Preallocated observe() buffers, counted in micro-batches by one worker thread per monitor.

The request path (:meth:`ObserveBuffer.observe`) does no conversion and no kernel work, and never
waits for the worker: under a short lock it stores references into preallocated slot lists (one
per field: feature values, prediction, latency, error flag, request id, event time; a buffer's
request path is generated for the fields its monitor has, so a call stores only those) and bumps a
counter.  When ``capacity`` slots are full the buffer is queued for the worker (at most
:data:`QUEUE_DEPTH` wait) and a recycled one takes its place.  The worker, a daemon thread started
at the first ``observe`` and stopped by :meth:`ObserveBuffer.close`, converts each queued buffer
into one Arrow RecordBatch, which the monitor counts like an ``update()`` batch
(``background=False``: the filling thread does it inline).  Cost per call:
``bench/bench_monitor.py`` (``monitor-observe``); tail latency under load:
``bench/bench_observe_tail.py``.

Staleness: every ``flush_interval`` seconds the worker also queues the partly filled buffer,
counts it and calls ``on_tick`` (the monitor evaluates the windows closed meanwhile), so a request
is counted within about one interval at any request rate, not only when ``capacity`` requests
have piled up.

Overload, when the worker falls behind (``overload``):

* ``"shed"``: with :data:`QUEUE_DEPTH` buffers waiting and the current one full, a request is not
  stored; it is counted in the shed counter (:meth:`ObserveBuffer.take_counts`).
* ``"sample"``: as the queue grows, only 1 request in 2**(waiting - 1) is stored, the others are
  counted as shed; a full queue sheds as above.  The counted rows thin out evenly over time instead
  of missing one contiguous burst.
* ``"block"``: the request thread waits for the worker (back-pressure).

Fork: a child process starts with an empty buffer, zero counters and no worker (its first
``observe`` starts its own); the requests the parent had buffered are counted by the parent only.
Before a fork the parent waits for its worker to finish the batch it is counting, so the child
never inherits a lock held by that thread.

A request's features are not read on the call: the slot keeps the caller's dict (or tuple of
the values in feature order) itself, another sequence or mapping is copied into a tuple first, and
the worker reads the values, in slices of :data:`ROWS_PER_SLICE` requests with the GIL offered
between them.  So the caller must not change a dict it passed to ``observe`` afterwards (pass a
fresh dict per request, or ``dict(d)`` of one it reuses); its values are read within about one
``flush_interval``.
A dict missing a feature is rejected by the worker (counted, named in the reasons).
The other fields go into one preallocated list per field, so the request path allocates nothing
that outlives the call: buffered requests do not fill the collector's young generation and make
request threads run collections (``bench/bench_observe_tail.py`` counts them).  The common call (a
dict, not strict) takes a straight path; a full buffer, sampling and shedding are branched off it,
and a full queue sheds without touching the queue.
At flush each column is one ``pa.array(..., type=...)``, which
converts 4096 values in C and is *strict* (a string where a float is expected fails, where numpy
would silently parse ``"1.5"``).  A column that fails is re-checked value by value and only the
offending rows are rejected (counted, never raised) - the rest of the micro-batch goes through.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
import weakref
from time import time as _now
from operator import itemgetter
from collections.abc import Mapping
from typing import Callable, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from ..errors import InvalidInputError
from .config import OVERLOAD

__all__ = ["ObserveBuffer", "QUEUE_DEPTH", "GIL_SLICE", "ROWS_PER_SLICE", "offer_gil", "ARRIVAL"]

#: Full buffers that may wait for the worker before the overload policy applies.
QUEUE_DEPTH = 4

_FIELDS = ("feat", "pred", "lat", "err", "rid", "ts", "shadow", "arr")
#: The column of a micro-batch holding each request's arrival time (the freshness signal's clock).
ARRIVAL = "__fastdrift_arrival__"
#: Values a text (segment) column rejects rather than spell: a sequence is not one value.
_NESTED = (list, tuple, dict, set, np.ndarray)
_STOP = object()  # queued by close(): the worker exits when it reaches it
_NO_WORKER = object()  # no thread needed (inline counting without a timer), or none could start
# Recycled slot sets kept: a set, once allocated, is reused rather than allocated again, and the
# first spare one is allocated with the current one: a young set of lists is visited by every
# young-generation collection until it ages (0.35 ms per set), on whichever thread collects.
_MAX_FREE = QUEUE_DEPTH + 1
#: Seconds the worker holds the GIL before it offers it to request threads (:func:`offer_gil`).
GIL_SLICE = 0.00005
#: Requests whose feature values the worker reads between two GIL offers (about 50 us of work).
ROWS_PER_SLICE = 256
_since = threading.local()
_live: "weakref.WeakSet[ObserveBuffer]" = weakref.WeakSet()  # reset in a forked child
_held: list = []  # buffers whose counting lock the forking thread holds


def _slots(cap: int) -> tuple:
    """One buffer: one list of ``cap`` slots per field, in :data:`_FIELDS` order.  A request's
    features slot holds the caller's dict itself (read by the worker) or a tuple of its values."""
    return tuple([None] * cap for _ in _FIELDS)


def _clear(slots: tuple, n: int) -> None:
    """Drop the references of the first ``n`` requests so buffered objects can be freed."""
    nones = [None] * n
    for lst in slots:
        lst[:n] = nones


class ObserveBuffer:
    """Thread-safe per-request intake.

    Parameters
    ----------
    names : feature names, in the order a sequence passed to ``observe`` must follow
    types : Arrow type of each feature column (float64 for numeric features)
    prediction, latency, error, request_id, event_time : output column names or None
    pred_type : Arrow type of the prediction column
    capacity : slots per micro-batch (default 4096: a flush every 4096 calls amortises the batch
        conversion over them; bench/bench_monitor.py, ``monitor-observe``, includes it)
    sink : ``sink(batch, rejected, reasons)`` called with each converted micro-batch, outside the lock
    stamp_time : fill a missing ``ts`` with ``time.time()`` (event-time windows need one per row)
    strict : validate on the call path and raise InvalidInputError instead of counting a rejection
    background : count full buffers on the worker thread (False: on the thread that filled them)
    flush_interval : seconds between timed flushes of the partly filled buffer; 0 = none
    overload : one of :data:`OVERLOAD`, what ``observe`` does when the worker falls behind
    on_tick : called on the worker after each timed flush (the monitor evaluates closed windows)
    shadow_prediction : the shadow (challenger) prediction's column name or None; stored as
        ``pred_type`` like the prediction
    arrival : a clock (``arrival()`` -> seconds) read at each call and stored in the
        :data:`ARRIVAL` column (the freshness signal); None = not stored
    text_columns : names (of ``names``, typed string) whose values are stored as their text, as a
        segment key spells them (``str(v)``, booleans ``true`` / ``false``): segment columns
    """

    def __init__(self, names: Sequence[str], types: Sequence[pa.DataType], *, prediction, pred_type,
                 latency, error, request_id, event_time, capacity: int,
                 sink: Callable, stamp_time: bool, strict: bool, background: bool = True,
                 flush_interval: float = 0.0, overload: str = "shed",
                 on_tick: Optional[Callable[[], None]] = None, shadow_prediction: Optional[str] = None,
                 arrival: Optional[Callable[[], float]] = None, text_columns: Sequence[str] = ()):
        if overload not in OVERLOAD:
            raise InvalidInputError(f"overload must be one of {OVERLOAD}, got {overload!r}")
        self.names = list(names)
        self.types = list(types)
        self._text = frozenset(text_columns)
        self._numeric = [pa.types.is_floating(t) for t in self.types]
        self.prediction, self.pred_type = prediction, pred_type
        self.latency, self.error, self.request_id, self.event_time = latency, error, request_id, event_time
        self.shadow_prediction, self._arrival = shadow_prediction, arrival
        self.cap = int(capacity)
        self._sink = sink
        self._stamp = stamp_time
        self._strict = strict
        nf = len(self.names)
        self._getter = itemgetter(*self.names) if nf > 1 else (lambda d, _k=self.names[0]: (d[_k],))
        self._nf = nf
        self._background = background
        self._interval = float(flush_interval)
        self._overload = overload
        # a full buffer waits on the request path for room in the queue unless requests may be shed
        self._nonblocking = background and overload != "block"
        self.on_tick = on_tick
        # the request path for the fields this buffer stores (to_batch reads only those)
        self.observe = _observe_for((True, prediction is not None, latency is not None, error is not None,
                                     request_id is not None, event_time is not None,
                                     shadow_prediction is not None, arrival is not None)).__get__(self)
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        """Fresh request-path state: new locks, an empty buffer and queue, zero counters, no worker."""
        self._lock = threading.Lock()        # the slots, the counters; never held while waiting
        self._wlock = threading.Lock()       # starting / stopping the worker
        self._count_lock = threading.RLock() # held by our threads while they count (a fork waits for it)
        self._buf = _slots(self.cap)
        self._free: List[tuple] = [_slots(self.cap)]
        self._n = 0
        self._q: "queue.Queue" = queue.Queue(maxsize=QUEUE_DEPTH)
        self._worker = None
        self._ready = False       # worker started and not strict: observe takes its common path
        self.rejected_early = 0   # rejected on the call path (missing key); flush rejections go to the sink
        self.last_error: Optional[str] = None
        self._shed = 0            # requests shed since the last take_counts()
        self._seq = 0             # requests seen while sampling
        self._stride = 1          # store 1 request in _stride ("sample" while the worker is behind)
        self._room = self.cap     # observe's one test: slots before the rare path (0 while sampling)
        self._error: Optional[BaseException] = None

    # -- request path -------------------------------------------------------------
    # observe: the request path, generated by _observe_for (below the class) for the fields this
    # buffer stores; the class attribute stores every field.

    def _slot_locked(self, k: int) -> int:
        """The slot for a request when the buffer is full or requests are sampled (hold ``_lock``):
        ``k``, 0 after queueing the full buffer, or -1 when the request is shed (counted)."""
        if self._stride > 1:
            self._seq += 1
            if self._seq % self._stride:
                self._shed += 1
                return -1
        if k == self.cap:  # full, and the queue had no room when it filled
            if not self._queue_locked():
                self._shed += 1
                return -1
            k = 0
        return k

    def _values(self, features, prediction, latency_ms, ts, shadow):
        """The features of a request off the common path (first call, strict, a sequence or another
        mapping) as stored: a dict as it is, else a tuple of ``nf`` values; None when rejected
        (counted)."""
        if self._worker is None:
            self._start_worker()
        if self._strict:
            self._validate(features, prediction, latency_ms, ts, shadow)
        if type(features) is dict or type(features) is tuple and len(features) == self._nf:
            return features
        if type(features) is list and len(features) == self._nf:
            return tuple(features)  # a list may change after the call: copied
        if isinstance(features, Mapping):
            try:
                return self._getter(features)
            except KeyError as exc:
                self._reject(f"observe: feature {exc.args[0]!r} missing from the request")
                return None
        if not isinstance(features, (str, bytes)) and _length(features) == self._nf:
            try:
                vals = tuple(features)
            except TypeError:
                vals = ()
            if len(vals) == self._nf:
                return vals
        self._reject(f"observe: features must be a mapping or a sequence of {self._nf} values")
        return None

    def _validate(self, features, prediction, latency_ms, ts, shadow=None) -> None:
        if isinstance(features, Mapping):
            missing = [n for n in self.names if n not in features]
            if missing:
                raise InvalidInputError(f"observe: feature {missing[0]!r} missing from the request")
            vals = [features[n] for n in self.names]
        else:
            vals = list(features)
            if len(vals) != self._nf:
                raise InvalidInputError(f"observe: expected {self._nf} feature values, got {len(vals)}")
        for name, t, v in zip(self.names, self.types, vals):
            if name not in self._text:
                _check_value(name, t, v)
        if self.prediction is not None:
            _check_value(self.prediction, self.pred_type, prediction)
        if self.shadow_prediction is not None:
            _check_value(self.shadow_prediction, self.pred_type, shadow)
        if latency_ms is not None:
            if isinstance(latency_ms, bool) or not isinstance(latency_ms, (int, float)):
                raise InvalidInputError(f"observe: latency {self.latency!r} must be a number, "
                                        f"got {type(latency_ms).__name__}")
            if not (0.0 <= latency_ms < math.inf):
                raise InvalidInputError(f"observe: latency {self.latency!r} must be finite and >= 0, "
                                        f"got {latency_ms!r}")
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
            raise InvalidInputError(f"observe: event time {self.event_time!r} must be a finite number of "
                                    f"seconds, got {ts!r}")

    def _reject(self, error: str) -> None:
        with self._lock:
            self.rejected_early += 1
            self.last_error = error

    def _take_locked(self) -> tuple:
        """Swap a fresh buffer in and return the current one (hold ``_lock``)."""
        full = self._buf
        self._buf = self._free.pop() if self._free else _slots(self.cap)
        self._n = 0
        return full

    def _queue_locked(self) -> bool:
        """Queue the current buffer for the worker if there is room (hold ``_lock``); never waits."""
        if len(self._q.queue) >= QUEUE_DEPTH:  # full: shed without the queue's lock and exception
            return False
        try:
            self._q.put_nowait((self._buf, self._n))
        except queue.Full:
            return False
        self._buf = self._free.pop() if self._free else _slots(self.cap)
        self._n = 0
        self._set_stride()
        return True

    def _set_stride(self) -> None:
        if self._overload == "sample":
            waiting = self._q.qsize()
            self._stride = 1 << (waiting - 1) if waiting > 1 else 1
            self._room = self.cap if self._stride == 1 else 0

    def take_counts(self):
        """``(rejected on the call path, the last such error, shed)`` since the last call."""
        with self._lock:
            n, self.rejected_early = self.rejected_early, 0
            shed, self._shed = self._shed, 0
            return n, self.last_error, shed

    # -- the worker ------------------------------------------------------------------
    def _start_worker(self) -> None:
        with self._wlock:
            if self._worker is not None:
                return
            if not self._background and self._interval <= 0:
                self._worker = _NO_WORKER
                self._ready = not self._strict
                return
            t = threading.Thread(target=_work, args=(weakref.ref(self), self._q, self._interval),
                                 name="fastdrift-monitor-flush", daemon=True)
            try:
                t.start()
            except RuntimeError:  # interpreter shutting down: flush() counts on the calling thread
                self._worker = _NO_WORKER
                self._ready = not self._strict
                return
            self._worker = t
            self._ready = not self._strict

    def start(self) -> None:
        """Start the worker thread now (the label store's timed joins need it without ``observe``)."""
        if self._worker is None:
            self._start_worker()

    def _worker_alive(self) -> bool:
        w = self._worker
        return isinstance(w, threading.Thread) and w.is_alive()

    def _process(self, item) -> bool:
        """Count one queued item (worker, or a flush that has no worker); False for a stop request."""
        try:
            if item is _STOP:
                return False
            if type(item) is threading.Event:  # a flush() marker: everything queued before it is counted
                item.set()
                return True
            try:
                with self._count_lock:
                    self._drain(*item)
            except BaseException as exc:  # kept for the next flush(); the worker keeps serving
                self._error = exc
            return True
        finally:
            self._q.task_done()
            self._set_stride()

    def _tick(self) -> bool:
        """Timed flush (worker): queue the partly filled buffer, count what is queued, call ``on_tick``.

        Returns False when a stop request was met.
        """
        if self._background:
            with self._lock:
                if self._n:
                    self._queue_locked()  # no room: the queue is busy and flows anyway
            for _ in range(self._q.qsize()):  # what is queued now; later buffers wait for the loop
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if not self._process(item):
                    return False
        else:
            with self._lock:
                n = self._n
                full = self._take_locked() if n else None
            if full is not None:
                with self._count_lock:
                    self._drain(full, n)
        if self.on_tick is not None:
            try:
                with self._count_lock:
                    self.on_tick()
            except BaseException as exc:  # pragma: no cover - re-raised at the next flush()
                self._error = exc
        return True

    # -- flushing --------------------------------------------------------------------
    def flush(self) -> None:
        """Count everything buffered or queued before returning (monitor.flush/snapshot/save).

        The caller may wait for the worker (this is never the request path).  Re-raises (once) an
        exception a background flush hit, so it is never silently lost.
        """
        with self._lock:
            n = self._n
            full = self._take_locked() if n else None
        if full is not None:
            self._hand_over(full, n)
        if self._background and threading.current_thread() is self._worker:
            self._drain_queue()  # flush() called back from on_tick: the worker cannot wait for itself
        elif self._background:
            done = threading.Event()
            self._put(done)
            while not done.wait(0.25):
                if not self._worker_alive():
                    self._drain_queue()
        err, self._error = self._error, None
        if err is not None:
            raise err

    def close(self) -> None:
        """Count everything buffered, then stop the worker (an ``observe`` after this starts a new one)."""
        try:
            self.flush()
        finally:
            with self._wlock:
                self._ready = False
                w, self._worker = self._worker, None
            if isinstance(w, threading.Thread) and w.is_alive():
                self._q.put(_STOP)
                if w is not threading.current_thread():
                    w.join()

    def _put(self, item) -> None:
        """Queue ``item`` for the worker, waiting for room (flush/close, never ``observe``)."""
        if self._worker is None:
            self._start_worker()
        while True:
            try:
                self._q.put(item, timeout=0.25)
                return
            except queue.Full:
                if not self._worker_alive():
                    self._drain_queue()

    def _drain_queue(self) -> None:
        """Count what is queued on the calling thread (no worker runs: shutting down)."""
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            self._process(item)

    def _hand_over(self, slots: tuple, n: int) -> None:
        if not self._background:
            with self._count_lock:
                self._drain(slots, n)
            return
        self._put((slots, n))

    def pending(self) -> int:
        with self._lock:
            return self._n

    def _drain(self, slots: tuple, n: int) -> None:
        try:
            batch, rejected, reasons = self.to_batch(slots, n)
        finally:
            _clear(slots, n)
            with self._lock:
                if len(self._free) < _MAX_FREE:
                    self._free.append(slots)
        self._sink(batch, rejected, reasons)

    def to_batch(self, b: tuple, n: int):
        """(RecordBatch of the good rows, number of rejected rows, first rejection reasons)."""
        bad = np.zeros(n, dtype=bool)
        reasons: List[str] = []
        feat, pred, lat, err, rid, ts, shadow, arr = b
        nf, m = self._nf, n * self._nf
        feat = self._flat_features(feat, n, bad, reasons)
        specs = [(name, t, feat, j, m, nf) for j, (name, t) in enumerate(zip(self.names, self.types))]
        if self.prediction is not None:
            specs.append((self.prediction, self.pred_type, pred, 0, n, 1))
        if self.latency is not None:
            specs.append((self.latency, pa.float64(), lat, 0, n, 1))
        if self.error is not None:
            specs.append((self.error, pa.bool_(), [bool(e) for e in err[:n]], 0, n, 1))
        if self.request_id is not None:
            specs.append((self.request_id, pa.string(), [None if r is None else str(r) for r in rid[:n]], 0, n, 1))
        if self.event_time is not None:
            specs.append((self.event_time, pa.float64(), ts, 0, n, 1))
        if self.shadow_prediction is not None:
            specs.append((self.shadow_prediction, self.pred_type, shadow, 0, n, 1))
        if self._arrival is not None:
            specs.append((ARRIVAL, pa.float64(), arr, 0, n, 1))
        text = self._text
        for attempt in range(2):
            good = np.flatnonzero(~bad).tolist() if bad.any() else None
            arrays, names, failed = [], [], False
            for name, t, src, start, stop, step in specs:
                offer_gil()
                col = src[start:stop:step]  # one column of the flat rows (a copy of the references)
                if good is not None:
                    col = [col[i] for i in good]
                if name in text:  # a sequence is not one value: left as it is, it fails and its row is rejected
                    col = [v if v is None or isinstance(v, _NESTED) else str(v).lower() if isinstance(v, bool)
                           else str(v) for v in col]
                arr = _convert(col, t)
                if arr is None:
                    failed = True
                    self._mark_bad(bad, good, col, t, name, reasons)
                arrays.append(arr)
                names.append(name)
            if not failed:
                return pa.RecordBatch.from_arrays(arrays, names=names), int(bad.sum()), reasons
        raise AssertionError("unreachable: second conversion pass failed after removing bad rows")

    def _flat_features(self, rows: list, n: int, bad: np.ndarray, reasons: List[str]) -> list:
        """The feature values of the first ``n`` requests as one flat list (request ``k``'s row is
        ``[k * nf, (k + 1) * nf)``), read from their dicts (or tuples) in chunks of
        :data:`ROWS_PER_SLICE` with the GIL offered between them.  A dict missing a feature
        marks its row bad (a reason kept) and holds ``nf`` Nones."""
        getter, nf = self._getter, self._nf
        flat: list = []
        extend = flat.extend
        for a in range(0, n, ROWS_PER_SLICE):
            offer_gil()
            chunk = rows[a:min(n, a + ROWS_PER_SLICE)]
            start = len(flat)
            try:
                for vals in map(getter, chunk):
                    extend(vals)
                continue
            except (KeyError, TypeError, IndexError):  # a tuple row, or a dict missing a feature
                del flat[start:]
            for i, r in enumerate(chunk, a):
                if type(r) is tuple:
                    extend(r)
                    continue
                try:
                    extend(getter(r))
                except KeyError as exc:
                    extend((None,) * nf)
                    bad[i] = True
                    if len(reasons) < 5:
                        reasons.append(f"observe: feature {exc.args[0]!r} missing from the request")
        return flat

    @staticmethod
    def _mark_bad(bad, good, vals, t, name, reasons) -> None:
        for i, v in enumerate(vals):
            if _convert([v], t) is None:
                bad[i if good is None else good[i]] = True
                if len(reasons) < 5:
                    reasons.append(f"observe: column {name!r} expects {t}, got {type(v).__name__} {v!r:.40}")


_OBSERVE_DOC = """Store one request.  Never raises for bad values unless strict (they are counted at flush).

        ``features``: a dict (kept as it is and read by the worker: do not change it afterwards),
        another mapping, or a sequence of the values in ``names`` order (a tuple is kept as it is).
        The other arguments are stored when the monitor has their column (``prediction``,
        ``latency``, ``error``, ``request_id``, ``event_time``, ``shadow_prediction``), else ignored.

        ``shadow_prediction``: a challenger's prediction of the same request (a monitor with
        ``shadow_prediction`` configured; else it is not stored).

        Never waits for the worker unless ``overload="block"``: when the worker is behind the
        request is shed or sampled out, and counted.
        """

# The request path's source.  {stamp}: the event-time fill; {lists}: the slot lists unpacked (_ for
# the fields not stored); {stores}: one store per stored field.  Only the stores differ between
# buffers: each call pays for the fields its monitor has, not for all of them.
_OBSERVE_SRC = """
def observe(self, features, prediction=None, *, latency_ms=None, error=False, request_id=None,
            ts=None, shadow_prediction=None):
    if not (self._ready and (type(features) is dict or type(features) is tuple and len(features) == self._nf)):
        # off the common case (a dict, or a tuple of the values in order: stored as they are)
        features = self._values(features, prediction, latency_ms, ts, shadow_prediction)
        if features is None:
            return
{stamp}    lock = self._lock
    lock.acquire()  # acquire/release: cheaper than `with` on this path
    try:
        k = self._n
        if k >= self._room:  # full, or sampling (room 0): the rare cases, off the straight line
            k = self._slot_locked(k)
            if k < 0:
                return
        {lists} = self._buf
{stores}        self._n = k + 1
        if k + 1 < self.cap:
            return
        if self._nonblocking:
            self._queue_locked()  # no room: the buffer stays full and the next request retries
            return
        full = self._take_locked()
    finally:
        lock.release()
    self._hand_over(full, self.cap)
"""

#: The request path's names for the slot lists, what it stores in each, and the buffer attribute
#: that holds the field's column (the arrival: its clock), in :data:`_FIELDS` order.
_LISTS = ("feat", "pred", "lat", "err", "rid", "tss", "shadow", "arr")
_STORED = ("features", "prediction", "latency_ms", "error", "request_id", "ts", "shadow_prediction",
           "self._arrival()")
_HAS = ("names", "prediction", "latency", "error", "request_id", "event_time", "shadow_prediction",
        "_arrival")


def _observe_for(stored: Sequence[Optional[bool]]) -> Callable:
    """The request path storing the fields flagged in ``stored`` (:data:`_FIELDS` order; the
    features always; None: stored when the buffer has the field, tested per call).  A field not
    stored keeps its slots None, which ``to_batch`` never reads."""
    stored = (True,) + tuple(stored[1:])
    lists = ", ".join(f if keep is not False else "_" for f, keep in zip(_LISTS, stored))
    stores = "".join(f"        {f}[k] = {v}\n" if keep else
                     f"        if self.{has} is not None:\n            {f}[k] = {v}\n"
                     for f, v, has, keep in zip(_LISTS, _STORED, _HAS, stored) if keep is not False)
    stamp = "    if ts is None and self._stamp:\n        ts = _now()\n" if stored[5] is not False else ""
    scope = {"_now": _now}
    exec(_OBSERVE_SRC.format(stamp=stamp, lists=lists, stores=stores), scope)  # our own template only
    fn = scope["observe"]
    fn.__doc__ = _OBSERVE_DOC
    fn.__qualname__ = "ObserveBuffer.observe"
    fn.__module__ = __name__
    return fn


# The class's own: every field the buffer has, tested per call (each instance takes its own).
ObserveBuffer.observe = _observe_for((True,) + (None,) * (len(_FIELDS) - 1))


def _work(ref: "weakref.ref", q: "queue.Queue", interval: float) -> None:
    """The worker loop.  It holds its buffer only while working, so a monitor nobody references
    can be collected (the loop then ends at its next wake-up)."""
    _lower_priority()
    next_tick = time.monotonic() + interval if interval > 0 else math.inf
    while True:
        try:
            item = q.get(timeout=min(5.0, max(0.0, next_tick - time.monotonic())))
        except queue.Empty:
            item = None
        if item is _STOP:
            q.task_done()
            return
        buf = ref()
        if buf is None:
            return
        try:
            if item is not None and not buf._process(item):
                return
            if time.monotonic() >= next_tick:
                if not buf._tick():
                    return
                next_tick = time.monotonic() + interval
        finally:
            del buf


def _before_fork() -> None:
    # wait for our workers to finish the batch they count: the child must not inherit a held lock
    for b in list(_live):
        if b._count_lock.acquire(timeout=10.0):
            _held.append(b)


def _after_fork_parent() -> None:
    while _held:
        _held.pop()._count_lock.release()


def _after_fork_child() -> None:
    _held.clear()
    for b in list(_live):
        b._reset()  # the parent's buffered requests are the parent's to count


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                        after_in_child=_after_fork_child)


#: Nice increment of the worker thread (Linux: per thread): the request threads come first.
WORKER_NICE = int(os.environ.get("FASTDRIFT_WORKER_NICE", "10"))


def _lower_priority() -> None:
    """Run the calling (worker) thread at a lower scheduling priority than the request threads.

    The kernel tends to wake a thread on the core of the thread that woke it; a worker woken by a
    request thread then shares that core and, at equal priority, preempts the request in the
    middle of ``observe``.  At a lower priority it waits for an idle core instead, and under
    sustained overload the worker, not the requests, falls behind (what ``overload`` handles)."""
    if WORKER_NICE <= 0 or not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICE))
    except OSError:  # not permitted here: the default priority
        pass


def offer_gil() -> None:
    """Called between the worker's steps: once this thread has run
    :data:`GIL_SLICE` seconds since it last offered, let a request thread waiting for the GIL run now
    rather than after the interpreter's switch interval (5 ms by default)."""
    now = time.perf_counter()
    if now - getattr(_since, "t", 0.0) >= GIL_SLICE:
        time.sleep(0)  # releases the GIL; a waiting thread takes it
        _since.t = time.perf_counter()


def _length(x) -> int:
    try:
        return len(x)
    except TypeError:
        return -1


def _convert(vals, t: pa.DataType) -> Optional[pa.Array]:
    try:
        # from_pandas=False: NaN stays NaN (counted as NaN), None becomes null.
        return pa.array(vals, type=t, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return None


def _check_value(name: str, t: pa.DataType, v) -> None:
    if v is None:
        return
    if _convert([v], t) is None:
        raise InvalidInputError(f"observe: column {name!r} expects {t}, got {type(v).__name__} {v!r:.40}")
