"""Benchmark regression gates: did a benchmark's timing distribution move, by how much, and is it
more than noise?  ``fastdrift perf compare``, the pytest plugin (``--fastdrift-save``,
``--fastdrift-baseline``) and ``fastdrift bench --baseline``; see docs/perf.md.

:mod:`.stats` holds the statistics, :mod:`.runs` reads and writes runs, :mod:`.compare` compares
two runs and formats the result, :mod:`.plugin` is the pytest plugin.
"""
from .compare import PerfComparison, PerfRow, compare_runs, format_html, format_json, format_table, \
    parse_threshold
from .runs import Bench, NoBaselineForMachine, Run, environment, machine_dir, read_baseline, read_run, read_runs, \
    run_from_timings, write_run

__all__ = ["PerfComparison", "PerfRow", "compare_runs", "format_table", "format_json", "format_html",
           "parse_threshold", "Bench", "Run", "read_run", "read_runs", "read_baseline", "machine_dir",
           "NoBaselineForMachine", "write_run", "run_from_timings", "environment"]
