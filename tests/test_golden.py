"""Golden files: bytes written by format version 1 must decode forever, to known contents."""
import math
import pathlib

import pytest

import fastdrift

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden"


def _read(name):
    return (GOLDEN / name).read_bytes()


def test_histogram_v1():
    raw = _read("histogram_v1.bin")
    h = fastdrift.Histogram.from_bytes(raw)
    # data [-1, 0, .5, 1, 2, 3, nan, null] over edges [0, 1, 2]
    assert h.edges.tolist() == [0.0, 1.0, 2.0]
    assert h.counts.tolist() == [1, 2, 1, 2]
    assert (h.nan_count, h.null_count, h.count) == (1, 1, 8)
    assert h.to_bytes() == raw


def test_moments_v1():
    raw = _read("moments_v1.bin")
    m = fastdrift.Moments.from_bytes(raw)
    assert (m.n, m.nan_count, m.posinf_count, m.min, m.max, m.mean) == (3, 1, 1, 1.0, 3.0, 2.0)
    assert m.variance() == pytest.approx(2 / 3)
    assert m.to_bytes() == raw


def test_categorical_v1():
    raw = _read("categorical_str_v1.bin")
    c = fastdrift.Categorical.from_bytes(raw)
    assert c.to_dict() == {"a": 2, "b": 1}
    assert (c.other_count, c.null_count, c.max_categories) == (1, 1, 2)
    assert c.to_bytes() == raw
    raw = _read("categorical_int_v1.bin")
    i = fastdrift.Categorical.from_bytes(raw)
    assert i.to_dict() == {7: 2, -3: 1} and i.key_type == "int"
    assert i.to_bytes() == raw


def test_profile_v1():
    raw = _read("profile_v1.bin")
    p = fastdrift.Profile.from_bytes(raw)
    assert p.rows == 4 and list(p.columns) == ["x", "s"]
    assert p["x"].moments.mean == pytest.approx(1.5) and p["x"].histogram.null_count == 1
    assert p["s"].categorical.to_dict() == {"u": 2, "v": 1}
    assert not math.isnan(p["x"].moments.max)
    assert p.to_bytes() == raw


def test_profile_file_v1():
    from fastdrift.profilefile import ProfileFile
    raw = _read("profile_file_v1.bin")
    f = ProfileFile.from_bytes(raw)
    assert f.schema == {"x": "double", "s": "string"}
    assert f.evidence == [(42, {"x": 0.5, "s": "u"}), (99, {"x": None, "s": "<redacted>"})]
    p = f.profile
    assert p.rows == 4 and list(p.columns) == ["x", "s"] and p["x"].tdigest is None
    assert p["x"].histogram.counts.sum() == 3 and p["x"].histogram.null_count == 1
    assert p["s"].categorical.to_dict() == {"u": 2, "v": 1}
    assert fastdrift.Profile.from_bytes(raw) == p
    assert f.to_bytes() == raw


def test_monitor_checkpoint_with_delayed_labels():
    # tests/data/golden/make_monitor_golden.py:labelled_monitor; the .json is computed from the rows fed
    import json
    raw = _read("monitor_checkpoint_labels.bin")
    want = json.loads((GOLDEN / "monitor_checkpoint_labels.json").read_text())
    m = fastdrift.Monitor.from_bytes(raw)

    def check(rep, w):
        assert (rep.window_start, rep.window_end) == (w["window_start"], w["window_end"])
        assert rep.label_counts["predicted"] == w["predicted"]
        assert rep.label_counts["labelled"] == rep.performance["labelled"] == w["labelled"]
        assert rep.label_coverage == pytest.approx(w["coverage"], rel=1e-12)
        p = rep.performance
        assert (p["tp"], p["fp"], p["tn"], p["fn"]) == (w["tp"], w["fp"], w["tn"], w["fn"])
        assert p["brier"] == pytest.approx(w["brier"], rel=1e-9)

    reps = m.reports()
    assert len(reps) == len(want["reports"])
    for rep, w in zip(reps, want["reports"]):
        check(rep, w)
    check(m.snapshot(), want["snapshot"])
    assert {k: m.snapshot().label_counts[k] for k in want["counts"]} == want["counts"]
    # a version-1 store has no ``unlabelled`` counter (null labels given to observe_label): it loads as 0
    assert m.ingest.label_totals() == {**want["counts"], "unlabelled": 0}
    # written again by today's code (which may add fields), it loads to the same contents
    again = fastdrift.Monitor.from_bytes(m.to_bytes())
    for rep, w in zip(again.reports(), want["reports"]):
        check(rep, w)
    assert again.ingest.label_totals() == {**want["counts"], "unlabelled": 0}
    # the waiting predictions were restored: their labels still join their windows
    for rid, y, _score in want["waiting"]:
        m.observe_label(rid, y, ts=200.0)
    m.flush()
    assert m.ingest.label_totals()["joined"] == want["counts"]["joined"] + 3
    got = {(r.window_start, r.performance["labelled"]) for r in list(m.reports()) + [m.snapshot()]}
    assert got == {(w["window_start"], w["labelled"] + 1) for w in want["reports"] + [want["snapshot"]]}
