/* xensim-gnttab.c — xengnttab_* (using grants) and xengntshr_* (granting)
 * over the simulated world.
 *
 * What each call checks, and how it fails, follows the real stack: Linux's
 * gntdev/gntalloc drivers in front of Xen's grant_table.c.
 *
 *   map      per ref, as GNTTABOP_map_grant_ref: unknown or dead domain
 *            GNTST_bad_domain; ref beyond the granter's table GNTST_bad_gntref;
 *            entry not GTF_permit_access, or granted to another domain, or a
 *            writable map of a GTF_readonly entry GNTST_general_error. gntdev
 *            turns any refusal into "mmap failed, errno EINVAL, nothing
 *            mapped"; xensim_last_map_status() tells which status it was.
 *            A mapping pins the entry (GTF_reading / GTF_writing set in the
 *            granter's entry, as Xen does) until it is unmapped.
 *   copy     see enum xensim_copy_check in xensim.h; per-op checks are Xen's
 *            acquire_grant_for_copy(): source first, then destination.
 *   unshare  (gntalloc) ends foreign access; an entry still mapped by the
 *            other side stays valid until its last unmap, then is revoked
 *            (Linux's deferred gnttab_end_foreign_access).
 */
#include "xensim-int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xengnttab.h>

struct xs_region {
    struct xs_region *next;
    uint8_t *addr;
    uint32_t count;
    uint32_t live;           /* gntshr: pages not yet unshared */
    uint8_t notify_flags;    /* gntshr notify (page 0 of the region) */
    uint16_t notify_off;
    uint32_t notify_port;
    int32_t idx[];           /* gnttab: map record per page; gntshr: grant ref, -1 once unshared */
};

struct xengntdev_handle {
    struct xs_world *w;
    int slot;
    uint32_t gen;
    int domid;
    pid_t pid;               /* opener; a forked child must not release */
    int fd;
    enum xs_handle_kind kind;
    uint32_t max_grants, nr_mapped;
    pthread_mutex_t lock;    /* regions */
    struct xs_region *regions;
};

static __thread int last_map_status;

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

XS_EXPORT int xensim_last_map_status(void)
{
    return last_map_status;
}

static struct xengntdev_handle *handle_open(enum xs_handle_kind kind, unsigned flags)
{
    struct xengntdev_handle *h;
    int domid, slot, e;

    (void)flags;
    domid = xs_self_domid();
    if (domid < 0)
        return NULL;
    if (!xs_world_get())
        return NULL;
    h = calloc(1, sizeof(*h));
    if (!h) {
        xs_world_put(xs_w);
        return NULL;
    }
    h->w = xs_w;
    h->fd = fcntl(xs_w->fd, F_DUPFD_CLOEXEC, 0);
    if (h->fd < 0)
        goto fail;
    xs_lock();
    slot = xs_handle_alloc(kind, domid);
    if (slot >= 0)
        h->gen = xs_w->handles[slot].gen;
    xs_unlock();
    if (slot < 0) {
        errno = -slot;
        goto fail;
    }
    h->slot = slot;
    h->domid = domid;
    h->pid = getpid();
    h->kind = kind;
    pthread_mutex_init(&h->lock, NULL);
    return h;
fail:
    e = errno;
    if (h->fd >= 0)
        (void)close(h->fd);
    free(h);
    xs_world_put(xs_w);
    errno = e;
    return NULL;
}

/* True when the shared slot still belongs to this handle and its domain
 * lives; sets errno otherwise. Call locked. */
static bool handle_usable(const struct xengntdev_handle *h)
{
    const struct xs_handle *sh = &xs_w->handles[h->slot];

    if (sh->kind != h->kind || sh->gen != h->gen) {
        errno = EBADF;
        return false;
    }
    if (!xs_handle_valid(h->slot)) {
        errno = ESRCH;
        return false;
    }
    return true;
}

/* ---- grant entry checks (Xen's side) ---------------------------------- */

/* Checks that domain `caller` may access (dom, ref) for reading or writing.
 * Returns GNTST_okay with *slot / *page, or a GNTST_* error. */
static int gnt_check_locked(uint32_t caller, uint32_t domid, uint32_t ref, bool write, int *slot,
                            uint32_t *page)
{
    const struct xs_gnt *g;
    int s;

    if (domid == DOMID_SELF)
        domid = caller;
    s = xs_dom_find(domid);
    if (!xs_dom_alive(s))
        return GNTST_bad_domain;
    if (ref >= xs_w->doms[s].nr_grant_frames * XS_GREFS_PER_FRAME || ref >= XS_MAX_GREFS)
        return GNTST_bad_gntref;
    g = xs_gnt_at(s, ref);
    if ((g->e.flags & GTF_type_mask) != GTF_permit_access || g->e.domid != caller)
        return GNTST_general_error;
    if (write && (g->e.flags & GTF_readonly))
        return GNTST_general_error;
    if (g->e.frame >= xs_w->hdr->nr_pages)
        return GNTST_general_error;
    *slot = s;
    *page = g->e.frame;
    return GNTST_okay;
}

