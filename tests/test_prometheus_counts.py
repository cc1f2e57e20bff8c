"""The aggregatable exposition of a Monitor: per-bin counters, latency buckets and totals, checked
against numpy; checkpoint restore; the generated rules and dashboard (names, labels, timing)."""
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

prometheus_client = pytest.importorskip("prometheus_client")

import fastdrift  # noqa: E402
from fastdrift.exporters.prometheus import LATENCY_BUCKET_FACTOR, METRIC_NAMES  # noqa: E402
from fastdrift.exporters.promrules import _glob_re, grafana_dashboard, prometheus_rules  # noqa: E402
from fastdrift.monitor.signals import LATENCY_EDGES_SECONDS, WindowSketch  # noqa: E402
from promserver import scrape  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
CATS = ["a", "b", "<other>", "c"]  # a reference category spelled like the overflow bin


def _ref(rng, n=4000):
    return pa.table({"x": rng.normal(0, 1, n), "c": rng.choice(CATS, n), "score": rng.random(n)})


def _cur(rng, n, shift=0.0):
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.05] = np.nan
    c = rng.choice(CATS[:3] + ["new1", "new2"], n).astype(object)  # "c" absent, two unseen categories
    c[rng.random(n) < 0.03] = None
    lat = rng.lognormal(np.log(15), 1.0, n)
    lat[:3] = [-1.0, np.inf, 0.0]  # two invalid, one zero
    return pa.table({"x": x, "c": pa.array(c, pa.string()), "score": rng.random(n), "lat": lat,
                     "err": rng.random(n) < 0.1})


def _family(samples, name, **fixed):
    return {dict(k)["bin"] if "bin" in dict(k) else k: v for (n, k), v in samples.items()
            if n == name and all(dict(k).get(a) == b for a, b in fixed.items())}


def _oracle(ref, cur):
    """Counts per reference bin, missing counts, rows, errors, latency buckets: numpy only."""
    r = ref["x"].to_numpy()
    edges = np.unique(np.quantile(r, np.arange(1, 10) / 10))
    x = cur["x"].to_numpy(zero_copy_only=False)
    ok = ~np.isnan(x)
    out = {"x": np.bincount(np.searchsorted(edges, x[ok], side="right"), minlength=edges.size + 1),
           "x_missing": int((~ok).sum())}
    c = np.array(cur["c"].to_pylist(), dtype=object)
    present = c[c != None]  # noqa: E711
    out["c"] = {k: int((present == k).sum()) for k in CATS}
    out["c"]["<other>_"] = int(sum(v not in CATS for v in present))
    out["c_missing"] = int((c == None).sum())  # noqa: E711
    lat = cur["lat"].to_numpy()
    good = lat[np.isfinite(lat) & (lat >= 0)]
    out["latency_cum"] = [(good < e * 1000.0).sum() for e in LATENCY_EDGES_SECONDS] + [good.size]
    out["latency_sum"] = good.sum() / 1000.0
    out["latency_invalid"] = int(lat.size - good.size)
    out["errors"] = int(cur["err"].to_numpy(zero_copy_only=False).sum())
    return out


def _check(samples, ref, cur):
    want = _oracle(ref, cur)
    got_x = _family(samples, "fastdrift_feature_bin_rows_total", feature="x", role="feature")
    assert list(got_x.values()) == want["x"].tolist()  # in bin order
    assert all(re.fullmatch(r"\d \[\S+, \S+\)", b) for b in got_x)
    got_c = _family(samples, "fastdrift_feature_bin_rows_total", feature="c", role="feature")
    assert got_c == want["c"]
    m = {dict(k)["feature"]: v for (n, k), v in samples.items() if n == "fastdrift_feature_missing_total"}
    assert m["x"] == want["x_missing"] and m["c"] == want["c_missing"] and m["score"] == 0
    assert sum(_family(samples, "fastdrift_feature_bin_rows_total", feature="score", role="prediction").values()) \
        == cur.num_rows
    buckets = [v for (n, k), v in samples.items() if n == "fastdrift_latency_seconds_bucket"]
    assert buckets == want["latency_cum"]
    assert samples[("fastdrift_latency_seconds_count", ())] == want["latency_cum"][-1]
    assert samples[("fastdrift_latency_seconds_sum", ())] == pytest.approx(want["latency_sum"], rel=1e-12)
    assert samples[("fastdrift_rows_total", ())] == cur.num_rows
    assert samples[("fastdrift_errors_total", ())] == want["errors"]
    assert samples[("fastdrift_error_flag_rows_total", ())] == cur.num_rows
    assert samples[("fastdrift_latency_invalid_total", ())] == want["latency_invalid"]


