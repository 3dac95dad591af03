/* xensim-evtchn.c — xenevtchn_* over the simulated world.
 *
 * Semantics follow Xen's event_channel.c behind Linux's evtchn driver:
 *
 *  - Ports are per domain, allocated lowest first from 1.
 *  - bind_interdomain needs the remote port unbound and reserved for us
 *    (else EINVAL; a missing domain is ESRCH) and, as Xen does, leaves one
 *    event pending on the new local port: the caller sees one spurious event.
 *  - notify on a port not bound through this handle is ENOTCONN; on an
 *    unbound port (peer closed) it is silently dropped.
 *  - An event delivered to a handle masks its port until xenevtchn_unmask();
 *    events raised meanwhile collapse into one, delivered at unmask. So a
 *    flood of notifications costs the receiver one wake-up per unmask.
 *  - unbind / close make the peer's port unbound again (it may be re-bound).
 *  - xenevtchn_unmask of a port this handle does not own succeeds silently
 *    (the driver ignores such ports).
 *  - Of the VIRQs only VIRQ_DOM_EXC exists (raised when a domain dies).
 */
#include "xensim-int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xenevtchn.h>

struct xenevtchn_handle {
    struct xs_world *w;
    int slot;
    uint32_t gen;
    int domid;
    pid_t pid;
    int fd; /* read end of the wake-up FIFO */
};

/* Write ends of other handles' FIFOs, cached per slot; used under the lock. */
static struct {
    uint64_t world_id; /* a process may move from world to world */
    uint32_t gen;
    int fd;
} wake_fds[XS_MAX_HANDLES];

