"""Bindings of the binary-performance kernel (``kernels/fd_perf.c``): rows into bins and sums.

The bin layout is described in ``kernels/fastdrift.h`` and owned by
:mod:`fastdrift.sketches.performance`.  There is no numba version: the C kernel is the only
backend (cffi releases the GIL around the call).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .native import check, ffi, lib, ptr

__all__ = ["N_SUMS", "N_REJECT", "EMIN", "LABELS_RAW", "LABELS_CODED", "perf_update"]

N_SUMS = lib.FD_PERF_N_SUMS
N_REJECT = lib.FD_PERF_N_REJECT
EMIN = lib.FD_PERF_EMIN
#: label byte conventions: raw 0/1 bytes (anything else is not binary), or coded (2: unlabelled)
LABELS_RAW, LABELS_CODED = 0, 1


def _opt(ctype: str, arr: Optional[np.ndarray]):
    return ffi.NULL if arr is None else ptr(ctype, arr)


def perf_update(scores: np.ndarray, validity: Optional[np.ndarray], offset: int, labels: Optional[np.ndarray],
                coded: int, weights: Optional[np.ndarray], margin: bool, shift: int, n_bins: int,
                counts: Optional[np.ndarray], wsum: Optional[np.ndarray], vmin: Optional[np.ndarray],
                vmax: Optional[np.ndarray], spread: Optional[np.ndarray], sums: np.ndarray,
                rejected: np.ndarray, name=None) -> None:
    """Fold rows into ``counts`` (int64, 3 x n_bins, flat; None: only the sums and rejects),
    ``wsum``, ``vmin``/``vmax``, ``spread`` (float64, n_bins x 2, flat), ``sums`` and ``rejected``
    in place (see ``fd_perf_update``).
    ``scores``: contiguous float64; ``labels``: contiguous bytes or None; ``weights``: float64 or None."""
    rc = lib.fd_perf_update(
        ptr("const double*", scores), _opt("const uint8_t*", validity), offset, _opt("const uint8_t*", labels),
        coded, _opt("const double*", weights), scores.shape[0], 1 if margin else 0, shift, n_bins,
        _opt("int64_t*", counts), _opt("double*", wsum), _opt("double*", vmin), _opt("double*", vmax),
        _opt("double*", spread), ptr("double*", sums), ptr("int64_t*", rejected))
    check(rc, "binary performance update", name)
