"""Per-window state of the shadow-prediction and freshness signals (docs/monitor.md).

A :class:`ShadowSketch` compares a challenger's prediction (``shadow_prediction``) with the
champion's (``prediction``) on the rows that have both: exact counts of paired rows, unpaired rows
and agreements, a t-digest of ``shadow - champion`` (numeric predictions) and both predictions'
distributions on the reference's bins, from which the challenger's drift from the champion is
read (:func:`fastdrift.metrics.column_drift`, the champion's window as the reference).  No
p-value is given for that drift: the two samples are the same requests, not independent ones.

A :class:`FreshnessSketch` counts the lag from a row's event time to its arrival (the wall clock
when a batch is counted; for ``observe``, the call's time), in seconds: a t-digest, the exact
count, maximum and the count above the SLA, and fixed buckets (:data:`FRESHNESS_EDGES_SECONDS`)
with the lags' sum, which Prometheus sums across processes.

Both are parts of a pane's :class:`~fastdrift.monitor.signals.WindowSketch`: they merge exactly
(counts add, digests merge), and travel in its bytes (checkpoints, the fleet spool).
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import codec
from ..adapters.arrow import float64_values
from ..errors import CorruptStateError
from ..metrics import column_drift
from ..records import FreshnessSignal, ShadowSignal, frozen_mapping
from ..sketches import ColumnProfile, Histogram, TDigest
from ..sketches.base import MAX_COUNT
from ..sketches.profile import NUMERIC
from .config import MonitorConfig

__all__ = ["ShadowSketch", "FreshnessSketch", "SCORE_DIFF_QUANTILES", "FRESHNESS_EDGES_SECONDS"]

#: The quantiles of ``shadow - champion`` a report shows, by name.
SCORE_DIFF_QUANTILES = {"p01": 0.01, "p05": 0.05, "p50": 0.5, "p95": 0.95, "p99": 0.99}
_FRESH_Q = np.array([0.5, 0.95, 0.99])
_VERSION = 1
#: Freshness bucket edges in seconds: 2^(k/4) for k = -40..68 (about 1 ms to 36 h), 109 edges,
#: counted on log2(seconds) as the latency buckets are; a lag at or below 0 is in the lowest bucket.
#: A ``histogram_quantile`` over them is within a factor 2^(1/4) (about 19 %) of the exact quantile
#: for lags inside the range.
_FRESH_LOG2_EDGES = np.arange(-40, 69) / 4.0
FRESHNESS_EDGES_SECONDS = np.exp2(_FRESH_LOG2_EDGES)
_FRESH_VERSION = 2  # 2: the buckets and the lags' sum follow (a version-1 sketch loads with empty buckets)
_fresh_proto: list = []  # one empty bucket histogram; copies share its bin lookup table


def _fresh_buckets() -> Histogram:
    if not _fresh_proto:
        _fresh_proto.append(Histogram(_FRESH_LOG2_EDGES))
    return _fresh_proto[0].copy()


def _write_cp(w: codec.Writer, cp: ColumnProfile) -> None:
    for s in cp.sketches():
        w.blob(s.to_bytes())


def _read_cp(r: codec.Reader, template: ColumnProfile) -> ColumnProfile:
    parts = {}
    for s in template.sketches():
        t = type(s).from_bytes(r.blob())
        t.name = template.name
        parts[type(s).__name__] = t
    cp = ColumnProfile(template.name, template.kind, parts.get("Histogram"), parts.get("Moments"),
                       parts.get("Categorical"), parts.get("TDigest"))
    template.copy().merge(cp)  # raises IncompatibleSketchError on other bins (the caller maps it)
    return cp


class ShadowSketch:
    """Champion vs challenger in one pane or window (see the module docstring).

    Parameters
    ----------
    empty : the empty sketch of the prediction column on the reference's bins
    config : the monitor config (``shadow_prediction``, ``shadow``, ``tdigest_compression``)
    """

    def __init__(self, empty: ColumnProfile, config: MonitorConfig):
        self.config = config
        self.kind = empty.kind
        self.mode = config.shadow.mode(empty.kind)
        self.rows = self.unpaired = self.agree = 0
        self.champion = empty.copy()  # the champion's predictions on the paired rows
        self.shadow = empty.copy()    # the challenger's
        self.diff = TDigest(config.tdigest_compression, name="shadow_diff") if empty.kind == NUMERIC else None

    def update(self, champion: pa.Array, shadow: pa.Array) -> None:
        """Count one piece's predictions (Arrow arrays of equal length, nulls / NaN unpaired)."""
        n = len(champion)
        if self.kind == NUMERIC:
            c, s = float64_values(champion), float64_values(shadow)
            ok = np.isfinite(c) & np.isfinite(s)
            if not ok.all():
                c, s = c[ok], s[ok]
            m = int(c.size)
            if m:
                spec = self.config.shadow
                if self.mode == "threshold":
                    same = (c >= spec.threshold) == (s >= spec.threshold)
                elif self.mode == "tolerance":
                    same = np.abs(s - c) <= spec.tolerance
                else:
                    same = s == c
                self.agree += int(np.count_nonzero(same))
                self.diff.update(s - c)
                _ = self.diff.n_centroids  # flushed: the same state after a byte round trip
                self.champion.update(pa.array(c))
                self.shadow.update(pa.array(s))
        else:
            if shadow.type != champion.type:
                champion, shadow = champion.cast(pa.string()), shadow.cast(pa.string())
            ok = pc.and_(champion.is_valid(), shadow.is_valid())
            c, s = champion.filter(ok), shadow.filter(ok)
            m = len(c)
            if m:
                self.agree += int(pc.sum(pc.equal(c, s)).as_py() or 0)
                self.champion.update(c)
                self.shadow.update(s)
        self.rows += m
        self.unpaired += n - m

    def merge(self, other: "ShadowSketch") -> "ShadowSketch":
        self.rows += other.rows
        self.unpaired += other.unpaired
        self.agree += other.agree
        self.champion.merge(other.champion)
        self.shadow.merge(other.shadow)
        if self.diff is not None:
            self.diff.merge(other.diff)
            _ = self.diff.n_centroids
        return self

    def signal(self, labels=None) -> ShadowSignal:
        """The report's :class:`~fastdrift.records.ShadowSignal`; ``labels``: the window's
        :class:`~fastdrift.monitor.labels.LabelPane` (its shadow performance), or None."""
        qs = {}
        if self.diff is not None:
            d = self.diff.copy()  # reading flushes: the sketch is not modified
            vals = d.quantile(np.array(list(SCORE_DIFF_QUANTILES.values()))) if d.n else \
                np.full(len(SCORE_DIFF_QUANTILES), math.nan)
            qs = {k: float(v) for k, v in zip(SCORE_DIFF_QUANTILES, vals)}
        psi = js = math.nan
        if self.rows:
            dr = column_drift(self.champion, self.shadow, top=0, metrics=("psi", "js"))
            psi, js = dr.metric("psi"), dr.metric("js")
        return ShadowSignal(column=self.config.shadow_prediction, mode=self.mode, rows=int(self.rows),
                            unpaired=int(self.unpaired), agree=int(self.agree),
                            agreement=self.agree / self.rows if self.rows else math.nan,
                            score_diff=frozen_mapping(qs), psi=float(psi), js=float(js),
                            **shadow_performance(labels, self.config.labels.threshold))

    def to_bytes(self) -> bytes:
        w = codec.Writer().u8(_VERSION).u64(self.rows).u64(self.unpaired).u64(self.agree)
        _write_cp(w, self.champion)
        _write_cp(w, self.shadow)
        if self.diff is not None:
            w.blob(self.diff.to_bytes())
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, empty: ColumnProfile, config: MonitorConfig) -> "ShadowSketch":
        sk = cls(empty, config)
        r = codec.Reader(data, "shadow sketch")
        if r.u8("version") != _VERSION:
            raise CorruptStateError("shadow sketch: unknown version")
        sk.rows, sk.unpaired, sk.agree = r.u64("rows"), r.u64("unpaired"), r.u64("agree")
        if max(sk.rows, sk.unpaired) > MAX_COUNT or sk.agree > sk.rows:
            raise CorruptStateError(f"shadow sketch: counts out of range (rows {sk.rows}, agree {sk.agree})")
        sk.champion = _read_cp(r, empty)
        sk.shadow = _read_cp(r, empty)
        if sk.diff is not None:
            sk.diff = TDigest.from_bytes(r.blob())
            sk.diff.name = "shadow_diff"
            if sk.diff.compression != config.tdigest_compression or sk.diff.n != sk.rows:
                raise CorruptStateError("shadow sketch: score difference digest of another compression or count")
        r.done()
        if sk.champion.count - sk.champion.missing_count != sk.rows or \
                sk.shadow.count - sk.shadow.missing_count != sk.rows:
            raise CorruptStateError("shadow sketch: prediction counts differ from the paired rows")
        return sk


