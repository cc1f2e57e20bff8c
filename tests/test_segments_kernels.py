"""The segmented kernels (kernels/fd_seg.c and their numba twins) against rows filtered by numpy,
and each segment's sketches counted from one read of a column against the same sketches updated
with that segment's rows alone (filtered with pyarrow): equal bytes, over dtypes, nulls, NaN,
+-inf, sliced arrays (offsets), chunks, empty inputs, one and many segments; bad codes raise."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdrift
from fastdrift.adapters.arrow import iter_columns
from fastdrift.errors import InvalidInputError
from fastdrift.kernels import seg as K
from fastdrift.kernels.native import FD_EGROW, FD_EINVAL, FD_OK
from fastdrift.sketches.segmented import SegmentSplit, update_sketches

BACKENDS = ["c", "numba"]
NUMERIC = ["float64", "float32", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
SETTINGS = dict(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # the backend is set once


@pytest.fixture(params=BACKENDS)
def backend(request):
    fastdrift.kernels.set_backend(request.param)
    yield request.param
    fastdrift.kernels.set_backend(None)


def _values(rng, dtype, n):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        x = rng.normal(0, 100, n).astype(dt)
        special = rng.random(n)
        x[special < 0.05] = np.nan
        x[(special >= 0.05) & (special < 0.08)] = np.inf
        x[(special >= 0.08) & (special < 0.10)] = -np.inf
        return x
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)


@st.composite
def cases(draw):
    """(array, codes, n_seg): a possibly sliced numeric array with nulls and its rows' codes."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dtype = draw(st.sampled_from(NUMERIC))
    n = draw(st.integers(0, 3000))
    start = draw(st.integers(0, 20))
    null_p = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    total = n + start + draw(st.integers(0, 20))
    mask = rng.random(total) < null_p if null_p else None
    arr = pa.array(_values(rng, dtype, total), mask=mask).slice(start, n)
    n_seg = draw(st.sampled_from([1, 2, 3, 20, 60]))
    used = draw(st.integers(1, n_seg))
    codes = rng.choice(rng.permutation(n_seg)[:used], n).astype(np.int32)
    return arr, codes, n_seg


def _valid(arr):
    return np.ones(len(arr), bool) if arr.null_count == 0 else np.asarray(arr.is_valid())


