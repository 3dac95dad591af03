/* The netback port class: a connected vif's rings as a bridge port.
 *
 * rx_burst (worker g, guest queue g): the guest's TX ring. Requests are
 *   parsed (nb-tx.c) into a burst, their data is grant-copied into the
 *   worker's packet buffers with one xengnttab_grant_copy call, and every
 *   slot is answered in ring order. Of a frame longer than NB_TX_COPY_LEN
 *   only that much is copied; the rest stays in the guest's grants as the
 *   frame's tail (struct pkt_tail), which a netback destination copies
 *   grant to grant (one copy guest to guest) and rx_fill copies in for
 *   any other; the burst's answers then wait for rx_done.
 * tx_burst (any worker w, guest queue w % nq, or the queue the frontend's
 *   Toeplitz hash picks when it set one on its control ring, nb-ctrl.c;
 *   multicast filtered first when it asked for multicast control): the
 *   guest's RX ring. Frames are grant-copied into the buffers the guest
 *   posted, a page per slot
 *   (several when it has feature-sg), with a GSO extra slot when it has the
 *   matching feature-gso-*. A frame whose partial checksum the guest cannot
 *   take is finished in a scratch copy; the burst goes on after it (a batch
 *   is flushed early when the scratch area fills, never cut short). When
 *   the guest has not posted enough buffers the frame waits in the queue's
 *   bounded RX queue (NB_RXQ_BYTES, as Linux's rx queue), behind any that
 *   wait already; the guest's next RX notification (we ask for one) or
 *   the next burst puts them on, and the control thread drops those older
 *   than NB_RX_DRAIN_MS, so a guest that stops posting (XSA-392) holds at
 *   most NB_RXQ_BYTES and delays nobody. A GSO
 *   super-frame for a guest without SG, the GSO type or its checksum
 *   offload is segmented in software (gso/gso.h) into that scratch area.
 * Protocol violations set dp->fatal; from then on no op touches the rings
 * and the control thread disconnects the vif within NB_TICK_MS.
 */
#include "netback/nb-private.h"
#include "ctl/ctl.h"
#include "gso/gso.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_net.h>
#include <netinet/in.h>

