"""Exact decile bins of a scanned dataset, whichever way ``profile_data`` gets them.

The reference profile of files counts its decile grid in the first pass and keeps the
values of the cells around each decile (the cells only shrink as rows come in); when a
wanted order statistic ends up in a cell that was let go (data ordered so that a prefix
misleads) or the kept values exceed their cap, it selects in a second pass over the same
grid or runs the grid and the selection anew.  Every path must give ``np.quantile``'s edges
(numpy's default method, over the finite values) and ``np.searchsorted`` bin counts, which
is what these tests check, on hypothesis-generated data with ties, NaN, +-inf, nulls and
constant columns, in random, sorted and drifting order, over several row groups.
"""
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from fastdrift import scan
from fastdrift.sketches import quantiles, reference
from fastdrift.dataset import open_data
from fastdrift.scan import plan_columns, profile_data

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])


def _column(rng, n, ties, order, nan, inf, null):
    if ties:
        x = rng.integers(0, ties, n).astype(np.float64)
    else:
        x = rng.lognormal(0, 2, n) * rng.choice([-1.0, 1.0], n)
    if order == "sorted":
        x = np.sort(x)
    elif order == "reversed":
        x = np.sort(x)[::-1].copy()
    elif order == "drift":  # the second half shifted: a prefix misleads
        x[n // 2:] += 1000.0
    x[rng.random(n) < nan] = np.nan
    r = rng.random(n)
    x[r < inf / 2] = -np.inf
    x[(r >= inf / 2) & (r < inf)] = np.inf
    mask = rng.random(n) < null
    return pa.array(x, mask=mask)


def _oracle(arr: pa.Array, bins: int):
    """(edges, counts, null, nan) of a decile histogram: numpy only."""
    v = arr.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
    null = arr.null_count
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
    vals = v[valid]
    nan = int(np.isnan(vals).sum())
    finite = vals[np.isfinite(vals)]
    # no finite value: the one placeholder edge 0.0 (±inf keep their outer bins)
    edges = np.unique(np.quantile(finite, np.arange(1, bins) / bins)) if finite.size else np.array([0.0])
    notnan = vals[~np.isnan(vals)]
    counts = np.bincount(np.searchsorted(edges, notnan, side="right"), minlength=edges.size + 1)
    return edges, counts, null, nan


def _profile(tmp_path, table, row_group, bins, workers, labels=None):
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=row_group)
    src = open_data([str(path)])
    if labels is not None:
        run = scan.FileScan.run

        def spy(self, label, *a, **k):
            labels.append(label)
            return run(self, label, *a, **k)
        scan.FileScan.run = spy
    try:
        return profile_data(src, plan_columns(src.schema, bins=bins, tdigest=False), workers=workers)
    finally:
        if labels is not None:
            scan.FileScan.run = run


def _check(prof, table, bins):
    for name in table.column_names:
        want = _oracle(table.column(name).combine_chunks(), bins)
        h = prof[name].histogram
        edges, counts, null, nan = want
        np.testing.assert_array_equal(h.edges, edges, err_msg=name)
        np.testing.assert_array_equal(h.counts, counts, err_msg=name)
        assert (h.null_count, h.nan_count) == (null, nan), name


@settings(max_examples=150, **SETTINGS)
# a selection pass whose one batch's values arrive unsorted (they are sorted before interpolating)
@example(seed=0, n=715, ties=0, order="reversed", nan=0.0, inf=0.0, null=0.0, row_group=700, bins=4, workers=1)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30_000), ties=st.sampled_from([0, 0, 1, 3, 40]),
       order=st.sampled_from(["random", "random", "sorted", "reversed", "drift"]),
       nan=st.sampled_from([0.0, 0.05]), inf=st.sampled_from([0.0, 0.02]), null=st.sampled_from([0.0, 0.1]),
       row_group=st.sampled_from([700, 4_000, 50_000]), bins=st.sampled_from([2, 4, 10, 13]),
       workers=st.sampled_from([1, 2]))
def test_scanned_decile_bins_equal_numpy(tmp_path_factory, seed, n, ties, order, nan, inf, null, row_group,
                                         bins, workers):
    rng = np.random.default_rng(seed)
    x = _column(rng, n, ties, order, nan, inf, null)
    table = pa.table({"x": x, "k": pa.array(np.full(n, 2.5)),  # a constant column
                      "i": pa.array(rng.integers(-5, 5, n))})  # integers: tie blocks
    _check(_profile(tmp_path_factory.mktemp("d"), table, row_group, bins, workers), table, bins)


