"""Per-window sketches and the :class:`~fastdrift.records.WindowReport` computed from them.

A :class:`WindowSketch` is the mergeable state of one pane (or of a window
assembled from panes): per-feature histograms / categoricals over the
reference's bins, the prediction's, a latency t-digest, error and KPI
counters, schema changes seen, and an evidence sample.  :func:`build_report`
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
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .. import codec
from ..errors import CorruptStateError, IncompatibleSketchError
from ..metrics import ColumnDrift, column_drift
from ..records import (DriftSignal, KpiSignal, LatencySignal, SchemaChange,
                       WindowReport, frozen_mapping)
from ..sketches import ColumnProfile, Moments, Profile, TDigest
from ..sketches.base import MAX_COUNT
from ..sketches.sample import jsonable, rows_from_json, rows_to_json
from .config import MonitorConfig

__all__ = ["Reference", "WindowSketch", "build_report", "window_drifts"]

_QUANTILES = np.array([0.5, 0.95, 0.99])
_COUNTERS = ("rows", "rejected", "dropped_late", "latency_invalid", "errors", "error_rows")
_U64 = np.uint64


@dataclass
class Reference:
    """What windows are compared with.

    profile : columns of features, prediction and KPIs (histograms on reference bins, no t-digest)
    types : column -> Arrow type string in the reference (None when built from a saved Profile)
    known : every column the reference data had (a batch column outside it and outside the
        configured roles is reported as a "new" schema change)
    """

    profile: Profile
    types: Dict[str, Optional[str]]
    known: Tuple[str, ...]
    _empty: Optional[Dict[str, ColumnProfile]] = None

    def empties(self) -> Dict[str, ColumnProfile]:
        """Empty column sketches on the reference bins, built once (building a histogram's bin lookup
        table is not free; copies share it)."""
        if self._empty is None:
            self._empty = {n: cp.empty_like() for n, cp in self.profile.columns.items()}
        return self._empty

    def to_bytes(self) -> bytes:
        w = codec.Writer()
        w.blob(self.profile.to_bytes())
        w.json({"types": self.types, "known": list(self.known)})
        return w.getvalue()

    @classmethod
    def from_reader(cls, r: codec.Reader) -> "Reference":
        prof = Profile.from_bytes(r.blob())
        meta = r.json("reference metadata")
        if not (isinstance(meta, dict) and isinstance(meta.get("types"), dict) and isinstance(meta.get("known"), list)
                and all(isinstance(n, str) and (t is None or isinstance(t, str)) for n, t in meta["types"].items())
                and all(isinstance(n, str) for n in meta["known"])):
            raise CorruptStateError("monitor reference: metadata must hold 'types' and 'known' column names")
        return cls(prof, dict(meta["types"]), tuple(meta["known"]))


# -- the sketch of a pane / window -------------------------------------------------------------------

class WindowSketch:
    """Mergeable per-window state.  See the module docstring."""

    def __init__(self, ref: Reference, config: MonitorConfig):
        self.ref, self.config = ref, config
        empty = ref.empties()  # copies of empty sketches share the edges' lookup tables (no rebuild)
        self.features: Dict[str, ColumnProfile] = {n: empty[n].copy() for n in config.feature_names()}
        p = config.prediction
        self.prediction: Optional[ColumnProfile] = (
            empty[p].copy() if p is not None and p in empty else None)
        self.latency: Optional[TDigest] = (
            TDigest(config.tdigest_compression, name=config.latency) if config.latency else None)
        self.kpis: Dict[str, Moments] = {k: Moments(name=k) for k in config.kpis}
        self.rows = 0
        self.rejected = 0
        self.dropped_late = 0
        self.latency_invalid = 0
        self.errors = 0
        self.error_rows = 0
        self.ts_min = math.inf
        self.ts_max = -math.inf
        self.schema: Dict[Tuple[str, str], SchemaChange] = {}
        self.evidence = config.evidence_sample()  # of the columns a batch has

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

    # -- merge / copy ------------------------------------------------------------
    def merge(self, other: "WindowSketch") -> "WindowSketch":
        for n, cp in self.features.items():
            cp.merge(other.features[n])
        if self.prediction is not None:
            self.prediction.merge(other.prediction)
        if self.latency is not None:
            self.latency.merge(other.latency)
            _ = self.latency.n_centroids  # flush now: state then survives a byte round trip exactly
        for n, m in self.kpis.items():
            m.merge(other.kpis[n])
        for a in _COUNTERS:
            setattr(self, a, getattr(self, a) + getattr(other, a))
        self.ts_min, self.ts_max = min(self.ts_min, other.ts_min), max(self.ts_max, other.ts_max)
        for key, ch in other.schema.items():
            self.schema.setdefault(key, ch)
        self.evidence.merge(other.evidence)
        return self

    def copy(self) -> "WindowSketch":
        return WindowSketch(self.ref, self.config).merge(self)

    # -- bytes ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        w = codec.Writer()
        for cp in self.features.values():
            for s in cp.sketches():
                w.blob(s.to_bytes())
        if self.prediction is not None:
            for s in self.prediction.sketches():
                w.blob(s.to_bytes())
        if self.latency is not None:
            w.blob(self.latency.to_bytes())
        for m in self.kpis.values():
            w.blob(m.to_bytes())
        for a in _COUNTERS:
            w.u64(getattr(self, a))
        w.f64(self.ts_min).f64(self.ts_max)
        w.json([[c.column, c.change, c.expected, c.observed] for c in self.schema.values()])
        w.json(rows_to_json(self.evidence.rows), default=jsonable)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, ref: Reference, config: MonitorConfig) -> "WindowSketch":
        ws = cls(ref, config)
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
        r.done()
        try:  # what a window close does with it: a pane on other bins would fail there, much later
            cls(ref, config).merge(ws)
        except IncompatibleSketchError as exc:
            raise CorruptStateError(f"window sketch does not match the reference: {exc}") from None
        return ws


# -- signals -----------------------------------------------------------------------------------

def _rate(part: int, total: int) -> float:
    return part / total if total else math.nan


def window_drifts(ws: "WindowSketch", also: Tuple[str, ...] = ()) -> Dict[str, ColumnDrift]:
    """The drift of each feature (its configured metric and PSI) and of the prediction (PSI) in ``ws``.

    ``also`` names metrics computed for every column besides (see :func:`column_drift`).
    """
    cfg, cols = ws.config, ws.ref.profile.columns
    top = cfg.max_contributions
    metric = {f.name: f.metric for f in cfg.features or ()}
    out = {n: column_drift(cols[n], cp, top=top, metrics=(metric[n], *also)) for n, cp in ws.features.items()}
    if ws.prediction is not None:
        out[cfg.prediction] = column_drift(cols[cfg.prediction], ws.prediction, top=top, metrics=also)
    return out


def _signal(d: ColumnDrift, metric: str) -> DriftSignal:
    return DriftSignal(column=d.column, kind=d.kind, metric=metric, value=d.metric(metric), n_ref=d.n_ref,
                       n_cur=d.n_cur, missing_ref=d.missing_ref, missing_cur=d.missing_cur,
                       contributions=d.contributions, pvalue=d.pvalue, mean_ref=d.mean_ref, mean_cur=d.mean_cur)


def build_report(ws: WindowSketch, start, end, closed: bool, span_seconds: float,
                 drifts: Optional[Dict[str, ColumnDrift]] = None) -> WindowReport:
    """The immutable report of a window sketch (pure: ``ws`` is not modified).

    ``span_seconds`` is the time the window covers (for throughput = rows / span); NaN if unknown.
    ``drifts`` are :func:`window_drifts` of ``ws`` when the caller has them already.
    """
    cfg, ref = ws.config, ws.ref
    drifts = window_drifts(ws) if drifts is None else drifts
    metrics = {f.name: f.metric for f in cfg.features or ()}
    feats = {n: _signal(drifts[n], metrics[n]) for n in ws.features}
    pred = _signal(drifts[cfg.prediction], "psi") if ws.prediction is not None else None
    lat = None
    if ws.latency is not None:
        t = ws.latency.copy()
        qs = t.quantile(_QUANTILES) if t.n else np.full(3, math.nan)
        lat = LatencySignal(count=int(t.n), p50=float(qs[0]), p95=float(qs[1]), p99=float(qs[2]),
                            invalid=int(ws.latency_invalid))
    kpis = {}
    for n, m in ws.kpis.items():
        rm = ref.profile.columns[n].moments.mean if n in ref.profile.columns else math.nan
        kpis[n] = KpiSignal(n, float(m.mean), float(rm))
    thr = ws.rows / span_seconds if span_seconds and span_seconds > 0 and math.isfinite(span_seconds) \
        else math.nan
    evidence = tuple(frozen_mapping(row) for _, row in ws.evidence.rows)
    return WindowReport(
        window_start=start, window_end=end, closed=closed, rows=int(ws.rows),
        rejected=int(ws.rejected), dropped_late=int(ws.dropped_late), throughput=float(thr),
        features=frozen_mapping(feats), prediction=pred, latency=lat,
        errors=int(ws.errors), error_rate=_rate(ws.errors, ws.error_rows) if cfg.error else math.nan,
        kpis=frozen_mapping(kpis),
        schema_changes=tuple(sorted(ws.schema.values(), key=lambda c: (c.column, c.change))),
        evidence=evidence)
