"""Which columns of an Arrow schema are profiled, and with which sketches.

One planner for every entry point: :func:`fastdrift.profile` (a table's schema), the file
scan (the dataset's schema; a monitor config is mapped to ``columns`` by
:func:`fastdrift.scan.plan_columns`) and :mod:`fastdrift.spark` (the DataFrame's schema
mapped to Arrow first).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Mapping, Optional, Union

import pyarrow as pa
import pyarrow.types as pat

from ..errors import InvalidInputError, SchemaError
from .histogram import check_binning

__all__ = ["ColumnPlan", "plan_columns", "skipped_columns", "column_kind", "NUMERIC", "CATEGORICAL"]

NUMERIC, CATEGORICAL = "numeric", "categorical"


def column_kind(t: pa.DataType) -> Optional[str]:
    """The default sketch kind for an Arrow type, or None when it has none."""
    if pat.is_dictionary(t) or pat.is_string(t) or pat.is_large_string(t) or pat.is_boolean(t):
        return CATEGORICAL
    if (pat.is_integer(t) or pat.is_floating(t)) and not pat.is_float16(t):
        return NUMERIC
    if pat.is_null(t):
        return NUMERIC
    return None


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is profiled: kind, binning, and whether it gets a t-digest."""

    name: str
    kind: str
    bins: int = 10
    strategy: str = "quantile"
    tdigest: bool = True


def plan_columns(schema: pa.Schema, columns: Union[Iterable[str], Mapping[str, dict], None] = None, *,
                 kinds: Optional[Mapping[str, str]] = None, bins: int = 10, strategy: str = "quantile",
                 tdigest: bool = True, explicit: Optional[bool] = None,
                 label: str = "the data") -> List[ColumnPlan]:
    """The columns to profile, in the order of ``columns`` (default: the schema's).

    Parameters
    ----------
    schema : pa.Schema
        The Arrow types of the data.
    columns : iterable of str, or mapping of str to dict, optional
        The columns to profile; a mapping gives per-column overrides (``kind``, ``bins``,
        ``strategy``).  Default: every column whose type has a sketch.
    kinds : mapping of str to {"numeric", "categorical"}, optional
        Kind overrides (over ``columns``' own).
    bins, strategy, tdigest
        Defaults of the numeric columns.
    explicit : bool, optional
        Whether a column whose type has no sketch raises (default: ``columns`` given); else
        it is left out.
    label : str
        What the schema describes, for error messages.

    Raises
    ------
    InvalidInputError
        A kind is neither numeric nor categorical, or a numeric column's binning is invalid.
    SchemaError
        A column is not in the schema, its type has no sketch (``explicit``), cannot be
        counted as numeric, or is all-null (no reference bins).
    """
    names = schema.names
    kinds = dict(kinds or {})
    for k, v in kinds.items():
        if v not in (NUMERIC, CATEGORICAL):
            raise InvalidInputError(f"column {k!r}: kind must be 'numeric' or 'categorical', got {v!r}")
    if explicit is None:
        explicit = columns is not None
    if columns is None:
        spec = {n: {} for n in names}
    else:
        spec = dict(columns) if isinstance(columns, Mapping) else {c: {} for c in columns}
    missing = [c for c in spec if c not in names]
    if missing:
        raise SchemaError(f"columns {missing} are not in {label} (it has {names})")
    out = []
    for n, s in spec.items():
        t = schema.field(n).type
        kind = kinds.get(n) or s.get("kind") or column_kind(t)
        if kind is None:
            if explicit:
                raise SchemaError(f"column {n!r}: Arrow type {t} has no default sketch; give it a kind")
            continue
        if kind == NUMERIC and pat.is_null(t):
            raise SchemaError(f"column {n!r} is all-null (Arrow null type): no reference bins")
        if kind == NUMERIC and column_kind(t) != NUMERIC:
            raise SchemaError(f"column {n!r}: Arrow type {t} cannot be profiled as numeric")
        plan = ColumnPlan(n, kind, s.get("bins") or bins, s.get("strategy") or strategy, tdigest)
        if kind == NUMERIC:
            check_binning(plan.bins, plan.strategy)
        out.append(plan)
    return out


def skipped_columns(schema: pa.Schema, plans: Iterable[ColumnPlan]) -> List[str]:
    """The columns of ``schema`` that are not planned and whose type has no sketch (``Profile.skipped``)."""
    planned = {p.name for p in plans}
    return [f.name for f in schema if f.name not in planned and column_kind(f.type) is None]
