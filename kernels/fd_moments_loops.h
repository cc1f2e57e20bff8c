/* fd_moments_loops.h -- the per-block loops of fd_moments.c, included once per
 * SIMD path with FD_SFX (name suffix) and FD_TGT (target attribute, or empty)
 * defined.  Plain C that the compiler vectorises for the target; every build
 * performs the same IEEE operations in the same order:
 *
 *   lane l (0..15) accumulates elements i = 16 j + l of the whole groups of
 *   16, the remaining k % 16 elements go to lane 0 in order, and the lanes
 *   are folded in halves: l += l + 8, then l += l + 4, l += l + 2, l += l + 1.
 *
 * (one SSE2 register holds 2 lanes, AVX2 4, AVX-512 8), so sums are
 * bit-identical across paths and to the numba twin, which spells out the same
 * order.  No operation here may be contracted (build.py: -ffp-contract=off).
 */
#define FD_L 16

#define FD_GLUE2(a, b) a##_##b
#define FD_GLUE(a, b) FD_GLUE2(a, b)
#define FD_FN(name) FD_GLUE(name, FD_SFX)

/* One pass over x[0:k]: res = {sum, min, max, sum of (x - c), sum of
 * (x - c)^2} for the shift c (fd_moments.c: reduce_block).  Returns 0 when
 * some x is NaN or +-inf (the results are then meaningless): a NaN makes the
 * sum NaN whatever the order of the additions, +inf makes the max +inf and
 * -inf the min -inf.  (Finite values whose lane sums overflow to +inf and
 * -inf also give a NaN sum: the caller then compacts the block, which holds
 * the same values, and reduces that: the same result, more slowly.) */
FD_TGT
static int FD_FN(block_pass1)(const double *restrict x, int64_t k, double c, double *restrict res)
{
    double sa[FD_L], mn[FD_L], mx[FD_L], sd[FD_L], ss[FD_L];
    for (int l = 0; l < FD_L; ++l) {
        sa[l] = 0.0;
        mn[l] = DBL_MAX;
        mx[l] = -DBL_MAX;
        sd[l] = 0.0;
        ss[l] = 0.0;
    }
    int64_t i = 0;
    for (; i + FD_L <= k; i += FD_L) {
        /* the two lines 1 KiB ahead (past the block's end, the next block's
         * or nothing: a prefetch never faults).  The hardware prefetcher
         * alone keeps too few lines in flight for this loop: from memory
         * 0.55 against 0.46-0.51 ns a value (docs/performance.md) */
        FD_PREFETCH(x + i);
        FD_PREFETCH(x + i + 8);
        for (int l = 0; l < FD_L; ++l) {
            const double v = x[i + l];
            const double d = v - c;
            sa[l] += v;
            mn[l] = v < mn[l] ? v : mn[l];
            mx[l] = v > mx[l] ? v : mx[l];
            sd[l] += d;
            ss[l] += d * d;
        }
    }
    for (; i < k; ++i) {
        const double v = x[i];
        const double d = v - c;
        sa[0] += v;
        mn[0] = v < mn[0] ? v : mn[0];
        mx[0] = v > mx[0] ? v : mx[0];
        sd[0] += d;
        ss[0] += d * d;
    }
    for (int h = FD_L / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; ++l) {
            sa[l] += sa[l + h];
            mn[l] = mn[l + h] < mn[l] ? mn[l + h] : mn[l];
            mx[l] = mx[l + h] > mx[l] ? mx[l + h] : mx[l];
            sd[l] += sd[l + h];
            ss[l] += ss[l + h];
        }
    res[0] = sa[0];
    res[1] = mn[0];
    res[2] = mx[0];
    res[3] = sd[0];
    res[4] = ss[0];
    return sa[0] == sa[0] && mn[0] >= -DBL_MAX && mx[0] <= DBL_MAX;
}

/* Sum of (x - mean)^2 over x[0:k], in the lane order above. */
FD_TGT
static double FD_FN(block_m2)(const double *restrict x, int64_t k, double mean)
{
    double ma[FD_L];
    for (int l = 0; l < FD_L; ++l)
        ma[l] = 0.0;
    int64_t i = 0;
    for (; i + FD_L <= k; i += FD_L)
        for (int l = 0; l < FD_L; ++l) {
            const double d = x[i + l] - mean;
            ma[l] += d * d;
        }
    for (; i < k; ++i) {
        const double d = x[i] - mean;
        ma[0] += d * d;
    }
    for (int h = FD_L / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; ++l)
            ma[l] += ma[l + h];
    return ma[0];
}

/* Grid cells of a block (see grid_block in fd_moments.c): the one loop the
 * compiler vectorises there. */
FD_TGT
static void FD_FN(block_cells)(const double *restrict x, int64_t k, double lo, double inv,
                               double top, int32_t *restrict cell)
{
    for (int64_t i = 0; i < k; ++i) {
        double t = (x[i] - lo) * inv;
        t = t > 0.0 ? t : 0.0;
        t = t < top ? t : top;
        cell[i] = (int32_t)t;   /* == fd_grid_cell: t is in [0, top] */
    }
}

#undef FD_L
#undef FD_FN
#undef FD_GLUE
#undef FD_GLUE2
