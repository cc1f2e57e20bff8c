"""End to end through fastdrift.Monitor with the default rules (issue: false alarms and detection).

1,000 windows of 100k rows drawn from the reference distribution must fire at most one alert;
after a shift that makes decile PSI >= 0.25, the critical drift alert fires within the rule's
``for:`` windows.  Fixed seeds; the figures are printed for the issue note.
"""
import numpy as np
import pyarrow as pa

import fastdrift
from fastdrift.alerts import CallbackSink

ROWS_PER_WINDOW = 100_000
WINDOWS = 1_000
PER_BATCH = 1_000_000


def _batch(rng, n, shift=0.0):
    return pa.table({
        "x0": rng.normal(shift, 1.0, n),
        "x1": rng.exponential(2.0, n),
        # a classifier's score: the sigmoid of a normal logit (a third of beta(2, 5)'s draw time)
        "score": 1.0 / (1.0 + np.exp(-rng.normal(-1.0, 1.0, n))),
    })


def _monitor(fired):
    ref = _batch(np.random.default_rng(1), 200_000)
    sink = CallbackSink(fired.append)
    return fastdrift.Monitor(ref, features=["x0", "x1"], prediction="score",
                             window={"by": "rows", "size": ROWS_PER_WINDOW}, sinks=[sink])


def test_default_rules_do_not_fire_on_reference_traffic():
    fired = []
    m = _monitor(fired)
    rng = np.random.default_rng(2)
    for _ in range(WINDOWS * ROWS_PER_WINDOW // PER_BATCH):
        m.update(_batch(rng, PER_BATCH))
    reports = m.reports()
    assert len(reports) == WINDOWS
    firing = [a for a in fired if a.state == "firing"]
    worst = max(max(s.value for s in r.features.values()) for r in reports)
    print(f"\n{WINDOWS} reference windows of {ROWS_PER_WINDOW} rows: {len(firing)} firing alerts, "
          f"{len(fired)} transitions, max feature PSI {worst:.2e}")
    assert len(firing) <= 1
    assert m.promotion_allowed()


def test_shift_fires_critical_within_for_windows():
    fired = []
    m = _monitor(fired)
    rng = np.random.default_rng(3)
    m.update(_batch(rng, 3 * ROWS_PER_WINDOW))
    assert not [a for a in fired if a.state == "firing"]
    shifted_windows = 0
    for _ in range(10):
        m.update(_batch(rng, ROWS_PER_WINDOW, shift=0.6))
        shifted_windows += 1
        if any(a.state == "firing" and a.severity == "critical" for a in fired):
            break
    last = m.reports()[-1]
    assert last.features["x0"].value >= 0.25
    rule = next(r for r in m.evaluator.rules if r.name == "feature-drift")
    crit = next(a for a in fired if a.state == "firing" and a.severity == "critical" and a.rule == "feature-drift")
    print(f"\nPSI {last.features['x0'].value:.3f}: critical fired after {shifted_windows} shifted windows "
          f"(for: {rule.for_windows})")
    assert shifted_windows <= rule.for_windows
    assert crit.top_features and crit.top_features[0].column == "x0"
    assert not m.promotion_allowed()
