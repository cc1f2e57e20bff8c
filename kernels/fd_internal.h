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

/* Software prefetch of a streamed input, FD_PREFETCH_BYTES ahead.  Measured
 * on the (virtualised) development machine, whose hardware prefetcher keeps
 * too few lines in flight: the histogram loop doubled in throughput.  Reading
 * past the end of the buffer is harmless for a prefetch. */
#define FD_PREFETCH_BYTES 1024
#if defined(__GNUC__)
#define FD_PREFETCH(p) __builtin_prefetch((const char *)(p) + FD_PREFETCH_BYTES)
#else
#define FD_PREFETCH(p) ((void)(p))
#endif

#endif
