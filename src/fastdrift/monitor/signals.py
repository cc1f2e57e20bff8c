"""Per-window sketches and the :class:`~fastdrift.records.WindowReport` computed from them.

A :class:`WindowSketch` is the mergeable state of one pane (or of a window
assembled from panes): per-feature histograms / categoricals over the
reference's bins, the prediction's, a latency t-digest and fixed-edge latency
buckets (:data:`LATENCY_EDGES_SECONDS`, what Prometheus aggregates across
processes), error and KPI counters, schema changes seen, and an evidence sample.  :func:`build_report`
turns one into the immutable report; it never mutates the sketch, so the
monitor can compute reports outside its lock on copies.

Evidence is a bottom-k sample: each row gets a 64-bit key from a hash of
(seed, row sequence number); rows with key < rate·2⁶⁴ are eligible and a
window keeps the ``max_rows`` smallest keys.  That is a uniform sample of the
eligible rows, it merges exactly across panes (union, keep the k smallest) and
it is deterministic, so a checkpoint resumes it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import codec
from ..adapters.segments import OTHER, segment_key
from ..errors import CorruptStateError, IncompatibleSketchError
from ..metrics import ColumnDrift, bin_label, columns_drift
from ..records import (DriftSignal, KpiSignal, LatencySignal, SchemaChange,
                       WindowReport, frozen_mapping)
from ..sketches import BinaryPerformance, ColumnProfile, Histogram, Moments, Profile, TDigest
from ..sketches.base import MAX_COUNT
from ..sketches.sample import rows_from_json
from .config import MonitorConfig
from .labels import LabelPane, performance_from_bytes
from .shadow import FreshnessSketch, ShadowSketch

__all__ = ["Reference", "WindowSketch", "Totals", "build_report", "window_drifts", "label_fields", "segment_labels",
           "LATENCY_EDGES_SECONDS", "CONCEPT_VIEWS"]

#: Latency bucket edges in seconds: 2^(k/8) for k = -104..56 (122 µs to 128 s), 161 edges. A
#: quantile read from these buckets (``histogram_quantile``) lies in the same bucket as the exact
#: one, so its relative error is at most 2^(1/8) - 1 ≈ 9.05 % for latencies inside the range
#: (Prometheus' native histograms default to the same factor, schema 3).
#: The buckets are counted on log2(seconds), where the edges k/8 are exact and equally spaced (one
#: table probe per value, where the 161 geometric edges would need dozens); a latency within
#: rounding of log2 of an edge may land in the neighbouring bucket, which the bound absorbs.
_LOG2_EDGES = np.arange(-104, 57) / 8.0
LATENCY_EDGES_SECONDS = np.exp2(_LOG2_EDGES)
_latency_proto: list = []  # one empty bucket histogram; copies share its bin lookup table


def _latency_buckets() -> Histogram:
    if not _latency_proto:
        _latency_proto.append(Histogram(_LOG2_EDGES))
    return _latency_proto[0].copy()

_QUANTILES = np.array([0.5, 0.95, 0.99])
_SHADOW_TAG, _FRESHNESS_TAG = 24, 25  # window sketch trailers
_COUNTERS = ("rows", "rejected", "dropped_late", "latency_invalid", "errors", "error_rows")
_U64 = np.uint64


@dataclass
class Reference:
    """What windows are compared with.

    profile : columns of features, prediction and KPIs (histograms on reference bins, no t-digest)
    types : column -> Arrow type string in the reference (None when built from a saved Profile)
    known : every column the reference data had (a batch column outside it and outside the
        configured roles is reported as a "new" schema change)
    performance : the reference's performance sketch of the config's task
        (:class:`~fastdrift.BinaryPerformance`, :class:`~fastdrift.MulticlassPerformance` or
        :class:`~fastdrift.RegressionPerformance`: the prediction column against the label
        column) when the reference data has both, else None
    latency : the reference's latency quantiles ``{"count", "p50", "p95", "p99"}`` (milliseconds,
        from a t-digest of the latency column) when the reference has that column, else None:
        what relative latency rules (``metric: ratio``) divide by
    rate : rows per second of the reference's event-time span (``rows / (max - min)`` of the
        event-time column), NaN when it has none: what relative throughput rules divide by
    segments : segment key -> the reference's own rows of that segment (a Reference on the same
        bins, without segments of its own), when the reference data had the ``segment_by`` columns
        (``segment_reference="segment"``); empty otherwise
    """

    profile: Profile
    types: Dict[str, Optional[str]]
    known: Tuple[str, ...]
    _empty: Optional[Dict[str, ColumnProfile]] = None
    performance: Optional[Any] = None
    latency: Optional[Dict[str, float]] = None
    rate: float = math.nan
    segments: Dict[str, "Reference"] = field(default_factory=dict)

    def for_segment(self, key: str) -> Tuple["Reference", str]:
        """(what segment ``key``'s drift is measured against, ``"segment"`` or ``"whole"``): the
        reference's own rows of the key when it has them, else the whole reference (always for
        :data:`~fastdrift.adapters.segments.OTHER`, whose values differ between the two)."""
        seg = self.segments.get(key) if key != OTHER else None
        return (seg, "segment") if seg is not None else (self, "whole")

    def empties(self) -> Dict[str, ColumnProfile]:
        """Empty column sketches on the reference bins, built once (building a histogram's bin lookup
        table is not free; copies share it)."""
        if self._empty is None:
            self._empty = {n: cp.empty_like() for n, cp in self.profile.columns.items()}
        return self._empty

    def to_bytes(self) -> bytes:
        w = codec.Writer()
        w.blob(self.profile.to_bytes())
        meta = {"types": self.types, "known": list(self.known)}
        if self.latency is not None:
            meta["latency"] = self.latency
        if math.isfinite(self.rate):
            meta["rate"] = self.rate
        w.json(meta)
        if self.performance is not None or self.segments:  # trailers: references written before have none
            w.blob(self.performance.to_bytes() if self.performance is not None else b"")
        if self.segments:
            w.u64(len(self.segments))
            for key, seg in self.segments.items():
                w.string(key).blob(seg.to_bytes())
        return w.getvalue()

    @classmethod
    def from_reader(cls, r: codec.Reader) -> "Reference":
        prof = Profile.from_bytes(r.blob())
        meta = r.json("reference metadata")
        if not (isinstance(meta, dict) and isinstance(meta.get("types"), dict) and isinstance(meta.get("known"), list)
                and all(isinstance(n, str) and (t is None or isinstance(t, str)) for n, t in meta["types"].items())
                and all(isinstance(n, str) for n in meta["known"])):
            raise CorruptStateError("monitor reference: metadata must hold 'types' and 'known' column names")
        lat, rate = meta.get("latency"), meta.get("rate", math.nan)
        if lat is not None and not (isinstance(lat, dict) and set(lat) == {"count", "p50", "p95", "p99"} and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in lat.values())):
            raise CorruptStateError(f"monitor reference: latency must be non-negative count, p50, p95, p99; got {lat!r}")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (rate > 0 or rate != rate):
            raise CorruptStateError(f"monitor reference: rate must be a positive number, got {rate!r}")
        perf_bytes = r.blob() if r.remaining else b""
        perf = performance_from_bytes(perf_bytes) if perf_bytes else None
        segments: Dict[str, Reference] = {}
        if r.remaining:
            for i in range(r.count("segment references", 16)):
                key = r.string(f"segment references[{i}].key")
                seg = cls.from_reader(codec.Reader(r.blob(), "segment reference"))
                if not key or key in segments or seg.segments or set(seg.profile.columns) != set(prof.columns):
                    raise CorruptStateError(f"monitor reference: segment reference {key!r:.60} is empty, repeated, "
                                            "nested or of other columns")
                segments[key] = seg
        return cls(prof, dict(meta["types"]), tuple(meta["known"]), performance=perf, latency=lat,
                   rate=float(rate), segments=segments)


def latency_quantiles(digest: Optional[TDigest]) -> Optional[Dict[str, float]]:
    """``{"count", "p50", "p95", "p99"}`` of a latency t-digest (milliseconds); None when it is empty."""
    if digest is None or not digest.n:
        return None
    qs = digest.copy().quantile(_QUANTILES)  # reading flushes: the digest itself is not modified
    return {"count": int(digest.n), **{k: float(q) for k, q in zip(("p50", "p95", "p99"), qs)}}


# -- the sketch of a pane / window -------------------------------------------------------------------

class WindowSketch:
    """Mergeable per-window state.  See the module docstring.

    With ``config.segment_by``, :attr:`segments` maps each segment key to the segment's own
    sketch (features, prediction, KPIs, latency, errors, rows; no evidence, schema, labels, shadow
    or freshness).  A row is counted once, into its segment; the whole's features, prediction and
    KPIs are the merge of the segments', rebuilt when read after a change (histograms,
    categoricals and counts merge exactly).  The whole counts its latency, errors, rows, times,
    schema changes, evidence, labels, shadow predictions and freshness itself.  ``segment=True`` makes a segment's sketch; ``segments`` is None without
    ``segment_by`` and for a segment.
    """

    def __init__(self, ref: Reference, config: MonitorConfig, *, _templates: bool = False, segment: bool = False):
        self.ref, self.config = ref, config
        self.segments: Optional[Dict[str, WindowSketch]] = {} if config.segment_by and not segment else None
        self._stale = False  # segments changed since the whole's features were merged from them
        empty = ref.empties()  # copies of empty sketches share the edges' lookup tables (no rebuild)
        # _templates (from_bytes): the shared empties, each replaced by its decoded profile
        own = (lambda cp: cp) if _templates else ColumnProfile.copy
        self.features: Dict[str, ColumnProfile] = {n: own(empty[n]) for n in config.feature_names()}
        p = config.prediction
        self.prediction: Optional[ColumnProfile] = (
            own(empty[p]) if p is not None and p in empty else None)
        self.latency: Optional[TDigest] = (
            TDigest(config.tdigest_compression, name=config.latency) if config.latency else None)
        self.latency_buckets: Optional[Histogram] = _latency_buckets() if config.latency else None
        self.latency_sum = 0.0  # milliseconds, of the values in latency_buckets
        self.kpis: Dict[str, Moments] = {k: Moments(name=k) for k in config.kpis}
        self.rows = 0
        self.rejected = 0
        self.dropped_late = 0
        self.latency_invalid = 0
        self.errors = 0
        self.error_rows = 0
        self.shed = 0  # observe() requests shed: set on assembled windows only, so not in the bytes
        self.ts_min = math.inf
        self.ts_max = -math.inf
        self.schema: Dict[Tuple[str, str], SchemaChange] = {}
        self.evidence = config.evidence_sample()  # of the columns a batch has
        self.labels: Optional[LabelPane] = LabelPane(config) if config.label and not segment else None
        # shadow and freshness are the whole's only, as labels are
        self.shadow: Optional[ShadowSketch] = (
            ShadowSketch(empty[p], config) if config.shadow_prediction is not None and p in empty and not segment
            else None)
        self.freshness: Optional[FreshnessSketch] = (
            FreshnessSketch(config) if config.freshness is not None and not segment else None)

    # -- segments: the whole's column sketches are the merge of the segments' ----------------------
    @property
    def features(self) -> Dict[str, ColumnProfile]:
        if self._stale:
            self._fold()
        return self._features

    @features.setter
    def features(self, value) -> None:
        self._features = value

    @property
    def prediction(self) -> Optional[ColumnProfile]:
        if self._stale:
            self._fold()
        return self._prediction

    @prediction.setter
    def prediction(self, value) -> None:
        self._prediction = value

    @property
    def kpis(self) -> Dict[str, Moments]:
        if self._stale:
            self._fold()
        return self._kpis

    @kpis.setter
    def kpis(self, value) -> None:
        self._kpis = value

    def _fold(self) -> None:
        """The whole's features, prediction and KPIs = the merge of the segments' (from empty)."""
        self._stale = False
        empty = self.ref.empties()
        self._features = {n: empty[n].copy() for n in self._features}
        if self._prediction is not None:
            self._prediction = empty[self.config.prediction].copy()
        self._kpis = {k: Moments(name=k) for k in self._kpis}
        segs = list(self.segments.values())
        if not segs:
            return
        # every column's segments in one merge_each per kind of sketch (the state of merging them
        # one by one, in order)
        cps = list(self._features.items())
        if self._prediction is not None:
            cps.append((self.config.prediction, self._prediction))
        ColumnProfile.merge_each([cp for _, cp in cps], [
            [seg.prediction if cp is self._prediction else seg.features[n] for seg in segs] for n, cp in cps])
        Moments.merge_each(list(self._kpis.values()), [[seg.kpis[n] for seg in segs] for n in self._kpis])

    def segment(self, key: str) -> "WindowSketch":
        """The sketch of segment ``key`` (created empty), for counting into: the whole is rebuilt
        from the segments when next read."""
        seg = self.segments.get(key)
        if seg is None:
            seg = self.segments[key] = WindowSketch(self.ref, self.config, segment=True)
        self._stale = True
        return seg

    # -- accumulate ------------------------------------------------------------
    def note_schema(self, changes) -> None:
        for ch in changes:
            self.schema.setdefault((ch.column, ch.change), ch)

    def add_times(self, ts: np.ndarray) -> None:
        if ts.size:
            if not np.isfinite(ts).all():
                ts = ts[np.isfinite(ts)]
                if not ts.size:
                    return
            lo, hi = float(ts.min()), float(ts.max())
            self.ts_min, self.ts_max = min(self.ts_min, lo), max(self.ts_max, hi)

    def add_latency(self, v: np.ndarray) -> None:
        """Count valid latencies (finite, >= 0, milliseconds) into the t-digest and the buckets."""
        self.latency.update(v)
        _ = self.latency.n_centroids  # flush the buffer: identical state after a checkpoint round trip
        with np.errstate(divide="ignore"):  # 0 ms -> -inf: the lowest bucket
            self.latency_buckets.update(np.log2(v * 1e-3))
        self.latency_sum += float(v.sum())

    # -- merge / copy ------------------------------------------------------------
    def merge(self, other: "WindowSketch", admit: Optional[Callable[[str], str]] = None) -> "WindowSketch":
        """Add ``other``'s counts.  ``admit`` maps each of ``other``'s segment keys to the key it
        is counted under here (a segmenter's cap folds keys past it into ``<other>``)."""
        return self.merge_all([other], admit)

    def merge_all(self, others: List["WindowSketch"], admit: Optional[Callable[[str], str]] = None
                  ) -> "WindowSketch":
        """:meth:`merge` each of ``others`` in turn (the same state), each column's parts at once:
        a segment's parts are gathered from every one of ``others`` and merged together, so a
        window close makes one merge call per (segment, sketch) rather than one per pane."""
        if self.segments is not None:
            parts: Dict[str, List[WindowSketch]] = {}  # first-seen order, as merging one by one
            for other in others:
                for key, seg in other.segments.items():
                    parts.setdefault(admit(key) if admit is not None else key, []).append(seg)
            segs = [self.segment(key) for key in parts]
            _merge_columns(segs, list(parts.values()))
            for seg, group in zip(segs, parts.values()):
                seg._merge_rest(group)
            if self.latency is not None and others:  # the whole counts its latency itself
                self.latency_buckets.merge_many([o.latency_buckets for o in others])
        elif others:
            _merge_columns([self], [others])
        return self._merge_rest(others, admit)

    def _merge_rest(self, others: List["WindowSketch"], admit: Optional[Callable[[str], str]] = None
                    ) -> "WindowSketch":
        """The part of :meth:`merge_all` after the column sketches (:func:`_merge_columns`)."""
        if self.latency is not None:
            for other in others:
                self.latency.merge(other.latency)
                _ = self.latency.n_centroids  # flush now: state then survives a byte round trip exactly
            self.latency_sum = sum((o.latency_sum for o in others), self.latency_sum)
        for other in others:
            for a in _COUNTERS:
                setattr(self, a, getattr(self, a) + getattr(other, a))
            self.shed += other.shed
            self.ts_min, self.ts_max = min(self.ts_min, other.ts_min), max(self.ts_max, other.ts_max)
            for key, ch in other.schema.items():
                self.schema.setdefault(key, ch)
            self.evidence.merge(other.evidence)
            if self.labels is not None:
                self.labels.merge(other.labels, admit)
            if self.shadow is not None:
                self.shadow.merge(other.shadow)
            if self.freshness is not None:
                self.freshness.merge(other.freshness)
        return self

    def copy(self) -> "WindowSketch":
        return WindowSketch(self.ref, self.config, segment=self.segments is None and bool(self.config.segment_by)
                            ).merge(self)

    # -- bytes ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        w = codec.Writer()
        # a segmented whole's column sketches are derived (rebuilt from the segments when read back):
        # written as they stand, without merging the segments first
        feats, pred, kpis = ((self._features, self._prediction, self._kpis) if self.segments is not None
                             else (self.features, self.prediction, self.kpis))
        for cp in feats.values():
            for s in cp.sketches():
                w.blob(s.to_bytes())
        if pred is not None:
            for s in pred.sketches():
                w.blob(s.to_bytes())
        if self.latency is not None:
            w.blob(self.latency.to_bytes())
        for m in kpis.values():
            w.blob(m.to_bytes())
        for a in _COUNTERS:
            w.u64(getattr(self, a))
        w.f64(self.ts_min).f64(self.ts_max)
        w.json([[c.column, c.change, c.expected, c.observed] for c in self.schema.values()])
        w.string(self.evidence.rows_json())
        if self.latency_buckets is not None:  # a trailer: sketches written before it have none
            w.blob(self.latency_buckets.to_bytes()).f64(self.latency_sum)
        if self.labels is not None:  # tagged trailers after the latency one: 1 = label pane
            w.u8(1).blob(self.labels.to_bytes())
        if self.segments:  # 2 = segments: count, then (key, segment sketch bytes)
            w.u8(2).u64(len(self.segments))
            for key, seg in self.segments.items():
                w.string(key).blob(seg.to_bytes())
        if self.shadow is not None:  # 24 = shadow predictions, 25 = freshness
            w.u8(_SHADOW_TAG).blob(self.shadow.to_bytes())
        if self.freshness is not None:
            w.u8(_FRESHNESS_TAG).blob(self.freshness.to_bytes())
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, ref: Reference, config: MonitorConfig, *,
                   segment: bool = False) -> "WindowSketch":
        ws = cls(ref, config, _templates=True, segment=segment)
        r = codec.Reader(data, "window sketch")

        def load_cp(cp: ColumnProfile) -> ColumnProfile:
            parts = []
            for s in cp.sketches():
                t = type(s).from_bytes(r.blob())
                t.name = cp.name
                parts.append(t)
            fields = {type(s).__name__: s for s in parts}
            return ColumnProfile(cp.name, cp.kind, fields.get("Histogram"), fields.get("Moments"),
                                 fields.get("Categorical"), fields.get("TDigest"))

        for n in list(ws.features):
            ws.features[n] = load_cp(ws.features[n])
        if ws.prediction is not None:
            ws.prediction = load_cp(ws.prediction)
        if ws.latency is not None:
            ws.latency = TDigest.from_bytes(r.blob())
            ws.latency.name = config.latency
        for n in list(ws.kpis):
            ws.kpis[n] = Moments.from_bytes(r.blob())
            ws.kpis[n].name = n
        for a in _COUNTERS:
            setattr(ws, a, r.u64())
            if getattr(ws, a) > MAX_COUNT:
                raise CorruptStateError(f"window sketch: {a} {getattr(ws, a)} above {MAX_COUNT}")
        ws.ts_min, ws.ts_max = r.f64(), r.f64()
        if math.isnan(ws.ts_min) or math.isnan(ws.ts_max):
            raise CorruptStateError("window sketch: NaN event-time bounds")
        if ws.latency is not None and ws.latency.compression != config.tdigest_compression:
            raise CorruptStateError(f"window sketch: latency t-digest of compression {ws.latency.compression:g}, "
                                    f"the config has {config.tdigest_compression:g}")
        changes = r.json("schema changes")
        if not (isinstance(changes, list) and all(isinstance(c, list) and len(c) == 4 and all(
                v is None or isinstance(v, str) for v in c) for c in changes)):
            raise CorruptStateError("window sketch: schema changes must be [column, change, expected, observed] lists")
        for col, change, exp, obs in changes:
            ws.schema[(col, change)] = SchemaChange(col, change, exp, obs)
        ws.evidence.add(rows_from_json(r.json("evidence"), "window sketch"))
        if ws.latency_buckets is not None and r.remaining:  # absent from older checkpoints: count from now
            h = Histogram.from_bytes(r.blob())
            if not np.array_equal(h.edges, ws.latency_buckets.edges):
                raise CorruptStateError("window sketch: latency buckets on other edges")
            ws.latency_buckets.merge(h)
            ws.latency_sum = r.f64()
            if not (math.isfinite(ws.latency_sum) and ws.latency_sum >= 0):
                raise CorruptStateError(f"window sketch: latency sum {ws.latency_sum!r}")
        last = 0
        while r.remaining:  # tagged trailers (absent from sketches of older versions), in tag order
            tag = r.u8("trailer tag")
            if tag == 1 and last < 1 and ws.labels is not None:
                ws.labels = LabelPane.from_bytes(r.blob(), config)
            elif tag == 2 and last < 2 and ws.segments is not None:
                n = r.count("segments", 9)
                if n > config.max_segments + 1:
                    raise CorruptStateError(f"window sketch: {n} segments, above max_segments "
                                            f"{config.max_segments} + <other>")
                for i in range(n):
                    key = r.string(f"segments[{i}].key")
                    if not key or key in ws.segments:
                        raise CorruptStateError(f"window sketch: segment key {key!r:.60} empty or repeated")
                    ws.segments[key] = cls.from_bytes(r.blob(), ref, config, segment=True)
                ws._stale = True
            elif tag == _SHADOW_TAG and last < _SHADOW_TAG and ws.shadow is not None:
                try:
                    ws.shadow = ShadowSketch.from_bytes(r.blob(), ref.empties()[config.prediction], config)
                except IncompatibleSketchError as exc:
                    raise CorruptStateError(f"window sketch: shadow predictions on other bins ({exc})") from None
            elif tag == _FRESHNESS_TAG and last < _FRESHNESS_TAG and ws.freshness is not None:
                ws.freshness = FreshnessSketch.from_bytes(r.blob(), config)
            else:
                raise CorruptStateError(f"window sketch: unknown or misplaced trailer {tag}, or one the config "
                                        "does not have")
            last = tag
        r.done()
        try:  # what a window close does with it: a pane on other bins would fail there, much later
            cls(ref, config, segment=segment).merge(ws)
        except IncompatibleSketchError as exc:
            raise CorruptStateError(f"window sketch does not match the reference: {exc}") from None
        return ws


