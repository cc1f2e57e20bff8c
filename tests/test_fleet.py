"""Mergeable monitor state: Monitor.merge against one monitor fed everything (exact counts)."""
import math
import os
import re
import time

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdrift.errors import IncompatibleSketchError, InvalidInputError
from fastdrift.monitor import Monitor, MonitorConfig, WindowSpec

REF_N = 3000


def ref_table(seed=0, n=REF_N):
    rng = np.random.default_rng(seed)
    return pa.table({
        "x": rng.normal(size=n),
        "c": pa.array(rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])),
        "pred": rng.random(n),
        "lat": rng.exponential(20, n),
        "err": rng.random(n) < 0.05,
        "ts": np.arange(n, dtype=np.float64),
    })


REF = ref_table()
WINDOW = WindowSpec(by="time", size=100, slide=50, allowed_lateness=1000)


def config(**kw):
    base = dict(prediction="pred", latency="lat", error="err", event_time="ts", window=WINDOW)
    base.update(kw)
    return MonitorConfig(**base)


def make(spool=None, process_id=None, spool_retention=64, **kw):
    return Monitor(REF, config=config(**kw), rules=[], spool=spool, process_id=process_id,
                   spool_retention=spool_retention)


def batch(rng, n, t_lo, t_hi):
    """n requests with event times in [t_lo, t_hi), unsorted, with nulls and unseen categories."""
    x = rng.normal(0.3, 1.2, n)
    x[rng.random(n) < 0.05] = np.nan
    return pa.table({
        "x": x,
        "c": pa.array(rng.choice(["a", "b", "c", "zz", None], n).tolist()),
        "pred": rng.random(n),
        "lat": rng.exponential(15, n),
        "err": rng.random(n) < 0.1,
        "ts": rng.uniform(t_lo, t_hi, n),
    })


def pane_state(m):
    """Per open pane: exact counts of every sketch (the oracle compares these)."""
    m.flush()
    out = {}
    for pid, ws in m.ingest.windower.open.items():
        d = {"rows": ws.rows, "errors": ws.errors, "error_rows": ws.error_rows,
             "lat_buckets": ws.latency_buckets.counts.tolist(), "lat_n": int(ws.latency.n)}
        for name, cp in list(ws.features.items()) + [("pred", ws.prediction)]:
            if cp.histogram is not None:
                d[name] = (cp.histogram.counts.tolist(), int(cp.missing_count), int(cp.count))
            else:
                cat = cp.categorical
                d[name] = (dict(zip(cat.categories, cat.counts.tolist())), int(cat.other_count),
                           int(cp.missing_count), int(cp.count))
        out[pid] = d
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 4), st.lists(st.integers(1, 60), min_size=1, max_size=8), st.randoms(use_true_random=False),
       st.integers(0, 2 ** 32 - 1))
def test_merge_of_split_stream_equals_one_monitor(n_proc, sizes, rnd, seed):
    rng = np.random.default_rng(seed)
    batches = [batch(rng, n, 0, 400) for n in sizes]
    one = make()
    procs = [make() for _ in range(n_proc)]
    for b in batches:
        one.update(b)
        procs[rnd.randrange(n_proc)].update(b)
    assert not one.reports()  # lateness 1000 s: nothing closed yet, every pane is state
    # merge in a random order and shape: into a fresh monitor, or chained into one of them
    order = list(range(n_proc))
    rnd.shuffle(order)
    if rnd.random() < 0.5:
        fleet = make()
        for i in order:
            fleet.merge(procs[i])
    else:
        fleet = procs[order[0]]
        for i in order[1:]:
            fleet.merge(procs[i])
    assert pane_state(fleet) == pane_state(one)
    # the windows they close from the merged panes are the same windows
    end = batch(rng, 1, 2000, 2001)
    one.update(end)
    fleet.update(end)
    a, b = one.reports(), fleet.reports()
    assert [(r.window_start, r.window_end, r.rows, r.errors, r.dropped_late) for r in a] == \
        [(r.window_start, r.window_end, r.rows, r.errors, r.dropped_late) for r in b]
    assert len(a) >= 8
    for ra, rb in zip(a, b):
        for name in ("x", "c"):
            fa, fb = ra.features[name], rb.features[name]
            assert (fa.n_cur, fa.missing_cur) == (fb.n_cur, fb.missing_cur)
            assert fa.value == fb.value or (np.isnan(fa.value) and np.isnan(fb.value))
        assert ra.prediction.value == rb.prediction.value or np.isnan(ra.prediction.value)
        assert ra.latency.count == rb.latency.count