int xs_fifo_path(int hslot, uint32_t gen, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/ev/%d.%u", xs_w->dir, hslot, gen);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void wake_locked(int hslot)
{
    const struct xs_handle *h = &xs_w->handles[hslot];
    char path[PATH_MAX];

    if (wake_fds[hslot].fd <= 0 || wake_fds[hslot].gen != h->gen ||
        wake_fds[hslot].world_id != xs_w->hdr->world_id) {
        if (wake_fds[hslot].fd > 0)
            (void)close(wake_fds[hslot].fd);
        wake_fds[hslot].fd = 0;
        if (xs_fifo_path(hslot, h->gen, path, sizeof(path)) < 0)
            return;
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return; /* the reader is gone: its handle will be reaped */
        wake_fds[hslot].fd = fd;
        wake_fds[hslot].gen = h->gen;
        wake_fds[hslot].world_id = xs_w->hdr->world_id;
    }
    (void)!write(wake_fds[hslot].fd, "e", 1);
}

static uint32_t *ring_of(int hslot)
{
    return &xs_w->hrings[(size_t)hslot * XS_HRING];
}

/* Delivers `port` of domain `dom` to its handle: masks it, queues it. */
static void deliver_locked(int dom, uint32_t port)
{
    struct xs_port *p = xs_port_at(dom, port);
    struct xs_handle *h;
    bool was_empty;

    p->masked = 1;
    p->pending = 0;
    if (p->queued)
        return;
    h = &xs_w->handles[p->handle];
    was_empty = h->ring_head == h->ring_tail;
    ring_of(p->handle)[h->ring_tail % XS_HRING] = port;
    h->ring_tail++;
    p->queued = 1;
    if (was_empty)
        wake_locked(p->handle);
}

void xs_port_raise_locked(int dom, uint32_t port)
{
    struct xs_port *p = xs_port_at(dom, port);

    if (p->state == XS_PORT_FREE)
        return;
    if (p->masked || p->handle < 0) {
        p->pending = 1;
        return;
    }
    deliver_locked(dom, port);
}

int xs_port_send_locked(int dom, uint32_t port)
{
    struct xs_port *p;
    int rdom;

    if (port == 0 || port >= XS_MAX_PORTS)
        return -EINVAL;
    p = xs_port_at(dom, port);
    xs_w->doms[dom].nr_notify++;
    switch (p->state) {
    case XS_PORT_INTERDOMAIN:
        rdom = xs_dom_find((uint32_t)p->remote_dom);
        if (xs_dom_alive(rdom))
            xs_port_raise_locked(rdom, p->remote_port);
        return 0;
    case XS_PORT_UNBOUND:
        return 0; /* silently dropped, as Xen does */
    default:
        return -EINVAL;
    }
}

void xs_virq_raise_locked(unsigned virq)
{
    for (unsigned d = 0; d < XS_MAX_DOMS; d++) {
        if (!xs_dom_alive((int)d))
            continue;
        for (uint32_t port = 1; port < XS_MAX_PORTS; port++) {
            struct xs_port *p = xs_port_at((int)d, port);
            if (p->state == XS_PORT_VIRQ && p->remote_port == virq)
                xs_port_raise_locked((int)d, port);
        }
    }
}

void xs_port_close_locked(int dom, uint32_t port)
{
    struct xs_port *p = xs_port_at(dom, port);
    int h = p->handle;

    if (p->state == XS_PORT_FREE)
        return;
    if (p->state == XS_PORT_INTERDOMAIN) {
        int rdom = xs_dom_find((uint32_t)p->remote_dom);
        if (rdom >= 0 && p->remote_port < XS_MAX_PORTS) {
            struct xs_port *r = xs_port_at(rdom, p->remote_port);
            if (r->state == XS_PORT_INTERDOMAIN && r->remote_dom == xs_w->doms[dom].domid &&
                r->remote_port == port) {
                r->state = XS_PORT_UNBOUND; /* its remote_dom stays ours */
                r->remote_port = 0;
            }
        }
    }
    if (h >= 0 && xs_w->handles[h].nr_ports)
        xs_w->handles[h].nr_ports--;
    if (xs_w->doms[dom].nr_ports)
        xs_w->doms[dom].nr_ports--;
    /* A queued entry left in the handle's ring is skipped when popped. */
    memset(p, 0, sizeof(*p));
    p->handle = -1;
}

void xs_evtchn_release_locked(int hslot)
{
    int dom = xs_dom_find((uint32_t)xs_w->handles[hslot].domid);

    if (dom < 0)
        return;
    for (uint32_t port = 1; port < XS_MAX_PORTS && xs_w->handles[hslot].nr_ports; port++) {
        struct xs_port *p = xs_port_at(dom, port);
        if (p->state != XS_PORT_FREE && p->handle == hslot)
            xs_port_close_locked(dom, port);
    }
    if (wake_fds[hslot].fd > 0) {
        (void)close(wake_fds[hslot].fd);
        wake_fds[hslot].fd = 0;
    }
}

/* ---- API -------------------------------------------------------------- */

static bool usable_locked(const xenevtchn_handle *xce, int *dom)
{
    const struct xs_handle *h = &xs_w->handles[xce->slot];

    if (h->kind != XS_H_EVTCHN || h->gen != xce->gen) {
        errno = EBADF;
        return false;
    }
    if (!xs_handle_valid(xce->slot)) {
        errno = ESRCH;
        return false;
    }
    *dom = xs_dom_find((uint32_t)xce->domid);
    return true;
}

static bool owns_port_locked(const xenevtchn_handle *xce, int dom, evtchn_port_t port)
{
    const struct xs_port *p;

    if (port == 0 || port >= XS_MAX_PORTS)
        return false;
    p = xs_port_at(dom, port);
    return p->state != XS_PORT_FREE && p->handle == xce->slot;
}

XS_EXPORT xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int flags)
{
    xenevtchn_handle *xce;
    char path[PATH_MAX];
    int domid, slot, e;

    (void)logger;
    domid = xs_self_domid();
    if (domid < 0)
        return NULL;
    if (!xs_world_get())
        return NULL;
    xce = calloc(1, sizeof(*xce));
    if (!xce) {
        xs_world_put(xs_w);
        return NULL;
    }
    xce->w = xs_w;
    xce->fd = -1;
    xs_lock();
    slot = xs_handle_alloc(XS_H_EVTCHN, domid);
    if (slot >= 0)
        xce->gen = xs_w->handles[slot].gen;
    xs_unlock();
    if (slot < 0) {
        errno = -slot;
        goto fail;
    }
    xce->slot = slot;
    xce->domid = domid;
    xce->pid = getpid();
    if ((e = xs_fifo_path(slot, xce->gen, path, sizeof(path))) < 0) {
        errno = -e;
        goto fail_slot;
    }
    (void)unlink(path);
    if (mkfifo(path, 0600) < 0)
        goto fail_slot;
    /* O_RDWR: opening never blocks, and the FIFO always has a writer. */
    xce->fd = open(path, O_RDWR | ((flags & XENEVTCHN_NO_CLOEXEC) ? 0 : O_CLOEXEC));
    if (xce->fd < 0)
        goto fail_slot;
    return xce;
fail_slot:
    e = errno;
    (void)unlink(path);
    xs_lock();
    xs_handle_free(slot);
    xs_unlock();
    errno = e;
fail:
    e = errno;
    free(xce);
    xs_world_put(xs_w);
    errno = e;
    return NULL;
}

