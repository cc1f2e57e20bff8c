"""Does this host give the benchmark's core its full speed?  Rounds of the benchmark gate's compute
probe, ``np.sum`` over 1e7 float64 and two histogram kernels, for ``--seconds``.

    python bench/host_speed.py [--seconds 60]

On a virtual machine whose cores are hardware threads shared with other tenants, a compute-bound
loop runs at full speed while the core's other thread is idle and at about half speed while it is
busy, for stretches of seconds; a loop bound by memory (``np.sum``) keeps its speed.  The ratio of a
compute-bound kernel to ``np.sum`` then falls by as much in those stretches, whatever the code.
The script prints the probe's distribution and each kernel's ratio to ``np.sum`` in the rounds at
full speed (the probe within ``FULL_SPEED`` of its fastest: the rule bench/bench_kernels.py,
bench_observe_tail.py and bench_scan.py report with) and in the others, and the rank correlation
of the probe with each kernel's time.  Not part of the test suite.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from fastdrift.perf.probe import probe_once

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import bench_kernels  # noqa: E402  (the cases of the kernel targets)

KERNELS = ("hist quantile100 c", "hist uniform100 c")


def _ranks(v: np.ndarray) -> np.ndarray:
    r = np.empty(v.size)
    r[np.argsort(v, kind="stable")] = np.arange(v.size)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    x = np.random.default_rng(0).standard_normal(bench_kernels.N)
    cases = bench_kernels._ratio_cases(x)
    fns = [cases[k] for k in KERNELS]
    for fn in fns:
        fn()

    def cpu(fn):
        c = time.thread_time()
        fn()
        return time.thread_time() - c

    rows = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        rows.append([probe_once(time.thread_time)[1], cpu(lambda: np.sum(x))] + [cpu(fn) for fn in fns])
    a = np.array(rows)
    floor = a[:, 0].min()
    full = a[:, 0] <= bench_kernels.FULL_SPEED * floor
    print(f"{len(a)} rounds in {args.seconds:.0f} s; compute probe: fastest {floor * 1e3:.2f} ms, "
          f"median {np.median(a[:, 0]) * 1e3:.2f} ms, {int((~full).sum())} rounds beyond "
          f"{bench_kernels.FULL_SPEED}x the fastest; its deciles / fastest: "
          + " ".join(f"{q:.2f}" for q in np.quantile(a[:, 0], np.arange(1, 10) / 10) / floor))
    print(f"{'':<24} {'ns a value, full speed':>24} {'ns a value, slowed':>20} {'x np.sum, full':>15} "
          f"{'x np.sum, slowed':>17} {'rank corr. with probe':>22}")
    names = ["np.sum"] + list(KERNELS)
    pr = _ranks(a[:, 0])
    for j, name in enumerate(names, start=1):
        ns = a[:, j] / x.size * 1e9
        ratio = a[:, 1] / a[:, j]

        def med(v, m):
            return f"{statistics.median(v[m]):.2f}" if m.any() else "-"
        corr = np.corrcoef(pr, _ranks(a[:, j]))[0, 1]
        print(f"{name:<24} {med(ns, full):>24} {med(ns, ~full):>20} {med(ratio, full):>15} "
              f"{med(ratio, ~full):>17} {corr:>22.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
