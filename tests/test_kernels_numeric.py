"""C == numba == NumPy oracle for the histogram and moments kernels.

Histogram counts and moments counts/min/max must match exactly.  Sum, mean
and m2 are compared with a relative tolerance against an exactly rounded
(math.fsum) oracle: ``RTOL`` times the magnitude scale of the data, because
the kernels sum in blocks of ``FD_MOM_BLOCK`` (4,096) with 16 lane accumulators and merge blocks
with Chan's formula, so their error grows like n * eps * max|x| at worst.
"""
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdrift._native import lib
from fastdrift.adapters.arrow import iter_columns
from fastdrift.errors import InvalidInputError, SchemaError
from fastdrift.kernels.hist import hist_update, make_index
from fastdrift.kernels.moments import empty_moments, moments_merge, moments_update
from fastdrift.kernels.oracles import KERNELS, hist_reference, moments_reference

BACKENDS = ["c", "numba"]
RTOL = 1e-9
DTYPES = ["float64", "float32", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64"]
SETTINGS = settings(deadline=None, max_examples=60,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run_hist(values, edges, backend, index=None):
    index = index or make_index(edges)
    counts = np.zeros(index.n_edges + 1, np.int64)
    specials = np.zeros(2, np.int64)
    for view in iter_columns(values):
        KERNELS["histogram"][backend](view, index, counts, specials)
    return counts, specials


def run_moments(values, backend):
    ints, flts = empty_moments()
    for view in iter_columns(values):
        KERNELS["moments"][backend](view, ints, flts)
    return ints, flts


# ---- strategies -------------------------------------------------------------

def _elements(dtype):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0])
        w = 32 if dt.itemsize == 4 else 64
        return st.one_of(special, st.floats(allow_nan=False, allow_infinity=False, width=w),
                         st.floats(-1e3, 1e3, width=w), st.integers(-5, 5).map(float))
    info = np.iinfo(dt)
    return st.one_of(st.integers(int(info.min), int(info.max)), st.integers(-5, 5).filter(
        lambda v: info.min <= v <= info.max), st.sampled_from([int(info.min), int(info.max)]))


@st.composite
def columns(draw, dtype=None, finite_scale=None):
    dtype = dtype or draw(st.sampled_from(DTYPES))
    n = draw(st.integers(0, 300))
    vals = draw(st.lists(_elements(dtype), min_size=n, max_size=n))
    if finite_scale is not None and np.dtype(dtype).kind == "f":
        vals = [v if not math.isfinite(v) else float(np.clip(v, -finite_scale, finite_scale))
                for v in vals]
    mask = draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    arr = pa.array(np.array(vals, dtype=dtype), mask=None if mask is None else np.array(mask, bool))
    # Slice to a non-zero offset (any residue mod 8) and optionally chunk.
    lo = draw(st.integers(0, min(n, 17)))
    hi = draw(st.integers(lo, n))
    arr = arr.slice(lo, hi - lo)
    n_chunks = draw(st.integers(1, 3))
    if n_chunks == 1:
        return arr
    cuts = sorted(draw(st.lists(st.integers(0, len(arr)), min_size=n_chunks - 1, max_size=n_chunks - 1)))
    bounds = [0, *cuts, len(arr)]
    return pa.chunked_array([arr.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:])], arr.type)


@st.composite
def edge_sets(draw, values=None):
    kind = draw(st.sampled_from(["uniform", "arbitrary", "near", "single"]))
    if kind == "single":
        return np.array([draw(st.floats(-1e6, 1e6))])
    if kind == "uniform":
        a = draw(st.floats(-1e6, 1e6))
        w = draw(st.sampled_from([1e-3, 0.25, 1.0, 7.0, 1e5]))
        n = draw(st.integers(2, 130))
        return np.linspace(a, a + w * (n - 1), n)
    pool = draw(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=120))
    if kind == "near" and values is not None:
        fin = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        # nextafter(+-DBL_MAX) overflows to +-inf, dropped below
        with np.errstate(over="ignore"):
            for v in fin[:40]:
                pool += [v, float(np.nextafter(v, np.inf)), float(np.nextafter(v, -np.inf))]
    e = np.unique(np.array(pool, dtype=np.float64))
    return e[np.isfinite(e)] if e.size else np.array([0.0])


# ---- histogram ---------------------------------------------------------------

