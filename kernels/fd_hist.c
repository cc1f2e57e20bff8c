/* fd_hist.c -- numeric histogram over sorted edges.
 *
 * The bin of x is the number of edges <= x (np.searchsorted(edges, x,
 * side="right")), integers compared after conversion to double.
 *
 * Two ways to find it, both exact:
 *
 *  - uniform: an arithmetic guess clamped into [1, n], then one compare down
 *    and one compare up against the real edges (both against the guess).  The guess is within +-1 of
 *    the true bin for every double; fastdrift.kernels.hist proves that for
 *    the concrete edges (the guess is monotone in x, so checking it at each
 *    edge and at the double just below each edge covers every x) before it
 *    sets ix->uniform.
 *
 *  - arith (M_ARITH): u = clamp((x - lo) * inv, -0.5, n - 0.5) + 1.0 and
 *    the bin is (int)u, with no load at all, unless u lies within
 *    FD_ARITH_TOL of an integer; such rare values take an exact search from
 *    (int)u (bin_near).  The computed u is monotone in x, so
 *    fastdrift.kernels.hist proves this for the concrete edges by checking u
 *    at each edge e_k (> k + 1 - tol) and at the double just below it
 *    (< k + 1 + tol): then every x whose u is tol away from an integer lies
 *    in bin (int)u.  It works for any edges close enough to equal widths.
 *
 *  - table: sub-bucket j = clamp((x - lo) * inv_width, 0, n_table - 1), a
 *    starting bin table[j] that is never above the true bin of any x mapped
 *    to j, then exactly n_probe forward compares.  The table is built with
 *    this very arithmetic, so rounding cannot move x into a bucket whose
 *    start is too high.
 *
 * Both paths are branch-free per value: comparisons become 0/1 additions.
 * NaN is not tested per value on the bin path; it lands in a fixed bin
 * (NaN compares false everywhere) and is subtracted from that bin at the
 * end, which keeps the inner loop free of a data-dependent branch.
 *
 * +inf is clamped to DBL_MAX before any compare: the edges are finite, so
 * that does not change its bin, and it keeps +inf from stepping past the
 * +inf sentinels padding the edges.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include "fd_internal.h"

typedef struct hctx {
    const double *e;
    const int32_t *table;
    double lo;
    double inv;
    double bottom;   /* uniform: 1; table: 0 (see bin_of) */
    double top;      /* uniform: n_edges; table: n_table - 1 */
    int32_t n_probe;
} hctx;

/* Compile-time path selectors: each per-type function is instantiated once
 * per mode so the probe count is a constant and the loop fully unrolls. */
#define M_UNIFORM 0
#define M_P1 1
#define M_P2 2
#define M_P3 3
#define M_PN 4
#define M_ARITH 6
#define FD_ARITH_TOL (1.0 / (double)(1 << FD_HIST_ARITH_TOL_LOG2))

/* The per-mode specialisation relies on these bodies being inlined with a
 * constant mode; GCC otherwise keeps one copy and tests the mode per value. */
#if defined(__GNUC__)
#define FD_INLINE static inline __attribute__((always_inline))
#else
#define FD_INLINE static inline
#endif

/* The exact bin by search from a start b in [0, n_edges]: the rare values
 * of M_ARITH that lie near a boundary.  The +inf sentinel at e[n_edges]
 * stops the upward walk (xc <= DBL_MAX). */
static __attribute__((noinline)) int64_t bin_near(const double *e, double xc, int64_t b)
{
    while (b > 0 && xc < e[b - 1])
        --b;
    while (xc >= e[b])
        ++b;
    return b;
}

FD_INLINE int64_t bin_of(const hctx *h, double x, int mode)
{
    /* NaN must stay NaN here (it is counted apart), hence x > DBL_MAX and
     * not a min() that would turn it into DBL_MAX. */
    const double xc = x > DBL_MAX ? DBL_MAX : x;
    if (mode == M_ARITH) {
        double u = (x - h->lo) * h->inv;
        u = u > h->bottom ? u : h->bottom;  /* -inf and NaN go to -0.5: bin 0 */
        u = u < h->top ? u : h->top;
        u += 1.0;
        const int64_t b = (int64_t)u;        /* u >= 0.5: truncation is floor */
        const double fr = u - (double)b;     /* exact */
        if (__builtin_expect(fr >= FD_ARITH_TOL && fr <= 1.0 - FD_ARITH_TOL, 1))
            return b;
        return bin_near(h->e, xc, b);
    } else if (mode == M_UNIFORM) {
        double t = (x - h->lo) * h->inv + 1.0;
        t = t > h->bottom ? t : h->bottom;  /* -inf and NaN go to 1 */
        t = t < h->top ? t : h->top;
        const int64_t b = (int64_t)t;
        /* Both compares use the guess, so their loads are independent; with
         * the guess within 1 of the true bin at most one of them fires. */
        return b - (int64_t)(xc < h->e[b - 1]) + (int64_t)(xc >= h->e[b]);
    } else {
        double t = (x - h->lo) * h->inv;
        /* The bound is read from the context rather than written as 0.0:
         * GCC turns `t > 0.0 ? t : 0.0` into a (mispredicted) branch but
         * a comparison with a register into maxsd. */
        t = t > h->bottom ? t : h->bottom;  /* -inf and NaN go to 0 */
        t = t < h->top ? t : h->top;    /* inf is clamped here, in double */
        int64_t b = h->table[(int64_t)t];
        if (mode == M_P1) {
            b += (xc >= h->e[b]);
        } else if (mode == M_P2) {
            b += (xc >= h->e[b]);
            b += (xc >= h->e[b]);
        } else if (mode == M_P3) {
            b += (xc >= h->e[b]);
            b += (xc >= h->e[b]);
            b += (xc >= h->e[b]);
        } else {
            for (int32_t k = 0; k < h->n_probe; ++k)
                b += (xc >= h->e[b]);
        }
        return b;
    }
}

/* The bin a NaN lands in on each path (see bin_of). */
static int64_t nan_bin(const hctx *h, int mode)
{
    return mode == M_ARITH ? 0 : mode == M_UNIFORM ? 1 : (int64_t)h->table[0];
}

/* Counting is the bottleneck, not the bin search: with few bins, consecutive
 * values often hit the same counter, and each increment then waits for the
 * previous store (and mispredicted memory disambiguation flushes the
 * pipeline).  Values are therefore counted round-robin into FD_HIST_WAYS
 * private sub-histograms on the stack that are added into counts at the
 * end (bench/bench_kernels.py, quantile10, times the result).  Above
 * FD_HIST_LOCAL_BINS bins collisions are rare anyway and every way points at
 * counts itself. */
#define FD_HIST_WAYS 4
#define FD_HIST_LOCAL_BINS 512

/* The sub-histograms c0..c3 of a loop body over counts[0:n_bins] (local
 * ones for few bins), and their sum into counts with the NaN correction and
 * the special counts at the end; both bodies below use the pair. */
#define HIST_LOCAL_SETUP                                                     \
    int64_t local[FD_HIST_WAYS * FD_HIST_LOCAL_BINS];                        \
    int64_t *c0 = counts, *c1 = counts, *c2 = counts, *c3 = counts;          \
    const int use_local = n_bins <= FD_HIST_LOCAL_BINS;                      \
    if (use_local) {                                                         \
        memset(local, 0, sizeof(int64_t) * FD_HIST_WAYS * (size_t)n_bins);   \
        c0 = local;                                                          \
        c1 = local + n_bins;                                                 \
        c2 = local + 2 * n_bins;                                             \
        c3 = local + 3 * n_bins;                                             \
    }

#define HIST_LOCAL_FINISH                                                    \
    do {                                                                     \
        if (use_local)                                                       \
            for (int64_t b = 0; b < n_bins; ++b)                             \
                counts[b] += c0[b] + c1[b] + c2[b] + c3[b];                  \
        counts[nan_bin(h, MODE)] -= nan;                                     \
        *n_nan += nan;                                                       \
        *n_null += nul;                                                      \
    } while (0)

/* One value into sub-histogram C with weight W (1 = valid, 0 = null), so a
 * byte of mixed validity needs no per-bit branch; a null slot adds nothing. */
#define HIST_ONE(C, XRAW, W)                                 \
    do {                                                     \
        const double x_ = (double)(XRAW);                    \
        const int64_t w_ = (W);                              \
        (C)[bin_of(h, x_, MODE)] += w_;                      \
        if (IS_FLOAT) nan += w_ & (int64_t)(x_ != x_);       \
    } while (0)

#define DEF_HIST_BODY(SUFFIX, T, IS_FLOAT_)                                    \
FD_INLINE void hist_body_##SUFFIX(const T *v, const uint8_t *valid,            \
                                  int64_t off, int64_t len, const hctx *h_,    \
                                  const int MODE, int64_t *counts,             \
                                  int64_t n_bins, int64_t *n_null,             \
                                  int64_t *n_nan)                              \
{                                                                              \
    const int IS_FLOAT = (IS_FLOAT_);                                          \
    /* A local copy: stores to counts then cannot force reloads of it. */      \
    const hctx hl = *h_;                                                       \
    const hctx *const h = &hl;                                                 \
    HIST_LOCAL_SETUP;                                                          \
    int64_t nan = 0, nul = 0, i = 0;                                           \
    v += off;                                                                  \
    if (valid == 0) {                                                          \
        for (; i + 4 <= len; i += 4) {                                         \
            FD_PREFETCH(v + i);                                                \
            HIST_ONE(c0, v[i], 1);                                             \
            HIST_ONE(c1, v[i + 1], 1);                                         \
            HIST_ONE(c2, v[i + 2], 1);                                         \
            HIST_ONE(c3, v[i + 3], 1);                                         \
        }                                                                      \
        for (; i < len; ++i)                                                   \
            HIST_ONE(c0, v[i], 1);                                             \
    } else {                                                                   \
        int64_t pos = off;                                                     \
        /* Leading bits up to a byte boundary of the bitmap. */                \
        for (; i < len && (pos & 7); ++i, ++pos) {                             \
            const int64_t w = (valid[pos >> 3] >> (pos & 7)) & 1;              \
            HIST_ONE(c0, v[i], w);                                             \
            nul += 1 - w;                                                      \
        }                                                                      \
        for (; i + 8 <= len; i += 8, pos += 8) {                               \
            const unsigned m = valid[pos >> 3];                                \
            FD_PREFETCH(v + i);                                                \
            if (m == 0xFFu) {                                                  \
                HIST_ONE(c0, v[i], 1);                                         \
                HIST_ONE(c1, v[i + 1], 1);                                     \
                HIST_ONE(c2, v[i + 2], 1);                                     \
                HIST_ONE(c3, v[i + 3], 1);                                     \
                HIST_ONE(c0, v[i + 4], 1);                                     \
                HIST_ONE(c1, v[i + 5], 1);                                     \
                HIST_ONE(c2, v[i + 6], 1);                                     \
                HIST_ONE(c3, v[i + 7], 1);                                     \
            } else if (m == 0u) {                                              \
                nul += 8;                                                      \
            } else {                                                           \
                const int64_t nv = (m & 1u) + ((m >> 1) & 1u) +                \
                    ((m >> 2) & 1u) + ((m >> 3) & 1u) + ((m >> 4) & 1u) +      \
                    ((m >> 5) & 1u) + ((m >> 6) & 1u) + ((m >> 7) & 1u);       \
                HIST_ONE(c0, v[i], m & 1u);                                    \
                HIST_ONE(c1, v[i + 1], (m >> 1) & 1u);                         \
                HIST_ONE(c2, v[i + 2], (m >> 2) & 1u);                         \
                HIST_ONE(c3, v[i + 3], (m >> 3) & 1u);                         \
                HIST_ONE(c0, v[i + 4], (m >> 4) & 1u);                         \
                HIST_ONE(c1, v[i + 5], (m >> 5) & 1u);                         \
                HIST_ONE(c2, v[i + 6], (m >> 6) & 1u);                         \
                HIST_ONE(c3, v[i + 7], (m >> 7) & 1u);                         \
                nul += 8 - nv;                                                 \
            }                                                                  \
        }                                                                      \
        for (; i < len; ++i, ++pos) {                                          \
            const int64_t w = (valid[pos >> 3] >> (pos & 7)) & 1;              \
            HIST_ONE(c0, v[i], w);                                             \
            nul += 1 - w;                                                      \
        }                                                                      \
    }                                                                          \
    HIST_LOCAL_FINISH;                                                         \
}                                                                              \
static void hist_##SUFFIX(const void *values, const uint8_t *valid,            \
                          int64_t off, int64_t len, const hctx *h, int mode,   \
                          int64_t *counts, int64_t n_bins, int64_t *n_null,    \
                          int64_t *n_nan)                                      \
{                                                                              \
    const T *v = (const T *)values;                                            \
    switch (mode) {                                                            \
    case M_ARITH:                                                              \
        hist_body_##SUFFIX(v, valid, off, len, h, M_ARITH, counts, n_bins,     \
                           n_null, n_nan);                                     \
        break;                                                                 \
    case M_UNIFORM:                                                            \
        hist_body_##SUFFIX(v, valid, off, len, h, M_UNIFORM, counts, n_bins,   \
                           n_null, n_nan);                                     \
        break;                                                                 \
    case M_P1:                                                                 \
        hist_body_##SUFFIX(v, valid, off, len, h, M_P1, counts, n_bins,        \
                           n_null, n_nan);                                     \
        break;                                                                 \
    case M_P2:                                                                 \
        hist_body_##SUFFIX(v, valid, off, len, h, M_P2, counts, n_bins,        \
                           n_null, n_nan);                                     \
        break;                                                                 \
    case M_P3:                                                                 \
        hist_body_##SUFFIX(v, valid, off, len, h, M_P3, counts, n_bins,        \
                           n_null, n_nan);                                     \
        break;                                                                 \
    default:                                                                   \
        hist_body_##SUFFIX(v, valid, off, len, h, M_PN, counts, n_bins,        \
                           n_null, n_nan);                                     \
        break;                                                                 \
    }                                                                          \
}

