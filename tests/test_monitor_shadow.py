"""Shadow predictions and the freshness signal in the monitor.

Oracles: numpy (agreement, exact counts, quantiles of the test's own rows, PSI on the reference's
bins), scipy (Jensen-Shannon distance) and scikit-learn (performance of both models on the same
labelled rows), computed here from the rows fed."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import roc_auc_score, brier_score_loss

import fastdrift
from fastdrift import Monitor
from fastdrift.errors import CorruptStateError, InvalidInputError
from fastdrift.monitor import MonitorConfig
from fastdrift.monitor.config import config_from_dict, config_to_dict
from fastdrift.records import from_json, to_json, to_jsonable

AUC_TOL = 1e-3  # the performance sketch's ROC AUC bound at its default bins (docs/sketches.md)
Q_TOL = 0.01    # t-digest (δ=100) quantile error on 1e4 differences in [-1, 1]: measured <= 0.0019 (5 seeds)


def _reference(n=20_000, seed=99):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pa.table({"x": x, "score": 1 / (1 + np.exp(-2 * x)), "cls": rng.choice(["a", "b", "c"], n),
                     "t": np.arange(n, dtype=np.float64)})


def _rows(n, seed=0, t0=0.0, rate=100.0, shift=0.3, null_every=0, noise=0.5):
    """x, a champion score, a challenger score that moves (shift, noise) and labels drawn from x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    champ = 1 / (1 + np.exp(-2 * x))
    chal = 1 / (1 + np.exp(-2 * x - shift + rng.normal(0, noise, n)))
    y = (rng.random(n) < champ).astype(np.int64)
    t = t0 + np.arange(n) / rate
    ids = np.array([f"r{seed}-{i}" for i in range(n)])
    chal_col = pa.array(chal)
    if null_every:
        mask = np.zeros(n, bool)
        mask[::null_every] = True
        chal_col = pa.array(chal, mask=mask)
    return pa.table({"x": x, "score": champ, "shadow": chal_col, "y": y, "t": t, "rid": ids})


def _bins(edges, v):
    """Reference-bin counts of ``v``: bins are [lo, hi) between the edges, two open outer bins."""
    return np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1).astype(float)


def _psi(p, q, eps=1e-4):
    p, q = p / p.sum(), q / q.sum()
    p, q = np.where(p == 0, eps, p), np.where(q == 0, eps, q)
    return float(np.sum((q - p) * np.log(q / p)))


def _monitor(ref=None, **kw):
    kw.setdefault("rules", [])
    kw.setdefault("window", 10_000)
    return Monitor(ref if ref is not None else _reference(), features=["x"], prediction="score",
                   shadow_prediction="shadow", **kw)


# -- the window signal against numpy ------------------------------------------------------------

def test_binary_shadow_signal_matches_numpy():
    ref = _reference()
    m = _monitor(ref)
    tab = _rows(10_000, null_every=7)
    m.update(tab)
    (r,) = m.reports()
    sh = r.shadow
    c = tab["score"].to_numpy()
    s = tab["shadow"].to_numpy(zero_copy_only=False)
    ok = ~np.isnan(s)
    c, s = c[ok], s[ok]
    assert (sh.rows, sh.unpaired) == (ok.sum(), (~ok).sum())
    assert sh.mode == "threshold" and sh.column == "shadow"
    assert sh.agree == int(((c >= 0.5) == (s >= 0.5)).sum())
    assert sh.agreement == pytest.approx(np.mean((c >= 0.5) == (s >= 0.5)), rel=1e-12)
    d = s - c
    for name, q in (("p01", 0.01), ("p05", 0.05), ("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert sh.score_diff[name] == pytest.approx(np.quantile(d, q), abs=Q_TOL), name
    edges = m.ingest.ref.profile["score"].histogram.edges
    p, q = _bins(edges, c), _bins(edges, s)
    assert sh.psi == pytest.approx(_psi(p, q), rel=1e-9)
    assert sh.js == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()), rel=1e-9)
    # the shift makes the challenger's scores higher: PSI above the no-drift noise (~1e-3 here)
    assert sh.psi > 0.01 and np.median(d) > 0.02


