"""One reference-vs-current comparison: signals, quantile shifts, alerts, exit status.

:func:`compare` turns two :class:`~fastdrift.Profile` objects into a
:class:`Comparison` through the same path a running monitor takes - the
current profile is one closed window (:func:`fastdrift.monitor.window_from_profiles`)
whose drift signals (:func:`fastdrift.metrics.column_drift`, computed once per column) make
both the report and the drift table, and the alert rules are evaluated on it by an
:class:`~fastdrift.alerts.AlertEvaluator` - and adds what a batch comparison
can afford on top: quantile shifts, KS and Wasserstein distances from the
t-digests, and, when both profiles carry a performance sketch (a label column), the
model's performance on each side: realized from the labels, and estimated from the scores
alone (confidence-based performance estimation) for a side whose labels have not arrived.
:func:`to_json`, :func:`format_text` and
:func:`fastdrift.report.html.render` present it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..adapters.segments import OTHER
from ..alerts import AlertEvaluator, default_rules, load_rules
from ..metrics.quantile import ks_2samp, wasserstein
from ..monitor.config import MonitorConfig
from ..monitor.ingest import window_from_profiles
from ..monitor.signals import build_report, window_drifts
from ..records import Alert, WindowReport, frozen_mapping, to_jsonable
from ..errors import SchemaError
from ..sketches import Profile

__all__ = ["Comparison", "FeatureRow", "QuantileRow", "PerformanceSide", "PerformanceComparison", "compare", "to_json", "format_text", "notes", "psi_text", "performance_comparison",
           "performance_rows", "performance_text", "segment_reference", "segment_rows", "segments_text",
           "top_alerts", "EXIT_OK", "EXIT_WARNING", "EXIT_CRITICAL", "QUANTILES"]

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL = 0, 1, 2
#: Quantiles of the quantile-shift table.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_SEV_RANK = {"critical": 2, "warning": 1, "": 0}
_STATUS_RANK = {"significant": 2, "moderate": 1, "stable": 0, "no data": 0}


@dataclass(frozen=True)
class QuantileRow:
    """Quantiles of a numeric column in both profiles (from the t-digests)."""

    column: str
    qs: Tuple[float, ...]
    ref: Tuple[float, ...]
    cur: Tuple[float, ...]
    ks_statistic: float
    ks_pvalue: float
    wasserstein: float

    @property
    def shift(self) -> Tuple[float, ...]:
        return tuple(c - r for r, c in zip(self.ref, self.cur))


@dataclass(frozen=True)
class FeatureRow:
    """The drift table's row of one column (a feature or the prediction)."""

    column: str
    kind: str
    role: str             # "feature" | "prediction"
    psi: float
    pvalue: float
    js_distance: float
    hellinger: float
    status: str           # PSI rule of thumb: stable / moderate / significant; "no data" (PSI NaN)
    severity: str         # the worst firing alert naming this column: "", "warning", "critical"
    missing_ref: float
    missing_cur: float
    mean_ref: Optional[float]
    mean_cur: Optional[float]
    top_bin: str
    top_bin_contribution: float
    id_like: bool = False      # ID-like reference column: left out of the default drift rule
    saturated: bool = False    # PSI near its ceiling: the shift is at least this large


@dataclass(frozen=True)
class PerformanceSide:
    """One side's performance: realized from its labels, estimated from its scores alone."""

    rows: int                        # rows of the side (labelled or not)
    labelled: int                    # rows with a valid label
    unlabelled: int                  # rows with a valid score and no label (null, or no label column)
    rejected: Mapping[str, int]      # bad rows by reason (label outside {0, 1}, NaN score, ...)
    realized: Mapping[str, float]    # BinaryPerformance.metrics(threshold); empty without labels
    estimated: Mapping[str, float]   # BinaryPerformance.estimate(threshold) over every scored row


@dataclass(frozen=True)
class PerformanceComparison:
    """The model's performance on the reference and the current data, by metric name."""

    prediction: str
    label: str
    threshold: float
    reference: PerformanceSide
    current: PerformanceSide

    def change(self, metric: str) -> float:
        """Current minus reference, realized; NaN when a side has no labels or no such metric."""
        r, c = self.reference.realized.get(metric, math.nan), self.current.realized.get(metric, math.nan)
        return c - r


