/* hist_ab.c -- two builds of kernels/fd_hist.c in one process, interleaved call by call
 * (docs/performance.md, "Kernels").
 *
 * On a shared 2-core machine the speed of a compute-bound loop moves by 10-50 % from one
 * stretch of seconds to the next (a neighbour on the core's other thread), which hides the
 * few per cent a change of an inner loop is worth when the two builds run in turn in separate
 * processes.  Here both builds are linked into one program (their entry points renamed), and
 * each round times one call of each on the same column: a slow stretch slows both.  Prints per
 * build the minimum, 20th percentile and median of the rounds in ns a value (thread CPU time),
 * and B / A of the 20th percentiles; fails if the two builds' counts differ.
 *
 *   mkdir -p /tmp/hist_ab && python -c "
 *   import numpy as np; from fastdrift.kernels.hist import make_index
 *   x = np.random.default_rng(0).standard_normal(10**7); x.tofile('/tmp/hist_ab/x.bin')
 *   for name, e in (('u', np.linspace(-4, 4, 101)), ('q', np.quantile(x, np.linspace(0, 1, 101)[1:-1])),
 *                   ('q10', np.quantile(x, np.linspace(0, 1, 11)[1:-1]))):
 *       ix = make_index(e); ix.padded.tofile(f'/tmp/hist_ab/{name}_pad.bin')
 *       ix.table.astype(np.int32).tofile(f'/tmp/hist_ab/{name}_tab.bin')
 *       open(f'/tmp/hist_ab/{name}_meta.txt', 'w').write(
 *           f'{ix.n_edges} {2 if ix.arith else int(ix.uniform)} {ix.n_probe} {ix.lo!r} {ix.inv_width!r} {ix.table.size}')"
 *   A=kernels B=/path/to/other/kernels   # e.g. a copy of kernels/ with the change
 *   F="-std=c99 -O3 -DNDEBUG -fno-math-errno -ffp-contract=off"
 *   gcc $F -I$A -c $A/fd_hist.c -Dfd_hist_update=fd_hist_update_A -Dfd_hist_cmp32_plan=fd_hist_cmp32_plan_A -o /tmp/hist_ab/a.o
 *   gcc $F -I$B -c $B/fd_hist.c -Dfd_hist_update=fd_hist_update_B -Dfd_hist_cmp32_plan=fd_hist_cmp32_plan_B -o /tmp/hist_ab/b.o
 *   gcc $F -Ikernels bench/hist_ab.c kernels/fd_simd.c /tmp/hist_ab/a.o /tmp/hist_ab/b.o -o /tmp/hist_ab/ab -lm
 *   cd /tmp/hist_ab && ./ab u && ./ab q && ./ab u 262144     # edges [values [rounds [offset]]]
 *
 * offset: the column starts that many values into the array (64-byte aligned): NumPy's arrays
 * are 16-byte aligned, offset 2 reads the values as a NumPy array at 16 bytes past a line would.
 *
 * The values are read into memory in 2 MiB pages where the kernel gives them (madvise), as NumPy's
 * arrays of 4 MiB and more are: on 4 KiB pages the same loops read 10 % slower from memory.
 *
 * An A/A build (both from the same kernels/) prints B / A within 1 %. */
#define _DEFAULT_SOURCE
#define _ISOC11_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
#include <sys/mman.h>
#include "fastdrift.h"

int fd_hist_update_A(const fd_column *, const fd_hist_index *, int64_t *, int64_t *, int64_t *);
int fd_hist_update_B(const fd_column *, const fd_hist_index *, int64_t *, int64_t *, int64_t *);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The mappings read_file made, unmapped at the end. */
static struct { void *p; size_t size; } maps[3];
static int n_maps;

