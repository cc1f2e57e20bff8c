"""Prometheus exposition of the latest window and the active alerts.

:class:`MonitorCollector` implements prometheus_client's custom-collector
protocol: it pulls ``(latest_report, active_alerts)`` from a callable at
scrape time, so the numbers are always those of the last window the monitor
produced and nothing is copied into global metric objects. :func:`serve`
exposes it over HTTP on a private registry, bound to 127.0.0.1 unless told
otherwise (drift numbers and feature names are internal information).

Metrics (gauges, and one counter; ``_ms`` / ``_ratio`` / ``_total`` follow Prometheus naming):

==========================================  ==============================  ===========================================
name                                        labels                          value
==========================================  ==============================  ===========================================
``fastdrift_feature_drift``                 ``feature``, ``metric``         drift of the feature vs the reference
``fastdrift_feature_drift_pvalue``          ``feature``, ``metric``         p-value of the same bins (when computed)
``fastdrift_feature_missing_ratio``         ``feature``                     null+NaN share in the window
``fastdrift_prediction_drift``              ``column``, ``metric``          drift of the prediction
``fastdrift_latency_ms``                    ``quantile``                    serving latency quantiles (0.5/0.95/0.99)
``fastdrift_error_ratio``                                                   failed / total requests
``fastdrift_kpi_delta``                     ``kpi``                         KPI mean minus reference mean
``fastdrift_schema_changes``                                                schema changes seen in the window
``fastdrift_window_rows``                                                   rows in the window
``fastdrift_window_rejected_rows``                                          rows rejected by validation
``fastdrift_window_closed``                                                 1 if the report is of a closed window
``fastdrift_alert_state``                   ``rule``, ``severity``          1 pending, 2 firing (only active alerts)
``fastdrift_observe_shed_total``                                            counter: ``observe`` requests shed under
                                                                            overload (when the collector has ``shed``)
==========================================  ==============================  ===========================================

Non-finite values (a NaN p-value that was not computed, an error rate with
no requests) are left out rather than exported as NaN, so ``absent()``
alerts and dashboards see "no data" instead of a number.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Optional, Sequence, Tuple

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import CollectorRegistry
    from prometheus_client import start_http_server
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "fastdrift.exporters.prometheus needs prometheus_client: pip install 'fastdrift[prometheus]'"
    ) from exc

from ..errors import InvalidInputError
from ..records import Alert, WindowReport

__all__ = ["MonitorCollector", "serve", "ALERT_STATE_VALUES"]

#: Value of ``fastdrift_alert_state`` per alert state.
ALERT_STATE_VALUES = {"pending": 1.0, "firing": 2.0}

Source = Callable[[], Tuple[Optional[WindowReport], Sequence[Alert]]]


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


class MonitorCollector:
    """A prometheus_client custom collector over the monitor's latest state.

    Parameters
    ----------
    source : callable
        ``source() -> (latest_report or None, active_alerts)``; called once
        per scrape, from the HTTP server's thread, so it must be thread-safe
        (e.g. return the monitor's last published, immutable report).
    shed : callable, optional
        ``shed() -> int``: requests the monitor's ``observe`` shed so far (a monotonic count),
        exported as the counter ``fastdrift_observe_shed_total``.
    """

    def __init__(self, source: Source, shed: Optional[Callable[[], int]] = None):
        if not callable(source):
            raise InvalidInputError(f"MonitorCollector needs a callable source, got {source!r}")
        if shed is not None and not callable(shed):
            raise InvalidInputError(f"MonitorCollector shed must be callable, got {shed!r}")
        self.source = source
        self.shed = shed

    def describe(self) -> list:
        """Empty families with the fixed names, so registering never calls ``source``."""
        return [*self._families(), *([self._shed_family()] if self.shed is not None else [])]

    @staticmethod
    def _shed_family():
        return CounterMetricFamily("fastdrift_observe_shed",
                                   "observe() requests shed (not counted) because the monitor fell behind")

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily("fastdrift_feature_drift", "Feature drift vs the reference window",
                              labels=["feature", "metric"]),
            GaugeMetricFamily("fastdrift_feature_drift_pvalue",
                              "Sample-size-aware p-value of the feature drift (G-test / chi-square)",
                              labels=["feature", "metric"]),
            GaugeMetricFamily("fastdrift_feature_missing_ratio", "Share of null or NaN values",
                              labels=["feature"]),
            GaugeMetricFamily("fastdrift_prediction_drift", "Prediction drift vs the reference window",
                              labels=["column", "metric"]),
            GaugeMetricFamily("fastdrift_latency_ms", "Serving latency quantiles in milliseconds",
                              labels=["quantile"]),
            GaugeMetricFamily("fastdrift_error_ratio", "Failed requests / requests in the window"),
            GaugeMetricFamily("fastdrift_kpi_delta", "KPI mean minus reference mean", labels=["kpi"]),
            GaugeMetricFamily("fastdrift_schema_changes", "Schema changes against the reference"),
            GaugeMetricFamily("fastdrift_window_rows", "Rows in the window"),
            GaugeMetricFamily("fastdrift_window_rejected_rows", "Rows rejected by validation in the window"),
            GaugeMetricFamily("fastdrift_window_closed", "1 when the exported window is closed"),
            GaugeMetricFamily("fastdrift_alert_state", "Active alerts: 1 pending, 2 firing",
                              labels=["rule", "severity"]),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield one family per metric name (the prometheus_client protocol)."""
        report, alerts = self.source()
        (drift, pvalue, missing, pred, latency, error, kpi, schema, rows, rejected, closed,
         alert_state) = self._families()
        if report is not None:
            for name, s in sorted(report.features.items()):
                if _finite(s.value):
                    drift.add_metric([name, s.metric], float(s.value))
                if _finite(s.pvalue):
                    pvalue.add_metric([name, s.metric], float(s.pvalue))
                if _finite(s.missing_cur):
                    missing.add_metric([name], float(s.missing_cur))
            p = report.prediction
            if p is not None and _finite(p.value):
                pred.add_metric([p.column, p.metric], float(p.value))
            lat = report.latency
            if lat is not None and lat.count > 0:
                for q, v in (("0.5", lat.p50), ("0.95", lat.p95), ("0.99", lat.p99)):
                    if _finite(v):
                        latency.add_metric([q], float(v))
            if _finite(report.error_rate):
                error.add_metric([], float(report.error_rate))
            for name, k in sorted(report.kpis.items()):
                if _finite(k.delta):
                    kpi.add_metric([name], float(k.delta))
            schema.add_metric([], float(len(report.schema_changes)))
            rows.add_metric([], float(report.rows))
            rejected.add_metric([], float(report.rejected))
            closed.add_metric([], 1.0 if report.closed else 0.0)
        seen = {}
        for a in alerts:
            v = ALERT_STATE_VALUES.get(a.state)
            if v is None:
                continue  # resolved alerts are not active
            key = (a.rule, a.severity)
            # one sample per label set (duplicates are invalid exposition)
            seen[key] = max(seen.get(key, 0.0), v)
        for (rule, sev), v in sorted(seen.items()):
            alert_state.add_metric([rule, sev], v)
        yield from (drift, pvalue, missing, pred, latency, error, kpi, schema, rows, rejected, closed,
                    alert_state)
        if self.shed is not None:
            shed = self._shed_family()
            shed.add_metric([], float(self.shed()))
            yield shed


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
