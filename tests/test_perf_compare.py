"""fastdrift perf compare, the pytest plugin and `fastdrift bench --baseline` (docs/perf.md)."""
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats as sps

from fastdrift.cli import EXIT_CORRUPT, EXIT_INPUT, main
from fastdrift.codec import Kind, decode
from fastdrift.errors import CorruptStateError
from fastdrift.perf import compare_runs, format_json, read_run, run_from_timings, write_run
from fastdrift.perf.runs import EXACT_MAX
from fastdrift.perf.stats import batch_var, decide, mann_whitney, sample_stats, t_quantile

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {"cpu": "X", "cores": 2, "python": "3.11.0", "numpy": "2", "pyarrow": "20",
       "backend": {"histogram": "c"}, "kernel_build": "abc"}


def _lognormal(rng, n, shift=1.0, sigma=0.05, scale=1e-3):
    return scale * shift * rng.lognormal(0, sigma, n)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=60), st.lists(st.integers(1, 30), min_size=1, max_size=60))
def test_rank_test_matches_scipy_with_ties(a, b):
    bs, cs = np.sort(np.array(a, float)), np.sort(np.array(b, float))
    u, p, ps = mann_whitney(bs, cs)
    want = sps.mannwhitneyu(cs, bs, method="asymptotic")
    assert u == want.statistic
    if np.isnan(want.pvalue):  # every value tied: no evidence
        assert p == 1.0
    else:
        assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)
    assert ps == pytest.approx(u / (bs.size * cs.size))


def test_rank_test_matches_scipy_on_continuous_timings():
    rng = np.random.default_rng(3)
    for n, m, shift in [(50, 40, 1.0), (1000, 1200, 1.01), (5000, 5000, 1.002)]:
        bs, cs = np.sort(_lognormal(rng, n)), np.sort(_lognormal(rng, m, shift))
        u, p, _ = mann_whitney(bs, cs)
        want = sps.mannwhitneyu(cs, bs, method="asymptotic")
        assert u == want.statistic and p == pytest.approx(want.pvalue, rel=1e-9)


def test_median_interval_covers_the_true_ratio():
    # 300 pairs of lognormal samples with a known 7% shift: the 99% interval misses it rarely
    rng = np.random.default_rng(5)
    miss = 0
    for _ in range(300):
        s = sample_stats(np.sort(_lognormal(rng, 200)), np.sort(_lognormal(rng, 200, 1.07)))
        d = decide([s.median_cur / s.median_base], [s.se_log_median], [s.p_value], 0.05)
        miss += not (d["lo"][0] <= 1.07 <= d["hi"][0])
    assert miss <= 9  # 1% expected (3); binomial 99.9% bound ~ 9


def test_verdicts_on_known_shifts():
    rng = np.random.default_rng(7)
    names = ["same", "slow20", "slow8", "fast20", "slow2", "tiny"]
    base = {n: _lognormal(rng, 400) for n in names}
    base["tiny"] = _lognormal(rng, 4, sigma=0.3)
    cur = {"same": _lognormal(rng, 400), "slow20": _lognormal(rng, 600, 1.2),
           "slow8": _lognormal(rng, 120, 1.08, sigma=0.1), "fast20": _lognormal(rng, 400, 1 / 1.2),
           "slow2": _lognormal(rng, 4000, 1.02, sigma=0.02), "tiny": _lognormal(rng, 4, 1.5, sigma=0.3)}
    base["slow2"] = _lognormal(rng, 4000, sigma=0.02)
    base["slow8"] = _lognormal(rng, 120, sigma=0.1)
    base["slow20"] = _lognormal(rng, 600)  # p99 intervals need ~500 rounds
    c = compare_runs(run_from_timings(base), run_from_timings(cur), 0.05)
    got = {r.benchmark: (r.verdict, r.severity) for r in c.rows}
    assert got["same"] == ("unchanged", "")
    assert got["slow20"] == ("regressed", "critical")
    assert got["slow8"] == ("regressed", "warning")  # estimate beyond 5%, interval not entirely
    assert got["fast20"] == ("improved", "")
    assert got["slow2"] == ("unchanged", "")  # real but within the allowed 5%
    assert "significant shift of +2" in next(r.note for r in c.rows if r.benchmark == "slow2")
    assert got["tiny"] == ("too noisy to tell", "")
    tiny = next(r for r in c.rows if r.benchmark == "tiny")
    assert tiny.min_detectable == np.inf and "4 and 4 rounds cannot reach significance" in tiny.note
    noisy = compare_runs(run_from_timings({"a": _lognormal(rng, 30, sigma=0.3)}),
                         run_from_timings({"a": _lognormal(rng, 30, sigma=0.3)})).rows[0]
    assert noisy.verdict == "too noisy to tell" and 0.10 < noisy.min_detectable < 1
    assert f"could miss a slowdown of up to {noisy.min_detectable:.0%}" in noisy.note
    slow20 = next(r for r in c.rows if r.benchmark == "slow20")
    assert slow20.median_ratio_lo > 1.05 and slow20.throughput_ratio == pytest.approx(1 / slow20.median_ratio)
    assert slow20.p99_ratio == pytest.approx(np.quantile(cur["slow20"], 0.99) / np.quantile(base["slow20"], 0.99))
    assert np.isfinite(slow20.p99_ratio_lo) and slow20.p99_ratio_lo < slow20.p99_ratio < slow20.p99_ratio_hi
    assert c.exit_status == 2
    only_warning = compare_runs(run_from_timings({"a": base["slow8"]}), run_from_timings({"a": cur["slow8"]}))
    assert only_warning.exit_status == 1
    nothing = compare_runs(run_from_timings({"a": base["same"]}), run_from_timings({"a": cur["fast20"]}))
    assert nothing.exit_status == 0


