"""The reference profile, built in one place: every pass over the data and what happens between.

Numeric reference bins are exact deciles (``np.quantile`` bit for bit), order statistics of
whole columns.  :func:`build_reference` runs each pass as a :class:`Job` through an
:class:`Executor` (the file scan's thread pool, :mod:`fastdrift.scan`; Spark's ``mapInArrow``,
:mod:`fastdrift.spark`; a table in memory, :func:`profile`):

1. moments, categories, t-digests, the performance sketch (a label column), and, given a pilot batch, each quantile column's grid and
   kept cells (:class:`~fastdrift.sketches.quantiles.StreamingQuantiles`): usually the only pass;
2. without a pilot, or when its grid's wanted cells are too full: grid counts over each
   column's exact [min, max] (:class:`~fastdrift.sketches.quantiles.ExactQuantiles`);
3. the values of the cells holding the deciles; the bins' counts follow from them;
4. histograms, only for uniform bins or an edge whose cell was neither selected nor empty.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from ..adapters import as_table
from ..adapters.segments import DEFAULT_MAX_SEGMENTS, OTHER, Segmenter, cap_keys, check_segment_columns, \
    check_segment_schema, encode_segment_columns
from ..adapters.arrow import counted, float64_values
from ..errors import CorruptStateError, InvalidInputError, SchemaError
from ..kernels.quantile import grid_counts
from .. import codec
from .base import Sketch
from .categorical import Categorical
from .histogram import Histogram, fixed_edges, quantile_levels
from .moments import Moments
from .profile import (CATEGORICAL, NUMERIC, ColumnPlan, ColumnProfile, PerformanceProfile, Profile, plan_columns,
                      skipped_columns)
from .segmented import SegmentSplit, encode_short_strings, update_sketches
from .quantiles import (ExactQuantiles, StreamingQuantiles, append_compact, merge_counts, numeric_views,
                        select_counts)
from .tdigest import TDigest

__all__ = ["Job", "Executor", "build_reference", "count_job", "current_job", "profile", "performance_plan", "check_performance_types"]

#: Values the wanted cells of the first pass's grid may hold for a selection pass on that grid;
#: beyond (a pilot whose window missed most of the data), an exact-range grid is counted first.
_SELECT_MAX = 1 << 22
#: The bins of a numeric reference column without a finite value: one edge, so -inf and +inf
#: keep their outer bins; its PSI is NaN ("no non-missing values") against any current data.
_NO_VALUE_EDGES = np.array([0.0])


@dataclass
class Job:
    """One pass over the data.

    Per partition ``state = make(partition index)``, then ``count(state, batch)`` for each of
    its batches; ``merge(into, state)`` folds one state into another and returns ``into``.
    ``encode`` / ``decode`` carry a state between processes (bytes, never pickles); a job
    without them runs in one process only.
    """

    make: Callable[[int], Any]
    count: Callable[[Any, pa.RecordBatch], None]
    merge: Callable[[Any, Any], Any]
    encode: Optional[Callable[[Any], bytes]] = None
    decode: Optional[Callable[[bytes], Any]] = None
    #: ``count_segments(states, batch, split)``: count each present segment's rows of ``batch``
    #: into its state (``states[j]`` for ``split.present[j]``, a SegmentSplit) without taking
    #: them; a job without it is given each segment's rows (:func:`_segmented`).
    count_segments: Optional[Callable[[List[Any], pa.RecordBatch, Any], None]] = None
    #: ``result(merged state)``: what the pass gives, when not the merged state itself.
    result: Optional[Callable[[Any], Any]] = None


class Executor(Protocol):
    """Runs jobs over a dataset's partitions."""

    label: str  # the data, for error messages ("" for none)
    rows: Optional[int]  # when known before a scan
    workers: int  # threads this process may use between passes

    def pilot(self, columns: List[str]) -> Optional[pa.RecordBatch]:
        """The first batch of the first partition, or None.  An executor that gives one merges
        every partition's state into a fresh ``make()``, in partition order (kept cells shrink
        as the merged counts grow)."""

    def run(self, label: str, columns: List[str], job: Job) -> Any:
        """Run ``job`` over every partition (reading ``columns``) and return the merged state."""


def count_job(reference: Profile) -> Job:
    """The one pass of a *current* profile: every partition counted on ``reference``'s bins."""
    blob = reference.empty_like().to_bytes()  # what travels to the partitions: bytes, not sketches
    template: List[Profile] = []

    def make(i):
        if not template:  # decoded once where the job runs: empty_like is cheaper than a decode
            template.append(Profile.from_bytes(blob))
        return template[0].empty_like()

    def merge(acc, part):
        acc.merge(part)
        for c in part.columns.values():  # the partition's profile is dropped: its digests' buffers serve the next
            if c.tdigest is not None:
                c.tdigest.recycle()
        return acc

    return Job(make, lambda p, b: p.update(b), merge, Profile.to_bytes, Profile.from_bytes)


