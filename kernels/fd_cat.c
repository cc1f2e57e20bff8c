/* fd_cat.c -- categorical counts over a caller-owned open-addressing table.
 *
 * The table layout (slots, hashes, arena, ...) is part of the contract with
 * the numba backend (src/fastdrift/kernels/numba_cat.py): both backends
 * must hash identically and probe identically so that a table filled by one
 * can be continued, merged or compared by the other.  Any change to the hash
 * or probing here must be mirrored there, and the tests compare the two
 * bit for bit.
 */
#include "fd_internal.h"
#if FD_X86_SIMD
#include <immintrin.h>
#endif

/* ---- hashing -------------------------------------------------------------
 * Constants: golden ratio (K1), murmur3/xxhash primes (K2, fmix), pi (SEED).
 * The body is murmur3's 64-bit lane mix applied to 8-byte little-endian
 * words; it is deliberately simple so numba can replicate it exactly. */
#define FD_K1 0x9E3779B97F4A7C15ULL
#define FD_K2 0xC2B2AE3D27D4EB4FULL
#define FD_SEED 0x243F6A8885A308D3ULL
#define FD_C3 0x52DCE729ULL

static inline uint64_t fd_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fd_fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33;
    k *= 0xC4CEB9FE1A85EC53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t fd_mix_word(uint64_t h, uint64_t w)
{
    w *= FD_K2;
    w = fd_rotl(w, 31);
    w *= FD_K1;
    h ^= w;
    h = fd_rotl(h, 27);
    return h * 5 + FD_C3;
}

/* The hash is defined on little-endian words so that it is the same on
 * every host (tables are serialized and merged across machines). */
static inline uint64_t fd_load_le64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

