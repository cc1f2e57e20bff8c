"""Exact JSON form of the immutable records, for checkpoints (no pickle).

Unlike :func:`fastdrift.records.to_jsonable` (meant for humans and exporters),
this keeps enough type information to rebuild equal records: a record is
``{"@": class name, "f": {field: value}}``, a mapping ``{"@m": [[key, value], ...]}``,
a tuple ``{"@t": [...]}``; floats keep NaN/inf through Python's JSON extension
(``NaN``, ``Infinity``), which the reader accepts.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .. import records as R

__all__ = ["report_to_json", "report_from_json", "to_json", "from_json"]

_CLASSES = {c.__name__: c for c in (R.BinContribution, R.DriftSignal, R.LatencySignal, R.KpiSignal,
                                    R.SchemaChange, R.Alert, R.WindowReport)}


def to_json(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"@": type(obj).__name__,
                "f": {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, Mapping):
        return {"@m": [[to_json(k), to_json(v)] for k, v in obj.items()]}
    if isinstance(obj, (tuple, list)):
        return {"@t": [to_json(v) for v in obj]}
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj


def from_json(x):
    if isinstance(x, dict):
        if "@" in x:
            cls = _CLASSES[x["@"]]
            return cls(**{k: from_json(v) for k, v in x["f"].items()})
        if "@m" in x:
            return R.frozen_mapping({from_json(k): from_json(v) for k, v in x["@m"]})
        if "@t" in x:
            return tuple(from_json(v) for v in x["@t"])
        raise KeyError(f"unknown JSON record form with keys {sorted(x)}")
    return x


report_to_json = to_json
report_from_json = from_json
