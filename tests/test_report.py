"""The HTML report: self-contained, and rendered by a real browser (headless Chromium) without errors.

The browser test fails (never skips) when Chromium is missing; README's test command installs it
(``tests/system-packages.sh``).
"""
import os
import pathlib
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.demo import demo_config, make_tables
from fastdrift.report import compare, format_text, render, to_json
from fastdrift.report.html import CUR_COLOR, REF_COLOR

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def comparison():
    ref_t, cur_t = make_tables(20_000, seed=5)
    ref = fastdrift.profile(ref_t)
    cur = fastdrift.profile(cur_t, reference=ref)
    # a sample of current rows as the alerts' evidence (keys: a uniform draw, as a row sample's hash)
    keys = np.random.default_rng(0).integers(0, 2**63, 200)
    evidence = list(zip(keys.tolist(), cur_t.slice(0, 200).to_pylist()))
    return compare(ref, cur, demo_config(), evidence=evidence, ref_label="ref day", cur_label="drifted day")


@pytest.fixture(scope="module")
def page(comparison, tmp_path_factory):
    p = tmp_path_factory.mktemp("report") / "report.html"
    p.write_text(render(comparison), encoding="utf-8")
    return p


def artifact_dir() -> pathlib.Path:
    """Where the screenshot goes: $FASTDRIFT_TEST_ARTIFACTS, else a fixed folder under the temp dir."""
    import tempfile
    d = pathlib.Path(os.environ.get("FASTDRIFT_TEST_ARTIFACTS")
                     or os.path.join(tempfile.gettempdir(), "fastdrift-test-artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_report_is_self_contained(page, comparison):
    text = page.read_text()
    assert "<script" not in text.lower() and "<link" not in text.lower() and "<img" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # the SVG namespace, never fetched
    for section in ("summary", "psi", "drift-table", "features", "quantiles", "missingness", "schema", "alerts"):
        assert f"id='{section}'" in text or f'id="{section}"' in text, section
    n = len(comparison.rows)
    assert text.count('data-chart="distribution"') == n
    assert text.count('data-chart="contributions"') == n
    assert text.count('data-chart="psi"') == 1
    # labelled, with units
    assert "share of non-missing rows (%)" in text and "PSI (population stability index, unitless)" in text
    assert "latency p99" in text and " ms" in text
    # the alerts and their evidence
    assert "latency-p99" in text and "feature-drift" in text and "Evidence" in text


def test_report_lists_schema_changes_and_quantile_shifts(comparison):
    from fastdrift.records import SchemaChange
    c = compare(comparison.reference, comparison.current, demo_config(),
                schema_changes=[SchemaChange("clicks", "type", "int32", "double")])
    text = render(c)
    assert "int32" in text and "double" in text
    q = c.quantiles["income"]
    assert q.shift[3] > 0  # the injected level shift of income moves its median up
    assert q.shift[3] > 1000 and f"+{q.shift[3]:,.0f}" in text   # thousands separators, no 1.52e+04


def test_a_rule_is_one_alert_in_json_and_text(comparison):
    """Warning and critical of one rule: one entry in the JSON, at its highest tier, as the text counts it."""
    from fastdrift.report import format_text, to_json
    doc = to_json(comparison)
    firing = [(a["rule"], a["severity"]) for a in doc["alerts"] if a["state"] == "firing"]
    assert len(firing) == len({r for r, _ in firing}) >= 2
    assert ("feature-drift", "critical") in firing
    assert sum(doc["summary"]["alerts_firing"].values()) == len(firing)
    assert f"Alerts (built-in default rules): {len(firing)} rules firing" in format_text(comparison)
    # the summary names the features over the threshold, not the whole monitored list
    fd = next(a for a in doc["alerts"] if a["rule"] == "feature-drift")
    over = [r.column for r in comparison.rows if r.psi > 0.25 and r.role == "feature"]
    assert all(k.startswith("feature_drift:psi[") for k in fd["observed"])
    assert set(over) <= set(fd["summary"].replace(",", " ").replace("=", " ").split()) or "more" in fd["summary"]
    stable = [r.column for r in comparison.rows if r.psi < 0.1 and r.role == "feature"]
    assert stable and not any(f" {n}=" in fd["summary"] for n in stable)


def _tail_and_temperature(n=100_000, seed=1):
    """A tail-number column (~4,000 aircraft, ~25 flights each) whose fleet rotates, and a temperature
    whose current window sits in the reference's top decile (PSI saturated)."""
    rng = np.random.default_rng(seed)
    tails = np.array([f"N{i:04d}" for i in range(4000)])
    w = rng.gamma(2, 1, 4000)
    w /= w.sum()
    ref = pa.table({"tailnum": rng.choice(tails, n, p=w), "temp": rng.normal(10, 8, n),
                    "dist": rng.lognormal(6, 1, n)})
    cur = pa.table({"tailnum": rng.choice(tails, n, p=np.roll(w, 300)), "temp": rng.normal(40, 1, n),
                    "dist": rng.lognormal(6, 1, n)})
    return ref, cur


def test_id_like_columns_are_detected_left_out_of_drift_rules_and_marked():
    ref_t, cur_t = _tail_and_temperature()
    ref = fastdrift.profile(ref_t)
    cur = fastdrift.profile(cur_t, reference=ref)
    c = compare(ref, cur)
    rows = {r.column: r for r in c.rows}
    tail = rows["tailnum"]
    assert tail.id_like and not rows["temp"].id_like and not rows["dist"].id_like
    # its PSI is large and significant: without the rule it would page
    assert tail.psi > 0.25 and tail.pvalue < 1e-3
    assert tail.severity == "" and c.id_like == ["tailnum"] and "tailnum" not in c.drifted
    fd = next(a for a in c.alerts if a.rule == "feature-drift")
    assert [s.column for s in fd.top_features] == ["temp"] and "tailnum" not in fd.summary
    # the same rules without the exclusion fire on tailnum (the defect this guards against)
    plain = compare(ref, cur, rules=[r for r in fastdrift.alerts.default_rules(["tailnum", "dist"], None, False, False)])
    assert {s.column for a in plain.alerts for s in a.top_features} == {"tailnum"}
    # said so in the table, the JSON and the HTML
    text = format_text(c)
    line = next(ln for ln in text.splitlines() if ln.startswith("tailnum"))
    assert line.rstrip().endswith("ID-like") and "leave it out of the drift rule" in text
    doc = to_json(c)
    assert doc["summary"]["id_like"] == ["tailnum"]
    assert {f["column"]: f["id_like"] for f in doc["features"]} == {"tailnum": True, "temp": False, "dist": False}
    page = render(c)
    assert "ID-like" in page and "leave it out of the drift rule" in page
    # the monitor's default rules leave it out too (its missingness is still watched)
    m = fastdrift.Monitor(ref_t, window=1000)
    rules = {r.name: r for r in m.evaluator.rules}
    assert rules["feature-drift"].critical.features == ("temp", "dist")
    assert "tailnum" in rules["feature-missingness"].critical.features


def test_id_like_rule():
    from fastdrift.metrics import id_like
    rng = np.random.default_rng(3)

    def col(values, **kw):
        return fastdrift.profile(pa.table({"c": values}), **kw)["c"]

    assert id_like(col([f"req-{i}" for i in range(5000)]))                         # all distinct
    assert id_like(col(rng.integers(0, 4000, 100_000).astype(str)))               # 4,000 x ~25 rows
    assert not id_like(col(rng.integers(0, 200, 100_000).astype(str)))            # 200 countries
    assert not id_like(col(rng.integers(0, 20, 800).astype(str)))                 # small reference
    assert not id_like(col(rng.integers(0, 1000, 1_000_000).astype(str)))         # 1,000 x 1,000 rows
    assert id_like(col([f"u{i}" for i in range(20_000)], max_categories=100))     # beyond the cap
    assert not id_like(col(rng.normal(size=1000)))                                # numeric


def test_saturated_psi_is_marked_and_its_ceiling_is_exact():
    from fastdrift.metrics import psi_ceiling
    ref_t, cur_t = _tail_and_temperature()
    ref = fastdrift.profile(ref_t)
    c = compare(ref, fastdrift.profile(cur_t, reference=ref))
    rows = {r.column: r for r in c.rows}
    temp = rows["temp"]
    assert temp.saturated and not rows["dist"].saturated and not rows["tailnum"].saturated
    # oracle: numpy PSI of the reference deciles against a current all in one bin, eps 1e-4
    p = ref["temp"].histogram.counts / ref["temp"].histogram.counts.sum()
    ceilings = []
    for j in range(p.size):
        q = np.full(p.size, 1e-4)
        q[j] = 1.0
        pp = np.where(p == 0, 1e-4, p)
        ceilings.append(float(np.sum((q - pp) * np.log(q / pp))))
    cur_counts = fastdrift.profile(cur_t, reference=ref)["temp"].histogram.counts
    assert psi_ceiling(ref["temp"].histogram.counts, cur_counts) == pytest.approx(ceilings[int(np.argmax(cur_counts))], rel=1e-12)
    assert max(ceilings) == pytest.approx(8.283, abs=1e-3)
    assert temp.psi >= 0.9 * max(ceilings)
    assert ">=" + f"{temp.psi:.4f}" in format_text(c) and "saturated" in format_text(c)
    assert next(f for f in to_json(c)["features"] if f["column"] == "temp")["saturated"] is True


def _text_of(html_text: str) -> str:
    """The numbers a reader sees: table cells and chart texts (not prose, styles or SVG geometry)."""
    import html as _html
    cells = re.findall(r"<(td|text)[^>]*>(.*?)</\1>", html_text, flags=re.S)
    return _html.unescape(re.sub(r"<[^>]+>", " ", " | ".join(c for _, c in cells)))


def test_report_numbers_are_formatted_for_people(page):
    seen = _text_of(page.read_text())
    # no 15-digit floats, no scientific notation for ordinary magnitudes (>= 1e-4, < 1e15)
    assert not re.findall(r"\d\.\d{8,}|\d{2,}\.\d{5,}", seen), re.findall(r"\S*\d\.\d{8,}\S*", seen)[:5]
    sci = [m for m in re.findall(r"[-+]?\d(?:\.\d+)?e[-+]\d+", seen) if 1e-4 <= abs(float(m)) < 1e15]
    assert not sci, sci[:5]
    assert re.search(r"\b\d{1,3},\d{3}\b", seen)  # thousands separators (incomes, latency in ms)


def test_report_alerts_evidence_once_placeholders_and_latency(comparison):
    text = render(comparison)
    firing = [a for a in comparison.alerts if a.state == "firing"]
    assert len(firing) >= 2 and all(a.evidence for a in firing)
    # the evidence rows once, in their own section, not under every alert
    assert text.count("id='evidence'") == 1 and text.count("Evidence rows (redacted sample)") == 0
    section = text[text.index("id='evidence'"):]
    n_rows = section.count("<tr>") - 1
    assert n_rows == max(len(a.evidence) for a in firing)
    # latency alerts: the latency column is in the evidence, first, slowest rows first
    head = re.findall(r"<th class='l'>([^<]+)</th>", section)
    assert head[0] == "latency_ms" and "score" in head
    lat = [float(x.replace(",", "")) for x in re.findall(r"<tr><td class='l'>([^<]+)</td>", section)]
    assert lat == sorted(lat, reverse=True) and len(lat) == n_rows
    # placeholders are a configuration warning, never shown as the owner
    assert "Configuration warning" in text and "owner: <b>CONFIGURE" not in text
    assert "<i>not configured</i>" in text
    owned = compare(comparison.reference, comparison.current, demo_config(), rules=[
        dict(name="lat", owner="team-serving", runbook="https://wiki/lat", signal="latency", critical=100)])
    t2 = render(owned)
    assert "Configuration warning" not in t2 and "owner: <b>team-serving</b>" in t2
    # a latency alert shows only features that drifted (PSI >= 0.1) as possible causes, never stable ones
    block = text[text.index("latency-p99</h3>"):]
    block = block[:block.index("</div>")]
    stable = [r.column for r in comparison.rows if r.psi < 0.1]
    assert "possible causes" in block and not any(f"<td class='l'>{n}</td>" in block for n in stable)
    calm_cur = fastdrift.profile(make_tables(20_000, seed=5)[0], reference=comparison.reference)
    calm = compare(comparison.reference, calm_cur, demo_config(), rules=[
        dict(name="lat", owner="o", runbook="r", signal="latency", critical=1)])
    t3 = render(calm)
    alerts = t3[t3.index("id='alerts'"):]
    assert [a.rule for a in calm.alerts] == ["lat"] and "No feature drifted" in alerts and "PSI term" not in alerts


def test_psi_chart_keeps_the_thresholds_readable_next_to_a_saturated_psi():
    ref_t, cur_t = _tail_and_temperature()
    ref = fastdrift.profile(ref_t)
    text = render(compare(ref, fastdrift.profile(cur_t, reference=ref)))
    chart = text[text.index('data-chart="psi"'):]
    chart = chart[:chart.index("</svg>")]
    xs = {name: float(x) for x, name in re.findall(r'<text x="([\d.]+)" y="[\d.-]+" font-size="10" fill="#555"[^>]*>(\w+) ', chart)}
    ticks = re.findall(r'text-anchor="middle" font-size="11">([\d.]+)</text>', chart)
    assert ticks[-1] == "1" and "axis clipped at 1" in chart and "axis-break" in chart
    # 0.1 and 0.25 are 15% of the axis apart (440 px plot: 66 px), not 2% as on a 0..10 axis
    assert xs["significant"] - xs["moderate"] > 60
    assert "≥8.28" in chart and "tailnum (ID-like)" in chart


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is not installed: the report's browser test needs it "
                    "(bash tests/system-packages.sh installs it)")
    return exe


def _browse(url: str, tmp: pathlib.Path, *extra):
    profile = tmp / f"chromium-profile-{len(list(tmp.iterdir()))}"
    r = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                       capture_output=True, text=True, timeout=120)
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    return r, console


