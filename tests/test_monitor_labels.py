"""Labels in the monitor: batch labels, delayed labels joined by request id, the join store's
policies and bounds, checkpoints, fleet merges and the performance rule.

Oracles: scikit-learn / numpy on the joined rows, computed here from the test's own data."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import (average_precision_score, brier_score_loss, confusion_matrix, log_loss,
                             roc_auc_score)

import fastdrift
from fastdrift import Monitor
from fastdrift.errors import CorruptStateError, InvalidInputError, SchemaError
from fastdrift.monitor import FeatureSpec, LabelSpec, MonitorConfig
from fastdrift.monitor.labels import BYTES_PER_SLOT, LabelStore, memory_bound, request_keys
from threads import run_threads

AUC_TOL = 1e-3  # the performance sketch's ROC AUC bound at its default bins (docs/sketches.md)


def _data(n, seed=0, t0=0.0, rate=100.0, flip=False):
    """Feature x, a calibrated score of x, a label drawn from the score, request ids and times."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    s = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < s).astype(np.int64)
    if flip:
        y = 1 - y
    ids = np.array([f"s{seed}-{i}" for i in range(n)])
    t = t0 + np.arange(n) / rate
    return x, s, y, ids, t


def _reference(n=20_000):
    x, s, y, _, _ = _data(n, seed=99)
    return pa.table({"x": x, "score": s, "y": y})


def _check_perf(report, s, y):
    """The report's performance against scikit-learn on the same (score, label) rows."""
    p = report.performance
    assert p["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=AUC_TOL)
    assert p["average_precision"] == pytest.approx(average_precision_score(y, s), abs=AUC_TOL)
    assert p["brier"] == pytest.approx(brier_score_loss(y, s), rel=1e-9, abs=1e-12)
    assert p["log_loss"] == pytest.approx(log_loss(y, s, labels=[0, 1]), rel=1e-9)
    tn, fp, fn, tp = confusion_matrix(y, (s >= 0.5).astype(int), labels=[0, 1]).ravel()
    assert (p["tp"], p["fp"], p["tn"], p["fn"]) == (tp, fp, tn, fn)
    assert report.label_counts["labelled"] == p["labelled"] == len(y)


def _time_monitor(ref, lateness=0.0, **kw):
    kw.setdefault("rules", [])
    return Monitor(ref, features=["x"], prediction="score", label="y", request_id="rid", event_time="t",
                   window={"by": "time", "size": 50, "allowed_lateness": lateness}, **kw)


# -- batch labels -----------------------------------------------------------------------------------

def test_batch_labels_give_performance_per_window():
    x, s, y, _, _ = _data(20_000, seed=1)
    m = Monitor(_reference(), features=["x"], prediction="score", label="y", window=5000, rules=[])
    m.update(pa.table({"x": x, "score": s, "y": y}))
    reps = m.reports()
    assert len(reps) == 4
    for i, r in enumerate(reps):
        sl = slice(5000 * i, 5000 * (i + 1))
        _check_perf(r, s[sl], y[sl])
        assert r.label_coverage == 1.0 and r.label_counts["predicted"] == 5000
    # the reference's performance is in every report, for relative rules
    xr = _reference()
    assert reps[0].performance_ref["roc_auc"] == pytest.approx(
        roc_auc_score(xr.column("y").to_numpy(), xr.column("score").to_numpy()), abs=AUC_TOL)


def test_batch_labels_null_labels_lower_coverage_and_bad_ones_are_counted_not_lost():
    x, s, y, _, _ = _data(4000, seed=2)
    lab = pa.array(y, mask=np.arange(4000) % 4 == 0)  # a quarter of the labels are not known
    m = Monitor(_reference(), features=["x"], prediction="score", label="y", window=4000, rules=[])
    m.update(pa.table({"x": x, "score": s, "y": lab}))
    r = m.reports()[0]
    keep = np.arange(4000) % 4 != 0
    _check_perf(r, s[keep], y[keep])
    assert r.label_counts["predicted"] == 3000 and r.label_coverage == 1.0
    with pytest.raises(InvalidInputError, match="label column 'y'"):
        Monitor(_reference(), features=["x"], prediction="score", label="y", window=10, rules=[],
                strict=True).update(pa.table({"x": x[:10], "score": s[:10], "y": np.full(10, 2)}))


def test_label_needs_a_prediction_and_a_numeric_score():
    with pytest.raises(InvalidInputError, match="label"):
        Monitor(_reference(), features=["x"], label="y", rules=[])
    ref = pa.table({"x": [1.0, 2.0], "score": ["a", "b"], "y": [0, 1]})
    with pytest.raises(SchemaError, match="score"):
        Monitor(ref, features=["x"], prediction="score", label="y", task="binary", rules=[])
    # inferred: a categorical prediction is a multiclass classifier, whose classes must match the labels'
    with pytest.raises(SchemaError, match="'score'.*'y'"):
        Monitor(ref, features=["x"], prediction="score", label="y", rules=[])
    with pytest.raises(InvalidInputError, match="observe_label"):
        Monitor(_reference(), features=["x"], prediction="score", label="y", rules=[]).observe_label("a", 1)


# -- delayed labels ---------------------------------------------------------------------------------

def test_delayed_labels_out_of_order_join_the_prediction_window_and_revise_it():
    n = 20_000  # 200 s of predictions at 100/s: windows of 50 s
    x, s, y, ids, t = _data(n, seed=3)
    m = _time_monitor(_reference())
    m.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    closed = m.reports()
    assert len(closed) == 3 and all(r.label_counts["labelled"] == 0 for r in closed)
    assert all(r.label_coverage == 0.0 for r in closed)
    rng = np.random.default_rng(4)
    labelled = rng.random(n) < 0.7  # 70 % of the predictions get a label, in random order
    delay = rng.exponential(30.0, n)
    idx = rng.permutation(np.flatnonzero(labelled))
    for part in np.array_split(idx, 5):
        m.update_labels(pa.table({"rid": ids[part], "y": y[part], "t": t[part] + delay[part]}))
    reps = m.reports()
    assert [r.window_start for r in reps] == [0.0, 50.0, 100.0]
    # closed panes no window ring holds are kept encoded (tumbling windows: every closed pane)
    assert sorted(m.ingest.labels.closed) == [0, 1, 2]
    assert all(isinstance(e[0], bytes) for e in m.ingest.labels.closed.values())
    for r in reps:
        w = (t >= r.window_start) & (t < r.window_end)
        joined = w & labelled
        _check_perf(r, s[joined], y[joined])
        assert r.label_counts["predicted"] == w.sum()
        assert r.label_coverage == pytest.approx(joined.sum() / w.sum(), abs=1e-15)
        exact = np.quantile(delay[joined], [0.5, 0.99])
        assert r.label_delay["p50"] == pytest.approx(exact[0], rel=0.02)
        assert r.label_delay["p99"] == pytest.approx(exact[1], rel=0.05)
    # the open window joins too
    snap = m.snapshot()
    w = t >= 150.0
    _check_perf(snap, s[w & labelled], y[w & labelled])


def test_late_unknown_duplicate_and_invalid_labels_are_counted():
    n = 2000
    x, s, y, ids, t = _data(n, seed=5)
    m = _time_monitor(_reference(), labels={"horizon": 60.0})
    m.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    on_time = np.arange(0, 1000)
    m.update_labels(pa.table({"rid": ids[on_time], "y": y[on_time], "t": t[on_time] + 10}))
    late = np.arange(1000, 1300)  # 61 s after the prediction: past the 60 s horizon
    m.update_labels(pa.table({"rid": ids[late], "y": y[late], "t": t[late] + 61}))
    # second labels of labelled predictions, flipped: first wins, the performance does not move
    m.update_labels(pa.table({"rid": ids[:100], "y": 1 - y[:100], "t": t[:100] + 20}))
    m.update_labels(pa.table({"rid": ["nobody", "nobody-2", None], "y": [1, 0, 1], "t": [5.0, 5.0, 5.0]}))
    m.update_labels(pa.table({"rid": ids[1300:1303], "y": pa.array([2, None, -1]), "t": t[1300:1303] + 1}))
    c = m.snapshot().label_counts
    # a null request id is invalid; a null label is no label yet (unlabelled), never invalid
    assert (c["joined"], c["late"], c["duplicate"], c["unmatched"], c["invalid"]) == (1000, 300, 100, 2, 3)
    assert c["unlabelled"] == 1
    reps = m.reports() + (m.snapshot(),)
    total = sum(r.label_counts["labelled"] for r in reps)
    assert total == 1000
    first = reps[0]
    w = (t < 50) & (np.arange(n) < 1000)
    _check_perf(first, s[w], y[w])


def test_observe_label_on_the_request_path_joins_after_the_prediction():
    n = 600
    x, s, y, ids, t = _data(n, seed=6)
    m = Monitor(_reference(), features=["x"], prediction="score", label="y", request_id="rid", window=200,
                rules=[], flush_interval=0.05)
    try:
        for i in range(n):
            m.observe({"x": float(x[i])}, float(s[i]), request_id=ids[i])
            m.observe_label(ids[i], int(y[i]))  # its prediction may still be buffered: joined after it
        reps = m.reports()
        assert len(reps) == 3
        for i, r in enumerate(reps):
            sl = slice(200 * i, 200 * (i + 1))
            _check_perf(r, s[sl], y[sl])
            assert r.label_coverage == 1.0
        assert m.snapshot().label_counts["unmatched"] == 0
    finally:
        m.close()


@pytest.mark.parametrize("buffer", [1 << 20, 300])
def test_observe_label_concurrent_callers_keep_each_label_whole_and_in_order(buffer):
    # observe_label appends one (request_id, label, ts) tuple without a lock while a taker takes
    # from the front: 8 threads x 3,000 labels, the switch interval at 1 us; every taken label is
    # one call's (its label and time functions of its id), each thread's in the order it made
    # them, none twice, and taken + shed = calls (buffer 300: most are shed; the held list may
    # pass the buffer by at most one label per caller).
    import threading
    cfg = MonitorConfig(features=(FeatureSpec("x"),), prediction="score", label="y", request_id="rid",
                        labels=LabelSpec(buffer=buffer))
    st = LabelStore(cfg)
    threads, per = 8, 3000
    taken, done = [], threading.Event()
    peak = [0]

    def work(t):
        for i in range(per):
            st.observe(f"{t}:{i}", (t + i) % 2, ts=float(t * per + i))

    def take():
        while True:
            finished = done.is_set()  # before the take: then every label is in it or before it
            peak[0] = max(peak[0], len(st._held))
            got = st.take_observed()
            if got is not None:
                taken.append(got)
            elif finished:
                return

    taker = threading.Thread(target=take)
    taker.start()
    try:
        run_threads([threading.Thread(target=work, args=(t,)) for t in range(threads)])
    finally:
        done.set()
        taker.join()
    seen, last = set(), {}
    for ids, lab, valid, ts, null in taken:
        assert valid.all() and not null.any()
        for rid, y, when in zip(ids, lab, ts):
            t, i = map(int, rid.split(":"))
            assert (y, when) == ((t + i) % 2, float(t * per + i)), rid
            assert i > last.get(t, -1) and rid not in seen  # in each thread's order, once
            last[t] = i
            seen.add(rid)
    assert len(seen) + st.counts["shed"] == threads * per
    assert peak[0] <= buffer + threads
    if buffer > threads * per:
        assert st.counts["shed"] == 0
    else:
        assert st.counts["shed"] > 0


# -- the join store -----------------------------------------------------------------------------------

def _oracle_key(rid: str) -> int:
    """FNV-1a 64 of the UTF-8 bytes, then the splitmix64 finaliser (written again here)."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for b in rid.encode():
        h = ((h ^ b) * 0x100000001B3) & mask
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & mask
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & mask
    h ^= h >> 31
    return h or 1


def test_request_keys_are_a_stable_hash_the_same_in_every_process():
    ids = ["a", "", "req-12345", "dé", "42"]
    keys, valid = request_keys(pa.array(ids + [None]))
    assert keys[:5].tolist() == [_oracle_key(r) for r in ids] and valid.tolist() == [True] * 5 + [False]
    assert request_keys(pa.array([42], pa.int64()))[0][0] == _oracle_key("42")  # integers as decimal text
    code = ("from fastdrift.monitor.labels import request_keys; import pyarrow as pa; "
            "print(request_keys(pa.array(['a', 'req-12345']))[0].tolist())")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert out.strip() == str([_oracle_key("a"), _oracle_key("req-12345")])


def test_sampling_by_request_id_hash_is_the_same_in_two_monitors():
    n = 5000
    x, s, y, ids, t = _data(n, seed=7)
    a = _time_monitor(_reference(), labels={"sample_rate": 0.3})
    b = _time_monitor(_reference(), labels={"sample_rate": 0.3})
    a.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    order = np.random.default_rng(8).permutation(n)  # another process sees the rows in another order
    b.update(pa.table({"x": x[order], "score": s[order], "rid": ids[order], "t": np.sort(t)}))

    def held(m):
        st = m.ingest.labels
        return set(st.keys[(st.flag == 1) | (st.flag == 2)].tolist())

    expect = {_oracle_key(r) for r in ids if _oracle_key(r) <= int(0.3 * 2.0 ** 64)}
    assert held(a) == held(b) == expect
    assert 0.27 * n < len(expect) < 0.33 * n
    a.update_labels(pa.table({"rid": ids, "y": y, "t": t + 1}))
    sampled = np.array([_oracle_key(r) in expect for r in ids])
    c = a.snapshot().label_counts
    assert c["joined"] == sampled.sum() and c["unmatched"] == n - sampled.sum()
    r = a.snapshot()
    w = sampled
    _check_perf(r, s[w], y[w])
    assert r.label_counts["predicted"] == w.sum() and r.label_coverage == 1.0


def test_memory_bound_is_respected_and_overflow_counted():
    cfg = MonitorConfig(features=(FeatureSpec("x"),), prediction="score", label="y", request_id="rid",
                        labels=LabelSpec(max_predictions=1000))
    st = LabelStore(cfg)
    ids = pa.array([f"m{i}" for i in range(5000)])
    got = st.remember(ids, np.random.default_rng(0).random(5000), 0, np.zeros(5000))
    assert got == 1000 and st.live == 1000 and st.counts["not_remembered"] == 4000
    assert st.nbytes <= memory_bound(1000) == BYTES_PER_SLOT * 2048
    assert memory_bound(1 << 20) == 66 * (1 << 20)  # 66 bytes per prediction at a power of two
    # expiry frees room: predictions older than the horizon leave
    st2 = LabelStore(MonitorConfig(features=(FeatureSpec("x"),), prediction="score", label="y", request_id="rid",
                                   labels=LabelSpec(max_predictions=4000)))
    st2.remember(ids[:1000], np.zeros(1000), 0, np.zeros(1000))
    st2.remember(ids[1000:2000], np.zeros(1000), 1, np.full(1000, cfg.labels.horizon + 10))
    assert st2.live == 1000 and st2.counts["not_remembered"] == 0
    pn, *_ = st2.join(ids[:2000], np.ones(2000), np.ones(2000, bool), np.full(2000, cfg.labels.horizon + 20))
    assert pn.size == 1000 and st2.counts["late"] == 1000  # the expired ones: too late, not unknown


# -- checkpoints and fleets ---------------------------------------------------------------------------

def test_checkpoint_round_trip_carries_the_join_store(tmp_path):
    n = 10_000
    x, s, y, ids, t = _data(n, seed=9)
    tbl = pa.table({"x": x, "score": s, "rid": ids, "t": t})
    one = _time_monitor(_reference())
    two = _time_monitor(_reference())
    one.update(tbl)
    two.update(tbl)
    half = np.arange(0, n, 2)
    lab = pa.table({"rid": ids[half], "y": y[half], "t": t[half] + 3})
    one.update_labels(lab)
    two.update_labels(lab)
    two.save(tmp_path / "m.ckpt")
    back = Monitor.load(tmp_path / "m.ckpt")
    assert back.ingest.labels.counts == two.ingest.labels.counts and back.ingest.labels.live == n
    rest = np.arange(1, n, 2)
    lab2 = pa.table({"rid": ids[rest], "y": y[rest], "t": t[rest] + 3})
    one.update_labels(lab2)
    back.update_labels(lab2)
    more = _data(3000, seed=10, t0=100.0)
    tail = pa.table({"x": more[0], "score": more[1], "rid": more[3], "t": more[4]})
    one.update(tail)
    back.update(tail)
    ra, rb = one.reports(), back.reports()
    assert [r.window_start for r in ra] == [r.window_start for r in rb]
    for a, b in zip(ra, rb):
        assert dict(a.performance) == dict(b.performance) and dict(a.label_counts) == dict(b.label_counts)
    assert Monitor.from_bytes(back.to_bytes()).to_bytes() == back.to_bytes()


def test_corrupt_label_store_bytes_are_refused():
    x, s, y, ids, t = _data(500, seed=11)
    m = _time_monitor(_reference())
    m.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    blob = m.ingest.label_state()
    st = LabelStore(m.config)
    st.load(blob)
    assert st.live == 500
    for bad in (blob[:-7], blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:]):
        with pytest.raises(CorruptStateError):
            LabelStore(m.config).load(bad)
    small = _time_monitor(_reference(), labels={"max_predictions": 10})
    with pytest.raises(CorruptStateError, match="max_predictions"):
        small.ingest.labels.load(blob)


def test_merged_monitors_and_a_fleet_report_the_performance_of_one_monitor(tmp_path):
    n = 12_000
    x, s, y, ids, t = _data(n, seed=12)
    tbl = pa.table({"x": x, "score": s, "y": y, "rid": ids, "t": t})
    one = _time_monitor(_reference(), 200.0)  # lateness: a merge does not close a window early
    parts = [_time_monitor(_reference(), 200.0, spool=tmp_path / "spool", process_id=f"p{i}") for i in range(3)]
    for j, b in enumerate(tbl.to_batches(max_chunksize=1000)):
        one.update(b)
        parts[j % 3].update(b)
    merged = _time_monitor(_reference(), 200.0)
    for p in parts:
        merged.merge(p)
    end = pa.table({"x": [0.0], "score": [0.5], "y": [1], "rid": ["end"], "t": [500.0]})
    for m in (one, merged):
        m.update(end)
    for p in parts:
        p.close()
    fleet = fastdrift.Fleet(tmp_path / "spool", rules=[])
    parts[0].update(end)
    parts[0].close()
    ra, rm, rf = one.reports(), merged.reports(), fleet.reports()
    ra = [r for r in ra if r.rows]
    rm, rf = [r for r in rm if r.rows], [r for r in rf if r.rows]
    assert len(ra) == len(rm) == len(rf) == 3
    for a, b, c in zip(ra, rm, rf):
        for other in (b, c):  # counts exact; sums of floats added in another order: to rounding
            assert set(a.performance) == set(other.performance)
            for k in ("tp", "fp", "tn", "fn", "labelled"):
                assert a.performance[k] == other.performance[k]
            for k, v in a.performance.items():
                assert other.performance[k] == pytest.approx(v, rel=1e-12, abs=1e-15, nan_ok=True)
        assert a.label_counts["labelled"] == b.label_counts["labelled"] == c.label_counts["labelled"]
        assert dict(a.performance_ref) == dict(b.performance_ref) == dict(c.performance_ref) != {}
        assert a.concept == b.concept == c.concept
        w = (t >= a.window_start) & (t < a.window_end)
        _check_perf(a, s[w], y[w])


def test_labels_joined_after_a_pane_was_published_reach_the_fleet(tmp_path):
    # predictions of two processes, their windows closed and published; the labels arrive afterwards
    n = 8000  # 80 s at 100/s: windows of 50 s
    x, s, y, ids, t = _data(n, seed=13)
    one = _time_monitor(_reference())
    parts = [_time_monitor(_reference(), spool=tmp_path / "spool", process_id=f"p{i}") for i in range(2)]
    preds = pa.table({"x": x, "score": s, "rid": ids, "t": t})
    for j, b in enumerate(preds.to_batches(max_chunksize=500)):
        one.update(b)
        parts[j % 2].update(b)
    end = pa.table({"x": [0.0], "score": [0.5], "rid": ["end"], "t": [120.0]})
    for m in [one] + parts:
        m.update(end)  # [0, 50) and [50, 100) close
    for p in parts:
        p.publish()
    fleet = fastdrift.Fleet(tmp_path / "spool", rules=[])
    assert [r.performance.get("labelled", 0) for r in fleet.reports() if r.rows] == [0, 0]
    lab = pa.table({"rid": ids, "y": y, "t": t + 60.0})
    one.update_labels(lab)
    for j, b in enumerate(lab.to_batches(max_chunksize=500)):
        parts[j % 2].update_labels(b)  # each process gets its own predictions' labels
    for p in parts:
        p.publish()
    ra, rf = [r for r in one.reports() if r.rows], [r for r in fleet.refresh().reports() if r.rows]
    assert [(r.window_start, r.window_end) for r in rf] == [(r.window_start, r.window_end) for r in ra] == \
        [(0.0, 50.0), (50.0, 100.0)]
    for a, f in zip(ra, rf):
        w = (t >= a.window_start) & (t < a.window_end)
        _check_perf(a, s[w], y[w])
        assert f.performance["labelled"] == a.performance["labelled"] == int(w.sum())
        for k in ("tp", "fp", "tn", "fn"):
            assert f.performance[k] == a.performance[k]
        for k, v in a.performance.items():
            assert f.performance[k] == pytest.approx(v, rel=1e-12, abs=1e-15, nan_ok=True)
        assert f.label_counts["labelled"] == a.label_counts["labelled"]
        assert f.label_coverage == a.label_coverage == 1.0
    # a later flush with nothing new writes no pane file again
    before = {q.name: q.stat().st_mtime_ns for q in (tmp_path / "spool" / "panes").iterdir()}
    for p in parts:
        p.publish()
    assert {q.name: q.stat().st_mtime_ns for q in (tmp_path / "spool" / "panes").iterdir()} == before
    for p in parts:
        p.close()


def test_a_label_revision_of_a_pane_still_queued_for_a_stalled_spool_revises_the_queued_version(tmp_path):
    from fastdrift.monitor.signals import WindowSketch
    from fastdrift.monitor.spool import Store, read_panes
    from test_spool_publish import HeldStore as Held  # pane puts wait until released: a stalled store

    n = 12_000  # 120 s at 100/s: panes [0, 50) and [50, 100) close, [100, 150) open
    x, s, y, ids, t = _data(n, seed=14)
    m = _time_monitor(_reference(), spool=tmp_path / "spool", process_id="p")
    store = m.ingest.spool.store = Held(tmp_path / "spool")
    m.update(pa.table({"x": x[:100], "score": s[:100], "rid": ids[:100], "t": t[:100]}))
    m.ingest.publish(wait=None)
    assert store.entered.wait(30)  # the publisher holds the open pane 0's put
    m.update(pa.table({"x": x[100:], "score": s[100:], "rid": ids[100:], "t": t[100:]}))
    m.ingest.publish(wait=None)  # closed panes 0 and 1 queued whole, behind the held put
    m.update_labels(pa.table({"rid": ids, "y": y, "t": t + 200.0}))
    m.ingest.publish(wait=None)  # their labels: a revision of the queued versions
    store.release.set()
    m.close()
    files = {f.pane: f for f in read_panes(Store(tmp_path / "spool"))}
    assert sorted(files) == [0, 1, 2] and [files[p].closed for p in (0, 1, 2)] == [True, True, False]
    for p in (0, 1):
        ws = WindowSketch.from_bytes(files[p].sketch_bytes, m.ingest.ref, m.config)
        w = (t >= 50 * p) & (t < 50 * (p + 1))
        assert ws.rows == int(w.sum()) and ws.labels.labelled == int(w.sum())
        tn, fp, fn, tp = confusion_matrix(y[w], (s[w] >= 0.5).astype(int), labels=[0, 1]).ravel()
        c = ws.labels.perf.confusion(0.5)
        assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (tp, fp, tn, fn)
    assert m.ingest.spool.errors == 0


# -- rules ------------------------------------------------------------------------------------------------

def _rule(**over):
    cond = dict(signal="performance", metric="roc_auc:delta", op="<", threshold=-0.1, min_labels=500)
    cond.update(over)
    return [dict(name="auc-drop", owner="ml", runbook="https://runbooks/auc", critical=cond)]


def test_the_performance_rule_fires_on_concept_drift_and_the_gate_holds_small_windows():
    ref = _reference()
    # concept drift: labels flip, features do not move
    x, s, y, _, _ = _data(3000, seed=13, flip=True)
    m = Monitor(ref, features=["x"], prediction="score", label="y", window=1000, rules=_rule())
    m.update(pa.table({"x": x, "score": s, "y": y}))
    reps = m.reports()
    assert all(r.alerts and r.alerts[0].state == "firing" for r in reps[:1])
    assert reps[0].concept == "performance loss without data drift"
    assert reps[0].alerts[0].observed["performance:roc_auc:delta"] < -0.5
    # the same drift in windows of 100 labels: held by the sample-size gate
    small = Monitor(ref, features=["x"], prediction="score", label="y", window=100, rules=_rule())
    small.update(pa.table({"x": x, "score": s, "y": y}))
    assert all(not r.alerts for r in small.reports())
    assert all(r.concept == "" for r in small.reports())  # too few labels to tell
    # data drift without performance loss: x shifts, labels follow the score
    x2, s2, y2, _, _ = _data(3000, seed=14)
    shifted = x2 + 1.5
    s3 = 1 / (1 + np.exp(-2 * shifted))
    y3 = (np.random.default_rng(15).random(3000) < s3).astype(np.int64)
    dd = Monitor(ref, features=["x"], prediction="score", label="y", window=1000, rules=_rule())
    dd.update(pa.table({"x": shifted, "score": s3, "y": y3}))
    assert not any(r.alerts for r in dd.reports())
    assert dd.reports()[0].concept == "data drift without performance loss"


def test_label_coverage_and_delay_rules():
    n = 4000  # 40 s of predictions: the first window (50 s) stays open until the labels are in
    x, s, y, ids, t = _data(n, seed=16)
    rules = [dict(name="coverage", owner="ml", runbook="rb", critical=dict(signal="label_coverage", op="<",
                                                                          threshold=0.5)),
             dict(name="delay", owner="ml", runbook="rb", critical=dict(signal="label_delay", quantile=0.5,
                                                                       threshold=20.0, min_labels=100))]
    m = _time_monitor(_reference(), rules=rules)
    third = np.arange(0, n, 3)  # a third labelled, 30 s late, before the window closes
    m.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    m.update_labels(pa.table({"rid": ids[third], "y": y[third], "t": t[third] + 30}))
    m.update(pa.table({"x": [0.0], "score": [0.5], "rid": ["z"], "t": [1000.0]}))
    r = m.reports()[0]
    assert r.label_coverage == pytest.approx(third.size / n)
    assert {a.rule for a in r.alerts} == {"coverage", "delay"}
    held = _time_monitor(_reference(), rules=[dict(rules[1], critical=dict(rules[1]["critical"], min_labels=2000))])
    held.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    held.update_labels(pa.table({"rid": ids[third], "y": y[third], "t": t[third] + 30}))
    held.update(pa.table({"x": [0.0], "score": [0.5], "rid": ["z"], "t": [1000.0]}))
    assert not held.reports()[0].alerts
    with pytest.raises(InvalidInputError, match="metric"):
        fastdrift.alerts.load_rules(_rule(metric="auc"))
    with pytest.raises(InvalidInputError, match="min_labels"):
        fastdrift.alerts.load_rules([dict(name="x", owner="o", runbook="r",
                                          critical=dict(signal="error_rate", threshold=0.1, min_labels=3))])


def test_default_rules_watch_performance_with_a_label():
    m = Monitor(_reference(), features=["x"], prediction="score", label="y", window=1000)
    assert "performance-drop" in {r.name for r in m.evaluator.rules}


def test_settled_label_rules_evaluate_windows_revised_by_late_labels(tmp_path):
    n = 20_000  # 200 s at 100/s; windows of 50 s; labels 30-90 s after their predictions
    x, s, y, ids, t = _data(n, seed=17, flip=True)  # concept drift: the labels flip
    rules = _rule() + [dict(name="drift", owner="ml", runbook="rb",
                            warning=dict(signal="feature_drift", threshold=0.2))]

    def run(settle, save_at=None):
        m = _time_monitor(_reference(), rules=rules, labels={"settle": settle})
        delay = np.random.default_rng(18).uniform(30, 90, n)
        for lo in range(0, n, 1000):  # predictions and the labels due by then, as they arrive
            sl = slice(lo, lo + 1000)
            m.update(pa.table({"x": x[sl], "score": s[sl], "rid": ids[sl], "t": t[sl]}))
            now = t[sl][-1]
            due = (t + delay <= now) & (t + delay > now - 10)
            m.update_labels(pa.table({"rid": ids[due], "y": y[due], "t": (t + delay)[due]}))
            if save_at == lo:
                m.save(tmp_path / "m.ckpt")
                m = Monitor.load(tmp_path / "m.ckpt")
        return m

    at_close = run(0.0)
    assert not any(a.rule == "auc-drop" for r in at_close.reports() for a in r.alerts)  # too few labels at close
    assert at_close.reports()[0].label_counts["labelled"] > 1000  # revised since
    settled = run(100.0)
    reps = settled.reports()
    fired = [r for r in reps if any(a.rule == "auc-drop" and a.state == "firing" for a in r.alerts)]
    assert fired and fired[0].window_start == 0.0
    assert fired[0].alerts[-1].observed["performance:roc_auc:delta"] < -0.5
    assert not any(a.rule == "drift" for r in reps for a in r.alerts)  # no data drift
    assert any(a.rule == "auc-drop" for a in settled.alerts())
    resumed = run(100.0, save_at=9000)
    assert [[(a.rule, a.state) for a in r.alerts] for r in resumed.reports()] == \
        [[(a.rule, a.state) for a in r.alerts] for r in reps]
    with pytest.raises(InvalidInputError, match="settle"):
        Monitor(_reference(), features=["x"], prediction="score", label="y", window=100, labels={"settle": 5.0})


def test_label_settings_in_a_config_file_are_checked(tmp_path):
    from fastdrift.monitor import load_config
    p = tmp_path / "m.yaml"
    p.write_text("prediction: score\nlabel: y\nrequest_id: rid\nlabels: {horizon: 3600, sample_rate: 0.25}\n")
    cfg = load_config(p)
    assert (cfg.label, cfg.labels.horizon, cfg.labels.sample_rate) == ("y", 3600, 0.25)
    m = Monitor(_reference(), features=["x"], config=p, rules=[])
    assert m.ingest.labels is not None and m.ingest.labels.spec.sample_rate == 0.25
    for bad, key in (("labels: {horizon: 0}", "labels.horizon"), ("labels: {sample_rate: 2}", "labels.sample_rate"),
                     ("labels: {bogus: 1}", "labels.bogus"), ("labels: {max_predictions: 0}", "labels.max_predictions")):
        p.write_text(f"prediction: score\nlabel: y\n{bad}\n")
        with pytest.raises(InvalidInputError, match=key):
            load_config(p)
