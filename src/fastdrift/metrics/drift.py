"""Per-column drift between a reference and a current column sketch, each signal computed once.

:func:`column_drift` is the one computation of a column's PSI (with its per-bin terms and its
p-value), JS distance, Hellinger and total variation distance; :func:`compare_profiles` applies it
to every column two profiles share, and the monitor's drift signals are built from it
(:mod:`fastdrift.monitor.signals`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from ..errors import IncompatibleSketchError
from ..records import BinContribution
from .divergence import align, hellinger, js_distance, psi_contributions, psi_pvalue, psi_terms, total_variation

__all__ = ["ALL_METRICS", "ColumnDrift", "column_drift", "columns_drift", "compare_profiles", "bin_label", "psi_status", "format_table",
           "id_like", "psi_ceiling"]

#: Industry PSI rule of thumb (credit scoring): < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant.
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25


#: ID-like categorical columns (:func:`id_like`): mostly distinct values, or many categories of few rows.
ID_DISTINCT_SHARE, ID_MIN_CATEGORIES, ID_ROWS_PER_CATEGORY = 0.5, 1000, 50
#: PSI is *saturated* at this share of its ceiling (:func:`psi_ceiling`).
SATURATION = 0.9


def id_like(cp) -> bool:
    """Whether a reference column is ID-like: a categorical whose PSI measures churn, not drift.

    A categorical column of the reference with ``n`` non-null values and ``k`` categories with
    their own counter is ID-like when

    * ``k >= 20`` and ``k > 0.5 n`` (mostly distinct values: request ids, emails), or
    * ``k >= 1000`` and ``n < 50 k`` (many categories of a few rows each: aircraft tail numbers,
      ~4,000 in 100k flights; under no drift alone PSI then exceeds about k / n), or
    * more than half of the non-null values are beyond the sketch's category cap (``other``).

    Per-category PSI of such a column adds thousands of tiny terms that change whenever the
    population of ids does, so the default rules leave it out of the drift rule (its missingness
    is still watched) and reports mark it.
    """
    if cp.kind != "categorical" or cp.categorical is None:
        return False
    c = cp.categorical
    n = c.count - c.null_count
    k = int(c.counts.size)
    if n <= 0:
        return False
    return (k >= 20 and k > ID_DISTINCT_SHARE * n) or (k >= ID_MIN_CATEGORIES and n < ID_ROWS_PER_CATEGORY * k) \
        or c.other_count > ID_DISTINCT_SHARE * n


def psi_ceiling(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """The PSI of reference counts ``p`` if every current value fell in the current's fullest bin.

    PSI is convex in the current's shares, so it is largest when they are all in one bin; with
    ``eps`` smoothing that value is finite (about 8.3 for deciles and eps = 1e-4). A PSI near it is
    *saturated*: it no longer grows with the size of the shift.
    """
    one = np.zeros_like(q, dtype=np.float64)
    one[int(np.argmax(q))] = 1.0
    return float(psi_contributions(p, one, eps=eps).sum())


def psi_status(value: float) -> str:
    """The PSI rule of thumb: ``stable``, ``moderate``, ``significant``; ``no data`` when PSI is NaN
    (a side has no non-missing values: nothing was compared)."""
    if value != value:
        return "no data"
    if value > PSI_SIGNIFICANT:
        return "significant"
    return "moderate" if value >= PSI_MODERATE else "stable"


@dataclass(frozen=True)
class ColumnDrift:
    """Drift signals of one column, reference vs current.

    ``contributions`` are the largest per-bin PSI terms, largest first (``top_bin`` is the first
    one's label); ``pvalue`` is :func:`~fastdrift.metrics.psi_pvalue` of the PSI on the same bins;
    ``n_ref`` / ``n_cur`` count the non-missing values.  Metrics are NaN when a side is empty
    or when they were not asked for (see :func:`column_drift`).  ``id_like`` marks an ID-like
    reference column (:func:`id_like`); ``saturated`` a PSI of at least ``SATURATION`` (90%) of its
    ceiling (:func:`psi_ceiling`), so at least the value shown.
    """

    column: str
    kind: str
    psi: float
    js_distance: float
    hellinger: float
    missing_ref: float
    missing_cur: float
    mean_ref: Optional[float] = None
    mean_cur: Optional[float] = None
    top_bin: str = ""
    top_bin_contribution: float = 0.0
    status: str = field(default="")
    total_variation: float = math.nan
    pvalue: float = math.nan
    n_ref: int = 0
    n_cur: int = 0
    contributions: Tuple[BinContribution, ...] = ()
    id_like: bool = False      # the reference column is ID-like (:func:`id_like`)
    saturated: bool = False    # PSI >= SATURATION * psi_ceiling: it cannot show a larger shift

    @property
    def missing_delta(self) -> float:
        return self.missing_cur - self.missing_ref

    def metric(self, name: str) -> float:
        """The value of metric ``name``: ``"psi"``, ``"js"``, ``"hellinger"`` or ``"tv"``."""
        return {"psi": self.psi, "js": self.js_distance, "hellinger": self.hellinger,
                "tv": self.total_variation}[name]


def _rate(part: int, total: int) -> float:
    return part / total if total else math.nan


def bin_label(edges, i: int) -> str:
    """The label of bin ``i`` of a histogram with ``edges`` (open ends ``-inf`` / ``+inf``):
    ``[lo, hi)`` with 6 significant digits, the one label format of numeric bins."""
    lo = "-inf" if i == 0 else f"{float(edges[i - 1]):.6g}"
    hi = "+inf" if i == len(edges) else f"{float(edges[i]):.6g}"
    return f"[{lo}, {hi})"


@functools.lru_cache(maxsize=1024)
def _bin_labels(key: bytes) -> tuple:
    """Every bin's :func:`bin_label` for the float64 edges whose bytes are ``key`` (bytes, so that
    -0.0 and 0.0 stay apart): a window's segments and columns share few edge sets."""
    edges = np.frombuffer(key, np.float64).tolist()
    return tuple(bin_label(edges, i) for i in range(len(edges) + 1))


