"""Categorical kernels: C == numba (bit-identical table state) == pure-Python oracle."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdrift.adapters.arrow import iter_columns
from fastdrift.errors import IncompatibleSketchError, InvalidInputError, SchemaError
from fastdrift.kernels import native
from fastdrift.kernels.cat import CAT as CAT_BACKEND, CatTable
from fastdrift.kernels.oracles import KERNELS, reference_value_counts


class _NumbaCat:
    """``fastdrift.kernels.numba_cat``, imported by the first test that uses it rather than at
    collection: its kernels compile on import (a minute cold), which conftest.py's warm-up does on
    the other core while the tests before these run."""

    def __getattr__(self, name):
        import fastdrift.kernels.numba_cat as module
        return getattr(module, name)


numba_cat = _NumbaCat()

ROOT = Path(__file__).resolve().parents[1]
CAT = KERNELS["categorical"]
BACKENDS = tuple(b for b in CAT if b != "reference")
TINY = {"slots": 2, "ids": 1, "arena": 1}  # every insertion path has to grow and resume
SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(),
             pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]
STR_TYPES = [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]
INDEX_TYPES = INT_TYPES  # Arrow allows unsigned dictionary indices too


def table_arrays(t):
    used = int(t._meta[4])
    return {
        "slots": t._slots, "hashes": t._hashes[:t.n_ids], "counts": t.counts,
        "key_offsets": t._key_offsets[:t.n_ids + 1] if t.key_kind == "str" else t._key_offsets,
        "arena": t._arena[:used], "int_keys": t._int_keys[:t.n_ids], "meta": t._meta,
        "id_cap": np.array([t._hashes.size]), "arena_cap": np.array([t._arena.size]),
    }


def assert_same_state(a, b, layout=True):
    sa, sb = table_arrays(a), table_arrays(b)
    # layout=False: capacities and the hash index's layout depend on growth steps (a dictionary reserves room
    # for its new entries at once); the content is compared: keys in id order, their hashes,
    # counts, other/null and the key bytes.
    if not layout:
        for k in ("slots", "id_cap", "arena_cap"):
            del sa[k], sb[k]
    assert a.keys() == b.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
        assert sa[k].dtype == sb[k].dtype, k
    assert a.value_type == b.value_type


def count_all(values, key_kind, max_ids, initial=TINY):
    tabs = {}
    for be in BACKENDS:
        t = CatTable(key_kind, max_ids, _initial=initial)
        CAT[be](t, values, name="col")
        tabs[be] = t
    assert_same_state(tabs["c"], tabs["numba"])
    return tabs["c"]


def assert_matches_oracle(t, values, max_ids, n):
    ref = CAT["reference"](values, max_ids)
    assert t.keys() == ref.keys  # same keys, same arrival order
    assert t.counts.tolist() == list(ref.counts.values())
    assert (t.other, t.null) == (ref.other, ref.null)
    assert t.total == n
    if max_ids >= len(ref.counts) + 1:
        assert t.to_dict() == reference_value_counts(values)


# ---- strategies ------------------------------------------------------------------

texts = st.text(alphabet=st.sampled_from("ab\u00e9\u4e2d\U0001F600\x00"), max_size=12) | st.text(max_size=20)


@st.composite
def sliced(draw, values, arrow_type):
    """An Arrow array (maybe sliced at an odd offset) or a ChunkedArray of slices."""
    arr = pa.array(values, type=arrow_type)
    n = len(arr)
    if draw(st.booleans()) and n:
        lo = draw(st.integers(0, n))
        hi = draw(st.integers(lo, n))
        arr = arr.slice(lo, hi - lo)
    if draw(st.booleans()):
        cuts = sorted(draw(st.lists(st.integers(0, len(arr)), max_size=4)))
        bounds = [0, *cuts, len(arr)]
        return pa.chunked_array([arr.slice(a, b - a) for a, b in zip(bounds, bounds[1:])], type=arr.type)
    return arr


@st.composite
def pooled(draw, elements, max_pool=40, max_len=120):
    pool = draw(st.lists(elements, min_size=1, max_size=max_pool, unique=True))
    return draw(st.lists(st.none() | st.sampled_from(pool), max_size=max_len))


# ---- hashes ----------------------------------------------------------------------

def test_hash_bytes_c_equals_numba_every_length():
    rng = np.random.default_rng(1)
    buf = rng.integers(0, 256, 64, dtype=np.uint8)
    for n in range(41):
        for start in (0, 1, 3, 8):
            b = np.ascontiguousarray(buf[start:start + n])
            c = native.lib.fd_hash_bytes(native.ffi.from_buffer(b), n)
            assert c == int(numba_cat.hash_bytes(buf, start, n)), (n, start)
            assert c == int(numba_cat.hash_bytes(b, 0, n))


@SETTINGS
@given(st.binary(max_size=40))
def test_hash_bytes_random(b):
    a = np.frombuffer(b, dtype=np.uint8)
    assert native.lib.fd_hash_bytes(b, len(b)) == int(numba_cat.hash_bytes(a, 0, len(b)))


def test_hash_bytes_separates_length_and_tail():
    h = [native.lib.fd_hash_bytes(x, len(x)) for x in (b"", b"\0", b"\0" * 8, b"a", b"a\0")]
    assert len(set(h)) == len(h)


@SETTINGS
@given(st.integers(-2**63, 2**63 - 1))
def test_hash_int_c_equals_numba(v):
    assert native.lib.fd_hash_int(v) == int(numba_cat.hash_int(v))


# ---- strings ---------------------------------------------------------------------

@SETTINGS
@given(st.data(), st.sampled_from(STR_TYPES), st.integers(0, 12))
def test_strings(data, arrow_type, max_ids):
    binary = arrow_type in (pa.binary(), pa.large_binary())
    values = data.draw(pooled(st.binary(max_size=20) if binary else texts))
    arr = data.draw(sliced(values, arrow_type))
    t = count_all(arr, "str", max_ids)
    assert_matches_oracle(t, arr, max_ids, len(arr))


def test_empty_and_empty_strings():
    for arr in (pa.array([], pa.string()), pa.array(["", "", None, ""]), pa.array([""] * 3, pa.large_string()),
                pa.chunked_array([], pa.string()), pa.array([None, None], pa.string())):
        t = count_all(arr, "str", 5)
        assert_matches_oracle(t, arr, 5, len(arr))


def test_growth_across_many_resumes():
    rng = np.random.default_rng(7)
    pool = ["k" * int(rng.integers(0, 40)) + str(i) for i in range(700)]
    values = [pool[i] for i in rng.integers(0, len(pool), 5000)]
    arr = pa.array(values)
    t = count_all(arr, "str", 600)
    assert_matches_oracle(t, arr, 600, len(arr))
    assert t._slots.size >= 2 * 600 and t.other > 0
    ints = pa.array(rng.integers(-10**12, 10**12, 3000))
    t = count_all(ints, "int", 2000)
    assert_matches_oracle(t, ints, 2000, len(ints))


def test_cap_zero_and_cap_reached_totals():
    arr = pa.array(["a", "b", None, "c", "a", "d"])
    for cap, (keys, other) in {0: ([], 5), 2: (["a", "b"], 2)}.items():
        t = count_all(arr, "str", cap)
        assert t.keys() == keys and t.other == other and t.null == 1 and t.total == 6


# ---- dictionaries ----------------------------------------------------------------

@st.composite
def dictionary_chunks(draw):
    index_type = draw(st.sampled_from(INDEX_TYPES))
    chunks = []
    for _ in range(draw(st.integers(1, 3))):
        dictionary = draw(st.lists(texts, min_size=0, max_size=12, unique=True))
        if dictionary and draw(st.booleans()):
            dictionary.append(dictionary[0])  # Arrow allows repeated dictionary values
        d = len(dictionary)
        idx = draw(st.lists(st.none() | st.integers(0, d - 1) if d else st.none(), max_size=80))
        arr = pa.DictionaryArray.from_arrays(pa.array(idx, type=index_type),
                                             pa.array(dictionary, type=pa.string()))
        if draw(st.booleans()) and len(arr):
            lo = draw(st.integers(0, len(arr)))
            arr = arr.slice(lo, draw(st.integers(0, len(arr) - lo)))
        chunks.append(arr)
    return pa.chunked_array(chunks, type=pa.dictionary(index_type, pa.string()))


@SETTINGS
@given(dictionary_chunks(), st.integers(0, 10))
def test_dictionaries(arr, max_ids):
    t = count_all(arr, "str", max_ids)
    assert_matches_oracle(t, arr, max_ids, len(arr))
    # A dictionary column builds exactly the table of its decoded column.
    decoded = pa.chunked_array([c.dictionary_decode() for c in arr.chunks], type=pa.string())
    assert_same_state(t, count_all(decoded, "str", max_ids), layout=False)


def test_dictionary_null_values_and_large_index_gaps():
    dictionary = pa.array(["x", None, "y"] + [f"u{i}" for i in range(5000)])
    idx = np.full(20000, 2, dtype=np.int32)
    idx[-1] = 0
    idx[-2] = 1
    idx[9] = 4000
    arr = pa.DictionaryArray.from_arrays(pa.array(idx), dictionary)
    t = count_all(arr, "str", 10)
    assert_matches_oracle(t, arr, 10, len(arr))


def test_dictionary_index_out_of_range():
    arr = pa.DictionaryArray.from_arrays(pa.array([0, 1, 5, 0], pa.int8()), pa.array(["a", "b"]), safe=False)
    for be in BACKENDS:
        t = CatTable("str")
        t.update(pa.array(["a"]), backend=be)
        with pytest.raises(InvalidInputError, match="position 2"):
            t.update(arr, backend=be, name="col")
        assert t.to_dict() == {"a": 1} and t.null == 0


@SETTINGS
@given(st.data(), st.sampled_from(INDEX_TYPES), st.integers(1, 6))
def test_dictionary_index_out_of_range_any_type_leaves_table_untouched(data, index_type, d):
    info = np.iinfo(index_type.to_pandas_dtype())
    bad = data.draw(st.sampled_from([d, int(info.max)] + ([-1, int(info.min)] if info.min < 0 else [])))
    idx = data.draw(st.lists(st.none() | st.integers(0, d - 1), max_size=150))
    pos = data.draw(st.integers(0, len(idx)))
    idx.insert(pos, bad)
    idx += data.draw(st.lists(st.none() | st.integers(0, d - 1) | st.just(bad), max_size=20))
    lo = data.draw(st.integers(0, pos))
    arr = pa.DictionaryArray.from_arrays(pa.array(idx, index_type), pa.array([f"v{i}" for i in range(d)]),
                                         safe=False).slice(lo)
    for be in BACKENDS:
        t = CatTable("str", 4)
        t.update(pa.array(["v0", None, "w"]), backend=be)
        before = t.copy()
        with pytest.raises(InvalidInputError, match=rf"'col'.*position {pos - lo}\b"):
            t.update(arr, backend=be, name="col")
        assert_same_state(t, before)
        # an empty table makes room for the dictionary before the count: room, no content
        t = CatTable("str", 4)
        with pytest.raises(InvalidInputError, match=rf"'col'.*position {pos - lo}\b"):
            t.update(arr, backend=be, name="col")
        assert_same_state(t, CatTable("str", 4), layout=False)
        assert t.total == 0 and t.value_type is None


# ---- the dictionary-index kernel -------------------------------------------------

def count_indices(be, view, bins, first):
    """fd_count_indices / numba_cat.count_indices; first None = not wanted.  Returns (rc, progress, n_null)."""
    if be == "c":
        nn = native.ffi.new("int64_t*", 5)  # the kernel accumulates
        prog = native.ffi.new("int64_t*")
        rc = native.lib.fd_count_indices(native.column(view), native.ptr("int64_t*", bins),
                                         native.ffi.NULL if first is None else native.ptr("int64_t*", first),
                                         bins.size, nn, prog)
        return rc, prog[0], nn[0] - 5
    out = CAT_BACKEND(be).count_indices(view, bins, np.empty(0, np.int64) if first is None else first)
    return tuple(int(x) for x in out)


@st.composite
def index_arrays(draw):
    """(index array maybe sliced, n_bins): any integer type, nulls (rare, dense, in runs), out-of-range values."""
    index_type = draw(st.sampled_from(INT_TYPES))
    info = np.iinfo(index_type.to_pandas_dtype())
    n_bins = draw(st.integers(0, min(40, int(info.max))))
    n = draw(st.integers(0, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(0, max(n_bins, 1), n).astype(object)
    null = rng.random(n) < draw(st.sampled_from([0.0, 0.03, 0.5, 0.97, 1.0]))
    if n and draw(st.booleans()):  # a run of nulls or of valid values (whole validity words)
        a = draw(st.integers(0, n))
        null[a:draw(st.integers(a, n))] = draw(st.booleans())
    bad = [b for b in (-1, int(info.min), n_bins, int(info.max)) if b < 0 or b >= n_bins]
    bad = [b for b in bad if info.min <= b <= info.max]
    for _ in range(draw(st.integers(0, 2)) if n else 0):
        x[draw(st.integers(0, n - 1))] = draw(st.sampled_from(bad))
    if n_bins == 0:
        x[:] = draw(st.sampled_from(bad))  # no index is in range
    arr = pa.array([None if m else int(v) for v, m in zip(x, null)], index_type)
    if draw(st.booleans()):
        lo = draw(st.integers(0, n))
        arr = arr.slice(lo, draw(st.integers(0, n - lo)))
    return arr, n_bins


def count_indices_oracle(arr, n_bins, bins0, first0):
    """numpy: bins, first, progress, n_null (bincount and np.unique's first indices of the valid prefix)."""
    valid = np.flatnonzero(arr.is_valid().to_numpy(zero_copy_only=False))
    x = np.array([v for v in arr.to_pylist() if v is not None], dtype=object)
    out = [k for k, v in enumerate(x) if not 0 <= v < n_bins]
    k = out[0] if out else len(x)  # valid elements counted
    progress = int(valid[k]) if out else len(arr)
    xs = x[:k].astype(np.int64)
    bins = bins0 + np.bincount(xs, minlength=n_bins)
    first = first0.copy()
    u, at = np.unique(xs, return_index=True)
    fresh = bins0[u] == 0
    first[u[fresh]] = valid[at[fresh]]
    return bins, first, progress, progress - k if out else len(arr) - len(x)


@SETTINGS
@given(index_arrays(), st.data())
def test_count_indices_matches_numpy(arr_bins, data):
    arr, n_bins = arr_bins
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    # Counts accumulate: entries already counted keep their first[] (here the -7 marker).
    bins0 = rng.integers(0, 3, n_bins) * (rng.random(n_bins) < data.draw(st.sampled_from([0.0, 0.5])))
    first0 = np.full(n_bins, -7, np.int64)
    bins, first, progress, n_null = count_indices_oracle(arr, n_bins, bins0, first0)
    want_rc = native.lib.FD_EINVAL if progress < len(arr) else native.lib.FD_OK
    for v in iter_columns(arr):
        for be in BACKENDS:
            got_bins, got_first = bins0.copy(), first0.copy()
            assert count_indices(be, v, got_bins, got_first) == (want_rc, progress, n_null), be
            np.testing.assert_array_equal(got_bins, bins, err_msg=be)
            np.testing.assert_array_equal(got_first, first, err_msg=be)
            got_bins = bins0.copy()
            assert count_indices(be, v, got_bins, None) == (want_rc, progress, n_null), be
            np.testing.assert_array_equal(got_bins, bins, err_msg=be)


@pytest.mark.parametrize("index_type", INT_TYPES)
def test_count_indices_out_of_range(index_type):
    vals = [0, 2, None, 1, 3, 0] if index_type != pa.int8() else [0, 2, None, 1, -1, 0]
    bad = 4
    v = next(iter_columns(pa.array(vals, index_type)))
    for be in BACKENDS:
        bins, first = np.zeros(3, np.int64), np.full(3, -1, np.int64)
        assert count_indices(be, v, bins, first) == (native.lib.FD_EINVAL, bad, 1)
        assert bins.tolist() == [1, 1, 1] and first.tolist() == [0, 3, 1]


def test_count_indices_first_positions_past_nulls_at_odd_offsets():
    # Validity words split at every offset: first positions are relative to the slice.
    idx = np.arange(300) % 7
    mask = np.zeros(300, bool)
    mask[:150] = True  # entries 0..6 first seen at 150..156 in the unsliced array
    arr = pa.array(idx, pa.int16(), mask=mask)
    for lo in range(0, 17):
        v = next(iter_columns(arr.slice(lo)))
        for be in BACKENDS:
            bins, first = np.zeros(7, np.int64), np.empty(7, np.int64)
            assert count_indices(be, v, bins, first) == (native.lib.FD_OK, 300 - lo, 150 - lo)
            assert first.tolist() == [150 + (e - 150) % 7 - lo for e in range(7)]
            assert bins.sum() == 150


# ---- integers and booleans -------------------------------------------------------

@SETTINGS
@given(st.data(), st.sampled_from(INT_TYPES), st.integers(0, 12))
def test_integers(data, arrow_type, max_ids):
    info = np.iinfo(arrow_type.to_pandas_dtype())
    ints = st.integers(int(info.min), int(info.max))
    values = data.draw(pooled(ints | st.sampled_from([int(info.min), int(info.max), 0])))
    arr = data.draw(sliced(values, arrow_type))
    t = count_all(arr, "int", max_ids)
    assert_matches_oracle(t, arr, max_ids, len(arr))


@SETTINGS
@given(st.data(), st.integers(0, 3))
def test_booleans(data, max_ids):
    values = data.draw(st.lists(st.none() | st.booleans(), max_size=300))
    arr = data.draw(sliced(values, pa.bool_()))
    t = count_all(arr, "int", max_ids)
    assert_matches_oracle(t, arr, max_ids, len(arr))
    assert all(type(k) is bool for k in t.keys())


@SETTINGS
@given(st.lists(st.none() | st.booleans(), max_size=400), st.integers(0, 17), st.data())
def test_bool_count_kernel(values, lo, data):
    arr = pa.array(values, pa.bool_())
    lo = min(lo, len(arr))
    arr = arr.slice(lo, data.draw(st.integers(0, len(arr) - lo)))
    want = (arr.to_pylist().count(True), arr.to_pylist().count(False), arr.null_count)
    for v in iter_columns(arr):
        out = native.ffi.new("int64_t[3]", [1, 2, 3])  # the kernel accumulates
        rc = native.lib.fd_bool_count(native.column(v), out + 0, out + 1, out + 2)
        assert rc == 0
        assert (out[0] - 1, out[1] - 2, out[2] - 3) == want
        for be in BACKENDS:  # the backend objects: status first
            assert tuple(CAT_BACKEND(be).bool_count(v)) == (native.FD_OK, *want)


def test_uint64_keys_and_signed_mix():
    big = np.array([2**64 - 1, 2**63, 5, 2**64 - 1], dtype=np.uint64)
    t = count_all(pa.array(big), "int", 10)
    assert t.to_dict() == {2**64 - 1: 2, 2**63: 1, 5: 1}
    tabs = []
    for be in BACKENDS:
        t = CatTable("int", 10, _initial=TINY)
        t.update(pa.array([-1, 5], pa.int8()), backend=be)
        t.update(pa.array([5, 6], pa.uint64()), backend=be)
        tabs.append(t)
    assert_same_state(*tabs)
    assert t.to_dict() == {-1: 1, 5: 2, 6: 1}


# ---- type errors -----------------------------------------------------------------

@pytest.mark.parametrize("key_kind,arr", [
    ("int", pa.array([1.5, 2.0])),
    ("str", pa.array([1.5, 2.0], pa.float32())),
    ("int", pa.array(["a"])),
    ("str", pa.array([1, 2])),
    ("str", pa.array([True])),
    ("int", pa.array(["a", "b"]).dictionary_encode()),
    ("str", pa.DictionaryArray.from_arrays(pa.array([0, 0]), pa.array([7]))),
    ("int", pa.DictionaryArray.from_arrays(pa.array([0, 0]), pa.array([7.5]))),
])
def test_type_mismatch(key_kind, arr):
    for be in BACKENDS:
        t = CatTable(key_kind)
        with pytest.raises(SchemaError) as exc:
            t.update(pa.chunked_array([arr[:1], arr[1:]]) if len(arr) > 1 else arr, backend=be, name="feat")
        msg = str(exc.value)
        assert "'feat'" in msg and key_kind in msg
        assert str(arr.type) in msg
        assert t.total == 0 and t.n_ids == 0


def test_numba_not_imported_by_fastdrift():
    code = ("import sys, fastdrift, fastdrift.kernels.cat, fastdrift.kernels.oracles;"
            "t = fastdrift.kernels.cat.CatTable('str'); import pyarrow as pa;"
            "t.update(pa.array(['a']), backend='c'); assert 'numba' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- merge, copy, state ----------------------------------------------------------

@SETTINGS
@given(st.data(), st.sampled_from(["str", "int", "bool"]))
def test_merge_of_split_equals_one_pass(data, kind):
    elems = {"str": texts, "int": st.integers(-2**63, 2**63 - 1), "bool": st.booleans()}[kind]
    values = data.draw(pooled(elems))
    cut = data.draw(st.integers(0, len(values)))
    arrow_type = {"str": pa.string(), "int": pa.int64(), "bool": pa.bool_()}[kind]
    key_kind = "str" if kind == "str" else "int"
    be = data.draw(st.sampled_from(BACKENDS))
    whole = CatTable(key_kind, 100, _initial=TINY)
    whole.update(pa.array(values, arrow_type), backend=be)
    a, b = CatTable(key_kind, 100, _initial=TINY), CatTable(key_kind, 100, _initial=TINY)
    a.update(pa.array(values[:cut], arrow_type), backend=be)
    b.update(pa.array(values[cut:], arrow_type), backend=be)
    a.merge_from(b, backend=data.draw(st.sampled_from(BACKENDS)))
    assert a.keys() == whole.keys() and a.counts.tolist() == whole.counts.tolist()
    assert (a.other, a.null) == (whole.other, whole.null)
    np.testing.assert_array_equal(a._slots, whole._slots)
    # state round trip, and copies are independent
    r = CatTable.from_state(a.state())
    assert r.keys() == a.keys() and r.counts.tolist() == a.counts.tolist() and r.total == a.total
    c = a.copy()
    c.update(pa.array(values[:1], arrow_type), backend=be)
    assert a.total == len(values) and c.total == len(values) + min(1, len(values))


def test_merge_incompatible():
    with pytest.raises(IncompatibleSketchError, match="max_ids=5.*max_ids=6|max_ids=6.*max_ids=5"):
        CatTable("str", 5).merge_from(CatTable("str", 6))
    with pytest.raises(IncompatibleSketchError, match="'int'.*'str'|'str'.*'int'"):
        CatTable("str", 5).merge_from(CatTable("int", 5))


def test_add_counts_beyond_cap():
    t = CatTable("str", 2)
    t.add_counts(["a", "b", "c", "a"], [1, 2, 3, 4], other=5, null=6)
    assert t.to_dict() == {"a": 5, "b": 2} and t.other == 8 and t.null == 6
    t = CatTable("int", 3)
    t.add_counts([0, 1], [3, 4])
    t.update(pa.array([True, False, None]))  # a deserialized bool table keeps counting booleans
    assert t.to_dict() == {0: 4, 1: 5} and t.null == 1


# ---- C hygiene -------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("flags", [["-O3", "-DNDEBUG"], ["-O0", "-g", "-UNDEBUG"]])
def test_c_compiles_warning_free(flags, tmp_path):
    subprocess.run(["gcc", "-std=c99", *flags, "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-I", str(ROOT / "kernels"), "-c", str(ROOT / "kernels" / "fd_cat.c"),
                    "-o", str(tmp_path / "fd_cat.o")], check=True)


@pytest.mark.parametrize("cap", [3, 5, 100])
def test_batches_sharing_a_dictionary_count_as_the_decoded_strings(cap, backend):
    # Slices of one DictionaryArray share its dictionary (as the batches of a Parquet column
    # chunk do): entries first used in a later batch, past the cap or not, must arrive in the
    # order the decoded strings would, and a dictionary's room is reserved at once.
    rng = np.random.default_rng(cap)
    words = pa.array([f"w{i}" for i in range(8)] + [None])
    idx = np.concatenate([rng.integers(0, 3, 500), rng.integers(0, 9, 500), rng.integers(2, 9, 500)])
    arr = pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), words)
    from fastdrift import Categorical
    got = Categorical(cap)
    want = Categorical(cap)
    for lo, hi in ((0, 400), (400, 700), (700, 1100), (1100, 1500)):
        got.update(arr.slice(lo, hi - lo))
        want.update(arr.slice(lo, hi - lo).cast(pa.string()))
        assert got.categories == want.categories and got.to_dict() == want.to_dict()
        assert (got.other_count, got.null_count, got.count) == (want.other_count, want.null_count, want.count)


