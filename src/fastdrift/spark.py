"""Profiles of Spark DataFrames, equal to the single-process profile of the same data.

``fastdrift.spark.profile(df)`` runs on an existing Spark cluster (pyspark >= 3.5,
``pip install "fastdrift[spark]"``).  Each Spark job is one ``mapInArrow`` pass: the
executors run the same C/numba kernels as :func:`fastdrift.profile` over the Arrow
batches Spark hands to Python, and send back a few bytes per partition; the driver
combines them.  No column is ever collected.

A *reference* profile bins each numeric column at its exact deciles (bit-identical to
``np.quantile``), which needs order statistics of the whole column, so it takes three
passes over the data (the steps of :mod:`fastdrift.kernels.quantile`, split where their
state merges; the same derivation as ``fastdrift profile``, :mod:`fastdrift.scan`):

1. per partition, ``profile(batches)`` of every column with the numeric histograms
   left aside (serialized with :meth:`Profile.to_bytes`, merged tree-wise: on the
   executors with ``treeReduce`` when there are many partitions, else pairwise on the
   driver) -- categories, t-digests and :class:`~fastdrift.Moments`, whose merged
   finite count, min and max are exact;
2. per partition, counts of the finite values per cell of the grid
   :func:`~fastdrift.kernels.quantile.grid_plan` builds from that global n/min/max;
   the driver adds them and flags the cells that hold the ranks the deciles need;
3. per partition, the values of the flagged cells (a few thousand at most, unless
   ties pile up in a cell); the driver interpolates exactly as ``np.quantile`` does
   -> edges, and the decile bins' counts follow exactly from the grid counts and the
   selected values (every edge lies in a selected or an empty cell).

Uniform bins (``strategy="uniform"``), or an edge whose cell was not selected, take
one more pass that counts those histograms.

A *current* profile against a given reference runs step 4 only.  Partial results
travel as the versioned byte format (or raw little-endian arrays) -- never as pickled
sketches.  The DataFrame is evaluated once per pass: ``cache()`` it first when it is
expensive to compute.

This module imports pyspark only inside the functions that need it, so
``import fastdrift`` (and even ``import fastdrift.spark``) never imports pyspark.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional

import numpy as np
import pyarrow as pa

from .errors import InvalidInputError, SchemaError
from .kernels.quantile import GridPlan, grid_counts, select
from .adapters.arrow import iter_columns
from .metrics import compare_profiles
from .schema import check_current
from .sketches import Histogram, Profile
from .sketches.histogram import check_binning, no_finite_values, quantile_levels, uniform_edges
from .sketches.plan import plan_columns, skipped_columns
from .sketches.profile import NUMERIC, ColumnProfile
from .sketches.quantiles import ExactQuantiles

__all__ = ["profile", "compare", "PROFILE_OPTIONS"]

#: Keys a ``config`` mapping may hold: the options of :func:`fastdrift.profile`.
PROFILE_OPTIONS = ("kinds", "bins", "strategy", "max_categories", "tdigest", "compression")
_DEFAULTS = {"kinds": None, "bins": 10, "strategy": "quantile", "max_categories": 10_000,
             "tdigest": True, "compression": 100}

# Below this many partitions the partial profiles (a few KB each) are collected and merged
# on the driver; above it, treeReduce merges them on the executors first so the driver
# neither holds nor merges thousands of them.
_EXECUTOR_MERGE_MIN_PARTITIONS = 64


# -- partition side (runs on the executors) --------------------------------------------

def _one_row(**cols) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({k: [v] for k, v in cols.items()},
                                      schema=pa.schema([(k, pa.string() if isinstance(v, str) else pa.binary())
                                                        for k, v in cols.items()]))


def _numeric_views(batch: pa.RecordBatch, name: str):
    # Spark hands integers and floats as plain Arrow arrays; the views read them in place.
    return [v for v in iter_columns(batch.column(name), name) if v.kind == "numeric"]


def _grid_job(plans: Mapping[str, GridPlan]):
    """Job 2: one (column, int64 grid counts) row per column and partition."""
    def run(batches):
        counts = {n: np.zeros(p.n_cells, dtype=np.int64) for n, p in plans.items()}
        for b in batches:
            for n, p in plans.items():
                counts[n] += grid_counts(_numeric_views(b, n), p)
        for n, c in counts.items():
            yield _one_row(column=n, blob=c.astype("<i8").tobytes())
    return run


def _select_job(plans: Mapping[str, GridPlan], flags: Mapping[str, np.ndarray], caps: Mapping[str, int]):
    """Job 3: one (column, float64 values of the flagged cells) row per column and partition."""
    def run(batches):
        parts: Dict[str, List[np.ndarray]] = {n: [] for n in plans}
        room = dict(caps)  # the global selected count bounds what any partition can select
        for b in batches:
            for n, p in plans.items():
                got = select(_numeric_views(b, n), p, flags[n], room[n])
                room[n] -= got.size
                parts[n].append(got)
        for n, vs in parts.items():
            v = np.concatenate(vs) if vs else np.zeros(0)
            yield _one_row(column=n, blob=v.astype("<f8").tobytes())
    return run


def _profile_job(empty_blob: bytes):
    """One serialized partial Profile per partition (empty when the partition is): job 1 of a
    reference profile, the only job of a current one."""
    def run(batches):
        p = Profile.from_bytes(empty_blob)
        for b in batches:
            p.update(b)
        yield _one_row(profile=p.to_bytes())
    return run


def _histogram_job(edges: Mapping[str, np.ndarray]):
    """One (column, Histogram bytes) row per column and partition."""
    def run(batches):
        hs = {n: Histogram(e, name=n) for n, e in edges.items()}
        for b in batches:
            for n, h in hs.items():
                h.update(b.column(n))
        for n, h in hs.items():
            yield _one_row(column=n, blob=h.to_bytes())
    return run


def _merge_blobs(a: bytes, b: bytes) -> bytes:
    """Merge two serialized profiles into a serialized profile (treeReduce's function)."""
    return Profile.from_bytes(a).merge(Profile.from_bytes(b)).to_bytes()


def _to_bytes(row) -> bytes:
    return bytes(row[0])


# -- driver side ------------------------------------------------------------------------

def _collect_by_column(df) -> Dict[str, List[bytes]]:
    out: Dict[str, List[bytes]] = {}
    for row in df.collect():
        out.setdefault(row[0], []).append(bytes(row[1]))
    return out


def _tree_merge(profiles: List[Profile]) -> Profile:
    """Pairwise merges, log2(len) levels deep: each sketch merges partners of similar size."""
    while len(profiles) > 1:
        nxt = [profiles[i].merge(profiles[i + 1]) for i in range(0, len(profiles) - 1, 2)]
        if len(profiles) % 2:
            nxt.append(profiles[-1])
        profiles = nxt
    return profiles[0]


def _merge_partials(blobs_df, merge: str) -> Profile:
    rdd = None
    if merge in ("auto", "executors"):
        try:
            rdd = blobs_df.rdd  # not available under Spark Connect: merge on the driver there
        except Exception:  # noqa: BLE001 -- pyspark raises different types per version/mode
            if merge == "executors":
                raise
    if rdd is not None and (merge == "executors" or rdd.getNumPartitions() >= _EXECUTOR_MERGE_MIN_PARTITIONS):
        return Profile.from_bytes(rdd.map(_to_bytes).treeReduce(_merge_blobs, depth=2))
    return _tree_merge([Profile.from_bytes(bytes(r[0])) for r in blobs_df.collect()])


def _arrow_type(spark_type) -> Optional[pa.DataType]:
    """The Arrow type Spark hands to ``mapInArrow`` for a column, or None if it has none."""
    from pyspark.sql.pandas.types import to_arrow_type
    try:
        return to_arrow_type(spark_type)
    except Exception:  # noqa: BLE001 -- unsupported types raise various errors across versions
        return None


def _arrow_schema(dataframe, names: Iterable[str], unsupported: pa.DataType = pa.null()) -> pa.Schema:
    """The Arrow schema ``mapInArrow`` hands to Python for these columns (``unsupported`` where
    Spark's type has none)."""
    fields = {f.name: f.dataType for f in dataframe.schema.fields}
    return pa.schema([(n, _arrow_type(fields[n]) or unsupported) for n in names])


def _options(config: Optional[Mapping]) -> dict:
    opts = dict(_DEFAULTS)
    if config is not None:
        unknown = sorted(set(config) - set(PROFILE_OPTIONS))
        if unknown:
            raise InvalidInputError(f"unknown profile options {unknown}; expected some of {list(PROFILE_OPTIONS)}")
        opts.update(config)
    check_binning(opts["bins"], opts["strategy"])
    return opts


def _reference_profile(df, selected, skipped, opts, merge: str) -> Profile:
    """Jobs 1-3 (and 4 when needed): the reference profile of the module docstring."""
    bins, strategy = opts["bins"], opts["strategy"]
    placeholder = np.array([0.0])  # job 1 counts no histogram worth keeping: its bins come later
    first_empty = Profile({n: ColumnProfile.empty(n, k, edges=placeholder if k == NUMERIC else None,
                                                  tdigest=opts["tdigest"], compression=opts["compression"],
                                                  max_categories=opts["max_categories"])
                           for n, k in selected}, 0, skipped)
    first = _merge_partials(df.mapInArrow(_profile_job(first_empty.to_bytes()), "profile binary"), merge)
    numeric = [n for n, k in selected if k == NUMERIC]
    edges: Dict[str, np.ndarray] = {}
    exact: Dict[str, ExactQuantiles] = {}
    for n in numeric:
        m = first[n].moments
        if m.n == 0:
            raise no_finite_values(n)
        if strategy == "uniform":
            edges[n] = uniform_edges(m.min, m.max, bins)
        elif m.min == m.max:
            edges[n] = np.array([m.min])  # exact_quantiles of a constant column, without a pass
        else:
            exact[n] = ExactQuantiles(quantile_levels(bins), m.n, m.min, m.max)
    hists: Dict[str, Histogram] = {}
    if exact:
        plans = {n: eq.plan for n, eq in exact.items()}
        for n, blobs in _collect_by_column(df.mapInArrow(_grid_job(plans), "column string, blob binary")).items():
            for blob in blobs:
                exact[n].counts += np.frombuffer(blob, dtype="<i8")
        for eq in exact.values():
            eq.plan_select()
        flags = {n: eq.flags for n, eq in exact.items()}
        caps = {n: eq.cap for n, eq in exact.items()}
        for n, blobs in _collect_by_column(df.mapInArrow(_select_job(plans, flags, caps),
                                                         "column string, blob binary")).items():
            for blob in blobs:
                v = np.frombuffer(blob, dtype="<f8")
                if v.size:
                    exact[n].add_selected(np.unique(v, return_counts=True))
        for n, eq in exact.items():
            m = first[n].moments
            edges[n] = np.unique(eq.result())
            derived = eq.histogram_counts(edges[n], m)
            if derived is not None:
                hists[n] = Histogram.from_counts(edges[n], derived, m.null_count, m.nan_count, name=n)
    rest = {n: edges[n] for n in numeric if n not in hists}
    if rest:
        hists.update({n: Histogram(e, name=n) for n, e in rest.items()})
        for n, blobs in _collect_by_column(df.mapInArrow(_histogram_job(rest), "column string, blob binary")).items():
            for blob in blobs:
                hists[n].merge(Histogram.from_bytes(blob))
    out = {}
    for n, k in selected:
        cp = first[n]
        out[n] = ColumnProfile(n, NUMERIC, hists[n], cp.moments, tdigest=cp.tdigest) if k == NUMERIC else cp
    return Profile(out, first.rows, skipped)


def profile(dataframe, columns: Optional[Iterable[str]] = None, config: Optional[Mapping] = None, *,
            reference: Optional[Profile] = None, merge: str = "auto") -> Profile:
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
        ``max_categories``, ``tdigest``, ``compression`` (same defaults).
    reference : Profile, optional
        Profile the DataFrame as *current* data against these columns and bins (one pass);
        ``columns`` and ``config`` are then ignored, as in :func:`fastdrift.profile`.
    merge : {"auto", "driver", "executors"}
        Where the per-partition profiles are merged: ``"executors"`` uses
        ``RDD.treeReduce`` (not available under Spark Connect), ``"driver"`` collects
        them and merges pairwise; ``"auto"`` picks the executors from 64 partitions on.

    Returns
    -------
    Profile
        Counts, histogram edges, categories, min and max equal to the single-process
        profile; mean and variance up to floating-point reassociation; t-digests
        within their merge error bound (see README, "t-digest").
    """
    if merge not in ("auto", "driver", "executors"):
        raise InvalidInputError(f"merge must be 'auto', 'driver' or 'executors', got {merge!r}")
    if reference is not None:
        missing = [c for c in reference.columns if c not in dataframe.columns]
        if missing:
            raise SchemaError(f"columns {missing} of the reference are missing from the DataFrame "
                              f"(it has {dataframe.columns})")
        # Checked here, on the driver, from the DataFrame's schema: a type that no longer fits
        # the reference's sketch would otherwise fail on an executor, inside Spark's exception.
        check_current(reference, _arrow_schema(dataframe, reference.columns), "DataFrame")
        empty = reference.empty_like()
        df = dataframe.select(*reference.columns) if reference.columns else dataframe.select()
    else:
        opts = _options(config)
        # a Spark type without an Arrow one has no sketch, as binary has none
        schema = _arrow_schema(dataframe, dataframe.columns, unsupported=pa.binary())
        plans = plan_columns(schema, columns, kinds=opts["kinds"], bins=opts["bins"], strategy=opts["strategy"],
                             tdigest=opts["tdigest"], label="the DataFrame")
        selected = [(p.name, p.kind) for p in plans]
        skipped = skipped_columns(schema, plans) if columns is None else []
        return _reference_profile(dataframe.select(*[n for n, _ in selected]), selected, skipped, opts, merge)
    blobs = df.mapInArrow(_profile_job(empty.to_bytes()), "profile binary")
    return _merge_partials(blobs, merge)


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
