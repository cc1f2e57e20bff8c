"""Sketch.merge_many (a segmented profile's whole from its segments in one call per sketch) leaves
the state, bytes included, that merging the same sketches one by one in order leaves."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdrift
from fastdrift.errors import CountOverflowError, IncompatibleSketchError
from fastdrift.sketches.categorical import Categorical
from fastdrift.sketches.histogram import Histogram
from fastdrift.sketches.moments import Moments
from fastdrift.sketches.tdigest import TDigest
from mergeparts import numeric_part

_EDGES = np.array([-1.0, 0.0, 0.5, 2.0])


def _make(kind, rng, n, cap):
    if kind == "histogram":
        return Histogram(_EDGES).update(numeric_part(rng, n))
    if kind == "moments":
        return Moments().update(numeric_part(rng, n))
    if kind == "tdigest":
        return TDigest(50).update(numeric_part(rng, n)).flush()
    vocab = np.array([f"k{i}" for i in range(40)], dtype=object)
    vals = vocab[rng.integers(0, rng.integers(1, 41), n)].tolist()
    if rng.random() < 0.3:
        vals = [None if rng.random() < 0.2 else v for v in vals]
    return Categorical(cap).update(pa.array(vals, type=pa.string())) if n else Categorical(cap)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["histogram", "moments", "tdigest", "categorical"]), seed=st.integers(0, 2**32 - 1),
       n_parts=st.integers(1, 12), cap=st.integers(1, 30), start_empty=st.booleans())
def test_merge_many_equals_pairwise_merges(kind, seed, n_parts, cap, start_empty):
    rng = np.random.default_rng(seed)
    into = _make(kind, rng, 0 if start_empty else int(rng.integers(1, 300)), cap)
    parts = [_make(kind, rng, int(rng.integers(0, 300)), cap) for _ in range(n_parts)]
    before = [p.to_bytes() for p in parts]
    pairwise = into.copy()
    for p in parts:
        pairwise.merge(p)
    many = into.copy().merge_many(parts)
    assert many.to_bytes() == pairwise.to_bytes()
    assert many.count == pairwise.count == into.count + sum(p.count for p in parts)
    assert [p.to_bytes() for p in parts] == before  # the merged sketches are not modified


def test_moments_merge_many_is_bit_exact_against_numpy():
    rng = np.random.default_rng(3)
    chunks = [rng.normal(1e6, 1e-3 + i, 100 + 37 * i) for i in range(20)]
    m = Moments().merge_many([Moments().update(c) for c in chunks])
    pair = Moments()
    for c in chunks:
        pair.merge(Moments().update(c))
    assert m.to_bytes() == pair.to_bytes()
    allv = np.concatenate(chunks)
    assert m.n == allv.size and m.min == allv.min() and m.max == allv.max()
    assert m.mean == pytest.approx(allv.mean(), rel=1e-12)
    assert m.variance() == pytest.approx(allv.var(), rel=1e-9)


def test_merge_many_checks_all_before_merging():
    h = Histogram(_EDGES).update(np.arange(5.0))
    before = h.to_bytes()
    with pytest.raises(IncompatibleSketchError):
        h.merge_many([Histogram(_EDGES).update(np.ones(3)), Histogram(np.array([0.0, 1.0])).update(np.ones(3))])
    assert h.to_bytes() == before
    with pytest.raises(IncompatibleSketchError):
        h.merge_many([Histogram(_EDGES), Moments()])
    assert h.to_bytes() == before
    c = Categorical(10).update(pa.array(["a", "b"]))
    before = c.to_bytes()
    with pytest.raises(IncompatibleSketchError):
        c.merge_many([Categorical(10).update(pa.array(["c"])), Categorical(11)])
    assert c.to_bytes() == before


def test_merge_many_count_overflow_merges_nothing(monkeypatch):
    m = Moments().update(np.ones(4))
    monkeypatch.setattr(Moments, "MAX_COUNT", 10)
    before = m.to_bytes()
    with pytest.raises(CountOverflowError):
        m.merge_many([Moments().update(np.ones(4)), Moments().update(np.ones(4))])
    assert m.to_bytes() == before


def test_merge_many_of_itself_merges_a_copy():
    h = Histogram(_EDGES).update(np.array([0.2, 1.0]))
    h.merge_many([h, h])
    assert h.counts.tolist() == [0, 0, 3, 3, 0]


def test_segmented_profile_whole_takes_one_merge_many_per_sketch(monkeypatch):
    from fastdrift.sketches.base import Sketch
    rng = np.random.default_rng(0)

    t = pa.table({"x": rng.normal(0, 1, 5000), "s": pa.array(rng.choice(["a", "b", "c"], 5000)),
                  "seg": pa.array(rng.choice([f"g{i}" for i in range(8)], 5000))})
    ref = fastdrift.profile(t, segment_by=["seg"])
    calls = []
    orig = Sketch.merge_many
    monkeypatch.setattr(Sketch, "merge_many", lambda self, others: calls.append(len(others)) or orig(self, others))
    monkeypatch.setattr(Sketch, "merge", lambda self, other: pytest.fail("a pairwise merge of the whole"))
    cur = fastdrift.profile(t, reference=ref)
    assert calls == [8] * len(calls) and len(calls) == sum(len(c.sketches()) for c in cur.columns.values())


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300))
@settings(max_examples=30, deadline=None)
def test_histogram_empty_like_is_a_fresh_histogram_on_the_same_edges(seed, n):
    """empty_like (the blank each segment starts from) counts as Histogram(edges) does, shares the
    edges' lookup tables, and leaves the original's counts alone."""
    rng = np.random.default_rng(seed)
    edges = np.unique(rng.normal(0, 3, rng.integers(1, 12)))
    h = fastdrift.Histogram(edges).update(rng.normal(0, 3, 50))
    before = h.to_bytes()
    x = pa.array(rng.normal(0, 4, n), mask=rng.random(n) < 0.1)
    e = h.empty_like()
    assert e.count == 0 and e.edges is h.edges
    assert e.update(x).to_bytes() == fastdrift.Histogram(edges).update(x).to_bytes()
    assert h.to_bytes() == before
    h.merge(e)  # same edges object: merged as any other
    assert h.count == 50 + n


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), n_words=st.sampled_from([1, 5, 300]),
       cap=st.sampled_from([3, 10_000]))
@settings(max_examples=40, deadline=None)
def test_a_segments_categories_copied_from_the_batch_table_count_as_hashed(seed, n, n_words, cap):
    """Categorical.update_first_counts with the batch's table (keys' bytes and hashes copied,
    CatTable.add_keys_of) against the same without it and against update of the rows: equal
    bytes, and the tables keep counting alike afterwards (the copied hashes index the keys)."""
    from fastdrift.kernels.cat import CatTable

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" * (i % 4) for i in range(n_words)])
    arr = pa.array(words[rng.integers(0, n_words, n)], mask=rng.random(n) < 0.1)
    batch = CatTable("str", max_ids=max(n, 1))
    ids = batch.lookup(arr)
    keys = batch.keys_array()
    counts = np.bincount(ids[ids >= 0], minlength=batch.n_ids).astype(np.int64)
    first = np.array([np.flatnonzero(ids == x)[0] for x in range(batch.n_ids)], dtype=np.int64)
    n_null = int((ids < 0).sum())
    fast = Categorical(cap).update_first_counts(arr.type, n, keys, counts, first, n_null, source=batch)
    slow = Categorical(cap).update_first_counts(arr.type, n, keys, counts, first, n_null)
    want = Categorical(cap).update(arr)
    assert fast.to_bytes() == slow.to_bytes() == want.to_bytes()
    more = pa.array(words[rng.integers(0, n_words, 200)].tolist() + ["new", "w1"])
    assert fast.update(more).to_bytes() == slow.update(more).to_bytes() == want.update(more).to_bytes()
    assert fast.merge(slow).to_bytes() == want.merge(want.copy()).to_bytes()
    t = CatTable("str", 10)
    t.update(pa.array(["x"]))
    assert t.add_keys_of(batch, np.zeros(0, np.int64), np.zeros(0, np.int64), 0, "string") is False  # holds a key
