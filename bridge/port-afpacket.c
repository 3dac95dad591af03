/* AF_PACKET port: attaches an existing Linux interface (peth0, a veth).
 *
 * RX: a TPACKET_V3 ring per queue, read in place (zero copy into the
 * bridge); a block goes back to the kernel in rx_done, after the burst that
 * used its frames has been forwarded. Blocks are retired by the kernel when
 * full or after RETIRE_TOV_MS, which bounds the added latency at low rates.
 * TX: sendmmsg, one syscall per burst, with PACKET_QDISC_BYPASS (the
 * bridge is the queueing discipline) where the NIC segments TCP/IPv4 and
 * TCP/IPv6 itself; elsewhere through the qdisc, whose software GSO the
 * bypass path lacks (it drops such frames).
 * Offloads: PACKET_VNET_HDR on both directions, so GSO super-frames and
 * partial checksums pass through as they would through the kernel bridge
 * instead of being truncated or sent with a wrong checksum.
 * With several workers the queues' sockets form a PACKET_FANOUT_HASH group,
 * so each flow stays on one worker and frames of a flow stay in order.
 * Promiscuous mode is a PACKET_MR_PROMISC membership: the kernel reference
 * counts it and drops it when the socket closes, even if xbrd crashes. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ethtool.h>
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

#define BLOCK_SIZE (128u * 1024) /* holds one 64 KiB GSO frame with headers */
#define N_BLOCKS 32u
#define FRAME_SIZE 2048u         /* V3 ignores it for RX, but must be valid */
#define RETIRE_TOV_MS 1u
#define VNET_LEN sizeof(struct virtio_net_hdr)

struct afp_queue {
    int fd;
    uint8_t *ring;
    unsigned cur;        /* block being read */
    unsigned done_in_cur;/* frames of cur already handed out */
    uint8_t *next;       /* next frame in cur */
    unsigned n_release;  /* blocks before cur fully handed out, not yet returned */
    struct mmsghdr msgs[XBR_BURST];
    struct iovec iov[XBR_BURST][2];
};

struct afp_port {
    int ifindex;
    bool set_up;  /* we brought the link up, and put it down again at close */
    bool bypass;  /* PACKET_QDISC_BYPASS: only where the NIC segments TCP itself */
    unsigned n_queues;
    struct afp_queue q[];
};

static int sysfs_read(const char *ifname, const char *attr, char *buf, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "/sys/class/net/%s/%s", ifname, attr);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    if (n && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    return 0;
}

static long sysfs_long(const char *ifname, const char *attr, long dflt)
{
    char buf[64];
    if (sysfs_read(ifname, attr, buf, sizeof(buf)) < 0)
        return dflt;
    char *end;
    long v = strtol(buf, &end, 10);
    return *end ? dflt : v;
}

/* The interface's master (kernel bridge, bond, team, OVS), if any. */
static bool find_master(const char *ifname, char *master, size_t len)
{
    char path[128], target[PATH_MAX];
    snprintf(path, sizeof(path), "/sys/class/net/%s/master", ifname);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    (void)xbr_strlcpy(master, base ? base + 1 : target, len);
    return true;
}

/* Refuses interfaces that would break the network or cannot work: the
 * motivating outage began with an addif that no tool questioned. */
