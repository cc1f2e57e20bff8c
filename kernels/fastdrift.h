/*
 * fastdrift.h -- the whole C contract of fastdrift's native kernels.
 *
 * Plain C99, no Python.h, no NumPy headers.  Every entry point returns an
 * fd_status and writes its results through pointers; Python turns a non-zero
 * status into an exception in exactly one place (fastdrift.kernels.native).
 * No function here allocates memory: every buffer is owned by the caller.
 * Columns are Arrow arrays read in place: the values buffer, the LSB-first
 * validity bitmap and the array's element offset.
 *
 * This file is also the cffi cdef: build.py strips the preprocessor lines
 * (except simple integer #defines) before handing it to cffi.
 */
#ifndef FASTDRIFT_H
#define FASTDRIFT_H

#include <stdint.h>

#define FD_ABI_VERSION 1

/* ---- status codes ------------------------------------------------------ */
#define FD_OK 0
#define FD_EINVAL 1      /* an argument is out of its documented range      */
#define FD_ETYPE 2       /* the column type is not handled by this kernel   */
#define FD_EGROW 3       /* caller must grow a buffer and resume at *progress */
#define FD_ECORRUPT 4    /* internal state failed a consistency check       */

/* ---- column types (fd_column.type) -------------------------------------- */
#define FD_F64 0
#define FD_F32 1
#define FD_I8 2
#define FD_I16 3
#define FD_I32 4
#define FD_I64 5
#define FD_U8 6
#define FD_U16 7
#define FD_U32 8
#define FD_U64 9
#define FD_BOOL 10       /* Arrow bit-packed booleans                       */
#define FD_STR32 11      /* Arrow string: int32 offsets + utf-8 data        */
#define FD_STR64 12      /* Arrow large_string: int64 offsets + utf-8 data  */

/* One Arrow array, read in place.  Element i of the array is element
 * (offset + i) of the buffers; validity bit (offset + i) set means valid. */
typedef struct fd_column {
    const void *values;      /* fixed-width values; for strings the utf-8 data   */
    const uint8_t *validity; /* LSB-first bitmap, NULL when every value is valid */
    const void *offsets;     /* string offsets (int32/int64), NULL otherwise     */
    int64_t offset;          /* Arrow array offset, in elements                  */
    int64_t length;          /* number of elements                               */
    int32_t type;            /* FD_* column type                                 */
} fd_column;

/* ---- SIMD path ------------------------------------------------------------
 * The hot loops of the histogram, moments and dictionary-index kernels are
 * built once per path from the same source: a scalar build everywhere, and on
 * x86-64 (GCC or clang) AVX2 (with FMA) and AVX-512 (F, VL, BW, DQ) builds chosen at run
 * time.  Every path gives bit-identical results (floating-point sums in one
 * fixed order of 16 lane accumulators, see fd_moments.c).  The process starts
 * on the best path the CPU and OS support.
 * fd_simd_select: want = FD_SIMD_AUTO or a path; FD_EINVAL (path unchanged)
 * if this CPU or build cannot run it; want = FD_SIMD_QUERY changes nothing;
 * *path = the path in use afterwards.
 * Not meant to be called while kernels run on other threads. */
#define FD_SIMD_QUERY -2
#define FD_SIMD_AUTO -1
#define FD_SIMD_SCALAR 0
#define FD_SIMD_AVX2 1
#define FD_SIMD_AVX512 2
int fd_simd_select(int32_t want, int32_t *path);
/* 1 if this CPU and build can run path, else 0. */
int fd_simd_supported(int32_t path);

/* ---- numeric histogram --------------------------------------------------
 * Bins: counts[0] = (-inf, e0), counts[i] = [e(i-1), e(i)), counts[n] =
 * [e(n-1), +inf]; i.e. the bin of x is the number of edges <= x.  Integers
 * are compared after conversion to double.  NaN -> *n_nan, null -> *n_null.
 */
