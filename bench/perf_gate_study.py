"""Error rates of `fastdrift perf compare` on real timings of fastdrift's own benchmarks.

    python bench/perf_gate_study.py                 # collect (~10 min), then study
    python bench/perf_gate_study.py --json FILE     # study a pytest-benchmark JSON saved with data

Collecting runs a few kernels of bench/bench_kernels.py for thousands of rounds each
(pytest-benchmark, every round saved).  A *run* at the default settings is a block of ``R``
consecutive rounds, ``R`` the rounds pytest-benchmark's defaults give that benchmark
(``max(5, ceil(1 s / median))``).  Pairs of disjoint blocks are then:

* A/A pairs: two blocks of the same code, at random times of the collection (``far``) or one
  right after the other (``adjacent``); the share flagged ``regressed`` is the false alarm rate;
* injected slowdowns: the current block multiplied by 1.10, 1.05, 1.02; the share flagged is
  the detection rate;
* the same, with each benchmark's rounds shuffled first (``stationary``): a machine whose noise
  does not drift, which isolates what the statistics can do from what the machine does;
* rounds needed: the detection rate as the blocks grow (and at --max-regression 1% for effects
  below the default 5%).

Prints the tables docs/perf.md quotes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

from statistics import NormalDist

import numpy as np

from fastdrift.perf import compare_runs, run_from_timings
from fastdrift.perf.stats import ALPHA, batch_var, combined_se, sample_stats, z_two_sided

HERE = pathlib.Path(__file__).resolve().parent
BENCHES = ["test_hist[c-uniform100]", "test_hist[c-quantile10]", "test_moments[c]", "test_np_sum"]


def collect(rounds: int) -> str:
    out = os.path.join(tempfile.mkdtemp(prefix="fastdrift-gate-"), "long.json")
    ids = [f"{HERE / 'bench_kernels.py'}::{b}" for b in BENCHES]
    subprocess.run([sys.executable, "-m", "pytest", *ids, "-q", "-p", "no:cacheprovider", "-o",
                    "python_files=bench_*.py", "--benchmark-only", f"--benchmark-min-rounds={rounds}",
                    "--benchmark-max-time=60", f"--benchmark-json={out}"], check=True)
    return out


def load(path: str):
    doc = json.loads(pathlib.Path(path).read_text())
    out = {}
    for b in doc["benchmarks"]:
        x = np.asarray(b["stats"]["data"], float)
        out[b["name"]] = (x, max(5, math.ceil(1.0 / float(np.median(x)))))
    return out


def verdict(base, cur, threshold):
    r = compare_runs(run_from_timings({"b": base}), run_from_timings({"b": cur}), threshold, threads=1).rows[0]
    return r.verdict, r.severity


def pairs(data, n_pairs, rng, how, size_factor=1.0):
    """(benchmark, base block, current block) for n_pairs pairs, benchmarks in turn."""
    names = list(data)
    for t in range(n_pairs):
        x, r = data[names[t % len(names)]]
        r = int(r * size_factor)
        nb = x.size // r
        if how == "adjacent":
            i = int(rng.integers(0, nb - 1))
            j = i + 1
        else:
            i, j = (int(v) for v in rng.choice(nb, 2, replace=False))
        yield names[t % len(names)], x[i * r:(i + 1) * r], x[j * r:(j + 1) * r]


def rates(data, n_pairs, how, effect, threshold=0.05, size_factor=1.0, seed=0):
    rng = np.random.default_rng(seed)
    got = {"regressed": 0, "critical": 0, "too noisy to tell": 0, "improved": 0, "unchanged": 0}
    for _, b, c in pairs(data, n_pairs, rng, how, size_factor):
        v, sev = verdict(b, c * (1 + effect), threshold)
        got[v] += 1
        got["critical"] += sev == "critical"
    return {k: v / n_pairs for k, v in got.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="pytest-benchmark JSON with every round (default: collect now)")
    ap.add_argument("--rounds", type=int, default=4000, help="rounds per benchmark when collecting")
    ap.add_argument("--pairs", type=int, default=200)
    args = ap.parse_args(argv)
    data = load(args.json or collect(args.rounds))
    rng = np.random.default_rng(1)
    stationary = {k: (rng.permutation(x), r) for k, (x, r) in data.items()}
    print("benchmarks (rounds collected, default rounds R, median, IQR / median, "
          "medians of R-round blocks: 5th-95th percentile / overall median):")
    for k, (x, r) in data.items():
        nb = x.size // r
        bm = np.median(x[:nb * r].reshape(nb, r), axis=1) / np.median(x)
        q1, q3 = np.quantile(x, [0.25, 0.75])
        print(f"  {k:<26} {x.size:>6} R={r:<4} {np.median(x) * 1e3:7.2f}ms  {(q3 - q1) / np.median(x):5.2f}  "
              f"{np.quantile(bm, 0.05):.2f}-{np.quantile(bm, 0.95):.2f}")
    n = args.pairs
    print()
    print(f"{n} pairs each, default settings (--max-regression 5%, alpha 0.01), R rounds a side:")
    head = f"  {'timings':<11} {'pairs':<9} {'effect':>6} {'regressed':>9} {'critical':>8} {'too noisy':>9} {'unchanged':>9}"
    print(head)
    for label, d in (("real", data), ("stationary", stationary)):
        for how in ("far", "adjacent"):
            for eff in (0.0, 0.10, 0.05, 0.02):
                r = rates(d, n, how, eff)
                print(f"  {label:<11} {how:<9} {eff:>6.0%} {r['regressed']:>9.1%} {r['critical']:>8.1%} "
                      f"{r['too noisy to tell']:>9.1%} {r['unchanged']:>9.1%}")
    print()
    print("rounds needed: share flagged regressed (stationary timings, far pairs) as blocks grow")
    factors = (0.5, 1, 2, 4, 8)
    print(f"  {'threshold':<9} {'effect':>6} " + " ".join(f"{f'{f:g}R':>7}" for f in factors))
    for thr, effects in ((0.05, (0.0, 0.10, 0.20)), (0.01, (0.0, 0.02, 0.05))):
        for eff in effects:
            row = [rates(stationary, n, "far", eff, thr, f)["regressed"] for f in factors]
            print(f"  {thr:<9.0%} {eff:>6.0%} " + " ".join(f"{v:>7.1%}" for v in row))
    print(f"  (R = {', '.join(f'{k}: {r}' for k, (_, r) in data.items())})")
    print()
    print("rounds a side for 95% detection (the median ratio's error shrinks as 1/sqrt(rounds); measured "
          "at R on stationary timings):")
    za, z95 = z_two_sided(ALPHA), NormalDist().inv_cdf(0.95)
    cases = ((0.05, 0.10), (0.05, 0.20), (0.01, 0.02), (0.01, 0.05))
    print(f"  {'benchmark':<26} {'error at R':>10} " + " ".join(f"{f'{e:.0%} (t {t:.0%})':>13}" for t, e in cases))
    rng = np.random.default_rng(2)
    for k, (x, r) in stationary.items():
        ses = []
        for _ in range(50):
            i, j = rng.choice(x.size // r, 2, replace=False)
            b, c = x[i * r:(i + 1) * r], x[j * r:(j + 1) * r]
            st = sample_stats(np.sort(b), np.sort(c), batch_var(b), batch_var(c))
            ses.append(combined_se(st))
        se = float(np.median(ses))
        need = []
        for t, e in cases:
            # the estimate must clear log(1+t) and the interval 1, z95 errors below the effect
            allowed = min((math.log1p(e) - math.log1p(t)) / z95, math.log1p(e) / (za + z95))
            need.append(math.ceil(r * (se / allowed) ** 2))
        print(f"  {k:<26} {se:>10.3f} " + " ".join(f"{n:>13,}" for n in need))
    return 0


if __name__ == "__main__":
    sys.exit(main())
