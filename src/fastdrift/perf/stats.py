"""The statistics of a benchmark comparison: order-statistic confidence intervals, the
Mann-Whitney rank test, and the gate's decision.

Everything works on the logarithm of the timings, so a ratio of medians is a difference of
log-medians, and the confidence interval of a ratio is symmetric on that scale.

Median and p99 intervals are distribution-free: the standard error of a sample quantile ``p``
of ``n`` sorted values is estimated from the two order statistics ``n p -/+ 1.96 sqrt(n p (1 - p))``
(their spread is a 95% interval; McKean & Schrader 1984), taken on the log scale.  The
interval of a ratio combines the two sides' standard errors (independent samples).  A p99
interval needs those order statistics inside the sample: about 400 rounds or more.

A shared machine's speed drifts while a run is measured; sampling error alone would call that
drift a shift.  So the error of a median also comes from *batch means*: a run's rounds, in the
order they ran, are cut into consecutive chunks, and the spread of the chunks' medians bounds
the error from below (:func:`batch_var`, :func:`combined_se`).

The rank test is Mann-Whitney's U with the normal approximation, tie and continuity
corrections, two-sided (``scipy.stats.mannwhitneyu(cur, base, method="asymptotic")``).  Ranks
come from one linear merge: the two sorted samples become ``uint64`` keys (the bit pattern of
a positive float64 orders like the float; shifted left one bit to carry the side), and a
stable sort of two sorted runs is a merge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["SampleStats", "sample_stats", "summary_stats", "quantile", "mann_whitney", "decide", "batch_var",
           "combined_se", "t_quantile", "BATCHES",
           "z_two_sided", "Z95", "ALPHA", "POWER"]

Z95 = NormalDist().inv_cdf(0.975)
#: significance level of the rank test and confidence of the intervals (1 - ALPHA)
ALPHA = 0.01
#: power at which the minimum detectable effect is stated
POWER = 0.8
_ONE = np.uint64(1)


def z_two_sided(two_sided_alpha: float) -> float:
    """The normal quantile of a two-sided level: 2.576 at 0.01."""
    return NormalDist().inv_cdf(1 - two_sided_alpha / 2)


def _sf(z: float) -> float:
    """Upper tail of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def quantile(xs: np.ndarray, p: float) -> float:
    """``np.quantile(xs, p)`` (linear) of an already sorted sample."""
    h = (xs.size - 1) * p
    lo = int(math.floor(h))
    hi = min(lo + 1, xs.size - 1)
    return float(xs[lo] + (h - lo) * (xs[hi] - xs[lo]))


def _log_quantile_se(xs: np.ndarray, p: float) -> float:
    """Standard error of log(quantile p) from the order statistics around it; nan when they
    fall outside the sample (too few rounds for that quantile)."""
    n = xs.size
    half = Z95 * math.sqrt(n * p * (1 - p))
    lo, hi = int(math.floor(n * p - half)), int(math.ceil(n * p + half))
    if lo >= 0 and hi <= n - 1:
        return (math.log(xs[hi]) - math.log(xs[lo])) / (2 * Z95)
    if p != 0.5:
        return math.nan
    # a median of very few rounds: the normal-theory error, sigma from the MAD of the logs
    lx = np.log(xs)
    return 1.2533 * 1.4826 * float(np.median(np.abs(lx - np.median(lx)))) / math.sqrt(n)


def mann_whitney(bs: np.ndarray, cs: np.ndarray):
    """U statistic of ``cs`` against ``bs`` (both sorted, positive) and its two-sided p-value.

    Returns
    -------
    (float, float, float)
        U of the current sample, the two-sided asymptotic p-value (tie and continuity
        corrected), and U / (n m): the probability that a current round is slower than a
        baseline round (ties count half).
    """
    n, m = bs.size, cs.size
    keys = np.concatenate([bs.view(np.uint64) << _ONE, (cs.view(np.uint64) << _ONE) | _ONE])
    keys.sort(kind="stable")  # timsort: two sorted runs, one merge
    is_c = (keys & _ONE).astype(bool)
    v = keys >> _ONE
    N = n + m
    start = np.empty(N, bool)
    start[0] = True
    np.not_equal(v[1:], v[:-1], out=start[1:])
    if start.all():  # no ties: rank = position + 1
        rc = float(np.flatnonzero(is_c).sum() + m)
        tie = 0.0
    else:
        first = np.flatnonzero(start)
        length = np.diff(np.append(first, N))
        mid = first + (length + 1) / 2.0
        run = np.cumsum(start) - 1
        rc = float(mid[run[is_c]].sum())
        lf = length.astype(np.float64)
        tie = float((lf ** 3 - lf).sum())
    u = rc - m * (m + 1) / 2.0
    mu = n * m / 2.0
    var = n * m / 12.0 * ((N + 1) - tie / (N * (N - 1)))
    if var <= 0:
        return u, 1.0, u / (n * m)
    z = (max(u, n * m - u) - mu - 0.5) / math.sqrt(var)
    return u, min(1.0, 2 * _sf(z)), u / (n * m)


