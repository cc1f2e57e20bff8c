"""Declarative alert rules: what to watch, the thresholds per tier, and who owns it.

A :class:`Rule` names an owner and a runbook (both required: an alert nobody
owns is noise) and holds one *gate* per severity tier (``warning``,
``critical``). A gate is either a single :class:`Condition` or a
:class:`Gate` combining conditions with ``all`` / ``any`` (nestable), so a
critical page can require, say, PSI > 0.2 on a top feature *and* prediction
drift. Timing is per rule: ``for`` consecutive matching windows before a tier
fires, ``resolve_after`` clean windows before it resolves, ``cooldown``
windows after a resolution during which it cannot fire again.

Rules come from Python (construct the dataclasses) or from a file / list of
dicts through :func:`load_rules`. Everything is validated when the rule is
built, so a bad rule fails at load with an :class:`InvalidInputError` naming
the rule and the key - never later, inside the evaluation loop.

File format (YAML shown; TOML and lists of dicts take the same keys)::

    rules:
      - name: feature-psi
        owner: "#ml-oncall"
        runbook: https://wiki/runbooks/feature-drift
        signal: feature_drift        # defaults inherited by the tiers below
        metric: psi
        features: ["*"]
        max_pvalue: 0.001            # sample-size-aware gate (see Condition)
        warning: 0.1                 # shorthand: the threshold only
        critical: 0.25
        for: 2
        resolve_after: 3
        cooldown: 6
      - name: model-degraded
        owner: "#ml-oncall"
        runbook: https://wiki/runbooks/model-degraded
        critical:
          all:
            - {signal: feature_drift, features: [age, income], threshold: 0.2}
            - {signal: prediction_drift, threshold: 0.1}
"""
from __future__ import annotations

import fnmatch
import math
import os
import re
from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

from ..errors import InvalidInputError
from ..metrics.canary import CanaryTriggers
from ..settings import read_file

__all__ = [
    "SIGNALS", "SEVERITIES", "PERFORMANCE_METRICS", "SHADOW_METRICS", "DEFAULT_MIN_LABELS", "LABEL_SIGNALS",
    "Condition", "Gate", "Rule", "load_rules", "default_rules", "rules_to_data", "action_name",
    "split_performance_metric",
]

#: The signals a condition can select, each read from one part of a WindowReport.
SIGNALS = (
    "feature_drift",     # report.features[*].value (metric must match), max over matching features
    "prediction_drift",  # report.prediction.value
    "latency",           # report.latency.p50 / p95 / p99 in milliseconds, or (metric ratio) / the reference's
    "error_rate",        # report.error_rate
    "missingness",       # report.features[*].missing_cur or missing_delta
    "schema_change",     # number of report.schema_changes (filtered by column / change kind)
    "kpi_delta",         # report.kpis[*].delta or the delta relative to the reference mean
    "volume",            # report.rows: rows counted in a closed window (no traffic: rows < 1)
    "performance",       # report.performance[metric], or its delta / relative change vs report.performance_ref
    "label_coverage",    # report.label_coverage: labelled / labellable predictions of the window
    "label_delay",       # report.label_delay p50 / p95 / p99 in seconds
    "throughput",        # report.throughput rows/s, or (metric ratio) / report.throughput_ref
    "shadow",            # report.shadow: the challenger vs the champion (agreement, psi, score_diff_p99...)
    "freshness",         # report.freshness: event-time-to-arrival lag p50 / p95 / p99 / max (s), rows over the SLA
    "canary",            # report.comparisons[rule]: the verdict of a canary rule (its own keys, see CanarySpec)
)
#: The signals read from labels (a window's performance is revised as its labels arrive).
LABEL_SIGNALS = ("performance", "label_coverage", "label_delay")
#: Performance metrics a ``performance`` condition may name (``metric: roc_auc``, ``roc_auc:delta``
#: = current minus reference, ``roc_auc:relative`` = delta / |reference|).
#: ``estimated_*``: a binary classifier's performance estimated from its scores alone (no labels
#: needed; gated on the scored predictions, not the labelled ones).  Per class (multiclass):
#: ``precision[<class>]``, ``recall[<class>]``, ``f1[<class>]``.
PERFORMANCE_METRICS = (
    "roc_auc", "average_precision", "log_loss", "brier", "ece", "precision", "recall", "f1", "tp", "fp",
    "tn", "fn", "positive_rate", "prediction_rate", "accuracy", "macro_f1", "micro_f1", "mae", "rmse",
    "bias", "mape", "r2", "residual_p05", "residual_p50", "residual_p95", "macro_precision", "macro_recall",
    "estimated_roc_auc", "estimated_tp", "estimated_fp", "estimated_tn", "estimated_fn", "estimated_precision", "estimated_recall", "estimated_f1", "estimated_accuracy",
    "estimated_positive_rate", "estimated_prediction_rate")
_PER_CLASS_METRICS = ("precision", "recall", "f1")
#: What ``performance_delta:<metric>`` may name: the shadow pairs a binary champion with a binary
#: challenger on the same labelled rows (:class:`fastdrift.BinaryPerformance` metrics).
_SHADOW_PERFORMANCE = ("roc_auc", "average_precision", "log_loss", "brier", "ece", "precision", "recall", "f1",
                       "accuracy", "tp", "fp", "tn", "fn", "positive_rate", "prediction_rate")
_PERFORMANCE_MODES = ("", "delta", "relative")
#: What a ``shadow`` condition may read (``performance_delta:<metric>`` = the challenger's value minus
#: the champion's on the same labelled rows; ``performance_delta`` alone is ROC AUC's).
SHADOW_METRICS = ("agreement", "psi", "js", "score_diff_p01", "score_diff_p05", "score_diff_p50",
                  "score_diff_p95", "score_diff_p99", "performance_delta")


