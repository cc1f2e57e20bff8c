"""The file scan decodes its batches into its own memory pool (fastdrift.dataset.scan_pool).

The pool changes where the decoded buffers live, never what is counted: reference and current
profiles of multi-row-group Parquet files (nulls, NaN, dictionary strings; one worker or
several) are byte-identical with the scan pool and with pyarrow's default pool.  The pool is
pyarrow's jemalloc unless jemalloc is missing or already the default pool (then None: the
default pool, the application's settings untouched), and every read of a scan goes through it.
"""
import gc
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdrift import dataset, scan
from fastdrift.dataset import open_data
from fastdrift.scan import FileScan, plan_columns, profile_data
from fastdrift.sketches.reference import Job
from scancheck import check_scan_counts

SETTINGS = dict(deadline=None, max_examples=6,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _has_jemalloc():
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    return True


def _table(rng, n):
    x = rng.normal(3, 2, n)
    x[rng.random(n) < 0.05] = np.nan
    vocab = np.array([f"v{i:03d}" for i in range(40)])
    return pa.table({
        "x": pa.array(x, mask=rng.random(n) < 0.1),
        "y": pa.array(rng.lognormal(0, 1, n)),
        "i": pa.array(rng.integers(-50, 50, n), mask=rng.random(n) < 0.02),
        "s": pa.array(vocab[rng.integers(0, 40, n)], mask=rng.random(n) < 0.05),
    })


def _write(tmp_path, seed, groups, rows):
    table = _table(np.random.default_rng(seed), rows * groups)
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=rows)
    return table, path


@pytest.fixture
def fresh_choice(monkeypatch):
    """scan_pool decides again (its choice is made once per process)."""
    monkeypatch.setattr(dataset, "_pool_state", [])


def test_scan_pool_is_jemalloc_unless_the_default_pool_is(fresh_choice, monkeypatch):
    if not _has_jemalloc():
        assert dataset.scan_pool() is None
        return
    pool = dataset.scan_pool()
    assert pool is not None and pool.backend_name == "jemalloc"
    assert dataset.scan_pool() is pool  # decided once
    monkeypatch.setattr(dataset, "_pool_state", [])
    monkeypatch.setattr(pa, "default_memory_pool", pa.jemalloc_memory_pool)
    assert dataset.scan_pool() is None  # the application chose jemalloc: its pool and settings stay


def test_scan_pool_is_none_without_jemalloc(fresh_choice, monkeypatch):
    def missing():
        raise NotImplementedError("built without jemalloc")
    monkeypatch.setattr(pa, "jemalloc_memory_pool", missing)
    assert dataset.scan_pool() is None


def test_every_read_of_a_scan_goes_through_its_pool(tmp_path):
    table, path = _write(tmp_path, 1, 3, 5000)
    src = open_data([str(path)])
    pool = pa.proxy_memory_pool(pa.system_memory_pool())
    fs = FileScan(src, workers=2, memory_pool=pool)
    assert fs.pilot(["x"]).num_rows == 5000 and pool.max_memory() > 0
    seen = fs.run("read", ["x", "s"], Job(lambda i: [], lambda st, b: st.append(b), lambda a, st: a.extend(st) or a))
    assert sum(b.num_rows for b in seen) == table.num_rows
    # every batch's buffers were allocated by the scan's pool: dropping them frees them there
    assert pool.bytes_allocated() > 0
    del seen
    # pyarrow's reader threads drop their last buffers on their own schedule: wait (bounded) for it
    deadline = time.monotonic() + 30
    while pool.bytes_allocated() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert pool.bytes_allocated() == 0


def _profile(path, workers, reference=None):
    src = open_data([str(path)])
    if reference is not None:
        return profile_data(src, None, reference=reference, workers=workers)
    return profile_data(src, plan_columns(src.schema), workers=workers)


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), groups=st.integers(2, 5), rows=st.integers(1000, 40_000),
       workers=st.sampled_from([1, 2, 3]))
def test_profiles_are_the_same_bytes_with_the_scan_pool_and_the_default_pool(tmp_path, monkeypatch, seed, groups,
                                                                             rows, workers):
    table, path = _write(tmp_path, seed, groups, rows)
    with monkeypatch.context() as m:
        m.setattr(scan, "scan_pool", lambda: None)  # pyarrow's default pool
        ref_default = _profile(path, workers)
        cur_default = _profile(path, workers, reference=ref_default)
    ref = _profile(path, workers)
    cur = _profile(path, workers, reference=ref)
    assert ref.to_bytes() == ref_default.to_bytes()
    assert cur.to_bytes() == cur_default.to_bytes()
    # and the counts against numpy, the categories against the in-memory profile
    for prof in (ref, cur):
        check_scan_counts(prof, table)