static void gnt_pin_locked(int dom, uint32_t ref, bool rw)
{
    struct xs_gnt *g = xs_gnt_at(dom, ref);

    if (!g->pin_ro && !g->pin_rw)
        xs_w->doms[dom].nr_pinned++;
    if (rw)
        g->pin_rw++;
    else
        g->pin_ro++;
    g->e.flags |= GTF_reading | (rw ? GTF_writing : 0);
}

static void gnt_finish_revoke_locked(int dom, uint32_t ref)
{
    struct xs_gnt *g = xs_gnt_at(dom, ref);
    uint32_t page = g->e.frame;

    memset(&g->e, 0, sizeof(g->e));
    g->in_use = 0;
    g->revoke_pending = 0;
    g->owner_h = -1;
    if (xs_w->doms[dom].nr_grants)
        xs_w->doms[dom].nr_grants--;
    xs_page_put(page); /* the owner's reference */
}

static void gnt_unpin_locked(int dom, uint32_t ref, bool rw)
{
    struct xs_gnt *g = xs_gnt_at(dom, ref);

    if (rw && g->pin_rw)
        g->pin_rw--;
    else if (!rw && g->pin_ro)
        g->pin_ro--;
    if (!g->pin_rw)
        g->e.flags &= (uint16_t)~GTF_writing;
    if (!g->pin_rw && !g->pin_ro) {
        g->e.flags &= (uint16_t)~GTF_reading;
        if (xs_w->doms[dom].nr_pinned)
            xs_w->doms[dom].nr_pinned--;
        if (g->revoke_pending)
            gnt_finish_revoke_locked(dom, ref);
    }
}

void xs_gnt_revoke_locked(int dom, uint32_t ref)
{
    struct xs_gnt *g = xs_gnt_at(dom, ref);
    int oh = g->owner_h;

    if (!g->in_use || g->revoke_pending)
        return;
    if (oh >= 0 && xs_w->handles[oh].nr_shared)
        xs_w->handles[oh].nr_shared--;
    g->owner_h = -1;
    if (g->pin_ro || g->pin_rw)
        g->revoke_pending = 1; /* gnttab_end_foreign_access() has to wait */
    else
        gnt_finish_revoke_locked(dom, ref);
}

/* ---- map records ------------------------------------------------------ */

static int map_alloc_locked(void)
{
    struct xs_hdr *hdr = xs_w->hdr;
    int i;

    if (hdr->map_free >= 0) {
        i = hdr->map_free;
        hdr->map_free = xs_w->maps[i].next_free;
    } else if (hdr->map_bump < XS_MAX_MAPS) {
        i = (int)hdr->map_bump++;
    } else {
        return -1;
    }
    memset(&xs_w->maps[i], 0, sizeof(xs_w->maps[i]));
    xs_w->maps[i].next_free = -1;
    return i;
}

static void map_release_locked(int mi)
{
    struct xs_map *m = &xs_w->maps[mi];
    struct xs_handle *h = &xs_w->handles[m->handle];
    int mapper = xs_dom_find((uint32_t)h->domid);

    if (m->notify_flags & XS_NOTIFY_CLEAR_BYTE) {
        static const uint8_t zero;
        (void)!pwrite(xs_w->fd, &zero, 1, (off_t)(xs_page_off(m->page) + m->notify_off));
    }
    if ((m->notify_flags & XS_NOTIFY_SEND_EVENT) && xs_dom_alive(mapper))
        (void)xs_port_send_locked(mapper, m->notify_port);
    gnt_unpin_locked(m->dom, m->ref, m->rw);
    xs_page_put(m->page);
    if (mapper >= 0 && xs_w->doms[mapper].nr_maps)
        xs_w->doms[mapper].nr_maps--;
    if (h->nr_maps)
        h->nr_maps--;
    m->handle = -1;
    m->next_free = xs_w->hdr->map_free;
    xs_w->hdr->map_free = mi;
}

void xs_gnttab_release_locked(int hslot, bool owner_alive)
{
    (void)owner_alive;
    for (uint32_t i = 0; i < xs_w->hdr->map_bump; i++)
        if (xs_w->maps[i].handle == hslot && xs_w->handles[hslot].nr_maps)
            map_release_locked((int)i);
}

/* ---- xengnttab -------------------------------------------------------- */

XS_EXPORT xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger;
    return handle_open(XS_H_GNTTAB, open_flags);
}