def test_early_event_within_lateness_is_counted(rng):
    """Nothing closed yet, so nothing is late: an event of an earlier pane than the first seen counts."""
    m = make(window=WindowSpec(by="time", size=10, allowed_lateness=100))
    m.update(batch(rng, 5, 40, 50))
    m.update(batch(rng, 3, 0, 10))
    m.update(batch(rng, 1, 500, 501))
    reps = m.reports()
    assert sum(r.dropped_late for r in reps) == 0
    assert [(r.window_start, r.rows) for r in reps if r.rows] == [(0, 3), (40, 5)]


def test_merged_digest_within_rank_bound(rng):
    """Latency digests merged across 4 processes: p50/p95/p99 within 0.5 % rank of the exact quantiles."""
    procs = [make() for _ in range(4)]
    one = make()
    lats = []
    for i in range(40):
        b = batch(rng, 500, 0, 90)
        lats.append(b.column("lat").to_numpy())
        procs[i % 4].update(b)
        one.update(b)
    fleet = make()
    for p in procs:
        fleet.merge(p)
    snap = fleet.snapshot()
    exact = np.sort(np.concatenate(lats))
    assert snap.latency.count == exact.size == one.snapshot().latency.count
    for q, v in ((0.5, snap.latency.p50), (0.95, snap.latency.p95), (0.99, snap.latency.p99)):
        rank = np.searchsorted(exact, v) / exact.size
        assert abs(rank - q) <= 0.005, (q, rank)


def test_merge_counts_late_panes_as_dropped(rng):
    a, b = make(window=WindowSpec(by="time", size=10)), make(window=WindowSpec(by="time", size=10))
    a.update(batch(rng, 30, 0, 10))
    a.update(batch(rng, 1, 25, 26))  # closes panes 0 and 1 in a
    b.update(batch(rng, 7, 0, 10))   # pane 0, open in b
    a.merge(b)
    a.update(batch(rng, 1, 100, 101))
    reps = a.reports()
    assert sum(r.dropped_late for r in reps) == 7
    assert sum(r.rows for r in reps) == 31


def test_merge_refuses_row_windows_and_other_state():
    rows = Monitor(REF, config=config(window=WindowSpec(by="rows", size=100)), rules=[])
    with pytest.raises(IncompatibleSketchError, match="row-count windows"):
        rows.merge(Monitor(REF, config=config(window=WindowSpec(by="rows", size=100)), rules=[]))
    m = make()
    with pytest.raises(IncompatibleSketchError, match="'window'"):
        m.merge(make(window=WindowSpec(by="time", size=200, allowed_lateness=1000)))
    with pytest.raises(IncompatibleSketchError, match=r"'features' differs \(features \['x', 'c'\] != \['x', 'c', 'lat'\]"):
        m.merge(make(latency=None))
    with pytest.raises(IncompatibleSketchError, match="'tdigest_compression'"):
        m.merge(make(tdigest_compression=50.0))
    with pytest.raises(IncompatibleSketchError, match="column 'x'"):
        m.merge(Monitor(ref_table(seed=5), config=config(), rules=[]))
    with pytest.raises(InvalidInputError, match="itself"):
        m.merge(m)
    # rules and buffering are not state: these merge
    m.merge(Monitor(REF, config=config(flush_interval=0.1, buffer_rows=64), rules=None))


# -- spool and Fleet ------------------------------------------------------------------------------

@pytest.mark.parametrize("uri", [False, True])
def test_spool_fleet_equals_one_monitor(tmp_path, rng, uri):
    """Processes publish to a spool (a directory, or the same through a pyarrow.fs URI); Fleet merges
    their panes into the windows one monitor closes."""
    import fastdrift
    spool = tmp_path / "spool"
    where = f"file://{spool}" if uri else spool
    procs = [make(spool=where, process_id=f"w{i}") for i in range(4)]
    one = make()
    for j in range(24):
        b = batch(rng, 40, 15 * j, 15 * j + 20)
        procs[j % 4].update(b)
        one.update(b)
    for p in procs:
        p.close()
    names = sorted(os.listdir(spool / "panes"))
    assert names and all(n.startswith(("w0.", "w1.", "w2.", "w3.")) and n.endswith(".fdpane") for n in names)
    fleet = fastdrift.Fleet(where, rules=[])
    assert set(fleet.refresh().processes()) == {"w0", "w1", "w2", "w3"}
    assert pane_state(fleet.monitor) == pane_state(one)
    end = batch(rng, 1, 2000, 2001)
    one.update(end)
    a = one.reports()
    # the fleet's watermark comes from what processes published: one more request closes it all
    procs[0].update(end)
    procs[0].close()
    b = fleet.reports()
    key = [(r.window_start, r.window_end, r.rows, r.errors, r.dropped_late, r.latency.count) for r in a]
    assert key == [(r.window_start, r.window_end, r.rows, r.errors, r.dropped_late, r.latency.count) for r in b]
    for ra, rb in zip(a, b):
        for name in ("x", "c"):
            assert ra.features[name].n_cur == rb.features[name].n_cur
            assert ra.features[name].value == rb.features[name].value or math.isnan(ra.features[name].value)
    contrib = fleet.contributors()
    assert contrib[(0.0, 50.0)] == ("w0", "w1", "w2", "w3")


