/* fd_seg.c -- segmented kernels: each row of a column carries a segment code
 * (int32, one per row, from fastdrift.adapters.segments.Segmenter), and rows
 * are counted into, or gathered for, their own segment in one read of the
 * column.
 *
 * fd_seg_scatter is a stable counting sort of a fixed-width column by code:
 * every segment's rows come out contiguous, in their order, with their nulls,
 * in the column's own type.  A kernel run on one segment's stretch therefore
 * reads exactly the array it would read had the segment's rows been given on
 * their own: moments (whose 1024-element blocks and 16 summation lanes follow
 * element positions, fd_moments.c), histograms and t-digest inserts give the
 * same bytes by construction, with no per-segment state inside this file.
 *
 * fd_seg_count_indices is fd_count_indices (fd_cat.c) with one bins/first
 * row per segment: categorical counts never move the data.
 */
#include "fd_internal.h"

static int fd_seg_width(int32_t type)
{
    switch (type) {
    case FD_I8: case FD_U8: return 1;
    case FD_I16: case FD_U16: return 2;
    case FD_F32: case FD_I32: case FD_U32: return 4;
    case FD_F64: case FD_I64: case FD_U64: return 8;
    default: return 0;
    }
}

#define FD_SEG_SCATTER(T)                                                     \
    do {                                                                      \
        const T *v = (const T *)col->values + off;                            \
        T *o = (T *)out;                                                      \
        for (int64_t i = 0; i < n; ++i) {                                     \
            const int32_t c = codes[i];                                       \
            if ((uint32_t)c >= (uint32_t)n_seg) {                             \
                *bad = i;                                                     \
                return FD_EINVAL;                                             \
            }                                                                 \
            const int64_t p = pos[c]++;                                       \
            if (p < 0 || p >= n_out) {                                        \
                *bad = i;                                                     \
                return FD_EINVAL;                                             \
            }                                                                 \
            o[p] = v[i];                                                      \
            if (out_valid && fd_valid(bits, off + i))                         \
                out_valid[p >> 3] |= (uint8_t)(1u << (p & 7));                \
        }                                                                     \
    } while (0)

int fd_seg_scatter(const fd_column *col, const int32_t *codes, int32_t n_seg, int64_t *pos,
                   void *out, int64_t n_out, uint8_t *out_valid, int64_t *bad)
{
    if (col == 0 || bad == 0 || n_seg < 1 || pos == 0)
        return FD_EINVAL;
    *bad = -1;
    const int w = fd_seg_width(col->type);
    if (w == 0)
        return FD_ETYPE;
    const int64_t off = col->offset, n = col->length;
    if (off < 0 || n < 0)
        return FD_EINVAL;
    if (n == 0)
        return FD_OK;
    const uint8_t *bits = col->validity;
    if (col->values == 0 || codes == 0 || out == 0 || (bits && out_valid == 0))
        return FD_EINVAL;
    switch (w) {
    case 1: FD_SEG_SCATTER(uint8_t); break;
    case 2: FD_SEG_SCATTER(uint16_t); break;
    case 4: FD_SEG_SCATTER(uint32_t); break;
    default: FD_SEG_SCATTER(uint64_t); break;
    }
    return FD_OK;
}

#define FD_SEG_IDX(T, BAD_IDX)                                                \
    do {                                                                      \
        const T *v = (const T *)col->values + off;                            \
        for (int64_t i = 0; i < n; ++i) {                                     \
            const int32_t c = codes[i];                                       \
            if ((uint32_t)c >= (uint32_t)n_seg) {                             \
                *bad = i;                                                     \
                return FD_EINVAL;                                             \
            }                                                                 \
            if (bits && !fd_valid(bits, off + i)) {                           \
                n_null[c]++;                                                  \
                continue;                                                     \
            }                                                                 \
            const T x = v[i];                                                 \
            if (BAD_IDX) {                                                    \
                *bad = i;                                                     \
                return FD_EINVAL;                                             \
            }                                                                 \
            const int64_t k = (int64_t)c * n_bins + (int64_t)x;               \
            if (bins[k]++ == 0 && first)                                      \
                first[k] = i;                                                 \
        }                                                                     \
    } while (0)

