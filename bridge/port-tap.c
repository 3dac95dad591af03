/* tap port: creates (or attaches to an existing) tap device.
 *
 * One tap queue per worker (IFF_MULTI_QUEUE). Frames carry a virtio-net
 * header (IFF_VNET_HDR) and the device accepts and hands us TSO/checksum
 * offloaded frames (TUNSETOFFLOAD), so a host stack behind the tap sends
 * 64 KiB segments through the bridge as it would through a kernel bridge.
 *
 * Lifetime: a tap is the host's own interface on the bridge (dom0's address
 * and routes live on it), so it outlives the daemon.
 *   - A tap xbrd creates is persistent (TUNSETPERSIST) and marked as xbrd's
 *     with its interface alias. When xbrd exits, whatever the reason
 *     (SIGTERM, a crash, SIGKILL), the device stays with its addresses and
 *     routes, without carrier (the kernel drops what the host sends to it
 *     meanwhile). The next xbrd whose configuration names it attaches to it
 *     again and the carrier comes back; the host never saw the address go.
 *   - del-port (and del-br, a reload that drops the port) is the
 *     administrator saying the port goes: a tap marked as xbrd's is made
 *     non-persistent and disappears with its queues.
 *   - A tap somebody else created (ip tuntap add ... multi_queue) is only
 *     attached to, and left as it was by every kind of detach. */
#include "bridge/private.h"
#include "ctl/ctl.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define VNET_LEN sizeof(struct virtio_net_hdr)

/* The alias that marks a tap as created by xbrd (IFLA_IFALIAS). */
#define TAP_ALIAS "xbrd tap port (xbrctl del-port deletes it; kept across restarts)"

struct tap_port {
    unsigned ifindex;
    unsigned n_queues;
    bool ours;     /* created by xbrd (now or by an earlier run): persistent */
    bool del_on_close; /* ours, and open() got far enough that close may delete it */
    int fds[];
};

static bool exiting;

void xbr_tap_daemon_exiting(void) { exiting = true; }

/* One rtnetlink request on ifindex; the reply (an ack, or the link for
 * RTM_GETLINK) goes to reply. Returns the reply length or -errno. */
static int rtnl_link(uint16_t type, unsigned ifindex, const char *alias, char *reply,
                     size_t cap)
{
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
        char attrs[RTA_SPACE(256)];
    } req = {0};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi));
    req.nh.nlmsg_type = type;
    req.nh.nlmsg_flags = NLM_F_REQUEST | (type == RTM_SETLINK ? NLM_F_ACK : 0);
    req.nh.nlmsg_seq = 1;
    req.ifi.ifi_family = AF_UNSPEC;
    req.ifi.ifi_index = (int)ifindex;
    if (alias) {
        size_t n = strlen(alias) + 1;
        struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
        rta->rta_type = IFLA_IFALIAS;
        rta->rta_len = (unsigned short)RTA_LENGTH(n);
        memcpy(RTA_DATA(rta), alias, n);
        req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
    }
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct timeval tv = {.tv_sec = 2};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int r;
    if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
        r = -errno;
    } else {
        ssize_t n = recv(fd, reply, cap, 0);
        r = n < 0 ? -errno : (int)n;
        /* Not const: the NLMSG_ and RTA_ macros cast through char *. */
        struct nlmsghdr *h = (struct nlmsghdr *)(void *)reply;
        if (r >= (int)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(h);
            r = e->error < 0 ? e->error : r;
        }
    }
    close(fd);
    return r;
}

/* Is the tap at ifindex marked as xbrd's? */
static bool alias_is_ours(unsigned ifindex)
{
    char buf[8192];
    int n = rtnl_link(RTM_GETLINK, ifindex, NULL, buf, sizeof(buf));
    if (n <= 0)
        return false;
    struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf;
    if (!NLMSG_OK(h, (unsigned)n) || h->nlmsg_type != RTM_NEWLINK)
        return false;
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == IFLA_IFALIAS)
            return RTA_PAYLOAD(a) >= sizeof(TAP_ALIAS) &&
                   !memcmp(RTA_DATA(a), TAP_ALIAS, sizeof(TAP_ALIAS));
    return false;
}

static void tap_close(struct port *p)
{
    struct tap_port *tp = p->priv;
    if (!tp)
        return;
    /* del-port: ours goes with its queues. Exit: it stays for the next run. */
    if (tp->del_on_close && !exiting && tp->fds[0] >= 0)
        (void)ioctl(tp->fds[0], TUNSETPERSIST, 0);
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
    unsigned old_index = if_nametoindex(args->name);
    bool existed = old_index != 0;
    struct tap_port *tp = xbr_xzalloc(sizeof(*tp) + args->n_queues * sizeof(int));
    tp->n_queues = args->n_queues;
    tp->ours = existed && alias_is_ours(old_index);
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
        if (i == 0 && !existed && ioctl(fd, TUNSETPERSIST, 1) < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot make tap %s persistent: %s", args->name, strerror(e));
            tap_close(p);
            return -e;
        }
        if (i == 0 && !existed)
            tp->ours = tp->del_on_close = true; /* a failure from here deletes it */
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
    if (!existed) {
        char reply[512];
        int r = rtnl_link(RTM_SETLINK, tp->ifindex, TAP_ALIAS, reply, sizeof(reply));
        if (r < 0) {
            snprintf(err, errlen, "cannot mark tap %s as xbrd's (alias): %s", args->name,
                     strerror(-r));
            tap_close(p);
            return r;
        }
    }
    /* Ours from an earlier run: del-port may delete it from now on (a failed
     * attach above left it, and dom0's address on it, alone). */
    tp->del_on_close = tp->ours;
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
    ctl_out_bool(o, "persistent", NULL, tp->ours);
    ctl_out_str(o, "owner", NULL, tp->ours ? "xbrd" : "external");
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
