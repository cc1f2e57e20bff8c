"""Mutation fuzzing of every serialized kind: sketches, profiles, ``.fdp`` files, monitor checkpoints
and alert-evaluator state.

Used by tests/test_fuzz_state.py (a short deterministic run) and bench/fuzz_state.py (the long run).

Each round takes a seed blob of one kind (real state written by this fastdrift, plus the golden files
of older layouts), mutates it and decodes it.  Mutations: bit flips, byte sets, truncations,
extensions, splices with another blob, edits of fields that hold a length (a u64 whose value fits in
the bytes that follow) and of count fields (large values written as a u64 or a uvarint).  Three modes:

* ``raw``: the mutated bytes as they are (the checksum catches almost all of it);
* ``crc``: the outer envelope's params or payload mutated and re-wrapped with a valid checksum;
* ``deep``: one envelope nested anywhere inside (a sketch in a profile in a checkpoint...) mutated
  and put back with every enclosing length prefix, envelope length and checksum repaired, so the
  innermost parsers see damaged bytes behind valid framing.

Outcomes: ``rejected`` (CorruptStateError), ``refused`` (another FastDriftError at decode),
``ok`` (decoded and :func:`exercise` passed), ``use_error`` (decoded; a use raised a FastDriftError,
which the contract allows), ``misbehaved`` (decoded; an invariant or a round trip failed),
``crashed`` (an exception outside FastDriftError), ``hung`` (over the time limit).
"""
from __future__ import annotations

import json
import pathlib
import struct
import time
import traceback
import zlib
from collections import Counter
from typing import Callable, Dict, List, Tuple

import numpy as np
import pyarrow as pa

import fastdrift
from fastdrift import codec
from fastdrift.errors import CorruptStateError, CountOverflowError, FastDriftError

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden"
KINDS = ("histogram", "moments", "categorical", "tdigest", "binary_performance", "row_sample", "profile", "fdp",
         "checkpoint", "alert_state", "spool_reference", "spool_pane", "label_store", "multiclass_performance",
         "regression_performance", "segmented_profile")
OUTCOMES = ("rejected", "refused", "ok", "use_error", "misbehaved", "crashed", "hung")
BAD = ("misbehaved", "crashed", "hung")
_HEADER = struct.Struct("<4sHHHIQ")


class Misbehaved(AssertionError):
    """A decoded object broke an invariant or a round trip."""


def check(cond, what: str) -> None:
    if not cond:
        raise Misbehaved(what)


# -- seeds ---------------------------------------------------------------------------------------------

def _table(n: int, seed: int, shift: float = 0.0, t0: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.03] = np.nan
    return pa.table({
        "x": pa.array(x, mask=rng.random(n) < 0.05), "k": rng.integers(0, 7, n),
        "c": pa.array(rng.choice(["a", "b", "c", "dé"], n), mask=rng.random(n) < 0.05),
        "score": rng.random(n), "lat": rng.exponential(15, n), "err": rng.random(n) < 0.05,
        "rid": pa.array([f"r{seed}-{i}" for i in range(n)]), "ts": t0 + np.arange(n) / 50.0,
    })


def _rules():
    from fastdrift.alerts import load_rules
    return load_rules([dict(name="psi", signal="feature_drift", metric="psi", warning=0.1, critical=0.2,
                            owner="ml-team", runbook="https://runbooks.example/psi", resolve_after=2)])


def _report(i: int, value: float):
    from fastdrift.records import DriftSignal, WindowReport, frozen_mapping
    sig = DriftSignal("x", "numeric", "psi", value, 100, 100, 0.0, 0.0, pvalue=0.001)
    return WindowReport(window_start=float(i), window_end=float(i + 1), closed=True, rows=100,
                        features=frozen_mapping({"x": sig}))