typedef void (*hist_fn)(const void *, const uint8_t *, int64_t, int64_t,
                        const hctx *, int, int64_t *, int64_t, int64_t *,
                        int64_t *);

/* Values v[i0:i0+n] of a column of another type than float64, as doubles
 * (the bodies' own conversion), appended to buf[k:] -- only the valid ones
 * when there is a bitmap -- for the run paths, which read doubles; returns
 * the new k. */
typedef int64_t (*conv_fn)(const void *, const uint8_t *, int64_t, int64_t, int64_t, double *, int64_t);
#define DEF_CONV(SUFFIX, T)                                                    \
static int64_t conv_##SUFFIX(const void *values, const uint8_t *valid,        \
                             int64_t off, int64_t i0, int64_t n, double *buf, \
                             int64_t k)                                       \
{                                                                             \
    const T *v = (const T *)values + off;                                     \
    if (valid == 0) {                                                         \
        for (int64_t i = i0; i < i0 + n; ++i)                                 \
            buf[k + i - i0] = (double)v[i];                                   \
        return k + n;                                                         \
    }                                                                         \
    for (int64_t i = i0; i < i0 + n; ++i) {                                   \
        const int64_t pos = off + i;                                          \
        buf[k] = (double)v[i];                                                \
        k += (valid[pos >> 3] >> (pos & 7)) & 1;                              \
    }                                                                         \
    return k;                                                                 \
}
DEF_CONV(f32, float)
DEF_CONV(i8, int8_t)
DEF_CONV(i16, int16_t)
DEF_CONV(i32, int32_t)
DEF_CONV(i64, int64_t)
DEF_CONV(u8, uint8_t)
DEF_CONV(u16, uint16_t)
DEF_CONV(u32, uint32_t)
DEF_CONV(u64, uint64_t)

static conv_fn conv_for(int type)
{
    switch (type) {
    case FD_F32: return conv_f32;
    case FD_I8: return conv_i8;
    case FD_I16: return conv_i16;
    case FD_I32: return conv_i32;
    case FD_I64: return conv_i64;
    case FD_U8: return conv_u8;
    case FD_U16: return conv_u16;
    case FD_U32: return conv_u32;
    case FD_U64: return conv_u64;
    default: return 0;
    }
}

DEF_HIST_BODY(f64, double, 1)
DEF_HIST_BODY(f32, float, 1)
DEF_HIST_BODY(i8, int8_t, 0)
DEF_HIST_BODY(i16, int16_t, 0)
DEF_HIST_BODY(i32, int32_t, 0)
DEF_HIST_BODY(i64, int64_t, 0)
DEF_HIST_BODY(u8, uint8_t, 0)
DEF_HIST_BODY(u16, uint16_t, 0)
DEF_HIST_BODY(u32, uint32_t, 0)
DEF_HIST_BODY(u64, uint64_t, 0)

/* ---- float64 on the AVX2 / AVX-512 paths ---------------------------------
 * The arithmetic of bin_of runs 4 values at a time (guess4_avx2): MINPD(a, b)
 * is a < b ? a : b and MAXPD(a, b) is a > b ? a : b, exactly the scalar
 * selects (NaN included), and the truncation to int32 equals the scalar one
 * because t is already clamped to [0, top] (top < 2^31).  The table lookup,
 * the edge compares and the counting stay scalar (bin_finish): gathers of the
 * table and the edges measured slower than scalar loads on this AMD EPYC
 * (bench/bench_kernels.py: 0.20x np.sum against 0.37x).  So every value
 * gets the bin the scalar path gives it; few edges and equal widths count
 * their runs of valid values apart (hist_runs, below).  Groups of 8 values that are not all
 * valid, and the tails, take the scalar code. */
#if FD_X86_SIMD
#include <immintrin.h>

/* The scalar rest of bin_of from the guess j (uniform: the clamped guess;
 * table: the sub-bucket) and the clamped xc. */
FD_INLINE int64_t bin_finish(const hctx *h, int64_t j, double xc, int mode)
{
    if (mode == M_UNIFORM)
        return j - (int64_t)(xc < h->e[j - 1]) + (int64_t)(xc >= h->e[j]);
    int64_t b = h->table[j];
    if (mode == M_P1) {
        b += (xc >= h->e[b]);
    } else if (mode == M_P2) {
        b += (xc >= h->e[b]);
        b += (xc >= h->e[b]);
    } else if (mode == M_P3) {
        b += (xc >= h->e[b]);
        b += (xc >= h->e[b]);
        b += (xc >= h->e[b]);
    } else {
        for (int32_t k = 0; k < h->n_probe; ++k)
            b += (xc >= h->e[b]);
    }
    return b;
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
int64_t guess4_avx2(const hctx *h, const double *p, int mode, int32_t *j, double *xc)
{
    const __m256d x = _mm256_loadu_pd(p);
    __m256d t = _mm256_mul_pd(_mm256_sub_pd(x, _mm256_set1_pd(h->lo)), _mm256_set1_pd(h->inv));
    if (mode == M_UNIFORM)
        t = _mm256_add_pd(t, _mm256_set1_pd(1.0));
    t = _mm256_max_pd(t, _mm256_set1_pd(h->bottom));
    t = _mm256_min_pd(t, _mm256_set1_pd(h->top));
    _mm_storeu_si128((__m128i *)(void *)j, _mm256_cvttpd_epi32(t));
    _mm256_storeu_pd(xc, _mm256_min_pd(_mm256_set1_pd(DBL_MAX), x));
    return __builtin_popcount((unsigned)_mm256_movemask_pd(_mm256_cmp_pd(x, x, _CMP_UNORD_Q)));
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
int64_t guess8_avx2(const hctx *h, const double *p, int mode, int32_t *j, double *xc)
{
    return guess4_avx2(h, p, mode, j, xc) + guess4_avx2(h, p + 4, mode, j + 4, xc + 4);
}

/* M_ARITH on 4 (AVX2) or 8 (AVX-512) values: bin_of's arithmetic with the
 * same operations (MAXPD/MINPD are the scalar selects, NaN included; the
 * truncation of u in [0.5, n + 0.5] to int32 is the scalar one, n < 2^31),
 * the bins into j, the NaN count added to *nan.  Returns the mask of the
 * lanes whose u is FD_ARITH_TOL away from an integer; the others take
 * bin_near, as in bin_of.  The AVX-512 path uses it too: a 512-bit version
 * measured slower (bench/bench_kernels.py, uniform100: 0.57x np.sum against
 * 0.66x). */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m256d arith_u_avx2(const hctx *h, __m256d x)
{
    __m256d u = _mm256_mul_pd(_mm256_sub_pd(x, _mm256_set1_pd(h->lo)), _mm256_set1_pd(h->inv));
    u = _mm256_max_pd(u, _mm256_set1_pd(h->bottom));
    u = _mm256_min_pd(u, _mm256_set1_pd(h->top));
    return _mm256_add_pd(u, _mm256_set1_pd(1.0));
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m128i arith_bins_avx2(const hctx *h, __m256d x, __m256d *ok)
{
    const __m256d u = arith_u_avx2(h, x);
    const __m128i b = _mm256_cvttpd_epi32(u);
    const __m256d fr = _mm256_sub_pd(u, _mm256_cvtepi32_pd(b));
    *ok = _mm256_and_pd(_mm256_cmp_pd(fr, _mm256_set1_pd(FD_ARITH_TOL), _CMP_GE_OQ),
                        _mm256_cmp_pd(fr, _mm256_set1_pd(1.0 - FD_ARITH_TOL), _CMP_LE_OQ));
    return b;
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
unsigned arith4_avx2(const hctx *h, const double *p, int32_t *j, int64_t *nan)
{
    const __m256d x = _mm256_loadu_pd(p);
    __m256d ok;
    const __m128i b = arith_bins_avx2(h, x, &ok);
    _mm_storeu_si128((__m128i *)(void *)j, b);
    *nan += __builtin_popcount((unsigned)_mm256_movemask_pd(_mm256_cmp_pd(x, x, _CMP_UNORD_Q)));
    return (unsigned)_mm256_movemask_pd(ok);
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
unsigned arith8_avx2(const hctx *h, const double *p, int32_t *j, int64_t *nan)
{
    return arith4_avx2(h, p, j, nan) | (arith4_avx2(h, p + 4, j + 4, nan) << 4);
}

/* Eight valid values into the four sub-histograms, as the scalar unrolling. */
#define HIST_VEC8(BINS8, ARITH8, P)                                    \
    do {                                                                     \
        int32_t j_[8];                                                       \
        double xc_[8];                                                       \
        if (MODE == M_ARITH) {                                               \
            const unsigned ok_ = ARITH8(h, (P), j_, &nan);                   \
            if (__builtin_expect(ok_ != 0xFFu, 0))                           \
                for (int k_ = 0; k_ < 8; ++k_)                               \
                    if (!((ok_ >> k_) & 1u)) {                               \
                        const double x_ = (P)[k_];                           \
                        j_[k_] = (int32_t)bin_near(                          \
                            h->e, x_ > DBL_MAX ? DBL_MAX : x_, j_[k_]);      \
                    }                                                        \
            c0[j_[0]]++; c1[j_[1]]++; c2[j_[2]]++; c3[j_[3]]++;              \
            c0[j_[4]]++; c1[j_[5]]++; c2[j_[6]]++; c3[j_[7]]++;              \
            break;                                                           \
        }                                                                    \
        nan += BINS8(h, (P), MODE, j_, xc_);                                 \
        c0[bin_finish(h, j_[0], xc_[0], MODE)]++;                            \
        c1[bin_finish(h, j_[1], xc_[1], MODE)]++;                            \
        c2[bin_finish(h, j_[2], xc_[2], MODE)]++;                            \
        c3[bin_finish(h, j_[3], xc_[3], MODE)]++;                            \
        c0[bin_finish(h, j_[4], xc_[4], MODE)]++;                            \
        c1[bin_finish(h, j_[5], xc_[5], MODE)]++;                            \
        c2[bin_finish(h, j_[6], xc_[6], MODE)]++;                            \
        c3[bin_finish(h, j_[7], xc_[7], MODE)]++;                            \
    } while (0)

#define DEF_HIST_F64_VEC(SFX, TGT, BINS8, ARITH8)                                    \
TGT static inline __attribute__((always_inline))                               \
void hist_vbody_##SFX(const double *v, const uint8_t *valid, int64_t off,      \
                      int64_t len, const hctx *h_, const int MODE,             \
                      int64_t *counts, int64_t n_bins,                         \
                      int64_t *n_null, int64_t *n_nan)                         \
{                                                                              \
    const int IS_FLOAT = 1;                                                    \
    const hctx hl = *h_;                                                       \
    const hctx *const h = &hl;                                                 \
    HIST_LOCAL_SETUP;                                                          \
    int64_t nan = 0, nul = 0, i = 0;                                           \
    v += off;                                                                  \
    if (valid == 0) {                                                          \
        for (; i + 8 <= len; i += 8) {                                         \
            FD_PREFETCH(v + i);                                                \
            HIST_VEC8(BINS8, ARITH8, v + i);                                   \
        }                                                                      \
        for (; i < len; ++i)                                                   \
            HIST_ONE(c0, v[i], 1);                                             \
    } else {                                                                   \
        int64_t pos = off;                                                     \
        for (; i < len && (pos & 7); ++i, ++pos) {                             \
            const int64_t w = (valid[pos >> 3] >> (pos & 7)) & 1;              \
            HIST_ONE(c0, v[i], w);                                             \
            nul += 1 - w;                                                      \
        }                                                                      \
        for (; i + 8 <= len; i += 8, pos += 8) {                               \
            const unsigned m = valid[pos >> 3];                                \
            FD_PREFETCH(v + i);                                                \
            if (m == 0xFFu) {                                                  \
                HIST_VEC8(BINS8, ARITH8, v + i);                               \
            } else if (m == 0u) {                                              \
                nul += 8;                                                      \
            } else {                                                           \
                for (int b_ = 0; b_ < 8; ++b_) {                               \
                    const int64_t w = (m >> b_) & 1u;                          \
                    HIST_ONE(c0, v[i + b_], w);                                \
                    nul += 1 - w;                                              \
                }                                                              \
            }                                                                  \
        }                                                                      \
        for (; i < len; ++i, ++pos) {                                          \
            const int64_t w = (valid[pos >> 3] >> (pos & 7)) & 1;              \
            HIST_ONE(c0, v[i], w);                                             \
            nul += 1 - w;                                                      \
        }                                                                      \
    }                                                                          \
    HIST_LOCAL_FINISH;                                                         \
}                                                                              \
/* The body for the index's mode. */                                         \
TGT static void hist_f64_##SFX(const void *values, const uint8_t *valid,       \
                               int64_t off, int64_t len, const hctx *h,        \
                               int mode, int64_t *counts, int64_t n_bins,      \
                               int64_t *n_null, int64_t *n_nan)                \
{                                                                              \
    const double *v = (const double *)values;                                  \
    switch (mode) {                                                            \
    case M_ARITH:                                                              \
        hist_vbody_##SFX(v, valid, off, len, h, M_ARITH, counts,               \
                         n_bins, n_null, n_nan);                               \
        break;                                                                 \
    case M_UNIFORM:                                                            \
        hist_vbody_##SFX(v, valid, off, len, h, M_UNIFORM, counts,             \
                         n_bins, n_null, n_nan);                               \
        break;                                                                 \
    case M_P1:                                                                 \
        hist_vbody_##SFX(v, valid, off, len, h, M_P1, counts, n_bins,          \
                         n_null, n_nan);                                       \
        break;                                                                 \
    case M_P2:                                                                 \
        hist_vbody_##SFX(v, valid, off, len, h, M_P2, counts, n_bins,          \
                         n_null, n_nan);                                       \
        break;                                                                 \
    case M_P3:                                                                 \
        hist_vbody_##SFX(v, valid, off, len, h, M_P3, counts, n_bins,          \
                         n_null, n_nan);                                       \
        break;                                                                 \
    default:                                                                   \
        hist_vbody_##SFX(v, valid, off, len, h, M_PN, counts, n_bins,          \
                         n_null, n_nan);                                       \
        break;                                                                 \
    }                                                                          \
}

