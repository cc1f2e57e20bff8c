"""Profiles: one sketch set per column of a table, mergeable and serializable.

Numeric columns (Arrow integers and floats) get a :class:`Histogram` over
reference bins plus :class:`Moments` and (unless ``tdigest=False``) a
:class:`TDigest` of compression 100 for percentiles and quantile drift; string, large_string, dictionary and
boolean columns get a :class:`Categorical`.  Columns of other types are listed
in ``Profile.skipped`` unless selected explicitly (then they raise).

A reference profile derives its histogram edges from the data (reference
deciles by default), which needs each numeric column whole: ``profile(data)``
reads an iterable of batches into one table first.  A *current* profile gets
its bins from the reference (``profile(data, reference=ref)`` or
``ref.empty_like()`` + ``update``) and then streams batch by batch with state
that does not grow with the data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional

import pyarrow as pa

from ..adapters import iter_batches
from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError, SchemaError
from . import codec
from .categorical import Categorical
from .histogram import Histogram, reference_edges
from .moments import Moments
from .plan import CATEGORICAL, NUMERIC, column_kind, plan_columns, skipped_columns
from .tdigest import TDigest

__all__ = ["Profile", "ColumnProfile", "profile", "column_kind", "NUMERIC", "CATEGORICAL"]

_KIND_CODES = {NUMERIC: 1, CATEGORICAL: 2}
_NUMERIC_WITH_TDIGEST = 3  # kind code of a numeric column that also carries a TDigest


@dataclass
class ColumnProfile:
    """The sketches of one column."""

    name: str
    kind: str
    histogram: Optional[Histogram] = None
    moments: Optional[Moments] = None
    categorical: Optional[Categorical] = None
    tdigest: Optional[TDigest] = None

    def sketches(self):
        return [s for s in (self.histogram, self.moments, self.categorical, self.tdigest) if s is not None]

    @property
    def count(self) -> int:
        return self.sketches()[0].count

    @property
    def missing_count(self) -> int:
        """Nulls, plus NaN for numeric columns."""
        if self.kind == NUMERIC:
            return self.histogram.null_count + self.histogram.nan_count
        return self.categorical.null_count

    def update(self, values) -> None:
        for s in self.sketches():
            s.update(values)

    def merge(self, other: "ColumnProfile") -> None:
        if other.kind != self.kind:
            raise IncompatibleSketchError(
                f"column {self.name!r} is {self.kind} in one profile and {other.kind} in the other")
        if (self.tdigest is None) != (other.tdigest is None):
            raise IncompatibleSketchError(
                f"column {self.name!r} has a t-digest in one profile and not in the other")
        for a, b in zip(self.sketches(), other.sketches()):
            a.merge(b)

    def copy(self) -> "ColumnProfile":
        return ColumnProfile(self.name, self.kind,
                             *(s.copy() if s is not None else None
                               for s in (self.histogram, self.moments, self.categorical, self.tdigest)))

    @classmethod
    def empty(cls, name: str, kind: str, *, edges=None, tdigest: bool = True, compression: float = 100,
              max_categories: int = 10_000, key_type: Optional[str] = None) -> "ColumnProfile":
        """A column profile with nothing counted, built from its specification.

        Parameters
        ----------
        name : str
        kind : {"numeric", "categorical"}
        edges : array_like of float
            Histogram edges of a numeric column (required for it).
        tdigest : bool
            Whether a numeric column carries a :class:`TDigest`.
        compression : float
            The t-digest's compression.
        max_categories : int
            Cardinality cap of a categorical column.
        key_type : {"str", "int", "bool"}, optional
            Key type of a categorical column (fixed by its first update when None).

        Returns
        -------
        ColumnProfile
        """
        if kind == NUMERIC:
            if edges is None:
                raise InvalidInputError(f"column {name!r}: a numeric column profile needs histogram edges")
            td = TDigest(compression, name=name) if tdigest else None
            return cls(name, NUMERIC, Histogram(edges, name=name), Moments(name=name), tdigest=td)
        if kind == CATEGORICAL:
            return cls(name, CATEGORICAL,
                       categorical=Categorical(max_categories, key_type=key_type, name=name))
        raise InvalidInputError(f"column {name!r}: kind must be 'numeric' or 'categorical', got {kind!r}")

    def empty_like(self) -> "ColumnProfile":
        if self.kind == NUMERIC:
            td = TDigest(self.tdigest.compression, name=self.name) if self.tdigest is not None else None
            return ColumnProfile(self.name, NUMERIC, Histogram(self.histogram.edges, name=self.name),
                                 Moments(name=self.name), tdigest=td)
        c = self.categorical
        return ColumnProfile(self.name, CATEGORICAL,
                             categorical=Categorical(c.max_categories, key_type=c.key_type, name=self.name))


class Profile:
    """Per-column sketches of a table: mergeable, serializable, comparable.

    Attributes
    ----------
    columns : dict of str -> ColumnProfile, in table order
    rows : int, rows seen
    skipped : list of str, columns whose type has no sketch
    """

    def __init__(self, columns: Mapping[str, ColumnProfile], rows: int = 0, skipped: Iterable[str] = ()):
        self.columns: Dict[str, ColumnProfile] = dict(columns)
        self.rows = int(rows)
        self.skipped: List[str] = list(skipped)

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def __contains__(self, name) -> bool:
        return name in self.columns

    def __repr__(self):
        return f"Profile(rows={self.rows}, columns={list(self.columns)})"

    def update(self, data) -> "Profile":
        """Count more rows (a Table, RecordBatch, or an iterable / stream of them)."""
        for batch in iter_batches(data):
            names = set(batch.schema.names)
            missing = [c for c in self.columns if c not in names]
            if missing:
                raise SchemaError(f"columns {missing} of the profile are missing from the batch "
                                  f"(it has {batch.schema.names})")
            for name, cp in self.columns.items():
                cp.update(batch.column(name))
            self.rows += batch.num_rows
        return self

    def merge(self, other: "Profile") -> "Profile":
        if list(other.columns) != list(self.columns):
            raise IncompatibleSketchError(
                f"profiles have different columns: {list(self.columns)} vs {list(other.columns)}")
        for name, cp in self.columns.items():
            cp.merge(other.columns[name])
        self.rows += other.rows
        return self

    def copy(self) -> "Profile":
        return Profile({k: v.copy() for k, v in self.columns.items()}, self.rows, self.skipped)

    def empty_like(self) -> "Profile":
        """A profile with the same columns and bins and nothing counted."""
        return Profile({k: v.empty_like() for k, v in self.columns.items()}, 0, self.skipped)

    def __eq__(self, other):
        if not isinstance(other, Profile):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None

    # -- bytes ----------------------------------------------------------------
    def to_bytes(self) -> bytes:
        p = codec.Writer()
        p.u64(len(self.columns))
        for name, cp in self.columns.items():
            p.string(name)
            p.u8(_NUMERIC_WITH_TDIGEST if cp.tdigest is not None else _KIND_CODES[cp.kind])
        p.u64(len(self.skipped))
        for name in self.skipped:
            p.string(name)
        w = codec.Writer()
        w.u64(self.rows)
        for cp in self.columns.values():
            for s in cp.sketches():
                w.blob(s.to_bytes())
        return codec.encode(codec.Kind.PROFILE, p.getvalue(), w.getvalue())

    @classmethod
    def from_bytes(cls, data) -> "Profile":
        """Decode :meth:`to_bytes` output, or the profile inside a ``.fdp`` file that
        ``fastdrift profile`` wrote (kind ``PROFILE_FILE``: its schema and evidence rows are
        read by :class:`fastdrift.profilefile.ProfileFile`)."""
        kind, params, payload = codec.decode(data)
        if kind == codec.Kind.PROFILE_FILE:
            data = codec.Reader(payload, "profile file").blob()
        if kind != codec.Kind.PROFILE:
            _, params, payload = codec.decode(data, expected_kind=codec.Kind.PROFILE)
        r = codec.Reader(params, "profile parameters")
        n = r.u64()
        if n > len(params):
            raise CorruptStateError(f"profile declares {n} columns in {len(params)} bytes")
        specs = []
        for _ in range(n):
            name = r.string()
            code = r.u8()
            kinds = {v: k for k, v in _KIND_CODES.items()}
            kinds[_NUMERIC_WITH_TDIGEST] = NUMERIC
            if code not in kinds:
                raise CorruptStateError(f"profile column {name!r} has unknown kind code {code}")
            specs.append((name, kinds[code], code == _NUMERIC_WITH_TDIGEST))
        n_skipped = r.u64()
        if n_skipped > len(params):
            raise CorruptStateError(f"profile declares {n_skipped} skipped columns in {len(params)} bytes")
        skipped = [r.string() for _ in range(n_skipped)]
        r.done()
        if len({s[0] for s in specs}) != len(specs):
            raise CorruptStateError("profile has duplicate column names")
        r = codec.Reader(payload, "profile payload")
        rows = r.u64()
        columns = {}
        for name, kind, has_td in specs:
            if kind == NUMERIC:
                h = Histogram.from_bytes(r.blob())
                m = Moments.from_bytes(r.blob())
                h.name = m.name = name
                td = None
                if has_td:
                    td = TDigest.from_bytes(r.blob())
                    td.name = name
                columns[name] = ColumnProfile(name, kind, h, m, tdigest=td)
            else:
                c = Categorical.from_bytes(r.blob())
                c.name = name
                columns[name] = ColumnProfile(name, kind, categorical=c)
        r.done()
        return cls(columns, rows, skipped)


def _as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    batches = list(iter_batches(data))
    if not batches:
        raise InvalidInputError("no batches to profile")
    return pa.Table.from_batches(batches)


def profile(data, *, columns: Optional[Iterable[str]] = None, kinds: Optional[Mapping[str, str]] = None,
            bins: int = 10, strategy: str = "quantile", max_categories: int = 10_000,
            reference: Optional[Profile] = None, tdigest: bool = True,
            compression: float = 100) -> Profile:
    """Profile a table: one sketch set per column.

    Parameters
    ----------
    data : pyarrow Table, RecordBatch, RecordBatchReader, Arrow C stream, or iterable of batches
    columns : names to profile (default: every column with a supported type)
    kinds : per-column override, ``"numeric"`` or ``"categorical"``
    bins, strategy : histogram binning of numeric columns (see :func:`reference_edges`)
    max_categories : cardinality cap of categorical columns
    reference : a Profile whose columns and bins to reuse (for profiling *current*
        data against a reference); ``columns``/``kinds``/``bins``/``tdigest`` are then ignored.
    tdigest : add a :class:`TDigest` to every numeric column (default True)
    compression : the t-digests' compression
    """
    if reference is not None:
        return reference.empty_like().update(data)
    table = _as_table(data)
    plans = plan_columns(table.schema, columns, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest,
                         label="the table")
    out: Dict[str, ColumnProfile] = {}
    for p in plans:
        col = table.column(p.name)
        if p.kind == NUMERIC:
            m = Moments(name=p.name).update(col)
            h = Histogram(reference_edges(col, p.bins, p.strategy, p.name, moments=m), name=p.name)
            td = TDigest(compression, name=p.name).update(col) if tdigest else None
            out[p.name] = ColumnProfile(p.name, NUMERIC, h.update(col), m, tdigest=td)
        else:
            cp = ColumnProfile(p.name, CATEGORICAL, categorical=Categorical(max_categories, name=p.name))
            cp.update(col)
            out[p.name] = cp
    # an explicit selection raised on a column without a sketch: nothing was skipped
    skipped = skipped_columns(table.schema, plans) if columns is None else []
    return Profile(out, table.num_rows, skipped)
