"""Segments' cost: ``fastdrift.profile(table, segment_by=[...])`` with 20 segments against the
unsegmented profile of the same table, same run, interleaved rounds (target: ratio <= 1.5).

Also the bytes of one segment's sketch set (its ``Profile.to_bytes()``) at default settings.
``--breakdown``: process CPU per profile spent in each step the segments add or change (the
sketch calls timed by wrapping them in this process; an outer step includes no inner one).
``--monitor``: ``Monitor.update`` counting only (row windows larger than the batch, so none closes)
of bench/bench_monitor.py's 1M-row batch, unsegmented and with its 20 segments, interleaved.

    python bench/bench_segments.py [--rows 1000000] [--rounds 5] [--segments 20] [--current] [--breakdown]
    python bench/bench_segments.py --monitor [--rounds 5]
"""
import argparse
import os
import statistics
import time

import numpy as np
import pyarrow as pa

import fastdrift


def table(rows: int, segments: int, seed: int = 0) -> pa.Table:
    """16 float64 + 4 string feature columns and a segment column of ``segments`` values."""
    rng = np.random.default_rng(seed)
    cols = {f"f{i}": rng.normal(i, 1 + i, rows) for i in range(16)}
    vocab = np.array([f"category-{i:04d}" for i in range(500)])
    for i in range(4):
        cols[f"s{i}"] = pa.array(vocab[rng.integers(0, 50 * (i + 1), rows)])
    cols["country"] = pa.array(np.array([f"c{i:02d}" for i in range(segments)])[rng.integers(0, segments, rows)])
    return pa.table(cols)


