"""A service's lifetime: timed flushes, the flush at exit, fork, overload (shedding is counted), close.

No wall-clock performance asserts: waits are polls with generous deadlines (the tail latency of
observe() is measured in bench/bench_observe_tail.py).
"""
import gc
import json
import os
import select
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.errors import InvalidInputError
from fastdrift.monitor import MonitorConfig

DEADLINE = 60.0  # seconds a poll may wait on a loaded machine before the test fails
RULES = [dict(name="psi", signal="feature_drift", metric="psi", warning=0.1, critical=0.2,
              owner="ml-team", runbook="https://runbooks.example/psi")]


def ref(n=2000):
    return pa.table({"a": np.random.default_rng(0).normal(size=n)})


def poll(cond, what):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    pytest.fail(f"not within {DEADLINE} s: {what}")


def in_child(run):
    """Fork; the child calls ``run()`` and sends back its JSON answer (never returning into pytest)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rfd)
            os.write(wfd, json.dumps(run()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        ready, _, _ = select.select([rfd], [], [], DEADLINE)
        got = os.read(rfd, 65536) if ready else b""
    finally:
        os.close(rfd)
        if not got:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert got, "the forked child did not answer (a worker it inherited never runs)"
    return json.loads(got)


def samples(collector, name):
    return {tuple(s.labels.items()): s.value for fam in collector.collect() for s in fam.samples
            if s.name == name}


# -- 15: timed flush -----------------------------------------------------------------------------

def test_timer_counts_and_publishes_without_a_read():
    alerts = []
    m = fastdrift.Monitor(ref(), window=5, rules=RULES, sinks=[alerts.append])  # default: 1 s timer
    col = m.prometheus_collector()  # reads the last published report: never flushes
    for v in np.random.default_rng(1).normal(4.0, 1.0, 12):  # 12 requests in a 4096-row buffer
        m.observe({"a": float(v)})
    poll(lambda: samples(col, "fastdrift_window_rows") == {(): 5.0}, "the Prometheus window shows 5 rows")
    poll(lambda: any(a.rule == "psi" for a in alerts), "the sink receives the drift alert")
    assert m.snapshot().rows == 2 and len(m.reports()) == 2  # 12 = two closed windows of 5 + 2
    m.close()


def test_flush_interval_zero_keeps_requests_buffered_until_a_read():
    m = fastdrift.Monitor(ref(), window=5, rules=[], flush_interval=0)
    col = m.prometheus_collector()
    for i in range(12):
        m.observe({"a": float(i)})
    time.sleep(0.2)
    assert samples(col, "fastdrift_window_rows") == {}  # nothing counted: no timer, no read
    assert m.snapshot().rows == 2 and [r.rows for r in m.reports()] == [5, 5]
    m.close()


def test_close_stops_the_worker_and_an_unused_monitor_is_collected():
    m = fastdrift.Monitor(ref(), window=5, rules=[], flush_interval=0.01)
    m.observe({"a": 1.0})
    worker = m.ingest.buffer._worker
    assert worker.is_alive()
    m.close()
    assert not worker.is_alive() and m.snapshot().rows == 1

    m = fastdrift.Monitor(ref(), window=5, rules=[], flush_interval=0.01)
    m.observe({"a": 1.0})
    worker, gone = m.ingest.buffer._worker, weakref.ref(m)
    del m
    # the worker thread and the exit hook hold only weak references (the worker holds its buffer
    # strongly only while it counts, so collect until it is between two wake-ups)
    poll(lambda: gc.collect() is not None and gone() is None, "the unused monitor is collected")
    poll(lambda: not worker.is_alive(), "the worker of a collected monitor exits")


# -- 15: flush at interpreter exit ----------------------------------------------------------------

def test_exit_flush_counts_and_evaluates_buffered_requests(tmp_path):
    out = tmp_path / "alerts.jsonl"
    script = textwrap.dedent(f"""
        import numpy as np, pyarrow as pa, fastdrift
        from fastdrift.alerts import JsonLinesSink
        m = fastdrift.Monitor(pa.table({{"a": np.random.default_rng(0).normal(size=2000)}}), window=10,
                              rules={RULES!r}, sinks=[JsonLinesSink({str(out)!r})], flush_interval=0)
        for v in np.random.default_rng(1).normal(4.0, 1.0, 25):
            m.observe({{"a": float(v)}})
        # no flush, no save, no close: the process just ends
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []
    assert lines and all(l["rule"] == "psi" for l in lines), r.stderr


