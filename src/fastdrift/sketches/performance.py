"""Binary classification performance: a mergeable sketch of scores by label.

:class:`BinaryPerformance` keeps, for each class (negative, positive, unlabelled), the count
(and the weight, once weights are used) of each score, plus exact running sums of the weights,
the log loss, the Brier score and the scores.  ROC AUC, average precision, calibration,
confusion counts and precision/recall@k come from the score table; log loss and Brier from the
sums.

Score table
-----------
While the scores seen take at most ``exact`` distinct values (default: as many as there are
bins), the table holds every distinct score and every metric is exact (the same as
scikit-learn's on the same rows, ties included).  Past that it folds into fixed bins and stays
binned.  The bins are relative, on the scale where a classifier's resolution lives:

* ``scores="probability"`` (scores in [0, 1]): ``t = min(s, 1 - s)`` (exact in float64),
  ``bins`` sub-bins per octave of ``t`` from 2**-64 to 1/2 (below 2**-64: one bin), mirrored
  on each side of 0.5.  That is a grid on the logit scale with a step of ``log(1 + 1/bins)``
  (0.78% at the default 128): 0.5 is always a bin edge.
* ``scores="margin"`` (finite raw scores, ``sigmoid`` gives the probability): ``t = |m|``,
  ``bins`` per octave from 2**-64 to 2**64 (beyond: one bin each side), mirrored around 0.

Bound (ROC AUC): within a bin the rows are ranked as tied, so the binned AUC differs from the
exact one by at most ``0.5 * sum_b pos_b * neg_b / (P * N)`` over the bins that hold more than
one distinct score -- zero in the exact table.  :meth:`BinaryPerformance.roc_auc_bound` gives
it for a state (docs/sketches.md lists what it measured against scikit-learn).  Average
precision reads a bin as tied (exact for a pile of one score) or as evenly mixed (scores spread
over the bin), blended by how spread the bin's scores are: each bin keeps the sums of ``d`` and
``d**2``, ``d`` the score's place inside its bin.

Rows
----
A row counts when its score is a number in range (probability: in [0, 1]; margin: finite) and
its label is 0 or 1 (``bool`` or any numeric type); a null label counts the score as
unlabelled (what :meth:`BinaryPerformance.estimate` reads).  Other rows are skipped and counted
in :attr:`BinaryPerformance.rejected` by reason; with ``strict=True`` they raise
:class:`~fastdrift.errors.InvalidInputError` instead, before anything of the batch is counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa

from ..adapters.arrow import as_arrow, is_numeric_type
from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError, SchemaError
from .. import codec
from ..kernels.perf import EMIN, LABELS_CODED, LABELS_RAW, N_SUMS, perf_update
from .base import Sketch, count_total

__all__ = ["BinaryPerformance", "Calibration", "REJECT_REASONS"]

#: Why a row was not counted, in the order of the state's counters.
REJECT_REASONS = ("score_null", "score_nan", "score_out_of_range", "label_not_binary", "weight_invalid")
_NEG, _POS, _UNL = 0, 1, 2
_EMIN = EMIN              # lowest octave of t kept apart (below: one bin)
_PROB_OCTAVES = 63       # t in [2**-64, 2**-1)
_MARGIN_OCTAVES = 128    # t in [2**-64, 2**64)
_LAYOUT_VERSION = 1
# sums: labelled weight, positive weight, log loss, Brier, labelled score (as probability),
# unlabelled weight, unlabelled score (as probability)
_N_SUMS = N_SUMS
_MAX_WEIGHT = 2.0 ** 64  # as fd_perf.c: the sums of 2**62 such rows stay finite
_SMALL_BATCH = 2048  # rows into the exact table sorted in numpy rather than binned by the kernel first


def _n_keys(margin: bool, bins: int) -> int:
    """Keys per side of the split (0.5 or 0)."""
    return _MARGIN_OCTAVES * bins if margin else _PROB_OCTAVES * bins + 1


def _keys(t: np.ndarray, shift: int, n_keys: int) -> np.ndarray:
    """Key of each ``t >= 0``: octave above 2**-64 times ``bins`` plus the top mantissa bits."""
    u = t.view(np.uint64)
    ke = (u >> np.uint64(52)).astype(np.int64) - (1023 + _EMIN)
    k = (ke << shift) + ((u >> np.uint64(52 - shift)) & np.uint64((1 << shift) - 1)).astype(np.int64)
    k[ke < 0] = 0
    np.minimum(k, n_keys - 1, out=k)
    return k


def bin_index(s: np.ndarray, margin: bool, bins: int) -> np.ndarray:
    """The bin of each accepted score (monotone in the score)."""
    shift = bins.bit_length() - 1
    K = _n_keys(margin, bins)
    if margin:
        neg = s < 0
        k = _keys(np.abs(s), shift, K)
        return np.where(neg, K - 1 - k, K + k)
    low = s < 0.5
    t = np.where(low, s, 1.0 - s)
    k = _keys(t, shift, K)
    return np.where(low, k, 2 * K - 1 - k)


def bin_frac(s: np.ndarray, margin: bool, bins: int) -> np.ndarray:
    """Where each score lies inside its bin, in [0, 1): the mantissa bits of ``t`` below the key's."""
    shift = bins.bit_length() - 1
    t = np.abs(s) if margin else np.where(s < 0.5, s, 1.0 - s)
    low = t.view(np.uint64) & np.uint64((1 << (52 - shift)) - 1)
    return low.astype(np.float64) / float(1 << (52 - shift))


