"""The per-run estimators bench/perf_gate_study.py's ``levels`` study compares (docs/perf.md, what the outlying
runs are), against brute force, and the property they were measured for: an episode of the whole machine
(every benchmark and the probes of a session slowed alike) cancels in the probe-normalized level and in a
same-run calibration by a reference benchmark, while a whole-run shift of one benchmark alone cancels in
neither.  No timing is measured here: the runs are synthetic."""
import importlib.util
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats as sps

from fastdrift.perf import compare_runs, run_from_timings
from fastdrift.perf.probe import ProbeRecord

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _study():
    spec = importlib.util.spec_from_file_location("perf_gate_study", ROOT / "bench" / "perf_gate_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


STUDY = _study()
NAMES = ["a", "b", "ref"]


def _collection(seed, sessions, machine, own, n=60, with_probes=True):
    """``sessions`` runs of three benchmarks with probes: session ``i``'s rounds and probes all multiplied by
    ``machine[i]`` (an episode of the whole machine), benchmark ``a``'s rounds alone by ``own[i]``; without the
    probes, as pytest-benchmark files from elsewhere."""
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(sessions):
        timings, probes = {}, {}
        for name, scale in zip(NAMES, (1e-3, 2e-3, 5e-4)):
            drift = np.exp(0.05 * np.sin(np.linspace(0, 3, n) + rng.uniform(0, 6)))  # the machine within the run
            x = scale * machine[i] * drift * rng.lognormal(0, 0.03, n) * (own[i] if name == "a" else 1.0)
            at = np.arange(n + 1)
            d_at = np.append(drift, drift[-1])
            probes[name] = ProbeRecord(5e-4 * machine[i] * d_at * rng.lognormal(0, 0.01, n + 1),
                                       1e-3 * machine[i] * d_at * rng.lognormal(0, 0.01, n + 1), at)
            timings[name] = x
        runs.append(run_from_timings(timings, path=f"run{i}", probes=probes if with_probes else None))
    return runs


def _brute_raw_level(x):
    """Mean over the blocks of consecutive rounds of each block's log-median (10 blocks, in round order)."""
    n = x.size
    k = min(10, n // 3)
    return float(np.mean([math.log(np.median(x[j * n // k:(j + 1) * n // k])) for j in range(k)]))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(6, 14))
def test_estimators_match_brute_force_and_the_reference_cancels_exactly(seed, sessions):
    rng = np.random.default_rng(seed)
    machine = rng.lognormal(0, 0.2, sessions)
    own = rng.lognormal(0, 0.05, sessions)
    runs = _collection(seed, sessions, machine, own)
    lv = STUDY.session_levels(runs, NAMES, "ref")
    raw_rounds = {nm: [None] * sessions for nm in NAMES}
    for i, r in enumerate(runs):
        for nm in NAMES:
            raw_rounds[nm][i] = r.benchmarks[nm].values  # sorted: the quantiles need no order
    for nm in NAMES:
        # the quantiles of the rounds: numpy's, on the rounds as given
        assert lv[nm]["q10"] == pytest.approx(np.log([np.quantile(v, 0.1) for v in raw_rounds[nm]]), abs=1e-12)
        # the reference keeps its own level; every other benchmark loses the reference's level of the same session
        for est in ("probe", "raw"):
            want = lv[nm][est] - (lv["ref"][est] if nm != "ref" else 0.0)
            assert lv[nm][f"{est}/ref"] == pytest.approx(want, abs=1e-12)
    # the raw level is the blocks' mean log-median, in round order (brute force on freshly made rounds)
    x = 1e-3 * rng.lognormal(0, 0.1, 47)
    one = run_from_timings({nm: x for nm in NAMES}, probes={nm: ProbeRecord(np.full(48, 5e-4), np.full(48, 1e-3),
                                                                            np.arange(48)) for nm in NAMES})
    assert STUDY.session_levels([one, one], NAMES, "ref")["a"]["raw"][0] == pytest.approx(_brute_raw_level(x),
                                                                                         abs=1e-12)
    # the Spearman correlation the study prints is scipy's
    a, b = lv["a"]["raw"], lv["b"]["raw"]
    assert np.corrcoef(STUDY._ranks(a), STUDY._ranks(b))[0, 1] == pytest.approx(sps.spearmanr(a, b)[0], abs=1e-12)


def test_a_machine_episode_cancels_a_benchmark_of_its_own_does_not():
    sessions = 12
    flat = np.ones(sessions)
    episode = flat.copy()
    episode[[3, 8]] = [1.3, 0.75]  # the whole machine slower, then faster, through two sessions
    base = STUDY.session_levels(_collection(5, sessions, flat, flat), NAMES, "ref")
    mach = STUDY.session_levels(_collection(5, sessions, episode, flat), NAMES, "ref")
    own = STUDY.session_levels(_collection(5, sessions, flat, episode), NAMES, "ref")
    for nm in ("a", "b"):
        # the raw level carries the machine's episode; the probes and the reference both divide it out
        assert mach[nm]["raw"] - base[nm]["raw"] == pytest.approx(np.log(episode), abs=1e-9)
        for est in ("probe", "probe/ref", "raw/ref", "probe-med", "probe-q25"):
            assert mach[nm][est] == pytest.approx(base[nm][est], abs=1e-9), est
    # benchmark a's own whole-run shift is in every estimator: it looks like a change of the code in that run
    for est in ("probe", "probe/ref", "raw/ref", "raw", "q10", "probe-med", "probe-q25"):
        assert own["a"][est] - base["a"][est] == pytest.approx(np.log(episode), abs=1e-9), est
        assert own["b"][est] == pytest.approx(base["b"][est], abs=1e-9)


def test_the_gate_with_probes_ignores_machine_episodes_between_runs():
    # several runs a side, a fifth of the sessions in an episode of the whole machine (30% slower or faster):
    # compared on the probe-normalized levels by ranks (the default), the A/A trials are not flagged and a 10%
    # slowdown of the code is caught in each; the same runs without their probes miss it in some trials
    rng = np.random.default_rng(11)
    caught = caught_raw = false = 0
    trials = 12
    for t in range(trials):
        machine = np.where(rng.random(20) < 0.2, rng.choice([1.3, 0.75], 20), 1.0)
        runs = _collection(100 + t, 20, machine, np.ones(20))
        slow = _collection(100 + t, 20, machine, np.r_[np.ones(10), np.full(10, 1.1)])
        aa = compare_runs(runs[:10], runs[10:], threads=1)
        cmp_ = compare_runs(slow[:10], slow[10:], threads=1)
        row = next(r for r in cmp_.rows if r.benchmark == "a")
        assert row.run_test == "rank" and row.basis == "probe"
        false += any(r.verdict == "regressed" for r in aa.rows)
        caught += row.verdict == "regressed"
        bare = _collection(100 + t, 20, machine, np.r_[np.ones(10), np.full(10, 1.1)], with_probes=False)
        raw = next(r for r in compare_runs(bare[:10], bare[10:], threads=1).rows if r.benchmark == "a")
        assert raw.basis == "raw"
        caught_raw += raw.verdict == "regressed"
    assert false == 0
    assert caught == trials
    assert caught_raw < trials