static void regions_free(struct xengntdev_handle *h, bool unmap)
{
    struct xs_region *r = h->regions, *n;

    for (; r; r = n) {
        n = r->next;
        if (unmap)
            (void)munmap(r->addr, (size_t)r->count * XS_PAGE_SIZE);
        free(r);
    }
    h->regions = NULL;
}

static int handle_close(struct xengntdev_handle *h)
{
    bool mine;

    if (!h)
        return 0;
    xs_w = h->w;
    mine = h->pid == getpid();
    if (mine && h->kind == XS_H_GNTSHR) {
        /* Notifications of gntshr pages happen as their munmap would. */
        xs_lock();
        for (struct xs_region *r = h->regions; r; r = r->next) {
            int dom = xs_dom_find((uint32_t)h->domid);
            if (!r->notify_flags || r->idx[0] < 0)
                continue;
            if (r->notify_flags & XS_NOTIFY_CLEAR_BYTE)
                r->addr[r->notify_off] = 0;
            if ((r->notify_flags & XS_NOTIFY_SEND_EVENT) && xs_dom_alive(dom))
                (void)xs_port_send_locked(dom, r->notify_port);
        }
        xs_unlock();
    }
    regions_free(h, mine);
    if (mine) {
        xs_lock();
        if (xs_w->handles[h->slot].gen == h->gen && xs_w->handles[h->slot].kind == h->kind) {
            if (h->kind == XS_H_GNTTAB)
                xs_gnttab_release_locked(h->slot, true);
            else
                xs_gntshr_release_locked(h->slot);
            xs_handle_free(h->slot);
        }
        xs_unlock();
    }
    (void)close(h->fd);
    pthread_mutex_destroy(&h->lock);
    xs_world_put(h->w);
    free(h);
    return 0;
}

XS_EXPORT int xengnttab_close(xengnttab_handle *xgt)
{
    return handle_close(xgt);
}

XS_EXPORT int xengnttab_fd(xengnttab_handle *xgt)
{
    return xgt ? xgt->fd : -1;
}

XS_EXPORT int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
    if (!xgt) {
        errno = EINVAL;
        return -1;
    }
    xgt->max_grants = nr_grants;
    return 0;
}

/* mmap()s pool pages into a reserved region, one call per contiguous run. */
static int map_pages(uint8_t *base, const uint32_t *pages, uint32_t count, int prot)
{
    uint32_t i = 0;

    while (i < count) {
        uint32_t run = 1;
        while (i + run < count && pages[i + run] == pages[i] + run)
            run++;
        if (mmap(base + (size_t)i * XS_PAGE_SIZE, (size_t)run * XS_PAGE_SIZE, prot,
                 MAP_SHARED | MAP_FIXED, xs_w->fd, (off_t)xs_page_off(pages[i])) == MAP_FAILED)
            return -errno;
        i += run;
    }
    return 0;
}

