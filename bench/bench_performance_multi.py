"""Multiclass and regression performance sketches: update throughput against scikit-learn.

Run: ``pytest bench/bench_performance_multi.py -p no:cacheprovider`` (or ``python bench/run.py``)

1 million rows.  Multiclass: 10 classes as int64 and as strings; ``MulticlassPerformance.update``
(plus reading every metric) against scikit-learn's ``confusion_matrix`` and
``precision_recall_fscore_support`` on the same rows (the peer, ``role="peer"``).  Regression:
float64 predictions and actuals, unweighted and weighted; ``RegressionPerformance.update`` plus
``metrics()`` against scikit-learn's ``mean_absolute_error``, ``mean_squared_error``,
``mean_absolute_percentage_error`` and ``r2_score`` (the peer).  ``np.sum`` over a float64 array
of the same length is the one-pass reference.  Every test records ``n`` (rows) in
``extra_info``; ``python bench/run.py`` prints rows/s and the ratios to the peer and np.sum.
"""
import numpy as np
import pyarrow as pa
import pytest

import fastdrift

N = 1_000_000
ROUNDS = dict(rounds=5, iterations=1, warmup_rounds=1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(13)
    y = rng.integers(0, 10, N)
    p = np.where(rng.random(N) < 0.7, y, rng.integers(0, 10, N))
    names = np.array([f"class-{i}" for i in range(10)])
    ya = rng.lognormal(1, 1, N)
    return {"int": (p, y), "str": (pa.array(names[p]), pa.array(names[y])),
            "str_numpy": (names[p], names[y]),
            "reg": (ya * rng.lognormal(0, 0.3, N), ya), "w": rng.random(N), "f64": rng.random(N)}


@pytest.mark.parametrize("labels", ["int", "str"])
def test_multiclass_update(benchmark, data, labels):
    p, y = data[labels]

    def go():
        mp = fastdrift.MulticlassPerformance().update(p, y)
        return mp, mp.metrics(), mp.per_class()

    mp, m, _ = benchmark.pedantic(go, **ROUNDS)
    assert mp.labelled == N and 0.7 < m["accuracy"] < 0.8
    benchmark.extra_info.update(n=N)


@pytest.mark.parametrize("labels", ["int", "str"])
def test_multiclass_sklearn(benchmark, data, labels):
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
    p, y = data["int" if labels == "int" else "str_numpy"]

    def go():
        return (confusion_matrix(y, p), accuracy_score(y, p),
                precision_recall_fscore_support(y, p, average=None, zero_division=0))

    benchmark.pedantic(go, **ROUNDS)
    benchmark.extra_info.update(n=N, role="peer")


@pytest.mark.parametrize("weighted", ["unweighted", "weighted"])
def test_regression_update(benchmark, data, weighted):
    p, y = data["reg"]
    w = data["w"] if weighted == "weighted" else None

    def go():
        rp = fastdrift.RegressionPerformance().update(p, y, w)
        return rp, rp.metrics()

    rp, m = benchmark.pedantic(go, **ROUNDS)
    assert rp.labelled == N and m["mae"] > 0
    benchmark.extra_info.update(n=N)


@pytest.mark.parametrize("weighted", ["unweighted", "weighted"])
def test_regression_sklearn(benchmark, data, weighted):
    from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, r2_score
    p, y = data["reg"]
    w = data["w"] if weighted == "weighted" else None

    def go():
        return (mean_absolute_error(y, p, sample_weight=w), mean_squared_error(y, p, sample_weight=w),
                mean_absolute_percentage_error(y, p, sample_weight=w), r2_score(y, p, sample_weight=w))

    benchmark.pedantic(go, **ROUNDS)
    benchmark.extra_info.update(n=N, role="peer")


def test_numpy_sum_float64(benchmark, data):
    benchmark.pedantic(np.sum, args=(data["f64"],), **ROUNDS)
    benchmark.extra_info.update(n=N, role="np.sum")
