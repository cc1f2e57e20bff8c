"""Monitor windows (rules=[]): signals against independent numpy computations, schema changes, bad input."""
import math

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.errors import InvalidInputError, SchemaError
from fastdrift.monitor import EvidenceSpec, FeatureSpec, Monitor, MonitorConfig, WindowSpec, build_reference
from fastdrift.records import SchemaChange


def mon(reference, config):
    """A monitor without alert rules: the ingest stage and the reports it closes."""
    return Monitor(reference, config=config, rules=[])


RNG = np.random.default_rng(7)


def ref_table(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "x": rng.normal(size=n),
        "y": rng.exponential(size=n),
        "c": pa.array(rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])),
        "pred": rng.random(n),
        "lat": rng.exponential(20, n),
        "err": rng.random(n) < 0.02,
        "kpi": rng.normal(1.0, 0.1, n),
        "ts": np.arange(n, dtype=np.float64),
    })


def cur_table(n, seed=1, shift=0.0, t0=0.0, dt=1.0):
    t = ref_table(n, seed)
    x = t.column("x").to_numpy() + shift
    return t.set_column(0, "x", pa.array(x)).set_column(7, "ts", pa.array(t0 + dt * np.arange(n)))


def cfg(**kw):
    base = dict(prediction="pred", latency="lat", error="err", kpis=("kpi",), event_time="ts",
                window=WindowSpec(by="rows", size=1000))
    base.update(kw)
    return MonitorConfig(**base)


def np_psi(ref, cur, edges, eps=1e-4):
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1) / cur.size
    p = np.where(p == 0, eps, p)
    q = np.where(q == 0, eps, q)
    return (q - p) * np.log(q / p)


def test_row_windows_and_signals_match_numpy():
    ref = ref_table()
    m = mon(ref, cfg())
    assert m.config.feature_names() == ["x", "y", "c"]
    cur = cur_table(2500, shift=0.5)
    m.update(cur)
    reps = m.reports()
    assert [(r.window_start, r.window_end, r.rows) for r in reps] == [(0, 1000, 1000), (1000, 2000, 1000)]
    assert all(r.closed for r in reps)
    snap = m.snapshot()
    assert not snap.closed and snap.rows == 500 and snap.window_start == 2000

    r = reps[1]
    xr = ref.column("x").to_numpy()
    xc = cur.column("x").to_numpy()[1000:2000]
    edges = np.unique(np.quantile(xr, np.arange(1, 10) / 10))
    terms = np_psi(xr, xc, edges)
    s = r.features["x"]
    assert s.metric == "psi" and s.kind == "numeric"
    assert s.value == pytest.approx(terms.sum(), rel=1e-12)
    assert s.n_ref == 4000 and s.n_cur == 1000
    # contributions: largest first, and they are the numpy terms
    got = [c.contribution for c in s.contributions]
    assert got == sorted(got, reverse=True)
    assert got == pytest.approx(sorted(terms, reverse=True)[:10], rel=1e-12)
    assert s.mean_cur == pytest.approx(xc.mean())
    # p-value: PSI * n m / (n + m) ~ chi2(bins - 1)
    from scipy.stats import chi2
    assert s.pvalue == pytest.approx(chi2.sf(terms.sum() * 4000 * 1000 / 5000, 9), rel=1e-9)
    assert s.pvalue < 1e-6
    # categorical feature
    cr = ref.column("c").to_pylist()
    cc = cur.column("c").to_pylist()[1000:2000]
    cats = ["a", "b", "c"]
    p = np.array([cr.count(k) for k in cats]) / len(cr)
    q = np.array([cc.count(k) for k in cats]) / len(cc)
    assert r.features["c"].value == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-12)
    # latency, errors, KPI, prediction, throughput
    lat = cur.column("lat").to_numpy()[1000:2000]
    assert r.latency.count == 1000 and r.latency.invalid == 0
    for got_q, q_ in ((r.latency.p50, 0.5), (r.latency.p95, 0.95), (r.latency.p99, 0.99)):
        # t-digest bound: rank error well below 1% at these quantiles for compression 100
        rank = np.searchsorted(np.sort(lat), got_q) / lat.size
        assert abs(rank - q_) < 0.01
    err = cur.column("err").to_numpy(zero_copy_only=False)[1000:2000]
    assert r.errors == int(err.sum()) and r.error_rate == pytest.approx(err.mean())
    kpi = cur.column("kpi").to_numpy()[1000:2000]
    assert r.kpis["kpi"].mean == pytest.approx(kpi.mean())
    assert r.kpis["kpi"].delta == pytest.approx(kpi.mean() - ref.column("kpi").to_numpy().mean())
    assert r.prediction is not None and r.prediction.column == "pred"
    assert r.throughput == pytest.approx(1000 / 999)  # rows / event-time span of the window
    # no drift on y: p-value not small
    assert r.features["y"].pvalue > 1e-4