def seeds() -> Dict[str, List[bytes]]:
    """Seed blobs of every kind (deterministic)."""
    from fastdrift.alerts import AlertEvaluator
    from fastdrift.profilefile import ProfileFile
    from fastdrift.sketches.sample import RowSample

    t = _table(400, 0)
    out: Dict[str, List[bytes]] = {k: [] for k in KINDS}
    h = fastdrift.Histogram.from_reference(t.column("x"), bins=6)
    out["histogram"] += [h.to_bytes(), fastdrift.Histogram([0.0]).to_bytes()]
    out["moments"] += [fastdrift.Moments().update(t.column("x")).to_bytes(), fastdrift.Moments().to_bytes()]
    out["categorical"] += [fastdrift.Categorical().update(t.column("c")).to_bytes(),
                           fastdrift.Categorical(3).update(t.column("k")).to_bytes(),
                           fastdrift.Categorical().update(t.column("err")).to_bytes(),
                           fastdrift.Categorical().update(pa.nulls(3)).to_bytes()]
    td = fastdrift.TDigest(20).update(t.column("x"))
    out["tdigest"] += [td.to_bytes(), fastdrift.TDigest(50).update(np.repeat([1.0, 2.0, 5.0], 40)).to_bytes(),
                       fastdrift.TDigest().to_bytes(), (GOLDEN / "codec_v1_tdigest.bin").read_bytes()]
    rng = np.random.default_rng(4)
    sc, lab = rng.random(300), rng.random(300) < 0.4
    bp = fastdrift.BinaryPerformance
    out["binary_performance"] += [
        bp().update(np.round(sc, 1), lab).to_bytes(),  # exact table
        bp(bins=4, exact=8).update(sc, pa.array(lab, mask=np.arange(300) % 7 == 0), rng.random(300)).to_bytes(),
        bp(scores="margin", bins=2).update(rng.normal(0, 3, 300), lab).to_bytes(),
        bp().update(np.array([0.5, np.nan, 2.0]), np.array([1, 0, 3])).to_bytes(), bp().to_bytes()]
    rs = RowSample(["x", "c"], rate=0.5, max_rows=5, seed=3, hash=["c"], salt="s")
    rs.update(t.slice(0, 50).to_batches()[0], rs.keys(0, 50))
    out["row_sample"] += [rs.to_bytes(), RowSample().to_bytes()]
    p = fastdrift.profile(t.select(["x", "k", "c", "score"]))
    out["profile"] += [p.to_bytes(), fastdrift.profile(t.select(["x", "c"]), tdigest=False).to_bytes(),
                       (GOLDEN / "profile_v1.bin").read_bytes()]
    labelled = t.select(["x", "c", "score"]).append_column("y", pa.array(rng.random(400) < 0.5))
    out["profile"].append(fastdrift.profile(labelled, label="y", prediction="score").to_bytes())  # performance
    seg = fastdrift.profile(t.select(["x", "c", "k"]), segment_by=["k"], max_segments=4)  # with <other>
    out["segmented_profile"] += [
        seg.to_bytes(), fastdrift.profile(t.select(["x", "c", "k"]).slice(0, 50), reference=seg).to_bytes(),
        fastdrift.profile(labelled, label="y", prediction="score", segment_by="c").to_bytes()]
    out["fdp"] += [ProfileFile(p, {n: str(t.schema.field(n).type) for n in t.schema.names},
                               [(5, {"x": 1.5, "c": "a"}), (9, {"x": None, "c": "b"})]).to_bytes(),
                   (GOLDEN / "profile_file_v1.bin").read_bytes()]
    m = fastdrift.Monitor(_table(500, 1), features=["x", "c"], prediction="score", latency="lat", error="err",
                          request_id="rid", event_time="ts", window={"by": "time", "size": 4, "slide": 2},
                          evidence={"rate": 0.2, "max_rows": 3, "hash": ["rid"]})  # default rules
    for i in range(3):
        m.update(_table(120, 10 + i, shift=2.0, t0=2.0 * i))
    out["checkpoint"].append(m.to_bytes())
    m2 = fastdrift.Monitor(_table(300, 2), features=["x", "k"], window=100, rules=[])
    m2.update(_table(250, 3))
    out["checkpoint"].append(m2.to_bytes())
    out["checkpoint"] += [(GOLDEN / f"monitor_checkpoint_{n}.bin").read_bytes() for n in ("layout1", "layout2", "labels")]
    out["checkpoint"] += [_shadow_seed(), _shadow_seed(segment_by=["k"])]
    seg_rule = {"name": "seg-drift", "owner": "o", "runbook": "r", "signal": "feature_drift", "warning": 0.05,
                "for": 2, "segments": "*"}
    m3 = fastdrift.Monitor(_table(400, 6), features=["x", "c"], prediction="score", latency="lat",
                           event_time="ts", window={"by": "time", "size": 2, "slide": 1}, segment_by=["k"],
                           max_segments=3, rules=[seg_rule])  # segmented panes, references and alert state
    for i in range(3):
        m3.update(_table(150, 30 + i, shift=1.0, t0=1.0 * i))
    out["checkpoint"].append(m3.to_bytes())
    out["alert_state"].append(m3.evaluator.to_bytes())
    ev = AlertEvaluator(_rules())
    for i, v in enumerate((0.5, 0.5, 0.01)):
        ev.evaluate(_report(i, v))
    out["alert_state"] += [ev.to_bytes(), AlertEvaluator(_rules()).to_bytes()] + \
        [(GOLDEN / f"alert_state_layout{n}.bin").read_bytes() for n in (1, 2)]
    out["spool_reference"], out["spool_pane"] = _spool_seeds()
    out["label_store"], labelled = _label_seeds()
    out["checkpoint"].append(labelled)
    labels = pa.array(["a", "b", "c", "dé"])
    rng = np.random.default_rng(4)
    pred, act = labels.take(rng.integers(0, 4, 60)), labels.take(rng.integers(0, 4, 60))
    out["multiclass_performance"] += [
        fastdrift.MulticlassPerformance().update(pred, act).to_bytes(),
        fastdrift.MulticlassPerformance(2).update(pred, act, rng.random(60)).to_bytes(),
        fastdrift.MulticlassPerformance().update(rng.integers(0, 3, 30), rng.integers(0, 3, 30)).to_bytes(),
        fastdrift.MulticlassPerformance().update([True, False, None], [True, True, False]).to_bytes(),
        fastdrift.MulticlassPerformance().to_bytes()]
    y = rng.normal(0, 1, 80)
    y[:5] = 0.0
    p = y + rng.normal(0, 0.3, 80)
    p[7] = np.nan
    out["regression_performance"] += [
        fastdrift.RegressionPerformance(compression=20).update(p, y).to_bytes(),
        fastdrift.RegressionPerformance().update(p, y, rng.random(80)).to_bytes(),
        fastdrift.RegressionPerformance().to_bytes()]
    return out


