/* fd_simd.c -- the process-wide choice of SIMD path (see fastdrift.h).
 *
 * The CPU is asked through __builtin_cpu_supports, which also checks that the
 * OS saves the AVX / AVX-512 registers (XGETBV).  Other compilers and
 * architectures have only the scalar path. */
#include "fd_internal.h"

int fd_simd_level = -1;   /* -1: not chosen yet (first fd_simd_select) */

int fd_simd_supported(int32_t path)
{
    if (path == FD_SIMD_SCALAR)
        return 1;
#if FD_X86_SIMD
    __builtin_cpu_init();
    if (path == FD_SIMD_AVX2)
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    if (path == FD_SIMD_AVX512)
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512dq")) ? 1 : 0;
#endif
    return 0;
}

int fd_simd_select(int32_t want, int32_t *path)
{
    int rc = FD_OK;
    if (want == FD_SIMD_AUTO) {
        fd_simd_level = fd_simd_supported(FD_SIMD_AVX512) ? FD_SIMD_AVX512
                      : fd_simd_supported(FD_SIMD_AVX2) ? FD_SIMD_AVX2 : FD_SIMD_SCALAR;
    } else if (want >= FD_SIMD_SCALAR && want <= FD_SIMD_AVX512 && fd_simd_supported(want)) {
        fd_simd_level = want;
    } else {
        rc = want == FD_SIMD_QUERY ? FD_OK : FD_EINVAL;
        if (fd_simd_level < 0)
            fd_simd_select(FD_SIMD_AUTO, 0);
    }
    if (path)
        *path = fd_simd_level;
    return rc;
}