static int check_attachable(struct port *p, int ifindex, unsigned flags, bool force,
                            char *err, size_t errlen)
{
    char master[IF_NAMESIZE + 64];

    if (flags & IFF_LOOPBACK) {
        snprintf(err, errlen, "%s is a loopback interface and cannot be a bridge port", p->name);
        return -EINVAL;
    }
    if (find_master(p->name, master, sizeof(master))) {
        char probe[8];
        bool is_bridge = sysfs_read(master, "bridge/stp_state", probe, sizeof(probe)) == 0;
        snprintf(err, errlen,
                 "%s is already enslaved to %s %s; detach it there first "
                 "(ip link set %s nomaster)",
                 p->name, is_bridge ? "kernel bridge" : "device", master, p->name);
        return -EBUSY;
    }
    /* A veth whose other end is already on this bridge: adding it closes a
     * loop through the pair (dom0's eth0 / vif0.0). */
    long peer = sysfs_long(p->name, "iflink", ifindex);
    char peer_name[IF_NAMESIZE];
    if (peer != ifindex && peer > 0 && if_indextoname((unsigned)peer, peer_name) &&
        sysfs_long(peer_name, "iflink", -1) == ifindex) {
        struct port *other = xbr_port_find(p->bridge, peer_name);
        if (other && force) {
            xbr_warn("%s: %s is the other end of %s on the same bridge; attached because "
                     "forced: only STP stands between this loop and a storm",
                     p->bridge->name, p->name, peer_name);
        } else if (other) {
            snprintf(err, errlen,
                     "%s is the other end of %s, which is already a port of %s: "
                     "adding it would close a loop (--force to attach anyway)",
                     p->name, peer_name, p->bridge->name);
            return -ELOOP;
        }
    }
    return 0;
}

/* Whether the device segments TCP over IPv4 and IPv6 itself (ethtool's
 * tx-tcp-segmentation and tx-tcp6-segmentation active). PACKET_QDISC_BYPASS
 * sends through __dev_direct_xmit(), which drops a frame that needs software
 * GSO (validate_xmit_skb_list() returned segments, not the frame): without
 * both, a guest's TSO super-frame to such a NIC (e1000 has no TSO6) is lost.
 * Unknown (no ethtool answer): assume not. */
