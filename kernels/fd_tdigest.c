/* fd_tdigest.c -- merging t-digest (Dunning & Ertl 2019), k1 + k2 scale functions.
 *
 * Insertion appends finite values to a buffer as order-preserving 64-bit keys
 * (sign-flipped IEEE-754 bit patterns, so unsigned key order is numeric
 * order).  A full buffer is sorted and merged with the centroids in one pass.
 *
 * The sort dominates the cost, so it is not a comparison sort:
 *   1. already ascending (or descending) buffers are detected in one scan;
 *      up to 128 keys are insertion-sorted (a radix sort's fixed cost, 24 KiB
 *      of counters cleared and summed, is 150-220 ns a key at 17-24 keys,
 *      the insertion sort's 5.5; they cross at about 150 keys);
 *   2. otherwise an LSD radix sort orders the keys by 33 bits in three passes
 *      of 11-bit digits (one counting pass for all three; passes whose digit
 *      is the same for every key are skipped): the top 33 bits, or, when
 *      every key has the same top digit (a column far from zero with a small
 *      spread: timestamps, prices, 100 +- 0.01), the 33 bits below the bits
 *      every key shares (from 4,096 keys: fewer are left in short runs);
 *      when a quarter of the keys share the top two digits but not every key
 *      the top one (such a bulk and a few codes far from it, -1 for missing),
 *      the keys are first split by the top digit and each part sorted so;
 *   3. the keys are then sorted except inside runs that share the sorted
 *      bits: runs of two to 32 keys are insertion-sorted, longer runs get a
 *      second radix sort on the bits below, in digits of about log2 of the
 *      run's length, so the result is exactly sorted for any input.  The
 *      scan for those runs compares eight neighbours at a time (AVX2 /
 *      AVX-512 where the CPU has them) and notes on the way whether a run is
 *      already ascending (copies of one value are), which leaves it as it is.
 *   The sort takes 4-6 ns a key of a full buffer on data of any shape here
 *   (docs/performance.md); with the top 33 bits alone, a narrow bulk far
 *   from zero took 25-110 ns a key, its runs sorted one by one.
 *
 * Scale: a cluster may grow while it spans at most one unit of both
 *     k1(q) = d1 / (2 pi) * asin(2q - 1),               d1 = 2 delta (1 - s)
 *     k2(q) = d2 / Z(n) * log(q / (1 - q)),              d2 = 2 delta s
 *     Z(n) = max(4 log(n / d2) + 24, 4 log n),           s = FD_TD_K2_SHARE
 * (k1 keeps the body fine, k2 the tails).  The k2 limit of a cluster starting
 * at cumulative weight d is n * r / (1 + r), r = d / (n - d) * exp(Z / d2):
 * one exp per merge; k1 costs an asin and a sin per cluster, none per value.
 * The spans add up to delta units and of two consecutive clusters one scale
 * advances by more than a unit: at most 2 delta + 8 centroids.
 *
 * Ties.  A "pure" cluster holds copies of one value only, so it is exact at
 * any weight; it is written as (x, 1), (x, w - 2), (x, 1) (two weight-one
 * centroids when w = 2), which anchors both ends of its rank span (the
 * quantile is flat at x across the tie block) and lets the next merge
 * recognise it as pure (c_pure).  Each merge (flush or digest merge) tries
 * the strictest clustering first and falls back, from the same untouched
 * inputs, when the result would not fit the capacity (b.overflow):
 *   3  exact: one pure cluster per distinct value (no limits at all);
 *   2  scale limits, but a pure cluster takes every copy of its value;
 *   1  as 2, but only the pure clusters that outgrew their limit are
 *      written as triples;
 *   0  the plain clustering above (the proven 2 delta + 8 bound).
 * Continuous data has no pure cluster of weight two or more: level 3 stops
 * after cap values and level 2 is then level 0 at the cost of a few tests.
 * No level keeps runs of copies apart from other values: that spends the
 * centroids on short runs and loses accuracy on integer data merged from
 * many parts.
 */
#include <math.h>
#include <string.h>

#include "fd_internal.h"

#define SIGN_BIT 0x8000000000000000ULL
#define EXP_MASK 0x7FF0000000000000ULL
#define RN (1 << FD_TD_RADIX_BITS)
#define RMASK (RN - 1)
#define INSERTION_MAX 128
#define RUN_INSERTION_MAX 32
/* fewer keys: the top 33 bits whatever the keys share (their runs are short) */
#define ADAPT_MIN 4096
#ifndef FD_TD_K2_SHARE
#define FD_TD_K2_SHARE 0.15
#endif
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static inline uint64_t d2bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline double bits2d(uint64_t b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static inline uint64_t to_key(uint64_t b)
{
    return b ^ ((uint64_t)((int64_t)b >> 63) | SIGN_BIT);
}

static inline double from_key(uint64_t k)
{
    return bits2d(k ^ (((k >> 63) - 1) | SIGN_BIT));
}

/* ---- sorting ------------------------------------------------------------ */

/* Count the npass digits of `bits` bits (the last one may be narrower: the
 * key simply has no bits there) of a[0:n] starting at bit `shift0` into hist
 * (npass << bits <= FD_TD_HIST_LEN counters). */
static inline __attribute__((always_inline)) void radix_count(const uint64_t *a, int64_t n, int shift0, int bits, int npass,
                            uint32_t *hist)
{
    const uint32_t rn = 1u << bits, mask = rn - 1;
    memset(hist, 0, sizeof(uint32_t) * (size_t)npass * rn);
    if (npass == 3 && bits == FD_TD_RADIX_BITS) {
        uint32_t *h0 = hist, *h1 = hist + RN, *h2 = hist + 2 * RN;
        for (int64_t i = 0; i < n; i++) {
            uint64_t k = a[i];
            h0[(k >> shift0) & RMASK]++;
            h1[(k >> (shift0 + FD_TD_RADIX_BITS)) & RMASK]++;
            h2[(k >> (shift0 + 2 * FD_TD_RADIX_BITS)) & RMASK]++;
        }
    } else {
        for (int p = 0; p < npass; p++) {
            uint32_t *h = hist + p * rn;
            int sh = shift0 + p * bits;
            for (int64_t i = 0; i < n; i++)
                h[(a[i] >> sh) & mask]++;
        }
    }
}

/* LSD radix sort of a[0:n] on the digits that radix_count counted into hist.
 * Returns the array holding the result (a or t). */
static inline __attribute__((always_inline)) uint64_t *radix_scatter(uint64_t *a, uint64_t *t, int64_t n, int shift0, int bits,
                               int npass, uint32_t *hist)
{
    const uint32_t rn = 1u << bits, mask = rn - 1;
    uint64_t *src = a, *dst = t;
    for (int p = 0; p < npass; p++) {
        uint32_t *h = hist + p * rn;
        int sh = shift0 + p * bits;
        if (h[(src[0] >> sh) & mask] == (uint32_t)n)
            continue; /* every key has this digit: the pass would be a copy */
        uint32_t sum = 0, big = 0;
        for (uint32_t d = 0; d < rn; d++) {
            uint32_t c = h[d];
            h[d] = sum;
            sum += c;
            big = c > big ? c : big;
        }
        int64_t i = 0;
        if (big <= (uint64_t)n / 16) {
            /* digits spread: four keys' digits computed ahead of their stores
             * (measured slower where most keys share a digit) */
            for (; i + 4 <= n; i += 4) {
                uint64_t k0 = src[i], k1 = src[i + 1], k2 = src[i + 2], k3 = src[i + 3];
                uint32_t d0 = (k0 >> sh) & mask, d1 = (k1 >> sh) & mask;
                uint32_t d2 = (k2 >> sh) & mask, d3 = (k3 >> sh) & mask;
                dst[h[d0]++] = k0;
                dst[h[d1]++] = k1;
                dst[h[d2]++] = k2;
                dst[h[d3]++] = k3;
            }
        }
        for (; i < n; i++) {
            uint64_t k = src[i];
            dst[h[(k >> sh) & mask]++] = k;
        }
        uint64_t *x = src;
        src = dst;
        dst = x;
    }
    return src;
}

static void insertion_sort(uint64_t *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        uint64_t k = a[i];
        int64_t j = i;
        while (j > 0 && a[j - 1] > k) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = k;
    }
}

/* The highest bit in which keys a[0:n] differ (-1 when they are equal). */
static int varying_top(const uint64_t *a, int64_t n)
{
    uint64_t d = 0;
    for (int64_t i = 1; i < n; i++)
        d |= a[i] ^ a[0];
    int top = -1;
    while (d) {
        d >>= 1;
        top++;
    }
    return top;
}

static void sort_run(uint64_t *a, uint64_t *t, int64_t n, uint32_t *hist)
{
    int64_t i = 1;
    while (i < n && a[i - 1] <= a[i])
        i++;
    if (i == n)
        return;
    if (n <= RUN_INSERTION_MAX) {
        insertion_sort(a, n);
        return;
    }
    /* digits up to the run's own highest varying bit, about as many buckets
     * a digit as keys: a short run does not clear and sum 2^11 counters a
     * digit (a column of outliers far from a narrow bulk has many runs) */
    int width = varying_top(a, n) + 1, bits = 4;
    while (bits < FD_TD_RADIX_BITS && ((int64_t)1 << bits) < n)
        bits++;
    int npass = (width + bits - 1) / bits;
    radix_count(a, n, 0, bits, npass, hist);
    uint64_t *r = radix_scatter(a, t, n, 0, bits, npass, hist);
    if (r != a)
        memcpy(a, r, sizeof(uint64_t) * (size_t)n);
}