def test_identical_challenger_agrees_everywhere():
    m = _monitor()
    tab = _rows(5_000)
    tab = tab.set_column(tab.schema.get_field_index("shadow"), "shadow", tab["score"])
    m.update(tab)
    m.flush()
    sh = m.snapshot().shadow
    assert (sh.rows, sh.agree, sh.agreement) == (5_000, 5_000, 1.0)
    assert sh.psi == 0.0 and sh.js == 0.0
    assert all(v == 0.0 for v in sh.score_diff.values())


def test_regression_tolerance_and_categorical_equality():
    rng = np.random.default_rng(3)
    ref = _reference()
    m = Monitor(ref, features=["x"], prediction="score", shadow_prediction="shadow", window=10_000, rules=[],
                shadow={"tolerance": 0.05})
    c = rng.random(4_000)
    s = c + rng.normal(0, 0.05, c.size)
    m.update(pa.table({"x": rng.normal(size=c.size), "score": c, "shadow": s}))
    sh = m.snapshot().shadow
    assert sh.mode == "tolerance" and sh.agree == int((np.abs(s - c) <= 0.05).sum())
    # class predictions: equal values agree; a null on either side is unpaired
    m = Monitor(ref, features=["x"], prediction="cls", shadow_prediction="shadow_cls", window=10_000, rules=[])
    a = rng.choice(["a", "b", "c"], 3_000)
    b = np.where(rng.random(a.size) < 0.2, rng.choice(["a", "b", "c", "z"], a.size), a)
    bn = pa.array(b, mask=rng.random(a.size) < 0.1)
    m.update(pa.table({"x": rng.normal(size=a.size), "cls": a, "shadow_cls": bn}))
    sh = m.snapshot().shadow
    ok = bn.is_valid().to_numpy(zero_copy_only=False)
    assert sh.mode == "equal" and (sh.rows, sh.unpaired) == (ok.sum(), (~ok).sum())
    assert sh.agree == int((a[ok] == b[ok]).sum())
    assert sh.score_diff == {} and math.isfinite(sh.psi)


def test_observe_path_equals_the_batch_path():
    tab = _rows(3_000, null_every=11)
    a, b = _monitor(flush_interval=0), _monitor(flush_interval=0)
    a.update(tab)
    for x, c, s in zip(tab["x"].to_pylist(), tab["score"].to_pylist(), tab["shadow"].to_pylist()):
        b.observe({"x": x}, c, shadow_prediction=s)
    sa, sb = a.snapshot().shadow, b.snapshot().shadow
    assert sa == sb
    # a caller that passes no shadow: its rows are unpaired, nothing else changes
    b.observe({"x": 0.3}, 0.4)
    b.flush()
    sb2 = b.snapshot().shadow
    assert (sb2.rows, sb2.unpaired) == (sb.rows, sb.unpaired + 1)
    a.close()
    b.close()


def test_batches_without_the_shadow_column_and_bad_types():
    m = _monitor()
    tab = _rows(1_000)
    m.update(tab.drop(["shadow"]))  # a challenger switched off: no schema change, nothing paired
    m.update(tab.set_column(tab.schema.get_field_index("shadow"), "shadow", pa.array(["?"] * 1_000)))
    snap = m.snapshot()
    assert snap.rows == 2_000 and snap.shadow.rows == 0
    assert [(c.column, c.change) for c in snap.schema_changes if c.column == "shadow"] == [("shadow", "type")]
    with pytest.raises(InvalidInputError, match="shadow"):
        _monitor(strict=True).observe({"x": 0.1}, 0.3, shadow_prediction="high")


# -- labels: both models on the same rows ---------------------------------------------------------