typedef struct fd_hist_index {
    const double *edges;     /* n_edges finite, strictly increasing, followed by
                                n_pad copies of +inf (probe sentinel)          */
    int64_t n_edges;
    int32_t uniform;         /* 0: table; 1: edges equally spaced, bin found by
                                arithmetic and a +-1 fix-up; 2: bin found by
                                arithmetic alone unless the value lies within
                                2^-FD_HIST_ARITH_TOL_LOG2 of a bin's width of
                                a boundary (fd_hist.c, M_ARITH)              */
    int32_t n_probe;         /* fix-up compares after the table lookup          */
    double lo;               /* sub-bucket j covers lo + [j, j+1) / inv_width   */
    double inv_width;
    const int32_t *table;    /* n_table starting bins, one per sub-bucket       */
    int64_t n_table;
} fd_hist_index;

#define FD_HIST_ARITH_TOL_LOG2 12

int fd_hist_update(const fd_column *col, const fd_hist_index *ix,
                   int64_t *counts, int64_t *n_null, int64_t *n_nan);

/* Up to this many edges, runs of valid values are counted by compares
 * (fd_hist.c, hist_cmp; the numba twin's CMP_EDGES). */
#define FD_HIST_CMP_EDGES 16

/* The float32 plan of those compares on the AVX-512 path (fd_hist.c,
 * cmp32_plan), which fd_hist_update makes for every call of 1,024 values
 * or more that takes them (shorter calls compare in double):
 * up[k] = edges[k] rounded up to float; slots[0:*n_slots] the bits of the
 * roundings down that differ from up, each in slot (bits * *mult) >>
 * (32 - log2(*n_slots)) (mod 2^32), the other slots 0x7F800001.  *n_slots = 0
 * where there is no plan (the double compares count) or the path in use is
 * not AVX-512.  up: n_edges floats; slots: room for 64.  FD_EINVAL unless
 * 1 <= n_edges <= FD_HIST_CMP_EDGES. */
int fd_hist_cmp32_plan(const double *edges, int64_t n_edges, float *up, int32_t *slots,
                       uint32_t *mult, int32_t *n_slots);

/* ---- moments ------------------------------------------------------------
 * ints:  [0] n finite, [1] null, [2] NaN, [3] +inf, [4] -inf
 * flts:  [0] min, [1] max, [2] sum, [3] mean, [4] m2 (sum of squared
 *        deviations from the mean), all over finite values only.
 * An empty state is ints = 0, min = +inf, max = -inf, sum = mean = m2 = 0.
 */
int fd_moments_update(const fd_column *col, int64_t *ints, double *flts);

/* Values a block: sums run in 16 lanes within a block, blocks merge with
 * Chan's formula (fd_moments.c), so the block fixes the results' last bits;
 * the numba twin uses the same. */
#define FD_MOM_BLOCK 4096

/* fd_moments_update and fd_grid_count_select (below) in one read of the
 * column: the grid counts and selects each block's finite values while the
 * moments kernel holds them in L1.  Same results as the two calls; the same
 * statuses (FD_EGROW: the selection overflowed cap; moments and counts are
 * complete anyway); out past the final *n_out as fd_grid_select's. */
int fd_moments_grid_update(const fd_column *col, int64_t *ints, double *flts,
                           double lo, double inv_width, int64_t n_cells, int64_t *counts,
                           const uint8_t *flags, double *out, int64_t cap, int64_t *n_out);

/* fd_moments_grid_update that also keeps what a t-digest of the column needs
 * from the grid (a scan's digest: src/fastdrift/sketches/quantiles.py), in a
 * record of four doubles a cell: cells[4 c .. 4 c + 3] are the count (a
 * double, exact below 2**53), the sum (added to in column order), the minimum
 * and the maximum of cell c's finite values (start them at 0, 0, +inf, -inf);
 * and the finite values of cells whose flags have FD_GRID_DIGEST set are
 * appended to tail[*n_tail:], in column order.  Only cells with FD_GRID_HELD
 * set are selected into out.  tail must have room for the whole column
 * (tail_cap - *n_tail >= col->length), else FD_EINVAL with nothing counted.
 * (One record a cell: a value's count, sum and extremes are one or two
 * vector stores, not four scalar ones.) */
#define FD_GRID_HELD 1
#define FD_GRID_DIGEST 2
int fd_moments_grid_cells_update(const fd_column *col, int64_t *ints, double *flts,
                                 double lo, double inv_width, int64_t n_cells,
                                 const uint8_t *flags, double *out, int64_t cap, int64_t *n_out,
                                 double *cells, double *tail, int64_t tail_cap, int64_t *n_tail);

