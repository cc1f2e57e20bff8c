"""Monitor configuration: dataclasses, and loading them from YAML/TOML files.

Every setting has a default except the feature list (which defaults to every
reference column that is not assigned another role).  Files are validated
strictly: an unknown key or a value of the wrong type raises
:class:`~fastdrift.errors.InvalidInputError` naming the key path (for example
``window.size``), because a typo in a monitoring config otherwise silently
disables a signal.  The ``rules:`` section is not interpreted here; it is
passed through untouched for the alerts stage.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ..adapters.segments import DEFAULT_MAX_SEGMENTS, check_segment_columns
from ..errors import InvalidInputError
from ..settings import read_file
from ..sketches.profile import NUMERIC, Profile
from ..sketches.sample import RowSample

__all__ = ["FeatureSpec", "WindowSpec", "EvidenceSpec", "LabelSpec", "ShadowSpec", "FreshnessSpec", "MonitorConfig",
           "load_config", "spec_from_dict", "config_from_dict", "config_to_dict", "METRICS", "OVERLOAD", "TASKS",
           "SEGMENT_REFERENCES", "PROMETHEUS_LABELS", "segment_label_names"]

#: Divergences a feature may use; PSI is the default (credit-scoring convention, reference deciles).
METRICS = ("psi", "js", "hellinger", "tv")
_KINDS = (None, "numeric", "categorical")
#: The largest ``buffer_rows``: up to five buffers' worth of requests wait for the observe worker.
MAX_BUFFER_ROWS = 1 << 20
#: The largest ``labels.max_predictions`` (the join store's table grows to twice this many slots).
MAX_LABEL_PREDICTIONS = 1 << 28
_STRATEGIES = ("quantile", "uniform")
#: The model tasks whose performance a monitor measures (``MonitorConfig.task``).
TASKS = ("binary", "multiclass", "regression")
#: What ``observe`` does when its worker falls behind (see :mod:`fastdrift.monitor.buffers`).
OVERLOAD = ("shed", "sample", "block")
#: What a segment's drift is measured against: the reference's rows of the same segment when the
#: reference data has the segment columns ("segment"), or always the whole reference ("whole").
SEGMENT_REFERENCES = ("segment", "whole")
#: Label names fastdrift's own Prometheus series use (fastdrift.exporters.prometheus): a segment
#: column's label may not take one of them.
PROMETHEUS_LABELS = ("feature", "role", "bin", "metric", "quantile", "rule", "severity", "kpi", "segment", "le")


def segment_label_names(segment_by) -> Tuple[str, ...]:
    """The Prometheus label name of each segment column: characters outside ``[a-zA-Z0-9_]``
    become ``_``, a leading digit gets a ``_`` prefix.  InvalidInputError (naming the column)
    when a name is one of :data:`PROMETHEUS_LABELS`, starts with ``__`` (reserved by
    Prometheus), or two columns give the same label."""
    out = []
    for col in segment_by:
        name = re.sub(r"[^a-zA-Z0-9_]", "_", col)
        if name[:1].isdigit():
            name = "_" + name
        if name in PROMETHEUS_LABELS or name.startswith("__"):
            _fail("segment_by", f"column {col!r} would be the Prometheus label {name!r}, which fastdrift's own "
                                f"series use ({', '.join(PROMETHEUS_LABELS)}) or Prometheus reserves (__*); "
                                f"rename the column")
        if name in out:
            _fail("segment_by", f"columns {segment_by[out.index(name)]!r} and {col!r} both become the Prometheus "
                                f"label {name!r}")
        out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class FeatureSpec:
    """One monitored column.

    Parameters
    ----------
    name : column name
    kind : ``"numeric"``, ``"categorical"`` or None (from the reference's Arrow type)
    bins : reference bins of a numeric column (10 = deciles; counts the two open outer bins)
    strategy : ``"quantile"`` (reference quantiles) or ``"uniform"`` (equal width)
    metric : one of :data:`METRICS`, default ``"psi"``
    """

    name: str
    kind: Optional[str] = None
    bins: int = 10
    strategy: str = "quantile"
    metric: str = "psi"


@dataclass(frozen=True)
class WindowSpec:
    """Window policy.

    Parameters
    ----------
    by : ``"rows"`` (tumbling/sliding by row count) or ``"time"`` (by event time, seconds)
    size : rows per window, or seconds per window
    slide : pane size for sliding windows (must divide ``size``); None = tumbling
    allowed_lateness : seconds an event may arrive behind the newest event time and still go
        to its pane (``by="time"`` only); later ones are counted in ``dropped_late``
    idle_timeout : seconds of wall clock without a newer event time after which event time is
        taken to advance with the wall clock (``by="time"`` only; None = off): windows then close
        through an outage, empty, so a volume rule sees the traffic stop.  An event that arrives
        later for a pane closed this way counts in ``dropped_late``.
    """

    by: str = "rows"
    size: float = 100_000
    slide: Optional[float] = None
    allowed_lateness: float = 0.0
    idle_timeout: Optional[float] = None

    @property
    def pane(self) -> float:
        return self.slide if self.slide is not None else self.size

    @property
    def panes_per_window(self) -> int:
        return int(round(self.size / self.pane))


@dataclass(frozen=True)
class EvidenceSpec:
    """Raw-row evidence kept per window (a bounded, uniform, redacted sample).

    Parameters
    ----------
    rate : probability a row is sampled (e.g. 0.01-0.05); 0 disables evidence
    max_rows : at most this many rows per window (bottom-k of a per-row hash: uniform and mergeable)
    drop : columns removed before a row is stored
    hash : columns replaced by a salted SHA-256 prefix (16 hex digits) before a row is stored
    salt : salt of the hash
    seed : seed of the per-row sampling hash (sampling is deterministic given seed and row order)
    """

    rate: float = 0.01
    max_rows: int = 100
    drop: Tuple[str, ...] = ()
    hash: Tuple[str, ...] = ()
    salt: str = ""
    seed: int = 0

    def sample(self, columns) -> RowSample:
        """An empty :class:`~fastdrift.sketches.sample.RowSample` of ``columns`` with these settings."""
        return RowSample(columns, rate=self.rate, max_rows=self.max_rows, seed=self.seed, drop=self.drop,
                         hash=self.hash, salt=self.salt)


@dataclass(frozen=True)
class LabelSpec:
    """How labels are joined to predictions (docs/monitor.md "Labels and performance").

    Parameters
    ----------
    max_predictions : predictions the join store remembers at most (its memory bound: see
        :data:`fastdrift.monitor.labels.BYTES_PER_PREDICTION`); more are counted in
        ``not_remembered`` and their labels as unmatched
    horizon : seconds after its prediction a label still joins; later labels are counted as late
    sample_rate : share of request ids remembered, chosen by a stable hash of the request id, so
        every process remembers the same requests (coverage and performance are of that sample)
    scores : ``"probability"`` (scores in [0, 1]) or ``"margin"`` (raw margins), for the
        performance sketch
    threshold : the decision threshold of a binary classifier: ``score >= threshold`` is predicted
        positive (confusion counts, precision, recall, F1, accuracy, prediction rate, realized and
        estimated); a probability in [0, 1], also with ``scores="margin"`` (margins are compared
        with its logit)
    buffer : labels ``observe_label`` holds for the worker at most; more are shed (counted)
    settle : seconds (event time, ``window.by="time"``) after a window's end before the rules that
        read only label signals (``performance``, ``label_coverage``, ``label_delay``) evaluate it,
        on its performance revised by the labels joined by then; 0 = at the window's close, with
        every other rule
    """

    max_predictions: int = 1_000_000
    horizon: float = 7 * 86400.0
    sample_rate: float = 1.0
    scores: str = "probability"
    buffer: int = 1 << 16
    settle: float = 0.0
    threshold: float = 0.5


#: How a shadow prediction is compared with the champion's (:class:`ShadowSpec`).
AGREEMENT = ("auto", "threshold", "equal", "tolerance")


@dataclass(frozen=True)
class ShadowSpec:
    """How a challenger's predictions (``shadow_prediction``) are compared with the champion's
    (docs/monitor.md "Shadow predictions").

    Parameters
    ----------
    agreement : ``"threshold"`` (binary scores: both on the same side of ``threshold``,
        ``score >= threshold`` being positive), ``"equal"`` (class predictions: equal values),
        ``"tolerance"`` (regression: ``|shadow - champion| <= tolerance``) or ``"auto"``:
        ``"equal"`` for a categorical prediction, ``"tolerance"`` when ``tolerance`` is set,
        else ``"threshold"``
    threshold : the decision threshold of binary scores (0.5 for probabilities, 0 for margins)
    tolerance : the largest absolute difference that still agrees (``"tolerance"``)
    """

    agreement: str = "auto"
    threshold: float = 0.5
    tolerance: Optional[float] = None

    def mode(self, kind: Optional[str]) -> str:
        """The agreement rule for a prediction of kind ``kind`` (``"numeric"``/``"categorical"``)."""
        if self.agreement != "auto":
            return self.agreement
        if kind == "categorical":
            return "equal"
        return "tolerance" if self.tolerance is not None else "threshold"


@dataclass(frozen=True)
class FreshnessSpec:
    """The freshness signal: the lag from a row's event time to its arrival (docs/monitor.md
    "Freshness").

    Parameters
    ----------
    sla : seconds; rows whose lag is above it are counted (``over_sla``); None = not counted
    """

    sla: Optional[float] = None


@dataclass(frozen=True)
class MonitorConfig:
    """Everything a monitor needs besides the reference data.

    ``features`` None means every reference column that has no other role.
    ``kpis`` are numeric columns whose window mean is compared with the reference mean.
    ``label`` is the label column of the model whose output is ``prediction``: performance per
    window, from labels in the batches or joined later by ``request_id`` (``labels``:
    :class:`LabelSpec`).  ``task`` (one of :data:`TASKS`) says which performance: ``"binary"``
    (score against a 0/1 label), ``"multiclass"`` (predicted class against the actual class) or
    ``"regression"`` (predicted number against the actual number); None infers it from the
    reference (docs/monitor.md "Labels and performance").
    ``shadow_prediction`` is a challenger's prediction of the same requests, compared with
    ``prediction`` per window (``shadow``: :class:`ShadowSpec`); ``freshness`` (a
    :class:`FreshnessSpec`, None = off) measures the lag from ``event_time`` to arrival.
    ``strict`` makes bad input raise (default: counted as rejected and reported).
    ``buffer_rows`` is the micro-batch size of :meth:`observe` buffers; ``background_flush`` counts
    full micro-batches on a worker thread (default) instead of the request thread that filled them.
    ``flush_interval`` (seconds, 0 = never) bounds how long a request waits in a partly filled
    buffer; ``overload`` is what ``observe`` does when the worker falls behind: ``"shed"`` the
    request (counted), ``"sample"`` (thin requests out, counting those left out) or ``"block"``.
    """

    features: Optional[Tuple[FeatureSpec, ...]] = None
    prediction: Optional[str] = None
    prediction_kind: Optional[str] = None
    kpis: Tuple[str, ...] = ()
    latency: Optional[str] = None
    error: Optional[str] = None
    request_id: Optional[str] = None
    event_time: Optional[str] = None
    label: Optional[str] = None
    task: Optional[str] = None
    labels: LabelSpec = field(default_factory=LabelSpec)
    shadow_prediction: Optional[str] = None
    shadow: ShadowSpec = field(default_factory=ShadowSpec)
    freshness: Optional[FreshnessSpec] = None
    window: WindowSpec = field(default_factory=WindowSpec)
    evidence: EvidenceSpec = field(default_factory=EvidenceSpec)
    strict: bool = False
    buffer_rows: int = 4096
    max_reports: int = 1000
    max_contributions: int = 10
    tdigest_compression: float = 100.0
    background_flush: bool = True
    flush_interval: float = 1.0
    overload: str = "shed"
    segment_by: Tuple[str, ...] = ()
    max_segments: int = DEFAULT_MAX_SEGMENTS
    segment_reference: str = "segment"
    rules: Any = None

    def __post_init__(self):
        validate(self)

    def feature_names(self) -> List[str]:
        return [f.name for f in (self.features or ())]

    def roles(self) -> Dict[str, str]:
        """Columns with a non-feature role -> the role."""
        out = {}
        for role in ("prediction", "latency", "error", "request_id", "event_time", "label", "shadow_prediction"):
            v = getattr(self, role)
            if v is not None:
                out[v] = role
        for k in self.kpis:
            out.setdefault(k, "kpi")
        for k in self.segment_by:  # not a feature unless listed as one
            out.setdefault(k, "segment")
        return out

    def columns(self, names: Iterable[str], *, latency: bool = False) -> Dict[str, dict]:
        """The columns of this monitor's reference -> overrides for :func:`~fastdrift.sketches.profile.plan_columns`:
        the features (``kind``, ``bins``, ``strategy``; when ``features`` is None, the ``names`` without
        another role), the prediction (``prediction_kind``), the KPIs (numeric), in that order; with
        ``latency``, the latency column (numeric: a file profile's latency signal is its t-digest)."""
        if self.features is None:
            roles = self.roles()
            spec = {n: {} for n in names if n not in roles}
        else:
            spec = {f.name: dict(kind=f.kind, bins=f.bins, strategy=f.strategy) for f in self.features}
        for n, kind in [(self.prediction, self.prediction_kind), *((k, NUMERIC) for k in self.kpis),
                        (self.latency if latency else None, NUMERIC)]:
            if n:
                spec.setdefault(n, dict(kind=kind))
        return spec

    def evidence_sample(self, names: Iterable[str] = ()) -> RowSample:
        """An empty row sample (:attr:`evidence`) of the features (when none are listed: those of
        ``names`` without another role), the prediction, the latency and error columns (a latency or
        error-rate alert's evidence shows them), the request id and the segment columns (a segment's
        report shows the rows of its segment)."""
        roles = self.roles()
        cols = self.feature_names() or [n for n in names if n not in roles]
        return self.evidence.sample(cols + [c for c in (self.prediction, self.shadow_prediction, self.latency,
                                                        self.error, self.request_id, *self.segment_by)
                                            if c and c not in cols])

    def resolved(self, reference: Profile) -> "MonitorConfig":
        """This config with its features' kinds (and, when ``features`` is None, the features:
        the columns without another role) from the reference profile."""
        feats = self.features
        if feats is None:
            roles = self.roles()
            feats = [FeatureSpec(n) for n in reference.columns if n not in roles]
        return dataclasses.replace(
            self, features=tuple(dataclasses.replace(f, kind=reference[f.name].kind) for f in feats))


def _fail(key: str, msg: str):
    raise InvalidInputError(f"config {key}: {msg}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(c: MonitorConfig) -> None:
    """Check every field; raise InvalidInputError naming the key."""
    names = []
    for i, f in enumerate(c.features or ()):
        key = f"features[{i}]"
        if not isinstance(f, FeatureSpec):
            _fail(key, f"expected a FeatureSpec, got {type(f).__name__}")
        if not isinstance(f.name, str) or not f.name:
            _fail(f"{key}.name", f"must be a non-empty string, got {f.name!r}")
        if f.kind not in _KINDS:
            _fail(f"{key}.kind", f"must be 'numeric' or 'categorical', got {f.kind!r}")
        if not _is_int(f.bins) or f.bins < 2:
            _fail(f"{key}.bins", f"must be an integer >= 2, got {f.bins!r}")
        if f.strategy not in _STRATEGIES:
            _fail(f"{key}.strategy", f"must be one of {_STRATEGIES}, got {f.strategy!r}")
        if f.metric not in METRICS:
            _fail(f"{key}.metric", f"must be one of {METRICS}, got {f.metric!r}")
        names.append(f.name)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        _fail("features", f"duplicate feature names {dup}")
    for role in ("prediction", "latency", "error", "request_id", "event_time", "label", "shadow_prediction"):
        v = getattr(c, role)
        if v is not None and (not isinstance(v, str) or not v):
            _fail(role, f"must be a column name (non-empty string) or None, got {v!r}")
        if v is not None and v in names:
            _fail(role, f"column {v!r} is also listed as a feature")
    if c.prediction_kind not in _KINDS:
        _fail("prediction_kind", f"must be 'numeric' or 'categorical', got {c.prediction_kind!r}")
    if not all(isinstance(k, str) and k for k in c.kpis):
        _fail("kpis", f"must be a list of column names, got {list(c.kpis)!r}")
    w = c.window
    if not isinstance(w, WindowSpec):
        _fail("window", f"expected a WindowSpec, got {type(w).__name__}")
    if w.by not in ("rows", "time"):
        _fail("window.by", f"must be 'rows' or 'time', got {w.by!r}")
    if not _is_num(w.size) or not (w.size > 0) or not math.isfinite(w.size):
        _fail("window.size", f"must be a positive number, got {w.size!r}")
    if w.by == "rows" and not float(w.size).is_integer():
        _fail("window.size", f"must be a whole number of rows, got {w.size!r}")
    if w.slide is not None:
        if not _is_num(w.slide) or not (0 < w.slide <= w.size):
            _fail("window.slide", f"must be a positive number <= window.size, got {w.slide!r}")
        k = w.size / w.slide
        if abs(k - round(k)) > 1e-9:
            _fail("window.slide", f"must divide window.size ({w.size!r}) evenly, got {w.slide!r}")
        if w.by == "rows" and not float(w.slide).is_integer():
            _fail("window.slide", f"must be a whole number of rows, got {w.slide!r}")
    if not _is_num(w.allowed_lateness) or w.allowed_lateness < 0 or not math.isfinite(w.allowed_lateness):
        _fail("window.allowed_lateness", f"must be a number of seconds >= 0, got {w.allowed_lateness!r}")
    if w.by == "time" and c.event_time is None:
        _fail("window.by", "'time' windows need the event_time column to be configured")
    if w.idle_timeout is not None:
        if not _is_num(w.idle_timeout) or not (0 < w.idle_timeout < math.inf):
            _fail("window.idle_timeout", f"must be a positive number of seconds, got {w.idle_timeout!r}")
        if w.by != "time":
            _fail("window.idle_timeout", "applies to event-time windows (window.by: time) only")
    if c.label is not None and c.prediction is None:
        _fail("label", "needs the prediction column (the score) to be configured")
    if c.label is not None and c.label in (c.prediction, c.request_id, c.event_time):
        _fail("label", f"column {c.label!r} has another role")
    if c.task is not None and c.task not in TASKS:
        _fail("task", f"must be one of {TASKS} (or None: inferred from the reference), got {c.task!r}")
    if c.task is not None and c.label is None:
        _fail("task", "needs the label column to be configured")
    _validate_shadow(c)
    ls = c.labels
    if not isinstance(ls, LabelSpec):
        _fail("labels", f"expected a LabelSpec, got {type(ls).__name__}")
    if not _is_int(ls.max_predictions) or not (1 <= ls.max_predictions <= MAX_LABEL_PREDICTIONS):
        _fail("labels.max_predictions", f"must be an integer in [1, {MAX_LABEL_PREDICTIONS}], "
                                        f"got {ls.max_predictions!r}")
    if not _is_num(ls.horizon) or not (0 < ls.horizon < math.inf):
        _fail("labels.horizon", f"must be a positive number of seconds, got {ls.horizon!r}")
    if not _is_num(ls.sample_rate) or not (0 < ls.sample_rate <= 1):
        _fail("labels.sample_rate", f"must be a probability in (0, 1], got {ls.sample_rate!r}")
    if ls.scores not in ("probability", "margin"):
        _fail("labels.scores", f"must be 'probability' or 'margin', got {ls.scores!r}")
    if not _is_num(ls.threshold) or not (0 <= ls.threshold <= 1):
        _fail("labels.threshold", f"must be a probability in [0, 1], got {ls.threshold!r}")
    if not _is_int(ls.buffer) or not (1 <= ls.buffer <= MAX_BUFFER_ROWS):
        _fail("labels.buffer", f"must be an integer in [1, {MAX_BUFFER_ROWS}], got {ls.buffer!r}")
    if not _is_num(ls.settle) or not (0 <= ls.settle < math.inf):
        _fail("labels.settle", f"must be a number of seconds >= 0, got {ls.settle!r}")
    if ls.settle and w.by != "time":
        _fail("labels.settle", "needs event-time windows (window.by: time)")
    e = c.evidence
    if not isinstance(e, EvidenceSpec):
        _fail("evidence", f"expected an EvidenceSpec, got {type(e).__name__}")
    if not _is_num(e.rate) or not (0.0 <= e.rate <= 1.0):
        _fail("evidence.rate", f"must be a probability in [0, 1], got {e.rate!r}")
    if not _is_int(e.max_rows) or e.max_rows < 0:
        _fail("evidence.max_rows", f"must be an integer >= 0, got {e.max_rows!r}")
    for key in ("drop", "hash"):
        if not all(isinstance(x, str) for x in getattr(e, key)):
            _fail(f"evidence.{key}", f"must be a list of column names, got {getattr(e, key)!r}")
    if not _is_int(e.seed):
        _fail("evidence.seed", f"must be an integer, got {e.seed!r}")
    for key in ("strict", "background_flush"):
        if not isinstance(getattr(c, key), bool):
            _fail(key, f"must be true or false, got {getattr(c, key)!r}")
    for key, lo in (("buffer_rows", 1), ("max_reports", 1), ("max_contributions", 1)):
        v = getattr(c, key)
        if not _is_int(v) or v < lo:
            _fail(key, f"must be an integer >= {lo}, got {v!r}")
    if not _is_num(c.flush_interval) or not (0 <= c.flush_interval <= 86400):
        _fail("flush_interval", f"must be a number of seconds in [0, 86400] (0 = no timed flush), "
                                f"got {c.flush_interval!r}")
    if c.overload not in OVERLOAD:
        _fail("overload", f"must be one of {OVERLOAD}, got {c.overload!r}")
    if c.buffer_rows > MAX_BUFFER_ROWS:  # bounds the backlog, whatever size a corrupt checkpoint holds
        _fail("buffer_rows", f"must be at most {MAX_BUFFER_ROWS}, got {c.buffer_rows!r}")
    if not _is_num(c.tdigest_compression) or not (20 <= c.tdigest_compression <= 1000):
        _fail("tdigest_compression", f"must be a number in [20, 1000], got {c.tdigest_compression!r}")
    if not isinstance(c.segment_by, tuple):
        _fail("segment_by", f"must be a list of column names, got {c.segment_by!r}")
    try:
        check_segment_columns(c.segment_by, c.max_segments)
    except InvalidInputError as exc:
        _fail("segment_by", str(exc))
    segment_label_names(c.segment_by)
    if c.segment_reference not in SEGMENT_REFERENCES:
        _fail("segment_reference", f"must be one of {SEGMENT_REFERENCES}, got {c.segment_reference!r}")


def _validate_shadow(c: MonitorConfig) -> None:
    """The shadow prediction and freshness settings."""
    sp = c.shadow_prediction
    if sp is not None and c.prediction is None:
        _fail("shadow_prediction", "needs the prediction column (the champion's) to be configured")
    if sp is not None and sp in (c.prediction, c.latency, c.error, c.request_id, c.event_time, c.label):
        _fail("shadow_prediction", f"column {sp!r} has another role")
    s = c.shadow
    if not isinstance(s, ShadowSpec):
        _fail("shadow", f"expected a ShadowSpec, got {type(s).__name__}")
    if s.agreement not in AGREEMENT:
        _fail("shadow.agreement", f"must be one of {AGREEMENT}, got {s.agreement!r}")
    if not _is_num(s.threshold) or not math.isfinite(s.threshold):
        _fail("shadow.threshold", f"must be a finite number, got {s.threshold!r}")
    if s.tolerance is not None and (not _is_num(s.tolerance) or not (0 <= s.tolerance < math.inf)):
        _fail("shadow.tolerance", f"must be a finite number >= 0, got {s.tolerance!r}")
    if s.agreement == "tolerance" and s.tolerance is None:
        _fail("shadow.tolerance", "is required with agreement 'tolerance'")
    f = c.freshness
    if f is not None:
        if not isinstance(f, FreshnessSpec):
            _fail("freshness", f"expected a FreshnessSpec, got {type(f).__name__}")
        if c.event_time is None:
            _fail("freshness", "needs the event_time column to be configured")
        if f.sla is not None and (not _is_num(f.sla) or not (0 < f.sla < math.inf)):
            _fail("freshness.sla", f"must be a positive number of seconds, got {f.sla!r}")


# -- dict <-> config ------------------------------------------------------------------------------

def _check_keys(d: Mapping, allowed, key: str):
    if not isinstance(d, Mapping):
        _fail(key or "(top level)", f"must be a mapping, got {type(d).__name__}")
    unknown = [k for k in d if k not in allowed]
    if unknown:
        where = f"{key}.{unknown[0]}" if key else str(unknown[0])
        _fail(where, f"unknown key (allowed: {sorted(allowed)})")


def spec_from_dict(cls, d, key):
    """A WindowSpec / EvidenceSpec / FeatureSpec from a mapping; unknown keys name ``key.<name>``."""
    return _spec(cls, d, key)


def _spec(cls, d, key):
    allowed = {f.name for f in dataclasses.fields(cls)}
    _check_keys(d, allowed, key)
    d = dict(d)
    for k, v in d.items():
        if isinstance(v, list):
            d[k] = tuple(v)
    try:
        return cls(**d)
    except TypeError as exc:  # a required field missing
        _fail(key, str(exc))


def config_from_dict(d: Mapping) -> MonitorConfig:
    """Build a validated :class:`MonitorConfig` from plain data (as parsed from YAML/TOML/JSON).

    ``features`` may list names or mappings (``{name: x, kind: ..., bins: ..., metric: ...}``).
    """
    allowed = {f.name for f in dataclasses.fields(MonitorConfig)}
    _check_keys(d, allowed, "")
    kw = dict(d)
    if kw.get("features") is not None:
        feats = kw["features"]
        if not isinstance(feats, (list, tuple)):
            _fail("features", f"must be a list, got {type(feats).__name__}")
        out = []
        for i, f in enumerate(feats):
            if isinstance(f, str):
                out.append(FeatureSpec(f))
            elif isinstance(f, Mapping):
                out.append(_spec(FeatureSpec, f, f"features[{i}]"))
            else:
                _fail(f"features[{i}]", f"must be a name or a mapping, got {type(f).__name__}")
        kw["features"] = tuple(out)
    if "window" in kw:
        kw["window"] = _spec(WindowSpec, kw["window"], "window")
    if "evidence" in kw:
        kw["evidence"] = _spec(EvidenceSpec, kw["evidence"], "evidence")
    if "labels" in kw:
        kw["labels"] = _spec(LabelSpec, kw["labels"], "labels")
    if "shadow" in kw:
        kw["shadow"] = _spec(ShadowSpec, kw["shadow"], "shadow")
    if kw.get("freshness") is not None:
        kw["freshness"] = (FreshnessSpec() if kw["freshness"] is True
                           else _spec(FreshnessSpec, kw["freshness"], "freshness"))
    if "kpis" in kw:
        if isinstance(kw["kpis"], str) or not isinstance(kw["kpis"], (list, tuple)):
            _fail("kpis", f"must be a list of column names, got {kw['kpis']!r}")
        kw["kpis"] = tuple(kw["kpis"])
    if "segment_by" in kw:  # one column name or a list of them
        sb = kw["segment_by"]
        kw["segment_by"] = (sb,) if isinstance(sb, str) else tuple(sb) if isinstance(sb, (list, tuple)) else sb
    return MonitorConfig(**kw)


def config_to_dict(c: MonitorConfig) -> Dict[str, Any]:
    """Plain data that :func:`config_from_dict` turns back into an equal config."""
    d = dataclasses.asdict(c)
    if c.features is not None:
        d["features"] = [dataclasses.asdict(f) for f in c.features]
    d["kpis"] = list(c.kpis)
    d["segment_by"] = list(c.segment_by)
    d["evidence"]["drop"] = list(c.evidence.drop)
    d["evidence"]["hash"] = list(c.evidence.hash)
    return d


def load_config(path) -> MonitorConfig:
    """Read a YAML (.yaml/.yml) or TOML (.toml) monitor config file.

    Raises InvalidInputError naming the file and, for bad content, the key.
    """
    path = os.fspath(path)
    data = read_file(path, "config file")
    if data is None:
        data = {}
    try:
        return config_from_dict(data)
    except InvalidInputError as exc:
        raise InvalidInputError(f"config file {path!r}: {exc}") from None
