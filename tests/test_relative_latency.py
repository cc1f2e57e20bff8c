"""Latency rules relative to the reference and throughput as a rule signal, end to end through
fastdrift.Monitor, plus the exported throughput gauge and rule validation."""
import math

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.alerts import load_rules
from fastdrift.errors import CorruptStateError, InvalidInputError

OWN = dict(owner="team-serving", runbook="https://runbooks/latency")
REF_ROWS = 50_000
WINDOW = 10_000


def _table(rng, n, scale=1.0, t0=0.0, rate=100.0):
    """Latencies lognormal (ms) times ``scale``; event times ``rate`` rows per second from ``t0``."""
    return pa.table({
        "x": rng.normal(0.0, 1.0, n),
        "latency_ms": rng.lognormal(3.0, 0.5, n) * scale,
        "ts": t0 + np.arange(n) / rate,
    })


def _monitor(rules, ref=None):
    ref = _table(np.random.default_rng(1), REF_ROWS) if ref is None else ref
    return fastdrift.Monitor(ref, features=["x"], latency="latency_ms", event_time="ts",
                             window={"by": "rows", "size": WINDOW}, rules=rules)


def _firing(m, rule):
    return [a for a in m.alerts() if a.rule == rule and a.state == "firing"]


RELATIVE_P99 = dict(name="p99-vs-ref", signal="latency", metric="ratio", quantile=0.99, op=">=",
                    critical=1.1, **OWN)


@pytest.mark.parametrize("scale, fires", [(1.2, True), (1.05, False), (1.0, False)])
def test_relative_p99_fires_at_1_2x_not_at_1_05x(scale, fires):
    ref = _table(np.random.default_rng(1), REF_ROWS)
    m = _monitor(load_rules([RELATIVE_P99]), ref)
    m.update(_table(np.random.default_rng(2), WINDOW, scale=scale))
    (r,) = m.reports()
    ref_p99 = float(np.quantile(ref.column("latency_ms").to_numpy(), 0.99))  # exact oracle
    # the t-digest (compression 100) p99 of 50k values is within 1% of the exact one
    assert r.latency.ref_p99 == pytest.approx(ref_p99, rel=0.01)
    assert r.latency.p99 / r.latency.ref_p99 == pytest.approx(scale, rel=0.05)
    assert bool(_firing(m, "p99-vs-ref")) is fires
    if fires:
        (a,) = _firing(m, "p99-vs-ref")
        assert a.observed["latency:p99:ratio"] == pytest.approx(r.latency.p99 / r.latency.ref_p99)
        assert "reference" in a.summary and "ms" in a.summary


def test_relative_latency_needs_reference_latency():
    ref = _table(np.random.default_rng(1), REF_ROWS).drop(["latency_ms"])
    m = _monitor(load_rules([RELATIVE_P99]), ref)
    m.update(_table(np.random.default_rng(2), WINDOW, scale=5.0))
    (r,) = m.reports()
    assert math.isnan(r.latency.ref_p99) and r.latency.p99 > 0
    assert not _firing(m, "p99-vs-ref")   # no reference to be relative to: never met


def test_throughput_floor_and_ratio_fire_when_the_rate_drops():
    rules = load_rules([
        dict(name="floor", signal="throughput", op="<", critical=50.0, **OWN),
        dict(name="drop", signal="throughput", metric="ratio", op="<", critical=0.5, **OWN),
    ])
    m = _monitor(rules)
    rng = np.random.default_rng(3)
    m.update(_table(rng, WINDOW, t0=1000.0, rate=100.0))       # as fast as the reference
    assert not _firing(m, "floor") and not _firing(m, "drop")
    m.update(_table(rng, WINDOW, t0=2000.0, rate=20.0))        # a fifth of it
    r0, r1 = m.reports()
    # rows / (last - first time), the reference likewise
    assert r0.throughput == pytest.approx(WINDOW / ((WINDOW - 1) / 100.0))
    assert r1.throughput == pytest.approx(WINDOW / ((WINDOW - 1) / 20.0))
    assert r1.throughput_ref == pytest.approx(REF_ROWS / ((REF_ROWS - 1) / 100.0))
    assert _firing(m, "floor") and _firing(m, "drop")
    (a,) = _firing(m, "drop")
    assert a.observed["throughput:ratio"] == pytest.approx(0.2, rel=1e-3)
    assert "rows/s, reference" in a.summary


