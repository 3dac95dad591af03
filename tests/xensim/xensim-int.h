/* xensim-int.h — the layout of a simulated Xen "world" and the helpers that
 * the simulator's own files share. Nothing outside tests/xensim/xensim*.c
 * includes this header; tests and tools use xensim.h.
 *
 * A world is one file, <XENSIM_DIR>/world, mapped MAP_SHARED by every process
 * that takes part. It plays the hypervisor's memory:
 *
 *   header       sizes, offsets, the one process-shared robust mutex, options
 *   doms[]       one slot per domain: domid, alive/dead, counters
 *   gnt[]        per domain, the grant table (struct grant_entry_v1, exactly
 *                as a guest writes it) plus Xen's private per-entry state (pin
 *                counts, which gntshr handle owns it)
 *   ports[]      per domain, the event-channel table
 *   handles[]    every open gnttab / gntshr / evtchn handle of every process,
 *                with its pid (so that a dead process can be reaped) and, for
 *                evtchn handles, the ring of delivered ports
 *   maps[]       one record per page a gnttab handle has mapped
 *   pages[]      ownership and reference count of every pool page
 *   pool         the guests' memory: nr_pages pages of 4 KiB
 *
 * Locking: every change to the tables happens under hdr->lock, a robust
 * process-shared mutex (a process that dies holding it does not wedge the
 * world). The pool itself is not locked: grants are the only thing that
 * make its bytes shared, exactly as on Xen. Grant copies run under the lock,
 * which is what makes a copy atomic with respect to revocation.
 *
 * Wake-ups: each evtchn handle owns a FIFO <XENSIM_DIR>/ev/<slot>.<gen>; the
 * FIFO holds one byte exactly when the handle's port ring is non-empty (kept
 * under the lock), so poll() on it behaves like poll() on /dev/xen/evtchn.
 */
#ifndef XBR_XENSIM_INT_H
#define XBR_XENSIM_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <xen/grant_table.h>

#include "xensim.h"

#define XS_MAGIC 0x31304d49534e4558ull /* "XENSIM01" */
#define XS_VERSION 1u

#define XS_PAGE_SIZE 4096u
#define XS_MAX_DOMS 64u
#define XS_MAX_GREFS 16384u /* 32 grant frames of v1 entries */
#define XS_GREFS_PER_FRAME (XS_PAGE_SIZE / 8u)
#define XS_MAX_PORTS 1024u /* per domain; port 0 is never allocated */
#define XS_MAX_HANDLES 512u
#define XS_MAX_MAPS 65536u
#define XS_DEFAULT_PAGES 65536u
#define XS_MAX_PAGES (1u << 22) /* 16 GiB of (sparse) guest memory */
#define XS_NO_PORT UINT32_MAX
#define XS_GNTDEV_COPY_BATCH 16u /* ops per hypercall in Linux gntdev's grant copy */

enum xs_dom_state { XS_DOM_FREE = 0, XS_DOM_ALIVE, XS_DOM_DEAD };

struct xs_dom {
    int32_t domid; /* -1 for a free slot */
    uint32_t state;
    uint32_t gen;            /* bumped when the domain is (re)created or destroyed */
    uint32_t nr_grant_frames; /* grant table size, grows like a guest's, never shrinks */
    uint32_t next_ref;       /* allocation hint */
    /* counters (see struct xensim_dom_stats) */
    uint32_t nr_pages, nr_grants, nr_pinned, nr_maps, nr_ports;
    uint32_t nr_gnttab_h, nr_gntshr_h, nr_evtchn_h;
    uint64_t nr_copy_ok, nr_copy_err, nr_map_err, nr_notify;
};

struct xs_gnt {
    struct grant_entry_v1 e; /* flags, domid, frame (pool page number) */
    uint16_t pin_ro, pin_rw; /* active foreign mappings (Xen's active entry) */
    uint8_t in_use;          /* allocated by gntshr */
    uint8_t revoke_pending;  /* unshared while mapped: revoked at the last unmap */
    uint16_t pad;
    int32_t owner_h;         /* gntshr handle slot, -1 after a domain death */
};

enum xs_port_state { XS_PORT_FREE = 0, XS_PORT_UNBOUND, XS_PORT_INTERDOMAIN, XS_PORT_VIRQ };

struct xs_port {
    uint8_t state;
    uint8_t masked;  /* delivered and not yet unmasked */
    uint8_t pending; /* raised while masked */
    uint8_t queued;  /* sitting in the handle's ring */
    int32_t handle;  /* evtchn handle slot bound to it, -1 none */
    int32_t remote_dom;
    uint32_t remote_port; /* or the VIRQ number */
};

enum xs_handle_kind { XS_H_FREE = 0, XS_H_GNTTAB, XS_H_GNTSHR, XS_H_EVTCHN };

#define XS_HRING XS_MAX_PORTS

struct xs_handle {
    uint32_t kind;
    uint32_t gen; /* bumped on every allocation of the slot */
    int32_t domid;
    uint32_t dom_gen;
    int32_t pid;
    uint32_t restrict_domid; /* evtchn: UINT32_MAX = unrestricted */
    uint64_t starttime;      /* /proc/<pid>/stat field 22: tells pid reuse apart */
    uint32_t nr_maps, nr_ports, nr_shared;
    uint32_t max_grants;     /* 0 = unlimited */
    uint32_t ring_head, ring_tail;
};