def _check_side_by_side(sh, c, s, y):
    assert sh.labelled == len(y)
    assert sh.performance["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=AUC_TOL)
    assert sh.performance_champion["roc_auc"] == pytest.approx(roc_auc_score(y, c), abs=AUC_TOL)
    assert sh.performance["brier"] == pytest.approx(brier_score_loss(y, s), rel=1e-9)
    assert sh.performance_champion["brier"] == pytest.approx(brier_score_loss(y, c), rel=1e-9)


def test_batch_labels_give_both_performances_on_the_same_rows():
    m = Monitor(_reference(), features=["x"], prediction="score", shadow_prediction="shadow", label="y",
                window=10_000, rules=[])
    tab = _rows(8_000, null_every=5, shift=1.0)
    m.update(tab)
    sh = m.snapshot().shadow
    s = tab["shadow"].to_numpy(zero_copy_only=False)
    ok = ~np.isnan(s)
    _check_side_by_side(sh, tab["score"].to_numpy()[ok], s[ok], tab["y"].to_numpy()[ok])


def test_delayed_labels_join_the_shadow_score_of_their_request():
    ref = _reference()
    m = Monitor(ref, features=["x"], prediction="score", shadow_prediction="shadow", label="y",
                request_id="rid", event_time="t", window={"by": "time", "size": 50}, rules=[], flush_interval=0)
    tab = _rows(6_000, shift=1.0, null_every=9)  # t in [0, 60): one closed window [0, 50), one open
    for row in tab.drop(["y"]).to_pylist():
        m.observe({"x": row["x"]}, row["score"], request_id=row["rid"], ts=row["t"],
                  shadow_prediction=row["shadow"])
    m.flush()
    (r,) = m.reports()
    assert r.shadow.labelled == 0 and r.shadow.performance == {}
    lab = tab.select(["rid", "y", "t"]).set_column(2, "t", pa.array(tab["t"].to_numpy() + 5.0))
    m.update_labels(lab.slice(0, 4_000))  # half the closed window's rows get their labels later
    m.update_labels(lab.slice(4_000))
    (r,) = m.reports()
    t = tab["t"].to_numpy()
    s = tab["shadow"].to_numpy(zero_copy_only=False)
    keep = (t < 50) & ~np.isnan(s)
    _check_side_by_side(r.shadow, tab["score"].to_numpy()[keep], s[keep], tab["y"].to_numpy()[keep])
    assert r.label_counts["labelled"] == int((t < 50).sum())
    # the store remembers shadow scores in 8 more bytes per slot
    store = m.ingest.labels
    assert store.shadow.size == store.keys.size
    # the checkpoint keeps the waiting predictions' shadow scores: a late label still joins both
    m2 = Monitor.from_bytes(m.to_bytes())
    assert m2.reports()[-1].shadow == r.shadow
    m.close()
    m2.close()


# -- merge, checkpoint, spool -------------------------------------------------------------------

def _time_monitor(**kw):
    kw.setdefault("rules", [])
    return Monitor(_reference(), features=["x"], prediction="score", shadow_prediction="shadow",
                   event_time="t", window={"by": "time", "size": 50, "allowed_lateness": 1_000},
                   freshness={"sla": 30}, clock=lambda: 2_000.0, **kw)


def _exact(m):
    m.flush()
    out = {}
    for pid, ws in m.ingest.windower.open.items():
        sh, fr = ws.shadow, ws.freshness
        out[pid] = (sh.rows, sh.unpaired, sh.agree, int(sh.diff.n), sh.champion.histogram.counts.tolist(),
                    sh.shadow.histogram.counts.tolist(), fr.count, fr.over, fr.max, int(fr.lag.n))
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 4), st.lists(st.integers(1, 80), min_size=1, max_size=6), st.randoms(use_true_random=False),
       st.integers(0, 2 ** 32 - 1))