# -- 15: fork ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_counts_only_its_own_requests_with_its_own_worker():
    m = fastdrift.Monitor(ref(), window=1000, rules=[], flush_interval=0, config=MonitorConfig(buffer_rows=8))
    for i in range(8):  # a full buffer: the parent's worker counts it
        m.observe({"a": float(i)})
    poll(lambda: m.ingest.windower.row_seq == 8, "the parent's worker counts its full buffer")
    for i in range(5):  # buffered
        m.observe({"a": float(i)})
    def child_view():
        pending = m.ingest.buffer.pending()
        for i in range(11):  # a full buffer for the child's own worker, then 3 buffered
            m.observe({"a": 100.0 + i})
        snap = m.snapshot()
        return {"pending": pending, "rows": snap.rows, "shed": m.shed, "n_cur": snap.features["a"].n_cur}

    child = in_child(child_view)
    # none of the parent's 13, counted or buffered: each process counts the requests it observes
    assert child == {"pending": 0, "rows": 11, "shed": 0, "n_cur": 11}
    snap = m.snapshot()
    assert snap.rows == 13 and snap.features["a"].n_cur == 13  # the parent's, counted once, here
    m.close()


def test_forked_child_exports_only_its_own_counts():
    m = fastdrift.Monitor(ref(), window=4, rules=[], flush_interval=0, config=MonitorConfig(buffer_rows=4))
    for i in range(8):  # two full buffers: two panes closed, in the parent's lifetime counters
        m.observe({"a": float(i)})
    m.observe({"a": "not a number"})  # rejected in the parent
    m.flush()
    parent = samples(m.prometheus_collector(), "fastdrift_rows_total")
    def child_counters():
        for i in range(3):
            m.observe({"a": 50.0 + i})
        m.flush()
        col = m.prometheus_collector()
        out = {k: samples(col, k)[()] for k in ("fastdrift_rows_total", "fastdrift_rejected_rows_total",
                                                "fastdrift_observe_shed_total")}
        out["start"] = samples(col, "fastdrift_start_time_seconds")[()]
        return out

    child = in_child(child_counters)
    assert parent == {(): 8.0}
    # summed over processes, each row once: the child's counters hold its own 3 rows, nothing else
    assert (child["fastdrift_rows_total"], child["fastdrift_rejected_rows_total"],
            child["fastdrift_observe_shed_total"]) == (3.0, 0.0, 0.0)
    assert child["start"] >= samples(m.prometheus_collector(), "fastdrift_start_time_seconds")[()]
    m.close()


# -- 16: overload --------------------------------------------------------------------------------

@pytest.mark.parametrize("overload", ["shed", "sample"])
def test_overload_never_waits_and_counts_every_request_it_leaves_out(overload):
    m = fastdrift.Monitor(ref(), window=1_000_000, rules=[], flush_interval=0, overload=overload,
                          config=MonitorConfig(buffer_rows=10))
    col = m.prometheus_collector()
    calls = 500
    done = threading.Event()

    def serve():
        for i in range(calls):
            m.observe({"a": float(i % 7)})
        done.set()

    with m.ingest.paused():  # the worker cannot count: it falls behind at once
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        t.join(DEADLINE)
        finished = done.is_set()
    t.join()
    assert finished, "observe() waited for the stalled worker"
    snap = m.snapshot()  # flushes: everything stored is counted now
    assert m.shed > 0 and snap.rows + m.shed == calls  # exact: every request counted or counted as shed
    assert snap.shed == m.shed and snap.features["a"].n_cur == snap.rows
    assert samples(col, "fastdrift_observe_shed_total") == {(): float(m.shed)}
    again = fastdrift.Monitor.from_bytes(m.to_bytes())  # the counts survive a checkpoint
    assert again.shed == m.shed and again.snapshot().shed == m.shed
    m.close()


