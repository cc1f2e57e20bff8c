"""The ``.fdp`` file ``fastdrift profile`` writes: a profile plus what a later compare needs.

A bare :class:`~fastdrift.Profile` holds sketches only.  Comparing two saved profiles
also wants what the scan saw around them:

* the Arrow schema of the data (every column's name and type, profiled or not), so a
  compare of two profile files reports type changes within a kind (``int32`` ->
  ``double``) and new columns, as a compare of two data paths does;
* optionally, a redacted evidence sample of the rows (``fastdrift profile --evidence``:
  the config's ``evidence:`` section, the bottom-k sample a monitor keeps per window),
  so the alerts of ``fastdrift compare REF.fdp CUR.fdp`` carry evidence rows too.

Format: the common envelope (:mod:`fastdrift.codec`), kind ``PROFILE_FILE``;
payload = the profile's own envelope as a length-prefixed blob, then one UTF-8 JSON
document ``{"schema": [[name, type], ...] | null, "evidence": [[key, row], ...]}``.
The decoder checks the JSON's shape and never evaluates it.  A file that holds a bare
profile envelope (``Profile.to_bytes()``, or files written before this format) still
reads, with no schema and no evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .errors import CorruptStateError
from . import codec
from .sketches import Profile
from .sketches.sample import jsonable, rows_from_json, rows_to_json

__all__ = ["ProfileFile"]


@dataclass
class ProfileFile:
    """A profile with its source schema (name -> Arrow type string) and evidence rows."""

    profile: Profile
    schema: Optional[Dict[str, str]] = None
    evidence: List[Tuple[int, dict]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        w = codec.Writer()
        w.blob(self.profile.to_bytes())
        doc = {"schema": None if self.schema is None else [[n, t] for n, t in self.schema.items()],
               "evidence": rows_to_json(self.evidence)}
        w.json(doc, default=jsonable)
        return codec.encode(codec.Kind.PROFILE_FILE, b"", w.getvalue())

    @classmethod
    def from_bytes(cls, data) -> "ProfileFile":
        kind, params, payload = codec.decode(data)
        if kind == codec.Kind.PROFILE:
            return cls(Profile.from_bytes(data))
        if kind != codec.Kind.PROFILE_FILE:  # the codec's own "unexpected kind" error
            codec.decode(data, expected_kind=codec.Kind.PROFILE_FILE)
        if len(params):
            raise CorruptStateError(f"profile file: unexpected {len(params)} parameter bytes")
        r = codec.Reader(payload, "profile file")
        prof = Profile.from_bytes(r.blob())
        doc = r.json("metadata")
        r.done()
        if not isinstance(doc, dict) or set(doc) != {"schema", "evidence"}:
            raise CorruptStateError("profile file: metadata must be an object with 'schema' and 'evidence'")
        schema = doc["schema"]
        if schema is not None:
            if not (isinstance(schema, list) and all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in schema)):
                raise CorruptStateError("profile file: schema must be a list of [name, type] strings")
            schema = dict(schema)
        return cls(prof, schema, rows_from_json(doc["evidence"], "profile file"))