@SETTINGS
@given(st.data())
def test_hist_backends_equal_oracle(data):
    col = data.draw(columns())
    values = col.to_pylist()
    edges = data.draw(edge_sets(values))
    want_c, want_s = hist_reference(col, edges)
    for arith in (False, True):
        index = make_index(edges, arithmetic_uniform=arith)
        for backend in BACKENDS:
            counts, specials = run_hist(col, edges, backend, index)
            np.testing.assert_array_equal(counts, want_c, err_msg=f"{backend} {index}")
            np.testing.assert_array_equal(specials, want_s, err_msg=backend)


@SETTINGS
@given(st.data())
def test_hist_values_on_edges(data):
    # Every value is an edge or its neighbouring double: the worst case for
    # both the uniform guess and the table's conservative starts.
    edges = data.draw(edge_sets())
    picks = data.draw(st.lists(st.integers(0, edges.size - 1), min_size=1, max_size=200))
    nudge = data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=len(picks), max_size=len(picks)))
    with np.errstate(all="ignore"):  # nextafter(DBL_MAX, inf) overflows, on purpose
        vals = np.array([edges[p] if d == 0 else np.nextafter(edges[p], d * np.inf)
                         for p, d in zip(picks, nudge)])
    vals = np.concatenate([vals, [np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324]])
    col = pa.array(vals)
    want = hist_reference(col, edges)
    for backend in BACKENDS:
        got = run_hist(col, edges, backend)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("edges", [
    np.array([0.0]), np.array([-1e308, 1e308]), np.array([-1e308, 0.0, 1e308]),
    np.array([0.0, 5e-324, 1e-323]), np.linspace(0, 1, 11), np.linspace(-1e300, 1e300, 7),
    np.array([-5e-324, 0.0, 5e-324]),  # uniform; halving the range rounds it to 0
    np.array([1.0, 1.0 + 2.2e-16, 2.0, 1e10]),
    np.concatenate([np.linspace(0, 1, 50), [1e9]]),  # one outlier edge: many probes
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_hist_extreme_edges(edges, dtype):
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "f":
        with np.errstate(all="ignore"):  # float32 overflow to +-inf is wanted here
            x = np.concatenate([rng.standard_normal(500) * 10.0 ** rng.integers(-300, 300, 500),
                                edges, [np.nan, np.inf, -np.inf, 0.0]]).astype(dtype)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, 600, dtype=dtype, endpoint=True)
    col = pa.array(x, mask=rng.random(x.size) < 0.2).slice(3)
    want = hist_reference(col, edges)
    for arith in (False, True):
        index = make_index(edges, arithmetic_uniform=arith)
        for backend in BACKENDS:
            got = run_hist(col, edges, backend, index)
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"{backend} {index}")
            np.testing.assert_array_equal(got[1], want[1], err_msg=backend)


def test_hist_index_paths():
    assert make_index(np.linspace(-3, 3, 101), arithmetic_uniform=True).uniform
    ar = make_index(np.linspace(-3, 3, 101))
    assert ar.arith and not ar.uniform and ar.n_probe == 1  # the default: arith (+ one-probe table)
    table = make_index(np.linspace(-3, 3, 101), arith=False)
    assert not table.uniform and not table.arith and table.n_probe == 1
    q = np.quantile(np.random.default_rng(0).standard_normal(10_000), np.linspace(0.01, 0.99, 99))
    ix = make_index(q)
    assert not ix.uniform and ix.n_probe <= 2
    assert make_index([1.0]).n_edges == 1


