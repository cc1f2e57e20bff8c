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
from fastdrift.perf import compare_runs, environment, format_json, read_run, run_from_timings, write_run
from fastdrift.perf.runs import EXACT_MAX
from fastdrift.perf.probe import ProbeRecord
from fastdrift.perf.stats import (block_compare, block_log_medians, decide, mann_whitney, probe_block_levels,
                                  sample_stats, t_quantile)

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
    z = sps.norm.ppf(0.995)
    for _ in range(300):
        s = sample_stats(np.sort(_lognormal(rng, 200)), np.sort(_lognormal(rng, 200, 1.07)))
        d = decide([math.log(s.median_cur / s.median_base)], [s.se_log_median], [z], 0.05)
        miss += not (d["lo"][0] <= 1.07 <= d["hi"][0])
    assert miss <= 9  # 1% expected (3); binomial 99.9% bound ~ 9


def test_block_interval_covers_the_true_ratio_and_welch_matches_scipy():
    # blocks of rounds on a steady machine: the t interval from the between-block variance
    # covers a known 7% shift at its nominal rate; the p-value is scipy's Welch test
    rng = np.random.default_rng(6)
    miss = 0
    for _ in range(300):
        b, c = _lognormal(rng, 100, sigma=0.2), _lognormal(rng, 80, 1.07, sigma=0.2)
        bb, bc = block_log_medians(b), block_log_medians(c)
        s = block_compare(bb, bc)
        q = t_quantile(0.995, s.dof)
        miss += not (s.log_ratio - q * s.se <= math.log(1.07) <= s.log_ratio + q * s.se)
        want = sps.ttest_ind(bc, bb, equal_var=False)
        assert s.log_ratio == pytest.approx(bc.mean() - bb.mean())
        assert s.dof == pytest.approx(want.df, rel=1e-9)
        assert s.p_value == pytest.approx(want.pvalue, rel=1e-7)
    assert miss <= 9
    x = np.arange(1.0, 101.0)
    assert np.array_equal(block_log_medians(x), np.log(np.median(x.reshape(10, 10), axis=1)))
    assert block_log_medians(x[:11]) is None  # 3 blocks of 3 rounds: too few


def test_decision_rule_on_known_ratios():
    # estimate and interval against --max-regression 5% and half of it
    z = 2.0
    cases = [  # ratio, se -> verdict, severity
        (1.20, 0.01, "regressed", "critical"),   # interval wholly above 1.05
        (1.07, 0.010, "regressed", "warning"),   # estimate > 1.05, lower end 1.049 > 1.025
        (1.07, 0.022, "unchanged", ""),          # lower end 1.024 < 1.025: not shown to matter
        (1.04, 0.001, "unchanged", ""),          # real, within the allowed 5%
        (1.30, 0.20, "too noisy to tell", ""),   # could miss far more than 10%
        (1 / 1.20, 0.01, "improved", ""),
        (1.0, 0.001, "unchanged", ""),
    ]
    d = decide(np.log([c[0] for c in cases]), [c[1] for c in cases], [z] * len(cases), 0.05)
    for i, (ratio, se, verdict, severity) in enumerate(cases):
        assert (d["verdict"][i], d["severity"][i]) == (verdict, severity), (ratio, se)
        assert d["lo"][i] == pytest.approx(ratio * math.exp(-z * se))
    # the minimum detectable effect: the estimate must clear 5% and the interval 2.5%, plus the power
    mde = decide([0.0], [0.02], [z], 0.05)["mde"][0]
    assert mde == pytest.approx(math.expm1(max(math.log(1.05), math.log(1.025) + z * 0.02) + sps.norm.ppf(0.8) * 0.02))


def _machine_run(rng, n, speed, drift=0.0, slowdown=1.0, sigma=0.08, probe_every=1, seed_scale=1e-3):
    """One synthetic run: the machine's slowness ``speed`` (with a drift within the run) multiplies
    the benchmark's rounds and the probes alike; ``slowdown`` only the benchmark's."""
    t = np.linspace(0, 1, n)
    machine = speed * np.exp(drift * t)
    x = seed_scale * slowdown * machine * rng.lognormal(0, sigma, n)
    at = np.arange(0, n + 1, probe_every)
    m_at = np.interp(at, np.arange(n), machine)
    probe = ProbeRecord(5e-4 * m_at * rng.lognormal(0, sigma, at.size), 1e-3 * m_at * rng.lognormal(0, sigma, at.size),
                        at)
    return x, probe


def test_probe_divides_out_run_level_speed_changes_and_keeps_real_slowdowns():
    # A/A pairs whose machine speed differs by up to 2x between runs and drifts within them (the
    # probe sees it): the raw comparison flags many, the normalized one none; a real 20% slowdown
    # (the probe does not see it) is still caught
    rng = np.random.default_rng(21)
    raw_flags = norm_flags = caught = 0
    for _ in range(200):
        sb, sc = rng.lognormal(0, 0.35, 2)
        xb, pb = _machine_run(rng, 100, sb, drift=rng.normal(0, 0.2))
        xc, pc = _machine_run(rng, 100, sc, drift=rng.normal(0, 0.2))
        raw = compare_runs(run_from_timings({"a": xb}), run_from_timings({"a": xc}), threads=1).rows[0]
        norm = compare_runs(run_from_timings({"a": xb}, probes={"a": pb}),
                            run_from_timings({"a": xc}, probes={"a": pc}), threads=1).rows[0]
        assert raw.basis == "raw" and norm.basis == "probe"
        assert norm.ratio == pytest.approx(norm.median_ratio / norm.machine_ratio, rel=0.1)
        raw_flags += raw.verdict == "regressed"
        norm_flags += norm.verdict == "regressed"
        xs, ps = _machine_run(rng, 100, sc, slowdown=1.2)
        slow = compare_runs(run_from_timings({"a": xb}, probes={"a": pb}),
                            run_from_timings({"a": xs}, probes={"a": ps}), threads=1).rows[0]
        caught += slow.verdict == "regressed"
    assert raw_flags > 40  # the machine alone reads as a regression in a quarter of the pairs or more
    assert norm_flags <= 2
    assert caught >= 190


