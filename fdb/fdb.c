/* fdb.c — the forwarding database on liburcu's cds_lfht (QSBR flavour).
 *
 * Entry life cycle and counters
 *   A node is created by fdb_learn() (any worker) or fdb_add_static() (the
 *   control thread) and published with cds_lfht_add_unique(), so two workers
 *   learning the same new address race to one node: the loser frees its
 *   unpublished node at once and carries on with the winner's.  Only the
 *   control thread unlinks nodes (fdb_del/flush/age, static replacing
 *   learned), and only the thread whose cds_lfht_del()/cds_lfht_replace()
 *   succeeded "retires" the node: it settles the counters and hands the
 *   memory to call_rcu.
 *
 *   The learned-entry counters (global and per port) are reserved *before*
 *   the insert or move with an atomic add, and released when the insert loses
 *   the race or the limit is exceeded.  So a counter never under-states the
 *   entries it covers, and the limits are exact: the table never holds more
 *   learned entries than max_entries, nor a port more than max_per_port.  The
 *   price is that a learn racing with others at the very limit may be refused
 *   although its neighbour's reservation is then released — at most one
 *   spurious refusal per concurrent worker, and only at the limit.
 *
 *   A node's port is the token that says which per-port counter it is charged
 *   to.  A move is a compare-and-swap of the port (the winner moves one unit
 *   of count from the old port to the new one); retiring a node swaps the
 *   port to FDB_NODE_DEAD and uncharges whatever port it held at that
 *   instant.  Each unit of count therefore has exactly one owner even when a
 *   worker moves an entry while the control thread deletes it.
 *
 *   Nodes of learned entries reach the ageing wheel (below) through a
 *   wait-free queue: the worker that published a node enqueues it right
 *   after cds_lfht_add_unique() succeeded, and the control thread dequeues
 *   it at its next tick.  Until then the control thread may already unlink
 *   and retire the node (a flush), but it must not free it: the queue still
 *   links it, and the link shares memory with the rcu_head.  Such a node is
 *   handed to call_rcu by the drain, which recognises it by its dead port.
 *
 * Ageing wheel (control thread only)
 *   Every drained learned node sits on exactly one list: a slot of the wheel,
 *   slot (seen_s + ageing_s) % FDB_WHEEL_SLOTS, i.e. by the second it would
 *   expire if never seen again, or the pending list (came due, not examined
 *   yet).  A tick moves the slots of the seconds that passed onto pending
 *   (O(1) each) and examines pending within its budget: unseen for the
 *   ageing time -> removed; refreshed meanwhile -> moved to the slot of its
 *   new expiry.  Workers never touch these lists; refreshing an entry stays
 *   one store of seen_s.  An entry whose expiry is more than a wheel turn
 *   away (ageing above FDB_WHEEL_SLOTS s) is looked at once per turn and put
 *   back.  Nodes are doubly linked so that del/flush unlink in O(1); the
 *   link lives in the node's rcu_head space (a node is on the wheel only
 *   while it is in the table), so nodes stay 48 bytes.
 *
 * Bucket prefetch
 *   cds_lfht keeps its bucket array private.  With a bounded max_nr_buckets
 *   on a 64-bit host liburcu uses its mmap allocator: one reserved mapping
 *   of max_nr_buckets buckets, populated as the table grows and discarded
 *   (made inaccessible again) as it shrinks, bucket i at base + i whatever
 *   the size.  fdb_probe_buckets() finds base through the public node layout
 *   and checks it; fdb_lookup_batch() uses it only to prefetch (a prefetch
 *   never faults) and to read a bucket's first link, so bucket_mask must
 *   never cover buckets that are not mapped: it grows after the table has,
 *   and shrinks a grace period before the table does.  If the check fails
 *   (a future liburcu lays things out differently) the batch still resolves
 *   correctly, just without the bucket prefetch.
 *
 * Resizing
 *   Only explicitly, by the control thread (fdb_set_limits, static entries
 *   outgrowing the table), with cds_lfht_resize(): split-ordered lists grow
 *   and shrink in place by inserting or removing bucket nodes while readers
 *   and adders carry on, so nothing is copied and no entry can be missed.
 *   liburcu 0.13 takes the calling QSBR thread offline meanwhile and walks
 *   the list without read-side protection; that is safe here because only
 *   this (control) thread ever unlinks data nodes, so no node can be freed
 *   under the walk.
 */
#include "fdb/fdb.h"
#include "fdb/fdb-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include <urcu-qsbr.h>
#include <urcu/list.h>
#include <urcu/rculfhash.h>
#include <urcu/wfcqueue.h>

#include "util/util.h"

/* Port value of a node that has been retired (no longer charged to a port).
 * Readers that still hold the node see it as "no port". */
#define FDB_NODE_DEAD UINT16_MAX
_Static_assert(FDB_MAX_PORTS < FDB_NODE_DEAD, "ports must fit in a node's uint16_t port");

/* Bucket count bounds.  The upper bound keeps the bucket array (16 B per
 * bucket) at 256 MiB (reserved address space; only the buckets in use are
 * memory); it also bounds max_entries, as the table is sized to hold
 * max_entries learned entries at a load factor <= 1. */
#define FDB_MIN_BUCKETS 64u
#define FDB_MAX_BUCKETS FDB_MAX_ENTRIES_LIMIT
_Static_assert((FDB_MAX_BUCKETS & (FDB_MAX_BUCKETS - 1)) == 0, "bucket bound: a power of two");

/* Static entries grow the table only once they push the load factor at the
 * learned limit past 3/2, so that a few of them (one per guest) do not double
 * a table sized for the limit. */
#define FDB_STATIC_SLACK_NUM 3u
#define FDB_STATIC_SLACK_DEN 2u

/* One-second slots of the ageing wheel: 16 KiB of list heads per bridge; a
 * turn of 1024 s covers the default ageing time (300 s) with room. */
#define FDB_WHEEL_SLOTS 1024u
#define FDB_WHEEL_MASK (FDB_WHEEL_SLOTS - 1)
/* 802.1D's upper bound for the ageing time; it also keeps the signed
 * 32-bit age arithmetic of fdb_age() far from overflow. */
#define FDB_MAX_AGEING_S 1000000u

/* Lookups of a batch are resolved in groups of this size (stack arrays). */
#define FDB_BATCH_GROUP 64u

/* Separates write-hot counters from the read-mostly configuration; liburcu
 * uses 128 on x86 because the adjacent-line prefetcher pairs 64 B lines. */
#define FDB_CACHELINE 128

/* Where a node's `u` link is (control thread's view; see the top). */
enum fdb_age_state {
    FDB_AGE_QUEUED, /* learned, not drained yet: u.newq (being) enqueued */
    FDB_AGE_WHEEL,  /* learned, drained: u.age on a wheel slot or pending */
    FDB_AGE_NONE,   /* static, or handed to call_rcu: u free for u.rcu */
};