def _big(rng, n, order):
    return pa.table({"x": _column(rng, n, 0, order, 0.01, 0.001, 0.01),
                     "t": _column(rng, n, 7, order, 0.0, 0.0, 0.0)})


def test_random_order_needs_one_pass(tmp_path):
    """The first pass holds every wanted order statistic: no second pass, same bins as numpy."""
    table = _big(np.random.default_rng(1), 200_000, "random")
    labels = []
    prof = _profile(tmp_path, table, 10_000, 10, 2, labels)
    assert len(labels) == 1 and labels[0].startswith("pass 1 ("), labels
    _check(prof, table, 10)


def test_workers_read_while_the_pilot_places_the_grids(tmp_path, monkeypatch):
    """The first pass's workers read their fragments while the pilot's grids are placed (the
    pilot here waits until a worker has begun reading: a scan that read only after the pilot
    would leave it waiting out its 60 s), and the bins are numpy's."""
    table = _big(np.random.default_rng(3), 100_000, "random")
    reading = threading.Event()
    seen = []
    pilot, read = reference._pilot, scan.batches

    def slow_pilot(executor, qplans, *rest):
        seen.append(reading.wait(60))
        return pilot(executor, qplans, *rest)

    def batches(frag, *a, **k):
        for b in read(frag, *a, **k):
            if "use_threads" not in k:  # a worker's batch, not the pilot's
                reading.set()
            yield b
    monkeypatch.setattr(reference, "_pilot", slow_pilot)
    monkeypatch.setattr(scan, "batches", batches)
    labels = []
    prof = _profile(tmp_path, table, 5_000, 10, 2, labels)
    assert seen == [True] and len(labels) == 1, (seen, labels)
    _check(prof, table, 10)


@pytest.mark.parametrize("order", ["sorted", "drift"])
def test_a_misleading_prefix_falls_back_exactly(tmp_path, order):
    """Sorted or drifting data: the held cells miss the deciles, a selection pass (or the grid
    and selection passes) runs, the bins are still numpy's."""
    table = _big(np.random.default_rng(2), 200_000, order)
    labels = []
    prof = _profile(tmp_path, table, 10_000, 10, 2, labels)
    assert len(labels) >= 2, labels
    _check(prof, table, 10)


@pytest.mark.parametrize("cap, z, select_max, later", [
    (0, quantiles._Z, reference._SELECT_MAX, ["exact deciles)"]),  # over the held cap: selection dropped
    (1 << 18, 0.0, reference._SELECT_MAX, ["exact deciles)"]),  # no margin: the held cells miss
    (1 << 18, 0.0, 0, ["quantile grid)", "exact deciles)"]),  # ... and the grid's cells too full
])
def test_forced_fallbacks_stay_exact(tmp_path, monkeypatch, cap, z, select_max, later):
    """The first pass's grid counts stay complete, so one selection pass on that grid finishes
    the job; when its wanted cells are too full, an exact-range grid and its selection."""
    monkeypatch.setattr(quantiles, "_HELD_CAP", cap)
    monkeypatch.setattr(quantiles, "_Z", z)
    monkeypatch.setattr(reference, "_SELECT_MAX", select_max)
    table = _big(np.random.default_rng(3), 100_000, "random")
    labels = []
    prof = _profile(tmp_path, table, 7_000, 10, 2, labels)
    assert [lb.split(" (")[1] for lb in labels[1:]] == later, labels
    _check(prof, table, 10)


def test_held_values_stay_bounded(tmp_path, monkeypatch):
    """What the first pass keeps grows far slower than the rows (sqrt-like), never past the cap."""
    peaks = {}
    merge = quantiles.StreamingQuantiles.merge

    def spy(self, st, rows):
        merge(self, st, rows)
        peaks[id(self)] = max(peaks.get(id(self), 0), self._size)
    monkeypatch.setattr(quantiles.StreamingQuantiles, "merge", spy)
    held = {}
    for n in (100_000, 800_000):
        peaks.clear()
        rng = np.random.default_rng(4)
        table = pa.table({"x": rng.normal(size=n)})
        labels = []
        prof = _profile(tmp_path, table, 20_000, 10, 2, labels)
        assert len(labels) == 1
        _check(prof, table, 10)
        held[n] = max(peaks.values())
    assert held[800_000] < 4 * held[100_000] and held[800_000] < quantiles._HELD_CAP


