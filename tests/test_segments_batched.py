"""Every segment's histogram and moments of a column in one kernel call (fd_seg_hist_update,
fd_seg_moments_update and their numba twins, Histogram/Moments.update_parts, update_sketches)
against each segment's rows filtered by pyarrow and counted alone: equal bytes over dtypes, nulls,
NaN, +-inf, sliced arrays (offsets), chunks, empty segments, one and many segments; bad parts
raise with nothing counted."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdrift
from fastdrift.adapters.arrow import iter_columns
from fastdrift.errors import InvalidInputError
from fastdrift.kernels import seg as K
from fastdrift.kernels.hist import hist_update, make_index
from fastdrift.kernels.moments import empty_moments, moments_update
from fastdrift.sketches.histogram import Histogram
from fastdrift.sketches.moments import Moments
from fastdrift.sketches.segmented import SegmentSplit, update_sketches
from fastdrift.sketches.tdigest import TDigest
from segdata import column as make_column, filtered

NUMERIC = ["float64", "float32", "int8", "int32", "int64", "uint16", "uint64"]
SETTINGS = dict(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
EDGES = {"uniform": np.linspace(-150, 150, 31), "table": np.array([-1e3, -50, -3, 0, 0.5, 2, 7, 100, 1e4])}


@pytest.fixture(params=["c", "numba"])
def backend(request):
    fastdrift.kernels.set_backend(request.param)
    yield request.param
    fastdrift.kernels.set_backend(None)


cases = st.tuples(st.integers(0, 2**32 - 1), st.sampled_from(NUMERIC), st.integers(0, 3000), st.integers(1, 7),
                  st.sampled_from([0.0, 0.1, 0.9]), st.integers(1, 3), st.integers(0, 9),
                  st.sampled_from(sorted(EDGES)))


@settings(**SETTINGS)
@given(case=cases)
def test_kernels_equal_each_segment_alone(backend, case):
    seed, dtype, n, n_seg, null_frac, chunks, offset, edges = case
    arr = make_column(seed, dtype, n, null_frac, chunks, offset)
    rng = np.random.default_rng(seed + 1)
    codes = rng.integers(0, n_seg, n).astype(np.int32)
    codes[codes == n_seg - 1] = 0 if n_seg > 1 else codes[codes == n_seg - 1]  # the last segment empty
    split = SegmentSplit(codes, n_seg)
    whole = split.grouped(arr)  # None for a column without chunks (no rows)
    assert (whole is None and n == 0) or len(whole) == n
    view = next(iter(iter_columns(whole))) if whole is not None else None
    starts, lens = split.starts.copy(), split.counts.copy()  # every code, empty ones too
    index = make_index(EDGES[edges])
    counts = np.zeros((n_seg, index.n_edges + 1), np.int64)
    specials = np.zeros((n_seg, 2), np.int64)
    ints = np.stack([empty_moments()[0] for _ in range(n_seg)])
    flts = np.stack([empty_moments()[1] for _ in range(n_seg)])
    if view is not None:
        K.hist_update_parts(view, index, starts, lens, counts, specials)
        K.moments_update_parts(view, starts, lens, ints, flts)
    for s in range(n_seg):
        c1, sp1 = np.zeros(index.n_edges + 1, np.int64), np.zeros(2, np.int64)
        i1, f1 = empty_moments()
        for v in iter_columns(filtered(arr, codes, s)):
            hist_update(v, index, c1, sp1)
            moments_update(v, i1, f1)
        assert counts[s].tobytes() == c1.tobytes() and specials[s].tobytes() == sp1.tobytes(), (s, counts[s], c1)
        assert ints[s].tobytes() == i1.tobytes() and flts[s].tobytes() == f1.tobytes(), (s, flts[s], f1)
    assert counts.sum() + specials.sum() == n


@settings(**SETTINGS)
@given(case=cases)
def test_update_sketches_equals_each_segment_alone(backend, case):
    seed, dtype, n, n_seg, null_frac, chunks, offset, edges = case
    arr = make_column(seed, dtype, n, null_frac, chunks, offset)
    codes = np.random.default_rng(seed + 2).integers(0, n_seg, n).astype(np.int32)
    split = SegmentSplit(codes, n_seg)
    h0 = Histogram(EDGES[edges], name="x")
    per_segment = [[h0.copy(), Moments(name="x"), TDigest(50, name="x"), None] for _ in split.present]
    for sks in per_segment:  # state already counted is kept
        for sk in sks[:3]:
            sk.update(pa.array([1.0, np.nan, None], pa.float64()))
    update_sketches(per_segment, arr, split, "x")
    for sks, s in zip(per_segment, split.present):
        alone = [h0.copy(), Moments(name="x"), TDigest(50, name="x")]
        for sk in alone:
            sk.update(pa.array([1.0, np.nan, None], pa.float64()))
            sk.update(filtered(arr, codes, s))
        for got, want in zip(sks, alone):
            assert got.to_bytes() == want.to_bytes(), (type(got).__name__, s)


def test_update_sketches_one_call_per_column(monkeypatch):
    """Histograms and moments of many segments never go through their per-segment update."""
    arr = pa.array(np.arange(100.0))
    codes = (np.arange(100) % 4).astype(np.int32)
    split = SegmentSplit(codes, 4)
    per_segment = [[Histogram([10.0, 50.0]), Moments()] for _ in range(4)]

    def per_segment_update(self, values):
        raise AssertionError("per-segment update")

    monkeypatch.setattr(Histogram, "update", per_segment_update)
    monkeypatch.setattr(Moments, "update", per_segment_update)
    update_sketches(per_segment, arr, split)
    assert [h.count for h, _ in per_segment] == [25] * 4
    assert [m.n for _, m in per_segment] == [25] * 4
    assert [m.max for _, m in per_segment] == [96.0, 97.0, 98.0, 99.0]


@pytest.mark.parametrize("starts,lens", [([0, 5], [5, 6]), ([-1], [1]), ([3], [-1]), ([0, 0], [1])])
def test_bad_parts_raise_and_count_nothing(backend, starts, lens):
    view = next(iter(iter_columns(pa.array(np.arange(10.0)))))
    starts, lens = np.array(starts, np.int64), np.array(lens, np.int64)
    index = make_index(np.array([2.0, 5.0]))
    k = max(starts.size, lens.size)
    counts, specials = np.zeros((k, 3), np.int64), np.zeros((k, 2), np.int64)
    ints, flts = np.zeros((k, 5), np.int64), np.zeros((k, 5), np.float64)
    with pytest.raises(InvalidInputError):
        K.hist_update_parts(view, index, starts, lens, counts, specials)
    with pytest.raises(InvalidInputError):
        K.moments_update_parts(view, starts, lens, ints, flts)
    assert not counts.any() and not specials.any() and not ints.any() and not flts.any()


def test_sketch_update_parts_bad_part_keeps_state():
    hs = [Histogram([0.0, 1.0]) for _ in range(2)]
    ms = [Moments() for _ in range(2)]
    for sk in hs + ms:
        sk.update(pa.array([0.5]))
    before = [sk.to_bytes() for sk in hs + ms]
    arr = pa.array(np.arange(4.0))
    bad_starts, lens = np.array([0, 3], np.int64), np.array([2, 2], np.int64)
    with pytest.raises(InvalidInputError):
        Histogram.update_parts(hs, arr, bad_starts, lens)
    with pytest.raises(InvalidInputError):
        Moments.update_parts(ms, arr, bad_starts, lens)
    assert [sk.to_bytes() for sk in hs + ms] == before


def test_in_memory_reference_keys_rows_once_and_gathers_into_one_buffer(monkeypatch):
    """A segmented reference of a table in memory: one segment keying of the rows and one set of
    grouped places, shared by the first pass and the histogram pass; each numeric column gathered
    once per pass, into one scratch buffer (the same memory every time); the segments' t-digests
    go through one kernel call per column (none through their own update), and every segment is
    still the profile of its rows alone."""
    from fastdrift.adapters.segments import Segmenter
    from fastdrift.sketches import segmented

    rng = np.random.default_rng(9)
    n = 5000
    table = pa.table({"a": rng.normal(0, 1, n), "b": rng.integers(0, 50, n), "c": rng.exponential(2, n),
                      "s": pa.array(np.array(["x", "y", "z"])[rng.integers(0, 3, n)])})
    calls = {"assign": 0, "scatter": 0, "positions": 0}
    outs = set()
    assign, scatter, positions = Segmenter.assign, segmented.scatter_to, segmented.positions

    def counting_assign(self, batch):
        calls["assign"] += 1
        return assign(self, batch)

    def counting_scatter(*a, **k):
        calls["scatter"] += 1
        outs.add(a[2].__array_interface__["data"][0])
        return scatter(*a, **k)

    def counting_positions(*a, **k):
        calls["positions"] += 1
        return positions(*a, **k)

    def no_update(self, values):
        raise AssertionError("per-segment t-digest update")

    monkeypatch.setattr(Segmenter, "assign", counting_assign)
    monkeypatch.setattr(segmented, "scatter_to", counting_scatter)
    monkeypatch.setattr(segmented, "positions", counting_positions)
    monkeypatch.setattr(TDigest, "_update", no_update)
    prof = fastdrift.profile(table, segment_by=["s"])
    assert calls == {"assign": 1, "scatter": 6, "positions": 1} and len(outs) == 1
    monkeypatch.undo()
    for key, seg in prof.segments.items():
        rows = table.filter(pc.equal(table["s"], key.split("=", 1)[1])).drop(["s"])
        alone = fastdrift.profile(rows)
        for name in ("a", "b", "c"):
            assert seg.columns[name].tdigest.to_bytes() == alone.columns[name].tdigest.to_bytes(), (key, name)
            assert seg.columns[name].moments.to_bytes() == alone.columns[name].moments.to_bytes(), (key, name)
            assert seg.columns[name].histogram.count == alone.columns[name].histogram.count == rows.num_rows


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), n_seg=st.integers(1, 60))
def test_taken_rows_are_each_segments_rows_in_order(seed, n, n_seg):
    """Rows taken per segment (the order by the counting-sort scatter) against numpy's stable
    argsort and pyarrow's filter: every segment's rows, in their order, nulls kept."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_seg, n).astype(np.int32)
    arr = pa.array(rng.normal(0, 1, n), mask=rng.random(n) < 0.1)
    split = SegmentSplit(codes, n_seg)
    got = split.taken(pa.chunked_array([arr]))
    assert pc.take(arr, pa.array(np.argsort(codes, kind="stable"))).equals(
        pa.concat_arrays(got) if len(got) > 1 else got[0]) if n else True
    batch = pa.record_batch([arr, pa.array(np.arange(n))], names=["x", "i"])
    parts = split.batches(batch)
    assert len(parts) == len(split.present)
    for part, s in zip(parts, split.present):
        assert part.equals(batch.filter(pa.array(codes == s))), s
