"""Sketch-level behaviour of Histogram, Moments and Categorical against numpy / pyarrow oracles."""
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import fastdrift
from fastdrift import IncompatibleSketchError, InvalidInputError, SchemaError


# -- Histogram ---------------------------------------------------------------

def test_histogram_bins_match_searchsorted(rng):
    x = rng.normal(size=10_000)
    x[::97] = np.nan
    x[5], x[6] = np.inf, -np.inf
    edges = np.array([-1.0, -0.25, 0.0, 0.3, 2.0])
    x[7:12] = edges  # values equal to edges go right ([a, b))
    h = fastdrift.Histogram(edges).update(x)
    finite_or_inf = x[~np.isnan(x)]
    want = np.bincount(np.searchsorted(edges, finite_or_inf, side="right"), minlength=len(edges) + 1)
    assert h.counts.tolist() == want.tolist()
    assert h.nan_count == int(np.isnan(x).sum())
    assert h.counts[0] >= 1 and h.counts[-1] >= 1  # -inf and +inf in the outer bins
    assert h.count == x.size


def test_histogram_from_reference_is_np_quantile_deciles(rng):
    x = rng.lognormal(0, 1, 5001)
    h = fastdrift.Histogram.from_reference(x)
    np.testing.assert_array_equal(h.edges, np.quantile(x, np.arange(1, 10) / 10))
    assert h.counts.size == 10 and h.count == x.size
    # deciles of the reference itself: ~10% in each bin
    assert np.all(np.abs(h.counts / x.size - 0.1) < 0.002)


def test_histogram_from_reference_ties_and_constants():
    x = np.array([1.0] * 50 + [2.0] * 50)
    h = fastdrift.Histogram.from_reference(x)
    assert h.edges.tolist() == [1.0, 1.5, 2.0]  # deciles [1,1,1,1,1.5,2,2,2,2] collapsed
    assert h.counts.tolist() == [0, 50, 0, 50]
    c = fastdrift.Histogram.from_reference(np.full(100, 3.5))
    assert c.edges.tolist() == [3.5]
    assert c.counts.tolist() == [0, 100]
    u = fastdrift.Histogram.from_reference(np.arange(11.0), bins=5, strategy="uniform")
    np.testing.assert_allclose(u.edges, [2.0, 4.0, 6.0, 8.0])


def test_histogram_from_reference_ignores_missing_for_edges():
    x = pa.array([1.0, 2.0, None, np.nan, np.inf, 3.0, 4.0])
    h = fastdrift.Histogram.from_reference(x, bins=4)
    np.testing.assert_array_equal(h.edges, np.quantile([1.0, 2.0, 3.0, 4.0], [0.25, 0.5, 0.75]))
    assert (h.null_count, h.nan_count, h.count) == (1, 1, 7)


@pytest.mark.parametrize("edges, msg", [
    ([], "at least one"), ([1.0, 0.0], "strictly increasing"), ([0.0, 0.0], "strictly increasing"),
    ([0.0, np.nan], "finite"), ([0.0, np.inf], "finite"),
])
def test_histogram_bad_edges(edges, msg):
    with pytest.raises(InvalidInputError, match=msg):
        fastdrift.Histogram(edges)


def test_histogram_bad_reference():
    with pytest.raises(InvalidInputError):
        fastdrift.Histogram.from_reference(np.array([np.nan, np.inf]))
    with pytest.raises(InvalidInputError):
        fastdrift.Histogram.from_reference(np.arange(5.0), bins=1)
    with pytest.raises(InvalidInputError):
        fastdrift.Histogram.from_reference(np.arange(5.0), strategy="magic")


def test_histogram_strings_rejected_with_column_name():
    h = fastdrift.Histogram([0.0], name="income")
    with pytest.raises(SchemaError, match="income"):
        h.update(pa.array(["a"]))
    with pytest.raises(SchemaError, match="income"):
        h.update(np.array(["a", "b"]))


def test_histogram_merge_mismatch_names_both():
    a, b = fastdrift.Histogram([0.0, 1.0]), fastdrift.Histogram([0.0, 2.0])
    with pytest.raises(IncompatibleSketchError, match=r"\[0, 1\] vs \[0, 2\]"):
        a.merge(b)


def test_histogram_numpy_strided_input(rng):
    x = rng.normal(size=1000)
    h = fastdrift.Histogram([0.0]).update(x[::3])
    assert h.counts.tolist() == [int((x[::3] < 0).sum()), int((x[::3] >= 0).sum())]


def test_histogram_all_null_and_empty():
    h = fastdrift.Histogram([0.0]).update(pa.nulls(5)).update(pa.array([], pa.float64())).update(np.zeros(0))
    assert (h.count, h.null_count) == (5, 5)


# -- Moments -------------------------------------------------------------------

def test_moments_match_numpy(rng):
    x = rng.normal(1e6, 3.0, 100_001)  # far from zero: a naive sum-of-squares loses digits here
    x[::1000] = np.nan
    x[1] = np.inf
    x[2] = -np.inf
    arr = pa.array(x, mask=np.arange(x.size) % 777 == 0)
    m = fastdrift.Moments().update(arr)
    valid = ~(np.arange(x.size) % 777 == 0)
    v = x[valid]
    f = v[np.isfinite(v)]
    assert m.n == f.size
    assert m.null_count == int((~valid).sum())
    assert m.nan_count == int(np.isnan(v).sum())
    assert (m.posinf_count, m.neginf_count) == (1, 1)
    assert m.min == f.min() and m.max == f.max()
    assert m.mean == pytest.approx(f.mean(), rel=1e-13)
    assert m.variance() == pytest.approx(f.var(), rel=1e-9)
    assert m.variance(1) == pytest.approx(f.var(ddof=1), rel=1e-9)
    assert m.sum == pytest.approx(math.fsum(f), rel=1e-12)


