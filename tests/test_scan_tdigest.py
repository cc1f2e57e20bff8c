"""The t-digests of a scanned dataset made from the deciles' grid (``StreamingQuantiles.tdigest``).

A reference scan keeps, for each grid cell the digest may take as one cluster, the sum, minimum and
maximum of its values, and sends only the other cells' values (the two ends of the data, cells
with ties among other values) through t-digests.  These tests check, against numpy: the digests'
counts and extremes exactly; their rank errors against exact sorting, next to those of the digest
``TDigest.update`` makes of the same values; tie blocks kept exact; the same bytes whatever the
number of workers; and which columns take the grid's digest.
"""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdrift
from fastdrift import TDigest
from fastdrift.dataset import open_data
from fastdrift.errors import InvalidInputError, NativeError
from fastdrift.kernels import quantile as kq, tdigest as tdigest_kernels
from fastdrift.scan import plan_columns, profile_data
from fastdrift.sketches import quantiles

QS = np.linspace(0.001, 0.999, 999)


def _table(n, seed=3):
    rng = np.random.default_rng(seed)
    wild = rng.normal(5, 2, n)
    wild[rng.random(n) < 0.01] = np.nan
    wild[rng.random(n) < 0.001] = np.inf
    wild[rng.random(n) < 0.001] = -np.inf
    return pa.table({
        "normal": rng.normal(size=n),
        "lognormal": rng.lognormal(0, 2, n),
        "neg_lognormal": -rng.lognormal(0, 2, n),
        "pareto": rng.pareto(1.5, n) + 1.0,
        "zeros": np.where(rng.random(n) < 0.3, 0.0, rng.exponential(size=n)),
        "poisson": rng.poisson(3, n).astype(np.float64),
        "wild": pa.array(wild, mask=rng.random(n) < 0.05),
    })


