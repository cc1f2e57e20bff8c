/* fd_moments.c -- streaming count/min/max/sum/mean/m2 over finite values.
 *
 * Numerical stability: a single running Welford update per value is slow
 * (a division per value) and a naive sum of squares cancels catastrophically.
 * Instead the column is cut into blocks of FD_MOM_BLOCK values.  The finite
 * values of a block are compacted into a stack buffer (so validity and the
 * type conversion are handled once), and one pass over the block gives its
 * sum, min, max and the sums of d = x - c and d^2 about a shift c: the
 * running mean of the blocks before (the block's first value for the
 * first).  The block's m2 is then sum(d^2) - sum(d)^2 / k, which loses at
 * most one bit to cancellation while sum(d^2) <= 2 m2, that is while the
 * block's mean is within one standard deviation of c, as it is on any
 * stationary stream.  Otherwise (a level shift, a trend) the m2 is computed
 * again about the block's own mean in a second pass over the cache-resident
 * block.  The block is then merged into the running state with Chan et
 * al.'s pairwise formula.  Error grows with the number of blocks, not of
 * values.
 */
#include <float.h>
#include "fd_internal.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if FD_X86_SIMD
#include <immintrin.h>
#endif

typedef struct mstate {
    int64_t n;
    double mn, mx, sum, mean, m2;
} mstate;

/* Chan et al.: merge (nb, mean_b, m2_b) into the running state.  An empty
 * side is copied rather than merged so that its (meaningless) mean cannot
 * leak rounding into the result. */
static void chan_merge(mstate *s, int64_t nb, double sum_b, double mean_b,
                       double m2_b, double mn_b, double mx_b)
{
    if (nb == 0)
        return;
    if (s->n == 0) {
        s->n = nb;
        s->sum = sum_b;
        s->mean = mean_b;
        s->m2 = m2_b;
    } else {
        const double na = (double)s->n, nbd = (double)nb;
        const double n = na + nbd;
        const double delta = mean_b - s->mean;
        s->mean += delta * (nbd / n);
        s->m2 += m2_b + delta * delta * (na * nbd / n);
        s->sum += sum_b;
        s->n += nb;
    }
    s->mn = mn_b < s->mn ? mn_b : s->mn;
    s->mx = mx_b > s->mx ? mx_b : s->mx;
}

/* The per-block loops, one build per SIMD path (fd_moments_loops.h). */
#define FD_SFX scalar
#define FD_TGT
#include "fd_moments_loops.h"
#undef FD_SFX
#undef FD_TGT
#if FD_X86_SIMD
#define FD_SFX avx2
#define FD_TGT FD_TARGET_AVX2
#include "fd_moments_loops.h"
#undef FD_SFX
#undef FD_TGT
#define FD_SFX avx512
/* GCC vectorises 256 bits wide by default even for AVX-512 targets; clang
 * has no such attribute (its default is fine). */
#if defined(__clang__)
#define FD_TGT FD_TARGET_AVX512
#else
#define FD_TGT FD_TARGET_AVX512 __attribute__((target("prefer-vector-width=512")))
#endif
#include "fd_moments_loops.h"
#undef FD_SFX
#undef FD_TGT
#endif

typedef void (*records_fn)(const double *, const int32_t *, int64_t, double *, const uint8_t *, double *,
                           int64_t *, double *, int64_t *);

typedef struct mloops {
    int (*pass1)(const double *, int64_t, double, double *);
    double (*m2)(const double *, int64_t, double);
    void (*cells)(const double *, int64_t, double, double, double, int32_t *);
    records_fn records;   /* a block's cell records (grid_block_cells) */
} mloops;


/* The shift of block x[0:k]'s pass1: the running mean, or the block's first
 * value when the state is empty (any finite value will do for an empty
 * block, which is not reduced). */
static double block_shift(const mstate *s, const double *x, int64_t k)
{
    return s->n > 0 || k == 0 ? s->mean : x[0];
}

/* Merge block x[0:k] (finite values; r = its pass1 sums about the shift) into
 * s: its mean, its m2 (from the shifted sums when they lose at most a bit,
 * else about the mean over the cache-resident block), then Chan. */
