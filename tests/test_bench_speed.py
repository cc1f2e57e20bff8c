"""bench/bench_observe_tail.py's reading of the host's speed: the calls take turns one by one, and
the no-op call's median in each window tells whether the host ran the core at full speed there."""
import importlib.util
import pathlib
import re
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tail():
    spec = importlib.util.spec_from_file_location("bench_observe_tail", ROOT / "bench" / "bench_observe_tail.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _parse(line):
    m = re.search(r"at full speed .*?\) (\d+) of (\d+);", line)
    p50 = {k: (float(a) if a != "-" else None, float(b) if b != "-" else None)
           for k, a, b in re.findall(r" (\w+) ([\d.]+|-) / ([\d.]+|-) us", line)}
    return int(m.group(1)), int(m.group(2)), p50


def test_windows_of_the_slowed_host_are_told_apart(tail):
    rate = 100_000
    per = int(tail.WINDOW * rate)
    rng = np.random.default_rng(0)
    # 12 windows: speed factors 1 (full), 1.2 (within FULL_SPEED: still full), 2 (slowed), in stretches
    factor = np.repeat([1.0, 1.0, 1.2, 2.0, 2.0, 2.0, 1.0, 1.0, 2.1, 2.0, 1.0, 1.2], per)
    noise = lambda: rng.uniform(0.95, 1.05, factor.size)  # noqa: E731
    obs, prom, noop = 400 * factor * noise(), 1400 * factor * noise(), 120 * factor * noise()
    full = factor <= tail.FULL_SPEED
    n_full, n, p50 = _parse(tail.full_speed([obs.astype(np.int64), prom.astype(np.int64), noop.astype(np.int64)],
                                            ["obs", "prom", "noop"], rate))
    assert (n_full, n) == (7, 12)
    for name, t in (("obs", obs), ("prom", prom), ("noop", noop)):
        t = t.astype(np.int64)
        assert p50[name] == (round(np.median(t[full]) / 1e3, 2), round(np.median(t[~full]) / 1e3, 2))


def test_a_host_at_one_speed_has_no_slowed_window(tail):
    rate = 100_000
    per = int(tail.WINDOW * rate)
    t = np.full(5 * per + 17, 300, np.int64)  # the calls past the last whole window are left out
    n_full, n, p50 = _parse(tail.full_speed([t, t // 3], ["obs", "noop"], rate))
    assert (n_full, n) == (5, 5)
    assert p50["obs"] == (0.3, None) and p50["noop"] == (0.1, None)
    assert "too few calls" in tail.full_speed([t[:per - 1], t[:per - 1]], ["obs", "noop"], rate)


def test_paced_turns_calls_each_in_turn_and_times_each_call(tail):
    order = []

    def slow(i):  # at least 200 us
        order.append(("a", i))
        time.sleep(0.0002)

    calls = [(slow, lambda i: (i,)), (lambda: order.append(("b", None)), lambda i: ())]
    out = tail.paced_turns(calls, rate=1_000, seconds=0.02)
    assert [len(o) for o in out] == [20, 20]
    assert order == [x for i in range(20) for x in (("a", i), ("b", None))]
    assert (out[0] >= 200_000).all() and (out[1] > 0).all() and np.median(out[1]) < np.median(out[0])
