/* fdb — the forwarding database of one bridge: (VLAN, MAC) -> port.
 *
 * Built on liburcu's lock-free hash table (cds_lfht) with the QSBR flavour.
 *
 * Concurrency
 *   - Datapath calls (fdb_lookup, fdb_lookup_batch, fdb_learn, fdb_learn_batch)
 *     run on worker threads that are registered QSBR readers and online.
 *     They take no lock and never block. Any number of workers may call them
 *     concurrently.
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
 * MACs): a global maximum of learned entries and a per-port maximum, both
 * changeable at run time (fdb_set_limits).  When a limit is hit the new
 * address is simply not learned (and counted); existing entries are never
 * evicted to make room, so one port cannot push out everybody else's
 * addresses.  Lowering a limit below the entries already held evicts nobody
 * either: they stay until they age out or are flushed, and nothing new is
 * learned (there, or on that port) until the count is below the limit.
 * Static entries do not count against limits.
 *
 * Table sizing: cds_lfht's automatic resize in liburcu 0.13 can stall for good
 * on small machines, so it is never used.  The bucket count is a power of two
 * >= max_entries + static entries (load factor <= 1 at the limit), set at
 * creation and changed only by the control thread, explicitly: when the limit
 * changes and when static entries outgrow it.  cds_lfht resizes in place
 * while workers keep looking up and learning, so no entry is ever copied or
 * lost; the bucket array is one reserved mapping of FDB_MAX_ENTRIES_LIMIT
 * buckets (virtual memory, populated as the table grows).
 *
 * Ageing walks learned entries only.  A worker that creates an entry hands it
 * to the control thread through a wait-free queue; the control thread keeps
 * every learned entry on a timer wheel of one-second slots, by the second at
 * which it would expire if not seen again.  fdb_age_tick(), called every tick
 * (100 ms in xbrd), looks only at the slots that came due: an entry that was
 * refreshed meanwhile moves to its new slot, one that was not is removed.  So
 * a table of a million entries costs a tick what expires in it (plus one
 * look per entry per ageing period), not a walk of the table, and an entry
 * goes in the first tick at which it has been unseen for the ageing time (in
 * coarse seconds), as long as fewer than the tick's budget come due at once.
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
/* An entry's remote: where behind its port the address is, as a handle of
 * the port's own (a VXLAN port's remote VTEP); the FDB only stores it.
 * Ports that have no such thing use FDB_REMOTE_NONE. */
#define FDB_REMOTE_NONE 0u

#define FDB_DEFAULT_MAX_ENTRIES 65536u
#define FDB_DEFAULT_MAX_PER_PORT 8192u
#define FDB_DEFAULT_AGEING_S 300u
/* Largest learned-entry limit (it sizes the bucket array, 16 B a bucket). */
#define FDB_MAX_ENTRIES_LIMIT (1u << 24)
/* Entries fdb_age_tick() examines per call in xbrd (see fdb_age_tick). */
#define FDB_AGE_TICK_BUDGET 8192u

struct fdb_config {
    uint32_t max_entries;  /* learned entries, whole table; 0 = default;
                            * at most FDB_MAX_ENTRIES_LIMIT */
    uint32_t max_per_port; /* learned entries per port; 0 = default;
                            * at most FDB_MAX_ENTRIES_LIMIT */
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
    uint32_t remote; /* FDB_REMOTE_NONE unless learned or added with one */
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
    uint32_t max_entries;  /* the limits now (fdb_set_limits) */
    uint32_t max_per_port;
    uint32_t buckets;      /* hash table size now */
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
/* n lookups at once, prefetching buckets first; ports[i] as fdb_lookup.  A
 * key equal to the one before it is not looked up again. */
void fdb_lookup_batch(const struct fdb *fdb, unsigned n, const uint16_t *vlans,
                      const uint8_t *const *macs, uint32_t *ports);
/* fdb_lookup_batch() that also gives each entry's remote (FDB_REMOTE_NONE
 * when not found). */
void fdb_lookup_batch_remote(const struct fdb *fdb, unsigned n, const uint16_t *vlans,
                             const uint8_t *const *macs, uint32_t *ports, uint32_t *remotes);
/* Learns that (vlan, mac) was seen on port at coarse time now_s. */
enum fdb_learn_result fdb_learn(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6],
                                uint32_t port, uint32_t now_s);
