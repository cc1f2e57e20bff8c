"""Always-valid sequential tests for watching a canary window after window: the mixture SPRT.

Two arms - ``a``, the control (stable), and ``b``, the treatment (canary) - are fed window by window
from mergeable counts: error counts and requests (:class:`RateDifferenceTest`), or a KPI's
:class:`~fastdrift.sketches.Moments` (:class:`MeanDifferenceTest`).  The state is the arms'
cumulative sufficient statistics (exact counts; count, mean and sum of squared deviations merged
with Chan's formula) plus the running evidence, so it is small, mergeable and serialized like every
other state (:data:`~fastdrift.codec.Kind.SEQUENTIAL_TEST`).

The statistic is Robbins' normal-mixture likelihood ratio (the mSPRT of Johari, Koomen, Pekelis &
Walsh, "Always valid inference", 2017/2022).  With ``theta_hat`` the estimated difference, ``V`` its
variance (plug-in) and ``tau`` the standard deviation of the normal mixture over the difference,

    Lambda = sqrt(V / (V + tau^2)) * exp((theta_hat - theta_0)^2 tau^2 / (2 V (V + tau^2)))

is, for Gaussian estimates, a non-negative martingale under ``theta = theta_0`` in information time
``1 / V``, so by Ville's inequality ``P(sup_n Lambda_n >= 1/alpha) <= alpha``: the always-valid
p-value ``p_n = min(1, min_{k <= n} 1 / Lambda_k)`` may be read after every window, and the test
rejected the first time it is at most ``alpha``, with a false-positive rate of at most ``alpha``
however often it is read.  One-sided tests mix over a half-normal (``Lambda`` gains the factor
``2 Phi(-/+ u)``), still a (super)martingale under the whole one-sided null.  The confidence
sequence is the set of ``theta_0`` not rejected, intersected over windows.

The guarantee is exact for Gaussian estimates with known variance; here the variance is a plug-in
and rates are normal approximations (with the Agresti-Caffo +1/+2 adjustment, so an arm with no
errors yet does not have zero variance), so it holds asymptotically: no evidence is read before
each arm has ``min_n`` observations, and ``tests/test_sequential.py`` measures the rate on 1,000
simulated A/A canaries read after each of 50 windows (see docs/alerts.md).  ``tau`` tunes which
effects are found fastest: set it near the difference you care about (5% for a relative KPI test).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from .. import codec
from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError

__all__ = ["ALTERNATIVES", "SequentialResult", "RateDifferenceTest", "MeanDifferenceTest",
           "mixture_log_lr", "mixture_radius", "log_ndtr"]

#: ``two-sided``: b differs from a; ``less``: b below a (a KPI degraded); ``greater``: b above a
#: (an error rate degraded).
ALTERNATIVES = ("two-sided", "less", "greater")
_KINDS = ("rate", "mean")
_LOG2 = math.log(2.0)
_COUNT_CAP = 1 << 62


def log_ndtr(x) -> np.ndarray:
    """``log Phi(x)`` (standard normal CDF) elementwise, accurate far into the lower tail."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    far = x < -30.0
    near = ~far
    # math.erfc is correct to the double range; 0.5 * erfc(-x / sqrt 2) = Phi(x)
    vals = np.array([math.erfc(-v / math.sqrt(2.0)) for v in x[near].ravel()], dtype=float)
    out[near] = np.log(0.5 * vals).reshape(x[near].shape) if vals.size else vals
    if far.any():  # erfc underflows below -37: Phi(x) = phi(x) / -x * (1 - 1/x^2 + 3/x^4 - 15/x^6 ...)
        xf = x[far]
        s = 1.0 / (xf * xf)
        out[far] = -0.5 * xf * xf - np.log(-xf) - 0.5 * math.log(2 * math.pi) + np.log1p(-s + 3 * s * s - 15 * s ** 3)
    return out


