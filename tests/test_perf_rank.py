"""The rank comparison of several runs a side: exact Mann-Whitney, Hodges-Lehmann shift, Moses interval."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats as sps

from fastdrift.errors import InvalidInputError
from fastdrift.perf import compare_runs, format_json, format_table, run_from_timings
from fastdrift.perf.stats import rank_min_p, rank_u_cdf, runs_rank_compare

# run levels of both sides, all distinct (measured levels are continuous), split at a drawn point
# (hundredths: a common shift or scale keeps them apart in floating point)
_sides = st.lists(st.integers(-300, 300), min_size=2, max_size=16, unique=True).map(
    lambda v: [x / 100 for x in v]).flatmap(lambda v: st.integers(1, len(v) - 1).map(lambda i: (v[:i], v[i:])))


def _brute_cdf(k, m):
    """P(U <= u) by enumerating every placement of the k baseline ranks among k + m."""
    counts = np.zeros(k * m + 1)
    for base in itertools.combinations(range(k + m), k):
        bs = set(base)
        u = sum(sum(1 for b in base if b < j) for j in range(k + m) if j not in bs)  # current above baseline
        counts[u] += 1
    return np.cumsum(counts) / counts.sum()


@pytest.mark.parametrize("k,m", [(1, 1), (1, 5), (3, 4), (5, 5), (6, 2), (7, 7)])
def test_exact_null_distribution_matches_enumeration(k, m):
    np.testing.assert_allclose(rank_u_cdf(k, m), _brute_cdf(k, m), rtol=1e-12)
    assert rank_min_p(k, m) == pytest.approx(min(1.0, 2 / math.comb(k + m, k)))


@settings(max_examples=150, deadline=None)
@given(_sides)
def test_p_value_and_u_match_scipy_exact_and_shift_is_brute_force_hodges_lehmann(sides):
    b, c = (np.array(x) for x in sides)
    r = runs_rank_compare(b, c, 0.05)
    ref = sps.mannwhitneyu(c, b, method="exact")  # oracle
    assert r.u == ref.statistic
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    diffs = sorted(cj - bi for bi in b for cj in c)  # every pair, by hand
    assert r.log_ratio == pytest.approx(float(np.median(diffs)))
    # Moses' interval: the differences ranked c_a + 1 and k m - c_a, c_a the largest u with P(U <= u) <= alpha / 2
    k, m = b.size, c.size
    ca = max((u for u in range(k * m + 1) if _brute_cdf(k, m)[u] <= 0.025 + 1e-12), default=None) \
        if math.comb(k + m, k) <= 5000 else None
    if ca is not None:
        assert (r.lo, r.hi) == (diffs[ca], diffs[k * m - 1 - ca])
    elif math.comb(k + m, k) <= 5000:
        assert (r.lo, r.hi) == (-math.inf, math.inf)


@settings(max_examples=100, deadline=None)
@given(_sides, st.floats(-5, 5), st.floats(0.1, 10))
def test_invariances_shift_scale_and_swap(sides, shift, scale):
    b, c = (np.array(x) for x in sides)
    r = runs_rank_compare(b, c, 0.05)
    # a common shift and a positive scale of every level: the same ranks, the estimate and interval move with them
    t = runs_rank_compare(b * scale + shift, c * scale + shift, 0.05)
    assert (t.u, t.p_value) == (r.u, r.p_value)
    for x, y in ((t.log_ratio, r.log_ratio), (t.lo, r.lo), (t.hi, r.hi)):
        assert x == pytest.approx(y * scale, rel=1e-9, abs=1e-9) or (math.isinf(x) and x == y)
    # the sides swapped: the estimate and interval negate, the p-value stays
    s = runs_rank_compare(c, b, 0.05)
    assert s.p_value == pytest.approx(r.p_value)
    assert s.log_ratio == pytest.approx(-r.log_ratio) and s.lo == pytest.approx(-r.hi) and s.hi == pytest.approx(-r.lo)
    # a monotone transform of the levels keeps U
    assert runs_rank_compare(np.exp(3 * b), np.exp(3 * c), 0.05).u == r.u


@pytest.mark.parametrize("k,m,alpha", [(5, 5, 0.05), (8, 6, 0.01), (10, 10, 0.01)])
def test_interval_covers_a_heavy_tailed_shift_at_its_exact_rate(k, m, alpha):
    # run levels with Student t (2 df) tails, the current side 0.1 higher; the Moses interval's confidence is
    # 1 - 2 P(U <= c_a) exactly for any continuous distribution: the simulated rate must match it
    rng = np.random.default_rng(k * 100 + m)
    n = 3000
    cdf = _brute_cdf(k, m) if math.comb(k + m, k) <= 5000 else rank_u_cdf(k, m)
    ca = int(np.flatnonzero(cdf <= alpha / 2 + 1e-12)[-1])
    miss_rate = 2 * cdf[ca]
    assert miss_rate <= alpha
    miss = 0
    for _ in range(n):
        b = 0.02 * rng.standard_t(2, k)
        c = 0.1 + 0.02 * rng.standard_t(2, m)
        r = runs_rank_compare(b, c, alpha)
        miss += not (r.lo <= 0.1 <= r.hi)
    sd = math.sqrt(miss_rate * (1 - miss_rate) / n)
    assert abs(miss / n - miss_rate) <= 4 * sd + 1 / n


def _runs(rng, levels, n=120):
    """Runs of one benchmark (raw blocks): each run's rounds lognormal around its level."""
    return [run_from_timings({"b": 1e-3 * math.exp(lv) * rng.lognormal(0, 0.02, n)}, path=f"run{i}")
            for i, lv in enumerate(levels)]