#: The performance table's metrics, in order (the names of :meth:`BinaryPerformance.metrics`).
PERFORMANCE_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "ece", "accuracy", "precision", "recall",
                       "f1", "positive_rate", "prediction_rate", "tp", "fp", "tn", "fn")
_COUNTS = ("tp", "fp", "tn", "fn")


def _side(prof: Profile, threshold: float) -> PerformanceSide:
    sk = prof.performance.sketch
    realized = {k: float(v) for k, v in sk.metrics(threshold=threshold).items()} if sk.labelled else {}
    estimated = {k: float(v) for k, v in sk.estimate(threshold=threshold, labelled=True).items()}
    return PerformanceSide(prof.rows, int(sk.labelled), int(sk.unlabelled), dict(sk.rejected), realized, estimated)


def performance_comparison(reference: Profile, current: Profile,
                           threshold: float = 0.5) -> Optional[PerformanceComparison]:
    """Both sides' performance, or None when the reference has no performance sketch.

    Raises
    ------
    SchemaError
        The reference has one and the current profile has none, or of other columns.
    """
    rp, cp = reference.performance, current.performance
    if rp is None:
        return None
    if cp is None or (cp.prediction, cp.label) != (rp.prediction, rp.label):
        raise SchemaError(f"the current profile has no performance sketch of {rp.prediction!r} against "
                          f"{rp.label!r} (profile it on the reference: --reference, or reference=)")
    return PerformanceComparison(rp.prediction, rp.label, float(threshold), _side(reference, threshold),
                                 _side(current, threshold))


@dataclass(frozen=True)
class Comparison:
    """Everything ``fastdrift compare`` reports."""

    reference: Profile
    current: Profile
    report: WindowReport
    config: MonitorConfig
    rows: Tuple[FeatureRow, ...]
    quantiles: Mapping[str, QuantileRow]
    alerts: Tuple[Alert, ...]
    ref_label: str = "reference"
    cur_label: str = "current"
    rules_source: str = "built-in default rules"
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: reference columns that are not counted -> why (their type has no sketch)
    skipped: Mapping[str, str] = field(default_factory=dict)
    #: the model's performance on both sides (profiles with a label column), else None
    performance: Optional[PerformanceComparison] = None
    #: segment key -> that segment of the current data compared with its reference (segmented profiles)
    segments: Mapping[str, "Comparison"] = field(default_factory=dict)
    #: segment key -> "segment" (the reference's own segment of the key) or "whole" (the whole reference)
    segment_basis: Mapping[str, str] = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        """0 nothing fired, 1 a warning fired, 2 a critical alert fired: the worst of the whole and
        of every segment."""
        sev = {a.severity for a in self.alerts if a.state == "firing"}
        own = EXIT_CRITICAL if "critical" in sev else EXIT_WARNING if "warning" in sev else EXIT_OK
        return max([own, *(s.exit_status for s in self.segments.values())])

    @property
    def drifted(self) -> List[str]:
        """Columns whose PSI is at least moderate (ID-like columns aside) or that an alert names."""
        return [r.column for r in self.rows
                if (r.status in ("moderate", "significant") and not r.id_like) or r.severity]

    @property
    def id_like(self) -> List[str]:
        """ID-like columns (:func:`fastdrift.metrics.id_like`), left out of the default drift rule."""
        return [r.column for r in self.rows if r.id_like]


def _one_shot(rules) -> list:
    """Rules for a single window: ``for`` counts are met by the one window compared.

    A live monitor waits ``for: N`` windows so one noisy window does not page anyone;
    a batch comparison has exactly one (large) window, so waiting would mean never firing.
    """
    return [dataclasses.replace(r, for_windows=1) for r in rules]


_COLUMN_SIGNALS = {"feature_drift", "prediction_drift", "missingness"}


def _sev_by_column(alerts, rules) -> Dict[str, str]:
    """Column -> worst firing severity among alerts *about* that column.

    Symptom alerts (latency, errors, KPIs) attach the most drifted features as context,
    not as causes, so only alerts whose conditions are all column signals count.
    """
    about_columns = {(r.name, sev) for r in rules for sev, gate in r.tiers()
                     if all(c.signal in _COLUMN_SIGNALS for c in gate.leaves())}
    out: Dict[str, str] = {}
    for a in alerts:
        if a.state != "firing" or (a.rule, a.severity) not in about_columns:
            continue
        for c in {s.column for s in a.top_features}:  # the signals that crossed the thresholds
            if _SEV_RANK[a.severity] > _SEV_RANK[out.get(c, "")]:
                out[c] = a.severity
    return out