uint64_t fd_hash_bytes(const uint8_t *p, int64_t n)
{
    /* Mixing the length in first separates "a" from "a\0": both have the
     * same zero-padded tail word. */
    uint64_t h = FD_SEED ^ ((uint64_t)n * FD_K1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = fd_mix_word(h, fd_load_le64(p + i));
    if (i < n) {
        uint64_t w = 0;
        int64_t j;
        /* Byte by byte rather than memcpy so the result does not depend on
         * host endianness. */
        for (j = 0; j < n - i; j++)
            w |= (uint64_t)p[i + j] << (8 * j);
        h = fd_mix_word(h, w);
    }
    return fd_fmix64(h);
}

/* fd_hash_bytes with the tail read as one masked word instead of byte by
 * byte, when the 8-byte load stays below `end` (the end of the column's data,
 * which the caller guarantees readable).  Same value as fd_hash_bytes: the
 * masked little-endian word equals the zero-padded tail. */
static inline uint64_t fd_hash_bytes_bounded(const uint8_t *p, int64_t n, const uint8_t *end)
{
    uint64_t h = FD_SEED ^ ((uint64_t)n * FD_K1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = fd_mix_word(h, fd_load_le64(p + i));
    if (i < n) {
        const int64_t rem = n - i;
        uint64_t w;
        if (p + i + 8 <= end) {
            w = fd_load_le64(p + i) & (~0ULL >> (8 * (8 - rem)));
        } else {
            int64_t j;
            w = 0;
            for (j = 0; j < rem; j++)
                w |= (uint64_t)p[i + j] << (8 * j);
        }
        h = fd_mix_word(h, w);
    }
    return fd_fmix64(h);
}

uint64_t fd_hash_int(int64_t v)
{
    return fd_fmix64((uint64_t)v);
}

/* ---- table helpers ------------------------------------------------------ */

/* Result of fd_find_or_insert besides an id >= 0 and FD_CAT_ID_OTHER. */
#define FD_ID_GROW (-3)   /* new key, a buffer must grow before inserting */

static int fd_table_ok(const fd_cat_table *t, int strings)
{
    const int64_t *m = t->meta;
    if (m == 0 || t->slots == 0 || t->hashes == 0 || t->counts == 0)
        return FD_EINVAL;
    if (t->n_slots < 2 || (t->n_slots & (t->n_slots - 1)) != 0 || t->n_slots > INT32_MAX)
        return FD_EINVAL;
    if (m[FD_CAT_MAX_IDS] < 0 || m[FD_CAT_MAX_IDS] > INT32_MAX || t->id_cap < 0)
        return FD_EINVAL;
    if (strings ? (t->key_offsets == 0 || t->arena_cap < 0) : (t->int_keys == 0))
        return FD_EINVAL;
    /* The probe loops terminate only because at least half the slots are
     * empty; a table that breaks this invariant would hang, not just
     * miscount. */
    if (m[FD_CAT_N_IDS] < 0 || m[FD_CAT_N_IDS] > t->id_cap
        || m[FD_CAT_N_IDS] > m[FD_CAT_MAX_IDS] || 2 * m[FD_CAT_N_IDS] > t->n_slots)
        return FD_ECORRUPT;
    if (strings && (m[FD_CAT_ARENA_USED] < 0 || m[FD_CAT_ARENA_USED] > t->arena_cap
                    || t->key_offsets[m[FD_CAT_N_IDS]] != m[FD_CAT_ARENA_USED]))
        return FD_ECORRUPT;
    return FD_OK;
}

/* The table as the hot loop sees it: every field a local, so stores into
 * counts[] cannot alias (and force reloads of) the table's pointers and
 * counters, which they could through fd_cat_table's int64_t fields.  After
 * inlining, the compiler keeps these in registers; fd_ctx_store writes the
 * counters back on every exit. */
typedef struct fd_ctx {
    int32_t *slots;
    uint64_t mask;
    uint64_t *hashes;
    const int64_t *ko;       /* key_offsets */
    int64_t *ko_w;
    int64_t *ik;             /* int_keys */
    uint8_t *arena;
    int64_t arena_cap, id_cap, n_slots;
    int64_t *counts;
    int64_t n_ids, max_ids, other, nul, used;
} fd_ctx;

static inline void fd_ctx_load(fd_ctx *c, const fd_cat_table *t)
{
    c->slots = t->slots;
    c->mask = (uint64_t)t->n_slots - 1;
    c->hashes = t->hashes;
    c->ko = t->key_offsets;
    c->ko_w = t->key_offsets;
    c->ik = t->int_keys;
    c->arena = t->arena;
    c->arena_cap = t->arena_cap;
    c->id_cap = t->id_cap;
    c->n_slots = t->n_slots;
    c->counts = t->counts;
    c->n_ids = t->meta[FD_CAT_N_IDS];
    c->max_ids = t->meta[FD_CAT_MAX_IDS];
    c->other = t->meta[FD_CAT_OTHER];
    c->nul = t->meta[FD_CAT_NULL];
    c->used = t->meta[FD_CAT_ARENA_USED];
}

static inline void fd_ctx_store(const fd_ctx *c, fd_cat_table *t)
{
    t->meta[FD_CAT_N_IDS] = c->n_ids;
    t->meta[FD_CAT_OTHER] = c->other;
    t->meta[FD_CAT_NULL] = c->nul;
    t->meta[FD_CAT_ARENA_USED] = c->used;
}

/* Room for one more id (and n more arena bytes)?  Checked only on the
 * insertion path, so counting known keys never pays for it.  The slot array
 * is kept at most 1/4 full (not 1/2): each extra linear probe is a likely
 * mispredicted branch, and at 1/4 a hit needs ~1.17 probes instead of ~1.5
 * (bench/bench_categorical.py times the string and integer tables).
 * FD_CAT_LOAD_DEN is in the header: cat.py grows the slots by the same rule
 * and numba_cat.py inserts by it, so both backends build one layout. */
static inline int fd_must_grow(const fd_ctx *c, int64_t arena_bytes)
{
    return c->n_ids >= c->id_cap || FD_CAT_LOAD_DEN * (c->n_ids + 1) > c->n_slots
           || c->used + arena_bytes > c->arena_cap;
}

/* Byte equality for short keys without a libc call per value: most
 * categories are a few words long. */
static inline int fd_key_eq(const uint8_t *a, const uint8_t *b, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return 0;
    }
    for (; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int64_t fd_insert_str(fd_ctx *c, uint64_t s, uint64_t h, const uint8_t *p, int64_t n)
{
    const int64_t id = c->n_ids;
    if (id >= c->max_ids)
        return FD_CAT_ID_OTHER;
    if (fd_must_grow(c, n))
        return FD_ID_GROW;
    if (n > 0)
        memcpy(c->arena + c->used, p, (size_t)n);
    c->used += n;
    c->ko_w[id + 1] = c->used;
    c->hashes[id] = h;
    c->counts[id] = 0;
    c->slots[s] = (int32_t)id;
    c->n_ids = id + 1;
    return id;
}

static inline int64_t fd_find_or_insert_str(fd_ctx *c, const uint8_t *p, int64_t n,
                                            const uint8_t *end)
{
    const uint64_t h = fd_hash_bytes_bounded(p, n, end);
    uint64_t s = h & c->mask;
    for (;;) {
        const int32_t id = c->slots[s];
        if (id < 0)
            break;
        if (c->hashes[id] == h) {
            const int64_t a = c->ko[id];
            if (c->ko[id + 1] - a == n && fd_key_eq(c->arena + a, p, n))
                return id;
        }
        s = (s + 1) & c->mask;
    }
    return fd_insert_str(c, s, h, p, n);
}

static inline int64_t fd_find_or_insert_int(fd_ctx *c, int64_t v)
{
    const uint64_t h = fd_hash_int(v);
    uint64_t s = h & c->mask;
    int64_t id;
    for (;;) {
        const int32_t found = c->slots[s];
        if (found < 0)
            break;
        if (c->ik[found] == v)
            return found;
        s = (s + 1) & c->mask;
    }
    id = c->n_ids;
    if (id >= c->max_ids)
        return FD_CAT_ID_OTHER;
    if (fd_must_grow(c, 0))
        return FD_ID_GROW;
    c->ik[id] = v;
    c->hashes[id] = h;
    c->counts[id] = 0;
    c->slots[s] = (int32_t)id;
    c->n_ids = id + 1;
    return id;
}

/* One loop body for both entry points: ids == NULL means "count", else
 * "record the id".  The branch on ids is loop-invariant, so the compiler
 * unswitches it. */
#define FD_CAT_EMIT(i, id)                                      \
    do {                                                        \
        if (ids) {                                              \
            ids[i] = (id);                                      \
        } else if ((id) >= 0) {                                 \
            c.counts[id]++;                                     \
        } else {                                                \
            c.other++;                                          \
        }                                                       \
    } while (0)

#define FD_CAT_NULL_EMIT(i)                                     \
    do {                                                        \
        if (ids)                                                \
            ids[i] = FD_CAT_ID_NULL;                            \
        else                                                    \
            c.nul++;                                            \
    } while (0)

#define FD_CAT_GROW_EXIT(i)                                     \
    do {                                                        \
        fd_ctx_store(&c, t);                                    \
        *progress = (i);                                        \
        return FD_EGROW;                                        \
    } while (0)

/* Element e of the column for output i: i itself, or order[i] (checked to
 * lie in the column before the loop). */
#define FD_CAT_ELEM(i) (order ? order[i] : (i))

#define FD_CAT_STR_LOOP(OT)                                                   \
    do {                                                                      \
        const OT *o = (const OT *)col->offsets + off;                         \
        const uint8_t *end = data + o[col->length];                           \
        for (i = start; i < n; i++) {                                         \
            int64_t id;                                                       \
            const int64_t e = FD_CAT_ELEM(i);                                 \
            if (bits && !fd_valid(bits, off + e)) {                           \
                FD_CAT_NULL_EMIT(i);                                          \
                continue;                                                     \
            }                                                                 \
            id = fd_find_or_insert_str(&c, data + o[e], (int64_t)o[e + 1] - o[e], end); \
            if (id == FD_ID_GROW)                                             \
                FD_CAT_GROW_EXIT(i);                                          \
            FD_CAT_EMIT(i, id);                                               \
        }                                                                     \
    } while (0)

#define FD_CAT_INT_LOOP(VT)                                                   \
    do {                                                                      \
        const VT *v = (const VT *)col->values + off;                          \
        for (i = start; i < n; i++) {                                         \
            int64_t id;                                                       \
            const int64_t e = FD_CAT_ELEM(i);                                 \
            if (bits && !fd_valid(bits, off + e)) {                           \
                FD_CAT_NULL_EMIT(i);                                          \
                continue;                                                     \
            }                                                                 \
            id = fd_find_or_insert_int(&c, (int64_t)v[e]);                    \
            if (id == FD_ID_GROW)                                             \
                FD_CAT_GROW_EXIT(i);                                          \
            FD_CAT_EMIT(i, id);                                               \
        }                                                                     \
    } while (0)

/* The loop over a column of any key type: string chunks (32- or 64-bit
 * offsets) or integers.  Arrow may give a column of empty strings no data
 * buffer at all; data then points at a dummy byte rather than NULL.  Expanded
 * with whichever FD_CAT_EMIT / FD_CAT_NULL_EMIT are defined at the use. */
#define FD_CAT_COLUMN_LOOP()                                                  \
    do {                                                                      \
        if (strings) {                                                        \
            static const uint8_t empty = 0;                                   \
            const uint8_t *data = col->values ? (const uint8_t *)col->values : &empty; \
            if (col->type == FD_STR32)                                        \
                FD_CAT_STR_LOOP(int32_t);                                     \
            else                                                              \
                FD_CAT_STR_LOOP(int64_t);                                     \
        } else {                                                              \
            switch (col->type) {                                              \
            case FD_I8: FD_CAT_INT_LOOP(int8_t); break;                       \
            case FD_I16: FD_CAT_INT_LOOP(int16_t); break;                     \
            case FD_I32: FD_CAT_INT_LOOP(int32_t); break;                     \
            case FD_I64: FD_CAT_INT_LOOP(int64_t); break;                     \
            case FD_U8: FD_CAT_INT_LOOP(uint8_t); break;                      \
            case FD_U16: FD_CAT_INT_LOOP(uint16_t); break;                    \
            case FD_U32: FD_CAT_INT_LOOP(uint32_t); break;                    \
            default: FD_CAT_INT_LOOP(uint64_t); break; /* bit pattern kept */ \
            }                                                                 \
        }                                                                     \
    } while (0)

/* fd_cat_update (ids NULL) and fd_cat_lookup over the column's elements, or
 * over elements order[0:n_order] (a lookup; order NULL: every element). */
/* The checks fd_cat_run and fd_cat_add_run share, in this order: the
 * column's type (*strings), the table, start in [0, n], each order[i] ahead in
 * the column (and, with w, w[order[i]] >= 0), the column's buffers.  FD_OK:
 * run the loop from start; FD_CAT_NOTHING: nothing ahead (*progress = n). */
#define FD_CAT_NOTHING (-1)
static int fd_cat_check(const fd_column *col, const int64_t *order, int64_t n, const int64_t *w,
                        fd_cat_table *t, int64_t start, int *strings)
{
    int64_t i;
    int rc;

    if (col->type == FD_STR32 || col->type == FD_STR64)
        *strings = 1;
    else if (col->type >= FD_I8 && col->type <= FD_U64)
        *strings = 0;
    else
        return FD_ETYPE;
    rc = fd_table_ok(t, *strings);
    if (rc != FD_OK)
        return rc;
    if (start < 0 || start > n || col->offset < 0 || n < 0 || col->length < 0)
        return FD_EINVAL;
    for (i = start; order && i < n; i++)
        if (order[i] < 0 || order[i] >= col->length || (w && w[order[i]] < 0))
            return FD_EINVAL;
    if (start == n)
        return FD_CAT_NOTHING;
    if (*strings ? col->offsets == 0 : col->values == 0)
        return FD_EINVAL;
    return FD_OK;
}

static int fd_cat_run(const fd_column *col, const int64_t *order, int64_t n_order, fd_cat_table *t,
                      int64_t start, int64_t *ids, int64_t *progress)
{
    const uint8_t *bits;
    int64_t off, n, i;
    int rc, strings;
    fd_ctx c;

    if (col == 0 || t == 0 || progress == 0)
        return FD_EINVAL;
    *progress = start;
    n = order ? n_order : col->length;
    rc = fd_cat_check(col, order, n, 0, t, start, &strings);
    if (rc == FD_CAT_NOTHING) {
        *progress = n;
        return FD_OK;
    }
    if (rc != FD_OK)
        return rc;
    off = col->offset;
    bits = col->validity;
    fd_ctx_load(&c, t);

    FD_CAT_COLUMN_LOOP();
    fd_ctx_store(&c, t);
    *progress = n;
    return FD_OK;
}

int fd_cat_update(const fd_column *col, fd_cat_table *t, int64_t start,
                  int64_t *progress)
{
    return fd_cat_run(col, 0, 0, t, start, 0, progress);
}

int fd_cat_lookup(const fd_column *col, fd_cat_table *t, int64_t start,
                  int64_t *ids, int64_t *progress)
{
    /* ids == NULL selects counting mode in fd_cat_run; only harmless
     * for a column with no elements to map. */
    if (ids == 0 && col != 0 && col->length > 0)
        return FD_EINVAL;
    return fd_cat_run(col, 0, 0, t, start, ids, progress);
}

int fd_cat_lookup_order(const fd_column *col, const int64_t *order, int64_t n_order, fd_cat_table *t,
                        int64_t start, int64_t *ids, int64_t *progress)
{
    static const int64_t no_order = 0;   /* an empty order may come as NULL */

    if (n_order < 0 || (n_order > 0 && (order == 0 || ids == 0)))
        return FD_EINVAL;
    return fd_cat_run(col, n_order ? order : &no_order, n_order, t, start, ids, progress);
}

/* fd_cat_lookup_order's walk, counting: element order[i]'s key gets w[order[i]]
 * added to its count (to other beyond the cap, to null for a null element).
 * The checks are fd_cat_run's, and every w[order[i]] ahead must be >= 0. */
static int fd_cat_add_run(const fd_column *col, const int64_t *order, int64_t n, const int64_t *w,
                          fd_cat_table *t, int64_t start, int64_t *progress)
{
    const uint8_t *bits;
    int64_t off, i;
    int rc, strings;
    fd_ctx c;

    if (col == 0 || t == 0 || progress == 0 || n < 0 || (n > 0 && (order == 0 || w == 0)))
        return FD_EINVAL;
    *progress = start;
    rc = fd_cat_check(col, order, n, w, t, start, &strings);
    if (rc == FD_CAT_NOTHING) {
        *progress = n;
        return FD_OK;
    }
    if (rc != FD_OK)
        return rc;
    off = col->offset;
    bits = col->validity;
    fd_ctx_load(&c, t);

#undef FD_CAT_EMIT
#undef FD_CAT_NULL_EMIT
#define FD_CAT_EMIT(i, id)                                      \
    do {                                                        \
        if ((id) >= 0)                                          \
            c.counts[id] += w[order[i]];                        \
        else                                                    \
            c.other += w[order[i]];                             \
    } while (0)
#define FD_CAT_NULL_EMIT(i) (c.nul += w[order[i]])
    FD_CAT_COLUMN_LOOP();
    fd_ctx_store(&c, t);
    *progress = n;
    return FD_OK;
}

int fd_cat_add_order(const fd_column *col, const int64_t *order, int64_t n_order, const int64_t *w,
                     fd_cat_table *t, int64_t start, int64_t *progress, int64_t *pending)
{
    int rc;
    int64_t i, bytes = 0;

    if (pending == 0)
        return FD_EINVAL;
    *pending = 0;
    rc = fd_cat_add_run(col, order, n_order, w, t, start, progress);
    if (rc != FD_EGROW || (col->type != FD_STR32 && col->type != FD_STR64))
        return rc;
    /* The key bytes of the elements still to add, each counted once: room for
     * every one of them in one growth (the caller's _make_room). */
    for (i = *progress; i < n_order; i++) {
        const int64_t e = col->offset + order[i];
        bytes += col->type == FD_STR32
            ? (int64_t)((const int32_t *)col->offsets)[e + 1] - ((const int32_t *)col->offsets)[e]
            : ((const int64_t *)col->offsets)[e + 1] - ((const int64_t *)col->offsets)[e];
    }
    *pending = bytes;
    return rc;
}

/* LSD radix sort of idx[0:m] by key[idx[k]] (keys >= 0, at most max_key),
 * stable, 8 bits a pass; tmp holds m entries.  The result ends in idx. */
static void fd_sort_by_key(int64_t *idx, int64_t *tmp, int64_t m, const int64_t *key, int64_t max_key)
{
    int64_t *src = idx, *dst = tmp;
    int shift;
    for (shift = 0; shift < 63 && (max_key >> shift) != 0; shift += 8) {
        int64_t pos[256] = {0};
        int64_t k, run = 0;
        int d;
        for (k = 0; k < m; k++)
            pos[(key[src[k]] >> shift) & 255]++;
        for (d = 0; d < 256; d++) {
            const int64_t c = pos[d];
            if (c == m)
                break;       /* one digit for every key: this pass would copy */
            pos[d] = run;
            run += c;
        }
        if (d < 256)
            continue;
        for (k = 0; k < m; k++)
            dst[pos[(key[src[k]] >> shift) & 255]++] = src[k];
        { int64_t *x = src; src = dst; dst = x; }
    }
    if (src != idx)
        memcpy(idx, src, (size_t)m * sizeof *idx);
}

int fd_first_use_order(const int64_t *counts, const int64_t *first, int64_t n, int64_t *order,
                       int64_t *scratch, int64_t *n_order)
{
    int64_t x, m = 0, max_key = 0;

    if (n_order == 0 || n < 0 || (n > 0 && (counts == 0 || first == 0 || order == 0 || scratch == 0)))
        return FD_EINVAL;
    *n_order = 0;
    for (x = 0; x < n; x++) {
        if (counts[x] < 0)
            return FD_EINVAL;
        if (counts[x] > 0) {
            if (first[x] < 0)
                return FD_EINVAL;
            max_key |= first[x];
            order[m++] = x;
        }
    }
    if (m <= 32) {
        /* Insertion sort: the radix sort's 2 KiB of counters a pass cost more. */
        int64_t k;
        for (k = 1; k < m; k++) {
            const int64_t v = order[k], f = first[v];
            int64_t j = k;
            for (; j > 0 && first[order[j - 1]] > f; j--)
                order[j] = order[j - 1];
            order[j] = v;
        }
    } else {
        fd_sort_by_key(order, scratch, m, first, max_key);
    }
    *n_order = m;
    return FD_OK;
}

int fd_cat_rehash(fd_cat_table *t)
{
    int64_t s, id, n_ids;
    uint64_t mask;
    if (t == 0 || t->meta == 0 || t->slots == 0)
        return FD_EINVAL;
    if (t->n_slots < 2 || (t->n_slots & (t->n_slots - 1)) != 0 || t->n_slots > INT32_MAX)
        return FD_EINVAL;
    n_ids = t->meta[FD_CAT_N_IDS];
    if (n_ids < 0 || n_ids > t->id_cap || 2 * n_ids > t->n_slots)
        return FD_EINVAL;
    if (n_ids > 0 && t->hashes == 0)
        return FD_EINVAL;
    for (s = 0; s < t->n_slots; s++)
        t->slots[s] = -1;
    mask = (uint64_t)t->n_slots - 1;
    /* Inserting in id order reproduces exactly the layout incremental
     * insertion would have built, so the numba backend (same order) agrees. */
    for (id = 0; id < n_ids; id++) {
        uint64_t k = t->hashes[id] & mask;
        while (t->slots[k] >= 0)
            k = (k + 1) & mask;
        t->slots[k] = (int32_t)id;
    }
    return FD_OK;
}

/* ---- dictionary indices ------------------------------------------------- */

static inline int64_t fd_popcount64(uint64_t x)
{
    /* SWAR popcount: portable C99; gcc/clang turn it into popcnt when the
     * target has one. */
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int64_t)((x * 0x0101010101010101ULL) >> 56);
}

/* Index of the lowest set bit of x != 0. */
static inline int64_t fd_ctz64(uint64_t x)
{
#if defined(__GNUC__)
    return __builtin_ctzll(x);
#else
    /* de Bruijn: the isolated lowest bit times the sequence puts a unique
     * 6-bit pattern in the top bits. */
    static const unsigned char pos[64] = {
        0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4,
        62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
        63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
        46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6};
    return pos[((x & (0 - x)) * 0x03F79D71B4CB0A89ULL) >> 58];
#endif
}

/* Nulls among elements [0, k) (bit off + i of bits): the cold error path's
 * exact count, whatever the hot loop had summed so far. */
static int64_t fd_nulls_before(const uint8_t *bits, int64_t off, int64_t k)
{
    int64_t i, nulls = 0;
    for (i = 0; i < k; i++)
        nulls += !fd_valid(bits, off + i);
    return nulls;
}

/* One valid element k.  FIRST is the literal 0, 1 or 2, so each
 * instantiation has no test of it: 0 no first positions; 1 the
 * first-position test reuses the count the increment loads anyway (a
 * branch taken once per used entry, well predicted); 2 it reads the
 * entry's flag in unseen_ (set where the count was 0 at the call), so the
 * blocks of FD_IDX_RUN64 can count into other tables meanwhile. */
#define FD_IDX_ONE(VT, OUT_OF_RANGE, FIRST, k)                                \
    do {                                                                      \
        const VT x = v[k];                                                    \
        int64_t c;                                                            \
        if (OUT_OF_RANGE) {                                                   \
            FD_IDX_FOLD();                                                    \
            *n_null += bits ? fd_nulls_before(bits, off, k) : 0;              \
            *progress = (k);                                                  \
            return FD_EINVAL;                                                 \
        }                                                                     \
        c = bins[(int64_t)x];                                                 \
        bins[(int64_t)x] = c + 1;                                             \
        if ((FIRST) == 1 && c == 0) {                                         \
            first[(int64_t)x] = (k);                                          \
            zeros--;                                                          \
        } else if ((FIRST) == 2 && unseen_[(int64_t)x]) {                     \
            unseen_[(int64_t)x] = 0;                                          \
            first[(int64_t)x] = (k);                                          \
            zeros--;                                                          \
        }                                                                     \
    } while (0)

/* FD_IDX_RUN64's block while first positions are sought (FIRST 2), a
 * function of its own (inlined into the loops, its registers were spilled
 * in the bitmap's loop): the count into bins, each index's unseen flag ORed
 * on the way (two chains); a block that met an unseen entry then sets the
 * first positions of its unseen entries, in element order.  Returns the
 * entries seen. */
#define DEF_IDX_FIRST64(UT, SFX)                                              \
static __attribute__((noinline)) int64_t idx_first64_##SFX(                  \
    const UT *u, int64_t k0, int64_t *bins, uint8_t *unseen, int64_t *first)  \
{                                                                             \
    unsigned n0 = 0, n1 = 0;                                                  \
    int64_t j, seen = 0;                                                      \
    for (j = 0; j < 64; j += 4) {                                             \
        const uint64_t a = u[j], b = u[j + 1], c = u[j + 2], d = u[j + 3];    \
        n0 |= unseen[a] | unseen[b];                                          \
        n1 |= unseen[c] | unseen[d];                                          \
        bins[a]++;                                                            \
        bins[b]++;                                                            \
        bins[c]++;                                                            \
        bins[d]++;                                                            \
    }                                                                         \
    if (n0 | n1)                                                              \
        for (j = 0; j < 64; j++)                                              \
            if (unseen[u[j]]) {                                               \
                unseen[u[j]] = 0;                                             \
                first[u[j]] = k0 + j;                                         \
                seen++;                                                       \
            }                                                                 \
    return seen;                                                              \
}
DEF_IDX_FIRST64(uint8_t, u8)
DEF_IDX_FIRST64(uint16_t, u16)
DEF_IDX_FIRST64(uint32_t, u32)
DEF_IDX_FIRST64(uint64_t, u64)
#define FD_IDX_FIRST64(UT) FD_IDX_FIRST64_##UT
#define FD_IDX_FIRST64_uint8_t idx_first64_u8
#define FD_IDX_FIRST64_uint16_t idx_first64_u16
#define FD_IDX_FIRST64_uint32_t idx_first64_u32
#define FD_IDX_FIRST64_uint64_t idx_first64_u64

/* FD_IDX_RUN64's block with no first positions: the range test of its 64
 * indices (an OR of unsigned compares against the largest good index um),
 * then, if none is out, their count: eight indices loaded (as UT:
 * zero-extended, 5 % faster than sign-extended) before their eight
 * increments, two a table, after a prefetch of the block 2 KiB ahead (eight
 * and the prefetch: 0.33 against 0.35 ns a value for four without it, 1e7
 * int32 indices over 1,000 entries, builds alternating, three pairs).
 * 32-bit indices are loaded two at a time, as one 64-bit word whose halves
 * are the two indices (in either order: both are counted): one load for two
 * increments instead of two, 0.323-0.327 against 0.342-0.353 ns a value on
 * those indices (builds alternating, three pairs).  What is left is the
 * increments': a loop of nothing else, 64-bit loads of 1e7 random indices
 * over 1,000 int64 counters, took 0.30-0.35 ns an increment (the same with
 * one, two or four tables, or 32-bit counters), about a cycle a store to a
 * line of its own, against 0.23 with the indices in order (eight to a
 * line) and 0.16 with no index loaded.  Returns 1, counting nothing, if some index
 * is out.  A function of its own, so that the four tables stay in
 * registers: inlined into fd_count_indices, GCC reloaded each table's
 * pointer from the stack before its increment, a fourth load a value on
 * top of the index and the counter.  The AVX2 twins test with unsigned
 * maxima (SSE2 has no unsigned compare: GCC's emulation cost a third of
 * the count's time). */
#define FD_IDX_COUNT64(u, t0, t1, t2, t3)                                     \
    do {                                                                      \
        int64_t j;                                                            \
        for (j = 0; j < 64 * (int64_t)sizeof *(u); j += 64)                  \
            FD_PREFETCH((const char *)(u) + 1024 + j);   /* 2 KiB ahead */    \
        if (sizeof *(u) == 4) {                                               \
            for (j = 0; j < 64; j += 8) {                                     \
                uint64_t a, b, c, d;                                          \
                memcpy(&a, (u) + j, 8);                                       \
                memcpy(&b, (u) + j + 2, 8);                                   \
                memcpy(&c, (u) + j + 4, 8);                                   \
                memcpy(&d, (u) + j + 6, 8);                                   \
                t0[(uint32_t)a]++;                                            \
                t1[a >> 32]++;                                                \
                t2[(uint32_t)b]++;                                            \
                t3[b >> 32]++;                                                \
                t0[(uint32_t)c]++;                                            \
                t1[c >> 32]++;                                                \
                t2[(uint32_t)d]++;                                            \
                t3[d >> 32]++;                                                \
            }                                                                 \
        } else {                                                              \
            for (j = 0; j < 64; j += 8) {                                     \
                const uint64_t a = u[j], b = u[j + 1], c = u[j + 2], d = u[j + 3]; \
                const uint64_t e = u[j + 4], f = u[j + 5], g = u[j + 6], h = u[j + 7]; \
                t0[a]++;                                                      \
                t1[b]++;                                                      \
                t2[c]++;                                                      \
                t3[d]++;                                                      \
                t0[e]++;                                                      \
                t1[f]++;                                                      \
                t2[g]++;                                                      \
                t3[h]++;                                                      \
            }                                                                 \
        }                                                                     \
    } while (0)
#define DEF_IDX_PLAIN64(UT, SFX)                                              \
static __attribute__((noinline)) int idx_plain64_##SFX(                       \
    const UT *u, UT um, int64_t *t0, int64_t *t1, int64_t *t2, int64_t *t3)   \
{                                                                             \
    int bad = 0;                                                              \
    int64_t j;                                                                \
    for (j = 0; j < 64; j++)                                                  \
        bad |= u[j] > um;                                                     \
    if (bad)                                                                  \
        return 1;                                                             \
    FD_IDX_COUNT64(u, t0, t1, t2, t3);                                        \
    return 0;                                                                 \
}
DEF_IDX_PLAIN64(uint8_t, u8)
DEF_IDX_PLAIN64(uint16_t, u16)
DEF_IDX_PLAIN64(uint32_t, u32)
DEF_IDX_PLAIN64(uint64_t, u64)
#define FD_IDX_PLAIN64(UT) FD_IDX_PLAIN64_##UT
#define FD_IDX_PLAIN64_uint8_t idx_plain64_u8
#define FD_IDX_PLAIN64_uint16_t idx_plain64_u16
#define FD_IDX_PLAIN64_uint32_t idx_plain64_u32
#define FD_IDX_PLAIN64_uint64_t idx_plain64_u64