@given(case=cases())
@settings(**SETTINGS)
def test_scatter_groups_each_segment_in_order(backend, case):
    arr, codes, n_seg = case
    counts = np.bincount(codes, minlength=n_seg)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    views = list(iter_columns(arr))
    dtype = arr.type.to_pandas_dtype()
    out = np.zeros(len(arr), dtype)
    bits = np.zeros((len(arr) + 7) // 8, np.uint8)
    pos = starts.copy()
    for v in views:
        K.scatter(v, codes, n_seg, pos, out, bits)
    assert np.array_equal(pos, starts + counts)
    got_valid = np.unpackbits(bits, bitorder="little")[:len(arr)].astype(bool)
    raw = np.frombuffer(arr.buffers()[1], dtype)[arr.offset:arr.offset + len(arr)] if len(arr) else out[:0]
    valid = _valid(arr)
    for s in range(n_seg):
        rows = codes == s
        a, b = starts[s], starts[s] + counts[s]
        assert np.array_equal(got_valid[a:b], valid[rows])
        assert np.array_equal(out[a:b].view(np.uint8), raw[rows].view(np.uint8))  # bit for bit, NaN too


@given(case=cases())
@settings(**SETTINGS)
def test_positions_and_scatter_to_group_each_segment_in_order(backend, case):
    """Each row's place made once, then every column stored there: numpy's stable sort by code."""
    arr, codes, n_seg = case
    counts = np.bincount(codes, minlength=n_seg)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    pos = starts.copy()
    dest = K.positions(codes, n_seg, pos, len(arr))
    assert np.array_equal(pos, starts + counts)
    order = np.argsort(codes, kind="stable")
    assert np.array_equal(dest[order], np.arange(len(arr)))  # row order[k] goes to place k
    dtype = arr.type.to_pandas_dtype()
    out = np.zeros(len(arr), dtype)
    bits = np.zeros((len(arr) + 7) // 8, np.uint8)
    at = 0
    for v in iter_columns(arr):
        K.scatter_to(v, dest[at:at + v.length], out, bits)
        at += v.length
    raw = np.frombuffer(arr.buffers()[1], dtype)[arr.offset:arr.offset + len(arr)] if len(arr) else out[:0]
    assert np.array_equal(out.view(np.uint8), raw[order].view(np.uint8))  # bit for bit, NaN too
    got_valid = np.unpackbits(bits, bitorder="little")[:len(arr)].astype(bool)
    assert np.array_equal(got_valid, _valid(arr)[order])
    if arr.null_count == 0:  # no bitmap wanted: only the values
        out2 = np.zeros(len(arr), dtype)
        for v in iter_columns(arr):
            K.scatter_to(v, dest, out2, None)
        assert np.array_equal(out2.view(np.uint8), out.view(np.uint8))


def test_positions_and_scatter_to_check_their_input(backend):
    codes = np.array([0, 2, 1, 2], np.int32)
    for bad in (-1, 3):
        c = codes.copy()
        c[2] = bad
        with pytest.raises(InvalidInputError, match="segment code"):
            K.positions(c, 3, np.array([0, 1, 2], np.int64), 4)
    with pytest.raises(InvalidInputError, match="past the end"):
        K.positions(codes, 3, np.array([0, 1, 3], np.int64), 4)  # segment 2's two rows need places 3, 4
    with pytest.raises(InvalidInputError, match="n_out"):
        K.positions(codes, 3, np.zeros(3, np.int64), K.MAX_POSITIONS + 1)
    v = next(iter_columns(pa.array(np.arange(4, dtype=np.int64))))
    with pytest.raises(InvalidInputError, match="past the end"):
        K.scatter_to(v, np.array([0, 1, 4, 2], np.int32), np.zeros(4, np.int64), None)
    with pytest.raises(InvalidInputError, match="past the end"):
        K.scatter_to(v, np.array([0, -1, 3, 2], np.int32), np.zeros(4, np.int64), None)
    with pytest.raises(InvalidInputError, match="dest"):
        K.scatter_to(v, np.array([0, 1, 2], np.int32), np.zeros(4, np.int64), None)
    with pytest.raises(InvalidInputError, match="width"):
        K.scatter_to(v, np.arange(4, dtype=np.int32), np.zeros(4, np.int32), None)
    nulls = next(iter_columns(pa.array([1, None, 3])))
    with pytest.raises(InvalidInputError, match="bitmap"):
        K.scatter_to(nulls, np.arange(3, dtype=np.int32), np.zeros(3, np.int64), None)


@given(case=cases())
@settings(**SETTINGS)
def test_count_indices_per_segment(backend, case):
    arr, codes, n_seg = case
    rng = np.random.default_rng(len(arr))
    n_bins = 7
    idx = pa.array(rng.integers(0, n_bins, len(arr) + 3).astype(np.int16), mask=rng.random(len(arr) + 3) < 0.2)
    idx = idx.slice(3, len(arr))
    bins = np.zeros(n_seg * n_bins, np.int64)
    first = np.full(n_seg * n_bins, -1, np.int64)
    n_null = np.zeros(n_seg, np.int64)
    for v in iter_columns(idx):
        K.count_indices(v, codes, n_seg, n_bins, bins, first, n_null)
    x = np.asarray(idx.fill_null(-1))
    for s in range(n_seg):
        rows = codes == s
        xs = x[rows]
        assert n_null[s] == (xs < 0).sum()
        want = np.bincount(xs[xs >= 0], minlength=n_bins)
        assert np.array_equal(bins[s * n_bins:(s + 1) * n_bins], want)
        pos = np.flatnonzero(rows)
        for b in np.flatnonzero(want):
            assert first[s * n_bins + b] == pos[np.flatnonzero(xs == b)[0]]


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), start=st.integers(0, 9),
       n_seg=st.sampled_from([1, 2, 7, 20, 60]), chunks=st.integers(1, 3), n_words=st.sampled_from([3, 40, 700]),
       large=st.booleans(), null_p=st.sampled_from([0.0, 0.1, 1.0]))
