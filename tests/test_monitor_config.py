"""Monitor config files: YAML/TOML loading, validation errors naming the key, rules passed through."""
import pyarrow as pa
import pytest

import fastdrift

from fastdrift.errors import InvalidInputError
from fastdrift.monitor import FeatureSpec, MonitorConfig, WindowSpec, config_from_dict, load_config
from fastdrift.monitor.config import config_to_dict

YAML = """
features:
  - age
  - {name: income, bins: 20, metric: js}
  - {name: country, kind: categorical}
prediction: score
latency: latency_ms
error: failed
request_id: rid
event_time: ts
kpis: [revenue]
window: {by: time, size: 300, slide: 60, allowed_lateness: 30}
evidence: {rate: 0.02, max_rows: 50, drop: [email], hash: [rid]}
rules:
  - {name: psi_high, when: "psi > 0.2", severity: critical}
"""


def test_yaml_and_toml_load_to_equal_configs(tmp_path):
    y = tmp_path / "m.yaml"
    y.write_text(YAML)
    c = load_config(y)
    assert c.features[1] == FeatureSpec("income", bins=20, metric="js")
    assert c.window == WindowSpec(by="time", size=300, slide=60, allowed_lateness=30)
    assert c.evidence.drop == ("email",) and c.kpis == ("revenue",)
    assert c.rules == [{"name": "psi_high", "when": "psi > 0.2", "severity": "critical"}]  # untouched
    t = tmp_path / "m.toml"
    t.write_text('''
prediction = "score"
event_time = "ts"
features = ["age", {name = "income", bins = 20, metric = "js"}]
[window]
by = "time"
size = 300
slide = 60
''')
    c2 = load_config(t)
    assert c2.features == (FeatureSpec("age"), FeatureSpec("income", bins=20, metric="js"))
    assert c2.window.slide == 60
    assert config_from_dict(config_to_dict(c)) == c


@pytest.mark.parametrize("text, key", [
    ("predicton: score\n", "predicton"),
    ("window: {by: rows, size: 100, sise: 3}\n", "window.sise"),
    ("window: {by: days}\n", "window.by"),
    ("window: {size: -5}\n", "window.size"),
    ("window: {size: 100, slide: 30}\n", "window.slide"),
    ("window: {by: time, size: 60}\n", "window.by"),  # no event_time column
    ("features: [{name: a, metric: wasserstein}]\n", "features[0].metric"),
    ("features: [{name: a, bins: 1}]\n", "features[0].bins"),
    ("features: [a, a]\n", "features"),
    ("evidence: {rate: 1.5}\n", "evidence.rate"),
    ("strict: maybe\n", "strict"),
    ("features: [a]\nprediction: a\n", "prediction"),
])
def test_bad_config_names_the_key(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(InvalidInputError) as ei:
        load_config(p)
    assert f"config {key}:" in str(ei.value) and "bad.yaml" in str(ei.value)


def test_unparseable_and_unknown_files(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("features: [a\n")
    with pytest.raises(InvalidInputError, match="invalid YAML"):
        load_config(p)
    q = tmp_path / "x.toml"
    q.write_text("features = [")
    with pytest.raises(InvalidInputError, match="invalid TOML"):
        load_config(q)
    with pytest.raises(InvalidInputError, match="unknown extension"):
        load_config(tmp_path / "x.json")
    with pytest.raises(InvalidInputError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_python_objects_validate_too():
    with pytest.raises(InvalidInputError, match="window.allowed_lateness"):
        MonitorConfig(window=WindowSpec(allowed_lateness=-1))
    with pytest.raises(InvalidInputError, match=r"features\[0\].kind"):
        MonitorConfig(features=(FeatureSpec("a", kind="text"),))


def test_columns_map_the_roles_onto_the_planner():
    c = config_from_dict({"features": ["age", {"name": "country", "kind": "categorical"}], "prediction": "score",
                          "prediction_kind": "categorical", "kpis": ["revenue"], "latency": "latency_ms"})
    spec = c.columns(["ignored"])  # explicit features: the data's names do not add any
    assert list(spec) == ["age", "country", "score", "revenue"]
    assert spec["age"] == dict(kind=None, bins=10, strategy="quantile")
    assert spec["country"]["kind"] == "categorical"
    assert spec["score"] == {"kind": "categorical"} and spec["revenue"] == {"kind": "numeric"}
    assert list(c.columns([], latency=True)) == ["age", "country", "score", "revenue", "latency_ms"]
    every = MonitorConfig(prediction="score", kpis=("revenue",), latency="latency_ms", request_id="rid")
    spec = every.columns(["rid", "b", "score", "a", "latency_ms", "revenue"])
    assert spec == {"b": {}, "a": {}, "score": {"kind": None}, "revenue": {"kind": "numeric"}}
    assert list(MonitorConfig(features=()).columns(["a"])) == []  # no features is not "every column"


def test_resolved_takes_kinds_and_features_from_the_reference():
    ref = fastdrift.profile(pa.table({"a": [1.0, 2.0, 3.0], "s": ["x", "y", "x"], "score": [0.1, 0.2, 0.3]}))
    got = MonitorConfig(prediction="score").resolved(ref)
    assert got.features == (FeatureSpec("a", "numeric"), FeatureSpec("s", "categorical"))
    got = MonitorConfig(features=(FeatureSpec("s", bins=4),)).resolved(ref)
    assert got.features == (FeatureSpec("s", "categorical", bins=4),)


def test_evidence_sample_columns():
    every = MonitorConfig(prediction="score", request_id="rid", latency="lat", kpis=("k",))
    assert list(every.evidence_sample(["a", "score", "lat", "k", "rid", "b"]).columns) == ["a", "b", "score", "lat", "rid"]
    listed = MonitorConfig(features=(FeatureSpec("b"),), prediction="score")
    assert list(listed.evidence_sample(["a", "b"]).columns) == ["b", "score"]
    assert listed.evidence_sample().rate == listed.evidence.rate