/* Fold a fragment's cell records (fd_moments_grid_cells_update) into the
 * running grid, cell by cell: counts[c] += its count, stats[3 c .. 3 c + 2]
 * (sum, min, max) fold its sum (added in that order), minimum and maximum;
 * and reset the fragment's records to an empty grid (0, 0, +inf, -inf).  A
 * count that is not a whole number in [0, 2**53]: FD_ECORRUPT, nothing
 * folded.  The arrays must not overlap. */
int fd_grid_cells_merge(int64_t *counts, double *stats, double *part_cells, int64_t n_cells);

/* ---- exact order statistics (reference quantiles) -------------------------
 * Two passes over a grid of n_cells equal cells: cell of a finite x is
 * clamp(floor((x - lo) * inv_width), 0, n_cells - 1), computed identically by
 * both functions, so a value is selected exactly when it was counted in a
 * flagged cell.  Nulls, NaN and +-inf are skipped by both.  Used to find
 * exact quantiles by sorting only the cells that hold the wanted ranks.
 * 1 <= n_cells <= FD_GRID_MAX_CELLS (a cell fits an int32), else FD_EINVAL.
 */
#define FD_GRID_MAX_CELLS 2147483647
int fd_grid_count(const fd_column *col, double lo, double inv_width,
                  int64_t n_cells, int64_t *counts);

/* Append the finite values in flagged cells to out (capacity cap), in column
 * order, starting at out[*n_out]; FD_EGROW if they would not fit.  out past
 * the final *n_out (below cap) may be overwritten. */
int fd_grid_select(const fd_column *col, double lo, double inv_width,
                   int64_t n_cells, const uint8_t *flags, double *out,
                   int64_t cap, int64_t *n_out);

/* fd_grid_count and fd_grid_select in one read of the column (same results,
 * counts complete even on FD_EGROW): a grid whose flagged cells are known
 * before the values are. */
int fd_grid_count_select(const fd_column *col, double lo, double inv_width,
                         int64_t n_cells, int64_t *counts, const uint8_t *flags,
                         double *out, int64_t cap, int64_t *n_out);

/* ---- categorical counts -------------------------------------------------
 * An open-addressing hash table whose storage is owned by the caller, shared
 * bit-for-bit with the numba backend.  Ids are dense, in order of first
 * arrival, and never exceed meta[FD_CAT_MAX_IDS]; values arriving once the
 * cap is reached are counted in meta[FD_CAT_OTHER].
 */
#define FD_CAT_N_IDS 0       /* meta index: ids in use                          */
#define FD_CAT_MAX_IDS 1     /* meta index: cardinality cap                     */
#define FD_CAT_OTHER 2       /* meta index: values beyond the cap               */
#define FD_CAT_NULL 3        /* meta index: null values                         */
#define FD_CAT_ARENA_USED 4  /* meta index: bytes of arena in use               */
#define FD_CAT_META_LEN 5
#define FD_CAT_LOAD_DEN 4    /* slots stay at most 1/FD_CAT_LOAD_DEN full (fd_cat.c) */
#define FD_CAT_ID_OTHER -1   /* fd_cat_lookup id: a new key beyond the cap      */
#define FD_CAT_ID_NULL -2    /* fd_cat_lookup id: a null element                */

typedef struct fd_cat_table {
    int32_t *slots;          /* n_slots (power of two) entries, -1 = empty     */
    int64_t n_slots;
    uint64_t *hashes;        /* per id: the key's hash                          */
    int64_t *key_offsets;    /* per id + 1: string key i is arena[ko[i]:ko[i+1]] */
    int64_t *int_keys;       /* per id: integer key                             */
    uint8_t *arena;          /* string key bytes                                */
    int64_t arena_cap;
    int64_t *counts;         /* per id                                          */
    int64_t id_cap;          /* capacity of the per-id arrays                   */
    int64_t *meta;           /* FD_CAT_META_LEN entries, see above              */
} fd_cat_table;

/* Hash of a byte string / of an integer key (exposed for tests). */
uint64_t fd_hash_bytes(const uint8_t *p, int64_t n);
uint64_t fd_hash_int(int64_t v);

