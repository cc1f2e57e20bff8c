/* fd_hist.c -- numeric histogram over sorted edges (stub, replaced by the real kernel). */
#include "fd_internal.h"

int fd_hist_update(const fd_column *col, const fd_hist_index *ix,
                   int64_t *counts, int64_t *n_null, int64_t *n_nan)
{
    (void)col; (void)ix; (void)counts; (void)n_null; (void)n_nan;
    return FD_ETYPE;
}
