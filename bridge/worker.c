/* Poll-mode workers and the forwarding decision.
 *
 * A worker loops over every port's queue w: receive a burst, decide where
 * each frame goes, then hand each destination port its frames in one
 * tx_burst. When it has found no work for a while it arms notifications and
 * sleeps in epoll, offline for RCU, so an idle daemon costs no CPU. */
#include "bridge/private.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <urcu-qsbr.h>


struct tx_batch {
    unsigned n;
    struct pkt *pkts[XBR_BURST];
};

struct worker {
    unsigned id;
    pthread_t thread;
    int epfd;
    int wake_fd;
    uint64_t view_gen;
    uint64_t idle_spin_ns;      /* polling without work before it sleeps */
    uint8_t *bufs;
    struct pkt pkts[XBR_BURST];
    /* The tagged copies of this burst's frames, made for the first trunk
     * port that sends one tagged (tagged[i] for fwd[i] when has_tagged[i]). */
    uint8_t *tag_bufs;
    struct pkt tagged[XBR_BURST];
    bool has_tagged[XBR_BURST];
    /* Per destination slot; touched[] lists the slots used by this burst. */
    struct tx_batch batch[XBR_MAX_PORTS];
    unsigned touched[XBR_MAX_PORTS];
    unsigned n_touched;
    /* Ports holding frames back for a later kick (tx_flush), and since
     * when. They stay referenced across loop passes, so the worker reports
     * no quiescent state until it has flushed them all. */
    struct port *dirty[XBR_MAX_PORTS * 4];
    unsigned n_dirty;
    uint64_t dirty_since_ns;
};

static struct worker *workers;
static unsigned n_workers = 1;

unsigned xbr_n_workers(void) { return n_workers; }

void xbr_worker_kick(unsigned w)
{
    uint64_t one = 1;
    if (workers && w < n_workers)
        (void)!write(workers[w].wake_fd, &one, sizeof(one));
}

void xbr_workers_kick(void)
{
    uint64_t one = 1;
    for (unsigned i = 0; workers && i < n_workers; i++)
        (void)!write(workers[i].wake_fd, &one, sizeof(one));
}

static inline bool mac_is_link_local(const uint8_t *d)
{
    /* 01:80:c2:00:00:00 .. 0f: IEEE 802.1D reserved group addresses, never
     * forwarded by a standard bridge. */
    return d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xc2 && d[3] == 0 && d[4] == 0 &&
           (d[5] & 0xf0) == 0;
}

/* The L3 length a frame needs on the wire, per segment for GSO frames. */
static inline uint32_t frame_l3_len(const struct pkt *p)
{
    const uint8_t *d = p->data;
    uint32_t l2 = 14;
    if (p->len >= 18 && ((d[12] == 0x81 && d[13] == 0x00) || (d[12] == 0x88 && d[13] == 0xa8)))
        l2 = 18;
    if (p->vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE && p->vnet.gso_size) {
        /* The largest segment: headers plus gso_size. hdr_len is only a
         * hint: Linux's AF_PACKET and tap fill in the frame's linear length
         * (skb_headlen), payload included — a small super-frame's whole
         * length — and some senders leave it 0. So the transport header at
         * csum_start is read when it is there (TCP: its data offset). */
        uint32_t cs = p->vnet.csum_start, hdr;
        uint8_t type = p->vnet.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
        if ((p->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && cs >= l2 && cs + 13 < p->len &&
            (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6))
            hdr = cs + (uint32_t)(d[cs + 12] >> 4) * 4u;
        else
            hdr = p->vnet.hdr_len ? p->vnet.hdr_len : cs + 60u;
        return hdr - l2 + p->vnet.gso_size;
    }
    return p->len - l2;
}

static inline void batch_add(struct worker *w, struct port *dst, struct pkt *p)
{
    struct tx_batch *b = &w->batch[dst->no];
    if (frame_l3_len(p) > dst->mtu) {
        dst->stats[w->id].tx_drop_mtu++;
        return;
    }
    if (b->n == 0)
        w->touched[w->n_touched++] = dst->no;
    b->pkts[b->n++] = p;
}

/* Has the ingress port copy the tails of pkts[0..n) into their data (see
 * struct pkt_tail), for a destination that cannot take them or a capture
 * about to see them, and takes out the frames whose copy failed (counted by
 * the ingress port). Returns how many are left, in order. */
static unsigned fill_tails(unsigned wid, struct port *in, struct pkt **pkts, unsigned n)
{
    bool any = false;
    for (unsigned i = 0; i < n; i++)
        any |= pkts[i]->tail != NULL;
    if (!any)
        return n;
    in->cls->rx_fill(in, wid, pkts, n);
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++)
        if (!pkts[i]->tail)
            pkts[m++] = pkts[i];
    return m;
}