def segment_reference(reference: Profile, current: Profile, key: str) -> Tuple[Profile, str]:
    """The reference of the current profile's segment ``key``: the reference's own segment of that
    key when the reference is segmented by the same columns and has it (``"segment"``), else the
    whole reference (``"whole"``).  ``"<other>"`` always takes the whole: each side's ``<other>``
    holds whichever keys came past its own cap."""
    own = reference.segments.get(key) if reference.segment_by == current.segment_by and key != OTHER else None
    return (own, "segment") if own is not None else (reference, "whole")


def compare(reference: Profile, current: Profile, config: Optional[MonitorConfig] = None, *,
            rules=None, schema_changes=(), evidence=(), ref_label: str = "reference",
            cur_label: str = "current", skipped: Optional[Mapping[str, str]] = None,
            threshold: float = 0.5) -> Comparison:
    """Compare a current profile with a reference and evaluate alert rules on it.

    Parameters
    ----------
    reference, current : Profile
        ``current`` counted on the reference's bins.
    config : MonitorConfig, optional
        Column roles; default: every reference column is a feature.
    rules : path, list of dicts / Rule, or None
        None: :func:`~fastdrift.alerts.default_rules` for the compared columns.
    schema_changes : SchemaChange records the caller observed (Arrow types changed within a kind).
    evidence : (key, redacted row) pairs sampled from the current data (alerts carry them).
    skipped : column -> why it is not counted (:func:`~fastdrift.sketches.profile.skip_reasons`);
        default: the reference's ``skipped`` columns, reason unknown.
    threshold : the score from which a row is predicted positive (the performance's confusion counts).

    A segmented current profile also compares each of its segments (``Comparison.segments``)
    with :func:`segment_reference`, under the same rules; the exit status is the worst of all.

    Returns
    -------
    Comparison
    """
    whole = _compare(reference, current, config, rules=rules, schema_changes=schema_changes, evidence=evidence,
                     ref_label=ref_label, cur_label=cur_label, skipped=skipped, threshold=threshold)
    if not current.segments:
        return whole
    segments, basis = {}, {}
    for key, cur in current.segments.items():
        ref, basis[key] = segment_reference(reference, current, key)
        segments[key] = _compare(ref, cur, config, rules=rules, schema_changes=schema_changes,
                                 ref_label=f"{ref_label} [{key if basis[key] == 'segment' else 'whole'}]",
                                 cur_label=f"{cur_label} [{key}]", skipped=skipped, threshold=threshold)
    return dataclasses.replace(whole, segments=segments, segment_basis=basis)