@settings(max_examples=40, deadline=None)
@given(st.floats(0.2, 5.0), st.floats(0.2, 5.0), st.integers(12, 300), st.integers(1, 7))
def test_normalized_ratio_ignores_any_speed_factor_the_probe_shares(a, b, n, every):
    # scaling a run's rounds and its probes by the same factor leaves the normalized ratio, its
    # interval and the verdict unchanged (exactly, up to float rounding)
    rng = np.random.default_rng(n * 7 + every)
    xb, pb = _machine_run(rng, n, 1.0, probe_every=every)
    xc, pc = _machine_run(rng, n, 1.0, slowdown=1.1, probe_every=every)

    def row(fb, fc):
        scaled = [ProbeRecord(p.mem * f, p.cpu * f, p.at) for p, f in ((pb, fb), (pc, fc))]
        return compare_runs(run_from_timings({"a": xb * fb}, probes={"a": scaled[0]}),
                            run_from_timings({"a": xc * fc}, probes={"a": scaled[1]}), threads=1).rows[0]
    r0, r1 = row(1.0, 1.0), row(a, b)
    assert r1.ratio == pytest.approx(r0.ratio, rel=1e-9)
    assert r1.ratio_lo == pytest.approx(r0.ratio_lo, rel=1e-9) and r1.ratio_hi == pytest.approx(r0.ratio_hi, rel=1e-9)
    assert r1.machine_ratio == pytest.approx(r0.machine_ratio * b / a, rel=1e-9)
    assert r1.verdict == r0.verdict


def test_probe_block_levels_take_the_probes_around_each_block():
    probe = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    at = np.array([0, 3, 6, 9, 12])
    got = probe_block_levels(probe, at, 12, 4)  # blocks of rounds [0,3), [3,6), [6,9), [9,12)
    want = [np.median(np.log(probe[j:j + 2])) for j in range(4)]  # the probes at both ends
    assert np.allclose(got, want)
    # the middle blocks have no probe of their own: interpolated at their middle
    sparse = probe_block_levels(np.array([1.0, 4.0]), np.array([0, 40]), 40, 4)
    assert np.allclose(sparse, [0.0, np.log(4) * 15 / 40, np.log(4) * 25 / 40, np.log(4)])


def test_the_probe_weight_follows_the_kind_of_slowdown():
    # a memory-bound benchmark follows the memory probe, a compute-bound one the compute probe:
    # the machine's memory and compute speeds vary independently within and between runs
    rng = np.random.default_rng(31)

    def run(n, mem_speed, cpu_speed, follows, slowdown=1.0):
        t = np.arange(n)
        m = mem_speed * np.exp(0.15 * np.sin(t / 17.0) + rng.normal(0, 0.02, n))  # within-run swings
        c = cpu_speed * np.exp(0.15 * np.cos(t / 11.0) + rng.normal(0, 0.02, n))
        x = 1e-3 * slowdown * (m if follows == "mem" else c) * rng.lognormal(0, 0.03, n)
        return x, ProbeRecord(5e-4 * np.append(m, m[-1]), 1e-3 * np.append(c, c[-1]), np.arange(n + 1))
    for follows in ("mem", "cpu"):
        xb, pb = run(200, 1.0, 1.0, follows)
        xc, pc = run(200, 1.3, 0.8, follows)  # memory 30% slower, compute 20% faster
        row = compare_runs(run_from_timings({"a": xb}, probes={"a": pb}),
                           run_from_timings({"a": xc}, probes={"a": pc})).rows[0]
        assert row.memory_weight == pytest.approx(1.0 if follows == "mem" else 0.0, abs=0.1)
        assert row.verdict == "unchanged" and abs(row.ratio - 1) < 0.03
        xs, ps = run(200, 1.3, 0.8, follows, slowdown=1.1)
        slow = compare_runs(run_from_timings({"a": xb}, probes={"a": pb}),
                            run_from_timings({"a": xs}, probes={"a": ps})).rows[0]
        assert slow.verdict == "regressed" and slow.ratio == pytest.approx(1.1, abs=0.03)


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
    assert slow20.ratio_lo > 1.05 and slow20.throughput_ratio == pytest.approx(1 / slow20.median_ratio)
    assert slow20.p99_ratio == pytest.approx(np.quantile(cur["slow20"], 0.99) / np.quantile(base["slow20"], 0.99))
    assert np.isfinite(slow20.p99_ratio_lo) and slow20.p99_ratio_lo < slow20.p99_ratio < slow20.p99_ratio_hi
    assert c.exit_status == 2
    only_warning = compare_runs(run_from_timings({"a": base["slow8"]}), run_from_timings({"a": cur["slow8"]}))
    assert only_warning.exit_status == 1
    nothing = compare_runs(run_from_timings({"a": base["same"]}), run_from_timings({"a": cur["fast20"]}))
    assert nothing.exit_status == 0


def test_a_machine_that_slows_down_during_a_run_is_too_noisy_not_a_regression():
    # the current run's second half ran on a machine 25% slower (a neighbour started a job):
    # sampling error alone calls that a regression; the between-block error sees the drift
    rng = np.random.default_rng(12)
    base = _lognormal(rng, 200, sigma=0.03)
    cur = np.concatenate([_lognormal(rng, 80, sigma=0.03), _lognormal(rng, 120, 1.25, sigma=0.03)])
    s = sample_stats(np.sort(base), np.sort(cur))  # without the rounds' order
    z = sps.norm.ppf(0.995)
    assert decide([math.log(s.median_cur / s.median_base)], [s.se_log_median], [z], 0.05)["verdict"][0] == "regressed"
    row = compare_runs(run_from_timings({"a": base}), run_from_timings({"a": cur})).rows[0]
    assert row.verdict == "too noisy to tell" and row.ratio_lo < 1.025 and row.basis == "raw"
    # the same rounds steady (shuffled in time): the blocks agree, and the shift is a regression
    steady = compare_runs(run_from_timings({"a": base}), run_from_timings({"a": rng.permutation(cur)})).rows[0]
    assert steady.verdict == "regressed"
    # with probes that saw the machine slow down, the drift divides out: unchanged
    machine = np.where(np.arange(201) <= 80, 1.0, 1.25)
    probes = {"a": ProbeRecord(5e-4 * machine, 1e-3 * machine, np.arange(201))}
    flat = {"a": ProbeRecord(np.full(201, 5e-4), np.full(201, 1e-3), np.arange(201))}
    seen = compare_runs(run_from_timings({"a": base}, probes=flat), run_from_timings({"a": cur}, probes=probes)).rows[0]
    assert seen.basis == "probe" and seen.verdict == "unchanged" and abs(seen.ratio - 1) < 0.02
    assert seen.machine_ratio > 1.1


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
    # without hypothesis's plugin: the tiny benchmarks do not use it, and its import was a third of each session
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


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
    assert set(run.env) == {"cpu", "cores", "python", "numpy", "pyarrow", "backend", "kernel_build", "timer",
                            "simd"}
    from fastdrift import kernels
    assert run.env["backend"] == {f: "c" for f in kernels.DEFAULT_BACKENDS} and "histogram" in run.env["backend"]
    probe = run.benchmarks["test_tiny.py::test_work"].probe  # the machine-speed probes, between the rounds
    assert probe is not None and probe.at[0] == 0 and probe.at[-1] == 200 and np.all(np.diff(probe.at) >= 0)
    assert probe.mem.size >= 3 and np.all(probe.mem > 0) and np.all(probe.cpu > 0)
    assert run.env["timer"] == "process_time"  # the CPU clock by default
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-baseline=base.fdr", work=12000)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "fastdrift benchmark gate" in r.stdout and "regressed (critical)" in r.stdout
    assert "ratio = median ratio / machine ratio" in r.stdout  # both runs carry probes: normalized
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


