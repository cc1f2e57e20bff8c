"""The :class:`Monitor`: the one owner of monitor state.

Data flows one way: the ingest stage (:mod:`.ingest`) closes windows into
immutable :class:`~fastdrift.records.WindowReport` records and hands them
here; each closed report goes to the alert evaluator (:mod:`fastdrift.alerts`)
whose transitions go to the sinks, and is kept with its alerts attached.  This
module is the only one of the monitor package that imports the alert stage
(tests/test_layering.py).

The request path (``observe``) is the ingest buffer's own method: it stores
one request and returns, and never evaluates rules.  Windows closed by
``observe`` micro-batches (on the buffer's worker thread) wait in
``_unevaluated`` and are evaluated, and sent to the sinks, at the worker's
next timed flush (every ``flush_interval`` seconds) or on the caller's thread
at the next ``update``, ``flush``, ``snapshot``, ``reports``, ``alerts``,
``promotion_allowed`` or checkpoint, whichever comes first.  Live monitors are
flushed at interpreter exit (held by weak reference, so an unused monitor is
still collected).
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import math
import os
import socket
import stat
import tempfile
import threading
import time
import weakref
import zlib
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from ..alerts import SEVERITIES, AlertEvaluator, default_rules, load_rules, rules_to_data
from ..metrics import id_like
from ..metrics.canary import (KEPT_WINDOWS, ArmSketch, ArmWindow, CanaryPair, CanaryTriggers, compare_arms,
                              read_pairs, write_pairs)
from ..errors import CorruptStateError, InvalidInputError
from ..records import Alert, SegmentComparison, WindowReport, frozen_mapping, from_json, to_json
from ..sketches import Profile
from .. import codec
from .config import (EvidenceSpec, FeatureSpec, FreshnessSpec, LabelSpec, MonitorConfig, ShadowSpec, WindowSpec,
                     config_from_dict, config_to_dict, load_config, segment_label_names, spec_from_dict)
from .ingest import Ingest

__all__ = ["Monitor"]

_log = logging.getLogger(__name__)
_live: "weakref.WeakSet[Monitor]" = weakref.WeakSet()  # flushed at interpreter exit


def _after_fork_child() -> None:
    for m in list(_live):  # fresh locks; windows the parent closed are the parent's to evaluate
        m._lock, m._handover, m._unevaluated = threading.Lock(), threading.Lock(), []
        m._started, m._rejected_base, m._shed_base = time.time(), 0, 0  # its counters start now, at 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


@atexit.register
def _flush_at_exit() -> None:
    for m in list(_live):
        try:
            m.flush()
            m.ingest.publish()
        except Exception:  # one monitor's failure must not keep the others' data from being counted
            _log.exception("fastdrift: flushing a monitor at interpreter exit failed")


#: A temp file of ours untouched this long is a leftover of a killed save, whoever wrote it.
STALE_TEMP_SECONDS = 3600.0
#: A temp file whose writer process is gone (same host) is removed once untouched this long.
DEAD_TEMP_SECONDS = 60.0
_TMP_PREFIX, _TMP_SUFFIX = ".fastdrift-", ".tmp"
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process elsewhere
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _remove_stale_temps(d: str) -> None:
    """Remove our own stale temp files from ``d``: ``.fastdrift-*.tmp`` regular files untouched for
    :data:`STALE_TEMP_SECONDS`, or for :data:`DEAD_TEMP_SECONDS` when the process that wrote them (named
    in the file name, ``.fastdrift-<host>-<pid>-<random>.tmp``) is gone.  A save in progress in another
    process or thread is alive and recent, so it is left alone."""
    now, me = time.time(), os.getpid()
    try:
        entries = list(os.scandir(d))
    except OSError:
        return
    for e in entries:
        name = e.name
        if not (name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        age = now - st.st_mtime
        parts = name[len(_TMP_PREFIX):-len(_TMP_SUFFIX)].split("-")
        gone = len(parts) == 3 and parts[0] == _HOST and parts[1].isdigit() and int(parts[1]) != me \
            and not _alive(int(parts[1]))
        if age > STALE_TEMP_SECONDS or (gone and age > DEAD_TEMP_SECONDS):
            try:
                os.unlink(e.path)
            except OSError:
                pass


def _make_config(config, **kw) -> MonitorConfig:
    if config is None:
        base = MonitorConfig()
    elif isinstance(config, MonitorConfig):
        base = config
    elif isinstance(config, dict):
        base = config_from_dict(config)
    elif isinstance(config, (str, os.PathLike)):
        base = load_config(config)
    else:
        raise InvalidInputError(f"config must be a MonitorConfig, a mapping or a file path, "
                                f"got {type(config).__name__}")
    over = {k: v for k, v in kw.items() if v is not None}
    w = over.get("window")
    if isinstance(w, int) and not isinstance(w, bool):  # a row count: tumbling row windows
        over["window"] = WindowSpec(by="rows", size=w)
    elif isinstance(w, dict):
        over["window"] = spec_from_dict(WindowSpec, w, "window")
    if "features" in over:  # names, mappings or FeatureSpecs, checked as in a config file
        over["features"] = config_from_dict({"features": [
            dataclasses.asdict(f) if isinstance(f, FeatureSpec) else f for f in over["features"]]}).features
    if isinstance(over.get("evidence"), dict):
        over["evidence"] = spec_from_dict(EvidenceSpec, over["evidence"], "evidence")
    if isinstance(over.get("labels"), dict):
        over["labels"] = spec_from_dict(LabelSpec, over["labels"], "labels")
    if isinstance(over.get("shadow"), dict):
        over["shadow"] = spec_from_dict(ShadowSpec, over["shadow"], "shadow")
    if isinstance(over.get("freshness"), dict) or over.get("freshness") is True:
        over["freshness"] = (FreshnessSpec() if over["freshness"] is True
                             else spec_from_dict(FreshnessSpec, over["freshness"], "freshness"))
    if "kpis" in over:
        over["kpis"] = tuple(over["kpis"])
    if "segment_by" in over:
        sb = over["segment_by"]
        over["segment_by"] = (sb,) if isinstance(sb, str) else tuple(sb) if isinstance(sb, (list, tuple)) else sb
    return dataclasses.replace(base, **over) if over else base


def _rules_spec(rules, rule_list) -> Any:
    """How a checkpoint names its rules: "none", "default", {"path": p} or {"list": [...]} (mappings as
    given; Rule objects as the data :func:`~fastdrift.alerts.rules_to_data` makes of them).  Checkpoints
    of older versions may say "objects": Rule objects not stored."""
    if isinstance(rules, (str, os.PathLike)):
        return {"path": os.fspath(rules)}
    try:
        if all(isinstance(r, dict) for r in rules):
            return {"list": json.loads(json.dumps(list(rules)))}
    except (TypeError, ValueError):
        pass
    return {"list": json.loads(json.dumps(rules_to_data(rule_list)))}


def _default_rules(cfg: MonitorConfig, reference: Profile) -> list:
    """The default rules of a config: ID-like features of the reference left out of the drift rule."""
    return default_rules(cfg.feature_names(), cfg.prediction, cfg.latency is not None, cfg.error is not None,
                         id_like=[n for n in cfg.feature_names() if id_like(reference.columns[n])],
                         label=cfg.label is not None, task=cfg.task or "binary")


def _defaults_if_they_match(cfg: MonitorConfig, reference: Profile, ev_state: bytes,
                            reports: List[WindowReport]) -> Any:
    """"default" when a checkpoint whose rules were not stored ("objects") ran on the default rules
    of its config: its alert state names only those rules (an older default set may lack some of
    today's, e.g. ``no-traffic``) and every alert it holds has their thresholds, owner and runbook;
    else "objects" (the caller must pass ``rules=``)."""
    defaults = {r.name: r for r in _default_rules(cfg, reference)}
    names = set(AlertEvaluator.rule_names(ev_state)) if ev_state else set()
    if not names or not names <= set(defaults):
        return "objects"

    def same(a: Alert, fields_too: bool) -> bool:  # alerts read back from JSON: fields of any type
        rule = defaults.get(a.rule) if isinstance(a.rule, str) else None
        return rule is not None and a.severity in SEVERITIES and getattr(rule, a.severity) is not None \
            and isinstance(a.thresholds, Mapping) \
            and set(rule.thresholds(a.severity).values()) <= set(a.thresholds.values()) \
            and (not fields_too or (a.owner, a.runbook) == (rule.owner, rule.runbook))

    ev = AlertEvaluator.from_bytes(ev_state, list(defaults.values()))  # refreshes owner and runbook
    if all(same(a, False) for a in ev.active()) and all(same(a, True) for r in reports for a in r.alerts):
        return "default"
    return "objects"


def _json_params(params: bytes):
    r = codec.Reader(params, "checkpoint parameters")
    meta = r.json()
    r.done()
    if not isinstance(meta, dict):
        raise CorruptStateError("checkpoint parameters: not a JSON object")
    return meta


class Monitor:
    """Production drift / data-quality / serving monitor with alerting.

    Parameters
    ----------
    reference : Arrow Table / batches / C stream, a Parquet path, or a saved :class:`~fastdrift.Profile`
    features : feature names (or FeatureSpec / mappings with kind, bins, metric); None = every
        reference column without another role
    prediction, latency, error, request_id, event_time : column names (optional)
    window : a :class:`WindowSpec`, a mapping (``{"by": "time", "size": 300, "slide": 60}``), or a
        row count for tumbling row windows
    rules : alert rules: a YAML/TOML path, a list of mappings or of ``Rule``; ``[]`` disables
        alerting; None uses ``config.rules`` or else the default rules for the configured columns
    config : a :class:`MonitorConfig`, a mapping, or a YAML/TOML path; keyword arguments override it
    sinks : callables (or objects with ``send``) receiving each :class:`~fastdrift.records.Alert`
        transition
    label : the label column of the model whose output is ``prediction``: performance per window
        from batches that carry it, or joined later by ``request_id`` through
        :meth:`observe_label` / :meth:`update_labels` (docs/monitor.md "Labels and performance");
        a null label is no label yet (unlabelled), never an error
    task : ``"binary"`` (a score against 0/1 labels), ``"multiclass"`` (a predicted class against
        the actual class) or ``"regression"`` (a predicted number against the actual one); None
        infers it from the reference (a categorical prediction is multiclass, ...)
    labels : a :class:`LabelSpec` or mapping (join store bound, horizon, sample rate, decision
        threshold...)
    shadow_prediction : a challenger's prediction column, scored on the same requests (in batches,
        or ``observe(..., shadow_prediction=...)``): agreement, score differences, drift from the
        champion and, with labels of a binary classifier, the performance of both (docs/monitor.md
        "Shadow predictions")
    shadow : a :class:`ShadowSpec` or mapping (``agreement``, ``threshold``, ``tolerance``)
    freshness : a :class:`FreshnessSpec` or mapping (``{"sla": 300}``), or True: the lag from
        ``event_time`` to arrival per window (docs/monitor.md "Freshness")
    clock : the wall clock that times arrivals for ``freshness`` (default :func:`time.time`)
    kpis, strict, evidence, flush_interval, overload : forwarded to the config
    spool : a local directory or ``pyarrow.fs`` URI where this process publishes its panes every
        ``flush_interval``, at :meth:`close` and at exit, for :class:`fastdrift.Fleet` /
        ``fastdrift aggregate`` (event-time windows only; docs/monitor.md "Fleet")
    process_id : this process's name in the spool; None = ``<hostname>-<pid>``
    spool_retention : closed panes each process keeps published
    segment_by : columns whose values split every window into segments (``"arm"``,
        ``["model_version", "country"]``): each window's report holds one report per segment in
        ``segments``, counted in the same pass; a request passes its segment values like
        features (docs/monitor.md "Segments")
    max_segments : distinct segment keys with their own sketches (default 50); rows of later keys
        are counted as ``<other>``
    segment_reference : ``"segment"`` (default: a segment's drift against the reference's rows of
        the same segment when the reference data has the segment columns, else the whole
        reference) or ``"whole"``

    Attributes
    ----------
    observe : ``observe(features, prediction=None, *, latency_ms=None, error=False, request_id=None,
        ts=None, shadow_prediction=None)`` records one request (a dict of feature values or a sequence in feature order):
        O(1), one list append without a lock in the common case, no kernels, no rules.  A dict is
        kept and read later by the worker: do not change it after the call (pass a fresh dict per
        request).  It is the ingest buffer's method itself,
        with no Monitor frame in between (bench/bench_monitor.py measures it).
    ingest : the :class:`~fastdrift.monitor.ingest.Ingest` stage that counts the data
    evaluator : the :class:`~fastdrift.alerts.AlertEvaluator`, or None without rules

    Notes
    -----
    ``observe`` buffers up to ``buffer_rows`` (4096) requests and counts them on a daemon worker
    thread (one per monitor, started by the first ``observe``): full buffers at once, a partly
    filled one every ``flush_interval`` seconds (1 s), when a read (``flush``, ``snapshot``,
    ``reports``...) asks, and at interpreter exit.  When the worker falls behind, ``observe``
    sheds requests (``overload``), counted in :attr:`shed` and in the reports.  :meth:`close`
    counts everything and stops the worker.

    Examples
    --------
    >>> m = Monitor(reference_table, prediction="score", latency="latency_ms",  # doctest: +SKIP
    ...             window=50_000, rules=[])
    >>> m.update(batch); m.observe({"age": 31, ...}, 0.82, latency_ms=4.1)   # doctest: +SKIP
    >>> m.snapshot().features["age"].value                                  # doctest: +SKIP
    """

    def __init__(self, reference, *, features=None, prediction=None, latency=None, error=None,
                 request_id=None, event_time=None, window=None, rules=None, config=None, sinks=(),
                 kpis=None, strict=None, evidence=None, flush_interval=None, overload=None,
                 spool=None, process_id=None, spool_retention=64, label=None, labels=None, task=None,
                 shadow_prediction=None, shadow=None, freshness=None, clock=None,
                 segment_by=None, max_segments=None, segment_reference=None):
        cfg = _make_config(config, features=features, prediction=prediction, latency=latency, error=error,
                           request_id=request_id, event_time=event_time, window=window, kpis=kpis,
                           strict=strict, evidence=evidence, flush_interval=flush_interval,
                           overload=overload, label=label, labels=labels, task=task,
                           shadow_prediction=shadow_prediction, shadow=shadow, freshness=freshness,
                           segment_by=segment_by,
                           max_segments=max_segments, segment_reference=segment_reference)
        if rules is not None:
            cfg = dataclasses.replace(cfg, rules=None)
        ingest = Ingest(reference, cfg, self._closed, clock=clock)
        if spool is not None:
            ingest.attach_spool(spool, process_id, spool_retention)
        self._start(ingest, rules, sinks, None, [])

    def _start(self, ingest: Ingest, rules, sinks, evaluator_state: Optional[bytes],
               reports: List[WindowReport], label_state: Optional[Tuple[bytes, float]] = None,
               canary_state: bytes = b"") -> None:
        """Own ``ingest``; ``rules`` None = ``config.rules`` or the default rules of the config."""
        self.ingest = ingest
        self._started = time.time()  # the exported counters count from here (see Totals)
        self._rejected_base = ingest.rejected_total  # a restored count belongs to the saving process
        self._shed_base = ingest.shed_total
        # when the last window closed: its end in event time, or the wall clock for row windows
        by_time = ingest.config.window.by == "time"
        self._last_close = float(reports[-1].window_end) if reports and by_time else math.nan
        self.observe = ingest.buffer.observe  # the request path: no Monitor frame (see class docstring)
        self._label_worker = False
        cfg = ingest.config
        if rules is None:
            rules = cfg.rules
        if rules is None:
            self._rules_spec = "default"
            rule_list = _default_rules(cfg, ingest.ref.profile)
        elif isinstance(rules, (list, tuple)) and not rules:
            self._rules_spec, rule_list = "none", []
        else:
            rule_list = load_rules(rules)
            if not cfg.segment_by and any(r.segments is not None for r in rule_list):
                name = next(r.name for r in rule_list if r.segments is not None)
                raise InvalidInputError(f"alert rule {name!r}: key 'segments' selects segments of a monitor "
                                        "without segment_by")
            self._rules_spec = _rules_spec(rules, rule_list)
        self._canary_start(rule_list, canary_state)
        self._lock = threading.Lock()  # reports and evaluator; taken after the ingest's locks
        self._sinks_running = threading.local()  # .on: this thread is inside the alert sinks
        self._reports = reports
        self._unevaluated: List[WindowReport] = []  # closed, in window order, not yet evaluated
        self._handover = threading.Lock()  # guards _unevaluated only; taken last
        # with labels.settle, the rules that read only labels evaluate each window once it settled
        settle = cfg.label is not None and cfg.labels.settle > 0
        later = [r for r in rule_list if settle and r.reads_labels_only()]
        now = [r for r in rule_list if r not in later]
        self.evaluator = self.label_evaluator = None
        if now:
            self.evaluator = (AlertEvaluator(now, sinks) if evaluator_state is None
                              else AlertEvaluator.from_bytes(evaluator_state, now, sinks))
        self._settled = -math.inf if label_state is None else label_state[1]  # window end last settled
        if later:
            self.label_evaluator = (AlertEvaluator(later, sinks) if label_state is None or not label_state[0]
                                    else AlertEvaluator.from_bytes(label_state[0], later, sinks))
        ingest.on_tick = self._on_tick
        _live.add(self)

    def _on_tick(self) -> None:
        """After a timed flush (the buffer's worker): evaluate the windows it closed, if any."""
        with self._handover:
            if not self._unevaluated:
                return
        self._evaluate()

    def _closed(self, reports: Sequence[WindowReport]) -> None:
        """The ingest stage's hand-over (any thread, window order): queue for evaluation."""
        with self._handover:
            self._unevaluated.extend(reports)
        if reports:
            by_time = self.ingest.config.window.by == "time"
            self._last_close = float(reports[-1].window_end) if by_time else time.time()

    def _evaluate(self) -> None:
        with self._lock:
            self._evaluate_locked()

    def _evaluate_locked(self) -> None:
        """Evaluate queued windows in order and keep each with its alerts (hold ``_lock``)."""
        with self._handover:
            todo, self._unevaluated = self._unevaluated, []
        for r in todo:
            r = self._canary_window(r)
            with self._in_sinks():
                alerts: Tuple[Alert, ...] = self.evaluator.evaluate(r) if self.evaluator is not None else ()
            self._reports.append(dataclasses.replace(r, alerts=tuple(alerts)) if alerts else r)
        over = len(self._reports) - self.ingest.config.max_reports
        if over > 0:
            del self._reports[:over]

    @contextlib.contextmanager
    def _in_sinks(self):
        """Mark this thread as running the alert sinks (they run holding ``_lock``)."""
        self._sinks_running.on = True
        try:
            yield
        finally:
            self._sinks_running.on = False

    def _not_from_a_sink(self, what: str) -> None:
        """A clear error instead of a deadlock: a sink runs while the monitor evaluates (holding its
        lock; on the ``observe`` worker, which a flush would wait for)."""
        if getattr(self._sinks_running, "on", False):
            raise InvalidInputError(
                f"Monitor.{what}() was called from an alert sink: sinks run while the monitor evaluates the "
                "windows that closed, so it would wait for itself. A sink may read reports(), alerts() and "
                "promotion_allowed() (as of the windows evaluated so far) or hand the alert to another thread")

    def _sinks_read(self) -> bool:
        """True inside a sink: readers return what is evaluated so far instead of flushing."""
        return getattr(self._sinks_running, "on", False)

    # -- ingestion -----------------------------------------------------------------------------------
    def update(self, batch) -> None:
        """Count Arrow data (a RecordBatch, Table, reader, PyCapsule object, or a list of them).

        A bad batch is rejected (rows counted, error kept in ``last_error``) unless strict.
        Closed windows are evaluated by the alert rules.
        """
        self._not_from_a_sink("update")
        self.ingest.update(batch)
        self._evaluate()
        self._settle()

    def flush(self) -> None:
        """Push buffered observations (and labels) through the kernels, evaluate the windows closed
        so far and revise the performance of closed windows that labels reached."""
        self._not_from_a_sink("flush")
        self.ingest.flush()
        self._evaluate()
        self._revise()
        self._settle()

    # -- labels --------------------------------------------------------------------------------------
    def observe_label(self, request_id, label, ts=None) -> None:
        """Record the label (0/1) of the prediction ``observe``/``update`` made for ``request_id``.

        The request path: the label is held (one list append, no lock) and joined by the
        worker at its next timed flush but one (so its prediction is counted first), or at the next
        :meth:`flush` / read.  ``ts``: the label's time in the clock of the predictions (event-time
        seconds for time windows; default now), for the label delay and the horizon.  Labels beyond
        ``labels.buffer`` waiting are shed (counted).  See docs/monitor.md "Labels and performance".
        """
        store = self.ingest.labels
        if store is None:
            raise InvalidInputError("observe_label needs a monitor with label= and request_id= configured")
        store.observe(request_id, label, ts)
        if not self._label_worker:
            self._label_worker = True
            self.ingest.buffer.start()

    def update_labels(self, batch) -> None:
        """Join Arrow batches of labels to their predictions: columns ``request_id`` and ``label`` (as
        configured), and ``event_time`` for the labels' times when present (else now).  Vectorised;
        see :meth:`observe_label` for the semantics."""
        self._not_from_a_sink("update_labels")
        self.ingest.update_labels(batch)
        self._evaluate()
        self._revise()
        self._settle()

    def _settle(self) -> None:
        """Evaluate the label rules on each kept window that settled (``labels.settle`` seconds of
        event time after its end), in window order, once; their alerts join the window's."""
        ev = self.label_evaluator
        if ev is None:
            return
        self._revise()
        newest, settle = self.ingest.windower.max_ts, self.ingest.config.labels.settle
        with self._lock:
            for j, r in enumerate(self._reports):
                end = float(r.window_end)
                if end <= self._settled:
                    continue
                if end + settle > newest:
                    break
                with self._in_sinks():
                    alerts = ev.evaluate(r)
                self._settled = end
                if alerts:
                    self._reports[j] = dataclasses.replace(r, alerts=r.alerts + tuple(alerts))

    def _revise(self) -> None:
        """Replace kept reports whose windows labels reached since the last call by their revision."""
        if self.ingest.labels is None:
            return
        with self._lock:
            reps = list(self._reports)
        fields = self.ingest.label_revisions(reps)  # the ingest's lock: never inside ours
        if not fields:
            return
        with self._lock:
            pos = {id(r): j for j, r in enumerate(self._reports)}
            for i, f in fields.items():
                j = pos.get(id(reps[i]))
                if j is not None:
                    self._reports[j] = dataclasses.replace(self._reports[j], **f)

    def publish(self) -> None:
        """Write the panes changed since the last publish to the spool now (no-op without one).
        The ``observe`` worker does this every ``flush_interval``; a monitor fed only by
        :meth:`update` publishes here, at :meth:`close` and at exit."""
        self.flush()
        self.ingest.publish()

    def close(self) -> None:
        """:meth:`flush`, then stop the ``observe`` worker thread (an ``observe`` after this starts
        a new one).  Also the end of a ``with Monitor(...) as m:`` block."""
        try:
            self.flush()
            self.ingest.publish()
        finally:
            self.ingest.buffer.close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def merge(self, other: "Monitor") -> "Monitor":
        """Merge another monitor's window state into this one (exact: counts add, sketches merge).

        Both must be built on the same reference and state config (bins, features, roles, window
        spec, evidence, digest compression; rules and buffering may differ), else
        ``IncompatibleSketchError`` names the difference.  Only event-time windows merge: panes are
        keyed by time, so pane ``p`` of every process covers the same seconds.  Row-count windows
        are refused (each process numbers its own rows; their panes do not line up).

        ``other``'s open panes and its last ``k - 1`` closed ones are merged pane by pane into this
        monitor's; a pane this monitor already closed counts as dropped late here.  Windows the
        merge completes close here, in order, and are evaluated by this monitor's rules.  ``other``
        is not changed.  Returns ``self``.
        """
        self._not_from_a_sink("merge")
        self.ingest.merge(other.ingest)
        self._evaluate()
        with other._lock:
            theirs = {k: p.copy() for k, p in other._canary_pairs.items()}
        with self._lock:  # the pooled sequential tests of both monitors' traffic
            for key, p in theirs.items():
                if key in self._canary_pairs:
                    self._canary_pairs[key].merge(p)
                else:
                    self._canary_pairs[key] = p
                    self._canary_results[key] = {}
        return self

    # -- canary comparisons (docs/monitor.md "Canary comparisons") ---------------------------------------
    def _canary_start(self, rule_list, canary_state: bytes) -> None:
        cfg = self.ingest.config
        self._canary_rules = [r for r in rule_list if r.canary is not None]
        if self._canary_rules and not cfg.segment_by:
            raise InvalidInputError(f"alert rule {self._canary_rules[0].name!r}: a canary rule compares segments "
                                    "of a monitor with segment_by")
        self._canary_pairs = read_pairs(canary_state) if canary_state else {}
        # pair -> window key -> its comparison (kept for the kept reports)
        self._canary_results: dict = {k: {} for k in self._canary_pairs}
        self._arm_sketches: dict = {}  # window key -> segment key -> the closed window's segment sketch
        if cfg.segment_by:
            self.ingest.on_sketches = self._keep_arm_sketches

    @staticmethod
    def _window_key(start, end) -> str:
        return repr((start, end))

    def _keep_arm_sketches(self, closed) -> None:
        """The ingest's hand-over of closed windows' sketches: their segments' column sketches and
        KPI moments are what canary comparisons read (kept for the last ``KEPT_WINDOWS`` windows)."""
        with self._handover:
            for s, e, ws, _ in closed:
                self._arm_sketches[self._window_key(s, e)] = {
                    k: ArmSketch(seg.prediction, seg.features, seg.kpis) for k, seg in (ws.segments or {}).items()}
            over = len(self._arm_sketches) - min(KEPT_WINDOWS, self.ingest.config.max_reports)
            for k in list(self._arm_sketches)[:max(over, 0)]:
                del self._arm_sketches[k]

    def _canary_compare(self, key, r: WindowReport, feed: bool) -> SegmentComparison:
        """The comparison of ``key``'s pair in closed window ``r`` (hold ``_lock``); kept per pair."""
        pair = self._canary_pairs.get(key)
        if pair is None:
            pair = self._canary_pairs[key] = CanaryPair(*key)
            self._canary_results[key] = {}
        wk = self._window_key(r.window_start, r.window_end)
        with self._handover:
            sk = self._arm_sketches.get(wk, {})
        cfg = self.ingest.config
        arm_a, arm_b = (ArmWindow(r.segments.get(x), sk.get(x)) for x in key[:2])
        c = compare_arms(pair, r.window_start, r.window_end, arm_a, arm_b, prediction=cfg.prediction,
                         top=cfg.max_contributions, feed=feed)
        kept = self._canary_results[key]
        kept[wk] = c
        for k in list(kept)[:max(len(kept) - cfg.max_reports, 0)]:
            del kept[k]
        return c

    def _canary_window(self, r: WindowReport) -> WindowReport:
        """Feed a closed window to every watched pair once; a canary rule's comparison joins the report."""
        if not self._canary_pairs and not self._canary_rules:
            return r
        done = {}
        for rule in self._canary_rules:
            key = (rule.canary.baseline, rule.canary.candidate, rule.canary.triggers)
            if key not in done:
                done[key] = self._canary_compare(key, r, feed=True)
        for key in list(self._canary_pairs):
            if key not in done:
                done[key] = self._canary_compare(key, r, feed=True)
        comps = {rule.name: done[(rule.canary.baseline, rule.canary.candidate, rule.canary.triggers)]
                 for rule in self._canary_rules}
        return dataclasses.replace(r, comparisons=frozen_mapping(comps)) if comps else r

    def compare_segments(self, a: str, b: str, *, window=-1, kpi_drop: float = 0.05, psi: float = 0.2,
                         error_rate_margin: float = 0.0, p99_ratio: float = 1.2, alpha: float = 0.05,
                         min_rows: int = 1000, promote_after: int = 10,
                         lower_is_better: Sequence[str] = ()) -> SegmentComparison:
        """Segment ``b`` (a candidate arm, ``"arm=canary"``) against segment ``a`` (the baseline) in a window.

        Parameters
        ----------
        a, b : segment keys of this monitor's ``segment_by``
        window : int or "open"
            Index into :meth:`reports` (default the latest closed window), or ``"open"``: the window
            so far (its rows are not fed to the sequential tests).
        kpi_drop, psi, error_rate_margin, p99_ratio, alpha, min_rows, promote_after, lower_is_better
            The triggers of the verdict (:class:`~fastdrift.metrics.canary.CanaryTriggers`; a
            ``signal: canary`` rule's keys).

        Returns
        -------
        SegmentComparison
            Drift of b's prediction and features against a's, latency quantiles and ratios, error
            rates and KPI means with the always-valid sequential tests accumulated since the canary
            began (the first window with rows in both arms), and the verdict with its reasons.  The
            monitor keeps the pair's sequential state from this call on (every later closed window
            is fed once, checkpointed by :meth:`save`, pooled by :meth:`merge`); the first call
            feeds the kept closed windows, oldest first.
        """
        if not self.config.segment_by:
            raise InvalidInputError("compare_segments needs a monitor with segment_by")
        for what, key in (("a", a), ("b", b)):
            if not isinstance(key, str) or not key:
                raise InvalidInputError(f"compare_segments: {what} must be a segment key such as 'arm=canary', "
                                        f"got {key!r}")
        if a == b:
            raise InvalidInputError(f"compare_segments: a and b are the same segment {a!r}")
        self._not_from_a_sink("compare_segments")
        key = (a, b, CanaryTriggers(kpi_drop=kpi_drop, psi=psi, error_rate_margin=error_rate_margin,
                                    p99_ratio=p99_ratio, alpha=alpha, min_rows=min_rows,
                                    promote_after=promote_after, lower_is_better=tuple(lower_is_better)))
        reps = self.reports()
        with self._lock:
            if key not in self._canary_pairs:
                self._canary_pairs[key], self._canary_results[key] = CanaryPair(*key), {}
                with self._handover:
                    kept = set(self._arm_sketches)
                for r in self._reports:  # from the oldest window whose sketches are kept
                    if self._window_key(r.window_start, r.window_end) in kept:
                        self._canary_compare(key, r, feed=True)
            if window == "open":
                pair = self._canary_pairs[key].copy()
            elif isinstance(window, int) and not isinstance(window, bool):
                try:
                    r = reps[window]
                except IndexError:
                    raise InvalidInputError(f"compare_segments: window {window} of {len(reps)} closed windows") from None
                kept = self._canary_results.get(key, {}).get(self._window_key(r.window_start, r.window_end))
                return kept if kept is not None else self._canary_compare(key, r, feed=False)
            else:
                raise InvalidInputError(f"compare_segments: window must be an index or 'open', got {window!r}")
        report, ws = self.ingest.snapshot_sketch()
        segs = ws.segments or {}
        cfg = self.ingest.config
        return compare_arms(pair, report.window_start, report.window_end,
                            ArmWindow(report.segments.get(a), segs.get(a)),
                            ArmWindow(report.segments.get(b), segs.get(b)),
                            prediction=cfg.prediction, top=cfg.max_contributions, feed=False)

    # -- reading -------------------------------------------------------------------------------------------
    def snapshot(self) -> WindowReport:
        """The open window so far; ``alerts`` = what the rules would report for it now (no state change)."""
        self._not_from_a_sink("snapshot")
        r = self.ingest.snapshot()
        self._evaluate()
        if self.evaluator is not None:
            with self._lock:
                r = dataclasses.replace(r, alerts=tuple(self.evaluator.preview(r)))
        return r

    def reports(self) -> Tuple[WindowReport, ...]:
        """Closed windows (the last ``config.max_reports``, oldest first), each with its alert transitions.
        From an alert sink: the windows evaluated before the one whose alert is being sent."""
        if self._sinks_read():  # this thread holds _lock
            return tuple(self._reports)
        self.flush()
        with self._lock:
            return tuple(self._reports)

    def alerts(self) -> Tuple[Alert, ...]:
        """Alerts pending or firing now."""
        if not self._sinks_read():
            self.flush()
        return tuple(a for ev in (self.evaluator, self.label_evaluator) if ev is not None for a in ev.active())

    def promotion_allowed(self) -> bool:
        """False while any critical alert fires (gate model promotions on this)."""
        if not self._sinks_read():
            self.flush()
        return all(bool(ev.promotion_allowed()) for ev in (self.evaluator, self.label_evaluator) if ev is not None)

    @property
    def config(self) -> MonitorConfig:
        return self.ingest.config

    @property
    def rejected(self) -> int:
        """Rows / requests rejected as bad input so far (after the last flush)."""
        return self.ingest.rejected_total

    @property
    def shed(self) -> int:
        """``observe`` requests shed (not counted) because the worker fell behind, so far (after the
        last flush; also in each report's ``shed`` and in ``fastdrift_observe_shed_total``)."""
        return self.ingest.shed_total

    @property
    def last_error(self) -> Optional[str]:
        return self.ingest.last_error

    # -- export ------------------------------------------------------------------------------------------
    def prometheus_collector(self):
        """A ``prometheus_client`` collector: counters since this object was created (rows per
        reference bin, latency buckets, rows, errors), the latest closed window and the alert states.

        Scrapes read the counts (O(bins)) and the last published (immutable) report under the
        monitor's locks and never run kernels or rules, so a scrape cannot slow the request path.
        docs/prometheus.md lists the metrics.  Needs ``fastdrift[prometheus]``.
        """
        from ..exporters.prometheus import MonitorCollector  # optional dependency: prometheus_client
        return MonitorCollector(self._prometheus_source)

    def _prometheus_source(self):
        from ..exporters.prometheus import Exposition  # optional dependency: prometheus_client
        with self._lock:
            latest = self._reports[-1] if self._reports else None
        ev = self.evaluator
        active = tuple(ev.active()) if ev is not None else ()
        ing = self.ingest
        sp = ing.spool
        return Exposition(
            latest, active, totals=ing.totals(),
            rules=tuple((r.name, sev) for r in ev.rules for sev, _ in r.tiers() if r.segments is None)
            if ev is not None else (),
            segment_labels=tuple(zip(ing.config.segment_by, segment_label_names(ing.config.segment_by))),
            segment_rules=tuple((r.name, sev, r.segments) for r in ev.rules for sev, _ in r.tiers()
                                if r.segments is not None) if ev is not None else (),
            start_time=self._started, window_end=self._last_close,
            rejected=ing.rejected_total - self._rejected_base, dropped_late=ing.windower.dropped_total,
            shed=ing.shed_total - self._shed_base,
            spool=(sp.errors, sp.coalesced, sp.written_at) if sp is not None else None)

    def exposition(self):
        """What one scrape of :meth:`prometheus_collector` exports now (an ``Exposition``)."""
        return self._prometheus_source()

    def serve_metrics(self, port: int = 0, addr: str = "127.0.0.1"):
        """Serve :meth:`prometheus_collector` at ``http://addr:port/metrics`` (loopback by default).

        Returns ``(server, thread)``; stop with ``server.shutdown(); server.server_close()``.
        """
        from ..exporters.prometheus import serve  # optional dependency: prometheus_client
        return serve(self.prometheus_collector(), port=port, addr=addr)

    # -- checkpoints -------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """One ``MONITOR`` envelope: config and rules spec, then reference, panes, counters, alert state
        and the closed reports (each once).  Buffered observations are flushed first.  Never pickle.

        Layout: params = string(JSON ``{"config": ..., "rules": ..., "shed": {"total", "pending"}}``,
        ``shed`` optional: requests ``observe`` shed so far, and those not yet in a closed window);
        payload = blob(reference),
        blob(window panes and ring), u64(rejected), blob(alert evaluator state, empty without rules),
        string(JSON list of reports in :func:`fastdrift.records.to_json` form), and with labels
        joined by request id or settled label rules, blob(the label join store, a ``LABEL_STORE``
        envelope; empty without one), blob(the settled label rules' alert state, empty without),
        f64(the end of the last window they evaluated).
        """
        for attempt in range(3):
            self.flush()  # evaluates closed windows (sinks run) before counting is paused
            with self.ingest.paused(), self._lock:
                with self._handover:
                    late = bool(self._unevaluated)
                if late and attempt < 2:
                    continue  # a concurrent observe() closed a window: evaluate it outside the pause
                self._evaluate_locked()  # still late after two tries: sinks then run while paused
                d = config_to_dict(self.ingest.config)
                try:  # rules are the alert stage's data; kept only when they are plain data
                    json.dumps(d["rules"])
                except (TypeError, ValueError):
                    d["rules"] = None
                shed = {"total": self.ingest.shed_total, "pending": self.ingest.windower.pending_shed}
                params = codec.Writer().json({"config": d, "rules": self._rules_spec, "shed": shed})
                w = codec.Writer()
                self.ingest.write_state(w)
                w.blob(self.evaluator.to_bytes() if self.evaluator is not None else b"")
                w.json([to_json(r) for r in self._reports])
                if self.ingest.labels is not None or self.label_evaluator is not None or self._canary_pairs:
                    # trailers: checkpoints without labels end before them
                    w.blob(self.ingest.label_state())
                    ev = self.label_evaluator
                    w.blob(ev.to_bytes() if ev is not None else b"").f64(self._settled)
                if self._canary_pairs:  # trailer: the canary pairs' sequential state
                    w.blob(write_pairs(self._canary_pairs))
                return codec.encode(codec.Kind.MONITOR, params.getvalue(), w.getvalue())

    def save(self, path) -> None:
        """Write a checkpoint atomically: temp file in the same directory, fsync, rename, fsync dir.

        A crash leaves either the previous checkpoint or the new one, never a torn file; the temp
        file a crash leaves behind is removed by a later save into the same directory (see
        :func:`_remove_stale_temps`).  A monitor with a spool publishes first, so the spool holds
        every pane the checkpoint holds (a monitor loaded from it with the same ``process_id``
        goes on from there).
        """
        self.publish()
        data = self.to_bytes()
        path = os.fspath(path)
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{_HOST}-{os.getpid()}-", suffix=_TMP_SUFFIX, dir=d)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _remove_stale_temps(d)
        try:
            dfd = os.open(d, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms without directory fds
            return
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @classmethod
    def from_bytes(cls, data, *, rules=None, sinks=(), spool=None, process_id=None,
                   spool_retention=64, clock=None) -> "Monitor":
        """Resume from :meth:`to_bytes`; ``rules`` (replacing the stored ones) is needed only for older
        checkpoints of Rule objects other than the default rules.  ``spool``, ``process_id`` and
        ``spool_retention`` attach a spool as the constructor does (a checkpoint does not record
        where its monitor published: paths differ between machines); pass the ``process_id`` the
        saving monitor published under, so its pane files are continued, not counted twice.
        ``clock``: as the constructor's.

        Also reads the older two-envelope layout, a ``CHECKPOINT`` envelope: params =
        string(JSON ``{"rules", "has_evaluator"}``); payload = blob(a ``MONITOR`` envelope: params =
        string(config JSON), payload = blob(reference), blob(panes), u64(rejected), u64(reports not
        yet evaluated), string(reports)), blob(alert state), string(reports with their alerts).  The
        inner reports repeat the outer ones: only the last ``not yet evaluated`` ones are read (and
        evaluated now).
        """
        kind, params, payload = codec.decode(data)
        if kind not in (codec.Kind.MONITOR, codec.Kind.CHECKPOINT):
            raise CorruptStateError(f"not a monitor checkpoint: a {kind.name} envelope")
        meta, two_envelopes = _json_params(params), kind == codec.Kind.CHECKPOINT
        label_state, canary_state = None, b""
        if two_envelopes:
            outer = codec.Reader(payload, "checkpoint payload")
            _, inner_params, payload = codec.decode(outer.blob(), expected_kind=codec.Kind.MONITOR)
            ev_state, reports = outer.blob(), _reports(outer.json("reports"))
            outer.done()
            spec = (meta.get("rules") or "objects") if meta.get("has_evaluator") else "none"
            meta = {"config": _json_params(inner_params), "rules": spec}
        try:
            cfg, spec = config_from_dict(meta["config"]), meta["rules"]
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise CorruptStateError(f"checkpoint parameters: invalid config ({exc})") from None
        m = cls.__new__(cls)
        r = codec.Reader(payload, "checkpoint payload")
        ingest = Ingest.read_state(r, cfg, m._closed, clock)
        ingest.shed_total, ingest.windower.pending_shed = _shed_counts(meta.get("shed"))
        pending: List[WindowReport] = []
        if two_envelopes:
            undrained, inner = r.u64(), _reports(r.json("reports"))
            if undrained > len(inner):
                raise CorruptStateError(f"checkpoint: {undrained} reports pending of {len(inner)}")
            pending = inner[len(inner) - undrained:] if undrained else []
        else:
            ev_state, reports = r.blob(), _reports(r.json("reports"))
            if r.remaining:
                ingest.load_labels(r.blob())
                label_state = (r.blob(), r.f64())
                if math.isnan(label_state[1]):
                    raise CorruptStateError("checkpoint: NaN settled window end")
            canary_state = r.blob() if r.remaining else b""
        r.done()
        if rules is None and spec == "objects":
            spec = _defaults_if_they_match(cfg, ingest.ref.profile, ev_state, reports + pending)
        if spool is not None:
            ingest.attach_spool(spool, process_id, spool_retention)
        m._start(ingest, _given_rules(rules, spec), sinks, ev_state or None, reports, label_state, canary_state)
        if pending:
            m._closed(pending)
            m._evaluate()
        return m

    @classmethod
    def load(cls, path, *, rules=None, sinks=(), spool=None, process_id=None, spool_retention=64,
             clock=None) -> "Monitor":
        """Resume from :meth:`save` (see :meth:`from_bytes`, also for ``spool``)."""
        try:
            with open(os.fspath(path), "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InvalidInputError(f"checkpoint {os.fspath(path)!r}: {exc.strerror or exc}") from None
        return cls.from_bytes(data, rules=rules, sinks=sinks, spool=spool, process_id=process_id,
                              spool_retention=spool_retention, clock=clock)


def _reports(doc) -> List[WindowReport]:
    try:
        out = [from_json(x) for x in doc]
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise CorruptStateError(f"checkpoint: invalid reports ({exc})") from None
    for x in out:
        if not (isinstance(x, WindowReport) and isinstance(x.alerts, tuple)
                and all(isinstance(a, Alert) for a in x.alerts)):
            raise CorruptStateError(f"checkpoint: reports must be window reports with their alerts, got {x!r:.80}")
    return out


def _shed_counts(doc) -> Tuple[int, int]:
    """(total, pending) shed requests from a checkpoint's params (absent in older checkpoints)."""
    if doc is None:
        return 0, 0
    vals = [doc.get(k) for k in ("total", "pending")] if isinstance(doc, dict) else None
    if not vals or not all(type(v) is int and 0 <= v < 2 ** 63 for v in vals) or vals[1] > vals[0]:
        raise CorruptStateError(f"checkpoint parameters: 'shed' must hold counts total >= pending >= 0, "
                                f"got {doc!r:.80}")
    return vals[0], vals[1]


def _given_rules(rules, spec):
    """The ``rules`` argument that rebuilds a checkpoint's rules (an explicit ``rules`` wins)."""
    if rules is None and spec == "objects":
        raise InvalidInputError("this checkpoint's rules were Rule objects; pass rules= to load it")
    if rules is not None or spec == "default":
        return rules
    if spec == "none":
        return []
    if isinstance(spec, dict) and set(spec) == {"list"}:
        try:
            load_rules(spec["list"])
        except InvalidInputError as exc:
            raise CorruptStateError(f"checkpoint parameters: the stored rules are invalid ({exc})") from None
        return spec["list"]
    if isinstance(spec, dict) and set(spec) == {"path"} and isinstance(spec["path"], str):
        return spec["path"]
    raise CorruptStateError(f"checkpoint parameters: unknown rules {spec!r}")