static void *map_refs(xengnttab_handle *h, uint32_t count, const uint32_t *domids, uint32_t domid,
                      const uint32_t *refs, int prot, uint32_t notify_offset,
                      evtchn_port_t notify_port)
{
    bool rw = (prot & PROT_WRITE) != 0;
    struct xs_region *reg = NULL;
    uint32_t *pages = NULL;
    uint8_t *base;
    int err = 0, st = GNTST_okay, caller;

    last_map_status = GNTST_okay;
    if (!h || !refs || count == 0 || count > XS_MAX_MAPS) {
        errno = EINVAL;
        return NULL;
    }
    xs_w = h->w;
    if (h->max_grants && h->nr_mapped + count > h->max_grants) {
        errno = ENOMEM; /* gntdev's "over limit" */
        return NULL;
    }
    reg = calloc(1, sizeof(*reg) + sizeof(int32_t) * count);
    pages = calloc(count, sizeof(*pages));
    base = mmap(NULL, (size_t)count * XS_PAGE_SIZE, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!reg || !pages || base == MAP_FAILED) {
        err = ENOMEM;
        goto out;
    }

    xs_lock();
    caller = xs_dom_find((uint32_t)h->domid);
    if (!handle_usable(h)) {
        err = errno;
        goto unlock;
    }
    if (notify_port != (evtchn_port_t)-1 &&
        (notify_port == 0 || notify_port >= XS_MAX_PORTS ||
         xs_port_at(caller, notify_port)->state == XS_PORT_FREE)) {
        err = EINVAL;
        goto unlock;
    }
    for (uint32_t i = 0; i < count; i++) {
        int slot;
        st = gnt_check_locked((uint32_t)h->domid, domids ? domids[i] : domid, refs[i], rw, &slot,
                              &pages[i]);
        if (st != GNTST_okay)
            break;
        reg->idx[i] = slot; /* temporarily: the granter's slot */
    }
    if (st != GNTST_okay) {
        last_map_status = st;
        xs_w->doms[caller].nr_map_err++;
        err = EINVAL;
        goto unlock;
    }
    if (xs_w->hdr->map_bump + count > XS_MAX_MAPS && xs_w->hdr->map_free < 0) {
        err = ENOMEM;
        goto unlock;
    }
    for (uint32_t i = 0; i < count; i++) {
        int mi = map_alloc_locked(), slot = reg->idx[i];
        struct xs_map *m;
        if (mi < 0) {
            /* Out of records half-way: undo what this call pinned. */
            for (uint32_t j = 0; j < i; j++)
                map_release_locked(reg->idx[j]);
            err = ENOMEM;
            goto unlock;
        }
        m = &xs_w->maps[mi];
        m->handle = h->slot;
        m->dom = slot;
        m->ref = refs[i];
        m->page = pages[i];
        m->rw = rw;
        m->notify_port = XS_NO_PORT;
        if (i == 0 && notify_offset != (uint32_t)-1) {
            m->notify_flags |= XS_NOTIFY_CLEAR_BYTE;
            m->notify_off = (uint16_t)notify_offset;
        }
        if (i == 0 && notify_port != (evtchn_port_t)-1) {
            m->notify_flags |= XS_NOTIFY_SEND_EVENT;
            m->notify_port = notify_port;
        }
        gnt_pin_locked(slot, refs[i], rw);
        xs_w->pages[pages[i]].refs++;
        xs_w->doms[caller].nr_maps++;
        xs_w->handles[h->slot].nr_maps++;
        reg->idx[i] = mi;
    }
    xs_unlock();

    if ((err = -map_pages(base, pages, count, prot)) != 0) {
        xs_lock();
        for (uint32_t i = 0; i < count; i++)
            map_release_locked(reg->idx[i]);
        xs_unlock();
        goto out;
    }
    reg->addr = base;
    reg->count = count;
    pthread_mutex_lock(&h->lock);
    reg->next = h->regions;
    h->regions = reg;
    h->nr_mapped += count;
    pthread_mutex_unlock(&h->lock);
    free(pages);
    return base;

unlock:
    xs_unlock();
out:
    if (base != MAP_FAILED && err)
        (void)munmap(base, (size_t)count * XS_PAGE_SIZE);
    free(reg);
    free(pages);
    errno = err;
    return NULL;
}

XS_EXPORT void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref,
                                        int prot)
{
    return map_refs(xgt, 1, NULL, domid, &ref, prot, (uint32_t)-1, (evtchn_port_t)-1);
}

XS_EXPORT void *xengnttab_map_grant_refs(xengnttab_handle *xgt, uint32_t count, uint32_t *domids,
                                         uint32_t *refs, int prot)
{
    if (!domids) {
        errno = EINVAL;
        return NULL;
    }
    return map_refs(xgt, count, domids, 0, refs, prot, (uint32_t)-1, (evtchn_port_t)-1);
}

XS_EXPORT void *xengnttab_map_domain_grant_refs(xengnttab_handle *xgt, uint32_t count,
                                                uint32_t domid, uint32_t *refs, int prot)
{
    return map_refs(xgt, count, NULL, domid, refs, prot, (uint32_t)-1, (evtchn_port_t)-1);
}

XS_EXPORT void *xengnttab_map_grant_ref_notify(xengnttab_handle *xgt, uint32_t domid, uint32_t ref,
                                               int prot, uint32_t notify_offset,
                                               evtchn_port_t notify_port)
{
    if (notify_offset != (uint32_t)-1 && notify_offset >= XS_PAGE_SIZE) {
        errno = EINVAL;
        return NULL;
    }
    return map_refs(xgt, 1, NULL, domid, &ref, prot, notify_offset, notify_port);
}

XS_EXPORT int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
    struct xs_region **pp, *r = NULL;

    if (!xgt || !start_address) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&xgt->lock);
    for (pp = &xgt->regions; *pp; pp = &(*pp)->next) {
        if ((*pp)->addr == start_address) {
            r = *pp;
            break;
        }
    }
    if (!r || r->count != count) {
        /* IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR found nothing, or another count */
        pthread_mutex_unlock(&xgt->lock);
        errno = EINVAL;
        return -1;
    }
    *pp = r->next;
    xgt->nr_mapped -= count;
    pthread_mutex_unlock(&xgt->lock);

    (void)munmap(r->addr, (size_t)count * XS_PAGE_SIZE);
    xs_w = xgt->w;
    xs_lock();
    for (uint32_t i = 0; i < count; i++)
        if (xs_w->maps[r->idx[i]].handle == xgt->slot)
            map_release_locked(r->idx[i]);
    xs_unlock();
    free(r);
    return 0;
}

/* ---- grant copy ------------------------------------------------------- */

struct copy_op {
    xengnttab_grant_copy_segment_t *seg;
    bool src_gref, dst_gref;
    uint32_t src_dom, src_ref, dst_dom, dst_ref;
    uint16_t src_off, dst_off, len;
    uint8_t *src_virt, *dst_virt;
};