def shadow_performance(labels, threshold: float = 0.5) -> dict:
    """The labelled fields of a :class:`~fastdrift.records.ShadowSignal` from a window's label pane
    (``labelled``, ``performance`` of the challenger, ``performance_champion``, at the decision
    ``threshold``; empty without: no labels, or a task other than binary)."""
    if labels is None or labels.shadow is None:
        return {}
    champ, chal = labels.shadow
    n = int(chal.labelled)
    if not n:
        return {"labelled": 0}
    return {"labelled": n, "performance": frozen_mapping({k: float(v) for k, v in chal.metrics(threshold).items()}),
            "performance_champion": frozen_mapping({k: float(v) for k, v in champ.metrics(threshold).items()})}


class FreshnessSketch:
    """Event-time-to-arrival lags of one pane or window (see the module docstring)."""

    def __init__(self, config: MonitorConfig):
        self.sla = config.freshness.sla
        self.lag = TDigest(config.tdigest_compression, name="freshness")
        self.count = self.over = 0
        self.max = -math.inf
        self.buckets = _fresh_buckets()
        self.lag_sum = 0.0

    def update(self, arrival, event_time: np.ndarray) -> None:
        """Count the lags ``arrival - event_time`` (seconds; ``arrival`` a number or an array);
        rows without a finite event time are not counted."""
        lag = np.asarray(arrival, dtype=np.float64) - event_time
        ok = np.isfinite(lag)
        if not ok.all():
            lag = lag[ok]
        if not lag.size:
            return
        self.lag.update(lag)
        _ = self.lag.n_centroids
        self.count += int(lag.size)
        self.max = max(self.max, float(lag.max()))
        with np.errstate(divide="ignore"):  # 0 -> -inf: the lowest bucket
            self.buckets.update(np.log2(np.maximum(lag, 0.0)))
        self.lag_sum += float(lag.sum())
        if self.sla is not None:
            self.over += int(np.count_nonzero(lag > self.sla))

    def merge(self, other: "FreshnessSketch") -> "FreshnessSketch":
        self.lag.merge(other.lag)
        _ = self.lag.n_centroids
        self.count += other.count
        self.over += other.over
        self.max = max(self.max, other.max)
        self.buckets.merge(other.buckets)
        self.lag_sum += other.lag_sum
        return self

    def signal(self) -> FreshnessSignal:
        d = self.lag.copy()
        qs = d.quantile(_FRESH_Q) if d.n else np.full(3, math.nan)
        return FreshnessSignal(count=int(self.count), p50=float(qs[0]), p95=float(qs[1]), p99=float(qs[2]),
                               max=self.max if self.count else math.nan, over_sla=int(self.over),
                               sla=math.nan if self.sla is None else float(self.sla))

    def to_bytes(self) -> bytes:
        return codec.Writer().u8(_FRESH_VERSION).u64(self.count).u64(self.over).f64(self.max) \
            .blob(self.lag.to_bytes()).blob(self.buckets.to_bytes()).f64(self.lag_sum).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, config: MonitorConfig) -> "FreshnessSketch":
        fs = cls(config)
        r = codec.Reader(data, "freshness sketch")
        version = r.u8("version")
        if version not in (_VERSION, _FRESH_VERSION):
            raise CorruptStateError("freshness sketch: unknown version")
        fs.count, fs.over, fs.max = r.u64("count"), r.u64("over_sla"), r.f64()
        fs.lag = TDigest.from_bytes(r.blob())
        fs.lag.name = "freshness"
        if version == _FRESH_VERSION:
            h = Histogram.from_bytes(r.blob())
            if not np.array_equal(h.edges, fs.buckets.edges) or int(h.counts.sum()) != fs.count or h.nan_count:
                raise CorruptStateError("freshness sketch: lag buckets on other edges or of another count")
            fs.buckets.merge(h)
            fs.lag_sum = r.f64()
            if math.isnan(fs.lag_sum):
                raise CorruptStateError("freshness sketch: NaN lag sum")
        r.done()
        if fs.count > MAX_COUNT or fs.over > fs.count or fs.lag.n != fs.count or math.isnan(fs.max) \
                or (fs.count and not math.isfinite(fs.max)) or fs.lag.compression != config.tdigest_compression:
            raise CorruptStateError(f"freshness sketch: inconsistent counts, maximum or digest (count {fs.count})")
        return fs