/* Count a string (FD_STR32/FD_STR64) or integer column into the table.
 * Returns FD_EGROW with *progress = index of the first unprocessed element
 * when the arena, the per-id arrays or the slot array need to grow (the
 * slots once FD_CAT_LOAD_DEN * (n_ids + 1) > n_slots); the caller grows them
 * (fd_cat_rehash for slots) and calls again from *progress. */
int fd_cat_update(const fd_column *col, fd_cat_table *t, int64_t start,
                  int64_t *progress);

/* Map each element of col (a dictionary's values) to its id, inserting new
 * keys: ids[i] = id, FD_CAT_ID_OTHER beyond the cap, FD_CAT_ID_NULL for a null
 * element.  Nothing is
 * counted.  Same FD_EGROW protocol as fd_cat_update. */
int fd_cat_lookup(const fd_column *col, fd_cat_table *t, int64_t start,
                  int64_t *ids, int64_t *progress);

/* fd_cat_lookup of elements order[0:n_order] of col, in that order: ids[k]
 * is the id of element order[k] (keys inserted in the order's order, as
 * fd_cat_lookup of the column order[] takes would insert them, without the
 * copy).  *progress and start count positions in order.  An entry of order
 * outside [0, col->length): FD_EINVAL, nothing looked up. */
int fd_cat_lookup_order(const fd_column *col, const int64_t *order, int64_t n_order, fd_cat_table *t,
                        int64_t start, int64_t *ids, int64_t *progress);

/* fd_cat_lookup_order's walk, counting instead of mapping: the key of element
 * order[k] of col (inserted when new) gets w[order[k]] (>= 0) added to its
 * count, to FD_CAT_OTHER beyond the cap, to FD_CAT_NULL for a null element:
 * a dictionary's entries with their counts from fd_count_indices, in the
 * order of fd_first_use_order.  FD_EGROW protocol as fd_cat_update, with
 * *pending the key bytes of elements order[*progress:n_order] (0 for integer
 * keys), so that one growth makes room for all of them.  An entry of order
 * outside [0, col->length) or a negative weight ahead: FD_EINVAL, nothing
 * added. */
int fd_cat_add_order(const fd_column *col, const int64_t *order, int64_t n_order, const int64_t *w,
                     fd_cat_table *t, int64_t start, int64_t *progress, int64_t *pending);

/* The entries x of [0, n) with counts[x] > 0, by first[x] ascending (x
 * ascending among equal first[x]): order[0:*n_order], the order in which a
 * dictionary's decoded values first arrive (fd_count_indices' bins and
 * first).  scratch: n entries.  A negative count, or a negative first[x]
 * where counts[x] > 0: FD_EINVAL. */
int fd_first_use_order(const int64_t *counts, const int64_t *first, int64_t n, int64_t *order,
                       int64_t *scratch, int64_t *n_order);

/* Rebuild t->slots (already sized n_slots, any content) from hashes[0:n_ids]. */
int fd_cat_rehash(fd_cat_table *t);

/* Count integer indices (a dictionary array's indices, any signed or
 * unsigned integer type) into bins[0:n_bins]; nulls into *n_null.
 * first: NULL, or n_bins entries: when a valid element i (0 <= i < length,
 * relative to the array's offset) takes bins[x] from 0 to 1, first[x] = i;
 * other entries of first are not written.  So with bins zeroed on entry,
 * first[x] is the position of index x's first occurrence for every x with
 * bins[x] > 0, and ordering those entries by first[] gives the order in
 * which the decoded values arrive.  An index outside [0, n_bins) returns
 * FD_EINVAL with *progress at the bad element; bins and first are then
 * partly updated, so callers count into scratch arrays. */
int fd_count_indices(const fd_column *col, int64_t *bins, int64_t *first, int64_t n_bins,
                     int64_t *n_null, int64_t *progress);

/* Count a boolean column: trues, falses and nulls. */
int fd_bool_count(const fd_column *col, int64_t *n_true, int64_t *n_false,
                  int64_t *n_null);

