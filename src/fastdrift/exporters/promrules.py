"""Prometheus recording / alerting rules and a Grafana dashboard over the exported counters.

The counters of :mod:`fastdrift.exporters.prometheus` sum across processes and replicas, so the
fleet's PSI, latency quantiles and error ratio over a window are PromQL expressions:

* Window counts are exact: a counter minus its value ``offset W`` (no ``increase()``
  extrapolation, which would weight each instance by its own scrape alignment). An instance whose
  counters started within the window (``fastdrift_start_time_seconds``) contributes its whole
  count, so new and restarted processes are neither lost nor negative.
* PSI follows fastdrift's convention (docs/conventions.md): shares, zeros replaced by ``eps=1e-4``
  without renormalising, ``Σ (q̃ − p̃) · ln(q̃ / p̃)`` over the reference's bins; the PromQL value
  equals :func:`fastdrift.psi` of the summed counts to float rounding.
* Latency quantiles come from ``histogram_quantile`` over the summed buckets: within a factor
  2^(1/8) of the exact quantile (see ``LATENCY_BUCKET_FACTOR``).

:func:`prometheus_rules` mirrors fastdrift's alert rules (tiers as ``severity``, ``for`` and
``resolve_after`` as ``for:`` / ``keep_firing_for:`` in multiples of the window, owner as a label,
runbook and description as annotations). A p-value gate (``max_pvalue``) compares the PSI
statistic with the chi-square quantile by the Wilson-Hilferty approximation (PromQL has no
chi-square distribution). What PromQL cannot express is left out and listed in the result's notes:
``cooldown``, drift metrics other than PSI, schema changes and KPI deltas.
"""
from __future__ import annotations

import re
from statistics import NormalDist
from typing import Dict, List, Optional, Sequence, Tuple

from ..alerts import Condition, Gate, Rule, default_rules, load_rules
from ..errors import InvalidInputError

__all__ = ["prometheus_rules", "grafana_dashboard", "parse_duration", "EPS"]

#: The PSI smoothing of :func:`fastdrift.psi`.
EPS = 1e-4
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds of a Prometheus-style duration (``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``)."""
    m = re.fullmatch(r"([1-9][0-9]*)([smhd])", str(text).strip())
    if not m:
        raise InvalidInputError(f"window {text!r}: expected a duration such as 30s, 5m, 1h or 1d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _dur(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _win(metric: str, w: str, ws: int) -> str:
    """Exact per-series count over the last ``w`` (see the module docstring)."""
    return (f"(({metric} - {metric} offset {w}) and ignoring (feature, role, bin, le) "
            f"(fastdrift_start_time_seconds < time() - {ws})) or {metric}")


_REF_ROWS = "max by (feature, role) (fastdrift_feature_reference_rows)"


def _pvalue_gate(n: _Names, max_pvalue: float) -> str:
    """``p-value <= max_pvalue`` as PromQL: the PSI statistic at or above the chi-square quantile
    with ``bins - 1`` degrees of freedom, by the Wilson-Hilferty approximation
    ``d (1 - 2/(9d) + z sqrt(2/(9d)))^3`` (PromQL has no chi-square distribution)."""
    z = NormalDist().inv_cdf(1.0 - max_pvalue)
    d = f"({n.psi_bins} - 1)"
    return f"{n.psi_statistic} >= on (feature, role) ({d} * (1 - 2 / (9 * {d}) + {z!r} * sqrt(2 / (9 * {d}))) ^ 3)"


def _smooth(x: str) -> str:
    return f"({x} + {EPS!r} * ({x} == bool 0))"


def _psi(share: str, ref: str) -> str:
    """fastdrift's PSI of per-bin shares ``share`` against ``ref`` (docs/conventions.md)."""
    q, p = _smooth(share), _smooth(ref)
    return f"sum by (feature, role) (({q} - {p}) * ln({q} / {p}))"


