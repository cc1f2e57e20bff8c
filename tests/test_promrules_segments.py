"""Per-segment, shadow and freshness counters of the Prometheus exporter, and the generated rules
that read them (segment rules, canary rollback, shadow, freshness, KPI delta).

Oracles: numpy over the rows each segment got; the rules through Debian's ``promtool test rules``
(series where each rule must fire and where it must not) and a real Prometheus scraping two
monitors.  promtool and prometheus must be installed (``bash tests/system-packages.sh``); the
tests fail, never skip, without them.
"""
import math
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("prometheus_client")
yaml = pytest.importorskip("yaml")


from fastdrift import Monitor  # noqa: E402
from fastdrift.exporters.prometheus import LATENCY_BUCKET_FACTOR, METRIC_NAMES, SEGMENT_METRIC_NAMES  # noqa: E402
from fastdrift.exporters.promrules import CANARY_NOTE, prometheus_rules  # noqa: E402
from fastdrift.monitor.config import config_from_dict  # noqa: E402
from fastdrift.monitor.shadow import FRESHNESS_EDGES_SECONDS, FreshnessSketch  # noqa: E402
from fastdrift.monitor.signals import LATENCY_EDGES_SECONDS  # noqa: E402
from promserver import query, scrape, settled, start_prometheus, stop, tool  # noqa: E402

def _table(rng, n, *, canary_shift=0.0):
    arm = rng.choice(["stable", "canary", "dark"], n, p=[0.6, 0.3, 0.1])
    canary = arm == "canary"
    return pa.table({
        "x": rng.normal(size=n) + canary_shift * canary,
        "c": pa.array(rng.choice(["a", "b", "z", None], n).tolist()),
        "score": rng.random(n),
        "challenger": np.clip(rng.random(n) + rng.normal(0, 0.1, n), 0, 1),
        "lat": rng.lognormal(3 + canary_shift * canary, 0.7, n),
        "err": rng.random(n) < 0.02 + 0.05 * canary_shift * canary,
        "rev": rng.normal(10 - 2 * canary_shift * canary, 2, n),
        "arm": arm,
        "ts": rng.uniform(0, 1000, n),
    })


def _get(samples, name, **labels):
    """Samples of ``name`` with ``labels``: {remaining labels: value}."""
    out = {}
    for (n, lab), v in samples.items():
        d = dict(lab)
        if n == name and all(d.get(k) == v2 for k, v2 in labels.items()):
            out[tuple((k, x) for k, x in lab if k not in labels)] = v
    return out