def _merge_columns(targets: List[WindowSketch], groups: List[List[WindowSketch]]) -> None:
    """The features, prediction, KPIs and latency buckets of each of ``targets`` merged with those
    of its group (:meth:`WindowSketch.merge_all`), each kind of sketch of every target and column
    in one ``merge_each`` call: a window close merges every segment's panes at once."""
    cps, cp_groups, kpis, kpi_groups, buckets, bucket_groups = [], [], [], [], [], []
    for t, g in zip(targets, groups):
        if not g:
            continue
        for n, cp in t.features.items():
            cps.append(cp)
            cp_groups.append([o.features[n] for o in g])
        if t.prediction is not None:
            cps.append(t.prediction)
            cp_groups.append([o.prediction for o in g])
        for n, m in t.kpis.items():
            kpis.append(m)
            kpi_groups.append([o.kpis[n] for o in g])
        if t.latency is not None:
            buckets.append(t.latency_buckets)
            bucket_groups.append([o.latency_buckets for o in g])
    ColumnProfile.merge_each(cps, cp_groups)
    Moments.merge_each(kpis, kpi_groups)
    Histogram.merge_each(buckets, bucket_groups)


# -- lifetime totals -----------------------------------------------------------------------------

class Totals:
    """Counts since this monitor object was created, on the reference's bins: what Prometheus sums.

    Each closed pane is added once (:meth:`add`, O(bins)); a reader adds the open panes to a copy
    (:meth:`plus`).  Panes restored from a checkpoint were counted by the process that saved them,
    so a restored monitor starts from minus their counts (``add(pane, -1)``) and exports only the
    rows it saw itself.

    Attributes
    ----------
    columns : tuple of (name, role, bin labels, reference shares, reference missing share,
        reference non-missing count)
        ``role`` is ``"feature"`` or ``"prediction"``.  Numeric bins are labelled
        ``"<index> [lo, hi)"`` (:func:`~fastdrift.metrics.bin_label`); categorical bins are the
        reference's categories then ``"<other>"``, which also counts categories the reference lacks.
    bins : dict name -> int64 counts per bin;  missing : dict name -> null + NaN count
    latency : int64 counts per latency bucket (``len(LATENCY_EDGES_SECONDS) + 1``) or None
    latency_sum_ms, rows, errors, error_rows, latency_invalid : scalars
    kpis : dict KPI -> [finite values, sum, sum of squares];  kpi_ref : dict KPI -> reference mean
    segments : dict segment key -> the segment's own Totals (bins, missing, latency, rows, errors,
        KPIs; its ``columns`` carry the shares of the reference it is compared with,
        :meth:`Reference.for_segment`), None without ``segment_by`` and in a segment's
    shadow : ``{"rows", "agree", "champion", "challenger"}`` (paired rows, agreeing rows, bin
        counts of each model's prediction on the paired rows) or None
    freshness : ``{"buckets", "sum", "count", "over", "sla"}`` (lag counts per
        :data:`~fastdrift.monitor.shadow.FRESHNESS_EDGES_SECONDS` bucket, sum of the lags in them,
        lags, lags over the SLA, the SLA or None) or None
    """

    _SCALARS = ("rows", "errors", "error_rows", "latency_invalid")

    def __init__(self, ref: Reference, config: MonitorConfig, *, _segment: bool = False):
        cols = ref.profile.columns
        self._ref, self._config = ref, config
        roles = [(n, "feature") for n in config.feature_names()]
        if config.prediction is not None and config.prediction in cols:
            roles.append((config.prediction, "prediction"))
        meta, self._cat_index = [], {}
        for name, role in roles:
            cp = cols[name]
            if cp.kind == "numeric":
                h = cp.histogram
                n = h.edges.size + 1
                width = len(str(n - 1))
                labels = [f"{i:0{width}d} {bin_label(h.edges, i)}" for i in range(n)]
                ref_counts = h.counts.astype(np.float64)
            else:
                c = cp.categorical
                labels = [str(v) for v in c.categories]
                other = "<other>"
                while other in labels:  # a reference category spelled "<other>" keeps its own bin
                    other += "_"
                labels.append(other)
                ref_counts = np.append(c.counts, c.other_count).astype(np.float64)
                self._cat_index[name] = {v: i for i, v in enumerate(c.categories)}
            total = ref_counts.sum()
            share = ref_counts / total if total else np.zeros_like(ref_counts)
            missing = cp.missing_count / cp.count if cp.count else math.nan
            meta.append((name, role, tuple(labels), share, float(missing), int(total)))
        self.columns = tuple(meta)
        self.bins = {m[0]: np.zeros(len(m[2]), dtype=np.int64) for m in meta}
        self.missing = dict.fromkeys(self.bins, 0)
        self.latency = np.zeros(LATENCY_EDGES_SECONDS.size + 1, dtype=np.int64) if config.latency else None
        self.latency_sum_ms = 0.0
        self.rows = self.errors = self.error_rows = self.latency_invalid = 0
        self.kpis = {k: [0, 0.0, 0.0] for k in config.kpis}
        self.kpi_ref = {k: (float(cols[k].moments.mean) if k in cols and cols[k].moments is not None else math.nan)
                        for k in config.kpis}
        self.segments: Optional[Dict[str, Totals]] = {} if config.segment_by and not _segment else None
        pred = config.prediction
        self.shadow = None
        if not _segment and config.shadow_prediction is not None and pred in self.bins:
            self.shadow = {"rows": 0, "agree": 0, "champion": np.zeros_like(self.bins[pred]),
                           "challenger": np.zeros_like(self.bins[pred])}
        self.freshness = None
        if not _segment and config.freshness is not None:
            from .shadow import FRESHNESS_EDGES_SECONDS
            self.freshness = {"buckets": np.zeros(FRESHNESS_EDGES_SECONDS.size + 1, dtype=np.int64), "sum": 0.0,
                              "count": 0, "over": 0, "sla": config.freshness.sla}

    def _segment(self, key: str) -> "Totals":
        part = self.segments.get(key)
        if part is None:  # on the whole's bins, with the shares of the reference the segment is compared with
            part = self.segments[key] = Totals(self._ref.for_segment(key)[0], self._config, _segment=True)
            part._cat_index = self._cat_index
            part.columns = tuple((name, role, labels, *part._ref_of(name, labels))
                                 for name, role, labels, *_ in self.columns)
            part.bins = {n: np.zeros_like(c) for n, c in self.bins.items()}
            part.missing = dict.fromkeys(self.bins, 0)
        return part

    def _ref_of(self, name: str, labels) -> Tuple[np.ndarray, float, int]:
        """(shares on the whole's bins, missing share, non-missing count) of this part's reference."""
        cp = self._ref.profile.columns[name]
        counts = self._bin_counts(name, cp, len(labels)).astype(np.float64)
        total = counts.sum()
        return (counts / total if total else np.zeros_like(counts),
                float(cp.missing_count / cp.count) if cp.count else math.nan, int(total))

    def _bin_counts(self, name: str, cp: ColumnProfile, size: int) -> np.ndarray:
        """``cp``'s counts on column ``name``'s exported bins (categories the reference lacks in ``<other>``)."""
        if cp.kind == "numeric":
            return cp.histogram.counts
        c, idx = cp.categorical, self._cat_index[name]
        out = np.zeros(size, dtype=np.int64)
        for v, k in zip(c.categories, c.counts.tolist()):
            out[idx.get(v, size - 1)] += k
        out[size - 1] += c.other_count
        return out

    def add(self, ws: "WindowSketch", sign: int = 1) -> "Totals":
        """Add (``sign=-1``: subtract) the counts of one pane (a segmented pane's from its segments)."""
        if ws.segments is not None:
            for key, seg in ws.segments.items():
                self._add_columns(seg, sign)
                if self.segments is not None:
                    self._segment(key).add(seg, sign)
        else:
            self._add_columns(ws, sign)
        if self.latency is not None and ws.latency_buckets is not None:
            self.latency += sign * ws.latency_buckets.counts
            self.latency_sum_ms += sign * ws.latency_sum
        for a in self._SCALARS:
            setattr(self, a, getattr(self, a) + sign * getattr(ws, a))
        sh, fr = self.shadow, self.freshness
        if sh is not None and ws.shadow is not None:
            pred = ws.config.prediction
            sh["rows"] += sign * ws.shadow.rows
            sh["agree"] += sign * ws.shadow.agree
            for model, cp in (("champion", ws.shadow.champion), ("challenger", ws.shadow.shadow)):
                sh[model] += sign * self._bin_counts(pred, cp, sh[model].size)
        if fr is not None and ws.freshness is not None:
            fr["buckets"] += sign * ws.freshness.buckets.counts
            fr["sum"] += sign * ws.freshness.lag_sum
            fr["count"] += sign * ws.freshness.count
            fr["over"] += sign * ws.freshness.over
        return self

    def _add_columns(self, ws: "WindowSketch", sign: int) -> None:
        parts = dict(ws.features)
        if ws.prediction is not None:
            parts[ws.config.prediction] = ws.prediction
        for name, counts in self.bins.items():
            cp = parts[name]
            counts += sign * self._bin_counts(name, cp, counts.size)
            self.missing[name] += sign * cp.missing_count
        for name, acc in self.kpis.items():
            m = ws.kpis[name]
            if m.n:
                acc[0] += sign * m.n
                acc[1] += sign * m.sum
                acc[2] += sign * (m.variance() * m.n + m.sum * m.mean)  # m2 + n mean^2

    def plus(self, panes) -> "Totals":
        """A copy with ``panes`` added (the open panes at read time)."""
        t = self._copy()
        for ws in panes:
            t.add(ws)
        return t

    def _copy(self) -> "Totals":
        t = Totals.__new__(Totals)
        t.__dict__.update(self.__dict__)
        t.bins = {n: c.copy() for n, c in self.bins.items()}
        t.missing = dict(self.missing)
        t.latency = None if self.latency is None else self.latency.copy()
        t.kpis = {k: list(v) for k, v in self.kpis.items()}
        if self.segments is not None:
            t.segments = {k: v._copy() for k, v in self.segments.items()}
        if self.shadow is not None:
            t.shadow = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.shadow.items()}
        if self.freshness is not None:
            t.freshness = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.freshness.items()}
        return t