def mixture_log_lr(estimate, variance, tau: float, null: float = 0.0, alternative: str = "two-sided") -> np.ndarray:
    """``log Lambda`` of the normal-mixture SPRT of ``theta = null`` (elementwise, arrays broadcast).

    Parameters
    ----------
    estimate, variance : array-like
        The estimated difference and its variance; where the variance is not positive and finite,
        or the estimate not finite, there is no evidence (``log Lambda = 0``).
    tau : float
        Standard deviation of the normal mixture (half-normal for one-sided tests) over the difference.
    null : float
    alternative : {"two-sided", "less", "greater"}
    """
    est = np.asarray(estimate, dtype=float)
    var = np.asarray(variance, dtype=float)
    est, var = np.broadcast_arrays(est, var)
    ok = np.isfinite(est) & np.isfinite(var) & (var > 0)
    v = np.where(ok, var, 1.0)
    r = (tau * tau) / v                                 # tau^2 times the information 1/V
    u = np.where(ok, est - null, 0.0) / np.sqrt(v) * np.sqrt(r / (1.0 + r))
    out = 0.5 * u * u - 0.5 * np.log1p(r)
    if alternative == "less":
        out = out + _LOG2 + log_ndtr(-u)
    elif alternative == "greater":
        out = out + _LOG2 + log_ndtr(u)
    elif alternative != "two-sided":
        raise InvalidInputError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")
    return np.where(ok, out, 0.0)


def mixture_radius(variance, tau: float, alpha: float, alternative: str = "two-sided") -> np.ndarray:
    """Distance from the estimate to the confidence-sequence bound: the ``theta_0`` whose
    ``log Lambda`` equals ``log(1/alpha)`` (both sides for two-sided, the one bound otherwise)."""
    v = np.asarray(variance, dtype=float)
    ok = np.isfinite(v) & (v > 0)
    v = np.where(ok, v, 1.0)
    r = (tau * tau) / v
    scale = np.sqrt(v * (1.0 + r) / r)
    c = math.log(1.0 / alpha) + 0.5 * np.log1p(r)
    if alternative == "two-sided":
        w = np.sqrt(2.0 * c)
    else:
        # solve log 2 + log Phi(w) + w^2/2 = c for w >= 0: increasing from 0 at w = 0, >= w^2/2
        lo, hi = np.zeros_like(c), np.sqrt(2.0 * c)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            above = _LOG2 + log_ndtr(mid) + 0.5 * mid * mid >= c
            hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
        w = hi
    return np.where(ok, w * scale, np.inf)


def _log_ndtr1(x: float) -> float:
    """Scalar :func:`log_ndtr` (the per-window path; no array overhead)."""
    if x >= -30.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    s = 1.0 / (x * x)
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2 * math.pi) + math.log1p(-s + 3 * s * s - 15 * s ** 3)


def _log_lr1(est: float, var: float, tau: float, null: float, alternative: str) -> float:
    """Scalar :func:`mixture_log_lr` for a positive finite variance."""
    r = tau * tau / var
    u = (est - null) / math.sqrt(var) * math.sqrt(r / (1.0 + r))
    out = 0.5 * u * u - 0.5 * math.log1p(r)
    if alternative == "less":
        out += _LOG2 + _log_ndtr1(-u)
    elif alternative == "greater":
        out += _LOG2 + _log_ndtr1(u)
    return out


def _radius1(var: float, tau: float, alpha: float, alternative: str) -> float:
    """Scalar :func:`mixture_radius` for a positive finite variance."""
    r = tau * tau / var
    c = math.log(1.0 / alpha) + 0.5 * math.log1p(r)
    if alternative == "two-sided":
        w = math.sqrt(2.0 * c)
    else:
        # Newton on h(w) = log 2 + log Phi(w) + w^2/2 - c from above: h is increasing and convex for
        # w >= 0 and h(sqrt(2c)) >= 0, so the iterates fall monotonically to the root
        w = math.sqrt(2.0 * c)
        for _ in range(50):
            lp = _log_ndtr1(w)
            h = _LOG2 + lp + 0.5 * w * w - c
            step = h / (math.exp(-0.5 * w * w - lp) / math.sqrt(2 * math.pi) + w)
            w -= step
            if step < 1e-12 * max(w, 1.0):
                break
    return w * math.sqrt(var * (1.0 + r) / r)


