"""The pytest hooks of the benchmark gate, registered by the ``fastdrift_pytest`` entry point
when ``--fastdrift-save`` or ``--fastdrift-baseline`` is given (pytest-benchmark installed).

At the end of the session every benchmark that ran is taken from pytest-benchmark, with each
round's timing: ``--fastdrift-save=FILE`` writes them as a run file with the environment
(:func:`fastdrift.perf.runs.write_run`), or a new run file in FILE when it is a directory;
``--fastdrift-baseline=FILE`` (repeatable; a directory stands for its runs) compares them with FILE,
prints the table in the terminal summary and fails the run (exit 1) when a benchmark regressed;
``--fastdrift-current=FILE`` (repeatable, a directory too) adds earlier runs of the code under test
to the current side, so that the comparison is of several runs on each side.

With any of the options (``--fastdrift-probe`` alone included) the machine-speed probes of
:mod:`fastdrift.perf.probe` are taken between every benchmark's rounds: they are saved with
the timings, compared alongside them, and also written to the benchmark's
``extra_info["fastdrift_probe"]`` so that pytest-benchmark's own JSON carries them.  Rounds and
probes are timed with the process's CPU time (``--fastdrift-clock=cpu``, the default, unless
``--benchmark-timer`` is given) or the wall clock (``wall``).
"""
from __future__ import annotations

import os
import time

import pytest

from ..errors import FastDriftError
from .compare import compare_runs, format_table, parse_threshold
from .probe import Interleaver
from .runs import environment, read_baseline, read_runs, run_file_in, run_from_timings, write_run

__all__ = ["Gate"]


def _timer_name(timer) -> str:
    """``time.perf_counter`` -> ``perf_counter``: the clock the rounds and probes were timed with."""
    return str(getattr(timer, "__name__", None) or timer).rsplit(".", 1)[-1]


class Gate:
    """The plugin object: reads the baseline up front (a bad file is a usage error before any
    benchmark runs), saves and compares at session end."""

    def __init__(self, config):
        self.config = config
        self.save = config.getoption("fastdrift_save")
        self.baseline = None
        self.current = []
        self.comparison = None
        self.probes = {}
        self.timer = None
        # the CPU clock unless asked otherwise: on a shared machine the wall clock also counts the
        # time other processes ran, which varies from round to round and from run to run
        explicit = any(str(a).startswith("--benchmark-timer") for a in config.invocation_params.args)
        self.cpu_clock = config.getoption("fastdrift_clock") == "cpu" and not explicit
        try:
            self.threshold = parse_threshold(config.getoption("fastdrift_max_regression"))
            paths = config.getoption("fastdrift_baseline")
            if paths:
                env = environment()  # a baseline directory of several machines: this one's runs
                self.baseline = [r for p in paths for r in read_baseline(p, env)]
            more = config.getoption("fastdrift_current")
            if more and not paths:
                raise pytest.UsageError("fastdrift: --fastdrift-current needs --fastdrift-baseline")
            if more:
                self.current = read_runs(more)
            keep = config.getoption("fastdrift_keep")
            if keep is not None and keep < 1:
                raise pytest.UsageError(f"fastdrift: --fastdrift-keep {keep}: keep at least 1 run")
            self.keep = keep
        except FastDriftError as exc:
            raise pytest.UsageError(f"fastdrift: {exc}") from None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        fx = getattr(item, "funcargs", {}).get("benchmark")
        # pytest-benchmark makes a round's statistics object right before the rounds; wrapping
        # its update() puts the probes between rounds, outside every round's timing
        make = getattr(fx, "_make_stats", None)
        il = None
        if fx is not None and getattr(fx, "enabled", False) and callable(make):
            if self.cpu_clock:
                fx._timer = time.process_time
            il = Interleaver(timer=getattr(fx, "_timer", None) or time.perf_counter)  # the benchmark's clock
            self.timer = _timer_name(il.timer)

            def make_stats(iterations):
                st = make(iterations)
                update = st.update

                def update_then_probe(duration):
                    update(duration)
                    il.after_round(duration)
                st.update = update_then_probe
                il.start()
                return st
            fx._make_stats = make_stats
        yield
        if il is not None:
            rec = il.finish()
            if rec is not None:
                self.probes[fx.fullname] = rec
                fx.extra_info["fastdrift_probe"] = rec.to_dict()

    def _timings(self):
        # pytest-benchmark keeps its results on its session object; it has no public accessor
        bs = getattr(self.config, "_benchmarksession", None)
        timings, per_call = {}, {}
        for b in getattr(bs, "benchmarks", ()):
            data = list(getattr(b.stats, "data", ()) or ())
            if not data:
                continue
            timings[b.fullname] = data
            n = (b.extra_info or {}).get("n")
            if isinstance(n, (int, float)) and n > 0:
                per_call[b.fullname] = float(n)
        return timings, per_call

    @pytest.hookimpl(trylast=True)
    @pytest.hookimpl(optionalhook=True)
    def pytest_benchmark_update_machine_info(self, config, machine_info):
        """pytest-benchmark's JSON records this environment too (``machine_info["fastdrift"]``: the CPU
        with its family and model, the libraries, the kernel build and SIMD path), so that a run
        read from that JSON (``fastdrift bench``'s current runs) is checked against a saved run's
        environment key for key."""
        machine_info["fastdrift"] = environment()

    def pytest_sessionfinish(self, session, exitstatus):
        timings, per_call = self._timings()
        env = environment()
        if self.timer:
            env["timer"] = self.timer
        if self.save:
            if self.save.endswith(("/", os.sep)) or os.path.isdir(self.save):
                self.save = run_file_in(self.save, self.keep)  # a directory accumulating runs
            write_run(self.save, timings, env, per_call, probes=self.probes)
        if self.baseline is not None:
            cur = run_from_timings(timings, env, path="this run", per_call=per_call, probes=self.probes)
            self.comparison = compare_runs(self.baseline, self.current + [cur], self.threshold)
            if self.comparison.regressed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        if self.save:
            tr.write_line(f"fastdrift: saved the timings and the environment to {self.save}")
        if self.comparison is not None:
            tr.write_sep("-", "fastdrift benchmark gate")
            tr.write_line(format_table(self.comparison))
            bad = self.comparison.regressed
            if bad:
                tr.write_line(f"fastdrift: FAILED: {len(bad)} benchmark(s) regressed beyond "
                              f"{self.threshold:.0%}: {', '.join(r.benchmark for r in bad)}", red=True)
