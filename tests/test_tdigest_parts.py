"""Every segment's t-digest of a column in one kernel call (fd_tdigest_update_parts,
fd_tdigest_flush_parts; TDigest.update_parts / flush_all; update_sketches) against each segment's
stretch inserted on its own and against an unsegmented digest of the segment's rows filtered by
pyarrow: the same state bit for bit (counters, centroids, buffered values) and the same bytes, over
dtypes, nulls, NaN, +-inf, sliced arrays (offsets), chunks, 1-60 segments, empty segments, digests
with values already pending, staged merges, and buffers small enough to flush inside a part."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdrift.adapters.arrow import iter_columns
from fastdrift.errors import InvalidInputError
from fastdrift.kernels import tdigest as K
from fastdrift.kernels.native import FD_OK, column, ffi, lib, ptr
from fastdrift.sketches.segmented import SegmentSplit, update_sketches
from fastdrift.sketches.tdigest import TDigest
from segdata import column as make_column, filtered

NUMERIC = ["float64", "float32", "int8", "int32", "int64", "uint16", "uint64"]
SETTINGS = dict(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["small", "default"])
def buffers(request, monkeypatch):
    """'small': insert buffers of 64 values (compression 20), so parts flush inside the call."""
    if request.param == "small":
        monkeypatch.setattr(K, "BUFFER_MIN", 64)
        monkeypatch.setattr(K, "BUFFER_PER_CENTROID", 1)
    return request.param


def _state(d: TDigest):
    """A digest's whole state, pending values included (to_bytes would flush them first)."""
    s = d._s
    nb, ns = int(s.ints[K.N_BUF]), int(s.ints[K.N_STAGED])
    pend = (s.buf[:nb].tobytes(), s.buf[s.buf.size - 2 * ns:].tobytes()) if s.buf is not None else (b"", b"")
    nc = s.n_centroids
    return s.ints.tobytes(), s.flts.tobytes(), s.means[:nc].tobytes(), s.weights[:nc].tobytes(), pend


def _prior(kind, compression, seed):
    """A digest with state already: nothing, values pending, flushed values, or a staged merge."""
    d = TDigest(compression, name="x")
    rng = np.random.default_rng(seed)
    if kind in ("pending", "flushed", "staged"):
        d.update(pa.array(np.concatenate([rng.normal(0, 5, 40), [np.nan, np.inf]]), pa.float64()))
    if kind == "flushed":
        d.flush()
    if kind == "staged":
        o = TDigest(compression).update(rng.normal(2, 1, 300))
        o.flush()
        d.merge(o)
    return d


cases = st.tuples(st.integers(0, 2**32 - 1), st.sampled_from(NUMERIC), st.integers(0, 4000), st.integers(1, 60),
                  st.sampled_from([0.0, 0.1, 0.9]), st.integers(1, 3), st.integers(0, 9),
                  st.sampled_from(["none", "pending", "flushed", "staged"]), st.booleans())


@settings(**SETTINGS)
@given(case=cases)
def test_update_parts_equals_each_segment_alone(buffers, case):
    seed, dtype, n, n_seg, null_frac, chunks, offset, prior, flush = case
    compression = 20 if buffers == "small" else 100
    arr = make_column(seed, dtype, n, null_frac, chunks, offset, skewed=True)
    codes = np.random.default_rng(seed + 1).integers(0, n_seg, n).astype(np.int32)
    if n_seg > 2:
        codes[codes == 1] = 0  # an empty segment in the middle
    split = SegmentSplit(codes, n_seg)
    whole = split.grouped(arr)
    if whole is None:  # no rows: an array without chunks
        whole = pa.array([], arr.type)
    starts, lens = split.starts.copy(), split.counts.copy()  # every code, empty ones too
    got = [_prior(prior, compression, seed + s) for s in range(n_seg)]
    one_by_one = [_prior(prior, compression, seed + s) for s in range(n_seg)]
    alone = [_prior(prior, compression, seed + s) for s in range(n_seg)]
    TDigest.update_parts(got, whole, starts, lens, flush=flush)
    for s in range(n_seg):
        one_by_one[s].update(whole.slice(int(starts[s]), int(lens[s])))
        alone[s].update(filtered(arr, codes, s))
        if flush:
            one_by_one[s].flush()
            alone[s].flush()
            assert not got[s]._s.pending
            assert got[s]._s.buf is None  # a flushed digest of a part holds no insert buffer
        assert _state(got[s]) == _state(one_by_one[s]) == _state(alone[s]), s
        assert got[s].to_bytes() == alone[s].to_bytes(), s
    assert sum(d.count for d in got) == n + sum(d.count for d in (_prior(prior, compression, seed + s)
                                                                   for s in range(n_seg)))