@SETTINGS
@given(st.data(), st.sampled_from(["str", "int"]), st.integers(0, 12))
def test_remembered_dictionary_counts_as_the_decoded_values(data, key_kind, cap):
    # Batches bringing equal dictionaries (the same object, equal copies, slices of one array) are
    # counted by the ids a table remembers for the entries (CatTable._DictMemo): entries first used
    # in later batches, past the cap or not, repeated values and null entries must leave the table
    # exactly as the decoded values do, after every batch, on both backends.  A dictionary whose
    # buffer is rewritten in place between batches (numpy-backed ints) is a new dictionary.
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    pool = []
    for _ in range(data.draw(st.integers(1, 2))):
        n = data.draw(st.integers(1, 30))
        vals = rng.integers(0, 40, n)
        if key_kind == "str":
            d = pa.array([f"k{v}" if rng.random() > 0.1 else None for v in vals], pa.string())
        else:
            d = pa.array(vals)
            assert d.buffers()[1].address == vals.ctypes.data  # zero-copy: vals is its buffer
        pool.append((vals, d))
    tables = {be: CatTable(key_kind, cap) for be in BACKENDS}
    want = CatTable(key_kind, cap)
    lookups = {be: CatTable(key_kind, cap) for be in BACKENDS}  # CatTable.lookup: ids per row
    want_lookup = CatTable(key_kind, cap)
    for _ in range(data.draw(st.integers(3, 12))):
        vals, d = pool[data.draw(st.integers(0, len(pool) - 1))]
        if key_kind == "int" and data.draw(st.integers(0, 2)) == 0:
            vals[rng.integers(0, vals.size)] = rng.integers(40, 80)  # rewrites d's buffer in place
        if data.draw(st.booleans()):
            d = d.take(pa.array(np.arange(len(d))))  # an equal copy
        rows = data.draw(st.integers(1, 25))
        idx = pa.array(np.where(rng.random(rows) < 0.05, None, rng.integers(0, len(d), rows)).tolist(),
                       pa.int32())
        batch = pa.DictionaryArray.from_arrays(idx, d)
        for be, t in tables.items():
            t.update(batch, backend=be)
        want.update(batch.dictionary_decode(), backend="c")
        for t in tables.values():
            assert_same_state(t, want, layout=False)
        ids = want_lookup.lookup(batch.dictionary_decode(), backend="c")
        for be, t in lookups.items():
            np.testing.assert_array_equal(t.lookup(batch, backend=be), ids)
            assert_same_state(t, want_lookup, layout=False)
        copy = tables["c"].copy()  # a copy starts without the memo and counts the same
        copy.update(batch, backend="c")
        want_next = want.copy()
        want_next.update(batch.dictionary_decode(), backend="c")
        assert_same_state(copy, want_next, layout=False)


