/* fd_perf.c -- binary classification performance: rows (score, label,
 * weight) into per-class bin counts and running sums (contract in
 * fastdrift.h).
 *
 * The cost of this kernel is the log loss: a log per row is more than the
 * rest of the row together.  An unweighted block therefore multiplies the
 * rows' likelihood factors (each in [2^-52, 1], or (1, 2] for margins) into
 * eight running products, renormalised to a mantissa in [1, 2) and an integer
 * exponent every 16 factors (16 factors >= 2^-832 cannot underflow), and
 * takes eight logs at the end: sum(log f) = ln2 * exponents + sum(log
 * mantissas).  Each product step rounds once (relative 2^-53), so the sum is
 * as accurate as adding per-row logs, except for factors within 2^-17 of 1
 * (a near-certain right answer), whose digits the product would drop: their
 * log goes to a plain sum as the series of log(1 -+ q) instead.  Margins need
 * exp(-|m|) per row, computed by exp_neg below so that the loop stays
 * vectorised.  A block is first checked in a branch-free pass (scores in
 * range, labels 0/1); a block with any other row, and every weighted row,
 * takes the per-row path (libm's exp, log and log1p per row).
 */
#include <float.h>
#include <math.h>
#include "fd_internal.h"

/* The elementwise pass selects between values computed on both sides of each
 * comparison; GCC speculates those floating-point operations (and vectorises
 * the loop, 4x here) only when they are not assumed to trap.  No value
 * changes: trapping math only concerns floating-point exception flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define PERF_BLOCK 512
#define LANES 8
#define RENORM_EVERY 16                     /* factors per lane between renormalisations */
#define LOG_EPS 2.220446049250313080847e-16 /* 2^-52: log loss clips p to [eps, 1 - eps] */
#define LN2 0.693147180559945309417232121458
#define SMALL_Q 7.62939453125e-06           /* 2^-17: log(1 - q) to q^3 is then exact to 2^-53 */
/* Largest weight counted: 2^62 rows of it (the count cap) times the largest
 * per-row Brier or clipped log loss stay finite, so the sums of a state
 * always serialize (a margin's log loss is unbounded and may reach +inf). */
#define MAX_WEIGHT 18446744073709551616.0 /* 2^64 */

typedef struct perf_acc {
    double s[FD_PERF_N_SUMS];
    double prod[LANES];   /* likelihood factors of the fast blocks */
    int64_t expo;         /* their exponents */
    double lin;           /* margins: the linear part of softplus */
} perf_acc;

static inline int64_t perf_key(double t, int shift, int64_t kmax)
{
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    const int64_t ke = (int64_t)(u >> 52) - (1023 + FD_PERF_EMIN);
    const int64_t mant = (int64_t)((u >> (52 - shift)) & (((uint64_t)1 << shift) - 1));
    const int64_t k = ke < 0 ? 0 : (ke << shift) + mant; /* below 2^EMIN: key 0 */
    return k < kmax ? k : kmax;
}

static inline int64_t perf_bin(double x, int margin, int shift, int64_t K)
{
    if (margin) {
        const int64_t k = perf_key(fabs(x), shift, K - 1);
        return x < 0.0 ? K - 1 - k : K + k;
    }
    const int low = x < 0.5;
    const double t = low ? x : 1.0 - x; /* exact for x >= 0.5 (Sterbenz) */
    const int64_t k = perf_key(t, shift, K - 1);
    return low ? k : 2 * K - 1 - k;
}

/* Where t lies inside its bin, in [0, 1): the mantissa bits below the key's,
 * exactly (a pile of equal scores has one fraction; spread scores, many). */
