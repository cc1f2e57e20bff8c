"""Profiles of files and directories, batch by batch, in bounded memory, on every core.

``fastdrift profile`` and ``fastdrift compare`` read data through
:mod:`pyarrow.dataset` (Parquet, Arrow IPC / Feather, CSV, JSON lines; files,
directories, hive partitions) and never hold a whole column: state is one set of
sketches per column and per worker, whatever the size of the data.

A *reference* profile needs exact decile edges (``np.quantile`` bit for bit,
as :func:`fastdrift.profile` computes them from a whole column).  Usually one
scan gives them (:class:`StreamingQuantiles`):

1. moments, categories and t-digests, and per quantile column the counts of an
   equal-width grid fixed before the scan from a *pilot* (the first batch, read
   once more) plus the values of the cells around each wanted rank; those
   *held* cells only shrink as the running counts locate the ranks better
   (+-5 standard errors of a quantile of the rows seen), so what is kept grows
   like sqrt(rows) and is capped.  When every cell holding a wanted order
   statistic is still held, the edges (sorted held values, interpolated as
   numpy does) and the bin counts (grid counts + held values: an edge lies in
   a held or an empty cell) are exact with no second scan.

Only when that fails (data ordered so that a prefix misleads, a held selection
over its cap) do more scans run, over the numeric columns only, exactly as the
grid steps of :mod:`fastdrift.kernels.quantile` go:

2. the values of the wanted cells of the same grid (selections concatenate),
   or, when those cells are too full, equal-width grid counts over each such
   column's exact [min, max] and then the selection on that grid;
3. histograms, only for uniform bins (whose edges are not order statistics) or
   an edge whose cell was neither selected nor empty.

A *current* profile (on a reference's bins) is one pass.  Parquet string
columns are read dictionary-encoded (categories counted on the indices, same
result).  Fragments (files; Parquet row groups) are
counted by a thread pool - the kernels release the GIL - each into its own
partial sketches, which are merged in fragment order as they complete, so the
result does not depend on scheduling and at most ``2 * workers`` partial
states exist at once.

Memory: pyarrow's scanner holds a fragment's decoded batch (bounded by the
row-group size, not by ``batch_size``) per worker; the sketches are O(bins +
categories + t-digest centroids) per column, plus in pass 1 a quantile column's
16Ki grid counters and held values (~50k distinct at 10M rows; at most 2**18,
past which the selection pass runs instead).
"""
from __future__ import annotations

import collections
import functools
import concurrent.futures as cf
import os
import sys
import threading
import time
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from .dataset import DataSource, batches, fragment_path, open_data
from .errors import InvalidInputError, SchemaError
from .monitor.config import EvidenceSpec, MonitorConfig
from .monitor.signals import redact, row_keys
from .records import SchemaChange
from .sketches import Categorical, ColumnProfile, Histogram, Moments, Profile, TDigest
from .sketches.quantiles import ExactQuantiles, StreamingQuantiles, append_compact, numeric_views
from .sketches.plan import CATEGORICAL, NUMERIC, ColumnPlan, column_kind, plan_columns as plan_schema

__all__ = ["open_data", "profile_data", "Progress", "DataSource", "ColumnPlan", "plan_columns",
           "schema_changes", "check_current", "EvidenceSample"]

# -- columns ---------------------------------------------------------------------------------------

def plan_columns(schema: pa.Schema, config: Optional[MonitorConfig] = None, *,
                 columns: Optional[Iterable[str]] = None, kinds: Optional[Mapping[str, str]] = None,
                 bins: int = 10, strategy: str = "quantile", tdigest: bool = True) -> List[ColumnPlan]:
    """The columns to profile, in schema order (:func:`fastdrift.sketches.plan.plan_columns`).

    With a monitor ``config`` (the file the monitor reads): its features (with their kind,
    bins, strategy), the prediction, KPIs and the latency column (numeric, with a t-digest:
    the latency signal is its quantiles).  Without: every column with a default sketch,
    or ``columns``.  ``kinds`` overrides kinds either way.

    Raises
    ------
    SchemaError
        A selected column is not in the data or its type has no sketch.
    """
    names = schema.names
    spec: Dict[str, dict] = {}
    explicit = True
    if config is not None and config.features is not None:
        for f in config.features:
            spec[f.name] = dict(kind=f.kind, bins=f.bins, strategy=f.strategy)
    if config is not None:
        if config.prediction:
            spec.setdefault(config.prediction, dict(kind=config.prediction_kind))
        for k in config.kpis:
            spec.setdefault(k, dict(kind=NUMERIC))
        if config.latency:
            spec.setdefault(config.latency, dict(kind=NUMERIC))
        if config.features is None:  # every other column is a feature, as the monitor does
            spec.update({n: {} for n in names if n not in spec and n not in config.roles()})
            explicit = False
    if columns is not None:
        spec = {c: spec.get(c, {}) for c in columns}
        explicit = True
    if not spec:
        return plan_schema(schema, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest)
    order = {n: i for i, n in enumerate(names)}  # schema order; a missing column first, to be named
    spec = {n: spec[n] for n in sorted(spec, key=lambda n: order.get(n, -1))}
    return plan_schema(schema, spec, kinds=kinds, bins=bins, strategy=strategy, tdigest=tdigest,
                       explicit=explicit)


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
    from .sketches.categorical import key_type_of
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