/* ---- runs of keys sharing their top bits ----------------------------------
 * After the radix sort, r[0:n] is ordered by r >> hs.  next_pair(r, i, n, hs)
 * is the first i' >= i with r[i'] and r[i' + 1] sharing r >> hs (n - 1 when
 * there is none); run_end(r, i, n, hs, &asc), for such a pair at i, the end
 * of its run, with asc set when r[i:end] is ascending.  Every path gives the
 * same answers: they are integer compares. */
static int64_t next_pair_scalar(const uint64_t *r, int64_t i, int64_t n, int hs)
{
    while (i + 9 <= n) {
        int any = 0;
        for (int j = 0; j < 8; j++)
            any |= ((r[i + j] ^ r[i + j + 1]) >> hs) == 0;
        if (any)
            break;
        i += 8;
    }
    while (i < n - 1 && ((r[i] ^ r[i + 1]) >> hs) != 0)
        i++;
    return i;
}

static int64_t run_end_scalar(const uint64_t *r, int64_t i, int64_t n, int hs, int *asc)
{
    uint64_t h = r[i] >> hs;
    int ok = 1;
    int64_t j = i + 1;
    for (; j < n && (r[j] >> hs) == h; j++)
        ok &= r[j - 1] <= r[j];
    *asc = ok;
    return j;
}

#if FD_X86_SIMD
#include <immintrin.h>

FD_TARGET_AVX512 static int64_t next_pair_avx512(const uint64_t *r, int64_t i, int64_t n, int hs)
{
    const __m512i z = _mm512_setzero_si512();
    for (; i + 9 <= n; i += 8) {
        __m512i a = _mm512_loadu_si512((const void *)(r + i));
        __m512i b = _mm512_loadu_si512((const void *)(r + i + 1));
        __mmask8 m = _mm512_cmpeq_epu64_mask(_mm512_srli_epi64(_mm512_xor_si512(a, b), (unsigned)hs), z);
        if (m)
            return i + __builtin_ctz((unsigned)m);
    }
    return next_pair_scalar(r, i, n, hs);
}

FD_TARGET_AVX512 static int64_t run_end_avx512(const uint64_t *r, int64_t i, int64_t n, int hs, int *asc)
{
    const __m512i hv = _mm512_set1_epi64((long long)(r[i] >> hs));
    int64_t j = i + 1;
    int ok = 1;
    for (; j + 8 <= n; j += 8) {
        __m512i a = _mm512_loadu_si512((const void *)(r + j - 1));
        __m512i b = _mm512_loadu_si512((const void *)(r + j));
        unsigned ne = _mm512_cmpneq_epu64_mask(_mm512_srli_epi64(b, (unsigned)hs), hv);
        unsigned dn = _mm512_cmpgt_epu64_mask(a, b);
        if (ne) {
            /* the run ends at the first lane of another prefix */
            unsigned in = (ne & (0u - ne)) - 1u;
            *asc = ok && !(dn & in);
            return j + __builtin_ctz(ne);
        }
        ok &= dn == 0;
    }
    int tail_ok;
    j = run_end_scalar(r, j - 1, n, hs, &tail_ok);
    *asc = ok && tail_ok;
    return j;
}

FD_TARGET_AVX2 static int64_t next_pair_avx2(const uint64_t *r, int64_t i, int64_t n, int hs)
{
    const __m256i z = _mm256_setzero_si256();
    const __m128i sh = _mm_cvtsi32_si128(hs);
    for (; i + 9 <= n; i += 8) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(r + i));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(r + i + 1));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(r + i + 4));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(r + i + 5));
        __m256i e0 = _mm256_cmpeq_epi64(_mm256_srl_epi64(_mm256_xor_si256(a0, b0), sh), z);
        __m256i e1 = _mm256_cmpeq_epi64(_mm256_srl_epi64(_mm256_xor_si256(a1, b1), sh), z);
        unsigned m = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(e0))
                     | ((unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(e1)) << 4);
        if (m)
            return i + __builtin_ctz(m);
    }
    return next_pair_scalar(r, i, n, hs);
}

FD_TARGET_AVX2 static int64_t run_end_avx2(const uint64_t *r, int64_t i, int64_t n, int hs, int *asc)
{
    const __m128i sh = _mm_cvtsi32_si128(hs);
    const __m256i hv = _mm256_set1_epi64x((long long)(r[i] >> hs));
    const __m256i flip = _mm256_set1_epi64x((long long)SIGN_BIT); /* unsigned order as signed */
    int64_t j = i + 1;
    int ok = 1;
    for (; j + 4 <= n; j += 4) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(r + j - 1));
        __m256i b = _mm256_loadu_si256((const __m256i *)(r + j));
        unsigned eq = (unsigned)_mm256_movemask_pd(
            _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_srl_epi64(b, sh), hv)));
        unsigned dn = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(
            _mm256_cmpgt_epi64(_mm256_xor_si256(a, flip), _mm256_xor_si256(b, flip))));
        unsigned ne = ~eq & 0xFu;
        if (ne) {
            unsigned in = (ne & (0u - ne)) - 1u;
            *asc = ok && !(dn & in);
            return j + __builtin_ctz(ne);
        }
        ok &= dn == 0;
    }
    int tail_ok;
    j = run_end_scalar(r, j - 1, n, hs, &tail_ok);
    *asc = ok && tail_ok;
    return j;
}
#endif

static inline int64_t next_pair(int path, const uint64_t *r, int64_t i, int64_t n, int hs)
{
#if FD_X86_SIMD
    if (path == FD_SIMD_AVX512)
        return next_pair_avx512(r, i, n, hs);
    if (path == FD_SIMD_AVX2)
        return next_pair_avx2(r, i, n, hs);
#endif
    (void)path;
    return next_pair_scalar(r, i, n, hs);
}

static inline int64_t run_end(int path, const uint64_t *r, int64_t i, int64_t n, int hs, int *asc)
{
#if FD_X86_SIMD
    if (path == FD_SIMD_AVX512)
        return run_end_avx512(r, i, n, hs, asc);
    if (path == FD_SIMD_AVX2)
        return run_end_avx2(r, i, n, hs, asc);
#endif
    (void)path;
    return run_end_scalar(r, i, n, hs, asc);
}

/* Sort keys a[0:n] (t: scratch of n keys); returns the array holding the result. */
static uint64_t *sort_keys(uint64_t *a, uint64_t *t, int64_t n, uint32_t *hist)
{
    if (n < 2)
        return a;
    int64_t i = 1;
    while (i < n && a[i - 1] <= a[i])
        i++;
    if (i == n)
        return a;
    if (i == 1) {
        int64_t j = 1;
        while (j < n && a[j - 1] >= a[j])
            j++;
        if (j == n) {
            for (int64_t lo = 0, hi = n - 1; lo < hi; lo++, hi--) {
                uint64_t x = a[lo];
                a[lo] = a[hi];
                a[hi] = x;
            }
            return a;
        }
    }
    if (n <= INSERTION_MAX) {
        insertion_sort(a, n);
        return a;
    }
    /* The three digits are the top 33 bits.  When every key has the same top
     * digit (sign and exponent but its lowest bit: a column far from zero
     * with a small spread also shares leading mantissa bits), the 33 bits
     * below the bits they all share, counted again: sorted on bits every key
     * has, the keys would be left in long runs for sort_run. */
    int hs = 64 - 3 * FD_TD_RADIX_BITS;
    radix_count(a, n, hs, FD_TD_RADIX_BITS, 3, hist);
    if (n >= ADAPT_MIN) {
        uint32_t *h1 = hist + RN, *h2 = hist + 2 * RN, big1 = 0, big2 = 0;
        for (int d = 0; d < RN; d++) {
            big1 = h1[d] > big1 ? h1[d] : big1;
            big2 = h2[d] > big2 ? h2[d] : big2;
        }
        if (big2 < (uint32_t)n && big1 >= (uint32_t)(n / 4)) {
            /* A quarter of the keys share the top two digits, not every key
             * the top one (a narrow bulk and a few far values: codes such as
             * -1 for missing): the keys are split by the top digit and each
             * part sorted on its own, the bulk below the bits it shares
             * (sorted together, the bulk would be left in runs of a few
             * dozen keys). */
            uint32_t ends[RN];
            uint64_t *r = radix_scatter(a, t, n, hs + 2 * FD_TD_RADIX_BITS, FD_TD_RADIX_BITS, 1, h2);
            memcpy(ends, h2, sizeof ends); /* the parts' sorts reuse hist */
            for (int d = 0; d < RN; d++) {
                uint32_t lo = d ? ends[d - 1] : 0, hi = ends[d];
                if (hi - lo < 2)
                    continue;
                uint64_t *part = sort_keys(r + lo, (r == a ? t : a) + lo, hi - lo, hist);
                if (part != r + lo)
                    memcpy(r + lo, part, sizeof(uint64_t) * (hi - lo));
            }
            return r;
        }
        int top = big2 == (uint32_t)n ? varying_top(a, n) : 63;
        if (top < 64 - 4) {
            hs = top + 1 - 3 * FD_TD_RADIX_BITS;
            if (hs < 0)
                hs = 0;
            radix_count(a, n, hs, FD_TD_RADIX_BITS, 3, hist);
        }
    }
    uint64_t *r = radix_scatter(a, t, n, hs, FD_TD_RADIX_BITS, 3, hist);
    if (hs == 0)
        return r; /* every varying bit was a digit */
    uint64_t *o = (r == a) ? t : a;
    const int path = fd_simd();
    i = 0;
    while (i < n - 1) {
        if (((r[i] ^ r[i + 1]) >> hs) != 0) {
            i = next_pair(path, r, i, n, hs);
            if (i >= n - 1)
                break;
        }
        int asc;
        int64_t j = run_end(path, r, i, n, hs, &asc);
        if (!asc)
            sort_run(r + i, o + i, j - i, hist);
        i = j;
    }
    return r;
}

