"""Prometheus exposition: scraped over HTTP from 127.0.0.1 and parsed back."""
import math
import subprocess
import sys
import urllib.request

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from fastdrift.alerts import AlertEvaluator, load_rules  # noqa: E402
from fastdrift.errors import InvalidInputError  # noqa: E402
from fastdrift.exporters.prometheus import MonitorCollector, serve  # noqa: E402
from fastdrift.records import (  # noqa: E402
    DriftSignal, KpiSignal, LatencySignal, SchemaChange, WindowReport, frozen_mapping,
)

OWN = dict(owner="team-ml", runbook="https://runbooks/x")


def _sig(col, value, pvalue, missing):
    return DriftSignal(column=col, kind="numeric", metric="psi", value=value, n_ref=1000, n_cur=500,
                       missing_ref=0.0, missing_cur=missing, pvalue=pvalue)


def _scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_scrape_latest_report_and_alert_states():
    report = WindowReport(
        window_start=0, window_end=60, closed=True, rows=500, rejected=3,
        features=frozen_mapping({"age": _sig("age", 0.31, 1e-8, 0.02), 'we"ird\\name': _sig('we"ird\\name', 0.01, math.nan, 0.5)}),
        prediction=_sig("score", 0.12, 1e-4, 0.0), latency=LatencySignal(500, 10.0, 40.0, 95.5),
        errors=5, error_rate=0.01, kpis=frozen_mapping({"ctr": KpiSignal("ctr", 0.09, 0.1)}),
        schema_changes=(SchemaChange("zip", "missing"),))
    ev = AlertEvaluator(load_rules([
        dict(name="psi", signal="feature_drift", warning=0.1, critical=0.25, **OWN),
        dict(name="pred", signal="prediction_drift", warning=0.1, **{"for": 3}, **OWN),
    ]))
    ev.evaluate(report)
    latest = {"report": None}
    collector = MonitorCollector(lambda: (latest["report"], ev.active()))
    server, thread = serve(collector)
    try:
        assert server.server_address[0] == "127.0.0.1"
        port = server.server_port
        empty = _scrape(port)   # before the first window: alert states only, no report gauges
        assert not any(name.startswith("fastdrift_feature") for name, _ in empty)
        assert empty[("fastdrift_alert_state", (("rule", "psi"), ("severity", "critical")))] == 2.0
        latest["report"] = report
        got = _scrape(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert got[("fastdrift_feature_drift", (("feature", "age"), ("metric", "psi")))] == 0.31
    assert got[("fastdrift_feature_drift", (("feature", 'we"ird\\name'), ("metric", "psi")))] == 0.01
    assert got[("fastdrift_feature_drift_pvalue", (("feature", "age"), ("metric", "psi")))] == 1e-8
    # a p-value that was not computed is absent, not NaN
    assert ("fastdrift_feature_drift_pvalue", (("feature", 'we"ird\\name'), ("metric", "psi"))) not in got
    assert got[("fastdrift_feature_missing_ratio", (("feature", 'we"ird\\name'),))] == 0.5
    assert got[("fastdrift_prediction_drift", (("feature", "score"), ("metric", "psi")))] == 0.12
    assert got[("fastdrift_window_latency_seconds", (("quantile", "0.99"),))] == pytest.approx(0.0955, rel=1e-12)
    assert got[("fastdrift_window_latency_seconds", (("quantile", "0.5"),))] == pytest.approx(0.01, rel=1e-12)
    assert got[("fastdrift_error_ratio", ())] == 0.01
    assert got[("fastdrift_kpi_delta", (("kpi", "ctr"),))] == pytest.approx(-0.01)
    assert got[("fastdrift_schema_changes", ())] == 1.0
    assert got[("fastdrift_window_rows", ())] == 500.0
    assert got[("fastdrift_window_rejected_rows", ())] == 3.0
    assert got[("fastdrift_alert_state", (("rule", "psi"), ("severity", "critical")))] == 2.0
    # the warning of a rule whose critical fires is inhibited: one series per rule
    assert ("fastdrift_alert_state", (("rule", "psi"), ("severity", "warning"))) not in got
    assert got[("fastdrift_alert_state", (("rule", "pred"), ("severity", "warning")))] == 1.0  # pending


def test_private_registries_and_bad_arguments():
    # two servers in one process: no global-registry name clash
    a = serve(MonitorCollector(lambda: (None, ())))
    b = serve(MonitorCollector(lambda: (None, ())))
    for server, thread in (a, b):
        assert _scrape(server.server_port) == {}
        server.shutdown()
        server.server_close()
        thread.join(5)
    with pytest.raises(InvalidInputError):
        MonitorCollector("not callable")
    with pytest.raises(InvalidInputError):
        serve(MonitorCollector(lambda: (None, ())), port=70000)


def test_fastdrift_and_alerts_do_not_import_prometheus_client():
    code = "import sys, fastdrift, fastdrift.alerts, fastdrift.exporters; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