#if FD_X86_SIMD
/* W: lanes of UT in a 256-bit register; MAX: their unsigned maximum. */
#define DEF_IDX_PLAIN64_AVX2(UT, SFX, SET1, MAX, W)                           \
FD_TARGET_AVX2 static __attribute__((noinline)) int idx_plain64_avx2_##SFX(  \
    const UT *u, UT um, int64_t *t0, int64_t *t1, int64_t *t2, int64_t *t3)   \
{                                                                             \
    const __m256i lim = SET1(um);                                             \
    __m256i m = lim;                                                          \
    int j;                                                                    \
    for (j = 0; j < 64; j += (W))                                             \
        m = MAX(m, _mm256_loadu_si256((const __m256i *)(const void *)(u + j))); \
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(m, lim)) != -1)                \
        return 1;                                                             \
    FD_IDX_COUNT64(u, t0, t1, t2, t3);                                        \
    return 0;                                                                 \
}
#define FD_SET1_U8(x) _mm256_set1_epi8((char)(x))
#define FD_SET1_U16(x) _mm256_set1_epi16((short)(x))
#define FD_SET1_U32(x) _mm256_set1_epi32((int)(x))
DEF_IDX_PLAIN64_AVX2(uint8_t, u8, FD_SET1_U8, _mm256_max_epu8, 32)
DEF_IDX_PLAIN64_AVX2(uint16_t, u16, FD_SET1_U16, _mm256_max_epu16, 16)
DEF_IDX_PLAIN64_AVX2(uint32_t, u32, FD_SET1_U32, _mm256_max_epu32, 8)
#define FD_IDX_PLAIN64_AVX2(UT) FD_IDX_PLAIN64_AVX2_##UT
#define FD_IDX_PLAIN64_AVX2_uint8_t idx_plain64_avx2_u8
#define FD_IDX_PLAIN64_AVX2_uint16_t idx_plain64_avx2_u16
#define FD_IDX_PLAIN64_AVX2_uint32_t idx_plain64_avx2_u32
#define FD_IDX_PLAIN64_AVX2_uint64_t idx_plain64_u64   /* AVX2 has no 64-bit unsigned max */
#else
#define FD_IDX_PLAIN64_AVX2(UT) FD_IDX_PLAIN64(UT)
#endif