int fd_seg_count_indices(const fd_column *col, const int32_t *codes, int32_t n_seg, int64_t n_bins,
                         int64_t *bins, int64_t *first, int64_t *n_null, int64_t *bad)
{
    if (col == 0 || bad == 0 || n_null == 0 || n_seg < 1 || n_bins < 0)
        return FD_EINVAL;
    *bad = -1;
    if (col->type < FD_I8 || col->type > FD_U64)
        return FD_ETYPE;
    const int64_t off = col->offset, n = col->length;
    if (off < 0 || n < 0)
        return FD_EINVAL;
    if (n == 0)
        return FD_OK;
    if (col->values == 0 || codes == 0 || (n_bins > 0 && bins == 0))
        return FD_EINVAL;
    const uint8_t *bits = col->validity;
    switch (col->type) {
    case FD_I8: FD_SEG_IDX(int8_t, x < 0 || (int64_t)x >= n_bins); break;
    case FD_I16: FD_SEG_IDX(int16_t, x < 0 || (int64_t)x >= n_bins); break;
    case FD_I32: FD_SEG_IDX(int32_t, x < 0 || (int64_t)x >= n_bins); break;
    case FD_I64: FD_SEG_IDX(int64_t, x < 0 || x >= n_bins); break;
    case FD_U8: FD_SEG_IDX(uint8_t, (int64_t)x >= n_bins); break;
    case FD_U16: FD_SEG_IDX(uint16_t, (int64_t)x >= n_bins); break;
    case FD_U32: FD_SEG_IDX(uint32_t, (int64_t)x >= n_bins); break;
    default: FD_SEG_IDX(uint64_t, x >= (uint64_t)n_bins); break;
    }
    return FD_OK;
}

/* fd_seg_hist_update / fd_seg_moments_update: one call for the segments of a
 * column grouped by fd_seg_scatter.  Part j is elements [starts[j], starts[j]
 * + lens[j]) of col; each is counted by fd_hist_update / fd_moments_update on
 * that stretch alone (a column of the same buffers, offset and length moved)
 * into its own state row, so every row ends as the per-segment call would
 * leave it, bit for bit.  The parts are checked before anything is counted;
 * a kernel error stops at that part (earlier rows counted: callers use
 * scratch). */
static int fd_seg_parts_ok(const fd_column *col, int32_t n_part, const int64_t *starts, const int64_t *lens)
{
    if (col == 0 || n_part < 0 || (n_part > 0 && (starts == 0 || lens == 0)))
        return 0;
    if (col->offset < 0 || col->length < 0)
        return 0;
    for (int32_t j = 0; j < n_part; ++j)
        if (starts[j] < 0 || lens[j] < 0 || starts[j] > col->length - lens[j])
            return 0;
    return 1;
}

int fd_seg_hist_update(const fd_column *col, const fd_hist_index *ix, int32_t n_part,
                       const int64_t *starts, const int64_t *lens, int64_t *counts, int64_t *specials)
{
    if (ix == 0 || ix->n_edges < 0 || !fd_seg_parts_ok(col, n_part, starts, lens)
        || (n_part > 0 && (counts == 0 || specials == 0)))
        return FD_EINVAL;
    const int64_t n_bins = ix->n_edges + 1;
    for (int32_t j = 0; j < n_part; ++j) {
        fd_column part = *col;
        part.offset = col->offset + starts[j];
        part.length = lens[j];
        const int rc = fd_hist_update(&part, ix, counts + (int64_t)j * n_bins, specials + 2 * (int64_t)j,
                                      specials + 2 * (int64_t)j + 1);
        if (rc != FD_OK)
            return rc;
    }
    return FD_OK;
}

