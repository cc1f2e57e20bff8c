"""Segments in the Monitor (segment_by): each segment's window against an unsegmented monitor fed only
that segment's rows, the whole against an unsegmented monitor fed every row (exact counts, equal drift)."""
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fastdrift.adapters.segments import OTHER
from fastdrift.errors import CorruptStateError, InvalidInputError
from fastdrift.monitor import Monitor, WindowSpec, config_from_dict

WINDOW = WindowSpec(by="time", size=100, slide=50, allowed_lateness=0)
ARMS = ["stable", "canary", "shadow"]


def table(rng, n, t0, t1, *, shift=0.0, arms=ARMS, p=None):
    x = rng.normal(size=n)
    arm = rng.choice(arms, n, p=p)
    x = np.where(arm == "canary", x + shift, x)
    return pa.table({
        "x": x,
        "c": pa.array(rng.choice(["a", "b", "c", None], n).tolist()),
        "pred": rng.random(n),
        "lat": rng.exponential(10, n),
        "err": rng.random(n) < 0.05,
        "rev": rng.gamma(2.0, 3.0, n),
        "arm": arm,
        "ts": np.sort(rng.uniform(t0, t1, n)),
    })


def config(**kw):
    base = dict(features=["x", "c"], prediction="pred", latency="lat", error="err", kpis=["rev"],
                event_time="ts", window={"by": "time", "size": 100, "slide": 50})
    base.update(kw)
    return config_from_dict(base)


@pytest.fixture(scope="module")
def ref():
    return table(np.random.default_rng(7), 6000, -1000, 0)


def feed(m, batches):
    for b in batches:
        m.update(b)
    return m.reports()


def assert_same(a, b, *, exact_means=False):
    """Two reports of the same rows: counts exact, drift values equal."""
    assert (a.window_start, a.window_end, a.rows, a.errors) == (b.window_start, b.window_end, b.rows, b.errors)
    for name in ("x", "c"):
        fa, fb = a.features[name], b.features[name]
        assert (fa.n_cur, fa.missing_cur, fa.n_ref) == (fb.n_cur, fb.missing_cur, fb.n_ref)
        assert fa.value == fb.value or (math.isnan(fa.value) and math.isnan(fb.value))
        assert [(c.label, c.cur_share) for c in fa.contributions] == [(c.label, c.cur_share) for c in fb.contributions]
    assert (a.prediction.n_cur, a.prediction.value) == (b.prediction.n_cur, b.prediction.value) or a.rows == 0
    assert a.latency.count == b.latency.count
    assert a.latency.p99 == b.latency.p99 or (math.isnan(a.latency.p99) and math.isnan(b.latency.p99))
    assert a.error_rate == b.error_rate or (math.isnan(a.error_rate) and math.isnan(b.error_rate))
    ka, kb = a.kpis["rev"].mean, b.kpis["rev"].mean
    assert (ka == kb) if exact_means else (ka == pytest.approx(kb, rel=1e-12, nan_ok=True))


def test_segments_equal_monitors_fed_each_segment_and_the_whole_equals_all_rows(ref, rng):
    batches = [table(rng, 300, 40 * j, 40 * j + 45, shift=0.5) for j in range(12)]
    seg = Monitor(ref, config=config(segment_by=("arm",), segment_reference="whole"), rules=[])
    whole = Monitor(ref, config=config(), rules=[])
    reports = feed(seg, batches)
    assert reports and all(r.segments for r in reports)
    for ra, rb in zip(reports, feed(whole, batches), strict=True):
        assert_same(ra, rb)
        assert sum(s.rows for s in ra.segments.values()) == ra.rows
        for name in ("x", "c"):  # no row counted twice: the segments' counts add up to the whole's
            assert sum(s.features[name].n_cur for s in ra.segments.values()) == ra.features[name].n_cur
    for arm in ARMS:
        only = Monitor(ref, config=config(), rules=[])
        own = feed(only, [b.filter(pc.equal(b["arm"], arm)) for b in batches])
        mine = [r.segments[f"arm={arm}"] for r in reports if f"arm={arm}" in r.segments]
        assert len(mine) == len(own) > 3
        for ra, rb in zip(mine, own):
            assert ra.segment == f"arm={arm}" and ra.segment_reference == "whole"
            assert_same(ra, rb, exact_means=True)
    drifted = reports[-1].segments
    assert drifted["arm=canary"].features["x"].value > 5 * drifted["arm=stable"].features["x"].value


