"""Run the benchmark suite and print the throughput table.

    python bench/run.py [pytest args...]

Runs every ``bench/bench_*.py`` with pytest-benchmark, writes the figures in
pytest-benchmark's JSON format (``bench/results.json`` by default, so two runs
can be compared with ``pytest-benchmark compare``), then prints, per
benchmark: the median time, values/s (``extra_info["n"]`` values per call), and
the ratio to the baselines measured in the same run -- ``np.sum`` over the
same array (the one-pass reference) and the group's peer (numpy's
searchsorted+bincount, np.histogram, pyarrow's value_counts, ...), marked by
``extra_info["baseline"] = True``.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def table(results: dict) -> str:
    benches = results["benchmarks"]
    by_group = {}
    for b in benches:
        by_group.setdefault(b["group"] or "", []).append(b)
    sums = {b["extra_info"].get("n"): b for b in benches if b["extra_info"].get("role") == "np.sum"}
    lines = []
    head = f"{'group':<28} {'benchmark':<34} {'median':>10} {'values/s':>10} {'x np.sum':>9} {'x peer':>8}"
    lines += [head, "-" * len(head)]
    for group in sorted(by_group):
        rows = by_group[group]
        peer = next((b for b in rows if b["extra_info"].get("role") == "peer"), None)
        for b in sorted(rows, key=lambda b: b["stats"]["median"]):
            n = b["extra_info"].get("n")
            med = b["stats"]["median"]
            vps = n / med if n else float("nan")
            s = sums.get(n)
            x_sum = (s["stats"]["median"] / med) if s else float("nan")
            x_peer = (peer["stats"]["median"] / med) if peer else float("nan")
            name = b["name"].split("::")[-1]
            lines.append(f"{group:<28} {name[:34]:<34} {med * 1e3:>8.2f}ms {vps / 1e6:>9.1f}M "
                         f"{x_sum:>9.2f} {x_peer:>8.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import pytest

    argv = list(sys.argv[1:] if argv is None else argv)
    out = os.environ.get("FASTDRIFT_BENCH_JSON", str(HERE / "results.json"))
    rc = pytest.main([str(HERE), "-q", "-p", "no:cacheprovider", "--benchmark-only",
                      f"--benchmark-json={out}", "-o", "python_files=bench_*.py", *argv])
    if rc not in (0, 5) or not pathlib.Path(out).exists():
        return int(rc) or 1
    print()
    print(table(json.loads(pathlib.Path(out).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