@settings(**SETTINGS)
def test_segment_counts_of_strings_equal_numpy_counts(backend, seed, n, start, n_seg, chunks, n_words, large, null_p):
    """CatTable.segment_counts (one read of a string column, the table growing as keys arrive):
    per segment, each key's rows and first row, and the nulls, as numpy counts them."""
    from fastdrift.kernels.cat import CatTable

    rng = np.random.default_rng(seed)
    words = np.array([f"k{i}" * (i % 4) for i in range(n_words)])  # "" too, lengths 0-3 words
    total = n + start
    arr = pa.array(words[rng.integers(0, n_words, total)], mask=rng.random(total) < null_p if null_p else None,
                   type=pa.large_string() if large else pa.string()).slice(start, n)
    if chunks > 1 and n:
        cuts = sorted(rng.integers(0, n, chunks - 1).tolist())
        arr = pa.chunked_array([arr.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])], type=arr.type)
    codes = rng.integers(0, n_seg, n).astype(np.int32)
    table = CatTable("str", max_ids=max(n, 1))
    bins, first, n_null = table.segment_counts(list(iter_columns(arr)), codes, n_seg, 10**9)
    keys = table.keys()
    values = arr.to_pylist()
    want_keys = list(dict.fromkeys(v for v in values if v is not None))  # first arrival first
    assert keys == want_keys and table.counts.sum() == 0  # inserted, not counted
    assert bins.shape == first.shape == (n_seg, len(keys))
    ids = np.array([keys.index(v) if v is not None else -1 for v in values], dtype=np.int64)
    for s in range(n_seg):
        rows = np.flatnonzero(codes == s)
        assert n_null[s] == (ids[rows] < 0).sum()
        want = np.bincount(ids[rows][ids[rows] >= 0], minlength=len(keys))
        assert np.array_equal(bins[s], want)
        for x in np.flatnonzero(want):
            assert first[s, x] == rows[ids[rows] == x][0]


def test_segment_counts_check_codes_and_cells(backend):
    from fastdrift.kernels.cat import CatTable

    arr = pa.array(["a", None, "b", "c"] * 10)
    views = list(iter_columns(arr))
    codes = np.zeros(40, np.int32)
    codes[13] = 5
    with pytest.raises(InvalidInputError, match="segment code 5 of row 13"):
        CatTable("str", 100).segment_counts(views, codes, 3, 10**6)
    codes[13] = -1
    with pytest.raises(InvalidInputError, match="segment code -1 of row 13"):
        CatTable("str", 100).segment_counts(views, codes, 3, 10**6)
    with pytest.raises(InvalidInputError, match="codes"):
        CatTable("str", 100).segment_counts(views, codes[:5], 3, 10**6)
    with pytest.raises(InvalidInputError, match="string"):
        CatTable("str", 100).segment_counts(list(iter_columns(pa.array([1, 2]))), np.zeros(2, np.int32), 1, 10**6)
    many = list(iter_columns(pa.array([f"v{i}" for i in range(100)])))
    assert CatTable("str", 100).segment_counts(many, np.zeros(100, np.int32), 4, 4 * 64) is None  # past the cells
    assert CatTable("str", 100).segment_counts(many, np.zeros(100, np.int32), 4, 4 * 128) is not None


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 2000), start=st.integers(0, 9), chunks=st.integers(1, 3),
       n_words=st.sampled_from([1, 3, 60, 1100]), long_p=st.sampled_from([0.0, 0.0, 0.001]), large=st.booleans(),
       null_p=st.sampled_from([0.0, 0.1]))