def two_process_spool(tmp_path, rng):
    """A spool where processes w0 and w1 published overlapping panes, both closed."""
    spool = tmp_path / "spool"
    procs = [make(spool=spool, process_id=f"w{i}") for i in range(2)]
    for j in range(6):
        procs[j % 2].update(batch(rng, 40, 15 * j, 15 * j + 20))
    for p in procs:
        p.close()
    return spool


def test_a_corrupt_pane_file_is_skipped_and_reported_the_rest_counts(tmp_path, rng):
    import fastdrift
    spool = two_process_spool(tmp_path, rng)
    names = sorted(os.listdir(spool / "panes"))
    bad = [n for n in names if n.startswith("w1.")][0]
    good = fastdrift.Fleet(spool, rules=[])
    rows = good.refresh().processes()["w0"]["rows"]
    path = spool / "panes" / bad
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # a damaged disk block: the checksum no longer matches
    path.write_bytes(bytes(blob))
    fleet = fastdrift.Fleet(spool, rules=[])
    fleet.refresh()
    assert list(fleet.corrupt()) == [bad]
    assert fleet.processes()["w0"]["rows"] == rows  # every other file still counted
    assert fleet.snapshot() is not None
    path.write_bytes(b"not a pane file at all")
    assert list(fleet.refresh().corrupt()) == [bad]


def test_a_pane_file_that_overflows_a_later_sketch_is_skipped_whole(tmp_path, rng):
    # a file whose features merge but whose latency buckets would pass the count cap: none of it
    # may stay in the fleet's pane (not the features merged before the overflow)
    import fastdrift
    from fastdrift import codec
    from fastdrift.monitor.signals import WindowSketch
    from fastdrift.records import to_json
    from fastdrift.sketches.base import MAX_COUNT
    from fastdrift.sketches.histogram import Histogram
    spool = two_process_spool(tmp_path, rng)
    names = sorted(os.listdir(spool / "panes"))
    shared = sorted({n.split(".")[1] for n in names if n.startswith("w0.")}
                    & {n.split(".")[1] for n in names if n.startswith("w1.")})
    bad = f"w1.{shared[0]}.fdpane"  # merged after w0's file of the same pane
    path = spool / "panes" / bad
    fleet = fastdrift.Fleet(spool, rules=[])
    _, params, payload = codec.decode(path.read_bytes(), expected_kind=codec.Kind.SPOOL_PANE)
    ws = WindowSketch.from_bytes(payload, fleet.monitor.ingest.ref, fleet.config)
    assert ws.features["x"].count > 0 and ws.latency_buckets.count > 0  # the part merged before the overflow
    lb = ws.latency_buckets
    counts = lb.counts.copy()
    counts[0] = MAX_COUNT - int(counts[1:].sum()) - lb.null_count - lb.nan_count  # at the cap: valid alone
    ws.latency_buckets = Histogram.from_counts(lb.edges, counts, lb.null_count, lb.nan_count)
    path.write_bytes(codec.encode(codec.Kind.SPOOL_PANE, params, ws.to_bytes()))
    fleet.refresh()
    assert list(fleet.corrupt()) == [bad] and "past" in fleet.corrupt()[bad]
    os.rename(path, tmp_path / bad)  # the oracle: a fleet that never saw the file
    alone = fastdrift.Fleet(spool, rules=[]).refresh()
    assert fleet.monitor.ingest.windower.to_bytes() == alone.monitor.ingest.windower.to_bytes()
    assert fleet.processes()["w1"]["rows"] == alone.processes()["w1"]["rows"]
    assert to_json(fleet.monitor.reports()) == to_json(alone.monitor.reports())
    assert to_json(fleet.monitor.snapshot()) == to_json(alone.monitor.snapshot())


def _totals(t):
    """The exported counters of a Totals, comparable."""
    return (t.rows, t.errors, t.error_rows, t.latency_invalid, t.latency.tolist(), t.latency_sum_ms,
            {n: c.tolist() for n, c in t.bins.items()}, dict(t.missing), {k: list(v) for k, v in t.kpis.items()})