DEF_HIST_F64_VEC(avx2, FD_TARGET_AVX2, guess8_avx2, arith8_avx2)
/* The AVX-512 path keeps the 256-bit guesses: with scalar lookups after
 * them, 512-bit ones measured no faster (bench/bench_kernels.py, uniform100
 * and quantile100: 0.41x np.sum against 0.46x); its gains are the run paths
 * (cmprun32_avx512, the bucket tables). */
DEF_HIST_F64_VEC(avx512, FD_TARGET_AVX512, guess8_avx2, arith8_avx2)

/* ---- runs of valid values -------------------------------------------------
 * Storing a bin and incrementing its counter, one value at a time, is what
 * limits the bodies above (about 0.8 ns a value here, bench/bench_kernels.py),
 * so two kinds of index count the runs of valid values (a chunk without a
 * bitmap, or stretches of whole all-valid bitmap bytes) another way; the rest
 * of the chunk, nulls included, goes to a body as before (hist_runs).
 *
 *  - Few edges (at most FD_HIST_CMP_EDGES): the histogram of a run from its
 *    definition, summed over the run: ge[k], the number of values >= e_k, by
 *    one vector compare and one masked add per edge, the sums held in vector
 *    registers; then bin k holds ge[k-1] - ge[k].  No bin is stored, and
 *    +inf needs no clamp; a NaN value is >= no edge and lands in bin 0, which
 *    gives the run's NaN count back.  Exact by definition.  On the AVX-512
 *    path the compares take 16 values at a time, in float32 (cmprun32_avx512).
 *
 *  - Equal widths (M_ARITH) with few enough bins: the bins of 16 values by
 *    one multiply-add each where fma_plan_prove holds for the edges (else by
 *    arith8m_avx2), the exact search near a boundary as in the body, and one
 *    increment per pair of values, of the cell of the pair {a, b}, a >= b,
 *    a (a + 1) / 2 + b of a triangular pair table (uint32, n_bins (n_bins +
 *    1) / 2 cells, folded into counts by rows and columns every
 *    FD_HIST_PAIR_BLOCK values and at the end: 101 bins take 20 KiB, which
 *    the L1 holds).  The bucket tables of quantile edges follow below. */
#define FD_HIST_RUN 16               /* a run is whole blocks of this many values */
#define FD_HIST_PAIR_BINS 128        /* the pair table fits the L2 of any x86-64 */
#define FD_HIST_PAIR_BLOCK 1048576    /* values between folds (a multiple of 16): cells stay far below 2^32 */
/* Values per n_bins^2 for the table's set-up and fold to pay (measured with
 * the square table of 16-bit cells, whose fold was the same per value): 102
 * bins, 24,000 values 0.66-0.73 against 0.93-0.98 ns a value for the body,
 * 12,000 0.92-1.03 against 1.1-1.2 (1 and 2), with 8 the body up to 83,232. */
#define FD_HIST_PAIR_MIN_PER_CELL 2

typedef void (*run_fn)(const double *p, int64_t n, void *ctx);

/* Values of a chunk with a bitmap go in blocks of this many (a multiple of 8
 * and of FD_HIST_RUN): a block whose bitmap bytes are all set is a run where
 * it is; any other block's valid values are copied together into a buffer on
 * the stack, whose whole runs of FD_HIST_RUN are counted as a run, the
 * values left over waiting in the buffer for the next block's (the body, which
 * sets up and sums its sub-histograms at each call, takes them once, at the
 * end).  Counts do not depend on the order in which values are counted, so the
 * copy counts exactly what the bitmap says. */
#define FD_HIST_PACK 1024

/* The whole runs of buf[0:k] to run(); the values left over (fewer than
 * FD_HIST_RUN) moved to the front of buf: returns how many. */
static int64_t run_whole(double *buf, int64_t k, run_fn run, void *ctx)
{
    const int64_t r = k / FD_HIST_RUN * FD_HIST_RUN;
    if (r)
        run(buf, r, ctx);
    for (int64_t j = r; j < k; ++j)
        buf[j - r] = buf[j];
    return k - r;
}

/* Count values[off:off+len] (bitmap valid, or none): runs to run(), the rest to rest(). */
static void hist_runs(const double *values, const uint8_t *valid, int64_t off, int64_t len,
                      const hctx *h, int mode, int64_t *counts, int64_t n_bins,
                      int64_t *n_null, int64_t *n_nan, run_fn run, void *ctx, hist_fn rest)
{
    int64_t a = 0;   /* values[off + a:] are not counted yet */
    if (valid == 0) {
        a = len / FD_HIST_RUN * FD_HIST_RUN;
        if (a)
            run(values + off, a, ctx);
    } else {
        double buf[FD_HIST_PACK + FD_HIST_RUN];
        int64_t k = 0;   /* valid values waiting in buf (fewer than FD_HIST_RUN between blocks) */
        a = (8 - (off & 7)) & 7;   /* the first value at a bitmap byte */
        if (a > len)
            a = len;
        if (a)
            rest(values, valid, off, a, h, mode, counts, n_bins, n_null, n_nan);
        while (len - a >= FD_HIST_RUN) {
            const int64_t blk = len - a >= FD_HIST_PACK ? FD_HIST_PACK : (len - a) / 8 * 8;
            const uint8_t *vb = valid + ((off + a) >> 3);
            const double *p = values + off + a;
            unsigned all = 0xFFu;
            for (int64_t j = 0; j < blk / 8; ++j)
                all &= vb[j];
            if (all == 0xFFu && blk % FD_HIST_RUN == 0) {
                run(p, blk, ctx);
            } else {
                const int64_t k0 = k;
                for (int64_t j = 0; j < blk / 8; ++j) {
                    const unsigned m = vb[j];
                    FD_PREFETCH(p + 8 * j + 64);
                    for (int b = 0; b < 8; ++b) {
                        buf[k] = p[8 * j + b];
                        k += (m >> b) & 1u;
                    }
                }
                *n_null += blk - (k - k0);
                k = run_whole(buf, k, run, ctx);
            }
            a += blk;
        }
        if (k)
            rest(buf, 0, 0, k, h, mode, counts, n_bins, n_null, n_nan);
    }
    if (len > a)
        rest(values, valid, off + a, len - a, h, mode, counts, n_bins, n_null, n_nan);
}

/* A column's values to the run paths: float64 read where it is (hist_runs),
 * other types converted a block at a time into a buffer of doubles (valid
 * values only), whose whole runs are counted as runs and whose leftovers wait
 * for the next block's; rest, the float64 body, takes the last ones. */
static void hist_runs_col(const fd_column *col, const hctx *h, int mode, int64_t *counts,
                          int64_t n_bins, int64_t *n_null, int64_t *n_nan, run_fn run, void *ctx,
                          hist_fn rest)
{
    const conv_fn conv = conv_for(col->type);
    if (conv == 0) {
        hist_runs((const double *)col->values, col->validity, col->offset, col->length, h, mode,
                  counts, n_bins, n_null, n_nan, run, ctx, rest);
        return;
    }
    double buf[FD_HIST_PACK + FD_HIST_RUN];
    int64_t k = 0;
    for (int64_t a = 0; a < col->length; a += FD_HIST_PACK) {
        const int64_t blk = col->length - a < FD_HIST_PACK ? col->length - a : FD_HIST_PACK;
        const int64_t k0 = k;
        k = conv(col->values, col->validity, col->offset, a, blk, buf, k);
        *n_null += blk - (k - k0);
        k = run_whole(buf, k, run, ctx);
    }
    if (k)
        rest(buf, 0, 0, k, h, mode, counts, n_bins, n_null, n_nan);
}

typedef struct cmp_ctx {
    double e[FD_HIST_CMP_EDGES];   /* the edges */
    int ne;                        /* edges compared */
    int64_t ge[FD_HIST_CMP_EDGES]; /* values >= e[k] */
    int64_t n, nan;                /* values and NaN in the runs */
    /* cmprun32_avx512's plan (cmp32_plan) */
    float eu[FD_HIST_CMP_EDGES];   /* e[k] rounded up to float */
    int32_t slot[64];              /* the edges' down-roundings that differ, by hash; else an sNaN */
    uint32_t mult;                 /* the hash: the top 5 (or 6) bits of bits * mult */
    int wide;                      /* 64 slots, two tables, instead of 32 */
    int64_t groups, flagged;       /* groups of 16 counted, and those compared in double */
} cmp_ctx;

FD_TARGET_AVX2 static inline __attribute__((always_inline))
int64_t sum4_epi64(__m256i a)
{
    int64_t t[4];
    _mm256_storeu_si256((__m256i *)(void *)t, a);
    return t[0] + t[1] + t[2] + t[3];
}

/* 64-bit lanes: a compare is -1 where true, subtracted.  Every line of the
 * values is prefetched 4 KiB ahead: against 1 KiB, 1e7 normal values, 10
 * quantile bins, on a Zen 3 (bench/hist_ab.c), 2-10 % faster from memory
 * (B/A 0.90-0.98, nine runs; 2 KiB 0.95, 3 KiB 0.89-0.94, 6 KiB 0.92; in
 * L3 no different). */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
void cmprun_avx2_ne(const double *p, int64_t n, cmp_ctx *c, const int NE)
{
    __m256i acc[FD_HIST_CMP_EDGES], nacc = _mm256_setzero_si256();
    for (int k = 0; k < NE; ++k)
        acc[k] = _mm256_setzero_si256();
    for (int64_t i = 0; i < n; i += 4) {
        if ((i & 7) == 0)
            FD_PREFETCH(p + i + 384);
        const __m256d x = _mm256_loadu_pd(p + i);
        for (int k = 0; k < NE; ++k)
            acc[k] = _mm256_sub_epi64(acc[k], _mm256_castpd_si256(
                         _mm256_cmp_pd(x, _mm256_set1_pd(c->e[k]), _CMP_GE_OQ)));
        nacc = _mm256_sub_epi64(nacc, _mm256_castpd_si256(_mm256_cmp_pd(x, x, _CMP_UNORD_Q)));
    }
    for (int k = 0; k < NE; ++k)
        c->ge[k] += sum4_epi64(acc[k]);
    c->nan += sum4_epi64(nacc);
    c->n += n;
}

/* One instance per edge count, so the compares unroll into registers (even
 * counts alone, the odd ones compared against a NaN edge more, took 9 edges
 * at 0.48 against 0.45 ns a value on AVX2). */
#define CMPRUN_CASES(F)                                                         \
    switch (c->ne) {                                                            \
    case 1: F(p, n, c, 1); break;   case 2: F(p, n, c, 2); break;               \
    case 3: F(p, n, c, 3); break;   case 4: F(p, n, c, 4); break;               \
    case 5: F(p, n, c, 5); break;   case 6: F(p, n, c, 6); break;               \
    case 7: F(p, n, c, 7); break;   case 8: F(p, n, c, 8); break;               \
    case 9: F(p, n, c, 9); break;   case 10: F(p, n, c, 10); break;             \
    case 11: F(p, n, c, 11); break; case 12: F(p, n, c, 12); break;             \
    case 13: F(p, n, c, 13); break; case 14: F(p, n, c, 14); break;             \
    case 15: F(p, n, c, 15); break; default: F(p, n, c, 16); break;             \
    }

FD_TARGET_AVX2 static void cmprun_avx2(const double *p, int64_t n, void *ctx)
{
    cmp_ctx *c = (cmp_ctx *)ctx;
    CMPRUN_CASES(cmprun_avx2_ne)
}

/* ---- few edges, compared in float32 ------------------------------------------
 * The compare counts of cmprun_* take 16 values a compare instead of 8 where
 * a value's float rounding down, f = RD(x), is compared with each edge's
 * rounding up, E_k = RU(e_k): f >= E_k implies x >= f >= E_k >= e_k; and
 * x >= e_k implies f >= RD(e_k) =: D_k, so f >= E_k unless f == D_k != E_k
 * (D_k and E_k are then adjacent floats).  So the compare is exact for every
 * value whose f is none of the edges' D_k that differ from their E_k, a set
 * of at most 16 floats: a group of 16 values one of whose f is in it is
 * compared in double instead.  The set's test is one look-up: a hash (the top
 * five bits of f's bits times an odd multiplier, cmp32_plan trying up to
 * FD_CMP32_TRIES of them for one that gives each member a slot of its own)
 * into a table of 32 slots (else the top six bits into 64), each slot
 * holding its member, or a signalling
 * NaN, which no conversion returns (they return quiet NaNs), then one
 * compare of the slot with f.  A NaN value gives a NaN f: no edge, counted
 * by the unordered compare as in cmprun_*.  Out of float's range, RD gives
 * FLT_MAX and -inf, RU +inf and -FLT_MAX, adjacent floats: the argument holds.
 * Flushing subnormals to zero (MXCSR's FTZ) or reading them as zero (DAZ)
 * would break RD(x) <= x for tiny negative x: the plan fails with either set.
 * Lanes count in 32 bits, summed every FD_CMP32_BLOCK values.  Data with many
 * values on the edges flags many groups, each a branch the CPU mispredicts
 * (a sixteenth of the values on an edge: 0.91 ns a value against 0.44 for
 * the double compares), so once more than one group in FD_CMP32_FLAGGED has
 * been flagged (after FD_CMP32_BLOCK values), the rest of the column takes
 * the double compares. */
#define FD_CMP32_TRIES 64
/* Values in a call for the plan to pay: 16 edges took 64 slots, the plan
 * 0.2-0.4 us a call; the float32 compares save 0.1-0.4 ns a value. */