@pytest.mark.parametrize("bad", [[], [np.nan], [0.0, np.inf], [1.0, 1.0], [2.0, 1.0], [[1.0]], ["a"]])
def test_make_index_rejects(bad):
    with pytest.raises(InvalidInputError):
        make_index(bad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hist_schema_and_null_columns(backend):
    index = make_index([0.0, 1.0])
    counts, specials = np.zeros(3, np.int64), np.zeros(2, np.int64)
    view = next(iter_columns(pa.array(["a", "b"]), name="city"))
    with pytest.raises(SchemaError, match="city"):
        hist_update(view, index, counts, specials, backend)
    view = next(iter_columns(pa.nulls(7)))
    hist_update(view, index, counts, specials, backend)
    assert specials.tolist() == [7, 0] and counts.sum() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_hist_large(backend):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(1_000_000)
    x[rng.integers(0, x.size, 1000)] = np.nan
    col = pa.array(x, mask=rng.random(x.size) < 0.01).slice(13)
    for edges in [np.linspace(-3, 3, 64), np.quantile(x[~np.isnan(x)], np.linspace(0.01, 0.99, 99))]:
        got = run_hist(col, edges, backend)
        want = hist_reference(col, edges)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# ---- the numba run path (hist_run: chunks without nulls, more than CMP_EDGES edges) --------------

RUN_LENGTHS = [0, 1, 2, 3, 5, 255, 256, 257, 511, 513, 1023, 1024, 1025, 2047, 2048, 2049, 3075]
RUN_INDEXES = ["arith", "uniform", "p1", "pn", "many"]
DBL_MAX = np.finfo(np.float64).max


def _run_index(kind, rng, sample):
    """An index of each path of hist_run, over edges drawn from ``sample`` (float64)."""
    fin = np.unique(sample)
    if kind in ("arith", "uniform"):
        lo, hi = np.quantile(sample, [0.01, 0.99])
        e = np.linspace(lo, hi, int(rng.integers(17, 200)))
        index = make_index(e, arithmetic_uniform=kind == "uniform")
        assert index.arith == (kind == "arith") and index.uniform == (kind == "uniform"), index
        return index
    n = {"p1": 99, "pn": 99, "many": 700}[kind]
    e = np.unique(np.quantile(fin, np.linspace(0, 1, n + 2)[1:-1])) if fin.size > 40 else np.array([])
    if e.size <= 16:  # too few distinct values: quantiles of normal values instead
        e = np.unique(np.quantile(rng.standard_normal(10_000), np.linspace(0, 1, n + 2)[1:-1]))
    index = make_index(e, arith=False, max_table=64 if kind == "pn" else 1 << 16)
    assert not index.arith and not index.uniform, index
    assert index.n_probe > 1 or kind != "pn", index
    return index


def _run_sample(shape, n, rng):
    """n finite values: normal, skewed (lognormal sigma 2) or integer-valued."""
    return {"normal": lambda: rng.standard_normal(n) * 3, "skewed": lambda: rng.lognormal(0.0, 2.0, n),
            "integer": lambda: np.round(rng.standard_normal(n) * 30)}[shape]()


def _run_values(dtype, n, rng, shape, edges):
    """n values of dtype from _run_sample, with a share on an edge or one ulp either side of it,
    and for floats the specials."""
    dt = np.dtype(dtype)
    base = _run_sample(shape, n, rng)
    k = rng.integers(0, max(n, 1), n // 3)
    with np.errstate(over="ignore"):
        near = rng.choice(np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]),
                          k.size)
    base[k] = near
    if dt.kind == "f":
        k = rng.integers(0, max(n, 1), n // 20)
        base[k] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, DBL_MAX, -DBL_MAX, 5e-324], k.size)
        with np.errstate(over="ignore"):
            return base.astype(dt)
    info = np.iinfo(dt)
    with np.errstate(invalid="ignore"):
        v = np.clip(np.nan_to_num(np.round(base)), float(info.min), float(info.max))
    out = v.astype(dt)
    k = rng.integers(0, max(n, 1), n // 50)
    out[k] = rng.choice(np.array([info.min, info.max], dtype=dt), k.size)
    return out


def _assert_run_path_equal(arr, index):
    want = hist_reference(arr, index.edges)
    got = {}
    for backend in BACKENDS:
        counts, specials = np.zeros(index.n_edges + 1, np.int64), np.zeros(2, np.int64)
        for view in iter_columns(arr):
            KERNELS["histogram"][backend](view, index, counts, specials)
        got[backend] = counts, specials
    for backend, (counts, specials) in got.items():
        np.testing.assert_array_equal(counts, want[0], err_msg=f"{backend} {index} {arr.type} n={len(arr)}")
        np.testing.assert_array_equal(specials, want[1], err_msg=f"{backend} {index}")


@SETTINGS
@given(st.data())
def test_hist_run_path_equals_c_and_oracle(data):
    # hist_run against the C kernel and NumPy on every dtype and index path: lengths around the
    # blocks (numba's 256 and 1,024, C's 1,024) and the 4-way round-robin, Arrow offsets, values
    # on and one ulp beside the edges, NaN, +-inf, +-DBL_MAX, skewed and integer-valued data,
    # without and with nulls.
    dtype = data.draw(st.sampled_from(DTYPES))
    kind = data.draw(st.sampled_from(RUN_INDEXES))
    shape = data.draw(st.sampled_from(["normal", "skewed", "integer"]))
    n = data.draw(st.one_of(st.sampled_from(RUN_LENGTHS), st.integers(0, 2200)))
    off = data.draw(st.integers(0, 17))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    index = _run_index(kind, rng, _run_sample(shape, 4000, rng))
    x = _run_values(dtype, n + off, rng, shape, index.edges)
    # nulls: each block of 1,024 with one has its valid values copied together first
    nulls = data.draw(st.sampled_from([0.0, 0.0, 0.001, 0.3, 1.0]))
    mask = rng.random(x.size) < nulls if nulls else None
    _assert_run_path_equal(pa.array(x, mask=mask).slice(off), index)


@pytest.mark.parametrize("kind", RUN_INDEXES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hist_run_path_block_lengths(kind, dtype):
    rng = np.random.default_rng(DTYPES.index(dtype) * 10 + RUN_INDEXES.index(kind))
    index = _run_index(kind, rng, _run_sample("normal", 4000, rng))
    x = _run_values(dtype, 3100, rng, "integer" if dtype[0] in "iu" else "normal", index.edges)
    for n in RUN_LENGTHS:
        for off in (0, 1, 7):
            if n + off <= x.size:
                _assert_run_path_equal(pa.array(x[: n + off]).slice(off), index)


@pytest.mark.parametrize("dtype", ["float32", "int8", "int64", "uint64"])
@pytest.mark.parametrize("piece", [1000, 997])
def test_hist_pieces(monkeypatch, dtype, piece):
    # Other dtypes than float64 reach the numba kernels (float64 only) converted a piece at a
    # time: chunks of several pieces and a partial last one, at offsets, with and without nulls
    # (a piece's bitmap sliced at its first byte, its values placed at the same bit), on the run
    # paths and the per-value paths, equal the C kernel and NumPy.
    from fastdrift import kernels
    monkeypatch.setattr(kernels, "FLOAT64_PIECE", piece)
    rng = np.random.default_rng(8)
    for kind in ("arith", "uniform", "p1", "pn"):
        index = _run_index(kind, rng, _run_sample("integer", 4000, rng))
        x = _run_values(dtype, 4100, rng, "integer", index.edges)
        mask = rng.random(x.size) < 0.2
        for n, off in ((999, 0), (1000, 1), (1001, 0), (2001, 3), (3999, 17), (4000, 100)):
            _assert_run_path_equal(pa.array(x[: n + off]).slice(off), index)
            _assert_run_path_equal(pa.array(x[: n + off], mask=mask[: n + off]).slice(off), index)
    cmp = make_index(np.linspace(-20.0, 20.0, 9))  # at most CMP_EDGES edges: hist_cmp
    x = _run_values(dtype, 4100, rng, "integer", cmp.edges)
    for n, off in ((1001, 0), (3999, 5)):
        _assert_run_path_equal(pa.array(x[: n + off]).slice(off), cmp)
        _assert_run_path_equal(pa.array(x[: n + off], mask=mask[: n + off]).slice(off), cmp)


def test_hist_run_path_dispatch(monkeypatch):
    # The numba backend takes hist_ma (arith indexes whose ma_plan holds), hist_arith (other arith
    # indexes) or hist_run exactly for chunks with more than CMP_EDGES edges, with or without
    # nulls, with the mode of the index's path.
    from fastdrift.kernels import numba_hist as nh
    modes = []
    real, real_arith, real_ma = nh.hist_run, nh.hist_arith, nh.hist_ma

    def spy(*args):
        modes.append(args[11])
        return real(*args)

    def spy_arith(*args):
        modes.append(nh.M_ARITH)
        return real_arith(*args)

    def spy_ma(*args):
        modes.append("ma")
        return real_ma(*args)

    monkeypatch.setattr(nh, "hist_run", spy)
    monkeypatch.setattr(nh, "hist_arith", spy_arith)
    monkeypatch.setattr(nh, "hist_ma", spy_ma)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3000)
    q = np.quantile(x, np.linspace(0, 1, 101)[1:-1])
    loose = np.linspace(-3, 3, 40)
    loose[20] -= 2.0**-15 * (6 / 39)  # within the arith path's tolerance, not within MA_TOL
    assert make_index(loose).arith and make_index(loose).ma_plan is None
    for index, mode in ((make_index(np.linspace(-3, 3, 40)), "ma"), (make_index(loose), nh.M_ARITH),
                        (make_index(np.linspace(-3, 3, 40), arithmetic_uniform=True), nh.M_UNIFORM),
                        (make_index(q), nh.M_P1), (make_index(q, max_table=64), nh.M_PN)):
        modes.clear()
        run_hist(pa.array(x), None, "numba", index)
        assert modes == [mode], index
        modes.clear()
        run_hist(pa.array(x, mask=rng.random(x.size) < 0.01), None, "numba", index)
        assert modes == [mode], index
    modes.clear()
    run_hist(pa.array(x), np.linspace(-3, 3, 16), "numba")
    assert modes == []


# ---- moments ----------------------------------------------------------------

def assert_moments(got, want, scale):
    gi, gf = got
    wi, wf = want
    np.testing.assert_array_equal(gi, wi)
    assert gf[0] == wf[0] and gf[1] == wf[1]
    n = max(int(wi[0]), 1)
    tol_sum = RTOL * n * scale + 1e-300
    assert abs(gf[2] - wf[2]) <= tol_sum, (gf, wf)
    assert abs(gf[3] - wf[3]) <= tol_sum / n, (gf, wf)
    assert abs(gf[4] - wf[4]) <= RTOL * n * scale * scale + RTOL * abs(wf[4]) + 1e-300, (gf, wf)


@SETTINGS
@given(st.data())
def test_moments_backends_equal_oracle(data):
    # Magnitudes kept below 1e150 so that squared deviations stay finite.
    col = data.draw(columns(finite_scale=1e150))
    want = moments_reference(col)
    fin = want[0][0]
    scale = max(abs(want[1][0]), abs(want[1][1])) if fin else 0.0
    for backend in BACKENDS:
        assert_moments(run_moments(col, backend), want, scale)


@pytest.mark.parametrize("backend", BACKENDS)
def test_moments_all_negative(backend):
    col = pa.array(-np.arange(1.0, 3001.0))
    ints, flts = run_moments(col, backend)
    assert flts[1] == -1.0 and flts[0] == -3000.0 and ints[0] == 3000


@pytest.mark.parametrize("backend", BACKENDS)
def test_moments_merge_equals_one_pass(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(10_000) * 1e3 + 1e6
    x[::97] = np.nan
    x[::101] = np.inf
    col = pa.array(x, mask=rng.random(x.size) < 0.05)
    whole = run_moments(col, backend)
    a = run_moments(col.slice(0, 3333), backend)
    b = run_moments(col.slice(3333), backend)
    moments_merge(a[0], a[1], b[0], b[1])
    np.testing.assert_array_equal(a[0], whole[0])
    assert a[1][0] == whole[1][0] and a[1][1] == whole[1][1]
    np.testing.assert_allclose(a[1][2:], whole[1][2:], rtol=1e-12)
    assert_moments(a, moments_reference(col), 1e6 + 1e4)
    # Updating a non-empty state directly must agree too.
    ints, flts = run_moments(col.slice(0, 3333), backend)
    for view in iter_columns(col.slice(3333)):
        moments_update(view, ints, flts, backend)
    np.testing.assert_array_equal(ints, whole[0])
    np.testing.assert_allclose(flts, whole[1], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_moments_large_and_empty(backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(1_000_000) + 1e4
    assert_moments(run_moments(pa.array(x).slice(5), backend), moments_reference(pa.array(x).slice(5)), 1e4 + 10)
    ints, flts = run_moments(pa.array([], pa.float64()), backend)
    np.testing.assert_array_equal(ints, 0)
    assert flts[0] == np.inf and flts[1] == -np.inf and flts[4] == 0.0
    ints, flts = run_moments(pa.nulls(5), backend)
    assert ints.tolist() == [0, 5, 0, 0, 0]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n_blocks=st.integers(1, 5), offset=st.integers(0, 1030), nulls=st.booleans())
def test_moments_finite_blocks_read_in_place_bit_identical(data, n_blocks, offset, nulls):
    # The C kernel reduces an all-finite, null-free float64 block of B values in place, every
    # other block through the compacted copy; the numba twin always copies.  Mixing both kinds of
    # block (a NaN, an inf or a null spoils one), at any array offset, the states are identical
    # bit for bit, and so are the fused grid counts and selection.
    from fastdrift.kernels import quantile as kq
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    B = MOM_BLOCK
    n = n_blocks * B + data.draw(st.integers(0, B - 1))
    x = rng.normal(data.draw(st.sampled_from([0.0, 1e6, -3.0])), 10.0, n + offset)
    x[rng.random(x.size) < 0.3] = -0.0
    for b in data.draw(st.lists(st.integers(0, n_blocks), max_size=3)):  # spoil some blocks
        x[offset + b * B + data.draw(st.integers(0, B - 1)) if offset + b * B < x.size - (B - 1) else -1] = \
            data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    mask = rng.random(x.size) < 0.001 if nulls else None
    arr = pa.array(x, mask=mask).slice(offset)
    c_state, nb_state = run_moments(arr, "c"), run_moments(arr, "numba")
    np.testing.assert_array_equal(c_state[0], nb_state[0])
    np.testing.assert_array_equal(c_state[1].view(np.int64), nb_state[1].view(np.int64))
    fin = x[offset:][np.isfinite(x[offset:])]
    plan = kq.grid_plan(fin.size, float(fin.min()), float(fin.max()))
    flags = (rng.random(plan.n_cells) < 0.2).astype(np.uint8)
    got = []
    for backend in BACKENDS:
        ints, flts = empty_moments()
        counts = np.zeros(plan.n_cells, np.int64)
        sel = kq.moments_count_select(list(iter_columns(arr)), ints, flts, plan, counts, flags, backend=backend)
        got.append((ints, flts.view(np.int64), counts, sel))
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(0, 5000), offset=st.integers(0, 70), nulls=st.booleans(),
       dtype=st.sampled_from(["float64", "float32", "int32", "uint8"]))
def test_moments_grid_cells_against_numpy(data, n, offset, nulls, dtype):
    # fd_moments_grid_cells_update and its numba twin against numpy: per cell, the record of its
    # count, the sum added in column order (np.add.at adds in index order: the same sequence of
    # roundings), the minimum and maximum; the digest cells' values and the held cells' values in
    # column order; the moments as moments_update leaves them.  Bit for bit, on both backends (the
    # SIMD paths: tests/test_simd.py, test_moments_grid_cells_paths_bit_identical).
    from fastdrift.kernels import quantile as kq
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(data.draw(st.sampled_from([0.0, 50.0, -3.0])), 20.0, n + offset)
    if dtype != "float64":
        x = np.clip(x, 0, 255) if dtype == "uint8" else x
    else:
        x[rng.random(x.size) < 0.05] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 7.0]))
    arr = pa.array(x.astype(dtype), mask=rng.random(x.size) < 0.1 if nulls else None).slice(offset)
    v = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    fin = v[np.isfinite(v)]
    n_cells = data.draw(st.sampled_from([1, 7, 64, 1000]))
    lo, hi = data.draw(st.sampled_from([(-30.0, 30.0), (0.0, 100.0), (-1e3, -999.0)]))
    plan = kq.grid_plan(64 * n_cells, lo, hi)
    flags = rng.integers(0, 4, plan.n_cells).astype(np.uint8)  # held 1, digest 2, both 3
    t = np.clip((fin - plan.lo) * plan.inv, 0.0, plan.n_cells - 1.0)
    cells = np.where(np.isnan(t), 0, t).astype(np.int64)
    want = np.zeros((plan.n_cells, 4))
    want[:, 0] = np.bincount(cells, minlength=plan.n_cells)
    want[:, 2], want[:, 3] = np.inf, -np.inf
    np.add.at(want[:, 1], cells, fin)
    np.minimum.at(want[:, 2], cells, fin)
    np.maximum.at(want[:, 3], cells, fin)
    got = []
    for backend in BACKENDS:
        ints, flts = empty_moments()
        stats = kq.empty_cells(plan.n_cells)
        held, tail = kq.moments_count_select_cells(list(iter_columns(arr)), ints, flts, plan, flags, stats,
                                                   backend=backend)
        np.testing.assert_array_equal(stats.view(np.int64), want.view(np.int64))
        np.testing.assert_array_equal(tail, fin[(flags[cells] & 2) != 0])
        np.testing.assert_array_equal(held, fin[(flags[cells] & 1) != 0])
        mi, mf = empty_moments()
        for view in iter_columns(arr):
            moments_update(view, mi, mf, backend)
        np.testing.assert_array_equal(ints, mi)
        np.testing.assert_array_equal(flts.view(np.int64), mf.view(np.int64))
        got.append(stats)
    np.testing.assert_array_equal(got[0].view(np.int64), got[1].view(np.int64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_moments_grid_cells_refuses_bad_arguments(backend):
    from fastdrift.kernels import quantile as kq
    plan = kq.grid_plan(640, 0.0, 1.0)
    ints, flts = empty_moments()
    flags = np.zeros(plan.n_cells, np.uint8)
    for bad in (np.zeros((plan.n_cells, 3)), np.zeros(plan.n_cells * 4), np.zeros((plan.n_cells, 4), np.float32),
                kq.empty_cells(plan.n_cells + 1)):
        before = bad.copy()
        with pytest.raises(InvalidInputError, match="cells"):
            kq.moments_count_select_cells(list(iter_columns(np.ones(3))), ints, flts, plan, flags, bad,
                                          backend=backend)
        np.testing.assert_array_equal(bad, before)  # untouched
    assert ints[0] == 0  # nothing counted


# ---- one source of codes ------------------------------------------------------------

def test_codes_are_the_headers():
    """Every FD_* code Python holds equals kernels/fastdrift.h's #define: fastdrift.kernels.native's
    (read from the compiled module), the numba modules' (imported from native and frozen into their
    compiled code, whose statuses the C == numba tests compare) and the adapters' column types."""
    import importlib
    import pathlib
    import re

    from fastdrift.adapters import arrow
    from fastdrift.kernels import native

    header = (pathlib.Path(__file__).resolve().parents[1] / "kernels" / "fastdrift.h").read_text()
    defines = {m[1]: int(m[2]) for m in re.finditer(r"^#define\s+(FD_[A-Z0-9_]+)\s+(-?\d+)\b", header, re.M)}
    assert {"FD_OK", "FD_EGROW", "FD_U64", "FD_CAT_LOAD_DEN", "FD_TD_INTS_LEN"} <= defines.keys()
    held = {("native", k): v for k, v in vars(native).items() if k.startswith("FD_")}
    for name in ("numba_hist", "numba_moments", "numba_select", "numba_cat"):
        mod = importlib.import_module(f"fastdrift.kernels.{name}")
        held.update({(name, k): v for k, v in vars(mod).items() if k.startswith("FD_")})
    assert ("numba_cat", "FD_EGROW") in held and ("numba_select", "FD_EGROW") in held
    for (where, k), v in held.items():
        assert v == defines[k], (where, k)
    names = ["F64", "F32", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64"]
    dtypes = ["float64", "float32", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    assert {np.dtype(d): defines[f"FD_{n}"] for d, n in zip(dtypes, names)} == arrow.NUMERIC_TYPE_CODES
    assert (arrow.FD_BOOL, arrow.FD_STR32, arrow.FD_STR64) == (defines["FD_BOOL"], defines["FD_STR32"],
                                                                 defines["FD_STR64"])


# ---- the backend interface and the shared prologue --------------------------------

def test_family_builds_one_object_per_backend_on_first_use():
    from fastdrift.kernels import Family, set_backend
    built = []
    fam = Family("histogram", c=lambda: built.append("c") or "C", numba=lambda: built.append("numba") or "N")
    assert built == []
    assert fam("c") == fam("c") == "C" and built == ["c"]
    assert fam() == "C"  # DEFAULT_BACKENDS
    set_backend("numba")
    try:
        assert fam() == "N"
    finally:
        set_backend(None)
    assert built == ["c", "numba"]
    with pytest.raises(InvalidInputError, match="unknown backend 'gpu'"):
        fam("gpu")
    with pytest.raises(InvalidInputError, match="unknown backend 'gpu'"):
        hist_update(next(iter_columns(np.ones(3))), make_index([0.0]), np.zeros(2, np.int64), np.zeros(2, np.int64),
                    backend="gpu")


def test_backend_objects_of_a_family_have_the_same_methods():
    from fastdrift.kernels.cat import CAT
    from fastdrift.kernels.hist import HIST
    from fastdrift.kernels.moments import MOMENTS
    from fastdrift.kernels.quantile import GRID
    from fastdrift.kernels.seg import SEG

    def methods(obj):
        return {n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n))}

    for family, want in ((HIST, {"update"}), (MOMENTS, {"update"}),
                         (CAT, {"run", "rehash", "count_indices", "bool_count", "seg_count", "add_order", "first_use_order"}),
                         (GRID, {"count", "select", "count_select", "moments_count_select", "moments_count_select_cells"}),
                         (SEG, {"scatter", "count_indices", "hist_parts", "moments_parts", "positions", "scatter_to",
                                "short_keys"})):
        assert methods(family("c")) == methods(family("numba")) == want, family.name


@pytest.mark.parametrize("backend", BACKENDS)
def test_prologue_refuses_bad_state_arrays(backend):
    from fastdrift.kernels import check_out, numeric_values
    view = next(iter_columns(np.ones(4)))
    index = make_index([0.0, 2.0])
    ok_c, ok_s = np.zeros(3, np.int64), np.zeros(2, np.int64)
    for counts, specials in ((np.zeros(4, np.int64), ok_s), (np.zeros(3, np.int32), ok_s), (ok_c, np.zeros(3, np.int64)),
                             (np.zeros(6, np.int64)[::2], ok_s), ([0, 0, 0], ok_s)):
        with pytest.raises(InvalidInputError, match="must be a writable contiguous int64 array"):
            hist_update(view, index, counts, specials, backend)
    ro = np.zeros(5, np.int64)
    ro.flags.writeable = False
    with pytest.raises(InvalidInputError, match="ints must be"):
        moments_update(view, ro, np.zeros(5), backend)
    with pytest.raises(InvalidInputError, match="flts must be a writable contiguous float64 array of 5 entries"):
        moments_update(view, np.zeros(5, np.int64), np.zeros(4), backend)
    check_out(ok_c, np.int64, 3, "counts")
    nulls = np.zeros(2, np.int64)
    assert numeric_values(view, "x needs", nulls, 1) and not numeric_values(next(iter_columns(pa.nulls(3))), "x", nulls, 1)
    assert nulls.tolist() == [0, 3]
    assert not numeric_values(next(iter_columns(pa.nulls(3))), "x")  # skipped, counted nowhere
    with pytest.raises(SchemaError, match=r"column 'b': moments need numeric values, got bool"):
        moments_update(next(iter_columns(pa.array([True]), name="b")), *empty_moments(), backend)


@pytest.mark.parametrize("dtype", ["float32", "int16", "int64", "uint64"])
def test_moments_pieces_bit_identical(monkeypatch, dtype):
    # The numba twin (float64 entries only) takes other dtypes converted a piece at a time; pieces
    # are whole blocks of B values, so the blocks fall as in the chunk and the states equal the
    # C kernel's bit for bit: several pieces and a partial last one, at offsets, with and without nulls.
    from fastdrift import kernels
    B = MOM_BLOCK
    monkeypatch.setattr(kernels, "FLOAT64_PIECE", 2 * B)
    rng = np.random.default_rng(11)
    x = _run_values(dtype, 8 * B + 200, rng, "integer" if dtype[0] in "iu" else "normal", np.array([0.0]))
    mask = rng.random(x.size) < 0.1
    for n, off in ((2 * B - 1, 0), (2 * B, 3), (4 * B + 1, 9), (8 * B - 192, 100)):
        for m in (None, mask[: n + off]):
            arr = pa.array(x[: n + off], mask=m).slice(off)
            c_state, nb_state = run_moments(arr, "c"), run_moments(arr, "numba")
            np.testing.assert_array_equal(c_state[0], nb_state[0])
            np.testing.assert_array_equal(c_state[1].view(np.int64), nb_state[1].view(np.int64))


MOM_BLOCK = lib.FD_MOM_BLOCK


def test_moments_block_is_the_twins():
    # Sums run within a block and blocks merge: C and the numba twin must cut the same blocks, and
    # a block must hold whole pieces of the converted dtypes and whole bitmap bytes.
    from fastdrift import kernels
    from fastdrift.kernels import numba_moments
    assert numba_moments._BLOCK == MOM_BLOCK
    assert MOM_BLOCK % 8 == 0 and kernels.FLOAT64_PIECE % MOM_BLOCK == 0