/* One entry.  The fields a lookup touches (link, reverse hash, key, port)
 * come first so that they sit in the first 32 bytes; the last 16 bytes are
 * one link at a time (see "Entry life cycle" and "Ageing wheel" above). */
struct fdb_node {
    struct cds_lfht_node lfnode; /* chain link + reverse hash (cds_lfht's) */
    uint64_t key;                /* immutable: (vlan << 48) | mac */
    uint32_t seen_s;             /* shared: last seen, coarse seconds */
    uint16_t port;               /* shared: see "counters" above */
    uint8_t is_static;           /* immutable: a static node never changes kind */
    uint8_t age_state;           /* enum fdb_age_state; control thread, once
                                  * published (set by the creator before) */
    uint32_t remote;             /* shared: the port's handle of where behind
                                  * it the address is (a tunnel port's remote
                                  * VTEP), FDB_REMOTE_NONE for other ports */
    union {
        struct cds_wfcq_node newq; /* learned: creation -> the drain */
        struct cds_list_head age;  /* learned, drained: the ageing wheel */
        struct rcu_head rcu;       /* retired: waiting for its grace period */
    } u;
};
/* 56 bytes (the remote made it grow from 48): glibc still serves it from 64. */
_Static_assert(sizeof(struct fdb_node) == 56, "fdb_node grew");

/* liburcu's caa_container_of casts through a const pointer, which clang's
 * -Wcast-qual reports at every use; these keep const-correctness explicit. */
static inline struct fdb_node *fdb_node_of(struct cds_lfht_node *lfnode)
{
    return (struct fdb_node *)(void *)((char *)lfnode - offsetof(struct fdb_node, lfnode));
}

static inline const struct fdb_node *fdb_node_of_const(const struct cds_lfht_node *lfnode)
{
    return (const struct fdb_node *)(const void *)((const char *)lfnode -
                                                   offsetof(struct fdb_node, lfnode));
}

static inline struct fdb_node *fdb_node_of_age(struct cds_list_head *link)
{
    return (struct fdb_node *)(void *)((char *)link - offsetof(struct fdb_node, u.age));
}

static inline struct fdb_node *fdb_node_of_newq(struct cds_wfcq_node *link)
{
    return (struct fdb_node *)(void *)((char *)link - offsetof(struct fdb_node, u.newq));
}

/* Walks every node of the table (a node may be removed during the walk). */
#define fdb_for_each_node(fdb, iter, n)                                                   \
    for (cds_lfht_first((fdb)->ht, (iter));                                               \
         ((n) = cds_lfht_iter_get_node(iter) ? fdb_node_of(cds_lfht_iter_get_node(iter))  \
                                             : NULL) != NULL;                             \
         cds_lfht_next((fdb)->ht, (iter)))

struct fdb {
    /* Read-mostly: set at creation; the shared ones change only through
     * control calls. */
    struct cds_lfht *ht;
    const struct cds_lfht_node *buckets; /* contiguous bucket array, or NULL */
    unsigned long bucket_mask;           /* shared: prefetch mask, see the top */
    uint64_t seed;
    uint32_t max_entries;  /* shared */
    uint32_t max_per_port; /* shared */
    uint32_t ageing_s;     /* shared */

    /* Learned entries now, including in-flight reservations, and the queue
     * new nodes go to: written when an entry is created or retired, never
     * on a refresh. */
    uint32_t n_learned __attribute__((aligned(FDB_CACHELINE)));
    struct cds_wfcq_tail newq_tail;

    /* Event counters (struct fdb_stats). */
    uint64_t st_learned __attribute__((aligned(FDB_CACHELINE)));
    uint64_t st_moved;
    uint64_t st_limit_port;
    uint64_t st_limit_total;
    uint64_t st_aged;

    /* Learned entries per port, including in-flight reservations. */
    uint32_t port_count[FDB_MAX_PORTS] __attribute__((aligned(FDB_CACHELINE)));

    /* The control thread's change hook (fdb_set_change_hook). */
    fdb_change_fn *change_fn;
    void *change_aux;
    /* Control thread only (n_static also read by fdb_get_stats). */
    struct __cds_wfcq_head newq_head __attribute__((aligned(FDB_CACHELINE)));
    uint32_t n_static;
    unsigned long n_buckets;
    bool wheel_started;    /* wheel_next_s is set (first fdb_age_tick) */
    uint32_t wheel_next_s; /* the first second whose slot is still waiting */
    struct cds_list_head age_pending;
    struct cds_list_head wheel[FDB_WHEEL_SLOTS];
    uint64_t age_examined; /* entries fdb_age_tick() looked at (tests) */

    /* Nodes used once by fdb_probe_buckets(); they live here so that they
     * stay valid memory whatever cds_lfht does with them. */
    struct cds_lfht_node probe[2];
};

/* ---- keys and hashing ---- */

/* All 16 bits of the VLAN are kept: what counts as a VID is the caller's
 * business, and 16 + 48 bits fill the key exactly. */
static inline uint64_t fdb_key_make(uint16_t vlan, const uint8_t *mac)
{
    return (uint64_t)vlan << 48 | (uint64_t)mac[0] << 40 | (uint64_t)mac[1] << 32 |
           (uint64_t)mac[2] << 24 | (uint64_t)mac[3] << 16 | (uint64_t)mac[4] << 8 |
           (uint64_t)mac[5];
}

static void fdb_key_split(uint64_t key, uint16_t *vlan, uint8_t mac[6])
{
    *vlan = (uint16_t)(key >> 48);
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)(key >> (40 - 8 * i));
}

/* murmur3's 64-bit finaliser over the key mixed with a per-table random
 * seed.  Every output bit depends on every input bit, which cds_lfht needs:
 * the low bits pick the bucket, the bit-reversed whole hash orders the chain.
 * The seed keeps a guest from choosing source MACs that all land in one
 * bucket (it cannot see the hashes); it is not a PRF, but SipHash would
 * cost several times more on every lookup. */
static inline unsigned long fdb_hash(const struct fdb *fdb, uint64_t key)
{
    uint64_t h = key ^ fdb->seed;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (unsigned long)h;
}

static int fdb_node_match(struct cds_lfht_node *lfnode, const void *key)
{
    const struct fdb_node *n = fdb_node_of_const(lfnode);

    return n->key == *(const uint64_t *)key;
}

static inline struct fdb_node *fdb_find(const struct fdb *fdb, uint64_t key, unsigned long hash)
{
    struct cds_lfht_iter iter;
    struct cds_lfht_node *lfnode;

    cds_lfht_lookup(fdb->ht, hash, fdb_node_match, &key, &iter);
    lfnode = cds_lfht_iter_get_node(&iter);
    return lfnode ? fdb_node_of(lfnode) : NULL;
}

/* A retired node's port reads as FDB_NODE_DEAD: report it as unknown. */
static inline uint32_t fdb_node_port(const struct fdb_node *n)
{
    uint16_t port = CMM_LOAD_SHARED(n->port);

    return port < FDB_MAX_PORTS ? port : FDB_PORT_NONE;
}

