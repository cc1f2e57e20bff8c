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

/* Software prefetch of a streamed input, FD_PREFETCH_BYTES ahead: the
 * hardware prefetcher of a virtualised machine may keep too few lines in
 * flight for a streaming loop (bench/bench_kernels.py times the loops that
 * use it).  Reading past the end of the buffer is harmless for a prefetch. */
#define FD_PREFETCH_BYTES 1024
#if defined(__GNUC__)
#define FD_PREFETCH(p) __builtin_prefetch((const char *)(p) + FD_PREFETCH_BYTES)
#else
#define FD_PREFETCH(p) ((void)(p))
#endif

/* Runtime SIMD dispatch (fd_simd.c): fd_simd_level is the FD_SIMD_* path in
 * use, read by each kernel call.  FD_X86_SIMD: this compiler can build
 * AVX2/AVX-512 functions (target attributes, immintrin.h) whatever the
 * baseline flags, so the wheel needs neither.  Both targets include FMA
 * (the AVX2 path is taken on CPUs with FMA only); build.py compiles with -ffp-contract=off so no path fuses a
 * multiply-add that another path rounds twice.  -DFD_NO_SIMD builds the
 * scalar path alone, as on other architectures. */
extern int fd_simd_level;
#if !defined(FD_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define FD_X86_SIMD 1
#define FD_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FD_TARGET_AVX512 __attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")))
#else
#define FD_X86_SIMD 0
#endif
int fd_simd_select(int32_t want, int32_t *path);
/* The path for this call: chosen on first use when no caller chose one. */
static inline int fd_simd(void)
{
    if (fd_simd_level < 0)
        fd_simd_select(FD_SIMD_AUTO, 0);
    return fd_simd_level;
}

/* Cell of a finite x in an equal-width grid: identical arithmetic in every
 * pass that counts or selects is the whole correctness argument of the exact
 * quantiles, so it lives in one place (mirrored operation for operation by
 * _grid_cell in src/fastdrift/kernels/numba_select.py, since either backend may run
 * either pass). */
#define FD_FINITE(x) ((x) - (x) == 0.0)   /* false for NaN and +-inf */

/* Whether (lo, inv_width, n_cells) is a grid every such kernel can use. */
static inline int fd_grid_ok(double lo, double inv_width, int64_t n_cells)
{
    return n_cells >= 1 && n_cells <= FD_GRID_MAX_CELLS && inv_width >= 0.0 && FD_FINITE(lo);
}

static inline int64_t fd_grid_cell(double x, double lo, double inv, double top)
{
    double t = (x - lo) * inv;
    t = t > 0.0 ? t : 0.0;
    t = t < top ? t : top;
    return (int64_t)t;
}

#endif