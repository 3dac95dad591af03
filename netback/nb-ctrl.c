/* feature-ctrl-ring and feature-multicast-control, as Linux netback does
 * them (drivers/net/xen-netback/hash.c, netback.c, interface.c).
 *
 * Control ring (control thread)
 *   The frontend grants one page (ctrl-ring-ref) and an event channel
 *   (event-channel-ctrl). Its requests set up receive-side hashing: the
 *   algorithm (Toeplitz or none), the hash types, the key (up to 40 octets,
 *   grant-copied from a page the frontend names), and a mapping table of up
 *   to 128 queue numbers (copied into a scratch table, every entry checked
 *   against the vif's queue count, and only then committed: the fix Linux
 *   needed for XSA-270's neighbour). Answers follow Linux's statuses. The
 *   frontend's settings live in a private working copy; after a burst of
 *   requests that changed them, a new immutable snapshot is published to the
 *   workers with rcu_assign_pointer and the old one freed by call_rcu.
 *
 *   Ring ownership is the TX ring's (nb-private.h): every request is copied
 *   out with one volatile read; req_prod more than a ring ahead is fatal.
 *   Work is bounded: at most NB_CTRL_BURST requests per wake-up and per
 *   NB_TICK_MS tick; past that the event channel stays masked (further
 *   notifications collapse into one) and the tick continues, so a frontend
 *   that floods its control ring gets NB_CTRL_BURST * 10 requests a second
 *   served and costs the control thread no more.
 *
 * Hash on the datapath (nb-port.c)
 *   With Toeplitz selected, frames towards the guest go to the queue the
 *   table (or the hash modulo the queue count) names, from any worker, and
 *   carry an XEN_NETIF_EXTRA_TYPE_HASH extra when a type applied. With no
 *   algorithm they go to queue w % nq as for every other vif.
 *
 * Multicast control (workers)
 *   With request-multicast-control set at connect, multicast frames towards
 *   the guest (broadcast excepted, as Linux's PACKET_MULTICAST test) pass
 *   only if the frontend subscribed their address with an MCAST_ADD dummy
 *   request on its TX ring; at most NB_MCAST_MAX addresses (further ADDs are
 *   answered NETIF_RSP_ERROR). The list may be changed whether or not the
 *   filter is on (netif.h).
 */
#include "netback/nb-private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <urcu-qsbr.h>

#define NB_CTRL_BURST 64u

struct nb_hash_rcu {
    struct rcu_head rcu;
    struct nb_hash h;
};

struct nb_ctrl {
    struct nb_dp *dp;
    uint32_t ref, rport;
    void *page;
    xen_netif_ctrl_back_ring_t ring;
    xenevtchn_handle *ev;
    int fd;
    evtchn_port_t lport;
    bool masked;               /* an event taken but not unmasked: work left */
    bool dead;                 /* violation seen: serve nothing more */
    struct nb_hash work;       /* the frontend's settings, published on change */
    bool dirty;
    uint64_t requests, failed; /* answered, of which not SUCCESS */
    uint64_t deferred;         /* bursts left for the tick by the budget */
    uint64_t publishes;
};

void nb_ctrl_init(struct nb_dp *dp)
{
    (void)pthread_spin_init(&dp->mcast_lock, PTHREAD_PROCESS_PRIVATE);
}

/* ---- hash settings: the requests ---- */

static bool copy_from_guest(struct nb_ctrl *c, uint32_t gref, void *dst, uint32_t len)
{
    xengnttab_grant_copy_segment_t seg = {
        .source.foreign = {.ref = gref, .offset = 0, .domid = c->dp->domid},
        .dest.virt = dst,
        .len = (uint16_t)len,
        .flags = GNTCOPY_source_gref,
    };
    if (len == 0)
        return true;
    if (len > NB_PAGE)
        return false;
    return xengnttab_grant_copy(c->dp->map_gt, 1, &seg) == 0 && seg.status == GNTST_okay;
}

