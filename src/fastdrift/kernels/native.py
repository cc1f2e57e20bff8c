"""The cffi bindings and the codes of ``kernels/fastdrift.h``: the only module that imports
``fastdrift._native``.

Every ``FD_*`` status, column-type and state-index code that Python uses is read here from the
compiled module, so the header is their one source: the wrappers, :mod:`~fastdrift.kernels.cat`,
:mod:`~fastdrift.kernels.tdigest` and the numba twins (which freeze these module globals when they
compile) import them from here.  :func:`check` turns a status of either backend into an exception;
:func:`column` builds the ``fd_column`` struct that points at a
:class:`~fastdrift.adapters.ColumnView`'s buffers (no copy: ``ffi.from_buffer`` on the numpy views
of Arrow buffers).  cffi releases the GIL around every call into an API-mode module.

The SIMD path of the C kernels (``fd_simd_select`` in the header) is chosen here, once, when this
module loads: the ``FASTDRIFT_SIMD`` environment variable (``scalar``, ``avx2``, ``avx512`` or
``auto``/unset: the best this CPU runs) -- :func:`simd_path` reports it.  Every path gives
bit-identical results, so the variable exists for tests and for measuring the paths.
"""
from __future__ import annotations

import os

import numpy as np

from .._native import ffi, lib
from ..errors import InvalidInputError, NativeError, SchemaError

__all__ = ["ffi", "lib", "check", "column", "ptr", "simd_path", "simd_paths", "SIMD_PATHS"]

# statuses
FD_OK, FD_EINVAL, FD_ETYPE, FD_EGROW, FD_ECORRUPT = (
    lib.FD_OK, lib.FD_EINVAL, lib.FD_ETYPE, lib.FD_EGROW, lib.FD_ECORRUPT)
# column types (fd_column.type) that Python tells apart
FD_I8, FD_U8, FD_U64 = lib.FD_I8, lib.FD_U8, lib.FD_U64
FD_GRID_MAX_CELLS = lib.FD_GRID_MAX_CELLS
# categorical table (fd_cat_table)
FD_CAT_N_IDS, FD_CAT_MAX_IDS, FD_CAT_OTHER, FD_CAT_NULL, FD_CAT_ARENA_USED, FD_CAT_META_LEN = (
    lib.FD_CAT_N_IDS, lib.FD_CAT_MAX_IDS, lib.FD_CAT_OTHER, lib.FD_CAT_NULL, lib.FD_CAT_ARENA_USED,
    lib.FD_CAT_META_LEN)
FD_CAT_LOAD_DEN, FD_CAT_ID_OTHER, FD_CAT_ID_NULL = lib.FD_CAT_LOAD_DEN, lib.FD_CAT_ID_OTHER, lib.FD_CAT_ID_NULL

_NULL = ffi.NULL

#: SIMD path name -> FD_SIMD_* code, scalar first.
SIMD_PATHS = {"scalar": lib.FD_SIMD_SCALAR, "avx2": lib.FD_SIMD_AVX2, "avx512": lib.FD_SIMD_AVX512}
_SIMD_NAMES = {v: k for k, v in SIMD_PATHS.items()}


def simd_paths() -> tuple:
    """The SIMD paths this CPU and build can run (``"scalar"`` always)."""
    return tuple(n for n, code in SIMD_PATHS.items() if lib.fd_simd_supported(code))


def simd_path() -> str:
    """The SIMD path the C kernels use in this process: ``"scalar"``, ``"avx2"`` or ``"avx512"``."""
    out = ffi.new("int32_t*")
    lib.fd_simd_select(lib.FD_SIMD_QUERY, out)
    return _SIMD_NAMES[out[0]]


def _select_simd(name: str) -> str:
    """Switch the C kernels to SIMD path ``name`` (or ``"auto"``); returns the path in use.

    For the load-time choice and for tests that run every path in turn: not while kernels run on
    other threads."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key in ("", "auto"):
        code = lib.FD_SIMD_AUTO
    elif key in SIMD_PATHS:
        code = SIMD_PATHS[key]
    else:
        raise InvalidInputError(f"FASTDRIFT_SIMD={name!r} is not a SIMD path; expected one of "
                                f"{('auto',) + tuple(SIMD_PATHS)}")
    out = ffi.new("int32_t*")
    if lib.fd_simd_select(code, out) != FD_OK:
        raise InvalidInputError(f"FASTDRIFT_SIMD={name!r}: this CPU (or build) cannot run that path; it "
                                f"runs {simd_paths()}")
    return _SIMD_NAMES[out[0]]


_select_simd(os.environ.get("FASTDRIFT_SIMD", ""))


def check(rc: int, what: str, name=None) -> None:
    """Raise the exception matching a non-zero fd_status."""
    if rc == FD_OK:
        return
    label = f"column {name!r}: " if name is not None else ""
    if rc == FD_EINVAL:
        raise InvalidInputError(f"{label}{what}: invalid argument")
    if rc == FD_ETYPE:
        raise SchemaError(f"{label}{what}: column type not handled by this kernel")
    raise NativeError(f"{label}{what}: native status {rc}")


_ARRAY_OF = {}  # "int64_t*" -> "int64_t[]": from_buffer of the array type, without a cast, is cheaper


def ptr(ctype: str, arr: np.ndarray):
    """A C pointer of type ``ctype`` (e.g. ``"int64_t*"``) into a numpy array, which must stay alive
    for the call (NULL for an empty one)."""
    if arr.size == 0:
        return _NULL
    t = _ARRAY_OF.get(ctype)
    if t is None:
        t = _ARRAY_OF[ctype] = ctype.replace("void", "char").replace("*", "[]")
    return ffi.from_buffer(t, arr, require_writable=False)


def column(view):
    """An ``fd_column*`` describing ``view``; keep the returned object alive for the call."""
    c = ffi.new("fd_column*")
    c.values = ptr("const void*", view.values)
    c.validity = ptr("const uint8_t*", view.validity)
    c.offsets = ptr("const void*", view.offsets) if view.offsets is not None else _NULL
    c.offset = view.offset
    c.length = view.length
    c.type = view.type_code
    return c