/* 64 valid elements from k0: their range test first (UT the index type's
 * unsigned twin and umax_ the largest index clamped to the type: a negative
 * index is above it), then the increments with no test between them; without
 * first positions both run in idx_plain64_* (above), with them the test is
 * the OR of unsigned compares here and the count FD_IDX_FIRST64's.  A block
 * holding a bad index runs the tested loop, which stops at it.  One value at
 * a time, tested, measured 0.55-0.70 ns a value against 0.34-0.40 for this
 * (1,000 entries, 1e7 int32 indices; bench/bench_kernels.py, categories
 * dictionary). */
#define FD_IDX_RUN64(VT, UT, OUT_OF_RANGE, FIRST, k0)                         \
    do {                                                                      \
        const UT *u64_ = (const UT *)v + (k0);                                \
        const UT um_ = (UT)umax_;                                             \
        int bad_ = none_;                                                     \
        int64_t j_;                                                           \
        if ((FIRST) == 0 && !none_) {                                         \
            if (!(avx2_ ? FD_IDX_PLAIN64_AVX2(UT) : FD_IDX_PLAIN64(UT))(      \
                    u64_, um_, t0_, t1_, t2_, t3_))                           \
                break;                                                        \
            bad_ = 1;                                                         \
        } else {                                                              \
            for (j_ = 0; j_ < 64; j_++)                                       \
                bad_ |= u64_[j_] > um_;                                       \
        }                                                                     \
        if (bad_) {                                                           \
            for (j_ = (k0); j_ < (k0) + 64; j_++)                             \
                FD_IDX_ONE(VT, OUT_OF_RANGE, FIRST, j_);                      \
        } else if ((FIRST) == 1) {                                            \
            for (j_ = (k0); j_ < (k0) + 64; j_++)                             \
                FD_IDX_ONE(VT, 0, FIRST, j_);                                 \
        } else if ((FIRST) == 2) {                                            \
            zeros -= FD_IDX_FIRST64(UT)(u64_, (k0), bins, unseen_, first);    \
        }                                                                     \
    } while (0)

