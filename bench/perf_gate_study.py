"""Error rates of `fastdrift perf compare` on real runs of fastdrift's own benchmarks.

    python bench/perf_gate_study.py collect DIR [--sessions 30] [--timers perf_counter,process_time]
    python bench/perf_gate_study.py study DIR/perf_counter [--pairs 200]
    python bench/perf_gate_study.py study DIR/process_time --baseline-runs 3,5

``collect`` runs a few kernels of bench/bench_kernels.py in ``--sessions`` separate pytest
sessions per timer (wall clock ``perf_counter``, the process's CPU time ``process_time``;
alternating), one after the other, each at pytest-benchmark's default settings with the
plugin's ``--fastdrift-save`` (every round, and the machine-speed probes between the rounds
timed with the same clock), and logs the load average of each session.  Each session is one
real *run*, as a CI job would make it.

``study`` pairs the runs of one benchmark:

* A/A pairs: two runs of the same code, ``far`` apart in time (at least 5 sessions of each timer, two
  minutes or more) or ``adjacent`` (consecutive sessions); the share flagged ``regressed`` is the false
  alarm rate;
* injected slowdowns: the current run's rounds multiplied by 1.10, 1.05, 1.02 -- the probe
  does not see them, as it would not see a slower commit; the share flagged is the detection
  rate;
* each with the probe (``probe``: the default comparison of two runs saved by the plugin) and
  without it (``raw``: as two pytest-benchmark JSON files from elsewhere);
* rounds needed: the normalized log ratio's error on A/A pairs split into the part that
  shrinks with rounds (the between-block error the comparison reports) and the part that does
  not (the run-to-run residual the probe leaves), and the rounds each effect needs at 95%.

With ``--baseline-runs 3,5`` it compares one current run against a baseline of k runs instead
(A/A and the injected slowdowns, the k runs just before the current one or far from it), and
prints the detection each k gives with the spread of the runs' normalized levels.

With ``--current-runs 1,3,5`` the current side is ``m`` consecutive runs as well, and it prints the
detection per benchmark and the runs each effect needs at the measured spreads; ``--tests t,rank``
(the default) runs each way of comparing several runs a side on the same trials.

``collect --variants default,pinned,nogc,harness`` alternates harness variants (pinned to one CPU;
``--benchmark-disable-gc --benchmark-warmup=on``; both); ``spread DIR...`` prints a run's spread per
variant, and how much halves of one run vary against runs; ``sources`` measures placement in
this process (the huge-page share of fresh arrays, the histogram's count-array offset).
``collect --checkouts OLD,NEW`` alternates builds of the kernels (source trees with the kernels
built in place) session by session, so that both see the same minutes of the machine.

``levels DIR`` asks whether a benchmark's outlying runs are episodes of the whole machine: the
correlation of the sessions' levels across benchmarks (raw and probe-normalized), what the other
benchmarks, the probes and the run's fastest rounds did in each outlying session, and the
detection each per-run estimator gives on the same trials (probe-normalized mean, median or low
quantile of the blocks; raw; a low quantile of the rounds; each level less the same session's
level of a reference benchmark, ``--reference test_np_sum``).

Prints the tables docs/perf.md quotes.
"""
from __future__ import annotations

import argparse
import math
import os
import pathlib
import subprocess
import sys
import time

from statistics import NormalDist

import numpy as np

from fastdrift.perf import Run, compare_runs, read_run
from fastdrift.perf.runs import Bench
from fastdrift.perf.stats import (ALPHA, MARGIN_FRACTION, decide, probe_block_levels, run_levels,
                                  runs_rank_compare, t_quantile, z_two_sided)

HERE = pathlib.Path(__file__).resolve().parent
BENCHES = ["test_hist[c-uniform100]", "test_hist[c-quantile10]", "test_moments[c]", "test_np_sum"]
EFFECTS = (0.0, 0.10, 0.05, 0.02)


#: harness variants ``collect --variants`` alternates: extra pytest arguments, and whether the
#: session is pinned to one CPU (the one of the session's index modulo the CPUs, as a CI runner would)
VARIANTS = {
    "default": ([], False),
    "pinned": ([], True),
    "nogc": (["--benchmark-disable-gc", "--benchmark-warmup=on"], False),
    "harness": (["--benchmark-disable-gc", "--benchmark-warmup=on"], True),
}


