"""One view of a fleet: the panes every process published to a spool, merged into fleet windows.

Each read (:meth:`Fleet.reports`, :meth:`Fleet.snapshot`, :meth:`Fleet.alerts`, a scrape) lists the
spool, decodes the pane files that changed since the last read, merges them pane by pane (pane
``p`` of every process covers the same event-time seconds) into one monitor built on the spool's
reference and config, and closes the windows the fleet's watermark (the newest event time any
process published, minus ``allowed_lateness``) has passed.  The rules are evaluated once, over the
fleet's windows in order: one alert for the fleet, not one per worker.  A process that died keeps
its last published panes; :meth:`Fleet.processes` and :meth:`Fleet.contributors` show who published
what, so a slow or missing worker is visible.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from typing import Dict, List, Optional, Tuple

from .errors import FastDriftError, InvalidInputError
from .monitor import Monitor
from .monitor.signals import WindowSketch
from .monitor.spool import Store, read_panes, read_reference
from .records import Alert, WindowReport

__all__ = ["Fleet"]

_log = logging.getLogger(__name__)


def _open_pending(files) -> Tuple[int, int, int]:
    """(dropped late, rejected, shed) not yet in a closed window, summed over the processes: what
    each process's open pane files of its latest publish carry (every file of one publish carries
    the same counts).  An open file of an earlier publish is stale: its counts may have gone into a
    pane closed since, whose file carries them."""
    newest: Dict[str, float] = {}
    for f in files:
        newest[f.process] = max(newest.get(f.process, -math.inf), f.published)
    due = {f.process: f.pending for f in files if not f.closed and f.published == newest[f.process]}
    return tuple(sum(p[i] for p in due.values()) for i in range(3))


class Fleet:
    """The merged view of every process publishing to ``spool``.

    Parameters
    ----------
    spool : local directory or ``pyarrow.fs`` URI the monitors publish to (``Monitor(spool=...)``)
    rules : alert rules as for :class:`~fastdrift.Monitor` (None = the default rules of the
        spool's config, ``[]`` = none)
    sinks : receive the alert transitions of windows closed since the previous read
    retention : panes more than this many panes behind the fleet's watermark are ignored (a
        long-dead worker's leftovers)
    clock : the wall clock (default :func:`time.time`) of ``window.idle_timeout``: with it set,
        event time runs on with this clock once no process has published a newer event time for
        that long, so the fleet's windows close (empty) through an outage of the whole fleet
    """

    def __init__(self, spool, *, rules=None, sinks=(), retention: int = 64, clock=None):
        if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
            raise InvalidInputError(f"retention must be a positive number of panes, got {retention!r}")
        self.store = Store(spool)
        self.ref, self.config = read_reference(self.store)
        self.rules, self.sinks, self.retention = rules, tuple(sinks), retention
        self._cache: Dict[str, Tuple[bytes, WindowSketch, str]] = {}  # process.pane -> (bytes, decoded, file)
        self._processes: Dict[str, dict] = {}
        self._corrupt: Dict[str, str] = {}
        self._warned: set = set()  # files already logged as skipped
        # panes no longer read (retired by their process or behind the retention): their counts stay
        # in the exported counters, which must never fall (Prometheus would read a reset)
        self._retired: Optional[WindowSketch] = None
        self._retired_keys: set = set()
        self._contributors: Dict[Tuple[float, float], Tuple[str, ...]] = {}
        self._sent_until = -math.inf  # window end up to which sinks have had the transitions
        self._lock = threading.Lock()  # one refresh at a time (a scrape thread and the caller)
        self._clock = clock or time.time
        self._idle_anchor = (-math.inf, -math.inf)  # (newest published event time, clock when first seen)
        self.monitor = self._build([])
        for s in self.sinks:  # a sink that acts per rule (ActionSink) reads the fleet's rules' actions
            if callable(getattr(s, "bind_rules", None)) and self.monitor.evaluator is not None:
                s.bind_rules(self.monitor.evaluator.rules)

    # -- building -----------------------------------------------------------------------------------
    def _build(self, files) -> Monitor:
        m = Monitor(self.ref.profile, config=self.config, rules=self.rules)
        m.ingest.ref.performance = self.ref.performance  # a saved profile holds no performance: the spool's
        m.ingest.ref.segments = self.ref.segments  # nor the segments' references
        if not files:
            return m
        spec = m.config.window
        newest = self._idle_time(max(f.max_ts for f in files))
        watermark = newest - spec.allowed_lateness
        if math.isfinite(watermark):  # panes of windows closed long ago (a dead worker's leftovers)
            keep = math.floor(watermark / spec.pane) - self.retention
            for f in files:
                if f.pane <= keep:
                    self._retire(f"{f.process}.{f.pane}", lambda f=f: self._decode(f, m), f.name)
            files = [f for f in files if f.pane > keep]
        if not files:
            return m
        by_pane: Dict[int, List] = {}
        for f in files:
            by_pane.setdefault(f.pane, []).append(f)
        panes, extras = [], {}
        for pid in sorted(by_pane):
            merged = WindowSketch(m.ingest.ref, m.config)
            pend, kept = [0, 0, 0], []
            for f in by_pane[pid]:
                try:
                    ws = self._decode(f, m)
                    merged.merge(ws)
                except FastDriftError as exc:  # damaged or foreign: skipped and reported, the rest counts
                    self._skip(f.name, exc)
                    # a merge failing part way (a count past the cap in a later column) has counted the
                    # earlier columns: the pane is rebuilt from the files kept, so none of this one stays
                    merged = WindowSketch(m.ingest.ref, m.config).merge_all(kept)
                    continue
                kept.append(ws)
                self._processes[f.process]["rows"] += ws.rows
                if f.closed:
                    pend = [a + b for a, b in zip(pend, f.pending)]
            panes.append((pid, merged))
            if any(pend):
                extras[pid] = tuple(pend)
        pane = m.config.window.pane
        k = m.config.window.panes_per_window
        procs = {p: sorted({f.process for f in fs}) for p, fs in by_pane.items()}
        self._contributors = {}
        for pid in range(min(by_pane), max(by_pane) + 1):
            who = sorted({x for q in range(pid - k + 1, pid + 1) for x in procs.get(q, ())})
            self._contributors[(max(pid - k + 1, min(by_pane)) * pane, (pid + 1) * pane)] = tuple(who)
        w = m.ingest.windower
        w.extras = extras
        m.ingest.merge_panes(panes, newest)
        d, r, s = _open_pending(files)  # after the closes: the open window's, as in a monitor's snapshot
        w.pending_dropped, w.pending_rejected, w.pending_shed = w.pending_dropped + d, w.pending_rejected + r, \
            w.pending_shed + s
        return m

    def _idle_time(self, newest: float) -> float:
        """The fleet's newest event time, run on with the clock after ``window.idle_timeout``
        seconds without a newer one (as :meth:`fastdrift.monitor.windows.Windower.idle`)."""
        spec = self.config.window
        if spec.idle_timeout is None or spec.by != "time" or newest == -math.inf:
            return newest
        ts0, c0 = self._idle_anchor
        now = self._clock()
        if newest > ts0:
            self._idle_anchor = (newest, now)
            return newest
        return newest if now - c0 < spec.idle_timeout else max(newest, ts0 + (now - c0))

    def _retire(self, key: str, sketch, name: str) -> None:
        """Keep a pane's counts in the exported counters once it is no longer read: all of them or,
        when they do not merge (a count past the cap in a later sketch), none, the file ``name``
        then reported as skipped."""
        if key in self._retired_keys:
            return
        self._retired_keys.add(key)
        try:
            ws = sketch()
        except Exception:  # noqa: BLE001 - a file skipped as corrupt counted nothing
            return
        if self._retired is None:
            self._retired = WindowSketch(ws.ref, ws.config)
        # merged into an exact copy (a byte round trip), kept only when the whole pane merged: a merge
        # failing part way has counted the sketches before the failure
        trial = WindowSketch.from_bytes(self._retired.to_bytes(), ws.ref, ws.config)
        try:
            trial.merge(ws)
        except FastDriftError as exc:
            self._skip(name, exc)
            return
        self._retired = trial

    def _skip(self, name: str, exc) -> None:
        if name not in self._warned:
            self._warned.add(name)
            _log.warning("fastdrift fleet: pane file %s skipped: %s", name, exc)
        self._corrupt[name] = str(exc)

    def _decode(self, f, m: Monitor) -> WindowSketch:
        key = f"{f.process}.{f.pane}"
        hit = self._cache.get(key)
        if hit is None or hit[0] != f.sketch_bytes:
            hit = (f.sketch_bytes, WindowSketch.from_bytes(f.sketch_bytes, m.ingest.ref, m.config), f.name)
            self._cache[key] = hit
        return hit[1]

    def refresh(self) -> "Fleet":
        """Re-read the spool and rebuild the fleet's windows; alert transitions of windows closed
        since the previous refresh go to the sinks."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> "Fleet":
        corrupt: Dict[str, str] = {}
        files = list(read_panes(self.store, corrupt))
        self._corrupt = {}
        for name, why in corrupt.items():
            self._skip(name, why)
        live = {f"{f.process}.{f.pane}" for f in files}
        for key in [k for k in self._cache if k not in live]:
            self._retire(key, lambda key=key: self._cache[key][1], self._cache[key][2])
            del self._cache[key]
        procs: Dict[str, dict] = {}
        for f in files:
            p = procs.setdefault(f.process, {"published": -math.inf, "max_ts": -math.inf, "panes": 0, "rows": 0})
            p["published"] = max(p["published"], f.published)
            p["max_ts"] = max(p["max_ts"], f.max_ts)
            p["panes"] += 1
        self._processes = procs
        self.monitor = self._build(files)
        if self.sinks:
            for r in self.monitor.reports():
                if r.window_end > self._sent_until:
                    for a in r.alerts:
                        for s in self.sinks:
                            (s.send if hasattr(s, "send") else s)(a)
                    self._sent_until = r.window_end
        return self

    # -- reading ------------------------------------------------------------------------------------
    def reports(self) -> Tuple[WindowReport, ...]:
        """The fleet's closed windows (oldest first), each with its alert transitions."""
        return self.refresh().monitor.reports()

    def snapshot(self) -> WindowReport:
        """The fleet's open window so far."""
        return self.refresh().monitor.snapshot()

    def alerts(self) -> Tuple[Alert, ...]:
        """Alerts pending or firing for the fleet now."""
        return self.refresh().monitor.alerts()

    def promotion_allowed(self) -> bool:
        """False while a critical alert fires for the fleet."""
        return self.refresh().monitor.promotion_allowed()

    def contributors(self) -> Dict[Tuple[float, float], Tuple[str, ...]]:
        """(window start, end) -> the processes with panes in that window (as of the last read)."""
        return dict(self._contributors)

    def processes(self) -> Dict[str, dict]:
        """process -> ``{"published": last write (Unix s), "max_ts": newest event time, "panes": files,
        "rows": rows in its retained panes}`` (as of the last read): a worker that stopped publishing
        shows an old ``published``."""
        return {p: dict(v) for p, v in self._processes.items()}

    def corrupt(self) -> Dict[str, str]:
        """Pane files skipped at the last read because they could not be decoded or merged (file
        name -> why); every other file was counted."""
        return dict(self._corrupt)

    # -- export --------------------------------------------------------------------------------------
    def prometheus_collector(self):
        """A ``prometheus_client`` collector over the merged view (re-read at each scrape)."""
        from .exporters.prometheus import MonitorCollector  # optional dependency: prometheus_client
        return MonitorCollector(self.exposition)

    def exposition(self):
        """What one scrape exports: the merged view, its counters including retired panes."""
        x = self.refresh().monitor.exposition()
        if self._retired is not None and x.totals is not None:
            x = dataclasses.replace(x, totals=x.totals.plus([self._retired]))
        return x

    def serve_metrics(self, port: int = 0, addr: str = "127.0.0.1"):
        """Serve the merged view at ``http://addr:port/metrics``; returns ``(server, thread)``."""
        from .exporters.prometheus import serve  # optional dependency: prometheus_client
        return serve(self.prometheus_collector(), port=port, addr=addr)