static void reduce_block(mstate *s, const mloops *L, const double *x, int64_t k, const double *r)
{
    if (k == 0)
        return;
    const double kd = (double)k;
    const double mean = r[0] / kd;
    double m2 = r[4] - r[3] * r[3] / kd;
    if (!(m2 + m2 >= r[4]))   /* also NaN, from an overflowed shift */
        m2 = L->m2(x, k, mean);
    chan_merge(s, k, r[0], mean, m2, r[1], r[2]);
}

/* The grid count and selection of kernels/fd_select.c (fd_grid_count_select),
 * run on each block's compacted finite values while they are in L1: the
 * column is read and converted once for both. */
typedef struct gridsel {
    double lo, inv, top;
    int64_t *counts;
    const uint8_t *flags;
    double *out;
    int64_t cap, n;
    int overflow;
    double *cells; /* fd_moments_grid_cells_update: (count, sum, min, max) a cell, or 0 */
    double *tail;
    int64_t n_tail;
    int sparse;    /* the last block held fewer than 1 value in GRID_SPARSE (grid_block) */
} gridsel;

/* Two loops: the cells of the whole block first (branch-free arithmetic the
 * compiler vectorises; int32 cells, which SSE2 converts two at a time: grids
 * have at most FD_GRID_MAX_CELLS), then the counts, then the selection. */
#define GRID_HOLD(I)                                                         \
    do {                                                                     \
        if (flags[cell[(I)]]) {                                              \
            if (n < g->cap)                                                  \
                g->out[n] = buf[(I)];                                        \
            else                                                             \
                g->overflow = 1;                                             \
            n++;                                                             \
        }                                                                    \
    } while (0)

/* grid_block for fd_moments_grid_cells_update, one loop: a value's cell
 * record (count, sum, min, max: one 256-bit store on the AVX paths, two
 * 128-bit ones with SSE2), and its stores at the ends of the digest cells'
 * values and of the selection, each end advanced by the cell's flag
 * (branch-free; the caller made room for every digest value; near the
 * selection's cap, a branch per held value, in grid_block_cells).  An int64
 * count and scalar updates of a (sum, min, max) record took 1.68-1.71 ns a
 * value in a standalone loop (4,096 cells of normal values, the values and
 * cells in L2), the 256-bit record 1.29, two 128-bit halves 1.41-1.43.
 * Every path does the same IEEE operations: count + 1, sum + x, and
 * x < min ? x : min, x > max ? x : max (the minpd / maxpd rule, first
 * operand x). */
#define REC_SCALAR(r, x)                                                     \
    do {                                                                     \
        (r)[0] += 1.0;                                                       \
        (r)[1] += (x);                                                       \
        (r)[2] = (x) < (r)[2] ? (x) : (r)[2];                                \
        (r)[3] = (x) > (r)[3] ? (x) : (r)[3];                                \
    } while (0)

#define REC_LOOP(...)                                                        \
    do {                                                                     \
        int64_t n = *n_io, nt = *nt_io;                                      \
        for (int64_t i = 0; i < k; ++i) {                                    \
            const int32_t c = cell[i];                                       \
            const double x = buf[i];                                         \
            const unsigned f = flags[c];                                     \
            double *r = rec + 4 * (int64_t)c;                                \
            __VA_ARGS__;                                                     \
            tail[nt] = x;                                                    \
            nt += (f >> 1) & 1u;                                             \
            out[n] = x;                                                      \
            n += f & 1u;                                                     \
        }                                                                    \
        *n_io = n;                                                           \
        *nt_io = nt;                                                         \
    } while (0)

static void cell_records_scalar(const double *restrict buf, const int32_t *restrict cell, int64_t k,
                                double *restrict rec, const uint8_t *restrict flags, double *restrict out,
                                int64_t *n_io, double *restrict tail, int64_t *nt_io)
{
#if defined(__SSE2__)
    const __m128d one = _mm_set_sd(1.0);
    REC_LOOP({
        const __m128d xx = _mm_set1_pd(x);
        const __m128d cs = _mm_loadu_pd(r), mm = _mm_loadu_pd(r + 2);
        _mm_storeu_pd(r, _mm_add_pd(cs, _mm_move_sd(xx, one)));                      /* count + 1, sum + x */
        _mm_storeu_pd(r + 2, _mm_move_sd(_mm_max_pd(xx, mm), _mm_min_pd(xx, mm)));   /* min, max */
    });
#else
    REC_LOOP(REC_SCALAR(r, x));
#endif
}

