"""Run the benchmark suite and print the throughput table.

    python bench/run.py [pytest args...]
    python bench/run.py bench/bench_targets.py [pytest args...]

Runs every ``bench/bench_*.py`` (or the bench files and node ids given) with pytest-benchmark, writes the figures in
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


def _n(b) -> float:
    info = b["extra_info"]
    if info.get("n"):
        return float(info["n"])
    if info.get("values_per_s"):  # recorded against the best round
        return info["values_per_s"] * b["stats"]["min"]
    return float("nan")


def _param(name: str) -> str:
    return name[name.index("[") + 1:-1] if "[" in name else ""


def _is_sum(b) -> bool:
    return b["extra_info"].get("role") == "np.sum" or "np_sum" in b["name"] or "numpy_sum" in b["name"]


def _is_peer(b) -> bool:
    if b["extra_info"].get("role") == "peer":
        return True
    return not _is_sum(b) and any(k in b["name"] for k in ("numpy", "pyarrow", "peer"))


def _peer_of(b, peers, rows=()):
    """The baseline to compare ``b`` with: the benchmark of its file that ``extra_info["versus"]``
    names ("" for none), else a peer over the same number of values, preferring the same test
    function, then the same parameter."""
    if "versus" in b["extra_info"]:
        return next((x for x in rows if x["name"] == b["extra_info"]["versus"]), None)
    same_n = [x for x in peers if x is not b and _n(x) == _n(b)]
    base = b["name"].split("[")[0]
    for x in same_n:
        if x["name"].split("[")[0] == base and x["extra_info"].get("role") == "peer":
            return x
    param = _param(b["name"])
    for x in same_n:
        if _param(x["name"]) and _param(x["name"]) in param.split("-"):
            return x
    marked = [x for x in same_n if x["extra_info"].get("role") == "peer"]
    return marked[0] if len(marked) == 1 else (same_n[0] if len(same_n) == 1 else None)


def table(results: dict) -> str:
    """One row per benchmark: median, values/s, and ratios to np.sum and to the
    matching peer (same file, same parameter) measured in the same run."""
    by_file = {}
    all_sums = [b for b in results["benchmarks"] if _is_sum(b)]
    for b in results["benchmarks"]:
        by_file.setdefault(b["fullname"].split("::")[0], []).append(b)
    head = f"{'benchmark':<52} {'median':>10} {'values/s':>11} {'x np.sum':>9} {'x peer':>8}"
    lines = [head, "-" * len(head)]
    for path in sorted(by_file):
        rows = by_file[path]
        sums = [b for b in rows if _is_sum(b)] or all_sums
        peers = [b for b in rows if _is_peer(b)]
        lines.append(path)
        for b in sorted(rows, key=lambda b: (_param(b["name"]).split("-")[0], b["stats"]["median"])):
            med = b["stats"]["median"]
            n = _n(b)
            # a case naming its own reference ("versus") is put beside np.sum over as many values only
            s = next((x for x in sums if _n(x) == n),
                     None if "versus" in b["extra_info"] or not sums else sums[0])
            peer = _peer_of(b, peers, rows)
            x_sum = s["stats"]["median"] / med * (n / _n(s)) if s else float("nan")
            x_peer = peer["stats"]["median"] / med * (n / _n(peer)) if peer else float("nan")
            lines.append(f"  {b['name'][:50]:<50} {med * 1e3:>8.2f}ms {n / med / 1e6:>10.1f}M "
                         f"{x_sum:>9.2f} {x_peer:>8.2f}")
    lines.append("")
    lines.append("x np.sum, x peer: throughput relative to np.sum over the same number of values and to the")
    lines.append("matching numpy/pyarrow/peer baseline, both measured in this run (higher is faster).")
    return "\n".join(lines)


def _is_path(arg: str) -> bool:
    """A bench file, directory or node id given on the command line (``bench/bench_targets.py::test_np_sum``)."""
    return not arg.startswith("-") and os.path.exists(arg.split("::", 1)[0])


def main(argv=None) -> int:
    import pytest

    argv = list(sys.argv[1:] if argv is None else argv)
    out = os.environ.get("FASTDRIFT_BENCH_JSON", str(HERE / "results.json"))
    where = [] if any(_is_path(a) for a in argv) else [str(HERE)]  # paths given: those alone
    # -p no:hypothesispytest: no benchmark uses hypothesis, whose plugin (installed with the test
    # extras) takes 0.4-0.9 s of every session's start-up to import
    rc = pytest.main([*where, "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--benchmark-only",
                      f"--benchmark-json={out}", "-o", "python_files=bench_*.py", *argv])
    if rc not in (0, 5) or not pathlib.Path(out).exists():
        return int(rc) or 1
    print()
    print(table(json.loads(pathlib.Path(out).read_text())))
    from fastdrift.kernels.native import simd_path
    print(f"C kernels' SIMD path: {simd_path()} (FASTDRIFT_SIMD)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