def test_no_drift_pvalue_is_roughly_uniform():
    ref = ref_table(20000, seed=3)
    m = mon(ref, cfg(window=WindowSpec(by="rows", size=2000)))
    m.update(ref_table(40000, seed=4))
    ps = [r.features["x"].pvalue for r in m.reports()]
    assert len(ps) == 20
    assert 0.05 < np.mean(ps) < 0.95  # not systematically "significant" as PSI alone would be on big windows


def test_missingness_rate_and_change():
    ref = ref_table()
    m = mon(ref, cfg())
    x = cur_table(1000).column("x").to_numpy().copy()
    x[:100] = np.nan
    mask = np.zeros(1000, bool)
    mask[100:250] = True
    cur = cur_table(1000).set_column(0, "x", pa.array(x, mask=mask))
    m.update(cur)
    s = m.reports()[0].features["x"]
    assert s.missing_ref == 0.0
    assert s.missing_cur == pytest.approx(0.25)
    assert s.missing_delta == pytest.approx(0.25)
    assert s.n_cur == 750


def test_schema_changes_are_signals_not_crashes():
    m = mon(ref_table(), cfg())
    cur = cur_table(1000).drop_columns(["y"]).append_column("surprise", pa.array(np.ones(1000)))
    cur = cur.set_column(cur.schema.get_field_index("c"), "c", pa.array(np.arange(1000)))  # ints, not strings
    m.update(cur)
    r = m.reports()[0]
    assert SchemaChange("y", "missing", "double", None) in r.schema_changes
    assert SchemaChange("surprise", "new", None, "double") in r.schema_changes
    assert SchemaChange("c", "type", "string", "int64") in r.schema_changes
    # a missing or uncountable column is counted as missing, not dropped
    assert r.features["y"].missing_cur == 1.0 and r.features["c"].missing_cur == 1.0
    assert r.rows == 1000 and r.features["x"].n_cur == 1000
    # int where float was: a type change within the kind, still counted
    cur2 = cur_table(1000)
    cur2 = cur2.set_column(1, "y", pa.array(np.arange(1000)))
    m.update(cur2)
    r2 = m.reports()[1]
    assert SchemaChange("y", "type_within_kind", "double", "int64") in r2.schema_changes
    assert r2.features["y"].n_cur == 1000


def test_a_time_window_without_events_pages_no_traffic():
    """A gap in event time closes as an empty window; the default rules call it no traffic."""
    m = Monitor(ref_table(), config=cfg(window=WindowSpec(by="time", size=100)))
    m.update(cur_table(100, t0=0.0))                 # window [0, 100)
    m.update(cur_table(100, seed=2, t0=300.0))       # [100, 200) and [200, 300) had no events
    reps = m.reports()
    assert [(r.window_start, r.rows) for r in reps] == [(0.0, 100), (100.0, 0), (200.0, 0)]
    assert [(a.rule, a.severity, a.state) for a in reps[1].alerts] == [("no-traffic", "critical", "firing")]
    assert not reps[0].alerts and not reps[2].alerts  # still firing: a transition only once
    assert [a.rule for a in m.alerts()] == ["no-traffic"]
    m.update(cur_table(100, seed=3, t0=400.0))       # [300, 400) had rows: resolved
    assert [(a.rule, a.state) for a in m.reports()[-1].alerts] == [("no-traffic", "resolved")]


def test_strict_mode_raises_naming_the_column_and_keeps_state():
    m = mon(ref_table(), cfg(strict=True))
    m.update(cur_table(500))
    with pytest.raises(SchemaError, match="'y'"):
        m.update(cur_table(100).drop_columns(["y"]))
    assert m.snapshot().rows == 500


