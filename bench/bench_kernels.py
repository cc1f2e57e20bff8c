"""Throughput of the numeric kernels on 1e7 float64 values (pytest-benchmark).

Run with ``pytest bench/bench_kernels.py --benchmark-only``; not part of the
test run.  ``extra_info["values_per_s"]`` records the throughput of each case;
np.sum / np.histogram / searchsorted+bincount / np.quantile are the baselines.
"""
import numpy as np
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
    benchmark.extra_info["values_per_s"] = N / benchmark.stats.stats.min
    return result


def _edges(x, kind):
    if kind in ("uniform100", "uniform100arith"):
        return np.linspace(-4, 4, 101)
    q = 10 if kind == "quantile10" else 100
    return np.quantile(x, np.linspace(0, 1, q + 1)[1:-1])


@pytest.mark.parametrize("kind", ["uniform100", "uniform100arith", "quantile10", "quantile100"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_hist(benchmark, data, kind, backend):
    """uniform100arith: the arithmetic uniform path, kept measured against the default table path."""
    x, view = data
    index = make_index(_edges(x, kind), arithmetic_uniform=kind.endswith("arith"))
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