def test_a_machine_that_slows_down_during_a_run_is_too_noisy_not_a_regression():
    # the current run's second half ran on a machine 25% slower (a neighbour started a job):
    # sampling error alone calls that a regression; the batch-means error sees the drift
    rng = np.random.default_rng(12)
    base = _lognormal(rng, 200, sigma=0.03)
    cur = np.concatenate([_lognormal(rng, 100, sigma=0.03), _lognormal(rng, 100, 1.25, sigma=0.03)])
    s = sample_stats(np.sort(base), np.sort(cur))  # without the rounds' order
    assert decide([s.median_cur / s.median_base], [s.se_log_median], [s.p_value], 0.05)["verdict"][0] == "regressed"
    row = compare_runs(run_from_timings({"a": base}), run_from_timings({"a": cur})).rows[0]
    assert row.verdict == "too noisy to tell" and row.median_ratio_lo < 1
    # the same rounds steady (shuffled in time): the order-statistic error decides, as before
    steady = compare_runs(run_from_timings({"a": base}), run_from_timings({"a": rng.permutation(cur)})).rows[0]
    assert steady.verdict == "regressed"


def test_batch_means_match_the_order_statistic_error_on_a_steady_machine():
    rng = np.random.default_rng(13)
    ratios = []
    for _ in range(200):
        x = _lognormal(rng, 400, sigma=0.1)
        one_side = sample_stats(np.sort(x), np.sort(x)).se_log_median / math.sqrt(2)
        ratios.append(math.sqrt(batch_var(x)) / one_side)
    assert 0.8 < np.mean(ratios) < 1.25
    assert t_quantile(0.995, 14) == pytest.approx(sps.t.ppf(0.995, 14), rel=2e-3)
    assert t_quantile(0.995, 6) == pytest.approx(sps.t.ppf(0.995, 6), rel=1e-2)


def _pytest_benchmark_json(path, benches, data=True, machine="cpu A"):
    doc = {"machine_info": {"cpu": {"brand_raw": machine, "count": 2}, "python_version": "3.11.0"},
           "benchmarks": []}
    for name, x in benches.items():
        x = np.asarray(x, float)
        q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75]) if x.size else (0, 0, 0)
        stats = {"median": float(med), "iqr": float(q3 - q1), "rounds": int(x.size), "min": float(x.min())}
        if data:
            stats["data"] = x.tolist()
        doc["benchmarks"].append({"name": name, "fullname": f"t.py::{name}", "stats": stats, "extra_info": {}})
    pathlib.Path(path).write_text(json.dumps(doc))
    return str(path)


