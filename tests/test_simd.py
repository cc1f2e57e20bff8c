"""The SIMD paths of the C kernels (scalar, AVX2, AVX-512): each forced in turn, bit for bit equal
to each other, to the numba twin and to the NumPy oracles, on inputs that reach every tail length
(0..200 and longer), every alignment (array offsets 0..63 over 64-byte aligned Arrow buffers),
nulls, NaN, +-inf and values exactly on (and one ulp beside) the histogram edges."""
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdrift._native import ffi, lib
from fastdrift.adapters.arrow import iter_columns
from fastdrift.errors import InvalidInputError
from fastdrift.kernels import native
from fastdrift.kernels.hist import make_index
from fastdrift.kernels.moments import empty_moments
from fastdrift.kernels.oracles import KERNELS, hist_reference, moments_reference
from fastdrift.kernels.tdigest import sort_values
from fastdrift.sketches.tdigest import TDigest

PATHS = native.simd_paths()
SETTINGS = settings(deadline=None, max_examples=80,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MOM_BLOCK = lib.FD_MOM_BLOCK  # values a block of the moments kernel


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return set(next((ln.split(":", 1)[1].split() for ln in fh if ln.startswith("flags")), []))
    except OSError:
        return set()


@pytest.fixture(scope="module")
def restore_path():
    before = native.simd_path()
    yield
    native._select_simd(before)


def _each_path(fn):
    """fn() on every SIMD path this machine runs, in order: {path: result}."""
    out = {}
    for p in PATHS:
        assert native._select_simd(p) == p == native.simd_path()
        out[p] = fn()
    return out


# ---- the knob ---------------------------------------------------------------------------------

def test_paths_match_the_cpu():
    # /proc/cpuinfo (the kernel's view of CPUID) is the oracle for what this machine runs.
    flags = _cpu_flags()
    assert PATHS[0] == "scalar"
    if not flags:
        assert native.simd_path() in PATHS
        return
    want = ["scalar"]
    if "avx2" in flags:
        want.append("avx2")
        if {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags:
            want.append("avx512")
    assert list(PATHS) == want
    if os.environ.get("FASTDRIFT_SIMD", "auto") in ("", "auto"):
        assert native.simd_path() == want[-1]  # the best path by default


def test_select_path_and_errors(restore_path):
    for p in PATHS:
        assert native._select_simd(p) == p
        assert native.simd_path() == p
    assert native._select_simd("auto") == PATHS[-1]
    with pytest.raises(InvalidInputError, match="not a SIMD path"):
        native._select_simd("sse9")
    assert native.simd_path() == PATHS[-1]  # unchanged by the bad request
    if "avx512" not in PATHS:
        with pytest.raises(InvalidInputError, match="cannot run"):
            native._select_simd("avx512")


@pytest.mark.parametrize("value, expect", [("scalar", "scalar"), ("AVX2", "avx2"), ("", None),
                                           ("bogus", "error")])
def test_env_var_read_at_load(value, expect):
    env = dict(os.environ, FASTDRIFT_SIMD=value)
    code = "from fastdrift.kernels.native import simd_path; print(simd_path())"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if expect == "error":
        assert r.returncode != 0 and "FASTDRIFT_SIMD='bogus' is not a SIMD path" in r.stderr
    elif expect is None or expect in PATHS:
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == (expect or PATHS[-1])
    else:  # a path this CPU cannot run: a clear error, not a silent fallback
        assert r.returncode != 0 and "cannot run" in r.stderr


def test_perf_environment_records_the_path():
    from fastdrift.perf import environment
    assert environment()["simd"] == native.simd_path()


# ---- inputs -----------------------------------------------------------------------------------

def _edges(kind, rng):
    if kind == "uniform":
        return np.linspace(-2.0, 2.0, 21)
    if kind == "one":
        return np.array([0.25])
    if kind == "quantile":
        return np.quantile(rng.standard_normal(4000), np.linspace(0, 1, 11)[1:-1])
    return np.unique(rng.standard_normal(600))  # "many": a table with several probes


def _index(kind, edges):
    if kind == "uniform-arith":
        return make_index(edges, arithmetic_uniform=True)
    if kind == "uniform-table":
        return make_index(edges, arith=False)
    if kind == "many":
        return make_index(edges, max_table=64)  # probes > 3: the general probe loop
    return make_index(edges)


@st.composite
def columns(draw, edges=None, huge=1e308):
    """(pa.Array sliced at an offset 0..63, float64 values incl. edge hits, the source array)."""
    offset = draw(st.integers(0, 63))
    n = draw(st.one_of(st.integers(0, 200), st.integers(201, 5000)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(offset + n) * draw(st.sampled_from([0.5, 2.0, 1e3]))
    if edges is not None and x.size:
        k = rng.integers(0, x.size, max(1, x.size // 5))
        e = rng.choice(edges, k.size)
        x[k] = np.where(rng.random(k.size) < 0.5, e, np.nextafter(e, rng.choice([-np.inf, np.inf], k.size)))
    if x.size and draw(st.booleans()):
        k = rng.integers(0, x.size, max(1, x.size // 50))
        x[k] = rng.choice([np.nan, np.inf, -np.inf, huge, -huge, -0.0], k.size)
    mask = None
    if draw(st.booleans()):
        mask = rng.random(x.size) < draw(st.sampled_from([0.01, 0.3, 0.9]))
    return pa.array(x, mask=mask).slice(offset)


def _hist(arr, index, backend):
    counts, specials = np.zeros(index.n_edges + 1, np.int64), np.zeros(2, np.int64)
    for view in iter_columns(arr):
        KERNELS["histogram"][backend](view, index, counts, specials)
    return counts, specials


def _assert_hist_everywhere(arr, index, edges):
    """Every SIMD path and the numba twin count arr as NumPy does."""
    want = hist_reference(arr, edges)
    for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
        np.testing.assert_array_equal(counts, want[0], err_msg=p)
        np.testing.assert_array_equal(specials, want[1], err_msg=p)
    nb = _hist(arr, index, "numba")
    np.testing.assert_array_equal(nb[0], want[0])
    np.testing.assert_array_equal(nb[1], want[1])


def _moments(arr, backend):
    ints, flts = empty_moments()
    for view in iter_columns(arr):
        KERNELS["moments"][backend](view, ints, flts)
    return ints, flts


# ---- histogram --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["uniform", "uniform-table", "uniform-arith", "one", "quantile", "many"])
@SETTINGS
@given(data=st.data())
def test_hist_paths_bit_identical(restore_path, kind, data):
    edges = _edges(kind.split("-")[0], np.random.default_rng(7))
    index = _index(kind, edges)
    arr = data.draw(columns(edges))
    got = _each_path(lambda: _hist(arr, index, "c"))
    want = hist_reference(arr, edges)
    nb = _hist(arr, index, "numba")
    for p, (counts, specials) in got.items():
        np.testing.assert_array_equal(counts, want[0], err_msg=p)
        np.testing.assert_array_equal(specials, want[1], err_msg=p)
        np.testing.assert_array_equal(counts, nb[0], err_msg=p)
        np.testing.assert_array_equal(specials, nb[1], err_msg=p)


ARITH_EDGES = [
    np.linspace(-4.0, 4.0, 101),
    np.linspace(0.0, 1.0, 3),                          # +-0 at the first edge
    np.linspace(-1e300, 1e300, 7),                     # huge range (hi - lo overflows)
    np.linspace(1.0, 1.0 + 64 * 2.0**-52, 65),         # edges one ulp apart... of a wider width
    np.linspace(-1e-300, 1e-300, 5),                   # 0 an edge; subnormal values beside it
    np.linspace(-3.0, 3.0, 1001) * (1 + 1e-12),        # not linspace, but within the tolerance
]


def _near_boundaries(edges, inv, rng, n):
    """Values whose u is within ~tol of an integer: each edge, its neighbours, and the doubles
    that the arithmetic maps next to an integer (the exact-search lanes), at the index's tolerance
    and at the pair table's tighter one (FMA_TIGHT)."""
    from fastdrift.kernels.hist import ARITH_TOL
    lo = edges[0]
    k = rng.integers(0, edges.size, n)
    d = rng.uniform(-2, 2, n) * np.where(rng.random(n) < 0.5, ARITH_TOL, FMA_TIGHT) / inv
    with np.errstate(all="ignore"):
        x = edges[k] + d
        x[::3] = edges[k[::3]]
        x[1::3] = np.nextafter(edges[k[1::3]], -np.inf)
        x[2::7] = lo + (k[2::7] + rng.uniform(-1, 1, x[2::7].size) * ARITH_TOL) / inv
    return x


@pytest.mark.parametrize("i", range(len(ARITH_EDGES)))
def test_hist_arith_paths_exact_near_boundaries(restore_path, i):
    # The arith index (bin = int(u), exact search within tol of a boundary) on values that land
    # on, beside and within tol of every boundary, plus the specials, at offsets and tail lengths
    # 0..15: every path, the numba twin and the NumPy oracle agree.
    edges = ARITH_EDGES[i]
    index = make_index(edges)
    assert index.arith, index
    rng = np.random.default_rng(i)
    x = np.concatenate([_near_boundaries(edges, index.inv_width, rng, 3000),
                        [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e308, -1e308],
                        rng.standard_normal(200) * (edges[-1] - edges[0] if np.isfinite(edges[-1] - edges[0]) else 1e300)])
    rng.shuffle(x)
    for off in (0, 1, 5):
        for tail in (0, 3, 7, 15):
            arr = pa.array(x[: x.size - tail], mask=rng.random(x.size - tail) < 0.05).slice(off)
            want = hist_reference(arr, edges)
            nb = _hist(arr, index, "numba")
            for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
                np.testing.assert_array_equal(counts, want[0], err_msg=f"{p} off={off} tail={tail}")
                np.testing.assert_array_equal(specials, want[1], err_msg=p)
            np.testing.assert_array_equal(nb[0], want[0])
            np.testing.assert_array_equal(nb[1], want[1])


def test_hist_arith_index_is_proven():
    # The proof accepts equal widths and refuses edges that are not (quantiles, a moved edge).
    from fastdrift.kernels.hist import ARITH_TOL, _arith_is_exact, _arith_u
    e = np.linspace(-4.0, 4.0, 101)
    ix = make_index(e)
    assert ix.arith and not ix.uniform
    assert not make_index(e, arith=False).arith
    moved = e.copy()
    moved[50] += 2 * ARITH_TOL * (e[1] - e[0])    # one edge off its place by 2 tol widths
    assert not make_index(moved).arith
    # ... and that refusal is needed: a value between the moved edge and its place is
    # tol-away from an integer and int(u) is not its bin.
    x = e[50] + 1.5 * ARITH_TOL * (e[1] - e[0])
    u = _arith_u(np.array([x]), ix.lo, ix.inv_width, e.size)[0]
    assert abs(u - round(u)) >= ARITH_TOL and int(u) != np.searchsorted(moved, x, side="right")
    assert _arith_is_exact(e, ix.lo, ix.inv_width)
    q = np.quantile(np.random.default_rng(0).standard_normal(1000), np.linspace(0.1, 0.9, 9))
    assert not make_index(q).arith
    assert not make_index([1.0]).arith
    # Subnormal edges: the inverse width overflows, so no arith index (the table serves them).
    assert not make_index(np.arange(1, 6) * 16 * 5e-324).arith


# ---- moments ----------------------------------------------------------------------------------

@SETTINGS
@given(arr=columns(huge=1e150))  # m2 of +-1e308 would overflow (the oracle's too)
def test_moments_paths_bit_identical(restore_path, arr):
    got = _each_path(lambda: _moments(arr, "c"))
    nb_ints, nb_flts = _moments(arr, "numba")
    r_ints, r_flts = moments_reference(arr)
    for p, (ints, flts) in got.items():
        np.testing.assert_array_equal(ints, nb_ints, err_msg=p)
        np.testing.assert_array_equal(flts.view(np.int64), nb_flts.view(np.int64), err_msg=p)
        np.testing.assert_array_equal(ints, r_ints, err_msg=p)
        # min/max exactly (a -0.0/0.0 tie may keep either zero), sums within the blocked bound
        assert flts[0] == r_flts[0] and flts[1] == r_flts[1], p
        scale = max(1.0, float(np.max(np.abs(r_flts[:2])))) if r_ints[0] else 1.0
        np.testing.assert_allclose(flts[2:4], r_flts[2:4], rtol=1e-9, atol=1e-9 * scale * max(r_ints[0], 1))
        np.testing.assert_allclose(flts[4], r_flts[4], rtol=1e-9, atol=1e-9 * scale ** 2)


@settings(deadline=None, max_examples=25)
@given(arr=columns())
def test_moments_grid_and_quantiles_paths_bit_identical(restore_path, arr):
    # The fused moments + grid kernel behind the exact quantiles: every path gives np.quantile.
    from fastdrift.kernels.quantile import exact_quantiles
    x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    fin = x[np.isfinite(x)] if arr.null_count == 0 else np.asarray(
        arr.drop_null().to_numpy(zero_copy_only=False), dtype=np.float64)
    fin = fin[np.isfinite(fin)]
    if fin.size == 0:
        return
    qs = np.array([0.0, 0.01, 0.1, 0.5, 0.9, 0.999, 1.0])
    want = np.quantile(fin, qs)
    views = list(iter_columns(arr))
    got = _each_path(lambda: exact_quantiles(views, qs, fin.size, float(fin.min()), float(fin.max()),
                                             backend="c"))
    for p, q in got.items():
        np.testing.assert_array_equal(q, want, err_msg=p)


@settings(deadline=None, max_examples=40)
@given(arr=columns(huge=1e150), data=st.data())
def test_moments_grid_cells_paths_bit_identical(restore_path, arr, data):
    # The cells' records of a scan's digest grid (cell_records_* in fd_moments.c: SSE2 halves on
    # the scalar path, one 256-bit record on the AVX paths): on every path, each cell's count,
    # sum in column order, min and max as numpy computes them, the digest cells' and held cells'
    # values in column order, and the same moments.  A -0.0 and a 0.0 in one cell keep the
    # minpd / maxpd rule (first operand the value): x < min ? x : min.
    from fastdrift.kernels import quantile as kq
    x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False)) if arr.null_count else np.ones(x.size, bool)
    fin = x[valid & np.isfinite(x)]
    n_cells = data.draw(st.sampled_from([1, 3, 64, 4096]))
    lo, hi = data.draw(st.sampled_from([(-2.0, 2.0), (-1e3, 1e3), (0.0, 0.5)]))
    plan = kq.grid_plan(64 * n_cells, lo, hi)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    flags = rng.integers(0, 4, plan.n_cells).astype(np.uint8)
    cells = np.clip((fin - plan.lo) * plan.inv, 0.0, plan.n_cells - 1.0).astype(np.int64)
    want = np.zeros((plan.n_cells, 4))
    want[:, 0] = np.bincount(cells, minlength=plan.n_cells)
    want[:, 2], want[:, 3] = np.inf, -np.inf
    np.add.at(want[:, 1], cells, fin)
    for c, v in zip(cells, fin):  # in column order, as the kernels compare
        want[c, 2] = v if v < want[c, 2] else want[c, 2]
        want[c, 3] = v if v > want[c, 3] else want[c, 3]

    def run():
        ints, flts = empty_moments()
        rec = kq.empty_cells(plan.n_cells)
        held, tail = kq.moments_count_select_cells(list(iter_columns(arr)), ints, flts, plan, flags, rec,
                                                   backend="c")
        return rec, held, tail, ints, flts

    got = _each_path(run)
    for p, (rec, held, tail, ints, flts) in got.items():
        np.testing.assert_array_equal(rec.view(np.int64), want.view(np.int64), err_msg=p)
        np.testing.assert_array_equal(held, fin[(flags[cells] & 1) != 0], err_msg=p)
        np.testing.assert_array_equal(tail, fin[(flags[cells] & 2) != 0], err_msg=p)
        first = next(iter(got.values()))
        np.testing.assert_array_equal(ints, first[3], err_msg=p)
        np.testing.assert_array_equal(flts.view(np.int64), first[4].view(np.int64), err_msg=p)


@pytest.mark.parametrize("layout", ["across lanes", "along lanes"])
def test_moments_lane_order_is_fixed(restore_path, layout):
    # Sums in the 16-lane order: a case where that order and a plain left-to-right sum differ, so a
    # path that summed otherwise would fail.  Oracle: the order spelled out in Python.  "along
    # lanes": 13 groups of 16, lane l of group g holding the (g + l)-th of 1e16, 1, -1e16, 1 (a
    # cycle), where each lane's own order gives its sum (three steps of the numba twin's four
    # groups, then a group alone).
    if layout == "across lanes":
        x = np.array([1e16, 1.0, -1e16, 1.0] * 8 + [1.0, 2.0, 3.0], dtype=np.float64)
    else:
        cycle = [1e16, 1.0, -1e16, 1.0]
        x = np.array([cycle[(g + lane) % 4] for g in range(13) for lane in range(16)] + [1.0, 2.0, 3.0])
    lanes = [0.0] * 16
    k16 = x.size - x.size % 16
    for i in range(k16):
        lanes[i % 16] += x[i]
    for v in x[k16:]:
        lanes[0] += v
    h = 8
    while h:
        for j in range(h):
            lanes[j] += lanes[j + h]
        h //= 2
    assert lanes[0] != sum(x.tolist())  # the order matters for this input
    for p, (ints, flts) in _each_path(lambda: _moments(pa.array(x), "c")).items():
        assert flts[2] == lanes[0], p
    assert _moments(pa.array(x), "numba")[1][2] == lanes[0]


def _exact_m2(x):
    """Sum of squared deviations of the finite values of x, exactly (rationals), rounded once."""
    from fractions import Fraction
    fs = [Fraction(v) for v in x[np.isfinite(x)].tolist()]
    mean = sum(fs) / len(fs)
    return float(sum((f - mean) ** 2 for f in fs))


def _moment_streams():
    # Lengths in blocks of the moments kernel (lib.FD_MOM_BLOCK values)
    rng = np.random.default_rng(11)
    noise = lambda blocks: rng.standard_normal(int(blocks * MOM_BLOCK))  # noqa: E731
    yield "stationary far from zero", 1e6 + noise(4.9)
    # the first block's shift is its first value: here an outlier 1e8 away from the block's others
    yield "outlier first", np.concatenate([[1e8], noise(3.9)])
    # each block after a jump is far from the running mean; the last ones return to it
    yield "level shifts", np.concatenate([3e9 + noise(2.05), noise(3.03), -7e5 + noise(1.46), noise(0.88)])
    yield "trend", np.arange(int(5.86 * MOM_BLOCK), dtype=np.float64) * 0.5 + noise(5.86)
    x = 1e6 + noise(4.9)
    x[[3, int(1.46 * MOM_BLOCK), 2 * MOM_BLOCK - 1, int(4.01 * MOM_BLOCK)]] = [np.nan, np.inf, -np.inf, np.nan]
    yield "non-finite", x  # blocks reduced through the copy


@pytest.mark.parametrize("name,x", list(_moment_streams()), ids=[n for n, _ in _moment_streams()])
def test_moments_m2_about_a_shift_or_the_block_mean(restore_path, name, x):
    # A block's m2 is sum((x - c)^2) - sum(x - c)^2 / k about a shift c (the running mean, the first
    # value for the first block) when that loses at most a bit, else computed about the block's mean
    # in a second pass.  Both kinds of block occur in these streams; on each the m2 is within a few
    # ulps per block of the exact m2 (rationals), and every path and the numba twin agree bit for bit.
    # ("outlier first" without the second pass: relative error 1.7e-13 against 4e-16.)
    arr = pa.array(x)
    got = _each_path(lambda: _moments(arr, "c"))
    nb = _moments(arr, "numba")
    for p, (ints, flts) in got.items():
        np.testing.assert_array_equal(ints, nb[0], err_msg=p)
        np.testing.assert_array_equal(flts.view(np.int64), nb[1].view(np.int64), err_msg=p)
    # Bound: a few ulps of each block's m2, and Chan's merge, whose difference of means carries the
    # rounding of means of size |mean| (the whole error on "stationary far from zero": 2e-12 of the
    # m2, with and without the shift).
    want = _exact_m2(x)
    fin = x[np.isfinite(x)]
    n_blocks = -(-x.size // MOM_BLOCK)
    bound = n_blocks * np.finfo(float).eps * (4 * want + 8 * MOM_BLOCK * abs(fin.mean()) * fin.std())
    assert abs(nb[1][4] - want) <= bound, (nb[1][4], want, bound)


def test_hist_arith_index_table_checked():
    # The C kernel refuses an arith index whose table is not a whole number of sub-buckets per edge.
    from fastdrift.kernels.native import column, ffi, lib
    index = make_index(np.linspace(0.0, 1.0, 11))
    assert index.arith
    view = next(iter_columns(pa.array(np.linspace(-1.0, 2.0, 50))))
    counts, specials = np.zeros(12, np.int64), np.zeros(2, np.int64)
    sp = ffi.from_buffer("int64_t[]", specials)
    cp = ffi.from_buffer("int64_t[]", counts)
    ix = index.c_index
    assert lib.fd_hist_update(column(view), ix, cp, sp, sp + 1) == lib.FD_OK
    assert counts.sum() == 50
    for bad in (index.n_edges - 1, index.n_table + 1):
        ix.n_table = bad
        assert lib.fd_hist_update(column(view), ix, cp, sp, sp + 1) == lib.FD_EINVAL
    ix.n_table = index.n_table


# ---- the run paths: few edges (compare counts) and equal widths (pair table) -------------------

def _run_edges(kind):
    rng = np.random.default_rng(11)
    return {
        "cmp-quantile9": np.quantile(rng.standard_normal(4000), np.linspace(0, 1, 11)[1:-1]),
        "cmp-one": np.array([0.25]),
        "cmp-16": np.sort(rng.choice(np.unique(rng.standard_normal(100)), 16, replace=False)),
        "cmp-arith11": np.linspace(-2.0, 2.0, 11),
        "table-17": np.sort(rng.choice(np.unique(rng.standard_normal(100)), 17, replace=False)),
        "pair-arith21": np.linspace(-2.0, 2.0, 21),
        "pair-arith101": np.linspace(-4.0, 4.0, 101),
        "pair-arith127": np.linspace(-1e300, 1e300, 127),   # 128 bins: the largest pair table
        # The arith proof holds, the pair table's multiply-add proof (fd_hist.c) does not.
        "pair-fma-fallback": _fma_fallback_edges(),
        # The multiply-add's proof holds at the index's tolerance, not at the tighter one.
        "pair-fma-loose": _fma_loose_edges(),
        "arith-128": np.linspace(-4.0, 4.0, 128),           # one bin more: the ordinary body
        # Quantile edges one per bucket of the 256-bucket table (AVX-512 path): 100 and 128 bins.
        "qt-normal99": _norm_ppf(np.linspace(0, 1, 101)[1:-1]),
        "qt-normal127": _norm_ppf(np.linspace(0, 1, 129)[1:-1]),
        "qt-sample99": np.quantile(rng.standard_normal(100_000), np.linspace(0, 1, 101)[1:-1]),
        # Too skewed for the table (several edges a bucket): the body.
        "qt-lognormal99": np.quantile(rng.lognormal(0.0, 2.0, 4000), np.linspace(0, 1, 101)[1:-1]),
    }[kind]


# fd_hist.c's fma_plan: v = fma(clamp(x, xlo, xhi), inv, c) in [2^32, 2^33), t = v - FD_FMA_BASE
# in units of 2^-FD_FMA_S; emulated here with rationals (a correctly rounded multiply-add).
FMA_S, FMA_BASE = 20, 1.5 * 2.0**32


def _fma_t(x, lo, inv, n_edges):
    from fractions import Fraction
    c = FMA_BASE + (1.0 - lo * inv)
    xc = min(max(x, lo - 0.5 / inv), lo + (n_edges - 0.5) / inv)
    v = float(Fraction(xc) * Fraction(inv) + Fraction(c))
    return int((Fraction(v) - Fraction(FMA_BASE)) * 2**FMA_S)


#: fd_hist.c's FD_FMA_TIGHT: the tolerance the pair table's multiply-add tries first.
FMA_TIGHT = 2.0**-17


def _fma_proof(edges, lo, inv, tol=None):
    """fd_hist.c's fma_plan_holds at the edges: t(e_k) > (k + 1) - tol, t(below e_k) < (k + 1) + tol
    (tol: a fraction of a bin, ARITH_TOL by default)."""
    from fastdrift.kernels.hist import ARITH_TOL
    one, tol, n = 2**FMA_S, int((ARITH_TOL if tol is None else tol) * 2**FMA_S), edges.size
    return all(_fma_t(float(e), lo, inv, n) > (k + 1) * one - tol and
               _fma_t(float(np.nextafter(e, -np.inf)), lo, inv, n) < (k + 1) * one + tol
               for k, e in enumerate(edges))


def _fma_fallback_edges():
    """101 equal widths but for edge 50, moved to where u is 2^-22 above 51 - tol: the arith path's
    u (rounded to 53 bits) is above k + 1 - tol, the multiply-add's (rounded to 2^-20) is on it."""
    from fastdrift.kernels.hist import ARITH_TOL
    e = np.linspace(-4.0, 4.0, 101)
    lo, inv = e[0], 100 / 8.0
    e[50] = lo + (50 - ARITH_TOL + 2.0**-22) / inv
    return e


def _fma_loose_edges():
    """101 equal widths but for edge 50, 2^-15 of a bin low: the arith proof and the multiply-add's
    at the index's tolerance (2^-12) hold, at FD_FMA_TIGHT (2^-17) not."""
    e = np.linspace(-4.0, 4.0, 101)
    e[50] -= 2.0**-15 / (100 / 8.0)
    return e


def test_pair_table_fma_proof():
    # The pair table's bins come from one multiply-add when its own proof holds for the edges, with
    # the tighter of two tolerances that holds, else from the arith path's arithmetic: pair-arith21,
    # pair-arith101 and pair-arith127 take the tight one, pair-fma-loose the index's (2^-12),
    # pair-fma-fallback the arith path (its values on edge 50 would land a bin low by the
    # multiply-add); all count exactly (test_hist_run_paths_exact, with values within either
    # tolerance of every boundary).
    for kind, tight, loose in (("pair-arith21", True, True), ("pair-arith101", True, True),
                               ("pair-arith127", True, True), ("pair-fma-loose", False, True),
                               ("pair-fma-fallback", False, False)):
        edges = _run_edges(kind)
        index = make_index(edges)
        assert index.arith, kind
        assert _fma_proof(edges, index.lo, index.inv_width, FMA_TIGHT) == tight, kind
        assert _fma_proof(edges, index.lo, index.inv_width) == loose, kind
    e = _run_edges("pair-fma-fallback")
    index = make_index(e)
    t = _fma_t(float(e[50]), index.lo, index.inv_width, e.size)
    assert t == 51 * 2**FMA_S - int(2.0**-12 * 2**FMA_S)  # a bin low if taken: fraction 1 - tol


def _norm_ppf(q):
    from scipy.stats import norm
    return norm.ppf(q)


def _run_values(edges, inv, n, rng):
    """n values: 40 % on, one ulp beside or within the arith tolerance of an edge, the specials
    (NaN, +-inf, +-0, subnormals, +-DBL_MAX) and the rest spread over and beyond the edges."""
    x = rng.uniform(edges[0], edges[-1], n) if np.isfinite(edges[-1] - edges[0]) else \
        rng.uniform(-1.0, 1.0, n) * edges[-1]
    k = rng.integers(0, n, int(0.4 * n))
    x[k] = _near_boundaries(edges, inv if np.isfinite(inv) else 1.0, rng, k.size)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308,
                -1.7976931348623157e308, edges[0] - 1.0, edges[-1] + 1.0]
    k = rng.integers(0, n, n // 40)
    x[k] = rng.choice(specials, k.size)
    return x


@pytest.mark.parametrize("kind", ["cmp-quantile9", "cmp-one", "cmp-16", "cmp-arith11", "table-17",
                                  "pair-arith21", "pair-arith101", "pair-arith127", "pair-fma-fallback",
                                  "pair-fma-loose",
                                  "arith-128",
                                  "qt-normal99", "qt-normal127", "qt-sample99", "qt-lognormal99"])
def test_hist_run_paths_exact(restore_path, kind):
    # The runs of valid values take the compare counts (<= 16 edges), the pair table (equal
    # widths, <= 128 bins, long chunks) or the bucket table (other edges, <= 128 bins, one edge
    # a bucket, AVX-512): every path, the numba twin and the NumPy oracle agree on
    # chunks long enough for the pair table, values on / beside / within tol of every edge and
    # the specials, at offsets and tails that cut runs anywhere, without nulls, with rare nulls
    # (long runs), with null stretches (runs and gaps alternating), dense nulls, and nulls in
    # some blocks of 1,024 only.
    edges = _run_edges(kind)
    index = make_index(edges)
    assert index.arith == kind.startswith(("pair", "cmp-arith", "arith")), index
    nb = edges.size + 1
    rng = np.random.default_rng(nb)
    n = max(8 * nb * nb + 100, 3000)
    x = _run_values(edges, index.inv_width, n + 80, rng)
    stretch = (np.arange(n + 80) // 37) % 3 == 0
    # "dense" and "blocks": runs of valid values copied together a block of 1,024 at a time, the
    # values short of a run waiting for the next copied block, across blocks counted in place
    masks = {"none": None, "rare": rng.random(n + 80) < 0.002,
             "stretches": stretch & (rng.random(n + 80) < 0.5), "dense": rng.random(n + 80) < 0.3,
             "blocks": ((np.arange(n + 80) // 1024) % 3 == 1) & (rng.random(n + 80) < 0.01)}
    for name, mask in masks.items():
        for off, tail in ((0, 0), (1, 7), (5, 15), (13, 1), (63, 16)):
            arr = pa.array(x[: n + 80 - tail], mask=None if mask is None else mask[: n + 80 - tail]).slice(off)
            want = hist_reference(arr, edges)
            assert want[1][1] > 0 and want[0][0] > 0 and want[0][-1] > 0  # NaN and both outer bins
            nb_counts = _hist(arr, index, "numba")
            for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
                msg = f"{p} {kind} nulls={name} off={off} tail={tail}"
                np.testing.assert_array_equal(counts, want[0], err_msg=msg)
                np.testing.assert_array_equal(specials, want[1], err_msg=msg)
            np.testing.assert_array_equal(nb_counts[0], want[0])
            np.testing.assert_array_equal(nb_counts[1], want[1])


@pytest.mark.parametrize("n_edges", [17, 101, 127])
def test_hist_pair_table_folds_before_a_cell_overflows(restore_path, n_edges):
    # The pair table's cells (pairs of bins {a, b}, a >= b, a triangle of 32-bit cells) are
    # folded into the counts every 1,048,576 values (fd_hist.c's FD_HIST_PAIR_BLOCK) and at the
    # end, its rows and columns summed in 32 bits, 8 cells a load, the last load of a row masked
    # (18, 102 and 128 bins: rows of every length mod 8); a pair {a, a} counts twice in bin a: a
    # constant column puts every pair in one diagonal cell (1,048,578 pairs in one call), two
    # values alternating put them in one cell off it, and long normal columns with NaN and
    # +-inf cross folds within a call and between the chunks of a column; every path and the
    # numba twin give NumPy's counts.
    edges = np.linspace(-4.0, 4.0, n_edges)
    index = make_index(edges)
    assert index.arith
    rng = np.random.default_rng(11)
    n = 2 * 1_048_576 + 5
    normal = rng.standard_normal(n)
    normal[rng.integers(0, n, 40)] = np.nan
    normal[rng.integers(0, n, 40)] = np.inf
    normal[rng.integers(0, n, 40)] = -np.inf
    cases = {"constant": np.full(n, 0.33), "two values": np.tile([0.33, -1.1], n // 2 + 1)[:n],
             "on an edge": np.full(n, edges[n_edges // 2]), "last bin": np.full(n, 7.0), "normal": normal}
    for name, x in cases.items():
        for arr in (pa.array(x), pa.chunked_array([x[:1_400_001], x[1_400_001:]]), pa.array(x).slice(7)):
            want = hist_reference(arr, edges)
            for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
                np.testing.assert_array_equal(counts, want[0], err_msg=f"{p} {name}")
                np.testing.assert_array_equal(specials, want[1], err_msg=f"{p} {name}")
            nb_counts = _hist(arr, index, "numba")
            np.testing.assert_array_equal(nb_counts[0], want[0], err_msg=name)
    assert hist_reference(pa.array(cases["constant"]), edges)[0].max() == n  # one cell had them all


@pytest.mark.parametrize("n_edges", range(1, 17))
def test_hist_compare_counts_every_edge_count(restore_path, n_edges):
    # One compare loop is compiled per edge count (1..16) for each of the 256- and 512-bit builds,
    # and the AVX-512 path picks either by the count; the numba twin counts four edges a pass,
    # then one at a time: each count, on every path and the twin, against NumPy,
    # values on and beside every edge and the specials, without and with nulls, at an offset and a
    # tail that cut the runs.
    rng = np.random.default_rng(n_edges)
    edges = np.sort(rng.choice(np.unique(rng.standard_normal(200)), n_edges, replace=False))
    index = make_index(edges)
    x = _run_values(edges, index.inv_width, 3000, rng)
    for mask in (None, rng.random(x.size) < 0.01):
        arr = pa.array(x[:2991], mask=None if mask is None else mask[:2991]).slice(5)
        want = hist_reference(arr, edges)
        assert want[1][1] > 0 and want[0][0] > 0 and want[0][-1] > 0  # NaN and both outer bins
        for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
            np.testing.assert_array_equal(counts, want[0], err_msg=p)
            np.testing.assert_array_equal(specials, want[1], err_msg=p)
        counts, specials = _hist(arr, index, "numba")  # four edges a pass, then one
        np.testing.assert_array_equal(counts, want[0])
        np.testing.assert_array_equal(specials, want[1])


@pytest.mark.parametrize("kind", ["cmp-quantile9", "cmp-16", "cmp-arith11", "table-17", "pair-arith101",
                                  "arith-128", "qt-normal99", "qt-lognormal99"])
@pytest.mark.parametrize("dtype", ["float32", "int8", "int16", "int32", "uint8", "uint16", "int64", "uint64"])
def test_hist_run_paths_other_dtypes(restore_path, kind, dtype):
    # Columns of float32 and of the integer types whose conversion vectorises reach the compare
    # counts (at most 16 edges) converted to double a block at a time, their valid values only,
    # the leftovers of a block carried to the next; the other kinds take each type's body: every
    # path, the numba twin and the NumPy oracle agree, with and without nulls, at offsets and
    # tails.
    edges = _run_edges(kind)
    index = make_index(edges)
    nb = edges.size + 1
    rng = np.random.default_rng(nb + len(dtype))
    n = max(8 * nb * nb + 100, 5000)
    if dtype == "float32":
        with np.errstate(over="ignore"):  # +-DBL_MAX become +-inf
            x = _run_values(edges, index.inv_width, n + 80, rng).astype(np.float32)
    else:
        info = np.iinfo(dtype)
        x = np.clip(np.round(rng.normal(0.0, 2.0, n + 80)).astype(np.int64), max(info.min, -10), 10).astype(dtype)
        k = rng.integers(0, n + 80, 40)
        x[k] = np.array([info.min, info.max], dtype=dtype)[rng.integers(0, 2, k.size)]
    masks = {"none": None, "dense": rng.random(n + 80) < 0.3,
             "blocks": ((np.arange(n + 80) // 1024) % 3 == 1) & (rng.random(n + 80) < 0.01)}
    for name, mask in masks.items():
        for off, tail in ((0, 0), (5, 15), (13, 1)):
            arr = pa.array(x[: n + 80 - tail], mask=None if mask is None else mask[: n + 80 - tail]).slice(off)
            want = hist_reference(arr, edges)
            nb_counts = _hist(arr, index, "numba")
            for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
                msg = f"{p} {kind} {dtype} nulls={name} off={off} tail={tail}"
                np.testing.assert_array_equal(counts, want[0], err_msg=msg)
                np.testing.assert_array_equal(specials, want[1], err_msg=msg)
            np.testing.assert_array_equal(nb_counts[0], want[0])
            np.testing.assert_array_equal(nb_counts[1], want[1])


@pytest.mark.parametrize("on_edges", [0.002, 0.3])
def test_hist_bucket_table_exact(restore_path, on_edges):
    # 99 quantile edges (the bucket table on AVX-512) on long chunks of normal values with a share
    # of values on or an ulp beside the edges: few (the table throughout) and many (the table,
    # then the body for the rest of the chunk), specials, nulls, offsets and tails; every path and
    # the numba twin equal the NumPy oracle.
    rng = np.random.default_rng(16)
    edges = _norm_ppf(np.linspace(0, 1, 101)[1:-1])
    index = make_index(edges)
    n = 60_000
    x = rng.standard_normal(n)
    k = rng.integers(0, n, int(on_edges * n))
    x[k] = rng.choice(np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)]), k.size)
    k = rng.integers(0, n, 50)
    x[k] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308,
                       -1.7976931348623157e308], k.size)
    for mask in (None, rng.random(n) < 0.001):
        for off, tail in ((0, 0), (3, 5), (17, 16)):
            arr = pa.array(x[: n - tail], mask=None if mask is None else mask[: n - tail]).slice(off)
            want = hist_reference(arr, edges)
            for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
                np.testing.assert_array_equal(counts, want[0], err_msg=f"{p} off={off} tail={tail}")
                np.testing.assert_array_equal(specials, want[1], err_msg=p)
            nb_counts = _hist(arr, index, "numba")
            np.testing.assert_array_equal(nb_counts[0], want[0])
            np.testing.assert_array_equal(nb_counts[1], want[1])


def test_perf_paths_bit_identical(restore_path):
    # The binary-performance kernel follows the dispatch like the others: every forced path gives
    # the same bins and the same sums, bit for bit, on probability and margin blocks.
    from fastdrift.kernels.perf import N_REJECT, N_SUMS, perf_update
    rng = np.random.default_rng(5)
    n = 5000
    labels = (rng.random(n) < 0.3).astype(np.uint8)
    for margin, scores in ((False, rng.random(n)), (True, rng.standard_normal(n) * 4)):
        shift = 2
        k = (128 << shift) if margin else (63 << shift) + 1

        def run(lab):
            counts = np.zeros(3 * 2 * k, np.int64)
            sums, rej = np.zeros(N_SUMS), np.zeros(N_REJECT, np.int64)
            perf_update(scores, None, 0, lab, 0, None, margin, shift, 2 * k, counts, None, None, None,
                        None, sums, rej)
            return counts, sums, rej

        for lab in (labels, None):
            got = _each_path(lambda: run(lab))
            first = got[PATHS[0]]
            assert first[0].sum() == n and np.count_nonzero(first[1]) >= 2
            for p, (counts, sums, rej) in got.items():
                np.testing.assert_array_equal(counts, first[0], err_msg=p)
                assert sums.tobytes() == first[1].tobytes(), p
                np.testing.assert_array_equal(rej, first[2], err_msg=p)


# ---- dictionary indices: the range test of each block of 64 --------------------------------------

def _count_indices(view, n_bins):
    bins = np.zeros(n_bins, np.int64)
    nn, prog = native.ffi.new("int64_t*"), native.ffi.new("int64_t*")
    rc = native.lib.fd_count_indices(native.column(view), native.ptr("int64_t*", bins), native.ffi.NULL,
                                     n_bins, nn, prog)
    return rc, prog[0], nn[0], bins


@pytest.mark.parametrize("index_type", [pa.int8(), pa.uint8(), pa.int16(), pa.uint16(), pa.int32(),
                                        pa.uint32(), pa.int64(), pa.uint64()])
def test_count_indices_paths_range_test(restore_path, index_type):
    # Each block of 64 valid indices is range-tested before it is counted (unsigned maxima on the
    # AVX2 and AVX-512 paths, compares on the scalar one): on every path an index one above the
    # largest entry, the type's largest value or a negative one, at the start, the middle or the
    # end of a block, stops the count there with the blocks before it counted, and the largest
    # good index never does (numpy: bincount of the prefix).
    info = np.iinfo(index_type.to_pandas_dtype())
    rng = np.random.default_rng(7)
    n = 64 * 40 + 5
    for n_bins in sorted({1, 2, 100, min(255, int(info.max)), min(1000, int(info.max))}):
        bads = [b for b in (n_bins, int(info.max), -1, int(info.min)) if info.min <= b <= info.max
                and not 0 <= b < n_bins]
        for bad, at in [(None, None)] + [(b, 64 * 17 + k) for b in bads for k in (0, 31, 63)]:
            x = rng.integers(0, n_bins, n).astype(np.int64)
            x[rng.integers(0, n, 50)] = n_bins - 1  # the largest good index is in range
            xt = x.astype(index_type.to_pandas_dtype())
            if bad is not None:
                xt[at] = bad
            arr = pa.array(xt).slice(3)
            k = (at - 3) if bad is not None else n - 3
            want = np.bincount(x[3:3 + k], minlength=n_bins)
            got = _each_path(lambda: _count_indices(next(iter_columns(arr)), n_bins))
            for p, (rc, progress, n_null, bins) in got.items():
                msg = f"{p} {index_type} n_bins={n_bins} bad={bad} at={at}"
                assert rc == (native.lib.FD_EINVAL if bad is not None else native.lib.FD_OK), msg
                assert progress == k and n_null == 0, msg
                np.testing.assert_array_equal(bins, want, err_msg=msg)


# ---- the compare counts in float32 (AVX-512) ------------------------------------------------------

F32_EMPTY = 0x7F800001  # a signalling NaN: no conversion returns one


def _f32_round(e):
    """(down, up): e rounded to float32 toward -inf and toward +inf, by NumPy (one rounding to
    nearest, then a step back toward e where it went past; an overflow to inf steps to FLT_MAX)."""
    with np.errstate(over="ignore"):
        f = np.float32(e)
    if float(f) > e:
        return np.nextafter(f, np.float32(-np.inf)), f
    if float(f) < e:
        return f, np.nextafter(f, np.float32(np.inf))
    return f, f


def _cmp32_plan(edges):
    """fd_hist_cmp32_plan: (up as float32, slots as uint32, mult)."""
    e = np.ascontiguousarray(edges, np.float64)
    up, slots = ffi.new("float[16]"), ffi.new("int32_t[64]")
    mult, n_slots = ffi.new("uint32_t*"), ffi.new("int32_t*")
    assert lib.fd_hist_cmp32_plan(ffi.cast("double *", e.ctypes.data), e.size, up, slots, mult,
                                  n_slots) == lib.FD_OK
    return (np.frombuffer(ffi.buffer(up, 4 * e.size), np.float32).copy(),
            np.frombuffer(ffi.buffer(slots, 4 * 64), np.uint32)[:n_slots[0]].copy(), mult[0])


# Edges at the ends of float's range and in its subnormals: roundings that overflow to +-inf,
# stop at +-FLT_MAX, or fall to 0 and the smallest subnormal.
CMP32_EXTREMES = np.array([-1e300, -1e39, -3.4028235677973366e38, -1e-40, -1e-300, 0.0, 1e-300,
                           1.401298464324817e-45, 2e-45, 0.1, 16777217.0, 3.4028234663852886e38,
                           3.5e38, 1e39, 1e300])


@pytest.mark.parametrize("kind", ["cmp-quantile9", "cmp-one", "cmp-16", "cmp-arith11", "extremes"])
def test_cmp32_plan_is_the_float_roundings(restore_path, kind):
    # The AVX-512 path's plan for <= 16 edges: each edge rounded up to float as NumPy rounds it;
    # the roundings down that differ from it, each in the slot its hash names, every other slot
    # the signalling NaN; no plan on the other paths.  The 32-slot table takes 9 and 11 edges.
    edges = CMP32_EXTREMES if kind == "extremes" else _run_edges(kind)
    assert edges.size <= lib.FD_HIST_CMP_EDGES
    down, up = zip(*(_f32_round(e) for e in edges))
    down, up = np.array(down, np.float32), np.array(up, np.float32)
    members = set(down.view(np.uint32)[down.view(np.uint32) != up.view(np.uint32)].tolist())
    for p in PATHS:
        assert native._select_simd(p) == p
        got_up, slots, mult = _cmp32_plan(edges)
        if p != "avx512":
            assert slots.size == 0, p
            continue
        assert slots.size in (32, 64) and mult % 2 == 1
        if kind in ("cmp-quantile9", "cmp-arith11", "cmp-one"):
            assert slots.size == 32
        np.testing.assert_array_equal(got_up.view(np.uint32), up.view(np.uint32))
        held = {int(b) for b in slots if b != F32_EMPTY}
        assert held == members
        shift = 32 - (slots.size.bit_length() - 1)
        for j, b in enumerate(slots):
            if b != F32_EMPTY:
                assert ((int(b) * mult) % 2**32) >> shift == j
    if kind == "extremes":   # the overflows and subnormals are among them
        assert {0x7F7FFFFF, 0x00000001, 0xFF800000} <= members | set(up.view(np.uint32).tolist())


def test_cmp_edges_is_the_twins():
    from fastdrift.kernels import numba_hist
    assert numba_hist.CMP_EDGES == lib.FD_HIST_CMP_EDGES


@st.composite
def cmp_edges(draw):
    """1..16 strictly increasing finite edges: floats (their own roundings), doubles between floats,
    edges near and beyond float's range, in its subnormals, tiny doubles, zero."""
    pool = st.one_of(st.floats(-1e6, 1e6, width=32), st.floats(-1e6, 1e6),
                     st.sampled_from(CMP32_EXTREMES.tolist() + [-0.0, 1e-40, -2e-45]),
                     st.floats(allow_nan=False, allow_infinity=False))
    e = np.unique(np.array(draw(st.lists(pool, min_size=1, max_size=16)), np.float64))
    return e[:16]


def _cmp_values(edges, n, rng):
    """n values: each edge, its float roundings (as doubles), an ulp beside each of them, doubles
    between the roundings, the specials, and the rest spread over the edges."""
    near = []
    for e in edges:
        d, u = (float(v) for v in _f32_round(e))
        near += [e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf), d, u,
                 np.nextafter(d, np.inf), np.nextafter(u, -np.inf)]
        if np.isfinite(d) and np.isfinite(u):
            near += list(rng.uniform(d, u, 3))
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-40, -1e-40,
                1.7976931348623157e308, -1.7976931348623157e308, 3.4028234663852886e38,
                -3.4028234663852886e38]
    pool = np.array(near + specials, np.float64)
    x = rng.choice(pool, n)
    k = rng.random(n) < 0.3
    x[k] = rng.choice(edges, k.sum()) * rng.uniform(0.5, 1.5, k.sum())
    return x


@SETTINGS
@given(edges=cmp_edges(), data=st.data())
def test_hist_cmp_float32_exact(restore_path, edges, data):
    # The float32 compares count exactly what the double compares count: values on each edge, on
    # its float roundings, an ulp beside them and between them (the ones a float compare cannot
    # tell: the slot look-up sends their 16 to the double compares), edges and values beyond
    # float's range and in its subnormals, NaN, +-inf, at offsets 0..63 and lengths cutting the
    # 16-value runs anywhere, short of the plan's 1,024 values and past it, with and without
    # nulls: every path, the numba twin and NumPy agree.
    index = make_index(edges)
    off = data.draw(st.integers(0, 63))
    # Calls of 1,024 values and more make the float32 plan; shorter ones compare in double.
    n = data.draw(st.one_of(st.integers(16, 700), st.integers(1024, 1800)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    with np.errstate(over="ignore"):   # nextafter of DBL_MAX, edges near it times 1.5: +-inf
        x = _cmp_values(edges, off + n, rng)
    mask = data.draw(st.sampled_from([None, "rare", "dense"]))
    if mask is not None:
        mask = rng.random(x.size) < (0.002 if mask == "rare" else 0.3)
    _assert_hist_everywhere(pa.array(x, mask=mask).slice(off), index, edges)


@pytest.mark.parametrize("share", [1.0, 1 / 16, 0.01])
def test_hist_cmp_float32_ties_hand_over(restore_path, share):
    # Values on the edges flag their groups of 16 for the double compares; where more than one
    # group in 32 has been (after 4,096 values), the rest of the column takes the double compares:
    # counts stay exact across the hand-over, within a call (a column without nulls) and between
    # calls (chunks, runs between nulls).
    edges = _run_edges("cmp-quantile9")
    index = make_index(edges)
    rng = np.random.default_rng(int(share * 1000))
    n = 30_011
    x = rng.standard_normal(n)
    on = rng.random(n) < share
    x[on] = rng.choice(edges, on.sum())
    x[rng.integers(0, n, 30)] = np.nan
    for arr in (pa.array(x), pa.array(x).slice(5), pa.chunked_array([x[:9_000], x[9_000:]]),
                pa.array(x, mask=rng.random(n) < 0.01)):
        _assert_hist_everywhere(arr, index, edges)


# ---- the bucket table on AVX2 (and AVX-512): hypothesis edge sets ---------------------------------

def _avx2_table_fits(edges):
    """fd_hist.c's qt2_build, in the same float64 operations: 17..127 edges one per bucket in buckets
    1..254 of the 16-bit grid w = int(min(x * s + c, 65535.5)), s = 253 * 256 / span,
    c = 256.5 - e_0 * s.  True when the AVX2 path counts a long enough chunk with the bucket table."""
    e = np.asarray(edges, np.float64)
    span = e[-1] - e[0]
    if not (16 < e.size < 128 and 0 < span < np.inf):
        return False
    s = 256.0 * 253 / span
    c = 256.5 - e[0] * s
    if not (np.isfinite(s) and np.isfinite(c)):
        return False
    j = (np.minimum(np.maximum(e * s + c, 0.0), 65535.5).astype(np.int64)) >> 8
    return bool(j[0] >= 1 and j[-1] <= 254 and np.all(np.diff(j) > 0))


@st.composite
def table_edges(draw):
    """17..127 edges at distinct buckets of a 256-bucket grid (first at bucket 1, last at 254), at a
    random place within each bucket, over spans from 1e-6 to 1e6 and offsets up to 1e4 spans (a
    larger offset leaves too few doubles in a span for the grid's cells to tell the edges apart)."""
    k = draw(st.integers(15, 125))
    inner = sorted(draw(st.lists(st.integers(2, 253), min_size=k, max_size=k, unique=True)))
    frac = np.array(draw(st.lists(st.floats(0.02, 0.98), min_size=k, max_size=k)))
    pos = np.concatenate([[0.0], np.array(inner) - 1 + frac, [253.0]])
    scale = draw(st.sampled_from([1e-6, 1e-3, 1.0, 37.0, 1e6]))
    lo = draw(st.sampled_from([0.0, -1.0, 1e3, -1e4])) * scale
    return np.unique(lo + pos * (scale / 253.0))


def _table_values(edges, n, rng, on_edges):
    """n values: a share `on_edges` on an edge, an ulp beside it or in its 16-bit grid cell (ties
    compared with the edge), specials, and the rest spread over and beyond the edges' span."""
    span = edges[-1] - edges[0]
    x = rng.uniform(edges[0] - 0.05 * span, edges[-1] + 0.05 * span, n)
    k = rng.integers(0, n, int(on_edges * n))
    e = rng.choice(edges, k.size)
    cell = span / (256.0 * 253)
    kind = rng.integers(0, 4, k.size)
    x[k] = np.where(kind == 0, e, np.where(kind == 1, np.nextafter(e, -np.inf), np.where(
        kind == 2, np.nextafter(e, np.inf), e + rng.uniform(-1.5, 1.5, k.size) * cell)))
    k = rng.integers(0, n, max(1, n // 64))
    x[k] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308,
                       -1.7976931348623157e308], k.size)
    return x


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(edges=table_edges(), data=st.data())
def test_hist_bucket_table_hypothesis(restore_path, edges, data):
    # Edge sets that fit the bucket table (the AVX2 one always; AVX-512's where its grid fits too),
    # values on, beside and in the grid cell of every edge, NaN, +-inf, +-DBL_MAX, at offsets 0..63
    # and lengths around the block sizes (16-value runs, 32-value vectors, 128-value blocks, the
    # 4,096 values before the fallback to the body is considered), with or without nulls: every
    # path, the numba twin and the NumPy oracle agree.
    assert _avx2_table_fits(edges)
    index = make_index(edges)
    assert not index.arith
    off = data.draw(st.integers(0, 63))
    n = 4096 + data.draw(st.sampled_from([0, 1, 15, 16, 17, 31, 32, 33, 127, 128, 129, 1000]))
    on_edges = data.draw(st.sampled_from([0.0, 0.01, 0.05, 0.5]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = _table_values(edges, off + n, rng, on_edges)
    mask = data.draw(st.sampled_from([None, "rare", "stretches"]))
    if mask == "rare":
        mask = rng.random(x.size) < 0.001
    elif mask == "stretches":
        mask = ((np.arange(x.size) // 300) % 4 == 0) & (rng.random(x.size) < 0.5)
    _assert_hist_everywhere(pa.array(x, mask=mask).slice(off), index, edges)


@pytest.mark.parametrize("n_edges", [17, 32, 33, 48, 49, 64, 65, 80, 81, 96, 97, 112, 113, 127])
def test_hist_bucket_table_every_row_count(restore_path, n_edges):
    # The AVX2 table's loop is built for each count of 16-edge rows of edge fractions it looks up
    # (2 to 8): edge counts at both ends of each, the last edge alone in its row at 16 r + 1 (a
    # loop of one row too few reads its fraction from the row before), values in every bucket.
    rng = np.random.default_rng(n_edges)
    inner = np.sort(rng.choice(np.arange(2, 254), n_edges - 2, replace=False))
    pos = np.concatenate([[0.0], inner - 1 + rng.uniform(0.02, 0.98, n_edges - 2), [253.0]])
    edges = -3.0 + pos * (7.0 / 253.0)
    assert edges.size == n_edges and _avx2_table_fits(edges)
    x = _table_values(edges, 20_000, rng, 0.01)
    _assert_hist_everywhere(pa.array(x), make_index(edges), edges)


@pytest.mark.parametrize("kind", ["qt-normal99", "qt-normal127", "qt-sample99"])
def test_bucket_table_edge_sets_fit(kind):
    # The run-path tests' quantile edge sets do take the AVX2 table (the predicate is qt2_build's).
    assert _avx2_table_fits(_run_edges(kind))
    assert not _avx2_table_fits(_run_edges("qt-lognormal99"))


@pytest.mark.parametrize("n", [4096, 4096 + 16, 4096 + 32 + 16, 5000])
def test_hist_bucket_table_all_ties(restore_path, n):
    # Every value in the grid cell of an edge (ties throughout: the fallback to the body after the
    # first 4,096 values), and every value on an edge exactly, NaN between: exact on every path.
    edges = _norm_ppf(np.linspace(0, 1, 101)[1:-1])
    assert _avx2_table_fits(edges)
    index = make_index(edges)
    rng = np.random.default_rng(n)
    cell = (edges[-1] - edges[0]) / (256.0 * 253)
    for x in (rng.choice(edges, n) + rng.uniform(-1, 1, n) * cell, rng.choice(edges, n)):
        x[::97] = np.nan
        for off in (0, 7):
            arr = pa.array(x).slice(off)
            want = hist_reference(arr, edges)
            assert want[1][1] > 0
            for p, (counts, specials) in _each_path(lambda: _hist(arr, index, "c")).items():
                np.testing.assert_array_equal(counts, want[0], err_msg=f"{p} n={n} off={off}")
                np.testing.assert_array_equal(specials, want[1], err_msg=p)


# ---- t-digest: the buffer sort and the fill -------------------------------------------------

def _key_sorted(x):
    """x sorted by the order-preserving uint64 keys (so -0.0 before 0.0): the sort's exact bits."""
    b = np.asarray(x, np.float64).view(np.uint64)
    sign = np.uint64(1 << 63)
    k = np.where(b & sign != 0, ~b, b | sign)
    k = np.sort(k)
    return np.where(k & sign != 0, k & ~sign, ~k).view(np.float64)


@st.composite
def sort_inputs(draw):
    """Finite float64 arrays built from pieces that reach every part of the sort: digits the
    same for every key (the radix pass skipped), keys sharing their top digit (the digits moved
    below the bits every key shares), runs of 2..32 and longer keys that share the sorted bits
    (insertion sort, the second radix sort on digits sized to the run), copies (ascending runs),
    subnormals and signed zeros, at sizes around the scan's blocks of eight and the insertion
    limits."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pieces = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["spread", "one-binade", "band", "narrow", "ulps", "copies", "ints",
                                     "subnormal", "zeros", "huge", "sentinels"]))
        k = draw(st.one_of(st.integers(0, 40), st.integers(41, 3000)))
        base = float(rng.normal() * 10.0 ** rng.integers(-5, 6)) or 1.0
        if kind == "spread":
            v = rng.standard_normal(k) * 10.0 ** rng.integers(-3, 4)
        elif kind == "one-binade":  # top digit the same for every key
            v = 1.0 + rng.random(k)
        elif kind == "band":  # within a relative 2^-23: one run of the top 33 bits
            v = base * (1.0 + rng.random(k) * 2.0 ** -23)
        elif kind == "narrow":  # far from zero, spread 2^-12 of it: sign, exponent, mantissa's top shared
            v = base * (1.0 + rng.standard_normal(k) * 2.0 ** -12)
        elif kind == "ulps":
            v = base + np.spacing(base) * rng.integers(0, 64, k)
        elif kind == "copies":
            v = np.full(k, base)
        elif kind == "ints":  # low digit zero for every key
            v = rng.integers(-40, 40, k).astype(np.float64)
        elif kind == "subnormal":
            v = rng.integers(-500, 500, k) * 5e-324
        elif kind == "zeros":
            v = np.where(rng.random(k) < 0.5, 0.0, -0.0)
        elif kind == "sentinels":  # a few codes far from a narrow piece: its keys in runs of every length
            v = rng.choice([-1.0, -999.0, 0.0], k)
        else:
            v = rng.choice([1.7e308, -1.7e308, 3.0, -3.0], k)
        pieces.append(np.asarray(v, np.float64))
    x = np.concatenate(pieces) if pieces else np.empty(0)
    order = draw(st.sampled_from(["shuffled", "as built", "ascending", "descending", "runs reversed"]))
    if order == "shuffled":
        x = x[rng.permutation(x.size)]
    elif order == "ascending":
        x = _key_sorted(x)
    elif order == "descending":
        x = _key_sorted(x)[::-1].copy()
    elif order == "runs reversed":  # sorted, then blocks reversed: descending inside each run
        y = _key_sorted(x)
        w = int(rng.integers(2, 40))
        x = np.concatenate([y[i:i + w][::-1] for i in range(0, y.size, w)]) if y.size else y
    return x


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(x=sort_inputs())
def test_tdigest_sort_paths_exact(restore_path, x):
    want = _key_sorted(x)
    for p, got in _each_path(lambda: sort_values(x)).items():
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64), err_msg=p)


@pytest.mark.parametrize("n", [2, 9, 16, 17, 18, 24, 25, 128, 129, 130, 4095, 4096, 32768])
def test_tdigest_sort_runs_at_the_ends(restore_path, n):
    # A run of keys sharing their top 33 bits at the very start, at the very end, alone, and
    # one that ends exactly on a block of eight: the run scans' tails on every path.
    rng = np.random.default_rng(n)
    run = 1e9 + rng.random(n // 2 + 1) * 1e-6
    for x in (np.concatenate([run, rng.normal(size=n // 2)]), np.concatenate([rng.normal(size=n // 2), run]),
              run[::-1].copy(), np.concatenate([rng.normal(size=8), run[:n % 9 + 2], rng.normal(size=7)])):
        x = x[rng.permutation(x.size)] if n % 2 else x
        want = _key_sorted(x)
        for p, got in _each_path(lambda: sort_values(x)).items():
            np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64), err_msg=f"{p} n={n}")


DIGEST_DTYPES = ["float64", "float32", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(data=st.data(), dtype=st.sampled_from(DIGEST_DTYPES))
def test_tdigest_fill_paths_exact(restore_path, data, dtype):
    # Few distinct values (the digest is exact: a cluster per value) with nulls, NaN and +-inf
    # at offsets 0..63 and sizes around blocks of eight: every path gives the same bytes, and
    # the counts per value are numpy's.
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    off = data.draw(st.integers(0, 63))
    n = data.draw(st.one_of(st.integers(0, 40), st.integers(41, 70_000)))
    x = rng.integers(0, 30, off + n).astype(np.float64)
    if dtype.startswith("float") and x.size and data.draw(st.booleans()):
        k = rng.integers(0, x.size, max(1, x.size // data.draw(st.sampled_from([3, 50, 1000]))))
        x[k] = rng.choice([np.nan, np.inf, -np.inf], k.size)
    mask = None
    if data.draw(st.booleans()):
        mask = rng.random(x.size) < data.draw(st.sampled_from([0.001, 0.05, 0.5]))
    arr = pa.array(x.astype(dtype), mask=mask).slice(off)
    got = _each_path(lambda: TDigest().update(arr).to_bytes())
    assert len(set(got.values())) == 1, {p: len(b) for p, b in got.items()}
    t = TDigest.from_bytes(got[PATHS[0]])
    valid = np.ones(x.size, bool) if mask is None else ~mask
    v = x[off:][valid[off:]]
    assert t.null_count == n - v.size
    assert t.nan_count == np.isnan(v).sum()
    assert t.posinf_count == (v == np.inf).sum() and t.neginf_count == (v == -np.inf).sum()
    fin = v[np.isfinite(v)]
    vals, counts = np.unique(fin, return_counts=True)
    m, w = t.centroids()
    assert np.array_equal(np.unique(m), vals)
    assert np.array_equal(np.array([w[m == u].sum() for u in vals]), counts)
