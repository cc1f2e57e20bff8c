"""Canary comparisons (Monitor.compare_segments), the canary rules' verdicts, and their state.

Oracles: numpy on the arms' rows (PSI on the reference's bins, exact quantiles, error rates, KPI
moments), RateDifferenceTest / MeanDifferenceTest fed directly, and exact counts for checkpoints
and merges.
"""
import math

import numpy as np
import pyarrow as pa
import pytest

from fastdrift import Monitor
from fastdrift.alerts import ActionSink, load_rules, rules_to_data
from fastdrift.errors import InvalidInputError
from fastdrift.metrics.sequential import MeanDifferenceTest, RateDifferenceTest
from fastdrift.records import SegmentComparison, from_json, to_json

WINDOW = 60
A, B = "arm=stable", "arm=canary"


def _rows(rng, n, t0, share=0.15, kpi_b=1.0, lat_b=1.0, err_b=0.01, shift_b=0.0):
    arm = np.where(rng.random(n) < share, "canary", "stable")
    b = arm == "canary"
    x = rng.normal(0, 1, n) + np.where(b, shift_b, 0.0)
    score = 1 / (1 + np.exp(-x))
    lat = rng.lognormal(np.log(40), 0.4, n) * np.where(b, lat_b, 1.0)
    rev = rng.gamma(2.0, 5.0, n) * np.where(b, kpi_b, 1.0)
    err = rng.random(n) < np.where(b, err_b, 0.01)
    ts = t0 + np.sort(rng.random(n)) * WINDOW
    return pa.table({"x": x, "score": score, "latency_ms": lat, "revenue": rev, "err": err, "arm": arm, "ts": ts})


def _reference(seed=0):
    return _rows(np.random.default_rng(seed), 20_000, 0.0, share=0.0).drop(["arm"])


def _monitor(rules=(), sinks=(), window=None, ref=None):
    return Monitor(ref if ref is not None else _reference(), features=["x"], prediction="score",
                   latency="latency_ms", error="err", kpis=["revenue"], event_time="ts",
                   window=window or {"by": "time", "size": WINDOW}, segment_by=["arm"], rules=list(rules),
                   sinks=sinks)


def _rule(**kw):
    return {"name": "canary", "owner": "ml-platform", "runbook": "https://runbooks/canary", "signal": "canary",
            "baseline": A, "candidate": B, "min_rows": 300, **kw}


def _feed(m, seed, windows, n=5000, **kw):
    rng = np.random.default_rng(seed)
    tables = [_rows(rng, n, 1200.0 + WINDOW * w, **kw) for w in range(windows)]
    for t in tables:
        m.update(t)
    closer = _rows(rng, 10, 1200.0 + WINDOW * (windows + 1))  # closes the last window
    m.update(closer)
    return tables + [closer]


def _psi(edges, a, b, eps=1e-4):
    ca = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1)
    cb = np.bincount(np.searchsorted(edges, b, side="right"), minlength=len(edges) + 1)
    p, q = ca / ca.sum(), cb / cb.sum()
    p, q = np.where(p == 0, eps, p), np.where(q == 0, eps, q)
    return float(np.sum((q - p) * np.log(q / p)))


