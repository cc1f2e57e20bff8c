"""The exception hierarchy.

Every error fastdrift raises on purpose derives from :class:`FastDriftError`
and also from the builtin that matches it, so ``except ValueError`` keeps
working for callers who do not know fastdrift.
"""

__all__ = [
    "FastDriftError",
    "InvalidInputError",
    "SchemaError",
    "IncompatibleSketchError",
    "CorruptStateError",
    "NativeError",
    "ConcurrentUseError",
    "CountOverflowError",
]


class FastDriftError(Exception):
    """Base of every fastdrift error."""


class InvalidInputError(FastDriftError, ValueError):
    """A value or argument is outside what the function accepts."""


class SchemaError(FastDriftError, TypeError):
    """A column has a type the sketch cannot count (e.g. strings into a histogram)."""


class IncompatibleSketchError(FastDriftError, ValueError):
    """Two sketches with different parameters were merged or compared."""


class CorruptStateError(FastDriftError, ValueError):
    """Serialized state failed validation: truncated, altered, or from an unknown version."""


class NativeError(FastDriftError, RuntimeError):
    """A native kernel reported a status that should not happen."""


class ConcurrentUseError(FastDriftError, RuntimeError):
    """A sketch was mutated from two threads at once; guard it or use one per thread."""


class CountOverflowError(FastDriftError, OverflowError):
    """Counting or merging would take a sketch's count past its cap (2**62; 2**53 for a t-digest),
    beyond which int64 counters could wrap."""
