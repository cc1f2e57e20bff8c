"""The ingest stage: reference + windows + signals, fed by ``update`` (Arrow) or requests (``buffer``).

It turns data into closed :class:`~fastdrift.records.WindowReport` records and
hands them to its ``on_closed`` callback; it keeps none (the
:class:`~fastdrift.monitor.Monitor` owns them).

Locks (in acquisition order) and what they guard:

* ``_state``: panes, counters, the window ring; held while a batch is counted
  (kernels run here, over one batch or one micro-batch, never over a window)
  and while closed panes are merged (O(bins));
* ``_emit``: the hand-over of closed reports.  It is taken *before* ``_state``
  is released, so ``on_closed`` sees windows in order even when several
  threads close windows, while metrics (PSI, contributions, quantiles) are
  computed on merged copies with ``_state`` already released;
* the observe buffer lock (:mod:`.buffers`): held only to store one request or to swap a
  buffer; taken last (inside ``_state`` to move the buffer's call-path counters in).

Bad input never corrupts state: a batch is checked against the expected
schema before anything is counted.  Schema drift (a column missing, new, or of
another type) is a signal in the report; columns that cannot be counted are
counted as missing for that window.  A batch that cannot be placed at all (no
usable event time in an event-time monitor) is rejected: its rows are counted
in ``rejected`` and the error is kept in :attr:`Ingest.last_error`
(raised instead when ``strict``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import threading
import time
import weakref
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from ..adapters import as_table, iter_batches
from ..adapters.arrow import float64_values
from ..adapters.segments import Segmenter
from ..errors import CorruptStateError, FastDriftError, IncompatibleSketchError, InvalidInputError, SchemaError
from ..records import SchemaChange, WindowReport, frozen_mapping
from ..schema import ROLES, WITHIN_KIND, check_profiles, diff, fits
from ..schema import schema_changes as changes_of
from .. import codec
from ..sketches import ColumnProfile, Profile, TDigest, profile
from ..sketches.base import MAX_COUNT
from ..sketches.profile import CATEGORICAL, NUMERIC, column_kind
from ..sketches.segmented import SegmentSplit, update_sketches
from ..sketches.sample import stream_of
from .buffers import ARRIVAL, ObserveBuffer, offer_gil
from .config import MonitorConfig
from .labels import LabelPane, LabelStore, binary_labels, new_performance, shadow_labelled, task_of
from .shadow import shadow_performance
from .signals import (Reference, Totals, WindowSketch, build_report, label_fields, latency_quantiles,
                      segment_labels)
from .windows import Windower

__all__ = ["Ingest", "build_reference", "report_from_profiles", "window_from_profiles", "state_difference"]

_log = logging.getLogger(__name__)
#: Seconds ``publish`` (a direct call, ``close`` and exit) waits for a slow spool to take the panes.
PUBLISH_TIMEOUT = 30.0

#: The config fields that shape the counted state: two monitors merge only if these are equal.
STATE_FIELDS = ("features", "prediction", "prediction_kind", "kpis", "latency", "error", "request_id",
                "event_time", "label", "task", "labels", "window", "evidence", "max_contributions",
                "tdigest_compression", "segment_by", "max_segments", "shadow_prediction", "shadow", "freshness")


def state_difference(a_config: MonitorConfig, a_ref: Reference, b_config: MonitorConfig,
                     b_ref: Reference) -> Optional[str]:
    """Why two monitors' window states cannot be merged (a config field or the reference), or None."""
    for f in STATE_FIELDS:
        va, vb = getattr(a_config, f), getattr(b_config, f)
        if va != vb and f == "features" and va and vb:
            na, nb = [x.name for x in va], [x.name for x in vb]
            if na != nb:
                return f"config 'features' differs (features {na} != {nb})"
            x, y = next((x, y) for x, y in zip(va, vb) if x != y)
            return f"config 'features' differs (feature {x.name!r}: {x} != {y})"
        if va != vb:
            return f"config {f!r} differs ({va!r:.120} != {vb!r:.120})"
    if a_ref.to_bytes() != b_ref.to_bytes():
        cols_a, cols_b = a_ref.profile.columns, b_ref.profile.columns
        bad = [n for n in cols_a if n not in cols_b
               or [s.to_bytes() for s in cols_a[n].sketches()] != [s.to_bytes() for s in cols_b[n].sketches()]]
        return ("the references differ" + (f" (column {bad[0]!r}: other bins, categories or counts)" if bad
                                           else " (other columns or types)"))
    return None

_live: "weakref.WeakSet[Ingest]" = weakref.WeakSet()  # restarted in a forked child


def _after_fork_child() -> None:
    for ingest in list(_live):
        ingest._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


# -- reference ------------------------------------------------------------------------------------

def _reference_table(reference) -> pa.Table:
    if isinstance(reference, (str, os.PathLike)):
        import pyarrow.parquet as pq
        try:
            return pq.read_table(os.fspath(reference))
        except (OSError, pa.ArrowInvalid) as exc:
            raise InvalidInputError(f"reference Parquet file {os.fspath(reference)!r}: {exc}") from None
    return as_table(reference, "the reference")


def build_reference(reference, config: MonitorConfig) -> Tuple[Reference, MonitorConfig]:
    """Profile the reference for ``config``; returns the Reference and the config with features resolved.

    ``reference`` is an Arrow Table / batches / C stream, a Parquet path, or a saved
    :class:`~fastdrift.Profile` (then its bins are used as they are, per-feature binning
    overrides cannot apply, and a prediction or KPI it lacks is left out).  The columns are
    :meth:`MonitorConfig.columns`, without t-digests: drift uses bins.
    """
    saved = isinstance(reference, Profile)
    table = None if saved else _reference_table(reference)
    names = list(reference.columns) if saved else table.schema.names
    where = "the reference profile" if saved else "the reference"
    wanted = [(f, "feature") for f in config.feature_names()]
    if not saved:
        wanted += [(config.prediction, "prediction column"), *((k, "KPI column") for k in config.kpis)]
    for n, what in wanted:
        if n is not None and n not in names:
            raise SchemaError(f"{what} {n!r} is not in {where} (it has {names})")
    if saved:
        cols = {n: reference[n].copy() for n in config.columns(names) if n in reference.columns}
        for cp in cols.values():
            cp.tdigest = None
        ref = Reference(Profile(cols, reference.rows), {n: None for n in cols}, tuple(names + reference.skipped))
    else:
        sketched = [n for n in names if column_kind(table.schema.field(n).type) is not None]
        prof = profile(table, columns=config.columns(sketched), tdigest=False)
        ref = Reference(prof, {n: str(table.schema.field(n).type) for n in prof.columns}, tuple(names))
    lat = config.latency
    if saved and lat in reference.columns and reference[lat].tdigest is not None:
        ref.latency = latency_quantiles(reference[lat].tdigest)
    elif table is not None and lat in names:
        ref.latency = latency_quantiles(_column_digest(table, lat, config))
        ref.rate = _reference_rate(table, config.event_time)
    perf = reference.performance if saved else None
    if config.label is not None:
        config = dataclasses.replace(config, task=infer_task(config, ref, table, perf))
    if config.label is not None and config.task != "multiclass" and config.prediction in ref.profile.columns \
            and ref.profile[config.prediction].kind != NUMERIC:
        raise SchemaError(f"prediction column {config.prediction!r} must be numeric to be joined with "
                          f"the label column {config.label!r} (task {config.task!r})")
    if table is not None and config.segment_by and config.segment_reference == "segment" \
            and all(c in names for c in config.segment_by):
        ref.segments = segment_references(table, ref, config)
    if table is not None and config.label is not None and config.label in names:
        ref.performance = reference_performance(table, config)
    if perf is not None and config.label is not None and (perf.prediction, perf.label) == (config.prediction,
                                                                                           config.label) \
            and type(perf.sketch) is type(new_performance(config)):
        ref.performance = perf.sketch.copy()  # a saved profile's performance sketch (profile(label=...))
    return ref, config.resolved(ref.profile)