def test_counters_equal_numpy_counts_over_closed_and_open_panes():
    rng = np.random.default_rng(3)
    ref = _ref(rng)
    m = fastdrift.Monitor(ref, features=["x", "c"], prediction="score", latency="lat", error="err", window=700)
    parts = [_cur(rng, 1000), _cur(rng, 1234, 0.5)]
    m.update(parts[0])
    first, _ = scrape(m)
    _check(first, ref, parts[0])
    m.update(parts[1])
    samples, text = scrape(m)
    _check(samples, ref, pa.concat_tables(parts))  # closed panes and the open one, each row once
    # reference shares: the reference's counts per bin over its non-missing values
    share = _family(samples, "fastdrift_feature_reference_share", feature="c")
    cats = np.array(ref["c"].to_pylist())
    assert share == {**{k: float((cats == k).mean()) for k in CATS}, "<other>_": 0.0}
    assert samples[("fastdrift_feature_reference_missing_ratio", (("feature", "x"), ("role", "feature")))] == 0.0
    # every configured rule tier is exported, inactive ones as 0
    states = {dict(k)["rule"] + "/" + dict(k)["severity"]: v for (n, k), v in samples.items()
              if n == "fastdrift_alert_state"}
    assert {"feature-drift/warning", "feature-drift/critical", "latency-p99/critical", "error-rate/warning",
            "schema-change/critical"} <= set(states)
    assert set(states.values()) <= {0.0, 1.0, 2.0} and 0.0 in states.values()
    assert samples[("fastdrift_start_time_seconds", ())] > 1.6e9
    assert samples[("fastdrift_window_end_timestamp_seconds", ())] > 1.6e9  # row windows: wall clock of the close
    # conventions: counters end in _total, no _ms names, the prediction uses the feature label
    assert "_ms" not in text and 'column="' not in text
    assert ("fastdrift_prediction_drift", (("feature", "score"), ("metric", "psi"))) in samples
    assert {n for n, _ in samples} <= METRIC_NAMES


def test_time_windows_export_the_last_window_end_and_late_drops():
    rng = np.random.default_rng(4)
    ref = _ref(rng)
    m = fastdrift.Monitor(ref, features=["x"], event_time="ts", window={"by": "time", "size": 60}, rules=[])
    t0 = 1_700_000_000.0
    for ts in (t0 + 10, t0 + 130, t0 + 5):  # the last batch is late: its pane has closed
        cur = _cur(rng, 50)
        m.update(cur.append_column("ts", pa.array(np.full(50, ts))))
    samples, _ = scrape(m)
    end = m.reports()[-1].window_end
    assert samples[("fastdrift_window_end_timestamp_seconds", ())] == end and end % 60 == 0 and end > t0 + 60
    assert samples[("fastdrift_dropped_late_rows_total", ())] == 50
    assert samples[("fastdrift_rows_total", ())] == 100
    assert not [k for k in samples if k[0] == "fastdrift_alert_state"]  # no rules, no states
    again, _ = scrape(fastdrift.Monitor.from_bytes(m.to_bytes()))  # a restored monitor knows it too
    assert again[("fastdrift_window_end_timestamp_seconds", ())] == end


def test_restored_monitor_counts_only_its_own_rows(tmp_path):
    rng = np.random.default_rng(5)
    ref = _ref(rng)
    kw = dict(features=["x", "c"], prediction="score", latency="lat", error="err", window=1000)
    m = fastdrift.Monitor(ref, **kw)
    m.update(_cur(rng, 1500))  # one closed pane, 500 rows open
    m.save(tmp_path / "m.ckpt")
    m2 = fastdrift.Monitor.load(tmp_path / "m.ckpt")
    zero, _ = scrape(m2)
    counts = [v for (n, _), v in zero.items() if n.endswith("_total") or n.endswith("_bucket")]
    assert counts and set(counts) == {0.0}  # the saving process exported those rows already
    assert m2.snapshot().latency.count == 500  # the open pane's t-digest ...
    b = _cur(rng, 777)
    m2.update(b)  # closes the restored pane (its 500 restored rows are not counted again)
    samples, _ = scrape(m2)
    _check(samples, ref, b)


