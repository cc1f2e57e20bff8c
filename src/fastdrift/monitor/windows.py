"""Assigning rows to panes, and closing windows assembled from panes.

A window is ``k = size / slide`` consecutive panes (``k = 1``: tumbling).
Rows go to exactly one pane; a window is never re-scanned: when a pane closes,
its window is the merge of the ring of the ``k - 1`` previously closed panes
and this one (merging sketches costs O(bins), not O(rows)).  Sliding windows
are emitted from the first closed pane on, so the first ``k - 1`` windows
cover fewer than ``k`` panes (their ``window_start`` says so).

* ``by="rows"``: pane ``p`` holds rows ``[p·pane, (p+1)·pane)`` of the
  arrival order; window bounds are row sequence numbers.
* ``by="time"``: pane ``p`` holds event times ``[p·pane, (p+1)·pane)``
  seconds; the watermark is the newest event time minus ``allowed_lateness``
  and a pane closes when its end is at or below the watermark.  An event
  whose pane already closed is *dropped*: counted (``dropped_late`` of the
  next window emitted) and not added to any sketch.  Gaps without traffic
  close as empty windows (up to :data:`MAX_EMPTY_PANES` in a row; longer
  gaps are skipped, since a day-long outage would otherwise emit thousands of
  empty windows at once).  With ``idle_timeout``, :meth:`Windower.idle` lets event time run on
  with the wall clock once no newer event has arrived for that long, so an outage closes its
  windows (empty) as it goes instead of none at all.

Rows rejected as bad input, late drops and requests shed by ``observe`` are
attributed to the next window emitted, so each is counted in exactly one
closed report.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import codec
from ..adapters.segments import Segmenter
from ..errors import CorruptStateError
from ..sketches.base import MAX_COUNT
from .config import WindowSpec
from .signals import Totals, WindowSketch

__all__ = ["Windower", "ClosedWindow", "MAX_EMPTY_PANES"]

MAX_EMPTY_PANES = 100

ClosedWindow = Tuple[float, float, WindowSketch, float]  # start, end, merged sketch, span seconds


class Windower:
    """Pane bookkeeping for one monitor.  Not thread-safe: the monitor holds its state lock."""

    def __init__(self, spec: WindowSpec, new_sketch: Callable[[], WindowSketch], lifetime: Optional[Totals] = None):
        self.spec = spec
        self.by_time = spec.by == "time"
        self.pane = float(spec.pane) if self.by_time else int(spec.pane)
        self.k = spec.panes_per_window
        self.new_sketch = new_sketch
        self.open: Dict[int, WindowSketch] = {}
        self.ring: deque = deque()  # (pane id, sketch) of the last k - 1 closed panes
        self.next_close: Optional[int] = None
        self.max_ts = -math.inf
        self._idle_anchor = (-math.inf, -math.inf, None)  # (event time, wall clock, max_ts set by idle)
        self.row_seq = 0           # rows assigned so far (arrival order; also the evidence key counter)
        self.pending_dropped = 0
        self.pending_rejected = 0
        self.lifetime = lifetime   # every closed pane is added to it (exported counters); not saved
        self.dropped_total = 0     # late rows dropped since this object was created; not saved
        self.pending_shed = 0      # observe() requests shed; kept in checkpoints by the Monitor
        self.extras: Dict[int, Tuple[int, int, int]] = {}  # pane id -> (dropped, rejected, shed) due at its close
        self.closed_log: Optional[list] = None  # a spool's: (pane id, sketch, dropped, rejected, shed) closed
        self.on_pane_closed: Optional[Callable[[int, WindowSketch], None]] = None  # the label store's
        self.segmenter: Optional[Segmenter] = None  # rows -> segment keys; its keys are saved with the panes

    # -- assignment ------------------------------------------------------------
    def pane_sketch(self, pid: int) -> WindowSketch:
        ws = self.open.get(pid)
        if ws is None:
            ws = self.open[pid] = self.new_sketch()
        return ws

    def split_rows(self, n: int) -> List[Tuple[int, int, int]]:
        """Row windows: (pane id, lo, hi) slices of the next ``n`` rows; advances the row counter."""
        out, lo, seq = [], 0, self.row_seq
        while lo < n:
            pid = seq // self.pane
            take = min(n - lo, (pid + 1) * self.pane - seq)
            out.append((pid, lo, lo + take))
            lo += take
            seq += take
        self.row_seq = seq
        return out

    def split_times(self, ts: np.ndarray):
        """Time windows: (pane id, rows) groups - rows is None (all), a slice, or an index array -
        and the number of late rows.

        ``ts`` are event times in seconds (finite).  Rows whose pane has closed are left out and
        counted as dropped.
        """
        pids = np.floor(ts / self.pane).astype(np.int64)
        late = 0
        keep = None
        if self.next_close is not None:
            late_mask = pids < self.next_close
            late = int(late_mask.sum())
            if late:
                keep = np.flatnonzero(~late_mask)
                pids = pids[keep]
        self.pending_dropped += late
        self.dropped_total += late
        groups = []
        if pids.size:
            lo, hi = int(pids.min()), int(pids.max())
            if lo == hi:  # the common case: a batch inside one pane, no gather
                groups.append((lo, keep))
            elif keep is None and np.all(pids[1:] >= pids[:-1]):
                # in-order event times (the usual case): contiguous slices, no gather
                cuts = np.flatnonzero(pids[1:] != pids[:-1]) + 1
                starts = np.concatenate(([0], cuts))
                ends = np.concatenate((cuts, [pids.size]))
                for a, b in zip(starts.tolist(), ends.tolist()):
                    groups.append((int(pids[a]), slice(a, b)))
            else:
                order = np.argsort(pids, kind="stable")
                sp = pids[order]
                bounds = np.flatnonzero(np.diff(sp)) + 1
                for idx in np.split(order, bounds):
                    rows = idx if keep is None else keep[idx]
                    groups.append((int(pids[idx[0]]), rows))
            self.max_ts = max(self.max_ts, float(ts.max()))
        return groups, late

    # -- closing ---------------------------------------------------------------
    def _emit(self, pid: int, ws: WindowSketch) -> ClosedWindow:
        if self.lifetime is not None:
            self.lifetime.add(ws)
        if self.on_pane_closed is not None:
            self.on_pane_closed(pid, ws)
        while self.ring and self.ring[0][0] <= pid - self.k:
            self.ring.popleft()
        parts = list(self.ring) + [(pid, ws)]
        merged = self.new_sketch().merge_all([s for _, s in parts])
        if self.extras:  # counts other processes attributed to this pane's window (a fleet's merge)
            d, r, s = self.extras.pop(pid, (0, 0, 0))
            self.pending_dropped, self.pending_rejected = self.pending_dropped + d, self.pending_rejected + r
            self.pending_shed += s
        merged.dropped_late += self.pending_dropped
        merged.rejected += self.pending_rejected
        merged.shed += self.pending_shed
        if self.closed_log is not None:
            self.closed_log.append((pid, ws, self.pending_dropped, self.pending_rejected, self.pending_shed))
        self.pending_dropped = self.pending_rejected = self.pending_shed = 0
        start, end = parts[0][0] * self.pane, (pid + 1) * self.pane
        if self.by_time:
            span = float(end - start)
        else:
            span = merged.ts_max - merged.ts_min if merged.ts_max > merged.ts_min else math.nan
        if self.k > 1:
            self.ring.append((pid, ws))
            while len(self.ring) > self.k - 1:
                self.ring.popleft()
        return (start, end, merged, span)

    def close_ready(self) -> List[ClosedWindow]:
        """Close every pane that is complete; return the windows they end (oldest first)."""
        out = []
        if not self.by_time:
            full = sorted(p for p, ws in self.open.items() if (p + 1) * self.pane <= self.row_seq)
            for p in full:
                out.append(self._emit(p, self.open.pop(p)))
            return out
        if not self.open and self.next_close is None:
            return out
        watermark = self.max_ts - self.spec.allowed_lateness
        if self.next_close is None:
            # nothing closed yet, so nothing is late: an early event of any pane still counts
            first = min(self.open)
            if (first + 1) * self.pane > watermark:
                return out
            self.next_close = first
        empty_run = 0
        while (self.next_close + 1) * self.pane <= watermark:
            p = self.next_close
            ws = self.open.pop(p, None)
            if ws is None:
                empty_run += 1
                if empty_run > MAX_EMPTY_PANES:
                    # skip the rest of a long gap straight to the next pane holding data
                    nxt = min(self.open) if self.open else math.floor(watermark / self.pane)
                    self.next_close = max(p + 1, nxt)
                    self.ring.clear()
                    continue
                ws = self.new_sketch()
            else:
                empty_run = 0
            out.append(self._emit(p, ws))
            self.next_close = p + 1
        return out

    def idle(self, now: float) -> List[ClosedWindow]:
        """Advance event time with the wall clock ``now`` when no newer event time has been seen
        for ``idle_timeout`` seconds, and close what that completes (time windows; else nothing).

        The clock is read at each call (the worker's timed flush, a read): a new newest event time
        anchors (event time, now); idle for ``idle_timeout`` seconds, the newest event time becomes
        the anchor's plus the wall-clock seconds since -- never less than it was."""
        timeout = self.spec.idle_timeout
        if timeout is None or not self.by_time or self.max_ts == -math.inf:
            return []
        ts0, c0, set_to = self._idle_anchor
        if self.max_ts != set_to:  # an event moved event time (or the first call): a new anchor
            self._idle_anchor = (self.max_ts, now, self.max_ts)
            return []
        if now - c0 < timeout:
            return []
        self.max_ts = max(self.max_ts, ts0 + (now - c0))
        self._idle_anchor = (ts0, c0, self.max_ts)
        return self.close_ready()

    def open_window(self) -> Tuple[float, float, WindowSketch, float]:
        """The window in progress: ring of closed panes + every open pane, merged (copies)."""
        parts = list(self.ring) + sorted(self.open.items())
        merged = self.new_sketch().merge_all([s for _, s in parts])
        merged.dropped_late += self.pending_dropped
        merged.rejected += self.pending_rejected
        merged.shed += self.pending_shed
        if self.by_time:
            if parts:
                start = parts[0][0] * self.pane
            elif self.next_close is not None:
                start = self.next_close * self.pane
            else:
                start = math.nan
            end = start + self.spec.size
            span = merged.ts_max - start if merged.rows else math.nan
        else:
            cur = self.row_seq // self.pane
            start = max(0, cur - self.k + 1) * self.pane
            end = start + int(self.spec.size)
            span = merged.ts_max - merged.ts_min if merged.ts_max > merged.ts_min else math.nan
        return start, end, merged, span

    def drop_counts(self) -> None:
        """Forget every row counted or pending (a forked child counts only its own rows, so each
        row is in one process's windows).  Row windows go on from the next pane boundary, time
        windows from the same watermark."""
        self.open = {}
        self.ring.clear()
        self.pending_dropped = self.pending_rejected = self.pending_shed = 0
        if not self.by_time:
            self.row_seq = -(-self.row_seq // self.pane) * self.pane

    def absorb(self, panes, max_ts: float) -> None:
        """Merge another process's time panes ``(pane id, sketch)`` into these (time windows only).

        A pane not yet closed here is merged into the open pane of the same id (created if
        needed), so a window closed later covers every process's rows of its panes.  A pane already
        closed here arrives too late: its rows are counted as dropped late, as a late event is.
        The newest event time becomes the newer of the two.
        """
        admit = self.segmenter.admit if self.segmenter is not None else None
        for pid, ws in panes:
            if self.next_close is not None and pid < self.next_close:
                self.pending_dropped += ws.rows
                self.dropped_total += ws.rows
            else:  # another process's segment keys past this one's cap are counted as <other>
                self.pane_sketch(pid).merge(ws, admit)
        self.max_ts = max(self.max_ts, max_ts)

    # -- bytes -------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        w = codec.Writer()
        w.u64(len(self.open))
        for p, ws in sorted(self.open.items()):
            w.i64(p).blob(ws.to_bytes())
        w.u64(len(self.ring))
        for p, ws in self.ring:
            w.i64(p).blob(ws.to_bytes())
        w.u8(int(self.next_close is not None)).i64(self.next_close or 0)
        w.f64(self.max_ts).u64(self.row_seq).u64(self.pending_dropped).u64(self.pending_rejected)
        if self.segmenter is not None:  # a trailer: the segment keys, in the order they were first seen
            w.string_list(self.segmenter.keys)
        return w.getvalue()

    def load(self, data: bytes, decode_sketch: Callable[[bytes], WindowSketch]) -> None:
        r = codec.Reader(data, "window state")
        self.open = {}
        for _ in range(r.count("open panes", 9)):
            p = r.i64()
            self.open[p] = decode_sketch(r.blob())
        self.ring.clear()
        for _ in range(r.count("closed panes", 9)):
            p = r.i64()
            self.ring.append((p, decode_sketch(r.blob())))
        has, nc = r.u8(), r.i64()
        self.next_close = nc if has else None
        self.max_ts, self.row_seq = r.f64(), r.u64()
        self.pending_dropped, self.pending_rejected = r.u64(), r.u64()
        if r.remaining or self.segmenter is not None:
            if self.segmenter is None:
                raise CorruptStateError("window state: segment keys for a monitor without segment_by")
            keys = r.string_list("segment keys") if r.remaining else []
            seg = self.segmenter
            if len(set(keys)) != len(keys) or len(keys) > seg.max_segments + 1 or not all(keys):
                raise CorruptStateError(f"window state: {len(keys)} segment keys (repeated, empty or above "
                                        f"max_segments {seg.max_segments} + <other>)")
            self.segmenter = Segmenter(seg.columns, seg.max_segments, keys)
        r.done()
        self._check_loaded()

    def _check_loaded(self) -> None:
        """CorruptStateError unless the loaded panes are ones this windower could hold."""
        def fail(msg):
            raise CorruptStateError(f"window state: {msg}")

        if max(self.row_seq, self.pending_dropped, self.pending_rejected) > MAX_COUNT:
            fail(f"counters above {MAX_COUNT}")
        if math.isnan(self.max_ts):
            fail("NaN newest event time")
        if self.segmenter is not None:
            known = set(self.segmenter.keys)
            for _, ws in list(self.open.items()) + list(self.ring):
                extra = set(ws.segments) - known
                if extra:
                    fail(f"a pane holds segment {sorted(extra)[0]!r:.60} the segmenter does not know")
        ring = [p for p, _ in self.ring]
        if len(ring) > self.k - 1 or any(a >= b for a, b in zip(ring, ring[1:])):
            fail(f"{len(ring)} closed panes {ring[:5]} for windows of {self.k} panes")
        if self.by_time:
            if self.next_close is None and ring:
                fail(f"closed panes {ring[-3:]} but no next pane to close")
            if self.next_close is not None and (any(p < self.next_close for p in self.open)
                                                or (ring and ring[-1] >= self.next_close)):
                fail(f"panes {sorted(self.open)[:5]} / closed {ring[-3:]} do not match the next pane to close "
                     f"{self.next_close}")
        else:
            cur = self.row_seq // self.pane  # the pane of the next row; the one open, if any
            if any(p != cur for p in self.open) or (self.open and self.row_seq % self.pane == 0) \
                    or (ring and ring[-1] >= cur):
                fail(f"panes {sorted(self.open)[:5]} / closed {ring[-3:]} do not match row {self.row_seq} "
                     f"(pane {cur})")
