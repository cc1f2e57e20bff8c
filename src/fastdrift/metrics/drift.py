"""Per-column drift between two profiles: the table the demo (and ``compare``) prints."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ..errors import IncompatibleSketchError
from .divergence import hellinger, js_distance, psi, psi_contributions, align

__all__ = ["ColumnDrift", "compare_profiles", "psi_status", "format_table"]

#: Industry PSI rule of thumb (credit scoring): < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant.
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25


def psi_status(value: float) -> str:
    if not math.isfinite(value) or value > PSI_SIGNIFICANT:
        return "significant"
    return "moderate" if value >= PSI_MODERATE else "stable"


@dataclass(frozen=True)
class ColumnDrift:
    """Drift signals of one column, reference vs current."""

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

    @property
    def missing_delta(self) -> float:
        return self.missing_cur - self.missing_ref


def _rate(part: int, total: int) -> float:
    return part / total if total else math.nan


def _bin_label(cp, i: int) -> str:
    if cp.kind == "numeric":
        e = cp.histogram.edges
        lo = "-inf" if i == 0 else f"{e[i - 1]:.4g}"
        hi = "+inf" if i == len(e) else f"{e[i]:.4g}"
        return f"[{lo}, {hi})"
    return ""


def compare_profiles(reference, current, *, eps: float = 1e-4) -> List[ColumnDrift]:
    """Drift of every column present in both profiles, sorted by PSI (worst first).

    PSI uses the reference's bins (deciles by default) with ``eps`` smoothing;
    missingness (null, and NaN for numeric columns) is reported separately and
    excluded from the distribution metrics.
    """
    rows = []
    for name, ref in reference.columns.items():
        cur = current.columns.get(name)
        if cur is None:
            continue
        if cur.kind != ref.kind:
            raise IncompatibleSketchError(f"column {name!r} is {ref.kind} in the reference and {cur.kind} now")
        a = ref.histogram if ref.kind == "numeric" else ref.categorical
        b = cur.histogram if cur.kind == "numeric" else cur.categorical
        p, q, labels = align(a, b)
        if p.sum() == 0 or q.sum() == 0:
            v = js = h = math.nan
            top, top_c = "", 0.0
        else:
            v = psi(p, q, eps=eps)
            js = js_distance(p, q)
            h = hellinger(p, q)
            contrib = psi_contributions(p, q, eps=eps)
            i = int(np.argmax(contrib))
            top = _bin_label(ref, i) if ref.kind == "numeric" else str(labels[i])
            top_c = float(contrib[i])
        mean_ref = ref.moments.mean if ref.kind == "numeric" else None
        mean_cur = cur.moments.mean if cur.kind == "numeric" else None
        rows.append(ColumnDrift(name, ref.kind, v, js, h,
                                _rate(ref.missing_count, ref.count), _rate(cur.missing_count, cur.count),
                                mean_ref, mean_cur, top, top_c, psi_status(v)))
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