int fd_tdigest_sort(double *x, int64_t n, uint64_t *keys, uint64_t *tmp, uint32_t *hist)
{
    if (n < 0 || n > (int64_t)UINT32_MAX || (n > 0 && (!x || !keys || !tmp || !hist)))
        return FD_EINVAL;
    for (int64_t i = 0; i < n; i++) {
        uint64_t b = d2bits(x[i]);
        if ((b & EXP_MASK) == EXP_MASK && (b & 0x000FFFFFFFFFFFFFULL))
            return FD_EINVAL; /* NaN has no place in a sort */
        keys[i] = to_key(b);
    }
    uint64_t *r = sort_keys(keys, tmp, n, hist);
    for (int64_t i = 0; i < n; i++)
        x[i] = from_key(r[i]);
    return FD_OK;
}

/* ---- clustering --------------------------------------------------------- */

typedef struct builder {
    double *om, *ow;
    int64_t n, cap;
    double total;   /* weight of everything merged */
    double e;       /* exp(Z / delta2) of k2 */
    double d1;      /* delta1 of k1 */
    double done;    /* weight of the clusters emitted */
    double limit;   /* cumulative weight the current cluster may reach */
    double cw, csum, cfirst, clast;
    uint64_t ckey;  /* key of cfirst */
    int cpure;      /* every item of the current cluster is a pure item of value cfirst */
    int level;      /* tie handling, 3 (exact) .. 0 (plain): see the top of the file */
    int overflow;
} builder;

static double scale_e(double delta, double n)
{
    double z = 4.0 * log(n / delta) + 24.0;
    double z2 = 4.0 * log(n > 2.0 ? n : 2.0);
    if (z2 > z)
        z = z2;
    return exp(z / delta);
}

static inline double next_limit(const builder *b)
{
    double rest = b->total - b->done;
    if (rest <= 0.0)
        return b->total;
    double r = b->done / rest * b->e;
    double l2 = b->total * (r / (1.0 + r));
    /* k1: k = d1 / (2 pi) asin(2 q - 1), one unit further */
    double q0 = b->done / b->total;
    double k = b->d1 * (1.0 / (2.0 * M_PI)) * asin(2.0 * q0 - 1.0) + 1.0;
    if (k >= b->d1 * 0.25)
        return l2;
    double l1 = b->total * 0.5 * (sin(k * (2.0 * M_PI) / b->d1) + 1.0);
    return l1 < l2 ? l1 : l2;
}

static void b_init(builder *b, double *om, double *ow, int64_t cap, double total, double delta,
                   int level)
{
    b->om = om;
    b->ow = ow;
    b->n = 0;
    b->cap = cap;
    b->total = total;
    /* the k-span of k1 + k2 is delta: about delta centroids, at most 2 delta + 8 */
    b->e = scale_e(2.0 * delta * FD_TD_K2_SHARE, total);
    b->d1 = 2.0 * delta * (1.0 - FD_TD_K2_SHARE);
    b->done = 0.0;
    b->limit = 0.0;
    b->cw = 0.0;
    b->csum = 0.0;
    b->cfirst = b->clast = 0.0;
    b->ckey = 0;
    b->cpure = 0;
    b->level = level;
    b->overflow = 0;
}

static inline void b_put(builder *b, double m, double w)
{
    b->om[b->n] = m;
    b->ow[b->n] = w;
    b->n++;
}

/* Close the current cluster.  A pure cluster of weight >= 2 is written as a
 * pure pair or triple (see the top of the file): at levels >= 2 always, at
 * level 1 only when it outgrew its limit (which a plain centroid of that
 * weight would misrepresent). */
static inline void b_emit(builder *b)
{
    double m = b->csum / b->cw;
    /* rounding must not move a mean outside its values (keeps means sorted) */
    if (m < b->cfirst)
        m = b->cfirst;
    if (m > b->clast)
        m = b->clast;
    int parts = 1;
    if (b->cpure && b->cw >= 2.0
        && (b->level >= 2 || (b->cw >= 3.0 && b->done + b->cw > b->limit)))
        parts = b->cw >= 3.0 ? 3 : 2;
    if (b->n + parts > b->cap) {
        b->overflow = 1;
        return;
    }
    if (parts == 1) {
        b_put(b, m, b->cw);
    } else {
        b_put(b, m, 1.0);
        if (parts == 3)
            b_put(b, m, b->cw - 2.0);
        b_put(b, m, 1.0);
    }
    b->done += b->cw;
    b->limit = next_limit(b);
}

/* Add item (x, w): a raw value or a centroid, in ascending order of x.  pure:
 * the item holds only copies of x (raw values; centroids of weight one; the
 * middle of an emitted pure triple).  A pure cluster takes every further pure
 * copy of its value whatever its limit: identical values are exact at any
 * weight. */
static inline void b_add(builder *b, double x, double w, int pure)
{
    if (b->level == 3 && !pure) {
        b->overflow = 1; /* a mixed centroid: not exact */
        return;
    }
    if (b->cw > 0.0) {
        if (b->cpure && pure && x == b->cfirst) {
            b->cw += w;
            b->csum += x * w;
            return;
        }
        if (b->level == 3) {
            b_emit(b); /* one cluster per distinct value */
        } else if (b->done + b->cw + w <= b->limit) {
            b->cw += w;
            b->csum += x * w;
            b->clast = x;
            b->cpure = b->cpure && pure && x == b->cfirst;
            return;
        } else {
            b_emit(b);
        }
    }
    b->cw = w;
    b->csum = x * w;
    b->cfirst = b->clast = x;
    b->ckey = to_key(d2bits(x));
    b->cpure = b->level > 0 && pure;
}

static inline void b_finish(builder *b)
{
    if (b->cw > 0.0)
        b_emit(b);
    b->cw = 0.0;
}

/* Add sorted weight-one keys k[0:end) that are < stop_key (all when stop_key
 * is UINT64_MAX and the caller knows they are below it); returns the index of
 * the first key not taken. */
static int64_t b_add_keys(builder *b, const uint64_t *k, int64_t i, int64_t end, uint64_t stop_key,
                          int stop_inclusive)
{
    while (i < end) {
        uint64_t ki = k[i];
        if (stop_inclusive ? ki > stop_key : ki >= stop_key)
            break;
        if (b->overflow)
            return end;
        if (b->cw > 0.0) {
            if (b->cpure && ki == b->ckey) {
                /* a run of copies joins its pure cluster, limit or not */
                int64_t j = i + 1;
                while (j < end && k[j] == ki)
                    j++;
                b->cw += (double)(j - i);
                b->csum += from_key(ki) * (double)(j - i);
                i = j;
                continue;
            }
            if (b->level == 3) {
                b_emit(b); /* one cluster per distinct value */
                goto start;
            }
            double room = b->limit - b->done - b->cw;
            if (room >= 1.0) {
                int64_t take = (room < (double)(end - i)) ? (int64_t)room : end - i;
                int64_t stop = i + take;
                double s = 0.0;
                int64_t j = i;
                if (stop_inclusive) {
                    for (; j < stop && k[j] <= stop_key; j++)
                        s += from_key(k[j]);
                } else {
                    for (; j < stop && k[j] < stop_key; j++)
                        s += from_key(k[j]);
                }
                b->cw += (double)(j - i);
                b->csum += s;
                b->clast = from_key(k[j - 1]);
                b->cpure = b->cpure && k[j - 1] == b->ckey;
                i = j;
                continue;
            }
            b_emit(b);
        }
    start:;
        double x = from_key(ki);
        b->cw = 1.0;
        b->csum = x;
        b->cfirst = b->clast = x;
        b->ckey = ki;
        b->cpure = b->level > 0;
        i++;
    }
    return i;
}

/* ---- state checks ------------------------------------------------------- */

static int check_td(const fd_tdigest *td)
{
    if (!td || !td->ints || !td->flts || !td->means || !td->weights)
        return FD_EINVAL;
    if (!(td->compression >= 1.0 && td->compression <= 1e6))
        return FD_EINVAL;
    if (td->cap < 2 * (int64_t)td->compression + 8)
        return FD_EINVAL;
    const int64_t *s = td->ints;
    if (s[FD_TD_N_CENTROIDS] < 0 || s[FD_TD_N_CENTROIDS] > td->cap || s[FD_TD_N_BUF] < 0
        || s[FD_TD_N_STAGED] < 0 || s[FD_TD_N_BUF] + 2 * s[FD_TD_N_STAGED] > td->buf_cap
        || s[FD_TD_N_FINITE] < s[FD_TD_N_BUF] + s[FD_TD_N_STAGED])
        return FD_ECORRUPT;
    if ((s[FD_TD_N_BUF] > 0 || s[FD_TD_N_STAGED] > 0) && !td->buf)
        return FD_EINVAL;
    return FD_OK;
}

static int check_scratch(const fd_tdigest *td, const fd_tdigest_scratch *s)
{
    if (!s || !s->means || !s->weights || !s->hist || s->cap < td->cap)
        return FD_EINVAL;
    if (td->buf_cap > 0 && (!s->keys || s->keys_cap < td->buf_cap))
        return FD_EINVAL;
    return FD_OK;
}

