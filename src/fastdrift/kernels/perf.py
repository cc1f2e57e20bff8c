"""Bindings of the binary-performance kernel (``kernels/fd_perf.c``): rows into bins and sums.

The bin layout is described in ``kernels/fastdrift.h`` and owned by
:mod:`fastdrift.sketches.performance`.  There is no numba version: the C kernel is the only
backend (cffi releases the GIL around the call).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .native import check, lib, ptr

__all__ = ["N_SUMS", "N_REJECT", "EMIN", "LABELS_RAW", "LABELS_CODED", "perf_update"]

N_SUMS = lib.FD_PERF_N_SUMS
N_REJECT = lib.FD_PERF_N_REJECT
EMIN = lib.FD_PERF_EMIN
#: label byte conventions: raw 0/1 bytes (anything else is not binary), or coded (2: unlabelled)
LABELS_RAW, LABELS_CODED = 0, 1


def perf_update(scores: np.ndarray, validity: Optional[np.ndarray], offset: int, labels: Optional[np.ndarray],
                coded: int, weights: Optional[np.ndarray], margin: bool, shift: int, counts: np.ndarray,
                wsum: Optional[np.ndarray], vmin: Optional[np.ndarray], vmax: Optional[np.ndarray],
                sums: np.ndarray, rejected: np.ndarray, name=None) -> None:
    """Fold rows into ``counts`` (int64, 3 x n_bins, flat), ``wsum``, ``vmin``/``vmax``, ``sums``
    and ``rejected`` in place (see ``fd_perf_update``).  ``scores``: contiguous float64;
    ``labels``: contiguous uint8 (or int8/bool viewed as bytes) or None; ``weights``: float64 or None."""
    n = scores.shape[0]
    rc = lib.fd_perf_update(
        ptr("const double*", scores), ptr("const uint8_t*", validity) if validity is not None else ptr(
            "const uint8_t*", np.zeros(0, np.uint8)), offset,
        ptr("const uint8_t*", labels) if labels is not None else ptr("const uint8_t*", np.zeros(0, np.uint8)),
        coded, ptr("const double*", weights) if weights is not None else ptr("const double*", np.zeros(0)),
        n, 1 if margin else 0, shift, counts.size // 3,
        ptr("int64_t*", counts), ptr("double*", wsum) if wsum is not None else ptr("double*", np.zeros(0)),
        ptr("double*", vmin) if vmin is not None else ptr("double*", np.zeros(0)),
        ptr("double*", vmax) if vmax is not None else ptr("double*", np.zeros(0)),
        ptr("double*", sums), ptr("int64_t*", rejected))
    check(rc, "binary performance update", name)