def test_probes_in_pytest_benchmark_json_and_their_bad_forms(tmp_path, capsys):
    (tmp_path / "test_tiny.py").write_text(TINY)
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-probe", "--fastdrift-clock=wall", "--benchmark-json=base.json")
    assert r.returncode == 0, r.stdout[-2000:]
    doc = json.loads((tmp_path / "base.json").read_text())
    info = doc["benchmarks"][0]["extra_info"]["fastdrift_probe"]
    assert info["at"][0] == 0 and info["at"][-1] == 200 and len(info["mem"]) == len(info["cpu"]) == len(info["at"])
    run = read_run(str(tmp_path / "base.json"))
    b = run.benchmarks["test_tiny.py::test_work"]
    assert b.probe is not None and np.array_equal(b.probe.mem, info["mem"]) and run.env["timer"] == "perf_counter"
    # the JSON carries the plugin's environment: the same keys as a run file's, the CPU named alike
    assert set(run.env) == {"cpu", "cores", "python", "numpy", "pyarrow", "backend", "kernel_build", "timer",
                            "simd"}
    here = environment()
    assert run.env["cpu"] == here["cpu"] and run.env["kernel_build"] == here["kernel_build"]
    junk = json.loads(json.dumps(doc))  # a recorded environment of the wrong shape is left out, key by key
    junk["machine_info"]["fastdrift"] = {"cpu": 3, "cores": True, "backend": {"histogram": 1}, "simd": "avx2",
                                         "extra": "x"}
    (tmp_path / "junk.json").write_text(json.dumps(junk))
    env = read_run(str(tmp_path / "junk.json")).env
    assert env["simd"] == "avx2" and env["cpu"] == doc["machine_info"]["cpu"]["brand_raw"]
    assert "backend" not in env and "extra" not in env and env["cores"] == doc["machine_info"]["cpu"]["count"]
    # on the CPU clock (the default) the JSON names the clock the rounds were timed with
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-probe", "--benchmark-json=cpu.json")
    assert r.returncode == 0, r.stdout[-2000:]
    assert read_run(str(tmp_path / "cpu.json")).env["timer"] == "process_time"
    same = compare_runs(run, run).rows[0]
    assert same.basis == "probe" and same.ratio == pytest.approx(1.0) and same.machine_ratio == pytest.approx(1.0)
    # a probe that does not fit its benchmark: compared raw, saying why; a side without probes: raw
    for bad, words in [({"mem": [1.0], "cpu": [1.0], "at": [0]}, "1 probes, at least 2 needed"),
                       (dict(info, at=[0] + info["at"][1:-1] + [500]), "taken after round 500 of 200"),
                       (dict(info, mem=[-1.0] + info["mem"][1:]), "zero, negative or non-finite probe times"),
                       ("junk", "expected an object")]:
        bdoc = json.loads(json.dumps(doc))
        bdoc["benchmarks"][0]["extra_info"]["fastdrift_probe"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(bdoc))
        row = compare_runs(read_run(str(tmp_path / "bad.json")), run).rows[0]
        assert row.basis == "raw" and words in row.note and "the baseline's probe is unusable" in row.note
    del doc["benchmarks"][0]["extra_info"]["fastdrift_probe"]
    (tmp_path / "plain.json").write_text(json.dumps(doc))
    assert main(["perf", "compare", str(tmp_path / "plain.json"), str(tmp_path / "base.json")]) == 0
    out = capsys.readouterr().out
    assert "no machine-speed probe in the baseline" in out and "† raw timings" in out