static void commit(fd_tdigest *td, const builder *b)
{
    memcpy(td->means, b->om, sizeof(double) * (size_t)b->n);
    memcpy(td->weights, b->ow, sizeof(double) * (size_t)b->n);
    td->ints[FD_TD_N_CENTROIDS] = b->n;
}

/* ---- flush -------------------------------------------------------------- */

/* Staged centroids: (key of the mean, weight | STAGED_PURE) pairs at the end
 * of buf, merged into the centroids by the next flush together with the
 * buffered values.  A merge only appends the other digest's centroids here,
 * so a sequence of merges is clustered a few times in big batches instead of
 * once per merge, which would smear every cluster over its neighbours
 * (tests/test_tdigest.py bounds the error of 1,000 merged parts). */
#define STAGED_PURE SIGN_BIT

static inline uint64_t *staged(const fd_tdigest *td)
{
    return td->buf + td->buf_cap - 2 * td->ints[FD_TD_N_STAGED];
}

/* Stable sort of n (key, weight) pairs by key: natural merge sort (the pairs
 * arrive as one sorted run per merged digest); t is scratch of 2 n.  Returns
 * the array holding the result. */
static uint64_t *sort_pairs(uint64_t *a, uint64_t *t, int64_t n)
{
    uint64_t *src = a, *dst = t;
    for (;;) {
        int64_t i = 0, runs = 0;
        while (i < n) {
            int64_t j = i + 1;
            while (j < n && src[2 * (j - 1)] <= src[2 * j])
                j++;
            int64_t e = j;
            if (j < n) {
                e = j + 1;
                while (e < n && src[2 * (e - 1)] <= src[2 * e])
                    e++;
            }
            int64_t p = i, q = j, o = i;
            while (p < j && q < e) {
                int64_t from = src[2 * q] < src[2 * p] ? q++ : p++;
                dst[2 * o] = src[2 * from];
                dst[2 * o + 1] = src[2 * from + 1];
                o++;
            }
            memcpy(dst + 2 * o, src + 2 * p, sizeof(uint64_t) * 2 * (size_t)(j - p));
            o += j - p;
            memcpy(dst + 2 * o, src + 2 * q, sizeof(uint64_t) * 2 * (size_t)(e - q));
            runs++;
            i = e;
        }
        uint64_t *x = src;
        src = dst;
        dst = x;
        if (runs <= 1)
            return src;
    }
}

/* Centroid i holds only copies of its mean: weight one, or the middle of a
 * pure triple (x, 1), (x, w), (x, 1) as b_emit writes it. */
static inline int c_pure(const double *m, const double *w, int64_t n, int64_t i)
{
    if (w[i] == 1.0)
        return 1;
    return i > 0 && i + 1 < n && w[i - 1] == 1.0 && w[i + 1] == 1.0 && m[i - 1] == m[i]
           && m[i + 1] == m[i];
}

/* ---- re-clustering a centroid in pieces ----------------------------------
 * A centroid is atomic: merged whole into one cluster, while its values
 * spread over its rank span.  Merging atomic centroids is biased where cluster
 * widths change: where a value's rank among one digest's centroids is
 * uncertain by about a cluster, the wider cluster on the body side gains or
 * loses more weight than the narrower one on the tail side, so every
 * re-clustering moves values of the body into the tail clusters (a
 * drift of 1-2e-4 in rank at q = 0.001 and 0.01 after the 30 flushes of 1e6
 * values at delta 100, or 1,000 merged parts; one flush alone is within
 * 3e-5 there).  So each flush, and each merge as it stages the other digest,
 * re-clusters a centroid of weight w >= 2 as up to SPLIT_MAX pieces of
 * integer weight and values on the local straight line through its mean
 * (slope: the PCHIP slope of the secants to its neighbours' means, min or
 * max at the ends; kept between the midpoints to its neighbours' means, so
 * pieces of neighbouring centroids never overlap and the sum of the pieces
 * is the centroid's sum).  A centroid whose two secants differ by more
 * than SPLIT_RATIO is not split: there (the far tails of skewed data) the
 * straight line misplaces its values by more than the bias it removes.
 * Pure centroids (copies of one value, see "Ties") are never split. */
#define SPLIT_MAX 4
#define SPLIT_RATIO 3.0

/* Pieces (pv, pw) of centroid i of (m, w)[0:n] whose values lie in [mn, mx]:
 * at most maxp (1 <= maxp <= SPLIT_MAX); returns their number. */
static int split_centroid(const double *m, const double *w, int64_t n, int64_t i, double mn,
                          double mx, int maxp, double *pv, double *pw)
{
    double wi = w[i], mi = m[i];
    int np = wi < (double)maxp ? (int)wi : maxp;
    pv[0] = mi;
    pw[0] = wi;
    if (np < 2 || c_pure(m, w, n, i))
        return 1;
    double vl = i > 0 ? m[i - 1] : mn, vr = i + 1 < n ? m[i + 1] : mx;
    /* knot spacing: mid-rank to mid-rank (rank 0 / n - 1 for min / max) */
    double hl = i > 0 ? 0.5 * (w[i - 1] + wi) : 0.5 * (wi - 1.0);
    double hr = i + 1 < n ? 0.5 * (wi + w[i + 1]) : 0.5 * (wi - 1.0);
    double sl = (mi - vl) / hl, sr = (vr - mi) / hr;
    if (!(sl > 0.0 && sr > 0.0) || sl > SPLIT_RATIO * sr || sr > SPLIT_RATIO * sl)
        return 1;
    double a = 2.0 * hr + hl, b = hr + 2.0 * hl;
    double sd = (a + b) / (a / sl + b / sr);
    /* piece weights: floor(w / np), the first ones one more */
    double base = floor(wi / np), extra = wi - base * np;
    double d[SPLIT_MAX], start = 0.0, dm = 0.0;
    for (int k = 0; k < np; k++) {
        pw[k] = base + (k < extra ? 1.0 : 0.0);
        d[k] = start + 0.5 * (pw[k] - 1.0) - 0.5 * (wi - 1.0); /* mid-rank offset */
        dm += d[k] * pw[k];
        start += pw[k];
    }
    dm /= wi;
    for (int k = 0; k < np; k++)
        d[k] -= dm; /* weighted offsets sum to zero: the pieces keep the sum */
    double lo = i > 0 ? 0.5 * (m[i - 1] + mi) : 0.5 * (mn + mi);
    double hi = i + 1 < n ? 0.5 * (mi + m[i + 1]) : 0.5 * (mi + mx);
    if (d[np - 1] > 0.0 && mi + sd * d[np - 1] > hi)
        sd = (hi - mi) / d[np - 1];
    if (d[0] < 0.0 && mi + sd * d[0] < lo)
        sd = (lo - mi) / d[0];
    for (int k = 0; k < np; k++) {
        double v = mi + sd * d[k];
        pv[k] = v < lo ? lo : (v > hi ? hi : v);
    }
    return np;
}

/* The pieces of centroids (m, w)[0:n], in ascending order. */
typedef struct pieces {
    const double *m, *w;
    int64_t n, i;
    double mn, mx;
    int k, np, pure;
    double v[SPLIT_MAX], wt[SPLIT_MAX];
} pieces;

static void pc_load(pieces *p)
{
    p->k = 0;
    if (p->i < p->n) {
        p->np = split_centroid(p->m, p->w, p->n, p->i, p->mn, p->mx, SPLIT_MAX, p->v, p->wt);
        p->pure = p->np == 1 && c_pure(p->m, p->w, p->n, p->i);
    }
}

static void pc_init(pieces *p, const double *m, const double *w, int64_t n, double mn, double mx)
{
    p->m = m;
    p->w = w;
    p->n = n;
    p->i = 0;
    p->mn = mn;
    p->mx = mx;
    pc_load(p);
}

static inline void pc_next(pieces *p)
{
    if (++p->k == p->np) {
        p->i++;
        pc_load(p);
    }
}

/* ---- direction ------------------------------------------------------------
 * The clustering runs in one direction, and its two ends are not alike: the
 * clusters at the end it starts from sit on a grid anchored at the first
 * value (a singleton, then clusters growing by the k2 factor), those at the
 * end it finishes at on what is left.  A long tail is resolved less well at
 * the start: clustered always ascending, the rank error at q = 0.001 of a
 * long low tail (-lognormal sigma 2, delta 100, 1e6 values) is 1.1e-4 against
 * 2.7e-5 for the same tail high; alternating the direction from flush to
 * flush averages the two (6.5e-5 and 5.1e-5).  So each flush runs towards the
 * longer tail: it compares the spreads from the median to the 1 % and 99 %
 * points of what the digest holds (its centroids; before the first flush, the
 * sorted values or staged centroids) and, when the low one is longer, clusters
 * descending:
 * it mirrors its inputs (x -> -x, order reversed; exact in IEEE arithmetic,
 * and key(-x) = ~key(x)), runs the same ascending pass and mirrors the result
 * back.  Mirrored data get mirrored digests, and the direction follows from
 * the state alone, so equal states give equal bytes. */
#define TAIL_Q 0.01

/* Values at the TAIL_Q, 0.5 and 1 - TAIL_Q points of n weighted items: item i
 * has value val(i) and weight wt(i); the two tail points are found from
 * their own ends. */
