"""The HTML report: self-contained, and rendered by a real browser (headless Chromium) without errors.

The browser test fails (never skips) when Chromium is missing: CI installs it with
``.ci/install-chromium``; locally, ``apt-get install chromium`` (Debian) does the same.
"""
import os
import pathlib
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

import fastdrift
from fastdrift.demo import demo_config, make_tables
from fastdrift.report import compare, render
from fastdrift.report.html import CUR_COLOR, REF_COLOR

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def comparison():
    ref_t, cur_t = make_tables(20_000, seed=5)
    ref = fastdrift.profile(ref_t)
    cur = fastdrift.profile(cur_t, reference=ref)
    return compare(ref, cur, demo_config(), ref_label="ref day", cur_label="drifted day")


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
    assert f"{q.shift[3]:.4g}" in text


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


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is not installed: the report's browser test needs it "
                    "(CI: .ci/install-chromium; Debian: apt-get install chromium)")
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
