"""The public Monitor: rules=[] path, checkpoints (save -> load -> continue == uninterrupted, golden
files of every layout, default rules), atomic writes, redaction end to end, lazy import."""
import dataclasses
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.alerts import AlertEvaluator, default_rules, load_rules
from fastdrift.errors import CorruptStateError, InvalidInputError
from fastdrift.records import DriftSignal, WindowReport, from_json, frozen_mapping, to_json, to_jsonable
from fastdrift import codec

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden"

FEATS = ["a", "b", "c", "seg"]


def table(n, seed, shift=0.0, t0=0.0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "a": rng.normal(shift, 1, n), "b": rng.exponential(1, n), "c": rng.integers(0, 5, n).astype(float),
        "seg": pa.array(rng.choice(["x", "y", "z"], n)),
        "score": rng.random(n), "lat": rng.exponential(15, n), "err": rng.random(n) < 0.03,
        "rid": pa.array([f"req-{seed}-{i}" for i in range(n)]),
        "email": pa.array([f"person{i}@example.com" for i in range(n)]),
        "ts": t0 + np.sort(rng.uniform(0, n / 100, n)),
    })


def make(**kw):
    args = dict(features=FEATS, prediction="score", latency="lat", error="err", request_id="rid",
                event_time="ts", window={"by": "time", "size": 30, "slide": 10, "allowed_lateness": 2},
                rules=[], evidence={"rate": 0.05, "max_rows": 10, "hash": ["rid"], "drop": ["email"]})
    args.update(kw)
    return fastdrift.Monitor(table(3000, 0), **args)


def feed(m, part, seed0=100):
    """Deterministic traffic: batches plus per-request observations, some late, some bad."""
    for i in part:
        t = table(400, seed0 + i, shift=0.05 * i, t0=4.0 * i)
        m.update(t)
        rows = t.slice(0, 30).to_pylist()
        for r in rows:
            m.observe({k: r[k] for k in FEATS}, r["score"], latency_ms=r["lat"], error=r["err"],
                      request_id=r["rid"], ts=r["ts"] - 3.0)
        m.observe({"a": "oops", "b": 1.0, "c": 1.0, "seg": "x"}, 0.5, ts=4.0 * i)


def test_monitor_without_rules():
    m = make()
    feed(m, range(6))
    reps = m.reports()
    assert reps and all(r.closed and r.alerts == () for r in reps)
    assert m.alerts() == () and m.promotion_allowed() is True
    snap = m.snapshot()
    assert not snap.closed and snap.alerts == ()
    assert m.rejected == 6
    total = sum(r.rows for r in reps)
    assert total > 0 and set(reps[-1].features) == set(FEATS)


def test_checkpoint_resume_equals_uninterrupted_batches(tmp_path):
    a = make()
    for i in range(12):
        a.update(table(400, 100 + i, shift=0.05 * i, t0=4.0 * i))
    b = make()
    for i in range(5):
        b.update(table(400, 100 + i, shift=0.05 * i, t0=4.0 * i))
    b.save(tmp_path / "m.ckpt")
    b2 = fastdrift.Monitor.load(tmp_path / "m.ckpt")
    for i in range(5, 12):
        b2.update(table(400, 100 + i, shift=0.05 * i, t0=4.0 * i))
    assert len(a.reports()) >= 3
    assert b2.reports() == a.reports()
    assert b2.snapshot() == a.snapshot()
    assert b2.to_bytes() == a.to_bytes()


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    # save() flushes the observe() buffer first (buffered raw requests hold unredacted values and are
    # never written to disk), so the uninterrupted run flushes at the same point: a flush is the only
    # side effect of a save on monitoring results (lateness of buffered events is judged at flush).
    a = make()
    feed(a, range(5))
    a.flush()
    feed(a, range(5, 12))
    b = make()
    feed(b, range(5))
    path = tmp_path / "mon.ckpt"
    b.save(path)
    b2 = fastdrift.Monitor.load(path)
    feed(b2, range(5, 12))
    assert b2.reports() == a.reports()
    assert b2.snapshot() == a.snapshot()
    assert b2.rejected == a.rejected
    # and a second round trip of the resumed monitor is byte-identical to the uninterrupted one's
    assert b2.to_bytes() == a.to_bytes()


