"""Exact quantiles of data seen in parts: mergeable in any split and order, np.quantile bit for bit."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdrift.errors import IncompatibleSketchError
from fastdrift.sketches.quantiles import ExactQuantiles, numeric_views


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 4_000), ties=st.sampled_from([0, 2, 3, 50]),
       cuts=st.lists(st.floats(0, 1), max_size=8), nulls=st.booleans(),
       qs=st.none() | st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_exact_quantiles_merge_in_any_split(backend, seed, n, ties, cuts, nulls, qs):
    """Parts counted and selected on their own (some empty, with NaN, +-inf and nulls), merged in
    any grouping: np.quantile of the finite values, bit for bit."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, ties, n).astype(float) if ties else rng.lognormal(0, 3, n)
    x[rng.random(n) < 0.05] = rng.choice([np.nan, np.inf, -np.inf])
    qs = np.arange(1, 10) / 10 if qs is None else np.array(qs)
    mask = rng.random(n) < 0.1 if nulls else None
    f = x[np.isfinite(x) & (True if mask is None else ~mask)]
    if f.size == 0:
        return
    lo, hi = f.min(), f.max()
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    chunks = [pa.array(x, mask=mask).slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:])]
    total = ExactQuantiles(qs, f.size, lo, hi)
    for c in chunks:  # grid counts per part, merged
        part = ExactQuantiles(qs, f.size, lo, hi)
        part.counts += part.count(numeric_views(c, "x"))
        total.merge(part)
    total.plan_select()
    for c in reversed(chunks):  # selections per part, merged in another order
        part = ExactQuantiles(qs, f.size, lo, hi)
        part.flags, part.cap = total.flags, total.cap
        part.add_selected(part.select(numeric_views(c, "x")))
        total.merge(part)
    np.testing.assert_array_equal(total.result(), np.quantile(f, qs))
    with pytest.raises(IncompatibleSketchError):
        total.merge(ExactQuantiles(qs, f.size, lo - 1.0, hi))