def test_merge_of_split_stream_equals_one_monitor(n_proc, sizes, rnd, seed):
    batches = [_rows(n, seed=seed + i, t0=rnd.uniform(0, 300), null_every=rnd.choice([0, 3]))
               for i, n in enumerate(sizes)]
    one = _time_monitor()
    procs = [_time_monitor() for _ in range(n_proc)]
    for b in batches:
        one.update(b)
        procs[rnd.randrange(n_proc)].update(b)
    fleet = _time_monitor()
    order = list(range(n_proc))
    rnd.shuffle(order)
    for i in order:
        fleet.merge(procs[i])
    assert _exact(fleet) == _exact(one)
    # and through a checkpoint
    assert _exact(Monitor.from_bytes(fleet.to_bytes(), clock=lambda: 2_000.0)) == _exact(one)


def test_spool_fleet_carries_shadow_and_freshness(tmp_path):
    spool = tmp_path / "spool"
    procs = [_time_monitor(spool=spool, process_id=f"w{i}") for i in range(3)]
    one = _time_monitor()
    for j in range(9):
        b = _rows(300, seed=j, t0=20.0 * j)
        procs[j % 3].update(b)
        one.update(b)
    for p in procs:
        p.close()
    fleet = fastdrift.Fleet(spool, rules=[])
    fleet.refresh()
    assert _exact(fleet.monitor) == _exact(one)


def test_corrupt_shadow_trailer_is_refused():
    m = _time_monitor()
    m.update(_rows(500))
    ws = next(iter(m.ingest.windower.open.values()))
    data = ws.to_bytes()
    from fastdrift.monitor.signals import WindowSketch
    again = WindowSketch.from_bytes(data, m.ingest.ref, m.config)
    assert again.to_bytes() == data
    for cut in (1, 9, 40):
        with pytest.raises(CorruptStateError):
            WindowSketch.from_bytes(data[:-cut], m.ingest.ref, m.config)
    plain = Monitor(_reference(), features=["x"], prediction="score", event_time="t",
                    window={"by": "time", "size": 50}, rules=[])
    with pytest.raises(CorruptStateError, match="trailer"):
        WindowSketch.from_bytes(data, plain.ingest.ref, plain.config)


# -- freshness ------------------------------------------------------------------------------------

def test_freshness_of_batches_and_observe_with_an_injected_clock():
    now = [1_000.0]
    m = Monitor(_reference(), features=["x"], prediction="score", event_time="t",
                window={"by": "time", "size": 100, "allowed_lateness": 10_000}, rules=[], flush_interval=0,
                freshness={"sla": 120}, clock=lambda: now[0])
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(900, 1_000, 5_000))  # one window [900, 1000)
    m.update(pa.table({"x": rng.normal(size=t.size), "score": rng.random(t.size), "t": t}))
    lag = 1_000.0 - t
    # observe: the arrival is each call's time
    obs_t = rng.uniform(900, 1_000, 300)
    arrivals = []
    for v in obs_t:
        now[0] += 0.5
        arrivals.append(now[0])
        m.observe({"x": 0.2}, 0.3, ts=float(v))
    lag = np.concatenate([lag, np.array(arrivals) - obs_t])
    fr = m.snapshot().freshness
    assert fr.count == lag.size and fr.max == lag.max() and fr.over_sla == int((lag > 120).sum()) and fr.sla == 120
    # t-digest quantiles: within 1 % of the lag range (measured <= 0.12 % over 5 seeds of this data)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert getattr(fr, name) == pytest.approx(np.quantile(lag, q), abs=0.01 * (lag.max() - lag.min())), name
    m.close()