# -- signals -----------------------------------------------------------------------------------

def _rate(part: int, total: int) -> float:
    return part / total if total else math.nan


def window_drifts(ws: "WindowSketch", also: Tuple[str, ...] = (), ref: Optional[Reference] = None
                  ) -> Dict[str, ColumnDrift]:
    """The drift of each feature (its configured metric and PSI) and of the prediction (PSI) in ``ws``.

    ``also`` names metrics computed for every column besides (see :func:`column_drift`); ``ref``
    is what is compared with (default ``ws.ref``; a segment's own reference).
    """
    return _drifts_together([(ws, ref)], also)[0]


def _drifts_together(parts, also: Tuple[str, ...] = ()) -> List[Dict[str, ColumnDrift]]:
    """:func:`window_drifts` of each ``(window sketch, reference or None)`` of ``parts``, every
    column of every part in one :func:`~fastdrift.metrics.columns_drift` call (a segmented
    window's segments together: each column's values are its own, whatever is computed beside it)."""
    items, names = [], []
    for ws, ref in parts:
        cfg, cols = ws.config, (ref or ws.ref).profile.columns
        metric = {f.name: f.metric for f in cfg.features or ()}
        items += [(cols[n], cp, (metric[n], *also)) for n, cp in ws.features.items()]
        names.append(list(ws.features))
        if ws.prediction is not None:
            items.append((cols[cfg.prediction], ws.prediction, also))
            names[-1].append(cfg.prediction)
    drifts = columns_drift(items, top=parts[0][0].config.max_contributions) if items else []
    out, at = [], 0
    for part in names:
        out.append(dict(zip(part, drifts[at:at + len(part)])))
        at += len(part)
    return out


