"""The reference builder over any executor whose states travel as bytes."""
import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.errors import InvalidInputError
from fastdrift.sketches.profile import ColumnPlan, plan_columns, skipped_columns
from fastdrift.sketches.reference import build_reference, count_job


class BytesExecutor:
    """Partitions in memory; every state travels as bytes and merges pairwise, as on Spark."""

    label = "memory"
    rows = None
    workers = 1

    def __init__(self, parts):
        self.parts = parts
        self.labels = []

    def pilot(self, columns):
        return None

    def run(self, label, columns, job):
        self.labels.append(label)
        states = []
        for i, part in enumerate(self.parts):
            s = job.make(i)
            for b in part.select(columns).to_batches(max_chunksize=500):
                job.count(s, b)
            states.append(job.decode(job.encode(s)))
        while len(states) > 1:
            states = [job.merge(states[i], states[i + 1]) if i + 1 < len(states) else states[i]
                      for i in range(0, len(states), 2)]
        return states[0] if states else job.make(0)


def _table(rng, n):
    x = rng.lognormal(0, 1, n)
    x[rng.random(n) < 0.05] = np.nan
    return pa.table({"x": pa.array(x, mask=rng.random(n) < 0.05), "i": pa.array(rng.integers(-3, 3, n)),
                     "u": rng.normal(size=n), "s": pa.array(rng.choice(["a", "b", "c"], n)),
                     "ts": pa.array([[int(v)] for v in np.arange(n)])})


def _parts(table, k):
    cuts = np.linspace(0, table.num_rows, k + 1).astype(int)
    return [table.slice(a, b - a) for a, b in zip(cuts[:-1], cuts[1:])]


@pytest.mark.parametrize("k", [1, 3, 8])
def test_builder_over_bytes_equals_profile(k):
    """Every pass's state survives its byte form and pairwise merges: the same bins as profile()."""
    table = _table(np.random.default_rng(k), 6_000)
    schema = table.schema
    plans = plan_columns(schema, kinds=None, tdigest=False)
    plans = [ColumnPlan(p.name, p.kind, 10, "uniform" if p.name == "u" else "quantile", False) for p in plans]
    ex = BytesExecutor(_parts(table, k))
    got = build_reference(ex, plans, skipped_columns(schema, plans))
    want = fastdrift.profile(table.drop(["u"]), tdigest=False)
    assert ex.labels == ["pass 1 (moments, categories)", "pass 2 (quantile grid)", "pass 3 (exact deciles)",
                         "pass 4 (histograms)"]
    assert got.skipped == ["ts"] and got.rows == table.num_rows
    for n in ("x", "i"):
        np.testing.assert_array_equal(got[n].histogram.edges, want[n].histogram.edges)
        np.testing.assert_array_equal(got[n].histogram.counts, want[n].histogram.counts)
    assert got["s"].categorical.to_dict() == want["s"].categorical.to_dict()
    u = fastdrift.profile(table.select(["u"]), strategy="uniform", tdigest=False)["u"].histogram
    np.testing.assert_array_equal(got["u"].histogram.edges, u.edges)
    np.testing.assert_array_equal(got["u"].histogram.counts, u.counts)
    cur = ex.run("current", list(got.columns), count_job(got))
    local = fastdrift.profile(table, reference=got)
    assert cur.rows == local.rows
    for n in ("x", "i", "u"):
        np.testing.assert_array_equal(cur[n].histogram.counts, local[n].histogram.counts)


def test_builder_errors_name_the_data():
    ex = BytesExecutor([pa.table({"x": pa.array([np.nan, np.nan])})])
    with pytest.raises(InvalidInputError, match="^memory: no column to profile"):
        build_reference(ex, [])


def test_profile_takes_per_column_overrides():
    t = pa.table({"x": np.arange(100.0), "s": pa.array(["a", "b"] * 50), "y": np.arange(100.0)})
    p = fastdrift.profile(t, columns={"y": dict(bins=4, strategy="uniform"), "s": {}}, tdigest=False)
    assert list(p.columns) == ["y", "s"] and p.skipped == []
    np.testing.assert_array_equal(p["y"].histogram.edges, [24.75, 49.5, 74.25])
    assert p["y"].histogram.counts.tolist() == [25, 25, 25, 25]
