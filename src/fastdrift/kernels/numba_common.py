"""What every numba kernel module shares: :data:`NUMBA_OPTIONS` and the signature helpers.

The numba backend writes every kernel of ``kernels/*.c`` again as plain loops, with the same
results bit for bit, one module per C file: :mod:`.numba_hist` (``fd_hist.c``),
:mod:`.numba_moments` (``fd_moments.c``), :mod:`.numba_select` (``fd_select.c``) and
:mod:`.numba_cat` (``fd_cat.c``); the t-digest has no numba twin.  Only these modules import
numba, and only the numba backend objects of the family modules import them, the first time the
numba backend runs -- never at ``import fastdrift``.

Every kernel is compiled eagerly from explicit signatures, one per supported dtype (so the first
call of a service does not pay type inference), with the options of :data:`NUMBA_OPTIONS`, and
cached on disk.  Input arrays are typed read-only because the values and validity are numpy views
over immutable Arrow buffers; numba accepts writable arrays for read-only parameters.  Arguments
are checked once, by the Python wrappers (and again by the C kernels, whose header is a contract
for any caller), not by the numba kernels.

``FD_*`` codes are imported from :mod:`.native`, which reads them from the compiled header; numba
freezes them into the compiled code, and its disk cache is keyed on each kernel module's source,
not on these values (``tests/test_kernels_numeric.py`` checks the frozen statuses).
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.core import cpu as _cpu

__all__ = ["NUMBA_OPTIONS", "INLINE", "NUMBA_OPTIONS_NO_NRT", "INLINE_NO_NRT", "INT_DTYPES", "VALUE_TYPES", "DBL_MAX",
           "ro", "ro_unaligned", "rw"]

#: Every numba option this backend uses, in one place.
NUMBA_OPTIONS = dict(nogil=True, cache=True, error_model="numpy", boundscheck=False, fastmath=False)
#: Helpers are inlined at the numba IR level into their callers, so only the callers' compiled
#: code (and cache entries) contain them.  cache=True still matters for the helpers declared with
#: signatures, which numba compiles eagerly at import as well; on lazily typed helpers it is a no-op.
INLINE = dict(NUMBA_OPTIONS, inline="always")
#: :data:`NUMBA_OPTIONS` without numba's reference counting (``_nrt=False``), for kernels that
#: allocate nothing: numba wraps each inlined helper call that takes arrays in atomic incref/decref
#: pairs, which no pass removes from a hot loop; the string table's lookup ran 3.6x slower with them
#: (docs/performance.md, numba twins of the segmented kernels).
#: ``_nrt`` is an option of numba's CPU target, not of its documented API: where a numba lacks it
#: these kernels compile with reference counting (slower, the same results).
NUMBA_OPTIONS_NO_NRT = dict(NUMBA_OPTIONS, _nrt=False) if hasattr(_cpu.CPUTargetOptions, "_nrt") else NUMBA_OPTIONS
INLINE_NO_NRT = dict(NUMBA_OPTIONS_NO_NRT, inline="always")

INT_DTYPES = (types.int8, types.int16, types.int32, types.int64,
              types.uint8, types.uint16, types.uint32, types.uint64)
#: numba element types of numeric columns, one compiled specialisation each.
VALUE_TYPES = (types.float64, types.float32) + INT_DTYPES

DBL_MAX = np.finfo(np.float64).max


def ro(dt):
    """A read-only contiguous 1-D array of ``dt``."""
    return types.Array(dt, 1, "C", readonly=True)


def ro_unaligned(dt):
    """A read-only, possibly unaligned contiguous 1-D array (Arrow buffers arrive so; writable and
    aligned arrays convert to this type safely)."""
    return types.Array(dt, 1, "C", readonly=True, aligned=False)


def rw(dt):
    """A writable contiguous 1-D array of ``dt``."""
    return types.Array(dt, 1, "C")