def timed(fn):
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the
    steadier of the two (other jobs take the cores, not this process's work)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _summary(what, plain, seg):
    out = []
    for i, unit in ((0, "wall"), (1, "CPU")):
        p, s = [x[i] for x in plain], [x[i] for x in seg]
        r = [b / a for a, b in zip(p, s)]
        out.append(f"{what} {unit}: unsegmented median {statistics.median(p):.3f}s, segmented "
                   f"{statistics.median(s):.3f}s, ratio per round {[round(x, 2) for x in r]}, "
                   f"median {statistics.median(r):.2f}")
    print("\n".join(out))


def breakdown(t, feats, rounds: int, current: bool) -> None:
    """Process CPU per profile in each wrapped step, segmented and unsegmented."""
    import collections
    import functools
    import importlib

    from fastdrift.adapters.segments import Segmenter
    from fastdrift.sketches import categorical, histogram, moments, segmented, tdigest
    reference = importlib.import_module("fastdrift.sketches.reference")
    profile = importlib.import_module("fastdrift.sketches.profile")
    acc, depth, undo = collections.Counter(), [0], []

    def wrap(owner, name, label):
        f = getattr(owner, name)

        @functools.wraps(f)
        def timed_step(*a, **k):
            if depth[0]:
                return f(*a, **k)
            depth[0] += 1
            c0 = time.process_time()
            try:
                return f(*a, **k)
            finally:
                acc[label] += time.process_time() - c0
                depth[0] -= 1
        undo.append((owner, name, f))
        setattr(owner, name, timed_step)

    for owner, name, label in [
            (Segmenter, "assign", "segment keys"), (segmented.SegmentSplit, "grouped", "gather by segment"),
            (segmented.SegmentSplit, "category_counts", "categories of the batch"),
            (categorical.Categorical, "update_first_counts", "categories per segment"),
            (categorical.Categorical, "update", "categories"),
            (tdigest.TDigest, "update_parts", "t-digests of segments"), (tdigest.TDigest, "update", "t-digests"),
            (tdigest.TDigest, "flush_all", "t-digest flushes"),
            (histogram.Histogram, "update_parts", "histograms of segments"),
            (histogram.Histogram, "update", "histograms"),
            (moments.Moments, "update_parts", "moments of segments"), (moments.Moments, "update", "moments"),
            (reference, "grid_counts", "decile grid"), (reference, "select_counts", "decile selection"),
            (reference, "_merged", "whole from segments"), (profile, "_merge_whole_many", "whole from segments")]:
        wrap(owner, name, label)
    try:
        runs = [("reference", lambda: fastdrift.profile(feats), lambda: fastdrift.profile(t, segment_by=["country"]))]
        if current:
            ref, ref_plain = fastdrift.profile(t, segment_by=["country"]), fastdrift.profile(feats)
            runs.append(("current", lambda: fastdrift.profile(feats, reference=ref_plain),
                         lambda: fastdrift.profile(t, reference=ref)))
        for what, plain, seg in runs:
            for label, fn in (("unsegmented", plain), ("segmented", seg)):
                acc.clear()
                c0 = time.process_time()
                for _ in range(rounds):
                    fn()
                total = (time.process_time() - c0) / rounds
                steps = ", ".join(f"{k} {v / rounds * 1e3:.1f}" for k, v in acc.most_common())
                print(f"{what} {label}: {total * 1e3:.1f} ms CPU per profile; in ms: {steps}")
    finally:
        for owner, name, f in reversed(undo):
            setattr(owner, name, f)


def monitor_counting(rounds: int) -> None:
    """Process CPU of one ``Monitor.update`` of 1M rows, unsegmented and by 20 segments, no window closing."""
    import bench_monitor as bm  # this directory: its table and monitor settings

    ref = bm._table(200_000)
    batch = bm._table(bm.N_UPDATE, seed=2, shift=0.1).to_batches(max_chunksize=bm.N_UPDATE)[0]
    spec = {"by": "rows", "size": 2 * bm.N_UPDATE}
    plain, seg = [], []
    for i in range(rounds):
        ma, mb = bm._monitor(ref, spec), bm._monitor(ref, spec, segment_by=["seg"])  # made outside the timing
        a = lambda: plain.append(timed(lambda: ma.update(batch)))
        b = lambda: seg.append(timed(lambda: mb.update(batch)))
        for f in ((a, b) if i % 2 == 0 else (b, a)):
            f()
    _summary("monitor update, counting only", plain, seg)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--segments", type=int, default=20)
    ap.add_argument("--current", action="store_true", help="also time current profiles (reference=)")
    ap.add_argument("--breakdown", action="store_true", help="CPU per step instead of the ratios")
    ap.add_argument("--monitor", action="store_true", help="Monitor.update counting by segment instead")
    args = ap.parse_args(argv)
    if args.monitor:
        print(f"load {os.getloadavg()}")
        monitor_counting(args.rounds)
        print(f"load after: {os.getloadavg()}")
        return
    t = table(args.rows, args.segments)
    feats = t.drop(["country"])
    print(f"{args.rows:,} rows x {feats.num_columns} columns, {args.segments} segments; load {os.getloadavg()}")
    if args.breakdown:
        fastdrift.profile(t, segment_by=["country"])  # warm: kernels loaded, spare buffers made
        breakdown(t, feats, args.rounds, args.current)
        print(f"load after: {os.getloadavg()}")
        return
    fastdrift.profile(feats), fastdrift.profile(t, segment_by=["country"])  # warm-up: kernels, allocator, spares
    plain, seg = [], []
    for i in range(args.rounds):  # interleaved, order alternating: the machine's drift hits both alike
        a = lambda: plain.append(timed(lambda: fastdrift.profile(feats)))
        b = lambda: seg.append(timed(lambda: fastdrift.profile(t, segment_by=["country"])))
        for f in ((a, b) if i % 2 == 0 else (b, a)):
            f()
    _summary("reference", plain, seg)
    if args.current:
        ref = fastdrift.profile(t, segment_by=["country"])
        ref_plain = fastdrift.profile(feats)
        cp, cs = [], []
        for i in range(args.rounds):
            a = lambda: cp.append(timed(lambda: fastdrift.profile(feats, reference=ref_plain)))
            b = lambda: cs.append(timed(lambda: fastdrift.profile(t, reference=ref)))
            for f in ((a, b) if i % 2 == 0 else (b, a)):
                f()
        _summary("current", cp, cs)
    prof = fastdrift.profile(t, segment_by=["country"])
    one = next(iter(prof.segments.values()))
    print(f"bytes of one segment's sketch set: {len(one.to_bytes()):,} (whole: {len(prof.to_bytes()):,} with "
          f"{len(prof.segments)} segments; unsegmented profile {len(fastdrift.profile(feats).to_bytes()):,})")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