@settings(**SETTINGS)
def test_short_keys_are_the_dictionary_encoding(backend, seed, n, start, chunks, n_words, long_p, large, null_p):
    """short_keys (a segment column of few values of at most 8 bytes) against pyarrow's
    dictionary_encode: the same values in the same order, the same index per row; None when a value
    is longer than 8 bytes or there are more than SHORT_KEYS_MAX values."""
    rng = np.random.default_rng(seed)
    # "" too, and trailing / inner NUL bytes (a padded word must not equal the shorter key)
    words = ["a", "a\x00", "\x00", "a\x00\x00"] * (n_words > 1) + \
        [("é" if i % 7 == 0 else "") + f"{i:x}" * (i % 3) + "\x00" * (i % 5 == 1) for i in range(n_words)]
    words = np.array(words, dtype=object)
    total = n + start
    vals = words[rng.integers(0, words.size, total)]
    vals[rng.random(total) < long_p] = "a-long-value"
    arr = pa.array(vals, mask=rng.random(total) < null_p if null_p else None,
                   type=pa.large_string() if large else pa.string()).slice(start, n)
    if chunks > 1 and n:
        cuts = sorted(rng.integers(0, n, chunks - 1).tolist())
        arr = pa.chunked_array([arr.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])], type=arr.type)
    got = K.short_keys(list(iter_columns(arr)))
    flat = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    enc = pc.dictionary_encode(flat, null_encoding="encode")
    values = enc.dictionary.to_pylist()
    if any(v is not None and len(v.encode()) > 8 for v in values) or len(values) > K.SHORT_KEYS_MAX:
        assert got is None
        return
    keys, ids = got
    assert [None if k is None else k.decode() for k in keys] == values
    assert ids.dtype == np.int32 and np.array_equal(ids, enc.indices.to_numpy(zero_copy_only=False))


def test_segmenter_with_short_keys_assigns_as_without():
    """The profile's Segmenter (encode=encode_short_strings) against the plain one: codes and keys,
    short, long, null and non-string segment columns, across batches and the cap."""
    from fastdrift.adapters.segments import Segmenter
    from fastdrift.sketches.segmented import encode_short_strings

    rng = np.random.default_rng(3)
    for cols, cap in ((["s"], 50), (["s", "i"], 50), (["l"], 50), (["s"], 4), (["i", "s"], 7)):
        a, b = Segmenter(cols, cap), Segmenter(cols, cap, encode=encode_short_strings)
        for seed in range(3):
            n = 3000
            s = np.array(["de", "fr", "", "uk", "a,b", "x=y"])[rng.integers(0, 6, n)]
            batch = pa.table({"s": pa.array(s, mask=rng.random(n) < 0.05),
                              "l": pa.array(np.array(["short", "a-longer-value"])[rng.integers(0, 2, n)]),
                              "i": pa.array(rng.integers(0, 4, n))})
            assert np.array_equal(a.assign(batch), b.assign(batch)) and a.keys == b.keys, (cols, cap, seed)


@pytest.mark.parametrize("fn", ["scatter", "count_indices"])
def test_codes_out_of_range_raise(backend, fn):
    v = next(iter_columns(pa.array(np.arange(10, dtype=np.int32))))
    for bad in (-1, 3):
        codes = np.zeros(10, np.int32)
        codes[6] = bad
        with pytest.raises(InvalidInputError, match="segment code"):
            if fn == "scatter":
                K.scatter(v, codes, 3, np.array([0, 10, 10], np.int64), np.zeros(10, np.int32), None)
            else:
                K.count_indices(v, codes, 3, 10, np.zeros(30, np.int64), None, np.zeros(3, np.int64))


def test_bad_positions_and_indices_raise(backend):
    v = next(iter_columns(pa.array(np.arange(10, dtype=np.int64))))
    codes = np.zeros(10, np.int32)
    with pytest.raises(InvalidInputError, match="past the end"):
        K.scatter(v, codes, 1, np.array([5], np.int64), np.zeros(10, np.int64), None)
    with pytest.raises(InvalidInputError, match="outside the dictionary"):
        K.count_indices(v, codes, 1, 9, np.zeros(9, np.int64), None, np.zeros(1, np.int64))
    with pytest.raises(InvalidInputError, match="int32"):
        K.scatter(v, codes.astype(np.int64), 1, np.array([0], np.int64), np.zeros(10, np.int64), None)
    nulls = next(iter_columns(pa.array([1, None, 3])))
    with pytest.raises(InvalidInputError, match="bitmap"):
        K.scatter(nulls, np.zeros(3, np.int32), 1, np.array([0], np.int64), np.zeros(3, np.int64), None)


