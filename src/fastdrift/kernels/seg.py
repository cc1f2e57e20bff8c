"""Segmented kernels (``kernels/fd_seg.c``, numba twins in :mod:`.numba_seg`): rows carry int32
segment codes and each is gathered for, or counted into, its own segment in one read.

:func:`scatter` groups a fixed-width numeric chunk by segment (a stable counting sort in the
chunk's own type, nulls kept), so that any kernel run on one segment's stretch reads the array it
would read had that segment's rows come alone: the same bytes by construction.
:func:`count_indices` is the per-segment ``fd_count_indices`` of dictionary indices.  The backend
is the ``"segments"`` family's (:func:`fastdrift.kernels.get_backend`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ..errors import InvalidInputError
from . import Family, check_out
from .hist import HIST, HistIndex
from .moments import MOMENTS
from .native import FD_EGROW, FD_EINVAL, FD_OK, check, column, ffi, lib, ptr

__all__ = ["SEG", "scatter", "count_indices", "scatterable", "hist_update_parts", "moments_update_parts",
           "positions", "scatter_to", "MAX_POSITIONS", "short_keys"]

#: :func:`positions` are int32: batches of more rows group each column by :func:`scatter`.
MAX_POSITIONS = 2**31 - 1

_WIDTH = {lib.FD_F64: 8, lib.FD_F32: 4, lib.FD_I8: 1, lib.FD_I16: 2, lib.FD_I32: 4, lib.FD_I64: 8,
          lib.FD_U8: 1, lib.FD_U16: 2, lib.FD_U32: 4, lib.FD_U64: 8}
_EMPTY_U8 = np.zeros(0, np.uint8)
_EMPTY_I64 = np.zeros(0, np.int64)


class _CSeg:
    @staticmethod
    def scatter(view, codes, n_seg, pos, out, out_valid):
        bad = ffi.new("int64_t*")
        rc = lib.fd_seg_scatter(column(view), ptr("const int32_t*", codes), n_seg, ptr("int64_t*", pos),
                                ptr("void*", out), out.size,
                                ptr("uint8_t*", out_valid) if out_valid is not None else ffi.NULL, bad)
        return rc, bad[0]

    @staticmethod
    def positions(codes, n_seg, pos, n_out, dest):
        bad = ffi.new("int64_t*")
        rc = lib.fd_seg_positions(ptr("const int32_t*", codes), codes.size, n_seg, ptr("int64_t*", pos), n_out,
                                  ptr("int32_t*", dest), bad)
        return rc, bad[0]

    @staticmethod
    def scatter_to(view, dest, out, out_valid):
        bad = ffi.new("int64_t*")
        rc = lib.fd_seg_scatter_to(column(view), ptr("const int32_t*", dest), ptr("void*", out), out.size,
                                   ptr("uint8_t*", out_valid) if out_valid is not None else ffi.NULL, bad)
        return rc, bad[0]

    @staticmethod
    def short_keys(view, words, lens, slots, n_keys, ids):
        nk, prog = ffi.new("int64_t*", n_keys), ffi.new("int64_t*")
        rc = lib.fd_seg_short_keys(column(view), ptr("uint64_t*", words), ptr("int32_t*", lens), words.size,
                                   ptr("int32_t*", slots), slots.size, nk, ptr("int32_t*", ids), prog)
        return rc, nk[0], prog[0]

    @staticmethod
    def count_indices(view, codes, n_seg, n_bins, bins, first, n_null):
        bad = ffi.new("int64_t*")
        rc = lib.fd_seg_count_indices(column(view), ptr("const int32_t*", codes), n_seg, n_bins,
                                      ptr("int64_t*", bins),
                                      ptr("int64_t*", first) if first is not None else ffi.NULL, ptr("int64_t*", n_null), bad)
        return rc, bad[0]

    @staticmethod
    def hist_parts(view, index, starts, lens, counts, specials):
        return lib.fd_seg_hist_update(column(view), index.c_index, starts.size, ptr("const int64_t*", starts),
                                      ptr("const int64_t*", lens), ptr("int64_t*", counts), ptr("int64_t*", specials))

    @staticmethod
    def moments_parts(view, starts, lens, ints, flts):
        return lib.fd_seg_moments_update(column(view), starts.size, ptr("const int64_t*", starts),
                                         ptr("const int64_t*", lens), ptr("int64_t*", ints), ptr("double*", flts))


class _NumbaSeg:
    def __init__(self):
        from . import numba_seg  # numba loads only when this backend is used

        self.k = numba_seg

    def scatter(self, view, codes, n_seg, pos, out, out_valid):
        values = view.values.view(out.dtype)
        return self.k.scatter(values, view.validity, view.offset, view.length, codes, n_seg, pos, out,
                              out_valid if out_valid is not None else _EMPTY_U8)

    def positions(self, codes, n_seg, pos, n_out, dest):
        return self.k.positions(codes, n_seg, pos, n_out, dest)

    def short_keys(self, view, words, lens, slots, n_keys, ids):
        return self.k.short_keys(view.offsets, view.values if view.values is not None else _EMPTY_U8, view.validity,
                                 view.offset, view.length, words, lens, slots, n_keys, ids)

    def scatter_to(self, view, dest, out, out_valid):
        values = view.values.view(out.dtype)
        return self.k.scatter_to(values, view.validity, view.offset, view.length, dest, out,
                                 out_valid if out_valid is not None else _EMPTY_U8)

    def count_indices(self, view, codes, n_seg, n_bins, bins, first, n_null):
        return self.k.count_indices(view.values, view.validity, view.offset, view.length, codes, n_seg, n_bins,
                                    bins, first if first is not None else _EMPTY_I64, n_null)

    # fd_seg_hist_update / fd_seg_moments_update: the numba kernels on each part's stretch
    @staticmethod
    def hist_parts(view, index, starts, lens, counts, specials):
        k = HIST("numba")
        for j in range(starts.size):
            part = dataclasses.replace(view, offset=view.offset + int(starts[j]), length=int(lens[j]))
            rc = k.update(part, index, counts[j], specials[j])
            if rc != FD_OK:
                return rc
        return FD_OK

    @staticmethod
    def moments_parts(view, starts, lens, ints, flts):
        k = MOMENTS("numba")
        for j in range(starts.size):
            part = dataclasses.replace(view, offset=view.offset + int(starts[j]), length=int(lens[j]))
            rc = k.update(part, ints[j], flts[j])
            if rc != FD_OK:
                return rc
        return FD_OK


#: The segmented kernels' backend objects (``scatter``, ``count_indices``; status first).
SEG = Family("segments", c=_CSeg, numba=_NumbaSeg)


def scatterable(view) -> bool:
    """Whether :func:`scatter` reads ``view`` (a numeric chunk of a fixed-width type)."""
    return view.kind == "numeric" and view.type_code in _WIDTH


def _codes(codes, n: int, n_seg: int, what: str) -> np.ndarray:
    if not (isinstance(codes, np.ndarray) and codes.dtype == np.int32 and codes.ndim == 1 and codes.flags.c_contiguous):
        raise InvalidInputError(f"{what}: segment codes must be a contiguous int32 array")
    if codes.shape[0] != n:
        raise InvalidInputError(f"{what}: {codes.shape[0]} segment codes for {n} rows")
    if isinstance(n_seg, bool) or not 1 <= int(n_seg) < 2**31:
        raise InvalidInputError(f"{what}: n_seg must be in [1, 2**31), got {n_seg!r}")
    return codes


def _bad_code(what, view, codes, n_seg, bad):
    c = int(codes[bad])
    if not 0 <= c < n_seg:
        raise InvalidInputError(f"column {view.name!r}: {what}: segment code {c} of row {bad} is outside "
                                f"[0, {n_seg})")


def scatter(view, codes: np.ndarray, n_seg: int, pos: np.ndarray, out: np.ndarray,
            out_valid: Optional[np.ndarray], backend: Optional[str] = None) -> None:
    """Append the elements of ``view`` (a fixed-width numeric chunk) to their segments' stretches of ``out``.

    Parameters
    ----------
    view : ColumnView
        A numeric chunk (:func:`scatterable`).
    codes : numpy.ndarray of int32
        One segment code in ``[0, n_seg)`` per element.
    n_seg : int
    pos : numpy.ndarray of int64
        ``n_seg`` write positions in ``out``, advanced past each element written.
    out : numpy.ndarray
        Of the chunk's own dtype.
    out_valid : numpy.ndarray of uint8, optional
        Zeroed bitmap over ``out`` (required when the chunk has nulls): valid elements set their bit
        (every element of a chunk without nulls).

    Raises
    ------
    InvalidInputError
        A code outside ``[0, n_seg)``, or a position outside ``out`` (``out`` is then partly written).
    """
    n = view.length
    what = "segment scatter"
    _codes(codes, n, n_seg, what)
    check_out(pos, np.int64, int(n_seg), "pos")
    _check_out(view, out, out_valid, what)
    rc, bad = SEG(backend).scatter(view, codes, int(n_seg), pos, out, out_valid)
    if rc == FD_EINVAL and bad >= 0:
        _bad_code(what, view, codes, n_seg, bad)
        raise InvalidInputError(f"column {view.name!r}: {what}: row {bad} goes past the end of out "
                                f"({out.size} elements) or before its start")
    check(rc, what, view.name)


def positions(codes: np.ndarray, n_seg: int, pos: np.ndarray, n_out: int, backend: Optional[str] = None) -> np.ndarray:
    """Where :func:`scatter` would write each element of a chunk with these ``codes``: ``dest[i] =
    pos[codes[i]]++`` (int32), made once for a batch so that each of its columns is grouped by
    :func:`scatter_to` without a counting sort of its own.

    Raises
    ------
    InvalidInputError
        A code outside ``[0, n_seg)``, a position outside ``[0, n_out)``, or ``n_out`` above
        :data:`MAX_POSITIONS`.
    """
    what = "segment positions"
    n = int(codes.shape[0]) if isinstance(codes, np.ndarray) else -1
    _codes(codes, n, n_seg, what)
    check_out(pos, np.int64, int(n_seg), "pos")
    if isinstance(n_out, bool) or not 0 <= int(n_out) <= MAX_POSITIONS:
        raise InvalidInputError(f"{what}: n_out must be in [0, {MAX_POSITIONS}], got {n_out!r}")
    dest = np.empty(n, np.int32)
    rc, bad = SEG(backend).positions(codes, int(n_seg), pos, int(n_out), dest)
    if rc == FD_EINVAL and bad >= 0:
        c = int(codes[bad])
        if not 0 <= c < n_seg:
            raise InvalidInputError(f"{what}: segment code {c} of row {bad} is outside [0, {n_seg})")
        raise InvalidInputError(f"{what}: row {bad} goes past the end of out ({n_out} elements) or before its start")
    check(rc, what)
    return dest


def scatter_to(view, dest: np.ndarray, out: np.ndarray, out_valid: Optional[np.ndarray],
               backend: Optional[str] = None) -> None:
    """``out[dest[i]] = `` element ``i`` of ``view`` (a fixed-width numeric chunk), ``dest`` from
    :func:`positions`: the ``out`` and ``out_valid`` :func:`scatter` writes with the codes and
    positions that made ``dest``.

    Raises
    ------
    InvalidInputError
        A position outside ``out`` (``out`` is then partly written), or bad arguments.
    """
    what = "segment scatter"
    if not (isinstance(dest, np.ndarray) and dest.dtype == np.int32 and dest.ndim == 1 and dest.flags.c_contiguous
            and dest.shape[0] == view.length):
        raise InvalidInputError(f"{what}: dest must be a contiguous int32 array of the chunk's length")
    _check_out(view, out, out_valid, what)
    rc, bad = SEG(backend).scatter_to(view, dest, out, out_valid)
    if rc == FD_EINVAL and bad >= 0:
        raise InvalidInputError(f"column {view.name!r}: {what}: row {bad} goes past the end of out "
                                f"({out.size} elements) or before its start")
    check(rc, what, view.name)


#: :func:`short_keys` gives up past this many distinct values (a segment column has few).
SHORT_KEYS_MAX = 1024
_SHORT_NULL = 9


def short_keys(views, backend: Optional[str] = None):
    """Keys of a segment column's string chunks (``views``, in order) whose values are at most
    8 bytes and at most :data:`SHORT_KEYS_MAX` distinct (``fd_seg_short_keys``): ``(keys, ids)``,
    ``keys`` the distinct values in order of first arrival (``bytes``, None for null), ``ids`` the
    int32 index of each row's value; None when a value is longer or there are more.

    Raises
    ------
    InvalidInputError
        A chunk that is not of strings.
    """
    n = sum(v.length for v in views)
    for v in views:
        if v.kind != "string":
            raise InvalidInputError(f"column {v.name!r}: short keys read string chunks, got {v.kind}")
    words = np.zeros(SHORT_KEYS_MAX, np.uint64)
    lens = np.zeros(SHORT_KEYS_MAX, np.int32)
    slots = np.full(4 * SHORT_KEYS_MAX, -1, np.int32)
    ids = np.empty(n, np.int32)
    n_keys, at, b = 0, 0, SEG(backend)
    for v in views:
        rc, n_keys, _ = b.short_keys(v, words, lens, slots, n_keys, ids[at:at + v.length])
        if rc == FD_EGROW:
            return None
        check(rc, "segment short keys", v.name)
        at += v.length
    raw = words[:n_keys].astype("<u8").tobytes()
    keys = [None if int(k) == _SHORT_NULL else raw[8 * j:8 * j + int(k)] for j, k in enumerate(lens[:n_keys])]
    return keys, ids


def _check_out(view, out, out_valid, what: str) -> None:
    if not (isinstance(out, np.ndarray) and out.flags.c_contiguous and out.flags.writeable and out.ndim == 1
            and out.dtype.itemsize == _WIDTH.get(view.type_code, -1)):
        raise InvalidInputError(f"{what}: out must be a writable contiguous array of the chunk's width")
    if view.has_validity and out_valid is None:
        raise InvalidInputError(f"{what}: a chunk with nulls needs a bitmap over out")
    if out_valid is not None and not (isinstance(out_valid, np.ndarray) and out_valid.dtype == np.uint8
                                      and out_valid.ndim == 1 and out_valid.flags.c_contiguous
                                      and out_valid.flags.writeable and out_valid.size * 8 >= out.size):
        raise InvalidInputError(f"{what}: out_valid must be a writable contiguous uint8 bitmap over out")


def count_indices(view, codes: np.ndarray, n_seg: int, n_bins: int, bins: np.ndarray,
                  first: Optional[np.ndarray], n_null: np.ndarray, backend: Optional[str] = None) -> None:
    """Per-segment counts of a chunk of dictionary indices (``fd_seg_count_indices``).

    ``bins`` (``n_seg * n_bins``) and ``n_null`` (``n_seg``) are added to; ``first[s * n_bins + x]``
    becomes the element of index ``x``'s first occurrence in segment ``s`` where ``bins`` went from 0.

    Raises
    ------
    InvalidInputError
        A code outside ``[0, n_seg)`` or an index outside ``[0, n_bins)`` (outputs then partly written).
    """
    what = "segment index counts"
    _codes(codes, view.length, n_seg, what)
    check_out(bins, np.int64, int(n_seg) * int(n_bins), "bins")
    if first is not None:
        check_out(first, np.int64, int(n_seg) * int(n_bins), "first")
    check_out(n_null, np.int64, int(n_seg), "n_null")
    rc, bad = SEG(backend).count_indices(view, codes, int(n_seg), int(n_bins), bins, first, n_null)
    if rc == FD_EINVAL and bad >= 0:
        _bad_code(what, view, codes, n_seg, bad)
        raise InvalidInputError(f"column {view.name!r}: dictionary index at position {bad} is outside the "
                                f"dictionary of length {n_bins}")
    check(rc, what, view.name)


def _parts(view, starts, lens, what: str):
    if view.kind != "numeric":
        raise InvalidInputError(f"column {view.name!r}: {what}: a numeric chunk is needed, got {view.kind}")
    for a, nm in ((starts, "starts"), (lens, "lens")):
        if not (isinstance(a, np.ndarray) and a.dtype == np.int64 and a.ndim == 1 and a.flags.c_contiguous):
            raise InvalidInputError(f"{what}: {nm} must be a contiguous int64 array")
    if starts.shape != lens.shape or starts.size >= 2**31:
        raise InvalidInputError(f"{what}: {starts.size} starts for {lens.size} lengths")
    if starts.size and (starts.min() < 0 or lens.min() < 0 or (starts + lens).max() > view.length):
        raise InvalidInputError(f"column {view.name!r}: {what}: a part lies outside the chunk's "
                                f"{view.length} elements")


def _rows(a, dtype, shape, name: str) -> None:
    if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == shape and a.flags.c_contiguous
            and a.flags.writeable):
        raise InvalidInputError(f"{name} must be a writable contiguous {np.dtype(dtype).name} array of shape {shape}")


def hist_update_parts(view, index: HistIndex, starts: np.ndarray, lens: np.ndarray, counts: np.ndarray,
                      specials: np.ndarray, backend: Optional[str] = None) -> None:
    """:func:`~fastdrift.kernels.hist.hist_update` of each part of a chunk, in one call
    (``fd_seg_hist_update``): part ``j`` (elements ``starts[j]`` to ``starts[j] + lens[j]`` of
    ``view``, a segment's stretch from :func:`scatter`) counted alone into ``counts[j]`` and
    ``specials[j]`` (``[null, nan]``), the same as the single call on that stretch.

    Raises
    ------
    InvalidInputError
        Bad shapes, or a part outside the chunk (nothing counted).
    """
    what = "segment histograms"
    _parts(view, starts, lens, what)
    _rows(counts, np.int64, (starts.size, index.n_edges + 1), "counts")
    _rows(specials, np.int64, (starts.size, 2), "specials")
    check(SEG(backend).hist_parts(view, index, starts, lens, counts, specials), what, view.name)


def moments_update_parts(view, starts: np.ndarray, lens: np.ndarray, ints: np.ndarray, flts: np.ndarray,
                         backend: Optional[str] = None) -> None:
    """:func:`~fastdrift.kernels.moments.moments_update` of each part of a chunk, in one call
    (``fd_seg_moments_update``): part ``j`` counted alone into the state ``(ints[j], flts[j])``,
    bit for bit the single call on that stretch.

    Raises
    ------
    InvalidInputError
        Bad shapes, or a part outside the chunk (nothing counted).
    """
    what = "segment moments"
    _parts(view, starts, lens, what)
    _rows(ints, np.int64, (starts.size, 5), "ints")
    _rows(flts, np.float64, (starts.size, 5), "flts")
    check(SEG(backend).moments_parts(view, starts, lens, ints, flts), what, view.name)
