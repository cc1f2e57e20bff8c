"""fastdrift: fast, exact, mergeable sketches for monitoring ML systems in production."""

from .errors import (
    ConcurrentUseError,
    CorruptStateError,
    FastDriftError,
    IncompatibleSketchError,
    InvalidInputError,
    NativeError,
    SchemaError,
)
from .kernels import get_backend, set_backend

__version__ = "0.1.0"

__all__ = [
    "FastDriftError",
    "InvalidInputError",
    "SchemaError",
    "IncompatibleSketchError",
    "CorruptStateError",
    "NativeError",
    "ConcurrentUseError",
    "set_backend",
    "get_backend",
]