def test_segment_shadow_and_freshness_counters_equal_numpy():
    rng = np.random.default_rng(3)
    ref = _table(rng, 5000)
    ref_arm = ref["arm"].to_numpy(zero_copy_only=False)
    m = Monitor(ref, features=["x", "c"], prediction="score", latency="lat", error="err", kpis=["rev"],
                segment_by=["arm"], segment_reference="segment", window=700, rules=[],
                shadow_prediction="challenger", shadow={"threshold": 0.5}, event_time="ts",
                freshness={"sla": 600.0}, clock=lambda: 1500.0)
    cur = pa.concat_tables([_table(rng, 1000, canary_shift=1.0) for _ in range(3)])  # 3000 rows: 4 closed + open
    for b in cur.to_batches(max_chunksize=450):
        m.update(pa.Table.from_batches([b]))
    s, text = scrape(m)
    arm = cur["arm"].to_numpy(zero_copy_only=False)
    for a in ("stable", "canary", "dark"):
        rows = arm == a
        seg = {"segment": f"arm={a}", "arm": a}
        assert _get(s, "fastdrift_segment_rows_total", **seg) == {(): rows.sum()}
        err = cur["err"].to_numpy()[rows]
        assert _get(s, "fastdrift_segment_errors_total", **seg) == {(): err.sum()}
        assert _get(s, "fastdrift_segment_error_flag_rows_total", **seg) == {(): rows.sum()}
        lat = cur["lat"].to_numpy()[rows] / 1000.0
        buckets = _get(s, "fastdrift_segment_latency_seconds_bucket", **seg)
        for e in LATENCY_EDGES_SECONDS[[40, 60, 80]]:
            got = [v for k, v in buckets.items() if float(k[0][1]) == float(e)]
            assert got == [np.count_nonzero(lat <= e)], (a, e)
        assert buckets[(("le", "+Inf"),)] == rows.sum()
        assert _get(s, "fastdrift_segment_latency_seconds_sum", **seg)[()] == pytest.approx(lat.sum(), rel=1e-9)
        rev = cur["rev"].to_numpy()[rows]
        assert _get(s, "fastdrift_segment_kpi_count", kpi="rev", **seg) == {(): rows.sum()}
        assert _get(s, "fastdrift_segment_kpi_sum", kpi="rev", **seg)[()] == pytest.approx(rev.sum(), rel=1e-9)
        assert _get(s, "fastdrift_segment_kpi_squares_total", kpi="rev", **seg)[()] == pytest.approx(
            np.square(rev).sum(), rel=1e-9)
        ref_rev = ref["rev"].to_numpy()[ref_arm == a]
        assert _get(s, "fastdrift_segment_kpi_reference_mean", kpi="rev", **seg)[()] == pytest.approx(
            ref_rev.mean(), rel=1e-12)
        # bin rows of the categorical column and its segment reference shares (its own rows: segment_reference)
        c = np.array(cur["c"].to_pylist(), dtype=object)[rows]
        bins = _get(s, "fastdrift_segment_feature_bin_rows_total", feature="c", role="feature", **seg)
        want = {"a": np.sum(c == "a"), "b": np.sum(c == "b"), "z": np.sum(c == "z")}
        assert {k[0][1]: v for k, v in bins.items()} == {**want, "<other>": 0}
        assert _get(s, "fastdrift_segment_feature_missing_total", feature="c", role="feature", **seg) == {
            (): np.sum(c == None)}  # noqa: E711
        rc = np.array(ref["c"].to_pylist(), dtype=object)[ref_arm == a]
        rc = rc[rc != None]  # noqa: E711
        shares = _get(s, "fastdrift_segment_feature_reference_share", feature="c", role="feature", **seg)
        for cat in ("a", "b", "z"):
            assert shares[(("bin", cat),)] == pytest.approx(np.mean(rc == cat), abs=1e-12)
        x = cur["x"].to_numpy()[rows]
        xbins = _get(s, "fastdrift_segment_feature_bin_rows_total", feature="x", role="feature", **seg)
        assert sum(xbins.values()) == x.size
        assert _get(s, "fastdrift_segment_start_time_seconds", **seg) == {(): pytest.approx(m._started)}
    # the whole keeps its names and equals the sum of its segments (sum() never double-counts)
    assert _get(s, "fastdrift_rows_total") == {(): 3000}
    assert _get(s, "fastdrift_kpi_count", kpi="rev") == {(): 3000}
    assert _get(s, "fastdrift_kpi_sum", kpi="rev")[()] == pytest.approx(cur["rev"].to_numpy().sum(), rel=1e-9)
    assert _get(s, "fastdrift_kpi_reference_mean", kpi="rev")[()] == pytest.approx(ref["rev"].to_numpy().mean())
    # shadow: paired rows, agreement at the threshold, both models' bins over the same rows
    sc, ch = cur["score"].to_numpy(), cur["challenger"].to_numpy()
    assert _get(s, "fastdrift_shadow_paired_rows_total") == {(): 3000}
    assert _get(s, "fastdrift_shadow_agreed_rows_total") == {(): np.sum((sc >= 0.5) == (ch >= 0.5))}
    champ = _get(s, "fastdrift_shadow_bin_rows_total", feature="score", model="champion")
    whole = _get(s, "fastdrift_feature_bin_rows_total", feature="score", role="prediction")
    assert champ == whole and sum(champ.values()) == 3000
    chal = _get(s, "fastdrift_shadow_bin_rows_total", feature="score", model="challenger")
    edges = np.quantile(ref["score"].to_numpy(), np.arange(1, 10) / 10)  # the reference's decile bins
    assert sorted(chal.values()) == sorted(np.bincount(np.searchsorted(edges, ch, side="right"),
                                                       minlength=10).tolist())
    # freshness: lag = clock - event time, in 2^(k/4) s buckets
    lag = 1500.0 - cur["ts"].to_numpy()
    fb = _get(s, "fastdrift_freshness_lag_seconds_bucket")
    for e in FRESHNESS_EDGES_SECONDS[[50, 70, 75]]:
        got = [v for k, v in fb.items() if k[0][1] != "+Inf" and float(k[0][1]) == float(e)]
        assert got == [np.count_nonzero(lag <= e)], e
    assert _get(s, "fastdrift_freshness_lag_seconds_count") == {(): 3000}
    assert _get(s, "fastdrift_freshness_over_sla_rows_total") == {(): np.count_nonzero(lag > 600)}
    assert _get(s, "fastdrift_freshness_sla_seconds") == {(): 600.0}
    # every name is a documented one, and promtool accepts the exposition
    names = {n for n, _ in s}
    assert names <= METRIC_NAMES and {n for n in names if n.startswith("fastdrift_segment_")} <= SEGMENT_METRIC_NAMES
    r = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert all(p.endswith('should not have "quantile" label') for p in problems), problems