static bool fdb_mac_learnable(const uint8_t *mac)
{
    return !xbr_mac_is_multicast(mac) && !xbr_mac_is_zero(mac);
}

/* ---- node life cycle ---- */

static struct fdb_node *fdb_node_new(uint64_t key, uint32_t port, uint32_t remote,
                                     uint32_t now_s, bool is_static)
{
    struct fdb_node *n = malloc(sizeof(*n));

    if (!n)
        return NULL;
    cds_lfht_node_init(&n->lfnode);
    n->key = key;
    n->seen_s = now_s;
    n->port = (uint16_t)port;
    n->remote = remote;
    n->is_static = is_static;
    n->age_state = is_static ? FDB_AGE_NONE : FDB_AGE_QUEUED;
    if (!is_static)
        cds_wfcq_node_init(&n->u.newq);
    return n;
}

static void fdb_node_free_rcu(struct rcu_head *head)
{
    free((char *)head - offsetof(struct fdb_node, u.rcu));
}

/* Settles the counters of a node that this thread has just unlinked
 * (its cds_lfht_del or cds_lfht_replace succeeded, so it is the only one to
 * get here for this node).  Memory is not touched; see fdb_node_retire. */
static void fdb_node_uncount(struct fdb *fdb, struct fdb_node *n)
{
    if (n->is_static) {
        uatomic_dec(&fdb->n_static);
        return;
    }
    /* A worker may be moving the node right now; whichever port the swap
     * takes away is the one still charged for it. */
    uint16_t port = uatomic_xchg(&n->port, FDB_NODE_DEAD);
    if (port < FDB_MAX_PORTS)
        uatomic_dec(&fdb->port_count[port]);
    uatomic_dec(&fdb->n_learned);
}

/* Only the control thread retires nodes (see the top of this file), so the
 * change hook runs there. */
static void fdb_node_retire(struct fdb *fdb, struct fdb_node *n)
{
    fdb_node_uncount(fdb, n);
    if (fdb->change_fn) {
        uint16_t vlan;
        uint8_t mac[6];
        fdb_key_split(n->key, &vlan, mac);
        fdb->change_fn(fdb->change_aux, vlan, mac);
    }
    if (n->age_state == FDB_AGE_QUEUED)
        return; /* still linked by the new-entry queue: the drain frees it */
    if (n->age_state == FDB_AGE_WHEEL)
        cds_list_del(&n->u.age);
    n->age_state = FDB_AGE_NONE;
    /* Workers may still hold the node; free it after a grace period. */
    urcu_qsbr_call_rcu(&n->u.rcu, fdb_node_free_rcu);
}

/* Unlinks n; true if this call did it (and retired the node). */
static bool fdb_node_remove(struct fdb *fdb, struct fdb_node *n)
{
    if (cds_lfht_del(fdb->ht, &n->lfnode) != 0)
        return false;
    fdb_node_retire(fdb, n);
    return true;
}

/* Reserves one unit of a counter bounded by max.  The cheap read first keeps
 * a port that sprays MACs at its limit from bouncing the line with a locked
 * add on every frame. */
static bool fdb_reserve(uint32_t *ctr, uint32_t max)
{
    if (CMM_LOAD_SHARED(*ctr) >= max)
        return false;
    if (uatomic_add_return(ctr, 1) > max) {
        uatomic_dec(ctr);
        return false;
    }
    return true;
}

/* ---- the ageing wheel (control thread; see the top of the file) ---- */

/* The list for an entry that expires at second due, examined from now on. */
static struct cds_list_head *fdb_wheel_slot(struct fdb *fdb, uint32_t due)
{
    if ((int32_t)(due - fdb->wheel_next_s) < 0)
        due = fdb->wheel_next_s; /* that second's slot is the next one looked at */
    return &fdb->wheel[due & FDB_WHEEL_MASK];
}

/* Takes in the nodes workers created since the last drain. */
static void fdb_drain_new(struct fdb *fdb)
{
    struct cds_wfcq_node *link;

    /* Blocking only in the sense that it waits for an enqueue that has begun
     * (a worker between its two stores) to finish. */
    while ((link = __cds_wfcq_dequeue_blocking(&fdb->newq_head, &fdb->newq_tail)) != NULL) {
        struct fdb_node *n = fdb_node_of_newq(link);

        if (CMM_LOAD_SHARED(n->port) == FDB_NODE_DEAD) {
            /* Retired (flushed) before it got here: only now is its link
             * free for the rcu_head. */
            n->age_state = FDB_AGE_NONE;
            urcu_qsbr_call_rcu(&n->u.rcu, fdb_node_free_rcu);
            continue;
        }
        n->age_state = FDB_AGE_WHEEL;
        const uint32_t due = CMM_LOAD_SHARED(n->seen_s) + fdb->ageing_s;
        /* Already due (or no clock yet): examined at the next tick. */
        if (!fdb->wheel_started || (int32_t)(due - fdb->wheel_next_s) < 0)
            cds_list_add_tail(&n->u.age, &fdb->age_pending);
        else
            cds_list_add_tail(&n->u.age, &fdb->wheel[due & FDB_WHEEL_MASK]);
    }
}

/* Moves the whole of list onto the end of pending. */
static void fdb_pending_take(struct fdb *fdb, struct cds_list_head *list)
{
    cds_list_splice(list, fdb->age_pending.prev);
    CDS_INIT_LIST_HEAD(list);
}

static void fdb_pending_take_all(struct fdb *fdb)
{
    for (unsigned i = 0; i < FDB_WHEEL_SLOTS; i++)
        fdb_pending_take(fdb, &fdb->wheel[i]);
}

/* Calls fn on every drained learned node; fn may remove the node. */
static size_t fdb_learned_walk(struct fdb *fdb,
                               bool (*fn)(struct fdb *, struct fdb_node *, const void *),
                               const void *arg)
{
    size_t removed = 0;

    for (unsigned i = 0; i <= FDB_WHEEL_SLOTS; i++) {
        struct cds_list_head *list = i < FDB_WHEEL_SLOTS ? &fdb->wheel[i] : &fdb->age_pending;
        struct cds_list_head *pos, *tmp;

        cds_list_for_each_safe(pos, tmp, list)
            removed += fn(fdb, fdb_node_of_age(pos), arg);
    }
    return removed;
}

/* ---- bucket array discovery (see the top of the file) ---- */

static uint64_t fdb_bit_reverse64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    return __builtin_bswap64(v);
}

/* cds_lfht nodes are 8-byte aligned; the low three bits of a next pointer
 * carry its flags (removed, bucket, removal owner: rculfhash.h). */
static const struct cds_lfht_node *fdb_lfnode_unflag(const struct cds_lfht_node *p)
{
    return (const struct cds_lfht_node *)((uintptr_t)p & ~(uintptr_t)7);
}