def infer_task(config: MonitorConfig, ref: Reference, table: Optional[pa.Table], saved_perf=None) -> str:
    """The config's task, or, when it is None, the task the reference shows: a categorical
    prediction is a multiclass classifier; a label column in the reference with values other
    than 0/1 (or null) makes a float prediction a regression and an integer one a multiclass
    classifier; a saved profile's performance sketch names its task; anything else is binary
    (a score against 0/1 labels)."""
    if config.task is not None:
        return config.task
    pred = config.prediction
    if pred in ref.profile.columns and ref.profile[pred].kind != NUMERIC:
        return "multiclass"
    if saved_perf is not None:
        return {"MulticlassPerformance": "multiclass", "RegressionPerformance": "regression"}.get(
            type(saved_perf.sketch).__name__, "binary")
    if table is not None and config.label in table.schema.names:
        lab = table.column(config.label)
        lt = lab.type
        if pat.is_string(lt) or pat.is_large_string(lt) or pat.is_dictionary(lt):
            return "multiclass"
        if (pat.is_integer(lt) or pat.is_floating(lt)) and len(lab) > lab.null_count:
            v = float64_values(lab.combine_chunks())
            v = v[~np.isnan(v)]
            if v.size and not np.isin(v, (0.0, 1.0)).all():
                pt = table.schema.field(pred).type if pred in table.schema.names else None
                return "multiclass" if pt is not None and pat.is_integer(pt) and pat.is_integer(lt) else "regression"
    return "binary"


def segment_references(table: pa.Table, ref: Reference, config: MonitorConfig) -> Dict[str, Reference]:
    """The reference's own rows of each segment (keys past ``max_segments`` fold into ``<other>``,
    which is never compared with: see :meth:`Reference.for_segment`), counted on the whole
    reference's bins, with their latency quantiles and event-time rate."""
    seg = Segmenter(config.segment_by, config.max_segments)
    out = {}
    batch = table.combine_chunks()
    for key, sub in seg.split(batch):
        r = Reference(ref.profile.empty_like().update(sub), ref.types, ref.known)
        if config.label is not None and config.label in sub.schema.names:
            r.performance = reference_performance(sub, config)
        if config.latency is not None and config.latency in sub.schema.names:
            r.latency = latency_quantiles(_column_digest(sub, config.latency, config))
            r.rate = _reference_rate(sub, config.event_time)
        out[key] = r
    return out


def _column_digest(table: pa.Table, name: str, config: MonitorConfig) -> Optional[TDigest]:
    """The t-digest of a reference latency column, counted as windows count theirs (finite, >= 0)."""
    if column_kind(table.schema.field(name).type) != NUMERIC:
        raise SchemaError(f"latency column {name!r}: the reference has it as {table.schema.field(name).type}, "
                          f"expected numbers (milliseconds)")
    v = float64_values(table.column(name).combine_chunks())
    v = v[np.isfinite(v) & (v >= 0)]
    if not v.size:
        return None
    t = TDigest(config.tdigest_compression, name=name)
    t.update(v)
    return t


def _reference_rate(table: pa.Table, event_time: Optional[str]) -> float:
    """Rows per second of the reference's event-time span (as a row window's throughput), NaN
    without a usable event-time column."""
    if event_time is None or event_time not in table.schema.names:
        return math.nan
    try:
        v = float64_values(table.column(event_time).combine_chunks())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return math.nan
    v = v[np.isfinite(v)]
    span = float(v.max() - v.min()) if v.size else 0.0
    return v.size / span if span > 0 else math.nan


def reference_performance(table: pa.Table, config: MonitorConfig):
    """The reference's performance (the config's task): the prediction column against the label
    column (rows with a null label left out; bad rows counted by the sketch)."""
    lab = table.column(config.label)
    task = task_of(config)
    if not _label_type_ok(lab.type, task):
        raise SchemaError(f"label column {config.label!r}: {_LABEL_TYPES[task]}, got {lab.type}")
    keep = pc.is_valid(lab)
    perf = new_performance(config)
    pred = pc.filter(table.column(config.prediction), keep).combine_chunks()
    lab = pc.filter(lab, keep).combine_chunks()
    if task == "binary":
        labels, _ = binary_labels(lab)
        perf.update(float64_values(pred), labels)
    else:
        try:
            perf.update(pred, lab)
        except SchemaError as exc:
            raise SchemaError(f"prediction column {config.prediction!r} against label column {config.label!r} "
                              f"(task {task!r}): {exc}") from None
    return perf


_LABEL_TYPES = {"binary": "labels of a binary classifier are 0/1 (bool or number)",
                "multiclass": "class labels are strings, integers or booleans",
                "regression": "actuals of a regression are numbers"}


def _class_kind(t: pa.DataType) -> str:
    """``"str"`` for string classes (plain or dictionary-encoded), else ``"int"``."""
    if pat.is_dictionary(t):
        t = t.value_type
    return "str" if pat.is_string(t) or pat.is_large_string(t) else "int"


def _label_type_ok(t: pa.DataType, task: str) -> bool:
    """Whether a label column of Arrow type ``t`` can be counted for ``task``."""
    num = pat.is_boolean(t) or pat.is_integer(t) or pat.is_floating(t)
    if task == "multiclass":
        if pat.is_dictionary(t):
            t = t.value_type
        return num or pat.is_string(t) or pat.is_large_string(t)
    if task == "regression":
        return pat.is_integer(t) or pat.is_floating(t)
    return num


def _observed_type(type_str: Optional[str]) -> Optional[pa.DataType]:
    """The Arrow type of a reference type string that requests give as Python objects, else None."""
    if not type_str or not type_str.startswith(("timestamp[", "date", "time", "duration[", "decimal")):
        return None
    m = re.fullmatch(r"timestamp\[(s|ms|us|ns), tz=(.+)\]", type_str)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    m = re.fullmatch(r"decimal(128|256)\((\d+), (-?\d+)\)", type_str)
    if m:
        return (pa.decimal128 if m.group(1) == "128" else pa.decimal256)(int(m.group(2)), int(m.group(3)))
    try:
        return pa.type_for_alias(type_str)
    except (ValueError, KeyError):
        return None


# -- batch plans --------------------------------------------------------------------------------------

class _Plan:
    """How one batch schema maps onto the monitor: resolved once per distinct schema."""

    __slots__ = ("use", "changes", "fatal", "evidence")

    def __init__(self):
        self.use: Dict[str, bool] = {}  # column -> countable in this batch
        self.changes = []
        self.fatal: Optional[str] = None
        self.evidence: list = []  # the evidence columns this batch can give