def test_a_retired_pane_that_overflows_a_later_sketch_is_left_out_whole(tmp_path, rng):
    # two panes retire in one read (their files gone); the second's features merge into the retired
    # counts but its latency buckets would pass the count cap: none of it may stay exported
    import shutil
    import fastdrift
    from fastdrift import codec
    from fastdrift.monitor.signals import WindowSketch
    from fastdrift.sketches.base import MAX_COUNT
    from fastdrift.sketches.histogram import Histogram
    spool = two_process_spool(tmp_path, rng)
    names = sorted(os.listdir(spool / "panes"), key=lambda n: int(n.split(".")[1]))
    first, second = names[0], names[-1]  # decoded, so retired, in pane order
    assert int(first.split(".")[1]) < int(second.split(".")[1])
    fleet = fastdrift.Fleet(spool, rules=[])
    path = spool / "panes" / first
    _, params, payload = codec.decode(path.read_bytes(), expected_kind=codec.Kind.SPOOL_PANE)
    ws = WindowSketch.from_bytes(payload, fleet.monitor.ingest.ref, fleet.config)
    lb = ws.latency_buckets
    counts = lb.counts.copy()
    counts[0] = MAX_COUNT - int(counts[1:].sum()) - lb.null_count - lb.nan_count  # at the cap: valid alone
    ws.latency_buckets = Histogram.from_counts(lb.edges, counts, lb.null_count, lb.nan_count)
    path.write_bytes(codec.encode(codec.Kind.SPOOL_PANE, params, ws.to_bytes()))
    shutil.copytree(spool, tmp_path / "oracle")
    oracle_spool = tmp_path / "oracle"
    os.remove(oracle_spool / "panes" / second)  # the oracle never sees the second file

    fleet.refresh()
    oracle = fastdrift.Fleet(oracle_spool, rules=[]).refresh()
    _, _, later = codec.decode((spool / "panes" / second).read_bytes(), expected_kind=codec.Kind.SPOOL_PANE)
    later = WindowSketch.from_bytes(later, fleet.monitor.ingest.ref, fleet.config)
    assert later.features["x"].count > 0 and later.latency_buckets.count > 0  # merges before the overflow
    for name in (first, second):
        os.rename(spool / "panes" / name, tmp_path / name)
    os.rename(oracle_spool / "panes" / first, tmp_path / "oracle-first")
    fleet.refresh()  # retires both: the first counted, the second left out whole
    assert list(fleet.corrupt()) == [second] and "past" in fleet.corrupt()[second]
    oracle.refresh()  # retires the first only
    got, want = fleet.exposition(), oracle.exposition()
    assert _totals(got.totals) == _totals(want.totals)
    live = fleet.monitor.exposition().totals
    assert got.totals.rows == live.rows + ws.rows  # the first file's rows are still exported


def test_fleet_counters_never_fall_when_panes_retire(tmp_path, rng):
    import fastdrift
    spool = tmp_path / "spool"
    w = make(spool=spool, process_id="w0", spool_retention=1,  # keeps one closed pane published
             window=WindowSpec(by="time", size=10, slide=10, allowed_lateness=0))
    fleet = fastdrift.Fleet(spool, rules=[])
    seen, sent = [], 0
    for j in range(12):
        b = batch(rng, 30, 10 * j, 10 * j + 10)
        w.update(b)
        w.publish()
        sent += b.num_rows
        x = fleet.exposition()
        seen.append(x.totals.rows)
    assert len(os.listdir(spool / "panes")) <= 3  # 12 panes, most retired meanwhile
    assert seen == sorted(seen)  # a counter
    assert seen[-1] == sent


def test_save_publishes_first(tmp_path, rng):
    import fastdrift
    spool = tmp_path / "spool"
    w = make(spool=spool, process_id="w0")
    b = batch(rng, 50, 0, 40)
    w.update(b)  # counted, not yet published
    w.save(tmp_path / "w.ckpt")
    assert fastdrift.Fleet(spool, rules=[]).snapshot().rows == b.num_rows


def test_spool_refuses_another_reference(tmp_path):
    spool = tmp_path / "s"
    make(spool=spool)
    make(spool=spool, flush_interval=0.5)  # not state: shares the spool
    with pytest.raises(IncompatibleSketchError, match="column 'x'"):
        Monitor(ref_table(seed=3), config=config(), rules=[], spool=spool)
    with pytest.raises(IncompatibleSketchError, match="'window'"):
        make(spool=spool, window=WindowSpec(by="time", size=60))
    with pytest.raises(InvalidInputError, match="event-time"):
        Monitor(REF, config=config(window=WindowSpec(by="rows", size=10)), rules=[], spool=tmp_path / "r")


def test_spool_retires_old_panes(tmp_path, rng):
    spool = tmp_path / "s"
    m = make(spool=spool, process_id="p", spool_retention=3, window=WindowSpec(by="time", size=10))
    for j in range(20):
        m.update(batch(rng, 5, 10 * j, 10 * j + 10))
        m.publish()
    names = sorted(int(n.split(".")[1]) for n in os.listdir(spool / "panes"))
    assert names == [16, 17, 18, 19]  # 3 closed panes behind the newest closed (18), and the open one


