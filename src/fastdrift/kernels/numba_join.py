"""The label join store's kernels (numba): stable request-id hashes and an open-addressing table.

Used by :mod:`fastdrift.monitor.labels` only, imported the first time a monitor joins labels.

* :func:`hash_strings` hashes the UTF-8 bytes of an Arrow string array (offsets + data buffers) with
  FNV-1a 64 followed by the splitmix64 finaliser: the same request id gives the same 64-bit key in
  every process and on every run (Python's ``hash()`` is salted per process).  Key 0 marks an empty
  slot, so a hash of 0 becomes 1.
* The table is linear probing over parallel arrays (key, score, pane, prediction time, flag); a slot
  is empty (flag 0), a prediction waiting for its label (1), a labelled prediction kept to count
  duplicate labels (2) or a tombstone (3: removed, probing goes on past it).  An optional last
  array ``shadow`` (a challenger's score per slot) travels with the entries when it has the
  table's size; callers without one pass an empty array.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import NUMBA_OPTIONS

__all__ = ["hash_strings", "table_insert", "table_join", "table_expire"]

EMPTY, WAITING, LABELLED, TOMB = 0, 1, 2, 3
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(**NUMBA_OPTIONS)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(**NUMBA_OPTIONS)
def hash_strings(offsets, data, out):
    """``out[i]`` = the key of string ``i`` (``offsets`` has ``len(out) + 1`` entries, int64)."""
    for i in range(out.size):
        h = _FNV_OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * _FNV_PRIME
        h = _mix(h)
        out[i] = h if h != np.uint64(0) else np.uint64(1)


@njit(**NUMBA_OPTIONS)
def table_insert(keys, score, pane, ts, flag, k, s, p, t, counts, shadow, sh):
    """Remember predictions ``(k, s, p, t)``; first wins for a key already held.

    ``counts`` (int64[3]): in = [live entries, max live entries, tombstones]; updated in place.
    Returns ``(inserted, duplicates, full)``: a prediction is left out (``full``) once the table
    holds its maximum of live entries.  The caller keeps live entries plus tombstones below 3/4 of
    the slots, so probing ends at an empty slot.  ``sh``: the shadow scores (with ``shadow``)."""
    mask = keys.size - 1
    has_shadow = shadow.size > 0
    ins = dup = full = 0
    for i in range(k.size):
        key = k[i]
        if counts[0] >= counts[1]:
            full += 1
            continue
        h = np.int64(_mix(key) & np.uint64(mask))
        found = False
        while True:
            f = flag[h]
            if f == 0:
                break
            if f != 3 and keys[h] == key:
                found = True
                break
            h = (h + 1) & mask
        if found:
            dup += 1
            continue
        # an empty slot, not a tombstone: tombstones tell late labels from unknown ones until a
        # rehash drops them
        free = h
        keys[free] = key
        score[free] = s[i]
        pane[free] = p[i]
        ts[free] = t[i]
        flag[free] = 1
        if has_shadow:
            shadow[free] = sh[i]
        counts[0] += 1
        ins += 1
    return ins, dup, full


@njit(**NUMBA_OPTIONS)
def table_join(keys, score, pane, ts, flag, k, lts, horizon, min_pane, status, out_score, out_pane, out_delay,
               shadow, out_shadow):
    """Join labels with keys ``k`` at times ``lts``: ``status[i]`` = 1 joined (first label of its
    prediction; ``out_*`` set), 0 no prediction with that key, 2 a duplicate label (the prediction
    was labelled before: first wins), 3 too late (more than ``horizon`` seconds after the prediction,
    its pane older than ``min_pane``, or the prediction expired and its tombstone is still held).
    ``out_shadow`` gets the shadow score of a joined label (with ``shadow``)."""
    mask = keys.size - 1
    has_shadow = shadow.size > 0
    for i in range(k.size):
        key = k[i]
        h = np.int64(_mix(key) & np.uint64(mask))
        st = 0
        while True:
            f = flag[h]
            if f == 0:
                break
            if keys[h] == key and f == 3:
                st = 3  # expired: too late, unless the id was predicted again since
            elif keys[h] == key:
                if f == 2:
                    st = 2
                elif lts[i] - ts[h] > horizon or pane[h] < min_pane:
                    st = 3
                else:
                    st = 1
                    flag[h] = 2
                    out_score[i] = score[h]
                    out_pane[i] = pane[h]
                    out_delay[i] = lts[i] - ts[h]
                    if has_shadow:
                        out_shadow[i] = shadow[h]
                break
            h = (h + 1) & mask
        status[i] = st


@njit(**NUMBA_OPTIONS)
def table_expire(keys, flag, ts, before, counts):
    """Tombstone every entry predicted before ``before``; returns how many."""
    n = 0
    for h in range(keys.size):
        f = flag[h]
        if (f == 1 or f == 2) and ts[h] < before:
            flag[h] = 3
            n += 1
    counts[0] -= n
    counts[2] += n
    return n


@njit(**NUMBA_OPTIONS)
def table_rehash(keys, score, pane, ts, flag, nkeys, nscore, npane, nts, nflag, keep_tombs, shadow, nshadow):
    """Copy the live entries (and the tombstones with ``keep_tombs``) into empty arrays; returns
    the tombstones copied.  ``shadow`` goes to ``nshadow`` when both are non-empty."""
    mask = nkeys.size - 1
    has_shadow = shadow.size > 0 and nshadow.size > 0
    kept = 0
    for h in range(keys.size):
        f = flag[h]
        if f == 1 or f == 2 or (keep_tombs and f == 3):
            kept += f == 3
            j = np.int64(_mix(keys[h]) & np.uint64(mask))
            while nflag[j] != 0:
                j = (j + 1) & mask
            nkeys[j] = keys[h]
            nscore[j] = score[h]
            npane[j] = pane[h]
            nts[j] = ts[h]
            nflag[j] = f
            if has_shadow:
                nshadow[j] = shadow[h]
    return kept
