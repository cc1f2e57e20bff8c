/* grid_ab.c -- two builds of kernels/fd_moments.c's fd_moments_grid_update (moments and the
 * grid count and selection of exact quantiles, in one read) in one process, interleaved call by
 * call, as bench/hist_ab.c does for the histogram (docs/performance.md, "Kernels").
 *
 * 1e7 normal values (hist_ab.c's x.bin, its header says how to make it), counted in calls of
 * CHUNK values into a grid of CELLS equal cells over [min, max]; the cells of the 9 deciles are
 * held, and WIDE cells either side of each (a scan's pilot holds a few cells around each
 * decile); with "cells", fd_moments_grid_cells_update instead (the cell records a reference's
 * t-digests are made from), the cells below the 1st percentile and above the 99th sent to a
 * digest as well.  Prints the held values, per build the 20th percentile and median of the rounds
 * in ns a value (thread CPU time) and B / A of the 20th percentiles; fails if the builds' moments,
 * counts, records, selections or digest values differ.
 *
 *   A=kernels B=/path/to/other/kernels
 *   F="-std=c99 -O3 -DNDEBUG -fno-math-errno -ffp-contract=off"
 *   R="-Dfd_moments_update=fd_moments_update_X -Dfd_moments_grid_cells_update=fd_moments_grid_cells_update_X"
 *   gcc $F -I$A -c $A/fd_moments.c ${R//_X/_A} -Dfd_moments_grid_update=fd_moments_grid_update_A -o /tmp/hist_ab/ga.o
 *   gcc $F -I$B -c $B/fd_moments.c ${R//_X/_B} -Dfd_moments_grid_update=fd_moments_grid_update_B -o /tmp/hist_ab/gb.o
 *   gcc $F -Ikernels bench/grid_ab.c kernels/fd_simd.c /tmp/hist_ab/ga.o /tmp/hist_ab/gb.o -o /tmp/hist_ab/gab -lm
 *   cd /tmp/hist_ab && ./gab && ./gab 131072 30 4096 2     # [chunk [rounds [cells [wide [cells]]]]]
 *
 * An A/A build prints B / A within 1 %. */
#define _DEFAULT_SOURCE
#define _ISOC11_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <stdint.h>
#include "fastdrift.h"
int fd_moments_grid_update_A(const fd_column *, int64_t *, double *, double, double, int64_t, int64_t *,
                             const uint8_t *, double *, int64_t, int64_t *);
int fd_moments_grid_update_B(const fd_column *, int64_t *, double *, double, double, int64_t, int64_t *,
                             const uint8_t *, double *, int64_t, int64_t *);
int fd_moments_grid_cells_update_A(const fd_column *, int64_t *, double *, double, double, int64_t, const uint8_t *,
                                   double *, int64_t, int64_t *, double *, double *, int64_t, int64_t *);
int fd_moments_grid_cells_update_B(const fd_column *, int64_t *, double *, double, double, int64_t, const uint8_t *,
                                   double *, int64_t, int64_t *, double *, double *, int64_t, int64_t *);

typedef int (*grid_fn)(const fd_column *, int64_t *, double *, double, double, int64_t, int64_t *,
                       const uint8_t *, double *, int64_t, int64_t *);
typedef int (*cells_fn)(const fd_column *, int64_t *, double *, double, double, int64_t, const uint8_t *,
                        double *, int64_t, int64_t *, double *, double *, int64_t, int64_t *);

/* One build's entry points and what a run of it leaves: moments, counts or cell records, the
 * selection and the digest values. */
typedef struct build {
    grid_fn grid;
    cells_fn cells;
    int64_t ints[5], n_out, n_tail;
    double flts[5];
    int64_t *counts;
    double *rec, *out, *tail, *t;
} build;

static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

static void build_init(build *b, grid_fn grid, cells_fn cells, long nc, long n, int rounds)
{
    b->grid = grid;
    b->cells = cells;
    b->counts = calloc(nc, 8);
    b->rec = aligned_alloc(64, (nc * 32 + 63) / 64 * 64);   /* each record on one cache line, as kq.empty_cells places them */
    b->out = malloc(n * 8);    /* room for every value: the grid kernel fails when the selection overflows */
    b->tail = malloc(n * 8);
    b->t = malloc(rounds * 8);
}