def test_compare_segments_matches_numpy_on_the_arms_rows():
    m = _monitor()
    tables = _feed(m, 1, 4, kpi_b=0.9, lat_b=1.3, shift_b=0.3)
    reps = [r for r in m.reports() if r.rows]
    assert len(reps) == 4
    edges = {c: m.ingest.ref.profile.columns[c].histogram.edges for c in ("x", "score")}
    rate = RateDifferenceTest(tau=0.01, alternative="greater", margin=0.0, min_n=1000)
    kpi = MeanDifferenceTest(tau=0.05, relative=True, alternative="less", margin=-0.05, min_n=1000)
    for i, t in enumerate(tables[:-1]):
        arm = np.asarray(t["arm"])
        a, b = arm == "stable", arm == "canary"
        c = m.compare_segments(A, B, window=i)
        assert isinstance(c, SegmentComparison) and (c.a, c.b) == (A, B)
        assert (c.rows_a, c.rows_b) == (a.sum(), b.sum())
        assert c.share_b == pytest.approx(b.mean())
        for col in ("x", "score"):
            v = np.asarray(t[col])
            got = c.prediction.value if col == "score" else c.features["x"].value
            assert got == pytest.approx(_psi(edges[col], v[a], v[b]), rel=1e-9)
        lat = np.asarray(t["latency_ms"])
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            for side, mask in (("a", a), ("b", b)):
                est = c.latency[f"{side}_{name}"]
                rank = np.mean(lat[mask] <= est)   # t-digest bound: rank error within 1 point here
                assert abs(rank - q) <= 0.01, (side, name, rank)
            assert c.latency[f"ratio_{name}"] == pytest.approx(c.latency[f"b_{name}"] / c.latency[f"a_{name}"])
        err = np.asarray(t["err"])
        assert c.error_rate["a"] == err[a].mean() and c.error_rate["b"] == err[b].mean()
        rev = np.asarray(t["revenue"])
        rate_r = rate.update((int(err[a].sum()), int(a.sum())), (int(err[b].sum()), int(b.sum())))
        kpi_r = kpi.update((int(a.sum()), rev[a].mean(), rev[a].var()), (int(b.sum()), rev[b].mean(), rev[b].var()))
        assert c.error_rate["n_a"] == rate_r.n_a and c.error_rate["pvalue"] == rate_r.pvalue
        assert c.error_rate["windows"] == rate_r.windows == i + 1
        k = c.kpis["revenue"]
        assert k["a"] == pytest.approx(rev[a].mean(), rel=1e-12) and k["b"] == pytest.approx(rev[b].mean(), rel=1e-12)
        assert k["n_a"] == kpi_r.n_a and k["windows"] == kpi_r.windows
        assert k["estimate"] == pytest.approx(kpi_r.estimate, rel=1e-9)
        assert k["upper"] == pytest.approx(kpi_r.upper, rel=1e-9)
        assert k["pvalue"] == pytest.approx(kpi_r.pvalue, rel=1e-6, abs=1e-300)
        assert from_json(to_json(c)) == c


def test_first_call_feeds_the_windows_whose_sketches_are_kept():
    from fastdrift.metrics.canary import KEPT_WINDOWS
    m = _monitor()
    _feed(m, 11, KEPT_WINDOWS + 3, n=1000)
    c = m.compare_segments(A, B, min_rows=50)
    full = [r for r in m.reports() if r.rows >= 1000]
    assert c.windows == KEPT_WINDOWS - 1 < len(full)  # the newest kept window is empty (before the closer)
    assert len(m._arm_sketches) == KEPT_WINDOWS


def test_each_window_is_fed_once():
    m = _monitor([_rule()])
    _feed(m, 2, 3)
    key = next(iter(m._canary_pairs))
    before = m._canary_pairs[key].to_bytes()
    r = m.reports()[-1]
    with m._lock:
        again = m._canary_window(r)           # a replayed window: compared, not fed again
    assert m._canary_pairs[key].to_bytes() == before
    assert again.comparisons["canary"].windows == r.comparisons["canary"].windows == 3
    m.compare_segments(A, B, min_rows=300)     # the rule's pair: read, not fed
    assert m._canary_pairs[key].to_bytes() == before


def test_sliding_windows_count_each_row_once():
    m = _monitor([_rule()], window={"by": "time", "size": WINDOW, "slide": WINDOW / 3})  # fed from the start
    tables = _feed(m, 3, 4)
    c = m.compare_segments(A, B, min_rows=300)
    arm = np.concatenate([np.asarray(t["arm"]) for t in tables])
    ts = np.concatenate([np.asarray(t["ts"]) for t in tables])
    fed = [r for r in m.reports() if r.rows]
    # the windows fed: the first with rows, then each starting at or after the last one's end
    total, end = 0, -math.inf
    for r in fed:
        if r.window_start >= end:
            inside = (ts >= r.window_start) & (ts < r.window_end)
            total += int(np.sum(inside & (arm == "stable")))
            end = r.window_end
    assert c.error_rate["n_a"] == total
    assert c.error_rate["n_a"] < int(np.sum(arm == "stable"))  # not every overlapping window


def test_aa_canaries_are_not_rolled_back():
    rolled = 0
    for seed in range(4):
        m = _monitor([_rule()])
        _feed(m, 100 + seed, 6, n=4000)
        rolled += sum(r.comparisons["canary"].verdict == "rollback" for r in m.reports() if "canary" in r.comparisons)
        assert not m.alerts()
    assert rolled == 0