def test_reference_latency_and_rate_survive_a_checkpoint():
    m = _monitor(load_rules([RELATIVE_P99]))
    m.update(_table(np.random.default_rng(2), WINDOW, scale=1.2))
    back = fastdrift.Monitor.from_bytes(m.to_bytes())
    assert back.ingest.ref.latency == m.ingest.ref.latency
    assert back.ingest.ref.rate == m.ingest.ref.rate
    back.update(_table(np.random.default_rng(4), WINDOW, scale=1.0))
    assert back.reports()[-1].latency.ref_p99 == m.reports()[0].latency.ref_p99


def test_reference_metadata_is_validated():
    from fastdrift import codec
    from fastdrift.monitor.signals import Reference
    ref = _monitor(load_rules([RELATIVE_P99])).ingest.ref
    ref.latency = {"count": 3, "p50": 1.0, "p95": -2.0, "p99": 3.0}
    with pytest.raises(CorruptStateError, match="latency"):
        Reference.from_reader(codec.Reader(ref.to_bytes()))


def test_throughput_gauge_is_exported():
    prometheus_client = pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families
    m = _monitor(load_rules([RELATIVE_P99]))
    m.update(_table(np.random.default_rng(3), WINDOW, rate=40.0))
    reg = prometheus_client.CollectorRegistry(auto_describe=False)
    reg.register(m.prometheus_collector())
    text = prometheus_client.generate_latest(reg).decode()
    got = {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples
           if s.name == "fastdrift_window_throughput_rows_per_second"}
    assert got == {"fastdrift_window_throughput_rows_per_second": pytest.approx(WINDOW / ((WINDOW - 1) / 40.0))}
    assert "# TYPE fastdrift_window_throughput_rows_per_second gauge" in text


@pytest.mark.parametrize("bad, key", [
    (dict(signal="latency", metric="relative"), "metric"),           # kpi_delta's word, not latency's
    (dict(signal="throughput", metric="ms"), "metric"),
    (dict(signal="throughput", max_pvalue=0.01), "max_pvalue"),
    (dict(signal="throughput", relative=True), "relative"),          # not a key: metric ratio is
    (dict(signal="latency", metric="ratio", quantile=0.9), "quantile"),
])
def test_rules_reject_bad_relative_forms(bad, key):
    with pytest.raises(InvalidInputError, match=f"critical.{key}|{key}"):
        load_rules([dict(name="bad", critical=1.1, **OWN, **bad)])


def test_relative_forms_round_trip_and_label():
    rules = load_rules([RELATIVE_P99, dict(name="floor", signal="throughput", op="<", critical=5, **OWN)])
    assert rules[0].thresholds("critical") == {"latency:p99:ratio": 1.1}
    assert rules[1].thresholds("critical") == {"throughput:rows_per_second": 5.0}
    from fastdrift.alerts import rules_to_data
    assert load_rules(rules_to_data(rules)) == rules


def test_prometheus_rules_do_not_translate_relative_latency_as_milliseconds():
    from fastdrift.exporters.promrules import prometheus_rules
    groups, notes = prometheus_rules(load_rules([RELATIVE_P99, dict(RELATIVE_P99, name="abs", metric="ms")]))
    exprs = [a["expr"] for g in groups["groups"] for a in g["rules"] if a.get("alert")]
    # only the absolute rule becomes an alert: a ratio of 1.1 is not 1.1 ms
    assert len(exprs) == 1 and "0.0011" in exprs[0]
    assert any("p99-vs-ref" in n and "not translated" in n for n in notes)


def test_saved_profile_reference_gives_its_latency_digest_not_a_rate():
    ref = _table(np.random.default_rng(1), REF_ROWS)
    m = _monitor(load_rules([RELATIVE_P99]), fastdrift.profile(ref))
    m.update(_table(np.random.default_rng(2), WINDOW, scale=1.2))
    (r,) = m.reports()
    assert r.latency.ref_p99 == pytest.approx(float(np.quantile(ref.column("latency_ms").to_numpy(), 0.99)), rel=0.01)
    assert math.isnan(r.throughput_ref)   # a profile keeps no event-time span
    assert _firing(m, "p99-vs-ref")


def test_non_numeric_reference_latency_is_a_schema_error():
    from fastdrift.errors import SchemaError
    ref = _table(np.random.default_rng(1), 100)
    ref = ref.set_column(1, "latency_ms", pa.array(["slow"] * 100))
    with pytest.raises(SchemaError, match="latency_ms"):
        _monitor(load_rules([RELATIVE_P99]), ref)
