"""Immutable records that cross stages: monitor -> alert evaluator -> exporters.

A leaf module (like :mod:`fastdrift.errors`): every stage may import it, it
imports no stage.  Records are frozen dataclasses holding plain Python values
(floats, ints, strings, tuples, read-only mappings), so they are safe to hand
to other threads, to serialise as JSON (:func:`to_jsonable`), and never change
after they are made.

Two JSON forms, both here beside the records: :func:`to_jsonable` for humans,
sinks and reports (plain values, NaN as a string), and the exact form
:func:`to_json` / :func:`from_json` for state that is read back (monitor
checkpoints, the alert evaluator's state).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple, Union, get_args, get_origin, get_type_hints

__all__ = [
    "BinContribution", "DriftSignal", "LatencySignal", "KpiSignal", "SchemaChange", "ShadowSignal",
    "FreshnessSignal", "WindowReport", "Alert", "ActionRecord", "CanaryReason", "SegmentComparison", "frozen_mapping",
    "to_jsonable", "to_json", "from_json",
]


_EMPTY: Mapping = MappingProxyType({})


def frozen_mapping(d: Optional[Mapping] = None) -> Mapping:
    """A read-only view of a copy of ``d`` (records never share mutable state); every empty one is
    the same view (a report's empty fields add no objects for the garbage collector to traverse)."""
    return MappingProxyType(dict(d)) if d else _EMPTY


@dataclass(frozen=True)
class BinContribution:
    """One bin's share of a drift value: which values moved, and by how much."""

    label: str
    ref_share: float
    cur_share: float
    contribution: float


class _Contributions:
    """The ``contributions`` field of :class:`DriftSignal`: a tuple of :class:`BinContribution`
    when read, held as one flat tuple ``(label, ref_share, cur_share, contribution, label, ...)``.

    A closed window keeps ten contributions per column and segment; dataclass instances stay
    tracked by the cyclic garbage collector for as long as they live (every full collection
    traverses them), while a tuple of strings and floats is untracked at the first collection
    that sees it.  Each read builds equal :class:`BinContribution` records; a value that is not
    a tuple of them is held and returned as given.
    """

    def __set_name__(self, owner, name):
        self._slot = f"_{name}_held"

    def __get__(self, obj, owner=None):
        if obj is None:
            return ()  # the field's default
        held = getattr(obj, self._slot)
        if type(held) is not tuple:
            return held[0]
        it = iter(held)
        return tuple([BinContribution(*c) for c in zip(it, it, it, it)])

    def __set__(self, obj, value):
        if type(value) is tuple and all(type(c) is BinContribution for c in value):
            held = tuple([x for c in value for x in (c.label, c.ref_share, c.cur_share, c.contribution)])
        else:
            held = [value]
        object.__setattr__(obj, self._slot, held)


@dataclass(frozen=True)
class DriftSignal:
    """Drift of one column (a feature or the prediction) in one window vs the reference.

    ``value`` is the column's configured metric (PSI on reference deciles by
    default); ``contributions`` are the per-bin terms, largest first;
    ``pvalue`` is the sample-size-aware test of the same bins (G-test /
    chi-square relation of PSI), NaN when not computed.
    """

    column: str
    kind: str
    metric: str
    value: float
    n_ref: int
    n_cur: int
    missing_ref: float
    missing_cur: float
    contributions: Tuple[BinContribution, ...] = _Contributions()  # noqa: RUF009 - a descriptor field
    pvalue: float = math.nan
    mean_ref: Optional[float] = None
    mean_cur: Optional[float] = None

    @property
    def missing_delta(self) -> float:
        return self.missing_cur - self.missing_ref


@dataclass(frozen=True)
class LatencySignal:
    """Serving latency of a window, from a t-digest (milliseconds), and the reference's quantiles
    (``ref_*``, NaN when the reference has no latency column) that relative rules compare with."""

    count: int
    p50: float
    p95: float
    p99: float
    invalid: int = 0  # NaN / inf / negative latencies: counted, not inserted
    ref_p50: float = math.nan
    ref_p95: float = math.nan
    ref_p99: float = math.nan


@dataclass(frozen=True)
class ShadowSignal:
    """A challenger's predictions against the champion's on the same rows of a window
    (docs/monitor.md "Shadow predictions").

    ``rows`` counts rows with both predictions, ``unpaired`` rows where either is missing;
    ``agreement`` = ``agree / rows`` by ``mode`` (``"threshold"``, ``"equal"``, ``"tolerance"``);
    ``score_diff`` quantiles (``p01``...``p99``) of shadow minus champion (numeric predictions, from
    a t-digest); ``psi`` / ``js`` the drift of the shadow's prediction distribution from the
    champion's on the reference's bins; ``labelled`` the labelled rows with both predictions and
    ``performance`` / ``performance_champion`` the metrics of each on those rows.
    """

    column: str
    mode: str
    rows: int
    unpaired: int
    agree: int
    agreement: float
    score_diff: Mapping[str, float] = field(default_factory=frozen_mapping)
    psi: float = math.nan
    js: float = math.nan
    labelled: int = 0
    performance: Mapping[str, float] = field(default_factory=frozen_mapping)
    performance_champion: Mapping[str, float] = field(default_factory=frozen_mapping)


@dataclass(frozen=True)
class FreshnessSignal:
    """Lag from event time to arrival of a window's rows, in seconds (docs/monitor.md "Freshness"):
    quantiles from a t-digest, ``max`` exact, ``over_sla`` rows whose lag exceeds ``sla`` (NaN:
    no SLA set, nothing counted)."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    over_sla: int = 0
    sla: float = math.nan


@dataclass(frozen=True)
class KpiSignal:
    """A business KPI column's mean in the window against the reference mean."""

    column: str
    mean: float
    ref_mean: float

    @property
    def delta(self) -> float:
        return self.mean - self.ref_mean


@dataclass(frozen=True)
class SchemaChange:
    """A column missing, new, or of another type than in the reference."""

    column: str
    change: str  # "missing" | "new" | "type"
    expected: Optional[str] = None
    observed: Optional[str] = None


@dataclass(frozen=True)
class Alert:
    """One state transition of one rule: what fired, why, and where to look.

    ``observed`` / ``thresholds`` map each condition of the rule to the value
    seen and the threshold it crossed; ``top_features`` lists the features
    contributing most, each with its per-bin contributions; ``evidence`` rows
    are already redacted.
    """

    rule: str
    severity: str          # "warning" | "critical"
    state: str             # "pending" | "firing" | "resolved"
    previous_state: str
    window_start: Any
    window_end: Any
    observed: Mapping[str, float]
    thresholds: Mapping[str, float]
    owner: str
    runbook: str
    summary: str = ""
    top_features: Tuple[DriftSignal, ...] = ()
    evidence: Tuple[Mapping[str, Any], ...] = ()
    segment: str = ""      # the segment key of a rule with a segment selector ("" = the whole)


@dataclass(frozen=True)
class ActionRecord:
    """One decision of an :class:`~fastdrift.alerts.ActionSink`: what it did, on whose alert, and why.

    ``outcome`` is ``"ok"`` (the callback returned), ``"error"`` (it raised: ``error`` holds the
    exception), ``"dry_run"`` (not called: dry-run mode), ``"rate_limited"`` (not called: the
    action ran less than its minimum interval ago) or ``"no_callback"`` (no callback is
    configured under the action's name).  ``actor`` names the sink (who), ``reason`` is the
    alert's summary (why), ``time`` the UTC time of the decision (ISO 8601).  ``record`` is always
    ``"action"``: in an alert log it tells these lines from the alerts.
    """

    action: str
    rule: str
    incident: str
    severity: str
    alert_state: str
    window_start: Any
    window_end: Any
    reason: str
    owner: str
    actor: str
    callback: str
    time: str
    dry_run: bool
    outcome: str
    error: str = ""
    duration_ms: float = 0.0            # time in the callback (0 when not called)
    record: str = "action"


@dataclass(frozen=True)
class WindowReport:
    """Everything measured in one window (closed, or the open one so far).

    With a label column (docs/monitor.md "Labels and performance"): ``performance`` is the
    window's performance by metric name (of the task's sketch, of the predictions made in the
    window whose labels have arrived; for a binary classifier also ``estimated_*`` from every
    scored prediction's score), ``performance_ref`` the reference's,
    ``label_coverage`` labelled / labellable predictions (None: no predictions to label), ``label_delay`` label delay quantiles
    in seconds (``p50``, ``p95``, ``p99``), ``label_counts`` the window's own ``predicted``,
    ``labelled`` (and ``scored``, binary) and, in the open window's report only (``snapshot()``),
    the monitor-wide label totals as of then (``joined``, ``unmatched``, ``late``, ``duplicate``,
    ``invalid``, ``unlabelled``, ``shed``, ``not_remembered``...), ``concept`` the concept-drift view (see
    :data:`fastdrift.monitor.signals.CONCEPT_VIEWS`).  A window's performance is revised as late
    labels arrive (``Monitor.reports()``); ``label_coverage`` says how complete it is.
    ``shadow`` (with a ``shadow_prediction`` column) compares a challenger with the champion
    (:class:`ShadowSignal`); ``freshness`` (with ``freshness`` configured) is the lag from event time
    to arrival (:class:`FreshnessSignal`).

    With ``segment_by`` (docs/monitor.md "Segments"): the report is the whole window and
    ``segments`` maps each segment key (``"arm=canary"``) to that segment's own report, whose
    ``segment`` is the key and ``segment_reference`` says what its drift was measured against:
    ``"segment"`` (the reference's rows of the same key) or ``"whole"`` (the whole reference).
    Labels, ``shadow`` and ``freshness`` are the whole's only: a segment's report has none.
    """

    window_start: Any
    window_end: Any
    closed: bool
    rows: int
    rejected: int = 0
    dropped_late: int = 0
    shed: int = 0                         # observe() requests not counted: the monitor was overloaded
    throughput: float = math.nan          # rows per second of the window's span
    throughput_ref: float = math.nan      # rows per second of the reference's event-time span
    features: Mapping[str, DriftSignal] = field(default_factory=frozen_mapping)
    prediction: Optional[DriftSignal] = None
    latency: Optional[LatencySignal] = None
    errors: int = 0
    error_rate: float = math.nan
    kpis: Mapping[str, KpiSignal] = field(default_factory=frozen_mapping)
    schema_changes: Tuple[SchemaChange, ...] = ()
    evidence: Tuple[Mapping[str, Any], ...] = ()
    alerts: Tuple[Alert, ...] = ()
    performance: Mapping[str, float] = field(default_factory=frozen_mapping)
    performance_ref: Mapping[str, float] = field(default_factory=frozen_mapping)
    label_coverage: Optional[float] = None
    label_delay: Mapping[str, float] = field(default_factory=frozen_mapping)
    label_counts: Mapping[str, int] = field(default_factory=frozen_mapping)
    concept: str = ""
    shadow: Optional[ShadowSignal] = None
    freshness: Optional[FreshnessSignal] = None
    segment: str = ""
    segment_reference: str = ""
    segments: Mapping[str, "WindowReport"] = field(default_factory=frozen_mapping)
    comparisons: Mapping[str, "SegmentComparison"] = field(default_factory=frozen_mapping)  # by canary rule


@dataclass(frozen=True)
class CanaryReason:
    """One canary trigger that decided a verdict: ``trigger`` (``"kpi:revenue"``, ``"psi"``,
    ``"error_rate"``, ``"p99_ratio"``, ``"min_rows"``), the ``observed`` value against its
    ``threshold``, and for a sequential test its always-valid ``pvalue`` and confidence sequence
    ``[lower, upper]`` (NaN for the per-window triggers)."""

    trigger: str
    observed: float
    threshold: float
    pvalue: float = math.nan
    lower: float = math.nan
    upper: float = math.nan


@dataclass(frozen=True)
class SegmentComparison:
    """Segment ``b`` (a canary arm) against segment ``a`` (the baseline) in one window
    (``Monitor.compare_segments``; docs/monitor.md "Canary comparisons").

    ``prediction`` / ``features``: the drift of b's distribution against a's on the reference's
    bins (a as the reference side).  ``latency``: ``a_p50`` .. ``b_p99`` (ms) and ``ratio_p50`` ..
    ``ratio_p99`` (b / a).  ``error_rate``: ``a``, ``b`` (the window's rates) and the sequential
    rate test since the canary began (``estimate``, ``lower``, ``upper``, ``pvalue``, ``reject``,
    ``n_a``, ``n_b``, ``windows``).  ``kpis``: per KPI ``a``, ``b`` (the window's means),
    ``relative`` (b / a - 1) and the sequential relative mean test's fields.  ``performance``:
    ``a`` / ``b``, each arm's window performance (its segment report's; absent without labels).  ``verdict`` is
    ``"promote"``, ``"hold"`` or ``"rollback"``, decided by ``reasons``; ``windows`` counts the
    windows fed to the sequential tests since ``since`` (the start of the first window in which
    both arms had rows), ``clean_windows`` the latest run of windows without a trigger.
    """

    a: str
    b: str
    window_start: Any
    window_end: Any
    rows_a: int
    rows_b: int
    share_b: float
    prediction: Optional[DriftSignal] = None
    features: Mapping[str, DriftSignal] = field(default_factory=frozen_mapping)
    latency: Mapping[str, float] = field(default_factory=frozen_mapping)
    error_rate: Mapping[str, Any] = field(default_factory=frozen_mapping)
    kpis: Mapping[str, Mapping[str, Any]] = field(default_factory=frozen_mapping)
    performance: Mapping[str, Mapping[str, float]] = field(default_factory=frozen_mapping)
    verdict: str = "hold"
    reasons: Tuple[CanaryReason, ...] = ()
    since: Any = None
    windows: int = 0
    clean_windows: int = 0


def to_jsonable(obj):
    """Plain JSON-ready structures (dicts, lists, floats; NaN/inf as strings) for any record."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return out
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "item"):  # numpy scalars
        return to_jsonable(obj.item())
    return str(obj)


_RECORDS = {c.__name__: c for c in (BinContribution, DriftSignal, LatencySignal, KpiSignal, SchemaChange,
                                    ShadowSignal, FreshnessSignal, Alert, ActionRecord, WindowReport,
                                    CanaryReason, SegmentComparison)}


def to_json(obj):
    """The exact JSON form of a record, read back equal by :func:`from_json` (never pickle).

    A record is ``{"@": class name, "f": {field: value}}``, a mapping ``{"@m": [[key, value], ...]}``,
    a tuple ``{"@t": [...]}``, a datetime / date ``{"@dt": iso}`` / ``{"@d": iso}``; floats keep
    NaN and infinities through Python's JSON extension (``NaN``, ``Infinity``).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"@": type(obj).__name__,
                "f": {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, Mapping):
        return {"@m": [[to_json(k), to_json(v)] for k, v in obj.items()]}
    if isinstance(obj, (tuple, list)):
        return {"@t": [to_json(v) for v in obj]}
    if isinstance(obj, _dt.date):
        return {"@dt" if isinstance(obj, _dt.datetime) else "@d": obj.isoformat()}
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        return obj.item()
    return obj


_BOUNDS = ("window_start", "window_end")  # typed Any (datetime or a number), never None


def _check(value, hint, where: str) -> None:
    """TypeError unless ``value`` has the annotated type ``hint`` (records' own annotations)."""
    if hint is Any:
        return
    origin, args = get_origin(hint), get_args(hint)
    if origin is Union:
        if value is None and type(None) in args:
            return
        hints = [a for a in args if a is not type(None)]
        if len(hints) == 1:
            return _check(value, hints[0], where)
        if not any(_fits(value, a, where) for a in hints):
            raise TypeError(f"{where}: {type(value).__name__} is none of {hints}")
        return
    if origin in (tuple, Tuple):
        if not isinstance(value, tuple):
            raise TypeError(f"{where}: expected a tuple, got {type(value).__name__}")
        for i, v in enumerate(value):
            _check(v, args[0] if args else Any, f"{where}[{i}]")
        return
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a mapping, got {type(value).__name__}")
        for k, v in value.items():
            _check(k, args[0] if args else Any, f"{where} key")
            _check(v, args[1] if args else Any, f"{where}[{k!r}]")
        return
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise TypeError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}")


