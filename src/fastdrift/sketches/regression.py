"""Regression performance: MAE, RMSE, bias, MAPE, R^2 and residual quantiles from one mergeable state.

The residual of a row is ``prediction - actual`` (so a positive ``bias`` means the model
over-predicts).  The state holds exact sums (:mod:`fastdrift.kernels.exactsum`: integers in
units of 2**-1126, so merging is exact and associative) of, over labelled rows with weight
``w`` (1 without weights): ``w``, ``w r``, ``w |r|``, ``w r^2``, ``w y``, ``w y^2``, and over the
rows with ``y != 0``: ``w |r| / |y|`` and ``w``; plus a :class:`~fastdrift.sketches.tdigest.TDigest`
of the residuals (unweighted).  Products and squares are exact (Dekker's two-product: the
rounded product and its rounding error are both summed), so ``mae``, ``rmse``, ``bias`` and
``r2`` are the exact values for the rows' residuals ``r = p - y`` (one rounding per row) rounded
once at the end, and R^2 = 1 - SSE / SST with SST = sum w y^2 - (sum w y)^2 / sum w is computed
in exact rational arithmetic (no cancellation for data far from zero).  MAPE sums the rounded
ratios ``|r| / |y|`` (times ``w``, exactly).  The products are exact unless their error terms
underflow (products below about 1e-290 in magnitude).

Bad rows
--------
A row is skipped and counted in :attr:`RegressionPerformance.rejected` under the first reason
that applies, in this order: ``prediction_null``, ``prediction_nan``, ``prediction_inf``,
``actual_nan``, ``actual_inf``, ``weight_invalid`` (null, NaN, infinite or
negative), ``overflow`` (a residual or an actual above 2**511, about 6.7e153, in magnitude, whose
square would overflow a double; with weights, a weight or a weighted square above 2**990).
``strict=True`` raises InvalidInputError instead.  A null actual is no label yet, never an
error (the policy of every performance sketch): the row is counted in
:attr:`RegressionPerformance.unlabelled`, not in ``rejected``.  MAPE is the weighted mean of ``|r| / |y|`` over the rows with ``y != 0``; rows with ``y == 0``
(or whose ratio overflows) are left out of it and counted in ``mape_excluded``.

Merging: every sum and count merges exactly (a state merged from any split of the rows equals
one pass, byte for byte, save for the digest); the residual digest merges as a TDigest does
(exact while it holds few distinct values, within its documented rank-error bounds otherwise).
Memory: the digest (265 KB at compression 100) plus 8 sums of at most 280 bytes.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Dict, Optional

import numpy as np

from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError
from ..kernels.exactsum import MAX_BYTES, SHIFT, Accumulator, int_from_bytes, int_to_bytes, to_float
from .. import codec
from .base import Sketch
from .rows import check_rows, float_column, read_counts, reasons_of, weight_column, write_counts
from .tdigest import TDigest

__all__ = ["RegressionPerformance", "REASONS"]

#: Why a row was skipped, in the order the reasons are tried (``actual_null``: unlabelled, not rejected).
REASONS = ("prediction_null", "prediction_nan", "prediction_inf", "actual_null", "actual_nan", "actual_inf",
           "weight_invalid", "overflow")
_SUMS = ("w", "wr", "wabs", "wr2", "wy", "wy2", "wape", "wmape")
_LAYOUT = 1
_SQUARE_MAX = 2.0 ** 511
_PRODUCT_MAX = 2.0 ** 990  # Dekker's split of a factor overflows near 2**996
#: residual quantiles reported by :meth:`RegressionPerformance.metrics`
METRIC_QUANTILES = (0.05, 0.5, 0.95)


class RegressionPerformance(Sketch):
    """Mergeable regression metrics of (prediction, actual) pairs.

    Parameters
    ----------
    compression : float, default 100
        Compression of the residual t-digest (see :class:`~fastdrift.TDigest`).
    strict : bool, default False
        Raise :class:`~fastdrift.errors.InvalidInputError` on a bad row instead of
        skipping and counting it.
    name : str, optional
        Name used in error messages.

    Examples
    --------
    >>> import fastdrift
    >>> rp = fastdrift.RegressionPerformance().update([1.0, 2.0, 4.0], [1.0, 3.0, 2.0])
    >>> rp.mae(), rp.bias(), rp.labelled
    (1.0, 0.3333333333333333, 3)
    """

    KIND = codec.Kind.REGRESSION_PERFORMANCE
    #: the residual digest's cap (its float64 weights are exact up to 2**53)
    MAX_COUNT = TDigest.MAX_COUNT

    def __init__(self, *, compression: float = 100, strict: bool = False, name: Optional[str] = None):
        super().__init__(name)
        self.strict = bool(strict)
        self._digest = TDigest(compression)
        self._labelled = 0
        self._mape_excluded = 0
        self._rejected = dict.fromkeys(REASONS, 0)
        self._sums = dict.fromkeys(_SUMS, 0)

    # -- counters -------------------------------------------------------------
    @property
    def labelled(self) -> int:
        """Rows scored: a finite prediction and actual (and a valid weight)."""
        return self._labelled

    @property
    def rejected(self) -> Dict[str, int]:
        """Rows skipped as bad, by reason (every reason of :data:`REJECT_REASONS`, zeros included)."""
        return {k: v for k, v in self._rejected.items() if k != "actual_null"}

    @property
    def unlabelled(self) -> int:
        """Rows with a valid prediction and a null actual: no label yet, never an error."""
        return self._rejected["actual_null"]

    @property
    def mape_excluded(self) -> int:
        """Labelled rows left out of MAPE: actual == 0, or a ratio that overflows."""
        return self._mape_excluded

    @property
    def count(self) -> int:
        """Every row passed to update: labelled, unlabelled and rejected."""
        return self._labelled + sum(self._rejected.values())

    @property
    def compression(self) -> float:
        return self._digest.compression

    @property
    def residuals(self) -> TDigest:
        """A copy of the residual digest."""
        with self._reading():
            return self._digest.copy()

    # -- metrics ----------------------------------------------------------------
    def _ratio(self, num: str, den: str = "w") -> float:
        with self._reading():
            return to_float(self._sums[num], self._sums[den])

    def mae(self) -> float:
        """Mean absolute error (weighted); NaN without labelled rows."""
        return self._ratio("wabs")

    def mse(self) -> float:
        """Mean squared error (weighted)."""
        return self._ratio("wr2")

    def rmse(self) -> float:
        """Root mean squared error (weighted)."""
        return math.sqrt(self.mse()) if self._sums["w"] else math.nan

    def bias(self) -> float:
        """Mean residual, prediction - actual (weighted): > 0 when the model over-predicts."""
        return self._ratio("wr")

    def mape(self) -> float:
        """Mean absolute percentage error ``|r| / |y|`` (a fraction, not per cent) over rows with
        ``y != 0``; NaN when there is none."""
        return self._ratio("wape", "wmape")

    def r2(self) -> float:
        """Coefficient of determination 1 - SSE / SST (as scikit-learn's ``r2_score``: 1.0 when
        SST and SSE are 0, 0.0 when only SST is); NaN without labelled rows."""
        with self._reading():
            s = self._sums
            if not s["w"]:
                return math.nan
            sst = s["wy2"] * s["w"] - s["wy"] * s["wy"]  # SST * sum w, in units of 2**-2 SHIFT
            sse = s["wr2"] * s["w"]
        if sst <= 0:
            return 1.0 if sse == 0 else 0.0
        try:
            return float(1 - Fraction(sse, sst))
        except OverflowError:  # SSE beyond 1.8e308 times SST (a near-constant actual): the limit
            return -math.inf

    def residual_quantile(self, q):
        """Estimated quantile(s) of the residuals (unweighted), from the t-digest (its rank-error
        bounds apply, :data:`fastdrift.sketches.tdigest.RANK_ERROR_BOUNDS`)."""
        with self._reading():
            return self._digest.quantile(q)

    def metrics(self) -> Dict[str, float]:
        """``mae``, ``rmse``, ``bias``, ``mape``, ``r2``, ``residual_p05``, ``residual_p50``,
        ``residual_p95`` and ``labelled``, as floats (NaN where undefined)."""
        with self._reading():
            out = {"mae": self.mae(), "rmse": self.rmse(), "bias": self.bias(), "mape": self.mape(),
                   "r2": self.r2()}
            qs = np.atleast_1d(self.residual_quantile(np.array(METRIC_QUANTILES)))
            for q, v in zip(METRIC_QUANTILES, qs.tolist()):
                out[f"residual_p{round(q * 100):02d}"] = float(v)
            out["labelled"] = float(self._labelled)
        return out

    def __repr__(self):
        return (f"RegressionPerformance(labelled={self._labelled}, mae={self.mae():.6g}, "
                f"rmse={self.rmse():.6g}, rejected={sum(self._rejected.values())})")

    # -- update -----------------------------------------------------------------
    def update(self, predictions, actuals, weights=None):
        """Fold in rows of ``predictions`` and ``actuals`` (numeric: numpy, Arrow, chunked Arrow,
        lists), with optional non-negative ``weights``.

        Bad rows are skipped and counted in :attr:`rejected` (or raise, with ``strict``).
        On an error nothing of this call is counted.  Returns ``self``.
        """
        with self._mutating():
            self._update_rows(predictions, actuals, weights)
        return self

    def _what(self, side: str) -> str:
        return f"{side} of {self.name!r}" if self.name is not None else side

    def _update_rows(self, predictions, actuals, weights) -> None:
        p, p_null = float_column(predictions, self._what("prediction"))
        y, y_null = float_column(actuals, self._what("actual"))
        n = p.size
        if y.size != n:
            raise InvalidInputError(f"{self._what('actual')}: {y.size} actuals for {n} predictions")
        w, w_bad = weight_column(weights, n, self._what("weights"))
        self._room(n)
        with np.errstate(all="ignore"):
            r = p - y
            abs_r = np.abs(r)
            abs_y = np.abs(y)
            if w is None and n and not (p_null.any() or y_null.any()) and np.isfinite(r).all() \
                    and abs_r.max() <= _SQUARE_MAX and abs_y.max() <= _SQUARE_MAX:
                # every row good (a finite residual means a finite prediction and actual): no masks
                rejected, ok, n_ok = np.zeros(len(REASONS), dtype=np.int64), None, n
            else:
                over = (abs_r > _SQUARE_MAX) | (abs_y > _SQUARE_MAX)  # squares up to 2**1022: finite
                if w is not None:  # and every weighted product finite, with room for Dekker's split
                    over |= (w > _PRODUCT_MAX) | (w * abs_r * abs_r > _PRODUCT_MAX) | (w * y * y > _PRODUCT_MAX)
                code = reasons_of([p_null, np.isnan(p) & ~p_null, np.isinf(p), y_null, np.isnan(y) & ~y_null,
                                   np.isinf(y), w_bad, over], n)
                rejected = check_rows(code, REASONS, self.strict, self._what("rows"), "actual_null")
                ok = code == 0
                n_ok = int(ok.sum())
            if n_ok < n:
                r, y, abs_r, abs_y = r[ok], y[ok], abs_r[ok], abs_y[ok]
                w = w[ok] if w is not None else None
            accs = {k: Accumulator() for k in _SUMS}
            ape = abs_r / abs_y
            in_mape = (y != 0) & np.isfinite(ape)
            if w is not None:
                in_mape &= (ape < _PRODUCT_MAX) & (w * ape < _PRODUCT_MAX)
            n_mape = int(in_mape.sum())
            if w is None:
                accs["wr"].add(r)
                accs["wabs"].add(r, absolute=True)
                accs["wr2"].add(r, r)
                accs["wy"].add(y)
                accs["wy2"].add(y, y)
                accs["wape"].add(ape[in_mape])
            else:
                accs["w"].add(w)
                accs["wr"].add(w, r)
                accs["wabs"].add(w, r, absolute=True)
                accs["wr2"].add(w, r, r)
                accs["wy"].add(w, y)
                accs["wy2"].add(w, y, y)
                accs["wape"].add(w[in_mape], ape[in_mape])
                accs["wmape"].add(w[in_mape])
        sums = dict(self._sums)
        for k in _SUMS:
            sums[k] += accs[k].value()
        if w is None:
            sums["w"] += n_ok << SHIFT
            sums["wmape"] += n_mape << SHIFT
        if n_ok:
            self._digest.update(r)
        self._sums = sums
        self._labelled += n_ok
        self._mape_excluded += n_ok - n_mape
        for k, c in zip(REASONS, rejected.tolist()):
            self._rejected[k] += c

    def _update(self, values) -> None:  # pragma: no cover - update() takes two columns
        raise InvalidInputError("RegressionPerformance.update takes predictions and actuals")

    # -- merge, copy, bytes -------------------------------------------------------
    def _compatible(self, other) -> None:
        if other.compression != self.compression:
            raise IncompatibleSketchError(
                f"residual digest compressions differ: {self.compression} vs {other.compression}")

    def _merge(self, other) -> None:
        self._compatible(other)
        self._digest.merge(other._digest)
        for k in _SUMS:
            self._sums[k] += other._sums[k]
        for k in REASONS:
            self._rejected[k] += other._rejected[k]
        self._labelled += other._labelled
        self._mape_excluded += other._mape_excluded

    def _copy(self):
        c = RegressionPerformance(compression=self.compression, strict=self.strict, name=self.name)
        c._digest = self._digest.copy()
        c._labelled, c._mape_excluded = self._labelled, self._mape_excluded
        c._rejected, c._sums = dict(self._rejected), dict(self._sums)
        return c

    def _params(self) -> bytes:
        return codec.Writer().u8(_LAYOUT).f64(self.compression).getvalue()

    def _payload(self) -> bytes:
        w = codec.Writer().uvarint(self._labelled).uvarint(self._mape_excluded)
        write_counts(w, self._rejected, REASONS)
        for k in _SUMS:
            w.blob(int_to_bytes(self._sums[k]))
        return w.blob(self._digest.to_bytes()).getvalue()

    @classmethod
    def _decode(cls, params, payload):
        r = codec.Reader(params, "regression performance params")
        layout = r.u8("layout")
        compression = r.f64("compression")
        r.done()
        if layout != _LAYOUT:
            raise CorruptStateError(f"regression performance params: unknown layout {layout}")
        r = codec.Reader(payload, "regression performance payload")
        labelled = r.uvarint("labelled")
        excluded = r.uvarint("mape_excluded")
        rejected = read_counts(r, REASONS, "regression performance payload")
        sums = {}
        for k in _SUMS:
            raw = r.blob(k)
            if len(raw) > MAX_BYTES:
                raise CorruptStateError(f"regression performance payload: sum {k} has {len(raw)} bytes")
            sums[k] = int_from_bytes(raw)
        digest = TDigest.from_bytes(r.blob("residual digest"))
        r.done()
        if digest.compression != compression:
            raise CorruptStateError("regression performance: digest compression differs from the params")
        if digest.count != labelled or digest.n != labelled or digest.posinf_count or digest.neginf_count:
            raise CorruptStateError(f"regression performance: the digest holds {digest.count} residuals, "
                                    f"not the {labelled} finite ones labelled")
        if excluded > labelled or labelled + sum(rejected.values()) > cls.MAX_COUNT:
            raise CorruptStateError("regression performance payload: counts out of range")
        s = sums
        if min(s["w"], s["wabs"], s["wr2"], s["wy2"], s["wape"], s["wmape"]) < 0 or abs(s["wr"]) > s["wabs"] \
                or s["wmape"] > s["w"] or (not labelled and any(s.values())):
            raise CorruptStateError("regression performance payload: sums are inconsistent")
        rp = cls(compression=compression)
        rp._digest, rp._labelled, rp._mape_excluded = digest, int(labelled), int(excluded)
        rp._rejected, rp._sums = rejected, sums
        return rp
