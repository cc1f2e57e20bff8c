"""A small WSGI prediction app for the pre-fork fleet test (tests/test_fleet.py).

Each request carries its features and event time in the query string; the app "predicts", calls
``observe()`` and answers with the prediction.  The monitor publishes its panes to the spool in
``FASTDRIFT_SPOOL``, with ``overload="block"`` so no request is shed (the test compares
counts exactly); each gunicorn worker builds its own (no ``--preload``), named ``<host>-<pid>``.
"""
import json
import os
import time
import urllib.parse

import numpy as np
import pyarrow as pa

import fastdrift

rng = np.random.default_rng(0)
N = 2000
REFERENCE = pa.table({
    "x": rng.normal(size=N),
    "c": pa.array(rng.choice(["a", "b", "c"], N).tolist()),
    "score": rng.random(N),
    "lat": rng.exponential(10, N),
    "ts": np.arange(N, dtype=np.float64),
})
CONFIG = dict(prediction="score", latency="lat", event_time="ts", overload="block",
              window={"by": "time", "size": 20, "slide": 10, "allowed_lateness": 10_000})


def make_monitor(**kw):
    return fastdrift.Monitor(REFERENCE, rules=[], **CONFIG, **kw)


def predict(x):
    return 1.0 / (1.0 + np.exp(-x)) if x == x else 0.5


monitor = make_monitor(flush_interval=0.2, spool=os.environ["FASTDRIFT_SPOOL"]) \
    if "FASTDRIFT_SPOOL" in os.environ else None


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/health":  # the test waits for this: it counts nothing
        time.sleep(float(urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("hold", ["0"])[0]))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"pid": os.getpid()}).encode()]
    q = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    x, c, ts, lat = float(q["x"][0]), q["c"][0], float(q["ts"][0]), float(q["lat"][0])
    score = predict(x)
    monitor.observe({"x": x, "c": c}, score, latency_ms=lat, ts=ts)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"score": score, "pid": os.getpid()}).encode()]
