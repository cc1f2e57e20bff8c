"""``fastdrift profile`` of a 10M-row Parquet dataset (20 float64 + 5 string columns) against the read.

    python bench/bench_scan.py [--rows 10000000] [--repeats 3] [--dir DIR] [--workers N]
                               [--compare-with PYTHON] [--breakdown]

Targets: a reference profile (exact deciles, t-digests) within 1.5x the time pyarrow alone
takes to read the same files, and within 1.1x with ``--no-quantiles``; both measured in the
same run, warm page cache.  Writes the dataset once (10 files, row groups of 131,072 rows; strings
drawn from vocabularies of 50..250 ``category-NNNN`` values, so Parquet dictionary-encodes
them as writers of such logs do), then per repeat, in fresh child processes, interleaved:

* ``read``: every batch of ``pyarrow.dataset.dataset(DIR).to_batches()`` (every column decoded,
  every core, batches dropped as they come as a scan does), the second of two reads in one
  process: the floor the ratios use.  The first read of a process (also printed) is 2-4x
  slower here, page-faulting pyarrow's ~1.8 GB of readahead buffers into the memory pool;
  ``to_table()`` would add more for 2 GB that nothing needs;
* ``read, scan's pool``: the same read decoding into the memory pool the scan uses
  (pyarrow's jemalloc, freed pages kept: ``fastdrift.dataset.scan_pool``), for the ratios of
  fastdrift's own work;
* ``reference``: ``fastdrift profile DIR -o ref.fdp`` (exact deciles, t-digests);
* ``no-quantiles``: the same with ``--no-quantiles``;
* ``current``: ``fastdrift profile DIR --reference ref.fdp``.

Each child times itself around the work, twice (interpreter and import start-up excluded,
``pyarrow.dataset`` imported before the timer on both sides, so the ratios compare work with
work): the second run is compared with the second read (the floor), the first run of the
process with the first read.  ``--compare-with PYTHON`` runs the three profiles with a
second interpreter too (another checkout's venv), in the same rounds, labelled "before"
and "after".
Prints the machine's load average before and after, the medians and the ratios to the read, and the
same over the runs the host gave the core its full speed (the benchmark gate's compute probe, a
fixed interpreter loop, taken in each child before and after each timed run).

``--breakdown`` prints, instead, where each profile's CPU time goes: one child process per
kind runs the profile twice and times the second run's stages on the thread CPU clock (robust
to other work on the machine): per sketch family in the scan's workers (the kernel call and
its Python wrapper), the rest of the workers' per-batch Python, the in-order merges on the
main thread, and what remains of the process CPU: pyarrow's read and decode (on its own
threads), the pilot, planning, the deciles from the grid, writing.  Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

FILES = 10
#: A run is at the host's full speed when the compute probe before and after it is within this
#: factor of the fastest probe of the benchmark (bench/bench_kernels.py: the same rule).
FULL_SPEED = 1.3
ROW_GROUP = 131_072

# The benchmark gate's compute probe (fastdrift.perf.probe: the same loop, not imported into the
# read's process), taken before and after each timed run: the speed the host gave the core then.
PROBE = """
def probe():
    c, s = time.thread_time(), 0
    for i in range(20_000):
        s += i ^ (s & 7)
    return time.thread_time() - c
"""

READ = """
import sys, time, pyarrow as pa, pyarrow.dataset as ds
""" + PROBE + """
pool = None
if sys.argv[2:] == ["scan-pool"]:  # the pool fastdrift's scan decodes into (fastdrift.dataset.scan_pool)
    pa.jemalloc_set_decay_ms(-1)
    pool = pa.jemalloc_memory_pool()
ts = []
for _ in range(2):  # the first read also page-faults in pyarrow's memory pool (~1.8 GB of readahead)
    p = probe()
    t, c = time.perf_counter(), time.process_time()
    n = sum(b.num_rows for b in ds.dataset(sys.argv[1], format="parquet").to_batches(memory_pool=pool))
    ts.append((time.perf_counter() - t, time.process_time() - c, max(p, probe())))
    if pool is not None:
        pool.release_unused()  # as the scan does after each pass
print(*ts[0], *ts[1])
"""

PROFILE = """
import sys, time
import pyarrow.dataset  # imported before the timer, as the read imports it
from fastdrift import cli, scan
""" + PROBE + """
ts = []
for _ in range(2):  # like the read: the first run of a process, and the second
    p = probe()
    t, c = time.perf_counter(), time.process_time()
    rc = cli.main(sys.argv[1:])
    ts.append((time.perf_counter() - t, time.process_time() - c, max(p, probe())))
    if rc:
        sys.exit(rc)
print(*ts[0], *ts[1])
"""


BREAKDOWN = """
import collections, sys, threading, time
import pyarrow.dataset
from fastdrift import cli, scan
from fastdrift.sketches import Categorical, Histogram, Moments, TDigest
from fastdrift.sketches.quantiles import StreamingQuantiles
from fastdrift.sketches.reference import Job

T = collections.defaultdict(float)
lock = threading.Lock()