/* On an empty table of nb buckets the split-ordered list runs bucket 0,
 * bucket nb/2, bucket nb/4, ... (ascending bit-reversed index).  A node with
 * hash 0 sits between bucket 0 and bucket nb/2, a node with hash nb/2 between
 * bucket nb/2 and bucket nb/4: their next pointers reveal two bucket
 * addresses, whose reverse hashes and distance must agree with one
 * contiguous array.  Only addresses read from the list are dereferenced. */
static const struct cds_lfht_node *fdb_probe_buckets(struct fdb *fdb, unsigned long nb)
{
    const unsigned long half = nb / 2, quarter = nb / 4;
    const struct cds_lfht_node *b_half, *b_quarter, *base = NULL;

    cds_lfht_node_init(&fdb->probe[0]);
    cds_lfht_node_init(&fdb->probe[1]);
    cds_lfht_add(fdb->ht, 0, &fdb->probe[0]);
    cds_lfht_add(fdb->ht, half, &fdb->probe[1]);

    b_half = fdb_lfnode_unflag(CMM_LOAD_SHARED(fdb->probe[0].next));
    b_quarter = fdb_lfnode_unflag(CMM_LOAD_SHARED(fdb->probe[1].next));
    if (b_half && b_quarter && b_half->reverse_hash == fdb_bit_reverse64(half) &&
        b_quarter->reverse_hash == fdb_bit_reverse64(quarter) &&
        b_half - b_quarter == (ptrdiff_t)(half - quarter))
        base = b_half - half;

    /* Single-threaded here, so del also unlinks them physically. */
    (void)cds_lfht_del(fdb->ht, &fdb->probe[0]);
    (void)cds_lfht_del(fdb->ht, &fdb->probe[1]);
    return base;
}

bool fdb_bucket_prefetch_enabled(const struct fdb *fdb)
{
    return fdb->buckets != NULL;
}

/* ---- creation, destruction and size ---- */

static uint64_t fdb_random_seed(void)
{
    uint64_t seed;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    /* Early boot without entropy: weaker, but still not a constant. */
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&ts;
}

static uint32_t fdb_ageing_clamp(uint32_t ageing_s)
{
    if (ageing_s == 0)
        return FDB_DEFAULT_AGEING_S;
    return ageing_s > FDB_MAX_AGEING_S ? FDB_MAX_AGEING_S : ageing_s;
}

/* The bucket count for a table of `entries`: load factor <= 1, so that a
 * lookup stays O(1) however full the table gets. */
static unsigned long fdb_buckets_for(uint64_t entries)
{
    unsigned long nb = FDB_MIN_BUCKETS;

    while (nb < entries && nb < FDB_MAX_BUCKETS)
        nb <<= 1;
    return nb;
}

/* liburcu's mmap allocator aborts the process when it cannot populate a
 * larger bucket array, so a grow asks the kernel for that much memory first
 * and is refused when it cannot be had.  (Memory can still run out in
 * between, as for any allocation; this turns the likely failure, a limit far
 * above what the machine holds, into an error.) */
static bool fdb_memory_available(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return false;
    (void)munmap(p, bytes);
    return true;
}

/* Resizes the table to nb buckets, in place (see "Resizing" at the top).
 * bucket_mask only ever covers mapped buckets: it follows a grow, and
 * precedes a shrink by a grace period, after which no reader can still be
 * using the larger one. */
static int fdb_resize(struct fdb *fdb, unsigned long nb)
{
    if (nb > fdb->n_buckets) {
        if (!fdb_memory_available((nb - fdb->n_buckets) * sizeof(struct cds_lfht_node)))
            return -ENOMEM;
        cds_lfht_resize(fdb->ht, nb);
        cmm_smp_wmb(); /* the new buckets before the mask that reaches them */
        CMM_STORE_SHARED(fdb->bucket_mask, nb - 1);
    } else if (nb < fdb->n_buckets) {
        CMM_STORE_SHARED(fdb->bucket_mask, nb - 1);
        urcu_qsbr_synchronize_rcu();
        cds_lfht_resize(fdb->ht, nb);
    }
    fdb->n_buckets = nb;
    return 0;
}

struct fdb *fdb_create(const struct fdb_config *cfg)
{
    struct fdb_config c = cfg ? *cfg : (struct fdb_config){0};
    struct fdb *fdb;
    unsigned long nb;
    void *mem;
    int r;

    if (c.max_entries == 0)
        c.max_entries = FDB_DEFAULT_MAX_ENTRIES;
    if (c.max_per_port == 0)
        c.max_per_port = FDB_DEFAULT_MAX_PER_PORT;
    if (c.max_entries > FDB_MAX_ENTRIES_LIMIT || c.max_per_port > FDB_MAX_ENTRIES_LIMIT ||
        c.ageing_s > FDB_MAX_AGEING_S) {
        errno = EINVAL;
        return NULL;
    }

    r = posix_memalign(&mem, FDB_CACHELINE, sizeof(*fdb));
    if (r) {
        errno = r;
        return NULL;
    }
    fdb = memset(mem, 0, sizeof(*fdb));
    fdb->max_entries = c.max_entries;
    fdb->max_per_port = c.max_per_port;
    fdb->ageing_s = fdb_ageing_clamp(c.ageing_s);
    fdb->seed = fdb_random_seed();
    __cds_wfcq_init(&fdb->newq_head, &fdb->newq_tail);
    CDS_INIT_LIST_HEAD(&fdb->age_pending);
    for (unsigned i = 0; i < FDB_WHEEL_SLOTS; i++)
        CDS_INIT_LIST_HEAD(&fdb->wheel[i]);

    /* No CDS_LFHT_AUTO_RESIZE: in liburcu 0.13 it can stop resizing for
     * good; sizes change only through fdb_resize().  The bounded maximum
     * also selects liburcu's mmap allocator (see "Bucket prefetch"). */
    nb = fdb_buckets_for(c.max_entries);
    fdb->ht = cds_lfht_new_flavor(nb, FDB_MIN_BUCKETS, FDB_MAX_BUCKETS, 0, &urcu_qsbr_flavor,
                                  NULL);
    if (!fdb->ht) {
        free(fdb);
        errno = ENOMEM;
        return NULL;
    }
    fdb->n_buckets = nb;
    fdb->bucket_mask = nb - 1;
    fdb->buckets = fdb_probe_buckets(fdb, nb);
    return fdb;
}

