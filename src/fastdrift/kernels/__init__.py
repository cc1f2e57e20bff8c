"""Kernels: stateless compute over :class:`~fastdrift.adapters.ColumnView`.

Two backends implement every kernel with identical results:

* ``"c"``: plain C99 compiled ahead of time by cffi (no JIT warm-up, so a
  service's first request is not stalled);
* ``"numba"``: the same algorithms JIT-compiled by numba (``nogil=True``,
  ``cache=True``), and the base for user kernels; specialised per dtype, but for the
  histogram and moments twins, compiled for float64 only (:func:`float64_pieces` converts
  the other dtypes).

The backend is chosen per kernel family: :func:`set_backend` overrides it for
every family, the ``FASTDRIFT_BACKEND`` environment variable is read the first
time a kernel runs (never at import), and otherwise :data:`DEFAULT_BACKENDS`
applies -- set from ``bench/`` figures to whichever backend is faster.

Each family module (:mod:`.hist`, :mod:`.moments`, :mod:`.quantile`, :mod:`.cat`) has one backend
object per backend, with the same methods, held by a :class:`Family`.  The C objects call
``kernels/fd_*.c`` through :mod:`.native`; the numba objects call the module that mirrors each C
file (``numba_hist.py`` for ``fd_hist.c``, ``numba_moments.py``, ``numba_select.py``,
``numba_cat.py``; :mod:`.numba_common` holds what they share), imported only when the numba
backend is first used.  The prologue every wrapper shares -- output-array checks
(:func:`check_out`), the column-kind check (:func:`numeric_values`) and status to exception
(:func:`fastdrift.kernels.native.check`) -- is written once, here and in :mod:`.native`.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Optional

import numpy as np

from ..errors import InvalidInputError, SchemaError

__all__ = ["BACKENDS", "DEFAULT_BACKENDS", "set_backend", "get_backend", "Family", "check_out",
           "numeric_values", "float64_pieces"]

BACKENDS = ("c", "numba")
#: Backend per kernel family when nothing else is set: C wins every family in
#: bench/ (python bench/run.py), and it needs no JIT warm-up.
DEFAULT_BACKENDS = {"histogram": "c", "moments": "c", "categorical": "c", "quantile": "c", "exact": "c",
                    "segments": "c"}

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


class Family:
    """The backend objects of one kernel family, built on first use.

    Parameters
    ----------
    name : str
        The family (a key of :data:`DEFAULT_BACKENDS`).
    **makers : callable
        Backend name -> class (or any callable without arguments) building its object.

    Calling the family with a backend name, or ``None`` for :func:`get_backend`, returns the
    object; every object of a family has the same methods and returns fd_status codes.
    """

    __slots__ = ("name", "_makers", "_objects")

    def __init__(self, name: str, **makers: Callable[[], object]):
        self.name = name
        self._makers = makers
        self._objects = {}

    def __call__(self, backend: Optional[str] = None):
        if backend is None:
            backend = get_backend(self.name)
        obj = self._objects.get(backend)
        if obj is None:
            make = self._makers.get(backend)
            if make is None:
                raise InvalidInputError(f"unknown backend {backend!r}; expected one of {BACKENDS} or None")
            obj = self._objects[backend] = make()
        return obj


def check_out(a, dtype, n: int, what: str) -> None:
    """Raise unless ``a`` is a writable, contiguous 1-D numpy array of ``n`` ``dtype`` entries."""
    if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == (n,) and a.flags.c_contiguous
            and a.flags.writeable):
        raise InvalidInputError(f"{what} must be a writable contiguous {np.dtype(dtype).name} array "
                                f"of {n} entries")


def numeric_values(view, needs: str, nulls: Optional[np.ndarray] = None, at: int = 0) -> bool:
    """Whether a numeric kernel has values to read in ``view``.

    A null-typed chunk (adding its length to ``nulls[at]`` when given) and an empty one are
    skipped (False); any kind but numeric raises.

    Parameters
    ----------
    view : fastdrift.adapters.ColumnView
    needs : str
        Start of the error message, e.g. ``"a histogram needs"``.
    nulls : numpy.ndarray, optional
        The state's counters; ``nulls[at]`` counts nulls.
    at : int, default 0

    Raises
    ------
    SchemaError
        If the column is neither numeric nor null-typed.
    """
    kind = view.kind
    if kind == "numeric":
        return view.length > 0
    if kind == "null":
        if nulls is not None:
            nulls[at] += view.length
        return False
    raise SchemaError(f"column {view.name!r}: {needs} numeric values, got "
                      f"{view.arrow_type if view.arrow_type is not None else kind}")


#: Values of another dtype than float64 converted at a time for the numba kernels, which are
#: compiled for float64 only: a multiple of 1,024 (the moments' block), so that a chunk's blocks
#: fall where they would unconverted and the sums stay bit-identical.
FLOAT64_PIECE = 1 << 15


def float64_pieces(view):
    """``(values, validity, offset, length)`` of a chunk as float64, for the numba kernels compiled
    for float64 only (one entry each, where one per dtype took minutes to compile): the chunk
    itself when it is float64, else converted :data:`FLOAT64_PIECE` values at a time, exactly
    (float32 and integers to the nearest double, as the kernels' own conversion).  A converted
    piece keeps its first value's position in a bitmap byte, so that the chunk's validity bitmap,
    sliced at that byte, still marks its values."""
    v = view.values
    if v.dtype == np.float64:
        yield v, view.validity, view.offset, view.length
        return
    piece = FLOAT64_PIECE
    for s in range(0, view.length, piece):
        at = view.offset + s
        n = min(piece, view.length - s)
        if view.has_validity:
            r = at & 7
            w = np.empty(r + n, dtype=np.float64)
            w[r:] = v[at:at + n]
            yield w, view.validity[at >> 3:], r, n
        else:
            yield v[at:at + n].astype(np.float64), view.validity, 0, n
