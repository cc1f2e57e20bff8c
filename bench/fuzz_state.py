"""Long run of the mutation fuzz of every serialized kind (tests/statefuzz.py).

    python bench/fuzz_state.py --blobs 100000 [--seed 0] [--kinds histogram,checkpoint] [--save-bad DIR]

Mutates ``--blobs`` blobs round robin over the kinds (sketches, row sample, profile, ``.fdp`` file,
monitor checkpoint, alert-evaluator state) in three modes (raw bytes; the outer envelope's body
behind a recomputed checksum; an envelope nested anywhere inside, with every enclosing length and
checksum repaired), decodes each and uses what decodes (merge with itself and with an empty one,
update, byte round trip, queries).  Prints the count per kind and outcome, per mode, and the time;
exits 1 if any blob crashed (an exception outside FastDriftError), hung (over ``--hang`` seconds,
also interrupted by SIGALRM) or decoded to an object that misbehaved.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
import time
import warnings
from collections import Counter

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import statefuzz  # noqa: E402


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blobs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(statefuzz.KINDS))
    ap.add_argument("--hang", type=float, default=10.0, help="seconds after which one blob counts as a hang")
    ap.add_argument("--save-bad", default=None, help="directory to write the bad blobs to")
    args = ap.parse_args(argv)
    kinds = tuple(args.kinds.split(","))
    warnings.simplefilter("ignore")  # numpy warnings on hostile floats are not failures

    # a real hang never returns to the timing check of statefuzz.run: interrupt it
    classify = statefuzz.classify

    def guarded(kind, blob):
        signal.setitimer(signal.ITIMER_REAL, args.hang * 3)
        try:
            return classify(kind, blob)
        except _Hang:
            return "hung", f"interrupted after {args.hang * 3:.0f} s"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    signal.signal(signal.SIGALRM, _alarm)
    statefuzz.classify = guarded

    def on_bad(case):
        kind, mode, op, outcome, detail, blob = case
        print(f"BAD {kind} {mode} {op} {outcome}: {detail.strip().splitlines()[-1][:200]}", flush=True)
        if args.save_bad:
            os.makedirs(args.save_bad, exist_ok=True)
            pathlib.Path(args.save_bad, f"{kind}-{outcome}-{abs(hash(blob))}.bin").write_bytes(blob)

    t0 = time.perf_counter()

    def progress(i, counts):
        if i % 10_000 == 0:
            print(f"... {i} blobs, {time.perf_counter() - t0:.0f} s", flush=True)

    counts, bad = statefuzz.run(args.blobs, seed=args.seed, kinds=kinds, hang_seconds=args.hang,
                                on_bad=on_bad, progress=progress)
    elapsed = time.perf_counter() - t0
    per_kind: Counter = Counter()
    per_mode: Counter = Counter()
    for (kind, mode, outcome), n in counts.items():
        per_kind[(kind, outcome)] += n
        per_mode[(mode, outcome)] += n
    cols = statefuzz.OUTCOMES
    print(f"\n{'kind':<12}" + "".join(f"{c:>11}" for c in cols) + f"{'total':>9}")
    for rows, keys in ((per_kind, kinds), (per_mode, ("raw", "crc", "deep"))):
        for k in keys:
            vals = [rows[(k, c)] for c in cols]
            print(f"{k:<12}" + "".join(f"{v:>11}" for v in vals) + f"{sum(vals):>9}")
        print()
    total = sum(counts.values())
    n_bad = sum(n for (_, _, o), n in counts.items() if o in statefuzz.BAD)
    print(f"{total} blobs in {elapsed:.1f} s ({total / elapsed:.0f}/s); crashed + hung + misbehaved: {n_bad}")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
