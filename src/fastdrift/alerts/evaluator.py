"""The alert state machine: closed windows in, alert transitions out.

Every (rule, severity) pair runs its own cycle, like one Prometheus alert per
tier::

    inactive --match--> pending --match x (for-1)--> firing --clean x resolve_after--> resolved
        ^                  |                                                           |
        +---- no match ----+ (reported as resolved from pending)      cooldown windows-+

A rule is *one* alert at its highest active tier, as Alertmanager inhibits a
warning while the critical alert of the same rule fires: the rule's alert is
its firing tier of highest severity, else its pending tier of highest
severity (a critical tier still pending does not hide a firing warning).
Only changes of that alert are sent to sinks - it becomes pending or firing,
changes severity or state (``previous_state`` is the rule's state before), or
resolves (at the severity it had) - so a rule that stays firing for a hundred
windows produces one firing alert, not a hundred, and a window that crosses
both thresholds produces one critical alert, not a warning and a critical.
:meth:`AlertEvaluator.active` shows each active rule once, with the latest
observations.  Key alerts by ``rule``; ``severity`` is its current tier.

A rule with a ``segments`` selector runs this cycle once per selected segment of a segmented
monitor's windows (``WindowReport.segments``), on the segment's own report: its state is keyed
(rule, segment, severity), its alerts carry ``segment`` and name it in the summary
(``[warning] drift in arm=canary firing: ...``); key those by ``(rule, segment)``.  A segment
absent from a window (no rows) counts as a clean window for its alerts.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import CorruptStateError, InvalidInputError
from ..records import Alert, BinContribution, DriftSignal, WindowReport, from_json, frozen_mapping, to_json
from ..codec import Kind, Reader, Writer, decode, encode
from ..metrics.canary import describe as describe_comparison
from .rules import (DEFAULT_MIN_LABELS, QUANTILE_NAMES, SEVERITIES, Condition, Gate, Rule, load_rules,
                    split_performance_metric)
from .sinks import CallbackSink

__all__ = ["AlertEvaluator"]

log = logging.getLogger("fastdrift.alerts")

INACTIVE, PENDING, FIRING = 0, 1, 2
_STATE_NAMES = {INACTIVE: "inactive", PENDING: "pending", FIRING: "firing"}
# Serialized state is small (a few counters and the latest alert per active
# tier); anything above this is not state we wrote.
_MAX_STATE_BYTES = 64 << 20
_U32 = (1 << 32) - 1


# ------------------------------------------------------------ measuring

@dataclass
class _Leaf:
    """One condition measured on one window."""

    cond: Condition
    met: bool
    value: float
    pvalue: Optional[float] = None
    signals: Tuple[DriftSignal, ...] = ()   # drift signals that crossed (top-feature candidates)
    values: Tuple[float, ...] = ()          # their measured values (drift, or missing share / delta)


def _extreme_first(cond: Condition, items: List[Tuple[float, Any]]) -> List[Tuple[float, Any]]:
    """Most alarming first: largest values for > / >=, smallest for < / <=."""
    finite = [it for it in items if it[0] == it[0]]
    return sorted(finite, key=lambda it: it[0], reverse=cond.op in (">", ">="))


def _drift_ok(cond: Condition, s: DriftSignal) -> bool:
    """The sample-size-aware gate: NaN (not computed) passes, see Condition.max_pvalue."""
    return cond.max_pvalue is None or not (s.pvalue > cond.max_pvalue)


def _measure(cond: Condition, report: WindowReport) -> _Leaf:
    nan = math.nan
    if report.rows < cond.min_rows:
        return _Leaf(cond, False, nan)
    sig = cond.signal
    if sig in ("feature_drift", "prediction_drift"):
        if sig == "feature_drift":
            pool = [s for name, s in report.features.items() if cond.selects(name)]
        else:
            pool = [report.prediction] if report.prediction is not None else []
        pool = [s for s in pool if (cond.metric is None or s.metric == cond.metric) and s.n_cur >= cond.min_rows]
        qualified = _extreme_first(cond, [(float(s.value), s) for s in pool if _drift_ok(cond, s)])
        k = cond.min_features
        if len(qualified) >= k:
            value, shown = qualified[k - 1]
            met = cond.compare(value)
        else:
            # show the most extreme value even when the p-value gate held it
            # back, so the observed p-value explains why nothing fired
            everything = _extreme_first(cond, [(float(s.value), s) for s in pool])
            value, shown = everything[0] if everything else (nan, None)
            met = False
        crossed = [(v, s) for v, s in qualified if cond.compare(v)] if met else []
        pv = None
        if cond.max_pvalue is not None:
            pv = float(shown.pvalue) if shown is not None else nan
        return _Leaf(cond, met, value, pv, tuple(s for _, s in crossed), tuple(v for v, _ in crossed))
    if sig == "missingness":
        pool = [s for name, s in report.features.items() if cond.selects(name)]
        attr = "missing_cur" if cond.metric == "ratio" else "missing_delta"
        ranked = _extreme_first(cond, [(float(getattr(s, attr)), s) for s in pool])
        if len(ranked) < cond.min_features:
            return _Leaf(cond, False, ranked[0][0] if ranked else nan)
        value = ranked[cond.min_features - 1][0]
        met = cond.compare(value)
        crossed = [(v, s) for v, s in ranked if cond.compare(v)] if met else []
        return _Leaf(cond, met, value, None, tuple(s for _, s in crossed), tuple(v for v, _ in crossed))
    if sig == "latency":
        lat = report.latency
        if lat is None or lat.count < cond.min_rows:
            return _Leaf(cond, False, nan)
        name = QUANTILE_NAMES[cond.quantile]
        value = float(getattr(lat, name))
        if cond.metric == "ratio":
            ref = float(getattr(lat, "ref_" + name))
            value = value / ref if ref > 0 else nan  # no reference latency: never met
        return _Leaf(cond, cond.compare(value), value)
    if sig == "throughput":
        if report.rows < cond.min_rows:
            return _Leaf(cond, False, nan)
        value = float(report.throughput)
        if cond.metric == "ratio":
            ref = float(report.throughput_ref)
            value = value / ref if ref > 0 else nan
        # an open window's rate is of the part seen so far: only closed windows are judged
        return _Leaf(cond, report.closed and cond.compare(value), value)
    if sig == "error_rate":
        value = float(report.error_rate)
        return _Leaf(cond, cond.compare(value), value)
    if sig == "volume":
        value = float(report.rows)
        # an open window is still filling: "no rows yet" is not "no rows arrived" (preview)
        return _Leaf(cond, report.closed and cond.compare(value), value)
    if sig == "schema_change":
        value = float(sum(1 for c in report.schema_changes
                          if c.change in cond.changes and cond.selects(c.column)))
        return _Leaf(cond, cond.compare(value), value)
    if sig == "kpi_delta":
        items = []
        for name, k in report.kpis.items():
            if not cond.selects(name):
                continue
            d = float(k.delta)
            if cond.metric == "relative":
                d = d / abs(k.ref_mean) if k.ref_mean else nan
            items.append((d, k))
        ranked = _extreme_first(cond, items)
        value = ranked[0][0] if ranked else nan
        return _Leaf(cond, cond.compare(value), value)
    if sig in ("performance", "label_delay"):
        gate = DEFAULT_MIN_LABELS if cond.min_labels is None else cond.min_labels
        labelled = report.label_counts.get("labelled", 0) if report.label_counts else 0
        if sig == "label_delay":
            value = float(report.label_delay.get(QUANTILE_NAMES[cond.quantile], nan)) if report.label_delay else nan
            return _Leaf(cond, labelled >= gate and cond.compare(value), value)
        name, mode = split_performance_metric(cond.metric)
        if name.startswith("estimated_"):  # from the scores alone: gated on the scored predictions
            labelled = report.label_counts.get("scored", 0) if report.label_counts else 0
        value = float(report.performance.get(name, nan))
        if mode:
            ref = float(report.performance_ref.get(name, nan))
            value = value - ref if mode == "delta" else ((value - ref) / abs(ref) if ref else nan)
        # the value is shown even when the gate holds it back, so the alert says why nothing fired
        return _Leaf(cond, labelled >= gate and cond.compare(value), value)
    if sig == "label_coverage":
        value = nan if report.label_coverage is None else float(report.label_coverage)
        return _Leaf(cond, cond.compare(value), value)
    if sig == "shadow":
        sh = getattr(report, "shadow", None)
        if sh is None or sh.rows < max(cond.min_rows, 1):
            return _Leaf(cond, False, nan)
        name, _, perf = cond.metric.partition(":")
        if name == "performance_delta":
            perf = perf or "roc_auc"
            value = float(sh.performance.get(perf, nan)) - float(sh.performance_champion.get(perf, nan))
            gate = DEFAULT_MIN_LABELS if cond.min_labels is None else cond.min_labels
            return _Leaf(cond, sh.labelled >= gate and cond.compare(value), value)
        if name.startswith("score_diff_"):
            value = float(sh.score_diff.get(name[len("score_diff_"):], nan))
        else:
            value = float(getattr(sh, name))
        return _Leaf(cond, cond.compare(value), value)
    if sig == "freshness":
        f = getattr(report, "freshness", None)
        if f is None or f.count < max(cond.min_rows, 1):
            return _Leaf(cond, False, nan)
        m = cond.metric or "seconds"
        value = float(f.max if m == "max" else f.over_sla if m == "over_sla" else f.over_sla / f.count
                      if m == "over_sla_share" else getattr(f, QUANTILE_NAMES[cond.quantile]))
        if m in ("over_sla", "over_sla_share") and f.sla != f.sla:
            value = nan  # no SLA configured: nothing counted
        return _Leaf(cond, cond.compare(value), value)
    raise AssertionError(sig)  # unreachable: signals are validated at load


def _evaluate_gate(gate: Gate, report: WindowReport, leaves: List[_Leaf]) -> bool:
    """Whether ``gate`` holds; appends every measured leaf (all are shown as evidence)."""
    results = []
    for c in gate.conditions:
        if isinstance(c, Gate):
            results.append(_evaluate_gate(c, report, leaves))
        else:
            leaf = _measure(c, report)
            leaves.append(leaf)
            results.append(leaf.met)
    return all(results) if gate.mode == "all" else any(results)


@dataclass
class _Outcome:
    met: bool
    observed: Dict[str, float]
    thresholds: Dict[str, float]
    signals: Tuple[DriftSignal, ...]
    summary: str


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


#: Crossing features an alert's summary names (largest first); the rest are counted.
SUMMARY_FEATURES = 5


def _crossed(leaf: _Leaf) -> str:
    """``a=0.91, b=0.4 +3 more``: the features over the threshold, most extreme first, bounded."""
    shown = ", ".join(f"{s.column}={_fmt(v)}" for s, v in zip(leaf.signals[:SUMMARY_FEATURES], leaf.values))
    more = len(leaf.signals) - SUMMARY_FEATURES
    return shown + (f" +{more} more" if more > 0 else "")


def _outcome(gate: Gate, report: WindowReport) -> _Outcome:
    leaves: List[_Leaf] = []
    met = _evaluate_gate(gate, report, leaves)
    observed, thresholds, parts, signals = {}, {}, [], []
    for i, leaf in enumerate(leaves):
        label = leaf.cond.label
        if label in observed:  # two conditions on the same selector
            label = f"{label}#{i}"
        observed[label] = leaf.value
        thresholds[label] = leaf.cond.threshold
        text = f"{label}={_fmt(leaf.value)} {leaf.cond.op} {_fmt(leaf.cond.threshold)}"
        if leaf.pvalue is not None:
            observed[label + ":pvalue"] = leaf.pvalue
            thresholds[label + ":pvalue"] = leaf.cond.max_pvalue
            text += f" (p={leaf.pvalue:.3g} <= {leaf.cond.max_pvalue:g})"
        if leaf.signals:
            text += " on " + _crossed(leaf)
            signals.extend(leaf.signals)
        if leaf.cond.metric == "ratio" and leaf.cond.signal == "latency" and report.latency is not None:
            q = QUANTILE_NAMES[leaf.cond.quantile]  # the evidence: both quantiles, not only their ratio
            text += (f" ({q} {_fmt(getattr(report.latency, q))} ms, reference "
                     f"{_fmt(getattr(report.latency, 'ref_' + q))} ms)")
        if leaf.cond.metric == "ratio" and leaf.cond.signal == "throughput":
            text += f" ({_fmt(report.throughput)} rows/s, reference {_fmt(report.throughput_ref)} rows/s)"
        if leaf.cond.signal == "volume" and leaf.met and leaf.value == 0:
            rejected = f", {report.rejected:,} rejected" if report.rejected else ""
            text = f"no rows arrived ({text}{rejected})"
        parts.append(("" if leaf.met else "not ") + text)
    return _Outcome(met, observed, thresholds, tuple(signals), "; ".join(parts))


def _canary_outcome(rule: Rule, report: WindowReport) -> _Outcome:
    """A canary rule's outcome: its comparison in ``report.comparisons`` (the monitor's, per rule)
    matches when its verdict is ``rollback``; the reasons are the evidence."""
    c = report.comparisons.get(rule.name)
    if c is None:
        return _Outcome(False, {}, {}, (), "no comparison in this window")
    observed, thresholds = {"verdict": float(c.verdict == "rollback")}, {"verdict": 0.5}
    for x in c.reasons:
        observed[x.trigger], thresholds[x.trigger] = x.observed, x.threshold
        if not (math.isnan(x.lower) and math.isnan(x.upper)):
            observed.update({f"{x.trigger}:pvalue": x.pvalue, f"{x.trigger}:lower": x.lower,
                             f"{x.trigger}:upper": x.upper})
    signals = tuple(s for s in (c.prediction,) if s is not None)
    return _Outcome(c.verdict == "rollback", observed, thresholds, signals, describe_comparison(c))


def _top_features(rule: Rule, outcome: _Outcome, report: WindowReport) -> Tuple[DriftSignal, ...]:
    """The drift signals that crossed, largest first; else the report's most drifted, as context."""
    pool = outcome.signals
    if not pool:
        # symptom alerts (latency, errors, KPI) still carry the likeliest
        # causes: whatever drifted most in the same window
        pool = tuple(s for s in report.features.values() if s.value == s.value)
    best: Dict[str, DriftSignal] = {}
    for s in pool:
        if s.column not in best or s.value > best[s.column].value:
            best[s.column] = s
    return tuple(sorted(best.values(), key=lambda s: s.value, reverse=True)[: rule.top_k])