def test_restored_monitor_exports_only_its_own_segment_rows():
    rng = np.random.default_rng(5)
    ref = _table(rng, 3000)
    kw = dict(features=["x"], prediction="score", latency="lat", error="err", kpis=["rev"], segment_by=["arm"],
              window=500, rules=[])
    m = Monitor(ref, **kw)
    first = _table(rng, 1200)
    m.update(first)
    restored = Monitor.from_bytes(m.to_bytes())
    second = _table(rng, 700)
    restored.update(second)
    s, _ = scrape(restored)
    arm = second["arm"].to_numpy(zero_copy_only=False)
    for a in ("stable", "canary", "dark"):
        seg = {"segment": f"arm={a}", "arm": a}
        assert _get(s, "fastdrift_segment_rows_total", **seg) == {(): np.sum(arm == a)}
        assert _get(s, "fastdrift_segment_kpi_count", kpi="rev", **seg) == {(): np.sum(arm == a)}


# -- freshness sketch: the buckets merge exactly and survive bytes ------------------------------------

def _fresh_config():
    return config_from_dict({"features": ["x"], "event_time": "ts", "freshness": {"sla": 5.0}})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-1e3, 1e6, allow_nan=False), max_size=40), min_size=1, max_size=5))
def test_freshness_buckets_merge_exactly_and_round_trip(parts):
    cfg = _fresh_config()
    whole, merged = FreshnessSketch(cfg), FreshnessSketch(cfg)
    for p in parts:
        one = FreshnessSketch(cfg)
        one.update(0.0, -np.array(p, dtype=np.float64))  # lag = 0 - (-p) = p
        whole.update(0.0, -np.array(p, dtype=np.float64))
        merged.merge(FreshnessSketch.from_bytes(one.to_bytes(), cfg))
    lags = np.array([v for p in parts for v in p], dtype=np.float64)
    assert np.array_equal(whole.buckets.counts, merged.buckets.counts)
    assert whole.buckets.counts.sum() == lags.size == merged.count
    # numpy: bucket k holds lags in (edge[k-1], edge[k]]; lags <= 0 in the lowest
    want = np.bincount(np.searchsorted(FRESHNESS_EDGES_SECONDS, lags, side="left"),
                       minlength=FRESHNESS_EDGES_SECONDS.size + 1)
    near = np.isclose(lags[:, None], FRESHNESS_EDGES_SECONDS[None, :], rtol=1e-12).any(axis=1)
    if not near.any():  # a lag within rounding of an edge may sit on either side (log2 counting)
        assert np.array_equal(whole.buckets.counts, want)
    back = FreshnessSketch.from_bytes(whole.to_bytes(), cfg)
    assert back.to_bytes() == whole.to_bytes()
    assert back.lag_sum == whole.lag_sum and math.isclose(whole.lag_sum, float(lags.sum()), rel_tol=1e-9,
                                                          abs_tol=1e-6)


def test_freshness_version_1_bytes_still_load():
    import fastdrift.codec as codec
    cfg = _fresh_config()
    fs = FreshnessSketch(cfg)
    fs.update(10.0, np.array([1.0, 2.0, 9.0]))
    v1 = codec.Writer().u8(1).u64(fs.count).u64(fs.over).f64(fs.max).blob(fs.lag.to_bytes()).getvalue()
    old = FreshnessSketch.from_bytes(v1, cfg)
    assert (old.count, old.over, old.max) == (3, 2, 9.0) and old.buckets.counts.sum() == 0
    from fastdrift.errors import CorruptStateError
    bad = bytearray(fs.to_bytes())
    bad[0] = 3
    with pytest.raises(CorruptStateError):
        FreshnessSketch.from_bytes(bytes(bad), cfg)


