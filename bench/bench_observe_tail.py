"""Tail latency of ``Monitor.observe`` under a sustained request rate, with its baselines.

    python bench/bench_observe_tail.py [--rate 100000] [--seconds 5] [--overload shed] [--repeat 1] [--rounds 1]
                                       [--full-speed SECONDS]

One thread calls ``observe`` (20 numeric features, a prediction and a latency) paced at ``--rate``
calls per second for ``--seconds``, timing every call with ``perf_counter_ns``; the monitor's worker
thread counts the buffers meanwhile (default settings: 4096-row buffers, ``flush_interval=1``).
In the same run and the same paced loop, the baselines: building the request's dict of 20 floats,
one ``prometheus_client`` ``Histogram.observe`` (if installed), and a no-op call (the timer's own
floor).  Printed per case: calls, achieved rate, p50 / p99 / p99.9 / max in microseconds, calls over
1 ms, how late calls started (p99.9, max), the calls during which the kernel preempted the calling
thread (``preempt``) or the thread blocked (``blocked``), the p99.9 of the calls not preempted
(``p99.9 np``: what the code costs, without the machine's other load), the mean of all calls and
of the calls not preempted (``mean np``), and for the monitor the
requests counted and shed (``counted + shed == calls``, checked).  ``--rounds N`` splits each case's
time into N stretches and runs the cases in turn, so that on a machine whose speed changes from one
stretch of seconds to the next every case sees the same stretches (the p50 of each round and its
mean against its p50 are printed).  ``--full-speed SECONDS`` then calls ``observe``, the
``prometheus_client`` call and the no-op call in turn, call by call, and prints each one's p50 in
the windows of 10 ms where the host ran this core at full speed and in the others: on a core that
another tenant's hardware thread shares, interpreted code runs at about half speed for stretches
of seconds (docs/performance.md), and the no-op call in the same window tells which.

Targets: p99.9 <= 20 us and no call over 1 ms at 100k calls/s on 2 cores.  The pacing
loop spins between calls, so it holds one core; the worker has the other.  On a shared machine,
other processes show up in the tail of every case alike: compare with the baselines' tails.
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time

import numpy as np
import pyarrow as pa

import fastdrift
from fastdrift.monitor import buffers  # GIL_SLICE

NAMES = [f"f{i}" for i in range(20)]
#: ``--full-speed``: a window is at the host's full speed when the no-op call's median in it is within
#: this factor of the fastest window's (bench/bench_kernels.py: the same factor for its probe).
FULL_SPEED = 1.3
#: ``--full-speed``: seconds a window (the host's stretches of one speed last seconds)
WINDOW = 0.01
_THREAD_USAGE = hasattr(resource, "RUSAGE_THREAD")  # Linux: per-thread context switch counts


def _reference(n=200_000):
    rng = np.random.default_rng(0)
    cols = {k: rng.normal(0, 1, n) for k in NAMES}
    cols.update(pred=rng.random(n), lat=rng.exponential(10, n))
    return pa.table(cols)


def _ticks(rate: float, n: int, start: int):
    """(i, due) for i in range(n), each once its time has come (``start`` + i / ``rate`` seconds,
    on the ``perf_counter_ns`` clock), waiting with the GIL released."""
    clock, nap = time.perf_counter_ns, time.sleep
    step = 1e9 / rate
    for i in range(n):
        due = start + int(i * step)
        while clock() < due:
            nap(0)
        yield i, due


def paced(call, args_of, rate: float, seconds: float):
    """Call ``call(*args_of(i))`` at ``rate`` calls/s for ``seconds``.

    Returns (latency of each call in ns, how late each call started in ns, achieved calls/s,
    context switches of the calling thread around each call: (voluntary, involuntary)).
    Between calls the loop waits with the GIL released (``time.sleep(0)``), as a service thread
    waiting for its next request does; a call that could not start on time (the GIL held elsewhere,
    the process descheduled) shows in the lateness.  The switches are read with
    ``getrusage(RUSAGE_THREAD)`` just outside the timed region: an involuntary switch is the kernel
    preempting the thread (another runnable thread or process took its core), a voluntary one is
    the thread blocking (a contended lock, the GIL) - the first is the machine, the second the code.
    """
    n = int(rate * seconds)
    out = np.empty(n, dtype=np.int64)
    late = np.empty(n, dtype=np.int64)
    vol = np.zeros(n, dtype=np.int32)
    inv = np.zeros(n, dtype=np.int32)
    flt = np.zeros(n, dtype=np.int32)
    clock = time.perf_counter_ns
    usage = (lambda: resource.getrusage(resource.RUSAGE_THREAD)) if _THREAD_USAGE else None
    start = clock()
    for i, due in _ticks(rate, n, start):
        a = args_of(i)
        r0 = usage() if usage else None
        t0 = clock()
        call(*a)
        t1 = clock()
        if usage:
            r1 = usage()
            vol[i] = r1.ru_nvcsw - r0.ru_nvcsw
            inv[i] = r1.ru_nivcsw - r0.ru_nivcsw
            flt[i] = r1.ru_minflt - r0.ru_minflt
        out[i] = t1 - t0
        late[i] = t0 - due
    out_rate = n / ((clock() - start) / 1e9)
    return out, late, out_rate, (vol, inv, flt)


def paced_turns(calls, rate: float, seconds: float):
    """The ``calls`` ((call, args_of) pairs) in turn, call by call, each at ``rate`` calls/s for
    ``seconds``, paced as :func:`paced` paces one; returns each one's latencies in ns."""
    n = int(rate * seconds)
    out = [np.empty(n, dtype=np.int64) for _ in calls]
    clock = time.perf_counter_ns
    for i, _ in _ticks(rate, n, clock()):
        for k, (call, args_of) in enumerate(calls):
            a = args_of(i)
            t0 = clock()
            call(*a)
            out[k][i] = clock() - t0
    return out


