/* tap port: creates (or attaches to an existing persistent) tap device.
 *
 * One tap queue per worker (IFF_MULTI_QUEUE). Frames carry a virtio-net
 * header (IFF_VNET_HDR) and the device accepts and hands us TSO/checksum
 * offloaded frames (TUNSETOFFLOAD), so a host stack behind the tap sends
 * 64 KiB segments through the bridge as it would through a kernel bridge.
 * A tap we created is not persistent: it disappears when the last queue fd
 * closes, i.e. when the port is removed or xbrd exits for any reason. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define VNET_LEN sizeof(struct virtio_net_hdr)

struct tap_port {
    unsigned ifindex;
    unsigned n_queues;
    bool existed;  /* attached to a tap someone else created */
    int fds[];
};

static void tap_close(struct port *p)
{
    struct tap_port *tp = p->priv;
    if (!tp)
        return;
    for (unsigned i = 0; i < tp->n_queues; i++)
        if (tp->fds[i] >= 0)
            close(tp->fds[i]);
    free(tp);
    p->priv = NULL;
}

static int tap_refresh(struct port *p)
{
    struct tap_port *tp = p->priv;
    if (if_nametoindex(p->name) != tp->ifindex)
        return -ENODEV; /* someone deleted our tap (ip link del) */
    struct ifreq ifr = {0};
    (void)xbr_strlcpy(ifr.ifr_name, p->name, sizeof(ifr.ifr_name));
    if (xbr_if_ioctl(SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
        __atomic_store_n(&p->mtu, (uint32_t)ifr.ifr_mtu, __ATOMIC_RELAXED);
    return 0;
}

static int tap_open(struct port *p, const struct port_open_args *args, char *err, size_t errlen)
{
    bool existed = if_nametoindex(args->name) != 0;
    struct tap_port *tp = xbr_xzalloc(sizeof(*tp) + args->n_queues * sizeof(int));
    tp->n_queues = args->n_queues;
    tp->existed = existed;
    for (unsigned i = 0; i < tp->n_queues; i++)
        tp->fds[i] = -1;
    p->priv = tp;

    for (unsigned i = 0; i < tp->n_queues; i++) {
        int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open /dev/net/tun: %s", strerror(e));
            tap_close(p);
            return -e;
        }
        tp->fds[i] = fd;
        struct ifreq ifr = {0};
        (void)xbr_strlcpy(ifr.ifr_name, args->name, sizeof(ifr.ifr_name));
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
            int e = errno;
            if (existed && (e == EINVAL || e == EBUSY || e == EPERM))
                snprintf(err, errlen,
                         "%s exists and is not a free multi-queue tap device (%s); "
                         "pick another name or delete it",
                         args->name, strerror(e));
            else
                snprintf(err, errlen, "cannot create tap %s: %s", args->name, strerror(e));
            tap_close(p);
            return -e;
        }
        unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
        if (ioctl(fd, TUNSETOFFLOAD, off) < 0)
            (void)ioctl(fd, TUNSETOFFLOAD, 0u); /* offloads are an optimisation */
    }

    struct ifreq ifr = {0};
    (void)xbr_strlcpy(ifr.ifr_name, args->name, sizeof(ifr.ifr_name));
    if (xbr_if_ioctl(SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        (void)xbr_if_ioctl(SIOCSIFFLAGS, &ifr);
    }
    memset(&ifr.ifr_hwaddr, 0, sizeof(ifr.ifr_hwaddr));
    if (xbr_if_ioctl(SIOCGIFHWADDR, &ifr) == 0)
        memcpy(p->mac, ifr.ifr_hwaddr.sa_data, 6);
    tp->ifindex = if_nametoindex(args->name);
    (void)tap_refresh(p);
    return 0;
}

static unsigned tap_rx_burst(struct port *p, unsigned q, struct pkt *pkts, unsigned n)
{
    struct tap_port *tp = p->priv;
    unsigned got = 0;

    while (got < n) {
        struct pkt *pkt = &pkts[got];
        struct iovec iov[2] = {
            {.iov_base = &pkt->vnet, .iov_len = VNET_LEN},
            {.iov_base = pkt->buf, .iov_len = XBR_PKT_BUF_SIZE},
        };
        ssize_t r = readv(tp->fds[q], iov, 2);
        if (r < 0)
            break; /* EAGAIN: empty; EIO: link down */
        if (r < (ssize_t)VNET_LEN) {
            p->stats[q].rx_drop_port++;
            continue;
        }
        pkt->data = pkt->buf;
        pkt->len = (uint32_t)(r - (ssize_t)VNET_LEN);
        got++;
    }
    return got;
}

static unsigned tap_tx_burst(struct port *p, unsigned q, struct pkt *const *pkts, unsigned n)
{
    struct tap_port *tp = p->priv;
    unsigned sent = 0;

    for (unsigned i = 0; i < n; i++) {
        struct iovec iov[2] = {
            {.iov_base = (void *)&pkts[i]->vnet, .iov_len = VNET_LEN},
            {.iov_base = pkts[i]->data, .iov_len = pkts[i]->len},
        };
        if (writev(tp->fds[q], iov, 2) > 0)
            sent++;
        else if (errno == EAGAIN)
            break;
    }
    return sent;
}

static int tap_wait_fd(struct port *p, unsigned q)
{
    struct tap_port *tp = p->priv;
    return tp->fds[q];
}

static void tap_show(struct port *p, struct ctl_out *o)
{
    struct tap_port *tp = p->priv;
    ctl_out_u64(o, "queues", NULL, tp->n_queues);
    ctl_out_bool(o, "preexisting", NULL, tp->existed);
}

const struct port_class port_tap_class = {
    .type = "tap",
    .end_station = true,
    .open = tap_open,
    .close = tap_close,
    .rx_burst = tap_rx_burst,
    .tx_burst = tap_tx_burst,
    .wait_fd = tap_wait_fd,
    .refresh = tap_refresh,
    .show = tap_show,
};
