"""Reference edges are np.quantile's, bit for bit, whatever the data."""
import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastdrift
from fastdrift.adapters import iter_columns
from fastdrift.kernels.quantile import exact_quantiles
from fastdrift.sketches.histogram import reference_edges

DTYPES = ["float64", "float32", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


def _oracle(x: np.ndarray, qs):
    f = x.astype(np.float64)
    f = f[np.isfinite(f)]
    return np.quantile(f, qs)


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from(DTYPES), data=st.data(), qs=st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_exact_quantiles_equal_np_quantile(dtype, data, qs):
    x = data.draw(hnp.arrays(np.dtype(dtype), st.integers(1, 400),
                             elements=hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
                             if dtype.startswith("float") else None))
    f = x.astype(np.float64)
    if not np.isfinite(f).any():
        return
    m = fastdrift.Moments().update(x)
    got = exact_quantiles([v for v in iter_columns(x)], np.array(qs), m.n, m.min, m.max)
    want = _oracle(x, np.array(qs))
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5000), ties=st.integers(1, 50),
       offset=st.integers(0, 13), nulls=st.booleans())
def test_reference_edges_with_ties_nulls_and_offsets(seed, n, ties, offset, nulls):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, ties, n + offset).astype(np.float64) * rng.choice([1.0, 1e-300, 1e300])
    x[rng.random(x.size) < 0.05] = np.nan
    mask = rng.random(x.size) < 0.2 if nulls else None
    arr = pa.array(x, mask=mask).slice(offset)
    chunked = pa.chunked_array([arr.slice(0, n // 3), arr.slice(n // 3)])
    valid = np.asarray(arr.is_valid()) if nulls else np.ones(n, bool)
    f = np.asarray(arr.fill_null(np.nan)) if nulls else x[offset:]
    f = f[valid & np.isfinite(f)]
    if f.size == 0:
        return
    want = np.unique(np.quantile(f, np.arange(1, 10) / 10))
    np.testing.assert_array_equal(reference_edges(chunked), want)
    np.testing.assert_array_equal(reference_edges(arr, bins=20), np.unique(np.quantile(f, np.arange(1, 20) / 20)))


def test_reference_edges_large_skewed(rng):
    x = np.concatenate([rng.lognormal(0, 2, 300_000), np.full(200_000, 7.0), [1e300, -1e300]])
    rng.shuffle(x)
    np.testing.assert_array_equal(reference_edges(x), np.unique(np.quantile(x, np.arange(1, 10) / 10)))
    y = np.array([-1.7e308, 1.7e308, 0.0, 1.0])  # max - min overflows to inf
    np.testing.assert_array_equal(reference_edges(y), np.quantile(y, np.arange(1, 10) / 10))
    np.testing.assert_array_equal(reference_edges(x, bins=100), np.unique(np.quantile(x, np.arange(1, 100) / 100)))
