"""BinaryPerformance.update on 1e7 rows (float64 scores + int8/bool labels) against
scikit-learn's ``roc_auc_score`` on the same rows (``role="peer"``) and ``np.sum`` over the
same scores (the one-pass reference), in the same run; and the metrics from a state.

Run with ``pytest bench/bench_performance.py --benchmark-only`` (or ``python bench/run.py
bench/bench_performance.py``).  Each update case records ``values_per_s`` (rows/s, wall clock,
best round), ``cpu_values_per_s`` (rows per second of this thread's CPU time: the per-core rate
on a shared machine) and the same-run ratios ``x_roc_auc_score`` and ``x_np_sum`` (their time
over ours).  Targets: >= 1e8 rows/s/core, >= 20x roc_auc_score, metrics <= 1 ms.
"""
import time

import numpy as np
import pytest

import fastdrift

sklearn_metrics = pytest.importorskip("sklearn.metrics")

N = 10_000_000
_BEST = {}  # baseline name -> best seconds, for the same-run ratios


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    y = (rng.random(N) < 0.3).astype(np.int8)
    margin = rng.normal(0, 1.5, N) + 1.2 * y
    return 1.0 / (1.0 + np.exp(-margin)), y, margin, rng.exponential(1.0, N)


def _cpu_rate(fn, rounds=3):
    best = np.inf
    for _ in range(rounds):
        t = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t)
    return N / best


def _record(benchmark, cpu_rate=None):
    t = benchmark.stats.stats.min
    benchmark.extra_info["n"] = N
    benchmark.extra_info["values_per_s"] = N / t
    if cpu_rate is not None:
        benchmark.extra_info["cpu_values_per_s"] = cpu_rate
    for name, base in _BEST.items():
        benchmark.extra_info[f"x_{name}"] = base / t
    return t


@pytest.mark.benchmark(group="binary-performance-1e7")
def test_roc_auc_score_sklearn(benchmark, rows):
    s, y, _, _ = rows
    benchmark.extra_info["role"] = "peer"
    benchmark.pedantic(sklearn_metrics.roc_auc_score, args=(y, s), rounds=2, iterations=1)
    _BEST["roc_auc_score"] = _record(benchmark)


@pytest.mark.benchmark(group="binary-performance-1e7")
def test_np_sum(benchmark, rows):
    s = rows[0]
    benchmark.extra_info["role"] = "np.sum"
    benchmark(np.sum, s)
    _BEST["np_sum"] = _record(benchmark)


@pytest.mark.benchmark(group="binary-performance-1e7")
@pytest.mark.parametrize("case", ["int8", "bool", "unlabelled", "margin", "weighted"])
def test_update(benchmark, rows, case):
    """A sketch past its exact table (the steady state of a window), one batch of 1e7 rows."""
    s, y, margin, w = rows
    args = {"int8": (s, y), "bool": (s, y.astype(bool)), "unlabelled": (s,), "margin": (margin, y),
            "weighted": (s, y, w)}[case]
    p = fastdrift.BinaryPerformance(scores="margin" if case == "margin" else "probability")
    p.update(*args)
    assert not p.is_exact
    benchmark(p.update, *args)
    _record(benchmark, _cpu_rate(lambda: p.update(*args)))


@pytest.mark.benchmark(group="binary-performance-1e7")
def test_update_fresh_sketch(benchmark, rows):
    """A new sketch each call: includes the fold of the exact table into bins."""
    s, y, _, _ = rows
    benchmark.pedantic(lambda: fastdrift.BinaryPerformance().update(s, y), rounds=3, iterations=1)
    _record(benchmark)


@pytest.mark.benchmark(group="binary-performance-metrics")
@pytest.mark.parametrize("scores", ["probability", "margin"])
def test_metrics(benchmark, rows, scores):
    """Every metric of a binned state (all bins occupied by 1e7 rows)."""
    s, y, margin, _ = rows
    p = fastdrift.BinaryPerformance(scores=scores).update(margin if scores == "margin" else s, y)
    out = benchmark(p.metrics)
    assert 0.5 < out["roc_auc"] < 1
    benchmark.extra_info["ms"] = benchmark.stats.stats.min * 1e3
