"""Kernels: stateless compute over :class:`~fastdrift.adapters.ColumnView`.

Two backends implement every kernel with identical results:

* ``"c"``: plain C99 compiled ahead of time by cffi (no JIT warm-up, so a
  service's first request is not stalled);
* ``"numba"``: the same algorithms JIT-compiled by numba (``nogil=True``,
  ``cache=True``), specialised per dtype, and the base for user kernels.

The backend is chosen per kernel family: :func:`set_backend` overrides it for
every family, the ``FASTDRIFT_BACKEND`` environment variable is read the first
time a kernel runs (never at import), and otherwise :data:`DEFAULT_BACKENDS`
applies -- set from ``bench/`` figures to whichever backend is faster.
numba is imported only when the numba backend is first used.
"""
from __future__ import annotations

import os
import threading
from typing import Optional

from ..errors import InvalidInputError

__all__ = ["BACKENDS", "DEFAULT_BACKENDS", "set_backend", "get_backend"]

BACKENDS = ("c", "numba")
#: Backend per kernel family when nothing else is set: C wins every family in
#: bench/ (python bench/run.py), and it needs no JIT warm-up.
DEFAULT_BACKENDS = {"histogram": "c", "moments": "c", "categorical": "c", "quantile": "c"}

_lock = threading.Lock()
_override: Optional[str] = None
_env_read = False


def set_backend(name: Optional[str]) -> None:
    """Select the kernel backend: ``"c"``, ``"numba"``, or ``None`` for the per-kernel default."""
    global _override, _env_read
    if name is not None and name not in BACKENDS:
        raise InvalidInputError(f"unknown backend {name!r}; expected one of {BACKENDS} or None")
    with _lock:
        _override = name
        _env_read = True


def get_backend(family: str) -> str:
    """The backend that runs kernel ``family`` right now."""
    global _override, _env_read
    if not _env_read:
        with _lock:
            if not _env_read:
                env = os.environ.get("FASTDRIFT_BACKEND", "").strip().lower()
                if env:
                    if env not in BACKENDS:
                        raise InvalidInputError(
                            f"FASTDRIFT_BACKEND={env!r} is not a backend; expected one of {BACKENDS}")
                    _override = env
                _env_read = True
    if _override is not None:
        return _override
    return DEFAULT_BACKENDS[family]
