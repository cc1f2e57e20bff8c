"""window.idle_timeout: event time runs on with the wall clock through an outage, so time windows
close (empty) and a volume rule sees the traffic stop; without it, no window closes."""
import threading

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.errors import InvalidInputError

VOLUME = dict(name="no-traffic", signal="volume", op="<", critical=1, owner="sre", runbook="r")


def _ref():
    return pa.table({"x": np.random.default_rng(0).normal(size=1000)})


def _monitor(now, idle=30.0, **kw):
    window = {"by": "time", "size": 60, "allowed_lateness": 2}
    if idle is not None:
        window["idle_timeout"] = idle
    return fastdrift.Monitor(reference=_ref(), event_time="t", window=window, rules=[VOLUME],
                             clock=lambda: now[0], **kw)


def _batch(ts):
    ts = np.asarray(ts, dtype=float)
    return pa.table({"x": np.random.default_rng(len(ts)).normal(size=len(ts)), "t": ts})


def test_an_outage_closes_its_windows_empty_and_the_volume_rule_fires():
    now = [1000.0]
    m = _monitor(now)
    m.update(_batch(np.r_[np.arange(60.0), 65.0]))  # watermark 63: closes [0, 60)
    assert [(r.window_start, r.rows) for r in m.reports()] == [(0, 60)]  # the read anchors (65, 1000)
    now[0] = 1020.0
    assert len(m.reports()) == 1  # idle 20 s < 30 s: event time waits for events
    now[0] = 1040.0  # idle: event time 65 + 40 = 105, watermark 103 < 120
    assert len(m.reports()) == 1
    now[0] = 1058.0  # event time 123, watermark 121: [60, 120) closes with its one row
    assert [(r.window_start, r.rows) for r in m.reports()] == [(0, 60), (60, 1)]
    now[0] = 1120.0  # event time 185: [120, 180) closes empty
    reps = m.reports()
    assert [(r.window_start, r.window_end, r.rows) for r in reps] == [(0, 60, 60), (60, 120, 1), (120, 180, 0)]
    assert [(a.rule, a.state, a.severity) for a in reps[-1].alerts] == [("no-traffic", "firing", "critical")]
    assert not m.promotion_allowed()
    # traffic comes back: a late event of a window closed by idleness is counted as dropped, never lost
    m.update(_batch([150.0, 200.0, 250.0]))  # 200 > 185: a new anchor; watermark 248 closes [180, 240)
    reps = m.reports()
    assert [(r.window_start, r.rows, r.dropped_late) for r in reps[3:]] == [(180, 1, 1)]
    assert [(a.rule, a.state) for a in reps[-1].alerts] == [("no-traffic", "resolved")]
    assert sum(r.rows + r.dropped_late for r in reps) + m.snapshot().rows == 61 + 3


def test_without_idle_timeout_an_outage_closes_nothing():
    now = [1000.0]
    m = _monitor(now, idle=None)
    m.update(_batch(np.r_[np.arange(60.0), 65.0]))
    for t in (1020.0, 1100.0, 5000.0):
        now[0] = t
        assert len(m.reports()) == 1


def test_the_observe_worker_closes_idle_windows_without_a_read():
    now, fired = [1000.0], threading.Event()

    def sink(alert):
        if alert.rule == "no-traffic" and alert.state == "firing":
            fired.set()

    m = _monitor(now, idle=5.0, flush_interval=0.02, sinks=[sink])
    try:
        for t in np.arange(0.0, 61.0, 0.5):  # 122 requests, event times 0 .. 60.5
            m.observe({"x": 0.1}, ts=float(t))
        assert not fired.wait(0.3)  # the worker anchors event time 60.5 at clock 1000
        now[0] = 1200.0  # idle 200 s: event time 260, windows through [180, 240) close empty
        assert fired.wait(30), "the worker's tick did not close the idle windows"
    finally:
        m.close()
    reps = m.reports()
    assert [r.rows for r in reps[:2]] == [120, 2] and all(r.rows == 0 for r in reps[2:]) and len(reps) >= 4


def test_checkpoint_and_config_round_trip_and_validation():
    now = [1000.0]
    m = _monitor(now)
    m.update(_batch(np.r_[np.arange(60.0), 65.0]))
    back = fastdrift.Monitor.from_bytes(m.to_bytes(), clock=lambda: now[0])
    assert back.config.window.idle_timeout == 30.0
    back.flush()  # anchors at the restored newest event time
    now[0] = 1200.0
    assert [r.rows for r in back.reports()] == [60, 1, 0, 0]
    for bad in (0, -1, float("inf"), "10"):
        with pytest.raises(InvalidInputError, match="window.idle_timeout"):
            fastdrift.Monitor(reference=_ref(), event_time="t", window={"by": "time", "size": 60, "idle_timeout": bad})
    with pytest.raises(InvalidInputError, match="window.idle_timeout.*event-time"):
        fastdrift.Monitor(reference=_ref(), window={"by": "rows", "size": 60, "idle_timeout": 5})


def test_a_fleet_outage_closes_the_fleets_windows(tmp_path):
    """Every worker stops publishing: the aggregator's own clock runs event time on."""
    now = [1000.0]
    for i, proc in enumerate(("w1", "w2")):
        m = _monitor([0.0], spool=str(tmp_path), process_id=proc)
        m.update(_batch(np.r_[np.arange(i, 60.0, 2), 65.0 + i]))  # 30 rows each in [0, 60), one past
        m.publish()
        m.close()
    fleet = fastdrift.Fleet(str(tmp_path), rules=[VOLUME], clock=lambda: now[0])
    assert [(r.window_start, r.rows) for r in fleet.reports()] == [(0, 60)]  # anchors (66, 1000)
    now[0] = 1020.0
    assert len(fleet.reports()) == 1
    now[0] = 1130.0  # event time 66 + 130 = 196, watermark 194: [60, 120) and [120, 180) close
    reps = fleet.reports()
    assert [(r.window_start, r.rows) for r in reps] == [(0, 60), (60, 2), (120, 0)]
    assert [(a.rule, a.state) for a in reps[-1].alerts] == [("no-traffic", "firing")]
    # an aggregator started during the outage anchors at its first read: idle_timeout later it closes too
    later = fastdrift.Fleet(str(tmp_path), rules=[VOLUME], clock=lambda: now[0])
    assert len(later.reports()) == 1
    now[0] += 130.0
    assert [r.rows for r in later.reports()] == [60, 2, 0]
