"""The statistics of a benchmark comparison: probe-normalized block comparisons, order-statistic
confidence intervals, the Mann-Whitney rank test, the comparison of several runs a side (by
the ranks of their levels, or by a t), and the gate's decision.

Everything works on the logarithm of the timings, so a ratio of medians is a difference of
log-medians, and the confidence interval of a ratio is symmetric on that scale.

Median and p99 intervals are distribution-free: the standard error of a sample quantile ``p``
of ``n`` sorted values is estimated from the two order statistics ``n p -/+ 1.96 sqrt(n p (1 - p))``
(their spread is a 95% interval; McKean & Schrader 1984), taken on the log scale.  The
interval of a ratio combines the two sides' standard errors (independent samples).  A p99
interval needs those order statistics inside the sample: about 400 rounds or more.

A shared machine's speed drifts while a run is measured and between runs; sampling error alone
would call that drift a shift.  So a run's rounds, in the order they ran, are cut into blocks
of consecutive rounds (:func:`block_log_medians`), each block's log-median is divided by the
machine-speed probe's level during that block (:func:`probe_block_levels`,
:mod:`fastdrift.perf.probe`) when both runs carry probes, and the blocks are the observations:
the ratio's error is their between-block variance (:func:`block_compare`), its interval a
Student t one.  The decision (:func:`decide`) adds a practical margin.

The rank test is Mann-Whitney's U with the normal approximation, tie and continuity
corrections, two-sided (``scipy.stats.mannwhitneyu(cur, base, method="asymptotic")``).  Ranks
come from one linear merge: the two sorted samples become ``uint64`` keys (the bit pattern of
a positive float64 orders like the float; shifted left one bit to carry the side), and a
stable sort of two sorted runs is a merge.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Optional

import numpy as np

__all__ = ["SampleStats", "sample_stats", "summary_stats", "quantile", "mann_whitney", "decide",
           "t_quantile", "MARGIN_FRACTION", "BLOCKS", "MIN_BLOCKS", "block_bounds", "block_log_medians",
           "probe_block_levels", "t_sf", "BlockStats", "block_compare",
           "z_two_sided", "Z95", "ALPHA", "POWER", "RunsStats", "runs_compare", "run_levels", "log_quantile_se",
           "rank_u_cdf", "rank_min_p", "RankRunsStats", "runs_rank_compare"]

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


def log_quantile_se(xs: np.ndarray, p: float) -> float:
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


#: blocks of consecutive rounds a run is cut into for the between-block error (time order)
BLOCKS = 10
#: fewest blocks (of at least 3 rounds) a side needs for the between-block error
MIN_BLOCKS = 4


def block_bounds(n: int, k: int) -> np.ndarray:
    """Round indices where the ``k`` blocks of ``n`` rounds start, then ``n``."""
    return (np.arange(k + 1) * n) // k


def block_log_medians(x_in_time_order) -> Optional[np.ndarray]:
    """Log-median of each block of consecutive rounds: up to :data:`BLOCKS` blocks of at least
    3 rounds; None below :data:`MIN_BLOCKS` blocks."""
    x = np.asarray(x_in_time_order, dtype=np.float64)
    k = min(BLOCKS, x.size // 3)
    if k < MIN_BLOCKS:
        return None
    if x.size % k == 0:
        return np.log(np.median(x.reshape(k, -1), axis=1))
    b = block_bounds(x.size, k)
    return np.log(np.array([np.median(x[b[j]:b[j + 1]]) for j in range(k)]))


def probe_block_levels(probe: np.ndarray, at: np.ndarray, n: int, k: int) -> np.ndarray:
    """One probe's log level during each of the ``k`` blocks of ``n`` rounds: the log-median of
    its times taken from just before the block's first round to just after its last.  A block
    with no probe of its own takes the level interpolated at its middle."""
    lp = np.log(probe)
    b = block_bounds(n, k)
    lo = np.searchsorted(at, b[:-1], "left")
    hi = np.searchsorted(at, b[1:], "right")
    out = np.empty(k)
    for j in range(k):
        if hi[j] > lo[j]:
            out[j] = np.median(lp[lo[j]:hi[j]])
        else:
            out[j] = np.interp(0.5 * (b[j] + b[j + 1]), at, lp)
    return out


def _betai(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) by its continued fraction (Lentz; Numerical
    Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betai(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return math.exp(lbt) * h / a


def t_sf(t: float, dof: float) -> float:
    """Upper tail of Student's t at ``t >= 0``, any real degrees of freedom."""
    return 0.5 * _betai(dof / 2, 0.5, dof / (dof + t * t))