def test_remembered_dictionary_after_two_equal_ones(backend):
    # The memo forms on the second equal dictionary in a row and serves the third, whose new
    # entries are looked up then; a different dictionary in between does not drop it.
    words = pa.array([f"w{i}" for i in range(6)])
    t = CatTable("str")
    b1 = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int8()), words)
    t.update(b1, backend=backend)
    assert t._dict_memo is None
    t.update(pa.DictionaryArray.from_arrays(pa.array([1, 2], pa.int8()), words.take(pa.array([0, 1, 2, 3, 4, 5]))),
             backend=backend)
    memo = t._dict_memo
    assert memo is not None and memo.ids.tolist()[:3] == [-4, 1, 2]  # entries this memo looked up
    t.update(pa.DictionaryArray.from_arrays(pa.array([0], pa.int8()), pa.array(["z"])), backend=backend)
    t.update(pa.DictionaryArray.from_arrays(pa.array([5, 5, 3], pa.int8()), words), backend=backend)
    assert t._dict_memo is memo and memo.ids.tolist() == [-4, 1, 2, 5, -4, 4]
    assert t.to_dict() == {"w0": 1, "w1": 2, "w2": 1, "z": 1, "w5": 2, "w3": 1}
    assert t.keys() == ["w0", "w1", "w2", "z", "w5", "w3"]