def test_summary_only_json_gives_a_weaker_verdict(tmp_path, capsys):
    rng = np.random.default_rng(11)
    b = _pytest_benchmark_json(tmp_path / "b.json", {"a": _lognormal(rng, 500)}, data=False)
    c = _pytest_benchmark_json(tmp_path / "c.json", {"a": _lognormal(rng, 500, 1.3)}, data=False)
    assert main(["perf", "compare", b, c]) == 2
    out = capsys.readouterr().out
    assert "regressed (critical) *" in out and "summary statistics only" in out and "weaker" in out
    assert main(["perf", "compare", b, c, "--format", "json"]) == 2
    row = json.loads(capsys.readouterr().out)["benchmarks"][0]
    assert row["basis"] == "summary" and row["p99_ratio"] is None and row["p_slower"] is None


def test_bad_input_each_gets_a_line_and_nothing_is_compared_wrongly(tmp_path, capsys):
    rng = np.random.default_rng(2)
    good = _lognormal(rng, 100)
    base = _pytest_benchmark_json(tmp_path / "b.json", {"ok": good, "zero": good, "gone": good, "few": good,
                                                        "neg": good})
    doc = json.loads(pathlib.Path(base).read_text())
    cur_doc = json.loads(json.dumps(doc))
    by = {b["name"]: b for b in cur_doc["benchmarks"]}
    by["zero"]["stats"]["data"][5] = 0.0
    by["neg"]["stats"]["data"][7] = -1e-3
    by["few"]["stats"]["data"] = by["few"]["stats"]["data"][:60]  # stats say 100 rounds
    cur_doc["benchmarks"] = [b for b in cur_doc["benchmarks"] if b["name"] != "gone"]
    cur_doc["benchmarks"].append({"name": "new", "fullname": "t.py::new", "stats": {"data": good.tolist()}})
    cur = tmp_path / "c.json"
    cur.write_text(json.dumps(cur_doc))
    assert main(["perf", "compare", base, str(cur)]) == 0
    out = capsys.readouterr().out
    assert "t.py::zero: current: 1 zero or negative timings" in out
    assert "t.py::neg: current: 1 zero or negative timings" in out
    assert "t.py::few: current: missing rounds: 60 timings saved of the 100 rounds it ran" in out
    assert "t.py::gone: baseline: only in the baseline" in out
    assert "t.py::new: current: only in the current run" in out
    assert "1 compared" in out and "5 not compared" in out
    assert main(["perf", "compare", base, str(cur), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["benchmark"] for r in doc["benchmarks"]] == ["t.py::ok"]
    assert len(doc["not_compared"]) == 5
    # another tool's JSON, not JSON at all, no such file: one error line, exit 4
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"results": [{"name": "x", "time": 1.0}]}))
    for path, words in [(other, "not pytest-benchmark's"), (tmp_path / "none.json", "No such file")]:
        capsys.readouterr()
        assert main(["perf", "compare", base, str(path)]) == EXIT_INPUT
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and str(path) in err[0]
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01binary")
    assert main(["perf", "compare", base, str(tmp_path / "junk.bin")]) == EXIT_INPUT
    assert main(["perf", "compare", base, base, "--max-regression", "lots"]) == EXIT_INPUT


def test_tables_with_units(tmp_path, capsys):
    rng = np.random.default_rng(4)
    x = _lognormal(rng, 200, scale=1.0)  # ms
    y = _lognormal(rng, 200, 1.25, scale=1.0)

    def table(vals_ms, rate):
        n = vals_ms.size
        return pa.table({"benchmark": ["lat"] * n + ["ns"] * n + ["rate"] * n + ["odd"] * n,
                         "value": np.concatenate([vals_ms, vals_ms * 1e6, rate, vals_ms]),
                         "unit": ["ms"] * n + ["ns"] * n + ["rows/s"] * n + ["furlongs"] * n})
    pq.write_table(table(x, 1e6 / x), tmp_path / "b.parquet")
    pacsv.write_csv(table(y, 1e6 / (x / 1.25)), tmp_path / "c.csv")  # rate up 25%: faster
    c = compare_runs(read_run(str(tmp_path / "b.parquet")), read_run(str(tmp_path / "c.csv")))
    got = {r.benchmark: r for r in c.rows}
    assert got["lat"].verdict == "regressed" and got["ns"].verdict == "regressed"
    assert got["lat"].median_base == pytest.approx(np.median(x) * 1e-3)
    assert got["lat"].median_ratio == pytest.approx(got["ns"].median_ratio)
    assert got["rate"].verdict == "improved" and got["rate"].throughput_ratio == pytest.approx(1.25)
    assert [p["benchmark"] for p in c.problems] == ["odd", "odd"] and "furlongs" in c.problems[0]["problem"]
    pq.write_table(pa.table({"name": ["a"], "value": [1.0]}), tmp_path / "bad.parquet")
    with pytest.raises(Exception, match="no column 'benchmark'"):
        read_run(str(tmp_path / "bad.parquet"))


