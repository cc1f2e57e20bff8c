"""ActionSink: callbacks run once per incident, rate-limited, on the sink's own thread, recorded
(in memory and in the alert log), dry-run; as an evaluator, Monitor and Fleet sink.  Real threads,
a real evaluator / monitor / fleet; the callbacks are plain functions recording their calls."""
import dataclasses
import json
import threading

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.alerts import ActionSink, AlertEvaluator, JsonLinesSink, load_rules, rules_to_data
from fastdrift.errors import InvalidInputError
from fastdrift.records import ActionRecord, WindowReport, from_json, to_json


class Calls:
    """A callback recording each call and the thread it ran on."""

    def __init__(self, fail=None, block=None):
        self.alerts, self.threads, self.fail, self.block = [], [], fail, block
        self.started = threading.Event()

    def __call__(self, alert):
        self.started.set()
        if self.block is not None:
            self.block.wait(30)
        self.alerts.append(alert)
        self.threads.append(threading.get_ident())
        if self.fail:
            raise RuntimeError(self.fail)


RULES = [
    {"name": "errors", "owner": "ml", "runbook": "https://rb/errors", "signal": "error_rate",
     "warning": 0.05, "critical": 0.2, "action": "rollback"},
    {"name": "slow", "owner": "ml", "runbook": "https://rb/slow", "signal": "error_rate", "metric": None,
     "critical": 0.5, "action": "throttle"},
    {"name": "quiet", "owner": "ml", "runbook": "https://rb/quiet", "signal": "error_rate", "critical": 0.9},
]


def window(i, error_rate):
    return WindowReport(window_start=10 * i, window_end=10 * (i + 1), closed=True, rows=1000,
                        errors=int(error_rate * 1000), error_rate=error_rate)


_MADE = []


def new_sink(**kw):
    sink = ActionSink(**kw)
    _MADE.append(sink)
    return sink


@pytest.fixture(autouse=True)
def _close_sinks():
    """Stop the worker thread of every sink a test made."""
    yield
    while _MADE:
        sink = _MADE.pop()
        sink.close(30)
        assert not sink.thread.is_alive()


def run(sink, rates, rules=RULES):
    ev = AlertEvaluator(rules, sinks=[sink])
    alerts = [a for i, r in enumerate(rates) for a in ev.evaluate(window(i, r))]
    assert sink.flush(30)
    return alerts


def test_once_per_incident_on_the_sinks_thread():
    rollback = Calls()
    sink = new_sink(rollback=rollback, min_interval=0)
    # incident 1: warning, escalates to critical, stays, resolves; incident 2 opens at window 5
    alerts = run(sink, [0.1, 0.3, 0.3, 0.0, 0.0, 0.1, 0.1])
    assert [(a.rule, a.severity, a.state) for a in alerts if a.rule == "errors"] == [
        ("errors", "warning", "firing"), ("errors", "critical", "firing"), ("errors", "critical", "resolved"),
        ("errors", "warning", "firing")]
    assert [(a.window_start, a.severity) for a in rollback.alerts] == [(0, "warning"), (50, "warning")]
    assert set(rollback.threads) == {sink.thread.ident} and threading.get_ident() not in rollback.threads
    recs = sink.records()
    assert [(r.action, r.rule, r.incident, r.outcome, r.dry_run) for r in recs] == [
        ("rollback", "errors", "errors@0", "ok", False), ("rollback", "errors", "errors@50", "ok", False)]
    assert recs[0].reason == alerts[0].summary and recs[0].owner == "ml" and recs[0].callback == "Calls"
    assert recs[0].actor.startswith("fastdrift@") and recs[0].time.endswith("+00:00")
    sink.close()
    assert not sink.thread.is_alive()
    sink.send(alerts[0])                      # after close: dropped and counted, never queued forever
    assert sink.dropped == 1 and sink.flush(1)


def test_severities_and_states_select_what_acts():
    rollback = Calls()
    sink = new_sink(rollback=rollback, min_interval=0, severities=("critical",))
    run(sink, [0.1, 0.3, 0.3])   # acts on the escalation to critical, within the same incident
    assert [(a.window_start, a.severity) for a in rollback.alerts] == [(10, "critical")]
    assert [r.incident for r in sink.records()] == ["errors@0"]
    with pytest.raises(InvalidInputError, match="states"):
        ActionSink(states=("resolved",))


