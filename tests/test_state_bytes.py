"""Bytes a disk can corrupt: decoded state keeps its invariants (counts capped so that merges cannot
overflow), monitor checkpoints are validated at load, save cleans up its own stale temp files, and a
checkpoint restores its rules.  The mutation fuzz of every serialized kind is tests/test_fuzz_state.py."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import fastdrift
from fastdrift import codec
from fastdrift.errors import CorruptStateError, CountOverflowError
from fastdrift.sketches.base import MAX_COUNT

CAP = MAX_COUNT  # 2**62
TD_CAP = fastdrift.TDigest.MAX_COUNT  # 2**53


def _histogram(counts, specials=(0, 0)):
    edges = np.arange(len(counts) - 1, dtype=np.float64)
    params = codec.Writer().f64_array(edges).getvalue()
    payload = codec.Writer().i64_array(counts).i64_array(specials).getvalue()
    return codec.encode(codec.Kind.HISTOGRAM, params, payload)


def _moments(ints, flts=(0.0, 1.0, 0.0, 0.5, 0.0)):
    return codec.encode(codec.Kind.MOMENTS, b"", codec.Writer().i64_array(ints).f64_array(flts).getvalue())


def _categorical(counts, other=0, null=0):
    params = codec.Writer().u64(100).u8(1).getvalue()
    w = codec.Writer().u64(len(counts))
    for i in range(len(counts)):
        w.string(f"k{i}")
    w.i64_array(counts).u64(other).u64(null)
    return codec.encode(codec.Kind.CATEGORICAL, params, w.getvalue())


def _tdigest(n_finite, nulls=0):
    params = codec.Writer().f64(100.0).u8(2).getvalue()
    w = codec.Writer().uvarint_values(np.array([n_finite, nulls, 0, 0, 0], dtype=object))
    w.f64_values([1.0, 1.0]).uvarint(1).f64_values([1.0]).uvarint_values(np.array([n_finite], dtype=object))
    return codec.encode(codec.Kind.TDIGEST, params, w.getvalue())


@pytest.mark.parametrize("blob", [
    _histogram([2**63 - 1, 0, 0]),
    _histogram([CAP, 1, 0]),                       # each count fine, the sum above the cap
    _histogram([2**62, 2**62, 2**62, 2**62]),      # an int64 sum would wrap to 0
    _histogram([1, 1, 1], specials=(CAP, 0)),
    _moments([CAP, 0, 0, 0, 1]),
    _moments([2**63 - 1, 2**63 - 1, 0, 0, 0]),
    _categorical([CAP, 1]),
    _categorical([2**62, 2**62, 2**62, 2**62]),
    _categorical([1], other=CAP),
    _tdigest(TD_CAP + 1),
    _tdigest(TD_CAP, nulls=1),
    _tdigest(2**62),
], ids=lambda b: codec.decode(b)[0].name)
def test_decoded_counts_above_the_cap_are_corrupt(blob):
    kind = codec.decode(blob)[0]
    cls = {codec.Kind.HISTOGRAM: fastdrift.Histogram, codec.Kind.MOMENTS: fastdrift.Moments,
           codec.Kind.CATEGORICAL: fastdrift.Categorical, codec.Kind.TDIGEST: fastdrift.TDigest}[kind]
    with pytest.raises(CorruptStateError, match="more than|above"):
        cls.from_bytes(blob)


FULL = {  # a sketch holding exactly its cap: decodes; one more value does not fit
    "Histogram": (lambda: fastdrift.Histogram.from_bytes(_histogram([CAP - 3, 1, 1], specials=(1, 0))),
                  lambda: np.array([0.5])),
    "Moments": (lambda: fastdrift.Moments.from_bytes(_moments([CAP - 1, 1, 0, 0, 0])), lambda: np.array([0.5])),
    "Categorical": (lambda: fastdrift.Categorical.from_bytes(_categorical([CAP - 2, 1], null=1)),
                    lambda: pa.array(["k0"])),
    "TDigest": (lambda: fastdrift.TDigest.from_bytes(_tdigest(TD_CAP - 1, nulls=1)), lambda: np.array([0.5])),
}


@pytest.mark.parametrize("kind", sorted(FULL))
def test_update_and_merge_past_the_cap_raise_count_overflow_and_count_nothing(kind):
    make, values = FULL[kind]
    s = make()
    cap = type(s).MAX_COUNT
    assert s.count == cap
    before = s.to_bytes()
    with pytest.raises(CountOverflowError, match="past"):
        s.update(values())
    with pytest.raises(CountOverflowError, match="merging"):
        s.merge(s)
    with pytest.raises(CountOverflowError):
        s.merge(make())
    assert s.to_bytes() == before and s.count == cap  # nothing counted, nothing wrapped


@pytest.mark.parametrize("kind", sorted(FULL))
def test_a_sketch_at_the_cap_merges_an_empty_one_and_one_below_takes_one_value(kind):
    make, values = FULL[kind]
    s = make()
    empty = {"Histogram": lambda: fastdrift.Histogram(s.edges), "Moments": fastdrift.Moments,
             "Categorical": lambda: fastdrift.Categorical(100, key_type="str"),
             "TDigest": lambda: fastdrift.TDigest(100)}[kind]()
    s.merge(empty)
    assert s.count == type(s).MAX_COUNT
    below = empty.copy().update(values())
    assert below.count == 1 and below.merge(empty).count == 1


def test_overflow_error_is_a_fastdrift_error_and_an_overflow_error():
    assert issubclass(CountOverflowError, fastdrift.FastDriftError)
    assert issubclass(CountOverflowError, OverflowError)
    assert fastdrift.CountOverflowError is CountOverflowError


# -- monitor checkpoints are validated at load -------------------------------------------------------

def _table(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(shift, 1, n), "c": pa.array(rng.choice(["a", "b"], n)),
                     "score": rng.random(n)})


def _monitor(seed=0, **kw):
    args = dict(features=["x", "c"], prediction="score", window=100, rules=[])
    args.update(kw)
    m = fastdrift.Monitor(_table(500, seed), **args)
    m.update(_table(250, seed + 1, shift=0.5))  # two closed windows, one open pane of 50 rows
    return m


def _parts(blob):
    kind, params, payload = codec.decode(blob)
    r = codec.Reader(payload)
    ref, panes, rejected, ev, reports = r.blob(), r.blob(), r.u64(), r.blob(), r.string()
    r.done()
    return kind, params, [ref, panes, rejected, ev, reports]


def _build(kind, params, parts):
    ref, panes, rejected, ev, reports = parts
    w = codec.Writer().blob(ref).blob(panes).u64(rejected).blob(ev).string(reports)
    return codec.encode(kind, params, w.getvalue())


@pytest.mark.parametrize("old,new", [('"name": "x"', '"name": "X"'), ('"prediction": "score"', '"prediction": "s"'),
                                     ('"kind": "categorical"', '"kind": "numeric"')])
def test_checkpoint_whose_config_does_not_match_its_reference_is_corrupt(old, new):
    kind, params, parts = _parts(_monitor().to_bytes())
    meta = codec.Reader(params).string()
    assert old in meta
    blob = _build(kind, codec.Writer().string(meta.replace(old, new)).getvalue(), parts)  # a valid checksum
    with pytest.raises(CorruptStateError, match="checkpoint: (feature|prediction)"):
        fastdrift.Monitor.from_bytes(blob)


def test_checkpoint_whose_panes_are_on_other_bins_is_refused_at_load():
    m = _monitor()
    kind, params, parts = _parts(m.to_bytes())
    other = _parts(_monitor(seed=7).to_bytes())[2]  # the same config, a reference with other deciles
    assert other[0] != parts[0]
    parts[0] = other[0]
    with pytest.raises(CorruptStateError, match="does not match the reference.*edges differ"):
        fastdrift.Monitor.from_bytes(_build(kind, params, parts))
    # the panes of the other monitor with this reference, likewise
    kind, params, parts = _parts(m.to_bytes())
    parts[1] = other[1]
    with pytest.raises(CorruptStateError, match="does not match the reference"):
        fastdrift.Monitor.from_bytes(_build(kind, params, parts))


def test_checkpoint_panes_must_fit_the_row_count():
    kind, params, parts = _parts(_monitor().to_bytes())
    r = codec.Reader(parts[1])
    n_open = r.u64()
    assert n_open == 1
    pid = r.i64()
    assert pid == 2  # rows 200..249
    parts[1] = parts[1][:8] + (7).to_bytes(8, "little", signed=True) + parts[1][16:]
    with pytest.raises(CorruptStateError, match="do not match row 250"):
        fastdrift.Monitor.from_bytes(_build(kind, params, parts))
    assert fastdrift.Monitor.from_bytes(_build(*_parts(_monitor().to_bytes())[:2], _parts(_monitor().to_bytes())[2]))


# -- a checkpoint restores its rules -----------------------------------------------------------------

def _readme_block(start):
    import pathlib
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    blocks = text.split("```")
    return next(b for b in blocks if start in b).split("\n", 1)[1]


def _readme_data(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return pa.table({"age": rng.normal(40 + shift, 10, n), "income": rng.lognormal(10 + shift / 10, 1, n),
                     "country": pa.array(rng.choice(["DE", "FR", "US"], n)), "score": rng.random(n),
                     "latency_ms": rng.exponential(5, n)})


@pytest.mark.parametrize("rules", ["literal", "default", "objects"])
def test_readme_monitor_example_saves_and_loads(tmp_path, monkeypatch, rules):
    """README's Monitor block, then docs/monitor.md's ``m = fastdrift.Monitor.load("monitor.ckpt")``: as
    written (rules="alerts.yaml", the README's rule), with the built-in default rules, and with them
    as Rule objects."""
    from fastdrift.alerts import default_rules

    code = _readme_block("m = fastdrift.Monitor(")
    assert 'rules="alerts.yaml")' in code and 'm.save("monitor.ckpt")' in code
    if rules == "default":
        code = code.replace(',\n                      rules="alerts.yaml")', ")")
    elif rules == "objects":
        code = code.replace('rules="alerts.yaml"', 'rules=default_rules(["age", "income", "country"], "score", '
                                                   'True, False)')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "alerts.yaml").write_text(_readme_block("- name: feature-psi"))  # the README's rule file
    ns = {"fastdrift": fastdrift, "default_rules": default_rules, "reference_table": _readme_data(300_000, 0),
          "batch": _readme_data(250_000, 1, shift=8.0)}
    exec(code, ns)
    m = ns["m"]
    assert m.alerts() and m.reports()  # the shifted batch fires
    doc = [line for line in _readme_doc_lines() if "Monitor.load(" in line][0]
    exec(doc.split(";", 1)[1].strip(), ns)  # m = fastdrift.Monitor.load("monitor.ckpt"), no rules=
    m2 = ns["m"]
    assert m2 is not m
    assert m2.evaluator.rules == m.evaluator.rules
    from fastdrift.records import to_json
    same = lambda a, b: repr(to_json(a)) == repr(to_json(b))  # noqa: E731 - NaN fields compare by text
    assert same(m2.alerts(), m.alerts()) and same(m2.reports(), m.reports())
    assert m2.to_bytes() == m.to_bytes()


def _readme_doc_lines():
    import pathlib
    return (pathlib.Path(__file__).parent.parent / "docs" / "monitor.md").read_text().splitlines()


def _with_rules_spec(blob, spec):
    kind, params, payload = codec.decode(blob)
    meta = codec.Reader(params).json()
    meta["rules"] = spec
    return codec.encode(kind, codec.Writer().json(meta).getvalue(), payload)


def test_checkpoint_of_rule_objects_without_stored_rules_needs_rules_unless_they_are_the_defaults():
    from fastdrift.alerts import default_rules
    from fastdrift.errors import InvalidInputError

    feats = ["x", "c"]

    def run(rules):
        m = fastdrift.Monitor(_table(2000, 0), features=feats, prediction="score", window=300, rules=rules)
        for i in range(4):
            m.update(_table(300, 10 + i, shift=3.0))
        assert m.alerts()
        return m

    # as an older fastdrift wrote them: "objects", the Rule objects not stored
    same = run(default_rules(feats, "score", False, False))
    m = fastdrift.Monitor.from_bytes(_with_rules_spec(same.to_bytes(), "objects"))
    assert m.evaluator.rules == same.evaluator.rules and m.alerts() == same.alerts()
    # the default names with other thresholds (seen in the alerts), or other names: rules= is needed
    for rules in (default_rules(feats, "score", False, False, owner="team-x"),
                  [dict(name="mine", signal="feature_drift", warning=0.2, owner="o", runbook="r")]):
        blob = _with_rules_spec(run(rules).to_bytes(), "objects")
        with pytest.raises(InvalidInputError, match="pass rules="):
            fastdrift.Monitor.from_bytes(blob)
        assert fastdrift.Monitor.from_bytes(blob, rules=rules).evaluator.rules == tuple(
            fastdrift.alerts.load_rules(rules))


# -- save removes the temp files of killed saves -------------------------------------------------

def test_save_removes_stale_temp_files_of_its_own_naming_only(tmp_path):
    import os
    import subprocess
    import sys
    import time
    from fastdrift.monitor import monitor as mon

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: the writer of a save killed half-way
    host, now = getattr(mon, "_HOST", "0000beef"), time.time()

    def temp(name, age, content=b"FDSK partial"):
        p = tmp_path / name
        p.write_bytes(content)
        os.utime(p, (now - age, now - age))
        return p

    killed = temp(f".fastdrift-{host}-{dead.pid}-abc123.tmp", 120)           # writer gone, a minute old
    killed_old_layout = temp(".fastdrift-k3j2_x9a.tmp", 2 * 3600)               # mkstemp name, hours old
    alive_ancient = temp(f".fastdrift-{host}-{os.getppid()}-zz.tmp", 2 * 3600)  # untouched for hours
    keep = [
        temp(f".fastdrift-{host}-{dead.pid}-fresh.tmp", 5),           # writer gone, but seconds old
        temp(f".fastdrift-{host}-{os.getppid()}-busy.tmp", 300),       # another process saving now
        temp(f".fastdrift-{host}-{os.getpid()}-mine.tmp", 300),        # another thread of this one
        temp(f".fastdrift-00000000-{dead.pid}-nfs.tmp", 300),          # another host's pid: not ours to judge
        temp("monitor.ckpt.tmp", 10 * 3600),                           # not our naming
        temp(".fastdrift-notes.txt", 10 * 3600),
    ]
    d = tmp_path / ".fastdrift-dir.tmp"
    d.mkdir()
    os.utime(d, (now - 10 * 3600, now - 10 * 3600))
    m = _monitor()
    m.save(tmp_path / "m.ckpt")
    for p in (killed, killed_old_layout, alive_ancient):
        assert not p.exists(), p.name
    for p in keep + [d]:
        assert p.exists(), p.name
    assert fastdrift.Monitor.load(tmp_path / "m.ckpt").to_bytes() == m.to_bytes()
    # the save's own temp file never stays behind
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".fastdrift-") and p not in keep
                  and p != d) == []


def test_alert_state_with_a_window_count_that_would_overflow_is_corrupt():
    from fastdrift.alerts import AlertEvaluator, load_rules

    rules = load_rules([dict(name="psi", signal="feature_drift", warning=0.1, owner="o", runbook="r")])
    kind, params, payload = codec.decode(AlertEvaluator(rules).to_bytes())
    r = codec.Reader(payload)
    r.u8(), r.string()   # past the flag and the last state: the window count follows
    pos = len(payload) - r.remaining
    for n, ok in ((2**62, True), (2**64 - 1, False)):
        blob = codec.encode(kind, params, payload[:pos] + n.to_bytes(8, "little") + payload[pos + 8:])
        if ok:
            assert AlertEvaluator.from_bytes(blob, rules).windows_evaluated == n
        else:
            with pytest.raises(CorruptStateError, match="windows evaluated"):
                AlertEvaluator.from_bytes(blob, rules)


def test_checkpoint_reports_must_be_window_reports():
    import json
    m = _monitor()
    kind, params, parts = _parts(m.to_bytes())
    reports = json.loads(parts[4])
    assert reports
    for bad in ([1.5] + reports, reports[:1] + [{"@t": []}]):
        parts[4] = json.dumps(bad)
        with pytest.raises(CorruptStateError, match="reports must be window reports"):
            fastdrift.Monitor.from_bytes(_build(kind, params, parts))


def test_checkpoint_report_fields_of_the_wrong_type_are_corrupt():
    """Each field is checked against the record's annotation as it is read: a hand-edited or
    damaged report fails at load, naming the field, not later where the field is used."""
    import json
    m = _monitor()
    kind, params, parts = _parts(m.to_bytes())
    reports = json.loads(parts[4])
    assert fastdrift.Monitor.from_bytes(_build(kind, params, parts)).to_bytes() == m.to_bytes()
    for field, value in (("window_end", None), ("rows", "12"), ("rows", 1.5), ("closed", 1),
                         ("error_rate", "NaN"), ("alerts", [])):
        bad = json.loads(json.dumps(reports))
        assert field in bad[0]["f"]
        bad[0]["f"][field] = value
        parts[4] = json.dumps(bad)
        with pytest.raises(CorruptStateError, match=f"invalid reports .*WindowReport.{field}"):
            fastdrift.Monitor.from_bytes(_build(kind, params, parts))


def test_alert_state_of_the_first_layout_with_an_infinite_count_is_corrupt():
    import json
    import pathlib
    import statefuzz
    from fastdrift.alerts import AlertEvaluator, load_rules

    rules = load_rules([dict(name="psi", signal="feature_drift", metric="psi", warning=0.1, critical=0.2,
                             owner="ml-team", runbook="https://runbooks.example/psi")])
    data = (pathlib.Path(__file__).parent / "data" / "golden" / "alert_state_layout1.bin").read_bytes()
    kind, params, payload = codec.decode(data)
    i, n = next((i, n) for i, n in statefuzz._json_docs(payload) if b'"n_ref"' in payload[i + 8:i + 8 + n])
    text = payload[i + 8:i + 8 + n].replace(b'"n_ref": 100', b'"n_ref": 1e999', 1)  # int(inf): OverflowError
    assert json.loads(text)
    blob = codec.encode(kind, params, payload[:i] + len(text).to_bytes(8, "little") + text + payload[i + 8 + n:])
    with pytest.raises(CorruptStateError, match="not a valid alert record"):
        AlertEvaluator.from_bytes(blob, rules)


def test_windows_evaluated_saturates_at_the_decoders_cap():
    from fastdrift.alerts import AlertEvaluator, load_rules
    import statefuzz

    rules = load_rules([dict(name="psi", signal="feature_drift", warning=0.1, owner="o", runbook="r")])
    ev = AlertEvaluator(rules)
    ev.windows_evaluated = 2**62 - 1
    for i in range(3):
        ev.evaluate(statefuzz._report(i, 0.0))
    assert ev.windows_evaluated == 2**62
    assert AlertEvaluator.from_bytes(ev.to_bytes(), rules).windows_evaluated == 2**62


def test_checkpoint_stored_rules_that_do_not_load_are_corrupt():
    m = _monitor(rules=[dict(name="psi", signal="feature_drift", warning=0.1, owner="o", runbook="r")])
    for spec in ({"list": 5}, {"list": [{"name": "x"}]}, {"path": 5}, {"list": [], "path": "a"}):
        with pytest.raises(CorruptStateError, match="checkpoint parameters"):
            fastdrift.Monitor.from_bytes(_with_rules_spec(m.to_bytes(), spec))


def test_checkpoint_with_a_huge_buffer_size_is_corrupt_before_allocating():
    import json
    kind, params, parts = _parts(_monitor().to_bytes())
    meta = json.loads(codec.Reader(params).string())
    for rows in (2**63, 2**40, 2**20 + 1):
        meta["config"]["buffer_rows"] = rows  # preallocated slot arrays: 2**63 raised ValueError, 2**40 MemoryError
        with pytest.raises(CorruptStateError, match="buffer_rows"):
            fastdrift.Monitor.from_bytes(_build(kind, codec.Writer().json(meta).getvalue(), parts))
    with pytest.raises(fastdrift.InvalidInputError, match="buffer_rows"):
        fastdrift.Monitor(_table(100, 0), features=["x"], config={"buffer_rows": 2**21})


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(1, 5000), st.integers(1, 4))
def test_moments_of_one_repeated_value_round_trip(value, n, parts):
    """A constant column's mean is a rounded sum / count that may land an ulp outside [min, max]
    (100 x 0.1 -> 0.10000000000000003): its state must still decode, exactly."""
    from fastdrift import Moments
    m = Moments()
    for chunk in np.array_split(np.full(n, value), parts):
        m.merge(Moments().update(chunk))
    back = Moments.from_bytes(m.to_bytes())
    assert back.to_bytes() == m.to_bytes()
    assert back.count == n and back.min == value == back.max


def test_moments_whose_mean_is_far_outside_min_max_are_corrupt():
    from fastdrift import Moments
    from fastdrift.errors import CorruptStateError
    m = Moments().update(np.array([1.0, 2.0]))
    bad = Moments()
    bad._ints, bad._flts = m._ints.copy(), m._flts.copy()
    bad._flts[3] = 2.0 + 1e-9
    with pytest.raises(CorruptStateError, match="inconsistent"):
        Moments.from_bytes(bad.to_bytes())


def test_moments_of_values_whose_sums_overflow_round_trip():
    from fastdrift import Moments
    for values in ([1e308, 1e308], [-1e308, -1e308, 5.0], [1e200, -1e200]):
        m = Moments().update(np.array(values))
        assert Moments.from_bytes(m.to_bytes()).to_bytes() == m.to_bytes()