def _two_sided_p(lr: float, se: float, dof: float) -> float:
    """Two-sided p-value of a log-ratio ``lr`` with standard error ``se`` (t, ``dof``); with no
    error, 1 when there is no difference and 0 when there is one."""
    if se > 0:
        return min(1.0, 2 * t_sf(abs(lr) / se, dof))
    return 1.0 if lr == 0 else 0.0


@dataclass(frozen=True)
class BlockStats:
    """The comparison of two runs' blocks (see :func:`block_compare`)."""

    log_ratio: float  #: log of the (normalized) ratio current / baseline
    se: float  #: its standard error from the between-block variance of both sides
    dof: float  #: Welch-Satterthwaite degrees of freedom
    p_value: float  #: two-sided t-test of the blocks
    probe_log_ratio: float  #: log of the machine's slowness ratio current / baseline; nan when raw
    normalized: bool
    weight: float = math.nan  #: share of the memory probe in the machine's slowness (the rest: the compute probe)
    #: an interval of the log ratio not of the form ``log_ratio -/+ q se`` (the rank comparison of runs); nan otherwise
    lo: float = math.nan
    hi: float = math.nan


def block_compare(bb: np.ndarray, bc: np.ndarray, pb=None, pc=None) -> BlockStats:
    """Compare two runs by their blocks' log-medians ``bb``, ``bc``; when both runs carry probes,
    ``pb`` and ``pc`` are each a pair (memory probe, compute probe) of block levels
    (:func:`probe_block_levels`).

    Raw, each block's log-median is one observation: the run's value is their mean and its
    error their variance over their number, so drift within a run widens the interval and the
    rounds inside a block are not treated as independent.

    Normalized, each block is divided by the machine's slowness during it, ``w`` parts the
    memory probe and ``1 - w`` the compute probe (log scale: ``y - c - w (m - c)``): a kernel
    bound by memory bandwidth follows the first, one bound by instructions the second.  ``w``
    is the within-run regression slope of ``y - c`` on ``m - c`` over both runs' blocks (each
    run centred, so a difference between the runs cannot move it), clipped to [0, 1]; its
    uncertainty is added to the error.  The probes' between-run change is never fitted: it is
    divided out, and whatever the benchmark does beyond it is the code's change.
    """
    norm = pb is not None and pc is not None
    w = math.nan
    extra = 0.0
    if norm:
        (mb, cb), (mc, cc) = pb, pc
        xb, xc = mb - cb, mc - cc
        yb, yc = bb - cb, bc - cc
        x = np.concatenate([xb - xb.mean(), xc - xc.mean()])
        y = np.concatenate([yb - yb.mean(), yc - yc.mean()])
        sxx = float(x @ x)
        w = min(1.0, max(0.0, float(x @ y) / sxx)) if sxx > 0 else 0.5
        db, dc = yb - w * xb, yc - w * xc
        if sxx > 0:
            resid = y - w * x
            s2 = float(resid @ resid) / max(1, x.size - 3)
            extra = (xc.mean() - xb.mean()) ** 2 * s2 / sxx
    else:
        db, dc = bb, bc
    vb, vc = db.var(ddof=1) / db.size, dc.var(ddof=1) / dc.size
    v = vb + vc + extra
    dof = v * v / (vb * vb / (db.size - 1) + vc * vc / (dc.size - 1)) if vb + vc > 0 else float(db.size + dc.size - 2)
    if norm:
        dof = max(1.0, min(dof, db.size + dc.size - 3))  # the slope took one
    lr = float(dc.mean() - db.mean())
    se = math.sqrt(v)
    p = _two_sided_p(lr, se, dof)
    plr = float((w * (mc.mean() - mb.mean()) + (1 - w) * (cc.mean() - cb.mean()))) if norm else math.nan
    return BlockStats(lr, se, dof, p, plr, norm, w)


@functools.lru_cache(maxsize=256)
def _t_quantile_exact(p: float, v: float) -> float:
    """The t quantile by bisection of :func:`t_sf` (cached: a baseline of k runs asks for the same one per benchmark)."""
    lo, hi = 0.0, 1.0
    while t_sf(hi, v) > 1 - p:
        hi *= 2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_sf(mid, v) > 1 - p else (lo, mid)
    return 0.5 * (lo + hi)


