"""A/B of the ``observe()`` request path: another ``buffers.py`` against this one, in one process.

    git show REV:src/fastdrift/monitor/buffers.py > /tmp/buffers_a.py
    python bench/observe_ab.py /tmp/buffers_a.py [--rounds 12] [--seconds 0.5] [--rate 100000]

Two monitors alike (20 features, a prediction, a latency, default settings), one with its ingest
buffer built from the given file (``A``), one from the installed package (``B``), and a no-op
call, paced as in ``bench_observe_tail.py``; the three take turns in rounds of ``--seconds``, so
that on a machine whose speed changes from one stretch of seconds to the next both builds see the
same stretches.  Prints per build the pooled p50, mean, p99 and p99.9 and the range of the rounds'
p50s, checks that every call was counted (``counted + shed == calls``), and the median over the
rounds of B's p50 over A's (below 1: B is faster).
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from bench_observe_tail import NAMES, _reference, paced  # noqa: E402

import fastdrift  # noqa: E402


def _load(path: str):
    spec = importlib.util.spec_from_file_location("fastdrift.monitor._buffers_a", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # relative imports resolve in fastdrift.monitor
    return mod


def _monitor(ref, mod=None):
    m = fastdrift.Monitor(ref, features=NAMES, prediction="pred", latency="lat", rules=[],
                          window={"by": "rows", "size": 10_000_000})
    if mod is not None:  # the same buffer, built by the other module
        ing, b = m.ingest, m.ingest.buffer
        other = mod.ObserveBuffer(
            b.names, b.types, prediction=b.prediction, pred_type=b.pred_type, latency=b.latency,
            error=b.error, request_id=b.request_id, event_time=b.event_time, capacity=b.cap,
            sink=ing._from_buffer, stamp_time=b._stamp, strict=b._strict, background=b._background,
            flush_interval=b._interval, overload=b._overload, on_tick=ing._tick,
            shadow_prediction=b.shadow_prediction, arrival=b._arrival)
        b.close()
        ing.buffer, m.observe = other, other.observe
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("buffers_a", help="the other buffers.py (A)")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=0.5, help="seconds per case and round")
    ap.add_argument("--rate", type=float, default=100_000)
    args = ap.parse_args(argv)
    ref = _reference()
    rng = np.random.default_rng(1)
    pool = [{k: float(v) for k, v in zip(NAMES, rng.normal(size=20))} for _ in range(1024)]
    ma, mb = _monitor(ref, _load(args.buffers_a)), _monitor(ref)
    for m in (ma, mb):  # warm up: the kernels' first calls, the worker's first buffers
        for i in range(3 * 4096):
            m.observe(pool[i & 1023], 0.42, latency_ms=3.7)
        m.flush()
    warm = {id(m): m.snapshot().rows for m in (ma, mb)}
    cases = {"A": lambda d: ma.observe(d, 0.42, latency_ms=3.7),
             "B": lambda d: mb.observe(d, 0.42, latency_ms=3.7),
             "no-op": lambda d: None}
    runs = {k: [] for k in cases}
    for r in range(args.rounds):
        order = ("A", "B", "no-op") if r % 2 == 0 else ("B", "A", "no-op")
        for k in order:
            runs[k].append(paced(cases[k], lambda i: (pool[i & 1023],), args.rate, args.seconds)[0] / 1e3)
    print(f"# observe() A/B: {args.rounds} rounds of {args.seconds} s at {args.rate:,.0f} calls/s; "
          f"A = {args.buffers_a}, B = {fastdrift.monitor.buffers.__file__}")
    for k, parts in runs.items():
        us = np.concatenate(parts)
        p50s = [np.median(p) for p in parts]
        print(f"{k:6s} p50 {np.median(us):.3f} us  mean {us.mean():.3f} (x{us.mean() / np.median(us):.2f})  "
              f"p99 {np.percentile(us, 99):.2f}  p99.9 {np.percentile(us, 99.9):.2f}  "
              f"rounds' p50 {min(p50s):.2f}-{max(p50s):.2f}")
    for k, m in (("A", ma), ("B", mb)):
        m.flush()
        counted = m.snapshot().rows - warm[id(m)]
        calls = sum(p.size for p in runs[k])
        assert counted + m.shed == calls, (k, counted, m.shed, calls)
        print(f"{k}: {calls:,} calls, counted {counted:,}, shed {m.shed:,}")
        m.close()
    ratio = [np.median(b) / np.median(a) for a, b in zip(runs["A"], runs["B"])]
    print(f"B/A p50, median over rounds {np.median(ratio):.3f} (rounds {min(ratio):.3f}-{max(ratio):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