def test_restored_monitor_goes_on_publishing(tmp_path, rng):
    """A publishing monitor saved and loaded with spool= and process_id= continues its pane files:
    the fleet over the spool equals one monitor fed everything (none lost, none counted twice)."""
    import fastdrift
    spool = tmp_path / "spool"
    w0, w1, one = make(spool=spool, process_id="w0"), make(spool=spool, process_id="w1"), make()
    for j in range(8):
        b = batch(rng, 40, 15 * j, 15 * j + 20)
        (w0, w1)[j % 2].update(b)
        one.update(b)
    w0.publish()
    w0.save(tmp_path / "w0.ckpt")
    w0.close()
    w0 = Monitor.load(tmp_path / "w0.ckpt", spool=spool, process_id="w0")
    assert w0.ingest.spool is not None
    for j in range(8, 16):
        b = batch(rng, 40, 15 * j, 15 * j + 20)
        (w0, w1)[j % 2].update(b)
        one.update(b)
    w0.close()
    w1.close()
    fleet = fastdrift.Fleet(spool, rules=[])
    assert set(fleet.refresh().processes()) == {"w0", "w1"}
    assert pane_state(fleet.monitor) == pane_state(one)
    assert fleet.snapshot().rows == one.snapshot().rows
    b = Monitor.from_bytes(one.to_bytes(), spool=tmp_path / "other", process_id="p", spool_retention=2)
    assert b.ingest.spool.retention == 2 and b.ingest.spool.process_id == "p"


@pytest.mark.parametrize("max_rows", [1000, 60])
def test_fleet_evidence_is_one_sample_of_the_union(tmp_path, rng, max_rows):
    """Two processes with the same evidence seed: each draws keys of its own stream, so the fleet's
    merged sample keeps rows of both, as one bottom-k sample of the union would (no shared keys)."""
    import fastdrift
    from fastdrift.monitor import EvidenceSpec
    ev = EvidenceSpec(rate=1.0, max_rows=max_rows, seed=7)
    spool = tmp_path / "spool"
    procs = [make(spool=spool, process_id=f"w{i}", evidence=ev) for i in range(2)]
    sent = []
    for j in range(6):
        b = batch(rng, 50, 0, 90)  # every row in the one open window
        procs[j % 2].update(b)
        sent.append(b)
    for p in procs:
        p.close()
    fleet = fastdrift.Fleet(spool, rules=[])
    snap = fleet.snapshot()
    preds = [row["pred"] for row in snap.evidence]
    assert len(preds) == len(set(preds)) == min(max_rows, 300)  # a single sample of the 300 rows holds this many
    by_proc = [set(pa.concat_tables(sent[i::2])["pred"].to_pylist()) for i in range(2)]
    assert set(preds) <= by_proc[0] | by_proc[1]
    if max_rows >= 300:
        assert set(preds) == by_proc[0] | by_proc[1]
    else:  # both processes' rows are in the sample (a shared key sequence would favour one)
        assert all(len(set(preds) & s) >= max_rows // 4 for s in by_proc)
    keys = [k for _, ws in sorted(fleet.monitor.ingest.windower.open.items()) for k, _ in ws.evidence.rows]
    assert len(keys) == len(set(keys))
    # without a spool, a monitor's keys are the seed's own sequence (checkpoints and goldens unchanged)
    from fastdrift.sketches.sample import row_keys
    solo = make(evidence=ev)
    solo.update(sent[0])
    got = sorted(k for ws in solo.ingest.windower.open.values() for k, _ in ws.evidence.rows)
    assert got == sorted(row_keys(7, 0, 50).tolist())[:len(got)] and len(got) == min(max_rows, 50)


def test_fleet_snapshot_counts_pending_late_and_rejected_of_open_panes(tmp_path, rng):
    """Late and rejected rows not yet in a closed window are in the fleet's open window, as they are
    in one monitor's snapshot (they were dropped from the fleet's view until the pane closed)."""
    import fastdrift
    spool = tmp_path / "spool"
    win = WindowSpec(by="time", size=100, slide=50, allowed_lateness=0)
    w0, w1 = (make(spool=spool, process_id=f"w{i}", window=win) for i in range(2))
    one = make(window=win)

    def nan_ts(b, k):
        ts = b["ts"].to_numpy().copy()
        ts[:k] = np.nan
        return b.set_column(b.schema.get_field_index("ts"), "ts", pa.array(ts))

    first = batch(rng, 60, 0, 160)  # closes panes 0-2 (ends 50, 100, 150)
    more = pa.concat_tables([batch(rng, 10, 0, 40), nan_ts(batch(rng, 8, 150, 160), 3)])  # 10 late, 3 rejected
    other = nan_ts(batch(rng, 24, 150, 160), 4)  # 4 rejected
    for m, b in ((w0, first), (w0, more), (w1, other)):
        m.update(b)
        one.update(b)
    w0.close()
    w1.close()
    want = one.snapshot()
    assert (want.dropped_late, want.rejected) == (10, 7)
    got = fastdrift.Fleet(spool, rules=[]).snapshot()
    assert (got.rows, got.dropped_late, got.rejected, got.shed) == (want.rows, 10, 7, want.shed)
    assert [(r.window_end, r.rows, r.dropped_late, r.rejected) for r in one.reports()] == \
        [(r.window_end, r.rows, r.dropped_late, r.rejected) for r in fastdrift.Fleet(spool, rules=[]).reports()]


# -- a real pre-fork server ---------------------------------------------------------------------------

def _gunicorn(spool, workers=4):
    import socket
    import subprocess
    import sys
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, FASTDRIFT_SPOOL=str(spool))
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                             "--graceful-timeout", "20", "fleet_app:app"],
                            cwd=os.path.dirname(__file__), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, port