def full_speed(times, names, rate: float) -> str:
    """Each call's p50 in the windows of ``WINDOW`` seconds the host ran this core at full speed and
    in the others.  The last of ``times`` (the no-op call) tells the speed: a window is at full speed
    when its median is within :data:`FULL_SPEED` of the fastest window's.  The calls took turns one
    by one, so every window holds each call at the same speed of the machine."""
    per = max(1, int(WINDOW * rate))
    w = len(times[-1]) // per
    if w == 0:
        return "# full speed: too few calls for one window"
    med = lambda a: np.median(a[:w * per].reshape(w, per), axis=1)  # noqa: E731
    speed = med(times[-1])
    full = speed <= FULL_SPEED * speed.min()
    out = (f"# in turn, call by call, {len(times[-1]):,} calls each: windows of {WINDOW * 1e3:.0f} ms at full speed "
           f"(the no-op call's median within {FULL_SPEED}x its fastest window's) {int(full.sum())} of {w}; "
           f"p50 at full speed / slowed:")
    for name, t in zip(names, times):
        blocks = t[:w * per].reshape(w, per)
        at = lambda m: f"{np.median(blocks[m]) / 1e3:.2f}" if m.any() else "-"  # noqa: E731
        out += f" {name} {at(full)} / {at(~full)} us;"
    return out.rstrip(";")


