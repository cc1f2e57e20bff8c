"""The observe() request path: requests appended to one list, counted in micro-batches by one
worker thread per monitor.

The request path (:meth:`ObserveBuffer.observe`) does no conversion and no kernel work, takes no
lock and never waits for the worker: it appends the request's fields to the buffer's one list in a
single ``list.extend`` of a tuple (one C call, so the fields of concurrent requests never
interleave), after one comparison of the list's length with a mark.  A buffer's request path is
generated for the fields its monitor has (feature values, prediction, latency, error flag,
request id, event time, shadow prediction, arrival time), so a call stores only those.  When
``capacity`` requests are pending, the call that crosses the mark wakes the worker, a daemon
thread started at the first ``observe`` and stopped by :meth:`ObserveBuffer.close`; it takes the
pending requests ``capacity`` at a time from the front of the list (a slice and a ``del`` under
the buffer's lock, which only the rare paths take), converts each take into one Arrow RecordBatch
and hands it to the sink, which counts it like an ``update()`` batch (``background=False``: the
thread that filled the buffer counts it inline).  Cost per call: ``bench/bench_monitor.py``
(``monitor-observe``); tail latency under load: ``bench/bench_observe_tail.py``.

Staleness: every ``flush_interval`` seconds the worker also counts the partly filled buffer and
calls ``on_tick`` (the monitor evaluates the windows closed meanwhile), so a request is counted
within about one interval at any request rate, not only when ``capacity`` requests have piled up.

Overload, when the worker falls behind (``overload``); "waiting" is the number of full buffers
(``capacity`` requests each) pending beside the one the worker counts:

* ``"shed"``: with :data:`QUEUE_DEPTH` buffers waiting and the current one full, a request is not
  stored; it is counted in the shed counter (:meth:`ObserveBuffer.take_counts`).
* ``"sample"``: as the backlog grows, only 1 request in 2**(waiting - 1) is stored, the others are
  counted as shed; a full backlog sheds as above.  The counted rows thin out evenly over time
  instead of missing one contiguous burst.
* ``"block"``: the request thread waits for the worker (back-pressure).

The mark is what keeps the common call to one comparison: below it a call appends and returns;
at or above it (a full buffer the worker has not been told of, the backlog's limit, sampling) the
call takes the rare path under the lock.

Fork: a child process starts with an empty buffer, zero counters and no worker (its first
``observe`` starts its own); the requests the parent had buffered are counted by the parent only.
Before a fork the parent waits for its worker to finish the batch it is counting, so the child
never inherits a lock held by that thread.

A request's features are not read on the call: the buffer keeps the caller's dict (or tuple of
the values in feature order) itself, another sequence or mapping is copied into a tuple first, and
the worker reads the values, in slices of :data:`ROWS_PER_SLICE` requests with the GIL offered
between them.  So the caller must not change a dict it passed to ``observe`` afterwards (pass a
fresh dict per request, or ``dict(d)`` of one it reuses); its values are read within about one
``flush_interval``.
A dict missing a feature is rejected by the worker (counted, named in the reasons).
The request path allocates nothing that outlives the call: the tuple it extends the list with is
freed on return, the list keeps references only, so buffered requests do not fill the
collector's young generation and make request threads run collections
(``bench/bench_observe_tail.py`` counts them).  A full backlog sheds without touching the queue.
At flush each column is one ``pa.array(..., type=...)``, which
converts 4096 values in C and is *strict* (a string where a float is expected fails, where numpy
would silently parse ``"1.5"``).  A column that fails is re-checked value by value and only the
offending rows are rejected (counted, never raised) - the rest of the micro-batch goes through.
"""
from __future__ import annotations

