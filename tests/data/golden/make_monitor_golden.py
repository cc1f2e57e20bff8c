"""Writes golden monitor checkpoints and alert-evaluator states with their expected contents.

Run it with the fastdrift whose layout is to be kept (files that exist are never rewritten):
``monitor_checkpoint_layout<N>.bin`` / ``alert_state_layout<N>.bin`` hold the bytes, the ``.json``
beside each holds what loading them must give (records in :func:`fastdrift.records.to_json` form;
alerts with datetime windows in :func:`~fastdrift.records.to_jsonable` form).
Layout 1 is the two-envelope ``CHECKPOINT`` checkpoint and alerts stored as plain JSON in the
evaluator state; layout 2 is one ``MONITOR`` envelope and alerts in the records' exact JSON form.
tests/test_monitor_api.py checks that every layout keeps loading.

``monitor_checkpoint_labels.bin`` is a monitor with a label column and delayed labels: some joined,
some waiting in the join store (``waiting``: request id, label and score of three), and late,
unknown, duplicate and invalid ones counted.  Its ``.json`` holds what the rows fed give, computed
here with numpy from those rows (per window: predicted, labelled, coverage, confusion counts at 0.5,
Brier score; the label counters), never by reading the checkpoint back; tests/test_golden.py
checks it.
"""
import datetime as dt
import json
import pathlib

import numpy as np
import pyarrow as pa

import fastdrift
from fastdrift.alerts import AlertEvaluator, default_rules
from fastdrift.records import DriftSignal, WindowReport, frozen_mapping, to_jsonable
try:
    from fastdrift import codec
    from fastdrift.records import to_json
except ImportError:  # the fastdrift that wrote layout 1: codec among the sketches, record JSON in the monitor
    from fastdrift.sketches import codec
    from fastdrift.monitor.records_json import to_json

HERE = pathlib.Path(__file__).parent
FEATS = ["x", "c"]


def table(n, seed, shift=0.0, t0=0.0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "x": rng.normal(shift, 1, n), "c": pa.array(rng.choice(["a", "b", "c"], n)),
        "score": rng.random(n), "lat": rng.exponential(15, n), "err": rng.random(n) < 0.05,
        "rid": pa.array([f"r{seed}-{i}" for i in range(n)]), "ts": t0 + np.arange(n) / 50.0,
    })


def rules():
    return list(default_rules(FEATS, "score", True, True))


def monitor():
    """A drifting time-windowed monitor with evidence and firing alerts, mid-window."""
    m = fastdrift.Monitor(table(2000, 0), features=FEATS, prediction="score", latency="lat", error="err",
                          request_id="rid", event_time="ts", window={"by": "time", "size": 20, "slide": 10},
                          rules=rules(), evidence={"rate": 0.1, "max_rows": 3, "hash": ["rid"]})
    for i in range(5):
        m.update(table(500, 10 + i, shift=2.0, t0=10.0 * i))
    m.observe({"x": 0.5, "c": "a"}, 0.3, latency_ms=12.0, request_id="one", ts=55.0)
    return m


def evaluator():
    """Alert state with datetime windows, NaN observations and an active alert."""
    ev = AlertEvaluator([dict(name="psi", signal="feature_drift", metric="psi", warning=0.1, critical=0.2,
                               owner="ml-team", runbook="https://runbooks.example/psi")])
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    sig = DriftSignal("x", "numeric", "psi", 0.5, 100, 100, 0.0, float("nan"), pvalue=0.001)
    for i in range(2):
        ev.evaluate(WindowReport(window_start=t0 + dt.timedelta(minutes=i), window_end=t0 + dt.timedelta(minutes=i + 1),
                                 closed=True, rows=100, features=frozen_mapping({"x": sig}),
                                 evidence=(frozen_mapping({"x": 1.5, "c": None}),)))
    return ev


