/* fdb-private.h — fdb internals the unit tests check; not for other modules. */
#ifndef XBR_FDB_PRIVATE_H
#define XBR_FDB_PRIVATE_H

#include <stdbool.h>

struct fdb;

/* Whether fdb_lookup_batch() prefetches buckets, i.e. whether the layout
 * check at creation recognised liburcu's contiguous bucket array.  Results
 * never depend on it; a false here after a liburcu upgrade is a silent
 * slowdown, which is what the test is for. */
bool fdb_bucket_prefetch_enabled(const struct fdb *fdb);

#endif
