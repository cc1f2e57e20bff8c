"""Categorical kernel throughput (pytest-benchmark; not part of the test run).

Run: ``pytest bench/bench_categorical.py -p no:cacheprovider``

10 million rows with ~1000 distinct values, as a string column, as a
dictionary-encoded column and as an int64 column; C and numba CatTable
updates against ``pyarrow.compute.value_counts`` and against ``np.sum`` over
a float64 array of the same length (a memory-bandwidth floor).  Each test
records values/s in ``benchmark.extra_info``.
"""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fastdrift.kernels.cat import CatTable
from fastdrift.kernels.oracles import KERNELS

N = 10_000_000
DISTINCT = 1000
CAT = KERNELS["categorical"]
# The pure-Python oracle would take minutes on 1e7 rows; pyarrow's
# value_counts below is the peer instead.
BACKENDS = [b for b in CAT if b != "reference"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    idx = rng.integers(0, DISTINCT, N).astype(np.int32)
    # Category names of varied length (4..40 bytes), like real labels.
    names = pa.array([f"cat{i}-" + "x" * (i % 37) for i in range(DISTINCT)])
    dict_col = pa.DictionaryArray.from_arrays(pa.array(idx), names)
    return {
        "string": dict_col.dictionary_decode(),
        "dictionary": dict_col,
        "int64": pa.array(idx.astype(np.int64) * 7_919 + 10**12),
        "float64": rng.random(N),
    }


def _record(benchmark, what):
    best = benchmark.stats.stats.min
    benchmark.extra_info["values_per_s"] = N / best
    benchmark.extra_info["what"] = what


def _run_table(benchmark, col, key_kind, backend):
    # Warm the numba JIT (and its cache) outside the timing.
    CAT[backend](CatTable(key_kind), col.slice(0, 1000))

    def go():
        t = CatTable(key_kind)
        CAT[backend](t, col)
        return t

    t = benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
    assert t.total == N and t.n_ids == DISTINCT
    _record(benchmark, f"CatTable {col.type} {backend}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("column", ["string", "dictionary", "int64"])
def test_cattable(benchmark, data, column, backend):
    _run_table(benchmark, data[column], "int" if column == "int64" else "str", backend)


@pytest.mark.parametrize("column", ["string", "dictionary", "int64"])
def test_pyarrow_value_counts(benchmark, data, column):
    benchmark.pedantic(pc.value_counts, args=(data[column],), rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, f"pyarrow.compute.value_counts {column}")


def test_numpy_sum_float64(benchmark, data):
    benchmark.pedantic(np.sum, args=(data["float64"],), rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, "np.sum float64")