def _compare(reference: Profile, current: Profile, config: Optional[MonitorConfig] = None, *,
             rules=None, schema_changes=(), evidence=(), ref_label: str = "reference",
             cur_label: str = "current", skipped: Optional[Mapping[str, str]] = None,
             threshold: float = 0.5) -> Comparison:
    config = config or MonitorConfig()
    perf = performance_comparison(reference, current, threshold)
    if perf is not None:  # the window's performance, as a monitor with this label column reports it
        if config.prediction not in (None, perf.prediction) or config.label not in (None, perf.label):
            raise SchemaError(f"the profiles' performance is of {perf.prediction!r} against {perf.label!r}; the "
                              f"config's prediction is {config.prediction!r} and its label {config.label!r}")
        config = dataclasses.replace(config, prediction=perf.prediction, label=perf.label)
    elif config.label is not None:  # profiles without labels: drift only
        config = dataclasses.replace(config, label=None)
    # every bin's contribution (deciles: 10; categories: up to 50) so the report can draw them all
    config = dataclasses.replace(config, max_contributions=max(config.max_contributions, 50))
    ws, cfg = window_from_profiles(reference, current, config, schema_changes=schema_changes, evidence=evidence)
    drifts = window_drifts(ws, also=("js", "hellinger"))  # the drift table shows both for every column
    report = build_report(ws, 0, 1, True, math.nan, drifts)
    if perf is not None:  # the rules read the metrics at the compare's threshold
        report = dataclasses.replace(report, performance=frozen_mapping(perf.current.realized),
                                     performance_ref=frozen_mapping(perf.reference.realized))
    source = "built-in default rules"
    if rules is None and cfg.rules is not None:
        rules, source = cfg.rules, "rules: section of the monitor config"
    if rules is None:
        rule_list = default_rules(cfg.feature_names(), cfg.prediction, latency=cfg.latency is not None,
                                  error=False, id_like=[n for n in cfg.feature_names() if drifts[n].id_like],
                                  label=cfg.label is not None)
    else:
        if isinstance(rules, str):
            source = rules
        elif source == "built-in default rules":
            source = "given rules"
        rule_list = load_rules(rules)
    alerts = AlertEvaluator(_one_shot(rule_list)).evaluate(report)
    sev = _sev_by_column(alerts, rule_list)
    rows = [FeatureRow(d.column, d.kind, "prediction" if d.column == cfg.prediction else "feature", d.psi,
                       d.pvalue, d.js_distance, d.hellinger, d.status, sev.get(d.column, ""), d.missing_ref,
                       d.missing_cur, d.mean_ref, d.mean_cur, d.top_bin, d.top_bin_contribution, d.id_like,
                       d.saturated)
            for d in drifts.values()]
    rows.sort(key=lambda r: (-_SEV_RANK[r.severity], -_STATUS_RANK[r.status],
                             -(r.psi if math.isfinite(r.psi) else math.inf), r.column))
    quantiles = {}
    for n, rc in reference.columns.items():
        cc = current.columns.get(n)
        if rc.tdigest is None or cc is None or cc.tdigest is None or not rc.tdigest.n or not cc.tdigest.n:
            continue
        qs = np.array(QUANTILES)
        r, c = rc.tdigest.copy(), cc.tdigest.copy()
        ks = ks_2samp(r, c)
        quantiles[n] = QuantileRow(n, QUANTILES, tuple(map(float, r.quantile(qs))),
                                   tuple(map(float, c.quantile(qs))), ks.statistic, ks.pvalue,
                                   wasserstein(r, c))
    if skipped is None:
        skipped = {n: "its type has no sketch" for n in reference.skipped}
    return Comparison(reference, current, report, cfg, tuple(rows), quantiles, tuple(alerts),
                      ref_label, cur_label, source, skipped=dict(skipped), performance=perf)


def to_json(c: Comparison) -> dict:
    """One JSON-ready document: every feature's signals, quantiles, schema changes and the alerts."""
    r = c.report
    feats = []
    for row in c.rows:
        sig = r.features.get(row.column) or (r.prediction if row.role == "prediction" else None)
        q = c.quantiles.get(row.column)
        feats.append({
            **to_jsonable(row),
            "n_ref": sig.n_ref if sig else None, "n_cur": sig.n_cur if sig else None,
            "missing_delta": to_jsonable(row.missing_cur - row.missing_ref),
            "contributions": to_jsonable(sig.contributions) if sig else [],
            "quantiles": None if q is None else {
                "q": list(q.qs), "ref": to_jsonable(list(q.ref)), "cur": to_jsonable(list(q.cur)),
                "shift": to_jsonable(list(q.shift)), "ks_statistic": to_jsonable(q.ks_statistic),
                "ks_pvalue": to_jsonable(q.ks_pvalue), "wasserstein": to_jsonable(q.wasserstein)},
        })
    return {
        "fastdrift": "compare/1",
        "reference": {"source": c.ref_label, "rows": c.reference.rows},
        "current": {"source": c.cur_label, "rows": c.current.rows},
        "exit_status": c.exit_status,
        "summary": {"features": len(c.rows), "drifted": c.drifted, "id_like": c.id_like,
                    "alerts_firing": {s: sum(1 for a in c.alerts if a.state == "firing" and a.severity == s)
                                      for s in ("warning", "critical")},
                    "rules": c.rules_source},
        "features": feats,
        "latency": to_jsonable(r.latency),
        "kpis": to_jsonable(r.kpis),
        "schema_changes": to_jsonable(r.schema_changes),
        "skipped_columns": [{"column": n, "reason": why} for n, why in c.skipped.items()],
        "performance": None if c.performance is None else {"concept": r.concept, **to_jsonable(c.performance)},
        "alerts": to_jsonable(c.alerts),
        "segment_by": list(c.current.segment_by),
        "segments": {k: {"reference_basis": c.segment_basis[k], **to_json(s)} for k, s in c.segments.items()},
    }