/* n fdb_learn()s of sources seen on one port (a burst's), results in res[i].
 * Same results and counters as n fdb_learn() calls in order, but the buckets
 * and first nodes of the whole batch are prefetched before any is resolved,
 * and a source equal to the one before it in the batch is resolved from that
 * one's result without a second hash or lookup when the first left the entry
 * on this port (new, moved, refreshed) or found it static: a second learn
 * would change nothing.  (Against concurrent changes this is the pair of
 * learns happening back to back, one of the orders single calls allow.) */
void fdb_learn_batch(struct fdb *fdb, unsigned n, const uint16_t *vlans,
                     const uint8_t *const *macs, uint32_t port, uint32_t now_s,
                     enum fdb_learn_result *res);
/* fdb_learn_batch() of sources seen behind remotes[i] of the port (NULL: all
 * FDB_REMOTE_NONE).  An entry on the same port with another remote takes the
 * new one, and that counts as a move (FDB_LEARN_MOVED). */
void fdb_learn_batch_remote(struct fdb *fdb, unsigned n, const uint16_t *vlans,
                            const uint8_t *const *macs, uint32_t port, const uint32_t *remotes,
                            uint32_t now_s, enum fdb_learn_result *res);

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
/* The same with a remote behind the port (fdb add ... dst IP). */
int fdb_add_static_remote(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint32_t port,
                          uint32_t remote);
/* Removes an entry, static or learned. Returns 0 or -ENOENT. */
int fdb_del(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6]);
/* Removes entries of one port (or FDB_ALL_PORTS); static entries too when
 * with_static. Returns the number removed. */
size_t fdb_flush(struct fdb *fdb, uint32_t port, bool with_static);
/* Removes learned entries not seen for ageing_s seconds (as of now_s), or,
 * when max_age_s is not UINT32_MAX, for max_age_s seconds instead (RSTP fast
 * ageing), walking every learned entry at once. Returns the number removed. */
size_t fdb_age(struct fdb *fdb, uint32_t now_s, uint32_t max_age_s);
/* The periodic ageing: takes in the entries workers created since the last
 * call, then removes the learned entries that have been unseen for ageing_s
 * seconds as of now_s, looking only at those that came due (see the top).
 * Examines at most budget entries (0: no bound); the rest of what came due
 * is examined by the next calls first.  now_s must not go backwards by more
 * than a few seconds between calls.  Returns the number removed. */
size_t fdb_age_tick(struct fdb *fdb, uint32_t now_s, unsigned budget);
/* 0 means the default (300 s); values above 1000000 are clamped.  A shorter
 * time makes the next fdb_age_tick() calls re-examine every learned entry
 * (within their budgets), as the entries' slots were chosen by the old one. */
void fdb_set_ageing(struct fdb *fdb, uint32_t ageing_s);
uint32_t fdb_get_ageing(const struct fdb *fdb);
/* Calls cb for each entry (order unspecified); stops early if cb returns
 * non-zero and returns that value. */
int fdb_foreach(const struct fdb *fdb, uint32_t now_s,
                int (*cb)(const struct fdb_entry_info *e, void *aux), void *aux);
void fdb_get_stats(const struct fdb *fdb, struct fdb_stats *st);
/* Changes the learned-entry limits; 0 leaves that one as it is.  Entries
 * above a lowered limit are kept (see the top).  The table is resized to fit
 * the new limit, in place, while the datapath runs: this call may take a
 * while (tens of ms per million buckets) and waits for grace periods.
 * Returns 0, -EINVAL (a limit above FDB_MAX_ENTRIES_LIMIT) or -ENOMEM (the
 * larger bucket array cannot be had; nothing changed). */
int fdb_set_limits(struct fdb *fdb, uint32_t max_entries, uint32_t max_per_port);
/* Learned entries now on port. */
uint32_t fdb_port_count(const struct fdb *fdb, uint32_t port);

#endif