def test_rejected_batches_are_counted_and_state_kept():
    c = cfg(window=WindowSpec(by="time", size=100))
    m = mon(ref_table(), c)
    m.update(cur_table(150))
    m.update(cur_table(40).drop_columns(["ts"]))  # event time missing: cannot be placed
    assert m.rejected == 40 and "'ts'" in m.last_error
    ts = np.arange(150, 200, dtype=float)
    ts[:5] = np.nan
    m.update(cur_table(50).set_column(7, "ts", pa.array(ts)))
    assert m.rejected == 45
    m.update(cur_table(300, t0=200))
    reps = m.reports()
    assert sum(r.rows for r in reps) + m.snapshot().rows == 150 + 45 + 300
    assert sum(r.rejected for r in reps) == 45
    with pytest.raises(InvalidInputError, match="expected an Arrow"):
        m.update(42)


def test_time_windows_sliding_and_late_events():
    c = cfg(window=WindowSpec(by="time", size=30, slide=10, allowed_lateness=5))
    m = mon(ref_table(), c)
    m.update(cur_table(25, t0=0))            # ts 0..24 -> panes 0,1,2; watermark 19 closes pane 0
    assert [(r.window_start, r.window_end, r.rows) for r in m.reports()] == [(0, 10, 10)]
    m.update(cur_table(3, t0=7, dt=1))        # ts 7,8,9: pane 0 already closed -> dropped
    m.update(cur_table(3, t0=16, dt=1))       # ts 16..18: pane 1 still open (lateness 5) -> counted
    m.update(cur_table(20, t0=25))            # ts 25..44, watermark 39: closes panes 1 and 2
    reps = m.reports()
    assert [(r.window_start, r.window_end) for r in reps] == [(0, 10), (0, 20), (0, 30)]
    assert [r.rows for r in reps] == [10, 23, 33]
    assert reps[1].dropped_late == 3 and sum(r.dropped_late for r in reps) == 3
    assert reps[2].throughput == pytest.approx(33 / 30)
    m.update(cur_table(1, t0=61))             # watermark 56: closes panes 3 and 4
    reps = m.reports()
    assert [(r.window_start, r.window_end, r.rows) for r in reps[3:]] == [(10, 40, 33), (20, 50, 25)]


def test_sliding_rows_equal_direct_profiles():
    ref = ref_table()
    m = mon(ref, cfg(window=WindowSpec(by="rows", size=600, slide=200)))
    cur = cur_table(1000, shift=0.3)
    for b in cur.to_batches(max_chunksize=77):
        m.update(b)
    reps = m.reports()
    assert [(r.window_start, r.window_end) for r in reps] == [(0, 200), (0, 400), (0, 600), (200, 800),
                                                              (400, 1000)]
    xr = ref.column("x").to_numpy()
    edges = np.unique(np.quantile(xr, np.arange(1, 10) / 10))
    x = cur.column("x").to_numpy()
    for r in reps:
        terms = np_psi(xr, x[r.window_start:r.window_end], edges)
        assert r.features["x"].value == pytest.approx(terms.sum(), rel=1e-12)


def test_gap_closes_empty_windows():
    m = mon(ref_table(), cfg(window=WindowSpec(by="time", size=10)))
    m.update(cur_table(5, t0=0))
    m.update(cur_table(5, t0=45))
    reps = m.reports()
    assert [r.rows for r in reps] == [5, 0, 0, 0]
    assert math.isnan(reps[1].features["x"].value)


def test_latency_invalid_values_counted_not_inserted():
    m = mon(ref_table(), cfg())
    t = cur_table(1000)
    lat = t.column("lat").to_numpy().copy()
    lat[:3] = [np.nan, np.inf, -1.0]
    m.update(t.set_column(4, "lat", pa.array(lat)))
    r = m.reports()[0]
    assert r.latency.invalid == 3 and r.latency.count == 997
    assert r.latency.p99 == pytest.approx(np.quantile(lat[3:], 0.99), rel=0.05)


def test_evidence_is_bounded_uniform_and_redacted():
    c = cfg(request_id="rid", evidence=EvidenceSpec(rate=0.05, max_rows=20, drop=("y",), hash=("rid",), salt="s"))
    ref = ref_table().append_column("rid", pa.array([f"user-{i}" for i in range(4000)]))
    m = mon(ref, c)
    cur = cur_table(3000).append_column("rid", pa.array([f"user-{i}" for i in range(3000)]))
    m.update(cur)
    reps = m.reports()
    for r in reps:
        assert 0 < len(r.evidence) <= 20
        for row in r.evidence:
            assert "y" not in row
            assert set(row) == {"x", "c", "pred", "lat", "err", "rid"}  # features, roles a symptom alert shows
            assert not row["rid"].startswith("user-") and len(row["rid"]) == 16
    import hashlib
    xs = set(cur.column("x").to_pylist())
    assert all(row["x"] in xs for r in reps for row in r.evidence)
    h = hashlib.sha256(b"s\x00user-0").hexdigest()[:16]
    assert isinstance(h, str)


