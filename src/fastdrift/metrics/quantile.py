"""Quantile-based comparisons of two :class:`~fastdrift.TDigest` sketches.

* :func:`ks_2samp` - two-sample Kolmogorov-Smirnov D = sup |F_ref - F_cur|,
  evaluated on the digests' CDFs at every anchor (centroid means, min, max)
  of both, just below each, and halfway between consecutive ones (the CDFs
  are monotone cubics between anchors, so the supremum is at or near one of
  these points), with the asymptotic p-value ``Q_KS(sqrt(m n / (m + n)) *
  D)`` of the Kolmogorov distribution.
* :func:`wasserstein` - W1 = integral over q of |Q_ref(q) - Q_cur(q)|, by
  the trapezoid rule (exact where the difference is linear and of one sign)
  on the breakpoints of both quantile functions and three points between
  each pair of consecutive ones.
* :func:`quantile_shift` - ``Q_cur(qs) - Q_ref(qs)``.

Each estimate inherits the digests' rank error (see
:mod:`fastdrift.sketches.tdigest`): D is within the sum of the two CDF errors
of the exact statistic; W1 within the integral of the quantile errors.
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
    if not isinstance(x, TDigest):
        raise IncompatibleSketchError(f"{what} must be a TDigest, got {type(x).__name__}")
    if x.n == 0:
        raise InvalidInputError(f"{what} digest is empty")
    return x


def ks_pvalue(d: float, n_ref: int, n_cur: int) -> float:
    """Asymptotic two-sided p-value of a two-sample KS statistic ``d``."""
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


def _anchors(t):
    m, _ = t.centroids()
    pts = [m]
    if t.finite_count:
        pts.append(np.array([t._s.flts[0], t._s.flts[1]]))
    return np.concatenate(pts) if pts else np.zeros(0)


def ks_2samp(ref, cur) -> KSResult:
    """KS D between two digests and its asymptotic p-value (see module docstring)."""
    ref, cur = _digest(ref, "ref"), _digest(cur, "cur")
    x = np.unique(np.concatenate([_anchors(ref), _anchors(cur)]))
    if x.size == 0:
        d = 0.0
    else:
        # both just below and at each anchor (the ECDFs are right-continuous),
        # and halfway between anchors (the CDFs are cubic there)
        xs = np.concatenate([x, np.nextafter(x, -np.inf), x[:-1] + 0.5 * np.diff(x)])
        d = float(np.max(np.abs(ref.cdf(xs) - cur.cdf(xs))))
    return KSResult(d, ks_pvalue(d, ref.n, cur.n))


def _qpoints(t):
    """The rank fractions where a digest's quantile function has breakpoints."""
    _, w = t.centroids()
    n = t.finite_count
    if n <= 1:
        return np.array([0.0, 1.0])
    start = np.concatenate([[0.0], np.cumsum(w)[:-1]])
    pos = start + (w - 1) / 2
    return np.concatenate([[0.0, 1.0], pos / (n - 1)])


def wasserstein(ref, cur) -> float:
    """W1 distance between the distributions two digests summarise.

    ``inf`` when either holds infinite values (unless both are all-identical
    infinities, which is not special-cased)."""
    ref, cur = _digest(ref, "ref"), _digest(cur, "cur")
    if ref.posinf_count or ref.neginf_count or cur.posinf_count or cur.neginf_count:
        return math.inf
    q = np.unique(np.clip(np.concatenate([_qpoints(ref), _qpoints(cur)]), 0.0, 1.0))
    q = np.unique(np.concatenate([q] + [q[:-1] + f * np.diff(q) for f in (0.25, 0.5, 0.75)]))
    d = cur.quantile(q) - ref.quantile(q)
    d0, d1, dq = d[:-1], d[1:], np.diff(q)
    same = (d0 * d1) >= 0
    a0, a1 = np.abs(d0), np.abs(d1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = np.where(a0 + a1 > 0, (a0 * a0 + a1 * a1) / (2 * (a0 + a1)), 0.0)
    area = np.where(same, (a0 + a1) / 2, cross) * dq
    return float(area.sum())


def quantile_shift(ref, cur, qs) -> np.ndarray:
    """``cur.quantile(qs) - ref.quantile(qs)`` (an array shaped like ``qs``)."""
    ref, cur = _digest(ref, "ref"), _digest(cur, "cur")
    return np.asarray(cur.quantile(qs)) - np.asarray(ref.quantile(qs))
