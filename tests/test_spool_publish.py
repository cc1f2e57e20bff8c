"""Publishing to a slow spool: the store's put runs on the publisher thread, never on counting's."""
import threading
import time

import numpy as np
import pyarrow as pa

from fastdrift.monitor import Monitor, MonitorConfig, WindowSpec
from fastdrift.monitor.signals import WindowSketch
from fastdrift.monitor.spool import PANES, Store, read_panes

REF_N = 2000
_rng = np.random.default_rng(0)
REF = pa.table({"x": _rng.normal(size=REF_N), "pred": _rng.random(REF_N),
                "ts": np.arange(REF_N, dtype=np.float64)})
WINDOW = WindowSpec(by="time", size=10, slide=10, allowed_lateness=0)


class HeldStore(Store):
    """A real local-directory store whose pane puts wait for ``release`` (an object store that has
    stalled): the first put announces itself on ``entered``."""

    def __init__(self, where):
        super().__init__(where)
        self.entered, self.release = threading.Event(), threading.Event()

    def put(self, rel, data):
        if rel.startswith(PANES):
            self.entered.set()
            assert self.release.wait(60), "test never released the store"
        super().put(rel, data)


def _until(cond, what, timeout=30.0):
    """Poll for a condition the test needs (a liveness bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _requests(rng, n, t_lo, t_hi):
    return [({"x": float(v)}, float(p), float(t)) for v, p, t in
            zip(rng.normal(size=n), rng.random(n), rng.uniform(t_lo, t_hi, n))]


def test_a_stalled_store_does_not_hold_counting_and_gets_the_newest_panes(tmp_path):
    rng = np.random.default_rng(1)
    cfg = MonitorConfig(prediction="pred", event_time="ts", window=WINDOW, flush_interval=0.01)
    spool = tmp_path / "spool"
    m = Monitor(REF, config=cfg, rules=[], spool=spool, process_id="p")
    store = HeldStore(spool)
    m.ingest.spool.store = store
    sent = {}  # pane -> rows sent

    def observe(n, pane):
        for feats, pred, ts in _requests(rng, n, 10 * pane, 10 * pane + 10):
            m.observe(feats, pred, ts=ts)
        sent[pane] = sent.get(pane, 0) + n

    def counted():
        return m.ingest.totals().rows

    observe(50, 0)
    _until(store.entered.is_set, "the first put")  # the worker's tick published: the store now stalls
    # observe() keeps counting on the worker while the put waits; update() counts on this thread
    for pane in (1, 2, 3):
        observe(40, pane)
        _until(lambda: counted() == sum(sent.values()), f"pane {pane}'s rows counted while the put is held")
    t = np.full(25, 35.0)
    m.update(pa.table({"x": rng.normal(size=25), "pred": rng.random(25), "ts": t}))
    sent[3] += 25
    assert counted() == sum(sent.values())
    # the open pane queued twice while the store stalls: only its newest version is kept
    m.ingest.publish(wait=None)
    observe(10, 3)
    _until(lambda: counted() == sum(sent.values()), "the last rows counted")
    m.ingest.publish(wait=None)
    assert m.ingest.spool.coalesced >= 1

    store.release.set()
    m.close()  # waits for the publisher to write what is queued
    files = {f.pane: f for f in read_panes(Store(spool))}
    assert sorted(files) == [0, 1, 2, 3]
    assert [files[p].closed for p in range(4)] == [True, True, True, False]
    for p, f in files.items():
        ws = WindowSketch.from_bytes(f.sketch_bytes, m.ingest.ref, m.config)
        assert ws.rows == sent[p], p
    assert m.ingest.spool.errors == 0


class FailingStore(Store):
    """A real local-directory store whose next ``fail`` pane puts raise, as an unreachable store does."""

    fail = 0

    def put(self, rel, data):
        if rel.startswith(PANES) and self.fail:
            self.fail -= 1
            raise OSError("store unreachable")
        super().put(rel, data)


def test_a_failed_put_is_counted_logged_once_and_retried(tmp_path, caplog):
    rng = np.random.default_rng(2)
    cfg = MonitorConfig(prediction="pred", event_time="ts", window=WINDOW, flush_interval=0)
    spool = tmp_path / "spool"
    m = Monitor(REF, config=cfg, rules=[], spool=spool, process_id="p")
    store = m.ingest.spool.store = FailingStore(spool)
    store.fail = 3
    m.update(pa.table({"x": rng.normal(size=30), "pred": rng.random(30), "ts": rng.uniform(0, 10, 30)}))
    m.publish()  # pane 0 (open): fails
    m.update(pa.table({"x": rng.normal(size=20), "pred": rng.random(20), "ts": rng.uniform(10, 20, 20)}))
    m.publish()  # pane 0 closed and pane 1 open: both fail
    assert m.ingest.spool.errors == 3
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1
    assert not list(read_panes(Store(spool)))
    x = m.exposition()  # what a scrape exports: the failures, and no write yet
    assert x.spool[:2] == (3, m.ingest.spool.coalesced) and x.spool[2] != x.spool[2]
    before = time.time()
    m.publish()  # nothing new counted: the queued panes are retried
    assert m.exposition().spool[0] == 3 and m.exposition().spool[2] >= before
    from prometheus_client import CollectorRegistry, generate_latest
    reg = CollectorRegistry()
    reg.register(m.prometheus_collector())
    text = generate_latest(reg).decode()
    assert "fastdrift_spool_write_errors_total 3.0" in text and "fastdrift_spool_written_timestamp_seconds " in text
    files = {f.pane: f for f in read_panes(Store(spool))}
    assert {p: (f.closed, WindowSketch.from_bytes(f.sketch_bytes, m.ingest.ref, m.config).rows)
            for p, f in files.items()} == {0: (True, 30), 1: (False, 20)}
    m.close()
