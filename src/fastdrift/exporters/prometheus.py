"""Prometheus exposition of a monitor: counters Prometheus can sum across processes, and gauges
of the latest window.

:class:`MonitorCollector` implements prometheus_client's custom-collector
protocol: it pulls an :class:`Exposition` (or a ``(latest_report,
active_alerts)`` pair) from a callable at scrape time, so nothing is copied
into global metric objects. :func:`serve` exposes it over HTTP on a private
registry, bound to 127.0.0.1 unless told otherwise (drift numbers and feature
names are internal information).

Counters count since the monitor object was created (a restart, or a restore
from a checkpoint, starts them at 0 again: Prometheus' ``rate`` / ``increase``
handle the reset). Summed over instances, they give fleet PSI, latency
quantiles and error ratios in PromQL (see docs/prometheus.md and
:mod:`fastdrift.exporters.promrules`). Every name, its type and labels:

==============================================  =========  ============================  ==========================================
name                                            type       labels                        value
==============================================  =========  ============================  ==========================================
``fastdrift_feature_bin_rows_total``            counter    ``feature``, ``role``, ``bin``  rows per reference bin (``role``: feature
                                                                                          or prediction)
``fastdrift_feature_missing_total``             counter    ``feature``, ``role``         null + NaN values
``fastdrift_feature_reference_share``           gauge      ``feature``, ``role``, ``bin``  share of the reference's values in the bin
``fastdrift_feature_reference_missing_ratio``   gauge      ``feature``, ``role``         null + NaN share in the reference
``fastdrift_feature_reference_rows``            gauge      ``feature``, ``role``         non-missing values in the reference
``fastdrift_latency_seconds``                   histogram                                serving latency, buckets 2^(k/8) s
``fastdrift_rows_total``                        counter                                  rows counted
``fastdrift_errors_total``                      counter                                  rows flagged as failed
``fastdrift_error_flag_rows_total``             counter                                  rows with a non-null error flag
``fastdrift_kpi_count`` / ``fastdrift_kpi_sum``  summary    ``kpi``                       finite KPI values and their sum
``fastdrift_kpi_squares_total``                 counter    ``kpi``                       sum of squared KPI values
``fastdrift_kpi_reference_mean``                gauge      ``kpi``                       KPI mean of the reference
``fastdrift_shadow_paired_rows_total``          counter                                  rows with both predictions
``fastdrift_shadow_agreed_rows_total``          counter                                  paired rows that agree
``fastdrift_shadow_bin_rows_total``             counter    ``feature``, ``model``, ``bin``  paired rows per prediction bin
                                                                                          (``model``: champion or challenger)
``fastdrift_freshness_lag_seconds``             histogram                                event-time-to-arrival lag, buckets
                                                                                          2^(k/4) s
``fastdrift_freshness_over_sla_rows_total``     counter                                  lags over the SLA
``fastdrift_freshness_sla_seconds``             gauge                                    the SLA
``fastdrift_rejected_rows_total``               counter                                  rows rejected as bad input
``fastdrift_dropped_late_rows_total``           counter                                  late rows dropped (time windows)
``fastdrift_latency_invalid_total``             counter                                  latencies that were negative or not finite
``fastdrift_observe_shed_total``                counter                                  ``observe`` requests shed under overload
``fastdrift_spool_write_errors_total``          counter                                  pane files the spool failed to take (retried)
``fastdrift_spool_coalesced_total``             counter                                  queued pane versions replaced by a newer one
``fastdrift_spool_written_timestamp_seconds``   gauge                                    when the spool last took a pane file
``fastdrift_start_time_seconds``                gauge                                    when the counters started (Unix time)
``fastdrift_window_end_timestamp_seconds``      gauge                                    end of the last closed window (event
                                                                                          time; wall clock of its close for row
                                                                                          windows)
``fastdrift_alert_state``                       gauge      ``rule``, ``severity``        0 inactive, 1 pending, 2 firing (every
                                                                                          configured rule and tier)
``fastdrift_feature_drift``                     gauge      ``feature``, ``metric``       drift of the feature (latest window)
``fastdrift_feature_drift_pvalue``              gauge      ``feature``, ``metric``       p-value of the same bins (when computed)
``fastdrift_feature_missing_ratio``             gauge      ``feature``                   null + NaN share in the latest window
``fastdrift_prediction_drift``                  gauge      ``feature``, ``metric``       drift of the prediction (latest window)
``fastdrift_window_latency_seconds``            gauge      ``quantile``                  latency quantiles of the latest window
``fastdrift_error_ratio``                       gauge                                    failed / flagged rows, latest window
``fastdrift_kpi_delta``                         gauge      ``kpi``                       KPI mean minus reference mean
``fastdrift_schema_changes``                    gauge                                    schema changes in the latest window
``fastdrift_window_rows``                       gauge                                    rows in the latest window
``fastdrift_window_throughput_rows_per_second``  gauge                                   rows per second of the latest window's span
``fastdrift_window_rejected_rows``              gauge                                    rows rejected, latest window
``fastdrift_window_closed``                     gauge                                    1 if the latest report is of a closed window
``fastdrift_window_freshness_seconds``          gauge      ``quantile``                  event-time-to-arrival lag quantiles,
                                                                                          latest window (``freshness``)
``fastdrift_window_freshness_max_seconds``      gauge                                    largest lag, latest window
``fastdrift_window_freshness_over_sla_rows``    gauge                                    rows whose lag exceeded the SLA
``fastdrift_shadow_agreement_ratio``            gauge                                    challenger agrees with the champion,
                                                                                          share of rows with both, latest window
``fastdrift_shadow_rows``                       gauge                                    rows with both predictions, latest window
``fastdrift_shadow_prediction_drift``           gauge      ``metric``                    challenger vs champion distribution
                                                                                          (psi, js), latest window
``fastdrift_shadow_score_diff``                 gauge      ``quantile``                  quantiles of challenger - champion
``fastdrift_shadow_performance``                gauge      ``model``, ``metric``         performance on the same labelled rows
                                                                                          (``model``: champion or challenger)
==============================================  =========  ============================  ==========================================

Non-finite gauge values (a NaN p-value that was not computed, an error rate
with no requests) are left out rather than exported as NaN, so ``absent()``
alerts and dashboards see "no data" instead of a number.

Segments (``Monitor(segment_by=...)``): every latest-window gauge above also exists per segment
under its own name, ``fastdrift_segment_`` + the name without ``fastdrift_`` (for example
``fastdrift_segment_feature_drift``, ``fastdrift_segment_window_rows``,
``fastdrift_segment_alert_state`` for rules with a segment selector), with the same labels plus
``segment`` (the key, ``arm=canary``) and one label per segment column (its name sanitized:
``arm="canary"``; empty for ``<other>``).  So do the counters of :data:`_COUNTED` (bin rows,
missing values, latency buckets, rows, errors, KPI sums, with the reference shares / missing
ratio / rows / KPI mean of the reference the segment is compared with) and
``fastdrift_segment_start_time_seconds``.  The whole keeps the names above, so a ``sum()`` never
adds a segment to the whole: :data:`SEGMENT_METRIC_NAMES` lists the segment series.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

try:
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
                                        SummaryMetricFamily)
    from prometheus_client.registry import CollectorRegistry
    from prometheus_client.utils import floatToGoString
    from prometheus_client import start_http_server
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "fastdrift.exporters.prometheus needs prometheus_client: pip install 'fastdrift[prometheus]'"
    ) from exc

from ..errors import InvalidInputError
from ..adapters.segments import parse_segment_key
from ..monitor.shadow import FRESHNESS_EDGES_SECONDS
from ..monitor.signals import LATENCY_EDGES_SECONDS
from ..records import Alert, WindowReport

__all__ = ["MonitorCollector", "Exposition", "serve", "ALERT_STATE_VALUES", "METRIC_NAMES",
           "SEGMENT_METRIC_NAMES", "LATENCY_BUCKET_FACTOR"]

#: Value of ``fastdrift_alert_state`` per alert state (a configured tier that is neither is 0).
ALERT_STATE_VALUES = {"pending": 1.0, "firing": 2.0}
#: Ratio of consecutive ``fastdrift_latency_seconds`` bucket bounds: a ``histogram_quantile`` is within
#: a factor of it of the exact quantile (relative error <= 2^(1/8) - 1, about 9.05 %).
LATENCY_BUCKET_FACTOR = 2 ** (1 / 8)


@dataclass(frozen=True)
class Exposition:
    """What one scrape exports (built by the monitor from immutable copies).

    report : the latest closed window or None;  alerts : active alerts
    totals : a :class:`fastdrift.monitor.signals.Totals` (counts since ``start_time``) or None
    rules : ``(rule, severity)`` of every configured tier (their state is exported, 0 when inactive)
    start_time, window_end : Unix seconds (NaN when unknown)
    rejected, dropped_late : rows since ``start_time``;  shed : ``observe`` requests shed since then
    spool : ``(write errors, coalesced, last written Unix time)`` of a monitor publishing to a spool
    segment_labels : ``(segment column, label name)`` of a segmented monitor's ``segment_by``
    segment_rules : ``(rule, severity, selected keys or ("*",))`` of every tier of rules with a
        segment selector (exported per segment of the latest report, 0 when inactive)
    """

    report: Optional[WindowReport]
    alerts: Sequence[Alert] = ()
    totals: Any = None
    rules: Tuple[Tuple[str, str], ...] = ()
    start_time: float = math.nan
    window_end: float = math.nan
    rejected: int = 0
    dropped_late: int = 0
    shed: int = 0
    spool: Optional[Tuple[int, int, float]] = None
    segment_labels: Tuple[Tuple[str, str], ...] = ()
    segment_rules: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = ()


Source = Callable[[], Union[Exposition, Tuple[Optional[WindowReport], Sequence[Alert]]]]


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


#: The counters (and the reference gauges they are compared with) of the whole and of each segment:
#: (type, name, help, labels).  A segment's are ``fastdrift_segment_<name without fastdrift_>``.
_COUNTED = (
    ("counter", "fastdrift_feature_bin_rows", "Rows per reference bin since the monitor started",
     ["feature", "role", "bin"]),
    ("counter", "fastdrift_feature_missing", "Null or NaN values since the monitor started", ["feature", "role"]),
    ("gauge", "fastdrift_feature_reference_share", "Share of the reference's non-missing values in the bin",
     ["feature", "role", "bin"]),
    ("gauge", "fastdrift_feature_reference_missing_ratio", "Null or NaN share in the reference", ["feature", "role"]),
    ("gauge", "fastdrift_feature_reference_rows", "Non-missing values in the reference", ["feature", "role"]),
    ("histogram", "fastdrift_latency_seconds", "Serving latency (bucket bounds 2^(k/8) seconds)", []),
    ("counter", "fastdrift_rows", "Rows counted since the monitor started", []),
    ("counter", "fastdrift_errors", "Rows flagged as failed since the monitor started", []),
    ("counter", "fastdrift_error_flag_rows", "Rows with a non-null error flag since the monitor started", []),
    ("summary", "fastdrift_kpi", "KPI values since the monitor started (count of finite values and their sum)",
     ["kpi"]),
    ("counter", "fastdrift_kpi_squares", "Sum of the squared KPI values since the monitor started", ["kpi"]),
    ("gauge", "fastdrift_kpi_reference_mean", "KPI mean in the reference", ["kpi"]),
)
_KINDS = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily,
          "summary": SummaryMetricFamily}


def _counted(extra: Sequence[str] = (), name=lambda n: n):
    return [_KINDS[kind](name(n), doc, labels=own + list(extra)) for kind, n, doc, own in _COUNTED]


def _families():
    """Empty families, in exposition order (name -> family)."""
    g, c = GaugeMetricFamily, CounterMetricFamily
    fams = (
        *_counted(),
        c("fastdrift_rejected_rows", "Rows rejected as bad input since the monitor started"),
        c("fastdrift_dropped_late_rows", "Late rows dropped since the monitor started"),
        c("fastdrift_latency_invalid", "Negative or non-finite latencies since the monitor started"),
        c("fastdrift_observe_shed", "observe() requests shed (not counted) because the monitor fell behind"),
        c("fastdrift_spool_write_errors", "Pane files the spool failed to take (each retried at the next flush)"),
        c("fastdrift_spool_coalesced", "Queued pane versions replaced by a newer one before the spool took them"),
        g("fastdrift_spool_written_timestamp_seconds", "When the spool last took a pane file, Unix time"),
        g("fastdrift_start_time_seconds", "When the counters started, Unix time"),
        g("fastdrift_window_end_timestamp_seconds", "End of the last closed window, Unix time"),
        g("fastdrift_alert_state", "Alert rule tiers: 0 inactive, 1 pending, 2 firing", labels=["rule", "severity"]),
        g("fastdrift_feature_drift", "Feature drift vs the reference, latest window", labels=["feature", "metric"]),
        g("fastdrift_feature_drift_pvalue",
          "Sample-size-aware p-value of the feature drift (G-test / chi-square), latest window",
          labels=["feature", "metric"]),
        g("fastdrift_feature_missing_ratio", "Share of null or NaN values, latest window", labels=["feature"]),
        g("fastdrift_prediction_drift", "Prediction drift vs the reference, latest window",
          labels=["feature", "metric"]),
        g("fastdrift_window_latency_seconds", "Serving latency quantiles, latest window", labels=["quantile"]),
        g("fastdrift_error_ratio", "Failed / flagged requests, latest window"),
        g("fastdrift_kpi_delta", "KPI mean minus reference mean, latest window", labels=["kpi"]),
        g("fastdrift_schema_changes", "Schema changes against the reference, latest window"),
        g("fastdrift_window_rows", "Rows in the latest window"),
        g("fastdrift_window_throughput_rows_per_second", "Rows per second of the latest window's span"),
        g("fastdrift_window_rejected_rows", "Rows rejected by validation in the latest window"),
        g("fastdrift_window_closed", "1 when the exported window is closed"),
        g("fastdrift_window_freshness_seconds", "Lag from event time to arrival, quantiles of the latest window",
          labels=["quantile"]),
        g("fastdrift_window_freshness_max_seconds", "Largest lag from event time to arrival, latest window"),
        g("fastdrift_window_freshness_over_sla_rows", "Rows whose lag exceeded the freshness SLA, latest window"),
        g("fastdrift_shadow_agreement_ratio", "Share of rows where the challenger agrees with the champion"),
        g("fastdrift_shadow_rows", "Rows with both the champion's and the challenger's prediction, latest window"),
        g("fastdrift_shadow_prediction_drift", "Challenger vs champion prediction distribution, latest window",
          labels=["metric"]),
        g("fastdrift_shadow_score_diff", "Quantiles of challenger minus champion score, latest window",
          labels=["quantile"]),
        g("fastdrift_shadow_performance", "Performance on the same labelled rows, latest window",
          labels=["model", "metric"]),
        c("fastdrift_shadow_paired_rows", "Rows with both the champion's and the challenger's prediction since "
          "the monitor started"),
        c("fastdrift_shadow_agreed_rows", "Paired rows where the challenger agrees with the champion since the "
          "monitor started"),
        c("fastdrift_shadow_bin_rows", "Paired rows per reference bin of each model's prediction since the "
          "monitor started", labels=["feature", "model", "bin"]),
        HistogramMetricFamily("fastdrift_freshness_lag_seconds",
                              "Lag from event time to arrival (bucket bounds 2^(k/4) seconds)"),
        c("fastdrift_freshness_over_sla_rows", "Rows whose lag exceeded the freshness SLA since the monitor started"),
        g("fastdrift_freshness_sla_seconds", "The freshness SLA"),
    )
    return {f.name: f for f in fams}


def _sample_names(fam) -> Tuple[str, ...]:
    if fam.type == "counter":
        return (fam.name + "_total",)
    if fam.type == "histogram":
        return tuple(fam.name + s for s in ("_bucket", "_sum", "_count"))
    if fam.type == "summary":
        return tuple(fam.name + s for s in ("_sum", "_count"))
    return (fam.name,)


#: The latest-window gauges that also exist per segment, as ``fastdrift_segment_<name without fastdrift_>``.
#: Their own labels (the segment labels follow).
_PER_SEGMENT = {"fastdrift_alert_state": ["rule", "severity"], "fastdrift_feature_drift": ["feature", "metric"],
                "fastdrift_feature_drift_pvalue": ["feature", "metric"], "fastdrift_feature_missing_ratio": ["feature"],
                "fastdrift_prediction_drift": ["feature", "metric"], "fastdrift_window_latency_seconds": ["quantile"],
                "fastdrift_error_ratio": [], "fastdrift_kpi_delta": ["kpi"], "fastdrift_window_rows": [],
                "fastdrift_window_throughput_rows_per_second": []}


def _segment_name(name: str) -> str:
    return "fastdrift_segment_" + name[len("fastdrift_"):]


def _segment_families(labels: Sequence[str]):
    """Empty per-segment families (name of the whole's family -> family) with the segment labels:
    the latest-window gauges of :data:`_PER_SEGMENT`, the counters of :data:`_COUNTED` and
    ``fastdrift_segment_start_time_seconds``."""
    whole = _families()
    out = {}
    for name, own in _PER_SEGMENT.items():
        out[name] = GaugeMetricFamily(_segment_name(name), whole[name].documentation + " (per segment)",
                                      labels=own + ["segment", *labels])
    for (_, name, _, _), fam in zip(_COUNTED, _counted(["segment", *labels], _segment_name)):
        fam.documentation += " (per segment)"
        out[name] = fam
    out["fastdrift_start_time_seconds"] = GaugeMetricFamily(
        "fastdrift_segment_start_time_seconds", "When the counters started, Unix time (per segment)",
        labels=["segment", *labels])
    return out


#: Every sample name the collector can emit (dashboards and generated rules use only these).
METRIC_NAMES = frozenset(n for f in _families().values() for n in _sample_names(f))
#: The per-segment sample names (a segmented monitor's; see the module docstring).
SEGMENT_METRIC_NAMES = frozenset(n for f in _segment_families(()).values() for n in _sample_names(f))
METRIC_NAMES = METRIC_NAMES | SEGMENT_METRIC_NAMES


class MonitorCollector:
    """A prometheus_client custom collector over the monitor's state.

    Parameters
    ----------
    source : callable
        ``source() -> Exposition`` or ``(latest_report or None, active_alerts)``; called once per
        scrape, from the HTTP server's thread, so it must be thread-safe.
    """

    def __init__(self, source: Source):
        if not callable(source):
            raise InvalidInputError(f"MonitorCollector needs a callable source, got {source!r}")
        self.source = source

    def describe(self) -> list:
        """Empty families with the fixed names, so registering never calls ``source``."""
        return list(_families().values())

    def collect(self) -> Iterator[Any]:
        """Yield one family per metric name (the prometheus_client protocol)."""
        x = self.source()
        if not isinstance(x, Exposition):
            x = Exposition(*x)
        f = _families()
        if x.totals is not None:
            _totals(f, x.totals)
            f["fastdrift_rejected_rows"].add_metric([], float(x.rejected))
            f["fastdrift_dropped_late_rows"].add_metric([], float(x.dropped_late))
            f["fastdrift_observe_shed"].add_metric([], float(x.shed))
        if x.spool is not None:
            errors, coalesced, written = x.spool
            f["fastdrift_spool_write_errors"].add_metric([], float(errors))
            f["fastdrift_spool_coalesced"].add_metric([], float(coalesced))
            if _finite(written):
                f["fastdrift_spool_written_timestamp_seconds"].add_metric([], float(written))
        for name, v in (("fastdrift_start_time_seconds", x.start_time),
                        ("fastdrift_window_end_timestamp_seconds", x.window_end)):
            if _finite(v):
                f[name].add_metric([], float(v))
        report = x.report
        if report is not None:
            _gauges(f, report)
        state = dict.fromkeys(x.rules, 0.0)
        for a in x.alerts:
            v = ALERT_STATE_VALUES.get(a.state)
            if v is not None and not getattr(a, "segment", ""):  # resolved alerts are not active
                key = (a.rule, a.severity)
                state[key] = max(state.get(key, 0.0), v)  # one sample per label set
        for (rule, sev), v in sorted(state.items()):
            f["fastdrift_alert_state"].add_metric([rule, sev], v)
        yield from f.values()
        if x.segment_labels:
            yield from _segments(x, report).values()


def _segments(x: Exposition, report: Optional[WindowReport]):
    """The per-segment families: the latest report's segments and the segment rules' alert states."""
    cols = [c for c, _ in x.segment_labels]
    fams = _segment_families([label for _, label in x.segment_labels])

    def values(key: str):
        vals = parse_segment_key(key)
        return [key] + [vals.get(c, "") for c in cols]

    segs = dict(report.segments) if report is not None else {}
    for key, seg in segs.items():
        _gauges(fams, seg, extra=values(key))
    parts = x.totals.segments if x.totals is not None and x.totals.segments is not None else {}
    for key, part in sorted(parts.items()):
        _totals(fams, part, extra=values(key))
        if _finite(x.start_time):
            fams["fastdrift_start_time_seconds"].add_metric(values(key), float(x.start_time))
    state = {(rule, key, sev): 0.0 for rule, sev, sel in x.segment_rules for key in segs
             if "*" in sel or key in sel}
    for a in x.alerts:
        v = ALERT_STATE_VALUES.get(a.state)
        seg = getattr(a, "segment", "")
        if v is not None and seg:
            k = (a.rule, seg, a.severity)
            state[k] = max(state.get(k, 0.0), v)
    for (rule, key, sev), v in sorted(state.items()):
        fams["fastdrift_alert_state"].add_metric([rule, sev] + values(key), v)
    return fams


def _buckets(counts, edges):
    cum = counts.cumsum().tolist()
    out = [(floatToGoString(e), float(n)) for e, n in zip(edges.tolist(), cum)]
    out.append(("+Inf", float(cum[-1])))
    return out


def _totals(f, t, extra: Sequence[str] = ()) -> None:
    """The counters of ``t`` (a :class:`~fastdrift.monitor.signals.Totals`) into the families ``f``
    (a segment's: ``extra`` label values after each family's own)."""
    e = list(extra)
    bins, shares = f["fastdrift_feature_bin_rows"], f["fastdrift_feature_reference_share"]
    for name, role, labels, share, ref_missing, ref_rows in t.columns:
        for label, c, p in zip(labels, t.bins[name].tolist(), share.tolist()):
            bins.add_metric([name, role, label] + e, float(c))
            shares.add_metric([name, role, label] + e, p)
        f["fastdrift_feature_missing"].add_metric([name, role] + e, float(t.missing[name]))
        f["fastdrift_feature_reference_rows"].add_metric([name, role] + e, float(ref_rows))
        if _finite(ref_missing):
            f["fastdrift_feature_reference_missing_ratio"].add_metric([name, role] + e, ref_missing)
    if t.latency is not None:
        f["fastdrift_latency_seconds"].add_metric(e, _buckets(t.latency, LATENCY_EDGES_SECONDS),
                                                  max(t.latency_sum_ms, 0.0) / 1000.0)
    for name, v in (("fastdrift_rows", t.rows), ("fastdrift_errors", t.errors),
                    ("fastdrift_error_flag_rows", t.error_rows)):
        f[name].add_metric(e, float(v))
    for name, (n, total, squares) in sorted(t.kpis.items()):
        f["fastdrift_kpi"].add_metric([name] + e, float(n), float(total))
        f["fastdrift_kpi_squares"].add_metric([name] + e, max(float(squares), 0.0))
        if _finite(t.kpi_ref.get(name)):
            f["fastdrift_kpi_reference_mean"].add_metric([name] + e, t.kpi_ref[name])
    if e:
        return
    f["fastdrift_latency_invalid"].add_metric([], float(t.latency_invalid))
    sh, fr = t.shadow, t.freshness
    if sh is not None:
        f["fastdrift_shadow_paired_rows"].add_metric([], float(sh["rows"]))
        f["fastdrift_shadow_agreed_rows"].add_metric([], float(sh["agree"]))
        pred = next(c for c in t.columns if c[1] == "prediction")
        for model in ("champion", "challenger"):
            for label, c in zip(pred[2], sh[model].tolist()):
                f["fastdrift_shadow_bin_rows"].add_metric([pred[0], model, label], float(c))
    if fr is not None:
        f["fastdrift_freshness_lag_seconds"].add_metric([], _buckets(fr["buckets"], FRESHNESS_EDGES_SECONDS),
                                                        float(fr["sum"]))
        if fr["sla"] is not None:
            f["fastdrift_freshness_over_sla_rows"].add_metric([], float(fr["over"]))
            f["fastdrift_freshness_sla_seconds"].add_metric([], float(fr["sla"]))


def _gauges(f, report: WindowReport, extra: Sequence[str] = ()) -> None:
    """The latest-window gauges of ``report`` into the families ``f`` (a segment's: ``extra``
    label values after each family's own, and only the families :data:`_PER_SEGMENT` names)."""
    e = list(extra)
    for name, s in sorted(report.features.items()):
        if _finite(s.value):
            f["fastdrift_feature_drift"].add_metric([name, s.metric] + e, float(s.value))
        if _finite(s.pvalue):
            f["fastdrift_feature_drift_pvalue"].add_metric([name, s.metric] + e, float(s.pvalue))
        if _finite(s.missing_cur):
            f["fastdrift_feature_missing_ratio"].add_metric([name] + e, float(s.missing_cur))
    p = report.prediction
    if p is not None and _finite(p.value):
        f["fastdrift_prediction_drift"].add_metric([p.column, p.metric] + e, float(p.value))
    lat = report.latency
    if lat is not None and lat.count > 0:
        for q, v in (("0.5", lat.p50), ("0.95", lat.p95), ("0.99", lat.p99)):
            if _finite(v):
                f["fastdrift_window_latency_seconds"].add_metric([q] + e, float(v) / 1000.0)
    if _finite(report.error_rate):
        f["fastdrift_error_ratio"].add_metric(e, float(report.error_rate))
    for name, k in sorted(report.kpis.items()):
        if _finite(k.delta):
            f["fastdrift_kpi_delta"].add_metric([name] + e, float(k.delta))
    f["fastdrift_window_rows"].add_metric(e, float(report.rows))
    if _finite(report.throughput):
        f["fastdrift_window_throughput_rows_per_second"].add_metric(e, float(report.throughput))
    if e:
        return
    f["fastdrift_schema_changes"].add_metric([], float(len(report.schema_changes)))
    f["fastdrift_window_rejected_rows"].add_metric([], float(report.rejected))
    f["fastdrift_window_closed"].add_metric([], 1.0 if report.closed else 0.0)
    _shadow_gauges(f, report)


def _shadow_gauges(f, report: WindowReport) -> None:
    """The freshness and shadow gauges of the latest window (when the monitor has them)."""
    fr = getattr(report, "freshness", None)
    if fr is not None and fr.count > 0:
        for q, v in (("0.5", fr.p50), ("0.95", fr.p95), ("0.99", fr.p99)):
            if _finite(v):
                f["fastdrift_window_freshness_seconds"].add_metric([q], float(v))
        if _finite(fr.max):
            f["fastdrift_window_freshness_max_seconds"].add_metric([], float(fr.max))
        if _finite(fr.sla):
            f["fastdrift_window_freshness_over_sla_rows"].add_metric([], float(fr.over_sla))
    sh = getattr(report, "shadow", None)
    if sh is None:
        return
    f["fastdrift_shadow_rows"].add_metric([], float(sh.rows))
    if _finite(sh.agreement):
        f["fastdrift_shadow_agreement_ratio"].add_metric([], float(sh.agreement))
    for m in ("psi", "js"):
        if _finite(getattr(sh, m)):
            f["fastdrift_shadow_prediction_drift"].add_metric([m], float(getattr(sh, m)))
    for name, q in (("p01", "0.01"), ("p05", "0.05"), ("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
        v = sh.score_diff.get(name)
        if v is not None and _finite(v):
            f["fastdrift_shadow_score_diff"].add_metric([q], float(v))
    for model, perf in (("champion", sh.performance_champion), ("challenger", sh.performance)):
        for m, v in sorted(perf.items()):
            if _finite(v):
                f["fastdrift_shadow_performance"].add_metric([model, m], float(v))


def serve(collector: MonitorCollector, port: int = 0, addr: str = "127.0.0.1"):
    """Serve ``collector`` at ``http://addr:port/metrics`` on a private registry.

    Parameters
    ----------
    collector : MonitorCollector
    port : int, default 0
        0 picks a free port; read it back from ``server.server_port``.
    addr : str, default "127.0.0.1"
        Loopback by default: exposing on all interfaces (``"0.0.0.0"``) is
        an explicit decision.

    Returns
    -------
    (server, thread)
        The WSGI server and its daemon thread; stop with
        ``server.shutdown(); server.server_close(); thread.join()``.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInputError(f"port must be an int in [0, 65535], got {port!r}")
    # a private registry: never the process-global one, so two monitors (or
    # tests) in one process cannot collide on metric names
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return start_http_server(port, addr=addr, registry=registry)