def _shadow_seed(segment_by=()) -> bytes:
    """A checkpoint of a monitor with a shadow prediction (labels in the batch and delayed ones
    waiting with their shadow scores) and the freshness signal; with ``segment_by``, its panes
    carry the label, segment, shadow and freshness trailers together."""
    t = _table(200, 8)
    alt = pa.array(np.clip(t.column("score").to_numpy() + 0.2, 0, 1), mask=np.arange(200) % 9 == 0)
    t = t.append_column("alt", alt).append_column("y", pa.array(np.arange(200) % 2, mask=np.arange(200) % 3 == 0))
    m = fastdrift.Monitor(_table(300, 7), features=["x"], prediction="score", shadow_prediction="alt", label="y",
                          request_id="rid", event_time="ts", window={"by": "time", "size": 2}, freshness={"sla": 1.0},
                          clock=lambda: 5.0, rules=[], segment_by=segment_by)
    m.update(t)
    m.update_labels(t.select(["rid", "ts"]).append_column("y", pa.array(np.arange(200) % 2)).slice(0, 40))
    return m.to_bytes()


_LABELS: dict = {}  # the config the label store seeds were written with


def _label_seeds():
    """Join stores of a monitor with delayed labels (some joined, some late, some waiting), and its
    checkpoint."""
    t = _table(400, 6)
    ref = t.append_column("y", pa.array((np.arange(400) % 3 == 0).astype(np.int64))).select(["x", "score", "y"])
    m = fastdrift.Monitor(ref, features=["x"], prediction="score", label="y", request_id="rid", event_time="ts",
                          window={"by": "time", "size": 2}, labels={"horizon": 3.0}, rules=[])
    empty = m.ingest.label_state()
    m.update(_table(300, 30))
    lab = _table(300, 30).select(["rid", "ts"]).append_column("y", pa.array(np.arange(300) % 2))
    m.update_labels(lab.slice(0, 150))
    m.update_labels(lab.slice(200, 50).set_column(1, "ts", pa.array(np.full(50, 100.0))))
    _LABELS["config"] = m.config
    return [m.ingest.label_state(), empty], m.to_bytes()


_SPOOL: dict = {}  # the seed spool's reference and config: what a pane file is decoded against


def _spool_seeds():
    """A spool written by two real publishers: its reference file and its pane files."""
    import pathlib
    import tempfile
    from fastdrift.monitor.spool import REFERENCE, Store, read_reference
    with tempfile.TemporaryDirectory() as d:
        for i in range(2):
            m = fastdrift.Monitor(_table(300, 5), features=["x", "c"], prediction="score", latency="lat",
                                  error="err", event_time="ts", window={"by": "time", "size": 4, "slide": 2},
                                  rules=[], spool=d, process_id=f"w{i}", flush_interval=0)
            m.update(_table(200, 20 + i, shift=1.0, t0=0.5 * i))
            m.close()
        _SPOOL["ref"], _SPOOL["config"] = read_reference(Store(d))
        root = pathlib.Path(d)
        panes = [p.read_bytes() for p in sorted((root / "panes").iterdir())][:6]
        return [(root / REFERENCE).read_bytes()], panes


class _OneFile:
    """A spool store holding one reference file (what :func:`read_reference` reads)."""

    where = "fuzz"

    def __init__(self, blob: bytes):
        self.blob = blob

    def get(self, rel: str):
        return self.blob


def _decode_pane(blob: bytes):
    from fastdrift import codec
    from fastdrift.monitor.signals import WindowSketch
    from fastdrift.monitor.spool import PaneFile
    _, params, payload = codec.decode(blob, expected_kind=codec.Kind.SPOOL_PANE)
    r = codec.Reader(params, "spool pane")
    header = r.json()
    r.done()
    if not isinstance(header, dict):
        raise CorruptStateError("spool pane: header is not a JSON object")
    f = PaneFile(header, payload)
    return WindowSketch.from_bytes(f.sketch_bytes, _SPOOL["ref"], _SPOOL["config"])


