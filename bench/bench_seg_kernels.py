"""The segmented kernels, numba twin against C: ``fd_seg_positions``, ``fd_seg_scatter_to``,
``fd_seg_short_keys`` and ``fd_seg_cat_count`` on 1M rows in 20 segments (strings of 2-10 bytes
for the categorical count, segment values of 2-8 bytes for the short keys), same process, thread
CPU time, warm (numba compiled and loaded before the first timed call), the backends interleaved.
Prints each kernel's values/s per backend and the numba/C ratio (median of the repeats; target:
<= 2).

    python bench/bench_seg_kernels.py [--rows 1000000] [--segments 20] [--repeats 7]
"""
import argparse
import statistics
import time

import numpy as np
import pyarrow as pa

from fastdrift.adapters.arrow import iter_columns
from fastdrift.kernels import seg
from fastdrift.kernels.cat import CatTable

BACKENDS = ("c", "numba")


def _strings(rng, rows, n_keys, lo, hi):
    lens = rng.integers(lo, hi + 1, n_keys)
    vocab = np.array(["".join(chr(97 + int(c)) for c in rng.integers(0, 26, k)) for k in lens], dtype=object)
    vocab = np.unique(vocab)
    return pa.array(vocab[rng.integers(0, vocab.size, rows)], pa.string())


def cases(rows: int, n_seg: int, seed: int = 0):
    """name -> {backend: (setup, run)}: ``setup()`` builds fresh outputs outside the clock."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_seg, rows).astype(np.int32)
    starts = np.zeros(n_seg, np.int64)
    starts[1:] = np.cumsum(np.bincount(codes, minlength=n_seg))[:-1]
    x = next(iter_columns(rng.normal(size=rows)))
    xn = next(iter_columns(pa.array(rng.normal(size=rows), mask=rng.random(rows) < 0.1)))
    dest = seg.positions(codes, n_seg, starts.copy(), rows, backend="c")
    seg_col = [next(iter_columns(_strings(rng, rows, n_seg, 2, 8)))]
    cat_col = [next(iter_columns(_strings(rng, rows, 500, 2, 10)))]
    out = {}
    for b in BACKENDS:
        out.setdefault("positions", {})[b] = (
            lambda: starts.copy(), lambda pos, b=b: seg.positions(codes, n_seg, pos, rows, backend=b))
        out.setdefault("scatter_to f64", {})[b] = (
            lambda: np.empty(rows), lambda o, b=b: seg.scatter_to(x, dest, o, None, backend=b))
        out.setdefault("scatter_to f64 10% null", {})[b] = (
            lambda: (np.empty(rows), np.zeros((rows + 7) // 8, np.uint8)),
            lambda o, b=b: seg.scatter_to(xn, dest, o[0], o[1], backend=b))
        out.setdefault("short_keys", {})[b] = (
            lambda: None, lambda _, b=b: seg.short_keys(seg_col, backend=b))
        out.setdefault("seg_cat_count str", {})[b] = (
            lambda: CatTable("str", max_ids=100_000),
            lambda t, b=b: t.segment_counts(cat_col, codes, n_seg, 1 << 40, backend=b))
    return out


def run(rows: int, n_seg: int, repeats: int):
    for name, per in cases(rows, n_seg).items():
        ref = {}
        for b, (setup, fn) in per.items():  # warm-up: numba compile or cache load, first touch
            ref[b] = fn(setup())
        secs = {b: [] for b in per}
        for _ in range(repeats):
            for b, (setup, fn) in per.items():
                arg = setup()
                c0 = time.thread_time()
                fn(arg)
                secs[b].append(time.thread_time() - c0)
        ratios = [n / c for c, n in zip(secs["c"], secs["numba"])]
        cols = ", ".join(f"{b} {rows / statistics.median(s) / 1e6:.0f}M values/s "
                         f"({statistics.median(s) * 1e3:.1f} ms)" for b, s in secs.items())
        print(f"{name:24s} {cols}; numba/C median {statistics.median(ratios):.2f} "
              f"(per repeat {', '.join(f'{r:.2f}' for r in ratios)})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--segments", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    run(a.rows, a.segments, a.repeats)


if __name__ == "__main__":
    main()
