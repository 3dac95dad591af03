/* xensim.h — the Xen simulator's own API, for tests and tools.
 *
 * libxensim implements the public API of libxengnttab (xengnttab_* and
 * xengntshr_*) and libxenevtchn (xenevtchn_*) — the real headers
 * <xengnttab.h> and <xenevtchn.h> are used unchanged — over a "world" shared
 * by processes: link a program with libxensim instead of -lxengnttab
 * -lxenevtchn and it talks to simulated domains instead of Xen. (It can also
 * be LD_PRELOADed in front of a program linked with the real libraries.)
 *
 * Environment, read when a handle is opened:
 *   XENSIM_DIR    the world directory (required). The world file is created
 *                 there with default sizes by the first process if missing.
 *   XENSIM_DOMID  the domain this process plays (default 0, i.e. dom0).
 *
 * This header adds what a hypervisor's toolstack and a test need: create and
 * destroy worlds and domains, read the per-domain counters that tell a leaked
 * mapping or binding, choose how grant copy validates its arguments.
 * Functions return 0 or a negative errno; they never log.
 */
#ifndef XBR_XENSIM_H
#define XBR_XENSIM_H

#include <stdbool.h>
#include <stdint.h>

#define XENSIM_ENV_DIR "XENSIM_DIR"
#define XENSIM_ENV_DOMID "XENSIM_DOMID"

/* Where the checks of xengnttab_grant_copy() happen.
 *
 * GNTDEV (default) is what a dom0 program sees on Linux: the gntdev driver
 * rejects a segment whose grant side has offset + len > 4096, or that has
 * no grant side at all, by failing the whole call with EINVAL (segments in
 * batches of 16 copy ops already issued stay done; later ones are not done
 * and their status is left as gntdev set it, GNTST_okay); a bad local buffer
 * fails the call with EFAULT. Everything else is reported per segment by the
 * hypervisor.
 *
 * XEN reports every problem per segment, as the GNTTABOP_copy hypercall does
 * when a kernel backend calls it directly: offset + len > 4096 on either side
 * is GNTST_bad_copy_arg and the call itself succeeds. */
enum xensim_copy_check { XENSIM_COPY_GNTDEV = 0, XENSIM_COPY_XEN = 1 };

struct xensim_dom_stats {
    int32_t domid;
    bool alive;
    uint32_t pages;   /* pool pages the domain owns (shared with xengntshr) */
    uint32_t grants;  /* grant entries in use in its own table */
    uint32_t pinned;  /* of those, entries currently mapped by another domain */
    uint32_t maps;    /* foreign pages this domain currently has mapped */
    uint32_t ports;   /* event-channel ports allocated in this domain */
    uint32_t gnttab_handles, gntshr_handles, evtchn_handles;
    uint64_t copy_ok, copy_err; /* grant-copy segments done by this domain */
    uint64_t map_err;           /* grant map attempts refused */
    uint64_t notify;            /* event-channel sends from this domain */
};

/* Creates the world directory and file (nr_pages 0 = 65536 pages of sparse
 * guest memory). -EEXIST if a world is already there. */
int xensim_world_create(const char *dir, unsigned nr_pages);
/* Removes the world file and its FIFOs and the directory if then empty.
 * Processes still attached keep a working but orphaned view. */
int xensim_world_destroy(const char *dir);

/* The following act on the world of $XENSIM_DIR. */

int xensim_set_copy_check(enum xensim_copy_check mode);

/* Marks the domain alive (idempotent). Domains also come alive when one of
 * their processes opens a handle. */
int xensim_domain_create(uint32_t domid);
/* The domain dies, as when the toolstack destroys it: its grant entries are
 * revoked (pages still mapped by others stay until unmapped), its event
 * channels are closed (interdomain peers become unbound), its handles stop
 * working, and VIRQ_DOM_EXC is raised for whoever bound it. */
int xensim_domain_destroy(uint32_t domid);

/* Counters of one domain; handles of exited processes are reaped first,
 * so what remains is held by living processes. -ENOENT if the domain never
 * existed. */
int xensim_dom_stats(uint32_t domid, struct xensim_dom_stats *st);
/* Fills up to max entries, returns how many domains exist (alive or dead). */
int xensim_dom_list(struct xensim_dom_stats *out, unsigned max);

/* Releases what exited processes still hold; returns how many handles. */
int xensim_reap(void);

/* A grant entry as the granting domain wrote it (for tests). */
int xensim_grant_entry(uint32_t domid, uint32_t ref, uint16_t *flags, uint16_t *granted_to);

/* The Xen status (GNTST_*) of the first refused grant of this thread's most
 * recent failed xengnttab_map_* call (the real library only gives EINVAL). */
int xensim_last_map_status(void);

#endif