def current_job(reference: Profile, executor: Executor) -> Job:
    """:func:`count_job` for an executor with a pilot batch (a file scan): each numeric column
    with a t-digest gets it from a grid placed on the pilot (:meth:`StreamingQuantiles.tdigest`,
    as a reference scan does) where the pilot lets; the state is ``[profile, {column: grid part},
    rows]`` and the job's ``result`` gives the profile.  A segmented reference takes
    :func:`count_job`."""
    base = count_job(reference)
    names = [n for n, cp in reference.columns.items() if cp.kind == NUMERIC and cp.tdigest is not None]
    if reference.segment_by or not names:
        return base

    grids = {n: (10, reference.columns[n].tdigest.compression) for n in names}
    # placed while the workers read their first batches; a column whose grid cannot make its
    # digest keeps TDigest.update
    pending = _placed_meanwhile(executor, grids, deciles=False)
    streaming: Dict[str, StreamingQuantiles] = {}

    def make(i):
        if not streaming:
            streaming.update({n: sq for n, sq in pending.result().items() if sq.digest is not None})
        return [base.make(i), {n: sq.start() for n, sq in streaming.items()}, 0]

    def count(st, b):  # Profile.update, with the grid's columns counted through it
        prof, parts = st[0], st[1]
        prof.check_batch(b)
        for name, cp in prof.columns.items():
            sq = streaming.get(name)
            if sq is None:
                cp.update(b.column(name))
                continue
            col = counted(b.column(name))  # converted once for both sketches
            cp.histogram.update(col)
            cp.moments.update_counting(col, functools.partial(sq.count, parts[name]))
        if prof.performance is not None:
            prof.performance.update(b)
        prof.rows += b.num_rows
        st[2] += b.num_rows

    def merge(acc, st):
        base.merge(acc[0], st[0])
        for n, sq in streaming.items():  # in partition order
            sq.merge(st[1][n], st[2])
        return acc

    def result(acc):
        prof = acc[0]
        for n, sq in streaming.items():
            cp = prof.columns[n]
            cp.tdigest = sq.tdigest(cp.moments, n)
        return prof

    return Job(make, count, merge, result=result)


def _in_background(fn, *args) -> cf.Future:
    """``fn(*args)`` on a thread of its own (a pilot placing grids while the workers read)."""
    one = cf.ThreadPoolExecutor(1, thread_name_prefix="fastdrift-pilot")
    try:
        return one.submit(fn, *args)
    finally:
        one.shutdown(wait=False)


def _pilot_batch(executor: Executor, grids: Dict[str, Tuple[int, Optional[float]]]):
    """The executor's pilot batch of the ``grids``' columns (None without grids or a pilot)."""
    return executor.pilot(list(grids)) if grids else None


def _placed_meanwhile(executor: Executor, grids: Dict[str, Tuple[int, Optional[float]]],
                      deciles: bool = True) -> cf.Future:
    """:func:`_pilot` placing the grids on a thread of its own while the workers read their first
    batches, the pilot batch decoded first: decoded beside them, it waited for pyarrow's threads
    behind their first row groups (bench_scan's reference, 6M rows: the decode 0.12-0.19 s of
    wall and the workers idle 0.13 s for the grids, where alone it takes 0.02 s)."""
    return _in_background(_pilot, executor, grids, deciles, _pilot_batch(executor, grids))


def _pilot(executor: Executor, grids: Dict[str, Tuple[int, Optional[float]]],
           deciles: bool = True, batch=False) -> Dict[str, StreamingQuantiles]:
    """Grids for the first pass, from the executor's pilot batch (``batch``, or decoded here):
    ``grids`` maps a column to its bins and the compression of the t-digest its grid makes (None:
    no digest); ``deciles=False``, grids for the digests alone (:class:`StreamingQuantiles`)."""
    b = _pilot_batch(executor, grids) if batch is False else batch
    if b is None or b.num_rows == 0:
        return {}

    def one(item):
        name, (bins, compression) = item
        x = float64_values(b.column(name))  # the kernels' conversion: big integers round, never raise
        return StreamingQuantiles(quantile_levels(bins), x, executor.rows, compression,
                                  deciles) if np.isfinite(x).any() else None

    with cf.ThreadPoolExecutor(max(executor.workers, 1)) as pool:  # numpy's partition and the kernels release the GIL
        made = list(pool.map(one, grids.items()))
    return {n: sq for n, sq in zip(grids, made) if sq is not None and sq.ok}