def t_quantile(p: float, dof: float) -> float:
    """Student t quantile from the normal one (Cornish-Fisher, Abramowitz & Stegun 26.7.5;
    within 0.2% for 6 or more degrees of freedom); below 6, the exact one by bisection of
    :func:`t_sf` (the expansion is 10% off at 2)."""
    z = NormalDist().inv_cdf(p)
    v = float(dof)
    if v < 6 and 0.5 < p < 1:
        return _t_quantile_exact(p, v)
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3))


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


def sample_stats(bs: np.ndarray, cs: np.ndarray) -> SampleStats:
    """Statistics of two sorted samples of positive finite timings (at least 3 each)."""
    se_med = math.hypot(log_quantile_se(bs, 0.5), log_quantile_se(cs, 0.5))
    se_p99 = math.hypot(log_quantile_se(bs, 0.99), log_quantile_se(cs, 0.99))
    _, p, ps = mann_whitney(bs, cs)
    return SampleStats(bs.size, cs.size, quantile(bs, 0.5), quantile(cs, 0.5), quantile(bs, 0.99),
                       quantile(cs, 0.99), se_med, se_p99, p, ps, "rounds", _p_min(bs.size, cs.size))


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


#: the share of ``--max-regression`` the interval's lower end must clear for ``regressed``
MARGIN_FRACTION = 0.5


def decide(log_ratio, se_log, q, threshold: float, alpha: float = ALPHA, power: float = POWER, p_min=0.0,
           lo_log=None, hi_log=None):
    """The gate's verdict on log ratios current / baseline (vectorised over benchmarks).

    Parameters
    ----------
    log_ratio, se_log : array_like
        Log of the ratio (probe-normalized or raw) and its standard error.
    q : array_like
        The interval's quantile: Student's t at the error's degrees of freedom (or the normal
        one), at ``1 - alpha / 2``.
    threshold : float
        ``--max-regression`` as a fraction (0.05 for 5%).
    p_min : array_like, optional
        The smallest rank-test p-value the round counts allow; at or above ``alpha`` nothing
        can be detected (the minimum detectable effect is infinite).
    lo_log, hi_log : array_like, optional
        The interval of the log ratio where it is not ``log_ratio -/+ q se_log`` (nan: that
        one); ``q se_log`` is then its half-width for the minimum detectable effect.

    Returns
    -------
    dict of numpy.ndarray
        ``verdict`` (``regressed``, ``improved``, ``unchanged``, ``too noisy to tell``),
        ``severity`` (``critical``, ``warning`` or ``""``), ``lo``/``hi`` (the ``1 - alpha``
        interval of the ratio) and ``mde`` (the slowdown detected with probability ``power``).

    Notes
    -----
    ``regressed`` needs the estimate beyond ``1 + threshold`` *and* the whole interval beyond
    ``1 + MARGIN_FRACTION * threshold``: more than noise, and more than a slowdown too small
    to matter.  The margin also absorbs what no error estimate of two runs can see (a speed
    change of the machine the probe does not share).  It is ``critical`` when the whole
    interval lies beyond ``1 + threshold``, a ``warning`` otherwise; improvements mirror it.
    Anything else is ``unchanged`` when the data would have caught a slowdown of twice the
    threshold (the minimum detectable effect is smaller), ``too noisy to tell`` otherwise.
    """
    lr = np.asarray(log_ratio, float)
    se = np.asarray(se_log, float)
    q = np.asarray(q, float)
    zp = NormalDist().inv_cdf(power)
    lt, lm = math.log1p(threshold), math.log1p(MARGIN_FRACTION * threshold)
    with np.errstate(invalid="ignore"):
        lo, hi = lr - q * se, lr + q * se
        if lo_log is not None:
            given = ~np.isnan(np.asarray(lo_log, float))
            lo = np.where(given, np.asarray(lo_log, float), lo)
            hi = np.where(given, np.asarray(hi_log, float), hi)
        mde = np.where(np.asarray(p_min, float) < alpha, np.expm1(np.maximum(lt, lm + q * se) + zp * se), np.inf)
        slower = (lr > lt) & (lo > lm)
        faster = (lr < -lt) & (hi < -lm)
        critical = slower & (lo > lt)
        noisy = ~(slower | faster) & ~(mde <= 2 * threshold)
    verdict = np.where(slower, "regressed",
                       np.where(faster, "improved", np.where(noisy, "too noisy to tell", "unchanged")))
    severity = np.where(critical, "critical", np.where(slower, "warning", ""))
    return {"verdict": verdict, "severity": severity, "lo": np.exp(lo), "hi": np.exp(hi), "mde": mde}