#: consecutive chunks a run's rounds are cut into for the batch-means error (time order)
BATCHES = 8


def batch_var(x_in_time_order) -> float:
    """Batch-means variance of a run's log-median: the rounds, in the order they ran, cut into
    up to :data:`BATCHES` consecutive chunks of at least 3; the variance of the chunks'
    log-medians over their number.  When the machine is steady it matches the order-statistic
    error; when its speed drifts during the run it grows with the drift.  nan below 4 chunks.
    """
    x = np.asarray(x_in_time_order, dtype=np.float64)
    k = min(BATCHES, x.size // 3)
    if k < 4:
        return math.nan
    m = x.size // k  # the last x.size % k rounds (fewer than k) are left out
    lm = np.log(np.median(x[:k * m].reshape(k, m), axis=1))
    return float(lm.var(ddof=1) / k)


def t_quantile(p: float, dof: float) -> float:
    """Student t quantile from the normal one (Cornish-Fisher, Abramowitz & Stegun 26.7.5;
    within 0.2% for 6 or more degrees of freedom)."""
    z = NormalDist().inv_cdf(p)
    v = float(dof)
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3))


def combined_se(stats: "SampleStats", alpha: float = ALPHA) -> float:
    """The standard error the decision uses: the larger of the order-statistic error and the
    batch-means error scaled to the same confidence (its t quantile over the normal one)."""
    if not math.isfinite(stats.batch_var) or stats.batch_dof < 1:
        return stats.se_log_median
    scale = t_quantile(1 - alpha / 2, stats.batch_dof) / z_two_sided(alpha)
    return max(stats.se_log_median, scale * math.sqrt(stats.batch_var))


@dataclass(frozen=True)
class SampleStats:
    """What the decision needs of one benchmark's two samples (times in seconds)."""

    n_base: int
    n_cur: int
    median_base: float
    median_cur: float
    p99_base: float
    p99_cur: float
    se_log_median: float  #: standard error of log(median ratio)
    se_log_p99: float  #: standard error of log(p99 ratio); nan when too few rounds
    p_value: float  #: two-sided rank-test p-value (a z-test on summaries: weaker)
    p_slower: float  #: P(a current round is slower than a baseline round); nan from summaries
    basis: str  #: "rounds" or "summary"
    p_min: float  #: the smallest p-value these sample sizes can give (a complete separation)
    batch_var: float = math.nan  #: batch-means variance of log(median ratio), both sides; nan unknown
    batch_dof: int = 0  #: its degrees of freedom


def sample_stats(bs: np.ndarray, cs: np.ndarray, batch_base: float = math.nan,
                 batch_cur: float = math.nan) -> SampleStats:
    """Statistics of two sorted samples of positive finite timings (at least 3 each), with
    each side's :func:`batch_var` when the rounds' order is known."""
    se_med = math.hypot(_log_quantile_se(bs, 0.5), _log_quantile_se(cs, 0.5))
    se_p99 = math.hypot(_log_quantile_se(bs, 0.99), _log_quantile_se(cs, 0.99))
    _, p, ps = mann_whitney(bs, cs)
    return SampleStats(bs.size, cs.size, quantile(bs, 0.5), quantile(cs, 0.5), quantile(bs, 0.99),
                       quantile(cs, 0.99), se_med, se_p99, p, ps, "rounds", _p_min(bs.size, cs.size),
                       batch_base + batch_cur, 2 * BATCHES - 2 if math.isfinite(batch_base + batch_cur) else 0)