static void flush_batches(struct worker *w, const struct port_table *t, struct port *in)
{
    for (unsigned i = 0; i < w->n_touched; i++) {
        unsigned no = w->touched[i];
        struct tx_batch *b = &w->batch[no];
        struct port *dst = t->slot[no];
        const struct capture_list *cl = rcu_dereference(dst->captures);
        if (XBR_UNLIKELY(in->cls->rx_fill != NULL) && (!dst->cls->tx_tail || cl)) {
            b->n = fill_tails(w->id, in, b->pkts, b->n);
            if (!b->n)
                continue;
        }
        unsigned sent = dst->cls->tx_burst(dst, w->id, b->pkts, b->n);
        struct port_stats *st = &dst->stats[w->id];
        for (unsigned j = 0; j < sent; j++)
            st->tx_bytes += b->pkts[j]->len;
        st->tx_packets += sent;
        st->tx_drop_full += b->n - sent;
        if (XBR_UNLIKELY(cl != NULL))
            xbr_capture_tx(w->id, cl, b->pkts, sent);
        if (dst->cls->tx_flush && !dst->tx_dirty[w->id]) {
            if (XBR_UNLIKELY(w->n_dirty == XBR_ARRAY_SIZE(w->dirty))) {
                dst->cls->tx_flush(dst, w->id); /* every slot taken: no deferral */
            } else {
                if (!w->n_dirty)
                    w->dirty_since_ns = xbr_now_ns();
                dst->tx_dirty[w->id] = true;
                w->dirty[w->n_dirty++] = dst;
            }
        }
        b->n = 0;
    }
    w->n_touched = 0;
}

/* Kicks every port that holds frames back. */
static void flush_dirty(struct worker *w)
{
    for (unsigned i = 0; i < w->n_dirty; i++) {
        struct port *p = w->dirty[i];
        p->tx_dirty[w->id] = false;
        p->cls->tx_flush(p, w->id);
    }
    w->n_dirty = 0;
}

static inline bool port_forwards(const struct port *p)
{
    return __atomic_load_n(&p->stp_state, __ATOMIC_RELAXED) == PORT_STP_FORWARDING;
}