int fd_seg_moments_update(const fd_column *col, int32_t n_part, const int64_t *starts, const int64_t *lens,
                          int64_t *ints, double *flts)
{
    if (!fd_seg_parts_ok(col, n_part, starts, lens) || (n_part > 0 && (ints == 0 || flts == 0)))
        return FD_EINVAL;
    for (int32_t j = 0; j < n_part; ++j) {
        fd_column part = *col;
        part.offset = col->offset + starts[j];
        part.length = lens[j];
        const int rc = fd_moments_update(&part, ints + 5 * (int64_t)j, flts + 5 * (int64_t)j);
        if (rc != FD_OK)
            return rc;
    }
    return FD_OK;
}

/* fd_seg_positions / fd_seg_scatter_to: fd_seg_scatter split in two, so that
 * a batch's many columns share one pass over the codes.  The counting sort's
 * per-element read-modify-write of pos[c] is done once (dest); each column
 * is then a plain indexed store, about half of fd_seg_scatter's time
 * (bench/bench_segments.py). */
int fd_seg_positions(const int32_t *codes, int64_t n, int32_t n_seg, int64_t *pos, int64_t n_out,
                     int32_t *dest, int64_t *bad)
{
    if (bad == 0 || n < 0 || n_seg < 1 || pos == 0 || n_out < 0 || n_out > INT32_MAX)
        return FD_EINVAL;
    *bad = -1;
    if (n == 0)
        return FD_OK;
    if (codes == 0 || dest == 0)
        return FD_EINVAL;
    for (int64_t i = 0; i < n; ++i) {
        const int32_t c = codes[i];
        if ((uint32_t)c >= (uint32_t)n_seg) {
            *bad = i;
            return FD_EINVAL;
        }
        const int64_t p = pos[c]++;
        if (p < 0 || p >= n_out) {
            *bad = i;
            return FD_EINVAL;
        }
        dest[i] = (int32_t)p;
    }
    return FD_OK;
}

#define FD_SEG_SCATTER_TO(T)                                                  \
    do {                                                                      \
        const T *v = (const T *)col->values + off;                            \
        T *o = (T *)out;                                                      \
        if (out_valid == 0) {                                                 \
            for (int64_t i = 0; i < n; ++i) {                                 \
                const uint32_t p = (uint32_t)dest[i];                         \
                if (p >= (uint64_t)n_out) {                                   \
                    *bad = i;                                                 \
                    return FD_EINVAL;                                         \
                }                                                             \
                o[p] = v[i];                                                  \
            }                                                                 \
            break;                                                            \
        }                                                                     \
        for (int64_t i = 0; i < n; ++i) {                                     \
            const uint32_t p = (uint32_t)dest[i];                             \
            if (p >= (uint64_t)n_out) {                                       \
                *bad = i;                                                     \
                return FD_EINVAL;                                             \
            }                                                                 \
            o[p] = v[i];                                                      \
            if (fd_valid(bits, off + i))                                      \
                out_valid[p >> 3] |= (uint8_t)(1u << (p & 7));                \
        }                                                                     \
    } while (0)

int fd_seg_scatter_to(const fd_column *col, const int32_t *dest, void *out, int64_t n_out,
                      uint8_t *out_valid, int64_t *bad)
{
    if (col == 0 || bad == 0 || n_out < 0)
        return FD_EINVAL;
    *bad = -1;
    const int w = fd_seg_width(col->type);
    if (w == 0)
        return FD_ETYPE;
    const int64_t off = col->offset, n = col->length;
    if (off < 0 || n < 0)
        return FD_EINVAL;
    if (n == 0)
        return FD_OK;
    const uint8_t *bits = col->validity;
    if (col->values == 0 || dest == 0 || out == 0 || (bits && out_valid == 0))
        return FD_EINVAL;
    switch (w) {
    case 1: FD_SEG_SCATTER_TO(uint8_t); break;
    case 2: FD_SEG_SCATTER_TO(uint16_t); break;
    case 4: FD_SEG_SCATTER_TO(uint32_t); break;
    default: FD_SEG_SCATTER_TO(uint64_t); break;
    }
    return FD_OK;
}