def test_strings_read_as_dictionaries_count_the_same(tmp_path):
    """Parquet strings with a small dictionary are read as dictionaries (categories counted on the
    indices), unique ids as strings; either way the categories, their order and counts are those of
    the in-memory profile of the decoded column, and the profile reports the data's own types."""
    import fastdrift
    rng = np.random.default_rng(5)
    n = 60_000
    low = np.array(["b", "a", "c", "d"])[rng.integers(0, 4, n)]
    table = pa.table({"low": pa.array(low, mask=rng.random(n) < 0.1),
                      "ids": pa.array(np.char.add("user-", rng.permutation(n).astype(str))),
                      "x": rng.normal(size=n)})
    path = tmp_path / "s.parquet"
    pq.write_table(table, path, row_group_size=7_000)
    src = open_data([str(path)])
    assert pa.types.is_dictionary(src.read_schema.field("low").type)
    assert pa.types.is_string(src.read_schema.field("ids").type)
    assert src.schema == table.schema
    got = profile_data(src, plan_columns(src.schema, tdigest=False), max_categories=50_000, workers=2)
    want = fastdrift.profile(table, tdigest=False, max_categories=50_000)
    for name in ("low", "ids"):
        g, w = got[name].categorical, want[name].categorical
        assert g == w and g.categories == w.categories and g.null_count == w.null_count, name


def _cells_spy(monkeypatch):
    cells = []
    init = quantiles.StreamingQuantiles.__init__

    def spy(self, *a, **k):
        init(self, *a, **k)
        cells.append(self.plan.n_cells)
    monkeypatch.setattr(quantiles.StreamingQuantiles, "__init__", spy)
    return cells


def test_grid_cells_follow_rows_and_density(tmp_path, monkeypatch):
    """The fewest cells (a power of two, 1Ki-16Ki) whose cells at the wanted ranks, scaled from the
    pilot to the scan's rows, hold at most a quarter of the held cap; 16Ki without a row count."""
    rng = np.random.default_rng(6)
    qs = np.linspace(0.1, 0.9, 9)
    for x in (rng.normal(size=50_000), rng.lognormal(0, 2, 50_000), rng.integers(0, 9, 50_000) * 1.0):
        lo, hi = np.quantile(x, [0.05, 0.95])
        counts = np.histogram(x, bins=1 << 14, range=(lo, hi))[0]
        assert quantiles.scan_cells(counts, qs, None) == 1 << 14
        for rows in (10_000, 1_000_000, 10_000_000, 10**9):
            c = quantiles.scan_cells(counts, qs, rows)
            assert 1 << 10 <= c <= 1 << 14 and c & (c - 1) == 0

            def est(k):  # an independent spelling: coarse cells of the same histogram
                g = np.histogram(x, bins=k, range=(lo, hi))[0]
                at = np.minimum(np.searchsorted(np.cumsum(g), qs * g.sum(), side="right"), k - 1)
                return 2 * g[at].sum() * rows / g.sum()
            assert c == 1 << 14 or est(c) <= quantiles._HELD_CAP / 4 * 1.01, (rows, c)
            assert c == 1 << 10 or est(c // 2) > quantiles._HELD_CAP / 4 * 0.99, (rows, c)
    cells = _cells_spy(monkeypatch)
    table = _big(np.random.default_rng(5), 5000, "random")
    _check(_profile(tmp_path, table, 1000, 10, 1), table, 10)
    assert cells == [1 << 10] * 2  # 5,000 rows: the fewest cells


def test_dense_ranks_keep_fine_cells(tmp_path, monkeypatch):
    """Lognormal data (sigma 2) is dense at its low deciles: coarse cells there would hold more than
    the cap and cost a second pass (the control); the grid keeps finer cells and one pass does."""
    monkeypatch.setattr(quantiles, "_HELD_CAP", 1 << 15)
    x = np.random.default_rng(7).lognormal(0, 2, 262_144)
    table = pa.table({"x": x})
    cells = _cells_spy(monkeypatch)
    labels = []
    prof = _profile(tmp_path, table, 16_384, 10, 2, labels)
    assert len(labels) == 1 and cells[0] > 1 << 10, (labels, cells)
    _check(prof, table, 10)
    monkeypatch.setattr(quantiles, "scan_cells", lambda *a: 1 << 10)
    labels.clear()
    _check(_profile(tmp_path, table, 16_384, 10, 2, labels), table, 10)
    assert len(labels) == 2, labels