ALL_METRICS = ("psi", "js", "hellinger", "tv")


def column_drift(ref, cur, *, eps: float = 1e-4, top: Optional[int] = 10,
                 metrics=ALL_METRICS) -> ColumnDrift:
    """The drift signals of one column: reference ``ref`` vs current ``cur`` (ColumnProfiles).

    Bins are the reference's (deciles by default; categories, plus an ``<other>`` bin).
    Missing values (null, NaN) are excluded from the distributions and reported as rates.
    ``top`` bounds the per-bin contributions kept (None keeps every bin).  PSI, its terms and
    its p-value are always computed; JS distance (``"js"``), Hellinger and total variation
    (``"tv"``) only when named in ``metrics`` (a monitor window needs one metric per column).
    """
    if cur.kind != ref.kind:
        raise IncompatibleSketchError(f"column {ref.name!r} is {ref.kind} in the reference and {cur.kind} now")
    numeric = ref.kind == "numeric"
    a, b = (ref.histogram, cur.histogram) if numeric else (ref.categorical, cur.categorical)
    if numeric and (a.edges is b.edges or np.array_equal(a.edges, b.edges)):
        p, q, labels = a.counts.astype(np.float64), b.counts.astype(np.float64), None  # align's check, cheaper
    else:
        p, q, labels = align(a, b)
    n_ref, n_cur = int(p.sum()), int(q.sum())
    v = js = h = tv = pvalue = math.nan
    contribs = ()
    saturated = False
    if n_ref > 0 and n_cur > 0:
        terms = psi_contributions(p, q, eps=eps)
        v = float(terms.sum())
        saturated = v > PSI_SIGNIFICANT and v >= SATURATION * psi_ceiling(p, q, eps)
        js = js_distance(p, q) if "js" in metrics else math.nan
        h = hellinger(p, q) if "hellinger" in metrics else math.nan
        tv = total_variation(p, q) if "tv" in metrics else math.nan
        pvalue = psi_pvalue(v, n_ref, n_cur, int(np.count_nonzero(p + q)))
        ps, qs = p / n_ref, q / n_cur
        names = _bin_labels(np.ascontiguousarray(a.edges, np.float64).tobytes()) if numeric else None
        contribs = tuple(
            BinContribution(names[int(i)] if numeric else str(labels[int(i)]),
                            float(ps[i]), float(qs[i]), float(terms[i]))
            for i in np.argsort(-terms, kind="stable")[:top])
    return _drift(ref, cur, v, js, h, tv, pvalue, n_ref, n_cur, contribs, saturated)


def _drift(ref, cur, v, js, h, tv, pvalue, n_ref, n_cur, contribs, saturated, refs=None,
           missing_cur=None) -> ColumnDrift:
    """The ColumnDrift of computed values; ``refs``: a dict caching each reference column's own
    values by ``id`` (a window's segments share reference columns) while the caller holds them;
    ``missing_cur``: the current column's missing share when the caller has it."""
    numeric = ref.kind == "numeric"
    side = refs.get(id(ref)) if refs is not None else None
    if side is None:
        side = (float(ref.moments.mean) if numeric else None, _rate(ref.missing_count, ref.count), id_like(ref))
        if refs is not None:
            refs[id(ref)] = side
    mean_cur = float(cur.moments.mean) if numeric else None
    top_bin, top_c = (contribs[0].label, contribs[0].contribution) if contribs else ("", 0.0)
    return ColumnDrift(ref.name, ref.kind, float(v), float(js), float(h),
                       side[1], _rate(cur.missing_count, cur.count) if missing_cur is None else missing_cur,
                       side[0], mean_cur, top_bin, top_c, psi_status(v), float(tv), float(pvalue),
                       n_ref, n_cur, contribs, side[2], saturated)