def _numeric_sketches(edges):
    return [fastdrift.Histogram(edges), fastdrift.Moments(), fastdrift.TDigest(50)]


def _categorical_column(rng, kind, n, start):
    total = n + start
    words = np.array(["a", "b", "c", "dé", "", "e f"])
    mask = rng.random(total) < 0.1
    if kind == "bool":
        arr = pa.array(rng.random(total) < 0.3, mask=mask)
    elif kind == "int":
        arr = pa.array(rng.integers(-3, 4, total), mask=mask)
    else:
        arr = pa.array(words[rng.integers(0, len(words), total)], mask=mask,
                       type=pa.large_string() if kind == "large_string" else pa.string())
        if kind == "dictionary":
            arr = pc.dictionary_encode(arr)
    return arr.slice(start, n)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 2500), start=st.integers(0, 9),
       n_seg=st.sampled_from([1, 2, 5, 20]), chunks=st.integers(1, 3),
       dtype=st.sampled_from(NUMERIC), cat=st.sampled_from(["string", "large_string", "dictionary", "bool", "int"]))
@settings(**SETTINGS)
def test_segment_sketches_equal_sketches_of_the_filtered_rows(backend, seed, n, start, n_seg, chunks, dtype, cat):
    rng = np.random.default_rng(seed)
    mask = rng.random(n + start) < 0.1
    x = pa.array(_values(rng, dtype, n + start), mask=mask).slice(start, n)
    c = _categorical_column(rng, cat, n, start)
    if chunks > 1 and n:  # the same rows in several chunks
        cuts = sorted(rng.integers(0, n, chunks - 1).tolist())
        x = pa.chunked_array([x.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])], type=x.type)
        c = pa.chunked_array([c.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])], type=c.type)
    codes = rng.integers(0, n_seg, n).astype(np.int32)
    split = SegmentSplit(codes, n_seg)
    assert split.present == sorted(set(codes.tolist()))
    edges = np.array([-50.0, 0.0, 3.0, 100.0])
    numeric = [_numeric_sketches(edges) for _ in split.present]
    cats = [[fastdrift.Categorical(4)] for _ in split.present]  # a cap of 4: <other> counts too
    update_sketches(numeric, x, split, "x")
    update_sketches(cats, c, split, "c", categorical=True)
    for j, s in enumerate(split.present):
        rows = pa.array(codes == s)
        # a segment's rows alone: one array (as a table grouped by segment would hold them)
        alone = [sk.update(_one(x.filter(rows))) for sk in _numeric_sketches(edges)]
        for got, want in zip(numeric[j], alone):
            assert got.to_bytes() == want.to_bytes(), (type(got).__name__, s)
        want = fastdrift.Categorical(4).update(_one(c.filter(rows)))
        assert cats[j][0].to_bytes() == want.to_bytes(), s


def _one(arr):
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def test_empty_batch_has_no_segment():
    split = SegmentSplit(np.zeros(0, np.int32), 3)
    assert split.present == [] and split.arrays(pa.array([], pa.float64())) == []


@pytest.mark.parametrize("current", [False, True])
def test_segments_keep_no_insertion_buffers(current):
    """A segment's t-digests are flushed and hold their centroids only (not a 256 KB buffer per
    column once a segment passes 32,768 values), and still equal the unsegmented digests of the
    segment's rows byte for byte."""
    rng = np.random.default_rng(3)
    n = 80_000
    t = pa.table({"x": rng.normal(0, 1, n), "y": pa.array(rng.normal(5, 2, n), mask=rng.random(n) < 0.1),
                  "g": np.array(["a", "b"])[rng.integers(0, 2, n)]})
    prof = fastdrift.profile(t, segment_by=["g"])
    if current:
        prof = fastdrift.profile(t, reference=prof)
    for key, seg in prof.segments.items():
        rows = t.filter(pc.equal(t.column("g"), key.split("=")[1]))
        for name in ("x", "y"):
            td = seg[name].tdigest
            assert td._s.buf is None and td._s.nbytes < 8_000
            assert td.count == rows.num_rows
            want = fastdrift.TDigest(100).update(rows.column(name).combine_chunks())
            assert td.to_bytes() == want.to_bytes()


