import numpy as np
import pytest

import fastdrift


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