# -- decoding and use ----------------------------------------------------------------------------------

_SKETCHES = {"histogram": fastdrift.Histogram, "moments": fastdrift.Moments, "categorical": fastdrift.Categorical,
             "tdigest": fastdrift.TDigest, "binary_performance": fastdrift.BinaryPerformance,
             "multiclass_performance": fastdrift.MulticlassPerformance,
             "regression_performance": fastdrift.RegressionPerformance}
_PAIRED = (fastdrift.MulticlassPerformance, fastdrift.RegressionPerformance)  # update(predictions, actuals)


def decode(kind: str, blob: bytes):
    if kind in _SKETCHES:
        return _SKETCHES[kind].from_bytes(blob)
    if kind == "row_sample":
        from fastdrift.sketches.sample import RowSample
        return RowSample.from_bytes(blob)
    if kind in ("profile", "segmented_profile"):
        return fastdrift.Profile.from_bytes(blob)
    if kind == "fdp":
        from fastdrift.profilefile import ProfileFile
        return ProfileFile.from_bytes(blob)
    if kind == "checkpoint":
        return fastdrift.Monitor.from_bytes(blob)
    if kind == "alert_state":
        from fastdrift.alerts import AlertEvaluator
        return AlertEvaluator.from_bytes(blob, _rules())
    if kind == "spool_reference":
        from fastdrift.monitor.spool import read_reference
        return read_reference(_OneFile(blob))
    if kind == "spool_pane":
        return _decode_pane(blob)
    if kind == "label_store":
        from fastdrift.monitor.labels import LabelStore
        st = LabelStore(_LABELS["config"])
        st.load(blob)
        return st
    raise ValueError(kind)


def _values_for(s):
    rng = np.random.default_rng(7)
    if isinstance(s, fastdrift.MulticlassPerformance):
        kt = s.key_type
        if kt == "int":
            return pa.array(rng.integers(-3, 3, 20)), pa.array(rng.integers(-3, 3, 20))
        if kt == "bool":
            return pa.array(rng.random(20) < 0.5), pa.array(rng.random(20) < 0.5)
        return pa.array(rng.choice(["a", "zz", "new"], 20)), pa.array(rng.choice(["a", "b", None], 20))
    if isinstance(s, fastdrift.RegressionPerformance):
        y = rng.normal(0, 2, 20)
        y[3] = np.nan
        return pa.array(y + 0.5), pa.array(y, mask=np.arange(20) == 5)
    if isinstance(s, fastdrift.Categorical):
        kt = s.key_type
        if kt == "int":
            return pa.array(rng.integers(-3, 3, 20))
        if kt == "bool":
            return pa.array(rng.random(20) < 0.5)
        return pa.array(rng.choice(["a", "zz", "new"], 20))
    x = rng.normal(0, 2, 20)
    x[3] = np.nan
    return pa.array(x, mask=np.arange(20) == 5)


def _empty_like(s):
    if isinstance(s, fastdrift.Histogram):
        return fastdrift.Histogram(s.edges)
    if isinstance(s, fastdrift.Categorical):
        return fastdrift.Categorical(s.max_categories, key_type=s.key_type)
    if isinstance(s, fastdrift.TDigest):
        return fastdrift.TDigest(s.compression)
    if isinstance(s, fastdrift.Moments):
        return fastdrift.Moments()
    if isinstance(s, fastdrift.BinaryPerformance):
        return fastdrift.BinaryPerformance(scores=s.scores, bins=s.bins, exact=s.exact)
    if isinstance(s, fastdrift.MulticlassPerformance):
        return fastdrift.MulticlassPerformance(s.max_classes)
    if isinstance(s, fastdrift.RegressionPerformance):
        return fastdrift.RegressionPerformance(compression=s.compression)
    s2 = s.copy()
    s2.rows = []
    return s2


def _round_trip(obj, decoder: Callable[[bytes], object], what: str) -> bytes:
    b = obj.to_bytes()
    again = decoder(b).to_bytes()
    check(again == b, f"{what}: to_bytes -> from_bytes -> to_bytes is not stable")
    return b


