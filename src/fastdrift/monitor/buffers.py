"""Preallocated observe() buffers, flushed through the kernels in micro-batches.

The request path of :meth:`ObserveBuffer.observe` does no conversion and no
kernel work: under a lock it stores references into preallocated slot arrays
(one per field: feature row, prediction, latency, error flag, request id,
event time) and bumps a counter.  When ``capacity`` slots are full the
calling thread swaps in the spare buffer and queues the full one (the lock is
released first); a background worker converts it into one Arrow RecordBatch,
which the monitor ingests like any ``update()`` batch (``background=False``:
the filling thread does it inline).  Cost per call: ``bench/bench_monitor.py``
(``monitor-observe``).

Feature rows are stored as the caller's sequence (or the tuple an
``itemgetter`` makes of a dict) and transposed into Arrow columns at flush:
one ``pa.array(..., type=...)`` per column, which converts 4096 values in C
and is *strict* (a string where a float is expected fails, where numpy would
silently parse ``"1.5"``).  A column that fails is re-checked value by value
and only the offending rows are rejected (counted, never raised) - the rest of
the micro-batch goes through.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from operator import itemgetter
from collections.abc import Mapping
from typing import Callable, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from ..errors import InvalidInputError

__all__ = ["ObserveBuffer"]

_FIELDS = ("feat", "pred", "lat", "err", "rid", "ts")


class _Slots:
    __slots__ = _FIELDS

    def __init__(self, cap: int):
        for f in _FIELDS:
            setattr(self, f, np.empty(cap, dtype=object))

    def clear(self, n: int) -> None:
        for f in _FIELDS:
            getattr(self, f)[:n] = None  # drop references so buffered objects can be freed


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
    """

    def __init__(self, names: Sequence[str], types: Sequence[pa.DataType], *, prediction, pred_type,
                 latency, error, request_id, event_time, capacity: int,
                 sink: Callable, stamp_time: bool, strict: bool, background: bool = True):
        self.names = list(names)
        self.types = list(types)
        self._numeric = [pa.types.is_floating(t) for t in self.types]
        self.prediction, self.pred_type = prediction, pred_type
        self.latency, self.error, self.request_id, self.event_time = latency, error, request_id, event_time
        self.cap = int(capacity)
        self._sink = sink
        self._stamp = stamp_time
        self._strict = strict
        nf = len(self.names)
        self._getter = itemgetter(*self.names) if nf > 1 else (lambda d, _k=self.names[0]: (d[_k],))
        self._nf = nf
        self._lock = threading.Lock()
        self._buf, self._spare = _Slots(self.cap), _Slots(self.cap)
        self._n = 0
        self.rejected_early = 0   # rejected on the call path (missing key); flush rejections go to the sink
        self.last_error: Optional[str] = None
        # Background flushing: full buffers go through a bounded FIFO to one worker thread, so a
        # request thread never converts or counts (it blocks only if 4 micro-batches are already
        # waiting: back-pressure instead of unbounded memory).  One worker keeps arrival order.
        self._background = background
        self._q: "queue.Queue" = queue.Queue(maxsize=4)
        self._wlock = threading.Lock()
        self._worker: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    # -- request path -------------------------------------------------------------
    def observe(self, features, prediction=None, *, latency_ms=None, error=False, request_id=None,
                ts=None) -> None:
        """Store one request.  Never raises for bad values unless strict (they are counted at flush)."""
        if self._strict:
            self._validate(features, prediction, latency_ms, ts)
        if type(features) is dict or (not isinstance(features, (list, tuple)) and isinstance(features, Mapping)):
            try:
                features = self._getter(features)
            except KeyError as exc:
                with self._lock:
                    self.rejected_early += 1
                    self.last_error = f"observe: feature {exc.args[0]!r} missing from the request"
                return
        if ts is None and self._stamp:
            ts = time.time()
        with self._lock:
            k = self._n
            b = self._buf
            b.feat[k] = features
            b.pred[k] = prediction
            b.lat[k] = latency_ms
            b.err[k] = error
            b.rid[k] = request_id
            b.ts[k] = ts
            if k + 1 < self.cap:
                self._n = k + 1
                return
            full = b
            # the spare is out while another thread converts it: then allocate (rare; bounded by threads)
            self._buf = self._spare if self._spare is not None else _Slots(self.cap)
            self._spare = None
            self._n = 0
        self._hand_over(full, self.cap)

    def _validate(self, features, prediction, latency_ms, ts) -> None:
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
            _check_value(name, t, v)
        if self.prediction is not None:
            _check_value(self.prediction, self.pred_type, prediction)
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

    def take_rejected(self):
        """``(requests rejected on the call path since the last call, the last such error)``."""
        with self._lock:
            n, self.rejected_early = self.rejected_early, 0
            return n, self.last_error

    # -- flushing --------------------------------------------------------------------
    def flush(self) -> None:
        """Count everything buffered or in flight before returning (monitor.flush/snapshot/save).

        Re-raises (once) an exception a background flush hit, so it is never silently lost.
        """
        with self._lock:
            n = self._n
            full = None
            if n:
                full = self._buf
                self._buf, self._spare = (self._spare or _Slots(self.cap)), None
                self._n = 0
        if full is not None:
            self._hand_over(full, n)
        if self._background:
            self._q.join()
        err, self._error = self._error, None
        if err is not None:
            raise err

    def _hand_over(self, slots: "_Slots", n: int) -> None:
        if not self._background:
            self._drain(slots, n)
            return
        self._q.put((slots, n))  # blocks only when 4 micro-batches wait (back-pressure)
        with self._wlock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="fastdrift-monitor-flush",
                                                daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            try:
                slots, n = self._q.get(timeout=2.0)
            except queue.Empty:
                with self._wlock:  # exit when idle; a producer that put after this check starts a new one
                    if self._q.empty():
                        self._worker = None
                        return
                continue
            try:
                self._drain(slots, n)
            except BaseException as exc:  # kept for the next flush(); the worker keeps serving
                self._error = exc
            finally:
                self._q.task_done()

    def pending(self) -> int:
        with self._lock:
            return self._n

    def _drain(self, slots: _Slots, n: int) -> None:
        try:
            batch, rejected, reasons = self.to_batch(slots, n)
        finally:
            slots.clear(n)
            with self._lock:
                if self._spare is None:
                    self._spare = slots
        self._sink(batch, rejected, reasons)

    def to_batch(self, b: _Slots, n: int):
        """(RecordBatch of the good rows, number of rejected rows, first rejection reasons)."""
        bad = np.zeros(n, dtype=bool)
        reasons: List[str] = []
        rows = b.feat[:n].tolist()
        for i, r in enumerate(rows):
            try:
                if len(r) != self._nf:
                    raise TypeError
            except TypeError:
                bad[i] = True
                if len(reasons) < 5:
                    reasons.append(f"observe: features must be a mapping or a sequence of {self._nf} values")
        specs = [(name, t, None) for name, t in zip(self.names, self.types)]
        extra = []
        if self.prediction is not None:
            extra.append((self.prediction, self.pred_type, b.pred[:n].tolist()))
        if self.latency is not None:
            extra.append((self.latency, pa.float64(), b.lat[:n].tolist()))
        if self.error is not None:
            extra.append((self.error, pa.bool_(), [bool(e) for e in b.err[:n].tolist()]))
        if self.request_id is not None:
            extra.append((self.request_id, pa.string(),
                          [None if r is None else str(r) for r in b.rid[:n].tolist()]))
        if self.event_time is not None:
            extra.append((self.event_time, pa.float64(), b.ts[:n].tolist()))
        for attempt in range(2):
            good = np.flatnonzero(~bad) if bad.any() else None
            use = rows if good is None else [rows[i] for i in good]
            cols = list(zip(*use)) if use else [()] * self._nf
            arrays, names, failed = [], [], False
            for j, (name, t, _) in enumerate(specs):
                arr = _convert(cols[j], t)
                if arr is None:
                    failed = True
                    self._mark_bad(bad, good, cols[j], t, name, reasons)
                arrays.append(arr)
                names.append(name)
            for name, t, vals in extra:
                vals = vals if good is None else [vals[i] for i in good]
                arr = _convert(vals, t)
                if arr is None:
                    failed = True
                    self._mark_bad(bad, good, vals, t, name, reasons)
                arrays.append(arr)
                names.append(name)
            if not failed:
                return pa.RecordBatch.from_arrays(arrays, names=names), int(bad.sum()), reasons
        raise AssertionError("unreachable: second conversion pass failed after removing bad rows")

    @staticmethod
    def _mark_bad(bad, good, vals, t, name, reasons) -> None:
        for i, v in enumerate(vals):
            if _convert([v], t) is None:
                bad[i if good is None else good[i]] = True
                if len(reasons) < 5:
                    reasons.append(f"observe: column {name!r} expects {t}, got {type(v).__name__} {v!r:.40}")


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