def test_moments_all_negative_and_empty():
    m = fastdrift.Moments().update(np.array([-5.0, -3.0]))
    assert (m.min, m.max, m.mean) == (-5.0, -3.0, -4.0)
    e = fastdrift.Moments()
    assert all(math.isnan(v) for v in (e.min, e.max, e.mean, e.variance()))
    e.update(np.array([np.nan]))
    assert e.nan_count == 1 and math.isnan(e.mean)


def test_moments_integer_columns():
    x = np.array([-(2**40), 7, 2**40 + 1], dtype=np.int64)
    m = fastdrift.Moments().update(x)
    assert (m.min, m.max) == (float(-(2**40)), float(2**40 + 1))
    assert m.mean == pytest.approx(8 / 3)


# -- Categorical ------------------------------------------------------------------

def test_categorical_strings_match_value_counts(rng):
    vocab = np.array([f"v{i}" for i in range(50)])
    arr = pa.array(vocab[rng.integers(0, 50, 5000)], mask=rng.random(5000) < 0.1)
    c = fastdrift.Categorical().update(arr)
    want = {d["values"]: d["counts"] for d in pc.value_counts(arr).to_pylist() if d["values"] is not None}
    assert c.to_dict() == want
    assert c.null_count == arr.null_count
    assert c.other_count == 0


def test_categorical_cap_counts_other():
    arr = pa.array([str(i % 30) for i in range(300)])
    c = fastdrift.Categorical(max_categories=10).update(arr)
    assert len(c.categories) == 10
    assert c.categories == [str(i) for i in range(10)]  # first arrivals
    assert c.other_count == 200 and c.count == 300


def test_categorical_dictionary_chunks_align(rng):
    a = pa.array(["x", "y", "x", None]).dictionary_encode()
    b = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1, 2], pa.int8()), pa.array(["z", "x", "unused"]))
    c = fastdrift.Categorical().update(a).update(b)
    assert c.to_dict() == {"x": 4, "y": 1, "z": 1, "unused": 1}
    assert c.null_count == 1
    # a dictionary entry no index points at is not a category
    d = pa.DictionaryArray.from_arrays(pa.array([1, 1], pa.int32()), pa.array(["never", "w"]))
    assert fastdrift.Categorical().update(d).to_dict() == {"w": 2}
    # chunks with different dictionaries of one ChunkedArray
    e = pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()), pa.array(["w", "q"]))
    ch = pa.chunked_array([d, e])
    assert fastdrift.Categorical().update(ch).to_dict() == {"w": 4}


@pytest.mark.parametrize("index_type", [pa.int8(), pa.int16(), pa.int32(), pa.int64(),
                                        pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()])
@pytest.mark.parametrize("cap", [4, 1000])
def test_categorical_dictionary_equals_decoded_strings(rng, backend, index_type, cap):
    # Categories in the same order with the same counts as the decoded column: unused and
    # repeated dictionary values, nulls in the indices and in the dictionary, sliced batches.
    words = [f"w{i}" for i in range(40)]
    words[7] = words[3]
    words[11] = None
    dictionary = pa.array(words)
    got, want = fastdrift.Categorical(cap), fastdrift.Categorical(cap)
    for _ in range(6):
        n = int(rng.integers(0, 3000))
        hi = int(rng.integers(1, 41))
        idx = rng.integers(int(rng.integers(0, hi)), hi, n)
        null = rng.random(n) < rng.choice([0.0, 0.05, 0.9])
        arr = pa.DictionaryArray.from_arrays(pa.array(idx, index_type, mask=null), dictionary)
        lo = int(rng.integers(0, 20))
        for batch in (arr.slice(lo), pa.chunked_array([arr[:lo], arr[lo:]])):
            got.update(batch)
            want.update(batch.cast(pa.string()))
            assert got.categories == want.categories
            assert got.counts.tolist() == want.counts.tolist()
            assert (got.other_count, got.null_count, got.count) == (want.other_count, want.null_count,
                                                                    want.count)
    assert got.count > 0 and len(got.categories) >= min(cap, 4)


def test_categorical_bool_and_int():
    b = fastdrift.Categorical().update(pa.array([True, False, True, None]))
    assert b.to_dict() == {True: 2, False: 1} and b.null_count == 1 and b.key_type == "bool"
    i = fastdrift.Categorical().update(np.array([3, 3, -1, 2**62], dtype=np.int64))
    assert i.to_dict() == {3: 2, -1: 1, 2**62: 1}


def test_categorical_type_mismatch():
    c = fastdrift.Categorical(name="country").update(pa.array(["a"]))
    with pytest.raises(SchemaError, match="country"):
        c.update(pa.array([1, 2]))
    with pytest.raises(SchemaError, match="country"):
        c.update(pa.array([1.5]))
    assert c.to_dict() == {"a": 1}


def test_categorical_merge_mismatch():
    with pytest.raises(IncompatibleSketchError, match="10 vs 20"):
        fastdrift.Categorical(10).merge(fastdrift.Categorical(20))
    with pytest.raises(IncompatibleSketchError):
        fastdrift.Categorical().update(pa.array(["a"])).merge(fastdrift.Categorical().update(pa.array([1])))


def test_categorical_bad_params():
    with pytest.raises(InvalidInputError):
        fastdrift.Categorical(0)
    with pytest.raises(InvalidInputError):
        fastdrift.Categorical(key_type="float")