/* gntdev copies a local buffer with copy_{from,to}_user, so a bad pointer
 * fails the whole call with EFAULT instead of crashing the caller. The
 * simulator keeps that: each local page is probed once (process_vm_readv /
 * writev on this process, which fail with EFAULT where the kernel's copy
 * would) and remembered per thread, so the copy itself is a plain memcpy.
 * What this gives up: a page the caller unmaps after its first copy is still
 * believed good; only a caller that frees its own buffer mid-use meets it. */
#define XS_LOCAL_CACHE 4096u /* pages: more than a worker's packet buffers */
static __thread uintptr_t local_ok[XS_LOCAL_CACHE]; /* page | 1 when writable checked */

static bool local_page_ok(uint8_t *v, bool write)
{
    uintptr_t page = (uintptr_t)v & ~(uintptr_t)(XS_PAGE_SIZE - 1);
    uintptr_t *slot = &local_ok[(page / XS_PAGE_SIZE) % XS_LOCAL_CACHE];
    if ((*slot & ~(uintptr_t)1) == page && (!write || (*slot & 1)))
        return true;
    uint8_t byte;
    struct iovec mine = {.iov_base = &byte, .iov_len = 1};
    struct iovec theirs = {.iov_base = (void *)page, .iov_len = 1};
    if (process_vm_readv(getpid(), &mine, 1, &theirs, 1, 0) != 1)
        return false;
    /* Writing back the byte just read: the page is the copy's destination,
     * which no one else writes while the copy runs. */
    if (write && process_vm_writev(getpid(), &mine, 1, &theirs, 1, 0) != 1)
        return false;
    *slot = page | (write ? 1u : 0u);
    return true;
}

/* One op as Xen's GNTTABOP_copy does it. Returns the GNTST status, or
 * -EFAULT when a local buffer cannot be accessed (the whole call fails).
 * An op never crosses a page on either side (grant_copy_gntdev_locked
 * splits them), so one probe per local side suffices. */
static int copy_one_locked(uint32_t caller, const struct copy_op *op)
{
    uint32_t spage = 0, dpage = 0;
    int sslot, dslot, st;
    const uint8_t *src;
    uint8_t *dst;

    if (op->src_gref) {
        st = gnt_check_locked(caller, op->src_dom, op->src_ref, false, &sslot, &spage);
        if (st != GNTST_okay)
            return st;
    }
    if (op->dst_gref) {
        st = gnt_check_locked(caller, op->dst_dom, op->dst_ref, true, &dslot, &dpage);
        if (st != GNTST_okay)
            return st;
    }
    if (op->len == 0)
        return GNTST_okay;
    if (op->src_gref) {
        src = xs_page_addr(spage) + op->src_off;
    } else {
        if (!local_page_ok(op->src_virt, false))
            return -EFAULT;
        src = op->src_virt;
    }
    if (op->dst_gref) {
        dst = xs_page_addr(dpage) + op->dst_off;
    } else {
        if (!local_page_ok(op->dst_virt, true))
            return -EFAULT;
        dst = op->dst_virt;
    }
    memmove(dst, src, op->len); /* a grant may be copied onto itself */
    return GNTST_okay;
}

/* Runs a batch of ops and records failures in their segments' status the
 * way gntdev_copy() does: a segment keeps the first failure of its ops. */
static int copy_flush_locked(uint32_t caller, struct copy_op *ops, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int st = copy_one_locked(caller, &ops[i]);
        int dom = xs_dom_find(caller);
        if (st == -EFAULT)
            return -EFAULT;
        if (st != GNTST_okay) {
            if (ops[i].seg->status == GNTST_okay)
                ops[i].seg->status = (int16_t)st;
            xs_w->doms[dom].nr_copy_err++;
        } else {
            xs_w->doms[dom].nr_copy_ok++;
        }
    }
    return 0;
}

