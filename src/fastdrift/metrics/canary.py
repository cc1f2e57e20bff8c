"""Canary comparisons: one segment (the candidate arm) against another (the baseline), window by window.

Per window, from the window's segment sketches: drift of the candidate's prediction and features
against the baseline's on the reference's bins (:func:`~fastdrift.metrics.drift.column_drift`, the
baseline as the reference side), latency quantile ratios; across windows since the canary began,
always-valid sequential tests (:mod:`fastdrift.metrics.sequential`) of the error-rate difference
and of each KPI's relative difference.  A :class:`CanaryPair` holds one (baseline, candidate,
triggers) pair's sequential state; it is fed once per closed window with rows in both arms whose span does not overlap
the last window it was fed (so with sliding windows each row counts once, and a window replayed
after a restart is not counted twice), serialized in monitor checkpoints and merged with
:meth:`CanaryPair.merge` (counts add: the pooled test of both monitors' traffic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Dict, Mapping, Optional, Tuple

from .. import codec
from ..errors import CorruptStateError, IncompatibleSketchError, InvalidInputError
from .drift import column_drift
from .sequential import MeanDifferenceTest, RateDifferenceTest, SequentialResult
from ..records import CanaryReason, DriftSignal, SegmentComparison, WindowReport, frozen_mapping, from_json, to_json

__all__ = ["CanaryTriggers", "CanaryPair", "ArmWindow", "ArmSketch", "KEPT_WINDOWS", "compare_arms", "ERROR_TAU", "VERDICTS"]

VERDICTS = ("promote", "hold", "rollback")
#: Closed windows whose segment sketches a monitor keeps for comparisons (drift between arms, KPI
#: moments); older windows are compared from their reports (error rates, latency) only.
KEPT_WINDOWS = 16
#: Mixture scale of the error-rate test (absolute, in rate units): differences near one point are
#: found fastest.
ERROR_TAU = 0.01


@dataclass(frozen=True)
class CanaryTriggers:
    """What rolls a canary back, and what promotes it (the ``signal: canary`` rule keys).

    kpi_drop : relative KPI degradation (b / a - 1 beyond ``-kpi_drop`` for a KPI where higher is
        better) that the sequential test must show at level ``alpha`` to roll back
    psi : PSI of the candidate's predictions against the baseline's in a window that rolls back
    error_rate_margin : absolute excess of the candidate's error rate over the baseline's that
        the sequential test must show to roll back
    p99_ratio : candidate p99 / baseline p99 latency in a window that rolls back
    alpha : false-positive rate of each sequential test, however often it is read
    min_rows : rows per arm (in the window, for PSI and p99; since the canary began, for the
        sequential tests) before a trigger is read
    promote_after : consecutive windows without a trigger, with every KPI shown non-inferior
        (the test that its relative difference is above ``-kpi_drop`` rejects), before
        ``promote``
    lower_is_better : KPIs where lower is better (their degradation is an increase)
    """

    kpi_drop: float = 0.05
    psi: float = 0.2
    error_rate_margin: float = 0.0
    p99_ratio: float = 1.2
    alpha: float = 0.05
    min_rows: int = 1000
    promote_after: int = 10
    lower_is_better: Tuple[str, ...] = ()

    def __post_init__(self):
        for k in ("kpi_drop", "psi", "error_rate_margin", "p99_ratio", "alpha"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InvalidInputError(f"canary: {k} must be a finite non-negative number, got {v!r}")
            object.__setattr__(self, k, float(v))
        if not 0 < self.alpha < 1:
            raise InvalidInputError(f"canary: alpha must be in (0, 1), got {self.alpha}")
        if self.kpi_drop >= 1:
            raise InvalidInputError(f"canary: kpi_drop is relative and must be below 1, got {self.kpi_drop}")
        for k in ("min_rows", "promote_after"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"canary: {k} must be a positive integer, got {v!r}")
        lib = self.lower_is_better
        if isinstance(lib, str):
            lib = (lib,)
        if not isinstance(lib, (list, tuple)) or not all(isinstance(x, str) and x for x in lib):
            raise InvalidInputError(f"canary: lower_is_better must be KPI names, got {self.lower_is_better!r}")
        object.__setattr__(self, "lower_is_better", tuple(lib))

    def as_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["lower_is_better"] = list(self.lower_is_better)
        return d


@dataclass
class ArmSketch:
    """What a comparison reads of one segment's closed-window sketch: its prediction and feature
    column sketches and KPI moments (not its latency t-digest: latency comes from the report)."""

    prediction: Any
    features: Mapping[str, Any]
    kpis: Mapping[str, Any]


@dataclass
class ArmWindow:
    """One arm (segment) in one window: its report and its sketch (None: no rows)."""

    report: Optional[WindowReport]
    sketch: Any = None

    @property
    def rows(self) -> int:
        return int(self.report.rows) if self.report is not None else 0


def _drift(column: str, a_cp, b_cp, top: int) -> Optional[DriftSignal]:
    if a_cp is None or b_cp is None:
        return None
    d = column_drift(a_cp, b_cp, top=top, metrics=("js",))
    return DriftSignal(column=column, kind=d.kind, metric="psi", value=d.psi, n_ref=d.n_ref, n_cur=d.n_cur,
                       missing_ref=d.missing_ref, missing_cur=d.missing_cur, contributions=d.contributions,
                       pvalue=d.pvalue, mean_ref=d.mean_ref, mean_cur=d.mean_cur)


def _evidence(r: SequentialResult) -> Dict[str, Any]:
    return {"estimate": r.estimate, "lower": r.lower, "upper": r.upper, "pvalue": r.pvalue, "reject": r.reject,
            "rejected_at": r.rejected_at, "n_a": r.n_a, "n_b": r.n_b, "windows": r.windows,
            "alternative": r.alternative, "margin": r.margin, "alpha": r.alpha}


class CanaryPair:
    """The sequential state of one (baseline ``a``, candidate ``b``, triggers) pair."""

    def __init__(self, a: str, b: str, triggers: CanaryTriggers):
        self.a, self.b, self.triggers = a, b, triggers
        t = triggers
        self.rate = RateDifferenceTest(alpha=t.alpha, tau=ERROR_TAU, alternative="greater",
                                       margin=t.error_rate_margin, min_n=t.min_rows)
        self.kpis: Dict[str, Tuple[MeanDifferenceTest, MeanDifferenceTest]] = {}  # name -> (worse, not worse)
        self.since: Any = None       # the start of the first window both arms had rows in
        self.last_end: Any = None    # the end of the last window fed
        self.windows = 0
        self.clean = 0               # consecutive fed windows without a trigger

    def _kpi_tests(self, name: str) -> Tuple[MeanDifferenceTest, MeanDifferenceTest]:
        tests = self.kpis.get(name)
        if tests is None:
            t = self.triggers
            lower = name in t.lower_is_better
            margin = t.kpi_drop if lower else -t.kpi_drop
            tau = t.kpi_drop or 0.05
            worse = MeanDifferenceTest(alpha=t.alpha, tau=tau, relative=True, margin=margin,
                                       alternative="greater" if lower else "less", min_n=t.min_rows)
            fine = MeanDifferenceTest(alpha=t.alpha, tau=tau, relative=True, margin=margin,
                                      alternative="less" if lower else "greater", min_n=t.min_rows)
            tests = self.kpis[name] = (worse, fine)
        return tests

    def feeds(self, window_start: Any, window_end: Any, a: ArmWindow, b: ArmWindow) -> bool:
        """Whether a closed window is fed: both arms have rows, and it starts at or after the end
        of the last window fed."""
        if not (a.rows and b.rows):
            return False
        return self.last_end is None or _ge(window_start, self.last_end)

    def feed(self, window_start: Any, window_end: Any, a: ArmWindow, b: ArmWindow) -> None:
        ra, rb = a.report, b.report
        ea, eb = (int(ra.errors) if ra else 0), (int(rb.errors) if rb else 0)
        self.rate.update((min(ea, a.rows), a.rows), (min(eb, b.rows), b.rows))
        for name in _kpi_names(a, b):
            ma, mb = _moments(a, name), _moments(b, name)
            for test in self._kpi_tests(name):
                test.update(ma, mb)
        if self.since is None:
            self.since = window_start
        self.last_end = window_end
        self.windows += 1

    def merge(self, other: "CanaryPair") -> "CanaryPair":
        """Pool ``other``'s counts (the same pair watched on another share of the traffic)."""
        if (other.a, other.b, other.triggers) != (self.a, self.b, self.triggers):
            raise IncompatibleSketchError(f"canary pair {other.a!r} vs {other.b!r} with {other.triggers} cannot "
                                          f"merge into {self.a!r} vs {self.b!r} with {self.triggers}")
        self.rate.merge(other.rate)
        for name, (w, f) in other.kpis.items():
            mine = self._kpi_tests(name)
            mine[0].merge(w)
            mine[1].merge(f)
        if self.since is None or (other.since is not None and not _ge(other.since, self.since)):
            self.since = other.since
        if self.last_end is None or (other.last_end is not None and _ge(other.last_end, self.last_end)):
            self.last_end = other.last_end
        self.windows = max(self.windows, other.windows)
        self.clean = min(self.clean, other.clean)
        return self

    def copy(self) -> "CanaryPair":
        return CanaryPair.from_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        meta = {"a": self.a, "b": self.b, "triggers": self.triggers.as_dict(), "since": to_json(self.since),
                "last_end": to_json(self.last_end), "windows": self.windows, "clean": self.clean,
                "kpis": list(self.kpis)}
        w = codec.Writer().json(meta).blob(self.rate.to_bytes())
        for worse, fine in self.kpis.values():
            w.blob(worse.to_bytes()).blob(fine.to_bytes())
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "CanaryPair":
        r = codec.Reader(data, "canary pair")
        meta = r.json("canary pair")
        try:
            p = cls(str(meta["a"]), str(meta["b"]), CanaryTriggers(**meta["triggers"]))
            p.since, p.last_end = from_json(meta["since"]), from_json(meta["last_end"])
            p.windows, p.clean, names = int(meta["windows"]), int(meta["clean"]), list(meta["kpis"])
        except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
            raise CorruptStateError(f"canary pair: invalid parameters ({exc})") from None
        p.rate = RateDifferenceTest.from_bytes(r.blob())
        for name in names:
            p.kpis[str(name)] = (MeanDifferenceTest.from_bytes(r.blob()), MeanDifferenceTest.from_bytes(r.blob()))
        r.done()
        if p.windows < 0 or p.clean < 0 or p.clean > p.windows:
            raise CorruptStateError(f"canary pair: {p.windows} windows, {p.clean} clean")
        return p


