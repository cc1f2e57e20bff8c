"""The ``fastdrift`` command: profile of every format, compare's exit status and JSON, bad input."""
import json
import os
import pathlib
import pty
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import fastdrift
from fastdrift.cli import EXIT_CORRUPT, EXIT_INPUT, EXIT_SCHEMA, EXIT_USAGE, main
from fastdrift.demo import make_tables
from fastdrift.sketches import Profile

ROWS = 20_000


def _plain(t: pa.Table) -> pa.Table:
    """CSV and JSON cannot hold dictionary columns: decode them."""
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns]
    return pa.table(cols, names=t.column_names)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    ref, cur = make_tables(ROWS, seed=11)
    same = make_tables(ROWS, seed=12)[0]  # another undrifted day
    paths = {}
    pq.write_table(ref, d / "ref.parquet", row_group_size=3_000)  # several row groups: the parallel path
    pq.write_table(cur, d / "cur.parquet")
    pq.write_table(same, d / "same.parquet")
    feather.write_feather(ref, d / "ref.arrow", chunksize=4_000)
    pacsv.write_csv(_plain(ref), d / "ref.csv")
    with open(d / "ref.jsonl", "w") as fh:
        for row in _plain(ref).slice(0, 5_000).to_pylist():
            fh.write(json.dumps(row) + "\n")
    hive = d / "hive"
    part = ref.append_column("day", pa.array(np.repeat(["2024-01-01", "2024-01-02"], ROWS // 2)))
    pq.write_to_dataset(part, hive, partition_cols=["day"])
    for k in ("parquet", "arrow", "csv", "jsonl"):
        paths[k] = str(d / f"ref.{k}")
    paths.update(hive=str(hive), cur=str(d / "cur.parquet"), same=str(d / "same.parquet"), dir=str(d))
    return paths


def _run(*args):
    return subprocess.run([sys.executable, "-m", "fastdrift.cli", *args], capture_output=True, text=True)


def _assert_same_profile(got: Profile, want: Profile):
    assert list(got.columns) == list(want.columns)
    assert got.rows == want.rows and got.skipped == want.skipped
    for n, w in want.columns.items():
        g = got[n]
        assert g.kind == w.kind, n
        if w.kind == "numeric":
            np.testing.assert_array_equal(g.histogram.edges, w.histogram.edges, err_msg=n)
            np.testing.assert_array_equal(g.histogram.counts, w.histogram.counts, err_msg=n)
            assert (g.histogram.null_count, g.histogram.nan_count) == (w.histogram.null_count, w.histogram.nan_count)
            gm, wm = g.moments, w.moments
            assert (gm.n, gm.null_count, gm.min, gm.max) == (wm.n, wm.null_count, wm.min, wm.max), n
            assert gm.mean == pytest.approx(wm.mean, rel=1e-12, abs=1e-12)  # merge reassociates sums
            # t-digests merged from fragments: within the merged-digest rank error
            x = w.tdigest.quantile(np.linspace(0.01, 0.99, 25))
            assert np.max(np.abs(g.tdigest.cdf(x) - w.tdigest.cdf(x))) < 5e-3, n
        else:
            assert g.categorical == w.categorical, n


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv", "jsonl", "hive"])
def test_profile_of_files_equals_profile_of_table(data, fmt, tmp_path):
    out = tmp_path / "p.fdp"
    assert main(["profile", data[fmt], "-o", str(out), "-q", "--workers", "2"]) == 0
    got = Profile.from_bytes(out.read_bytes())
    table = ds.dataset(data[fmt], format={"arrow": "ipc", "jsonl": "json", "hive": "parquet"}.get(fmt, fmt),
                       partitioning="hive" if fmt == "hive" else None).to_table()
    _assert_same_profile(got, fastdrift.profile(table))
    if fmt == "hive":
        assert "day" in got.columns  # the partition key is a column


def test_profile_with_config_selects_and_overrides(data, tmp_path):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("features:\n  - income\n  - {name: clicks, kind: categorical}\n"
                   "  - {name: age, bins: 4, strategy: uniform}\nprediction: score\nlatency: latency_ms\n")
    out = tmp_path / "p.fdp"
    assert main(["profile", data["parquet"], "-o", str(out), "-q", "--config", str(cfg)]) == 0
    p = Profile.from_bytes(out.read_bytes())
    assert set(p.columns) == {"income", "clicks", "age", "score", "latency_ms"}
    assert p["clicks"].kind == "categorical"
    t = pq.read_table(data["parquet"])
    want = fastdrift.profile(t, columns=["age"], bins=4, strategy="uniform")
    np.testing.assert_array_equal(p["age"].histogram.edges, want["age"].histogram.edges)
    np.testing.assert_array_equal(p["age"].histogram.counts, want["age"].histogram.counts)


def test_current_profile_on_reference_bins_equals_library(data, tmp_path):
    ref, cur = tmp_path / "ref.fdp", tmp_path / "cur.fdp"
    assert main(["profile", data["parquet"], "-o", str(ref), "-q"]) == 0
    assert main(["profile", data["cur"], "--reference", str(ref), "-o", str(cur), "-q"]) == 0
    r = Profile.from_bytes(ref.read_bytes())
    want = fastdrift.profile(pq.read_table(data["cur"]), reference=r)
    _assert_same_profile(Profile.from_bytes(cur.read_bytes()), want)


def test_compare_exit_status_gates(data, tmp_path):
    ref = tmp_path / "ref.fdp"
    assert main(["profile", data["parquet"], "-o", str(ref), "-q"]) == 0
    # same distribution, another sample: nothing fires
    assert main(["compare", str(ref), data["same"], "-q"]) == 0
    # drifted day: PSI > 0.25 on income and others -> critical under the default rules
    assert main(["compare", str(ref), data["cur"], "-q"]) == 2
    # a rules file with only a warning tier
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: income-psi\n    owner: '#ml'\n    runbook: https://wiki/drift\n"
                     "    signal: feature_drift\n    metric: psi\n    features: [income]\n    warning: 0.1\n")
    assert main(["compare", str(ref), data["cur"], "--rules", str(rules), "-q"]) == 1
    assert main(["compare", str(ref), data["same"], "--rules", str(rules), "-q"]) == 0


def test_compare_json_document(data, tmp_path, capsys):
    ref = tmp_path / "ref.fdp"
    assert main(["profile", data["parquet"], "-o", str(ref), "-q"]) == 0
    capsys.readouterr()
    assert main(["compare", str(ref), data["cur"], "--format", "json", "-q"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["fastdrift"] == "compare/1" and doc["exit_status"] == 2
    assert doc["reference"]["rows"] == ROWS and doc["current"]["rows"] == ROWS
    names = [f["column"] for f in doc["features"]]
    assert set(names) == {"income", "session_length", "age", "tenure_days", "clicks", "country", "device",
                          "is_returning", "score", "latency_ms"}
    by = {f["column"]: f for f in doc["features"]}
    f = by["income"]
    for key in ("kind", "psi", "pvalue", "js_distance", "hellinger", "status", "severity", "missing_ref",
                "missing_cur", "missing_delta", "contributions", "quantiles", "n_ref", "n_cur"):
        assert key in f, key
    assert f["psi"] > 0.25 and f["severity"] == "critical"
    assert len(f["contributions"]) == 10 and {"label", "ref_share", "cur_share", "contribution"} <= set(f["contributions"][0])
    assert f["quantiles"]["q"][3] == 0.5 and f["quantiles"]["shift"][3] > 0
    assert by["device"]["quantiles"] is None
    assert abs(by["age"]["missing_delta"]) < 0.01  # no missingness change injected
    assert by["country"]["severity"] == "critical" and by["session_length"]["severity"] == ""
    crit = [a for a in doc["alerts"] if a["severity"] == "critical" and a["state"] == "firing"]
    assert crit and {"rule", "observed", "thresholds", "owner", "runbook", "top_features"} <= set(crit[0])
    # CUR was data: the alerts carry a redacted sample of its rows, as a monitor's alerts do
    ev = crit[0]["evidence"]
    assert 0 < len(ev) <= 20 and {"income", "country", "score"} <= set(ev[0])
    # sorted by severity: critical rows first
    sev = [f["severity"] for f in doc["features"]]
    rank = {"critical": 2, "warning": 1, "": 0}
    assert sev == sorted(sev, key=lambda s: -rank[s])


def test_compare_data_paths_and_html_output(data, tmp_path):
    out = tmp_path / "r.html"
    assert main(["compare", data["parquet"], data["cur"], "--format", "html", "-o", str(out), "-q"]) == 2
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text


def test_schema_differences_that_are_not_errors_are_signals(data, tmp_path, capsys):
    t = pq.read_table(data["same"])
    t = t.append_column("new_col", pa.array(np.arange(t.num_rows)))
    t = t.set_column(t.schema.get_field_index("clicks"), "clicks", t.column("clicks").cast(pa.float64()))
    p = tmp_path / "cur.parquet"
    pq.write_table(t, p)
    capsys.readouterr()
    code = main(["compare", data["parquet"], str(p), "--format", "json", "-q"])
    doc = json.loads(capsys.readouterr().out)
    changes = {(c["column"], c["change"]) for c in doc["schema_changes"]}
    assert changes == {("new_col", "new"), ("clicks", "type_within_kind")}
    clicks = [c for c in doc["schema_changes"] if c["column"] == "clicks"][0]
    assert (clicks["expected"], clicks["observed"]) == ("int32", "double")
    # the default schema-change rule: a new column or a number read as another number type is a warning
    assert code == 1
    assert [(a["rule"], a["severity"]) for a in doc["alerts"] if a["state"] == "firing"] == \
        [("schema-change", "warning")]


def test_an_empty_current_dataset_fails_the_gate(tmp_path, capsys):
    """Zero rows in CUR is no traffic: exit 2 with the no-traffic alert, not a silent pass."""
    rng = np.random.default_rng(0)
    t = pa.table({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    pq.write_table(t, tmp_path / "ref.parquet")
    pq.write_table(t.slice(0, 0), tmp_path / "empty.parquet")
    capsys.readouterr()
    code = main(["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "empty.parquet"), "--format", "json", "-q"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["exit_status"] == 2
    firing = [a for a in doc["alerts"] if a["state"] == "firing"]
    assert [(a["rule"], a["severity"]) for a in firing] == [("no-traffic", "critical")]
    assert "no rows arrived" in firing[0]["summary"]
    # nothing was compared: no feature reads as drifted
    assert doc["summary"]["drifted"] == [] and {f["status"] for f in doc["features"]} == {"no data"}
    assert main(["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "empty.parquet"), "-q"]) == 2
    assert "no rows arrived" in capsys.readouterr().out


def test_csv_int64_against_a_parquet_double_reference_is_not_critical(tmp_path, capsys):
    """A CSV read infers int64 where the Parquet reference had double: a warning, not a critical page."""
    rng = np.random.default_rng(0)
    ref = pa.table({"x": rng.integers(0, 100, 5000).astype(np.float64), "c": rng.choice(["a", "b"], 5000)})
    pq.write_table(ref, tmp_path / "ref.parquet")
    pacsv.write_csv(pa.table({"x": rng.integers(0, 100, 5000), "c": rng.choice(["a", "b"], 5000)}),
                    tmp_path / "cur.csv")
    capsys.readouterr()
    code = main(["compare", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"), "--format", "json", "-q"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_changes"] == [{"column": "x", "change": "type_within_kind", "expected": "double",
                                      "observed": "int64"}]
    assert code == 1 and [a["severity"] for a in doc["alerts"] if a["state"] == "firing"] == ["warning"]


def _bad(capsys, *argv):
    capsys.readouterr()
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert code not in (0, 1, 2)
    return code, lines[0]


def test_bad_input_is_one_line_with_a_distinct_status(data, tmp_path, capsys):
    ref = tmp_path / "ref.fdp"
    assert main(["profile", data["parquet"], "-o", str(ref), "-q"]) == 0

    code, line = _bad(capsys, "profile", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "x.fdp"))
    assert code == EXIT_INPUT and "nope.parquet" in line and "no such file" in line

    txt = tmp_path / "data.txt"
    txt.write_text("a,b\n1,2\n")
    code, line = _bad(capsys, "compare", str(ref), str(txt))
    assert code == EXIT_INPUT and "data.txt" in line and "unknown file format" in line

    garbage = tmp_path / "broken.parquet"
    garbage.write_bytes(b"this is not parquet at all" * 10)
    code, line = _bad(capsys, "profile", str(garbage), "-o", str(tmp_path / "x.fdp"))
    assert code == EXIT_INPUT and "broken.parquet" in line

    # a value that does not parse, far into a CSV file (after the type was inferred)
    bad_csv = tmp_path / "late.csv"
    bad_csv.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(300_000)) + "oops,1\n")
    code, line = _bad(capsys, "profile", str(bad_csv), "-o", str(tmp_path / "x.fdp"))
    assert code == EXIT_INPUT and "late.csv" in line and "column #0" in line and "'oops'" in line

    t = pq.read_table(data["cur"])
    pq.write_table(t.drop_columns(["income"]), tmp_path / "no_income.parquet")
    code, line = _bad(capsys, "compare", str(ref), str(tmp_path / "no_income.parquet"))
    assert code == EXIT_SCHEMA and "'income'" in line and "missing" in line

    retyped = t.set_column(0, "income", t.column("income").cast(pa.string()))
    pq.write_table(retyped, tmp_path / "retyped.parquet")
    code, line = _bad(capsys, "compare", str(ref), str(tmp_path / "retyped.parquet"))
    assert code == EXIT_SCHEMA and "'income'" in line and "type" in line

    blob = bytearray(ref.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad = tmp_path / "bad.fdp"
    bad.write_bytes(bytes(blob))
    code, line = _bad(capsys, "compare", str(bad), data["cur"])
    assert code == EXIT_CORRUPT and "bad.fdp" in line
    bad.write_bytes(ref.read_bytes()[:100])
    code, line = _bad(capsys, "compare", str(bad), data["cur"])
    assert code == EXIT_CORRUPT and "bad.fdp" in line

    # a current profile with its own deciles cannot be compared on the reference's bins
    own = tmp_path / "own.fdp"
    assert main(["profile", data["cur"], "-o", str(own), "-q"]) == 0
    code, line = _bad(capsys, "compare", str(ref), str(own))
    assert code == EXIT_SCHEMA and "bins" in line

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: x\n    signal: feature_drift\n    warning: 0.1\n")
    code, line = _bad(capsys, "compare", str(ref), data["cur"], "--rules", str(rules))
    assert code == EXIT_INPUT and "owner" in line

    code, line = _bad(capsys, "compare", str(ref))
    assert code == EXIT_USAGE
    code, line = _bad(capsys, "compare", str(ref), data["cur"], "--format", "xml")
    assert code == EXIT_USAGE

    code, line = _bad(capsys, "bench", "--path", str(tmp_path))
    assert code == EXIT_INPUT and "bench/run.py" in line


def test_debug_shows_the_traceback(tmp_path):
    r = _run("--debug", "profile", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "x.fdp"))
    assert r.returncode != 0 and "Traceback" in r.stderr
    r = _run("profile", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "x.fdp"))
    assert r.returncode == EXIT_INPUT and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1


def test_progress_bar_only_on_a_terminal(data, tmp_path):
    # stderr a pipe: no bar at all
    r = _run("profile", data["parquet"], "-o", str(tmp_path / "a.fdp"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    # stderr a real terminal (a pseudo-terminal): the bar, with rows, bytes, rate and ETA
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, "-m", "fastdrift.cli", "profile", data["parquet"], "-o",
                              str(tmp_path / "b.fdp")], stderr=slave, stdout=subprocess.DEVNULL)
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not b:
                break
            chunks.append(b)
        assert p.wait(timeout=60) == 0
    finally:
        os.close(master)
    text = b"".join(chunks).decode()
    assert "\r" in text and f"{ROWS:,}/{ROWS:,} rows (100%)" in text and "rows/s" in text and "ETA" in text
    assert "B/s" in text and "pass 1 (" in text
    # --quiet turns it off on a terminal too
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "fastdrift.cli", "profile", data["parquet"], "-q", "-o",
                          str(tmp_path / "c.fdp")], stderr=slave, stdout=subprocess.DEVNULL)
    os.close(slave)
    assert p.wait(timeout=60) == 0
    try:
        rest = os.read(master, 65536)
    except OSError:
        rest = b""
    os.close(master)
    assert b"rows" not in rest


def test_demo_writes_report_and_exits_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--rows", "20000", "-q"]) == 0
    out = capsys.readouterr().out
    assert "latency-p99" in out and "income" in out
    html = (tmp_path / "fastdrift-demo.html").read_text()
    assert "<svg" in html and "latency" in html


def test_parallel_scan_is_deterministic(data, tmp_path):
    # fragments are merged in fragment order, so thread scheduling cannot change a byte
    outs = []
    for workers in ("1", "2", "4"):
        out = tmp_path / f"w{workers}.fdp"
        assert main(["profile", data["parquet"], "-o", str(out), "-q", "--workers", workers]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_progress_line_without_a_row_count():
    import io
    from fastdrift.cli import Progress
    p = Progress(io.StringIO(), enabled=True)
    assert not p.enabled  # a StringIO is not a terminal
    p.start("pass 1/4", None, total_file_bytes=4_000)
    p.add(1_000, 80_000)
    p.file_done(1_000)
    line = p.line()
    assert "1,000 rows" in line and "rows/s" in line and "B/s" in line and "files 25%" in line and "ETA" in line


def test_bench_runs_the_checkouts_benchmarks(tmp_path):
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, FASTDRIFT_BENCH_JSON=str(tmp_path / "bench.json"))  # not bench/results.json
    r = subprocess.run([sys.executable, "-m", "fastdrift.cli", "bench", "--path", str(root),
                        "-k", "test_moments and not numba"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "values/s" in r.stdout and "test_moments[c]" in r.stdout
    # an unknown option elsewhere is a usage error, not passed anywhere
    assert main(["compare", "a.fdp", "b.fdp", "-k", "x"]) == EXIT_USAGE


def test_several_paths_are_one_dataset_and_profiles_compare(data, tmp_path):
    out = tmp_path / "two.fdp"
    assert main(["profile", data["parquet"], data["same"], "-o", str(out), "-q"]) == 0
    both = pa.concat_tables([pq.read_table(data["parquet"]), pq.read_table(data["same"])])
    _assert_same_profile(Profile.from_bytes(out.read_bytes()), fastdrift.profile(both))
    # profile files on both sides: CUR counted on REF's bins with --reference
    cur = tmp_path / "cur.fdp"
    assert main(["profile", data["cur"], "--reference", str(out), "-o", str(cur), "-q"]) == 0
    assert main(["compare", str(out), str(cur), "-q"]) == 2
    assert main(["compare", str(out), data["same"], "-q"]) == 0


def test_compare_of_two_profile_files_has_schema_changes_and_evidence(data, tmp_path, capsys):
    ref, cur = tmp_path / "ref.fdp", tmp_path / "cur.fdp"
    t = pq.read_table(data["cur"])
    i = t.schema.get_field_index("clicks")
    t = t.set_column(i, "clicks", t.column("clicks").cast(pa.float64())).append_column("extra", pa.array(np.arange(ROWS)))
    pq.write_table(t, tmp_path / "cur.parquet")
    assert main(["profile", data["parquet"], "-o", str(ref), "-q"]) == 0
    assert main(["profile", str(tmp_path / "cur.parquet"), "--reference", str(ref), "--evidence",
                 "-o", str(cur), "-q"]) == 0
    assert "evidence rows" in capsys.readouterr().out
    assert main(["compare", str(ref), str(cur), "--format", "json", "-q"]) == 2
    doc = json.loads(capsys.readouterr().out)
    changes = {(c["column"], c["change"]): c for c in doc["schema_changes"]}
    clicks = changes[("clicks", "type_within_kind")]
    assert clicks["expected"] == "int32" and clicks["observed"] == "double"
    assert ("extra", "new") in changes and len(changes) == 2
    crit = [a for a in doc["alerts"] if a["severity"] == "critical" and a["state"] == "firing"]
    ev = crit[0]["evidence"]
    assert 0 < len(ev) <= 100 and {"income", "country", "score"} <= set(ev[0])
    # the evidence rows are rows of the current data
    incomes = set(t.column("income").to_pylist())
    assert all(row["income"] in incomes for row in ev)
    # without --evidence a profile file carries none; the profile inside reads as a Profile too
    assert main(["profile", str(tmp_path / "cur.parquet"), "--reference", str(ref), "-o", str(cur), "-q"]) == 0
    capsys.readouterr()
    assert main(["compare", str(ref), str(cur), "--format", "json", "-q"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert all(not a["evidence"] for a in doc["alerts"])
    assert Profile.from_bytes(cur.read_bytes()).rows == ROWS


def test_profile_file_round_trip_and_hostile_metadata():
    from fastdrift.errors import CorruptStateError
    from fastdrift.profilefile import ProfileFile
    from fastdrift import codec
    prof = fastdrift.profile(make_tables(1_000, seed=3)[0])
    pf = ProfileFile(prof, {"income": "double", "country": "dictionary<values=string, indices=int32>"},
                     [(2**64 - 1, {"income": 1.5, "country": "DE", "ts": None}), (7, {"income": float("nan")})])
    back = ProfileFile.from_bytes(pf.to_bytes())
    assert back.profile == prof and back.schema == pf.schema
    assert back.evidence[0] == pf.evidence[0] and back.evidence[1][0] == 7 and np.isnan(back.evidence[1][1]["income"])
    bare = ProfileFile.from_bytes(prof.to_bytes())  # files holding a bare profile still read
    assert bare.profile == prof and bare.schema is None and bare.evidence == []

    def forged(meta: str) -> bytes:  # valid envelope and checksum, hostile metadata
        w = codec.Writer()
        w.blob(prof.to_bytes())
        w.string(meta)
        return codec.encode(codec.Kind.PROFILE_FILE, b"", w.getvalue())
    for meta in ("{", "[]", '{"schema": null}', '{"schema": [["a"]], "evidence": []}',
                 '{"schema": [["a", 1]], "evidence": []}', '{"schema": null, "evidence": [["x", {}]]}',
                 '{"schema": null, "evidence": [["' + "9" * 5000 + '", {}]]}',
                 '{"schema": null, "evidence": [["1", [1, 2]]]}', '{"schema": null, "evidence": {}, "x": 1}'):
        with pytest.raises(CorruptStateError):
            ProfileFile.from_bytes(forged(meta))
    blob = pf.to_bytes()
    for cut in (len(blob) - 1, len(blob) // 2, 30):
        with pytest.raises(CorruptStateError):
            ProfileFile.from_bytes(blob[:cut])