@pytest.mark.parametrize("kind", ["distinct", "repeated value", "null entry", "past the cap"])
def test_remembered_dictionary_direct_counts(backend, kind):
    # Once every entry of a remembered dictionary has an id of its own, a batch's counts by entry
    # go straight to those ids (_DictMemo.direct); a value held twice, a null entry or entries
    # past the cap keep the memo on the per-entry path.  Either way the table equals one fed the
    # decoded values after every batch.
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(50)]
    cap = 10_000
    if kind == "repeated value":
        words[30] = words[3]
    elif kind == "null entry":
        words[30] = None
    elif kind == "past the cap":
        cap = 20
    d = pa.array(words, pa.string())
    t, want = CatTable("str", cap), CatTable("str", cap)
    for k in range(6):
        idx = rng.integers(0, len(words), 400)
        mask = rng.random(idx.size) < 0.05
        if k < 2:
            idx[:len(words)] = rng.permutation(len(words))  # every entry used from the first batch
            mask[:len(words)] = False
        batch = pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32(), mask=mask),
                                               d if k % 2 else d.take(pa.array(np.arange(len(words)))))
        t.update(batch, backend=backend)
        want.update(batch.dictionary_decode(), backend="c")
        assert t.to_dict() == want.to_dict() and t.keys() == want.keys()
        assert (t.other, t.null, t.total) == (want.other, want.null, want.total)
    assert t._dict_memo is not None and t._dict_memo.direct == (kind == "distinct")