def _first_job(plans: List[ColumnPlan], streaming, max_categories: int,
               compression: float, performance: Optional[PerformanceProfile] = None,
               flush_segments: bool = False) -> Job:
    """Pass 1: state ``[{column: sketches}, rows, {column: streaming quantiles' part}, performance]``.

    ``streaming``: ``{column: StreamingQuantiles}``, or a future of it (the pilot still placing
    the grids while the partitions are read: ``make`` waits for it).
    ``flush_segments``: each partition is one batch (a table in memory), so segments' t-digests are
    flushed as they are counted (the bytes of a flush after the pass) in one shared buffer."""
    perf_columns = (performance.prediction, performance.label, performance.sketch.scores) \
        if performance is not None else None
    pending = streaming if isinstance(streaming, cf.Future) else None
    if pending is not None:
        streaming = {}  # filled in by the first make(), before any count or merge of this job

    def make(i):  # sketches are made where the job runs: only the column names travel
        if pending is not None and not streaming:
            streaming.update(pending.result())  # the same dict every time: a second update adds nothing
        out = {}
        for p in plans:
            if p.kind == NUMERIC:
                out[p.name] = [Moments(name=p.name), TDigest(compression, name=p.name) if p.tdigest else None]
            else:
                out[p.name] = [Categorical(max_categories, name=p.name)]
        perf = PerformanceProfile.empty(*perf_columns) if perf_columns is not None else None
        return [out, 0, {n: sq.start() for n, sq in streaming.items()}, perf]

    def count(st, b):
        for p in plans:
            col = counted(b.column(p.name))  # converted once for every sketch of the column
            sq = streaming.get(p.name)
            for s in st[0][p.name]:
                if s is None:
                    continue
                if sq is not None and isinstance(s, Moments):
                    # moments, grid counts and held values in one read of the column
                    s.update_counting(col, functools.partial(sq.count, st[2][p.name]))
                elif sq is not None and sq.digest is not None and isinstance(s, TDigest):
                    continue  # the grid's count routes its values (StreamingQuantiles.tdigest)
                else:
                    s.update(col)
        if st[3] is not None:
            st[3].update(b)
        st[1] += b.num_rows

    def count_segments(states, b, split):
        for p in plans:
            update_sketches([st[0][p.name] for st in states], b.column(p.name), split, p.name, p.kind != NUMERIC,
                            flush_segments)
        if perf_columns is not None:
            for st, sub in zip(states, split.batches(b.select([c for c in perf_columns[:2] if c in b.schema.names]))):
                st[3].update(sub)
        for st, s in zip(states, split.present):
            st[1] += int(split.counts[s])

    def merge(acc, st):
        for n, sk in acc[0].items():
            for a, o in zip(sk, st[0][n]):
                if a is None:
                    continue
                if isinstance(o, TDigest):
                    # a column whose digest comes from the grid leaves its partition's digest empty, with
                    # no buffer: nothing to merge or hand on (37 us of Python a column and fragment)
                    if o.count:
                        a.merge(o)
                        o.recycle()  # the partition's state is dropped: its buffer serves the next
                else:
                    a.merge(o)
        acc[1] += st[1]
        for n, sq in streaming.items():  # in partition order (Executor.pilot)
            sq.merge(st[2][n], st[1])
        if acc[3] is not None:
            acc[3].merge(st[3])
        return acc

    def encode(st):
        w = codec.Writer().u64(st[1])
        for sk in st[0].values():
            for s in sk:
                if s is not None:
                    w.blob(s.to_bytes())
        if st[3] is not None:
            w.blob(st[3].sketch.to_bytes())
        return w.getvalue()

    def decode(blob):
        r = codec.Reader(blob, "first pass state")
        st = make(0)
        st[1] = r.u64()
        for n, sk in st[0].items():
            st[0][n] = [_named(type(s).from_bytes(r.blob()), n) if s is not None else None for s in sk]
        if st[3] is not None:
            st[3].sketch = type(st[3].sketch).from_bytes(r.blob())
        r.done()
        return st

    return Job(make, count, merge, encode, decode, count_segments if not streaming and pending is None else None)


def _named(sketch, name: str):
    """A decoded sketch with its column's name (the bytes do not carry it)."""
    sketch.name = name
    return sketch


def _column_arrays(names: List[str], make_one: Callable, count_one: Callable, merge_one: Callable,
                   encode_one: Callable, decode_one: Callable) -> Job:
    """A job whose state is one value per column, each made, counted, merged and coded on its own."""
    def count(st, b):
        for n in names:
            st[n] = count_one(n, st[n], b.column(n))

    def merge(acc, st):
        for n in names:
            acc[n] = merge_one(acc[n], st[n])
        return acc

    def encode(st):
        w = codec.Writer()
        for n in names:
            encode_one(w, st[n])
        return w.getvalue()

    def decode(blob):
        r = codec.Reader(blob, "pass state")
        st = {n: decode_one(r, n) for n in names}
        r.done()
        return st

    return Job(lambda i: {n: make_one(n) for n in names}, count, merge, encode, decode)


