/* fd_exact.c -- exact sums of doubles in integer accumulators per exponent.
 *
 * Every finite double is an integer multiple of 2**-1074, so a sum of doubles
 * is exact as an integer; the accumulators keep it split by exponent (the
 * caller shifts and adds the few hundred nonzero bins into one big integer).
 * Splitting the 53-bit mantissa into 27 and 26 bits leaves 36 bits of
 * headroom in each int64 accumulator.
 */
#include <string.h>
#include "fd_internal.h"

int fd_exact_accumulate(const double *x, int64_t n, int64_t *acc, int64_t *bad)
{
    int64_t i;
    if (n < 0 || acc == 0 || bad == 0 || (n > 0 && x == 0))
        return FD_EINVAL;
    *bad = -1;
    for (i = 0; i < n; i++) {
        uint64_t bits;
        int64_t b, m, hi, lo, s;
        memcpy(&bits, &x[i], sizeof bits);
        b = (int64_t)((bits >> 52) & 0x7FF);
        if (b == 0x7FF) {
            *bad = i;
            return FD_EINVAL;
        }
        m = (int64_t)(bits & ((UINT64_C(1) << 52) - 1));
        if (b)
            m |= INT64_C(1) << 52;
        else
            b = 1;
        /* branch-free sign (a random sign would mispredict): s = 0 or -1, (v ^ s) - s = +-v */
        s = -(int64_t)(bits >> 63);
        hi = m >> 26;
        lo = m & ((INT64_C(1) << 26) - 1);
        acc[2 * b] += (hi ^ s) - s;
        acc[2 * b + 1] += (lo ^ s) - s;
    }
    return FD_OK;
}