def _ge(x: Any, y: Any) -> bool:
    try:
        return bool(x >= y)
    except TypeError:
        return True


def _kpi_names(a: ArmWindow, b: ArmWindow):
    names = []
    for arm in (a, b):
        if arm.sketch is not None:
            names.extend(n for n in arm.sketch.kpis if n not in names)
    return names


def _moments(arm: ArmWindow, name: str) -> Tuple[int, float, float]:
    m = arm.sketch.kpis.get(name) if arm.sketch is not None else None
    if m is None or not m.n:
        return (0, 0.0, 0.0)
    return (int(m.n), float(m.mean), float(m.variance()))


def compare_arms(pair: CanaryPair, window_start: Any, window_end: Any, a: ArmWindow, b: ArmWindow, *,
                 prediction: Optional[str], top: int, feed: bool) -> SegmentComparison:
    """The comparison of ``b`` against ``a`` in one window; with ``feed``, the window is first added
    to ``pair``'s sequential tests (when :meth:`CanaryPair.feeds` says so), else they are read as
    they stand."""
    t = pair.triggers
    fed = feed and pair.feeds(window_start, window_end, a, b)
    if fed:
        pair.feed(window_start, window_end, a, b)
    rows_a, rows_b = a.rows, b.rows
    sa, sb = a.sketch, b.sketch
    pred = None
    feats: Dict[str, DriftSignal] = {}
    if sa is not None and sb is not None:
        if prediction is not None and sa.prediction is not None and sb.prediction is not None:
            pred = _drift(prediction, sa.prediction, sb.prediction, top)
        for n, cp in sa.features.items():
            if n in sb.features:
                feats[n] = _drift(n, cp, sb.features[n], top)
    lat: Dict[str, float] = {}
    la = a.report.latency if a.report is not None else None
    lb = b.report.latency if b.report is not None else None
    if la is not None or lb is not None:
        for q in ("p50", "p95", "p99"):
            va = float(getattr(la, q)) if la is not None and la.count else math.nan
            vb = float(getattr(lb, q)) if lb is not None and lb.count else math.nan
            lat[f"a_{q}"], lat[f"b_{q}"] = va, vb
            lat[f"ratio_{q}"] = vb / va if va > 0 else math.nan
        lat["a_count"] = float(la.count) if la is not None else 0.0
        lat["b_count"] = float(lb.count) if lb is not None else 0.0
    rate_res = pair.rate.result()
    err = {"a": (a.report.errors / rows_a) if rows_a else math.nan,
           "b": (b.report.errors / rows_b) if rows_b else math.nan, **_evidence(rate_res)}
    kpis: Dict[str, Mapping[str, Any]] = {}
    reasons = []
    for name, (worse, fine) in pair.kpis.items():
        ma, mb = _moments(a, name), _moments(b, name)
        wr, fr = worse.result(), fine.result()
        mean_a, mean_b = (ma[1] if ma[0] else math.nan), (mb[1] if mb[0] else math.nan)
        kpis[name] = frozen_mapping({"a": mean_a, "b": mean_b,
                                     "relative": mean_b / mean_a - 1.0 if ma[0] and mb[0] and mean_a else math.nan,
                                     "non_inferior": fr.reject, **_evidence(wr)})
        if wr.reject:
            reasons.append(CanaryReason(f"kpi:{name}", wr.estimate, wr.margin, wr.pvalue, wr.lower, wr.upper))
    if rate_res.reject:
        reasons.append(CanaryReason("error_rate", rate_res.estimate, t.error_rate_margin, rate_res.pvalue,
                                    rate_res.lower, rate_res.upper))
    enough = rows_a >= t.min_rows and rows_b >= t.min_rows
    if enough and pred is not None and pred.value > t.psi:
        reasons.append(CanaryReason("psi", pred.value, t.psi, pred.pvalue))
    ratio = lat.get("ratio_p99", math.nan)
    if enough and lat.get("a_count", 0) >= t.min_rows and lat.get("b_count", 0) >= t.min_rows and ratio > t.p99_ratio:
        reasons.append(CanaryReason("p99_ratio", ratio, t.p99_ratio))
    if fed:
        pair.clean = 0 if reasons else pair.clean + 1
    if reasons:
        verdict = "rollback"
    else:
        started = min(rate_res.n_a, rate_res.n_b) >= t.min_rows
        non_inferior = all(fine.result().reject for _, fine in pair.kpis.values())
        verdict = "promote" if started and non_inferior and pair.clean >= t.promote_after else "hold"
        if not started:
            reasons.append(CanaryReason("min_rows", float(min(rate_res.n_a, rate_res.n_b)), float(t.min_rows)))
    perf = {side: arm.report.performance for side, arm in (("a", a), ("b", b))
            if arm.report is not None and arm.report.performance}
    total = rows_a + rows_b
    return SegmentComparison(
        a=pair.a, b=pair.b, window_start=window_start, window_end=window_end, rows_a=rows_a, rows_b=rows_b,
        share_b=rows_b / total if total else math.nan, prediction=pred, features=frozen_mapping(feats),
        latency=frozen_mapping(lat), error_rate=frozen_mapping(err), kpis=frozen_mapping(kpis),
        performance=frozen_mapping(perf), verdict=verdict, reasons=tuple(reasons), since=pair.since, windows=pair.windows, clean_windows=pair.clean)