# ------------------------------------------------------------ state

@dataclass
class _Tier:
    state: int = INACTIVE
    matched: int = 0      # consecutive matching windows (pending progress)
    clean: int = 0        # consecutive clean windows while firing
    cooldown: int = 0     # windows left before the tier may match again
    alert: Optional[Alert] = None   # the latest record while pending / firing


def _step(rule: Rule, sev: str, st: _Tier, outcome: _Outcome, report: WindowReport,
          segment: str = "") -> Optional[Alert]:
    """Advance one tier by one window (of ``segment``, "" = the whole); return the transition alert, if any."""
    where = f" in {segment}" if segment else ""

    def make(state: str, previous: str, with_evidence: bool = True) -> Alert:
        return Alert(
            rule=rule.name, severity=sev, state=state, previous_state=previous,
            window_start=report.window_start, window_end=report.window_end,
            observed=frozen_mapping(outcome.observed), thresholds=frozen_mapping(outcome.thresholds),
            owner=rule.owner, runbook=rule.runbook,
            summary=f"[{sev}] {rule.name}{where} {state}: {outcome.summary}", segment=segment,
            top_features=_top_features(rule, outcome, report) if with_evidence else (),
            evidence=tuple(report.evidence[: rule.max_evidence]) if with_evidence else (),
        )

    if st.state == FIRING:
        if outcome.met:
            st.clean = 0
            st.alert = make("firing", "firing")  # refreshed view, not a transition
            return None
        st.clean += 1
        if st.clean < rule.resolve_after:
            return None
        st.state, st.matched, st.clean, st.cooldown, st.alert = INACTIVE, 0, 0, rule.cooldown, None
        return make("resolved", "firing", with_evidence=False)
    if st.state == PENDING:
        if not outcome.met:
            # `for` counts consecutive windows: one clean window resets it.
            # Reported so a sink that saw "pending" also sees it end.
            st.state, st.matched, st.alert = INACTIVE, 0, None
            return make("resolved", "pending", with_evidence=False)
        st.matched = min(st.matched + 1, _U32)
        if st.matched >= rule.for_windows:
            st.state, st.clean = FIRING, 0
            st.alert = make("firing", "pending")
            return st.alert
        st.alert = make("pending", "pending")
        return None
    if st.cooldown > 0:
        st.cooldown -= 1
        return None
    if not outcome.met:
        return None
    st.matched = 1
    if rule.for_windows <= 1:
        st.state, st.clean = FIRING, 0
        st.alert = make("firing", "inactive")
    else:
        st.state = PENDING
        st.alert = make("pending", "inactive")
    return st.alert