static uint32_t set_key(struct nb_ctrl *c, uint32_t gref, uint32_t len)
{
    uint8_t key[NB_HASH_KEY_MAX] = {0};
    if (len > NB_HASH_KEY_MAX)
        return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    if (!copy_from_guest(c, gref, key, len))
        return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    memcpy(c->work.key, key, sizeof(key)); /* octets not given are zero */
    return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

static uint32_t set_mapping(struct nb_ctrl *c, uint32_t gref, uint32_t len, uint32_t off)
{
    uint32_t scratch[NB_HASH_MAPPING_MAX];
    /* Range first (off + len may wrap), then copy into a scratch table, then
     * check what was copied: the frontend may change the page meanwhile, and
     * the live table must never hold an unchecked entry. */
    if (off + len < off || off + len > c->work.size || len > NB_PAGE / sizeof(uint32_t))
        return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    memcpy(scratch, c->work.mapping, sizeof(scratch));
    if (!copy_from_guest(c, gref, scratch + off, len * (uint32_t)sizeof(uint32_t)))
        return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    for (uint32_t i = off; i < off + len; i++)
        if (scratch[i] >= c->dp->nq)
            return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    memcpy(c->work.mapping, scratch, sizeof(scratch));
    return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

static uint32_t process(struct nb_ctrl *c, const struct xen_netif_ctrl_request *req,
                        uint32_t *data)
{
    const uint32_t all = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP |
                         XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
    struct nb_hash *w = &c->work;
    uint32_t st;

    *data = 0;
    switch (req->type) {
    case XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM:
        if (req->data[0] != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE &&
            req->data[0] != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ)
            return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
        w->alg = req->data[0];
        c->dirty = true;
        return XEN_NETIF_CTRL_STATUS_SUCCESS;
    case XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS:
        if (w->alg == XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
            return XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
        *data = all;
        return XEN_NETIF_CTRL_STATUS_SUCCESS;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS:
        if ((req->data[0] & ~all) || w->alg == XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
            return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
        w->flags = req->data[0];
        c->dirty = true;
        return XEN_NETIF_CTRL_STATUS_SUCCESS;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_KEY:
        st = set_key(c, req->data[0], req->data[1]);
        c->dirty |= st == XEN_NETIF_CTRL_STATUS_SUCCESS;
        return st;
    case XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE:
        *data = NB_HASH_MAPPING_MAX;
        return XEN_NETIF_CTRL_STATUS_SUCCESS;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE:
        if (req->data[0] > NB_HASH_MAPPING_MAX)
            return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
        w->size = req->data[0];
        memset(w->mapping, 0, sizeof(w->mapping)); /* "assumed to be zero filled" */
        c->dirty = true;
        return XEN_NETIF_CTRL_STATUS_SUCCESS;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING:
        st = set_mapping(c, req->data[0], req->data[1], req->data[2]);
        c->dirty |= st == XEN_NETIF_CTRL_STATUS_SUCCESS;
        return st;
    default: /* INVALID, the static-grant types, anything else */
        return XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
    }
}

static void hash_free_rcu(struct rcu_head *head)
{
    free(XBR_CONTAINER_OF(head, struct nb_hash_rcu, rcu));
}

static void publish(struct nb_ctrl *c)
{
    struct nb_dp *dp = c->dp;
    struct nb_hash *old = dp->hash, *h = NULL;
    if (c->work.alg == XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ) {
        struct nb_hash_rcu *n = xbr_xzalloc(sizeof(*n));
        n->h = c->work;
        h = &n->h;
    }
    rcu_assign_pointer(dp->hash, h);
    if (old)
        urcu_qsbr_call_rcu(&XBR_CONTAINER_OF(old, struct nb_hash_rcu, h)->rcu, hash_free_rcu);
    c->dirty = false;
    c->publishes++;
}

const struct nb_hash *nb_ctrl_hash(const struct nb_dp *dp)
{
    return rcu_dereference(dp->hash);
}

/* Serves up to NB_CTRL_BURST requests. Returns true when the ring is empty
 * and the event channel may be unmasked. */
static bool serve(struct nb_ctrl *c)
{
    xen_netif_ctrl_back_ring_t *r = &c->ring;
    unsigned done = 0;
    bool empty = false;

    for (;;) {
        RING_IDX prod = __atomic_load_n(&r->sring->req_prod, __ATOMIC_ACQUIRE);
        RING_IDX cons = r->req_cons;
        if (prod - cons > RING_SIZE(r)) {
            nb_dp_fatal(c->dp, "control ring req_prod %u is more than a ring ahead of %u", prod,
                        cons);
            c->dead = true;
            return false;
        }
        while (cons != prod && done < NB_CTRL_BURST) {
            struct xen_netif_ctrl_request req;
            req = *(const volatile struct xen_netif_ctrl_request *)RING_GET_REQUEST(r, cons);
            cons++;
            done++;
            uint32_t data, st = process(c, &req, &data);
            struct xen_netif_ctrl_response *rsp = RING_GET_RESPONSE(r, r->rsp_prod_pvt);
            rsp->id = req.id;
            rsp->type = req.type;
            rsp->status = st;
            rsp->data = data;
            r->rsp_prod_pvt++;
            c->requests++;
            c->failed += st != XEN_NETIF_CTRL_STATUS_SUCCESS;
        }
        r->req_cons = cons;
        if (cons != prod)
            break; /* the budget is spent */
        int more = 0;
        RING_FINAL_CHECK_FOR_REQUESTS(r, more);
        if (!more) {
            empty = true;
            break;
        }
        if (done >= NB_CTRL_BURST)
            break;
    }
    if (c->dirty)
        publish(c);
    int notify = 0;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(r, notify);
    if (notify)
        (void)xenevtchn_notify(c->ev, c->lport);
    if (!empty)
        c->deferred++;
    return empty;
}

static void on_ctrl_event(int fd, uint32_t events, void *aux)
{
    (void)fd, (void)events;
    struct nb_ctrl *c = aux;
    xenevtchn_port_or_error_t port = xenevtchn_pending(c->ev);
    if (port < 0)
        return;
    /* The port stays masked until the ring is drained: while the budget
     * holds work back, notifications cost nothing. */
    c->masked = true;
    if (c->dead || atomic_load_explicit(&c->dp->fatal, memory_order_relaxed))
        return;
    if (serve(c)) {
        c->masked = false;
        (void)xenevtchn_unmask(c->ev, (evtchn_port_t)port);
    }
}

void nb_ctrl_tick(struct nb_dp *dp)
{
    struct nb_ctrl *c = dp->ctrl;
    if (!c || !c->masked || c->dead || atomic_load_explicit(&dp->fatal, memory_order_relaxed))
        return;
    if (serve(c)) {
        c->masked = false;
        (void)xenevtchn_unmask(c->ev, c->lport);
    }
}

int nb_ctrl_map(struct nb_dp *dp, uint32_t ref, uint32_t rport, char *err, size_t errlen)
{
    struct nb_ctrl *c = xbr_xzalloc(sizeof(*c));
    uint32_t domid = dp->domid;
    int e;

    c->dp = dp;
    c->ref = ref;
    c->rport = rport;
    c->fd = -1;
    dp->ctrl = c;
    c->page = xengnttab_map_grant_refs(dp->map_gt, 1, &domid, &ref, PROT_READ | PROT_WRITE);
    if (!c->page) {
        e = errno ? errno : EIO;
        snprintf(err, errlen, "cannot map ctrl-ring-ref %u: %s", ref, strerror(e));
        return -e;
    }
    xen_netif_ctrl_sring_t *s = c->page;
    /* Resume after a restart of xbrd from the responses the frontend has. */
    BACK_RING_ATTACH(&c->ring, s, __atomic_load_n(&s->rsp_prod, __ATOMIC_ACQUIRE), NB_PAGE);
    c->ev = xenevtchn_open(NULL, 0);
    if (!c->ev) {
        e = errno ? errno : EIO;
        snprintf(err, errlen, "xenevtchn_open: %s", strerror(e));
        return -e;
    }
    c->fd = xenevtchn_fd(c->ev);
    int fl = fcntl(c->fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    xenevtchn_port_or_error_t lp = xenevtchn_bind_interdomain(c->ev, dp->domid, rport);
    if (lp < 0) {
        e = errno ? errno : EIO;
        snprintf(err, errlen, "cannot bind event-channel-ctrl %u: %s", rport, strerror(e));
        return -e;
    }
    c->lport = (evtchn_port_t)lp;
    if ((e = -xbr_loop_add_fd(c->fd, EPOLLIN, on_ctrl_event, c)) > 0) {
        snprintf(err, errlen, "control ring event channel: %s", strerror(e));
        c->fd = -1; /* not registered */
        return -e;
    }
    /* Requests made before we were there (or while xbrd restarted). */
    c->masked = true;
    nb_ctrl_tick(dp);
    return 0;
}

void nb_ctrl_free(struct nb_dp *dp)
{
    struct nb_ctrl *c = dp->ctrl;
    if (c) {
        if (c->fd >= 0)
            xbr_loop_del_fd(c->fd);
        if (c->ev) {
            if (c->lport)
                (void)xenevtchn_unbind(c->ev, c->lport);
            (void)xenevtchn_close(c->ev);
        }
        if (c->page)
            (void)xengnttab_unmap(dp->map_gt, c->page, 1);
        free(c);
        dp->ctrl = NULL;
    }
    /* No worker is inside (the port is closed): the snapshot goes now. */
    if (dp->hash)
        free(XBR_CONTAINER_OF(dp->hash, struct nb_hash_rcu, h));
    dp->hash = NULL;
    (void)pthread_spin_destroy(&dp->mcast_lock);
}

/* ---- multicast control ---- */

static uint64_t mac_key(const uint8_t *m)
{
    return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
           (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5] | NB_MCAST_VALID;
}

int16_t nb_mcast_request(struct nb_dp *dp, unsigned w, const struct nb_tx_frame *f)
{
    uint64_t k = mac_key(f->mcast_addr);
    int16_t st = NETIF_RSP_OKAY;
    struct nb_wstats *ws = &dp->ws[w];

    pthread_spin_lock(&dp->mcast_lock);
    if (f->mcast_op == XEN_NETIF_EXTRA_TYPE_MCAST_ADD) {
        /* Linux adds without looking for a duplicate; so do we (a
         * duplicate takes a place, and one DEL removes one copy). */
        unsigned free_slot = NB_MCAST_MAX;
        for (unsigned i = 0; i < NB_MCAST_MAX && free_slot == NB_MCAST_MAX; i++)
            if (!atomic_load_explicit(&dp->mcast[i], memory_order_relaxed))
                free_slot = i;
        if (free_slot == NB_MCAST_MAX) {
            st = NETIF_RSP_ERROR; /* "Too many multicast addresses" */
            ws->tx_mcast_full++;
        } else {
            atomic_store_explicit(&dp->mcast[free_slot], k, memory_order_release);
            __atomic_add_fetch(&dp->mcast_n, 1, __ATOMIC_RELAXED);
            ws->tx_mcast_add++;
        }
    } else {
        for (unsigned i = 0; i < NB_MCAST_MAX; i++)
            if (atomic_load_explicit(&dp->mcast[i], memory_order_relaxed) == k) {
                atomic_store_explicit(&dp->mcast[i], 0, memory_order_release);
                __atomic_sub_fetch(&dp->mcast_n, 1, __ATOMIC_RELAXED);
                break;
            }
        ws->tx_mcast_del++; /* Linux answers OKAY whether it was there or not */
    }
    pthread_spin_unlock(&dp->mcast_lock);
    return st;
}

bool nb_mcast_pass(const struct nb_dp *dp, const uint8_t *dst)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    if (!dp->mcast_ctrl || !(dst[0] & 1) || !memcmp(dst, bcast, 6))
        return true;
    uint64_t k = mac_key(dst);
    for (unsigned i = 0; i < NB_MCAST_MAX; i++)
        if (atomic_load_explicit(&dp->mcast[i], memory_order_acquire) == k)
            return true;
    return false;
}

/* ---- show ---- */

void nb_ctrl_show(const struct nb_dp *dp, struct ctl_out *o)
{
    struct nb_wstats s = {0};
    const struct nb_ctrl *c = dp->ctrl;
    const struct nb_hash *h = dp->hash; /* control thread: publishes it */

    for (unsigned w = 0; w < XBR_MAX_WORKERS; w++) {
        s.rx_mcast_filtered += dp->ws[w].rx_mcast_filtered;
        s.rx_hashed += dp->ws[w].rx_hashed;
        s.tx_mcast_add += dp->ws[w].tx_mcast_add;
        s.tx_mcast_del += dp->ws[w].tx_mcast_del;
        s.tx_mcast_full += dp->ws[w].tx_mcast_full;
    }
    ctl_out_open_object(o, "ctrl_ring");
    ctl_out_bool(o, "present", "    ctrl-ring %s", c != NULL);
    ctl_out_str(o, "hash", " hash %s", h ? "toeplitz" : "none");
    ctl_out_u64(o, "hash_flags", " flags 0x%llx", h ? h->flags : 0);
    ctl_out_u64(o, "mapping_size", " mapping %llu", h ? h->size : 0);
    ctl_out_u64(o, "requests", " requests %llu", c ? c->requests : 0);
    ctl_out_u64(o, "failed", " failed %llu", c ? c->failed : 0);
    ctl_out_u64(o, "deferred", " deferred %llu", c ? c->deferred : 0);
    ctl_out_u64(o, "hashed", " hashed %llu\n", s.rx_hashed);
    ctl_out_close_object(o);
    ctl_out_open_object(o, "multicast_control");
    ctl_out_bool(o, "filtering", "    mcast-filter %s", dp->mcast_ctrl);
    ctl_out_u64(o, "addresses", " addresses %llu",
                __atomic_load_n(&dp->mcast_n, __ATOMIC_RELAXED));
    ctl_out_u64(o, "filtered", " filtered %llu", s.rx_mcast_filtered);
    ctl_out_u64(o, "adds", " adds %llu", s.tx_mcast_add);
    ctl_out_u64(o, "dels", " dels %llu", s.tx_mcast_del);
    ctl_out_u64(o, "refused", " refused %llu\n", s.tx_mcast_full);
    ctl_out_close_object(o);
}