def split_performance_metric(metric: str) -> Tuple[str, str]:
    """``(name, mode)`` of a ``performance`` condition's metric: ``roc_auc:delta`` ->
    ``("roc_auc", "delta")``, ``recall[a:b]`` -> ``("recall[a:b]", "")``."""
    for mode in _PERFORMANCE_MODES[1:]:
        if metric.endswith(":" + mode):
            return metric[:-len(mode) - 1], mode
    return metric, ""


def _performance_metric_ok(name: str) -> bool:
    if name in PERFORMANCE_METRICS:
        return True
    base, _, rest = name.partition("[")
    return base in _PER_CLASS_METRICS and len(rest) > 1 and rest.endswith("]")


#: A performance / label-delay condition's default sample-size gate: fewer labels never match.
DEFAULT_MIN_LABELS = 200
#: Severity tiers, lowest first.
SEVERITIES = ("warning", "critical")
_OPS = (">", ">=", "<", "<=")
_LATENCY_QUANTILES = {0.5: "p50", 0.95: "p95", 0.99: "p99"}
#: A latency / label-delay condition's quantile -> the report field holding it.
QUANTILE_NAMES = dict(_LATENCY_QUANTILES)
#: Globs a condition's label names one by one; a longer selection is named by its length.
LABEL_GLOBS = 3
_SCHEMA_CHANGES = ("missing", "new", "type", "type_within_kind")
_METRICS = {
    "missingness": ("delta", "ratio"),
    "kpi_delta": ("delta", "relative"),
    "latency": ("ms", "ratio"),
    "throughput": ("rows_per_second", "ratio"),
    "freshness": ("seconds", "max", "over_sla", "over_sla_share"),
}
# Guards against absurd configs (and keeps the serialized state bounded).
_MAX_WINDOWS = 1_000_000
_MAX_NAME = 200


_ACTION = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def action_name(value: Any, what: str) -> str:
    """Validate the name of an action (a rule's ``action`` key, an ActionSink callback's name)."""
    if not isinstance(value, str) or not _ACTION.fullmatch(value):
        raise InvalidInputError(f"{what}: an action name is 1-64 letters, digits, '_' or '-' starting with a "
                                f"letter or '_', got {value!r}")
    return value


def _fail(rule: str, key: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"alert rule {rule!r}: key {key!r}: {message}")