def _grid_job(plans: Dict[str, Any]) -> Job:
    """Pass 2: grid counts per column (the grid plans only travel to the partitions)."""
    def count_one(n, c, col):
        c += grid_counts(numeric_views(col, n), plans[n])
        return c
    def decode_one(r, n):
        c = r.i64_array()
        if len(c) != plans[n].n_cells:
            raise CorruptStateError(f"grid counts of column {n!r}: {len(c)} cells, expected {plans[n].n_cells}")
        return c

    return _column_arrays(list(plans), lambda n: np.zeros(plans[n].n_cells, np.int64), count_one,
                          lambda a, b: a + b, lambda w, c: w.i64_array(c), decode_one)


def _select_job(wanted: Dict[str, tuple]) -> Job:
    """Pass 3: the flagged cells' values per column as (distinct values, counts) parts."""
    def count_one(n, parts, col):
        part = select_counts(numeric_views(col, n), *wanted[n])
        return append_compact(parts, part) if part[0].size else parts

    def merge_one(a, b):
        for part in b:
            a = append_compact(a, part)
        return a

    def encode_one(w, parts):
        u, c = merge_counts(parts)
        w.f64_array(u).i64_array(c)

    def decode_one(r, n):
        u, c = r.f64_array(), r.i64_array()
        if len(u) != len(c):
            raise CorruptStateError(f"selection of column {n!r}: {len(u)} values, {len(c)} counts")
        return [(u, c)] if u.size else []

    return _column_arrays(list(wanted), lambda n: [], count_one, merge_one, encode_one, decode_one)


def _histogram_job(edges: Dict[str, np.ndarray]) -> Job:
    """Pass 4: histograms of the columns whose bins the selection could not count."""
    empty: Dict[str, Histogram] = {}  # never counted into: copies share its lookup table

    def make_one(n):
        if n not in empty:  # made where the job runs: sketches never travel
            empty[n] = Histogram(edges[n], name=n)
        return empty[n].copy()

    def count_one(n, h, col):
        return h.update(col)

    def count_segments(states, b, split):  # a column's histograms of every segment in one kernel call
        for n in edges:
            update_sketches([[st[n]] for st in states], b.column(n), split, n)

    job = _column_arrays(list(edges), make_one, count_one, lambda a, b: a.merge(b),
                         lambda w, h: w.blob(h.to_bytes()), lambda r, n: _named(Histogram.from_bytes(r.blob()), n))
    return dataclasses.replace(job, count_segments=count_segments)


def _segmented(job: Job, read: List[str], segment_by, max_segments: int, memo: Optional[dict] = None) -> Job:
    """``job``'s state per segment key: each batch split by segment (only the ``read`` columns
    are taken), each part counted into its key's state.

    Each partition keys its own rows (first-seen, capped); merges take keys in partition order
    and fold those past the cap into ``"<other>"`` (:func:`~fastdrift.adapters.segments.cap_keys`).

    ``memo``: shared by the passes over one table in memory: the batch's segment codes and each
    row's grouped place (the :class:`SegmentSplit`) are made by the first pass and reused by the
    next ones over the same batch object (each column is gathered again, into the split's one
    scratch buffer: cheaper than keeping every column's fresh copy).
    """
    def make(i):
        return [Segmenter(segment_by, max_segments, encode=encode_short_strings), {}]

    def _kept(seg, b):
        hit = memo.get("split") if memo is not None else None
        if hit is None or hit[0] is not b or seg.keys != hit[1]:
            return None
        for k in hit[2]:  # the keys the first pass met, in code order: the same codes
            seg.admit(k)
        return hit[3] if seg.keys == hit[2] else None

    def count(st, b):
        seg, states = st
        split = _kept(seg, b) if job.count_segments is not None else None
        if split is None:
            before = list(seg.keys)
            codes = seg.assign(b)
            if job.count_segments is None:
                for key, sub in seg.split(b.select(read), codes):
                    if key not in states:
                        states[key] = job.make(0)
                    job.count(states[key], sub)
                return
            split = SegmentSplit(codes, len(seg.keys))
            if memo is not None:
                memo["split"] = (b, before, list(seg.keys), split)
        for s in split.present:
            if seg.keys[s] not in states:
                states[seg.keys[s]] = job.make(0)
        job.count_segments([states[seg.keys[s]] for s in split.present], b, split)

    def merge(acc, st):
        mine, theirs = acc[1], st[1]
        kept, folded = cap_keys(list(mine) + [k for k in theirs if k not in mine], max_segments)
        out = {}
        for k in kept:  # a merged-in state is adopted: it is not used again
            out[k] = job.merge(mine[k], theirs[k]) if k in mine and k in theirs else mine.get(k, theirs.get(k))
        rest = [src[k] for k in [OTHER] + folded for src in (mine, theirs) if k in src]
        if rest:
            out[OTHER] = functools.reduce(job.merge, rest)
        acc[0], acc[1] = Segmenter(segment_by, max_segments, keys=out, encode=encode_short_strings), out
        return acc

    def encode(st):
        w = codec.Writer().u64(len(st[1]))
        for k, s in st[1].items():
            w.string(k).blob(job.encode(s))
        return w.getvalue()

    def decode(blob):
        r = codec.Reader(blob, "segmented pass state")
        n = r.u64()
        if n > max_segments + 1:
            raise CorruptStateError(f"segmented pass state: {n} segments, cap {max_segments}")
        states = {}
        for _ in range(n):
            k = r.string()
            states[k] = job.decode(r.blob())
        r.done()
        return [Segmenter(segment_by, max_segments, keys=states, encode=encode_short_strings), states]

    return Job(make, count, merge, encode, decode)