/* A small dictionary's unchecked counts go to four tables of its own
 * (t0_..t3_, FD_IDX_SPLIT entries each, on the stack), one per element of
 * each group of four, folded into bins when the call ends or stops: four
 * increments of one entry in a row wait on each other's stores, and with
 * few entries that happens often (4 or 10 entries: 0.40 against 0.55-0.67
 * ns a value in one table; no gain from 100 entries up).  A larger
 * dictionary, or a short column, counts into bins alone (t0_..t3_ all
 * bins). */
#define FD_IDX_SPLIT 256
#define FD_IDX_SEEN 16384
#define FD_IDX_FOLD()                                                         \
    do {                                                                      \
        if (split_) {                                                         \
            int64_t e_;                                                       \
            for (e_ = 0; e_ < n_bins; e_++) {                                 \
                bins[e_] += t0_[e_] + t1_[e_] + t2_[e_] + t3_[e_];            \
                t0_[e_] = t1_[e_] = t2_[e_] = t3_[e_] = 0;                    \
            }                                                                 \
        }                                                                     \
    } while (0)

/* Elements [i, LIMIT), i carried over.  With a validity bitmap, 64 elements
 * at a time from the first element whose bit starts a byte: a word of valid
 * elements runs the plain loop, a mixed one visits its set bits (lowest
 * first, so in element order) and counts its nulls by popcount, because
 * per-element bit tests mispredict on every null. */