struct xs_map {
    int32_t handle;    /* -1 when free */
    int32_t next_free;
    int32_t dom;       /* granting domain's slot */
    uint32_t ref;
    uint32_t page;
    uint8_t rw;
    uint8_t notify_flags; /* XS_NOTIFY_* */
    uint16_t notify_off;
    uint32_t notify_port;  /* a port of the mapping domain */
};

#define XS_NOTIFY_CLEAR_BYTE 1u
#define XS_NOTIFY_SEND_EVENT 2u

struct xs_page {
    int32_t owner;     /* domain slot, -1 when free */
    uint32_t refs;     /* 1 while shared by its owner + 1 per foreign mapping */
    int32_t next_free;
    uint32_t ref;      /* grant ref while shared */
};

struct xs_hdr {
    uint64_t magic;
    uint32_t version, hdr_size;
    uint32_t nr_pages;
    uint32_t copy_check; /* enum xensim_copy_check */
    uint64_t world_id;
    uint64_t off_doms, off_gnt, off_ports, off_handles, off_hrings, off_maps, off_pages;
    uint64_t off_pool, file_size;
    uint32_t page_bump;  /* pages [page_bump, nr_pages) never used yet */
    int32_t page_free;   /* free list of used-then-freed pages */
    uint32_t pages_used;
    uint32_t map_bump;
    int32_t map_free;
    uint32_t ready;
    uint64_t nr_reaped;
    pthread_mutex_t lock;
};

/* The per-process view of the world. */
struct xs_world {
    char *dir;
    int fd;              /* the world file: tables and pool */
    size_t meta_len;     /* mapped prefix: everything before the pool */
    struct xs_hdr *hdr;
    uint8_t *pool;       /* the pool, mapped whole: grant copies are memcpy */
    size_t pool_len;
    struct xs_dom *doms;
    struct xs_gnt *gnt;       /* [XS_MAX_DOMS][XS_MAX_GREFS] */
    struct xs_port *ports;    /* [XS_MAX_DOMS][XS_MAX_PORTS] */
    struct xs_handle *handles;
    uint32_t *hrings;         /* [XS_MAX_HANDLES][XS_HRING] */
    struct xs_map *maps;
    struct xs_page *pages;
    unsigned users;           /* open handles of this process */
    dev_t dev;                /* of the world file: tells a re-created world apart */
    ino_t ino;
};

/* xensim.c */

/* The world the current call works on: every entry point taking a handle
 * sets it from the handle (a process may hold handles of several worlds, e.g.
 * a test that moves to a fresh world while an old handle leaked). */
extern __thread struct xs_world *xs_w;

/* Attaches this process to $XENSIM_DIR's world (creating the world with
 * default sizes when the directory holds none yet), counts one user and
 * makes it xs_w. Returns the world or NULL with errno. */
struct xs_world *xs_world_get(void);
void xs_world_put(struct xs_world *w);

void xs_lock(void);
void xs_unlock(void);

/* The calling process's domid (env XENSIM_DOMID, default 0), or -1 + errno. */
int xs_self_domid(void);

/* Domain slot for domid, or -1. create: make it alive if missing or dead. */
int xs_dom_find(uint32_t domid);
int xs_dom_get_alive(uint32_t domid, bool create);
static inline bool xs_dom_alive(int slot)
{
    return slot >= 0 && xs_w->doms[slot].state == XS_DOM_ALIVE;
}

static inline struct xs_gnt *xs_gnt_at(int dom, uint32_t ref)
{
    return &xs_w->gnt[(size_t)dom * XS_MAX_GREFS + ref];
}
static inline struct xs_port *xs_port_at(int dom, uint32_t port)
{
    return &xs_w->ports[(size_t)dom * XS_MAX_PORTS + port];
}
static inline uint64_t xs_page_off(uint32_t page)
{
    return xs_w->hdr->off_pool + (uint64_t)page * XS_PAGE_SIZE;
}
static inline uint8_t *xs_page_addr(uint32_t page)
{
    return xs_w->pool + (size_t)page * XS_PAGE_SIZE;
}

/* Handles. Allocation checks that the domain is alive (creating it). */
int xs_handle_alloc(enum xs_handle_kind kind, int domid);
void xs_handle_free(int slot);
/* True when the handle's domain has not died since it was opened. */
bool xs_handle_valid(int slot);

/* Pool pages. */
int64_t xs_page_alloc(int dom);         /* page number, or -ENOMEM */
void xs_page_put(uint32_t page);         /* drop one reference */

/* Reaping of handles whose process is gone (the kernel's close-on-exit). */
void xs_reap_locked(void);

/* xensim-gnttab.c: releases of everything a handle holds, for close/reap. */
void xs_gnttab_release_locked(int hslot, bool owner_alive);
void xs_gntshr_release_locked(int hslot);
void xs_gnt_revoke_locked(int dom, uint32_t ref); /* end access, deferred if mapped */

/* xensim-evtchn.c */
void xs_evtchn_release_locked(int hslot);
/* Close one port the way EVTCHNOP_close does (remote end becomes unbound). */
void xs_port_close_locked(int dom, uint32_t port);
/* Raise port `port` of domain slot `dom` (the receiving side). */
void xs_port_raise_locked(int dom, uint32_t port);
/* Send on a local port the way EVTCHNOP_send does. */
int xs_port_send_locked(int dom, uint32_t port);
void xs_virq_raise_locked(unsigned virq);
/* Path of a handle's wake-up FIFO. */
int xs_fifo_path(int hslot, uint32_t gen, char *buf, size_t size);

#define XS_EXPORT __attribute__((visibility("default")))

#endif