import math
import os
import queue
import sys
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
_WAKE = object()  # queued by the request that fills a buffer: the worker counts the full buffers
_NO_WORKER = object()  # no thread needed (inline counting without a timer), or none could start
#: Seconds the worker holds the GIL before it offers it to request threads (:func:`offer_gil`).
GIL_SLICE = 0.00005
#: Requests whose feature values the worker reads between two GIL offers (about 50 us of work).
ROWS_PER_SLICE = 256
_since = threading.local()
_live: "weakref.WeakSet[ObserveBuffer]" = weakref.WeakSet()  # reset in a forked child
_held: list = []  # buffers whose counting lock the forking thread holds


class ObserveBuffer:
    """Thread-safe per-request intake.

    Parameters
    ----------
    names : feature names, in the order a sequence passed to ``observe`` must follow
    types : Arrow type of each feature column (float64 for numeric features)
    prediction, latency, error, request_id, event_time : output column names or None
    pred_type : Arrow type of the prediction column
    capacity : requests per micro-batch (default 4096: a flush every 4096 calls amortises the batch
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
        self.on_tick = on_tick
        # the fields this buffer stores, in _FIELDS order: a request is `width` items of the list
        self._keep = (True, prediction is not None, latency is not None, error is not None,
                      request_id is not None, event_time is not None, shadow_prediction is not None,
                      arrival is not None)
        self._width = sum(self._keep)
        self._full = self.cap * self._width               # list items of one full buffer
        self._limit = (QUEUE_DEPTH + 1) * self._full      # items pending before the overload policy
        # where observe sheds at once ("shed" and "sample" with a worker counting; strict validates first)
        self._shed_at = (self._limit if background and overload != "block" and not strict else sys.maxsize)
        # the request path for the fields this buffer stores (to_batch reads only those)
        self.observe = _observe_for(self._keep).__get__(self)
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        """Fresh request-path state: new locks, an empty buffer and queue, zero counters, no worker."""
        self._lock = threading.Lock()        # the rare paths, the counters, the takes; never held while counting
        self._room_cv = threading.Condition(self._lock)  # "block": a take made room
        self._wlock = threading.Lock()       # starting / stopping the worker
        self._count_lock = threading.RLock() # held while a take is counted (a fork waits for it)
        self._rows: list = []                # `_width` items per request, oldest first
        self._q: "queue.SimpleQueue" = queue.SimpleQueue()  # wake-ups, flush markers, stop
        self._worker = None
        self._ready = False       # worker started and not strict: the common path may open (the mark)
        self._told = False        # the worker was woken for the full buffers pending
        self.rejected_early = 0   # rejected on the call path (missing key); flush rejections go to the sink
        self.last_error: Optional[str] = None
        self._shed = 0            # requests shed since the last take_counts()
        self._seq = 0             # requests seen while sampling
        self._stride = 1          # store 1 request in _stride ("sample" while the worker is behind)
        self._mark = 0            # observe's one test: list items before the rare path (0: every call rare)
        self._error: Optional[BaseException] = None

    # -- request path -------------------------------------------------------------
    # observe: the common path, generated by _observe_for (below the class) for the fields this
    # buffer stores; everything else goes through _rare.

    def _rare(self, features, prediction, latency_ms, error, request_id, ts, shadow) -> None:
        """A request off the common path: the first call (starts the worker), strict, features
        that are not a dict or a tuple in order, a full buffer, the backlog's limit, sampling."""
        features = self._values(features, prediction, latency_ms, ts, shadow)
        if features is None:
            return
        keep = self._keep
        if keep[5] and ts is None and self._stamp:
            ts = _now()
        vals = (features, prediction, latency_ms, error, request_id, ts, shadow,
                self._arrival() if keep[7] else None)
        self._admit(tuple(v for v, k in zip(vals, keep) if k))

    def _admit(self, record: tuple) -> None:
        """Store one request's fields (the rare path): the overload policy, then the append; wake
        the worker for a full buffer, or (no background counting) count it on this thread."""
        while True:
            with self._lock:
                if len(self._rows) < self._limit or not self._background:
                    if self._stride > 1:  # sampling: 1 request in _stride is stored
                        self._seq += 1
                        if self._seq % self._stride:
                            self._shed += 1
                            return
                    self._rows.extend(record)
                    full = len(self._rows) >= self._full
                    if full and self._background and not self._told:
                        self._told = True
                        self._q.put(_WAKE)
                    self._set_mark()
                    break
                if self._overload != "block":  # the backlog is full
                    self._shed += 1
                    return
                if self._worker_alive():
                    self._room_cv.wait(0.25)
                    continue
            self._count_pending(everything=True)  # no worker to wait for (shutting down): count here
        if full and not self._background:
            self._count_pending(everything=False)

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

    def _set_mark(self) -> None:
        """Where the common path stops (hold ``_lock``): at the request that fills the first buffer
        until the worker is woken for it, then where the overload policy starts (the backlog's
        limit; for ``"sample"``, 2 buffers waiting), and at 0 (every call takes the rare path) while
        ``"sample"`` thins the requests out.  Without background counting: at the request that
        fills a buffer, which its thread counts.  At 0 too while the common path is closed (no
        worker yet, strict, closed)."""
        if not self._ready:
            self._mark = 0
            return
        if not self._background:
            self._mark = self._full - self._width
            return
        if self._overload == "sample":
            waiting = len(self._rows) // self._full
            self._stride = 1 << (waiting - 1) if waiting > 1 else 1
            if self._stride > 1:
                self._mark = 0
                return
        if not self._told:
            self._mark = self._full - self._width
        elif self._overload == "sample":
            self._mark = 2 * self._full
        else:
            self._mark = self._limit

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

    def _take(self, everything: bool) -> Optional[list]:
        """The oldest pending requests, at most one buffer's worth (``everything``: also a partly
        filled one; else only a full one), removed from the list; None when there are none.  When
        fewer than a full buffer remain, the next request to fill one wakes the worker again."""
        with self._lock:
            rows = self._rows
            n = len(rows)
            m = self._full if n >= self._full else n if everything else 0
            if m:
                take = rows[:m]
                del rows[:m]
            else:
                take = None
            if len(rows) < self._full:
                self._told = False
            self._set_mark()
            self._room_cv.notify_all()
            return take

    def _count_pending(self, everything: bool) -> None:
        """Count the pending requests in takes of at most one buffer, oldest first (the worker, a
        flush, or the filling thread without background counting): the full buffers, or
        (``everything``) all of them.  An exception in a take is kept for the next :meth:`flush`."""
        while True:
            with self._count_lock:  # takes and their counting in order, whoever counts
                take = self._take(everything)
                if take is None:
                    return
                try:
                    self._drain(take)
                except BaseException as exc:  # kept for the next flush(); the worker keeps serving
                    self._error = exc

    def _process(self, item) -> bool:
        """One item of the worker's queue; False for a stop request."""
        if item is _STOP:
            return False
        if type(item) is threading.Event:  # a flush() marker: everything stored before it is counted
            self._count_pending(everything=True)
            item.set()
            return True
        self._count_pending(everything=False)  # _WAKE
        return True

    def _tick(self) -> bool:
        """Timed flush (worker): count everything pending, then call ``on_tick``."""
        self._count_pending(everything=True)
        if self.on_tick is not None:
            try:
                with self._count_lock:
                    self.on_tick()
            except BaseException as exc:  # pragma: no cover - re-raised at the next flush()
                self._error = exc
        return True

    # -- flushing --------------------------------------------------------------------
    def flush(self) -> None:
        """Count everything stored before returning (monitor.flush/snapshot/save).

        The caller may wait for the worker (this is never the request path).  Re-raises (once) an
        exception a background flush hit, so it is never silently lost.
        """
        done = threading.Event()
        if (self._background and self._worker_alive()
                and threading.current_thread() is not self._worker):
            self._q.put(done)  # the worker counts in order: what it holds, then everything stored
            while not done.wait(0.25):
                if not self._worker_alive():
                    break
        if not done.is_set():  # no worker, it stopped meanwhile, or flush() called back from on_tick
            self._count_pending(everything=True)
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
                with self._lock:
                    self._mark = 0
                w, self._worker = self._worker, None
            if isinstance(w, threading.Thread) and w.is_alive():
                self._q.put(_STOP)
                if w is not threading.current_thread():
                    w.join()

    def pending(self) -> int:
        """Requests stored and not yet taken for counting."""
        return len(self._rows) // self._width

    def _drain(self, take: list) -> None:
        """Convert one take into a micro-batch and hand it to the sink (hold ``_count_lock``)."""
        batch, rejected, reasons = self.to_batch(*self.columns(take))
        self._sink(batch, rejected, reasons)

    def columns(self, take: list):
        """``(columns, n)`` of a take of ``n`` requests (items of the list, oldest first): one list
        per field in :data:`_FIELDS` order, None for a field not stored, as :meth:`to_batch` reads."""
        width = self._width
        cols, i = [], 0
        for keep in self._keep:  # a field's column: every width-th item from its place
            cols.append(take[i::width] if keep else None)
            i += keep
        return tuple(cols), len(take) // width

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

