"""What the labelled-performance sketches share: paired columns in, bad rows counted by reason.

A performance sketch reads a prediction column and an actual (label) column row by row, and
skips a row it cannot score (a null or NaN on either side, an infinity, an invalid weight),
counting it under the first reason that applies, in the sketch's fixed order of reasons.
``strict=True`` turns the first such row into :class:`~fastdrift.errors.InvalidInputError`
instead, before anything of the call is counted.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

from ..adapters.arrow import as_arrow, float64_values
from ..errors import CorruptStateError, InvalidInputError
from .. import codec
from .base import check_numeric_type

__all__ = ["arrow_column", "float_column", "weight_column", "reasons_of", "check_rows", "write_counts",
           "read_counts"]


def arrow_column(values, what: str):
    """``values`` as a pyarrow Array/ChunkedArray (lists and tuples too); ``what`` names it in errors."""
    if isinstance(values, (list, tuple)):
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInputError(f"{what}: cannot convert the list to Arrow: {exc}") from None
    return as_arrow(values, what)


def float_column(values, what: str) -> Tuple[np.ndarray, np.ndarray]:
    """(float64 values, null mask) of a numeric column."""
    arr = arrow_column(values, what)
    check_numeric_type(arr, what)
    null = np.asarray(arr.is_null(), dtype=bool) if arr.null_count else np.zeros(len(arr), dtype=bool)
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan), null
    return np.asarray(float64_values(arr), dtype=np.float64), null


def weight_column(weights, n: int, what: str) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(weights, invalid mask) or (None, None); a weight is invalid when null, NaN, infinite or negative."""
    if weights is None:
        return None, None
    w, null = float_column(weights, what)
    if w.size != n:
        raise InvalidInputError(f"{what}: {w.size} weights for {n} rows")
    with np.errstate(invalid="ignore"):
        bad = null | ~np.isfinite(w) | (w < 0)
    return w, bad


def reasons_of(masks: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Per row, 1 + the index of the first mask that holds, or 0."""
    code = np.zeros(n, dtype=np.int8)
    for i in range(len(masks) - 1, -1, -1):
        if masks[i] is not None:
            code[masks[i]] = i + 1
    return code


def check_rows(code: np.ndarray, reasons: Sequence[str], strict: bool, what: str,
               not_error: Optional[str] = None) -> np.ndarray:
    """Rows skipped per reason (int64, one per reason); with ``strict`` raise on the first bad row
    (rows skipped for the reason ``not_error``, e.g. a null actual = no label yet, never raise)."""
    if not code.any():
        return np.zeros(len(reasons), dtype=np.int64)
    counts = np.bincount(code, minlength=len(reasons) + 1)[1:].astype(np.int64)
    bad = code if not_error is None else np.where(code == reasons.index(not_error) + 1, 0, code)
    if strict and bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"{what}: row {first} is {reasons[code[first] - 1].replace('_', ' ')} "
            f"({int(counts.sum())} bad rows in this batch: "
            + ", ".join(f"{r} {int(c)}" for r, c in zip(reasons, counts) if c) + ")")
    return counts


def write_counts(w: codec.Writer, counts: Dict[str, int], reasons: Sequence[str]) -> None:
    w.uvarint(len(reasons)).uvarint_values(np.array([counts[r] for r in reasons], dtype=np.int64))


def read_counts(r: codec.Reader, reasons: Sequence[str], what: str) -> Dict[str, int]:
    n = r.uvarint(f"{what} reason count")
    if n != len(reasons):
        raise CorruptStateError(f"{what}: {n} rejection reasons, this version knows {len(reasons)}")
    return dict(zip(reasons, (int(v) for v in r.uvarint_values(n, f"{what} rejected counts"))))