def test_window_sketch_latency_buckets_round_trip_and_old_layouts_load():
    rng = np.random.default_rng(6)
    ref = _ref(rng)
    m = fastdrift.Monitor(ref, features=["x"], latency="lat", window=10**6, rules=[])
    m.update(_cur(rng, 300))
    ws = next(iter(m.ingest.windower.open.values()))
    again = WindowSketch.from_bytes(ws.to_bytes(), m.ingest.ref, m.config)
    assert again.latency_buckets.counts.tolist() == ws.latency_buckets.counts.tolist()
    assert again.latency_sum == ws.latency_sum and ws.latency_buckets.count == 298
    assert again.to_bytes() == ws.to_bytes()
    # a checkpoint written before the buckets existed: loads, its panes have empty buckets
    data = (GOLDEN / "monitor_checkpoint_layout2.bin").read_bytes()
    old = fastdrift.Monitor.from_bytes(data, rules=list(fastdrift.alerts.default_rules(["x", "c"], "score", True,
                                                                                        True)))
    panes = list(old.ingest.windower.open.values())
    assert panes and all(p.latency.n > 0 and p.latency_buckets.count == 0 for p in panes)
    samples, _ = scrape(old)
    assert samples[("fastdrift_latency_seconds_count", ())] == 0 and samples[("fastdrift_rows_total", ())] == 0


def test_latency_edges_and_bound():
    e = LATENCY_EDGES_SECONDS
    assert e.size == 161 and e[0] == 2.0 ** -13 and e[-1] == 2.0 ** 7
    assert np.allclose(e[1:] / e[:-1], LATENCY_BUCKET_FACTOR, rtol=1e-15, atol=0)
    assert LATENCY_BUCKET_FACTOR - 1 < 0.0906


# -- generated rules and dashboard -------------------------------------------------------------------

def _alerts(doc):
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_rules_mirror_tiers_timing_owner_and_runbook():
    rules = [dict(name="psi-top", owner="#ml-oncall", runbook="https://rb/psi", signal="feature_drift",
                  features=["age", "inc*"], warning=0.1, critical=0.25, **{"for": 3}, resolve_after=2,
                  description="drift"),
             dict(name="schema", owner="#biz", runbook="https://rb/s", signal="schema_change", warning=0),
             dict(name="slow", owner="#sre", runbook="https://rb/lat", signal="latency", quantile=0.95,
                  critical=250, min_rows=10)]
    doc, notes = prometheus_rules(rules, "10m")
    alerts = _alerts(doc)
    assert [(a["labels"]["rule"], a["labels"]["severity"]) for a in alerts] == [
        ("psi-top", "warning"), ("psi-top", "critical"), ("slow", "critical")]
    psi = alerts[1]
    assert psi["alert"] == "Fastdrift_psi_top" and psi["for"] == "20m" and psi["keep_firing_for"] == "10m"
    assert psi["labels"]["owner"] == "#ml-oncall" and psi["annotations"]["runbook_url"] == "https://rb/psi"
    assert psi["expr"] == 'fastdrift:feature_psi:10m{role="feature", feature=~"age|inc.*"} > 0.25'
    slow = alerts[2]
    assert "for" not in slow and "keep_firing_for" not in slow
    assert slow["expr"] == ('(fastdrift:latency_seconds:10m{quantile="0.95"} > 0.25) and on () '
                            "(fastdrift:rows:10m >= 10)")
    assert notes == ["rule 'schema' warning: not translated: signal 'schema_change' (no counter of it is exported)"]
    # every raw name a rule reads is one the exporter emits
    raw = {n for g in doc["groups"] for r in g["rules"] for n in re.findall(r"\bfastdrift_[a-z_]+", r["expr"])}
    assert raw and raw <= METRIC_NAMES