#define TAIL_POINTS(n, val, wt, lo, mid, hi)                                   \
    do {                                                                       \
        double tot_ = 0.0, c_;                                                 \
        int64_t i_;                                                            \
        for (i_ = 0; i_ < (n); i_++)                                           \
            tot_ += (wt);                                                      \
        for (i_ = 0, c_ = 0.0; i_ < (n) - 1 && (c_ += (wt)) < TAIL_Q * tot_; i_++) \
            ;                                                                  \
        lo = (val);                                                            \
        for (i_ = 0, c_ = 0.0; i_ < (n) - 1 && (c_ += (wt)) < 0.5 * tot_; i_++) \
            ;                                                                  \
        mid = (val);                                                           \
        for (i_ = (n) - 1, c_ = 0.0; i_ > 0 && (c_ += (wt)) < TAIL_Q * tot_; i_--) \
            ;                                                                  \
        hi = (val);                                                            \
    } while (0)

static int flush_descending(const double *m, const double *w, int64_t na, const uint64_t *k,
                            int64_t nb, const uint64_t *st, int64_t ns)
{
    double lo, mid, hi;
    if (na > 0)
        TAIL_POINTS(na, m[i_], w[i_], lo, mid, hi);
    else if (nb > 0)
        TAIL_POINTS(nb, from_key(k[i_]), 1.0, lo, mid, hi);
    else if (ns > 0)
        TAIL_POINTS(ns, from_key(st[2 * i_]), (double)(st[2 * i_ + 1] & ~STAGED_PURE), lo, mid, hi);
    else
        return 0;
    return mid - lo > hi - mid;
}

/* Reverse n keys in place, complementing them: ascending keys of -x. */
static void mirror_keys(uint64_t *k, int64_t n)
{
    for (int64_t i = 0, j = n - 1; i <= j; i++, j--) {
        uint64_t a = ~k[i];
        k[i] = ~k[j];
        k[j] = a;
    }
}

/* Reverse n (key, weight) pairs in place, complementing the keys. */
static void mirror_pairs(uint64_t *p, int64_t n)
{
    for (int64_t i = 0, j = n - 1; i <= j; i++, j--) {
        uint64_t ka = ~p[2 * i], wa = p[2 * i + 1];
        p[2 * i] = ~p[2 * j];
        p[2 * i + 1] = p[2 * j + 1];
        p[2 * j] = ka;
        p[2 * j + 1] = wa;
    }
}

/* Reverse n centroids in place, negating the means. */
static void mirror_centroids(double *m, double *w, int64_t n)
{
    for (int64_t i = 0, j = n - 1; i <= j; i++, j--) {
        double ma = -m[i], wa = w[i];
        m[i] = -m[j];
        w[i] = w[j];
        m[j] = ma;
        w[j] = wa;
    }
}

static int flush(fd_tdigest *td, fd_tdigest_scratch *s)
{
    int64_t nb = td->ints[FD_TD_N_BUF], ns = td->ints[FD_TD_N_STAGED];
    if (nb == 0 && ns == 0)
        return FD_OK;
    uint64_t *k = sort_keys(td->buf, s->keys, nb, s->hist);
    /* nb + 2 ns <= buf_cap <= keys_cap: keys[nb:] is free whichever array holds k */
    uint64_t *st = ns > 0 ? sort_pairs(staged(td), s->keys + nb, ns) : NULL;
    int64_t na = td->ints[FD_TD_N_CENTROIDS];
    double *ma = td->means, *wa = td->weights;
    double total = (double)td->ints[FD_TD_N_FINITE];
    double lo = nb > 0 ? from_key(k[0]) : 0.0, hi = nb > 0 ? from_key(k[nb - 1]) : 0.0;
    double mn = td->flts[FD_TD_MIN], mx = td->flts[FD_TD_MAX];
    int desc = flush_descending(ma, wa, na, k, nb, st, ns);
    if (desc) {
        mirror_keys(k, nb);
        if (ns > 0)
            mirror_pairs(st, ns);
        mirror_centroids(ma, wa, na);
        double t = mn;
        mn = -mx;
        mx = -t;
    }
    builder b;
    /* strictest level first; should it not fit, the next one from the same,
     * untouched inputs (level 0 always fits: at most 2 delta + 8 centroids) */
    for (int level = 3; level >= 0; level--) {
        b_init(&b, s->means, s->weights, td->cap, total, td->compression, level);
        int64_t ib = 0, is = 0;
        pieces pc;
        pc_init(&pc, ma, wa, na, mn, mx);
        while (pc.i < na || is < ns) {
            double x, w;
            int pure;
            if (is == ns || (pc.i < na && pc.v[pc.k] <= from_key(st[2 * is]))) {
                x = pc.v[pc.k];
                w = pc.wt[pc.k];
                pure = pc.pure;
                pc_next(&pc);
            } else {
                x = from_key(st[2 * is]);
                w = (double)(st[2 * is + 1] & ~STAGED_PURE);
                pure = (st[2 * is + 1] & STAGED_PURE) != 0;
                is++;
            }
            /* buffered values strictly below the next centroid mean go first */
            ib = b_add_keys(&b, k, ib, nb, to_key(d2bits(x)), 0);
            b_add(&b, x, w, pure);
            if (b.overflow)
                break;
        }
        b_add_keys(&b, k, ib, nb, UINT64_MAX, 1);
        b_finish(&b);
        if (!b.overflow)
            break;
    }
    if (b.overflow) {
        if (desc) { /* the digest is left as it was */
            mirror_keys(k, nb);
            if (ns > 0)
                mirror_pairs(st, ns);
            mirror_centroids(ma, wa, na);
        }
        return FD_ECORRUPT;
    }
    if (desc)
        mirror_centroids(b.om, b.ow, b.n);
    commit(td, &b);
    if (nb > 0) {
        if (lo < td->flts[FD_TD_MIN])
            td->flts[FD_TD_MIN] = lo;
        if (hi > td->flts[FD_TD_MAX])
            td->flts[FD_TD_MAX] = hi;
    }
    td->ints[FD_TD_N_BUF] = 0;
    td->ints[FD_TD_N_STAGED] = 0;
    return FD_OK;
}

int fd_tdigest_flush(fd_tdigest *td, fd_tdigest_scratch *s)
{
    int rc = check_td(td);
    if (rc)
        return rc;
    if (td->ints[FD_TD_N_BUF] == 0 && td->ints[FD_TD_N_STAGED] == 0)
        return FD_OK;
    rc = check_scratch(td, s);
    if (rc)
        return rc;
    return flush(td, s);
}

/* ---- update ------------------------------------------------------------- */

/* Classify the values of chunk [i0, i0 + n) that were not buffered. */
#define TD_CLASSIFY(T, CONV)                                                    \
    for (int64_t j = 0; j < n; j++) {                                           \
        int64_t e = col->offset + i0 + j;                                       \
        if (!fd_valid(col->validity, e)) {                                      \
            c_null++;                                                           \
            continue;                                                           \
        }                                                                       \
        double x = CONV(((const T *)col->values)[e]);                           \
        if (x != x)                                                             \
            c_nan++;                                                            \
        else if (x == INFINITY)                                                 \
            c_pos++;                                                            \
        else if (x == -INFINITY)                                                \
            c_neg++;                                                            \
    }

/* Validity bits of elements e .. e + 7 (bit l: element e + l), e + 7 within the bitmap. */
static inline unsigned valid8(const uint8_t *v, int64_t e)
{
    int64_t q = e >> 3;
    int sh = (int)(e & 7);
    unsigned b = v[q];
    if (sh)
        b = (b | ((unsigned)v[q + 1] << 8)) >> sh;
    return b & 0xFFu;
}

/* Keys of the valid finite values appended at buf[w].  Blocks of eight valid
 * finite values are stored whole (a loop the compiler vectorises); a block
 * holding a null, NaN or inf is stored again with the running write index.
 * BAD: nonzero when the block at j holds a null (0 without a bitmap). */
#define TD_FILL_BLOCKS(T, CONV, BAD)                                            \
    for (; j + 8 <= n; j += 8) {                                                \
        int bad = BAD;                                                          \
        for (int l = 0; l < 8; l++) {                                           \
            uint64_t b = d2bits(CONV(src[j + l]));                              \
            buf[w + l] = to_key(b);                                             \
            bad |= (b & EXP_MASK) == EXP_MASK;                                  \
        }                                                                       \
        if (!bad) {                                                             \
            w += 8;                                                             \
            continue;                                                           \
        }                                                                       \
        for (int l = 0; l < 8; l++) {                                           \
            uint64_t b = d2bits(CONV(src[j + l]));                              \
            buf[w] = to_key(b);                                                 \
            w += fd_valid(vb, e0 + j + l) & ((b & EXP_MASK) != EXP_MASK);       \
        }                                                                       \
    }

#define TD_FILL(T, CONV)                                                        \
    {                                                                           \
        const T *src = (const T *)col->values + col->offset + i0;               \
        const uint8_t *vb = col->validity;                                      \
        const int64_t e0 = col->offset + i0;                                    \
        int64_t j = 0;                                                          \
        if (vb) {                                                               \
            TD_FILL_BLOCKS(T, CONV, valid8(vb, e0 + j) != 0xFFu)                \
        } else {                                                                \
            TD_FILL_BLOCKS(T, CONV, 0)                                          \
        }                                                                       \
        for (; j < n; j++) {                                                    \
            uint64_t b = d2bits(CONV(src[j]));                                  \
            buf[w] = to_key(b);                                                 \
            w += fd_valid(vb, e0 + j) & ((b & EXP_MASK) != EXP_MASK);           \
        }                                                                       \
        if (w - w0 != n) {                                                      \
            TD_CLASSIFY(T, CONV)                                                \
        }                                                                       \
    }