def segment_rows(c: Comparison) -> List[Tuple[str, str, int, int, int, Optional[FeatureRow], int]]:
    """(key, reference basis, rows, drifted features, features, worst-PSI row or None, exit status)
    per segment, worst first (exit status, then PSI)."""
    out = []
    for k, s in c.segments.items():
        finite = [r for r in s.rows if math.isfinite(r.psi) and not r.id_like]
        worst = max(finite, key=lambda r: r.psi) if finite else None
        out.append((k, c.segment_basis[k], s.current.rows, len(s.drifted), len(s.rows), worst, s.exit_status))
    out.sort(key=lambda t: (-t[6], -(t[5].psi if t[5] is not None else -1.0), t[0]))
    return out


def segments_text(c: Comparison) -> List[str]:
    """The terminal report's segment table (nothing when the current profile is not segmented)."""
    if not c.segments:
        return []
    by = ", ".join(c.current.segment_by)
    n_own = sum(b == "segment" for b in c.segment_basis.values())
    out = ["", f"Segments by {by} ({len(c.segments)}; reference: the reference's own segment for {n_own}, "
               f"the whole reference for {len(c.segments) - n_own}; worst first)"]
    body = [[k, b, f"{rows:,}", f"{d}/{n}", "-" if w is None else f"{psi_text(w)} ({w.column})",
             {0: "ok", 1: "warning", 2: "critical"}[e]] for k, b, rows, d, n, w, e in segment_rows(c)]
    return out + _table(["segment", "reference", "rows", "drifted", "worst PSI", "alerts"], body)


def top_alerts(alerts) -> List[Alert]:
    """Firing alerts, one per rule (its highest firing tier), critical first.

    The evaluator already reports a rule once (see :mod:`fastdrift.alerts.evaluator`); this also
    holds for alerts gathered from several windows or evaluators.
    """
    best: Dict[str, Alert] = {}
    for a in alerts:
        if a.state == "firing" and _SEV_RANK[a.severity] > _SEV_RANK[best[a.rule].severity if a.rule in best else ""]:
            best[a.rule] = a
    return sorted(best.values(), key=lambda a: -_SEV_RANK[a.severity])


def _table(head: Sequence[str], body: List[Sequence[str]]) -> List[str]:
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(str(x).ljust(w) for x, w in zip(cells, widths)).rstrip()
    return [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]


def _g(x) -> str:
    return "" if x is None else f"{x:.4g}"


#: What the drift table's notes mean (text, JSON ``id_like`` / ``saturated``, HTML).
NOTES = {
    "ID-like": "ID-like: a categorical of mostly distinct values (or many categories of few rows); its PSI "
               "measures churn of ids, so the default rules leave it out of the drift rule",
    "saturated": "saturated (PSI shown as >=): the current values sit (almost) all in one reference bin, so PSI "
                 "is at its ceiling for the bins and smoothing 1e-4 and cannot show how far they moved",
}


def notes(r: FeatureRow) -> List[str]:
    """The drift-table notes of a row: ``ID-like``, ``saturated``."""
    return [n for n, on in (("ID-like", r.id_like), ("saturated", r.saturated)) if on]


def psi_text(r: FeatureRow) -> str:
    """PSI to 4 decimals, ``>=`` before a saturated one (the shift is at least that large)."""
    return (">=" if r.saturated else "") + f"{r.psi:.4f}"


def performance_rows(p: PerformanceComparison) -> List[Tuple[str, float, float, float, float, float]]:
    """(metric, reference, current, change, estimated reference, estimated current) per metric of either side."""
    names = [m for m in PERFORMANCE_METRICS if any(m in d for d in (p.reference.realized, p.current.realized,
                                                                      p.reference.estimated, p.current.estimated))]
    nan = math.nan
    return [(m, p.reference.realized.get(m, nan), p.current.realized.get(m, nan), p.change(m),
             p.reference.estimated.get(m, nan), p.current.estimated.get(m, nan)) for m in names]


