/* fd_select.c -- exact order statistics by a grid count and a selective copy.
 *
 * np.quantile partitions the whole column around every wanted rank
 * (bench/bench_kernels.py, test_quantile, times it against this); here a
 * first pass counts the finite values per cell of an equal-width grid over
 * [min, max], Python finds the cells holding the wanted ranks, and a second
 * pass copies only the values of those cells, which are then sorted.  Both
 * passes are streaming and branch light, so the cost is two reads of the
 * column plus a tiny sort.
 */
#include <math.h>
#include "fd_internal.h"


/* Two loops per type: without a validity bitmap (the common case) the body
 * runs with no per-value null test; with one, a whole byte of validity bits
 * is tested at once when it is all-valid.  FD_PREFETCH keeps the streamed
 * column ahead of this VM's shallow hardware prefetcher. */
#define GRID_LOOP(T, BODY)                                                   \
    do {                                                                     \
        const T *v = (const T *)col->values + col->offset;                   \
        const uint8_t *bits = col->validity;                                 \
        const int64_t off = col->offset;                                     \
        const int64_t len = col->length;                                     \
        if (!bits) {                                                         \
            for (int64_t i = 0; i < len; i++) {                              \
                if ((i & 15) == 0)                                           \
                    FD_PREFETCH(v + i);                                      \
                const double x = (double)v[i];                               \
                if (!FD_FINITE(x))                                           \
                    continue;                                                \
                BODY                                                         \
            }                                                                \
        } else {                                                             \
            for (int64_t i = 0; i < len; i++) {                              \
                if (!((bits[(off + i) >> 3] >> ((off + i) & 7)) & 1))        \
                    continue;                                                \
                const double x = (double)v[i];                               \
                if (!FD_FINITE(x))                                           \
                    continue;                                                \
                BODY                                                         \
            }                                                                \
        }                                                                    \
    } while (0)

#define GRID_DISPATCH(BODY)                                                  \
    switch (col->type) {                                                     \
    case FD_F64: GRID_LOOP(double, BODY); break;                             \
    case FD_F32: GRID_LOOP(float, BODY); break;                              \
    case FD_I8: GRID_LOOP(int8_t, BODY); break;                              \
    case FD_I16: GRID_LOOP(int16_t, BODY); break;                            \
    case FD_I32: GRID_LOOP(int32_t, BODY); break;                            \
    case FD_I64: GRID_LOOP(int64_t, BODY); break;                            \
    case FD_U8: GRID_LOOP(uint8_t, BODY); break;                             \
    case FD_U16: GRID_LOOP(uint16_t, BODY); break;                           \
    case FD_U32: GRID_LOOP(uint32_t, BODY); break;                           \
    case FD_U64: GRID_LOOP(uint64_t, BODY); break;                           \
    default: return FD_ETYPE;                                                \
    }

/* The checks every grid entry point shares: a column and grid it can read. */
static int grid_args(const fd_column *col, double lo, double inv_width, int64_t n_cells)
{
    if (!col || !fd_grid_ok(lo, inv_width, n_cells) || col->length < 0 || col->offset < 0)
        return FD_EINVAL;
    if (col->length > 0 && !col->values)
        return FD_EINVAL;
    return FD_OK;
}

int fd_grid_count(const fd_column *col, double lo, double inv_width,
                  int64_t n_cells, int64_t *counts)
{
    if (!counts)
        return FD_EINVAL;
    int rc = grid_args(col, lo, inv_width, n_cells);
    if (rc || col->length == 0)
        return rc;
    const double top = (double)(n_cells - 1);
    GRID_DISPATCH(counts[fd_grid_cell(x, lo, inv_width, top)]++;)
    return FD_OK;
}

int fd_grid_select(const fd_column *col, double lo, double inv_width,
                   int64_t n_cells, const uint8_t *flags, double *out,
                   int64_t cap, int64_t *n_out)
{
    if (!flags || !n_out || cap < 0 || *n_out < 0)
        return FD_EINVAL;
    int rc = grid_args(col, lo, inv_width, n_cells);
    if (rc || col->length == 0)
        return rc;
    const double top = (double)(n_cells - 1);
    int64_t n = *n_out;
    int overflow = 0;
    /* Branch-free while there is room: every value is stored at out[n] and n
     * advances when its cell is flagged (a flagged share near one half would
     * mispredict a branch on every other value); out[n:] is not part of the
     * result. */
    GRID_DISPATCH(
        const int64_t f = flags[fd_grid_cell(x, lo, inv_width, top)] != 0;
        if (n < cap) {
            out[n] = x;
            n += f;
        } else if (f) {
            overflow = 1;
            n++;
        })
    *n_out = n < cap ? n : cap;
    return overflow ? FD_EGROW : FD_OK;
}

/* Both passes at once, for a grid fixed before the scan (its cells held from a
 * pilot): one read of the column.  counts are complete even when the
 * selection overflows (FD_EGROW), exactly as fd_grid_count's would be. */
int fd_grid_count_select(const fd_column *col, double lo, double inv_width,
                         int64_t n_cells, int64_t *counts, const uint8_t *flags,
                         double *out, int64_t cap, int64_t *n_out)
{
    if (!counts || !flags || !n_out || cap < 0 || *n_out < 0)
        return FD_EINVAL;
    int rc = grid_args(col, lo, inv_width, n_cells);
    if (rc || col->length == 0)
        return rc;
    const double top = (double)(n_cells - 1);
    int64_t n = *n_out;
    int overflow = 0;
    GRID_DISPATCH(
        const int64_t c = fd_grid_cell(x, lo, inv_width, top);
        counts[c]++;
        if (flags[c]) {
            if (n < cap)
                out[n] = x;
            else
                overflow = 1;
            n++;
        })
    *n_out = n < cap ? n : cap;
    return overflow ? FD_EGROW : FD_OK;
}

int fd_grid_cells_merge(int64_t *counts, double *stats, double *part_cells, int64_t n_cells)
{
    if (!counts || !stats || !part_cells || n_cells < 0)
        return FD_EINVAL;
    for (int64_t c = 0; c < n_cells; ++c) {   /* checked first: a bad record folds nothing */
        const double w = part_cells[4 * c];
        if (!(w >= 0.0 && w <= 9007199254740992.0 && w == (double)(int64_t)w))
            return FD_ECORRUPT;
    }
    for (int64_t c = 0; c < n_cells; ++c) {
        double *a = stats + 3 * c, *b = part_cells + 4 * c;
        counts[c] += (int64_t)b[0];
        a[0] += b[1];
        a[1] = b[2] < a[1] ? b[2] : a[1];
        a[2] = b[3] > a[2] ? b[3] : a[2];
        b[0] = 0.0;
        b[1] = 0.0;
        b[2] = HUGE_VAL;
        b[3] = -HUGE_VAL;
    }
    return FD_OK;
}