#define AS_D(v) ((double)(v))

static inline __attribute__((always_inline)) void fill_body(const fd_column *col, int64_t i0, int64_t n,
                                                            uint64_t *buf, int64_t *pw, int64_t *counts)
{
    int64_t w = *pw, w0 = w;
    int64_t c_null = 0, c_nan = 0, c_pos = 0, c_neg = 0;
    switch (col->type) {
    case FD_F64: TD_FILL(double, AS_D) break;
    case FD_F32: TD_FILL(float, AS_D) break;
    case FD_I8: TD_FILL(int8_t, AS_D) break;
    case FD_I16: TD_FILL(int16_t, AS_D) break;
    case FD_I32: TD_FILL(int32_t, AS_D) break;
    case FD_I64: TD_FILL(int64_t, AS_D) break;
    case FD_U8: TD_FILL(uint8_t, AS_D) break;
    case FD_U16: TD_FILL(uint16_t, AS_D) break;
    case FD_U32: TD_FILL(uint32_t, AS_D) break;
    case FD_U64: TD_FILL(uint64_t, AS_D) break;
    default: break;
    }
    *pw = w;
    counts[0] += c_null;
    counts[1] += c_nan;
    counts[2] += c_pos;
    counts[3] += c_neg;
}

/* Append the keys of col[i0:i0 + n) at buf[*pw]; counts: nulls, NaN, +inf, -inf.
 * One body compiled for each SIMD path: the same integer operations, so the
 * same keys. */
static void fill_scalar(const fd_column *col, int64_t i0, int64_t n, uint64_t *buf, int64_t *pw,
                        int64_t *counts)
{
    fill_body(col, i0, n, buf, pw, counts);
}

#if FD_X86_SIMD
FD_TARGET_AVX2 static void fill_avx2(const fd_column *col, int64_t i0, int64_t n, uint64_t *buf, int64_t *pw,
                                     int64_t *counts)
{
    fill_body(col, i0, n, buf, pw, counts);
}

FD_TARGET_AVX512 static void fill_avx512(const fd_column *col, int64_t i0, int64_t n, uint64_t *buf,
                                         int64_t *pw, int64_t *counts)
{
    fill_body(col, i0, n, buf, pw, counts);
}
#endif

static void fill(const fd_column *col, int64_t i0, int64_t n, uint64_t *buf, int64_t *pw,
                 int64_t *counts)
{
#if FD_X86_SIMD
    const int path = fd_simd();
    if (path == FD_SIMD_AVX512) {
        fill_avx512(col, i0, n, buf, pw, counts);
        return;
    }
    if (path == FD_SIMD_AVX2) {
        fill_avx2(col, i0, n, buf, pw, counts);
        return;
    }
#endif
    fill_scalar(col, i0, n, buf, pw, counts);
}

int fd_tdigest_update(const fd_column *col, fd_tdigest *td, fd_tdigest_scratch *s)
{
    int rc = check_td(td);
    if (rc)
        return rc;
    if (!col || col->length < 0 || col->offset < 0)
        return FD_EINVAL;
    if (col->type < FD_F64 || col->type > FD_U64)
        return FD_ETYPE;
    if (col->length == 0)
        return FD_OK;
    if (!col->values || !td->buf || td->buf_cap < 1)
        return FD_EINVAL;
    rc = check_scratch(td, s);
    if (rc)
        return rc;
    int64_t counts[4] = {0, 0, 0, 0};
    int64_t i = 0, len = col->length;
    while (i < len) {
        int64_t nb = td->ints[FD_TD_N_BUF];
        int64_t room = td->buf_cap - nb - 2 * td->ints[FD_TD_N_STAGED];
        if (room == 0) {
            rc = flush(td, s);
            if (rc)
                break;
            continue;
        }
        int64_t n = len - i < room ? len - i : room;
        int64_t w = nb;
        fill(col, i, n, td->buf, &w, counts);
        td->ints[FD_TD_N_BUF] = w;
        td->ints[FD_TD_N_FINITE] += w - nb;
        i += n;
    }
    td->ints[FD_TD_NULL] += counts[0];
    td->ints[FD_TD_NAN] += counts[1];
    td->ints[FD_TD_POSINF] += counts[2];
    td->ints[FD_TD_NEGINF] += counts[3];
    return rc;
}

/* ---- merge -------------------------------------------------------------- */

/* Stage n staged pairs in td's buf, in chunks with a flush whenever it is
 * full (buf_cap >= 2), counting their weight as they go (a later flush
 * clusters them). */
static int stage_pairs(fd_tdigest *td, fd_tdigest_scratch *s, const uint64_t *pairs, int64_t n)
{
    int64_t i = 0;
    while (i < n) {
        int64_t room = (td->buf_cap - td->ints[FD_TD_N_BUF]) / 2 - td->ints[FD_TD_N_STAGED];
        if (room <= 0) {
            int rc = flush(td, s);
            if (rc)
                return rc;
            continue;
        }
        int64_t k = n - i < room ? n - i : room;
        td->ints[FD_TD_N_STAGED] += k;
        uint64_t *st = staged(td);
        int64_t wsum = 0;
        for (int64_t j = 0; j < k; j++) {
            st[2 * j] = pairs[2 * (i + j)];
            st[2 * j + 1] = pairs[2 * (i + j) + 1];
            wsum += (int64_t)(st[2 * j + 1] & ~STAGED_PURE);
        }
        td->ints[FD_TD_N_FINITE] += wsum;
        i += k;
    }
    return FD_OK;
}

/* Stage the pieces of n centroids (m, w) with values in [mn, mx] (see
 * split_centroid) like stage_pairs: each chunk is one ascending run. */
static int stage_centroids(fd_tdigest *td, fd_tdigest_scratch *s, const double *m, const double *w,
                           int64_t n, double mn, double mx)
{
    int maxp = td->buf_cap / 2 < SPLIT_MAX ? (int)(td->buf_cap / 2) : SPLIT_MAX;
    int64_t i = 0;
    while (i < n) {
        int64_t room = (td->buf_cap - td->ints[FD_TD_N_BUF]) / 2 - td->ints[FD_TD_N_STAGED];
        if (room < maxp) {
            int rc = flush(td, s);
            if (rc)
                return rc;
            continue;
        }
        /* write ascending from the bottom of the free room, then move up to the staged pairs */
        uint64_t *top = staged(td), *dst = top - 2 * room;
        int64_t k = 0, wsum = 0;
        while (i < n && k + maxp <= room) {
            double pv[SPLIT_MAX], pw[SPLIT_MAX];
            int np = split_centroid(m, w, n, i, mn, mx, maxp, pv, pw);
            uint64_t pure = np == 1 && c_pure(m, w, n, i) ? STAGED_PURE : 0;
            for (int j = 0; j < np; j++, k++) {
                dst[2 * k] = to_key(d2bits(pv[j]));
                dst[2 * k + 1] = (uint64_t)pw[j] | pure;
            }
            wsum += (int64_t)w[i];
            i++;
        }
        memmove(top - 2 * k, dst, sizeof(uint64_t) * 2 * (size_t)k);
        td->ints[FD_TD_N_STAGED] += k;
        td->ints[FD_TD_N_FINITE] += wsum;
    }
    return FD_OK;
}

int fd_tdigest_add_clusters(fd_tdigest *td, const double *means, const double *weights,
                            const uint8_t *pure, int64_t n, double mn, double mx, fd_tdigest_scratch *s)
{
    int rc = check_td(td);
    if (rc)
        return rc;
    if (n < 0 || (n > 0 && (!means || !weights || !pure)))
        return FD_EINVAL;
    if (n == 0)
        return FD_OK;
    rc = check_scratch(td, s);
    if (rc)
        return rc;
    if (!td->buf || td->buf_cap < 2)
        return FD_EINVAL;
    if (!(FD_FINITE(mn) && FD_FINITE(mx) && mn <= means[0] && means[n - 1] <= mx))
        return FD_EINVAL;
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double w = weights[i];
        if (!FD_FINITE(means[i]) || (i > 0 && means[i] < means[i - 1]) || !(w >= 1.0 && w < 9007199254740992.0)
            || w != floor(w))
            return FD_EINVAL;
        total += w;
    }
    if (total + (double)td->ints[FD_TD_N_FINITE] >= 4611686018427387904.0) /* 2^62: the counts stay int64 */
        return FD_EINVAL;
    int64_t i = 0;
    while (i < n) {
        int64_t room = (td->buf_cap - td->ints[FD_TD_N_BUF]) / 2 - td->ints[FD_TD_N_STAGED];
        if (room <= 0) {
            rc = flush(td, s);
            if (rc)
                return rc;
            continue;
        }
        int64_t k = n - i < room ? n - i : room, wsum = 0;
        uint64_t *dst = staged(td) - 2 * k; /* one ascending run below the staged pairs */
        for (int64_t j = 0; j < k; j++) {
            dst[2 * j] = to_key(d2bits(means[i + j]));
            dst[2 * j + 1] = (uint64_t)weights[i + j] | (pure[i + j] ? STAGED_PURE : 0);
            wsum += (int64_t)weights[i + j];
        }
        td->ints[FD_TD_N_STAGED] += k;
        td->ints[FD_TD_N_FINITE] += wsum;
        i += k;
    }
    if (mn < td->flts[FD_TD_MIN])
        td->flts[FD_TD_MIN] = mn;
    if (mx > td->flts[FD_TD_MAX])
        td->flts[FD_TD_MAX] = mx;
    return FD_OK;
}