def test_save_is_atomic_and_load_validates(tmp_path):
    m = make()
    feed(m, range(2))
    p = tmp_path / "m.ckpt"
    m.save(p)
    first = p.read_bytes()
    feed(m, range(2, 4))
    m.save(p)  # replaces in place
    assert p.read_bytes() != first
    assert [f for f in os.listdir(tmp_path) if f != "m.ckpt"] == []  # no temp file left behind
    bad = bytearray(p.read_bytes())
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "bad.ckpt").write_bytes(bytes(bad))
    with pytest.raises(CorruptStateError):
        fastdrift.Monitor.load(tmp_path / "bad.ckpt")
    with pytest.raises(InvalidInputError, match="nope.ckpt"):
        fastdrift.Monitor.load(tmp_path / "nope.ckpt")


def test_redacted_columns_never_stored(tmp_path):
    t = table(3000, 5, t0=0)
    m2 = fastdrift.Monitor(t, features=FEATS, prediction="score", request_id="rid", event_time="ts",
                           window={"by": "time", "size": 10}, rules=[],
                           evidence={"rate": 0.2, "max_rows": 20, "hash": ["rid"], "drop": ["seg"]})
    m2.update(t)
    reps = m2.reports()
    rows = [row for r in reps for row in r.evidence]
    assert rows and all("seg" not in row for row in rows)
    assert all(not row["rid"].startswith("req-") for row in rows)
    p = tmp_path / "m.ckpt"
    m2.save(p)
    blob = p.read_bytes()
    assert b"req-5-" not in blob  # request ids appear nowhere in the checkpoint, only their hashes
    assert b"person" not in blob   # nor columns that are not monitored


def test_window_and_config_arguments(tmp_path):
    cfg = tmp_path / "m.yaml"
    cfg.write_text("prediction: score\nwindow: {by: rows, size: 500}\nstrict: true\n")
    m = fastdrift.Monitor(table(2000, 1), features=["a", "b"], config=cfg, rules=[])
    m.update(table(1200, 2))
    assert [r.rows for r in m.reports()] == [500, 500]
    with pytest.raises(fastdrift.SchemaError, match="'b'"):
        m.update(table(10, 3).drop_columns(["b"]))
    m3 = fastdrift.Monitor(table(2000, 1), features=["a"], window=250, rules=[])
    m3.update(table(600, 2))
    assert len(m3.reports()) == 2


def test_default_rules_are_derived_from_the_config_and_reload_by_themselves():
    m = make(rules=None)
    assert m.evaluator is not None
    assert {r.name for r in m.evaluator.rules} == {r.name for r in default_rules(FEATS, "score", True, True)}
    for i in range(6):
        m.update(table(400, 300 + i, shift=3.0, t0=4.0 * i))
    assert any(a.state == "firing" for a in m.alerts())
    data = m.to_bytes()
    m2 = fastdrift.Monitor.from_bytes(data)  # no rules= needed
    assert m2.alerts() == m.alerts() and m2.reports() == m.reports()
    assert m2.to_bytes() == data


def test_checkpoint_is_one_envelope_with_each_report_once():
    m = make(rules=default_rules(FEATS, "score", True, True))
    feed(m, range(6))
    data = m.to_bytes()
    kind, _, _ = codec.decode(data)
    assert kind == codec.Kind.MONITOR
    reps = m.reports()
    assert len(reps) >= 2 and data.count(b'{"@": "WindowReport"') == len(reps)
    assert fastdrift.Monitor.from_bytes(data).to_bytes() == data  # Rule objects are stored as data
    assert fastdrift.Monitor.from_bytes(data, rules=default_rules(FEATS, "score", True, True)).to_bytes() == data


def _one_per_rule(alerts):
    """The alerts of a report / an active list as shown: per rule, firing before pending, then critical."""
    if isinstance(alerts, WindowReport):
        return dataclasses.replace(alerts, alerts=tuple(_one_per_rule(alerts.alerts)))
    best = {}
    for a in alerts:
        key = (a.state == "firing", a.severity == "critical")
        if a.rule not in best or key > best[a.rule][0]:
            best[a.rule] = (key, a)
    return tuple(a for a in alerts if best[a.rule][1] is a)


def _reference_free(rep):
    """A report's JSON without the reference latency / rate, asserted NaN first: checkpoints of
    references written before the reference kept them have none."""
    f = rep["f"]
    v = f.pop("throughput_ref")
    assert v != v  # NaN
    if f.get("latency") is not None:
        for k in ("ref_p50", "ref_p95", "ref_p99"):
            v = f["latency"]["f"].pop(k)
            assert v != v
    return rep


