"""columns_drift (a window's numeric columns stacked) against column_drift one column at a time."""
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings, strategies as st

from fastdrift.metrics import column_drift, columns_drift
from fastdrift.metrics.drift import ALL_METRICS


def _column(name, edges, counts, missing=0):
    counts = np.asarray(counts, np.int64)
    n = int(counts.sum()) + missing
    return SimpleNamespace(name=name, kind="numeric", categorical=None, missing_count=missing, count=n,
                           histogram=SimpleNamespace(edges=edges, counts=counts),
                           moments=SimpleNamespace(mean=float(counts @ np.arange(counts.size)) / n if n else np.nan))


# counts with many zeros, ties and huge ratios (the PSI terms' eps and overflow paths)
_count = st.one_of(st.just(0), st.integers(0, 5), st.integers(0, 10**12))
_counts = st.lists(_count, min_size=1, max_size=12)


@st.composite
def _pairs(draw):
    out = []
    for c in range(draw(st.integers(1, 8))):
        ref = draw(_counts)
        edges = np.linspace(-1.0, 1.0, len(ref) - 1) if len(ref) > 1 else np.zeros(0)
        cur = draw(st.lists(_count, min_size=len(ref), max_size=len(ref)))
        metrics = tuple(draw(st.lists(st.sampled_from(ALL_METRICS), max_size=4)))
        out.append((_column(f"c{c}", edges, ref, draw(st.integers(0, 3))),
                    _column(f"c{c}", edges.copy() if draw(st.booleans()) else edges, cur), metrics))
    return out


@settings(max_examples=300, deadline=None)
@given(_pairs(), st.sampled_from([1e-4, 0.0, 0.01]), st.sampled_from([10, 3, 0, None]))
def test_columns_drift_equals_column_drift(items, eps, top):
    got = columns_drift(items, eps=eps, top=top)
    want = [column_drift(r, c, eps=eps, top=top, metrics=m) for r, c, m in items]
    assert len(got) == len(want)
    for g, w in zip(got, want):  # repr: exact floats, NaN equal to NaN
        assert repr(g) == repr(w)


def test_columns_drift_compares_each_column_to_its_own_reference():
    e = np.array([0.0, 1.0])
    same = _column("a", e, [10, 20, 30])
    moved = _column("b", e, [30, 20, 10])
    d = columns_drift([(same, same, ("psi",)), (same, moved, ("psi", "js"))])
    assert d[0].psi == 0.0 and d[1].psi > 0.5 and d[1].js_distance > 0
    assert [x.column for x in d] == ["a", "a"]
