"""Multiclass performance: a confusion matrix of (actual, predicted) classes with a class cap.

Labels are strings or integers (Arrow string, large_string, string_view, dictionary, integer or
boolean columns, numpy arrays, lists; a float column holds integer class ids, its NaN, infinite
and fractional values are bad rows).  Predictions and actuals share one class dictionary, the
categorical kernels' :class:`~fastdrift.kernels.cat.CatTable`: the first ``max_classes``
distinct labels to arrive (in each batch, the predictions before the actuals) get a class of
their own; labels of any further class are pooled into one **other** class (:data:`OTHER` in
outputs), counted, never dropped.  Whether a pooled prediction equals its pooled actual is
checked on the values themselves and counted apart, so ``accuracy`` (and ``micro_f1``, which
equals it for single-label data) stays exact past the cap; per-class metrics and the macro
averages cover the classes below the cap, not the pooled ones.

State: an int64 matrix of ``(classes + 1)**2`` counts (row: actual, column: predicted; index 0 is
the other class) and, once a weighted batch arrives, the exact weight sum of every cell
(:mod:`fastdrift.kernels.exactsum`; unweighted rows weigh 1).  Merging is exact while the union
of classes fits under the cap: a state merged from any split of the rows equals one pass, byte
for byte (the bytes list the classes in sorted order).  Past the cap, totals and accuracy stay
exact, but which classes own a row and column depends on arrival order, as in a single pass.
Memory: ``8 (classes + 1)**2`` bytes plus the class dictionary (``40 + key length`` bytes a class).

Bad rows are skipped and counted in :attr:`MulticlassPerformance.rejected` under the first
reason that applies: ``prediction_null``, ``prediction_nan``, ``prediction_inf``,
``prediction_not_integer``, ``actual_nan``, ``actual_inf``, ``actual_not_integer``, then
``weight_invalid`` (null, NaN, infinite or negative).  ``strict=True`` raises InvalidInputError
instead.  A null actual is no label yet, never an error (the policy of every performance
sketch): the row is counted in :attr:`MulticlassPerformance.unlabelled`, not in ``rejected``.

Metrics follow scikit-learn's conventions (``zero_division=0``): a class with no predicted rows
has precision 0, one with no actual rows recall 0, and F1 is 0 when both are; the macro averages
are over the classes seen as an actual or a prediction.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError, SchemaError
from ..kernels.cat import CatTable
from ..kernels.exactsum import MAX_BYTES, SHIFT, exact_sum, exact_sums_by, int_from_bytes, int_to_bytes, to_float
from .. import codec
from .base import MAX_COUNT, Sketch, count_total
from .categorical import key_type_of
from .rows import arrow_column, check_rows, float_column, read_counts, reasons_of, weight_column, write_counts

__all__ = ["MulticlassPerformance", "OTHER", "REASONS"]

#: The label of the pooled class in outputs.
OTHER = "<other>"
#: Why a row was skipped, in the order the reasons are tried (``actual_null``: unlabelled, not rejected).
REASONS = ("prediction_null", "prediction_nan", "prediction_inf", "prediction_not_integer",
           "actual_null", "actual_nan", "actual_inf", "actual_not_integer", "weight_invalid")
_KEY_CODES = {None: 0, "str": 1, "int": 2, "bool": 3}
_MAX_CLASSES = 4096  # a (4097 x 4097) int64 matrix is 134 MB
_LAYOUT = 1


def _labels(values, what: str):
    """(Arrow labels, key type, [null, nan, inf, not_integer] masks) of a label column."""
    arr = arrow_column(values, what)
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):
        arr = arr.cast(t.storage_type)
        t = arr.type
    n = len(arr)
    if pat.is_floating(t):
        x, null = float_column(arr, what)
        with np.errstate(invalid="ignore"):
            nan, inf = np.isnan(x) & ~null, np.isinf(x)
            frac = np.isfinite(x) & ((x != np.floor(x)) | (np.abs(x) >= 2.0**63))
        bad = null | nan | inf | frac
        ints = np.where(bad, 0.0, x).astype(np.int64)
        return pa.array(ints, mask=bad), "int", [null, nan, inf, frac]
    if pat.is_null(t):
        return arr, None, [np.ones(n, dtype=bool), None, None, None]
    kt = key_type_of(t)
    if kt is None:
        raise SchemaError(f"{what}: class labels are strings, integers or booleans, got Arrow type {t}")
    null = np.asarray(arr.is_null(), dtype=bool) if arr.null_count or pat.is_dictionary(t) else None
    return arr, kt, [null, None, None, None]


def _plain(arr, kt: str):
    """Labels as one comparable type (dictionaries decoded)."""
    t = arr.type
    if pat.is_dictionary(t):
        arr = arr.cast(t.value_type)
    return arr.cast(pa.large_string() if kt == "str" else pa.int64(), safe=False)


class MulticlassPerformance(Sketch):
    """Mergeable confusion matrix of (actual, predicted) classes, with a class cap.

    Parameters
    ----------
    max_classes : int, default 100
        Classes with a row and column of their own, at most 4096; further classes are
        pooled into :data:`OTHER`.
    strict : bool, default False
        Raise :class:`~fastdrift.errors.InvalidInputError` on a bad row instead of
        skipping and counting it.
    name : str, optional
        Name used in error messages.

    Examples
    --------
    >>> import fastdrift
    >>> mp = fastdrift.MulticlassPerformance().update(["a", "b", "b", "c"], ["a", "b", "c", "c"])
    >>> mp.accuracy(), mp.labelled, round(mp.macro_f1(), 4)
    (0.75, 4, 0.7778)
    """

    KIND = codec.Kind.MULTICLASS_PERFORMANCE

    def __init__(self, max_classes: int = 100, *, strict: bool = False, name: Optional[str] = None):
        super().__init__(name)
        if isinstance(max_classes, bool) or not isinstance(max_classes, (int, np.integer)) \
                or not 1 <= max_classes <= _MAX_CLASSES:
            raise InvalidInputError(f"max_classes must be an integer in [1, {_MAX_CLASSES}], got {max_classes!r}")
        self.max_classes = int(max_classes)
        self.strict = bool(strict)
        self._key_type: Optional[str] = None
        self._table: Optional[CatTable] = None
        self._m = np.zeros((1, 1), dtype=np.int64)  # [actual, predicted]; index 0 is OTHER
        self._w: Optional[np.ndarray] = None  # object array of exact weight sums, once weighted
        self._other_correct = 0
        self._w_other_correct = 0
        self._rejected = dict.fromkeys(REASONS, 0)

    # -- counters -------------------------------------------------------------
    @property
    def key_type(self) -> Optional[str]:
        return self._key_type

    @property
    def labelled(self) -> int:
        """Rows scored: a valid prediction and actual (and weight)."""
        return int(self._m.sum())

    @property
    def rejected(self) -> Dict[str, int]:
        """Rows skipped as bad, by reason (every reason of :data:`REJECT_REASONS`, zeros included)."""
        return {k: v for k, v in self._rejected.items() if k != "actual_null"}

    @property
    def unlabelled(self) -> int:
        """Rows with a valid prediction and a null actual: no label yet, never an error."""
        return self._rejected["actual_null"]

    @property
    def count(self) -> int:
        """Every row passed to update: labelled, unlabelled and rejected."""
        return self.labelled + sum(self._rejected.values())

    @property
    def other_count(self) -> int:
        """Labelled rows whose actual or predicted class was pooled into :data:`OTHER`."""
        return int(self._m[0, :].sum() + self._m[1:, 0].sum())

    @property
    def weighted(self) -> bool:
        return self._w is not None

    def _order(self, keys: list) -> List[int]:
        """Ids in the canonical order of their keys (integers as int64 bit patterns)."""
        if self._key_type == "str":
            return sorted(range(len(keys)), key=lambda i: keys[i])
        return sorted(range(len(keys)), key=lambda i: int(keys[i]) - (1 << 64) * (int(keys[i]) >= 1 << 63))

    def _keys(self) -> list:
        if self._table is None:
            return []
        keys = self._table.keys()
        return [bool(k) for k in keys] if self._key_type == "bool" else list(keys)

    @property
    def classes(self) -> list:
        """Classes with a row and column of their own, sorted."""
        with self._reading():
            keys = self._keys()
            return [keys[i] for i in self._order(keys)]

    # -- metrics ----------------------------------------------------------------
    def _cells(self):
        """(keys in id order, cell values as Python ints in a common unit, other-correct, present)."""
        keys = self._keys()
        if self._w is None:
            cells = self._m.astype(object)
            oc = self._other_correct
        else:
            cells, oc = self._w, self._w_other_correct
        present = (self._m[1:, :].sum(axis=1) + self._m[:, 1:].sum(axis=0)) > 0
        return keys, cells, oc, present

    def confusion_matrix(self, weighted: Optional[bool] = None) -> Tuple[list, np.ndarray]:
        """``(labels, matrix)``: rows are actual classes, columns predicted ones (scikit-learn's
        layout), classes sorted, plus :data:`OTHER` last when any row was pooled.

        ``weighted`` (default: whether a weighted batch was seen) gives float weight sums
        instead of int64 counts.
        """
        with self._reading():
            keys = self._keys()
            order = self._order(keys)
            idx = [i + 1 for i in order]
            labels = [keys[i] for i in order]
            if self.other_count:
                idx.append(0)
                labels.append(OTHER)
            if weighted is None:
                weighted = self._w is not None
            if weighted:
                src = self._w if self._w is not None else self._m.astype(object) * (1 << SHIFT)
                sub = src[np.ix_(idx, idx)]
                return labels, np.array([[to_float(v) for v in row] for row in sub], dtype=np.float64).reshape(
                    len(idx), len(idx))
            return labels, self._m[np.ix_(idx, idx)].copy()

    def accuracy(self) -> float:
        """Top-1 accuracy (weighted when weights were given); NaN without labelled rows."""
        with self._reading():
            _, cells, oc, _ = self._cells()
            total = int(cells.sum())
            correct = int(np.trace(cells[1:, 1:])) + oc if cells.shape[0] > 1 else oc
            return to_float(correct, total)

    def per_class(self) -> Dict[object, Dict[str, float]]:
        """``{class: {"precision", "recall", "f1", "support"}}`` for the classes seen (sorted);
        ``support`` is the (weighted) number of actual rows of the class."""
        with self._reading():
            keys, cells, _, present = self._cells()
            unit = 1 if self._w is None else 1 << SHIFT
            out = {}
            for i in self._order(keys):
                if not present[i]:
                    continue
                k = i + 1
                tp, supp, pred = int(cells[k, k]), int(cells[k, :].sum()), int(cells[:, k].sum())
                out[keys[i]] = {
                    "precision": to_float(tp, pred) if pred else 0.0,
                    "recall": to_float(tp, supp) if supp else 0.0,
                    "f1": to_float(2 * tp, supp + pred) if supp + pred else 0.0,
                    "support": to_float(supp, unit),
                }
            return out

    def _macro(self, what: str) -> float:
        pc_ = self.per_class()
        return float(np.mean([v[what] for v in pc_.values()])) if pc_ else float("nan")

    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 over the classes seen."""
        return self._macro("f1")

    def micro_f1(self) -> float:
        """Micro-averaged F1: for single-label data, equal to :meth:`accuracy`."""
        return self.accuracy()

    def metrics(self) -> Dict[str, float]:
        """``accuracy``, ``macro_f1``, ``micro_f1``, ``macro_precision``, ``macro_recall``,
        ``labelled`` and ``other`` (rows with a pooled class), as floats."""
        with self._reading():
            acc = self.accuracy()
            return {"accuracy": acc, "macro_f1": self._macro("f1"), "micro_f1": acc,
                    "macro_precision": self._macro("precision"), "macro_recall": self._macro("recall"),
                    "labelled": float(self.labelled), "other": float(self.other_count)}

    def __repr__(self):
        return (f"MulticlassPerformance(classes={len(self._keys())}, labelled={self.labelled}, "
                f"other={self.other_count}, rejected={sum(self._rejected.values())}, "
                f"max_classes={self.max_classes})")

    # -- update -----------------------------------------------------------------
    def update(self, predictions, actuals, weights=None):
        """Fold in rows of predicted and actual class labels, with optional non-negative ``weights``.

        Bad rows are skipped and counted in :attr:`rejected` (or raise, with ``strict``).
        On an error nothing of this call is counted.  Returns ``self``.
        """
        with self._mutating():
            self._update_rows(predictions, actuals, weights)
        return self

    def _what(self, side: str) -> str:
        return f"{side} of {self.name!r}" if self.name is not None else side

    def _check_key_type(self, kt: Optional[str], what: str) -> None:
        if kt is not None and self._key_type is not None and kt != self._key_type \
                and {kt, self._key_type} != {"int", "bool"}:
            raise SchemaError(f"{what}: classes are {self._key_type} labels, got {kt} labels")

    def _update_rows(self, predictions, actuals, weights) -> None:
        p, pkt, pmasks = _labels(predictions, self._what("prediction"))
        a, akt, amasks = _labels(actuals, self._what("actual"))
        n = len(p)
        if len(a) != n:
            raise InvalidInputError(f"{self._what('actual')}: {len(a)} actuals for {n} predictions")
        self._check_key_type(pkt, self._what("prediction"))
        self._check_key_type(akt, self._what("actual"))
        if pkt is not None and akt is not None and pkt != akt and {pkt, akt} != {"int", "bool"}:
            raise SchemaError(f"{self._what('actual')}: {akt} labels, but the predictions are {pkt} labels")
        w, w_bad = weight_column(weights, n, self._what("weights"))
        self._room(n)
        code = reasons_of(pmasks + amasks + [w_bad], n)
        rejected = check_rows(code, REASONS, self.strict, self._what("rows"), "actual_null")
        ok = code == 0
        n_ok = int(ok.sum())
        kt = self._key_type or pkt or akt
        if kt == "bool" and "int" in (pkt, akt):
            kt = "int"
        table, m, wsum, oc, woc = self._table, self._m, self._w, self._other_correct, self._w_other_correct
        if n_ok:
            if n_ok < n:
                keep = pa.array(ok)
                p, a = p.filter(keep), a.filter(keep)
                w = w[ok] if w is not None else None
            table = (table.copy() if table is not None
                     else CatTable("str" if kt == "str" else "int", self.max_classes))
            ids_p = table.lookup(p, name=self._what("prediction"))
            ids_a = table.lookup(a, name=self._what("actual"))
            size = table.n_ids + 1
            m = self._grown(m, size)
            cells = (ids_a + 1) * size + (ids_p + 1)  # FD_CAT_ID_OTHER (-1) -> index 0
            m = m + np.bincount(cells, minlength=size * size).reshape(size, size)
            pooled = np.flatnonzero((ids_p < 0) & (ids_a < 0))
            same = np.zeros(0, dtype=bool)
            if pooled.size:
                idx = pa.array(pooled)
                same = np.asarray(pc.fill_null(pc.equal(_plain(p.take(idx), kt), _plain(a.take(idx), kt)), False),
                                  dtype=bool)
                oc += int(same.sum())
            if w is not None or wsum is not None:
                if wsum is None:  # the first weighted batch: the rows before it weigh 1
                    wsum, woc = self._m.astype(object) << SHIFT, self._other_correct << SHIFT
                wsum = self._grown(wsum, size)
                if w is None:
                    add = np.bincount(cells, minlength=size * size).astype(object) << SHIFT
                    woc += int(same.sum()) << SHIFT
                else:
                    add = np.array(exact_sums_by(cells, w, size * size), dtype=object)
                    woc += exact_sum(w[pooled[same]]) if same.size else 0
                wsum = wsum + add.reshape(size, size)
        elif w is not None and wsum is None:
            wsum, woc = self._m.astype(object) << SHIFT, self._other_correct << SHIFT
        self._key_type = kt if n_ok or self._key_type else self._key_type
        self._table, self._m, self._w, self._other_correct, self._w_other_correct = table, m, wsum, oc, woc
        for k, c in zip(REASONS, rejected.tolist()):
            self._rejected[k] += c

    @staticmethod
    def _grown(a: np.ndarray, size: int) -> np.ndarray:
        if a.shape[0] >= size:
            return a
        out = np.zeros((size, size), dtype=a.dtype)
        if a.dtype == object:
            out[:] = 0
        out[:a.shape[0], :a.shape[1]] = a
        return out

    def _update(self, values) -> None:  # pragma: no cover - update() takes two columns
        raise InvalidInputError("MulticlassPerformance.update takes predictions and actuals")

    # -- merge, copy, bytes -------------------------------------------------------
    def _compatible(self, other) -> None:
        if other.max_classes != self.max_classes:
            raise IncompatibleSketchError(f"max_classes differ: {self.max_classes} vs {other.max_classes}")
        try:
            self._check_key_type(other._key_type, "merge")
        except SchemaError as exc:
            raise IncompatibleSketchError(str(exc)) from None

    def _merge(self, other) -> None:
        self._compatible(other)
        keys = other._keys()
        table = self._table
        if keys:
            table = (table.copy() if table is not None
                     else CatTable("str" if other._key_type == "str" else "int", self.max_classes))
            ids = np.concatenate([[-1], table.lookup(pa.array(keys))]) + 1
        else:
            ids = np.zeros(1, dtype=np.int64)
        size = (table.n_ids if table is not None else 0) + 1
        m = self._grown(self._m, size).copy()
        np.add.at(m, (ids[:, None], ids[None, :]), other._m)
        # a class the other sketch kept but this one pools: its correct rows stay correct
        newly = [i for i in range(1, ids.size) if ids[i] == 0]
        newly_correct = int(sum(other._m[i, i] for i in newly))
        wsum = None
        if self._w is not None or other._w is not None:
            mine = self._w if self._w is not None else self._m.astype(object) << SHIFT
            theirs = other._w if other._w is not None else other._m.astype(object) << SHIFT
            wsum = self._grown(mine, size).copy()
            for i, j in zip(*np.nonzero(other._m)):
                wsum[ids[i], ids[j]] += theirs[i, j]
            self._w_other_correct = ((self._w_other_correct if self._w is not None else self._other_correct << SHIFT)
                                     + (other._w_other_correct if other._w is not None
                                        else other._other_correct << SHIFT)
                                     + sum(theirs[i, i] for i in newly))
        if self._key_type is None or (self._key_type == "bool" and other._key_type == "int"):
            self._key_type = other._key_type
        self._table, self._m, self._w = table, m, wsum
        self._other_correct += other._other_correct + newly_correct
        for k in REASONS:
            self._rejected[k] += other._rejected[k]

    def _copy(self):
        c = MulticlassPerformance(self.max_classes, strict=self.strict, name=self.name)
        c._key_type = self._key_type
        c._table = self._table.copy() if self._table is not None else None
        c._m = self._m.copy()
        c._w = self._w.copy() if self._w is not None else None
        c._other_correct, c._w_other_correct = self._other_correct, self._w_other_correct
        c._rejected = dict(self._rejected)
        return c

    def _params(self) -> bytes:
        return codec.Writer().u8(_LAYOUT).u64(self.max_classes).getvalue()

    def _payload(self) -> bytes:
        keys = self._keys()
        order = self._order(keys)
        idx = [0] + [i + 1 for i in order]
        w = codec.Writer().u8(_KEY_CODES[self._key_type]).uvarint(len(keys))
        if self._key_type == "str":
            for i in order:
                w.string(keys[i])
        else:
            w.i64_array(np.array([int(keys[i]) - (1 << 64) * (int(keys[i]) >= 1 << 63) for i in order],
                                 dtype=np.int64))
        m = self._m[np.ix_(idx, idx)].reshape(-1)
        w.uvarint_values(m).uvarint(self._other_correct)
        write_counts(w, self._rejected, REASONS)
        w.u8(int(self._w is not None))
        if self._w is not None:
            cells = self._w[np.ix_(idx, idx)].reshape(-1)
            nz = np.flatnonzero(m)
            w.uvarint(nz.size).uvarint_values(nz)
            for v in cells[nz]:
                w.blob(int_to_bytes(int(v)))
            w.blob(int_to_bytes(self._w_other_correct))
        return w.getvalue()

    @classmethod
    def _decode(cls, params, payload):
        r = codec.Reader(params, "multiclass performance params")
        layout = r.u8("layout")
        cap = r.u64("max_classes")
        r.done()
        if layout != _LAYOUT or not 1 <= cap <= _MAX_CLASSES:
            raise CorruptStateError(f"multiclass performance params: layout {layout}, max_classes {cap}")
        r = codec.Reader(payload, "multiclass performance payload")
        code = r.u8("key type")
        types = {v: k for k, v in _KEY_CODES.items()}
        if code not in types:
            raise CorruptStateError(f"multiclass performance payload: key type code {code}")
        kt = types[code]
        n = r.uvarint("class count")
        if n > cap or (kt is None and n):
            raise CorruptStateError(f"multiclass performance payload: {n} classes (cap {cap}, key type {kt})")
        if kt == "str":
            keys = [r.string(f"class {i}") for i in range(n)]
        else:
            keys = r.i64_array("classes").tolist()
            if len(keys) != n:
                raise CorruptStateError(f"multiclass performance payload: {len(keys)} classes, expected {n}")
            if kt == "bool":
                if any(k not in (0, 1) for k in keys):
                    raise CorruptStateError("multiclass performance payload: boolean classes other than 0/1")
                keys = [bool(k) for k in keys]
        if keys != sorted(keys) or len(set(keys)) != n:
            raise CorruptStateError("multiclass performance payload: classes not sorted and distinct")
        size = n + 1
        m = r.uvarint_values(size * size, "confusion counts")
        if m.size and int(m.max()) > MAX_COUNT:
            raise CorruptStateError("multiclass performance payload: a count is above the cap")
        m = m.astype(np.int64)
        oc = r.uvarint("other correct")
        rejected = read_counts(r, REASONS, "multiclass performance payload")
        total = count_total(np.concatenate([m, np.array(list(rejected.values()), dtype=np.int64)]),
                            "multiclass performance payload")
        m = m.reshape(size, size)
        if oc > m[0, 0] or (kt is None and total - sum(rejected.values())):
            raise CorruptStateError("multiclass performance payload: inconsistent counts")
        present = (m[1:, :].sum(axis=1) + m[:, 1:].sum(axis=0)) > 0
        if not present.all():
            raise CorruptStateError("multiclass performance payload: a class without rows")
        weighted = r.u8("weighted")
        if weighted > 1:
            raise CorruptStateError(f"multiclass performance payload: weighted flag {weighted}")
        wsum, woc = None, 0
        if weighted:
            k = r.uvarint("weighted cells")
            if k > r.remaining:
                raise CorruptStateError(f"multiclass performance payload: {k} weighted cells")
            nz = r.uvarint_values(k, "weighted cell indices").astype(np.int64)
            if not np.array_equal(nz, np.flatnonzero(m.reshape(-1))):
                raise CorruptStateError("multiclass performance payload: weighted cells do not match the counts")
            flat = np.zeros(size * size, dtype=object)
            flat[:] = 0
            for j, i in enumerate(nz.tolist()):
                raw = r.blob(f"weight sum {j}")
                if len(raw) > MAX_BYTES:
                    raise CorruptStateError("multiclass performance payload: a weight sum is too long")
                flat[i] = int_from_bytes(raw)
            raw = r.blob("other correct weight")
            if len(raw) > MAX_BYTES:
                raise CorruptStateError("multiclass performance payload: a weight sum is too long")
            woc = int_from_bytes(raw)
            wsum = flat.reshape(size, size)
            if any(v < 0 for v in flat) or woc < 0 or woc > wsum[0, 0]:
                raise CorruptStateError("multiclass performance payload: negative or inconsistent weight sums")
        r.done()
        mp = cls(int(cap))
        mp._key_type = kt
        if n:
            mp._table = CatTable("str" if kt == "str" else "int", int(cap))
            mp._table.add_counts(keys, np.zeros(n, dtype=np.int64))
        mp._m, mp._w, mp._other_correct, mp._w_other_correct = m, wsum, int(oc), woc
        mp._rejected = rejected
        return mp