def write_pairs(pairs: Mapping[Any, CanaryPair]) -> bytes:
    w = codec.Writer().u64(len(pairs))
    for p in pairs.values():
        w.blob(p.to_bytes())
    return w.getvalue()


def read_pairs(data: bytes) -> Dict[Any, CanaryPair]:
    r = codec.Reader(data, "canary state")
    out: Dict[Any, CanaryPair] = {}
    for _ in range(r.count("canary pairs", 8)):
        p = CanaryPair.from_bytes(r.blob())
        key = (p.a, p.b, p.triggers)
        if key in out:
            raise CorruptStateError(f"canary state: pair {p.a!r} vs {p.b!r} repeated")
        out[key] = p
    r.done()
    return out


def describe(c: SegmentComparison) -> str:
    """``rollback: kpi:revenue=-0.12 < -0.05 (p=0.003, CS [-0.2, -0.07]); p99_ratio=1.9 > 1.2``."""
    parts = []
    for x in c.reasons:
        op = "<" if x.observed < x.threshold else ">"
        text = f"{x.trigger}={x.observed:.4g} {op} {x.threshold:.4g}"
        if x.trigger == "min_rows":
            text = f"rows per arm {x.observed:.0f} < min_rows {x.threshold:.0f}"
        elif not math.isnan(x.lower) or not math.isnan(x.upper):
            text += f" (p={x.pvalue:.3g}, CS [{x.lower:.4g}, {x.upper:.4g}])"
        parts.append(text)
    return f"{c.verdict} {c.b} vs {c.a}" + (": " + "; ".join(parts) if parts else "")