@pytest.mark.parametrize("layout", ["first-use order", "one entry unused", "shuffled"])
def test_dictionary_in_first_use_order(backend, layout):
    # A dictionary whose entries are all used and listed in order of first use (as Parquet and
    # dictionary_encode build them) is looked up as it is, without a copy in that order; one with
    # an unused entry or another order is taken first.  Each batch brings its own dictionary (no
    # memo): the table equals one fed the decoded values, keys in order of first arrival.
    rng = np.random.default_rng(5)
    words = np.array([f"v{i}" for i in range(30)])
    t, want = CatTable("str"), CatTable("str")
    for k in range(4):
        vals = words[rng.integers(0, 30 if k % 2 else 12, 500)]
        col = pa.array(vals).dictionary_encode()
        if layout == "one entry unused":
            col = pa.DictionaryArray.from_arrays(col.indices, pa.concat_arrays([col.dictionary, pa.array(["unused"])]))
        elif layout == "shuffled":
            perm = rng.permutation(len(col.dictionary))
            col = pa.DictionaryArray.from_arrays(pa.array(np.argsort(perm)[col.indices.to_numpy()], pa.int32()),
                                                 col.dictionary.take(pa.array(perm)))
        assert col.dictionary_decode().to_pylist() == vals.tolist()
        t.update(col, backend=backend)
        want.update(pa.array(vals), backend="c")
        assert t.to_dict() == want.to_dict() and t.keys() == want.keys()
    assert "unused" not in t.keys()