# The common path's source.  {stamp}: the event-time fill; {record}: the stored fields, in
# _FIELDS order (for a field tested per call, a starred empty or one-value tuple).  Only the record
# differs between buffers: each call pays for the fields its monitor has, not for all of them.
_OBSERVE_SRC = """
def observe(self, features, prediction=None, *, latency_ms=None, error=False, request_id=None,
            ts=None, shadow_prediction=None):
    rows = self._rows
    n = len(rows)
    if n < self._mark and (type(features) is dict or type(features) is tuple and len(features) == self._nf):
{stamp}        rows.extend(({record}))  # one C call: a request's fields never interleave with another's
        return
    if n >= self._shed_at:  # the backlog is full: shed, counted, before anything else
        lock = self._lock
        lock.acquire()
        self._shed += 1
        lock.release()
        return
    self._rare(features, prediction, latency_ms, error, request_id, ts, shadow_prediction)
"""

#: What the request path stores for each field, and the buffer attribute that holds the field's
#: column (the arrival: its clock), in :data:`_FIELDS` order.
_STORED = ("features", "prediction", "latency_ms", "error", "request_id", "ts", "shadow_prediction",
           "self._arrival()")
_HAS = ("names", "prediction", "latency", "error", "request_id", "event_time", "shadow_prediction",
        "_arrival")