def test_reference_from_profile_and_parquet(tmp_path):
    import pyarrow.parquet as pq
    import fastdrift
    ref = ref_table()
    pq.write_table(ref, tmp_path / "ref.parquet")
    a = mon(str(tmp_path / "ref.parquet"), cfg())
    prof = fastdrift.profile(ref)
    b = mon(prof, cfg())
    cur = cur_table(1000, shift=0.2)
    a.update(cur)
    b.update(cur)
    assert a.reports()[0].features["x"].value == pytest.approx(b.reports()[0].features["x"].value)
    with pytest.raises(SchemaError, match="'nope'"):
        mon(ref, cfg(features=(FeatureSpec("nope"),)))


def test_feature_overrides_bins_and_metric():
    c = cfg(features=(FeatureSpec("x", bins=4, metric="js"), FeatureSpec("y", strategy="uniform")))
    m = mon(ref_table(), c)
    m.update(cur_table(1000, shift=1.0))
    s = m.reports()[0].features["x"]
    assert s.metric == "js" and len(s.contributions) == 4
    assert 0 < s.value < 1
    assert set(m.reports()[0].features) == {"x", "y"}


class _CapsuleOnly:
    """Exposes only the Arrow PyCapsule stream interface (like polars / nanoarrow objects)."""

    def __init__(self, table):
        self._t = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._t.__arrow_c_stream__(requested_schema)


def test_update_accepts_arrow_pycapsule_objects():
    a, b = mon(ref_table(), cfg()), mon(ref_table(), cfg())
    cur = cur_table(1500, shift=0.4)
    a.update(_CapsuleOnly(cur))
    b.update(cur)
    assert a.reports() == b.reports()
    assert a.snapshot().rows == 500


def test_time_windows_out_of_order_batch_equals_sorted():
    c = cfg(window=WindowSpec(by="time", size=20, allowed_lateness=100))
    cur = cur_table(400, t0=0, dt=0.25)
    perm = np.random.default_rng(3).permutation(400)
    a, b = mon(ref_table(), c), mon(ref_table(), c)
    a.update(cur)
    b.update(cur.take(pa.array(perm)))
    a.update(cur_table(1, t0=500))
    b.update(cur_table(1, t0=500))
    strip = lambda rs: [(r.window_start, r.rows, r.features["x"].value, r.features["c"].value,
                         r.latency.count, r.errors) for r in rs]
    assert strip(a.reports()) == strip(b.reports())
    assert [r.rows for r in a.reports()[:5]] == [80] * 5


def test_strict_rejects_bad_event_times():
    m = mon(ref_table(), cfg(window=WindowSpec(by="time", size=10), strict=True))
    ts = np.arange(20, dtype=float)
    ts[3] = np.nan
    with pytest.raises(InvalidInputError, match="'ts'"):
        m.update(cur_table(20).set_column(7, "ts", pa.array(ts)))
    assert m.snapshot().rows == 0 and m.rejected == 0


def test_reference_is_each_column_profiled_alone_in_config_order():
    """One planner call over the table: the same sketches as profiling each column on its own."""
    t = ref_table()
    cfg = MonitorConfig(features=(FeatureSpec("y", bins=5, strategy="uniform"), FeatureSpec("c"), FeatureSpec("x")),
                        prediction="pred", kpis=("kpi",), latency="lat", event_time="ts")
    ref, resolved = build_reference(t, cfg)
    assert list(ref.profile.columns) == ["y", "c", "x", "pred", "kpi"]  # no latency: windows keep its t-digest
    want = {"y": dict(bins=5, strategy="uniform"), "c": {}, "x": {}, "pred": {}, "kpi": dict(kinds={"kpi": "numeric"})}
    for name, kw in want.items():
        alone = fastdrift.profile(t, columns=[name], tdigest=False, **kw)[name]
        assert [s.to_bytes() for s in ref.profile[name].sketches()] == [s.to_bytes() for s in alone.sketches()]
    assert ref.types["c"] == "string" and ref.profile.rows == t.num_rows
    assert [f.kind for f in resolved.features] == ["numeric", "categorical", "numeric"]
    with pytest.raises(SchemaError, match="KPI column 'nope'"):
        build_reference(t, MonitorConfig(kpis=("nope",)))