# -- the generated rules under promtool: where each must fire and where it must not -------------------

STEPS = 30  # minutes of input series (one sample a minute)
CANARY = dict(name="canary", owner="#ml", runbook="https://rb/canary", signal="canary", baseline="arm=stable",
              candidate="arm=canary", lower_is_better=["cost"])
RULES = [
    CANARY,
    dict(name="seg-errors", owner="#ml", runbook="https://rb/err", signal="error_rate", segments="*",
         warning={"threshold": 0.03, "min_rows": 500}),
    dict(name="canary-kpi", owner="#biz", runbook="https://rb/kpi", signal="kpi_delta", metric="relative",
         features=["rev"], segments=["arm=canary"], warning={"threshold": -0.1, "op": "<"}),
    dict(name="fresh-p95", owner="#data", runbook="https://rb/f", signal="freshness", quantile=0.95,
         warning={"threshold": 30, "min_rows": 100}),
    dict(name="fresh-share", owner="#data", runbook="https://rb/f", signal="freshness", metric="over_sla_share",
         warning=0.1),
    dict(name="shadow-agree", owner="#ml", runbook="https://rb/s", signal="shadow", metric="agreement",
         warning={"threshold": 0.9, "op": "<", "min_rows": 100}),
    dict(name="shadow-psi", owner="#ml", runbook="https://rb/s", signal="shadow", metric="psi", warning=0.2),
]
LE = ("0.025", "0.05", "0.1", "0.2", "+Inf")


def _s(name, values, **labels):
    lab = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{lab}}}", "values": values}


def _ramp(per_minute):
    return f"0+{float(per_minute)!r}x{STEPS}"


def _arm(inst, arm, rows, err=0.01, lat=1, kpi=(10.0, 2.0), cost=(3.0, 1.0), shares=(0.25, 0.25, 0.25, 0.25)):
    """One instance's counters of one arm, per minute: ``rows``, a share ``err`` of them failed, every
    latency in bucket ``LE[lat]``, KPIs rev and cost with (mean, sd), prediction bins in ``shares``."""
    seg = {"instance": inst, "job": "fd", "segment": f"arm={arm}", "arm": arm}
    out = [_s("fastdrift_segment_start_time_seconds", f"0x{STEPS}", **seg),
           _s("fastdrift_segment_rows_total", _ramp(rows), **seg),
           _s("fastdrift_segment_error_flag_rows_total", _ramp(rows), **seg),
           _s("fastdrift_segment_errors_total", _ramp(rows * err), **seg)]
    for i, le in enumerate(LE):
        out.append(_s("fastdrift_segment_latency_seconds_bucket", _ramp(rows if i >= lat else 0), le=le, **seg))
    for name, (mean, sd) in (("rev", kpi), ("cost", cost)):
        out += [_s("fastdrift_segment_kpi_count", _ramp(rows), kpi=name, **seg),
                _s("fastdrift_segment_kpi_sum", _ramp(rows * mean), kpi=name, **seg),
                _s("fastdrift_segment_kpi_squares_total", _ramp(rows * (sd * sd + mean * mean)), kpi=name, **seg),
                _s("fastdrift_segment_kpi_reference_mean", f"10x{STEPS}" if name == "rev" else f"3x{STEPS}",
                   kpi=name, **seg)]
    for b, share in enumerate(shares):
        out.append(_s("fastdrift_segment_feature_bin_rows_total", _ramp(rows * share), feature="score",
                      role="prediction", bin=str(b), **seg))
    return out


def _fleet(canary=None, stable=None, canary_rows=300):
    """Two instances, each with a stable arm (1,000 rows a minute) and a canary arm."""
    out = []
    for inst in ("w1", "w2"):
        out += _arm(inst, "stable", 1000, **(stable or {}))
        out += _arm(inst, "canary", canary_rows, **(canary or {}))
    return out