XS_EXPORT xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger, int fd,
                                             unsigned open_flags)
{
    errno = EOPNOTSUPP;
    return NULL;
}

XS_EXPORT int xenevtchn_close(xenevtchn_handle *xce)
{
    char path[PATH_MAX];

    if (!xce)
        return 0;
    xs_w = xce->w;
    if (xce->pid == getpid()) {
        xs_lock();
        if (xs_w->handles[xce->slot].gen == xce->gen &&
            xs_w->handles[xce->slot].kind == XS_H_EVTCHN) {
            xs_evtchn_release_locked(xce->slot);
            xs_handle_free(xce->slot);
        }
        xs_unlock();
        if (xs_fifo_path(xce->slot, xce->gen, path, sizeof(path)) == 0)
            (void)unlink(path);
    }
    (void)close(xce->fd);
    xs_world_put(xce->w);
    free(xce);
    return 0;
}

XS_EXPORT int xenevtchn_fd(xenevtchn_handle *xce)
{
    return xce ? xce->fd : -1;
}

XS_EXPORT int xenevtchn_restrict(xenevtchn_handle *xce, domid_t domid)
{
    int dom;

    if (!xce) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    xs_lock();
    if (!usable_locked(xce, &dom)) {
        xs_unlock();
        return -1;
    }
    xs_w->handles[xce->slot].restrict_domid = domid;
    xs_unlock();
    return 0;
}

static int port_alloc_locked(int dom)
{
    for (uint32_t port = 1; port < XS_MAX_PORTS; port++)
        if (xs_port_at(dom, port)->state == XS_PORT_FREE)
            return (int)port;
    return -ENOSPC;
}

static void port_bind_locked(const xenevtchn_handle *xce, int dom, uint32_t port, uint8_t state,
                             int32_t remote_dom, uint32_t remote_port)
{
    struct xs_port *p = xs_port_at(dom, port);

    memset(p, 0, sizeof(*p));
    p->state = state;
    p->handle = xce->slot;
    p->remote_dom = remote_dom;
    p->remote_port = remote_port;
    xs_w->doms[dom].nr_ports++;
    xs_w->handles[xce->slot].nr_ports++;
}

XS_EXPORT xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *xce,
                                                                uint32_t domid)
{
    int dom, port;

    if (!xce || domid >= DOMID_FIRST_RESERVED) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    xs_lock();
    if (!usable_locked(xce, &dom))
        goto fail;
    if (xs_w->handles[xce->slot].restrict_domid != UINT32_MAX &&
        xs_w->handles[xce->slot].restrict_domid != domid) {
        errno = EACCES;
        goto fail;
    }
    port = port_alloc_locked(dom);
    if (port < 0) {
        errno = -port;
        goto fail;
    }
    port_bind_locked(xce, dom, (uint32_t)port, XS_PORT_UNBOUND, (int32_t)domid, 0);
    xs_unlock();
    return port;
fail:
    xs_unlock();
    return -1;
}

XS_EXPORT xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce,
                                                               uint32_t domid,
                                                               evtchn_port_t remote_port)
{
    struct xs_port *r;
    int dom, rdom, port;

    if (!xce) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    xs_lock();
    if (!usable_locked(xce, &dom))
        goto fail;
    if (xs_w->handles[xce->slot].restrict_domid != UINT32_MAX &&
        xs_w->handles[xce->slot].restrict_domid != domid) {
        errno = EACCES;
        goto fail;
    }
    rdom = xs_dom_find(domid);
    if (!xs_dom_alive(rdom)) {
        errno = ESRCH;
        goto fail;
    }
    if (remote_port == 0 || remote_port >= XS_MAX_PORTS) {
        errno = EINVAL;
        goto fail;
    }
    r = xs_port_at(rdom, remote_port);
    if (r->state != XS_PORT_UNBOUND) {
        /* Still bound by a process that has exited? The kernel would have
         * closed its evtchn fd at exit; release it now (a backend restarted
         * after SIGKILL binds the guest's port again). */
        xs_reap_locked();
        r = xs_port_at(rdom, remote_port);
    }
    if (r->state != XS_PORT_UNBOUND || r->remote_dom != xce->domid) {
        errno = EINVAL;
        goto fail;
    }
    port = port_alloc_locked(dom);
    if (port < 0) {
        errno = -port;
        goto fail;
    }
    port_bind_locked(xce, dom, (uint32_t)port, XS_PORT_INTERDOMAIN, (int32_t)domid, remote_port);
    r->state = XS_PORT_INTERDOMAIN;
    r->remote_dom = xce->domid;
    r->remote_port = (uint32_t)port;
    /* Notifications sent to the unbound port were lost: Xen conservatively
     * marks the new local port pending. */
    xs_port_raise_locked(dom, (uint32_t)port);
    xs_unlock();
    return port;
fail:
    xs_unlock();
    return -1;
}