#if FD_X86_SIMD
FD_TARGET_AVX2
static void cell_records_avx2(const double *restrict buf, const int32_t *restrict cell, int64_t k,
                              double *restrict rec, const uint8_t *restrict flags, double *restrict out,
                              int64_t *n_io, double *restrict tail, int64_t *nt_io)
{
    const __m256d one = _mm256_set_pd(0.0, 0.0, 0.0, 1.0);
    REC_LOOP({
        const __m256d xv = _mm256_set1_pd(x);
        const __m256d v = _mm256_loadu_pd(r);
        const __m256d a = _mm256_add_pd(v, _mm256_blend_pd(one, xv, 2));   /* count + 1, sum + x */
        const __m256d m = _mm256_blend_pd(_mm256_min_pd(xv, v), _mm256_max_pd(xv, v), 8);
        _mm256_storeu_pd(r, _mm256_blend_pd(a, m, 12));                      /* min, max */
    });
}
#endif

static const mloops LOOPS_SCALAR = {block_pass1_scalar, block_m2_scalar, block_cells_scalar, cell_records_scalar};
#if FD_X86_SIMD
static const mloops LOOPS_AVX2 = {block_pass1_avx2, block_m2_avx2, block_cells_avx2, cell_records_avx2};
static const mloops LOOPS_AVX512 = {block_pass1_avx512, block_m2_avx512, block_cells_avx512, cell_records_avx2};
#endif

static const mloops *loops_for_path(int path)
{
#if FD_X86_SIMD
    if (path == FD_SIMD_AVX512)
        return &LOOPS_AVX512;
    if (path == FD_SIMD_AVX2)
        return &LOOPS_AVX2;
#endif
    (void)path;
    return &LOOPS_SCALAR;
}

static void grid_block_cells(gridsel *g, const mloops *L, const double *buf, int64_t k)
{
    int32_t cell[FD_MOM_BLOCK];
    L->cells(buf, k, g->lo, g->inv, g->top, cell);
    if (g->n + k <= g->cap) {
        L->records(buf, cell, k, g->cells, g->flags, g->out, &g->n, g->tail, &g->n_tail);
        return;
    }
    int64_t n = g->n, nt = g->n_tail;
    for (int64_t i = 0; i < k; ++i) {
        const int32_t c = cell[i];
        const double x = buf[i];
        const unsigned f = g->flags[c];
        REC_SCALAR(g->cells + 4 * (int64_t)c, x);
        g->tail[nt] = x;
        nt += (f >> 1) & 1u;
        if (f & FD_GRID_HELD) {
            if (n < g->cap)
                g->out[n] = x;
            else
                g->overflow = 1;
            n++;
        }
    }
    g->n_tail = nt;
    g->n = n;
}

/* The share of held values below which the next block's groups are stored
 * only when one holds a value (grid_block).  1e7 normal values in calls of
 * 131,072 (bench/grid_ab.c), against the groups always stored, on a Zen 3,
 * B/A by the share of values held (9 deciles' cells and 0-3 cells either side,
 * 1,024 to 16,384 cells): 0.18-0.72 % 0.76-0.80, 1.45 % 0.81-0.91, 2.2 %
 * 0.87-0.91, 2.9 % 0.90-0.93; above 1 in 32, every group stored: 3.6 %
 * 0.99-1.02, 5.1 % 0.94-0.98, 10 % 0.98-1.00.  With 1 in 8, the branch took
 * 1.13-1.14 at 8-10 % held; with 1 in 16, 1.03 at 5.1 %. */
#define GRID_SPARSE 32

