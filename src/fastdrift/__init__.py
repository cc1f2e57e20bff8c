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
from .kernels import get_backend, set_backend
from .sketches import BinaryPerformance, Categorical, ColumnProfile, Histogram, Moments, Profile, TDigest, profile
from .sketches import MulticlassPerformance, RegressionPerformance
from .metrics import (
    chi_square,
    compare_profiles,
    hellinger,
    js_distance,
    js_divergence,
    ks_2samp,
    quantile_shift,
    wasserstein,
    kl_divergence,
    l_infinity,
    psi,
    psi_contributions,
    psi_pvalue,
    total_variation,
)
from .serving_skew import skew

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: ``import fastdrift`` stays light (no monitor, no alert rules); ``fastdrift.Monitor`` loads them.
    if name == "Monitor":
        from .monitor import Monitor
        return Monitor
    if name == "Fleet":
        from .fleet import Fleet
        return Fleet
    raise AttributeError(f"module 'fastdrift' has no attribute {name!r}")


__all__ = [
    "FastDriftError", "InvalidInputError", "SchemaError", "IncompatibleSketchError",
    "CorruptStateError", "NativeError", "ConcurrentUseError", "CountOverflowError",
    "set_backend", "get_backend",
    "BinaryPerformance", "Histogram", "Moments", "Categorical", "TDigest", "Profile", "ColumnProfile", "profile",
    "psi", "psi_contributions", "kl_divergence", "js_divergence", "js_distance", "hellinger",
    "total_variation", "l_infinity", "chi_square", "compare_profiles",
    "ks_2samp", "wasserstein", "quantile_shift", "psi_pvalue", "Monitor", "Fleet", "skew",
    "MulticlassPerformance", "RegressionPerformance",
]