#define FD_IDX_LOOP(VT, UT, OUT_OF_RANGE, FIRST, LIMIT)                           \
    do {                                                                      \
        const VT *v = (const VT *)col->values + off;                          \
        const int64_t lim_ = (LIMIT);                                         \
        int64_t k;                                                            \
        if (bits) {                                                           \
            for (; i < lim_ && ((off + i) & 7) != 0; i++) {                   \
                if (fd_valid(bits, off + i))                                  \
                    FD_IDX_ONE(VT, OUT_OF_RANGE, FIRST, i);                   \
                else                                                          \
                    nulls++;                                                  \
            }                                                                 \
            for (; i + 64 <= lim_; i += 64) {                                 \
                uint64_t w = fd_load_le64(bits + ((off + i) >> 3));           \
                if (w == ~(uint64_t)0) {                                      \
                    FD_IDX_RUN64(VT, UT, OUT_OF_RANGE, FIRST, i);                 \
                    continue;                                                 \
                }                                                             \
                nulls += 64 - fd_popcount64(w);                               \
                while (w) {                                                   \
                    k = i + fd_ctz64(w);                                      \
                    w &= w - 1;                                               \
                    FD_IDX_ONE(VT, OUT_OF_RANGE, FIRST, k);                   \
                }                                                             \
            }                                                                 \
            for (; i < lim_; i++) {                                           \
                if (fd_valid(bits, off + i))                                  \
                    FD_IDX_ONE(VT, OUT_OF_RANGE, FIRST, i);                   \
                else                                                          \
                    nulls++;                                                  \
            }                                                                 \
        } else {                                                              \
            for (; i + 64 <= lim_; i += 64)                                   \
                FD_IDX_RUN64(VT, UT, OUT_OF_RANGE, FIRST, i);                     \
            for (; i < lim_; i++)                                             \
                FD_IDX_ONE(VT, OUT_OF_RANGE, FIRST, i);                       \
        }                                                                     \
    } while (0)

