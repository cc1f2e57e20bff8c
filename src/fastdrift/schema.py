"""Schema rules, in one place: which Arrow types a reference column's sketch counts,
what changed between a reference and current data, and which change is an error.

Every entry point asks the same questions of the same rules:

* the monitor, once per distinct batch schema (:func:`diff`): which columns it can
  count in this batch and what changed; a change is a signal in the window report,
  never an exception;
* a one-shot comparison of current data or a current profile with a reference
  (file scans, Spark, ``fastdrift compare``): a reference column missing, or of a
  type its sketch can no longer count, is an error (:func:`check_current`,
  :func:`check_profiles`); an Arrow type that changed within the sketch's kind and a
  new column are reported (:func:`diff`).

A change is a :class:`~fastdrift.records.SchemaChange`: ``"missing"`` (expected: the
reference's Arrow type or kind), ``"type"`` (the sketch's kind can no longer count the column:
numeric <-> categorical, other category keys), ``"type_within_kind"`` (the Arrow type changed but
the column still counts on its sketch: ``int64`` <-> ``double``, ``int32`` <-> ``int64``, ``float`` <->
``double``, ``string`` <-> ``large_string``; values are counted as the same numbers / keys) or
``"new"``.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from .errors import IncompatibleSketchError, SchemaError
from .records import SchemaChange
from .sketches import ColumnProfile, Profile
from .sketches.categorical import key_type_of
from .sketches.profile import CATEGORICAL, NUMERIC, column_kind

__all__ = ["fits", "diff", "schema_changes", "check_current", "check_profiles", "ROLES", "WITHIN_KIND"]

#: The change of an Arrow type that the reference column's sketch still counts (see the module docstring).
WITHIN_KIND = "type_within_kind"

Schema = Union[pa.Schema, Mapping[str, str]]


def _key_type(cp: ColumnProfile) -> Optional[str]:
    return cp.categorical.key_type if cp.kind == CATEGORICAL else None


def fits(kind: str, key_type: Optional[str], t: pa.DataType) -> bool:
    """Whether a column of Arrow type ``t`` can be counted by a sketch of ``kind`` (and category keys)."""
    if pat.is_null(t):
        return True  # an all-null column: every sketch counts it as nulls
    if kind == NUMERIC:
        return column_kind(t) == NUMERIC
    kt = key_type_of(t)
    return kt is not None and (key_type is None or kt == key_type)


#: What a monitor's role columns must be: latency a number, error a flag or an error code,
#: event time a timestamp or seconds; a request id anything.
ROLES = {
    "latency": lambda t: column_kind(t) == NUMERIC,
    "error": lambda t: pat.is_boolean(t) or pat.is_integer(t),
    "request_id": lambda t: True,
    "event_time": lambda t: pat.is_timestamp(t) or (column_kind(t) == NUMERIC and not pat.is_null(t)),
}


def _types(schema: Schema) -> Dict[str, object]:
    return {f.name: f.type for f in schema} if isinstance(schema, pa.Schema) else dict(schema)


def _fits_text(cp: ColumnProfile, t: str) -> bool:
    """Whether a saved type string still fits ``cp``'s sketch; a type pyarrow cannot name from its
    string (dictionary, nested) is the caller's to check (see :func:`check_profiles`)."""
    try:
        return fits(cp.kind, _key_type(cp), pa.type_for_alias(t))
    except (ValueError, KeyError, TypeError):
        return True