def collect(out: pathlib.Path, sessions: int, timers, variants=("default",), checkouts=()) -> None:
    """``sessions`` pytest sessions per timer and harness variant, alternating (the same stretch
    of time for each), each saved as ``out/<timer>[-<variant>]/run_NNN.fdr`` with the load average.
    ``checkouts`` (source trees with ``src/`` built in place and ``bench/``) alternate builds of the kernels
    instead, each session importing fastdrift from one of them: ``out/<timer>-<checkout's name>/``."""
    trees = [pathlib.Path(c).resolve() for c in checkouts] or [None]
    for i in range(sessions):
        for timer in timers:
            for variant in variants:
                for tree in trees:
                    tag = "" if variant == "default" else f"-{variant}"
                    d = out / (f"{timer}{tag}" + (f"-{tree.name}" if tree is not None else ""))
                    d.mkdir(parents=True, exist_ok=True)
                    f = d / f"run_{i:03d}.fdr"
                    if f.exists():
                        continue
                    extra, pin = VARIANTS[variant]
                    cpus = sorted(os.sched_getaffinity(0))
                    env = dict(os.environ)
                    if tree is not None:
                        env["PYTHONPATH"] = str(tree / "src")
                    kernels = (tree / "bench" if tree is not None else HERE) / "bench_kernels.py"
                    ids = [f"{kernels}::{b}" for b in BENCHES]
                    t = time.time()
                    subprocess.run([sys.executable, "-m", "pytest", *ids, "-q", "-p", "no:cacheprovider", "-o",
                                    "python_files=bench_*.py", "--benchmark-only", f"--benchmark-timer=time.{timer}",
                                    f"--fastdrift-save={f}", *extra], check=True, capture_output=True, cwd=d, env=env,
                                   preexec_fn=(lambda: os.sched_setaffinity(0, {cpus[i % len(cpus)]})) if pin else None)
                    with open(d / "load.txt", "a") as fh:
                        fh.write(f"{i} {t:.1f} {time.time() - t:.1f} {open('/proc/loadavg').read().strip()}\n")


def load(d: pathlib.Path):
    runs = [read_run(str(p)) for p in sorted(d.glob("run_*.fdr"))]
    names = [n for n in runs[0].benchmarks if all(n in r.benchmarks for r in runs)]
    return runs, names


def _shifted(b: Bench, effect: float, probe: bool) -> Bench:
    return Bench(b.name, values=b.values * (1 + effect),
                 blocks=None if b.blocks is None else b.blocks + math.log1p(effect), rounds=b.rounds,
                 probe=b.probe if probe else None)


def pair_list(n_runs: int, names, n_pairs: int, how: str, rng):
    out = []
    for t in range(n_pairs):
        name = names[t % len(names)]
        if how == "adjacent":
            i = int(rng.integers(0, n_runs - 1))
            j = i + 1
        else:
            while True:
                i, j = (int(v) for v in rng.choice(n_runs, 2, replace=False))
                if abs(i - j) >= 5:
                    break
        out.append((name, i, j))
    return out


def rates(runs, pairs, effect, probe=True, threshold=0.05):
    got = {"regressed": 0, "critical": 0, "too noisy to tell": 0, "improved": 0, "unchanged": 0}
    for name, i, j in pairs:
        b, c = runs[i].benchmarks[name], runs[j].benchmarks[name]
        rb, rc = Run("b", "x"), Run("c", "x")
        rb.benchmarks[name] = _shifted(b, 0.0, probe)
        rc.benchmarks[name] = _shifted(c, effect, probe)
        row = compare_runs(rb, rc, threshold, threads=1).rows[0]
        got[row.verdict] += 1
        got["critical"] += row.severity == "critical"
    return {k: v / len(pairs) for k, v in got.items()}


def _one(runs, name, i, j, probe=True):
    rb, rc = Run("b", "x"), Run("c", "x")
    rb.benchmarks[name] = _shifted(runs[i].benchmarks[name], 0.0, probe)
    rc.benchmarks[name] = _shifted(runs[j].benchmarks[name], 0.0, probe)
    return compare_runs(rb, rc, threads=1).rows[0]