@settings(**SETTINGS)
@given(case=cases)
def test_update_sketches_flush_equals_update_then_flush(buffers, case):
    seed, dtype, n, n_seg, null_frac, chunks, offset, prior, flush = case
    compression = 20 if buffers == "small" else 100
    arr = make_column(seed, dtype, n, null_frac, chunks, offset, skewed=True)
    codes = np.random.default_rng(seed + 2).integers(0, n_seg, n).astype(np.int32)
    split = SegmentSplit(codes, n_seg)
    per_segment = [[_prior(prior, compression, seed + s), None] for s in split.present]
    update_sketches(per_segment, arr, split, "x", flush=flush)
    for (d, _), s in zip(per_segment, split.present):
        want = _prior(prior, compression, seed + s)
        want.update(filtered(arr, codes, s))
        if flush:
            want.flush()
        assert _state(d) == _state(want), s
        assert d.to_bytes() == want.to_bytes(), s


def test_flush_all_equals_each_flush(buffers):
    rng = np.random.default_rng(5)
    compression = 20 if buffers == "small" else 100
    made = [_prior(k, compression, i) for i, k in enumerate(["none", "pending", "flushed", "staged"] * 3)]
    for i, d in enumerate(made[4:]):
        d.update(rng.normal(i, 3, 100 * i + 1))
    one = [d.copy() for d in made]
    TDigest.flush_all(made)
    for d, o in zip(made, one):
        o.flush()
        assert not d._s.pending and d._s.buf is None
        assert _state(d) == _state(o)


def test_one_kernel_call_per_column(monkeypatch):
    """Many segments' digests never go through their own update or flush."""
    arr = pa.array(np.arange(1000.0))
    split = SegmentSplit((np.arange(1000) % 4).astype(np.int32), 4)
    per_segment = [[TDigest(name="x")] for _ in range(4)]

    def per_segment_call(self, *a):
        raise AssertionError("per-segment call")

    monkeypatch.setattr(TDigest, "update", per_segment_call)
    monkeypatch.setattr(TDigest, "flush", per_segment_call)
    update_sketches(per_segment, arr, split, flush=True)
    assert [d.n for (d,) in per_segment] == [250] * 4
    assert [d.min for (d,) in per_segment] == [0.0, 1.0, 2.0, 3.0]
    assert [float(d.quantile(0.5)) for (d,) in per_segment] == [498.0, 499.0, 500.0, 501.0]


def _call(view, starts, lens, states, flags=0, work=None):
    sc = K.scratch(max(s.cap for s in states), max([states[0].buf_cap] + [s.buf.size for s in states if s.buf is not None]))
    return lib.fd_tdigest_update_parts(column(view), len(states), ptr("const int64_t*", starts),
                                       ptr("const int64_t*", lens), ffi.new("fd_tdigest *[]", [s.struct for s in states]),
                                       sc, flags, ptr("uint64_t*", work) if work is not None else ffi.NULL,
                                       work.size if work is not None else 0)


@pytest.mark.parametrize("starts,lens", [([0, 5], [5, 6]), ([-1], [1]), ([3], [-1]), ([0, 11], [1, 0])])
def test_bad_parts_count_nothing(starts, lens):
    view = next(iter(iter_columns(pa.array(np.arange(10.0)))))
    starts, lens = np.array(starts, np.int64), np.array(lens, np.int64)
    states = [TDigest()._s for _ in starts]
    for s in states:
        s._room(16)
    before = [s.ints.copy() for s in states]
    assert _call(view, starts, lens, states) == lib.FD_EINVAL
    assert all((s.ints == b).all() for s, b in zip(states, before))
    with pytest.raises(InvalidInputError):  # the sketch checks its parts too, before counting
        TDigest.update_parts([TDigest() for _ in starts], pa.array(np.arange(10.0)), starts, lens)


def test_no_buffer_without_flush_is_refused():
    """A digest without a buffer of its own gets no work buffer unless it is flushed in the call."""
    view = next(iter(iter_columns(pa.array(np.arange(10.0)))))
    st0 = TDigest()._s
    one = np.array([0], np.int64), np.array([10], np.int64)
    work = np.empty(st0.buf_cap, np.uint64)
    assert _call(view, *one, [st0], 0, work) == lib.FD_EINVAL
    assert st0.ints.sum() == 0
    assert _call(view, *one, [st0], lib.FD_TD_PARTS_FLUSH, work) == FD_OK
    assert st0.buf is None and int(st0.ints[K.N_FINITE]) == 10 and not st0.pending
    assert _call(view, *one, [TDigest()._s], lib.FD_TD_PARTS_FLUSH, np.empty(0, np.uint64)) == lib.FD_EINVAL


def test_mixed_compressions_keep_their_own_flush_points(monkeypatch):
    """Digests of different buffer sizes in one call: none borrows a buffer of another size."""
    monkeypatch.setattr(K, "BUFFER_MIN", 64)
    monkeypatch.setattr(K, "BUFFER_PER_CENTROID", 1)
    x = np.random.default_rng(3).normal(0, 1, 600)
    arr = pa.array(x)
    starts, lens = np.array([0, 300], np.int64), np.array([300, 300], np.int64)
    got = [TDigest(20), TDigest(200)]
    TDigest.update_parts(got, arr, starts, lens, flush=True)
    for d, s in zip(got, starts):
        want = TDigest(d.compression).update(x[s:s + 300])
        want.flush()
        assert _state(d) == _state(want)
