/* AF_PACKET port: attaches an existing Linux interface (peth0, a veth).
 *
 * RX: a TPACKET_V2 ring per queue, read in place (no copy into the bridge).
 * Every frame slot has its own status word, so a frame is the worker's the
 * moment the kernel has written it: no block to fill, no retire timer to
 * wait for. The slots a burst used go back to the kernel in rx_done, after
 * the burst has been forwarded. A frame too big for a slot (a GSO super-
 * frame, 64 KiB) is flagged TP_STATUS_COPY and queued whole on the socket
 * (PACKET_COPY_THRESH); it is read with recvmsg at its place in the ring
 * order, so big frames are received whole and in order.
 * TX: PACKET_TX_RING on a socket of its own that receives nothing and sits
 * in no epoll set (no write-space wake-ups on the datapath). tx_burst fills
 * slots in place and the kernel is kicked with one send() per XBR_TX_KICK
 * frames, or when the worker flushes (tx_flush): one syscall for many
 * bursts. Each slot carries a virtio-net header (PACKET_VNET_HDR): it moves
 * offloads (GSO, partial checksums) and, through its hdr_len, tells the
 * kernel how much of the frame to copy into the skb's linear part. We set
 * it to the whole frame for frames up to LINEAR_MAX: the kernel otherwise
 * hangs the rest of the slot off the skb as a page fragment, which a veth
 * must then copy into a freshly allocated page (skb_copy_ubufs: a page
 * allocation per frame, measured at ~8% of the switch core at 60 B). Bigger
 * frames (GSO super-frames) keep the real header length and go out from the
 * ring's pages. Frames longer than a small slot use a second ring with
 * 64 KiB slots, opened on first use; switching rings kicks the other one
 * first, so frames leave in the order they came.
 * The small-slot ring uses PACKET_QDISC_BYPASS (the bridge is the queueing
 * discipline). GSO frames always take the big ring, which bypasses the qdisc
 * only where the NIC segments TCP/IPv4 and TCP/IPv6 itself: the bypass path
 * (__dev_direct_xmit) drops a frame that needs software segmentation.
 * With several workers the RX sockets form a PACKET_FANOUT_HASH group, so
 * each flow stays on one worker and frames of a flow stay in order.
 * Promiscuous mode is a PACKET_MR_PROMISC membership: the kernel reference
 * counts it and drops it when the socket closes, even if xbrd crashes. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"
#ifdef XBR_HAVE_FASTPATH
#include "fastpath/fastpath.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define VNET_LEN sizeof(struct virtio_net_hdr)
/* Where a TPACKET_V2 RX frame's Ethernet header may start at the earliest:
 * the kernel puts the header, sockaddr_ll, alignment and the virtio-net
 * header before it (macoff, 76 bytes for Ethernet with PACKET_VNET_HDR). */
#define RX_HEADROOM 96u
/* RX ring memory per queue, whatever the slot size. At 1 Mpps 4 MiB of
 * 2 KiB slots hold 2 ms of frames while the worker is busy elsewhere. */
#define RX_RING_BYTES (4u << 20)
#define RX_BLOCK_SIZE (64u * 1024)
/* TX: frame data starts this far into a TPACKET_V2 slot (the kernel's
 * tp_hdrlen minus sockaddr_ll, when PACKET_TX_HAS_OFF is not used). */
#define TX_DATA_OFF (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))
#define TX_SMALL_SLOTS 1024u
/* Frames up to this long are copied whole into the skb's linear part. */
#define LINEAR_MAX 2048u
/* The big ring: slots for a 64 KiB GSO frame with its headers (17 pages,
 * one slot per block), few of them: super-frames are few. */
#define TX_BIG_SLOT (17u * 4096)
#define TX_BIG_SLOTS 64u
/* A fanout group has a protocol hook of its own, which PACKET_IGNORE_OUTGOING
 * on its member sockets does not reach: without this flag (Linux 6.10, not
 * yet in every uapi header) the group receives what the port transmits. */
#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000
#endif
/* Kick the kernel at the latest after this many frames on one ring. */
#define XBR_TX_KICK 32u

/* A TPACKET_V2 ring: nr slots of size bytes, slot i at map + i * size. */
struct afp_ring {
    uint8_t *map;
    size_t map_len;
    uint32_t size, nr;
};