def diff(columns: Mapping[str, ColumnProfile], ref_types: Mapping[str, Optional[str]], schema: Schema,
         known: Iterable[str] = ()) -> Tuple[Dict[str, bool], List[SchemaChange]]:
    """Reference columns against a current schema: ``(usable, changes)``.

    Parameters
    ----------
    columns : the reference's column sketches (their kinds and category key types)
    ref_types : Arrow type strings of the reference columns, where known (None or absent: unknown)
    schema : the current data's ``pa.Schema``, or name -> Arrow type string (a profile file's
        saved schema: then a type is only compared as a string, its fit is the caller's, see
        :func:`check_profiles`)
    known : other names that are not new (skipped reference columns, role columns)

    Returns
    -------
    usable : reference column -> whether this schema's column can be counted by its sketch
    changes : ``"missing"``, ``"type"`` and ``"type_within_kind"`` changes of reference columns in
        reference order, then ``"new"`` columns in schema order
    """
    cur = _types(schema)
    usable: Dict[str, bool] = {}
    changes: List[SchemaChange] = []
    for n, cp in columns.items():
        exp = ref_types.get(n)
        if n not in cur:
            usable[n] = False
            changes.append(SchemaChange(n, "missing", exp or cp.kind, None))
            continue
        t = cur[n]
        usable[n] = not isinstance(t, pa.DataType) or fits(cp.kind, _key_type(cp), t)
        if not usable[n]:
            changes.append(SchemaChange(n, "type", exp or cp.kind, str(t)))
        elif exp is not None and exp != str(t) and "null" not in (exp, str(t)):
            # Arrow's null type is a column without a value (a CSV reader infers no other), on
            # either side: its missingness is the signal, not a change of type
            within = isinstance(t, pa.DataType) or _fits_text(cp, str(t))
            changes.append(SchemaChange(n, WITHIN_KIND if within else "type", exp, str(t)))
    skip = set(columns) | set(ref_types) | set(known)
    changes += [SchemaChange(n, "new", None, str(t)) for n, t in cur.items() if n not in skip]
    return usable, changes


def schema_changes(ref_types: Mapping[str, str], schema: Schema, columns: Mapping[str, ColumnProfile],
                   known: Iterable[str] = ()) -> List[SchemaChange]:
    """The changes of :func:`diff` that are not errors: types changed within a kind, new columns.

    A saved schema's ``"type"`` change (a type string the sketch cannot count) is kept too: it is
    an error only when the profiles' kinds disagree, which :func:`check_profiles` decides.

    Call :func:`check_current` (data) or :func:`check_profiles` (profiles) first for the errors.
    """
    usable, changes = diff(columns, ref_types, schema, known)
    return [c for c in changes if c.change in ("new", WITHIN_KIND) or (c.change == "type" and usable[c.column])]


def check_current(reference: Profile, schema: pa.Schema, label: str) -> None:
    """SchemaError when current data cannot be counted on the reference's sketches.

    A reference column missing from ``schema``, or of an Arrow type its sketch does not count.
    """
    usable, changes = diff(reference.columns, {}, schema)
    for c in changes:
        if c.change == "missing":
            raise SchemaError(f"{label}: column {c.column!r} of the reference is missing")
        if c.change == "type" and not usable[c.column]:
            raise SchemaError(f"{label}: column {c.column!r} changed type: {reference.columns[c.column].kind} in "
                              f"the reference, Arrow {c.observed} now")


def check_profiles(reference: Mapping[str, ColumnProfile], current: Profile, label: str = "the current data",
                   bins: bool = False) -> None:
    """SchemaError when a current profile cannot be compared with the reference's columns.

    Each reference column must be in ``current`` with the same kind and category key type;
    with ``bins``, numeric columns must also have been counted on the reference's bins
    (IncompatibleSketchError otherwise).
    """
    for n, ref in reference.items():
        cur = current.columns.get(n)
        if cur is None:
            raise SchemaError(f"{label}: column {n!r} of the reference is missing")
        if cur.kind != ref.kind:
            raise SchemaError(f"{label}: column {n!r} changed type: {ref.kind} in the reference, {cur.kind} now")
        a, b = _key_type(ref), _key_type(cur)
        if None not in (a, b) and a != b:
            raise SchemaError(f"{label}: column {n!r} has {a} categories in the reference and {b} categories now")
        if bins and ref.kind == NUMERIC and not np.array_equal(cur.histogram.edges, ref.histogram.edges):
            raise IncompatibleSketchError(
                f"{label}: column {n!r} was counted on other bins than the reference's "
                "(make it with `fastdrift profile --reference REF` or `profile(data, reference=ref)`)")