def _queries(s) -> None:
    """Read every answer a sketch gives; check what must hold."""
    cap = type(s).MAX_COUNT
    check(0 <= s.count <= cap, f"count {s.count} outside [0, {cap}]")
    if isinstance(s, fastdrift.Histogram):
        c = s.counts
        check((c >= 0).all() and int(c.sum()) + s.null_count + s.nan_count == s.count, "histogram counts")
        if int(c.sum()):
            v = fastdrift.psi(s, s)
            check(abs(v) < 1e-9, f"psi of a histogram with itself is {v}")
    elif isinstance(s, fastdrift.Categorical):
        c = s.counts
        check((c >= 0).all() and len(s.categories) == c.size <= s.max_categories, "categorical counts")
        check(int(c.sum()) + s.other_count + s.null_count == s.count, "categorical total")
        check(len(set(s.categories)) == len(s.categories), "duplicate categories")
        if int(c.sum()):
            check(abs(fastdrift.psi(s, s)) < 1e-9, "psi of a categorical with itself")
    elif isinstance(s, fastdrift.Moments):
        if s.n:
            check(s.min <= s.mean <= s.max or not np.isfinite(s.mean), "moments: mean outside [min, max]")
            v = s.variance()
            check(v >= 0 or np.isnan(v), f"moments: variance {v}")
    elif isinstance(s, fastdrift.BinaryPerformance):
        check(s.labelled + s.unlabelled + sum(s.rejected.values()) == s.count, "binary performance total")
        m = s.metrics()
        for k in ("roc_auc", "average_precision", "brier", "ece", "positive_rate", "prediction_rate",
                  "precision", "recall"):
            check(np.isnan(m[k]) or -1e-9 <= m[k] <= 1 + 1e-9, f"binary performance {k} = {m[k]}")
        check(np.isnan(m["log_loss"]) or m["log_loss"] >= 0, f"log loss {m['log_loss']}")
        if s.labelled and not s.weighted:
            check(m["tp"] + m["fp"] + m["tn"] + m["fn"] == s.labelled, "confusion counts add up")
        s.precision_at_k(5), s.recall_at_k(5), s.roc_curve(), s.estimate(), s.roc_auc_bound()
    elif isinstance(s, fastdrift.MulticlassPerformance):
        labels, cm = s.confusion_matrix(weighted=False)
        check(int(cm.sum()) == s.labelled and s.labelled + sum(s.rejected.values()) == s.count,
              "multiclass totals")
        check(len(s.classes) <= s.max_classes, "multiclass classes above the cap")
        m = s.metrics()
        check(s.labelled == 0 or 0 <= m["accuracy"] <= 1, f"multiclass accuracy {m['accuracy']}")
        s.per_class()
        s.confusion_matrix(weighted=True)
    elif isinstance(s, fastdrift.RegressionPerformance):
        m = s.metrics()
        check(s.labelled + sum(s.rejected.values()) == s.count, "regression totals")
        if s.labelled and not np.isnan(m["mae"]):
            check(m["mae"] >= 0 and m["rmse"] >= 0 and abs(m["bias"]) <= m["mae"] * (1 + 1e-12),
                  f"regression metrics {m}")
    elif isinstance(s, fastdrift.TDigest):
        q = s.quantile(np.array([0.0, 0.1, 0.5, 0.9, 1.0]))
        if s.n:
            check(bool(np.all(q[1:] >= q[:-1])), f"t-digest quantiles not monotone: {q}")
            check(s.min <= q[0] and q[-1] <= s.max,
                  f"t-digest quantiles {q} outside [min, max] = [{s.min}, {s.max}]")
            cdf = s.cdf(q)
            check(bool(np.all((cdf >= 0) & (cdf <= 1))), f"t-digest cdf outside [0, 1]: {cdf}")
            s.mean
            s.trimmed_mean(0.1, 0.9)
            fastdrift.ks_2samp(s, s)
            fastdrift.wasserstein(s, s)
        else:
            check(bool(np.isnan(q).all()), "an empty t-digest answers NaN")


def exercise_sketch(s) -> None:
    cls = type(s)
    b = _round_trip(s, cls.from_bytes, cls.__name__)
    _queries(s)
    n = s.count
    e = s.copy().merge(_empty_like(s))  # merging nothing changes nothing
    check(e.count == n, "merge with an empty sketch changed the count")
    if not isinstance(s, fastdrift.TDigest):
        check(e.to_bytes() == b, "merge with an empty sketch changed the state")
    try:
        d = s.copy().merge(s)
        if type(s).__name__ != "RowSample":
            check(d.count == 2 * n, f"merge with itself: count {d.count}, expected {2 * n}")
        _queries(d)
        _round_trip(d, cls.from_bytes, cls.__name__ + " merged with itself")
    except CountOverflowError:
        check(2 * n > cls.MAX_COUNT, "CountOverflowError below the cap")
    if type(s).__name__ == "RowSample":
        return
    vals = _values_for(s)
    try:
        u = s.copy().update(*vals) if isinstance(s, _PAIRED) else s.copy().update(vals)
        check(u.count == n + len(vals[0] if isinstance(s, _PAIRED) else vals), "update did not count every value")
        _queries(u)
        _round_trip(u, cls.from_bytes, cls.__name__ + " updated")
    except CountOverflowError:
        check(n + len(vals[0] if isinstance(s, _PAIRED) else vals) > cls.MAX_COUNT,
              "CountOverflowError below the cap")
        check(s.to_bytes() == b, "a refused update changed the sketch")


