"""Profiles of Spark DataFrames, equal to the single-process profile of the same data.

``fastdrift.spark.profile(df)`` runs on an existing Spark cluster (pyspark >= 3.5,
``pip install "fastdrift[spark]"``).  The DataFrame's schema is mapped to Arrow and planned as
a table's; each pass of the reference builder (:mod:`fastdrift.sketches.reference`: three for
exact decile bins, two for uniform ones, one for a *current* profile) is one ``mapInArrow`` job
(:class:`SparkExecutor`): the executors run the same kernels over the Arrow batches and send
back one state per partition as bytes (never pickled sketches), merged tree-wise.  No column
is ever collected; the DataFrame is evaluated once per pass (``cache()`` it first when it is
expensive).  pyspark is imported only inside the functions that need it.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional

import pyarrow as pa

from .adapters.segments import DEFAULT_MAX_SEGMENTS, check_segment_columns, check_segment_schema
from .errors import InvalidInputError, SchemaError
from .metrics import compare_profiles
from .schema import check_current
from .sketches import Profile
from .sketches.profile import plan_columns, skipped_columns
from .sketches.reference import Job, build_reference, check_performance_types, count_job, performance_plan

__all__ = ["profile", "compare", "PROFILE_OPTIONS", "SparkExecutor"]

#: Keys a ``config`` mapping may hold: the options of :func:`fastdrift.profile`.
PROFILE_OPTIONS = ("kinds", "bins", "strategy", "max_categories", "tdigest", "compression", "label", "prediction",
                   "scores")
_DEFAULTS = {"kinds": None, "bins": 10, "strategy": "quantile", "max_categories": 10_000,
             "tdigest": True, "compression": 100, "label": None, "prediction": None, "scores": "probability"}

# Below this many partitions the partial states (a few KB each) are collected and merged
# on the driver; above it, treeReduce merges them on the executors first so the driver
# neither holds nor merges thousands of them.
_EXECUTOR_MERGE_MIN_PARTITIONS = 64


def _partition_job(job: Job):
    """The function ``mapInArrow`` runs on each partition: one row holding its encoded state."""
    def run(batches):
        from pyspark import TaskContext
        ctx = TaskContext.get()
        st = job.make(ctx.partitionId() if ctx is not None else 0)
        for b in batches:
            job.count(st, b)
        yield pa.RecordBatch.from_pydict({"state": [job.encode(st)]}, schema=pa.schema([("state", pa.binary())]))
    return run


def _tree_merge(states: List[Any], merge) -> Any:
    """Pairwise merges, log2(len) levels deep: each sketch merges partners of similar size."""
    while len(states) > 1:
        nxt = [merge(states[i], states[i + 1]) for i in range(0, len(states) - 1, 2)]
        if len(states) % 2:
            nxt.append(states[-1])
        states = nxt
    return states[0]


def _merge_partials(blobs_df, merge: str, job: Job) -> Any:
    """The merged state of a job's per-partition rows (on the executors or on the driver)."""
    rdd = None
    if merge in ("auto", "executors"):
        try:
            rdd = blobs_df.rdd  # not available under Spark Connect: merge on the driver there
        except Exception:  # noqa: BLE001 -- pyspark raises different types per version/mode
            if merge == "executors":
                raise
    if rdd is not None and (merge == "executors" or rdd.getNumPartitions() >= _EXECUTOR_MERGE_MIN_PARTITIONS):
        def combine(a: bytes, b: bytes) -> bytes:
            return job.encode(job.merge(job.decode(a), job.decode(b)))
        return job.decode(rdd.map(lambda row: bytes(row[0])).treeReduce(combine, depth=2))
    states = [job.decode(bytes(r[0])) for r in blobs_df.collect()]
    return _tree_merge(states, job.merge) if states else job.make(0)