static void *read_file(const char *name, long *n)
{
    FILE *fp = fopen(name, "rb");
    if (!fp) {
        fprintf(stderr, "hist_ab: cannot open %s (see the header for the inputs)\n", name);
        exit(1);
    }
    fseek(fp, 0, SEEK_END);
    *n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    const size_t huge = (size_t)1 << 21, size = ((size_t)*n + huge - 1) / huge * huge + huge;
    char *raw = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        exit(1);
    maps[n_maps].p = raw;
    maps[n_maps++].size = size;
    char *p = raw + (huge - (uintptr_t)raw % huge) % huge;
    madvise(raw, size, MADV_HUGEPAGE);
    if (fread(p, 1, (size_t)*n, fp) != (size_t)*n)
        exit(1);
    fclose(fp);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "u";
    long n_bytes;
    char f[256];
    const double *x = read_file("x.bin", &n_bytes);
    const long n_x = n_bytes / 8;
    const long n = argc > 2 ? atol(argv[2]) : n_x;
    const int rounds = argc > 3 ? atoi(argv[3]) : 40;
    const long off = argc > 4 ? atol(argv[4]) : 0;
    if (n < 1 || off < 0 || n + off > n_x || rounds < 1) {
        fprintf(stderr, "hist_ab: offset + values in [1, %ld], rounds >= 1\n", n_x);
        return 1;
    }
    snprintf(f, sizeof f, "%s_pad.bin", name);
    const double *pad = read_file(f, &n_bytes);
    snprintf(f, sizeof f, "%s_tab.bin", name);
    const int32_t *tab = read_file(f, &n_bytes);
    snprintf(f, sizeof f, "%s_meta.txt", name);
    FILE *m = fopen(f, "r");
    long ne, nt;
    int uniform, n_probe;
    double lo, inv;
    if (!m || fscanf(m, "%ld %d %d %lf %lf %ld", &ne, &uniform, &n_probe, &lo, &inv, &nt) != 6 || ne > 1000)
        return 1;
    fclose(m);
    const fd_hist_index ix = {pad, ne, uniform, n_probe, lo, inv, tab, nt};
    const fd_column col = {x + off, 0, 0, 0, n, FD_F64};
    int64_t ca[1024] = {0}, cb[1024] = {0}, null_a = 0, nan_a = 0, null_b = 0, nan_b = 0;
    const long reps = n >= 20000000 ? 1 : 20000000 / n;   /* about 20M values a timing */
    double *ta = malloc(sizeof(double) * (size_t)rounds), *tb = malloc(sizeof(double) * (size_t)rounds);
    for (int r = 0; r < rounds; ++r) {
        double t0 = now();
        for (long k = 0; k < reps; ++k)
            if (fd_hist_update_A(&col, &ix, ca, &null_a, &nan_a))
                return 2;
        ta[r] = (now() - t0) / (double)reps / (double)n * 1e9;
        t0 = now();
        for (long k = 0; k < reps; ++k)
            if (fd_hist_update_B(&col, &ix, cb, &null_b, &nan_b))
                return 2;
        tb[r] = (now() - t0) / (double)reps / (double)n * 1e9;
    }
    if (memcmp(ca, cb, sizeof ca) || null_a != null_b || nan_a != nan_b) {
        printf("hist_ab: the two builds' counts differ\n");
        return 3;
    }
    qsort(ta, (size_t)rounds, sizeof(double), cmp_double);
    qsort(tb, (size_t)rounds, sizeof(double), cmp_double);
    printf("%s n=%ld off=%ld  A min %.3f p20 %.3f med %.3f | B min %.3f p20 %.3f med %.3f ns a value  (B/A p20 %.3f)\n",
           name, n, off, ta[0], ta[rounds / 5], ta[rounds / 2], tb[0], tb[rounds / 5], tb[rounds / 2],
           tb[rounds / 5] / ta[rounds / 5]);
    free(ta);
    free(tb);
    for (int k = 0; k < n_maps; ++k)
        munmap(maps[k].p, maps[k].size);
    return 0;
}