@SETTINGS
@given(st.data(), st.sampled_from(STR_TYPES + INT_TYPES), st.integers(0, 12))
def test_lookup_through_an_order_equals_lookup_of_the_taken_entries(data, arrow_type, max_ids):
    # fd_cat_lookup_order (a dictionary's entries looked up in first-use order without a take):
    # the ids, and the table after, are those of fd_cat_lookup over the entries taken in that
    # order -- entries repeated or left out, null entries, a sliced dictionary, a table that
    # grows and resumes mid-order, the cap -- on both backends, into a table already holding keys.
    is_str = arrow_type in STR_TYPES
    elements = (texts.map(str.encode) if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
                else texts) if is_str else st.integers(0, 2**7 - 1)  # every integer type holds these
    entries = data.draw(st.lists(st.none() | elements, min_size=1, max_size=60))  # repeats and nulls too
    arr = pa.array(entries, type=arrow_type)
    if data.draw(st.booleans()):
        lo = data.draw(st.integers(0, len(arr) - 1))
        arr = arr.slice(lo, data.draw(st.integers(1, len(arr) - lo)))
    n = len(arr)
    order = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=2 * n + 1)), dtype=np.int64)
    before = data.draw(pooled(elements, max_len=10))
    kind = "str" if is_str else "int"
    tabs, ids = {}, {}
    for be in BACKENDS:
        b = CAT_BACKEND(be)
        for how in ("order", "taken"):
            t = CatTable(kind, max_ids, _initial=TINY)
            t.update(pa.array(before, type=arr.type), backend=be)
            if how == "order":
                got = t._lookup(b, next(iter_columns(arr)), order)
            else:  # an empty take has no chunk to look up
                views = list(iter_columns(arr.take(pa.array(order, pa.int64()))))
                got = t._lookup(b, views[0]) if views else np.empty(0, np.int64)
            tabs[be, how], ids[be, how] = t, got
    for key in tabs:
        np.testing.assert_array_equal(ids[key], ids["c", "taken"], err_msg=str(key))
        assert_same_state(tabs[key], tabs["c", "taken"])
    # every id is its entry's: a key's id, FD_CAT_ID_NULL for a null entry, OTHER past the cap
    t = tabs["c", "order"]
    keys = t.keys_array().to_pylist()  # bytes of string keys, ints of integer ones
    for k, x in zip(order, ids["c", "order"]):
        v = arr[int(k)].as_py()
        if v is None:
            assert x == native.lib.FD_CAT_ID_NULL
        elif x >= 0:
            assert keys[x] == (v.encode() if isinstance(v, str) else v)
        else:
            assert x == native.lib.FD_CAT_ID_OTHER and len(keys) == max_ids