def _whole(inst, paired=1000, agree=0.97, champion=(0.25,) * 4, challenger=(0.25,) * 4, lags=(100, 0, 0),
           over=0.0):
    """Shadow and freshness counters of one instance, per minute: lags per bucket 1 s, 10 s, 60 s."""
    base = {"instance": inst, "job": "fd"}
    out = [_s("fastdrift_start_time_seconds", f"0x{STEPS}", **base),
           _s("fastdrift_shadow_paired_rows_total", _ramp(paired), **base),
           _s("fastdrift_shadow_agreed_rows_total", _ramp(paired * agree), **base)]
    for model, shares in (("champion", champion), ("challenger", challenger)):
        for b, share in enumerate(shares):
            out.append(_s("fastdrift_shadow_bin_rows_total", _ramp(paired * share), feature="score", model=model,
                          bin=str(b), **base))
    cum = np.cumsum(lags).tolist()
    for le, c in zip(("1", "10", "60", "+Inf"), cum + [cum[-1]]):
        out.append(_s("fastdrift_freshness_lag_seconds_bucket", _ramp(c), le=le, **base))
    out += [_s("fastdrift_freshness_lag_seconds_count", _ramp(cum[-1]), **base),
            _s("fastdrift_freshness_over_sla_rows_total", _ramp(cum[-1] * over), **base)]
    return out


def _alert(doc, rule, **labels):
    """The alert promtool must see: the generated rule's labels and annotations plus ``labels``."""
    a = next(r for g in doc["groups"] for r in g["rules"] if r.get("labels", {}).get("rule") == rule)
    return {"exp_labels": {**a["labels"], **labels}, "exp_annotations": a["annotations"]}


def _case(doc, series, fires):
    """One promtool test: ``fires`` maps each alert name to the alerts expected (others: none)."""
    names = sorted({a["alert"] for g in doc["groups"] for a in g["rules"] if "alert" in a})
    return {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "20m", "alertname": n, "exp_alerts": fires.get(n, [])}
                                for n in names]}


def _promtool_test(tmp_path, doc, cases):
    promtool = tool("promtool")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1_000_000))
    r = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": cases}, sort_keys=False, width=1_000_000))
    r = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    assert "SUCCESS" in r.stdout


def test_generated_rules_are_translated_with_notes_for_the_rest():
    doc, notes = prometheus_rules(RULES + [
        dict(name="fresh-max", owner="o", runbook="r", signal="freshness", metric="max", warning=60),
        dict(name="shadow-p99", owner="o", runbook="r", signal="shadow", metric="score_diff_p99", warning=0.1),
        dict(name="auc", owner="o", runbook="r", signal="performance", metric="roc_auc:delta",
             warning={"threshold": -0.05, "op": "<"}, segments="*")], "5m")
    assert [g["name"] for g in doc["groups"]] == ["fastdrift-recording-5m", "fastdrift-segment-recording-5m",
                                                  "fastdrift-shadow-freshness-recording-5m", "fastdrift-alerts-5m"]
    alerts = {a["labels"]["rule"] for a in doc["groups"][-1]["rules"]}
    assert alerts == {r["name"] for r in RULES}
    assert len(notes) == 3 and all("not translated" in n for n in notes)
    assert "fastdrift_window_freshness_max_seconds" in notes[0] and "score differences" in notes[1]
    assert "labels are joined to predictions in the monitor" in notes[2]
    canary = next(a for a in doc["groups"][-1]["rules"] if a["labels"]["rule"] == "canary")
    assert canary["annotations"]["not_reproduced"] == CANARY_NOTE.format(w="5m")
    assert "always-valid sequential tests" in canary["annotations"]["not_reproduced"]
    raw = {n for g in doc["groups"] for r in g["rules"] for n in __import__("re").findall(
        r"\bfastdrift_[a-z_]+", r["expr"])}
    assert raw and raw <= METRIC_NAMES