/* Count the 8 values of cells cell[0:8]; nonzero if one of the cells is held. */
static inline unsigned count8_any(int64_t *restrict counts, const uint8_t *restrict flags, const int32_t *cell)
{
    unsigned any = 0;
    for (int b = 0; b < 8; ++b) {
        const int32_t c = cell[b];
        counts[c]++;
        any |= flags[c];
    }
    return any;
}

static void grid_block(gridsel *g, const mloops *L, const double *buf, int64_t k)
{
    if (g->cells) {
        grid_block_cells(g, L, buf, k);
        return;
    }
    int32_t cell[FD_MOM_BLOCK];
    const int64_t cap = g->cap, n0 = g->n;
    int64_t n = n0;
    int64_t *restrict counts = g->counts;
    const uint8_t *restrict flags = g->flags;
    double *restrict out = g->out;
    L->cells(buf, k, g->lo, g->inv, g->top, cell);
    /* Eight values a step: count them, and store each one at the selection's
     * end, advancing it when the value's cell is held: no branch per value or
     * per group (a group holds a value often enough early in a scan that a
     * branch on it mispredicts: 2.8 against 2.3 ns a value with 5 % of the
     * values held, docs/performance.md).  After a block that held fewer than
     * 1 value in GRID_SPARSE, a group is stored only when one of its cells is
     * held (a branch then taken for at most about 1 group in 4).  Near the cap,
     * the groups that hold a value go one value at a time. */
    int64_t i = 0;
    if (g->sparse) {
        for (; i + 8 <= k && n + 8 <= cap; i += 8)
            if (count8_any(counts, flags, cell + i))
                for (int b = 0; b < 8; ++b) {
                    out[n] = buf[i + b];
                    n += flags[cell[i + b]] != 0;
                }
    } else {
        for (; i + 8 <= k && n + 8 <= cap; i += 8) {
            for (int b = 0; b < 8; ++b)
                counts[cell[i + b]]++;
            for (int b = 0; b < 8; ++b) {
                out[n] = buf[i + b];
                n += flags[cell[i + b]] != 0;
            }
        }
    }
    for (; i + 8 <= k; i += 8)
        if (count8_any(counts, flags, cell + i))
            for (int b = 0; b < 8; ++b)
                GRID_HOLD(i + b);
    for (; i < k; ++i) {
        counts[cell[i]]++;
        GRID_HOLD(i);
    }
    g->n = n;
    g->sparse = (n - n0) * GRID_SPARSE < k;
}

/* Append x to the block buffer when valid and finite.  x - x is 0 exactly
 * for finite x and NaN for +-inf and NaN, so the common path is a store, a
 * subtract-compare and a conditional advance; the rare non-finite values are
 * classified afterwards by rescanning the block (see classify). */
#define MOM_ONE(XRAW, W)                                                     \
    do {                                                                     \
        const double x_ = (double)(XRAW);                                    \
        const int64_t w_ = (W);                                              \
        buf[k] = x_;                                                         \
        if (IS_FLOAT)                                                        \
            k += w_ & (int64_t)(x_ - x_ == 0.0);                             \
        else                                                                 \
            k += w_;                                                         \
        nvalid += w_;                                                        \
    } while (0)

/* Count NaN / +inf / -inf among the valid values of v[i0:i1]. */
#define DEF_CLASSIFY(SUFFIX, T)                                               \
static void classify_##SUFFIX(const T *v, const uint8_t *valid, int64_t off,  \
                              int64_t i0, int64_t i1, int64_t *ints)          \
{                                                                             \
    for (int64_t i = i0; i < i1; ++i) {                                       \
        if (!fd_valid(valid, off + i))                                        \
            continue;                                                         \
        const double x = (double)v[i];                                        \
        ints[2] += x != x;                                                    \
        ints[3] += x > DBL_MAX;                                               \
        ints[4] += x < -DBL_MAX;                                              \
    }                                                                         \
}