@dataclass(frozen=True)
class RunsStats:
    """Current run(s) against several baseline runs (see :func:`runs_compare`)."""

    log_ratio: float  #: mean of the current runs' levels minus the mean of the baseline runs' levels
    se: float  #: its error: the run-to-run variance and the runs' own errors, over each side's runs
    dof: float  #: Student t degrees of freedom: all runs less two
    p_value: float  #: two-sided t-test of the current run against the baseline runs' distribution
    between_sd: float  #: estimated run-to-run standard deviation of a run's level (log scale)


def runs_compare(levels, errors, cur_level, cur_error) -> RunsStats:
    """The current run(s)' level against the distribution of the baseline runs' levels.

    Each run's level (a run's mean normalized block, log scale) is ``mu + b + e``: ``b`` the
    machine's run-to-run change that no error within a run can see (variance ``tau^2``), ``e``
    the run's own error (its between-block variance over its blocks, ``errors ** 2``).

    With ``k`` baseline runs and ``m`` current runs (``cur_level``, ``cur_error``: a number or
    ``m`` of them), ``k + m >= 3``: the levels' variance around their side's mean, pooled over
    both sides (``k + m - 2`` degrees of freedom), estimates ``tau^2`` plus the runs' mean
    squared error, so ``tau^2 = max(0, s_p^2 - mean(errors ** 2))`` (method of moments, the
    errors averaged with the same weights).  The difference of the two sides' mean levels has
    the variance ``(tau^2 + mean(e_b^2)) / k + (tau^2 + mean(e_c^2)) / m`` -- the run-to-run
    change averages out over the runs of *both* sides -- and the interval uses Student's t with
    ``k + m - 2`` degrees of freedom (a two-sample t on the runs' levels, variance pooled).
    With one current run this is the prediction interval of a new run: variance
    ``tau^2 + cur_error^2 + s_b^2 / k`` on ``k - 1`` degrees of freedom (the classic
    ``s sqrt(1 + 1/k)`` when the errors are equal).
    """
    v = np.asarray(levels, float)
    e2 = np.asarray(errors, float) ** 2
    c = np.atleast_1d(np.asarray(cur_level, float))
    c2 = np.atleast_1d(np.asarray(cur_error, float)) ** 2
    k, m = v.size, c.size
    dof = float(k + m - 2)
    ss = float(((v - v.mean()) ** 2).sum() + ((c - c.mean()) ** 2).sum())
    s2 = ss / dof
    err2 = float(((k - 1) * e2.mean() + (m - 1) * c2.mean()) / dof)
    tau2 = max(0.0, s2 - err2)
    # the baseline mean's variance: its runs' spread itself (unbiased) when it alone measures tau
    var_b = float(v.var(ddof=1)) / k if m == 1 else (tau2 + float(e2.mean())) / k
    var = var_b + (tau2 + float(c2.mean())) / m
    lr = float(c.mean() - v.mean())
    se = math.sqrt(var)
    p = _two_sided_p(lr, se, dof)
    return RunsStats(lr, se, dof, p, math.sqrt(tau2))


def run_levels(blocks, probes=None):
    """Each run's level and its error from its blocks: the mean of its (normalized) blocks and
    the between-block standard deviation over the square root of their number.

    ``blocks`` is a list of the runs' block log-medians; ``probes``, when every run carries them,
    a list of (memory, compute) block levels.  The memory weight ``w`` is fitted as in
    :func:`block_compare`, within each run (centred) over all the runs, so it cannot absorb a
    difference between the runs.  Returns (levels, errors, w, probe levels).
    """
    if probes is None:
        lv = np.array([float(b.mean()) for b in blocks])
        er = np.array([float(b.std(ddof=1)) / math.sqrt(b.size) for b in blocks])
        return lv, er, math.nan, None
    xs = [m - c for m, c in probes]
    ys = [b - c for b, (m, c) in zip(blocks, probes)]
    x = np.concatenate([a - a.mean() for a in xs])
    y = np.concatenate([a - a.mean() for a in ys])
    sxx = float(x @ x)
    w = min(1.0, max(0.0, float(x @ y) / sxx)) if sxx > 0 else 0.5
    d = [yy - w * xx for xx, yy in zip(xs, ys)]
    lv = np.array([float(a.mean()) for a in d])
    er = np.array([float(a.std(ddof=1)) / math.sqrt(a.size) for a in d])
    machine = np.array([float(w * m.mean() + (1 - w) * c.mean()) for m, c in probes])
    return lv, er, w, machine