def test_per_segment_reference_is_the_references_rows_of_the_segment(ref, rng):
    """segment_reference="segment": a segment's drift is against the reference's rows of that segment,
    counted on the whole reference's bins (oracle: a monitor whose reference profile is exactly that)."""
    batches = [table(rng, 300, 40 * j, 40 * j + 45, shift=0.5) for j in range(8)]
    m = Monitor(ref, config=config(segment_by=("arm",)), rules=[])
    whole_ref = Monitor(ref, config=config(), rules=[]).ingest.ref.profile
    reports = feed(m, batches)
    for arm in ARMS:
        sub = ref.filter(pc.equal(ref["arm"], arm))
        oracle = Monitor(whole_ref.empty_like().update(sub), config=config(), rules=[])
        own = feed(oracle, [b.filter(pc.equal(b["arm"], arm)) for b in batches])
        mine = [r.segments[f"arm={arm}"] for r in reports]
        for ra, rb in zip(mine, own, strict=True):
            assert ra.segment_reference == "segment"
            for name in ("x", "c"):
                assert ra.features[name].n_ref == sub.num_rows - (sub[name].null_count if name == "c" else 0)
                assert ra.features[name].value == rb.features[name].value
            assert ra.kpis["rev"].ref_mean == pytest.approx(float(np.mean(sub["rev"])), rel=1e-12)
    # a key the reference has no rows of is measured against the whole reference, and says so
    late = table(rng, 50, 400, 450, arms=["blue"])
    m.update(late)
    m.update(table(rng, 5, 600, 601))
    r = [x for x in m.reports() if "arm=blue" in x.segments][0]
    assert r.segments["arm=blue"].segment_reference == "whole"
    assert r.segments["arm=blue"].features["x"].n_ref == ref.num_rows


def test_observe_counts_segments_like_update(ref, rng):
    b = table(rng, 400, 0, 90)
    by_update = Monitor(ref, config=config(segment_by=("arm",)), rules=[])
    by_update.update(b)
    by_observe = Monitor(ref, config=config(segment_by=("arm",), flush_interval=0), rules=[])
    for row in b.to_pylist():
        feats = {k: row[k] for k in ("x", "c", "arm")}  # the segment column travels with the features
        by_observe.observe(feats, row["pred"], latency_ms=row["lat"], error=row["err"], ts=row["ts"])
    a, o = by_update.snapshot(), by_observe.snapshot()
    assert set(a.segments) == set(o.segments) == {f"arm={x}" for x in ARMS}
    for key in a.segments:
        sa, so = a.segments[key], o.segments[key]
        assert (sa.rows, sa.features["x"].value, sa.features["c"].value, sa.latency.count, sa.errors) == \
            (so.rows, so.features["x"].value, so.features["c"].value, so.latency.count, so.errors)
    # a sequence gives the segment values after the features, in segment_by order; ints are spelled as text
    m = Monitor(ref, config=config(segment_by=("arm", "v"), flush_interval=0), rules=[])
    m.observe([0.1, "a", "canary", 2], 0.5, latency_ms=1.0, ts=1.0)
    m.observe({"x": 0.1, "c": "a", "arm": True, "v": None}, 0.5, latency_ms=1.0, ts=1.0)
    assert set(m.snapshot().segments) == {"arm=canary,v=2", "arm=true,v=<null>"}


def test_cap_folds_later_keys_into_other_and_loses_no_row(ref, rng):
    n = 2000
    b = table(rng, n, 0, 90).append_column("shop", pa.array(rng.integers(0, 9, n)))
    m = Monitor(ref, config=config(segment_by=("shop",), max_segments=3), rules=[])
    m.update(b)
    s = m.snapshot()
    first = list(dict.fromkeys(b["shop"].to_pylist()))[:3]
    assert set(s.segments) == {f"shop={v}" for v in first} | {OTHER}
    shop = b["shop"].to_numpy()
    for v in first:
        assert s.segments[f"shop={v}"].rows == int((shop == v).sum())
    assert s.segments[OTHER].rows == int((~np.isin(shop, first)).sum())
    assert s.segments[OTHER].segment_reference == "whole"
    assert sum(x.rows for x in s.segments.values()) == n == s.rows


