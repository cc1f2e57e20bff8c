"""Comparing two benchmark runs: one row per benchmark with a verdict, the problems that kept
benchmarks out, the environment differences, and the exit status; table, JSON and HTML output.
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Sequence, Union

import numpy as np

from ..errors import InvalidInputError
from .runs import Bench, Run
from .stats import (ALPHA, BlockStats, block_compare, decide, log_quantile_se, probe_block_levels, rank_min_p,
                    run_levels, runs_compare, runs_rank_compare, sample_stats, summary_stats, t_quantile, z_two_sided)

__all__ = ["PerfRow", "PerfComparison", "compare_runs", "parse_threshold", "format_table", "format_json",
           "format_html", "ENV_KEYS", "RUN_TESTS"]

#: environment entries that must match for timings to be comparable as they stand
ENV_KEYS = ("cpu", "cores", "python", "numpy", "pyarrow", "backend", "kernel_build", "timer", "simd")
_WEAK = ("from summary statistics only (no per-round timings; save with --benchmark-save-data or "
         "--benchmark-json): normal approximation, no rank test, no p99 — a weaker verdict")
_RAW = ("raw timings: no machine-speed probe on both sides (runs saved without fastdrift's plugin), so a change "
        "of the machine's speed between the runs reads as a change of the code — a weaker verdict")
#: how several runs a side are compared: by the ranks of their levels (Hodges-Lehmann shift, Mann-Whitney),
#: or by a pooled t on their levels
RUN_TESTS = ("rank", "t")
#: how each basis is marked in the table
_MARK = {"probe": "", "raw": " †", "rounds": " †", "summary": " *"}


@dataclass(frozen=True)
class PerfRow:
    """One benchmark compared (times in seconds; ratios are current / baseline)."""

    benchmark: str
    verdict: str  #: regressed, improved, unchanged, too noisy to tell
    severity: str  #: critical or warning when regressed, else ""
    #: what decided: "probe" (blocks normalized by the machine-speed probe), "raw" (blocks of raw
    #: timings), "rounds" (too few rounds for blocks: order statistics), "summary" (no rounds)
    basis: str
    rounds_base: int
    rounds_cur: int
    median_base: float
    median_cur: float
    median_ratio: float  #: raw: median current / median baseline
    machine_ratio: float  #: the probe's slowness current / baseline (above 1: the machine was slower); nan raw
    ratio: float  #: the ratio that decides: the median ratio over the machine ratio (ratio of ratios) when probed
    ratio_lo: float
    ratio_hi: float
    p99_ratio: float
    p99_ratio_lo: float
    p99_ratio_hi: float
    p_value: float  #: two-sided p-value of the test behind ``ratio`` (Welch t on the blocks)
    p_rank: float  #: Mann-Whitney p-value with every round independent (no normalization); nan from summaries
    p_slower: float
    throughput_ratio: float  #: current throughput / baseline (values per call when known)
    min_detectable: float  #: the slowdown (fraction) the data detects with 80% power
    memory_weight: float = math.nan  #: the memory probe's share of the machine ratio (the compute probe's: the rest)
    note: str = ""
    baseline_runs: int = 1  #: baseline runs the benchmark was compared against
    #: the run-to-run standard deviation of a run's (normalized) log level, estimated from the
    #: runs of both sides; nan with one run a side (unknown, and not in the interval)
    run_to_run_sd: float = math.nan
    current_runs: int = 1  #: current runs the benchmark was compared with
    #: how several runs a side were compared: "rank" (Hodges-Lehmann shift of the run levels, Moses interval,
    #: exact Mann-Whitney p-value) or "t" (pooled t on the run levels); "" with one run a side
    run_test: str = ""


@dataclass
class PerfComparison:
    """Every benchmark of two runs: compared rows, problems, environment differences."""

    baseline: str
    current: str
    max_regression: float
    alpha: float
    rows: List[PerfRow]
    problems: List[dict] = field(default_factory=list)  #: benchmark, side, problem
    env_differences: List[str] = field(default_factory=list)
    baseline_runs: int = 1  #: runs the baseline is made of
    current_runs: int = 1  #: runs the current side is made of (repeated runs of the same code)

    @property
    def exit_status(self) -> int:
        """0 nothing regressed, 1 a warning-level regression, 2 a critical one."""
        sev = {r.severity for r in self.rows}
        return 2 if "critical" in sev else 1 if "warning" in sev else 0

    @property
    def regressed(self) -> List[PerfRow]:
        return [r for r in self.rows if r.verdict == "regressed"]


def parse_threshold(text) -> float:
    """``"5%"``, ``"0.05"`` or ``0.05`` -> 0.05."""
    s = str(text).strip()
    try:
        v = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        raise InvalidInputError(f"--max-regression {text!r}: expected a percentage like 5% or a fraction "
                                f"like 0.05") from None
    if not (0 < v < 10) or not math.isfinite(v):
        raise InvalidInputError(f"--max-regression {text!r}: must be above 0% and below 1000%")
    return v


def _env_differences(a: dict, b: dict) -> List[str]:
    out = []
    for k in ENV_KEYS:
        if k in a and k in b and a[k] != b[k]:
            out.append(f"{k}: {a[k]!r} (baseline) vs {b[k]!r} (current)")
    return out


def _pair_problem(b: Bench, c: Bench) -> str:
    if b.unit != c.unit:
        return f"units differ: {b.unit} (baseline) vs {c.unit} (current)"
    return ""


def compare_runs(base: Union[Run, Sequence[Run]], cur: Union[Run, Sequence[Run]], max_regression: float = 0.05,
                 alpha: float = ALPHA, threads: Optional[int] = None, run_test: str = "rank") -> PerfComparison:
    """Compare every benchmark present in both the baseline and the current run(s).

    Parameters
    ----------
    base : Run or sequence of Run
        The baseline: one run, or several runs of the same code (:func:`fastdrift.perf.runs.read_run`).
        With three or more runs in all (both sides), each run's level is one draw of the
        run-to-run distribution and the sides' mean levels are compared by a t interval whose
        variance holds the run-to-run variance estimated from the runs
        (:func:`fastdrift.perf.stats.runs_compare`); with one run a side, the run-to-run
        variance is unknown and the interval holds only the within-run error.
    cur : Run or sequence of Run
        The current run, or several runs of the current code: the run-to-run change averages
        out over them (its share of the variance falls as one over their number).
    max_regression : float
        The slowdown allowed (0.05: 5%), see :func:`fastdrift.perf.stats.decide`.
    alpha : float
        Significance level of the rank test and of the intervals' ``1 - alpha`` confidence.
    threads : int, optional
        Threads for the per-benchmark statistics (default: the cores, at most 4).
    run_test : {"rank", "t"}
        With several runs a side, how their levels are compared: ``rank`` (default), by their
        ranks (:func:`fastdrift.perf.stats.runs_rank_compare`: a run far off counts as any
        run above the others) whenever ``k`` and ``m`` runs can reach ``alpha`` that way
        (``2 / C(k + m, k) < alpha``: 5 + 5, 4 + 7, 3 + 10, 10 + 3 ...), by the t otherwise;
        ``t``, always by the t.
    """
    if run_test not in RUN_TESTS:
        raise InvalidInputError(f"run_test {run_test!r}: one of {', '.join(RUN_TESTS)}")
    bases = [base] if isinstance(base, Run) else list(base)
    curs = [cur] if isinstance(cur, Run) else list(cur)
    if not bases:
        raise InvalidInputError("no baseline run")
    if not curs:
        raise InvalidInputError("no current run")
    if len(bases) > 1 or len(curs) > 1:
        return _compare_many(bases, curs, max_regression, alpha, threads, run_test)
    base, cur = bases[0], curs[0]
    problems = []
    pairs = []
    for name in list(base.benchmarks) + [n for n in cur.benchmarks if n not in base.benchmarks]:
        b, c = base.benchmarks.get(name), cur.benchmarks.get(name)
        if b is None or c is None:
            one_side = c if b is None else b
            problems.append({"benchmark": name, "side": "current" if b is None else "baseline",
                             "problem": ("only in the current run" if b is None else "only in the baseline")
                             + (f" (and {one_side.problem})" if one_side.problem else "")})
            continue
        bad = [(side, x.problem) for side, x in (("baseline", b), ("current", c)) if x.problem]
        pair = _pair_problem(b, c)
        if pair:
            bad.append(("both", pair))
        for side, why in bad:
            problems.append({"benchmark": name, "side": side, "problem": why})
        if not bad:
            pairs.append((name, b, c))

    def one(item):
        return _compare_two(item[1], item[2])

    stats = _map(one, pairs, threads)
    rows = _rows(pairs, [(s, bl, why, 1, math.nan, None, 1) for s, bl, why in stats], max_regression, alpha)
    return PerfComparison(base.path, cur.path, max_regression, alpha, rows, problems,
                          _env_differences(base.env, cur.env))


def _rows(pairs, stats, max_regression, alpha) -> List[PerfRow]:
    """The rows of compared benchmarks: ``stats`` holds, per pair, the sample statistics, the
    block or runs comparison (None: order statistics or summaries), why it is raw, the baseline
    runs, the run-to-run sd, the basis when it is not the blocks', and the current runs."""
    rows = []
    if pairs:
        za = z_two_sided(alpha)
        lr, se, q, p, basis, lo, hi = [], [], [], [], [], [], []
        for s, bl, _, _, _, how, _ in stats:
            lo.append(bl.lo if bl is not None else math.nan)  # given: the rank comparison's interval
            hi.append(bl.hi if bl is not None else math.nan)
            if bl is not None:
                lr.append(bl.log_ratio)
                se.append(bl.se)
                q.append(za if math.isinf(bl.dof) else t_quantile(1 - alpha / 2, bl.dof))
                p.append(bl.p_value)
                basis.append(how or ("probe" if bl.normalized else "raw"))
            else:
                lr.append(math.log(s.median_cur / s.median_base))
                se.append(s.se_log_median)
                q.append(za)
                p.append(s.p_value)
                basis.append(s.basis)
        d = decide(lr, se, q, max_regression, alpha,
                   p_min=[0.0 if k + m > 2 else s.p_min for s, _, _, k, _, _, m in stats], lo_log=lo, hi_log=hi)
        for i, ((name, b, c), (s, bl, why, k, tau, _, m)) in enumerate(zip(pairs, stats)):
            p99 = s.p99_cur / s.p99_base
            half = za * s.se_log_p99
            ratio = s.median_cur / s.median_base
            tput = 1 / ratio
            note = []
            if b.per_call and c.per_call and b.per_call != c.per_call:
                tput *= c.per_call / b.per_call
                note.append(f"values per call differ: {b.per_call:g} vs {c.per_call:g}")
            if basis[i] == "summary":
                note.append(_WEAK)
            elif basis[i] == "raw":
                note.append(why)
            elif basis[i] == "rounds" and k + m > 2:
                note.append("too few rounds for blocks (12 a side): each run's median with its order-statistic error")
            elif basis[i] == "rounds":
                note.append(f"{s.n_base} and {s.n_cur} rounds: too few for blocks (12 a side); order-statistic "
                            f"error of raw timings, a weaker verdict")
            if d["verdict"][i] == "unchanged" and p[i] < alpha:
                note.append(f"a significant shift of {math.exp(lr[i]) - 1:+.1%}, within the allowed "
                            f"{max_regression:.0%}")
            if d["verdict"][i] == "too noisy to tell":
                note.append(f"could miss a slowdown of up to {d['mde'][i]:.0%}; "
                            + ("more runs (baseline or current) narrow it" if k + m > 2 else "more rounds narrow it")
                            if np.isfinite(d["mde"][i]) else
                            f"{s.n_base} and {s.n_cur} rounds cannot reach significance at alpha {alpha:g}")
            machine = math.exp(bl.probe_log_ratio) if bl is not None and bl.normalized else math.nan
            rows.append(PerfRow(name, str(d["verdict"][i]), str(d["severity"][i]), basis[i], s.n_base, s.n_cur,
                                s.median_base, s.median_cur, ratio, machine, math.exp(lr[i]), float(d["lo"][i]),
                                float(d["hi"][i]), p99, p99 * math.exp(-half), p99 * math.exp(half),
                                p[i], s.p_value if s.basis == "rounds" else math.nan, s.p_slower, tput,
                                float(d["mde"][i]), bl.weight if bl is not None else math.nan, "; ".join(note),
                                k, tau, m, "" if k + m <= 2 else ("rank" if bl is not None and not math.isnan(bl.lo)
                                                                  else "t")))
    return rows