def _png_pixels(path: pathlib.Path) -> np.ndarray:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) to an (h, w, c) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    c = 3 if ctype == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * c)
    out = np.zeros((h, w * c), np.int32)
    prev = np.zeros(w * c, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # Sub (1), Average (3), Paeth (4) depend on the left neighbour: byte by byte
            cur = np.zeros_like(line)
            for i in range(w * c):
                a = cur[i - c] if i >= c else 0
                b = prev[i]
                cc = prev[i - c] if i >= c else 0
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - cc
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                cur[i] = (line[i] + pred) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, c)[:, :, :3]


def _share_of(px: np.ndarray, color: str) -> float:
    rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(px - rgb).sum(axis=2) < 24).mean())


def test_report_renders_in_chromium_without_console_errors(page, comparison, tmp_path):
    # The check can see errors at all: a page with a script error is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); notDefined();</script></body></html>")
    _, console = _browse(bad.as_uri(), tmp_path, "--dump-dom")
    assert any("boom" in ln for ln in console) and any("notDefined" in ln for ln in console), console

    r, console = _browse(page.as_uri(), tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console == [], console
    dom = r.stdout
    n = len(comparison.rows)
    assert dom.count('data-chart="distribution"') == n and dom.count('data-chart="psi"') == 1
    assert dom.count("<rect") > 20 * n  # the bars are in the rendered document

    shot = artifact_dir() / "fastdrift-report.png"
    if shot.exists():
        shot.unlink()
    r, console = _browse(page.as_uri(), tmp_path, "--window-size=1200,4000", f"--screenshot={shot}")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    assert console == [], console
    px = _png_pixels(shot)
    assert px.shape[:2] == (4000, 1200)
    # the charts are painted: current (orange) and reference (blue, 55% opacity on white) bars are visible
    ref_on_white = "#" + "".join(f"{round(int(REF_COLOR[i:i + 2], 16) * 0.55 + 255 * 0.45):02x}" for i in (1, 3, 5))
    assert _share_of(px, CUR_COLOR) > 0.002, "no current-data bars painted"
    assert _share_of(px, ref_on_white) > 0.002, "no reference bars painted"


def test_batch_comparison_reports_what_a_monitor_reports():
    # the same reference and one window of the same current rows: identical drift signals
    from fastdrift.monitor import Monitor, MonitorConfig, WindowSpec, report_from_profiles
    ref_t, cur_t = make_tables(10_000, seed=9)
    cfg = MonitorConfig(prediction="score", window=WindowSpec(by="rows", size=10_000),
                        background_flush=False)
    core = Monitor(ref_t, config=cfg, rules=[])
    core.update(cur_t)
    (live,) = core.reports()
    ref = fastdrift.profile(ref_t)
    batch, _ = report_from_profiles(ref, fastdrift.profile(cur_t, reference=ref), cfg)
    assert set(batch.features) == set(live.features)
    for n, s in live.features.items():
        b = batch.features[n]
        assert (b.value, b.pvalue, b.n_ref, b.n_cur, b.missing_ref, b.missing_cur) == \
               (s.value, s.pvalue, s.n_ref, s.n_cur, s.missing_ref, s.missing_cur), n
        assert b.contributions == s.contributions, n
    assert batch.prediction.value == live.prediction.value and batch.rows == live.rows


def test_each_signal_is_computed_once_with_one_bin_label(comparison):
    # the drift table, the JSON document and the monitor's report share one computation per column
    from fastdrift.metrics import column_drift
    from fastdrift.report import to_json
    doc = to_json(comparison)
    signals = dict(comparison.report.features, score=comparison.report.prediction)
    for f in doc["features"]:
        assert f["top_bin"] == f["contributions"][0]["label"], f["column"]
        s = signals[f["column"]]
        assert (f["psi"], f["pvalue"]) == (s.value, s.pvalue)
        d = column_drift(comparison.reference.columns[f["column"]], comparison.current.columns[f["column"]])
        assert (d.psi, d.js_distance, d.hellinger, d.top_bin) == \
               (f["psi"], f["js_distance"], f["hellinger"], f["top_bin"])
    income = next(f for f in doc["features"] if f["column"] == "income")
    edges = comparison.reference.columns["income"].histogram.edges
    assert f"{edges[-1]:.6g}" in "".join(c["label"] for c in income["contributions"])


def test_compare_profiles_rows_are_column_drifts(comparison):
    from fastdrift.metrics import ColumnDrift, column_drift
    rows = fastdrift.compare_profiles(comparison.reference, comparison.current)
    assert rows and all(isinstance(r, ColumnDrift) for r in rows)
    assert [r.psi for r in rows] == sorted((r.psi for r in rows), reverse=True)
    for r in rows:
        d = column_drift(comparison.reference.columns[r.column], comparison.current.columns[r.column])
        assert r.psi == d.psi and r.metric("psi") == d.psi and r.metric("js") == d.js_distance
        assert r.top_bin == (d.contributions[0].label if d.contributions else "")


# -- the performance section (profiles with a label column) ----------------------------------------------

@pytest.fixture(scope="module")
def labelled():
    from fastdrift.demo import LABEL, make_labelled_tables
    ref_t, _, concept_t = make_labelled_tables(20_000, seed=5)
    ref = fastdrift.profile(ref_t, label=LABEL, prediction="score")
    return compare(ref, fastdrift.profile(concept_t, reference=ref), demo_config(), ref_label="ref day",
                   cur_label="concept-drift day")


def _section(text: str, name: str) -> str:
    m = re.search(rf"<section id=.{name}.>.*?</section>", text, re.S)
    assert m, name
    return m.group(0)


def test_report_performance_section_table_and_curves(labelled):
    text = render(labelled)
    sec = _section(text, "performance")
    p = labelled.performance
    # the metric table: reference vs current, change, and the label-free estimates, by metric name
    for m in ("roc_auc", "average_precision", "log_loss", "brier", "precision", "recall", "f1", "tp", "fn"):
        assert f"data-metric='{m}'" in sec, m
    auc = f"{p.reference.realized['roc_auc']:.4f}", f"{p.current.realized['roc_auc']:.4f}"
    row = re.search(r"<tr data-metric='roc_auc'>.*?</tr>", sec).group(0)
    assert auc[0] in row and auc[1] in row and "color:" in row  # a loss is marked
    assert "estimated" in sec and "no labels" not in sec
    # inline SVG charts: ROC curve and reliability diagram, one curve per labelled side, with the diagonal
    assert sec.count('data-chart="roc"') == 1 and sec.count('data-chart="reliability"') == 1
    roc = re.search(r'<svg[^>]*data-chart="roc".*?</svg>', sec, re.S).group(0)
    assert roc.count("<polyline") == 2 and "stroke-dasharray" in roc and "false positive rate" in roc
    for pts in re.findall(r'points="([^"]+)"', roc):  # a ROC curve runs from (0, 0) to (1, 1), monotone
        xy = np.array([[float(v) for v in pt.split(",")] for pt in pts.split()])
        assert len(xy) <= 400 and np.all(np.diff(xy[:, 0]) >= -1e-9) and np.all(np.diff(xy[:, 1]) <= 1e-9)
    rel = re.search(r'<svg[^>]*data-chart="reliability".*?</svg>', sec, re.S).group(0)
    assert rel.count("<polyline") == 2 and rel.count("<circle") >= 10
    assert "<script" not in sec.lower()
    # the summary card, and the section's place: after the drift table
    assert "id=\"performance-card\"" in text and text.index("id='drift-table'") < text.index("id='performance'")
    # no performance sketch, no section
    bare = [fastdrift.Profile(p.columns, p.rows) for p in (labelled.reference, labelled.current)]
    assert "id='performance'" not in render(compare(*bare, demo_config()))


def test_report_performance_without_current_labels(labelled):
    from fastdrift.demo import LABEL, make_labelled_tables
    _, drift_t, _ = make_labelled_tables(5_000, seed=6)
    cur = fastdrift.profile(drift_t.drop_columns([LABEL]), reference=labelled.reference)
    c = compare(labelled.reference, cur, demo_config())
    sec = _section(render(c), "performance")
    assert "no labels" in sec and "estimated performance only" in sec
    roc = re.search(r'<svg[^>]*data-chart="roc".*?</svg>', sec, re.S).group(0)
    assert roc.count("<polyline") == 1 and "current: no labels" in roc  # only the reference's curve
    est = re.search(r"<tr data-metric='f1'>.*?</tr>", sec).group(0)
    assert f"{c.performance.current.estimated['f1']:.4f}" in est
    assert "0 labelled, 5,000 unlabelled of 5,000 rows (no labels: estimated performance only)" in format_text(c)


def test_report_performance_renders_in_chromium(labelled, tmp_path):
    text = render(labelled)
    head = text[:text.index("<main>") + len("<main>")]
    page = tmp_path / "performance.html"
    page.write_text(head + _section(text, "performance") + "</main></body></html>", encoding="utf-8")
    r, console = _browse(page.as_uri(), tmp_path, "--dump-dom")
    assert r.returncode == 0 and console == [], (r.stderr[-2000:], console)
    assert r.stdout.count("<polyline") == 4 and r.stdout.count('data-chart="roc"') == 1
    shot = artifact_dir() / "fastdrift-report-performance.png"
    if shot.exists():
        shot.unlink()
    r, console = _browse(page.as_uri(), tmp_path, "--window-size=1200,1400", f"--screenshot={shot}")
    assert r.returncode == 0 and shot.exists() and console == [], r.stderr[-2000:]
    px = _png_pixels(shot)
    # both sides' curves are painted (reference blue, current orange), on this page only by the charts
    assert _share_of(px, CUR_COLOR) > 5e-4, "no current curve painted"
    assert _share_of(px, REF_COLOR) > 5e-4, "no reference curve painted"