/* ---- t-digest -----------------------------------------------------------
 * A merging t-digest (Dunning & Ertl 2019) whose clusters span at most one
 * unit of both the k1 and the normalised k2 scale functions (see
 * fd_tdigest.c): at most 2 floor(delta) + 8 centroids whatever the number of
 * values.  Every array is owned by the caller.
 *
 * State (fd_tdigest): centroids means[0:n] (non-decreasing) and integer-
 * valued weights[0:n]; finite values not yet merged are kept in buf as
 * order-preserving 64-bit keys of their float64 bit pattern (buf[0:n_buf]),
 * and centroids of merged digests, in pieces (see fd_tdigest.c), as (key,
 * weight | pure << 63) pairs at its end (buf[buf_cap - 2 n_staged:]), both
 * clustered by the next flush.
 * n_buf + 2 n_staged <= buf_cap.  ints/flts:
 */
#define FD_TD_N_CENTROIDS 0  /* ints: centroids in use                          */
#define FD_TD_N_BUF 1        /* ints: keys in buf                               */
#define FD_TD_N_FINITE 2     /* ints: finite values (centroids, buf, staged)    */
#define FD_TD_NULL 3         /* ints: nulls                                     */
#define FD_TD_NAN 4          /* ints: NaN                                       */
#define FD_TD_POSINF 5       /* ints: +inf                                      */
#define FD_TD_NEGINF 6       /* ints: -inf                                      */
#define FD_TD_N_STAGED 7     /* ints: merged centroids staged at the end of buf */
#define FD_TD_INTS_LEN 8
#define FD_TD_MIN 0          /* flts: smallest finite value merged (+inf if none) */
#define FD_TD_MAX 1          /* flts: largest finite value merged (-inf if none)  */
#define FD_TD_FLTS_LEN 2
#define FD_TD_RADIX_BITS 11  /* radix digit width of the buffer sort            */
#define FD_TD_HIST_LEN 6144  /* 3 digits * 2^FD_TD_RADIX_BITS counters          */

typedef struct fd_tdigest {
    double compression;      /* delta, in [1, 1e6]                              */
    int64_t cap;             /* capacity of means/weights: >= 2 floor(delta) + 8 */
    double *means;
    double *weights;
    int64_t buf_cap;         /* capacity of buf (>= 1)                          */
    uint64_t *buf;
    int64_t *ints;           /* FD_TD_INTS_LEN entries, see above               */
    double *flts;            /* FD_TD_FLTS_LEN entries, see above               */
} fd_tdigest;

/* Work space of a flush, reusable across digests (not state). */
typedef struct fd_tdigest_scratch {
    uint64_t *keys;          /* keys_cap >= the digest's buf_cap                */
    int64_t keys_cap;
    double *means;           /* cap >= the digest's cap                         */
    double *weights;
    int64_t cap;
    uint32_t *hist;          /* FD_TD_HIST_LEN counters                         */
} fd_tdigest_scratch;

/* Add a numeric column: nulls, NaN and +-inf are counted, finite values are
 * buffered and merged into the centroids whenever buf fills up. */
int fd_tdigest_update(const fd_column *col, fd_tdigest *td, fd_tdigest_scratch *s);

/* Merge the buffered values into the centroids (sorting them first). */
int fd_tdigest_flush(fd_tdigest *td, fd_tdigest_scratch *s);

/* Merge other (not modified, not td) into td: its centroids (staged in td's
 * buf when td has one, clustered at once otherwise), staged centroids,
 * buffered values and counters.  Compressed with td's compression, whatever
 * other's is. */
int fd_tdigest_merge(fd_tdigest *td, const fd_tdigest *other, fd_tdigest_scratch *s);

/* Stage n clusters for the next flush, as fd_tdigest_merge stages another
 * digest's centroids but taken whole (not re-clustered in pieces): cluster i
 * has mean means[i] (finite, non-decreasing in i) and integer weight
 * weights[i] in [1, 2^53), and pure[i] != 0 when it holds copies of its mean
 * only; every value they stand for lies in [mn, mx] (finite; the digest's
 * min and max take them).  td needs a buffer (buf_cap >= 2); a full one is
 * flushed on the way.  Bad arguments: FD_EINVAL, nothing staged. */