def study(d: pathlib.Path, n_pairs: int) -> None:
    runs, names = load(d)
    loads = [ln.split() for ln in (d / "load.txt").read_text().splitlines()] if (d / "load.txt").exists() else []
    la = np.array([float(x[3]) for x in loads]) if loads else np.array([math.nan])
    timer = runs[0].env.get("timer", "?")
    print(f"{d}: {len(runs)} runs (pytest sessions), timer {timer}, {len(names)} benchmarks; load average "
          f"(1 min) during the sessions: median {np.median(la):.1f}, range {la.min():.1f}-{la.max():.1f}")
    print("per benchmark: rounds a run (median), a round's IQR / median, run medians and the probes' geometric "
          "mean (5th-95th percentile / their median), their ratio (the same), the memory probe's weight (median)")
    for name in names:
        bs = [r.benchmarks[name] for r in runs]
        rounds = np.median([b.rounds for b in bs])
        iqr = np.median([(np.quantile(b.values, .75) - np.quantile(b.values, .25)) / np.median(b.values) for b in bs])
        med = np.array([np.median(b.values) for b in bs])
        lvl = np.array([math.sqrt(np.median(b.probe.mem) * np.median(b.probe.cpu)) for b in bs])
        norm = med / lvl

        def spread(v):
            v = v / np.median(v)
            return f"{np.quantile(v, 0.05):.2f}-{np.quantile(v, 0.95):.2f}"
        w = np.median([_one(runs, name, i, i + 1).memory_weight for i in range(len(runs) - 1)])
        print(f"  {name:<48} R={rounds:<5.0f} IQR {iqr:4.2f}  medians {spread(med)}  machine {spread(lvl)}  "
              f"ratio {spread(norm)}  w {w:.2f}")
    rng = np.random.default_rng(0)
    sets = {how: pair_list(len(runs), names, n_pairs, how, rng) for how in ("far", "adjacent")}
    print()
    print(f"{n_pairs} pairs each, default settings (--max-regression 5%, alpha 0.01):")
    print(f"  {'comparison':<10} {'pairs':<9} {'slowdown':>8} {'regressed':>9} {'critical':>8} {'too noisy':>9} "
          f"{'unchanged':>9} {'improved':>8}")
    for probe in (True, False):
        for how, pairs in sets.items():
            for eff in EFFECTS:
                r = rates(runs, pairs, eff, probe)
                print(f"  {'probe' if probe else 'raw':<10} {how:<9} {eff:>8.0%} {r['regressed']:>9.1%} "
                      f"{r['critical']:>8.1%} {r['too noisy to tell']:>9.1%} {r['unchanged']:>9.1%} "
                      f"{r['improved']:>8.1%}")
    print()
    print("error of the normalized log ratio on far A/A pairs: reported (between blocks, median), observed "
          "(spread of the log ratios over the pairs, 1.4826 MAD), the run-to-run residual the probe leaves, and the "
          "rounds a side for 95% detection (slowdown at --max-regression)")
    cases = ((0.10, 0.05), (0.05, 0.025), (0.02, 0.01))
    z95 = NormalDist().inv_cdf(0.95)
    print("  (in brackets: the rounds if the probes explained the machine entirely, the residual 0)")
    print(f"  {'benchmark':<48} {'R':>5} {'reported':>8} {'observed':>8} {'residual':>8} "
          + " ".join(f"{f'{e:.0%} at {t:.1%}':>18}" for e, t in cases))
    for name in names:
        rows = [_one(runs, name, i, j) for nm, i, j in pair_list(len(runs), [name], n_pairs, "far", rng)]
        lr = np.log([r.ratio for r in rows])
        q = t_quantile(1 - ALPHA / 2, 18)
        rep = np.median([math.log(r.ratio_hi / r.ratio) / q for r in rows])
        obs = 1.4826 * np.median(np.abs(lr - np.median(lr)))
        resid = math.sqrt(max(0.0, obs ** 2 - rep ** 2))
        rounds = np.median([r.rounds_base for r in rows])
        need = []
        for e, t in cases:
            allowed = min((math.log1p(e) - math.log1p(MARGIN_FRACTION * t)) / (q + z95),
                          (math.log1p(e) - math.log1p(t)) / z95)
            ideal = f"({math.ceil(rounds * rep ** 2 / allowed ** 2):,})"
            need.append(("never" if allowed <= resid else f"{math.ceil(rounds * rep ** 2 / (allowed ** 2 - resid ** 2)):,}")
                        + " " + ideal)
        print(f"  {name:<48} {rounds:>5.0f} {rep:>8.3f} {obs:>8.3f} {resid:>8.3f} " + " ".join(f"{n:>18}" for n in need))


def multi_sets(n_runs: int, names, n_trials: int, k: int, how: str, rng, m: int = 1):
    """Trials of ``k`` baseline runs and ``m`` current runs: ``last``, the ``k`` sessions just before the
    ``m`` consecutive current ones (a CI baseline of the last main-branch runs, the change's runs made one after
    the other); ``far``, ``k`` runs at least 5 sessions from every current one (``m`` consecutive)."""
    out = []
    for t in range(n_trials):
        name = names[t % len(names)]
        if how == "last":
            j = int(rng.integers(k, n_runs - m + 1))
            base = list(range(j - k, j))
        else:
            while True:
                j = int(rng.integers(0, n_runs - m + 1))
                pool = [i for i in range(n_runs) if i <= j - 5 or i >= j + m - 1 + 5]
                if len(pool) >= k:
                    break
            base = [int(i) for i in rng.choice(pool, k, replace=False)]
        out.append((name, base, list(range(j, j + m))))
    return out