class SparkExecutor:
    """The :class:`~fastdrift.sketches.reference.Executor` of a DataFrame: a pass is one
    ``mapInArrow`` job over its partitions (no pilot: the deciles take the grid and selection jobs).

    Parameters
    ----------
    dataframe : pyspark.sql.DataFrame
    merge : {"auto", "driver", "executors"}
        Where the per-partition states are merged (:func:`profile`).
    """

    label = ""
    rows = None
    workers = 1

    def __init__(self, dataframe, merge: str = "auto"):
        self.dataframe = dataframe
        self.merge = merge

    def pilot(self, columns: List[str]) -> None:
        return None

    def run(self, label: str, columns: List[str], job: Job) -> Any:
        df = self.dataframe.select(*columns) if columns else self.dataframe.select()
        return _merge_partials(df.mapInArrow(_partition_job(job), "state binary"), self.merge, job)


def _arrow_schema(dataframe, names: Iterable[str], unsupported: pa.DataType = pa.null()) -> pa.Schema:
    """The Arrow schema ``mapInArrow`` hands to Python for these columns (``unsupported`` where
    Spark's type has none)."""
    from pyspark.sql.pandas.types import to_arrow_type

    def arrow(spark_type):
        try:
            try:  # pyspark 4 needs a time zone for timestamps (any: they count as epoch seconds)
                return to_arrow_type(spark_type, timezone="UTC")
            except TypeError:  # pyspark 3.5 takes none
                return to_arrow_type(spark_type)
        except Exception:  # noqa: BLE001 -- unsupported types raise various errors across versions
            return unsupported
    fields = {f.name: f.dataType for f in dataframe.schema.fields}
    return pa.schema([(n, arrow(fields[n])) for n in names])


def _options(config: Optional[Mapping]) -> dict:
    opts = dict(_DEFAULTS)
    if config is not None:
        unknown = sorted(set(config) - set(PROFILE_OPTIONS))
        if unknown:
            raise InvalidInputError(f"unknown profile options {unknown}; expected some of {list(PROFILE_OPTIONS)}")
        opts.update(config)
    return opts