class Ingest:
    """Windows of drift, data-quality and serving signals against a reference; stores no report.

    Parameters
    ----------
    reference : Arrow Table / batches / C stream, Parquet path, or a saved :class:`~fastdrift.Profile`
    config : :class:`MonitorConfig` (features None = every reference column without another role)
    on_closed : called with each sequence of newly closed reports, in window order, from the
        thread that closed them (``update``, ``flush`` or the buffer's worker)
    clock : the wall clock (seconds since the epoch; default :func:`time.time`) that times a row's
        arrival for the freshness signal: when its batch is counted, or its ``observe`` call

    Attributes
    ----------
    buffer : the :class:`~fastdrift.monitor.buffers.ObserveBuffer` requests go to
        (``buffer.observe`` is the request path)
    on_tick : called (no arguments) on the buffer's worker after each timed flush
    shed_total : ``observe`` requests shed under overload so far

    Notes
    -----
    Cost: ``update`` counts each feature once through the C kernels (histogram + moments,
    or the categorical hash table) and the latency column through the t-digest; windows
    close by merging pane sketches (O(bins)), never by re-reading rows.
    """

    def __init__(self, reference, config: MonitorConfig,
                 on_closed: Callable[[Sequence[WindowReport]], None], *, _ref: Optional[Reference] = None,
                 clock: Optional[Callable[[], float]] = None):
        if _ref is not None:
            self.ref, self.config = _ref, config
        else:
            self.ref, self.config = build_reference(reference, config)
        cfg = self.config
        self._on_closed = on_closed
        self.on_sketches = None  # optional fn(closed windows' (start, end, sketch, span)) before their reports
        self._state = threading.Lock()
        self._emit = threading.Lock()
        self._plans: Dict[tuple, _Plan] = {}
        self.windower = Windower(cfg.window, self._new_sketch, Totals(self.ref, cfg))
        # rows -> segments (docs/monitor.md "Segments"); its keys are kept with the windows
        self.windower.segmenter = Segmenter(cfg.segment_by, cfg.max_segments) if cfg.segment_by else None
        self.rejected_total = 0
        self.shed_total = 0  # observe() requests shed under overload
        self.last_error: Optional[str] = None
        self.on_tick: Optional[Callable[[], None]] = None
        self.spool = None  # a SpoolWriter when the monitor publishes to a spool
        self.clock = clock or time.time
        names = cfg.feature_names()
        types = [self._arrow_type(n) for n in names]
        text = [c for c in cfg.segment_by if c not in names]
        names, types = names + text, types + [pa.string()] * len(text)  # a request names its segment like a feature
        pred_type = self._arrow_type(cfg.prediction) if cfg.prediction else None
        self.buffer = ObserveBuffer(
            names, types, prediction=cfg.prediction, pred_type=pred_type, latency=cfg.latency,
            error=cfg.error, request_id=cfg.request_id, event_time=cfg.event_time,
            capacity=cfg.buffer_rows, sink=self._from_buffer, stamp_time=cfg.window.by == "time",
            strict=cfg.strict, background=cfg.background_flush, flush_interval=cfg.flush_interval,
            overload=cfg.overload, on_tick=self._tick, shadow_prediction=cfg.shadow_prediction,
            arrival=self.clock if cfg.freshness is not None else None, text_columns=text)
        self._evidence = cfg.evidence_sample()  # the key sequence and columns of every pane's sample
        self._stream = (None, 0)  # (os pid, evidence key stream) of the spool's process id
        # the label join store: predictions with a request id wait here for their labels
        self.labels: Optional[LabelStore] = (LabelStore(cfg) if cfg.label is not None and cfg.request_id is not None
                                             else None)
        self._carried = None  # labels observe_label held at the last tick, joined at the next
        if self.labels is not None:
            self.windower.on_pane_closed = self._pane_closed
        _live.add(self)

    def _after_fork(self) -> None:
        """In a forked child: count from zero, with fresh locks.  What the parent counted or had
        buffered stays the parent's (its buffer resets itself), so each row is counted by one process."""
        self._state = threading.Lock()
        self._emit = threading.Lock()
        if self.spool is not None:
            self.spool.after_fork()
        self.windower.drop_counts()
        self.windower.lifetime = Totals(self.ref, self.config)  # exported counters: the child's own rows
        self.windower.dropped_total = 0
        self.rejected_total = self.shed_total = 0
        self.last_error = None
        if self.labels is not None:  # the parent's predictions wait for their labels in the parent
            self.labels, self._carried = LabelStore(self.config), None

    def _arrow_type(self, name: str) -> pa.DataType:
        """The Arrow type a buffered request's value of ``name`` is stored as: the reference's
        for dates, timestamps, times, durations and decimals (a request holds ``datetime``,
        ``Decimal`` ... values; counted as the sketches count them), else float64, int64, bool or
        string by the sketch."""
        cp = self.ref.profile[name]
        if cp.kind == NUMERIC:
            return _observed_type(self.ref.types.get(name)) or pa.float64()
        return {"int": pa.int64(), "bool": pa.bool_()}.get(cp.categorical.key_type, pa.string())

    def _new_sketch(self) -> WindowSketch:
        return WindowSketch(self.ref, self.config)

    # -- public verbs ------------------------------------------------------------------------------
    def update(self, data) -> None:
        """Count Arrow data: a RecordBatch, Table, reader, PyCapsule object, or a list of them.

        A bad batch is rejected (rows counted, error kept in ``last_error``) unless strict.
        """
        for batch in iter_batches(data):
            self._update_batch(batch, 0, ())

    def flush(self) -> None:
        """Push buffered observations through the kernels, then join the labels ``observe_label``
        held (taken before the requests are counted: a label's prediction was observed before it)."""
        held = self.labels.take_observed() if self.labels is not None else None
        self.buffer.flush()
        with self._state:
            self._absorb()
            if self.labels is not None:
                carried, self._carried = self._carried, None
                for item in (carried, held):
                    if item is not None:
                        self._join(*item)
        self.close_idle()

    def _tick(self) -> None:
        """The buffer's timed flush is done (worker thread): take its counters, join the labels
        held at the previous tick (their predictions are counted by now) and take those held now,
        publish to the spool, then ``on_tick``."""
        with self._state:
            self._absorb()
            if self.labels is not None:
                if self._carried is not None:
                    self._join(*self._carried)
                self._carried = self.labels.take_observed()
        self.close_idle()
        self.publish(wait=None)
        if self.on_tick is not None:
            self.on_tick()

    def close_idle(self) -> None:
        """Close the windows an idle stretch completed (``window.idle_timeout``; the worker's tick
        and every flush read the clock)."""
        if self.config.window.idle_timeout is None:
            return
        with self._state:
            closed = self.windower.idle(self.clock())
            if closed:
                closed = self._take_closed(closed)
        self._emit_closed(closed)

    def _absorb(self) -> None:
        """Move the buffer's call-path counters into the windows (hold ``_state``): requests rejected
        before any batch (a missing feature) and requests shed; each goes to the next window emitted."""
        early, error, shed = self.buffer.take_counts()
        if early:
            self.last_error = error
            self.windower.pending_rejected += early
            self.rejected_total += early
        if shed:
            self.windower.pending_shed += shed
            self.shed_total += shed

    def snapshot(self) -> WindowReport:
        """The open window so far (buffered observations included), ``closed=False``."""
        self.flush()
        with self._state:
            start, end, merged, span = self.windower.open_window()
            totals = self.label_totals()
        return build_report(merged, start, end, False, span, label_totals=totals)

    def snapshot_sketch(self) -> Tuple[WindowReport, WindowSketch]:
        """:meth:`snapshot` and the open window's merged sketch (a copy) it was built from."""
        self.flush()
        with self._state:
            start, end, merged, span = self.windower.open_window()
            totals = self.label_totals()
        return build_report(merged, start, end, False, span, label_totals=totals), merged

    @contextlib.contextmanager
    def paused(self):
        """Hold counting and the hand-over of closed windows (for a consistent :meth:`write_state`)."""
        with self._state, self._emit:
            yield

    # -- ingestion -------------------------------------------------------------------------------------
    def _from_buffer(self, batch: pa.RecordBatch, rejected: int, reasons) -> None:
        if reasons:
            self.last_error = reasons[0]
        self._update_batch(batch, rejected, reasons)

    def _plan(self, schema: pa.Schema) -> _Plan:
        key = tuple((f.name, str(f.type)) for f in schema)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        cfg, ref = self.config, self.ref
        plan = _Plan()
        roles = {role: col for role, col in (("latency", cfg.latency), ("error", cfg.error),
                                             ("request_id", cfg.request_id), ("event_time", cfg.event_time))
                 if col is not None}
        plan.use, plan.changes = diff(ref.profile.columns, ref.types, schema,
                                      known=set(ref.known) | set(cfg.roles()) | set(cfg.feature_names()) | {ARRIVAL})
        for role, col in roles.items():
            if col not in schema.names:
                plan.use[col] = False
                plan.changes.append(SchemaChange(col, "missing", role, None))
            elif not ROLES[role](schema.field(col).type):
                plan.use[col] = False
                plan.changes.append(SchemaChange(col, "type", role, str(schema.field(col).type)))
            else:
                plan.use[col] = True
        if cfg.label is not None:  # optional in a batch: labels may come later (update_labels)
            lt = schema.field(cfg.label).type if cfg.label in schema.names else None
            plan.use[cfg.label] = lt is not None and _label_type_ok(lt, task_of(cfg))
            if plan.use[cfg.label] and task_of(cfg) == "multiclass" and cfg.prediction in schema.names \
                    and _class_kind(lt) != _class_kind(schema.field(cfg.prediction).type):
                plan.use[cfg.label] = False  # string classes against integer ones: never the same class
            if lt is not None and not plan.use[cfg.label]:
                plan.changes.append(SchemaChange(cfg.label, "type", "label", str(lt)))
        if cfg.shadow_prediction is not None and cfg.prediction in ref.profile.columns:
            # optional in a batch (a challenger may be switched off); of the champion's kind when there
            cp, st = ref.profile[cfg.prediction], (schema.field(cfg.shadow_prediction).type
                                                   if cfg.shadow_prediction in schema.names else None)
            plan.use[cfg.shadow_prediction] = st is not None and fits(
                cp.kind, cp.categorical.key_type if cp.categorical is not None else None, st)
            if st is not None and not plan.use[cfg.shadow_prediction]:
                plan.changes.append(SchemaChange(cfg.shadow_prediction, "type", "shadow_prediction", str(st)))
        if cfg.window.by == "time" and not plan.use.get(cfg.event_time):
            ch = [c for c in plan.changes if c.column == cfg.event_time][0]
            plan.fatal = (f"event-time column {cfg.event_time!r} is "
                          + ("missing from the batch" if ch.change == "missing"
                             else f"of type {ch.observed}, expected a timestamp or seconds"))
        if len(self._plans) >= 64:  # a stream of ever-new schemas must not grow memory without bound
            self._plans.clear()
        plan.evidence = [c for c in self._evidence.columns if plan.use.get(c, c in schema.names)]
        self._plans[key] = plan
        return plan

    def _update_batch(self, batch: pa.RecordBatch, rejected: int, reasons) -> None:
        try:
            plan = self._plan(batch.schema)
            if self.config.strict:
                hard = [c for c in plan.changes if c.change not in ("new", WITHIN_KIND)
                        and not (c.change == "type" and plan.use.get(c.column))]
                if hard:
                    c = hard[0]
                    raise SchemaError(f"column {c.column!r}: " + (
                        "missing from the batch" if c.change == "missing"
                        else f"type {c.observed}, expected {c.expected}"))
            if plan.fatal:
                raise SchemaError(plan.fatal)
            lab = self.config.label
            if self.config.strict and lab is not None and plan.use.get(lab) and task_of(self.config) != "multiclass":
                a = batch.column(lab)
                v, ok = self._label_values(a)
                bad = ~ok & (a.is_valid().to_numpy(zero_copy_only=False) if a.null_count else True)
                if bad.any():
                    raise InvalidInputError(f"label column {lab!r}: {int(bad.sum())} labels not "
                                            f"{'0/1' if task_of(self.config) == 'binary' else 'finite'}, "
                                            f"e.g. {v[bad][0]!r}")
            ts = self._times(batch, plan)
            codes = self._segment_codes(batch, plan)
        except FastDriftError as exc:
            if self.config.strict:
                raise
            self.last_error = str(exc)
            with self._state:
                self._absorb()
                self.windower.pending_rejected += batch.num_rows + rejected
                self.rejected_total += batch.num_rows + rejected
            return
        with self._state:
            self._absorb()
            w = self.windower
            w.pending_rejected += rejected
            self.rejected_total += rejected
            bad_ts = 0
            keys = None
            if w.by_time:
                ok = np.isfinite(ts)
                if not ok.all():
                    bad_ts = int((~ok).sum())
                    if self.config.strict:
                        raise InvalidInputError(f"event-time column {self.config.event_time!r}: "
                                                f"{bad_ts} null/NaN/inf times")
                    keep = np.flatnonzero(ok)
                    batch, ts = batch.take(pa.array(keep)), ts[keep]
                    codes = None if codes is None else codes[keep]
                    w.pending_rejected += bad_ts
                    self.rejected_total += bad_ts
                    self.last_error = f"event-time column {self.config.event_time!r}: {bad_ts} null/NaN/inf times"
                keys = self._keys(w.row_seq, batch.num_rows)
                w.row_seq += batch.num_rows
                groups, _ = w.split_times(ts)
                for pid, rows in groups:
                    if rows is None:
                        self._ingest(w.pane_sketch(pid), batch, plan, ts, keys, pid, codes)
                    elif isinstance(rows, slice):
                        self._ingest(w.pane_sketch(pid), batch.slice(rows.start, rows.stop - rows.start),
                                     plan, ts[rows], None if keys is None else keys[rows], pid,
                                     None if codes is None else codes[rows])
                    else:
                        self._ingest(w.pane_sketch(pid), batch.take(pa.array(rows)), plan, ts[rows],
                                     None if keys is None else keys[rows], pid, None if codes is None else codes[rows])
            else:
                keys = self._keys(w.row_seq, batch.num_rows)
                for pid, lo, hi in w.split_rows(batch.num_rows):
                    piece = batch.slice(lo, hi - lo)
                    t = ts[lo:hi] if ts is not None else None
                    self._ingest(w.pane_sketch(pid), piece, plan, t, None if keys is None else keys[lo:hi], pid,
                                 None if codes is None else codes[lo:hi])
            closed = self._take_closed()
        self._emit_closed(closed)

    def _take_closed(self, closed: Optional[list] = None) -> list:
        """The windows closed now (hold ``_state``); with any, the emit lock is taken before the
        state lock is left, so reports reach ``on_closed`` in window order."""
        closed = self.windower.close_ready() if closed is None else closed
        if closed and self.labels is not None:
            self.labels.compact({p for p, _ in self.windower.ring})
        if closed:
            self._emit.acquire()
        return closed

    def _emit_closed(self, closed: list) -> None:
        """Report the windows :meth:`_take_closed` returned, outside the state lock."""
        if not closed:
            return
        try:  # a closed report's label counts are the window's own (monitor-wide totals: the snapshot)
            if self.on_sketches is not None:
                self.on_sketches(closed)
            self._on_closed([build_report(ws, s, e, True, span) for s, e, ws, span in closed])
        finally:
            self._emit.release()

    def _keys(self, seq0: int, n: int) -> Optional[np.ndarray]:
        """Evidence sampling keys of the next ``n`` rows (None when evidence is off).

        A process publishing to a spool draws them from its own stream (its process id's): every
        process numbers its own rows, so one shared sequence would give the processes' samples the
        same keys, and their merge would not be a sample of the fleet.  Without a spool, the seed's
        own sequence."""
        if not self._evidence.enabled:
            return None
        if self.spool is None:
            return self._evidence.keys(seq0, n)
        if self._stream[0] != os.getpid():  # the default process id changes at a fork
            self._stream = (os.getpid(), stream_of(self.spool.process_id))
        return self._evidence.keys(seq0, n, self._stream[1])

    def _times(self, batch: pa.RecordBatch, plan: _Plan) -> Optional[np.ndarray]:
        """Event times in float seconds (NaN where null), or wall-clock stamps when there is none."""
        col = self.config.event_time
        if col is None or not plan.use.get(col):
            if self.config.window.by == "rows":
                return np.full(batch.num_rows, time.time())
            return None
        v = float64_values(batch.column(col))  # timestamps: epoch seconds, as the sketches count them
        if self.config.window.by == "rows" and not np.isfinite(v).all():
            # row windows only use times for throughput: a row without one gets its arrival time
            v = np.where(np.isfinite(v), v, time.time())
        return v

    def _col(self, piece: pa.RecordBatch, plan: _Plan, name: str):
        if plan.use.get(name):
            return piece.column(name)
        return pa.nulls(piece.num_rows)

    def _segment_codes(self, batch: pa.RecordBatch, plan: _Plan) -> Optional[np.ndarray]:
        """Per-row segment codes of the batch (None without ``segment_by``).  A segment column
        missing from the batch counts its rows under the value ``<null>`` (a schema change)."""
        seg = self.windower.segmenter
        if seg is None:
            return None
        missing = [c for c in seg.columns if c not in batch.schema.names]
        for c in missing:
            batch = batch.append_column(c, pa.nulls(batch.num_rows, pa.string()))
        if missing and not any(ch.column in missing for ch in plan.changes):
            plan.changes.extend(SchemaChange(c, "missing", "segment", None) for c in missing)
        return seg.assign(batch)

    def _ingest(self, ws: WindowSketch, piece: pa.RecordBatch, plan: _Plan, ts, keys, pid: int = 0,
                codes: Optional[np.ndarray] = None) -> None:
        """Count one piece into pane ``pid`` (under the state lock); with segment ``codes``, each
        row's columns into its segment's sketch only (the whole merges them when read)."""
        cfg = self.config
        n = piece.num_rows
        if codes is None:
            self._count(ws, piece, plan)
        else:
            self._count_segments(ws, piece, plan, codes)
        self._serving(ws, piece, plan)
        ws.rows += n
        if ts is not None:
            ws.add_times(ts)
        ws.note_schema(plan.changes)
        if keys is not None:
            ws.evidence.update(piece, keys, plan.evidence)
        # shadow and freshness are the whole's only, as labels are (docs/monitor.md "Segments")
        if ws.shadow is not None and plan.use.get(cfg.shadow_prediction) and plan.use.get(cfg.prediction):
            ws.shadow.update(piece.column(cfg.prediction), piece.column(cfg.shadow_prediction))
        if ws.freshness is not None and plan.use.get(cfg.event_time):
            # the column itself: row windows fill a missing time with the wall clock, which is no lag
            arrival = float64_values(piece.column(ARRIVAL)) if ARRIVAL in piece.schema.names else self.clock()
            ws.freshness.update(arrival, float64_values(piece.column(cfg.event_time)))
        if ws.labels is not None and plan.use.get(cfg.prediction):
            self._labels_of(ws.labels, piece, plan, ts, pid, codes)

    def _count_segments(self, ws: WindowSketch, piece: pa.RecordBatch, plan: _Plan, codes: np.ndarray) -> None:
        """Features, prediction, KPIs, latency and errors of each segment's rows into its sketch,
        each column read once (:func:`fastdrift.sketches.segmented.update_sketches`: the same state
        as counting the segment's rows alone); only the latency and error columns are taken per
        segment."""
        cfg = self.config
        keys = self.windower.segmenter.keys
        split = SegmentSplit(codes, len(keys))
        segs = [ws.segment(keys[s]) for s in split.present]
        if not segs:
            return
        for name, cp in segs[0].features.items():
            offer_gil()  # a request thread waiting for the GIL waits a slice, not the switch interval
            update_sketches([s.features[name].sketches() for s in segs], self._col(piece, plan, name), split, name,
                            cp.kind == CATEGORICAL)
        if segs[0].prediction is not None:
            update_sketches([s.prediction.sketches() for s in segs], self._col(piece, plan, cfg.prediction), split,
                            cfg.prediction, segs[0].prediction.kind == CATEGORICAL)
        for k in segs[0].kpis:
            if plan.use.get(k, k in piece.schema.names):
                update_sketches([[s.kpis[k]] for s in segs], piece.column(k), split, k)
        serving = [c for c in (cfg.latency, cfg.error) if c is not None and c in piece.schema.names]
        subs = split.batches(piece.select(serving)) if serving else [None] * len(segs)
        for s, j, sub in zip(segs, split.present, subs):
            if sub is not None:
                self._serving(s, sub, plan)
            s.rows += int(split.counts[j])

    def _count(self, ws: WindowSketch, piece: pa.RecordBatch, plan: _Plan) -> None:
        """Features, prediction and KPIs of a piece into ``ws`` (an unsegmented monitor's pane)."""
        cfg = self.config
        for name, cp in ws.features.items():
            offer_gil()  # a request thread waiting for the GIL waits a slice, not the switch interval
            cp.update(self._col(piece, plan, name))
        if ws.prediction is not None:
            ws.prediction.update(self._col(piece, plan, cfg.prediction))
        for k, m in ws.kpis.items():
            if plan.use.get(k, k in piece.schema.names):
                m.update(piece.column(k))

    def _serving(self, ws: WindowSketch, piece: pa.RecordBatch, plan: _Plan) -> None:
        """Latency and error flags of a piece into ``ws``."""
        cfg = self.config
        n = piece.num_rows
        if ws.latency is not None and plan.use.get(cfg.latency):
            a = piece.column(cfg.latency)
            v = float64_values(a)
            good = np.isfinite(v) & (v >= 0)
            n_good = int(good.sum())
            ws.latency_invalid += n - a.null_count - n_good
            if n_good:
                ws.add_latency(v if n_good == n else v[good])
        if cfg.error is not None and plan.use.get(cfg.error):
            a = piece.column(cfg.error)
            hits = a if pat.is_boolean(a.type) else pc.not_equal(a, 0)
            ws.errors += int(pc.sum(hits).as_py() or 0)
            ws.error_rows += n - a.null_count

    def _label_values(self, a) -> Tuple[np.ndarray, np.ndarray]:
        """``(labels as float64, valid)`` of a binary or regression label column (null: NaN, not
        valid; the callers count it as unlabelled)."""
        if task_of(self.config) == "binary":
            return binary_labels(a)
        v = float64_values(a)
        return v, np.isfinite(v)

    def _labels_of(self, lp: LabelPane, piece: pa.RecordBatch, plan: _Plan, ts, pid: int,
                   codes: Optional[np.ndarray] = None) -> None:
        """A piece's labels into the pane's labels and, with segment ``codes``, each segment's rows
        into the segment's labels too (the join store remembers each prediction's segment)."""
        if codes is None or lp.segments is None:
            n = self._labels_one(lp, piece, plan, ts, pid)  # (it counts into lp.predicted too)
            lp.predicted += n
            return
        cfg = self.config
        cols = [c for c in (cfg.prediction, cfg.label, cfg.request_id, cfg.shadow_prediction)
                if c is not None and c in piece.schema.names]
        part = piece.select(cols)
        keys = self.windower.segmenter.keys
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(keys))
        remembered, start = 0, 0
        for code in np.flatnonzero(counts).tolist():  # each segment's rows, in row order
            idx = order[start:start + counts[code]]
            start += counts[code]
            sp = lp.segment(keys[code], cfg)
            n = self._labels_one(sp, part.take(pa.array(idx)), plan, None if ts is None else ts[idx], pid,
                                 keys[code])
            sp.predicted += n
            remembered += n
        self._labels_one(lp, piece, plan, ts, pid, remember=False)
        lp.predicted += remembered

    def _labels_one(self, lp: LabelPane, piece: pa.RecordBatch, plan: _Plan, ts, pid: int,
                    segment: Optional[str] = None, remember: bool = True) -> int:
        """A piece's labels (its label column) into ``lp``'s performance; with ``remember``,
        predictions without one (a null label: no label yet), with a request id, into the join
        store (``segment``: their segment); returns how many it remembered (labellable predictions
        not yet counted in ``lp.predicted``).  A binary classifier's scores all go to the
        performance as unlabelled too (the estimate's input)."""
        cfg = self.config
        task = task_of(cfg)
        pred = piece.column(cfg.prediction)
        scores = float64_values(pred) if task != "multiclass" else None
        if task == "binary":
            lp.perf.update(scores)
        # the challenger's scores ride with the champion's (binary classifiers: both measured on labels)
        shadow = (float64_values(piece.column(cfg.shadow_prediction)) if plan.use.get(cfg.shadow_prediction)
                  else np.full(piece.num_rows, np.nan)) if shadow_labelled(cfg) else None
        wait = None  # rows whose label is yet to come
        if plan.use.get(cfg.label):
            a = piece.column(cfg.label)
            has = a.is_valid().to_numpy(zero_copy_only=False) if a.null_count else None
            if has is not None:
                wait = ~has
            if task == "multiclass":
                keep = pa.array(has) if has is not None else None
                lp.perf.update(pred if keep is None else pred.filter(keep), a if keep is None else a.filter(keep))
                lp.predicted += len(a) - a.null_count
            else:
                labels, _ = self._label_values(a)
                scores_l = scores if has is None else scores[has]
                shadow_l = shadow if has is None or shadow is None else shadow[has]
                labels = labels if has is None else labels[has]
                lp.add(scores_l, labels, shadow=shadow_l)
                lp.predicted += int(labels.size)
        if remember and self.labels is not None and plan.use.get(cfg.request_id) and (wait is None or wait.any()):
            ids = piece.column(cfg.request_id)
            t = ts if ts is not None else np.full(piece.num_rows, time.time())
            values = scores if task != "multiclass" else self.labels.codes_of(pred)[0]
            if task == "multiclass":  # a class beyond the store's class cap: not remembered (counted)
                cut = np.isnan(values) & pred.is_valid().to_numpy(zero_copy_only=False)
                if cut.any():
                    self.labels.counts["not_remembered"] += int((cut & (True if wait is None else wait)).sum())
                    wait = ~cut if wait is None else (wait & ~cut)
            if wait is not None:
                ids, values, t = ids.filter(pa.array(wait)), values[wait], t[wait]
                shadow = shadow[wait] if shadow is not None else None
            return self.labels.remember(ids, values, pid, t, shadow, segment)
        return 0

    # -- labels -------------------------------------------------------------------------------------
    def _pane_closed(self, pid: int, ws: WindowSketch) -> None:
        """Windower hook (state lock held): keep the pane's labels for labels still to come."""
        newest = ws.ts_max if ws.ts_max > -math.inf else self.labels.newest
        self.labels.pane_closed(pid, ws.labels, newest)

    def update_labels(self, data) -> None:
        """Join Arrow batches of labels (columns ``request_id`` and ``label`` of the config; the
        label's time from the ``event_time`` column when the batch has it, else now)."""
        cfg = self.config
        if self.labels is None:
            raise InvalidInputError("update_labels needs a monitor with label= and request_id= configured")
        for batch in iter_batches(data):
            names = batch.schema.names
            for col, role in ((cfg.request_id, "request id"), (cfg.label, "label")):
                if col not in names:
                    raise SchemaError(f"{role} column {col!r} is missing from the label batch (it has {names})")
            a = batch.column(cfg.label)
            null = a.is_null().to_numpy(zero_copy_only=False) if a.null_count else np.zeros(len(a), dtype=bool)
            if task_of(cfg) == "multiclass":
                if not _label_type_ok(a.type, "multiclass"):
                    raise SchemaError(f"label column {cfg.label!r}: {_LABEL_TYPES['multiclass']}, got {a.type}")
                with self._state:
                    labels, valid = self.labels.codes_of(a)
            else:
                labels, valid = self._label_values(a)
            if cfg.strict and not (valid | null).all():
                raise InvalidInputError(f"label column {cfg.label!r}: {int((~valid & ~null).sum())} labels not "
                                        f"{ {'binary': '0/1', 'regression': 'finite numbers'}.get(task_of(cfg), 'classes') } "
                                        f"or null")
            if cfg.event_time is not None and cfg.event_time in names:
                lts = float64_values(batch.column(cfg.event_time))
            else:
                lts = np.full(batch.num_rows, time.time())
            self.flush()  # predictions buffered by observe() are counted before their labels
            with self._state:
                self._join(batch.column(cfg.request_id), labels, valid, lts, null)

    def _join(self, ids, labels: np.ndarray, valid=None, lts=None, null=None) -> None:
        """Join labels to their predictions' panes (hold the state lock): an open pane's labels,
        or a closed one's kept by the store (its windows' reports are revised)."""
        store = self.labels
        if valid is None:
            valid = (labels == 0) | (labels == 1)
        pn, sc, lb, dl, sh, seg = store.join(ids, labels, valid, lts, null)
        if not pn.size:
            return
        if store.task == "multiclass":  # codes -> classes, as the sketch counts them
            sc, lb = store.classes_of(sc), store.classes_of(lb)
        if pn.size == 1 or (pn[0] == pn).all():
            groups = [(int(pn[0]), slice(None))]
        else:
            order = np.argsort(pn, kind="stable")
            cuts = np.flatnonzero(np.diff(pn[order])) + 1
            groups = [(int(pn[g[0]]), g) for g in np.split(order, cuts)]
        for p, rows in groups:
            ws = self.windower.open.get(p)
            if ws is not None:
                lp = ws.labels
            else:
                lp = store.kept(p)
                if lp is None:  # the pane's window state is gone: too late
                    n = int(pn[rows].size)
                    store.counts["late"] += n
                    store.counts["joined"] -= n
                    continue
                store.revised.add(p)
            if isinstance(sc, pa.Array) and not isinstance(rows, slice):
                idx = pa.array(rows)
                lp.add(sc.take(idx), lb.take(idx), dl[rows])
            else:
                lp.add(sc[rows], lb[rows], dl[rows], None if sh is None else sh[rows])
            if seg is not None and lp.segments is not None:  # and each prediction's segment's
                rows = np.arange(pn.size)[rows]
                for code in np.unique(seg[rows]).tolist():
                    if code >= len(store.segment_keys):  # remembered without a segment
                        continue
                    sub = rows[seg[rows] == code]
                    sp = lp.segment(store.segment_keys[code], self.config)
                    if isinstance(sc, pa.Array):
                        idx = pa.array(sub)
                        sp.add(sc.take(idx), lb.take(idx), dl[sub])
                    else:
                        sp.add(sc[sub], lb[sub], dl[sub])
            if self.spool is not None:
                self.spool.labels_changed.add(p)
        store.compact({p for p, _ in self.windower.ring})

    def label_totals(self) -> Optional[dict]:
        """The join store's counters (None without a store)."""
        return dict(self.labels.counts) if self.labels is not None else None

    def label_revisions(self, reports) -> Dict[int, dict]:
        """Index -> revised label fields of the closed ``reports`` whose panes labels reached
        since the last call (windows whose panes the store still holds)."""
        if self.labels is None:
            return {}
        with self._state:
            panes = self.labels.take_revised()
            if not panes:
                return {}
            step = self.windower.pane
            out = {}
            for i, r in enumerate(reports):
                if not r.label_counts:
                    continue
                try:
                    lo, hi = int(math.floor(float(r.window_start) / step + 0.5)), int(math.floor(float(r.window_end) / step + 0.5))
                except (TypeError, ValueError, OverflowError):
                    continue
                ids = range(lo, hi)
                if not any(p in panes for p in ids) or not all(p in self.labels.closed for p in ids):
                    continue
                merged = LabelPane(self.config)
                for p in ids:
                    merged.merge(self.labels.kept(p))
                out[i] = label_fields(merged, self.ref, r.features, None, self.config.labels.threshold)
                if r.segments and merged.segments is not None:  # each segment's labels, revised too
                    out[i]["segments"] = frozen_mapping({k: dataclasses.replace(sr, **label_fields(
                        segment_labels(merged, k, self.config), self.ref.for_segment(k)[0], sr.features, None,
                        self.config.labels.threshold)) for k, sr in r.segments.items()})
                if r.shadow is not None:  # the shadow's performance on the same rows, revised too
                    out[i]["shadow"] = dataclasses.replace(
                        r.shadow, **shadow_performance(merged, self.config.labels.threshold))
            self.labels.compact({p for p, _ in self.windower.ring})
            return out

    def totals(self) -> Totals:
        """Counts since this object was created (closed panes plus the open ones, see :class:`Totals`)."""
        with self._state:
            return self.windower.lifetime.plus(self.windower.open.values())

    # -- spool --------------------------------------------------------------------------------------------
    def attach_spool(self, where, process_id: Optional[str] = None, retention: int = 64) -> None:
        """Publish this process's panes to the spool ``where`` (see :mod:`.spool`) at each timed flush."""
        from .spool import SpoolWriter
        self.spool = SpoolWriter(where, process_id, self.ref, self.config, retention)
        self._stream = (None, 0)  # evidence keys from this process id's stream (see _keys)
        with self._state:
            self.windower.closed_log = []

    def publish(self, wait: Optional[float] = PUBLISH_TIMEOUT) -> None:
        """Encode the panes changed since the last publish (a consistent snapshot) and queue them
        for the spool's publisher thread (no-op without a spool), so a slow store never holds
        counting.  ``wait``: seconds to wait for them to be written (None = do not wait)."""
        if self.spool is None:
            return
        with self.spool.lock:  # collect and queue in one order: a newer version is queued last
            with self._state:
                items = self.spool.collect(self.windower, self.labels)
            ticket = self.spool.submit(items)  # also retries what failed before
        if wait is not None and not self.spool.wait(ticket, wait):
            _log.warning("fastdrift: spool %r did not take this process's panes within %.0f s; the "
                         "publisher thread keeps writing them", self.spool.store.where, wait)

    # -- merging -----------------------------------------------------------------------------------------
    def merge(self, other: "Ingest") -> None:
        """Merge ``other``'s open and recently closed panes, and its pending counts, into these.

        Raises IncompatibleSketchError for another reference or state config, or row windows
        (see :meth:`fastdrift.Monitor.merge`).
        """
        if other is self:
            raise InvalidInputError("a monitor cannot be merged into itself")
        why = state_difference(self.config, self.ref, other.config, other.ref)
        if why:
            raise IncompatibleSketchError(f"cannot merge monitors: {why}")
        if self.config.window.by != "time":
            raise IncompatibleSketchError(
                "cannot merge monitors with row-count windows: each process numbers its own rows, so "
                "their panes do not line up; use event-time windows (window={'by': 'time', ...})")
        other.flush()
        self.flush()
        with other._state:
            ow = other.windower
            panes = [(p, ws.copy()) for p, ws in list(ow.ring) + sorted(ow.open.items())]
            pending = (ow.pending_dropped, ow.pending_rejected, ow.pending_shed)
            max_ts = ow.max_ts
        self.merge_panes(panes, max_ts, pending)

    def merge_panes(self, panes, max_ts: float, pending=(0, 0, 0)) -> None:
        """Merge time panes ``(pane id, WindowSketch)`` (see :meth:`Windower.absorb`) and pending
        (dropped late, rejected, shed) counts, then close the windows they complete."""
        with self._state:
            w = self.windower
            w.absorb(panes, max_ts)
            w.pending_dropped += pending[0]
            w.pending_rejected += pending[1]
            w.pending_shed += pending[2]
            closed = self._take_closed()
        self._emit_closed(closed)

    # -- checkpoints ---------------------------------------------------------------------------------
    def write_state(self, w: codec.Writer) -> None:
        """Append reference, panes, window ring and counters to ``w`` (hold :meth:`paused`)."""
        w.blob(self.ref.to_bytes())
        w.blob(self.windower.to_bytes())
        w.u64(self.rejected_total)

    def label_state(self) -> bytes:
        """The join store's bytes (hold :meth:`paused`; empty without a store)."""
        return self.labels.to_bytes() if self.labels is not None else b""

    def load_labels(self, data: bytes) -> None:
        """Restore :meth:`label_state`; the window ring's panes share their labels with the store
        again, so labels joined later reach the windows still to close."""
        if not data:
            return
        if self.labels is None:
            raise CorruptStateError("checkpoint: a label store for a monitor without label and request_id")
        self.labels.load(data)
        ring = self.windower.ring
        for p, ws in ring:
            kept = self.labels.kept(p)
            if kept is not None:
                ws.labels = kept
        self.labels.compact({p for p, _ in ring})

    @classmethod
    def read_state(cls, r: codec.Reader, config: MonitorConfig, on_closed, clock=None) -> "Ingest":
        """The inverse of :meth:`write_state` (``config`` with its features resolved)."""
        ref = Reference.from_reader(codec.Reader(r.blob(), "monitor reference"))
        check_stored_config(ref, config, "checkpoint")
        ingest = cls(None, config, on_closed, _ref=ref, clock=clock)
        ingest.windower.load(r.blob(), lambda b: WindowSketch.from_bytes(b, ref, config))
        for ws in ingest.windower.open.values():  # counted by the process that saved them (see Totals)
            ingest.windower.lifetime.add(ws, -1)
        ingest.rejected_total = r.u64()
        if ingest.rejected_total > MAX_COUNT:
            raise CorruptStateError(f"checkpoint: {ingest.rejected_total} rejected rows, above {MAX_COUNT}")
        return ingest