struct afp_tx {
    int fd;
    struct afp_ring ring;
    uint32_t head;    /* next slot to fill */
    uint32_t pending; /* filled, not yet kicked */
};

struct afp_queue {
    int fd;                 /* RX socket (also sends what the TX rings cannot) */
    struct afp_ring rx;
    uint32_t rx_cur;        /* next slot to look at */
    uint32_t rx_held;       /* slots before rx_cur handed out, not yet returned */
    struct afp_tx tx[2];    /* [0] small slots, [1] 64 KiB slots (opened lazily) */
    struct afp_tx *tx_last; /* ring that holds the newest unkicked frames */
    bool tx_big_failed;     /* the big ring could not be opened */
    /* per-queue counters for `show` (written by the queue's worker) */
    uint64_t rx_copied, tx_kicks, tx_ring_full;
};

struct afp_port {
    struct xbr_netdev nd;
    int ifindex;
    unsigned fanout_type; /* the fanout group's type and flags */
    bool segments_tcp;    /* the NIC segments TCP itself: the big ring may bypass the qdisc */
    unsigned n_queues;
    struct afp_queue q[];
};

static inline void *slot_at(const struct afp_ring *r, uint32_t i)
{
    return r->map + (size_t)i * r->size;
}

static uint32_t pow2_at_least(uint32_t v, uint32_t min)
{
    uint32_t s = min;
    while (s < v)
        s <<= 1;
    return s;
}

/* Sets up a TPACKET_V2 ring (PACKET_RX_RING or PACKET_TX_RING) on fd and
 * maps it. Slots never cross a block; blocks are whole pages. */
static int ring_setup(int fd, int which, struct afp_ring *r, uint32_t slot, uint32_t nr,
                      uint32_t block)
{
    struct tpacket_req req = {
        .tp_block_size = block,
        .tp_block_nr = slot * nr / block,
        .tp_frame_size = slot,
        .tp_frame_nr = nr,
    };
    if (setsockopt(fd, SOL_PACKET, which, &req, sizeof(req)) < 0)
        return -errno;
    r->map_len = (size_t)block * req.tp_block_nr;
    r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE,
                  fd, 0);
    if (r->map == MAP_FAILED) /* MAP_LOCKED can exceed RLIMIT_MEMLOCK; retry without */
        r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (r->map == MAP_FAILED) {
        r->map = NULL;
        return -errno;
    }
    r->size = slot;
    r->nr = nr;
    return 0;
}

static void ring_unmap(struct afp_ring *r)
{
    if (r->map)
        (void)munmap(r->map, r->map_len);
    r->map = NULL;
}

/* A send-only socket with a TX ring on the interface: bound with protocol
 * 0, so it receives nothing and wakes nobody. */
