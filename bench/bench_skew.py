"""``fastdrift.skew`` over two N-row files against a pyarrow join (``Table.join``) of the same key column.

    python bench/bench_skew.py [--rows 10000000] [--string-keys] [--spill-budget 256M] [--all-columns] [--dir DIR]

``--dir DIR`` keeps the files, and a later run with the same ``--rows`` and key type reuses them.

Writes SERVING and OFFLINE as Parquet (row groups of 131,072 rows) in a temporary directory: a key
(``request_id``, int64 or with ``--string-keys`` a 12-character string), three float64 features,
an int64 and a low-cardinality string (dictionary-encoded by the writer).  OFFLINE holds the keys
in another order, 1% of them absent and 1% replaced by keys SERVING lacks, and 1% of each feature's
values changed.  Then, in the same process, one after the other:

- ``pyarrow join``: both files' key column read (``pq.read_table(columns=[key])``) and
  ``Table.join`` on it (inner);
- with ``--all-columns``, ``pyarrow join (all columns)``: every column read and carried through the join;
- ``fastdrift.skew``: the whole report, read included (default memory budget: in memory);
- with ``--spill-budget``: ``fastdrift skew --memory-budget`` in a child process (the spill path),
  with its peak RSS (the child's ``VmHWM``).

Prints wall seconds, rows/s (of both files) and the ratio to the key-column join, and the CPU
seconds of all threads with their ratio (on a shared machine the wall clock also measures the
neighbours).  Not part of the
test suite (no ``test_`` functions: ``bench/run.py`` collects none).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 1_000_000
KEY = "request_id"
#: `fastdrift ARGS...` in a child, which then writes its /proc/self/status (VmHWM: its peak RSS) to a file
CHILD = ("import sys\nfrom fastdrift.cli import main\nrc = main(sys.argv[2:])\n"
         "open(sys.argv[1], 'w').write(open('/proc/self/status').read())\nsys.exit(rc)")


def _keys(ids: np.ndarray, string_keys: bool):
    import pyarrow.compute as pc

    if not string_keys:
        return pa.array(ids, pa.int64())
    return pc.utf8_lpad(pa.array(ids).cast(pa.string()), 12, "0")


def write(d: pathlib.Path, rows: int, string_keys: bool, seed: int = 1):
    rng = np.random.default_rng(seed)
    serving_ids = rng.permutation(rows).astype(np.int64)
    offline_ids = rng.permutation(rows).astype(np.int64)
    gone = rng.random(rows) < 0.01
    offline_ids[gone] = rows + np.arange(gone.sum())          # keys SERVING never saw
    # the features are a function of the key, so both sides agree unless changed
    paths = []
    for name, ids, change in (("serving", serving_ids, False), ("offline", offline_ids, True)):
        path = d / f"{name}.parquet"
        writer = None
        for lo in range(0, rows, CHUNK):
            k = ids[lo: lo + CHUNK]
            x = np.sin(k * 0.001) * 100
            cols = {KEY: _keys(k, string_keys), "x1": x, "x2": np.cos(k * 0.01), "x3": (k % 977) / 7.0,
                    "n": (k * 31) % 1000, "country": np.array(["DE", "FR", "US", "JP", "BR"])[k % 5]}
            if change:
                for c in ("x1", "x2", "x3", "n"):
                    v = np.array(cols[c], copy=True)
                    m = rng.random(len(k)) < 0.01
                    v[m] = v[m] + 1
                    cols[c] = v
                cty = cols["country"].copy()
                cty[rng.random(len(k)) < 0.01] = "XX"
                cols["country"] = cty
            t = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(path, t.schema)
            writer.write_table(t, row_group_size=131_072)
        writer.close()
        paths.append(path)
    return paths


def _reusable(ps, po, rows: int, string_keys: bool) -> bool:
    """``--dir`` already holds the files of these settings (written by an earlier run)."""
    try:
        schemas = [pq.read_schema(p) for p in (ps, po)]
        return pq.ParquetFile(ps).metadata.num_rows == rows and all(
            pa.types.is_string(sc.field(KEY).type) == string_keys for sc in schemas)
    except (OSError, KeyError, pa.ArrowException):
        return False


def _budget(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--string-keys", action="store_true")
    ap.add_argument("--spill-budget", default=None, help="also run with this memory budget (e.g. 256M)")
    ap.add_argument("--all-columns", action="store_true", help="also time the join carrying every column")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    import fastdrift
    d = pathlib.Path(args.dir or tempfile.mkdtemp(prefix="fastdrift-bench-skew-"))
    try:
        t0 = time.perf_counter()
        ps, po = d / "serving.parquet", d / "offline.parquet"
        if not (args.dir and _reusable(ps, po, args.rows, args.string_keys)):
            ps, po = write(d, args.rows, args.string_keys)
        mb = (os.path.getsize(ps) + os.path.getsize(po)) / 1e6
        print(f"2 x {args.rows:,} rows ({mb:.0f} MB Parquet, written or found in {time.perf_counter() - t0:.1f}s); "
              f"keys {'string' if args.string_keys else 'int64'}; cores {len(os.sched_getaffinity(0))}")
        rows = 2 * args.rows

        # warm-up: the first call imports the scan and loads pyarrow's compute kernels (not per-row cost)
        w = d / "warm"
        w.mkdir(exist_ok=True)
        wt = pa.table({KEY: pa.array([1, 2, 3]), "x": [1.0, 2.0, 3.0], "c": ["a", "b", "c"]})
        pq.write_table(wt, w / "s.parquet")
        pq.write_table(wt, w / "o.parquet")
        fastdrift.skew(w / "s.parquet", w / "o.parquet", key=KEY)
        fastdrift.skew(w / "s.parquet", w / "o.parquet", key=KEY, memory_budget=1)
        pq.read_table(w / "s.parquet").join(pq.read_table(w / "o.parquet"), KEY, join_type="inner")
        cpu = {}

        def line(what, dt, base):
            c = time.process_time() - cpu["t"]
            cpu.setdefault("base", c)
            print(f"{what:<40} {dt:7.2f} s {rows / dt / 1e6:6.2f} M rows/s {dt / base:5.2f} x   "
                  f"CPU {c:6.2f} s {c / cpu['base']:5.2f} x")

        print(f"{'':<40} {'wall':>9} {'rows/s (both files)':>15} {'ratio':>7}   {'CPU (all threads)':>18}")
        t, cpu["t"] = time.perf_counter(), time.process_time()
        j = pq.read_table(ps, columns=[KEY]).join(pq.read_table(po, columns=[KEY]), KEY, join_type="inner")
        base = time.perf_counter() - t
        matched = j.num_rows
        del j
        line("pyarrow join (key column)", base, base)
        if args.all_columns:
            t, cpu["t"] = time.perf_counter(), time.process_time()
            pq.read_table(ps).join(pq.read_table(po), KEY, join_type="inner", right_suffix="_offline")
            line("pyarrow join (all columns)", time.perf_counter() - t, base)
        t, cpu["t"] = time.perf_counter(), time.process_time()
        r = fastdrift.skew(ps, po, key=KEY, workers=args.workers)
        dt = time.perf_counter() - t
        line(f"fastdrift.skew ({r.buckets} bucket{'s' if r.buckets > 1 else ''})", dt, base)
        assert r.compared == matched, (r.compared, matched)
        print("  mismatch rates: " + ", ".join(f"{f.column} {f.mismatch_rate:.3%}" for f in r.features)
              + f"; serving-only keys {r.serving_only_keys:,}")
        if args.spill_budget:
            # in a child process, for its own peak RSS: `fastdrift skew --memory-budget`
            out = d / "spill.json"
            status_file = d / "child-status.txt"
            cmd = [sys.executable, "-c", CHILD, str(status_file), "skew", str(ps), str(po), "--key", KEY,
                   "--memory-budget", args.spill_budget, "--format", "json", "-o", str(out)]
            if args.workers:
                cmd += ["--workers", str(args.workers)]
            t = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(p.pid, 0)
            dt = time.perf_counter() - t
            # the child's own VmHWM: ru_maxrss of a child exec'd from this (large) process starts at this
            # process's peak, since exec records the replaced address space's high-water mark
            hwm = int(next(ln for ln in status_file.read_text().splitlines() if ln.startswith("VmHWM")).split()[1])
            if os.waitstatus_to_exitcode(status) not in (0, 2):
                raise SystemExit(f"{cmd} failed with {status}")
            doc = json.loads(out.read_text())
            c = usage.ru_utime + usage.ru_stime
            print(f"{f'fastdrift skew --memory-budget {args.spill_budget}':<40} {dt:7.2f} s "
                  f"{rows / dt / 1e6:6.2f} M rows/s {dt / base:5.2f} x   CPU {c:6.2f} s {c / cpu['base']:5.2f} x"
                  f"   (child process, imports included)")
            bound = _budget(args.spill_budget) / 5 / (args.workers or len(os.sched_getaffinity(0)) + 1)
            print(f"  {doc['buckets']} buckets, largest {doc['max_bucket_bytes'] / 1e6:.1f} MB of Arrow data "
                  f"(bound {bound / 1e6:.1f} MB); peak RSS {hwm / 1024:.0f} MiB for a budget of "
                  f"{_budget(args.spill_budget) / 2**20:.0f} MiB")
            assert [(f["column"], f["mismatches"]) for f in doc["features"]] == \
                [(f.column, f.mismatches) for f in r.features]
    finally:
        if not args.dir:
            shutil.rmtree(d, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
