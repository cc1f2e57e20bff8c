"""Streaming moments: counts of each kind of value, min, max, sum, mean, variance.

Only finite values enter min/max/sum/mean/variance; nulls, NaN, +inf and -inf
each have their own counter (so one ``inf`` cannot turn the mean into ``inf``
and hide every later shift).  Min/max start at +inf/-inf, so all-negative data
is right.  The variance is computed per block of 1,024 values: from sums about
the running mean in the pass that reads the block, or, when those would lose
more than one bit (the block's mean is more than a standard deviation away),
about the block's own mean in a second pass over the cached block; blocks are
combined with
Chan, Golub & LeVeque's parallel formula, which is also the merge, so it is
numerically stable for data far from zero.

Counts, min and max merge exactly; sum, mean and m2 merge up to floating-point
reassociation (relative error of a few ulps times log2 of the number of merges).
An empty sketch answers NaN for min, max, mean and variance.  Memory: 80 bytes.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from ..adapters.arrow import as_arrow, iter_columns
from ..errors import CorruptStateError
from ..kernels.moments import empty_moments, moments_merge, moments_merge_groups, moments_merge_many, moments_update
from ..kernels.seg import moments_update_parts
from .. import codec
from .base import Sketch, check_numeric_type, count_total, mutating_all

__all__ = ["Moments"]


class Moments(Sketch):
    """Count, missing/non-finite counters, min, max, sum, mean and variance of a numeric column.

    Examples
    --------
    >>> import numpy as np, fastdrift
    >>> m = fastdrift.Moments().update(np.array([-3.0, -1.0, np.nan, np.inf]))
    >>> m.max, m.mean, m.nan_count, m.posinf_count
    (-1.0, -2.0, 1, 1)
    """

    KIND = codec.Kind.MOMENTS

    def __init__(self, *, name: Optional[str] = None):
        super().__init__(name)
        self._ints, self._flts = empty_moments()

    # -- attributes -------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of finite values."""
        return int(self._ints[0])

    @property
    def null_count(self) -> int:
        return int(self._ints[1])

    @property
    def nan_count(self) -> int:
        return int(self._ints[2])

    @property
    def posinf_count(self) -> int:
        return int(self._ints[3])

    @property
    def neginf_count(self) -> int:
        return int(self._ints[4])

    @property
    def count(self) -> int:
        """Every value passed to update: finite, null, NaN and ±inf."""
        return sum(self._ints.tolist())  # Python ints: faster than a numpy sum of 5

    @property
    def is_empty(self) -> bool:
        return self.count == 0

    def _finite_stat(self, i: int) -> float:
        return float(self._flts[i]) if self._ints[0] > 0 else math.nan

    @property
    def min(self) -> float:
        return self._finite_stat(0)

    @property
    def max(self) -> float:
        return self._finite_stat(1)

    @property
    def sum(self) -> float:
        return float(self._flts[2])

    @property
    def mean(self) -> float:
        return self._finite_stat(3)

    def variance(self, ddof: int = 0) -> float:
        """Variance of the finite values (``ddof=0`` population, ``1`` sample); NaN when undefined."""
        n = int(self._ints[0])
        if n - ddof <= 0:
            return math.nan
        return float(self._flts[4]) / (n - ddof)

    def std(self, ddof: int = 0) -> float:
        return math.sqrt(self.variance(ddof))

    def __repr__(self):
        return (f"Moments(count={self.count}, n={self.n}, mean={self.mean:.6g}, "
                f"std={self.std():.6g}, min={self.min:.6g}, max={self.max:.6g})")

    # -- hooks --------------------------------------------------------------
    def _update(self, values) -> None:
        arr = as_arrow(values, self.name)
        check_numeric_type(arr, self.name)
        self._room(len(arr))
        ints, flts = self._ints.copy(), self._flts.copy()
        for view in iter_columns(arr, self.name):
            moments_update(view, ints, flts)
        self._ints, self._flts = ints, flts

    @staticmethod
    def update_parts(sketches: List["Moments"], values, starts: np.ndarray, lens: np.ndarray) -> None:
        """``sketches[j].update(values[starts[j]:starts[j] + lens[j]])`` for every ``j`` in one kernel
        call (:func:`~fastdrift.kernels.seg.moments_update_parts`): ``values`` one numeric array
        whose parts are segments' stretches.  Each ends bit for bit as its own update would leave
        it; on bad input none counts anything."""
        name = sketches[0].name
        arr = as_arrow(values, name)
        views = list(iter_columns(arr, name))
        if len(views) != 1 or views[0].kind != "numeric":
            for m, s, n in zip(sketches, starts, lens):
                m.update(arr.slice(int(s), int(n)))
            return
        check_numeric_type(arr, name)
        with mutating_all(sketches):
            for m, n in zip(sketches, lens):
                m._room(int(n))
            ints = np.stack([m._ints for m in sketches])  # scratch: an error leaves every state as it was
            flts = np.stack([m._flts for m in sketches])
            moments_update_parts(views[0], starts, lens, ints, flts)
            for m, i, f in zip(sketches, ints, flts):
                m._ints, m._flts = i, f

    def update_counting(self, values, count) -> "Moments":
        """:meth:`update`, with ``count(views, ints, flts)`` folding the chunks into a copy of the
        state in place of the moments kernel: a kernel that does other work in the same read of
        the column (the scan's grid, :func:`fastdrift.kernels.quantile.moments_count_select`) and
        leaves the state :meth:`update` would.  On error nothing of this call is counted."""
        with self._mutating():
            arr = as_arrow(values, self.name)
            check_numeric_type(arr, self.name)
            self._room(len(arr))
            ints, flts = self._ints.copy(), self._flts.copy()
            count(list(iter_columns(arr, self.name)), ints, flts)
            self._ints, self._flts = ints, flts
        return self

    def _merge(self, other) -> None:
        moments_merge(self._ints, self._flts, other._ints, other._flts)

    def _merge_many(self, others) -> None:
        ints, flts = self._ints.copy(), self._flts.copy()
        moments_merge_many(ints, flts, np.stack([o._ints for o in others]), np.stack([o._flts for o in others]))
        self._ints, self._flts = ints, flts

    @classmethod
    def _merge_each(cls, targets, groups) -> None:
        # one fold for every target at once (moments_merge_groups: each target's moments_merge_many,
        # bit for bit), counts checked first
        idx = [i for i, g in enumerate(groups) if g]
        if not idx:
            return
        mine = [targets[i] for i in idx]
        lens = np.array([len(groups[i]) for i in idx])
        o_i = np.concatenate([o._ints for i in idx for o in groups[i]]).reshape(-1, 5)
        o_f = np.concatenate([o._flts for i in idx for o in groups[i]]).reshape(-1, 5)
        ints = np.stack([t._ints for t in mine])
        flts = np.stack([t._flts for t in mine])
        cls._room_each(mine, [groups[i] for i in idx], ints.sum(axis=1, dtype=np.float64),
                       np.add.reduceat(o_i.sum(axis=1, dtype=np.float64), np.cumsum(lens) - lens))
        moments_merge_groups(ints, flts, o_i, o_f, lens)
        for t, a, b in zip(mine, ints, flts):
            t._ints, t._flts = a, b

    def _copy(self):
        m = Moments.__new__(Moments)  # not __init__: its empty state would be replaced at once
        Sketch.__init__(m, self.name)
        m._ints, m._flts = self._ints.copy(), self._flts.copy()
        return m

    def _params(self) -> bytes:
        return b""

    def _payload(self) -> bytes:
        return codec.Writer().i64_array(self._ints).f64_array(self._flts).getvalue()

    @classmethod
    def _decode(cls, params, payload):
        if params:
            raise CorruptStateError("moments carry no parameters")
        r = codec.Reader(payload, "moments payload")
        ints = r.i64_array()
        flts = r.f64_array()
        r.done()
        if ints.size != 5 or flts.size != 5:
            raise CorruptStateError(f"moments payload has {ints.size}+{flts.size} fields, expected 5+5")
        count_total(ints, "moments payload")
        if ints[0] > 0:
            # The mean is a rounded sum / count: it may sit an ulp or two outside [min, max]
            # (100 x 0.1 has mean 0.10000000000000003); more than rounding is corruption.  The sum
            # and m2 of finite values may overflow (values near 1e308; deviations past 1e154): m2
            # to +inf, and once the sum is infinite the mean and m2 derived from it are not numbers
            # either - a state, not corruption.
            lo, hi, total, mean, m2 = (float(v) for v in flts)
            slack = 1e-12 * max(abs(lo), abs(hi))
            ok = math.isfinite(lo) and math.isfinite(hi) and lo <= hi and not math.isnan(total)
            if ok and math.isfinite(total):
                ok = lo - slack <= mean <= hi + slack and m2 >= 0  # (NaN m2 fails)
            if not ok:
                raise CorruptStateError("moments payload is inconsistent (min <= mean <= max, m2 >= 0)")
        elif not (flts[0] == np.inf and flts[1] == -np.inf):
            raise CorruptStateError("moments payload: empty state must have min=+inf, max=-inf")
        m = cls()
        m._ints, m._flts = ints, flts
        return m
