"""numba twins of ``kernels/fd_seg.c``: the segmented scatter and index counts, same results and
statuses as C (see there and :mod:`.seg`).  Each returns ``(status, bad)``: ``bad`` is the element
with a code (or index) out of range on ``FD_EINVAL``, else -1."""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .native import FD_EGROW, FD_EINVAL, FD_OK
from .numba_common import INLINE, INT_DTYPES, NUMBA_OPTIONS, VALUE_TYPES, ro, ro_unaligned, rw

__all__ = ["scatter", "count_indices", "positions", "scatter_to", "short_keys"]

_I64 = types.int64
_RC2 = types.UniTuple(_I64, 2)


@njit(**INLINE)
def _mark_valid(validity, has_bits, j, out_valid, p):
    """Bit ``p`` of ``out_valid`` set when input row ``j`` is valid (every row without a bitmap)."""
    if not has_bits or (validity[j >> 3] >> (j & 7)) & 1:
        out_valid[p >> 3] |= np.uint8(1 << (p & 7))


@njit([_RC2(ro_unaligned(vt), ro_unaligned(types.uint8), _I64, _I64, ro(types.int32), types.int32,
            rw(types.int64), rw(vt), rw(types.uint8)) for vt in VALUE_TYPES], **NUMBA_OPTIONS)
def scatter(values, validity, off, n, codes, n_seg, pos, out, out_valid):
    """``fd_seg_scatter``: stable counting sort of ``values[off:off + n]`` by code."""
    has_bits = validity.shape[0] > 0
    want_bits = out_valid.shape[0] > 0
    for i in range(n):
        c = codes[i]
        if c < 0 or c >= n_seg:
            return FD_EINVAL, i
        p = pos[c]
        if p < 0 or p >= out.shape[0]:
            return FD_EINVAL, i
        pos[c] = p + 1
        out[p] = values[off + i]
        if want_bits:
            _mark_valid(validity, has_bits, off + i, out_valid, p)
    return FD_OK, -1


@njit([_RC2(ro_unaligned(vt), ro_unaligned(types.uint8), _I64, _I64, ro(types.int32), types.int32, _I64,
            rw(types.int64), rw(types.int64), rw(types.int64)) for vt in INT_DTYPES], **NUMBA_OPTIONS)
def count_indices(values, validity, off, n, codes, n_seg, n_bins, bins, first, n_null):
    """``fd_seg_count_indices``: per-segment bincount of dictionary indices with first positions."""
    has_bits = validity.shape[0] > 0
    want_first = first.shape[0] > 0
    for i in range(n):
        c = codes[i]
        if c < 0 or c >= n_seg:
            return FD_EINVAL, i
        j = off + i
        if has_bits and not (validity[j >> 3] >> (j & 7)) & 1:
            n_null[c] += 1
            continue
        x = values[j]
        if x < 0 or x >= n_bins:
            return FD_EINVAL, i
        k = c * n_bins + _I64(x)
        if bins[k] == 0 and want_first:
            first[k] = i
        bins[k] += 1
    return FD_OK, -1


@njit(_RC2(ro(types.int32), types.int32, rw(types.int64), _I64, rw(types.int32)), **NUMBA_OPTIONS)
def positions(codes, n_seg, pos, n_out, dest):
    """``fd_seg_positions``: ``dest[i] = pos[codes[i]]++``."""
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= n_seg:
            return FD_EINVAL, i
        p = pos[c]
        if p < 0 or p >= n_out:
            return FD_EINVAL, i
        pos[c] = p + 1
        dest[i] = p
    return FD_OK, -1


@njit([_RC2(ro_unaligned(vt), ro_unaligned(types.uint8), _I64, _I64, ro(types.int32), rw(vt), rw(types.uint8))
       for vt in VALUE_TYPES], **NUMBA_OPTIONS)
def scatter_to(values, validity, off, n, dest, out, out_valid):
    """``fd_seg_scatter_to``: ``out[dest[i]] = values[off + i]``."""
    has_bits = validity.shape[0] > 0
    want_bits = out_valid.shape[0] > 0
    for i in range(n):
        p = _I64(dest[i])
        if p < 0 or p >= out.shape[0]:
            return FD_EINVAL, i
        out[p] = values[off + i]
        if want_bits:
            _mark_valid(validity, has_bits, off + i, out_valid, p)
    return FD_OK, -1


_MIX = np.uint64(0x9E3779B97F4A7C15)


@njit([types.UniTuple(_I64, 3)(ro_unaligned(ot), ro_unaligned(types.uint8), ro_unaligned(types.uint8), _I64, _I64,
                                rw(types.uint64), rw(types.int32), rw(types.int32), _I64, rw(types.int32))
       for ot in (types.int32, types.int64)], **NUMBA_OPTIONS)
def short_keys(offsets, data, validity, off, n, words, lens, slots, n_keys, ids):
    """``fd_seg_short_keys``: ``(status, n_keys, progress)``."""
    n_slots = slots.shape[0]
    max_keys = words.shape[0]
    lg = 0
    while (1 << lg) < n_slots:
        lg += 1
    shift = np.uint64(64 - lg)
    mask = n_slots - 1
    has_bits = validity.shape[0] > 0
    nk = n_keys
    for i in range(n):
        w = np.uint64(0)
        ln = 9
        j = off + i
        if not has_bits or (validity[j >> 3] >> (j & 7)) & 1:
            a = np.int64(offsets[j])
            m = np.int64(offsets[j + 1]) - a
            if m < 0 or a < 0:
                return FD_EINVAL, nk, i
            if m > 8:
                return FD_EGROW, nk, i
            for t in range(m):
                w |= np.uint64(data[a + t]) << np.uint64(8 * t)
            ln = m
        s = np.int64(((w ^ (np.uint64(ln) << np.uint64(58))) * _MIX) >> shift)
        while True:
            id_ = slots[s]
            if id_ < 0:
                if nk >= max_keys or 2 * (nk + 1) > n_slots:
                    return FD_EGROW, nk, i
                id_ = nk
                nk += 1
                words[id_] = w
                lens[id_] = ln
                slots[s] = id_
                break
            if words[id_] == w and lens[id_] == ln:
                break
            s = (s + 1) & mask
        ids[i] = id_
    return FD_OK, nk, n