def _both(a: Job, b: Job) -> Job:
    """Two jobs in one pass: state ``[a's, b's]``."""
    def merge(acc, st):  # in place: the file scan keeps its accumulator
        acc[0], acc[1] = a.merge(acc[0], st[0]), b.merge(acc[1], st[1])
        return acc

    def encode(st):
        return codec.Writer().blob(a.encode(st[0])).blob(b.encode(st[1])).getvalue()

    def decode(blob):
        r = codec.Reader(blob, "pass state")
        st = [a.decode(r.blob()), b.decode(r.blob())]
        r.done()
        return st

    def count(st, batch):
        a.count(st[0], batch)
        b.count(st[1], batch)

    return Job(lambda i: [a.make(i), b.make(i)], count, merge, encode, decode)


def _merged(parts: List[Any]) -> Any:
    """One sketch (a copy) from parts of the same column: their merge, in order (one
    :meth:`~fastdrift.sketches.base.Sketch.merge_many` call for sketches: the same bytes)."""
    out = parts[0].copy()
    if isinstance(out, Sketch):
        return out.merge_many(parts[1:])
    for p in parts[1:]:
        out.merge(p)
    return out


def build_reference(executor: Executor, plans: List[ColumnPlan], skipped: List[str] = (), *,
                    max_categories: int = 10_000, compression: float = 100,
                    performance: Optional[PerformanceProfile] = None, segment_by=(),
                    max_segments: int = DEFAULT_MAX_SEGMENTS) -> Profile:
    """The reference profile of the executor's data, after the passes of the module docstring.

    Parameters
    ----------
    executor : Executor
        Runs each pass over the data's partitions.
    plans : list of ColumnPlan
        From :func:`~fastdrift.sketches.profile.plan_columns`.
    skipped : list of str
        ``Profile.skipped``: columns left out because their type has no sketch.
    max_categories, compression : as :func:`fastdrift.profile`
    performance : PerformanceProfile, optional
        An empty one: the prediction's scores against the labels, counted in the first pass.
    segment_by, max_segments
        Segment columns and cap: each segment's sketches are counted in the first pass (its rows
        only) and their merge is the whole's, except the whole's moments (counted on whole
        batches, with the deciles' grid); the bins are the whole's deciles for every segment, and
        one more pass counts the segments' histograms (the whole's are their merge, or from the
        deciles' grid).

    Returns
    -------
    Profile
        Equal to ``fastdrift.profile(table)`` of the same rows (histograms, counts, categories
        exactly; moments up to float reassociation; t-digests within their merge error).

    A numeric column without a finite value gets the one placeholder edge ``0.0``.

    Raises
    ------
    InvalidInputError
        No column to profile.
    """
    prefix = f"{executor.label}: " if executor.label else ""
    if not plans:
        why = f" (not counted: {', '.join(map(repr, skipped))})" if skipped else ""
        raise InvalidInputError(f"{prefix}no column to profile{why}")
    names = [p.name for p in plans]
    numeric = [p for p in plans if p.kind == NUMERIC]
    qplans = [p for p in numeric if p.strategy == "quantile"]
    pilot = None
    # by segments, the whole's first pass has no t-digest (the segments' digests merge into it)
    grids = {p.name: (p.bins, compression if p.tdigest and not segment_by else None) for p in qplans}
    if qplans and getattr(executor, "pilot_meanwhile", False) and not segment_by:
        # the grids are placed while the workers read their first batches (make() waits for them)
        streaming = pilot = _placed_meanwhile(executor, grids)
    else:
        streaming = _pilot(executor, grids)

    what = "moments, categories" + (", t-digests" if any(p.tdigest for p in numeric) else "") + \
        (", deciles" if streaming else "")
    if performance is not None:
        what += ", performance"
    read = names + [c for c in (performance.columns if performance is not None else ()) if c not in names]
    segment_by = check_segment_columns(segment_by, max_segments)
    seg_first: Dict[str, list] = {}
    memo = None
    if not segment_by:
        try:
            first, rows, _, perf = executor.run(f"pass 1 ({what})", read,
                                                _first_job(plans, streaming, max_categories, compression, performance))
        finally:
            if pilot is not None:
                streaming = pilot.result()  # its error first: a pass that failed waiting for it raised it too
    else:
        # whole: moments (with the deciles' grid) on whole batches; the rest per segment, merged
        whole = _first_job([dataclasses.replace(p, tdigest=False) for p in numeric], streaming, max_categories,
                           compression)
        # a table in memory is one batch read by every pass: its segment codes and rows' grouped places
        # are made once (held until the histogram pass: 8 bytes a row)
        memo = {} if isinstance(executor, _Whole) else None
        parts = _segmented(_first_job(plans, {}, max_categories, compression, performance,
                                      flush_segments=memo is not None), read, segment_by, max_segments, memo)
        (first, rows, _, _), (_, seg_first) = executor.run(
            f"pass 1 ({what}; by {', '.join(segment_by)})", read + [c for c in segment_by if c not in read],
            _both(whole, parts))
        for p in plans:
            sk = [st[0][p.name] for st in seg_first.values()]
            if p.kind == NUMERIC:
                if p.tdigest:  # merged as centroids, not raw buffers (the segments' bytes stay the same)
                    TDigest.flush_all([s[1] for s in sk])
                first[p.name][1] = _merged([s[1] for s in sk]) if p.tdigest and sk else \
                    (TDigest(compression, name=p.name) if p.tdigest else None)
            else:
                first[p.name] = [_merged([s[0] for s in sk]) if sk else Categorical(max_categories, name=p.name)]
        perf = performance
        if performance is not None and seg_first:
            perf = _merged([st[3] for st in seg_first.values()])
    edges: Dict[str, np.ndarray] = {}
    hists: Dict[str, Histogram] = {}
    exact: Dict[str, ExactQuantiles] = {}
    to_count: Dict[str, ExactQuantiles] = {}  # need the grid pass
    to_select: Dict[str, ExactQuantiles] = {}  # need the selection pass (on either grid)
    # per column, one task each on the executor's threads (the kernels and numpy's sorts release
    # the GIL; nothing else runs between the passes): the t-digest made from the grid, the first
    # pass's grid and held values folded, and the deciles and their bins when the held values
    # hold every wanted order statistic
    finish = {}
    for p in numeric:
        sq = streaming.get(p.name)
        if sq is None:
            continue
        m = first[p.name][0]
        digest = bool(not segment_by and p.tdigest and sq.digest is not None)
        deciles = m.n > 0 and fixed_edges(m, p.bins, p.strategy, p.name) is None
        if digest or deciles:
            finish[p.name] = functools.partial(_finish_column, sq, m, p.name, digest, deciles)
    final: Dict[str, tuple] = {}
    for n, (td, ex) in _each_column(executor, finish).items():
        if td is not None:
            first[n][1] = td
        if ex is not None:
            final[n] = ex
    bins: Dict[str, tuple] = {}  # the deciles' edges and bin counts, where already known
    for p in numeric:
        m = first[p.name][0]
        if m.n == 0:
            # No finite value (all null or NaN, Arrow's null type, no rows, only ±inf): nothing to
            # take bins from.  A placeholder edge; the counts come from the moments' counters.
            edges[p.name] = _NO_VALUE_EDGES
            hists[p.name] = Histogram.from_counts(_NO_VALUE_EDGES, [m.neginf_count, m.posinf_count],
                                                  m.null_count, m.nan_count, name=p.name)
            continue
        fixed = fixed_edges(m, p.bins, p.strategy, p.name)
        if fixed is not None:
            edges[p.name] = fixed
            continue
        eq, done, known = final.get(p.name, (None, False, None))
        if eq is None or not done and eq.cap > _SELECT_MAX:  # no first-pass grid, or its wanted cells too full
            eq = to_count[p.name] = ExactQuantiles(quantile_levels(p.bins), m.n, m.min, m.max)
        if not done:
            to_select[p.name] = eq
        elif known is not None:
            bins[p.name] = known
        exact[p.name] = eq
    n_pass = 1
    if to_count:
        n_pass += 1
        counted = executor.run(f"pass {n_pass} (quantile grid)", list(to_count),
                               _grid_job({n: eq.plan for n, eq in to_count.items()}))
        for n, eq in to_count.items():
            eq.counts += counted[n]
            eq.plan_select()
    if to_select:
        n_pass += 1
        selected = executor.run(f"pass {n_pass} (exact deciles)", list(to_select),
                                _select_job({n: (eq.plan, eq.flags, eq.cap) for n, eq in to_select.items()}))
        for n, parts in selected.items():
            for part in parts:
                to_select[n].add_selected(part)
    # deciles' own bins come from the grid and the selection: no histogram pass for them
    bins.update(_each_column(executor, {n: functools.partial(_decile_bins, eq, first[n][0])
                                        for n, eq in exact.items() if n not in bins}))
    for n in exact:
        e, derived = bins[n]
        edges[n] = e
        if derived is not None:
            m = first[n][0]
            hists[n] = Histogram.from_counts(e, derived, m.null_count, m.nan_count, name=n)
    rest = {p.name: edges[p.name] for p in numeric if p.name not in hists}
    seg_hists: Dict[str, Dict[str, Histogram]] = {}
    if segment_by and numeric and seg_first:
        # every segment on the whole's bins: its histograms are one more pass
        seg_hists = executor.run(f"pass {n_pass + 1} (histograms by {', '.join(segment_by)})",
                                 [p.name for p in numeric] + list(segment_by),
                                 _segmented(_histogram_job(edges), [p.name for p in numeric], segment_by,
                                            max_segments, memo))[1]
        if list(seg_hists) != list(seg_first):
            raise InvalidInputError(f"{prefix}the segments changed between passes ({list(seg_first)} then "
                                    f"{list(seg_hists)}): the data must read the same in every pass")
        for n in rest:
            hists[n] = _merged([h[n] for h in seg_hists.values()])
    elif rest:
        hists.update(executor.run(f"pass {n_pass + 1} (histograms)", list(rest), _histogram_job(rest)))
    out = _columns(plans, first, hists)
    segments = {k: Profile(_columns(plans, st[0], seg_hists.get(k, {})), st[1], skipped, st[3])
                for k, st in seg_first.items()}
    return Profile(out, rows, skipped, perf, segment_by=segment_by, max_segments=max_segments, segments=segments)