def test_missing_segment_column_counts_rows_as_null_and_is_a_schema_change(ref, rng):
    m = Monitor(ref, config=config(segment_by=("arm",)), rules=[])
    m.update(table(rng, 100, 0, 10).drop_columns(["arm"]))
    s = m.snapshot()
    assert set(s.segments) == {"arm=<null>"} and s.segments["arm=<null>"].rows == 100
    assert any(c.column == "arm" and c.change == "missing" for c in s.schema_changes)


def test_segment_columns_are_not_features_unless_listed(ref):
    m = Monitor(ref, config=config(features=None, segment_by=("arm",)), rules=[])
    assert "arm" not in m.config.feature_names() and "x" in m.config.feature_names()
    m = Monitor(ref, config=config(features=["x", "arm"], segment_by=("arm",)), rules=[])
    assert "arm" in m.config.feature_names()


@pytest.mark.parametrize("bad, msg", [
    (dict(segment_by=("arm", "arm")), "twice"),
    (dict(segment_by=("feature",)), "Prometheus label 'feature'"),
    (dict(segment_by=("a-b", "a_b")), "both become"),
    (dict(segment_by=("__x",)), "reserves"),
    (dict(segment_by=("arm",), max_segments=0), "max_segments"),
    (dict(segment_reference="own"), "segment_reference"),
])
def test_bad_segment_settings_are_config_errors(bad, msg):
    with pytest.raises(InvalidInputError, match=msg):
        config(**bad)


def test_config_file_form(tmp_path, ref):
    p = tmp_path / "m.yaml"
    p.write_text("features: [x, c]\nevent_time: ts\nwindow: {by: time, size: 100}\nsegment_by: arm\n"
                 "max_segments: 7\nsegment_reference: whole\n")
    m = Monitor(ref, config=str(p), rules=[])
    assert (m.config.segment_by, m.config.max_segments, m.config.segment_reference) == (("arm",), 7, "whole")


def seg_key(reports):
    """What the oracle compares: per window, per segment, exact counts and drift values."""
    out = []
    for r in reports:
        out.append((r.window_start, r.window_end, r.rows, tuple(
            (k, s.rows, s.errors, s.latency.count, s.features["x"].n_cur, s.features["x"].value,
             s.features["c"].value, s.prediction.value) for k, s in r.segments.items())))
    return out


def test_checkpoint_round_trip_goes_on_as_if_never_stopped(ref, rng):
    batches = [table(rng, 200, 40 * j, 40 * j + 45, shift=0.3) for j in range(10)]
    cfg = config(segment_by=("arm",), max_segments=2)
    straight = Monitor(ref, config=cfg, rules=[])
    feed(straight, batches)
    m = Monitor(ref, config=cfg, rules=[])
    feed(m, batches[:5])
    m2 = Monitor.from_bytes(m.to_bytes(), rules=[])
    assert m2.ingest.windower.segmenter.keys == m.ingest.windower.segmenter.keys
    assert len(m2.ingest.windower.segmenter.keys) == 3  # the cap is reached: a third arm is <other>
    assert OTHER in m2.ingest.windower.segmenter.keys
    feed(m2, batches[5:])
    assert seg_key(m2.reports()) == seg_key(straight.reports())
    assert any(OTHER in r.segments for r in m2.reports())
    assert m2.ingest.ref.segments.keys() == straight.ingest.ref.segments.keys()


def test_corrupt_segment_state_is_refused(ref, rng):
    m = Monitor(ref, config=config(segment_by=("arm",)), rules=[])
    m.update(table(rng, 100, 0, 10))
    data = bytearray(m.to_bytes())
    plain = Monitor(ref, config=config(), rules=[])
    plain.update(table(rng, 100, 0, 10))
    from fastdrift.monitor.signals import WindowSketch
    ws = m.ingest.windower.open[0]
    raw = ws.to_bytes()
    import struct
    with pytest.raises(CorruptStateError, match="misplaced trailer 2"):  # a second segments trailer
        WindowSketch.from_bytes(raw + b"\x02" + struct.pack("<Q", 0), m.ingest.ref, m.config)
    capped = Monitor(ref, config=config(segment_by=("arm",), max_segments=1), rules=[])
    with pytest.raises(CorruptStateError, match="3 segments, above max_segments 1"):
        WindowSketch.from_bytes(raw, capped.ingest.ref, capped.config)
    with pytest.raises(CorruptStateError):  # segments trailer for an unsegmented config
        WindowSketch.from_bytes(raw, plain.ingest.ref, plain.config)
    assert Monitor.from_bytes(bytes(data), rules=[]).snapshot().rows == 100