@dataclass(frozen=True)
class SequentialResult:
    """The evidence of a sequential test after its latest window.

    ``estimate`` is ``b - a`` (or ``b / a - 1`` for a relative test); ``lower`` / ``upper`` the
    always-valid confidence sequence (running intersection; one side infinite for one-sided tests);
    ``pvalue`` the always-valid p-value (running minimum) of the null ``theta = margin``
    (``theta >= margin`` for ``less``, ``<=`` for ``greater``); ``reject`` is ``pvalue <= alpha``,
    first reached at window ``rejected_at`` (0: not yet).  ``a`` / ``b`` are the arms' rates or
    means so far, ``n_a`` / ``n_b`` their observations.
    """

    test: str
    alternative: str
    relative: bool
    margin: float
    alpha: float
    estimate: float
    lower: float
    upper: float
    pvalue: float
    reject: bool
    rejected_at: int
    windows: int
    n_a: int
    n_b: int
    a: float
    b: float


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 or value > _COUNT_CAP:
        raise InvalidInputError(f"{what} must be an integer in [0, 2**62], got {value!r}")
    return int(value)


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    return float(value)


class _SequentialTest:
    """The part shared by both tests: parameters, running evidence, merge and bytes."""

    _KIND = ""

    def __init__(self, *, alpha: float = 0.05, tau: Optional[float] = None, alternative: str = "two-sided",
                 relative: bool = False, margin: float = 0.0, min_n: int = 100):
        alpha = _finite(alpha, "alpha")
        if not 0.0 < alpha < 1.0:
            raise InvalidInputError(f"alpha must be in (0, 1), got {alpha}")
        if alternative not in ALTERNATIVES:
            raise InvalidInputError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")
        if not isinstance(relative, bool):
            raise InvalidInputError(f"relative must be True or False, got {relative!r}")
        if tau is None:
            if not relative:
                raise InvalidInputError(
                    "tau is required for an absolute difference: the size of difference to detect fastest, "
                    "in the units of the rate or KPI (a relative test defaults to 0.05)")
            tau = 0.05
        tau = _finite(tau, "tau")
        if tau <= 0:
            raise InvalidInputError(f"tau must be positive, got {tau}")
        margin = _finite(margin, "margin")
        if relative and margin <= -1.0:
            raise InvalidInputError(f"a relative margin must be above -1 (b / a - 1), got {margin}")
        self.alpha, self.tau, self.alternative, self.relative, self.margin = alpha, tau, alternative, relative, margin
        self.min_n = _int(min_n, "min_n")
        self.windows = 0
        self._max_log_lr = 0.0               # running max of log Lambda: p = min(1, exp(-max))
        self._lo, self._hi = -math.inf, math.inf   # running confidence sequence, on the internal scale
        self._rejected_at = 0
        # per arm (a, b): (count, events, mean, m2); a rate test uses count and events, a mean test
        # count, mean and m2 (sum of squared deviations); counts are Python ints (exact)
        self._arms: Tuple[Tuple[int, int, float, float], ...] = ((0, 0, 0.0, 0.0), (0, 0, 0.0, 0.0))

    # -- the two tests fill these in -----------------------------------------------------------
    def _estimate(self) -> Tuple[float, float]:
        """(estimate, variance) on the internal scale (log ratio when relative); NaN: undefined."""
        raise NotImplementedError

    def _observed(self) -> Tuple[int, int, float, float]:
        """(n_a, n_b, a, b): observations and rate / mean of each arm."""
        raise NotImplementedError

    # -- evidence --------------------------------------------------------------------------------
    @property
    def _null(self) -> float:
        return math.log1p(self.margin) if self.relative else self.margin

    def _peek(self, reset: bool = False) -> None:
        """Read the evidence of the statistics so far into the running p-value and confidence sequence."""
        if reset:
            self._max_log_lr, self._lo, self._hi, self._rejected_at = 0.0, -math.inf, math.inf, 0
        n_a, n_b, _, _ = self._observed()
        if min(n_a, n_b) < max(self.min_n, 1):
            return
        est, var = map(float, self._estimate())
        if not (math.isfinite(est) and math.isfinite(var) and var > 0):
            return
        self._max_log_lr = max(self._max_log_lr, _log_lr1(est, var, self.tau, self._null, self.alternative))
        rad = _radius1(var, self.tau, self.alpha, self.alternative)
        if self.alternative != "less":
            self._lo = max(self._lo, est - rad)
        if self.alternative != "greater":
            self._hi = min(self._hi, est + rad)
        if not self._rejected_at and self._max_log_lr >= math.log(1.0 / self.alpha):
            self._rejected_at = self.windows

    def result(self) -> SequentialResult:
        """The evidence after the latest window (nothing changes)."""
        n_a, n_b, a, b = self._observed()
        lo, hi = self._lo, self._hi
        if self.relative:
            lo, hi = math.expm1(lo), math.expm1(hi)
        # the raw difference (the variance may use adjusted rates)
        if not (n_a and n_b):
            est = math.nan
        elif self.relative:
            est = b / a - 1.0 if a else math.nan
        else:
            est = b - a
        pvalue = min(1.0, math.exp(-self._max_log_lr))
        return SequentialResult(self._KIND, self.alternative, self.relative, self.margin, self.alpha,
                                est, lo, hi, pvalue, pvalue <= self.alpha, self._rejected_at, self.windows,
                                n_a, n_b, a, b)

    # -- state -----------------------------------------------------------------------------------
    def _params(self) -> Tuple:
        return (self._KIND, self.alpha, self.tau, self.alternative, self.relative, self.margin, self.min_n)

    def _pool(self, other) -> Tuple:
        raise NotImplementedError

    def merge(self, other) -> "_SequentialTest":
        """Pool ``other``'s counts into this test (the same test run on another share of the traffic).

        Counts add exactly; means and variances combine with Chan's formula.  The running p-value
        and confidence sequence continue from the pooled statistics (the evidence read so far on
        each part is not the pooled stream's; reading the pooled stream from here on is a subset of
        its windows, so the guarantee holds).
        """
        if not isinstance(other, type(self)) or other._params() != self._params():
            raise IncompatibleSketchError(
                f"cannot merge {getattr(other, '_params', lambda: type(other).__name__)()} into {self._params()}")
        self._arms = self._pool(other)
        self.windows = max(self.windows, other.windows)
        self._peek(reset=True)
        return self

    def copy(self):
        """An independent copy."""
        return type(self).from_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        """The test's parameters and state in fastdrift's checksummed envelope."""
        p = codec.Writer().u8(_KINDS.index(self._KIND)).f64(self.alpha).f64(self.tau) \
            .u8(ALTERNATIVES.index(self.alternative)).u8(int(self.relative)).f64(self.margin).u64(self.min_n)
        w = codec.Writer()
        for count, events, mean, m2 in self._arms:
            w.u64(count).u64(events).f64(mean).f64(m2)
        w.u64(self.windows).f64(self._max_log_lr).f64(self._lo).f64(self._hi).u64(self._rejected_at)
        return codec.encode(codec.Kind.SEQUENTIAL_TEST, p.getvalue(), w.getvalue())

    @classmethod
    def from_bytes(cls, data) -> "_SequentialTest":
        """Read :meth:`to_bytes` back; :class:`CorruptStateError` on anything it did not write."""
        _, params, payload = codec.decode(data, expected_kind=codec.Kind.SEQUENTIAL_TEST)
        pr = codec.Reader(params, "sequential test params")
        kind, alpha, tau, alt, rel, margin, min_n = (pr.u8("test"), pr.f64("alpha"), pr.f64("tau"),
                                                    pr.u8("alternative"), pr.u8("relative"), pr.f64("margin"),
                                                    pr.u64("min_n"))
        pr.done()
        if kind >= len(_KINDS) or alt >= len(ALTERNATIVES) or rel > 1:
            raise CorruptStateError(f"sequential test params: test {kind}, alternative {alt}, relative {rel}")
        want = cls._KIND or _KINDS[kind]
        if _KINDS[kind] != want:
            raise CorruptStateError(f"sequential test: the bytes hold a {_KINDS[kind]} test, not a {want} test")
        target = {"rate": RateDifferenceTest, "mean": MeanDifferenceTest}[want]
        try:
            t = target(alpha=alpha, tau=tau, alternative=ALTERNATIVES[alt], relative=bool(rel), margin=margin,
                       min_n=min_n)
        except InvalidInputError as exc:
            raise CorruptStateError(f"sequential test params: {exc}") from None
        r = codec.Reader(payload, "sequential test state")
        arms = tuple((r.u64(f"{x}.count"), r.u64(f"{x}.events"), r.f64(f"{x}.mean"), r.f64(f"{x}.m2"))
                     for x in "ab")
        windows, max_llr, lo, hi, rejected_at = (r.u64("windows"), r.f64("max log LR"), r.f64("lower"),
                                                 r.f64("upper"), r.u64("rejected at"))
        r.done()
        for x, (count, events, mean, m2) in zip("ab", arms):
            if count > _COUNT_CAP or not (math.isfinite(mean) and math.isfinite(m2) and m2 >= 0) \
                    or not t._arm_ok(count, events, mean, m2):
                raise CorruptStateError(f"sequential {want} test state: arm {x} {(count, events, mean, m2)} "
                                        "is not a valid state")
        t._arms = arms
        if windows > _COUNT_CAP or rejected_at > windows or not max_llr >= 0.0 or math.isnan(lo) \
                or math.isnan(hi) or lo > hi:
            raise CorruptStateError(f"sequential test state is inconsistent: windows {windows}, log LR {max_llr}, "
                                    f"bounds [{lo}, {hi}], rejected at {rejected_at}")
        t.windows, t._max_log_lr, t._lo, t._hi, t._rejected_at = windows, max_llr, lo, hi, rejected_at
        return t

    @staticmethod
    def _arm_ok(count: int, events: int, mean: float, m2: float) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        r = self.result()
        return (f"{type(self).__name__}(windows={r.windows}, estimate={r.estimate:.4g}, "
                f"cs=[{r.lower:.4g}, {r.upper:.4g}], p={r.pvalue:.3g})")