@pytest.mark.parametrize("layout", [1, 2])
def test_golden_checkpoints_load_to_known_contents(layout):
    # layout 1: the two-envelope CHECKPOINT; layout 2: one MONITOR envelope (tests/data/golden/make_monitor_golden.py)
    data = (GOLDEN / f"monitor_checkpoint_layout{layout}.bin").read_bytes()
    want = json.loads((GOLDEN / f"monitor_checkpoint_layout{layout}.json").read_text())
    for rep in want["reports"] + [want["snapshot"]]:  # report fields added since then take their defaults
        rep["f"].setdefault("shed", 0)
        for k in ("performance", "performance_ref", "label_delay", "label_counts"):
            rep["f"].setdefault(k, {"@m": []})
        rep["f"].setdefault("label_coverage", None)
        rep["f"].setdefault("concept", "")
        rep["f"].setdefault("shadow", None)
        rep["f"].setdefault("freshness", None)
        rep["f"].setdefault("segment", "")
        rep["f"].setdefault("segment_reference", "")
        rep["f"].setdefault("segments", {"@m": []})
        rep["f"].setdefault("comparisons", {"@m": []})
        for alert in rep["f"].get("alerts", {}).get("@t", []):
            alert["f"].setdefault("segment", "")
    rules = list(default_rules(["x", "c"], "score", True, True))
    m = fastdrift.Monitor.from_bytes(data, rules=rules)
    # they ran on the default rules of their config (as Rule objects, not stored): restored without rules=
    m0 = fastdrift.Monitor.from_bytes(data)
    assert m0.evaluator.rules == tuple(rules)
    assert codec.decode(m0.to_bytes())[2] == codec.decode(m.to_bytes())[2]  # the same state; params say how
    assert [_reference_free(r) for r in json.loads(json.dumps([to_json(r) for r in m.reports()]))] == want["reports"]
    # the first layout's alert state stored evidence rows with sorted keys: compare as mappings.
    # Both tiers of each rule were stored as firing; a rule is shown once, at its highest tier
    assert to_jsonable(m.alerts()) == to_jsonable(_one_per_rule(from_json({"@t": want["alerts"]})))
    snap = _reference_free(json.loads(json.dumps(to_json(m.snapshot()))))
    assert {k: v for k, v in snap["f"].items() if k != "alerts"} == \
        {k: v for k, v in want["snapshot"]["f"].items() if k != "alerts"}
    assert [(a.rule, a.severity, a.state) for a in m.snapshot().alerts] == \
        [(a.rule, a.severity, a.state) for a in _one_per_rule(from_json(want["snapshot"])).alerts]
    assert m.rejected == want["rejected"] == 0
    reps = m.reports()
    assert [(r.window_start, r.window_end, r.rows) for r in reps] == \
           [(0.0, 10.0, 500), (0.0, 20.0, 1000), (10.0, 30.0, 1000), (20.0, 40.0, 1000), (30.0, 50.0, 1000)]
    assert {(a.rule, a.severity, a.state) for a in m.alerts()} == {
        (r, "critical", "firing") for r in ("feature-drift", "error-rate")}
    assert m.snapshot().rows == 501 and m.promotion_allowed() is False
    again = fastdrift.Monitor.from_bytes(m.to_bytes(), rules=rules)  # written back in layout 2
    assert again.reports() == m.reports() and again.alerts() == m.alerts()


@pytest.mark.parametrize("layout", [1, 2])
def test_golden_alert_states_load_to_known_contents(layout):
    data = (GOLDEN / f"alert_state_layout{layout}.bin").read_bytes()
    want = json.loads((GOLDEN / f"alert_state_layout{layout}.json").read_text())
    rules = load_rules([dict(name="psi", signal="feature_drift", metric="psi", warning=0.1, critical=0.2,
                             owner="ml-team", runbook="https://runbooks.example/psi")])
    ev = AlertEvaluator.from_bytes(data, rules)
    for alert in want["active"]:  # alert fields added since then take their defaults
        alert.setdefault("segment", "")
    # both tiers were stored firing: the rule is one alert at its highest tier
    assert to_jsonable(ev.active()) == [want["active"][0]]
    assert ev.windows_evaluated == want["windows_evaluated"] == 2
    t1 = dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.timezone.utc)
    assert [(a.severity, a.state, a.window_start) for a in ev.active()] == [("critical", "firing", t1)]
    # the warning tier's state was restored too: below the critical threshold the rule is a warning
    t2 = t1 + dt.timedelta(minutes=1)
    drift = DriftSignal("x", "numeric", "psi", 0.15, 100, 100, 0.0, 0.0)
    out = ev.evaluate(WindowReport(t2, t2 + dt.timedelta(minutes=1), True, 100, features=frozen_mapping({"x": drift})))
    assert [(a.severity, a.previous_state, a.state) for a in out] == [("warning", "firing", "firing")]