def test_merge_is_exact_and_folds_the_union_past_the_cap_into_other(ref, rng):
    cfg = config(segment_by=("arm",), max_segments=3,
                 window={"by": "time", "size": 100, "slide": 50, "allowed_lateness": 1000})
    batches = [table(rng, 300, 0, 90, arms=["a", "b"]), table(rng, 300, 0, 90, arms=["c", "d"])]
    one = Monitor(ref, config=cfg, rules=[])
    feed(one, batches)
    p, q = Monitor(ref, config=cfg, rules=[]), Monitor(ref, config=cfg, rules=[])
    p.update(batches[0])
    q.update(batches[1])
    p.merge(q)
    sp, so = p.snapshot(), one.snapshot()
    arm = np.concatenate([b["arm"].to_numpy(zero_copy_only=False) for b in batches])
    assert list(sp.segments) == ["arm=a", "arm=b", "arm=c", OTHER] == list(so.segments)
    assert sp.segments[OTHER].rows == int((arm == "d").sum())
    assert sum(s.rows for s in sp.segments.values()) == 600 == sp.rows
    for k in so.segments:
        assert (sp.segments[k].rows, sp.segments[k].features["x"].value, sp.segments[k].features["c"].value) == \
            (so.segments[k].rows, so.segments[k].features["x"].value, so.segments[k].features["c"].value)
    assert sp.features["x"].value == so.features["x"].value and sp.features["c"].n_cur == so.features["c"].n_cur


def test_spool_fleet_equals_one_monitor(tmp_path, ref, rng):
    import fastdrift
    cfg = config(segment_by=("arm",))
    spool = tmp_path / "spool"
    procs = [Monitor(ref, config=cfg, rules=[], spool=spool, process_id=f"w{i}") for i in range(3)]
    one = Monitor(ref, config=cfg, rules=[])
    for j in range(12):
        b = table(rng, 150, 20 * j, 20 * j + 25, shift=0.4)
        procs[j % 3].update(b)
        one.update(b)
    for x in procs:
        x.close()
    fleet = fastdrift.Fleet(spool, rules=[])
    end = table(rng, 1, 2000, 2001)
    one.update(end)
    procs[0].update(end)
    procs[0].close()
    a, b = one.reports(), fleet.refresh().reports()
    assert len(a) == len(b) > 3
    assert seg_key(a) == seg_key(b)
    assert all(s.segment_reference == "segment" for r in b for s in r.segments.values())


# -- rules with segment selectors -----------------------------------------------------------------

def drift_rule(segments=None, **kw):
    r = {"name": "x-drift", "owner": "ml", "runbook": "rb", "signal": "feature_drift", "features": ["x"],
         "metric": "psi", "warning": 0.2, "min_rows": 50}
    if segments is not None:
        r["segments"] = segments
    r.update(kw)
    return r


def drifted_batches(rng, n=12):
    # canary drifts from the third window on; stable and shadow never do
    return [table(rng, 600, 40 * j, 40 * j + 45, shift=1.5 if j >= 4 else 0.0) for j in range(n)]


@pytest.mark.parametrize("selector", [["*"], "arm=canary", ["arm=canary", "arm=stable"]])
def test_segment_rule_fires_for_the_drifted_segment_only_and_names_it(ref, rng, selector):
    sent = []
    m = Monitor(ref, config=config(segment_by=("arm",), segment_reference="whole"),
                rules=[drift_rule(selector)], sinks=[sent.append])
    feed(m, drifted_batches(rng))
    firing = [a for a in sent if a.state == "firing"]
    assert firing and {a.segment for a in firing} == {"arm=canary"}
    assert len(firing) == 1  # once per incident: it stays firing
    assert "x-drift in arm=canary firing" in firing[0].summary and "x=" in firing[0].summary
    assert [a.segment for a in m.alerts()] == ["arm=canary"]
    # the oracle: the canary's own reports, read directly, cross the threshold; the others never do
    crossed = [(r.window_end, key) for r in m.reports() for key, s in r.segments.items()
               if s.features["x"].value > 0.2 and s.features["x"].n_cur >= 50]
    assert {k for _, k in crossed} == {"arm=canary"}
    assert firing[0].window_end == crossed[0][0]


