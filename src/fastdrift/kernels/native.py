"""Thin cffi bindings: the only module that imports ``fastdrift._native``.

:func:`check` turns a C status into an exception; :func:`column` builds the
``fd_column`` struct that points at a :class:`~fastdrift.adapters.ColumnView`'s
buffers (no copy: ``ffi.from_buffer`` on the numpy views of Arrow buffers).
cffi releases the GIL around every call into an API-mode module.
"""
from __future__ import annotations

import numpy as np

from .._native import ffi, lib
from ..errors import InvalidInputError, NativeError, SchemaError

__all__ = ["ffi", "lib", "check", "column", "ptr"]

_NULL = ffi.NULL


def check(rc: int, what: str, name=None) -> None:
    """Raise the exception matching a non-zero fd_status."""
    if rc == lib.FD_OK:
        return
    label = f"column {name!r}: " if name is not None else ""
    if rc == lib.FD_EINVAL:
        raise InvalidInputError(f"{label}{what}: invalid argument")
    if rc == lib.FD_ETYPE:
        raise SchemaError(f"{label}{what}: column type not handled by this kernel")
    raise NativeError(f"{label}{what}: native status {rc}")


def ptr(ctype: str, arr: np.ndarray):
    """A C pointer into a numpy array (which must stay alive for the call)."""
    if arr.size == 0:
        return _NULL
    return ffi.cast(ctype, ffi.from_buffer(arr, require_writable=False))


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