def exercise_profile(p) -> None:
    _round_trip(p, fastdrift.Profile.from_bytes, "Profile")
    for cp in p.columns.values():
        for s in cp.sketches():
            _queries(s)
    if p.performance is not None:
        _queries(p.performance.sketch)
    try:
        p.copy().merge(p)
    except CountOverflowError:
        pass
    e = p.copy().merge(p.empty_like())
    check(e.rows == p.rows, "merge with an empty profile changed rows")
    fastdrift.compare_profiles(p, p)
    if p.segment_by:
        check(sum(s.rows for s in p.segments.values()) == p.rows, "segments' rows are not the whole's")
        check(list(e.segments) == list(p.segments), "merge with an empty profile changed the segments")
        for s in p.segments.values():
            fastdrift.compare_profiles(p, s)


def exercise_monitor(m) -> None:
    b = _round_trip(m, fastdrift.Monitor.from_bytes, "Monitor")
    check(fastdrift.Monitor.from_bytes(b).to_bytes() == b, "checkpoint not stable")
    m.snapshot()
    t = _table(40, 99, t0=1.0)
    m.update(t)
    m.flush()
    m.reports()
    m.alerts()
    m.promotion_allowed()
    _round_trip(m, fastdrift.Monitor.from_bytes, "Monitor after update")


def exercise_evaluator(ev) -> None:
    from fastdrift.alerts import AlertEvaluator
    _round_trip(ev, lambda b: AlertEvaluator.from_bytes(b, _rules()), "AlertEvaluator")
    ev.active()
    ev.promotion_allowed()
    ev.preview(_report(1000, 0.7))
    for i in range(3):
        ev.evaluate(_report(2000 + i, 0.7 if i < 2 else 0.0))
    _round_trip(ev, lambda b: AlertEvaluator.from_bytes(b, _rules()), "AlertEvaluator after evaluate")


def exercise(kind: str, obj) -> None:
    if kind in _SKETCHES or kind == "row_sample":
        exercise_sketch(obj)
    elif kind in ("profile", "segmented_profile"):
        exercise_profile(obj)
    elif kind == "fdp":
        from fastdrift.profilefile import ProfileFile
        _round_trip(obj, ProfileFile.from_bytes, "ProfileFile")
        exercise_profile(obj.profile)
    elif kind == "checkpoint":
        exercise_monitor(obj)
    elif kind == "spool_reference":
        ref, config = obj
        exercise_monitor(fastdrift.Monitor(ref.profile, config=config, rules=[]))
    elif kind == "spool_pane":
        exercise_pane(obj)
    elif kind == "label_store":
        exercise_label_store(obj)
    else:
        exercise_evaluator(obj)


def exercise_label_store(st) -> None:
    from fastdrift.monitor.labels import LabelStore
    b = st.to_bytes()
    again = LabelStore(_LABELS["config"])
    again.load(b)
    check(again.to_bytes() == b, "label store round trip")
    check(st.live <= st.spec.max_predictions and st.live == int(((st.flag == 1) | (st.flag == 2)).sum()),
          "label store live count")
    ids = pa.array([f"r30-{i}" for i in range(300)])
    st.join(ids, np.ones(300), np.ones(300, bool), np.full(300, 10.0))
    check(sum(st.counts[k] for k in ("joined", "unmatched", "late", "duplicate")) -
          sum(again.counts[k] for k in ("joined", "unmatched", "late", "duplicate")) == 300, "label join counts")


def exercise_pane(ws) -> None:
    from fastdrift.monitor.signals import WindowSketch, build_report
    ref, config = _SPOOL["ref"], _SPOOL["config"]
    _round_trip(ws, lambda b: WindowSketch.from_bytes(b, ref, config), "WindowSketch")
    merged = WindowSketch(ref, config).merge(ws)
    try:
        merged.merge(ws)
    except CountOverflowError:
        pass
    check(ws.rows >= 0, f"pane rows {ws.rows}")
    build_report(ws, 0.0, 4.0, True, 4.0)


# -- mutation ------------------------------------------------------------------------------------------

_BIG = [0, 1, 2, 7, 255, 2**31, 2**32 - 1, 2**32, 2**53, 2**53 + 1, 2**62 - 1, 2**62, 2**62 + 1, 2**63 - 1,
        2**63, 2**64 - 1]


def _uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _length_fields(b: bytes) -> List[int]:
    """Offsets of u64 values that could be a length or count (value <= bytes after it)."""
    n = len(b)
    if n < 8:
        return []
    arr = np.frombuffer(b, dtype=np.uint8)
    idx = np.arange(n - 7)
    lo = np.zeros(idx.size, np.uint64)
    for k in range(8):
        lo |= arr[idx + k].astype(np.uint64) << np.uint64(8 * k)
    ok = (lo > 0) & (lo <= np.uint64(n)) & (lo <= (np.uint64(n) - idx.astype(np.uint64)))
    return np.flatnonzero(ok).tolist()


_ODD = [None, True, -1, 0, 1, 2**63, 2**64, -(2**63) - 1, 1e308, float("nan"), float("inf"), "", "X", "dé",
        [], {}, [[]], {"@": "Alert"}]