def test_rate_limit_per_action():
    rollback, throttle = Calls(), Calls()
    sink = new_sink(rollback=rollback, throttle=throttle, min_interval={"rollback": 3600, "throttle": 0})
    # two incidents of "errors" (rollback) and two of "slow" (throttle)
    run(sink, [0.6, 0.0, 0.6])
    assert len(rollback.alerts) == 1 and len(throttle.alerts) == 2
    out = [(r.action, r.incident, r.outcome) for r in sink.records()]
    assert out == [("rollback", "errors@0", "ok"), ("throttle", "slow@0", "ok"),
                   ("rollback", "errors@20", "rate_limited"), ("throttle", "slow@20", "ok")]


def test_a_raising_callback_is_recorded_and_monitoring_goes_on(tmp_path):
    path = tmp_path / "alerts.jsonl"
    alert_log = JsonLinesSink(path)
    rollback, throttle = Calls(fail="cannot reach the deployer"), Calls()
    sink = new_sink(rollback=rollback, throttle=throttle, min_interval=0, log=alert_log)
    ev = AlertEvaluator(RULES, sinks=[alert_log, sink])
    out = [a for i, r in enumerate([0.6, 0.6, 0.0, 0.3]) for a in ev.evaluate(window(i, r))]
    assert sink.flush(30)
    assert ev.sink_failures == {} and ev.windows_evaluated == 4
    recs = sink.records()
    assert [(r.action, r.outcome) for r in recs] == [("rollback", "error"), ("throttle", "ok"), ("rollback", "error")]
    assert recs[0].error == "RuntimeError: cannot reach the deployer" and sink.failures == 2
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    actions = [x for x in lines if x.get("record") == "action"]
    alerts = [x for x in lines if "record" not in x]
    assert len(alerts) == len(out) and [a["rule"] for a in alerts] == [a.rule for a in out]
    assert [(x["action"], x["outcome"], x["error"]) for x in actions] == [
        ("rollback", "error", "RuntimeError: cannot reach the deployer"), ("throttle", "ok", ""),
        ("rollback", "error", "RuntimeError: cannot reach the deployer")]


def test_dry_run_records_without_calling():
    rollback = Calls()
    sink = new_sink(rollback=rollback, dry_run=True)
    run(sink, [0.3, 0.0, 0.3])
    assert rollback.alerts == []
    assert [(r.action, r.outcome, r.dry_run, r.callback) for r in sink.records()] == [
        ("rollback", "dry_run", True, "Calls"), ("rollback", "dry_run", True, "Calls")]


def test_a_slow_callback_never_blocks_the_feeding_thread():
    release = threading.Event()
    rollback = Calls(block=release)
    sink = new_sink(rollback=rollback)
    ev = AlertEvaluator(RULES, sinks=[sink])
    ev.evaluate(window(0, 0.3))
    assert rollback.started.wait(30)
    # the callback is still blocked, yet evaluation carries on and returns
    ev.evaluate(window(1, 0.0))
    ev.evaluate(window(2, 0.0))
    assert rollback.alerts == [] and not release.is_set()
    assert sink.flush(timeout=0.01) is False                 # work still pending behind the blocked callback
    release.set()
    assert sink.flush(30)
    assert len(rollback.alerts) == 1 and [r.outcome for r in sink.records()] == ["ok"]


def test_a_full_queue_drops_and_counts_never_blocks():
    release = threading.Event()
    sink = new_sink(rollback=Calls(block=release), max_queue=1)
    ev = AlertEvaluator(RULES, sinks=[sink])
    for i in range(6):
        ev.evaluate(window(i, 0.3 if i % 2 == 0 else 0.0))
    assert sink.dropped >= 1
    release.set()
    assert sink.flush(30)