void fdb_destroy(struct fdb *fdb)
{
    struct cds_lfht_iter iter;
    struct cds_lfht_node *lfnode;

    if (!fdb)
        return;
    /* Nodes retired while still queued are freed by the drain; the others
     * are freed with the table below. */
    fdb_drain_new(fdb);
    /* No reader remains (the contract), so unlinked nodes are freed at once
     * instead of queueing one call_rcu per entry.  The iterator steps past a
     * node before the node is freed; the wheel's lists die with the fdb. */
    cds_lfht_first(fdb->ht, &iter);
    while ((lfnode = cds_lfht_iter_get_node(&iter)) != NULL) {
        cds_lfht_next(fdb->ht, &iter);
        if (cds_lfht_del(fdb->ht, lfnode) == 0)
            free(fdb_node_of(lfnode)); /* counters die with the table */
    }
    /* Nodes removed earlier may still wait for their grace period; let them
     * go before returning, so that the caller (and LSan) sees no leak.  The
     * barrier puts a QSBR caller offline while it waits. */
    urcu_qsbr_barrier();
    /* Fails only if the table is not empty, which cannot be the case here;
     * a library does not log, so the result is deliberately dropped. */
    (void)cds_lfht_destroy(fdb->ht, NULL);
    free(fdb);
}

/* ---- datapath ---- */

uint32_t fdb_lookup(const struct fdb *fdb, uint16_t vlan, const uint8_t mac[6])
{
    uint64_t key = fdb_key_make(vlan, mac);
    const struct fdb_node *n = fdb_find(fdb, key, fdb_hash(fdb, key));

    return n ? fdb_node_port(n) : FDB_PORT_NONE;
}

/* Second prefetch stage of a batch: the first node of each bucket's chain
 * (or the next bucket when this one is empty: a wasted prefetch, never a
 * fault).  Its hot part is 32 bytes that may straddle two lines.  Skipped
 * for keys equal to their predecessor (need[i] false). */
static inline void fdb_prefetch_first_nodes(const struct cds_lfht_node *buckets,
                                            unsigned long mask, unsigned m,
                                            const unsigned long *hashes, const bool *need)
{
    for (unsigned i = 0; i < m; i++) {
        if (!need[i])
            continue;
        const struct cds_lfht_node *b = &buckets[hashes[i] & mask];
        const char *first = (const char *)fdb_lfnode_unflag(CMM_LOAD_SHARED(b->next));
        __builtin_prefetch(first, 0, 3);
        __builtin_prefetch(first + 31, 0, 3);
    }
}

/* Three passes over each group: hash and prefetch every bucket; read every
 * bucket's first link and prefetch that node; then resolve.  The misses of
 * the group overlap instead of being paid one after the other (one DRAM
 * access is ~160 ns here, a resolved lookup from cache a few ns).  A key
 * equal to the previous one (a burst of one flow) is neither hashed nor
 * looked up again. */
void fdb_lookup_batch(const struct fdb *fdb, unsigned n, const uint16_t *vlans,
                      const uint8_t *const *macs, uint32_t *ports)
{
    fdb_lookup_batch_remote(fdb, n, vlans, macs, ports, NULL);
}

void fdb_lookup_batch_remote(const struct fdb *fdb, unsigned n, const uint16_t *vlans,
                             const uint8_t *const *macs, uint32_t *ports, uint32_t *remotes)
{
    const struct cds_lfht_node *buckets = fdb->buckets;
    const unsigned long mask = CMM_LOAD_SHARED(fdb->bucket_mask);
    uint64_t keys[FDB_BATCH_GROUP];
    unsigned long hashes[FDB_BATCH_GROUP];
    bool need[FDB_BATCH_GROUP];

    for (unsigned base = 0; base < n; base += FDB_BATCH_GROUP) {
        unsigned m = XBR_MIN(n - base, FDB_BATCH_GROUP);

        for (unsigned i = 0; i < m; i++) {
            keys[i] = fdb_key_make(vlans[base + i], macs[base + i]);
            need[i] = i == 0 || keys[i] != keys[i - 1];
            if (!need[i])
                continue;
            hashes[i] = fdb_hash(fdb, keys[i]);
            if (buckets)
                __builtin_prefetch(&buckets[hashes[i] & mask], 0, 3);
        }
        if (buckets)
            fdb_prefetch_first_nodes(buckets, mask, m, hashes, need);
        for (unsigned i = 0; i < m; i++) {
            if (!need[i]) {
                ports[base + i] = ports[base + i - 1];
                if (remotes)
                    remotes[base + i] = remotes[base + i - 1];
                continue;
            }
            const struct fdb_node *e = fdb_find(fdb, keys[i], hashes[i]);
            ports[base + i] = e ? fdb_node_port(e) : FDB_PORT_NONE;
            if (remotes)
                remotes[base + i] = e ? CMM_LOAD_SHARED(e->remote) : FDB_REMOTE_NONE;
        }
    }
}

enum fdb_learn_step { FDB_STEP_DONE, FDB_STEP_RETRY };

/* Learning on an existing node.  Writes only what changed: a refresh on the
 * same port stores the time only when the coarse second moved forward (the
 * kernel's br_fdb_update habit), so a hot entry stays a shared, clean line.
 * "Forward", not just "differs": two workers whose coarse clocks straddle a
 * second boundary would otherwise write 1000, 1001, 1000... in turn. */
static enum fdb_learn_step fdb_learn_existing(struct fdb *fdb, struct fdb_node *e, uint32_t port,
                                              uint32_t remote, uint32_t now_s,
                                              enum fdb_learn_result *res)
{
    if (e->is_static) {
        *res = FDB_LEARN_STATIC;
        return FDB_STEP_DONE;
    }
    uint16_t old = CMM_LOAD_SHARED(e->port);
    if (old == port) {
        if ((int32_t)(now_s - CMM_LOAD_SHARED(e->seen_s)) > 0)
            CMM_STORE_SHARED(e->seen_s, now_s);
        if (XBR_UNLIKELY(CMM_LOAD_SHARED(e->remote) != remote)) {
            /* Behind another VTEP of the same tunnel port (a guest that
             * migrated between hosts): a move, within the port. */
            CMM_STORE_SHARED(e->remote, remote);
            uatomic_inc(&fdb->st_moved);
            *res = FDB_LEARN_MOVED;
            return FDB_STEP_DONE;
        }
        *res = FDB_LEARN_REFRESHED;
        return FDB_STEP_DONE;
    }
    if (old >= FDB_MAX_PORTS)
        return FDB_STEP_RETRY; /* being retired: it is no longer in the table */

    /* A move.  The new port must have room like for a new entry, or a port
     * at its limit could still collect addresses by stealing them. */
    if (!fdb_reserve(&fdb->port_count[port], CMM_LOAD_SHARED(fdb->max_per_port))) {
        uatomic_inc(&fdb->st_limit_port);
        *res = FDB_LEARN_LIMIT_PORT;
        return FDB_STEP_DONE;
    }
    /* Time first: should ageing look in between, it sees a fresh entry.
     * The remote before the port: a reader that sees the new port with the
     * old remote sends one frame to a stale VTEP, no worse than a move. */
    CMM_STORE_SHARED(e->seen_s, now_s);
    CMM_STORE_SHARED(e->remote, remote);
    if (uatomic_cmpxchg(&e->port, old, (uint16_t)port) != old) {
        /* Another worker moved it, or the control thread retired it. */
        uatomic_dec(&fdb->port_count[port]);
        return FDB_STEP_RETRY;
    }
    uatomic_dec(&fdb->port_count[old]);
    uatomic_inc(&fdb->st_moved);
    *res = FDB_LEARN_MOVED;
    return FDB_STEP_DONE;
}