def row(name: str, res, extra: str = "") -> str:
    lat_ns, late_ns, rate, (vol, inv, flt) = res
    us = lat_ns / 1e3
    p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
    l999 = np.percentile(late_ns / 1e3, 99.9)
    kept = us[inv == 0]  # the calls the kernel did not preempt
    p999_kept = np.percentile(kept, 99.9) if kept.size else float("nan")
    mean_kept = kept.mean() if kept.size else float("nan")
    return (f"{name:<40} {lat_ns.size:>8,} {rate:>9,.0f} {p50:>7.2f} {us.mean():>7.2f} {mean_kept:>7.2f} "
            f"{p99:>7.2f} {p999:>8.2f} "
            f"{us.max():>9.1f} {int((us > 1000).sum()):>5} {l999:>9.1f} {late_ns.max() / 1e3:>9.1f} "
            f"{int((inv > 0).sum()):>7} {int((vol > 0).sum()):>7} {int((flt > 0).sum()):>7} {p999_kept:>9.2f}  {extra}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--overload", default="shed", choices=("shed", "sample", "block"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="split each case's seconds into this many stretches, the cases taking turns "
                         "(all cases then see the same stretches of a machine whose speed varies)")
    ap.add_argument("--gil-slice", type=float, default=None,
                    help="seconds the worker holds the GIL before offering it (buffers.GIL_SLICE)")
    ap.add_argument("--full-speed", type=float, default=0.0, metavar="SECONDS",
                    help="then observe(), prometheus_client and the no-op call in turn, call by call, each at "
                         "--rate for SECONDS: their p50 in the windows the host ran this core at full speed "
                         "(by the no-op call) and in the others")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() after setup, as a latency-sensitive service does after its imports")
    args = ap.parse_args(argv)

    if args.gil_slice is not None:
        buffers.GIL_SLICE = args.gil_slice
    ref = _reference()
    rng = np.random.default_rng(1)
    pool = [{k: float(v) for k, v in zip(NAMES, rng.normal(size=20))} for _ in range(1024)]
    vals = [list(d.values()) for d in pool]
    print(f"# observe() tail: {args.rate:,.0f} calls/s for {args.seconds} s, 20 features; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load avg {os.getloadavg()[0]:.2f}, "
          f"switch interval {sys.getswitchinterval() * 1e3:.1f} ms, worker GIL slice "
          f"{getattr(buffers, 'GIL_SLICE', float('nan')) * 1e3:.1f} ms")
    print(f"{'case':<40} {'calls':>8} {'calls/s':>9} {'p50 us':>7} {'mean':>7} {'mean np':>7} {'p99 us':>7} "
          f"{'p99.9 us':>8} "
          f"{'max us':>9} {'>1ms':>5} {'late99.9':>9} {'late max':>9} {'preempt':>7} {'blocked':>7} {'faulted':>7} "
          f"{'p99.9 np':>9}")
    try:
        from prometheus_client import CollectorRegistry, Histogram
        hist = Histogram("lat_ms", "latency", registry=CollectorRegistry())
    except ImportError:  # pragma: no cover - optional baseline
        hist = None
    pauses = []
    t_gc = [0]

    def on_gc(phase, info):  # the longest collector pause of each case: a tail the GIL does not explain
        if phase == "start":
            t_gc[0] = time.perf_counter_ns()
        else:
            pauses.append((time.perf_counter_ns() - t_gc[0], info["generation"]))

    gc.callbacks.append(on_gc)

    def gcs() -> str:
        if not pauses:
            return "no gc"
        worst = max(pauses)
        out = f"gc: {len(pauses)} runs, longest {worst[0] / 1e3:,.0f} us (gen {worst[1]})"
        pauses.clear()
        return out

    for _ in range(args.repeat):
        kw = dict(features=NAMES, prediction="pred", latency="lat", window={"by": "rows", "size": 1_000_000},
                  rules=[])
        try:
            m = fastdrift.Monitor(ref, overload=args.overload, **kw)
        except TypeError:  # a fastdrift without `overload` (to measure the code before it, same script)
            m = fastdrift.Monitor(ref, **kw)
        obs = m.observe
        for i in range(3 * 4096):  # warm up: the kernels' first calls, the worker's first buffers
            obs(pool[i & 1023], 0.42, latency_ms=3.7)
        m.flush()
        warm = m.snapshot().rows
        gc.collect()
        if args.gc_freeze:
            gc.freeze()
        pauses.clear()
        cases = [(f"Monitor.observe ({args.overload})", lambda d: obs(d, 0.42, latency_ms=3.7),
                  lambda i: (pool[i & 1023],)),
                 ("baseline: dict of 20 floats", lambda v: dict(zip(NAMES, v)), lambda i: (vals[i & 1023],))]
        if hist is not None:
            cases.append(("baseline: prometheus Histogram.observe", hist.observe, lambda i: (3.7,)))
        cases.append(("baseline: no-op call (timer floor)", lambda: None, lambda i: ()))
        runs = {name: [] for name, _, _ in cases}
        gcs_of = {name: [] for name, _, _ in cases}
        for r in range(args.rounds):  # the cases in turn: each round's stretch of the machine for all
            for name, call, args_of in cases:
                pauses.clear()
                runs[name].append(paced(call, args_of, args.rate, args.seconds / args.rounds))
                gcs_of[name].extend(pauses)
        m.flush()
        counted = m.snapshot().rows - warm
        shed = getattr(m, "shed", 0)
        for name, _, _ in cases:
            res = joined(runs[name])
            pauses[:] = gcs_of[name]
            if name.startswith("Monitor"):
                assert counted + shed == res[0].size, (counted, shed, res[0].size)
                print(row(name, res, f"counted {counted:,}, shed {shed:,}; {gcs()}"))
            else:
                print(row(name, res, gcs() if "dict" in name else ""))
        if args.rounds > 1:
            def short(name):
                return name.split(': ')[-1].split(' (')[0]
            p50s = {name: [np.median(r[0]) / 1e3 for r in runs[name]] for name, _, _ in cases}
            print("# p50 of each round (us): " + "; ".join(
                f"{short(name)} {min(v):.2f}-{max(v):.2f}" for name, v in p50s.items()))
            # within a round the machine runs at one speed (mostly): the mean against the median there
            ratios = {name: [r[0].mean() / np.median(r[0]) for r in runs[name]] for name, _, _ in cases}
            print("# mean / p50 of each round: " + "; ".join(
                f"{short(name)} {min(v):.2f}-{max(v):.2f} (median {np.median(v):.2f})" for name, v in ratios.items()))
        if args.full_speed > 0:
            turn = [c for c in cases if "dict" not in c[0]]  # observe, prometheus_client, the no-op last
            times = paced_turns([(call, args_of) for _, call, args_of in turn], args.rate, args.full_speed)
            print(full_speed(times, [name.split(': ')[-1].split(' (')[0] for name, _, _ in turn], args.rate))
        getattr(m, "close", m.flush)()
        m = obs = cases = None  # the monitor collectable before the next repeat
        gc.collect()
        pauses.clear()
    return 0


def joined(parts):
    """One result of the rounds of a case: the calls of every round in order, the mean rate."""
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            float(np.mean([p[2] for p in parts])),
            tuple(np.concatenate([p[3][j] for p in parts]) for j in range(3)))


if __name__ == "__main__":
    sys.exit(main())