def _signal(d: ColumnDrift, metric: str) -> DriftSignal:
    return DriftSignal(column=d.column, kind=d.kind, metric=metric, value=d.metric(metric), n_ref=d.n_ref,
                       n_cur=d.n_cur, missing_ref=d.missing_ref, missing_cur=d.missing_cur,
                       contributions=d.contributions, pvalue=d.pvalue, mean_ref=d.mean_ref, mean_cur=d.mean_cur)


#: The concept-drift view of a window (``WindowReport.concept``): feature drift is a feature's
#: drift value above :data:`CONCEPT_DRIFT`; performance loss is ROC AUC below the reference's by
#: more than :data:`CONCEPT_AUC_LOSS`, read only with at least :data:`CONCEPT_MIN_LABELS` labels
#: (else ``""``: not known yet, as without a reference performance).
CONCEPT_VIEWS = ("no drift", "data drift without performance loss", "performance loss without data drift",
                 "data drift with performance loss")
CONCEPT_DRIFT = 0.2
CONCEPT_AUC_LOSS = 0.05
CONCEPT_MIN_LABELS = 200
_LABEL_QUANTILES = np.array([0.5, 0.95, 0.99])


#: The estimated metrics of a binary classifier in ``performance`` (``estimated_<name>``: from the
#: scores alone, :meth:`~fastdrift.BinaryPerformance.estimate`).
ESTIMATED = ("roc_auc", "tp", "fp", "tn", "fn", "precision", "recall", "f1", "accuracy", "positive_rate",
             "prediction_rate")