# -- one-shot comparison --------------------------------------------------------------------------

def check_stored_config(ref: Reference, config: MonitorConfig, what: str) -> None:
    """A decoded config must fit the reference decoded beside it (CorruptStateError otherwise):
    features and prediction are reference columns, of the kind the config says."""
    cols = ref.profile.columns
    if not config.features:
        raise CorruptStateError(f"{what}: the config lists no features")
    for f in config.features:
        if f.name not in cols:
            raise CorruptStateError(f"{what}: feature {f.name!r} of the config is not in the reference "
                                    f"(it has {list(cols)})")
        if f.kind is not None and f.kind != cols[f.name].kind:
            raise CorruptStateError(f"{what}: feature {f.name!r} is {f.kind} in the config and "
                                    f"{cols[f.name].kind} in the reference")
    if config.prediction is not None and config.prediction not in cols:
        raise CorruptStateError(f"{what}: prediction column {config.prediction!r} is not in the reference "
                                f"(it has {list(cols)})")


def report_from_profiles(reference: Profile, current: Profile, config: Optional[MonitorConfig] = None, *,
                         schema_changes=(), evidence=(), window=(0, 1)) -> Tuple[WindowReport, MonitorConfig]:
    """Two profiles -> one closed :class:`~fastdrift.records.WindowReport` (``fastdrift compare``).

    :func:`build_report` of :func:`window_from_profiles`; ``window`` = (start, end) labels of the
    window in the report.  Parameters, returns and errors otherwise as there.
    """
    ws, cfg = window_from_profiles(reference, current, config, schema_changes=schema_changes, evidence=evidence)
    return build_report(ws, window[0], window[1], True, float("nan")), cfg