def test_run_file_exact_when_small_tdigest_when_large(tmp_path):
    rng = np.random.default_rng(9)
    small, large = _lognormal(rng, 50), _lognormal(rng, EXACT_MAX + 5000)
    path = str(tmp_path / "run.fdr")
    write_run(path, {"small": small, "large": large}, ENV, per_call={"small": 1000.0})
    blob = pathlib.Path(path).read_bytes()
    assert decode(blob)[0] is Kind.PERF_RUN and Kind.PERF_RUN == 21
    run = read_run(path)
    assert run.env == ENV
    assert np.array_equal(run.benchmarks["small"].values, np.sort(small))  # exact
    assert run.benchmarks["small"].per_call == 1000.0 and run.benchmarks["large"].per_call is None
    lv = run.benchmarks["large"].values
    assert lv.size == large.size and lv[0] == large.min() and lv[-1] == large.max()
    for q in (0.5, 0.99):  # digest: rank error well under 1%
        rank = np.searchsorted(np.sort(large), np.quantile(lv, q)) / large.size
        assert abs(rank - q) < 0.005
    assert len(blob) < large.size * 8 / 5  # a digest, not the values
    # the same timings against themselves: unchanged
    assert compare_runs(run, run).rows[0].verdict == "unchanged"
    bad = bytearray(blob)
    bad[40] ^= 0xFF
    pathlib.Path(path).write_bytes(bytes(bad))
    with pytest.raises(CorruptStateError):
        read_run(path)
    assert main(["perf", "compare", path, path]) == EXIT_CORRUPT


def test_different_environments_are_flagged(tmp_path, capsys):
    rng = np.random.default_rng(1)
    write_run(str(tmp_path / "a.fdr"), {"x": _lognormal(rng, 100)}, ENV)
    write_run(str(tmp_path / "b.fdr"), {"x": _lognormal(rng, 100)}, dict(ENV, cpu="Y", cores=8))
    assert main(["perf", "compare", str(tmp_path / "a.fdr"), str(tmp_path / "b.fdr")]) == 0
    out = capsys.readouterr().out
    assert "ENVIRONMENTS DIFFER" in out and "cpu: 'X' (baseline) vs 'Y' (current)" in out and "cores: 2" in out
    c = compare_runs(read_run(str(tmp_path / "a.fdr")), read_run(str(tmp_path / "a.fdr")))
    assert c.env_differences == []
    assert json.loads(format_json(compare_runs(read_run(str(tmp_path / "a.fdr")),
                                               read_run(str(tmp_path / "b.fdr")))))["environment_differences"]
    # pytest-benchmark JSON records the CPU too
    b = _pytest_benchmark_json(tmp_path / "b.json", {"x": _lognormal(rng, 50)}, machine="cpu A")
    c = _pytest_benchmark_json(tmp_path / "c.json", {"x": _lognormal(rng, 50)}, machine="cpu B")
    assert compare_runs(read_run(b), read_run(c)).env_differences == ["cpu: 'cpu A' (baseline) vs 'cpu B' (current)"]


def test_html_report(tmp_path):
    rng = np.random.default_rng(1)
    b = _pytest_benchmark_json(tmp_path / "b.json", {"<x>": _lognormal(rng, 100)})
    c = _pytest_benchmark_json(tmp_path / "c.json", {"<x>": _lognormal(rng, 100, 1.5)})
    assert main(["perf", "compare", b, c, "--format", "html", "-o", str(tmp_path / "r.html")]) == 2
    text = (tmp_path / "r.html").read_text()
    assert "t.py::&lt;x&gt;" in text and "regressed (critical)" in text


TINY = """
import os

def work():
    s = 0
    for i in range(int(os.environ.get("WORK", "3000"))):
        s += i
    return s

def test_work(benchmark):
    benchmark.extra_info["n"] = 1
    benchmark.pedantic(work, rounds=200, iterations=2, warmup_rounds=5)
"""