def test_freshness_and_shadow_rules_fire_with_their_gates():
    rules = [
        {"name": "stale", "owner": "o", "runbook": "r", "signal": "freshness", "quantile": 0.99,
         "critical": 300, "min_rows": 100},
        {"name": "stale-rows", "owner": "o", "runbook": "r", "signal": "freshness", "metric": "over_sla_share",
         "warning": 0.5},
        {"name": "shadow-disagrees", "owner": "o", "runbook": "r", "signal": "shadow", "metric": "agreement",
         "op": "<", "warning": 0.9, "min_rows": 500},
        {"name": "shadow-drift", "owner": "o", "runbook": "r", "signal": "shadow", "metric": "psi",
         "warning": 0.2, "min_rows": 500},
        {"name": "shadow-worse", "owner": "o", "runbook": "r", "signal": "shadow",
         "metric": "performance_delta:roc_auc", "op": "<", "warning": -0.02},
    ]
    now = [0.0]
    m = Monitor(_reference(), features=["x"], prediction="score", shadow_prediction="shadow", label="y",
                event_time="t", window={"by": "time", "size": 100}, rules=rules,
                freshness={"sla": 60}, clock=lambda: now[0])
    # window 1: fresh, a challenger close to the champion, 300 paired rows (below the gates)
    now[0] = 100.0
    m.update(_rows(300, t0=0.0, rate=3.0, shift=0.0))
    # window 2: 400 s late, a challenger that disagrees, is worse, and drifts
    now[0] = 600.0
    tab = _rows(5_000, seed=1, t0=100.0, rate=50.0, shift=3.0, noise=3.0)
    m.update(tab)
    now[0] = 700.0
    m.update(_rows(10, seed=2, t0=250.0))  # closes window 2
    r1, r2 = m.reports()
    assert r1.freshness.p99 < 300 and not r1.alerts
    fired = {a.rule: a for a in r2.alerts}
    assert set(fired) == {"stale", "stale-rows", "shadow-disagrees", "shadow-drift", "shadow-worse"}
    assert fired["stale"].observed["freshness:p99"] == pytest.approx(r2.freshness.p99)
    assert r2.shadow.performance["roc_auc"] < r2.shadow.performance_champion["roc_auc"] - 0.02
    # the same challenger on 300 rows: the sample-size gates hold the shadow rules back
    now[0] = 800.0
    m.update(_rows(300, seed=3, t0=300.0, rate=3.0, shift=3.0))
    now[0] = 900.0
    m.update(_rows(1, seed=4, t0=450.0))
    r4 = m.reports()[-1]
    assert r4.shadow.rows == 300 and r4.shadow.agreement < 0.9
    assert not any(a.rule.startswith("shadow") and a.state != "resolved" for a in r4.alerts)


def test_rule_and_config_validation():
    with pytest.raises(InvalidInputError, match="metric"):
        fastdrift.alerts.load_rules([{"name": "a", "owner": "o", "runbook": "r", "signal": "shadow", "warning": 1}])
    with pytest.raises(InvalidInputError, match="metric"):
        fastdrift.alerts.load_rules([{"name": "a", "owner": "o", "runbook": "r", "signal": "shadow",
                                      "metric": "performance_delta:nope", "warning": 1}])
    # the shadow's performance is binary: a name the binary sketch does not report never fires, so it is refused
    binary = set(fastdrift.BinaryPerformance().metrics()) - {"labelled"}
    for perf in sorted(binary):
        fastdrift.alerts.load_rules([{"name": "a", "owner": "o", "runbook": "r", "signal": "shadow",
                                      "metric": f"performance_delta:{perf}", "warning": 1}])
    for perf in ("macro_f1", "mae", "r2", "estimated_roc_auc", "precision[1]"):
        with pytest.raises(InvalidInputError, match="binary performance metric"):
            fastdrift.alerts.load_rules([{"name": "a", "owner": "o", "runbook": "r", "signal": "shadow",
                                          "metric": f"performance_delta:{perf}", "warning": 1}])
    with pytest.raises(InvalidInputError, match="quantile"):
        fastdrift.alerts.load_rules([{"name": "a", "owner": "o", "runbook": "r", "signal": "freshness",
                                      "quantile": 0.9, "warning": 1}])
    with pytest.raises(InvalidInputError, match="shadow_prediction"):
        MonitorConfig(shadow_prediction="s")
    with pytest.raises(InvalidInputError, match="freshness"):
        MonitorConfig(freshness=config_from_dict({"freshness": {"sla": 10}, "event_time": "t"}).freshness)
    with pytest.raises(InvalidInputError, match="shadow.tolerance"):
        config_from_dict({"prediction": "p", "shadow_prediction": "s", "shadow": {"agreement": "tolerance"}})
    with pytest.raises(InvalidInputError, match="freshness.sla"):
        config_from_dict({"event_time": "t", "freshness": {"sla": -1}})
    cfg = config_from_dict({"prediction": "p", "shadow_prediction": "s", "event_time": "t",
                            "shadow": {"threshold": 0.3}, "freshness": {"sla": 60}})
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg


def test_report_json_and_prometheus_carry_both():
    pytest.importorskip("prometheus_client")
    m = Monitor(_reference(), features=["x"], prediction="score", shadow_prediction="shadow", event_time="t",
                window={"by": "time", "size": 50}, freshness={"sla": 30}, clock=lambda: 100.0, rules=[])
    m.update(_rows(2_000))
    m.update(_rows(1, seed=9, t0=60.0))
    (r,) = m.reports()
    assert from_json(json.loads(json.dumps(to_json(r)))) == r
    doc = to_jsonable(r)
    assert doc["shadow"]["rows"] == r.shadow.rows and doc["freshness"]["count"] == r.freshness.count
    fams = {f.name: f for f in m.prometheus_collector().collect()}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}
    assert samples[("fastdrift_shadow_agreement_ratio", ())] == pytest.approx(r.shadow.agreement)
    assert samples[("fastdrift_shadow_rows", ())] == r.shadow.rows
    assert samples[("fastdrift_window_freshness_seconds", (("quantile", "0.99"),))] == pytest.approx(r.freshness.p99)
    assert samples[("fastdrift_window_freshness_over_sla_rows", ())] == r.freshness.over_sla
    assert samples[("fastdrift_shadow_prediction_drift", (("metric", "psi"),))] == pytest.approx(r.shadow.psi)


def test_freshness_counts_only_rows_with_an_event_time():
    # row windows fill a missing event time with the wall clock for throughput: that is not a lag of 0
    m = Monitor(_reference(), features=["x"], prediction="score", event_time="t", window=1_000, rules=[],
                freshness={"sla": 5}, clock=lambda: 100.0)
    t = pa.array([90.0, None, 99.0, float("nan"), 80.0])
    m.update(pa.table({"x": [0.1, 0.2, 0.3, 0.4, 0.5], "score": [0.1, 0.2, 0.3, 0.4, 0.5], "t": t}))
    fr = m.snapshot().freshness
    assert (fr.count, fr.max, fr.over_sla) == (3, 20.0, 2)


