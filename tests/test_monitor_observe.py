"""observe(): micro-batched request intake, exact totals under threads, rejections, strict mode."""
import dataclasses
import os
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from fastdrift.errors import InvalidInputError
from fastdrift.monitor import FeatureSpec, Monitor, MonitorConfig, WindowSpec
from threads import run_threads


def mon(reference, config):
    """A monitor without alert rules: the ingest stage and the reports it closes."""
    return Monitor(reference, config=config, rules=[])


NAMES = [f"f{i}" for i in range(20)]
DEADLINE = 60.0  # seconds a test waits for a thread before it fails


def ref_table(n=2000):
    rng = np.random.default_rng(0)
    cols = {k: rng.normal(size=n) for k in NAMES}
    cols.update(pred=rng.random(n), lat=rng.exponential(10, n), err=rng.random(n) < 0.1,
                rid=pa.array([str(i) for i in range(n)]), seg=pa.array(rng.choice(["a", "b"], n)))
    return pa.table(cols)


def core(**kw):
    base = dict(features=None, prediction="pred", latency="lat", error="err", request_id="rid",
                window=WindowSpec(by="rows", size=10_000), buffer_rows=256)
    base.update(kw)
    return mon(ref_table(), MonitorConfig(**base))


@pytest.mark.parametrize("n,buffer_rows", [(700, 256), (2500, 4096)])  # 2500: transposed in chunks
def test_observe_equals_update_of_the_same_rows(n, buffer_rows):
    a, b = core(buffer_rows=buffer_rows), core()
    rng = np.random.default_rng(1)
    rows = [{**{k: float(v) for k, v in zip(NAMES, rng.normal(size=20))}, "seg": "a" if i % 3 else "b"}
            for i in range(n)]
    preds, lats = rng.random(n), rng.exponential(10, n)
    for i, r in enumerate(rows):
        a.observe(r, float(preds[i]), latency_ms=float(lats[i]), error=i % 7 == 0, request_id=str(i))
    sa = a.snapshot()
    batch = pa.table({**{k: [r[k] for r in rows] for k in NAMES + ["seg"]}, "pred": preds, "lat": lats,
                      "err": [i % 7 == 0 for i in range(n)], "rid": [str(i) for i in range(n)]})
    b.update(batch)
    sb = b.snapshot()
    assert sa.rows == sb.rows == n and sa.shed == 0
    # counts, PSI, contributions, p-values identical; means up to float reassociation across micro-batches
    strip = lambda fs: {k: dataclasses.replace(v, mean_cur=None) for k, v in fs.items()}
    assert strip(sa.features) == strip(sb.features)
    for k in NAMES:
        assert sa.features[k].mean_cur == pytest.approx(sb.features[k].mean_cur, rel=1e-12, abs=1e-15)
    assert dataclasses.replace(sa.prediction, mean_cur=None) == dataclasses.replace(sb.prediction, mean_cur=None)
    assert sa.errors == sb.errors == len(range(0, n, 7))
    assert sa.latency.count == n
    assert sa.latency.p50 == pytest.approx(sb.latency.p50, rel=0.02)
    assert sa.evidence == sb.evidence  # same rows in the same order: the same sample


@pytest.mark.parametrize("background,overload", [(True, "block"), (False, "block"), (True, "shed"),
                                                 (True, "sample")])