def _each_column(executor: Executor, work: Dict[str, Callable[[], Any]]) -> Dict[str, Any]:
    """``{name: fn()}`` for the columns' independent steps between passes, on the executor's threads."""
    threads = min(max(getattr(executor, "workers", 1), 1), len(work))
    if threads <= 1:
        return {n: fn() for n, fn in work.items()}
    with cf.ThreadPoolExecutor(threads) as pool:
        return dict(zip(work, pool.map(lambda fn: fn(), work.values())))


def _finish_column(sq: StreamingQuantiles, m: Moments, name: str, digest: bool, deciles: bool):
    """(the column's t-digest from the grid or None, (ExactQuantiles, complete, its deciles' bins
    when complete) or None): a column's work between the passes, in one task."""
    td = sq.tdigest(m, name) if digest else None
    if not deciles:
        return td, None
    eq, done = sq.exact(m.n, m.min, m.max)
    return td, (eq, done, _decile_bins(eq, m) if done else None)


def _decile_bins(eq: ExactQuantiles, m: Moments):
    """(edges, their bin counts from the grid and the selection, or None)."""
    e = np.unique(eq.result())
    return e, eq.histogram_counts(e, m)


def _columns(plans: List[ColumnPlan], sketches: Dict[str, list], hists: Dict[str, Histogram]) -> Dict[str, ColumnProfile]:
    out: Dict[str, ColumnProfile] = {}
    for p in plans:
        sk = sketches[p.name]
        if p.kind == NUMERIC:
            out[p.name] = ColumnProfile(p.name, NUMERIC, hists[p.name], sk[0], tdigest=sk[1])
        else:
            out[p.name] = ColumnProfile(p.name, CATEGORICAL, categorical=sk[0])
    return out