#define DEF_MOM(SUFFIX, T, IS_FLOAT_, IS_F64_)                                \
DEF_CLASSIFY(SUFFIX, T)                                                       \
static void mom_##SUFFIX(const void *values, const uint8_t *valid,            \
                         int64_t off, int64_t len, mstate *s, int64_t *ints,  \
                         gridsel *g, const mloops *L)                         \
{                                                                             \
    const int IS_FLOAT = (IS_FLOAT_), IS_F64 = (IS_F64_);                      \
    const T *v = (const T *)values + off;                                     \
    double buf[FD_MOM_BLOCK];                                                 \
    int64_t nul = 0;                                                          \
    for (int64_t start = 0; start < len; start += FD_MOM_BLOCK) {             \
        /* Blocks start at multiples of FD_MOM_BLOCK past the offset,       \
         * so the bitmap byte boundary is the same in every block. */         \
        const int64_t end = len - start < FD_MOM_BLOCK ? len                  \
                                                       : start + FD_MOM_BLOCK;\
        double r[5];                                                          \
        if (IS_F64 && valid == 0) {                                           \
            /* float64 without nulls: a block with no NaN/inf is its own     \
             * buffer (same values in the same order as the compacted copy) */\
            /* pass1 prefetches the values 1 KiB ahead of its loads (a      \
             * burst of prefetches a block ahead, one a line, cost a third   \
             * of the kernel instead: docs/performance.md) */                \
            const double *blk = (const double *)(const void *)(v + start);   \
            if (L->pass1(blk, end - start, block_shift(s, blk, end - start), r)) { \
                reduce_block(s, L, blk, end - start, r);                      \
                if (g)                                                        \
                    grid_block(g, L, blk, end - start);                       \
                continue;                                                     \
            }                                                                 \
        }                                                                     \
        int64_t k = 0, nvalid = 0, i = start;                                 \
        if (valid == 0) {                                                     \
            for (; i < end; ++i) {                                            \
                if ((i & 7) == 0)                                             \
                    FD_PREFETCH(v + i);                                       \
                MOM_ONE(v[i], 1);                                             \
            }                                                                 \
        } else {                                                              \
            int64_t pos = off + i;                                            \
            for (; i < end && (pos & 7); ++i, ++pos)                          \
                MOM_ONE(v[i], (valid[pos >> 3] >> (pos & 7)) & 1);            \
            for (; i + 8 <= end; i += 8, pos += 8) {                          \
                const unsigned m = valid[pos >> 3];                           \
                FD_PREFETCH(v + i);                                           \
                if (m == 0xFFu) {                                             \
                    for (int b = 0; b < 8; ++b)                               \
                        MOM_ONE(v[i + b], 1);                                 \
                } else if (m != 0u) {                                         \
                    for (int b = 0; b < 8; ++b)                               \
                        MOM_ONE(v[i + b], (m >> b) & 1u);                     \
                }                                                             \
            }                                                                 \
            for (; i < end; ++i, ++pos)                                       \
                MOM_ONE(v[i], (valid[pos >> 3] >> (pos & 7)) & 1);            \
        }                                                                     \
        nul += (end - start) - nvalid;                                        \
        if (IS_FLOAT && k != nvalid)                                          \
            classify_##SUFFIX(v, valid, off, start, end, ints);               \
        L->pass1(buf, k, block_shift(s, buf, k), r);                          \
        reduce_block(s, L, buf, k, r);                                        \
        if (g)                                                                \
            grid_block(g, L, buf, k);                                         \
    }                                                                         \
    ints[1] += nul;                                                           \
}

DEF_MOM(f64, double, 1, 1)
DEF_MOM(f32, float, 1, 0)
DEF_MOM(i8, int8_t, 0, 0)
DEF_MOM(i16, int16_t, 0, 0)
DEF_MOM(i32, int32_t, 0, 0)
DEF_MOM(i64, int64_t, 0, 0)
DEF_MOM(u8, uint8_t, 0, 0)
DEF_MOM(u16, uint16_t, 0, 0)
DEF_MOM(u32, uint32_t, 0, 0)
DEF_MOM(u64, uint64_t, 0, 0)

typedef void (*mom_fn)(const void *, const uint8_t *, int64_t, int64_t,
                       mstate *, int64_t *, gridsel *, const mloops *);