def _shown(tiers: Sequence[Tuple[str, _Tier]]) -> Optional[Tuple[str, int]]:
    """(severity, state) a rule is shown as: firing before pending, then the highest severity;
    None when every tier is inactive."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    active = [(sev, st.state) for sev, st in tiers if st.state != INACTIVE]
    return max(active, key=lambda t: (t[1] == FIRING, rank[t[0]])) if active else None


def _as_sink(s: Any):
    if hasattr(s, "send") and callable(s.send):
        return s
    if callable(s):
        return CallbackSink(s)
    raise InvalidInputError(f"a sink needs a send(alert) method or must be callable, got {s!r}")


def _window_key(report: WindowReport) -> str:
    # repr is stable for the window types monitors use (ints, floats, str,
    # datetimes) and lets the key survive a round trip through bytes
    return repr((report.window_start, report.window_end))


class AlertEvaluator:
    """Evaluates rules on closed windows and keeps each rule's alert state.

    Parameters
    ----------
    rules : list of Rule, list of dict, or a path
        Anything :func:`~fastdrift.alerts.load_rules` accepts.
    sinks : iterable, optional
        Objects with ``send(alert)`` (:class:`JsonLinesSink`,
        :class:`CallbackSink`) or plain callables. Every transition goes to
        every sink, in order; a sink that raises is logged (logger
        ``fastdrift.alerts``) and counted in :attr:`sink_failures`, and never
        stops evaluation or the other sinks.

    Notes
    -----
    Thread-safe: a lock guards the state, so ``active()`` and
    ``promotion_allowed()`` may be called from other threads (an HTTP
    handler, a deployment gate) while a worker calls ``evaluate``. Sinks are
    called after the lock is released, in the evaluating thread.
    """

    def __init__(self, rules: Any, sinks: Iterable[Any] = ()):
        self.rules: Tuple[Rule, ...] = tuple(load_rules(rules))
        self.sinks = tuple(_as_sink(s) for s in sinks)
        for s in self.sinks:  # a sink that acts per rule (ActionSink) reads the rules' actions
            if callable(getattr(s, "bind_rules", None)):
                s.bind_rules(self.rules)
        self.sink_failures: Dict[str, int] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._state: Dict[Tuple[str, str], _Tier] = {
            (r.name, sev): _Tier() for r in self.rules for sev, _ in r.tiers() if r.segments is None
        }
        # rules with a segment selector: (rule, segment, severity) -> tier, made as segments appear
        self._seg_state: Dict[Tuple[str, str, str], _Tier] = {}
        self._last_window: Optional[str] = None
        self.windows_evaluated = 0

    # -------------------------------------------------------------- evaluation

    def _advance(self, report: WindowReport, state: Dict[Tuple[str, str], _Tier],
                 seg_state: Dict[Tuple[str, str, str], _Tier]) -> List[Alert]:
        out = []
        for rule in self.rules:
            if rule.segments is None:
                self._advance_rule(rule, report, {sev: state[(rule.name, sev)] for sev, _ in rule.tiers()}, "", out)
                continue
            active = {k for (name, k, _), st in seg_state.items()
                      if name == rule.name and (st.state != INACTIVE or st.matched or st.cooldown)}
            keys = sorted({k for k in report.segments if rule.selects_segment(k)} | active)
            for key in keys:
                seg = report.segments.get(key)
                if seg is None:  # no rows of the segment in this window: a clean window for its alerts
                    seg = WindowReport(window_start=report.window_start, window_end=report.window_end,
                                       closed=report.closed, rows=0, segment=key)
                tiers = {sev: seg_state.setdefault((rule.name, key, sev), _Tier()) for sev, _ in rule.tiers()}
                self._advance_rule(rule, seg, tiers, key, out)
        return out

    @staticmethod
    def _advance_rule(rule: Rule, report: WindowReport, state: Dict[str, _Tier], segment: str,
                      out: List[Alert]) -> None:
        """Advance one rule (of one segment) by one window, appending its shown transition to ``out``."""
        tiers = [(sev, state[sev]) for sev, _ in rule.tiers()]
        before = _shown(tiers)
        moved = {}
        for sev, gate in rule.tiers():
            outcome = _canary_outcome(rule, report) if rule.canary is not None else _outcome(gate, report)
            alert = _step(rule, sev, state[sev], outcome, report, segment)
            if alert is not None:
                moved[sev] = alert
        after = _shown(tiers)
        if after is None:
            if before is not None:  # the rule resolved: at the severity it was shown with
                out.append(moved[before[0]])
        elif after != before:
            alert = state[after[0]].alert
            prev = _STATE_NAMES[before[1]] if before is not None else alert.previous_state
            out.append(alert if alert.previous_state == prev else dataclasses.replace(alert, previous_state=prev))

    @staticmethod
    def _check(report: Any) -> WindowReport:
        if not isinstance(report, WindowReport):
            raise InvalidInputError(f"expected a WindowReport, got {type(report).__name__}")
        return report

    def evaluate(self, report: WindowReport) -> Tuple[Alert, ...]:
        """Advance every rule by one *closed* window and deliver the transitions.

        Parameters
        ----------
        report : WindowReport
            Must be closed (``report.closed``); use :meth:`preview` for the
            open window. The same window (same start and end) evaluated
            twice in a row is ignored, so a replay after a restart does not
            count a window twice toward ``for`` / ``resolve_after``.

        Returns
        -------
        tuple of Alert
            The transitions (pending, firing, resolved) this window caused,
            also sent to every sink.
        """
        self._check(report)
        if not report.closed:
            raise InvalidInputError(
                "evaluate() takes closed windows only (pending/firing count whole windows); "
                "use preview() for the open one")
        key = _window_key(report)
        with self._lock:
            if key == self._last_window:
                log.info("window %s already evaluated; ignored", key)
                return ()
            alerts = self._advance(report, self._state, self._seg_state)
            self._last_window = key
            self.windows_evaluated = min(self.windows_evaluated + 1, 1 << 62)  # the decoder's cap
        self._deliver(alerts)
        return tuple(alerts)

    def _deliver(self, alerts: Sequence[Alert]) -> None:
        with self._send_lock:  # keep every sink's order equal to transition order
            for alert in alerts:
                for sink in self.sinks:
                    try:
                        sink.send(alert)
                    except Exception:  # a broken sink must never break evaluation
                        name = repr(sink)
                        self.sink_failures[name] = self.sink_failures.get(name, 0) + 1
                        log.exception("alert sink %s failed on %s/%s", name, alert.rule, alert.severity)

    def preview(self, report: WindowReport) -> Tuple[Alert, ...]:
        """What would be pending or firing if ``report`` (open or closed) closed now.

        No state changes and nothing is sent to sinks.
        """
        self._check(report)
        with self._lock:
            # alerts are immutable, so copying the counters is a full copy
            state = {k: copy.copy(st) for k, st in self._state.items()}
            seg_state = {k: copy.copy(st) for k, st in self._seg_state.items()}
        self._advance(report, state, seg_state)
        return self._active(state, seg_state)

    # -------------------------------------------------------------- queries

    @staticmethod
    def _active(state: Mapping[Tuple[str, str], _Tier],
                seg_state: Mapping[Tuple[str, str, str], _Tier] = {}) -> Tuple[Alert, ...]:
        by_rule: Dict[Tuple[str, str], List[Tuple[str, _Tier]]] = {}
        for (name, sev), st in state.items():
            by_rule.setdefault((name, ""), []).append((sev, st))
        for (name, seg, sev), st in seg_state.items():
            by_rule.setdefault((name, seg), []).append((sev, st))
        alerts = []
        for tiers in by_rule.values():
            t = _shown(tiers)
            if t is not None:
                alerts.append(dict(tiers)[t[0]].alert)
        alerts = [a for a in alerts if a is not None]
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        return tuple(sorted(alerts, key=lambda a: (-rank[a.severity], a.state != "firing", a.rule, a.segment)))

    def active(self) -> Tuple[Alert, ...]:
        """Pending and firing alerts (latest observations), critical and firing first."""
        with self._lock:
            return self._active(self._state, self._seg_state)

    def promotion_allowed(self) -> bool:
        """False while any critical alert is firing (gate for automated model promotion)."""
        with self._lock:
            return not any(st.state == FIRING and k[-1] == "critical"
                           for k, st in list(self._state.items()) + list(self._seg_state.items()))

    # -------------------------------------------------------------- persistence

    def to_bytes(self) -> bytes:
        """The per-rule state (counters and active alerts) in fastdrift's checksummed envelope.

        Rules themselves are not stored: they live in configuration and are
        passed again to :meth:`from_bytes`.
        """
        with self._lock:
            entries = [(k, st) for k, st in self._state.items()
                       if st.state != INACTIVE or st.matched or st.cooldown]
            params = Writer().string_list(sorted({r.name for r in self.rules}))
            w = Writer(_MAX_STATE_BYTES)
            w.u8(int(self._last_window is not None)).string(self._last_window or "")
            w.u64(self.windows_evaluated)
            w.u64(len(entries))
            for (name, sev), st in entries:
                w.string(name).string(sev).u8(st.state).u32(st.matched).u32(st.clean).u32(st.cooldown)
                w.string(_alert_to_json(st.alert) if st.alert is not None else "")
            seg = [(k, st) for k, st in self._seg_state.items() if st.state != INACTIVE or st.matched or st.cooldown]
            if seg:  # a trailer: the per-segment entries, each with its segment key after the rule
                w.u64(len(seg))
                for (name, key, sev), st in seg:
                    w.string(name).string(key).string(sev).u8(st.state).u32(st.matched).u32(st.clean)
                    w.u32(st.cooldown).string(_alert_to_json(st.alert) if st.alert is not None else "")
        return encode(Kind.ALERT_STATE, params.getvalue(), w.getvalue(), max_size=_MAX_STATE_BYTES)

    @staticmethod
    def rule_names(data: bytes) -> List[str]:
        """The names of the rules whose state :meth:`to_bytes` wrote into ``data`` (CorruptStateError if invalid)."""
        _, params, _ = decode(data, expected_kind=Kind.ALERT_STATE, max_size=_MAX_STATE_BYTES)
        pr = Reader(params, "alert state params")
        names = pr.string_list("rule names")
        pr.done()
        return names

    @classmethod
    def from_bytes(cls, data: bytes, rules: Any, sinks: Iterable[Any] = ()) -> "AlertEvaluator":
        """Restore an evaluator from :meth:`to_bytes` with the (current) rules.

        State of rules or tiers no longer configured is dropped (logged);
        rules new since the bytes were written start inactive.

        Raises
        ------
        CorruptStateError
            Truncated, altered, oversized or inconsistent bytes.
        InvalidInputError
            Invalid ``rules``.
        """
        ev = cls(rules, sinks)
        _, params, payload = decode(data, expected_kind=Kind.ALERT_STATE, max_size=_MAX_STATE_BYTES)
        pr = Reader(params, "alert state params")
        pr.string_list("rule names")
        pr.done()
        r = Reader(payload, "alert state")
        has_last = r.u8("last window flag")
        last = r.string("last window")
        if has_last not in (0, 1):
            raise CorruptStateError(f"alert state: last window flag {has_last} is not 0/1")
        windows = r.u64("windows evaluated")
        if windows > 1 << 62:  # the sketches' count cap: counting on cannot overflow the u64 written back
            raise CorruptStateError(f"alert state: {windows} windows evaluated, above 2**62")
        restored: Dict[Tuple[str, ...], _Tier] = {}

        def entries(n: int, segmented: bool) -> None:
            for i in range(n):
                name = r.string(f"entries[{i}].rule")
                seg = r.string(f"entries[{i}].segment") if segmented else ""
                sev = r.string(f"entries[{i}].severity")
                state = r.u8(f"entries[{i}].state")
                matched, clean, cooldown = r.u32("matched"), r.u32("clean"), r.u32("cooldown")
                text = r.string(f"entries[{i}].alert")
                key = (name, seg, sev) if segmented else (name, sev)
                if sev not in SEVERITIES or state not in _STATE_NAMES or (segmented and not seg):
                    raise CorruptStateError(f"alert state: entries[{i}] has severity {sev!r}, state {state}, "
                                            f"segment {seg!r:.60}")
                if key in restored:
                    raise CorruptStateError(f"alert state: duplicate entry for {'/'.join(key)!r:.120}")
                if (state != INACTIVE) != bool(text):
                    raise CorruptStateError(f"alert state: entries[{i}] ({name!r}/{sev}) state and alert disagree")
                alert = _alert_from_json(text, f"entries[{i}].alert") if text else None
                if alert is not None and (alert.rule != name or alert.severity != sev or alert.segment != seg
                                          or alert.state != _STATE_NAMES[state]):
                    raise CorruptStateError(f"alert state: entries[{i}] alert does not match {name!r}/{sev}")
                restored[key] = _Tier(state, matched, clean, cooldown, alert)

        entries(r.count("entries", 8 + 8 + 1 + 12 + 8), False)
        if r.remaining:  # per-segment entries (absent from states of unsegmented rules)
            entries(r.count("segment entries", 8 + 8 + 8 + 1 + 12 + 8), True)
        r.done()
        by_name = {x.name: x for x in ev.rules}
        for key, st in restored.items():
            rule = by_name.get(key[0])
            if rule is not None and (len(key) == 2) == (rule.segments is None) and (
                    len(key) == 2 and key in ev._state or len(key) == 3 and rule.selects_segment(key[1])
                    and any(sev == key[2] for sev, _ in rule.tiers())):
                # a rule edited since (e.g. shorter cooldown) bounds the old counters
                st.cooldown = min(st.cooldown, rule.cooldown)
                if st.alert is not None:
                    st.alert = _refresh_rule_fields(st.alert, rule)
                (ev._state if len(key) == 2 else ev._seg_state)[key] = st
            else:
                log.warning("alert state for %s dropped: no such rule tier (or segment) configured", "/".join(key))
        ev._last_window = last if has_last else None
        ev.windows_evaluated = windows
        return ev


def _refresh_rule_fields(alert: Alert, rule: Rule) -> Alert:
    return dataclasses.replace(alert, owner=rule.owner, runbook=rule.runbook)


# An alert in the state blob is the records' exact JSON form (never pickle: the bytes may come
# from anywhere, and decoding JSON cannot run code).  States of the first layout hold
# to_jsonable() dicts with ["tag", "text"] windows instead; _legacy_alert reads those
# (tests/data/golden/alert_state_layout1.bin).

def _alert_to_json(alert: Alert) -> str:
    return json.dumps(to_json(alert), sort_keys=True)


def _alert_from_json(text: str, what: str) -> Alert:
    try:
        d = json.loads(text)
        alert = from_json(d) if "@" in d else _legacy_alert(d)
        if not isinstance(alert, Alert):
            raise TypeError(f"a {type(alert).__name__}, not an Alert")
        return alert
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:  # int(inf): Overflow
        raise CorruptStateError(f"alert state: {what} is not a valid alert record: {exc}") from None


_WINDOW_TAGS = {"none": lambda t: None, "int": int, "float": float, "str": str,
                "datetime": _dt.datetime.fromisoformat, "date": _dt.date.fromisoformat}


def _window_from_json(v: Any) -> Any:
    tag, text = v
    return _WINDOW_TAGS[tag](text)  # KeyError: an unknown tag


def _f(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"not a number: {v!r}")
    return float(v)  # "NaN" / "Infinity" strings come from to_jsonable


def _legacy_drift(d: Mapping) -> DriftSignal:
    means = {k: None if d[k] is None else _f(d[k]) for k in ("mean_ref", "mean_cur")}
    return DriftSignal(
        str(d["column"]), str(d["kind"]), str(d["metric"]), _f(d["value"]), int(d["n_ref"]), int(d["n_cur"]),
        _f(d["missing_ref"]), _f(d["missing_cur"]), pvalue=_f(d["pvalue"]), **means,
        contributions=tuple(BinContribution(str(c["label"]), _f(c["ref_share"]), _f(c["cur_share"]),
                                            _f(c["contribution"])) for c in d["contributions"]))


def _legacy_alert(d: Mapping) -> Alert:
    return Alert(
        rule=str(d["rule"]), severity=str(d["severity"]), state=str(d["state"]),
        previous_state=str(d["previous_state"]),
        window_start=_window_from_json(d["window_start"]), window_end=_window_from_json(d["window_end"]),
        observed=frozen_mapping({str(k): _f(v) for k, v in d["observed"].items()}),
        thresholds=frozen_mapping({str(k): _f(v) for k, v in d["thresholds"].items()}),
        owner=str(d["owner"]), runbook=str(d["runbook"]), summary=str(d["summary"]),
        top_features=tuple(_legacy_drift(s) for s in d["top_features"]),
        evidence=tuple(frozen_mapping(e) for e in d["evidence"]),
    )