#: Per-class metrics of a multiclass classifier in ``performance``: ``<name>[<class>]``.
PER_CLASS = ("precision", "recall", "f1")


def performance_metrics(perf, threshold: float = 0.5, *, estimate: Optional[bool] = None) -> Dict[str, float]:
    """A performance sketch's metrics by name, as a window report's ``performance`` holds them.

    Binary: :meth:`~fastdrift.BinaryPerformance.metrics` at ``threshold`` (when labelled) and the
    estimated metrics ``estimated_<name>`` (:data:`ESTIMATED`) from the scores alone: over the
    unlabelled rows with ``estimate=False`` (a monitor pane counts every score there), over every
    row with ``estimate=True``, not at all with None.  Multiclass: ``metrics()`` plus
    ``precision[c]``, ``recall[c]``, ``f1[c]`` per class.  Regression: ``metrics()``.
    """
    out: Dict[str, float] = {}
    if perf.labelled:
        if isinstance(perf, BinaryPerformance):
            out = {k: float(v) for k, v in perf.metrics(threshold).items()}
        else:
            out = {k: float(v) for k, v in perf.metrics().items()}
        if hasattr(perf, "per_class"):
            for c, m in perf.per_class().items():
                for k in PER_CLASS:
                    out[f"{k}[{c}]"] = float(m[k])
    if isinstance(perf, BinaryPerformance) and estimate is not None:
        est = perf.estimate(threshold, labelled=estimate)
        if est["rows"] > 0:
            out.update({f"estimated_{k}": float(est[k]) for k in ESTIMATED})
            out["scored"] = float(est["rows"])
            if not estimate:  # every prediction's score is in the unlabelled rows: its prediction rate
                out["prediction_rate"] = float(est["prediction_rate"])
    return out