static int moments_run(const fd_column *col, int64_t *ints, double *flts, gridsel *g)
{
    if (col == 0 || ints == 0 || flts == 0)
        return FD_EINVAL;
    if (col->length < 0 || col->offset < 0)
        return FD_EINVAL;
    for (int i = 0; i < 5; ++i)
        if (ints[i] < 0)
            return FD_ECORRUPT;

    mom_fn fn;
    switch (col->type) {
    case FD_F64: fn = mom_f64; break;
    case FD_F32: fn = mom_f32; break;
    case FD_I8: fn = mom_i8; break;
    case FD_I16: fn = mom_i16; break;
    case FD_I32: fn = mom_i32; break;
    case FD_I64: fn = mom_i64; break;
    case FD_U8: fn = mom_u8; break;
    case FD_U16: fn = mom_u16; break;
    case FD_U32: fn = mom_u32; break;
    case FD_U64: fn = mom_u64; break;
    default: return FD_ETYPE;
    }
    if (col->length == 0)
        return FD_OK;
    if (col->values == 0)
        return FD_EINVAL;

    mstate s;
    s.n = ints[0];
    s.mn = flts[0];
    s.mx = flts[1];
    s.sum = flts[2];
    s.mean = flts[3];
    s.m2 = flts[4];
    fn(col->values, col->validity, col->offset, col->length, &s, ints, g, loops_for_path(fd_simd()));
    ints[0] = s.n;
    flts[0] = s.mn;
    flts[1] = s.mx;
    flts[2] = s.sum;
    flts[3] = s.mean;
    flts[4] = s.m2;
    return FD_OK;
}

int fd_moments_update(const fd_column *col, int64_t *ints, double *flts)
{
    return moments_run(col, ints, flts, 0);
}

/* The two grid entry points after their checks: stats and tail 0 for
 * fd_moments_grid_update. */
static int grid_run(const fd_column *col, int64_t *ints, double *flts, double lo, double inv_width,
                    int64_t n_cells, int64_t *counts, const uint8_t *flags, double *out, int64_t cap,
                    int64_t *n_out, double *cells, double *tail, int64_t *n_tail)
{
    gridsel g;
    g.lo = lo;
    g.inv = inv_width;
    g.top = (double)(n_cells - 1);
    g.counts = counts;
    g.flags = flags;
    g.out = out;
    g.cap = cap;
    g.n = *n_out;
    g.overflow = 0;
    g.cells = cells;
    g.tail = tail;
    g.n_tail = n_tail ? *n_tail : 0;
    g.sparse = 0;
    int rc = moments_run(col, ints, flts, &g);
    if (rc)
        return rc;
    *n_out = g.n < cap ? g.n : cap;
    if (n_tail)
        *n_tail = g.n_tail;
    return g.overflow ? FD_EGROW : FD_OK;
}

int fd_moments_grid_update(const fd_column *col, int64_t *ints, double *flts,
                           double lo, double inv_width, int64_t n_cells, int64_t *counts,
                           const uint8_t *flags, double *out, int64_t cap, int64_t *n_out)
{
    if (!counts || !flags || !n_out || cap < 0 || *n_out < 0 || !fd_grid_ok(lo, inv_width, n_cells))
        return FD_EINVAL;
    return grid_run(col, ints, flts, lo, inv_width, n_cells, counts, flags, out, cap, n_out, 0, 0, 0);
}

int fd_moments_grid_cells_update(const fd_column *col, int64_t *ints, double *flts,
                                 double lo, double inv_width, int64_t n_cells,
                                 const uint8_t *flags, double *out, int64_t cap, int64_t *n_out,
                                 double *cells, double *tail, int64_t tail_cap, int64_t *n_tail)
{
    if (!col || !flags || !n_out || cap < 0 || *n_out < 0 || !fd_grid_ok(lo, inv_width, n_cells)
        || !cells || !tail || !n_tail || *n_tail < 0 || tail_cap < *n_tail || col->length < 0
        || tail_cap - *n_tail < col->length)
        return FD_EINVAL;
    return grid_run(col, ints, flts, lo, inv_width, n_cells, 0, flags, out, cap, n_out, cells, tail, n_tail);
}