def timed(cls, name, key):
    f = getattr(cls, name)
    def g(*a, **k):
        c = time.thread_time()
        try:
            return f(*a, **k)
        finally:
            d = time.thread_time() - c
            with lock:
                T[key] += d
    setattr(cls, name, g)

for cls, fam in ((TDigest, "t-digest"), (Moments, "moments"), (Categorical, "categories"), (Histogram, "histogram")):
    timed(cls, "update", "workers: " + fam)
    timed(cls, "merge", "main: merge " + fam)
timed(Moments, "update_counting", "workers: moments + deciles' grid and held values")
timed(StreamingQuantiles, "merge", "main: merge deciles' grid and held values")
run = scan.FileScan.run

def traced(self, label, columns, job):
    def count(st, b):
        c = time.thread_time()
        job.count(st, b)
        with lock:
            T["workers: count, all"] += time.thread_time() - c
    def merge(a, st):
        c = time.thread_time()
        out = job.merge(a, st)
        T["main: merge, all"] += time.thread_time() - c
        return out
    c = time.thread_time()
    out = run(self, label, columns, Job(job.make, count, merge, job.encode, job.decode))
    T["main: in the scan, all"] += time.thread_time() - c
    return out

scan.FileScan.run = traced
import resource
for _ in range(2):
    T.clear()
    t, c, f = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rc = cli.main(sys.argv[1:])
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f
    if rc:
        sys.exit(rc)
parts = {k: v for k, v in T.items() if not k.endswith(", all")}
work = sum(v for k, v in parts.items() if k.startswith("workers: "))
main = sum(v for k, v in parts.items() if k.startswith("main: merge "))
parts["workers: per-batch Python outside the sketches"] = T["workers: count, all"] - work
parts["main: merge Python, waiting, submitting"] = T["main: in the scan, all"] - main
parts["rest: pyarrow read and decode, pilot, planning, deciles, writing"] = \
    cpu - T["workers: count, all"] - T["main: in the scan, all"]
src = scan.open_data([sys.argv[2]])
c = time.process_time()
scan.FileScan(src, workers=int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else None).run(
    "read", src.read_schema.names, Job(lambda i: None, lambda st, b: None, lambda a, st: a))
read = time.process_time() - c
print(f"wall {wall:.2f} s, cpu {cpu:.2f} s, {faults} page faults; "
      f"the scan's read alone (every column, nothing counted): cpu {read:.2f} s")
for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
    if v > 0.0005:
        print(f"  {k:<68} {v:6.2f} s  {v / cpu:6.1%}")
