"""fastdrift: fast, exact, mergeable sketches for monitoring ML systems in production.

Data flows one way: Arrow input -> column adapters (:mod:`fastdrift.adapters`)
-> kernels (:mod:`fastdrift.kernels`, C and numba) -> sketch state
(:mod:`fastdrift.sketches`) -> metrics (:mod:`fastdrift.metrics`).
"""

from .errors import (
    ConcurrentUseError,
    CorruptStateError,
    CountOverflowError,
    FastDriftError,
    IncompatibleSketchError,
    InvalidInputError,
    NativeError,
    SchemaError,
)

__version__ = "0.1.0"

# Everything but the errors loads on first use (PEP 562): ``import fastdrift`` stays light for the
# processes that need one corner of it -- the pytest plugin of the benchmark gate, the CLI's
# commands, a service that only builds a Monitor -- and ``fastdrift.psi`` or
# ``from fastdrift import Profile`` load what they name.
_LAZY = {
    "get_backend": "kernels", "set_backend": "kernels",
    **{n: "sketches" for n in ("BinaryPerformance", "Categorical", "ColumnProfile", "Histogram", "Moments",
                               "Profile", "TDigest", "profile", "MulticlassPerformance", "RegressionPerformance")},
    **{n: "metrics" for n in ("chi_square", "compare_profiles", "hellinger", "js_distance", "js_divergence",
                              "ks_2samp", "quantile_shift", "wasserstein", "kl_divergence", "l_infinity", "psi",
                              "psi_contributions", "psi_pvalue", "total_variation")},
    "skew": "serving_skew", "Monitor": "monitor", "Fleet": "fleet",
}


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'fastdrift' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{where}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FastDriftError", "InvalidInputError", "SchemaError", "IncompatibleSketchError",
    "CorruptStateError", "NativeError", "ConcurrentUseError", "CountOverflowError",
    *_LAZY,
]