#define FD_CMP32_MIN_LEN 1024
#define FD_CMP32_BLOCK 4096
#define FD_CMP32_FLAGGED 32
#define FD_CMP32_EMPTY ((int32_t)0x7F800001)   /* a signalling NaN */

FD_TARGET_AVX512 static float fd_round_f32(double e, int up)
{
    const __m128d v = _mm_set_sd(e);
    return _mm_cvtss_f32(up ? _mm_cvt_roundsd_ss(_mm_setzero_ps(), v, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
                            : _mm_cvt_roundsd_ss(_mm_setzero_ps(), v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
}

/* Fills c->eu, c->slot, c->mult and c->wide (32 slots if a multiplier tried
 * gives every down-rounding a slot of its own, else 64); 0 if neither, or the
 * MXCSR flushes subnormals. */
FD_TARGET_AVX512 static int cmp32_plan(cmp_ctx *c)
{
    if (_mm_getcsr() & 0x8040u)   /* FTZ (bit 15) or DAZ (bit 6) */
        return 0;
    uint32_t d[FD_HIST_CMP_EDGES];
    int nd = 0;
    for (int k = 0; k < c->ne; ++k) {
        const float up = fd_round_f32(c->e[k], 1), dn = fd_round_f32(c->e[k], 0);
        c->eu[k] = up;
        if (up != dn) {
            uint32_t b;
            memcpy(&b, &dn, sizeof b);
            if (nd == 0 || d[nd - 1] != b)   /* edges ascend: equal roundings are neighbours */
                d[nd++] = b;
        }
    }
    for (int bits = 5; bits <= 6; ++bits) {
        uint32_t m = 0x9E3779B1u;
        for (int t = 0; t < FD_CMP32_TRIES; ++t, m = (m * 0x2545F491u + 0x6D2B79F5u) | 1u) {
            uint64_t used = 0;   /* the slots taken so far, a bit each */
            int j = 0;
            for (; j < nd; ++j) {
                const uint64_t b = (uint64_t)1 << ((d[j] * m) >> (32 - bits));
                if (used & b)
                    break;
                used |= b;
            }
            if (j == nd) {
                for (int s = 0; s < 64; ++s)
                    c->slot[s] = FD_CMP32_EMPTY;
                for (j = 0; j < nd; ++j)
                    c->slot[(d[j] * m) >> (32 - bits)] = (int32_t)d[j];
                c->mult = m;
                c->wide = bits == 6;
                return 1;
            }
        }
    }
    return 0;
}

FD_TARGET_AVX512 static inline __attribute__((always_inline))
void cmprun32_avx512_ne(const double *p, int64_t n, cmp_ctx *c, const int NE, const int WIDE)
{
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i ta = _mm512_loadu_si512((const void *)c->slot);
    const __m512i tb = _mm512_loadu_si512((const void *)(c->slot + 16));
    const __m512i tc = _mm512_loadu_si512((const void *)(c->slot + 32));
    const __m512i td = _mm512_loadu_si512((const void *)(c->slot + 48));
    const __m512i mul = _mm512_set1_epi32((int32_t)c->mult);
    __m512 ev[FD_HIST_CMP_EDGES];
    for (int k = 0; k < NE; ++k)
        ev[k] = _mm512_set1_ps(c->eu[k]);
    for (int64_t b = 0; b < n; b += FD_CMP32_BLOCK) {
        const int64_t end = n - b > FD_CMP32_BLOCK ? b + FD_CMP32_BLOCK : n;
        if (c->flagged * FD_CMP32_FLAGGED > c->groups && c->groups >= FD_CMP32_BLOCK / 16) {
            c->n += b;
            cmprun_avx2(p + b, n - b, c);
            return;
        }
        __m512i acc[FD_HIST_CMP_EDGES], nacc = _mm512_setzero_si512();
        for (int k = 0; k < NE; ++k)
            acc[k] = _mm512_setzero_si512();
        for (int64_t i = b; i < end; i += 16) {
            FD_PREFETCH(p + i);
            FD_PREFETCH(p + i + 8);
            const __m512d x0 = _mm512_loadu_pd(p + i), x1 = _mm512_loadu_pd(p + i + 8);
            const __m512 f = _mm512_insertf32x8(
                _mm512_castps256_ps512(_mm512_cvt_roundpd_ps(x0, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)),
                _mm512_cvt_roundpd_ps(x1, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC), 1);
            const __m512i fi = _mm512_castps_si512(f);
            /* 64 slots: slot h in table h >> 5 (ta:tb or tc:td) at h & 31; f
             * can equal only the member of its own slot, so both tables'
             * look-ups are compared, with no select. */
            const __m512i h = _mm512_srli_epi32(_mm512_mullo_epi32(fi, mul), WIDE ? 26 : 27);
            const __mmask16 hit = WIDE ? _mm512_cmpeq_epi32_mask(_mm512_permutex2var_epi32(ta, h, tb), fi)
                                         | _mm512_cmpeq_epi32_mask(_mm512_permutex2var_epi32(tc, h, td), fi)
                                       : _mm512_cmpeq_epi32_mask(_mm512_permutex2var_epi32(ta, h, tb), fi);
            if (__builtin_expect(hit != 0, 0)) {
                c->flagged++;
                for (int k = 0; k < NE; ++k) {
                    const __m512d e = _mm512_set1_pd(c->e[k]);
                    const __mmask16 m = _mm512_kunpackb(_mm512_cmp_pd_mask(x1, e, _CMP_GE_OQ),
                                                        _mm512_cmp_pd_mask(x0, e, _CMP_GE_OQ));
                    acc[k] = _mm512_mask_add_epi32(acc[k], m, acc[k], one);
                }
            } else {
                for (int k = 0; k < NE; ++k)
                    acc[k] = _mm512_mask_add_epi32(acc[k], _mm512_cmp_ps_mask(f, ev[k], _CMP_GE_OQ),
                                                   acc[k], one);
            }
            nacc = _mm512_mask_add_epi32(nacc, _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q), nacc, one);
        }
        c->groups += (end - b) / 16;
        for (int k = 0; k < NE; ++k)
            c->ge[k] += _mm512_reduce_add_epi32(acc[k]);
        c->nan += _mm512_reduce_add_epi32(nacc);
    }
    c->n += n;
}

FD_TARGET_AVX512 static inline __attribute__((always_inline))
void cmprun32n_avx512_ne(const double *p, int64_t n, cmp_ctx *c, const int NE)
{
    cmprun32_avx512_ne(p, n, c, NE, 0);
}

FD_TARGET_AVX512 static inline __attribute__((always_inline))
void cmprun32w_avx512_ne(const double *p, int64_t n, cmp_ctx *c, const int NE)
{
    cmprun32_avx512_ne(p, n, c, NE, 1);
}

FD_TARGET_AVX512 static void cmprun32_avx512(const double *p, int64_t n, void *ctx)
{
    cmp_ctx *c = (cmp_ctx *)ctx;
    CMPRUN_CASES(cmprun32n_avx512_ne)
}

FD_TARGET_AVX512 static void cmprun32w_avx512(const double *p, int64_t n, void *ctx)
{
    cmp_ctx *c = (cmp_ctx *)ctx;
    CMPRUN_CASES(cmprun32w_avx512_ne)
}

/* The compare counts of a column: cmprun32_avx512 on the AVX-512 path where
 * its plan holds, else cmprun_avx2. */
static void hist_cmp(const fd_column *col, const hctx *h, int mode, int64_t n_edges,
                     int64_t *counts, int64_t *n_null, int64_t *n_nan, hist_fn rest, int is512)
{
    cmp_ctx c;
    run_fn run = cmprun_avx2;
    memset(&c, 0, sizeof c);
    c.ne = (int)n_edges;
    for (int64_t k = 0; k < n_edges; ++k)
        c.e[k] = h->e[k];
    if (is512 && col->length >= FD_CMP32_MIN_LEN && cmp32_plan(&c))
        run = c.wide ? cmprun32w_avx512 : cmprun32_avx512;
    hist_runs_col(col, h, mode, counts, n_edges + 1, n_null, n_nan, run, &c, rest);
    counts[0] += c.n - c.ge[0] - c.nan;
    for (int64_t k = 1; k < n_edges; ++k)
        counts[k] += c.ge[k - 1] - c.ge[k];
    counts[n_edges] += c.ge[n_edges - 1];
    *n_nan += c.nan;
}

/* The pair table's bins by one multiply-add (pairrun_fma_avx2): with x
 * clamped to [xlo, xhi], v = fma(x, inv, c) is a double of [2^32, 2^33),
 * whose spacing is 2^-FD_FMA_S: t = v - FD_FMA_BASE, exact, is a fixed-point
 * u with FD_FMA_S fraction bits, and it is the low 32 bits of v's encoding
 * (FD_FMA_BASE's are 0).  The bin is t >> FD_FMA_S unless t's fraction lies
 * within the plan's tol of an integer (or v is NaN): such a group takes
 * arith8v_avx2's exact bins.  fma_plan_prove checks, with this very
 * arithmetic, what _arith_is_exact (src/fastdrift/kernels/hist.py) checks
 * of the arith path's u at every edge, and that the clamps keep t in
 * [0, (n_edges + 1) << FD_FMA_S); the index's arith proof does not cover
 * this other rounding, so each call that takes the pair table proves it
 * (2 n_edges + 2 evaluations per tolerance tried).  The tolerance is the
 * tightest that holds of FD_FMA_TIGHT (2^-17 of a bin: the multiply-add
 * rounds once, to 2^-20, and equal widths put t within a unit or two of
 * k << FD_FMA_S at edge k) and FD_FMA_TOL (the index's FD_ARITH_TOL): with
 * 2^-12, 1 value in 2,048 flags its group of 16, and 1e7 normal values, 100
 * uniform bins, counted at 0.49-0.50 against 0.55-0.56 ns a value on a Zen 3
 * (bench/hist_ab.c, B/A 0.89-0.90 in three runs of four). */
#define FD_FMA_S 20
#define FD_FMA_BASE 6442450944.0                                  /* 1.5 * 2^32 */
#define FD_FMA_TOL ((int32_t)1 << (FD_FMA_S - FD_HIST_ARITH_TOL_LOG2)) /* FD_ARITH_TOL */
#define FD_FMA_TIGHT ((int32_t)1 << (FD_FMA_S - 17))

typedef struct fma_plan {
    double xlo, xhi, inv, c;
    int32_t tol;        /* FD_FMA_TIGHT or FD_FMA_TOL, units of 2^-FD_FMA_S */
} fma_plan;

typedef struct pair_ctx {
    const hctx *h;
    fma_plan fma;
    uint32_t *cell;     /* n_bins (n_bins + 1) / 2, see pair_cells */
    int64_t n_bins;
    int64_t pairs;      /* counted into cell since the last fold */
    int64_t nan;
    int64_t *counts;
} pair_ctx;

/* cell into counts, then zeroed: row a (cells a (a + 1) / 2 .. + a, the
 * pairs {a, b}, b <= a) into counts[a], each cell also into the count of
 * its column b (so a pair {a, a} counts twice in bin a), 8 cells a load,
 * the last load of a row masked (the table is followed by 32 bytes that may
 * be read).  Every cell, and every sum of cells, is at most the pairs
 * counted since the last fold, at most FD_HIST_PAIR_BLOCK / 2: the sums are
 * exact in 32 bits. */
FD_TARGET_AVX2 static void pair_fold(pair_ctx *c)
{
    const int64_t nb = c->n_bins;
    uint32_t col[FD_HIST_PAIR_BINS + 8] = {0};
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const uint32_t *row = c->cell;
    for (int64_t a = 0; a < nb; row += ++a) {
        __m256i r = _mm256_setzero_si256();
        for (int64_t b = 0; b <= a; b += 8) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(row + b));
            if (b + 8 > a + 1)
                v = _mm256_and_si256(v, _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(a + 1 - b)), lane));
            r = _mm256_add_epi32(r, v);
            __m256i *cb = (__m256i *)(void *)(col + b);
            _mm256_storeu_si256(cb, _mm256_add_epi32(_mm256_loadu_si256(cb), v));
        }
        const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        const __m128i h2 = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
        c->counts[a] += (uint32_t)_mm_cvtsi128_si32(_mm_add_epi32(h2, _mm_srli_epi64(h2, 32)));
    }
    for (int64_t b = 0; b < nb; ++b)
        c->counts[b] += col[b];
    memset(c->cell, 0, sizeof(uint32_t) * (size_t)(nb * (nb + 1) / 2));
    c->pairs = 0;
}

/* The exact search of bin_of for the lanes of b not in ok: rare. */
static __attribute__((noinline)) void arith_fix8(const hctx *h, const double *p, unsigned ok, int32_t *j)
{
    for (int k = 0; k < 8; ++k)
        if (!((ok >> k) & 1u)) {
            const double x = p[k];
            j[k] = (int32_t)bin_near(h->e, x > DBL_MAX ? DBL_MAX : x, j[k]);
        }
}

