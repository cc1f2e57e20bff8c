"""The ``fastdrift`` command."""
from __future__ import annotations

import argparse
import sys
import time

__all__ = ["main"]


def _demo(args) -> int:
    from .demo import make_tables
    from .metrics.drift import compare_profiles, format_table
    from .sketches.profile import Profile, profile

    t0 = time.perf_counter()
    ref_table, cur_table = make_tables(args.rows, args.seed)
    t1 = time.perf_counter()
    ref = profile(ref_table)
    cur = profile(cur_table, reference=ref)
    t2 = time.perf_counter()
    # The profiles travel as bytes between processes; prove the round trip on the way.
    ref, cur = Profile.from_bytes(ref.to_bytes()), Profile.from_bytes(cur.to_bytes())
    rows = compare_profiles(ref, cur)
    cells = (ref_table.num_rows + cur_table.num_rows) * ref_table.num_columns
    print(f"fastdrift demo: reference {ref.rows:,} rows, current {cur.rows:,} rows, "
          f"{len(ref.columns)} columns (synthetic data in {t1 - t0:.2f}s; profiled "
          f"{cells:,} cells in {t2 - t1:.2f}s = {cells / max(t2 - t1, 1e-9) / 1e6:.0f}M cells/s)")
    print()
    print(format_table(rows))
    drifted = [r.column for r in rows if r.status != "stable"]
    print()
    print(f"{len(drifted)} of {len(rows)} columns drifted (PSI >= 0.1 on reference deciles): "
          f"{', '.join(drifted) if drifted else 'none'}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastdrift", description="Fast drift monitoring for ML systems.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="profile built-in synthetic traffic and print a drift table")
    p.add_argument("--rows", type=int, default=200_000, help="rows per day (default 200000)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # one clear line unless --debug
        if args.debug:
            raise
        print(f"fastdrift {args.command}: error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
