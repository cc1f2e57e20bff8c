"""Multiclass and regression performance in the monitor, the decision threshold, and the estimated
(CBPE) performance of a binary classifier in monitor windows.

Oracles: scikit-learn and numpy on the rows of each window, computed here from the test's own data."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

import fastdrift
from fastdrift import Monitor
from fastdrift.alerts import Rule
from fastdrift.alerts.rules import Condition
from fastdrift.errors import CorruptStateError, InvalidInputError
from fastdrift.monitor import MonitorConfig

CLASSES = np.array(["cat", "dog", "eel", "fox"])
RTOL = 1e-12


def _mc_data(n, seed, acc=0.7, t0=0.0, rate=100.0):
    """Feature x, actual class, predicted class (right with probability ``acc``), request ids, times."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = CLASSES[rng.integers(0, 4, n)]
    wrong = CLASSES[rng.integers(0, 4, n)]
    p = np.where(rng.random(n) < acc, y, wrong)
    return x, y, p, np.array([f"m{seed}-{i}" for i in range(n)]), t0 + np.arange(n) / rate


def _rg_data(n, seed, noise=1.0, t0=0.0, rate=100.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 3 * x + 10 + rng.normal(size=n)
    p = 3 * x + 10 + rng.normal(0.2, noise, n)
    return x, y, p, np.array([f"r{seed}-{i}" for i in range(n)]), t0 + np.arange(n) / rate


def _mc_ref():
    x, y, p, _, _ = _mc_data(5000, 99)
    return pa.table({"x": x, "pred": p, "y": y})


def _rg_ref():
    x, y, p, _, _ = _rg_data(5000, 99)
    return pa.table({"x": x, "pred": p, "y": y})


def _check_mc(perf, y, p):
    """A report's multiclass performance against scikit-learn on the same rows."""
    assert perf["labelled"] == len(y)
    assert perf["accuracy"] == pytest.approx(skm.accuracy_score(y, p), rel=RTOL)
    assert perf["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0), rel=RTOL)
    assert perf["micro_f1"] == pytest.approx(skm.f1_score(y, p, average="micro", zero_division=0), rel=RTOL)
    labels = sorted(set(y) | set(p))
    pr, rc, f1, _ = skm.precision_recall_fscore_support(y, p, labels=labels, zero_division=0)
    for c, a, b, f in zip(labels, pr, rc, f1):
        assert perf[f"precision[{c}]"] == pytest.approx(a, rel=RTOL)
        assert perf[f"recall[{c}]"] == pytest.approx(b, rel=RTOL)
        assert perf[f"f1[{c}]"] == pytest.approx(f, rel=RTOL)


def _check_rg(perf, y, p):
    assert perf["labelled"] == len(y)
    assert perf["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=RTOL)
    assert perf["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), rel=RTOL)
    assert perf["bias"] == pytest.approx(float(np.mean(p - y)), rel=1e-9)
    assert perf["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p), rel=RTOL)
    assert perf["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-9)
    r = np.sort(p - y)  # residual quantiles from the t-digest: within 1 % of the rank
    for q, k in ((0.05, "residual_p05"), (0.5, "residual_p50"), (0.95, "residual_p95")):
        lo, hi = r[max(0, int((q - 0.01) * len(r)))], r[min(len(r) - 1, int((q + 0.01) * len(r)))]
        assert lo <= perf[k] <= hi


def _time_monitor(ref, lateness=0.0, **kw):
    kw.setdefault("rules", [])
    return Monitor(ref, features=["x"], prediction="pred", label="y", request_id="rid", event_time="t",
                   window={"by": "time", "size": 50, "allowed_lateness": lateness}, **kw)


def _rule(**kw):
    return Rule(owner="ml", runbook="https://runbooks/perf", **kw)


# -- task -----------------------------------------------------------------------------------------

def test_the_task_is_inferred_from_the_reference_or_set():
    m = Monitor(_mc_ref(), features=["x"], prediction="pred", label="y", rules=[])
    assert m.config.task == "multiclass" and type(m.ingest.ref.performance).__name__ == "MulticlassPerformance"
    m = Monitor(_rg_ref(), features=["x"], prediction="pred", label="y", rules=[])
    assert m.config.task == "regression"
    ref = pa.table({"x": [0.0, 1.0, 2.0], "pred": [0.2, 0.7, 0.9], "y": [0, 1, 1]})
    assert Monitor(ref, features=["x"], prediction="pred", label="y", rules=[]).config.task == "binary"
    # the same 0/1 labels, a number predicted: set the task
    m = Monitor(ref, features=["x"], prediction="pred", label="y", task="regression", rules=[])
    assert m.config.task == "regression"
    with pytest.raises(InvalidInputError, match="task"):
        Monitor(ref, features=["x"], prediction="pred", label="y", task="ranking", rules=[])
    with pytest.raises(InvalidInputError, match="task"):
        MonitorConfig(task="binary")  # without a label column


# -- multiclass -----------------------------------------------------------------------------------

def test_multiclass_batches_match_scikit_learn_per_window_with_null_labels_unlabelled():
    x, y, p, _, _ = _mc_data(15_000, 1)
    y_col = pa.array([None if i % 10 == 0 else v for i, v in enumerate(y)], type=pa.string())
    m = Monitor(_mc_ref(), features=["x"], prediction="pred", label="y", window=5000, rules=[], strict=True)
    m.update(pa.table({"x": x, "pred": p, "y": y_col}))
    reps = m.reports()
    assert len(reps) == 3
    has = np.arange(len(y)) % 10 != 0
    for i, r in enumerate(reps):
        w = slice(5000 * i, 5000 * (i + 1))
        _check_mc(r.performance, y[w][has[w]], p[w][has[w]])
        assert r.label_counts["predicted"] == r.label_counts["labelled"] == has[w].sum()
        assert set(r.label_counts) == {"predicted", "labelled"}  # a closed report: the window's own counts
    _check_mc(reps[0].performance_ref, *(_mc_ref()[c].to_numpy(zero_copy_only=False) for c in ("y", "pred")))


def test_multiclass_delayed_labels_by_request_id_checkpoint_and_merge():
    n = 10_000
    x, y, p, ids, t = _mc_data(n, 2)
    tbl = pa.table({"x": x, "pred": p, "rid": ids, "t": t})
    one = _time_monitor(_mc_ref())
    one.update(tbl)
    half = np.arange(0, n, 2)
    one.update_labels(pa.table({"rid": ids[half], "y": y[half], "t": t[half] + 5}))
    back = Monitor.from_bytes(one.to_bytes())  # the waiting predictions' classes travel as codes
    assert back.ingest.labels.classes == one.ingest.labels.classes and back.ingest.labels.live == n
    rest = np.arange(1, n, 2)
    nulls = pa.array([None] * 50, type=pa.string())  # a null label: no label yet, the prediction waits on
    back.update_labels(pa.table({"rid": ids[rest[:50]], "y": nulls, "t": t[rest[:50]] + 5}))
    back.update_labels(pa.table({"rid": ids[rest], "y": y[rest], "t": t[rest] + 6}))
    c = back.snapshot().label_counts
    assert (c["joined"], c["unlabelled"], c["invalid"], c["unmatched"]) == (n, 50, 0, 0)
    back.update(pa.table({"x": [0.0], "pred": ["cat"], "rid": ["end"], "t": [300.0]}))
    reps = [r for r in back.reports() if r.rows > 1]
    assert len(reps) == 2
    for r in reps:
        w = (t >= r.window_start) & (t < r.window_end)
        _check_mc(r.performance, y[w], p[w])
        assert r.label_coverage == 1.0
    # merged monitors (two processes' predictions, labels joined in each) report what one monitor does
    a, b = _time_monitor(_mc_ref(), 500.0), _time_monitor(_mc_ref(), 500.0)
    for j, part in enumerate(tbl.to_batches(max_chunksize=1000)):
        (a if j % 2 else b).update(part)
    for mon in (a, b):
        mon.update_labels(pa.table({"rid": ids, "y": y, "t": t + 5}))  # unmatched in one, joined in the other
    a.merge(b)
    a.update(pa.table({"x": [0.0], "pred": ["cat"], "rid": ["end"], "t": [900.0]}))
    got = [r for r in a.reports() if r.rows > 1]
    assert len(got) == 2
    for r in got:
        w = (t >= r.window_start) & (t < r.window_end)
        _check_mc(r.performance, y[w], p[w])


def test_multiclass_observe_and_observe_label_on_the_request_path():
    n = 600
    x, y, p, ids, _ = _mc_data(n, 3)
    m = Monitor(_mc_ref(), features=["x"], prediction="pred", label="y", request_id="rid", window=200,
                rules=[], flush_interval=0.05)
    try:
        for i in range(n):
            m.observe({"x": float(x[i])}, str(p[i]), request_id=ids[i])
            m.observe_label(ids[i], None if i % 7 == 0 else str(y[i]))
        for i in range(0, n, 7):  # their labels arrive later
            m.observe_label(ids[i], str(y[i]))
        m.flush()
        reps = m.reports()
        assert len(reps) == 3
        for i, r in enumerate(reps):
            sl = slice(200 * i, 200 * (i + 1))
            _check_mc(r.performance, y[sl], p[sl])
        c = m.snapshot().label_counts
        assert (c["joined"], c["unlabelled"], c["invalid"], c["duplicate"]) == (n, len(range(0, n, 7)), 0, 0)
    finally:
        m.close()


def test_multiclass_performance_rules_gate_and_per_class_metrics():
    x, y, p, _, _ = _mc_data(6000, 4, acc=0.3)  # the reference's accuracy is about 0.78; this window's 0.48
    rules = [_rule(name="acc", warning=Condition("performance", -0.1, op="<", metric="accuracy:delta")),
             _rule(name="eel-recall", warning=Condition("performance", 0.9, op="<", metric="recall[eel]",
                                                       min_labels=10)),
             _rule(name="gated", warning=Condition("performance", -0.1, op="<", metric="accuracy:delta",
                                                  min_labels=5000))]
    m = Monitor(_mc_ref(), features=["x"], prediction="pred", label="y", window=3000, rules=rules)
    m.update(pa.table({"x": x, "pred": p, "y": y}))
    fired = {a.rule for r in m.reports() for a in r.alerts}
    assert fired == {"acc", "eel-recall"}  # 3000 labels a window: the 5000 gate holds
    with pytest.raises(InvalidInputError, match="performance metric"):
        _rule(name="bad", warning=Condition("performance", 0.1, metric="recall[]"))


# -- regression -------------------------------------------------------------------------------------

def test_regression_batches_match_scikit_learn_and_null_actuals_are_unlabelled():
    x, y, p, _, _ = _rg_data(12_000, 5)
    y_col = pa.array([None if i % 9 == 0 else v for i, v in enumerate(y)], type=pa.float64())
    m = Monitor(_rg_ref(), features=["x"], prediction="pred", label="y", window=4000, rules=[], strict=True)
    m.update(pa.table({"x": x, "pred": p, "y": y_col}))
    has = np.arange(len(y)) % 9 != 0
    reps = m.reports()
    assert len(reps) == 3
    for i, r in enumerate(reps):
        w = slice(4000 * i, 4000 * (i + 1))
        _check_rg(r.performance, y[w][has[w]], p[w][has[w]])
    with pytest.raises(InvalidInputError, match="'y'"):  # a NaN actual is bad input, not a missing label
        m.update(pa.table({"x": [0.0], "pred": [1.0], "y": [float("nan")]}))


def test_regression_delayed_actuals_checkpoint_fleet_and_relative_rule(tmp_path):
    n = 10_000
    x, y, p, ids, t = _rg_data(n, 6, noise=3.0)  # MAE about 2.4, the reference's about 0.8
    rule = _rule(name="mae", warning=Condition("performance", 0.5, op=">", metric="mae:relative"))
    one = _time_monitor(_rg_ref(), 500.0, rules=[rule])
    parts = [_time_monitor(_rg_ref(), 500.0, spool=tmp_path / "spool", process_id=f"p{i}") for i in range(2)]
    tbl = pa.table({"x": x, "pred": p, "rid": ids, "t": t})
    for j, b in enumerate(tbl.to_batches(max_chunksize=1000)):
        one.update(b)
        parts[j % 2].update(b)
    one = Monitor.from_bytes(one.to_bytes(), rules=[rule])
    lab = pa.table({"rid": ids, "y": pa.array([None if i % 5 == 0 else v for i, v in enumerate(y)]), "t": t + 2})
    for m in [one] + parts:
        m.update_labels(lab)
    end = pa.table({"x": [0.0], "pred": [1.0], "rid": ["end"], "t": [900.0]})
    one.update(end)
    for q in parts:
        q.close()
    fleet = fastdrift.Fleet(tmp_path / "spool", rules=[])
    parts[0].update(end)
    parts[0].close()
    has = np.arange(n) % 5 != 0
    ro = [r for r in one.reports() if r.rows > 1]
    rf = [r for r in fleet.reports() if r.rows > 1]
    assert len(ro) == len(rf) == 2
    for a, f in zip(ro, rf):
        w = (t >= a.window_start) & (t < a.window_end) & has
        _check_rg(a.performance, y[w], p[w])
        for k in ("mae", "rmse", "bias", "mape", "labelled"):
            assert f.performance[k] == pytest.approx(a.performance[k], rel=RTOL)
        assert a.label_coverage == pytest.approx(0.8, abs=0.01)
    assert {al.rule for r in ro for al in r.alerts} == {"mae"}


# -- binary: the decision threshold and the estimate ------------------------------------------------

def _bin_data(n, seed, power=1.0, t0=0.0):
    """Scores from a Beta distribution; labels drawn with probability ``score ** power`` (1 = calibrated)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    s = rng.beta(2, 3, n)
    y = (rng.random(n) < s ** power).astype(np.int64)
    return x, s, y, np.array([f"b{seed}-{i}" for i in range(n)]), t0 + np.arange(n) / 100.0


def _bin_ref():
    x, s, y, _, _ = _bin_data(20_000, 98)
    return pa.table({"x": x, "pred": s, "y": y})


def test_the_decision_threshold_is_a_setting():
    x, s, y, _, _ = _bin_data(8000, 7)
    for thr in (0.5, 0.3):
        m = Monitor(_bin_ref(), features=["x"], prediction="pred", label="y", window=4000, rules=[],
                    labels={"threshold": thr})
        m.update(pa.table({"x": x, "pred": s, "y": y}))
        for i, r in enumerate(m.reports()):
            w = slice(4000 * i, 4000 * (i + 1))
            tn, fp, fn, tp = skm.confusion_matrix(y[w], s[w] >= thr, labels=[0, 1]).ravel()
            assert (r.performance["tp"], r.performance["fp"], r.performance["tn"], r.performance["fn"]) == (tp, fp, tn, fn)
            assert r.performance["f1"] == pytest.approx(skm.f1_score(y[w], s[w] >= thr), rel=RTOL)
            assert r.performance["prediction_rate"] == pytest.approx(np.mean(s[w] >= thr), rel=RTOL)
    with pytest.raises(InvalidInputError, match="labels.threshold"):
        Monitor(_bin_ref(), features=["x"], prediction="pred", label="y", rules=[], labels={"threshold": 1.5})


ESTIMATE_TOL = 0.02  # |estimated - realized| on 20,000 calibrated rows: a few standard errors of each metric


def test_estimated_performance_before_labels_then_beside_the_realized_one():
    n = 20_000
    x, s, y, ids, t = _bin_data(n, 8)
    rule = _rule(name="est", warning=Condition("performance", 0.9, op="<", metric="estimated_roc_auc"))
    m = Monitor(_bin_ref(), features=["x"], prediction="pred", label="y", request_id="rid", event_time="t",
                window={"by": "time", "size": 100}, rules=[rule])
    m.update(pa.table({"x": x, "pred": s, "rid": ids, "t": t}))
    r = m.reports()[0]
    # no label yet: the estimate from the scores alone, and how complete the labels are
    assert r.label_counts["labelled"] == 0 and r.label_coverage == 0.0 and "roc_auc" not in r.performance
    assert r.label_counts["scored"] == 10_000
    assert {a.rule for a in r.alerts} == {"est"}  # the estimate's AUC (about 0.7) alerts before any label
    m.update_labels(pa.table({"rid": ids, "y": y, "t": t + 1}))
    m.update(pa.table({"x": [0.0], "pred": [0.5], "rid": ["end"], "t": [1000.0]}))
    for r in m.reports()[:2]:
        w = (t >= r.window_start) & (t < r.window_end)
        p = r.performance
        assert r.label_coverage == 1.0 and p["labelled"] == r.label_counts["scored"] == w.sum()
        assert p["roc_auc"] == pytest.approx(skm.roc_auc_score(y[w], s[w]), abs=1e-3)
        for k in ("roc_auc", "precision", "recall", "f1", "accuracy", "positive_rate"):
            assert abs(p[f"estimated_{k}"] - p[k]) < ESTIMATE_TOL, k
        # the estimate, exactly: expected counts from the scores
        above = s[w] >= 0.5
        assert p["estimated_tp"] == pytest.approx(s[w][above].sum(), rel=1e-9)
        assert p["estimated_fn"] == pytest.approx(s[w][~above].sum(), rel=1e-9)
        assert p["estimated_fp"] == pytest.approx((1 - s[w][above]).sum(), rel=1e-9)
        assert p["estimated_precision"] == pytest.approx(s[w][above].mean(), rel=1e-9)
        assert p["estimated_recall"] == pytest.approx(s[w][above].sum() / s[w].sum(), rel=1e-9)


def test_the_estimate_is_honest_about_its_assumption_miscalibrated_scores_diverge():
    n = 20_000
    x, s, y, _, _ = _bin_data(n, 9, power=3.0)  # true probability score**3: over-confident scores
    m = Monitor(_bin_ref(), features=["x"], prediction="pred", label="y", window=n, rules=[])
    m.update(pa.table({"x": x, "pred": s, "y": y}))
    p = m.reports()[0].performance
    assert p["estimated_positive_rate"] - p["positive_rate"] > 0.2  # 0.40 expected, about 0.11 realized
    assert p["estimated_precision"] - p["precision"] > 0.2
    assert abs(p["estimated_roc_auc"] - p["roc_auc"]) > 0.03


# -- config, bytes, counters ------------------------------------------------------------------------

def test_task_and_threshold_in_a_config_file(tmp_path):
    from fastdrift.monitor import load_config
    f = tmp_path / "m.yaml"
    f.write_text("prediction: pred\nlabel: y\ntask: multiclass\nlabels:\n  threshold: 0.3\n")
    c = load_config(f)
    assert c.task == "multiclass" and c.labels.threshold == 0.3
    f.write_text("prediction: pred\nlabel: y\nlabels:\n  threshold: high\n")
    with pytest.raises(InvalidInputError, match="labels.threshold"):
        load_config(f)


def test_a_multiclass_store_refuses_bytes_of_another_task_or_bad_class_codes():
    from fastdrift import codec
    from fastdrift.monitor.labels import LabelStore
    x, y, p, ids, t = _mc_data(500, 10)
    m = _time_monitor(_mc_ref())
    m.update(pa.table({"x": x, "pred": p, "rid": ids, "t": t}))
    blob = m.ingest.label_state()
    st = LabelStore(m.config)
    st.load(blob)
    assert st.live == 500 and sorted(st.classes) == sorted(set(p))
    _, params, payload = codec.decode(blob)
    r = codec.Reader(params)
    meta = r.json()
    for bad in ({**meta, "classes": meta["classes"][:1]},  # codes beyond the class list
                {**meta, "classes": meta["classes"] + meta["classes"][:1]},  # a class twice
                {**meta, "task": "regression"}):
        forged = codec.encode(codec.Kind.LABEL_STORE, codec.Writer().json(bad).getvalue(), payload)
        with pytest.raises(CorruptStateError):
            LabelStore(m.config).load(forged)
    rg = _time_monitor(_rg_ref())
    with pytest.raises(CorruptStateError, match="task"):
        rg.ingest.labels.load(blob)


def test_closed_reports_carry_window_counts_the_snapshot_the_monitor_totals():
    x, s, y, ids, t = _bin_data(6000, 11)
    m = Monitor(_bin_ref(), features=["x"], prediction="pred", label="y", request_id="rid", window=3000, rules=[])
    m.update(pa.table({"x": x, "pred": s, "rid": ids}))
    m.update_labels(pa.table({"rid": ["nobody"] + list(ids[:10]), "y": [1] + list(y[:10])}))
    closed = m.reports()
    assert all(set(r.label_counts) == {"predicted", "labelled", "scored"} for r in closed)
    assert closed[0].label_counts["labelled"] == 10  # revised by the labels joined after its close
    snap = m.snapshot().label_counts
    assert (snap["unmatched"], snap["joined"]) == (1, 10)  # monitor-wide, as of the snapshot


def test_the_default_performance_rule_reads_the_task_metric():
    x, y, p, _, _ = _mc_data(6000, 12, acc=0.3)
    m = Monitor(_mc_ref(), features=["x"], prediction="pred", label="y", window=3000)
    m.update(pa.table({"x": x, "pred": p, "y": y}))
    assert "performance-drop" in {a.rule for r in m.reports() for a in r.alerts}
    x, y, p, _, _ = _rg_data(6000, 13, noise=3.0)
    m = Monitor(_rg_ref(), features=["x"], prediction="pred", label="y", window=3000)
    m.update(pa.table({"x": x, "pred": p, "y": y}))
    assert "performance-drop" in {a.rule for r in m.reports() for a in r.alerts}


def test_integer_classes_and_a_label_column_of_the_other_class_kind():
    rng = np.random.default_rng(14)
    n = 4000
    y = rng.integers(0, 5, n)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, 5, n))
    x = rng.normal(size=n)
    ref = pa.table({"x": x, "pred": p, "y": y})
    m = Monitor(ref, features=["x"], prediction="pred", label="y", request_id="rid", window=2000, rules=[])
    assert m.config.task == "multiclass"
    ids = np.array([f"i{i}" for i in range(n)])
    m.update(pa.table({"x": x, "pred": p, "rid": ids}))
    m.update_labels(pa.table({"rid": ids, "y": y.astype(float)}))  # integer-valued floats are classes
    for i, r in enumerate(m.reports()):
        w = slice(2000 * i, 2000 * (i + 1))
        _check_mc(r.performance, y[w], p[w])
    # string labels against integer predictions: a schema change, counted, never a crash
    m.update(pa.table({"x": x[:10], "pred": p[:10], "y": [str(v) for v in y[:10]]}))
    snap = m.snapshot()
    assert snap.label_counts["labelled"] == 0 and ("y", "type") in {(c.column, c.change) for c in snap.schema_changes}


# -- shadow predictions with a task -----------------------------------------------------------------

def test_shadow_label_side_is_binary_only_and_reads_the_threshold():
    """A multiclass or regression challenger is compared with the champion (agreement, numpy's)
    but counts no labels, through delayed labels and a checkpoint; a binary challenger's
    performance is read at ``labels.threshold`` (scikit-learn's confusion on the same rows)."""
    n = 10_000
    for task, (x, y, p, ids, t) in (("multiclass", _mc_data(n, 11)), ("regression", _rg_data(n, 12))):
        q = (np.where(np.arange(n) % 3 == 0, CLASSES[(np.searchsorted(CLASSES, p) + 1) % 4], p)
             if task == "multiclass" else p + np.random.default_rng(3).normal(0, 0.5, n))
        ref = _mc_ref() if task == "multiclass" else _rg_ref()
        m = _time_monitor(ref.append_column("q", ref.column("pred")), shadow_prediction="q",
                          shadow={"tolerance": 0.25} if task == "regression" else None)
        assert m.config.task == task and not m.ingest.labels.has_shadow
        m.update(pa.table({"x": x, "pred": p, "q": q, "rid": ids, "t": t}))
        m = Monitor.from_bytes(m.to_bytes())
        m.update_labels(pa.table({"rid": ids, "y": y, "t": t + 5}))
        m.update(pa.table({"x": [0.0], "pred": pa.array(p[:1]), "q": pa.array(q[:1]), "rid": ["end"], "t": [300.0]}))
        reps = [r for r in m.reports() if r.rows > 1]
        assert len(reps) == 2
        for r in reps:
            w = (t >= r.window_start) & (t < r.window_end)
            same = p[w] == q[w] if task == "multiclass" else np.abs(q[w] - p[w]) <= 0.25
            assert (r.shadow.rows, r.shadow.agree) == (w.sum(), same.sum())
            assert r.shadow.labelled == 0 and not r.shadow.performance and not r.shadow.performance_champion
            (_check_mc if task == "multiclass" else _check_rg)(r.performance, y[w], p[w])
    x, s, y, ids, t = _bin_data(8000, 13)
    c = np.clip(s + np.random.default_rng(4).normal(0, 0.1, s.size), 0, 1)
    ref = _bin_ref()
    m = _time_monitor(ref.append_column("q", ref.column("pred")), shadow_prediction="q", labels={"threshold": 0.3})
    half = np.arange(8000) < 4000  # labels in the batch for the first half, joined later for the rest
    m.update(pa.table({"x": x, "pred": s, "q": c, "rid": ids, "t": t,
                       "y": pa.array(y, mask=~half)}))
    m.update_labels(pa.table({"rid": ids[~half], "y": y[~half], "t": t[~half] + 1}))
    m.update(pa.table({"x": [0.0], "pred": [0.5], "q": [0.5], "rid": ["end"], "t": [300.0]}))
    reps = [r for r in m.reports() if r.rows > 1]
    assert len(reps) == 2
    for r in reps:
        w = (t >= r.window_start) & (t < r.window_end)
        for perf, score in ((r.shadow.performance, c), (r.shadow.performance_champion, s)):
            tn, fp, fn, tp = skm.confusion_matrix(y[w], score[w] >= 0.3, labels=[0, 1]).ravel()
            assert (perf["tp"], perf["fp"], perf["tn"], perf["fn"]) == (tp, fp, tn, fn)
        assert r.shadow.labelled == w.sum()
