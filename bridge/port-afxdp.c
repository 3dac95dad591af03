/* AF_XDP port: attaches an existing Linux interface through XDP sockets
 * (libxdp's xsk API and its default redirect program).
 *
 * Mode. The XDP program is attached in native (driver) mode where the
 * driver has it (veth, virtio_net, most 10G+ NICs) and in generic (skb) mode
 * otherwise; the socket binds zero-copy where the driver supports it and
 * copies otherwise. `xbrctl show` says which it got. A port that cannot get
 * an XDP socket at all is refused with the reason; AF_PACKET (the default
 * type) stays the way to attach such an interface.
 *
 * Queues. Queue q is an XDP socket bound to the device's receive queue q,
 * each with a UMEM of its own: half of its frames are lent to the kernel
 * through the fill ring for receiving, half are ours for transmitting.
 * A device with fewer receive queues than there are workers gets sockets
 * for the queues it has; workers beyond them receive nothing on it and
 * transmit on socket w % n under that socket's spinlock (never taken when
 * every worker has its own).
 *
 * RX is zero copy into the bridge: a frame stays in the UMEM until rx_done
 * gives its address back to the fill ring. TX copies each frame into a free
 * UMEM frame, and kicks the kernel once per burst (sendto, only when the
 * ring asks for a wake-up). Completed frames come back through the
 * completion ring.
 *
 * Offloads. XDP carries no checksum or segmentation metadata: received
 * frames are complete (a veth peer must not offload its checksums, as with
 * Open vSwitch's AF_XDP ports: `ethtool -K PEER tx off`), and frames to be
 * sent that still carry a partial checksum get it completed in software.
 * TCP super-frames (GSO) are cut into MSS-sized segments with full
 * checksums (gso/), as the kernel does for a device without TSO; one that is
 * not a sane TCP super-frame is dropped and counted. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "gso/gso.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE /* 4096: a page per frame */
#define N_FRAMES 4096u                          /* per queue: 16 MiB */
#define RX_FRAMES (N_FRAMES / 2)
#define RING_SIZE 2048u
#define TX_KICK 32u

struct afx_queue {
    struct xsk_socket *xsk;
    struct xsk_umem *umem;
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    uint8_t *area;
    /* TX frames not in flight: a stack of UMEM addresses. */
    uint64_t free_tx[N_FRAMES - RX_FRAMES];
    uint32_t n_free_tx;
    uint32_t rx_held;    /* descriptors peeked, not yet released */
    uint64_t held[XBR_BURST];
    uint32_t tx_pending; /* submitted, not yet kicked */
    pthread_spinlock_t tx_lock; /* when several workers share the socket */
    /* counters for `show` (written by the queue's users) */
    uint64_t tx_kicks, tx_no_frame, tx_gso_dropped, tx_gso_segmented, tx_csum_sw;
};

struct afx_port {
    struct xbr_netdev nd;
    int ifindex;
    bool native, zerocopy;
    unsigned n_xsk;    /* sockets the device's queues allowed */
    unsigned n_queues; /* = workers */
    struct afx_queue q[];
};

/* The one's-complement checksum that a partial-checksum frame still lacks:
 * the sum from csum_start to the end, folded, stored at csum_offset (the
 * pseudo-header's sum is already there, as virtio-net specifies). */
static bool complete_csum(uint8_t *frame, uint32_t len, const struct virtio_net_hdr *v)
{
    uint32_t start = v->csum_start, off = v->csum_offset;
    if (start >= len || off + 2u > len - start)
        return false;
    uint16_t c = gso_csum(0, frame + start, len - start);
    /* UDP (checksum field at offset 6) sends a computed 0 as 0xffff: 0
     * means "no checksum" there (RFC 768). */
    if (c == 0 && off == 6)
        c = 0xffff;
    frame[start + off] = (uint8_t)(c >> 8);
    frame[start + off + 1] = (uint8_t)c;
    return true;
}

static void afx_close(struct port *p);

/* libxdp's messages go to our log: its warnings (e.g. no bpffs, so no
 * multi-program dispatcher) as debug lines, since it falls back by itself. */
__attribute__((format(printf, 2, 0)))
static int afx_libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n')
        line[n - 1] = '\0';
    xbr_log(level == LIBXDP_WARN ? XBR_LOG_INFO : XBR_LOG_DEBUG, "libxdp: %s", line);
    return 0;
}

