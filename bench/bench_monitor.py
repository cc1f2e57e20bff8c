"""Monitor: per-request observe() overhead and update() throughput.

* ``monitor-observe``: one ``Monitor.observe`` call with 20 numeric features,
  a prediction and a latency, timed per call (``extra_info["n"] = 1``; the
  micro-batch flush every 4096 calls is included in the mean and in the
  upper percentiles, the *median* is the request-path cost; back to back the worker falls behind
  and most calls are shed: ``extra_info["shed_share"]``).  The peer
  (``role="peer"``) is what a service pays to record the same 20 values with
  ``prometheus_client.Histogram.observe`` (20 calls), measured in the same run.
* ``monitor-observe-worker``: the worker's cost per buffer of 4,095 requests, off the request
  thread: converting it to an Arrow batch, and converting + counting it (``flush``).
* ``monitor-update``: ``Monitor.update`` of a 1,000,000-row RecordBatch with
  20 float64 features (plus prediction, latency, error, request id and event
  time), end to end: event-time windows, drift of every feature with
  contributions and p-values, latency t-digest, errors, evidence sample;
  ``extra_info["cells_per_s"]`` = 20e6 / median.  Two window settings: 5-minute
  windows sliding by 1 minute (16 windows closed by the batch) and 250k-row
  tumbling windows (4 windows).
* ``monitor-update-segments``: the same update (5-minute windows sliding by 1 minute) unsegmented
  and with ``segment_by=["seg"]``, a column of 20 values (uniform), in the same run: each row is
  counted once, into its segment; the whole is merged from the segments when read.
  ``monitor-observe-segment``: ``observe`` with the segment value passed among the features.
* ``monitor-close-segments``: one update closing 21 windows (5-minute windows sliding by 1 minute,
  1M rows held open by the allowed lateness) with 20 segments, and the same close unsegmented in
  each round: ``extra_info["ratio"]`` is segmented / unsegmented thread CPU (medians).
* ``monitor-scrape``: one Prometheus scrape (``generate_latest`` of a private registry) of a monitor
  with 20 numeric features of 10 reference bins, a prediction and latency buckets, after 100k rows
  (a few closed panes and an open one); the peer is the scrape of 20 default
  ``prometheus_client.Histogram`` objects in the same run; ``collect`` times the collector alone
  (the rest of a scrape is prometheus_client's text formatting).
"""
import statistics
import time

import numpy as np
import pyarrow as pa
import pytest

import fastdrift

prometheus_client = pytest.importorskip("prometheus_client")

NAMES = [f"f{i}" for i in range(20)]
N_UPDATE = 1_000_000