# -- progress ----------------------------------------------------------------------------------------

def _human(n: float, unit: str = "") -> str:
    for u in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{u}{unit}" if u == "" else f"{n:.1f}{u}{unit}"
        n /= 1000
    return f"{n:.1f}P{unit}"


class Progress:
    """A one-line progress bar on a stream: rows, bytes, rate, ETA.

    Off (prints nothing) unless ``enabled`` and the stream is a terminal: a log file or a
    pipe must not fill with carriage returns.  Thread-safe: workers call :meth:`add`.
    """

    def __init__(self, stream=None, enabled: bool = True, interval: float = 0.2):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled and isatty is not None and isatty())
        self.interval = interval
        self._lock = threading.Lock()
        self.rows = self.bytes = 0
        self.total_rows: Optional[int] = None
        self.total_file_bytes = self.file_bytes_done = 0
        self.label = ""
        self._t0 = self._last = time.perf_counter()

    def start(self, label: str, total_rows: Optional[int], total_file_bytes: int = 0) -> None:
        with self._lock:
            self.label, self.total_rows = label, total_rows
            self.total_file_bytes, self.file_bytes_done = total_file_bytes, 0
            self.rows = self.bytes = 0
            self._t0 = time.perf_counter()

    def file_done(self, nbytes: int) -> None:
        """A whole file was read: the ETA's measure when the row count is unknown (CSV, JSON)."""
        with self._lock:
            self.file_bytes_done += nbytes

    def add(self, rows: int, nbytes: int) -> None:
        with self._lock:
            self.rows += rows
            self.bytes += nbytes
            now = time.perf_counter()
            if self.enabled and now - self._last >= self.interval:
                self._last = now
                self._draw(now)

    def line(self, now: Optional[float] = None) -> str:
        """The bar's text (also what tests check)."""
        now = time.perf_counter() if now is None else now
        dt = max(now - self._t0, 1e-9)
        rate = self.rows / dt
        parts = [self.label, f"{self.rows:,} rows"]
        if self.total_rows:
            frac = min(self.rows / self.total_rows, 1.0)
            eta = (self.total_rows - self.rows) / rate if rate > 0 else float("nan")
            parts[1] = f"{self.rows:,}/{self.total_rows:,} rows ({frac:.0%})"
            parts.append(f"ETA {eta:.0f}s" if eta == eta else "ETA ?")
        elif self.total_file_bytes:
            frac = min(self.file_bytes_done / self.total_file_bytes, 1.0)
            eta = dt * (1 - frac) / frac if frac > 0 else float("nan")
            parts.append(f"files {frac:.0%}, ETA {eta:.0f}s" if eta == eta else "ETA ?")
        parts.insert(2, f"{_human(self.bytes, 'B')} ({_human(self.bytes / dt, 'B/s')})")
        parts.insert(3, f"{_human(rate, ' rows/s')}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now)[:200] + "\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            with self._lock:
                self._draw(time.perf_counter())
                self.stream.write("\n")
                self.stream.flush()


# -- evidence ---------------------------------------------------------------------------------------

class EvidenceSample:
    """A bounded, uniform, redacted sample of rows, as a monitor keeps per window.

    Each row gets the monitor's 64-bit key (:func:`~fastdrift.monitor.signals.row_keys`) of
    (seed, fragment index * 2**32 + row in fragment), so the sample does not depend on thread
    scheduling; rows with key < rate * 2**64 are eligible and the ``max_rows`` smallest keys
    are kept (merged across fragments exactly).  Rows are redacted (``drop``, ``hash``)
    before they are kept.
    """

    def __init__(self, spec: EvidenceSpec, columns: Sequence[str]):
        self.spec = spec
        self.columns = list(columns)
        self.threshold = min(spec.rate * 2.0 ** 64, 2.0 ** 64 - 1)
        self.rows: List[Tuple[int, dict]] = []

    def sample(self, frag_index: int, start: int, batch: pa.RecordBatch, kept: List[Tuple[int, dict]]):
        """Add the eligible rows of ``batch`` (rows ``start...`` of fragment ``frag_index``) to ``kept``."""
        k = self.spec.max_rows
        if k == 0 or self.spec.rate <= 0:
            return kept
        keys = row_keys(self.spec.seed, (frag_index << 32) + start, batch.num_rows)
        cand = np.flatnonzero(keys < np.uint64(self.threshold))
        if len(kept) >= k and cand.size:
            cand = cand[keys[cand] < np.uint64(kept[-1][0])]
        if not cand.size:
            return kept
        if cand.size > k:
            cand = cand[np.argsort(keys[cand], kind="stable")[:k]]
        cols = [c for c in self.columns if c in batch.schema.names]
        rows = batch.select(cols).take(pa.array(cand)).to_pylist()
        s = self.spec
        new = [(int(keys[i]), redact(r, frozenset(s.drop), frozenset(s.hash), s.salt)) for i, r in zip(cand, rows)]
        return sorted(kept + new, key=lambda kr: kr[0])[:k]

    def merge(self, kept: List[Tuple[int, dict]]) -> None:
        self.rows = sorted(self.rows + kept, key=lambda kr: kr[0])[: self.spec.max_rows]


# -- the parallel scan ---------------------------------------------------------------------------------

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
    the extra worker's kernels fill that wait (bench/bench_scan.py, ``--no-quantiles`` on 2 cores:
    2 workers 1.41x the read, 3 workers 1.30x, 4 workers 1.34x).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(cores, 1) + 1