static inline void vnet_shift(struct pkt *p, int by)
{
    if ((p->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && (by > 0 || p->vnet.csum_start >= 4))
        p->vnet.csum_start = (uint16_t)(p->vnet.csum_start + by);
    if (p->vnet.hdr_len && (by > 0 || p->vnet.hdr_len >= 4))
        p->vnet.hdr_len = (uint16_t)(p->vnet.hdr_len + by);
}

/* The VLAN a received frame belongs to on port mode v, its 802.1Q tag
 * taken out (in place: inside the bridge frames are untagged, their VID
 * beside them); 0 when the port does not take it. VID 0 (a priority tag)
 * is untagged; an 802.1ad or other outer tag is never taken. */
static inline uint16_t vlan_ingress(struct pkt *p, const struct port_vlan *v)
{
    uint8_t *d = p->data;
    uint16_t type = (uint16_t)(d[12] << 8 | d[13]);
    if (XBR_UNLIKELY(type == 0x88a8 || type == 0x9100))
        return 0;
    if (XBR_UNLIKELY(type == 0x8100)) {
        if (p->len < 18)
            return 0;
        uint16_t vid = (uint16_t)((d[14] << 8 | d[15]) & 0xfff);
        memmove(d + 4, d, 12);
        p->data = d + 4;
        p->len -= 4;
        vnet_shift(p, -4);
        if (vid != 0)
            return v->trunk && xbr_vlan_has(v, vid) ? vid : 0;
    }
    return v->pvid;
}

/* p as it leaves port d: untagged in d's untagged VLAN, tagged with vid
 * otherwise (the burst's one tagged copy of fwd[i]). */
static struct pkt *vlan_egress(struct worker *w, unsigned i, struct pkt *p, uint16_t vid,
                               const struct port *d)
{
    if (vid == xbr_vlan_of(d)->pvid)
        return p;
    struct pkt *t = &w->tagged[i];
    if (!w->has_tagged[i]) {
        if (p->len + 4 > XBR_PKT_BUF_SIZE)
            return NULL;
        *t = *p;
        t->buf = w->tag_bufs + (size_t)i * XBR_PKT_BUF_SIZE;
        t->data = t->buf;
        memcpy(t->data, p->data, 12);
        t->data[12] = 0x81;
        t->data[13] = 0x00;
        t->data[14] = (uint8_t)(vid >> 8);
        t->data[15] = (uint8_t)vid;
        /* Its headers only, if the end is still the guest's: the copy
         * shares p's tail (always the frame's last bytes). */
        memcpy(t->data + 16, p->data + 12, pkt_head_len(p) - 12);
        t->len = p->len + 4;
        vnet_shift(t, 4);
        w->has_tagged[i] = true;
    }
    return t;
}

/* Frame fwd[i] of VLAN vid to d, tagged as d wants it. */
static inline void batch_add_vlan(struct worker *w, struct port *d, unsigned i, struct pkt *p,
                                  uint16_t vid)
{
    struct pkt *out = vlan_egress(w, i, p, vid, d);
    if (out)
        batch_add(w, d, out);
    else
        d->stats[w->id].tx_drop_mtu++;
}

/* Is d a destination for normal forwarding? Not the ingress port, not a
 * port STP blocks, not a mirror's output port. */
static inline bool may_send_to(const struct port *d, const struct port *in,
                               const struct mirror_set *ms)
{
    return d != in && port_forwards(d) && !(ms && ms->is_dst[d->no]);
}

/* The frame also goes to the output of every mirror that selects it (sel:
 * by its ingress port, or by a port it is sent to), once per mirror. */
static void mirror_copies(struct worker *w, const struct port_table *t,
                          const struct mirror_set *ms, const struct port *in, unsigned i,
                          struct pkt *p, uint16_t vid, uint32_t sel)
{
    while (sel) {
        unsigned b = (unsigned)__builtin_ctz(sel);
        sel &= sel - 1;
        struct port *md = ms->dst_no[b] < XBR_MAX_PORTS ? t->slot[ms->dst_no[b]] : NULL;
        if (md && md != in)
            batch_add_vlan(w, md, i, p, vid);
    }
}

void xbr_forward_burst(unsigned wid, struct port *in, struct pkt *pkts, unsigned n)
{
    struct worker *w = &workers[wid];
    struct xbr_bridge *br = in->bridge;
    const struct port_table *t = rcu_dereference(br->ports);
    struct port_stats *st = &in->stats[wid];
    int state = __atomic_load_n(&in->stp_state, __ATOMIC_RELAXED);
    uint32_t now = xbr_now_coarse_s();
    const struct capture_list *cl = rcu_dereference(in->captures);
    if (XBR_UNLIKELY(cl != NULL)) {
        if (in->cls->rx_fill) {
            /* The capture sees whole frames; one whose tail could not be
             * copied is seen as far as it got and dropped below. */
            struct pkt *all[XBR_BURST];
            for (unsigned i = 0; i < n; i++)
                all[i] = &pkts[i];
            (void)fill_tails(wid, in, all, n);
            for (unsigned i = 0; i < n; i++)
                if (XBR_UNLIKELY(pkts[i].tail != NULL))
                    pkts[i].len = pkt_head_len(&pkts[i]);
        }
        xbr_capture_rx(wid, cl, pkts, n);
    }
    const struct mirror_set *ms = rcu_dereference(br->mirrors);
    if (XBR_UNLIKELY(ms && ms->is_dst[in->no])) {
        /* A mirror's output port: what arrives there is discarded. */
        for (unsigned i = 0; i < n; i++) {
            if (pkts[i].flags & XBR_PKT_LEARN_ONLY)
                continue;
            st->rx_packets++;
            st->rx_bytes += pkts[i].len;
            st->rx_drop_mirror++;
        }
        return;
    }

    /* Pass 1: account and gate; collect the sources to learn and the
     * unicast lookups. */
    struct pkt *fwd[XBR_BURST];
    uint16_t vlans[XBR_BURST];
    const uint8_t *dsts[XBR_BURST];
    uint32_t out[XBR_BURST];
    unsigned n_fwd = 0;
    const uint8_t *srcs[XBR_BURST];
    uint16_t svlans[XBR_BURST];
    uint32_t sremotes[XBR_BURST], remotes[XBR_BURST];
    unsigned n_learn = 0;
    const bool from_tunnel = in->cls->tunnel;
    const struct port_vlan *in_vlan = xbr_vlan_of(in);

    for (unsigned i = 0; i < n; i++) {
        struct pkt *p = &pkts[i];
        if (XBR_UNLIKELY(p->flags & XBR_PKT_LEARN_ONLY)) {
            /* Forwarded (and counted) by the kernel fast path: keep its
             * source's entry alive, nothing else. */
            if (state == PORT_STP_FORWARDING || state == PORT_STP_LEARNING)
                (void)fdb_learn(br->fdb, XBR_VLAN_DEFAULT, p->data + 6, in->no, now);
            continue;
        }
        st->rx_packets++;
        st->rx_bytes += p->len;
        if (XBR_UNLIKELY(p->len < 14)) {
            st->rx_drop_runt++;
            continue;
        }
        if (XBR_UNLIKELY(p->tail && p->tail->failed)) {
            st->rx_drop_port++; /* its tail could not be copied for a capture */
            continue;
        }
        const uint8_t *dst = p->data, *src = p->data + 6;
        if (XBR_UNLIKELY(mac_is_link_local(dst))) {
            /* BPDUs go to spanning tree whatever the port's state; with STP
             * off the bridge is transparent to them, like the kernel bridge.
             * The other reserved groups are never forwarded. */
            if (dst[5] == 0 && br->stp_enabled) {
                if (XBR_UNLIKELY(p->tail != NULL) && fill_tails(wid, in, &p, 1) == 0) {
                    st->rx_drop_port++;
                    continue;
                }
                if (xbr_stp_enqueue_bpdu(wid, in, p))
                    st->rx_bpdu++;
                else
                    st->rx_drop_bpdu_queue++;
                continue;
            }
            if (dst[5] != 0) {
                st->rx_drop_linklocal++;
                continue;
            }
        }
        if (XBR_UNLIKELY(state != PORT_STP_FORWARDING && state != PORT_STP_LEARNING)) {
            st->rx_drop_state++;
            continue;
        }
        if (XBR_UNLIKELY(xbr_mac_is_multicast(src) || xbr_mac_is_zero(src))) {
            st->rx_drop_src++;
            continue;
        }
        uint16_t vid = vlan_ingress(p, in_vlan);
        if (XBR_UNLIKELY(vid == 0)) {
            st->rx_drop_vlan++;
            continue;
        }
        /* The tag went: the MACs moved up with the frame's start. */
        dst = p->data;
        src = p->data + 6;
        svlans[n_learn] = vid;
        sremotes[n_learn] = p->remote;
        srcs[n_learn++] = src;
        if (XBR_UNLIKELY(state != PORT_STP_FORWARDING)) {
            st->rx_drop_state++;
            continue;
        }
        vlans[n_fwd] = vid;
        dsts[n_fwd] = dst;
        fwd[n_fwd++] = p;
    }

    /* Learn the burst's sources at once: buckets prefetched together, a
     * source repeated from the frame before resolved without a lookup. */
    if (n_learn) {
        enum fdb_learn_result lr[XBR_BURST];
        fdb_learn_batch_remote(br->fdb, n_learn, svlans, srcs, in->no,
                               from_tunnel ? sremotes : NULL, now, lr);
        bool fast = __atomic_load_n(&br->fastpath, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < n_learn; i++) {
            switch (lr[i]) {
            case FDB_LEARN_NEW: st->fdb_learned++; break;
            case FDB_LEARN_MOVED: st->fdb_moved++; break;
            case FDB_LEARN_LIMIT_PORT:
            case FDB_LEARN_LIMIT_TOTAL: st->fdb_limit++; break;
            default: break;
            }
            /* The kernel fast path's mirror follows what was created or
             * moved (the control thread writes it). */
            if (XBR_UNLIKELY(fast && (lr[i] == FDB_LEARN_NEW || lr[i] == FDB_LEARN_MOVED)))
                xbr_fastpath_learned(wid, br, svlans[i], srcs[i]);
        }
    }

    /* Pass 2: look the whole batch up at once (prefetching), then decide. */
    if (n_fwd)
        fdb_lookup_batch_remote(br->fdb, n_fwd, vlans, dsts, out, remotes);
    for (unsigned i = 0; i < n_fwd; i++) {
        struct pkt *p = fwd[i];
        const uint16_t vid = vlans[i];
        w->has_tagged[i] = false;
        uint32_t o = xbr_mac_is_multicast(dsts[i]) ? FDB_PORT_NONE : out[i];
        struct port *dst = o < XBR_MAX_PORTS ? t->slot[o] : NULL;
        /* A tunnel port sends to the remote the entry remembers, a flood
         * to all of them. */
        p->remote = dst ? remotes[i] : FDB_REMOTE_NONE;
        uint32_t sel = ms ? ms->in_mask[in->no] : 0; /* mirrors selecting it */
        if (dst) {
            /* Known on the ingress port itself, or on a port STP blocks:
             * the frame has nowhere to go. */
            if (XBR_UNLIKELY(!xbr_vlan_has(xbr_vlan_of(dst), vid))) {
                st->rx_drop_vlan++; /* a static entry on a port out of the VLAN */
            } else if (may_send_to(dst, in, ms)) {
                batch_add_vlan(w, dst, i, p, vid);
                sel |= ms ? ms->out_mask[dst->no] : 0;
            } else {
                st->rx_drop_filtered++;
            }
        } else {
            /* Broadcast, multicast or unknown unicast: every forwarding
             * port but the one it came in on; from a tunnel, no other
             * tunnel (split horizon: the sending VTEP replicated it to the
             * mesh itself). */
            st->rx_flooded++;
            for (unsigned j = 0; j < t->n_ports; j++) {
                struct port *d = t->slot[t->list[j]];
                if (may_send_to(d, in, ms) && !(from_tunnel && d->cls->tunnel) &&
                    xbr_vlan_has(xbr_vlan_of(d), vid)) {
                    batch_add_vlan(w, d, i, p, vid);
                    sel |= ms ? ms->out_mask[d->no] : 0;
                }
            }
        }
        if (XBR_UNLIKELY(sel))
            mirror_copies(w, t, ms, in, i, p, vid, sel);
    }
    flush_batches(w, t, in);
}

/* Rebuilds the epoll set from the current view (the port set changed). */
static void worker_rebuild_epoll(struct worker *w, const struct dp_view *v)
{
    if (w->epfd >= 0)
        close(w->epfd);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        xbr_err("worker %u: epoll_create1: %s", w->id, strerror(errno));
        abort();
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->wake_fd};
    (void)epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev);
    for (unsigned i = 0; v && i < v->n; i++) {
        struct port *p = v->ports[i];
        int fd = p->cls->wait_fd(p, w->id);
        if (fd < 0)
            continue;
        ev = (struct epoll_event){.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)
            xbr_warn("worker %u: cannot wait on %s: %s", w->id, p->name, strerror(errno));
    }
    w->view_gen = v ? v->gen : 0;
}