int fd_tdigest_add_clusters(fd_tdigest *td, const double *means, const double *weights,
                            const uint8_t *pure, int64_t n, double mn, double mx, fd_tdigest_scratch *s);

/* Queries on a flushed digest (FD_EINVAL if its buffer is not empty).
 * quantile: out[i] = estimate of np.quantile(all non-NaN values, q[i]) with
 * -inf/+inf counted at the ends; q[i] must be in [0, 1] (FD_EINVAL
 * otherwise, *bad = i).  cdf: out[i] = estimated fraction of non-NaN values
 * <= x[i] (NaN for a NaN x).  Both write NaN for an empty digest; work
 * holds 4 * (n_centroids + 2) doubles (FD_TD_WORK(cap) is always enough).
 * The quantile function is a monotone piecewise cubic through bias-corrected
 * knots at the centroids' mid-ranks (see fd_tdigest.c); cdf is its inverse. */
#define FD_TD_WORK(cap) (4 * ((cap) + 2))
int fd_tdigest_quantile(const fd_tdigest *td, const double *q, int64_t n, double *out,
                        double *work, int64_t *bad);
int fd_tdigest_cdf(const fd_tdigest *td, const double *x, int64_t n, double *out, double *work);

/* Sort n finite doubles in place (the digest's buffer sort, exposed for
 * tests and benchmarks); tmp holds n keys. */
int fd_tdigest_sort(double *x, int64_t n, uint64_t *keys, uint64_t *tmp, uint32_t *hist);

/* ---- binary classification performance ---------------------------------
 * Folds rows (score, label, weight) of a binary classifier into per-class
 * bin counts and running sums (src/fastdrift/sketches/performance.py owns
 * the layout).  The bin of a score, monotone in the score:
 *   probability (margin = 0), scores in [0, 1]: t = min(s, 1 - s);
 *     key = octave of t above 2^FD_PERF_EMIN times 2^shift + the top shift
 *     mantissa bits of t (0 below 2^FD_PERF_EMIN, at most K - 1 with
 *     K = 63 * 2^shift + 1); bin = key for s < 0.5, 2K - 1 - key otherwise;
 *   margin (margin = 1), finite scores: t = |s|, K = 128 * 2^shift;
 *     bin = K - 1 - key for s < 0, K + key otherwise.
 * n_bins = 2K.  Classes: 0 negative, 1 positive, 2 unlabelled (labels NULL:
 * every row).  Labels are bytes: 0 and 1 are labels; with label_coded = 1,
 * 2 means unlabelled and anything else not binary; with label_coded = 0
 * anything but 0 and 1 is not binary.
 * Rows not counted go to rejected[FD_PERF_REJ_*] (the first reason that
 * applies): a null score (score_validity: LSB-first bitmap from bit
 * score_offset, or NULL), NaN, out of range (probability outside [0, 1];
 * margin not finite), label not binary, weight negative, NaN or above 2^64.
 * Counted rows: counts[class * n_bins + bin] += 1 (when counts is given:
 * NULL counts only the sums and rejects) and, when wsum is given,
 * wsum[class * n_bins + bin] += weight (1 without weights); when vmin/vmax
 * are given, the smallest and largest score of each bin (any class); when
 * spread is given, spread[2 * bin] and spread[2 * bin + 1] add the weighted d
 * and d^2 (any class), d in [0, 1) the position of t inside its bin (its
 * mantissa bits below the key's).
 * sums (FD_PERF_N_SUMS): [0] labelled weight, [1] positive weight, [2] log
 * loss (probability clipped to [2^-52, 1 - 2^-52]; margins: the exact
 * log-sigmoid), [3] Brier, [4] labelled probability, [5] unlabelled weight,
 * [6] unlabelled probability; weighted sums.  FD_EINVAL: a bad argument
 * (nothing written). */
#define FD_PERF_EMIN -64
#define FD_PERF_N_SUMS 7
#define FD_PERF_N_REJECT 5
int fd_perf_update(const double *scores, const uint8_t *score_validity, int64_t score_offset,
                   const uint8_t *labels, int32_t label_coded, const double *weights, int64_t n,
                   int32_t margin, int32_t shift, int64_t n_bins,
                   int64_t *counts, double *wsum, double *vmin, double *vmax,
                   double *spread, double *sums, int64_t *rejected);

