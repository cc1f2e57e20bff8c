"""Categorical kernel throughput (pytest-benchmark; not part of the test run).

Run: ``pytest bench/bench_categorical.py -p no:cacheprovider``

10 million rows with ~1000 distinct values, as a string column, as a
dictionary-encoded column and as an int64 column; C and numba CatTable
updates against ``pyarrow.compute.value_counts`` and against ``np.sum`` over
a float64 array of the same length (a memory-bandwidth floor).  Each test
records values/s in ``benchmark.extra_info``.

``test_dictionary_batches``: the same rows in batches of 65,536 (153 batches, one
table), as a stream brings them: every batch sharing one dictionary (an Arrow IPC stream, a
pandas categorical: the table remembers it), each batch with its own dictionary in first-use
order (Parquet row groups, ``dictionary_encode``), or its own shuffled dictionary (entries looked
up through their first-use order); per batch, against ``pyarrow.compute.value_counts`` of the
same batches.
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


BATCH = 65_536


@pytest.fixture(scope="module")
def dictionary_batches(data):
    """{layout: list of DictionaryArray batches}: the module's rows over the same strings."""
    rng = np.random.default_rng(7)
    col = data["dictionary"]
    idx = col.indices.to_numpy()
    names = col.dictionary
    out = {"shared": [], "first-use": [], "shuffled": []}
    for a in range(0, N, BATCH):
        ix = idx[a:a + BATCH]
        out["shared"].append(pa.DictionaryArray.from_arrays(pa.array(ix), names))
        out["first-use"].append(pa.array(names.take(pa.array(ix)).to_numpy(zero_copy_only=False)).dictionary_encode())
        perm = rng.permutation(len(names))
        inv = np.argsort(perm).astype(np.int32)
        out["shuffled"].append(pa.DictionaryArray.from_arrays(pa.array(inv[ix]), names.take(pa.array(perm))))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["shared", "first-use", "shuffled"])
def test_dictionary_batches(benchmark, dictionary_batches, layout, backend):
    batches = dictionary_batches[layout]
    CAT[backend](CatTable("str"), batches[0].slice(0, 1000))  # the JIT warm

    def go():
        t = CatTable("str")
        for b in batches:
            t.update(b, backend=backend)
        return t

    t = benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
    assert t.total == N and t.n_ids == DISTINCT
    _record(benchmark, f"CatTable dictionary batches of {BATCH:,} rows, {layout} dictionaries, {backend}")
    benchmark.extra_info["us_per_batch"] = benchmark.stats.stats.min / len(batches) * 1e6


@pytest.mark.parametrize("layout", ["shared", "first-use", "shuffled"])
def test_pyarrow_value_counts_batches(benchmark, dictionary_batches, layout):
    batches = dictionary_batches[layout]
    benchmark.pedantic(lambda: [pc.value_counts(b) for b in batches], rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, f"pyarrow.compute.value_counts per batch, {layout} dictionaries")
    benchmark.extra_info["us_per_batch"] = benchmark.stats.stats.min / len(batches) * 1e6
