"""The HTML report of a :class:`~fastdrift.report.compare.Comparison`: one self-contained file.

No network, no CDN, no script: styles are inline and every chart is an SVG
generated here, so the file opens the same way on an air-gapped laptop, in a
CI artifact viewer and attached to a ticket.  Sections: summary (features
drifted, alerts, worst offenders), PSI by feature, the drift table, per
feature the overlaid reference/current distribution and the per-bin PSI
contributions, quantile shifts, missingness, schema changes, the model's
performance when the profiles carry labels (metric table, ROC curve, reliability
diagram), and the alerts with their evidence.
"""
from __future__ import annotations

import datetime as _dt
import html
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from ..metrics import align, bin_label, psi_contributions
from ..metrics.drift import PSI_MODERATE
from .compare import NOTES, QUANTILES, Comparison, notes, performance_rows, segment_rows, top_alerts

__all__ = ["render"]

REF_COLOR, CUR_COLOR = "#4e79a7", "#f28e2b"
SEV_COLOR = {"critical": "#c0392b", "warning": "#d68910", "": "#2e7d32"}
STATUS_COLOR = {"significant": "#c0392b", "moderate": "#d68910", "stable": "#2e7d32", "no data": "#777"}
NOTE_COLOR, ID_LIKE_COLOR = "#5d6d7e", "#95a5a6"
_MAX_CATEGORIES = 20  # categories drawn per chart; the rest are summed into one bar

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1.5em}
h1{font-size:1.6em;margin:.2em 0} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin:1.2em 0 .3em}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8em 1.2em;min-width:12em}
.card .big{font-size:1.8em;font-weight:600}
table{border-collapse:collapse;background:#fff;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f0f0f0} td.l,th.l{text-align:left}
.badge{display:inline-block;padding:.1em .5em;border-radius:3px;color:#fff;font-size:.85em}
.feature{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}
.charts{display:flex;flex-wrap:wrap;gap:1em}
.alert{background:#fff;border-left:6px solid;padding:.5em 1em;margin:1em 0}
svg text{font-family:system-ui,sans-serif}
.muted{color:#666;font-size:.9em}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _f(x, fmt=".4g") -> str:
    if x is None:
        return ""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if x != x else ("+inf" if x > 0 else "-inf")
    return format(x, fmt)


def _num(x, sign: bool = False) -> str:
    """A number for people: integers and magnitudes >= 1000 with thousands separators and no
    decimals (78,370), others to 4 significant digits (7.909, 0.5002); scientific notation only
    below 1e-4 or at 1e15 and above."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x)
    if hasattr(x, "item"):  # numpy scalars
        x = x.item()
    if isinstance(x, int):
        return f"{x:+,}" if sign else f"{x:,}"
    if not isinstance(x, float):
        return str(x)
    if not math.isfinite(x):
        return _f(x)
    a, plus = abs(x), "+" if sign else ""
    if a == 0:
        return f"{plus}0"
    if a < 1e-4 or a >= 1e15:
        return format(x, plus + ".3g")
    if a >= 999.95:
        return format(x, plus + ",.0f")
    return format(x, plus + ".4g")


def _pct(x) -> str:
    return "" if x is None or x != x else f"{x:.2%}"


def _badge(text: str, color: str) -> str:
    return f'<span class="badge" style="background:{color}">{_e(text)}</span>'


def _nice_max(v: float) -> float:
    if not (v > 0) or not math.isfinite(v):
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= v:
            return m * mag
    return 10 * mag


# -- charts --------------------------------------------------------------------------------------------

def _dist_svg(kind: str, labels: Sequence[str], p: np.ndarray, q: np.ndarray, title: str, xlabel: str) -> str:
    """Overlaid bars: reference (wide, blue) under current (narrow, orange), shares in %."""
    W, H, L, R, T, B = 660, 330, 62, 12, 46, 96  # legend above the plot area, never over a bar
    n = len(labels)
    pw, ph = W - L - R, H - T - B
    top = _nice_max(float(max(p.max(initial=0), q.max(initial=0))) * 100)
    slot = pw / max(n, 1)
    out = [f'<svg class="chart" data-chart="distribution" data-kind="{_e(kind)}" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg">',
           f'<title>{_e(title)}</title>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">{_e(title)}</text>']
    for i in range(6):  # y grid and ticks
        v = top * i / 5
        y = T + ph - ph * i / 5
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{v:g}</text>')
    for i in range(n):
        x = L + i * slot
        hp, hq = ph * p[i] * 100 / top, ph * q[i] * 100 / top
        out.append(f'<rect x="{x + slot * 0.08:.1f}" y="{T + ph - hp:.1f}" width="{slot * 0.84:.1f}" '
                   f'height="{hp:.1f}" fill="{REF_COLOR}" fill-opacity="0.55"><title>{_e(labels[i])}: reference '
                   f'{p[i]:.2%}</title></rect>')
        out.append(f'<rect x="{x + slot * 0.3:.1f}" y="{T + ph - hq:.1f}" width="{slot * 0.4:.1f}" '
                   f'height="{hq:.1f}" fill="{CUR_COLOR}" fill-opacity="0.9"><title>{_e(labels[i])}: current '
                   f'{q[i]:.2%}</title></rect>')
        lx, ly = x + slot / 2, T + ph + 10
        lab = labels[i] if len(labels[i]) <= 22 else labels[i][:21] + "…"
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" text-anchor="end" '
                   f'transform="rotate(-35 {lx:.1f} {ly:.1f})">{_e(lab)}</text>')
    out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="#333"/>')
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{T + ph}" y2="{T + ph}" stroke="#333"/>')
    out.append(f'<text x="16" y="{T + ph / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 16 {T + ph / 2})">share of non-missing rows (%)</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 6}" font-size="12" text-anchor="middle">{_e(xlabel)}</text>')
    lx = W - R - 190
    out.append(f'<rect x="{lx}" y="26" width="12" height="12" fill="{REF_COLOR}" fill-opacity="0.55"/>'
               f'<text x="{lx + 16}" y="36" font-size="11">reference</text>'
               f'<rect x="{lx + 90}" y="26" width="12" height="12" fill="{CUR_COLOR}"/>'
               f'<text x="{lx + 106}" y="36" font-size="11">current</text>')
    out.append("</svg>")
    return "".join(out)


def _hbar_svg(chart: str, labels: Sequence[str], values: Sequence[float], colors: Sequence[str], title: str,
              xlabel: str, marks: Sequence[Tuple[float, str]] = (), clip: Optional[float] = None,
              texts: Optional[Sequence[str]] = None) -> str:
    """Horizontal bars, one per label, in the order given (callers sort by value).

    ``clip``: when a value exceeds it, the axis ends at ``clip`` and longer bars run to the edge
    with a break mark and their value printed, so small marks stay readable next to a huge value.
    ``texts``: the value printed after each bar (default: the value to 3 significant digits).
    """
    n = max(len(labels), 1)
    W, L, R, T, B, row = 660, 170, 60, 56, 44, 22
    pw = W - L - R
    finite = [v for v in values if math.isfinite(v)]
    top = _nice_max(max(finite + [m for m, _ in marks] + [1e-12]))
    clipped = clip is not None and top > clip
    if clipped:
        top, B = clip, B + 14
    H = T + B + row * n
    out = [f'<svg class="chart" data-chart="{_e(chart)}" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'role="img" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">{_e(title)}</text>']
    for i in range(6):
        v = top * i / 5
        x = L + pw * i / 5
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{H - B}" stroke="#e5e5e5"/>'
                   f'<text x="{x:.1f}" y="{H - B + 14}" text-anchor="middle" font-size="11">{v:g}</text>')
    for i, (lab, v, c) in enumerate(zip(labels, values, colors)):
        y = T + i * row
        w = pw * min(v, top) / top if math.isfinite(v) else pw
        short = lab if len(lab) <= 26 else lab[:25] + "…"
        text = texts[i] if texts is not None else _f(v, ".3g")
        out.append(f'<text x="{L - 6}" y="{y + row * 0.65:.1f}" text-anchor="end" font-size="11">{_e(short)}</text>'
                   f'<rect x="{L}" y="{y + 3}" width="{max(w, 0):.1f}" height="{row - 6}" fill="{c}">'
                   f'<title>{_e(lab)}: {_f(v)}</title></rect>'
                   f'<text x="{L + max(w, 0) + 4:.1f}" y="{y + row * 0.65:.1f}" font-size="10">{_e(text)}</text>')
        if clipped and v > top:  # a break mark: the bar goes on beyond the axis
            bx = L + pw - 18
            out.append(f'<path class="axis-break" d="M{bx:.1f} {y + row - 2} l6 {-(row - 4)} M{bx + 5:.1f} {y + row - 2} '
                       f'l6 {-(row - 4)}" stroke="#fff" stroke-width="2.5"/>')
    for k, (m, name) in enumerate(marks):
        x = L + pw * m / top
        ty = T - 6 - 11 * (k % 2)  # staggered: close marks (0.1, 0.25 on a wide axis) stay legible
        right = x + 100 > W  # a label that would run off the chart ends at its line instead
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{H - B}" stroke="#555" '
                   f'stroke-dasharray="4 3"/><text x="{x - 3 if right else x + 3:.1f}" y="{ty}" font-size="10" '
                   f'fill="#555"{" text-anchor=" + chr(34) + "end" + chr(34) if right else ""}>{_e(name)} {m:g}</text>')
    out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="#333"/>')
    if clipped:
        out.append(f'<text x="{L + pw / 2}" y="{H - 8}" font-size="11" text-anchor="middle" fill="#555">axis '
                   f'clipped at {clip:g}: a broken bar is longer (its value is printed)</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 8 - (14 if clipped else 0)}" font-size="12" '
               f'text-anchor="middle">{_e(xlabel)}</text></svg>')
    return "".join(out)


_CURVE_POINTS = 400  # points drawn per curve: a fine-binned ROC curve has thousands


def _thin(x: np.ndarray, y: np.ndarray, n: int = _CURVE_POINTS):
    """At most ``n`` points of a curve, evenly spaced along its length (its ends kept)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) <= n:
        return x, y
    d = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    idx = np.unique(np.searchsorted(d, np.linspace(0.0, d[-1], n)).clip(0, len(x) - 1))
    return x[idx], y[idx]


def _unit_svg(chart: str, title: str, xlabel: str, ylabel: str, series, diagonal: str, note: str = "") -> str:
    """A square plot of [0, 1] x [0, 1]: a dashed diagonal (named ``diagonal``) and one polyline per
    series ``(name, color, x, y, dots)``; ``dots`` marks each point (the reliability diagram's bins)."""
    W, H, L, R, T, B = 440, 440, 56, 16, 58, 52
    pw, ph = W - L - R, H - T - B
    X = lambda v: L + pw * v
    Y = lambda v: T + ph - ph * v
    out = [f'<svg class="chart" data-chart="{_e(chart)}" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'role="img" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">{_e(title)}</text>']
    for i in range(6):
        v = i / 5
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#e5e5e5"/>'
                   f'<line x1="{X(v):.1f}" x2="{X(v):.1f}" y1="{T}" y2="{T + ph}" stroke="#e5e5e5"/>'
                   f'<text x="{L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:g}</text>'
                   f'<text x="{X(v):.1f}" y="{T + ph + 15}" text-anchor="middle" font-size="11">{v:g}</text>')
    out.append(f'<line x1="{X(0)}" y1="{Y(0)}" x2="{X(1)}" y2="{Y(1)}" stroke="#999" stroke-dasharray="4 3">'
               f'<title>{_e(diagonal)}</title></line>')
    for k, (name, color, x, y, dots) in enumerate(series):
        x, y = _thin(np.clip(x, 0, 1), np.clip(y, 0, 1))
        if len(x):
            pts = " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in zip(x, y))
            out.append(f'<polyline class="curve" data-series="{_e(name)}" points="{pts}" fill="none" '
                       f'stroke="{color}" stroke-width="2.5"><title>{_e(name)}</title></polyline>')
            if dots:
                out.extend(f'<circle cx="{X(a):.1f}" cy="{Y(b):.1f}" r="3.5" fill="{color}"><title>{_e(name)}: '
                           f'{a:.3g} → {b:.3g}</title></circle>' for a, b in zip(x, y))
        ly = 30 + 14 * k  # legend above the plot area, never over a curve
        out.append(f'<rect x="{L}" y="{ly - 9}" width="12" height="4" fill="{color}"/>'
                   f'<text x="{L + 16}" y="{ly}" font-size="11">{_e(name)}</text>')
    out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="#333"/>'
               f'<line x1="{L}" x2="{W - R}" y1="{T + ph}" y2="{T + ph}" stroke="#333"/>')
    out.append(f'<text x="16" y="{T + ph / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 16 {T + ph / 2})">{_e(ylabel)}</text>'
               f'<text x="{L + pw / 2}" y="{H - 18}" font-size="12" text-anchor="middle">{_e(xlabel)}</text>')
    if note:
        out.append(f'<text x="{L + pw / 2}" y="{H - 4}" font-size="10" text-anchor="middle" fill="#555">'
                   f'{_e(note)}</text>')
    out.append("</svg>")
    return "".join(out)


# -- sections --------------------------------------------------------------------------------------------

def _psi(r, fmt=".4f") -> str:
    """PSI of a drift row; ``≥`` before a saturated one (the shift is at least that large)."""
    return ("≥" if r.saturated else "") + _f(r.psi, fmt)


def _sat_title(r) -> str:
    return " title='saturated: PSI at its ceiling for these bins'" if r.saturated else ""


def _legend(c: Comparison) -> str:
    used = [n for n in NOTES if any(n in notes(r) for r in c.rows)]
    return "".join(f"<p class='muted'>{_badge(n, NOTE_COLOR)} {_e(NOTES[n].split(': ', 1)[-1])}</p>"
                   for n in used)


def _distribution(c: Comparison, name: str):
    """(labels, reference shares, current shares, contributions) over the reference's bins."""
    rc, cc = c.reference.columns[name], c.current.columns[name]
    if rc.kind == "numeric":
        p = rc.histogram.counts.astype(float)
        q = cc.histogram.counts.astype(float)
        labels = [bin_label(rc.histogram.edges, i) for i in range(len(p))]
    else:
        p, q, labs = align(rc.categorical, cc.categorical)
        p, q = p.astype(float), q.astype(float)
        labels = [str(x) for x in labs]
    if p.sum() == 0 or q.sum() == 0:
        return None
    contrib = psi_contributions(p, q, eps=1e-4)
    ps, qs = p / p.sum(), q / q.sum()
    if rc.kind != "numeric" and len(labels) > _MAX_CATEGORIES:
        order = np.argsort(-np.maximum(ps, qs), kind="stable")
        keep, rest = order[:_MAX_CATEGORIES - 1], order[_MAX_CATEGORIES - 1:]
        labels = [labels[i] for i in keep] + [f"({len(rest)} more categories)"]
        ps = np.append(ps[keep], ps[rest].sum())
        qs = np.append(qs[keep], qs[rest].sum())
        contrib_labels = [labels[i] for i in range(len(keep))]
        contrib = contrib[keep]
        return labels, ps, qs, contrib_labels, contrib
    return labels, ps, qs, labels, contrib


def _summary(c: Comparison) -> str:
    firing = top_alerts(c.alerts)
    crit = sum(a.severity == "critical" for a in firing)
    warn = sum(a.severity == "warning" for a in firing)
    status = {0: ("nothing fired", SEV_COLOR[""]), 1: ("warning", SEV_COLOR["warning"]),
              2: ("critical", SEV_COLOR["critical"])}[c.exit_status]
    drifted = set(c.drifted)
    worst = [r for r in c.rows if r.column in drifted][:5]
    cards = [
        f'<div class="card"><div class="muted">gate (exit status)</div><div class="big">{c.exit_status}</div>'
        f'{_badge(status[0], status[1])}</div>',
        f'<div class="card"><div class="muted">features drifted (PSI ≥ 0.1) or alerting</div>'
        f'<div class="big" id="drifted-count">{len(c.drifted)} / {len(c.rows)}</div></div>',
        f'<div class="card"><div class="muted">alert rules firing</div><div class="big">{len(firing)}</div>'
        f'{crit} critical, {warn} warning</div>',
    ]
    if c.segments:
        bad = sum(s.exit_status > 0 for s in c.segments.values())
        cards.append(f'<div class="card"><div class="muted">segments alerting</div><div class="big" '
                     f'id="segments-alerting">{bad} / {len(c.segments)}</div><a href="#segments">by segment</a></div>')
    if c.performance is not None:
        cards.append(_performance_card(c.performance))
    if c.report.latency is not None:
        lat = c.report.latency
        cards.append(f'<div class="card"><div class="muted">latency p99 ({_e(c.config.latency)})</div>'
                     f'<div class="big">{_num(lat.p99)} ms</div>p50 {_num(lat.p50)} ms, p95 {_num(lat.p95)} ms</div>')
    items = "".join(
        f"<li><a href='#f-{_e(r.column)}'>{_e(r.column)}</a>: PSI {_e(_psi(r, '.3f'))} "
        f"{_badge(r.status, STATUS_COLOR[r.status])}"
        + (f" {_badge(r.severity + ' alert', SEV_COLOR[r.severity])}" if r.severity else "")
        + (f" — top bin {_e(r.top_bin)} ({r.top_bin_contribution:.3f})" if r.top_bin
           else " — no non-missing values on one side") + "</li>" for r in worst)
    return (f'<section id="summary"><h2>Summary</h2><div class="cards">{"".join(cards)}</div>'
            f'<h3>Worst offenders</h3><ul>{items or _no_offenders(c)}</ul></section>')


def _performance_card(p) -> str:
    r, cur = p.reference.realized.get("roc_auc", math.nan), p.current.realized.get("roc_auc", math.nan)
    if p.current.labelled:
        big, sub = f"{_num(r)} → {_num(cur)}", f"change {_num(cur - r, sign=True)}"
    else:
        est = p.current.estimated.get("roc_auc", math.nan)
        big = f"{_num(r)} → {_num(est) if est == est else '?'}"
        sub = "current: no labels, estimated"
    return (f'<div class="card" id="performance-card"><div class="muted">ROC AUC ({_e(p.prediction)} vs '
            f'{_e(p.label)})</div><div class="big">{big}</div>{_e(sub)}</div>')


def _no_offenders(c: Comparison) -> str:
    if c.current.rows == 0:
        return "<li>none: the current data has no rows, so nothing was compared</li>"
    return "<li>none: every feature is stable</li>"


def _drift_table(c: Comparison) -> str:
    rows = []
    for r in c.rows:
        rows.append(
            f"<tr><td class='l'><a href='#f-{_e(r.column)}'>{_e(r.column)}</a>"
            f"{' (prediction)' if r.role == 'prediction' else ''}</td><td class='l'>{_e(r.kind)}</td>"
            f"<td{_sat_title(r)}>{_e(_psi(r))}</td><td>{_f(r.pvalue, '.2g')}</td>"
            f"<td class='l'>{_badge(r.status, STATUS_COLOR[r.status])}</td>"
            f"<td class='l'>{_badge(r.severity, SEV_COLOR[r.severity]) if r.severity else '–'}</td>"
            f"<td>{_f(r.js_distance, '.4f')}</td><td>{_f(r.hellinger, '.4f')}</td>"
            f"<td>{_num(r.mean_ref)}</td><td>{_num(r.mean_cur)}</td>"
            f"<td class='l'>{_e(r.top_bin) + f' ({r.top_bin_contribution:.3f})' if r.top_bin else '–'}</td>"
            f"<td class='l'>{' '.join(_badge(n, NOTE_COLOR) for n in notes(r))}</td></tr>")
    return ("<section id='drift-table'><h2>Drift by feature</h2><p class='muted'>PSI on the reference's bins "
            "(deciles for numeric columns, categories plus &lt;other&gt;), smoothing 1e-4; p-value of the "
            "G-test on the same bins; sorted by alert severity, then PSI.</p><table><tr><th class='l'>column</th>"
            "<th class='l'>kind</th><th>PSI</th><th>p-value</th><th class='l'>status</th><th class='l'>alert</th>"
            "<th>JS distance</th><th>Hellinger</th><th>mean ref</th><th>mean cur</th>"
            f"<th class='l'>top PSI bin (contribution)</th><th class='l'>note</th></tr>{''.join(rows)}</table>"
            f"{_legend(c)}</section>")


def _features(c: Comparison) -> str:
    out = ["<section id='features'><h2>Distributions and PSI contributions</h2>"]
    for r in c.rows:
        d = _distribution(c, r.column)
        out.append(f"<div class='feature' id='f-{_e(r.column)}'><h3>{_e(r.column)} "
                   f"{_badge(r.status, STATUS_COLOR[r.status])} "
                   f"{' '.join(_badge(n, NOTE_COLOR) for n in notes(r))} <span class='muted'>{_e(r.kind)}, PSI "
                   f"{_e(_psi(r))}, missing {_pct(r.missing_ref)} → {_pct(r.missing_cur)}</span></h3>")
        if d is None:
            out.append("<p>no non-missing values on one side: nothing to compare</p></div>")
            continue
        labels, ps, qs, clabels, contrib = d
        xl = (f"{r.column} (reference decile bins, in the column's units)" if r.kind == "numeric"
              else f"{r.column} (category)")
        order = np.argsort(-contrib, kind="stable")[:15]
        out.append("<div class='charts'>")
        out.append(_dist_svg(r.kind, labels, ps, qs, f"{r.column}: reference vs current", xl))
        out.append(_hbar_svg("contributions", [clabels[i] for i in order], [float(contrib[i]) for i in order],
                             [CUR_COLOR if qs[i] > ps[i] else REF_COLOR for i in order],
                             f"{r.column}: PSI contribution by bin (largest first)",
                             "PSI term (q−p)·ln(q/p), unitless; orange: more current rows"))
        out.append("</div></div>")
    out.append("</section>")
    return "".join(out)


def _quantiles(c: Comparison) -> str:
    if not c.quantiles:
        return ("<section id='quantiles'><h2>Quantile shifts</h2><p>No t-digests in the profiles "
                "(profiled with tdigest=False).</p></section>")
    head = "".join(f"<th>p{100 * q:g}</th>" for q in QUANTILES)
    rows = []
    for q in c.quantiles.values():
        cells = "".join(f"<td>{_num(r)} → {_num(v)}<br><b>{_num(s, sign=True)}</b></td>"
                        for r, v, s in zip(q.ref, q.cur, q.shift))
        rows.append(f"<tr><td class='l'>{_e(q.column)}</td>{cells}<td>{q.ks_statistic:.4f}<br>"
                    f"p={q.ks_pvalue:.2g}</td><td>{_num(q.wasserstein)}</td></tr>")
    return ("<section id='quantiles'><h2>Quantile shifts</h2><p class='muted'>reference → current, and the "
            "shift (current − reference) in the column's units, from the t-digests (rank error ≤ 3e-3); KS D "
            "with its p-value; W1 = Wasserstein-1 distance in the column's units.</p>"
            f"<table><tr><th class='l'>column</th>{head}<th>KS D</th><th>W1</th></tr>{''.join(rows)}</table>"
            "</section>")


_HIGHER_IS_BETTER = {"roc_auc", "average_precision", "accuracy", "precision", "recall", "f1"}
_LOWER_IS_BETTER = {"log_loss", "brier", "ece"}
_METRIC_NAMES = {"roc_auc": "ROC AUC", "average_precision": "average precision (PR AUC)", "log_loss": "log loss",
                 "brier": "Brier score", "ece": "expected calibration error", "positive_rate": "positive rate",
                 "prediction_rate": "prediction rate", "tp": "true positives", "fp": "false positives",
                 "tn": "true negatives", "fn": "false negatives"}


def _perf_cell(m: str, x: float) -> str:
    if x != x:
        return "–"
    return f"{x:,.0f}" if m in ("tp", "fp", "tn", "fn") else f"{x:.4f}"


def _performance(c: Comparison) -> str:
    p = c.performance
    if p is None:
        return ""
    rows = []
    for m, r, cur, d, er, ec in performance_rows(p):
        worse = (m in _HIGHER_IS_BETTER and d < 0) or (m in _LOWER_IS_BETTER and d > 0)
        dtext = "–" if d != d else f"{d:+.4f}" if m not in ("tp", "fp", "tn", "fn") else f"{d:+,.0f}"
        style = f" style='color:{SEV_COLOR['critical']};font-weight:600'" if worse and d == d else ""
        rows.append(f"<tr data-metric='{_e(m)}'><td class='l'>{_e(_METRIC_NAMES.get(m, m))}</td>"
                    f"<td>{_perf_cell(m, r)}</td><td>{_perf_cell(m, cur)}</td><td{style}>{dtext}</td>"
                    f"<td>{_perf_cell(m, er)}</td><td>{_perf_cell(m, ec)}</td></tr>")
    sides = []
    for name, side in (("reference", p.reference), ("current", p.current)):
        bad = ", ".join(f"{_e(k)} {v:,}" for k, v in side.rejected.items() if v)
        sides.append(f"<li>{name}: {side.labelled:,} labelled, {side.unlabelled:,} unlabelled of {side.rows:,} rows"
                     + ("" if side.labelled else " — <b>no labels</b>: estimated performance only")
                     + (f"; rejected rows: {bad}" if bad else "") + "</li>")
    roc, rel = [], []
    for name, color, prof, side in (("reference", REF_COLOR, c.reference, p.reference),
                                    ("current", CUR_COLOR, c.current, p.current)):
        if not side.labelled:
            continue
        sk = prof.performance.sketch
        fpr, tpr = sk.roc_curve()[:2]
        roc.append((f"{name} (AUC {_num(side.realized.get('roc_auc', math.nan))})", color, fpr, tpr, False))
        mean_pred, frac_pos, _ = sk.reliability()  # the non-empty bins
        rel.append((f"{name} (ECE {_num(side.realized.get('ece', math.nan))})", color, mean_pred, frac_pos, True))
    unlabelled = [n for n, side in (("reference", p.reference), ("current", p.current)) if not side.labelled]
    note = f"{' and '.join(unlabelled)}: no labels, nothing to draw" if unlabelled else ""
    charts = ("<div class='charts'>"
              + _unit_svg("roc", f"ROC curve: {p.prediction} against {p.label}", "false positive rate",
                          "true positive rate", roc, "chance (AUC 0.5)", note)
              + _unit_svg("reliability", "Reliability diagram (calibration)", "mean predicted score in the bin",
                          "share of positive labels in the bin", rel, "perfectly calibrated", note)
              + "</div>")
    return ("<section id='performance'><h2>Model performance</h2>"
            f"<p class='muted'>Prediction column <b>{_e(p.prediction)}</b> against the label column "
            f"<b>{_e(p.label)}</b>; threshold {p.threshold:g} for "
            "the confusion counts. <b>Realized</b> from the labels; <b>estimated</b> from the scores alone, assuming "
            "a calibrated model (confidence-based performance estimation): the proxy while labels are late. "
            "Change: current − reference, realized, in red when worse.</p>"
            + (f"<p id='concept-view'>Concept-drift view: <b>{_e(c.report.concept)}</b> (ROC AUC change beside "
               "the features' drift).</p>" if c.report.concept else "")
            + f"<ul>{''.join(sides)}</ul>"
            "<table><tr><th class='l'>metric</th><th>reference</th><th>current</th><th>change</th>"
            f"<th>estimated reference</th><th>estimated current</th></tr>{''.join(rows)}</table>"
            f"{charts}</section>")


def _missingness(c: Comparison) -> str:
    rows = "".join(
        f"<tr><td class='l'>{_e(r.column)}</td><td>{_pct(r.missing_ref)}</td><td>{_pct(r.missing_cur)}</td>"
        f"<td>{'' if r.missing_cur != r.missing_cur else f'{(r.missing_cur - r.missing_ref) * 100:+.2f}'}</td></tr>"
        for r in sorted(c.rows, key=lambda r: -abs(r.missing_cur - r.missing_ref)
                        if r.missing_cur == r.missing_cur else 0))
    return ("<section id='missingness'><h2>Missingness</h2><p class='muted'>share of rows that are null "
            "(or NaN, for numeric columns); change in percentage points.</p><table><tr><th class='l'>column"
            f"</th><th>reference</th><th>current</th><th>change (points)</th></tr>{rows}</table></section>")


def _schema(c: Comparison) -> str:
    ch = c.report.schema_changes
    if not ch:
        body = "<p>No schema changes: the current data has the reference's columns and types.</p>"
    else:
        body = "<table><tr><th class='l'>column</th><th class='l'>change</th><th class='l'>reference</th>" \
               "<th class='l'>current</th></tr>" + "".join(
                   f"<tr><td class='l'>{_e(s.column)}</td><td class='l'>{_e(s.change)}</td>"
                   f"<td class='l'>{_e(s.expected or '–')}</td><td class='l'>{_e(s.observed or '–')}</td></tr>"
                   for s in ch) + "</table>"
    return f"<section id='schema'><h2>Schema changes</h2>{body}</section>"


_PLACEHOLDER = "CONFIGURE ME"
_COLUMN_SIGNALS = ("feature_drift", "prediction_drift", "missingness")


def _about_columns(a) -> bool:
    """Whether an alert's conditions are about columns (its top features crossed a threshold), not a
    symptom (latency, errors, KPIs) whose top features are only the window's context."""
    return any(k.split(":", 1)[0].split("[", 1)[0] in _COLUMN_SIGNALS for k in a.observed)


def _config_warning(firing) -> str:
    """One warning for rules whose owner or runbook is still the default rules' placeholder."""
    bad = [a.rule for a in firing if a.owner.startswith(_PLACEHOLDER) or a.runbook.startswith(_PLACEHOLDER)]
    if not bad:
        return ""
    return ("<div class='alert config-warning' style='border-color:#d68910'><b>Configuration warning:</b> "
            f"{len(bad)} firing rule{'s' if len(bad) > 1 else ''} ({_e(', '.join(bad))}) "
            f"{'have' if len(bad) > 1 else 'has'} no owner or runbook: the built-in default rules hold "
            "placeholders. Set <code>owner</code> and <code>runbook</code> in a rules file "
            "(<code>--rules</code>, or the <code>rules:</code> section of the monitor config) so an alert "
            "reaches someone.</div>")


def _who(text: str, what: str) -> str:
    return "<i>not configured</i>" if text.startswith(_PLACEHOLDER) else (
        f"<b>{_e(text)}</b>" if what == "owner" else _e(text))


def _evidence_columns(c: Comparison, rows) -> list:
    """Role columns first (request id, latency, error, prediction), then the rest by name."""
    cfg = c.config
    first = [x for x in (cfg.request_id, cfg.latency, cfg.error, cfg.prediction) if x]
    keys = {k for row in rows for k in row}
    return [k for k in first if k in keys] + sorted(keys - set(first))


def _evidence(c: Comparison, firing) -> str:
    """The evidence rows, once: the redacted sample of the current data every alert carries."""
    rows = max((a.evidence for a in firing), key=len, default=())
    if not rows:
        return ""
    lat = c.config.latency
    by_latency = lat is not None and any(a.rule.startswith("latency") or "latency:" in " ".join(a.observed)
                                         for a in firing)
    if by_latency:  # a latency alert: the slowest sampled requests first
        rows = sorted(rows, key=lambda r: -r[lat] if isinstance(r.get(lat), (int, float)) and r[lat] == r[lat]
                      else math.inf)
    keys = _evidence_columns(c, rows)
    order = f", slowest {_e(lat)} first" if by_latency else ""
    return ("<section id='evidence'><h2>Evidence rows</h2><p class='muted'>A redacted, uniform sample of "
            f"the current data's rows ({len(rows):,} rows{order}); every alert above carries these rows.</p>"
            "<table><tr>" + "".join(f"<th class='l'>{_e(k)}</th>" for k in keys) + "</tr>"
            + "".join("<tr>" + "".join(f"<td class='l'>{_e(_num(row.get(k, '')))}</td>" for k in keys) + "</tr>"
                      for row in rows) + "</table></section>")


def _skipped(c: Comparison) -> str:
    """Reference columns that are not counted, and why (nothing when every column is)."""
    if not c.skipped:
        return ""
    rows = "".join(f"<tr><td class='l'>{_e(n)}</td><td class='l'>{_e(why)}</td></tr>" for n, why in c.skipped.items())
    return ("<section id='skipped'><h2>Columns not counted</h2><table><tr><th class='l'>column</th>"
            f"<th class='l'>why</th></tr>{rows}</table></section>")


def _alerts(c: Comparison) -> str:
    firing = top_alerts(c.alerts)
    out = [f"<section id='alerts'><h2>Alerts</h2><p class='muted'>Rules: {_e(c.rules_source)}. "
           "The comparison is one window, so a rule's <code>for:</code> count is met by it; each rule is "
           "shown at its highest firing tier.</p>", _config_warning(firing)]
    if not firing:
        out.append("<p>No alert fired.</p>")
    for a in firing:
        obs = "".join(f"<tr><td class='l'>{_e(k)}</td><td>{_num(v)}</td><td>{_num(a.thresholds.get(k))}</td></tr>"
                      for k, v in a.observed.items())
        out.append(f"<div class='alert' style='border-color:{SEV_COLOR[a.severity]}'>"
                   f"<h3>{_badge(a.severity, SEV_COLOR[a.severity])} {_e(a.rule)}</h3><p>{_e(a.summary)}</p>"
                   f"<p>owner: {_who(a.owner, 'owner')} — runbook: {_who(a.runbook, 'runbook')}</p>"
                   f"<table><tr><th class='l'>condition</th><th>observed</th><th>threshold</th></tr>{obs}</table>")
        about = _about_columns(a)
        # a symptom alert's top features are context: only those that drifted are worth a table
        feats = [s for s in a.top_features if about or not (s.metric == "psi" and s.value < PSI_MODERATE)]
        if feats:
            rows = []
            for s in feats:
                for b in s.contributions[:5]:
                    rows.append(f"<tr><td class='l'>{_e(s.column)}</td><td>{_f(s.value, '.4f')}</td>"
                                f"<td class='l'>{_e(b.label)}</td><td>{_pct(b.ref_share)}</td>"
                                f"<td>{_pct(b.cur_share)}</td><td>{b.contribution:.4f}</td></tr>")
            head = ("Evidence: top features and the bins that moved most" if about else
                    "Features that drifted in the same window (possible causes) and the bins that moved most")
            out.append(f"<p>{head}</p><table><tr><th class='l'>"
                       "feature</th><th>value</th><th class='l'>bin</th><th>reference</th><th>current</th>"
                       f"<th>PSI term</th></tr>{''.join(rows)}</table>")
        elif not about and a.top_features:
            out.append(f"<p class='muted'>No feature drifted (PSI ≥ {PSI_MODERATE:g}) in this window.</p>")
        if a.evidence:
            out.append(f"<p class='muted'><a href='#evidence'>Evidence rows</a>: {len(a.evidence):,} sampled "
                       "rows of the current data, below.</p>")
        out.append("</div>")
    out.append("</section>")
    out.append(_evidence(c, firing))
    return "".join(out)


_EXIT_TEXT = {0: ("ok", SEV_COLOR[""]), 1: ("warning", SEV_COLOR["warning"]), 2: ("critical", SEV_COLOR["critical"])}


def _segment_detail(i: int, key: str, basis: str, s: Comparison) -> str:
    """One segment's drift table and firing alerts, folded (``<details>``) under its anchor."""
    rows = "".join(
        f"<tr><td class='l'>{_e(r.column)}{' (prediction)' if r.role == 'prediction' else ''}</td>"
        f"<td{_sat_title(r)}>{_e(_psi(r))}</td><td class='l'>{_badge(r.status, STATUS_COLOR[r.status])}</td>"
        f"<td class='l'>{_badge(r.severity, SEV_COLOR[r.severity]) if r.severity else '–'}</td>"
        f"<td>{_pct(r.missing_ref)}</td><td>{_pct(r.missing_cur)}</td>"
        f"<td>{_num(r.mean_ref)}</td><td>{_num(r.mean_cur)}</td>"
        f"<td class='l'>{_e(r.top_bin) + f' ({r.top_bin_contribution:.3f})' if r.top_bin else '–'}</td></tr>"
        for r in s.rows)
    alerts = "".join(f"<li>{_badge(a.severity, SEV_COLOR[a.severity])} {_e(a.summary)}</li>" for a in top_alerts(s.alerts))
    ref = "the reference's own segment" if basis == "segment" else "the whole reference"
    return (f"<details class='segment' id='s-{i}'><summary><b>{_e(key)}</b> — {s.current.rows:,} rows against "
            f"{ref} ({s.reference.rows:,} rows)</summary><table><tr><th class='l'>column</th><th>PSI</th>"
            "<th class='l'>status</th><th class='l'>alert</th><th>missing ref</th><th>missing cur</th>"
            "<th>mean ref</th><th>mean cur</th><th class='l'>top PSI bin (contribution)</th></tr>"
            f"{rows}</table><p>Alerts firing: {'<ul>' + alerts + '</ul>' if alerts else 'none'}</p></details>")


def _segments(c: Comparison) -> str:
    """Segment section: one summary row per segment (worst first), each linking to its folded detail."""
    if not c.segments:
        return ""
    index = {k: i for i, k in enumerate(c.segments)}
    body = []
    for k, basis, rows, drifted, n, worst, status in segment_rows(c):
        text, color = _EXIT_TEXT[status]
        body.append(f"<tr><td class='l'><a href='#s-{index[k]}'>{_e(k)}</a></td><td class='l'>{_e(basis)}</td><td>{rows:,}</td>"
                    f"<td>{drifted} / {n}</td><td>{'–' if worst is None else _e(_psi(worst))}</td>"
                    f"<td class='l'>{'–' if worst is None else _e(worst.column)}</td>"
                    f"<td class='l'>{_badge(text, color)}</td></tr>")
    details = "".join(_segment_detail(index[k], k, c.segment_basis[k], c.segments[k]) for k in c.segments)
    return (f"<section id='segments'><h2>Segments by {_e(', '.join(c.current.segment_by))}</h2>"
            "<p class='muted'>Each segment of the current data against the reference's own segment of the same "
            "key (reference <i>segment</i>) or, when the reference has none, the whole reference (<i>whole</i>); "
            "same rules as the whole; worst first. Rows past the segment cap are counted under "
            "&lt;other&gt;. A segment's link leads to its drift table and alerts, folded below (click to open).</p>"
            "<table id='segment-table'><tr><th class='l'>segment</th><th class='l'>reference</th><th>rows</th>"
            "<th>drifted</th><th>worst PSI</th><th class='l'>column</th><th class='l'>alerts</th></tr>"
            f"{''.join(body)}</table>{details}</section>")


def render(c: Comparison, title: Optional[str] = None) -> str:
    """The report as one HTML document (UTF-8 text; no external resources)."""
    title = title or "fastdrift drift report"
    rows = sorted((r for r in c.rows if math.isfinite(r.psi)), key=lambda r: -r.psi)
    psi_chart = _hbar_svg("psi", [r.column + (" (ID-like)" if r.id_like else "") for r in rows],
                          [r.psi for r in rows],
                          [ID_LIKE_COLOR if r.id_like else STATUS_COLOR[r.status] for r in rows],
                          "PSI by feature (largest first)", "PSI (population stability index, unitless)",
                          marks=[(0.1, "moderate"), (0.25, "significant")], clip=1.0,
                          texts=[_psi(r, ".3g") for r in rows])
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1><p class='muted'>reference: <b>{_e(c.ref_label)}</b> ({c.reference.rows:,} rows) — "
        f"current: <b>{_e(c.cur_label)}</b> ({c.current.rows:,} rows) — generated {now}</p>",
        _summary(c),
        f"<section id='psi'><h2>PSI by feature</h2>{psi_chart}</section>",
        _drift_table(c), _segments(c), _performance(c), _features(c), _quantiles(c), _missingness(c), _schema(c), _skipped(c),
        _alerts(c),
        "</main></body></html>",
    ]
    return "\n".join(parts)