def _map(fn, items, threads):
    """``fn`` over ``items``, on up to 4 threads (numpy releases the GIL in sorts)."""
    n_threads = threads or min(4, os.cpu_count() or 1)
    if n_threads > 1 and len(items) > 8:
        with ThreadPoolExecutor(n_threads) as ex:
            return list(ex.map(fn, items, chunksize=max(1, len(items) // (4 * n_threads))))
    return [fn(p) for p in items]


def _compare_many(bases: List[Run], curs: List[Run], max_regression: float, alpha: float,
                  threads, run_test: str = "rank") -> PerfComparison:
    """Several runs on one side or both: per benchmark, each run's level (its mean normalized
    block, or raw block, or log median) is one draw of its side's run-to-run distribution;
    :func:`fastdrift.perf.stats.runs_compare` compares the sides' means.  A run in which a
    benchmark is broken is left out for it (listed); with one run a side left, two runs are
    compared."""
    problems, items = [], []
    names = list(dict.fromkeys([n for r in bases + curs for n in r.benchmarks]))
    many_cur = len(curs) > 1
    for name in names:
        present_b = [(r.path, r.benchmarks[name]) for r in bases if name in r.benchmarks]
        present_c = [(r.path, r.benchmarks[name]) for r in curs if name in r.benchmarks]
        if not present_b or not present_c:
            one_side = (present_b or present_c)[0][1]
            problems.append({"benchmark": name, "side": "baseline" if present_b else "current",
                             "problem": ("only in the baseline" if present_b else "only in the current run"
                                         + ("s" if many_cur else "")) + (f" (and {one_side.problem})" if one_side.problem
                                                                             else "")})
            continue
        cs = []
        for path, c in present_c:
            if c.problem:
                problems.append({"benchmark": name, "side": f"current {path}" if many_cur else "current",
                                 "problem": c.problem + (" (run left out)" if many_cur else "")})
            elif cs and cs[0].unit != c.unit:
                problems.append({"benchmark": name, "side": f"current {path}",
                                 "problem": f"unit {c.unit} unlike the other current runs' {cs[0].unit} (run left out)"})
            else:
                cs.append(c)
        if not cs:
            continue
        usable = []
        for path, b in present_b:
            why = b.problem or _pair_problem(b, cs[0])
            if why:
                problems.append({"benchmark": name, "side": f"baseline {path}", "problem": why + " (run left out)"})
            else:
                usable.append(b)
        if not usable:
            continue
        items.append((name, usable, cs))

    def one(item):
        _, bs, cs = item
        k, m = len(bs), len(cs)
        if k == 1 and m == 1:  # the other runs lack it: a two-run comparison
            return _compare_two(bs[0], cs[0]) + (1, math.nan, None, 1)
        runs = bs + cs
        if all(x.values is not None for x in runs):
            s = sample_stats(*(np.sort(np.concatenate([x.values for x in side]), kind="stable")  # merges
                               for side in (bs, cs)))
        else:
            s = summary_stats(*(_summary_of(np.concatenate([x.values for x in side]))
                                if all(x.values is not None for x in side) else _pooled_summary(side)
                                for side in (bs, cs)))
        why, how, w, machine = "", None, math.nan, None
        if all(x.blocks is not None for x in runs):
            why = next((w_ for w_ in (_no_probe(b, c) for b in bs for c in cs) if w_), "")
            if not why and len({x.probe.version for x in runs}) > 1:
                why = "probe versions differ between the runs"
            probes = None if why else [[probe_block_levels(p, x.probe.at, x.rounds, x.blocks.size)
                                        for p in (x.probe.mem, x.probe.cpu)] for x in runs]
            lv, er, w, machine = run_levels([x.blocks for x in runs], probes)
        else:
            how = "summary" if any(x.values is None for x in runs) else "rounds"
            lv = np.array([math.log(x.summary["median"] if x.values is None else float(np.median(x.values)))
                           for x in runs])
            er = np.array([_summary_se(x.summary) if x.values is None else log_quantile_se(x.values, 0.5)
                           for x in runs])
        rs = runs_compare(lv[:k], er[:k], lv[k:], er[k:])
        plr = float(machine[k:].mean() - machine[:k].mean()) if machine is not None else math.nan
        if run_test == "rank" and rank_min_p(k, m) < alpha:
            rk = runs_rank_compare(lv[:k], lv[k:], alpha)
            # the normal-equivalent error of the interval's half-width, for the minimum detectable effect
            se = (rk.hi - rk.lo) / (2 * z_two_sided(alpha))
            bl = BlockStats(rk.log_ratio, se, math.inf, rk.p_value, plr, machine is not None, w, rk.lo, rk.hi)
        else:
            bl = BlockStats(rs.log_ratio, rs.se, rs.dof, rs.p_value, plr, machine is not None, w)
        return s, bl, why, k, rs.between_sd, how, m

    stats = _map(one, items, threads)
    pairs = [(name, bs[0], cs[0]) for name, bs, cs in items]
    rows = _rows(pairs, stats, max_regression, alpha)
    envs = []
    for r in bases:
        for c in curs:
            envs += [d for d in _env_differences(r.env, c.env) if d not in envs]
    return PerfComparison(", ".join(r.path for r in bases), ", ".join(c.path for c in curs), max_regression, alpha,
                          rows, problems, envs, len(bases), len(curs))


def _compare_two(b: Bench, c: Bench):
    """(sample statistics, block comparison or None, why raw) of two runs' benchmark."""
    if b.values is None or c.values is None:
        summ = [x.summary if x.summary is not None else _summary_of(x.values) for x in (b, c)]
        return summary_stats(*summ), None, ""
    s = sample_stats(b.values, c.values)
    if b.blocks is None or c.blocks is None:
        return s, None, ""
    why = _no_probe(b, c)
    if why:
        return s, block_compare(b.blocks, c.blocks), why
    pb, pc = ([probe_block_levels(p, x.probe.at, x.rounds, x.blocks.size) for p in (x.probe.mem, x.probe.cpu)]
              for x in (b, c))
    return s, block_compare(b.blocks, c.blocks, pb, pc), ""


def _summary_se(summ: dict) -> float:
    """Normal-theory error of a log median from a summary (as :func:`summary_stats`)."""
    return 1.2533 * (summ["iqr"] / 1.349) / math.sqrt(summ["rounds"]) / summ["median"]


def _pooled_summary(bs) -> dict:
    """A summary standing for several baseline runs (display only): medians' median, IQRs' median."""
    ss = [b.summary if b.summary is not None else _summary_of(b.values) for b in bs]
    return {"median": float(np.median([x["median"] for x in ss])), "iqr": float(np.median([x["iqr"] for x in ss])),
            "rounds": int(sum(x["rounds"] for x in ss))}


def _no_probe(b: Bench, c: Bench) -> str:
    """Why two benchmarks are compared on raw timings ("" when both carry a usable probe)."""
    why = []
    for side, x in (("baseline", b), ("current", c)):
        if x.probe_problem:
            why.append(f"the {side}'s probe is unusable ({x.probe_problem})")
        elif x.probe is None:
            why.append(f"no machine-speed probe in the {side}")
    if not why and b.probe.version != c.probe.version:
        why.append(f"probe versions differ ({b.probe.version} vs {c.probe.version})")
    return "; ".join(why)


def _summary_of(xs: np.ndarray) -> dict:
    q1, med, q3 = np.quantile(xs, [0.25, 0.5, 0.75])
    return {"median": float(med), "iqr": float(q3 - q1), "rounds": int(xs.size)}


def _t(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if x >= f:
            return f"{x / f:.3g}{unit}"
    return f"{x * 1e9:.3g}ns"


def _ci(v: float, lo: float, hi: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{v:.3f} [n/a]"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


_ORDER = {"regressed": 0, "too noisy to tell": 1, "improved": 2, "unchanged": 3}


def _sorted(rows):
    return sorted(rows, key=lambda r: (_ORDER[r.verdict], r.severity != "critical", -r.ratio))


def format_table(c: PerfComparison) -> str:
    """The comparison as text: environment flags, one line per benchmark (worst first), the
    benchmarks not compared and why, and a summary line."""
    out = [f"baseline {c.baseline}  vs  current {c.current}  (max regression {c.max_regression:.0%}, "
           f"alpha {c.alpha:g}, intervals {1 - c.alpha:.0%})"]
    if any(r.basis == "probe" for r in c.rows):
        out.append("ratio = median ratio / machine ratio: each run's timings divided by the machine-speed probe "
                   "timed between its rounds (a ratio of ratios), interval from the spread between blocks of rounds")
    ranked = any(r.run_test == "rank" for r in c.rows)
    if ranked:
        out.append(f"baseline of {c.baseline_runs} runs, current of {c.current_runs} runs: by the ranks of the run "
                   f"levels -- ratio = Hodges-Lehmann shift (median of every current level over every baseline "
                   f"level), distribution-free interval (Moses), exact Mann-Whitney p; a run far off counts as one "
                   f"run above the others")
    if c.current_runs > 1 and any(r.run_test == "t" for r in c.rows):
        out.append(f"baseline of {c.baseline_runs} run{'s' if c.baseline_runs > 1 else ''}, current of "
                   f"{c.current_runs} runs" + (" (rows with too few runs for ranks)" if ranked else "")
                   + ": interval of the difference of the sides' mean run levels, from the runs' spread on both sides "
                   "(run-to-run sd measured) and the within-run errors, t with runs - 2 df")
    elif c.current_runs == 1 and c.baseline_runs > 1:
        out.append(f"baseline of {c.baseline_runs} runs: interval = prediction interval of a new run from the "
                   f"baseline runs' spread (run-to-run sd measured) and the within-run errors, t with runs - 1 df")
    elif c.rows and not ranked and c.baseline_runs == 1 and c.current_runs == 1:
        out.append("one baseline run: the run-to-run variance is unknown and not in the intervals (a weaker verdict); "
                   "keep several baseline runs to measure it")
    if c.env_differences:
        out.append("ENVIRONMENTS DIFFER -- the timings may not be comparable:")
        out += [f"  {d}" for d in c.env_differences]
    w = max([len("benchmark")] + [len(r.benchmark) for r in c.rows])
    w = min(w, 60)
    head = (f"{'benchmark':<{w}}  {'verdict':<26} {'median base':>11} {'median cur':>11} {'median':>7} "
            f"{'machine':>7} {'ratio [CI]':>24} {'p99 ratio [CI]':>24} {'p':>8} {'tput':>6} {'MDE':>6}")
    out += ["", head, "-" * len(head)]
    for r in _sorted(c.rows):
        v = r.verdict + (f" ({r.severity})" if r.severity else "") + _MARK[r.basis]
        out.append(f"{r.benchmark[:w]:<{w}}  {v:<26} {_t(r.median_base):>11} {_t(r.median_cur):>11} "
                   f"{r.median_ratio:>7.3f} {_x(r.machine_ratio):>7} {_ci(r.ratio, r.ratio_lo, r.ratio_hi):>24} "
                   f"{_ci(r.p99_ratio, r.p99_ratio_lo, r.p99_ratio_hi):>24} {r.p_value:>8.2g} "
                   f"{r.throughput_ratio:>6.3f} {r.min_detectable:>6.1%}")
        if r.note:
            out.append(f"{'':<{w}}    {r.note}")
    if any(r.basis in ("raw", "rounds") for r in c.rows):
        out.append(f"† {_RAW}")
    if any(r.basis == "summary" for r in c.rows):
        out.append(f"* {_WEAK}")
    if c.problems:
        out += ["", "Not compared:"]
        out += [f"  {p['benchmark']}: {p['side']}: {p['problem']}" for p in c.problems]
    counts = {}
    for r in c.rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    summ = ", ".join(f"{counts[k]} {k}" for k in _ORDER if k in counts) or "nothing compared"
    out += ["", f"{len(c.rows)} compared: {summ}; {len(c.problems)} not compared; exit {c.exit_status}"]
    return "\n".join(out)


def _x(v: float) -> str:
    return f"{v:.3f}" if math.isfinite(v) else "n/a"


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def format_json(c: PerfComparison) -> str:
    """One JSON document (non-finite numbers as null)."""
    doc = {"fastdrift": "perf compare", "baseline": c.baseline, "current": c.current,
           "max_regression": c.max_regression, "alpha": c.alpha, "exit_status": c.exit_status,
           "baseline_runs": c.baseline_runs, "current_runs": c.current_runs,
           "environment_differences": c.env_differences,
           "benchmarks": [{k: _jsonable(v) for k, v in asdict(r).items()} for r in _sorted(c.rows)],
           "not_compared": c.problems}
    return json.dumps(doc, indent=2, allow_nan=False)


def format_html(c: PerfComparison) -> str:
    """A self-contained HTML page of the table."""
    e = html.escape
    colour = {"regressed": "#f8d0d0", "improved": "#d0f0d0", "too noisy to tell": "#f4ecc8", "unchanged": "#fff"}
    rows = "".join(
        f"<tr style='background:{colour[r.verdict]}'><td>{e(r.benchmark)}</td><td>{e(r.verdict)}"
        f"{' (' + r.severity + ')' if r.severity else ''}{e(_MARK[r.basis])}</td><td>{_t(r.median_base)}</td><td>{_t(r.median_cur)}</td>"
        f"<td>{r.median_ratio:.3f}</td><td>{_x(r.machine_ratio)}</td><td>{_ci(r.ratio, r.ratio_lo, r.ratio_hi)}</td>"
        f"<td>{_ci(r.p99_ratio, r.p99_ratio_lo, r.p99_ratio_hi)}</td><td>{r.p_value:.2g}</td>"
        f"<td>{r.throughput_ratio:.3f}</td><td>{r.min_detectable:.1%}</td><td>{e(r.note)}</td></tr>"
        for r in _sorted(c.rows))
    probs = "".join(f"<li>{e(p['benchmark'])}: {e(p['side'])}: {e(p['problem'])}</li>" for p in c.problems)
    env = "".join(f"<li>{e(d)}</li>" for d in c.env_differences)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>fastdrift perf compare</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>"
            f"</head><body><h1>fastdrift perf compare</h1><p>baseline {e(c.baseline)} vs current {e(c.current)}; "
            f"max regression {c.max_regression:.0%}; exit status {c.exit_status}</p>"
            + (f"<h2>Environments differ</h2><ul>{env}</ul>" if env else "")
            + "<table><tr><th>benchmark</th><th>verdict</th><th>median base</th><th>median cur</th>"
              "<th>median ratio</th><th>machine ratio</th><th>ratio [CI]</th><th>p99 ratio [CI]</th><th>p</th><th>throughput ratio</th>"
              f"<th>min detectable</th><th>note</th></tr>{rows}</table>"
            + (f"<p>† {e(_RAW)}</p>" if any(r.basis in ("raw", "rounds") for r in c.rows) else "")
            + (f"<p>* {e(_WEAK)}</p>" if any(r.basis == "summary" for r in c.rows) else "")
            + (f"<h2>Not compared</h2><ul>{probs}</ul>" if probs else "") + "</body></html>\n")


@dataclass
class SplitNoise:
    """How a set of runs of the same code compares with itself (:func:`split_noise`)."""

    runs: int  #: runs in the set
    splits: int  #: splits compared: every choice of ``current`` runs, the rest the baseline
    current: int  #: current runs per split
    alarms: int  #: splits in which a benchmark was flagged ``regressed`` (a false alarm: the code is the same)
    critical: int  #: splits whose comparison exits 2 (a critical regression)
    #: benchmark -> {"regressed": n, "critical": n, "warning": n, "too noisy to tell": n} over the splits
    #: (critical and warning: the severities of its regressed verdicts)
    per_benchmark: dict

    @property
    def too_noisy(self) -> int:
        """Benchmark-splits whose verdict was ``too noisy to tell``."""
        return sum(v["too noisy to tell"] for v in self.per_benchmark.values())


def scaled_run(run: Run, factor: float) -> Run:
    """``run`` with every benchmark's timings times ``factor`` and its probes as they were: what a
    commit ``factor`` times slower would have measured in the same stretch of the machine."""
    out = Run(run.path, run.source, dict(run.env))
    for name, b in run.benchmarks.items():
        out.benchmarks[name] = b if b.values is None or factor == 1.0 else dataclasses.replace(
            b, values=b.values * factor, blocks=None if b.blocks is None else b.blocks + math.log(factor))
    return out


#: The slowdown a saved baseline must find in every benchmark: a set of runs against which a
#: benchmark this many times slower would not be flagged at the margin given is not saved
#: (``fastdrift bench --save-baseline``; tests/test_bench_targets.py checks the saved sets the
#: same way).
CATCH_SLOWDOWN = 1.3


def missed_slowdowns(runs: Sequence[Run], max_regressions: Sequence[float],
                     factor: float = CATCH_SLOWDOWN) -> list:
    """The benchmarks that ``runs``, as a baseline, would not flag ``regressed`` against the same
    runs with every timing ``factor`` times longer (:func:`scaled_run`, the probes as they were),
    compared at each of ``max_regressions``: those a saved baseline of these runs cannot track."""
    runs = list(runs)
    slow = [scaled_run(r, factor) for r in runs]
    missed = set()
    for t in max_regressions:
        c = compare_runs(runs, slow, t, threads=1)
        missed.update(r.benchmark for r in c.rows if r.verdict != "regressed")
    return sorted(missed)


def split_noise(runs: Sequence[Run], max_regression: float, current: int = 2, factor: float = 1.0) -> SplitNoise:
    """Every split of ``runs`` (several runs of the same code on one machine) into ``current``
    current runs and the rest as the baseline, compared as ``perf compare`` compares: how many
    splits flag a benchmark ``regressed`` (with ``factor`` 1, false alarms) and how many
    benchmark-splits are ``too noisy to tell`` at ``max_regression``.  ``factor``: the current
    runs' timings multiplied by it (:func:`scaled_run`), to measure what a slowdown of that size
    is found as.  Needs at least ``current + 2`` runs."""
    import itertools

    runs = list(runs)
    if current < 1 or len(runs) < current + 2:
        raise InvalidInputError(f"{len(runs)} runs: a split into {current} current runs needs at least "
                                f"{current + 2} runs")
    per: dict = {}
    alarms = splits = critical = 0
    for cur in itertools.combinations(range(len(runs)), current):
        c = compare_runs([r for i, r in enumerate(runs) if i not in cur], [scaled_run(runs[i], factor) for i in cur],
                         max_regression, threads=1)
        splits += 1
        alarms += any(r.verdict == "regressed" for r in c.rows)
        critical += c.exit_status == 2
        for r in c.rows:
            v = per.setdefault(r.benchmark, {"regressed": 0, "critical": 0, "warning": 0, "too noisy to tell": 0})
            if r.verdict in v:
                v[r.verdict] += 1
            if r.verdict == "regressed" and r.severity in v:
                v[r.severity] += 1
    return SplitNoise(len(runs), splits, current, alarms, critical, per)