def _p_min(n: int, m: int) -> float:
    """Two-sided p-value of U = n m (every current round slower than every baseline round)."""
    z = (n * m / 2.0 - 0.5) / math.sqrt(n * m * (n + m + 1) / 12.0)
    return min(1.0, 2 * _sf(z))


def summary_stats(base: dict, cur: dict) -> SampleStats:
    """Statistics from summaries only (``median``, ``iqr``, ``rounds`` of each side).

    The median's standard error is the normal theory one, ``1.2533 sigma / sqrt(n)`` with
    ``sigma = iqr / 1.349``, and the p-value a z-test of the log ratio: weaker than the rank
    test on every round, and blind to the shape (no p99, no tail).
    """
    def se(s):
        return 1.2533 * (s["iqr"] / 1.349) / math.sqrt(s["rounds"]) / s["median"]
    se_med = math.hypot(se(base), se(cur))
    d = math.log(cur["median"] / base["median"])
    p = 1.0 if se_med == 0 and d == 0 else (0.0 if se_med == 0 else min(1.0, 2 * _sf(abs(d) / se_med)))
    return SampleStats(int(base["rounds"]), int(cur["rounds"]), base["median"], cur["median"], math.nan,
                       math.nan, se_med, math.nan, p, math.nan, "summary", 0.0)


def decide(ratio, se_log, p_value, threshold: float, alpha: float = ALPHA, power: float = POWER, p_min=0.0):
    """The gate's verdict on median ratios (vectorised over benchmarks).

    Parameters
    ----------
    ratio, se_log, p_value : array_like
        Median ratio (current / baseline), standard error of its log, rank-test p-value.
    p_min : array_like, optional
        The smallest p-value the sample sizes allow; at or above ``alpha`` nothing can be
        detected (the minimum detectable effect is infinite).
    threshold : float
        ``--max-regression`` as a fraction (0.05 for 5%).

    Returns
    -------
    dict of numpy.ndarray
        ``verdict`` (``regressed``, ``improved``, ``unchanged``, ``too noisy to tell``),
        ``severity`` (``critical``, ``warning`` or ``""``), ``lo``/``hi`` (the ``1 - alpha``
        interval of the ratio) and ``mde`` (the slowdown detected with probability ``power``).

    Notes
    -----
    A shift counts only when the rank test rejects at ``alpha`` *and* the interval of the
    ratio excludes 1 on the same side: noise alone rarely passes both.  A significant
    slowdown is then a *critical* regression when the whole interval lies beyond
    ``1 + threshold``, a *warning* when only the estimate does, and ``unchanged`` (a real but
    allowed shift) otherwise; improvements mirror it below ``1 / (1 + threshold)``.  With no
    significant shift the verdict is ``too noisy to tell`` when the data could miss a slowdown
    of twice the threshold (the minimum detectable effect is larger), ``unchanged`` otherwise.
    """
    ratio = np.asarray(ratio, float)
    se = np.asarray(se_log, float)
    p = np.asarray(p_value, float)
    za, zp = z_two_sided(alpha), NormalDist().inv_cdf(power)
    lr = np.log(ratio)
    with np.errstate(invalid="ignore"):
        lo, hi = np.exp(lr - za * se), np.exp(lr + za * se)
        lt = math.log1p(threshold)
        # the estimate must clear the threshold and the interval 1: the larger of the two
        # distances, plus zp standard errors for the power
        mde = np.where(np.asarray(p_min, float) < alpha, np.expm1(np.maximum(lt, za * se) + zp * se), np.inf)
        sig = p < alpha
        slower = sig & (lo > 1) & (lr > 0)
        faster = sig & (hi < 1) & (lr < 0)
        critical = slower & (lo > 1 + threshold)
        warning = slower & ~critical & (lr > lt)
        improved = faster & (lr < -lt)
        noisy = ~(slower | faster) & ~(mde <= 2 * threshold)
    verdict = np.where(critical | warning, "regressed",
                       np.where(improved, "improved", np.where(noisy, "too noisy to tell", "unchanged")))
    severity = np.where(critical, "critical", np.where(warning, "warning", ""))
    return {"verdict": verdict, "severity": severity, "lo": lo, "hi": hi, "mde": mde}