def _sub(runs, name, idx, effect=0.0):
    out = []
    for i in idx:
        r = Run(f"r{i}", "x")
        r.benchmarks[name] = _shifted(runs[i].benchmarks[name], effect, True) if effect else runs[i].benchmarks[name]
        out.append(r)
    return out


def multi_rates(runs, trials, effect, threshold=0.05, run_test="rank"):
    got = {"regressed": 0, "critical": 0, "too noisy to tell": 0, "improved": 0, "unchanged": 0}
    sd, by, n = [], {}, {}
    for name, base, cur in trials:
        row = compare_runs(_sub(runs, name, base), _sub(runs, name, cur, effect), threshold, threads=1,
                           run_test=run_test).rows[0]
        got[row.verdict] += 1
        got["critical"] += row.severity == "critical"
        sd.append(row.run_to_run_sd)
        by[name] = by.get(name, 0) + (row.verdict == "regressed")
        n[name] = n.get(name, 0) + 1
    out = {k: v / len(trials) for k, v in got.items()}
    out["tau"] = float(np.median(sd))
    out["by"] = {k: v / n[k] for k, v in by.items()}
    return out


def _spread(runs, name):
    """A run's total spread: 1.4826 MAD of each run's normalized level against all the others (leave one out)."""
    lv = []
    for j in range(len(runs)):
        rest = _sub(runs, name, [i for i in range(len(runs)) if i != j])
        lv.append(math.log(compare_runs(rest, _sub(runs, name, [j]), threads=1).rows[0].ratio))
    lv = np.array(lv)
    return 1.4826 * float(np.median(np.abs(lv - np.median(lv)))) * math.sqrt(1 - 1 / len(runs))


def multi_study(d: pathlib.Path, n_trials: int, ks, ms=(1,), tests=("t", "rank"), seed: int = 1) -> None:
    """Flagged and detection rates with ``k`` baseline runs and ``m`` current runs, each run comparison of
    ``tests`` on the same trials, and the runs the targets need."""
    runs, names = load(d)
    rng = np.random.default_rng(seed)
    loads = [ln.split() for ln in (d / "load.txt").read_text().splitlines()] if (d / "load.txt").exists() else []
    la = np.array([float(x[3]) for x in loads]) if loads else np.array([math.nan])
    print(f"{d}: {len(runs)} runs, load average (1 min) median {np.median(la):.1f}, range {la.min():.1f}-"
          f"{la.max():.1f}; k baseline runs against m current runs, {n_trials} trials per row (benchmarks in turn), "
          f"default settings (--max-regression 5%, alpha 0.01); run comparison: t (pooled t on the run levels), "
          f"rank (Hodges-Lehmann and Mann-Whitney where k, m reach alpha, else t)")
    print(f"  {'k':>3} {'m':>3} {'baseline':<8} {'test':<5} {'slowdown':>8} {'regressed':>9} {'critical':>8} "
          f"{'too noisy':>9} {'unchanged':>9} {'improved':>8} {'run-to-run sd':>13}  regressed per benchmark: "
          + " / ".join(nm.rsplit("::", 1)[-1] for nm in names))
    for k in ks:
        for m in ms:
            if k + m < 3 or k + m > len(runs):
                continue
            for how in ("last", "far"):
                if how == "far" and k + m + 10 > len(runs):
                    continue
                trials = multi_sets(len(runs), names, n_trials, k, how, rng, m)
                for test in tests:
                    for eff in EFFECTS:
                        r = multi_rates(runs, trials, eff, run_test=test)
                        print(f"  {k:>3} {m:>3} {how:<8} {test:<5} {eff:>8.0%} {r['regressed']:>9.1%} "
                              f"{r['critical']:>8.1%} {r['too noisy to tell']:>9.1%} {r['unchanged']:>9.1%} "
                              f"{r['improved']:>8.1%} {r['tau']:>13.3f}  " + " / ".join(
                                  f"{v:.0%}" for nm, v in r["by"].items()), flush=True)
    # what the targets need: one run's level has the spread sd (within-run error and run-to-run change together,
    # measured over all the sessions); the difference of k and m runs' means has the error sd sqrt(1/k + 1/m) and
    # the interval's quantile t(k + m - 2); the slowdown e is caught when the interval's lower end clears
    # log(1 + t/2) and the estimate log(1 + t)
    print()
    print("what the runs need: per benchmark, a run's total spread sd (all sessions, 1.4826 MAD of the normalized "
          "levels, leave one out), and the expected detection of 10/5/2% (at --max-regression 5/2.5/1%) with k "
          "baseline and m current runs")
    z = NormalDist()
    km = ((5, 1), (10, 1), (3, 3), (5, 3), (5, 5), (10, 5), (10, 10), (20, 20))
    print(f"  {'benchmark':<48} {'sd':>6} " + " ".join(f"{f'k={k},m={m}':>15}" for k, m in km))
    for name in names:
        sd = _spread(runs, name)
        cells = []
        for k, m in km:
            q = t_quantile(1 - ALPHA / 2, k + m - 2)
            se = sd * math.sqrt(1 / k + 1 / m)
            pw = []
            for e, t in ((0.10, 0.05), (0.05, 0.025), (0.02, 0.01)):
                lo_need = max(math.log1p(MARGIN_FRACTION * t) + q * se, math.log1p(t))
                pw.append(z.cdf((math.log1p(e) - lo_need) / se))
            cells.append("/".join(f"{p:.0%}" for p in pw))
        print(f"  {name:<48} {sd:>6.3f} " + " ".join(f"{c:>15}" for c in cells))
    print("  (the A/A rate is at most alpha/2 = 0.5% by construction when the runs are exchangeable)")


