"""The canary rule on simulated rollouts (docs/alerts.md "Canary rules", "Measured").

Uses tests/test_canary.py's traffic (5,000 requests per 60 s window, 15% on the canary, a gamma KPI,
1% errors) and rule (``min_rows: 300``, defaults otherwise): A/A canaries (how many are rolled back,
how many promoted) and canaries whose KPI is 15% / 10% lower (windows until the rollback).

    python bench/canary_rules_study.py [--aa 40] [--degraded 30]
"""
import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import test_canary as T  # noqa: E402  the tests' traffic and rule


def verdicts(seed: int, windows: int, **kw):
    m = T._monitor([T._rule()])
    T._feed(m, seed, windows, n=5000, **kw)
    return [r.comparisons["canary"].verdict for r in m.reports() if r.rows > 1000]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aa", type=int, default=40)
    ap.add_argument("--degraded", type=int, default=30)
    args = ap.parse_args()
    aa = [verdicts(1000 + s, 10) for s in range(args.aa)]
    print(f"A/A: {args.aa} canaries x 10 windows: {sum('rollback' in v for v in aa)} rolled back, "
          f"{sum(v[-1] == 'promote' for v in aa)} promoted at the end")
    for factor in (0.85, 0.9):
        d = []
        for s in range(args.degraded):
            v = verdicts(2000 + s, 10, kpi_b=factor)
            d.append(v.index("rollback") + 1 if "rollback" in v else float("inf"))
        print(f"KPI {1 - factor:.0%} lower: windows to rollback median {np.median(d):g}, "
              f"p90 {np.percentile(d, 90):g}, worst {max(d):g} of {args.degraded}")


if __name__ == "__main__":
    main()
