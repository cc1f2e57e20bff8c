"""Throughput of the numeric kernels on 1e7 float64 values (pytest-benchmark).

Run with ``pytest bench/bench_kernels.py --benchmark-only``; not part of the
test run.  ``python bench/bench_kernels.py [--repeats R]`` prints instead the
same-run ratios to ``np.sum`` of the issue's kernel targets (thread CPU time and
wall time), with the SIMD path that ran, and the same ratios over the rounds the host ran at its
full speed (by the benchmark gate's compute probe, taken before each round).  ``extra_info["values_per_s"]`` records the throughput of each case;
np.sum / np.histogram / searchsorted+bincount / np.quantile are the baselines.
"""
import math
import statistics
import time
from functools import partial

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.adapters.arrow import iter_columns
from fastdrift.kernels.hist import make_index
from fastdrift.kernels.moments import empty_moments
from fastdrift.kernels.oracles import KERNELS

N = 10_000_000
# The NumPy oracles of the histogram and moments are slower than the numpy
# baselines below, which time the same work without the oracle's checks.
BACKENDS = [b for b in KERNELS["histogram"] if b != "reference"]
DECILES = np.arange(1, 10) / 10


@pytest.fixture(scope="module")
def data():
    x = np.random.default_rng(0).standard_normal(N)
    return x, next(iter_columns(x))


def _record(benchmark, result=None):
    from fastdrift.kernels.native import simd_path

    benchmark.extra_info["values_per_s"] = N / benchmark.stats.stats.min
    benchmark.extra_info["simd"] = simd_path()
    return result


def _edges(x, kind):
    if kind.startswith("uniform100"):
        return np.linspace(-4, 4, 101)
    q = 10 if kind == "quantile10" else 100
    return np.quantile(x, np.linspace(0, 1, q + 1)[1:-1])


def _index(x, kind):
    """uniform100 takes the default (arith) path; uniform100table and uniform100arith (the guess
    and +-1 fix-up) are the alternatives it is measured against."""
    return make_index(_edges(x, kind), arithmetic_uniform=kind.endswith("arith"),
                      arith=not kind.endswith("table"))