def session_levels(runs, names, ref):
    """Per benchmark, each session's level (log scale) by several per-run estimators.

    ``probe``: the mean of the run's probe-normalized blocks, the comparison's level (the memory weight fitted over
    all the sessions at once); ``probe-med``, ``probe-q25``: the median and the 25th percentile of those blocks
    (robust to an episode that slows a few of a run's blocks); ``raw``: the mean of its raw block log-medians;
    ``q10``: the log of its rounds' 10th percentile (a low quantile of the raw rounds); ``probe/ref`` and
    ``raw/ref``: the ``probe`` or ``raw`` level less the same session's level of the reference benchmark ``ref`` (a
    same-run calibration by a workload the code under test does not change), the reference itself keeping its own
    uncalibrated level.  Also ``machine``, the probes' level, and ``low``, the log of the run's 5th percentile
    round (a whole-run shift moves it with the level)."""
    out = {}
    for name in names:
        bs = [r.benchmarks[name] for r in runs]
        probes = [[probe_block_levels(p, x.probe.at, x.rounds, x.blocks.size) for p in (x.probe.mem, x.probe.cpu)]
                  for x in bs]
        lv, _, w, machine = run_levels([x.blocks for x in bs], probes)
        normed = [(x.blocks - c) - w * (m - c) for x, (m, c) in zip(bs, probes)]
        out[name] = {"probe": lv, "probe-med": np.array([float(np.median(a)) for a in normed]),
                     "probe-q25": np.array([float(np.quantile(a, 0.25)) for a in normed]),
                     "raw": np.array([float(x.blocks.mean()) for x in bs]),
                     "q10": np.log([np.quantile(x.values, 0.1) for x in bs]), "machine": machine,
                     "low": np.log([np.quantile(x.values, 0.05) for x in bs])}
    for name in names:
        for est in ("probe", "raw"):
            out[name][f"{est}/ref"] = out[name][est] - (out[ref][est] if name != ref else 0.0)
    return out


def _ranks(v):
    r = np.empty(v.size)
    r[np.argsort(v, kind="stable")] = np.arange(v.size)
    return r


def _rank_rates(levels, trials, effect, threshold=0.05):
    """Share of trials flagged ``regressed`` when the given run levels are compared by ranks (the default
    comparison of 5 + 5 runs or more: Hodges-Lehmann shift, Moses interval), per benchmark."""
    za = z_two_sided(ALPHA)  # the rank rows' quantile, as compare_runs uses it
    hit = {}
    for name, base, cur in trials:
        rk = runs_rank_compare(levels[name][base], levels[name][cur] + math.log1p(effect))
        d = decide([rk.log_ratio], [(rk.hi - rk.lo) / (2 * za)], [za], threshold, lo_log=[rk.lo], hi_log=[rk.hi])
        hit.setdefault(name, []).append(d["verdict"][0] == "regressed")
    return {n: float(np.mean(v)) for n, v in hit.items()}


ESTIMATORS = ("probe", "probe-med", "probe-q25", "raw", "q10", "probe/ref", "raw/ref")