/* The bins of 8 values in a register, by arith4_avx2's operations (storing
 * them in two halves and reloading them whole measured 2x slower: a failed
 * store forwarding).  NaN lanes add 1 to their 64-bit lane of *nacc. */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m128i arith4v_avx2(const hctx *h, const double *p, unsigned *ok, __m256i *nacc)
{
    const __m256d x = _mm256_loadu_pd(p);
    __m256d good;
    const __m128i b = arith_bins_avx2(h, x, &good);
    *ok = (unsigned)_mm256_movemask_pd(good);
    *nacc = _mm256_sub_epi64(*nacc, _mm256_castpd_si256(_mm256_cmp_pd(x, x, _CMP_UNORD_Q)));
    return b;
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m256i arith8v_avx2(const hctx *h, const double *p, __m256i *nacc)
{
    unsigned lo4, hi4;
    const __m128i a = arith4v_avx2(h, p, &lo4, nacc);
    const __m128i b = arith4v_avx2(h, p + 4, &hi4, nacc);
    __m256i r = _mm256_set_m128i(b, a);
    const unsigned ok = lo4 | (hi4 << 4);
    if (__builtin_expect(ok != 0xFFu, 0)) {
        int32_t j[8];
        _mm256_storeu_si256((__m256i *)(void *)j, r);
        arith_fix8(h, p, ok, j);
        r = _mm256_loadu_si256((const __m256i *)(const void *)j);
    }
    return r;
}

/* The bins of 8 values as arith8v_avx2 gives them, in another order (values
 * 0, 1, 4, 5, 2, 3, 6, 7), when all 8 are FD_ARITH_TOL away from an integer
 * (otherwise arith8v_avx2's, in order).  u is arith_u_avx2's; its floor
 * comes from v = u + (2^52 - 0.5), rounded to an integer (the doubles of
 * [2^52, 2^53) are the integers): v - 2^52 is u - 0.5 rounded to nearest,
 * which is floor(u) unless u is an integer (a tie: u - 0.5 may round down);
 * then fr = u - floor(u), exact, is 0 or 1 and the lane fails the test, as
 * with the truncation.  So the lanes that pass and their bins are
 * arith_bins_avx2's, and the bin is the low 32 bits of v, with no
 * conversion (two 2-uop conversions a 4 values fewer: 1e7 normal values,
 * 100 uniform bins, the loop alone 0.41 against 0.48 ns a value). */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m256i arith8m_avx2(const hctx *h, const double *p, __m256i *nacc)
{
    const __m256d m = _mm256_set1_pd(4503599627370496.0 - 0.5), m2 = _mm256_set1_pd(4503599627370496.0);
    const __m256d x0 = _mm256_loadu_pd(p), x1 = _mm256_loadu_pd(p + 4);
    const __m256d u0 = arith_u_avx2(h, x0), u1 = arith_u_avx2(h, x1);
    const __m256d v0 = _mm256_add_pd(u0, m), v1 = _mm256_add_pd(u1, m);
    const __m256d f0 = _mm256_sub_pd(u0, _mm256_sub_pd(v0, m2)), f1 = _mm256_sub_pd(u1, _mm256_sub_pd(v1, m2));
    const __m256d tl = _mm256_set1_pd(FD_ARITH_TOL), th = _mm256_set1_pd(1.0 - FD_ARITH_TOL);
    const __m256d ok = _mm256_and_pd(_mm256_and_pd(_mm256_cmp_pd(f0, tl, _CMP_GE_OQ), _mm256_cmp_pd(f0, th, _CMP_LE_OQ)),
                                     _mm256_and_pd(_mm256_cmp_pd(f1, tl, _CMP_GE_OQ), _mm256_cmp_pd(f1, th, _CMP_LE_OQ)));
    if (__builtin_expect(_mm256_movemask_pd(ok) != 0xF, 0))
        return arith8v_avx2(h, p, nacc);
    *nacc = _mm256_sub_epi64(*nacc, _mm256_castpd_si256(_mm256_cmp_pd(x0, x0, _CMP_UNORD_Q)));
    *nacc = _mm256_sub_epi64(*nacc, _mm256_castpd_si256(_mm256_cmp_pd(x1, x1, _CMP_UNORD_Q)));
    return _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castpd_ps(v0), _mm256_castpd_ps(v1), _MM_SHUFFLE(2, 0, 2, 0)));
}

/* The cells of the pairs {a, b} of bins (pair_fold): max (max + 1) / 2 +
 * min.  Bins are below 2^7, so the product fits the low 16 bits of each
 * 32-bit lane, whose high 16 bits are zero in both operands: a 16-bit
 * multiply, one operation where the 32-bit one takes two on some x86-64. */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m256i pair_cells(__m256i a, __m256i b)
{
    const __m256i hi = _mm256_max_epu32(a, b), lo = _mm256_min_epu32(a, b);
    return _mm256_add_epi32(_mm256_srli_epi32(_mm256_mullo_epi16(hi, _mm256_add_epi32(hi, _mm256_set1_epi32(1))), 1), lo);
}

/* t of x (fma_plan above): the scalar form of pairrun_fma_avx2's arithmetic
 * (max and min with the bound first: a NaN stays NaN, as there). */
FD_TARGET_AVX2 static int64_t fma_t(const fma_plan *f, double x)
{
    __m128d v = _mm_max_sd(_mm_set_sd(f->xlo), _mm_set_sd(x));
    v = _mm_min_sd(_mm_set_sd(f->xhi), v);
    v = _mm_fmadd_sd(v, _mm_set_sd(f->inv), _mm_set_sd(f->c));
    const __m128d b = _mm_set_sd(FD_FMA_BASE);
    return (int64_t)_mm_cvtsi128_si64(_mm_castpd_si128(v)) - (int64_t)_mm_cvtsi128_si64(_mm_castpd_si128(b));
}

/* 1 if pairrun_fma_avx2's bins are exact for these edges with f->tol (see
 * fma_plan). */
FD_TARGET_AVX2 static int fma_plan_holds(const fma_plan *f, const hctx *h, int64_t n_edges)
{
    const double *e = h->e;
    const int64_t one = (int64_t)1 << FD_FMA_S, tol = f->tol;
    if (!(f->xlo < e[0] && f->xhi >= e[n_edges - 1] && f->xhi <= DBL_MAX && f->c <= DBL_MAX))
        return 0;
    /* Every x maps into [t(xlo), t(xhi)] (t is monotone in x): bins 0..n_edges. */
    if (!(fma_t(f, f->xlo) >= 0 && fma_t(f, f->xhi) < (n_edges + 1) * one))
        return 0;
    /* x in bin k has t in (k one - tol, (k + 1) one + tol): t one tol away
     * from a multiple of one has k = t >> FD_FMA_S. */
    for (int64_t k = 0; k < n_edges; ++k)
        if (!(fma_t(f, e[k]) > (k + 1) * one - tol && fma_t(f, nextafter(e[k], -INFINITY)) < (k + 1) * one + tol))
            return 0;
    return 1;
}

/* 1 if pairrun_fma_avx2's bins are exact for these edges, f->tol the
 * tightest tolerance that holds. */
FD_TARGET_AVX2 static int fma_plan_prove(fma_plan *f, const hctx *h, int64_t n_edges)
{
    f->inv = h->inv;
    f->c = FD_FMA_BASE + (1.0 - h->lo * h->inv);
    f->xlo = h->lo - 0.5 / h->inv;
    f->xhi = h->lo + ((double)n_edges - 0.5) / h->inv;
    f->tol = FD_FMA_TIGHT;
    if (fma_plan_holds(f, h, n_edges))
        return 1;
    f->tol = FD_FMA_TOL;
    return fma_plan_holds(f, h, n_edges);
}

/* 8 cells from 16 values by fma_plan's arithmetic, or arith8v_avx2's exact
 * bins (NaN counted in *nacc) when one of them is NaN or near a boundary;
 * the pairs differ between the two (cells are only summed by rows and
 * columns, so any pairing of the 16 values counts the same). */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m256i fma16_avx2(const hctx *h, const fma_plan *f, const double *p, __m256i *nacc)
{
    const __m256d xlo = _mm256_set1_pd(f->xlo), xhi = _mm256_set1_pd(f->xhi);
    const __m256d inv = _mm256_set1_pd(f->inv), c = _mm256_set1_pd(f->c);
    __m256d v[4];
    for (int k = 0; k < 4; ++k)
        v[k] = _mm256_fmadd_pd(_mm256_min_pd(xhi, _mm256_max_pd(xlo, _mm256_loadu_pd(p + 4 * k))), inv, c);
    /* the low 32 bits of each v: t, in the order 0, 1, 4, 5, 2, 3, 6, 7 */
    const __m256i ta = _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castpd_ps(v[0]), _mm256_castpd_ps(v[1]), _MM_SHUFFLE(2, 0, 2, 0)));
    const __m256i tb = _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castpd_ps(v[2]), _mm256_castpd_ps(v[3]), _MM_SHUFFLE(2, 0, 2, 0)));
    /* a lane near a boundary: fraction f = t & (one - 1) below tol or from
     * one - tol up, that is ((t + tol) & (one - 1)) < 2 tol (t + tol stays
     * below 2^31; f = one - tol exactly is flagged too, which costs only the
     * exact path; two operations fewer than |f - one / 2| > one / 2 - tol) */
    const __m256i fm = _mm256_set1_epi32(((int32_t)1 << FD_FMA_S) - 1), tol = _mm256_set1_epi32(f->tol);
    const __m256i tol2 = _mm256_set1_epi32(2 * f->tol);
    const __m256i fa = _mm256_and_si256(_mm256_add_epi32(ta, tol), fm);
    const __m256i fb = _mm256_and_si256(_mm256_add_epi32(tb, tol), fm);
    const __m256d nan = _mm256_or_pd(_mm256_cmp_pd(v[0], v[1], _CMP_UNORD_Q), _mm256_cmp_pd(v[2], v[3], _CMP_UNORD_Q));
    const __m256i bad = _mm256_or_si256(_mm256_or_si256(_mm256_cmpgt_epi32(tol2, fa), _mm256_cmpgt_epi32(tol2, fb)),
                                        _mm256_castpd_si256(nan));
    if (__builtin_expect(!_mm256_testz_si256(bad, bad), 0))
        return pair_cells(arith8v_avx2(h, p, nacc), arith8v_avx2(h, p + 8, nacc));
    return pair_cells(_mm256_srli_epi32(ta, FD_FMA_S), _mm256_srli_epi32(tb, FD_FMA_S));
}

/* The cells of the 16 values at p: fma16_avx2's or arith8m_avx2's. */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m256i pair_cells16(const hctx *h, const fma_plan *f, const double *p, __m256i *nacc, const int FMA)
{
    if (FMA)
        return fma16_avx2(h, f, p, nacc);
    const __m256i a = arith8m_avx2(h, p, nacc);
    const __m256i b = arith8m_avx2(h, p + 8, nacc);
    return pair_cells(a, b);
}

#define FD_PAIR_SUB 128   /* values whose cells are stored before they are counted */

/* A run in blocks of FD_HIST_PAIR_BLOCK values, folding the table before it
 * holds more pairs than half a block: the cells of 16 values from
 * fma16_avx2 (FMA, when fma_plan_prove holds for the edges) or from
 * arith8m_avx2's bins, stored FD_PAIR_SUB values' worth at a time and
 * counted while the next ones are computed (each cell a load and an
 * increment, the loads long past the store).  Against the cells moved to general registers two at a time by
 * 64-bit extracts and counted at once, 1e7 normal values, 100 uniform bins,
 * the two builds interleaved in one process (bench/hist_ab.c), on a Zen 3:
 * 0.57-0.58 against 0.69-0.72 ns a value with the changes below, each
 * measured alone: the buffer 3-10 % (15 % with the values in L3), the
 * values prefetched 2 KiB ahead instead of 1 KiB 3-4 %, fma16_avx2's cheaper
 * boundary test 1.5-5 %.  Sub-blocks of 64 values were no faster than none,
 * of 256 and 512 no faster than 128.  The AVX-512 path runs this loop too:
 * 512-bit bins measured slower (bench/bench_kernels.py, uniform100: 0.70 ns
 * a value against 0.55). */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
void pairrun_body(const double *p, int64_t n, pair_ctx *c, const int FMA)
{
    const hctx hl = *c->h;
    const hctx *h = &hl;
    const fma_plan f = c->fma;
    uint32_t *cell = c->cell;
    __m256i nacc = _mm256_setzero_si256();
    uint32_t cb[2][FD_PAIR_SUB / 2];   /* the cells of two sub-blocks, in turn */
    for (int64_t i0 = 0; i0 < n;) {
        const int64_t end = n - i0 < FD_HIST_PAIR_BLOCK ? n : i0 + FD_HIST_PAIR_BLOCK;
        if (c->pairs + (end - i0) / 2 > FD_HIST_PAIR_BLOCK / 2)
            pair_fold(c);
        int64_t pend = 0;   /* cells of cb[cur ^ 1] not counted yet */
        int cur = 0;
        for (int64_t s = i0; s < end; s += FD_PAIR_SUB) {
            const int64_t m = end - s < FD_PAIR_SUB ? end - s : FD_PAIR_SUB;   /* a multiple of 16 */
            uint32_t *bc = cb[cur];
            const uint32_t *bp = cb[cur ^ 1];
            int64_t done = 0;
            for (int64_t g = 0; g < m; g += 16) {
                FD_PREFETCH(p + s + g + 128);   /* 2 KiB ahead */
                FD_PREFETCH(p + s + g + 136);
                _mm256_storeu_si256((__m256i *)(void *)(bc + g / 2),
                                    pair_cells16(h, &f, p + s + g, &nacc, FMA));
                if (g / 2 + 8 <= pend) {
                    const uint32_t *q = bp + g / 2;
                    cell[q[0]]++; cell[q[1]]++; cell[q[2]]++; cell[q[3]]++;
                    cell[q[4]]++; cell[q[5]]++; cell[q[6]]++; cell[q[7]]++;
                    done = g / 2 + 8;
                }
            }
            for (int64_t k = done; k < pend; ++k)
                cell[bp[k]]++;
            pend = m / 2;
            cur ^= 1;
        }
        for (int64_t k = 0; k < pend; ++k)   /* before the next block's fold */
            cell[cb[cur ^ 1][k]]++;
        c->pairs += (end - i0) / 2;
        i0 = end;
    }
    c->nan += sum4_epi64(nacc);
}

FD_TARGET_AVX2 static void pairrun_avx2(const double *p, int64_t n, void *ctx)
{
    pairrun_body(p, n, (pair_ctx *)ctx, 0);
}