static int tx_open(struct afp_tx *t, int ifindex, bool bypass, uint32_t slot, uint32_t nr,
                   const char **what)
{
    int one = 1, v2 = TPACKET_V2;
    t->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    *what = "socket(AF_PACKET) for TX";
    if (t->fd < 0)
        return -errno;
    *what = "PACKET_VERSION (TX)";
    if (setsockopt(t->fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof(v2)) < 0)
        return -errno;
    *what = "PACKET_VNET_HDR (TX)";
    if (setsockopt(t->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
        return -errno;
    *what = "PACKET_QDISC_BYPASS (TX)";
    if (bypass && setsockopt(t->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
        return -errno;
    /* A frame the kernel refuses (bad offload metadata) is skipped, not a
     * ring stalled behind it. */
    *what = "PACKET_LOSS (TX)";
    if (setsockopt(t->fd, SOL_PACKET, PACKET_LOSS, &one, sizeof(one)) < 0)
        return -errno;
    int sndbuf = 8 << 20;
    (void)setsockopt(t->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
    *what = "PACKET_TX_RING";
    int r = ring_setup(t->fd, PACKET_TX_RING, &t->ring, slot, nr, slot > 4096 ? slot : 4096 * 4);
    if (r < 0)
        return r;
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = ifindex};
    *what = "bind (TX)";
    if (bind(t->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        return -errno;
    t->head = t->pending = 0;
    return 0;
}

static void tx_close(struct afp_tx *t)
{
    ring_unmap(&t->ring);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* Slot size for frames of an MTU (L3) with up to two VLAN tags. */
static uint32_t slot_for_mtu(uint32_t headroom, uint32_t mtu)
{
    return pow2_at_least(headroom + 14 + 8 + mtu, 2048);
}

static int queue_open(struct port *p, struct afp_port *ap, unsigned qi, int *fanout_id,
                      char *err, size_t errlen)
{
    struct afp_queue *q = &ap->q[qi];
    int one = 1, v2 = TPACKET_V2;
    const char *what;
    int r;

    /* Protocol 0 until bound: nothing arrives before the ring exists. */
    q->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    what = "socket(AF_PACKET)";
    if (q->fd < 0)
        goto fail_errno;
    what = "PACKET_VERSION";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof(v2)) < 0)
        goto fail_errno;
    what = "PACKET_VNET_HDR";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
        goto fail_errno;
    /* Frames that do not fit a slot are queued whole for recvmsg. */
    what = "PACKET_COPY_THRESH";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof(one)) < 0)
        goto fail_errno;
    /* Our own transmissions must not come back to us as received frames. */
    what = "PACKET_IGNORE_OUTGOING";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
        goto fail_errno;
    /* Room on the socket queue for a few 64 KiB frames taking the copy path. */
    int rcvbuf = 4 << 20;
    (void)setsockopt(q->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));

    uint32_t slot = slot_for_mtu(RX_HEADROOM, p->mtu ? p->mtu : 1500);
    if (slot > RX_BLOCK_SIZE)
        slot = RX_BLOCK_SIZE; /* bigger frames take the copy path */
    what = "PACKET_RX_RING";
    r = ring_setup(q->fd, PACKET_RX_RING, &q->rx, slot, RX_RING_BYTES / slot, RX_BLOCK_SIZE);
    if (r < 0)
        goto fail;

    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = ap->ifindex,
    };
    what = "bind";
    if (bind(q->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        goto fail_errno;

    if (qi == 0) {
        struct packet_mreq mr = {.mr_ifindex = ap->ifindex, .mr_type = PACKET_MR_PROMISC};
        what = "promiscuous mode";
        if (setsockopt(q->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
            goto fail_errno;
    }
    if (ap->n_queues > 1) {
        int arg;
        what = "PACKET_FANOUT";
        if (qi == 0) {
            /* Older kernels refuse the flag: then rx_burst skips outgoing
             * frames itself (after the kernel copied them, a cost only). */
            unsigned type = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
            arg = (int)((type | PACKET_FANOUT_FLAG_UNIQUEID) << 16);
            if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0) {
                type = PACKET_FANOUT_HASH;
                arg = (int)((type | PACKET_FANOUT_FLAG_UNIQUEID) << 16);
                if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0)
                    goto fail_errno;
            }
            socklen_t l = sizeof(arg);
            if (getsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, &l) < 0)
                goto fail_errno;
            *fanout_id = arg & 0xffff;
            ap->fanout_type = type;
        } else {
            arg = (int)((unsigned)*fanout_id | ap->fanout_type << 16);
            if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0)
                goto fail_errno;
        }
    }
    r = tx_open(&q->tx[0], ap->ifindex, true,
                slot_for_mtu(TX_DATA_OFF + VNET_LEN, p->mtu ? p->mtu : 1500), TX_SMALL_SLOTS,
                &what);
    if (r < 0)
        goto fail;
    q->tx_last = &q->tx[0];
    return 0;
fail_errno:
    r = -errno;
fail:
    snprintf(err, errlen, "%s: %s failed: %s", p->name, what, strerror(-r));
    return r;
}

static void afp_close(struct port *p);

static int afp_refresh(struct port *p)
{
    struct afp_port *ap = p->priv;
    return xbr_netdev_refresh(p, &ap->nd);
}

static int afp_open(struct port *p, const struct port_open_args *args, char *err, size_t errlen)
{
    struct xbr_netdev nd;
    int r = xbr_netdev_open(p, args, &nd, err, errlen); /* the MTU sizes the rings' slots */
    if (r < 0)
        return r;
    struct afp_port *ap = xbr_xzalloc(sizeof(*ap) + args->n_queues * sizeof(ap->q[0]));
    ap->nd = nd;
    ap->ifindex = nd.ifindex;
    ap->n_queues = args->n_queues;
    ap->segments_tcp = xbr_netdev_segments_tcp(p->name);
    for (unsigned i = 0; i < ap->n_queues; i++)
        ap->q[i].fd = ap->q[i].tx[0].fd = ap->q[i].tx[1].fd = -1;
    p->priv = ap;

    int fanout_id = 0;
    for (unsigned i = 0; i < ap->n_queues; i++) {
        r = queue_open(p, ap, i, &fanout_id, err, errlen);
        if (r < 0) {
            afp_close(p);
            return r;
        }
    }
    xbr_netdev_set_up(p, &ap->nd, true);
    (void)afp_refresh(p);
    xbr_netdev_warn_rps(p);
    return 0;
}

static void afp_close(struct port *p)
{
    struct afp_port *ap = p->priv;
    if (!ap)
        return;
    for (unsigned i = 0; i < ap->n_queues; i++) {
        struct afp_queue *q = &ap->q[i];
        ring_unmap(&q->rx);
        if (q->fd >= 0)
            close(q->fd); /* drops the promiscuous membership too */
        tx_close(&q->tx[0]);
        tx_close(&q->tx[1]);
    }
    xbr_netdev_set_up(p, &ap->nd, false);
    free(ap);
    p->priv = NULL;
}

/* Puts back a VLAN tag the kernel took out of the frame (hardware or veth
 * offload, reported in the slot header) so that tagged traffic crosses the
 * bridge unchanged. The frame is rebuilt in pkt->buf. */
static void reinsert_vlan(struct pkt *pkt, const struct tpacket2_hdr *h)
{
    uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->tp_vlan_tpid : 0x8100;
    uint16_t tag[2] = {htons(tpid), htons(h->tp_vlan_tci)};
    memmove(pkt->buf + 16, pkt->data + 12, pkt->len - 12);
    if (pkt->data != pkt->buf)
        memcpy(pkt->buf, pkt->data, 12);
    memcpy(pkt->buf + 12, tag, 4);
    pkt->data = pkt->buf;
    pkt->len += 4;
    if (pkt->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
        pkt->vnet.csum_start = (uint16_t)(pkt->vnet.csum_start + 4);
    if (pkt->vnet.hdr_len)
        pkt->vnet.hdr_len = (uint16_t)(pkt->vnet.hdr_len + 4);
}

/* Reads the whole frame that a TP_STATUS_COPY slot stands for from the
 * socket queue into pkt->buf. Returns false if it cannot be had whole. */
static bool rx_copied_frame(struct afp_queue *q, struct pkt *pkt)
{
    struct iovec iov[2] = {
        {.iov_base = &pkt->vnet, .iov_len = VNET_LEN},
        {.iov_base = pkt->buf, .iov_len = XBR_PKT_BUF_SIZE - 4}, /* room for a VLAN tag */
    };
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t r = recvmsg(q->fd, &mh, MSG_DONTWAIT);
    if (r < (ssize_t)VNET_LEN + 14 || (mh.msg_flags & MSG_TRUNC))
        return false;
    pkt->data = pkt->buf;
    pkt->len = (uint32_t)(r - (ssize_t)VNET_LEN);
    q->rx_copied++;
    return true;
}

static unsigned afp_rx_burst(struct port *p, unsigned qi, struct pkt *pkts, unsigned n)
{
    struct afp_port *ap = p->priv;
    struct afp_queue *q = &ap->q[qi];
    unsigned got = 0;

    /* Never hold the whole ring: the kernel must always have slots left. */
    while (got < n && q->rx_held < q->rx.nr - 1) {
        struct tpacket2_hdr *h = slot_at(&q->rx, q->rx_cur);
        uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
        if (!(status & TP_STATUS_USER))
            break;
        q->rx_cur = q->rx_cur + 1 == q->rx.nr ? 0 : q->rx_cur + 1;
        q->rx_held++;
        /* What this port sent (a fanout group without the ignore flag, see
         * above) is not something it received. */
        const struct sockaddr_ll *sll =
            (const void *)((const uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));
        if (XBR_UNLIKELY(sll->sll_pkttype == PACKET_OUTGOING))
            continue;
        struct pkt *pkt = &pkts[got];
        /* The header is ours now, but a hostile or buggy kernel value must
         * still not send us outside the slot. */
        if (XBR_UNLIKELY(status & TP_STATUS_COPY)) {
            if (!rx_copied_frame(q, pkt)) {
                p->stats[qi].rx_drop_port++;
                continue;
            }
        } else {
            uint32_t mac = h->tp_mac, snap = h->tp_snaplen;
#ifdef XBR_HAVE_FASTPATH
            /* The fast path forwarded this one and tells us its source. */
            if (XBR_UNLIKELY(snap == FP_SNAP_NOTIFY && h->tp_len > snap && mac <= q->rx.size &&
                             snap <= q->rx.size - mac)) {
                pkt->data = (uint8_t *)h + mac;
                pkt->len = snap;
                pkt->flags = XBR_PKT_LEARN_ONLY;
                got++;
                continue;
            }
#endif
            if (XBR_UNLIKELY(snap < h->tp_len || mac < VNET_LEN || mac > q->rx.size ||
                             snap > q->rx.size - mac)) {
                p->stats[qi].rx_drop_port++; /* truncated: never forward half a frame */
                continue;
            }
            uint8_t *data = (uint8_t *)h + mac;
            memcpy(&pkt->vnet, data - VNET_LEN, VNET_LEN);
            pkt->data = data;
            pkt->len = snap;
        }
        if (XBR_UNLIKELY((status & TP_STATUS_VLAN_VALID) && pkt->len >= 12))
            reinsert_vlan(pkt, h);
        got++;
    }
    return got;
}

static void afp_rx_done(struct port *p, unsigned qi)
{
    struct afp_port *ap = p->priv;
    struct afp_queue *q = &ap->q[qi];
    uint32_t i = (q->rx_cur + q->rx.nr - q->rx_held) % q->rx.nr;
    for (; q->rx_held; q->rx_held--, i = i + 1 == q->rx.nr ? 0 : i + 1) {
        struct tpacket2_hdr *h = slot_at(&q->rx, i);
        __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    }
}

/* Hands the filled slots of a TX ring to the kernel: one syscall, which
 * sends every slot marked SEND_REQUEST. */
static void tx_kick(struct afp_queue *q, struct afp_tx *t)
{
    if (!t->pending)
        return;
    (void)send(t->fd, NULL, 0, MSG_DONTWAIT);
    t->pending = 0;
    q->tx_kicks++;
}

/* The ring a frame goes out on: the small-slot one unless the frame does
 * not fit there. NULL if the big ring cannot be had. */
static struct afp_tx *tx_ring_for(struct port *p, struct afp_port *ap, struct afp_queue *q,
                                  const struct pkt *pkt)
{
    if (XBR_LIKELY(pkt->len + VNET_LEN <= q->tx[0].ring.size - TX_DATA_OFF &&
                   pkt->vnet.gso_type == VIRTIO_NET_HDR_GSO_NONE))
        return &q->tx[0];
    if (XBR_UNLIKELY(!q->tx[1].ring.map)) {
        /* First big frame on this queue: open the ring now, on the worker
         * (a few hundred microseconds, once). */
        const char *what;
        if (q->tx_big_failed)
            return NULL;
        int r = tx_open(&q->tx[1], ap->ifindex, ap->segments_tcp, TX_BIG_SLOT, TX_BIG_SLOTS,
                        &what);
        if (r < 0) {
            xbr_warn("%s: %s failed: %s; frames longer than %u bytes are dropped", p->name, what,
                     strerror(-r), (unsigned)(q->tx[0].ring.size - TX_DATA_OFF - VNET_LEN));
            tx_close(&q->tx[1]);
            q->tx_big_failed = true;
            return NULL;
        }
    }
    if (pkt->len + VNET_LEN > TX_BIG_SLOT - TX_DATA_OFF)
        return NULL;
    return &q->tx[1];
}

/* The virtio-net header a frame goes out with: the frame's own offloads,
 * and an hdr_len that makes the kernel copy small frames whole (see the top
 * of this file). hdr_len must also cover the checksum field of a partial
 * checksum; senders that leave it 0 on GSO frames get the transport header
 * start plus a maximal TCP header, as the worker's MTU check assumes. */
static void tx_vnet_hdr(struct virtio_net_hdr *h, const struct pkt *pkt)
{
    *h = pkt->vnet;
    if (pkt->len <= LINEAR_MAX) {
        h->hdr_len = (uint16_t)pkt->len;
    } else if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        uint32_t need = (uint32_t)h->csum_start + h->csum_offset + 2;
        if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE && h->hdr_len < need)
            need = XBR_MIN((uint32_t)h->csum_start + 60, pkt->len);
        if (h->hdr_len < need)
            h->hdr_len = (uint16_t)need;
    }
}