def test_block_waits_for_the_worker_and_sheds_nothing():
    m = fastdrift.Monitor(ref(), window=1_000_000, rules=[], flush_interval=0, overload="block",
                          config=MonitorConfig(buffer_rows=10))
    calls = 200
    t = threading.Thread(target=lambda: [m.observe({"a": float(i)}) for i in range(calls)], daemon=True)
    with m.ingest.paused():
        t.start()
        t.join(0.5)
        assert t.is_alive()  # back-pressure: the request thread waits while the worker cannot count
    t.join(DEADLINE)
    assert not t.is_alive() and m.snapshot().rows == calls and m.shed == 0
    m.close()


def test_shed_requests_go_to_the_next_closed_window():
    m = fastdrift.Monitor(ref(), window=20, rules=[], flush_interval=0, config=MonitorConfig(buffer_rows=10))
    with m.ingest.paused():
        t = threading.Thread(target=lambda: [m.observe({"a": 1.0}) for _ in range(100)], daemon=True)
        t.start()
        t.join(DEADLINE)
    m.flush()
    reps, snap = m.reports(), m.snapshot()
    assert m.shed > 0 and sum(r.shed for r in reps) + snap.shed == m.shed
    assert sum(r.rows for r in reps) + snap.rows + m.shed == 100
    m.close()


@pytest.mark.parametrize("bad", [{"flush_interval": -1}, {"flush_interval": "1s"}, {"flush_interval": True},
                                 {"overload": "drop"}])
def test_lifetime_settings_are_validated(bad):
    key = next(iter(bad))
    with pytest.raises(InvalidInputError, match=f"config {key}"):
        MonitorConfig(**bad)


def test_checkpoint_shed_counts_are_validated():
    from fastdrift import codec
    from fastdrift.errors import CorruptStateError
    m = fastdrift.Monitor(ref(), window=10, rules=[])
    kind, params, payload = codec.decode(m.to_bytes())
    meta = codec.Reader(params, "p").json()
    for shed in ({"total": 1, "pending": 2}, {"total": -1, "pending": 0}, [1, 2], {"total": 1.5, "pending": 0}):
        bad = codec.encode(kind, codec.Writer().json({**meta, "shed": shed}).getvalue(), payload)
        with pytest.raises(CorruptStateError, match="shed"):
            fastdrift.Monitor.from_bytes(bad)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_prefork_server_workers_count_only_their_own_requests(tmp_path):
    # a real pre-fork server: gunicorn --preload imports the app (and its monitor, which has
    # buffered 3 warm-up requests) in the master, then forks the workers
    import socket
    import urllib.request
    (tmp_path / "svc.py").write_text(textwrap.dedent("""
        import json, os
        import numpy as np, pyarrow as pa, fastdrift
        m = fastdrift.Monitor(pa.table({"a": np.random.default_rng(0).normal(size=500)}), window=10**6,
                              rules=[], flush_interval=0.05)
        for _ in range(3):
            m.observe({"a": 0.0})  # in the master, before the fork: never counted by a worker
        def app(environ, start_response):
            if environ["PATH_INFO"] == "/obs":
                m.observe({"a": 1.0})
            # what this worker has counted, its own requests included (a snapshot counts the buffer)
            body = {"pid": os.getpid(), "rows": m.snapshot().rows, "shed": m.shed}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
    """))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b", f"127.0.0.1:{port}",
                             "svc:app"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def get(path):
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read())

    try:
        def up():
            try:
                get("/snap")
                return True
            except OSError:
                return False
        poll(up, "gunicorn answers")
        served, seen = {}, {}
        for _ in range(40):  # each answer is its worker's count after this request
            r = get("/obs")
            served[r["pid"]] = served.get(r["pid"], 0) + 1
            seen[r["pid"]] = r
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert {pid: (r["rows"], r["shed"]) for pid, r in seen.items()} == {pid: (n, 0) for pid, n in served.items()}