class _Whole:
    """The executor of a table in memory: one partition, counted as one batch (columns whole)."""

    label, rows, workers = "", None, 1

    def __init__(self, table: pa.Table):
        self.table = table

    def pilot(self, columns):
        return None

    def run(self, label, columns, job):
        st = job.make(0)
        job.count(st, self.table)
        return st


def profile(data, *, columns: Optional[Iterable[str]] = None, kinds: Optional[Mapping[str, str]] = None,
            bins: int = 10, strategy: str = "quantile", max_categories: int = 10_000,
            reference: Optional[Profile] = None, tdigest: bool = True,
            compression: float = 100, label: Optional[str] = None, prediction: Optional[str] = None,
            scores: str = "probability", segment_by: Optional[Iterable[str]] = None,
            max_segments: int = DEFAULT_MAX_SEGMENTS) -> Profile:
    """Profile a table: one sketch set per column (and per segment with ``segment_by``).

    Parameters
    ----------
    data : pyarrow Table, RecordBatch, RecordBatchReader, Arrow C stream, or iterable of batches
        An iterable of batches is read into one table first (the deciles need columns whole).
    columns : names to profile (default: every column with a supported type), or a mapping of name to
        overrides (``kind``, ``bins``, ``strategy``; see :func:`~fastdrift.sketches.profile.plan_columns`)
    kinds : per-column override, ``"numeric"`` or ``"categorical"``
    bins, strategy : histogram binning of numeric columns (see :func:`~fastdrift.sketches.histogram.reference_edges`)
    max_categories : cardinality cap of categorical columns
    reference : a Profile whose columns and bins to reuse (for profiling *current*
        data against a reference); ``columns``/``kinds``/``bins``/``tdigest`` are then ignored.
    tdigest : add a :class:`TDigest` to every numeric column (default True)
    compression : the t-digests' compression
    label, prediction : column names, optional
        Both or neither: the profile's :class:`~fastdrift.sketches.profile.PerformanceProfile`
        counts the ``prediction`` column's scores against the ``label`` column (0/1 or boolean).
        The label column is not profiled as a column.  A current profile (``reference``) gets
        the reference's label and prediction; data without the label column counts scores only.
    scores : ``"probability"`` (scores in [0, 1], default) or ``"margin"`` (raw margins): how the
        performance sketch reads the prediction column
    segment_by : column name or names, optional
        Segment the rows by these columns' values (e.g. ``["model_version", "country"]``): the
        profile's ``segments`` maps each segment key (``"model_version=v2,country=de"``,
        :mod:`fastdrift.adapters.segments`) to its own :class:`Profile` on the same columns and
        bins (the whole's), and the profile itself is the whole.  The segment columns are not
        profiled unless listed in ``columns``.  With ``reference``: default the reference's.
    max_segments : int
        Keys past the first ``max_segments`` (in row order) are counted under ``"<other>"``.

    Raises
    ------
    SchemaError
        A label, prediction or segment column is not in the data (the label only matters for a
        reference), or a segment column's type cannot name a segment.
    """
    if reference is not None:
        if segment_by is None:
            return reference.empty_like().update(data)
        return reference.empty_like(segment_by=check_segment_columns(segment_by, max_segments),
                                    max_segments=max_segments).update(data)
    segment_by = check_segment_columns(segment_by, max_segments)
    table = as_table(data)
    check_segment_schema(table.schema, segment_by, "the table")
    perf = performance_plan(table.schema, label, prediction, "the table", scores)
    if segment_by and columns is None:  # segment columns are not features unless listed
        columns = [n for n in table.schema.names if n not in segment_by and n != label]
        plans = plan_columns(table.schema, columns, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest,
                             explicit=False, label="the table")
        skipped = [n for n in skipped_columns(table.schema, plans) if n != label and n not in segment_by]
    elif perf is not None and columns is None:
        columns = [n for n in table.schema.names if n != label]
        plans = plan_columns(table.schema, columns, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest,
                             explicit=False, label="the table")
        skipped = [n for n in skipped_columns(table.schema, plans) if n != label]
    else:
        plans = plan_columns(table.schema, columns, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest,
                             label="the table")
        # an explicit selection raised on a column without a sketch: nothing was skipped
        skipped = skipped_columns(table.schema, plans) if columns is None else []
    if perf is not None and label in {p.name for p in plans}:
        raise InvalidInputError(f"column {label!r} is the label: it cannot also be profiled as a column")
    if not plans and perf is None and not segment_by:
        return Profile({}, table.num_rows, skipped)
    if segment_by and plans:
        table = encode_segment_columns(table, segment_by, encode=encode_short_strings)
    return build_reference(_Whole(table), plans, skipped, max_categories=max_categories, compression=compression,
                           performance=perf, segment_by=segment_by, max_segments=max_segments)