static unsigned afp_tx_burst(struct port *p, unsigned qi, struct pkt *const *pkts, unsigned n)
{
    struct afp_port *ap = p->priv;
    struct afp_queue *q = &ap->q[qi];
    unsigned sent = 0;

    for (; sent < n; sent++) {
        const struct pkt *pkt = pkts[sent];
        struct afp_tx *t = tx_ring_for(p, ap, q, pkt);
        if (XBR_UNLIKELY(!t))
            break;
        if (XBR_UNLIKELY(t != q->tx_last)) {
            tx_kick(q, q->tx_last); /* keep the order across the two rings */
            q->tx_last = t;
        }
        struct tpacket2_hdr *h = slot_at(&t->ring, t->head);
        if (XBR_UNLIKELY(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) !=
                         TP_STATUS_AVAILABLE)) {
            /* Full: the kernel still holds every slot. Kicking what is
             * pending is all we can do; this frame and the rest drop. */
            tx_kick(q, t);
            q->tx_ring_full++;
            break;
        }
        uint8_t *d = (uint8_t *)h + TX_DATA_OFF;
        tx_vnet_hdr((struct virtio_net_hdr *)(void *)d, pkt);
        memcpy(d + VNET_LEN, pkt->data, pkt->len);
        h->tp_len = pkt->len + (uint32_t)VNET_LEN;
        __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        t->head = t->head + 1 == t->ring.nr ? 0 : t->head + 1;
        if (++t->pending >= XBR_TX_KICK)
            tx_kick(q, t);
    }
    return sent;
}