@pytest.mark.parametrize("bad", [-1, 5, 2**40])
def test_lookup_through_an_order_outside_the_dictionary(bad, backend):
    # An order entry outside the dictionary is an error before anything is looked up.
    t = CatTable("str")
    t.update(pa.array(["z"]))
    view = next(iter_columns(pa.array(["a", "b", "c", "d", "e"])))
    order = np.array([0, 1, bad, 2], np.int64)
    before = table_arrays(t)
    with pytest.raises(InvalidInputError):
        t._lookup(CAT_BACKEND(backend), view, order)
    after = table_arrays(t)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
    assert t.keys() == ["z"]


@SETTINGS
@given(st.data())
def test_first_use_order_is_a_stable_sort_of_the_used_entries(data):
    # fd_first_use_order and its numba twin: the entries with a count, by first position, ties by
    # entry -- numpy's stable argsort -- for short orders (the insertion sort), long ones (the radix
    # sort, positions of 1 to 62 bits, digits shared by every key), unused entries with any first.
    n = data.draw(st.integers(0, 400))
    bits = data.draw(st.sampled_from([1, 7, 8, 9, 17, 24, 40, 62]))
    hi = 2**bits - 1
    counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int64)
    if data.draw(st.booleans()):  # positions that share their low or high digits
        base = data.draw(st.integers(0, hi)) & ~255
        first = np.array(data.draw(st.lists(st.integers(0, 255), min_size=n, max_size=n)), np.int64) | base
    else:
        first = np.array(data.draw(st.lists(st.integers(0, hi), min_size=n, max_size=n)), np.int64)
    first[counts == 0] = np.array(data.draw(st.lists(st.integers(-5, hi), min_size=n, max_size=n)),
                                  np.int64)[counts == 0]  # not read where unused
    used = np.flatnonzero(counts)
    want = used[np.argsort(first[used], kind="stable")]
    for be in BACKENDS:
        order = np.full(n, -9, np.int64)
        rc, m = CAT_BACKEND(be).first_use_order(counts, first, order)
        assert (rc, m) == (native.lib.FD_OK, want.size), be
        np.testing.assert_array_equal(order[:m], want, err_msg=be)


@pytest.mark.parametrize("bad", ["negative count", "negative first"])
def test_first_use_order_refuses_bad_counts(bad, backend):
    counts = np.array([2, 0, 1, 5], np.int64)
    first = np.array([4, -1, 0, 9], np.int64)  # a negative first of an unused entry is not read
    if bad == "negative count":
        counts[1] = -1
    else:
        first[3] = -2
    rc, m = CAT_BACKEND(backend).first_use_order(counts, first, np.empty(4, np.int64))
    assert (rc, m) == (native.lib.FD_EINVAL, 0)


@SETTINGS
@given(st.data(), st.sampled_from(STR_TYPES + INT_TYPES), st.integers(0, 12))
def test_add_order_counts_as_lookup_and_add(data, arrow_type, max_ids):
    # fd_cat_add_order (a dictionary's entries and their counts added in first-use order, one call)
    # leaves the table that looking the entries up in that order and adding each one's count by
    # its id leaves -- null entries, entries repeated in the dictionary, a sliced dictionary, a
    # table that grows mid-order (one growth for the rest) and resumes, the cap -- on both
    # backends, into a table already holding keys.
    is_str = arrow_type in STR_TYPES
    elements = (texts.map(str.encode) if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
                else texts) if is_str else st.integers(0, 2**7 - 1)
    entries = data.draw(st.lists(st.none() | elements, min_size=1, max_size=60))
    arr = pa.array(entries, type=arrow_type)
    if data.draw(st.booleans()):
        lo = data.draw(st.integers(0, len(arr) - 1))
        arr = arr.slice(lo, data.draw(st.integers(1, len(arr) - lo)))
    n = len(arr)
    counts = np.array(data.draw(st.lists(st.integers(0, 2**40) | st.just(0), min_size=n, max_size=n)), np.int64)
    first = np.array(data.draw(st.permutations(range(n))), np.int64) * 3
    before = data.draw(pooled(elements, max_len=10))
    used = np.flatnonzero(counts)
    order = used[np.argsort(first[used], kind="stable")]
    view = next(iter_columns(arr))
    kind = "str" if is_str else "int"
    want = CatTable(kind, max_ids, _initial=TINY)
    want.update(pa.array(before, type=arr.type), backend="c")
    ids = want._lookup(CAT_BACKEND("c"), view, order)
    for k, x in zip(order, ids):  # the counts by id, past the cap to other, null entries to null
        slot = {native.lib.FD_CAT_ID_OTHER: 2, native.lib.FD_CAT_ID_NULL: 3}
        if x >= 0:
            want._counts[x] += counts[k]
        else:
            want._meta[slot[int(x)]] += counts[k]
    for be in BACKENDS:
        t = CatTable(kind, max_ids, _initial=TINY)
        t.update(pa.array(before, type=arr.type), backend=be)
        t._add_order(CAT_BACKEND(be), view, np.concatenate([order, [-5]]), order.size, counts)
        assert_same_state(t, want, layout=False)
        assert t.total == len(before) + int(counts.sum())


@pytest.mark.parametrize("bad", ["position", "weight"])
def test_add_order_refuses_before_adding(bad, backend):
    # An order entry outside the dictionary, or a negative count ahead: an error, nothing added.
    t = CatTable("str", _initial=TINY)
    t.update(pa.array(["z"]))
    view = next(iter_columns(pa.array(["a", "b", "c", "d", "e"])))
    order = np.array([0, 1, 3, 2], np.int64)
    w = np.array([1, 2, 3, 4, 5], np.int64)
    if bad == "position":
        order[2] = 5
    else:
        w[2] = -1
    before = table_arrays(t)
    with pytest.raises(InvalidInputError):
        t._add_order(CAT_BACKEND(backend), view, order, order.size, w)
    after = table_arrays(t)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
    assert t.keys() == ["z"]