/* With first: the first-position test is only needed while some entry can
 * still go from 0 to 1 (zeros of them); once every entry has been seen -- a
 * few thousand rows into a column whose dictionary it uses whole -- the
 * rest runs the plain count, which measured 2.5x faster than the loop with
 * the test (bench/bench_kernels.py, categories dictionary).  Chunks of
 * FD_IDX_CHUNK elements (a multiple of 64, so bitmap words stay whole)
 * between checks. */
#define FD_IDX_CHUNK 4096
#define FD_IDX_CASE(VT, UT, VMAX, OUT_OF_RANGE)                               \
    do {                                                                      \
        const uint64_t umax_ = lmax > (uint64_t)(VMAX) ? (uint64_t)(VMAX) : lmax; \
        i = 0;                                                                \
        if (first && unseen_) {                                               \
            while (i < n && zeros > 0) {                                      \
                const int64_t end_ = n - i > FD_IDX_CHUNK ? i + FD_IDX_CHUNK : n; \
                FD_IDX_LOOP(VT, UT, OUT_OF_RANGE, 2, end_);                   \
            }                                                                 \
        } else if (first) {                                                   \
            while (i < n && zeros > 0) {                                      \
                const int64_t end_ = n - i > FD_IDX_CHUNK ? i + FD_IDX_CHUNK : n; \
                FD_IDX_LOOP(VT, UT, OUT_OF_RANGE, 1, end_);                       \
            }                                                                 \
        }                                                                     \
        FD_IDX_LOOP(VT, UT, OUT_OF_RANGE, 0, n);                                  \
    } while (0)

int fd_count_indices(const fd_column *col, int64_t *bins, int64_t *first, int64_t n_bins,
                     int64_t *n_null, int64_t *progress)
{
    const uint8_t *bits;
    int64_t off, n, i, nulls = 0;
    if (col == 0 || n_null == 0 || progress == 0 || n_bins < 0)
        return FD_EINVAL;
    *progress = 0;
    if (col->type < FD_I8 || col->type > FD_U64)
        return FD_ETYPE;
    off = col->offset;
    n = col->length;
    if (off < 0 || n < 0 || (n > 0 && col->values == 0) || (n_bins > 0 && bins == 0))
        return FD_EINVAL;
    bits = col->validity;
    int64_t zeros = 0;   /* entries of bins still at 0: first[] can only change for them */
    if (first)
        for (i = 0; i < n_bins; i++)
            zeros += bins[i] == 0;
    /* The largest good index, and no good index at all (every block runs
     * the tested loop, which stops at its first valid element). */
    const uint64_t lmax = n_bins > 0 ? (uint64_t)(n_bins - 1) : 0;
    const int none_ = n_bins == 0;
    const int avx2_ = fd_simd() >= FD_SIMD_AVX2;
    int64_t sub_[4 * FD_IDX_SPLIT];
    /* Entries still to be seen, up to FD_IDX_SEEN of them: with it, the
     * blocks of 64 without one run the fast count while some entry has not
     * appeared (a dictionary entry absent from the column kept the whole
     * column in the tested loop: 0.72 against 0.35 ns a value, 10 of 1,000
     * entries unused); a larger dictionary tests counts of 0. */
    uint8_t seen_buf_[FD_IDX_SEEN];
    uint8_t *unseen_ = 0;
    if (first && zeros > 0 && n_bins <= FD_IDX_SEEN) {
        unseen_ = seen_buf_;
        for (i = 0; i < n_bins; i++)
            unseen_[i] = bins[i] == 0;
    }
    const int split_ = n_bins <= FD_IDX_SPLIT && n >= 64 * n_bins + 1024
                       && (first == 0 || zeros == 0 || unseen_ != 0);
    int64_t *t0_ = bins, *t1_ = bins, *t2_ = bins, *t3_ = bins;
    if (split_) {
        memset(sub_, 0, 4 * (size_t)n_bins * sizeof(int64_t));
        t0_ = sub_;
        t1_ = sub_ + n_bins;
        t2_ = sub_ + 2 * n_bins;
        t3_ = sub_ + 3 * n_bins;
    }
    switch (col->type) {
    case FD_I8: FD_IDX_CASE(int8_t, uint8_t, INT8_MAX, x < 0 || (int64_t)x >= n_bins); break;
    case FD_I16: FD_IDX_CASE(int16_t, uint16_t, INT16_MAX, x < 0 || (int64_t)x >= n_bins); break;
    case FD_I32: FD_IDX_CASE(int32_t, uint32_t, INT32_MAX, x < 0 || (int64_t)x >= n_bins); break;
    case FD_I64: FD_IDX_CASE(int64_t, uint64_t, INT64_MAX, x < 0 || x >= n_bins); break;
    case FD_U8: FD_IDX_CASE(uint8_t, uint8_t, UINT8_MAX, (int64_t)x >= n_bins); break;
    case FD_U16: FD_IDX_CASE(uint16_t, uint16_t, UINT16_MAX, (int64_t)x >= n_bins); break;
    case FD_U32: FD_IDX_CASE(uint32_t, uint32_t, UINT32_MAX, (int64_t)x >= n_bins); break;
    default: FD_IDX_CASE(uint64_t, uint64_t, UINT64_MAX, x >= (uint64_t)n_bins); break;
    }
    FD_IDX_FOLD();
    *n_null += nulls;
    *progress = n;
    return FD_OK;
}