/* ---- exact sums ------------------------------------------------------------
 * Adds sum_i a[i] * b[i] * c[i] exactly into per-exponent integer accumulators
 * (b or c NULL: a factor 1; flags & FD_EXACT_ABS: |a[i] * b[i] * c[i]|).  Each
 * product is split exactly into doubles (Dekker's two-product with Veltkamp's
 * split: a b = p1 + e1, p1 c = p2 + e2, e1 c = p3 + e3), exact while no factor
 * or partial product overflows (magnitudes below 2**996) or underflows.  Each
 * double is s * m * 2**(k - 1075) with s = +-1, m < 2**53 and k = max(biased
 * exponent, 1) in [1, 2046]; acc[2 k] += s * (m >> 26) and acc[2 k + 1] +=
 * s * (m & (2**26 - 1)).  acc holds 2 * FD_EXACT_BINS int64 accumulators; it
 * is added to, so calls can share it, and stays exact for 2**34 rows in all.
 * A NaN or infinite term stops the call with FD_EINVAL, *bad = its row (acc
 * then holds part of the rows: the caller drops it). */
#define FD_EXACT_BINS 2047
#define FD_EXACT_ABS 1
int fd_exact_dot(const double *a, const double *b, const double *c, int64_t n, int32_t flags,
                 int64_t *acc, int64_t *bad);

/* ---- segmented kernels (fd_seg.c) -----------------------------------------
 * codes: one int32 segment code per element of col (element i, relative to
 * the array's offset), each in [0, n_seg); a code outside returns FD_EINVAL
 * with *bad = its element (outputs then partly written: callers use scratch).
 *
 * fd_seg_scatter: stable counting sort of a fixed-width numeric column (any
 * FD_F64..FD_U64 type) by code, in the column's own type.  pos[s] is where
 * segment s's next element goes in out (callers pass the exclusive prefix
 * sums of the per-segment element counts) and is advanced past each one;
 * a position outside [0, n_out) returns FD_EINVAL with *bad = the element.
 * out_valid (required when col has a validity bitmap, else may be NULL) is
 * an LSB-first bitmap over out, zeroed by the caller; a valid element sets
 * its bit (every element of a column without a bitmap).  A null element's
 * slot in out holds its (meaningless) value. */
int fd_seg_scatter(const fd_column *col, const int32_t *codes, int32_t n_seg, int64_t *pos,
                   void *out, int64_t n_out, uint8_t *out_valid, int64_t *bad);

/* fd_count_indices per segment: a valid index x of element i with code s
 * adds 1 to bins[s * n_bins + x] (and sets first[s * n_bins + x] = i when
 * that entry goes from 0 to 1; first may be NULL); a null adds 1 to
 * n_null[s].  An index outside [0, n_bins): FD_EINVAL, *bad = i. */
int fd_seg_count_indices(const fd_column *col, const int32_t *codes, int32_t n_seg, int64_t n_bins,
                         int64_t *bins, int64_t *first, int64_t *n_null, int64_t *bad);

/* fd_hist_update / fd_moments_update per segment in one call: part j is
 * elements [starts[j], starts[j] + lens[j]) of col (a column grouped by
 * fd_seg_scatter), counted on its own into state row j -- counts + j *
 * (n_edges + 1) and specials + 2j ([null, nan]); ints + 5j and flts + 5j --
 * exactly as the single call on that stretch.  A part outside col returns
 * FD_EINVAL before anything is counted; a kernel error returns its status
 * (earlier parts counted: callers use scratch). */
int fd_seg_hist_update(const fd_column *col, const fd_hist_index *ix, int32_t n_part,
                       const int64_t *starts, const int64_t *lens, int64_t *counts, int64_t *specials);
int fd_seg_moments_update(const fd_column *col, int32_t n_part, const int64_t *starts, const int64_t *lens,
                          int64_t *ints, double *flts);