def performance_plan(schema: pa.Schema, label: Optional[str], prediction: Optional[str],
                     what: str = "the data", scores: str = "probability") -> Optional[PerformanceProfile]:
    """The empty performance sketch of a reference with ``label`` and ``prediction`` columns, or None
    (``scores``: ``"probability"`` or ``"margin"``, as :class:`~fastdrift.BinaryPerformance`).

    Raises
    ------
    InvalidInputError
        Only one of them is given.
    SchemaError
        A column is not in ``schema``, or of a type that holds no scores (integers, floats) or
        labels (booleans, integers, floats) (:func:`check_performance_types`).
    """
    if label is None and prediction is None:
        return None
    if label is None or prediction is None:
        raise InvalidInputError(f"performance needs both a label column and a prediction column, got "
                                f"label={label!r}, prediction={prediction!r}")
    for role, n in (("label", label), ("prediction", prediction)):
        if n not in schema.names:
            raise SchemaError(f"{what}: {role} column {n!r} is missing (it has {schema.names})")
    perf = PerformanceProfile.empty(prediction, label, scores)
    check_performance_types(perf, schema, what)
    return perf


def check_performance_types(perf: PerformanceProfile, schema: pa.Schema, what: str = "the data") -> None:
    """SchemaError when the prediction or the label column of ``schema`` (when there) cannot be
    counted: scores are integers or floats, labels booleans, integers or floats (0/1; other
    values are counted as rejected rows, nulls as unlabelled)."""
    for role, n, ok in (("prediction", perf.prediction, lambda t: pat.is_integer(t) or pat.is_floating(t)),
                        ("label", perf.label, lambda t: pat.is_integer(t) or pat.is_floating(t)
                         or pat.is_boolean(t) or pat.is_null(t))):
        if n in schema.names and not ok(schema.field(n).type):
            need = "numeric scores (probabilities)" if role == "prediction" else "0/1 or boolean labels"
            raise SchemaError(f"{what}: {role} column {n!r} is {schema.field(n).type}: binary classification "
                              f"performance needs {need}")
