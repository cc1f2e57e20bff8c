"""profile() of a 1M-row table (20 float64 + 5 string columns), threads, and cold start."""
import os
import subprocess
import sys
import threading

import numpy as np
import pyarrow as pa
import pytest

import fastdrift

N = 1_000_000


@pytest.fixture(scope="module")
def wide_table():
    rng = np.random.default_rng(0)
    cols = {f"f{i}": rng.normal(i, 1 + i, N) for i in range(20)}
    vocab = np.array([f"category-{i:04d}" for i in range(500)])
    for i in range(5):
        cols[f"s{i}"] = pa.array(vocab[rng.integers(0, 50 * (i + 1), N)])
    return pa.table(cols)


@pytest.mark.benchmark(group="profile-1Mx25")
def test_profile_reference(benchmark, wide_table):
    """Reference profile: derive decile edges from the data, then count."""
    benchmark.extra_info.update(n=wide_table.num_rows * wide_table.num_columns, unit="cells")
    benchmark.pedantic(fastdrift.profile, args=(wide_table,), rounds=3, iterations=1)


@pytest.mark.benchmark(group="profile-1Mx25")
def test_profile_reference_no_tdigest(benchmark, wide_table):
    """Histograms + moments + categories, no quantile sketches (``tdigest=False``)."""
    benchmark.extra_info.update(n=wide_table.num_rows * wide_table.num_columns, unit="cells")
    benchmark.pedantic(fastdrift.profile, args=(wide_table,), kwargs={"tdigest": False}, rounds=3, iterations=1)


@pytest.mark.benchmark(group="profile-1Mx25")
def test_profile_current(benchmark, wide_table):
    """Current profile: bins from a reference, one streaming pass."""
    ref = fastdrift.profile(wide_table)
    benchmark.extra_info.update(n=wide_table.num_rows * wide_table.num_columns, unit="cells")
    benchmark.pedantic(fastdrift.profile, args=(wide_table,), kwargs={"reference": ref}, rounds=3, iterations=1)


@pytest.fixture(scope="module")
def big_pair():
    rng = np.random.default_rng(1)
    return rng.normal(size=10_000_000), rng.normal(size=10_000_000)


def _count(x, edges):
    fastdrift.Histogram(edges).update(x)


@pytest.mark.benchmark(group="threads-2x1e7")
def test_one_thread(benchmark, big_pair):
    edges = np.quantile(big_pair[0][:100_000], np.arange(1, 10) / 10)
    benchmark.extra_info.update(n=2 * big_pair[0].size)

    def run():
        for x in big_pair:
            _count(x, edges)
    benchmark.pedantic(run, rounds=5, iterations=1)


@pytest.mark.benchmark(group="threads-2x1e7")
def test_two_threads(benchmark, big_pair):
    """Two threads, one array each: the GIL is released, so this should take ~half the time."""
    edges = np.quantile(big_pair[0][:100_000], np.arange(1, 10) / 10)
    benchmark.extra_info.update(n=2 * big_pair[0].size)

    def run():
        ts = [threading.Thread(target=_count, args=(x, edges)) for x in big_pair]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    benchmark.pedantic(run, rounds=5, iterations=1)


COLD = ("import time; t = time.perf_counter(); import numpy as np, fastdrift; "
        "fastdrift.Histogram([0.0, 1.0]).update(np.arange(10.0)); print(time.perf_counter() - t)")


@pytest.mark.benchmark(group="cold-start")
def test_import_and_first_update_c(benchmark):
    """`import fastdrift` + the first histogram update in a fresh process, C backend (target <= 0.5 s)."""
    env = dict(os.environ, FASTDRIFT_BACKEND="c")

    def run():
        return float(subprocess.run([sys.executable, "-c", COLD], env=env, check=True,
                                    capture_output=True, text=True).stdout)
    secs = benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info.update(n=1, inner_seconds=secs)