int fd_tdigest_merge(fd_tdigest *td, const fd_tdigest *other, fd_tdigest_scratch *s)
{
    int rc = check_td(td);
    if (rc)
        return rc;
    if (!other || !other->ints || !other->flts || !other->means || !other->weights)
        return FD_EINVAL;
    const int64_t *o = other->ints;
    int64_t nc = o[FD_TD_N_CENTROIDS], nob = o[FD_TD_N_BUF], nos = o[FD_TD_N_STAGED];
    if (nc < 0 || nob < 0 || nos < 0 || o[FD_TD_N_FINITE] < nob + nos
        || ((nob > 0 || nos > 0) && (!other->buf || nob + 2 * nos > other->buf_cap)))
        return FD_ECORRUPT;
    if (other == td)
        return FD_EINVAL; /* merge a copy */
    rc = check_scratch(td, s);
    if (rc)
        return rc;
    int has_buf = td->buf && td->buf_cap >= 2;
    if ((nob > 0 || nos > 0) && !has_buf)
        return FD_EINVAL;
    if (nc > 0 && has_buf) {
        /* staged: clustered with the next flush */
        rc = stage_centroids(td, s, other->means, other->weights, nc, other->flts[FD_TD_MIN],
                             other->flts[FD_TD_MAX]);
        if (rc)
            return rc;
    } else if (nc > 0) {
        /* no buffer to stage in: cluster now */
        int64_t na = td->ints[FD_TD_N_CENTROIDS];
        double wa = (double)(td->ints[FD_TD_N_FINITE] - td->ints[FD_TD_N_BUF]);
        double wb = (double)(o[FD_TD_N_FINITE] - nob - nos);
        const double *ma = td->means, *wta = td->weights, *mc = other->means, *wtc = other->weights;
        builder b;
        for (int level = 3; level >= 0; level--) {
            b_init(&b, s->means, s->weights, td->cap, wa + wb, td->compression, level);
            int64_t ia = 0, ic = 0;
            while (ia < na || ic < nc) {
                if (ic == nc || (ia < na && ma[ia] <= mc[ic])) {
                    b_add(&b, ma[ia], wta[ia], c_pure(ma, wta, na, ia));
                    ia++;
                } else {
                    b_add(&b, mc[ic], wtc[ic], c_pure(mc, wtc, nc, ic));
                    ic++;
                }
                if (b.overflow)
                    break;
            }
            b_finish(&b);
            if (!b.overflow)
                break;
        }
        if (b.overflow)
            return FD_ECORRUPT;
        commit(td, &b);
        td->ints[FD_TD_N_FINITE] += (int64_t)wb;
    }
    if (nos > 0) {
        rc = stage_pairs(td, s, other->buf + other->buf_cap - 2 * nos, nos);
        if (rc)
            return rc;
    }
    if (nc > 0 || nos > 0) {
        if (other->flts[FD_TD_MIN] < td->flts[FD_TD_MIN])
            td->flts[FD_TD_MIN] = other->flts[FD_TD_MIN];
        if (other->flts[FD_TD_MAX] > td->flts[FD_TD_MAX])
            td->flts[FD_TD_MAX] = other->flts[FD_TD_MAX];
    }
    /* the other digest's buffered values join this buffer */
    int64_t i = 0;
    while (i < nob) {
        int64_t nb = td->ints[FD_TD_N_BUF];
        int64_t room = td->buf_cap - nb - 2 * td->ints[FD_TD_N_STAGED];
        if (room == 0) {
            rc = flush(td, s);
            if (rc)
                return rc;
            continue;
        }
        int64_t n = nob - i < room ? nob - i : room;
        memcpy(td->buf + nb, other->buf + i, sizeof(uint64_t) * (size_t)n);
        td->ints[FD_TD_N_BUF] = nb + n;
        td->ints[FD_TD_N_FINITE] += n;
        i += n;
    }
    td->ints[FD_TD_NULL] += o[FD_TD_NULL];
    td->ints[FD_TD_NAN] += o[FD_TD_NAN];
    td->ints[FD_TD_POSINF] += o[FD_TD_POSINF];
    td->ints[FD_TD_NEGINF] += o[FD_TD_NEGINF];
    return FD_OK;
}

/* ---- queries ------------------------------------------------------------
 * Knots of the finite part's quantile function, in rank h in [0, W - 1]:
 * (0, min), one per centroid i at its mid-rank c_i + (w_i - 1) / 2 (c_i: the
 * weight before it), and (W - 1, max).  A weight-one centroid is exact: its
 * knot is its value at its rank, so a digest of singletons answers exactly
 * numpy's 'linear' quantiles.
 *
 * A cluster's mean is not the value at its mid-rank: for a smooth quantile
 * function x(h) it exceeds it by x'' (w^2 - 1) / 24.  The knot value is the
 * mean minus that bias, x'' taken from the second divided difference of the
 * neighbouring means, and kept between the midpoints to its neighbours' means
 * (so knots stay sorted); weight one has no bias, and a mean equal to both
 * neighbours (inside a tie block) none either.
 *
 * Between two knots the quantile is a monotone cubic (Fritsch-Butland /
 * PCHIP slopes: zero next to a flat segment, the weighted harmonic mean of
 * the neighbouring secants otherwise, the secant at the ends), which is flat
 * across ties and keeps the quantile non-decreasing; between two exact knots
 * one rank apart it is numpy's straight line.  The CDF is its inverse (a few
 * safeguarded Newton steps on the cubic), and a step between two exact knots
 * one rank apart.  Linear interpolation leaves an error of x'' h^2 / 8 in the
 * middle of each gap, which the cubic and the bias correction remove on
 * smooth data (bench/bench_tdigest.py prints the rank errors on its data
 * sets; tests/test_tdigest.py asserts bounds). */

typedef struct knots {
    double *p, *v, *d, *e; /* rank, value, slope dv/dh, exact (1.0) or not */
    int64_t n;
} knots;

/* Index of the last element of a[0:n] that is <= h (-1: none). */
static int64_t last_le(const double *a, int64_t n, double h)
{
    int64_t lo = 0, hi = n; /* first index with a > h */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] <= h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