def test_run_file_probes_round_trip_and_corrupt_probes_are_refused(tmp_path):
    rng = np.random.default_rng(8)
    x, probe = _machine_run(rng, 60, 1.0)
    big = _lognormal(rng, EXACT_MAX + 10)
    path = str(tmp_path / "p.fdr")
    write_run(path, {"a": x, "big": big}, ENV, probes={"a": probe})
    run = read_run(path)
    got = run.benchmarks["a"].probe
    assert np.array_equal(got.mem, probe.mem) and np.array_equal(got.cpu, probe.cpu) and np.array_equal(got.at, probe.at)
    assert run.benchmarks["big"].probe is None and run.benchmarks["big"].rounds == big.size
    assert np.allclose(run.benchmarks["big"].blocks, block_log_medians(big))  # stored with the digest
    assert np.array_equal(run.benchmarks["a"].blocks, block_log_medians(x))
    # a probe taken "after round 61" of 60 rounds: corrupt, refused
    bad = ProbeRecord(probe.mem, probe.cpu, np.append(probe.at[:-1], 61))
    write_run(path, {"a": x}, ENV, probes={"a": bad})
    assert run_from_timings({"a": x}, probes={"a": bad}).benchmarks["a"].probe_problem
    assert read_run(path).benchmarks["a"].probe is None and "taken after round 61" in read_run(path).benchmarks["a"].probe_problem
    blob = bytearray(pathlib.Path(path).read_bytes())
    with pytest.raises(CorruptStateError):  # the probe arrays' lengths disagree
        from fastdrift.codec import Writer, encode
        w = Writer().u8(2).json(ENV).u64(1).string("a").string("s").f64(0.0).u8(0).f64_array(x)
        w.u8(1).u8(1).f64_array(probe.mem).f64_array(probe.cpu[:-1]).u64_array(probe.at.astype(np.uint64))
        pathlib.Path(path).write_bytes(encode(Kind.PERF_RUN, b"", w.getvalue()))
        read_run(path)
    assert blob  # the earlier file was a valid one
    # a layout-1 file (no probes, a batch variance) is still read
    w = Writer().u8(1).json(ENV).u64(1).string("a").string("s").f64(0.0).f64(0.001).u8(0).f64_array(x)
    pathlib.Path(path).write_bytes(encode(Kind.PERF_RUN, b"", w.getvalue()))
    old = read_run(path).benchmarks["a"]
    assert np.array_equal(old.values, np.sort(x)) and old.probe is None


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
    once = os.environ.get("SLOW_ONCE", "")  # a file: this session slow, and the file removed
    n = 150000 if once and os.path.exists(once) else int(os.environ.get("MOVED_WORK", "3000"))
    benchmark.pedantic(lambda: sum(range(n)), rounds=150, iterations=2)
    if once and os.path.exists(once):
        os.remove(once)
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
    r = subprocess.run(cmd + ["--baseline", str(tmp_path / "base.json"), "--repeat", "1"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-2000:]
    moved = [ln for ln in r.stdout.splitlines() if ln.startswith("moved:")]
    # test_steady may move too on a busy machine (the runs are minutes apart); test_moved must
    assert moved and "bench/bench_tiny.py::test_moved (regressed" in moved[0]
    assert "baseline " in r.stdout and "Not compared" not in r.stdout
    # several runs a side (a baseline directory of three runs with probes, --repeat 2): the run-to-run variance
    # measured on 3 df; 50x the work, as three real runs on a loaded machine can spread widely
    (tmp_path / "base").mkdir()
    for i in range(3):
        r = subprocess.run(cmd + ["--fastdrift-probe"], capture_output=True, text=True, timeout=300,
                           env=dict(env, MOVED_WORK="3000", FASTDRIFT_BENCH_JSON=str(tmp_path / "base" / f"{i}.json")))
        assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(cmd + ["--baseline", str(tmp_path / "base"), "--repeat", "2"], env=dict(env, MOVED_WORK="150000"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-2000:]
    assert "baseline of 3 runs, current of 2 runs" in r.stdout and "test_moved (regressed" in r.stdout
    # --confirm: the set runs again and those runs decide the critical ones; slower in both, exit 2
    r = subprocess.run(cmd + ["--baseline", str(tmp_path / "base"), "--repeat", "1", "--confirm"],
                       env=dict(env, MOVED_WORK="150000"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-2000:]
    confirming = [ln for ln in r.stdout.splitlines() if ln.startswith("confirming ")]
    assert len(confirming) == 1 and "bench/bench_tiny.py::test_moved" in confirming[0], r.stdout[-3000:]
    second = r.stdout.split(confirming[0], 1)[1]
    assert "test_moved (regressed" in second.splitlines()[-1] and "bench_tiny.py::test_steady" not in second
    assert "not confirmed" not in r.stdout
    # slower in the first session only: a warning, named as not confirmed
    once = tmp_path / "slow-once"
    once.write_text("")
    r = subprocess.run(cmd + ["--baseline", str(tmp_path / "base"), "--repeat", "1", "--confirm"],
                       env=dict(env, MOVED_WORK="3000", SLOW_ONCE=str(once)), capture_output=True, text=True, timeout=300)
    assert not once.exists()
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "test_moved (regressed" in r.stdout.split("confirming ", 1)[0]
    lost = [ln for ln in r.stdout.splitlines() if ln.startswith("not confirmed")]
    assert len(lost) == 1 and "bench/bench_tiny.py::test_moved" in lost[0], r.stdout[-3000:]
    # without --confirm the same first session fails
    once.write_text("")
    r = subprocess.run(cmd + ["--baseline", str(tmp_path / "base"), "--repeat", "1"],
                       env=dict(env, MOVED_WORK="3000", SLOW_ONCE=str(once)), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "confirming" not in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    r = subprocess.run(cmd + ["--baseline", str(tmp_path / "base.json"), "--repeat", "0"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 64 and "at least 1 run" in r.stderr


# -- a baseline of several runs: the run-to-run variance measured ------------------------------------------------

def _levels_trial(rng, k, tau, within, blocks=10, shift=0.0):
    """``k`` baseline runs and one current run of blocks: each run's level moves by N(0, tau) between runs
    (what no within-run error sees), its blocks by N(0, within) around it; the current run is ``shift`` slower."""
    runs = [rng.normal(0.0, tau) + rng.normal(0.0, within, blocks) for _ in range(k)]
    runs.append(shift + rng.normal(0.0, tau) + rng.normal(0.0, within, blocks))
    return runs


@pytest.mark.parametrize("k,tau,within", [(3, 0.05, 0.01), (5, 0.03, 0.03), (8, 0.0, 0.04)])
def test_runs_prediction_interval_covers_at_its_nominal_rate(k, tau, within):
    from fastdrift.perf.stats import run_levels, runs_compare
    rng = np.random.default_rng(k)
    n, level = 3000, 0.90
    q = sps.t.ppf(1 - (1 - level) / 2, k - 1)  # oracle: scipy's t quantile at k - 1 degrees of freedom
    miss, taus = 0, []
    for _ in range(n):
        lv, er, _, _ = run_levels(_levels_trial(rng, k, tau, within))
        rs = runs_compare(lv[:-1], er[:-1], lv[-1], er[-1])
        assert rs.dof == k - 1
        miss += abs(rs.log_ratio) > q * rs.se
        taus.append(rs.between_sd)
        assert rs.p_value == pytest.approx(2 * sps.t.sf(abs(rs.log_ratio) / rs.se, k - 1), rel=1e-6, abs=1e-12)
    rate, sd = miss / n, math.sqrt(0.1 * 0.9 / n)
    # the prediction interval is exact when the run-to-run change dominates; with tau floored at 0 it can only
    # be wider (conservative), never narrower
    assert rate <= 0.10 + 3 * sd
    if tau >= 2 * within:
        assert rate >= 0.10 - 3 * sd
    if tau > 0:  # the between-run sd is estimated, not assumed 0
        assert np.median(taus) == pytest.approx(tau, rel=0.5)


def _k_runs(rng, k, residual, slowdown=1.0, n=120):
    """``k`` baseline runs and a current one with probes: the machine's speed (seen by the probe) moves up to
    2x between runs, and each run's benchmark by a further lognormal ``residual`` that the probe does not see."""
    runs = []
    for i in range(k + 1):
        x, p = _machine_run(rng, n, rng.uniform(0.7, 1.4), drift=rng.normal(0, 0.1),
                            slowdown=(slowdown if i == k else 1.0) * rng.lognormal(0, residual))
        runs.append(run_from_timings({"b": x}, ENV, path=f"run{i}", probes={"b": p}))
    return runs[:k], runs[k]


def test_a_baseline_of_runs_keeps_false_alarms_near_alpha_and_catches_a_slowdown():
    # a residual of 4% between runs that the probe does not share: two-run comparisons cannot see it and flag
    # A/A pairs; five baseline runs measure it, so A/A is flagged at about alpha / 2 at most
    rng = np.random.default_rng(5)
    trials = 200
    two = many = 0
    for _ in range(trials):
        bases, cur = _k_runs(rng, 5, 0.04)
        two += compare_runs(bases[0], cur).rows[0].verdict == "regressed"
        row = compare_runs(bases, cur).rows[0]
        many += row.verdict == "regressed"
        assert row.baseline_runs == 5 and row.basis == "probe" and math.isfinite(row.run_to_run_sd)
    assert two / trials > 0.03  # the two-run gate's false alarms, for contrast
    assert many / trials <= 0.015
    caught = 0
    for _ in range(trials):
        bases, cur = _k_runs(rng, 5, 0.01, slowdown=1.3)
        row = compare_runs(bases, cur).rows[0]
        caught += row.verdict == "regressed"
        assert row.ratio == pytest.approx(1.3, rel=0.1)
    assert caught / trials >= 0.95


def test_a_baseline_of_runs_with_a_benchmark_missing_or_broken_in_one_run(tmp_path):
    rng = np.random.default_rng(8)
    bases, cur = _k_runs(rng, 3, 0.01)
    bases[1].benchmarks.pop("b")  # two baseline runs left for it
    row = compare_runs(bases, cur).rows[0]
    assert row.baseline_runs == 2
    bases[2].benchmarks["b"] = run_from_timings({"b": [1.0, -1.0, 2.0]}).benchmarks["b"]  # a problem
    c = compare_runs(bases, cur)
    assert c.rows[0].baseline_runs == 1 and math.isnan(c.rows[0].run_to_run_sd)  # one run left: two-run form
    assert any(p["side"] == "baseline run2" and "run left out" in p["problem"] for p in c.problems)


def test_perf_compare_cli_takes_several_baseline_runs_and_a_directory(tmp_path, capsys):
    rng = np.random.default_rng(9)
    d = tmp_path / "base"
    d.mkdir()
    files = []
    for i in range(6):
        x, p = _machine_run(rng, 120, rng.uniform(0.7, 1.4), slowdown=(1.3 if i == 5 else 1.0) * rng.lognormal(0, 0.01))
        f = (d if i < 5 else tmp_path) / f"run_{i}.fdr"
        write_run(str(f), {"t::b": x}, ENV, probes={"t::b": p})
        files.append(str(f))
    (d / "notes.txt").write_text("ignored")
    assert main(["perf", "compare", *files[:5], files[5], "--format", "json", "-o", str(tmp_path / "a.json")]) == 2
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["baseline_runs"] == 5 and doc["benchmarks"][0]["baseline_runs"] == 5
    assert doc["benchmarks"][0]["verdict"] == "regressed" and doc["benchmarks"][0]["run_to_run_sd"] is not None
    assert main(["perf", "compare", str(d), "--current", files[5]]) == 2
    out = capsys.readouterr().out
    assert "baseline of 5 runs" in out and "regressed" in out
    assert main(["perf", "compare", str(d), files[5], "--format", "json", "-o", str(tmp_path / "b.json")]) == 2
    assert json.loads((tmp_path / "b.json").read_text())["benchmarks"] == doc["benchmarks"]
    # the two-file form: one baseline run, its verdict says the run-to-run variance is unknown
    main(["perf", "compare", files[0], files[1]])
    out = capsys.readouterr().out
    assert "one baseline run: the run-to-run variance is unknown" in out
    # the current run cannot be a directory, nor can a directory be empty
    assert main(["perf", "compare", files[0], str(d)]) == 64
    (tmp_path / "empty").mkdir()
    assert main(["perf", "compare", str(tmp_path / "empty"), files[5]]) == EXIT_INPUT
    assert "a directory without runs" in capsys.readouterr().err


def test_a_baseline_of_several_machines_compares_the_current_runs_machine(tmp_path, capsys):
    from fastdrift.perf import NoBaselineForMachine, machine_dir, read_baseline
    rng = np.random.default_rng(12)
    base = tmp_path / "baseline"
    envs = {m: dict(ENV, cpu=f"CPU {m} (family 25 model {m})", simd="avx2", timer="process_time") for m in (1, 17)}
    for m, env in envs.items():
        d = base / machine_dir(env)
        d.mkdir(parents=True)
        for i in range(4 if m == 1 else 5):
            # machine 17's runs 2x faster: compared with them, machine 1's runs would read 2x slower
            x, p = _machine_run(rng, 120, 1.0, slowdown=(2.0 if m == 1 else 1.0) * rng.lognormal(0, 0.01))
            write_run(str(d / f"run_{i}.fdr"), {"t::b": x}, env, probes={"t::b": p})
    assert sorted(p.name for p in base.iterdir()) == ["cpu-1-family-25-model-1-2-cores-avx2",
                                                      "cpu-17-family-25-model-17-2-cores-avx2"]
    runs = read_baseline(str(base), envs[1])
    assert len(runs) == 4 and all(r.env["cpu"] == envs[1]["cpu"] for r in runs)
    assert len(read_baseline(str(base), dict(envs[17], python="3.12"))) == 5
    # the same machine measured 1.3x slower: regressed against its own runs, not 2.6x against the other's
    cur = tmp_path / "cur.fdr"
    x, p = _machine_run(rng, 120, 1.0, slowdown=2.0 * 1.3)
    write_run(str(cur), {"t::b": x}, envs[1], probes={"t::b": p})
    assert main(["perf", "compare", str(base), "--current", str(cur), "--format", "json", "-o",
                 str(tmp_path / "a.json")]) == 2
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["baseline_runs"] == 4 and not doc["environment_differences"]
    assert doc["benchmarks"][0]["median_ratio"] == pytest.approx(1.3, rel=0.05)
    # a machine with no runs saved: an input error naming the machines that have some and where to save
    other = dict(envs[1], cpu="CPU 9", simd="avx512")
    with pytest.raises(NoBaselineForMachine) as ei:
        read_baseline(str(base), other)
    assert set(ei.value.machines) == {machine_dir(e) for e in envs.values()}
    write_run(str(cur), {"t::b": x}, other, probes={"t::b": p})
    assert main(["perf", "compare", str(base), "--current", str(cur)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "no runs saved on this machine" in err and "cpu 'CPU 9'" in err
    assert str(base / "cpu-9-2-cores-avx512") in err and machine_dir(envs[17]) in err
    # a directory with runs of its own is read as it is, whatever its subdirectories hold
    shutil.copy(base / machine_dir(envs[17]) / "run_0.fdr", base / "run_x.fdr")
    assert [r.path for r in read_baseline(str(base), envs[1])] == [str(base / "run_x.fdr")]


def test_plugin_accumulates_runs_in_a_directory_and_gates_on_them(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY)
    for _ in range(4):
        r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-save=runs/", "--fastdrift-keep=3")
        assert r.returncode == 0, r.stdout[-2000:]
    saved = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(saved) == 3 and all(n.startswith("run-") and n.endswith(".fdr") for n in saved)
    # 50x the work: three real runs on a shared machine can spread widely, and the prediction interval of
    # t with 2 df is wide (a 4x slowdown was once "too noisy to tell" here); the statistics themselves are
    # tested on synthetic runs above
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-baseline=runs", work=150000)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "baseline of 3 runs" in r.stdout and "regressed (critical)" in r.stdout
    # a baseline of several machines: this machine's runs (a slower run of another machine beside them)
    from fastdrift.perf import machine_dir, read_runs
    here = read_runs([str(tmp_path / "runs")])[0].env
    shutil.copytree(tmp_path / "runs", tmp_path / "machines" / machine_dir(here))
    (tmp_path / "machines" / "other").mkdir()
    write_run(str(tmp_path / "machines" / "other" / "run.fdr"), {"test_tiny.py::test_work": [1.0] * 50},
              dict(here, cpu="Another CPU"))
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-baseline=machines", work=150000)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "baseline of 3 runs" in r.stdout and "regressed (critical)" in r.stdout
    files = [f"--fastdrift-baseline=runs/{n}" for n in saved[:2]]
    r = _pytest(tmp_path, "test_tiny.py", *files)
    assert "baseline of 2 runs" in r.stdout and "regressed" not in r.stdout.split("fastdrift benchmark gate")[1]
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-save=runs/", "--fastdrift-keep=0")
    assert r.returncode == 4 and "keep at least 1" in r.stderr


# -- several current runs: the current side's run-to-run change averages out -------------------------------------

def _sides_trial(rng, k, m, tau, within, blocks=10, shift=0.0):
    """``k`` baseline and ``m`` current runs of blocks (see :func:`_levels_trial`); the current ones ``shift`` slower."""
    return ([rng.normal(0.0, tau) + rng.normal(0.0, within, blocks) for _ in range(k)]
            + [shift + rng.normal(0.0, tau) + rng.normal(0.0, within, blocks) for _ in range(m)])


@pytest.mark.parametrize("k,m,tau,within", [(3, 3, 0.05, 0.01), (5, 2, 0.03, 0.005), (1, 4, 0.04, 0.005),
                                            (4, 4, 0.0, 0.03)])
def test_current_runs_interval_covers_at_its_nominal_rate(k, m, tau, within):
    from fastdrift.perf.stats import run_levels, runs_compare
    rng = np.random.default_rng(10 * k + m)
    n, level = 3000, 0.90
    q = sps.t.ppf(1 - (1 - level) / 2, k + m - 2)  # oracle: scipy's t quantile at k + m - 2 degrees of freedom
    miss, taus = 0, []
    for _ in range(n):
        lv, er, _, _ = run_levels(_sides_trial(rng, k, m, tau, within))
        rs = runs_compare(lv[:k], er[:k], lv[k:], er[k:])
        assert rs.dof == k + m - 2
        miss += abs(rs.log_ratio) > q * rs.se
        taus.append(rs.between_sd)
        assert rs.p_value == pytest.approx(2 * sps.t.sf(abs(rs.log_ratio) / rs.se, k + m - 2), rel=1e-6, abs=1e-12)
    rate, sd = miss / n, math.sqrt(0.1 * 0.9 / n)
    assert rate <= 0.10 + 3 * sd  # tau floored at 0 can only widen it
    if tau >= 2 * within:
        assert rate >= 0.10 - 3 * sd
        assert np.median(taus) == pytest.approx(tau, rel=0.3)


def test_current_runs_with_equal_errors_is_the_pooled_two_sample_t_test():
    from fastdrift.perf.stats import runs_compare
    rng = np.random.default_rng(3)
    for k, m in ((2, 2), (5, 3), (1, 6), (8, 1)):
        for _ in range(20):
            b, c = rng.normal(0, 0.05, k), rng.normal(0.03, 0.05, m)
            e = 0.001  # below the levels' spread: tau is not floored
            rs = runs_compare(b, np.full(k, e), c, np.full(m, e))
            if m == 1:  # one current run: the prediction interval of a new draw, s sqrt(1 + 1/k)
                t = (c[0] - b.mean()) / (b.std(ddof=1) * math.sqrt(1 + 1 / k))
                p = 2 * sps.t.sf(abs(t), k - 1)
            else:
                t, p = sps.ttest_ind(c, b, equal_var=True)
            assert rs.log_ratio == pytest.approx(c.mean() - b.mean(), abs=1e-12)
            assert rs.log_ratio / rs.se == pytest.approx(t, rel=1e-9)
            assert rs.p_value == pytest.approx(p, rel=1e-6)


def test_repeated_current_runs_catch_what_one_current_run_misses():
    # a run-to-run residual of 2% the probe does not share: against 5 baseline runs, one current run seldom
    # tells a 10% slowdown from it; 5 current runs average it out; A/A stays at alpha / 2 at most
    rng = np.random.default_rng(12)
    trials = 200
    one = many = aa = 0
    for _ in range(trials):
        bases, _ = _k_runs(rng, 5, 0.02)
        curs = [_k_runs(rng, 0, 0.02, slowdown=1.10)[1] for _ in range(5)]
        one += compare_runs(bases, curs[0]).rows[0].verdict == "regressed"
        row = compare_runs(bases, curs).rows[0]
        many += row.verdict == "regressed"
        assert row.baseline_runs == 5 and row.current_runs == 5 and row.basis == "probe"
        same = [_k_runs(rng, 0, 0.02)[1] for _ in range(5)]
        aa += compare_runs(bases, same).rows[0].verdict == "regressed"
    assert one / trials < 0.5
    assert many / trials >= 0.8
    assert aa / trials <= 0.015


def test_current_runs_with_a_benchmark_missing_or_broken_in_one(tmp_path):
    rng = np.random.default_rng(13)
    bases, _ = _k_runs(rng, 3, 0.01)
    curs = [_k_runs(rng, 0, 0.01)[1] for _ in range(3)]
    for i, c in enumerate(curs):
        c.path = f"cur{i}"
    curs[1].benchmarks.pop("b")
    curs[2].benchmarks["b"] = run_from_timings({"b": [1.0, 0.0, 2.0]}).benchmarks["b"]
    c = compare_runs(bases, curs)
    assert c.current_runs == 3 and c.rows[0].current_runs == 1 and c.rows[0].baseline_runs == 3
    assert any(p["side"] == "current cur2" and "run left out" in p["problem"] for p in c.problems)
    # one run a side left: the two-run form, run-to-run variance unknown
    c = compare_runs(bases[:1], curs)
    assert c.rows[0].current_runs == 1 and math.isnan(c.rows[0].run_to_run_sd)
    only = run_from_timings({"x": np.full(50, 1e-3)})
    c = compare_runs(bases, [curs[0], only])
    assert {"benchmark": "x", "side": "current", "problem": "only in the current runs"} in c.problems


def test_perf_compare_cli_and_plugin_take_several_current_runs(tmp_path, capsys):
    rng = np.random.default_rng(14)
    for side, n, slow in (("base", 4, 1.0), ("cur", 3, 1.3)):
        (tmp_path / side).mkdir()
        for i in range(n):
            x, p = _machine_run(rng, 120, rng.uniform(0.7, 1.4), slowdown=slow * rng.lognormal(0, 0.01))
            write_run(str(tmp_path / side / f"run_{i}.fdr"), {"t::b": x}, ENV, probes={"t::b": p})
    out = str(tmp_path / "c.json")
    assert main(["perf", "compare", str(tmp_path / "base"), "--current", str(tmp_path / "cur"), "--format", "json",
                 "-o", out]) == 2
    doc = json.loads(pathlib.Path(out).read_text())
    assert doc["baseline_runs"] == 4 and doc["current_runs"] == 3
    row = doc["benchmarks"][0]
    assert row["current_runs"] == 3 and row["verdict"] == "regressed" and row["ratio"] == pytest.approx(1.3, rel=0.1)
    cur = sorted(str(p) for p in (tmp_path / "cur").iterdir())
    assert main(["perf", "compare", str(tmp_path / "base"), "--current", *cur]) == 2
    assert "current of 3 runs" in capsys.readouterr().out
    # the plugin: earlier runs of the code under test join this session's run on the current side
    (tmp_path / "test_tiny.py").write_text(TINY)
    for _ in range(3):
        assert _pytest(tmp_path, "test_tiny.py", "--fastdrift-save=runs/").returncode == 0
    for _ in range(2):
        assert _pytest(tmp_path, "test_tiny.py", "--fastdrift-save=slow/", work=150000).returncode == 0
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-baseline=runs", "--fastdrift-current=slow", work=150000)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "baseline of 3 runs, current of 3 runs" in r.stdout and "regressed (critical)" in r.stdout
    r = _pytest(tmp_path, "test_tiny.py", "--fastdrift-current=slow")
    assert r.returncode == 4 and "needs --fastdrift-baseline" in r.stderr


def test_the_cpu_of_a_run_names_family_and_model():
    # Virtual machines show one brand ("AMD EPYC") for CPU generations whose timings differ
    # several-fold: the family and model numbers keep their runs apart.
    from fastdrift.perf.runs import _cpu_of
    two = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
           "\nprocessor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: Other\n")
    assert _cpu_of(two) == "AMD EPYC (family 25 model 17)"  # the first processor's
    assert _cpu_of(two.replace("model\t\t: 17", "model\t\t: 1")) != _cpu_of(two)
    assert _cpu_of("model name\t: Some CPU\n") == "Some CPU"  # no numbers: the name alone
    assert _cpu_of("processor\t: 0\ncpu family\t: 25\n") == ""  # no name: the caller's fallback


# -- saving a machine's baseline ---------------------------------------------------------------------------------

def _same_code_runs(rng, k, spread=0.01, slow=()):
    """``k`` synthetic runs of the same code (run levels moving by ``spread``); the runs in ``slow`` 1.5x
    slower than the machine explains (stretches of load the probes did not see)."""
    out = []
    for i in range(k):
        x, p = _machine_run(rng, 120, 1.0, slowdown=(1.5 if i in slow else 1.0) * rng.lognormal(0, spread))
        out.append(run_from_timings({"t::b": x, "t::c": x * 2}, ENV, probes={"t::b": p, "t::c": p}))
    return out


def test_split_noise_counts_false_alarms_and_noise():
    from fastdrift.perf.compare import split_noise
    from fastdrift.errors import InvalidInputError
    rng = np.random.default_rng(21)
    quiet = split_noise(_same_code_runs(rng, 6), 0.15)
    assert quiet.splits == 15 and quiet.current == 2 and quiet.alarms == 0  # C(6, 2)
    assert set(quiet.per_benchmark) == {"t::b", "t::c"}
    assert quiet.too_noisy == sum(v["too noisy to tell"] for v in quiet.per_benchmark.values())
    # two runs 1.5x slower: the split with both current flags both benchmarks (a false alarm); with
    # one of them current, the current runs disagree and the verdict is too noisy to tell
    bad = split_noise(_same_code_runs(rng, 6, slow=(2, 3)), 0.15)
    assert bad.alarms == 1 and all(v["regressed"] == 1 for v in bad.per_benchmark.values()), bad
    assert bad.critical == 1 and all(v["critical"] == 1 for v in bad.per_benchmark.values()), bad
    assert all(v["too noisy to tell"] >= 8 for v in bad.per_benchmark.values()), bad
    # runs that spread widely: too noisy to tell more often
    noisy = split_noise(_same_code_runs(rng, 6, spread=0.3), 0.15)
    assert noisy.too_noisy > quiet.too_noisy
    # the same quiet runs with the current ones 1.3x slower (probes unchanged): every split critical
    runs = _same_code_runs(rng, 6)
    slow = split_noise(runs, 0.15, factor=1.3)
    assert slow.critical == slow.splits == 15
    assert all(v["critical"] == 15 for v in slow.per_benchmark.values()), slow
    assert split_noise(runs, 0.15, factor=1.0).alarms == 0
    with pytest.raises(InvalidInputError, match="at least 4 runs"):
        split_noise(_same_code_runs(rng, 3), 0.15)


def test_missed_slowdowns_names_the_benchmarks_a_baseline_cannot_track():
    from fastdrift.perf.compare import CATCH_SLOWDOWN, missed_slowdowns
    rng = np.random.default_rng(5)
    # "t::c" moves 1.6x between runs, unseen by the probes (as the saved scan read did); "t::b" holds
    levels = [1.0, 1.6, 0.8, 1.5, 0.9, 1.7, 1.0, 1.4]
    runs = []
    for lv in levels:
        x, p = _machine_run(rng, 120, 1.0)
        y, q = _machine_run(rng, 120, 1.0, slowdown=lv)
        runs.append(run_from_timings({"t::b": x, "t::c": y}, ENV, probes={"t::b": p, "t::c": q}))
    assert CATCH_SLOWDOWN == 1.3
    assert missed_slowdowns(runs, [0.05]) == ["t::c"]
    assert missed_slowdowns(runs, [0.05, 0.15]) == ["t::c"]
    # quiet runs of both: a 30% slowdown of each is caught; a 3% one is not
    quiet = _same_code_runs(rng, 8)
    assert missed_slowdowns(quiet, [0.05, 0.15]) == []
    assert missed_slowdowns(quiet, [0.05], factor=1.03) == ["t::b", "t::c"]


def test_baseline_verdict_keeps_runs_no_noisier_and_without_false_alarms():
    from fastdrift.cli import baseline_verdict
    from fastdrift.perf.compare import SplitNoise

    def noise(alarms, too_noisy, splits=28, benchmarks=17):
        per = {f"b{i}": {"regressed": 0, "too noisy to tell": 0} for i in range(benchmarks)}
        per["b0"]["too noisy to tell"] = too_noisy
        return SplitNoise(8, splits, 2, alarms, alarms, per)

    assert baseline_verdict(noise(0, 67), None) == (True, "no false alarm")
    assert baseline_verdict(noise(0, 67), noise(0, 279))[0]
    assert baseline_verdict(noise(0, 67), noise(0, 67))[0]  # as noisy: kept (the newer runs)
    keep, why = baseline_verdict(noise(0, 279), noise(0, 67))
    assert not keep and "too noisy to tell more often" in why
    keep, why = baseline_verdict(noise(1, 0), None)
    assert not keep and "1 of 28 splits" in why
    assert baseline_verdict(noise(1, 279), noise(0, 0), force=True) == (True, "--force")
    # shares, not counts: 15 splits of 6 runs against 28 of 8
    assert baseline_verdict(noise(0, 40, splits=15), noise(0, 67, splits=28))[0] is False
    assert baseline_verdict(noise(0, 30, splits=15), noise(0, 67, splits=28))[0] is True
    # saved runs without a benchmark the set now has cannot track it: replaced, noisier or not
    keep, why = baseline_verdict(noise(0, 279, benchmarks=18), noise(0, 67))
    assert keep and "lack 1 benchmark(s)" in why and "b17" in why
    keep, why = baseline_verdict(noise(1, 0, benchmarks=18), noise(0, 67))
    assert not keep and "false alarm" in why  # but never with a false alarm
    assert not baseline_verdict(noise(0, 279, benchmarks=16), noise(0, 67))[0]  # one fewer: the rule holds
    # a benchmark whose 30% slowdown the new runs would not flag: not saved, however quiet the rest
    keep, why = baseline_verdict(noise(0, 0), noise(0, 67), missed=["t::scan[read]"])
    assert not keep and "30% slowdown of t::scan[read]" in why
    keep, why = baseline_verdict(noise(0, 0, benchmarks=18), noise(0, 67), missed=["b17"])
    assert not keep and "b17" in why  # nor when the saved runs lack a benchmark
    assert baseline_verdict(noise(0, 0), noise(0, 67), force=True, missed=["b0"]) == (True, "--force")


def test_bench_save_baseline_saves_this_machines_runs(tmp_path):
    from fastdrift.perf import environment, machine_dir, read_runs
    checkout = tmp_path / "checkout"
    (checkout / "bench").mkdir(parents=True)
    shutil.copy(ROOT / "bench" / "run.py", checkout / "bench" / "run.py")
    (checkout / "bench" / "bench_tiny.py").write_text(BENCH)
    base = tmp_path / "baseline"
    cmd = [sys.executable, "-m", "fastdrift.cli", "bench", "--path", str(checkout), "--save-baseline", str(base)]
    # a generous margin: no split of 4 real runs of the tiny set flags it on a busy machine
    r = subprocess.run(cmd + ["--repeat", "4", "--max-regression", "300%"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    here = base / machine_dir(environment())
    runs = read_runs([str(here)])
    assert len(runs) == 4 and {n for r in runs for n in r.benchmarks} == {
        "bench/bench_tiny.py::test_steady", "bench/bench_tiny.py::test_moved"}
    assert all(b.probe is not None for r in runs for b in r.benchmarks.values())  # saved with the probes
    assert f"{here}: 4 new runs, none saved" in r.stdout and "saved: no false alarm" in r.stdout
    assert not (checkout / "bench" / "results.json").exists()  # the checkout's own results left alone
    # saved again (--force: whatever the noise of either set): the new runs replace the old ones
    first = sorted(p.name for p in here.iterdir())
    r = subprocess.run(cmd + ["--repeat", "4", "--max-regression", "300%", "--force"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    second = sorted(p.name for p in here.iterdir())
    assert len(second) == 4 and not set(first) & set(second)
    assert f"{here}: 4 new runs, 4 saved" in r.stdout and "saved: --force" in r.stdout
    assert "  saved  false alarms" in r.stdout  # the saved runs' noise measured too
    # then a comparison reads them as this machine's baseline
    r = subprocess.run([sys.executable, "-m", "fastdrift.cli", "bench", "--path", str(checkout), "--baseline",
                        str(base), "--repeat", "1", "--max-regression", "300%"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "baseline of 4 runs: interval" in r.stdout, r.stdout[-3000:]
    # usage errors
    r = subprocess.run(cmd + ["--repeat", "3"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 64 and "at least 4 runs" in r.stderr
    r = subprocess.run(cmd + ["--baseline", str(base)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 64 and "not both" in r.stderr
    # a directory of one machine's runs (the layout before machines): named, and where to move them
    flat = tmp_path / "flat"
    shutil.copytree(here, flat)
    r = subprocess.run(cmd[:-1] + [str(flat)], capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_INPUT and f"move them into {flat / machine_dir(environment())}/" in r.stderr, r.stderr
