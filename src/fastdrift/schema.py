"""Schema rules between a reference profile and current data: what is an error, what is a change.
"""
from __future__ import annotations

from typing import Mapping

import pyarrow as pa
import pyarrow.types as pat

from .errors import SchemaError
from .records import SchemaChange
from .sketches import ColumnProfile, Profile
from .sketches.categorical import key_type_of
from .sketches.profile import NUMERIC, column_kind

__all__ = ["schema_changes", "check_current"]


def schema_changes(ref_types: Mapping[str, str], schema, columns: Mapping[str, ColumnProfile]):
    """Schema differences between reference Arrow types and current data that are *not* errors.

    ``schema`` is the current data's ``pa.Schema`` or a mapping of column name to Arrow
    type string (the schema a profile file saved).

    A column of the reference missing from the current data, or whose type no longer
    fits its sketch kind, is an error (raised by :func:`check_current`); an Arrow type
    that changed within the same kind (int64 -> float64, string -> large_string) is a
    ``"type"`` change, a column only in the current data is ``"new"``.
    """
    cur = {f.name: str(f.type) for f in schema} if isinstance(schema, pa.Schema) else dict(schema)
    out = []
    for n, cp in columns.items():
        t = ref_types.get(n)
        if t is not None and n in cur and cur[n] != t:
            out.append(SchemaChange(n, "type", t, cur[n]))
    for name, t in cur.items():
        if name not in columns and name not in ref_types:
            out.append(SchemaChange(name, "new", None, t))
    return out


def check_current(reference: Profile, schema: pa.Schema, label: str) -> None:
    """Raise SchemaError when current data cannot be counted on the reference's sketches."""
    for n, cp in reference.columns.items():
        if n not in schema.names:
            raise SchemaError(f"{label}: column {n!r} of the reference is missing")
        t = schema.field(n).type
        if cp.kind == NUMERIC:
            ok = column_kind(t) == NUMERIC and not pat.is_null(t)
        else:
            kt = key_type_of(t)
            ok = kt is not None and (cp.categorical.key_type is None or kt == cp.categorical.key_type)
        if not ok:
            raise SchemaError(f"{label}: column {n!r} changed type: {cp.kind} in the reference, "
                              f"Arrow {t} now")