FD_TARGET_AVX2 static void pairrun_fma_avx2(const double *p, int64_t n, void *ctx)
{
    pairrun_body(p, n, (pair_ctx *)ctx, 1);
}

/* 1 if counted, 0 if the pair table could not be allocated. */
static int hist_pairs(const fd_column *col, const hctx *h, int64_t n_edges, int64_t *counts,
                      int64_t *n_null, int64_t *n_nan, hist_fn rest)
{
    pair_ctx c;
    c.h = h;
    c.n_bins = n_edges + 1;
    /* The table starts on a 4 KiB boundary: placed where malloc put it, 3
     * of 14 fresh processes counted 100 uniform bins at 0.59-0.60 instead of
     * 0.49-0.51 ns a value with np.sum unchanged (1e7 normal values), the
     * aligned build none of 14 (its placement against the L1's sets). */
    const size_t bytes = (size_t)(c.n_bins * (c.n_bins + 1) / 2) * sizeof(uint32_t);
    char *raw = (char *)malloc(bytes + 4096 + 32);
    if (raw == 0)
        return 0;
    c.cell = (uint32_t *)(void *)(raw + (4096 - ((uintptr_t)raw & 4095)));
    memset(c.cell, 0, bytes);
    c.pairs = 0;
    c.nan = 0;
    c.counts = counts;
    const run_fn run = fma_plan_prove(&c.fma, h, n_edges) ? pairrun_fma_avx2 : pairrun_avx2;
    hist_runs_col(col, h, M_ARITH, counts, c.n_bins, n_null, n_nan, run, &c, rest);
    pair_fold(&c);
    free(raw);
    counts[0] -= c.nan;   /* an arith NaN lands in bin 0 (nan_bin) */
    *n_nan += c.nan;
    return 1;
}

/* ---- quantile edges: a bucket table in registers ---------------------------
 * Counting one value at a time is cheap (about 0.4 ns a value here) when the
 * bins are computed ahead, a block at a time, and read back by the increments
 * from a small buffer; what costs is the per-value lookup of table and edge
 * in the same loop as the increment (bench/hist_count_floor.c).  For 17 to
 * 127 edges that fall one per bucket of an equal-width grid of 256 buckets,
 * the bin of every value is computed in vector registers:
 *
 *   w = (int)min(max(fma(x, s, c), 0), FD_QT_TOP)   (c = 128.5 - e_0 * s)
 *
 * bucket w >> 7, fraction q = w & 127.  A table of 256 16-bit entries holds,
 * per bucket, the number of edges in the buckets below (the bin of its values
 * below its edge) and the fraction of its edge (255 without one).  w is a
 * monotone function of x (each operation rounds monotonically), so a value of
 * the bucket of edge e_k is above it if q > q(e_k) and below if q < q(e_k);
 * only q == q(e_k) (about 1 value in 250 on 100 normal quantiles) needs the
 * compare with the edge itself (qt_ties_avx512).  Bucket 0 holds what is
 * below e_0 (e_0 itself is at w = 128 whatever e_0 * s rounds to), -inf and NaN (counted apart, as on the
 * body); the top bucket what is above the last edge, +inf included.  qt_build
 * checks, with this very arithmetic, that the edges fall one per bucket in
 * buckets 1..254; other edges take the body.  The table is looked up with
 * 16-bit permutes of 32 values at a time, which only AVX-512 has; AVX2
 * looks up a table cut into 16-entry pieces by byte shuffles (qtrun_avx2,
 * below). */
#define FD_QT_BUCKETS 256
#define FD_QT_MAX_BINS 128
#define FD_QT_TOP 32767.5            /* w <= 2^15 - 1: bucket <= 255 */
#define FD_QT_BLOCK 128              /* values whose bins are computed before they are counted */
#define FD_QT2_BLOCK 512             /* the same for qtrun_avx2 (below) */
#define FD_QT_WAYS 8
#define FD_QT_MIN_LEN 4096           /* values in a call for the table set-up to pay */
#define FD_QT_MAX_TIES 16            /* the body after 4,096 values if more than 1 in this many tied */

typedef struct qt_ctx {
    double s, cw;       /* the grid's scale and offset (qt_build, qt2_build) */
    const double *e;
    int64_t nan;
    int64_t seen, ties;     /* values counted and tied so far */
    /* The body and its arguments, for the rest of the column once ties are
     * frequent (values on the edges: each tied lane costs a gather). */
    hist_fn body;
    const hctx *h;
    int mode;
    int64_t *counts, n_bins, *n_null, *n_nan;
    uint16_t t[FD_QT_BUCKETS];
    int64_t c[FD_QT_WAYS][FD_QT_MAX_BINS];
    /* The AVX2 table (qt2_build): per octet of buckets, the edges below it
     * and the mask of its buckets holding an edge; per edge, its fraction
     * (^ 0x80, for signed byte compares), as XOR deltas of 16-entry rows. */
    uint8_t base8[32], mask8[32], fe8[FD_QT_MAX_BINS];
    int rows;           /* the 16-entry rows of fe8 in use: ceil(edges / 16) */
} qt_ctx;

static inline int32_t qt_w(const qt_ctx *q, double x)
{
    double v = fma(x, q->s, q->cw);
    v = v > 0.0 ? v : 0.0;
    v = v < FD_QT_TOP ? v : FD_QT_TOP;
    return (int32_t)v;
}

/* 1 if the edges fall one per bucket in buckets 1..254 (see above). */
static int qt_build(qt_ctx *q, const double *e, int64_t ne)
{
    const double span = e[ne - 1] - e[0];
    if (ne + 1 > FD_QT_MAX_BINS || !(span > 0.0 && span <= DBL_MAX))
        return 0;
    q->s = 128.0 * (FD_QT_BUCKETS - 3) / span;
    q->cw = 128.5 - e[0] * q->s;
    if (!(q->s <= DBL_MAX && q->cw >= -DBL_MAX && q->cw <= DBL_MAX))
        return 0;
    q->e = e;
    q->nan = 0;
    q->seen = 0;
    q->ties = 0;
    int32_t wk[FD_QT_MAX_BINS];
    for (int64_t k = 0; k < ne; ++k) {
        wk[k] = qt_w(q, e[k]);
        if ((wk[k] >> 7) < 1 || (wk[k] >> 7) > FD_QT_BUCKETS - 2 || (k > 0 && (wk[k] >> 7) <= (wk[k - 1] >> 7)))
            return 0;
    }
    int64_t k = 0;
    for (int32_t j = 0; j < FD_QT_BUCKETS; ++j) {
        while (k < ne && (wk[k] >> 7) < j)
            ++k;
        q->t[j] = (uint16_t)((k << 8) | (k < ne && (wk[k] >> 7) == j ? (wk[k] & 127) : 255));
    }
    memset(q->c, 0, sizeof q->c);
    return 1;
}

/* bin[0:n] into the count tables, round-robin: qt_count for the AVX-512
 * table's 16-bit bins, qt_count8 for the AVX2 table's bytes.  Pairs of bins
 * counted into a pair table, as equal widths are (the cells made from the
 * bytes by vpmaddubsw as each block's bins were stored, half the
 * increments), measured slower on 100 normal quantiles: 0.82-0.86 against
 * 0.62-0.64 ns a value (AVX-512 path, builds alternating; 0.53-0.54 with the
 * increments left out: the increments of a 20 KiB table of random cells
 * took twice their cost alone), 8-bit cells (10 KiB, an overflow adding 256
 * to both bins) 0.66-0.73 against 0.65-0.69; faster only with small tables,
 * 30 and 50 bins on the AVX2 path (0.58-0.63 against 0.63-0.69). */
#define DEF_QT_COUNT(NAME, T)                                                 \
static inline __attribute__((always_inline)) void NAME(qt_ctx *q, const T *bin, int64_t n) \
{                                                                             \
    int64_t k = 0;                                                            \
    for (; k + FD_QT_WAYS <= n; k += FD_QT_WAYS)                              \
        for (int w = 0; w < FD_QT_WAYS; ++w)                                  \
            q->c[w][bin[k + w]]++;                                            \
    for (; k < n; ++k)                                                        \
        q->c[0][bin[k]]++;                                                    \
}
DEF_QT_COUNT(qt_count, uint16_t)
DEF_QT_COUNT(qt_count8, uint8_t)

FD_TARGET_AVX512 static inline __attribute__((always_inline))
__m256i qt_w8_avx512(const qt_ctx *q, const double *p, __m512i *nacc)
{
    const __m512d x = _mm512_loadu_pd(p);
    __m512d v = _mm512_fmadd_pd(x, _mm512_set1_pd(q->s), _mm512_set1_pd(q->cw));
    v = _mm512_max_pd(v, _mm512_setzero_pd());
    v = _mm512_min_pd(v, _mm512_set1_pd(FD_QT_TOP));
    *nacc = _mm512_mask_add_epi64(*nacc, _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), *nacc, _mm512_set1_epi64(1));
    return _mm512_cvttpd_epi32(v);
}

/* The bins of 32 values (16-bit lanes) from their w; *tie: the lanes whose
 * fraction equals their bucket's edge's. */
FD_TARGET_AVX512 static inline __attribute__((always_inline))
__m512i qt_bins32_avx512(const __m512i *tv, __m512i w, __mmask32 *tie)
{
    const __m512i j = _mm512_srli_epi16(w, 7);
    const __m512i f = _mm512_and_si512(w, _mm512_set1_epi16(127));
    const __m512i a = _mm512_permutex2var_epi16(tv[0], j, tv[1]);
    const __m512i b = _mm512_permutex2var_epi16(tv[2], j, tv[3]);
    const __m512i c = _mm512_permutex2var_epi16(tv[4], j, tv[5]);
    const __m512i d = _mm512_permutex2var_epi16(tv[6], j, tv[7]);
    const __mmask32 m6 = _mm512_test_epi16_mask(j, _mm512_set1_epi16(64));
    const __mmask32 m7 = _mm512_test_epi16_mask(j, _mm512_set1_epi16(128));
    const __m512i t = _mm512_mask_blend_epi16(m7, _mm512_mask_blend_epi16(m6, a, b),
                                              _mm512_mask_blend_epi16(m6, c, d));
    const __m512i fe = _mm512_and_si512(t, _mm512_set1_epi16(255));
    const __m512i bin = _mm512_srli_epi16(t, 8);
    *tie = _mm512_cmpeq_epi16_mask(f, fe);
    return _mm512_mask_add_epi16(bin, _mm512_cmpgt_epi16_mask(f, fe), bin, _mm512_set1_epi16(1));
}

/* The tied lanes t of the bins of the 32 values at p, moved up one where the
 * value is at or above its bucket's edge (e[bin], gathered).  Not rare on
 * data with many values on the edges (integers, say), hence no per-lane loop. */
FD_TARGET_AVX512 static __attribute__((noinline))
__m512i qt_ties_avx512(const double *e, const double *p, __m512i bv, __mmask32 t)
{
    __mmask32 up = 0;
    for (int g = 0; g < 4; ++g) {
        const __mmask8 m = (__mmask8)(t >> (8 * g));
        if (m == 0)
            continue;
        const __m256i b32 = _mm256_cvtepu16_epi32(_mm512_extracti32x4_epi32(bv, g));
        const __m512d ev = _mm512_mask_i32gather_pd(_mm512_setzero_pd(), m, b32, e, 8);
        up |= (__mmask32)_mm512_mask_cmp_pd_mask(m, _mm512_loadu_pd(p + 8 * g), ev, _CMP_GE_OQ) << (8 * g);
    }
    return _mm512_mask_add_epi16(bv, up, bv, _mm512_set1_epi16(1));
}

FD_TARGET_AVX512 static void qtrun_avx512(const double *p, int64_t n, void *ctx)
{
    qt_ctx *q = (qt_ctx *)ctx;
    if (q->seen >= FD_QT_MIN_LEN && q->ties * FD_QT_MAX_TIES > q->seen) {
        q->body(p, 0, 0, n, q->h, q->mode, q->counts, q->n_bins, q->n_null, q->n_nan);
        return;
    }
    __m512i tv[8];
    for (int r = 0; r < 8; ++r)
        tv[r] = _mm512_loadu_si512((const void *)(q->t + 32 * r));
    __m512i nacc = _mm512_setzero_si512();
    /* A block counted while the next one's bins are computed, as in
     * qtrun_avx2_body (bench/hist_count_floor.c, 100 normal quantiles:
     * 0.62-0.69 against 0.70-0.76 ns a value, qtp and qt in turn). */
    uint16_t bin[2][FD_QT_BLOCK];
    int64_t pend = 0;   /* bins of bin[cur ^ 1] not counted yet (0 or FD_QT_BLOCK) */
    int cur = 0;
    for (int64_t i0 = 0; i0 < n; i0 += FD_QT_BLOCK) {
        const int64_t m = n - i0 < FD_QT_BLOCK ? n - i0 : FD_QT_BLOCK;   /* a multiple of 16 */
        const double *b0 = p + i0;
        uint16_t *bc = bin[cur];
        const uint16_t *bp = bin[cur ^ 1];
        int64_t done = 0;
        for (int64_t i = 0; i < m; i += 32) {
            const __m512i w01 = _mm512_inserti64x4(_mm512_castsi256_si512(qt_w8_avx512(q, b0 + i, &nacc)),
                                                   qt_w8_avx512(q, b0 + i + 8, &nacc), 1);
            /* A block's last 16 values: zeros beside them (bucket 0, no tie), not stored. */
            const __m512i w23 = i + 16 < m
                ? _mm512_inserti64x4(_mm512_castsi256_si512(qt_w8_avx512(q, b0 + i + 16, &nacc)),
                                     qt_w8_avx512(q, b0 + i + 24, &nacc), 1)
                : _mm512_setzero_si512();
            const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(w01)),
                                                 _mm512_cvtepi32_epi16(w23), 1);
            __mmask32 t;
            __m512i bv = qt_bins32_avx512(tv, w, &t);
            if (t) {
                q->ties += __builtin_popcount(t);
                bv = qt_ties_avx512(q->e, b0 + i, bv, t);
            }
            if (i + 16 < m)
                _mm512_storeu_si512((void *)(bc + i), bv);
            else
                _mm256_storeu_si256((__m256i *)(void *)(bc + i), _mm512_castsi512_si256(bv));
            if (i + 32 <= pend) {
                qt_count(q, bp + i, 32);
                done = i + 32;
            }
        }
        qt_count(q, bp + done, pend - done);
        pend = m;
        cur ^= 1;
        q->seen += m;
        if (q->seen >= FD_QT_MIN_LEN && q->ties * FD_QT_MAX_TIES > q->seen && i0 + m < n) {
            q->body(p + i0 + m, 0, 0, n - i0 - m, q->h, q->mode, q->counts, q->n_bins, q->n_null, q->n_nan);
            break;
        }
    }
    qt_count(q, bin[cur ^ 1], pend);
    q->nan += _mm512_reduce_add_epi64(nacc);
}