class RateDifferenceTest(_SequentialTest):
    """Always-valid test of the difference of two rates (e.g. the error rate of canary vs stable).

    Parameters
    ----------
    alpha : float, default 0.05
        False-positive rate, however often the result is read.
    tau : float
        Mixture standard deviation over the difference (absolute: in rate units, e.g. 0.005 for half
        a point; relative: over ``log(b / a)``, default 0.05).  Required for an absolute test.
    alternative : {"two-sided", "less", "greater"}, default "two-sided"
        ``greater``: the canary's rate is higher (worse, for errors).
    relative : bool, default False
        Test ``b / a - 1`` (through ``log(b / a)``, delta method) instead of ``b - a``.
    margin : float, default 0
        The null value of the difference (or of ``b / a - 1``): ``greater`` with ``margin=0.002``
        asks whether the canary's error rate is more than 0.2 points higher.
    min_n : int, default 100
        No evidence is read before each arm has this many requests.

    Examples
    --------
    >>> t = RateDifferenceTest(tau=0.01, alternative="greater")
    >>> for _ in range(10):
    ...     r = t.update((90, 9000), (30, 1000))      # (errors, requests) of stable, canary
    >>> r.reject, round(r.estimate, 3)
    (True, 0.02)
    """

    _KIND = "rate"

    def update(self, a: Tuple[int, int], b: Tuple[int, int]) -> SequentialResult:
        """Add one window: ``a`` and ``b`` are ``(events, trials)`` of each arm in the window."""
        add = []
        for arm, counts in (("a", a), ("b", b)):
            if not isinstance(counts, (tuple, list)) or len(counts) != 2:
                raise InvalidInputError(f"arm {arm}: expected (events, trials), got {counts!r}")
            k, n = _int(counts[0], f"arm {arm} events"), _int(counts[1], f"arm {arm} trials")
            if k > n:
                raise InvalidInputError(f"arm {arm}: {k} events out of {n} trials")
            add.append((n, k, 0.0, 0.0))
        arms = self._pool_arms(self._arms, add)
        if max(arms[0][0], arms[1][0]) > _COUNT_CAP:
            raise InvalidInputError("sequential test: more than 2**62 trials")
        self._arms = arms
        self.windows += 1
        self._peek()
        return self.result()

    def _observed(self):
        (na, ka, _, _), (nb, kb, _, _) = self._arms
        return int(na), int(nb), (float(ka / na) if na else math.nan), (float(kb / nb) if nb else math.nan)

    def _estimate(self):
        # Agresti-Caffo: one event and one non-event added to each arm, so an arm with no errors
        # yet has a positive variance (an unadjusted 0 / n would read as certainty)
        (na, ka, _, _), (nb, kb, _, _) = self._arms
        pa, pb = (ka + 1) / (na + 2), (kb + 1) / (nb + 2)
        if self.relative:
            return math.log(pb / pa), (1 - pb) / ((nb + 2) * pb) + (1 - pa) / ((na + 2) * pa)
        return pb - pa, pb * (1 - pb) / (nb + 2) + pa * (1 - pa) / (na + 2)

    @staticmethod
    def _pool_arms(x, y):
        return tuple((xa[0] + ya[0], xa[1] + ya[1], 0.0, 0.0) for xa, ya in zip(x, y))

    def _pool(self, other):
        return self._pool_arms(self._arms, other._arms)

    @staticmethod
    def _arm_ok(count, events, mean, m2):
        return events <= count and mean == 0.0 and m2 == 0.0


