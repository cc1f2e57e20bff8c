"""fastdrift against the monitoring libraries people use today, on the same data in the same run.

A reference and a drifted day (20 float64 + 5 string columns, as in bench_profile.py) are
profiled and compared:

* fastdrift: ``profile(ref)`` (exact decile bins, moments, categories, t-digests) + ``profile(cur,
  reference=ref)`` + ``compare_profiles`` (role "peer" is on the others: they are the baselines);
* whylogs ``why.log(pandas=...)`` of both days (profiles only: its drift step is extra);
* evidently ``Report([DataDriftPreset()]).run(reference, current)`` (the drift report).

Throughput is cells/s over both days (rows x columns x 2).  The peers need pandas, and evidently
0.7 needs pandas < 3, so this file is run from an environment that has them
(``pip install whylogs evidently "pandas<3"``); ``importorskip`` keeps ``bench/run.py`` working
without them.
"""
import numpy as np
import pyarrow as pa
import pytest

import fastdrift

ROWS = 200_000


@pytest.fixture(scope="module")
def days():
    rng = np.random.default_rng(0)
    vocab = np.array([f"category-{i:04d}" for i in range(500)])

    def day(shift):
        cols = {f"f{i}": rng.normal(i + shift * (i < 3), 1 + i, ROWS) for i in range(20)}
        for i in range(5):
            cols[f"s{i}"] = pa.array(vocab[rng.integers(0, 50 * (i + 1), ROWS)])
        return pa.table(cols)

    ref, cur = day(0.0), day(0.5)
    return ref, cur, ref.to_pandas(), cur.to_pandas()


def _cells(t):
    return 2 * t.num_rows * t.num_columns


@pytest.mark.benchmark(group="peers-drift")
def test_fastdrift_profile_and_compare(benchmark, days):
    ref_t, cur_t, _, _ = days

    def run():
        ref = fastdrift.profile(ref_t)
        cur = fastdrift.profile(cur_t, reference=ref)
        return fastdrift.compare_profiles(ref, cur)

    rows = benchmark.pedantic(run, rounds=3, iterations=1)
    assert "f0" in {r.column for r in rows if r.psi > 0.1}  # 0.5 SD shift; f1, f2 shift less in SD
    benchmark.extra_info.update(n=_cells(ref_t), unit="cells")


@pytest.mark.benchmark(group="peers-drift")
def test_whylogs_log(benchmark, days):
    why = pytest.importorskip("whylogs")
    ref_t, _, ref_df, cur_df = days

    def run():
        return why.log(pandas=ref_df).view(), why.log(pandas=cur_df).view()

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(n=_cells(ref_t), unit="cells", role="peer")


@pytest.mark.benchmark(group="peers-drift")
def test_evidently_data_drift(benchmark, days):
    pytest.importorskip("evidently")
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref_t, _, ref_df, cur_df = days

    def run():
        return Report([DataDriftPreset()]).run(reference_data=ref_df, current_data=cur_df)

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(n=_cells(ref_t), unit="cells", role="peer")