def _wait_for_workers(proc, port, workers=4, deadline=180.0):
    """Until each of the ``workers`` gunicorn workers has answered ``/health`` (which counts
    nothing): concurrent requests held 0.2 s each reach every worker that is up."""
    import concurrent.futures
    import json
    import urllib.request
    url = f"http://127.0.0.1:{port}/health?hold=0.2"
    end = time.monotonic() + deadline
    seen = set()
    with concurrent.futures.ThreadPoolExecutor(2 * workers) as ex:
        while len(seen) < workers:
            def ask(_):
                try:
                    return json.loads(urllib.request.urlopen(url, timeout=10).read())["pid"]
                except OSError:
                    return None
            seen |= {p for p in ex.map(ask, range(2 * workers)) if p is not None}
            if time.monotonic() > end or proc.poll() is not None:
                raise AssertionError(f"{len(seen)} of {workers} gunicorn workers answered: "
                                     f"{proc.stderr.read().decode()[-2000:] if proc.poll() is not None else ''}")
    return seen


def _requests(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.4, 1.3, n)
    x[rng.random(n) < 0.05] = np.nan
    return [dict(x=float(x[i]), c=str(rng.choice(["a", "b", "c", "zz"])), ts=float(rng.uniform(0, 100)),
                 lat=float(rng.exponential(8))) for i in range(n)]


def test_gunicorn_fleet_equals_one_monitor(tmp_path):
    """gunicorn, 4 workers, 8 client threads: the spool merged by `fastdrift aggregate` / Fleet equals
    one Monitor fed the same requests (bins, categories, counts exact; digests within their bound)."""
    import concurrent.futures
    import json
    import subprocess
    import sys
    import urllib.parse
    import urllib.request

    import fastdrift
    import fleet_app

    spool = tmp_path / "spool"
    reqs = _requests(1200, 11)
    proc, port = _gunicorn(spool)
    pids = []
    try:
        def get(r):
            url = f"http://127.0.0.1:{port}/predict?{urllib.parse.urlencode(r)}"
            return json.loads(urllib.request.urlopen(url, timeout=30).read())

        _wait_for_workers(proc, port)  # every worker up, by a request that counts nothing
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            pids = [r["pid"] for r in ex.map(get, reqs)]
    finally:
        proc.terminate()  # graceful: each worker flushes and publishes at exit
        _, err = proc.communicate(timeout=90)
    assert len(set(pids)) >= 2, "the requests should have been spread over several workers"

    one = fleet_app.make_monitor()
    for r in reqs:
        one.observe({"x": r["x"], "c": r["c"]}, fleet_app.predict(r["x"]), latency_ms=r["lat"], ts=r["ts"])
    one.flush()
    fleet = fastdrift.Fleet(spool, rules=[]).refresh()
    assert len(fleet.processes()) >= len(set(pids))
    assert pane_state(fleet.monitor) == pane_state(one)
    a, b = one.snapshot(), fleet.snapshot()
    assert (a.rows, b.rows) == (len(reqs), len(reqs))
    lat = np.sort([r["lat"] for r in reqs])
    for q, v in ((0.5, b.latency.p50), (0.99, b.latency.p99)):
        assert abs(np.searchsorted(lat, v) / lat.size - q) <= 0.005

    # the command line: the same closed windows, once one more process publishes a late event time
    closer = fleet_app.make_monitor(spool=spool, process_id="closer")
    for m in (closer, one):
        m.observe({"x": 0.0, "c": "a"}, 0.5, latency_ms=1.0, ts=10_200.0)
    closer.close()
    out = subprocess.run([sys.executable, "-m", "fastdrift.cli", "aggregate", str(spool), "--once",
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1, 2), out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["processes"]) == set(fleet.processes()) | {"closer"}
    want = [r for r in one.reports() if r.rows]
    got = [w for w in doc["windows"] if w["rows"]]
    assert len(want) == 11  # [0, 10), [0, 20), [10, 30) ... [90, 110)
    assert [(w["window_start"], w["window_end"], w["rows"]) for w in got] == \
        [(r.window_start, r.window_end, r.rows) for r in want]
    for w, r in zip(got, want):
        assert w["processes"] and set(w["processes"]) <= set(doc["processes"])
        for f in ("x", "c"):
            assert w["features"][f]["n_cur"] == r.features[f].n_cur
            assert w["features"][f]["value"] == r.features[f].value