class _Names:
    """Recording rule names of one window."""

    def __init__(self, w: str):
        self.bin_rows = f"fastdrift:feature_bin_rows:{w}"
        self.bin_share = f"fastdrift:feature_bin_share:{w}"
        self.ref_share = "max by (feature, role, bin) (fastdrift_feature_reference_share)"
        self.psi = f"fastdrift:feature_psi:{w}"
        self.psi_bins = f"fastdrift:feature_psi_bins:{w}"
        self.psi_statistic = f"fastdrift:feature_psi_statistic:{w}"
        self.feature_rows = f"fastdrift:feature_rows:{w}"
        self.missing_ratio = f"fastdrift:feature_missing_ratio:{w}"
        self.ref_missing = "max by (feature, role) (fastdrift_feature_reference_missing_ratio)"
        self.latency_bucket = f"fastdrift:latency_seconds_bucket:{w}"
        self.latency = f"fastdrift:latency_seconds:{w}"
        self.rows = f"fastdrift:rows:{w}"
        self.error_ratio = f"fastdrift:error_ratio:{w}"


def _share(bin_rows: str) -> str:
    """Per-bin shares of each column's rows (columns without rows are left out)."""
    return f"{bin_rows} / on (feature, role) group_left () (sum by (feature, role) ({bin_rows}) > 0)"


def _expressions(w: str, ws: int, sel: str = "") -> Dict[str, str]:
    """The raw PromQL of each signal over window ``w``, columns filtered by ``sel`` (the dashboard's)."""
    bins = f"sum by (feature, role, bin) ({_win('fastdrift_feature_bin_rows_total' + sel, w, ws)})"
    return {
        "bin_rows": bins,
        "psi": _psi(f"({_share(bins)})", f"max by (feature, role, bin) (fastdrift_feature_reference_share{sel})"),
        "latency_bucket": f"sum by (le) ({_win('fastdrift_latency_seconds_bucket', w, ws)})",
        "error_ratio": (f"sum({_win('fastdrift_errors_total', w, ws)}) / "
                        f"(sum({_win('fastdrift_error_flag_rows_total', w, ws)}) > 0)"),
        "rows": f"sum({_win('fastdrift_rows_total', w, ws)})",
        "missing": f"sum by (feature, role) ({_win('fastdrift_feature_missing_total', w, ws)})",
    }


def _recording(n: _Names, w: str, ws: int) -> List[dict]:
    x = _expressions(w, ws)
    out = [
        {"record": n.bin_rows, "expr": x["bin_rows"]},
        {"record": n.feature_rows, "expr": f"sum by (feature, role) ({n.bin_rows})"},
        {"record": n.bin_share, "expr": _share(n.bin_rows)},
        {"record": n.psi, "expr": _psi(n.bin_share, n.ref_share)},
        # the PSI p-value's parts (metrics.psi_pvalue): bins holding any count, PSI * n*m / (n + m)
        {"record": n.psi_bins, "expr": f"count by (feature, role) (({n.bin_share} + {n.ref_share}) > 0)"},
        {"record": n.psi_statistic,
         "expr": (f"{n.psi} * on (feature, role) ({n.feature_rows} * {_REF_ROWS} "
                  f"/ ({n.feature_rows} + {_REF_ROWS}))")},
        {"record": n.missing_ratio, "expr": f"{x['missing']} / (({x['missing']} + {n.feature_rows}) > 0)"},
        {"record": n.latency_bucket, "expr": x["latency_bucket"]},
    ]
    for q in ("0.5", "0.95", "0.99"):
        out.append({"record": n.latency, "expr": f"histogram_quantile({q}, {n.latency_bucket})",
                    "labels": {"quantile": q}})
    out += [{"record": n.rows, "expr": x["rows"]}, {"record": n.error_ratio, "expr": x["error_ratio"]}]
    return out


def _glob_re(globs: Sequence[str]) -> Optional[str]:
    """An RE2 alternation matching fnmatch ``globs`` (None when one of them matches everything)."""
    if any(g == "*" for g in globs):
        return None
    parts = []
    for g in globs:
        out, i = [], 0
        while i < len(g):
            ch = g[i]
            j = i + 1
            if ch == "[":  # a set, as fnmatch reads it: "[!" negates, a "]" first is a member
                j += g[j:j + 1] == "!"
                j += g[j:j + 1] == "]"
                j = g.find("]", j)
            if ch == "*":
                out.append(".*")
            elif ch == "?":
                out.append(".")
            elif ch == "[" and j > 0:
                body = g[i + 1:j]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
            else:  # also a "[" without its "]": a literal, as in fnmatch
                out.append(re.escape(ch))
            i += 1
        parts.append("".join(out))
    return "|".join(parts)


