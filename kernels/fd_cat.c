/* fd_cat.c -- categorical counts (stub, replaced by the real kernel). */
#include "fd_internal.h"

uint64_t fd_hash_bytes(const uint8_t *p, int64_t n) { (void)p; (void)n; return 0; }
uint64_t fd_hash_int(int64_t v) { (void)v; return 0; }
int fd_cat_update(const fd_column *col, fd_cat_table *t, int64_t start, int64_t *progress)
{ (void)col; (void)t; (void)start; (void)progress; return FD_ETYPE; }
int fd_cat_lookup(const fd_column *col, fd_cat_table *t, int64_t start, int64_t *ids, int64_t *progress)
{ (void)col; (void)t; (void)start; (void)ids; (void)progress; return FD_ETYPE; }
int fd_cat_rehash(fd_cat_table *t) { (void)t; return FD_ETYPE; }
int fd_count_indices(const fd_column *col, int64_t *bins, int64_t n_bins, int64_t *n_null, int64_t *progress)
{ (void)col; (void)bins; (void)n_bins; (void)n_null; (void)progress; return FD_ETYPE; }
int fd_bool_count(const fd_column *col, int64_t *n_true, int64_t *n_false, int64_t *n_null)
{ (void)col; (void)n_true; (void)n_false; (void)n_null; return FD_ETYPE; }