def _table(n, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    cols = {k: rng.normal(shift, 1, n) for k in NAMES}
    cols.update(pred=rng.random(n), lat=rng.exponential(10, n), err=rng.random(n) < 0.01,
                rid=pa.array(np.arange(n)).cast(pa.string()), ts=np.arange(n, dtype=np.float64) / 1000,
                seg=pa.array(rng.integers(0, 20, n)).cast(pa.string()))
    return pa.table(cols)


@pytest.fixture(scope="module")
def reference():
    return _table(200_000)


def _monitor(reference, window, **kw):
    return fastdrift.Monitor(reference, features=NAMES, prediction="pred", latency="lat", error="err",
                             request_id="rid", event_time="ts", window=window, rules=[],
                             evidence={"rate": 0.01, "max_rows": 100}, **kw)


@pytest.mark.benchmark(group="monitor-observe")
def test_observe_20_features(benchmark, reference):
    m = _monitor(reference, {"by": "rows", "size": 1_000_000})
    rng = np.random.default_rng(1)
    feats = {k: float(v) for k, v in zip(NAMES, rng.normal(size=20))}
    obs = m.observe
    benchmark.pedantic(obs, args=(feats, 0.42), kwargs={"latency_ms": 3.7}, rounds=200_000, iterations=1,
                       warmup_rounds=5000)
    m.flush()
    # back to back the worker cannot keep up (its conversion and counting cost more per request
    # than the call): most calls are shed, so the shed share is reported with the timings
    benchmark.extra_info.update(n=1, features=20, role="fastdrift", shed_share=m.shed / 205_000)
    assert m.rejected == 0


@pytest.mark.benchmark(group="monitor-observe-worker")
@pytest.mark.parametrize("part", ["convert", "flush"])
def test_observe_worker_per_buffer(benchmark, reference, part):
    """The worker's side of ``observe``, off the request thread: a buffer of 4,095 requests converted
    to one Arrow batch (``convert``), or converted and counted (``flush``, on the worker, waited for)."""
    m = _monitor(reference, {"by": "rows", "size": 1_000_000}, flush_interval=0)
    rng = np.random.default_rng(1)
    feats = {k: float(v) for k, v in zip(NAMES, rng.normal(size=20))}
    buf, n = m.ingest.buffer, 4095

    def fill():
        for i in range(n):
            m.observe(feats, 0.42, latency_ms=3.7, request_id=i)
        return (), {}

    if part == "convert":
        fill()
        cols = buf.columns(list(buf._rows))  # the pending requests, as the worker takes them
        batch = benchmark.pedantic(lambda: buf.to_batch(*cols)[0], rounds=30, iterations=1, warmup_rounds=2)
        assert batch.num_rows == n
    else:
        benchmark.pedantic(m.flush, setup=fill, rounds=30, iterations=1, warmup_rounds=2)
        assert m.snapshot().rows and m.snapshot().rows % n == 0
    benchmark.extra_info.update(n=n, features=20, per_request_us=benchmark.stats.stats.median / n * 1e6)


@pytest.mark.benchmark(group="monitor-observe")
def test_prometheus_histogram_observe_x20_peer(benchmark):
    reg = prometheus_client.CollectorRegistry()
    hists = [prometheus_client.Histogram(f"feature_{k}", "feature value", registry=reg) for k in NAMES]
    rng = np.random.default_rng(1)
    vals = [float(v) for v in rng.normal(size=20)]
    pairs = list(zip(hists, vals))

    def record():
        for h, v in pairs:
            h.observe(v)

    benchmark.pedantic(record, rounds=50_000, iterations=1, warmup_rounds=1000)
    benchmark.extra_info.update(n=1, features=20, role="peer")


@pytest.mark.benchmark(group="monitor-update")
@pytest.mark.parametrize("window", ["time-300s-slide-60s", "rows-250k"])
def test_update_1m_rows_20_features(benchmark, reference, window):
    spec = {"by": "time", "size": 300, "slide": 60} if window.startswith("time") else {"by": "rows", "size": 250_000}
    batch = _table(N_UPDATE, seed=2, shift=0.1).to_batches(max_chunksize=N_UPDATE)[0]
    monitors = []

    def setup():
        monitors.append(_monitor(reference, spec))
        return (batch,), {}

    benchmark.pedantic(lambda b: monitors[-1].update(b), setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    cells = N_UPDATE * len(NAMES)
    benchmark.extra_info.update(n=cells, rows=N_UPDATE, features=len(NAMES),
                                cells_per_s=cells / benchmark.stats.stats.median,
                                windows=len(monitors[-1].reports()))
    assert monitors[-1].reports()


@pytest.mark.benchmark(group="monitor-update-segments")
@pytest.mark.parametrize("segments", [0, 20])
def test_update_1m_rows_20_segments(benchmark, reference, segments):
    spec = {"by": "time", "size": 300, "slide": 60}
    batch = _table(N_UPDATE, seed=2, shift=0.1).to_batches(max_chunksize=N_UPDATE)[0]
    kw = {"segment_by": ["seg"]} if segments else {}
    monitors = []

    def setup():
        monitors.append(_monitor(reference, spec, **kw))
        return (batch,), {}

    benchmark.pedantic(lambda b: monitors[-1].update(b), setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    cells = N_UPDATE * len(NAMES)
    reports = monitors[-1].reports()
    benchmark.extra_info.update(n=cells, rows=N_UPDATE, segments=segments, cells_per_s=cells / benchmark.stats.stats.median,
                                windows=len(reports))
    assert reports and len(reports[-1].segments) == segments


@pytest.mark.benchmark(group="monitor-close-segments")
def test_close_21_windows_20_segments(benchmark, reference):
    """Closing windows with 20 segments against closing them unsegmented, same run.

    1M rows (20 features, 5-minute windows sliding by 1 minute) are counted with an allowed
    lateness that holds every window open; one later event then closes 21 windows: that update is
    timed (merging each window's panes, the reports with per-segment drift, the lifetime counters).
    Each round also closes the same windows unsegmented; ``extra_info``: both medians in thread
    CPU seconds and their ratio."""
    spec = {"by": "time", "size": 300, "slide": 60, "allowed_lateness": 1000}
    batch = _table(N_UPDATE, seed=2, shift=0.1).to_batches(max_chunksize=N_UPDATE)[0]
    last = _table(1, seed=3)
    last = last.set_column(last.schema.get_field_index("ts"), "ts", pa.array([2300.0])).to_batches()[0]
    held, cpu = [], {0: [], 20: []}

    def close(m, segments):
        t = time.thread_time()
        m.update(last)
        cpu[segments].append(time.thread_time() - t)
        return m

    def setup():  # the unsegmented close of the same round, then the segmented monitor to close
        plain = _monitor(reference, spec)
        plain.update(batch)
        assert len(close(plain, 0).reports()) == 21
        held.append(_monitor(reference, spec, segment_by=["seg"]))
        held[-1].update(batch)
        return (), {}

    benchmark.pedantic(lambda: close(held[-1], 20), setup=setup, rounds=5, iterations=1)
    assert len(held[-1].reports()) == 21 and len(held[-1].reports()[-1].segments) == 20
    plain, seg = statistics.median(cpu[0]), statistics.median(cpu[20])
    benchmark.extra_info.update(windows=21, segments=20, features=len(NAMES), unsegmented_cpu_s=plain,
                                segmented_cpu_s=seg, ratio=seg / plain, ratio_per_round=[
                                    b / a for a, b in zip(cpu[0], cpu[20])])


@pytest.mark.benchmark(group="monitor-observe-segment")
@pytest.mark.parametrize("segments", [0, 20])
def test_observe_20_features_segment(benchmark, reference, segments):
    m = _monitor(reference, {"by": "rows", "size": 1_000_000}, **({"segment_by": ["seg"]} if segments else {}))
    rng = np.random.default_rng(1)
    feats = {k: float(v) for k, v in zip(NAMES, rng.normal(size=20))}
    feats["seg"] = "7"  # the segment value travels with the features
    benchmark.pedantic(m.observe, args=(feats, 0.42), kwargs={"latency_ms": 3.7}, rounds=200_000, iterations=1,
                       warmup_rounds=5000)
    benchmark.extra_info.update(n=1, segments=segments)


@pytest.mark.benchmark(group="monitor-scrape")
def test_scrape_20_features_10_bins(benchmark, reference):
    from prometheus_client.exposition import generate_latest
    m = _monitor(reference, {"by": "rows", "size": 30_000})
    m.update(_table(100_000, seed=3))
    reg = prometheus_client.CollectorRegistry(auto_describe=False)
    reg.register(m.prometheus_collector())
    text = benchmark.pedantic(generate_latest, args=(reg,), rounds=300, iterations=1, warmup_rounds=20)
    benchmark.extra_info.update(n=1, features=20, role="fastdrift", series=text.count(b"\n"))
    assert b"fastdrift_feature_bin_rows_total" in text


@pytest.mark.benchmark(group="monitor-scrape")
def test_collect_20_features_10_bins(benchmark, reference):
    """The collector alone (counts read under the lock, families built), without text formatting."""
    m = _monitor(reference, {"by": "rows", "size": 30_000})
    m.update(_table(100_000, seed=3))
    c = m.prometheus_collector()
    fams = benchmark.pedantic(lambda: list(c.collect()), rounds=300, iterations=1, warmup_rounds=20)
    benchmark.extra_info.update(n=1, features=20, role="fastdrift")
    assert fams


@pytest.mark.benchmark(group="monitor-scrape")
def test_scrape_prometheus_histograms_x20_peer(benchmark):
    from prometheus_client.exposition import generate_latest
    reg = prometheus_client.CollectorRegistry()
    for k in NAMES:
        prometheus_client.Histogram(f"feature_{k}", "feature value", registry=reg).observe(0.5)
    text = benchmark.pedantic(generate_latest, args=(reg,), rounds=300, iterations=1, warmup_rounds=20)
    benchmark.extra_info.update(n=1, features=20, role="peer", series=text.count(b"\n"))


if __name__ == "__main__":  # pragma: no cover
    import sys
    sys.exit(pytest.main([__file__, "-q", "--benchmark-columns=median,mean,ops"]))