class MeanDifferenceTest(_SequentialTest):
    """Always-valid test of the difference of two means (e.g. a KPI per request, canary vs stable).

    Parameters
    ----------
    alpha : float, default 0.05
    tau : float
        Mixture standard deviation over the difference: absolute, in the KPI's units (required);
        relative, over ``log(b / a)`` (default 0.05, a 5% change).
    alternative : {"two-sided", "less", "greater"}, default "two-sided"
        ``less``: the canary's KPI is lower (degraded, for a KPI where more is better).
    relative : bool, default False
        Test ``b / a - 1`` (through ``log(b / a)``, delta method; both means must be positive)
        instead of ``b - a``.
    margin : float, default 0
        The null value: ``relative=True, alternative="less", margin=-0.05`` asks whether the KPI
        degraded by more than 5%.
    min_n : int, default 100

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = MeanDifferenceTest(relative=True, alternative="less")
    >>> for _ in range(20):
    ...     a, b = rng.normal(1.0, 1.0, 9000), rng.normal(0.9, 1.0, 1000)
    ...     r = t.update((a.size, a.mean(), a.var()), (b.size, b.mean(), b.var()))
    >>> r.reject, r.upper < 0
    (True, True)
    """

    _KIND = "mean"

    def update(self, a, b) -> SequentialResult:
        """Add one window: ``a`` and ``b`` are each arm's :class:`~fastdrift.sketches.Moments` of the
        window, or ``(count, mean, variance)`` with the population variance (``ddof=0``)."""
        add = []
        for arm, m in (("a", a), ("b", b)):
            if hasattr(m, "variance") and hasattr(m, "n"):
                n, mean, var = m.n, (m.mean if m.n else 0.0), (m.variance() if m.n else 0.0)
            elif isinstance(m, (tuple, list)) and len(m) == 3:
                n, mean, var = m
            else:
                raise InvalidInputError(f"arm {arm}: expected a Moments sketch or (count, mean, variance), got {m!r}")
            n = _int(n, f"arm {arm} count")
            mean = _finite(mean, f"arm {arm} mean") if n else 0.0
            var = _finite(var, f"arm {arm} variance") if n else 0.0
            if var < 0:
                raise InvalidInputError(f"arm {arm}: variance {var} is negative")
            add.append((n, 0, mean, var * n))
        arms = self._pool_arms(self._arms, add)
        if max(arms[0][0], arms[1][0]) > _COUNT_CAP or not all(map(math.isfinite, arms[0][2:] + arms[1][2:])):
            raise InvalidInputError("sequential test: more than 2**62 observations, or sums that overflow")
        self._arms = arms
        self.windows += 1
        self._peek()
        return self.result()

    @staticmethod
    def _pool_arms(x, y):
        """Chan, Golub & LeVeque: (count, mean, m2) of two parts -> of the whole, per arm."""
        out = []
        for (n1, _, m1, q1), (n2, _, m2, q2) in zip(x, y):
            n = n1 + n2
            if n == 0:
                out.append((0, 0, 0.0, 0.0))
                continue
            d = m2 - m1
            out.append((n, 0, m1 + d * n2 / n, q1 + q2 + d * d * n1 * n2 / n))
        return tuple(out)

    def _observed(self):
        (na, _, ma, _), (nb, _, mb, _) = self._arms
        return int(na), int(nb), (float(ma) if na else math.nan), (float(mb) if nb else math.nan)

    def _estimate(self):
        (na, _, ma, qa), (nb, _, mb, qb) = self._arms
        if na < 2 or nb < 2:
            return math.nan, math.nan
        va, vb = qa / (na - 1) / na, qb / (nb - 1) / nb   # variance of each arm's mean
        if self.relative:
            if ma <= 0 or mb <= 0:
                return math.nan, math.nan
            return math.log(mb / ma), vb / (mb * mb) + va / (ma * ma)
        return mb - ma, va + vb

    def _pool(self, other):
        return self._pool_arms(self._arms, other._arms)

    @staticmethod
    def _arm_ok(count, events, mean, m2):
        return events == 0 and (count > 0 or (mean == 0.0 and m2 == 0.0))