def write(name: str, data: bytes, expected) -> None:
    path = HERE / name
    if path.exists():
        print("kept", path, "(golden files are never rewritten)")
        return
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps(expected, sort_keys=True) + "\n")
    print("wrote", path)


def labelled_monitor():
    """A monitor with a label column whose labels arrive late, and its contents from the rows fed."""
    rng = np.random.default_rng(7)
    xr = rng.normal(size=2000)
    ref = pa.table({"x": xr, "score": 1 / (1 + np.exp(-2 * xr)), "y": (rng.random(2000) < 0.5).astype(np.int64)})
    n = 300  # 2 predictions/s over 150 s: windows [0, 50) and [50, 100) close, [100, 150) stays open
    x = rng.normal(size=n)
    s = np.round(1 / (1 + np.exp(-2 * x)), 6)
    y = (rng.random(n) < s).astype(np.int64)
    ids = np.array([f"g{i}" for i in range(n)])
    t = np.arange(n) / 2.0
    m = fastdrift.Monitor(ref, features=["x"], prediction="score", label="y", request_id="rid", event_time="t",
                          window={"by": "time", "size": 50}, rules=[], labels={"horizon": 1000.0})
    m.update(pa.table({"x": x, "score": s, "rid": ids, "t": t}))
    joined = np.flatnonzero(np.arange(n) % 3 != 2)[:-20]  # a third of them and the newest wait
    late = np.array([2, 5])  # labelled past the horizon
    m.update_labels(pa.table({"rid": ids[joined], "y": y[joined], "t": t[joined] + 30.0}))
    m.update_labels(pa.table({"rid": list(ids[late]) + ["nobody", str(ids[0]), str(ids[1])],
                              "y": [int(v) for v in y[late]] + [1, 1 - int(y[0]), 2],
                              "t": list(t[late] + 5000.0) + [10.0, 60.0, 60.0]}))
    counts = dict(joined=len(joined), late=len(late), unmatched=1, duplicate=1, invalid=1, shed=0,
                  not_remembered=0, duplicate_predictions=0)

    def window(lo, hi):
        inw = (t >= lo) & (t < hi)
        lab = np.zeros(n, bool)
        lab[joined] = True
        sel = inw & lab
        ys, ps = y[sel], (s[sel] >= 0.5).astype(np.int64)
        return {"window_start": lo, "window_end": hi, "predicted": int(inw.sum()), "labelled": int(sel.sum()),
                "coverage": float(sel.sum() / inw.sum()), "tp": int(((ps == 1) & (ys == 1)).sum()),
                "fp": int(((ps == 1) & (ys == 0)).sum()), "tn": int(((ps == 0) & (ys == 0)).sum()),
                "fn": int(((ps == 0) & (ys == 1)).sum()), "brier": float(np.mean((s[sel] - ys) ** 2))}

    want = {"reports": [window(0.0, 50.0), window(50.0, 100.0)], "snapshot": window(100.0, 150.0),
            "counts": counts, "waiting": [[str(ids[i]), int(y[i]), float(s[i])] for i in (8, 155, 299)]}
    return m, want


if __name__ == "__main__":
    m = monitor()
    data = m.to_bytes()
    layout = 1 if codec.decode(data)[0] == codec.Kind.CHECKPOINT else 2
    write(f"monitor_checkpoint_layout{layout}.bin", data,
          {"reports": [to_json(r) for r in m.reports()], "alerts": [to_json(a) for a in m.alerts()],
           "snapshot": to_json(m.snapshot()), "rejected": m.rejected})
    ev = evaluator()
    data = ev.to_bytes()
    layout = 2 if b'{"@": "Alert"' in data else 1
    write(f"alert_state_layout{layout}.bin", data,
          {"active": to_jsonable(ev.active()), "windows_evaluated": ev.windows_evaluated})
    m, want = labelled_monitor()
    write("monitor_checkpoint_labels.bin", m.to_bytes(), want)
