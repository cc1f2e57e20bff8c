"""Sketch.merge_each (a window close merges every segment's panes of every column at once) leaves
each target in the state, bytes included, that merging its group one sketch at a time leaves; it
checks every group before any target changes."""
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdrift.errors import CountOverflowError, IncompatibleSketchError, InvalidInputError
from fastdrift.kernels.moments import moments_merge_groups
from fastdrift.sketches.base import MAX_COUNT
from fastdrift.sketches.categorical import Categorical
from fastdrift.sketches.histogram import Histogram
from fastdrift.sketches.moments import Moments
from fastdrift.sketches.profile import ColumnProfile
from fastdrift.sketches.tdigest import TDigest
from mergeparts import chan_merge, numeric_part

_EDGES = np.array([-1.0, 0.0, 0.5, 2.0])
_OTHER_EDGES = np.array([-1.0, 0.0, 0.5, 2.0, 3.0, 4.0])


def _make(kind, rng, n, edges=_EDGES):
    if kind == "histogram":
        return Histogram(edges).update(numeric_part(rng, n, spread=1e3, overflow=True))
    if kind == "moments":
        return Moments().update(numeric_part(rng, n, spread=1e3, overflow=True))
    if kind == "tdigest":
        return TDigest(50).update(numeric_part(rng, n, spread=1e3, overflow=True)).flush()
    vocab = np.array([f"k{i}" for i in range(40)], dtype=object)
    vals = vocab[rng.integers(0, rng.integers(1, 41), n)].tolist()
    return Categorical(12).update(pa.array(vals, type=pa.string())) if n else Categorical(12)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["histogram", "moments", "tdigest", "categorical"]), seed=st.integers(0, 2**32 - 1),
       sizes=st.lists(st.integers(0, 7), min_size=1, max_size=12))
def test_merge_each_equals_pairwise_merges(kind, seed, sizes):
    rng = np.random.default_rng(seed)
    edges = [_EDGES if rng.random() < 0.7 else _OTHER_EDGES for _ in sizes]  # two bin counts side by side
    targets = [_make(kind, rng, 0 if rng.random() < 0.5 else int(rng.integers(1, 200)), e)
               for e in edges]
    groups = [[_make(kind, rng, int(rng.integers(0, 200)), e) for _ in range(k)] for e, k in zip(edges, sizes)]
    before = [[p.to_bytes() for p in g] for g in groups]
    oracle = []
    for t, g in zip(targets, groups):
        acc = t.copy()
        for p in g:
            acc.merge(p)
        oracle.append(acc)
    type(targets[0]).merge_each(targets, groups)
    assert [t.to_bytes() for t in targets] == [o.to_bytes() for o in oracle]
    assert [t.count for t in targets] == [o.count for o in oracle]
    assert [[p.to_bytes() for p in g] for g in groups] == before  # the merged sketches are not modified
    for t in targets:  # the targets go on counting and merging like any sketch
        t.merge(t.copy())


def _at_cap(kind):
    if kind == "histogram":
        return Histogram.from_counts(_EDGES, [MAX_COUNT - 3, 1, 1, 1, 0])
    m = Moments().update(np.arange(4.0))
    m._ints = np.array([4, MAX_COUNT - 4, 0, 0, 0], np.int64)  # nulls up to the cap: a valid state
    return m


@pytest.mark.parametrize("kind", ["histogram", "moments"])
def test_a_group_past_the_cap_merges_nothing_anywhere(kind, rng):
    targets = [_make(kind, rng, 50), _make(kind, rng, 0), _make(kind, rng, 20)]
    groups = [[_make(kind, rng, 30)], [_at_cap(kind)], [_at_cap(kind), _make(kind, rng, 1)]]
    before = [t.to_bytes() for t in targets]
    with pytest.raises(CountOverflowError, match="past"):
        type(targets[0]).merge_each(targets, groups)
    assert [t.to_bytes() for t in targets] == before  # not even the first target, whose group fits
    # at the cap exactly is allowed (each of the first two groups alone)
    type(targets[0]).merge_each(targets[1:2], groups[1:2])
    assert targets[1].count == MAX_COUNT


def test_other_edges_merge_nothing(rng):
    targets = [_make("histogram", rng, 40), _make("histogram", rng, 40)]
    groups = [[_make("histogram", rng, 10)], [_make("histogram", rng, 10, _OTHER_EDGES)]]
    before = [t.to_bytes() for t in targets]
    with pytest.raises(IncompatibleSketchError, match="edges differ"):
        Histogram.merge_each(targets, groups)
    assert [t.to_bytes() for t in targets] == before
    with pytest.raises(IncompatibleSketchError):
        Histogram.merge_each([targets[0]], [[Moments()]])
    with pytest.raises(InvalidInputError, match="2 targets and 3 groups"):
        Histogram.merge_each(targets, groups + [[]])
    assert [t.to_bytes() for t in targets] == before


def test_column_profiles_merge_each_equals_merge_many(rng):
    def cp(n, td):
        c = ColumnProfile.empty("x", "numeric", edges=_EDGES, tdigest=td)
        c.update(numeric_part(rng, n, spread=1e3, overflow=True))
        return c

    for td in (False, True):
        targets = [cp(int(rng.integers(0, 50)), td) for _ in range(6)]
        groups = [[cp(int(rng.integers(0, 80)), td) for _ in range(int(rng.integers(0, 6)))] for _ in targets]
        oracle = [t.copy() for t in targets]
        for o, g in zip(oracle, groups):
            o.merge_many(g)
        ColumnProfile.merge_each(targets, groups)
        assert [[s.to_bytes() for s in t.sketches()] for t in targets] == \
            [[s.to_bytes() for s in o.sketches()] for o in oracle]
    with pytest.raises(IncompatibleSketchError, match="t-digest"):
        ColumnProfile.merge_each([cp(5, False)], [[cp(5, True)]])


big = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)
state = st.tuples(st.integers(0, 2**40), st.integers(0, 3), big, big, st.floats(0, 1e300) | st.just(math.inf))


def _state(n, nulls, a, b, m2):
    lo, hi = min(a, b), max(a, b)
    flts = np.array([lo, hi, lo / 2 + hi / 2, lo / 2 + hi / 2, m2] if n else [math.inf, -math.inf, 0, 0, 0])
    return np.array([n, nulls, 0, 1, 0], np.int64), flts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(state | st.just((0, 0, 0.0, 0.0, 0.0)), st.lists(state, max_size=6)),
                min_size=1, max_size=8))
def test_moments_merge_groups_is_each_pairwise_fold_bit_for_bit(groups):
    ints = np.stack([_state(*t)[0] for t, _ in groups])
    flts = np.stack([_state(*t)[1] for t, _ in groups])
    others = [_state(*o) for _, g in groups for o in g]
    o_i = np.stack([o[0] for o in others]) if others else np.zeros((0, 5), np.int64)
    o_f = np.stack([o[1] for o in others]) if others else np.zeros((0, 5))
    want_i, want_f = ints.copy(), flts.copy()
    at = 0
    for k, (_, g) in enumerate(groups):
        for j in range(len(g)):
            chan_merge(want_i[k], want_f[k], o_i[at + j], o_f[at + j])
        at += len(g)
    with np.errstate(all="ignore"):
        moments_merge_groups(ints, flts, o_i, o_f, np.array([len(g) for _, g in groups]))
    assert ints.tobytes() == want_i.tobytes() and flts.tobytes() == want_f.tobytes()