/* fdb_learn() once the arguments are checked and the key hashed. */
static inline enum fdb_learn_result fdb_learn_key(struct fdb *fdb, uint64_t key,
                                                  unsigned long hash, uint32_t port,
                                                  uint32_t remote, uint32_t now_s)
{
    enum fdb_learn_result res;

    /* Each retry follows a change made by another thread in the meantime
     * (a move or a retirement of this very key), so the loop ends. */
    for (;;) {
        struct fdb_node *e = fdb_find(fdb, key, hash);

        if (XBR_LIKELY(e != NULL)) {
            if (fdb_learn_existing(fdb, e, port, remote, now_s, &res) == FDB_STEP_DONE)
                return res;
            continue;
        }

        if (!fdb_reserve(&fdb->port_count[port], CMM_LOAD_SHARED(fdb->max_per_port))) {
            uatomic_inc(&fdb->st_limit_port);
            return FDB_LEARN_LIMIT_PORT;
        }
        if (!fdb_reserve(&fdb->n_learned, CMM_LOAD_SHARED(fdb->max_entries))) {
            uatomic_dec(&fdb->port_count[port]);
            uatomic_inc(&fdb->st_limit_total);
            return FDB_LEARN_LIMIT_TOTAL;
        }
        struct fdb_node *n = fdb_node_new(key, port, remote, now_s, false);
        if (!n) {
            /* The result set has no "out of memory": to the caller this is
             * the table being unable to grow, which is what it is. */
            uatomic_dec(&fdb->n_learned);
            uatomic_dec(&fdb->port_count[port]);
            uatomic_inc(&fdb->st_limit_total);
            return FDB_LEARN_LIMIT_TOTAL;
        }
        struct cds_lfht_node *got =
            cds_lfht_add_unique(fdb->ht, hash, fdb_node_match, &key, &n->lfnode);
        if (got == &n->lfnode) {
            /* Published: now to the control thread's ageing (see the top
             * for why only after the add, and what a flush in between does). */
            (void)cds_wfcq_enqueue(&fdb->newq_head, &fdb->newq_tail, &n->u.newq);
            uatomic_inc(&fdb->st_learned);
            return FDB_LEARN_NEW;
        }
        /* Another worker published the same key first.  Ours was never
         * visible nor queued, so it is freed now, and the reservations
         * returned. */
        free(n);
        uatomic_dec(&fdb->n_learned);
        uatomic_dec(&fdb->port_count[port]);
        e = fdb_node_of(got);
        if (fdb_learn_existing(fdb, e, port, remote, now_s, &res) == FDB_STEP_DONE)
            return res;
    }
}

enum fdb_learn_result fdb_learn(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6],
                                uint32_t port, uint32_t now_s)
{
    if (XBR_UNLIKELY(port >= FDB_MAX_PORTS || !fdb_mac_learnable(mac)))
        return FDB_LEARN_INVALID;

    const uint64_t key = fdb_key_make(vlan, mac);
    return fdb_learn_key(fdb, key, fdb_hash(fdb, key), port, FDB_REMOTE_NONE, now_s);
}

/* Whether a learn right after one that returned r, of the same key on the
 * same port at the same time, would change nothing, and what it returns. */
static inline bool fdb_learn_repeat(enum fdb_learn_result r, enum fdb_learn_result *again)
{
    switch (r) {
    case FDB_LEARN_NEW:
    case FDB_LEARN_MOVED:
    case FDB_LEARN_REFRESHED:
        *again = FDB_LEARN_REFRESHED; /* on this port, seen_s >= now_s */
        return true;
    case FDB_LEARN_STATIC:
        *again = FDB_LEARN_STATIC;
        return true;
    default:
        return false; /* a refusal is tried (and counted) again, as single calls do */
    }
}

/* The passes of fdb_lookup_batch(), then fdb_learn_key() per source. */
void fdb_learn_batch(struct fdb *fdb, unsigned n, const uint16_t *vlans,
                     const uint8_t *const *macs, uint32_t port, uint32_t now_s,
                     enum fdb_learn_result *res)
{
    fdb_learn_batch_remote(fdb, n, vlans, macs, port, NULL, now_s, res);
}

void fdb_learn_batch_remote(struct fdb *fdb, unsigned n, const uint16_t *vlans,
                            const uint8_t *const *macs, uint32_t port, const uint32_t *remotes,
                            uint32_t now_s, enum fdb_learn_result *res)
{
    const struct cds_lfht_node *buckets = fdb->buckets;
    const unsigned long mask = CMM_LOAD_SHARED(fdb->bucket_mask);
    uint64_t keys[FDB_BATCH_GROUP];
    unsigned long hashes[FDB_BATCH_GROUP];
    bool valid[FDB_BATCH_GROUP], need[FDB_BATCH_GROUP];

    if (XBR_UNLIKELY(port >= FDB_MAX_PORTS)) {
        for (unsigned i = 0; i < n; i++)
            res[i] = FDB_LEARN_INVALID;
        return;
    }
    for (unsigned base = 0; base < n; base += FDB_BATCH_GROUP) {
        unsigned m = XBR_MIN(n - base, FDB_BATCH_GROUP);

        for (unsigned i = 0; i < m; i++) {
            valid[i] = fdb_mac_learnable(macs[base + i]);
            need[i] = false;
            if (XBR_UNLIKELY(!valid[i]))
                continue;
            keys[i] = fdb_key_make(vlans[base + i], macs[base + i]);
            if (i > 0 && valid[i - 1] && keys[i] == keys[i - 1] &&
                (!remotes || remotes[base + i] == remotes[base + i - 1])) {
                hashes[i] = hashes[i - 1]; /* for a refusal tried again */
                continue;
            }
            need[i] = true;
            hashes[i] = fdb_hash(fdb, keys[i]);
            if (buckets)
                __builtin_prefetch(&buckets[hashes[i] & mask], 0, 3);
        }
        if (buckets)
            fdb_prefetch_first_nodes(buckets, mask, m, hashes, need);
        for (unsigned i = 0; i < m; i++) {
            enum fdb_learn_result *r = &res[base + i];

            if (XBR_UNLIKELY(!valid[i]))
                *r = FDB_LEARN_INVALID;
            else if (need[i] || !fdb_learn_repeat(r[-1], r))
                *r = fdb_learn_key(fdb, keys[i], hashes[i], port,
                                   remotes ? remotes[base + i] : FDB_REMOTE_NONE, now_s);
        }
    }
}

/* ---- control ---- */

/* Grows the table when static entries push the load factor at the learned
 * limit past FDB_STATIC_SLACK (never shrinks: fdb_set_limits does that).
 * When the memory cannot be had the table simply stays as it is: lookups
 * get slower, nothing fails. */