def test_gunicorn_worker_killed_mid_run(tmp_path):
    """A worker killed after publishing keeps its panes (exact); one killed without warning loses at
    most what it served since its last publish, which the fleet's per-process rows show."""
    import concurrent.futures
    import json
    import signal
    import socket
    import urllib.parse
    import urllib.request

    import fastdrift

    spool = tmp_path / "spool"
    reqs = _requests(900, 12)
    proc, port = _gunicorn(spool)
    served = []  # (pid, request)
    retried = []  # requests sent again after a failure: a worker may have counted the failed attempt
    try:
        def get(r):
            url = f"http://127.0.0.1:{port}/predict?{urllib.parse.urlencode(r)}"
            for attempt in range(50):  # a request to a worker being killed fails: the client retries
                try:
                    return json.loads(urllib.request.urlopen(url, timeout=30).read())["pid"], r
                except OSError as exc:
                    if not isinstance(getattr(exc, "reason", exc), ConnectionRefusedError):
                        retried.append(r)
                    time.sleep(0.1)
            raise AssertionError("no answer")

        _wait_for_workers(proc, port)  # every worker up, by a request that counts nothing
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            served += ex.map(get, reqs[:300])
            first = served[0][0]
            # wait (a liveness bound, not a speed assertion) until the spool holds every request the
            # first worker answered: its timed flush has published them, however loaded the machine
            host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
            answered = sum(pid == first for pid, _ in served)
            deadline = time.monotonic() + 60
            while fastdrift.Fleet(spool, rules=[]).refresh().processes().get(
                    f"{host}-{first}", {}).get("rows", 0) < answered:
                assert time.monotonic() < deadline, "the first worker never published what it served"
                time.sleep(0.1)
            os.kill(first, signal.SIGKILL)
            served += ex.map(get, reqs[300:600])
            second = next(pid for pid, _ in reversed(served) if pid != first)
            os.kill(second, signal.SIGKILL)  # no wait: its last flush interval is lost
            served += ex.map(get, reqs[600:])
    finally:
        proc.terminate()
        proc.communicate(timeout=90)
    by_pid = {}
    for pid, r in served:
        by_pid.setdefault(pid, []).append(r)
    fleet = fastdrift.Fleet(spool, rules=[]).refresh()
    rows = {p: v["rows"] for p, v in fleet.processes().items()}
    want = {f"{host}-{pid}": len(rs) for pid, rs in by_pid.items()}
    dead = f"{host}-{second}"
    # exact when no request was sent twice; a failed attempt a worker counted before failing (a
    # reset under load, the kill) is counted besides the attempt that answered: at most len(retried)
    extra = len(retried)
    lost = want[dead] - rows.get(dead, 0)
    assert -extra <= lost <= want[dead]
    for p, n in want.items():
        if p != dead:  # the first worker died after publishing: kept whole; the others exited cleanly
            assert n <= rows.get(p, 0) <= n + extra, (p, n, rows.get(p, 0), extra)
    assert len(reqs) - lost <= fleet.snapshot().rows <= len(reqs) - lost + extra
    print(f"worker killed without warning lost {lost} of its {want[dead]} requests; {extra} retried")


def test_fleet_serves_merged_metrics(tmp_path, rng):
    """The aggregator's /metrics: the counters of every process's panes, summed."""
    import urllib.request

    import fastdrift
    pytest.importorskip("prometheus_client")
    spool = tmp_path / "s"
    for i in range(3):
        m = make(spool=spool, process_id=f"w{i}")
        m.update(batch(rng, 50 + i, 0, 40))
        m.close()
    server, thread = fastdrift.Fleet(spool, rules=[]).serve_metrics(port=0)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10).read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    line = next(x for x in text.splitlines() if x.startswith("fastdrift_rows_total"))
    assert float(line.split()[-1]) == 50 + 51 + 52


