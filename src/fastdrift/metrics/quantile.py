"""Quantile-based comparisons of two :class:`~fastdrift.TDigest` sketches.

* :func:`ks_2samp` - two-sample Kolmogorov-Smirnov D = sup |F_ref - F_cur|
  and its p-value, from the exact null distribution when neither digest holds
  more than 10,000 values, else the asymptotic Kolmogorov one
  ``Q_KS(sqrt(m n / (m + n)) * D)`` (as ``scipy.stats.ks_2samp`` chooses,
  ``method="auto"``; :func:`ks_pvalue`).  The digests' CDFs
  are evaluated at every anchor (centroid means, min, max) of both, just below
  each, and halfway between consecutive ones.  Where a digest is exact
  (weight-one centroids, pure tie blocks) its CDF is the empirical step CDF,
  so two exact digests give scipy's D.  Elsewhere a digest knows its CDF at
  the knots of its quantile function only, and the supremum of the empirical
  difference between knots exceeds the supremum over them: a random walk of
  variance ``sigma**2`` per unit monitored at steps ``dt`` peaks, on average,
  ``0.5826 sigma sqrt(dt)`` above its grid maximum (Broadie, Glasserman & Kou
  1997).  D is the maximum over the points of ``|F_ref - F_cur| + 0.5826
  sqrt(g_ref / n_ref**2 + g_cur / n_cur**2)``, ``g`` the gap in ranks between
  the two knots around the point (0 between exact knots): without that term D
  is biased low by about ``0.5826 sqrt(g / n**2)``.
* :func:`wasserstein` - W1 = integral over u in [0, 1] of ``|G_ref(u) -
  G_cur(u)|``, ``G(u)`` the value of the unit of rank ``r = u n``: a
  weight-one centroid's unit holds its exact value, the other units follow
  the digest's quantile function ``Q(r - 1/2)``.  Both sides' breakpoints
  (centroid ends, heavy centroids' mid-ranks) are merged on the common rank
  scale ``n_ref n_cur`` and each interval integrated with 4-point
  Gauss-Legendre rules on 4 parts.  Two exact digests give
  ``scipy.stats.wasserstein_distance`` of their values (a tie block's
  quantile is flat at its value).
* :func:`quantile_shift` - ``Q_cur(qs) - Q_ref(qs)``.

docs/conventions.md states the errors of D, its p-value and W1 against scipy
on the raw samples, measured by ``bench/bench_quantile_metrics.py``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import IncompatibleSketchError, InvalidInputError
from ..sketches.tdigest import TDigest

__all__ = ["KSResult", "ks_2samp", "ks_pvalue", "wasserstein", "quantile_shift"]


class KSResult(NamedTuple):
    statistic: float
    pvalue: float


def _digest(x, what):
    """A copy of ``x``: one consistent state for all the reads, whatever another thread writes."""
    if not isinstance(x, TDigest):
        raise IncompatibleSketchError(f"{what} must be a TDigest, got {type(x).__name__}")
    x = x.copy()
    if x.n == 0:
        raise InvalidInputError(f"{what} digest is empty")
    return x


#: Largest sample size for which ``method="auto"`` computes the exact p-value (scipy's rule).
KS_EXACT_MAX_N = 10_000


def ks_pvalue(d: float, n_ref: int, n_cur: int, method: str = "auto") -> float:
    """Two-sided p-value of a two-sample KS statistic ``d`` of samples of ``n_ref``, ``n_cur`` values.

    ``method``: ``"exact"`` - the exact null distribution (the share of the lattice paths
    of the two samples' merge order that reach a gap of ``d``); ``"asymp"`` - the asymptotic
    Kolmogorov distribution at ``sqrt(n_ref n_cur / (n_ref + n_cur)) d``; ``"auto"`` (default)
    - exact when neither sample has more than :data:`KS_EXACT_MAX_N` values, as
    ``scipy.stats.ks_2samp`` decides.
    """
    if method not in ("auto", "exact", "asymp"):
        raise InvalidInputError(f"method must be 'auto', 'exact' or 'asymp', got {method!r}")
    if not 0.0 <= d <= 1.0 or n_ref < 1 or n_cur < 1:
        raise InvalidInputError(f"a KS p-value needs 0 <= d <= 1 and sample sizes >= 1, got d={d!r}, "
                                f"sizes {n_ref!r}, {n_cur!r}")
    if method == "exact" or (method == "auto" and max(n_ref, n_cur) <= KS_EXACT_MAX_N):
        return _ks_exact_pvalue(d, int(n_ref), int(n_cur))
    en = n_ref * n_cur / (n_ref + n_cur)
    lam = math.sqrt(en) * d
    if lam <= 0:
        return 1.0
    if lam < 1.18:  # the theta-function form converges faster here
        y = math.exp(-math.pi ** 2 / (8 * lam * lam))
        s = sum(y ** ((2 * k - 1) ** 2) for k in range(1, 8))
        return float(min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / lam * s)))
    s = sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 101))
    return float(min(1.0, max(0.0, 2.0 * s)))


def _ks_exact_pvalue(d: float, m: int, n: int) -> float:
    """P(D >= d) under the null: the share of the C(m + n, m) merge orders (lattice paths from
    (0, 0) to (m, n), a step per value) that leave the band ``|i n - j m| < h gcd(m, n)``,
    ``h = round(d lcm(m, n))``, counted at the first point outside: a sum of positive terms,
    accurate however small p is.  O(m n) time, O(m + n) memory."""
    g = math.gcd(m, n)
    h = int(round(d * (m // g) * n))
    if h <= 0:
        return 1.0
    lg = np.array([math.lgamma(k + 1.0) for k in range(m + n + 1)])
    # leaving on the other side is leaving above with the samples' roles swapped
    return float(min(1.0, _ks_exits_above(m, n, h * g, lg) + _ks_exits_above(n, m, h * g, lg)))


_LN2 = math.log(2.0)
_RESCALE = 2.0 ** 600


def _ks_exits_above(r: int, c: int, bound: int, lg: np.ndarray) -> float:
    """Share of the lattice paths from (0, 0) to (r, c) whose first point outside
    ``|i c - j r| < bound`` has ``j r - i c >= bound``.  Row ``i`` of the paths that stayed
    inside is the cumulative sum of row ``i - 1`` over its band, largest at the top of the band,
    where the paths leave: rescaled there by a power of two (exactly), the rows keep that count
    to rounding."""
    log_all = lg[r + c] - lg[r] - lg[c]

    def onward(i, j):  # log of (paths from (i, j) to (r, c)) / (paths from (0, 0) to (r, c))
        return lg[r - i + c - j] - lg[r - i] - lg[c - j] - log_all

    p = 0.0
    hi = min(c, (bound - 1) // r)
    a = np.zeros(c + 1)
    a[:hi + 1] = 1.0  # paths inside to (i, j), j in the band [lo, hi], times 2**scale
    scale = 0
    if hi < c:
        p += math.exp(onward(0, hi + 1))
    for i in range(1, r + 1):
        # the band only moves up: the row sums the one before it from its new lo on
        lo, hi_new = max(0, (i * c - bound) // r + 1), min(c, (i * c + bound - 1) // r)
        if lo > hi:  # every path has left the band
            break
        a[hi + 1:hi_new + 1] = 0.0
        hi = hi_new
        band = a[lo:hi + 1]
        np.add.accumulate(band, out=band)
        top = band[-1]
        if hi < c:  # a step right, out above the band
            p += math.exp(math.log(top) + scale * _LN2 + onward(i, hi + 1))
        if top > _RESCALE:  # by a power of two: exact
            e = math.frexp(top)[1]
            np.ldexp(band, -e, out=band)
            scale += e
    return p


#: -zeta(1/2) / sqrt(2 pi): a random walk's maximum exceeds its maximum over a grid of step
#: ``dt`` by ``_GRID_MAX * sigma * sqrt(dt)`` on average (Broadie, Glasserman & Kou 1997).
_GRID_MAX = 0.5825971579390106


def _anchors(t):
    m, _ = t.centroids()
    return np.concatenate([m, t._s.flts]) if t.finite_count else m  # flts: the finite min, max


def _unseen_variance(t, f):
    """Variance, in CDF units squared, of a digest's empirical CDF about its estimate ``f``
    between the two knots of the quantile function around ``f``: ``gap / n**2`` for a gap of
    ``gap`` ranks, 0 between exact knots (weight-one centroids, pure tie blocks, min, max)."""
    m, w = t.centroids()
    total = float(t.n)
    if m.size == 0:
        return np.zeros_like(f)
    nf = float(w.sum())
    one = w == 1
    pure = np.zeros_like(one)
    pure[1:-1] = one[:-2] & one[2:] & (m[:-2] == m[1:-1]) & (m[2:] == m[1:-1])
    knots = np.concatenate([[0.0], np.cumsum(w) - (w + 1) / 2, [nf - 1]])
    exact = np.concatenate([[True], one | pure, [True]])
    h = f * total - t.neginf_count - 1  # f = (rank + 1) / n
    j = np.clip(np.searchsorted(knots, h, side="right") - 1, 0, knots.size - 2)
    gap = np.where(exact[j] & exact[j + 1], 0.0, knots[j + 1] - knots[j])
    return gap / (total * total)


def ks_2samp(ref, cur, method: str = "auto") -> KSResult:
    """KS D between two digests and its p-value (see the module docstring; ``method`` as in
    :func:`ks_pvalue`)."""
    ref, cur = _digest(ref, "ref"), _digest(cur, "cur")
    x = np.unique(np.concatenate([_anchors(ref), _anchors(cur)]))
    if x.size == 0:
        d = float(abs(ref.cdf(0.0) - cur.cdf(0.0)))  # only infinities: the CDFs are flat in between
    else:
        # both just below and at each anchor (the ECDFs are right-continuous),
        # and halfway between anchors (the CDFs are cubic there)
        xs = np.concatenate([x, np.nextafter(x, -np.inf), x[:-1] + 0.5 * np.diff(x)])
        fr, fc = ref.cdf(xs), cur.cdf(xs)
        seen = np.abs(fr - fc)
        # the digests see their CDFs at knots only: add the expected excess of the sup of
        # the empirical difference between knots (0 where both digests are exact)
        excess = _GRID_MAX * np.sqrt(_unseen_variance(ref, fr) + _unseen_variance(cur, fc))
        d = float(min(1.0, np.max(seen + excess)))
    return KSResult(d, ks_pvalue(d, ref.n, cur.n, method))


#: Gauss-Legendre nodes and weights on (0, 1), used on _W1_SUB equal parts of each interval.
_GL_T, _GL_W = np.polynomial.legendre.leggauss(4)
_GL_T, _GL_W = (_GL_T + 1.0) / 2.0, _GL_W / 2.0
_W1_SUB = 4


class _Ranks:
    """A digest's finite values as a function of rank: unit ``i`` of rank
    (``[i, i + 1)``) holds the value ``G(r)``, ``r`` in it (see :func:`wasserstein`)."""

    def __init__(self, t):
        self.t = t
        self.m, self.w = t.centroids()
        self.ends = np.cumsum(self.w)
        self.n = float(self.ends[-1])

    def breakpoints(self):
        """Rank positions where G may jump or change its cubic: centroid ends and heavy mid-ranks."""
        heavy = self.w > 1
        return np.concatenate([[0.0], self.ends, self.ends[heavy] - self.w[heavy] / 2])

    def values(self, r):
        i = np.minimum(np.searchsorted(self.ends, r, side="right"), self.m.size - 1)
        out = self.m[i]  # a weight-one centroid is the exact value of its unit
        heavy = self.w[i] > 1
        if heavy.any():
            h = np.clip(r[heavy] - 0.5, 0.0, self.n - 1.0)
            out[heavy] = self.t.quantile(h / (self.n - 1.0))
        return out


def wasserstein(ref, cur) -> float:
    """W1 distance between the distributions two digests summarise.

    Equal to ``scipy.stats.wasserstein_distance`` of the summarised values
    when both digests hold them exactly (see the module docstring).  ``inf``
    when either holds infinite values."""
    ref, cur = _digest(ref, "ref"), _digest(cur, "cur")
    if ref.posinf_count or ref.neginf_count or cur.posinf_count or cur.neginf_count:
        return math.inf
    a, b = _Ranks(ref), _Ranks(cur)
    # common rank scale n_a * n_b: both sides' breakpoints are integers there
    x = np.unique(np.concatenate([a.breakpoints() * b.n, b.breakpoints() * a.n]))
    lo, dx = x[:-1], np.diff(x)
    t = ((np.arange(_W1_SUB)[:, None] + _GL_T).ravel() / _W1_SUB)
    wt = np.tile(_GL_W, _W1_SUB) / _W1_SUB
    nodes = (lo[:, None] + dx[:, None] * t).ravel()
    gap = np.abs(a.values(nodes / b.n) - b.values(nodes / a.n)).reshape(dx.size, t.size)
    return float((gap @ wt) @ dx / (a.n * b.n))


def quantile_shift(ref, cur, qs) -> np.ndarray:
    """``cur.quantile(qs) - ref.quantile(qs)`` (an array shaped like ``qs``)."""
    ref, cur = _digest(ref, "ref"), _digest(cur, "cur")
    return np.asarray(cur.quantile(qs)) - np.asarray(ref.quantile(qs))