def test_import_fastdrift_does_not_import_the_monitor():
    code = "import sys, fastdrift; print(any(k.startswith(('fastdrift.monitor', 'fastdrift.alerts')) " \
           "for k in sys.modules), 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# -- with the alert evaluator --------------------------------------------------------------------------

def test_alerts_fire_on_drift_reach_sinks_and_survive_a_checkpoint(tmp_path):
    got = []
    rules = default_rules(FEATS, "score", True, True)
    m = make(rules=rules, sinks=[got.append])
    for i in range(8):
        m.update(table(400, 200 + i, shift=3.0, t0=4.0 * i))   # a large shift of feature a
    reps = m.reports()
    attached = [a for r in reps for a in r.alerts]
    assert attached, "a 3-sigma shift must cause alert transitions"
    assert got == attached                                   # sinks see exactly the transitions
    assert any(a.top_features or a.observed for a in attached)
    p = tmp_path / "m.ckpt"
    m.save(p)
    m2 = fastdrift.Monitor.load(p, rules=rules)
    assert m2.alerts() == m.alerts()
    assert m2.promotion_allowed() == m.promotion_allowed()
    if any(a.severity == "critical" and a.state == "firing" for a in m.alerts()):
        assert m.promotion_allowed() is False


def test_snapshot_previews_alerts_without_changing_state():
    rules = default_rules(["a"], None, False, False)
    m = fastdrift.Monitor(table(500, 1), features=["a"], rules=rules)
    m.update(table(300, 2, shift=3.0))
    before = m.evaluator.to_bytes()
    assert m.snapshot().alerts == tuple(m.evaluator.preview(m.ingest.snapshot()))
    assert m.evaluator.to_bytes() == before


def test_invalid_rule_file_is_a_clear_error(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text("- name: psi_too_high\n  bogus_key: 1\n")
    with pytest.raises(fastdrift.FastDriftError, match="psi_too_high|bogus_key"):
        fastdrift.Monitor(table(500, 1), features=["a"], rules=p)


def test_monitor_serves_prometheus_metrics_on_loopback():
    import urllib.request

    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(5)
    ref = pa.table({"a": rng.normal(size=20_000), "score": rng.random(20_000)})
    m = fastdrift.Monitor(ref, features=["a"], prediction="score", window={"by": "rows", "size": 10_000})
    m.update(pa.table({"a": rng.normal(1.0, 1.0, 30_000), "score": rng.random(30_000)}))
    server, thread = m.serve_metrics()
    try:
        assert server.server_address[0] == "127.0.0.1"
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    line = next(l for l in text.splitlines() if l.startswith('fastdrift_feature_drift{') and 'feature="a"' in l)
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(m.reports()[-1].features["a"].value)
    assert 'fastdrift_alert_state{' in text  # the default rules fire on this shift


def test_windows_closed_by_observe_are_evaluated_on_the_callers_thread():
    import threading
    threads = []
    rules = default_rules(["a"], None, False, False)
    m = fastdrift.Monitor(table(2000, 1), features=["a"], window={"by": "rows", "size": 300}, rules=rules,
                          sinks=[lambda a: threads.append(threading.current_thread())],
                          config={"buffer_rows": 100, "overload": "block", "flush_interval": 0})
    rng = np.random.default_rng(3)
    for v in rng.normal(3.0, 1.0, 1000):  # full buffers are counted on the worker thread
        m.observe({"a": float(v)})
    assert not threads  # nothing evaluated yet: the request path never runs rules, nor the worker without ticks
    m.flush()
    assert len(m.reports()) == 3 and threads and set(threads) == {threading.current_thread()}


def test_checkpoint_decoder_refuses_hostile_params_and_json():
    t = pa.table({"x": np.arange(300, dtype=np.float64)})
    m = fastdrift.Monitor(t, window=100, rules=[])
    m.update(t)
    kind, params, payload = codec.decode(m.to_bytes())
    for bad_params in ('["config"]', '"x"', "[" * 100_000):
        blob = codec.encode(kind, codec.Writer().string(bad_params).getvalue(), payload)
        with pytest.raises(fastdrift.CorruptStateError):
            fastdrift.Monitor.from_bytes(blob)
