/* fdb — the forwarding database of one bridge: (VLAN, MAC) -> port.
 *
 * Built on liburcu's lock-free hash table (cds_lfht) with the QSBR flavour.
 *
 * Concurrency
 *   - Datapath calls (fdb_lookup, fdb_lookup_batch, fdb_learn) run on worker
 *     threads that are registered QSBR readers and online. They take no lock
 *     and never block. Any number of workers may call them concurrently.
 *   - Control calls (everything else) are made from one control thread at a
 *     time (the caller serialises them), which must also be a registered,
 *     online QSBR reader. They may run concurrently with the datapath calls.
 *   - Removed entries are freed with call_rcu after a grace period, so a
 *     reader holding a pointer obtained inside its read-side section is safe.
 *   - fdb_destroy() requires that no thread can reach the fdb any more.
 *
 * Learning writes only when something changed: a refresh of an entry whose
 * port is unchanged stores the timestamp only when the coarse second moved,
 * so a hot entry is not a cache line bouncing between cores.
 *
 * Limits, as a defence against MAC flooding (a guest spraying random source
 * MACs): a global maximum of learned entries and a per-port maximum. When a
 * limit is hit the new address is simply not learned (and counted); existing
 * entries are never evicted to make room, so one port cannot push out
 * everybody else's addresses. Static entries do not count against limits.
 *
 * Table sizing: cds_lfht's automatic resize in liburcu 0.13 can stall for good
 * on small machines, so the bucket count is fixed at creation from the
 * configured global maximum.
 */
#ifndef XBR_FDB_H
#define XBR_FDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fdb;

/* A port number inside one bridge: 0 .. FDB_MAX_PORTS-1. */
#define FDB_MAX_PORTS 4096u
#define FDB_PORT_NONE UINT32_MAX
#define FDB_ALL_PORTS UINT32_MAX

#define FDB_DEFAULT_MAX_ENTRIES 65536u
#define FDB_DEFAULT_MAX_PER_PORT 8192u
#define FDB_DEFAULT_AGEING_S 300u

struct fdb_config {
    uint32_t max_entries;  /* learned entries, whole table; 0 = default;
                            * at most 1 << 24 (sizes the bucket array) */
    uint32_t max_per_port; /* learned entries per port; 0 = default */
    uint32_t ageing_s;     /* 0 = default (300 s); at most 1000000 (802.1D) */
};

/* Result of fdb_learn(), so the caller can count per port. */
enum fdb_learn_result {
    FDB_LEARN_REFRESHED,   /* known on this port; timestamp refreshed or current */
    FDB_LEARN_NEW,         /* a new entry was created */
    FDB_LEARN_MOVED,       /* known on another port; moved to this one */
                           /* (a move onto a port at its limit is refused
                            * with FDB_LEARN_LIMIT_PORT and changes nothing) */
    FDB_LEARN_STATIC,      /* a static entry exists (on any port); not changed */
    FDB_LEARN_LIMIT_PORT,  /* not learned: the port's limit is reached */
    FDB_LEARN_LIMIT_TOTAL, /* not learned: the table's limit is reached
                            * (or no memory for the entry) */
    FDB_LEARN_INVALID,     /* not learned: multicast or all-zero source, bad port */
};

struct fdb_entry_info {
    uint8_t mac[6];
    uint16_t vlan;
    uint32_t port;
    bool is_static;
    uint32_t age_s; /* seconds since last seen (0 for static entries) */
};

struct fdb_stats {
    uint64_t learned;      /* entries created by learning */
    uint64_t moved;        /* MAC moves */
    uint64_t limit_port;   /* learn refused: per-port limit */
    uint64_t limit_total;  /* learn refused: global limit */
    uint64_t aged;         /* entries removed by ageing */
    uint32_t entries;      /* entries now, static included */
    uint32_t static_entries;
};

/* Creates an empty table. NULL cfg means defaults. Returns NULL on ENOMEM
 * or bad config (errno set: EINVAL when a field is above its bound). */
struct fdb *fdb_create(const struct fdb_config *cfg);
/* Frees the table and every entry. Accepts NULL. No reader may remain.
 * Waits for pending call_rcu frees (urcu_qsbr_barrier, which takes a QSBR
 * caller offline meanwhile), so other online readers must keep passing
 * quiescent states. */
void fdb_destroy(struct fdb *fdb);

/* ---- Datapath (QSBR reader, online) ---- */

/* The port for (vlan, mac), or FDB_PORT_NONE. */
uint32_t fdb_lookup(const struct fdb *fdb, uint16_t vlan, const uint8_t mac[6]);
/* n lookups at once, prefetching buckets first; ports[i] as fdb_lookup. */
void fdb_lookup_batch(const struct fdb *fdb, unsigned n, const uint16_t *vlans,
                      const uint8_t *const *macs, uint32_t *ports);
/* Learns that (vlan, mac) was seen on port at coarse time now_s. */
enum fdb_learn_result fdb_learn(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6],
                                uint32_t port, uint32_t now_s);

/* ---- Control (one thread at a time, QSBR reader, online) ---- */

/* Called on the control thread for every entry it removes or replaces (by
 * fdb_del, fdb_flush, fdb_age, or fdb_add_static over a learned entry),
 * after the change: a mirror of the table (the kernel fast path) looks the
 * key up again to follow. It must not call fdb_del/flush/age/add_static.
 * NULL fn removes the hook. */
typedef void fdb_change_fn(void *aux, uint16_t vlan, const uint8_t mac[6]);
void fdb_set_change_hook(struct fdb *fdb, fdb_change_fn *fn, void *aux);

/* The entry for (vlan, mac): 0 and *e filled in, or -ENOENT. */
int fdb_get(const struct fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint32_t now_s,
            struct fdb_entry_info *e);

/* Adds or replaces a static entry. Returns 0, -EINVAL (bad port or
 * multicast/zero MAC) or -ENOMEM. */
int fdb_add_static(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint32_t port);
/* Removes an entry, static or learned. Returns 0 or -ENOENT. */
int fdb_del(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6]);
/* Removes entries of one port (or FDB_ALL_PORTS); static entries too when
 * with_static. Returns the number removed. */
size_t fdb_flush(struct fdb *fdb, uint32_t port, bool with_static);
/* Removes learned entries not seen for ageing_s seconds (as of now_s), or,
 * when max_age_s is not UINT32_MAX, for max_age_s seconds instead (RSTP fast
 * ageing). Returns the number removed. */
size_t fdb_age(struct fdb *fdb, uint32_t now_s, uint32_t max_age_s);
/* 0 means the default (300 s); values above 1000000 are clamped. */
void fdb_set_ageing(struct fdb *fdb, uint32_t ageing_s);
uint32_t fdb_get_ageing(const struct fdb *fdb);
/* Calls cb for each entry (order unspecified); stops early if cb returns
 * non-zero and returns that value. */
int fdb_foreach(const struct fdb *fdb, uint32_t now_s,
                int (*cb)(const struct fdb_entry_info *e, void *aux), void *aux);
void fdb_get_stats(const struct fdb *fdb, struct fdb_stats *st);
/* Learned entries now on port. */
uint32_t fdb_port_count(const struct fdb *fdb, uint32_t port);

#endif