def _json_docs(b: bytes) -> List[Tuple[int, int]]:
    """(offset of the u64 length, length) of the JSON documents written by Writer.json inside ``b``."""
    out = []
    for i in _length_fields(b):
        v = int.from_bytes(b[i:i + 8], "little")
        if b[i + 8:i + 9] in (b"{", b"[", b'"') and i + 8 + v <= len(b):
            try:
                json.loads(b[i + 8:i + 8 + v])
            except ValueError:
                continue
            out.append((i, v))
    return out


def _mutate_json(rng: np.random.Generator, doc):
    """``doc`` with one node replaced, deleted, renamed or duplicated."""
    if not isinstance(doc, (dict, list)) or not doc or rng.random() < 0.15:
        return _ODD[int(rng.integers(0, len(_ODD)))]
    if isinstance(doc, dict):
        keys = list(doc)
        k = keys[int(rng.integers(0, len(keys)))]
        r = rng.random()
        if r < 0.1:
            return {kk: v for kk, v in doc.items() if kk != k}
        if r < 0.2:
            return {(kk + "X" if kk == k else kk): v for kk, v in doc.items()}
        return {**doc, k: _mutate_json(rng, doc[k])}
    i = int(rng.integers(0, len(doc)))
    r = rng.random()
    if r < 0.1:
        return doc[:i] + doc[i + 1:]
    if r < 0.2:
        return doc[:i] + [doc[i]] + doc[i:]
    return doc[:i] + [_mutate_json(rng, doc[i])] + doc[i + 1:]