def test_rule_without_segments_reads_the_whole_only(ref, rng):
    """Absent ``segments``: the rule sees the whole window, exactly as on an unsegmented monitor."""
    batches = drifted_batches(rng)
    seg, plain = [], []
    feed(Monitor(ref, config=config(segment_by=("arm",)), rules=[drift_rule(None, warning=0.1)],
                 sinks=[seg.append]), batches)
    feed(Monitor(ref, config=config(), rules=[drift_rule(None, warning=0.1)], sinks=[plain.append]), batches)
    assert seg and all(a.segment == "" for a in seg)
    key = [(a.state, a.window_end, a.summary) for a in plain]
    assert key == [(a.state, a.window_end, a.summary) for a in seg]


def test_segment_alert_state_survives_a_checkpoint(ref, rng):
    batches = drifted_batches(rng)
    rule = drift_rule(["*"], **{"for": 3})
    straight = []
    a = Monitor(ref, config=config(segment_by=("arm",)), rules=[rule], sinks=[straight.append])
    feed(a, batches)
    resumed = []
    b = Monitor(ref, config=config(segment_by=("arm",)), rules=[rule], sinks=[resumed.append])
    feed(b, batches[:6])  # canary pending (for: 3) at the checkpoint
    assert any(x.state == "pending" and x.segment == "arm=canary" for x in b.alerts())
    data = b.to_bytes()
    c = Monitor.from_bytes(data, sinks=[resumed.append])
    feed(c, batches[6:])
    key = [(x.rule, x.segment, x.state, x.window_end) for x in straight]
    assert key == [(x.rule, x.segment, x.state, x.window_end) for x in resumed]
    assert any(x.state == "firing" for x in resumed)


@pytest.mark.parametrize("bad, msg", [([], "non-empty list"), (["*", "arm=a"], "already selects"), (3, "segment key")])
def test_bad_segment_selector(bad, msg):
    from fastdrift.alerts import load_rules
    with pytest.raises(InvalidInputError, match=msg):
        load_rules([drift_rule(bad)])


def test_segment_rule_needs_a_segmented_monitor(ref):
    with pytest.raises(InvalidInputError, match="without segment_by"):
        Monitor(ref, config=config(), rules=[drift_rule("*")])


# -- Prometheus ----------------------------------------------------------------------------------------

def test_prometheus_segment_series_parse_and_do_not_double_count(ref, rng):
    pytest.importorskip("prometheus_client")
    import shutil
    import subprocess
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import CollectorRegistry
    from fastdrift.exporters.prometheus import METRIC_NAMES, SEGMENT_METRIC_NAMES
    from fastdrift.monitor.config import PROMETHEUS_LABELS

    b = table(rng, 300, 0, 90).append_column("model-version", pa.array(rng.choice(["1", "2"], 300)))
    m = Monitor(ref, config=config(segment_by=("arm", "model-version"), max_segments=4),
                rules=[drift_rule("*"), drift_rule(None, name="whole-drift")])
    m.update(b)
    m.update(table(rng, 300, 100, 190).append_column("model-version", pa.array(rng.choice(["1", "2"], 300))))
    reg = CollectorRegistry(auto_describe=False)
    reg.register(m.prometheus_collector())
    text = generate_latest(reg).decode()
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            assert s.name in METRIC_NAMES
            assert set(s.labels) <= set(PROMETHEUS_LABELS) | {"arm", "model_version"}  # sanitized column label
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    latest = m.reports()[-1]
    rows = {k: v for k, v in samples.items() if k[0] == "fastdrift_segment_window_rows"}
    assert len(rows) == len(latest.segments) == 5  # 4 keys and <other>
    assert sum(rows.values()) == samples[("fastdrift_window_rows", ())] == latest.rows  # sum() adds no whole
    for key, seg in latest.segments.items():
        vals = dict(x.split("=") for x in key.split(",")) if key != OTHER else {}
        labels = (("arm", vals.get("arm", "")), ("model_version", vals.get("model-version", "")), ("segment", key))
        assert samples[("fastdrift_segment_window_rows", labels)] == seg.rows
        fx = (("feature", "x"), ("metric", "psi")) + labels
        assert samples[("fastdrift_segment_feature_drift", tuple(sorted(fx)))] == seg.features["x"].value
        st = tuple(sorted((("rule", "x-drift"), ("severity", "warning")) + labels))
        assert samples[("fastdrift_segment_alert_state", st)] in (0.0, 1.0, 2.0)
    # the whole's alert state holds the whole's rules only
    assert {dict(k[1])["rule"] for k in samples if k[0] == "fastdrift_alert_state"} == {"whole-drift"}
    assert {n for n, _ in samples} & SEGMENT_METRIC_NAMES
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (bash tests/system-packages.sh)")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    # promtool 2.42 lints a gauge with a "quantile" label (the whole's latency gauge has it too); nothing else
    assert all(p.endswith('should not have "quantile" label') for p in problems), problems