def test_rule_mapping_and_canary_verdict_records():
    @dataclasses.dataclass(frozen=True)
    class Verdict:  # the shape of a canary verdict record: a rule, a verdict, a window
        rule: str
        verdict: str
        window_start: int
        window_end: int

    rollback, fallback = Calls(), Calls()
    sink = new_sink(rollback=rollback, fallback=fallback, min_interval=0, rules={"errors": "fallback"})
    run(sink, [0.3])                       # the mapping overrides the rule's own action key
    assert len(fallback.alerts) == 1 and rollback.alerts == []
    for i, v in enumerate(["hold", "rollback", "rollback", "promote", "rollback"]):
        sink.send(Verdict("canary", v, 10 * i, 10 * i + 10))
    assert sink.flush(30)
    assert [a.window_start for a in rollback.alerts] == [10, 40]   # once per incident
    assert [r.incident for r in sink.records() if r.rule == "canary"] == ["canary@10", "canary@40"]


def test_rule_action_key_is_validated_and_kept():
    rules = load_rules(RULES)
    assert [r.action for r in rules] == ["rollback", "throttle", None]
    assert load_rules(rules_to_data(rules)) == rules
    for bad in ("roll back!", 5, ""):
        with pytest.raises(InvalidInputError, match="alert rule 'x': key 'action'"):
            load_rules([{"name": "x", "owner": "o", "runbook": "r", "signal": "error_rate", "critical": 0.1,
                         "action": bad}])
    with pytest.raises(InvalidInputError, match="needs a callable"):
        ActionSink(rollback="deploy.sh")
    with pytest.raises(InvalidInputError, match="min_interval"):
        ActionSink(min_interval=-1)


def test_action_records_round_trip_as_records():
    sink = new_sink(rollback=Calls(), dry_run=True)
    run(sink, [0.3])
    rec = sink.records()[0]
    assert isinstance(rec, ActionRecord) and from_json(json.loads(json.dumps(to_json(rec)))) == rec


# -- as a Monitor and a Fleet sink --------------------------------------------------------------------

def _table(rng, n, shift, t0, t1):
    return pa.table({"x": rng.normal(shift, 1.0, n), "ts": rng.uniform(t0, t1, n)})


DRIFT_RULES = [{"name": "x-drift", "owner": "ml", "runbook": "https://rb", "signal": "feature_drift",
                "metric": "psi", "features": ["x"], "critical": 0.25, "action": "rollback"}]


def test_as_a_monitor_sink_off_the_updating_thread():
    rng = np.random.default_rng(0)
    rollback = Calls()
    sink = new_sink(rollback=rollback)
    m = fastdrift.Monitor(_table(rng, 3000, 0.0, 0, 1), features=["x"], event_time="ts",
                          window={"by": "time", "size": 10}, rules=DRIFT_RULES, sinks=[sink])
    for i in range(4):   # four drifted windows: one incident
        m.update(_table(rng, 500, 3.0, 10 * i, 10 * i + 10))
    m.update(_table(rng, 1, 3.0, 41, 42))
    m.flush()
    assert sink.flush(30)
    fired = [a for r in m.reports() for a in r.alerts]
    assert [(a.rule, a.state) for a in fired] == [("x-drift", "firing")]
    assert rollback.alerts == fired and rollback.threads == [sink.thread.ident] != [threading.get_ident()]
    assert [(r.rule, r.incident, r.outcome) for r in sink.records()] == [("x-drift", "x-drift@0.0", "ok")]
    m.close()


def test_as_a_fleet_sink(tmp_path):
    rng = np.random.default_rng(1)
    ref = _table(rng, 3000, 0.0, 0, 1)
    spool = tmp_path / "spool"
    for i in range(3):
        p = fastdrift.Monitor(ref, features=["x"], event_time="ts", window={"by": "time", "size": 10},
                              rules=[], spool=spool, process_id=f"w{i}")
        p.update(_table(rng, 200, 3.0, 0, 10))
        p.update(_table(rng, 1, 3.0, 10 + i, 11 + i))
        p.close()
    rollback = Calls()
    sink = new_sink(rollback=rollback)
    fleet = fastdrift.Fleet(spool, rules=DRIFT_RULES, sinks=[sink])
    for _ in range(3):   # several reads: one alert, one action
        reps = fleet.reports()
    assert sink.flush(30)
    assert [(a.rule, a.state) for r in reps for a in r.alerts] == [("x-drift", "firing")]
    assert len(rollback.alerts) == 1 and rollback.threads == [sink.thread.ident]
    assert [(r.action, r.outcome) for r in sink.records()] == [("rollback", "ok")]