@pytest.mark.parametrize("kind", ["uniform100", "uniform100table", "uniform100arith", "quantile10",
                                  "quantile100"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_hist(benchmark, data, kind, backend):
    x, view = data
    index = _index(x, kind)
    fn = KERNELS["histogram"][backend]
    counts, specials = np.zeros(index.n_edges + 1, np.int64), np.zeros(2, np.int64)
    fn(view, index, counts, specials)  # warm-up (numba load from cache)
    benchmark.extra_info["index"] = repr(index)
    benchmark(fn, view, index, counts, specials)
    _record(benchmark)


@pytest.mark.parametrize("kind", ["uniform100", "quantile10", "quantile100"])
def test_hist_numpy(benchmark, data, kind):
    x, _ = data
    edges = _edges(x, kind)
    if kind == "uniform100":
        benchmark(np.histogram, x, bins=100, range=(-4, 4))
    else:
        benchmark(lambda: np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1))
    _record(benchmark)


@pytest.mark.parametrize("backend", BACKENDS)
def test_moments(benchmark, data, backend):
    _, view = data
    fn = KERNELS["moments"][backend]

    def run():
        ints, flts = empty_moments()
        fn(view, ints, flts)

    run()
    benchmark(run)
    _record(benchmark)


def test_np_sum(benchmark, data):
    x, _ = data
    benchmark(np.sum, x)
    _record(benchmark)


@pytest.mark.parametrize("impl", list(KERNELS["quantile"]))
def test_quantile(benchmark, data, impl):
    """Reference deciles; "reference" is np.quantile, the baseline."""
    x, view = data
    fn = KERNELS["quantile"][impl]
    if impl == "reference":
        args = (x, DECILES)
    else:
        m = fastdrift.Moments().update(x)
        args = ([view], DECILES, m.n, m.min, m.max)
    want = np.quantile(x, DECILES)
    assert np.array_equal(fn(*args), want)  # also the warm-up
    benchmark(fn, *args)
    _record(benchmark)


# ---- same-run ratios to np.sum (python bench/bench_kernels.py) ------------------------------------

def _ratio_cases(x):
    """name -> (zero-argument callable, values it reads): the issue-16 kernel targets."""
    from fastdrift.kernels.cat import CatTable
    from fastdrift.kernels.oracles import KERNELS as K

    view = next(iter_columns(x))
    rng = np.random.default_rng(1)
    idx = pa.array(rng.integers(0, 1000, x.size).astype(np.int32))
    dict_col = pa.DictionaryArray.from_arrays(idx, pa.array([f"cat{i}" for i in range(1000)]))
    cases = {}
    for kind in ("uniform100", "uniform100table", "quantile10", "quantile100"):
        index = _index(x, kind)
        for backend in BACKENDS:
            counts, specials = np.zeros(index.n_edges + 1, np.int64), np.zeros(2, np.int64)
            cases[f"hist {kind} {backend}"] = partial(K["histogram"][backend], view, index, counts, specials)
    # Lognormal (sigma 2) quantiles, 100 bins: edges too skewed for the bucket table (fd_hist.c).
    xl = np.exp(2.0 * x)
    view_l, index = next(iter_columns(xl)), make_index(np.quantile(xl, np.linspace(0, 1, 101)[1:-1]))
    for backend in BACKENDS:
        counts, specials = np.zeros(index.n_edges + 1, np.int64), np.zeros(2, np.int64)
        cases[f"hist quantile100lognormal {backend}"] = partial(K["histogram"][backend], view_l, index,
                                                                counts, specials)
    # Integer values (normal x 100, rounded): 28 % of them on one of the 100 quantile edges.
    xi = np.round(x * 100)
    view_i, index = next(iter_columns(xi)), make_index(np.unique(np.quantile(xi, np.linspace(0, 1, 101)[1:-1])))
    for backend in BACKENDS:
        counts, specials = np.zeros(index.n_edges + 1, np.int64), np.zeros(2, np.int64)
        cases[f"hist quantile100int {backend}"] = partial(K["histogram"][backend], view_i, index,
                                                          counts, specials)
    for backend in BACKENDS:
        def mom(fn=K["moments"][backend]):
            ints, flts = empty_moments()
            fn(view, ints, flts)
        cases[f"moments {backend}"] = mom
    for backend in BACKENDS:
        cases[f"categories dictionary {backend}"] = partial(
            lambda fn: fn(CatTable("str"), dict_col), K["categorical"][backend])
    return cases


#: A round is at the host's full speed when the compute probe taken just before it is within this
#: factor of the fastest probe of the run.  On a shared core the probe runs either near its floor or
#: at about twice it (another tenant on the core's other hardware thread), little between.
FULL_SPEED = 1.3


def ratios(repeats: int = 5, n: int = N, only=None):
    """Interleaved same-run timings: per round, ``np.sum`` then every kernel, each on the thread's
    CPU clock (``time.thread_time``, fairer than wall time on a loaded machine) and on the wall
    clock, after the benchmark gate's compute probe (:func:`fastdrift.perf.probe.probe_once`, a
    fixed interpreter loop: the speed the host gives this core just then).  Returns {case: (cpu
    ratios, wall ratios, kernel cpu seconds, np.sum cpu seconds, probe cpu seconds)}, ratio =
    np.sum's time / the kernel's time."""
    from fastdrift.perf.probe import probe_once

    x = np.random.default_rng(0).standard_normal(n)
    cases = _ratio_cases(x)
    if only:
        cases = {k: v for k, v in cases.items() if any(o in k for o in only)}
    for fn in cases.values():
        fn()  # warm-up: numba cache load, first-touch of the outputs

    def clock(fn):
        c0, w0 = time.thread_time(), time.perf_counter()
        fn()
        return time.thread_time() - c0, time.perf_counter() - w0

    out = {k: ([], [], [], [], []) for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            out[name][4].append(probe_once(time.thread_time)[1])
            sc, sw = clock(lambda: np.sum(x))
            kc, kw = clock(fn)
            sc2, sw2 = clock(lambda: np.sum(x))
            # np.sum on both sides of the kernel: a load change mid-round moves both.
            out[name][0].append(min(sc, sc2) / kc)
            out[name][1].append(min(sw, sw2) / kw)
            out[name][2].append(kc)
            out[name][3].append(min(sc, sc2))
    return out


def main(argv=None) -> int:
    import argparse
    import os

    from fastdrift.kernels.native import simd_path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] + " -- same-run ratios to np.sum")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--n", type=int, default=N)
    p.add_argument("-k", nargs="*", default=None, help="only cases whose name contains one of these")
    a = p.parse_args(argv)
    print(f"SIMD path: {simd_path()}   (FASTDRIFT_SIMD={os.environ.get('FASTDRIFT_SIMD', '')!r})   "
          f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    res = ratios(a.repeats, a.n, a.k)
    floor = min((p for r in res.values() for p in r[4]), default=math.nan)
    print(f"{'kernel':<36} {'cpu min':>8} {'cpu med':>8} {'wall min':>9} {'wall med':>9}   (x np.sum, "
          f"{a.repeats} rounds, {a.n:.0e} float64)   ns/value: kernel, np.sum (cpu medians)   "
          f"full speed: rounds, cpu med")
    sums, probes = [], []
    for name, (cpu, wall, kc, sc, pc) in res.items():
        sums += sc
        probes += pc
        full = [r for r, p in zip(cpu, pc) if p <= FULL_SPEED * floor]
        print(f"{name:<36} {min(cpu):>8.2f} {statistics.median(cpu):>8.2f} {min(wall):>9.2f} "
              f"{statistics.median(wall):>9.2f}   {statistics.median(kc) / a.n * 1e9:6.2f} "
              f"{statistics.median(sc) / a.n * 1e9:6.2f}   {len(full):>4} "
              + (f"{statistics.median(full):>5.2f}" if full else "    -"))
    if sums:  # the reference itself moves with the machine's memory traffic (docs/performance.md)
        print(f"np.sum: {a.n / statistics.median(sums) / 1e9:.2f}G values/s (cpu median of every round)")
        slow = sum(p > FULL_SPEED * floor for p in probes)
        print(f"compute probe before each round: fastest {floor * 1e3:.2f} ms, median "
              f"{statistics.median(probes) * 1e3:.2f} ms; {slow} of {len(probes)} rounds beyond "
              f"{FULL_SPEED}x the fastest (the host slowed this core: not counted as full speed)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
