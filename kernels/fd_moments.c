/* fd_moments.c -- streaming moments (stub, replaced by the real kernel). */
#include "fd_internal.h"

int fd_moments_update(const fd_column *col, int64_t *ints, double *flts)
{
    (void)col; (void)ints; (void)flts;
    return FD_ETYPE;
}
