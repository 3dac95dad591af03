/* fdb-private.h — fdb internals the unit tests check; not for other modules. */
#ifndef XBR_FDB_PRIVATE_H
#define XBR_FDB_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

struct fdb;

/* Whether fdb_lookup_batch() prefetches buckets, i.e. whether the layout
 * check at creation recognised liburcu's contiguous bucket array.  Results
 * never depend on it; a false here after a liburcu upgrade is a silent
 * slowdown, which is what the test is for. */
bool fdb_bucket_prefetch_enabled(const struct fdb *fdb);

/* The buckets the table really has, counted on its list (so that a test sees
 * what a resize did, not what was asked for); 0 when the bucket array was not
 * recognised.  O(entries + buckets); no resize may run meanwhile. */
unsigned long fdb_debug_count_buckets(const struct fdb *fdb);

/* How many entries fdb_age_tick() has looked at so far (removed or moved on),
 * so that a test can tell a slice of due entries from a walk of the table. */
uint64_t fdb_debug_age_examined(const struct fdb *fdb);

#endif