def test_shadow_performance_of_labels_joined_after_publishing_reaches_the_fleet(tmp_path):
    def make(**kw):
        return Monitor(_reference(), features=["x"], prediction="score", shadow_prediction="shadow", label="y",
                       request_id="rid", event_time="t", window={"by": "time", "size": 50}, rules=[], **kw)

    tab = _rows(8_000, seed=13, shift=1.0, null_every=6)  # 80 s at 100/s: windows of 50 s
    one = make()
    parts = [make(spool=tmp_path / "spool", process_id=f"p{i}") for i in range(2)]
    preds = tab.drop(["y"])
    for j, b in enumerate(preds.to_batches(max_chunksize=500)):
        one.update(b)
        parts[j % 2].update(b)
    end = pa.table({"x": [0.0], "score": [0.5], "shadow": [0.5], "rid": ["end"], "t": [120.0]})
    for m in [one] + parts:
        m.update(end)  # [0, 50) and [50, 100) close
        m.publish()
    fleet = fastdrift.Fleet(tmp_path / "spool", rules=[])
    assert [r.shadow.labelled for r in fleet.reports() if r.rows] == [0, 0]
    lab = pa.table({"rid": tab["rid"], "y": tab["y"], "t": pa.array(tab["t"].to_numpy() + 60.0)})
    one.update_labels(lab)
    for j, b in enumerate(lab.to_batches(max_chunksize=500)):
        parts[j % 2].update_labels(b)
    for p in parts:
        p.publish()
    ra, rf = [r for r in one.reports() if r.rows], [r for r in fleet.refresh().reports() if r.rows]
    assert len(ra) == len(rf) == 2
    t, s = tab["t"].to_numpy(), tab["shadow"].to_numpy(zero_copy_only=False)
    for a, f in zip(ra, rf):
        w = (t >= a.window_start) & (t < a.window_end) & ~np.isnan(s)
        _check_side_by_side(a.shadow, tab["score"].to_numpy()[w], s[w], tab["y"].to_numpy()[w])
        assert (f.shadow.rows, f.shadow.unpaired, f.shadow.agree, f.shadow.labelled) == \
            (a.shadow.rows, a.shadow.unpaired, a.shadow.agree, a.shadow.labelled)
        for k in ("tp", "fp", "tn", "fn"):
            assert f.shadow.performance[k] == a.shadow.performance[k]
            assert f.shadow.performance_champion[k] == a.shadow.performance_champion[k]
        assert f.shadow.performance["roc_auc"] == pytest.approx(a.shadow.performance["roc_auc"], rel=1e-12)
    for p in parts:
        p.close()


# -- with segments: shadow and freshness are the whole's ----------------------------------------------

def test_segmented_monitor_keeps_shadow_and_freshness_on_the_whole():
    """A segmented monitor's shadow and freshness state equals an unsegmented one's on the same rows
    (pane state, closed reports, a checkpoint); its segments carry neither, and a segment rule
    reading them is a config error."""
    plain, seg = _time_monitor(), _time_monitor(segment_by=["arm"], flush_interval=0)
    for j in range(4):
        b = _rows(700, seed=40 + j, t0=30.0 * j, null_every=5)
        plain.update(b)
        seg.update(b.append_column("arm", pa.array(np.where(np.arange(700) % 3 == 0, "canary", "main"))))
    # observe: a segment value like a feature, with a challenger's score
    plain.observe({"x": 0.4}, 0.6, shadow_prediction=0.7, ts=119.0)
    seg.observe({"x": 0.4, "arm": "canary"}, 0.6, shadow_prediction=0.7, ts=119.0)
    assert _exact(seg) == _exact(plain)
    for ws in seg.ingest.windower.open.values():
        assert ws.segments and all(s.shadow is None and s.freshness is None for s in ws.segments.values())
    again = Monitor.from_bytes(seg.to_bytes(), clock=lambda: 2_000.0)
    assert _exact(again) == _exact(plain)
    assert {p: sorted(ws.segments) for p, ws in again.ingest.windower.open.items()} == \
        {p: sorted(ws.segments) for p, ws in seg.ingest.windower.open.items()}
    end = pa.table({"x": [0.0], "score": [0.5], "shadow": [0.5], "t": [1_200.0]})  # past the lateness
    plain.update(end)
    seg.update(end.append_column("arm", pa.array(["main"])))
    ra, rs = [r for r in plain.reports() if r.rows], [r for r in seg.reports() if r.rows]
    assert len(ra) == len(rs) >= 2
    for a, s in zip(ra, rs):
        assert (s.shadow, s.freshness) == (a.shadow, a.freshness)
        assert s.segments and all(r.shadow is None and r.freshness is None for r in s.segments.values())
    rule = {"name": "stale", "owner": "o", "runbook": "r", "signal": "freshness", "warning": 1, "segments": "*"}
    with pytest.raises(InvalidInputError, match="segments"):
        fastdrift.alerts.load_rules([rule])
    with pytest.raises(InvalidInputError, match="segments"):
        fastdrift.alerts.load_rules([dict(rule, signal="shadow", metric="agreement")])
    ok = fastdrift.alerts.load_rules([{k: v for k, v in rule.items() if k != "segments"}])
    assert ok[0].segments is None