class _Scanner:
    def __init__(self, src: DataSource, progress: Optional[Progress], workers: Optional[int]):
        self.src = src
        self.progress = progress
        self.workers = workers or default_workers()

    def run(self, label: str, columns: List[str], make: Callable, count: Callable, merge: Callable,
            positional: bool = False):
        """One scan: per fragment ``state = make()``, ``count(state, batch)`` per batch; ``merge(state)``.

        ``positional``: ``count(state, batch, fragment index, first row of the batch in its fragment)``.
        """
        self.positional = positional
        if self.progress is not None:
            self.progress.start(label, self.src.rows, self.src.file_bytes)
        schema = self.src.read_schema
        whole_files = self.src.rows is None  # CSV / JSON fragments are whole files

        def one(item):
            index, frag = item
            st = make()
            start = 0
            for b in batches(frag, columns, schema, self.src.label):
                count(st, b, index, start) if self.positional else count(st, b)
                start += b.num_rows
                if self.progress is not None:
                    self.progress.add(b.num_rows, b.nbytes)
            if self.progress is not None and whole_files and os.path.exists(fragment_path(frag)):
                self.progress.file_done(os.path.getsize(fragment_path(frag)))
            return st

        _ordered_map(one, list(enumerate(self.src.fragments)), self.workers, merge)
        if self.progress is not None:
            self.progress.done()


#: Values the wanted cells of the first pass's grid may hold for a selection pass on that grid;
#: beyond (a pilot whose window missed most of the data), an exact-range grid is counted first.
_SELECT_MAX = 1 << 22


def _pilot(src: DataSource, qplans: List[ColumnPlan], workers: int) -> Dict[str, StreamingQuantiles]:
    """Decile grids for the first pass, from the first batch of the first fragment."""
    if not qplans or not src.fragments:
        return {}
    cols = [p.name for p in qplans]
    gen = batches(src.fragments[0], cols, src.read_schema, src.label, use_threads=True)  # before the pool
    try:
        b = next(iter(gen), None)
    finally:
        gen.close()
    if b is None or b.num_rows == 0:
        return {}

    def one(p):
        x = b.column(p.name)
        x = x.cast(pa.float64()) if not pat.is_floating(x.type) or pat.is_float32(x.type) else x
        x = x.fill_null(np.nan).to_numpy(zero_copy_only=False)
        return StreamingQuantiles(np.arange(1, p.bins) / p.bins, x, src.rows) if np.isfinite(x).any() else None

    with cf.ThreadPoolExecutor(max(workers, 1)) as pool:  # numpy's partition and the kernels release the GIL
        made = list(pool.map(one, qplans))
    return {p.name: sq for p, sq in zip(qplans, made) if sq is not None and sq.ok}