def _seg_count_run(backend, arr, codes, n_seg, max_ids, initial):
    """fd_seg_cat_count driven at the kernel level as CatTable.segment_counts drives it (grow on
    FD_EGROW, restart at the progress, rows widened), but going on past errors: every call's
    (status, progress, bad), and the table and count arrays after each."""
    from fastdrift.kernels.cat import CAT, CatTable

    views = list(iter_columns(arr))
    kind = "str" if views and views[0].kind == "string" else "int"
    table = CatTable(kind, max_ids=max_ids, _initial=initial)
    b = CAT(backend)
    width = int(table._hashes.size)
    bins, first = np.zeros(n_seg * width, np.int64), np.zeros(n_seg * width, np.int64)
    n_null = np.zeros(n_seg, np.int64)
    trace, at = [], 0
    for v in views:
        part = codes[at:at + v.length]
        start = 0
        while True:
            rc, progress, bad = b.seg_count(table, v, start, part, n_seg, width, bins, first, at, n_null)
            trace.append((int(rc), int(progress), int(bad), bins.copy(), first.copy(), n_null.copy(),
                          *(a.copy() for a in (table._slots, table._hashes, table._key_offsets, table._arena,
                                               table._int_keys, table._counts, table._meta))))
            if rc == FD_EGROW:
                table._grow(b, table._pending_bytes(v, progress))
                start = progress
            elif rc == FD_EINVAL and bad >= 0:
                start = bad + 1  # skip the bad row, as a caller that counted on would
                if start > v.length:
                    break
            else:
                assert rc == FD_OK
                break
            grown = int(table._hashes.size)
            if grown != width:
                bins, first = (np.pad(a.reshape(n_seg, width), ((0, 0), (0, grown - width))).reshape(-1)
                               for a in (bins, first))
                width = grown
        at += v.length
    return trace


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 1500), start=st.integers(0, 9), chunks=st.integers(1, 3),
       n_seg=st.integers(1, 60), n_words=st.sampled_from([1, 5, 60, 400]), key=st.sampled_from(["str", "large", "int"]),
       null_p=st.sampled_from([0.0, 0.2, 1.0]), bad_codes=st.integers(0, 3), max_ids=st.sampled_from([3, 50, 10**6]))
@settings(**dict(SETTINGS, max_examples=60))
def test_seg_cat_count_numba_twin_equals_c(seed, n, start, chunks, n_seg, n_words, key, null_p, bad_codes, max_ids):
    """The numba fd_seg_cat_count (one pass: find-or-insert and count together) against C's, call for
    call: statuses, progress and bad row through grow restarts mid-column (a 2-slot table), nulls,
    offsets, chunks, 1-60 segments, codes out of range (on null and valid rows), ids past the cap
    (an error in fd_seg_cat_count), strings and integers; equal counts and table arrays after each call."""
    rng = np.random.default_rng(seed)
    total = n + start
    mask = rng.random(total) < null_p if null_p else None
    if key == "int":
        arr = pa.array(rng.integers(-n_words, n_words, total), mask=mask)
    else:
        words = np.array([f"w{i}" * (i % 5) for i in range(n_words)])  # "" too; 0-16 bytes
        arr = pa.array(words[rng.integers(0, n_words, total)], mask=mask,
                       type=pa.large_string() if key == "large" else pa.string())
    arr = arr.slice(start, n)
    if chunks > 1 and n:
        cuts = sorted(rng.integers(0, n, chunks - 1).tolist())
        arr = pa.chunked_array([arr.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])], type=arr.type)
    codes = rng.integers(0, n_seg, n).astype(np.int32)
    if n:
        codes[rng.integers(0, n, bad_codes)] = rng.choice([-1, n_seg, 2**31 - 1], bad_codes)
    initial = {"slots": 2, "ids": 1, "arena": 1}
    want = _seg_count_run("c", arr, codes, n_seg, max_ids, initial)
    got = _seg_count_run("numba", arr, codes, n_seg, max_ids, initial)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:3] == w[:3]
        for a, b in zip(g[3:], w[3:]):
            assert np.array_equal(a, b)
