"""The pytest hooks of the benchmark gate, registered by the ``fastdrift_pytest`` entry point
when ``--fastdrift-save`` or ``--fastdrift-baseline`` is given (pytest-benchmark installed).

At the end of the session every benchmark that ran is taken from pytest-benchmark, with each
round's timing: ``--fastdrift-save=FILE`` writes them as a run file with the environment
(:func:`fastdrift.perf.runs.write_run`); ``--fastdrift-baseline=FILE`` compares them with FILE,
prints the table in the terminal summary and fails the run (exit 1) when a benchmark regressed.
"""
from __future__ import annotations

import pytest

from ..errors import FastDriftError
from .compare import compare_runs, format_table, parse_threshold
from .runs import environment, read_run, run_from_timings, write_run

__all__ = ["Gate"]


class Gate:
    """The plugin object: reads the baseline up front (a bad file is a usage error before any
    benchmark runs), saves and compares at session end."""

    def __init__(self, config):
        self.config = config
        self.save = config.getoption("fastdrift_save")
        self.baseline = None
        self.comparison = None
        try:
            self.threshold = parse_threshold(config.getoption("fastdrift_max_regression"))
            path = config.getoption("fastdrift_baseline")
            if path:
                self.baseline = read_run(path)
        except FastDriftError as exc:
            raise pytest.UsageError(f"fastdrift: {exc}") from None

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
    def pytest_sessionfinish(self, session, exitstatus):
        timings, per_call = self._timings()
        env = environment()
        if self.save:
            write_run(self.save, timings, env, per_call)
        if self.baseline is not None:
            cur = run_from_timings(timings, env, path="this run", per_call=per_call)
            self.comparison = compare_runs(self.baseline, cur, self.threshold)
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