static int queue_open(struct port *p, struct afx_port *ap, unsigned qi, __u32 xdp_flags,
                      __u16 bind_flags)
{
    struct afx_queue *q = &ap->q[qi];
    size_t size = (size_t)N_FRAMES * FRAME_SIZE;
    q->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (q->area == MAP_FAILED) {
        q->area = NULL;
        return -errno;
    }
    struct xsk_umem_config ucfg = {
        .fill_size = RING_SIZE,
        .comp_size = RING_SIZE,
        .frame_size = FRAME_SIZE,
        .frame_headroom = 0,
    };
    int r = xsk_umem__create(&q->umem, q->area, size, &q->fill, &q->comp, &ucfg);
    if (r)
        return r;
    struct xsk_socket_config scfg = {
        .rx_size = RING_SIZE,
        .tx_size = RING_SIZE,
        .xdp_flags = xdp_flags,
        .bind_flags = bind_flags | XDP_USE_NEED_WAKEUP,
    };
    r = xsk_socket__create(&q->xsk, p->name, qi, q->umem, &q->rx, &q->tx, &scfg);
    if (r)
        return r;
    /* Lend the receive half to the kernel. */
    uint32_t idx;
    if (xsk_ring_prod__reserve(&q->fill, RX_FRAMES, &idx) != RX_FRAMES)
        return -ENOMEM;
    for (uint32_t i = 0; i < RX_FRAMES; i++)
        *xsk_ring_prod__fill_addr(&q->fill, idx + i) = (uint64_t)i * FRAME_SIZE;
    xsk_ring_prod__submit(&q->fill, RX_FRAMES);
    q->n_free_tx = 0;
    for (uint32_t i = RX_FRAMES; i < N_FRAMES; i++)
        q->free_tx[q->n_free_tx++] = (uint64_t)i * FRAME_SIZE;
    return 0;
}

static void queue_close(struct afx_queue *q)
{
    if (q->xsk)
        xsk_socket__delete(q->xsk);
    if (q->umem)
        (void)xsk_umem__delete(q->umem);
    if (q->area)
        (void)munmap(q->area, (size_t)N_FRAMES * FRAME_SIZE);
    q->xsk = NULL;
    q->umem = NULL;
    q->area = NULL;
}

static int afx_refresh(struct port *p)
{
    struct afx_port *ap = p->priv;
    return xbr_netdev_refresh(p, &ap->nd);
}

/* Opens every queue's socket in one mode; the caller tries the next mode
 * on failure. Returns how many sockets it got (>= 1) or -errno. */
static int open_mode(struct port *p, struct afx_port *ap, __u32 xdp_flags, __u16 bind_flags)
{
    int r = 0;
    unsigned n = 0;
    for (; n < ap->n_queues; n++) {
        r = queue_open(p, ap, n, xdp_flags, bind_flags);
        if (r < 0)
            break;
    }
    if (n == 0) {
        queue_close(&ap->q[0]);
        return r < 0 ? r : -EINVAL;
    }
    if (n < ap->n_queues)
        queue_close(&ap->q[n]); /* the device has no receive queue n */
    return (int)n;
}

static int afx_open(struct port *p, const struct port_open_args *args, char *err, size_t errlen)
{
    (void)libxdp_set_print(afx_libxdp_print);
    struct xbr_netdev nd;
    int r = xbr_netdev_open(p, args, &nd, err, errlen);
    if (r < 0)
        return r;
    struct afx_port *ap = xbr_xzalloc(sizeof(*ap) + args->n_queues * sizeof(ap->q[0]));
    ap->nd = nd;
    ap->ifindex = nd.ifindex;
    ap->n_queues = args->n_queues;
    p->priv = ap;
    /* Some drivers attach XDP in native mode only to a link that is up. */
    xbr_netdev_set_up(p, &ap->nd, true);
    for (unsigned i = 0; i < ap->n_queues; i++)
        (void)pthread_spin_init(&ap->q[i].tx_lock, PTHREAD_PROCESS_PRIVATE);

    /* Best first: native zero-copy, native copy, generic copy. */
    static const struct {
        __u32 xdp;
        __u16 bind;
        bool native, zc;
    } modes[] = {
        {XDP_FLAGS_DRV_MODE, XDP_ZEROCOPY, true, true},
        {XDP_FLAGS_DRV_MODE, XDP_COPY, true, false},
        {XDP_FLAGS_SKB_MODE, XDP_COPY, false, false},
    };
    r = -EOPNOTSUPP;
    for (size_t m = 0; m < XBR_ARRAY_SIZE(modes); m++) {
        r = open_mode(p, ap, modes[m].xdp, modes[m].bind);
        if (r > 0) {
            ap->n_xsk = (unsigned)r;
            ap->native = modes[m].native;
            ap->zerocopy = modes[m].zc;
            break;
        }
    }
    if (r <= 0) {
        snprintf(err, errlen, "%s: no XDP socket in any mode: %s (attach it as an afpacket port)",
                 args->name, strerror(-r));
        afx_close(p);
        return r;
    }
    (void)afx_refresh(p);
    char drv[32];
    xbr_netdev_driver(p->name, drv, sizeof(drv));
    if (!strcmp(drv, "veth"))
        xbr_warn("%s: AF_XDP on a veth: its peer must not offload checksums "
                 "(ethtool -K PEER tx off), or its TCP and UDP arrive with partial checksums "
                 "that nobody completes",
                 p->name);
    xbr_info("%s: AF_XDP %s %s, %u of %u queues", p->name, ap->native ? "native" : "generic",
             ap->zerocopy ? "zero-copy" : "copy", ap->n_xsk, ap->n_queues);
    return 0;
}