static void fdb_fit_statics(struct fdb *fdb)
{
    const uint64_t need = (uint64_t)fdb->max_entries + fdb->n_static;

    if (need * FDB_STATIC_SLACK_DEN > (uint64_t)fdb->n_buckets * FDB_STATIC_SLACK_NUM)
        (void)fdb_resize(fdb, fdb_buckets_for(need));
}

int fdb_add_static(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint32_t port)
{
    return fdb_add_static_remote(fdb, vlan, mac, port, FDB_REMOTE_NONE);
}

int fdb_add_static_remote(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint32_t port,
                          uint32_t remote)
{
    struct fdb_node *fresh = NULL;

    if (!fdb || !mac || port >= FDB_MAX_PORTS || !fdb_mac_learnable(mac))
        return -EINVAL;

    const uint64_t key = fdb_key_make(vlan, mac);
    const unsigned long hash = fdb_hash(fdb, key);

    for (;;) {
        struct cds_lfht_iter iter;
        struct cds_lfht_node *lfnode;

        cds_lfht_lookup(fdb->ht, hash, fdb_node_match, &key, &iter);
        lfnode = cds_lfht_iter_get_node(&iter);
        if (lfnode) {
            struct fdb_node *e = fdb_node_of(lfnode);
            if (e->is_static) {
                /* Only this (control) thread writes a static node. */
                CMM_STORE_SHARED(e->remote, remote);
                CMM_STORE_SHARED(e->port, (uint16_t)port);
                free(fresh); /* never published */
                return 0;
            }
        }
        if (!fresh) {
            fresh = fdb_node_new(key, port, remote, 0, true);
            if (!fresh)
                return -ENOMEM;
        }
        if (lfnode) {
            /* Learned -> static: a new node, because "static" is immutable
             * per node (a worker moving the old one cannot undo it). */
            if (cds_lfht_replace(fdb->ht, &iter, hash, fdb_node_match, &key,
                                 &fresh->lfnode) == 0) {
                fdb_node_retire(fdb, fdb_node_of(lfnode));
                uatomic_inc(&fdb->n_static);
                fdb_fit_statics(fdb);
                return 0;
            }
            continue; /* it went away meanwhile */
        }
        if (cds_lfht_add_unique(fdb->ht, hash, fdb_node_match, &key, &fresh->lfnode) ==
            &fresh->lfnode) {
            uatomic_inc(&fdb->n_static);
            fdb_fit_statics(fdb);
            return 0;
        }
        /* A worker learned it in between: go round and replace that. */
    }
}

int fdb_del(struct fdb *fdb, uint16_t vlan, const uint8_t mac[6])
{
    if (!fdb || !mac)
        return -EINVAL;

    const uint64_t key = fdb_key_make(vlan, mac);
    struct fdb_node *e = fdb_find(fdb, key, fdb_hash(fdb, key));

    return e && fdb_node_remove(fdb, e) ? 0 : -ENOENT;
}

static bool fdb_flush_one(struct fdb *fdb, struct fdb_node *n, const void *arg)
{
    const uint32_t port = *(const uint32_t *)arg;

    /* A learned entry moving away right now may still go: it is relearned
     * on its next frame, as after any flush. */
    if (port != FDB_ALL_PORTS && fdb_node_port(n) != port)
        return false;
    return fdb_node_remove(fdb, n);
}

size_t fdb_flush(struct fdb *fdb, uint32_t port, bool with_static)
{
    struct cds_lfht_iter iter;
    struct fdb_node *n;
    size_t removed = 0;

    if (!fdb || (port >= FDB_MAX_PORTS && port != FDB_ALL_PORTS))
        return 0;
    if (!with_static) {
        /* Learned entries only (spanning tree's flushes): their lists, not
         * the table, which may hold far more static entries.  Entries a
         * worker creates from here on are not flushed, as with a walk. */
        fdb_drain_new(fdb);
        return fdb_learned_walk(fdb, fdb_flush_one, &port);
    }
    fdb_for_each_node(fdb, &iter, n)
        removed += fdb_flush_one(fdb, n, &port);
    return removed;
}

/* Whether n has been unseen for at least limit seconds as of now_s.  Signed
 * difference: a worker with a newer clock than ours may have stamped the
 * entry "in the future"; that entry is fresh, not old. */
static inline bool fdb_expired(const struct fdb_node *n, uint32_t now_s, uint32_t limit)
{
    int32_t age = (int32_t)(now_s - CMM_LOAD_SHARED(n->seen_s));

    return age >= 0 && (uint32_t)age >= limit;
}

struct fdb_age_arg {
    uint32_t now_s, limit;
};

/* A worker may refresh an entry between our read of its time and the
 * removal; that station is then relearned from its next frame, as in the
 * kernel bridge.  Cheaper than a lock on every refresh. */
static bool fdb_age_one(struct fdb *fdb, struct fdb_node *n, const void *arg)
{
    const struct fdb_age_arg *a = arg;

    return fdb_expired(n, a->now_s, a->limit) && fdb_node_remove(fdb, n);
}

size_t fdb_age(struct fdb *fdb, uint32_t now_s, uint32_t max_age_s)
{
    if (!fdb)
        return 0;
    fdb_drain_new(fdb);
    const struct fdb_age_arg a = {
        .now_s = now_s, .limit = max_age_s == UINT32_MAX ? fdb->ageing_s : max_age_s};
    size_t removed = fdb_learned_walk(fdb, fdb_age_one, &a);
    uatomic_add(&fdb->st_aged, removed);
    return removed;
}

size_t fdb_age_tick(struct fdb *fdb, uint32_t now_s, unsigned budget)
{
    size_t removed = 0;

    if (!fdb)
        return 0;
    fdb_drain_new(fdb);

    /* The slots of the seconds up to now_s came due. */
    int32_t behind = (int32_t)(now_s - fdb->wheel_next_s);
    if (!fdb->wheel_started || behind >= (int32_t)FDB_WHEEL_SLOTS) {
        /* First call, or a whole turn or more passed unattended: look at
         * everything once. */
        fdb_pending_take_all(fdb);
        fdb->wheel_started = true;
        fdb->wheel_next_s = now_s + 1;
    } else if (behind >= 0) {
        for (; fdb->wheel_next_s != now_s + 1; fdb->wheel_next_s++)
            fdb_pending_take(fdb, &fdb->wheel[fdb->wheel_next_s & FDB_WHEEL_MASK]);
    }

    const uint32_t ageing = fdb->ageing_s;
    for (unsigned seen = 0; (budget == 0 || seen < budget) && !cds_list_empty(&fdb->age_pending);
         seen++) {
        struct fdb_node *n = fdb_node_of_age(fdb->age_pending.next);

        fdb->age_examined++;
        if (fdb_expired(n, now_s, ageing)) {
            if (fdb_node_remove(fdb, n)) {
                removed++;
                continue;
            }
            /* Only this thread unlinks nodes and it takes them off the wheel
             * when it does, so a node here is in the table; should that ever
             * not hold, the node is dropped from the wheel, not looked at
             * again. */
            cds_list_del(&n->u.age);
            n->age_state = FDB_AGE_NONE;
            continue;
        }
        /* Refreshed meanwhile: to the slot of its new expiry (which is after
         * now_s, so after the slots just taken). */
        cds_list_move(&n->u.age, fdb_wheel_slot(fdb, CMM_LOAD_SHARED(n->seen_s) + ageing));
    }
    uatomic_add(&fdb->st_aged, removed);
    return removed;
}