def test_eight_threads_exact_totals(background, overload):
    # "block": every request counted; "shed"/"sample": every request counted or counted as shed
    m = core(window=WindowSpec(by="rows", size=5000), buffer_rows=128, background_flush=background,
             overload=overload)
    per, threads = 4000, 8
    row = {k: 0.5 for k in NAMES} | {"seg": "a"}

    def work(t):
        for i in range(per):
            m.observe(row, 0.1, latency_ms=1.0 + t, error=(i % 10 == 0))

    ths = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    reader_stop = threading.Event()
    seen = []

    def reader():  # a concurrent reader must never see a torn state (reading every ~ms, not spinning:
        while not reader_stop.wait(0.001):  # a spinning reader starves the writers for a minute)
            seen.append(m.snapshot().rows)

    rt = threading.Thread(target=reader)
    rt.start()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    reader_stop.set()
    rt.join()
    m.flush()
    total = per * threads
    reps = m.reports()
    snap = m.snapshot()
    counted = sum(r.rows for r in reps) + snap.rows
    assert counted + m.shed == total
    assert sum(r.shed for r in reps) + snap.shed == m.shed
    assert [r.rows for r in reps] == [5000] * (counted // 5000)
    assert sum(r.latency.count for r in reps) + snap.latency.count == counted
    if overload == "block":
        assert m.shed == 0 and counted == total
        assert sum(r.errors for r in reps) + snap.errors == total // 10
    assert m.rejected == 0 and seen


@pytest.mark.parametrize("background,overload", [(True, "block"), (False, "block"), (True, "shed"),
                                                 (True, "sample")])
def test_concurrent_requests_keep_their_fields_together_and_in_order(background, overload):
    """The request path takes no lock: eight threads append their requests' fields to one list. Every
    batch the worker converts holds whole requests (each row's fields are one call's), each thread's
    requests in the order it made them, and every call counted or shed (none under "block")."""
    from fastdrift.monitor.buffers import ObserveBuffer

    batches, lock = [], threading.Lock()

    def sink(batch, rejected, reasons):
        assert rejected == 0, reasons
        with lock:
            batches.append(batch)

    buf = ObserveBuffer(["t", "i"], [pa.float64(), pa.float64()], prediction="pred", pred_type=pa.float64(),
                        latency="lat", error="err", request_id="rid", event_time=None, capacity=64, sink=sink,
                        stamp_time=False, strict=False, background=background, overload=overload)
    threads, per = 8, 3000

    def work(t):
        for i in range(per):  # every field a function of (t, i): a torn request cannot match
            buf.observe({"t": float(t), "i": float(i)}, t + i / 1e4, latency_ms=float(t * per + i),
                        error=(t + i) % 3 == 0, request_id=f"{t}:{i}")

    run_threads([threading.Thread(target=work, args=(t,)) for t in range(threads)])
    buf.flush()
    shed = buf.take_counts()[2]
    rows = pa.Table.from_batches(batches).to_pydict() if batches else {"t": []}
    assert len(rows["t"]) + shed == threads * per
    if overload == "block":
        assert shed == 0
    last = {}
    for t, i, pred, lat, err, rid in zip(rows["t"], rows["i"], rows["pred"], rows["lat"], rows["err"], rows["rid"]):
        t, i = int(t), int(i)
        assert (pred, lat, err, rid) == (t + i / 1e4, float(t * per + i), (t + i) % 3 == 0, f"{t}:{i}")
        assert i > last.get(t, -1)  # a thread's requests in the order it made them
        last[t] = i
    buf.close()


def test_block_counts_on_the_request_thread_when_the_worker_is_gone():
    """overload="block" with the worker gone (stopped, as at interpreter exit): a request that finds
    the backlog full counts it on its own thread instead of waiting for nobody; nothing is lost."""
    from fastdrift.monitor import buffers

    rows = []
    buf = buffers.ObserveBuffer(["a"], [pa.float64()], prediction=None, pred_type=None, latency=None,
                                error=None, request_id=None, event_time=None, capacity=4,
                                sink=lambda batch, rejected, reasons: rows.extend(batch.column("a").to_pylist()),
                                stamp_time=False, strict=False, background=True, overload="block")
    buf.observe({"a": 0.0})  # starts the worker
    worker = buf._worker
    buf._q.put(buffers._STOP)
    worker.join(DEADLINE)
    assert not worker.is_alive()
    n = 4 * (buffers.QUEUE_DEPTH + 1) * 3
    t = threading.Thread(target=lambda: [buf.observe({"a": float(i)}) for i in range(1, n)], daemon=True)
    t.start()
    t.join(DEADLINE)
    assert not t.is_alive(), "observe waited for a worker that is gone"
    assert len(rows) + buf.pending() == n and buf.take_counts()[2] == 0  # counted or pending, none shed
    buf.flush()
    assert sorted(rows) == [float(i) for i in range(n)]


def test_bad_requests_are_counted_not_raised():
    m = core()
    good = {k: 1.0 for k in NAMES} | {"seg": "a"}
    m.observe(good, 0.2, latency_ms=3.0)
    m.observe(good | {"f3": "not a number"}, 0.2)           # string where a number is expected
    m.observe({k: 1.0 for k in NAMES}, 0.2)                  # a feature missing
    m.observe(good, "high")                                  # prediction of the wrong type
    m.observe(good, 0.2, latency_ms="slow")                  # latency not a number
    m.observe([1.0] * 3, 0.2)                                 # wrong number of values
    m.observe(good, 0.2, latency_ms=float("nan"))           # NaN latency: row kept, latency invalid
    m.observe("x" * 21, 0.2)                                  # a string is not a sequence of values
    m.observe([[1.0, 2.0]] * 21, 0.2)                         # a nested sequence
    m.observe([1.0] * 20 + [["a", "b"]], 0.2)                 # one value is a list
    m.observe(7, 0.2)                                         # not a sequence
    s = m.snapshot()
    assert s.rows == 2 and s.rejected == 9 and m.rejected == 9
    assert s.latency.count == 1 and s.latency.invalid == 1
    assert m.last_error


def test_strict_observe_raises_naming_the_column_and_keeps_state():
    m = core(strict=True)
    good = {k: 1.0 for k in NAMES} | {"seg": "a"}
    m.observe(good, 0.2)
    with pytest.raises(InvalidInputError, match="'f3'"):
        m.observe(good | {"f3": "x"}, 0.2)
    with pytest.raises(InvalidInputError, match="'f0'"):
        m.observe({k: 1.0 for k in NAMES[1:]} | {"seg": "a"}, 0.2)
    with pytest.raises(InvalidInputError, match="'lat'"):
        m.observe(good, 0.2, latency_ms=float("inf"))
    assert m.snapshot().rows == 1 and m.rejected == 0


def test_observe_time_windows_stamp_missing_times():
    m = mon(ref_table(), MonitorConfig(features=tuple(FeatureSpec(k) for k in NAMES + ["seg"]),
                                               prediction="pred", event_time="ts",
                                               window=WindowSpec(by="time", size=10), buffer_rows=16))
    good = {k: 1.0 for k in NAMES} | {"seg": "a"}
    for i in range(50):
        m.observe(good, 0.1, ts=float(i))
    m.observe(good, 0.1)  # stamped with the wall clock: far in the future, closes everything before
    m.flush()
    reps = m.reports()
    assert [r.rows for r in reps[:5]] == [10] * 5
    assert len(reps) <= 5 + 101  # a long gap emits at most MAX_EMPTY_PANES empty windows, then skips


def test_mappings_sequences_and_empty_batches():
    from types import MappingProxyType
    m = core()
    good = {k: 1.0 for k in NAMES} | {"seg": "a"}
    m.observe(MappingProxyType(good), 0.2)
    m.observe([good[k] for k in NAMES + ["seg"]], 0.2)
    m.update(pa.table({k: pa.array([], pa.float64()) for k in NAMES + ["pred", "lat"]}))
    s = m.snapshot()
    assert s.rows == 2 and s.rejected == 0
    assert s.features["f0"].n_cur == 2


def test_mixed_requests_across_the_workers_slices_equal_update_of_the_good_rows():
    """The worker reads each buffered dict (and takes tuples, sequences and other mappings as
    copied on the call) in slices of rows: dicts missing a feature, at and beside a slice's edges,
    are rejected and named; every other row is counted as ``update`` of the same rows counts it."""
    from types import MappingProxyType
    from fastdrift.monitor import buffers
    a, b = core(buffer_rows=4096), core()
    rng = np.random.default_rng(5)
    n, cut = 1100, buffers.ROWS_PER_SLICE
    missing = {0, cut - 1, cut, cut + 1, 2 * cut, n - 1}
    cols = NAMES + ["seg"]
    good = []
    for i in range(n):
        row = {**{k: float(v) for k, v in zip(NAMES, rng.normal(size=20))}, "seg": "ab"[i % 2]}
        if i in missing:
            del row[NAMES[i % 20]]
            a.observe(row, 0.5)
            continue
        good.append(row)
        kind = i % 5
        req = (row if kind < 2 else tuple(row[k] for k in cols) if kind == 2
               else [row[k] for k in cols] if kind == 3 else MappingProxyType(row))
        a.observe(req, 0.5, latency_ms=1.0)
    sa = a.snapshot()
    b.update(pa.table({**{k: [r[k] for r in good] for k in cols}, "pred": [0.5] * len(good),
                       "lat": [1.0] * len(good)}))
    sb = b.snapshot()
    assert sa.rows == sb.rows == n - len(missing) and sa.rejected == a.rejected == len(missing)
    assert "missing from the request" in a.last_error
    strip = lambda fs: {k: dataclasses.replace(v, mean_cur=None) for k, v in fs.items()}
    assert strip(sa.features) == strip(sb.features)
    for k in NAMES:
        assert sa.features[k].mean_cur == pytest.approx(float(np.mean([r[k] for r in good])), rel=1e-12)


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priority is a POSIX/Linux feature")
def test_the_worker_runs_below_the_request_threads_priority():
    """The worker thread lowers its own priority (the request threads keep theirs), so the kernel
    does not let it preempt a request in the middle of observe (bench/bench_observe_tail.py)."""
    from fastdrift.monitor import buffers
    m = core()
    m.observe({k: 0.0 for k in NAMES}, 0.5, latency_ms=1.0, request_id="r0")
    worker = m.ingest.buffer._worker
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    want = min(19, mine + buffers.WORKER_NICE)  # 19: the lowest priority there is
    deadline = time.monotonic() + 30
    while os.getpriority(os.PRIO_PROCESS, worker.native_id) != want:  # the worker sets it as it starts
        assert time.monotonic() < deadline, "the worker thread kept the request thread's priority"
        time.sleep(0.01)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller's is untouched
    m.close()


def test_buffered_requests_keep_no_object_alive():
    """observe stores references into preallocated lists: buffering requests creates no object the
    garbage collector tracks (a container kept per request would make request threads collect)."""
    import gc
    m = core(buffer_rows=4096, flush_interval=0.0)
    row = {k: 0.25 for k in NAMES} | {"seg": "a"}
    m.observe(row, 0.1, latency_ms=1.0)  # starts the worker, allocates the buffer
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for i in range(3000):
            m.observe(row, 0.1, latency_ms=1.0, error=i % 2 == 0, request_id="r")
        after = len(gc.get_objects())
    finally:
        gc.enable()
    assert m.ingest.buffer.pending() == 3001
    assert after - before < 30  # not one per request
    m.flush()
    assert m.snapshot().rows == 3001 and m.snapshot().errors == 1500


def test_shedding_takes_no_queue_operation():
    """With the backlog full, a shed request is counted without touching the worker's queue (its
    lock per request was the shed path's cost); everything stays counted or shed."""
    from fastdrift.monitor import buffers
    m = core(buffer_rows=8, overload="shed", flush_interval=0.0)
    row = {k: 0.5 for k in NAMES} | {"seg": "a"}
    buf = m.ingest.buffer
    gate = threading.Event()
    real_sink = buf._sink
    buf._sink = lambda *a: (gate.wait(60), real_sink(*a))  # hold the worker on the first buffer
    m.observe(row, 0.1)
    for _ in range(8 * (buffers.QUEUE_DEPTH + 2)):  # the worker's buffer, the backlog, the current one
        m.observe(row, 0.1)
    assert buf.pending() == 8 * (buffers.QUEUE_DEPTH + 1)  # the backlog's limit, the worker holds 8 more

    class Spy:  # the worker reads the real queue; the request path would put into this one
        def __init__(self, q):
            self.q, self.puts = q, []

        def put(self, item, *a, **kw):
            self.puts.append(item)
            self.q.put(item, *a, **kw)

    spy = buf._q = Spy(buf._q)
    for _ in range(500):
        m.observe(row, 0.1)
    assert spy.puts == [] and buf._shed >= 500
    buf._q = spy.q
    gate.set()
    m.flush()
    total = 1 + 8 * (buffers.QUEUE_DEPTH + 2) + 500
    assert m.snapshot().rows + m.shed == total and m.shed >= 500


def test_a_sequence_in_a_segment_column_is_rejected_not_spelled():
    m = core(segment_by=("seg",))
    good = {k: 1.0 for k in NAMES} | {"seg": "a"}
    m.observe(good, 0.2)
    m.observe(good | {"seg": ["a", "b"]}, 0.2)
    m.observe(good | {"seg": True}, 0.2)  # spelled "true", as a segment key spells it
    s = m.snapshot()
    assert s.rows == 2 and m.rejected == 1
    assert sorted(s.segments) == ["seg=a", "seg=true"]


@pytest.mark.parametrize("fields", range(1 << 7))
def test_observe_stores_the_fields_its_buffer_has(fields):
    """Each buffer's request path stores the fields it has a column for, whatever the subset: the
    micro-batch equals the one the class's general path (every field, tested per call) builds from
    the same calls, and holds the values passed (an oracle built from the calls themselves)."""
    from fastdrift.monitor.buffers import ARRIVAL, ObserveBuffer

    has = [bool(fields >> i & 1) for i in range(7)]
    cols = ["pred", "lat", "err", "rid", "ts", "shadow", None]
    clock = iter(range(10_000)).__next__
    out = {"own": [], "general": []}

    def buffer(key):
        return ObserveBuffer(
            ["a", "b"], [pa.float64(), pa.float64()], prediction="pred" if has[0] else None,
            pred_type=pa.float64(), latency="lat" if has[1] else None, error="err" if has[2] else None,
            request_id="rid" if has[3] else None, event_time="ts" if has[4] else None, capacity=8,
            sink=lambda batch, rejected, reasons: out[key].append(batch), stamp_time=False, strict=False,
            background=False, shadow_prediction="shadow" if has[5] else None,
            arrival=(lambda: float(clock())) if has[6] else None)

    own, general = buffer("own"), buffer("general")
    calls = [({"a": float(i), "b": -float(i)}, i / 10) for i in range(20)]
    for i, (feats, pred) in enumerate(calls):
        kw = dict(latency_ms=i + 0.5, error=i % 3 == 0, request_id=f"r{i}", ts=1000.0 + i,
                  shadow_prediction=pred + 1)
        own.observe(feats, pred, **kw)
        ObserveBuffer.observe(general, feats, pred, **kw)
    own.flush()
    general.flush()
    a, b = pa.Table.from_batches(out["own"]), pa.Table.from_batches(out["general"])
    assert a.num_rows == b.num_rows == len(calls)
    expected = ["a", "b"] + [c for c, h in zip(cols, has) if h and c] + ([ARRIVAL] if has[6] else [])
    assert a.column_names == expected
    assert a.column_names == b.column_names
    for name in expected:
        if name != ARRIVAL:  # one clock for both buffers: the values interleave
            assert a.column(name).equals(b.column(name)), name
    n = len(calls)
    want = {"a": [float(i) for i in range(n)], "pred": [i / 10 for i in range(n)],
            "lat": [i + 0.5 for i in range(n)], "err": [i % 3 == 0 for i in range(n)],
            "rid": [f"r{i}" for i in range(n)], "ts": [1000.0 + i for i in range(n)],
            "shadow": [i / 10 + 1 for i in range(n)]}
    for name, values in want.items():
        if name in expected:
            assert a.column(name).to_pylist() == values, name
    if has[6]:
        assert a.column(ARRIVAL).to_pylist() == [2.0 * i for i in range(n)]