def _observe_for(stored: Sequence[Optional[bool]]) -> Callable:
    """The common request path storing the fields flagged in ``stored`` (:data:`_FIELDS` order;
    the features always; None: stored when the buffer has the field, tested per call).  The rare
    path (:meth:`ObserveBuffer._rare`) stores the same fields by the buffer's own flags."""
    stored = (True,) + tuple(stored[1:])
    record = "".join(f"{v}, " if keep else f"*(({v},) if self.{has} is not None else ()), "
                     for v, has, keep in zip(_STORED, _HAS, stored) if keep is not False)
    stamp = ("        if ts is None and self._stamp:\n            ts = _now()\n"
             if stored[5] is not False else "")
    scope = {"_now": _now}
    exec(_OBSERVE_SRC.format(stamp=stamp, record=record.rstrip(" ")), scope)  # our own template only
    fn = scope["observe"]
    fn.__doc__ = _OBSERVE_DOC
    fn.__qualname__ = "ObserveBuffer.observe"
    fn.__module__ = __name__
    return fn


# The class's own: every field the buffer has, tested per call (each instance takes its own).
ObserveBuffer.observe = _observe_for((True,) + (None,) * (len(_FIELDS) - 1))


def _work(ref: "weakref.ref", q: "queue.SimpleQueue", interval: float) -> None:
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