/* ---- booleans ----------------------------------------------------------- */

int fd_bool_count(const fd_column *col, int64_t *n_true, int64_t *n_false,
                  int64_t *n_null)
{
    const uint8_t *vb, *mb;
    int64_t b, end, ones = 0, valid = 0;
    if (col == 0 || n_true == 0 || n_false == 0 || n_null == 0)
        return FD_EINVAL;
    if (col->type != FD_BOOL)
        return FD_ETYPE;
    if (col->offset < 0 || col->length < 0 || (col->length > 0 && col->values == 0))
        return FD_EINVAL;
    vb = (const uint8_t *)col->values;
    mb = col->validity;
    /* Values and validity share the array offset, so whole bytes of both
     * can be combined with one AND once b reaches a byte boundary. */
    b = col->offset;
    end = col->offset + col->length;
    for (; b < end && (b & 7) != 0; b++) {
        if (fd_valid(mb, b)) {
            valid++;
            ones += (vb[b >> 3] >> (b & 7)) & 1;
        }
    }
    if (mb) {
        for (; b + 64 <= end; b += 64) {
            uint64_t m = fd_load_le64(mb + (b >> 3));
            ones += fd_popcount64(fd_load_le64(vb + (b >> 3)) & m);
            valid += fd_popcount64(m);
        }
        for (; b + 8 <= end; b += 8) {
            uint8_t m = mb[b >> 3];
            ones += fd_popcount64((uint64_t)(vb[b >> 3] & m));
            valid += fd_popcount64((uint64_t)m);
        }
    } else {
        int64_t b0 = b;
        for (; b + 64 <= end; b += 64)
            ones += fd_popcount64(fd_load_le64(vb + (b >> 3)));
        for (; b + 8 <= end; b += 8)
            ones += fd_popcount64((uint64_t)vb[b >> 3]);
        valid += b - b0;
    }
    for (; b < end; b++) {
        if (fd_valid(mb, b)) {
            valid++;
            ones += (vb[b >> 3] >> (b & 7)) & 1;
        }
    }
    *n_true += ones;
    *n_false += valid - ones;
    *n_null += col->length - valid;
    return FD_OK;
}

/* ---- fd_seg_cat_count: the string and integer loops above, emitting counts
 * per segment instead of ids (a segmented profile's categorical columns: one
 * read of the column, no id array written and read back). */
#undef FD_CAT_EMIT
#undef FD_CAT_NULL_EMIT
#define FD_CAT_SEG_BAD(i)                                       \
    do {                                                        \
        fd_ctx_store(&c, t);                                    \
        *progress = (i);                                        \
        *bad = (i);                                             \
        return FD_EINVAL;                                       \
    } while (0)
#define FD_CAT_NULL_EMIT(i)                                     \
    do {                                                        \
        const uint32_t s_ = (uint32_t)codes[i];                 \
        if (s_ >= (uint32_t)n_seg)                              \
            FD_CAT_SEG_BAD(i);                                  \
        n_null[s_]++;                                           \
    } while (0)
#define FD_CAT_EMIT(i, id)                                      \
    do {                                                        \
        const uint32_t s_ = (uint32_t)codes[i];                 \
        if (s_ >= (uint32_t)n_seg || (id) < 0 || (id) >= width) \
            FD_CAT_SEG_BAD(i);                                  \
        const int64_t k_ = (int64_t)s_ * width + (id);          \
        if (bins[k_]++ == 0 && first)                           \
            first[k_] = first_base + (i);                       \
    } while (0)

int fd_seg_cat_count(const fd_column *col, fd_cat_table *t, int64_t start, const int32_t *codes,
                     int32_t n_seg, int64_t width, int64_t *bins, int64_t *first, int64_t first_base,
                     int64_t *n_null, int64_t *progress, int64_t *bad)
{
    const uint8_t *bits;
    int64_t off, n, i;
    int rc, strings;
    fd_ctx c;

    const int64_t *order = 0;   /* FD_CAT_COLUMN_LOOP: every element, in order */

    if (col == 0 || t == 0 || progress == 0 || bad == 0 || n_seg < 1 || n_null == 0)
        return FD_EINVAL;
    *bad = -1;
    *progress = start;
    if (col->type == FD_STR32 || col->type == FD_STR64)
        strings = 1;
    else if (col->type >= FD_I8 && col->type <= FD_U64)
        strings = 0;
    else
        return FD_ETYPE;
    rc = fd_table_ok(t, strings);
    if (rc != FD_OK)
        return rc;
    off = col->offset;
    n = col->length;
    if (start < 0 || start > n || off < 0 || n < 0 || width < t->id_cap || width < 0
        || (width > 0 && (int64_t)n_seg > INT64_MAX / width))
        return FD_EINVAL;
    if (start == n) {
        *progress = n;
        return FD_OK;
    }
    if ((strings ? col->offsets == 0 : col->values == 0) || codes == 0 || (width > 0 && bins == 0))
        return FD_EINVAL;
    bits = col->validity;
    fd_ctx_load(&c, t);
    FD_CAT_COLUMN_LOOP();
    fd_ctx_store(&c, t);
    *progress = n;
    return FD_OK;
}