def profile(dataframe, columns: Optional[Iterable[str]] = None, config: Optional[Mapping] = None, *,
            reference: Optional[Profile] = None, merge: str = "auto", segment_by: Optional[Iterable[str]] = None,
            max_segments: int = DEFAULT_MAX_SEGMENTS) -> Profile:
    """Profile a Spark DataFrame: equal to :func:`fastdrift.profile` of the same rows.

    Parameters
    ----------
    dataframe : pyspark.sql.DataFrame
        Any DataFrame (classic or Spark Connect); its partitions are profiled where they live.
    columns : iterable of str, optional
        Columns to profile (default: every column whose type has a sketch; the others are
        listed in ``Profile.skipped``).
    config : mapping, optional
        Options of :func:`fastdrift.profile`: ``kinds``, ``bins``, ``strategy``,
        ``max_categories``, ``tdigest``, ``compression``, ``label``, ``prediction`` and ``scores``
        (the performance sketch, counted in the first pass) (same defaults).
    reference : Profile, optional
        Profile the DataFrame as *current* data against these columns and bins (one pass);
        ``columns`` and ``config`` are then ignored, as in :func:`fastdrift.profile`.
    merge : {"auto", "driver", "executors"}
        Where the per-partition profiles are merged: ``"executors"`` uses
        ``RDD.treeReduce`` (not available under Spark Connect), ``"driver"`` collects
        them and merges pairwise; ``"auto"`` picks the executors from 64 partitions on.
    segment_by, max_segments
        As :func:`fastdrift.profile`: one profile per segment key, counted in the same passes.
        Each partition keys its own rows; keys merge in partition order up to ``max_segments``.

    Returns
    -------
    Profile
        Counts, histogram edges, categories, min and max equal to the single-process
        profile; mean and variance up to floating-point reassociation; t-digests
        within their merge error bound (docs/sketches.md, "t-digest"; tests/test_tdigest.py asserts them).
    """
    if merge not in ("auto", "driver", "executors"):
        raise InvalidInputError(f"merge must be 'auto', 'driver' or 'executors', got {merge!r}")
    executor = SparkExecutor(dataframe, merge)
    segment_by = check_segment_columns(segment_by, max_segments)
    if reference is not None and not segment_by:  # a current profile: the reference's segments
        segment_by, max_segments = reference.segment_by, reference.max_segments
    seg_schema = _arrow_schema(dataframe, [c for c in segment_by if c in dataframe.columns], unsupported=pa.binary())
    for c in segment_by:  # checked on the driver: a missing column would fail inside Spark's exception
        if c not in dataframe.columns:
            raise SchemaError(f"DataFrame: segment column {c!r} is not in the data (it has {dataframe.columns})")
    check_segment_schema(seg_schema, segment_by, "DataFrame")
    if reference is not None:
        reference = reference.empty_like(segment_by=segment_by, max_segments=max_segments)
        # Checked here, on the driver, from the DataFrame's schema: a missing column or a type that
        # no longer fits the reference's sketch would otherwise fail on an executor, inside Spark's
        # exception.
        check_current(reference, _arrow_schema(dataframe, [c for c in reference.columns if c in dataframe.columns]),
                      "DataFrame")
        cols = list(reference.columns)
        if reference.performance is not None:  # the label is read when the DataFrame has it
            perf = reference.performance
            if perf.prediction not in dataframe.columns:
                raise SchemaError(f"DataFrame: prediction column {perf.prediction!r} of the reference is missing")
            cols += [c for c in perf.columns if c in dataframe.columns and c not in cols]
            check_performance_types(perf, _arrow_schema(dataframe, [c for c in perf.columns if c in cols]),
                                    "DataFrame")
        cols += [c for c in reference.segment_by if c not in cols]
        return executor.run("counting on the reference's bins", cols, count_job(reference))
    opts = _options(config)
    # a Spark type without an Arrow one has no sketch, as binary has none
    schema = _arrow_schema(dataframe, dataframe.columns, unsupported=pa.binary())
    label = opts["label"]
    perf = performance_plan(schema, label, opts["prediction"], "the DataFrame", opts["scores"])
    if perf is not None and columns is not None and label in columns:
        raise InvalidInputError(f"column {label!r} is the label: it cannot also be profiled as a column")
    default = [n for n in schema.names if n != label and n not in segment_by]
    plans = plan_columns(schema, columns if columns is not None or (perf is None and not segment_by) else
                         default, kinds=opts["kinds"], bins=opts["bins"],
                         strategy=opts["strategy"], tdigest=opts["tdigest"], label="the DataFrame",
                         explicit=columns is not None)
    skipped = [n for n in skipped_columns(schema, plans) if n != label and n not in segment_by] \
        if columns is None else []
    return build_reference(executor, plans, skipped, max_categories=opts["max_categories"],
                           compression=opts["compression"], performance=perf, segment_by=segment_by,
                           max_segments=max_segments)


def compare(reference, current, columns: Optional[Iterable[str]] = None, config: Optional[Mapping] = None, *,
            eps: float = 1e-4, merge: str = "auto"):
    """Drift of a current DataFrame against a reference DataFrame or Profile.

    Parameters
    ----------
    reference : pyspark.sql.DataFrame or Profile
        Profiled with :func:`profile` (``columns``, ``config``) when a DataFrame.
    current : pyspark.sql.DataFrame
        Profiled against the reference's bins (one pass).
    columns, config, merge
        As :func:`profile`.
    eps : float
        PSI/KL smoothing, as :func:`fastdrift.compare_profiles`.

    Returns
    -------
    list of ColumnDrift
        ``fastdrift.compare_profiles(reference_profile, current_profile)``, worst PSI first.
    """
    ref = reference if isinstance(reference, Profile) else profile(reference, columns, config, merge=merge)
    cur = profile(current, reference=ref, merge=merge)
    return compare_profiles(ref, cur, eps=eps)
