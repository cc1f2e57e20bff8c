"""`fastdrift perf compare` of 500 benchmarks x 10,000 timings a side (target <= 1 s).

    python bench/bench_perf_compare.py

Times the comparison (every statistic of every benchmark, the verdicts and the table) of two
runs already read, and the whole command on two Parquet files of (benchmark, value, unit)
rows (reading included), and the comparison against a baseline of 5 runs; prints the best of three.  Also collected by pytest-benchmark
(``python bench/run.py -k perf_compare``).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fastdrift.cli import main as cli_main
from fastdrift.perf import compare_runs, format_table, read_run, run_from_timings

BENCHMARKS, TIMINGS = 500, 10_000


def _timings(seed: int, slow: float = 1.0):
    scale = np.random.default_rng(0).uniform(1e-5, 1e-2, BENCHMARKS)  # the same benchmarks both sides
    rng = np.random.default_rng(seed)
    return {f"bench_{i:03d}": scale[i] * (slow if i % 50 == 0 else 1.0) * rng.lognormal(0, 0.1, TIMINGS)
            for i in range(BENCHMARKS)}


def _parquet(path, timings):
    names = np.repeat(np.array(list(timings)), TIMINGS)
    pq.write_table(pa.table({"benchmark": names, "value": np.concatenate(list(timings.values())),
                             "unit": pa.array(["s"] * names.size).dictionary_encode()}), path)


def _best(fn, repeat=3):
    """Best wall time of ``repeat`` calls, and the CPU time of that call (this process, every
    thread): on a shared machine the wall time also counts the time other processes ran."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def test_perf_compare_500x10000(benchmark):
    base, cur = run_from_timings(_timings(1)), run_from_timings(_timings(2, slow=1.2))
    benchmark.extra_info.update(n=BENCHMARKS * TIMINGS * 2)
    c = benchmark.pedantic(lambda: compare_runs(base, cur), rounds=3, iterations=1)
    assert len(c.rows) == BENCHMARKS and len(c.regressed) >= BENCHMARKS // 50


def main() -> int:
    base, cur = _timings(1), _timings(2, slow=1.2)
    t_cmp = _best(lambda: format_table(compare_runs(run_from_timings(base), run_from_timings(cur))))
    c = compare_runs(run_from_timings(base), run_from_timings(cur))
    bases5 = [run_from_timings(_timings(s)) for s in (3, 4, 5, 6, 7)]  # a baseline of 5 runs
    t_many = _best(lambda: format_table(compare_runs(bases5, run_from_timings(cur))))
    c5 = compare_runs(bases5, run_from_timings(cur))
    with tempfile.TemporaryDirectory() as tmp:
        pb, pc_ = os.path.join(tmp, "b.parquet"), os.path.join(tmp, "c.parquet")
        _parquet(pb, base)
        _parquet(pc_, cur)
        t_read = _best(lambda: (read_run(pb), read_run(pc_)))
        devnull = open(os.devnull, "w")
        old, sys.stdout = sys.stdout, devnull
        try:
            t_cli = _best(lambda: cli_main(["perf", "compare", pb, pc_]))
        finally:
            sys.stdout = old
            devnull.close()
    print(f"{BENCHMARKS} benchmarks x {TIMINGS:,} timings a side, {os.cpu_count()} cores")
    print(f"(load average {os.getloadavg()[0]:.1f}); wall s / CPU s of this process")
    print(f"  timings in memory -> verdicts + table:  {t_cmp[0]:.3f} / {t_cmp[1]:.3f}  (target <= 1 s)")
    print(f"  5 baseline runs -> verdicts + table:    {t_many[0]:.3f} / {t_many[1]:.3f}  "
          f"({len(c5.regressed)} regressed)")
    print(f"  reading the two Parquet files:          {t_read[0]:.3f} / {t_read[1]:.3f}")
    print(f"  `fastdrift perf compare` b.parquet c.parquet: {t_cli[0]:.3f} / {t_cli[1]:.3f}")
    print(f"  verdicts: {len(c.regressed)} regressed of {len(c.rows)} (10 were slowed 20%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