def _fits(value, hint, where: str) -> bool:
    try:
        _check(value, hint, where)
    except TypeError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _hints(cls):
    return get_type_hints(cls)


def _record(name, fields):
    """One record from its decoded fields, each checked against the class's annotations: a
    checkpoint edited by hand or damaged fails here, not later where a field is used."""
    cls = _RECORDS[name]
    hints = _hints(cls)
    if not isinstance(fields, dict) or not set(fields) <= set(hints):
        raise TypeError(f"{name}: unknown fields {sorted(set(fields) - set(hints)) if isinstance(fields, dict) else fields!r}")
    for k, v in fields.items():
        _check(v, hints[k], f"{name}.{k}")
        if k in _BOUNDS and (v is None or isinstance(v, (bool, str))):
            raise TypeError(f"{name}.{k}: expected a time, got {type(v).__name__}")
    return cls(**fields)


def from_json(x):
    """Rebuild what :func:`to_json` wrote; KeyError / TypeError / ValueError on anything else,
    including a field whose value is not of the record's annotated type."""
    if isinstance(x, dict):
        if "@" in x:
            return _record(x["@"], {k: from_json(v) for k, v in x["f"].items()})
        if "@m" in x:
            return frozen_mapping({from_json(k): from_json(v) for k, v in x["@m"]})
        if "@t" in x:
            return tuple(from_json(v) for v in x["@t"])
        if "@dt" in x:
            return _dt.datetime.fromisoformat(x["@dt"])
        if "@d" in x:
            return _dt.date.fromisoformat(x["@d"])
        raise KeyError(f"unknown JSON record form with keys {sorted(x)}")
    if isinstance(x, float) and x != x:
        return math.nan  # the one NaN object: records with NaN fields read back equal (== compares by identity first)
    return x
