"""A file scan's per-fragment t-digests give their insert buffers to the next fragment's.

Recycling changes where a digest's buffer memory comes from, never what the digest holds:
digests that reuse a buffer full of another digest's keys serialize to the same bytes as
digests given fresh memory, and reference and current profiles of multi-row-group Parquet
files (nulls, NaN, dictionary strings; one worker or several) are byte-identical with and
without recycling.  The counts, extremes and categories of those profiles are checked
against numpy.
"""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdrift.dataset import open_data
from fastdrift.kernels import tdigest as kt
from fastdrift.scan import plan_columns, profile_data
from fastdrift.sketches import TDigest
from scancheck import check_scan_counts

SETTINGS = dict(deadline=None, max_examples=8,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FULL = kt.buffer_size(100)  # entries of a full insert buffer at compression 100


def test_recycle_empties_the_digest_and_hands_its_full_buffer_on():
    a = TDigest(100).update(np.random.default_rng(0).normal(0, 1, FULL + 5))
    buf = a._s.buf
    assert buf is not None and buf.size == FULL
    a.recycle()
    assert a.to_bytes() == TDigest(100).to_bytes()  # empty, usable
    b = TDigest(100).update(np.arange(FULL, dtype=np.float64))
    assert b._s.buf is buf  # the next digest to need a full buffer took it
    assert b.to_bytes() == TDigest(100).update(np.arange(FULL, dtype=np.float64)).to_bytes()


def test_spares_are_bounded():
    keep = kt.SPARE_BYTES // (8 * FULL)
    digests = [TDigest(100).update(np.ones(FULL)) for _ in range(keep + 8)]
    bufs = {id(d._s.buf) for d in digests}
    for d in digests:
        d.recycle()
    fresh = [TDigest(100).update(np.ones(FULL)) for _ in range(keep + 8)]
    reused = sum(id(f._s.buf) in bufs for f in fresh)
    assert 0 < reused <= keep  # at most SPARE_BYTES kept; the rest got fresh memory


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), n_a=st.integers(FULL // 2 + 1, 3 * FULL),
       n_b=st.integers(FULL // 2 + 1, 3 * FULL), compression=st.sampled_from([20, 100, 500]))
def test_a_reused_buffer_gives_the_bytes_of_fresh_memory(seed, n_a, n_b, compression):
    rng = np.random.default_rng(seed)
    xa, xb = rng.lognormal(0, 2, n_a), rng.normal(0, 1, n_b)
    xb[rng.random(n_b) < 0.01] = np.nan
    want = TDigest(compression).update(xb).to_bytes()  # may itself take a spare: compared below too
    a = TDigest(compression).update(xa)
    a.recycle()  # its buffer, full of xa's keys, is the next one's
    got = TDigest(compression).update(xb)
    assert got.to_bytes() == want
    merged = TDigest(compression).update(xa[: n_a // 2])
    merged.merge(got)
    again = TDigest(compression).update(xa[: n_a // 2])
    other = TDigest(compression).update(xb)
    other.to_bytes()  # serializing flushes, as it did to ``got``
    again.merge(other)
    assert merged.to_bytes() == again.to_bytes()


def _table(rng, n):
    x = rng.normal(3, 2, n)
    x[rng.random(n) < 0.05] = np.nan
    y = rng.lognormal(0, 1, n)
    vocab = np.array([f"v{i:03d}" for i in range(40)])
    s = vocab[rng.integers(0, 40, n)]
    return pa.table({
        "x": pa.array(x, mask=rng.random(n) < 0.1),
        "y": pa.array(y),
        "i": pa.array(rng.integers(-50, 50, n), mask=rng.random(n) < 0.02),
        "s": pa.array(s, mask=rng.random(n) < 0.05),
    })


def _scan(path, workers, recycle, monkeypatch, reference=None):
    if not recycle:
        monkeypatch.setattr(TDigest, "recycle", lambda self: self)
    try:
        src = open_data([str(path)])
        if reference is not None:
            return profile_data(src, None, reference=reference, workers=workers)
        return profile_data(src, plan_columns(src.schema), workers=workers)
    finally:
        monkeypatch.undo()


@settings(**{**SETTINGS, "max_examples": 5})
@given(seed=st.integers(0, 2**32 - 1), groups=st.integers(2, 4), workers=st.sampled_from([1, 2, 3]))
def test_scanned_profiles_are_the_same_bytes_with_and_without_recycling(tmp_path, monkeypatch, seed, groups,
                                                                        workers):
    rng = np.random.default_rng(seed)
    rows = FULL // 2 + 1 + int(rng.integers(0, FULL))  # fragments fill the digests' buffers
    table = _table(rng, rows * groups - int(rng.integers(0, rows // 2)))
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=rows)
    assert pq.ParquetFile(path).metadata.num_row_groups == groups

    ref = _scan(path, workers, True, monkeypatch)
    assert ref.to_bytes() == _scan(path, 1, False, monkeypatch).to_bytes()
    cur = _scan(path, workers, True, monkeypatch, reference=ref)
    assert cur.to_bytes() == _scan(path, 1, False, monkeypatch, reference=ref).to_bytes()

    # counts and extremes against numpy; categories against the in-memory profile
    for prof in (ref, cur):
        check_scan_counts(prof, table)