def _q(s: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _sel(role: str, globs: Sequence[str]) -> str:
    rx = _glob_re(globs)
    return f'{{role="{role}"' + (f", feature=~{_q(rx)}" if rx is not None else "") + "}"


class _Untranslatable(Exception):
    pass


def _leaf(c: Condition, n: _Names) -> str:
    op, t = c.op, repr(c.threshold)
    if c.signal in ("feature_drift", "prediction_drift"):
        if c.metric not in (None, "psi"):
            raise _Untranslatable(f"drift metric {c.metric!r} (PromQL rules compute PSI)")
        sel = _sel("feature", c.features) if c.signal == "feature_drift" else '{role="prediction"}'
        e = f"{n.psi}{sel} {op} {t}"
        if c.max_pvalue is not None:
            e = f"({e}) and on (feature, role) ({_pvalue_gate(n, c.max_pvalue)})"
        if c.min_rows:
            e = f"({e}) and on (feature, role) ({n.feature_rows} >= {c.min_rows})"
    elif c.signal == "missingness":
        sel = _sel("feature", c.features)
        e = (f"{n.missing_ratio}{sel} {op} {t}" if c.metric == "ratio"
             else f"({n.missing_ratio}{sel} - on (feature, role) ({n.ref_missing})) {op} {t}")
        if c.min_rows:
            e = f"({e}) and on () ({n.rows} >= {c.min_rows})"
    elif c.signal == "latency":
        if c.metric == "ratio":
            raise _Untranslatable("latency relative to the reference (metric 'ratio': the reference's "
                                  "latency quantiles are not exported)")
        e = f'{n.latency}{{quantile="{c.quantile!r}"}} {op} {c.threshold / 1000.0!r}'
        if c.min_rows:
            e = f"({e}) and on () ({n.rows} >= {c.min_rows})"
    elif c.signal == "error_rate":
        e = f"{n.error_ratio} {op} {t}"
        if c.min_rows:
            e = f"({e}) and on () ({n.rows} >= {c.min_rows})"
    else:
        raise _Untranslatable(f"signal {c.signal!r} (no counter of it is exported)")
    if c.min_features > 1:
        e = f"count({e}) >= {c.min_features}"
    return e


def _gate(g, n: _Names) -> str:
    if isinstance(g, Condition):
        return _leaf(g, n)
    parts = [f"({_gate(c, n)})" for c in g.conditions]
    return f" {'and' if g.mode == 'all' else 'or'} on () ".join(parts)


def _alert_name(rule: str) -> str:
    return "Fastdrift_" + re.sub(r"[^A-Za-z0-9_]", "_", rule)


def prometheus_rules(rules=None, window: str = "5m") -> Tuple[dict, List[str]]:
    """Prometheus rule groups (a YAML-ready mapping) for ``rules`` over ``window``, and notes.

    Parameters
    ----------
    rules : rules file, list of mappings / :class:`~fastdrift.alerts.Rule`, or None
        None: :func:`~fastdrift.alerts.default_rules` for every feature, the prediction, latency
        and errors.
    window : str, default "5m"
        The window each recording rule covers; ``for`` / ``resolve_after`` of a rule (counted
        in windows) become ``for:`` / ``keep_firing_for:`` of ``(n - 1) × window``.

    Returns
    -------
    (groups, notes)
        ``{"groups": [recording group, alerting group]}`` and one line per rule part not
        translated (see the module docstring).
    """
    ws = parse_duration(window)
    w = _dur(ws)
    rule_list = (default_rules(("*",), "prediction", True, True) if rules is None else load_rules(rules))
    n = _Names(w)
    alerts, notes = [], []
    for r in rule_list:
        if r.segments is not None:  # the fleet counters PromQL reads are the whole's, not per segment
            notes.append(f"rule {r.name!r}: not translated: it selects segments, and the counters are exported "
                         "for the whole only (alert on fastdrift_segment_alert_state, the monitor's own per-segment "
                         "state)")
            continue
        for sev, gate in r.tiers():
            leaves = gate.leaves()
            try:
                expr = _gate(gate if len(gate.conditions) > 1 else gate.conditions[0], n)
            except _Untranslatable as exc:
                notes.append(f"rule {r.name!r} {sev}: not translated: {exc}")
                continue
            skipped = [f"cooldown {r.cooldown}"] if r.cooldown else []
            note = f"rule {r.name!r}: {', '.join(skipped)} not translated (PromQL has no equivalent)"
            if skipped and note not in notes:
                notes.append(note)
            a = {"alert": _alert_name(r.name), "expr": expr}
            if r.for_windows > 1:
                a["for"] = _dur((r.for_windows - 1) * ws)
            if r.resolve_after > 1:
                a["keep_firing_for"] = _dur((r.resolve_after - 1) * ws)
            a["labels"] = {"severity": sev, "owner": r.owner, "rule": r.name, "source": "fastdrift"}
            a["annotations"] = {
                "summary": f"fastdrift rule {r.name} ({sev}) over {w}: " + "; ".join(
                    f"{c.label} {c.op} {c.threshold:g}" for c in leaves),
                "description": r.description or r.name,
                "runbook_url": r.runbook,
            }
            if skipped:
                a["annotations"]["not_translated"] = ", ".join(skipped)
            alerts.append(a)
    groups = [{"name": f"fastdrift-recording-{w}", "rules": _recording(n, w, ws)}]
    if alerts:
        groups.append({"name": f"fastdrift-alerts-{w}", "rules": alerts})
    return {"groups": groups}, notes


def rules_yaml(rules=None, window: str = "5m") -> Tuple[str, List[str]]:
    """:func:`prometheus_rules` as YAML text (notes as leading comments) and the notes."""
    import yaml  # function level: only the rules command needs it
    doc, notes = prometheus_rules(rules, window)
    head = "# Generated by `fastdrift rules --prometheus`; see docs/prometheus.md.\n"
    head += "".join(f"# {line}\n" for line in notes)
    return head + yaml.safe_dump(doc, sort_keys=False, width=1_000_000, allow_unicode=True), notes


def grafana_dashboard(window: str = "5m") -> dict:
    """A Grafana dashboard (JSON model) on the exported names: fleet PSI per feature, prediction
    PSI, latency quantiles, error ratio, rows per second and alert states, all over ``window``.

    Queries are raw PromQL (no recording rules needed) against a ``${datasource}`` variable.
    """
    ws = parse_duration(window)
    w = _dur(ws)
    x = _expressions(w, ws)
    feat, pred = (_expressions(w, ws, f'{{role="{r}"}}')["psi"] for r in ("feature", "prediction"))
    ds = {"type": "prometheus", "uid": "${datasource}"}

    def panel(i, title, targets, unit, y):
        return {"id": i, "type": "timeseries", "title": title, "datasource": ds,
                "gridPos": {"h": 8, "w": 12, "x": 12 * ((i - 1) % 2), "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [dict(t, datasource=ds, refId=chr(65 + k)) for k, t in enumerate(targets)]}

    lat = [{"expr": f"histogram_quantile({q}, {x['latency_bucket']})", "legendFormat": f"p{p}"}
           for q, p in (("0.5", "50"), ("0.95", "95"), ("0.99", "99"))]
    panels = [
        panel(1, f"Fleet PSI per feature ({w})", [{"expr": feat, "legendFormat": "{{feature}}"}], "none", 0),
        panel(2, f"Fleet prediction PSI ({w})", [{"expr": pred, "legendFormat": "{{feature}}"}], "none", 0),
        panel(3, f"Latency quantiles ({w})", lat, "s", 8),
        panel(4, f"Error ratio ({w})", [{"expr": x["error_ratio"], "legendFormat": "errors"}], "percentunit", 8),
        panel(5, "Rows per second", [{"expr": f"sum(rate(fastdrift_rows_total[{w}]))", "legendFormat": "rows/s"}],
              "ops", 16),
        panel(6, "Alert states (0 inactive, 1 pending, 2 firing)",
              [{"expr": "max by (rule, severity) (fastdrift_alert_state)",
                "legendFormat": "{{rule}} {{severity}}"}], "none", 16),
    ]
    return {
        "title": "fastdrift", "uid": "fastdrift", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "tags": ["fastdrift"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }
