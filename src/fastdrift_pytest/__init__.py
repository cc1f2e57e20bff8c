"""The pytest entry point (``pytest11``) of fastdrift's benchmark gate.

It only adds the options: fastdrift is imported when one of them is given, so a plain pytest
run pays nothing, and without pytest-benchmark the options are refused with a clear message.
The hooks live in :mod:`fastdrift.perf.plugin`.
"""
#: ``--fastdrift-keep`` default: a baseline directory keeps the newest 10 runs (docs/perf.md, "Defaults")
KEEP = 10


def pytest_addoption(parser):
    g = parser.getgroup("fastdrift", "fastdrift benchmark gate (needs pytest-benchmark)")
    g.addoption("--fastdrift-save", metavar="FILE", default=None,
                help="save every benchmark's timings (fastdrift sketches) and the environment to FILE; when FILE "
                     "is a directory (or ends with /), as a new run file in it, so that it accumulates runs")
    g.addoption("--fastdrift-keep", metavar="N", type=int, default=KEEP,
                help=f"with --fastdrift-save DIR/: keep the newest N run files in DIR (default {KEEP}: the baseline "
                     "size at which 10%% slowdowns were caught in >= 95%% of the trials in docs/perf.md)")
    g.addoption("--fastdrift-baseline", metavar="FILE", action="append", default=None,
                help="fail the run when a benchmark regressed against FILE (a --fastdrift-save file, "
                     "pytest-benchmark JSON, or Parquet/CSV; a directory of runs; repeat for several runs: "
                     "the run-to-run variance is then measured), printing the table")
    g.addoption("--fastdrift-current", metavar="FILE", action="append", default=None,
                help="with --fastdrift-baseline: earlier runs of the code under test (files or a directory, "
                     "repeatable), compared together with this run: the run-to-run change averages out over them")
    g.addoption("--fastdrift-probe", action="store_true", default=False,
                help="time fastdrift's machine-speed probes between the rounds of every benchmark and store them "
                     "in extra_info['fastdrift_probe'] (implied by --fastdrift-save/--fastdrift-baseline)")
    g.addoption("--fastdrift-clock", choices=("cpu", "wall"), default="cpu",
                help="with the options above: time rounds and probes with the process's CPU time (cpu, default: "
                     "time a shared machine gives to other processes is not counted) or the wall clock (wall); an "
                     "explicit --benchmark-timer wins")
    g.addoption("--fastdrift-max-regression", metavar="PCT", default="5%",
                help="slowdown allowed by --fastdrift-baseline (default 5%%)")


def pytest_configure(config):
    if not (config.getoption("fastdrift_save") or config.getoption("fastdrift_baseline")
            or config.getoption("fastdrift_probe") or config.getoption("fastdrift_current")):
        return
    import pytest
    if not config.pluginmanager.hasplugin("benchmark"):  # not installed, or -p no:benchmark
        raise pytest.UsageError("--fastdrift-save/--fastdrift-baseline/--fastdrift-probe need pytest-benchmark "
                                "(pip install pytest-benchmark; not disabled with -p no:benchmark)")
    from fastdrift.perf.plugin import Gate
    config.pluginmanager.register(Gate(config), "fastdrift-gate")