static void afp_tx_flush(struct port *p, unsigned qi)
{
    struct afp_port *ap = p->priv;
    struct afp_queue *q = &ap->q[qi];
    tx_kick(q, q->tx_last);
}

#ifdef XBR_HAVE_FASTPATH
static int afp_fastpath(struct port *p, bool on, char *err, size_t errlen)
{
    struct afp_port *ap = p->priv;
    int fds[XBR_MAX_WORKERS];
    for (unsigned i = 0; i < ap->n_queues; i++)
        fds[i] = ap->q[i].fd;
    if (!on) {
        fp_port_detach(p->bridge->id, p->no, fds, ap->n_queues);
        return 0;
    }
    return fp_port_attach(p->bridge->id, p->no, ap->ifindex, fds, ap->n_queues, err, errlen);
}
#endif

static int afp_wait_fd(struct port *p, unsigned qi)
{
    struct afp_port *ap = p->priv;
    return ap->q[qi].fd;
}

static void afp_show(struct port *p, struct ctl_out *o)
{
    struct afp_port *ap = p->priv;
    uint64_t copied = 0, kicks = 0, full = 0;
    for (unsigned i = 0; i < ap->n_queues; i++) {
        copied += ap->q[i].rx_copied;
        kicks += ap->q[i].tx_kicks;
        full += ap->q[i].tx_ring_full;
    }
    ctl_out_i64(o, "ifindex", NULL, ap->ifindex);
    ctl_out_u64(o, "queues", NULL, ap->n_queues);
    ctl_out_u64(o, "rx_slots", "    ring: rx %llu slots", ap->q[0].rx.nr);
    ctl_out_u64(o, "rx_slot_size", " of %llu bytes", ap->q[0].rx.size);
    ctl_out_u64(o, "rx_copied", ", %llu copied whole", copied);
    ctl_out_u64(o, "tx_kicks", "; tx %llu kicks", kicks);
    ctl_out_u64(o, "tx_ring_full", ", ring full %llu times\n", full);
}

const struct port_class port_afpacket_class = {
    .type = "afpacket",
    .end_station = false,
    .open = afp_open,
    .close = afp_close,
    .rx_burst = afp_rx_burst,
    .rx_done = afp_rx_done,
    .tx_burst = afp_tx_burst,
    .tx_flush = afp_tx_flush,
#ifdef XBR_HAVE_FASTPATH
    .fastpath = afp_fastpath,
#endif
    .wait_fd = afp_wait_fd,
    .refresh = afp_refresh,
    .show = afp_show,
};