def columns_drift(items, *, eps: float = 1e-4, top: Optional[int] = 10) -> List[ColumnDrift]:
    """:func:`column_drift` of each ``(ref, cur, metrics)`` in ``items``, in order, the same values.

    Numeric columns on the reference's edges are computed together, one row per column of a
    stack of their counts (the same elementwise operations, each column's PSI summed on its own
    row); other columns go through :func:`column_drift` one at a time.
    """
    items = list(items)
    out: List[Optional[ColumnDrift]] = [None] * len(items)
    stacks: dict = {}
    refs: dict = {}  # reference column values by id (the items hold the columns meanwhile)
    labels: dict = {}  # bin labels by id of the edges array
    same: dict = {}  # (id, id) of two edges arrays -> equal (a segment's reference has its own copy)
    for i, (ref, cur, metrics) in enumerate(items):
        if ref.kind == "numeric" and cur.kind == "numeric":
            ea, eb = ref.histogram.edges, cur.histogram.edges
            key = (id(ea), id(eb))
            eq = same.get(key)
            if eq is None:
                eq = same[key] = ea is eb or (ea.shape == eb.shape and bool((ea == eb).all()))  # array_equal
            if eq:
                stacks.setdefault(ea.size + 1, []).append(i)
                continue
        out[i] = column_drift(ref, cur, eps=eps, top=top, metrics=metrics)
    for idx in stacks.values():
        p = np.stack([items[i][0].histogram.counts for i in idx]).astype(np.float64)
        q = np.stack([items[i][1].histogram.counts for i in idx]).astype(np.float64)
        tot_p, tot_q = p.sum(axis=1), q.sum(axis=1)  # sums of whole counts: exact in any order
        live = (tot_p > 0) & (tot_q > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ps, qs = p / tot_p[:, None], q / tot_q[:, None]
        pe, qe = (np.where(ps == 0, eps, ps), np.where(qs == 0, eps, qs)) if eps > 0 else (ps, qs)
        terms = np.zeros_like(p)
        terms[live] = psi_terms(pe[live], qe[live])
        order = np.argsort(-terms, axis=1, kind="stable")[:, :top].tolist()
        bins = np.count_nonzero(p + q, axis=1).tolist()
        for j, i in enumerate(idx):
            ref, cur, metrics = items[i]
            n_ref, n_cur = int(tot_p[j]), int(tot_q[j])
            v = js = h = tv = pvalue = math.nan
            contribs = ()
            saturated = False
            if live[j]:
                pj, qj, tj = p[j], q[j], terms[j]
                v = float(tj.sum())
                saturated = v > PSI_SIGNIFICANT and v >= SATURATION * psi_ceiling(pj, qj, eps)
                js = js_distance(pj, qj) if "js" in metrics else math.nan
                h = hellinger(pj, qj) if "hellinger" in metrics else math.nan
                tv = total_variation(pj, qj) if "tv" in metrics else math.nan
                pvalue = psi_pvalue(v, n_ref, n_cur, bins[j])
                edges = ref.histogram.edges
                names = labels.get(id(edges))
                if names is None:
                    names = labels[id(edges)] = _bin_labels(np.ascontiguousarray(edges, np.float64).tobytes())
                pl, ql, tl = ps[j].tolist(), qs[j].tolist(), tj.tolist()
                contribs = tuple(BinContribution(names[k], pl[k], ql[k], tl[k]) for k in order[j])
            # a numeric column's count: its binned values and its missing ones (n_cur is exact below 2**53)
            miss = cur.missing_count if n_cur < 1 << 53 else None
            out[i] = _drift(ref, cur, v, js, h, tv, pvalue, n_ref, n_cur, contribs, saturated, refs,
                            None if miss is None else _rate(miss, n_cur + miss))
    return out  # type: ignore[return-value]


def compare_profiles(reference, current, *, eps: float = 1e-4) -> List[ColumnDrift]:
    """Drift of every column present in both profiles (:func:`column_drift`), sorted by PSI (worst first).

    PSI uses the reference's bins (deciles by default) with ``eps`` smoothing;
    missingness (null, and NaN for numeric columns) is reported separately and
    excluded from the distribution metrics.
    """
    rows = [column_drift(ref, current.columns[name], eps=eps)
            for name, ref in reference.columns.items() if name in current.columns]
    rows.sort(key=lambda r: (-(r.psi if math.isfinite(r.psi) else math.inf), r.column))
    return rows


def format_table(rows: List[ColumnDrift]) -> str:
    """A plain-text table of :func:`compare_profiles` output."""
    head = ["column", "kind", "PSI", "status", "JS dist", "Hellinger", "missing ref", "missing cur",
            "mean ref", "mean cur", "top PSI bin"]
    body = []
    for r in rows:
        fm = (lambda x: "" if x is None else f"{x:.4g}")
        body.append([r.column, r.kind, f"{r.psi:.4f}", r.status, f"{r.js_distance:.4f}",
                     f"{r.hellinger:.4f}", f"{r.missing_ref:.2%}", f"{r.missing_cur:.2%}",
                     fm(r.mean_ref), fm(r.mean_cur), f"{r.top_bin} ({r.top_bin_contribution:.3f})"])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(head), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)
