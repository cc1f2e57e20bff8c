/* fd_internal.h -- static inline helpers shared by the kernels' .c files.
 * Never part of the cffi contract. */
#ifndef FD_INTERNAL_H
#define FD_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "fastdrift.h"

/* Validity of element i (already including the array offset). */
static inline int fd_valid(const uint8_t *bits, int64_t i)
{
    return bits == 0 || ((bits[i >> 3] >> (i & 7)) & 1);
}

#endif