def test_fleet_alerts_once_for_the_fleet(tmp_path, rng):
    """Four workers each see a shifted feature: the fleet has one alert per window transition, from
    the merged window, and no promotion while it fires."""
    import fastdrift
    rules = [{"name": "x-drift", "owner": "ml", "runbook": "https://runbook", "signal": "feature_drift", "metric": "psi", "features": ["x"],
              "critical": 0.25, "for": 1}]
    spool = tmp_path / "s"
    procs = [make(spool=spool, process_id=f"w{i}", window=WindowSpec(by="time", size=10)) for i in range(4)]
    for i, p in enumerate(procs):
        b = batch(rng, 100, 0, 10)
        b = b.set_column(0, "x", pa.array(b.column("x").to_numpy() + 3.0))
        p.update(b)
        p.update(batch(rng, 1, 10 + i, 11 + i))
        p.close()
    sent = []
    fleet = fastdrift.Fleet(spool, rules=rules, sinks=[sent.append])
    reps = fleet.reports()
    assert [(r.window_start, r.rows) for r in reps] == [(0, 400)]
    assert [(a.rule, a.state) for a in reps[0].alerts] == [("x-drift", "firing")]
    assert [a.rule for a in fleet.alerts()] == ["x-drift"]
    assert fleet.promotion_allowed() is False
    assert fleet.contributors()[(0.0, 10.0)] == ("w0", "w1", "w2", "w3")
    assert [(a.rule, a.state) for a in sent] == [("x-drift", "firing")]  # once, over several reads


def test_aggregate_cli_serves_and_writes_alerts(tmp_path, rng):
    """`fastdrift aggregate --serve 0 --alerts FILE`: the merged /metrics, and the fleet's alert lines."""
    import json
    import subprocess
    import sys
    import time
    import urllib.request
    pytest.importorskip("prometheus_client")
    spool = tmp_path / "s"
    for i in range(2):
        m = make(spool=spool, process_id=f"w{i}", window=WindowSpec(by="time", size=10))
        b = batch(rng, 60, 0, 10)
        m.update(b.set_column(0, "x", pa.array(b.column("x").to_numpy() + 3.0)))
        m.update(batch(rng, 1, 20, 21))
        m.close()
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - {name: x-drift, owner: ml, runbook: 'https://r', signal: feature_drift, metric: psi,\n"
        "     features: [x], critical: 0.25, for: 1}\n")
    alerts = tmp_path / "alerts.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "fastdrift.cli", "aggregate", str(spool), "--serve", "0",
                             "--interval", "0.2", "--rules", str(tmp_path / "rules.yaml"), "--alerts", str(alerts)],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "serving http://127.0.0.1:" in line, line
        url = line.split()[-1]
        text = urllib.request.urlopen(url, timeout=30).read().decode()
        rows = next(x for x in text.splitlines() if x.startswith("fastdrift_rows_total"))
        assert float(rows.split()[-1]) == 122
        end = time.monotonic() + 30
        while not (alerts.exists() and alerts.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(1.0)  # several more re-reads: each transition is written once
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    recs = [json.loads(x) for x in alerts.read_text().splitlines()]
    # fires on the merged window [0, 10), resolves on the empty [10, 20)
    assert [(r["rule"], r["state"], r["window_start"]) for r in recs] == \
        [("x-drift", "firing", 0.0), ("x-drift", "resolved", 10.0)]


def test_spool_and_fleet_memory_do_not_grow_with_traffic(tmp_path):
    """A pane file holds state, never requests: 20x the rows per process give pane files of about
    the same size (bounded sketches: fixed bins, capped categories, a t-digest of at most 2δ+8
    centroids, an evidence sample of at most max_rows, full at both sizes), and a Fleet merging
    them allocates about as much."""
    import tracemalloc

    import fastdrift

    def spool_of(rows, name):
        rng = np.random.default_rng(7)
        spool = tmp_path / name
        for i in range(4):
            m = make(spool=spool, process_id=f"w{i}")
            for _ in range(rows // 2000):
                m.update(batch(rng, 2000, 0, 40))  # one pane: every row in the same window
            m.close()
        sizes = [os.path.getsize(spool / "panes" / f) for f in os.listdir(spool / "panes")]
        tracemalloc.start()
        fleet = fastdrift.Fleet(spool, rules=[]).refresh()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert fleet.snapshot().rows == 4 * rows
        return max(sizes), peak

    small_file, small_peak = spool_of(20_000, "small")
    big_file, big_peak = spool_of(400_000, "big")
    print(f"pane file {small_file} -> {big_file} bytes, fleet peak {small_peak} -> {big_peak} bytes")
    assert big_file <= 1.25 * small_file, (small_file, big_file)
    assert big_peak <= 1.25 * small_peak, (small_peak, big_peak)