void fdb_set_ageing(struct fdb *fdb, uint32_t ageing_s)
{
    if (!fdb)
        return;
    uint32_t old = fdb->ageing_s, now = fdb_ageing_clamp(ageing_s);
    CMM_STORE_SHARED(fdb->ageing_s, now);
    /* Slots were chosen by the old time: with a shorter one, entries may be
     * due before their slot comes, so every one is looked at again.  With a
     * longer one, entries come up early and are simply moved on. */
    if (now < old && fdb->wheel_started)
        fdb_pending_take_all(fdb);
}

uint32_t fdb_get_ageing(const struct fdb *fdb)
{
    return fdb ? CMM_LOAD_SHARED(fdb->ageing_s) : 0;
}

int fdb_set_limits(struct fdb *fdb, uint32_t max_entries, uint32_t max_per_port)
{
    if (!fdb || max_entries > FDB_MAX_ENTRIES_LIMIT || max_per_port > FDB_MAX_ENTRIES_LIMIT)
        return -EINVAL;
    const uint32_t me = max_entries ? max_entries : fdb->max_entries;
    const uint32_t mp = max_per_port ? max_per_port : fdb->max_per_port;
    /* Sized for the limit, or for what is there when the limit went below it
     * (those entries are kept). */
    const uint64_t held = CMM_LOAD_SHARED(fdb->n_learned);
    const unsigned long nb = fdb_buckets_for((me > held ? me : held) + (uint64_t)fdb->n_static);
    int r;

    /* Grow before raising the limit, so that learning up to it never fills a
     * table sized for less; shrink after lowering it. */
    if (nb > fdb->n_buckets && (r = fdb_resize(fdb, nb)) < 0)
        return r;
    CMM_STORE_SHARED(fdb->max_entries, me);
    CMM_STORE_SHARED(fdb->max_per_port, mp);
    if (nb < fdb->n_buckets)
        (void)fdb_resize(fdb, nb); /* shrinking needs no memory: cannot fail */
    return 0;
}

int fdb_foreach(const struct fdb *fdb, uint32_t now_s,
                int (*cb)(const struct fdb_entry_info *e, void *aux), void *aux)
{
    struct cds_lfht_iter iter;
    struct fdb_node *n;

    if (!fdb || !cb)
        return -EINVAL;
    fdb_for_each_node(fdb, &iter, n) {
        struct fdb_entry_info info = {0};
        uint32_t port = fdb_node_port(n);

        if (port == FDB_PORT_NONE)
            continue; /* retired while we walked past it */
        fdb_key_split(n->key, &info.vlan, info.mac);
        info.port = port;
        info.remote = CMM_LOAD_SHARED(n->remote);
        info.is_static = n->is_static;
        if (!n->is_static) {
            int32_t age = (int32_t)(now_s - CMM_LOAD_SHARED(n->seen_s));
            info.age_s = age > 0 ? (uint32_t)age : 0;
        }
        int r = cb(&info, aux);
        if (r)
            return r;
    }
    return 0;
}

void fdb_set_change_hook(struct fdb *fdb, fdb_change_fn *fn, void *aux)
{
    fdb->change_fn = fn;
    fdb->change_aux = aux;
}

int fdb_get(const struct fdb *fdb, uint16_t vlan, const uint8_t mac[6], uint32_t now_s,
            struct fdb_entry_info *e)
{
    uint64_t key = fdb_key_make(vlan, mac);
    const struct fdb_node *n = fdb_find(fdb, key, fdb_hash(fdb, key));
    uint32_t port = n ? fdb_node_port(n) : FDB_PORT_NONE;
    if (port == FDB_PORT_NONE)
        return -ENOENT;
    memset(e, 0, sizeof(*e));
    memcpy(e->mac, mac, 6);
    e->vlan = vlan;
    e->port = port;
    e->remote = CMM_LOAD_SHARED(n->remote);
    e->is_static = n->is_static;
    if (!n->is_static) {
        int32_t age = (int32_t)(now_s - CMM_LOAD_SHARED(n->seen_s));
        e->age_s = age > 0 ? (uint32_t)age : 0;
    }
    return 0;
}

void fdb_get_stats(const struct fdb *fdb, struct fdb_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof(*st));
    if (!fdb)
        return;
    uint32_t n_static = CMM_LOAD_SHARED(fdb->n_static);
    st->learned = uatomic_read(&fdb->st_learned);
    st->moved = uatomic_read(&fdb->st_moved);
    st->limit_port = uatomic_read(&fdb->st_limit_port);
    st->limit_total = uatomic_read(&fdb->st_limit_total);
    st->aged = uatomic_read(&fdb->st_aged);
    /* While workers learn this may include an insert or two in flight. */
    st->entries = CMM_LOAD_SHARED(fdb->n_learned) + n_static;
    st->static_entries = n_static;
    st->max_entries = CMM_LOAD_SHARED(fdb->max_entries);
    st->max_per_port = CMM_LOAD_SHARED(fdb->max_per_port);
    st->buckets = (uint32_t)fdb->n_buckets;
}

uint32_t fdb_port_count(const struct fdb *fdb, uint32_t port)
{
    if (!fdb || port >= FDB_MAX_PORTS)
        return 0;
    return CMM_LOAD_SHARED(fdb->port_count[port]);
}

/* ---- for the tests (fdb-private.h) ---- */

uint64_t fdb_debug_age_examined(const struct fdb *fdb)
{
    return fdb ? fdb->age_examined : 0;
}

unsigned long fdb_debug_count_buckets(const struct fdb *fdb)
{
    /* The bucket nodes on the split-ordered list, from bucket 0: a node whose
     * next pointer carries the bucket flag (bit 1) and not the removed flag
     * (bit 0) is a live bucket (rculfhash.c's flag layout).  Only with the
     * recognised contiguous array, and only with no concurrent resize. */
    unsigned long count = 0;

    if (!fdb || !fdb->buckets)
        return 0;
    for (const struct cds_lfht_node *node = &fdb->buckets[0]; node;) {
        uintptr_t next = (uintptr_t)CMM_LOAD_SHARED(node->next);

        if ((next & 2) && !(next & 1))
            count++;
        node = fdb_lfnode_unflag((const struct cds_lfht_node *)next);
    }
    return count;
}
