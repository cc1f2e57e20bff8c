"""Profile.merge is all or nothing: a column (or a segment's column) that cannot merge raises,
naming the column and the problem, and leaves the target profile byte for byte as it was."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import fastdrift
from fastdrift.errors import IncompatibleSketchError
from fastdrift.sketches.profile import CATEGORICAL, ColumnProfile

NUMS, CATS = ["n0", "n1", "n2"], ["c0", "c1"]


def table(seed, n=3000):
    rng = np.random.default_rng(seed)
    cols = {k: rng.normal(i, 1 + i, n) for i, k in enumerate(NUMS)}
    for i, k in enumerate(CATS):
        cols[k] = pa.array(rng.choice([f"v{j}" for j in range(5 + i)], n))
    cols["arm"] = pa.array(rng.choice(["a", "b", "c"], n))
    return pa.table(cols)


@pytest.fixture(scope="module")
def base_bytes():
    return {seg: fastdrift.profile(table(1), segment_by=["arm"] if seg else None).to_bytes() for seg in (0, 1)}


def broken(cp, how):
    """``cp`` (a column profile) made unmergeable with the same-named column, in one way."""
    if cp.kind == CATEGORICAL:
        if how == "kind":
            return ColumnProfile.empty(cp.name, "numeric", edges=[0.0, 1.0, 2.0])
        return ColumnProfile.empty(cp.name, CATEGORICAL, max_categories=cp.categorical.max_categories + 1)
    if how == "kind":
        return ColumnProfile.empty(cp.name, CATEGORICAL)
    if how == "tdigest":
        return ColumnProfile.empty(cp.name, cp.kind, edges=cp.histogram.edges, tdigest=cp.tdigest is None)
    return ColumnProfile.empty(cp.name, cp.kind, edges=np.asarray(cp.histogram.edges) + 0.5,
                               tdigest=cp.tdigest is not None)


@settings(max_examples=40, deadline=None)
@given(col=st.sampled_from(NUMS + CATS), how=st.sampled_from(["kind", "params", "tdigest"]),
       segmented=st.booleans(), in_segment=st.booleans())
def test_an_unmergeable_column_leaves_the_target_as_it_was(base_bytes, col, how, segmented, in_segment):
    target = fastdrift.Profile.from_bytes(base_bytes[int(segmented)])
    other = target.empty_like()
    other.update(table(2))
    src = other.segments[sorted(other.segments)[-1]] if segmented and in_segment else other
    src.columns[col] = broken(src.columns[col], how)
    with pytest.raises(IncompatibleSketchError, match=repr(col)):
        target.merge(other)
    assert target.to_bytes() == base_bytes[int(segmented)]


def test_the_last_column_unmergeable_leaves_the_target_as_it_was(base_bytes):
    """The case the property covers, spelled out: the last column on other bins."""
    target = fastdrift.Profile.from_bytes(base_bytes[0])
    other = target.empty_like()
    other.update(table(2))
    last = list(other.columns)[-1]
    other.columns[last] = broken(other.columns[last], "params")
    with pytest.raises(IncompatibleSketchError, match=f"column {last!r}"):
        target.merge(other)
    assert target.to_bytes() == base_bytes[0]
    good = target.empty_like()  # and a mergeable profile still merges after the refusal
    good.update(table(3))
    assert target.merge(good).rows == 6000
