"""A current profile (``fastdrift.profile(data, reference=segmented_ref)``) with segments against
an independent oracle: each segment's profile byte-equal to the unsegmented current profile of that
segment's rows alone (filtered by numpy), on the reference's bins.  Several numeric columns of
different widths (they share one grouping buffer), strings with nulls, large strings, dictionaries,
NaN/+-inf, sliced tables (offsets), 1-60 segments and the ``<other>`` cap."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdrift
from fastdrift.adapters.segments import OTHER


def _table(seed, n, n_seg, offset):
    rng = np.random.default_rng(seed)
    m = n + offset
    x = rng.normal(0, 10, m)
    r = rng.random(m)
    x[r < 0.04] = np.nan
    x[(r >= 0.04) & (r < 0.06)] = np.inf
    x[(r >= 0.06) & (r < 0.07)] = -np.inf
    words = np.array([f"w{i}" * (i % 3) for i in range(80)])
    t = pa.table({
        "x": pa.array(x, mask=rng.random(m) < 0.05),
        "f32": pa.array(rng.lognormal(0, 2, m).astype(np.float32)),
        "i8": pa.array(rng.integers(-100, 100, m).astype(np.int8), mask=rng.random(m) < 0.1),
        "u64": pa.array(rng.integers(0, 2**40, m).astype(np.uint64)),
        "s": pa.array(words[rng.integers(0, 80, m)], mask=rng.random(m) < 0.1),
        "ls": pa.array(words[rng.integers(0, 7, m)], type=pa.large_string()),
        "d": pc.dictionary_encode(pa.array(words[rng.integers(0, 30, m)])),
        "g": pa.array(np.array([f"g{i}" for i in range(n_seg)])[rng.integers(0, n_seg, m)],
                      mask=rng.random(m) < 0.02),
    })
    return t.slice(offset, n)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4000), n_seg=st.sampled_from([1, 2, 7, 20, 60]),
       offset=st.integers(0, 9), cap=st.sampled_from([3, 50, 100]))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_each_current_segment_is_the_current_profile_of_its_rows(seed, n, n_seg, offset, cap):
    ref = fastdrift.profile(_table(seed + 1, 3000, n_seg, 0), segment_by=["g"], max_segments=cap)
    cur_t = _table(seed, n, n_seg, offset)
    cur = fastdrift.profile(cur_t, reference=ref)
    plain = ref.empty_like(segment_by=())  # the reference's bins, unsegmented
    keys = np.array([f"g={'<null>' if v is None else v}" for v in cur_t.column("g").to_pylist()])
    kept = set(list(dict.fromkeys(keys.tolist()))[:cap])  # a current profile's keys: the first `cap` it sees
    rows_of = {}
    for i, k in enumerate(keys.tolist()):
        rows_of.setdefault(k if k in kept else OTHER, []).append(i)
    assert set(cur.segments) == set(rows_of)
    feats = cur_t.drop(["g"])
    for key, rows in rows_of.items():
        alone = plain.copy().update(feats.take(pa.array(rows, pa.int64())).combine_chunks())
        assert cur.segments[key].to_bytes() == alone.to_bytes(), key
    whole = plain.copy()
    assert cur.rows == sum(len(r) for r in rows_of.values()) == n
    assert [c.count for c in cur.columns.values()] == [c.count for c in whole.update(feats).columns.values()]