XS_EXPORT xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
    int dom, port;

    if (!xce) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    if (virq != VIRQ_DOM_EXC) {
        errno = ENOSYS;
        return -1;
    }
    xs_lock();
    if (!usable_locked(xce, &dom))
        goto fail;
    if (xs_w->handles[xce->slot].restrict_domid != UINT32_MAX) {
        errno = EACCES;
        goto fail;
    }
    for (uint32_t p = 1; p < XS_MAX_PORTS; p++) {
        const struct xs_port *pp = xs_port_at(dom, p);
        if (pp->state == XS_PORT_VIRQ && pp->remote_port == virq) {
            errno = EEXIST;
            goto fail;
        }
    }
    port = port_alloc_locked(dom);
    if (port < 0) {
        errno = -port;
        goto fail;
    }
    port_bind_locked(xce, dom, (uint32_t)port, XS_PORT_VIRQ, -1, virq);
    xs_unlock();
    return port;
fail:
    xs_unlock();
    return -1;
}

/* Removes `port` from this handle's ring (the caller owns the FIFO). */
static void ring_remove_locked(xenevtchn_handle *xce, uint32_t port)
{
    struct xs_handle *h = &xs_w->handles[xce->slot];
    uint32_t *ring = ring_of(xce->slot);
    uint32_t w = h->ring_head;
    char c;

    for (uint32_t r = h->ring_head; r != h->ring_tail; r++) {
        uint32_t v = ring[r % XS_HRING];
        if (v != port)
            ring[w++ % XS_HRING] = v;
    }
    if (w == h->ring_tail)
        return;
    h->ring_tail = w;
    if (h->ring_head == h->ring_tail)
        (void)!read(xce->fd, &c, 1); /* keep: byte in FIFO <=> ring not empty */
}

XS_EXPORT int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
    int dom;

    if (!xce) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    xs_lock();
    if (!usable_locked(xce, &dom))
        goto fail;
    if (!owns_port_locked(xce, dom, port)) {
        errno = ENOTCONN;
        goto fail;
    }
    if (xs_port_at(dom, port)->queued)
        ring_remove_locked(xce, port);
    xs_port_close_locked(dom, port);
    xs_unlock();
    return 0;
fail:
    xs_unlock();
    return -1;
}

XS_EXPORT int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    int dom, r;

    if (!xce) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    xs_lock();
    if (!usable_locked(xce, &dom))
        goto fail;
    if (!owns_port_locked(xce, dom, port)) {
        errno = ENOTCONN;
        goto fail;
    }
    r = xs_port_send_locked(dom, port);
    if (r < 0) {
        errno = -r;
        goto fail;
    }
    xs_unlock();
    return 0;
fail:
    xs_unlock();
    return -1;
}

XS_EXPORT xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    if (!xce) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    for (;;) {
        struct xs_handle *h;
        struct pollfd pfd;
        int dom, fl;

        xs_lock();
        if (!usable_locked(xce, &dom)) {
            xs_unlock();
            return -1;
        }
        h = &xs_w->handles[xce->slot];
        while (h->ring_head != h->ring_tail) {
            uint32_t port = ring_of(xce->slot)[h->ring_head % XS_HRING];
            struct xs_port *p = xs_port_at(dom, port);
            bool live = port < XS_MAX_PORTS && p->queued && p->handle == xce->slot;
            char c;

            h->ring_head++;
            if (h->ring_head == h->ring_tail)
                (void)!read(xce->fd, &c, 1);
            if (live) {
                p->queued = 0;
                xs_unlock();
                return (int)port;
            }
        }
        xs_unlock();
        fl = fcntl(xce->fd, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK)) {
            errno = EAGAIN;
            return -1;
        }
        pfd.fd = xce->fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -1;
    }
}

XS_EXPORT int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
    struct xs_port *p;
    int dom;

    if (!xce) {
        errno = EINVAL;
        return -1;
    }
    xs_w = xce->w;
    xs_lock();
    if (!usable_locked(xce, &dom)) {
        xs_unlock();
        return -1;
    }
    if (owns_port_locked(xce, dom, port)) {
        p = xs_port_at(dom, port);
        p->masked = 0;
        if (p->pending)
            deliver_locked(dom, port);
    }
    xs_unlock();
    return 0;
}