def test_canary_and_segment_rules_fire_under_promtool_exactly_where_they_must(tmp_path):
    doc, _ = prometheus_rules(RULES[:3], "5m")
    can = dict(segment="arm=canary")

    def canary(trigger, **labels):
        return _alert(doc, "canary", trigger=trigger, **labels)
    cases = [
        # A/A: the arms alike (the canary at 30 % of the traffic): nothing fires
        _case(doc, _fleet(), {}),
        # the canary fails 5 % of requests against 1 %: the canary's error-rate trigger, and the
        # per-segment error-rate rule (3 %) in the canary's segment only
        _case(doc, _fleet(canary={"err": 0.05}), {
            "Fastdrift_canary": [canary("error_rate", **can)],
            "Fastdrift_seg_errors": [_alert(doc, "seg-errors", **can)]}),
        # 1.3 % against 1 %: a difference the fixed-sample z-test does not find significant (z about 1.3)
        _case(doc, _fleet(canary={"err": 0.013}), {}),
        # every canary latency one bucket up (p99 about 2x): the p99 ratio trigger
        _case(doc, _fleet(canary={"lat": 2}), {"Fastdrift_canary": [canary("p99_ratio", quantile="0.99", **can)]}),
        # revenue 15 % lower in the canary: the KPI trigger and the segment's relative KPI-delta rule
        _case(doc, _fleet(canary={"kpi": (8.5, 2.0)}), {
            "Fastdrift_canary": [canary("kpi", kpi="rev", **can)],
            "Fastdrift_canary_kpi": [_alert(doc, "canary-kpi", kpi="rev", **can)]}),
        # revenue 4 % lower: within kpi_drop (5 %), nothing fires
        _case(doc, _fleet(canary={"kpi": (9.6, 2.0)}), {}),
        # cost (lower is better) 15 % higher: the KPI trigger on cost
        _case(doc, _fleet(canary={"cost": (3.45, 1.0)}), {"Fastdrift_canary": [canary("kpi", kpi="cost", **can)]}),
        # cost 15 % lower is better, not worse: nothing
        _case(doc, _fleet(canary={"cost": (2.55, 1.0)}), {}),
        # the canary's predictions shifted (PSI 0.87 between the arms): the PSI trigger
        _case(doc, _fleet(canary={"shares": (0.7, 0.1, 0.1, 0.1)}),
              {"Fastdrift_canary": [canary("psi", feature="score", role="prediction", **can)]}),
        # every trigger would fire, but the canary has 100 rows a minute (1,000 in 5 min over 2 instances
        # is the floor; 50 a minute is 500): nothing from the canary rule; the segment rule's own
        # min_rows (500) is met
        _case(doc, _fleet(canary={"err": 0.5, "lat": 3, "kpi": (5.0, 2.0), "shares": (0.9, 0.0, 0.1, 0.0)},
                          canary_rows=50),
              {"Fastdrift_seg_errors": [_alert(doc, "seg-errors", **can)],
               "Fastdrift_canary_kpi": [_alert(doc, "canary-kpi", kpi="rev", **can)]}),
    ]
    _promtool_test(tmp_path, doc, cases)


def test_shadow_and_freshness_rules_fire_under_promtool_exactly_where_they_must(tmp_path):
    doc, _ = prometheus_rules(RULES[3:], "5m")
    both = lambda **kw: _whole("w1", **kw) + _whole("w2", **kw)  # noqa: E731
    cases = [
        _case(doc, both(), {}),
        # 20 % of the lags in (10 s, 60 s]: p95 there (about 47 s > 30 s)
        _case(doc, both(lags=(80, 0, 20)), {"Fastdrift_fresh_p95": [_alert(doc, "fresh-p95", quantile="0.95")]}),
        # 3 % there: p95 in (1 s, 10 s]: nothing
        _case(doc, both(lags=(90, 7, 3)), {}),
        # 20 % over the SLA
        _case(doc, both(over=0.2), {"Fastdrift_fresh_share": [_alert(doc, "fresh-share")]}),
        # agreement 85 % < 90 %
        _case(doc, both(agree=0.85), {"Fastdrift_shadow_agree": [_alert(doc, "shadow-agree")]}),
        # the challenger's distribution shifted against the champion's on the same rows
        _case(doc, both(challenger=(0.7, 0.1, 0.1, 0.1)),
              {"Fastdrift_shadow_psi": [_alert(doc, "shadow-psi", feature="score")]}),
        # a mild shift (PSI 0.04): nothing
        _case(doc, both(challenger=(0.3, 0.25, 0.25, 0.2)), {}),
    ]
    _promtool_test(tmp_path, doc, cases)


# -- a real Prometheus scraping two segmented monitors --------------------------------------------------

WORKER = r"""
import sys, pyarrow.ipc as ipc
from fastdrift import Monitor
d, i = sys.argv[1], sys.argv[2]
read = lambda n: ipc.open_file(f"{d}/{n}.arrow").read_all()
m = Monitor(read("ref"), features=["x", "c"], prediction="score", latency="lat", error="err", kpis=["rev"],
            segment_by=["arm"], segment_reference="segment", window=10**9, rules=[])
m.update(read(f"cur{i}"))
server, _ = m.serve_metrics()
print(server.server_port, flush=True)
sys.stdin.readline()
"""
def _by_segment(res, *labels):
    return {tuple(r["metric"].get(k) for k in ("segment",) + labels): float(r["value"][1]) for r in res}


