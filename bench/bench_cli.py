"""Peak memory of ``fastdrift profile`` on 1M vs 10M rows: state must not grow with the data.

    python bench/bench_cli.py [--rows 1000000 10000000] [--dir DIR]

Writes the demo's synthetic traffic (10 columns: 7 numeric, 3 categorical) as Parquet
(row groups of 131,072 rows), then runs ``fastdrift profile`` (reference profile, exact
deciles) in a child process per size and reads that child's peak RSS with
``os.wait4`` (``resource.getrusage`` accounting of exactly that child).  For contrast,
the same for reading the file whole and calling ``fastdrift.profile(table)``.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

CHUNK = 1_000_000


def write(path: pathlib.Path, rows: int) -> None:
    import pyarrow.parquet as pq
    from fastdrift.demo import make_tables
    writer = None
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        t = make_tables(n, seed=done)[0]
        t = t.set_column(5, "country", t.column("country").cast("string"))  # one schema for every chunk
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema)
        writer.write_table(t, row_group_size=131_072)
        done += n
    writer.close()


def peak_rss(cmd) -> tuple:
    """(seconds, peak RSS in MiB) of a child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed with {status}")
    return dt, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--skip-whole", action="store_true", help="skip the read-it-whole contrast")
    args = ap.parse_args()
    d = pathlib.Path(args.dir or tempfile.mkdtemp(prefix="fastdrift-bench-cli-"))
    exe = [sys.executable, "-m", "fastdrift.cli"]
    print(f"{'rows':>12} {'file MB':>8} {'profile s':>10} {'rows/s':>8} {'peak RSS MiB':>13}"
          f" {'whole-table s':>14} {'whole-table RSS MiB':>20}")
    for rows in args.rows:
        f = d / f"traffic-{rows}.parquet"
        if not f.exists():
            write(f, rows)
        dt, rss = peak_rss(exe + ["profile", str(f), "-q", "-o", str(d / "out.fdp")])
        line = f"{rows:>12,} {f.stat().st_size / 1e6:>8.0f} {dt:>10.2f} {rows / dt / 1e6:>7.2f}M {rss:>13.0f}"
        if not args.skip_whole:
            code = ("import sys, pyarrow.parquet as pq, fastdrift; "
                    "fastdrift.profile(pq.read_table(sys.argv[1]))")
            wdt, wrss = peak_rss([sys.executable, "-c", code, str(f)])
            line += f" {wdt:>14.2f} {wrss:>20.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