def test_generated_prometheus_rules_translate_segment_rules():
    from fastdrift.exporters.promrules import prometheus_rules
    groups, notes = prometheus_rules([drift_rule("*"), drift_rule(None, name="whole-drift")], "5m")
    alerts = {a["labels"]["rule"]: a for g in groups["groups"] for a in g["rules"] if "alert" in a}
    assert set(alerts) == {"x-drift", "whole-drift"} and not notes
    assert alerts["x-drift"]["expr"].startswith("(fastdrift:segment_feature_psi:5m{")
    assert "segment" not in alerts["whole-drift"]["expr"]
    assert [g["name"] for g in groups["groups"]][:2] == ["fastdrift-recording-5m", "fastdrift-segment-recording-5m"]


def test_action_sink_acts_once_per_segment_incident():
    from fastdrift.alerts import ActionSink, AlertEvaluator
    from fastdrift.records import WindowReport, frozen_mapping

    def window(i, rates):
        return WindowReport(10 * i, 10 * (i + 1), True, 3000, segments=frozen_mapping(
            {k: WindowReport(10 * i, 10 * (i + 1), True, 1000, errors=int(r * 1000), error_rate=r, segment=k)
             for k, r in rates.items()}))

    calls = []
    sink = ActionSink(rollback=lambda alert: calls.append((alert.segment, alert.window_start)), min_interval=0)
    try:
        rules = [{"name": "errors", "owner": "ml", "runbook": "rb", "signal": "error_rate", "warning": 0.05,
                  "segments": "*", "action": "rollback"}]
        ev = AlertEvaluator(rules, sinks=[sink])
        for i, rates in enumerate([{"arm=a": 0.1, "arm=b": 0.0}, {"arm=a": 0.1, "arm=b": 0.2},
                                   {"arm=a": 0.1, "arm=b": 0.2}, {"arm=a": 0.0, "arm=b": 0.0},
                                   {"arm=a": 0.1, "arm=b": 0.0}]):
            ev.evaluate(window(i, rates))
        assert sink.flush(30)
        # arm=a: incident at 0, resolved at 30, a new one at 40; arm=b: one incident from 10
        assert calls == [("arm=a", 0), ("arm=b", 10), ("arm=a", 40)]
        assert [r.incident for r in sink.records()] == ["errors in arm=a@0", "errors in arm=b@10",
                                                        "errors in arm=a@40"]
    finally:
        sink.close(30)


def test_segment_reports_carry_the_evidence_rows_of_their_segment(ref, rng):
    m = Monitor(ref, config=config(segment_by=("arm",), max_segments=2, evidence={"rate": 1.0, "max_rows": 60}),
                rules=[])
    m.update(table(rng, 400, 0, 90))
    s = m.snapshot()
    assert len(s.evidence) == 60 and all("arm" in row for row in s.evidence)
    first = list(s.segments)
    for key, seg in s.segments.items():
        want = [row for row in s.evidence
                if (f"arm={row['arm']}" == key) or (key == OTHER and f"arm={row['arm']}" not in first)]
        assert list(seg.evidence) == want
    assert sum(len(x.evidence) for x in s.segments.values()) == 60