/* Count x[0:n] in calls of chunk values from an empty state: ns a value, or -1 on an error status. */
static double build_run(build *b, const double *x, long n, long chunk, double lo, double inv, long nc,
                        const uint8_t *flags, int with_cells)
{
    memset(b->ints, 0, sizeof b->ints);
    memset(b->flts, 0, sizeof b->flts);
    b->flts[0] = INFINITY;
    b->flts[1] = -INFINITY;
    memset(b->counts, 0, nc * 8);
    for (long c = 0; c < nc; ++c) {
        b->rec[4 * c] = b->rec[4 * c + 1] = 0.0;
        b->rec[4 * c + 2] = INFINITY;
        b->rec[4 * c + 3] = -INFINITY;
    }
    b->n_out = b->n_tail = 0;
    const double t0 = now();
    for (long i = 0; i < n; i += chunk) {
        fd_column col = {x + i, 0, 0, 0, n - i < chunk ? n - i : chunk, FD_F64};
        if (with_cells ? b->cells(&col, b->ints, b->flts, lo, inv, nc, flags, b->out, n, &b->n_out, b->rec,
                                  b->tail, n, &b->n_tail)
                       : b->grid(&col, b->ints, b->flts, lo, inv, nc, b->counts, flags, b->out, n, &b->n_out))
            return -1.0;
    }
    return (now() - t0) / n * 1e9;
}

static int build_same(const build *a, const build *b, long nc)
{
    return !memcmp(a->counts, b->counts, nc * 8) && a->n_out == b->n_out && !memcmp(a->out, b->out, a->n_out * 8)
           && !memcmp(a->ints, b->ints, sizeof a->ints) && !memcmp(a->flts, b->flts, sizeof a->flts)
           && !memcmp(a->rec, b->rec, nc * 32) && a->n_tail == b->n_tail && !memcmp(a->tail, b->tail, a->n_tail * 8);
}

int main(int argc, char **argv)
{
    const long chunk = argc > 1 ? atol(argv[1]) : 65536;
    const int rounds = argc > 2 ? atoi(argv[2]) : 30;
    const long nc = argc > 3 ? atol(argv[3]) : 16384;
    const long wide = argc > 4 ? atol(argv[4]) : 0;
    const int with_cells = argc > 5 && !strcmp(argv[5], "cells");
    FILE *fp = fopen("x.bin", "rb");
    if (!fp) {
        fprintf(stderr, "grid_ab: cannot open x.bin (see bench/hist_ab.c for the input)\n");
        return 1;
    }
    fseek(fp, 0, SEEK_END); long n = ftell(fp) / 8; fseek(fp, 0, SEEK_SET);
    double *x = aligned_alloc(64, n * 8 + 64);
    if (fread(x, 8, n, fp) != (size_t)n) return 1;
    fclose(fp);
    double lo = x[0], hi = x[0];
    for (long i = 0; i < n; ++i) { lo = x[i] < lo ? x[i] : lo; hi = x[i] > hi ? x[i] : hi; }
    const double inv = nc / (hi - lo);
    int64_t *cnt = calloc(nc, 8);
    for (long i = 0; i < n; ++i) { double t = (x[i] - lo) * inv; t = t < nc - 1 ? t : nc - 1; cnt[(long)t]++; }
    uint8_t *flags = calloc(nc, 1);
    long acc = 0; int q = 1;
    for (long c = 0; c < nc && q < 10; ++c) { acc += cnt[c]; while (q < 10 && acc > q * (n / 10)) { for (long d = -wide; d <= wide; ++d) if (c + d >= 0 && c + d < nc) flags[c + d] = 1; ++q; } }
    if (with_cells) {   /* the cells below the 1st percentile and above the 99th go to a digest */
        acc = 0;
        for (long c = 0; c < nc; ++c) {
            if (acc < n / 100 || acc + cnt[c] > n - n / 100)
                flags[c] |= FD_GRID_DIGEST;
            acc += cnt[c];
        }
    }
    build a, b;
    build_init(&a, fd_moments_grid_update_A, fd_moments_grid_cells_update_A, nc, n, rounds);
    build_init(&b, fd_moments_grid_update_B, fd_moments_grid_cells_update_B, nc, n, rounds);
    for (int r = 0; r < rounds; ++r) {
        a.t[r] = build_run(&a, x, n, chunk, lo, inv, nc, flags, with_cells);
        b.t[r] = build_run(&b, x, n, chunk, lo, inv, nc, flags, with_cells);
        if (a.t[r] < 0 || b.t[r] < 0)
            return 2;
    }
    if (!build_same(&a, &b, nc)) {
        printf("grid_ab: the two builds differ\n");
        return 3;
    }
    qsort(a.t, rounds, 8, cmpd); qsort(b.t, rounds, 8, cmpd);
    printf("%schunk %ld cells %ld held %ld  A p20 %.3f med %.3f | B p20 %.3f med %.3f ns a value (B/A p20 %.3f)\n",
           with_cells ? "cell records, digest tails 2 % of the values; " : "", chunk, nc, (long)a.n_out,
           a.t[rounds / 5], a.t[rounds / 2], b.t[rounds / 5], b.t[rounds / 2], b.t[rounds / 5] / a.t[rounds / 5]);
    return 0;
}