static void afx_close(struct port *p)
{
    struct afx_port *ap = p->priv;
    if (!ap)
        return;
    for (unsigned i = 0; i < ap->n_queues; i++) {
        queue_close(&ap->q[i]);
        (void)pthread_spin_destroy(&ap->q[i].tx_lock);
    }
    xbr_netdev_set_up(p, &ap->nd, false);
    free(ap);
    p->priv = NULL;
}

static unsigned afx_rx_burst(struct port *p, unsigned qi, struct pkt *pkts, unsigned n)
{
    struct afx_port *ap = p->priv;
    if (qi >= ap->n_xsk)
        return 0;
    struct afx_queue *q = &ap->q[qi];
    uint32_t idx;
    unsigned got = xsk_ring_cons__peek(&q->rx, n, &idx);
    for (unsigned i = 0; i < got; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + i);
        /* The descriptor is the kernel's, but a bad one must still not send
         * us outside the UMEM. */
        uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
        if (XBR_UNLIKELY(addr + d->len > (uint64_t)N_FRAMES * FRAME_SIZE))
            addr = 0, pkts[i].len = 0; /* a runt: the worker drops and counts it */
        else
            pkts[i].len = d->len;
        pkts[i].data = q->area + addr;
        q->held[i] = xsk_umem__extract_addr(d->addr);
    }
    q->rx_held = got;
    if (got)
        xsk_ring_cons__release(&q->rx, got);
    return got;
}

