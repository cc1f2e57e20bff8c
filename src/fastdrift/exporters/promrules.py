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
chi-square distribution). Rules with ``segments:`` read per-segment recording rules (``sum by
(segment, ...)`` over the segment counters) and fire per segment; a ``signal: canary`` rule's
rollback is a fixed-threshold fleet view of its triggers between the two arms over the window
(fixed-sample z-tests where the monitor runs always-valid sequential tests: see
:data:`CANARY_NOTE`); shadow agreement / PSI, freshness quantiles and over-SLA shares, KPI deltas,
volume and throughput translate too.  What PromQL cannot express is left out and listed in the
result's notes with its reason: ``cooldown``, drift metrics other than PSI, schema changes,
latency / throughput relative to the reference, the freshness maximum, shadow score differences,
JS and performance, and the label signals.
"""
from __future__ import annotations

import re
from statistics import NormalDist
from typing import Dict, List, Optional, Sequence, Tuple

from ..alerts import Condition, Rule, default_rules, load_rules
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


_IGNORE = "feature, role, bin, le"  # a counter's labels the start-time gauge lacks (and kpi, model)


def _win(metric: str, w: str, ws: int, seg: bool = False) -> str:
    """Exact per-series count over the last ``w`` (see the module docstring); ``seg``: a segment's
    counter, gated on its own start-time gauge (which carries the segment's labels)."""
    start = "fastdrift_segment_start_time_seconds" if seg else "fastdrift_start_time_seconds"
    ignore = _IGNORE + (", kpi" if "_kpi" in metric else "") + (", model" if "_shadow_bin" in metric else "")
    return (f"(({metric} - {metric} offset {w}) and ignoring ({ignore}) "
            f"({start} < time() - {ws})) or {metric}")


def _pvalue_gate(n: "_Names", max_pvalue: float) -> str:
    """``p-value <= max_pvalue`` as PromQL: the PSI statistic at or above the chi-square quantile
    with ``bins - 1`` degrees of freedom, by the Wilson-Hilferty approximation
    ``d (1 - 2/(9d) + z sqrt(2/(9d)))^3`` (PromQL has no chi-square distribution)."""
    z = NormalDist().inv_cdf(1.0 - max_pvalue)
    d = f"({n.psi_bins} - 1)"
    return (f"{n.psi_statistic} >= on ({n.g}feature, role) "
            f"({d} * (1 - 2 / (9 * {d}) + {z!r} * sqrt(2 / (9 * {d}))) ^ 3)")


def _smooth(x: str) -> str:
    return f"({x} + {EPS!r} * ({x} == bool 0))"


def _psi(share: str, ref: str, by: str = "feature, role", match: str = "") -> str:
    """fastdrift's PSI of per-bin shares ``share`` against ``ref`` (docs/conventions.md); ``match``:
    a vector-matching clause between the two (``ignoring (segment)`` for two segments)."""
    q, p = _smooth(share), _smooth(ref)
    return f"sum by ({by}) (({q} - {match}{p}) * ln({q} / {match}{p}))"


class _Names:
    """Recording rule names of one window, of the whole or (``seg``) per segment."""

    def __init__(self, w: str, seg: bool = False, ws: int = 0):
        r = "fastdrift:segment_" if seg else "fastdrift:"
        self.w, self.window_seconds = w, ws
        raw = "fastdrift_segment_" if seg else "fastdrift_"
        self.seg, self.raw = seg, raw
        self.g = "segment, " if seg else ""   # the grouping labels before a family's own
        self.on = "segment" if seg else ""     # a whole-series join
        self.match = ""                        # a segment matcher of the rule being translated
        self.bin_rows = f"{r}feature_bin_rows:{w}"
        self.bin_share = f"{r}feature_bin_share:{w}"
        self.ref_share = f"max by ({self.g}feature, role, bin) ({raw}feature_reference_share)"
        self.psi = f"{r}feature_psi:{w}"
        self.psi_bins = f"{r}feature_psi_bins:{w}"
        self.psi_statistic = f"{r}feature_psi_statistic:{w}"
        self.feature_rows = f"{r}feature_rows:{w}"
        self.missing_ratio = f"{r}feature_missing_ratio:{w}"
        self.ref_missing = f"max by ({self.g}feature, role) ({raw}feature_reference_missing_ratio)"
        self.ref_rows = f"max by ({self.g}feature, role) ({raw}feature_reference_rows)"
        self.latency_bucket = f"{r}latency_seconds_bucket:{w}"
        self.latency = f"{r}latency_seconds:{w}"
        self.rows = f"{r}rows:{w}"
        self.errors = f"{r}errors:{w}"
        self.error_rows = f"{r}error_flag_rows:{w}"
        self.error_ratio = f"{r}error_ratio:{w}"
        self.kpi_count = f"{r}kpi_count:{w}"
        self.kpi_mean = f"{r}kpi_mean:{w}"
        self.kpi_variance = f"{r}kpi_variance:{w}"
        self.kpi_ref = f"max by ({self.g}kpi) ({raw}kpi_reference_mean)"
        self.fresh_bucket = f"fastdrift:freshness_lag_seconds_bucket:{w}"
        self.fresh_count = f"fastdrift:freshness_lags:{w}"
        self.fresh_over = f"fastdrift:freshness_over_sla_rows:{w}"
        self.shadow_rows = f"fastdrift:shadow_paired_rows:{w}"
        self.shadow_agree = f"fastdrift:shadow_agreed_rows:{w}"
        self.shadow_share = f"fastdrift:shadow_bin_share:{w}"

    def sel(self, **labels: str) -> str:
        """A selector of ``labels`` (exact values) and the rule's segment matcher."""
        parts = [f"{k}={_q(v)}" for k, v in labels.items()] + ([self.match] if self.match else [])
        return "{" + ", ".join(parts) + "}" if parts else ""


def _share(bin_rows: str, g: str = "") -> str:
    """Per-bin shares of each column's rows (columns without rows are left out)."""
    return f"{bin_rows} / on ({g}feature, role) group_left () (sum by ({g}feature, role) ({bin_rows}) > 0)"


def _expressions(w: str, ws: int, sel: str = "", seg: bool = False) -> Dict[str, str]:
    """The raw PromQL of each signal over window ``w``, columns filtered by ``sel`` (the dashboard's);
    ``seg``: per segment (label ``segment``) from the segment counters."""
    raw = "fastdrift_segment_" if seg else "fastdrift_"
    g = "segment, " if seg else ""
    by = "sum by (segment) " if seg else "sum"

    def win(name: str) -> str:
        return _win(raw + name + (sel if name == "feature_bin_rows_total" else ""), w, ws, seg)
    bins = f"sum by ({g}feature, role, bin) ({win('feature_bin_rows_total')})"
    return {
        "bin_rows": bins,
        "psi": _psi(f"({_share(bins, g)})", f"max by ({g}feature, role, bin) ({raw}feature_reference_share{sel})",
                    f"{g}feature, role"),
        "latency_bucket": f"sum by ({g}le) ({win('latency_seconds_bucket')})",
        "errors": f"{by}({win('errors_total')})",
        "error_rows": f"{by}({win('error_flag_rows_total')})",
        "error_ratio": (f"{by}({win('errors_total')}) / "
                        f"({by}({win('error_flag_rows_total')}) > 0)"),
        "rows": f"{by}({win('rows_total')})",
        "missing": f"sum by ({g}feature, role) ({win('feature_missing_total')})",
        "kpi_count": f"sum by ({g}kpi) ({win('kpi_count')})",
        "kpi_sum": f"sum by ({g}kpi) ({win('kpi_sum')})",
        "kpi_squares": f"sum by ({g}kpi) ({win('kpi_squares_total')})",
    }


def _recording(n: _Names, w: str, ws: int) -> List[dict]:
    x = _expressions(w, ws, seg=n.seg)
    g = n.g
    out = [
        {"record": n.bin_rows, "expr": x["bin_rows"]},
        {"record": n.feature_rows, "expr": f"sum by ({g}feature, role) ({n.bin_rows})"},
        {"record": n.bin_share, "expr": _share(n.bin_rows, g)},
        {"record": n.psi, "expr": _psi(n.bin_share, n.ref_share, f"{g}feature, role")},
        # the PSI p-value's parts (metrics.psi_pvalue): bins holding any count, PSI * n*m / (n + m)
        {"record": n.psi_bins, "expr": f"count by ({g}feature, role) (({n.bin_share} + {n.ref_share}) > 0)"},
        {"record": n.psi_statistic,
         "expr": (f"{n.psi} * on ({g}feature, role) ({n.feature_rows} * {n.ref_rows} "
                  f"/ ({n.feature_rows} + {n.ref_rows}))")},
        {"record": n.missing_ratio, "expr": f"{x['missing']} / (({x['missing']} + {n.feature_rows}) > 0)"},
        {"record": n.latency_bucket, "expr": x["latency_bucket"]},
    ]
    for q in ("0.5", "0.95", "0.99"):
        out.append({"record": n.latency, "expr": f"histogram_quantile({q}, {n.latency_bucket})",
                    "labels": {"quantile": q}})
    out += [{"record": n.rows, "expr": x["rows"]}, {"record": n.error_ratio, "expr": x["error_ratio"]}]
    if n.seg:  # the canary's error-rate test reads both counts per arm
        out += [{"record": n.errors, "expr": x["errors"]}, {"record": n.error_rows, "expr": x["error_rows"]}]
    out += [
        {"record": n.kpi_count, "expr": x["kpi_count"]},
        {"record": n.kpi_mean, "expr": f"{x['kpi_sum']} / ({n.kpi_count} > 0)"},
        # sample variance (sum of squares - n mean^2) / (n - 1), from the exported sum of squares
        {"record": n.kpi_variance,
         "expr": f"clamp_min(({x['kpi_squares']} - {n.kpi_count} * {n.kpi_mean} ^ 2) / ({n.kpi_count} - 1 > 0), 0)"},
    ]
    return out


def _whole_only(n: _Names, w: str, ws: int) -> List[dict]:
    """Recording rules of the shadow and freshness counters (the whole's only)."""
    fresh = f"sum by (le) ({_win('fastdrift_freshness_lag_seconds_bucket', w, ws)})"
    shadow = f"sum by (feature, model, bin) ({_win('fastdrift_shadow_bin_rows_total', w, ws)})"
    out = [{"record": n.fresh_bucket, "expr": fresh},
           {"record": n.fresh_count, "expr": f"sum({_win('fastdrift_freshness_lag_seconds_count', w, ws)})"},
           {"record": n.fresh_over, "expr": f"sum({_win('fastdrift_freshness_over_sla_rows_total', w, ws)})"}]
    for q in ("0.5", "0.95", "0.99"):
        out.append({"record": "fastdrift:freshness_lag_seconds:" + w,
                    "expr": f"histogram_quantile({q}, {n.fresh_bucket})", "labels": {"quantile": q}})
    out += [{"record": n.shadow_rows, "expr": f"sum({_win('fastdrift_shadow_paired_rows_total', w, ws)})"},
            {"record": n.shadow_agree, "expr": f"sum({_win('fastdrift_shadow_agreed_rows_total', w, ws)})"},
            {"record": n.shadow_share,
             "expr": f"{shadow} / on (feature, model) group_left () (sum by (feature, model) ({shadow}) > 0)"}]
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


def _sel(role: str, globs: Sequence[str], match: str = "", key: str = "feature") -> str:
    rx = _glob_re(globs)
    parts = ([f'role="{role}"'] if role else []) + ([f"{key}=~{_q(rx)}"] if rx is not None else [])
    return "{" + ", ".join(parts + ([match] if match else [])) + "}" if parts or match else ""


class _Untranslatable(Exception):
    pass


def _rows_gate(e: str, n: _Names, min_rows: int) -> str:
    return f"({e}) and on ({n.on}) ({n.rows}{n.sel()} >= {min_rows})" if min_rows else e


def _leaf(c: Condition, n: _Names) -> str:
    op, t, g = c.op, repr(c.threshold), n.g
    if c.signal in ("feature_drift", "prediction_drift"):
        if c.metric not in (None, "psi"):
            raise _Untranslatable(f"drift metric {c.metric!r} (PromQL rules compute PSI)")
        sel = (_sel("feature", c.features, n.match) if c.signal == "feature_drift"
               else _sel("prediction", ("*",), n.match))
        e = f"{n.psi}{sel} {op} {t}"
        if c.max_pvalue is not None:
            e = f"({e}) and on ({g}feature, role) ({_pvalue_gate(n, c.max_pvalue)})"
        if c.min_rows:
            e = f"({e}) and on ({g}feature, role) ({n.feature_rows} >= {c.min_rows})"
    elif c.signal == "missingness":
        sel = _sel("feature", c.features, n.match)
        e = (f"{n.missing_ratio}{sel} {op} {t}" if c.metric == "ratio"
             else f"({n.missing_ratio}{sel} - on ({g}feature, role) ({n.ref_missing})) {op} {t}")
        e = _rows_gate(e, n, c.min_rows)
    elif c.signal == "latency":
        if c.metric == "ratio":
            raise _Untranslatable("latency relative to the reference (metric 'ratio': the reference's "
                                  "latency quantiles are not exported)")
        e = _rows_gate(f"{n.latency}{n.sel(quantile=repr(c.quantile))} {op} {c.threshold / 1000.0!r}", n, c.min_rows)
    elif c.signal == "error_rate":
        e = _rows_gate(f"{n.error_ratio}{n.sel()} {op} {t}", n, c.min_rows)
    elif c.signal == "kpi_delta":
        delta = f"({n.kpi_mean}{_sel('', c.features, n.match, 'kpi')} - on ({g}kpi) {n.kpi_ref})"
        if c.metric == "relative":
            delta = f"({delta} / on ({g}kpi) abs({n.kpi_ref}))"
        e = _rows_gate(f"{delta} {op} {t}", n, c.min_rows)
    elif c.signal == "volume":
        e = f"{n.rows}{n.sel()} {op} {t}"
    elif c.signal == "throughput":
        if c.metric == "ratio":
            raise _Untranslatable("throughput relative to the reference (metric 'ratio': the reference's rate "
                                  "is not exported)")
        e = _rows_gate(f"{n.rows}{n.sel()} / {n.window_seconds} {op} {t}", n, c.min_rows)
    elif c.signal == "freshness":
        if c.metric == "max":
            raise _Untranslatable("freshness 'max' (a largest lag over the window is not a counter; "
                                  "fastdrift_window_freshness_max_seconds holds each process's latest window)")
        if c.metric == "over_sla":
            e = f"{n.fresh_over} {op} {t}"
        elif c.metric == "over_sla_share":
            e = f"{n.fresh_over} / ({n.fresh_count} > 0) {op} {t}"
        else:
            e = f'fastdrift:freshness_lag_seconds:{n.w}{{quantile="{c.quantile!r}"}} {op} {t}'
        e = f"({e}) and on () ({n.fresh_count} >= {max(c.min_rows, 1)})"
    elif c.signal == "shadow":
        if c.metric == "agreement":
            e = f"{n.shadow_agree} / ({n.shadow_rows} > 0) {op} {t}"
        elif c.metric == "psi":  # the champion's paired predictions are the reference side (as in the monitor)
            e = (_psi(f'{n.shadow_share}{{model="challenger"}}', f'{n.shadow_share}{{model="champion"}}', "feature",
                      "ignoring (model) ") + f" {op} {t}")
        else:
            raise _Untranslatable(f"shadow metric {c.metric!r} (only agreement and psi have counters: score "
                                  "differences and labelled performance are kept in the monitor)")
        e = f"({e}) and on () ({n.shadow_rows} >= {max(c.min_rows, 1)})"
    elif c.signal in ("performance", "label_coverage", "label_delay"):
        raise _Untranslatable(f"signal {c.signal!r} (labels are joined to predictions in the monitor; no label "
                              "counter is exported)")
    else:
        raise _Untranslatable(f"signal {c.signal!r} (no counter of it is exported)")
    if c.min_features > 1:
        e = f"count{' by (segment)' if n.seg else ''} ({e}) >= {c.min_features}"
    return e


def _gate(g, n: _Names) -> str:
    if isinstance(g, Condition):
        return _leaf(g, n)
    parts = [f"({_gate(c, n)})" for c in g.conditions]
    return f" {'and' if g.mode == 'all' else 'or'} on ({n.on}) ".join(parts)


def _alert_name(rule: str) -> str:
    return "Fastdrift_" + re.sub(r"[^A-Za-z0-9_]", "_", rule)


#: What a generated canary rule does not reproduce of the monitor's canary verdict.
CANARY_NOTE = ("a fixed-threshold fleet view over the last {w}: the error-rate and KPI triggers are fixed-sample "
               "z-tests at level alpha on the window's counts, re-read at every evaluation (reading them every "
               "window inflates their false-positive rate above alpha); the monitor's always-valid sequential "
               "tests (mixture SPRT, evidence accumulated since the canary began, false-positive rate alpha "
               "however often read) are not reproduced, nor its promote / hold verdict; the KPI test assumes "
               "a positive baseline mean")


def _canary(r: Rule, n: _Names) -> str:
    """``rollback`` of a canary rule as PromQL: any trigger of the candidate arm against the baseline arm
    over the window, each labelled ``trigger`` (see :data:`CANARY_NOTE`)."""
    sp, t = r.canary, r.canary.triggers
    a, b = _q(sp.baseline), _q(sp.candidate)
    z = NormalDist().inv_cdf(1.0 - t.alpha)
    m = "ignoring (segment) "

    def arm(name: str, key: str, **labels: str) -> str:
        return f"{name}{{segment={key}" + "".join(f", {k}={_q(v)}" for k, v in labels.items()) + "}"
    enough = f"({arm(n.rows, b)} >= {t.min_rows}) and {m}({arm(n.rows, a)} >= {t.min_rows})"
    psi = _psi(arm(n.bin_share, b, role="prediction"), arm(n.bin_share, a, role="prediction"), "feature, role", m)
    p99 = f'{arm(n.latency, b, quantile="0.99")} / {m}{arm(n.latency, a, quantile="0.99")} > {t.p99_ratio!r}'
    rb, ra, nb, na = arm(n.error_ratio, b), arm(n.error_ratio, a), arm(n.error_rows, b), arm(n.error_rows, a)
    errors = (f"(({rb} - {m}{ra}) - {t.error_rate_margin!r}) > {z!r} * sqrt(({rb} * (1 - {rb}) / {nb}) + {m}"
              f"({ra} * (1 - {ra}) / {na}))")
    triggers = [("psi", f"{psi} > {t.psi!r}"), ("p99_ratio", p99), ("error_rate", errors)]
    lower = "|".join(re.escape(k) for k in t.lower_is_better) or None
    for sign, match in ((1, f"kpi!~{_q(lower)}" if lower else ""), (-1, f"kpi=~{_q(lower)}" if lower else None)):
        if match is None:
            continue
        c = 1.0 - sign * t.kpi_drop  # worse: b's mean below (1 - drop) x a's (above (1 + drop) x a's when lower is better)
        mb, ma = (f"{n.kpi_mean}{{segment={k}{', ' + match if match else ''}}}" for k in (b, a))
        vb, va = (f"{n.kpi_variance}{{segment={k}{', ' + match if match else ''}}}" for k in (b, a))
        kb, ka = (f"{n.kpi_count}{{segment={k}{', ' + match if match else ''}}}" for k in (b, a))
        d = f"({mb} - {m}({c!r} * {ma}))"
        se = f"sqrt(({vb} / {kb}) + {m}({c * c!r} * {va} / {ka}))"
        triggers.append(("kpi", f"{d} < -{z!r} * {se}" if sign > 0 else f"{d} > {z!r} * {se}"))
    seg = _q(sp.candidate.replace("$", "$$"))  # each alert names the candidate's segment and its trigger
    return " or ".join(f'label_replace(label_replace(({e}) and on () ({enough}), "trigger", "{name}", "", ""), '
                       f'"segment", {seg}, "", "")' for name, e in triggers)


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
        ``{"groups": [recording group(s), alerting group]}`` and one line per rule part not
        translated (see the module docstring).  Rules with ``segments:`` and canary rules add a
        per-segment recording group, shadow and freshness rules one over those counters.
    """
    ws = parse_duration(window)
    w = _dur(ws)
    rule_list = (default_rules(("*",), "prediction", True, True) if rules is None else load_rules(rules))
    alerts, notes = [], []
    need_seg = need_whole_only = False
    for r in rule_list:
        seg = r.segments is not None or r.canary is not None
        n = _Names(w, seg, ws)
        if r.segments is not None and "*" not in r.segments:
            n.match = f"segment=~{_q('|'.join(re.escape(k) for k in r.segments))}"
        for sev, gate in r.tiers():
            leaves = gate.leaves()
            try:
                expr = (_canary(r, n) if r.canary is not None
                        else _gate(gate if len(gate.conditions) > 1 else gate.conditions[0], n))
            except _Untranslatable as exc:
                notes.append(f"rule {r.name!r} {sev}: not translated: {exc}")
                continue
            need_seg |= seg
            need_whole_only |= any(c.signal in ("shadow", "freshness") for c in leaves)
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
            if r.canary is not None:
                tr = r.canary.triggers
                summary = (f"canary {r.canary.candidate} vs {r.canary.baseline} over {w}: rollback on prediction "
                           f"PSI > {tr.psi:g}, p99 ratio > {tr.p99_ratio:g}, error rate worse by > "
                           f"{tr.error_rate_margin:g} or a KPI worse by > {tr.kpi_drop:g} (alpha {tr.alpha:g}, "
                           f"min_rows {tr.min_rows} per arm)")
            else:
                summary = f"fastdrift rule {r.name} ({sev}) over {w}: " + "; ".join(
                    f"{c.label} {c.op} {c.threshold:g}" for c in leaves)
                if r.segments is not None:
                    summary += f"; per segment ({', '.join(r.segments)})"
            a["annotations"] = {"summary": summary, "description": r.description or r.name,
                                "runbook_url": r.runbook}
            if r.canary is not None:
                a["annotations"]["not_reproduced"] = CANARY_NOTE.format(w=w)
            if skipped:
                a["annotations"]["not_translated"] = ", ".join(skipped)
            alerts.append(a)
    whole = _Names(w)
    groups = [{"name": f"fastdrift-recording-{w}", "rules": _recording(whole, w, ws)}]
    if need_seg:
        groups.append({"name": f"fastdrift-segment-recording-{w}", "rules": _recording(_Names(w, seg=True), w, ws)})
    if need_whole_only:
        groups.append({"name": f"fastdrift-shadow-freshness-recording-{w}", "rules": _whole_only(whole, w, ws)})
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
