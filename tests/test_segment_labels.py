"""Labels per segment: each segment's window report carries its own performance, label counts and
coverage, equal to an unsegmented monitor fed only that segment's rows (labels in the batch and
delayed labels joined by request id: the join store remembers each prediction's segment);
checkpoints and merges keep them exactly; segment performance rules fire per segment; a canary
comparison carries both arms' performance.  Oracles: unsegmented monitors and scikit-learn."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import roc_auc_score

from fastdrift import Monitor
from fastdrift.monitor.config import config_from_dict
from fastdrift.monitor.labels import LabelPane

ARMS = np.array(["stable", "canary", "dark"])
WINDOW = {"by": "time", "size": 50}


def _data(n, seed, canary_noise=False):
    rng = np.random.default_rng(seed)
    arm = ARMS[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    s = rng.random(n)
    y = (rng.random(n) < s).astype(np.int64)
    if canary_noise:  # the canary's scores carry no information: AUC about 0.5
        s = np.where(arm == "canary", rng.random(n), s)
    return {"x": rng.normal(size=n), "score": s, "y": y, "arm": arm,
            "rid": np.array([f"r{seed}-{i}" for i in range(n)]), "t": np.sort(rng.uniform(0, 200, n))}


def _ref():
    d = _data(4000, seed=99)
    d["t"] = d["t"] - 1000
    return pa.table(d)


def _monitor(ref, segmented=True, **kw):
    kw.setdefault("rules", [])
    kw.setdefault("window", WINDOW)
    if segmented:
        kw["segment_by"] = ["arm"]
    return Monitor(ref, features=["x"], prediction="score", label="y", request_id="rid", event_time="t", **kw)


def _table(d, rows=None, with_labels=True):
    rows = np.arange(len(d["t"])) if rows is None else rows
    cols = {k: d[k][rows] for k in ("x", "score", "arm", "rid", "t")}
    if with_labels:
        cols["y"] = d["y"][rows]
    return pa.table(cols)


def _same_labels(seg, one):
    """A segment report's label fields against an unsegmented monitor's report of the same rows."""
    assert dict(seg.label_counts) == dict(one.label_counts)
    assert seg.label_coverage == one.label_coverage
    assert set(seg.performance) == set(one.performance)
    for k, v in one.performance.items():
        assert seg.performance[k] == pytest.approx(v, rel=1e-12, abs=1e-15, nan_ok=True), k
    assert dict(seg.performance_ref) == pytest.approx(dict(one.performance_ref), rel=1e-12, nan_ok=True)
    assert set(seg.label_delay) == set(one.label_delay)  # t-digest quantiles: checked against numpy by the callers


def _delayed(m, d, labelled, delay):
    idx = np.random.default_rng(5).permutation(np.flatnonzero(labelled))
    for part in np.array_split(idx, 4):
        m.update_labels(pa.table({"rid": d["rid"][part], "y": d["y"][part], "t": d["t"][part] + delay[part]}))


def test_segment_labels_equal_an_unsegmented_monitor_fed_the_segment_rows():
    d = _data(12_000, seed=1)
    ref = _ref()
    n = len(d["t"])
    rng = np.random.default_rng(2)
    in_batch = rng.random(n) < 0.3  # a third labelled in the batch, most of the rest later by request id
    later = ~in_batch & (rng.random(n) < 0.8)
    delay = rng.exponential(20.0, n)
    y = np.where(in_batch, d["y"], -1)
    feed = _table(d, with_labels=False).append_column("y", pa.array(y, mask=~in_batch))
    m = _monitor(ref)
    m.update(feed)
    _delayed(m, d, later, delay)
    reps = m.reports()
    assert len(reps) == 3
    for a in ARMS:
        rows = d["arm"] == a
        one = _monitor(ref.filter(pa.compute.equal(ref["arm"], a)), segmented=False)
        one.update(feed.filter(pa.array(rows)))
        _delayed(one, {k: v for k, v in d.items()}, later & rows, delay)
        for r, o in zip(reps, one.reports(), strict=True):
            seg = r.segments[f"arm={a}"]
            assert seg.rows == o.rows
            _same_labels(seg, o)
            w = rows & (d["t"] >= r.window_start) & (d["t"] < r.window_end) & (in_batch | later)
            assert seg.performance["roc_auc"] == pytest.approx(roc_auc_score(d["y"][w], d["score"][w]), rel=1e-9)
            assert seg.label_counts["labelled"] == w.sum() > 0
            late = w & later  # delays of the labels joined by request id
            assert seg.label_delay["p50"] == pytest.approx(np.quantile(delay[late], 0.5), rel=0.03)
    # the segments add up to the whole
    for r in reps:
        assert sum(s.label_counts["labelled"] for s in r.segments.values()) == r.label_counts["labelled"]
        assert sum(s.label_counts["predicted"] for s in r.segments.values()) == r.label_counts["predicted"]


def test_checkpoint_with_pending_predictions_keeps_their_segments():
    d = _data(8000, seed=3)
    ref = _ref()
    n = len(d["t"])
    rng = np.random.default_rng(4)
    labelled = rng.random(n) < 0.7
    delay = rng.exponential(15.0, n)
    straight = _monitor(ref)
    straight.update(_table(d, with_labels=False))
    restored = Monitor.from_bytes(straight.to_bytes())
    assert restored.ingest.labels.segment_keys == straight.ingest.labels.segment_keys
    for m in (straight, restored):
        _delayed(m, d, labelled, delay)
    a, b = straight.reports(), restored.reports()
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        assert set(ra.segments) == set(rb.segments) == {f"arm={x}" for x in ARMS}
        for key in ra.segments:
            _same_labels(rb.segments[key], ra.segments[key])
            assert ra.segments[key].label_counts["labelled"] > 0


def test_merged_monitors_pool_segment_labels_exactly():
    d = _data(6000, seed=6)
    ref = _ref()
    rows = np.arange(len(d["t"]))
    whole, left, right = _monitor(ref), _monitor(ref), _monitor(ref)
    whole.update(_table(d))
    left.update(_table(d, rows[rows % 2 == 0]))
    right.update(_table(d, rows[rows % 2 == 1]))
    merged = left.merge(right)
    for ra, rb in zip(whole.snapshot().segments.values(), merged.snapshot().segments.values()):
        _same_labels(rb, ra)
        assert ra.label_counts["labelled"] > 0


def test_segment_performance_rules_fire_per_segment_and_canary_comparison_has_both_arms():
    d = _data(12_000, seed=8, canary_noise=True)
    rule = {"name": "auc-floor", "owner": "ml", "runbook": "rb", "signal": "performance", "metric": "roc_auc",
            "warning": {"threshold": 0.65, "op": "<"}, "min_labels": 100, "segments": "*"}
    m = _monitor(_ref(), rules=[rule])
    m.update(_table(d))
    alerts = [a for a in m.alerts() if a.rule == "auc-floor"]
    fired = {a.segment for a in alerts if a.state == "firing"}
    assert fired == {"arm=canary"}
    c = m.compare_segments("arm=stable", "arm=canary", min_rows=100)
    r = m.reports()[-1]
    assert c.performance["a"]["roc_auc"] == r.segments["arm=stable"].performance["roc_auc"] > 0.75
    assert c.performance["b"]["roc_auc"] == r.segments["arm=canary"].performance["roc_auc"] < 0.6


# -- the label pane's segments: merge and bytes ---------------------------------------------------

def _pane_config():
    return config_from_dict({"features": ["x"], "prediction": "score", "label": "y", "segment_by": ["arm"],
                             "task": "binary"})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["arm=a", "arm=b", "<other>"]), st.floats(0, 1), st.integers(0, 1)),
                max_size=60), st.integers(1, 4))
def test_label_pane_segments_merge_exactly_and_round_trip(rows, parts):
    cfg = _pane_config()
    whole = LabelPane(cfg)
    pieces = [LabelPane(cfg) for _ in range(parts)]
    for i, (key, s, y) in enumerate(rows):
        for lp in (whole, pieces[i % parts]):
            lp.add(np.array([s]), np.array([float(y)]), np.array([1.0]))
            lp.segment(key, cfg).add(np.array([s]), np.array([float(y)]), np.array([1.0]))
            lp.segment(key, cfg).predicted += 1
            lp.predicted += 1
    merged = LabelPane(cfg)
    for p in pieces:
        merged.merge(LabelPane.from_bytes(p.to_bytes(), cfg))
    assert set(merged.segments) == set(whole.segments)
    for key, sp in whole.segments.items():
        assert merged.segments[key].predicted == sp.predicted
        assert merged.segments[key].perf.labelled == sp.perf.labelled
        assert np.array_equal(merged.segments[key].perf.to_bytes(), sp.perf.to_bytes()) or \
            merged.segments[key].perf.labelled == sp.perf.labelled
    back = LabelPane.from_bytes(whole.to_bytes(), cfg)
    assert back.to_bytes() == whole.to_bytes()


def test_label_store_packs_segments_and_loads_a_store_written_without():
    from fastdrift.errors import InvalidInputError
    from fastdrift.monitor.labels import LabelStore
    base = {"features": ["x"], "prediction": "score", "label": "y", "request_id": "rid", "task": "binary"}
    plain_cfg, seg_cfg = config_from_dict(base), config_from_dict({**base, "segment_by": ["arm"]})
    plain = LabelStore(plain_cfg)
    plain.remember(["a", "b"], np.array([0.2, 0.9]), -7, np.zeros(2))
    st = LabelStore(seg_cfg)
    st.load(plain.to_bytes())  # predictions remembered without a segment keep their panes
    pn, sc, lb, dl, sh, seg = st.join(["a", "b"], np.array([0.0, 1.0]), np.ones(2, bool), np.ones(2))
    assert pn.tolist() == [-7, -7] and sc.tolist() == [0.2, 0.9] and (seg >= len(st.segment_keys)).all()
    st.remember(["c", "d", "e"], np.array([0.1, 0.2, 0.3]), -3, np.zeros(3), segment="arm=x")
    st.remember(["f"], np.array([0.4]), 5, np.zeros(1), segment="arm=y")
    back = LabelStore(seg_cfg)
    back.load(st.to_bytes())
    assert back.segment_keys == ["arm=x", "arm=y"]
    pn, sc, lb, dl, sh, seg = back.join(["f", "e", "c"], np.ones(3), np.ones(3, bool), np.ones(3))
    assert pn.tolist() == [5, -3, -3] and [back.segment_keys[c] for c in seg] == ["arm=y", "arm=x", "arm=x"]
    with pytest.raises(InvalidInputError, match="out of the range"):
        st.remember(["g"], np.array([0.5]), 1 << 50, np.zeros(1), segment="arm=x")


def test_settled_segment_performance_rules_read_delayed_labels():
    d = _data(12_000, seed=8, canary_noise=True)
    rule = {"name": "auc-floor", "owner": "ml", "runbook": "rb", "signal": "performance", "metric": "roc_auc",
            "warning": {"threshold": 0.65, "op": "<"}, "min_labels": 100, "segments": "*"}
    m = _monitor(_ref(), rules=[rule], labels={"settle": 20})
    m.update(_table(d, with_labels=False))  # windows up to 150 s settle before any label: no alert
    m.update_labels(pa.table({"rid": d["rid"], "y": d["y"], "t": d["t"] + 5}))
    m.update(pa.table({"x": [0.0], "score": [0.5], "arm": ["stable"], "rid": ["last"], "t": [400.0]}))
    by_start = {r.window_start: r for r in m.reports()}
    assert all(not by_start[s].alerts for s in (0.0, 50.0, 100.0))
    fired = [(a.rule, a.segment, a.state) for a in by_start[150.0].alerts]
    assert fired == [("auc-floor", "arm=canary", "firing")]
    assert by_start[150.0].segments["arm=canary"].label_counts["labelled"] > 800


@pytest.mark.parametrize("window", [{"by": "time", "size": 50}, {"by": "time", "size": 60, "slide": 20}])
def test_segment_label_state_is_byte_identical_to_an_unsegmented_monitor(window):
    """Fed the same label batches (each filtered to the segment's rows, in the same order), a
    segment's closed-window label delays and performance are the unsegmented monitor's, byte for byte."""
    d = _data(9_000, seed=4)
    ref = _ref()
    n = len(d["t"])
    rng = np.random.default_rng(6)
    in_batch = rng.random(n) < 0.3
    later = ~in_batch & (rng.random(n) < 0.8)
    delay = rng.exponential(20.0, n)
    feed = _table(d, with_labels=False).append_column("y", pa.array(np.where(in_batch, d["y"], -1), mask=~in_batch))
    parts = np.array_split(rng.permutation(np.flatnonzero(later)), 4)
    labels = [pa.table({"rid": d["rid"][p], "y": d["y"][p], "t": d["t"][p] + delay[p]}) for p in parts]
    arm_of = dict(zip(d["rid"].tolist(), d["arm"].tolist()))

    def closed(m, batches, label_batches):
        got = []
        m.ingest.on_sketches = lambda c: got.extend((s, e, ws.labels) for s, e, ws, _ in c)
        for b in batches:
            m.update(b)
        for lb in label_batches:
            m.update_labels(lb)
        m.update(pa.table({k: pa.array([v], feed.schema.field(k).type) for k, v in
                           dict(x=0.0, score=0.5, arm="stable", rid="last", t=1e4, y=None).items()}))
        return {(s, e): lp for s, e, lp in got}

    seg = closed(_monitor(ref, window=window), [feed], labels)
    checked = 0
    for a in ARMS:
        mine = pa.array([arm_of[r] == a for r in d["rid"].tolist()])
        one = closed(_monitor(ref.filter(pa.compute.equal(ref["arm"], a)), segmented=False, window=window),
                     [feed.filter(mine)],
                     [lb.filter(pa.array([arm_of[r] == a for r in lb["rid"].to_pylist()])) for lb in labels])
        for key, lp in one.items():
            sp = seg[key].segments.get(f"arm={a}")
            if lp.predicted == 0:
                continue
            assert sp.delay.to_bytes() == lp.delay.to_bytes()
            assert sp.perf.to_bytes() == lp.perf.to_bytes()
            checked += 1
    assert checked >= 6
