/* What every port class that attaches an existing Linux interface (afpacket,
 * afxdp) needs: the checks before attaching, the facts that change
 * underneath (MTU, carrier, speed), and bringing the link up and down. */
#include "bridge/private.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <sched.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

int xbr_netdev_open(struct port *p, const struct port_open_args *args, struct xbr_netdev *nd,
                    char *err, size_t errlen)
{
    memset(nd, 0, sizeof(*nd));
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
    nd->flags = (unsigned)ifr.ifr_flags;
    r = check_attachable(p, (int)ifindex, nd->flags, args->flags & XBR_PORT_F_FORCE, err, errlen);
    if (r < 0)
        return r;
    nd->ifindex = (int)ifindex;
    memset(&ifr.ifr_hwaddr, 0, sizeof(ifr.ifr_hwaddr));
    if (xbr_if_ioctl(SIOCGIFHWADDR, &ifr) == 0)
        memcpy(p->mac, ifr.ifr_hwaddr.sa_data, 6);
    (void)xbr_netdev_refresh(p, nd);
    return 0;
}

void xbr_netdev_set_up(struct port *p, struct xbr_netdev *nd, bool up)
{
    struct ifreq ifr = {0};
    (void)xbr_strlcpy(ifr.ifr_name, p->name, sizeof(ifr.ifr_name));
    if (xbr_if_ioctl(SIOCGIFFLAGS, &ifr) < 0)
        return;
    if (up && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        nd->set_up = xbr_if_ioctl(SIOCSIFFLAGS, &ifr) == 0;
    } else if (!up && nd->set_up) {
        ifr.ifr_flags &= (short)~IFF_UP;
        (void)xbr_if_ioctl(SIOCSIFFLAGS, &ifr);
        nd->set_up = false;
    }
}

int xbr_netdev_refresh(struct port *p, const struct xbr_netdev *nd)
{
    /* Deleted, or moved to another namespace: the sockets are dead. */
    if (if_nametoindex(p->name) != (unsigned)nd->ifindex)
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

/* Whether the device segments TCP over IPv4 and IPv6 itself (ethtool's
 * tx-tcp-segmentation and tx-tcp6-segmentation active). PACKET_QDISC_BYPASS
 * sends through __dev_direct_xmit(), which drops a frame that needs software
 * GSO (validate_xmit_skb_list() returned segments, not the frame): without
 * both, a guest's TSO super-frame to such a NIC (e1000 has no TSO6) is lost.
 * Unknown (no ethtool answer): assume not. (Found by the real-Xen suite:
 * TCP/IPv6 from guests to the e1000 uplink ran at 124 KB/s.) */
bool xbr_netdev_segments_tcp(const char *ifname)
{
    struct ifreq ifr;
    /* The header and the one count its data[] holds for ETH_SS_FEATURES. */
    union {
        struct ethtool_sset_info hdr;
        uint8_t bytes[sizeof(struct ethtool_sset_info) + sizeof(uint32_t)];
    } ss;
    bool v4 = false, v6 = false, ok;

    memset(&ss, 0, sizeof(ss));
    ss.hdr.cmd = ETHTOOL_GSSET_INFO;
    ss.hdr.sset_mask = 1ull << ETH_SS_FEATURES;
    memset(&ifr, 0, sizeof(ifr));
    (void)xbr_strlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
    ifr.ifr_data = (void *)&ss;
    if (xbr_if_ioctl(SIOCETHTOOL, &ifr) < 0 || !ss.hdr.sset_mask)
        return false;
    uint32_t n;
    memcpy(&n, ss.bytes + sizeof(ss.hdr), sizeof(n));
    if (!n || n > 4096)
        return false;
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

void xbr_netdev_driver(const char *ifname, char *out, size_t len)
{
    struct ethtool_drvinfo info = {.cmd = ETHTOOL_GDRVINFO};
    struct ifreq ifr = {0};
    (void)xbr_strlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
    ifr.ifr_data = (void *)&info;
    out[0] = '\0';
    if (xbr_if_ioctl(SIOCETHTOOL, &ifr) == 0)
        (void)xbr_strlcpy(out, info.driver, len);
}

/* Parses a sysfs CPU mask ("3", "00000000,00000002") into set. */
static void parse_mask(const char *s, cpu_set_t *set)
{
    CPU_ZERO(set);
    size_t len = strlen(s);
    unsigned bit = 0;
    for (size_t i = len; i-- > 0;) {
        char c = s[i];
        if (c == ',' || c == '\n')
            continue;
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (v < 0)
            return;
        for (int b = 0; b < 4; b++, bit++)
            if ((v >> b & 1) && bit < CPU_SETSIZE)
                CPU_SET(bit, set);
    }
}

void xbr_netdev_warn_rps(const struct port *p)
{
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof(mine), &mine) < 0)
        return;
    char pat[128];
    snprintf(pat, sizeof(pat), "/sys/class/net/%s/queues/rx-*/rps_cpus", p->name);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char buf[256] = "";
        int fd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        cpu_set_t rps, both;
        parse_mask(buf, &rps);
        if (!CPU_COUNT(&rps))
            continue;
        CPU_AND(&both, &rps, &mine);
        if (CPU_EQUAL(&both, &rps)) {
            buf[strcspn(buf, "\n")] = '\0';
            xbr_warn("%s: RPS (%s = %s) steers its receive processing only to CPUs xbrd's "
                     "workers run on: frames xbr handles in user space then cost that core the "
                     "kernel's receive work too, which starves the worker under load "
                     "(receive livelock); the kernel fast path and AF_XDP ports are not "
                     "affected. Give RPS other CPUs, or pin xbrd elsewhere (CPUAffinity=)",
                     p->name, g.gl_pathv[i] + strlen("/sys/class/net/"), buf);
            break;
        }
    }
    globfree(&g);
}