def test_real_prometheus_fleet_segments_and_canary_rollback(tmp_path):
    prometheus = tool("prometheus")
    rng = np.random.default_rng(21)
    ref = _table(rng, 6000)
    parts = [_table(rng, 2500, canary_shift=1.0), _table(rng, 1800, canary_shift=1.0)]
    for name, t in {"ref": ref, "cur0": parts[0], "cur1": parts[1]}.items():
        with ipc.new_file(str(tmp_path / f"{name}.arrow"), t.schema) as w:
            w.write_table(t)
    rules = [dict(CANARY, min_rows=500), RULES[1]]
    doc, _ = prometheus_rules(rules, "1h")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1_000_000))
    workers, prom = [], None
    try:
        for i in range(2):
            workers.append(subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(i)],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        ports = [int(w.stdout.readline()) for w in workers]
        prom, base = start_prometheus(prometheus, tmp_path, tmp_path / "rules.yml", ports)
        cur = pa.concat_tables(parts)
        arm = cur["arm"].to_numpy(zero_copy_only=False)
        want_rows = {(f"arm={a}",): float(np.sum(arm == a)) for a in ("stable", "canary", "dark")}
        deadline = time.monotonic() + 90
        at = firing = None
        while time.monotonic() < deadline:
            try:
                rows = _by_segment(query(base, "fastdrift:segment_rows:1h"))
                alerts = query(base, 'ALERTS{alertname="Fastdrift_canary", alertstate="firing"}')
            except OSError:
                rows, alerts = {}, []
            if rows == want_rows and len(alerts) >= 3:
                at = settled(time.time())
                firing = query(base, 'ALERTS{alertname="Fastdrift_canary", alertstate="firing"}', at)
                break
            time.sleep(0.3)
        if at is None:
            pytest.fail(f"Prometheus did not show the segment rows and the canary rollback in time "
                        f"(rows {rows}, alerts {alerts})")
        # the canary is rolled back on its error rate, p99 and revenue (its prediction is not shifted)
        assert {a["metric"]["trigger"] for a in firing} == {"error_rate", "p99_ratio", "kpi"}
        assert all(a["metric"]["segment"] == "arm=canary" for a in firing)
        # per segment across both processes: exact error ratios and KPI means, p99 within the bucket
        # bound, PSI equal to one monitor's per-segment PSI fed every row
        one = Monitor(ref, features=["x", "c"], prediction="score", latency="lat", error="err", kpis=["rev"],
                      segment_by=["arm"], segment_reference="segment", window=10**9, rules=[])
        one.update(cur)
        snap = one.snapshot()
        ratio = _by_segment(query(base, "fastdrift:segment_error_ratio:1h", at))
        means = _by_segment(query(base, 'fastdrift:segment_kpi_mean:1h{kpi="rev"}', at))
        p99 = _by_segment(query(base, 'fastdrift:segment_latency_seconds:1h{quantile="0.99"}', at))
        psi = _by_segment(query(base, "fastdrift:segment_feature_psi:1h", at), "feature")
        for a in ("stable", "canary", "dark"):
            rows = arm == a
            key = (f"arm={a}",)
            assert ratio[key] == pytest.approx(cur["err"].to_numpy()[rows].mean(), abs=1e-12)
            assert means[key] == pytest.approx(cur["rev"].to_numpy()[rows].mean(), rel=1e-9)
            exact = float(np.quantile(cur["lat"].to_numpy()[rows] / 1000.0, 0.99, method="inverted_cdf"))
            assert abs(p99[key] / exact - 1) <= LATENCY_BUCKET_FACTOR - 1, (a, p99[key], exact)
            seg = snap.segments[f"arm={a}"]
            assert seg.segment_reference == "segment"
            for name in ("x", "c"):
                assert psi[key + (name,)] == pytest.approx(seg.features[name].value, rel=1e-9, abs=1e-12), (a, name)
            assert psi[key + ("score",)] == pytest.approx(seg.prediction.value, rel=1e-9, abs=1e-12)
        # the per-segment error-rate rule (3 %) fires in the canary's segment only
        seg_alerts = query(base, 'ALERTS{alertname="Fastdrift_seg_errors", alertstate="firing"}', at)
        assert [a["metric"]["segment"] for a in seg_alerts] == ["arm=canary"]
    finally:
        stop(workers + ([prom] if prom else []), workers)