static inline double lerp_np(double a, double b, double t)
{
    double d = b - a;
    return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

/* Build the knots of a flushed digest with nf > 0 finite values into work
 * (4 * (n_centroids + 2) doubles). */
static void build_knots(const fd_tdigest *td, double *work, knots *k)
{
    int64_t nc = td->ints[FD_TD_N_CENTROIDS];
    double nf = (double)td->ints[FD_TD_N_FINITE];
    const double *m = td->means, *w = td->weights;
    int64_t cap = nc + 2;
    double *P = work, *V = work + cap, *D = work + 2 * cap, *E = work + 3 * cap;
    /* D holds the weights until the slopes are computed */
    int64_t n = 0;
    P[0] = 0.0;
    V[0] = td->flts[FD_TD_MIN];
    D[0] = 1.0;
    E[0] = 1.0;
    n = 1;
    double c = 0.0;
    for (int64_t i = 0; i < nc; i++) {
        double pos = c + (w[i] - 1.0) * 0.5;
        c += w[i];
        if (pos <= P[n - 1]) { /* a weight-one first centroid: the minimum itself */
            V[n - 1] = m[i];
            continue;
        }
        P[n] = pos;
        V[n] = m[i];
        D[n] = w[i];
        E[n] = w[i] == 1.0;
        n++;
    }
    if (nf - 1.0 > P[n - 1]) {
        P[n] = nf - 1.0;
        V[n] = td->flts[FD_TD_MAX];
        D[n] = 1.0;
        E[n] = 1.0;
        n++;
    }
    /* mean -> value at the mid-rank */
    double prev = V[0];
    for (int64_t j = 1; j + 1 < n; j++) {
        double cur = V[j], wj = D[j];
        if (wj > 1.0) {
            double h1 = P[j] - P[j - 1], h2 = P[j + 1] - P[j];
            double s1 = (cur - prev) / h1, s2 = (V[j + 1] - cur) / h2;
            double x2 = 2.0 * (s2 - s1) / (h1 + h2);
            double v = cur - x2 * (wj * wj - 1.0) * (1.0 / 24.0);
            double lo = 0.5 * (prev + cur), hi = 0.5 * (cur + V[j + 1]);
            V[j] = v < lo ? lo : (v > hi ? hi : v);
        }
        prev = cur;
    }
    /* slopes */
    for (int64_t j = 0; j < n; j++) {
        double sl = j > 0 ? (V[j] - V[j - 1]) / (P[j] - P[j - 1]) : -1.0;
        double sr = j + 1 < n ? (V[j + 1] - V[j]) / (P[j + 1] - P[j]) : -1.0;
        if (j == 0)
            D[j] = n > 1 ? sr : 0.0;
        else if (j + 1 == n)
            D[j] = sl;
        else if (!(sl > 0.0 && sr > 0.0))
            D[j] = 0.0;
        else {
            double hl = P[j] - P[j - 1], hr = P[j + 1] - P[j];
            double a = 2.0 * hr + hl, b = hr + 2.0 * hl;
            D[j] = (a + b) / (a / sl + b / sr);
        }
    }
    k->p = P;
    k->v = V;
    k->d = D;
    k->e = E;
    k->n = n;
}

/* Segment j..j+1 is numpy's straight line / the CDF's step. */
static inline int seg_exact(const knots *k, int64_t j)
{
    return k->e[j] == 1.0 && k->e[j + 1] == 1.0 && k->p[j + 1] - k->p[j] <= 1.0;
}

/* The cubic of segment j in the unit form u(t), u(0) = 0, u(1) = 1,
 * value = lerp(v_j, v_j+1, u): u = a t + b t^2 + c t^3. */
static inline void seg_poly(const knots *k, int64_t j, double *a, double *b, double *c)
{
    double H = k->p[j + 1] - k->p[j], dv = k->v[j + 1] - k->v[j];
    double al = k->d[j] * H / dv, be = k->d[j + 1] * H / dv;
    *a = al;
    *b = 3.0 - 2.0 * al - be;
    *c = al + be - 2.0;
}

static double knots_quantile(const knots *k, double h)
{
    int64_t j = last_le(k->p, k->n, h);
    if (j < 0)
        return k->v[0];
    if (j + 1 >= k->n || h <= k->p[j])
        return k->v[j];
    double va = k->v[j], vb = k->v[j + 1];
    double t = (h - k->p[j]) / (k->p[j + 1] - k->p[j]);
    if (vb <= va)
        return va;
    if (!seg_exact(k, j)) {
        double a, b, c;
        seg_poly(k, j, &a, &b, &c);
        t = t * (a + t * (b + t * c));
        t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
    }
    return lerp_np(va, vb, t);
}

/* Rank position h (0-based) of x for min <= x < max. */
static double knots_rank(const knots *k, double x)
{
    int64_t j = last_le(k->v, k->n, x);
    if (j < 0)
        return 0.0;
    if (j + 1 >= k->n)
        return k->p[k->n - 1];
    double va = k->v[j], vb = k->v[j + 1];
    if (seg_exact(k, j) || !(vb > va))
        return k->p[j];
    double r = (x - va) / (vb - va), t = r;
    double a, b, c;
    seg_poly(k, j, &a, &b, &c);
    double lo = 0.0, hi = 1.0;
    for (int it = 0; it < 40; it++) {
        double f = t * (a + t * (b + t * c)) - r;
        if (f > 0.0)
            hi = t;
        else
            lo = t;
        if (fabs(f) <= 1e-13 || hi - lo <= 1e-13)
            break;
        double df = a + t * (2.0 * b + 3.0 * t * c);
        double tn = df > 0.0 ? t - f / df : -1.0;
        t = (tn > lo && tn < hi) ? tn : 0.5 * (lo + hi);
    }
    return k->p[j] + t * (k->p[j + 1] - k->p[j]);
}

int fd_tdigest_quantile(const fd_tdigest *td, const double *q, int64_t n, double *out,
                        double *work, int64_t *bad)
{
    int rc = check_td(td);
    if (rc)
        return rc;
    if (n < 0 || (n > 0 && (!q || !out)) || !bad || !work)
        return FD_EINVAL;
    *bad = -1;
    for (int64_t i = 0; i < n; i++) {
        if (!(q[i] >= 0.0 && q[i] <= 1.0)) {
            *bad = i;
            return FD_EINVAL;
        }
    }
    if (td->ints[FD_TD_N_BUF] != 0 || td->ints[FD_TD_N_STAGED] != 0)
        return FD_EINVAL;
    double nf = (double)td->ints[FD_TD_N_FINITE];
    double nneg = (double)td->ints[FD_TD_NEGINF], npos = (double)td->ints[FD_TD_POSINF];
    double total = nf + nneg + npos;
    knots k = {0};
    if (nf > 0.0)
        build_knots(td, work, &k);
    for (int64_t i = 0; i < n; i++) {
        if (total == 0.0) {
            out[i] = NAN;
            continue;
        }
        double h = q[i] * (total - 1.0);
        if (nneg > 0.0 && h < nneg) {
            out[i] = -INFINITY;
            continue;
        }
        if (npos > 0.0 && h > total - 1.0 - npos) {
            out[i] = INFINITY;
            continue;
        }
        double hf = h - nneg;
        if (hf > nf - 1.0)
            hf = nf - 1.0;
        if (hf < 0.0)
            hf = 0.0;
        out[i] = knots_quantile(&k, hf);
    }
    return FD_OK;
}

int fd_tdigest_cdf(const fd_tdigest *td, const double *x, int64_t n, double *out, double *work)
{
    int rc = check_td(td);
    if (rc)
        return rc;
    if (n < 0 || (n > 0 && (!x || !out)) || !work)
        return FD_EINVAL;
    if (td->ints[FD_TD_N_BUF] != 0 || td->ints[FD_TD_N_STAGED] != 0)
        return FD_EINVAL;
    double nf = (double)td->ints[FD_TD_N_FINITE];
    double nneg = (double)td->ints[FD_TD_NEGINF], npos = (double)td->ints[FD_TD_POSINF];
    double total = nf + nneg + npos;
    double mn = td->flts[FD_TD_MIN], mx = td->flts[FD_TD_MAX];
    knots k = {0};
    if (nf > 0.0)
        build_knots(td, work, &k);
    for (int64_t i = 0; i < n; i++) {
        double xi = x[i];
        if (total == 0.0 || xi != xi) {
            out[i] = NAN;
            continue;
        }
        if (xi == INFINITY) {
            out[i] = 1.0;
            continue;
        }
        double cnt;
        if (nf == 0.0 || xi < mn) {
            cnt = nneg;
        } else if (xi >= mx) {
            cnt = nneg + nf;
        } else {
            double kk = knots_rank(&k, xi) + 1.0;
            if (kk > nf)
                kk = nf;
            cnt = nneg + kk;
        }
        out[i] = cnt / total;
    }
    return FD_OK;
}

/* ---- parts: the digests of a column's segments ----------------------------
 * One call per column for a column grouped by segment (fd_seg_scatter): each
 * part goes through fd_tdigest_update on its own stretch, so every digest
 * ends as the single call would leave it.  A flushed digest keeps nothing
 * in its buffer, so while it is filled and flushed here one work buffer can
 * stand in for its own: twenty segments then sort in the same hot buffer
 * instead of twenty freshly allocated ones. */
static int parts_uses_work(const fd_tdigest *td, int32_t flags, const uint64_t *work)
{
    return (flags & FD_TD_PARTS_FLUSH) && work && td->ints[FD_TD_N_BUF] == 0 && td->ints[FD_TD_N_STAGED] == 0;
}

int fd_tdigest_update_parts(const fd_column *col, int32_t n_part, const int64_t *starts, const int64_t *lens,
                            fd_tdigest *const *tds, fd_tdigest_scratch *s, int32_t flags, uint64_t *work,
                            int64_t work_cap)
{
    if (!col || col->offset < 0 || col->length < 0 || n_part < 0 || (flags & ~FD_TD_PARTS_FLUSH)
        || (n_part > 0 && (!starts || !lens || !tds)))
        return FD_EINVAL;
    if (col->type < FD_F64 || col->type > FD_U64)
        return FD_ETYPE;
    if (work && (work_cap < 1 || !s || !s->keys || s->keys_cap < work_cap))
        return FD_EINVAL;
    for (int32_t j = 0; j < n_part; ++j) {
        if (starts[j] < 0 || lens[j] < 0 || starts[j] > col->length - lens[j] || !tds[j])
            return FD_EINVAL;
        int rc = check_td(tds[j]);
        if (rc)
            return rc;
        rc = check_scratch(tds[j], s);
        if (rc)
            return rc;
        if (lens[j] > 0 && !col->values)
            return FD_EINVAL;
        if (lens[j] > 0 && !parts_uses_work(tds[j], flags, work) && (!tds[j]->buf || tds[j]->buf_cap < 1))
            return FD_EINVAL;
    }
    for (int32_t j = 0; j < n_part; ++j) {
        fd_tdigest *td = tds[j];
        fd_column part = *col;
        part.offset = col->offset + starts[j];
        part.length = lens[j];
        uint64_t *own = td->buf;
        int64_t own_cap = td->buf_cap;
        const int borrow = parts_uses_work(td, flags, work);
        if (borrow) {
            td->buf = work;
            td->buf_cap = work_cap;
        }
        int rc = fd_tdigest_update(&part, td, s);
        if (rc == FD_OK && (flags & FD_TD_PARTS_FLUSH))
            rc = flush(td, s);
        if (borrow) {
            td->buf = own;
            td->buf_cap = own_cap;
            if (rc != FD_OK) { /* nothing may stay in the borrowed buffer */
                td->ints[FD_TD_N_FINITE] -= td->ints[FD_TD_N_BUF] + td->ints[FD_TD_N_STAGED];
                td->ints[FD_TD_N_BUF] = 0;
                td->ints[FD_TD_N_STAGED] = 0;
            }
        }
        if (rc != FD_OK)
            return rc;
    }
    return FD_OK;
}

int fd_tdigest_flush_parts(fd_tdigest *const *tds, int32_t n, fd_tdigest_scratch *s)
{
    if (n < 0 || (n > 0 && !tds))
        return FD_EINVAL;
    for (int32_t j = 0; j < n; ++j) {
        if (!tds[j])
            return FD_EINVAL;
        int rc = check_td(tds[j]);
        if (rc)
            return rc;
        if ((tds[j]->ints[FD_TD_N_BUF] != 0 || tds[j]->ints[FD_TD_N_STAGED] != 0) && (rc = check_scratch(tds[j], s)))
            return rc;
    }
    for (int32_t j = 0; j < n; ++j) {
        int rc = flush(tds[j], s);
        if (rc)
            return rc;
    }
    return FD_OK;
}