/* ---- the bucket table on AVX2 ---------------------------------------------
 * AVX2 has no 16-bit permute across 256 entries, only byte shuffles of 16
 * entries (vpshufb), so the table is split in pieces that 16-entry lookups
 * can serve.  The grid has 16-bit w (the same 256 buckets, an 8-bit fraction):
 *
 *   w = (int)min(fma(x, s, cw), FD_QT2_TOP)   (s = 253 * 256 / span, cw = 256.5 - e_0 * s)
 *
 * monotone in x (each operation rounds monotonically, the multiply-add once;
 * a negative or NaN w saturates to 0 in the pack to 16 bits, as the scalar
 * clamp at 0 does; NaN is counted apart, read from the multiply-adds, and
 * subtracted from bin 0).  The
 * multiply-add measured 0.73 against 0.78 ns a value for a multiply and an
 * add (100 normal quantiles, AVX-512 path).  qt2_build computes the
 * edges' w with these very operations.  Bucket j = w >> 8 (one edge at
 * most, in buckets 1..254), fraction f = w & 255.  For 32 values at a time,
 * in bytes:
 *
 *   - octet o = j >> 3: the edges below it (base8) and the mask of its 8
 *     buckets that hold an edge (mask8), two 32-entry lookups (two shuffles
 *     and a blend on bit 4 of o each);
 *   - b = base8[o] + popcount(mask8[o] & (bit(j & 7) - 1)), the edges in the
 *     buckets below j (popcount by two nibble shuffles);
 *   - if bucket j holds an edge (mask8[o] & bit(j & 7)), it is edge b: its
 *     fraction fe8[b] by a shuffle of 16 entries per row of 16 edges (row r
 *     of the XOR deltas answers where b - 16 r is in 0..15, zero where
 *     negative; the loop is built for the rows in use), and the bin
 *     is b + (f > fe8[b]), or the exact compare with e_b where f == fe8[b]
 *     (about 1 value in 500 on 100 normal quantiles).
 *
 * Counted as on AVX-512: bins stored a block ahead, 8 count tables, the
 * body for the rest of the column once more than 1 value in 16 ties.  The
 * lookup takes about 50 vector operations per 32 values; a 256-entry bin and
 * fraction table read through the high nibble (16 shuffles each) took 75
 * and ran 0.73-0.78 ns a value against 0.58-0.65 (bench/hist_qt_avx2.c). */
#define FD_QT2_TOP 65535.5

static inline int32_t qt2_w(const qt_ctx *q, double x)
{
    double v = fma(x, q->s, q->cw);
    v = v > 0.0 ? v : 0.0;
    v = v < FD_QT2_TOP ? v : FD_QT2_TOP;
    return (int32_t)v;
}

/* 1 if the edges fall one per bucket in buckets 1..254 of the 16-bit grid. */
static int qt2_build(qt_ctx *q, const double *e, int64_t ne)
{
    const double span = e[ne - 1] - e[0];
    if (ne + 1 > FD_QT_MAX_BINS || !(span > 0.0 && span <= DBL_MAX))
        return 0;
    q->s = 256.0 * (FD_QT_BUCKETS - 3) / span;   /* the last edge near w = 254 * 256 */
    /* 256.5: e_0's w stays in bucket 1 whatever e_0 * s rounds to. */
    q->cw = 256.5 - e[0] * q->s;
    if (!(q->s <= DBL_MAX && q->cw >= -DBL_MAX && q->cw <= DBL_MAX))
        return 0;
    q->e = e;
    q->nan = 0;
    q->seen = 0;
    q->ties = 0;
    memset(q->mask8, 0, sizeof q->mask8);
    memset(q->fe8, 0, sizeof q->fe8);
    int32_t prev = 0;
    for (int64_t k = 0; k < ne; ++k) {
        const int32_t w = qt2_w(q, e[k]), j = w >> 8;
        if (j < 1 || j > FD_QT_BUCKETS - 2 || j <= prev)
            return 0;
        prev = j;
        q->mask8[j >> 3] |= (uint8_t)(1u << (j & 7));
        q->fe8[k] = (uint8_t)((w & 255) ^ 0x80);
    }
    q->rows = (int)((ne + 15) / 16);
    int b = 0;
    for (int o = 0; o < 32; ++o) {
        q->base8[o] = (uint8_t)b;
        b += __builtin_popcount(q->mask8[o]);
    }
    memset(q->c, 0, sizeof q->c);
    return 1;
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m256i qt2_row(const uint8_t *t)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)t);
    return _mm256_set_m128i(v, v);
}

/* The table in registers. */
typedef struct qt2_regs {
    __m256d s, c;
    __m256i bl, bh, ml, mh, bit, pop, fd[8];
} qt2_regs;

/* w of 4 values from their multiply-add v (int32; NaN and below 0 negative, see above). */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
__m128i qt2_w4_avx2(__m256d v)
{
    /* MINPD returns its second operand when one is NaN: NaN stays NaN and
     * converts to INT32_MIN. */
    return _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_set1_pd(FD_QT2_TOP), v));
}

FD_TARGET_AVX2 static __attribute__((noinline))
void qt2_ties(const double *e, const double *p, uint8_t *bin, unsigned t)
{
    while (t) {
        const int k = __builtin_ctz(t);
        t &= t - 1;
        const double x = p[k];
        bin[k] = (uint8_t)(bin[k] + ((x > DBL_MAX ? DBL_MAX : x) >= e[bin[k]]));
    }
}

/* The bins of the 32 values at x (FULL) or of the 16 there (w = 0 beside
 * them: bucket 0, no tie; not stored) into bin; *nn: NaN seen; returns the
 * lanes tied with their bucket's edge. */
FD_TARGET_AVX2 static inline __attribute__((always_inline))
unsigned qt2_bins32(const qt2_regs *r, const double *x, uint8_t *bin, __m256d *nn, const int FULL,
                    const int ROWS)
{
    /* Value 4 g + l lands at byte 4 g + l after the packs (lanes: values 0-15, 16-31). */
    __m256d v[8];
    for (int k = 0; k < (FULL ? 8 : 4); ++k)
        v[k] = _mm256_fmadd_pd(_mm256_loadu_pd(x + 4 * k), r->s, r->c);
    /* NaN from the multiply-adds (NaN only where x is NaN: s and c are finite). */
    *nn = _mm256_or_pd(*nn, _mm256_cmp_pd(v[0], v[1], _CMP_UNORD_Q));
    *nn = _mm256_or_pd(*nn, _mm256_cmp_pd(v[2], v[3], _CMP_UNORD_Q));
    if (FULL) {
        *nn = _mm256_or_pd(*nn, _mm256_cmp_pd(v[4], v[5], _CMP_UNORD_Q));
        *nn = _mm256_or_pd(*nn, _mm256_cmp_pd(v[6], v[7], _CMP_UNORD_Q));
    }
    const __m128i z4 = _mm_setzero_si128();
    const __m256i a = _mm256_set_m128i(FULL ? qt2_w4_avx2(v[4]) : z4, qt2_w4_avx2(v[0]));
    const __m256i b = _mm256_set_m128i(FULL ? qt2_w4_avx2(v[5]) : z4, qt2_w4_avx2(v[1]));
    const __m256i c = _mm256_set_m128i(FULL ? qt2_w4_avx2(v[6]) : z4, qt2_w4_avx2(v[2]));
    const __m256i d = _mm256_set_m128i(FULL ? qt2_w4_avx2(v[7]) : z4, qt2_w4_avx2(v[3]));
    const __m256i z = _mm256_setzero_si256(), cff = _mm256_set1_epi16(255);
    const __m256i w0 = _mm256_packus_epi32(a, b), w1 = _mm256_packus_epi32(c, d);
    const __m256i j = _mm256_packus_epi16(_mm256_srli_epi16(w0, 8), _mm256_srli_epi16(w1, 8));
    const __m256i f = _mm256_xor_si256(_mm256_packus_epi16(_mm256_and_si256(w0, cff), _mm256_and_si256(w1, cff)),
                                       _mm256_set1_epi8((char)0x80));
    const __m256i o = _mm256_and_si256(_mm256_srli_epi16(j, 3), _mm256_set1_epi8(0x1F));
    const __m256i base = _mm256_blendv_epi8(_mm256_shuffle_epi8(r->bl, o), _mm256_shuffle_epi8(r->bh, o), j);
    const __m256i mk = _mm256_blendv_epi8(_mm256_shuffle_epi8(r->ml, o), _mm256_shuffle_epi8(r->mh, o), j);
    const __m256i bj = _mm256_shuffle_epi8(r->bit, _mm256_and_si256(j, _mm256_set1_epi8(7)));
    const __m256i below = _mm256_and_si256(mk, _mm256_sub_epi8(bj, _mm256_set1_epi8(1)));
    const __m256i c15 = _mm256_set1_epi8(15);
    const __m256i bn = _mm256_add_epi8(base, _mm256_add_epi8(
        _mm256_shuffle_epi8(r->pop, _mm256_and_si256(below, c15)),
        _mm256_shuffle_epi8(r->pop, _mm256_and_si256(_mm256_srli_epi16(below, 4), c15))));
    const __m256i noedge = _mm256_cmpeq_epi8(_mm256_and_si256(mk, bj), z);
    __m256i fe = z, ix = bn;
    for (int k = 0; k < ROWS; ++k) {
        fe = _mm256_xor_si256(fe, _mm256_shuffle_epi8(r->fd[k], ix));
        ix = _mm256_sub_epi8(ix, _mm256_set1_epi8(16));
    }
    const __m256i bv = _mm256_sub_epi8(bn, _mm256_andnot_si256(noedge, _mm256_cmpgt_epi8(f, fe)));
    if (FULL)
        _mm256_storeu_si256((__m256i *)(void *)bin, bv);
    else
        _mm_storeu_si128((__m128i *)(void *)bin, _mm256_castsi256_si128(bv));
    const unsigned t = (unsigned)_mm256_movemask_epi8(_mm256_andnot_si256(noedge, _mm256_cmpeq_epi8(f, fe)));
    return FULL ? t : t & 0xFFFFu;
}

FD_TARGET_AVX2 static inline __attribute__((always_inline))
void qtrun_avx2_body(const double *p, int64_t n, void *ctx, const int64_t BLOCK, const int PREFETCH,
                     const int ROWS)
{
    qt_ctx *q = (qt_ctx *)ctx;
    if (q->seen >= FD_QT_MIN_LEN && q->ties * FD_QT_MAX_TIES > q->seen) {
        q->body(p, 0, 0, n, q->h, q->mode, q->counts, q->n_bins, q->n_null, q->n_nan);
        return;
    }
    static const uint8_t bits[16] = {1, 2, 4, 8, 16, 32, 64, 128};
    static const uint8_t pop4[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};
    qt2_regs r;
    r.s = _mm256_set1_pd(q->s);
    r.c = _mm256_set1_pd(q->cw);
    r.bl = qt2_row(q->base8);
    r.bh = qt2_row(q->base8 + 16);
    r.ml = qt2_row(q->mask8);
    r.mh = qt2_row(q->mask8 + 16);
    r.bit = qt2_row(bits);
    r.pop = qt2_row(pop4);
    for (int k = 0; k < ROWS; ++k) {
        uint8_t d[16];
        for (int l = 0; l < 16; ++l)
            d[l] = (uint8_t)(q->fe8[16 * k + l] ^ (k ? q->fe8[16 * (k - 1) + l] : 0));
        r.fd[k] = qt2_row(d);
    }
    /* A block's bins are counted while the next block's are computed (in
     * turn, the two loops took 0.75-0.84 against 0.70-0.72 ns a value,
     * bench/hist_qt_avx2.c's octet and octet-pipe): the lookups' vector
     * work and the increments then share the out-of-order window.  BLOCK
     * values a block (at most FD_QT2_BLOCK). */
    uint8_t bin[2][FD_QT2_BLOCK];
    int64_t pend = 0;   /* bins of bin[cur ^ 1] not counted yet (0 or BLOCK) */
    int cur = 0;
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        const int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;   /* a multiple of 16 */
        const double *b0 = p + i0;
        uint8_t *bc = bin[cur];
        const uint8_t *bp = bin[cur ^ 1];
        __m256d nn = _mm256_setzero_pd();
        int64_t i = 0, done = 0;
        /* The tied lanes of each 32 values, settled after the block's loop
         * (before its bins are counted, a block later): a branch on them in
         * the loop, taken for 1 group in 8 on 100 normal quantiles, cost
         * 2 % (4-6 % with the values in L3, bench/hist_ab.c). */
        unsigned tied[FD_QT2_BLOCK / 32];
        unsigned any = 0;
        for (; i + 32 <= m; i += 32) {
            const unsigned t = qt2_bins32(&r, b0 + i, bc + i, &nn, 1, ROWS);
            tied[i / 32] = t;
            any |= t;
            if (PREFETCH) {   /* the 4 lines of the values 2 KiB ahead (see below) */
                FD_PREFETCH(b0 + i + 128);
                FD_PREFETCH(b0 + i + 136);
                FD_PREFETCH(b0 + i + 144);
                FD_PREFETCH(b0 + i + 152);
            }
            if (i + 32 <= pend) {
                qt_count8(q, bp + i, 32);
                done = i + 32;
            }
        }
        if (any)
            for (int64_t g = 0; g < i / 32; ++g)
                if (tied[g]) {
                    q->ties += __builtin_popcount(tied[g]);
                    qt2_ties(q->e, b0 + 32 * g, bc + 32 * g, tied[g]);
                }
        if (i < m) {
            const unsigned t = qt2_bins32(&r, b0 + i, bc + i, &nn, 0, ROWS);
            if (t) {
                q->ties += __builtin_popcount(t);
                qt2_ties(q->e, b0 + i, bc + i, t);
            }
        }
        qt_count8(q, bp + done, pend - done);
        if (_mm256_movemask_pd(nn))
            for (int64_t k = 0; k < m; ++k)
                q->nan += b0[k] != b0[k];
        pend = m;
        cur ^= 1;
        q->seen += m;
        if (q->seen >= FD_QT_MIN_LEN && q->ties * FD_QT_MAX_TIES > q->seen && i0 + m < n) {
            q->body(p + i0 + m, 0, 0, n - i0 - m, q->h, q->mode, q->counts, q->n_bins, q->n_null, q->n_nan);
            break;
        }
    }
    qt_count8(q, bin[cur ^ 1], pend);
}