static bool dev_segments_tcp(const char *ifname)
{
    struct ifreq ifr;
    struct {
        struct ethtool_sset_info hdr;
        uint32_t len;
    } ss = {.hdr = {.cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ull << ETH_SS_FEATURES}};
    bool v4 = false, v6 = false, ok;

    memset(&ifr, 0, sizeof(ifr));
    (void)xbr_strlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
    ifr.ifr_data = (void *)&ss;
    if (xbr_if_ioctl(SIOCETHTOOL, &ifr) < 0 || !ss.hdr.sset_mask || !ss.len || ss.len > 4096)
        return false;
    uint32_t n = ss.len;
    struct ethtool_gstrings *names = xbr_xzalloc(sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
    struct ethtool_gfeatures *feat =
        xbr_xzalloc(sizeof(*feat) + (n + 31) / 32 * sizeof(feat->features[0]));
    names->cmd = ETHTOOL_GSTRINGS;
    names->string_set = ETH_SS_FEATURES;
    names->len = n;
    feat->cmd = ETHTOOL_GFEATURES;
    feat->size = (n + 31) / 32;
    ifr.ifr_data = (void *)names;
    ok = xbr_if_ioctl(SIOCETHTOOL, &ifr) == 0;
    ifr.ifr_data = (void *)feat;
    ok = ok && xbr_if_ioctl(SIOCETHTOOL, &ifr) == 0;
    for (uint32_t i = 0; ok && i < n; i++) {
        const char *name = (const char *)names->data + (size_t)i * ETH_GSTRING_LEN;
        bool on = feat->features[i / 32].active & (1u << (i % 32));
        if (!strncmp(name, "tx-tcp-segmentation", ETH_GSTRING_LEN))
            v4 = on;
        else if (!strncmp(name, "tx-tcp6-segmentation", ETH_GSTRING_LEN))
            v6 = on;
    }
    free(names);
    free(feat);
    return v4 && v6;
}

static int queue_open(struct port *p, struct afp_port *ap, unsigned qi, int *fanout_id,
                      char *err, size_t errlen)
{
    struct afp_queue *q = &ap->q[qi];
    int one = 1, v3 = TPACKET_V3;
    const char *what;

    /* Protocol 0 until bound: nothing arrives before the ring exists. */
    q->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (q->fd < 0) {
        what = "socket(AF_PACKET)";
        goto fail;
    }
    what = "PACKET_VERSION";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_VERSION, &v3, sizeof(v3)) < 0)
        goto fail;
    what = "PACKET_VNET_HDR";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
        goto fail;
    what = "PACKET_QDISC_BYPASS";
    if (ap->bypass && setsockopt(q->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
        goto fail;
    /* Our own transmissions must not come back to us as received frames. */
    what = "PACKET_IGNORE_OUTGOING";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
        goto fail;
    int sndbuf = 4 << 20;
    (void)setsockopt(q->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));

    struct tpacket_req3 req = {
        .tp_block_size = BLOCK_SIZE,
        .tp_block_nr = N_BLOCKS,
        .tp_frame_size = FRAME_SIZE,
        .tp_frame_nr = BLOCK_SIZE / FRAME_SIZE * N_BLOCKS,
        .tp_retire_blk_tov = RETIRE_TOV_MS,
    };
    what = "PACKET_RX_RING";
    if (setsockopt(q->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
        goto fail;
    what = "mmap of the RX ring";
    q->ring = mmap(NULL, (size_t)BLOCK_SIZE * N_BLOCKS, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_LOCKED | MAP_POPULATE, q->fd, 0);
    if (q->ring == MAP_FAILED) {
        /* MAP_LOCKED can exceed RLIMIT_MEMLOCK for non-root; retry without. */
        q->ring = mmap(NULL, (size_t)BLOCK_SIZE * N_BLOCKS, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_POPULATE, q->fd, 0);
        if (q->ring == MAP_FAILED) {
            q->ring = NULL;
            goto fail;
        }
    }

    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = ap->ifindex,
    };
    what = "bind";
    if (bind(q->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        goto fail;

    if (qi == 0) {
        struct packet_mreq mr = {.mr_ifindex = ap->ifindex, .mr_type = PACKET_MR_PROMISC};
        what = "promiscuous mode";
        if (setsockopt(q->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
            goto fail;
    }
    if (ap->n_queues > 1) {
        int arg;
        what = "PACKET_FANOUT";
        if (qi == 0) {
            arg = (PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
            if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0)
                goto fail;
            socklen_t l = sizeof(arg);
            if (getsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, &l) < 0)
                goto fail;
            *fanout_id = arg & 0xffff;
        } else {
            arg = *fanout_id | PACKET_FANOUT_HASH << 16;
            if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0)
                goto fail;
        }
    }
    for (unsigned i = 0; i < XBR_BURST; i++) {
        q->msgs[i].msg_hdr.msg_iov = q->iov[i];
        q->msgs[i].msg_hdr.msg_iovlen = 2;
    }
    return 0;
fail:;
    int e = errno;
    snprintf(err, errlen, "%s: %s failed: %s", p->name, what, strerror(e));
    return -e;
}

static void afp_close(struct port *p);

static int afp_refresh(struct port *p)
{
    struct afp_port *ap = p->priv;
    /* Deleted, or moved to another namespace: the sockets are dead. */
    if (if_nametoindex(p->name) != (unsigned)ap->ifindex)
        return -ENODEV;
    struct ifreq ifr = {0};
    (void)xbr_strlcpy(ifr.ifr_name, p->name, sizeof(ifr.ifr_name));
    if (xbr_if_ioctl(SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
        __atomic_store_n(&p->mtu, (uint32_t)ifr.ifr_mtu, __ATOMIC_RELAXED);
    p->link_up = sysfs_long(p->name, "carrier", 0) == 1;
    long speed = sysfs_long(p->name, "speed", -1);
    p->speed_mbps = speed > 0 ? (uint32_t)speed : 0;
    return 0;
}

static int afp_open(struct port *p, const struct port_open_args *args, char *err, size_t errlen)
{
    unsigned ifindex = if_nametoindex(args->name);
    if (!ifindex) {
        snprintf(err, errlen, "no such interface: %s", args->name);
        return -ENODEV;
    }
    struct ifreq ifr = {0};
    (void)xbr_strlcpy(ifr.ifr_name, args->name, sizeof(ifr.ifr_name));
    int r = xbr_if_ioctl(SIOCGIFFLAGS, &ifr);
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot read interface flags: %s", args->name, strerror(-r));
        return r;
    }
    unsigned flags = (unsigned)ifr.ifr_flags;
    r = check_attachable(p, (int)ifindex, flags, args->flags & XBR_PORT_F_FORCE, err, errlen);
    if (r < 0)
        return r;

    struct afp_port *ap = xbr_xzalloc(sizeof(*ap) + args->n_queues * sizeof(ap->q[0]));
    ap->ifindex = (int)ifindex;
    ap->n_queues = args->n_queues;
    for (unsigned i = 0; i < ap->n_queues; i++)
        ap->q[i].fd = -1;
    p->priv = ap;
    ap->bypass = dev_segments_tcp(args->name);
    if (!ap->bypass)
        xbr_info("%s: no TCP segmentation offload for both IPv4 and IPv6: sending through the "
                 "qdisc, which segments GSO frames in software", args->name);

    int fanout_id = 0;
    for (unsigned i = 0; i < ap->n_queues; i++) {
        r = queue_open(p, ap, i, &fanout_id, err, errlen);
        if (r < 0) {
            afp_close(p);
            return r;
        }
    }
    if (!(flags & IFF_UP)) {
        ifr.ifr_flags = (short)(flags | IFF_UP);
        if (xbr_if_ioctl(SIOCSIFFLAGS, &ifr) == 0)
            ap->set_up = true;
    }
    memset(&ifr.ifr_hwaddr, 0, sizeof(ifr.ifr_hwaddr));
    if (xbr_if_ioctl(SIOCGIFHWADDR, &ifr) == 0)
        memcpy(p->mac, ifr.ifr_hwaddr.sa_data, 6);
    (void)afp_refresh(p);
    return 0;
}

static void afp_close(struct port *p)
{
    struct afp_port *ap = p->priv;
    if (!ap)
        return;
    for (unsigned i = 0; i < ap->n_queues; i++) {
        if (ap->q[i].ring)
            (void)munmap(ap->q[i].ring, (size_t)BLOCK_SIZE * N_BLOCKS);
        if (ap->q[i].fd >= 0)
            close(ap->q[i].fd); /* drops the promiscuous membership too */
    }
    if (ap->set_up) {
        struct ifreq ifr = {0};
        (void)xbr_strlcpy(ifr.ifr_name, p->name, sizeof(ifr.ifr_name));
        if (xbr_if_ioctl(SIOCGIFFLAGS, &ifr) == 0) {
            ifr.ifr_flags &= (short)~IFF_UP;
            (void)xbr_if_ioctl(SIOCSIFFLAGS, &ifr);
        }
    }
    free(ap);
    p->priv = NULL;
}

static inline struct tpacket_block_desc *block_at(struct afp_queue *q, unsigned i)
{
    return (struct tpacket_block_desc *)(q->ring + (size_t)i * BLOCK_SIZE);
}

/* Copies a frame whose VLAN tag the kernel took out (hardware or veth
 * offload) into buf with the tag put back, so tagged traffic crosses the
 * bridge unchanged. */
static void reinsert_vlan(struct pkt *pkt, const struct tpacket3_hdr *h, const uint8_t *data)
{
    uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : 0x8100;
    uint16_t tag[2] = {htons(tpid), htons((uint16_t)h->hv1.tp_vlan_tci)};
    memcpy(pkt->buf, data, 12);
    memcpy(pkt->buf + 12, tag, 4);
    memcpy(pkt->buf + 16, data + 12, pkt->len - 12);
    pkt->data = pkt->buf;
    pkt->len += 4;
    if (pkt->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
        pkt->vnet.csum_start = (uint16_t)(pkt->vnet.csum_start + 4);
    if (pkt->vnet.hdr_len)
        pkt->vnet.hdr_len = (uint16_t)(pkt->vnet.hdr_len + 4);
}

static unsigned afp_rx_burst(struct port *p, unsigned qi, struct pkt *pkts, unsigned n)
{
    struct afp_port *ap = p->priv;
    struct afp_queue *q = &ap->q[qi];
    unsigned got = 0;

    while (got < n) {
        struct tpacket_block_desc *bd = block_at(q, q->cur);
        if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
            break;
        uint32_t num = bd->hdr.bh1.num_pkts;
        if (q->done_in_cur == 0)
            q->next = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
        while (got < n && q->done_in_cur < num) {
            struct tpacket3_hdr *h = (struct tpacket3_hdr *)q->next;
            q->next += h->tp_next_offset;
            q->done_in_cur++;
            uint8_t *data = (uint8_t *)h + h->tp_mac;
            if (XBR_UNLIKELY(h->tp_snaplen < h->tp_len || h->tp_mac < VNET_LEN ||
                             h->tp_snaplen > XBR_PKT_BUF_SIZE - 4)) {
                p->stats[qi].rx_drop_port++; /* truncated: never forward half a frame */
                continue;
            }
            struct pkt *pkt = &pkts[got++];
            memcpy(&pkt->vnet, data - VNET_LEN, VNET_LEN);
            pkt->data = data;
            pkt->len = h->tp_snaplen;
            if (XBR_UNLIKELY((h->tp_status & TP_STATUS_VLAN_VALID) && pkt->len >= 12))
                reinsert_vlan(pkt, h, data);
        }
        if (q->done_in_cur == num) {
            /* Whole block handed out; it goes back in rx_done. */
            q->n_release++;
            q->cur = (q->cur + 1) % N_BLOCKS;
            q->done_in_cur = 0;
        }
    }
    return got;
}

static void afp_rx_done(struct port *p, unsigned qi)
{
    struct afp_port *ap = p->priv;
    struct afp_queue *q = &ap->q[qi];
    unsigned b = (q->cur + N_BLOCKS - q->n_release) % N_BLOCKS;
    for (; q->n_release; q->n_release--, b = (b + 1) % N_BLOCKS)
        __atomic_store_n(&block_at(q, b)->hdr.bh1.block_status, TP_STATUS_KERNEL,
                         __ATOMIC_RELEASE);
}

static unsigned afp_tx_burst(struct port *p, unsigned qi, struct pkt *const *pkts, unsigned n)
{
    struct afp_port *ap = p->priv;
    struct afp_queue *q = &ap->q[qi];
    unsigned sent = 0;

    for (unsigned i = 0; i < n; i++) {
        q->iov[i][0] = (struct iovec){.iov_base = (void *)&pkts[i]->vnet, .iov_len = VNET_LEN};
        q->iov[i][1] = (struct iovec){.iov_base = pkts[i]->data, .iov_len = pkts[i]->len};
    }
    unsigned i = 0;
    while (i < n) {
        int r = sendmmsg(q->fd, q->msgs + i, n - i, MSG_DONTWAIT);
        if (r > 0) {
            sent += (unsigned)r;
            i += (unsigned)r;
            continue;
        }
        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
            break; /* device or socket full: the rest is dropped */
        i++;       /* this frame is bad (EMSGSIZE, EINVAL): skip it, keep the rest */
    }
    return sent;
}

static int afp_wait_fd(struct port *p, unsigned qi)
{
    struct afp_port *ap = p->priv;
    return ap->q[qi].fd;
}

static void afp_show(struct port *p, struct ctl_out *o)
{
    struct afp_port *ap = p->priv;
    ctl_out_i64(o, "ifindex", NULL, ap->ifindex);
    ctl_out_u64(o, "queues", NULL, ap->n_queues);
}

const struct port_class port_afpacket_class = {
    .type = "afpacket",
    .end_station = false,
    .open = afp_open,
    .close = afp_close,
    .rx_burst = afp_rx_burst,
    .rx_done = afp_rx_done,
    .tx_burst = afp_tx_burst,
    .wait_fd = afp_wait_fd,
    .refresh = afp_refresh,
    .show = afp_show,
};