/* ---- t-digests of segments (fd_tdigest.c) ---------------------------------
 * fd_tdigest_update per part in one call: part j is elements [starts[j],
 * starts[j] + lens[j]) of col (a column grouped by fd_seg_scatter), added to
 * tds[j] exactly as fd_tdigest_update on that stretch alone would add it (the
 * same digest may not appear twice).  With FD_TD_PARTS_FLUSH each digest is
 * flushed after its part, and a digest with nothing pending may have no
 * buffer of its own: work (work_cap keys) stands in for it during the call,
 * so it flushes where a buffer of work_cap keys would, and it ends with the
 * buf and buf_cap it came with.  Other digests need their own buffer for
 * their part (as fd_tdigest_update).  Every digest and part is checked
 * before anything is added (FD_EINVAL, FD_ECORRUPT); a flush that fails
 * later returns its status with the earlier parts added. */
#define FD_TD_PARTS_FLUSH 1
int fd_tdigest_update_parts(const fd_column *col, int32_t n_part, const int64_t *starts, const int64_t *lens,
                            fd_tdigest *const *tds, fd_tdigest_scratch *s, int32_t flags, uint64_t *work,
                            int64_t work_cap);

/* fd_tdigest_flush of n digests in one call (checked first, as above). */
int fd_tdigest_flush_parts(fd_tdigest *const *tds, int32_t n, fd_tdigest_scratch *s);

/* ---- segment positions (fd_seg.c) ------------------------------------------
 * fd_seg_positions: where fd_seg_scatter would write each element, made once
 * for a batch's codes so every column of it is grouped without a counting
 * sort of its own: dest[i] = pos[codes[i]]++ (pos as for fd_seg_scatter).
 * A code outside [0, n_seg), or a position outside [0, n_out) (n_out at most
 * INT32_MAX), returns FD_EINVAL with *bad = the element.
 * fd_seg_scatter_to: out[dest[i]] = element i of col (col's length of
 * dest), out_valid as for fd_seg_scatter: the same out and out_valid as
 * fd_seg_scatter with the codes and pos that made dest.  A position outside
 * [0, n_out) returns FD_EINVAL with *bad = the element. */
int fd_seg_positions(const int32_t *codes, int64_t n, int32_t n_seg, int64_t *pos, int64_t n_out,
                     int32_t *dest, int64_t *bad);
int fd_seg_scatter_to(const fd_column *col, const int32_t *dest, void *out, int64_t n_out,
                      uint8_t *out_valid, int64_t *bad);

/* fd_cat_lookup per segment (fd_cat.c): the keys of col inserted into t as
 * fd_cat_lookup inserts them (t's counts untouched), and instead of ids, a
 * valid element i with code s and id x adds 1 to bins[s * width + x] (and
 * sets first[s * width + x] = first_base + i when it goes from 0 to 1;
 * first may be NULL); a null adds 1 to n_null[s].  width is at least t->id_cap.  Same
 * FD_EGROW protocol as fd_cat_lookup (the caller regrows bins and first to
 * the new id_cap, rows kept, before calling again).  A code outside
 * [0, n_seg), an id at or past width, or a key past t's cap: FD_EINVAL with
 * *bad = the element (outputs partly written: callers use scratch). */
int fd_seg_cat_count(const fd_column *col, fd_cat_table *t, int64_t start, const int32_t *codes,
                     int32_t n_seg, int64_t width, int64_t *bins, int64_t *first, int64_t first_base,
                     int64_t *n_null, int64_t *progress, int64_t *bad);

/* fd_seg_short_keys (fd_seg.c): a segment column of short strings keyed
 * without a general hash table.  Key k is words[k] (its bytes as a
 * little-endian word, zero-padded) and lens[k] (0..8; 9 for null); slots
 * (n_slots, a power of two, -1 = empty) index them by a multiplicative hash.
 * Each element of col (FD_STR32/FD_STR64) gets ids[i] = its key's id, new
 * keys numbered in order of first arrival from *n_keys (updated).  Returns
 * FD_EGROW with *progress = i at the first element longer than 8 bytes or
 * whose new key would pass max_keys or fill half the slots (the caller keys
 * the column otherwise); FD_EINVAL on bad offsets. */
int fd_seg_short_keys(const fd_column *col, uint64_t *words, int32_t *lens, int64_t max_keys, int32_t *slots,
                      int64_t n_slots, int64_t *n_keys, int32_t *ids, int64_t *progress);

#endif /* FASTDRIFT_H */