def mutate_bytes(rng: np.random.Generator, b: bytes, pool: List[bytes]) -> Tuple[str, bytes]:
    """One random mutation of ``b`` (``pool``: other blobs to splice from)."""
    out = bytearray(b)
    op = rng.choice(["bitflip", "byteset", "truncate", "extend", "splice", "length", "count", "uvarint", "json"],
                    p=[0.11, 0.1, 0.1, 0.06, 0.08, 0.17, 0.12, 0.08, 0.18])
    n = len(out)
    if op == "json":
        docs = _json_docs(b)
        if not docs:
            op = "bitflip"
        else:
            i, v = docs[int(rng.integers(0, len(docs)))]
            new = json.dumps(_mutate_json(rng, json.loads(b[i + 8:i + 8 + v]))).encode()
            out = out[:i] + bytearray(len(new).to_bytes(8, "little") + new) + out[i + 8 + v:]
            ends = {i + 8 + v}
            for j in sorted(_length_fields(b), reverse=True):  # blobs that end with it (a window sketch's
                w = int.from_bytes(b[j:j + 8], "little")        # evidence), and the blobs that end with those
                if j + 8 <= i and j + 8 + w in ends:
                    out[j:j + 8] = (w + len(new) - v).to_bytes(8, "little")
    if op == "bitflip" and n:
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(0, n))
            out[i] ^= 1 << int(rng.integers(0, 8))
    elif op == "byteset" and n:
        for _ in range(int(rng.integers(1, 5))):
            out[int(rng.integers(0, n))] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
    elif op == "truncate":
        del out[int(rng.integers(0, n + 1)):]
    elif op == "extend":
        out += rng.integers(0, 256, int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    elif op == "splice":
        other = pool[int(rng.integers(0, len(pool)))]
        i, j = int(rng.integers(0, n + 1)), int(rng.integers(0, len(other) + 1))
        out = out[:i] + bytearray(other[j:])
    elif op == "length":
        fields = _length_fields(bytes(out))
        if fields:
            i = fields[int(rng.integers(0, len(fields)))]
            v = int.from_bytes(out[i:i + 8], "little")
            nv = int(rng.choice([v - 1, v + 1, v * 2, v // 2, 0, n, n - i, 2**32, 2**63 - 1, 2**64 - 1])) % 2**64
            out[i:i + 8] = nv.to_bytes(8, "little")
    elif op == "count" and n >= 8:
        fields = _length_fields(bytes(out))
        i = fields[int(rng.integers(0, len(fields)))] if fields and rng.random() < 0.5 \
            else int(rng.integers(0, n - 7))
        v = int(rng.choice(_BIG)) if rng.random() < 0.8 else -int(rng.integers(1, 4))
        out[i:i + 8] = (v % 2**64).to_bytes(8, "little")
    elif op == "uvarint" and n:
        i = int(rng.integers(0, n))
        enc = _uvarint(int(rng.choice(_BIG[:14])))
        out[i:i + len(enc)] = enc
    return str(op), bytes(out)


def fix_checksums(b: bytes) -> bytes:
    """Recompute the CRC of every envelope inside ``b`` whose lengths fit (innermost first)."""
    out = bytearray(b)
    pos = []
    i = out.find(codec.MAGIC)
    while i >= 0:
        pos.append(i)
        i = out.find(codec.MAGIC, i + 1)
    for p in reversed(pos):
        if p + codec.MIN_SIZE > len(out):
            continue
        _, _, _, _, plen, ylen = _HEADER.unpack_from(out, p)
        end = p + codec.HEADER_SIZE + plen + ylen
        if end + 4 <= len(out):
            out[end:end + 4] = struct.pack("<I", zlib.crc32(memoryview(out)[p:end]))
    return bytes(out)


def _envelopes(b: bytes) -> List[Tuple[int, int]]:
    """(start, end) of every well-formed envelope inside ``b``."""
    out = []
    i = b.find(codec.MAGIC)
    while i >= 0:
        if i + codec.MIN_SIZE <= len(b):
            _, _, _, _, plen, ylen = _HEADER.unpack_from(b, i)
            end = i + codec.MIN_SIZE + plen + ylen
            if end <= len(b):
                out.append((i, end))
        i = b.find(codec.MAGIC, i + 1)
    return out


def _replace_nested(b: bytes, start: int, end: int, new: bytes) -> bytes:
    """``b`` with the envelope ``b[start:end]`` replaced by ``new``, enclosing framing repaired."""
    d = len(new) - (end - start)
    out = bytearray(b[:start] + new + b[end:])
    if start >= 8 and int.from_bytes(b[start - 8:start], "little") == end - start:
        out[start - 8:start] = len(new).to_bytes(8, "little")  # the blob's length prefix
    for s, e in _envelopes(b):
        if s < start and e >= end:  # an enclosing envelope: grow the part that holds the inner one
            _, _, _, _, plen, ylen = _HEADER.unpack_from(b, s)
            if start < s + codec.HEADER_SIZE + plen:
                struct.pack_into("<I", out, s + 10, plen + d)
            else:
                struct.pack_into("<Q", out, s + 14, ylen + d)
    return fix_checksums(bytes(out))


def mutate(rng: np.random.Generator, blob: bytes, pool: List[bytes], mode: str) -> Tuple[str, bytes]:
    if mode == "raw":
        return mutate_bytes(rng, blob, pool)
    if mode == "crc":
        s, e = 0, len(blob)
    else:
        envs = _envelopes(blob)
        s, e = envs[int(rng.integers(0, len(envs)))]
    kind, params, payload = codec.decode(blob[s:e])
    parts = [params, payload]
    which = 0 if (not payload or (params and rng.random() < 0.2)) else 1
    op, parts[which] = mutate_bytes(rng, parts[which], pool)
    parts[which] = fix_checksums(parts[which])
    new = codec.encode(kind, parts[0], parts[1])
    return op, (new if mode == "crc" else _replace_nested(blob, s, e, new))


# -- the run -------------------------------------------------------------------------------------------

def classify(kind: str, blob: bytes) -> Tuple[str, str]:
    """(outcome, detail) of decoding ``blob`` as ``kind`` and using the result."""
    try:
        obj = decode(kind, blob)
    except CorruptStateError:
        return "rejected", ""
    except FastDriftError as exc:
        return "refused", f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - what the fuzz looks for
        return "crashed", "decode: " + traceback.format_exc(limit=-3)
    try:
        exercise(kind, obj)
    except Misbehaved as exc:
        return "misbehaved", f"{exc}\n{traceback.format_exc(limit=-3)}"
    except FastDriftError as exc:
        return "use_error", f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001
        return "crashed", "use: " + traceback.format_exc(limit=-3)
    return "ok", ""


def run(blobs: int, seed: int = 0, kinds=KINDS, hang_seconds: float = 10.0, on_bad=None,
        progress=None) -> Tuple[Counter, List[tuple]]:
    """Fuzz ``blobs`` mutated blobs, round robin over ``kinds``.

    Returns (Counter of (kind, mode, outcome), list of bad cases (kind, mode, op, outcome, detail, blob)).
    ``on_bad(case)`` is called for each bad case as it happens; ``progress(i, counts)`` every 1000.
    """
    rng = np.random.default_rng(seed)
    corpus = seeds()
    pool = [b for k in kinds for b in corpus[k]]
    counts: Counter = Counter()
    bad: List[tuple] = []
    for i in range(blobs):
        kind = kinds[i % len(kinds)]
        src = corpus[kind][int(rng.integers(0, len(corpus[kind])))]
        mode = str(rng.choice(["raw", "crc", "deep"], p=[0.2, 0.4, 0.4]))
        op, blob = mutate(rng, src, pool, mode)
        t0 = time.perf_counter()
        outcome, detail = classify(kind, blob)
        if time.perf_counter() - t0 > hang_seconds:
            outcome, detail = "hung", f"{time.perf_counter() - t0:.1f} s"
        counts[(kind, mode, outcome)] += 1
        if outcome in BAD:
            case = (kind, mode, op, outcome, detail, blob)
            bad.append(case)
            if on_bad:
                on_bad(case)
        if progress and (i + 1) % 1000 == 0:
            progress(i + 1, counts)
    return counts, bad