def _concept_loss(sketch, perf: dict, ref_perf: dict) -> Optional[bool]:
    """Whether the window lost performance against the reference (None: not known): ROC AUC
    down by more than :data:`CONCEPT_AUC_LOSS` (binary), accuracy down by as much (multiclass),
    MAE up by more than 10 % of the reference's (regression)."""
    name = "roc_auc" if isinstance(sketch, BinaryPerformance) else "mae" if "mae" in ref_perf else "accuracy"
    cur, ref = perf.get(name, math.nan), ref_perf.get(name, math.nan)
    if not (cur == cur and ref == ref):
        return None
    return cur - ref > 0.1 * abs(ref) if name == "mae" else ref - cur > CONCEPT_AUC_LOSS


def label_fields(lp: Optional[LabelPane], ref: Reference, features, totals=None, threshold: float = 0.5) -> dict:
    """The label fields of a window report (``performance``, ``performance_ref``,
    ``label_coverage``, ``label_delay``, ``label_counts``, ``concept``) from the window's labels
    ``lp`` (None: no label column), the reference, the window's feature drift signals, the
    monitor-wide label totals (given for the open window only: ``label_counts`` of a closed
    report holds the window's own counts) and the decision threshold."""
    if lp is None:
        return {}
    binary = isinstance(lp.perf, BinaryPerformance)
    perf = performance_metrics(lp.perf, threshold, estimate=(not lp.scored_all) if binary else None)
    scored = int(perf.pop("scored", 0))
    rp = ref.performance
    ref_perf = performance_metrics(rp, threshold, estimate=True if binary else None) \
        if rp is not None and rp.labelled else {}
    ref_perf.pop("scored", None)
    d = lp.delay.copy()  # reading a t-digest flushes it: the pane is not modified
    qs = d.quantile(_LABEL_QUANTILES) if d.n else np.full(3, math.nan)
    counts = {"predicted": int(lp.predicted), "labelled": lp.labelled}
    if binary:
        counts["scored"] = scored
    counts.update({k: int(v) for k, v in (totals or {}).items()})
    concept = ""
    loss = _concept_loss(lp.perf, perf, ref_perf)
    if lp.labelled >= CONCEPT_MIN_LABELS and loss is not None:
        drift = any(sig.value > CONCEPT_DRIFT for sig in features.values())
        concept = CONCEPT_VIEWS[int(drift) + 2 * int(loss)]
    return dict(performance=frozen_mapping(perf), performance_ref=frozen_mapping(ref_perf),
                label_coverage=lp.coverage(),
                label_delay=frozen_mapping(dict(zip(("p50", "p95", "p99"), map(float, qs)))),
                label_counts=frozen_mapping(counts), concept=concept)