def test_one_outlying_baseline_run_does_not_hide_a_slowdown():
    # ten baseline runs spread by 2%, one of them 40% slow (another job took the machine through that session),
    # and ten current runs 10% slower: by ranks the outlier is one run above the others, and the slowdown shows;
    # the t on the levels takes the outlier's square into the pooled variance and cannot tell
    rng = np.random.default_rng(3)
    caught = {"rank": 0, "t": 0}
    trials = 40
    for _ in range(trials):
        base = list(rng.normal(0, 0.02, 10))
        base[int(rng.integers(10))] = 0.4
        cur = list(math.log(1.1) + rng.normal(0, 0.02, 10))
        bs, cs = _runs(rng, base), _runs(rng, cur)
        row = compare_runs(bs, cs).rows[0]  # the default
        caught["rank"] += row.verdict == "regressed"
        assert row.baseline_runs == 10 and row.current_runs == 10
        assert row.ratio == pytest.approx(1.1, abs=0.03)  # Hodges-Lehmann: the outlier does not pull it
        assert row.run_test == "rank"
        caught["t"] += compare_runs(bs, cs, run_test="t").rows[0].verdict == "regressed"
    c = compare_runs(bs, cs)
    assert "Hodges-Lehmann" in format_table(c) and '"run_test": "rank"' in format_json(c)
    assert "Hodges-Lehmann" not in format_table(compare_runs(bs, cs, run_test="t"))
    assert caught["rank"] / trials >= 0.95
    assert caught["t"] / trials <= 0.5


def test_rank_comparison_keeps_false_alarms_below_alpha_and_falls_back_to_t():
    rng = np.random.default_rng(4)
    flagged = 0
    trials = 200
    for _ in range(trials):  # A/A with heavy-tailed run levels
        lv = 0.03 * rng.standard_t(2, 10)
        row = compare_runs(_runs(rng, lv[:5]), _runs(rng, lv[5:])).rows[0]
        flagged += row.verdict != "unchanged" and row.verdict != "too noisy to tell"
    assert flagged / trials <= 0.01
    # 5 baseline runs against 1 current run cannot reach alpha by ranks (2 / 6): the t decides, as run_test="t"
    bs, cs = _runs(rng, [0, 0.01, -0.01, 0.02, 0.0]), _runs(rng, [0.3])
    a, b = compare_runs(bs, cs).rows[0], compare_runs(bs, cs, run_test="t").rows[0]
    assert (a.verdict, a.ratio, a.ratio_lo, a.p_value) == (b.verdict, b.ratio, b.ratio_lo, b.p_value)
    assert a.run_test == "t" and compare_runs(bs[0], cs[0]).rows[0].run_test == ""
    with pytest.raises(InvalidInputError, match="run_test"):
        compare_runs(bs, cs, run_test="median")


def test_bench_repeats_fifteen_current_runs_by_default():
    # fifteen current runs: against a baseline of 10 runs the fewest that caught >= 95% of 10% slowdowns in every
    # draw measured (docs/perf.md); 5 baseline runs and 5 current runs are the fewest a side for the rank comparison
    from fastdrift.cli import _parser, bench_repeat
    assert bench_repeat(_parser().parse_args(["bench", "--baseline", "x"])) == 15
    assert rank_min_p(5, 5) < 0.01 <= rank_min_p(4, 5)