def _bin_ranges(margin: bool, bins: int):
    """Lowest and highest score of every bin (``lo <= s <= hi``; float64, may be +-inf)."""
    K = _n_keys(margin, bins)
    k = np.arange(K + 1)
    t = np.ldexp(1.0 + (k % bins) / bins, (k // bins) + _EMIN)  # t edges, t[K] the end
    t[0] = 0.0
    if margin:
        t[K] = np.inf
        lo_t, hi_t = t[:-1], t[1:]
        lo = np.concatenate([-hi_t[::-1], lo_t])
        hi = np.concatenate([-lo_t[::-1], hi_t])
    else:
        t = np.minimum(t, 0.5)
        lo_t, hi_t = t[:-1], t[1:]
        lo = np.concatenate([lo_t, 1.0 - hi_t[::-1]])
        hi = np.concatenate([hi_t, 1.0 - lo_t[::-1]])
    return lo, hi


_RANGES: dict = {}


def bin_ranges(margin: bool, bins: int):
    key = (margin, bins)
    r = _RANGES.get(key)
    if r is None:
        lo, hi = _bin_ranges(margin, bins)
        mid = np.where(np.isfinite(lo) & np.isfinite(hi), 0.5 * lo + 0.5 * hi, np.where(np.isfinite(lo), lo, hi))
        for a in (lo, hi, mid):
            a.setflags(write=False)
        r = _RANGES[key] = (lo, hi, mid)
    return r


def _sigmoid(m: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(m))
    return np.where(m >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass(frozen=True)
class Calibration:
    """A reliability table on ``n_bins`` equal-width bins of the predicted probability.

    Attributes
    ----------
    edges : numpy.ndarray
        ``n_bins + 1`` edges over [0, 1].
    count : numpy.ndarray
        Labelled rows per bin.
    weight : numpy.ndarray
        Their weight (the count when unweighted).
    mean_predicted, fraction_positive : numpy.ndarray
        Weighted mean probability and fraction of positives per bin (NaN when empty).
    ece : float
        Expected calibration error: ``sum_b weight_b / W * |fraction_positive_b - mean_predicted_b|``.
    """

    edges: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    mean_predicted: np.ndarray
    fraction_positive: np.ndarray
    ece: float


class BinaryPerformance(Sketch):
    """Performance of a binary classifier: scores by label on a mergeable score table.

    Parameters
    ----------
    scores : {"probability", "margin"}
        Probabilities in [0, 1], or raw margins (log-odds; the probability is their sigmoid).
    bins : int, default 128
        Bins per octave of the score's distance to 0.5 (probability) or 0 (margin); a power of two
        from 1 to 1024.  See the module docstring for the layout and its bound.
    exact : int, optional
        Distinct scores kept exactly before the table folds into bins; default: the number of bins.
    strict : bool, default False
        Raise :class:`~fastdrift.errors.InvalidInputError` on a bad row instead of counting it in
        :attr:`rejected`.
    name : str, optional
        Column name used in messages.

    Examples
    --------
    >>> import numpy as np, fastdrift
    >>> p = fastdrift.BinaryPerformance().update(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    >>> p.roc_auc(), p.labelled
    (0.75, 4)
    """

    KIND = codec.Kind.BINARY_PERFORMANCE

    def __init__(self, *, scores: str = "probability", bins: int = 128, exact: Optional[int] = None,
                 strict: bool = False, name: Optional[str] = None):
        super().__init__(name)
        if scores not in ("probability", "margin"):
            raise InvalidInputError(f"scores must be 'probability' or 'margin', got {scores!r}")
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= bins <= 1024 \
                or bins & (bins - 1):
            raise InvalidInputError(f"bins must be a power of two from 1 to 1024, got {bins!r}")
        self.scores = scores
        self.bins = int(bins)
        self._margin = scores == "margin"
        self.n_bins = 2 * _n_keys(self._margin, self.bins)
        if exact is None:
            exact = self.n_bins
        if isinstance(exact, bool) or not isinstance(exact, (int, np.integer)) or not 0 <= exact <= self.n_bins:
            raise InvalidInputError(f"exact must be an int from 0 to {self.n_bins} (the bins), got {exact!r}")
        self.exact = int(exact)
        self.strict = bool(strict)
        # score table: exact (sorted distinct values) or binned (self._values is None)
        self._values: Optional[np.ndarray] = np.zeros(0)
        self._counts = np.zeros((3, 0), np.int64)
        self._weights: Optional[np.ndarray] = None  # float64 (3, m) once weights are used
        # binned only: per bin, the weighted sums of d and d**2 over its rows, (n_bins, 2) (d in [0, 1):
        # where the score lies inside its bin, fd_perf.c's perf_frac); how spread a bin's scores are
        self._spread: Optional[np.ndarray] = None
        self._sums = np.zeros(_N_SUMS)
        self._rejected = np.zeros(len(REJECT_REASONS), np.int64)
        self._tab = None  # the occupied score table, built by _table() and dropped by every mutation
        self._tied: Optional[np.ndarray] = None  # per entry of _tab: how tied its rows are, in [0, 1]

    # -- attributes -------------------------------------------------------
    @property
    def count(self) -> int:
        """Every row passed to update: counted (labelled or not) and rejected."""
        return int(self._counts.sum()) + int(self._rejected.sum())

    @property
    def is_empty(self) -> bool:
        return self.count == 0

    @property
    def null_count(self) -> int:
        """Rows with a null score (counted in :attr:`rejected` as ``score_null``)."""
        return int(self._rejected[0])

    @property
    def labelled(self) -> int:
        """Rows with a valid score and a 0/1 label."""
        return int(self._counts[:2].sum())

    @property
    def unlabelled(self) -> int:
        """Rows with a valid score and a null (or absent) label."""
        return int(self._counts[2].sum())

    @property
    def rejected(self) -> dict:
        """Rows not counted, by reason (see :data:`REJECT_REASONS`)."""
        return {r: int(c) for r, c in zip(REJECT_REASONS, self._rejected)}

    @property
    def is_exact(self) -> bool:
        """Whether the score table still holds every distinct score (every metric exact)."""
        return self._values is not None

    @property
    def weighted(self) -> bool:
        return self._weights is not None

    def __repr__(self):
        return (f"BinaryPerformance(scores={self.scores!r}, bins={self.bins}, labelled={self.labelled}, "
                f"unlabelled={self.unlabelled}, rejected={int(self._rejected.sum())})")

    # -- input ------------------------------------------------------------
    def _label(self) -> str:
        return f" of column {self.name!r}" if self.name is not None else ""

    def _what(self, part: str) -> str:
        return f"{part} of column {self.name!r}" if self.name is not None else part

    # -- verbs ------------------------------------------------------------
    def update(self, scores, labels=None, weights=None):
        """Fold a batch in: ``scores`` with their ``labels`` (0/1, bool; null: unlabelled; None:
        all unlabelled) and optional non-negative ``weights``.

        numpy arrays, pyarrow Arrays/ChunkedArrays or Arrow producers.  Returns ``self``.  On an
        error nothing of the batch is counted.
        """
        with self._mutating():
            self._fold(scores, labels, weights)
        return self

    def _update(self, values) -> None:  # the one-argument Sketch verb: scores alone
        self._fold(values, None, None)

    def _column(self, values, part: str):
        """``values`` as an Arrow-free numpy view where possible: (numpy values, Arrow array or None)."""
        if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "fiub":
            return values, None
        arr = as_arrow(values, self.name)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        t = arr.type
        if not (is_numeric_type(t) or pa.types.is_boolean(t) or pa.types.is_null(t)) or \
                pa.types.is_temporal(t) or pa.types.is_decimal(t):
            raise SchemaError(f"{self._what(part)}: expected numbers, got Arrow type {t}")
        return None, arr

    def _inputs(self, scores, labels, weights):
        """The kernel's arguments for a batch: (scores, validity, offset, labels, coded, weights)."""
        s, arr = self._column(scores, "scores")
        validity, offset = None, 0
        if arr is not None:
            if not pa.types.is_floating(arr.type) or arr.type != pa.float64():
                arr = arr.cast(pa.float64())
            if arr.null_count:
                validity = np.frombuffer(arr.buffers()[0], np.uint8)
                offset = arr.offset
            s = np.frombuffer(arr.buffers()[1], np.float64, count=len(arr), offset=8 * arr.offset) \
                if len(arr) else np.zeros(0)
        elif s.dtype != np.float64 or not s.flags.c_contiguous:
            s = np.ascontiguousarray(s, dtype=np.float64)
        n = s.shape[0]
        lab, coded = None, LABELS_RAW
        if labels is not None:
            y, larr = self._column(labels, "labels")
            if larr is not None:
                if pa.types.is_boolean(larr.type) or pa.types.is_null(larr.type):
                    larr = larr.cast(pa.int8())
                nulls = larr.is_null().to_numpy(zero_copy_only=False) if larr.null_count else None
                y = larr.fill_null(0).to_numpy(zero_copy_only=False) if nulls is not None else \
                    larr.to_numpy(zero_copy_only=False)
            else:
                nulls = None
            if y.shape[0] != n:
                raise InvalidInputError(f"{self._what('labels')}: {y.shape[0]} labels for {n} scores")
            if nulls is None and y.dtype.itemsize == 1 and y.dtype.kind in "biu":
                lab = np.ascontiguousarray(y).view(np.uint8)  # 0/1 bytes as they are
            else:
                coded = LABELS_CODED
                with np.errstate(invalid="ignore"):
                    lab = np.where(y == 0, 0, np.where(y == 1, 1, 3)).astype(np.uint8)
                if nulls is not None:
                    lab[nulls] = 2
        w = None
        if weights is not None:
            w, warr = self._column(weights, "weights")
            if warr is not None:
                w = warr.cast(pa.float64()).to_numpy(zero_copy_only=False)  # nulls: NaN, an invalid weight
            w = np.ascontiguousarray(w, dtype=np.float64)
            if w.shape[0] != n:
                raise InvalidInputError(f"{self._what('weights')}: {w.shape[0]} weights for {n} scores")
        return s, validity, offset, lab, coded, w

    def _fold(self, scores, labels, weights) -> None:
        self._tab = None
        batch = self._inputs(scores, labels, weights)
        s, validity, offset, lab, coded, w = batch
        n = s.shape[0]
        self._room(n)
        if w is not None and self._weights is None:
            self._weights = self._counts.astype(np.float64)  # every earlier row weighs 1
        weighted = self._weights is not None
        nb = self.n_bins
        shift = self.bins.bit_length() - 1
        if self._values is None and not self.strict:  # binned: straight into the state
            perf_update(s, validity, offset, lab, coded, w, self._margin, shift, nb, self._counts.reshape(-1),
                        self._weights.reshape(-1) if weighted else None, None, None,
                        self._spread.reshape(-1), self._sums, self._rejected, self.name)
            return
        # into a scratch state first: the exact table needs the batch's own scores, strict its rejects;
        # a small batch into the exact table is sorted instead (cheaper than zeroing scratch bins)
        small = self._values is not None and n <= _SMALL_BATCH
        counts = None if small else np.zeros(3 * nb, np.int64)
        wsum = np.zeros(3 * nb) if weighted and not small else None
        vmin, vmax = (np.full(nb, np.inf), np.full(nb, -np.inf)) if counts is not None and self._values is not None \
            else (None, None)
        spread = np.zeros((nb, 2)) if counts is not None else None
        sums, rejected = np.zeros(_N_SUMS), np.zeros(len(REJECT_REASONS), np.int64)
        perf_update(s, validity, offset, lab, coded, w, self._margin, shift, nb, counts, wsum, vmin, vmax,
                    None if spread is None else spread.reshape(-1), sums, rejected, self.name)
        if self.strict and rejected.any():
            reasons = ", ".join(f"{REJECT_REASONS[i]}: {int(rejected[i])}" for i in np.flatnonzero(rejected))
            raise InvalidInputError(f"{self._what('scores/labels')}: {int(rejected.sum())} bad rows ({reasons}); "
                                    "nothing of this batch was counted")
        if small:
            self._fold_exact_rows(batch, weighted)
            self._sums += sums
            self._rejected += rejected
            return
        counts = counts.reshape(3, nb)
        wsum = None if wsum is None else wsum.reshape(3, nb)
        if self._values is None:
            self._counts += counts
            self._spread += spread
            if weighted:
                self._weights += wsum
        else:
            self._fold_exact(counts, wsum, spread, vmin, vmax, batch)
        self._sums += sums
        self._rejected += rejected

    def _fold_exact(self, counts, wsum, spread, vmin, vmax, batch) -> None:
        """Add a batch (its bins, and each bin's smallest and largest score) to the exact table;
        fold the table into bins once it holds more than ``exact`` distinct scores."""
        occ = np.flatnonzero(counts.any(axis=0))
        if not occ.size:
            return
        values = self._values
        if (vmin[occ] == vmax[occ]).all():  # one score per bin: the bins are the batch's table
            u, uc, uw = vmin[occ] + 0.0, counts[:, occ], None if wsum is None else wsum[:, occ]
        elif np.union1d(values, vmin[occ] + 0.0).size + int((vmin[occ] < vmax[occ]).sum()) > self.exact:
            u = None  # more distinct scores than the table holds: bins (holding two counts as one more)
        else:  # two scores share a bin: the batch's distinct scores the slow way
            u, uc, uw = self._distinct(batch, wsum is not None, probe=True)
        merged = None if u is None else np.union1d(values, u)
        if merged is None or merged.size > self.exact:
            bc, bw, bs = self._to_bins(values, self._counts, self._weights)
            self._values, self._counts, self._spread = None, bc + counts, bs + spread
            if wsum is not None:
                self._weights = bw + wsum
            return
        self._add_exact(merged, u, uc, uw)

    def _fold_exact_rows(self, batch, weighted: bool) -> None:
        """Add a (small) batch to the exact table by sorting its scores."""
        u, uc, uw = self._distinct(batch, weighted, probe=False)
        if not u.size:
            return
        merged = np.union1d(self._values, u)
        if merged.size > self.exact:
            bc, bw, bs = self._to_bins(self._values, self._counts, self._weights)
            uc_b, uw_b, us_b = self._to_bins(u, uc, uw)
            self._values, self._counts, self._spread = None, bc + uc_b, bs + us_b
            if weighted:
                self._weights = bw + uw_b
            return
        self._add_exact(merged, u, uc, uw)

    def _distinct(self, batch, weighted: bool, probe: bool):
        """The batch's distinct counted scores with their counts (3, m) and weights (or None);
        ``(None, None, None)`` when ``probe`` finds more than the table holds in its first rows."""
        head = 4 * (self.exact + 1)
        if probe and batch[0].shape[0] > head and np.unique(self._accepted(batch, head)[0]).size > self.exact:
            return None, None, None  # continuous scores show early
        ss, y, ww = self._accepted(batch)
        u, inv = np.unique(ss, return_inverse=True)
        m = u.size
        uc = np.bincount(y * m + inv, minlength=3 * m).reshape(3, m)
        uw = None
        if weighted:
            uw = np.bincount(y * m + inv, weights=np.ones(ss.size) if ww is None else ww,
                             minlength=3 * m).reshape(3, m)
        return u, uc, uw

    def _add_exact(self, merged, u, uc, uw) -> None:
        values = self._values
        m = merged.size
        io, iu = np.searchsorted(merged, values), np.searchsorted(merged, u)
        c = np.zeros((3, m), np.int64)
        c[:, io] = self._counts
        c[:, iu] += uc
        if uw is not None:
            nw = np.zeros((3, m))
            nw[:, io] = self._weights
            nw[:, iu] += uw
            self._weights = nw
        self._values, self._counts = merged, c

    def _accepted(self, batch, stop: Optional[int] = None):
        """The counted rows of a batch (of its first ``stop`` rows), by the kernel's rules:
        (scores, class, weights or None)."""
        s, validity, offset, lab, coded, w = batch
        s, lab, w = s[:stop], None if lab is None else lab[:stop], None if w is None else w[:stop]
        n = s.shape[0]
        keep = ~np.isnan(s)
        if validity is not None:
            keep &= np.unpackbits(validity, bitorder="little")[offset:offset + n].astype(bool)
        with np.errstate(invalid="ignore"):
            keep &= np.isfinite(s) if self._margin else (s >= 0.0) & (s <= 1.0)
        y = np.full(n, _UNL, np.int64) if lab is None else lab.astype(np.int64)
        keep &= (y <= 1) | ((y == 2) & (coded == LABELS_CODED)) if lab is not None else True
        if w is not None:
            with np.errstate(invalid="ignore"):
                keep &= (w >= 0.0) & (w <= _MAX_WEIGHT)
            w = w[keep]
        return s[keep] + 0.0, y[keep], w

    def _to_bins(self, values, counts, wts):
        """The bins of an exact table: (counts, weights or None, spread)."""
        nb = self.n_bins
        bc = np.zeros((3, nb), np.int64)
        bw = None if wts is None else np.zeros((3, nb))
        bs = np.zeros((nb, 2))
        if values.size:
            ix = bin_index(values, self._margin, self.bins)
            d = bin_frac(values, self._margin, self.bins)
            n = counts.sum(axis=0).astype(np.float64) if wts is None else wts.sum(axis=0)
            for c in range(3):
                np.add.at(bc[c], ix, counts[c])
                if bw is not None:
                    np.add.at(bw[c], ix, wts[c])
            np.add.at(bs[:, 0], ix, n * d)
            np.add.at(bs[:, 1], ix, n * d * d)
        return bc, bw, bs

    def _binned(self, weighted: bool):
        """This state's bins: (counts, weights or None, spread), weights from the counts if ``weighted``
        and none were used; copies or fresh arrays."""
        wts = self._weights
        if weighted and wts is None:
            wts = self._counts.astype(np.float64)
        if self._values is not None:
            return self._to_bins(self._values, self._counts, wts)
        return self._counts.copy(), None if wts is None else wts.copy(), self._spread.copy()

    def _check_compatible(self, other) -> None:
        if (self.scores, self.bins, self.exact) != (other.scores, other.bins, other.exact):
            raise IncompatibleSketchError(
                f"cannot merge BinaryPerformance(scores={other.scores!r}, bins={other.bins}, exact={other.exact}) "
                f"into BinaryPerformance(scores={self.scores!r}, bins={self.bins}, exact={self.exact})"
                f"{self._label()}")

    def merge(self, other):
        if type(other) is type(self):
            self._check_compatible(other)
        return super().merge(other)

    def _compatible(self, other) -> None:
        self._check_compatible(other)

    def _merge(self, other) -> None:
        self._tab = None
        weighted = self._weights is not None or other._weights is not None
        if weighted and self._weights is None:
            self._weights = self._counts.astype(np.float64)  # every earlier row weighs 1
        if other._counts.any():
            merged = None
            if self._values is not None and other._values is not None:
                merged = np.union1d(self._values, other._values)
            if merged is not None and merged.size <= self.exact:
                ow = other._weights if other._weights is not None or not weighted else \
                    other._counts.astype(np.float64)
                self._add_exact(merged, other._values, other._counts, ow)
            else:
                counts, wts, spread = self._binned(weighted)
                oc, ow, osp = other._binned(weighted)
                self._values, self._counts, self._spread = None, counts + oc, spread + osp
                self._weights = None if wts is None else wts + ow
        self._sums = self._sums + other._sums
        self._rejected = self._rejected + other._rejected

    def _copy(self):
        c = BinaryPerformance(scores=self.scores, bins=self.bins, exact=self.exact, strict=self.strict,
                              name=self.name)
        c._values = None if self._values is None else self._values.copy()
        c._counts = self._counts.copy()
        c._weights = None if self._weights is None else self._weights.copy()
        c._spread = None if self._spread is None else self._spread.copy()
        c._sums = self._sums.copy()
        c._rejected = self._rejected.copy()
        return c

    # -- bytes --------------------------------------------------------------
    def _params(self) -> bytes:
        return codec.Writer().u8(1 if self._margin else 0).u16(self.bins).u64(self.exact).getvalue()

    def _payload(self) -> bytes:
        w = codec.Writer().u8(_LAYOUT_VERSION)
        exact = self._values is not None
        w.u8((1 if exact else 0) | (2 if self._weights is not None else 0))
        c = self._counts
        if exact:
            idx = np.arange(c.shape[1])
        else:
            idx = np.flatnonzero(c.any(axis=0))
        w.u64(idx.size)
        if exact:
            w.f64_values(self._values)
        else:
            w.uvarint_values(np.diff(idx, prepend=-1) - 1)  # gaps between occupied bins
        for k in range(3):
            w.uvarint_values(c[k, idx])
        if self._weights is not None:
            for k in range(3):
                w.f64_values(self._weights[k, idx])
        if not exact:  # unweighted, a bin of one row: its square is its sum's square, not written
            many = (c[:, idx].sum(axis=0) > 1) | (self._weights is not None)
            w.f64_values(self._spread[idx, 0]).f64_values(self._spread[idx[many], 1])
        w.f64_values(self._sums)
        w.uvarint_values(self._rejected)
        return w.getvalue()

    @classmethod
    def _decode(cls, params, payload):
        r = codec.Reader(params, "binary performance params")
        mode, bins, exact = r.u8("scores"), r.u16("bins"), r.u64("exact")
        r.done()
        if mode > 1:
            raise CorruptStateError(f"binary performance params: scores mode {mode} is not 0 or 1")
        try:
            s = cls(scores="margin" if mode else "probability", bins=bins, exact=exact)
        except InvalidInputError as exc:
            raise CorruptStateError(f"binary performance params: {exc}") from None
        r = codec.Reader(payload, "binary performance payload")
        version = r.u8("layout version")
        if version != _LAYOUT_VERSION:
            raise CorruptStateError(f"binary performance payload: layout version {version}, this fastdrift "
                                    f"reads {_LAYOUT_VERSION}; upgrade fastdrift")
        flags = r.u8("flags")
        if flags > 3:
            raise CorruptStateError(f"binary performance payload: unknown flags {flags:#x}")
        is_exact, weighted = bool(flags & 1), bool(flags & 2)
        n = r.u64("entries")
        limit = s.exact if is_exact else s.n_bins
        if n > limit:
            raise CorruptStateError(f"binary performance payload: {n} entries, at most {limit}")
        if is_exact:
            values = r.f64_values(n, "exact scores")
            if n and not (np.all(np.diff(values) > 0) and np.isfinite(values).all()):
                raise CorruptStateError("binary performance payload: exact scores are not finite and increasing")
            if n and not s._margin and (values[0] < 0.0 or values[-1] > 1.0):
                raise CorruptStateError("binary performance payload: probability scores outside [0, 1]")
            if n and np.any(values == 0.0) and np.signbit(values[values == 0.0]).any():
                raise CorruptStateError("binary performance payload: negative zero score")
        else:
            gaps = r.uvarint_values(n, "bin gaps")
            if n and int(gaps.max()) >= s.n_bins:
                raise CorruptStateError("binary performance payload: bin index out of range")
            idx = np.cumsum(gaps.astype(np.int64) + 1) - 1
            if n and idx[-1] >= s.n_bins:
                raise CorruptStateError("binary performance payload: bin index out of range")
        cnt = np.zeros((3, n), np.int64)
        for k in range(3):
            v = r.uvarint_values(n, "counts")
            if n and int(v.max()) > Sketch.MAX_COUNT:
                raise CorruptStateError("binary performance payload: a count above the cap")
            cnt[k] = v.astype(np.int64)
        if n and not is_exact and not cnt.any(axis=0).all():
            raise CorruptStateError("binary performance payload: an empty bin is listed")
        if n and is_exact and not cnt.any(axis=0).all():
            raise CorruptStateError("binary performance payload: an exact score with no rows")
        wts = None
        if weighted:
            wts = np.zeros((3, n))
            for k in range(3):
                wts[k] = r.f64_values(n, "weights")
            if not (np.isfinite(wts).all() and (wts >= 0).all() and not (wts[cnt == 0] != 0).any()):
                raise CorruptStateError("binary performance payload: weights must be finite, >= 0 and 0 "
                                        "where a bin has no rows")
        spread = None
        if not is_exact:
            rows = cnt.sum(axis=0).astype(np.float64) if wts is None else wts.sum(axis=0)
            spread = np.zeros((n, 2))
            spread[:, 0] = r.f64_values(n, "spread sums")
            many = (cnt.sum(axis=0) > 1) | weighted
            spread[many, 1] = r.f64_values(int(many.sum()), "spread squares")
            with np.errstate(over="ignore"):  # a corrupt sum's square overflows to inf: refused below
                spread[~many, 1] = spread[~many, 0] * spread[~many, 0]
            # d in [0, 1): 0 <= sum w d**2 <= sum w d <= sum w (sums of the same rows, rounded alike)
            if not (np.isfinite(spread).all() and (spread >= 0).all() and (spread[:, 1] <= spread[:, 0]).all()
                    and (spread[:, 0] <= rows * (1 + 1e-9)).all()):
                raise CorruptStateError("binary performance payload: a bin's spread sums are out of range")
        sums = r.f64_values(_N_SUMS, "sums")
        rejected = r.uvarint_values(len(REJECT_REASONS), "rejected").astype(np.int64) \
            if r.remaining >= len(REJECT_REASONS) else None
        if rejected is None:
            raise CorruptStateError("binary performance payload: truncated reading rejected counters")
        r.done()
        if (rejected > Sketch.MAX_COUNT).any() or (rejected < 0).any():
            raise CorruptStateError("binary performance payload: rejected counter above the cap")
        count_total(np.concatenate([cnt.ravel(), rejected]), "binary performance payload")
        finite = np.isfinite(sums)
        finite[2] |= sums[2] == np.inf  # margins' log loss is unbounded: its sum may overflow
        if not finite.all() or (sums < 0).any():
            raise CorruptStateError("binary performance payload: sums must be finite (the log loss may be "
                                    "+inf) and >= 0")
        # the sums and the table describe the same rows
        w = cnt.astype(np.float64) if wts is None else wts
        labelled_w, pos_w, unl_w = w[:2].sum(), w[1].sum(), w[2].sum()
        tol = 1e-9 * (labelled_w + unl_w)
        ok = (abs(sums[0] - labelled_w) <= tol and abs(sums[1] - pos_w) <= tol and abs(sums[5] - unl_w) <= tol
              and max(sums[1], sums[3], sums[4]) <= sums[0] * (1 + 1e-12) and sums[6] <= sums[5] * (1 + 1e-12)
              and (labelled_w > 0 or not sums[:5].any()) and (unl_w > 0 or not sums[5:].any()))
        if not ok:
            raise CorruptStateError("binary performance payload: the sums do not match the score table")
        if is_exact:
            s._values, s._counts = values, cnt
            s._weights = wts
        else:
            s._values = None
            s._counts = np.zeros((3, s.n_bins), np.int64)
            s._counts[:, idx] = cnt
            if wts is not None:
                s._weights = np.zeros((3, s.n_bins))
                s._weights[:, idx] = wts
            s._spread = np.zeros((s.n_bins, 2))
            s._spread[idx] = spread
        s._sums = sums
        s._rejected = rejected
        return s

    # -- the score table ----------------------------------------------------
    def _table(self):
        """Occupied entries in score order: (representative score, lo, hi, weight (3, m), count (3, m)),
        built once per state (the caller holds the state lock; every mutation drops it)."""
        if self._tab is None:
            c = self._counts
            wt = self._weights if self._weights is not None else c.astype(np.float64)
            if self._values is not None:
                v = self._values
                self._tab = (v, v, v, wt, c.copy())
                self._tied = np.ones(v.size)
            else:
                occ = np.flatnonzero(c.any(axis=0))
                lo, hi, mid = bin_ranges(self._margin, self.bins)
                self._tab = (mid[occ], lo[occ], hi[occ], wt[:, occ], c[:, occ])
                # how tied a bin's rows are: 1 for one repeated score, about 0 for scores spread
                # over the bin (the sample variance of d, uniform on [0, 1), is 1/12)
                n = wt[:, occ].sum(axis=0)  # weights: a row of weight k spreads as k equal rows
                ds, dq = self._spread[occ].T
                with np.errstate(invalid="ignore", divide="ignore"):
                    var = np.where(n > 1, (dq - ds * ds / n) / (n - 1), 0.0)
                self._tied = np.clip(1.0 - 12.0 * var, 0.0, 1.0)
        return self._tab

    def _prob(self, s):
        return _sigmoid(s) if self._margin else s

    def _threshold(self, threshold: float) -> float:
        """The score cut of a probability ``threshold``."""
        if not (isinstance(threshold, (int, float, np.integer, np.floating)) and 0.0 <= threshold <= 1.0):
            raise InvalidInputError(f"threshold must be a probability in [0, 1], got {threshold!r}")
        threshold = float(threshold)
        if not self._margin:
            return threshold
        if threshold <= 0.0:
            return -math.inf
        if threshold >= 1.0:
            return math.inf
        return math.log(threshold) - math.log1p(-threshold)

    # -- metrics --------------------------------------------------------------
    def roc_auc(self) -> float:
        """Area under the ROC curve (ties count one half, as scikit-learn); NaN without both classes."""
        with self._reading():
            _, _, _, w, _ = self._table()
        neg, pos = w[_NEG], w[_POS]
        P, N = pos.sum(), neg.sum()
        if P <= 0 or N <= 0:
            return math.nan
        below = np.cumsum(neg) - neg
        return float(np.sum(pos * (below + 0.5 * neg)) / (P * N))

    def roc_auc_bound(self) -> float:
        """Largest possible difference between :meth:`roc_auc` and the exact AUC of the rows
        (0 while the table is exact); NaN when the AUC is."""
        with self._reading():
            _, lo, hi, w, _ = self._table()
        P, N = w[_POS].sum(), w[_NEG].sum()
        if P <= 0 or N <= 0:
            return math.nan
        if self._values is not None:
            return 0.0
        return float(0.5 * np.sum(w[_POS] * w[_NEG]) / (P * N))

    def roc_curve(self):
        """``(fpr, tpr, thresholds)``: one point per occupied score entry, from the highest score
        down (as scikit-learn's ``roc_curve`` without dropping points), starting at (0, 0)."""
        with self._reading():
            v, lo, _, w, _ = self._table()
        neg, pos = w[_NEG][::-1], w[_POS][::-1]
        P, N = pos.sum(), neg.sum()
        keep = (neg + pos) > 0
        tp = np.concatenate([[0.0], np.cumsum(pos)[keep]])
        fp = np.concatenate([[0.0], np.cumsum(neg)[keep]])
        thr = self._prob(np.concatenate([[np.inf], lo[::-1][keep]]))
        with np.errstate(invalid="ignore", divide="ignore"):
            return fp / N, tp / P, thr

    def average_precision(self) -> float:
        """Average precision (PR AUC as scikit-learn's ``average_precision_score``); NaN without positives."""
        with self._reading():
            _, _, _, w, _ = self._table()
            tied = self._tied[::-1]
        neg, pos = w[_NEG][::-1], w[_POS][::-1]
        P = pos.sum()
        if P <= 0:
            return math.nan
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        has = pos > 0
        # One threshold per entry, as scikit-learn's per distinct score: the precision at the end
        # of the entry, exact for the exact table and for a bin holding one repeated score.  A bin
        # of spread scores holds its positives and negatives in an unknown order: there, the mean
        # precision along the bin, taking them as evenly mixed,
        #   int_0^1 (a + b x) / (c + d x) dx = b / d + (a d - b c) / d**2 * log1p(d / c).
        # Each bin blends the two by how tied its rows are (docs/sketches.md has the errors).
        tp, fp, pos, neg, tied = tp[has], fp[has], pos[has], neg[has], tied[has]
        at_end = tp / (tp + fp)
        a, c, b, d = tp - pos, tp + fp - pos - neg, pos, pos + neg
        with np.errstate(divide="ignore", invalid="ignore"):
            along = np.where(c > 0, b / d + (a * d - b * c) / (d * d) * np.log1p(d / np.where(c > 0, c, 1.0)),
                             b / d)
        return float(np.sum(pos / P * (tied * at_end + (1.0 - tied) * along)))

    def log_loss(self) -> float:
        """Mean (weighted) log loss of the labelled rows, exact (probabilities clipped to
        [eps, 1 - eps], eps = 2.2e-16, as scikit-learn); NaN when there are none."""
        W = self._sums[0]
        return float(self._sums[2] / W) if W > 0 else math.nan

    def brier(self) -> float:
        """Mean (weighted) squared error of the probability, exact; NaN without labelled rows."""
        W = self._sums[0]
        return float(self._sums[3] / W) if W > 0 else math.nan

    def positive_rate(self) -> float:
        """Weighted fraction of labelled rows that are positive."""
        W = self._sums[0]
        return float(self._sums[1] / W) if W > 0 else math.nan

    def mean_score(self) -> float:
        """Weighted mean probability of the labelled rows."""
        W = self._sums[0]
        return float(self._sums[4] / W) if W > 0 else math.nan

    def _split(self, threshold: float, classes):
        cut = self._threshold(threshold)
        with self._reading():
            v, lo, hi, w, c = self._table()
        above = v >= cut
        return above, w, c

    def confusion(self, threshold: float = 0.5) -> dict:
        """Confusion counts (weighted) and precision, recall, F1 of ``score >= threshold``
        (a probability; for margins its logit).  Exact at 0.5 and for the exact table; in
        bins, the rows of the one bin holding another threshold go by the bin's middle."""
        above, w, _ = self._split(threshold, (0, 1))
        tp = float(w[_POS][above].sum())
        fp = float(w[_NEG][above].sum())
        fn = float(w[_POS][~above].sum())
        tn = float(w[_NEG][~above].sum())
        precision = tp / (tp + fp) if tp + fp > 0 else math.nan
        recall = tp / (tp + fn) if tp + fn > 0 else math.nan
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else math.nan
        total = tp + fp + fn + tn
        accuracy = (tp + tn) / total if total > 0 else math.nan
        return dict(tp=tp, fp=fp, tn=tn, fn=fn, precision=precision, recall=recall, f1=f1, accuracy=accuracy)

    def prediction_rate(self, threshold: float = 0.5) -> float:
        """Weighted fraction of all counted rows (labelled or not) predicted positive."""
        above, w, _ = self._split(threshold, (0, 1, 2))
        total = w.sum()
        return float(w[:, above].sum() / total) if total > 0 else math.nan

    def _top_k(self, k):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"k must be a positive int, got {k!r}")
        with self._reading():
            _, _, _, _, c = self._table()
        neg, pos = c[_NEG][::-1].astype(np.float64), c[_POS][::-1].astype(np.float64)
        n = neg + pos
        total = n.sum()
        if total <= 0:
            return math.nan, math.nan, 0.0
        k = min(int(k), int(total))
        cum = np.cumsum(n)
        j = int(np.searchsorted(cum, k))  # the entry holding the k-th row
        before = cum[j] - n[j]
        tp = pos[:j].sum() + pos[j] * (k - before) / n[j]
        return tp, pos.sum(), float(k)

    def precision_at_k(self, k: int) -> float:
        """Fraction of positives among the ``k`` highest-scored labelled rows (row counts, not
        weights; rows tied with the k-th count in proportion).  Exact for the exact table; in
        bins, the bin holding the k-th row counts in proportion.  ``k`` above the labelled rows
        takes them all."""
        tp, _, k = self._top_k(k)
        return float(tp / k) if k > 0 else math.nan

    def recall_at_k(self, k: int) -> float:
        """Fraction of the positives among the ``k`` highest-scored labelled rows (see
        :meth:`precision_at_k`)."""
        tp, P, _ = self._top_k(k)
        return float(tp / P) if k and P > 0 else math.nan

    def calibration(self, n_bins: int = 10) -> Calibration:
        """Reliability table on ``n_bins`` equal-width probability bins, with the ECE.  Exact for
        the exact table; in bins, each bin's rows count at its middle (within half a bin,
        0.4% of ``min(p, 1 - p)`` at the default bins)."""
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 1 <= n_bins <= 10000:
            raise InvalidInputError(f"n_bins must be an int from 1 to 10000, got {n_bins!r}")
        with self._reading():
            v, _, _, w, c = self._table()
        p = self._prob(v)
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
        wl = w[_NEG] + w[_POS]
        weight = np.bincount(b, weights=wl, minlength=n_bins)
        count = np.bincount(b, weights=(c[_NEG] + c[_POS]).astype(np.float64), minlength=n_bins).astype(np.int64)
        sp = np.bincount(b, weights=wl * p, minlength=n_bins)
        spos = np.bincount(b, weights=w[_POS], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_p = np.where(weight > 0, sp / weight, np.nan)
            frac = np.where(weight > 0, spos / weight, np.nan)
        W = weight.sum()
        ece = float(np.nansum(weight / W * np.abs(frac - mean_p))) if W > 0 else math.nan
        return Calibration(edges, count, weight, mean_p, frac, ece)

    def reliability(self, n_bins: int = 10):
        """``(mean_predicted, fraction_positive, weight)`` of the non-empty calibration bins:
        the points of a reliability diagram."""
        cal = self.calibration(n_bins)
        keep = cal.weight > 0
        return cal.mean_predicted[keep], cal.fraction_positive[keep], cal.weight[keep]

    def metrics(self, threshold: float = 0.5) -> dict:
        """Every metric by name (the values a window report's ``performance`` holds)."""
        with self._reading():
            out = dict(roc_auc=self.roc_auc(), average_precision=self.average_precision(),
                       log_loss=self.log_loss(), brier=self.brier(), ece=self.calibration().ece)
            out.update(self.confusion(threshold))
            out.update(positive_rate=self.positive_rate(), prediction_rate=self.prediction_rate(threshold),
                       labelled=float(self.labelled))
        return out

    # -- estimated performance without labels (CBPE) ---------------------------
    def estimate(self, threshold: float = 0.5, *, labelled: bool = False) -> dict:
        """Expected performance from the scores alone, assuming a calibrated classifier.

        Confidence-based performance estimation: a row of probability ``p`` is a positive with
        probability ``p``, so the expected confusion counts are ``sum p`` / ``sum (1 - p)`` over
        the rows above and below the threshold, and the expected ROC AUC is the AUC of the
        score table with ``p`` positives and ``1 - p`` negatives per row.

        Parameters
        ----------
        threshold : float, default 0.5
            As :meth:`confusion`.
        labelled : bool, default False
            Estimate over the labelled rows too (to set estimates beside the realized metrics);
            by default over the unlabelled rows only.

        Returns
        -------
        dict
            ``roc_auc``, the expected ``tp fp tn fn``, ``precision recall f1 accuracy`` from them,
            the expected ``positive_rate``, the ``prediction_rate``, and ``rows`` (their weight
            when weighted).  NaN where undefined (no rows).
        """
        classes = (0, 1, 2) if labelled else (2,)
        cut = self._threshold(threshold)
        with self._reading():
            v, _, _, w, _ = self._table()
        n = w[list(classes)].sum(axis=0)
        p = self._prob(v)
        epos, eneg = n * p, n * (_sigmoid(-v) if self._margin else 1.0 - p)  # sigmoid(-m): 1 - p to the last digit
        above = v >= cut
        tp, fp = float(epos[above].sum()), float(eneg[above].sum())
        fn, tn = float(epos[~above].sum()), float(eneg[~above].sum())
        P, N = epos.sum(), eneg.sum()
        # pairs within one entry: a positive and a negative of the same score are tied
        auc = float(np.sum(epos * (np.cumsum(eneg) - eneg + 0.5 * eneg)) / (P * N)) if P > 0 and N > 0 else math.nan
        total = tp + fp + fn + tn
        return dict(roc_auc=auc, tp=tp, fp=fp, tn=tn, fn=fn,
                    precision=tp / (tp + fp) if tp + fp > 0 else math.nan,
                    recall=tp / (tp + fn) if tp + fn > 0 else math.nan,
                    f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else math.nan,
                    accuracy=(tp + tn) / total if total > 0 else math.nan,
                    positive_rate=float(P / total) if total > 0 else math.nan,
                    prediction_rate=(tp + fp) / total if total > 0 else math.nan,
                    rows=float(n.sum()))
