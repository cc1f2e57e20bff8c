"""The numba twin of ``kernels/fd_cat.c``: hashing, the categorical table, dictionary indices and
booleans.

The hash table lives in caller-owned numpy arrays that the C backend reads and writes too, so these
functions must hash, probe, insert and report ``FD_EGROW`` exactly like their C twins: a table
filled by one backend can be continued by the other, and the tests compare both bit for bit.

Integer arithmetic on hashes is done in ``uint64`` throughout because numba (like numpy) promotes
``uint64 op int64`` to ``float64``, which would silently change the hash.

Each kernel takes its C twin's arguments (documented once, in ``kernels/fastdrift.h``) with the
``fd_column`` unpacked into whole Arrow buffers (offsets and data, or values; a validity bitmap,
empty when every value is valid), the array offset and length, and the ``fd_cat_table`` into its
arrays.  It returns C's status and, where C reports one, the progress: the element to resume from
after ``FD_EGROW``, or (``count_indices``) the first out-of-range index on ``FD_EINVAL``.  uint64
keys are kept as their int64 bit pattern.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types

from .native import (
    FD_CAT_ARENA_USED,
    FD_CAT_ID_NULL,
    FD_CAT_ID_OTHER,
    FD_CAT_LOAD_DEN,
    FD_CAT_MAX_IDS,
    FD_CAT_N_IDS,
    FD_CAT_NULL,
    FD_CAT_OTHER,
    FD_ECORRUPT,
    FD_EGROW,
    FD_EINVAL,
    FD_OK,
)
from .numba_common import INT_DTYPES, ro, ro_unaligned, rw
# No kernel here allocates: all run without reference counting (see numba_common).
from .numba_common import INLINE_NO_NRT as INLINE, NUMBA_OPTIONS_NO_NRT as NUMBA_OPTIONS

__all__ = ["hash_bytes", "hash_int", "cat_run_str", "cat_run_int", "cat_rehash", "count_indices", "bool_count",
           "first_use_order", "cat_add_order_str", "cat_add_order_int",
           "seg_count_str", "seg_count_int"]

_ID_GROW = -3  # as FD_ID_GROW in fd_cat.c: a new key, a buffer must grow before inserting
_INT32_MAX = 2**31 - 1

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_SEED = np.uint64(0x243F6A8885A308D3)
_C3 = np.uint64(0x52DCE729)
_F1 = np.uint64(0xFF51AFD7ED558CCD)
_F2 = np.uint64(0xC4CEB9FE1A85EC53)
_U1 = np.uint64(1)
_U5 = np.uint64(5)
_U8 = np.uint64(8)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U33 = np.uint64(33)
_U37 = np.uint64(37)

# Byte popcounts: numba has no portable popcount intrinsic.
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)

_I64 = types.int64
_U64 = types.uint64
_B = types.boolean
_TABLE_STR = (rw(types.int32), rw(types.uint64), rw(types.int64), rw(types.uint8),
              rw(types.int64), rw(types.int64))      # slots hashes key_offsets arena counts meta
_TABLE_INT = (rw(types.int32), rw(types.uint64), rw(types.int64),
              rw(types.int64), rw(types.int64))      # slots hashes int_keys counts meta
_RC2 = types.UniTuple(_I64, 2)
_RC3 = types.UniTuple(_I64, 3)


# ---- categorical: hashing ----------------------------------------------------

@njit(_U64(_U64), **INLINE)
def _fmix64(k):
    k ^= k >> _U33
    k *= _F1
    k ^= k >> _U33
    k *= _F2
    k ^= k >> _U33
    return k


@njit(_U64(_U64, _U64), **INLINE)
def _mix_word(h, w):
    w *= _K2
    w = (w << _U31) | (w >> _U33)
    w *= _K1
    h ^= w
    h = (h << _U27) | (h >> _U37)
    return h * _U5 + _C3


@njit([_U64(ro_unaligned(types.uint8), _I64), _U64(rw(types.uint8), _I64)], **INLINE)
def _load_le64(data, p):
    # Eight byte loads OR-ed together: LLVM folds them into one 64-bit
    # little-endian load, which is what the C side does with memcpy -- only
    # when indexed by an unsigned position: a signed one gets numba's
    # negative-index wraparound on each byte, which keeps them apart (the
    # string lookup took 24 ms per 1M short strings instead of 18, C 13).
    q = np.uint64(p)
    w = np.uint64(data[q])
    for k in range(1, 8):
        w |= np.uint64(data[q + np.uint64(k)]) << np.uint64(8 * k)
    return w


@njit(_U64(ro_unaligned(types.uint8), _I64, _I64), **INLINE)
def _hash_bytes(data, start, n):
    # Inlined into the table loops: an out-of-line call costs more than the
    # hash itself for short keys.
    h = _SEED ^ (np.uint64(n) * _K1)
    i = 0
    while i + 8 <= n:
        h = _mix_word(h, _load_le64(data, start + i))
        i += 8
    if i < n:
        p = start + i
        if p + 8 <= data.shape[0]:
            # Whole-word load then mask: the same zero-padded tail word as
            # C's byte loop, without a data-dependent loop.
            w = _load_le64(data, p) & ((_U1 << np.uint64(8 * (n - i))) - _U1)
        else:
            w = np.uint64(0)
            for j in range(n - i):
                w |= np.uint64(data[p + j]) << np.uint64(8 * j)
        h = _mix_word(h, w)
    return _fmix64(h)


@njit(_U64(ro_unaligned(types.uint8), _I64, _I64), **NUMBA_OPTIONS)
def hash_bytes(data, start, n):
    """Hash ``data[start:start + n]``; bit-identical to C ``fd_hash_bytes``."""
    return _hash_bytes(data, start, n)


@njit(_U64(_I64), **NUMBA_OPTIONS)
def hash_int(v):
    """Hash an integer key; bit-identical to C ``fd_hash_int``."""
    return _fmix64(np.uint64(v))


# ---- categorical: table ------------------------------------------------------

@njit(_I64(rw(types.int32), rw(types.uint64), rw(types.int64), _I64, _B,
                 rw(types.int64), rw(types.int64)), **NUMBA_OPTIONS)
def _table_status(slots, hashes, counts, arena_cap, strings, key_offsets, meta):
    # Same checks, same order, same codes as fd_table_ok in fd_cat.c.
    n_slots = slots.shape[0]
    id_cap = hashes.shape[0]
    if meta.shape[0] < 5 or n_slots == 0 or id_cap == 0 or counts.shape[0] < id_cap:
        return FD_EINVAL
    if n_slots < 2 or (n_slots & (n_slots - 1)) != 0 or n_slots > _INT32_MAX:
        return FD_EINVAL
    if meta[FD_CAT_MAX_IDS] < 0 or meta[FD_CAT_MAX_IDS] > _INT32_MAX:
        return FD_EINVAL
    if strings and key_offsets.shape[0] < id_cap + 1:
        return FD_EINVAL
    n_ids = meta[FD_CAT_N_IDS]
    if n_ids < 0 or n_ids > id_cap or n_ids > meta[FD_CAT_MAX_IDS] or 2 * n_ids > n_slots:
        return FD_ECORRUPT
    if strings:
        used = meta[FD_CAT_ARENA_USED]
        if used < 0 or used > arena_cap or key_offsets[n_ids] != used:
            return FD_ECORRUPT
    return FD_OK


@njit(_I64(ro_unaligned(types.uint8), _I64, _I64, *_TABLE_STR), **INLINE)
def _find_or_insert_str(data, p, n, slots, hashes, key_offsets, arena, counts, meta):
    h = _hash_bytes(data, p, n)
    # Probe with int64 positions: indexing with uint64 is slow in numba.
    mask = slots.shape[0] - 1
    s = np.int64(h & np.uint64(mask))
    while True:
        id_ = slots[s]
        if id_ < 0:
            break
        if hashes[id_] == h:
            a = key_offsets[id_]
            if key_offsets[id_ + 1] - a == n:
                same = True
                j = 0
                while j + 8 <= n:
                    if _load_le64(arena, a + j) != _load_le64(data, p + j):
                        same = False
                        break
                    j += 8
                while same and j < n:
                    if arena[a + j] != data[p + j]:
                        same = False
                    j += 1
                if same:
                    return id_
        s = (s + 1) & mask
    n_ids = meta[FD_CAT_N_IDS]
    if n_ids >= meta[FD_CAT_MAX_IDS]:
        return FD_CAT_ID_OTHER
    used = meta[FD_CAT_ARENA_USED]
    if n_ids >= hashes.shape[0] or FD_CAT_LOAD_DEN * (n_ids + 1) > slots.shape[0] or used + n > arena.shape[0]:
        return _ID_GROW
    for j in range(n):
        arena[used + j] = data[p + j]
    used += n
    meta[FD_CAT_ARENA_USED] = used
    key_offsets[n_ids + 1] = used
    hashes[n_ids] = h
    counts[n_ids] = 0
    slots[s] = n_ids
    meta[FD_CAT_N_IDS] = n_ids + 1
    return n_ids


@njit(_I64(_I64, *_TABLE_INT), **INLINE)
def _find_or_insert_int(v, slots, hashes, int_keys, counts, meta):
    h = hash_int(v)
    # Probe with int64 positions: indexing with uint64 is slow in numba.
    mask = slots.shape[0] - 1
    s = np.int64(h & np.uint64(mask))
    while True:
        id_ = slots[s]
        if id_ < 0:
            break
        if int_keys[id_] == v:
            return id_
        s = (s + 1) & mask
    n_ids = meta[FD_CAT_N_IDS]
    if n_ids >= meta[FD_CAT_MAX_IDS]:
        return FD_CAT_ID_OTHER
    if n_ids >= hashes.shape[0] or FD_CAT_LOAD_DEN * (n_ids + 1) > slots.shape[0]:
        return _ID_GROW
    int_keys[n_ids] = v
    hashes[n_ids] = h
    counts[n_ids] = 0
    slots[s] = n_ids
    meta[FD_CAT_N_IDS] = n_ids + 1
    return n_ids


def _str_sigs():
    return [
        _RC2(ro_unaligned(ot), ro_unaligned(types.uint8), ro_unaligned(types.uint8), _I64, _I64, _I64,
             *_TABLE_STR, rw(types.int64), _B, ro_unaligned(types.int64), _I64)
        for ot in (types.int32, types.int64)
    ]


@njit(**INLINE)
def _order_status(n, start, off, lookup, ids, order, n_order):
    """(status, outputs): the elements' checks of ``fd_cat_run`` (``n_order`` < 0: every element
    of the ``n`` in order, else ``order[0:n_order]``, each checked to lie in the column)."""
    m = n if n_order < 0 else n_order
    if start < 0 or start > m or off < 0 or n < 0 or (lookup and ids.shape[0] < m) \
            or (n_order >= 0 and (not lookup or order.shape[0] < n_order)):
        return FD_EINVAL, m
    if n_order >= 0:
        for i in range(start, m):
            if order[i] < 0 or order[i] >= n:
                return FD_EINVAL, m
    return FD_OK, m


@njit(_str_sigs(), **NUMBA_OPTIONS)
def cat_run_str(offsets, data, validity, off, n, start,
                slots, hashes, key_offsets, arena, counts, meta, ids, lookup, order, n_order):
    """``fd_cat_update`` (``lookup=False``) / ``fd_cat_lookup`` (``lookup=True``) for strings;
    ``fd_cat_lookup_order`` with ``n_order`` >= 0 (``n_order`` < 0: ``order`` unused)."""
    rc = _table_status(slots, hashes, counts, arena.shape[0], True, key_offsets, meta)
    if rc != FD_OK:
        return rc, start
    rc, m = _order_status(n, start, off, lookup, ids, order, n_order)
    if rc != FD_OK:
        return rc, start
    has_bits = validity.shape[0] > 0
    for i in range(start, m):
        j = off + (i if n_order < 0 else order[i])
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            if lookup:
                ids[i] = FD_CAT_ID_NULL
            else:
                meta[FD_CAT_NULL] += 1
            continue
        a = np.int64(offsets[j])
        id_ = _find_or_insert_str(data, a, np.int64(offsets[j + 1]) - a,
                                  slots, hashes, key_offsets, arena, counts, meta)
        if id_ == _ID_GROW:
            return FD_EGROW, i
        if lookup:
            ids[i] = id_
        elif id_ >= 0:
            counts[id_] += 1
        else:
            meta[FD_CAT_OTHER] += 1
    return FD_OK, m


@njit([_RC2(ro_unaligned(vt), ro_unaligned(types.uint8), _I64, _I64, _I64, *_TABLE_INT,
             rw(types.int64), _B, ro_unaligned(types.int64), _I64)
       for vt in INT_DTYPES], **NUMBA_OPTIONS)
def cat_run_int(values, validity, off, n, start, slots, hashes, int_keys, counts, meta, ids, lookup, order,
                n_order):
    """``fd_cat_update`` / ``fd_cat_lookup`` / ``fd_cat_lookup_order`` for integer columns (see
    :func:`cat_run_str`)."""
    rc = _table_status(slots, hashes, counts, 0, False, int_keys, meta)
    if rc != FD_OK:
        return rc, start
    if int_keys.shape[0] < hashes.shape[0]:
        return FD_EINVAL, start
    rc, m = _order_status(n, start, off, lookup, ids, order, n_order)
    if rc != FD_OK:
        return rc, start
    has_bits = validity.shape[0] > 0
    for i in range(start, m):
        j = off + (i if n_order < 0 else order[i])
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            if lookup:
                ids[i] = FD_CAT_ID_NULL
            else:
                meta[FD_CAT_NULL] += 1
            continue
        id_ = _find_or_insert_int(np.int64(values[j]), slots, hashes, int_keys, counts, meta)
        if id_ == _ID_GROW:
            return FD_EGROW, i
        if lookup:
            ids[i] = id_
        elif id_ >= 0:
            counts[id_] += 1
        else:
            meta[FD_CAT_OTHER] += 1
    return FD_OK, m


@njit(_I64(rw(types.int32), rw(types.uint64), rw(types.int64)), **NUMBA_OPTIONS)
def cat_rehash(slots, hashes, meta):
    """Rebuild ``slots`` from ``hashes[:n_ids]`` (``fd_cat_rehash``)."""
    n_slots = slots.shape[0]
    if n_slots < 2 or (n_slots & (n_slots - 1)) != 0 or n_slots > _INT32_MAX:
        return FD_EINVAL
    n_ids = meta[FD_CAT_N_IDS]
    if n_ids < 0 or n_ids > hashes.shape[0] or 2 * n_ids > n_slots:
        return FD_EINVAL
    slots[:] = -1
    mask = n_slots - 1
    for id_ in range(n_ids):
        s = np.int64(hashes[id_] & np.uint64(mask))
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = id_
    return FD_OK


@njit(**INLINE)
def _indices_each(values, validity, off, i, end, bins, nulls):
    """count_indices over elements [i, end) one at a time, a bitmap given: (status, position, nulls)."""
    n_bins = bins.shape[0]
    while i < end:
        j = off + i
        if ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            nulls += 1
        else:
            x = np.int64(values[j])
            if x < 0 or x >= n_bins:
                return FD_EINVAL, i, nulls
            bins[x] += 1
        i += 1
    return FD_OK, i, nulls


_IDX_SPLIT = 256  # FD_IDX_SPLIT


@njit(**INLINE)
def _good64(values, j0, um):
    """values[j0:j0 + 64] all good indices: at least 0 and, as unsigned, at most ``um`` (a min
    and a max, which LLVM vectorises)."""
    lo = values[j0]
    hi = values[j0]
    for j in range(j0 + 1, j0 + 64):
        v = values[j]
        lo = min(lo, v)
        hi = max(hi, v)
    return not (lo < 0 or np.uint64(np.int64(hi)) > um)


@njit(**INLINE)
def _count64(values, j0, t0, t1, t2, t3):
    """Count values[j0:j0 + 64], four loaded before their four increments (FD_IDX_RUN64)."""
    for j in range(j0, j0 + 64, 4):
        p0 = np.uint64(values[j])
        p1 = np.uint64(values[j + 1])
        p2 = np.uint64(values[j + 2])
        p3 = np.uint64(values[j + 3])
        t0[p0] += 1
        t1[p1] += 1
        t2[p2] += 1
        t3[p3] += 1


@njit(**NUMBA_OPTIONS)
def _count_blocks(values, off, i, n, um, t0, t1, t2, t3):
    """Count elements [i, n) 64 at a time up to a block holding a bad index or the last whole
    block: the next element's position.  The blocks index a slice from 0 and the tables unsigned
    indices: numba fixes up negative indices, and on ``values[off + i]`` (``off`` not known to be
    >= 0) that kept this loop at 1.3-1.5 ns a value against 0.33 (1e7 int32, 1,000 entries)."""
    v = values[off + i:off + n]
    m = n - i
    k = 0
    while k + 64 <= m:
        if not _good64(v, k, um):
            break
        _count64(v, k, t0, t1, t2, t3)
        k += 64
    return i + k


@njit(**NUMBA_OPTIONS)
def _count_blocks_first(values, off, i, n, um, bins, unseen, first, zeros):
    """_count_blocks while ``zeros`` entries have not appeared (``unseen[x]`` 1 for them): each
    block counted into bins with its entries' flags ORed on the way, and a block that met an unseen
    entry sets the first positions of its unseen entries, in element order (fd_count_indices'
    FIRST == 2).  Returns (the next element's position, zeros)."""
    v = values[off + i:off + n]
    m = n - i
    k = 0
    while k + 64 <= m and zeros > 0:
        if not _good64(v, k, um):
            break
        f0 = np.uint8(0)
        f1 = np.uint8(0)
        f2 = np.uint8(0)
        f3 = np.uint8(0)
        for j in range(k, k + 64, 4):
            p0 = np.uint64(v[j])
            p1 = np.uint64(v[j + 1])
            p2 = np.uint64(v[j + 2])
            p3 = np.uint64(v[j + 3])
            f0 |= unseen[p0]
            f1 |= unseen[p1]
            f2 |= unseen[p2]
            f3 |= unseen[p3]
            bins[p0] += 1
            bins[p1] += 1
            bins[p2] += 1
            bins[p3] += 1
        if f0 | f1 | f2 | f3:
            for j in range(k, k + 64):
                p = np.uint64(v[j])
                if unseen[p]:
                    unseen[p] = 0
                    first[p] = i + j
                    zeros -= 1
        k += 64
    return i + k, zeros


@njit(**INLINE)
def _fold(bins, sub):
    """Add the split tables (``sub``: four of ``bins``' length end to end, or none) into bins and
    zero them."""
    n_bins = bins.shape[0]
    for k in range(sub.shape[0]):
        bins[k % n_bins] += sub[k]
        sub[k] = 0


@njit(**INLINE)
def _word_valid(validity, b):
    """Bytes b .. b + 7 of the bitmap all 255 (64 valid elements)."""
    for k in range(b, b + 8):
        if validity[k] != 255:
            return False
    return True


#: The set bits of each byte value, lowest first (_BYTE_POS[m, :_BYTE_POP[m]]), for count_indices.
_BYTE_POP = np.array([bin(m).count("1") for m in range(256)], dtype=np.int64)
_BYTE_POS = np.array([[b for b in range(8) if m >> b & 1] + [0] * (8 - bin(m).count("1")) for m in range(256)],
                     dtype=np.int64)


@njit([_RC3(ro_unaligned(vt), ro_unaligned(types.uint8), _I64, _I64, rw(types.int64), rw(types.int64),
            rw(types.int64), rw(types.uint8)) for vt in INT_DTYPES], **NUMBA_OPTIONS)
def count_indices(values, validity, off, n, bins, first, scratch, unseen):
    """Bincount of dictionary indices, with each index's first position (``fd_count_indices``).
    ``scratch``: room for four tables of ``_IDX_SPLIT`` entries (fd_count_indices keeps them on its
    stack; a kernel here allocates nothing), or shorter to count in ``bins`` alone; ``unseen``:
    room for a flag an entry, or shorter to test counts of 0 instead."""
    n_bins = bins.shape[0]
    want_first = first.shape[0] > 0
    if want_first and first.shape[0] != n_bins:
        return FD_EINVAL, 0, 0
    nulls = 0
    has_bits = validity.shape[0] > 0
    # first[] can change only while some entry is still 0 (as fd_count_indices): once none is, the
    # rest runs without the test.
    # typed int64 from the start (not the literal 0): _count_blocks_first, compiled lazily for the
    # types it is called with, then has one specialisation a dtype instead of three (compile time)
    zeros = np.int64(0)
    if want_first:
        for x in range(n_bins):
            zeros += bins[x] == 0
    i = np.int64(0)
    use_unseen = zeros > 0 and n_bins > 0 and unseen.shape[0] >= n_bins
    if use_unseen:
        # Blocks of 64 keep the fast count while an entry has not appeared (as FD_IDX_RUN64's
        # FIRST == 2); the loop below takes a block with a bad index, mixed bitmap words and the
        # tail, and clears the flag of an entry it sees first.
        for x in range(n_bins):
            unseen[x] = bins[x] == 0
        if not has_bits:
            i, zeros = _count_blocks_first(values, off, i, n, np.uint64(n_bins - 1), bins, unseen, first,
                                           zeros)
    while i < n and zeros > 0:
        j = off + i
        if use_unseen and has_bits and (j & 7) == 0 and i + 64 <= n and _word_valid(validity, j >> 3):
            e = i + 64
            while e + 64 <= n and _word_valid(validity, (off + e) >> 3):
                e += 64
            i2, zeros = _count_blocks_first(values, off, i, e, np.uint64(n_bins - 1), bins, unseen, first,
                                            zeros)
            if i2 > i:
                i = i2
                continue
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            nulls += 1
            i += 1
            continue
        # int64 conversion sends uint64 values >= 2**63 negative, i.e. out of
        # range, without a mixed-signedness (float) comparison.
        x = np.int64(values[j])
        if x < 0 or x >= n_bins:
            return FD_EINVAL, i, nulls
        c = bins[x]
        bins[x] = c + 1
        if c == 0:
            first[x] = i
            zeros -= 1
            if use_unseen:
                unseen[x] = 0
        i += 1
    # Blocks of 64 valid elements: their range test first, then four tables' increments, as
    # FD_IDX_RUN64 (four tables of the kernel's own up to _IDX_SPLIT entries, else bins four times).
    split = n_bins <= _IDX_SPLIT and n - i >= 64 * n_bins + 1024 and scratch.shape[0] >= 4 * n_bins
    sub = scratch[:4 * n_bins] if split else scratch[:0]
    if split:
        sub[:] = 0
        t0, t1, t2, t3 = sub[:n_bins], sub[n_bins:2 * n_bins], sub[2 * n_bins:3 * n_bins], sub[3 * n_bins:]
    else:
        t0, t1, t2, t3 = bins, bins, bins, bins
    um = np.uint64(n_bins - 1)
    if not has_bits:
        if n_bins > 0:
            i = _count_blocks(values, off, i, n, um, t0, t1, t2, t3)
        _fold(bins, sub)
        for i in range(i, n):
            x = np.int64(values[off + i])
            if x < 0 or x >= n_bins:
                return FD_EINVAL, i, nulls
            bins[x] += 1
        return FD_OK, n, nulls
    # With a bitmap, a byte of 8 elements at a time (fd_count_indices does 64): a byte of valid
    # elements runs the plain count, a mixed one visits its set bits in order from a table and
    # counts its nulls by popcount, because per-element bit tests mispredict on every null.
    rc, i, nulls = _indices_each(values, validity, off, i, min(n, i + ((8 - ((off + i) & 7)) & 7)), bins, nulls)
    if rc != FD_OK:
        return rc, i, nulls
    # A run of whole 64-element words of valid elements goes to _count_blocks in one call; the
    # block holding a bad index, if any, to the byte loop, which stops at it.
    bytes_until = i
    while i + 8 <= n:
        m = np.int64(validity[(off + i) >> 3])
        if m == 255 and i >= bytes_until and n_bins > 0:
            e = i
            while e + 64 <= n and _word_valid(validity, (off + e) >> 3):
                e += 64
            if e > i:
                j = _count_blocks(values, off, i, e, um, t0, t1, t2, t3)
                bytes_until = j + 64 if j < e else j
                i = j
                continue
        if m == 255:
            for k in range(i, i + 8):
                x = np.int64(values[off + k])
                if x < 0 or x >= n_bins:
                    _fold(bins, sub)
                    return FD_EINVAL, k, nulls
                bins[x] += 1
        else:
            c = _BYTE_POP[m]
            for t in range(c):
                k = i + _BYTE_POS[m, t]
                x = np.int64(values[off + k])
                if x < 0 or x >= n_bins:
                    _fold(bins, sub)
                    return FD_EINVAL, k, nulls + (k - i) - t  # the nulls before k
                bins[x] += 1
            nulls += 8 - c
        i += 8
    _fold(bins, sub)
    return _indices_each(values, validity, off, i, n, bins, nulls)


@njit(_RC2(ro(types.int64), ro(types.int64), rw(types.int64), rw(types.int64)), **NUMBA_OPTIONS)
def first_use_order(counts, first, order, scratch):
    """``fd_first_use_order``: ``(status, n_order)``; ``scratch`` holds ``counts.shape[0] + 256``
    entries (the C twin keeps its 256 counters on the stack)."""
    n = counts.shape[0]
    if first.shape[0] < n or order.shape[0] < n or scratch.shape[0] < n + 256:
        return FD_EINVAL, 0
    m = 0
    max_key = 0
    for x in range(n):
        if counts[x] < 0:
            return FD_EINVAL, 0
        if counts[x] > 0:
            if first[x] < 0:
                return FD_EINVAL, 0
            max_key |= first[x]
            order[m] = x
            m += 1
    if m <= 32:
        for k in range(1, m):
            v = order[k]
            f = first[v]
            j = k
            while j > 0 and first[order[j - 1]] > f:
                order[j] = order[j - 1]
                j -= 1
            order[j] = v
        return FD_OK, m
    # LSD radix sort by first[], 8 bits a pass, stable: fd_sort_by_key
    src_is_order = True
    shift = 0
    while shift < 63 and (max_key >> shift) != 0:
        for d in range(256):
            scratch[n + d] = 0
        for k in range(m):
            e = order[k] if src_is_order else scratch[k]
            scratch[n + ((first[e] >> shift) & 255)] += 1
        run = 0
        whole = False
        for d in range(256):
            c = scratch[n + d]
            if c == m:
                whole = True
                break
            scratch[n + d] = run
            run += c
        if not whole:
            for k in range(m):
                e = order[k] if src_is_order else scratch[k]
                d = n + ((first[e] >> shift) & 255)
                if src_is_order:
                    scratch[scratch[d]] = e
                else:
                    order[scratch[d]] = e
                scratch[d] += 1
            src_is_order = not src_is_order
        shift += 8
    if not src_is_order:
        for k in range(m):
            order[k] = scratch[k]
    return FD_OK, m


@njit(**INLINE)
def _add_status(n, start, off, order, n_order, w):
    """The checks of ``fd_cat_add_run``: the positions ahead in the column, their weights >= 0."""
    if start < 0 or start > n_order or off < 0 or n < 0 or n_order < 0 or order.shape[0] < n_order:
        return FD_EINVAL
    for i in range(start, n_order):
        if order[i] < 0 or order[i] >= n or order[i] >= w.shape[0] or w[order[i]] < 0:
            return FD_EINVAL
    return FD_OK


@njit([_RC3(ro_unaligned(ot), ro_unaligned(types.uint8), ro_unaligned(types.uint8), _I64, _I64, _I64,
            *_TABLE_STR, ro_unaligned(types.int64), _I64, ro(types.int64))
       for ot in (types.int32, types.int64)], **NUMBA_OPTIONS)
def cat_add_order_str(offsets, data, validity, off, n, start, slots, hashes, key_offsets, arena, counts, meta,
                      order, n_order, w):
    """``fd_cat_add_order`` for strings: ``(status, progress, pending key bytes)``."""
    rc = _table_status(slots, hashes, counts, arena.shape[0], True, key_offsets, meta)
    if rc != FD_OK:
        return rc, start, 0
    rc = _add_status(n, start, off, order, n_order, w)
    if rc != FD_OK:
        return rc, start, 0
    has_bits = validity.shape[0] > 0
    for i in range(start, n_order):
        j = off + order[i]
        wt = w[order[i]]
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            meta[FD_CAT_NULL] += wt
            continue
        a = np.int64(offsets[j])
        id_ = _find_or_insert_str(data, a, np.int64(offsets[j + 1]) - a,
                                  slots, hashes, key_offsets, arena, counts, meta)
        if id_ == _ID_GROW:
            pending = 0
            for k in range(i, n_order):
                e = off + order[k]
                pending += np.int64(offsets[e + 1]) - np.int64(offsets[e])
            return FD_EGROW, i, pending
        if id_ >= 0:
            counts[id_] += wt
        else:
            meta[FD_CAT_OTHER] += wt
    return FD_OK, n_order, 0


@njit([_RC3(ro_unaligned(vt), ro_unaligned(types.uint8), _I64, _I64, _I64, *_TABLE_INT,
            ro_unaligned(types.int64), _I64, ro(types.int64))
       for vt in INT_DTYPES], **NUMBA_OPTIONS)
def cat_add_order_int(values, validity, off, n, start, slots, hashes, int_keys, counts, meta, order, n_order, w):
    """``fd_cat_add_order`` for integer keys: ``(status, progress, 0)``."""
    rc = _table_status(slots, hashes, counts, 0, False, int_keys, meta)
    if rc != FD_OK:
        return rc, start, 0
    if int_keys.shape[0] < hashes.shape[0]:
        return FD_EINVAL, start, 0
    rc = _add_status(n, start, off, order, n_order, w)
    if rc != FD_OK:
        return rc, start, 0
    has_bits = validity.shape[0] > 0
    for i in range(start, n_order):
        j = off + order[i]
        wt = w[order[i]]
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            meta[FD_CAT_NULL] += wt
            continue
        id_ = _find_or_insert_int(np.int64(values[j]), slots, hashes, int_keys, counts, meta)
        if id_ == _ID_GROW:
            return FD_EGROW, i, 0
        if id_ >= 0:
            counts[id_] += wt
        else:
            meta[FD_CAT_OTHER] += wt
    return FD_OK, n_order, 0


@njit(_RC3(ro_unaligned(types.uint8), ro_unaligned(types.uint8), _I64, _I64), **NUMBA_OPTIONS)
def bool_count(values, validity, off, n):
    """Count a bit-packed boolean column (``fd_bool_count``)."""
    has_bits = validity.shape[0] > 0
    b = off
    end = off + n
    ones = 0
    valid = 0
    while b < end and (b & 7) != 0:
        if not has_bits or (validity[b >> 3] >> (b & 7)) & 1:
            valid += 1
            ones += (values[b >> 3] >> (b & 7)) & 1
        b += 1
    if has_bits:
        while b + 8 <= end:
            m = validity[b >> 3]
            ones += _POP8[values[b >> 3] & m]
            valid += _POP8[m]
            b += 8
    else:
        b0 = b
        while b + 8 <= end:
            ones += _POP8[values[b >> 3]]
            b += 8
        valid += b - b0
    while b < end:
        if not has_bits or (validity[b >> 3] >> (b & 7)) & 1:
            valid += 1
            ones += (values[b >> 3] >> (b & 7)) & 1
        b += 1
    return ones, valid - ones, n - valid


# ---- fd_seg_cat_count: counts per segment in the lookup's one pass ------------

_INT64_MAX = 2**63 - 1
_SEG_ARGS = (ro(types.int32), types.int32, _I64, rw(types.int64), rw(types.int64), _I64, rw(types.int64))


@njit(_I64(_I64, _I64, _I64, types.int32, _I64), **INLINE)
def _seg_prologue(start, n, off, n_seg, width):
    # fd_seg_cat_count's argument checks after the table's, same order: -1 to go on, else a status.
    if start < 0 or start > n or off < 0 or n < 0 or width < 0 or (width > 0 and n_seg > _INT64_MAX // width):
        return FD_EINVAL
    if start == n:
        return FD_OK
    return -1


@njit(_B(_I64, _I64, ro(types.int32), types.int32, _I64, rw(types.int64), rw(types.int64), _I64), **INLINE)
def _seg_emit(i, id_, codes, n_seg, width, bins, first, first_base):
    # FD_CAT_EMIT of fd_seg_cat_count: False on a bad code, or an id outside the rows (OTHER too).
    s = np.int64(codes[i])
    if s < 0 or s >= n_seg or id_ < 0 or id_ >= width:
        return False
    k = s * width + id_
    if bins[k] == 0 and first.shape[0] > 0:
        first[k] = first_base + i
    bins[k] += 1
    return True


@njit(_B(_I64, ro(types.int32), types.int32, rw(types.int64)), **INLINE)
def _seg_null(i, codes, n_seg, n_null):
    # FD_CAT_NULL_EMIT of fd_seg_cat_count: a null row counted in its segment; False on a bad code.
    s = np.int64(codes[i])
    if s < 0 or s >= n_seg:
        return False
    n_null[s] += 1
    return True


@njit([_RC3(ro_unaligned(ot), ro_unaligned(types.uint8), ro_unaligned(types.uint8), _I64, _I64, _I64,
            *_TABLE_STR, *_SEG_ARGS) for ot in (types.int32, types.int64)], **NUMBA_OPTIONS)
def seg_count_str(offsets, data, validity, off, n, start, slots, hashes, key_offsets, arena, counts, meta,
                  codes, n_seg, width, bins, first, first_base, n_null):
    """``fd_seg_cat_count`` of a string column: :func:`cat_run_str`'s find-or-insert, each row counted
    in its segment's row of ``bins`` (``width`` ids wide) at once: ``(status, progress, bad)``."""
    if n_seg < 1:
        return FD_EINVAL, 0, 0  # as C, before it sets either
    rc = _table_status(slots, hashes, counts, arena.shape[0], True, key_offsets, meta)
    if rc != FD_OK:
        return rc, start, -1
    if width < hashes.shape[0]:
        return FD_EINVAL, start, -1
    rc = _seg_prologue(start, n, off, n_seg, width)
    if rc >= 0:
        return rc, (n if rc == FD_OK else start), -1
    has_bits = validity.shape[0] > 0
    for i in range(start, n):
        j = off + i
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            if not _seg_null(i, codes, n_seg, n_null):
                return FD_EINVAL, i, i
            continue
        a = np.int64(offsets[j])
        id_ = _find_or_insert_str(data, a, np.int64(offsets[j + 1]) - a,
                                  slots, hashes, key_offsets, arena, counts, meta)
        if id_ == _ID_GROW:
            return FD_EGROW, i, -1
        if not _seg_emit(i, id_, codes, n_seg, width, bins, first, first_base):
            return FD_EINVAL, i, i
    return FD_OK, n, -1


@njit([_RC3(ro_unaligned(vt), ro_unaligned(types.uint8), _I64, _I64, _I64, *_TABLE_INT, *_SEG_ARGS)
       for vt in INT_DTYPES], **NUMBA_OPTIONS)
def seg_count_int(values, validity, off, n, start, slots, hashes, int_keys, counts, meta,
                  codes, n_seg, width, bins, first, first_base, n_null):
    """``fd_seg_cat_count`` of an integer column (see :func:`seg_count_str`)."""
    if n_seg < 1:
        return FD_EINVAL, 0, 0
    rc = _table_status(slots, hashes, counts, 0, False, int_keys, meta)
    if rc != FD_OK:
        return rc, start, -1
    if int_keys.shape[0] < hashes.shape[0] or width < hashes.shape[0]:
        return FD_EINVAL, start, -1
    rc = _seg_prologue(start, n, off, n_seg, width)
    if rc >= 0:
        return rc, (n if rc == FD_OK else start), -1
    has_bits = validity.shape[0] > 0
    for i in range(start, n):
        j = off + i
        if has_bits and ((validity[j >> 3] >> (j & 7)) & 1) == 0:
            if not _seg_null(i, codes, n_seg, n_null):
                return FD_EINVAL, i, i
            continue
        id_ = _find_or_insert_int(np.int64(values[j]), slots, hashes, int_keys, counts, meta)
        if id_ == _ID_GROW:
            return FD_EGROW, i, -1
        if not _seg_emit(i, id_, codes, n_seg, width, bins, first, first_base):
            return FD_EINVAL, i, i
    return FD_OK, n, -1