@functools.lru_cache(maxsize=256)
def rank_u_cdf(k: int, m: int) -> np.ndarray:
    """Exact null distribution of the Mann-Whitney U of ``m`` values against ``k`` (no ties):
    ``P(U <= u)`` for ``u = 0 .. k m``.

    The counts of U are the coefficients of the Gaussian binomial ``[k + m choose k]_q``, built
    as ``prod_i (1 - q^(m + i)) / (1 - q^i)``: each factor keeps nonnegative integer
    coefficients, a division by ``1 - q^i`` is a running sum with stride ``i``.
    """
    c = np.zeros(k * m + 1)
    c[0] = 1.0
    for i in range(1, min(k, m) + 1):
        a = max(k, m) + i
        c[a:] -= c[:c.size - a].copy()
        for s in range(i, c.size):  # a running sum with stride i (sequential: each term uses the last)
            c[s] += c[s - i]
    return np.cumsum(c) / c.sum()


def rank_min_p(k: int, m: int) -> float:
    """The smallest two-sided exact Mann-Whitney p-value of ``k`` against ``m`` runs:
    ``2 / C(k + m, k)`` (complete separation)."""
    return min(1.0, 2.0 / math.comb(k + m, k))


@dataclass(frozen=True)
class RankRunsStats:
    """Current runs against baseline runs by ranks (see :func:`runs_rank_compare`)."""

    log_ratio: float  #: Hodges-Lehmann shift: the median of every current level less every baseline level
    lo: float  #: the distribution-free ``1 - alpha`` interval of the shift (log scale); -inf when out of reach
    hi: float
    p_value: float  #: two-sided exact Mann-Whitney p-value of the levels
    u: float  #: U: pairs (baseline, current) in which the current level is higher (ties count half)
    p_min: float  #: the smallest p-value ``k`` and ``m`` runs can give


def runs_rank_compare(levels, cur_levels, alpha: float = ALPHA) -> RankRunsStats:
    """The current runs' levels against the baseline runs' levels by their ranks.

    Only the order of the ``k + m`` run levels counts, so one run far off (the machine busy
    with another job through that session) moves the verdict no more than any run above the
    others does.  The shift is the Hodges-Lehmann estimate, the median of the ``k m``
    differences ``current - baseline``; its interval is Moses' distribution-free one, the
    differences ranked ``c_a + 1`` and ``k m - c_a`` where ``c_a`` is the largest ``u`` with
    ``P(U <= u) <= alpha / 2`` under the exact null distribution (:func:`rank_u_cdf`): a
    confidence of at least ``1 - alpha`` for any continuous distribution of the run levels
    whose sides differ by a shift.  The p-value is the exact two-sided Mann-Whitney one,
    ``scipy.stats.mannwhitneyu(cur, base, method="exact")`` (ties count half in U; the null
    distribution is the one without ties).  When ``k`` and ``m`` cannot reach ``alpha``
    (:func:`rank_min_p`), the interval is unbounded.
    """
    b = np.asarray(levels, float)
    c = np.asarray(cur_levels, float)
    k, m = b.size, c.size
    d = np.sort((c[None, :] - b[:, None]).ravel())
    hl = float(np.median(d))
    u = float((d > 0).sum() + 0.5 * (d == 0).sum())
    cdf = rank_u_cdf(k, m)
    top = max(u, k * m - u)  # the farther tail; P(U >= top) = P(U <= k m - top) by symmetry
    tail = float(cdf[int(math.floor(k * m - top))])
    p = min(1.0, 2.0 * tail)
    ok = np.flatnonzero(cdf <= alpha / 2 * (1 + 1e-12))
    if ok.size:
        ca = int(ok[-1])
        lo, hi = float(d[ca]), float(d[k * m - 1 - ca])
    else:
        lo, hi = -math.inf, math.inf
    return RankRunsStats(hl, lo, hi, p, u, rank_min_p(k, m))