/* Arms every port and sleeps until one has work or the view changes. */
static void worker_sleep(struct worker *w, const struct dp_view *v)
{
    uint64_t now = xbr_now_ns(), wake = now + 1000000000u; /* at least once a second */
    for (unsigned i = 0; v && i < v->n; i++) {
        struct port *p = v->ports[i];
        if (p->cls->arm && p->cls->arm(p, w->id, &wake))
            return; /* work arrived while arming */
    }
    if (wake <= now)
        return;
    /* Rounded up: waking a little late is fine, early would spin. */
    int timeout_ms = (int)((wake - now + 999999u) / 1000000u);
    struct epoll_event evs[16];
    urcu_qsbr_thread_offline();
    int r = epoll_wait(w->epfd, evs, XBR_ARRAY_SIZE(evs), timeout_ms);
    urcu_qsbr_thread_online();
    for (int i = 0; i < r; i++) {
        if (evs[i].data.fd == w->wake_fd) {
            uint64_t cnt;
            (void)!read(w->wake_fd, &cnt, sizeof(cnt));
        } else if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
            /* The port's device went away (the socket reports ENETDOWN for
             * good). Stop waiting on it rather than spin; the control thread
             * notices within a second and removes the port. */
            (void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    uint64_t last_work = xbr_now_ns();

    snprintf(name, sizeof(name), "xbr-worker%u", w->id);
    (void)pthread_setname_np(pthread_self(), name);
    urcu_qsbr_register_thread();

    while (!atomic_load_explicit(&xbr_stopping, memory_order_relaxed)) {
        const struct dp_view *v = rcu_dereference(xbr_dp_view);
        if ((v ? v->gen : 0) != w->view_gen)
            worker_rebuild_epoll(w, v);
        unsigned work = 0;
        bool full_burst = false;
        for (unsigned i = 0; v && i < v->n; i++) {
            struct port *p = v->ports[i];
            /* Worker 0 also sends what the control thread queued (BPDUs). */
            if (w->id == 0 && XBR_UNLIKELY(__atomic_load_n(&p->inject->head, __ATOMIC_ACQUIRE) !=
                                           p->inject->tail))
                xbr_inject_drain(p);
            for (unsigned j = 0; j < XBR_BURST; j++)
                w->pkts[j] = (struct pkt){.buf = w->bufs + (size_t)j * XBR_PKT_BUF_SIZE};
            unsigned n = p->cls->rx_burst(p, w->id, w->pkts, XBR_BURST);
            if (n) {
                xbr_forward_burst(w->id, p, w->pkts, n);
                if (p->cls->rx_done)
                    p->cls->rx_done(p, w->id);
                work += n;
                full_burst |= n == XBR_BURST;
            }
        }
        /* Kick the ports once the input is drained (no queue gave a full
         * burst: nothing more is waiting right now), or when frames have
         * waited the drain time; under load that makes one kick of many
         * bursts per port. */
        if (w->n_dirty &&
            (!full_burst || xbr_now_ns() - w->dirty_since_ns >= XBR_TX_DRAIN_NS))
            flush_dirty(w);
        if (work) {
            last_work = xbr_now_ns();
        } else if (xbr_now_ns() - last_work >= w->idle_spin_ns) {
            /* Arms the ports of v, so it must run before the quiescent
             * state below: after it the control thread may free v. (It goes
             * offline only for the epoll wait itself, and never touches v
             * after that.) */
            worker_sleep(w, v);
            last_work = xbr_now_ns();
        }
        /* v and every port reached through it are not used past here,
         * unless a port still holds frames back (then not for long). */
        if (!w->n_dirty)
            urcu_qsbr_quiescent_state();
    }
    urcu_qsbr_unregister_thread();
    return NULL;
}

int xbr_workers_start(unsigned n, uint64_t idle_spin_ns, char *err, size_t errlen)
{
    if (n < 1 || n > XBR_MAX_WORKERS) {
        snprintf(err, errlen, "workers must be 1..%d", XBR_MAX_WORKERS);
        return -EINVAL;
    }
    n_workers = n;
    workers = xbr_xzalloc(n * sizeof(*workers));
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &workers[i];
        w->id = i;
        w->epfd = -1;
        w->idle_spin_ns = idle_spin_ns;
        w->view_gen = UINT64_MAX;
        w->bufs = xbr_xzalloc((size_t)XBR_BURST * XBR_PKT_BUF_SIZE);
        w->tag_bufs = xbr_xzalloc((size_t)XBR_BURST * XBR_PKT_BUF_SIZE);
        w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->wake_fd < 0) {
            snprintf(err, errlen, "eventfd: %s", strerror(errno));
            return -errno;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        int r = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        if (r) {
            snprintf(err, errlen, "cannot start worker %u: %s", i, strerror(r));
            return -r;
        }
    }
    return 0;
}

void xbr_workers_stop(void)
{
    if (!workers)
        return;
    atomic_store(&xbr_stopping, true);
    xbr_workers_kick();
    for (unsigned i = 0; i < n_workers; i++) {
        (void)pthread_join(workers[i].thread, NULL);
        close(workers[i].wake_fd);
        if (workers[i].epfd >= 0)
            close(workers[i].epfd);
        free(workers[i].bufs);
        free(workers[i].tag_bufs);
    }
    free(workers);
    workers = NULL;
}