def levels_study(d: pathlib.Path, ref: str, n_trials: int, ks, ms, drop=()) -> None:
    """Are a benchmark's outlying runs machine-wide episodes?  The correlation of the sessions' levels across
    benchmarks, what the other benchmarks, the probes and the run's own fastest rounds did in each outlying
    session, and the detection each per-run estimator gives (same trials for each).  ``drop``: sessions to leave
    out of one benchmark's runs (``name:i,j``), to measure what its outlying runs cost."""
    runs, names = load(d)
    ref = next(n for n in names if n.endswith(ref))
    lv = session_levels(runs, names, ref)
    short = [n.rsplit("::", 1)[-1] for n in names]
    print(f"{d}: {len(runs)} sessions; reference benchmark {ref}")
    for est in ("raw", "probe"):
        m = np.array([lv[n][est] for n in names])
        print(f"  correlation of the sessions' {est} levels across benchmarks (Pearson / Spearman):")
        pe, sp = np.corrcoef(m), np.corrcoef(np.array([_ranks(v) for v in m]))
        for i, n in enumerate(short):
            print(f"    {n:<26} " + " ".join(f"{pe[i, j]:+.2f}/{sp[i, j]:+.2f}" for j in range(len(names))))
    print("  outlying sessions (probe-normalized level more than 3 spreads (1.4826 MAD) from the median): the "
          "session's deviation of every benchmark (raw / normalized), of the probes, and the run's 5th percentile "
          "round against the sessions' median 5th percentile (a whole-run shift moves it too)")
    dev = {n: {e: lv[n][e] - np.median(lv[n][e]) for e in ("raw", "probe", "low")} for n in names}
    mach = np.mean([lv[n]["machine"] for n in names], axis=0)
    mach = mach - np.median(mach)
    for n, s in zip(names, short):
        x = dev[n]["probe"]
        for i in np.flatnonzero(np.abs(x) > 3 * _mad(x)):
            print(f"    {s:<26} session {i:>3}: " + "  ".join(
                f"{o}: {math.expm1(dev[nn]['raw'][i]):+.1%}/{math.expm1(dev[nn]['probe'][i]):+.1%}"
                for nn, o in zip(names, short)) + f"  probes {math.expm1(mach[i]):+.1%}  "
                f"5th pct round {math.expm1(dev[n]['low'][i]):+.1%}")
    print("  a run's spread per estimator: 1.4826 MAD of the sessions' levels / largest deviation from their median")
    print(f"    {'benchmark':<26} " + " ".join(f"{e:>14}" for e in ESTIMATORS))
    for n, s in zip(names, short):
        print(f"    {s:<26} " + " ".join(
            f"{f'{_mad(lv[n][e]):.3f}/{np.max(np.abs(lv[n][e] - np.median(lv[n][e]))):.2f}':>14}" for e in ESTIMATORS))
    keep = {n: np.arange(len(runs)) for n in names}
    for item in drop:
        nm, idx = item.split(":")
        nm = next(n for n in names if n.endswith(nm))
        keep[nm] = np.array([i for i in range(len(runs)) if i not in {int(v) for v in idx.split(",")}])
        print(f"  {nm}: sessions {idx} left out")
    rng = np.random.default_rng(1)
    print(f"  flagged regressed by ranks, {n_trials} trials per row ({n_trials // len(names)} per benchmark), "
          f"--max-regression 5%: A/A, 10%, 5%, 2% (all benchmarks) and 10% per benchmark: " + " / ".join(short))
    for k in ks:
        for m in ms:
            for how in ("last", "far"):
                if how == "far" and k + m + 10 > min(v.size for v in keep.values()):
                    continue
                trials = [(n, keep[n][base], keep[n][cur]) for n in names
                          for _, base, cur in multi_sets(keep[n].size, [n], n_trials // len(names), k, how, rng, m)]
                for est in ESTIMATORS:
                    levels = {n: lv[n][est] for n in names}
                    rates = {e: _rank_rates(levels, trials, e) for e in EFFECTS}
                    tot = {e: float(np.mean(list(r.values()))) for e, r in rates.items()}
                    print(f"    k={k:<2} m={m:<2} {how:<4} {est:<9} A/A {tot[0.0]:5.1%}  10% {tot[0.10]:5.1%}  "
                          f"5% {tot[0.05]:5.1%}  2% {tot[0.02]:5.1%}   " + " / ".join(
                              f"{rates[0.10][n]:.0%}" for n in names), flush=True)


def spread_study(dirs) -> None:
    """Per harness variant (a directory of runs each): the load during its sessions, and per benchmark a run's
    total spread (normalized levels, leave one out) and the raw medians' spread (1.4826 MAD of the log medians)."""
    print("a run's spread per harness variant: normalized level sd / raw log-median sd (1.4826 MAD)")
    table = {}
    for d in dirs:
        runs, names = load(d)
        loads = [ln.split() for ln in (d / "load.txt").read_text().splitlines()] if (d / "load.txt").exists() else []
        la = np.array([float(x[3]) for x in loads]) if loads else np.array([math.nan])
        print(f"  {d.parent.name}/{d.name}: {len(runs)} runs, load average (1 min) median {np.median(la):.1f}, range "
              f"{la.min():.1f}-{la.max():.1f}")
        for name in names:
            med = np.log([np.median(r.benchmarks[name].values) for r in runs])
            raw = 1.4826 * float(np.median(np.abs(med - np.median(med))))
            table.setdefault(name, {})[f"{d.parent.name}/{d.name}"] = f"{_spread(runs, name):.3f} / {raw:.3f}"
    cols = [f"{d.parent.name}/{d.name}" for d in dirs]
    print(f"  {'benchmark':<40} " + " ".join(f"{c:>18}" for c in cols))
    for name, row in table.items():
        print(f"  {name:<40} " + " ".join(f"{row.get(c, 'n/a'):>18}" for c in cols))
    print("sub-runs of one session against sessions: a run's level sd (MAD), a half-run's level around its run's "
          "(MAD, the run's normalized blocks cut in halves), lag-1 correlation of consecutive sessions' levels")
    for d in dirs:
        runs, names = load(d)
        for name in names:
            bs = [r.benchmarks[name] for r in runs]
            probes = [[probe_block_levels(p, x.probe.at, x.rounds, x.blocks.size) for p in (x.probe.mem, x.probe.cpu)]
                      for x in bs]
            lv, _, w, _ = run_levels([x.blocks for x in bs], probes)
            norm = [(x.blocks - c) - w * (m - c) for x, (m, c) in zip(bs, probes)]
            dh = np.array([a[:a.size // 2].mean() - a[a.size // 2:].mean() for a in norm])
            print(f"  {d.parent.name}/{d.name} {name:<48} run {_mad(lv):.3f}  half-run {_mad(dh) / math.sqrt(2):.3f}  "
                  f"lag-1 {np.corrcoef(lv[:-1], lv[1:])[0, 1]:+.2f}")


def _mad(v) -> float:
    return 1.4826 * float(np.median(np.abs(v - np.median(v))))


def _thp_share(a: np.ndarray) -> float:
    """Share of an array's bytes on transparent huge pages: AnonHugePages of the mappings it spans."""
    lo_a = a.__array_interface__["data"][0]
    hi_a = lo_a + a.nbytes
    on, tot = False, 0
    with open("/proc/self/smaps") as fh:
        for ln in fh:
            p = ln.split()
            if "-" in p[0] and ":" not in p[0]:
                lo, hi = (int(v, 16) for v in p[0].split("-"))
                on = lo < hi_a and hi > lo_a
            elif on and p[0] == "AnonHugePages:":
                tot += int(p[1]) * 1024
    return tot / a.nbytes


def sources(arrays: int, rounds: int) -> None:
    """Placement sources of a run's offset, in this process: the huge-page share of fresh 1e7-value arrays,
    and the C histogram's time with its count array at offsets within a 4 KiB page (CPU clock, interleaved)."""
    from fastdrift.adapters.arrow import iter_columns
    from fastdrift.kernels.hist import make_index
    from fastdrift.kernels.oracles import KERNELS
    print("transparent huge pages:", pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip())
    x0 = np.random.default_rng(0).standard_normal(10_000_000)
    print("share of a fresh 1e7 float64 array on huge pages:",
          " ".join(f"{_thp_share(x0.copy()):.2f}" for _ in range(arrays)))
    view = next(iter_columns(x0))
    fh = KERNELS["histogram"]["c"]
    for kind, edges in (("uniform100", np.linspace(-4, 4, 101)),
                        ("quantile10", np.quantile(x0, np.linspace(0, 1, 11)[1:-1]))):
        idx = make_index(edges)
        buf = np.zeros(3 * 512, np.int64)
        base = (-buf.__array_interface__["data"][0] % 4096) // 8
        offs = list(range(0, 512, 64)) + [8, 24]
        sp = np.zeros(2, np.int64)
        res = {o: [] for o in offs}
        for _ in range(rounds):
            for o in offs:
                c = buf[base + o: base + o + idx.n_edges + 1]
                t0 = time.process_time()
                fh(view, idx, c, sp)
                res[o].append(time.process_time() - t0)
        med = {o: float(np.median(v)) for o, v in res.items()}
        m0 = float(np.median(list(med.values())))
        print(f"histogram {kind}, median time by the count array's byte offset in its page / the median: "
              + " ".join(f"{o * 8}:{med[o] / m0:.3f}" for o in offs))


def splits_study(d: pathlib.Path, m: int, effects, thresholds) -> None:
    """Every split of the runs in ``d`` into a baseline of the others and ``m`` current runs, the
    current runs' rounds times ``1 + effect`` (the probes unchanged): how many splits exit 2, and
    per benchmark how many are critical / warning / too noisy to tell (``.ci/bench``'s comparison;
    :func:`fastdrift.perf.compare.split_noise`)."""
    from fastdrift.perf.compare import split_noise

    runs = [read_run(str(p)) for p in sorted(d.glob("*.fdr"))]
    names = sorted(set.intersection(*(set(r.benchmarks) for r in runs)))
    print(f"{len(runs)} runs in {d}, {len(names)} benchmarks, splits of {len(runs) - m} baseline + {m} current runs")
    for thr in thresholds:
        for effect in effects:
            sn = split_noise(runs, thr, m, 1.0 + effect)
            print(f"--max-regression {thr:.0%}, rounds x {1 + effect:.2f}: {sn.alarms} of {sn.splits} splits with a "
                  f"benchmark regressed, {sn.critical} exit 2")
            for n in names:
                v = sn.per_benchmark.get(n, {"critical": 0, "warning": 0, "too noisy to tell": 0})
                print(f"  {n:<60} critical {v['critical']:>3}  warning {v['warning']:>3}  "
                      f"too noisy {v['too noisy to tell']:>3}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("dir", type=pathlib.Path)
    c.add_argument("--sessions", type=int, default=30, help="sessions per timer")
    c.add_argument("--timers", default="perf_counter,process_time",
                   help="pytest-benchmark timers (time.X), comma-separated, alternating")
    c.add_argument("--variants", default="default", help=f"harness variants, comma-separated, alternating: "
                                                          f"{', '.join(VARIANTS)}")
    c.add_argument("--checkouts", default="", help="comma-separated source trees (kernels built in place) to "
                                                   "alternate, e.g. an older commit's and this one")
    s = sub.add_parser("study")
    s.add_argument("dir", type=pathlib.Path)
    s.add_argument("--pairs", type=int, default=200)
    s.add_argument("--baseline-runs", default="",
                   help="comma-separated k: compare current runs against baselines of k runs (e.g. 3,5) instead")
    s.add_argument("--current-runs", default="1", help="with --baseline-runs: comma-separated m, the current runs")
    s.add_argument("--tests", default="t,rank", help="with --baseline-runs: run comparisons side by side (t, rank)")
    s.add_argument("--seed", type=int, default=1, help="with --baseline-runs: the seed of the trials' draw "
                                                        "(another seed, another draw of the same sessions)")
    lv = sub.add_parser("levels", help="are the outlying runs machine-wide? correlation of the sessions' levels "
                                       "across benchmarks, and the detection of per-run estimators and same-run "
                                       "calibration by a reference benchmark")
    lv.add_argument("dir", type=pathlib.Path)
    lv.add_argument("--reference", default="test_np_sum", help="the reference benchmark (name or its end)")
    lv.add_argument("--trials", type=int, default=200)
    lv.add_argument("--baseline-runs", default="5,10")
    lv.add_argument("--current-runs", default="5,10")
    lv.add_argument("--drop", action="append", default=[], help="NAME:i,j -- leave sessions i, j out of NAME's runs")
    o = sub.add_parser("sources")
    o.add_argument("--arrays", type=int, default=8)
    o.add_argument("--rounds", type=int, default=25)
    v = sub.add_parser("spread")
    v.add_argument("dirs", type=pathlib.Path, nargs="+", help="directories of runs (one per harness variant)")
    t = sub.add_parser("splits", help="every split of a directory of runs (e.g. bench/baseline/<machine>) into baseline "
                                      "and current runs, as .ci/bench compares them")
    t.add_argument("dir", type=pathlib.Path)
    t.add_argument("--current-runs", type=int, default=2)
    t.add_argument("--effects", default="0,0.3", help="comma-separated slowdowns injected into the current runs")
    t.add_argument("--thresholds", default="0.05,0.15", help="comma-separated --max-regression values")
    args = ap.parse_args(argv)
    if args.cmd == "splits":
        splits_study(args.dir, args.current_runs, [float(e) for e in args.effects.split(",")],
                     [float(x) for x in args.thresholds.split(",")])
    elif args.cmd == "collect":
        collect(args.dir, args.sessions, args.timers.split(","), args.variants.split(","),
                [c for c in args.checkouts.split(",") if c])
    elif args.cmd == "levels":
        levels_study(args.dir, args.reference, args.trials, [int(k) for k in args.baseline_runs.split(",")],
                     [int(m) for m in args.current_runs.split(",")], args.drop)
    elif args.cmd == "sources":
        sources(args.arrays, args.rounds)
    elif args.cmd == "spread":
        spread_study(args.dirs)
    elif args.baseline_runs:
        multi_study(args.dir, args.pairs, [int(k) for k in args.baseline_runs.split(",")],
                    [int(m) for m in args.current_runs.split(",")], args.tests.split(","), args.seed)
    else:
        study(args.dir, args.pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