/* fd_seg_short_keys: segment values are few and short (a version, an arm, a
 * country), and a general string hash costs more per row than the lookup of
 * one word among a few: the value is loaded as one masked word. */
#define FD_SEG_KEY_NULL_LEN 9
#define FD_SEG_SHORT_KEYS(OT)                                                 \
    do {                                                                      \
        const OT *o = (const OT *)col->offsets + off;                         \
        const uint8_t *end = data + o[n];                                     \
        for (i = 0; i < n; ++i) {                                             \
            uint64_t w = 0;                                                   \
            int32_t len = FD_SEG_KEY_NULL_LEN;                                \
            if (!bits || fd_valid(bits, off + i)) {                           \
                const int64_t a = (int64_t)o[i], L = (int64_t)o[i + 1] - a;   \
                if (L < 0 || a < 0)                                           \
                    return FD_EINVAL;                                         \
                if (L > 8)                                                    \
                    goto grow;                                                \
                const uint8_t *p = data + a;                                  \
                if (L > 0 && p + 8 <= end) {                                  \
                    memcpy(&w, p, 8);                                         \
                    w = fd_seg_le64(w) & (~0ULL >> (64 - 8 * L));             \
                } else {                                                      \
                    for (int64_t j = 0; j < L; ++j)                           \
                        w |= (uint64_t)p[j] << (8 * j);                       \
                }                                                             \
                len = (int32_t)L;                                             \
            }                                                                 \
            uint64_t s = ((w ^ ((uint64_t)len << 58)) * 0x9E3779B97F4A7C15ULL) >> shift; \
            int32_t id;                                                       \
            for (;;) {                                                        \
                id = slots[s];                                                \
                if (id < 0) {                                                 \
                    if (nk >= max_keys || 2 * (nk + 1) > n_slots)             \
                        goto grow;                                            \
                    id = (int32_t)nk++;                                       \
                    words[id] = w;                                            \
                    lens[id] = len;                                           \
                    slots[s] = id;                                            \
                    break;                                                    \
                }                                                             \
                if (words[id] == w && lens[id] == len)                        \
                    break;                                                    \
                s = (s + 1) & mask;                                           \
            }                                                                 \
            ids[i] = id;                                                      \
        }                                                                     \
    } while (0)

static inline uint64_t fd_seg_le64(uint64_t w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

int fd_seg_short_keys(const fd_column *col, uint64_t *words, int32_t *lens, int64_t max_keys, int32_t *slots,
                      int64_t n_slots, int64_t *n_keys, int32_t *ids, int64_t *progress)
{
    if (col == 0 || n_keys == 0 || progress == 0 || n_slots < 2 || (n_slots & (n_slots - 1)) != 0
        || n_slots > INT32_MAX || max_keys < 0 || max_keys > INT32_MAX)
        return FD_EINVAL;
    *progress = 0;
    if (col->type != FD_STR32 && col->type != FD_STR64)
        return FD_ETYPE;
    const int64_t off = col->offset, n = col->length;
    int64_t nk = *n_keys, i = 0;
    if (off < 0 || n < 0 || nk < 0 || nk > max_keys || 2 * nk > n_slots)
        return FD_EINVAL;
    if (n == 0)
        return FD_OK;
    if (col->offsets == 0 || words == 0 || lens == 0 || slots == 0 || ids == 0)
        return FD_EINVAL;
    static const uint8_t empty = 0;
    const uint8_t *data = col->values ? (const uint8_t *)col->values : &empty;
    const uint8_t *bits = col->validity;
    const uint64_t mask = (uint64_t)n_slots - 1;
    int lg = 0;
    while (((int64_t)1 << lg) < n_slots)
        ++lg;
    const int shift = 64 - lg;
    if (col->type == FD_STR32)
        FD_SEG_SHORT_KEYS(int32_t);
    else
        FD_SEG_SHORT_KEYS(int64_t);
    *n_keys = nk;
    *progress = n;
    return FD_OK;
grow:
    *n_keys = nk;
    *progress = i;
    return FD_EGROW;
}