def test_pvalue_gate_uses_a_measured_chi_square_approximation():
    """The Wilson-Hilferty quantile the p-value gate uses, against scipy's exact chi-square quantile,
    for max_pvalue from 0.05 down to 1e-4: within 7.2 % at 1 degree of freedom, 3.5 % from 3 on,
    1.3 % from 9 on (decile bins); above the exact quantile (a stricter gate) from 1e-3 down."""
    from statistics import NormalDist
    from scipy.stats import chi2
    doc, _ = prometheus_rules([dict(name="p", owner="o", runbook="r", signal="feature_drift", warning=0.1,
                                    max_pvalue=1e-3)], "5m")
    expr = _alerts(doc)[0]["expr"]
    z = float(re.search(r"\+ ([0-9.]+) \* sqrt", expr).group(1))
    assert z == NormalDist().inv_cdf(1 - 1e-3)
    worst = {1: 0.0, 3: 0.0, 9: 0.0}
    for alpha in (0.05, 0.01, 1e-3, 1e-4):
        z = NormalDist().inv_cdf(1 - alpha)
        for d in range(1, 101):
            wh = d * (1 - 2 / (9 * d) + z * np.sqrt(2 / (9 * d))) ** 3
            rel = wh / chi2.ppf(1 - alpha, d) - 1
            assert alpha > 1e-3 or rel >= 0
            for lo in worst:
                if d >= lo:
                    worst[lo] = max(worst[lo], abs(rel))
    assert worst[1] < 0.072 and worst[3] < 0.035 and worst[9] < 0.013, worst


@pytest.mark.parametrize("globs,names", [
    (["inc*"], {"income": True, "inc": True, "xinc": False}),
    (["a?c", "[!x]y"], {"abc": True, "ac": False, "zy": True, "xy": False}),
    (["we.ird+"], {"we.ird+": True, "weXird+": False, "we.irdd": False}),
    (["[]a]x", "[!]]y"], {"]x": True, "ax": True, "bx": False, "by": True, "]y": False}),
    (["a[b", "c\\d"], {"a[b": True, "ab": False, "c\\d": True}),
])
def test_globs_become_anchored_regexes_with_fnmatch_semantics(globs, names):
    import fnmatch
    rx = _glob_re(globs)
    for name, want in names.items():
        assert any(fnmatch.fnmatchcase(name, g) for g in globs) is want
        assert (re.fullmatch(rx, name) is not None) is want  # PromQL =~ is fully anchored


def test_dashboard_queries_only_exported_names_and_ships_in_docs():
    dash = grafana_dashboard("5m")
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 6
    names = {n for e in exprs for n in re.findall(r"\b(fastdrift[a-z_:]*)", e)}
    assert names and names <= METRIC_NAMES  # raw names only: no recording rules needed
    titles = " ".join(p["title"] for p in dash["panels"])
    for want in ("PSI per feature", "Latency", "Error ratio", "Alert states"):
        assert want in titles
    shipped = json.loads((ROOT / "docs" / "grafana" / "fastdrift.json").read_text())
    assert shipped == json.loads(json.dumps(grafana_dashboard("5m")))  # regenerate with `fastdrift rules --grafana`


def test_rules_command_writes_files_and_reports_what_it_left_out(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fastdrift.cli", "rules", "--prometheus", str(tmp_path / "r.yml"),
                          "--grafana", str(tmp_path / "d.json"), "--window", "15m"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "cooldown" in out.stderr and "schema_change" in out.stderr
    import yaml
    doc = yaml.safe_load((tmp_path / "r.yml").read_text())
    assert [g["name"] for g in doc["groups"]] == ["fastdrift-recording-15m", "fastdrift-alerts-15m"]
    assert json.loads((tmp_path / "d.json").read_text())["panels"]
    bad = subprocess.run([sys.executable, "-m", "fastdrift.cli", "rules", "--prometheus", str(tmp_path / "x"),
                          "--window", "5 minutes"], capture_output=True, text=True)
    assert bad.returncode == 4 and "window '5 minutes'" in bad.stderr
    nothing = subprocess.run([sys.executable, "-m", "fastdrift.cli", "rules"], capture_output=True, text=True)
    assert nothing.returncode == 64 and "--prometheus FILE and/or --grafana FILE" in nothing.stderr  # usage