def test_degraded_canary_rolled_back_within_two_windows_and_rollback_runs_once():
    calls = []
    sink = ActionSink(rollback=calls.append, min_interval=0)
    m = _monitor([_rule(action="rollback")], sinks=[sink])
    _feed(m, 5, 6, n=5000, kpi_b=0.85)        # 15 % of traffic, a KPI 15 % worse, nothing else
    verdicts = [r.comparisons["canary"].verdict for r in m.reports() if "canary" in r.comparisons]
    assert "rollback" in verdicts[:2], verdicts
    c = m.reports()[-1].comparisons["canary"]
    reason = next(x for x in c.reasons if x.trigger == "kpi:revenue")
    assert reason.observed < -0.05 and reason.threshold == -0.05 and reason.pvalue <= 0.05 and reason.upper < -0.05
    sink.flush()
    assert len(calls) == 1 and calls[0].rule == "canary" and calls[0].severity == "critical"
    assert "kpi:revenue" in calls[0].summary and calls[0].observed["kpi:revenue:pvalue"] <= 0.05
    assert [r.outcome for r in sink.records()] == ["ok"]
    sink.close()


def test_latency_and_psi_triggers():
    m = _monitor([_rule()])
    _feed(m, 6, 2, lat_b=1.6, shift_b=2.0)
    c = [r for r in m.reports() if r.rows > 1000][-1].comparisons["canary"]
    got = {x.trigger for x in c.reasons}
    assert {"p99_ratio", "psi"} <= got and c.verdict == "rollback"


def test_promote_after_clean_windows():
    m = _monitor([_rule(promote_after=3, kpi_drop=0.5)])
    _feed(m, 7, 6, n=5000)
    verdicts = [r.comparisons["canary"].verdict for r in m.reports() if r.rows > 1000]
    assert verdicts[-1] == "promote" and "rollback" not in verdicts and verdicts[0] == "hold"


def test_checkpoint_round_trip_continues_exactly():
    m = _monitor([_rule()])
    _feed(m, 8, 3)
    m.compare_segments(A, B, min_rows=50)  # an ad-hoc pair is kept too
    m2 = Monitor.from_bytes(m.to_bytes())
    assert {k: p.to_bytes() for k, p in m2._canary_pairs.items()} == {k: p.to_bytes() for k, p in m._canary_pairs.items()}
    rng = np.random.default_rng(9)
    more = [_rows(rng, 3000, 1200.0 + WINDOW * w) for w in range(5, 8)]
    for mon in (m, m2):
        for t in more:
            mon.update(t)
    assert {k: p.to_bytes() for k, p in m2._canary_pairs.items()} == {k: p.to_bytes() for k, p in m._canary_pairs.items()}
    assert m2.reports()[-1].comparisons == m.reports()[-1].comparisons


def test_merge_pools_the_pairs_exactly():
    rng = np.random.default_rng(10)
    tables = [_rows(rng, 4000, 1200.0 + WINDOW * w) for w in range(4)]
    closer = _rows(rng, 10, 1200.0 + WINDOW * 6)
    parts = []
    for half in (0, 1):
        m = _monitor([_rule()])
        for t in tables:
            m.update(t.filter(pa.array(np.arange(t.num_rows) % 2 == half)))
        m.update(closer)
        parts.append(m)
    key = next(iter(parts[0]._canary_pairs))
    expect = parts[0]._canary_pairs[key].rate.copy().merge(parts[1]._canary_pairs[key].rate)
    parts[0].merge(parts[1])
    got = parts[0]._canary_pairs[key]
    assert got.rate.to_bytes() == expect.to_bytes()
    arm = np.concatenate([np.asarray(t["arm"]) for t in tables])
    err = np.concatenate([np.asarray(t["err"]) for t in tables])
    (na, ka, _, _), (nb, kb, _, _) = got.rate._arms
    assert (na, ka) == (int(np.sum(arm == "stable")), int(np.sum(err[arm == "stable"])))
    assert (nb, kb) == (int(np.sum(arm == "canary")), int(np.sum(err[arm == "canary"])))