def window_from_profiles(reference: Profile, current: Profile, config: Optional[MonitorConfig] = None, *,
                         schema_changes=(), evidence=()) -> Tuple[WindowSketch, MonitorConfig]:
    """Two profiles -> the sketch of one window holding the current profile.

    The current profile is treated as one window counted on the reference's bins: the
    reference and the window sketch are built exactly as a running monitor builds them
    (:func:`build_reference`, :class:`WindowSketch`, :func:`build_report`), so a batch
    comparison and a live monitor report the same signals for the same data.

    Parameters
    ----------
    reference, current : Profile
        ``current`` must have been counted on ``reference``'s bins
        (``profile(data, reference=reference)``) for every monitored column.
    config : MonitorConfig, optional
        Roles (prediction, latency, KPIs, label) and the feature list; default every column is a feature.
        The latency column's t-digest (in ``current``) becomes the latency signal; with a label
        column, the profiles' performance sketches (``profile(..., label=...)``) the window's
        performance and the reference's.
    schema_changes : iterable of SchemaChange
        Reported as they are (the caller knows the Arrow types; a Profile keeps only kinds).
    evidence : iterable of (key, row)
        Already redacted sample rows of the current data with their sampling keys (the
        ``config.evidence.max_rows`` smallest keys are kept, as in a monitor's window).

    Returns
    -------
    (WindowSketch, MonitorConfig)
        The window and the config with its features resolved.

    Raises
    ------
    SchemaError
        A monitored column is missing from ``current`` or has another kind there.
    IncompatibleSketchError
        A numeric column of ``current`` was counted on other bins than the reference's.
    """
    config = config or MonitorConfig()
    roles = config.roles()
    lat = config.latency
    ref, cfg = build_reference(reference, config)
    ws = WindowSketch(ref, cfg)

    monitored = dict(ws.features)
    if ws.prediction is not None:
        monitored[cfg.prediction] = ws.prediction
    check_profiles(monitored, current, bins=True)

    def take(name: str) -> ColumnProfile:
        cp = current.columns[name].copy()
        cp.tdigest = None
        return cp

    for n in list(ws.features):
        ws.features[n] = take(n)
    if ws.prediction is not None:
        ws.prediction = take(cfg.prediction)
    if ws.latency is not None:
        cp = current.columns.get(lat)
        if cp is None or cp.kind != NUMERIC or cp.tdigest is None:
            raise SchemaError(f"latency column {lat!r}: the current profile has no numeric column with a "
                              "t-digest of that name")
        ws.latency.merge(cp.tdigest)
    for k in list(ws.kpis):
        cp = current.columns.get(k)
        if cp is None or cp.kind != NUMERIC:
            raise SchemaError(f"KPI column {k!r} is missing from the current data or not numeric")
        ws.kpis[k] = cp.moments.copy()
    if ws.labels is not None:  # the window's performance: the current profile's sketch (profile(label=...))
        cp = current.performance
        if cp is None or (cp.prediction, cp.label) != (cfg.prediction, cfg.label):
            raise SchemaError(f"the current profile has no performance sketch of {cfg.prediction!r} against "
                              f"the label column {cfg.label!r}")
        ws.labels.perf = cp.sketch.copy()
        ws.labels.predicted = cp.sketch.labelled + cp.sketch.unlabelled
        ws.labels.scored_all = False  # a profile counts a row once: labelled, or unlabelled
    ws.rows = current.rows
    changes = list(schema_changes)
    seen = {(c.column, c.change) for c in changes}
    new = changes_of({}, {n: cp.kind for n, cp in current.columns.items()}, reference.columns,
                     known=set(reference.skipped) | set(roles))
    ws.note_schema(changes + [c for c in new if (c.column, c.change) not in seen])
    ws.evidence.add([(int(k), dict(row)) for k, row in evidence])
    return ws, cfg