static int grant_copy_gntdev_locked(uint32_t caller, uint32_t count,
                                    xengnttab_grant_copy_segment_t *segs)
{
    struct copy_op ops[XS_GNTDEV_COPY_BATCH];
    unsigned nops = 0;
    int r;

    for (uint32_t i = 0; i < count; i++) {
        xengnttab_grant_copy_segment_t *seg = &segs[i];
        bool sg = seg->flags & GNTCOPY_source_gref, dg = seg->flags & GNTCOPY_dest_gref;
        uint32_t copied = 0;

        if (!sg && !dg)
            return -EINVAL; /* no local -> local copies */
        if (sg && seg->source.foreign.offset + seg->len > XS_PAGE_SIZE)
            return -EINVAL;
        if (dg && seg->dest.foreign.offset + seg->len > XS_PAGE_SIZE)
            return -EINVAL;
        seg->status = GNTST_okay;
        while (copied < seg->len) {
            struct copy_op *op;
            uint32_t len = seg->len - copied;

            if (nops == XS_GNTDEV_COPY_BATCH) {
                if ((r = copy_flush_locked(caller, ops, nops)) < 0)
                    return r;
                nops = 0;
            }
            op = &ops[nops];
            memset(op, 0, sizeof(*op));
            op->seg = seg;
            if (sg) {
                op->src_gref = true;
                op->src_dom = seg->source.foreign.domid;
                op->src_ref = seg->source.foreign.ref;
                op->src_off = (uint16_t)(seg->source.foreign.offset + copied);
            } else {
                uint8_t *v = (uint8_t *)seg->source.virt + copied;
                uint32_t off = (uint32_t)((uintptr_t)v & (XS_PAGE_SIZE - 1));
                op->src_virt = v;
                if (len > XS_PAGE_SIZE - off)
                    len = XS_PAGE_SIZE - off;
            }
            if (dg) {
                op->dst_gref = true;
                op->dst_dom = seg->dest.foreign.domid;
                op->dst_ref = seg->dest.foreign.ref;
                op->dst_off = (uint16_t)(seg->dest.foreign.offset + copied);
            } else {
                uint8_t *v = (uint8_t *)seg->dest.virt + copied;
                uint32_t off = (uint32_t)((uintptr_t)v & (XS_PAGE_SIZE - 1));
                op->dst_virt = v;
                if (len > XS_PAGE_SIZE - off)
                    len = XS_PAGE_SIZE - off;
            }
            op->len = (uint16_t)len;
            copied += len;
            nops++;
        }
    }
    return nops ? copy_flush_locked(caller, ops, nops) : 0;
}

static int grant_copy_xen_locked(uint32_t caller, uint32_t count,
                                 xengnttab_grant_copy_segment_t *segs)
{
    for (uint32_t i = 0; i < count; i++) {
        xengnttab_grant_copy_segment_t *seg = &segs[i];
        bool sg = seg->flags & GNTCOPY_source_gref, dg = seg->flags & GNTCOPY_dest_gref;
        uint32_t copied = 0;
        int r;

        if (!sg && !dg)
            return -EINVAL; /* there is still no local -> local path */
        seg->status = GNTST_okay;
        if ((sg && seg->source.foreign.offset + seg->len > XS_PAGE_SIZE) ||
            (dg && seg->dest.foreign.offset + seg->len > XS_PAGE_SIZE)) {
            seg->status = GNTST_bad_copy_arg;
            xs_w->doms[xs_dom_find(caller)].nr_copy_err++;
            continue;
        }
        /* The local side of a hypercall is a frame: split at its pages. */
        while (copied < seg->len) {
            struct copy_op op = {.seg = seg};
            uint32_t len = seg->len - copied;
            if (sg) {
                op.src_gref = true;
                op.src_dom = seg->source.foreign.domid;
                op.src_ref = seg->source.foreign.ref;
                op.src_off = (uint16_t)(seg->source.foreign.offset + copied);
            } else {
                op.src_virt = (uint8_t *)seg->source.virt + copied;
                len = min_u32(len, XS_PAGE_SIZE - ((uintptr_t)op.src_virt & (XS_PAGE_SIZE - 1)));
            }
            if (dg) {
                op.dst_gref = true;
                op.dst_dom = seg->dest.foreign.domid;
                op.dst_ref = seg->dest.foreign.ref;
                op.dst_off = (uint16_t)(seg->dest.foreign.offset + copied);
            } else {
                op.dst_virt = (uint8_t *)seg->dest.virt + copied;
                len = min_u32(len, XS_PAGE_SIZE - ((uintptr_t)op.dst_virt & (XS_PAGE_SIZE - 1)));
            }
            op.len = (uint16_t)len;
            copied += len;
            if ((r = copy_flush_locked(caller, &op, 1)) < 0)
                return r;
        }
        if (seg->len == 0) {
            struct copy_op op = {.seg = seg, .src_gref = sg, .dst_gref = dg};
            op.src_dom = seg->source.foreign.domid;
            op.src_ref = seg->source.foreign.ref;
            op.dst_dom = seg->dest.foreign.domid;
            op.dst_ref = seg->dest.foreign.ref;
            if ((r = copy_flush_locked(caller, &op, 1)) < 0)
                return r;
        }
    }
    return 0;
}

XS_EXPORT int xengnttab_grant_copy(xengnttab_handle *xgt, uint32_t count,
                                   xengnttab_grant_copy_segment_t *segs)
{
    int r;

    if (!xgt || (count && !segs)) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xgt->w;
    xs_lock();
    if (!handle_usable(xgt)) {
        xs_unlock();
        return -1;
    }
    if (xs_w->hdr->copy_check == XENSIM_COPY_XEN)
        r = grant_copy_xen_locked((uint32_t)xgt->domid, count, segs);
    else
        r = grant_copy_gntdev_locked((uint32_t)xgt->domid, count, segs);
    xs_unlock();
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return 0;
}