def test_canary_rules_load_validate_and_round_trip():
    rules = load_rules([_rule(kpi_drop=0.1, lower_is_better=["latency_cost"], action="rollback")])
    assert rules[0].canary.triggers.kpi_drop == 0.1 and rules[0].critical.signal == "canary"
    assert load_rules(rules_to_data(rules)) == rules
    with pytest.raises(InvalidInputError, match="'baseline'"):
        load_rules([{k: v for k, v in _rule().items() if k != "baseline"}])
    with pytest.raises(InvalidInputError, match="'psi'.*canary rules only"):
        load_rules([{"name": "x", "owner": "o", "runbook": "r", "signal": "error_rate", "psi": 0.1, "critical": 0.1}])
    with pytest.raises(InvalidInputError, match="alpha"):
        load_rules([_rule(alpha=2)])
    with pytest.raises(InvalidInputError, match="segment_by"):
        Monitor(_reference(), prediction="score", event_time="ts", window={"by": "time", "size": 60}, rules=[_rule()])
    m = _monitor()
    with pytest.raises(InvalidInputError, match="same segment"):
        m.compare_segments(A, A)
    with pytest.raises(InvalidInputError, match="window"):
        m.compare_segments(A, B, window=5)


def test_demo_rolls_the_canary_back_once(tmp_path, monkeypatch, capsys):
    from fastdrift.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--rows", "20000", "-q"]) == 0
    out = capsys.readouterr().out
    canary = out[out.index("Canary rollout"):]
    assert canary.count("[rollback callback] would roll back model version arm=canary") == 1
    assert "kpi:revenue" in canary and "rollback decided 1 time(s): ok by fastdrift demo" in canary
    verdicts = [line.rsplit(": ", 1)[1] for line in canary.splitlines() if line.startswith("  window [")]
    assert verdicts and verdicts[-1] == "rollback" and set(verdicts) <= {"hold", "rollback"}


def test_cli_exit_status_with_canary_verdicts():
    from fastdrift.cli import EXIT_HOLD, EXIT_ROLLBACK, _canary_status
    from fastdrift.records import WindowReport, frozen_mapping

    def rep(*verdicts):
        comps = {f"r{i}": SegmentComparison(A, B, 0, 60, 10, 2, 2 / 12, verdict=v) for i, v in enumerate(verdicts)}
        return WindowReport(0, 60, True, 12, comparisons=frozen_mapping(comps))

    empty = WindowReport(60, 120, True, 0)
    assert {EXIT_ROLLBACK, EXIT_HOLD}.isdisjoint({0, 1, 2, 3, 4, 5, 6, 64})
    assert _canary_status([rep("hold", "rollback"), empty], 1) == EXIT_ROLLBACK
    assert _canary_status([rep("hold")], 2) == 2 and _canary_status([rep("hold")], 0) == EXIT_HOLD
    assert _canary_status([rep("promote")], 0) == 0 and _canary_status([empty], 1) == 1


@pytest.mark.parametrize("kpi_b, want", [(0.85, 10), (1.0, 11)])
def test_aggregate_once_exits_with_the_canary_verdict(tmp_path, capsys, kpi_b, want):
    from fastdrift.cli import main
    spool = tmp_path / "spool"
    rng = np.random.default_rng(20)
    tables = [_rows(rng, 4000, 1200.0 + WINDOW * w, kpi_b=kpi_b) for w in range(4)]
    for i in range(2):
        m = Monitor(_reference(), features=["x"], prediction="score", latency="latency_ms", error="err",
                    kpis=["revenue"], event_time="ts", window={"by": "time", "size": WINDOW}, segment_by=["arm"],
                    rules=[], spool=str(spool), process_id=f"w{i}")
        for t in tables:
            m.update(t.filter(pa.array(np.arange(t.num_rows) % 2 == i)))
        m.update(_rows(rng, 10, 1200.0 + WINDOW * 6))
        m.close()
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: canary, owner: ml, runbook: 'https://r', signal: canary,\n"
                     "     baseline: arm=stable, candidate: arm=canary, min_rows: 300}\n")
    assert main(["aggregate", str(spool), "--once", "--rules", str(rules)]) == want
    out = capsys.readouterr().out
    assert ("canary firing: rollback arm=canary vs arm=stable" in out) == (want == 10)


def test_corrupt_canary_state_is_refused():
    from fastdrift.errors import CorruptStateError
    from fastdrift.metrics.canary import CanaryPair, CanaryTriggers, read_pairs, write_pairs
    p = CanaryPair(A, B, CanaryTriggers())
    data = write_pairs({(A, B, p.triggers): p})
    assert read_pairs(data)[(A, B, p.triggers)].to_bytes() == p.to_bytes()
    for bad in (data[:-3], data + b"x", data.replace(b'"windows": 0', b'"windows": -1'),
                data.replace(b'"alpha": 0.05', b'"alpha": 7.0'), write_pairs({1: p, 2: p})):
        with pytest.raises(CorruptStateError):
            read_pairs(bad)
