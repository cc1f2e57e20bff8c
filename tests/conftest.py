import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import fastdrift

# numba's kernels compile on first import, about 110 s cold on a 2-core machine (docs/performance.md),
# into the on-disk cache every process shares.  The suite reaches them minutes in: a process started
# with the session compiles them on the second core meanwhile, in the order the tests first use them,
# so a fresh checkout's run loads them instead.  numba writes each cache file whole (a temporary file
# renamed), so a process that imports a module first compiles it again and loses nothing.
_WARM = ("numba_cat", "numba_hist", "numba_moments", "numba_exact", "numba_select", "numba_seg")
_warming = None


def pytest_sessionstart(session):
    global _warming
    if importlib.util.find_spec("numba") is None:
        return
    code = "; ".join(f"import fastdrift.kernels.{m}" for m in _WARM)
    _warming = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)


def pytest_sessionfinish(session, exitstatus):
    if _warming is not None and _warming.poll() is None:
        _warming.terminate()  # a short selection of tests: what it has not cached yet is not needed
        _warming.wait()


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture(params=["c", "numba"])
def backend(request):
    """Run a test once per kernel backend."""
    fastdrift.set_backend(request.param)
    yield request.param
    fastdrift.set_backend(None)


class CapsuleArray:
    """Exposes only the Arrow PyCapsule array protocol (as nanoarrow / arro3 do)."""

    def __init__(self, arr):
        self._arr = arr

    def __arrow_c_array__(self, requested_schema=None):
        return self._arr.__arrow_c_array__(requested_schema)


class CapsuleStream:
    """Exposes only the Arrow PyCapsule stream protocol (as polars / pandas >= 2.2 do)."""

    def __init__(self, obj):
        self._obj = obj

    def __arrow_c_stream__(self, requested_schema=None):
        return self._obj.__arrow_c_stream__(requested_schema)