XS_EXPORT int xengnttab_dmabuf_exp_from_refs(xengnttab_handle *xgt, uint32_t domid, uint32_t flags,
                                             uint32_t count, const uint32_t *refs, uint32_t *fd)
{
    errno = EOPNOTSUPP;
    return -1;
}

XS_EXPORT int xengnttab_dmabuf_exp_wait_released(xengnttab_handle *xgt, uint32_t fd,
                                                 uint32_t wait_to_ms)
{
    errno = EOPNOTSUPP;
    return -1;
}

XS_EXPORT int xengnttab_dmabuf_imp_to_refs(xengnttab_handle *xgt, uint32_t domid, uint32_t fd,
                                           uint32_t count, uint32_t *refs)
{
    errno = EOPNOTSUPP;
    return -1;
}

XS_EXPORT int xengnttab_dmabuf_imp_release(xengnttab_handle *xgt, uint32_t fd)
{
    errno = EOPNOTSUPP;
    return -1;
}

/* ---- xengntshr -------------------------------------------------------- */

XS_EXPORT xengntshr_handle *xengntshr_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger;
    return handle_open(XS_H_GNTSHR, open_flags);
}

XS_EXPORT int xengntshr_close(xengntshr_handle *xgs)
{
    return handle_close(xgs);
}

XS_EXPORT int xengntshr_fd(xengntshr_handle *xgs)
{
    return xgs ? xgs->fd : -1;
}

void xs_gntshr_release_locked(int hslot)
{
    int dom = xs_dom_find((uint32_t)xs_w->handles[hslot].domid);

    if (dom < 0)
        return;
    for (uint32_t ref = 0; ref < XS_MAX_GREFS && xs_w->handles[hslot].nr_shared; ref++) {
        struct xs_gnt *g = xs_gnt_at(dom, ref);
        if (g->in_use && !g->revoke_pending && g->owner_h == hslot)
            xs_gnt_revoke_locked(dom, ref);
    }
}

static int64_t ref_alloc_locked(int dom)
{
    struct xs_dom *d = &xs_w->doms[dom];
    uint32_t ref = d->next_ref;

    for (uint32_t n = 0; n < XS_MAX_GREFS; n++, ref++) {
        if (ref >= XS_MAX_GREFS || ref < GNTTAB_NR_RESERVED_ENTRIES)
            ref = GNTTAB_NR_RESERVED_ENTRIES;
        if (!xs_gnt_at(dom, ref)->in_use) {
            d->next_ref = ref + 1;
            if (ref / XS_GREFS_PER_FRAME + 1 > d->nr_grant_frames)
                d->nr_grant_frames = ref / XS_GREFS_PER_FRAME + 1;
            return ref;
        }
    }
    return -ENOSPC;
}

