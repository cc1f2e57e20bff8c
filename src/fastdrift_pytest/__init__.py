"""The pytest entry point (``pytest11``) of fastdrift's benchmark gate.

It only adds the options: fastdrift is imported when one of them is given, so a plain pytest
run pays nothing, and without pytest-benchmark the options are refused with a clear message.
The hooks live in :mod:`fastdrift.perf.plugin`.
"""
def pytest_addoption(parser):
    g = parser.getgroup("fastdrift", "fastdrift benchmark gate (needs pytest-benchmark)")
    g.addoption("--fastdrift-save", metavar="FILE", default=None,
                help="save every benchmark's timings (fastdrift sketches) and the environment to FILE")
    g.addoption("--fastdrift-baseline", metavar="FILE", default=None,
                help="fail the run when a benchmark regressed against FILE (a --fastdrift-save file, "
                     "pytest-benchmark JSON, or Parquet/CSV), printing the table")
    g.addoption("--fastdrift-max-regression", metavar="PCT", default="5%",
                help="slowdown allowed by --fastdrift-baseline (default 5%%)")


def pytest_configure(config):
    if not (config.getoption("fastdrift_save") or config.getoption("fastdrift_baseline")):
        return
    import pytest
    if not config.pluginmanager.hasplugin("benchmark"):  # not installed, or -p no:benchmark
        raise pytest.UsageError("--fastdrift-save/--fastdrift-baseline need pytest-benchmark "
                                "(pip install pytest-benchmark; not disabled with -p no:benchmark)")
    from fastdrift.perf.plugin import Gate
    config.pluginmanager.register(Gate(config), "fastdrift-gate")