def performance_text(p: Optional[PerformanceComparison]) -> List[str]:
    """The terminal report's performance section (nothing without a performance sketch)."""
    if p is None:
        return []
    out = ["", f"Performance (prediction {p.prediction!r}, label {p.label!r}, threshold {p.threshold:g}; realized from "
               "the labels, estimated from the scores alone)"]

    def g(m, x, sign=""):
        if x != x:
            return "-"
        return f"{x:{sign},.0f}" if m in _COUNTS else f"{x:{sign}.4f}"
    body = [[m, g(m, r), g(m, c), g(m, d, "+"), g(m, er), g(m, ec)] for m, r, c, d, er, ec in performance_rows(p)]
    out += _table(["metric", "reference", "current", "change", "est. reference", "est. current"], body)
    for name, side in (("reference", p.reference), ("current", p.current)):
        bad = ", ".join(f"{k} {v:,}" for k, v in side.rejected.items() if v)
        out.append(f"  {name}: {side.labelled:,} labelled, {side.unlabelled:,} unlabelled of {side.rows:,} rows"
                   + ("" if side.labelled else " (no labels: estimated performance only)")
                   + (f"; rejected: {bad}" if bad else ""))
    return out


def format_text(c: Comparison) -> str:
    """The terminal report: drift table, quantile shifts, missingness, schema changes, alerts."""
    out = [f"reference: {c.ref_label} ({c.reference.rows:,} rows)   current: {c.cur_label} "
           f"({c.current.rows:,} rows)", ""]
    body = [[r.column + (" (prediction)" if r.role == "prediction" else ""), r.kind, psi_text(r),
             "" if r.pvalue != r.pvalue else f"{r.pvalue:.2g}", r.status, r.severity or "-",
             f"{r.js_distance:.4f}", f"{r.missing_ref:.2%}", f"{r.missing_cur:.2%}", _g(r.mean_ref),
             _g(r.mean_cur), f"{r.top_bin} ({r.top_bin_contribution:.3f})", ", ".join(notes(r))] for r in c.rows]
    out += ["Drift (PSI on reference bins; sorted by severity)"]
    out += _table(["column", "kind", "PSI", "p-value", "status", "alert", "JS dist", "missing ref",
                   "missing cur", "mean ref", "mean cur", "top PSI bin", "note"], body)
    out += [f"  {NOTES[n]}" for n in NOTES if any(n in notes(r) for r in c.rows)]
    if c.quantiles:
        out += ["", "Quantile shifts (current - reference, from t-digests)"]
        qb = [[q.column, *(f"{s:+.4g}" for s in q.shift), f"{q.ks_statistic:.4f}", f"{q.wasserstein:.4g}"]
              for q in c.quantiles.values()]
        out += _table(["column", *(f"p{100 * q:g}" for q in QUANTILES), "KS D", "W1"], qb)
    miss = [r for r in c.rows if abs(r.missing_cur - r.missing_ref) >= 0.005]
    out += ["", "Missingness (null + NaN share; changes >= 0.5 points)"]
    out += [f"  {r.column}: {r.missing_ref:.2%} -> {r.missing_cur:.2%} ({r.missing_cur - r.missing_ref:+.2%})"
            for r in miss] or ["  no change"]
    out += ["", "Schema changes"]
    out += [f"  {s.column}: {s.change}" + (f" ({s.expected} -> {s.observed})" if s.change.startswith("type") else
                                           f" ({s.observed})" if s.observed else "")
            for s in c.report.schema_changes] or ["  none"]
    if c.skipped:
        out += ["", "Columns not counted"] + [f"  {n}: {why}" for n, why in c.skipped.items()]
    out += performance_text(c.performance)
    if c.performance is not None and c.report.concept:
        out.append(f"  concept-drift view: {c.report.concept}")
    if c.report.latency is not None:
        lat = c.report.latency
        out += ["", f"Latency ({c.config.latency}, ms): p50 {lat.p50:.1f}  p95 {lat.p95:.1f}  p99 {lat.p99:.1f}"]
    out += segments_text(c)
    firing = top_alerts(c.alerts)
    out += ["", f"Alerts ({c.rules_source}): {len(firing)} rule{'' if len(firing) == 1 else 's'} firing"]
    for a in firing:
        out.append(f"  {a.summary}")
        if not a.owner.startswith("CONFIGURE ME"):
            out.append(f"    owner: {a.owner}   runbook: {a.runbook}")
    return "\n".join(out)