static inline double perf_frac(double x, int margin, int shift)
{
    const double t = margin ? fabs(x) : (x < 0.5 ? x : 1.0 - x);
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    /* the bits as the mantissa of a number in [1, 2): exact, and integer work only */
    u = ((u << shift) & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    double d;
    memcpy(&d, &u, sizeof d);
    return d - 1.0;
}

/* exp(x) for x <= 0, branch-free so that the block loop vectorises: Cody-Waite
 * reduction x = n ln2 + r, |r| <= ln2/2, and the Taylor series of exp(r) to
 * r^13 (remainder below 5e-18 relative); within 2 ulp of exp().  Below -708
 * it returns exp(-708) (3e-308), which changes no sum this kernel keeps. */
static inline double exp_neg(double x)
{
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    x = x < -708.0 ? -708.0 : x;
    double kd = x * 1.44269504088896340736 + shifter;
    uint64_t ki, ks;
    memcpy(&ki, &kd, sizeof ki);
    memcpy(&ks, &shifter, sizeof ks);
    kd -= shifter;
    const double r = (x - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const uint64_t bits = (uint64_t)((int64_t)(ki - ks) + 1023) << 52; /* 2^n, n in [-1022, 0] */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* p in (0, 2^16]: mantissa in [1, 2), exponent added to *e. */
static inline double renorm(double p, int64_t *e)
{
    uint64_t u;
    memcpy(&u, &p, sizeof u);
    *e += (int64_t)(u >> 52) - 1023;
    u = (u & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    memcpy(&p, &u, sizeof p);
    return p;
}

/* The per-row path: every check, weights, per-row logs. */
static void slow_rows(const double *scores, const uint8_t *validity, int64_t voff, const uint8_t *labels,
                      int32_t coded, const double *weights, int64_t start, int64_t end, int margin,
                      int shift, int64_t K, int64_t *counts, double *wsum, double *vmin, double *vmax,
                      double *spread,
                      perf_acc *a, int64_t *rej)
{
    const int64_t nb = 2 * K;
    for (int64_t i = start; i < end; i++) {
        if (validity && !fd_valid(validity, voff + i)) {
            rej[0]++;
            continue;
        }
        const double x = scores[i];
        if (x != x) {
            rej[1]++;
            continue;
        }
        if (margin ? !FD_FINITE(x) : !(x >= 0.0 && x <= 1.0)) {
            rej[2]++;
            continue;
        }
        int c = 2;
        if (labels) {
            const uint8_t b = labels[i];
            if (b <= 1)
                c = b;
            else if (!(coded && b == 2)) {
                rej[3]++;
                continue;
            }
        }
        double w = 1.0;
        if (weights) {
            w = weights[i];
            if (!(w >= 0.0 && w <= MAX_WEIGHT)) {
                rej[4]++;
                continue;
            }
        }
        const int64_t bin = perf_bin(x, margin, shift, K);
        if (counts)
            counts[c * nb + bin]++;
        if (wsum)
            wsum[c * nb + bin] += w;
        if (vmin) {
            vmin[bin] = x < vmin[bin] ? x : vmin[bin];
            vmax[bin] = x > vmax[bin] ? x : vmax[bin];
        }
        if (spread) {
            const double d = perf_frac(x, margin, shift);
            spread[2 * bin] += w * d;
            spread[2 * bin + 1] += w * d * d;
        }
        double p, loss = 0.0;
        if (margin) {
            const double e = exp(-fabs(x));
            p = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            if (c < 2) {
                const double z = c ? -x : x;
                loss = (z > 0.0 ? z : 0.0) + log1p(e);
            }
        } else {
            p = x;
            if (c < 2) {
                const double pc = x < LOG_EPS ? LOG_EPS : (x > 1.0 - LOG_EPS ? 1.0 - LOG_EPS : x);
                loss = c ? -log(pc) : -log1p(-pc);
            }
        }
        if (c == 2) {
            a->s[5] += w;
            a->s[6] += w * p;
        } else {
            const double d = p - (double)c;
            a->s[0] += w;
            a->s[1] += c ? w : 0.0;
            a->s[2] += w * loss;
            a->s[3] += w * d * d;
            a->s[4] += w * p;
        }
    }
}

/* Pass A of an unweighted block without validity: keys, likelihood factors and
 * sums, branch-free; returns 0 (and sets nothing) if any row needs the per-row
 * path.  has_lab and margin are constants in each caller below, so each gets
 * its own loop (the probability loops vectorise; margins call exp). */
static inline __attribute__((always_inline))
int keys_pass(const double *restrict x, const uint8_t *restrict lab, const int has_lab, const int margin, int64_t m,
              int shift, int64_t K, int32_t *restrict key, int32_t *restrict binx, double *restrict dv,
              double *restrict f, double *restrict acc /* [4]: brier, pos, p, lin */)
{
    const int64_t nb = 2 * K;
    int bad = 0;
    double d2[PERF_BLOCK], pv[PERF_BLOCK], lv[PERF_BLOCK];
    /* elementwise and branch-free (the loop vectorises); the sums below, in lanes */
    for (int64_t i = 0; i < m; i++) {
        const double xi = x[i];
        const int b = has_lab ? lab[i] : 2;
        double p, fi, li = 0.0;
        /* a factor 1 +- q with q < SMALL_Q would lose q's digits in the product:
         * its log goes to the linear sum as q -+ q^2/2 + q^3/3 instead */
        if (margin) {
            bad |= !FD_FINITE(xi);
            const double e = exp_neg(-fabs(xi));
            const double r = 1.0 / (1.0 + e);
            p = xi >= 0.0 ? r : e * r;
            const double z = b == 1 ? -xi : xi;
            const int sm = e < SMALL_Q;
            li = (z > 0.0 ? z : 0.0) + (sm ? e * (1.0 - e * (0.5 - e * (1.0 / 3.0))) : 0.0);
            fi = sm ? 1.0 : 1.0 + e;
        } else {
            bad |= (xi < 0.0) | (xi > 1.0) | (xi != xi);
            p = xi;
            double pc = xi < LOG_EPS ? LOG_EPS : xi;
            pc = pc > 1.0 - LOG_EPS ? 1.0 - LOG_EPS : pc;
            const double q = b == 1 ? 1.0 - pc : pc; /* the factor is 1 - q; exact when q is small */
            const int sm = q < SMALL_Q;
            li = sm ? q * (1.0 + q * (0.5 + q * (1.0 / 3.0))) : 0.0;
            fi = sm ? 1.0 : (b == 1 ? pc : 1.0 - pc);
        }
        if (has_lab)
            bad |= b > 1;
        const int bc = b > 2 ? 2 : b;
        const int64_t bin = perf_bin(xi, margin, shift, K);
        binx[i] = (int32_t)bin;
        key[i] = (int32_t)(bin + (int64_t)bc * nb);
        dv[i] = perf_frac(xi, margin, shift);
        f[i] = fi;
        const double d = p - (double)bc;
        d2[i] = d * d;
        pv[i] = p;
        lv[i] = li;
    }
    if (bad)
        return 0;
    double sb[LANES] = {0}, sp[LANES] = {0}, sl[LANES] = {0};
    int64_t npos = 0;
    int64_t i = 0;
    for (; i + LANES <= m; i += LANES)
        for (int j = 0; j < LANES; j++) {
            sb[j] += d2[i + j];
            sp[j] += pv[i + j];
            sl[j] += lv[i + j];
        }
    for (; i < m; i++) {
        sb[0] += d2[i];
        sp[0] += pv[i];
        sl[0] += lv[i];
    }
    if (has_lab)
        for (i = 0; i < m; i++)
            npos += lab[i];
    acc[0] = acc[2] = acc[3] = 0.0;
    for (int j = 0; j < LANES; j++) {
        acc[0] += sb[j];
        acc[2] += sp[j];
        acc[3] += sl[j];
    }
    acc[1] = (double)npos;
    return 1;
}

#define KEYS_ARGS int64_t m, int shift, int64_t K, int32_t *key, int32_t *binx, double *dv, double *f, double *acc
#define KEYS_PASS(lab, has_lab, margin) keys_pass(x, lab, has_lab, margin, m, shift, K, key, binx, dv, f, acc)

/* The four loops built once per SIMD path and picked by fd_simd(), as every
 * kernel's: the same operations in each build, no FMA (build.py:
 * -ffp-contract=off), so the paths give the same bits.  The AVX-512 path runs
 * the AVX2 build. */
#define DEF_KEYS(SFX, TGT)                                                                          \
TGT static int keys_prob_lab_##SFX(const double *x, const uint8_t *lab, KEYS_ARGS)                  \
{ return KEYS_PASS(lab, 1, 0); }                                                                    \
TGT static int keys_prob_unl_##SFX(const double *x, const uint8_t *lab, KEYS_ARGS)                  \
{ (void)lab; return KEYS_PASS(0, 0, 0); }                                                           \
TGT static int keys_margin_lab_##SFX(const double *x, const uint8_t *lab, KEYS_ARGS)                \
{ return KEYS_PASS(lab, 1, 1); }                                                                    \
TGT static int keys_margin_unl_##SFX(const double *x, const uint8_t *lab, KEYS_ARGS)                \
{ (void)lab; return KEYS_PASS(0, 0, 1); }                                                           \
static const keys_fn KEYS_##SFX[4] = {keys_prob_unl_##SFX, keys_prob_lab_##SFX,                     \
                                      keys_margin_unl_##SFX, keys_margin_lab_##SFX};

typedef int (*keys_fn)(const double *, const uint8_t *, KEYS_ARGS);
DEF_KEYS(scalar, )
#if FD_X86_SIMD
DEF_KEYS(avx2, FD_TARGET_AVX2)
#endif

/* [2 * margin + labelled] */
static const keys_fn *keys_for_path(int path)
{
#if FD_X86_SIMD
    if (path == FD_SIMD_AVX2 || path == FD_SIMD_AVX512)
        return KEYS_avx2;
#endif
    (void)path;
    return KEYS_scalar;
}

/* An unweighted block without validity, whole or not at all: returns 0 (and
 * changes nothing) if a row needs the per-row path. */
static int fast_block(const double *x, const uint8_t *lab, int64_t m, int margin, int shift, int64_t K,
                      int64_t *counts, double *wsum, double *vmin, double *vmax, double *spread,
                      perf_acc *a)
{
    int32_t key[PERF_BLOCK], binx[PERF_BLOCK];
    double dv[PERF_BLOCK];
    double f[PERF_BLOCK + LANES * RENORM_EVERY];
    double acc[4];
    const int ok = keys_for_path(fd_simd())[2 * margin + (lab != 0)](x, lab, m, shift, K, key, binx, dv, f, acc);
    if (!ok)
        return 0;
    if (counts)
        for (int64_t i = 0; i < m; i++)
            counts[key[i]]++;
    if (wsum)
        for (int64_t i = 0; i < m; i++)
            wsum[key[i]] += 1.0;
    if (spread)
        for (int64_t i = 0; i < m; i++) {
            spread[2 * binx[i]] += dv[i];
            spread[2 * binx[i] + 1] += dv[i] * dv[i];
        }
    if (vmin)
        for (int64_t i = 0; i < m; i++) {
            const int32_t bin = binx[i];
            vmin[bin] = x[i] < vmin[bin] ? x[i] : vmin[bin];
            vmax[bin] = x[i] > vmax[bin] ? x[i] : vmax[bin];
        }
    const double dm = (double)m;
    if (!lab) { /* unlabelled: no loss */
        a->s[5] += dm;
        a->s[6] += acc[2];
        return 1;
    }
    /* the factors in whole rounds of LANES * RENORM_EVERY (padded with 1) */
    const int64_t round = LANES * RENORM_EVERY;
    const int64_t mm = (m + round - 1) / round * round;
    for (int64_t i = m; i < mm; i++)
        f[i] = 1.0;
    for (int64_t g = 0; g < mm; g += round) {
        for (int r = 0; r < RENORM_EVERY; r++)
            for (int j = 0; j < LANES; j++)
                a->prod[j] *= f[g + r * LANES + j];
        for (int j = 0; j < LANES; j++)
            a->prod[j] = renorm(a->prod[j], &a->expo);
    }
    a->s[0] += dm;
    a->s[1] += acc[1];
    a->s[3] += acc[0];
    a->s[4] += acc[2];
    a->lin += acc[3];
    return 1;
}

int fd_perf_update(const double *scores, const uint8_t *score_validity, int64_t score_offset,
                   const uint8_t *labels, int32_t label_coded, const double *weights, int64_t n,
                   int32_t margin, int32_t shift, int64_t n_bins,
                   int64_t *counts, double *wsum, double *vmin, double *vmax, double *spread,
                   double *sums, int64_t *rejected)
{
    if (n < 0 || (n > 0 && !scores) || (margin != 0 && margin != 1) || shift < 0 || shift > 10 ||
        (label_coded != 0 && label_coded != 1) || score_offset < 0 || !sums || !rejected ||
        (vmin == 0) != (vmax == 0) || 0)
        return FD_EINVAL;
    const int64_t K = margin ? ((int64_t)128 << shift) : ((int64_t)63 << shift) + 1;
    if (n_bins != 2 * K)
        return FD_EINVAL;
    perf_acc a;
    memset(&a, 0, sizeof a);
    for (int j = 0; j < LANES; j++)
        a.prod[j] = 1.0;
    int64_t rej[FD_PERF_N_REJECT] = {0};
    const int fast = !score_validity && !weights;
    for (int64_t start = 0; start < n; start += PERF_BLOCK) {
        const int64_t m = n - start < PERF_BLOCK ? n - start : PERF_BLOCK;
        FD_PREFETCH(scores + start + PERF_BLOCK);
        if (fast && fast_block(scores + start, labels ? labels + start : 0, m, margin, shift, K, counts,
                               wsum, vmin, vmax, spread, &a))
            continue;
        slow_rows(scores, score_validity, score_offset, labels, label_coded, weights, start, start + m,
                  margin, shift, K, counts, wsum, vmin, vmax, spread, &a, rej);
    }
    /* the fast blocks' loss: -sum(log f) (+ the linear part of the margins' softplus) */
    double logs = 0.0;
    for (int j = 0; j < LANES; j++)
        logs += log(a.prod[j]);
    const double fast_loss = margin ? a.lin + (LN2 * (double)a.expo + logs) : a.lin - (LN2 * (double)a.expo + logs);
    a.s[2] += fast_loss;
    for (int k = 0; k < FD_PERF_N_SUMS; k++)
        sums[k] += a.s[k];
    for (int k = 0; k < FD_PERF_N_REJECT; k++)
        rejected[k] += rej[k];
    return FD_OK;
}
