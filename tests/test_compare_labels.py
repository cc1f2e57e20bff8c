"""``fastdrift compare --label``: the model's performance on both sides, from files of every format.

Oracle: scikit-learn's metrics on the same files' columns, read back with pyarrow (the rows
with a label in {0, 1} and a finite score).  Exact where the sketch is exact (confusion counts,
log loss and Brier from moments, to float tolerance); ROC AUC and average precision within the
sketch's documented bound (1e-3 at the default bins).
"""
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

import fastdrift
from fastdrift.cli import EXIT_INPUT, EXIT_SCHEMA, EXIT_USAGE, main
from fastdrift.demo import CONCEPT_SEGMENT, LABEL, demo_config, make_labelled_tables
from fastdrift.report import compare, format_text, to_json

ROWS = 20_000
AUC_BOUND = 1e-3  # ROC AUC / average precision from the fine-binned sketch (docs/sketches.md)
BAD = {"two": 37, "minus_one": 23, "nan_score": 19}  # bad rows planted in the reference (rejected)
NULL_LABELS = 41  # rows of the reference whose label has not arrived: unlabelled, not rejected


def _day(seed: int, shift: float = 0.0, bad: bool = False, flip: float = 0.0) -> pa.Table:
    """Scores of a calibrated model on a feature ``x``; labels drawn from the scores."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, ROWS)
    seg = rng.random(ROWS) < 0.5
    score = 1 / (1 + np.exp(-(1.5 * x + rng.normal(0, 0.5, ROWS))))
    y = (rng.random(ROWS) < score).astype(np.int64)
    if flip:  # concept drift: a segment's labels flip, nothing else moves
        y = np.where(seg & (rng.random(ROWS) < flip), 1 - y, y)
    mask = np.zeros(ROWS, bool)
    if bad:
        i = rng.permutation(ROWS)
        a, b, c, d = np.cumsum([BAD["two"], BAD["minus_one"], NULL_LABELS, BAD["nan_score"]])
        y[i[:a]] = 2
        y[i[a:b]] = -1
        mask[i[b:c]] = True
        score[i[c:d]] = np.nan
    return pa.table({"x": x, "segment": pa.array(np.where(seg, "a", "b")), "score": score,
                     "y": pa.array(y, mask=mask)})


def _write(t: pa.Table, path, fmt: str) -> str:
    p = f"{path}.{fmt}"
    if fmt == "parquet":
        pq.write_table(t, p, row_group_size=3_000)  # several row groups: the parallel scan
    elif fmt == "arrow":
        feather.write_feather(t, p, chunksize=4_000)
    else:
        pacsv.write_csv(t, p)
    return p


def _read(p: str) -> pa.Table:
    if p.endswith(".parquet"):
        return pq.read_table(p)
    if p.endswith(".arrow"):
        return feather.read_table(p)
    return pacsv.read_csv(p)


def _oracle(t: pa.Table, threshold: float = 0.5) -> dict:
    """scikit-learn's metrics on the valid rows of a file's columns (a null label: unlabelled)."""
    s = t["score"].to_numpy(zero_copy_only=False).astype(float)
    y = t["y"].cast(pa.float64()).to_numpy(zero_copy_only=False)  # null -> NaN
    ok = np.isfinite(s) & ((y == 0) | (y == 1))
    unlabelled = np.isfinite(s) & np.isnan(y)
    bad = int((~ok & ~unlabelled).sum())
    prediction_rate = (s[ok | unlabelled] >= threshold).mean()  # of every scored row, labelled or not
    s, y = s[ok], y[ok].astype(int)
    pred = s >= threshold
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {"labelled": int(ok.sum()), "bad": bad, "unlabelled": int(unlabelled.sum()),
            "roc_auc": skm.roc_auc_score(y, s), "average_precision": skm.average_precision_score(y, s),
            "log_loss": skm.log_loss(y, s, labels=[0, 1]), "brier": skm.brier_score_loss(y, s),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "precision": skm.precision_score(y, pred, zero_division=0), "recall": skm.recall_score(y, pred),
            "f1": skm.f1_score(y, pred), "positive_rate": y.mean(), "prediction_rate": prediction_rate}


def _assert_matches(realized: dict, want: dict):
    for k in ("tp", "fp", "tn", "fn"):
        assert realized[k] == want[k], k
    for k in ("log_loss", "brier", "precision", "recall", "f1", "positive_rate", "prediction_rate"):
        assert realized[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12), k
    for k in ("roc_auc", "average_precision"):
        assert abs(realized[k] - want[k]) <= AUC_BOUND, (k, realized[k], want[k])


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    d = tmp_path_factory.mktemp("labels")
    tables = {"ref": _day(1, bad=True), "cur": _day(2, shift=0.6), "concept": _day(3, flip=0.8)}
    tables["nolabels"] = tables["cur"].drop_columns(["y"])
    paths = {(name, fmt): _write(t, d / name, fmt) for name, t in tables.items()
             for fmt in ("parquet", "arrow", "csv")}
    return tables, paths, d


def _compare_json(*args):
    r = subprocess.run([sys.executable, "-m", "fastdrift.cli", "compare", *args, "--format", "json", "-q"],
                       capture_output=True, text=True)
    assert r.returncode in (0, 1, 2), r.stderr
    return json.loads(r.stdout), r


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_compare_reports_both_sides_performance_against_sklearn(days, fmt):
    _, paths, _ = days
    ref_p, cur_p = paths["ref", fmt], paths["cur", fmt]
    doc, _ = _compare_json(ref_p, cur_p, "--label", "y", "--prediction", "score")
    perf = doc["performance"]
    assert (perf["prediction"], perf["label"], perf["threshold"]) == ("score", "y", 0.5)
    for side, p in (("reference", ref_p), ("current", cur_p)):
        want = _oracle(_read(p))
        got = perf[side]
        assert got["labelled"] == want["labelled"] and got["rows"] == ROWS, side
        _assert_matches(got["realized"], want)
        # the estimate from scores alone sits beside the realized values (a calibrated model: close)
        assert set(got["estimated"]) >= {"precision", "recall", "f1", "tp", "fp", "tn", "fn"}
        n = got["labelled"]
        for k in ("tp", "fp", "tn", "fn"):  # expected counts within 5 binomial standard deviations
            assert abs(got["estimated"][k] - got["realized"][k]) < 5 * np.sqrt(n * 0.25) + 1, (side, k)
    # the label is never a feature; the prediction is the prediction
    cols = {f["column"]: f for f in doc["features"]}
    assert "y" not in cols and cols["score"]["role"] == "prediction" and "x" in cols


def test_bad_labels_are_counted_and_reported_not_fatal(days):
    tables, paths, _ = days
    doc, r = _compare_json(paths["ref", "parquet"], paths["cur", "parquet"], "--label", "y", "--prediction", "score")
    ref = doc["performance"]["reference"]
    want = _oracle(tables["ref"])
    assert want["bad"] == sum(BAD.values()) and want["unlabelled"] == NULL_LABELS
    # every bad row counted once, under its reason; null labels are rows whose label is late
    assert ref["rejected"]["label_not_binary"] == BAD["two"] + BAD["minus_one"]
    assert ref["rejected"]["score_nan"] == BAD["nan_score"] and sum(ref["rejected"].values()) == want["bad"]
    assert ref["labelled"] == ROWS - want["bad"] - NULL_LABELS
    assert ref["estimated"]["rows"] == ROWS - want["bad"]  # the estimate reads every scored row
    assert doc["performance"]["current"]["rejected"] == {} or sum(doc["performance"]["current"]["rejected"].values()) == 0
    # the text report says so too
    r = subprocess.run([sys.executable, "-m", "fastdrift.cli", "compare", paths["ref", "csv"], paths["cur", "csv"],
                        "--label", "y", "--prediction", "score", "-q"], capture_output=True, text=True)
    assert r.returncode in (0, 1, 2), r.stderr
    # (CSV writes a NaN score as an empty field: read back, it is a null score)
    assert f"reference: {ROWS - want['bad'] - NULL_LABELS:,} labelled, {NULL_LABELS} unlabelled of {ROWS:,} rows; " \
           f"rejected: score_null {BAD['nan_score']}, label_not_binary {BAD['two'] + BAD['minus_one']}" in r.stdout


def test_current_without_labels_gets_estimated_performance_only(days):
    _, paths, _ = days
    doc, _ = _compare_json(paths["ref", "arrow"], paths["nolabels", "arrow"], "--label", "y",
                           "--prediction", "score")
    cur = doc["performance"]["current"]
    assert cur["labelled"] == 0 and cur["rows"] == ROWS and cur["realized"] == {}
    # the estimate is the one a labelled copy of the same rows gets: it never looks at labels
    labelled, _ = _compare_json(paths["ref", "arrow"], paths["cur", "arrow"], "--label", "y", "--prediction", "score")
    assert cur["estimated"] == labelled["performance"]["current"]["estimated"]


def test_profile_files_carry_performance(days, tmp_path):
    tables, paths, _ = days
    ref_f, cur_f = tmp_path / "ref.fdp", tmp_path / "cur.fdp"
    assert main(["profile", paths["ref", "parquet"], "-o", str(ref_f), "--label", "y", "--prediction", "score",
                 "-q"]) == 0
    assert main(["profile", paths["cur", "csv"], "--reference", str(ref_f), "-o", str(cur_f), "-q"]) == 0
    doc, _ = _compare_json(str(ref_f), str(cur_f))  # no flag needed: the files carry it
    direct, _ = _compare_json(paths["ref", "parquet"], paths["cur", "csv"], "--label", "y", "--prediction", "score")
    _assert_same_performance(doc["performance"], direct["performance"])
    _assert_matches(doc["performance"]["current"]["realized"], _oracle(_read(paths["cur", "csv"])))


def _assert_same_performance(a: dict, b: dict):
    """Equal, up to float reassociation of the exact sums (fragments are merged in another grouping)."""
    a, b = dict(a), dict(b)
    for side in ("reference", "current"):
        x, y = dict(a.pop(side)), dict(b.pop(side))
        for part in ("realized", "estimated"):
            assert x.pop(part) == pytest.approx(y.pop(part), rel=1e-12, nan_ok=True), (side, part)
        assert x == y, side
    assert a == b


def test_python_api_equals_the_command_line(days):
    tables, paths, _ = days
    ref = fastdrift.profile(tables["ref"], label="y", prediction="score")
    assert "y" not in ref.columns and ref.performance.label == "y"
    back = fastdrift.Profile.from_bytes(ref.to_bytes())
    assert back == ref and back.performance.sketch == ref.performance.sketch
    cur = fastdrift.profile(_read(paths["cur", "parquet"]), reference=ref)
    c = compare(ref, cur, demo_config().__class__(prediction="score"))
    _assert_matches(dict(c.performance.reference.realized), _oracle(tables["ref"]))
    _assert_matches(dict(c.performance.current.realized), _oracle(tables["cur"]))
    doc, _ = _compare_json(paths["ref", "parquet"], paths["cur", "parquet"], "--label", "y", "--prediction", "score")
    _assert_same_performance(to_json(c)["performance"], doc["performance"])
    text = format_text(c)
    assert "Performance (prediction 'score', label 'y', threshold 0.5" in text and "roc_auc" in text
    # a profile without labels keeps its old bytes: no performance section
    plain = fastdrift.profile(tables["ref"].drop_columns(["y"]))
    assert plain.performance is None and compare(plain, fastdrift.profile(tables["cur"].drop_columns(["y"]),
                                                                          reference=plain)).performance is None


def test_threshold_moves_the_confusion_counts(days):
    from fastdrift.sketches.performance import bin_index
    tables, paths, _ = days
    doc, _ = _compare_json(paths["ref", "parquet"], paths["cur", "parquet"], "--label", "y", "--prediction", "score",
                           "--threshold", "0.7")
    assert doc["performance"]["threshold"] == 0.7
    got, want = doc["performance"]["current"]["realized"], _oracle(tables["cur"], threshold=0.7)
    # off 0.5, the rows of the one bin holding the threshold go by the bin's middle (docs/sketches.md):
    # each count is off by at most that bin's rows of its class
    s, y = tables["cur"]["score"].to_numpy(), tables["cur"]["y"].to_numpy()
    in_bin = bin_index(s, False, 128) == bin_index(np.array([0.7]), False, 128)[0]
    pos, neg = int((in_bin & (y == 1)).sum()), int((in_bin & (y == 0)).sum())
    assert 0 < pos + neg < 200
    for k, slack in (("tp", pos), ("fn", pos), ("fp", neg), ("tn", neg)):
        assert abs(got[k] - want[k]) <= slack, k
    assert got["tp"] + got["fn"] == want["tp"] + want["fn"] and got["fp"] + got["tn"] == want["fp"] + want["tn"]
    assert got["tp"] + got["fp"] < doc["performance"]["current"]["realized"]["labelled"] * 0.6  # it moved from 0.5
    assert main(["compare", paths["ref", "parquet"], paths["cur", "parquet"], "--label", "y", "--prediction", "score",
                 "--threshold", "1.5", "-q"]) == EXIT_USAGE


def test_label_usage_and_schema_errors(days, tmp_path, capsys):
    tables, paths, d = days
    ref, cur = paths["ref", "parquet"], paths["cur", "parquet"]
    assert main(["compare", ref, cur, "--label", "y", "-q"]) == EXIT_USAGE  # no prediction column
    assert "--prediction" in capsys.readouterr().err
    assert main(["compare", ref, cur, "--label", "nope", "--prediction", "score", "-q"]) == EXIT_SCHEMA
    assert "'nope'" in capsys.readouterr().err
    assert main(["compare", ref, cur, "--label", "y", "--prediction", "segment", "-q"]) == EXIT_SCHEMA
    assert "'segment'" in capsys.readouterr().err
    assert main(["compare", ref, cur, "--label", "segment", "--prediction", "score", "-q"]) == EXIT_SCHEMA
    assert "0/1 or boolean labels" in capsys.readouterr().err
    # a profile file without a performance sketch, asked for one
    plain = tmp_path / "plain.fdp"
    assert main(["profile", ref, "-o", str(plain), "-q"]) == 0
    assert main(["compare", str(plain), cur, "--label", "y", "--prediction", "score", "-q"]) == EXIT_INPUT
    assert "no performance sketch" in capsys.readouterr().err
    # labels of another name than the file's
    labelled = tmp_path / "labelled.fdp"
    assert main(["profile", ref, "-o", str(labelled), "--label", "y", "--prediction", "score", "-q"]) == 0
    assert main(["compare", str(labelled), cur, "--label", "x", "--prediction", "score", "-q"]) == EXIT_INPUT


def test_concept_drift_shows_in_performance_not_in_feature_drift(days):
    _, paths, _ = days
    doc, r = _compare_json(paths["ref", "parquet"], paths["concept", "parquet"], "--label", "y",
                           "--prediction", "score")
    # no feature moved: the drift rules are quiet; the performance rule fires
    assert doc["summary"]["drifted"] == [] and r.returncode in (1, 2)
    assert {a["rule"] for a in doc["alerts"] if a["state"] == "firing"} == {"performance-drop"}
    perf = doc["performance"]
    assert perf["concept"] == "performance loss without data drift"
    want = _oracle(_read(paths["concept", "parquet"]))
    _assert_matches(perf["current"]["realized"], want)
    assert perf["current"]["realized"]["roc_auc"] < perf["reference"]["realized"]["roc_auc"] - 0.1
    # the scores did not move, so the label-free estimate cannot see it
    est_r, est_c = perf["reference"]["estimated"]["f1"], perf["current"]["estimated"]["f1"]
    assert abs(est_c - est_r) < 0.02


# -- the demo --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_days():
    return make_labelled_tables(20_000, seed=7)


def test_demo_concept_drift_is_in_performance_not_in_feature_drift(demo_days):
    ref_t, drift_t, concept_t = demo_days
    cfg = demo_config()
    ref = fastdrift.profile(ref_t, label=LABEL, prediction=cfg.prediction)
    concept = compare(ref, fastdrift.profile(concept_t, reference=ref), cfg)
    drifted = compare(ref, fastdrift.profile(drift_t, reference=ref), cfg)
    # concept day: no feature drift, no drift alert; the labels of one segment flipped: the performance rule
    assert concept.drifted == [] and concept.exit_status in (1, 2)
    assert {a.rule for a in concept.alerts if a.state == "firing"} == {"performance-drop"}
    assert concept.report.concept == "performance loss without data drift"
    col, value = CONCEPT_SEGMENT
    seg = np.asarray(concept_t[col].cast(pa.string()).to_pylist()) == value
    assert 0.2 < seg.mean() < 0.4
    s = concept_t["score"].to_numpy()
    auc_ref = skm.roc_auc_score(ref_t[LABEL].to_numpy(zero_copy_only=False), ref_t["score"].to_numpy())
    auc_cur = skm.roc_auc_score(concept_t[LABEL].to_numpy(zero_copy_only=False), s)
    got = concept.performance
    assert abs(got.reference.realized["roc_auc"] - auc_ref) <= AUC_BOUND
    assert abs(got.current.realized["roc_auc"] - auc_cur) <= AUC_BOUND
    assert got.change("roc_auc") < -0.05
    # drifted day: data drift, performance holds (a calibrated model on shifted inputs)
    assert {"income", "country", "score"} <= set(drifted.drifted) and drifted.exit_status == 2
    assert abs(drifted.performance.change("roc_auc")) < 0.03
    assert "performance-drop" not in {a.rule for a in drifted.alerts if a.state == "firing"}
    assert drifted.report.concept == "data drift without performance loss"


def test_demo_prints_and_writes_the_concept_drift(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--rows", "20000", "-q"]) == 0
    out = capsys.readouterr().out
    concept = out[out.index("Concept drift"):]
    assert "columns drifted: none; alert rules firing: performance-drop\n" in concept
    assert "performance loss without data drift" in concept and "roc_auc" in concept
    # the monitor part: the same day through a Monitor, window by window; only the performance rule fires
    live = concept[concept.index("Monitor over the concept-drift day"):]
    assert live.count("performance loss without data drift") == 4
    fired = live.split("alert rules firing: ", 1)[1].split("\n", 1)[0]
    assert fired in ("performance-drop (warning)", "performance-drop (critical)"), fired
    html = (tmp_path / "fastdrift-demo-concept-drift.html").read_text()
    assert "id='performance'" in html and 'data-chart="roc"' in html
    # the main report shows the performance beside the data drift
    main_html = (tmp_path / "fastdrift-demo.html").read_text()
    assert "id='performance'" in main_html


def test_profile_bytes_with_performance_are_validated(days):
    from fastdrift import codec
    from fastdrift.errors import CorruptStateError
    tables, _, _ = days
    ref = fastdrift.profile(tables["ref"], label="y", prediction="score")
    kind, params, payload = codec.decode(ref.to_bytes())
    tail = codec.Writer().u8(1).string("score").string("y").getvalue()
    assert params.endswith(tail)  # the optional section: after the skipped columns
    head = params[:-len(tail)]
    for bad in (head + codec.Writer().u8(9).string("score").string("y").getvalue(),  # unknown section
                head + codec.Writer().u8(1).string("y").string("y").getvalue(),      # label == prediction
                head + codec.Writer().u8(1).string("score").getvalue()):             # truncated
        with pytest.raises(CorruptStateError):
            fastdrift.Profile.from_bytes(codec.encode(kind, bad, payload))
    plain = fastdrift.profile(tables["ref"], columns=list(ref.columns))  # the same columns, no labels
    with pytest.raises(CorruptStateError):  # the section without its sketch
        fastdrift.Profile.from_bytes(codec.encode(kind, params, codec.decode(plain.to_bytes())[2]))
    # merging with a profile that has no performance sketch is refused, not silently dropped
    with pytest.raises(fastdrift.IncompatibleSketchError):
        ref.copy().merge(plain)


def test_the_config_file_names_the_label(days, tmp_path):
    _, paths, _ = days
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("prediction: score\nlabel: y\n")
    doc, _ = _compare_json(paths["ref", "parquet"], paths["cur", "parquet"], "--config", str(cfg))
    flags, _ = _compare_json(paths["ref", "parquet"], paths["cur", "parquet"], "--label", "y", "--prediction", "score")
    _assert_same_performance(doc["performance"], flags["performance"])
    assert main(["compare", paths["ref", "parquet"], paths["cur", "parquet"], "--config", str(cfg),
                 "--label", "x", "-q"]) == EXIT_USAGE  # the flag contradicts the config


def test_a_labelled_profile_is_a_monitor_reference_with_its_performance(demo_days):
    ref_t, _, concept_t = demo_days
    ref = fastdrift.profile(ref_t, label=LABEL, prediction="score")
    m = fastdrift.Monitor(ref, prediction="score", label=LABEL, window=10_000, rules=[])
    try:
        m.update(concept_t)
        (first, second) = [r for r in m.reports() if r.closed]
    finally:
        m.close()
    want = ref.performance.sketch.metrics()
    assert {k: first.performance_ref[k] for k in want} == pytest.approx(want, nan_ok=True)
    est = ref.performance.sketch.estimate(labelled=True)  # beside it: the reference's estimate from its scores
    assert first.performance_ref["estimated_roc_auc"] == pytest.approx(est["roc_auc"], rel=1e-12)
    y, s = concept_t[LABEL].to_numpy(zero_copy_only=False)[:10_000], concept_t["score"].to_numpy()[:10_000]
    assert abs(first.performance["roc_auc"] - skm.roc_auc_score(y, s)) <= AUC_BOUND
    assert first.concept == second.concept == "performance loss without data drift"


def test_compare_reads_margins_with_scores_margin(days, tmp_path):
    tables, _, _ = days
    paths = {}
    for side in ("ref", "cur"):
        t = tables[side]
        s = t["score"].to_numpy(zero_copy_only=False).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            margin = np.log(s) - np.log1p(-s)  # the same model's raw margins (logits)
        paths[side] = str(tmp_path / f"{side}-margin.parquet")
        pq.write_table(t.set_column(t.schema.get_field_index("score"), "score", pa.array(margin)), paths[side])
    # at 0.5 (margin 0) the confusion counts are exact in bins too; another threshold reads its bin's middle
    prob, _ = _compare_json(*_prob_paths(days), "--label", "y", "--prediction", "score")
    marg, _ = _compare_json(paths["ref"], paths["cur"], "--label", "y", "--prediction", "score", "--scores", "margin")
    for side in ("reference", "current"):
        a, b = prob["performance"][side]["realized"], marg["performance"][side]["realized"]
        for k in ("tp", "fp", "tn", "fn", "labelled"):
            assert a[k] == b[k], (side, k)
        for k in ("log_loss", "brier", "precision", "recall"):  # exact sums: to the logit's rounding
            assert b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-9), (side, k)
        for k in ("roc_auc", "average_precision"):  # binned on another scale: each within the bins' bound
            assert abs(b[k] - a[k]) <= 2 * AUC_BOUND, (side, k)
    # read as probabilities, the margins are out of range: rejected, not silently wrong
    wrong, _ = _compare_json(paths["ref"], paths["cur"], "--label", "y", "--prediction", "score")
    assert wrong["performance"]["current"]["rejected"]["score_out_of_range"] > 0


def _prob_paths(days):
    _, paths, _ = days
    return paths["ref", "parquet"], paths["cur", "parquet"]
