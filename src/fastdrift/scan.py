"""Profiles of files and directories, batch by batch, in bounded memory, on every core.

``fastdrift profile`` and ``fastdrift compare`` read data through :mod:`fastdrift.dataset`
and never hold a whole column: state is one set of sketches per column and per worker,
whatever the size of the data.  :class:`FileScan` runs the passes of the reference builder
(:mod:`fastdrift.sketches.reference`: usually one, exact deciles included) and the one pass
of a *current* profile: fragments (files; Parquet row groups) are counted by a thread pool
- the kernels release the GIL - each into its own partial state, merged in fragment order
as they complete, so the result does not depend on scheduling and at most ``2 * workers``
partial states exist at once.

Memory: pyarrow's scanner holds a fragment's decoded batch (bounded by the row-group size)
per worker, decoded into :func:`~fastdrift.dataset.scan_pool` (its kept pages released after each
scan); the sketches are O(bins + categories + t-digest centroids) per column, plus in
the first pass a quantile column's 16Ki grid counters and held values (they grow like the
square root of the rows, bench/bench_cli.py measures the peak RSS; at most 2**18, past which
the selection pass runs instead).
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import os
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence

import pyarrow as pa

from .adapters.segments import DEFAULT_MAX_SEGMENTS, check_segment_columns, check_segment_schema
from .dataset import DataSource, batches, fragment_path, open_data, scan_pool
from .errors import InvalidInputError, SchemaError
from .monitor.config import MonitorConfig
from .schema import check_current
from .sketches import Profile
from .sketches.profile import ColumnPlan, plan_columns as plan_schema, skipped_columns
from .sketches.reference import Job, build_reference, check_performance_types, current_job, performance_plan
from .sketches.sample import RowSample

__all__ = ["open_data", "profile_data", "DataSource", "ColumnPlan", "plan_columns", "with_sample",
           "FileScan", "default_workers"]


def plan_columns(schema: pa.Schema, config: Optional[MonitorConfig] = None, *,
                 columns: Optional[Iterable[str]] = None, kinds: Optional[Mapping[str, str]] = None,
                 bins: int = 10, strategy: str = "quantile", tdigest: bool = True,
                 label: Optional[str] = None, segment_by: Sequence[str] = ()) -> List[ColumnPlan]:
    """The columns to profile, in schema order (:func:`fastdrift.sketches.profile.plan_columns`).

    With a monitor ``config`` (the file the monitor reads): :meth:`MonitorConfig.columns
    <fastdrift.monitor.config.MonitorConfig.columns>`, the latency column included (numeric,
    with a t-digest: the latency signal is its quantiles).  Without: every column with a
    default sketch, or ``columns``.  ``kinds`` overrides kinds either way.  The ``label`` column
    (performance's, :func:`profile_data`) is never planned; the ``segment_by`` columns only when
    selected (``columns``, or the config's features).

    Raises
    ------
    SchemaError
        A selected column is not in the data or its type has no sketch.
    InvalidInputError
        The label column is selected (``columns``, or the config's features).
    """
    names = schema.names
    spec = {} if config is None else config.columns(names, latency=True)
    explicit = config is not None and config.features is not None  # else typeless columns are left out
    if columns is not None:
        spec = {c: spec.get(c, {}) for c in columns}
        explicit = True
    if label is not None:
        if explicit and label in spec:
            raise InvalidInputError(f"column {label!r} is the label: it cannot also be profiled as a column")
        if not spec:
            spec, explicit = {n: {} for n in names}, False
        spec.pop(label, None)
    if segment_by and not explicit:
        if not spec:
            spec = {n: {} for n in names}
        for c in segment_by:
            spec.pop(c, None)
    if not spec:
        return plan_schema(schema, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest)
    order = {n: i for i, n in enumerate(names)}  # schema order; a missing column first, to be named
    spec = {n: spec[n] for n in sorted(spec, key=lambda n: order.get(n, -1))}
    return plan_schema(schema, spec, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest,
                       explicit=explicit)


def with_sample(base: Job, sample: RowSample) -> Job:
    """``base`` with a row sample taken on the way; the merged sample is the state's second item.

    A row's key is that of (partition index * 2**32 + its row in the partition), so the sample
    does not depend on how partitions are scheduled or merged.
    """
    def make(i):
        return [base.make(i), sample.copy(), i, 0]  # state, sample, partition, its next row

    def count(st, b):
        base.count(st[0], b)
        st[1].update(b, st[1].keys((st[2] << 32) + st[3], b.num_rows))
        st[3] += b.num_rows

    def merge(acc, st):
        base.merge(acc[0], st[0])
        acc[1].merge(st[1])
        return acc

    def result(acc):
        return [base.result(acc[0]) if base.result is not None else acc[0]] + acc[1:]

    return Job(make, count, merge, result=result)  # the sample stays in this process


def _ordered_map(fn: Callable, items: Sequence, workers: int, merge: Callable) -> None:
    """``merge(fn(item))`` for every item, in item order, with at most ``2 * workers`` in flight.

    In-order merging makes the result independent of scheduling (categories keep arrival
    order); the bounded window keeps memory independent of the number of fragments.
    """
    if workers <= 1 or len(items) <= 1:
        for it in items:
            merge(fn(it))
        return
    with cf.ThreadPoolExecutor(workers, thread_name_prefix="fastdrift-scan") as pool:
        window: collections.deque = collections.deque()
        it = iter(items)
        for item in it:
            window.append(pool.submit(fn, item))
            if len(window) >= 2 * workers:
                merge(window.popleft().result())
        while window:
            merge(window.popleft().result())


def default_workers() -> int:
    """Scan threads when not told: one more than the cores this process may run on.

    A worker waits while pyarrow's threads read and decode its fragment's next row group;
    the extra worker's kernels fill that wait (bench/bench_scan.py, ``--no-quantiles``, by workers).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(cores, 1) + 1


class FileScan:
    """The :class:`~fastdrift.sketches.reference.Executor` of a :class:`~fastdrift.dataset.DataSource`:
    its fragments on a thread pool, merged in fragment order.

    Parameters
    ----------
    src : DataSource
    progress : object, optional
        Told of each pass: ``start(label, total rows or None, total file bytes)``, ``add(rows,
        bytes)`` per batch (from the workers), ``file_done(bytes)`` per whole file (CSV, JSON),
        ``done()`` (the command line's bar, :class:`fastdrift.cli.Progress`).
    workers : int, optional
        Threads (default: :func:`default_workers`).
    memory_pool : pyarrow.MemoryPool, optional
        Where the batches are decoded (default: :func:`fastdrift.dataset.scan_pool`, else
        pyarrow's default pool); its unused memory is released after each scan.
    """

    #: The reference builder may place the deciles' grids on the pilot while the workers read
    #: (a job's ``make`` then waits for them): pilot and workers run in this process.
    pilot_meanwhile = True

    def __init__(self, src: DataSource, progress=None, workers: Optional[int] = None,
                 memory_pool: Optional[pa.MemoryPool] = None):
        self.src = src
        self.progress = progress
        self.workers = workers or default_workers()
        self.pool = memory_pool if memory_pool is not None else scan_pool()

    @property
    def label(self) -> str:
        return self.src.label

    @property
    def rows(self) -> Optional[int]:
        return self.src.rows

    def pilot(self, columns: List[str]) -> Optional[pa.RecordBatch]:
        if not self.src.fragments:
            return None
        gen = batches(self.src.fragments[0], columns, self.src.read_schema, self.src.label,
                      use_threads=True, pool=self.pool)  # before the pool
        try:
            return next(iter(gen), None)
        finally:
            gen.close()

    def run(self, label: str, columns: List[str], job: Job) -> Any:
        """One scan: per fragment ``job.make(index)``, ``job.count`` per batch; merged in fragment order."""
        progress = self.progress
        if progress is not None:
            progress.start(label, self.src.rows, self.src.file_bytes)
        schema = self.src.read_schema
        whole_files = self.src.rows is None  # CSV / JSON fragments are whole files

        def one(item):
            index, frag = item
            st, rows = None, 0
            for b in batches(frag, columns, schema, self.src.label, pool=self.pool):
                if st is None:  # after the first batch is read: make() may wait (on the pilot)
                    st = job.make(index)
                job.count(st, b)
                rows += b.num_rows
                if progress is not None:
                    progress.add(b.num_rows, b.nbytes)
            if progress is not None and whole_files and os.path.exists(fragment_path(frag)):
                progress.file_done(os.path.getsize(fragment_path(frag)))
            return (job.make(index) if st is None else st), rows

        acc, seen = None, 0

        def merge(out):
            nonlocal acc, seen
            if acc is None:  # made here, not before the workers start: a job's make() may wait (on the pilot)
                acc = job.make(0)
            job.merge(acc, out[0])
            seen += out[1]

        try:
            _ordered_map(one, list(enumerate(self.src.fragments)), self.workers, merge)
            if acc is None:
                acc = job.make(0)
        finally:
            if self.pool is not None:
                self.pool.release_unused()  # the kept pages go back: nothing of the scan holds them
        if self.src.rows is None:
            self.src.rows = seen  # known now: the later passes' progress bar shows an ETA by rows
        if progress is not None:
            progress.done()
        return acc


def profile_data(src: DataSource, plans: Optional[List[ColumnPlan]], *, reference: Optional[Profile] = None,
                 max_categories: int = 10_000, compression: float = 100, progress=None,
                 workers: Optional[int] = None, evidence: Optional[RowSample] = None,
                 label: Optional[str] = None, prediction: Optional[str] = None,
                 scores: str = "probability", segment_by: Sequence[str] = (),
                 max_segments: int = DEFAULT_MAX_SEGMENTS) -> Profile:
    """Profile a scanned dataset: a reference (:func:`~fastdrift.sketches.reference.build_reference`
    of ``plans``, from :func:`plan_columns`), or with ``reference`` a *current* profile on its
    columns and bins in one pass, every reference column checked against the data first
    (:func:`~fastdrift.schema.check_current`).

    ``max_categories`` and ``compression`` are :func:`fastdrift.profile`'s; ``progress`` and
    ``workers`` :class:`FileScan`'s; ``evidence`` (with ``reference``), an empty row sample,
    gets the sample of the rows on the way (:func:`with_sample`).  ``label`` and ``prediction``
    (a reference's; a current profile takes the reference's) add the performance sketch
    (:func:`~fastdrift.sketches.reference.performance_plan`), counted in the same pass; current
    data without the label column counts its scores only.  ``segment_by`` and ``max_segments``
    (:func:`fastdrift.profile`'s) count one profile per segment; a current profile takes the
    reference's unless given.

    Raises
    ------
    DataReadError
        A file cannot be decoded (names the file, and pyarrow's column and row).
    SchemaError
        A reference column is missing or of a type its sketch cannot count.
    InvalidInputError
        No column of the data can be counted (each is named, with why).
    """
    scan = FileScan(src, progress, workers)
    if reference is None:
        segment_by = check_segment_columns(segment_by, max_segments)
        check_segment_schema(src.schema, segment_by, src.label)
        perf = performance_plan(src.schema, label, prediction, src.label, scores)
        skipped = [n for n in skipped_columns(src.schema, plans or ()) if n != label and n not in segment_by]
        return build_reference(scan, plans, skipped, max_categories=max_categories, compression=compression,
                               performance=perf, segment_by=segment_by, max_segments=max_segments)
    check_current(reference, src.schema, src.label)
    if segment_by:
        reference = reference.empty_like(segment_by=check_segment_columns(segment_by, max_segments),
                                         max_segments=max_segments)
    check_segment_schema(src.schema, reference.segment_by, src.label)
    cols = list(reference.columns)
    if reference.performance is not None:
        pred = reference.performance.prediction
        if pred not in src.schema.names:
            raise SchemaError(f"{src.label}: prediction column {pred!r} of the reference is missing")
        check_performance_types(reference.performance, src.schema, src.label)
        cols += [c for c in reference.performance.columns if c in src.schema.names and c not in cols]
    cols += [c for c in reference.segment_by if c not in cols]
    job = current_job(reference, scan)
    if evidence is not None and evidence.enabled:
        cols += [c for c in evidence.columns if c in src.schema.names and c not in cols]
        job = with_sample(job, evidence)
        prof, sample = job.result(scan.run("counting on the reference's bins", cols, job))[:2]
        evidence.merge(sample)
        return prof
    out = scan.run("counting on the reference's bins", cols, job)
    return job.result(out) if job.result is not None else out