void nb_dp_fatal(struct nb_dp *dp, const char *fmt, ...)
{
    int zero = 0;
    /* Claim first, then write the reason; the control thread reads why only
     * after seeing fatal == 2 (reason complete). */
    if (!atomic_compare_exchange_strong(&dp->fatal, &zero, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(dp->why, sizeof(dp->why), fmt, ap);
    va_end(ap);
    atomic_store_explicit(&dp->fatal, 2, memory_order_release);
}

static inline bool dp_dead(const struct nb_dp *dp)
{
    return atomic_load_explicit(&dp->fatal, memory_order_relaxed) != 0;
}

struct nb_dp *nb_dp_alloc(unsigned nq, unsigned n_workers)
{
    struct nb_dp *dp;
    if (posix_memalign((void **)&dp, 64, sizeof(*dp) + nq * sizeof(struct nb_queue)))
        abort();
    memset(dp, 0, sizeof(*dp) + nq * sizeof(struct nb_queue));
    dp->nq = nq;
    dp->n_workers = n_workers;
    dp->rx_shared = nq < n_workers;
    for (unsigned i = 0; i < nq; i++) {
        struct nb_queue *q = &dp->q[i];
        q->dp = dp;
        q->idx = i;
        q->ev_fd = -1;
        (void)pthread_spin_init(&q->rx_lock, PTHREAD_PROCESS_PRIVATE);
    }
    return dp;
}

static void *map_ring(struct nb_dp *dp, uint32_t ref)
{
    uint32_t domid = dp->domid;
    return xengnttab_map_grant_refs(dp->map_gt, 1, &domid, &ref, PROT_READ | PROT_WRITE);
}

int nb_dp_map(struct nb_dp *dp, char *err, size_t errlen)
{
    for (unsigned i = 0; i < dp->nq; i++) {
        struct nb_queue *q = &dp->q[i];
        q->tx_page = map_ring(dp, q->tx_ref);
        if (!q->tx_page) {
            int e = errno ? errno : EIO;
            snprintf(err, errlen, "queue %u: cannot map tx-ring-ref %u: %s", i, q->tx_ref,
                     strerror(e));
            return -e;
        }
        q->rx_page = map_ring(dp, q->rx_ref);
        if (!q->rx_page) {
            int e = errno ? errno : EIO;
            snprintf(err, errlen, "queue %u: cannot map rx-ring-ref %u: %s", i, q->rx_ref,
                     strerror(e));
            return -e;
        }
        /* Resume where the responses stopped: 0 for a fresh ring, and after
         * a restart of xbrd the point up to which the guest got answers.
         * Requests between there and req_prod are (re)processed. */
        netif_tx_sring_t *ts = q->tx_page;
        netif_rx_sring_t *rs = q->rx_page;
        RING_IDX t0 = __atomic_load_n(&ts->rsp_prod, __ATOMIC_ACQUIRE);
        RING_IDX r0 = __atomic_load_n(&rs->rsp_prod, __ATOMIC_ACQUIRE);
        BACK_RING_ATTACH(&q->tx, ts, t0, NB_PAGE);
        BACK_RING_ATTACH(&q->rx, rs, r0, NB_PAGE);

        q->ev = xenevtchn_open(NULL, 0);
        if (!q->ev) {
            int e = errno ? errno : EIO;
            snprintf(err, errlen, "xenevtchn_open: %s", strerror(e));
            return -e;
        }
        q->ev_fd = xenevtchn_fd(q->ev);
        /* Never block in xenevtchn_pending(): arm() drains what is there. */
        int fl = fcntl(q->ev_fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(q->ev_fd, F_SETFL, fl | O_NONBLOCK);
        xenevtchn_port_or_error_t lp = xenevtchn_bind_interdomain(q->ev, dp->domid, q->rport_tx);
        if (lp < 0) {
            int e = errno ? errno : EIO;
            snprintf(err, errlen, "queue %u: cannot bind event channel %u: %s", i, q->rport_tx,
                     strerror(e));
            return -e;
        }
        q->lport_tx = q->lport_rx = (evtchn_port_t)lp;
        if (q->rport_rx != q->rport_tx) {
            lp = xenevtchn_bind_interdomain(q->ev, dp->domid, q->rport_rx);
            if (lp < 0) {
                int e = errno ? errno : EIO;
                snprintf(err, errlen, "queue %u: cannot bind event channel %u: %s", i,
                         q->rport_rx, strerror(e));
                return -e;
            }
            q->lport_rx = (evtchn_port_t)lp;
        }
        /* Frames made for this guest (software checksums) wait here for
         * their grant copy. */
        q->scratch = xbr_xzalloc(NB_RX_SCRATCH);
        /* Kick both directions: after a restart the guest may be waiting
         * for responses or for us to look at its ring. */
        (void)xenevtchn_notify(q->ev, q->lport_tx);
        if (q->lport_rx != q->lport_tx)
            (void)xenevtchn_notify(q->ev, q->lport_rx);
    }
    return 0;
}

void nb_dp_free(struct nb_dp *dp)
{
    if (!dp)
        return;
    nb_ctrl_free(dp); /* control ring, hash snapshot, multicast list */
    for (unsigned i = 0; i < dp->nq; i++) {
        struct nb_queue *q = &dp->q[i];
        if (q->ev) {
            /* Closing the handle unbinds its ports; unbind explicitly so the
             * order is ours and errors are visible under strace. */
            if (q->lport_rx && q->lport_rx != q->lport_tx)
                (void)xenevtchn_unbind(q->ev, q->lport_rx);
            if (q->lport_tx)
                (void)xenevtchn_unbind(q->ev, q->lport_tx);
            (void)xenevtchn_close(q->ev);
        }
        if (q->tx_page)
            (void)xengnttab_unmap(dp->map_gt, q->tx_page, 1);
        if (q->rx_page)
            (void)xengnttab_unmap(dp->map_gt, q->rx_page, 1);
        for (struct nb_rxq_ent *e = q->rxq_head, *next; e; e = next) {
            next = e->next;
            free(e);
        }
        (void)pthread_spin_destroy(&q->rx_lock);
        free(q->scratch);
    }
    free(dp);
}

/* Every field of nb_qstats is a uint64_t counter: summed as an array. */
_Static_assert(sizeof(struct nb_qstats) % sizeof(uint64_t) == 0, "nb_qstats holds counters only");
void nb_dp_stats(const struct nb_dp *dp, struct nb_qstats *sum)
{
    uint64_t *out = (uint64_t *)(void *)sum;
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < dp->nq; i++) {
        const uint64_t *in = (const uint64_t *)(const void *)&dp->q[i].st;
        for (size_t k = 0; k < sizeof(*sum) / sizeof(uint64_t); k++)
            out[k] += in[k];
    }
}

/* ---- guest TX ring -> bridge (port rx_burst) ---- */

struct nb_rx_hash;
static unsigned tx_queue(struct nb_dp *dp, struct nb_queue *q, unsigned w,
                         struct pkt *const *pkts, unsigned n, const struct nb_rx_hash *hx);

/* Turns the guest's offload flags into virtio-net metadata. Returns false
 * when the frame claims an offload its headers do not support, or when
 * those headers go past what is in data (a frame with a tail: filled in
 * and asked again). */
static bool tx_offloads(const struct nb_tx_frame *f, struct pkt *pkt)
{
    uint32_t have = pkt_head_len(pkt);
    pkt->vnet = (struct virtio_net_hdr){.gso_type = VIRTIO_NET_HDR_GSO_NONE};
    if (!(f->flags & NETTXF_csum_blank) && !f->gso_type) {
        if (f->flags & NETTXF_data_validated)
            pkt->vnet.flags = VIRTIO_NET_HDR_F_DATA_VALID;
        return true;
    }
    uint16_t l4;
    uint8_t proto;
    if (nb_l4_offset(pkt->data, have, &l4, &proto) < 0)
        return false;
    pkt->vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    pkt->vnet.csum_start = l4;
    pkt->vnet.csum_offset = proto == IPPROTO_TCP ? 16 : 6;
    if (f->gso_type) {
        if (proto != IPPROTO_TCP)
            return false;
        if (l4 + 13u > have)
            return false;
        uint32_t hl = l4 + (uint32_t)(pkt->data[l4 + 12] >> 4) * 4;
        if (hl < l4 + 20u || hl > have)
            return false;
        pkt->vnet.gso_type = f->gso_type == XEN_NETIF_GSO_TYPE_TCPV4 ? VIRTIO_NET_HDR_GSO_TCPV4
                                                                     : VIRTIO_NET_HDR_GSO_TCPV6;
        pkt->vnet.gso_size = f->gso_size;
        pkt->vnet.hdr_len = (uint16_t)hl;
    }
    return true;
}

void nb_dp_set_rate(struct nb_dp *dp, uint64_t bytes, uint64_t usec)
{
    atomic_store_explicit(&dp->rate.bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&dp->rate.usec, usec, memory_order_relaxed);
    atomic_fetch_add_explicit(&dp->rate.gen, 1, memory_order_release);
}

/* Linux's tx_add_credit: a period's credit more, but never more banked than
 * max(128 KiB, one period's credit), so a frame larger than the credit
 * still goes once enough has accumulated. */
static void credit_add(struct nb_queue *q)
{
    uint64_t max_burst = XBR_MAX(q->credit_bytes, 131072u);
    q->credit_left = XBR_MIN(q->credit_left + q->credit_bytes, max_burst);
}

/* Linux's tx_credit_exceeded, with the credit timer replaced by the
 * worker's wake-up time (nb_arm). True: size must wait for the next
 * period. The periods stay on their grid while the guest keeps sending. */
static bool credit_exceeded(struct nb_queue *q, uint32_t size, uint64_t now)
{
    if (now >= q->credit_next_ns) {
        bool on_grid = now - q->credit_next_ns < q->credit_period_ns;
        q->credit_next_ns = (on_grid ? q->credit_next_ns : now) + q->credit_period_ns;
        credit_add(q);
    }
    if (size > q->credit_left) {
        q->st.tx_rate_limited++;
        return true;
    }
    q->credit_left -= size;
    return false;
}

/* The vif's rate= as this queue last saw it; re-read when it changed. */
static void credit_sync(struct nb_dp *dp, struct nb_queue *q)
{
    unsigned gen = atomic_load_explicit(&dp->rate.gen, memory_order_acquire);
    if (XBR_LIKELY(gen == q->rate_gen))
        return;
    q->rate_gen = gen;
    q->credit_bytes = atomic_load_explicit(&dp->rate.bytes, memory_order_relaxed);
    q->credit_period_ns = atomic_load_explicit(&dp->rate.usec, memory_order_relaxed) * 1000u;
    q->credit_left = q->credit_bytes;
    q->credit_next_ns = xbr_now_ns() + q->credit_period_ns;
}

/* Writes the first n responses of q->tx_rsp and notifies the guest. */
static void tx_respond(struct nb_queue *q, unsigned n)
{
    netif_tx_back_ring_t *r = &q->tx;
    for (unsigned i = 0; i < n; i++) {
        netif_tx_response_t *t = RING_GET_RESPONSE(r, r->rsp_prod_pvt);
        t->id = q->tx_rsp[i].id;
        t->status = q->tx_rsp[i].status;
        r->rsp_prod_pvt++;
    }
    int notify = 0;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(r, notify);
    if (notify) {
        q->st.notify_tx++;
        (void)xenevtchn_notify(q->ev, q->lport_tx);
    }
}

/* A packet whose grant copy failed (a bad or revoked grant: the request's,
 * not the ring's fault) fails alone, as in Linux's xenvif_tx_check_gop:
 * counted, and its data slots [first, end) answered NETIF_RSP_ERROR. */
static void tx_copy_failed(struct nb_queue *q, unsigned first, unsigned end)
{
    q->st.tx_drop_copy++;
    for (unsigned s = first; s < end; s++)
        if (q->tx_rsp[s].status == NETIF_RSP_OKAY)
            q->tx_rsp[s].status = NETIF_RSP_ERROR;
}

/* Copies the tails of pkts[0..n) (see struct pkt_tail) into their data
 * with one grant copy through gt; a frame whose copy fails keeps its tail,
 * marked failed. Returns how many failed. */
static unsigned nb_fill(xengnttab_handle *gt, struct pkt *const *pkts, unsigned n)
{
    xengnttab_grant_copy_segment_t segs[XBR_BURST * XBR_PKT_TAIL_PIECES];
    unsigned first[XBR_BURST], m = 0, failed = 0;
    bool copied[XBR_BURST];
    for (unsigned i = 0; i < n; i++) {
        struct pkt *p = pkts[i];
        first[i] = m;
        copied[i] = p->tail && !p->tail->failed;
        if (!copied[i])
            continue;
        uint8_t *at = p->data + pkt_head_len(p);
        for (unsigned k = 0; k < p->tail->n; k++) {
            xengnttab_grant_copy_segment_t *sg = &segs[m++];
            sg->source.foreign.ref = p->tail->piece[k].gref;
            sg->source.foreign.offset = p->tail->piece[k].offset;
            sg->source.foreign.domid = p->tail->domid;
            sg->dest.virt = at;
            sg->len = p->tail->piece[k].len;
            sg->flags = GNTCOPY_source_gref;
            sg->status = GNTST_okay;
            at += p->tail->piece[k].len;
        }
    }
    bool all_bad = m && xengnttab_grant_copy(gt, m, segs) < 0;
    for (unsigned i = 0; i < n; i++) {
        struct pkt *p = pkts[i];
        if (!copied[i])
            continue;
        bool bad = all_bad;
        for (unsigned k = 0; !bad && k < p->tail->n; k++)
            bad = segs[first[i] + k].status != GNTST_okay;
        if (bad) {
            p->tail->failed = true;
            failed++;
        } else {
            p->tail = NULL;
        }
    }
    return failed;
}

/* rx_fill: for a destination that cannot take tails, or a capture. A
 * frame that fails is answered with errors and counted in rx_done. */
static void nb_rx_fill(struct port *p, unsigned w, struct pkt *const *pkts, unsigned n)
{
    struct nb_dp *dp = p->priv;
    (void)nb_fill(dp->copy_gt[w], pkts, n);
}

static unsigned nb_rx_burst(struct port *p, unsigned w, struct pkt *pkts, unsigned n)
{
    struct nb_dp *dp = p->priv;
    if (w >= dp->nq || dp_dead(dp))
        return 0;
    struct nb_queue *q = &dp->q[w];
    /* The guest's RX-side notifications land here too: frames waiting in
     * the RX queue for its buffers go on now. */
    if (atomic_load_explicit(&q->rxq_n, memory_order_relaxed))
        (void)tx_queue(dp, q, w, NULL, 0, NULL);
    netif_tx_back_ring_t *r = &q->tx;
    RING_IDX prod = __atomic_load_n(&r->sring->req_prod, __ATOMIC_ACQUIRE);
    RING_IDX cons = r->req_cons;

    if (prod == cons)
        return 0;
    if (prod - cons > RING_SIZE(r)) {
        nb_dp_fatal(dp, "queue %u: TX req_prod %u is more than a ring ahead of %u", w, prod, cons);
        return 0;
    }

    unsigned n_frames = 0, n_parsed = 0, n_seg = 0, n_rsp = 0;
    unsigned frame_segs[XBR_BURST]; /* copies of each parsed frame */
    const char *fatal_why = NULL;
    /* Long frames leave their tail in the guest's grants (NB_TX_COPY_LEN);
     * not where ip= filtering reads deeper into them. */
    const bool tails = !dp->ip_filter;
    credit_sync(dp, q);
    uint64_t now = q->credit_bytes ? xbr_now_ns() : 0;
    while (n_parsed < n && cons != prod) {
        struct nb_tx_frame *f = &q->txf[n_parsed];
        enum nb_tx_verdict v = nb_tx_parse(r->sring->ring, RING_SIZE(r), cons, prod, f);
        if (v == NB_TX_FATAL) {
            fatal_why = f->why;
            break;
        }
        /* Over the credit: the frame stays on the ring, not consumed, and
         * the worker comes back at the next period (nb_arm). */
        if (q->credit_bytes && v != NB_TX_MCAST && credit_exceeded(q, f->len, now))
            break;
        cons += f->n_slots;
        n_parsed++;
        if (v == NB_TX_MCAST) {
            /* Multicast control (nb-ctrl.c): a dummy request, answered. */
            int16_t st = nb_mcast_request(dp, w, f);
            for (unsigned s = 0; s < f->n_slots; s++)
                q->tx_rsp[n_rsp + s] = (typeof(q->tx_rsp[0])){
                    f->ids[s], f->is_extra[s] ? NETIF_RSP_NULL : st};
            n_rsp += f->n_slots;
            f->n_data = 0; /* no frame */
            continue;
        }
        if (v == NB_TX_DROP) {
            q->st.tx_drop_bad++;
            for (unsigned s = 0; s < f->n_slots; s++)
                q->tx_rsp[n_rsp + s] = (typeof(q->tx_rsp[0])){
                    f->ids[s], f->is_extra[s] ? NETIF_RSP_NULL : NETIF_RSP_ERROR};
            n_rsp += f->n_slots;
            f->n_data = 0; /* marks "no frame" for the pass below */
            continue;
        }
        struct pkt *pkt = &pkts[n_frames];
        struct pkt_tail *tl = NULL;
        uint32_t head = f->len;
        if (tails && f->len > NB_TX_COPY_LEN) {
            head = NB_TX_COPY_LEN;
            tl = &q->tx_tail[n_frames];
            tl->len = f->len - head;
            tl->domid = dp->domid;
            tl->n = 0;
            tl->failed = false;
        }
        n_frames++;
        unsigned first_seg = n_seg;
        uint32_t off = 0;
        for (unsigned d = 0; d < f->n_data; d++) {
            const netif_tx_request_t *t = &f->data[d];
            if (t->size == 0)
                continue; /* a first slot whose data all sits in the followers */
            uint32_t copy = off < head ? XBR_MIN(t->size, head - off) : 0;
            if (copy) {
                xengnttab_grant_copy_segment_t *sg = &q->tx_seg[n_seg++];
                sg->source.foreign.ref = t->gref;
                sg->source.foreign.offset = t->offset;
                sg->source.foreign.domid = dp->domid;
                sg->dest.virt = pkt->buf + off;
                sg->len = (uint16_t)copy;
                sg->flags = GNTCOPY_source_gref;
                sg->status = GNTST_okay;
            }
            if (copy < t->size) /* the rest of this slot is tail */
                tl->piece[tl->n++] = (typeof(tl->piece[0])){
                    t->gref, (uint16_t)(t->offset + copy), (uint16_t)(t->size - copy)};
            off += t->size;
        }
        frame_segs[n_parsed - 1] = n_seg - first_seg;
        pkt->data = pkt->buf;
        pkt->len = off; /* == f->len: the parser checked the sizes add up */
        pkt->tail = tl;
        for (unsigned s = 0; s < f->n_slots; s++)
            q->tx_rsp[n_rsp + s] = (typeof(q->tx_rsp[0])){
                f->ids[s], f->is_extra[s] ? NETIF_RSP_NULL : NETIF_RSP_OKAY};
        n_rsp += f->n_slots;
    }
    r->req_cons = cons;

    /* A copy that fails (a bad or revoked grant: the request's, not the
     * ring's fault) fails its packet only, as in Linux's
     * xenvif_tx_check_gop: answered with NETIF_RSP_ERROR and counted. */
    bool copy_failed = false;
    if (n_seg && xengnttab_grant_copy(dp->copy_gt[w], n_seg, q->tx_seg) < 0)
        copy_failed = true;

    /* Second pass: per-segment status, offloads, compaction. */
    unsigned seg = 0, rsp = 0, out = 0, fr = 0;
    unsigned out_rsp[XBR_BURST][2]; /* each output frame's responses */
    for (unsigned i = 0; i < n_parsed; i++) {
        struct nb_tx_frame *f = &q->txf[i];
        unsigned first_rsp = rsp;
        rsp += f->n_slots;
        if (f->n_data == 0)
            continue; /* dropped by the parser; already answered with errors */
        struct pkt *pkt = &pkts[fr++];
        bool bad = copy_failed;
        for (unsigned k = 0; k < frame_segs[i]; k++, seg++)
            if (q->tx_seg[seg].status != GNTST_okay)
                bad = true;
        if (bad) {
            tx_copy_failed(q, first_rsp, rsp);
            continue;
        }
        if (dp->antispoof && memcmp(pkt->data + 6, dp->mac, 6) != 0) {
            q->st.tx_drop_spoof++;
            continue;
        }
        if (dp->ip_filter) {
            enum nb_ip_verdict iv = nb_ip_allowed(&dp->ipf, pkt->data, pkt->len);
            if (XBR_UNLIKELY(iv != NB_IP_PASS)) {
                if (iv == NB_IP_BAD_ARP)
                    q->st.tx_drop_arp++;
                else if (iv == NB_IP_SERVER)
                    q->st.tx_drop_server++;
                else
                    q->st.tx_drop_ip_src++;
                continue;
            }
        }
        bool offloads_ok = tx_offloads(f, pkt);
        if (!offloads_ok && pkt->tail) {
            /* Headers beyond the copied part (a long IPv6 extension
             * chain, say): the whole frame, then ask again. */
            struct pkt *whole = pkt;
            if (nb_fill(dp->copy_gt[w], &whole, 1)) {
                tx_copy_failed(q, first_rsp, rsp);
                continue;
            }
            offloads_ok = tx_offloads(f, pkt);
        }
        if (!offloads_ok) {
            q->st.tx_drop_csum++;
            continue;
        }
        if (f->gso_type)
            q->st.tx_gso++;
        if (out != fr - 1)
            pkts[out] = *pkt;
        out_rsp[out][0] = first_rsp;
        out_rsp[out][1] = rsp;
        out++;
    }
    q->st.tx_frames += out;

    /* A frame going on with a tail holds the guest's grants until
     * rx_done: the burst's responses wait for it, in ring order. */
    q->n_held = 0;
    for (unsigned i = 0; i < out && !fatal_why; i++)
        if (pkts[i].tail)
            q->tx_held[q->n_held++] = (typeof(q->tx_held[0])){pkts[i].tail, out_rsp[i][0],
                                                               out_rsp[i][1]};
    if (q->n_held)
        q->tx_rsp_deferred = n_rsp;
    else
        tx_respond(q, n_rsp);
    if (fatal_why)
        nb_dp_fatal(dp, "queue %u: %s", w, fatal_why);
    if (dp_dead(dp)) {
        q->tx_rsp_deferred = q->n_held = 0; /* no ring is touched from now on */
        return 0;
    }
    return out;
}

/* The burst's frames are forwarded: their tails were copied (or failed),
 * so the guest gets its answers. */
static void nb_rx_done(struct port *p, unsigned w)
{
    struct nb_dp *dp = p->priv;
    if (w >= dp->nq || !dp->q[w].tx_rsp_deferred)
        return;
    struct nb_queue *q = &dp->q[w];
    for (unsigned i = 0; i < q->n_held; i++)
        if (q->tx_held[i].tail->failed)
            tx_copy_failed(q, q->tx_held[i].first, q->tx_held[i].end);
    if (!dp_dead(dp))
        tx_respond(q, q->tx_rsp_deferred);
    q->tx_rsp_deferred = q->n_held = 0;
}

/* ---- bridge -> guest RX ring (port tx_burst) ---- */

static bool frame_is_ipv6(const struct pkt *pkt)
{
    const uint8_t *d = pkt->data;
    if (pkt->len >= 18 && ((d[12] == 0x81 && d[13] == 0) || (d[12] == 0x88 && d[13] == 0xa8)))
        return d[16] == 0x86 && d[17] == 0xdd;
    return d[12] == 0x86 && d[13] == 0xdd;
}

/* The hash extra info for one frame, when the frontend's hashing gave one
 * (nb-ctrl.c); type < 0: none. */
struct nb_rx_hash {
    int type;
    uint32_t value;
};

/* Frames on their way into one queue's RX ring. Requests are taken and
 * responses written in ring order; the data of a batch goes in one grant
 * copy at flush. Frames made here (a checksum finished in software) live in
 * q->scratch until the flush that copies them, so a batch is flushed early
 * when the scratch area or the segment arrays would overflow, never cut
 * short: every frame of a burst the guest has buffers for is delivered. */
struct rx_batch {
    struct nb_dp *dp;
    struct nb_queue *q;
    unsigned w;
    RING_IDX prod;              /* req_prod, read once for the burst */
    unsigned n_slot, n_seg, n_frames;
    uint32_t scratch_used;
    /* Per frame: its ring slots (q->rx_rsp) and its copies (q->rx_seg). */
    unsigned frame_first[XBR_BURST], frame_n[XBR_BURST], frame_in[XBR_BURST];
    unsigned frame_seg[XBR_BURST], frame_nseg[XBR_BURST];
    struct pkt_tail *frame_tail[XBR_BURST]; /* copied from another guest's grants */
    bool frame_gso[XBR_BURST];
    /* Input frame i went on the ring (or into the RX queue), and whether a
     * copy into its buffers failed; index RX_FROM_QUEUE: frames from the
     * RX queue, whose entries are freed once the flush copied them. */
    bool in_put[XBR_BURST + 1];
    bool in_bad[XBR_BURST + 1];
    struct nb_rxq_ent *done;
};
#define RX_FROM_QUEUE XBR_BURST

/* After a failed copy of a frame with a tail: is it the sending guest's
 * grants that fail (then the tail is marked failed, and the sender told in
 * its rx_done), rather than this guest's buffers? One byte of each piece,
 * on this rare path only. */
static bool rx_tail_unreadable(struct nb_dp *dp, unsigned w, struct pkt_tail *tail)
{
    xengnttab_grant_copy_segment_t segs[XBR_PKT_TAIL_PIECES];
    uint8_t probe[XBR_PKT_TAIL_PIECES];
    for (unsigned k = 0; k < tail->n; k++)
        segs[k] = (xengnttab_grant_copy_segment_t){
            .source.foreign = {tail->piece[k].gref, tail->piece[k].offset, tail->domid},
            .dest.virt = &probe[k],
            .len = 1,
            .flags = GNTCOPY_source_gref,
        };
    bool bad = xengnttab_grant_copy(dp->copy_gt[w], tail->n, segs) < 0;
    for (unsigned k = 0; !bad && k < tail->n; k++)
        bad = segs[k].status != GNTST_okay;
    if (bad)
        tail->failed = true;
    return bad;
}

/* Grant-copies the batch's data and writes its responses. */
static void rx_flush(struct rx_batch *b)
{
    struct nb_dp *dp = b->dp;
    struct nb_queue *q = b->q;
    netif_rx_back_ring_t *r = &q->rx;

    if (b->n_seg && xengnttab_grant_copy(dp->copy_gt[b->w], b->n_seg, q->rx_seg) < 0)
        for (unsigned k = 0; k < b->n_seg; k++)
            q->rx_seg[k].status = GNTST_general_error;

    for (unsigned f = 0; f < b->n_frames; f++) {
        bool bad = false;
        unsigned first = b->frame_first[f], end = first + b->frame_n[f];
        /* A buffer the copy could not write (read-only or bad grant), or
         * the sending guest's grant for a tail gone: the frame fails,
         * NETIF_RSP_ERROR, counted, as Linux's xenvif_rx_copy_flush does;
         * not a reason to disconnect. */
        for (unsigned k = b->frame_seg[f]; k < b->frame_seg[f] + b->frame_nseg[f]; k++)
            if (q->rx_seg[k].status != GNTST_okay)
                bad = true;
        for (unsigned s = first; s < end; s++) {
            struct nb_rx_rsp *rr = &q->rx_rsp[s];
            union netif_rx_sring_entry *e =
                (union netif_rx_sring_entry *)RING_GET_RESPONSE(r, r->rsp_prod_pvt);
            if (rr->extra) {
                memcpy(&e->rsp, &rr->ex, sizeof(rr->ex));
            } else {
                netif_rx_response_t rsp = rr->rsp;
                if (bad) {
                    rsp.status = NETIF_RSP_ERROR;
                    rsp.flags &= (uint16_t)~NETRXF_extra_info;
                }
                e->rsp = rsp;
            }
            r->rsp_prod_pvt++;
        }
        if (bad) {
            b->in_bad[b->frame_in[f]] = true;
            /* The sender's fault if its tail is what failed: it gets the
             * errors and the count, as if its own copy had failed. */
            if (!b->frame_tail[f] || !rx_tail_unreadable(dp, b->w, b->frame_tail[f]))
                q->st.rx_drop_copy++;
        } else {
            q->st.rx_frames++;
            q->st.rx_direct += b->frame_tail[f] != NULL;
            if (b->frame_gso[f])
                q->st.rx_gso++;
        }
    }
    if (b->n_slot) {
        int notify = 0;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(r, notify);
        if (notify) {
            q->st.notify_rx++;
            (void)xenevtchn_notify(q->ev, q->lport_rx);
        }
    }
    b->n_slot = b->n_seg = b->n_frames = 0;
    b->scratch_used = 0;
    while (b->done) {
        struct nb_rxq_ent *e = b->done;
        b->done = e->next;
        free(e);
    }
}

/* Makes room in the batch for a frame of need slots and, for a frame made
 * here, scratch bytes; returns where those go (or NULL for scratch 0). */
static uint8_t *rx_reserve(struct rx_batch *b, unsigned need, uint32_t scratch)
{
    if (b->n_frames == XBR_BURST || b->n_slot + need > NB_RX_MAX_RSP ||
        b->n_seg + NB_RX_FRAME_SEGS > NB_RX_MAX_SEGS || b->scratch_used + scratch > NB_RX_SCRATCH)
        rx_flush(b);
    uint8_t *p = scratch ? b->q->scratch + b->scratch_used : NULL;
    b->scratch_used += scratch;
    return p;
}

/* Guest RX slots free for us now. */
static unsigned rx_slots_free(const struct rx_batch *b)
{
    return b->prod - b->q->rx.req_cons;
}

/* Puts one frame on the ring: its first slot, its extra-info slots, then
 * the rest of its data; the caller checked the slots are there and
 * reserved the batch room. The frame's bytes are src[0..len) less its tail
 * (tail NULL: all of them), whose end is copied from the sending guest's
 * grants straight into this guest's buffers: each buffer (a page) takes one
 * copy per source piece it overlaps. */
static void rx_put(struct rx_batch *b, unsigned in, const uint8_t *src, uint32_t len,
                   struct pkt_tail *tail, uint16_t flags, const struct netif_extra_info *ex,
                   unsigned n_ex, bool gso)
{
    struct nb_queue *q = b->q;
    netif_rx_back_ring_t *r = &q->rx;
    const uint16_t domid = b->dp->domid;
    unsigned need = (len + NB_PAGE - 1) / NB_PAGE + n_ex;
    const uint32_t head = tail ? len - tail->len : len;
    uint32_t off = 0;                /* of the frame, copied so far */
    unsigned piece = 0;              /* the tail's piece at off, once off >= head */
    uint32_t piece_off = 0;

    b->frame_first[b->n_frames] = b->n_slot;
    b->frame_seg[b->n_frames] = b->n_seg;
    for (unsigned s = 0; s < need; s++) {
        netif_rx_request_t req;
        req = *(const volatile netif_rx_request_t *)RING_GET_REQUEST(r, r->req_cons);
        r->req_cons++;
        struct nb_rx_rsp *rr = &q->rx_rsp[b->n_slot++];
        if (s >= 1 && s <= n_ex) {
            /* Extra info goes in the slots after the first; their
             * requests' buffers stay unused (the frontend recycles them). */
            rr->extra = true;
            rr->ex = ex[s - 1];
            continue;
        }
        uint32_t chunk = XBR_MIN(NB_PAGE, len - off);
        rr->extra = false;
        rr->rsp.id = req.id;
        rr->rsp.offset = 0;
        rr->rsp.status = (int16_t)chunk;
        rr->rsp.flags = 0;
        if (s == 0) {
            rr->rsp.flags = flags;
            if (n_ex)
                rr->rsp.flags |= NETRXF_extra_info;
        }
        if (off + chunk < len)
            rr->rsp.flags |= NETRXF_more_data;
        for (uint32_t at = 0; at < chunk;) {
            xengnttab_grant_copy_segment_t *sg = &q->rx_seg[b->n_seg++];
            uint32_t n;
            sg->dest.foreign.ref = req.gref;
            sg->dest.foreign.offset = (uint16_t)at;
            sg->dest.foreign.domid = domid;
            if (off < head) {
                n = XBR_MIN(chunk - at, head - off);
                sg->source.virt = (void *)(uintptr_t)(src + off);
                sg->flags = GNTCOPY_dest_gref;
            } else {
                n = XBR_MIN(chunk - at, tail->piece[piece].len - piece_off);
                sg->source.foreign.ref = tail->piece[piece].gref;
                sg->source.foreign.offset = (uint16_t)(tail->piece[piece].offset + piece_off);
                sg->source.foreign.domid = tail->domid;
                sg->flags = GNTCOPY_source_gref | GNTCOPY_dest_gref;
                piece_off += n;
                if (piece_off == tail->piece[piece].len) {
                    piece++;
                    piece_off = 0;
                }
            }
            sg->len = (uint16_t)n;
            sg->status = GNTST_okay;
            at += n;
            off += n;
        }
    }
    b->frame_tail[b->n_frames] = tail;
    b->frame_nseg[b->n_frames] = b->n_seg - b->frame_seg[b->n_frames];
    b->frame_gso[b->n_frames] = gso;
    b->frame_in[b->n_frames] = in;
    b->frame_n[b->n_frames++] = need;
    b->in_put[in] = true;
}

/* The hash extra info of a frame, if its hash applies: 0 or 1 slot. */
static unsigned rx_hash_extra(struct netif_extra_info *ex, const struct nb_rx_hash *h)
{
    if (!h || h->type < 0)
        return 0;
    memset(ex, 0, sizeof(*ex));
    ex->type = XEN_NETIF_EXTRA_TYPE_HASH;
    ex->u.hash.type = (uint8_t)h->type;
    ex->u.hash.algorithm = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
    for (unsigned k = 0; k < 4; k++) /* "LSB ---- value ---- MSB" */
        ex->u.hash.value[k] = (uint8_t)(h->value >> (8 * k));
    return 1;
}

/* A super-frame for a guest that cannot take it as one (no SG, no GSO of
 * its type, or no checksum offload for it): cut into the segments the
 * sender would have sent, each with full checksums (gso/gso.h), as the
 * kernel's stack does in front of Linux netback. Returns false, having
 * done nothing, when the ring lacks buffers for all of its segments. */
static bool rx_segment(struct rx_batch *b, unsigned i, const struct pkt *pkt,
                       const struct nb_rx_hash *h)
{
    /* The caller made it whole (rx_whole). */
    struct nb_queue *q = b->q;
    struct gso_tcp g;
    if (gso_tcp_init(&g, pkt->data, pkt->len, pkt->vnet.gso_type, pkt->vnet.gso_size) < 0) {
        q->st.rx_drop_gso++; /* not a TCP super-frame: cannot be segmented */
        return true;
    }
    uint32_t first = gso_tcp_next_len(&g), max = b->dp->sg ? NB_RX_MAX_DATA * NB_PAGE : NB_PAGE;
    if (first > max) {
        q->st.rx_drop_big++; /* an MSS larger than the guest's buffers */
        return true;
    }
    struct netif_extra_info ex[1];
    unsigned n_ex = rx_hash_extra(ex, h);
    /* All segments but the last are as long as the first. */
    unsigned n = gso_tcp_count(&g);
    uint32_t last = g.end - g.hdr_len - (n - 1) * (uint32_t)g.mss + g.hdr_len;
    if (n == 1)
        last = first;
    unsigned total = (n - 1) * ((first + NB_PAGE - 1) / NB_PAGE + n_ex) +
                     (last + NB_PAGE - 1) / NB_PAGE + n_ex;
    if (rx_slots_free(b) < total)
        return false;
    q->st.rx_segmented++;
    uint32_t len;
    while ((len = gso_tcp_next_len(&g)) != 0) {
        unsigned need = (len + NB_PAGE - 1) / NB_PAGE + n_ex;
        uint8_t *seg = rx_reserve(b, need, len);
        (void)gso_tcp_next(&g, seg);
        q->st.rx_segments++;
        rx_put(b, i, seg, len, NULL, NETRXF_data_validated, ex, n_ex, false);
    }
    return true;
}

/* One frame towards the guest (input i of the burst, or RX_FROM_QUEUE):
 * put on the ring, or dropped and counted for a reason of its own. Returns
 * false, having done nothing, when the ring lacks the buffers for it. */
/* The whole of a frame with a tail, for what needs all its bytes here (a
 * checksum finished in software, segmentation, the RX queue). False: the
 * sending guest's grant is gone; the frame is dropped and counted. */
static bool rx_whole(struct rx_batch *b, struct pkt *pkt)
{
    if (!pkt->tail)
        return true;
    (void)nb_fill(b->dp->copy_gt[b->w], &pkt, 1);
    if (!pkt->tail)
        return true;
    b->q->st.rx_drop_copy++;
    return false;
}

static bool rx_one(struct rx_batch *b, unsigned i, struct pkt *pkt, const struct nb_rx_hash *h)
{
    struct nb_dp *dp = b->dp;
    struct nb_queue *q = b->q;
    uint8_t gso = 0;
    bool gso_frame = pkt->vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE && pkt->vnet.gso_size;
    uint8_t vt = pkt->vnet.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

    /* As Linux's vif device features: TSO needs SG and the matching
     * checksum offload. */
    if (gso_frame) {
        if (dp->sg && dp->csum && vt == VIRTIO_NET_HDR_GSO_TCPV4 && dp->gso4)
            gso = XEN_NETIF_GSO_TYPE_TCPV4;
        else if (dp->sg && dp->ipv6_csum && vt == VIRTIO_NET_HDR_GSO_TCPV6 && dp->gso6)
            gso = XEN_NETIF_GSO_TYPE_TCPV6;
        else if (!rx_whole(b, pkt))
            return true;
        else
            return rx_segment(b, i, pkt, h);
    }
    if (pkt->len > (dp->sg ? NB_RX_MAX_DATA * NB_PAGE : NB_PAGE)) {
        q->st.rx_drop_big++;
        return true;
    }
    struct netif_extra_info ex[NB_RX_MAX_EXTRAS];
    unsigned n_ex = 0;
    /* Extra info after the first slot: GSO, then the hash (chained). */
    if (gso) {
        memset(&ex[n_ex], 0, sizeof(ex[0]));
        ex[n_ex].type = XEN_NETIF_EXTRA_TYPE_GSO;
        ex[n_ex].u.gso.type = gso;
        ex[n_ex].u.gso.size = pkt->vnet.gso_size;
        n_ex++;
    }
    n_ex += rx_hash_extra(&ex[n_ex], h);
    for (unsigned k = 0; k + 1 < n_ex; k++)
        ex[k].flags = XEN_NETIF_EXTRA_FLAG_MORE;
    unsigned need = (pkt->len + NB_PAGE - 1) / NB_PAGE + n_ex;
    if (rx_slots_free(b) < need)
        return false;

    const uint8_t *src = pkt->data;
    uint16_t flags = 0;
    if (pkt->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        bool can = dp->csum && (dp->ipv6_csum || !frame_is_ipv6(pkt));
        uint32_t cs = pkt->vnet.csum_start, co = cs + pkt->vnet.csum_offset;
        if (can || gso) {
            flags = NETRXF_csum_blank | NETRXF_data_validated;
        } else if (co + 2 <= pkt->len && cs < co) {
            /* The guest cannot take a partial checksum: finish it here,
             * in a copy (the frame may be flooded to other ports). */
            if (!rx_whole(b, pkt))
                return true;
            uint8_t *c = rx_reserve(b, need, pkt->len);
            memcpy(c, pkt->data, pkt->len);
            uint16_t sum = gso_csum(0, c + cs, pkt->len - cs);
            if (sum == 0 && pkt->vnet.csum_offset == 6)
                sum = 0xffff; /* UDP: 0 means "no checksum" */
            c[co] = (uint8_t)(sum >> 8);
            c[co + 1] = (uint8_t)sum;
            src = c;
            flags = NETRXF_data_validated;
        } else {
            q->st.rx_drop_big++;
            return true;
        }
    } else if (pkt->vnet.flags & VIRTIO_NET_HDR_F_DATA_VALID) {
        flags = NETRXF_data_validated;
    }
    if (src == pkt->data)
        (void)rx_reserve(b, need, 0);
    rx_put(b, i, src, pkt->len, src == pkt->data ? pkt->tail : NULL, flags, ex, n_ex, gso != 0);
    return true;
}

/* ---- the RX queue: frames waiting for the guest's buffers ---- */

static bool rxq_push(struct nb_queue *q, const struct pkt *pkt, const struct nb_rx_hash *h)
{
    struct nb_rxq_ent *e;
    if (q->rxq_bytes + pkt->len > NB_RXQ_BYTES || !(e = malloc(sizeof(*e) + pkt->len))) {
        q->st.rx_dropped_full++;
        return false;
    }
    e->next = NULL;
    e->since_ms = xbr_now_ms();
    e->vnet = pkt->vnet;
    e->hash_type = h ? h->type : -1;
    e->hash = h ? h->value : 0;
    e->len = pkt->len;
    memcpy(e->data, pkt->data, pkt->len);
    if (!q->rxq_head)
        q->rxq_tail = &q->rxq_head;
    *q->rxq_tail = e;
    q->rxq_tail = &e->next;
    q->rxq_bytes += pkt->len;
    atomic_fetch_add_explicit(&q->rxq_n, 1, memory_order_relaxed);
    q->st.rx_queued++;
    return true;
}

static struct nb_rxq_ent *rxq_pop(struct nb_queue *q)
{
    struct nb_rxq_ent *e = q->rxq_head;
    q->rxq_head = e->next;
    q->rxq_bytes -= e->len;
    atomic_fetch_sub_explicit(&q->rxq_n, 1, memory_order_relaxed);
    e->next = NULL;
    return e;
}

/* Drops the queue's frames older than NB_RX_DRAIN_MS (under rx_lock). A
 * frame queued after the caller read its clock is younger than now says:
 * kept (now - since_ms would wrap and drop it, as it did for frames a
 * worker queued while the control thread waited for the lock). */
static void rxq_expire(struct nb_queue *q, uint64_t now)
{
    while (q->rxq_head && now >= q->rxq_head->since_ms &&
           now - q->rxq_head->since_ms >= NB_RX_DRAIN_MS) {
        free(rxq_pop(q));
        q->st.rx_dropped_stalled++;
    }
}

/* Puts queued frames on the ring, oldest first, while it has buffers. */
static void rxq_drain(struct rx_batch *b)
{
    struct nb_queue *q = b->q;
    rxq_expire(q, xbr_now_ms());
    while (q->rxq_head) {
        struct nb_rxq_ent *e = q->rxq_head;
        struct pkt p = {.data = e->data, .len = e->len, .vnet = e->vnet};
        struct nb_rx_hash h = {e->hash_type, e->hash};
        if (!rx_one(b, RX_FROM_QUEUE, &p, e->hash_type >= 0 ? &h : NULL))
            break;
        /* Its data may be referenced by the batch: freed after the flush. */
        e = rxq_pop(q);
        e->next = b->done;
        b->done = e;
    }
}

void nb_dp_rx_expire(struct nb_dp *dp)
{
    for (unsigned i = 0; i < dp->nq; i++) {
        struct nb_queue *q = &dp->q[i];
        if (!atomic_load_explicit(&q->rxq_n, memory_order_relaxed))
            continue;
        pthread_spin_lock(&q->rx_lock);
        rxq_expire(q, xbr_now_ms());
        pthread_spin_unlock(&q->rx_lock);
    }
}

/* Frames for queue q's RX ring (n may be 0: only the RX queue is served).
 * Frames the ring has no buffers for wait in the RX queue, behind any that
 * wait already, so the guest gets them in order. */
static unsigned tx_queue(struct nb_dp *dp, struct nb_queue *q, unsigned w,
                         struct pkt *const *pkts, unsigned n, const struct nb_rx_hash *hx)
{
    pthread_spin_lock(&q->rx_lock);

    struct rx_batch b;
    unsigned sent = 0;
    b.dp = dp;
    b.q = q;
    b.w = w;
    b.n_slot = b.n_seg = b.n_frames = 0;
    b.scratch_used = 0;
    b.done = NULL;
    memset(b.in_put, 0, sizeof(b.in_put));
    memset(b.in_bad, 0, sizeof(b.in_bad));
    b.prod = __atomic_load_n(&q->rx.sring->req_prod, __ATOMIC_ACQUIRE);
    if (b.prod - q->rx.req_cons > RING_SIZE(&q->rx)) {
        nb_dp_fatal(dp, "queue %u: RX req_prod %u is more than a ring ahead of %u", q->idx,
                    b.prod, q->rx.req_cons);
        goto out;
    }
    if (q->rxq_head)
        rxq_drain(&b);
    for (unsigned i = 0; i < n; i++) {
        const struct nb_rx_hash *h = hx ? &hx[i] : NULL;
        if (!q->rxq_head && rx_one(&b, i, pkts[i], h))
            continue;
        b.in_put[i] = rx_whole(&b, pkts[i]) && rxq_push(q, pkts[i], h);
    }
    rx_flush(&b);
    if (q->rxq_head) {
        /* Ask for a notification when the guest posts any buffer (the
         * frontend checks req_event after pushing), then look once more in
         * case it posted before seeing it. */
        q->rx.sring->req_event = b.prod + 1;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        RING_IDX now = __atomic_load_n(&q->rx.sring->req_prod, __ATOMIC_ACQUIRE);
        if (now != b.prod && now - q->rx.req_cons <= RING_SIZE(&q->rx)) {
            b.prod = now;
            rxq_drain(&b);
            rx_flush(&b);
            q->rx.sring->req_event = now + 1;
        }
    }
    for (unsigned i = 0; i < n; i++)
        sent += b.in_put[i] && !b.in_bad[i];
out:
    pthread_spin_unlock(&q->rx_lock);
    return sent;
}

/* Frames towards the guest: multicast control's filter, then the queue. A
 * frontend that selected Toeplitz on its control ring gets each frame on the
 * queue its hash maps to (Linux xenvif_select_queue) with the hash as extra
 * info; every other vif gets worker w's frames on queue w % nq. */
static unsigned nb_tx_burst(struct port *p, unsigned w, struct pkt *const *pkts, unsigned n)
{
    struct nb_dp *dp = p->priv;
    if (dp_dead(dp))
        return 0;
    struct pkt *pass[XBR_BURST];
    if (dp->mcast_ctrl) {
        unsigned m = 0;
        for (unsigned i = 0; i < n; i++) {
            if (nb_mcast_pass(dp, pkts[i]->data))
                pass[m++] = pkts[i];
            else
                dp->ws[w].rx_mcast_filtered++;
        }
        pkts = pass;
        n = m;
    }
    const struct nb_hash *h = nb_ctrl_hash(dp);
    if (!h)
        return tx_queue(dp, &dp->q[w % dp->nq], w, pkts, n, NULL);

    unsigned qof[XBR_BURST], sent = 0;
    struct nb_rx_hash hx[XBR_BURST];
    for (unsigned i = 0; i < n; i++) {
        hx[i].type = nb_hash_frame(h, pkts[i]->data, pkt_head_len(pkts[i]), &hx[i].value);
        qof[i] = nb_hash_queue(h, hx[i].value, dp->nq);
    }
    dp->ws[w].rx_hashed += n;
    /* One sub-burst per queue, in the order queues first appear. */
    bool done[XBR_BURST] = {false};
    for (unsigned i = 0; i < n; i++) {
        if (done[i])
            continue;
        struct pkt *sub[XBR_BURST];
        struct nb_rx_hash subh[XBR_BURST];
        unsigned m = 0;
        for (unsigned j = i; j < n; j++)
            if (!done[j] && qof[j] == qof[i]) {
                sub[m] = pkts[j];
                subh[m++] = hx[j];
                done[j] = true;
            }
        sent += tx_queue(dp, &dp->q[qof[i]], w, sub, m, subh);
    }
    return sent;
}

/* ---- the rest of the ops ---- */

static int nb_wait_fd(struct port *p, unsigned w)
{
    struct nb_dp *dp = p->priv;
    return w < dp->nq ? dp->q[w].ev_fd : -1;
}

static bool nb_arm(struct port *p, unsigned w, uint64_t *wake_ns)
{
    struct nb_dp *dp = p->priv;
    if (w >= dp->nq)
        return false;
    struct nb_queue *q = &dp->q[w];
    /* Requests held back by rate=: the guest will not notify again for
     * them, so the worker wakes when the next period's credit comes. */
    if (q->credit_bytes && RING_HAS_UNCONSUMED_REQUESTS(&q->tx)) {
        *wake_ns = XBR_MIN(*wake_ns, q->credit_next_ns);
        return false;
    }
    /* Consume what woke us (the fd is level-triggered and non-blocking);
     * unmasking lets the next notification through. Bounded: a flooding
     * frontend (XSA-332) costs one wake-up per unmask, not a busy loop. */
    for (unsigned i = 0; i < 64; i++) {
        xenevtchn_port_or_error_t port = xenevtchn_pending(q->ev);
        if (port < 0)
            break;
        (void)xenevtchn_unmask(q->ev, (evtchn_port_t)port);
    }
    if (dp_dead(dp))
        return false;
    int more = 0;
    RING_FINAL_CHECK_FOR_REQUESTS(&q->tx, more);
    return more;
}

static int nb_open(struct port *p, const struct port_open_args *args, char *err, size_t errlen)
{
    struct nb_dp *dp = args->class_arg;
    if (!dp) {
        snprintf(err, errlen, "netback ports are created from xenstore, not by hand");
        return -EINVAL;
    }
    p->priv = dp;
    /* The port's own address (BPDU source): the guest's with the
     * locally-administered bit, as Linux names a vif fe:ff:ff:ff:ff:ff. */
    memcpy(p->mac, dp->mac, 6);
    p->mac[0] = 0xfe;
    return 0;
}

static void nb_close(struct port *p)
{
    struct nb_dp *dp = p->priv;
    if (!dp)
        return;
    if (dp->vif)
        nb_vif_port_closed(dp->vif);
    nb_dp_free(dp);
    p->priv = NULL;
}

static void nb_show(struct port *p, struct ctl_out *o)
{
    struct nb_dp *dp = p->priv;
    struct nb_qstats st;
    char mac[XBR_MAC_STRLEN];

    nb_dp_stats(dp, &st);
    ctl_out_text(o, "    ");
    ctl_out_u64(o, "guest_domid", "guest dom%llu", dp->domid);
    ctl_out_str(o, "guest_mac", " mac %s", xbr_mac_format(dp->mac, mac));
    ctl_out_u64(o, "queues", " queues %llu", dp->nq);
    ctl_out_bool(o, "sg", " sg %s", dp->sg);
    ctl_out_bool(o, "gso_tcpv4", " gso4 %s", dp->gso4);
    ctl_out_bool(o, "gso_tcpv6", " gso6 %s", dp->gso6);
    ctl_out_bool(o, "csum_offload", " csum %s", dp->csum);
    ctl_out_bool(o, "antispoof", " antispoof %s", dp->antispoof);
    ctl_out_open_array(o, "ip");
    for (unsigned i = 0; dp->ip_filter && i < dp->ipf.n4 + dp->ipf.n6; i++) {
        char a[INET6_ADDRSTRLEN];
        if (i < dp->ipf.n4)
            (void)inet_ntop(AF_INET, &dp->ipf.v4[i], a, sizeof(a));
        else
            (void)inet_ntop(AF_INET6, dp->ipf.v6[i - dp->ipf.n4], a, sizeof(a));
        ctl_out_str(o, NULL, i ? ",%s" : " ip %s", a);
    }
    ctl_out_close_array(o);
    ctl_out_u64(o, "rate_bytes", " rate %llu",
                atomic_load_explicit(&dp->rate.bytes, memory_order_relaxed));
    ctl_out_u64(o, "rate_usec", "/%llu us", atomic_load_explicit(&dp->rate.usec, memory_order_relaxed));
    ctl_out_bool(o, "disconnecting", " disconnecting %s\n", dp_dead(dp));
    ctl_out_open_array(o, "rings");
    for (unsigned i = 0; i < dp->nq; i++) {
        const struct nb_queue *q = &dp->q[i];
        /* Racy reads for display only: the guest's indices are clamped. */
        RING_IDX tp = __atomic_load_n(&q->tx.sring->req_prod, __ATOMIC_RELAXED);
        RING_IDX tc = __atomic_load_n(&q->tx.req_cons, __ATOMIC_RELAXED);
        RING_IDX rp = __atomic_load_n(&q->rx.sring->req_prod, __ATOMIC_RELAXED);
        RING_IDX rc = __atomic_load_n(&q->rx.req_cons, __ATOMIC_RELAXED);
        ctl_out_open_object(o, NULL);
        ctl_out_u64(o, "queue", "    q%llu", i);
        ctl_out_u64(o, "tx_pending", " tx-pending %llu", XBR_MIN(tp - tc, RING_SIZE(&q->tx)));
        ctl_out_u64(o, "rx_posted", " rx-posted %llu\n", XBR_MIN(rp - rc, RING_SIZE(&q->rx)));
        ctl_out_close_object(o);
    }
    ctl_out_close_array(o);
    ctl_out_open_object(o, "netback_stats");
    ctl_out_u64(o, "from_guest", "    from-guest %llu", st.tx_frames);
    ctl_out_u64(o, "from_guest_gso", " gso %llu", st.tx_gso);
    ctl_out_u64(o, "from_guest_bad", " bad %llu", st.tx_drop_bad);
    ctl_out_u64(o, "from_guest_spoofed", " spoofed %llu", st.tx_drop_spoof);
    ctl_out_u64(o, "from_guest_ip_spoofed", " ip-spoofed %llu", st.tx_drop_ip_src);
    ctl_out_u64(o, "from_guest_arp_spoofed", " arp-spoofed %llu", st.tx_drop_arp);
    ctl_out_u64(o, "from_guest_server", " server-replies %llu", st.tx_drop_server);
    ctl_out_u64(o, "from_guest_bad_offload", " bad-offload %llu", st.tx_drop_csum);
    ctl_out_u64(o, "from_guest_rate_limited", " rate-limited %llu", st.tx_rate_limited);
    ctl_out_u64(o, "from_guest_copy_failed", " copy-failed %llu\n", st.tx_drop_copy);
    ctl_out_u64(o, "to_guest", "    to-guest %llu", st.rx_frames);
    ctl_out_u64(o, "to_guest_gso", " gso %llu", st.rx_gso);
    ctl_out_u64(o, "to_guest_direct", " direct %llu", st.rx_direct);
    ctl_out_u64(o, "to_guest_segmented", " segmented %llu", st.rx_segmented);
    ctl_out_u64(o, "to_guest_segments", " (%llu segments)", st.rx_segments);
    /* For want of buffers: queue full, or left in it too long. */
    ctl_out_u64(o, "to_guest_no_buffers", " no-buffers %llu",
                st.rx_dropped_full + st.rx_dropped_stalled);
    ctl_out_u64(o, "to_guest_gso_unsupported", " gso-unsupported %llu", st.rx_drop_gso);
    ctl_out_u64(o, "to_guest_too_big", " too-big %llu", st.rx_drop_big);
    ctl_out_u64(o, "to_guest_copy_failed", " copy-failed %llu\n", st.rx_drop_copy);
    uint64_t qn = 0, qb = 0;
    for (unsigned i = 0; i < dp->nq; i++) { /* racy reads, for display */
        qn += atomic_load_explicit(&dp->q[i].rxq_n, memory_order_relaxed);
        qb += __atomic_load_n(&dp->q[i].rxq_bytes, __ATOMIC_RELAXED);
    }
    ctl_out_u64(o, "rx_queued", "    rx-queue: queued %llu", st.rx_queued);
    ctl_out_u64(o, "rx_dropped_stalled", " dropped-stalled %llu", st.rx_dropped_stalled);
    ctl_out_u64(o, "rx_dropped_full", " dropped-full %llu", st.rx_dropped_full);
    ctl_out_u64(o, "rx_queue_frames", " now %llu", qn);
    ctl_out_u64(o, "rx_queue_bytes", " (%llu bytes)\n", qb);
    ctl_out_close_object(o);
    nb_ctrl_show(dp, o);
}

const struct port_class nb_port_class = {
    .type = "netback",
    .end_station = true,
    .open = nb_open,
    .close = nb_close,
    .rx_burst = nb_rx_burst,
    .rx_done = nb_rx_done,
    .rx_fill = nb_rx_fill,
    .tx_burst = nb_tx_burst,
    .tx_tail = true,
    .wait_fd = nb_wait_fd,
    .arm = nb_arm,
    .show = nb_show,
};