/* The loop built for the rows of fe8 the edges use (2 to 8: 17 to 127 edges
 * take the table): 99 edges (7 rows) against the loop of 8 rows, with the
 * NaN test on the values, on a Zen 3, 1e7 normal values (bench/hist_ab.c):
 * B/A 0.95-0.97 from memory and in L3, 0.91-0.94 with the values 16 bytes
 * past a line, as NumPy's are (the values' loads are then split). */
#define QT2_ROWS_SWITCH(rows, CALL)                                           \
    switch (rows) {                                                           \
    case 2: { enum { ROWS_ = 2 }; CALL; break; }                              \
    case 3: { enum { ROWS_ = 3 }; CALL; break; }                              \
    case 4: { enum { ROWS_ = 4 }; CALL; break; }                              \
    case 5: { enum { ROWS_ = 5 }; CALL; break; }                              \
    case 6: { enum { ROWS_ = 6 }; CALL; break; }                              \
    case 7: { enum { ROWS_ = 7 }; CALL; break; }                              \
    default: { enum { ROWS_ = 8 }; CALL; break; }                             \
    }

/* The AVX2 build counts blocks of FD_QT2_BLOCK values: against blocks of
 * FD_QT_BLOCK, 1e7 normal values, 100 quantile bins, the two builds
 * interleaved in one process (bench/hist_ab.c), on a Zen 3, 3 % faster (7-8 %
 * with the values in L3); blocks of 256 1-3 %; 4 or 16 count tables instead
 * of 8 no different.  Every line of the values is prefetched 2 KiB ahead
 * once each 32 values' bins are stored: from memory 8-11 % faster (B/A
 * 0.89-0.92, five runs; in L3 and at 24,000 values 0.98-0.99); 1 KiB ahead
 * no different, 4 KiB as 2, 6 to 12 KiB 5-11 %; placed before the bins
 * (every other line, as a first try) 17-75 % slower. */
FD_TARGET_AVX2 static void qtrun_avx2(const double *p, int64_t n, void *ctx)
{
    QT2_ROWS_SWITCH(((qt_ctx *)ctx)->rows, qtrun_avx2_body(p, n, ctx, FD_QT2_BLOCK, 1, ROWS_));
}

/* The same 256-bit loop built for the AVX-512 path: with 32 vector
 * registers the table stays in registers (the AVX2 build spills a third
 * of it to the stack and reloads it for every 32 values).  Its blocks stay
 * those it was measured with on a Zen 4, without the prefetch (measured on
 * the Zen 3 only). */
FD_TARGET_AVX512 static void qtrun_avx2x(const double *p, int64_t n, void *ctx)
{
    QT2_ROWS_SWITCH(((qt_ctx *)ctx)->rows, qtrun_avx2_body(p, n, ctx, FD_QT_BLOCK, 0, ROWS_));
}

/* 1 if counted, 0 if the edges do not fit the bucket table. */
static int hist_qt(const fd_column *col, const hctx *h, int mode, int64_t n_edges, int64_t *counts,
                   int64_t *n_null, int64_t *n_nan, run_fn run, hist_fn rest)
{
    qt_ctx q;
    if (!(run == qtrun_avx2 || run == qtrun_avx2x ? qt2_build(&q, h->e, n_edges)
                                                   : qt_build(&q, h->e, n_edges)))
        return 0;
    q.body = rest;
    q.h = h;
    q.mode = mode;
    q.counts = counts;
    q.n_bins = n_edges + 1;
    q.n_null = n_null;
    q.n_nan = n_nan;
    hist_runs_col(col, h, mode, counts, n_edges + 1, n_null, n_nan, run, &q, rest);
    for (int64_t b = 0; b <= n_edges; ++b) {
        int64_t s = 0;
        for (int w = 0; w < FD_QT_WAYS; ++w)
            s += q.c[w][b];
        counts[b] += s;
    }
    counts[0] -= q.nan;   /* NaN is in bucket 0 */
    *n_nan += q.nan;
    return 1;
}
#endif


int fd_hist_cmp32_plan(const double *edges, int64_t n_edges, float *up, int32_t *slots,
                       uint32_t *mult, int32_t *n_slots)
{
    if (edges == 0 || up == 0 || slots == 0 || mult == 0 || n_slots == 0 || n_edges < 1 ||
        n_edges > FD_HIST_CMP_EDGES)
        return FD_EINVAL;
    *n_slots = 0;
    *mult = 0;
#if FD_X86_SIMD
    cmp_ctx c;
    memset(&c, 0, sizeof c);
    c.ne = (int)n_edges;
    for (int64_t k = 0; k < n_edges; ++k)
        c.e[k] = edges[k];
    if (fd_simd() < FD_SIMD_AVX512 || !cmp32_plan(&c))
        return FD_OK;
    *n_slots = c.wide ? 64 : 32;
    *mult = c.mult;
    memcpy(up, c.eu, (size_t)n_edges * sizeof(float));
    memcpy(slots, c.slot, (size_t)*n_slots * sizeof(int32_t));
#endif
    return FD_OK;
}

int fd_hist_update(const fd_column *col, const fd_hist_index *ix,
                   int64_t *counts, int64_t *n_null, int64_t *n_nan)
{
    if (col == 0 || ix == 0 || counts == 0 || n_null == 0 || n_nan == 0)
        return FD_EINVAL;
    if (ix->edges == 0 || ix->n_edges < 1 || ix->n_edges > INT32_MAX)
        return FD_EINVAL;
    /* The pure-arithmetic guess is clamped to [1, n_edges]; it needs two
     * edges to define a width. */
    if (ix->uniform < 0 || ix->uniform > 2)
        return FD_EINVAL;
    if (ix->uniform && !(ix->n_edges >= 2 && ix->inv_width > 0.0))
        return FD_EINVAL;
    if (ix->uniform != 1 && (ix->table == 0 || ix->n_table < 1 ||
                         ix->n_table > INT32_MAX || ix->n_probe < 0 ||
                         !(ix->inv_width > 0.0)))
        return FD_EINVAL;
    /* An arith index's table has n_table / n_edges sub-buckets per edge. */
    if (ix->uniform == 2 && (ix->n_table < ix->n_edges || ix->n_table % ix->n_edges != 0))
        return FD_EINVAL;
    if (col->length < 0 || col->offset < 0)
        return FD_EINVAL;

    hist_fn fn;
    switch (col->type) {
    case FD_F64:
        fn = hist_f64;
#if FD_X86_SIMD
        {
            const int path = fd_simd();
            if (path == FD_SIMD_AVX512)
                fn = hist_f64_avx512;
            else if (path == FD_SIMD_AVX2)
                fn = hist_f64_avx2;
        }
#endif
        break;
    case FD_F32: fn = hist_f32; break;
    case FD_I8: fn = hist_i8; break;
    case FD_I16: fn = hist_i16; break;
    case FD_I32: fn = hist_i32; break;
    case FD_I64: fn = hist_i64; break;
    case FD_U8: fn = hist_u8; break;
    case FD_U16: fn = hist_u16; break;
    case FD_U32: fn = hist_u32; break;
    case FD_U64: fn = hist_u64; break;
    default: return FD_ETYPE;
    }
    if (col->length == 0)
        return FD_OK;
    if (col->values == 0)
        return FD_EINVAL;

    hctx h;
    h.e = ix->edges;
    h.table = ix->table;
    h.lo = ix->lo;
    h.inv = ix->inv_width;
    h.n_probe = ix->n_probe;
    int mode;
    /* An arith index carries a table for the scalar builds, where the
     * table lookup measured faster than the arithmetic (bench/bench_kernels.py,
     * FASTDRIFT_SIMD=scalar: 0.37x np.sum against 0.29x): n_table =
     * s * n_edges sub-buckets over the same lo with inv_width * s (s a power
     * of two, so the product is exact and the same as make_index's).  The AVX
     * builds of the float64 loop take the arithmetic. */
    int arith = ix->uniform == 2;
    /* The float64 body of an AVX build: the run paths and their leftovers
     * (other types reach them converted to double, hist_runs_col). */
    hist_fn f64body = 0;
#if FD_X86_SIMD
    {
        const int path = fd_simd();
        if (path == FD_SIMD_AVX512)
            f64body = hist_f64_avx512;
        else if (path == FD_SIMD_AVX2)
            f64body = hist_f64_avx2;
    }
    /* Which run paths a type takes: float64 all of them; float32 and the
     * integer types whose conversion vectorises, converted to double a block
     * at a time (hist_runs_col), the compare counts (at most 16 edges), which
     * no tie slows down.  On the other paths data with many values on the
     * edges (integers, or float32 holding integers) is slow: every value on an
     * edge takes the exact search of the pair count, and the bucket table
     * hands tied data back to the body a block at a time, each call setting
     * up its sub-histograms: 3.8-5.6 ns a value against 1.6-2.9 by the types'
     * own bodies (docs/performance.md). */
    const int t = col->type;
    const int runs_all = f64body != 0 && t == FD_F64;
    const int runs_cmp = runs_all || (f64body != 0 && ix->n_edges <= FD_HIST_CMP_EDGES &&
                         (t == FD_F32 || t == FD_I8 || t == FD_I16 || t == FD_I32 || t == FD_U8 ||
                          t == FD_U16));
    /* Other types take the arithmetic only where a run path will count them:
     * their own bodies are scalar code, where the table is faster. */
    arith = arith && runs_cmp;
#else
    arith = 0;
#endif
    if (arith) {
        mode = M_ARITH;
        h.bottom = -0.5;
        h.top = (double)ix->n_edges - 0.5;
    } else if (ix->uniform == 1) {
        mode = M_UNIFORM;
        h.bottom = 1.0;
        h.top = (double)ix->n_edges;
    } else {
        if (ix->uniform == 2)
            h.inv = ix->inv_width * (double)(ix->n_table / ix->n_edges);
        mode = ix->n_probe == 1 ? M_P1 : ix->n_probe == 2 ? M_P2
             : ix->n_probe == 3 ? M_P3 : M_PN;
        h.bottom = 0.0;
        h.top = (double)(ix->n_table - 1);
    }
#if FD_X86_SIMD
    if (runs_cmp) {
        const int64_t ne = ix->n_edges, nb = ne + 1;
        const int is512 = f64body == hist_f64_avx512;
        if (ne <= FD_HIST_CMP_EDGES) {
            /* Zen 4, 1e7 normal values, edges at quantiles, ns a value
             * compared in float32 / in double: 1 edge 0.27 / 0.28, 4 0.28 /
             * 0.31, 9 0.33 / 0.44, 12 0.37 / 0.70, 16 (64 slots) 0.55 / 0.94
             * (docs/performance.md). */
            hist_cmp(col, &h, mode, ne, counts, n_null, n_nan, f64body, is512);
            return FD_OK;
        }
        if (runs_all && mode != M_ARITH && nb <= FD_QT_MAX_BINS && col->length >= FD_QT_MIN_LEN) {
            /* The AVX-512 path looks 64 edges and more up with the 256-bit
             * byte shuffles, which measured faster there (Zen 4, 1e7 normal
             * values, edges at quantiles, the two loops interleaved in one
             * process, ns a value 256- / 512-bit: 40 edges 0.77 / 0.76, 50
             * 0.80 / 0.81, 63 0.81 / 0.82, 80 0.79 / 0.82, 99 0.78-0.83 /
             * 0.83-0.90, 127 0.81-0.82 / 0.89-0.92; the same order with five
             * other processes on the two cores); edges their table cannot
             * take try the 512-bit one. */
            const int narrow = !is512 || ne >= 64;
            if (hist_qt(col, &h, mode, ne, counts, n_null, n_nan,
                        !narrow ? qtrun_avx512 : is512 ? qtrun_avx2x : qtrun_avx2, f64body)
                || (is512 && narrow && hist_qt(col, &h, mode, ne, counts, n_null, n_nan,
                                               qtrun_avx512, f64body)))
                return FD_OK;
        }
        if (runs_all && mode == M_ARITH && nb <= FD_HIST_PAIR_BINS &&
            col->length >= FD_HIST_PAIR_MIN_PER_CELL * nb * nb &&
            hist_pairs(col, &h, ne, counts, n_null, n_nan, f64body))
            return FD_OK;
    }
#endif
    fn(col->values, col->validity, col->offset, col->length, &h, mode, counts,
       ix->n_edges + 1, n_null, n_nan);
    return FD_OK;
}
