/* fd_exact.c -- exact sums of doubles and of products of doubles, in integer
 * accumulators per binary exponent.
 *
 * Every finite double is an integer multiple of 2**-1074, so a sum of doubles
 * is exact as an integer; the accumulators keep it split by exponent (the
 * caller shifts and adds the few hundred nonzero bins into one big integer).
 * Splitting the 53-bit mantissa into 27 and 26 bits leaves headroom for 2**36
 * terms in each int64 accumulator (a row adds at most 4).  A product is first
 * split exactly into a sum of doubles (Dekker); the file is compiled without
 * floating-point contraction (-std=c99), which the split relies on.
 */
#include <string.h>
#include "fd_internal.h"

#define FD_VELTKAMP 134217729.0 /* 2**27 + 1 */

/* Add v to acc (negated when neg is -1); 0 if v is NaN or infinite. */
static inline int exact_add(int64_t *acc, double v, int64_t neg)
{
    uint64_t bits;
    int64_t k, m, s, hi, lo;
    memcpy(&bits, &v, sizeof bits);
    k = (int64_t)((bits >> 52) & 0x7FF);
    if (k == 0x7FF)
        return 0;
    m = (int64_t)(bits & ((UINT64_C(1) << 52) - 1));
    if (k)
        m |= INT64_C(1) << 52;
    else
        k = 1;
    /* branch-free sign (a random sign would mispredict): s = 0 or -1, (v ^ s) - s = +-v */
    s = -(int64_t)(bits >> 63) ^ neg;
    hi = m >> 26;
    lo = m & ((INT64_C(1) << 26) - 1);
    acc[2 * k] += (hi ^ s) - s;
    acc[2 * k + 1] += (lo ^ s) - s;
    return 1;
}

/* x y = *p + *e exactly (Dekker), barring overflow and underflow. */
static inline void two_prod(double x, double y, double *p, double *e)
{
    double c = FD_VELTKAMP * x, xh = c - (c - x), xl = x - xh;
    double d = FD_VELTKAMP * y, yh = d - (d - y), yl = y - yh;
    *p = x * y;
    *e = ((xh * yh - *p) + xh * yl + xl * yh) + xl * yl;
}

static inline int64_t sign_of(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return -(int64_t)(bits >> 63);
}

int fd_exact_dot(const double *a, const double *b, const double *c, int64_t n, int32_t flags,
                 int64_t *acc, int64_t *bad)
{
    int64_t i;
    int absolute = (flags & FD_EXACT_ABS) != 0;
    if (n < 0 || acc == 0 || bad == 0 || (n > 0 && a == 0) || (c != 0 && b == 0) || (flags & ~FD_EXACT_ABS))
        return FD_EINVAL;
    *bad = -1;
    for (i = 0; i < n; i++) {
        double x = a[i], p1, e1, p2, e2, p3, e3;
        int64_t neg = 0;
        int ok;
        if (b == 0) {
            if (absolute)
                neg = sign_of(x);
            ok = exact_add(acc, x, neg);
        } else if (c == 0) {
            two_prod(x, b[i], &p1, &e1);
            if (absolute)
                neg = sign_of(x) ^ sign_of(b[i]);
            ok = exact_add(acc, p1, neg) & exact_add(acc, e1, neg);
        } else {
            two_prod(x, b[i], &p1, &e1);
            two_prod(p1, c[i], &p2, &e2);
            two_prod(e1, c[i], &p3, &e3);
            if (absolute)
                neg = sign_of(x) ^ sign_of(b[i]) ^ sign_of(c[i]);
            ok = exact_add(acc, p2, neg) & exact_add(acc, e2, neg) & exact_add(acc, p3, neg)
                 & exact_add(acc, e3, neg);
        }
        if (!ok) {
            *bad = i;
            return FD_EINVAL;
        }
    }
    return FD_OK;
}