def segment_labels(lp: Optional[LabelPane], key: str, config: MonitorConfig) -> Optional[LabelPane]:
    """Segment ``key``'s labels in the whole's label pane ``lp`` (empty when none reached it; None
    without labels)."""
    if lp is None or lp.segments is None:
        return None
    sp = lp.segments.get(key)
    if sp is None:
        sp = LabelPane(config, segment=True)
    return sp


def _segment_order(key: str):
    return (key == OTHER, key)


def _evidence_by_segment(ws: WindowSketch, rows) -> Dict[str, list]:
    """The whole's evidence rows by segment key (rows whose segment values were redacted, or
    spelled unlike the key, are left out)."""
    cols = ws.config.segment_by
    out: Dict[str, list] = {}
    for row in rows:
        if all(c in row for c in cols):
            key = segment_key({c: row[c] for c in cols})
            key = key if key in ws.segments else OTHER
            if key in ws.segments:
                out.setdefault(key, []).append(row)
    return out


def build_report(ws: WindowSketch, start, end, closed: bool, span_seconds: float,
                 drifts: Optional[Dict[str, ColumnDrift]] = None, label_totals=None, *,
                 ref: Optional[Reference] = None, segment: str = "", segment_reference: str = "",
                 evidence_rows=None, labels: Optional[LabelPane] = None) -> WindowReport:
    """The immutable report of a window sketch (pure: ``ws`` is not modified).

    ``span_seconds`` is the time the window covers (for throughput = rows / span); NaN if unknown.
    ``drifts`` are :func:`window_drifts` of ``ws`` when the caller has them already;
    ``label_totals`` the monitor's label counters (:func:`label_fields`).  A segmented window's
    report holds one report per segment in ``segments`` (keys sorted, ``<other>`` last), each
    measured against :meth:`Reference.for_segment` over the window's span, with the whole's
    evidence rows of the segment; ``ref``, ``segment``, ``segment_reference`` and
    ``evidence_rows`` are those of a segment's report, ``labels`` its labels (the whole's label
    pane's segment).
    """
    cfg, ref = ws.config, ref or ws.ref
    keys = sorted(ws.segments or (), key=_segment_order)
    seg_refs = {key: ws.ref.for_segment(key) for key in keys}
    seg_drifts: Dict[str, Optional[Dict[str, ColumnDrift]]] = dict.fromkeys(keys)
    if drifts is None:  # the whole's and every segment's columns together
        together = _drifts_together([(ws, ref)] + [(ws.segments[k], seg_refs[k][0]) for k in keys])
        drifts, seg_drifts = together[0], dict(zip(keys, together[1:]))
    metrics = {f.name: f.metric for f in cfg.features or ()}
    feats = {n: _signal(drifts[n], metrics[n]) for n in ws.features}
    pred = _signal(drifts[cfg.prediction], "psi") if ws.prediction is not None else None
    lat = None
    if ws.latency is not None:
        t = ws.latency.copy()
        qs = t.quantile(_QUANTILES) if t.n else np.full(3, math.nan)
        rl = ref.latency or {}
        lat = LatencySignal(count=int(t.n), p50=float(qs[0]), p95=float(qs[1]), p99=float(qs[2]),
                            invalid=int(ws.latency_invalid), ref_p50=float(rl.get("p50", math.nan)),
                            ref_p95=float(rl.get("p95", math.nan)), ref_p99=float(rl.get("p99", math.nan)))
    kpis = {}
    for n, m in ws.kpis.items():
        rm = ref.profile.columns[n].moments.mean if n in ref.profile.columns else math.nan
        kpis[n] = KpiSignal(n, float(m.mean), float(rm))
    thr = ws.rows / span_seconds if span_seconds and span_seconds > 0 and math.isfinite(span_seconds) \
        else math.nan
    evidence = (tuple(frozen_mapping(row) for _, row in ws.evidence.rows) if evidence_rows is None
                else tuple(evidence_rows))
    segments = {}
    by_key = _evidence_by_segment(ws, evidence) if ws.segments else {}
    for key in keys:
        seg_ref, used = seg_refs[key]
        segments[key] = build_report(ws.segments[key], start, end, closed, span_seconds, seg_drifts[key], ref=seg_ref,
                                     segment=key, segment_reference=used, evidence_rows=by_key.get(key, ()),
                                     labels=segment_labels(ws.labels, key, cfg))
    return WindowReport(
        window_start=start, window_end=end, closed=closed, rows=int(ws.rows),
        rejected=int(ws.rejected), dropped_late=int(ws.dropped_late), shed=int(ws.shed), throughput=float(thr),
        throughput_ref=float(ref.rate),
        features=frozen_mapping(feats), prediction=pred, latency=lat,
        errors=int(ws.errors), error_rate=_rate(ws.errors, ws.error_rows) if cfg.error else math.nan,
        kpis=frozen_mapping(kpis),
        schema_changes=tuple(sorted(ws.schema.values(), key=lambda c: (c.column, c.change))),
        evidence=evidence, segment=segment, segment_reference=segment_reference,
        segments=frozen_mapping(segments),
        **label_fields(ws.labels if labels is None else labels, ref, feats, label_totals, cfg.labels.threshold),
        shadow=ws.shadow.signal(ws.labels) if ws.shadow is not None else None,
        freshness=ws.freshness.signal() if ws.freshness is not None else None)