static void *share(xengntshr_handle *h, uint32_t domid, int count, uint32_t *refs, int writable,
                   uint32_t notify_offset, evtchn_port_t notify_port)
{
    struct xs_region *reg;
    uint32_t *pages;
    uint8_t *base;
    int err = 0, dom, done = 0;

    if (!h || count <= 0 || !refs || domid >= DOMID_FIRST_RESERVED) {
        errno = EINVAL;
        return NULL;
    }
    xs_w = h->w;
    reg = calloc(1, sizeof(*reg) + sizeof(int32_t) * (size_t)count);
    pages = calloc((size_t)count, sizeof(*pages));
    base = mmap(NULL, (size_t)count * XS_PAGE_SIZE, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!reg || !pages || base == MAP_FAILED) {
        err = ENOMEM;
        goto out;
    }
    xs_lock();
    if (!handle_usable(h)) {
        err = errno;
        xs_unlock();
        goto out;
    }
    dom = xs_dom_find((uint32_t)h->domid);
    if (notify_port != (evtchn_port_t)-1 &&
        (notify_port == 0 || notify_port >= XS_MAX_PORTS ||
         xs_port_at(dom, notify_port)->state == XS_PORT_FREE)) {
        err = EINVAL;
        xs_unlock();
        goto out;
    }
    for (; done < count; done++) {
        int64_t page = xs_page_alloc(dom), ref;
        struct xs_gnt *g;
        if (page < 0) {
            err = ENOMEM;
            break;
        }
        ref = ref_alloc_locked(dom);
        if (ref < 0) {
            xs_page_put((uint32_t)page);
            err = ENOSPC;
            break;
        }
        g = xs_gnt_at(dom, (uint32_t)ref);
        memset(g, 0, sizeof(*g));
        g->in_use = 1;
        g->owner_h = h->slot;
        g->e.domid = (domid_t)domid;
        g->e.frame = (uint32_t)page;
        g->e.flags = (uint16_t)(GTF_permit_access | (writable ? 0 : GTF_readonly));
        xs_w->pages[page].ref = (uint32_t)ref;
        xs_w->doms[dom].nr_grants++;
        xs_w->handles[h->slot].nr_shared++;
        pages[done] = (uint32_t)page;
        refs[done] = (uint32_t)ref;
        reg->idx[done] = (int32_t)ref;
    }
    if (err) {
        for (int i = 0; i < done; i++)
            xs_gnt_revoke_locked(dom, refs[i]);
        xs_unlock();
        goto out;
    }
    xs_unlock();
    if ((err = -map_pages(base, pages, (uint32_t)count, PROT_READ | PROT_WRITE)) != 0) {
        xs_lock();
        for (int i = 0; i < count; i++)
            xs_gnt_revoke_locked(dom, refs[i]);
        xs_unlock();
        goto out;
    }
    reg->addr = base;
    reg->count = (uint32_t)count;
    reg->live = (uint32_t)count;
    reg->notify_port = XS_NO_PORT;
    if (notify_offset != (uint32_t)-1) {
        reg->notify_flags |= XS_NOTIFY_CLEAR_BYTE;
        reg->notify_off = (uint16_t)notify_offset;
    }
    if (notify_port != (evtchn_port_t)-1) {
        reg->notify_flags |= XS_NOTIFY_SEND_EVENT;
        reg->notify_port = notify_port;
    }
    pthread_mutex_lock(&h->lock);
    reg->next = h->regions;
    h->regions = reg;
    pthread_mutex_unlock(&h->lock);
    free(pages);
    return base;
out:
    if (base != MAP_FAILED)
        (void)munmap(base, (size_t)count * XS_PAGE_SIZE);
    free(reg);
    free(pages);
    errno = err;
    return NULL;
}

XS_EXPORT void *xengntshr_share_pages(xengntshr_handle *xgs, uint32_t domid, int count,
                                      uint32_t *refs, int writable)
{
    return share(xgs, domid, count, refs, writable, (uint32_t)-1, (evtchn_port_t)-1);
}

XS_EXPORT void *xengntshr_share_page_notify(xengntshr_handle *xgs, uint32_t domid, uint32_t *ref,
                                            int writable, uint32_t notify_offset,
                                            evtchn_port_t notify_port)
{
    if (notify_offset != (uint32_t)-1 && notify_offset >= XS_PAGE_SIZE) {
        errno = EINVAL;
        return NULL;
    }
    return share(xgs, domid, 1, ref, writable, notify_offset, notify_port);
}

/* As with gntalloc, unsharing is munmap(): any page range of a region. */
XS_EXPORT int xengntshr_unshare(xengntshr_handle *xgs, void *start_address, uint32_t count)
{
    uint8_t *a = start_address;
    struct xs_region **pp, *r = NULL;
    int dom;

    if (!xgs || !a || count == 0 || ((uintptr_t)a & (XS_PAGE_SIZE - 1))) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xgs->w;
    pthread_mutex_lock(&xgs->lock);
    for (pp = &xgs->regions; *pp; pp = &(*pp)->next) {
        r = *pp;
        if (a >= r->addr && a + (size_t)count * XS_PAGE_SIZE <= r->addr + (size_t)r->count * XS_PAGE_SIZE)
            break;
        r = NULL;
    }
    if (!r) {
        pthread_mutex_unlock(&xgs->lock);
        errno = EINVAL;
        return -1;
    }
    xs_lock();
    dom = xs_dom_find((uint32_t)xgs->domid);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t pg = (uint32_t)((a - r->addr) / XS_PAGE_SIZE) + i;
        if (r->idx[pg] < 0)
            continue;
        if (pg == 0 && r->notify_flags) {
            if (r->notify_flags & XS_NOTIFY_CLEAR_BYTE)
                r->addr[r->notify_off] = 0;
            if ((r->notify_flags & XS_NOTIFY_SEND_EVENT) && xs_dom_alive(dom))
                (void)xs_port_send_locked(dom, r->notify_port);
            r->notify_flags = 0;
        }
        /* A dead domain's entries were revoked already; its handle is stale. */
        if (xs_w->handles[xgs->slot].gen == xgs->gen && dom >= 0 &&
            xs_gnt_at(dom, (uint32_t)r->idx[pg])->owner_h == xgs->slot)
            xs_gnt_revoke_locked(dom, (uint32_t)r->idx[pg]);
        r->idx[pg] = -1;
        r->live--;
    }
    xs_unlock();
    (void)munmap(a, (size_t)count * XS_PAGE_SIZE);
    if (r->live == 0) {
        *pp = r->next;
        free(r);
    }
    pthread_mutex_unlock(&xgs->lock);
    return 0;
}