def _pytest(cwd, *args, work=3000):
    env = dict(os.environ, WORK=str(work))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_real_pytest_benchmark_run_is_read(tmp_path, capsys):
    (tmp_path / "test_tiny.py").write_text(TINY)
    r = _pytest(tmp_path, "test_tiny.py", "--benchmark-json=base.json")
    assert r.returncode == 0, r.stdout[-2000:]
    r = _pytest(tmp_path, "test_tiny.py", "--benchmark-json=slow.json", work=12000)  # 4x the work
    assert r.returncode == 0, r.stdout[-2000:]
    base = read_run(str(tmp_path / "base.json"))
    b = base.benchmarks["test_tiny.py::test_work"]
    assert b.values.size == 200 and b.per_call == 1 and base.env["cores"] == os.cpu_count()
    doc = json.loads((tmp_path / "base.json").read_text())["benchmarks"][0]["stats"]
    assert np.array_equal(b.values, np.sort(doc["data"]))
    assert main(["perf", "compare", str(tmp_path / "base.json"), str(tmp_path / "slow.json")]) == 2
    out = capsys.readouterr().out
    assert "test_tiny.py::test_work  regressed (critical)" in out


def test_plugin_saves_and_fails_the_run_on_an_injected_slowdown(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY)
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-save=base.fdr")
    assert r.returncode == 0, r.stdout[-2000:]
    run = read_run(str(tmp_path / "base.fdr"))
    assert run.benchmarks["test_tiny.py::test_work"].values.size == 200
    assert set(run.env) == {"cpu", "cores", "python", "numpy", "pyarrow", "backend", "kernel_build", "simd"}
    from fastdrift import kernels
    assert run.env["backend"] == {f: "c" for f in kernels.DEFAULT_BACKENDS} and "histogram" in run.env["backend"]
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-baseline=base.fdr", work=12000)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "fastdrift benchmark gate" in r.stdout and "regressed (critical)" in r.stdout
    assert "FAILED: 1 benchmark(s) regressed" in r.stdout
    # 4x faster than the baseline: improved, the run passes
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-save=slow.fdr", work=12000)
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-baseline=slow.fdr")
    assert r.returncode == 0, r.stdout[-3000:]
    assert "improved" in r.stdout
    # a bad baseline is a usage error before anything runs
    (tmp_path / "other.json").write_text("{}")
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-baseline=other.json")
    assert r.returncode == 4 and "not pytest-benchmark's" in r.stderr


def test_plugin_is_inert_in_a_plain_run(tmp_path):
    (tmp_path / "test_plain.py").write_text("import sys\n\ndef test_x():\n    assert 'fastdrift' not in sys.modules\n")
    r = _pytest(tmp_path, "test_plain.py", "-p", "no:benchmark")
    assert r.returncode == 0, r.stdout[-2000:]
    r = _pytest(tmp_path, "test_plain.py", "-p", "no:benchmark", "--fastdrift-save=x.fdr")
    assert r.returncode == 4 and "need pytest-benchmark" in r.stderr


BENCH = """
import os

def test_steady(benchmark):
    benchmark.pedantic(lambda: sum(range(3000)), rounds=150, iterations=2)

def test_moved(benchmark):
    n = int(os.environ.get("MOVED_WORK", "3000"))
    benchmark.pedantic(lambda: sum(range(n)), rounds=150, iterations=2)
"""


def test_bench_baseline_prints_which_moved(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "bench").mkdir(parents=True)
    shutil.copy(ROOT / "bench" / "run.py", checkout / "bench" / "run.py")
    (checkout / "bench" / "bench_tiny.py").write_text(BENCH)
    env = dict(os.environ, FASTDRIFT_BENCH_JSON=str(tmp_path / "base.json"))
    cmd = [sys.executable, "-m", "fastdrift.cli", "bench", "--path", str(checkout)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    env["MOVED_WORK"] = "15000"
    r = subprocess.run(cmd + ["--baseline", str(tmp_path / "base.json")], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-2000:]
    moved = [ln for ln in r.stdout.splitlines() if ln.startswith("moved:")]
    # test_steady may move too on a busy machine (the runs are minutes apart); test_moved must
    assert moved and "bench/bench_tiny.py::test_moved (regressed" in moved[0]
    assert "baseline " in r.stdout and "Not compared" not in r.stdout
