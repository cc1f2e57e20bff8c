"""Exact quantiles of data seen in parts: mergeable in any split and order, np.quantile bit for bit."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdrift.errors import IncompatibleSketchError
from fastdrift.sketches.quantiles import ExactQuantiles, numeric_views


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 4_000), ties=st.sampled_from([0, 2, 50]),
       cuts=st.lists(st.floats(0, 1), max_size=4))
def test_exact_quantiles_merge_in_any_split(seed, n, ties, cuts):
    """Parts counted and selected on their own, merged in any grouping: np.quantile bit for bit."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, ties, n).astype(float) if ties else rng.normal(size=n)
    qs = np.arange(1, 10) / 10
    lo, hi = x.min(), x.max()
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    chunks = [pa.array(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    total = ExactQuantiles(qs, n, lo, hi)
    for c in chunks:  # grid counts per part, merged
        part = ExactQuantiles(qs, n, lo, hi)
        part.counts += part.count(numeric_views(c, "x"))
        total.merge(part)
    total.plan_select()
    for c in reversed(chunks):  # selections per part, merged in another order
        part = ExactQuantiles(qs, n, lo, hi)
        part.flags, part.cap = total.flags, total.cap
        part.add_selected(part.select(numeric_views(c, "x")))
        total.merge(part)
    np.testing.assert_array_equal(total.result(), np.quantile(x, qs))
    with pytest.raises(IncompatibleSketchError):
        total.merge(ExactQuantiles(qs, n, lo - 1.0, hi))
