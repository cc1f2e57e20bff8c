"""The benchmark gate's defaults (runs a side) are the ones docs/perf.md states and measured."""
import os
import pathlib
import re
import subprocess
import sys

import fastdrift_pytest
from fastdrift.cli import SAVE_REPEAT, _parser, bench_repeat

ROOT = pathlib.Path(__file__).resolve().parent.parent
PERF_MD = (ROOT / "docs" / "perf.md").read_text()
CLI_MD = (ROOT / "docs" / "cli.md").read_text()

TINY = """
def test_work(benchmark):
    benchmark.pedantic(sum, args=(range(100),), rounds=20, iterations=1)
"""


def _doc_int(pattern: str, text: str = PERF_MD) -> int:
    found = {int(x) for x in re.findall(pattern, text)}
    assert len(found) == 1, (pattern, found)  # stated, and stated one way
    return found.pop()


def test_bench_repeat_default_is_the_documented_one():
    repeat = bench_repeat(_parser().parse_args(["bench", "--baseline", "x"]))
    assert repeat == _doc_int(r"`fastdrift bench --repeat` is (\d+) current runs")
    assert repeat == _doc_int(r"The default is (\d+) current runs")
    assert repeat == _doc_int(r"\[--repeat (\d+)\] \[--confirm\]", CLI_MD)
    assert SAVE_REPEAT == bench_repeat(_parser().parse_args(["bench", "--save-baseline", "x"]))
    assert SAVE_REPEAT == _doc_int(r"\[--repeat (\d+)\] \[--force\]", CLI_MD) == 8
    assert repeat == _doc_int(r"\(default (\d+); \[perf\]", CLI_MD)
    assert repeat == 15


def test_keep_default_is_the_documented_one():
    class Group:
        def __init__(self):
            self.opts = {}

        def addoption(self, name, **kw):
            self.opts[name] = kw

    class Parser:
        group = Group()

        def getgroup(self, *a):
            return self.group

    p = Parser()
    fastdrift_pytest.pytest_addoption(p)
    keep = p.group.opts["--fastdrift-keep"]["default"]
    assert keep == _doc_int(r"`--fastdrift-keep` is (\d+) baseline runs")
    assert keep == _doc_int(r"keep its newest N run files \(default (\d+)")
    assert keep == 10


def test_a_saved_directory_keeps_the_newest_ten_runs_by_default(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY)
    runs = tmp_path / "runs"
    runs.mkdir()
    old = [f"run-20260101T0000{i:02d}.000000-1.fdr" for i in range(12)]  # name order is time order
    for n in old:
        (runs / n).write_bytes(b"")
    (runs / "notes.txt").write_text("not a run: left alone")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tiny.py",
                        "--fastdrift-save=runs/"], cwd=tmp_path, env=dict(os.environ), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    left = sorted(p.name for p in runs.iterdir() if p.name.startswith("run-"))
    assert len(left) == 10  # the newest 9 old runs and this one
    assert left[:9] == old[3:] and left[9] not in old and (runs / left[9]).stat().st_size > 0
    assert (runs / "notes.txt").exists()