def profile_data(src: DataSource, plans: List[ColumnPlan], *, reference: Optional[Profile] = None,
                 max_categories: int = 10_000, compression: float = 100,
                 progress: Optional[Progress] = None, workers: Optional[int] = None,
                 evidence: Optional[EvidenceSample] = None) -> Profile:
    """Profile a scanned dataset.

    Parameters
    ----------
    src : DataSource
        From :func:`open_data`.
    plans : list of ColumnPlan
        From :func:`plan_columns` (ignored with ``reference``).
    reference : Profile, optional
        Count on this profile's columns and bins: one pass (a *current* profile).  Every
        reference column must be in the data with a type its sketch counts (:func:`check_current`).
    max_categories, compression : as :func:`fastdrift.profile`
    progress : Progress, optional
        The stderr bar; one line per pass.
    workers : int, optional
        Threads (default: :func:`default_workers`, one more than the cores).
    evidence : EvidenceSample, optional
        With ``reference``: collects a redacted sample of rows on the way.

    Returns
    -------
    Profile
        Without ``reference``, after the passes of the module docstring (usually one): equal to
        ``fastdrift.profile(table)`` of the same rows (histograms, counts, categories exactly;
        moments up to float reassociation; t-digests within their merge error).

    Raises
    ------
    DataReadError
        A file cannot be decoded (names the file, and pyarrow's column and row).
    SchemaError
        A reference column is missing or of a type its sketch cannot count.
    InvalidInputError
        A numeric column has no finite value to derive edges from.
    """
    sc = _Scanner(src, progress, workers)
    if reference is not None:
        check_current(reference, src.schema, src.label)
        cols = list(reference.columns)
        if evidence is not None:
            cols += [c for c in evidence.columns if c in src.schema.names and c not in cols]
        total = reference.empty_like()

        def make():
            return [reference.empty_like(), []]

        def count(st, b, index, start):
            st[0].update(b)
            if evidence is not None:
                st[1] = evidence.sample(index, start, b, st[1])

        def merge(st):
            total.merge(st[0])
            if evidence is not None:
                evidence.merge(st[1])

        sc.run("counting on the reference's bins", cols, make, count, merge, positional=True)
        return total

    if not plans:
        raise SchemaError(f"{src.label}: no column to profile")
    names = [p.name for p in plans]
    numeric = [p for p in plans if p.kind == NUMERIC]
    qplans = [p for p in numeric if p.strategy == "quantile"]
    streaming = _pilot(src, qplans, sc.workers)

    # pass 1: moments, t-digests, categories; decile grids and their held cells
    def make1():
        out = {}
        for p in plans:
            if p.kind == NUMERIC:
                out[p.name] = [Moments(name=p.name), TDigest(compression, name=p.name) if p.tdigest else None]
            else:
                out[p.name] = [Categorical(max_categories, name=p.name)]
        return [out, 0, {n: sq.start() for n, sq in streaming.items()}]

    def count1(st, b):
        for p in plans:
            col = b.column(p.name)
            sq = streaming.get(p.name)
            for s in st[0][p.name]:
                if s is None:
                    continue
                if sq is not None and isinstance(s, Moments):
                    # moments, grid counts and held values in one read of the column
                    s.update_counting(col, functools.partial(sq.count, st[2][p.name]))
                else:
                    s.update(col)
        st[1] += b.num_rows

    acc = make1()

    def merge1(st):
        for n, sk in acc[0].items():
            for a, o in zip(sk, st[0][n]):
                if a is not None:
                    a.merge(o)
        acc[1] += st[1]
        for n, sq in streaming.items():
            sq.merge(st[2][n], st[1])

    what = "moments, categories" + (", t-digests" if any(p.tdigest for p in numeric) else "") + \
        (", deciles" if streaming else "")
    sc.run(f"pass 1 ({what})", names, make1, count1, merge1)
    first, rows = acc[0], acc[1]
    if src.rows is None:
        src.rows = rows  # known now: the later passes' progress bar shows an ETA by rows
    edges: Dict[str, np.ndarray] = {}
    exact: Dict[str, ExactQuantiles] = {}
    to_count: Dict[str, ExactQuantiles] = {}  # need the grid pass (and then the selection)
    to_select: Dict[str, ExactQuantiles] = {}  # need the selection pass
    for p in numeric:
        m = first[p.name][0]
        if m.n == 0:
            raise InvalidInputError(f"{src.label}: column {p.name!r}: no finite values to derive "
                                    "histogram edges from")
        if p.strategy == "uniform":
            lo, hi = m.min, m.max
            edges[p.name] = np.unique(np.linspace(lo, hi, p.bins + 1)[1:-1] if hi > lo else np.array([lo]))
            continue
        qs = np.arange(1, p.bins) / p.bins
        if m.min == m.max:
            edges[p.name] = np.unique(np.full(qs.shape, m.min))
            continue
        sq = streaming.get(p.name)
        if sq is not None and sq.ok:
            eq, done = sq.exact(m.n, m.min, m.max)
            exact[p.name] = eq
            # the first pass's grid missed a wanted rank: select on it unless its cells are big
            if not done and eq.cap <= _SELECT_MAX:
                to_select[p.name] = eq
            elif not done:
                exact[p.name] = to_count[p.name] = ExactQuantiles(qs, m.n, m.min, m.max)
        else:
            exact[p.name] = to_count[p.name] = ExactQuantiles(qs, m.n, m.min, m.max)
    n_pass = 1
    if to_count:
        qcols = list(to_count)
        n_pass += 1

        def make2():
            return {n: np.zeros(to_count[n].n_cells, np.int64) for n in qcols}

        def count2(st, b):
            for n in qcols:
                st[n] += to_count[n].count(numeric_views(b.column(n), n))

        def merge2(st):
            for n in qcols:
                to_count[n].counts += st[n]

        sc.run(f"pass {n_pass} (quantile grid)", qcols, make2, count2, merge2)
        for eq in to_count.values():
            eq.plan_select()
        to_select.update(to_count)
    if to_select:
        scols = list(to_select)
        n_pass += 1

        def make3():
            return {n: [] for n in scols}

        def count3(st, b):
            for n in scols:
                part = to_select[n].select(numeric_views(b.column(n), n))
                if part[0].size:
                    st[n] = append_compact(st[n], part)

        def merge3(st):
            for n in scols:
                for part in st[n]:
                    to_select[n].add_selected(part)

        sc.run(f"pass {n_pass} (exact deciles)", scols, make3, count3, merge3)
    for n, eq in exact.items():
        edges[n] = np.unique(eq.result())
    hists: Dict[str, Histogram] = {}
    for n, eq in exact.items():
        # deciles' own bins come from the grid and the selection: no histogram pass for them
        m = first[n][0]
        derived = eq.histogram_counts(edges[n], m)
        if derived is not None:
            hists[n] = Histogram.from_counts(edges[n], derived, m.null_count, m.nan_count, name=n)
    rest = [p for p in numeric if p.name not in hists]
    if rest:
        ncols = [p.name for p in rest]
        empty = {n: Histogram(edges[n], name=n) for n in ncols}  # never counted into: workers copy it
        hists.update({n: h.copy() for n, h in empty.items()})

        def make4():
            return {n: empty[n].copy() for n in ncols}  # copies share the bin lookup table

        def count4(st, b):
            for n in ncols:
                st[n].update(b.column(n))

        def merge4(st):
            for n in ncols:
                hists[n].merge(st[n])

        sc.run(f"pass {n_pass + 1} (histograms)", ncols, make4, count4, merge4)
    out: Dict[str, ColumnProfile] = {}
    for p in plans:
        sk = first[p.name]
        if p.kind == NUMERIC:
            out[p.name] = ColumnProfile(p.name, NUMERIC, hists[p.name], sk[0], tdigest=sk[1])
        else:
            out[p.name] = ColumnProfile(p.name, CATEGORICAL, categorical=sk[0])
    # as fastdrift.profile(): columns whose type has no sketch
    skipped = [n for n in src.schema.names if n not in names and column_kind(src.schema.field(n).type) is None]
    return Profile(out, rows, skipped)