"""


def write(d: pathlib.Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    d.mkdir(parents=True, exist_ok=True)
    vocab = np.array([f"category-{i:04d}" for i in range(500)])
    per = -(-rows // FILES)
    for k in range(FILES):
        n = min(per, rows - k * per)
        rng = np.random.default_rng(k)
        cols = {f"f{i}": rng.normal(i, 1 + i, n) for i in range(20)}
        for i in range(5):
            cols[f"s{i}"] = pa.array(vocab[rng.integers(0, 50 * (i + 1), n)])
        pq.write_table(pa.table(cols), d / f"part-{k:02d}.parquet", row_group_size=ROW_GROUP)


def timed(cmd) -> list:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [float(t) for t in out.strip().splitlines()[-1].split()]


def _same_bins(a_path, b_path) -> bool:
    import numpy as np
    from fastdrift.sketches import Profile
    a, b = (Profile.from_bytes(pathlib.Path(p).read_bytes()) for p in (a_path, b_path))
    if list(a.columns) != list(b.columns) or a.rows != b.rows:
        return False
    for n, x in a.columns.items():
        y = b.columns[n]
        if x.kind == "numeric":
            if not (np.array_equal(x.histogram.edges, y.histogram.edges)
                    and np.array_equal(x.histogram.counts, y.histogram.counts)
                    and (x.moments.n, x.moments.min, x.moments.max) == (y.moments.n, y.moments.min, y.moments.max)):
                return False
        elif not (x.categorical == y.categorical and x.categorical.categories == y.categorical.categories):
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="dataset directory (written when missing)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--compare-with", default=None, metavar="PYTHON",
                    help="a second interpreter (e.g. the baseline checkout's venv) timed in the same rounds")
    ap.add_argument("--only", nargs="+", default=["reference", "no-quantiles", "current"])
    ap.add_argument("--breakdown", action="store_true",
                    help="where each profile's CPU time goes (thread CPU clock) instead of the ratios")
    args = ap.parse_args()
    base = pathlib.Path(args.dir or os.path.join(tempfile.gettempdir(), "fastdrift-bench-scan"))
    data = base / f"rows-{args.rows}"
    if not (data / f"part-{FILES - 1:02d}.parquet").exists():
        write(data, args.rows)
    pythons = {"": sys.executable}
    if args.compare_with:
        pythons = {"before ": args.compare_with, "after ": sys.executable}
    w = ["--workers", str(args.workers)] if args.workers else []
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    if args.breakdown:
        ref = base / "ref-this.fdp"
        kinds = {"reference": ["-o", str(ref)], "no-quantiles": ["--no-quantiles", "-o", str(base / "nq.fdp")],
                 "current": ["--reference", str(ref), "-o", str(base / "cur.fdp")]}
        for kind in ("reference", "no-quantiles", "current"):
            if kind not in args.only and not (kind == "reference" and not ref.exists()):
                continue
            out = subprocess.run([sys.executable, "-c", BREAKDOWN, "profile", str(data), "-q"] + kinds[kind] + w,
                                 check=True, capture_output=True, text=True).stdout
            print(f"{kind} ({args.rows:,} rows x 25 columns, the second run of a process): {out.strip()}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    times = {}

    cpu = {}
    speed = {}

    def run(key, cmd):
        w1, c1, p1, w2, c2, p2 = timed(cmd)
        times.setdefault(key + ", fresh process", []).append(w1)
        cpu.setdefault(key + ", fresh process", []).append(c1)
        speed.setdefault(key + ", fresh process", []).append(p1)
        times.setdefault(key, []).append(w2)
        cpu.setdefault(key, []).append(c2)
        speed.setdefault(key, []).append(p2)

    for _ in range(args.repeats):
        run("read", [sys.executable, "-c", READ, str(data)])
        run("read, scan's pool", [sys.executable, "-c", READ, str(data), "scan-pool"])
        for tag, py in pythons.items():
            ref = base / f"ref-{tag.strip() or 'this'}.fdp"
            if "reference" in args.only or not ref.exists():
                run(tag + "reference", [py, "-c", PROFILE, "profile", str(data), "-q", "-o", str(ref)] + w)
            if "no-quantiles" in args.only:
                run(tag + "no-quantiles", [py, "-c", PROFILE, "profile", str(data), "-q", "--no-quantiles",
                                           "-o", str(base / "nq.fdp")] + w)
            if "current" in args.only:
                run(tag + "current", [py, "-c", PROFILE, "profile", str(data), "-q", "--reference", str(ref),
                                      "-o", str(base / "cur.fdp")] + w)
    if args.compare_with and "reference" in args.only:
        same = _same_bins(base / "ref-before.fdp", base / "ref-after.fdp")
        print(f"before and after reference profiles: {'identical' if same else 'DIFFERENT'} "
              "bins, bin counts, categories, min/max/n")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.rows:,} rows x 25 columns, {FILES} Parquet files, {args.repeats} repeats; medians "
          f"(and every run) of wall time, and of CPU time (all threads: robust to other work on the machine);\n"
          f"ratios to the read of the same kind: the second run of a process to the second read (the floor), "
          f"a fresh process's first run to the first read")
    print("ratios: to the read, and [to the read into the scan's pool]")
    for fresh in (False, True):
        sfx = ", fresh process" if fresh else ""
        rk, pk = "read" + sfx, "read, scan's pool" + sfx
        read, read_cpu = statistics.median(times[rk]), statistics.median(cpu[rk])
        pread, pread_cpu = statistics.median(times[pk]), statistics.median(cpu[pk])
        for key, ts in times.items():
            if key.endswith(", fresh process") != fresh:
                continue
            med, cmed = statistics.median(ts), statistics.median(cpu[key])
            ratio = "" if key == rk else f"{med / read:5.2f}x [{med / pread:5.2f}x]"
            cratio = "" if key == rk else f"{cmed / read_cpu:5.2f}x [{cmed / pread_cpu:5.2f}x]"
            print(f"{key:>44} wall {med:6.2f} s {ratio:>16}   cpu {cmed:6.2f} s {cratio:>16}   "
                  f"[{' '.join(f'{t:.2f}' for t in ts)}] [{' '.join(f'{t:.2f}' for t in cpu[key])}]")
    # The same ratios over the runs the host gave the core its full speed (a process's second run):
    # on a shared core a compute-bound run slows when another tenant takes the core's other thread,
    # the probe shows it (bench/bench_kernels.py: the same rule).
    floor = min(min(v) for v in speed.values())
    full = {k: [i for i, p in enumerate(v) if p <= FULL_SPEED * floor]
            for k, v in speed.items() if not k.endswith(", fresh process")}
    print(f"at full speed (the compute probe before and after the run within {FULL_SPEED}x its fastest, "
          f"{floor * 1e3:.2f} ms), a process's second run:")
    base = {k: (statistics.median([times[k][i] for i in full[k]]), statistics.median([cpu[k][i] for i in full[k]]))
            for k in ("read", "read, scan's pool") if full.get(k)}
    for key, ks in full.items():
        if not ks:
            print(f"{key:>44} none of {len(speed[key])} runs")
            continue
        med, cmed = statistics.median([times[key][i] for i in ks]), statistics.median([cpu[key][i] for i in ks])
        ratio = "".join(f"{med / base[k][0]:5.2f}x " if k in base else "   -  " for k in ("read", "read, scan's pool"))
        cratio = "".join(f"{cmed / base[k][1]:5.2f}x " if k in base else "   -  " for k in ("read", "read, scan's pool"))
        print(f"{key:>44} wall {med:6.2f} s  {ratio}  cpu {cmed:6.2f} s  {cratio}  {len(ks)} of {len(speed[key])} runs")


if __name__ == "__main__":
    main()