def _scan(tmp_path, table, workers=2, seen=None, monkeypatch=None, reference=None):
    for i, part in enumerate(range(0, table.num_rows, table.num_rows // 3)):
        pq.write_table(table.slice(part, table.num_rows // 3), tmp_path / f"p{i}.parquet", row_group_size=40_000)
    if seen is not None:
        made = quantiles.StreamingQuantiles.tdigest

        def spy(self, m, name=None):
            seen.append(name)
            return made(self, m, name)
        monkeypatch.setattr(quantiles.StreamingQuantiles, "tdigest", spy)
    src = open_data([str(tmp_path)])
    if reference is not None:
        return profile_data(src, None, reference=reference, workers=workers)
    return profile_data(src, plan_columns(src.schema), workers=workers)


def _rank_errors(td, values):
    x = np.sort(values[~np.isnan(values)])
    est = td.quantile(QS)
    lo = np.searchsorted(x, est, "left") / x.size
    hi = np.searchsorted(x, est, "right") / x.size
    return np.where(QS < lo, lo - QS, np.where(QS > hi, QS - hi, 0.0))


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    table = _table(600_000)
    mp = pytest.MonkeyPatch()
    seen = []
    try:
        prof = _scan(tmp_path_factory.mktemp("grid"), table, seen=seen, monkeypatch=mp)
    finally:
        mp.undo()
    return table, prof, seen


def test_which_columns_take_the_grids_digest(scanned):
    table, prof, seen = scanned
    # continuous columns do (Pareto's grid, placed on a pilot of 40,000 rows, is too coarse at its
    # low end: most of its values would be sent to the digests, so it keeps the plain one); a
    # column of a few distinct values keeps the plain digest (every cell a tie block)
    assert {"normal", "lognormal", "neg_lognormal", "zeros", "wild"} <= set(seen) and "poisson" not in seen


def test_grid_digests_count_exactly(scanned):
    table, prof, _ = scanned
    for name in table.column_names:
        col = table.column(name)
        v = col.to_numpy(zero_copy_only=False).astype(np.float64)
        valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False))
        vals = v[valid]
        finite = vals[np.isfinite(vals)]
        td = prof[name].tdigest
        assert (td.count, td.null_count, td.nan_count, td.posinf_count, td.neginf_count, td.finite_count) == (
            len(col), col.null_count, int(np.isnan(vals).sum()), int((vals == np.inf).sum()),
            int((vals == -np.inf).sum()), finite.size), name
        notnan = vals[~np.isnan(vals)]  # a digest's extremes count the infinities
        assert (td.min, td.max) == (notnan.min(), notnan.max()), name
        assert td.n_centroids <= 2 * 100 + 8


def test_grid_digests_rank_errors(scanned):
    # measured (600,000 rows, 3 files): max rank errors 5e-5..1.6e-4 against 7e-5..2.6e-4 for
    # TDigest.update of the same values in one stream; the bound leaves room for other data seeds
    table, prof, _ = scanned
    for name in ("normal", "lognormal", "neg_lognormal", "pareto", "wild"):
        col = table.column(name)
        v = col.drop_null().to_numpy().astype(np.float64)  # NaN left out by _rank_errors, +-inf kept
        grid = _rank_errors(prof[name].tdigest, v)
        plain = _rank_errors(TDigest().update(col), v)
        assert grid.max() <= max(1.5 * plain.max(), 2.5e-4), (name, grid.max(), plain.max())
        assert grid.mean() <= max(1.5 * plain.mean(), 4e-5), (name, grid.mean(), plain.mean())
        for i in (0, -1):  # q = 0.001, 0.999
            assert grid[i] <= max(2.0 * plain[i], 2e-4), (name, QS[i], grid[i], plain[i])


def test_grid_digests_keep_ties_exact(scanned):
    table, prof, _ = scanned
    zeros = table.column("zeros").to_numpy()
    share = (zeros == 0).mean()
    q = np.linspace(0.0, share - 0.01, 50)
    assert np.all(prof["zeros"].tdigest.quantile(q) == 0.0)  # the tie block at the low end, exactly
    p = table.column("poisson").to_numpy()
    np.testing.assert_array_equal(prof["poisson"].tdigest.quantile(QS), np.quantile(p, QS, method="linear")
                                  .round())  # the plain digest: exact on few distinct values


def test_grid_digests_the_same_for_any_workers(tmp_path):
    table = _table(150_000, seed=8)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = _scan(tmp_path / "a", table, workers=1)
    two = _scan(tmp_path / "b", table, workers=2)
    for name in table.column_names:
        assert one[name].tdigest.to_bytes() == two[name].tdigest.to_bytes(), name


def test_grid_digests_the_same_however_the_main_thread_routes(tmp_path, monkeypatch):
    # The main thread gathers merged fragments' digest-cell values and routes them a batch at a
    # time: the digests are those of routing each fragment's at its merge, also when fragments with
    # digests of their own (more such values than the tail batch) come between them.  14
    # fragments of 10,000 rows, about 130 such values each in most columns: a tail batch of 130
    # gives some fragments digests and leaves others' values waiting.  Digests of small buffers,
    # so that they cluster during the scan (values reaching a buffer in another order between two
    # flushes would make the same digest).
    table = _table(140_000, seed=12)
    monkeypatch.setattr(quantiles, "_TAIL_BATCH", 130)
    monkeypatch.setattr(tdigest_kernels, "BUFFER_MIN", 512)
    monkeypatch.setattr(tdigest_kernels, "BUFFER_PER_CENTROID", 2)
    merge, between = quantiles.StreamingQuantiles.merge, []

    def spy(self, st, rows):
        if self.digest is not None and st[5] is not None and self._waiting_n:
            between.append(self._waiting_n)
        return merge(self, st, rows)
    monkeypatch.setattr(quantiles.StreamingQuantiles, "merge", spy)
    got = {}
    for route in (1, 300, 1 << 16):
        monkeypatch.setattr(quantiles, "_ROUTE_BATCH", route)
        d = tmp_path / str(route)
        d.mkdir()
        for i, part in enumerate(range(0, table.num_rows, 20_000)):
            pq.write_table(table.slice(part, 20_000), d / f"p{i}.parquet", row_group_size=10_000)
        src = open_data([str(d)])
        got[route] = profile_data(src, plan_columns(src.schema), workers=2)
        if route > 1:
            assert len(between) >= 3, route  # values waited while a fragment's digests merged
        between.clear()
    for name in table.column_names:
        want = got[1][name].tdigest.to_bytes()
        assert got[300][name].tdigest.to_bytes() == want, name
        assert got[1 << 16][name].tdigest.to_bytes() == want, name


def test_grid_digests_the_same_on_either_backend(tmp_path):
    # the numba twin of the grid kernel keeps the same sums, extremes and digest values bit for bit
    table = _table(120_000, seed=9)
    (tmp_path / "c").mkdir()
    (tmp_path / "numba").mkdir()
    got = {}
    try:
        for b in ("c", "numba"):
            fastdrift.set_backend(b)
            got[b] = _scan(tmp_path / b, table)
    finally:
        fastdrift.set_backend(None)
    for name in table.column_names:
        assert got["c"][name].tdigest.to_bytes() == got["numba"][name].tdigest.to_bytes(), name


def test_grid_digests_of_awkward_columns(tmp_path, monkeypatch):
    # a column whose later rows leave the pilot's window (they all go through the end's digest),
    # values whose cell sums overflow float64, wide integers and float32: counts exact, rank errors
    # of the grid's digest no more than 2x the plain digest's (or 3e-4)
    rng = np.random.default_rng(12)
    n = 240_000
    drift = rng.normal(size=n)
    drift[n // 2:] += 1000.0
    table = pa.table({
        "drift": drift,
        "huge": rng.uniform(0.5, 1.0, n) * 1.7e308,
        "wide_int": rng.integers(-2**40, 2**40, n),
        "f32": rng.lognormal(0, 1, n).astype(np.float32),
    })
    seen = []
    prof = _scan(tmp_path, table, seen=seen, monkeypatch=monkeypatch)
    assert {"drift", "huge", "wide_int", "f32"} <= set(seen)
    for name in table.column_names:
        v = table.column(name).to_numpy().astype(np.float64)
        td = prof[name].tdigest
        assert (td.count, td.finite_count, td.min, td.max) == (n, n, v.min(), v.max()), name
        grid, plain = _rank_errors(td, v), _rank_errors(TDigest().update(table.column(name)), v)
        assert grid.max() <= max(2.0 * plain.max(), 3e-4), (name, grid.max(), plain.max())


@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_current_profiles_take_the_grids_digest(scanned, tmp_path, monkeypatch, shift):
    # a current profile of files (on the reference's bins) places its own grid on its pilot: the
    # same digests, counts exact, whether or not the data moved from the reference
    table, ref, _ = scanned
    cur = _table(300_000, seed=4)
    cur = pa.table({n: pc.add(cur.column(n), shift) if n != "poisson" else cur.column(n)
                    for n in cur.column_names})
    seen = []
    prof = _scan(tmp_path, cur, seen=seen, monkeypatch=monkeypatch, reference=ref)
    mem = fastdrift.profile(cur, reference=ref)  # in memory: the plain digests, the same bins
    assert {"normal", "lognormal", "neg_lognormal", "zeros", "wild"} <= set(seen) and "poisson" not in seen
    for name in cur.column_names:
        col = cur.column(name)
        v = col.drop_null().to_numpy().astype(np.float64)
        td = prof[name].tdigest
        assert (td.count, td.null_count, td.nan_count) == (len(col), col.null_count, int(np.isnan(v).sum())), name
        assert prof[name].histogram.to_bytes() == mem[name].histogram.to_bytes(), name
        grid, plain = _rank_errors(td, v), _rank_errors(TDigest().update(col), v)
        assert grid.max() <= max(1.5 * plain.max(), 2.5e-4), (name, grid.max(), plain.max())


def test_digest_cells():
    rng = np.random.default_rng(1)
    x = rng.normal(size=100_000)
    x[:5000] = 0.25  # a tie block
    plan = kq.grid_plan(64 * 1024, -3.0, 3.0)
    counts = kq.grid_counts([next(iter(fastdrift.adapters.arrow.iter_columns(pa.array(x))))], plan)
    cells = quantiles.digest_cells(x[::4], plan, counts, 100.0, x.size)
    c = quantiles._cells(np.array([0.25, 0.0, -2.999, 2.999]), plan)
    assert cells[0] and cells[-1]  # unbounded
    assert cells[c[0]] and not cells[c[1]]  # the tie's cell; the median's is a cluster's small part
    assert cells[c[2]] and cells[c[3]]  # at the ends of the data the digest's clusters are small
    # in the body, only the tie's cell (its weight, 5 % of the values, does not make the cells
    # between it and the end coarse)
    body = quantiles._cells(np.array([-1.0, 1.0]), plan)
    assert np.flatnonzero(cells[body[0]:body[1]]).tolist() == [c[0] - body[0]]


def test_add_clusters_refuses_bad_clusters():
    td = TDigest()
    good = dict(means=np.array([1.0, 2.0]), weights=np.array([3.0, 1.0]), pure=np.array([0, 1]), lo=0.5, hi=2.0)
    for bad in (dict(means=np.array([2.0, 1.0])), dict(weights=np.array([0.0, 1.0])),
                dict(weights=np.array([1.5, 1.0])), dict(means=np.array([np.nan, 2.0])), dict(lo=1.5), dict(hi=1.0),
                dict(hi=np.inf)):
        with pytest.raises(InvalidInputError):
            td._add_clusters(**{**good, **bad})
        assert td.count == 0 and td.finite_count == 0  # nothing staged
    td._add_clusters(**good)
    assert (td.finite_count, td.min, td.max) == (4, 0.5, 2.0)
    # pure clusters of copies stay exact: the quantiles of 1, 1, 1, 2
    pure = TDigest()
    pure._add_clusters(np.array([1.0, 2.0]), np.array([3.0, 1.0]), np.array([1, 1]), 1.0, 2.0)
    np.testing.assert_array_equal(pure.quantile([0.0, 0.25, 0.5, 0.66, 1.0]),
                                  np.quantile([1.0, 1.0, 1.0, 2.0], [0.0, 0.25, 0.5, 0.66, 1.0]))


def test_cells_merge_against_numpy():
    rng = np.random.default_rng(5)
    n = 1000
    counts = rng.integers(0, 50, n)
    stats, part = rng.normal(size=(n, 3)), kq.empty_cells(n)
    assert part.ctypes.data % 64 == 0 and (part == (0.0, 0.0, np.inf, -np.inf)).all()  # records within lines
    part[:, 0] = rng.integers(0, 50, n)
    part[:, 1:] = rng.normal(size=(n, 3))
    part[::7] = (0.0, 0.0, np.inf, -np.inf)  # empty cells of the part
    part[3, 2:] = (-0.0, 0.0)
    stats[3, 1:] = (0.0, -0.0)  # equal extremes: the running one stays
    part[5, 0] = 2.0 ** 53  # the largest count a record holds exactly
    want_counts, want = counts + part[:, 0].astype(np.int64), stats.copy()
    want[:, 0] += part[:, 1]
    want[:, 1] = np.where(part[:, 2] < stats[:, 1], part[:, 2], stats[:, 1])
    want[:, 2] = np.where(part[:, 3] > stats[:, 2], part[:, 3], stats[:, 2])
    kq.cells_merge(counts, stats, part)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(stats.view(np.int64), want.view(np.int64))
    assert (part == (0.0, 0.0, np.inf, -np.inf)).all()
    for bad in ((counts, stats, stats), (counts, stats[:, :2].copy(), part), (counts, stats, part[:, :3].copy()),
                (counts.astype(np.int32), stats, part), (counts, stats, part[:-1].copy())):
        with pytest.raises(InvalidInputError):
            kq.cells_merge(*bad)
    # a record whose count is not a whole number in [0, 2**53]: an error, nothing folded
    for w in (1.5, -1.0, 2.0 ** 53 + 2, np.nan, np.inf):
        part = kq.empty_cells(n)
        part[:, 0], part[:, 1] = 1.0, 0.5
        part[n - 1, 0] = w
        before = counts.copy(), stats.copy()
        with pytest.raises(NativeError):
            kq.cells_merge(counts, stats, part)
        np.testing.assert_array_equal(counts, before[0])
        np.testing.assert_array_equal(stats, before[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_grid_digests_on_generated_columns(tmp_path_factory, data):
    # any column a scan may meet (a few rows or many, ties, NaN, +-inf, nulls, one value, a drift
    # after the pilot), the reference's and a current profile's digests: counts and extremes
    # exact, quantiles non-decreasing within them, rank errors within a plain digest's reach
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.sampled_from([1, 37, 3000, 60_000]))
    kind = data.draw(st.sampled_from(["normal", "lognormal", "ints", "zeros", "constant", "drift"]))
    x = {"normal": lambda: rng.normal(5, 3, n), "lognormal": lambda: rng.lognormal(0, 2, n),
         "ints": lambda: rng.integers(0, data.draw(st.sampled_from([3, 300, 10**6])), n).astype(float),
         "zeros": lambda: np.where(rng.random(n) < 0.4, 0.0, rng.exponential(size=n)),
         "constant": lambda: np.full(n, 2.5),
         "drift": lambda: rng.normal(size=n) + np.where(np.arange(n) > n // 2, 50.0, 0.0)}[kind]()
    for value, share in ((np.nan, data.draw(st.sampled_from([0.0, 0.05]))),
                         (np.inf, data.draw(st.sampled_from([0.0, 0.01]))), (-np.inf, 0.005)):
        x[rng.random(n) < share] = value
    table = pa.table({"x": pa.array(x, mask=rng.random(n) < data.draw(st.sampled_from([0.0, 0.1])))})
    path = tmp_path_factory.mktemp("gen")
    pq.write_table(table, path / "a.parquet", row_group_size=max(n // 3, 1))
    src = open_data([str(path)])
    seen, made = [], quantiles.StreamingQuantiles.tdigest
    quantiles.StreamingQuantiles.tdigest = lambda self, m, name=None: seen.append(name) or made(self, m, name)
    try:
        ref = profile_data(src, plan_columns(src.schema), workers=2)
        cur = profile_data(src, None, reference=ref, workers=2)
    finally:
        quantiles.StreamingQuantiles.tdigest = made
    if n == 60_000 and kind in ("normal", "drift"):
        assert seen == ["x", "x"]  # both digests from the grid (lognormal's pilot of 20,000 rows may
        # send more than half its values to the digests: then the plain one)
    v = table.column("x").drop_null().to_numpy().astype(np.float64)
    notnan = np.sort(v[~np.isnan(v)])
    for prof in (ref, cur):
        td = prof["x"].tdigest
        assert (td.count, td.null_count, td.nan_count) == (n, table.column("x").null_count, int(np.isnan(v).sum()))
        assert td.finite_count == int(np.isfinite(v).sum())
        if notnan.size == 0:
            assert td.is_empty
            continue
        assert (td.min, td.max) == (notnan[0], notnan[-1])
        q = td.quantile(QS)
        assert np.all(q[1:] >= q[:-1]) and q[0] >= notnan[0] and q[-1] <= notnan[-1]
        grid = _rank_errors(td, v)
        plain = _rank_errors(TDigest().update(table.column("x")), v)
        far = np.ones(QS.size, bool)
        if kind == "drift":
            # The drift leaves a gap of 50 at rank `gap`. A cluster next to it may straddle it in any
            # t-digest, and quantiles then interpolate across the gap: the plain digest's as much as
            # the grid's, which one lands worse being chance (300 draws at 60,000 rows: the grid's
            # largest error near the gap 0.4-2.3x the plain one's). Near the gap (two of the k1
            # scale's largest clusters, 2 pi / delta of the values, each way) the bound is that
            # largest cluster, pi / delta; elsewhere, as for any column.
            gap = np.mean(notnan < 25.0)
            far = np.abs(QS - gap) >= 2 * np.pi / td.compression
            assert grid[~far].max(initial=0.0) <= np.pi / td.compression, (n, grid[~far].max(), gap)
        assert grid[far].max() <= max(2.0 * plain[far].max(), 1e-3), (kind, n, grid[far].max(), plain[far].max())