def test_remembered_dictionary_rewritten_in_place(backend):
    # A service may refill one numpy array as the dictionary of each batch: the table compares
    # each batch's dictionary with its own copy, so new values in the same buffer are new keys.
    vals = np.array([1, 2, 3], np.int64)
    d = pa.array(vals)
    assert d.buffers()[1].address == vals.ctypes.data
    t, want = CatTable("int"), CatTable("int")
    for k in range(4):
        if k >= 2:
            vals[0] += 50
        batch = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int32()), d)
        t.update(batch, backend=backend)
        want.update(batch.dictionary_decode(), backend="c")
        assert t.to_dict() == want.to_dict() and t.keys() == want.keys()
    assert t.to_dict() == {1: 4, 2: 4, 51: 2, 101: 2}


@settings(deadline=None, max_examples=40)
@given(st.data())
def test_count_indices_long_columns_switch_loops(data):
    # Past the first few thousand rows every entry has been seen, and both kernels drop the
    # first-position test (fd_count_indices in chunks of 4096): nulls, out-of-range indices and
    # entries still unseen after that point, with counts carried in, must come out as numpy says.
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    index_type = data.draw(st.sampled_from([pa.int8(), pa.int32(), pa.uint16(), pa.int64()]))
    # Up to 256 entries, a long column is counted in four tables of the kernel's own (fd_cat.c).
    n_bins = data.draw(st.integers(1, 40) | st.integers(250, 260) if index_type != pa.int8() else st.integers(1, 40))
    n = data.draw(st.integers(4097, 20000))
    x = rng.integers(0, n_bins, n)
    late = data.draw(st.integers(0, n - 1))
    if data.draw(st.booleans()) and n_bins > 2:  # an entry that never appears: first[] is sought throughout
        x[x == n_bins - 2] = 0
    if data.draw(st.booleans()):  # an entry first seen only late in the column
        x[x == n_bins - 1] = 0
        x[late] = n_bins - 1
    null = rng.random(n) < data.draw(st.sampled_from([0.0, 0.02, 0.6]))
    if data.draw(st.booleans()):
        x[data.draw(st.integers(late, n - 1))] = n_bins if index_type != pa.int8() or n_bins < 127 else -1
    arr = pa.array(x, index_type, mask=null).slice(data.draw(st.integers(0, 70)))
    bins0 = rng.integers(0, 3, n_bins) * (rng.random(n_bins) < data.draw(st.sampled_from([0.0, 0.5, 1.0])))
    first0 = np.full(n_bins, -7, np.int64)
    bins, first, progress, n_null = count_indices_oracle(arr, n_bins, bins0, first0)
    want_rc = native.lib.FD_EINVAL if progress < len(arr) else native.lib.FD_OK
    v = next(iter_columns(arr))
    for be in BACKENDS:
        got_bins, got_first = bins0.copy(), first0.copy()
        assert count_indices(be, v, got_bins, got_first) == (want_rc, progress, n_null), be
        np.testing.assert_array_equal(got_bins, bins, err_msg=be)
        np.testing.assert_array_equal(got_first, first, err_msg=be)


@pytest.mark.parametrize("offset", [0, 3])
def test_count_indices_out_of_range_inside_a_byte_with_nulls(offset):
    # An out-of-range index in a bitmap byte that holds nulls, past the first-position phase: the
    # progress is its position and the nulls are those before it, as numpy says, on both backends
    # (the numba kernel visits a mixed byte's set bits from a table and counts its nulls at once).
    rng = np.random.default_rng(offset)
    n_bins, n = 5, 6000
    for bit in range(8):
        for first in (None, True):
            x = rng.integers(0, n_bins, n)
            null = rng.random(n) < 0.4
            k = 5000 + bit  # bit `bit` of a bitmap byte (a slice keeps its buffer's bit positions)
            x[k], null[k] = n_bins, False
            arr = pa.array(x, pa.int32(), mask=null).slice(offset)
            bins0 = np.zeros(n_bins, np.int64)
            first0 = np.full(n_bins, -7, np.int64)
            bins, firsts, progress, n_null = count_indices_oracle(arr, n_bins, bins0, first0)
            assert progress == k - offset
            v = next(iter_columns(arr))
            for be in BACKENDS:
                got_bins, got_first = bins0.copy(), first0.copy()
                got = count_indices(be, v, got_bins, got_first if first else None)
                assert got == (native.lib.FD_EINVAL, progress, n_null), (be, bit, first)
                np.testing.assert_array_equal(got_bins, bins, err_msg=be)


@pytest.mark.parametrize("n_bins", [5, 300])
@pytest.mark.parametrize("nulls", [False, True])
def test_count_indices_out_of_range_after_whole_blocks_keeps_their_counts(n_bins, nulls):
    # Long runs of valid blocks are counted 64 at a time (in four tables of the kernel's own for a
    # small dictionary); an out-of-range index after them, in a block of valid values or beside
    # nulls, stops the count with every element before it in bins, as numpy says.
    rng = np.random.default_rng(n_bins)
    n = 20000
    for k in (15001, 15064, 19999):
        x = rng.integers(0, n_bins, n)
        null = np.zeros(n, bool)
        if nulls:
            null[k - 40:k + 40:3] = True
            null[k] = False
        x[k] = n_bins
        arr = pa.array(x, pa.int32(), mask=null if nulls else None)
        bins, first, progress, n_null = count_indices_oracle(arr, n_bins, np.zeros(n_bins, np.int64),
                                                             np.full(n_bins, -7, np.int64))
        assert progress == k
        v = next(iter_columns(arr))
        for be in BACKENDS:
            got = np.zeros(n_bins, np.int64)
            assert count_indices(be, v, got, None) == (native.lib.FD_EINVAL, progress, n_null), be
            np.testing.assert_array_equal(got, bins, err_msg=be)
