"""Profiles: one sketch set per column of a table, mergeable and serializable.

Numeric columns (Arrow integers, floats, decimals, dates, timestamps, times, durations: counted
as :func:`fastdrift.adapters.arrow.counted` converts them) get a :class:`Histogram` over
reference bins plus :class:`Moments` and (unless ``tdigest=False``) a
:class:`TDigest` of compression 100 for percentiles and quantile drift; string (also large and
view), dictionary and boolean columns get a :class:`Categorical`.  Columns of other types
(nested, binary) are listed in ``Profile.skipped`` unless selected explicitly (then they raise);
:func:`skip_reasons` says why.  A column with no non-missing value (all null, all NaN, Arrow's
null type, or no rows) is profiled like any other: its null and NaN counts are its profile.
:func:`plan_columns` is that rule over an Arrow schema, for every entry point
(:func:`fastdrift.profile`, the file scan with a monitor config mapped by
:func:`fastdrift.scan.plan_columns`, Spark with its schema mapped to Arrow).

With a label column and a prediction column (``label=`` and ``prediction=`` of
:func:`fastdrift.profile`, ``--label`` of the command line), a profile also carries a
:class:`PerformanceProfile`: the prediction's scores against the labels in a
:class:`~fastdrift.sketches.performance.BinaryPerformance`, counted in the same pass.  The label
column is never a feature; data without it (labels not arrived yet) counts scores only, for the
estimated performance.

With ``segment_by`` (:func:`fastdrift.profile`), a profile also holds one profile per segment
key (``Profile.segments``, keys from :mod:`fastdrift.adapters.segments`) on the whole's columns
and bins; every row is counted once, into its segment, and the whole is their merge.

A reference profile derives its histogram edges from the data (reference
deciles by default): :func:`fastdrift.profile` (:mod:`fastdrift.sketches.reference`).
A *current* profile gets its bins from the reference (``ref.empty_like()`` +
``update``) and then streams batch by batch with state that does not grow with the data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from ..adapters import iter_batches
from ..adapters.segments import DEFAULT_MAX_SEGMENTS, MAX_SEGMENTS_LIMIT, OTHER, Segmenter, cap_keys, \
    check_segment_columns, parse_segment_key
from ..adapters.arrow import as_arrow, counted, is_numeric_type, is_string_type, skip_reason
from ..errors import CorruptStateError, CountOverflowError, IncompatibleSketchError, InvalidInputError, SchemaError
from .. import codec
from .categorical import Categorical, key_type_of
from .base import MAX_COUNT
from .histogram import Histogram, check_binning
from .moments import Moments
from .performance import BinaryPerformance
from .segmented import SegmentSplit, encode_short_strings, update_sketches
from .tdigest import TDigest

__all__ = ["Profile", "ColumnProfile", "ColumnPlan", "PerformanceProfile", "plan_columns", "skipped_columns", "skip_reasons",
           "column_kind", "NUMERIC", "CATEGORICAL"]

NUMERIC, CATEGORICAL = "numeric", "categorical"


def column_kind(t: pa.DataType) -> Optional[str]:
    """The default sketch kind for an Arrow type, or None when it has none."""
    if pat.is_dictionary(t):
        return CATEGORICAL if key_type_of(t) is not None else None
    if is_string_type(t) or pat.is_boolean(t):
        return CATEGORICAL
    if is_numeric_type(t) or pat.is_null(t):  # null: an all-null column, counted as nulls
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
        counted as numeric.
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


def skip_reasons(schema, skipped: Iterable[str]) -> Dict[str, str]:
    """Column -> why it is not counted (one line), for the ``skipped`` columns of ``schema``
    (a ``pa.Schema``, or column -> Arrow type string as a profile file saves it)."""
    types = {f.name: f.type for f in schema} if isinstance(schema, pa.Schema) else dict(schema or {})
    return {n: skip_reason(types[n]) if n in types else "its type has no sketch" for n in skipped}


_KIND_CODES = {NUMERIC: 1, CATEGORICAL: 2}
_NUMERIC_WITH_TDIGEST = 3  # kind code of a numeric column that also carries a TDigest
_PERFORMANCE = 1  # code of the optional section after the skipped columns: a PerformanceProfile
_SEGMENTS = 2  # code of the optional section after that: the segment columns, cap and keys


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
        values = counted(as_arrow(values, self.name))  # converted once for every sketch
        for s in self.sketches():
            s.update(values)

    def _same_sketches(self, other: "ColumnProfile") -> None:
        if other.kind != self.kind:
            raise IncompatibleSketchError(
                f"column {self.name!r} is {self.kind} in one profile and {other.kind} in the other")
        if (self.tdigest is None) != (other.tdigest is None):
            raise IncompatibleSketchError(
                f"column {self.name!r} has a t-digest in one profile and not in the other")

    def merge(self, other: "ColumnProfile") -> None:
        self._same_sketches(other)
        for a, b in zip(self.sketches(), other.sketches()):
            a.merge(b)

    def check_mergeable(self, other: "ColumnProfile") -> None:
        """Raise the IncompatibleSketchError (or CountOverflowError) :meth:`merge` of ``other``
        would, naming the column, without changing anything."""
        self._same_sketches(other)
        for a, b in zip(self.sketches(), other.sketches()):
            try:
                a.check_mergeable(b)
            except IncompatibleSketchError as exc:
                if f"column {self.name!r}" in str(exc):
                    raise
                raise IncompatibleSketchError(f"column {self.name!r}: {exc}") from None

    def merge_many(self, others: List["ColumnProfile"]) -> None:
        """:meth:`merge` each of ``others`` in turn (the same state), each sketch's parts in one
        :meth:`~fastdrift.sketches.base.Sketch.merge_many` (a window close merges many panes)."""
        for o in others:
            self._same_sketches(o)
        for a, *bs in zip(self.sketches(), *(o.sketches() for o in others)):
            a.merge_many(bs)

    @staticmethod
    def merge_each(targets: List["ColumnProfile"], groups: List[List["ColumnProfile"]]) -> None:
        """``targets[i].merge_many(groups[i])`` for every ``i`` (distinct targets; the same states),
        each kind of sketch of every target in one :meth:`~fastdrift.sketches.base.Sketch.merge_each`
        call (a window close: every segment's panes of every column at once)."""
        slots: dict = {}
        for t, g in zip(targets, groups):
            kind, no_td = t.kind, t.tdigest is None
            for o in g:
                if o.kind != kind or (o.tdigest is None) != no_td:
                    t._same_sketches(o)
            for attr in ("histogram", "moments", "categorical", "tdigest"):
                a = getattr(t, attr)
                if a is not None:
                    tl, gl = slots.setdefault(attr, ([], []))
                    tl.append(a)
                    gl.append([getattr(o, attr) for o in g])
        for tl, gl in slots.values():
            type(tl[0]).merge_each(tl, gl)

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
            td = self.tdigest
            h = self.histogram.empty_like()  # the same bins, their lookup tables shared
            h.name = self.name
            return ColumnProfile(self.name, NUMERIC, h, Moments(name=self.name),
                                 tdigest=TDigest(td.compression, name=self.name) if td is not None else None)
        c = self.categorical
        return ColumnProfile.empty(self.name, CATEGORICAL, max_categories=c.max_categories, key_type=c.key_type)


@dataclass
class PerformanceProfile:
    """A profile's performance sketch: the ``prediction`` column's scores against the ``label`` column.

    Rows of a batch without the label column count their scores only (``sketch`` counts them
    apart from the labelled rows: the estimated performance's input).  Bad rows (a label
    outside {0, 1}, a NaN score) are counted in ``sketch.rejected``.
    """

    prediction: str
    label: str
    sketch: BinaryPerformance

    @classmethod
    def empty(cls, prediction: str, label: str, scores: str = "probability") -> "PerformanceProfile":
        """``scores``: ``"probability"`` or ``"margin"`` (see :class:`~fastdrift.BinaryPerformance`)."""
        if not prediction or not label or prediction == label:
            raise InvalidInputError(f"performance needs a prediction column and another label column, got "
                                    f"prediction={prediction!r}, label={label!r}")
        return cls(prediction, label, BinaryPerformance(scores=scores))

    @property
    def columns(self) -> List[str]:
        return [self.prediction, self.label]

    def update(self, batch: pa.RecordBatch) -> None:
        names = batch.schema.names
        if self.prediction not in names:
            raise SchemaError(f"prediction column {self.prediction!r} is missing from the batch "
                              f"(it has {names})")
        scores = batch.column(self.prediction)
        if self.label in names:
            self.sketch.update(scores, batch.column(self.label))
        else:
            self.sketch.update(scores, None)

    def check_mergeable(self, other: "PerformanceProfile") -> None:
        """Raise what :meth:`merge` of ``other`` would, without changing anything."""
        if (other.prediction, other.label) != (self.prediction, self.label):
            raise IncompatibleSketchError(
                f"performance of {self.prediction!r} against {self.label!r} in one profile, of "
                f"{other.prediction!r} against {other.label!r} in the other")
        try:
            self.sketch.check_mergeable(other.sketch)
        except IncompatibleSketchError as exc:
            raise IncompatibleSketchError(f"performance of {self.prediction!r}: {exc}") from None

    def merge(self, other: "PerformanceProfile") -> None:
        self.check_mergeable(other)
        self.sketch.merge(other.sketch)

    def copy(self) -> "PerformanceProfile":
        return PerformanceProfile(self.prediction, self.label, self.sketch.copy())

    def empty_like(self) -> "PerformanceProfile":
        return PerformanceProfile.empty(self.prediction, self.label, self.sketch.scores)


class Profile:
    """Per-column sketches of a table: mergeable, serializable, comparable.

    Attributes
    ----------
    columns : dict of str -> ColumnProfile, in table order
    rows : int, rows seen
    skipped : list of str, columns whose type has no sketch
    performance : PerformanceProfile or None, the prediction's scores against the labels
    segment_by : tuple of str, the segment columns (empty: not segmented)
    max_segments : int, how many segment keys get a profile of their own; later keys count
        under ``"<other>"`` (:mod:`fastdrift.adapters.segments`)
    segments : dict of str -> Profile, each segment key's own profile, on the same columns
        and bins; every row is in exactly one segment, and the profile itself is the whole
        (the merge of its segments). Empty when unsegmented.
    """

    def __init__(self, columns: Mapping[str, ColumnProfile], rows: int = 0, skipped: Iterable[str] = (),
                 performance: Optional[PerformanceProfile] = None, *, segment_by: Iterable[str] = (),
                 max_segments: int = DEFAULT_MAX_SEGMENTS, segments: Optional[Mapping[str, "Profile"]] = None):
        self.columns: Dict[str, ColumnProfile] = dict(columns)
        self.rows = int(rows)
        self.skipped: List[str] = list(skipped)
        self.performance = performance
        self.segment_by = check_segment_columns(tuple(segment_by), max_segments)
        self.max_segments = max_segments
        self.segments: Dict[str, Profile] = dict(segments or {})

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def __contains__(self, name) -> bool:
        return name in self.columns

    def __repr__(self):
        seg = f", segments={len(self.segments)}" if self.segment_by else ""
        return f"Profile(rows={self.rows}, columns={list(self.columns)}{seg})"

    def update(self, data) -> "Profile":
        """Count more rows (a Table, RecordBatch, or an iterable / stream of them).

        A segmented profile counts each batch's rows into their segments' profiles and merges
        those into the whole; on an error in a batch nothing of that batch is counted.
        """
        for batch in iter_batches(data):
            self.check_batch(batch)
            if self.segment_by:
                self._update_segments(batch)
                continue
            for name, cp in self.columns.items():
                cp.update(batch.column(name))
            if self.performance is not None:
                self.performance.update(batch)
            self.rows += batch.num_rows
        return self

    def check_batch(self, batch) -> None:
        """Raise SchemaError unless ``batch`` has every column of the profile."""
        names = set(batch.schema.names)
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise SchemaError(f"columns {missing} of the profile are missing from the batch "
                              f"(it has {batch.schema.names})")

    def _blank(self) -> "Profile":
        """An unsegmented profile of the same columns and bins, nothing counted."""
        perf = self.performance.empty_like() if self.performance is not None else None
        return Profile({k: v.empty_like() for k, v in self.columns.items()}, 0, self.skipped, perf)

    def _update_segments(self, batch) -> None:
        segmenter = Segmenter(self.segment_by, self.max_segments, keys=self.segments, encode=encode_short_strings)
        split = SegmentSplit(segmenter.assign(batch), len(segmenter.keys))
        blank = self._blank()
        blanks = [blank.copy() for _ in split.present]  # copies share the histograms' lookup tables
        for name, cp in self.columns.items():
            update_sketches([b.columns[name].sketches() for b in blanks], batch.column(name), split, name,
                            cp.kind == CATEGORICAL, flush=True)  # merged below into the whole: centroids
        if self.performance is not None:
            perf = [c for c in self.performance.columns if c in batch.schema.names]
            for b, sub in zip(blanks, split.batches(batch.select(perf))):
                b.performance.update(sub)
        for b, s in zip(blanks, split.present):
            b.rows = int(split.counts[s])
        parts = [(segmenter.keys[s], b) for s, b in zip(split.present, blanks)]
        if self.rows + batch.num_rows > MAX_COUNT:
            raise CountOverflowError(f"profile: {self.rows} + {batch.num_rows} rows would pass {MAX_COUNT}")
        _merge_whole_many(self, blanks)  # counted first: an error above leaves the profile as it was
        for key, part in parts:
            if key in self.segments:
                self.segments[key].merge(part)
            else:
                self.segments[key] = part
        self.segments = _other_last(self.segments)

    def merge(self, other: "Profile") -> "Profile":
        """Fold ``other`` (same columns, bins and segment columns) into this profile.

        Segments merge by key; keys new to this profile join in ``other``'s order until
        ``max_segments``, the rest fold into ``"<other>"`` (never dropped).  All or nothing: every
        sketch's merge is checked (:meth:`check_mergeable`) before any is merged, so an error
        leaves this profile as it was, without copying it.
        """
        self.check_mergeable(other)
        _merge_whole(self, other)
        if self.segment_by:
            self._merge_segments(other)
        return self

    def check_mergeable(self, other: "Profile") -> None:
        """Raise the IncompatibleSketchError or CountOverflowError :meth:`merge` of ``other``
        would (naming the column and the difference), changing nothing."""
        if list(other.columns) != list(self.columns):
            raise IncompatibleSketchError(
                f"profiles have different columns: {list(self.columns)} vs {list(other.columns)}")
        if self.rows + other.rows > MAX_COUNT:
            raise CountOverflowError(f"merging profiles of {self.rows} and {other.rows} rows would pass {MAX_COUNT}")
        if (self.performance is None) != (other.performance is None):
            raise IncompatibleSketchError("one profile has a performance sketch (a label column) and the other not")
        if other.segment_by != self.segment_by:
            raise IncompatibleSketchError(f"profiles have different segment columns: {list(self.segment_by)} vs "
                                          f"{list(other.segment_by)}")
        for name, cp in self.columns.items():
            cp.check_mergeable(other.columns[name])
        if self.performance is not None:
            self.performance.check_mergeable(other.performance)
        if self.segment_by:  # the segments _merge_segments merges
            kept, rest = self._segment_parts(other)
            for k in kept:
                if k in self.segments and k in other.segments:
                    _check_segment(k, self.segments[k], other.segments[k])
            for s in rest[1:]:
                _check_segment(OTHER, rest[0], s)

    def _segment_parts(self, other: "Profile"):
        """(the keys kept, the segments folded into ``<other>``) when ``other``'s segments merge in."""
        order = list(self.segments) + [k for k in other.segments if k not in self.segments]
        kept, folded = cap_keys(order, self.max_segments)
        rest = [s for s in (self.segments.get(OTHER), other.segments.get(OTHER)) if s is not None]
        rest += [src[k] for k in folded for src in (self.segments, other.segments) if k in src]
        return kept, rest

    def _merge_segments(self, other: "Profile") -> None:
        kept, rest = self._segment_parts(other)
        out = {k: self.segments[k] if k in self.segments else other.segments[k].copy() for k in kept}
        for k in kept:
            if k in self.segments and k in other.segments:
                out[k].merge(other.segments[k])
        if rest:
            acc = rest[0] if rest[0] is self.segments.get(OTHER) else rest[0].copy()
            for s in rest[1:]:
                acc.merge(s)
            out[OTHER] = acc
        self.segments = out

    def copy(self) -> "Profile":
        perf = self.performance.copy() if self.performance is not None else None
        return Profile({k: v.copy() for k, v in self.columns.items()}, self.rows, self.skipped, perf,
                       segment_by=self.segment_by, max_segments=self.max_segments,
                       segments={k: v.copy() for k, v in self.segments.items()})

    def empty_like(self, *, segment_by: Optional[Iterable[str]] = None,
                   max_segments: Optional[int] = None) -> "Profile":
        """A profile with the same columns, bins and performance columns, and nothing counted.

        ``segment_by`` and ``max_segments`` default to this profile's (``segment_by=()``: unsegmented).
        """
        seg = self.segment_by if segment_by is None else segment_by
        cap = self.max_segments if max_segments is None else max_segments
        blank = self._blank()
        return Profile(blank.columns, 0, self.skipped, blank.performance, segment_by=seg, max_segments=cap)

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
        if self.performance is not None:
            # optional trailing sections: a profile without them keeps its bytes
            p.u8(_PERFORMANCE).string(self.performance.prediction).string(self.performance.label)
            w.blob(self.performance.sketch.to_bytes())
        if self.segment_by:
            p.u8(_SEGMENTS).u64(len(self.segment_by))
            for c in self.segment_by:
                p.string(c)
            p.u64(self.max_segments).u64(len(self.segments))
            for key, seg in self.segments.items():
                p.string(key)
                w.blob(seg.to_bytes())
        return codec.encode(codec.Kind.PROFILE, p.getvalue(), w.getvalue())

    @classmethod
    def from_bytes(cls, data, _nested: bool = False) -> "Profile":
        """Decode :meth:`to_bytes` output, or the profile inside a ``.fdp`` file that
        ``fastdrift profile`` wrote (kind ``PROFILE_FILE``: its schema and evidence rows are
        read by :class:`fastdrift.profilefile.ProfileFile`)."""
        kind, params, payload = codec.decode(data)
        if kind == codec.Kind.PROFILE_FILE and not _nested:
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
        perf_columns = None
        seg_by, max_segments, keys = (), DEFAULT_MAX_SEGMENTS, []
        last = 0
        while r.remaining:
            code = r.u8()
            if code <= last or code not in (_PERFORMANCE, _SEGMENTS):
                raise CorruptStateError(f"profile parameters: unknown or repeated section code {code}")
            last = code
            if code == _PERFORMANCE:
                perf_columns = (r.string(), r.string())
                if not all(perf_columns) or perf_columns[0] == perf_columns[1]:
                    raise CorruptStateError(f"profile parameters: performance columns {perf_columns} are not a "
                                            "prediction and another label column")
                continue
            if _nested:
                raise CorruptStateError("a segment's profile is itself segmented")
            seg_by, max_segments, keys = _read_segment_params(r, len(params))
        r.done()
        if len({s[0] for s in specs}) != len(specs):
            raise CorruptStateError("profile has duplicate column names")
        r = codec.Reader(payload, "profile payload")
        rows = r.u64()
        if rows > MAX_COUNT:
            raise CorruptStateError(f"profile payload: {rows} rows, above {MAX_COUNT}")
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
        perf = None
        if perf_columns is not None:
            perf = PerformanceProfile.empty(*perf_columns)
            perf.sketch = BinaryPerformance.from_bytes(r.blob())
        segments = {}
        for key in keys:
            seg = segments[key] = cls.from_bytes(r.blob(), _nested=True)
            if list(seg.columns) != [s[0] for s in specs] or any(
                    seg.columns[n].kind != k or (seg.columns[n].tdigest is not None) != td for n, k, td in specs) \
                    or (seg.performance is None) != (perf is None) or (perf is not None and (
                        seg.performance.prediction, seg.performance.label) != perf_columns):
                raise CorruptStateError(f"profile segment {key!r} has other columns than the whole")
            for name, cp in seg.columns.items():
                if cp.histogram is not None and not np.array_equal(cp.histogram.edges, columns[name].histogram.edges):
                    raise CorruptStateError(f"profile segment {key!r}: column {name!r} has other bins than the whole")
        r.done()
        if keys and sum(s.rows for s in segments.values()) != rows:
            raise CorruptStateError(f"profile segments hold {sum(s.rows for s in segments.values())} rows, "
                                    f"the whole {rows}")
        return cls(columns, rows, skipped, perf, segment_by=seg_by, max_segments=max_segments, segments=segments)


def _read_segment_params(r, size: int):
    """(segment columns, cap, keys) of a profile's segment section, checked."""
    n = r.u64()
    if not 1 <= n <= size:
        raise CorruptStateError(f"profile parameters: {n} segment columns")
    seg_by = tuple(r.string() for _ in range(n))
    if not all(seg_by) or len(set(seg_by)) != n:
        raise CorruptStateError(f"profile parameters: segment columns {list(seg_by)} are not distinct names")
    max_segments = r.u64()
    if not 1 <= max_segments <= MAX_SEGMENTS_LIMIT:
        raise CorruptStateError(f"profile parameters: max_segments {max_segments} out of range")
    n_keys = r.u64()
    if n_keys > max_segments + 1 or n_keys > size:
        raise CorruptStateError(f"profile parameters: {n_keys} segments, cap {max_segments}")
    keys = [r.string() for _ in range(n_keys)]
    if len(set(keys)) != n_keys:
        raise CorruptStateError("profile parameters: a segment key appears twice")
    if sum(k != OTHER for k in keys) > max_segments:
        raise CorruptStateError(f"profile parameters: {n_keys} segments, cap {max_segments}")
    for k in keys:
        if k != OTHER:
            try:
                cols = list(parse_segment_key(k))
            except InvalidInputError:
                cols = None
            if cols != list(seg_by):
                raise CorruptStateError(f"profile parameters: {k!r} is not a key of segment columns {list(seg_by)}")
    return seg_by, int(max_segments), keys


def _check_segment(key: str, into: Profile, other: Profile) -> None:
    """:meth:`Profile.check_mergeable` of one segment's profiles, the error naming the segment."""
    try:
        into.check_mergeable(other)
    except (IncompatibleSketchError, CountOverflowError) as exc:
        raise type(exc)(f"segment {key!r}: {exc}") from None


def _merge_whole(into: Profile, other: Profile) -> None:
    """Merge the whole of ``other`` (columns, performance, rows) into ``into``'s whole."""
    for name, cp in into.columns.items():
        cp.merge(other.columns[name])
    if into.performance is not None:
        into.performance.merge(other.performance)
    into.rows += other.rows


def _merge_whole_many(into: Profile, parts: List[Profile]) -> None:
    """:func:`_merge_whole` of each of ``parts`` (unsegmented, ``into``'s columns and sketches) in
    turn, the same state, with one :meth:`~fastdrift.sketches.base.Sketch.merge_many` per sketch."""
    for name, cp in into.columns.items():
        slots = [p.columns[name].sketches() for p in parts]
        for k, sk in enumerate(cp.sketches()):
            sk.merge_many([s[k] for s in slots])
    if into.performance is not None:
        for p in parts:
            into.performance.merge(p.performance)
    into.rows += sum(p.rows for p in parts)


def _other_last(segments: Dict[str, Profile]) -> Dict[str, Profile]:
    """Segments in first-seen order with ``"<other>"`` (when there) last."""
    if OTHER not in segments or next(reversed(segments)) == OTHER:
        return segments
    return {**{k: v for k, v in segments.items() if k != OTHER}, OTHER: segments[OTHER]}