static void afx_rx_done(struct port *p, unsigned qi)
{
    struct afx_port *ap = p->priv;
    struct afx_queue *q = &ap->q[qi];
    if (!q->rx_held)
        return;
    uint32_t idx;
    /* The fill ring has room for every receive frame, so this cannot fail. */
    if (xsk_ring_prod__reserve(&q->fill, q->rx_held, &idx) == q->rx_held) {
        for (uint32_t i = 0; i < q->rx_held; i++)
            *xsk_ring_prod__fill_addr(&q->fill, idx + i) = q->held[i];
        xsk_ring_prod__submit(&q->fill, q->rx_held);
    }
    q->rx_held = 0;
    if (xsk_ring_prod__needs_wakeup(&q->fill))
        (void)recvfrom(xsk_socket__fd(q->xsk), NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

static void tx_reclaim(struct afx_queue *q)
{
    uint32_t idx;
    unsigned done = xsk_ring_cons__peek(&q->comp, RING_SIZE, &idx);
    for (unsigned i = 0; i < done; i++)
        q->free_tx[q->n_free_tx++] = *xsk_ring_cons__comp_addr(&q->comp, idx + i);
    if (done)
        xsk_ring_cons__release(&q->comp, done);
}

static void tx_kick(struct afx_queue *q)
{
    if (!q->tx_pending)
        return;
    q->tx_pending = 0;
    if (xsk_ring_prod__needs_wakeup(&q->tx)) {
        (void)sendto(xsk_socket__fd(q->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0);
        q->tx_kicks++;
    }
}

/* A TCP super-frame as its segments, all or none (a partial train would be
 * a TCP loss). Returns 1 when queued, 0 when the ring or the free frames
 * are short (the caller stops there), -1 when the frame is not a TCP
 * super-frame gso/ can cut into frames of FRAME_SIZE: dropped and counted
 * here, but the burst goes on (it is still "sent" for the worker's
 * counters, which have no per-frame verdict). */
static int tx_segments(struct afx_queue *q, const struct pkt *pkt)
{
    struct gso_tcp g;
    if (gso_tcp_init(&g, pkt->data, pkt->len, pkt->vnet.gso_type, pkt->vnet.gso_size) < 0 ||
        gso_tcp_next_len(&g) > FRAME_SIZE) {
        q->tx_gso_dropped++;
        return -1;
    }
    unsigned n = gso_tcp_count(&g);
    uint32_t idx;
    if (n > q->n_free_tx || xsk_ring_prod__reserve(&q->tx, n, &idx) != n) {
        q->tx_no_frame++;
        tx_kick(q);
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t addr = q->free_tx[--q->n_free_tx];
        struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx + i);
        d->addr = addr;
        d->len = gso_tcp_next(&g, q->area + addr);
        d->options = 0;
    }
    xsk_ring_prod__submit(&q->tx, n);
    q->tx_gso_segmented++;
    q->tx_pending += n;
    if (q->tx_pending >= TX_KICK)
        tx_kick(q);
    return 1;
}

static unsigned afx_tx_burst(struct port *p, unsigned w, struct pkt *const *pkts, unsigned n)
{
    struct afx_port *ap = p->priv;
    struct afx_queue *q = &ap->q[w % ap->n_xsk];
    bool shared = ap->n_xsk < ap->n_queues;
    unsigned sent = 0;

    if (shared)
        pthread_spin_lock(&q->tx_lock);
    tx_reclaim(q);
    for (; sent < n; sent++) {
        const struct pkt *pkt = pkts[sent];
        if (XBR_UNLIKELY(pkt->vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE)) {
            if (tx_segments(q, pkt) == 0)
                break; /* no room for all its segments: the rest waits or drops */
            continue;
        }
        if (XBR_UNLIKELY(pkt->len > FRAME_SIZE))
            break;
        uint32_t idx;
        if (XBR_UNLIKELY(!q->n_free_tx || xsk_ring_prod__reserve(&q->tx, 1, &idx) != 1)) {
            q->tx_no_frame++;
            tx_kick(q);
            break;
        }
        uint64_t addr = q->free_tx[--q->n_free_tx];
        uint8_t *dst = q->area + addr;
        memcpy(dst, pkt->data, pkt->len);
        if (XBR_UNLIKELY(pkt->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
            (void)complete_csum(dst, pkt->len, &pkt->vnet);
            q->tx_csum_sw++;
        }
        struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx);
        d->addr = addr;
        d->len = pkt->len;
        d->options = 0;
        xsk_ring_prod__submit(&q->tx, 1);
        if (++q->tx_pending >= TX_KICK)
            tx_kick(q);
    }
    if (shared) {
        tx_kick(q); /* deferred kicks need the queue to be ours alone */
        pthread_spin_unlock(&q->tx_lock);
    }
    return sent;
}

static void afx_tx_flush(struct port *p, unsigned w)
{
    struct afx_port *ap = p->priv;
    if (ap->n_xsk < ap->n_queues)
        return; /* shared sockets kick in tx_burst */
    tx_kick(&ap->q[w]);
}

static int afx_wait_fd(struct port *p, unsigned qi)
{
    struct afx_port *ap = p->priv;
    return qi < ap->n_xsk ? xsk_socket__fd(ap->q[qi].xsk) : -1;
}

static void afx_show(struct port *p, struct ctl_out *o)
{
    struct afx_port *ap = p->priv;
    uint64_t kicks = 0, noframe = 0, gso = 0, segmented = 0, csum = 0;
    for (unsigned i = 0; i < ap->n_xsk; i++) {
        kicks += ap->q[i].tx_kicks;
        noframe += ap->q[i].tx_no_frame;
        gso += ap->q[i].tx_gso_dropped;
        segmented += ap->q[i].tx_gso_segmented;
        csum += ap->q[i].tx_csum_sw;
    }
    ctl_out_i64(o, "ifindex", NULL, ap->ifindex);
    ctl_out_str(o, "xdp_mode", "    xdp %s", ap->native ? "native" : "generic");
    ctl_out_str(o, "xdp_copy", " %s", ap->zerocopy ? "zero-copy" : "copy");
    ctl_out_u64(o, "queues", ", %llu", ap->n_xsk);
    ctl_out_u64(o, "workers", " of %llu queues", ap->n_queues);
    ctl_out_u64(o, "tx_kicks", "; tx %llu kicks", kicks);
    ctl_out_u64(o, "tx_no_frame", ", no free frame %llu", noframe);
    ctl_out_u64(o, "tx_csum_sw", ", software checksums %llu", csum);
    ctl_out_u64(o, "tx_gso_segmented", ", GSO segmented %llu", segmented);
    ctl_out_u64(o, "tx_gso_dropped", ", GSO dropped %llu\n", gso);
}

const struct port_class port_afxdp_class = {
    .type = "afxdp",
    .end_station = false,
    .open = afx_open,
    .close = afx_close,
    .rx_burst = afx_rx_burst,
    .rx_done = afx_rx_done,
    .tx_burst = afx_tx_burst,
    .tx_flush = afx_tx_flush,
    .wait_fd = afx_wait_fd,
    .refresh = afx_refresh,
    .show = afx_show,
};
