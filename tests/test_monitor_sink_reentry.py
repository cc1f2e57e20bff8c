"""A sink that calls back into its monitor: a clear error for the calls that would wait for the
evaluation the sink runs in (they used to deadlock), current answers for the readers."""
import threading

import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift.errors import InvalidInputError

RULES = [dict(name="psi", signal="feature_drift", warning=0.1, owner="o", runbook="r")]


def _run(feed, calls):
    """Feed a drifting stream to a monitor whose sink makes ``calls``; in a thread, so a deadlock
    fails the test (join timeout) instead of hanging it.  Returns what the sink saw."""
    seen, ref = [], pa.table({"x": np.random.default_rng(0).normal(size=2000)})
    box = {}

    def sink(alert):
        m = box["m"]
        for name in calls:
            try:
                out = getattr(m, name)()
                seen.append((alert.state, name, out))
            except InvalidInputError as exc:
                seen.append((alert.state, name, exc))

    m = box["m"] = fastdrift.Monitor(reference=ref, window=500, sinks=[sink], rules=RULES)
    t = threading.Thread(target=feed, args=(m,), daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the monitor deadlocked on its own sink"
    return m, seen


def _by_update(m):
    m.update(pa.table({"x": np.random.default_rng(1).normal(3, size=1000)}))


def _by_observe(m):
    for v in np.random.default_rng(1).normal(3, size=1000):
        m.observe({"x": float(v)})
    m.flush()


@pytest.mark.parametrize("feed", [_by_update, _by_observe])
def test_a_sink_that_flushes_gets_a_clear_error_not_a_deadlock(feed):
    m, seen = _run(feed, ["flush", "snapshot", "publish"])
    assert [name for _, name, _ in seen] == ["flush", "snapshot", "publish"]  # one alert: psi fires in window 1
    for _, name, out in seen:
        assert isinstance(out, InvalidInputError) and "called from an alert sink" in str(out), (name, out)
    assert len(m.reports()) == 2  # nothing lost: both windows closed and kept
    assert [(a.rule, a.state) for a in m.reports()[0].alerts] == [("psi", "firing")]


@pytest.mark.parametrize("feed", [_by_update, _by_observe])
def test_a_sink_reads_what_was_evaluated_before_its_window(feed):
    m, seen = _run(feed, ["reports", "alerts", "promotion_allowed"])
    got = {name: out for _, name, out in seen}
    assert got["reports"] == ()  # psi fires in the first window: none evaluated before it
    assert all(r.closed for r in got["reports"])
    assert [a.rule for a in got["alerts"]] == ["psi"]  # the transition being sent is already active
    assert got["promotion_allowed"] is True  # a warning rule never blocks promotion
    assert [r.rows for r in m.reports()] == [500, 500]
    # after the sink: the monitor still evaluates and flushes from its own callers
    m.flush()
    assert m.alerts() and m.alerts()[0].rule == "psi"
