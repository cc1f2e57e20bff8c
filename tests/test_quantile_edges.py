"""Reference edges are np.quantile's, bit for bit, whatever the data and the backend."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastdrift
from fastdrift.adapters import iter_columns
from fastdrift.errors import InvalidInputError
from fastdrift.kernels import native
from fastdrift.kernels.quantile import GRID, GridPlan, exact_quantiles, grid_counts, select
from fastdrift.kernels.oracles import KERNELS
from fastdrift.sketches.histogram import reference_edges

pytest.importorskip("numba")

# The `backend` fixture only selects the backend, which every example of a
# test shares, so running the examples under one fixture instance is sound.
PER_BACKEND = [HealthCheck.function_scoped_fixture]

DTYPES = ["float64", "float32", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


def _oracle(x: np.ndarray, qs):
    f = x.astype(np.float64)
    f = f[np.isfinite(f)]
    return np.quantile(f, qs)


@settings(max_examples=150, deadline=None, suppress_health_check=PER_BACKEND)
@given(dtype=st.sampled_from(DTYPES), data=st.data(), qs=st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_exact_quantiles_equal_np_quantile(backend, dtype, data, qs):
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
    np.testing.assert_array_equal(KERNELS["quantile"]["reference"](x, qs), want)


@settings(max_examples=60, deadline=None, suppress_health_check=PER_BACKEND)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5000), ties=st.integers(1, 50),
       offset=st.integers(0, 13), nulls=st.booleans())
def test_reference_edges_with_ties_nulls_and_offsets(backend, seed, n, ties, offset, nulls):
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


def test_reference_edges_large_skewed(backend, rng):
    x = np.concatenate([rng.lognormal(0, 2, 300_000), np.full(200_000, 7.0), [1e300, -1e300]])
    rng.shuffle(x)
    np.testing.assert_array_equal(reference_edges(x), np.unique(np.quantile(x, np.arange(1, 10) / 10)))
    y = np.array([-1.7e308, 1.7e308, 0.0, 1.0])  # max - min overflows to inf
    np.testing.assert_array_equal(reference_edges(y), np.quantile(y, np.arange(1, 10) / 10))
    np.testing.assert_array_equal(reference_edges(x, bins=100), np.unique(np.quantile(x, np.arange(1, 100) / 100)))


# ---- the grid kernels themselves: C == numba, value for value ----------------------

def _grid_both(v, lo, inv, n_cells, flags, cap, start):
    """(status, counts) of the grid count and (status, n_out, out) of the grid select, per backend
    object, and the same of the fused count-and-select."""
    plan = GridPlan(0, lo, lo, n_cells, inv)
    res = {}
    for be in ("c", "numba"):
        k = GRID(be)
        counts = np.zeros(n_cells, dtype=np.int64)
        out = np.full(cap, -7.0)
        got = np.array([start], dtype=np.int64)
        rc1 = k.count(v, plan, counts)
        rc2 = k.select(v, plan, flags, out, got)
        res[be] = (rc1, counts, rc2, int(got[0]), out)
        # both in one read: the same counts, status and selection
        counts2, out2 = np.zeros(n_cells, dtype=np.int64), np.full(cap, -7.0)
        got2 = np.array([start], dtype=np.int64)
        rc3 = k.count_select(v, plan, counts2, flags, out2, got2)
        res[be + " fused"] = (rc1, counts2, rc3, int(got2[0]), out2)
    return res


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from(DTYPES), data=st.data(), n_cells=st.integers(1, 40),
       offset=st.integers(0, 9), nulls=st.booleans(),
       # lo and inv are arbitrary, not the data's min and scale, so that values
       # fall below the grid, beyond its top, and (x - lo) * inv overflows or is inf * 0
       lo=st.floats(-1e3, 1e3) | st.floats(allow_nan=False, allow_infinity=False),
       inv=st.just(0.0) | st.floats(1e-3, 1e3) | st.floats(0, 1e308))
def test_grid_kernels_c_equal_numba(dtype, data, n_cells, offset, nulls, lo, inv):
    x = data.draw(hnp.arrays(np.dtype(dtype), st.integers(1, 300),
                             elements=hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
                             if dtype.startswith("float") else None))
    mask = data.draw(hnp.arrays(np.bool_, x.size)) if nulls else None
    off = min(offset, x.size - 1)
    arr = pa.array(x, mask=mask).slice(off)
    flags = data.draw(hnp.arrays(np.uint8, n_cells, elements=st.integers(0, 1)))
    f = x[off:].astype(np.float64)
    n_finite = int((np.isfinite(f) & (True if mask is None else ~mask[off:])).sum())
    fin = f[np.isfinite(f)]
    if fin.size and data.draw(st.booleans()):
        # A grid over roughly the data's range, as exact_quantiles builds it
        # (otherwise most values share one clamped cell), shifted and scaled a
        # little so that both clamps are still reached.
        with np.errstate(over="ignore"):  # max - min of finite values can overflow to inf
            span = float(fin.max() - fin.min())
        lo = float(fin.min()) + data.draw(st.floats(-0.2, 0.2)) * span
        lo = lo if np.isfinite(lo) else float(fin.min())
        inv = n_cells / span * data.draw(st.floats(0.5, 1.5)) if 0 < span < np.inf else 0.0
    for v in iter_columns(arr):
        # cap below the selection (FD_EGROW), exactly it, or above; start > 0 appends
        start = data.draw(st.integers(0, 3))
        cap = data.draw(st.integers(0, start + n_finite + 2))
        r = _grid_both(v, lo, inv, n_cells, flags, cap, start)
        got = r["c"][3]
        for fused in ("c fused", "numba fused"):
            assert r[fused][2:4] == r["c"][2:4], fused
            np.testing.assert_array_equal(r[fused][1], r["c"][1])
            np.testing.assert_array_equal(r[fused][4][:got], r["c"][4][:got])
        (rc1, counts, rc2, got, out), (nrc1, ncounts, nrc2, ngot, nout) = r["c"], r["numba"]
        assert (rc1, rc2, got) == (nrc1, nrc2, ngot)
        assert rc1 == native.lib.FD_OK and rc2 in (native.lib.FD_OK, native.lib.FD_EGROW)
        np.testing.assert_array_equal(counts, ncounts)
        np.testing.assert_array_equal(out[:got], nout[:got])  # out[got:] is the kernels' scratch
        for be in r:
            assert (r[be][4][:min(start, cap)] == -7.0).all(), be  # appended after what was there
        assert counts.sum() == n_finite


@pytest.mark.parametrize("lo,inv,n_cells", [
    (0.0, 1.0, 0), (0.0, -1.0, 4), (0.0, np.nan, 4), (np.nan, 1.0, 4), (np.inf, 1.0, 4), (-np.inf, 1.0, 4),
])
def test_grid_kernels_reject_bad_arguments(lo, inv, n_cells):
    # The C kernels check the grid for any caller; Python checks it once, for both backends, when
    # the plan is made.
    v = next(iter_columns(np.arange(10.0)))
    counts, flags, out, got = np.zeros(4, np.int64), np.ones(4, np.uint8), np.zeros(10), np.zeros(1, np.int64)
    assert native.lib.fd_grid_count(native.column(v), lo, inv, n_cells, native.ptr("int64_t*", counts)) \
        == native.lib.FD_EINVAL
    assert native.lib.fd_grid_select(native.column(v), lo, inv, n_cells, native.ptr("uint8_t*", flags),
                                     native.ptr("double*", out), 10, native.ptr("int64_t*", got)) \
        == native.lib.FD_EINVAL
    with pytest.raises(InvalidInputError, match="not a quantile grid"):
        GridPlan(10, lo, 9.0, n_cells, inv)


def test_grid_passes_refuse_arrays_of_the_wrong_size(backend):
    # numpy arrays carry their sizes, which C has to trust: too short is refused before a kernel runs
    v = next(iter_columns(np.arange(10.0)))
    plan = GridPlan(10, 0.0, 9.0, 8, 8 / 9)
    with pytest.raises(InvalidInputError, match="out must be"):
        grid_counts([v], plan, out=np.zeros(7, np.int64))
    with pytest.raises(InvalidInputError, match="flags must hold 8"):
        select([v], plan, np.ones(7, np.uint8), 10)


def test_a_small_selection_does_not_pin_the_chunk_sized_buffer():
    # A first pass keeps each batch's selection until its in-order merge: a view of the buffer
    # sized for the whole chunk would keep 8 bytes per value of every batch alive.
    from fastdrift.adapters.arrow import iter_columns
    x = np.random.default_rng(1).normal(size=100_000)
    from fastdrift.kernels import quantile as kq
    plan = kq.grid_plan(x.size, float(x.min()), float(x.max()))
    flags = np.zeros(plan.n_cells, np.uint8)
    flags[plan.n_cells // 2] = 1
    views = list(iter_columns(pa.array(x), "x"))
    counts = np.zeros(plan.n_cells, np.int64)
    for got in (kq.count_select(views, plan, counts, flags), kq.select(views, plan, flags, x.size)):
        assert 0 < got.size < 1_000
        owner = got if got.base is None else got.base
        assert owner.nbytes <= 2 * got.nbytes


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from(DTYPES), data=st.data(), n_cells=st.integers(1, 40),
       offset=st.integers(0, 9), nulls=st.booleans(), n=st.integers(0, 5000))
def test_moments_grid_kernel_equals_the_two_kernels(dtype, data, n_cells, offset, nulls, n):
    # fd_moments_grid_update == fd_moments_update then fd_grid_count_select, bit for bit: moments
    # state, grid counts, selected values and their order, status (cap overflow included).
    from fastdrift.kernels import quantile as kq
    from fastdrift.kernels.moments import moments_update
    x = data.draw(hnp.arrays(np.dtype(dtype), n,
                             elements=hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
                             if dtype.startswith("float") else None))
    mask = data.draw(hnp.arrays(np.bool_, x.size)) if nulls else None
    arr = pa.array(x, mask=mask).slice(min(offset, x.size))
    f = x.astype(np.float64)
    fin = f[np.isfinite(f)]
    lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
    with np.errstate(over="ignore"):
        span = hi - lo
    plan = kq.GridPlan(n=max(fin.size, 1), lo=lo, hi=hi, n_cells=n_cells,
                       inv=n_cells / span if 0 < span < np.inf else 0.0)
    flags = data.draw(hnp.arrays(np.uint8, n_cells, elements=st.integers(0, 1)))
    views = list(iter_columns(arr))
    ints0 = np.zeros(5, np.int64)
    flts0 = np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])
    if data.draw(st.booleans()):  # a state that already holds data
        ints0[:] = [3, 1, 0, 0, 0]
        flts0[:] = [-1.0, 2.0, 1.5, 0.5, 4.25]
    i1, f1, c1 = ints0.copy(), flts0.copy(), np.zeros(n_cells, np.int64)
    got1 = kq.moments_count_select(views, i1, f1, plan, c1, flags, backend="c")
    i2, f2, c2 = ints0.copy(), flts0.copy(), np.zeros(n_cells, np.int64)
    for v in views:
        moments_update(v, i2, f2, backend="c")
    got2 = kq.count_select([v for v in views if v.kind == "numeric"], plan, c2, flags, backend="c")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(f1.view(np.int64), f2.view(np.int64))  # bit for bit, NaN-free
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(got1, got2)


@pytest.mark.parametrize("nulls", [False, True])
@pytest.mark.parametrize("cap", [None, 40, 3000])
def test_moments_grid_kernel_sparse_and_dense_stretches(nulls, cap):
    # Blocks of 4,096 values that hold few values (fewer than 1 in 32: the next block stores a group
    # of 8 only when one of its cells is held) alternate with blocks that hold many, the selection's
    # cap reached in either kind or never: the same counts, selection, order and status as the
    # separate kernels (fd_select.c), and the selection is numpy's in column order.
    from fastdrift.kernels import quantile as kq
    from fastdrift.kernels.moments import moments_update
    rng = np.random.default_rng(5)
    n_cells, lo, hi = 4096, -6.0, 6.0
    inv = n_cells / (hi - lo)
    held = np.zeros(n_cells, np.uint8)
    held[[100, 2048, 2049, 3000]] = 1
    dense = lo + (2048.5 + rng.uniform(-0.4, 1.4, 9_000)) / inv  # mostly in cells 2048 and 2049
    x = np.concatenate([rng.normal(size=30_001), dense, rng.normal(size=20_000), dense[:3_000],
                        rng.normal(size=17_123)])
    x[rng.integers(0, x.size, 50)] = np.nan
    mask = rng.random(x.size) < 0.05 if nulls else None
    arr = pa.array(x, mask=mask).slice(7)
    views = list(iter_columns(arr))
    plan = GridPlan(n=x.size, lo=lo, hi=hi, n_cells=n_cells, inv=inv)
    capacity = x.size if cap is None else cap
    res = []
    for fused in (True, False):
        ints, flts = np.zeros(5, np.int64), np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])
        counts, out, got = np.zeros(n_cells, np.int64), np.zeros(capacity), np.zeros(1, np.int64)
        args = (lo, inv, n_cells, native.ptr("int64_t*", counts), native.ptr("uint8_t*", held),
                native.ptr("double*", out), capacity, native.ptr("int64_t*", got))
        rcs = []
        for v in views:
            if fused:
                rcs.append(native.lib.fd_moments_grid_update(native.column(v), native.ptr("int64_t*", ints),
                                                             native.ptr("double*", flts), *args))
            else:
                moments_update(v, ints, flts, backend="c")
                rcs.append(native.lib.fd_grid_count_select(native.column(v), *args))
        res.append((rcs, int(got[0]), out[:int(got[0])].tolist(), counts.tolist(), ints.tolist(),
                    flts.view(np.int64).tolist()))
    assert res[0] == res[1]
    valid = x[7:] if mask is None else x[7:][~mask[7:]]
    fin = valid[np.isfinite(valid)]
    cell = np.minimum(np.maximum((fin - lo) * inv, 0.0), n_cells - 1).astype(np.int64)
    want = fin[held[cell] == 1]
    assert np.array_equal(np.bincount(cell, minlength=n_cells), res[0][3])
    assert want.size > 9_000 and res[0][2] == want[:capacity].tolist()
    full = native.lib.FD_OK if want.size <= capacity else native.lib.FD_EGROW
    assert res[0][0][-1] == full
    # the fused call through the Python entry point: the same selection (no cap)
    c2 = np.zeros(n_cells, np.int64)
    i2, f2 = np.zeros(5, np.int64), np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])
    assert kq.moments_count_select(views, i2, f2, plan, c2, held, backend="c").tolist() == want.tolist()


def test_moments_grid_kernel_overflow_and_bad_arguments():
    from fastdrift.kernels import quantile as kq
    x = np.array([0.5, 1.5, np.nan, 1.2, 1.7, np.inf, 0.1, 1.9])
    v = next(iter_columns(pa.array(x)))
    plan = kq.grid_plan(x.size, 0.1, 1.9)
    flags = np.zeros(plan.n_cells, np.uint8)
    flags[plan.n_cells // 2:] = 1  # the upper half of the values
    res = []
    for fused in (True, False):
        ints, flts = np.zeros(5, np.int64), np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])
        counts, out, got = np.zeros(plan.n_cells, np.int64), np.zeros(2), np.zeros(1, np.int64)
        args = (plan.lo, plan.inv, plan.n_cells, native.ptr("int64_t*", counts), native.ptr("uint8_t*", flags),
                native.ptr("double*", out), 2, native.ptr("int64_t*", got))
        if fused:
            rc = native.lib.fd_moments_grid_update(native.column(v), native.ptr("int64_t*", ints),
                                                   native.ptr("double*", flts), *args)
        else:
            rc = native.lib.fd_grid_count_select(native.column(v), *args)
        res.append((rc, int(got[0]), out.tolist(), counts.tolist()))
    assert res[0] == res[1] and res[0][0] == native.lib.FD_EGROW and res[0][1] == 2
    assert sum(res[0][3]) == 6  # counts complete despite the overflow: the finite values
    ints, flts = np.zeros(5, np.int64), np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])
    counts, got = np.zeros(plan.n_cells, np.int64), np.zeros(1, np.int64)
    for lo, inv, n_cells in ((np.nan, 1.0, 4), (0.0, -1.0, 4), (0.0, 1.0, 0), (0.0, 1.0, 2**31)):
        rc = native.lib.fd_moments_grid_update(native.column(v), native.ptr("int64_t*", ints),
                                               native.ptr("double*", flts), lo, inv, n_cells,
                                               native.ptr("int64_t*", counts), native.ptr("uint8_t*", flags),
                                               native.ffi.NULL, 0, native.ptr("int64_t*", got))
        assert rc == native.lib.FD_EINVAL
    assert ints.sum() == 0 and counts.sum() == 0  # nothing counted by a refused call


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(0, 3000), n_cells=st.integers(1, 40), share=st.floats(0, 1),
       nulls=st.booleans(), start=st.integers(0, 9))
def test_grid_selections_stop_at_cap(data, n, n_cells, share, nulls, start):
    # fd_grid_select and fd_moments_grid_update store every value while there is room and keep
    # the held ones (eight at a time in the fused kernel): against numpy, the selection is the
    # first cap - start finite values of flagged cells in column order, nothing is written past
    # cap nor before start, and FD_EGROW says when more were flagged.
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.02] = np.inf
    mask = rng.random(n) < 0.1 if nulls else None
    arr = pa.array(x, mask=mask)
    v = next(iter_columns(arr)) if n else None
    plan = GridPlan(max(n, 1), -2.0, 2.0, n_cells, n_cells / 4.0)
    flags = (rng.random(n_cells) < share).astype(np.uint8)
    valid = np.isfinite(x) & (True if mask is None else ~mask)
    t = np.clip((x[valid] - plan.lo) * plan.inv, 0.0, n_cells - 1)
    want = x[valid][flags[t.astype(np.int64)].astype(bool)]
    cap = start + data.draw(st.integers(0, want.size + 9))
    for fused in (False, True):
        buf = np.full(cap + 16, -7.0)  # out is buf[:cap]; the rest must stay as it is
        got = np.array([start], np.int64)
        args = (native.ptr("uint8_t*", flags), native.ptr("double*", buf), cap, native.ptr("int64_t*", got))
        if v is None:
            continue
        if fused:
            ints, flts = np.zeros(5, np.int64), np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])
            counts = np.zeros(n_cells, np.int64)
            rc = native.lib.fd_moments_grid_update(native.column(v), native.ptr("int64_t*", ints),
                                                   native.ptr("double*", flts), plan.lo, plan.inv, n_cells,
                                                   native.ptr("int64_t*", counts), *args)
            assert counts.sum() == valid.sum()
        else:
            rc = native.lib.fd_grid_select(native.column(v), plan.lo, plan.inv, n_cells, *args)
        keep = min(want.size, cap - start)
        assert rc == (native.lib.FD_EGROW if want.size > cap - start else native.lib.FD_OK), fused
        assert int(got[0]) == start + keep
        np.testing.assert_array_equal(buf[start:start + keep], want[:keep])
        assert (buf[:start] == -7.0).all() and (buf[cap:] == -7.0).all(), fused


def test_grid_passes_skip_null_chunks_and_refuse_other_kinds(backend):
    # A null-typed chunk has no finite values to count or select; any other kind but numeric is refused
    # by both backends alike (the numba kernels would read its buffers as numbers).
    v = next(iter_columns(np.arange(10.0)))
    nulls = next(iter_columns(pa.nulls(5)))
    plan = GridPlan(10, 0.0, 9.0, 8, 8 / 9)
    np.testing.assert_array_equal(grid_counts([nulls, v], plan), grid_counts([v], plan))
    np.testing.assert_array_equal(select([nulls, v], plan, np.ones(8, np.uint8), 10), np.arange(10.0))
    with pytest.raises(fastdrift.errors.SchemaError, match="'s': a quantile grid needs numeric values"):
        grid_counts([next(iter_columns(pa.array(["a"]), name="s"))], plan)