def _number(rule: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # numpy scalars are fine too; strings like "0.2" are not (a typo'd YAML
        # value should be caught, not coerced)
        if not (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf"):
            raise _fail(rule, key, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise _fail(rule, key, f"must be finite, got {value!r}")
    return value


def _count(rule: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"
    ):
        raise _fail(rule, key, f"must be an integer, got {value!r}")
    value = int(value)
    if not minimum <= value <= _MAX_WINDOWS:
        raise _fail(rule, key, f"must be in [{minimum}, {_MAX_WINDOWS}], got {value}")
    return value


def _text(rule: str, key: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(rule, key, f"must be a string, got {value!r}")
    if not allow_empty and not value.strip():
        raise _fail(rule, key, "is required and must not be empty")
    return value


def _segments(rule: str, value: Any) -> Tuple[str, ...]:
    """A rule's segment selector: ``"*"``, one key, or a non-empty list of keys (or ``"*"``)."""
    vals = (value,) if isinstance(value, str) else value
    if not isinstance(vals, (list, tuple)) or not vals or not all(isinstance(v, str) and v for v in vals):
        raise _fail(rule, "segments", f"must be \"*\", a segment key (\"arm=canary\") or a non-empty list of "
                                      f"them, got {value!r}")
    if "*" in vals and len(vals) > 1:
        raise _fail(rule, "segments", f"\"*\" already selects every segment; got {list(vals)!r}")
    return tuple(dict.fromkeys(vals))


def _globs(rule: str, key: str, value: Any) -> Tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(rule, key, f"must be a glob or a non-empty list of globs, got {value!r}")
    for i, g in enumerate(value):
        if not isinstance(g, str) or not g:
            raise _fail(rule, f"{key}[{i}]", f"must be a non-empty string, got {g!r}")
    return tuple(value)


@dataclass(frozen=True)
class Condition:
    """One comparison of one signal of a window against a threshold.

    Parameters
    ----------
    signal : str
        One of :data:`SIGNALS`.
    threshold : float
        The value is compared with ``op`` against it.
    op : {">", ">=", "<", "<="}, default ">"
    metric : str, optional
        ``feature_drift`` / ``prediction_drift``: only drift signals computed
        with this metric count (``"psi"``, ``"js_distance"``...; ``None`` =
        whichever the monitor computed). ``missingness``: ``"delta"``
        (current minus reference missing share, default) or ``"ratio"``
        (current missing share). ``kpi_delta``: ``"delta"`` (default, mean
        minus reference mean) or ``"relative"`` (delta / |reference mean|). ``latency``: ``"ms"``
        (default) or ``"ratio"`` (the window's quantile / the reference's, e.g. ``critical: 1.1``
        with ``op: ">="`` is p99 >= 1.1 x reference p99). ``throughput``: ``"rows_per_second"``
        (default; a floor is ``op: "<"``) or ``"ratio"`` (window rate / the reference's rate over
        its event-time span; never met when the reference has no event-time column).
    features : tuple of str, default ("*",)
        Shell-style globs (:mod:`fnmatch`, case-sensitive) selecting the
        feature (``feature_drift``, ``missingness``), KPI (``kpi_delta``) or
        schema column (``schema_change``) names.
    max_pvalue : float, optional
        Drift signals only: a feature counts only when its ``pvalue`` (the
        monitor's G-test / chi-square relation of PSI, Yurdakul & Naranjo
        2020) is at most this. The threshold on the drift value is the
        *effect size*, the p-value the *evidence*: requiring both keeps small
        windows (where PSI is noisy, about (bins-1)(1/n_ref + 1/n_cur) under
        no drift) from firing, while the effect-size threshold keeps huge
        windows from firing on shifts that are significant but too small to
        matter. A NaN p-value (not computed) does not block the condition.
    min_features : int, default 1
        Drift / missingness: how many selected features must cross; the
        observed value is then the ``min_features``-th most extreme one.
    quantile : float, default 0.99
        ``latency`` only: 0.5, 0.95 or 0.99.
    changes : tuple of str, default ("missing", "new", "type", "type_within_kind")
        ``schema_change`` only: which kinds of change are counted (see :mod:`fastdrift.schema`:
        ``"type"`` is a column its sketch can no longer count, ``"type_within_kind"`` an Arrow
        type that changed within the kind, e.g. ``int64`` read where the reference had ``double``).
    min_rows : int, default 0
        The condition is not met on windows with fewer rows (or, for drift,
        fewer current values) than this.
    min_labels : int, optional
        ``performance`` / ``label_delay`` / ``shadow`` (``performance_delta``) only: the sample-size gate, the condition is not met
        on windows with fewer labelled predictions (default :data:`DEFAULT_MIN_LABELS`), so a
        window with 30 labels does not page; for an ``estimated_*`` metric (from the scores
        alone, before any label) the gate counts the window's scored predictions instead.
        ``performance`` needs ``metric``: one of :data:`PERFORMANCE_METRICS` (or per class
        ``recall[<class>]``...), alone (the window's value), ``name:delta`` (minus the
        reference's; for ``estimated_*``, the reference's estimate from its scores) or
        ``name:relative`` (delta / |reference|).  The decision threshold of precision, recall,
        F1, accuracy and the confusion counts is the monitor's ``labels.threshold``.

    ``shadow`` (the challenger of ``shadow_prediction`` against the champion) needs ``metric``: one
    of :data:`SHADOW_METRICS`; it is not met on windows with fewer rows holding both predictions
    than ``max(min_rows, 1)``, nor, for ``performance_delta`` (labelled metrics of a binary
    classifier), with fewer labelled ones than ``min_labels``.  ``freshness`` reads the lag from event time to arrival in seconds: the
    ``quantile`` (``metric: seconds``, default), ``max``, or the rows over the SLA (``over_sla``,
    a count; ``over_sla_share``, a share); not met on windows with fewer lags than
    ``max(min_rows, 1)``.
    """

    signal: str
    threshold: float
    op: str = ">"
    metric: Optional[str] = None
    features: Tuple[str, ...] = ("*",)
    max_pvalue: Optional[float] = None
    min_features: int = 1
    quantile: float = 0.99
    changes: Tuple[str, ...] = _SCHEMA_CHANGES
    min_rows: int = 0
    min_labels: Optional[int] = None

    def __post_init__(self):
        self.validate("<python>", "condition")

    def validate(self, rule: str, key: str) -> None:
        """Check every field; raise InvalidInputError naming ``rule`` and ``key``."""
        if self.signal not in SIGNALS:
            raise _fail(rule, f"{key}.signal", f"must be one of {', '.join(SIGNALS)}; got {self.signal!r}")
        object.__setattr__(self, "threshold", _number(rule, f"{key}.threshold", self.threshold))
        if self.op not in _OPS:
            raise _fail(rule, f"{key}.op", f"must be one of {', '.join(_OPS)}; got {self.op!r}")
        if self.metric is not None:
            _text(rule, f"{key}.metric", self.metric)
            allowed = _METRICS.get(self.signal)
            if allowed is not None and self.metric not in allowed:
                raise _fail(rule, f"{key}.metric",
                            f"for signal {self.signal!r} must be one of {', '.join(allowed)}; got {self.metric!r}")
            if self.signal in ("error_rate", "schema_change", "volume", "label_coverage", "label_delay"):
                raise _fail(rule, f"{key}.metric", f"does not apply to signal {self.signal!r}")
            if self.signal == "shadow":
                name, colon, perf = self.metric.partition(":")
                if name not in SHADOW_METRICS or (colon and (name != "performance_delta"
                                                             or perf not in _SHADOW_PERFORMANCE)):
                    raise _fail(rule, f"{key}.metric",
                                f"must be one of {', '.join(SHADOW_METRICS)} (performance_delta optionally "
                                f"followed by ':' and a binary performance metric: {', '.join(_SHADOW_PERFORMANCE)}); "
                                f"got {self.metric!r}")
            if self.signal == "performance":
                name, mode = split_performance_metric(self.metric)
                if not _performance_metric_ok(name):
                    raise _fail(rule, f"{key}.metric",
                                f"must be a performance metric ({', '.join(PERFORMANCE_METRICS)}, or per class "
                                f"precision[<class>], recall[<class>], f1[<class>]), optionally "
                                f"followed by ':delta' or ':relative'; got {self.metric!r}")
        elif self.signal == "performance":
            raise _fail(rule, f"{key}.metric", "is required for signal 'performance' (e.g. roc_auc:delta)")
        elif self.signal == "shadow":
            raise _fail(rule, f"{key}.metric", f"is required for signal 'shadow' (one of {', '.join(SHADOW_METRICS)})")
        if self.min_labels is not None:
            if self.signal not in ("performance", "label_delay", "shadow"):
                raise _fail(rule, f"{key}.min_labels", "applies to performance / label_delay / shadow only")
            object.__setattr__(self, "min_labels", _count(rule, f"{key}.min_labels", self.min_labels, 0))
        object.__setattr__(self, "features", _globs(rule, f"{key}.features", self.features))
        if self.max_pvalue is not None:
            if self.signal not in ("feature_drift", "prediction_drift"):
                raise _fail(rule, f"{key}.max_pvalue",
                            f"applies to feature_drift / prediction_drift only, not {self.signal!r}")
            p = _number(rule, f"{key}.max_pvalue", self.max_pvalue)
            if not 0.0 < p <= 1.0:
                raise _fail(rule, f"{key}.max_pvalue", f"must be in (0, 1], got {p}")
            object.__setattr__(self, "max_pvalue", p)
        object.__setattr__(self, "min_features", _count(rule, f"{key}.min_features", self.min_features, 1))
        if self.min_features > 1 and self.signal not in ("feature_drift", "missingness"):
            raise _fail(rule, f"{key}.min_features", "applies to feature_drift / missingness only")
        q = _number(rule, f"{key}.quantile", self.quantile)
        if q not in _LATENCY_QUANTILES:
            raise _fail(rule, f"{key}.quantile",
                        f"must be one of {', '.join(map(str, _LATENCY_QUANTILES))}; got {q}")
        object.__setattr__(self, "quantile", q)
        changes = (self.changes,) if isinstance(self.changes, str) else self.changes
        if not isinstance(changes, (list, tuple)) or not changes or any(c not in _SCHEMA_CHANGES for c in changes):
            raise _fail(rule, f"{key}.changes",
                        f"must be a non-empty list of {', '.join(_SCHEMA_CHANGES)}; got {self.changes!r}")
        object.__setattr__(self, "changes", tuple(changes))
        object.__setattr__(self, "min_rows", _count(rule, f"{key}.min_rows", self.min_rows, 0))
        if self.signal == "volume" and self.min_rows:
            raise _fail(rule, f"{key}.min_rows", "does not apply to signal 'volume' (it is the row count itself)")

    @property
    def label(self) -> str:
        """A short, stable name for this condition (the key in ``Alert.observed``).

        It names the selection, not the data: up to :data:`LABEL_GLOBS` globs by name, a longer
        list by its length (``feature_drift:psi[16 features]``), so the key neither grows with the
        feature list nor reads as if every listed feature had crossed.
        """
        if self.signal in ("feature_drift", "missingness"):
            sel = self._selection("features")
            metric = self.metric or ("psi" if self.signal == "feature_drift" else "delta")
            return f"{self.signal}:{metric}[{sel}]"
        if self.signal == "prediction_drift":
            return f"prediction_drift:{self.metric or 'psi'}"
        if self.signal == "latency":
            ratio = ":ratio" if self.metric == "ratio" else ""
            return f"latency:{_LATENCY_QUANTILES[self.quantile]}{ratio}"
        if self.signal == "throughput":
            return f"throughput:{self.metric or 'rows_per_second'}"
        if self.signal == "performance":
            return f"performance:{self.metric}"
        if self.signal == "label_delay":
            return f"label_delay:{_LATENCY_QUANTILES[self.quantile]}"
        if self.signal == "shadow":
            return f"shadow:{self.metric}"
        if self.signal == "freshness":
            m = self.metric or "seconds"
            return f"freshness:{_LATENCY_QUANTILES[self.quantile]}" if m == "seconds" else f"freshness:{m}"
        if self.signal == "kpi_delta":
            return f"kpi_delta:{self.metric or 'delta'}[{self._selection('KPIs')}]"
        if self.signal == "schema_change":
            return f"schema_change[{','.join(self.changes)}]"
        if self.signal == "volume":
            return "volume:rows"
        return self.signal

    def _selection(self, what: str) -> str:
        f = self.features
        return ",".join(f) if len(f) <= LABEL_GLOBS else f"{len(f)} {what}"

    def selects(self, name: str) -> bool:
        """Whether the feature / KPI / column ``name`` matches one of the globs."""
        return any(fnmatch.fnmatchcase(name, g) for g in self.features)

    def compare(self, value: float) -> bool:
        """``value <op> threshold``; NaN never matches."""
        if value != value:
            return False
        t = self.threshold
        return {">": value > t, ">=": value >= t, "<": value < t, "<=": value <= t}[self.op]


@dataclass(frozen=True)
class Gate:
    """``all`` or ``any`` of conditions (or nested gates).

    Examples
    --------
    >>> Gate("all", (Condition("feature_drift", 0.2, features=("age",)),
    ...              Condition("prediction_drift", 0.1)))  # doctest: +ELLIPSIS
    Gate(mode='all', ...)
    """

    mode: str
    conditions: Tuple[Union[Condition, "Gate"], ...]

    def __post_init__(self):
        self.validate("<python>", "gate")

    def validate(self, rule: str, key: str) -> None:
        """Check the mode and the members; raise InvalidInputError naming ``rule`` and ``key``."""
        if self.mode not in ("all", "any"):
            raise _fail(rule, key, f"gate mode must be 'all' or 'any', got {self.mode!r}")
        conds = self.conditions
        if isinstance(conds, (Condition, Gate)):
            conds = (conds,)
        if not isinstance(conds, (list, tuple)) or not conds:
            raise _fail(rule, f"{key}.{self.mode}", "must be a non-empty list of conditions")
        for i, c in enumerate(conds):
            if not isinstance(c, (Condition, Gate)):
                raise _fail(rule, f"{key}.{self.mode}[{i}]", f"must be a Condition or Gate, got {c!r}")
        object.__setattr__(self, "conditions", tuple(conds))

    def leaves(self) -> Tuple[Condition, ...]:
        """Every condition inside, depth first."""
        out = []
        for c in self.conditions:
            out.extend(c.leaves() if isinstance(c, Gate) else (c,))
        return tuple(out)


def _as_gate(tier: Union[Condition, Gate]) -> Gate:
    return tier if isinstance(tier, Gate) else Gate("all", (tier,))


@dataclass(frozen=True)
class CanarySpec:
    """What a ``signal: canary`` rule compares: segment ``candidate`` against segment ``baseline``
    (keys such as ``"arm=canary"`` / ``"arm=stable"``), and the triggers that decide its verdict
    (:class:`~fastdrift.monitor.canary.CanaryTriggers`)."""

    baseline: str
    candidate: str
    triggers: CanaryTriggers = CanaryTriggers()


#: Rule keys of a canary rule besides ``signal: canary`` and ``min_rows``.
CANARY_KEYS = ("baseline", "candidate", "kpi_drop", "psi", "error_rate_margin", "p99_ratio", "alpha",
               "promote_after", "lower_is_better")


@dataclass(frozen=True)
class Rule:
    """A named alert rule with per-severity gates, timing, owner and runbook.

    Parameters
    ----------
    name : str
        Unique among the rules given to one evaluator.
    owner : str
        Who is paged / who decides on mitigation (team, channel, rotation).
        Required: a rule without an owner is rejected.
    runbook : str
        Where the responder starts (URL or path). Required.
    warning, critical : Condition or Gate, optional
        At least one. Each tier runs its own pending/firing/resolved cycle,
        so a rule can be warning-firing and escalate to critical later.
    for_windows : int, default 1
        Consecutive matching closed windows before a tier fires (the first
        ``for_windows - 1`` of them report it as pending). Key ``for`` in files.
    resolve_after : int, default 1
        Consecutive clean windows before a firing tier resolves.
    cooldown : int, default 0
        Windows after a resolution during which the tier cannot become
        pending again (damps flapping around a threshold).
    description : str, default ""
    top_k : int, default 5
        Drift signals attached to an alert as its top contributing features.
    max_evidence : int, default 20
        Evidence rows (already redacted by the monitor) attached to an alert.
    action : str, optional
        The action an :class:`~fastdrift.alerts.ActionSink` runs when this rule fires (a name
        such as ``rollback``, ``throttle`` or ``fallback``: letters, digits, ``_`` and ``-``).
        Default: none.
    segments : tuple of str, optional
        Segments of a monitor with ``segment_by`` the rule watches, each on its own (one alert
        state per segment, the alert naming it): ``("*",)`` every segment, or segment keys
        (``"arm=canary"``, ``"<other>"``); key ``segments`` in files (``"*"``, a key, or a list).
        Default None: the whole window only.
    canary : CanarySpec, optional
        A ``signal: canary`` rule (docs/alerts.md "Canary rules"): the segments it compares and
        its triggers; its one tier (critical) matches while the monitor's comparison of the window
        (``report.comparisons[name]``) says ``rollback``.
    """

    name: str
    owner: str
    runbook: str
    warning: Optional[Union[Condition, Gate]] = None
    critical: Optional[Union[Condition, Gate]] = None
    for_windows: int = 1
    resolve_after: int = 1
    cooldown: int = 0
    description: str = ""
    top_k: int = 5
    max_evidence: int = 20
    action: Optional[str] = None
    segments: Optional[Tuple[str, ...]] = None
    canary: Optional[CanarySpec] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError(f"alert rule {self.name!r}: key 'name': must be a non-empty string")
        n = self.name
        if len(n) > _MAX_NAME:
            raise _fail(n[:40] + "...", "name", f"longer than {_MAX_NAME} characters")
        _text(n, "owner", self.owner)
        _text(n, "runbook", self.runbook)
        _text(n, "description", self.description, allow_empty=True)
        if self.canary is not None:  # the verdict is the rule's one tier: critical when it says rollback
            if not isinstance(self.canary, CanarySpec):
                raise _fail(n, "canary", f"must be a CanarySpec, got {self.canary!r}")
            _text(n, "baseline", self.canary.baseline)
            _text(n, "candidate", self.canary.candidate)
            if self.canary.baseline == self.canary.candidate:
                raise _fail(n, "candidate", "must differ from the baseline")
            if self.warning is not None or self.segments is not None:
                raise _fail(n, "warning" if self.warning is not None else "segments",
                            "does not apply to a canary rule (its verdict is the alert; it names its segments)")
            if self.critical is None:
                object.__setattr__(self, "critical", Condition(signal="canary", threshold=0.5))
        if self.warning is None and self.critical is None:
            raise _fail(n, "warning/critical", "a rule needs at least one severity tier")
        for sev in SEVERITIES:
            tier = getattr(self, sev)
            if tier is None:
                continue
            if not isinstance(tier, (Condition, Gate)):
                raise _fail(n, sev, f"must be a Condition or Gate, got {tier!r}")
            # revalidate under the rule's name so errors from Python-built
            # rules name the rule too
            for i, leaf in enumerate(_as_gate(tier).leaves()):
                leaf.validate(n, f"{sev}[{i}]")
        object.__setattr__(self, "for_windows", _count(n, "for", self.for_windows, 1))
        object.__setattr__(self, "resolve_after", _count(n, "resolve_after", self.resolve_after, 1))
        object.__setattr__(self, "cooldown", _count(n, "cooldown", self.cooldown, 0))
        object.__setattr__(self, "top_k", _count(n, "top_k", self.top_k, 0))
        object.__setattr__(self, "max_evidence", _count(n, "max_evidence", self.max_evidence, 0))
        if self.action is not None:
            object.__setattr__(self, "action", action_name(self.action, f"alert rule {n!r}: key 'action'"))
        if self.segments is not None:
            object.__setattr__(self, "segments", _segments(n, self.segments))
            whole = sorted({c.signal for _, g in self.tiers() for c in g.leaves()} & {"shadow", "freshness"})
            if whole:  # a segment's report has neither: the rule could never fire
                raise _fail(n, "segments", f"signal {whole[0]!r} is the whole window's only (segments have no "
                                           "shadow or freshness signal)")

    def selects_segment(self, key: str) -> bool:
        """Whether this rule watches segment ``key`` (never, without a ``segments`` selector)."""
        return self.segments is not None and ("*" in self.segments or key in self.segments)

    def tiers(self) -> Tuple[Tuple[str, Gate], ...]:
        """``(severity, gate)`` for each configured tier, lowest severity first."""
        return tuple((s, _as_gate(getattr(self, s))) for s in SEVERITIES if getattr(self, s) is not None)

    def reads_labels_only(self) -> bool:
        """Whether every condition of every tier reads a label signal (:data:`LABEL_SIGNALS`, or the
        shadow's ``performance_delta``)."""
        return all(c.signal in LABEL_SIGNALS or (c.signal == "shadow" and c.metric.startswith("performance_delta"))
                   for _, g in self.tiers() for c in g.leaves())

    def thresholds(self, severity: str) -> Mapping[str, float]:
        """Condition label -> threshold of one tier (what ``Alert.thresholds`` shows)."""
        return {c.label: c.threshold for c in _as_gate(getattr(self, severity)).leaves()}


# ---------------------------------------------------------------- loading

_RULE_KEYS = {"name", "owner", "runbook", "description", "warning", "critical", "for",
              "resolve_after", "cooldown", "top_k", "max_evidence", "action", "segments", *CANARY_KEYS}
_COND_KEYS = {f.name for f in fields(Condition)}
# keys a rule may set once as defaults for the conditions of its tiers
_BASE_KEYS = _COND_KEYS - {"threshold"}


def _condition(rule: str, key: str, spec: Any, base: Mapping[str, Any]) -> Union[Condition, Gate]:
    """A tier or gate member from its dict / number form, inheriting ``base``."""
    if isinstance(spec, (Condition, Gate)):
        return spec
    if not isinstance(spec, Mapping):
        # the shorthand `critical: 0.25` = the rule's selector with this threshold
        return _condition(rule, key, {"threshold": spec}, base)
    gate_keys = [k for k in ("all", "any") if k in spec]
    if gate_keys:
        if len(gate_keys) == 2 or len(spec) != 1:
            extra = sorted(set(spec) - {gate_keys[0]}) if len(gate_keys) == 1 else ["all", "any"]
            raise _fail(rule, key, f"a gate holds exactly one of 'all' / 'any' and nothing else; also got {extra}")
        mode = gate_keys[0]
        members = spec[mode]
        if not isinstance(members, (list, tuple)) or not members:
            raise _fail(rule, f"{key}.{mode}", f"must be a non-empty list of conditions, got {members!r}")
        gate = Gate.__new__(Gate)
        object.__setattr__(gate, "mode", mode)
        object.__setattr__(gate, "conditions", tuple(
            _condition(rule, f"{key}.{mode}[{i}]", m, base) for i, m in enumerate(members)))
        gate.validate(rule, key)
        return gate
    unknown = sorted(set(map(str, spec)) - _COND_KEYS)
    if unknown:
        raise _fail(rule, f"{key}.{unknown[0]}",
                    f"unknown condition key; known: {', '.join(sorted(_COND_KEYS))}")
    merged = {**base, **spec}
    if "signal" not in merged:
        raise _fail(rule, f"{key}.signal", "is required (on the condition or on the rule)")
    if "threshold" not in merged:
        raise _fail(rule, f"{key}.threshold", "is required")
    for k in ("features", "changes"):
        if isinstance(merged.get(k), list):
            merged[k] = tuple(merged[k])
    # build without __post_init__ so the error names the rule and key path
    cond = Condition.__new__(Condition)
    defaults = {f.name: f.default for f in fields(Condition)}
    for k, v in {**defaults, **merged}.items():
        object.__setattr__(cond, k, v)
    cond.validate(rule, key)
    return cond


def _rule_from_dict(spec: Any, index: int) -> Rule:
    if isinstance(spec, Rule):
        return spec
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"alert rule #{index}: must be a mapping, got {type(spec).__name__}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"alert rule #{index}: key 'name': required non-empty string, got {name!r}")
    unknown = sorted(set(map(str, spec)) - _RULE_KEYS - _BASE_KEYS)
    if unknown:
        raise _fail(name, unknown[0], f"unknown key; rule keys: {', '.join(sorted(_RULE_KEYS))}; "
                                      f"condition defaults: {', '.join(sorted(_BASE_KEYS))}")
    if "threshold" in spec:
        raise _fail(name, "threshold", "put thresholds under 'warning' / 'critical'")
    for req in ("owner", "runbook"):
        if req not in spec:
            raise _fail(name, req, "is required: every rule names who owns it and where its runbook is")
    canary = _canary_spec(name, spec)
    base = {k: spec[k] for k in _BASE_KEYS if k in spec}
    tiers = {}
    for sev in SEVERITIES:
        if spec.get(sev) is not None:
            tiers[sev] = _condition(name, sev, spec[sev], base)
    timing = {"for_windows": spec.get("for", 1), "resolve_after": spec.get("resolve_after", 1),
              "cooldown": spec.get("cooldown", 0), "top_k": spec.get("top_k", 5),
              "max_evidence": spec.get("max_evidence", 20)}
    if canary is not None:
        if tiers:
            raise _fail(name, next(iter(tiers)), "a canary rule has no tiers: its verdict decides (rollback = critical)")
        timing["for_windows"] = spec.get("for", 1)
    return Rule(name=name, owner=spec["owner"], runbook=spec["runbook"],
                description=spec.get("description", ""), action=spec.get("action"), segments=spec.get("segments"),
                canary=canary, **tiers, **timing)


def _canary_spec(name: str, spec: Mapping[str, Any]) -> Optional[CanarySpec]:
    """The canary part of a rule mapping (None unless ``signal: canary``)."""
    given = [k for k in CANARY_KEYS if k in spec]
    if spec.get("signal") != "canary":
        if given:
            raise _fail(name, given[0], "applies to canary rules only (signal: canary)")
        return None
    for req in ("baseline", "candidate"):
        if req not in spec:
            raise _fail(name, req, "is required for a canary rule (a segment key such as 'arm=stable')")
    trig = {k: spec[k] for k in CANARY_KEYS[2:] if k in spec}
    if "min_rows" in spec:
        trig["min_rows"] = spec["min_rows"]
    try:
        triggers = CanaryTriggers(**trig)
    except InvalidInputError as exc:
        raise _fail(name, "canary", str(exc)) from None
    return CanarySpec(str(spec["baseline"]), str(spec["candidate"]), triggers)


def load_rules(spec: Union[str, os.PathLike, Sequence[Any], Mapping[str, Any]]) -> list:
    """Build and validate rules from a file, a list of dicts, or a list of :class:`Rule`.

    Parameters
    ----------
    spec : path, list or mapping
        A ``.yaml`` / ``.yml`` / ``.toml`` file, a list whose items are rule
        dicts or :class:`Rule` objects, or a mapping ``{"rules": [...]}``
        (files may hold either form; TOML needs the ``[[rules]]`` form).

    Returns
    -------
    list of Rule

    Raises
    ------
    InvalidInputError
        Unreadable or malformed file, unknown keys, wrong types, missing
        owner / runbook / thresholds, duplicate names. The message names the
        rule and the key (e.g. ``alert rule 'feature-psi': key
        'critical.all[1].threshold': must be a number, got 'high'``).
    """
    if isinstance(spec, (str, os.PathLike)):
        data = read_file(spec, "alert rules file")
    else:
        data = spec
    if isinstance(data, Mapping):
        extra = sorted(set(map(str, data)) - {"rules"})
        if extra or "rules" not in data:
            raise InvalidInputError(
                f"alert rules: expected a list of rules or a mapping with only a 'rules' key; got keys {sorted(map(str, data))}")
        data = data["rules"]
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise InvalidInputError(f"alert rules: expected a list of rules, got {type(data).__name__}")
    rules = [_rule_from_dict(item, i) for i, item in enumerate(data)]
    seen = set()
    for r in rules:
        if r.name in seen:
            raise _fail(r.name, "name", "duplicate rule name")
        seen.add(r.name)
    return rules


def rules_to_data(rules: Iterable[Rule]) -> list:
    """Plain data (lists, dicts, strings, numbers) that :func:`load_rules` turns back into equal rules.

    A monitor checkpoint stores its rules this way, so that rules given as :class:`Rule` objects
    (the default rules among them) are restored by the checkpoint itself.
    """
    def tier(t):
        if isinstance(t, Gate):
            return {t.mode: [tier(c) for c in t.conditions]}
        return {f.name: list(v) if isinstance(v, tuple) else v
                for f in fields(Condition) for v in (getattr(t, f.name),)}

    out = []
    for r in rules:
        d = {"name": r.name, "owner": r.owner, "runbook": r.runbook, "description": r.description,
             "for": r.for_windows, "resolve_after": r.resolve_after, "cooldown": r.cooldown, "top_k": r.top_k,
             "max_evidence": r.max_evidence}
        for sev in SEVERITIES:
            if getattr(r, sev) is not None:
                d[sev] = tier(getattr(r, sev))
        if r.action is not None:
            d["action"] = r.action
        if r.segments is not None:
            d["segments"] = list(r.segments)
        if r.canary is not None:
            d.pop("critical", None)
            d.update(signal="canary", baseline=r.canary.baseline, candidate=r.canary.candidate,
                     **r.canary.triggers.as_dict())
        out.append(d)
    return out


_CONFIGURE = "CONFIGURE ME: set the owning team / on-call rotation for this rule"
_RUNBOOK = "CONFIGURE ME: link the runbook for {what}"


def default_rules(
    features: Sequence[str],
    prediction: Optional[str],
    latency: bool,
    error: bool,
    *,
    owner: str = _CONFIGURE,
    id_like: Sequence[str] = (),
    latency_p99_ms: Tuple[float, float] = (500.0, 1000.0),
    error_rate: Tuple[float, float] = (0.01, 0.05),
    label: bool = False,
    task: str = "binary",
) -> list:
    """Production defaults: traffic, drift gated on significance, latency, errors, schema.

    Parameters
    ----------
    features : list of str
        Monitored feature names (the drift and missingness rules select
        exactly these).
    prediction : str or None
        The prediction column; adds a prediction-drift rule when given.
    latency, error : bool
        Add the latency p99 / error-rate rules.
    owner : str, optional
        Owner for every rule; the default is a placeholder saying to set it.
    id_like : list of str, optional
        Features left out of the drift rule: ID-like columns
        (:func:`fastdrift.metrics.id_like`), whose per-category PSI measures churn of ids, not
        drift. Their missingness is still watched.
    latency_p99_ms : (warning, critical), default (500, 1000)
        p99 latency SLO thresholds in milliseconds.
    error_rate : (warning, critical), default (0.01, 0.05)
    label : bool, default False
        Add the ``performance-drop`` rule (a label column is configured).
    task : str, default "binary"
        The model's task, the ``performance-drop`` rule's metric: ROC AUC below the reference's
        by 0.05 / 0.10 (``"binary"``), accuracy below it by 0.05 / 0.10 (``"multiclass"``), MAE
        above it by 10 % / 25 % (``"regression"``).

    Returns
    -------
    list of Rule
        ``feature-drift`` (PSI > 0.1 warning / > 0.25 critical, each only
        where the G-test p-value <= 0.001, for 2 windows), ``feature-missingness``
        (missing share up 5 / 20 points), ``prediction-drift`` (same PSI
        tiers), ``latency-p99``, ``error-rate`` (windows of >= 100 rows, for
        2 windows), ``schema-change`` (a new column or an Arrow type changed within its
        kind, e.g. ``int64`` for ``double``: warning; a missing column or one of another kind:
        critical; immediately), ``no-traffic`` (critical when a window counted no rows:
        an empty current dataset, a time window without events; immediately).
        Runbooks are placeholders to configure.

    Notes
    -----
    Why both a PSI threshold and a p-value: under no drift PSI is about
    chi-square(bins - 1) * (1/n_ref + 1/n_cur) (Yurdakul & Naranjo 2020), so
    with 1M rows a window's PSI is ~1e-5 and *any* real shift, however
    small, is significant - the 0.1 / 0.25 effect-size thresholds stop
    those; with a few hundred rows PSI noise alone reaches 0.1 - the p-value
    gate stops those. Two consecutive windows (``for: 2``) halve the chance
    that a single unlucky window pages anyone.
    """
    if isinstance(features, str) or not all(isinstance(f, str) for f in features):
        raise InvalidInputError(f"default_rules: features must be a list of names, got {features!r}")
    rules = []
    drift = tuple(f for f in features if f not in set(id_like))
    if drift:
        base = dict(metric="psi", features=drift, max_pvalue=1e-3)
        rules.append(Rule(
            name="feature-drift", owner=owner, runbook=_RUNBOOK.format(what="feature drift"),
            description="A feature's distribution moved away from the reference (PSI on reference deciles).",
            warning=Condition("feature_drift", 0.1, **base),
            critical=Condition("feature_drift", 0.25, **base),
            for_windows=2, resolve_after=3, cooldown=6))
    if features:
        sel = tuple(features)
        rules.append(Rule(
            name="feature-missingness", owner=owner, runbook=_RUNBOOK.format(what="missing values"),
            description="A feature is missing (null/NaN) much more often than in the reference.",
            warning=Condition("missingness", 0.05, metric="delta", features=sel, min_rows=100),
            critical=Condition("missingness", 0.20, metric="delta", features=sel, min_rows=100),
            for_windows=2, resolve_after=3, cooldown=6))
    if prediction is not None:
        base = dict(metric="psi", max_pvalue=1e-3)
        rules.append(Rule(
            name="prediction-drift", owner=owner, runbook=_RUNBOOK.format(what="prediction drift"),
            description=f"The distribution of {prediction!r} moved away from the reference.",
            warning=Condition("prediction_drift", 0.1, **base),
            critical=Condition("prediction_drift", 0.25, **base),
            for_windows=2, resolve_after=3, cooldown=6))
    if latency:
        w, c = latency_p99_ms
        rules.append(Rule(
            name="latency-p99", owner=owner, runbook=_RUNBOOK.format(what="serving latency"),
            description="p99 serving latency above the SLO.",
            warning=Condition("latency", w, quantile=0.99, min_rows=100),
            critical=Condition("latency", c, quantile=0.99, min_rows=100),
            for_windows=2, resolve_after=2))
    if error:
        w, c = error_rate
        rules.append(Rule(
            name="error-rate", owner=owner, runbook=_RUNBOOK.format(what="serving errors"),
            description="Share of failed requests above the SLO.",
            warning=Condition("error_rate", w, min_rows=100),
            critical=Condition("error_rate", c, min_rows=100),
            for_windows=2, resolve_after=2))
    rules.append(Rule(
        name="schema-change", owner=owner, runbook=_RUNBOOK.format(what="schema changes"),
        description="A column disappeared, appeared, or changed type against the reference.",
        warning=Condition("schema_change", 0, changes=("new", "type_within_kind")),
        critical=Condition("schema_change", 0, changes=("missing", "type")),
        for_windows=1, resolve_after=1))
    if label:
        metric, op, levels, what = {
            "multiclass": ("accuracy:delta", "<", (-0.05, -0.10), "Accuracy"),
            "regression": ("mae:relative", ">", (0.10, 0.25), "MAE"),
        }.get(task, ("roc_auc:delta", "<", (-0.05, -0.10), "ROC AUC"))
        rules.append(Rule(
            name="performance-drop", owner=owner, runbook=_RUNBOOK.format(what="model performance"),
            description=f"{what} of the window's labelled predictions "
                        + ("rose above the reference's." if op == ">" else "fell below the reference's."),
            warning=Condition("performance", levels[0], op=op, metric=metric, min_labels=DEFAULT_MIN_LABELS),
            critical=Condition("performance", levels[1], op=op, metric=metric, min_labels=DEFAULT_MIN_LABELS),
            for_windows=1, resolve_after=2))
    rules.append(Rule(
        name="no-traffic", owner=owner, runbook=_RUNBOOK.format(what="missing traffic"),
        description="No rows arrived in the window: an outage upstream, a broken pipeline or an empty file.",
        critical=Condition("volume", 1, op="<"),
        for_windows=1, resolve_after=1))
    return rules
