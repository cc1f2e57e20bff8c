"""Fleet: publishing a process's panes to a spool, and merging a fleet's spool.

* ``fleet-publish``: ``Ingest.publish`` of a monitor with 20 numeric features (default 10 bins), a
  prediction and latency (t-digest and buckets), event-time windows of 300 s sliding by 60 s, after
  the open pane got rows since the last publish (what each timed flush writes: one pane file, temp
  + rename on a local disk).  The peer (``role="peer"``) is the flush it follows: counting 1,000
  requests (one second at 1k requests/s) into the panes, same run.
* ``fleet-aggregate``: ``Fleet.refresh`` of a spool where 16 processes published one 60 s pane each
  (20 features): list, read, decode changed files, merge, close the window.  ``cold`` builds a new
  Fleet (every file decoded); ``warm`` re-reads a spool whose files did not change.
* ``fleet-observe``: ``observe()`` (20 features, prediction, latency, event time) of a monitor
  publishing to a spool every 0.1 s, and of the same monitor without a spool; the peer is 20
  ``prometheus_client`` ``Histogram.observe`` calls, same run.
"""
import time

import numpy as np
import pyarrow as pa
import pytest

import fastdrift

NAMES = [f"f{i}" for i in range(20)]
WINDOW = {"by": "time", "size": 300, "slide": 60}


def _table(n, seed=0, t0=0.0):
    rng = np.random.default_rng(seed)
    cols = {k: rng.normal(0, 1, n) for k in NAMES}
    cols.update(pred=rng.random(n), lat=rng.exponential(10, n), ts=t0 + rng.uniform(0, 1, n))
    return pa.table(cols)


@pytest.fixture(scope="module")
def reference():
    return _table(50_000)


def _monitor(reference, **kw):
    return fastdrift.Monitor(reference, features=NAMES, prediction="pred", latency="lat", event_time="ts",
                             window=WINDOW, rules=[], **kw)


@pytest.mark.benchmark(group="fleet-publish")
def test_publish_20_features(benchmark, reference, tmp_path):
    m = _monitor(reference, spool=tmp_path / "spool", process_id="p")
    m.update(_table(1000, 1))
    m.ingest.publish()
    few = _table(10, 2)

    def dirty():
        m.ingest.update(few)  # the open pane changed since the last publish
        return (), {}

    benchmark.pedantic(m.ingest.publish, setup=dirty, rounds=300, warmup_rounds=10)
    benchmark.extra_info["n"] = 1


@pytest.mark.benchmark(group="fleet-publish")
def test_flush_1000_requests_peer(benchmark, reference):
    m = _monitor(reference)
    t = _table(1000, 3)
    benchmark.pedantic(m.ingest.update, args=(t,), rounds=100, warmup_rounds=5)
    benchmark.extra_info.update(n=1, role="peer", baseline=True)


@pytest.fixture(scope="module")
def spool16(reference, tmp_path_factory):
    where = tmp_path_factory.mktemp("spool16")
    for i in range(16):
        m = _monitor(reference, spool=where, process_id=f"p{i}")
        m.update(_table(2000, 10 + i))
        m.close()
    return where


@pytest.mark.benchmark(group="fleet-aggregate")
@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_aggregate_16_processes(benchmark, spool16, cache):
    fleet = fastdrift.Fleet(spool16, rules=[])
    if cache == "cold":
        benchmark.pedantic(lambda: fastdrift.Fleet(spool16, rules=[]).refresh(), rounds=20, warmup_rounds=2)
    else:
        benchmark.pedantic(fleet.refresh, rounds=30, warmup_rounds=2)
    assert fleet.refresh().snapshot().rows == 16 * 2000
    assert len(fleet.processes()) == 16
    benchmark.extra_info["n"] = 16


@pytest.mark.benchmark(group="fleet-observe")
@pytest.mark.parametrize("spooled", [True, False])
def test_observe_20_features(benchmark, reference, tmp_path, spooled):
    kw = dict(spool=tmp_path / "spool", process_id="p") if spooled else {}
    m = _monitor(reference, flush_interval=0.1, **kw)
    rng = np.random.default_rng(1)
    feats = {k: float(v) for k, v in zip(NAMES, rng.normal(size=20))}
    obs = m.observe
    t0 = time.time()
    benchmark.pedantic(lambda: obs(feats, 0.42, latency_ms=3.7, ts=t0), rounds=100_000, iterations=1,
                       warmup_rounds=2000)
    benchmark.extra_info.update(n=1, role="fastdrift")
    m.close()
    assert m.rejected == 0


@pytest.mark.benchmark(group="fleet-observe")
def test_prometheus_histogram_observe_x20_peer(benchmark):
    prometheus_client = pytest.importorskip("prometheus_client")
    reg = prometheus_client.CollectorRegistry()
    pairs = [(prometheus_client.Histogram(f"feature_{k}", "feature value", registry=reg), float(i))
             for i, k in enumerate(NAMES)]

    def record():
        for h, v in pairs:
            h.observe(v)

    benchmark.pedantic(record, rounds=30_000, iterations=1, warmup_rounds=1000)
    benchmark.extra_info.update(n=1, role="peer", baseline=True)
